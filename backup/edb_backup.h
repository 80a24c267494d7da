/**
 * @file edb_backup.h
 * @brief Online ("hot") backup of an edb database, verify and restore.
 *
 * A backup (#edb_backup) is one consistent snapshot of the database, taken
 * without blocking writers in this or any other process.  Archive bytes are
 * pulled from it through one or more streams (#edb_backup_stream); each stream
 * has a copier thread that reads, hashes and frames pages into a bounded ring.
 *
 * Aborting never hangs: edb_backup_close() and edb_backup_end() return at once
 * in every state (they never join the copier); a read blocked in another thread
 * returns #EDB_CANCELED; edb_backup_stop() fails every backup of an environment
 * from any thread.  Once aborted, a copier is gone within one page batch, and
 * the snapshot's read transaction is released with the last reference.
 *
 * The archive format is specified byte by byte in doc/backup-format.md.
 */
#ifndef EDB_BACKUP_H
#define EDB_BACKUP_H

#include "edb.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * One snapshot being backed up.
 * Thread safety: edb_backup_open(), edb_backup_progress() and edb_backup_end() may
 * be called from any thread, but edb_backup_end() must not race with other calls
 * on the same handle from the application (edb_backup_stop() and edb_env_close()
 * may race with everything).
 */
typedef struct edb_backup edb_backup;
/**
 * One archive stream of a backup.
 * Thread safety: edb_backup_read() from one thread at a time; edb_backup_close()
 * from any thread, also while another thread is blocked in edb_backup_read().
 */
typedef struct edb_backup_stream edb_backup_stream;

#define EDB_BACKUP_INCREMENTAL 0x1u  /**< only pages that differ from @c base's */
#define EDB_BACKUP_KEEP_FREE   0x2u  /**< copy free pages too (a byte-exact image) */
#define EDB_BACKUP_LOW_PIN     0x4u  /**< copy in passes under short snapshots; pin one only at the end */

/** Options for edb_backup_begin(); zero fields take defaults. */
typedef struct edb_backup_opts {
    unsigned flags;          /**< EDB_BACKUP_INCREMENTAL | EDB_BACKUP_KEEP_FREE | EDB_BACKUP_LOW_PIN */
    const char *base;        /**< incremental: path of the archive this one builds on */
    uint64_t rate_limit;     /**< bytes per second the copier produces; 0 = unlimited */
    size_t ring_size;        /**< bytes in the copier's ring; 0 = default (8 MiB) */
} edb_backup_opts;

/**
 * Take a consistent snapshot of @p env for backing up.  Never takes LMDB's writer
 * lock and never begins a write transaction, so it is safe in a thread that holds one.
 * @param[out] out the backup; release with edb_backup_end()
 * @param[in]  opts NULL for a full backup with defaults
 * @return 0; #EDB_INVAL; #EDB_NOTFOUND (base archive missing); #EDB_CORRUPT /
 *         #EDB_CHECKSUM / #EDB_VERSION (base archive unusable); #EDB_LIMIT (no reader
 *         slot); #EDB_CANCELED (the env is closing); #EDB_NOMEM; #EDB_IO.
 */
EDB_EXTERN int edb_backup_begin(edb_backup **out, edb_env *env, const edb_backup_opts *opts);

/**
 * Start a stream: a copier thread begins producing archive bytes.  Several
 * streams of one backup produce the same archive independently.
 * @param[out] out the stream; release with edb_backup_close()
 * @return 0, #EDB_INVAL, #EDB_CANCELED (backup stopped or ended), #EDB_NOMEM,
 *         #EDB_IO (thread creation failed).
 */
EDB_EXTERN int edb_backup_open(edb_backup_stream **out, edb_backup *bk);

/**
 * Copy up to @p size archive bytes into @p buf.  Blocks until bytes are available.
 * @param[out] nread bytes copied; 0 means the archive is complete
 * @return 0; #EDB_CANCELED (closed from another thread, backup stopped, env closing);
 *         the copier's error (#EDB_IO, #EDB_CORRUPT, #EDB_NOMEM) once its bytes are
 *         drained; #EDB_INVAL.
 */
EDB_EXTERN int edb_backup_read(edb_backup_stream *s, void *buf, size_t size, size_t *nread);

/** Close a stream: returns at once; cancels its copier if not at its end. NULL-safe. */
EDB_EXTERN void edb_backup_close(edb_backup_stream *s);

/** Close the backup's streams still open and release its snapshot (with the last
 *  reference: a copier still winding down keeps it a batch longer).  NULL-safe. */
EDB_EXTERN void edb_backup_end(edb_backup *bk);

/** From any thread: every backup in progress on @p env fails with #EDB_CANCELED;
 *  backups begun later are unaffected.  @return 0, #EDB_INVAL. */
EDB_EXTERN int edb_backup_stop(edb_env *env);

/**
 * Progress of the backup's most advanced stream, in archive bytes.  @p total is
 * exact from the start for full backups (the snapshot knows its page count); for
 * incremental and low-pin backups it is an upper bound until the end.
 * @return 0, #EDB_INVAL.
 */
EDB_EXTERN int edb_backup_progress(edb_backup *bk, uint64_t *done, uint64_t *total);

#ifdef __cplusplus
}
#endif
#endif /* EDB_BACKUP_H */

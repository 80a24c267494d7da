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

/** Only the pages whose hash differs from the base archive's page hash table (and
 *  pages past its end); @c base names the base, a complete archive file (full or
 *  incremental).  Restore applies the chain full, incr1, incr2, ... in order. */
#define EDB_BACKUP_INCREMENTAL 0x1u
#define EDB_BACKUP_KEEP_FREE   0x2u  /**< copy free pages too (a byte-exact image) */
/** Copy in passes under short snapshots released after each batch; a final pass
 *  pins one snapshot only to read and hash every page and copy the changed ones
 *  (into memory, up to 32 MiB, then into an unnamed spool file in $TMPDIR, else
 *  /tmp, which is gone when the stream ends or is closed), so the pin does not
 *  depend on the consumer's speed; the archive restores that final snapshot.
 *  Keeps the database file from growing under writers during a long backup.
 *  One stream per backup. */
#define EDB_BACKUP_LOW_PIN     0x4u

/** Options for edb_backup_begin(); zero fields take defaults. */
typedef struct edb_backup_opts {
    unsigned flags;          /**< EDB_BACKUP_INCREMENTAL | EDB_BACKUP_KEEP_FREE | EDB_BACKUP_LOW_PIN */
    const char *base;        /**< incremental: path of the archive this one builds on */
    uint64_t rate_limit;     /**< bytes per second the copier produces; 0 = unlimited */
    size_t ring_size;        /**< bytes in the copier's ring; 0 = default (8 MiB; 256 MiB for the
                                  zero-copy stream of edb_backup_save() and edb_backup_write_fd(), whose slots reference the
                                  snapshot's pages instead of holding copies).  Rounded down to whole
                                  slots of one frame (4 KiB + 168 pages of 4 KiB, 672 KiB of pages
                                  at most, 64 pages at least), at least 2 slots */
    unsigned compress;       /**< #EDB_BACKUP_COMPRESS_NONE (0) or #EDB_BACKUP_COMPRESS_ZSTD: every
                                  frame's pages compressed on their own (archive format version 3;
                                  page hashes stay over the uncompressed pages).  A compressed
                                  archive never uses the zero-copy path */
    int compress_level;      /**< zstd level 1 ..= 22; 0 = 1 */
    const uint8_t *encrypt_key; /**< NULL, or 32 bytes: every frame is encrypted and authenticated
                                  with libsodium's crypto_secretstream_xchacha20poly1305 under this
                                  key (after compression; archive format version 3; the header
                                  names the key by its id, never the key).  Copied: the caller
                                  may free it after edb_backup_begin() */
    unsigned compress_threads; /**< threads compressing each frame's parts, the copier's own
                                  included: 0 or 1 = the copier's thread only, at most 64.  With
                                  N > 1 a frame's payload is up to N zstd frames, one per part */
} edb_backup_opts;

#define EDB_BACKUP_COMPRESS_NONE 0u   /**< plain archive, format version 2 */
#define EDB_BACKUP_COMPRESS_ZSTD 1u   /**< zstd per frame, format version 3 */

/**
 * Take a consistent snapshot of @p env for backing up.  Never takes LMDB's writer
 * lock and never begins a write transaction, so it is safe in a thread that holds one.
 * @param[out] out the backup; release with edb_backup_end()
 * @param[in]  opts NULL for a full backup with defaults
 * @return 0; #EDB_INVAL (bad flags; an unknown @c compress, a @c compress_level
 *         out of 0 ..= 22 or @c compress_threads over 64; #EDB_BACKUP_INCREMENTAL without @c base or
 *         @c base without it; @c base not a regular file); #EDB_NOTFOUND (base
 *         archive missing); #EDB_CORRUPT / #EDB_CHECKSUM / #EDB_VERSION (base
 *         archive unusable); #EDB_CHAIN (base of another page size); #EDB_LIMIT (no reader
 *         slot); #EDB_CANCELED (the env is closing or closed: edb_env_close() started
 *         before this call registered, also when no backup was ever made on @p env;
 *         @p env is then looked up, not touched); #EDB_BUSY (writers rewrote both
 *         meta pages during each of 1000 capture attempts); #EDB_NOMEM; #EDB_IO.
 * Thread safety: any thread, also racing edb_env_close() of @p env.
 */
EDB_EXTERN int edb_backup_begin(edb_backup **out, edb_env *env, const edb_backup_opts *opts);

/**
 * Start a stream: a copier thread begins producing archive bytes.  Several
 * streams of one backup produce the same archive independently.
 * @param[out] out the stream; release with edb_backup_close()
 * @return 0, #EDB_INVAL, #EDB_CANCELED (backup stopped or ended), #EDB_NOMEM,
 *         #EDB_IO (thread creation failed), #EDB_BUSY (a second stream of a
 *         #EDB_BACKUP_LOW_PIN backup).
 */
EDB_EXTERN int edb_backup_open(edb_backup_stream **out, edb_backup *bk);

/**
 * Copy up to @p size archive bytes into @p buf.  Blocks until bytes are available.
 * Returns as soon as it has copied something (it never waits for a full buffer).
 * @param[out] nread bytes copied; 0 means the archive is complete (and stays so)
 * @return 0; #EDB_CANCELED (closed from another thread, backup stopped or ended,
 *         env closing; also for a handle that is no longer open, which is
 *         looked up, never dereferenced); the copier's error (#EDB_IO,
 *         #EDB_CORRUPT, #EDB_NOMEM) once its bytes are drained, again on every
 *         later call; #EDB_INVAL (NULL arguments, @p size 0, or another thread
 *         already reading this stream).
 */
EDB_EXTERN int edb_backup_read(edb_backup_stream *s, void *buf, size_t size, size_t *nread);

/** Close a stream: returns at once; cancels its copier if not at its end.  NULL-safe;
 *  a stream already closed (by this call, edb_backup_end() or edb_env_close()) is ignored.
 *  It frees nothing large: the copier frees the stream's ring (and unmaps what it
 *  mapped) in its own thread, once a reader was given the end or the stream was
 *  canceled; close takes well under 1 ms in every state (`bench_backup states`). */
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
 * incremental backups it is an upper bound until the end; for low-pin backups it
 * is the size of one full pass, an estimate (later passes resend what changed).
 * @return 0, #EDB_INVAL.
 */
EDB_EXTERN int edb_backup_progress(edb_backup *bk, uint64_t *done, uint64_t *total);

/**
 * How long the backup has kept a snapshot of the database pinned.  While a
 * read transaction is held, LMDB cannot reuse the pages that writers free, so
 * the file grows by what they write: this is the number to watch.
 * A classic backup holds one snapshot from edb_backup_begin() until
 * edb_backup_end().  A low-pin backup (#EDB_BACKUP_LOW_PIN) holds its first
 * snapshot only during edb_backup_begin(), then short ones for one batch of
 * reads each, and a final one for one read-and-hash pass over the pages (the
 * archive's trailer records that one as `pin_us`).
 * @param[out] longest_us the longest time, in microseconds, one read transaction
 *             of this backup has been held (a transaction still held counts
 *             until now); may be NULL
 * @param[out] current_us how long the transaction held now has been held, 0 when
 *             none is; may be NULL
 * @return 0, #EDB_INVAL (@p bk is NULL or not an open backup).
 * Thread safety: any thread, as edb_backup_progress().
 */
EDB_EXTERN int edb_backup_pin_time(edb_backup *bk, uint64_t *longest_us, uint64_t *current_us);


/* ------------------------------------------------------------------------ */
/** @name Verify and restore
 * An archive chain is one full archive followed by the incremental archives
 * that build on it, in the order they were taken.  Archives are read front to
 * back exactly once, so a pipe works as well as a file.
 * @{ */

/** Where an archive comes from. */
typedef struct edb_backup_source {
    const char *path;   /**< archive file to open; NULL: read @c fd */
    int fd;             /**< with @c path NULL: read from this descriptor (file or pipe);
                             it is read to its end and left open */
    const char *name;   /**< name used in messages; NULL: @c path, or "fd N" */
    const uint8_t *key; /**< 32 bytes: the key of an encrypted archive (edb_backup_opts.encrypt_key),
                             else NULL.  An encrypted archive read without its key, or with
                             another one, is #EDB_AUTH before any frame is read; a frame that
                             fails authentication is #EDB_CHECKSUM naming its pages.
                             edb_backup_describe() needs no key */
} edb_backup_source;

/** One problem found by edb_backup_verify(). */
typedef struct edb_backup_problem {
    int code;            /**< #EDB_CORRUPT, #EDB_CHECKSUM, #EDB_VERSION, #EDB_CHAIN, #EDB_IO, ... */
    size_t archive;      /**< index of the archive in the list (0 = first) */
    const char *name;    /**< that archive's name */
    int64_t frame;       /**< frame index (0 = first frame), or -1 */
    int64_t pgno;        /**< page number, or -1 */
    int64_t offset;      /**< byte offset in the archive, or -1 */
    const char *message; /**< "EDB_NAME: what is wrong", valid during the call only */
} edb_backup_problem;

/** Receives each problem as verify finds it.  Must not call edb functions that
 *  could overwrite the thread's error detail before it has copied @c message. */
typedef void (*edb_backup_problem_fn)(void *ctx, const edb_backup_problem *p);

/** What an archive chain holds, filled on success. */
typedef struct edb_backup_info {
    size_t archives;     /**< archives read */
    uint32_t page_size;  /**< bytes per page */
    uint64_t npages;     /**< pages of the final snapshot (data.mdb is npages * page_size bytes) */
    uint64_t txnid;      /**< LMDB transaction id of the final snapshot */
    uint64_t frames;     /**< frames read, all archives */
    uint64_t pages;      /**< pages carried, all archives */
    uint64_t bytes;      /**< archive bytes read, all archives */
    uint64_t unchecked;  /**< page hash table entries that could not be proved (an incremental
                              verified without its base); 0 for a chain starting with a full */
    uint64_t created_us; /**< when the last archive's backup began (µs since the epoch) */
    unsigned flags;      /**< the last archive's EDB_BACKUP_* flags */
    uint8_t backup_id[16]; /**< the last archive's id */
} edb_backup_info;

/**
 * Check an archive, or a chain of archives, completely, without writing anything:
 * every block, every page against its hash, the trailer against the frames, the
 * page hash table against the restored pages (for an incremental alone, against
 * the pages it carries; in a chain, against its base too), the end block and the
 * links of the chain (doc/backup-format.md, "What a reader checks").
 * A chain may start with an incremental archive: its pages that only its base
 * can prove are counted in @c out->unchecked.
 *
 * Damaged pages are all reported; any other problem ends the check of the chain.
 * @param[out] out  filled on success; may be NULL
 * @param[in]  src  @p n archives in chain order
 * @param[in]  fn   called for every problem; may be NULL
 * @return 0 when everything checks; otherwise the first problem's code:
 *         #EDB_CORRUPT (structure, truncation, ranges), #EDB_CHECKSUM (a hash),
 *         #EDB_VERSION (a newer format), #EDB_CHAIN (a missing, repeated,
 *         reordered or foreign link), #EDB_NOTFOUND / #EDB_IO (cannot read),
 *         #EDB_NOMEM, #EDB_INVAL (bad arguments).  edb_error_last() names the
 *         archive, and the frame, page and byte offset where they apply.  The
 *         first problem is the first in archive order (a damaged page before a
 *         later structural problem), with the very code and detail that
 *         edb_backup_restore() reports for the same archives.
 * Thread safety: any thread; independent calls may run at once.  Reading an
 * archive that leaves out more than 16 MiB of (free) pages starts one helper
 * thread, joined before the archive's result is known (also on failure).
 */
EDB_EXTERN int edb_backup_verify(edb_backup_info *out, const edb_backup_source *src, size_t n,
                                 edb_backup_problem_fn fn, void *ctx);

#define EDB_RESTORE_FORCE 0x1u  /**< replace an existing, non-empty database directory */

/**
 * Restore a database from a full archive and the incrementals that follow it.
 *
 * The archives are read once, in order, into a new directory created beside
 * @p target (`.<name>.restore-XXXXXX`, mode 0700, `data.mdb` 0600 whatever the
 * umask, created with O_EXCL|O_NOFOLLOW); pages are written where they belong,
 * both meta pages are synthesised from the last trailer, the file gets its
 * exact size, and every page of it is proven to match the last archive's page
 * hash table: each page is hashed from the very bytes written (consecutive
 * pages of a frame go out in one write), the page each archive leaves alone
 * keeps the hash of what an earlier archive wrote or of zeros, and the result
 * is compared with the table (data.mdb is not read back).  Only then is the file fsynced, the directory
 * fsynced and renamed to @p target, and the parent directory fsynced.  On any
 * failure the temporary directory is removed and @p target is untouched: a
 * truncated, damaged or mislinked archive never puts anything in place.
 *
 * @p target may be absent or an empty directory.  A non-empty directory is
 * #EDB_EXISTS unless #EDB_RESTORE_FORCE, and then it is replaced only when it
 * holds nothing but `data.mdb` and `lock.mdb` and no process has it open (an
 * open-file-description lock on `lock.mdb` conflicts with every LMDB user);
 * the old directory is removed after the swap.  The new database keeps the
 * old `lock.mdb` (a hard link, emptied under that lock), so a process that
 * opened the old `lock.mdb` before the swap and locks it later locks the file
 * that guards the new `data.mdb` (and a later force restore sees it), and one
 * already waiting for LMDB's shared lock fails to open (EINVAL from LMDB)
 * instead of pairing the new `data.mdb` with a deleted lock file.  A killed
 * restore leaves its temporary directory (or the old database swapped out);
 * the next restore to the same target removes it, or
 * edb_backup_restore_sweep().  A symbolic link at @p target
 * or inside it is never followed and is refused.  Nothing is written outside
 * @p target's parent directory.  Do not restore over a database this process
 * has open itself (it is detected through /proc/self/maps where available and
 * refused with #EDB_BUSY).
 *
 * @param[out] out    filled on success; may be NULL
 * @param[in]  target database directory to create or replace
 * @param[in]  src    @p n archives: the full archive, then its incrementals in order
 * @param[in]  flags  0 or #EDB_RESTORE_FORCE
 * @return 0; the codes of edb_backup_verify(); #EDB_CHAIN (the first archive is
 *         incremental, or a link is missing, repeated, reordered or foreign;
 *         the message names the link); #EDB_EXISTS (target not empty, not a
 *         directory, a symbolic link, or not a database directory);
 *         #EDB_BUSY (a process has the target open); #EDB_NOTFOUND (the parent
 *         directory or an archive is missing); #EDB_FULL (no space left for
 *         data.mdb: ENOSPC or EDQUOT); #EDB_IO (other errors, with the errno);
 *         #EDB_INVAL.
 * Thread safety: any thread; two restores to the same target race on the final
 * rename and one of them fails with #EDB_EXISTS.  A helper thread as for
 * edb_backup_verify() (joined before this returns).
 */
EDB_EXTERN int edb_backup_restore(edb_backup_info *out, const char *target,
                                  const edb_backup_source *src, size_t n, unsigned flags);

/**
 * Remove what killed restores to @p target left beside it: the
 * `.<name>.restore-XXXXXX` directories that hold only the files a restore
 * makes (data.mdb, lock.mdb, its owner marker; or nothing) and whose locks are
 * all free, that is whose restore is dead and whose lock.mdb nobody has open.
 * A live restore's directory is never touched (it holds a lock on the
 * directory and on its marker for as long as it runs).  edb_backup_restore()
 * does the same before it starts; this is for a supervisor that killed one.
 *
 * @param[out] out    how many directories were removed; may be NULL
 * @param[in]  target the database directory of the restores
 * @return 0; #EDB_INVAL (no or a bad target); #EDB_NOTFOUND (no parent
 *         directory); #EDB_IO.
 * Thread safety: any thread, concurrently with restores.
 */
EDB_EXTERN int edb_backup_restore_sweep(unsigned *out, const char *target);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Writing archives @{ */

/** Called after each batch written: archive bytes written so far and the
 *  backup's total (see edb_backup_progress()). */
typedef void (*edb_backup_progress_fn)(void *ctx, uint64_t done, uint64_t total);

#define EDB_SAVE_OVERWRITE 0x1u  /**< edb_backup_save(): replace an existing regular file */

/**
 * Write the backup's whole archive to the file @p path, atomically and durably:
 * an unnamed file in @p path's directory (O_TMPFILE, mode 0600 whatever the
 * umask), written straight from the copier's ring (O_DIRECT where the file system
 * allows it), fsynced, linked as @p path, and the directory fsynced.  The final
 * name appears only when the archive is complete, and a process killed before
 * that leaves no file at all.  Where the file system or a missing /proc refuses
 * unnamed files, a hidden temporary file beside @p path is used instead (created
 * with O_EXCL|O_NOFOLLOW, renamed into place); a SIGKILL leaves that one behind.
 * On any error or cancellation nothing written is left and @p path is untouched.  Opens (and closes) one
 * stream of @p bk.
 * @param[in] flags    0 or #EDB_SAVE_OVERWRITE
 * @param[in] progress called after each batch (may be NULL)
 * @return 0; #EDB_EXISTS (@p path exists without #EDB_SAVE_OVERWRITE, or appeared
 *         meanwhile); #EDB_CANCELED (edb_backup_stop(), edb_env_close()); #EDB_FULL
 *         (no space: ENOSPC, EDQUOT); #EDB_IO (other errors, with the errno);
 *         #EDB_NOTFOUND (the directory is missing);
 *         #EDB_INVAL; the copier's errors.
 * Thread safety: as edb_backup_open(); blocks the calling thread until done;
 * cancel it from another thread with edb_backup_stop().
 */
EDB_EXTERN int edb_backup_save(edb_backup *bk, const char *path, unsigned flags,
                               edb_backup_progress_fn progress, void *ctx);

/**
 * Write the backup's whole archive to the open descriptor @p fd (a pipe, a socket,
 * standard output), written straight from the copier's ring.  SIGPIPE is blocked in
 * the calling thread while it writes (the process's disposition is not changed); a
 * reader that goes away is #EDB_IO "broken pipe".  The caller owns @p fd and decides
 * what a partial output means: the archive is complete only with its end block.
 *
 * Cancellable even when @p fd never drains: the writes are non-blocking and a write
 * that cannot proceed waits in poll() beside a wake-up descriptor of the stream, so
 * edb_backup_stop(), edb_backup_end() of @p bk or edb_env_close() from another thread
 * make this call return #EDB_CANCELED at once (tests measure under 100 ms; 0 ms on
 * an idle machine), after which it writes nothing more.  Its stream is closed, so
 * its copier and its hold on the snapshot go within one page batch; the snapshot
 * itself is released by edb_backup_end() (or env close), as for every backup.
 *
 * Descriptor flags: O_NONBLOCK is set on @p fd's open file description for the
 * call's duration and cleared again before it returns, when it was not set on
 * entry (a descriptor already non-blocking stays so).  The flag is shared by every
 * descriptor and process using that open file description (dup(), fork()): do not
 * use it elsewhere for blocking I/O during the call.  A regular file ignores the flag.
 * @return 0; #EDB_IO; #EDB_FULL (the descriptor's file system is full); #EDB_CANCELED;
 *         #EDB_INVAL (bad descriptor); the copier's errors.
 * Thread safety: as edb_backup_save().
 */
EDB_EXTERN int edb_backup_write_fd(edb_backup *bk, int fd, edb_backup_progress_fn progress, void *ctx);
/** @} */


/* ------------------------------------------------------------------------ */
/** @name Describing archives and manifests
 * A manifest is a small file holding an archive's identity and page hash
 * table (doc/backup-format.md, "Manifest"): what the next incremental backup
 * needs from its base, so the archive itself can live elsewhere (a pipe to
 * object storage).  #edb_backup_opts.base accepts a manifest or an archive.
 * @{ */

/** What one archive or manifest says about itself (edb_backup_describe()). */
typedef struct edb_backup_summary {
    uint8_t backup_id[16];  /**< the archive's id */
    uint8_t base_id[16];    /**< the base's id (incremental), else zero */
    unsigned flags;         /**< EDB_BACKUP_INCREMENTAL | EDB_BACKUP_KEEP_FREE | EDB_BACKUP_LOW_PIN */
    int manifest;           /**< 1: the file is a manifest, not an archive */
    int complete;           /**< 1: an archive whose end block is present and its archive hash
                                 matches; a manifest: always 1 */
    uint32_t page_size;     /**< bytes per page */
    uint64_t txnid;         /**< transaction of the snapshot the archive restores (incomplete:
                                 the trailer's when it was read, else the first snapshot's) */
    uint64_t npages;        /**< pages of that snapshot */
    uint64_t pages;         /**< pages the archive carries (incomplete: those read) */
    uint64_t frames;        /**< frames (incomplete: those read) */
    uint64_t bytes;         /**< the archive's length (for a manifest: the archive it describes;
                                 for an incomplete archive: the bytes present) */
    uint64_t created_us;    /**< when the backup began, µs since 1970-01-01T00:00:00Z */
    char problem[512];      /**< complete 0: why ("EDB_NAME: ..."), else empty */
    unsigned compress;      /**< #EDB_BACKUP_COMPRESS_ZSTD for a compressed archive (format
                                 version 3), else #EDB_BACKUP_COMPRESS_NONE (also for a
                                 manifest, which does not record it) */
    int compress_level;     /**< the level it was written with, 0 when not compressed */
    int encrypted;          /**< 1: frames are encrypted (the key is needed to verify or restore) */
    uint8_t key_id[16];     /**< encrypted: the id of its key (dbtool keygen prints it), else zero */
} edb_backup_summary;

/**
 * Describe an archive or a manifest from its blocks, without reading the
 * pages of its frames (a file is read with seeks; a pipe is read through).
 * The header, every frame header block, the trailer, the page hash table and
 * the end block are checked as a reader checks them and the archive hash is
 * computed; the pages are not hashed (edb_backup_verify() does that).  An
 * archive cut short or damaged after its header is not an error: it is
 * reported with @c complete 0 and @c problem saying where it stops.
 * @param[out] out filled on success
 * @param[in]  src one archive or manifest
 * @return 0; #EDB_CORRUPT / #EDB_CHECKSUM (the first block is neither a valid
 *         archive header nor a valid manifest); #EDB_VERSION (a newer format);
 *         #EDB_NOTFOUND; #EDB_IO; #EDB_NOMEM; #EDB_INVAL.
 * Thread safety: any thread; independent calls may run at once.
 */
EDB_EXTERN int edb_backup_describe(edb_backup_summary *out, const edb_backup_source *src);

/**
 * Write the manifest of the complete archive @p archive to @p path: read the
 * archive as edb_backup_describe() does (a pipe works), then write the
 * manifest to a hidden temporary file beside @p path (mode 0600, created with
 * O_EXCL|O_NOFOLLOW), fsync it, rename it to @p path and fsync the directory,
 * so a file named @p path is always a complete manifest.
 * @param[in] flags 0 or #EDB_SAVE_OVERWRITE (replace an existing regular file)
 * @return 0; #EDB_CORRUPT / #EDB_CHECKSUM (the archive is incomplete or
 *         damaged: nothing is written); #EDB_EXISTS (@p path exists without
 *         #EDB_SAVE_OVERWRITE, or is not a regular file); #EDB_VERSION;
 *         #EDB_NOTFOUND; #EDB_IO; #EDB_NOMEM; #EDB_INVAL.
 * Thread safety: any thread; two writers of one @p path: the last rename wins.
 */
EDB_EXTERN int edb_backup_manifest_write(const edb_backup_source *archive, const char *path,
                                         unsigned flags);

/**
 * Merge a chain (a full archive, then its incrementals in order) into one new
 * full archive at @p path that restores, byte for byte, what restoring the
 * chain restores: the same snapshot (transaction, meta, page hash table, and
 * the last archive's creation time), a new backup id, no flags.  The archives
 * are not restored: their blocks are read and checked (every block, each
 * archive hash, each link of the chain as edb_backup_restore() checks it),
 * then for each page the archive that holds its restored content is read and
 * the page is checked against the last archive's page hash table.  The output
 * is written to a hidden temporary file beside @p path, fsynced, renamed and
 * its directory fsynced; on any failure nothing is left.
 * @param[out] out  the merged archive (archives = @p n, bytes = its length,
 *                  backup_id = its new id); may be NULL
 * @param[in]  src  @p n archives; each must be a regular file (read by offset)
 * @param[in]  flags 0 or #EDB_SAVE_OVERWRITE
 * @return 0; #EDB_CHAIN (the first archive is incremental, or a link is
 *         missing, repeated, reordered or foreign); #EDB_CORRUPT /
 *         #EDB_CHECKSUM / #EDB_VERSION (a damaged or interrupted archive;
 *         the message names it); #EDB_EXISTS (@p path exists without
 *         #EDB_SAVE_OVERWRITE); #EDB_INVAL (an archive that is not a regular
 *         file, bad arguments); #EDB_NOTFOUND; #EDB_IO; #EDB_NOMEM.
 * Thread safety: any thread; independent calls may run at once.
 */
EDB_EXTERN int edb_backup_merge(edb_backup_info *out, const char *path, const edb_backup_source *src,
                                size_t n, unsigned flags);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* EDB_BACKUP_H */

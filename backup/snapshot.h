/*
 * snapshot.h: one consistent snapshot of an LMDB environment for backup: a read
 * transaction that pins the pages, the meta page it sees, and the pages on
 * its freelist (DESIGN.md "Hot backup", Snapshot).
 *
 * A snapshot is immutable after edb__snap_take() and edb__snap_plan() (only
 * `ref` and `pin_us` change), so copiers read it without locks.  It is
 * reference counted: the backup holds one reference until edb_backup_end(),
 * each copier one until it exits.  The last put aborts the read transaction
 * (any thread may: the env is MDB_NOTLS), closes the file and frees.
 *
 * edb_env_close() relies on this: every reference is dropped before the env's
 * backup shutdown returns, so no read transaction outlives mdb_env_close().
 */
#ifndef EDB_SNAPSHOT_H
#define EDB_SNAPSHOT_H

#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "archive.h"
#include "env.h"
#include "ref.h"

/* What every stream of one backup writes identically (the archive header and
 * the backup-wide options).  Filled by the backup before any copier starts. */
typedef struct edb__plan {
    unsigned flags;                 /* EDB_BACKUP_* */
    uint8_t backup_id[16];
    uint64_t created_us;            /* CLOCK_REALTIME at edb_backup_begin() */
    uint8_t base_id[16];            /* incremental only */
    edb__arch_hash base_hash;
    uint64_t base_npages;
    edb__arch_hash *base_table;     /* base_npages entries (incremental), owned */
    uint64_t rate_limit;            /* bytes per second, 0 = unlimited */
    size_t ring_size;               /* bytes, 0 = default */
    unsigned codec;                 /* EDB__ARCH_CODEC_* */
    unsigned codec_level;           /* 1 ..= 22 when codec is set */
    unsigned cipher;                /* EDB__ARCH_CIPHER_* */
    uint8_t key[32];                /* cipher: the key (copied from the options) */
    uint8_t key_id[16];
    unsigned codec_threads;         /* compressing threads, the copier's included (0, 1: one) */
} edb__plan;

typedef struct edb__snap {
    edb__ref ref;
    MDB_env *mdb;
    MDB_txn *txn;                   /* read txn pinning pages 2..npages-1 */
    int fd;                         /* data.mdb, O_RDONLY, for pread */
    uint32_t page_size;
    uint64_t txnid;                 /* == the meta's txnid == mdb_txn_id(txn) */
    uint64_t npages;                /* meta last_pg + 1 */
    uint64_t max_pages;             /* map size / page size (>= npages) */
    uint8_t meta[EDB__ARCH_META_SIZE];  /* bytes 0..255 of the snapshot's meta page */
    uint64_t *free_bits;            /* bit p: page p is on the freelist; NULL = copy every page */
    uint64_t nfree;                 /* bits set */
    uint64_t pin_start_ns;          /* CLOCK_MONOTONIC when the read txn was (re)begun */
    /* Microseconds the snapshot had been held when the first copier finished
     * reading pages: written once (compare-exchange from UINT64_MAX), then
     * every stream's trailer carries the same value, so streams stay
     * byte-identical. */
    _Atomic uint64_t pin_us;
    /* Pin accounting for edb_backup_pin_time(): the longest interval a read
     * txn of this backup was held, and since when the one held now is
     * (CLOCK_MONOTONIC ns, 0 = none).  A classic backup holds this snapshot's
     * txn from edb__snap_take() to the last put; a low-pin backup's copier
     * accounts its own short and final snapshots here (lowpin.h). */
    _Atomic uint64_t pin_max_us;
    _Atomic uint64_t pin_since_ns;
    _Atomic unsigned lp_streams;    /* low-pin: streams opened (one is allowed) */
    edb_env *env;                   /* for the low-pin copier's own snapshots */
    edb__plan plan;
} edb__snap;

/*
 * Take a snapshot of env's current state: begin a read txn, read meta pages 0
 * and 1 from data.mdb with pread, take the one whose txnid is the txn's (else
 * renew the txn and retry), check it against the txn's view of both trees,
 * and collect the freelist (unless keep_free).  Never begins a write txn and
 * never takes LMDB's writer lock.
 * @return 0; EDB_LIMIT (no reader slot); EDB_CORRUPT (not an LMDB meta);
 *         EDB_BUSY (writers raced every attempt); EDB_IO; EDB_NOMEM.
 */
int edb__snap_take(edb__snap **out, edb_env *env, bool keep_free);

static inline void
edb__snap_get(edb__snap *s)
{
    edb__ref_get(&s->ref);
}

/* Drop a reference; the last one aborts the read txn, closes data.mdb, frees. */
void edb__snap_put(edb__snap *s);

static inline bool
edb__snap_is_free(const edb__snap *s, uint64_t pgno)
{
    return s->free_bits != NULL && (s->free_bits[pgno >> 6] >> (pgno & 63)) & 1u;
}

/* Low-pin: end the read txn now (the snapshot keeps its meta, page size and
 * file); the pin interval so far is accounted.  Call before any copier uses s. */
void edb__snap_unpin(edb__snap *s);
/* Record a pin interval of @ns nanoseconds into s->pin_max_us. */
void edb__snap_pin_account(edb__snap *s, uint64_t ns);

/* Pages a full copy of this snapshot writes (2..npages-1 minus free pages). */
uint64_t edb__snap_copy_pages(const edb__snap *s);

uint64_t edb__now_ns(void);         /* CLOCK_MONOTONIC */
uint64_t edb__now_real_us(void);    /* CLOCK_REALTIME */

#endif

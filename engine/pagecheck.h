/*
 * pagecheck.h: the structural half of edb_env_check(): a walk over LMDB's
 * B-tree pages of one read snapshot, read with pread() from data.mdb (so a
 * file shorter than its metas claim is reported, not a SIGBUS).
 */
#ifndef EDB_PAGECHECK_H
#define EDB_PAGECHECK_H

#include <lmdb.h>
#include <stdint.h>

#include "edb.h"

typedef struct edb__pagecheck_stat {
    uint32_t page_size;
    uint64_t txnid;        /* snapshot walked */
    uint64_t last_pg;      /* from the snapshot's meta */
    uint64_t reachable;    /* pages reachable from the roots (trees + overflow) */
    uint64_t free;         /* pages listed in FREE_DBI */
    uint64_t leaked;       /* pages 2..last_pg neither reachable nor free */
    uint64_t trees;        /* B-trees walked (free, main, named, dup sub-trees) */
} edb__pagecheck_stat;

/*
 * Walk every tree of a read snapshot of @p mdb: each page reachable once and
 * not past last_pg, page headers consistent with their position, node offsets
 * inside their page, keys in order within a page and within the bounds its
 * parent gives, depth and page/entry counts equal to the MDB_db records,
 * overflow runs the right length, free pages (FREE_DBI) not also reachable,
 * and reachable + free + 2 meta pages == last_pg + 1 (the rest are reported as
 * leaked).  Each problem is passed to @p fn (may be NULL) with EDB_CORRUPT and
 * counted in *problems.  Never blocks writers.  @p txn: the read txn whose
 * snapshot to walk (the caller's, so that other checks see the same one); NULL:
 * an own read txn, renewed until the meta page it reads is the snapshot's.  With
 * a caller's txn whose meta page writers have already overwritten (two commits
 * since it began), returns EDB_BUSY at once: begin a new txn and call again.
 * @return 0 (the walk finished: look at *problems), EDB_IO, EDB_NOMEM, EDB_BUSY
 *         (no stable meta after many retries), EDB_VERSION (not an LMDB file).
 */
int edb__check_pages(edb__pagecheck_stat *out, uint64_t *problems, MDB_env *mdb, MDB_txn *txn,
                     edb_check_fn fn, void *ctx);

#endif

/*
 * undo.h: nested transaction levels as savepoints inside one LMDB write
 * transaction (ESE's model), and the logged writes that make them work.
 *
 * Only the outermost level of a write transaction is an LMDB transaction.
 * While a session has nested levels, every write the engine makes to an LMDB
 * database (edb.catalog, edb.records, edb.index) goes through
 * edb__undo_put / edb__undo_del / edb__undo_cursor_del, which first append an
 * undo record to the session's log: the database, the key and the value the
 * key had before (or "absent").  Each nested level remembers where the log
 * stood when it began (a mark):
 *   - rolling a level back replays its records newest first (a key that was
 *     absent is deleted, any other gets its old value back) and truncates
 *     the log to the mark;
 *   - committing a level keeps its records, which now belong to the parent
 *     (a later rollback of the parent undoes them too); committing the last
 *     nested level (back to depth 1) empties the log: the outermost level's
 *     rollback is an LMDB abort.
 * Nothing is written to the log at depth 1 or in an implicit transaction, so
 * a plain transaction pays one pointer test per write.
 *
 * The log is in memory only (nothing on disk changes).  A record is written
 * before the change it undoes, and removed again when the change then fails,
 * so a failed allocation (EDB_NOMEM) leaves the database and the log
 * unchanged.  A replay that LMDB refuses (its transaction broke: map full,
 * I/O) returns the LMDB code; the caller then fails the whole transaction.
 *
 * Which log a write belongs to is found from the MDB_txn: the env's LMDB
 * user context is its catalog (edb__catalog), whose `undo` field points at
 * the log of the session whose write transaction has nested levels.  LMDB
 * allows one write transaction per env at a time, so at most one log is
 * active per env, and only the thread that holds the write transaction reads
 * or writes the field.
 *
 * Thread safety: as the session that owns the log.
 */
#ifndef EDB_UNDO_H
#define EDB_UNDO_H

#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct edb__undo {
    MDB_txn *txn;           /* the LMDB txn whose writes are logged (NULL: none) */
    unsigned char *buf;     /* records, oldest first (undo.c documents the layout) */
    size_t len, cap;
    size_t nrec;            /* records in buf */
} edb__undo;

/* Start logging the writes of @txn into @u (the session's log, empty), and
 * make it the env's active log.  Stop: make no log active and empty @u. */
void edb__undo_start(edb__undo *u, MDB_env *env, MDB_txn *txn);
void edb__undo_stop(edb__undo *u, MDB_env *env);
/* Undo the records after @mark, newest first, and truncate the log to @mark.
 * 0, or the LMDB code of the write that failed (the log is truncated anyway:
 * the transaction must then be aborted). */
int edb__undo_rollback(edb__undo *u, size_t mark);
/* The log's current end, for a later edb__undo_rollback. */
static inline size_t
edb__undo_mark(const edb__undo *u)
{
    return u->len;
}
/* Free the log's memory (session release). */
void edb__undo_free(edb__undo *u);

/* mdb_put, mdb_del and mdb_cursor_del, logged when @txn has an active log.
 * Same arguments and return codes as LMDB's (ENOMEM when the log cannot
 * grow: nothing was written).  Only the flags 0 and MDB_NOOVERWRITE are
 * accepted by edb__undo_put (the databases are not DUPSORT).  Inline: with
 * no log active in the process (edb__undo_nactive, relaxed: a log is started
 * and used by the thread that holds its env's write txn; another env's
 * count only sends a write to the exact check) a write is LMDB's call. */
extern atomic_int edb__undo_nactive;
int edb__undo_put_slow(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags);
int edb__undo_del_slow(MDB_txn *txn, MDB_dbi dbi, MDB_val *key);
int edb__undo_cursor_del_slow(MDB_cursor *mc);

static inline int
edb__undo_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags)
{
    if (atomic_load_explicit(&edb__undo_nactive, memory_order_relaxed) == 0)
        return mdb_put(txn, dbi, key, data, flags);
    return edb__undo_put_slow(txn, dbi, key, data, flags);
}

static inline int
edb__undo_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key)
{
    if (atomic_load_explicit(&edb__undo_nactive, memory_order_relaxed) == 0)
        return mdb_del(txn, dbi, key, NULL);
    return edb__undo_del_slow(txn, dbi, key);
}

static inline int
edb__undo_cursor_del(MDB_cursor *mc)
{
    if (atomic_load_explicit(&edb__undo_nactive, memory_order_relaxed) == 0)
        return mdb_cursor_del(mc, 0);
    return edb__undo_cursor_del_slow(mc);
}

#endif

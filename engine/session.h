/*
 * session.h: the session's private body and the transaction helpers every
 * data call uses (implemented in session.c and txn.c).
 *
 * A session holds a stack of levels: txn[0] is the LMDB transaction of the
 * outermost level the caller began, txn[depth-1] the innermost level's (the
 * same LMDB txn: nested levels are savepoints, undo.h).  Calls made with depth == 0 run
 * in an implicit transaction of their own (edb__txn_enter / edb__txn_leave).
 *
 * Cursors never trust an MDB_cursor across a change of the session's
 * transaction: every MDB_txn the session uses gets an id unique within the
 * session (edb__txn_id), write_seq counts writes, and a cursor whose
 * remembered values differ re-opens its LMDB cursor (an LMDB cursor of a write
 * txn dies with it; the same pointer value may come back for the next txn, so
 * ids, not pointers, are compared) and re-finds its entry by key.  A cursor's
 * position is kept across every transaction boundary (ESE currency: cursor.h).
 */
#ifndef EDB_SESSION_H
#define EDB_SESSION_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "edb.h"
#include "env.h"
#include "undo.h"

struct edb_cursor;

struct edb_session {
    edb_env *env;
    struct edb_session *prev, *next;   /* env->sessions list, guarded by env->sess_lock */
    struct edb_session *tl_next;       /* this thread's write-txn holders (txn.c) */

    MDB_txn *txn[EDB_TXN_MAX_DEPTH + 1];
    int depth;                         /* explicit levels */
    bool rdonly;                       /* the explicit transaction is read-only */
    bool implicit;                     /* an implicit transaction is active (depth 0) */
    bool implicit_write;
    MDB_txn *imp_txn;

    uint64_t next_id;                  /* source of txn ids, unique within the session */
    uint64_t level_id[EDB_TXN_MAX_DEPTH]; /* id of each level's MDB_txn (read-only levels share) */
    uint64_t imp_id;                   /* id of the implicit txn */
    uint64_t cur_id;                   /* edb__txn_id: kept by txn.c whenever a level or
                                          the implicit txn begins or ends */
    uint64_t write_seq;                /* bumped on every write through this session */
    uint64_t schema_seq;               /* bumped by every schema change through this session */

    struct edb_cursor *cursors;        /* open cursors, linked through c->next */

    /* Nested levels of a write transaction are savepoints in txn[0] (undo.h):
     * txn[i] == txn[0] and level_id[i] == level_id[0] for every level; the
     * undo log is active while depth > 1; undo_mark[i] is the log's end when
     * level i (i >= 1) began.  child_mark: where an edb__txn_child_begin that
     * made no LMDB child began (child_sp: one is open). */
    edb__undo undo;
    size_t undo_mark[EDB_TXN_MAX_DEPTH];
    size_t child_mark;
    bool child_sp;

    /* Row-count changes not yet written to the catalog (edb__rows_add), each
     * labelled with the level that made it (0: the implicit txn); a nested
     * commit relabels its notes to the parent, a rollback drops its level's
     * and deeper ones, the top-level commit writes them (catalog.c).
     * erased: the range was deleted at that level (a drop): its notes are
     * not written. */
    struct edb__rows_delta { uint32_t kid; int depth; bool erased; int64_t delta; } *rows_pend;
    size_t rows_npend, rows_cap;

    /* Closers in any order (SQLite's sqlite3_close_v2 zombies).  dead: the
     * session was ended by edb_session_end or killed by edb_env_close: its
     * transactions are rolled back, it is off env->sessions, and every call
     * on it or on its cursors returns EDB_CLOSED.  ended: edb_session_end was
     * called.  The body is freed once it is ended and its last cursor is
     * closed (cursors of a dead session are zombies that only their closer
     * frees); it holds a reference on the env body until then. */
    bool dead;
    bool ended;

    /* The thread that began the explicit write transaction (valid while
     * depth > 0 && !rdonly): LMDB's writer lock belongs to it, so begin,
     * commit and rollback from any other thread are refused (txn.c). */
    pthread_t owner;

    /* A write of the explicit transaction failed after it had begun changing
     * the database (LMDB map full, I/O), or LMDB refuses the transaction: the
     * innermost level (failed_depth == depth) can only be rolled back.  0 when
     * the transaction is sound.  fail_msg: the detail of the original error. */
    int failed;
    int failed_depth;
    char fail_msg[256];
};

/* The transaction a data call runs in.  With an explicit transaction it is the
 * innermost level (EDB_READONLY when @write and the transaction is read-only);
 * otherwise an implicit one is begun.  Every successful enter is paired with
 * one edb__txn_leave(s, rc): rc >= 0 commits an implicit txn, rc < 0 aborts
 * it; with an explicit transaction leave does nothing.  Returns rc, or the
 * commit's error. */
static inline int edb__txn_enter(edb_session *s, bool write, MDB_txn **out);
static inline int edb__txn_leave(edb_session *s, int rc);
/* The general paths of the two (txn.c); the inline versions below serve the
 * common cases (an explicit transaction that can serve the call; a call that
 * succeeded in one) without a function call. */
int edb__txn_enter_slow(edb_session *s, bool write, MDB_txn **out);
int edb__txn_leave_slow(edb_session *s, int rc);

/* A write failed after the first change was made: mark the session's
 * explicit transaction failed (see `failed` above) and return @rc.  In an
 * implicit transaction nothing is marked: edb__txn_leave aborts it whole. */
int edb__txn_fail(edb_session *s, int rc);

/* Begin an LMDB child of @parent for an all-or-nothing multi-DB write that
 * cannot be validated before it writes (index creation, schema.c).  A child
 * costs O(open DBs) and a dirty list of megabytes: row writes never use one
 * (update.c plans, then writes; explicit nested levels are the caller's).  No
 * cursor of the session is used while it is open; ending it bumps write_seq
 * so cursors re-find their entries.  Inside an implicit transaction the
 * implicit transaction itself is the unit (it is aborted whole on error), so
 * @out is @parent and no child is made; inside a nested (savepoint) level the
 * undo log is (a mark, replayed back to when @rc < 0), so neither. */
int edb__txn_child_begin(edb_session *s, MDB_txn *parent, MDB_txn **out);
int edb__txn_child_end(edb_session *s, MDB_txn *child, int rc);

/* Id of the session's current innermost MDB_txn (0: none). */
static inline uint64_t
edb__txn_id(const edb_session *s)
{
    return s->cur_id;
}

static inline int
edb__txn_enter(edb_session *s, bool write, MDB_txn **out)
{
    if (s->depth > 0 && s->failed == 0 && !(write && s->rdonly)) {
        *out = s->txn[s->depth - 1];
        return 0;
    }
    return edb__txn_enter_slow(s, write, out);
}

static inline int
edb__txn_leave(edb_session *s, int rc)
{
    if (rc >= 0 && !s->implicit)
        return rc;
    return edb__txn_leave_slow(s, rc);
}

/* Check a session argument (NULL: EDB_INVAL; dead: EDB_CLOSED); sets the
 * error detail. */
int edb__session_check(edb_session *s, const char *fn);
/* The EDB_CLOSED error of a call on dead session @s (or on one of its cursors). */
int edb__session_closed_err(const edb_session *s, const char *fn);

/* Link / unlink a cursor into its session (cursor.c). */
void edb__session_add_cursor(edb_session *s, struct edb_cursor *c);
void edb__session_remove_cursor(edb_session *s, struct edb_cursor *c);
/* Cancel prepared updates on every cursor of the session (cursor.c). */
void edb__session_cancel_updates(edb_session *s);
/* Turn every cursor of the session into a zombie: its prepared update is
 * cancelled and its LMDB cursor released (before the session's transactions
 * end); the cursor stays allocated and linked until edb_cursor_close
 * (cursor.c). */
void edb__session_zombie_cursors(edb_session *s);
/* Free a dead session's body once it is ended and has no cursors left. */
void edb__session_release(edb_session *s);
/* Make @s dead: zombie its cursors, roll back its transaction, take it off
 * the env's list (session_end and env close).  No-op when already dead. */
void edb__session_kill(edb_session *s);
/* Drop a reference on the env body (env.c); the last frees it. */
void edb__env_put(edb_env *env);

/* Abort every level of the session's transaction (used by end and env close). */
void edb__txn_abort_all(edb_session *s);

/* Note a row-count change of range @kid (catalog.h, "Row counts").  An
 * insert loop adds to one of the last two notes (the table's and an
 * index's), found here without a call; anything else is catalog.c's
 * edb__rows_add_slow, which looks at the last few and appends.  Both merge
 * into the newest note of the same id and level that is not an erasure. */
int edb__rows_add_slow(edb_session *s, uint32_t kid, int64_t delta);
static inline int
edb__rows_add(edb_session *s, uint32_t kid, int64_t delta)
{
    if (delta == 0)
        return 0;
    size_t n = s->rows_npend;
    for (size_t i = n; i > 0 && i + 2 > n; i--) {
        struct edb__rows_delta *e = &s->rows_pend[i - 1];
        if (e->kid == kid && e->depth == s->depth && !e->erased) {
            e->delta += delta;
            return 0;
        }
    }
    return edb__rows_add_slow(s, kid, delta);
}

#endif

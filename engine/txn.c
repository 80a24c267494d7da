/*
 * txn.c: transactions of a session.
 *
 * Levels: txn[0..depth) are the explicit levels.  A write transaction's
 * nested levels are savepoints inside its one LMDB transaction (ESE's model,
 * undo.h): beginning one only marks the session's undo log, every write made
 * while one is open logs the key's old value first, rolling a level back
 * replays its records newest first, committing one hands them to its parent
 * (the last nested commit drops them).  An LMDB nested transaction would copy
 * LMDB's per-database state and dirty list at every begin and commit; a
 * savepoint costs a few stores, and a logged write one extra descent only
 * when it overwrites or deletes.  A read-only transaction's nested levels
 * share its one LMDB read transaction (LMDB cannot nest reads), so rolling
 * one back has nothing to undo.  Without an explicit transaction a data call
 * runs in an implicit one (edb__txn_enter/leave).
 *
 * Self-deadlock: LMDB has one writer mutex per database.  A thread that holds
 * the write transaction through one session and begins another write
 * transaction through a second session of the same env would wait for itself
 * forever.  Each thread therefore keeps a small list of (env uid, session)
 * pairs for which it holds the writer; such a begin returns EDB_BUSY.  The
 * list holds values only (never dereferenced), so a session ended from
 * another thread cannot leave a dangling pointer behind; env uids are never
 * reused within a process.
 *
 * Failed transactions.  A data call validates everything that can fail for a
 * caller's reason before its first write (update.c), so a write that fails
 * after that fails for a reason that breaks the LMDB transaction itself (map
 * full, I/O: LMDB then refuses the txn until it is aborted).  The innermost
 * explicit level is then marked failed (s->failed, the original code and
 * detail): every later call on the session returns that error naming the
 * cause, commit rolls the level back and returns it, rollback clears it.  The
 * levels around it are intact (the level's undo records take its writes
 * back) and usable again once it is rolled back, unless LMDB itself refuses
 * the transaction (map full, I/O, a damaged page): the levels share one LMDB
 * transaction, so the whole of it is then failed (failed_depth 1) until its
 * outermost level ends.  Besides the explicit marks
 * (edb__txn_fail), edb__txn_leave asks LMDB whether a failed call left the
 * txn refused, which covers every other writer (schema changes) and reads
 * that met a damaged page (LMDB refuses a read-only txn after
 * MDB_PAGE_NOTFOUND or MDB_CORRUPTED too).  A read-only transaction's levels
 * share one LMDB txn: the whole of it is failed until its outermost level
 * ends.
 *
 * Owner thread.  LMDB's writer lock is a mutex of the thread that began the
 * write transaction; committing or aborting from another thread cannot
 * unlock it (the commit "succeeds" and every later writer waits forever).
 * The session remembers that thread (s->owner) and refuses edb_txn_begin,
 * commit and rollback of its explicit write transaction from any other with
 * EDB_BUSY, leaving the transaction as it was for its owner.
 *
 * Thread safety: as the session (one thread at a time); a write transaction
 * is ended by the thread that began it (checked).
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "error.h"
#include "session.h"

#define TL_MAX 32
static _Thread_local struct { uint64_t env_uid; const edb_session *s; } tl_writers[TL_MAX];
static _Thread_local int tl_nwriters;

static uint64_t
env_uid(const edb_session *s)
{
    return edb__cat(s->env)->uid;
}

static int
writer_check(edb_session *s)
{
    uint64_t uid = env_uid(s);
    for (int i = 0; i < tl_nwriters; i++)
        if (tl_writers[i].env_uid == uid && tl_writers[i].s != s)
            return edb__err(EDB_BUSY, "this thread already holds the write transaction of '%s' "
                            "through another session", s->env->path);
    if (tl_nwriters == TL_MAX)
        return edb__err(EDB_LIMIT, "this thread holds %d write transactions", TL_MAX);
    return 0;
}

static void
writer_push(edb_session *s)
{
    tl_writers[tl_nwriters].env_uid = env_uid(s);
    tl_writers[tl_nwriters].s = s;
    tl_nwriters++;
}

static void
writer_pop(edb_session *s)
{
    for (int i = 0; i < tl_nwriters; i++)
        if (tl_writers[i].s == s) {
            tl_writers[i] = tl_writers[--tl_nwriters];
            return;
        }
}

/* Did LMDB mark the innermost explicit level as one that must abort?  A read
 * of the catalog answers: LMDB refuses any operation on such a txn. */
static bool
lmdb_refuses(edb_session *s)
{
    MDB_val k = { 7, (void *)"\0format" }, v;
    return edb__mdb_is_bad_txn(mdb_get(s->txn[s->depth - 1], edb__cat(s->env)->cat, &k, &v));
}

int
edb__txn_fail(edb_session *s, int rc)
{
    if (rc >= 0 || s->implicit || s->depth == 0 || s->failed != 0)
        return rc;
    s->failed = rc;
    /* The levels of a read-only transaction share one LMDB txn, and so do
     * the savepoint levels of a write transaction: when LMDB refuses it, only
     * ending the outermost level ends the refusal.  A failure LMDB does not
     * share (the undo log's memory) fails the innermost level alone. */
    s->failed_depth = s->rdonly || (s->depth > 1 && lmdb_refuses(s)) ? 1 : s->depth;
    snprintf(s->fail_msg, sizeof s->fail_msg, "%s", edb_error_last());
    return rc;
}

/* The error every call on a failed transaction returns. */
static int
failed_err(const edb_session *s, const char *fn)
{
    return edb__err(s->failed, "%s: the transaction failed and must be rolled back (%s)", fn,
                    s->fail_msg);
}

/* EDB_BUSY when the session's explicit write transaction belongs to another
 * thread (see "Owner thread" above). */
static int
owner_check(const edb_session *s, const char *fn)
{
    if (s->depth > 0 && !s->rdonly && !pthread_equal(s->owner, pthread_self()))
        return edb__err(EDB_BUSY, "%s: the session's write transaction belongs to the thread "
                        "that began it; only that thread may begin, commit or roll back "
                        "its levels", fn);
    return 0;
}

/* Recompute s->cur_id after the levels or the implicit txn changed. */
static void
sync_id(edb_session *s)
{
    if (s->implicit)
        s->cur_id = s->imp_id;
    else
        s->cur_id = s->depth > 0 ? s->level_id[s->depth - 1] : 0;
}

/* Begin a top-level LMDB transaction for the session. */
static int
begin_top(edb_session *s, bool write, MDB_txn **out)
{
    *out = NULL;
    if (write) {
        if (s->env->flags & EDB_ENV_READONLY)
            return edb__err(EDB_READONLY, "'%s' is open read-only", s->env->path);
        EDB_RET(writer_check(s));
    } else {
        return edb__ro_begin(s->env, out);
    }
    int rc = mdb_txn_begin(s->env->mdb, NULL, 0, out);
    if (rc != 0) {
        *out = NULL;
        return edb__mdb_err(rc, "begin transaction");
    }
    writer_push(s);
    return 0;
}

int
edb_txn_begin(edb_session *s, unsigned flags)
{
    EDB_RET(edb__session_check(s, "edb_txn_begin"));
    if (flags & ~EDB_TXN_READONLY)
        return edb__err(EDB_INVAL, "edb_txn_begin: unknown flags 0x%x", flags);
    if (s->implicit)
        return edb__err(EDB_INVAL, "edb_txn_begin: called inside an operation");
    EDB_RET(owner_check(s, "edb_txn_begin"));
    if (s->failed != 0)
        return failed_err(s, "edb_txn_begin");
    if (s->depth == EDB_TXN_MAX_DEPTH)
        return edb__err(EDB_TXNDEPTH, "edb_txn_begin: %d levels already", EDB_TXN_MAX_DEPTH);
    bool ro = (flags & EDB_TXN_READONLY) != 0;
    if (s->depth == 0) {
        MDB_txn *txn;
        EDB_RET(begin_top(s, !ro, &txn));
        s->txn[0] = txn;
        s->rdonly = ro;
        s->owner = pthread_self();
        s->level_id[0] = ++s->next_id;
    } else if (s->rdonly) {
        s->txn[s->depth] = s->txn[s->depth - 1];
        s->level_id[s->depth] = s->level_id[s->depth - 1];
    } else {
        if (ro)
            return edb__err(EDB_INVAL, "edb_txn_begin: a read-only level inside a write transaction");
        /* a savepoint: the same LMDB txn, a mark in the undo log */
        if (s->depth == 1)
            edb__undo_start(&s->undo, s->env->mdb, s->txn[0]);
        s->undo_mark[s->depth] = edb__undo_mark(&s->undo);
        s->txn[s->depth] = s->txn[0];
        s->level_id[s->depth] = s->level_id[0];
    }
    s->depth++;
    sync_id(s);
    edb__err_clear();
    return 0;
}

/* Drop the innermost level; commit it when @commit.  Returns the commit's error. */
static int
end_level(edb_session *s, bool commit)
{
    int d = s->depth - 1;
    MDB_txn *txn = s->txn[d];
    int rc = 0;
    edb__session_cancel_updates(s);
    s->txn[d] = NULL;
    s->depth = d;
    sync_id(s);
    if (s->failed != 0 && d < s->failed_depth) {
        s->failed = 0;
        s->failed_depth = 0;
        s->fail_msg[0] = '\0';
    }
    if (s->rdonly) {
        if (d == 0)
            edb__ro_end(s->env, txn);
    } else if (d > 0) {
        /* a savepoint: a commit leaves its undo records to the parent and
         * its row-count notes too (catalog.h); a rollback replays them */
        if (!commit) {
            int urc = edb__undo_rollback(&s->undo, s->undo_mark[d]);
            s->schema_seq++;        /* cursors reload schemas the undo changed */
            if (urc != 0 && s->failed == 0) {
                rc = edb__mdb_err_env(urc, s->env->mdb, "roll back a nested level");
                s->failed = rc;
                s->failed_depth = 1;
                snprintf(s->fail_msg, sizeof s->fail_msg, "%s", edb_error_last());
            }
        }
        edb__rows_level_end(s, d + 1, commit);
        if (d == 1)
            edb__undo_stop(&s->undo, s->env->mdb);
    } else if (commit) {
        /* row-count notes: the top level writes them (catalog.h) */
        rc = edb__rows_flush(s, txn);
        if (rc < 0) {
            mdb_txn_abort(txn);
        } else {
            rc = mdb_txn_commit(txn);
            rc = rc == 0 ? 0 : edb__mdb_err_env(rc, s->env->mdb, "commit");
        }
    } else {
        edb__rows_drop(s);
        mdb_txn_abort(txn);
    }
    if (d == 0) {
        if (!s->rdonly)
            writer_pop(s);
        s->rdonly = false;
    }
    s->write_seq++;
    return rc;
}

int
edb_txn_commit(edb_session *s)
{
    EDB_RET(edb__session_check(s, "edb_txn_commit"));
    if (s->depth == 0)
        return edb__err(EDB_NOTXN, "edb_txn_commit: no transaction is active");
    EDB_RET(owner_check(s, "edb_txn_commit"));
    if (s->failed != 0) {
        /* LMDB cannot commit it; keep the cause for the message */
        int rc = s->failed;
        char msg[sizeof s->fail_msg];
        memcpy(msg, s->fail_msg, sizeof msg);
        end_level(s, false);
        return edb__err(rc, "edb_txn_commit: the transaction was rolled back: it had failed (%s)",
                        msg);
    }
    EDB_RET(end_level(s, true));
    edb__err_clear();
    return 0;
}

int
edb_txn_rollback(edb_session *s)
{
    EDB_RET(edb__session_check(s, "edb_txn_rollback"));
    if (s->depth == 0)
        return edb__err(EDB_NOTXN, "edb_txn_rollback: no transaction is active");
    EDB_RET(owner_check(s, "edb_txn_rollback"));
    EDB_RET(end_level(s, false));
    edb__err_clear();
    return 0;
}

int
edb_txn_depth(edb_session *s)
{
    return s == NULL ? 0 : s->depth;
}

void
edb__txn_abort_all(edb_session *s)
{
    /* the LMDB abort takes every level's writes back: no replay */
    if (s->depth > 1 && !s->rdonly)
        edb__undo_stop(&s->undo, s->env->mdb);
    while (s->depth > 0)
        end_level(s, false);
    if (s->implicit) {
        if (s->implicit_write) {
            edb__rows_drop(s);
            mdb_txn_abort(s->imp_txn);
            writer_pop(s);
        } else {
            edb__ro_end(s->env, s->imp_txn);
        }
        s->implicit = false;
        s->imp_txn = NULL;
        sync_id(s);
    }
}

int
edb__txn_enter_slow(edb_session *s, bool write, MDB_txn **out)
{
    *out = NULL;
    if (s->dead)
        return edb__session_closed_err(s, write ? "write" : "read");
    if (s->depth > 0) {
        if (write && s->rdonly)
            return edb__err(EDB_READONLY, "write in a read-only transaction");
        if (s->failed != 0)
            return failed_err(s, write ? "write" : "read");
        *out = s->txn[s->depth - 1];
        return 0;
    }
    if (s->implicit)
        return edb__err(EDB_INTERNAL, "nested implicit transaction");
    MDB_txn *txn;
    EDB_RET(begin_top(s, write, &txn));
    s->implicit = true;
    s->implicit_write = write;
    s->imp_txn = txn;
    s->imp_id = ++s->next_id;
    sync_id(s);
    *out = txn;
    return 0;
}

int
edb__txn_leave_slow(edb_session *s, int rc)
{
    if (!s->implicit) {
        /* A miss never breaks an LMDB txn: no need to ask after one. */
        if (rc < 0 && rc != EDB_NOTFOUND && s->depth > 0 && s->failed == 0 && lmdb_refuses(s))
            edb__txn_fail(s, rc);
        return rc;
    }
    MDB_txn *txn = s->imp_txn;
    bool write = s->implicit_write;
    s->implicit = false;
    s->imp_txn = NULL;
    sync_id(s);
    if (write) {
        writer_pop(s);
        s->write_seq++;
    }
    if (!write) {
        edb__ro_end(s->env, txn);
        return rc;
    }
    if (rc >= 0) {
        int frc = edb__rows_flush(s, txn);
        rc = frc < 0 ? frc : rc;
    }
    if (rc < 0) {
        edb__rows_drop(s);
        mdb_txn_abort(txn);
        return rc;
    }
    int mrc = mdb_txn_commit(txn);
    if (mrc != 0)
        return edb__mdb_err_env(mrc, s->env->mdb, "commit");
    return rc;
}

int
edb__txn_child_begin(edb_session *s, MDB_txn *parent, MDB_txn **out)
{
    /* An implicit transaction holds this one call only and is aborted
     * whole when the call fails: it needs no child (which would cost a copy
     * of every DB slot). */
    if (s->implicit && parent == s->imp_txn) {
        *out = parent;
        return 0;
    }
    /* Inside a savepoint level the undo log is the unit: a mark, replayed
     * back to on failure (no LMDB child, whose writes the log would miss). */
    if (s->depth > 1 && !s->child_sp && parent == s->txn[0]) {
        s->child_sp = true;
        s->child_mark = edb__undo_mark(&s->undo);
        *out = parent;
        return 0;
    }
    int rc = mdb_txn_begin(s->env->mdb, parent, 0, out);
    if (rc != 0) {
        *out = NULL;
        return edb__mdb_err(rc, "begin nested transaction");
    }
    return 0;
}

int
edb__txn_child_end(edb_session *s, MDB_txn *child, int rc)
{
    s->write_seq++;
    if (s->implicit && child == s->imp_txn)
        return rc;      /* edb__txn_leave commits or aborts it */
    if (s->child_sp && child == s->txn[0]) {
        s->child_sp = false;
        if (rc >= 0)
            return rc;
        int urc = edb__undo_rollback(&s->undo, s->child_mark);
        /* the undo failed: LMDB refuses the txn; edb__txn_leave sees it */
        return urc == 0 ? rc : edb__mdb_err(urc, "undo a failed schema change");
    }
    if (rc < 0) {
        mdb_txn_abort(child);
        return rc;
    }
    int mrc = mdb_txn_commit(child);
    return mrc == 0 ? rc : edb__mdb_err(mrc, "commit nested transaction");
}

/*
 * session.c: sessions.  A session is a context for one thread at a time: a
 * stack of transaction levels (txn.c) and a list of cursors (cursor.c).
 *
 * Invariants: every live session is on its env's list (guarded by
 * env->sess_lock) so that edb_env_close can end it; ending a session rolls
 * back every level and turns its cursors into zombies before it leaves the
 * list.
 *
 * Closers in any order (SQLite's sqlite3_close_v2): a session that was ended,
 * or whose env was closed, is dead: off the list, no transaction, every call
 * on it or on its cursors EDB_CLOSED.  Its body lives until it is ended and
 * its last cursor closed (edb__session_release); each body holds a reference
 * on the env body (env.h), so edb_session_end after edb_env_close and
 * edb_cursor_close after edb_session_end touch only memory still owned.
 *
 * Thread safety: begin/end may be called from any thread; a session is used by
 * one thread at a time.  Lock order: sess_lock only (nothing is called under it).
 */
#include "config.h"

#include <stdlib.h>

#include "error.h"
#include "session.h"

int
edb__session_closed_err(const edb_session *s, const char *fn)
{
    if (s->ended)
        return edb__err(EDB_CLOSED, "%s: the session was ended", fn);
    return edb__err(EDB_CLOSED, "%s: the session's environment was closed", fn);
}

int
edb__session_check(edb_session *s, const char *fn)
{
    if (s == NULL)
        return edb__err(EDB_INVAL, "%s: session is NULL", fn);
    if (s->dead)
        return edb__session_closed_err(s, fn);
    return 0;
}

int
edb_session_begin(edb_session **out, edb_env *env)
{
    if (out == NULL)
        return edb__err(EDB_INVAL, "edb_session_begin: out is NULL");
    *out = NULL;
    if (env == NULL)
        return edb__err(EDB_INVAL, "edb_session_begin: env is NULL");
    if (env->closed)
        return edb__err(EDB_CLOSED, "edb_session_begin: the environment was closed");
    edb_session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return edb__err(EDB_NOMEM, "edb_session_begin");
    s->env = env;
    edb__ref_get(&env->ref);
    pthread_mutex_lock(&env->sess_lock);
    s->next = env->sessions;
    if (env->sessions != NULL)
        env->sessions->prev = s;
    env->sessions = s;
    pthread_mutex_unlock(&env->sess_lock);
    edb__err_clear();
    *out = s;
    return 0;
}

void
edb__session_kill(edb_session *s)
{
    if (s->dead)
        return;
    edb__session_zombie_cursors(s);
    edb__txn_abort_all(s);
    edb_env *env = s->env;
    pthread_mutex_lock(&env->sess_lock);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        env->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    pthread_mutex_unlock(&env->sess_lock);
    s->dead = true;
}

void
edb__session_release(edb_session *s)
{
    if (!s->ended || s->cursors != NULL)
        return;
    edb_env *env = s->env;
    free(s->rows_pend);
    edb__undo_free(&s->undo);
    free(s);
    edb__env_put(env);
}

void
edb_session_end(edb_session *s)
{
    if (s == NULL || s->ended)
        return;
    edb__session_kill(s);
    s->ended = true;
    edb__session_release(s);
}

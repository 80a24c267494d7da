/*
 * session.c: sessions.  A session is a context for one thread at a time: a
 * stack of transaction levels (txn.c) and a list of cursors (cursor.c).
 *
 * Invariants: every live session is on its env's list (guarded by
 * env->sess_lock) so that edb_env_close can end it; ending a session rolls
 * back every level and closes its cursors before it leaves the list.
 *
 * Thread safety: begin/end may be called from any thread; a session is used by
 * one thread at a time.  Lock order: sess_lock only (nothing is called under it).
 */
#include "config.h"

#include <stdlib.h>

#include "error.h"
#include "session.h"

int
edb__session_check(edb_session *s, const char *fn)
{
    if (s == NULL)
        return edb__err(EDB_INVAL, "%s: session is NULL", fn);
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
    edb_session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return edb__err(EDB_NOMEM, "edb_session_begin");
    s->env = env;
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
edb_session_end(edb_session *s)
{
    if (s == NULL)
        return;
    edb__session_close_cursors(s);
    edb__txn_abort_all(s);
    edb_env *env = s->env;
    pthread_mutex_lock(&env->sess_lock);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        env->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&env->sess_lock);
    free(s);
}

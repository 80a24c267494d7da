/*
 * env.h: the environment's private body, shared by engine/ and backup/.
 *
 * Lock order (outermost first): sess_lock, the process-wide list
 * of open envs (env.c), bk_lock.  No lock is held
 * across a blocking LMDB call (mdb_txn_begin of a write txn) or across I/O.
 */
#ifndef EDB_ENV_H
#define EDB_ENV_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>

#include "edb.h"
#include "ref.h"

struct edb_session;

struct edb_env {
    MDB_env *mdb;              /* opened with MDB_NOTLS: read txns may move between threads */
    char *path;                /* the directory, as given */
    unsigned flags;            /* EDB_ENV_* */
    uint32_t page_size;

    /* Engine state: the catalog and the keyspace's handles (catalog.h). */
    void *catalog;             /* owned by catalog.c */

    /* Open sessions, so that env close can end them.  Guarded by sess_lock. */
    pthread_mutex_t sess_lock;
    struct edb_session *sessions;

    /* Closers in any order: one reference for the open env and one per
     * session body not yet freed (a session killed by env close keeps the
     * env body, not the LMDB env, alive until edb_session_end frees it).
     * closed: edb_env_close ran (LMDB env and catalog are gone). */
    edb__ref ref;
    bool closed;

    /* Backup state, owned by backup/.  The engine knows only this hook: env
     * close calls bk_shutdown (if set) first, which ends every backup and
     * waits for their copiers, each within one page batch.  bk_lock guards
     * bk_state and bk_shutdown. */
    pthread_mutex_t bk_lock;
    void *bk_state;
    void (*bk_shutdown)(edb_env *env);

    /* The process-wide list of open envs (env.c), guarded by its lock.  An
     * env leaves it when edb_env_close() starts, in the same critical
     * section (under bk_lock) that reads bk_shutdown. */
    struct edb_env *live_next;
};

/*
 * Lock env->bk_lock if env is open and its close has not started; else return
 * EDB_CANCELED (with a detail naming the caller `who`) without touching *env:
 * the env is looked up by pointer in the list of open envs.  Every backup
 * entry point that may race edb_env_close() reaches env->bk_lock only through
 * here, so either it locks bk_lock before close reads bk_shutdown (and close
 * then runs the hook it installs), or it sees the env closing.  A pointer
 * freed by close and reused by a later edb_env_open() is indistinguishable
 * from that new env (using a closed env is a caller error, only a harmless
 * one).
 *
 * Thread safety: any thread.
 */
int edb__env_bk_lock(edb_env *env, const char *who);

/* The underlying LMDB environment (for backup/ and tools that walk pages). */
static inline MDB_env *
edb__env_mdb(edb_env *env)
{
    return env->mdb;
}

#endif

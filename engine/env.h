/*
 * env.h: the environment's private body, shared by engine/ and backup/.
 *
 * Lock order (outermost first): sess_lock, dbi_lock, bk_lock.  No lock is held
 * across a blocking LMDB call (mdb_txn_begin of a write txn) or across I/O.
 */
#ifndef EDB_ENV_H
#define EDB_ENV_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>

#include "edb.h"

struct edb_session;

struct edb_env {
    MDB_env *mdb;              /* opened with MDB_NOTLS: read txns may move between threads */
    char *path;                /* the directory, as given */
    unsigned flags;            /* EDB_ENV_* */
    uint32_t page_size;
    unsigned max_tables;

    /* Engine state.  dbi_lock is held around every mdb_dbi_open (not
     * thread-safe in LMDB) and guards the pool flag (catalog.h, "Pool"),
     * which a write txn that created a table holds until it ends. */
    pthread_mutex_t dbi_lock;
    void *catalog;             /* owned by catalog.c */

    /* Open sessions, so that env close can end them.  Guarded by sess_lock. */
    pthread_mutex_t sess_lock;
    struct edb_session *sessions;

    /* Backup state, owned by backup/.  The engine knows only this hook: env
     * close calls bk_shutdown (if set) first, which ends every backup and
     * waits for their copiers, each within one page batch.  bk_lock guards
     * bk_state and bk_shutdown. */
    pthread_mutex_t bk_lock;
    void *bk_state;
    void (*bk_shutdown)(edb_env *env);
};

/* The underlying LMDB environment (for backup/ and tools that walk pages). */
static inline MDB_env *
edb__env_mdb(edb_env *env)
{
    return env->mdb;
}

#endif

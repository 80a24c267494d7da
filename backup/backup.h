/*
 * backup.h: private structures of the backup module: the per-env registry of
 * backups and copiers, the backup object, and the process-wide handle table.
 *
 * Lock order (outermost first; doc/threading.md):
 *   env->bk_lock  ->  reg->lock  ->  bk->lock  ->  ring.mu (one stream's)
 *   g_lock (the handle table) is a leaf: nothing is locked while it is held.
 * No lock is held across I/O, pthread_join, thread creation or an LMDB call
 * that can block.
 *
 * References (the last put frees):
 *   reg:    the env (until edb_env_close), each backup, each copier, each
 *           edb_backup_stop in progress
 *   backup: its handle, each stream, each call in progress (open, progress, end)
 *   stream: its handle, its copier, each edb_backup_read in progress
 *   snap:   the backup (until ended), each copier
 * A handle reference is dropped by whoever removes the handle from the handle
 * table (edb__handle_remove() returns true to exactly one caller), so a close
 * racing with edb_backup_end() or edb_env_close() drops it once.
 */
#ifndef EDB_BACKUP_INT_H
#define EDB_BACKUP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "edb_backup.h"
#include "ref.h"
#include "snapshot.h"

struct edb__copier;

/* Per-env registry, env->bk_state.  Guarded by lock. */
typedef struct edb__bk_reg {
    edb__ref ref;
    pthread_mutex_t lock;
    pthread_cond_t idle;               /* broadcast when busy drops to 0 */
    struct edb_backup *backups;        /* open backups (bk->linked) */
    struct edb__copier *copiers;       /* running copiers nobody joins yet (c->registered) */
    unsigned busy;                     /* begin/open/end calls between their closing check and their link */
    bool closing;                      /* edb_env_close has started: new begins and opens fail */
} edb__bk_reg;

struct edb_backup {
    edb__ref ref;
    pthread_mutex_t lock;              /* guards streams, ended, canceled, snap, done_max */
    edb__bk_reg *reg;                  /* holds a reference */
    edb__snap *snap;                   /* holds a reference until ended (NULL after) */
    struct edb_backup_stream *streams; /* open streams (s->linked) */
    struct edb_backup *next;           /* in reg->backups; guarded by reg->lock */
    bool linked;                       /* guarded by reg->lock */
    bool ended;                        /* edb_backup_end or env close ran */
    bool canceled;                     /* edb_backup_stop or env close ran */
    uint64_t total;                    /* archive bytes of one stream (exact for full backups) */
    uint64_t done_max;                 /* bytes read by the most advanced stream already closed */
};

/* ---- live objects (tests assert every count returns to 0: no leak) ---- */
enum { EDB__OBJ_REG, EDB__OBJ_BACKUP, EDB__OBJ_STREAM, EDB__OBJ_SNAP, EDB__OBJ_COPIER, EDB__OBJ_N };
/* calloc(1, n) through edb__sys_calloc, counted as a live object of kind. */
void *edb__obj_alloc(int kind, size_t n);
/* Free an object from edb__obj_alloc (NULL-safe). */
void edb__obj_free(int kind, void *p);
/* Objects of kind alive now (kind EDB__OBJ_N: all kinds). */
long edb__obj_live(int kind);

/* ---- handle table (process-wide) ---- */
enum { EDB__H_ENV = 1, EDB__H_BACKUP = 2, EDB__H_STREAM = 3 };
/* @return 0 or EDB_NOMEM. */
int edb__handle_add(int kind, void *p, void *val);
/* @return true when p was registered (and is now removed): the caller owns its handle reference. */
bool edb__handle_remove(int kind, void *p);
/* Find p and take a reference on it (for EDB__H_ENV: on its registry, which
 * is returned).  @return the object or NULL when p is not an open handle. */
void *edb__handle_ref(int kind, void *p);

/* ---- registry ---- */
/* Enter a call that will link a backup or start a copier: busy++ unless the
 * env is closing.  @return 0 or EDB_CANCELED. */
int edb__reg_enter(edb__bk_reg *reg);
/* busy--; wakes env close when it reaches 0. */
void edb__reg_leave(edb__bk_reg *reg);
void edb__reg_put(edb__bk_reg *reg);

/* ---- backup ---- */
void edb__bk_put(edb_backup *bk);

#endif

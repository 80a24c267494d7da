/*
 * backup.c: edb_backup_begin / end / stop / progress, the per-env registry of
 * backups and copiers (env->bk_state), the env-close hook (env->bk_shutdown),
 * and the process-wide handle table.
 *
 * Invariants
 * - A backup is in reg->backups (bk->linked) from the end of its begin until
 *   someone ends it; whoever unlinks it (edb_backup_end or env close, under
 *   reg->lock) does the ending work, exactly once.
 * - reg->busy counts begin/open/end calls that passed the closing check and
 *   have not yet linked (or finished ending) what they create; env close sets
 *   `closing`, waits for busy == 0 (each such call is bounded), then owns
 *   everything still linked.
 * - Every copier is either in reg->copiers (env close claims and joins it) or
 *   has already dropped its stream and snapshot references and detached.
 *   Hence, when the shutdown hook returns, every snapshot's read txn has been
 *   aborted: mdb_env_close() after it is safe.
 * - The handle table says which edb_backup / edb_backup_stream pointers are
 *   open, and which envs have a registry; edb__handle_remove() returns true to
 *   exactly one caller, which then drops the handle's reference.
 *
 * Lock order: env->bk_lock -> reg->lock -> bk->lock -> ring.mu; g_lock is a
 * leaf.  No lock is held across I/O, an LMDB call, thread creation or join.
 *
 * Thread safety: every function here may be called from any thread;
 * edb_backup_stop() and edb_env_close() may race with everything.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "base.h"
#include "codec.h"
#include "copier.h"
#include "error.h"
#include "stream.h"
#include "sys.h"

/* ---- live objects ------------------------------------------------------------ */

static atomic_long live[EDB__OBJ_N];

void *
edb__obj_alloc(int kind, size_t n)
{
    void *p = edb__sys_calloc(1, n);
    if (p != NULL)
        atomic_fetch_add(&live[kind], 1);
    return p;
}

void
edb__obj_free(int kind, void *p)
{
    if (p == NULL)
        return;
    atomic_fetch_sub(&live[kind], 1);
    free(p);
}

long
edb__obj_live(int kind)
{
    if (kind >= 0 && kind < EDB__OBJ_N)
        return atomic_load(&live[kind]);
    long n = 0;
    for (int k = 0; k < EDB__OBJ_N; k++)
        n += atomic_load(&live[k]);
    return n;
}

/* ---- handle table ------------------------------------------------------------ */

typedef struct hentry {
    int kind;
    void *p;
    void *val;
} hentry;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static hentry *g_tab;           /* guarded by g_lock */
static size_t g_n, g_cap;

int
edb__handle_add(int kind, void *p, void *val)
{
    pthread_mutex_lock(&g_lock);
    if (g_n == g_cap) {
        size_t cap = g_cap ? g_cap * 2 : 16;
        hentry *t = edb__sys_realloc(g_tab, cap * sizeof *t);
        if (t == NULL) {
            pthread_mutex_unlock(&g_lock);
            return edb__err(EDB_NOMEM, "backup: handle table");
        }
        g_tab = t;
        g_cap = cap;
    }
    g_tab[g_n++] = (hentry){ kind, p, val };
    pthread_mutex_unlock(&g_lock);
    return 0;
}

static size_t
hfind(int kind, const void *p)
{
    for (size_t i = 0; i < g_n; i++)
        if (g_tab[i].p == p && g_tab[i].kind == kind)
            return i;
    return SIZE_MAX;
}

bool
edb__handle_remove(int kind, void *p)
{
    pthread_mutex_lock(&g_lock);
    size_t i = hfind(kind, p);
    if (i != SIZE_MAX)
        g_tab[i] = g_tab[--g_n];
    if (g_n == 0) {
        free(g_tab);            /* nothing open: leave nothing behind */
        g_tab = NULL;
        g_cap = 0;
    }
    pthread_mutex_unlock(&g_lock);
    return i != SIZE_MAX;
}

void *
edb__handle_ref(int kind, void *p)
{
    void *obj = NULL;
    pthread_mutex_lock(&g_lock);
    size_t i = hfind(kind, p);
    if (i != SIZE_MAX) {
        switch (kind) {
        case EDB__H_ENV: {
            edb__bk_reg *reg = g_tab[i].val;
            edb__ref_get(&reg->ref);
            obj = reg;
            break;
        }
        case EDB__H_BACKUP:
            edb__ref_get(&((edb_backup *)p)->ref);
            obj = p;
            break;
        case EDB__H_STREAM:
            edb__ref_get(&((edb_backup_stream *)p)->ref);
            obj = p;
            break;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return obj;
}

/* ---- registry ------------------------------------------------------------------ */

static void reg_shutdown(edb_env *env);

void
edb__reg_put(edb__bk_reg *reg)
{
    if (reg == NULL || !edb__ref_put(&reg->ref))
        return;
    pthread_cond_destroy(&reg->idle);
    pthread_mutex_destroy(&reg->lock);
    edb__obj_free(EDB__OBJ_REG, reg);
}

int
edb__reg_enter(edb__bk_reg *reg)
{
    int rc = 0;
    pthread_mutex_lock(&reg->lock);
    if (reg->closing)
        rc = edb__err(EDB_CANCELED, "backup: the environment is closing");
    else
        reg->busy++;
    pthread_mutex_unlock(&reg->lock);
    return rc;
}

void
edb__reg_leave(edb__bk_reg *reg)
{
    pthread_mutex_lock(&reg->lock);
    if (--reg->busy == 0)
        pthread_cond_broadcast(&reg->idle);
    pthread_mutex_unlock(&reg->lock);
}

/* The env's registry with a reference for the caller; created on first use,
 * together with the env-close hook.  EDB_CANCELED once edb_env_close() has
 * started (edb__env_bk_lock: then env is not touched), also when no backup was
 * ever made on the env: close reads the hook and leaves the list of open envs
 * under the same locks, so a hook installed here is always run by close. */
static int
reg_get(edb__bk_reg **out, edb_env *env)
{
    int rc = 0;
    *out = NULL;
    EDB_RET(edb__env_bk_lock(env, "edb_backup_begin"));
    edb__bk_reg *reg = env->bk_state;
    if (reg == NULL) {
        reg = edb__obj_alloc(EDB__OBJ_REG, sizeof *reg);
        if (reg == NULL) {
            rc = edb__err(EDB_NOMEM, "backup: registry");
        } else if (pthread_mutex_init(&reg->lock, NULL) != 0) {
            edb__obj_free(EDB__OBJ_REG, reg);
            rc = edb__err(EDB_NOMEM, "backup: registry mutex");
        } else if (pthread_cond_init(&reg->idle, NULL) != 0) {
            pthread_mutex_destroy(&reg->lock);
            edb__obj_free(EDB__OBJ_REG, reg);
            rc = edb__err(EDB_NOMEM, "backup: registry condition");
        } else {
            edb__ref_init(&reg->ref, 1);            /* the env's */
            rc = edb__handle_add(EDB__H_ENV, env, reg);
            if (rc != 0) {
                pthread_cond_destroy(&reg->idle);
                pthread_mutex_destroy(&reg->lock);
                edb__obj_free(EDB__OBJ_REG, reg);
            } else {
                env->bk_state = reg;
                env->bk_shutdown = reg_shutdown;
            }
        }
    }
    if (rc == 0) {
        edb__ref_get(&reg->ref);
        *out = reg;
    }
    pthread_mutex_unlock(&env->bk_lock);
    return rc;
}

/* ---- backup ---------------------------------------------------------------------- */

void
edb__bk_put(edb_backup *bk)
{
    if (bk == NULL || !edb__ref_put(&bk->ref))
        return;
    edb__bk_reg *reg = bk->reg;
    pthread_mutex_destroy(&bk->lock);
    edb__obj_free(EDB__OBJ_BACKUP, bk);
    edb__reg_put(reg);
}

/* Cancel every stream of bk (stop and env close).  Caller holds reg->lock or
 * nothing; takes bk->lock then each ring's mutex. */
static void
bk_cancel(edb_backup *bk)
{
    pthread_mutex_lock(&bk->lock);
    bk->canceled = true;
    for (edb_backup_stream *s = bk->streams; s != NULL; s = s->next)
        edb__ring_cancel(&s->ring);
    pthread_mutex_unlock(&bk->lock);
}

/* The ending work, done once by whoever unlinked bk from reg->backups: close
 * the streams still open and release the snapshot. */
static void
bk_end_work(edb_backup *bk)
{
    pthread_mutex_lock(&bk->lock);
    bk->ended = true;
    edb_backup_stream *list = bk->streams;
    bk->streams = NULL;
    for (edb_backup_stream *s = list; s != NULL; s = s->next) {
        s->linked = false;
        edb__ref_get(&s->ref);                  /* keep it while we close it */
        uint64_t done = atomic_load(&s->consumed);
        if (done > bk->done_max)
            bk->done_max = done;
    }
    edb__snap *snap = bk->snap;
    bk->snap = NULL;
    pthread_mutex_unlock(&bk->lock);

    while (list != NULL) {
        edb_backup_stream *s = list;
        list = s->next;
        edb__stream_close_unlinked(s);
        edb__stream_put(s);
    }
    edb__snap_put(snap);                        /* may abort the read txn now */
}

/* Read 16 random bytes for the backup id. */
static int
random_id(uint8_t id[16])
{
    int fd = edb__sys_open("/dev/urandom", O_RDONLY, 0);
    if (fd < 0)
        return edb__sys_err(errno, "backup: opening /dev/urandom for the backup id");
    size_t got;
    int r = edb__sys_read_full(fd, id, 16, &got);
    int e = errno;
    edb__sys_close(fd);
    if (r != 0)
        return edb__sys_err(e, "backup: reading /dev/urandom");
    if (got != 16)
        return edb__err(EDB_IO, "backup: /dev/urandom gave %zu bytes", got);
    return 0;
}

int
edb_backup_begin(edb_backup **out, edb_env *env, const edb_backup_opts *opts)
{
    int ret = 0;
    if (out == NULL)
        return edb__err(EDB_INVAL, "edb_backup_begin: out is NULL");
    *out = NULL;
    if (env == NULL)
        return edb__err(EDB_INVAL, "edb_backup_begin: env is NULL");
    edb_backup_opts o;
    memset(&o, 0, sizeof o);
    if (opts != NULL)
        o = *opts;
    if (o.flags & ~(unsigned)(EDB_BACKUP_INCREMENTAL | EDB_BACKUP_KEEP_FREE | EDB_BACKUP_LOW_PIN))
        return edb__err(EDB_INVAL, "edb_backup_begin: unknown flags 0x%x", o.flags);
    if ((o.flags & EDB_BACKUP_INCREMENTAL) && o.base == NULL)
        return edb__err(EDB_INVAL, "edb_backup_begin: EDB_BACKUP_INCREMENTAL needs a base archive");
    if (!(o.flags & EDB_BACKUP_INCREMENTAL) && o.base != NULL)
        return edb__err(EDB_INVAL, "edb_backup_begin: a base archive needs EDB_BACKUP_INCREMENTAL");
    if (o.compress != EDB_BACKUP_COMPRESS_NONE && o.compress != EDB_BACKUP_COMPRESS_ZSTD)
        return edb__err(EDB_INVAL, "edb_backup_begin: unknown compression %u", o.compress);
    if (o.compress_threads > 64)
        return edb__err(EDB_INVAL, "edb_backup_begin: %u compression threads (at most 64)",
                        o.compress_threads);
    if (o.compress_level < 0 || o.compress_level > (int)EDB__ARCH_ZLEVEL_MAX)
        return edb__err(EDB_INVAL, "edb_backup_begin: compression level %d out of range 1..%u",
                        o.compress_level, EDB__ARCH_ZLEVEL_MAX);

    edb__bk_reg *reg = NULL;
    edb__snap *snap = NULL;
    edb_backup *bk = NULL;
    bool entered = false;
    edb__base base;
    memset(&base, 0, sizeof base);

    /* The base is read before the snapshot is taken: never pinned for it. */
    if (o.flags & EDB_BACKUP_INCREMENTAL)
        EDB_RET(edb__base_load(&base, o.base));
    EDB_ERR(reg_get(&reg, env));
    EDB_ERR(edb__reg_enter(reg));
    entered = true;
    /* Low-pin: the first snapshot only fixes the header (start txnid and
     * npages, page size); its copier takes its own short snapshots. */
    EDB_ERR(edb__snap_take(&snap, env, (o.flags & (EDB_BACKUP_KEEP_FREE | EDB_BACKUP_LOW_PIN)) != 0));
    if (o.flags & EDB_BACKUP_LOW_PIN)
        edb__snap_unpin(snap);
    snap->plan.flags = o.flags;
    snap->plan.created_us = edb__now_real_us();
    snap->plan.rate_limit = o.rate_limit;
    snap->plan.ring_size = o.ring_size;
    if (o.encrypt_key != NULL) {
        snap->plan.cipher = EDB__ARCH_CIPHER_SS;
        memcpy(snap->plan.key, o.encrypt_key, sizeof snap->plan.key);
        EDB_ERR(edb__key_id(snap->plan.key_id, snap->plan.key));
    }
    if (o.compress == EDB_BACKUP_COMPRESS_ZSTD) {
        snap->plan.codec = EDB__ARCH_CODEC_ZSTD;
        snap->plan.codec_level = o.compress_level > 0 ? (unsigned)o.compress_level : 1u;
        snap->plan.codec_threads = o.compress_threads;
    }
    if (o.flags & EDB_BACKUP_INCREMENTAL) {
        if (base.page_size != snap->page_size)
            EDB_ERR(edb__err(EDB_CHAIN, "edb_backup_begin: base archive '%s' has %u-byte pages, "
                             "the database %u-byte pages", o.base, base.page_size, snap->page_size));
        memcpy(snap->plan.base_id, base.backup_id, sizeof snap->plan.base_id);
        snap->plan.base_hash = base.archive_hash;
        snap->plan.base_npages = base.npages;
        snap->plan.base_table = base.table;     /* the snapshot owns it now */
        base.table = NULL;
    }
    EDB_ERR(random_id(snap->plan.backup_id));
    {
        /* The header every stream of this backup will write, checked now
         * with the reader's rules: refuse here, before any copier runs,
         * what would make an archive the reader refuses (a forged base
         * larger than this database can ever be, say). */
        edb__arch_header h;
        if (edb__copier_header(&h, snap) != 0) {
            char why[400];
            snprintf(why, sizeof why, "%s", edb_error_last_message());
            EDB_ERR(edb__err(EDB_CORRUPT, "edb_backup_begin: %s%s%sthe archive would break the "
                             "format's rules: %s", o.base ? "base archive '" : "",
                             o.base ? o.base : "", o.base ? "' does not fit this database; " : "",
                             why));
        }
    }

    bk = edb__obj_alloc(EDB__OBJ_BACKUP, sizeof *bk);
    if (bk == NULL)
        EDB_ERR(edb__err(EDB_NOMEM, "edb_backup_begin: backup"));
    if (pthread_mutex_init(&bk->lock, NULL) != 0) {
        edb__obj_free(EDB__OBJ_BACKUP, bk);
        bk = NULL;
        EDB_ERR(edb__err(EDB_NOMEM, "edb_backup_begin: backup mutex"));
    }
    edb__ref_init(&bk->ref, 1);                 /* the handle */
    bk->reg = reg;                              /* takes over this call's reference */
    reg = NULL;
    bk->snap = snap;
    snap = NULL;
    uint64_t copy = edb__snap_copy_pages(bk->snap);
    unsigned fmax = edb__arch_frame_edb(bk->snap->page_size);
    bk->total = 3 * (uint64_t)EDB__ARCH_BLOCK                      /* header, trailer, end */
              + (copy + fmax - 1) / fmax * EDB__ARCH_BLOCK
              + copy * bk->snap->page_size
              + edb__arch_table_bytes(bk->snap->npages);
    EDB_ERR(edb__handle_add(EDB__H_BACKUP, bk, NULL));

    edb__bk_reg *r = bk->reg;
    pthread_mutex_lock(&r->lock);
    bool closing = r->closing;
    if (!closing) {
        bk->next = r->backups;
        r->backups = bk;
        bk->linked = true;
    }
    pthread_mutex_unlock(&r->lock);
    entered = false;
    if (closing) {
        /* Leave busy only after the snapshot is released: env close waits
         * for busy == 0 and then closes LMDB, under a read txn still open
         * otherwise.  r outlives the bk_put: env close holds the env's
         * reference until it has seen busy == 0 (tests/model, SC_BEGIN). */
        if (edb__handle_remove(EDB__H_BACKUP, bk)) {
            bk_end_work(bk);
            edb__bk_put(bk);
        }
        edb__reg_leave(r);
        return edb__err(EDB_CANCELED, "edb_backup_begin: the environment is closing");
    }
    edb__reg_leave(r);
    edb__err_clear();
    *out = bk;
    return 0;

err:
    if (bk != NULL) {
        reg = bk->reg;
        edb__snap_put(bk->snap);
        pthread_mutex_destroy(&bk->lock);
        edb__obj_free(EDB__OBJ_BACKUP, bk);
    }
    edb__snap_put(snap);
    if (entered)
        edb__reg_leave(reg);
    edb__reg_put(reg);
    edb__base_free(&base);
    return ret;
}

void
edb_backup_end(edb_backup *bk)
{
    if (bk == NULL || !edb__handle_remove(EDB__H_BACKUP, bk))
        return;                                 /* not open (ended already, or env closed) */
    /* We own the handle's reference now, so bk and bk->reg stay valid. */
    edb__bk_reg *reg = bk->reg;
    bool mine = false;
    pthread_mutex_lock(&reg->lock);
    if (bk->linked) {
        for (edb_backup **pp = &reg->backups; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == bk) {
                *pp = bk->next;
                break;
            }
        }
        bk->linked = false;
        reg->busy++;                            /* env close waits until we have ended it */
        mine = true;
    }
    pthread_mutex_unlock(&reg->lock);
    if (mine) {
        bk_end_work(bk);
        edb__reg_leave(reg);
    }
    edb__bk_put(bk);
}

int
edb_backup_stop(edb_env *env)
{
    if (env == NULL)
        return edb__err(EDB_INVAL, "edb_backup_stop: env is NULL");
    /* Looked up in the handle table, not through env: safe while env closes. */
    edb__bk_reg *reg = edb__handle_ref(EDB__H_ENV, env);
    if (reg == NULL) {
        edb__err_clear();
        return 0;                               /* no backup was ever begun, or the env is closed */
    }
    pthread_mutex_lock(&reg->lock);
    for (edb_backup *bk = reg->backups; bk != NULL; bk = bk->next)
        bk_cancel(bk);
    pthread_mutex_unlock(&reg->lock);
    edb__reg_put(reg);
    edb__err_clear();
    return 0;
}

int
edb_backup_progress(edb_backup *bk, uint64_t *done, uint64_t *total)
{
    if (done != NULL)
        *done = 0;
    if (total != NULL)
        *total = 0;
    if (bk == NULL || done == NULL || total == NULL)
        return edb__err(EDB_INVAL, "edb_backup_progress: %s is NULL",
                        bk == NULL ? "backup" : done == NULL ? "done" : "total");
    if (edb__handle_ref(EDB__H_BACKUP, bk) == NULL)
        return edb__err(EDB_INVAL, "edb_backup_progress: the backup is not open");
    pthread_mutex_lock(&bk->lock);
    uint64_t d = bk->done_max;
    for (edb_backup_stream *s = bk->streams; s != NULL; s = s->next) {
        uint64_t c = atomic_load(&s->consumed);
        if (c > d)
            d = c;
    }
    *done = d;
    *total = bk->total > d ? bk->total : d;      /* low-pin: passes may resend more than one full pass */
    pthread_mutex_unlock(&bk->lock);
    edb__bk_put(bk);
    edb__err_clear();
    return 0;
}

int
edb_backup_pin_time(edb_backup *bk, uint64_t *longest_us, uint64_t *current_us)
{
    if (longest_us != NULL)
        *longest_us = 0;
    if (current_us != NULL)
        *current_us = 0;
    if (bk == NULL)
        return edb__err(EDB_INVAL, "edb_backup_pin_time: backup is NULL");
    if (edb__handle_ref(EDB__H_BACKUP, bk) == NULL)
        return edb__err(EDB_INVAL, "edb_backup_pin_time: the backup is not open");
    uint64_t longest = 0, cur = 0;
    pthread_mutex_lock(&bk->lock);
    if (bk->snap != NULL) {
        uint64_t since = atomic_load(&bk->snap->pin_since_ns);
        longest = atomic_load(&bk->snap->pin_max_us);
        if (since != 0) {
            uint64_t now = edb__now_ns();
            cur = now > since ? (now - since) / 1000u : 0;
        }
    }
    pthread_mutex_unlock(&bk->lock);
    edb__bk_put(bk);
    if (cur > longest)
        longest = cur;
    if (longest_us != NULL)
        *longest_us = longest;
    if (current_us != NULL)
        *current_us = cur;
    edb__err_clear();
    return 0;
}

/* ---- env close ------------------------------------------------------------------- */

/*
 * env->bk_shutdown: called by edb_env_close() before it ends sessions and
 * closes LMDB.  Cancels everything, waits for calls in their bounded
 * registration phase, ends every backup still open (their handles are gone
 * afterwards), and joins every copier that has not detached itself (each exits
 * within one page batch of the cancel).  Never waits for a reader.
 */
static void
reg_shutdown(edb_env *env)
{
    /* env close has taken env out of the list of open envs: no reg_get can
     * reach bk_state any more. */
    pthread_mutex_lock(&env->bk_lock);
    edb__bk_reg *reg = env->bk_state;
    env->bk_state = NULL;
    pthread_mutex_unlock(&env->bk_lock);
    if (reg == NULL)
        return;
    edb__handle_remove(EDB__H_ENV, env);        /* later stops find nothing */

    pthread_mutex_lock(&reg->lock);
    reg->closing = true;
    for (edb_backup *bk = reg->backups; bk != NULL; bk = bk->next)
        bk_cancel(bk);                          /* wake blocked readers and copiers now */
    while (reg->busy > 0)
        pthread_cond_wait(&reg->idle, &reg->lock);
    /* Nothing can be linked any more: take every backup and claim every copier. */
    edb_backup *bks = reg->backups;
    reg->backups = NULL;
    for (edb_backup *bk = bks; bk != NULL; bk = bk->next) {
        bk->linked = false;
        edb__ref_get(&bk->ref);                 /* a racing edb_backup_end may drop the handle's */
    }
    edb__copier *cps = reg->copiers;
    reg->copiers = NULL;
    for (edb__copier *c = cps; c != NULL; c = c->next) {
        c->registered = false;
        c->claimed = true;
    }
    pthread_mutex_unlock(&reg->lock);

    while (bks != NULL) {
        edb_backup *bk = bks;
        bks = bk->next;
        bk_end_work(bk);
        if (edb__handle_remove(EDB__H_BACKUP, bk))
            edb__bk_put(bk);                    /* the handle's reference: the handle is gone */
        edb__bk_put(bk);
    }
    while (cps != NULL) {
        edb__copier *c = cps;
        cps = c->next;
        edb__copier_join(c);                    /* canceled: exits within one page batch */
    }
    edb__reg_put(reg);                          /* the env's reference */
}

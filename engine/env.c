/*
 * env.c: opening, describing, compacting and closing an environment.
 *
 * An environment is one LMDB environment opened with MDB_NOTLS (read
 * transactions are not tied to threads, so a backup's copier may hold one and
 * any thread may release it).  Open creates the directory (0700) and files
 * (0600) when absent, clears reader slots left by dead processes, refuses a
 * data.mdb cut shorter than the pages its meta uses (metaread.c, EDB_CORRUPT),
 * and opens the catalog (catalog.c), which refuses LMDB files that are not edb's.
 *
 * Invariants: env->mdb, env->catalog and the keyspace handles are set before the
 * env is returned and never change until close.  An open env is in the
 * process-wide list `g_live` from the end of its open until its close starts;
 * close takes it out and reads the backup hook in one critical section
 * (g_live_lock, then env->bk_lock), so a backup begin either installed the
 * hook before (close runs it) or finds the env gone (edb__env_bk_lock).
 * Close runs the backup hook first (it may wait for copiers, each bounded by
 * one page batch), then kills the sessions still open (session.c: they
 * become zombies that their own closers free), closes LMDB, and frees the
 * env body when no session body refers to it any more (env->ref).
 *
 * Thread safety: open/close/info/path/compact may be called from any thread;
 * close must not race with other use of the env (backup calls excepted:
 * they reach the env through edb__env_bk_lock).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "env.h"
#include "error.h"
#include "metaread.h"
#include "session.h"

#define DEFAULT_MAP_SIZE   (64ull << 30)
#define DEFAULT_MAX_READERS 126u
/* The keyspace's databases (catalog.h) and room for as many again. */
#define EDB__MAX_DBS       8u

/* The open envs (see the invariants above).  g_live_lock is taken before any
 * env's bk_lock and held only for the list walk. */
static pthread_mutex_t g_live_lock = PTHREAD_MUTEX_INITIALIZER;
static edb_env *g_live;

int
edb__env_bk_lock(edb_env *env, const char *who)
{
    pthread_mutex_lock(&g_live_lock);
    edb_env *e = g_live;
    while (e != NULL && e != env)
        e = e->live_next;
    if (e != NULL)
        pthread_mutex_lock(&env->bk_lock);
    pthread_mutex_unlock(&g_live_lock);
    if (e == NULL)
        return edb__err(EDB_CANCELED, "%s: the environment is closed or closing", who);
    return 0;
}

static int
prepare_dir(const char *path, bool rdonly)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return edb__err(EDB_INVAL, "'%s' is not a directory", path);
    } else if (errno != ENOENT) {
        return edb__sys_err(errno, path);
    } else if (rdonly) {
        return edb__err(EDB_NOTFOUND, "'%s' does not exist (read-only open creates nothing)", path);
    } else if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return edb__sys_err(errno, path);
    }
    if (rdonly) {
        size_t n = strlen(path) + sizeof "/data.mdb";
        char *f = malloc(n);
        if (f == NULL)
            return edb__err(EDB_NOMEM, "env path");
        snprintf(f, n, "%s/data.mdb", path);
        int r = stat(f, &st);
        int e = errno;
        free(f);
        if (r != 0)
            return e == ENOENT ? edb__err(EDB_NOTFOUND, "'%s' holds no database", path)
                               : edb__sys_err(e, path);
    }
    return 0;
}

static int
open_mdb(edb_env *env, const char *path, const edb_env_opts *o)
{
    int rc;
    if ((rc = mdb_env_create(&env->mdb)) != 0) {
        env->mdb = NULL;
        return edb__mdb_err(rc, "mdb_env_create");
    }
    unsigned maxdbs = EDB__MAX_DBS;
    if ((rc = mdb_env_set_mapsize(env->mdb, (size_t)o->map_size)) != 0 ||
        (rc = mdb_env_set_maxreaders(env->mdb, o->max_readers)) != 0 ||
        (rc = mdb_env_set_maxdbs(env->mdb, maxdbs)) != 0)
        return edb__mdb_err(rc, "edb_env_open: settings");
    unsigned mflags = MDB_NOTLS;
    if (o->flags & EDB_ENV_READONLY)
        mflags |= MDB_RDONLY;
    if (o->flags & EDB_ENV_NOSYNC)
        mflags |= MDB_NOSYNC;
    if ((rc = mdb_env_open(env->mdb, path, mflags, 0600)) != 0) {
        char what[PATH_MAX + 32];
        snprintf(what, sizeof what, "open '%s'", path);
        if (edb__mdb_is_invalid(rc))        /* not LMDB's, or a short read: see metaread.c */
            return edb__meta_explain_invalid(path, what);
        return edb__mdb_err(rc, what);
    }
    int dead = 0;
    if ((rc = mdb_reader_check(env->mdb, &dead)) != 0)
        return edb__mdb_err(rc, "edb_env_open: reader check");
    MDB_stat st;
    if ((rc = mdb_env_stat(env->mdb, &st)) != 0)
        return edb__mdb_err(rc, "edb_env_open: stat");
    env->page_size = st.ms_psize;
    /* LMDB opens a data.mdb shorter than its metas claim, and the first read
     * of a page past its end is SIGBUS: refuse such a file before anything
     * reads through the map (metaread.c). */
    return edb__meta_check_length(env->mdb, path);
}

int
edb_env_open(edb_env **out, const char *path, const edb_env_opts *opts)
{
    int ret = 0;
    edb_env *env = NULL;
    edb_env_opts o = { 0 };

    if (out == NULL)
        return edb__err(EDB_INVAL, "edb_env_open: out is NULL");
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return edb__err(EDB_INVAL, "edb_env_open: path is NULL or empty");
    if (opts != NULL)
        o = *opts;
    if (o.flags & ~(EDB_ENV_READONLY | EDB_ENV_NOSYNC))
        return edb__err(EDB_INVAL, "edb_env_open: unknown flags 0x%x", o.flags);
    if (o.map_size == 0)
        o.map_size = DEFAULT_MAP_SIZE;
    if (o.map_size < (1u << 20) || o.map_size > ((uint64_t)SIZE_MAX >> 1))
        return edb__err(EDB_INVAL, "edb_env_open: map_size %llu out of range",
                        (unsigned long long)o.map_size);
    if (o.max_readers == 0)
        o.max_readers = DEFAULT_MAX_READERS;
    if (o.max_readers > 65536)
        return edb__err(EDB_INVAL, "edb_env_open: max_readers %u over 65536", o.max_readers);
    bool rdonly = (o.flags & EDB_ENV_READONLY) != 0;
    EDB_RET(prepare_dir(path, rdonly));

    env = calloc(1, sizeof *env);
    if (env == NULL)
        return edb__err(EDB_NOMEM, "edb_env_open");
    pthread_mutex_init(&env->sess_lock, NULL);
    pthread_mutex_init(&env->bk_lock, NULL);
    edb__ref_init(&env->ref, 1);
    env->flags = o.flags;
    if ((env->path = strdup(path)) == NULL)
        EDB_ERR(edb__err(EDB_NOMEM, "edb_env_open"));

    EDB_ERR(open_mdb(env, path, &o));
    EDB_ERR(edb__catalog_open(env));
    pthread_mutex_lock(&g_live_lock);
    env->live_next = g_live;
    g_live = env;
    pthread_mutex_unlock(&g_live_lock);
    edb__err_clear();
    *out = env;
    return 0;
err:
    edb__catalog_close(env);
    if (env->mdb != NULL)
        mdb_env_close(env->mdb);
    pthread_mutex_destroy(&env->sess_lock);
    pthread_mutex_destroy(&env->bk_lock);
    free(env->path);
    free(env);
    return ret;
}

void
edb_env_close(edb_env *env)
{
    if (env == NULL)
        return;
    /* Backups first: their copiers hold read transactions on this env.  Leave
     * the list of open envs and read the hook in one step: a backup begin
     * that installs the hook later cannot find the env (edb__env_bk_lock). */
    pthread_mutex_lock(&g_live_lock);
    for (edb_env **pp = &g_live; *pp != NULL; pp = &(*pp)->live_next) {
        if (*pp == env) {
            *pp = env->live_next;
            break;
        }
    }
    pthread_mutex_lock(&env->bk_lock);
    void (*shutdown)(edb_env *) = env->bk_shutdown;
    pthread_mutex_unlock(&env->bk_lock);
    pthread_mutex_unlock(&g_live_lock);
    if (shutdown != NULL)
        shutdown(env);
    /* Sessions still open die (their transactions roll back, their cursors
     * become zombies) but stay allocated until their own closers run: each
     * keeps the env body, not the LMDB env, alive. */
    for (;;) {
        pthread_mutex_lock(&env->sess_lock);
        edb_session *s = env->sessions;
        pthread_mutex_unlock(&env->sess_lock);
        if (s == NULL)
            break;
        edb__session_kill(s);
    }
    edb__catalog_close(env);
    mdb_env_close(env->mdb);
    env->mdb = NULL;
    env->closed = true;
    edb__env_put(env);
}

void
edb__env_put(edb_env *env)
{
    if (!edb__ref_put(&env->ref))
        return;
    pthread_mutex_destroy(&env->sess_lock);
    pthread_mutex_destroy(&env->bk_lock);
    free(env->path);
    free(env);
}

int
edb_env_info_get(edb_env_info *out, edb_env *env)
{
    if (out == NULL || env == NULL)
        return edb__err(EDB_INVAL, "edb_env_info_get: %s is NULL", out == NULL ? "out" : "env");
    memset(out, 0, sizeof *out);
    MDB_envinfo info;
    int rc = mdb_env_info(env->mdb, &info);
    if (rc != 0)
        return edb__mdb_err(rc, "edb_env_info_get");
    out->page_size = env->page_size;
    out->map_size = info.me_mapsize;
    out->last_page = info.me_last_pgno;
    out->txn_id = info.me_last_txnid;
    out->max_readers = info.me_maxreaders;
    out->num_readers = info.me_numreaders;
    out->flags = env->flags;
    edb__err_clear();
    return 0;
}

const char *
edb_env_path(edb_env *env)
{
    return env == NULL ? NULL : env->path;
}

int
edb_env_compact(edb_env *env, const char *dir)
{
    if (env == NULL || dir == NULL || dir[0] == '\0')
        return edb__err(EDB_INVAL, "edb_env_compact: %s is NULL", env == NULL ? "env" : "dir");
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return edb__err(EDB_INVAL, "edb_env_compact: '%s' is not a directory", dir);
    } else if (errno != ENOENT) {
        return edb__sys_err(errno, dir);
    } else if (mkdir(dir, 0700) != 0) {
        return edb__sys_err(errno, dir);
    }
    size_t n = strlen(dir) + sizeof "/data.mdb";
    char *f = malloc(n);
    if (f == NULL)
        return edb__err(EDB_NOMEM, "edb_env_compact");
    snprintf(f, n, "%s/data.mdb", dir);
    if (stat(f, &st) == 0) {
        free(f);
        return edb__err(EDB_EXISTS, "edb_env_compact: '%s' already holds a database", dir);
    }
    int rc = mdb_env_copy2(env->mdb, dir, MDB_CP_COMPACT);
    if (rc != 0) {
        free(f);
        return edb__mdb_err(rc, "edb_env_compact");
    }
    if (chmod(f, 0600) != 0) {
        int e = errno;
        free(f);
        return edb__sys_err(e, "edb_env_compact: chmod");
    }
    free(f);
    edb__err_clear();
    return 0;
}

/* Test hook: install a backup shutdown callback (used by the engine tests
 * before backup/ exists to set it). */
void edb__test_set_hook(edb_env *env, void (*fn)(edb_env *));

void
edb__test_set_hook(edb_env *env, void (*fn)(edb_env *))
{
    pthread_mutex_lock(&env->bk_lock);
    env->bk_shutdown = fn;
    pthread_mutex_unlock(&env->bk_lock);
}

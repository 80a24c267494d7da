/* bk_helpers.h: fixtures for the backup suites: a private directory per test,
 * an environment in it, raw LMDB data (in the pool DB of table slot 0, which
 * these tests never create as a table), archive reading and checking,
 * a restore into a plain LMDB file, and the abort post-conditions (copier
 * threads gone, reader slots released). */
#ifndef EDB_BK_HELPERS_H
#define EDB_BK_HELPERS_H

#include "config.h"

#ifdef EDB_TEST_SHIM
#include "tshim.h"              /* ThreadSanitizer build: Criterion cannot run there */
#else
#include <criterion/criterion.h>
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "backup.h"
#include "edb.h"
#include "edb_backup.h"
#include "env.h"
#include "ring.h"
#include "stream.h"

#define OK(x) do { int ok__ = (x); cr_assert_eq(ok__, 0, "%s -> %s (%s)", #x, \
                   edb_err_name(ok__), edb_error_last()); } while (0)
#define RC(x, want) do { int rc__ = (x); cr_assert_eq(rc__, (want), "%s -> %s, want %s (%s)", #x, \
                   edb_err_name(rc__), edb_err_name(want), edb_error_last()); } while (0)
#define MDB_OK(x) do { int m__ = (x); cr_assert_eq(m__, 0, "%s -> %s", #x, mdb_strerror(m__)); } while (0)

#define BK_DATA_DB "edb.records"

#if defined(__SANITIZE_ADDRESS__)
/* Criterion's parallel runner leaks a few bytes of its own (libcriterion
 * calloc, seen only with -j > 1); nothing of edb's is suppressed. */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
    return "leak:libcriterion.so\n";
}
#include <sanitizer/lsan_interface.h>
/* Criterion's workers end without LeakSanitizer's exit check: run it here. */
#define BK_LEAK_CHECK() \
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found a leak (see stderr)")
#else
#define BK_LEAK_CHECK() ((void)0)
#endif

static int
bk_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static inline void
bk_rm_tree(const char *dir)
{
    nftw(dir, bk_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline char *
bk_tmpdir(void)
{
    char *d = strdup("/tmp/edb-bk-XXXXXX");
    cr_assert_not_null(mkdtemp(d));
    return d;
}

static inline uint64_t
bk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void
bk_sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Scale for loops: EDB_TEST_SCALE (percent), default 100, 10 under sanitizers
 * or valgrind (RUNNING_ON_VALGRIND is not available: EDB_TEST_SCALE is set by
 * the caller there). */
static inline unsigned
bk_scale(unsigned n)
{
    const char *e = getenv("EDB_TEST_SCALE");
    unsigned pct = 100;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    pct = 10;
#endif
    if (e != NULL && *e)
        pct = (unsigned)atoi(e);
    unsigned v = (unsigned)((unsigned long long)n * pct / 100);
    return v ? v : 1;
}

/* Slowness factor for time limits: EDB_TEST_SLOW (default 1; 3 under
 * sanitizers).  helgrind.sh sets it high: "at once" under valgrind is slower. */
static inline unsigned
bk_slow(void)
{
    unsigned f = 1;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    f = 3;
#endif
    const char *e = getenv("EDB_TEST_SLOW");
    if (e != NULL && atoi(e) > 0)
        f = (unsigned)atoi(e);
    return f;
}

/* A time limit of ms milliseconds on a normal build. */
static inline unsigned
bk_ms(unsigned ms)
{
    return ms * bk_slow();
}

static inline edb_env *
bk_env_open(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/db", dir);
    edb_env_opts o = { .max_tables = 2, .flags = EDB_ENV_NOSYNC, .map_size = 1ull << 30 };
    edb_env *env = NULL;
    int rc = edb_env_open(&env, path, &o);
    cr_assert_eq(rc, 0, "edb_env_open: %s", edb_error_last());
    return env;
}

static inline MDB_dbi
bk_dbi(edb_env *env)
{
    MDB_env *m = edb__env_mdb(env);
    MDB_txn *t;
    MDB_dbi d;
    MDB_OK(mdb_txn_begin(m, NULL, MDB_RDONLY, &t));
    MDB_OK(mdb_dbi_open(t, BK_DATA_DB, 0, &d));    /* open already: edb opened it */
    MDB_OK(mdb_txn_commit(t));
    return d;
}

/* Deterministic value bytes for key k, version v. */
static inline size_t
bk_fill(uint8_t *buf, uint64_t k, uint64_t v)
{
    size_t len = 50 + (size_t)((k * 2654435761u + v * 40503u) % 3000);
    uint64_t x = k * 0x9E3779B97F4A7C15ull ^ v;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    return len;
}

/* One write txn: put keys [k0, k0 + n) at version v, delete every
 * del_every-th key below k0 (0: none).  Returns the LMDB rc. */
static inline int
bk_write(MDB_env *m, MDB_dbi d, uint64_t k0, unsigned n, uint64_t v, unsigned del_every)
{
    MDB_txn *t;
    int rc = mdb_txn_begin(m, NULL, 0, &t);
    if (rc)
        return rc;
    uint8_t buf[4096];
    for (unsigned i = 0; i < n && rc == 0; i++) {
        uint64_t k = __builtin_bswap64(k0 + i);
        MDB_val key = { sizeof k, &k }, val = { bk_fill(buf, k0 + i, v), buf };
        rc = mdb_put(t, d, &key, &val, 0);
    }
    if (del_every && rc == 0) {
        for (uint64_t j = 0; j < k0 && rc == 0; j += del_every) {
            uint64_t k = __builtin_bswap64(j);
            MDB_val key = { sizeof k, &k };
            rc = mdb_del(t, d, &key, NULL);
            if (rc == MDB_NOTFOUND)
                rc = 0;
        }
    }
    if (rc) {
        mdb_txn_abort(t);
        return rc;
    }
    return mdb_txn_commit(t);
}

/* A database of about `pages` 4 KiB pages, with free pages (deletes). */
static inline void
bk_populate(edb_env *env, unsigned rows)
{
    MDB_env *m = edb__env_mdb(env);
    MDB_dbi d = bk_dbi(env);
    for (unsigned k = 0; k < rows; k += 500)
        MDB_OK(bk_write(m, d, k, 500, 1, 0));
    MDB_OK(bk_write(m, d, rows, 10, 1, 7));     /* deletes leave free pages */
    MDB_OK(bk_write(m, d, rows + 10, 10, 2, 0));
}

/* ---- reading archives ---- */

typedef struct bk_buf {
    uint8_t *p;
    size_t n, cap;
} bk_buf;

static inline void
bk_buf_add(bk_buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        cr_assert_not_null(b->p);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* Read a whole stream with reads of `chunk` bytes; returns the last rc. */
static inline int
bk_read_all(edb_backup_stream *s, bk_buf *out, size_t chunk)
{
    uint8_t *tmp = malloc(chunk);
    cr_assert_not_null(tmp);
    int rc;
    for (;;) {
        size_t n = 0;
        rc = edb_backup_read(s, tmp, chunk, &n);
        if (rc != 0 || n == 0)
            break;
        cr_assert_leq(n, chunk);
        bk_buf_add(out, tmp, n);
    }
    free(tmp);
    return rc;
}

/* A decoded archive. */
typedef struct bk_arch {
    edb__arch_header h;
    edb__arch_trailer t;
    edb__arch_end e;
    uint64_t frames, pages;
    unsigned count_max;          /* the most pages a frame held */
    uint64_t short_frames;       /* frames but the last holding fewer than edb__arch_frame_edb() */
    const uint8_t **page;        /* page[p]: bytes of page p in the archive, or NULL */
    const edb__arch_hash *table; /* npages entries */
} bk_arch;

/* Decode and check everything doc/backup-format.md says a reader checks. */
static inline void
bk_decode(bk_arch *a, const uint8_t *p, size_t n)
{
    memset(a, 0, sizeof *a);
    const uint64_t B = EDB__ARCH_BLOCK;
    cr_assert_geq(n, 4 * B, "archive of %zu bytes", n);
    cr_assert_eq(n % B, 0, "archive length %zu not a multiple of a block", n);
    OK(edb__arch_header_decode(&a->h, p, 0));
    cr_assert_eq(a->h.flags & EDB__ARCH_F_INCREMENTAL, 0);
    uint64_t psize = a->h.page_size;
    a->page = calloc(a->h.start_npages + 1, sizeof *a->page);
    /* The archive hash (format version 2): every byte before the end block
     * but the pages of frames, computed here independently of the library's
     * edb__arch_archive_hash(). */
    edb__arch_hstate hs;
    edb__arch_hstate_reset(&hs);
    edb__arch_hstate_update(&hs, p, B);
    uint64_t off = B;
    for (;;) {
        cr_assert_leq(B, n - off, "archive ends inside a frame at %llu", (unsigned long long)off);
        if (edb__arch_block_kind(p + off) != EDB__ARCH_FRAME)
            break;
        edb__arch_frame f;
        OK(edb__arch_frame_decode(&f, p + off, &a->h, a->frames, off));
        cr_assert_leq(f.count, edb__arch_frame_edb(a->h.page_size));
        if (f.count > a->count_max)
            a->count_max = f.count;
        edb__arch_hstate_update(&hs, p + off, B);
        off += B;
        cr_assert_leq(f.count * psize, n - off);
        for (unsigned i = 0; i < f.count; i++) {
            uint64_t pg = f.entries[i].pgno;
            cr_assert_lt(pg, a->h.start_npages, "page %llu past the snapshot", (unsigned long long)pg);
            cr_assert_null(a->page[pg], "page %llu twice", (unsigned long long)pg);
            edb__arch_hash h;
            edb__arch_page_hash(&h, p + off, psize, pg);
            cr_assert(edb__arch_hash_eq(&h, &f.entries[i].hash), "page %llu hash", (unsigned long long)pg);
            a->page[pg] = p + off;
            off += psize;
        }
        a->frames++;
        a->pages += f.count;
        if (f.count < edb__arch_frame_edb(a->h.page_size) && B <= n - off &&
            edb__arch_block_kind(p + off) == EDB__ARCH_FRAME)
            a->short_frames++;
    }
    uint64_t toff = off;
    OK(edb__arch_trailer_decode(&a->t, p + off, &a->h, a->frames, a->pages, off));
    cr_assert_eq(a->t.npages, a->h.start_npages);
    cr_assert_eq(a->t.txnid, a->h.start_txnid);
    off += B;
    uint64_t tb = edb__arch_table_bytes(a->t.npages);
    cr_assert_leq(tb, n - off);
    a->table = (const edb__arch_hash *)(const void *)(p + off);
    for (uint64_t i = a->t.npages * 16; i < tb; i++)
        cr_assert_eq(p[off + i], 0, "table padding");
    off += tb;
    cr_assert_eq(n - off, B, "bytes after the end block");
    edb__arch_hstate_update(&hs, p + toff, off - toff);
    edb__arch_hash ah, lib;
    edb__arch_hstate_digest(&hs, &ah);
    edb__arch_archive_hash(&lib, p, off);
    cr_assert(edb__arch_hash_eq(&ah, &lib), "edb__arch_archive_hash differs from the walk");
    OK(edb__arch_end_decode(&a->e, p + off, &a->h, &ah, off));
    cr_assert_eq(a->e.length, n);
    /* The table is the hash of every restored page. */
    uint8_t *scratch = malloc(psize);
    for (uint64_t pg = 0; pg < a->t.npages; pg++) {
        edb__arch_hash h;
        if (pg < 2)
            edb__arch_meta_hash(&h, scratch, psize, a->t.meta, pg);
        else if (a->page[pg] != NULL)
            edb__arch_page_hash(&h, a->page[pg], psize, pg);
        else
            edb__arch_zero_hash(&h, psize, pg);
        cr_assert(edb__arch_hash_eq(&h, &a->table[pg]), "table entry %llu", (unsigned long long)pg);
    }
    free(scratch);
}

static inline void
bk_arch_free(bk_arch *a)
{
    free(a->page);
    a->page = NULL;
}

/* Pages of data.mdb in dir/db that a snapshot must carry equal the archive's:
 * call while the backup (and so its snapshot) is still open. */
static inline void
bk_compare_pages(const bk_arch *a, const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/db/data.mdb", dir);
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    size_t psize = a->h.page_size;
    uint8_t *pg = malloc(psize);
    for (uint64_t p = 2; p < a->t.npages; p++) {
        if (a->page[p] == NULL)
            continue;
        cr_assert_eq(pread(fd, pg, psize, (off_t)(p * psize)), (ssize_t)psize);
        cr_assert_eq(memcmp(pg, a->page[p], psize), 0, "page %llu differs from data.mdb",
                     (unsigned long long)p);
    }
    free(pg);
    close(fd);
}

/* Restore one full archive into dir/data.mdb (plain LMDB file). */
static inline void
bk_restore(const bk_arch *a, const char *dir)
{
    mkdir(dir, 0700);
    char path[1024];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    size_t psize = a->h.page_size;
    uint8_t *zero = calloc(1, psize), *meta = malloc(psize);
    for (uint64_t p = 0; p < a->t.npages; p++) {
        const uint8_t *src = zero;
        if (p < 2) {
            edb__arch_meta_page(meta, psize, a->t.meta, p);
            src = meta;
        } else if (a->page[p] != NULL) {
            src = a->page[p];
        }
        cr_assert_eq(pwrite(fd, src, psize, (off_t)(p * psize)), (ssize_t)psize);
    }
    free(zero);
    free(meta);
    close(fd);
}

/* XXH3 digest of every (key, value) of DB name in txn (0 if absent). */
static inline uint64_t
bk_digest_txn(MDB_txn *t, const char *name, uint64_t *count)
{
    MDB_dbi d;
    *count = 0;
    if (mdb_dbi_open(t, name, 0, &d) != 0)
        return 0;
    MDB_cursor *c;
    MDB_OK(mdb_cursor_open(t, d, &c));
    MDB_val k, v;
    edb__arch_hstate st;
    edb__arch_hstate_reset(&st);
    while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
        uint64_t kl = k.mv_size, vl = v.mv_size;
        edb__arch_hstate_update(&st, &kl, sizeof kl);
        edb__arch_hstate_update(&st, k.mv_data, k.mv_size);
        edb__arch_hstate_update(&st, &vl, sizeof vl);
        edb__arch_hstate_update(&st, v.mv_data, v.mv_size);
        (*count)++;
    }
    mdb_cursor_close(c);
    edb__arch_hash h;
    edb__arch_hstate_digest(&st, &h);
    return edb__le64(h.b);
}

/* Open the restored copy and digest its data DB; checks LMDB accepts it. */
static inline uint64_t
bk_digest_restored(const char *dir, uint64_t *count, uint64_t *txnid)
{
    MDB_env *m;
    MDB_OK(mdb_env_create(&m));
    MDB_OK(mdb_env_set_maxdbs(m, 64));
    MDB_OK(mdb_env_set_mapsize(m, 1ull << 30));
    MDB_OK(mdb_env_open(m, dir, MDB_RDONLY | MDB_NOLOCK, 0600));
    MDB_txn *t;
    MDB_OK(mdb_txn_begin(m, NULL, MDB_RDONLY, &t));
    *txnid = mdb_txn_id(t);
    uint64_t dg = bk_digest_txn(t, BK_DATA_DB, count);
    mdb_txn_abort(t);
    mdb_env_close(m);
    return dg;
}

/* ---- post-conditions of an abort ---- */

static inline int bk_tasks(void);
/* The thread count once it stops changing (a joined thread may linger an instant). */
static inline int
bk_wait_tasks_settle(void)
{
    int n = bk_tasks();
    for (int i = 0; i < 50; i++) {
        bk_sleep_ms(2);
        int m = bk_tasks();
        if (m == n)
            return n;
        n = m;
    }
    return n;
}

static inline int
bk_tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void *
bk_noop(void *p)
{
    return p;
}

/* Threads of the process before a test starts its own: create and join one
 * thread first, so that runtimes that start a helper thread with the first
 * pthread_create (ThreadSanitizer does) are counted in the baseline. */
static inline int
bk_tasks_baseline(void)
{
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, bk_noop, NULL), 0);
    pthread_join(t, NULL);
    return bk_wait_tasks_settle();
}

static int
bk_reader_line(const char *msg, void *ctx)
{
    /* mdb_reader_list prints a header line, then "pid thread txnid" per live slot. */
    int *n = ctx;
    if (strstr(msg, "pid") == NULL && strstr(msg, "(no active readers)") == NULL)
        (*n)++;
    return 0;
}

/* Live reader slots of the env (across processes). */
static inline int
bk_readers(MDB_env *m)
{
    int n = 0;
    mdb_reader_list(m, bk_reader_line, &n);
    return n;
}

/* Wait up to ms for the thread count to drop to want; returns the last count. */
static inline int
bk_wait_tasks(int want, unsigned ms)
{
    uint64_t end = bk_now_ms() + bk_ms(ms);
    int n;
    while ((n = bk_tasks()) > want && bk_now_ms() < end)
        bk_sleep_ms(2);
    return n;
}

static inline int
bk_wait_readers(MDB_env *m, int want, unsigned ms)
{
    uint64_t end = bk_now_ms() + bk_ms(ms);
    int n;
    while ((n = bk_readers(m)) > want && bk_now_ms() < end)
        bk_sleep_ms(2);
    return n;
}

/* Every backup object of this process freed (registries, backups, streams,
 * snapshots, copiers): a detached copier may need a moment to finish. */
static inline void
bk_assert_no_objects(unsigned ms)
{
    uint64_t end = bk_now_ms() + bk_ms(ms);
    while (edb__obj_live(EDB__OBJ_N) != 0 && bk_now_ms() < end)
        bk_sleep_ms(2);
    cr_assert_eq(edb__obj_live(EDB__OBJ_N), 0,
                 "objects leaked: reg %ld backup %ld stream %ld snap %ld copier %ld",
                 edb__obj_live(EDB__OBJ_REG), edb__obj_live(EDB__OBJ_BACKUP),
                 edb__obj_live(EDB__OBJ_STREAM), edb__obj_live(EDB__OBJ_SNAP),
                 edb__obj_live(EDB__OBJ_COPIER));
}

/* Readers of a database after its env was closed: open it raw. */
static inline int
bk_readers_path(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/db", dir);
    MDB_env *m;
    MDB_OK(mdb_env_create(&m));
    MDB_OK(mdb_env_set_maxdbs(m, 64));
    MDB_OK(mdb_env_open(m, path, MDB_RDONLY | MDB_NOTLS, 0600));
    int n = bk_readers(m);
    mdb_env_close(m);
    return n;
}

/* Wait until a reader is parked in edb_backup_read on s (internal view). */
static inline void
bk_wait_parked(edb_backup_stream *s, unsigned ms)
{
    uint64_t end = bk_now_ms() + bk_ms(ms);
    while (edb__ring_waiting(&s->ring) == 0) {
        cr_assert_lt(bk_now_ms(), end, "reader never parked");
        bk_sleep_ms(1);
    }
}

/* Wait until the copier of s has filled its ring (it then waits in reserve). */
static inline void
bk_wait_ring_full(edb_backup_stream *s, unsigned ms)
{
    uint64_t end = bk_now_ms() + bk_ms(ms);
    for (;;) {
        pthread_mutex_lock(&s->ring.mu);
        bool full = s->ring.count == s->ring.nslots;
        pthread_mutex_unlock(&s->ring.mu);
        if (full)
            return;
        cr_assert_lt(bk_now_ms(), end, "ring never filled");
        bk_sleep_ms(1);
    }
}

#endif

/*
 * bench_backup: the measurements of issue #3 that need the library itself.
 *
 *   bench_backup fill DB MB            fill DB through the public API until data.mdb holds MB MiB
 *   bench_backup abort DB N            N backups aborted at random points: latency of
 *                                      edb_backup_close() and time until the copier thread is gone
 *   bench_backup states DB N           edb_backup_close() latency in each state of a stream (N of
 *                                      each, interleaved): before the first read, mid-stream, ring
 *                                      full and consumer idle, rate-limited (copier asleep), after
 *                                      the end (copier gone), and the second of two streams after
 *                                      both ended; p50, p99, max per state (issue #11, point 9)
 *   bench_backup writer DB SECONDS REPS
 *                                      a writer's commits per second alone and while a backup
 *                                      streams to /dev/null, interleaved REPS times (medians)
 *   bench_backup shape NAME DB SCALE   make one of issue #12's data shapes in DB, SCALE times its
 *                                      full size (1 = full; 0.02 for a quick run):
 *                                      dense    1.5 M rows (int32 key, int64, 200-byte binary)
 *                                      page     100,000 rows of 3,500 bytes (about a page each)
 *                                      large    400 values of 1 MiB (overflow pages)
 *                                      churn    dense, then half the rows deleted, in blocks of
 *                                               1,000 consecutive keys (free pages)
 *                                      packages 63,440 package-index-like rows: a composite text
 *                                               primary key, a unique 64-character text, a
 *                                               composite text index, a descending int64 and a
 *                                               multi-valued text column (tests/bench/bench_shapes.sh)
 *
 * Figures go to stdout, one "name value unit" line each, for tests/bench/bench_backup.sh and
 * doc/performance.md.  Timings use CLOCK_MONOTONIC.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "edb.h"
#include "edb_backup.h"

#define ROW_BYTES 3000

static void
die(const char *what, int rc)
{
    fprintf(stderr, "bench_backup: %s: %s: %s\n", what, edb_err_name(rc), edb_error_last());
    exit(1);
}

#define CHECK(what, call) do { int rc_ = (call); if (rc_ < 0) die(what, rc_); } while (0)

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
pct(double *v, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static int
count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static uint64_t
file_size(const char *db)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", db);
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static edb_env *
open_env(const char *db)
{
    edb_env *env;
    CHECK("open", edb_env_open(&env, db, NULL));
    return env;
}

static void
fill(const char *db, uint64_t mb)
{
    edb_env *env = open_env(db);
    edb_session *s;
    CHECK("session", edb_session_begin(&s, env));
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT64, .flags = EDB_COL_AUTOINC },
        { .name = "data", .type = EDB_COL_BINARY },
    };
    edb_index_def idx[] = { { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY } };
    edb_table_def def = { .name = "blob", .columns = cols, .ncolumns = 2, .indexes = idx, .nindexes = 1 };
    int rc = edb_table_create(s, &def);
    if (rc < 0 && rc != EDB_EXISTS)
        die("create table", rc);
    edb_cursor *c;
    CHECK("cursor", edb_cursor_open(&c, s, "blob"));
    edb_colid data;
    CHECK("column", edb_column_id(&data, c, "data"));
    unsigned char buf[ROW_BYTES];
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    uint64_t rows = 0;
    while (file_size(db) < mb << 20) {
        CHECK("begin", edb_txn_begin(s, 0));
        for (int i = 0; i < 1000; i++) {
            for (size_t k = 0; k < sizeof buf; k += 8) {
                seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
                memcpy(buf + k, &seed, sizeof buf - k < 8 ? sizeof buf - k : 8);
            }
            CHECK("prepare", edb_update_prepare(c, EDB_PREP_INSERT));
            CHECK("set", edb_column_set(c, data, buf, sizeof buf, 0));
            CHECK("insert", edb_update(c));
            rows++;
        }
        CHECK("commit", edb_txn_commit(s));
    }
    printf("fill_rows %llu rows\nfill_size %.1f MiB\n", (unsigned long long)rows,
           (double)file_size(db) / 1048576.0);
    edb_cursor_close(c);
    edb_session_end(s);
    edb_env_close(env);
}

static void
abort_bench(const char *db, int n)
{
    edb_env *env = open_env(db);
    double *close_us = calloc((size_t)n, sizeof *close_us);
    double *gone_us = calloc((size_t)n, sizeof *gone_us);
    if (!close_us || !gone_us)
        die("calloc", EDB_NOMEM);
    int base = count_threads();
    unsigned seed = 12345;
    char buf[65536];
    double worst_gone = 0;
    for (int i = 0; i < n; i++) {
        edb_backup *bk;
        edb_backup_stream *st;
        CHECK("backup begin", edb_backup_begin(&bk, env, NULL));
        CHECK("backup open", edb_backup_open(&st, bk));
        /* read a random amount: none, a little, or a lot (the copier may be
         * blocked on a full ring, or mid-batch) */
        int chunks = rand_r(&seed) % 4 == 0 ? 0 : rand_r(&seed) % 64;
        for (int k = 0; k < chunks; k++) {
            size_t got;
            if (edb_backup_read(st, buf, sizeof buf, &got) < 0 || got == 0)
                break;
        }
        double t0 = now_s();
        edb_backup_close(st);
        double t1 = now_s();
        while (count_threads() > base && now_s() - t1 < 5.0)
            usleep(20);
        double t2 = now_s();
        edb_backup_end(bk);
        close_us[i] = (t1 - t0) * 1e6;
        gone_us[i] = (t2 - t0) * 1e6;
        if (gone_us[i] > worst_gone)
            worst_gone = gone_us[i];
    }
    qsort(close_us, (size_t)n, sizeof *close_us, cmp_double);
    qsort(gone_us, (size_t)n, sizeof *gone_us, cmp_double);
    printf("aborts %d count\n", n);
    printf("close_p50 %.1f us\nclose_p99 %.1f us\nclose_max %.1f us\n",
           pct(close_us, (size_t)n, 0.5), pct(close_us, (size_t)n, 0.99), close_us[n - 1]);
    printf("copier_gone_p50 %.1f us\ncopier_gone_p99 %.1f us\ncopier_gone_max %.1f us\n",
           pct(gone_us, (size_t)n, 0.5), pct(gone_us, (size_t)n, 0.99), gone_us[n - 1]);
    free(close_us);
    free(gone_us);
    edb_env_close(env);
}

/* ---- close latency per state (issue #11, point 9) ---- */

enum { ST_FRESH, ST_MID, ST_FULL, ST_RATE, ST_END, ST_SECOND, ST_N };
static const char *const st_name[ST_N] = { "fresh", "mid_stream", "ring_full", "rate_limited",
                                           "after_end", "second_of_two" };

/* Read s to its end. */
static void
read_to_end(edb_backup_stream *s, char *buf, size_t size)
{
    size_t got;
    do
        CHECK("backup read", edb_backup_read(s, buf, size, &got));
    while (got > 0);
}

static double
timed_close(edb_backup_stream *s)
{
    double t0 = now_s();
    edb_backup_close(s);
    return (now_s() - t0) * 1e6;
}

static void
states_bench(const char *db, int n)
{
    edb_env *env = open_env(db);
    double *us[ST_N];
    for (int k = 0; k < ST_N; k++)
        if ((us[k] = calloc((size_t)n, sizeof *us[k])) == NULL)
            die("calloc", EDB_NOMEM);
    static char buf[1 << 16];
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < ST_N; k++) {           /* interleaved: the machine's noise spreads evenly */
            edb_backup *bk;
            edb_backup_stream *s, *s2 = NULL;
            edb_backup_opts o = { .rate_limit = k == ST_RATE ? 4096 : 0 };
            CHECK("backup begin", edb_backup_begin(&bk, env, &o));
            CHECK("backup open", edb_backup_open(&s, bk));
            size_t got;
            switch (k) {
            case ST_FRESH:
                break;
            case ST_MID:
                for (int c = 0; c < 8; c++)
                    CHECK("backup read", edb_backup_read(s, buf, sizeof buf, &got));
                break;
            case ST_FULL:
            case ST_RATE:
                CHECK("backup read", edb_backup_read(s, buf, sizeof buf, &got));
                usleep(20000);                          /* the copier fills the ring, or sleeps */
                break;
            case ST_END:
                read_to_end(s, buf, sizeof buf);
                usleep(2000);                           /* the copier is gone */
                break;
            case ST_SECOND:
                CHECK("backup open", edb_backup_open(&s2, bk));
                read_to_end(s, buf, sizeof buf);
                read_to_end(s2, buf, sizeof buf);
                usleep(2000);
                edb_backup_close(s);
                s = s2;
                break;
            }
            us[k][i] = timed_close(s);
            edb_backup_end(bk);
        }
    }
    double worst = 0;
    for (int k = 0; k < ST_N; k++) {
        qsort(us[k], (size_t)n, sizeof *us[k], cmp_double);
        printf("close_%s_p50 %.1f us\nclose_%s_p99 %.1f us\nclose_%s_max %.1f us\n", st_name[k],
               pct(us[k], (size_t)n, 0.5), st_name[k], pct(us[k], (size_t)n, 0.99), st_name[k],
               us[k][n - 1]);
        if (us[k][n - 1] > worst)
            worst = us[k][n - 1];
        free(us[k]);
    }
    printf("close_states %d count\nclose_worst_any_state %.1f us\n", n, worst);
    edb_env_close(env);
}

struct drain { edb_env *env; atomic_bool stop; uint64_t bytes; int rc; };

/* Back up again and again to /dev/null until told to stop. */
static void *
drain_main(void *arg)
{
    struct drain *d = arg;
    int fd = open("/dev/null", O_WRONLY);
    static char buf[1 << 20];
    while (!atomic_load(&d->stop)) {
        edb_backup *bk;
        edb_backup_stream *st;
        if ((d->rc = edb_backup_begin(&bk, d->env, NULL)) < 0)
            break;
        if ((d->rc = edb_backup_open(&st, bk)) < 0) {
            edb_backup_end(bk);
            break;
        }
        size_t got;
        while (!atomic_load(&d->stop) && (d->rc = edb_backup_read(st, buf, sizeof buf, &got)) == 0 && got > 0) {
            if (write(fd, buf, got) < 0)
                break;
            d->bytes += got;
        }
        edb_backup_close(st);
        edb_backup_end(bk);
        if (d->rc < 0)
            break;
    }
    close(fd);
    return NULL;
}

/* Commits per second of one writer updating random rows in small txns. */
static double
writer_rate(edb_env *env, double seconds, uint64_t rows)
{
    edb_session *s;
    edb_cursor *c;
    edb_colid data, id;
    CHECK("session", edb_session_begin(&s, env));
    CHECK("cursor", edb_cursor_open(&c, s, "blob"));
    CHECK("column", edb_column_id(&data, c, "data"));
    CHECK("column", edb_column_id(&id, c, "id"));
    unsigned char buf[ROW_BYTES];
    memset(buf, 0xA5, sizeof buf);
    unsigned seed = 42;
    uint64_t commits = 0;
    double t0 = now_s(), t;
    while ((t = now_s()) - t0 < seconds) {
        CHECK("begin", edb_txn_begin(s, 0));
        for (int i = 0; i < 10; i++) {
            int64_t key = 1 + (int64_t)(((uint64_t)rand_r(&seed) << 16 ^ (uint64_t)rand_r(&seed)) % rows);
            CHECK("key", edb_key_make(c, &key, sizeof key, EDB_KEY_NEW));
            CHECK("seek", edb_cursor_seek(c, EDB_SEEK_EQ));
            buf[i] = (unsigned char)commits;
            CHECK("prepare", edb_update_prepare(c, EDB_PREP_REPLACE));
            CHECK("set", edb_column_set(c, data, buf, sizeof buf, 0));
            CHECK("update", edb_update(c));
        }
        CHECK("commit", edb_txn_commit(s));
        commits++;
    }
    edb_cursor_close(c);
    edb_session_end(s);
    return (double)commits / (t - t0);
}

static void
writer_bench(const char *db, double seconds, int reps)
{
    edb_env_opts opts = { .flags = EDB_ENV_NOSYNC };
    edb_env *env;
    CHECK("open", edb_env_open(&env, db, &opts));
    edb_session *s;
    uint64_t rows;
    CHECK("session", edb_session_begin(&s, env));
    edb_tree_stat st;
    CHECK("stat", edb_table_stat(&st, s, "blob", NULL));
    rows = st.entries;
    edb_session_end(s);
    double alone[16], during[16];
    if (reps > 16)
        reps = 16;
    for (int r = 0; r < reps; r++) {
        alone[r] = writer_rate(env, seconds, rows);
        struct drain d = { .env = env };
        pthread_t t;
        pthread_create(&t, NULL, drain_main, &d);
        during[r] = writer_rate(env, seconds, rows);
        atomic_store(&d.stop, true);
        pthread_join(t, NULL);
        if (d.rc < 0)
            die("backup during writes", d.rc);
        fprintf(stderr, "rep %d: alone %.0f/s, during backup %.0f/s (backup read %.1f MiB)\n",
                r, alone[r], during[r], (double)d.bytes / 1048576.0);
    }
    qsort(alone, (size_t)reps, sizeof *alone, cmp_double);
    qsort(during, (size_t)reps, sizeof *during, cmp_double);
    double a = alone[reps / 2], b = during[reps / 2];
    printf("writer_alone %.0f commits/s\nwriter_during_backup %.0f commits/s\nwriter_ratio %.2f x\n",
           a, b, b / a);
    edb_env_close(env);
}

/* ---- issue #12's data shapes ---- */

static uint64_t
xs64(uint64_t *s)
{
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

static void
rnd_bytes(unsigned char *b, size_t n, uint64_t *seed)
{
    for (size_t k = 0; k < n; k += 8) {
        uint64_t x = xs64(seed);
        memcpy(b + k, &x, n - k < 8 ? n - k : 8);
    }
}

/* One table "t" (k INT32 primary, a INT64, b BINARY), rows of @bytes bytes of
 * b, keys 0 .. rows-1 in order, @per_txn a transaction; then, if @del_every,
 * one block of 1,000 keys in every del_every deleted. */
static void
shape_kv(const char *db, uint64_t rows, size_t bytes, unsigned per_txn, unsigned del_every)
{
    edb_env *env = open_env(db);
    edb_session *s;
    CHECK("session", edb_session_begin(&s, env));
    edb_column_def cols[] = {
        { .name = "k", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "a", .type = EDB_COL_INT64 },
        { .name = "b", .type = EDB_COL_BINARY },
    };
    edb_index_def idx[] = { { .name = "pk", .key = "+k\0", .flags = EDB_IDX_PRIMARY } };
    edb_table_def def = { .name = "t", .columns = cols, .ncolumns = 3, .indexes = idx, .nindexes = 1 };
    CHECK("create table", edb_table_create(s, &def));
    edb_cursor *c;
    CHECK("cursor", edb_cursor_open(&c, s, "t"));
    edb_colid ck, ca, cb;
    CHECK("column", edb_column_id(&ck, c, "k"));
    CHECK("column", edb_column_id(&ca, c, "a"));
    CHECK("column", edb_column_id(&cb, c, "b"));
    unsigned char *buf = malloc(bytes);
    if (buf == NULL)
        die("malloc", EDB_NOMEM);
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (uint64_t r = 0; r < rows;) {
        CHECK("begin", edb_txn_begin(s, 0));
        for (unsigned i = 0; i < per_txn && r < rows; i++, r++) {
            int32_t k = (int32_t)r;
            int64_t a = (int64_t)xs64(&seed);
            rnd_bytes(buf, bytes, &seed);
            CHECK("prepare", edb_update_prepare(c, EDB_PREP_INSERT));
            CHECK("set k", edb_column_set(c, ck, &k, sizeof k, 0));
            CHECK("set a", edb_column_set(c, ca, &a, sizeof a, 0));
            CHECK("set b", edb_column_set(c, cb, buf, bytes, 0));
            CHECK("insert", edb_update(c));
        }
        CHECK("commit", edb_txn_commit(s));
    }
    /* Churn: of every del_every blocks of 1,000 consecutive keys the first
     * is deleted, so whole leaf pages become free pages (deleting every
     * second row would only leave half-empty leaves). */
    uint64_t deleted = 0;
    for (uint64_t r = 0; del_every && r < rows;) {
        CHECK("begin", edb_txn_begin(s, 0));
        for (unsigned i = 0; i < per_txn && r < rows; i++, r = r % 1000 == 999 ? r + 1 + 1000 * (del_every - 1) : r + 1) {
            int32_t k = (int32_t)r;
            CHECK("key", edb_key_make(c, &k, sizeof k, EDB_KEY_NEW));
            CHECK("seek", edb_cursor_seek(c, EDB_SEEK_EQ));
            CHECK("delete", edb_record_delete(c));
            deleted++;
        }
        CHECK("commit", edb_txn_commit(s));
    }
    printf("shape_rows %llu rows\nshape_deleted %llu rows\nshape_size %.1f MiB\n", (unsigned long long)rows,
           (unsigned long long)deleted, (double)file_size(db) / 1048576.0);
    free(buf);
    edb_cursor_close(c);
    edb_session_end(s);
    edb_env_close(env);
}

/* A pseudo-word of 3 to 10 letters from @seed into @p; returns its length. */
static size_t
word(char *p, uint64_t *seed)
{
    static const char letters[] = "etaoinshrdlcumwfgypbvkxjqz";
    uint64_t x = xs64(seed);
    size_t n = 3 + x % 8;
    for (size_t i = 0; i < n; i++) {
        x = xs64(seed);
        p[i] = letters[(x % 26) * (x % 26) / 26];   /* skewed towards frequent letters */
    }
    return n;
}

/* @n words separated by @sep into @p (no NUL); returns the length. */
static size_t
words(char *p, unsigned n, char sep, uint64_t *seed)
{
    size_t len = 0;
    for (unsigned i = 0; i < n; i++) {
        if (i)
            p[len++] = sep;
        len += word(p + len, seed);
    }
    return len;
}

/* Package-index-like rows (the shape of Debian's Packages file): names
 * repeat across versions and architectures, a unique hex digest each, a
 * long description, several dependencies in a multi-valued column. */
static void
shape_packages(const char *db, uint64_t rows)
{
    edb_env *env = open_env(db);
    edb_session *s;
    CHECK("session", edb_session_begin(&s, env));
    edb_column_def cols[] = {
        { .name = "package", .type = EDB_COL_TEXT, .flags = EDB_COL_NOTNULL },
        { .name = "version", .type = EDB_COL_TEXT, .flags = EDB_COL_NOTNULL },
        { .name = "architecture", .type = EDB_COL_TEXT },
        { .name = "section", .type = EDB_COL_TEXT },
        { .name = "maintainer", .type = EDB_COL_TEXT },
        { .name = "filename", .type = EDB_COL_TEXT },
        { .name = "sha256", .type = EDB_COL_TEXT },
        { .name = "size", .type = EDB_COL_INT64 },
        { .name = "installed_size", .type = EDB_COL_INT64 },
        { .name = "description", .type = EDB_COL_TEXT },
        { .name = "depends", .type = EDB_COL_TEXT, .flags = EDB_COL_MULTIVALUED },
    };
    edb_index_def idx[] = {
        { .name = "pk", .key = "+package\0+version\0", .flags = EDB_IDX_PRIMARY },
        { .name = "by_sha", .key = "+sha256\0", .flags = EDB_IDX_UNIQUE },
        { .name = "by_section", .key = "+section\0+package\0" },
        { .name = "by_size", .key = "-size\0" },
    };
    edb_table_def def = { .name = "packages", .columns = cols, .ncolumns = 11, .indexes = idx, .nindexes = 4 };
    CHECK("create table", edb_table_create(s, &def));
    edb_cursor *c;
    CHECK("cursor", edb_cursor_open(&c, s, "packages"));
    edb_colid id[11];
    for (size_t i = 0; i < 11; i++)
        CHECK("column", edb_column_id(&id[i], c, cols[i].name));
    static const char *arch[] = { "amd64", "all", "arm64", "i386" };
    static const char *sect[] = { "admin", "devel", "doc", "editors", "games", "libs", "net", "python",
                                  "science", "text", "utils", "web", "x11", "perl", "misc", "sound" };
    uint64_t seed = 0x5EEDF00Dull;
    char buf[8192], name[64], ver[64];
    size_t nlen = 0;
    for (uint64_t r = 0; r < rows;) {
        CHECK("begin", edb_txn_begin(s, 0));
        for (unsigned i = 0; i < 5000 && r < rows; i++, r++) {
            /* A new name for most rows, a second version of the last one for some. */
            size_t vlen;
            if (r == 0 || xs64(&seed) % 5 != 0) {
                nlen = words(name, 1 + (unsigned)(xs64(&seed) % 3), '-', &seed);
                nlen += (size_t)snprintf(name + nlen, sizeof name - nlen, "%llu", (unsigned long long)(r % 97));
            }
            vlen = (size_t)snprintf(ver, sizeof ver, "%u.%u.%llu-%u", (unsigned)(xs64(&seed) % 20),
                                    (unsigned)(xs64(&seed) % 40), (unsigned long long)r, 1u + (unsigned)(r % 3));
            CHECK("prepare", edb_update_prepare(c, EDB_PREP_INSERT));
            CHECK("set", edb_column_set(c, id[0], name, nlen, 0));
            CHECK("set", edb_column_set(c, id[1], ver, vlen, 0));
            const char *a = arch[xs64(&seed) % 4], *sc = sect[xs64(&seed) % 16];
            CHECK("set", edb_column_set(c, id[2], a, strlen(a), 0));
            CHECK("set", edb_column_set(c, id[3], sc, strlen(sc), 0));
            size_t l = words(buf, 2, ' ', &seed);
            l += (size_t)snprintf(buf + l, sizeof buf - l, " <%.*s@debian.org>", 8, name);
            CHECK("set", edb_column_set(c, id[4], buf, l, 0));
            l = (size_t)snprintf(buf, sizeof buf, "pool/main/%c/%.*s/%.*s_%.*s_%s.deb", name[0], (int)nlen, name,
                                 (int)nlen, name, (int)vlen, ver, a);
            CHECK("set", edb_column_set(c, id[5], buf, l, 0));
            for (int h = 0; h < 64; h += 16)
                snprintf(buf + h, 17, "%016llx", (unsigned long long)xs64(&seed));
            CHECK("set", edb_column_set(c, id[6], buf, 64, 0));
            int64_t size = (int64_t)(xs64(&seed) % 50000000), isize = size * 3 / 1024;
            CHECK("set", edb_column_set(c, id[7], &size, sizeof size, 0));
            CHECK("set", edb_column_set(c, id[8], &isize, sizeof isize, 0));
            l = words(buf, 20 + (unsigned)(xs64(&seed) % 120), ' ', &seed);
            CHECK("set", edb_column_set(c, id[9], buf, l, 0));
            unsigned ndeps = (unsigned)(xs64(&seed) % 9);
            for (unsigned d = 0; d < ndeps; d++) {
                l = words(buf, 1 + (unsigned)(xs64(&seed) % 2), '-', &seed);
                l += (size_t)snprintf(buf + l, sizeof buf - l, " (>= %u.%u)", (unsigned)(xs64(&seed) % 9),
                                      (unsigned)(xs64(&seed) % 30));
                CHECK("set", edb_column_set(c, id[10], buf, l, EDB_SET_APPEND));
            }
            CHECK("insert", edb_update(c));
        }
        CHECK("commit", edb_txn_commit(s));
    }
    printf("shape_rows %llu rows\nshape_size %.1f MiB\n", (unsigned long long)rows,
           (double)file_size(db) / 1048576.0);
    edb_cursor_close(c);
    edb_session_end(s);
    edb_env_close(env);
}

static void
shape(const char *name, const char *db, double scale)
{
    if (!(scale > 0) || scale > 100) {
        fprintf(stderr, "bench_backup: SCALE must be in (0, 100]\n");
        exit(2);
    }
#define SCALED(n, min) ((uint64_t)((double)(n) * scale) < (min) ? (min) : (uint64_t)((double)(n) * scale))
    if (strcmp(name, "dense") == 0)
        shape_kv(db, SCALED(1500000, 1000), 200, 10000, 0);
    else if (strcmp(name, "page") == 0)
        shape_kv(db, SCALED(100000, 100), 3500, 2000, 0);
    else if (strcmp(name, "large") == 0)
        shape_kv(db, SCALED(400, 4), 1u << 20, 20, 0);
    else if (strcmp(name, "churn") == 0)
        shape_kv(db, SCALED(1500000, 1000), 200, 10000, 2);
    else if (strcmp(name, "packages") == 0)
        shape_packages(db, SCALED(63440, 500));
    else {
        fprintf(stderr, "bench_backup: unknown shape '%s' (dense, page, large, churn, packages)\n", name);
        exit(2);
    }
#undef SCALED
}

int
main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "fill") == 0)
        fill(argv[2], strtoull(argv[3], NULL, 10));
    else if (argc >= 4 && strcmp(argv[1], "abort") == 0)
        abort_bench(argv[2], atoi(argv[3]));
    else if (argc >= 4 && strcmp(argv[1], "states") == 0)
        states_bench(argv[2], atoi(argv[3]));
    else if (argc >= 5 && strcmp(argv[1], "writer") == 0)
        writer_bench(argv[2], atof(argv[3]), atoi(argv[4]));
    else if (argc >= 5 && strcmp(argv[1], "shape") == 0)
        shape(argv[2], argv[3], atof(argv[4]));
    else {
        fprintf(stderr, "usage: bench_backup fill DB MB | abort DB N | states DB N | writer DB SECONDS REPS"
                " | shape NAME DB SCALE\n");
        return 2;
    }
    return 0;
}

/*
 * bench_incr: issue #4's benchmark: incremental, low-pin and rate-limited backups.
 *
 *   bench_incr DIR [MB] [REPS]
 *
 * Builds a database of MB MiB (default 256) of 3000-byte rows (about one row a
 * page) once in DIR/template, then, with medians of REPS (default 3)
 * interleaved repetitions:
 *
 *  1. incremental: a full backup; 1% of the rows, chosen at random, updated
 *     (1000 rows a txn); then full and incremental backups of that state
 *     alternate (A B A B ...), each written to a file and fsynced.  Target:
 *     the incremental archive is at most 3% of the full one and takes at most
 *     half its time.
 *  2. low-pin: classic and low-pin backups alternate, each on a fresh copy of
 *     the template, under the same sustained writer (200 txns/s, each moving
 *     money between 10 random rows) and a consumer limited to 50 MB/s.  The
 *     file's growth (LMDB last page) during the backup.  Target: low-pin growth
 *     at most 10% of classic growth.  The same again under issue #12's writer,
 *     faster than the consumer: transactions of 20 random row updates as fast
 *     as they go, a consumer limited to 20 MB/s (the final pass's pin must not
 *     follow the consumer's speed).
 *  3. rate: backups limited to 20 and 100 MB/s to /dev/null: bytes over the
 *     time from edb_backup_open() to the last byte.  Target: within 5%.
 *
 * One "name value unit" line per figure, then a Markdown table; exit 1 if a
 * target is missed.  Uses raw LMDB inside an edb environment (like the backup
 * test suites) so that the writer's load is exactly known.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
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
#include "env.h"

#define ROW      3000u
#define DATA_DB  "edb.records"

static void
die(const char *what, int rc)
{
    fprintf(stderr, "bench_incr: %s: %s: %s\n", what, edb_err_name(rc), edb_error_last());
    exit(1);
}
#define CHECK(what, call) do { int rc_ = (call); if (rc_ < 0) die(what, rc_); } while (0)
#define MCHECK(what, call) do { int rc_ = (call); if (rc_ != 0) { \
    fprintf(stderr, "bench_incr: %s: %s\n", what, mdb_strerror(rc_)); exit(1); } } while (0)

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static uint64_t
xs(uint64_t *s)
{
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

static void
fill_row(uint8_t *buf, uint64_t k, uint64_t v)
{
    uint64_t x = k * 0x9E3779B97F4A7C15ull ^ (v + 1);
    for (unsigned i = 0; i < ROW; i += 8) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        memcpy(buf + i, &x, ROW - i < 8 ? ROW - i : 8);
    }
}

static edb_env *
env_open(const char *dir)
{
    edb_env_opts o = { .max_tables = 2, .flags = EDB_ENV_NOSYNC, .map_size = 16ull << 30 };
    edb_env *env = NULL;
    CHECK("edb_env_open", edb_env_open(&env, dir, &o));
    return env;
}

static MDB_dbi
data_dbi(edb_env *env)
{
    MDB_txn *t;
    MDB_dbi d;
    MCHECK("read txn", mdb_txn_begin(edb__env_mdb(env), NULL, MDB_RDONLY, &t));
    MCHECK("data DB", mdb_dbi_open(t, DATA_DB, 0, &d));     /* open already: edb opened it */
    MCHECK("commit", mdb_txn_commit(t));
    return d;
}

static uint64_t
last_pgno(edb_env *env)
{
    MDB_envinfo info;
    MCHECK("env info", mdb_env_info(edb__env_mdb(env), &info));
    return (uint64_t)info.me_last_pgno;
}

/* Update @n rows (keys < @rows) chosen by @seed, @per_txn a txn. */
static void
update_rows(edb_env *env, uint64_t rows, uint64_t n, unsigned per_txn, uint64_t seed, uint64_t ver)
{
    MDB_env *m = edb__env_mdb(env);
    MDB_dbi d = data_dbi(env);
    uint8_t buf[ROW];
    for (uint64_t done = 0; done < n;) {
        MDB_txn *t;
        MCHECK("write txn", mdb_txn_begin(m, NULL, 0, &t));
        for (unsigned i = 0; i < per_txn && done < n; i++, done++) {
            uint64_t k = xs(&seed) % rows, kb = __builtin_bswap64(k);
            fill_row(buf, k, ver);
            MDB_val key = { 8, &kb }, val = { ROW, buf };
            MCHECK("put", mdb_put(t, d, &key, &val, 0));
        }
        MCHECK("commit", mdb_txn_commit(t));
    }
}

static uint64_t
make_template(const char *dir, unsigned mb)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/template/data.mdb", dir);
    struct stat st;
    uint64_t rows = (uint64_t)mb * 1048576u / 4096u;
    if (stat(path, &st) == 0 && (uint64_t)st.st_size >= (uint64_t)mb * 1048576u * 9 / 10)
        return rows;
    snprintf(path, sizeof path, "rm -rf '%s/template'", dir);
    if (system(path) != 0)
        exit(1);
    snprintf(path, sizeof path, "%s/template", dir);
    fprintf(stderr, "bench_incr: filling %s with %llu rows ...\n", path, (unsigned long long)rows);
    edb_env *env = env_open(path);
    MDB_env *m = edb__env_mdb(env);
    MDB_dbi d = data_dbi(env);
    uint8_t buf[ROW];
    for (uint64_t k = 0; k < rows;) {
        MDB_txn *t;
        MCHECK("write txn", mdb_txn_begin(m, NULL, 0, &t));
        for (unsigned i = 0; i < 5000 && k < rows; i++, k++) {
            uint64_t kb = __builtin_bswap64(k);
            fill_row(buf, k, 0);
            MDB_val key = { 8, &kb }, val = { ROW, buf };
            MCHECK("put", mdb_put(t, d, &key, &val, MDB_APPEND));
        }
        MCHECK("commit", mdb_txn_commit(t));
    }
    MCHECK("sync", mdb_env_sync(m, 1));
    edb_env_close(env);
    return rows;
}

/* A fresh copy of the template in dir/run. */
static void
fresh_copy(const char *dir, char *run, size_t n)
{
    char cmd[2048];
    snprintf(run, n, "%s/run", dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/template/data.mdb' '%s/data.mdb'",
             run, run, dir, run);
    if (system(cmd) != 0)
        exit(1);
}

typedef struct consumer {
    double rate;           /* bytes/s the consumer takes, 0 = as fast as it can */
    int fd;                /* where the bytes go (-1: nowhere) */
} consumer;

typedef struct backup_result {
    double secs;           /* edb_backup_begin to the last byte (to fsync for files) */
    double stream_secs;    /* edb_backup_open to the last byte */
    uint64_t bytes;
    uint64_t pin_us;
} backup_result;

static void
run_backup(edb_env *env, const edb_backup_opts *o, const consumer *c, backup_result *r)
{
    static uint8_t buf[1 << 20];
    double t0 = now_s();
    edb_backup *bk = NULL;
    edb_backup_stream *s = NULL;
    CHECK("edb_backup_begin", edb_backup_begin(&bk, env, o));
    double t1 = now_s();
    CHECK("edb_backup_open", edb_backup_open(&s, bk));
    uint64_t bytes = 0;
    size_t chunk = c->rate > 0 ? 65536 : sizeof buf;
    for (;;) {
        size_t n = 0;
        CHECK("edb_backup_read", edb_backup_read(s, buf, chunk, &n));
        if (n == 0)
            break;
        if (c->fd >= 0) {
            size_t off = 0;
            while (off < n) {
                ssize_t w = write(c->fd, buf + off, n - off);
                if (w <= 0) {
                    perror("bench_incr: write");
                    exit(1);
                }
                off += (size_t)w;
            }
        }
        bytes += n;
        if (c->rate > 0)                    /* the consumer's own pace */
            sleep_s(t1 + (double)bytes / c->rate - now_s());
    }
    double t2 = now_s();
    if (c->fd >= 0 && fsync(c->fd) != 0)
        perror("bench_incr: fsync");
    CHECK("edb_backup_pin_time", edb_backup_pin_time(bk, &r->pin_us, NULL));
    edb_backup_close(s);
    edb_backup_end(bk);
    r->secs = now_s() - t0;
    r->stream_secs = t2 - t1;
    r->bytes = bytes;
}

static void
backup_file(edb_env *env, const edb_backup_opts *o, const char *path, backup_result *r)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    consumer c = { 0, fd };
    run_backup(env, o, &c, r);
    close(fd);
}

/* ---- the sustained writer ---- */

typedef struct writer {
    edb_env *env;
    uint64_t rows, seed;
    double tps;            /* 0: as fast as it goes */
    unsigned per_txn;
    atomic_bool stop;
    atomic_uint_fast64_t txns;
} writer;

static void *
writer_main(void *arg)
{
    writer *w = arg;
    MDB_env *m = edb__env_mdb(w->env);
    MDB_dbi d = data_dbi(w->env);
    uint8_t buf[ROW];
    double t0 = now_s();
    while (!atomic_load(&w->stop)) {
        MDB_txn *t;
        MCHECK("writer txn", mdb_txn_begin(m, NULL, 0, &t));
        for (unsigned i = 0; i < w->per_txn; i++) {
            uint64_t k = xs(&w->seed) % w->rows, kb = __builtin_bswap64(k);
            MDB_val key = { 8, &kb }, val;
            MCHECK("writer get", mdb_get(t, d, &key, &val));
            memcpy(buf, val.mv_data, ROW);
            buf[i % 64] ^= 1;               /* "moving money": the row changes */
            val = (MDB_val){ ROW, buf };
            MCHECK("writer put", mdb_put(t, d, &key, &val, 0));
        }
        MCHECK("writer commit", mdb_txn_commit(t));
        uint64_t n = atomic_fetch_add(&w->txns, 1) + 1;
        if (w->tps > 0)
            sleep_s(t0 + (double)n / w->tps - now_s());
    }
    return NULL;
}

static int failures;

static void target(const char *what, bool ok);

typedef struct lowpin_result {
    double grow_c, grow_l;     /* medians, pages */
    double pin_c, pin_l;       /* medians, s */
    double secs_c, secs_l;
} lowpin_result;

/* Classic and low-pin backups alternate, each on a fresh copy of the
 * template, under a writer of @tps txns/s (0: flat out) of @per_txn row
 * updates and a consumer taking @rate bytes/s. */
static void
lowpin_scenario(const char *dir, uint64_t rows, int reps, double tps, unsigned per_txn, double rate,
                lowpin_result *out)
{
    char run[1024];
    double *gc = calloc((size_t)reps, sizeof *gc), *gl = calloc((size_t)reps, sizeof *gl);
    double *sc = calloc((size_t)reps, sizeof *sc), *sl = calloc((size_t)reps, sizeof *sl);
    double *pc = calloc((size_t)reps, sizeof *pc), *pl = calloc((size_t)reps, sizeof *pl);
    for (int i = 0; i < 2 * reps; i++) {
        bool low = i % 2 == 1;
        fresh_copy(dir, run, sizeof run);
        edb_env *env = env_open(run);
        writer w = { .env = env, .rows = rows, .seed = 0xC0FFEE + (uint64_t)i, .tps = tps, .per_txn = per_txn };
        pthread_t wt;
        if (pthread_create(&wt, NULL, writer_main, &w) != 0)
            exit(1);
        sleep_s(0.5);                       /* steady state: the writer has recycled its first pages */
        uint64_t pg0 = last_pgno(env), tx0 = atomic_load(&w.txns);
        edb_backup_opts o = { .flags = low ? EDB_BACKUP_LOW_PIN : 0 };
        consumer c = { rate, -1 };
        backup_result r;
        run_backup(env, &o, &c, &r);
        uint64_t grew = last_pgno(env) - pg0, txns = atomic_load(&w.txns) - tx0;
        atomic_store(&w.stop, true);
        pthread_join(wt, NULL);
        edb_env_close(env);
        (low ? gl : gc)[i / 2] = (double)grew;
        (low ? sl : sc)[i / 2] = r.secs;
        (low ? pl : pc)[i / 2] = (double)r.pin_us / 1e6;
        fprintf(stderr, "bench_incr: %s backup (writer %s, %u rows a txn, consumer %.0f MB/s): %.2f s, "
                "%llu writer txns, grew %llu pages, pinned %.3f s\n",
                low ? "low-pin" : "classic", tps > 0 ? "paced" : "flat out", per_txn, rate / 1e6, r.secs,
                (unsigned long long)txns, (unsigned long long)grew, (double)r.pin_us / 1e6);
    }
    out->grow_c = median(gc, reps);
    out->grow_l = median(gl, reps);
    out->secs_c = median(sc, reps);
    out->secs_l = median(sl, reps);
    out->pin_c = median(pc, reps);
    out->pin_l = median(pl, reps);
    const char *tag = tps > 0 ? "lowpin" : "lowpin_fast";
    printf("%s_classic_growth %.0f pages\n%s_lowpin_growth %.0f pages\n%s_growth_pct %.2f %%\n",
           tag, out->grow_c, tag, out->grow_l, tag, 100.0 * out->grow_l / out->grow_c);
    printf("%s_classic_s %.3f s\n%s_lowpin_s %.3f s\n", tag, out->secs_c, tag, out->secs_l);
    printf("%s_classic_pin_s %.3f s\n%s_lowpin_pin_s %.3f s\n", tag, out->pin_c, tag, out->pin_l);
    free(gc); free(gl); free(sc); free(sl); free(pc); free(pl);
}


static void
target(const char *what, bool ok)
{
    if (!ok) {
        fprintf(stderr, "bench_incr: target missed: %s\n", what);
        failures++;
    }
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_incr DIR [MB] [REPS]\n");
        return 2;
    }
    const char *dir = argv[1];
    unsigned mb = argc > 2 ? (unsigned)atoi(argv[2]) : 256;
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    if (mb < 16 || reps < 1 || reps > 50) {
        fprintf(stderr, "bench_incr: MB >= 16, 1 <= REPS <= 50\n");
        return 2;
    }
    mkdir(dir, 0700);
    uint64_t rows = make_template(dir, mb);
    char run[1024], full[1100], incr[1100], base[1100];
    snprintf(base, sizeof base, "%s/base.edbk", dir);
    snprintf(full, sizeof full, "%s/full.edbk", dir);
    snprintf(incr, sizeof incr, "%s/incr.edbk", dir);
    double *tf = calloc((size_t)reps, sizeof *tf), *ti = calloc((size_t)reps, sizeof *ti);

    /* 1. incremental after 1% of the rows changed */
    fresh_copy(dir, run, sizeof run);
    edb_env *env = env_open(run);
    backup_result r;
    edb_backup_opts of = { 0 };
    backup_file(env, &of, base, &r);
    update_rows(env, rows, rows / 100, 1000, 0x5EED, 1);
    edb_backup_opts oi = { .flags = EDB_BACKUP_INCREMENTAL, .base = base };
    uint64_t fbytes = 0, ibytes = 0;
    for (int i = 0; i < reps; i++) {
        backup_file(env, &of, full, &r);
        tf[i] = r.secs;
        fbytes = r.bytes;
        backup_file(env, &oi, incr, &r);
        ti[i] = r.secs;
        ibytes = r.bytes;
    }
    edb_env_close(env);
    double mf = median(tf, reps), mi = median(ti, reps);
    double size_pct = 100.0 * (double)ibytes / (double)fbytes;
    printf("incr_full_bytes %llu B\nincr_incr_bytes %llu B\nincr_size_pct %.2f %%\n",
           (unsigned long long)fbytes, (unsigned long long)ibytes, size_pct);
    printf("incr_full_s %.3f s\nincr_incr_s %.3f s\nincr_time_ratio %.3f\n", mf, mi, mi / mf);
    target("incremental archive <= 3% of the full one", size_pct <= 3.0);
    target("incremental time <= half the full backup's", mi <= mf / 2);
    unlink(base);
    unlink(full);
    unlink(incr);

    /* 2. low-pin vs classic: file growth under a sustained writer */
    lowpin_result lp1, lp2;
    lowpin_scenario(dir, rows, reps, 200, 10, 50e6, &lp1);
    target("low-pin growth <= 10% of classic growth (200 txn/s writer)", lp1.grow_l <= lp1.grow_c / 10);
    lowpin_scenario(dir, rows, reps, 0, 20, 20e6, &lp2);
    target("low-pin growth <= 10% of classic growth (writer faster than the consumer)",
           lp2.grow_l <= lp2.grow_c / 10);

    /* 3. rate limits */
    fresh_copy(dir, run, sizeof run);
    env = env_open(run);
    const double rates[] = { 20e6, 100e6 };
    double rate_got[2];
    for (size_t k = 0; k < 2; k++) {
        double *v = calloc((size_t)reps, sizeof *v);
        for (int i = 0; i < reps; i++) {
            edb_backup_opts o = { .rate_limit = (uint64_t)rates[k] };
            consumer c = { 0, -1 };
            run_backup(env, &o, &c, &r);
            v[i] = (double)r.bytes / r.stream_secs;
        }
        double got = median(v, reps);
        rate_got[k] = got;
        printf("rate_%.0fMBps_achieved %.0f B/s\nrate_%.0fMBps_error_pct %.2f %%\n", rates[k] / 1e6, got,
               rates[k] / 1e6, 100.0 * (got - rates[k]) / rates[k]);
        target("rate-limited backup within 5% of its limit", got >= rates[k] * 0.95 && got <= rates[k] * 1.05);
        free(v);
    }
    edb_env_close(env);
    snprintf(run, sizeof run, "rm -rf '%s/run'", dir);
    if (system(run) != 0)
        failures++;

    printf("\n| measurement (%u MiB, 3000-byte rows, median of %d) | value | target |\n|---|---:|---|\n",
           mb, reps);
    printf("| incremental after 1%% of rows updated: size / full | %.2f %% | <= 3 %% |\n", size_pct);
    printf("| incremental time / full time (both to a file, fsynced) | %.3f (%.2f s / %.2f s) | <= 0.5 |\n",
           mi / mf, mi, mf);
    printf("| file growth, low-pin / classic (200 txn/s writer, 50 MB/s consumer) | %.2f %% (%.0f / %.0f pages) | <= 10 %% |\n",
           100.0 * lp1.grow_l / lp1.grow_c, lp1.grow_l, lp1.grow_c);
    printf("| longest pin, low-pin / classic | %.3f s / %.3f s | |\n", lp1.pin_l, lp1.pin_c);
    printf("| file growth, low-pin / classic (writer flat out, 20 rows a txn, 20 MB/s consumer) | %.2f %% (%.0f / %.0f pages) | <= 10 %% |\n",
           100.0 * lp2.grow_l / lp2.grow_c, lp2.grow_l, lp2.grow_c);
    printf("| longest pin, low-pin / classic (same runs) | %.3f s / %.3f s | |\n", lp2.pin_l, lp2.pin_c);
    printf("| backup time, low-pin / classic (same runs) | %.2f s / %.2f s | |\n", lp2.secs_l, lp2.secs_c);
    for (size_t k = 0; k < 2; k++)
        printf("| rate limit %.0f MB/s: achieved | %.2f MB/s (%+.2f %%) | within 5 %% |\n", rates[k] / 1e6,
               rate_got[k] / 1e6, 100.0 * (rate_got[k] - rates[k]) / rates[k]);
    free(tf); free(ti);
    return failures ? 1 : 0;
}

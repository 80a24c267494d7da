/*
 * bench_engine.c: the engine benchmark (`make bench`, issue #2).
 *
 * One table of n rows (default 1,000,000): an INT64 primary key, an INT64
 * secondary key and a 100-byte payload.  Four phases, each timed alone:
 *
 *   insert  all rows in random primary-key order, in transactions of 10,000
 *   lookup  n random point lookups by primary key, reading the payload
 *   seek    n random seeks on the secondary index, fetching the record's payload
 *   scan    a full scan in primary-key order reading one column (the secondary key)
 *   plain   ROWS/10 inserts of sequential int32 keys into a second table (id, v),
 *           one outer transaction
 *   nested  as many more, each in a nested level of its own: begin + insert +
 *           commit per row, in one outer transaction (ESE code that nests a
 *           level per update).  nested/plain is the cost of a level; the
 *           keyspace (format 4) makes it independent of the number of tables
 *           (issue #13's target: at least 0.5).  LMDB: a nested write txn
 *           (mdb_txn_begin with a parent) per row; SQLite: SAVEPOINT/RELEASE.
 *
 * run three ways in the same process run:
 *
 *   edb     the public API (edb_update, edb_key_make + edb_cursor_seek, ...)
 *   lmdb    raw LMDB doing the equivalent puts and gets: a primary DB (key: the
 *           8-byte order-preserving id, value: sk + payload) and an index DB
 *           (key: the 8-byte order-preserving sk, value: the primary key)
 *   sqlite  WAL, synchronous=OFF, prepared statements, INTEGER PRIMARY KEY plus
 *           one index on sk; SQLite's default page cache (2 MB) unless -c sets
 *           one (-c 524288: 512 MiB, the whole database stays cached)
 *
 * Durability is the same for all three: no fsync at commit (EDB_ENV_NOSYNC,
 * MDB_NOSYNC, synchronous=OFF).  Repetitions are interleaved (rep r runs the
 * engines in an order rotated by r, each on a fresh database) and the medians
 * are reported, because the machine is shared and noisy.  Every read phase
 * computes a checksum of what it read; the engines must agree, or the run fails.
 *
 * Usage: bench_engine [-n ROWS] [-r REPS] [-e edb,lmdb,sqlite] [-d DIR] [-s SEED] [-c KIB] [-M MIB] [-T N] [-t N] [-a] [-C] [-m]
 *   -t N creates N more empty edb tables (two indexes each) before the phases.
 *   -a adds a fifth phase, autolookup: ROWS/10 point lookups, each in a transaction of
 *      its own (no target; it shows the per-transaction cost).
 *   -C times with the thread's CPU clock (CLOCK_THREAD_CPUTIME_ID) instead of the wall clock.
 *   -m prints the summary as a Markdown table (for doc/performance.md).
 *
 * Instruction counts per phase (exact, repeatable):
 *   valgrind --tool=callgrind --callgrind-out-file=cg.%p bench_engine -n 20000 -r 1 -M 1024
 * writes one part per engine and phase (cg.PID.1 = first engine's insert, ...;
 * the "Trigger:" line of each part names it).
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <lmdb.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "edb.h"

/* Under `valgrind --tool=callgrind` each phase of each engine is dumped as its
 * own profile part (instruction counts are exact and repeat, unlike timings on
 * a shared machine); outside valgrind these are no-ops. */
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define BENCH_CALLGRIND 1
#endif
#endif
#ifndef BENCH_CALLGRIND
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(s) ((void)(s))
#endif

#define PAYLOAD 100
#define BATCH 10000
#define MAXREPS 31

enum { PH_INSERT, PH_LOOKUP, PH_SEEK, PH_SCAN, PH_AUTO, PH_PLAIN, PH_NESTED, NPHASES };
static const char *const phase_name[NPHASES] = { "insert", "lookup", "seek", "scan", "autolookup",
                                                 "plain", "nested" };
/* PH_AUTO (-a): n / AUTO_DIV point lookups by primary key, each in a transaction of
 * its own (edb: no explicit transaction; LMDB: a read txn reset and renewed per
 * lookup, as edb does; SQLite: an autocommit SELECT).  It measures what a
 * transaction costs (before format 4 it grew with edb's max_tables, -T). */
#define AUTO_DIV 10
static bool auto_on;

static size_t
phase_rows(size_t n, int ph)
{
    if (ph != PH_AUTO && ph != PH_PLAIN && ph != PH_NESTED)
        return n;
    return n / AUTO_DIV > 0 ? n / AUTO_DIV : 1;
}

/* The rows: id = i + 1, sk = mix(id) (a bijection, so sk is unique), a payload
 * drawn from a PRNG.  Generated before any timing. */
typedef struct data {
    size_t n;
    int64_t *ins;          /* ids in insert order */
    int64_t *look;         /* ids in lookup order (another permutation) */
    uint8_t *payload;      /* n * PAYLOAD bytes, row id at (id - 1) * PAYLOAD */
} data;

static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

static int64_t
sk_of(int64_t id)
{
    return (int64_t)mix64((uint64_t)id);
}

static uint64_t rng;

static uint64_t
rnd(void)
{
    rng += UINT64_C(0x9e3779b97f4a7c15);
    return mix64(rng);
}

static void
shuffle(int64_t *a, size_t n)
{
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(rnd() % (i + 1));
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static void *
xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "bench_engine: out of memory (%zu bytes)\n", n);
        exit(EXIT_FAILURE);
    }
    return p;
}

static void
data_make(data *d, size_t n, uint64_t seed)
{
    rng = seed;
    d->n = n;
    d->ins = xmalloc(n * sizeof *d->ins);
    d->look = xmalloc(n * sizeof *d->look);
    d->payload = xmalloc(n * PAYLOAD);
    for (size_t i = 0; i < n; i++)
        d->ins[i] = d->look[i] = (int64_t)i + 1;
    shuffle(d->ins, n);
    shuffle(d->look, n);
    for (size_t i = 0; i < n * PAYLOAD; i += 8) {
        uint64_t r = rnd();
        memcpy(d->payload + i, &r, n * PAYLOAD - i < 8 ? n * PAYLOAD - i : 8);
    }
}

static const uint8_t *
payload_of(const data *d, int64_t id)
{
    return d->payload + (size_t)(id - 1) * PAYLOAD;
}

/* What a read phase folds in per row it read: the whole payload matters. */
static uint64_t
fold(uint64_t acc, const uint8_t *p, size_t len)
{
    uint64_t a = 0, b = 0;
    if (len >= 16) {
        memcpy(&a, p, 8);
        memcpy(&b, p + len - 8, 8);
    }
    return acc + mix64(a ^ (b * 31) ^ len);
}

/* The 8-byte order-preserving form of an int64 (big-endian, sign bit flipped),
 * the same bytes edb's key codec puts after its prefix byte. */
static void
be64(uint8_t out[8], int64_t v)
{
    uint64_t u = (uint64_t)v ^ UINT64_C(0x8000000000000000);
    for (int i = 7; i >= 0; i--, u >>= 8)
        out[i] = (uint8_t)u;
}

/* -C: time with the thread's CPU clock instead of the wall clock (a loaded
 * machine deschedules the benchmark; CPU time leaves that out). */
static bool cpu_clock;
/* -k: keep each run's database (for mdb_stat, sqlite3_analyzer). */
static bool keep_dbs;

static double
now(void)
{
    struct timespec ts;
    clock_gettime(cpu_clock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
die(const char *engine, const char *what, const char *msg)
{
    fprintf(stderr, "bench_engine: %s: %s: %s\n", engine, what, msg);
    exit(EXIT_FAILURE);
}

/* ---- edb ----------------------------------------------------------------- */

typedef struct edb_state {
    edb_env *env;
    edb_session *s;
    edb_cursor *c, *nc;     /* nc: the second table, "nest" (plain, nested) */
    edb_colid id, sk, payload;
} edb_state;

#define EDB_CHECK(call, what) do { int rc_ = (call); \
    if (rc_ < 0) die("edb", what, edb_error_last()); } while (0)

static uint64_t map_size = UINT64_C(64) << 30;   /* -M: edb's default, for both */
static unsigned max_tables;                       /* -T: 0 = edb's default */
static unsigned extra_tables;                     /* -t: empty tables made before the phases */

static void
edb_open_(edb_state *st, const char *dir)
{
    edb_env_opts o = { .flags = EDB_ENV_NOSYNC, .map_size = map_size, .max_tables = max_tables };
    EDB_CHECK(edb_env_open(&st->env, dir, &o), "env open");
    EDB_CHECK(edb_session_begin(&st->s, st->env), "session");
    static const edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT64, .flags = EDB_COL_NOTNULL },
        { .name = "sk", .type = EDB_COL_INT64, .flags = EDB_COL_NOTNULL },
        { .name = "payload", .type = EDB_COL_BINARY, .max_size = PAYLOAD },
    };
    static const edb_index_def idx[] = {
        { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY },
        { .name = "by_sk", .key = "+sk\0", .flags = 0 },
    };
    edb_table_def t = { .name = "bench", .columns = cols, .ncolumns = 3, .indexes = idx, .nindexes = 2 };
    EDB_CHECK(edb_table_create(st->s, &t), "table create");
    EDB_CHECK(edb_cursor_open(&st->c, st->s, "bench"), "cursor open");
    EDB_CHECK(edb_column_id(&st->id, st->c, "id"), "column id");
    EDB_CHECK(edb_column_id(&st->sk, st->c, "sk"), "column sk");
    EDB_CHECK(edb_column_id(&st->payload, st->c, "payload"), "column payload");
    static const edb_column_def ncols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "v", .type = EDB_COL_INT32 },
    };
    static const edb_index_def nidx[] = { { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY } };
    edb_table_def nt = { .name = "nest", .columns = ncols, .ncolumns = 2, .indexes = nidx, .nindexes = 1 };
    EDB_CHECK(edb_table_create(st->s, &nt), "table create");
    EDB_CHECK(edb_cursor_open(&st->nc, st->s, "nest"), "cursor open");
    /* -t: more tables (two indexes each), to show what the count costs */
    if (extra_tables > 0) {
        EDB_CHECK(edb_txn_begin(st->s, 0), "txn begin");
        static const edb_index_def xidx[] = { { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY },
                                              { .name = "by_sk", .key = "+sk\0", .flags = 0 } };
        for (unsigned i = 0; i < extra_tables; i++) {
            char name[32];
            snprintf(name, sizeof name, "extra%06u", i);
            edb_table_def xt = { .name = name, .columns = cols, .ncolumns = 3, .indexes = xidx, .nindexes = 2 };
            EDB_CHECK(edb_table_create(st->s, &xt), "extra table create");
        }
        EDB_CHECK(edb_txn_commit(st->s), "commit");
    }
}

static void
edb_close_(edb_state *st)
{
    edb_cursor_close(st->c);
    edb_cursor_close(st->nc);
    edb_session_end(st->s);
    edb_env_close(st->env);
}

static uint64_t
edb_phase(edb_state *st, const data *d, int ph)
{
    uint64_t sum = 0;
    uint8_t buf[PAYLOAD];
    size_t actual;
    if (ph == PH_INSERT) {
        for (size_t i = 0; i < d->n; i += BATCH) {
            EDB_CHECK(edb_txn_begin(st->s, 0), "txn begin");
            for (size_t j = i; j < i + BATCH && j < d->n; j++) {
                int64_t id = d->ins[j], sk = sk_of(id);
                EDB_CHECK(edb_update_prepare(st->c, EDB_PREP_INSERT), "prepare");
                EDB_CHECK(edb_column_set(st->c, st->id, &id, 8, 0), "set id");
                EDB_CHECK(edb_column_set(st->c, st->sk, &sk, 8, 0), "set sk");
                EDB_CHECK(edb_column_set(st->c, st->payload, payload_of(d, id), PAYLOAD, 0), "set payload");
                EDB_CHECK(edb_update(st->c), "update");
            }
            EDB_CHECK(edb_txn_commit(st->s), "commit");
        }
        return 0;
    }
    if (ph == PH_PLAIN || ph == PH_NESTED) {
        int32_t m = (int32_t)phase_rows(d->n, ph), base = ph == PH_PLAIN ? 1 : m + 1;
        EDB_CHECK(edb_txn_begin(st->s, 0), "txn begin");
        for (int32_t id = base; id < base + m; id++) {
            if (ph == PH_NESTED)
                EDB_CHECK(edb_txn_begin(st->s, 0), "nested begin");
            EDB_CHECK(edb_update_prepare(st->nc, EDB_PREP_INSERT), "prepare");
            EDB_CHECK(edb_column_set(st->nc, 1, &id, 4, 0), "set id");
            EDB_CHECK(edb_column_set(st->nc, 2, &id, 4, 0), "set v");
            EDB_CHECK(edb_update(st->nc), "update");
            if (ph == PH_NESTED)
                EDB_CHECK(edb_txn_commit(st->s), "nested commit");
        }
        EDB_CHECK(edb_txn_commit(st->s), "commit");
        return 0;
    }
    if (ph == PH_AUTO) {
        EDB_CHECK(edb_cursor_set_index(st->c, NULL), "set index");
        for (size_t i = 0; i < phase_rows(d->n, ph); i++) {
            int64_t k = d->look[i];
            EDB_CHECK(edb_key_make(st->c, &k, 8, EDB_KEY_NEW), "key make");
            int rc = edb_cursor_seek(st->c, EDB_SEEK_EQ);
            if (rc != 0)
                die("edb", "seek", rc == EDB_NOTFOUND ? "a key that was inserted is not found" : edb_error_last());
            EDB_CHECK(edb_column_get(st->c, st->payload, buf, sizeof buf, &actual, 0), "column get");
            sum = fold(sum, buf, actual);
        }
        return sum;
    }
    EDB_CHECK(edb_txn_begin(st->s, EDB_TXN_READONLY), "read txn");
    if (ph == PH_LOOKUP || ph == PH_SEEK) {
        EDB_CHECK(edb_cursor_set_index(st->c, ph == PH_LOOKUP ? NULL : "by_sk"), "set index");
        for (size_t i = 0; i < d->n; i++) {
            int64_t k = ph == PH_LOOKUP ? d->look[i] : sk_of(d->look[i]);
            EDB_CHECK(edb_key_make(st->c, &k, 8, EDB_KEY_NEW), "key make");
            int rc = edb_cursor_seek(st->c, EDB_SEEK_EQ);
            if (rc != 0)
                die("edb", "seek", rc == EDB_NOTFOUND ? "a key that was inserted is not found" : edb_error_last());
            EDB_CHECK(edb_column_get(st->c, st->payload, buf, sizeof buf, &actual, 0), "column get");
            sum = fold(sum, buf, actual);
        }
    } else {
        EDB_CHECK(edb_cursor_set_index(st->c, NULL), "set index");
        int rc = edb_cursor_move(st->c, EDB_MOVE_FIRST);
        size_t rows = 0;
        while (rc == 0) {
            int64_t sk;
            EDB_CHECK(edb_column_get(st->c, st->sk, &sk, 8, &actual, 0), "column get");
            sum += (uint64_t)sk;
            rows++;
            rc = edb_cursor_move(st->c, EDB_MOVE_NEXT);
        }
        if (rc != EDB_NOTFOUND)
            die("edb", "scan", edb_error_last());
        sum += rows;
    }
    EDB_CHECK(edb_txn_commit(st->s), "read txn end");
    return sum;
}

/* ---- raw LMDB -------------------------------------------------------------- */

typedef struct lmdb_state {
    MDB_env *env;
    MDB_dbi prim, index, nest;
} lmdb_state;

#define MDB_CHECK(call, what) do { int rc_ = (call); \
    if (rc_ != 0) die("lmdb", what, mdb_strerror(rc_)); } while (0)

static void
lmdb_open_(lmdb_state *st, const char *dir)
{
    MDB_CHECK(mdb_env_create(&st->env), "env create");
    MDB_CHECK(mdb_env_set_mapsize(st->env, (size_t)map_size), "mapsize");
    MDB_CHECK(mdb_env_set_maxdbs(st->env, 4), "maxdbs");
    MDB_CHECK(mdb_env_open(st->env, dir, MDB_NOSYNC | MDB_NOTLS, 0600), "env open");
    MDB_txn *txn;
    MDB_CHECK(mdb_txn_begin(st->env, NULL, 0, &txn), "txn");
    MDB_CHECK(mdb_dbi_open(txn, "primary", MDB_CREATE, &st->prim), "dbi primary");
    MDB_CHECK(mdb_dbi_open(txn, "index", MDB_CREATE, &st->index), "dbi index");
    MDB_CHECK(mdb_dbi_open(txn, "nest", MDB_CREATE, &st->nest), "dbi nest");
    MDB_CHECK(mdb_txn_commit(txn), "commit");
}

static void
lmdb_close_(lmdb_state *st)
{
    mdb_env_close(st->env);
}

static uint64_t
lmdb_phase(lmdb_state *st, const data *d, int ph)
{
    uint64_t sum = 0;
    MDB_txn *txn;
    uint8_t kb[8], vb[8 + PAYLOAD], ib[8];
    MDB_val k = { 8, kb }, v, ik = { 8, ib };
    if (ph == PH_INSERT) {
        for (size_t i = 0; i < d->n; i += BATCH) {
            MDB_CHECK(mdb_txn_begin(st->env, NULL, 0, &txn), "txn begin");
            for (size_t j = i; j < i + BATCH && j < d->n; j++) {
                int64_t id = d->ins[j], sk = sk_of(id);
                be64(kb, id);
                memcpy(vb, &sk, 8);
                memcpy(vb + 8, payload_of(d, id), PAYLOAD);
                v.mv_size = sizeof vb;
                v.mv_data = vb;
                MDB_CHECK(mdb_put(txn, st->prim, &k, &v, MDB_NOOVERWRITE), "put primary");
                be64(ib, sk);
                v.mv_size = 8;
                v.mv_data = kb;
                MDB_CHECK(mdb_put(txn, st->index, &ik, &v, 0), "put index");
            }
            MDB_CHECK(mdb_txn_commit(txn), "commit");
        }
        return 0;
    }
    if (ph == PH_PLAIN || ph == PH_NESTED) {
        int32_t m = (int32_t)phase_rows(d->n, ph), base = ph == PH_PLAIN ? 1 : m + 1;
        MDB_CHECK(mdb_txn_begin(st->env, NULL, 0, &txn), "txn begin");
        for (int32_t id = base; id < base + m; id++) {
            MDB_txn *w = txn;
            if (ph == PH_NESTED)
                MDB_CHECK(mdb_txn_begin(st->env, txn, 0, &w), "nested begin");
            uint32_t u = (uint32_t)id ^ 0x80000000u;
            uint8_t nk[4] = { (uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u };
            MDB_val key = { 4, nk }, val = { 4, &id };
            MDB_CHECK(mdb_put(w, st->nest, &key, &val, MDB_NOOVERWRITE), "put nest");
            if (ph == PH_NESTED)
                MDB_CHECK(mdb_txn_commit(w), "nested commit");
        }
        MDB_CHECK(mdb_txn_commit(txn), "commit");
        return 0;
    }
    if (ph == PH_AUTO) {
        MDB_CHECK(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn), "read txn");
        mdb_txn_reset(txn);
        for (size_t i = 0; i < phase_rows(d->n, ph); i++) {
            MDB_CHECK(mdb_txn_renew(txn), "renew");
            be64(kb, d->look[i]);
            MDB_CHECK(mdb_get(txn, st->prim, &k, &v), "get primary");
            sum = fold(sum, (const uint8_t *)v.mv_data + 8, v.mv_size - 8);
            mdb_txn_reset(txn);
        }
        mdb_txn_abort(txn);
        return sum;
    }
    MDB_CHECK(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn), "read txn");
    if (ph == PH_LOOKUP || ph == PH_SEEK) {
        for (size_t i = 0; i < d->n; i++) {
            if (ph == PH_LOOKUP) {
                be64(kb, d->look[i]);
            } else {
                be64(ib, sk_of(d->look[i]));
                MDB_CHECK(mdb_get(txn, st->index, &ik, &v), "get index");
                memcpy(kb, v.mv_data, 8);
            }
            MDB_CHECK(mdb_get(txn, st->prim, &k, &v), "get primary");
            sum = fold(sum, (const uint8_t *)v.mv_data + 8, v.mv_size - 8);
        }
    } else {
        MDB_cursor *c;
        MDB_CHECK(mdb_cursor_open(txn, st->prim, &c), "cursor");
        size_t rows = 0;
        int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        while (rc == 0) {
            int64_t sk;
            memcpy(&sk, v.mv_data, 8);
            sum += (uint64_t)sk;
            rows++;
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        if (rc != MDB_NOTFOUND)
            die("lmdb", "scan", mdb_strerror(rc));
        mdb_cursor_close(c);
        sum += rows;
    }
    mdb_txn_abort(txn);
    return sum;
}

/* ---- SQLite ------------------------------------------------------------------ */

static long sqlite_cache_kib;   /* -c: 0 = SQLite's default */

typedef struct sqlite_state {
    sqlite3 *db;
    sqlite3_stmt *ins, *look, *seek, *scan, *nest, *sp, *rel;
} sqlite_state;

static void
sql_exec(sqlite_state *st, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &err) != SQLITE_OK)
        die("sqlite", sql, err ? err : "?");
}

static sqlite3_stmt *
sql_prepare(sqlite_state *st, const char *sql)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        die("sqlite", sql, sqlite3_errmsg(st->db));
    return s;
}

static void
sqlite_open_(sqlite_state *st, const char *dir)
{
    char path[4200];
    if ((size_t)snprintf(path, sizeof path, "%s/bench.sqlite", dir) >= sizeof path)
        die("sqlite", "open", "directory name too long");
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        die("sqlite", "open", sqlite3_errmsg(st->db));
    sql_exec(st, "PRAGMA journal_mode=WAL");
    sql_exec(st, "PRAGMA synchronous=OFF");
    if (sqlite_cache_kib > 0) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA cache_size=-%ld", sqlite_cache_kib);
        sql_exec(st, pragma);
    }
    sql_exec(st, "CREATE TABLE bench(id INTEGER PRIMARY KEY, sk INTEGER NOT NULL, payload BLOB)");
    sql_exec(st, "CREATE INDEX by_sk ON bench(sk)");
    st->ins = sql_prepare(st, "INSERT INTO bench(id, sk, payload) VALUES (?1, ?2, ?3)");
    st->look = sql_prepare(st, "SELECT payload FROM bench WHERE id = ?1");
    st->seek = sql_prepare(st, "SELECT payload FROM bench WHERE sk = ?1");
    st->scan = sql_prepare(st, "SELECT sk FROM bench ORDER BY id");
    sql_exec(st, "CREATE TABLE nest(id INTEGER PRIMARY KEY, v INTEGER)");
    st->nest = sql_prepare(st, "INSERT INTO nest(id, v) VALUES (?1, ?1)");
    st->sp = sql_prepare(st, "SAVEPOINT level");
    st->rel = sql_prepare(st, "RELEASE level");
}

static void
sqlite_close_(sqlite_state *st)
{
    sqlite3_finalize(st->ins);
    sqlite3_finalize(st->look);
    sqlite3_finalize(st->seek);
    sqlite3_finalize(st->scan);
    sqlite3_finalize(st->nest);
    sqlite3_finalize(st->sp);
    sqlite3_finalize(st->rel);
    sqlite3_close(st->db);
}

static uint64_t
sqlite_phase(sqlite_state *st, const data *d, int ph)
{
    uint64_t sum = 0;
    if (ph == PH_INSERT) {
        for (size_t i = 0; i < d->n; i += BATCH) {
            sql_exec(st, "BEGIN");
            for (size_t j = i; j < i + BATCH && j < d->n; j++) {
                int64_t id = d->ins[j];
                sqlite3_bind_int64(st->ins, 1, id);
                sqlite3_bind_int64(st->ins, 2, sk_of(id));
                sqlite3_bind_blob(st->ins, 3, payload_of(d, id), PAYLOAD, SQLITE_STATIC);
                if (sqlite3_step(st->ins) != SQLITE_DONE)
                    die("sqlite", "insert", sqlite3_errmsg(st->db));
                sqlite3_reset(st->ins);
            }
            sql_exec(st, "COMMIT");
        }
        return 0;
    }
    if (ph == PH_PLAIN || ph == PH_NESTED) {
        int64_t m = (int64_t)phase_rows(d->n, ph), base = ph == PH_PLAIN ? 1 : m + 1;
        sql_exec(st, "BEGIN");
        for (int64_t id = base; id < base + m; id++) {
            if (ph == PH_NESTED && sqlite3_step(st->sp) != SQLITE_DONE)
                die("sqlite", "savepoint", sqlite3_errmsg(st->db));
            sqlite3_reset(st->sp);
            sqlite3_bind_int64(st->nest, 1, id);
            if (sqlite3_step(st->nest) != SQLITE_DONE)
                die("sqlite", "insert", sqlite3_errmsg(st->db));
            sqlite3_reset(st->nest);
            if (ph == PH_NESTED && sqlite3_step(st->rel) != SQLITE_DONE)
                die("sqlite", "release", sqlite3_errmsg(st->db));
            sqlite3_reset(st->rel);
        }
        sql_exec(st, "COMMIT");
        return 0;
    }
    if (ph == PH_AUTO) {
        for (size_t i = 0; i < phase_rows(d->n, ph); i++) {
            sqlite3_bind_int64(st->look, 1, d->look[i]);
            if (sqlite3_step(st->look) != SQLITE_ROW)
                die("sqlite", "lookup", "a key that was inserted is not found");
            sum = fold(sum, sqlite3_column_blob(st->look, 0), (size_t)sqlite3_column_bytes(st->look, 0));
            sqlite3_reset(st->look);
        }
        return sum;
    }
    sql_exec(st, "BEGIN");
    if (ph == PH_LOOKUP || ph == PH_SEEK) {
        sqlite3_stmt *s = ph == PH_LOOKUP ? st->look : st->seek;
        for (size_t i = 0; i < d->n; i++) {
            int64_t id = d->look[i];
            sqlite3_bind_int64(s, 1, ph == PH_LOOKUP ? id : sk_of(id));
            if (sqlite3_step(s) != SQLITE_ROW)
                die("sqlite", "lookup", "a key that was inserted is not found");
            sum = fold(sum, sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0));
            sqlite3_reset(s);
        }
    } else {
        size_t rows = 0;
        int rc;
        while ((rc = sqlite3_step(st->scan)) == SQLITE_ROW) {
            sum += (uint64_t)sqlite3_column_int64(st->scan, 0);
            rows++;
        }
        if (rc != SQLITE_DONE)
            die("sqlite", "scan", sqlite3_errmsg(st->db));
        sqlite3_reset(st->scan);
        sum += rows;
    }
    sql_exec(st, "COMMIT");
    return sum;
}

/* ---- driver -------------------------------------------------------------------- */

enum { E_EDB, E_LMDB, E_SQLITE, NENGINES };
static const char *const engine_name[NENGINES] = { "edb", "lmdb", "sqlite" };

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void
rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Run all phases of one engine on a fresh database in a new directory under base. */
static void
run_engine(int e, const data *d, const char *base, double secs[NPHASES], uint64_t sums[NPHASES])
{
    char dir[4096];
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s-XXXXXX", base, engine_name[e]) >= sizeof dir)
        die(engine_name[e], "mkdtemp", "directory name too long");
    if (mkdtemp(dir) == NULL)
        die(engine_name[e], "mkdtemp", strerror(errno));
    edb_state es;
    lmdb_state ls;
    sqlite_state ss;
    memset(&es, 0, sizeof es);
    memset(&ls, 0, sizeof ls);
    memset(&ss, 0, sizeof ss);
    switch (e) {
    case E_EDB: edb_open_(&es, dir); break;
    case E_LMDB: lmdb_open_(&ls, dir); break;
    default: sqlite_open_(&ss, dir); break;
    }
    for (int ph = 0; ph < NPHASES; ph++) {
        if (ph == PH_AUTO && !auto_on) {
            secs[ph] = 1;
            sums[ph] = 0;
            continue;
        }
        char part[64];
        snprintf(part, sizeof part, "%s %s", engine_name[e], phase_name[ph]);
        CALLGRIND_ZERO_STATS;
        double t0 = now();
        switch (e) {
        case E_EDB: sums[ph] = edb_phase(&es, d, ph); break;
        case E_LMDB: sums[ph] = lmdb_phase(&ls, d, ph); break;
        default: sums[ph] = sqlite_phase(&ss, d, ph); break;
        }
        secs[ph] = now() - t0;
        CALLGRIND_DUMP_STATS_AT(part);
    }
    switch (e) {
    case E_EDB: edb_close_(&es); break;
    case E_LMDB: lmdb_close_(&ls); break;
    default: sqlite_close_(&ss); break;
    }
    if (keep_dbs)
        printf("%s: database kept in %s\n", engine_name[e], dir);
    else
        rm_tree(dir);
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
median(const double *v, int n)
{
    double t[MAXREPS];
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static const char *
optarg_cache(long kib)
{
    static char b[32];
    snprintf(b, sizeof b, "%ld", kib);
    return b;
}

static const char *
optarg_num(unsigned v)
{
    static char b[32];
    snprintf(b, sizeof b, "%u", v);
    return b;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: bench_engine [-n ROWS] [-r REPS] [-e edb,lmdb,sqlite] [-d DIR] [-s SEED] [-c KIB] [-M MIB] [-T N] [-t N] [-a] [-C] [-k] [-m]\n"
               "  -n ROWS  rows (default 1000000)\n"
               "  -r REPS  interleaved repetitions, medians reported (default 3, at most %d)\n"
               "  -e LIST  engines to run (default edb,lmdb,sqlite)\n"
               "  -d DIR   where the databases go (default $TMPDIR or /tmp)\n"
               "  -s SEED  data and order seed (default 1)\n"
               "  -c KIB   SQLite page cache in KiB (default: SQLite's own, 2000 KiB)\n"
               "  -M MIB   edb and LMDB map size (default 65536; valgrind needs less)\n"
               "  -T N     edb's max_tables (ignored since format 4: no table limit)\n"
               "  -t N     create N more (empty) edb tables with two indexes each first\n"
               "  -a       also time ROWS/%d point lookups in a transaction each (autolookup)\n"
               "  -C       time with the thread's CPU clock, not the wall clock (loaded machines)\n"
               "  -k       keep every run's database and print where it is\n"
               "  -m       print the summary as a Markdown table\n", MAXREPS, AUTO_DIV);
}

int
main(int argc, char **argv)
{
    size_t n = 1000000;
    int reps = 3;
    bool on[NENGINES] = { true, true, true }, markdown = false;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    uint64_t seed = 1;
    int opt;
    while ((opt = getopt(argc, argv, "n:r:e:d:s:c:M:T:t:aCkmh")) != -1) {
        switch (opt) {
        case 'a': auto_on = true; break;
        case 'C': cpu_clock = true; break;
        case 'k': keep_dbs = true; break;
        case 'n': n = strtoull(optarg, NULL, 10); break;
        case 'r': reps = atoi(optarg); break;
        case 'd': base = optarg; break;
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'm': markdown = true; break;
        case 'c': sqlite_cache_kib = atol(optarg); break;
        case 'M': map_size = strtoull(optarg, NULL, 10) << 20; break;
        case 'T': max_tables = (unsigned)atoi(optarg); break;
        case 't': extra_tables = (unsigned)atoi(optarg); break;
        case 'e':
            for (int e = 0; e < NENGINES; e++)
                on[e] = strstr(optarg, engine_name[e]) != NULL;
            break;
        case 'h': usage(stdout); return EXIT_SUCCESS;
        default: usage(stderr); return 2;
        }
    }
    if (n < 1 || reps < 1 || map_size == 0 || reps > MAXREPS || optind != argc) {
        usage(stderr);
        return 2;
    }

    data d;
    data_make(&d, n, seed);
    double secs[NENGINES][NPHASES][MAXREPS];
    uint64_t sums[NENGINES][NPHASES], s[NPHASES];
    bool have_sum[NENGINES] = { false };
    struct utsname u;
    uname(&u);
    printf("bench_engine: %zu rows, %d-byte payload, txns of %d, %d interleaved repetitions, "
           "seed %" PRIu64 ", %ld cpus, %s %s, edb %s (max_tables %s), %s, SQLite %s (cache %s KiB)\n",
           n, PAYLOAD, BATCH, reps, seed, sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release,
           edb_version(), max_tables ? optarg_num(max_tables) : "default", MDB_VERSION_STRING,
           sqlite3_libversion(),
           sqlite_cache_kib > 0 ? optarg_cache(sqlite_cache_kib) : "default 2000");

    for (int r = 0; r < reps; r++)
        for (int k = 0; k < NENGINES; k++) {
            int e = (r + k) % NENGINES;
            if (!on[e])
                continue;
            double t[NPHASES];
            run_engine(e, &d, base, t, s);
            printf("rep %d %-6s", r + 1, engine_name[e]);
            for (int ph = 0; ph < NPHASES; ph++) {
                secs[e][ph][r] = t[ph];
                if (ph != PH_AUTO || auto_on)
                    printf("  %s %10.0f/s", phase_name[ph], (double)phase_rows(n, ph) / t[ph]);
            }
            printf("\n");
            fflush(stdout);
            if (!have_sum[e]) {
                memcpy(sums[e], s, sizeof s);
                have_sum[e] = true;
            } else if (memcmp(sums[e], s, sizeof s) != 0) {
                die(engine_name[e], "checksum", "two repetitions read different data");
            }
        }
    /* every engine must have read the same data */
    int ref = -1;
    for (int e = 0; e < NENGINES; e++) {
        if (!on[e])
            continue;
        if (ref < 0)
            ref = e;
        else
            for (int ph = PH_LOOKUP; ph < NPHASES; ph++)
                if (sums[e][ph] != sums[ref][ph])
                    die(engine_name[e], phase_name[ph], "read different data than the other engines");
    }

    static const double target_lmdb[NPHASES] = { 0.6, 0.8, 0.7, 0.5, 0, 0, 0 };   /* 0: no target */
    double med[NENGINES][NPHASES];
    for (int e = 0; e < NENGINES; e++)
        for (int ph = 0; ph < NPHASES; ph++)
            med[e][ph] = on[e] ? (double)phase_rows(n, ph) / median(secs[e][ph], reps) : 0;
    printf("\nmedian rows/s over %d interleaved repetitions (%zu rows)\n", reps, n);
    if (markdown)
        printf("| phase | edb rows/s | LMDB rows/s | SQLite rows/s | edb/LMDB (target) | edb/SQLite (target) |\n"
               "|---|---:|---:|---:|---:|---:|\n");
    else
        printf("%-7s %12s %12s %12s %20s %20s\n", "phase", "edb", "lmdb", "sqlite", "edb/lmdb (target)",
               "edb/sqlite (target)");
    int missed = 0;
    for (int ph = 0; ph < NPHASES; ph++) {
        char rl[32] = "-", rs[32] = "-";
        if (ph == PH_AUTO && !auto_on)
            continue;
        bool target = target_lmdb[ph] > 0;
        if (on[E_EDB] && on[E_LMDB]) {
            double q = med[E_EDB][ph] / med[E_LMDB][ph];
            bool ok = !target || q >= target_lmdb[ph];
            missed += !ok;
            if (target)
                snprintf(rl, sizeof rl, "%.2fx (%.1fx)%s", q, target_lmdb[ph], ok ? "" : " MISS");
            else
                snprintf(rl, sizeof rl, "%.2fx", q);
        }
        if (on[E_EDB] && on[E_SQLITE]) {
            double q = med[E_EDB][ph] / med[E_SQLITE][ph];
            bool ok = !target || q >= 2.0;
            missed += !ok;
            if (target)
                snprintf(rs, sizeof rs, "%.2fx (2.0x)%s", q, ok ? "" : " MISS");
            else
                snprintf(rs, sizeof rs, "%.2fx", q);
        }
        if (markdown)
            printf("| %s | %.0f | %.0f | %.0f | %s | %s |\n", phase_name[ph], med[E_EDB][ph],
                   med[E_LMDB][ph], med[E_SQLITE][ph], rl, rs);
        else
            printf("%-7s %12.0f %12.0f %12.0f %20s %20s\n", phase_name[ph], med[E_EDB][ph],
                   med[E_LMDB][ph], med[E_SQLITE][ph], rl, rs);
    }
    /* a nested level's cost: nested rows/s over plain rows/s, per engine */
    printf("nested/plain (a nested level per insert; edb's target 0.5):");
    for (int e = 0; e < NENGINES; e++)
        if (on[e])
            printf("  %s %.2f", engine_name[e], med[e][PH_NESTED] / med[e][PH_PLAIN]);
    printf("\n");
    if (on[E_EDB] && (on[E_LMDB] || on[E_SQLITE]))
        printf("%s\n", missed ? "some targets missed (see MISS)" : "every target met");
    free(d.ins);
    free(d.look);
    free(d.payload);
    return EXIT_SUCCESS;
}

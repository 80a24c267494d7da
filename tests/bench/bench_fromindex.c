/* bench_fromindex: reading an indexed column while walking a secondary index
 * (make bench-fromindex): edb_column_get (finds the record by its primary
 * key) against edb_column_get_from_index (decodes the entry's key), and the
 * walk alone.  20,000 rows of an INT32 primary key, an INT32 "v" under a
 * non-unique index and 200 bytes of padding; PASSES walks of the index in
 * one read-only transaction per mode, modes interleaved, medians printed.
 * Usage: bench_fromindex [MODE [PASSES]]: MODE 0 all three (default),
 * 1 walk only, 2 edb_column_get, 3 edb_column_get_from_index (one mode per
 * run, for callgrind). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edb.h"

#define ROWS 20000

static double
now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#define CHECK(x) do { int rc_ = (x); if (rc_ < 0) { fprintf(stderr, "bench_fromindex: %s: %s\n", #x, \
                      edb_error_last()); exit(1); } } while (0)

/* PASSES walks of index by_v reading v as @mode says; seconds per entry. */
static double
walk(edb_session *s, edb_cursor *c, int mode, int passes, long long *sum)
{
    CHECK(edb_txn_begin(s, EDB_TXN_READONLY));
    double t0 = now();
    long n = 0;
    for (int p = 0; p < passes; p++)
        for (int r = edb_cursor_move(c, EDB_MOVE_FIRST); r == 0; r = edb_cursor_move(c, EDB_MOVE_NEXT)) {
            int32_t v = 0;
            if (mode == 2)
                CHECK(edb_column_get(c, 2, &v, 4, NULL, 0));
            else if (mode == 3)
                CHECK(edb_column_get_from_index(c, 2, &v, 4, NULL));
            *sum += v;
            n++;
        }
    double t = now() - t0;
    CHECK(edb_txn_commit(s));
    return t / (double)n;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    int mode = argc > 1 ? atoi(argv[1]) : 0, passes = argc > 2 ? atoi(argv[2]) : 5;
    char dir[] = "/tmp/edb-bench-fi-XXXXXX", path[64];
    if (mode < 0 || mode > 3 || passes < 1 || mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/db", dir);
    edb_env *env;
    edb_session *s;
    edb_cursor *c;
    edb_env_opts o = { .max_tables = 4, .map_size = (uint64_t)256 << 20 };
    CHECK(edb_env_open(&env, path, &o));
    CHECK(edb_session_begin(&s, env));
    edb_column_def cols[] = { { .name = "k", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
                              { .name = "v", .type = EDB_COL_INT32 },
                              { .name = "pad", .type = EDB_COL_BINARY } };
    edb_index_def idx[] = { { .name = "pk", .key = "+k\0", .flags = EDB_IDX_PRIMARY },
                            { .name = "by_v", .key = "+v\0" } };
    edb_table_def def = { "t", cols, 3, idx, 2 };
    CHECK(edb_table_create(s, &def));
    CHECK(edb_cursor_open(&c, s, "t"));
    static const char pad[200];
    CHECK(edb_txn_begin(s, 0));
    for (int32_t k = 0; k < ROWS; k++) {
        int32_t v = (int32_t)(((int64_t)k * 7919) % ROWS);
        CHECK(edb_update_prepare(c, EDB_PREP_INSERT));
        CHECK(edb_column_set(c, 1, &k, 4, 0));
        CHECK(edb_column_set(c, 2, &v, 4, 0));
        CHECK(edb_column_set(c, 3, pad, sizeof pad, 0));
        CHECK(edb_update(c));
    }
    CHECK(edb_txn_commit(s));
    CHECK(edb_cursor_set_index(c, "by_v"));
    long long sum = 0;
    if (mode != 0) {
        walk(s, c, mode, passes, &sum);
    } else {
        enum { R = 5 };
        double t[4][R];
        for (int r = 0; r < R; r++)
            for (int m = 1; m <= 3; m++)
                t[m][r] = walk(s, c, m, passes, &sum);
        const char *name[] = { "", "walk only", "edb_column_get", "edb_column_get_from_index" };
        for (int m = 1; m <= 3; m++) {
            qsort(t[m], R, sizeof t[m][0], cmp);
            printf("%-26s %7.1f ns/entry (median of %d)\n", name[m], t[m][R / 2] * 1e9, R);
        }
    }
    printf("checksum %lld\n", sum);
    edb_cursor_close(c);
    edb_session_end(s);
    edb_env_close(env);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    return 0;
}

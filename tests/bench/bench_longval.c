/* bench_longval: a 64 MB BINARY value (make bench-longval).  Prints the
 * time of a whole read (edb_column_get) against a 4 KiB read from the
 * middle (edb_column_read), and of a whole rewrite (edb_column_set +
 * edb_update) against a 4 KiB in-place write (edb_column_write +
 * edb_update).  Usage: bench_longval [ROUNDS] (default 10). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edb.h"

static double
now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#define CHECK(x) do { int rc_ = (x); if (rc_ < 0) { fprintf(stderr, "bench_longval: %s: %s\n", #x, \
                      edb_error_last()); exit(1); } } while (0)

int
main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 10;
    char dir[] = "/tmp/edb-bench-lv-XXXXXX", path[64];
    if (rounds < 1 || mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/db", dir);
    edb_env *env;
    edb_session *s;
    edb_cursor *c;
    edb_env_opts o = { .max_tables = 8 };
    CHECK(edb_env_open(&env, path, &o));
    CHECK(edb_session_begin(&s, env));
    edb_column_def cols[] = { { .name = "id", .type = EDB_COL_INT32 }, { .name = "b", .type = EDB_COL_BINARY } };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY } };
    edb_table_def def = { "t", cols, 2, idx, 1 };
    CHECK(edb_table_create(s, &def));
    CHECK(edb_cursor_open(&c, s, "t"));
    size_t size = (size_t)64 << 20;
    unsigned char *v = malloc(size), buf[4096];
    if (v == NULL)
        return 1;
    for (size_t i = 0; i < size; i++)
        v[i] = (unsigned char)(i * 31);
    int32_t id = 1;
    CHECK(edb_update_prepare(c, EDB_PREP_INSERT));
    CHECK(edb_column_set(c, 1, &id, 4, 0));
    CHECK(edb_column_set(c, 2, v, size, 0));
    CHECK(edb_update(c));
    size_t got;
    CHECK(edb_txn_begin(s, EDB_TXN_READONLY));
    double t0 = now();
    for (int i = 0; i < rounds; i++)
        CHECK(edb_column_get(c, 2, v, size, &got, 0));
    double whole_read = (now() - t0) / rounds;
    t0 = now();
    for (int i = 0; i < rounds * 1000; i++)
        CHECK(edb_column_read(c, 2, size / 2 + (size_t)(i % 7) * 4096, buf, sizeof buf, &got, 0));
    double part_read = (now() - t0) / (rounds * 1000);
    CHECK(edb_txn_commit(s));
    t0 = now();
    for (int i = 0; i < rounds; i++) {
        CHECK(edb_update_prepare(c, EDB_PREP_REPLACE));
        CHECK(edb_column_write(c, 2, size / 2 + (size_t)i * 4096, buf, sizeof buf, 0));
        CHECK(edb_update(c));
    }
    double part_write = (now() - t0) / rounds;
    t0 = now();
    for (int i = 0; i < rounds; i++) {
        CHECK(edb_update_prepare(c, EDB_PREP_REPLACE));
        CHECK(edb_column_set(c, 2, v, size, 0));
        CHECK(edb_update(c));
    }
    double whole_write = (now() - t0) / rounds;
    printf("64 MB value, %d rounds (means)\n", rounds);
    printf("read:  whole %.1f ms, 4 KiB at the middle %.2f us (x%.0f)\n", whole_read * 1e3,
           part_read * 1e6, whole_read / part_read);
    printf("write: whole %.1f ms, 4 KiB at the middle %.2f ms (x%.0f)\n", whole_write * 1e3,
           part_write * 1e3, whole_write / part_write);
    edb_cursor_close(c);
    edb_session_end(s);
    edb_env_close(env);
    free(v);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}

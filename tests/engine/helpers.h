/* helpers.h: shared fixtures for the engine suites: a private temporary
 * directory per test and an environment opened in it. */
#ifndef EDB_TEST_HELPERS_H
#define EDB_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edb.h"

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static inline void
rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline char *
make_tmpdir(void)
{
    char *d = strdup("/tmp/edb-test-XXXXXX");
    cr_assert_not_null(mkdtemp(d));
    return d;
}

/* The map size the suites ask for: 0 (edb's default, 64 GiB) unless
 * EDB_TEST_MAP_MB is set.  tests/valgrind.sh sets it: valgrind's address space
 * manager cannot place one 64 GiB mapping (the largest it placed here was
 * about 60 GiB), so under valgrind every default-sized open fails with
 * EDB_INVAL. */
static inline uint64_t
test_map_size(void)
{
    const char *e = getenv("EDB_TEST_MAP_MB");
    return e != NULL && atoi(e) > 0 ? (uint64_t)atoi(e) << 20 : 0;
}

/* @n scaled by EDB_TEST_SCALE (a percentage; 100 by default, 10 in the
 * sanitizer builds), at least @least: loops stay cheap under valgrind and the
 * sanitizers. */
static inline unsigned
test_scaled_min(unsigned n, unsigned least)
{
    unsigned pct = 100;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    pct = 10;
#endif
    const char *e = getenv("EDB_TEST_SCALE");
    if (e != NULL && *e)
        pct = (unsigned)atoi(e);
    unsigned long long v = (unsigned long long)n * pct / 100;
    return v > least ? (unsigned)v : least;
}

/* Monotonic time in microseconds (where a test picks a random moment). */
static inline double
test_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* The bytes of @path (a test's own files), in *out (malloc'd, one byte more
 * than the size returned); the test fails if it cannot be read. */
static inline size_t
test_slurp(const char *path, uint8_t **out)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    cr_assert_geq(n, 0, "%s", path);
    fseek(f, 0, SEEK_SET);
    *out = malloc((size_t)n + 1);
    cr_assert_not_null(*out);
    cr_assert_eq(fread(*out, 1, (size_t)n, f), (size_t)n, "%s", path);
    fclose(f);
    return (size_t)n;
}

/* Open "<dir>/db" with a small table count (fast to create). */
static inline edb_env *
open_env(const char *dir, unsigned flags)
{
    char path[512];
    snprintf(path, sizeof path, "%s/db", dir);
    edb_env_opts o = { .max_tables = 8, .flags = flags, .map_size = test_map_size() };
    edb_env *env = NULL;
    int rc = edb_env_open(&env, path, &o);
    cr_assert_eq(rc, 0, "edb_env_open: %s", edb_error_last());
    return env;
}

/* Criterion's workers leave without LeakSanitizer's exit-time check, so the
 * fixtures ask for one at teardown (ASan builds only). */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() do { if (__lsan_do_recoverable_leak_check() != 0) { \
        fprintf(stderr, "memory leaked (details above)\n"); abort(); } } while (0)
#else
#define LEAK_CHECK() ((void)0)
#endif

#define OK(x) do { int ok__ = (x); cr_assert_eq(ok__, 0, "%s -> %s (%s)", #x, \
                   edb_err_name(ok__), edb_error_last()); } while (0)
#define RC(x, want) do { int rc__ = (x); cr_assert_eq(rc__, (want), "%s -> %s, want %s (%s)", #x, \
                   edb_err_name(rc__), edb_err_name(want), edb_error_last()); } while (0)

#endif

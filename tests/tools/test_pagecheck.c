/* The page walk of edb_env_check (engine/pagecheck.c) on raw LMDB files:
 * clean trees of every shape pass with exact page accounting; damaged pages
 * and a truncated file are reported, never crash the walk. */
#include "config.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pagecheck.h"

static char dir[64];
static char datafile[128];

static void
mkdb(void)
{
    strcpy(dir, "/tmp/edb-pagecheck-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(datafile, sizeof datafile, "%s/data.mdb", dir);
}

static void
rmdb(void)
{
    char p[160];
    snprintf(p, sizeof p, "%s/data.mdb", dir); unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir); unlink(p);
    rmdir(dir);
}

static MDB_env *
open_env(void)
{
    MDB_env *env;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    mdb_env_set_mapsize(env, 64u << 20);
    cr_assert_eq(mdb_env_open(env, dir, MDB_NOSYNC, 0600), 0);
    return env;
}

/* Trees of every shape: a deep plain tree, duplicates inline and in sub-trees,
 * overflow values, integer keys, and a free list from deletions. */
static void
fill(MDB_env *env)
{
    MDB_txn *txn;
    MDB_dbi plain, dups, big, ints;
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "plain", MDB_CREATE, &plain), 0);
    cr_assert_eq(mdb_dbi_open(txn, "dups", MDB_CREATE | MDB_DUPSORT, &dups), 0);
    cr_assert_eq(mdb_dbi_open(txn, "big", MDB_CREATE, &big), 0);
    cr_assert_eq(mdb_dbi_open(txn, "ints", MDB_CREATE | MDB_INTEGERKEY, &ints), 0);
    char kb[32], vb[64];
    for (int i = 0; i < 20000; i++) {
        snprintf(kb, sizeof kb, "key%08d", i * 7919 % 20000);
        snprintf(vb, sizeof vb, "value %d with some padding......", i);
        MDB_val k = { strlen(kb), kb }, v = { strlen(vb), vb };
        cr_assert_eq(mdb_put(txn, plain, &k, &v, 0), 0);
        size_t ik = (size_t)i * 3;
        MDB_val k2 = { sizeof ik, &ik };
        cr_assert_eq(mdb_put(txn, ints, &k2, &v, 0), 0);
    }
    for (int i = 0; i < 50; i++) {
        snprintf(kb, sizeof kb, "d%03d", i);
        int n = i == 0 ? 3000 : 3;        /* one key with a sub-tree, others inline */
        for (int j = 0; j < n; j++) {
            snprintf(vb, sizeof vb, "dup%06d", j);
            MDB_val k = { strlen(kb), kb }, v = { strlen(vb), vb };
            cr_assert_eq(mdb_put(txn, dups, &k, &v, 0), 0);
        }
    }
    char *blob = calloc(1, 30000);
    for (int i = 0; i < 20; i++) {
        snprintf(kb, sizeof kb, "blob%d", i);
        MDB_val k = { strlen(kb), kb }, v = { 10000 + (size_t)i * 1000, blob };
        cr_assert_eq(mdb_put(txn, big, &k, &v, 0), 0);
    }
    free(blob);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    /* Deletions in later txns leave pages on the free list. */
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
        for (int i = round; i < 20000; i += 3) {
            snprintf(kb, sizeof kb, "key%08d", i);
            MDB_val k = { strlen(kb), kb };
            int rc = mdb_del(txn, plain, &k, NULL);
            cr_assert(rc == 0 || rc == MDB_NOTFOUND);
            if (round < 2 && i % 2)
                break;
        }
        snprintf(kb, sizeof kb, "blob%d", round);
        MDB_val k = { strlen(kb), kb };
        cr_assert_eq(mdb_del(txn, big, &k, NULL), 0);
        cr_assert_eq(mdb_txn_commit(txn), 0);
    }
}

typedef struct seen { int n; char first[512]; } seen;

static void
collect(void *ctx, int code, const char *what)
{
    seen *s = ctx;
    cr_assert_eq(code, EDB_CORRUPT);
    if (s->n++ == 0)
        snprintf(s->first, sizeof s->first, "%s", what);
}

Test(pagecheck, clean_database_accounts_for_every_page, .timeout = 30)
{
    mkdb();
    MDB_env *env = open_env();
    fill(env);
    edb__pagecheck_stat st;
    uint64_t problems = 99;
    seen s = { 0 };
    cr_assert_eq(edb__check_pages(&st, &problems, env, NULL, collect, &s), 0);
    cr_assert_eq(problems, 0, "%s", s.first);
    cr_assert_eq(st.leaked, 0);
    cr_assert_gt(st.free, 0, "deletions should have left free pages");
    cr_assert_eq(st.reachable + st.free + 2, st.last_pg + 1);
    cr_assert_geq(st.trees, 6, "free, main, 4 named, 1 dup sub-tree: %llu", (unsigned long long)st.trees);
    mdb_env_close(env);
    rmdb();
}

/* Make every page that looks like a leaf impossible (odd mp_lower): the
 * reachable leaves are among them. */
Test(pagecheck, damaged_leaf_pages_are_reported, .timeout = 30)
{
    mkdb();
    MDB_env *env = open_env();
    fill(env);
    MDB_stat ms;
    mdb_env_stat(env, &ms);
    mdb_env_close(env);
    int fd = open(datafile, O_RDWR);
    cr_assert_geq(fd, 0);
    struct stat sb;
    fstat(fd, &sb);
    unsigned char *page = malloc(ms.ms_psize);
    int damaged = 0;
    for (off_t pg = 2; pg * ms.ms_psize < sb.st_size; pg++) {
        cr_assert_eq(pread(fd, page, ms.ms_psize, pg * ms.ms_psize), (ssize_t)ms.ms_psize);
        uint16_t flags;
        memcpy(&flags, page + 10, 2);
        if ((flags & 0x02) && !(flags & 0x40)) {
            page[12] |= 1;
            cr_assert_eq(pwrite(fd, page, ms.ms_psize, pg * ms.ms_psize), (ssize_t)ms.ms_psize);
            damaged++;
        }
    }
    free(page);
    close(fd);
    cr_assert_gt(damaged, 0);
    env = open_env();
    edb__pagecheck_stat st;
    uint64_t problems = 0;
    seen s = { 0 };
    cr_assert_eq(edb__check_pages(&st, &problems, env, NULL, collect, &s), 0);
    cr_assert_gt(problems, 0);
    cr_assert_eq((uint64_t)s.n, problems > 200 ? 200 : problems);
    cr_assert(strstr(s.first, "impossible") != NULL || strstr(s.first, "neither") != NULL, "%s", s.first);
    mdb_env_close(env);
    rmdb();
}

Test(pagecheck, truncated_file_is_reported_not_fatal, .timeout = 30)
{
    mkdb();
    MDB_env *env = open_env();
    fill(env);
    MDB_stat ms;
    mdb_env_stat(env, &ms);
    mdb_env_close(env);
    struct stat sb;
    stat(datafile, &sb);
    cr_assert_eq(truncate(datafile, sb.st_size / 2 / ms.ms_psize * ms.ms_psize), 0);
    env = open_env();
    edb__pagecheck_stat st;
    uint64_t problems = 0;
    seen s = { 0 };
    cr_assert_eq(edb__check_pages(&st, &problems, env, NULL, collect, &s), 0);
    cr_assert_gt(problems, 0);
    cr_assert(strstr(s.first, "past the end of data.mdb") != NULL, "%s", s.first);
    mdb_env_close(env);
    rmdb();
}

Test(pagecheck, null_env_is_inval, .timeout = 10)
{
    edb__pagecheck_stat st;
    uint64_t problems;
    cr_assert_eq(edb__check_pages(&st, &problems, NULL, NULL, NULL, NULL), EDB_INVAL);
}

/* Criterion's parallel runner leaks a small block now and then: not ours.
 * LeakSanitizer calls this hook in sanitizer builds; elsewhere it is unused. */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
    return "leak:libcriterion.so\n";
}

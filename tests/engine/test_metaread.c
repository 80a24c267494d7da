/* test_metaread.c: a meta page that cannot be read is an I/O error
 * (EDB_IO, with the errno or "short read"), a file too short for its metas is
 * EDB_CORRUPT, and only a file that is not LMDB's (or another format) is
 * EDB_VERSION: for edb_env_open (LMDB's mdb_env_open says MDB_INVALID for a
 * short read; engine/metaread.c) and for edb_env_check (engine/pagecheck.c).
 *
 * The faults are injected by interposing pread(): this program defines it, so
 * liblmdb's and edb's calls land here (the dynamic linker resolves them to the
 * executable first) and go on to the C library's through dlsym(RTLD_NEXT).
 * Armed, it fails or shortens the reads of one file (by device and inode) at
 * one offset. */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "lmdb_layout.h"

enum fault { NONE, SHORT, FAIL };

static struct {
    atomic_int what;           /* enum fault */
    atomic_int times;          /* faults left; -1: every matching read */
    atomic_int fired;
    dev_t dev;
    ino_t ino;
    off_t off;
    int err;
} inj;

typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);

ssize_t pread(int fd, void *buf, size_t n, off_t off);

ssize_t
pread(int fd, void *buf, size_t n, off_t off)
{
    static _Atomic(pread_fn) real;
    pread_fn r = atomic_load(&real);
    if (r == NULL) {
        r = (pread_fn)dlsym(RTLD_NEXT, "pread");
        atomic_store(&real, r);
    }
    struct stat st;
    if (atomic_load(&inj.what) != NONE && off == inj.off && atomic_load(&inj.times) != 0 &&
        fstat(fd, &st) == 0 && st.st_dev == inj.dev && st.st_ino == inj.ino) {
        if (atomic_load(&inj.times) > 0)
            atomic_fetch_sub(&inj.times, 1);
        atomic_fetch_add(&inj.fired, 1);
        if (atomic_load(&inj.what) == FAIL) {
            errno = inj.err;
            return -1;
        }
        return r(fd, buf, n > 1 ? n / 2 : n, off);
    }
    return r(fd, buf, n, off);
}

static char *dir;
static char data[600];

static void
setup(void)
{
    dir = make_tmpdir();
    edb_env *env = open_env(dir, 0);      /* dir/db, created */
    edb_env_close(env);
    snprintf(data, sizeof data, "%s/db/data.mdb", dir);
}

static void
teardown(void)
{
    atomic_store(&inj.what, NONE);
    rm_tree(dir);
    free(dir);
}

static void
arm(enum fault what, off_t off, int times, int err)
{
    struct stat st;
    cr_assert_eq(stat(data, &st), 0);
    inj.dev = st.st_dev;
    inj.ino = st.st_ino;
    inj.off = off;
    inj.err = err;
    atomic_store(&inj.times, times);
    atomic_store(&inj.fired, 0);
    atomic_store(&inj.what, what);
}

static int
open_db(edb_env **env)
{
    char path[600];
    snprintf(path, sizeof path, "%s/db", dir);
    edb_env_opts o = { .max_tables = 8, .map_size = test_map_size() };
    *env = NULL;
    return edb_env_open(env, path, &o);
}

static uint32_t
page_size(void)
{
    edb_env *env;
    OK(open_db(&env));
    edb_env_info info;
    OK(edb_env_info_get(&info, env));
    edb_env_close(env);
    return info.page_size;
}

TestSuite(metaread, .init = setup, .fini = teardown, .timeout = 30);

Test(metaread, short_read_of_either_meta_is_an_io_error)
{
    off_t offs[2] = { 0, (off_t)page_size() };
    for (int k = 0; k < 2; k++) {
        edb_env *env;
        arm(SHORT, offs[k], 1, 0);
        RC(open_db(&env), EDB_IO);
        cr_assert_null(env);
        cr_assert_eq(atomic_load(&inj.fired), 1, "meta %d: the short read was not injected", k);
        cr_assert(strstr(edb_error_last(), "short read") != NULL, "meta %d: %s", k, edb_error_last());
        /* every first read at that offset short (edb's re-read goes on from
         * where it stopped, as a read loop must): still I/O */
        arm(SHORT, offs[k], -1, 0);
        RC(open_db(&env), EDB_IO);
        cr_assert(strstr(edb_error_last(), "short read") != NULL, "meta %d: %s", k, edb_error_last());
        atomic_store(&inj.what, NONE);
        OK(open_db(&env));                      /* and the database is fine */
        edb_env_close(env);
    }
}

Test(metaread, failed_read_of_a_meta_is_an_io_error_with_its_errno)
{
    int errs[] = { EIO, EBADF, ENOMEM };
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        edb_env *env;
        arm(FAIL, 0, -1, errs[i]);
        int rc = open_db(&env);
        cr_assert_neq(rc, EDB_VERSION, "%s: %s", strerror(errs[i]), edb_error_last());
        cr_assert(rc == EDB_IO || (errs[i] == ENOMEM && rc == EDB_NOMEM), "%s: %s",
                  strerror(errs[i]), edb_error_last());
        cr_assert(strstr(edb_error_last(), strerror(errs[i])) != NULL, "%s", edb_error_last());
    }
}

Test(metaread, short_file_is_corrupt_foreign_file_is_version)
{
    char path[600];
    snprintf(path, sizeof path, "%s/db", dir);
    /* the first 100 bytes of a real data.mdb: too short for meta page 0 */
    cr_assert_eq(truncate(data, 100), 0);
    edb_env *env;
    RC(open_db(&env), EDB_CORRUPT);
    cr_assert(strstr(edb_error_last(), "too short") != NULL, "%s", edb_error_last());
    /* a whole first page, then nothing: too short for meta page 1 */
    cr_assert_eq(truncate(data, (off_t)4096), 0);
    RC(open_db(&env), EDB_CORRUPT);
    cr_assert(strstr(edb_error_last(), "meta page 1") != NULL, "%s", edb_error_last());
    /* LMDB's magic, another data format version */
    uint8_t page[4096] = { 0 };
    uint32_t magic = EDB__META_MAGIC, ver = EDB__META_DATA_VERSION + 1, ps = 4096;
    memcpy(page + EDB__META_OFF_MAGIC, &magic, 4);
    memcpy(page + EDB__META_OFF_VERSION, &ver, 4);
    memcpy(page + EDB__META_OFF_FREEDB + EDB__DB_OFF_PAD, &ps, 4);
    page[EDB__PAGE_OFF_FLAGS] = EDB__PAGE_F_META;
    int fd = open(data, O_WRONLY | O_TRUNC);
    cr_assert_geq(fd, 0);
    for (int k = 0; k < 4; k++)
        cr_assert_eq(write(fd, page, sizeof page), (ssize_t)sizeof page);
    close(fd);
    int rc = open_db(&env);
    cr_assert_eq(rc, EDB_VERSION, "%s", edb_error_last());
}

static void
count_problem(void *ctx, int code, const char *what)
{
    (void)code;
    (void)what;
    (*(int *)ctx)++;
}

Test(metaread, check_reports_an_unreadable_meta_as_io)
{
    edb_env *env;
    OK(open_db(&env));
    uint64_t problems = 0;
    int seen = 0;
    arm(FAIL, 0, -1, EIO);
    int rc = edb_env_check(&problems, env, count_problem, &seen, NULL);
    int fired = atomic_load(&inj.fired);
    atomic_store(&inj.what, NONE);
    cr_assert_gt(fired, 0, "edb_env_check read no meta page with pread");
    cr_assert_eq(rc, EDB_IO, "%s: %s", edb_err_name(rc), edb_error_last());
    cr_assert(strstr(edb_error_last(), "Input/output error") != NULL, "%s", edb_error_last());
    OK(edb_env_check(&problems, env, count_problem, &seen, NULL));
    cr_assert_eq(problems, 0);
    edb_env_close(env);
}

/* ---- a data.mdb shorter than its pages (issue 10, point 9) ------------------ */

/* Fill the database with n rows of a 200-byte text, in one transaction. */
static void
fill_rows(int n)
{
    edb_env *env;
    edb_session *s;
    edb_cursor *c;
    OK(open_db(&env));
    OK(edb_session_begin(&s, env));
    edb_column_def cols[] = { { "id", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 },
                              { "pad", EDB_COL_TEXT, 0, 0, NULL, 0 } };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY }, { "by_pad", "-pad\0", 0 } };
    edb_table_def def = { "t", cols, 2, idx, 2 };
    OK(edb_table_create(s, &def));
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_txn_begin(s, 0));
    char pad[201];
    for (int32_t i = 0; i < n; i++) {
        snprintf(pad, sizeof pad, "%0200d", i * 7919);
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &i, 4, 0));
        OK(edb_column_set(c, 2, pad, 200, 0));
        OK(edb_update(c));
    }
    OK(edb_txn_commit(s));
    edb_cursor_close(c);
    edb_session_end(s);
    edb_env_close(env);
}

/* Read every row through both indexes (a page past the file's end would be
 * SIGBUS here); returns the rows of the primary index. */
static int
read_all(edb_env *env)
{
    edb_session *s;
    edb_cursor *c;
    OK(edb_session_begin(&s, env));
    OK(edb_cursor_open(&c, s, "t"));
    int rows = 0;
    const char *idx[] = { NULL, "by_pad" };
    for (int k = 0; k < 2; k++) {
        OK(edb_cursor_set_index(c, idx[k]));
        int n = 0, rc;
        while ((rc = edb_cursor_move(c, EDB_MOVE_NEXT)) == 0) {
            char pad[256];
            size_t got;
            OK(edb_column_get(c, 2, pad, sizeof pad, &got, 0));
            n++;
        }
        RC(rc, EDB_NOTFOUND);
        if (k == 0)
            rows = n;
        else
            cr_assert_eq(n, rows);
    }
    edb_cursor_close(c);
    edb_session_end(s);
    return rows;
}

/* "A data.mdb shorter than its meta pages claim kills dbtool with SIGBUS":
 * cut to half, it is refused at open with EDB_CORRUPT naming the file and
 * both sizes, read-write and read-only, before anything reads a page. */
Test(metaread, file_cut_to_half_is_refused_at_open)
{
    fill_rows(2000);
    struct stat st;
    cr_assert_eq(stat(data, &st), 0);
    uint32_t ps = page_size();
    off_t half = st.st_size / 2 / ps * ps;
    cr_assert_eq(truncate(data, half), 0);
    char want[64];
    snprintf(want, sizeof want, "data.mdb has %lld bytes", (long long)half);
    edb_env *env;
    RC(open_db(&env), EDB_CORRUPT);
    cr_assert_null(env);
    const char *m = edb_error_last();
    cr_assert(strstr(m, want) != NULL && strstr(m, "claims") != NULL && strstr(m, dir) != NULL &&
              strstr(m, "page size") != NULL, "%s", m);
    char path[600];
    snprintf(path, sizeof path, "%s/db", dir);
    edb_env_opts ro = { .max_tables = 8, .map_size = test_map_size(), .flags = EDB_ENV_READONLY };
    RC(edb_env_open(&env, path, &ro), EDB_CORRUPT);
    cr_assert(strstr(edb_error_last(), want) != NULL, "%s", edb_error_last());
}

/* Every length from the whole file down to two pages: open either refuses it
 * (EDB_CORRUPT) or it reads every row without a fault; the whole file opens,
 * and so does no file shorter than the pages its trees use. */
Test(metaread, every_cut_is_refused_or_readable)
{
    fill_rows(600);
    struct stat st;
    cr_assert_eq(stat(data, &st), 0);
    uint32_t ps = page_size();
    long pages = (long)(st.st_size / ps), opened = 0, refused = 0;
    for (long n = pages; n >= 2; n--) {
        cr_assert_eq(truncate(data, (off_t)n * ps), 0);
        edb_env *env;
        int rc = open_db(&env);
        cr_assert(rc == 0 || rc == EDB_CORRUPT, "%ld of %ld pages: %s", n, pages, edb_error_last());
        if (rc == 0) {
            cr_assert_eq(read_all(env), 600, "%ld of %ld pages", n, pages);
            edb_env_close(env);
            opened++;
            cr_assert_eq(refused, 0, "%ld pages open after a longer cut was refused", n);
        } else {
            refused++;
        }
    }
    cr_assert_geq(opened, 1);
    cr_assert_geq(refused, pages / 2);
}

/* LMDB does not write a page that a transaction allocated and freed again
 * before committing: a file a bit shorter than (last_pg + 1) * page size is
 * normal, its missing pages are free, and edb opens it.  A random workload of
 * puts and deletes in a raw LMDB database of the environment leaves such a
 * file within a few dozen commits (liblmdb 0.9.24). */
Test(metaread, short_file_with_only_free_pages_missing_opens)
{
    char path[600];
    snprintf(path, sizeof path, "%s/db", dir);
    MDB_env *m;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 4), 0);
    cr_assert_eq(mdb_env_set_mapsize(m, (size_t)1 << 30), 0);
    cr_assert_eq(mdb_env_open(m, path, MDB_NOSYNC, 0600), 0);
    uint64_t x = 2;
    bool shorter = false;
    static char v[600];
    memset(v, 1, sizeof v);
    for (int t = 0; t < 3000 && !shorter; t++) {
        MDB_txn *txn;
        MDB_dbi d;
        cr_assert_eq(mdb_txn_begin(m, NULL, 0, &txn), 0);
        cr_assert_eq(mdb_dbi_open(txn, "junk", MDB_CREATE, &d), 0);
        int n = (int)((x = x * 6364136223846793005u + 1442695040888963407u) >> 33) % 200;
        for (int i = 0; i < n; i++) {
            char k[16];
            x = x * 6364136223846793005u + 1442695040888963407u;
            snprintf(k, sizeof k, "%08d", (int)((x >> 33) % 20000));
            MDB_val K = { 8, k }, V = { (size_t)((x >> 20) % 600) + 1, v };
            if ((x >> 50) % 3)
                cr_assert_eq(mdb_put(txn, d, &K, &V, 0), 0);
            else
                mdb_del(txn, d, &K, NULL);
        }
        x = x * 6364136223846793005u + 1442695040888963407u;
        if ((x >> 33) % 20 == 0) {               /* now and then, delete a run */
            MDB_cursor *cur;
            MDB_val K, V;
            cr_assert_eq(mdb_cursor_open(txn, d, &cur), 0);
            for (int k = (int)((x >> 40) % 2000); k > 0 && mdb_cursor_get(cur, &K, &V, MDB_NEXT) == 0; k--)
                cr_assert_eq(mdb_cursor_del(cur, 0), 0);
            mdb_cursor_close(cur);
        }
        cr_assert_eq(mdb_txn_commit(txn), 0);
        MDB_envinfo in;
        MDB_stat ms;
        struct stat st;
        cr_assert_eq(mdb_env_info(m, &in), 0);
        cr_assert_eq(mdb_env_stat(m, &ms), 0);
        cr_assert_eq(stat(data, &st), 0);
        shorter = (uint64_t)st.st_size < ((uint64_t)in.me_last_pgno + 1) * ms.ms_psize;
    }
    mdb_env_close(m);
    cr_assert(shorter, "the workload never left data.mdb short of its last page");
    edb_env *env;
    OK(open_db(&env));
    uint64_t problems = 99;
    int seen = 0;
    OK(edb_env_check(&problems, env, count_problem, &seen, NULL));
    cr_assert_eq(problems, 0, "check finds the short file damaged");
    edb_env_close(env);
    edb_env_opts ro = { .max_tables = 8, .map_size = test_map_size(), .flags = EDB_ENV_READONLY };
    OK(edb_env_open(&env, path, &ro));
    edb_env_close(env);
}

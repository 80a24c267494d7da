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
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

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
    uint32_t magic = 0xBEEFC0DEu, ver = 2, ps = 4096;
    memcpy(page + 16, &magic, 4);
    memcpy(page + 20, &ver, 4);
    memcpy(page + 40, &ps, 4);
    page[10] = 0x08;                            /* P_META in the page header's flags */
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

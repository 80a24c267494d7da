/* test_fallbacks.c: the paths the system seldom takes, taken on purpose.
 *
 * - edb_backup_save() opens its file with O_DIRECT; a file system that refuses
 *   it at open (EINVAL: tmpfs before Linux 6.6) or at the first write gets a
 *   buffered file instead, and the archive is the same.
 * - Restore starts the kernel's write-back every edb__restore_writeback bytes
 *   (32 MiB; lowered here to one page): a failure there is an error (EDB_IO,
 *   nothing left behind), while ENOSYS/EINVAL/EOPNOTSUPP (no such call here)
 *   switch it off and the restore goes on.
 *
 * The faults come from interposing openat(), write() and sync_file_range():
 * this program defines them, so edb's calls (linked in statically) land here
 * and go on to the C library's through dlsym(RTLD_NEXT); unarmed they only
 * pass through. */
#include "bk_helpers.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "restore.h"

static struct {
    atomic_int refuse_direct_open;    /* openat with O_DIRECT: EINVAL */
    atomic_int refuse_direct_write;   /* first write on an O_DIRECT fd: EINVAL */
    atomic_int writeback_errno;       /* sync_file_range fails with it (0: passes) */
    atomic_int direct_opens, plain_opens_after, direct_writes_refused, writes_after_refusal;
    atomic_int writebacks;
    char name[64];                    /* openat: O_TMPFILE opens and names starting with this */
} inj;

typedef int (*openat_fn)(int, const char *, int, ...);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef int (*sfr_fn)(int, off_t, off_t, unsigned int);

int openat(int dirfd, const char *path, int flags, ...);
ssize_t write(int fd, const void *buf, size_t n);
int sync_file_range(int fd, off_t off, off_t n, unsigned int flags);

static void *
next(const char *sym)
{
    void *p = dlsym(RTLD_NEXT, sym);
    if (p == NULL)
        abort();                      /* no C library below us: nothing can run */
    return p;
}

int
openat(int dirfd, const char *path, int flags, ...)
{
    static _Atomic(openat_fn) real;
    if (atomic_load(&real) == NULL)
        atomic_store(&real, (openat_fn)next("openat"));
    mode_t mode = 0;
    if (flags & O_CREAT) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    /* The save's file: its unnamed O_TMPFILE file, or its named temporary. */
    bool ours = (flags & O_TMPFILE) == O_TMPFILE || strncmp(path, inj.name, strlen(inj.name)) == 0;
    if (inj.name[0] != '\0' && ours) {
        if (flags & O_DIRECT) {
            atomic_fetch_add(&inj.direct_opens, 1);
            if (atomic_load(&inj.refuse_direct_open)) {
                errno = EINVAL;
                return -1;
            }
        } else if (atomic_load(&inj.direct_opens) > 0) {
            atomic_fetch_add(&inj.plain_opens_after, 1);
        }
    }
    return atomic_load(&real)(dirfd, path, flags, mode);
}

ssize_t
write(int fd, const void *buf, size_t n)
{
    static _Atomic(write_fn) real;
    if (atomic_load(&real) == NULL)
        atomic_store(&real, (write_fn)next("write"));
    if (atomic_load(&inj.refuse_direct_write)) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0 && (fl & O_DIRECT)) {
            if (atomic_load(&inj.direct_writes_refused) == 0) {
                atomic_fetch_add(&inj.direct_writes_refused, 1);
                errno = EINVAL;
                return -1;
            }
            atomic_fetch_add(&inj.direct_writes_refused, 1);   /* still O_DIRECT: count it */
        } else if (atomic_load(&inj.direct_writes_refused) > 0) {
            atomic_fetch_add(&inj.writes_after_refusal, 1);
        }
    }
    return atomic_load(&real)(fd, buf, n);
}

int
sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
    static _Atomic(sfr_fn) real;
    if (atomic_load(&real) == NULL)
        atomic_store(&real, (sfr_fn)next("sync_file_range"));
    atomic_fetch_add(&inj.writebacks, 1);
    int e = atomic_load(&inj.writeback_errno);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return atomic_load(&real)(fd, off, n, flags);
}

static char *dir;
static edb_env *env;
static uint64_t digest, rows;

static void
setup(void)
{
    memset(&inj, 0, sizeof inj);
    dir = bk_tmpdir();
    env = bk_env_open(dir);
    bk_populate(env, 2000);
    MDB_txn *t;
    MDB_OK(mdb_txn_begin(edb__env_mdb(env), NULL, MDB_RDONLY, &t));
    digest = bk_digest_txn(t, BK_DATA_DB, &rows);
    mdb_txn_abort(t);
}

static void
teardown(void)
{
    memset(&inj, 0, sizeof inj);
    edb__restore_writeback = 32u << 20;
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
}

static void
save(const char *path)
{
    edb_backup *bk;
    OK(edb_backup_begin(&bk, env, NULL));
    int rc = edb_backup_save(bk, path, 0, NULL, NULL);
    edb_backup_end(bk);
    OK(rc);
    edb_backup_source src = { .path = path };
    OK(edb_backup_verify(NULL, &src, 1, NULL, NULL));
}

/* Nothing beside the archive or target but what the test made. */
static unsigned
temporaries(void)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp.") != NULL || strstr(e->d_name, ".restore-") != NULL;
    closedir(d);
    return n;
}

Test(save_fallbacks, o_direct_refused_at_open, .init = setup, .fini = teardown, .timeout = 60)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/a.edbk", dir);
    snprintf(inj.name, sizeof inj.name, ".a.edbk.tmp.");
    atomic_store(&inj.refuse_direct_open, 1);
    save(path);
    cr_assert_eq(atomic_load(&inj.direct_opens), 1, "save did not try O_DIRECT first");
    cr_assert_eq(atomic_load(&inj.plain_opens_after), 1, "no buffered open after the refusal");
    cr_assert_eq(temporaries(), 0);
    /* and it restores to the source's data */
    char target[4200];
    snprintf(target, sizeof target, "%s/r", dir);
    edb_backup_source src = { .path = path };
    OK(edb_backup_restore(NULL, target, &src, 1, 0));
    uint64_t n, txnid;
    cr_assert_eq(bk_digest_restored(target, &n, &txnid), digest);
    cr_assert_eq(n, rows);
}

Test(save_fallbacks, o_direct_refused_at_the_first_write, .init = setup, .fini = teardown,
     .timeout = 60)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/a.edbk", dir);
    snprintf(inj.name, sizeof inj.name, ".a.edbk.tmp.");
    atomic_store(&inj.refuse_direct_write, 1);
    save(path);
    if (atomic_load(&inj.direct_writes_refused) == 0)
        cr_skip_test("the file system of %s refuses O_DIRECT at open: no O_DIRECT write to refuse", dir);
    cr_assert_eq(atomic_load(&inj.direct_writes_refused), 1, "save kept writing with O_DIRECT "
                 "after EINVAL (%d writes)", atomic_load(&inj.direct_writes_refused));
    cr_assert_gt(atomic_load(&inj.writes_after_refusal), 0, "nothing was written buffered");
    cr_assert_eq(temporaries(), 0);
}

/* A restore of this test's database with write-back after every page. */
static int
restore_small_steps(const char *arch, const char *target)
{
    edb__restore_writeback = 4096;
    edb_backup_source src = { .path = arch };
    int rc = edb_backup_restore(NULL, target, &src, 1, 0);
    edb__restore_writeback = 32u << 20;
    return rc;
}

Test(restore_fallbacks, writeback_failure_is_an_error, .init = setup, .fini = teardown, .timeout = 60)
{
    char arch[4200], target[4200];
    snprintf(arch, sizeof arch, "%s/a.edbk", dir);
    snprintf(target, sizeof target, "%s/r", dir);
    save(arch);
    /* the default threshold: a small archive never asks for write-back */
    edb_backup_source src = { .path = arch };
    OK(edb_backup_restore(NULL, target, &src, 1, 0));
    cr_assert_eq(atomic_load(&inj.writebacks), 0);
    bk_rm_tree(target);
    int errs[] = { EIO, ENOSPC, EBADF };
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        atomic_store(&inj.writebacks, 0);
        atomic_store(&inj.writeback_errno, errs[i]);
        RC(restore_small_steps(arch, target), errs[i] == ENOSPC ? EDB_FULL : EDB_IO);
        cr_assert(strstr(edb_error_last(), "write-back") != NULL, "%s", edb_error_last());
        cr_assert(strstr(edb_error_last(), strerror(errs[i])) != NULL, "%s", edb_error_last());
        cr_assert_eq(atomic_load(&inj.writebacks), 1);
        cr_assert_eq(access(target, F_OK), -1, "a failed restore left its target");
        cr_assert_eq(temporaries(), 0, "a failed restore left its temporary directory");
    }
}

Test(restore_fallbacks, no_writeback_here_goes_on_without_it, .init = setup, .fini = teardown,
     .timeout = 60)
{
    char arch[4200], target[4200];
    snprintf(arch, sizeof arch, "%s/a.edbk", dir);
    snprintf(target, sizeof target, "%s/r", dir);
    save(arch);
    int errs[] = { ENOSYS, EINVAL, EOPNOTSUPP, 0 };
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        atomic_store(&inj.writebacks, 0);
        atomic_store(&inj.writeback_errno, errs[i]);
        OK(restore_small_steps(arch, target));
        int calls = atomic_load(&inj.writebacks);
        if (errs[i] != 0)
            cr_assert_eq(calls, 1, "%s: write-back was tried %d times", strerror(errs[i]), calls);
        else
            cr_assert_gt(calls, 1, "write-back after every page was asked only %d times", calls);
        uint64_t n, txnid;
        uint64_t d = bk_digest_restored(target, &n, &txnid);
        cr_assert_eq(n, rows);
        cr_assert_eq(d, digest, "the restored data differ");
        bk_rm_tree(target);
    }
}

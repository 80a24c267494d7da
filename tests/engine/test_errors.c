/* The error table: codes, names and messages come from one X-macro. */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "error.h"
#include "helpers.h"

Test(errors, names_and_messages_cover_every_code, .timeout = 10)
{
#define CHECK(name, value, msg)                                          \
    cr_assert_str_eq(edb_err_name(value), "EDB_" #name);                 \
    cr_assert_str_eq(edb_strerror(value), msg);
    EDB_ERROR_MAP(CHECK)
#undef CHECK
    cr_assert_str_eq(edb_err_name(-9999), "EDB_UNKNOWN");
    cr_assert_str_eq(edb_strerror(12345), "unknown error");
}

Test(errors, signs_are_the_contract, .timeout = 10)
{
    cr_assert_eq(EDB_OK, 0);
    cr_assert_gt(EDB_WRN_NULL, 0);
    cr_assert_gt(EDB_WRN_TRUNCATED, 0);
    int errs[] = { EDB_NOTFOUND, EDB_KEYDUP, EDB_EXISTS, EDB_INVAL, EDB_READONLY, EDB_BUSY,
                   EDB_TXNDEPTH, EDB_TOOBIG, EDB_FULL, EDB_CORRUPT, EDB_CHECKSUM, EDB_CANCELED };
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++)
        cr_assert_lt(errs[i], 0, "%s", edb_err_name(errs[i]));
}

Test(errors, last_error_is_never_null, .timeout = 10)
{
    cr_assert_not_null(edb_error_last());
    cr_assert_str_eq(edb_version(), EDB_VERSION_STRING);
}

/* The version is written once (configure.ac's AC_INIT): the generated macros,
 * the string and edb_version() all agree with the package version. */
Test(errors, version_macros_come_from_configure, .timeout = 10)
{
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", EDB_VERSION_MAJOR, EDB_VERSION_MINOR, EDB_VERSION_PATCH);
    cr_assert_str_eq(want, PACKAGE_VERSION);
    cr_assert_str_eq(EDB_VERSION_STRING, PACKAGE_VERSION);
    cr_assert_str_eq(edb_version(), PACKAGE_VERSION);
}

/* The thread's last error is kept as code + message: callers read either part
 * without cutting "EDB_NAME: " off the string (issue 13). */
Test(errors, last_error_is_code_and_message, .timeout = 10)
{
    edb__err_clear();
    cr_assert_eq(edb_error_last_code(), 0);
    cr_assert_str_eq(edb_error_last_message(), "");
    /* a message that itself holds "EDB_...: " is returned whole */
    int rc = edb__err(EDB_INVAL, "table '%s': EDB_CORRUPT: looks like a code", "t");
    cr_assert_eq(rc, EDB_INVAL);
    cr_assert_eq(edb_error_last_code(), EDB_INVAL);
    cr_assert_str_eq(edb_error_last_message(), "table 't': EDB_CORRUPT: looks like a code");
    cr_assert_str_eq(edb_error_last(), "EDB_INVAL: table 't': EDB_CORRUPT: looks like a code");
    /* no format: the code's own message */
    edb__err(EDB_BUSY, NULL);
    cr_assert_eq(edb_error_last_code(), EDB_BUSY);
    cr_assert_str_eq(edb_error_last_message(), edb_strerror(EDB_BUSY));

    /* through the public API: an open that fails names its code */
    char missing[] = "/nonexistent-edb-dir/sub/db";
    edb_env *env = NULL;
    rc = edb_env_open(&env, missing, NULL);
    cr_assert_lt(rc, 0);
    cr_assert_eq(edb_error_last_code(), rc, "%s", edb_error_last());
    const char *full = edb_error_last(), *msg = edb_error_last_message();
    size_t nl = strlen(edb_err_name(rc));
    cr_assert(strncmp(full, edb_err_name(rc), nl) == 0 && full[nl] == ':', "%s", full);
    cr_assert_str_eq(full + nl + 2, msg);
    cr_assert_neq(msg[0], '\0');
    /* cleared: no code, no message */
    edb__err_clear();
    cr_assert_eq(edb_error_last_code(), 0);
    cr_assert_str_eq(edb_error_last_message(), "");
}

/* ---- a full disk at commit is EDB_FULL (issue #11, point 10) ----
 *
 * LMDB reports a short write as EIO ("short write, filesystem full?"); edb
 * must say EDB_FULL when the cause is space.  Each round fills a fresh 3 MiB
 * tmpfs, mounted in a private mount namespace of a forked child (a user
 * namespace when not root; the test is skipped where neither is allowed),
 * with rows of a different size, until a commit fails: that failure must be
 * EDB_FULL, never EDB_IO. */

static int
write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* A private mount namespace with a 3 MiB tmpfs on dir; 0 or -1. */
static int
small_tmpfs(const char *dir)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWNS) != 0) {
        char map[64];
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
            return -1;
        snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
        if (write_file("/proc/self/uid_map", map) != 0)
            return -1;
        (void)write_file("/proc/self/setgroups", "deny");
        snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
        if (write_file("/proc/self/gid_map", map) != 0)
            return -1;
    }
    /* The type is ignored for MS_PRIVATE, but valgrind checks it is a string. */
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
        return -1;
    return mount("none", dir, "tmpfs", 0, "size=3m,mode=0700");
}

/* In the child: fill the file system; exit 0 when the first failure was
 * EDB_FULL, 77 when no tmpfs could be made, 1 otherwise (message on stderr). */
static void
fill_until_full(const char *dir, size_t vsize)
{
    if (small_tmpfs(dir) != 0)
        _exit(77);
    char path[512];
    snprintf(path, sizeof path, "%s/db", dir);
    edb_env_opts o = { .max_tables = 2, .map_size = 64u << 20 };
    edb_env *env = NULL;
    int rc = edb_env_open(&env, path, &o);
    if (rc != 0) {
        fprintf(stderr, "open: %s\n", edb_error_last());
        _exit(rc == EDB_FULL ? 0 : 1);
    }
    edb_column_def cols[] = { { .name = "id", .type = EDB_COL_INT64, .flags = EDB_COL_AUTOINC },
                              { .name = "v", .type = EDB_COL_BINARY } };
    edb_index_def idx[] = { { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY } };
    edb_table_def t = { .name = "t", .columns = cols, .ncolumns = 2, .indexes = idx, .nindexes = 1 };
    edb_session *s = NULL;
    rc = edb_session_begin(&s, env);
    if (rc == 0)
        rc = edb_table_create(s, &t);
    edb_cursor *c = NULL;
    if (rc == 0)
        rc = edb_cursor_open(&c, s, "t");
    edb_colid v = 0;
    if (rc == 0)
        rc = edb_column_id(&v, c, "v");
    unsigned char *buf = malloc(vsize);
    for (size_t i = 0; i < vsize; i++)
        buf[i] = (unsigned char)(i * 131u + vsize);
    for (unsigned txn = 0; rc == 0 && txn < 10000; txn++) {
        rc = edb_txn_begin(s, 0);
        for (int k = 0; rc == 0 && k < 7; k++) {
            rc = edb_update_prepare(c, EDB_PREP_INSERT);
            if (rc == 0)
                rc = edb_column_set(c, v, buf, vsize, 0);
            if (rc == 0)
                rc = edb_update(c);
        }
        if (rc == 0)
            rc = edb_txn_commit(s);
        else
            (void)edb_txn_rollback(s);
    }
    int ok = rc == EDB_FULL;
    if (!ok)
        fprintf(stderr, "rows of %zu bytes: the first failure was %s, not EDB_FULL: %s\n", vsize,
                edb_err_name(rc), edb_error_last());
    free(buf);
    _exit(ok ? 0 : 1);
}

Test(errors, full_disk_at_commit_is_edb_full, .timeout = 120)
{
    size_t sizes[] = { 100, 1000, 1500, 3000, 3900, 5000, 9000, 33000 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *dir = make_tmpdir();
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0)
            fill_until_full(dir, sizes[i]);
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        rm_tree(dir);
        free(dir);
        cr_assert(WIFEXITED(st), "the child died (signal %d)", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        if (WEXITSTATUS(st) == 77)
            cr_skip_test("no private tmpfs here (mount namespaces not allowed)");
        cr_assert_eq(WEXITSTATUS(st), 0, "rows of %zu bytes: a full disk at commit was not EDB_FULL "
                     "(exit status %d; see stderr)", sizes[i], WEXITSTATUS(st));
    }
}

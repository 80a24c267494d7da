/*
 * test_tool_faults.c: faults on dbtool's own file and pipe paths, which call
 * the system directly (tools/cmd_backup.c) and so are out of reach of the
 * library's countdown (backup/sys.h):
 * - a full disk, simulated with RLIMIT_FSIZE (writes past the limit fail with
 *   EFBIG; SIGXFSZ ignored), at every limit from 0 to the output's size:
 *   `dbtool backup` and `dbtool restore` exit 1 with an EDB_ message and
 *   leave nothing: no file at the archive's name and no temporary file, no
 *   target and no temporary directory;
 * - a full disk under `dbtool compact DB` (the rewrite in place): exit 1
 *   with an EDB_ message, the database unchanged, nothing left beside it;
 * - a consumer that goes away: `dbtool backup DB -` into a pipe closed after
 *   K bytes exits 1 with a message (it is not killed by SIGPIPE);
 * - a producer that stops: `dbtool restore T -` fed the first K bytes of an
 *   archive exits 1 and creates no target;
 * - random faults with random plausible errnos in every POSIX I/O call
 *   (libfiu's `fiu-run -x`, TESTING.md: "handle every errno, not only EIO")
 *   under `dbtool backup`, `verify` and `restore`: exit 0 with a good result,
 *   or exit 1 with an EDB_ message and no complete-looking output, never a
 *   signal.  Skipped without fiu-run, and in sanitizer builds (a preload
 *   library cannot come before the sanitizer's runtime).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dbtool_run.h"
#include "edb.h"
#include "edb_backup.h"
#include <time.h>

static const char *SCHEMA =
    "{\"name\": \"t\", \"columns\": [{\"name\": \"id\", \"type\": \"int32\"}, {\"name\": \"b\", \"type\": \"binary\"}],"
    " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]}]}";

static char *
make_db(char *path, size_t cap, int n)
{
    char *rows = malloc((size_t)n * 600 + 1), *p = rows;
    cr_assert_not_null(rows);
    for (int i = 1; i <= n; i++) {
        p += sprintf(p, "{\"id\": %d, \"b\": \"", i);
        for (int k = 0; k < 400; k++)
            *p++ = 'A' + (char)((i + k) % 26);
        p += sprintf(p, "\"}\n");
    }
    *p = '\0';
    char *dir = dbt_make_db(path, cap, SCHEMA, "t", rows);
    free(rows);
    return dir;
}

static const char *
dbtool(void)
{
    static char bin[1024];
    const char *top = getenv("top_builddir");
    snprintf(bin, sizeof bin, "%s/dbtool", top ? top : ".");
    return bin;
}

/* Run dbtool with @argv under a file size limit of @limit bytes; stdin from
 * @in_fd (-1: /dev/null), stdout to @out_fd (-1: /dev/null), stderr captured
 * into @err.  Returns the wait status. */
static int
run_limited(const char *const *argv, long long limit, int in_fd, int out_fd, char *err, size_t cap)
{
    int ep[2];
    cr_assert_eq(pipe(ep), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(in_fd >= 0 ? in_fd : null, 0);
        dup2(out_fd >= 0 ? out_fd : null, 1);
        dup2(ep[1], 2);
        close(ep[0]);
        signal(SIGXFSZ, SIG_IGN);
        signal(SIGPIPE, SIG_DFL);       /* as from a shell: dbtool must handle it itself */
        if (limit >= 0) {
            struct rlimit rl = { (rlim_t)limit, (rlim_t)limit };
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
                _exit(126);
        }
        execv(dbtool(), (char *const *)argv);
        _exit(127);
    }
    close(ep[1]);
    size_t n = 0;
    ssize_t k;
    while ((k = read(ep[0], err + n, cap - 1 - n)) > 0 && n + (size_t)k < cap - 1)
        n += (size_t)k;
    if (k > 0)
        n += (size_t)k;
    err[n] = '\0';
    while (read(ep[0], &k, 1) > 0) {
    }
    close(ep[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
}

/* Names in @dir other than those in @keep (NULL-terminated), '\n'-joined. */
static void
expect_only(const char *dir, const char *const *keep, const char *what)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        bool ok = false;
        for (size_t i = 0; keep[i]; i++)
            ok |= strcmp(e->d_name, keep[i]) == 0;
        cr_assert(ok, "%s: '%s' was left behind", what, e->d_name);
    }
    closedir(d);
}

static off_t
size_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s", path);
    return st.st_size;
}

/* The i-th of 25 disk sizes (i = 0..24) for an output of @len bytes: 0, one
 * page, then 23 steps up to one byte short of the whole output. */
static long long
disk_limit(int i, off_t len)
{
    long long lim = i == 0 ? 0 : i == 1 ? 4096 : (long long)len * (i - 1) / 23;
    return lim >= len ? (long long)len - 1 : lim;
}

static void
expect_failed(int st, const char *err, const char *what)
{
    cr_assert(WIFEXITED(st), "%s: dbtool died of signal %d", what, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    cr_assert_eq(WEXITSTATUS(st), 1, "%s: exit %d: %s", what, WEXITSTATUS(st), err);
    cr_assert(strncmp(err, "dbtool: ", 8) == 0 && strstr(err, "EDB_") != NULL, "%s: %s", what, err);
}

Test(tool_faults, backup_and_restore_on_a_full_disk, .timeout = 240)
{
    char db[300], arch[400], target[400], what[200], err[4096];
    char *dir = make_db(db, sizeof db, 600);
    snprintf(arch, sizeof arch, "%s/a.edbk", dir);
    snprintf(target, sizeof target, "%s/r", dir);
    /* The sizes to fail at: learn them from an unlimited run. */
    const char *bk[] = { "dbtool", "backup", db, arch, "--quiet", NULL };
    int st = run_limited(bk, -1, -1, -1, err, sizeof err);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", err);
    off_t alen = size_of(arch);
    char good[400];
    snprintf(good, sizeof good, "%s/good.edbk", dir);
    cr_assert_eq(rename(arch, good), 0);
    const char *rs[] = { "dbtool", "restore", target, good, NULL };
    st = run_limited(rs, -1, -1, -1, err, sizeof err);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", err);
    char data[500];
    snprintf(data, sizeof data, "%s/data.mdb", target);
    off_t dlen = size_of(data);
    char rm[600];
    snprintf(rm, sizeof rm, "rm -rf '%s'", target);
    cr_assert_eq(system(rm), 0);
    const char *keep[] = { "db", "good.edbk", NULL };

    unsigned failed = 0;
    for (int i = 0; i <= 24; i++) {
        long long lim = disk_limit(i, alen);
        snprintf(what, sizeof what, "backup with %lld of %lld bytes of disk", lim, (long long)alen);
        st = run_limited(bk, lim, -1, -1, err, sizeof err);
        expect_failed(st, err, what);
        cr_assert_neq(access(arch, F_OK), 0, "%s: a file at the archive's name", what);
        expect_only(dir, keep, what);
        failed++;
    }
    for (int i = 0; i <= 24; i++) {
        long long lim = disk_limit(i, dlen);
        snprintf(what, sizeof what, "restore with %lld of %lld bytes of disk", lim, (long long)dlen);
        st = run_limited(rs, lim, -1, -1, err, sizeof err);
        expect_failed(st, err, what);
        expect_only(dir, keep, what);
        failed++;
    }
    fprintf(stderr, "tool_faults::backup_and_restore_on_a_full_disk: %u runs of dbtool failed "
            "cleanly on a full disk (archive %lld bytes, data.mdb %lld bytes)\n", failed,
            (long long)alen, (long long)dlen);
    rm_tree(dir);
    free(dir);
}

/* `dbtool compact DB` on a full disk: the rewrite ("DB.compact" beside DB)
 * fails at every limit below the packed file's size, with an EDB_ message,
 * and leaves the database as it was (same rows, check clean) and nothing
 * beside it. */
Test(tool_faults, compact_on_a_full_disk, .timeout = 240)
{
    char db[300], what[200], err[4096];
    char *dir = make_db(db, sizeof db, 600);
    run_result base = dbt_runv(NULL, "export", db, "t", NULL);
    cr_assert_eq(base.status, 0, "%s", base.err);
    /* The size to fail below: an unlimited compact's output. */
    const char *cp[] = { "dbtool", "compact", db, NULL };
    int st = run_limited(cp, -1, -1, -1, err, sizeof err);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", err);
    char data[400];
    snprintf(data, sizeof data, "%s/data.mdb", db);
    off_t clen = size_of(data);
    const char *keep[] = { "db", NULL };
    unsigned failed = 0;
    for (int i = 0; i <= 24; i++) {
        long long lim = disk_limit(i, clen);
        snprintf(what, sizeof what, "compact with %lld of %lld bytes of disk", lim, (long long)clen);
        st = run_limited(cp, lim, -1, -1, err, sizeof err);
        expect_failed(st, err, what);
        expect_only(dir, keep, what);
        cr_assert_eq(size_of(data), clen, "%s: data.mdb changed size", what);
        run_result e = dbt_runv(NULL, "export", db, "t", NULL);
        cr_assert_eq(e.status, 0, "%s: export: %s", what, e.err);
        cr_assert_str_eq(e.out, base.out, "%s: the rows changed", what);
        run_free(&e);
        failed++;
    }
    run_result c = dbt_runv(NULL, "check", db, NULL);
    cr_assert_eq(c.status, 0, "check after the failed compacts: %s%s", c.out, c.err);
    run_free(&c);
    fprintf(stderr, "tool_faults::compact_on_a_full_disk: %u runs of dbtool compact failed "
            "cleanly on a full disk (packed data.mdb %lld bytes)\n", failed, (long long)clen);
    run_free(&base);
    rm_tree(dir);
    free(dir);
}

Test(tool_faults, pipes_that_break, .timeout = 120)
{
    char db[300], target[400], what[200], err[4096];
    /* 2,400 rows: an archive of about 1 MiB, so that the eighth a reader
     * leaves unread is more than a pipe's buffer holds (64 KiB) */
    char *dir = make_db(db, sizeof db, 2400);
    snprintf(target, sizeof target, "%s/r", dir);
    /* The archive, through standard output. */
    char arch[400];
    snprintf(arch, sizeof arch, "%s/a.edbk", dir);
    int afd = open(arch, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(afd, 0);
    const char *bk[] = { "dbtool", "backup", db, "-", "--quiet", NULL };
    int st = run_limited(bk, -1, -1, afd, err, sizeof err);
    close(afd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", err);
    off_t alen = size_of(arch);
    cr_assert_gt(alen, 5 * 4096);
    unsigned runs = 0;

    /* The reader of `dbtool backup DB -` goes away after K bytes. */
    for (int i = 0; i < 8; i++) {
        long long k = (long long)alen * i / 8;
        int p[2];
        cr_assert_eq(pipe(p), 0);
        pid_t reader = fork();
        cr_assert_geq(reader, 0);
        if (reader == 0) {
            close(p[1]);
            char buf[4096];
            long long got = 0;
            while (got < k) {
                ssize_t n = read(p[0], buf, (size_t)(k - got < 4096 ? k - got : 4096));
                if (n <= 0)
                    break;
                got += n;
            }
            _exit(0);       /* closes the read end */
        }
        close(p[0]);
        snprintf(what, sizeof what, "backup into a pipe closed after %lld of %lld bytes", k,
                 (long long)alen);
        st = run_limited(bk, -1, -1, p[1], err, sizeof err);
        close(p[1]);
        waitpid(reader, NULL, 0);
        expect_failed(st, err, what);
        runs++;
    }
    /* `dbtool restore T -` gets the first K bytes, then end of file. */
    uint8_t *a = malloc((size_t)alen);
    int fd = open(arch, O_RDONLY);
    cr_assert_eq(read(fd, a, (size_t)alen), alen);
    close(fd);
    const char *rs[] = { "dbtool", "restore", target, "-", NULL };
    for (int i = 0; i < 12; i++) {
        long long k = i == 11 ? alen - 1 : (long long)alen * i / 11;
        char part[400];
        snprintf(part, sizeof part, "%s/part", dir);
        int pf = open(part, O_RDWR | O_CREAT | O_TRUNC, 0600);
        cr_assert_eq(write(pf, a, (size_t)k), k);
        lseek(pf, 0, SEEK_SET);
        snprintf(what, sizeof what, "restore from the first %lld of %lld bytes", k, (long long)alen);
        st = run_limited(rs, -1, pf, -1, err, sizeof err);
        close(pf);
        unlink(part);
        expect_failed(st, err, what);
        cr_assert_neq(access(target, F_OK), 0, "%s: the target was created", what);
        const char *keep[] = { "db", "a.edbk", NULL };
        expect_only(dir, keep, what);
        runs++;
    }
    free(a);
    fprintf(stderr, "tool_faults::pipes_that_break: %u runs of dbtool failed cleanly on a broken "
            "or short pipe\n", runs);
    rm_tree(dir);
    free(dir);
}

/* ---- random faults in every I/O call (libfiu) ---- */

static bool
have_fiu(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return false;
#else
    return system("command -v fiu-run >/dev/null 2>&1") == 0;
#endif
}

/* Run the real dbtool binary (not libtool's wrapper script, which the
 * faults would hit too) under fiu-run with I/O faults of probability @p. */
static int
run_fiu(const char *const *args, double p, char *err, size_t cap)
{
    const char *top = getenv("top_builddir");
    char bin[1024], libs[1024], ctl[128];
    snprintf(bin, sizeof bin, "%s/.libs/dbtool", top ? top : ".");
    if (access(bin, X_OK) != 0)
        snprintf(bin, sizeof bin, "%s/dbtool", top ? top : ".");
    snprintf(libs, sizeof libs, "%s/.libs", top ? top : ".");
    snprintf(ctl, sizeof ctl, "enable_random name=posix/io/*,probability=%.3f", p);
    const char *argv[16] = { "fiu-run", "-x", "-c", ctl, bin };
    size_t n = 5;
    for (size_t i = 1; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int ep[2];
    cr_assert_eq(pipe(ep), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(ep[1], 2);
        close(ep[0]);
        setenv("LD_LIBRARY_PATH", libs, 1);
        execvp("fiu-run", (char *const *)argv);
        _exit(127);
    }
    close(ep[1]);
    size_t got = 0;
    ssize_t k;
    char sink[256];
    while ((k = read(ep[0], got < cap - 1 ? err + got : sink,
                     got < cap - 1 ? cap - 1 - got : sizeof sink)) > 0)
        if (got < cap - 1)
            got += (size_t)k;
    err[got] = '\0';
    close(ep[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
}

static int
count_prefixed(const char *dir, const char *prefix, bool remove_them)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        n++;
        if (remove_them) {
            char path[1200];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            char cmd[1300];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
            cr_assert_eq(system(cmd), 0);
        }
    }
    closedir(d);
    return n;
}

static bool
verifies(const char *path)
{
    edb_backup_source src = { .path = path };
    return edb_backup_verify(NULL, &src, 1, NULL, NULL) == 0;
}

static void
expect_clean_exit(int st, const char *err, const char *what)
{
    cr_assert(WIFEXITED(st), "%s: died of signal %d: %s", what, WIFSIGNALED(st) ? WTERMSIG(st) : 0, err);
    int x = WEXITSTATUS(st);
    cr_assert(x == 0 || x == 1, "%s: exit %d: %s", what, x, err);
    if (x == 1)
        cr_assert(strncmp(err, "dbtool: ", 8) == 0 && strstr(err, "EDB_") != NULL, "%s: %s",
                  what, err);
}

Test(tool_faults, random_errnos_in_every_io_call, .timeout = 180)
{
    if (!have_fiu())
        cr_skip_test("fiu-run (Debian: fiu-utils) not installed, or a sanitizer build");
    char db[300], arch[400], good[400], target[400], what[300], err[4096];
    char *dir = make_db(db, sizeof db, 300);
    snprintf(arch, sizeof arch, "%s/a.edbk", dir);
    snprintf(good, sizeof good, "%s/good.edbk", dir);
    snprintf(target, sizeof target, "%s/r", dir);
    run_result r = dbt_runv(NULL, "backup", db, good, "--quiet", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    run_result ref = dbt_runv(NULL, "export", db, "t", NULL);
    cr_assert_eq(ref.status, 0);

    unsigned ok[3] = { 0 }, failed[3] = { 0 }, late = 0, tmp_left = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned round = 0; round < 300; round++) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > 20)
            break;
        double p = 0.005 + 0.01 * (round % 5);
        /* backup */
        const char *bk[] = { "dbtool", "backup", db, arch, "--quiet", NULL };
        snprintf(what, sizeof what, "round %u: backup under faults (p %.3f)", round, p);
        int st = run_fiu(bk, p, err, sizeof err);
        expect_clean_exit(st, err, what);
        if (WEXITSTATUS(st) == 0) {
            ok[0]++;
            cr_assert(verifies(arch), "%s: exit 0 but the archive does not verify", what);
        } else {
            failed[0]++;
            if (access(arch, F_OK) == 0) {
                /* Only a failure after the rename may leave the archive, and it is whole. */
                cr_assert(strstr(err, "fsync of the directory") != NULL, "%s: failed (%s) but "
                          "left a file at the archive's name", what, err);
                cr_assert(verifies(arch), "%s: a failed backup left a bad archive in place", what);
                late++;
            }
        }
        unlink(arch);
        tmp_left += (unsigned)count_prefixed(dir, "a.edbk.tmp.", true);
        /* verify */
        const char *vf[] = { "dbtool", "verify", good, NULL };
        snprintf(what, sizeof what, "round %u: verify under faults (p %.3f)", round, p);
        st = run_fiu(vf, p, err, sizeof err);
        expect_clean_exit(st, err, what);
        WEXITSTATUS(st) == 0 ? ok[1]++ : failed[1]++;
        /* restore */
        const char *rs[] = { "dbtool", "restore", target, good, NULL };
        snprintf(what, sizeof what, "round %u: restore under faults (p %.3f)", round, p);
        st = run_fiu(rs, p, err, sizeof err);
        expect_clean_exit(st, err, what);
        bool present = access(target, F_OK) == 0;
        if (WEXITSTATUS(st) == 0 || present) {
            cr_assert(present, "%s: exit 0 but no target", what);
            if (WEXITSTATUS(st) != 0)
                cr_assert(strstr(err, "fsync") != NULL, "%s: failed (%s) but left a target", what, err);
            run_result e = dbt_runv(NULL, "export", target, "t", NULL);
            cr_assert_eq(e.status, 0, "%s: the restored database cannot be read: %s", what, e.err);
            cr_assert_str_eq(e.out, ref.out, "%s: the restored database differs", what);
            run_free(&e);
            WEXITSTATUS(st) == 0 ? ok[2]++ : (late++, failed[2]++);
        } else {
            failed[2]++;
        }
        char rm[600];
        snprintf(rm, sizeof rm, "rm -rf '%s'", target);
        cr_assert_eq(system(rm), 0);
        tmp_left += (unsigned)count_prefixed(dir, ".r.restore-", true);
    }
    run_free(&ref);
    fprintf(stderr, "tool_faults::random_errnos_in_every_io_call: backup %u ok / %u failed, "
            "verify %u / %u, restore %u / %u; %u failures after the final rename (output whole); "
            "%u temporary files or dirs left by failed clean-ups\n", ok[0], failed[0], ok[1],
            failed[1], ok[2], failed[2], late, tmp_left);
    cr_assert_gt(failed[0] + failed[1] + failed[2], 0, "no fault was ever injected");
    rm_tree(dir);
    free(dir);
}

/*
 * test_tool_faults.c: faults on dbtool's own file and pipe paths, which call
 * the system directly (tools/cmd_backup.c) and so are out of reach of the
 * library's countdown (backup/sys.h):
 * - a full disk, simulated with RLIMIT_FSIZE (writes past the limit fail with
 *   EFBIG; SIGXFSZ ignored), at every limit from 0 to the output's size:
 *   `dbtool backup` and `dbtool restore` exit 1 with an EDB_ message and
 *   leave nothing: no file at the archive's name and no temporary file, no
 *   target and no temporary directory;
 * - a consumer that goes away: `dbtool backup DB -` into a pipe closed after
 *   K bytes exits 1 with a message (it is not killed by SIGPIPE);
 * - a producer that stops: `dbtool restore T -` fed the first K bytes of an
 *   archive exits 1 and creates no target.
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

static const char *SCHEMA =
    "{\"name\": \"t\", \"columns\": [{\"name\": \"id\", \"type\": \"int32\"}, {\"name\": \"b\", \"type\": \"binary\"}],"
    " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]}]}";

static char *
make_db(char *path, size_t cap, int n)
{
    char *dir = tmpdir_new();
    snprintf(path, cap, "%s/db", dir);
    run_result r = dbt_runv(NULL, "create", path, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    r = dbt_runv(SCHEMA, "create-table", path, "-", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    char *rows = malloc((size_t)n * 600 + 1), *p = rows;
    for (int i = 1; i <= n; i++) {
        p += sprintf(p, "{\"id\": %d, \"b\": \"", i);
        for (int k = 0; k < 400; k++)
            *p++ = 'A' + (char)((i + k) % 26);
        p += sprintf(p, "\"}\n");
    }
    *p = '\0';
    r = dbt_runv(rows, "import", path, "t", "-", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
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
        long long lim = i == 0 ? 0 : i == 1 ? 4096 : (long long)alen * (i - 1) / 23;
        if (lim >= alen)
            lim = alen - 1;
        snprintf(what, sizeof what, "backup with %lld of %lld bytes of disk", lim, (long long)alen);
        st = run_limited(bk, lim, -1, -1, err, sizeof err);
        expect_failed(st, err, what);
        cr_assert_neq(access(arch, F_OK), 0, "%s: a file at the archive's name", what);
        expect_only(dir, keep, what);
        failed++;
    }
    for (int i = 0; i <= 24; i++) {
        long long lim = i == 0 ? 0 : i == 1 ? 4096 : (long long)dlen * (i - 1) / 23;
        if (lim >= dlen)
            lim = dlen - 1;
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

Test(tool_faults, pipes_that_break, .timeout = 120)
{
    char db[300], target[400], what[200], err[4096];
    char *dir = make_db(db, sizeof db, 600);
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

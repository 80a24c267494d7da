/* Issue #11, the dbtool side: every operation as safe as backup.  The built
 * dbtool is spawned, interrupted and fed the wrong kind of file, and what it
 * leaves is checked:
 * - compact killed at random moments (SIGKILL, SIGINT, SIGTERM, SIGHUP) and
 *   into a 3 MiB tmpfs leaves no data.mdb at the target, or a complete one;
 * - restore and verify --deep interrupted by SIGINT/SIGTERM/SIGHUP leave
 *   nothing; after a SIGKILL the next run of the same command sweeps;
 * - restore --force with a delayed opener of the old lock.mdb;
 * - FIFOs where a regular file is expected are refused at once;
 * - names with NUL or control bytes are refused, with the naming rule;
 * - Ctrl-C of a backup whose output stalls ends it within 0.5 s.
 * Time limits stretch with EDB_TEST_SLOW and loops shrink with
 * EDB_TEST_SCALE (tests/valgrind.sh); dbtool itself is never run under
 * valgrind, only this process is. */
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
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dbtool_run.h"
#include "edb.h"

static const char *SCHEMA =
    "{\"name\": \"t\", \"columns\": [{\"name\": \"id\", \"type\": \"int64\", \"flags\": [\"autoinc\"]},"
    "{\"name\": \"v\", \"type\": \"text\"}],"
    "\"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]}]}";

/* ---- helpers ---- */

static double
slow(void)
{
    const char *e = getenv("EDB_TEST_SLOW");
    return e != NULL && atoi(e) > 0 ? atoi(e) : 1;
}

/* count scaled by EDB_TEST_SCALE (percent), at least min */
static int
scaled(int n, int min)
{
    const char *e = getenv("EDB_TEST_SCALE");
    if (e != NULL && atoi(e) > 0)
        n = n * atoi(e) / 100;
    return n < min ? min : n;
}

static double
mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t rng;

static unsigned
rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void
seed(const char *name)
{
    const char *e = getenv("EDB_CRASH_SEED");
    rng = e && *e ? strtoull(e, NULL, 0) : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
    if (rng == 0)
        rng = 1;
    fprintf(stderr, "%s: EDB_CRASH_SEED=%llu\n", name, (unsigned long long)rng);
}

/* Start dbtool with argv (NULL-terminated, without "dbtool"); -1 keeps a
 * descriptor; tmpdir sets TMPDIR when not NULL. */
static pid_t
spawn(const char *const *argv, int in_fd, int out_fd, int err_fd, const char *tmpdir)
{
    const char *top = getenv("top_builddir");
    char bin[512];
    snprintf(bin, sizeof bin, "%s/dbtool", top ? top : ".");
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (in_fd >= 0)
            dup2(in_fd, 0);
        if (out_fd >= 0)
            dup2(out_fd, 1);
        if (err_fd >= 0)
            dup2(err_fd, 2);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        if (tmpdir != NULL)
            setenv("TMPDIR", tmpdir, 1);
        /* In a TSan build, _exit with threads alive sleeps atexit_sleep_ms
         * (1 s by default): not what the timing tests measure. */
        const char *t = getenv("TSAN_OPTIONS");
        char topt[1024];
        snprintf(topt, sizeof topt, "%s%satexit_sleep_ms=0", t ? t : "", t && *t ? " " : "");
        setenv("TSAN_OPTIONS", topt, 1);
        const char *av[16];
        av[0] = "dbtool";
        int i = 0;
        for (; argv[i] && i < 14; i++)
            av[i + 1] = argv[i];
        av[i + 1] = NULL;
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        execv(bin, (char *const *)av);
        _exit(127);
    }
    return pid;
}

/* The wait status, or -1 after @secs (the process is then killed). */
static int
wait_for(pid_t pid, double secs)
{
    double end = mono() + secs;
    int st;
    while (mono() < end) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return st;
        sleep_s(0.002);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* How many entries of dir contain needle (0 when dir is absent). */
static int
count_like(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 && strstr(de->d_name, needle))
            n++;
    closedir(d);
    return n;
}

/* Wait until no process holds a flock on the entries of dir that contain
 * needle (a killed dbtool's children die a moment after it). */
static void
wait_unlocked(const char *dir, const char *needle)
{
    double end = mono() + 10 * slow();
    for (;;) {
        bool busy = false;
        DIR *d = opendir(dir);
        if (d == NULL)
            return;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strstr(de->d_name, needle) == NULL)
                continue;
            char p[1200];
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
            if (fd < 0)
                continue;
            if (flock(fd, LOCK_EX | LOCK_NB) != 0)
                busy = true;
            close(fd);
        }
        closedir(d);
        if (!busy || mono() > end)
            return;
        sleep_s(0.01);
    }
}

static char *
slurp_path(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return strdup("");
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

/* A database at <new dir>/db with @rows rows of ~@width bytes of text. */
static char *
big_db(char *path, size_t cap, unsigned rows, unsigned width)
{
    size_t sz = (size_t)rows * (width + 32) + 1;
    char *in = malloc(sz), *p = in;
    cr_assert_not_null(in);
    for (unsigned i = 0; i < rows; i++) {
        p += sprintf(p, "{\"v\": \"");
        for (unsigned j = 0; j < width; j++)
            *p++ = (char)('a' + (i * 7 + j * 13) % 26);
        p += sprintf(p, "\"}\n");
    }
    *p = '\0';
    char *dir = dbt_make_db(path, cap, SCHEMA, "t", in);
    free(in);
    return dir;
}

static void
make_archive(const char *db, const char *arch)
{
    run_result r = dbt_runv(NULL, "backup", db, arch, "--quiet", NULL);
    dbt_expect_ok(&r, "backup");
    run_free(&r);
}

/* ---- names (point 7) ---- */

Test(tool_safety, names_with_nul_or_control_bytes_are_refused_by_dbtool, .timeout = 60)
{
    char db[300];
    char *dir = dbt_make_db(db, sizeof db, SCHEMA, "t", "{\"v\": \"x\"}\n");
    static const char *const bad[] = {
        "{\"name\": \"ab\\u0000zzz\", \"columns\": [{\"name\": \"id\", \"type\": \"int64\"}]}",
        "{\"name\": \"ab\\u0007zz\", \"columns\": [{\"name\": \"id\", \"type\": \"int64\"}]}",
        "{\"name\": \"t2\", \"columns\": [{\"name\": \"i\\u0000d\", \"type\": \"int64\"}]}",
        "{\"name\": \"t3\", \"columns\": [{\"name\": \"i\\nd\", \"type\": \"int64\"}]}",
        "{\"name\": \"t4\", \"columns\": [{\"name\": \"id\", \"type\": \"int64\"}],"
        " \"indexes\": [{\"name\": \"p\\u0000k\", \"key\": [\"+id\"], \"flags\": [\"primary\"]}]}",
        "{\"name\": \"t5\", \"columns\": [{\"name\": \"id\", \"type\": \"int64\"}],"
        " \"indexes\": [{\"name\": \"p\\u001bk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_result r = dbt_runv(bad[i], "create-table", db, "-", NULL);
        cr_assert_eq(r.status, 1, "accepted %s", bad[i]);
        cr_assert(strstr(r.err, "EDB_INVAL") != NULL, "%s", r.err);
        cr_assert(strstr(r.err, "[A-Za-z0-9_]") != NULL, "the message does not state the rule: %s", r.err);
        for (const char *p = r.err; *p; p++)
            cr_assert((unsigned char)*p >= 0x20 || *p == '\n', "a control byte in the message: %s", r.err);
        run_free(&r);
    }
    run_result r = dbt_runv(NULL, "tables", db, "--json", NULL);
    dbt_expect_ok(&r, "tables");
    cr_assert_eq(count_lines(r.out), 1, "a table was created: %s", r.out);
    cr_assert(strstr(r.out, "\"ab\"") == NULL, "%s", r.out);
    run_free(&r);
    rm_tree(dir);
    free(dir);
}

Test(tool_safety, names_with_control_bytes_are_refused_by_the_api, .timeout = 30)
{
    char *dir = tmpdir_new();
    edb_env_opts o;
    memset(&o, 0, sizeof o);
    o.map_size = 64u << 20;
    edb_env *env;
    cr_assert_eq(edb_env_open(&env, dir, &o), 0, "%s", edb_error_last());
    edb_session *s;
    cr_assert_eq(edb_session_begin(&s, env), 0);
    edb_column_def good = { .name = "id", .type = EDB_COL_INT64 };
    edb_column_def badcol = { .name = "i\nd", .type = EDB_COL_INT64 };
    edb_index_def badidx = { .name = "p\x1bk", .key = "+id\0", .flags = EDB_IDX_PRIMARY };
    edb_table_def defs[] = {
        { .name = "ab\x01zz", .columns = &good, .ncolumns = 1 },
        { .name = "t2", .columns = &badcol, .ncolumns = 1 },
        { .name = "t3", .columns = &good, .ncolumns = 1, .indexes = &badidx, .nindexes = 1 },
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        cr_assert_eq(edb_table_create(s, &defs[i]), EDB_INVAL, "definition %zu accepted", i);
        const char *m = edb_error_last();
        cr_assert(strstr(m, "[A-Za-z0-9_]") != NULL, "the message does not state the rule: %s", m);
        for (const char *p = m; *p; p++)
            cr_assert((unsigned char)*p >= 0x20, "a control byte in the message: %s", m);
    }
    edb_session_end(s);
    edb_env_close(env);
    rm_tree(dir);
    free(dir);
}

/* ---- compact (point 2) ---- */

static double
run_compact_once(const char *db, const char *out)
{
    double t0 = mono();
    run_result r = dbt_runv(NULL, "compact", db, out, NULL);
    double t = mono() - t0;
    dbt_expect_ok(&r, "compact");
    run_free(&r);
    return t;
}

/* data.mdb in out is absent, or complete (dbtool check) and 0600. */
static bool
check_target(const char *out)
{
    char f[600];
    snprintf(f, sizeof f, "%s/data.mdb", out);
    struct stat st;
    if (lstat(f, &st) != 0)
        return false;
    cr_assert((st.st_mode & 0777) == 0600, "%s has mode %o", f, (unsigned)(st.st_mode & 0777));
    run_result r = dbt_runv(NULL, "check", out, NULL);
    cr_assert_eq(r.status, 0, "a compact left an incomplete %s: %s%s", f, r.out, r.err);
    run_free(&r);
    return true;
}

Test(tool_safety, compact_killed_at_random_moments_leaves_nothing_or_a_whole_copy, .timeout = 300)
{
    seed("compact_killed");
    char db[300], out[400];
    char *dir = big_db(db, sizeof db, 12000, 700);
    snprintf(out, sizeof out, "%s/out", dir);
    double t = run_compact_once(db, out);
    cr_assert(check_target(out));
    rm_tree(out);
    static const int sigs[] = { SIGINT, SIGKILL, SIGTERM, SIGHUP };
    int kills = scaled(12, 4), mid = 0, done = 0, early = 0;
    for (int i = 0; i < kills; i++) {
        int sig = sigs[i % 4];
        char errp[500];
        snprintf(errp, sizeof errp, "%s/err.txt", dir);
        int errfd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const char *argv[] = { "compact", db, out, NULL };
        pid_t pid = spawn(argv, -1, -1, errfd, NULL);
        close(errfd);
        sleep_s(t * (0.25 + 0.75 * rnd(1000) / 1000.0));
        kill(pid, sig);
        int st = wait_for(pid, 10 * slow());
        cr_assert_neq(st, -1, "compact did not end within 10 s of signal %d", sig);
        bool whole = check_target(out);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            cr_assert(whole, "compact succeeded without a data.mdb");
            done++;
        } else if (sig != SIGKILL && WIFSIGNALED(st)) {
            /* only before dbtool blocked the signals (during exec): nothing made yet */
            cr_assert_eq(count_like(out, ""), 0, "killed by signal %d before its handling, yet "
                         "left files in %s", sig, out);
            early++;
        } else {
            if (sig != SIGKILL) {
                cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "signal %d: status 0x%x", sig, st);
                char *e = slurp_path(errp);
                cr_assert(strstr(e, "EDB_CANCELED") != NULL, "%s", e);
                free(e);
                cr_assert_eq(count_like(out, ".compact-"), 0, "signal %d left a temporary directory", sig);
            }
            mid++;          /* data.mdb absent, or whole (renamed just before the signal) */
        }
        if (sig == SIGKILL) {
            /* the next compact into the same directory sweeps what was left */
            wait_unlocked(out, ".compact-");
            if (whole) {
                char f[600];
                snprintf(f, sizeof f, "%s/data.mdb", out);
                unlink(f);
            }
            run_compact_once(db, out);
            cr_assert_eq(count_like(out, ".compact-"), 0, "the next compact did not sweep");
            cr_assert(check_target(out));
        }
        rm_tree(out);
    }
    fprintf(stderr, "compact_killed: %d kills: %d mid-way, %d after the end, %d before startup "
            "(a compact takes %.3f s)\n", kills, mid, done, early, t);
    rm_tree(dir);
    free(dir);
}

Test(tool_safety, compact_into_a_full_file_system_leaves_no_data_mdb, .timeout = 120)
{
    char db[300], mnt[400], out[500];
    char *dir = big_db(db, sizeof db, 8000, 700);    /* about 7 MiB compacted */
    snprintf(mnt, sizeof mnt, "%s/mnt", dir);
    cr_assert_eq(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=3m") != 0) {
        int e = errno;
        rm_tree(dir);
        free(dir);
        cr_skip_test("cannot mount a 3 MiB tmpfs (%s): needs root; the full-disk case is not tested",
                     strerror(e));
    }
    snprintf(out, sizeof out, "%s/out", mnt);
    run_result r = dbt_runv(NULL, "compact", db, out, NULL);
    cr_assert_eq(r.status, 1, "compact into 3 MiB: exit %d: %s", r.status, r.err);
    cr_assert(strstr(r.err, "EDB_FULL") != NULL || strstr(r.err, "space") != NULL, "%s", r.err);
    char f[600];
    snprintf(f, sizeof f, "%s/data.mdb", out);
    struct stat st;
    bool left = lstat(f, &st) == 0;
    int tmps = count_like(out, ".compact-");
    run_free(&r);
    umount2(mnt, MNT_DETACH);
    cr_assert(!left, "a failed compact left %s", f);
    cr_assert_eq(tmps, 0, "a failed compact left its temporary directory");
    rm_tree(dir);
    free(dir);
}

/* ---- restore and verify --deep under signals (point 3) ---- */

/* Start `restore target -` reading the archive from a pipe, send half of it
 * and wait until its temporary directory exists.  *wfd is the pipe's end. */
static pid_t
restore_half_way(const char *parent, const char *target, const char *bytes, size_t len, int *wfd,
                 int errfd)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    signal(SIGPIPE, SIG_IGN);          /* a restore that died early: EPIPE, not a crash */
    const char *argv[] = { "restore", target, "-", NULL };
    pid_t pid = spawn(argv, p[0], -1, errfd, NULL);
    close(p[0]);
    size_t half = len / 2, off = 0;
    while (off < half) {
        ssize_t n = write(p[1], bytes + off, half - off);
        cr_assert_gt(n, 0, "write to restore: %s", strerror(errno));
        off += (size_t)n;
    }
    double end = mono() + 10 * slow();
    while (count_like(parent, ".restore-") == 0) {
        cr_assert_lt(mono(), end, "restore made no temporary directory");
        sleep_s(0.002);
    }
    *wfd = p[1];
    return pid;
}

static char *
read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

Test(tool_safety, restore_interrupted_leaves_nothing_and_the_next_run_sweeps, .timeout = 180)
{
    char db[300], arch[400], parent[400], target[500], errp[500];
    char *dir = big_db(db, sizeof db, 6000, 300);
    snprintf(arch, sizeof arch, "%s/a.edbk", dir);
    make_archive(db, arch);
    size_t len;
    char *bytes = read_all(arch, &len);
    snprintf(parent, sizeof parent, "%s/p", dir);
    cr_assert_eq(mkdir(parent, 0700), 0);
    snprintf(target, sizeof target, "%s/tgt", parent);
    snprintf(errp, sizeof errp, "%s/err.txt", dir);
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
    for (size_t i = 0; i < 3; i++) {
        int errfd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int wfd;
        pid_t pid = restore_half_way(parent, target, bytes, len, &wfd, errfd);
        close(errfd);
        double t0 = mono();
        kill(pid, sigs[i]);
        int st = wait_for(pid, 10 * slow());
        close(wfd);
        cr_assert_neq(st, -1, "restore did not end after signal %d", sigs[i]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "signal %d: status 0x%x", sigs[i], st);
        cr_assert_lt(mono() - t0, 2 * slow(), "stopping took %.2f s", mono() - t0);
        char *e = slurp_path(errp);
        cr_assert(strstr(e, "EDB_CANCELED") != NULL, "%s", e);
        free(e);
        cr_assert_eq(count_like(parent, ""), 0, "signal %d left something beside the target", sigs[i]);
    }
    /* SIGKILL of dbtool: its worker dies with it; the next restore sweeps */
    int wfd;
    pid_t pid = restore_half_way(parent, target, bytes, len, &wfd, -1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(wfd);
    wait_unlocked(parent, ".restore-");
    run_result r = dbt_runv(NULL, "restore", target, arch, NULL);
    dbt_expect_ok(&r, "restore after a kill");
    run_free(&r);
    cr_assert_eq(count_like(parent, ".restore-"), 0, "the next restore did not sweep");
    /* a killed restore --force over the database, then the sweep again */
    for (size_t i = 0; i < 2; i++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        signal(SIGPIPE, SIG_IGN);
        const char *argv[] = { "restore", target, "-", "--force", NULL };
        pid = spawn(argv, p[0], -1, -1, NULL);
        close(p[0]);
        size_t off = 0;
        while (off < len / 2) {
            ssize_t n = write(p[1], bytes + off, len / 2 - off);
            cr_assert_gt(n, 0);
            off += (size_t)n;
        }
        kill(pid, i == 0 ? SIGKILL : SIGINT);
        waitpid(pid, NULL, 0);
        close(p[1]);
        wait_unlocked(parent, ".restore-");
        r = dbt_runv(NULL, "restore", target, arch, "--force", NULL);
        dbt_expect_ok(&r, "restore --force after a kill");
        run_free(&r);
        cr_assert_eq(count_like(parent, ".restore-"), 0, "the next restore --force did not sweep");
    }
    r = dbt_runv(NULL, "check", target, NULL);
    dbt_expect_ok(&r, "check of the restored database");
    run_free(&r);
    free(bytes);
    rm_tree(dir);
    free(dir);
}

/* Start verify --deep with TMPDIR=tmp and wait until its directory exists
 * (next to the @before already there). */
static pid_t
verify_deep_started(const char *tmp, const char *arch, int errfd, int before)
{
    const char *argv[] = { "verify", arch, "--deep", NULL };
    pid_t pid = spawn(argv, -1, -1, errfd, tmp);
    double end = mono() + 20 * slow();
    while (count_like(tmp, "dbtool-verify-") <= before) {
        cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "verify --deep ended before its deep phase "
                     "was seen");
        cr_assert_lt(mono(), end, "verify --deep made no temporary directory");
        sleep_s(0.001);
    }
    return pid;
}

Test(tool_safety, verify_deep_interrupted_leaves_nothing_and_the_next_run_sweeps, .timeout = 180)
{
    char db[300], arch[400], tmp[400], errp[500];
    char *dir = big_db(db, sizeof db, 20000, 300);
    snprintf(arch, sizeof arch, "%s/a.edbk", dir);
    make_archive(db, arch);
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    cr_assert_eq(mkdir(tmp, 0700), 0);
    snprintf(errp, sizeof errp, "%s/err.txt", dir);
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
    for (size_t i = 0; i < 3; i++) {
        int errfd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        pid_t pid = verify_deep_started(tmp, arch, errfd, 0);
        close(errfd);
        kill(pid, sigs[i]);
        int st = wait_for(pid, 10 * slow());
        cr_assert_neq(st, -1, "verify --deep did not end after signal %d", sigs[i]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "signal %d: status 0x%x", sigs[i], st);
        char *e = slurp_path(errp);
        cr_assert(strstr(e, "EDB_CANCELED") != NULL, "%s", e);
        free(e);
        cr_assert_eq(count_like(tmp, ""), 0, "signal %d left something in $TMPDIR", sigs[i]);
    }
    /* a live run's directory (locked) survives the sweep; a dead one's goes */
    char live[600];
    snprintf(live, sizeof live, "%s/dbtool-verify-LIVE01", tmp);
    cr_assert_eq(mkdir(live, 0700), 0);
    int lfd = open(live, O_RDONLY | O_DIRECTORY);
    cr_assert_eq(flock(lfd, LOCK_EX | LOCK_NB), 0);
    pid_t pid = verify_deep_started(tmp, arch, -1, 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(lfd);
    wait_unlocked(tmp, "dbtool-verify-");
    lfd = open(live, O_RDONLY | O_DIRECTORY);
    cr_assert_eq(flock(lfd, LOCK_EX | LOCK_NB), 0);
    cr_assert_eq(count_like(tmp, "dbtool-verify-"), 2, "the killed run left nothing to sweep");
    {
        const char *argv[] = { "verify", arch, "--deep", NULL };
        pid = spawn(argv, -1, -1, -1, tmp);
        int st = wait_for(pid, 60 * slow());
        cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "verify --deep: status 0x%x", st);
    }
    cr_assert_eq(count_like(tmp, "dbtool-verify-"), 1, "the next verify --deep did not sweep, or "
                 "removed a live run's directory");
    struct stat st;
    cr_assert_eq(stat(live, &st), 0, "a live run's directory was removed");
    close(lfd);
    rm_tree(dir);
    free(dir);
}

/* ---- restore --force and a delayed opener (point 4) ---- */

/* The child opens T/lock.mdb, says so, waits for "go", then locks it as LMDB
 * does (exclusive try, then shared) and reports whether the file it locked is
 * the one at T/lock.mdb; then holds the lock until its pipe closes. */
static pid_t
delayed_opener(const char *target, int *to, int *from)
{
    int a[2], b[2];
    cr_assert_eq(pipe(a), 0);
    cr_assert_eq(pipe(b), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(a[1]);
        close(b[0]);
        char lk[600];
        snprintf(lk, sizeof lk, "%s/lock.mdb", target);
        int fd = open(lk, O_RDWR);
        char c = fd >= 0 ? 'r' : 'e';
        if (write(b[1], &c, 1) != 1 || fd < 0 || read(a[0], &c, 1) != 1)
            _exit(1);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
        if (fcntl(fd, F_SETLK, &fl) == 0) {
            fl.l_type = F_RDLCK;          /* LMDB downgrades once the env is set up */
            fcntl(fd, F_SETLK, &fl);
        } else {
            fl.l_type = F_RDLCK;
            fcntl(fd, F_SETLKW, &fl);
        }
        struct stat mine, named;
        c = fstat(fd, &mine) == 0 && stat(lk, &named) == 0 && mine.st_ino == named.st_ino &&
            mine.st_dev == named.st_dev && mine.st_nlink > 0 ? 's' : 'd';
        if (write(b[1], &c, 1) != 1)
            _exit(1);
        while (read(a[0], &c, 1) > 0) {
        }
        _exit(0);
    }
    close(a[0]);
    close(b[1]);
    *to = a[1];
    *from = b[0];
    return pid;
}

Test(tool_safety, restore_force_cannot_replace_a_database_a_late_opener_locked, .timeout = 120)
{
    char db[300], arch[400], target[400];
    char *dir = big_db(db, sizeof db, 500, 100);
    snprintf(arch, sizeof arch, "%s/a.edbk", dir);
    make_archive(db, arch);
    snprintf(target, sizeof target, "%s/tgt", dir);
    run_result r = dbt_runv(NULL, "restore", target, arch, NULL);
    dbt_expect_ok(&r, "restore");
    run_free(&r);
    r = dbt_runv(NULL, "count", target, "t", NULL);   /* creates lock.mdb */
    dbt_expect_ok(&r, "count");
    run_free(&r);
    int to, from;
    pid_t pid = delayed_opener(target, &to, &from);
    char c = 0;
    cr_assert_eq(read(from, &c, 1), 1);
    cr_assert_eq(c, 'r', "the opener could not open lock.mdb");
    /* the opener has the file open but no lock yet: the swap goes ahead */
    r = dbt_runv(NULL, "restore", target, arch, "--force", NULL);
    dbt_expect_ok(&r, "restore --force with an opener that holds no lock yet");
    run_free(&r);
    cr_assert_eq(write(to, "g", 1), 1);
    cr_assert_eq(read(from, &c, 1), 1);
    cr_assert_eq(c, 's', "the late opener locked a lock file that no longer guards the database");
    /* it now holds LMDB's shared lock: the database is in use */
    r = dbt_runv(NULL, "restore", target, arch, "--force", NULL);
    cr_assert_eq(r.status, 1, "restore --force replaced a database a process has open: %s", r.out);
    cr_assert(strstr(r.err, "EDB_BUSY") != NULL, "%s", r.err);
    run_free(&r);
    close(to);
    close(from);
    waitpid(pid, NULL, 0);
    r = dbt_runv(NULL, "restore", target, arch, "--force", NULL);
    dbt_expect_ok(&r, "restore --force once the opener is gone");
    run_free(&r);
    r = dbt_runv(NULL, "check", target, NULL);
    dbt_expect_ok(&r, "check");
    run_free(&r);
    rm_tree(dir);
    free(dir);
}

/* ---- FIFOs where a regular file is expected (point 5) ---- */

Test(tool_safety, fifos_and_directories_are_refused_at_once, .timeout = 120)
{
    char db[300], fifo[400], arch[400], target[400], errp[400];
    char *dir = dbt_make_db(db, sizeof db, SCHEMA, "t", "{\"v\": \"x\"}\n");
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    snprintf(arch, sizeof arch, "%s/a.edbk", dir);
    snprintf(target, sizeof target, "%s/tgt", dir);
    snprintf(errp, sizeof errp, "%s/err.txt", dir);
    const char *const cases[][8] = {
        { "verify", fifo, NULL },
        { "verify", fifo, "--deep", NULL },
        { "restore", target, fifo, NULL },
        { "backup", db, arch, "--incremental", fifo, NULL },
        { "import", db, "t", fifo, NULL },
        { "create-table", db, fifo, NULL },
        { "verify", dir, NULL },
        { "restore", target, dir, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int errfd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        double t0 = mono();
        pid_t pid = spawn(cases[i], -1, -1, errfd, NULL);
        close(errfd);
        int st = wait_for(pid, 5 * slow());
        double took = mono() - t0;
        char *e = slurp_path(errp);
        cr_assert_neq(st, -1, "dbtool %s ... %s blocked (killed after 5 s)", cases[i][0], cases[i][2]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "case %zu: status 0x%x: %s", i, st, e);
        cr_assert_lt(took, 1.0 * slow(), "case %zu took %.2f s", i, took);
        cr_assert(strstr(e, i < 6 ? "FIFO" : "a directory") != NULL && strstr(e, "not a regular file"),
                  "case %zu: %s", i, e);
        cr_assert(strstr(e, "stalled") == NULL, "case %zu: %s", i, e);
        free(e);
    }
    cr_assert_neq(access(arch, F_OK), 0, "a refused backup left %s", arch);
    cr_assert_neq(access(target, F_OK), 0, "a refused restore left %s", target);
    rm_tree(dir);
    free(dir);
}

/* ---- Ctrl-C of a backup whose output stalls (point 8) ---- */

Test(tool_safety, ctrl_c_ends_a_backup_to_a_stalled_pipe_within_half_a_second, .timeout = 120)
{
    char db[300], errp[400];
    char *dir = big_db(db, sizeof db, 6000, 300);
    snprintf(errp, sizeof errp, "%s/err.txt", dir);
    int rounds = scaled(3, 1);
    double worst = 0;
    for (int i = 0; i < rounds; i++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        int errfd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const char *argv[] = { "backup", db, "-", NULL };
        pid_t pid = spawn(argv, -1, p[1], errfd, NULL);
        close(errfd);
        close(p[1]);
        /* nobody reads: wait until the pipe is full and the writer blocked */
        double end = mono() + 20 * slow();
        int queued = 0;
        while (queued < 65536) {
            cr_assert_lt(mono(), end, "the backup wrote only %d bytes", queued);
            cr_assert_eq(ioctl(p[0], FIONREAD, &queued), 0);
            sleep_s(0.005);
        }
        sleep_s(0.2);
        double t0 = mono();
        kill(pid, SIGINT);
        int st = wait_for(pid, 10 * slow());
        double took = mono() - t0;
        close(p[0]);
        cr_assert_neq(st, -1, "Ctrl-C did not end the backup");
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status 0x%x", st);
        char *e = slurp_path(errp);
        cr_assert(strstr(e, "EDB_CANCELED") != NULL, "%s", e);
        free(e);
        if (took > worst)
            worst = took;
    }
    fprintf(stderr, "ctrl_c_stalled: %d rounds, slowest exit %.3f s after SIGINT\n", rounds, worst);
    cr_assert_lt(worst, 0.5 * slow(), "Ctrl-C took %.3f s to end a stalled backup", worst);
    rm_tree(dir);
    free(dir);
}

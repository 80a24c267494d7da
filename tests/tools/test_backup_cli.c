/* dbtool backup, restore and verify driven as a user would: the built binary
 * spawned with arguments; its output, exit status and the files it leaves
 * checked.  Includes stopping a backup with SIGINT/SIGTERM, a reader that
 * goes away (| head -c), and the consistency test: a writer in another process
 * moves money between accounts while backups run; every restored copy holds
 * the same total. */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dbtool_run.h"
#include "edb_backup.h"

static const char *const SCHEMA = DBT_SCHEMA_ID_TEXT;

struct fx {
    char *dir;
    char db[300];
    char path[400];   /* scratch */
};

/* A database with @rows rows of ~@width bytes of text. */
static void
fx_init(struct fx *f, unsigned rows, unsigned width)
{
    size_t cap = (size_t)rows * (width + 32) + 1;
    char *in = malloc(cap), *p = in;
    cr_assert_not_null(in);
    for (unsigned i = 0; i < rows; i++) {
        p += sprintf(p, "{\"v\": \"");
        for (unsigned j = 0; j < width; j++)
            *p++ = (char)('a' + (i * 7 + j * 13) % 26);
        p += sprintf(p, "\"}\n");
    }
    *p = '\0';
    f->dir = dbt_make_db(f->db, sizeof f->db, SCHEMA, "t", in);
    free(in);
}

static void
fx_fini(struct fx *f)
{
    rm_tree(f->dir);
    free(f->dir);
}

static char *
in_dir(struct fx *f, const char *name)
{
    snprintf(f->path, sizeof f->path, "%s/%s", f->dir, name);
    return f->path;
}

/* No file in the directory whose name contains @needle. */
static void
expect_no_file_like(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        cr_assert_null(strstr(de->d_name, needle), "left behind: %s/%s", dir, de->d_name);
    closedir(d);
}

static char *
export_rows(const char *db)
{
    run_result r = dbt_runv(NULL, "export", db, "t", NULL);
    cr_assert_eq(r.status, 0, "export %s: %s", db, r.err);
    char *out = r.out;
    r.out = NULL;
    run_free(&r);
    return out;
}

Test(backup_cli, backup_to_a_file_verify_restore, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 2000, 100);
    char arch[400], target[400];
    snprintf(arch, sizeof arch, "%s/a.edbk", f.dir);
    snprintf(target, sizeof target, "%s/restored", f.dir);
    run_result r = dbt_runv(NULL, "backup", f.db, arch, "--quiet", NULL);
    dbt_expect_ok(&r, "backup");
    cr_assert_str_eq(r.err, "", "--quiet prints nothing: %s", r.err);
    run_free(&r);
    struct stat st;
    cr_assert_eq(stat(arch, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    expect_no_file_like(f.dir, ".tmp.");

    r = dbt_runv(NULL, "verify", arch, NULL);
    dbt_expect_ok(&r, "verify");
    cr_assert(strstr(r.out, "ok: 1 archive") != NULL, "%s", r.out);
    run_free(&r);

    r = dbt_runv(NULL, "restore", target, arch, NULL);
    dbt_expect_ok(&r, "restore");
    cr_assert(strstr(r.out, "restored") != NULL, "%s", r.out);
    run_free(&r);
    char *a = export_rows(f.db), *b = export_rows(target);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);

    /* a second restore onto it needs --force */
    r = dbt_runv(NULL, "restore", target, arch, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "dbtool: restore '") == r.err, "%s", r.err);
    cr_assert(strstr(r.err, ": EDB_EXISTS: ") != NULL, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "restore", target, arch, "--force", NULL);
    dbt_expect_ok(&r, "restore --force");
    run_free(&r);

    r = dbt_runv(NULL, "verify", "--deep", arch, NULL);
    dbt_expect_ok(&r, "verify --deep");
    cr_assert(strstr(r.out, "passed 'dbtool check'") != NULL, "%s", r.out);
    run_free(&r);
    fx_fini(&f);
}

/* A chain through the command line: full, incremental, low-pin rate-limited
 * incremental; every prefix restores its state; a chain without its full
 * archive is refused naming the link. */
Test(backup_cli, incremental_chain_low_pin_and_rate_limit, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 2000, 100);
    char a[3][400], target[400];
    char *rows[3];
    for (int i = 0; i < 3; i++) {
        snprintf(a[i], sizeof a[i], "%s/a%d.edbk", f.dir, i);
        run_result r;
        if (i == 0)
            r = dbt_runv(NULL, "backup", f.db, a[i], NULL);
        else if (i == 1)
            r = dbt_runv(NULL, "backup", "--incremental", a[0], f.db, a[i], NULL);
        else
            r = dbt_runv(NULL, "backup", f.db, a[i], "--incremental", a[1], "--low-pin", "--rate-limit", "20M", NULL);
        dbt_expect_ok(&r, "backup");
        const char *kind = i == 0 ? "full archive" : i == 1 ? "incremental archive" : "low-pin incremental archive";
        cr_assert(strstr(r.err, kind) != NULL, "%s", r.err);
        cr_assert(strstr(r.err, "snapshot pinned") != NULL, "%s", r.err);
        run_free(&r);
        rows[i] = export_rows(f.db);
        char more[64];
        snprintf(more, sizeof more, "{\"v\": \"change %d\"}\n", i);
        r = dbt_runv(more, "import", f.db, "t", "-", NULL);
        dbt_expect_ok(&r, "import");
        run_free(&r);
    }
    struct stat s0, s2;
    cr_assert_eq(stat(a[0], &s0), 0);
    cr_assert_eq(stat(a[2], &s2), 0);
    cr_assert_lt(s2.st_size * 4, s0.st_size, "incremental %lld bytes, full %lld", (long long)s2.st_size,
                 (long long)s0.st_size);
    run_result r = dbt_runv(NULL, "verify", a[0], a[1], a[2], NULL);
    dbt_expect_ok(&r, "verify chain");
    run_free(&r);
    for (int k = 1; k <= 3; k++) {
        snprintf(target, sizeof target, "%s/r%d", f.dir, k);
        r = k == 1 ? dbt_runv(NULL, "restore", target, a[0], NULL)
          : k == 2 ? dbt_runv(NULL, "restore", target, a[0], a[1], NULL)
                   : dbt_runv(NULL, "restore", target, a[0], a[1], a[2], NULL);
        dbt_expect_ok(&r, "restore prefix");
        run_free(&r);
        char *got = export_rows(target);
        cr_assert_str_eq(got, rows[k - 1], "prefix of %d archives", k);
        free(got);
    }
    snprintf(target, sizeof target, "%s/broken", f.dir);
    r = dbt_runv(NULL, "restore", target, a[0], a[2], NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, ": EDB_CHAIN: ") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "a2.edbk") != NULL, "%s", r.err);
    run_free(&r);
    for (int i = 0; i < 3; i++)
        free(rows[i]);
    fx_fini(&f);
}

Test(backup_cli, backup_to_stdout_then_restore_from_stdin, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 1500, 80);
    run_result r = dbt_runv(NULL, "backup", f.db, "-", "--quiet", NULL);
    dbt_expect_ok(&r, "backup -");
    cr_assert_gt(r.out_len, 3 * 4096);
    cr_assert_eq(r.out_len % 4096, 0);
    char *arch = strdup(in_dir(&f, "s.edbk"));
    FILE *o = fopen(arch, "wb");
    cr_assert_eq(fwrite(r.out, 1, r.out_len, o), r.out_len);
    fclose(o);
    run_free(&r);
    r = dbt_runv(NULL, "verify", arch, NULL);
    dbt_expect_ok(&r, "verify");
    run_free(&r);
    /* restore reads the archive from standard input */
    FILE *in = fopen(arch, "rb");
    struct stat st;
    fstat(fileno(in), &st);
    char *bytes = malloc((size_t)st.st_size + 1);
    cr_assert_eq(fread(bytes, 1, (size_t)st.st_size, in), (size_t)st.st_size);
    fclose(in);
    /* dbt_run's stdin is a C string: archives contain NUL bytes, so feed it
     * through a shell redirection instead */
    free(bytes);
    char target[400];
    snprintf(target, sizeof target, "%s/r", f.dir);
    const char *top = getenv("top_builddir");
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s/dbtool' restore '%s' - < '%s' > /dev/null", top ? top : ".",
             target, arch);
    cr_assert_eq(system(cmd), 0);
    char *a = export_rows(f.db), *b = export_rows(target);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    free(arch);
    fx_fini(&f);
}

Test(backup_cli, help_tells_the_truth, .timeout = 30)
{
    const char *cmds[] = { "backup", "restore", "verify" };
    const char *needles[] = { "--incremental BASE", "--force", "--deep" };
    for (int i = 0; i < 3; i++) {
        run_result r = dbt_runv(NULL, cmds[i], "--help", NULL);
        cr_assert_eq(r.status, 0, "%s --help", cmds[i]);
        cr_assert(strstr(r.out, "usage: dbtool ") == r.out, "%s", r.out);
        cr_assert(strstr(r.out, needles[i]) != NULL, "%s", r.out);
        run_free(&r);
        r = dbt_runv(NULL, "help", cmds[i], NULL);
        cr_assert_eq(r.status, 0);
        run_free(&r);
    }
    run_result r = dbt_runv(NULL, "--help", NULL);
    cr_assert(strstr(r.out, "backup DB ARCHIVE|-") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "restore TARGET_DIR ARCHIVE|-...") != NULL);
    cr_assert(strstr(r.out, "verify ARCHIVE...") != NULL);
    run_free(&r);
}

Test(backup_cli, usage_errors_exit_2, .timeout = 30)
{
    const char *cases[][6] = {
        { "backup", NULL },
        { "backup", "db", NULL },
        { "backup", "db", "a", "extra", NULL },
        { "backup", "db", "a", "--rate-limit", NULL },
        { "backup", "db", "a", "--rate-limit", "fast", NULL },
        { "backup", "db", "a", "--rate-limit", "0", NULL },
        { "backup", "db", "a", "--bogus", NULL },
        { "backup", "db", "a", "--incremental", NULL },
        { "restore", NULL },
        { "restore", "target", NULL },
        { "restore", "target", "-", "-", NULL },
        { "restore", "target", "a", "--bogus", NULL },
        { "verify", NULL },
        { "verify", "--deep", "-", NULL },
        { "verify", "a", "--what", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r = dbt_run(NULL, cases[i]);
        cr_assert_eq(r.status, 2, "case %zu (%s %s): exit %d: %s", i, cases[i][0],
                     cases[i][1] ? cases[i][1] : "", r.status, r.err);
        cr_assert(strstr(r.err, "dbtool: ") == r.err, "%s", r.err);
        cr_assert(strstr(r.err, "usage: dbtool ") != NULL, "%s", r.err);
        run_free(&r);
    }
}

Test(backup_cli, failures_exit_1_with_the_code_name, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 300, 50);
    char arch[400], bad[400], target[400];
    snprintf(arch, sizeof arch, "%s/a.edbk", f.dir);
    snprintf(bad, sizeof bad, "%s/bad.edbk", f.dir);
    snprintf(target, sizeof target, "%s/r", f.dir);
    run_result r = dbt_runv(NULL, "backup", f.db, arch, "--quiet", NULL);
    dbt_expect_ok(&r, "backup");
    run_free(&r);

    r = dbt_runv(NULL, "backup", in_dir(&f, "nodb"), arch, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "dbtool: backup '") == r.err, "%s", r.err);
    cr_assert(strstr(r.err, ": EDB_NOTFOUND: ") != NULL, "%s", r.err);
    run_free(&r);

    /* a damaged page: verify lists it and fails; restore leaves nothing */
    FILE *in = fopen(arch, "rb");
    struct stat st;
    fstat(fileno(in), &st);
    unsigned char *bytes = malloc((size_t)st.st_size);
    cr_assert_eq(fread(bytes, 1, (size_t)st.st_size, in), (size_t)st.st_size);
    fclose(in);
    bytes[2 * 4096 + 100] ^= 0x20;           /* inside the first page of frame 0 */
    FILE *o = fopen(bad, "wb");
    fwrite(bytes, 1, (size_t)st.st_size, o);
    fclose(o);
    r = dbt_runv(NULL, "verify", bad, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.out, "problem: archive 1 '") == r.out, "%s", r.out);
    cr_assert(strstr(r.out, "frame 0, page ") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "offset 8192") != NULL, "%s", r.out);
    cr_assert(strstr(r.err, "dbtool: verify: EDB_CHECKSUM: ") == r.err, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "restore", target, bad, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "EDB_CHECKSUM") != NULL, "%s", r.err);
    run_free(&r);
    cr_assert_neq(access(target, F_OK), 0, "a refused restore leaves no target");
    expect_no_file_like(f.dir, ".restore-");

    /* truncated: an interrupted backup */
    bytes[2 * 4096 + 100] ^= 0x20;
    o = fopen(bad, "wb");
    fwrite(bytes, 1, (size_t)st.st_size - 4096, o);
    fclose(o);
    r = dbt_runv(NULL, "verify", bad, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "dbtool: verify: EDB_CORRUPT: ") == r.err, "%s", r.err);
    cr_assert(strstr(r.err, "interrupted backup") != NULL, "%s", r.err);
    run_free(&r);

    /* a chain that starts with a repeat */
    r = dbt_runv(NULL, "verify", arch, arch, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "EDB_CHAIN") != NULL, "%s", r.err);
    run_free(&r);
    free(bytes);
    fx_fini(&f);
}

/* ---- stopping ---- */

static pid_t
spawn(const char *const *argv, int out_fd, int err_fd)
{
    const char *top = getenv("top_builddir");
    char bin[512];
    snprintf(bin, sizeof bin, "%s/dbtool", top ? top : ".");
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (out_fd >= 0)
            dup2(out_fd, 1);
        if (err_fd >= 0)
            dup2(err_fd, 2);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        const char *av[16];
        av[0] = "dbtool";
        int i = 0;
        for (; argv[i] && i < 14; i++)
            av[i + 1] = argv[i];
        av[i + 1] = NULL;
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(bin, (char *const *)av);
        _exit(127);
    }
    return pid;
}

static double
mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait up to @secs; returns the wait status or -1 on timeout (then kills). */
static int
wait_for(pid_t pid, double secs)
{
    double end = mono() + secs;
    int st;
    while (mono() < end) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return st;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static void
stop_with(int sig)
{
    struct fx f;
    fx_init(&f, 6000, 300);                   /* a few MiB */
    char arch[400];
    snprintf(arch, sizeof arch, "%s/a.edbk", f.dir);
    char errpath[400];
    snprintf(errpath, sizeof errpath, "%s/err.txt", f.dir);
    int errfd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const char *argv[] = { "backup", f.db, arch, "--rate-limit", "200K", NULL };
    pid_t pid = spawn(argv, -1, errfd);
    close(errfd);
    usleep(700000);                            /* mid-way: 2+ MiB at 200 KiB/s take 10 s */
    cr_assert_eq(waitpid(pid, NULL, WNOHANG), 0, "the backup ended before the signal");
    double t0 = mono();
    kill(pid, sig);
    int st = wait_for(pid, 5);
    double took = mono() - t0;
    cr_assert_neq(st, -1, "dbtool did not stop within 5 s of signal %d", sig);
    cr_assert(WIFEXITED(st), "killed by a signal instead of exiting");
    cr_assert_eq(WEXITSTATUS(st), 1);
    cr_assert_lt(took, 1.0, "stopping took %.2f s", took);
    cr_assert_neq(access(arch, F_OK), 0, "an interrupted backup left %s", arch);
    expect_no_file_like(f.dir, ".tmp.");
    FILE *e = fopen(errpath, "r");
    char msg[1024] = "";
    size_t n = fread(msg, 1, sizeof msg - 1, e);
    msg[n] = '\0';
    fclose(e);
    cr_assert(strstr(msg, "dbtool: backup '") != NULL, "%s", msg);
    cr_assert(strstr(msg, "EDB_CANCELED") != NULL, "%s", msg);
    fx_fini(&f);
}

Test(backup_cli, sigint_mid_way_leaves_no_archive, .timeout = 60)
{
    stop_with(SIGINT);
}

Test(backup_cli, sigterm_mid_way_leaves_no_archive, .timeout = 60)
{
    stop_with(SIGTERM);
}

Test(backup_cli, a_reader_that_goes_away_stops_the_backup, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 4000, 300);
    int p[2], e[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(pipe(e), 0);
    const char *argv[] = { "backup", f.db, "-", NULL };
    pid_t pid = spawn(argv, p[1], e[1]);
    close(p[1]);
    close(e[1]);
    /* head -c 10000 */
    char buf[10000];
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t n = read(p[0], buf + got, sizeof buf - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    cr_assert_eq(got, sizeof buf);
    cr_assert_eq(memcmp(buf, "EDBK\r\n\x1a\n", 8), 0);
    double t0 = mono();
    close(p[0]);
    int st = wait_for(pid, 5);
    cr_assert_neq(st, -1, "dbtool hung on a closed pipe");
    cr_assert_lt(mono() - t0, 1.0);
    cr_assert(WIFEXITED(st), "died of a signal (SIGPIPE?) instead of exiting");
    cr_assert_eq(WEXITSTATUS(st), 1);
    char msg[2048] = "";
    ssize_t n = read(e[0], msg, sizeof msg - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(e[0]);
    cr_assert(strstr(msg, "EDB_IO") != NULL && strstr(msg, "broken pipe") != NULL, "%s", msg);
    /* and through a real shell pipeline */
    const char *top = getenv("top_builddir");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/dbtool' backup '%s' - 2>/dev/null | head -c 10000 >/dev/null",
             top ? top : ".", f.db);
    cr_assert_eq(system(cmd), 0);
    fx_fini(&f);
}

/* ---- consistency under a concurrent writer ---- */

#define ACCOUNTS 500
#define START_BALANCE 1000

static MDB_env *
raw_env(const char *db, MDB_dbi *dbi)
{
    MDB_env *env;
    MDB_txn *t;
    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 300) || mdb_env_set_mapsize(env, 1ull << 30))
        return NULL;
    if (mdb_env_open(env, db, 0, 0600))
        return NULL;
    if (mdb_txn_begin(env, NULL, 0, &t) || mdb_dbi_open(t, "bank", MDB_CREATE, dbi) ||
        mdb_txn_commit(t))
        return NULL;
    return env;
}

struct acct {
    int64_t balance;
    uint8_t pad[700];       /* every transfer rewrites pages */
};

static void
seed_accounts(const char *db)
{
    MDB_dbi dbi;
    MDB_env *env = raw_env(db, &dbi);
    cr_assert_not_null(env);
    MDB_txn *t;
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &t), 0);
    for (uint32_t i = 0; i < ACCOUNTS; i++) {
        struct acct a = { START_BALANCE, { 0 } };
        uint32_t k = __builtin_bswap32(i);
        MDB_val key = { sizeof k, &k }, val = { sizeof a, &a };
        cr_assert_eq(mdb_put(t, dbi, &key, &val, 0), 0);
    }
    cr_assert_eq(mdb_txn_commit(t), 0);
    mdb_env_close(env);
}

/* The writer: transfer random amounts until killed. */
static void
writer(const char *db)
{
    MDB_dbi dbi;
    MDB_env *env = raw_env(db, &dbi);
    if (env == NULL)
        _exit(3);
    unsigned seed = (unsigned)getpid();
    for (uint64_t n = 0;; n++) {
        MDB_txn *t;
        if (mdb_txn_begin(env, NULL, 0, &t))
            _exit(4);
        for (int k = 0; k < 4; k++) {
            uint32_t from = (uint32_t)rand_r(&seed) % ACCOUNTS, to = (uint32_t)rand_r(&seed) % ACCOUNTS;
            int64_t amt = rand_r(&seed) % 50;
            uint32_t kf = __builtin_bswap32(from), kt = __builtin_bswap32(to);
            MDB_val key = { 4, &kf }, v;
            struct acct a, b;
            if (mdb_get(t, dbi, &key, &v))
                _exit(5);
            memcpy(&a, v.mv_data, sizeof a);
            a.balance -= amt;
            a.pad[n % sizeof a.pad] = (uint8_t)n;
            if (mdb_put(t, dbi, &key, &(MDB_val){ sizeof a, &a }, 0))
                _exit(6);
            key.mv_data = &kt;
            if (mdb_get(t, dbi, &key, &v))
                _exit(5);
            memcpy(&b, v.mv_data, sizeof b);
            b.balance += amt;
            if (mdb_put(t, dbi, &key, &(MDB_val){ sizeof b, &b }, 0))
                _exit(6);
        }
        if (mdb_txn_commit(t))
            _exit(7);
    }
}

static int64_t
total_of(const char *db, unsigned *naccounts)
{
    MDB_env *env;
    MDB_txn *t;
    MDB_dbi dbi;
    MDB_cursor *c;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 300);
    mdb_env_set_mapsize(env, 1ull << 30); /* 1 GiB, not the 64 GiB the file records: valgrind cannot map that (tests/valgrind.sh) */
    int rc = mdb_env_open(env, db, MDB_RDONLY, 0600);
    cr_assert_eq(rc, 0, "open restored %s: %s", db, mdb_strerror(rc));
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "bank", 0, &dbi), 0);
    cr_assert_eq(mdb_cursor_open(t, dbi, &c), 0);
    MDB_val k, v;
    int64_t sum = 0;
    unsigned n = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        struct acct a;
        cr_assert_eq(v.mv_size, sizeof a);
        memcpy(&a, v.mv_data, sizeof a);
        sum += a.balance;
        n++;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    mdb_env_close(env);
    *naccounts = n;
    return sum;
}

Test(backup_consistency, restored_totals_never_change_under_a_writer, .timeout = 240)
{
    char *dir = tmpdir_new();
    char db[400];
    snprintf(db, sizeof db, "%s/db", dir);
    run_result r = dbt_runv(NULL, "create", db, NULL);
    dbt_expect_ok(&r, "create");
    run_free(&r);
    seed_accounts(db);
    pid_t w = fork();
    cr_assert_neq(w, -1);
    if (w == 0)
        writer(db);
    usleep(200000);
    int rounds = getenv("EDB_TEST_SCALE") ? 4 : 12;
    for (int i = 0; i < rounds; i++) {
        char arch[450], target[450];
        snprintf(arch, sizeof arch, "%s/b%d.edbk", dir, i);
        snprintf(target, sizeof target, "%s/r%d", dir, i);
        /* even rounds: a full backup (every fourth with --low-pin); odd
         * rounds: an incremental on the previous round's full archive (every
         * fourth low-pin too), restored as a chain of two */
        char prev[450];
        snprintf(prev, sizeof prev, "%s/b%d.edbk", dir, i - 1);
        const char *lp = i % 4 >= 2 ? "--low-pin" : "--quiet";
        if (i % 2 == 1)
            r = dbt_runv(NULL, "backup", db, arch, "--quiet", "--incremental", prev, lp, NULL);
        else
            r = dbt_runv(NULL, "backup", db, arch, "--quiet", lp, NULL);
        dbt_expect_ok(&r, "backup under a writer");
        run_free(&r);
        if (i % 2 == 1)
            r = dbt_runv(NULL, "restore", target, prev, arch, NULL);
        else
            r = dbt_runv(NULL, "restore", target, arch, NULL);
        dbt_expect_ok(&r, "restore");
        run_free(&r);
        unsigned n;
        int64_t sum = total_of(target, &n);
        cr_assert_eq(n, ACCOUNTS, "round %d: %u accounts", i, n);
        cr_assert_eq(sum, (int64_t)ACCOUNTS * START_BALANCE, "round %d: total %lld", i, (long long)sum);
        int st;
        cr_assert_eq(waitpid(w, &st, WNOHANG), 0, "the writer died (status %d)", st);
    }
    kill(w, SIGKILL);
    waitpid(w, NULL, 0);
    rm_tree(dir);
    free(dir);
}

/* ---- incremental chains through dbtool ---- */

Test(backup_cli, incremental_chain_restores_every_prefix, .timeout = 90)
{
    struct fx f;
    fx_init(&f, 1500, 120);
    char arch[3][400], target[400];
    char *state[3];
    for (int i = 0; i < 3; i++) {
        snprintf(arch[i], sizeof arch[i], "%s/a%d.edbk", f.dir, i);
        if (i == 1) {
            run_result r = dbt_runv("{\"v\": \"added after the full backup\"}\n", "import", f.db, "t",
                                    "-", NULL);
            dbt_expect_ok(&r, "import");
            run_free(&r);
        } else if (i == 2) {
            run_result r = dbt_runv(NULL, "delete", f.db, "t", "7", NULL);
            dbt_expect_ok(&r, "delete");
            run_free(&r);
        }
        state[i] = export_rows(f.db);
        run_result r = i == 0 ? dbt_runv(NULL, "backup", f.db, arch[0], "--quiet", NULL)
                              : dbt_runv(NULL, "backup", f.db, arch[i], "--quiet", "--incremental",
                                         arch[i - 1], NULL);
        dbt_expect_ok(&r, "backup");
        run_free(&r);
    }
    struct stat s0, s2;
    cr_assert_eq(stat(arch[0], &s0), 0);
    cr_assert_eq(stat(arch[2], &s2), 0);
    cr_assert_lt(s2.st_size, s0.st_size, "an incremental is smaller than the full archive");

    run_result r = dbt_runv(NULL, "verify", arch[0], arch[1], arch[2], NULL);
    dbt_expect_ok(&r, "verify chain");
    cr_assert(strstr(r.out, "ok: 3 archives") != NULL, "%s", r.out);
    run_free(&r);
    r = dbt_runv(NULL, "verify", arch[2], NULL);
    dbt_expect_ok(&r, "verify an incremental alone");
    cr_assert(strstr(r.out, "note: ") != NULL, "%s", r.out);
    run_free(&r);
    r = dbt_runv(NULL, "verify", "--deep", arch[0], arch[1], arch[2], NULL);
    dbt_expect_ok(&r, "verify --deep chain");
    run_free(&r);

    for (int n = 1; n <= 3; n++) {
        snprintf(target, sizeof target, "%s/r%d", f.dir, n);
        const char *argv[] = { "restore", target, arch[0], arch[1], arch[2], NULL };
        argv[2 + n] = NULL;
        r = dbt_run(NULL, argv);
        dbt_expect_ok(&r, "restore a prefix of the chain");
        run_free(&r);
        char *got = export_rows(target);
        cr_assert_str_eq(got, state[n - 1], "prefix of %d archive(s)", n);
        free(got);
    }
    /* links out of order or missing: EDB_CHAIN, nothing restored */
    snprintf(target, sizeof target, "%s/bad", f.dir);
    const char *bad[][5] = { { "restore", target, arch[0], arch[2], NULL },
                             { "restore", target, arch[1], arch[2], NULL },
                             { "restore", target, arch[0], arch[2], arch[1] } };
    for (int i = 0; i < 3; i++) {
        const char *argv[6] = { bad[i][0], bad[i][1], bad[i][2], bad[i][3], bad[i][4], NULL };
        r = dbt_run(NULL, argv);
        cr_assert_eq(r.status, 1);
        cr_assert(strstr(r.err, ": EDB_CHAIN: ") != NULL, "%s", r.err);
        run_free(&r);
        cr_assert_neq(access(target, F_OK), 0);
    }
    expect_no_file_like(f.dir, ".restore-");
    for (int i = 0; i < 3; i++)
        free(state[i]);
    fx_fini(&f);
}

/* Repositories in S3-compatible buckets, driven as an operator would, against
 * servers these tests start on 127.0.0.1:
 *  - moto_server (Python moto): backup full, incremental and continuous,
 *    repo list/prune/merge, restore --at/--txn, info and verify of archives in
 *    the bucket, and the abort path (an interrupted upload leaves no object
 *    and no multipart upload);
 *  - s3rver (npm), which checks SigV4 signatures: the same round trip;
 *  - tests/tools/s3_misbehave.py: a server that stalls, drips, resets, answers
 *    500 then 200, or 403, proving the deadlines, the retries, the cancel of a
 *    part in flight by SIGTERM, and that no credential reaches the output.
 * A test whose server cannot be started is skipped with a message, never
 * passed. */
#include "config.h"

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dbtool_run.h"

static const char *const SCHEMA = DBT_SCHEMA_ID_TEXT;

static const char *KEY_ID = "AKIDEDBTESTKEY0001";
static const char *SECRET = "edbTestSecretNeverPrinted/0123456789abcdefg";
static const char *TOKEN = "edbTestSessionTokenNeverPrinted42";

/* EDB_TEST_SLOW (a factor) stretches the time limits under valgrind. */
static double
slow(void)
{
    const char *e = getenv("EDB_TEST_SLOW");
    double v = e ? atof(e) : 1;
    return v >= 1 ? v : 1;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}


/* ---- servers ---- */

typedef struct server {
    pid_t pid;
    int port;
    char log[512];
    char endpoint[64];
} server;

static const char *
srcdir(void)
{
    const char *t = getenv("top_srcdir");
    return t ? t : ".";
}

static bool
on_path(const char *prog, char *out, size_t cap)
{
    const char *path = getenv("PATH");
    if (path == NULL)
        return false;
    char *dup = strdup(path), *save = NULL;
    bool found = false;
    for (char *d = strtok_r(dup, ":", &save); d != NULL && !found; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, cap, "%s/%s", d, prog);
        found = access(out, X_OK) == 0;
    }
    free(dup);
    return found;
}

static int
free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(s, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

static bool
port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

static pid_t
spawn(const char *const *argv, const char *logpath)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        dup2(nul, 0);
        setpgid(0, 0);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static void
server_stop(server *s)
{
    if (s->pid > 0) {
        kill(-s->pid, SIGKILL);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
}

/* Wait until the port answers; false (and the server stopped) when it does
 * not within 20 s. */
static bool
server_wait(server *s)
{
    for (int i = 0; i < 400; i++) {
        if (port_open(s->port)) {
            snprintf(s->endpoint, sizeof s->endpoint, "http://127.0.0.1:%d", s->port);
            return true;
        }
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return false;
        }
        sleep_ms(50);
    }
    server_stop(s);
    return false;
}

static void
mk_bucket(const server *s, const char *bucket)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "curl -sf -X PUT %s/%s >/dev/null", s->endpoint, bucket);
    cr_assert_eq(system(cmd), 0, "creating the bucket with: %s", cmd);
}

static void
moto_start(server *s, const char *dir)
{
    memset(s, 0, sizeof *s);
    char prog[4096];
    if (!on_path("moto_server", prog, sizeof prog))
        cr_skip_test("moto_server is not installed (pip install 'moto[server]'): S3 test skipped");
    s->port = free_port();
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(s->log, sizeof s->log, "%s/moto.log", dir);
    const char *av[] = { prog, "-H", "127.0.0.1", "-p", port, NULL };
    s->pid = spawn(av, s->log);
    if (!server_wait(s))
        cr_skip_test("moto_server did not start on 127.0.0.1:%d: S3 test skipped", s->port);
    mk_bucket(s, "bkt");
}

static void
s3rver_start(server *s, const char *dir)
{
    memset(s, 0, sizeof *s);
    char prog[4096];
    const char *env = getenv("EDB_S3RVER");
    if (env != NULL && access(env, X_OK) == 0)
        snprintf(prog, sizeof prog, "%s", env);
    else if (!on_path("s3rver", prog, sizeof prog))
        cr_skip_test("s3rver is not installed (npm install -g s3rver@3.7.1, see scripts/deps.sh): "
                     "S3 test skipped");
    s->port = free_port();
    char port[16], data[512];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(data, sizeof data, "%s/s3rver", dir);
    mkdir(data, 0700);
    snprintf(s->log, sizeof s->log, "%s/s3rver.log", dir);
    const char *av[] = { prog, "-d", data, "-a", "127.0.0.1", "-p", port, "--silent",
                         "--configure-bucket", "bkt", NULL };
    s->pid = spawn(av, s->log);
    if (!server_wait(s))
        cr_skip_test("s3rver did not start on 127.0.0.1:%d: S3 test skipped", s->port);
}

static void
misbehave_start(server *s, const char *dir, const char *mode)
{
    memset(s, 0, sizeof *s);
    char prog[4096], script[4096], portfile[512], out[512];
    if (!on_path("python3", prog, sizeof prog))
        cr_skip_test("python3 is not installed: S3 test skipped");
    snprintf(script, sizeof script, "%s/tests/tools/s3_misbehave.py", srcdir());
    snprintf(portfile, sizeof portfile, "%s/port", dir);
    snprintf(s->log, sizeof s->log, "%s/requests.log", dir);
    snprintf(out, sizeof out, "%s/misbehave.out", dir);
    const char *av[] = { prog, script, mode, portfile, s->log, NULL };
    s->pid = spawn(av, out);
    for (int i = 0; i < 400 && s->port == 0; i++) {
        FILE *f = fopen(portfile, "r");
        if (f != NULL) {
            if (fscanf(f, "%d", &s->port) != 1)
                s->port = 0;
            fclose(f);
        }
        if (s->port == 0)
            sleep_ms(50);
    }
    if (s->port == 0 || !server_wait(s)) {
        server_stop(s);
        cr_skip_test("the test server %s did not start: S3 test skipped", script);
    }
}

/* How many lines of the server's request log contain @what. */
static int
log_count(const server *s, const char *what)
{
    FILE *f = fopen(s->log, "r");
    if (f == NULL)
        return 0;
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL)
        n += strstr(line, what) != NULL;
    fclose(f);
    return n;
}

static void
creds(bool token)
{
    setenv("AWS_ACCESS_KEY_ID", KEY_ID, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    if (token)
        setenv("AWS_SESSION_TOKEN", TOKEN, 1);
    else
        unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    setenv("HOME", "/nonexistent", 1);
}

static void
no_secrets(const run_result *r)
{
    const char *bad[] = { SECRET, TOKEN, KEY_ID };
    for (size_t i = 0; i < 3; i++) {
        cr_assert_null(strstr(r->out, bad[i]), "a credential in the output: %s", r->out);
        cr_assert_null(strstr(r->err, bad[i]), "a credential in the errors: %s", r->err);
    }
}

struct fx {
    char *dir;
    char db[300];
    char url[64];
    server srv;
};

static void
fx_init(struct fx *f, unsigned rows)
{
    char *in = dbt_rows_json(0, rows, 60);
    f->dir = dbt_make_db(f->db, sizeof f->db, SCHEMA, "t", in);
    free(in);
    snprintf(f->url, sizeof f->url, "s3://bkt/prod/db1");
    creds(false);
}

static void
fx_fini(struct fx *f)
{
    server_stop(&f->srv);
    rm_tree(f->dir);
    free(f->dir);
}

static void
add_rows(struct fx *f, unsigned first, unsigned n)
{
    char *in = dbt_rows_json(first, n, 60);
    run_result r = dbt_runv(in, "import", f->db, "t", "-", NULL);
    free(in);
    dbt_expect_ok(&r, "import");
    run_free(&r);
}

static long
count_rows(const char *db)
{
    run_result r = dbt_runv(NULL, "count", db, "t", NULL);
    dbt_expect_ok(&r, "count");
    long n = atol(r.out);
    run_free(&r);
    return n;
}

/* dbtool with the endpoint options of f's server appended. */
static run_result
s3run(struct fx *f, const char *const *args)
{
    const char *av[40];
    int n = 0;
    for (; args[n] != NULL; n++)
        av[n] = args[n];
    av[n++] = "--s3-endpoint";
    av[n++] = f->srv.endpoint;
    av[n++] = "--s3-path-style";
    av[n] = NULL;
    return dbt_run(NULL, av);
}

/* The keys of the bucket under the prefix, as moto or s3rver lists them. */
static char *
bucket_keys(struct fx *f, const char *query)
{
    char cmd[1400], path[512];
    snprintf(path, sizeof path, "%s/keys.xml", f->dir);
    snprintf(cmd, sizeof cmd, "curl -sf '%s/bkt?%s' > %s", f->srv.endpoint, query, path);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* ---- the round trip ---- */

static void
round_trip(struct fx *f, bool merge_and_prune)
{
    const char *b1[] = { "backup", f->db, "--repo", f->url, NULL };
    run_result r = s3run(f, b1);
    dbt_expect_ok(&r, "full backup to the bucket");
    cr_assert(strstr(r.out, "000001-full.edbk") != NULL, "%s", r.out);
    no_secrets(&r);
    run_free(&r);
    long rows1 = count_rows(f->db);
    sleep_ms(1100);                     /* t1 (whole seconds) after the first backup */
    char t1[64];
    {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(t1, sizeof t1, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    sleep_ms(1100);
    add_rows(f, 1000, 50);
    r = s3run(f, b1);
    dbt_expect_ok(&r, "incremental backup to the bucket");
    cr_assert(strstr(r.out, "000002-incr.edbk") != NULL, "%s", r.out);
    run_free(&r);
    r = s3run(f, b1);                   /* nothing changed: nothing written */
    dbt_expect_ok(&r, "unchanged backup");
    cr_assert(strstr(r.out, "no page changed") != NULL, "%s", r.out);
    run_free(&r);
    add_rows(f, 2000, 50);
    r = s3run(f, b1);
    dbt_expect_ok(&r, "second incremental");
    run_free(&r);
    long rows3 = count_rows(f->db);

    const char *ls[] = { "repo", "list", f->url, "--json", NULL };
    r = s3run(f, ls);
    dbt_expect_ok(&r, "repo list");
    cr_assert_eq(count_lines(r.out), 3, "%s", r.out);
    cr_assert(strstr(r.out, "\"kind\":\"incremental\"") != NULL, "%s", r.out);
    run_free(&r);

    /* The same layout as a directory: the catalog and the archives, and a
     * manifest beside each archive. */
    char *keys = bucket_keys(f, "list-type=2&prefix=prod/db1/");
    cr_assert(strstr(keys, "<Key>prod/db1/catalog.json</Key>") != NULL, "%s", keys);
    cr_assert(strstr(keys, "<Key>prod/db1/000001-full.edbk</Key>") != NULL, "%s", keys);
    cr_assert(strstr(keys, "<Key>prod/db1/000002-incr.edbk.manifest</Key>") != NULL, "%s", keys);

    /* Point in time: the newest, then the one taken before t1. */
    char tgt[400];
    snprintf(tgt, sizeof tgt, "%s/r-now", f->dir);
    const char *rs[] = { "restore", tgt, "--repo", f->url, NULL };
    r = s3run(f, rs);
    dbt_expect_ok(&r, "restore the newest from the bucket");
    cr_assert(strstr(r.out, "3 archives") != NULL, "%s", r.out);
    run_free(&r);
    cr_assert_eq(count_rows(tgt), rows3);
    snprintf(tgt, sizeof tgt, "%s/r-t1", f->dir);
    const char *rs1[] = { "restore", tgt, "--repo", f->url, "--at", t1, NULL };
    r = s3run(f, rs1);
    dbt_expect_ok(&r, "restore --at from the bucket");
    run_free(&r);
    cr_assert_eq(count_rows(tgt), rows1);
    /* No download left behind beside the target. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -a %s | grep -q edb-s3", f->dir);
    cr_assert_neq(system(cmd), 0, "a temporary download directory was left in %s", f->dir);

    /* info and verify of archives in the bucket. */
    char a1[128], a2[128];
    snprintf(a1, sizeof a1, "%s/000001-full.edbk", f->url);
    snprintf(a2, sizeof a2, "%s/000002-incr.edbk", f->url);
    const char *inf[] = { "info", a2, "--json", NULL };
    r = s3run(f, inf);
    dbt_expect_ok(&r, "info of an archive in the bucket");
    cr_assert(strstr(r.out, "\"kind\":\"incremental\"") != NULL, "%s", r.out);
    run_free(&r);
    const char *ver[] = { "verify", a1, a2, NULL };
    r = s3run(f, ver);
    dbt_expect_ok(&r, "verify of a chain in the bucket");
    run_free(&r);

    if (!merge_and_prune)
        return;
    const char *mg[] = { "repo", "merge", f->url, "--max-chain", "1", NULL };
    r = s3run(f, mg);
    dbt_expect_ok(&r, "repo merge in the bucket");
    cr_assert(strstr(r.out, "merged 3 archives into 000004-merged.edbk") != NULL, "%s", r.out);
    run_free(&r);
    keys = bucket_keys(f, "list-type=2&prefix=prod/db1/");
    cr_assert_null(strstr(keys, "000001-full.edbk"), "merged archives were left: %s", keys);
    cr_assert(strstr(keys, "000004-merged.edbk.manifest") != NULL, "%s", keys);
    add_rows(f, 3000, 10);
    r = s3run(f, b1);
    dbt_expect_ok(&r, "incremental on the merged archive");
    cr_assert(strstr(r.out, "000005-incr.edbk") != NULL, "%s", r.out);
    run_free(&r);
    const char *full[] = { "backup", f->db, "--repo", f->url, "--full-every", "1", NULL };
    add_rows(f, 4000, 10);
    r = s3run(f, full);
    dbt_expect_ok(&r, "full backup");
    cr_assert(strstr(r.out, "000006-full.edbk") != NULL, "%s", r.out);
    run_free(&r);
    const char *pr[] = { "repo", "prune", f->url, "--keep-last", "1", NULL };
    r = s3run(f, pr);
    dbt_expect_ok(&r, "repo prune in the bucket");
    cr_assert(strstr(r.out, "removed 2 archives") != NULL, "%s", r.out);
    run_free(&r);
    keys = bucket_keys(f, "list-type=2&prefix=prod/db1/");
    cr_assert_null(strstr(keys, "000004-merged"), "pruned objects were left: %s", keys);
    cr_assert_null(strstr(keys, "000005-incr"), "pruned objects were left: %s", keys);
    cr_assert(strstr(keys, "000006-full.edbk") != NULL, "%s", keys);
    snprintf(tgt, sizeof tgt, "%s/r-last", f->dir);
    const char *rs2[] = { "restore", tgt, "--repo", f->url, NULL };
    r = s3run(f, rs2);
    dbt_expect_ok(&r, "restore after prune");
    run_free(&r);
    cr_assert_eq(count_rows(tgt), count_rows(f->db));
}

Test(s3, moto_backup_restore_merge_prune, .timeout = 120)
{
    struct fx f;
    fx_init(&f, 300);
    moto_start(&f.srv, f.dir);
    round_trip(&f, true);
    fx_fini(&f);
}

Test(s3, s3rver_signed_round_trip, .timeout = 120)
{
    struct fx f;
    fx_init(&f, 300);
    s3rver_start(&f.srv, f.dir);
    setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    round_trip(&f, false);
    /* s3rver checks the key: an unknown one is refused with 403 and named. */
    setenv("AWS_ACCESS_KEY_ID", "NOSUCHKEY", 1);
    const char *ls[] = { "repo", "list", f.url, NULL };
    run_result r = s3run(&f, ls);
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "HTTP 403") != NULL, "%s", r.err);
    run_free(&r);
    fx_fini(&f);
}

/* An archive of several parts (--s3-part-size 5M, S3's minimum, which moto
 * enforces for every part but the last): uploaded while the copier runs,
 * completed in order, restored equal. */
Test(s3, moto_multipart_archive, .timeout = 120)
{
    struct fx f;
    unsigned rows = 12000;
    char *in = malloc((size_t)rows * 1100 + 1), *q = in;
    cr_assert_not_null(in);
    for (unsigned i = 0; i < rows; i++) {
        q += sprintf(q, "{\"v\": \"");
        for (unsigned k = 0; k < 1000; k++)
            *q++ = (char)('a' + (i * 31u + k * 7u) % 26u);
        q += sprintf(q, "\"}\n");
    }
    *q = '\0';
    f.dir = dbt_make_db(f.db, sizeof f.db, SCHEMA, "t", in);
    free(in);
    snprintf(f.url, sizeof f.url, "s3://bkt/big");
    creds(false);
    moto_start(&f.srv, f.dir);
    const char *b[] = { "backup", f.db, "--repo", f.url, "--s3-part-size", "5M", "--json", NULL };
    run_result r = s3run(&f, b);
    dbt_expect_ok(&r, "backup of several parts");
    const char *bp = strstr(r.out, "\"bytes\":");
    cr_assert_not_null(bp, "%s", r.out);
    unsigned long long bytes = strtoull(bp + 8, NULL, 10), part = 5u << 20;
    unsigned long long nparts = (bytes + part - 1) / part;
    run_free(&r);
    cr_assert_geq(nparts, 3, "the archive (%llu bytes) should need 3 parts or more", bytes);
    char pn[64];
    snprintf(pn, sizeof pn, "partNumber=%llu&", nparts);
    cr_assert_eq(log_count(&f.srv, pn), 1, "part %llu of %llu bytes was not sent once", nparts, bytes);
    snprintf(pn, sizeof pn, "partNumber=%llu&", nparts + 1);
    cr_assert_eq(log_count(&f.srv, pn), 0, "more parts than the archive needs");
    char tgt[400];
    snprintf(tgt, sizeof tgt, "%s/r", f.dir);
    const char *rs[] = { "restore", tgt, "--repo", f.url, NULL };
    r = s3run(&f, rs);
    dbt_expect_ok(&r, "restore of a multipart archive");
    run_free(&r);
    cr_assert_eq(count_rows(tgt), (long)rows);
    const char *ve[] = { "verify", "s3://bkt/big/000001-full.edbk", "--deep", NULL };
    r = s3run(&f, ve);
    dbt_expect_ok(&r, "verify --deep of a multipart archive");
    run_free(&r);
    fx_fini(&f);
}

/* A bucket that does not exist is an error, not an empty repository. */
Test(s3, missing_bucket_is_an_error, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 10);
    moto_start(&f.srv, f.dir);
    const char *ls[] = { "repo", "list", "s3://nosuchbucket/x", NULL };
    run_result r = s3run(&f, ls);
    cr_assert_neq(r.status, 0, "listing a missing bucket succeeded: %s", r.out);
    cr_assert(strstr(r.err, "NoSuchBucket") != NULL, "%s", r.err);
    run_free(&r);
    fx_fini(&f);
}

Test(s3, moto_continuous_until_sigterm, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 200);
    moto_start(&f.srv, f.dir);
    const char *top = getenv("top_builddir");
    char bin[4096], out[512];
    snprintf(bin, sizeof bin, "%s/dbtool", top ? top : ".");
    snprintf(out, sizeof out, "%s/cont.out", f.dir);
    const char *av[] = { bin, "backup", f.db, "--repo", f.url, "--every", "1", "--s3-endpoint", f.srv.endpoint,
                         "--s3-path-style", NULL };
    pid_t pid = spawn(av, out);
    sleep_ms(1500);
    add_rows(&f, 1000, 20);
    sleep_ms(1500);
    kill(pid, SIGTERM);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "continuous mode ended with status %d", st);
    const char *ls[] = { "repo", "list", f.url, "--json", NULL };
    run_result r = s3run(&f, ls);
    dbt_expect_ok(&r, "repo list");
    cr_assert_eq(count_lines(r.out), 2, "a full and an incremental expected: %s", r.out);
    run_free(&r);
    fx_fini(&f);
}

/* An upload interrupted by SIGTERM is aborted: no object, no multipart
 * upload left in the bucket, the catalog unchanged. */
Test(s3, moto_interrupted_upload_leaves_nothing, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 3000);
    moto_start(&f.srv, f.dir);
    const char *top = getenv("top_builddir");
    char bin[4096], out[512];
    snprintf(bin, sizeof bin, "%s/dbtool", top ? top : ".");
    snprintf(out, sizeof out, "%s/bk.out", f.dir);
    /* --rate-limit keeps the copier (and so the upload) going for seconds. */
    const char *av[] = { bin, "backup", f.db, "--repo", f.url, "--rate-limit", "100K", "--s3-endpoint",
                         f.srv.endpoint, "--s3-path-style", NULL };
    pid_t pid = spawn(av, out);
    for (int i = 0; i < 200 && log_count(&f.srv, ".edbk?uploads ") == 0; i++)
        sleep_ms(50);
    cr_assert_gt(log_count(&f.srv, ".edbk?uploads "), 0, "the upload never started");
    sleep_ms(300);
    kill(pid, SIGTERM);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "an interrupted backup must fail");
    cr_assert_gt(log_count(&f.srv, "DELETE /bkt/prod/db1/000001-full.edbk?uploadId="), 0,
                 "no AbortMultipartUpload was sent");
    char *keys = bucket_keys(&f, "list-type=2&prefix=prod/db1/");
    cr_assert_null(strstr(keys, "<Key>"), "objects left: %s", keys);
    keys = bucket_keys(&f, "uploads");
    cr_assert_null(strstr(keys, "<Upload>"), "a multipart upload was left: %s", keys);
    fx_fini(&f);
}

/* SIGKILL cannot abort: the upload stays in progress, and the next command
 * that changes the repository aborts it. */
Test(s3, moto_upload_left_by_sigkill_is_aborted_next_time, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 3000);
    moto_start(&f.srv, f.dir);
    const char *top = getenv("top_builddir");
    char bin[4096], out[512];
    snprintf(bin, sizeof bin, "%s/dbtool", top ? top : ".");
    snprintf(out, sizeof out, "%s/bk.out", f.dir);
    const char *av[] = { bin, "backup", f.db, "--repo", f.url, "--rate-limit", "100K", "--s3-endpoint",
                         f.srv.endpoint, "--s3-path-style", NULL };
    pid_t pid = spawn(av, out);
    for (int i = 0; i < 200 && log_count(&f.srv, ".edbk?uploads ") == 0; i++)
        sleep_ms(50);
    cr_assert_gt(log_count(&f.srv, ".edbk?uploads "), 0, "the upload never started");
    kill(-pid, SIGKILL);        /* dbtool and its copier child */
    waitpid(pid, NULL, 0);
    char *keys = bucket_keys(&f, "uploads");
    cr_assert(strstr(keys, "<Upload>") != NULL, "the killed upload should still be in progress: %s", keys);
    const char *pr[] = { "repo", "prune", f.url, "--keep-last", "1", NULL };
    run_result r = s3run(&f, pr);
    dbt_expect_ok(&r, "repo prune");
    run_free(&r);
    keys = bucket_keys(&f, "uploads");
    cr_assert_null(strstr(keys, "<Upload>"), "the killed upload was not aborted: %s", keys);
    fx_fini(&f);
}

/* A copier that fails (no such database) completes no upload: nothing in the
 * bucket, no multipart upload left, the copier's own message shown. */
Test(s3, moto_failed_copier_leaves_nothing, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 10);
    moto_start(&f.srv, f.dir);
    char nodb[400];
    snprintf(nodb, sizeof nodb, "%s/nodb", f.dir);
    const char *b[] = { "backup", nodb, "--repo", f.url, NULL };
    run_result r = s3run(&f, b);
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "no database") != NULL, "%s", r.err);
    run_free(&r);
    char *keys = bucket_keys(&f, "list-type=2&prefix=prod/db1/");
    cr_assert_null(strstr(keys, "<Key>"), "objects left: %s", keys);
    keys = bucket_keys(&f, "uploads");
    cr_assert_null(strstr(keys, "<Upload>"), "a multipart upload was left: %s", keys);
    fx_fini(&f);
}

/* ---- a misbehaving endpoint ---- */

static run_result
bad_backup(struct fx *f, const char *timeout)
{
    const char *av[] = { "backup", f->db, "--repo", f->url, "--s3-timeout", timeout, NULL };
    return s3run(f, av);
}

Test(s3, stalled_server_fails_within_timeout, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 100);
    misbehave_start(&f.srv, f.dir, "stall");
    double t0 = now_s();
    run_result r = bad_backup(&f, "2");
    double dt = now_s() - t0;
    cr_assert_neq(r.status, 0, "a stalled upload must fail");
    cr_assert(strstr(r.err, "--s3-timeout") != NULL, "the error must name the timeout: %s", r.err);
    cr_assert_lt(dt, 2 + 2 * slow(), "took %.1f s with --s3-timeout 2", dt);
    cr_assert_eq(log_count(&f.srv, "part-start"), 1, "a timeout must not be retried");
    cr_assert_gt(log_count(&f.srv, "DELETE /bkt/prod/db1/000001-full.edbk?uploadId="), 0, "no abort sent");
    no_secrets(&r);
    run_free(&r);
    fx_fini(&f);
}

Test(s3, dripping_server_fails_within_timeout, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 100);
    misbehave_start(&f.srv, f.dir, "drip");
    double t0 = now_s();
    run_result r = bad_backup(&f, "2");
    double dt = now_s() - t0;
    cr_assert_neq(r.status, 0, "a dripping answer must fail");
    cr_assert(strstr(r.err, "1 KiB/s") != NULL, "%s", r.err);
    cr_assert_lt(dt, 2 + 2 * slow(), "took %.1f s with --s3-timeout 2", dt);
    run_free(&r);
    fx_fini(&f);
}

Test(s3, reset_mid_part_is_retried_then_fails, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 100);
    misbehave_start(&f.srv, f.dir, "reset");
    run_result r = bad_backup(&f, "5");
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "tried 5 times") != NULL, "%s", r.err);
    cr_assert_eq(log_count(&f.srv, "part-start"), 5, "a reset is retried (5 tries in all)");
    run_free(&r);
    fx_fini(&f);
}

Test(s3, server_error_500_is_retried, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 100);
    misbehave_start(&f.srv, f.dir, "500");
    run_result r = bad_backup(&f, "5");
    dbt_expect_ok(&r, "backup through one 500");
    run_free(&r);
    cr_assert_eq(log_count(&f.srv, "part-start"), 2, "500 then 200: two tries");
    cr_assert_gt(log_count(&f.srv, "PUT /bkt/prod/db1/catalog.json"), 0, "no catalog written");
    fx_fini(&f);
}

Test(s3, forbidden_403_is_not_retried, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 100);
    creds(true);
    misbehave_start(&f.srv, f.dir, "403");
    run_result r = bad_backup(&f, "5");
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "HTTP 403") != NULL && strstr(r.err, "AccessDenied") != NULL, "%s", r.err);
    cr_assert_eq(log_count(&f.srv, "part-start"), 1, "a 4xx is never retried");
    cr_assert_eq(log_count(&f.srv, "catalog.json"), 1, "only the catalog read: nothing was catalogued");
    no_secrets(&r);
    run_free(&r);
    fx_fini(&f);
}

/* SIGTERM while a part is in flight to a server that never answers (and a
 * 60 s timeout): dbtool ends at once, also when the abort itself is never
 * answered (@mode "stallall"). */
static void
sigterm_in_flight(const char *mode)
{
    struct fx f;
    fx_init(&f, 100);
    creds(true);
    misbehave_start(&f.srv, f.dir, mode);
    const char *top = getenv("top_builddir");
    char bin[4096], out[512];
    snprintf(bin, sizeof bin, "%s/dbtool", top ? top : ".");
    snprintf(out, sizeof out, "%s/bk.out", f.dir);
    const char *av[] = { bin, "backup", f.db, "--repo", f.url, "--s3-endpoint", f.srv.endpoint,
                         "--s3-path-style", NULL };
    pid_t pid = spawn(av, out);
    for (int i = 0; i < 400 && log_count(&f.srv, "part-start") == 0; i++)
        sleep_ms(25);
    cr_assert_eq(log_count(&f.srv, "part-start"), 1, "no part was sent");
    sleep_ms(200);
    double t0 = now_s();
    kill(pid, SIGTERM);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    double dt = now_s() - t0;
    cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "a stopped backup must fail");
    cr_assert_lt(dt, 1.0 * slow(), "SIGTERM to exit took %.3f s", dt);
    cr_log_info("SIGTERM to exit with a part in flight: %.3f s", dt);
    FILE *fp = fopen(out, "r");
    cr_assert_not_null(fp);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    text[n] = '\0';
    fclose(fp);
    cr_assert(strstr(text, "stopped by signal") != NULL, "%s", text);
    cr_assert_null(strstr(text, SECRET));
    cr_assert_null(strstr(text, TOKEN));
    fx_fini(&f);
}

Test(s3, sigterm_with_part_in_flight_exits_at_once, .timeout = 60)
{
    sigterm_in_flight("stall");
}

Test(s3, sigterm_exits_at_once_when_the_abort_stalls_too, .timeout = 60)
{
    sigterm_in_flight("stallall");
}

Test(s3, credentials_never_in_output, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 50);
    creds(true);
    misbehave_start(&f.srv, f.dir, "ok");
    run_result r = bad_backup(&f, "5");
    dbt_expect_ok(&r, "backup");
    no_secrets(&r);
    run_free(&r);
    const char *ls[] = { "repo", "list", f.url, "--json", NULL };
    r = s3run(&f, ls);
    no_secrets(&r);
    run_free(&r);
    /* An endpoint that refuses connections: the error names the request only. */
    server_stop(&f.srv);
    r = bad_backup(&f, "1");
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "catalog.json") != NULL, "%s", r.err);
    no_secrets(&r);
    run_free(&r);
    /* Without any credential: a clear message. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    r = s3run(&f, ls);
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "no S3 credentials") != NULL, "%s", r.err);
    run_free(&r);
    fx_fini(&f);
}

/* ~/.aws/credentials is read when the variables are absent. */
Test(s3, credentials_file, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 50);
    misbehave_start(&f.srv, f.dir, "ok");
    char home[400], p[500];
    snprintf(home, sizeof home, "%s/home", f.dir);
    snprintf(p, sizeof p, "%s/.aws", home);
    mkdir(home, 0700);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/.aws/credentials", home);
    char text[512];
    snprintf(text, sizeof text, "[other]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n"
             "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", KEY_ID, SECRET);
    write_file(p, text);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("HOME", home, 1);
    run_result r = bad_backup(&f, "5");
    dbt_expect_ok(&r, "backup with ~/.aws/credentials");
    no_secrets(&r);
    run_free(&r);
    fx_fini(&f);
}

/* libcurl is not mapped at start-up (tests/tools/test_lazylibs.c) but loaded
 * with dlopen by the first s3:// store, and the command works: glibc's
 * LD_DEBUG=files says how each object was mapped. */
Test(s3, s3rver_command_loads_libcurl_on_first_use, .timeout = 120)
{
    struct fx f;
    fx_init(&f, 50);
    s3rver_start(&f.srv, f.dir);
    setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    const char *b[] = { "backup", f.db, "--repo", f.url, NULL };
    setenv("LD_DEBUG", "files", 1);
    run_result r = s3run(&f, b);
    unsetenv("LD_DEBUG");
    dbt_expect_ok(&r, "backup to s3rver");
    cr_assert(strstr(r.out, "000001-full.edbk") != NULL, "%s", r.out);
    const char *m = strstr(r.err, "file=libcurl.so.4");
    cr_assert_not_null(m, "libcurl was not mapped: %s", r.err);
    const char *eol = strchr(m, '\n');
    const char *how = strstr(m, "dynamically loaded by");
    cr_assert(how != NULL && (eol == NULL || how < eol), "libcurl was not dlopen'd: %.200s", m);
    run_free(&r);
    const char *ls[] = { "repo", "list", f.url, "--json", NULL };
    r = s3run(&f, ls);
    dbt_expect_ok(&r, "repo list on s3rver");
    cr_assert_eq(count_lines(r.out), 1, "%s", r.out);
    run_free(&r);
    fx_fini(&f);
}

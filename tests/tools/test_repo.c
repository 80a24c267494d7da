/* Backup repositories driven as an operator would: backup --repo (chains,
 * --full-every, unchanged databases), repo list/prune/merge, restore --repo
 * at a time or a transaction, the lock, continuous mode ended by SIGTERM and
 * killed with SIGKILL, and the restore drill: continuous mode against a
 * writer with pruning and merging as it goes, then point-in-time restores
 * each compared with the database as it was at that snapshot. */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dbtool_run.h"

static const char *const SCHEMA = DBT_SCHEMA_ID_TEXT;

/* EDB_TEST_SCALE (percent) shrinks the drill; EDB_TEST_SLOW stretches time limits. */
static unsigned
scale_pct(void)
{
    const char *e = getenv("EDB_TEST_SCALE");
    int v = e ? atoi(e) : 100;
    return v > 0 && v <= 100 ? (unsigned)v : 100;
}

struct fx {
    char *dir;
    char db[300];
    char repo[400];
    char p[400];
    unsigned next_row;
};


static void
fx_init(struct fx *f, unsigned rows)
{
    char *in = dbt_rows_json(0, rows, 80);
    f->dir = dbt_make_db(f->db, sizeof f->db, SCHEMA, "t", in);
    free(in);
    f->next_row = rows;
    snprintf(f->repo, sizeof f->repo, "%s/repo", f->dir);
}

static void
fx_fini(struct fx *f)
{
    rm_tree(f->dir);
    free(f->dir);
}

/* One import (one transaction) of @rows rows. */
static void
add_rows(struct fx *f, unsigned rows)
{
    char *in = dbt_rows_json(f->next_row, rows, 80);
    f->next_row += rows;
    run_result r = dbt_runv(in, "import", f->db, "t", "-", NULL);
    free(in);
    dbt_expect_ok(&r, "import");
    run_free(&r);
}

static bool
member(char *out, size_t cap, const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (p == NULL)
        return false;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    const char *e = p;
    if (*p == '"') {
        p++;
        e = strchr(p, '"');
    } else {
        while (*e && *e != ',' && *e != '}')
            e++;
    }
    if (e == NULL || (size_t)(e - p) >= cap)
        return false;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return true;
}

static uint64_t
member_u64(const char *line, const char *key)
{
    char v[64];
    cr_assert(member(v, sizeof v, line, key), "%s missing: %s", key, line);
    return strtoull(v, NULL, 10);
}

/* The lines of @s as an array (modified in place). */
static size_t
split_lines(char *s, char **lines, size_t cap)
{
    size_t n = 0;
    for (char *p = strtok(s, "\n"); p && n < cap; p = strtok(NULL, "\n"))
        lines[n++] = p;
    return n;
}

static uint64_t
db_txn(const char *db)
{
    run_result r = dbt_runv(NULL, "stat", db, "--json", NULL);
    dbt_expect_ok(&r, "stat");
    uint64_t t = member_u64(r.out, "last_txn");
    run_free(&r);
    return t;
}

static char *
export_of(const char *db)
{
    run_result r = dbt_runv(NULL, "export", db, "t", NULL);
    dbt_expect_ok(&r, "export");
    char *o = r.out;
    r.out = NULL;
    run_free(&r);
    return o;
}

static void
repo_backup(struct fx *f, const char *extra)
{
    run_result r = extra ? dbt_runv(NULL, "backup", f->db, "--repo", f->repo, extra, "2", NULL)
                         : dbt_runv(NULL, "backup", f->db, "--repo", f->repo, NULL);
    dbt_expect_ok(&r, "backup --repo");
    run_free(&r);
}

static size_t
count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), s = strlen(suffix);
        n += l >= s && strcmp(de->d_name + l - s, suffix) == 0;
    }
    closedir(d);
    return n;
}

static void
no_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        cr_assert_null(strstr(de->d_name, ".tmp."), "left behind: %s", de->d_name);
    closedir(d);
}

/* How many archives the repository's catalog lists now (0 before it has one). */
static size_t
listed_in(const char *repo)
{
    run_result r = dbt_runv(NULL, "repo", "list", repo, "--json", NULL);
    size_t n = r.status == 0 ? count_lines(r.out) : 0;
    run_free(&r);
    return n;
}

/* Every archive the catalog lists exists and verifies; returns how many. */
static size_t
check_repo(const char *repo)
{
    run_result r = dbt_runv(NULL, "repo", "list", repo, "--json", NULL);
    dbt_expect_ok(&r, "repo list");
    char *lines[512];
    size_t n = split_lines(r.out, lines, 512);
    char *args[520];
    size_t a = 0;
    args[a++] = (char *)"verify";
    char files[512][500];
    for (size_t i = 0; i < n; i++) {
        char v[256];
        cr_assert(member(v, sizeof v, lines[i], "file"), "%s", lines[i]);
        snprintf(files[i], sizeof files[i], "%s/%s", repo, v);
        args[a++] = files[i];
    }
    args[a] = NULL;
    if (n > 0) {
        run_result v = dbt_run(NULL, (const char *const *)args);
        cr_assert_eq(v.status, 0, "verify of the repository's archives: %s %s", v.out, v.err);
        run_free(&v);
    }
    run_free(&r);
    return n;
}

/* ---- chains, list ---- */

Test(repo, backups_make_chains_and_list_them, .timeout = 90)
{
    struct fx f;
    fx_init(&f, 200);
    for (int i = 0; i < 5; i++) {
        if (i)
            add_rows(&f, 30);
        repo_backup(&f, "--full-every");
    }
    /* An unchanged database: a catalog note, no archive. */
    size_t before = count_files(f.repo, ".edbk");
    run_result r = dbt_runv(NULL, "backup", f.db, "--repo", f.repo, "--full-every", "2", NULL);
    dbt_expect_ok(&r, "unchanged");
    cr_assert(strstr(r.out, "no page changed") != NULL, "%s", r.out);
    run_free(&r);
    cr_assert_eq(count_files(f.repo, ".edbk"), before);

    r = dbt_runv(NULL, "repo", "list", f.repo, "--json", NULL);
    dbt_expect_ok(&r, "repo list");
    char *lines[16];
    size_t n = split_lines(r.out, lines, 16);
    cr_assert_eq(n, 5, "%s", r.out);
    const char *kinds[] = { "full", "incremental", "full", "incremental", "full" };
    char prev_id[64] = "";
    for (size_t i = 0; i < n; i++) {
        char v[128];
        const char *keys[] = { "file", "id", "base_id", "kind", "txn", "created", "page_size", "npages",
                               "pages", "bytes", "complete", "compression" };
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            cr_assert(member(v, sizeof v, lines[i], keys[k]), "%s missing: %s", keys[k], lines[i]);
        cr_assert(member(v, sizeof v, lines[i], "kind") && strcmp(v, kinds[i]) == 0, "%zu: %s", i, lines[i]);
        cr_assert(member(v, sizeof v, lines[i], "base_id"));
        if (strcmp(kinds[i], "full") == 0)
            cr_assert_str_eq(v, "null");
        else
            cr_assert_str_eq(v, prev_id, "an incremental builds on the archive before it");
        cr_assert(member(prev_id, sizeof prev_id, lines[i], "id"));
    }
    run_free(&r);
    cr_assert_eq(check_repo(f.repo), 5);
    /* The catalog is JSON a program can read. */
    char cat[500];
    snprintf(cat, sizeof cat, "%s/catalog.json", f.repo);
    FILE *cf = fopen(cat, "r");
    cr_assert_not_null(cf);
    static char text[65536];
    size_t tn = fread(text, 1, sizeof text - 1, cf);
    text[tn] = '\0';
    fclose(cf);
    const char *chains = strstr(text, "\"chains\"");
    cr_assert_not_null(chains, "%s", text);
    /* Three chains: 1+2, 3+4, 5; each listed full archive first. */
    const char *c1 = strstr(chains, "000001-full.edbk"), *c2 = strstr(chains, "000002-incr.edbk"),
               *c5 = strstr(chains, "000005-full.edbk");
    cr_assert(c1 && c2 && c5 && c1 < c2 && c2 < c5, "%s", chains);
    /* Options that make no sense with --repo. */
    r = dbt_runv(NULL, "backup", f.db, "--repo", f.repo, "--incremental", cat, NULL);
    cr_assert_eq(r.status, 2);
    run_free(&r);
    fx_fini(&f);
}

/* ---- prune, merge ---- */

Test(repo, prune_removes_whole_chains_only, .timeout = 120)
{
    struct fx f;
    fx_init(&f, 200);
    for (int i = 0; i < 6; i++) {     /* chains: 1+2, 3+4, 5+6 */
        if (i)
            add_rows(&f, 20);
        repo_backup(&f, "--full-every");
    }
    run_result r = dbt_runv(NULL, "repo", "prune", f.repo, "--keep-last", "1", "--dry-run", NULL);
    dbt_expect_ok(&r, "prune --dry-run");
    cr_assert(strstr(r.out, "would remove 4 archives") != NULL, "%s", r.out);
    run_free(&r);
    cr_assert_eq(count_files(f.repo, ".edbk"), 6, "a dry run removes nothing");
    /* --keep-last 3 keeps archives 4..6: the chain of 4 (3+4) and of 5..6. */
    r = dbt_runv(NULL, "repo", "prune", f.repo, "--keep-last", "3", NULL);
    dbt_expect_ok(&r, "prune");
    cr_assert(strstr(r.out, "removed: 000001-full.edbk") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "removed: 000002-incr.edbk") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "000003") == NULL, "a chain a kept backup needs stays: %s", r.out);
    run_free(&r);
    cr_assert_eq(count_files(f.repo, ".edbk"), 4);
    cr_assert_eq(check_repo(f.repo), 4);
    /* --keep-daily: all were taken today: the newest, hence its chain. */
    r = dbt_runv(NULL, "repo", "prune", f.repo, "--keep-last", "1", "--keep-daily", "7", "--keep-weekly", "4", NULL);
    dbt_expect_ok(&r, "prune");
    run_free(&r);
    cr_assert_eq(check_repo(f.repo), 2);
    r = dbt_runv(NULL, "repo", "prune", f.repo, "--dry-run", NULL);
    cr_assert_eq(r.status, 2, "--keep-last is required");
    run_free(&r);
    fx_fini(&f);
}

Test(repo, merge_bounds_chains_and_restores_the_same, .timeout = 120)
{
    struct fx f;
    fx_init(&f, 200);
    for (int i = 0; i < 5; i++) {
        if (i)
            add_rows(&f, 20);
        repo_backup(&f, NULL);
    }
    char *want = export_of(f.db);
    run_result r = dbt_runv(NULL, "repo", "merge", f.repo, "--max-chain", "3", NULL);
    dbt_expect_ok(&r, "repo merge");
    cr_assert(strstr(r.out, "merged 5 archives") != NULL, "%s", r.out);
    run_free(&r);
    cr_assert_eq(check_repo(f.repo), 1);
    cr_assert_eq(count_files(f.repo, ".edbk"), 1);
    /* The next backup builds on the merged archive. */
    add_rows(&f, 10);
    repo_backup(&f, NULL);
    cr_assert_eq(check_repo(f.repo), 2);
    char *want2 = export_of(f.db);
    snprintf(f.p, sizeof f.p, "%s/restored", f.dir);
    r = dbt_runv(NULL, "restore", f.p, "--repo", f.repo, NULL);
    dbt_expect_ok(&r, "restore --repo");
    run_free(&r);
    char *got = export_of(f.p);
    cr_assert_str_eq(got, want2);
    free(got);
    free(want);
    free(want2);
    fx_fini(&f);
}

/* ---- point in time ---- */

Test(repo, restore_at_a_time_or_a_transaction, .timeout = 120)
{
    struct fx f;
    fx_init(&f, 100);
    char *state[4];
    uint64_t txn[4];
    for (int i = 0; i < 4; i++) {
        if (i)
            add_rows(&f, 25);
        state[i] = export_of(f.db);
        txn[i] = db_txn(f.db);
        repo_backup(&f, NULL);
        usleep(20000);
    }
    run_result r = dbt_runv(NULL, "repo", "list", f.repo, "--json", NULL);
    dbt_expect_ok(&r, "list");
    char *lines[8];
    cr_assert_eq(split_lines(r.out, lines, 8), 4);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(member_u64(lines[i], "txn"), txn[i]);
        char created[64], target[500], tx[32];
        cr_assert(member(created, sizeof created, lines[i], "created"));
        /* --at the backup's own time picks it. */
        snprintf(target, sizeof target, "%s/at%d", f.dir, i);
        run_result x = dbt_runv(NULL, "restore", target, "--repo", f.repo, "--at", created, "--json", NULL);
        dbt_expect_ok(&x, "restore --at");
        cr_assert_eq(member_u64(x.out, "txn"), txn[i], "%s", x.out);
        cr_assert_eq(member_u64(x.out, "archives"), (uint64_t)i + 1);
        run_free(&x);
        char *got = export_of(target);
        cr_assert_str_eq(got, state[i], "restored at %s", created);
        free(got);
        /* --txn picks it too. */
        snprintf(target, sizeof target, "%s/txn%d", f.dir, i);
        snprintf(tx, sizeof tx, "%llu", (unsigned long long)txn[i]);
        x = dbt_runv(NULL, "restore", target, "--repo", f.repo, "--txn", tx, NULL);
        dbt_expect_ok(&x, "restore --txn");
        run_free(&x);
        got = export_of(target);
        cr_assert_str_eq(got, state[i]);
        free(got);
    }
    /* A time between backups 2 and 3, written with another zone: backup 2. */
    char c2[64];
    cr_assert(member(c2, sizeof c2, lines[1], "created"));
    /* 2026-..T..:..:..ssssssZ -> the same instant + 1 µs, as +00:00 */
    char between[80];
    snprintf(between, sizeof between, "%.26s", c2);
    int last = between[25] - '0';
    between[25] = (char)('0' + (last + 1) % 10);
    if (last == 9)
        snprintf(between, sizeof between, "%.26s", c2);    /* rare: the exact time also picks 2 */
    strcat(between, "+00:00");
    snprintf(f.p, sizeof f.p, "%s/between", f.dir);
    run_result x = dbt_runv(NULL, "restore", f.p, "--repo", f.repo, "--at", between, "--json", NULL);
    dbt_expect_ok(&x, "restore --at between");
    cr_assert_eq(member_u64(x.out, "txn"), txn[1], "%s: %s", between, x.out);
    run_free(&x);
    /* A local time without a zone is refused; a time before the first backup finds none. */
    snprintf(f.p, sizeof f.p, "%s/refused", f.dir);
    x = dbt_runv(NULL, "restore", f.p, "--repo", f.repo, "--at", "2026-12-07T15:04:05", NULL);
    cr_assert_eq(x.status, 2);
    cr_assert(strstr(x.err, "zone") != NULL, "%s", x.err);
    run_free(&x);
    x = dbt_runv(NULL, "restore", f.p, "--repo", f.repo, "--at", "2001-01-01T00:00:00Z", NULL);
    cr_assert_eq(x.status, 1);
    cr_assert(strstr(x.err, "EDB_NOTFOUND") != NULL, "%s", x.err);
    run_free(&x);
    x = dbt_runv(NULL, "restore", f.p, "--repo", f.repo, "--txn", "999999", NULL);
    cr_assert_eq(x.status, 1);
    cr_assert(strstr(x.err, "EDB_NOTFOUND") != NULL, "%s", x.err);
    run_free(&x);
    struct stat st;
    cr_assert_neq(stat(f.p, &st), 0, "a refused restore writes nothing");
    run_free(&r);
    for (int i = 0; i < 4; i++)
        free(state[i]);
    fx_fini(&f);
}

/* ---- the lock ---- */

Test(repo, a_second_writer_is_refused, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 50);
    repo_backup(&f, NULL);
    char lock[500];
    snprintf(lock, sizeof lock, "%s/lock", f.repo);
    int fd = open(lock, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
    const char *const cmds[][8] = {
        { "backup", f.db, "--repo", f.repo, NULL },
        { "repo", "prune", f.repo, "--keep-last", "1", NULL },
        { "repo", "merge", f.repo, "--max-chain", "1", NULL },
    };
    for (size_t i = 0; i < 3; i++) {
        run_result r = dbt_run(NULL, cmds[i]);
        cr_assert_eq(r.status, 1, "%zu", i);
        cr_assert(strstr(r.err, "EDB_BUSY") != NULL, "%zu: %s", i, r.err);
        run_free(&r);
    }
    /* Readers need no lock. */
    run_result r = dbt_runv(NULL, "repo", "list", f.repo, "--json", NULL);
    dbt_expect_ok(&r, "list while locked");
    run_free(&r);
    close(fd);
    repo_backup(&f, NULL);
    fx_fini(&f);
}

/* ---- continuous mode ---- */

static pid_t
spawn_tool(const char *const *argv, const char *out_path)
{
    const char *top = getenv("top_builddir");
    char bin[512];
    snprintf(bin, sizeof bin, "%s/dbtool", top ? top : ".");
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        for (int k = 3; k < 1024; k++)
            close(k);
        setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        const char *av[24] = { "dbtool" };
        int i = 0;
        for (; argv[i] && i < 22; i++)
            av[i + 1] = argv[i];
        av[i + 1] = NULL;
        execv(bin, (char *const *)av);
        _exit(127);
    }
    return pid;
}

static int
wait_exit(pid_t pid, unsigned max_s)
{
    for (unsigned i = 0; i < max_s * 20; i++) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_fail("dbtool did not exit within %u s", max_s);
    return -1;
}

Test(repo, continuous_mode_ends_cleanly_on_sigterm, .timeout = 120)
{
    struct fx f;
    fx_init(&f, 300);
    char log[500];
    snprintf(log, sizeof log, "%s/cont.log", f.dir);
    const char *argv[] = { "backup", f.db, "--repo", f.repo, "--every", "1", "--rate-limit", "200K", NULL };
    pid_t pid = spawn_tool(argv, log);
    for (int i = 0; i < 6; i++) {
        usleep(400000);
        add_rows(&f, 20);
    }
    /* Stop it, most likely in the middle of a (rate-limited) backup. */
    kill(pid, SIGTERM);
    int st = wait_exit(pid, 20);
    size_t n;
    FILE *lf = fopen(log, "r");
    char text[8192] = "";
    n = fread(text, 1, sizeof text - 1, lf);
    text[n] = '\0';
    fclose(lf);
    cr_assert_eq(st, 0, "exit %d: %s", st, text);
    cr_assert(strstr(text, "stopped by signal 15") != NULL, "%s", text);
    no_leftovers(f.repo);
    size_t listed = check_repo(f.repo);
    cr_assert_geq(listed, 2, "%s", text);
    cr_assert_eq(count_files(f.repo, ".edbk"), listed, "no archive outside the catalog");
    fx_fini(&f);
}

Test(repo, sigkill_leaves_a_valid_repository, .timeout = 180)
{
    struct fx f;
    fx_init(&f, 300);
    char log[500];
    snprintf(log, sizeof log, "%s/cont.log", f.dir);
    unsigned rounds = scale_pct() < 50 ? 3 : 8;
    srand((unsigned)getpid());
    for (unsigned k = 0; k < rounds; k++) {
        const char *argv[] = { "backup", f.db, "--repo", f.repo, "--every", "1", "--max-chain", "2",
                               "--keep-last", "3", "--rate-limit", "400K", NULL };
        pid_t pid = spawn_tool(argv, log);
        add_rows(&f, 20);
        usleep((useconds_t)(200000 + rand() % 1300000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        /* The catalog lists only complete archives, whatever the moment. */
        check_repo(f.repo);
    }
    /* The next run cleans what the kills left and goes on. */
    repo_backup(&f, NULL);
    no_leftovers(f.repo);
    size_t listed = check_repo(f.repo);
    cr_assert_eq(count_files(f.repo, ".edbk"), listed, "leftover archives were removed");
    char *want = export_of(f.db);
    snprintf(f.p, sizeof f.p, "%s/restored", f.dir);
    run_result r = dbt_runv(NULL, "restore", f.p, "--repo", f.repo, NULL);
    dbt_expect_ok(&r, "restore after kills");
    run_free(&r);
    char *got = export_of(f.p);
    cr_assert_str_eq(got, want);
    free(got);
    free(want);
    fx_fini(&f);
}

/* ---- the restore drill ---- */

Test(repo, restore_drill, .timeout = 300)
{
    struct fx f;
    fx_init(&f, 300);
    char log[500];
    snprintf(log, sizeof log, "%s/cont.log", f.dir);
    unsigned secs = 30 * scale_pct() / 100;
    if (secs < 4)
        secs = 4;
    const char *argv[] = { "backup", f.db, "--repo", f.repo, "--every", "1", "--full-every", "6",
                           "--max-chain", "4", "--keep-last", "12", "--json", NULL };
    pid_t pid = spawn_tool(argv, log);
    /* The writer: one import (one transaction) at a time; after each, the
     * transaction and the number of rows, so the state at any snapshot is
     * known (rows are appended in a fixed order). */
    uint64_t txns[4096];
    unsigned rows[4096];
    size_t nstates = 0;
    txns[nstates] = db_txn(f.db);
    rows[nstates++] = f.next_row;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        add_rows(&f, 5);
        if (nstates < 4096) {
            txns[nstates] = db_txn(f.db);
            rows[nstates++] = f.next_row;
        }
        usleep(100000);
        clock_gettime(CLOCK_MONOTONIC, &t);
        /* At least the time asked for and two archives listed: under load
         * (valgrind, a busy CI machine) a few seconds may hold only one. */
    } while ((t.tv_sec - t0.tv_sec < (time_t)secs || listed_in(f.repo) < 2) &&
             t.tv_sec - t0.tv_sec < (time_t)secs + 90);
    kill(pid, SIGINT);
    int st = wait_exit(pid, 30);
    cr_assert_eq(st, 0);
    no_leftovers(f.repo);
    /* One archive is a legal end: the SIGINT may come just after --max-chain
     * merged the whole first chain (its full archive included) into one. */
    size_t listed = check_repo(f.repo);
    cr_assert_geq(listed, 1);

    char *full = export_of(f.db);
    run_result r = dbt_runv(NULL, "repo", "list", f.repo, "--json", NULL);
    dbt_expect_ok(&r, "list");
    char *lines[512];
    size_t n = split_lines(r.out, lines, 512);
    /* Several points: every listed backup (up to 8), restored by its time. */
    size_t step = n > 8 ? n / 8 : 1, checked = 0;
    for (size_t i = 0; i < n; i += step) {
        char created[64], target[500];
        cr_assert(member(created, sizeof created, lines[i], "created"));
        uint64_t txn = member_u64(lines[i], "txn");
        snprintf(target, sizeof target, "%s/pit%zu", f.dir, i);
        run_result x = dbt_runv(NULL, "restore", target, "--repo", f.repo, "--at", created, "--json", NULL);
        dbt_expect_ok(&x, "restore --at");
        cr_assert_eq(member_u64(x.out, "txn"), txn, "%s", x.out);
        run_free(&x);
        /* The state at that snapshot: the rows of the last import at or before it. */
        unsigned want_rows = 0;
        bool found = false;
        for (size_t s = 0; s < nstates; s++)
            if (txns[s] <= txn) {
                want_rows = rows[s];
                found = true;
            }
        cr_assert(found, "transaction %llu is before the writer started", (unsigned long long)txn);
        char *got = export_of(target);
        /* The restored rows are exactly the first want_rows rows of the database. */
        size_t lines_got = count_lines(got);
        cr_assert_eq(lines_got, want_rows, "at %s (transaction %llu)", created, (unsigned long long)txn);
        cr_assert(strncmp(full, got, strlen(got)) == 0, "the restored rows are a prefix of the database's");
        free(got);
        checked++;
    }
    cr_assert_geq(checked, 1);
    run_free(&r);
    free(full);
    fx_fini(&f);
}

/* dbtool keygen and --encrypt-key: the key file is 0600 and never
 * overwritten; a repository created with a key refuses backups without it
 * or with another one, and one created without refuses a key; restore from
 * it needs the key; the key is never printed. */
Test(repo, encrypted_repository_takes_only_its_key, .timeout = 120)
{
    struct fx f;
    fx_init(&f, 50);
    char k1[500], k2[500], bad[500], t[500], plain[500];
    snprintf(k1, sizeof k1, "%s/k1", f.dir);
    snprintf(k2, sizeof k2, "%s/k2", f.dir);
    snprintf(bad, sizeof bad, "%s/bad.key", f.dir);
    snprintf(t, sizeof t, "%s/restored", f.dir);
    snprintf(plain, sizeof plain, "%s/plainrepo", f.dir);
    run_result r = dbt_runv(NULL, "keygen", k1, NULL);
    dbt_expect_ok(&r, "keygen");
    cr_assert(strstr(r.out, "key id ") != NULL, "%s", r.out);
    run_free(&r);
    struct stat st;
    cr_assert_eq(stat(k1, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(st.st_size, 32);
    r = dbt_runv(NULL, "keygen", k1, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "EDB_EXISTS") != NULL, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "keygen", k2, NULL);
    dbt_expect_ok(&r, "keygen 2");
    run_free(&r);
    write_file(bad, "short");
    r = dbt_runv(NULL, "verify", k1, "--encrypt-key", bad, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "not a key file") != NULL, "%s", r.err);
    run_free(&r);

    r = dbt_runv(NULL, "backup", f.db, "--repo", f.repo, "--encrypt-key", k1, "--compress", "zstd", NULL);
    dbt_expect_ok(&r, "encrypted backup --repo");
    run_free(&r);
    const char *const refused[][10] = {
        { "backup", f.db, "--repo", f.repo, NULL },
        { "backup", f.db, "--repo", f.repo, "--encrypt-key", k2, NULL },
    };
    for (size_t i = 0; i < 2; i++) {
        r = dbt_run(NULL, refused[i]);
        cr_assert_eq(r.status, 1, "%zu", i);
        cr_assert(strstr(r.err, "EDB_AUTH") != NULL, "%zu: %s", i, r.err);
        run_free(&r);
    }
    add_rows(&f, 20);
    r = dbt_runv(NULL, "backup", f.db, "--repo", f.repo, "--encrypt-key", k1, NULL);
    dbt_expect_ok(&r, "second encrypted backup");
    run_free(&r);
    r = dbt_runv(NULL, "repo", "list", f.repo, "--json", NULL);
    dbt_expect_ok(&r, "list");
    cr_assert(strstr(r.out, "\"encryption\":{\"key_id\":") != NULL, "%s", r.out);
    run_free(&r);
    r = dbt_runv(NULL, "restore", t, "--repo", f.repo, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "EDB_AUTH") != NULL, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "restore", t, "--repo", f.repo, "--encrypt-key", k1, NULL);
    dbt_expect_ok(&r, "restore with the key");
    run_free(&r);
    r = dbt_runv(NULL, "backup", f.db, "--repo", plain, NULL);
    dbt_expect_ok(&r, "plain repo");
    run_free(&r);
    r = dbt_runv(NULL, "backup", f.db, "--repo", plain, "--encrypt-key", k1, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "created without --encrypt-key") != NULL, "%s", r.err);
    run_free(&r);
    fx_fini(&f);
}

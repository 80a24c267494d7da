/*
 * cmd_repo.c: backups kept in a repository directory (repo.c):
 *   dbtool backup DB --repo DIR [--full-every N] [--every SECONDS]
 *                 [--keep-last N] [--keep-daily D] [--keep-weekly W] [--max-chain K]
 *   dbtool repo list DIR [--json]
 *   dbtool repo prune DIR --keep-last N [--keep-daily D] [--keep-weekly W] [--dry-run]
 *   dbtool repo merge DIR --max-chain K
 *   dbtool restore TARGET --repo DIR [--at TIME | --txn N] [--force] [--json]
 *
 * Each backup runs in a child process (fork, then cmd_backup.c's backup as
 * for a plain 'dbtool backup'), so its signal handling, atomic file and
 * cleanup are exactly those of a single backup; the parent holds the
 * repository's lock, waits for the child and for SIGINT/SIGTERM/SIGHUP with
 * sigtimedwait (they are blocked), and only after the child succeeded
 * describes the new archive and rewrites the catalog.  A stop signal is
 * forwarded to the child, whose archive in progress is then removed; the
 * catalog is untouched.  Between backups the parent sleeps in sigtimedwait,
 * so a stop is taken at once.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "repo.h"

static uint64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static bool
parse_u64(uint64_t *out, const char *s, uint64_t min)
{
    return s != NULL && dbt_parse_count(out, s) && *out >= min;
}

/* ---- policies: prune and merge ---- */

typedef struct keep_opts {
    uint64_t last, daily, weekly;
    bool any;
} keep_opts;

/* Mark what the policy keeps, then widen to whole chains; returns how many
 * entries would go.  keep[i] true: entry i stays. */
static size_t
plan_prune(const repo *r, const keep_opts *k, bool *keep)
{
    for (size_t i = 0; i < r->n; i++)
        keep[i] = i + k->last >= r->n;          /* the last N */
    int64_t last_day = INT64_MIN, last_week = INT64_MIN;
    uint64_t days = 0, weeks = 0;
    for (size_t i = r->n; i-- > 0;) {
        int64_t day = (int64_t)(r->a[i].s.created_us / 86400000000u);
        int64_t week = (day + 3) / 7;           /* weeks from Monday 1969-12-29 */
        if (day != last_day) {
            last_day = day;
            if (days++ < k->daily)
                keep[i] = true;                 /* the newest of this day */
        }
        if (week != last_week) {
            last_week = week;
            if (weeks++ < k->weekly)
                keep[i] = true;
        }
    }
    /* Whole chains: a chain stays when any of its archives stays. */
    bool *chain_kept = calloc(r->n ? r->n : 1, sizeof *chain_kept);
    if (chain_kept == NULL)
        return 0;
    for (size_t i = 0; i < r->n; i++)
        if (keep[i])
            chain_kept[repo_chain_root(r, i)] = true;
    size_t gone = 0;
    for (size_t i = 0; i < r->n; i++) {
        keep[i] = chain_kept[repo_chain_root(r, i)];
        gone += !keep[i];
    }
    free(chain_kept);
    return gone;
}

/* Remove the entries not kept: catalog first, then the files. */
static int
apply_prune(repo *r, const bool *keep, bool dry_run, bool quiet)
{
    size_t m = 0;
    char (*gone)[256] = calloc(r->n ? r->n : 1, sizeof *gone);
    if (gone == NULL)
        return dbt_failf("repo prune", EDB_NOMEM, "out of memory");
    size_t ng = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (keep[i]) {
            if (!dry_run)
                r->a[m++] = r->a[i];
        } else {
            snprintf(gone[ng++], 256, "%s", r->a[i].file);
            if (!quiet)
                printf("%s: %s\n", dry_run ? "would remove" : "removed", r->a[i].file);
        }
    }
    if (dry_run || ng == 0) {
        free(gone);
        return DBT_OK;
    }
    r->n = m;
    int rc = repo_save(r);
    if (rc == DBT_OK) {
        for (size_t i = 0; i < ng; i++) {
            char p[4400];
            snprintf(p, sizeof p, "%s/%s", r->dir, gone[i]);
            unlink(p);
        }
    }
    free(gone);
    return rc;
}

static size_t
chain_len_at(const repo *r, size_t i)
{
    size_t len = 1;
    for (int b = repo_base_of(r, i); b >= 0 && len <= r->n; b = repo_base_of(r, (size_t)b))
        len++;
    return len;
}

/* Replace every chain longer than @k (ending at a chain's last entry) by one
 * merged full archive. */
static int
apply_merge(repo *r, uint64_t k, bool quiet)
{
    for (size_t i = 0; i < r->n; i++) {
        bool is_end = true;
        for (size_t j = i + 1; j < r->n && is_end; j++)
            if (repo_base_of(r, j) == (int)i)
                is_end = false;
        if (!is_end || chain_len_at(r, i) <= k)
            continue;
        size_t *idx = calloc(r->n, sizeof *idx);
        edb_backup_source *src = calloc(r->n, sizeof *src);
        char (*paths)[4400] = calloc(r->n, sizeof *paths);
        if (idx == NULL || src == NULL || paths == NULL) {
            free(idx), free(src), free(paths);
            return dbt_failf("repo merge", EDB_NOMEM, "out of memory");
        }
        size_t len = repo_chain_to(r, i, idx);
        for (size_t j = 0; j < len; j++) {
            repo_path(r, &r->a[idx[j]], paths[j], sizeof paths[j]);
            src[j].path = paths[j];
            src[j].fd = -1;
            src[j].key = dbt_key;
        }
        repo_entry e;
        memset(&e, 0, sizeof e);
        snprintf(e.file, sizeof e.file, "%06" PRIu64 "-merged.edbk", r->next);
        char out[4400];
        repo_path(r, &e, out, sizeof out);
        int rc = edb_backup_merge(NULL, out, src, len, 0);
        edb_backup_source o = { .path = out, .fd = -1, .name = NULL, .key = dbt_key };
        if (rc == 0)
            rc = edb_backup_describe(&e.s, &o);
        free(src);
        if (rc < 0) {
            free(idx), free(paths);
            unlink(out);
            return dbt_fail("repo merge", rc);
        }
        e.unchanged_until_us = r->a[i].unchanged_until_us;
        r->next++;
        /* The merged archive takes the place of the chain's last entry. */
        bool *drop = calloc(r->n, sizeof *drop);
        if (drop == NULL) {
            free(idx), free(paths);
            return dbt_failf("repo merge", EDB_NOMEM, "out of memory");
        }
        for (size_t j = 0; j < len; j++)
            drop[idx[j]] = true;
        size_t m = 0, pos = 0;
        for (size_t j = 0; j < r->n; j++) {
            if (j == i) {
                pos = m;
                r->a[m++] = e;
            } else if (!drop[j]) {
                r->a[m++] = r->a[j];
            }
        }
        r->n = m;
        free(drop);
        rc = repo_save(r);
        if (rc == DBT_OK) {
            for (size_t j = 0; j < len; j++)
                unlink(paths[j]);
            if (!quiet)
                printf("merged %zu archives into %s (transaction %" PRIu64 ")\n", len, e.file, e.s.txnid);
        }
        free(idx);
        free(paths);
        if (rc != DBT_OK)
            return rc;
        i = pos;
    }
    return DBT_OK;
}

/* ---- backup --repo ---- */

typedef struct rb_opts {
    const char *db, *dir;
    uint64_t full_every, every, max_chain;
    keep_opts keep;
    bool quiet, json;
    char *pass[12];             /* options handed to the backup itself (av below has room) */
    int npass;
} rb_opts;

static sigset_t stop_set;

/* Wait for @child; a stop signal meanwhile is forwarded.  *sig: the signal
 * taken, 0: none.  Returns the child's exit status (128 + signal). */
static int
wait_child(pid_t child, int *sig)
{
    sigset_t set = stop_set;
    sigaddset(&set, SIGCHLD);
    for (;;) {
        int st;
        pid_t w = waitpid(child, &st, WNOHANG);
        if (w == child)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        struct timespec ts = { 0, 200000000 };
        int s = sigtimedwait(&set, NULL, &ts);
        if (s > 0 && s != SIGCHLD && *sig == 0) {
            *sig = s;
            kill(child, SIGTERM);
        }
    }
}

/* One backup into the repository.  Returns DBT_OK, DBT_FAIL, or -signal
 * when stopped. */
static int
repo_backup_once(repo *r, const rb_opts *o)
{
    bool full = r->n == 0;
    const repo_entry *last = r->n ? &r->a[r->n - 1] : NULL;
    char base[4400] = "";
    if (last != NULL) {
        repo_path(r, last, base, sizeof base);
        struct stat st;
        if (stat(base, &st) != 0)
            full = true;
        else if (o->full_every && chain_len_at(r, r->n - 1) >= o->full_every)
            full = true;
    }
    repo_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.file, sizeof e.file, "%06" PRIu64 "-%s.edbk", r->next, full ? "full" : "incr");
    char path[4400];
    repo_path(r, &e, path, sizeof path);
    const char *av[24];
    int ac = 0;
    av[ac++] = "backup";
    av[ac++] = o->db;
    av[ac++] = path;
    av[ac++] = "--quiet";
    if (!full) {
        av[ac++] = "--incremental";
        av[ac++] = base;
    }
    for (int i = 0; i < o->npass; i++)
        av[ac++] = o->pass[i];
    av[ac] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    if (child < 0)
        return dbt_failf("backup --repo", EDB_IO, "fork: %s", strerror(errno));
    if (child == 0) {
        close(r->lock_fd);         /* the lock stays the parent's alone */
        int rc = dbt_cmd_backup(ac, (char **)av);
        fflush(stdout);
        _exit(rc);
    }
    int sig = 0;
    int st = wait_child(child, &sig);
    if (sig != 0)
        return -sig;
    if (st != 0)
        return DBT_FAIL;           /* the child said why */
    edb_backup_source src = { .path = path, .fd = -1, .name = NULL };
    int rc = edb_backup_describe(&e.s, &src);
    if (rc < 0 || !e.s.complete) {
        unlink(path);
        return rc < 0 ? dbt_fail("backup --repo", rc)
                      : dbt_failf("backup --repo", EDB_CORRUPT, "%s", e.s.problem);
    }
    bool unchanged = !full && e.s.pages == 0 && last != NULL && e.s.txnid == last->s.txnid &&
                     e.s.npages == last->s.npages;
    if (unchanged) {
        r->a[r->n - 1].unchanged_until_us = e.s.created_us;
    } else {
        r->next++;
        if (repo_append(r, &e) != DBT_OK) {
            unlink(path);
            return DBT_FAIL;
        }
    }
    if (repo_save(r) != DBT_OK) {
        if (!unchanged) {
            r->n--;
            unlink(path);
        }
        return DBT_FAIL;
    }
    if (unchanged)
        unlink(path);              /* after the catalog: a kill between leaves a leftover, cleaned later */
    char when[48];
    jv_datetime_format(when, sizeof when, (int64_t)e.s.created_us);
    if (o->json) {
        jv_buf b = { 0 };
        char tmp[128];
        jv_buf_adds(&b, "{\"file\":");
        if (unchanged)
            jv_buf_adds(&b, "null");
        else
            jv_write_json_string(&b, e.file, strlen(e.file));
        jv_buf_adds(&b, ",");
        dbt_summary_members(&b, &e.s);
        snprintf(tmp, sizeof tmp, ",\"unchanged\":%s,\"chain_length\":%zu}\n", unchanged ? "true" : "false",
                 chain_len_at(r, r->n - 1));
        jv_buf_adds(&b, tmp);
        fwrite(b.p, 1, b.len, stdout);
        jv_buf_free(&b);
    } else if (!o->quiet) {
        if (unchanged)
            printf("%s: no page changed since %s (transaction %" PRIu64 "); nothing written\n", when,
                   r->a[r->n - 1].file, e.s.txnid);
        else
            printf("%s: %s %s, transaction %" PRIu64 ", %" PRIu64 " pages of %" PRIu64 ", %" PRIu64
                   " bytes, chain of %zu\n", when, e.file, full ? "full" : "incremental", e.s.txnid,
                   e.s.pages, e.s.npages, e.s.bytes, chain_len_at(r, r->n - 1));
    }
    fflush(stdout);
    if (o->max_chain && apply_merge(r, o->max_chain, o->quiet || o->json) != DBT_OK)
        return DBT_FAIL;
    if (o->keep.any) {
        bool *keep = calloc(r->n, sizeof *keep);
        if (keep == NULL)
            return dbt_failf("backup --repo", EDB_NOMEM, "out of memory");
        plan_prune(r, &o->keep, keep);
        int prc = apply_prune(r, keep, false, o->quiet || o->json);
        free(keep);
        if (prc != DBT_OK)
            return DBT_FAIL;
    }
    fflush(stdout);
    return DBT_OK;
}

static int
parse_keep(keep_opts *k, const char *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    uint64_t *dst = strcmp(a, "--keep-last") == 0 ? &k->last
                  : strcmp(a, "--keep-daily") == 0 ? &k->daily
                  : strcmp(a, "--keep-weekly") == 0 ? &k->weekly : NULL;
    if (dst == NULL)
        return 1;
    if (++*i >= argc || !parse_u64(dst, argv[*i], strcmp(a, "--keep-last") == 0 ? 1 : 0))
        return dbt_usage(cmd, "%s needs a count%s", a, strcmp(a, "--keep-last") == 0 ? " of at least 1" : "");
    k->any = true;
    return 0;
}

static int
repo_backup(int argc, char **argv)
{
    const char *cmd = "backup";
    rb_opts o;
    memset(&o, 0, sizeof o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int kr = parse_keep(&o.keep, cmd, argc, argv, &i);
        if (kr == 0)
            continue;
        if (kr != 1)
            return kr;
        if (strcmp(a, "--repo") == 0) {
            if (++i >= argc)
                return dbt_usage(cmd, "--repo needs a directory");
            o.dir = argv[i];
        } else if (strcmp(a, "--full-every") == 0) {
            if (++i >= argc || !parse_u64(&o.full_every, argv[i], 1))
                return dbt_usage(cmd, "--full-every needs a count of at least 1");
        } else if (strcmp(a, "--every") == 0) {
            if (++i >= argc || !parse_u64(&o.every, argv[i], 1))
                return dbt_usage(cmd, "--every needs a number of seconds, at least 1");
        } else if (strcmp(a, "--max-chain") == 0) {
            if (++i >= argc || !parse_u64(&o.max_chain, argv[i], 1))
                return dbt_usage(cmd, "--max-chain needs a count of at least 1");
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            o.quiet = true;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (o.npass + 2 > (int)(sizeof o.pass / sizeof o.pass[0]) &&
                   (strcmp(a, "--low-pin") == 0 || strcmp(a, "--keep-free") == 0 ||
                    strcmp(a, "--rate-limit") == 0 || strcmp(a, "--compress") == 0 ||
                    strcmp(a, "--threads") == 0)) {
            return dbt_usage(cmd, "too many backup options ('%s')", a);
        } else if (strcmp(a, "--low-pin") == 0 || strcmp(a, "--keep-free") == 0) {
            o.pass[o.npass++] = argv[i];
        } else if (strcmp(a, "--rate-limit") == 0 || strcmp(a, "--compress") == 0 ||
                   strcmp(a, "--threads") == 0) {
            if (i + 1 >= argc)
                return dbt_usage(cmd, "%s needs a value", a);
            o.pass[o.npass++] = argv[i];
            o.pass[o.npass++] = argv[++i];
        } else if (strcmp(a, "--incremental") == 0 || strcmp(a, "--overwrite") == 0 ||
                   strcmp(a, "--manifest") == 0) {
            return dbt_usage(cmd, "%s cannot be used with --repo (the repository chooses the "
                             "archive and its base)", a);
        } else if (a[0] == '-') {
            return dbt_usage(cmd, "unknown option '%s'", a);
        } else if (o.db == NULL) {
            o.db = a;
        } else {
            return dbt_usage(cmd, "with --repo, give only DB ('%s' is one argument too many)", a);
        }
    }
    if (o.db == NULL || o.dir == NULL)
        return dbt_usage(cmd, "expected DB and --repo DIR");

    /* Signals: taken with sigtimedwait, never by a handler. */
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGHUP);
    sigset_t all = stop_set;
    sigaddset(&all, SIGCHLD);
    sigaddset(&all, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &all, NULL);

    repo r;
    if (repo_open(&r, o.dir, true, true) != DBT_OK)
        return DBT_FAIL;
    /* A repository created with a key takes only backups with that key
     * (its catalog records the key's id); one created without takes none. */
    char kid[33] = "";
    if (dbt_key != NULL)
        dbt_key_id_hex(kid, dbt_key);
    if (r.key_id[0] != '\0' && strcmp(r.key_id, kid) != 0) {
        repo_close(&r);
        return dbt_failf(cmd, EDB_AUTH, "repository '%s' was created with --encrypt-key (key id %s): "
                         "%s", o.dir, r.key_id, kid[0] ? "this is another key" :
                         "its backups must be encrypted with that key");
    }
    if (r.key_id[0] == '\0' && kid[0] != '\0') {
        if (r.n > 0) {
            repo_close(&r);
            return dbt_failf(cmd, EDB_INVAL, "repository '%s' was created without --encrypt-key; "
                             "start a new repository for encrypted backups", o.dir);
        }
        snprintf(r.key_id, sizeof r.key_id, "%s", kid);
    }
    int ret = DBT_OK;
    uint64_t count = 0;
    for (;;) {
        uint64_t start = now_us();
        int rc = repo_backup_once(&r, &o);
        count++;
        if (rc < 0) {
            if (!o.quiet)
                fprintf(stderr, "dbtool: backup --repo: stopped by signal %d (%s); the backup in progress "
                        "was abandoned, the catalog lists %zu archive%s\n", -rc, strsignal(-rc), r.n,
                        r.n == 1 ? "" : "s");
            ret = o.every ? DBT_OK : DBT_FAIL;
            break;
        }
        if (rc != DBT_OK)
            ret = DBT_FAIL;
        if (!o.every)
            break;
        /* Sleep until the next start; a stop signal ends at once. */
        uint64_t next = start + o.every * 1000000u, now = now_us();
        int sig = 0;
        if (next > now) {
            uint64_t left = next - now;
            struct timespec ts = { (time_t)(left / 1000000u), (long)(left % 1000000u) * 1000 };
            sig = sigtimedwait(&stop_set, NULL, &ts);
        } else {
            struct timespec zero = { 0, 0 };
            sig = sigtimedwait(&stop_set, NULL, &zero);
        }
        if (sig > 0) {
            if (!o.quiet)
                fprintf(stderr, "dbtool: backup --repo: stopped by signal %d (%s) after %" PRIu64
                        " backup%s; the catalog lists %zu archive%s\n", sig, strsignal(sig), count,
                        count == 1 ? "" : "s", r.n, r.n == 1 ? "" : "s");
            ret = DBT_OK;
            break;
        }
        if (rc != DBT_OK)
            ret = DBT_OK;          /* continuous: a failed backup is retried next time */
    }
    repo_close(&r);
    return ret;
}

int
dbt_cmd_backup_any(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--repo") == 0)
            return repo_backup(argc, argv);
    return dbt_cmd_backup(argc, argv);
}

/* ---- repo list / prune / merge ---- */

static void
human(char *out, size_t n, double bytes)
{
    const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int i = 0;
    while (bytes >= 1024 && i < 4) {
        bytes /= 1024;
        i++;
    }
    snprintf(out, n, i ? "%.1f %s" : "%.0f %s", bytes, u[i]);
}

static int
repo_list(int argc, char **argv)
{
    const char *cmd = "repo";
    const char *dir = NULL;
    bool json = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] == '-')
            return dbt_usage(cmd, "unknown option '%s'", argv[i]);
        else if (dir == NULL)
            dir = argv[i];
        else
            return dbt_usage(cmd, "too many arguments ('%s')", argv[i]);
    }
    if (dir == NULL)
        return dbt_usage(cmd, "repo list needs DIR");
    repo r;
    if (repo_open(&r, dir, false, false) != DBT_OK)
        return DBT_FAIL;
    bool as_json = dbt_output_format(json) == DBT_FMT_JSON;
    uint64_t total = 0;
    for (size_t i = 0; i < r.n; i++) {
        const repo_entry *e = &r.a[i];
        total += e->s.bytes;
        if (as_json) {
            json_t *o = repo_entry_json(e);
            char *t = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            if (t)
                printf("%s\n", t);
            free(t);
            json_decref(o);
            continue;
        }
        char when[48], h[32], kind[64];
        jv_datetime_format(when, sizeof when, (int64_t)e->s.created_us);
        when[19] = 'Z', when[20] = '\0';
        human(h, sizeof h, (double)e->s.bytes);
        dbt_kind(kind, sizeof kind, e->s.flags);
        bool starts = repo_base_of(&r, i) < 0;
        printf("%s %-22s %-20s %s  transaction %-8" PRIu64 " %10s\n", starts ? "*" : " ", e->file, kind,
               when, e->s.txnid, h);
    }
    if (!as_json) {
        char h[32];
        human(h, sizeof h, (double)total);
        printf("%zu archive%s, %s (* starts a chain)\n", r.n, r.n == 1 ? "" : "s", h);
    }
    repo_close(&r);
    return fflush(stdout) == 0 ? DBT_OK : DBT_FAIL;
}

static int
repo_prune(int argc, char **argv)
{
    const char *cmd = "repo";
    const char *dir = NULL;
    keep_opts k;
    memset(&k, 0, sizeof k);
    bool dry = false;
    for (int i = 2; i < argc; i++) {
        int kr = parse_keep(&k, cmd, argc, argv, &i);
        if (kr == 0)
            continue;
        if (kr != 1)
            return kr;
        if (strcmp(argv[i], "--dry-run") == 0 || strcmp(argv[i], "-n") == 0)
            dry = true;
        else if (argv[i][0] == '-')
            return dbt_usage(cmd, "unknown option '%s'", argv[i]);
        else if (dir == NULL)
            dir = argv[i];
        else
            return dbt_usage(cmd, "too many arguments ('%s')", argv[i]);
    }
    if (dir == NULL || k.last == 0)
        return dbt_usage(cmd, "repo prune needs DIR and --keep-last N (N >= 1)");
    repo r;
    if (repo_open(&r, dir, false, true) != DBT_OK)
        return DBT_FAIL;
    bool *keep = calloc(r.n ? r.n : 1, sizeof *keep);
    int ret = DBT_FAIL;
    if (keep == NULL) {
        dbt_failf("repo prune", EDB_NOMEM, "out of memory");
    } else {
        size_t gone = plan_prune(&r, &k, keep);
        ret = apply_prune(&r, keep, dry, false);
        if (ret == DBT_OK)
            printf("%s %zu archive%s; %zu kept\n", dry ? "would remove" : "removed", gone,
                   gone == 1 ? "" : "s", r.n - (dry ? gone : 0));
    }
    free(keep);
    repo_close(&r);
    return ret;
}

static int
repo_merge(int argc, char **argv)
{
    const char *cmd = "repo";
    const char *dir = NULL;
    uint64_t k = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--max-chain") == 0) {
            if (++i >= argc || !parse_u64(&k, argv[i], 1))
                return dbt_usage(cmd, "--max-chain needs a count of at least 1");
        } else if (argv[i][0] == '-') {
            return dbt_usage(cmd, "unknown option '%s'", argv[i]);
        } else if (dir == NULL) {
            dir = argv[i];
        } else {
            return dbt_usage(cmd, "too many arguments ('%s')", argv[i]);
        }
    }
    if (dir == NULL || k == 0)
        return dbt_usage(cmd, "repo merge needs DIR and --max-chain K");
    repo r;
    if (repo_open(&r, dir, false, true) != DBT_OK)
        return DBT_FAIL;
    int ret = apply_merge(&r, k, false);
    repo_close(&r);
    return ret == DBT_OK && fflush(stdout) == 0 ? DBT_OK : DBT_FAIL;
}

int
dbt_cmd_repo(int argc, char **argv)
{
    if (argc < 2)
        return dbt_usage("repo", "expected list, prune or merge");
    if (strcmp(argv[1], "list") == 0)
        return repo_list(argc, argv);
    if (strcmp(argv[1], "prune") == 0)
        return repo_prune(argc, argv);
    if (strcmp(argv[1], "merge") == 0)
        return repo_merge(argc, argv);
    return dbt_usage("repo", "unknown subcommand '%s' (list, prune or merge)", argv[1]);
}

/* ---- restore --repo ---- */

/* ISO 8601 with a zone: a local time without one is refused. */
static int
parse_at(int64_t *out, const char *s)
{
    const char *t = strpbrk(s, "Tt ");
    if (t == NULL || strpbrk(t, "Zz+-") == NULL)
        return dbt_usage("restore", "--at '%s': give a time with its zone, e.g. 2026-12-07T15:04:05Z "
                         "or 2026-12-07T16:04:05+01:00 (a local time without a zone is ambiguous)", s);
    if (jv_datetime_parse(out, s) != 0)
        return dbt_usage("restore", "--at '%s' is not an ISO 8601 time", s);
    return DBT_OK;
}

static int
restore_repo(int argc, char **argv)
{
    const char *cmd = "restore";
    const char *target = NULL, *dir = NULL, *at = NULL;
    uint64_t txn = 0;
    bool by_txn = false, json = false;
    unsigned flags = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--repo") == 0) {
            if (++i >= argc)
                return dbt_usage(cmd, "--repo needs a directory");
            dir = argv[i];
        } else if (strcmp(a, "--at") == 0) {
            if (++i >= argc)
                return dbt_usage(cmd, "--at needs a time (ISO 8601 with its zone)");
            at = argv[i];
        } else if (strcmp(a, "--txn") == 0) {
            if (++i >= argc || !dbt_parse_count(&txn, argv[i]))
                return dbt_usage(cmd, "--txn needs a transaction number");
            by_txn = true;
        } else if (strcmp(a, "--force") == 0 || strcmp(a, "-f") == 0) {
            flags |= EDB_RESTORE_FORCE;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (a[0] == '-') {
            return dbt_usage(cmd, "unknown option '%s'", a);
        } else if (target == NULL) {
            target = a;
        } else {
            return dbt_usage(cmd, "with --repo, give only TARGET_DIR ('%s' is one argument too many)", a);
        }
    }
    if (target == NULL || dir == NULL)
        return dbt_usage(cmd, "expected TARGET_DIR and --repo DIR");
    if (at != NULL && by_txn)
        return dbt_usage(cmd, "--at and --txn cannot be combined");
    int64_t at_us = 0;
    if (at != NULL && parse_at(&at_us, at) != DBT_OK)
        return DBT_USAGE;
    char what[4200];
    snprintf(what, sizeof what, "restore '%s'", target);
    int ret = DBT_FAIL;
    /* A repository being pruned or merged meanwhile may remove a file
     * between reading the catalog and opening it: read it again once. */
    for (int attempt = 0; attempt < 2; attempt++) {
        repo r;
        if (repo_open(&r, dir, false, false) != DBT_OK)
            return DBT_FAIL;
        long pick = -1;
        for (size_t i = r.n; i-- > 0 && pick < 0;) {
            if (by_txn ? r.a[i].s.txnid == txn
                       : at == NULL || (int64_t)r.a[i].s.created_us <= at_us)
                pick = (long)i;
        }
        if (pick < 0) {
            size_t held = r.n;
            repo_close(&r);
            if (held == 0)
                return dbt_failf(what, EDB_NOTFOUND, "the repository '%s' holds no backup", dir);
            if (by_txn)
                return dbt_failf(what, EDB_NOTFOUND, "no backup in '%s' has snapshot transaction %" PRIu64,
                                 dir, txn);
            return dbt_failf(what, EDB_NOTFOUND, "no backup in '%s' was taken at or before %s", dir, at);
        }
        size_t *idx = calloc(r.n, sizeof *idx);
        edb_backup_source *src = calloc(r.n, sizeof *src);
        char (*paths)[4400] = calloc(r.n, sizeof *paths);
        if (idx == NULL || src == NULL || paths == NULL) {
            free(idx), free(src), free(paths);
            repo_close(&r);
            return dbt_failf(what, EDB_NOMEM, "out of memory");
        }
        size_t len = repo_chain_to(&r, (size_t)pick, idx);
        for (size_t j = 0; j < len; j++) {
            repo_path(&r, &r.a[idx[j]], paths[j], sizeof paths[j]);
            src[j].path = paths[j];
            src[j].fd = -1;
            src[j].key = dbt_key;
        }
        edb_backup_info info;
        int rc = edb_backup_restore(&info, target, src, len, flags);
        char picked[256];
        snprintf(picked, sizeof picked, "%s", r.a[pick].file);
        free(idx), free(src), free(paths);
        repo_close(&r);
        if (rc == EDB_NOTFOUND && attempt == 0)
            continue;
        if (rc < 0)
            return dbt_fail(what, rc);
        if (json) {
            ret = dbt_restore_json(target, &info);
        } else {
            printf("restored '%s' from %s (%zu archive%s): transaction %" PRIu64 ", %" PRIu64
                   " pages of %u bytes\n", target, picked, info.archives, info.archives == 1 ? "" : "s",
                   info.txnid, info.npages, info.page_size);
            ret = fflush(stdout) == 0 ? DBT_OK : DBT_FAIL;
        }
        break;
    }
    return ret;
}

int
dbt_cmd_restore_any(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--repo") == 0)
            return restore_repo(argc, argv);
    return dbt_cmd_restore(argc, argv);
}

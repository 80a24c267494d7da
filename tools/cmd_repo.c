/*
 * cmd_repo.c: backups kept in a repository directory (repo.c):
 *   dbtool backup DB --repo DIR [--full-every N] [--every SECONDS]
 *                 [--keep-last N] [--keep-daily D] [--keep-weekly W] [--max-chain K]
 *   dbtool repo list DIR [--json]
 *   dbtool repo prune DIR --keep-last N [--keep-daily D] [--keep-weekly W] [--dry-run]
 *   dbtool repo merge DIR --max-chain K
 *   dbtool restore TARGET --repo DIR [--at TIME | --txn N] [--force] [--json]
 * DIR may be s3://BUCKET/PREFIX (store.c), with --s3-endpoint, --s3-region,
 * --s3-path-style, --s3-timeout, --s3-part-size.
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
 *
 * In a bucket, the child writes the archive to a pipe ("backup DB -
 * --manifest TMP/new.manifest"), and the parent uploads the pipe part by
 * part (store_put_stream: multipart, no temporary copy of the archive); the
 * upload is completed only after the child exited 0, else aborted.  Then the
 * manifest object, then the catalog.  The base of an incremental is the
 * manifest object of the last archive, downloaded to TMP.  Merge and restore
 * download the chain's archives into a temporary directory (.edb-s3-XXXXXX,
 * beside the target for restore, in $TMPDIR for merge) removed afterwards.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
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

#define TMP_PREFIX ".edb-s3-"

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
        for (size_t i = 0; i < ng; i++)
            repo_remove_files(r, gone[i]);
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

static const char *
tmp_parent(void)
{
    const char *t = getenv("TMPDIR");
    return t != NULL && t[0] != '\0' ? t : "/tmp";
}

/* The local files of chain @idx[0..len) into paths[]: a directory's own
 * files, or a bucket's objects downloaded into a new temporary directory
 * under @parent (tmp[], *tmpfd; remove with dbt_tmpdir_remove). */
static int
chain_files(repo *r, const size_t *idx, size_t len, char (*paths)[4400], const char *parent, char *tmp,
            size_t tmpcap, int *tmpfd, const char *what)
{
    tmp[0] = '\0';
    *tmpfd = -1;
    if (store_dir(r->st) != NULL) {
        for (size_t j = 0; j < len; j++)
            repo_path(r, &r->a[idx[j]], paths[j], sizeof paths[j]);
        return DBT_OK;
    }
    dbt_tmpdir_sweep(parent, TMP_PREFIX, 0);
    if (dbt_tmpdir_make(tmp, tmpcap, tmpfd, parent, TMP_PREFIX) != 0)
        return dbt_failf(what, EDB_IO, "making a temporary directory in '%s': %s", parent, strerror(errno));
    for (size_t j = 0; j < len; j++) {
        snprintf(paths[j], sizeof paths[j], "%s/%s", tmp, r->a[idx[j]].file);
        int fd = open(paths[j], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        char err[1024];
        int rc = fd < 0 ? EDB_IO : store_get(r->st, r->a[idx[j]].file, fd, 0, 0, err, sizeof err);
        if (fd < 0)
            snprintf(err, sizeof err, "creating '%s': %s", paths[j], strerror(errno));
        if (fd >= 0 && close(fd) != 0 && rc == 0)
            rc = EDB_IO, snprintf(err, sizeof err, "writing '%s': %s", paths[j], strerror(errno));
        if (rc != 0) {
            dbt_tmpdir_remove(tmp, *tmpfd);
            tmp[0] = '\0';
            *tmpfd = -1;
            return dbt_failf(what, rc, "downloading '%s' from '%s': %s", r->a[idx[j]].file, r->dir, err);
        }
    }
    return DBT_OK;
}

/* Upload local file @path as object @name and its manifest (bucket only). */
static int
upload_with_manifest(repo *r, const char *name, const char *path, const char *mpath, const char *what)
{
    char err[1024], mname[300];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dbt_failf(what, EDB_IO, "opening '%s': %s", path, strerror(errno));
    uint64_t bytes;
    int rc = store_put_stream(r->st, name, fd, NULL, NULL, &bytes, err, sizeof err);
    close(fd);
    if (rc != 0)
        return dbt_failf(what, rc, "uploading '%s' to '%s': %s", name, r->dir, err);
    char *m = NULL;
    size_t mlen = 0;
    FILE *f = fopen(mpath, "re");
    if (f != NULL) {
        struct stat st;
        if (fstat(fileno(f), &st) == 0 && (m = malloc((size_t)st.st_size + 1)) != NULL)
            mlen = fread(m, 1, (size_t)st.st_size, f);
        fclose(f);
    }
    if (m == NULL) {
        repo_remove_files(r, name);
        return dbt_failf(what, EDB_IO, "reading the manifest '%s'", mpath);
    }
    repo_manifest_name(mname, sizeof mname, name);
    rc = store_put(r->st, mname, m, mlen, err, sizeof err);
    free(m);
    if (rc != 0) {
        repo_remove_files(r, name);
        return dbt_failf(what, rc, "uploading '%s' to '%s': %s", mname, r->dir, err);
    }
    return DBT_OK;
}

/* Replace every chain longer than @k (ending at a chain's last entry) by one
 * merged full archive. */
static int
apply_merge(repo *r, uint64_t k, bool quiet)
{
    bool bucket = store_dir(r->st) == NULL;
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
        char (*names)[256] = calloc(r->n, sizeof *names);
        if (idx == NULL || src == NULL || paths == NULL || names == NULL) {
            free(idx), free(src), free(paths), free(names);
            return dbt_failf("repo merge", EDB_NOMEM, "out of memory");
        }
        size_t len = repo_chain_to(r, i, idx);
        char tmp[4200];
        int tmpfd = -1;
        if (chain_files(r, idx, len, paths, tmp_parent(), tmp, sizeof tmp, &tmpfd, "repo merge") != DBT_OK) {
            free(idx), free(src), free(paths), free(names);
            return DBT_FAIL;
        }
        for (size_t j = 0; j < len; j++) {
            src[j].path = paths[j];
            src[j].fd = -1;
            snprintf(names[j], sizeof names[j], "%s", r->a[idx[j]].file);
            src[j].key = dbt_key;
        }
        repo_entry e;
        memset(&e, 0, sizeof e);
        snprintf(e.file, sizeof e.file, "%06" PRIu64 "-merged.edbk", r->next);
        char out[4600], mout[4700];
        if (bucket)
            snprintf(out, sizeof out, "%s/%s", tmp, e.file);
        else
            repo_path(r, &e, out, sizeof out);
        snprintf(mout, sizeof mout, "%s.manifest", out);
        int rc = edb_backup_merge(NULL, out, src, len, 0);
        edb_backup_source o = { .path = out, .fd = -1, .name = NULL, .key = dbt_key };
        if (rc == 0)
            rc = edb_backup_describe(&e.s, &o);
        if (rc == 0 && bucket)
            rc = edb_backup_manifest_write(&o, mout, 0);
        free(src);
        if (rc < 0) {
            free(idx), free(paths), free(names);
            unlink(out);
            if (bucket)
                dbt_tmpdir_remove(tmp, tmpfd);
            return dbt_fail("repo merge", rc);
        }
        if (bucket && upload_with_manifest(r, e.file, out, mout, "repo merge") != DBT_OK) {
            free(idx), free(paths), free(names);
            dbt_tmpdir_remove(tmp, tmpfd);
            return DBT_FAIL;
        }
        if (bucket)
            dbt_tmpdir_remove(tmp, tmpfd);
        e.unchanged_until_us = r->a[i].unchanged_until_us;
        r->next++;
        /* The merged archive takes the place of the chain's last entry. */
        bool *drop = calloc(r->n, sizeof *drop);
        if (drop == NULL) {
            free(idx), free(paths), free(names);
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
                repo_remove_files(r, names[j]);
            if (!quiet)
                printf("merged %zu archives into %s (transaction %" PRIu64 ")\n", len, e.file, e.s.txnid);
        }
        free(idx);
        free(paths);
        free(names);
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
    store_opts so;
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

/* ---- backup into a bucket ---- */

typedef struct up_ctx {
    pid_t child;
    bool reaped;
    int status;                 /* the child's exit status once reaped */
    int sig;                    /* the stop signal taken, 0: none */
} up_ctx;

/* store_cancel_fn: a pending stop signal cancels the upload (and stops the
 * child, whose archive is then incomplete anyway). */
static bool
up_cancel(void *arg)
{
    up_ctx *u = arg;
    if (u->sig == 0) {
        struct timespec zero = { 0, 0 };
        int s = sigtimedwait(&stop_set, NULL, &zero);
        if (s > 0) {
            u->sig = s;
            if (!u->reaped)
                kill(u->child, SIGTERM);
        }
    }
    return u->sig != 0;
}

/* store_commit_fn: the stream ended; the archive is complete only when the
 * child says so. */
static int
up_commit(void *arg)
{
    up_ctx *u = arg;
    if (!u->reaped) {
        u->status = wait_child(u->child, &u->sig);
        u->reaped = true;
    }
    if (u->sig != 0)
        return EDB_CANCELED;
    return u->status == 0 ? 0 : EDB_IO;
}

/* Read a small local file into memory. */
static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return NULL;
    struct stat st;
    char *m = NULL;
    if (fstat(fileno(f), &st) == 0 && (m = malloc((size_t)st.st_size + 1)) != NULL)
        *len = fread(m, 1, (size_t)st.st_size, f);
    fclose(f);
    return m;
}

static int record_backup(repo *r, const rb_opts *o, repo_entry *e, bool full);

static int
bucket_backup_once(repo *r, const rb_opts *o)
{
    const char *what = "backup --repo";
    const repo_entry *last = r->n ? &r->a[r->n - 1] : NULL;
    char tmp[4200], base[4400], mfile[4400], err[1024];
    int tmpfd = -1;
    dbt_tmpdir_sweep(tmp_parent(), TMP_PREFIX, 0);
    if (dbt_tmpdir_make(tmp, sizeof tmp, &tmpfd, tmp_parent(), TMP_PREFIX) != 0)
        return dbt_failf(what, EDB_IO, "making a temporary directory in '%s': %s", tmp_parent(), strerror(errno));
    snprintf(base, sizeof base, "%s/base.manifest", tmp);
    snprintf(mfile, sizeof mfile, "%s/new.manifest", tmp);
    bool full = last == NULL || (o->full_every && chain_len_at(r, r->n - 1) >= o->full_every);
    int ret = DBT_FAIL;
    if (!full) {
        /* The base's page hashes come from its manifest object. */
        char mname[300];
        repo_manifest_name(mname, sizeof mname, last->file);
        int fd = open(base, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        int rc = fd < 0 ? EDB_IO : store_get(r->st, mname, fd, 0, 0, err, sizeof err);
        if (fd >= 0)
            close(fd);
        if (rc == EDB_NOTFOUND) {
            full = true;
        } else if (rc != 0) {
            dbt_failf(what, rc, "downloading '%s' from '%s': %s", mname, r->dir,
                      fd < 0 ? strerror(errno) : err);
            goto out;
        }
    }
    repo_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.file, sizeof e.file, "%06" PRIu64 "-%s.edbk", r->next, full ? "full" : "incr");
    const char *av[24];
    int ac = 0;
    av[ac++] = "backup";
    av[ac++] = o->db;
    av[ac++] = "-";
    av[ac++] = "--quiet";
    av[ac++] = "--manifest";
    av[ac++] = mfile;
    if (!full) {
        av[ac++] = "--incremental";
        av[ac++] = base;
    }
    for (int i = 0; i < o->npass; i++)
        av[ac++] = o->pass[i];
    av[ac] = NULL;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        dbt_failf(what, EDB_IO, "pipe: %s", strerror(errno));
        goto out;
    }
    fflush(stdout);
    fflush(stderr);
    up_ctx u = { .child = fork() };
    if (u.child < 0) {
        close(pfd[0]), close(pfd[1]);
        dbt_failf(what, EDB_IO, "fork: %s", strerror(errno));
        goto out;
    }
    if (u.child == 0) {
        if (r->lock_fd >= 0)
            close(r->lock_fd);
        close(pfd[0]);
        if (dup2(pfd[1], STDOUT_FILENO) < 0)
            _exit(DBT_FAIL);
        close(pfd[1]);
        int rc = dbt_cmd_backup(ac, (char **)av);
        _exit(rc);
    }
    close(pfd[1]);
    store_set_cancel(r->st, up_cancel, &u);
    uint64_t bytes = 0;
    int rc = store_put_stream(r->st, e.file, pfd[0], up_commit, &u, &bytes, err, sizeof err);
    close(pfd[0]);               /* a child still writing gets EPIPE */
    if (!u.reaped) {
        if (rc != 0)
            kill(u.child, SIGTERM);
        u.status = wait_child(u.child, &u.sig);
        u.reaped = true;
    }
    if (u.sig != 0) {
        store_set_cancel(r->st, NULL, NULL);
        ret = -u.sig;
        goto out;
    }
    if (rc != 0) {
        if (u.status == 0 || rc != EDB_IO || strstr(err, "refused") == NULL)
            dbt_failf(what, rc, "uploading '%s' to '%s': %s", e.file, r->dir, err);
        goto out;                /* else the child said why */
    }
    edb_backup_source src = { .path = mfile, .fd = -1, .name = NULL };
    rc = edb_backup_describe(&e.s, &src);
    if (rc < 0 || e.s.bytes != bytes) {
        repo_remove_files(r, e.file);
        if (rc < 0)
            dbt_fail(what, rc);
        else
            dbt_failf(what, EDB_CORRUPT, "uploaded %" PRIu64 " bytes but the archive has %" PRIu64, bytes,
                      e.s.bytes);
        goto out;
    }
    char mname[300];
    size_t mlen = 0;
    char *m = slurp(mfile, &mlen);
    repo_manifest_name(mname, sizeof mname, e.file);
    rc = m == NULL ? EDB_IO : store_put(r->st, mname, m, mlen, err, sizeof err);
    free(m);
    if (rc != 0) {
        repo_remove_files(r, e.file);
        dbt_failf(what, rc, "uploading '%s' to '%s': %s", mname, r->dir, m == NULL ? "reading it" : err);
        goto out;
    }
    ret = record_backup(r, o, &e, full);
out:
    store_set_cancel(r->st, NULL, NULL);
    dbt_tmpdir_remove(tmp, tmpfd);
    return ret;
}

/* One backup into the repository.  Returns DBT_OK, DBT_FAIL, or -signal
 * when stopped. */
static int
repo_backup_once(repo *r, const rb_opts *o)
{
    if (store_dir(r->st) == NULL)
        return bucket_backup_once(r, o);
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
    return record_backup(r, o, &e, full);
}

/* The archive @e is stored and complete: catalog it (or note an unchanged
 * database), report, then merge and prune as asked. */
static int
record_backup(repo *r, const rb_opts *o, repo_entry *ep, bool full)
{
    repo_entry e = *ep;
    const repo_entry *last = r->n ? &r->a[r->n - 1] : NULL;
    bool unchanged = !full && e.s.pages == 0 && last != NULL && e.s.txnid == last->s.txnid &&
                     e.s.npages == last->s.npages;
    if (unchanged) {
        r->a[r->n - 1].unchanged_until_us = e.s.created_us;
    } else {
        r->next++;
        if (repo_append(r, &e) != DBT_OK) {
            repo_remove_files(r, e.file);
            return DBT_FAIL;
        }
    }
    if (repo_save(r) != DBT_OK) {
        if (!unchanged) {
            r->n--;
            repo_remove_files(r, e.file);
        }
        return DBT_FAIL;
    }
    if (unchanged)
        repo_remove_files(r, e.file);              /* after the catalog: a kill between leaves a leftover, cleaned later */
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
        if (kr == 1)
            kr = store_parse_opt(&o.so, cmd, argc, argv, &i);
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
    if (repo_open(&r, o.dir, true, true, &o.so) != DBT_OK)
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
    store_opts so;
    memset(&so, 0, sizeof so);
    for (int i = 2; i < argc; i++) {
        int sr = store_parse_opt(&so, cmd, argc, argv, &i);
        if (sr == 0)
            continue;
        if (sr != 1)
            return sr;
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
    if (repo_open(&r, dir, false, false, &so) != DBT_OK)
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
    store_opts so;
    memset(&so, 0, sizeof so);
    for (int i = 2; i < argc; i++) {
        int kr = parse_keep(&k, cmd, argc, argv, &i);
        if (kr == 1)
            kr = store_parse_opt(&so, cmd, argc, argv, &i);
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
    if (repo_open(&r, dir, false, true, &so) != DBT_OK)
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
    store_opts so;
    memset(&so, 0, sizeof so);
    for (int i = 2; i < argc; i++) {
        int sr = store_parse_opt(&so, cmd, argc, argv, &i);
        if (sr == 0)
            continue;
        if (sr != 1)
            return sr;
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
    if (repo_open(&r, dir, false, true, &so) != DBT_OK)
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
    store_opts so;
    memset(&so, 0, sizeof so);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int sr = store_parse_opt(&so, cmd, argc, argv, &i);
        if (sr == 0)
            continue;
        if (sr != 1)
            return sr;
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
        if (repo_open(&r, dir, false, false, &so) != DBT_OK)
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
        /* From a bucket: the chain is downloaded beside the target. */
        char parent[4200], tmp[4200];
        int tmpfd = -1;
        snprintf(parent, sizeof parent, "%s", target);
        char *sl = strrchr(parent, '/');
        if (sl == NULL)
            snprintf(parent, sizeof parent, ".");
        else if (sl == parent)
            parent[1] = '\0';
        else
            *sl = '\0';
        if (chain_files(&r, idx, len, paths, parent, tmp, sizeof tmp, &tmpfd, what) != DBT_OK) {
            free(idx), free(src), free(paths);
            repo_close(&r);
            return DBT_FAIL;
        }
        for (size_t j = 0; j < len; j++) {
            src[j].path = paths[j];
            src[j].fd = -1;
            src[j].key = dbt_key;
        }
        edb_backup_info info;
        int rc = edb_backup_restore(&info, target, src, len, flags);
        if (tmp[0] != '\0')
            dbt_tmpdir_remove(tmp, tmpfd);
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

/* ---- info and verify of archives in a bucket ---- */

/* Run @fn with every s3://BUCKET/PREFIX/NAME argument replaced by a download
 * of that object into a temporary directory (in $TMPDIR), with the --s3-*
 * options taken out; without such an argument, @fn runs on argv as given. */
static int
with_downloads(const char *cmd, int argc, char **argv, int (*fn)(int, char **))
{
    bool any = false;
    for (int i = 1; i < argc && !any; i++)
        any = store_is_s3(argv[i]);
    if (!any)
        return fn(argc, argv);
    store_opts so;
    memset(&so, 0, sizeof so);
    char **nv = calloc((size_t)argc + 1, sizeof *nv);
    char (*local)[4400] = calloc((size_t)argc, sizeof *local);
    if (nv == NULL || local == NULL) {
        free(nv), free(local);
        return dbt_failf(cmd, EDB_NOMEM, "out of memory");
    }
    int nc = 0, ret = DBT_FAIL;
    nv[nc++] = argv[0];
    for (int i = 1; i < argc; i++) {
        int sr = store_parse_opt(&so, cmd, argc, argv, &i);
        if (sr == 0)
            continue;
        if (sr != 1) {
            free(nv), free(local);
            return sr;
        }
        nv[nc++] = argv[i];
    }
    char tmp[4200];
    int tmpfd = -1;
    dbt_tmpdir_sweep(tmp_parent(), TMP_PREFIX, 0);
    if (dbt_tmpdir_make(tmp, sizeof tmp, &tmpfd, tmp_parent(), TMP_PREFIX) != 0) {
        free(nv), free(local);
        return dbt_failf(cmd, EDB_IO, "making a temporary directory in '%s': %s", tmp_parent(), strerror(errno));
    }
    for (int i = 1; i < nc; i++) {
        if (!store_is_s3(nv[i]))
            continue;
        char base[4200], err[1024];
        snprintf(base, sizeof base, "%s", nv[i]);
        char *sl = strrchr(base, '/');
        if (sl == NULL || sl <= base + 5 || sl[1] == '\0') {
            dbt_failf(cmd, EDB_INVAL, "'%s': give an object, s3://BUCKET/PREFIX/NAME", nv[i]);
            goto out;
        }
        *sl = '\0';
        const char *name = sl + 1;
        store *st = NULL;
        int rc = store_open(&st, base, &so, false, err, sizeof err);
        if (rc == 0) {
            snprintf(local[i], sizeof local[i], "%s/%s", tmp, name);
            int fd = open(local[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0) {
                rc = EDB_IO;
                snprintf(err, sizeof err, "creating '%s': %s", local[i], strerror(errno));
            } else {
                rc = store_get(st, name, fd, 0, 0, err, sizeof err);
                close(fd);
            }
        }
        store_close(st);
        if (rc != 0) {
            dbt_failf(cmd, rc, "downloading '%s': %s", nv[i], err);
            goto out;
        }
        nv[i] = local[i];
    }
    nv[nc] = NULL;
    ret = fn(nc, nv);
out:
    dbt_tmpdir_remove(tmp, tmpfd);
    free(nv);
    free(local);
    return ret;
}

int
dbt_cmd_info_any(int argc, char **argv)
{
    return with_downloads("info", argc, argv, dbt_cmd_info);
}

int
dbt_cmd_verify_any(int argc, char **argv)
{
    return with_downloads("verify", argc, argv, dbt_cmd_verify_chains);
}

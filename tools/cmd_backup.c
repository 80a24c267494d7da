/*
 * cmd_backup.c: dbtool backup, restore and verify.
 *
 * backup hands the writing to the library: edb_backup_save() writes a hidden
 * temporary file beside ARCHIVE (0600, O_EXCL | O_NOFOLLOW) straight from the
 * copier's ring, fsyncs it, renames it to ARCHIVE and fsyncs the directory, so
 * a file named ARCHIVE is always a complete archive; edb_backup_write_fd()
 * streams to standard output.
 *
 * Stopping: SIGINT, SIGTERM and SIGHUP are blocked in every thread and taken
 * by a signal thread (sigwait), which calls edb_backup_stop(): the read in
 * progress returns EDB_CANCELED within a page batch and the main thread removes
 * the temporary file and exits 1.  Should the main thread be stuck in a write
 * to a stalled output (or in any other call that does not return), the signal
 * thread exits the process itself after STOP_GRACE_MS, so Ctrl-C always ends a
 * backup within half a second.  SIGPIPE is
 * blocked, so a reader that goes away makes write() fail with EPIPE, reported
 * as an error.  Each stop leaves no file that looks complete.
 *
 * restore and verify --deep create files through the library, which has no
 * cancel point there: they run that work in a child process (dbt_supervise,
 * safe.c), and on SIGINT, SIGTERM or SIGHUP the parent kills it and then
 * removes what it left (edb_backup_restore_sweep() beside the target; the
 * flocked dbtool-verify-XXXXXX in $TMPDIR), so they leave nothing either.
 * Archives and the incremental base are opened here without blocking and
 * refused unless they are regular files (a FIFO would block open() for ever).
 *
 * Thread safety: the main thread and the signal thread share `stop_state`
 * under its mutex; the signal thread only calls edb_backup_stop() (any thread).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dbtool.h"
#include "edb_backup.h"
#include "lifecycle.h"

/* ---- shared bits ---- */

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

/* "1048576", "64K", "10M", "1G" (binary multiples). */
static bool
parse_size(uint64_t *out, const char *s)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return false;
    unsigned shift = 0;
    if (*end == 'k' || *end == 'K')
        shift = 10;
    else if (*end == 'm' || *end == 'M')
        shift = 20;
    else if (*end == 'g' || *end == 'G')
        shift = 30;
    if (shift) {
        end++;
        if (*end == 'i')
            end++;
        if (*end == 'B' || *end == 'b')
            end++;
    }
    if (*end != '\0' || (shift && v > (ULLONG_MAX >> shift)))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

/* ---- backup ---- */

/* How long the signal thread lets the main thread clean up after a stop
 * before it exits the process itself: the promise is that Ctrl-C ends a
 * backup within 0.5 s (doc/dbtool.1), whatever the output does. */
#define STOP_GRACE_MS 300

static struct {
    pthread_mutex_t lock;
    pthread_cond_t done_cv;
    edb_env *env;           /* set while a backup runs */
    int signo;              /* the signal that stopped us, 0: none */
    bool done;              /* the main thread finished; the signal thread may leave */
    bool writing;           /* the main thread is writing the archive */
} stop_state = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, false, false };

static void *
signal_thread(void *arg)
{
    sigset_t *set = arg;
    int sig = 0;
    if (sigwait(set, &sig) != 0)
        return NULL;
    pthread_mutex_lock(&stop_state.lock);
    if (stop_state.done) {
        pthread_mutex_unlock(&stop_state.lock);
        return NULL;                     /* woken by the main thread at the end */
    }
    stop_state.signo = sig;
    edb_env *env = stop_state.env;
    pthread_mutex_unlock(&stop_state.lock);
    if (env != NULL)
        edb_backup_stop(env);
    /* Give the main thread STOP_GRACE_MS to clean up and exit on its own. */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += STOP_GRACE_MS * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&stop_state.lock);
    while (!stop_state.done)
        if (pthread_cond_timedwait(&stop_state.done_cv, &stop_state.lock, &dl) == ETIMEDOUT)
            break;
    bool done = stop_state.done, writing = stop_state.writing;
    pthread_mutex_unlock(&stop_state.lock);
    if (!done) {
        /* A call that does not return: a write stalled on its output (a pipe
         * nobody reads, a hung file system) or an open that hangs.  A file
         * being written is still unnamed or under its hidden temporary name,
         * which never looks like a complete archive. */
        static const char stalled[] = "dbtool: backup: EDB_CANCELED: interrupted; the output is "
                                      "stalled, exiting without waiting for it\n";
        static const char hung[] = "dbtool: backup: EDB_CANCELED: interrupted; opening the database "
                                   "or the base archive does not return, exiting without waiting "
                                   "for it\n";
        ssize_t w = writing ? write(STDERR_FILENO, stalled, sizeof stalled - 1)
                            : write(STDERR_FILENO, hung, sizeof hung - 1);
        (void)w;
        _exit(1);
    }
    return NULL;
}

struct progress {
    bool on;
    bool shown;
    double start, last;
    edb_backup *bk;
    uint64_t written;       /* archive bytes written so far */
};

static void
progress_show(struct progress *p, edb_backup *bk, bool final)
{
    if (!p->on)
        return;
    double t = now_s();
    if (!final && t - p->last < 0.2)
        return;
    if (!final && !p->shown && t - p->start < 0.5)
        return;
    p->last = t;
    uint64_t done = 0, total = 0;
    if (edb_backup_progress(bk, &done, &total) != 0)
        return;
    char d[32], tot[32], r[32], eta[32] = "--:--";
    double el = t - p->start, rate = el > 0 ? (double)done / el : 0;
    human(d, sizeof d, (double)done);
    human(tot, sizeof tot, (double)total);
    human(r, sizeof r, rate);
    if (rate > 0 && total > done) {
        unsigned s = (unsigned)((double)(total - done) / rate);
        snprintf(eta, sizeof eta, "%u:%02u", s / 60, s % 60);
    } else if (total <= done) {
        snprintf(eta, sizeof eta, "0:00");
    }
    double pct = total ? 100.0 * (double)done / (double)total : 0;
    if (pct > 100)
        pct = 100;
    fprintf(stderr, "\r\033[Kbackup %5.1f%%  %s / %s  %s/s  ETA %s", pct, d, tot, r, eta);
    if (final)
        fputc('\n', stderr);
    p->shown = true;
}

/* edb_backup_progress_fn: called by the library writer after each batch. */
static void
progress_cb(void *ctx, uint64_t done, uint64_t total)
{
    struct progress *p = ctx;
    (void)total;
    p->written = done;
    progress_show(p, p->bk, false);
}

/* --compress zstd[:LEVEL] into @o; false when the text is not that. */
bool
dbt_parse_compress(struct edb_backup_opts *o, const char *s)
{
    if (strncmp(s, "zstd", 4) != 0 || (s[4] != '\0' && s[4] != ':'))
        return false;
    int level = 1;
    if (s[4] == ':') {
        char *end;
        errno = 0;
        long l = strtol(s + 5, &end, 10);
        if (errno != 0 || end == s + 5 || *end != '\0' || l < 1 || l > 22)
            return false;
        level = (int)l;
    }
    o->compress = EDB_BACKUP_COMPRESS_ZSTD;
    o->compress_level = level;
    return true;
}

int
dbt_cmd_backup(int argc, char **argv)
{
    const char *cmd = "backup";
    const char *db = NULL, *archive = NULL;
    edb_backup_opts opts;
    memset(&opts, 0, sizeof opts);
    bool quiet = false, overwrite = false, json = false;   /* lifecycle: backup_extra.c */
    const char *manifest = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--overwrite") == 0) {
            overwrite = true;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--manifest") == 0) {
            if (++i >= argc)
                return dbt_usage(cmd, "--manifest needs a file name");
            manifest = argv[i];
        } else if (strcmp(a, "--incremental") == 0) {
            if (++i >= argc)
                return dbt_usage(cmd, "--incremental needs the base archive");
            opts.flags |= EDB_BACKUP_INCREMENTAL;
            opts.base = argv[i];
        } else if (strcmp(a, "--rate-limit") == 0) {
            if (++i >= argc || !parse_size(&opts.rate_limit, argv[i]) || opts.rate_limit == 0)
                return dbt_usage(cmd, "--rate-limit needs a positive number of bytes per second "
                                 "(e.g. 1048576 or 50M)");
        } else if (strcmp(a, "--compress") == 0) {
            if (++i >= argc || !dbt_parse_compress(&opts, argv[i]))
                return dbt_usage(cmd, "--compress needs zstd or zstd:LEVEL (LEVEL 1..22)");
        } else if (strcmp(a, "--threads") == 0) {
            char *end;
            unsigned long t = ++i < argc ? strtoul(argv[i], &end, 10) : 0;
            if (i >= argc || end == argv[i] || *end != '\0' || t < 1 || t > 64)
                return dbt_usage(cmd, "--threads needs a number of threads, 1..64");
            opts.compress_threads = (unsigned)t;
        } else if (strcmp(a, "--low-pin") == 0) {
            opts.flags |= EDB_BACKUP_LOW_PIN;
        } else if (strcmp(a, "--keep-free") == 0) {
            opts.flags |= EDB_BACKUP_KEEP_FREE;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            return dbt_usage(cmd, "unknown option '%s'", a);
        } else if (db == NULL) {
            db = a;
        } else if (archive == NULL) {
            archive = a;
        } else {
            return dbt_usage(cmd, "too many arguments ('%s')", a);
        }
    }
    opts.encrypt_key = dbt_key;
    if (db == NULL || archive == NULL)
        return dbt_usage(cmd, "expected DB and ARCHIVE (or - for standard output)");
    if (opts.base != NULL) {
        /* A FIFO as the base would block the library's open() for ever. */
        if (strcmp(opts.base, "-") == 0)
            return dbt_usage(cmd, "--incremental needs the base archive as a file, not standard input");
        int bfd = dbt_open_regular(opts.base, "backup --incremental", false);
        if (bfd < 0)
            return DBT_FAIL;
        close(bfd);
    }
    bool to_stdout = strcmp(archive, "-") == 0;
    if (to_stdout && isatty(STDOUT_FILENO))
        return dbt_usage(cmd, "refusing to write an archive to a terminal");
    if (to_stdout && json)
        return dbt_usage(cmd, "--json cannot be used with - (standard output carries the archive)");

    /* Signals: block them here, before any thread exists, so every thread
     * inherits the mask; the signal thread takes them with sigwait. */
    sigset_t pipe_set, stop_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGHUP);
    sigset_t all = stop_set;
    sigaddset(&all, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_t sig_thread;
    bool have_sig_thread = pthread_create(&sig_thread, NULL, signal_thread, &stop_set) == 0;

    char what[4300];
    snprintf(what, sizeof what, "backup '%s'", db);
    int ret = DBT_FAIL, rc;
    edb_env *env = NULL;
    edb_backup *bk = NULL;
    char data[4200];
    struct stat sb;
    snprintf(data, sizeof data, "%s/data.mdb", db);
    if (stat(db, &sb) != 0 || !S_ISDIR(sb.st_mode) || stat(data, &sb) != 0) {
        dbt_failf(what, EDB_NOTFOUND, "no database in '%s'", db);
        goto done;
    }
    if (dbt_backup_precheck(what, archive, manifest, overwrite) != DBT_OK)
        goto done;
    edb_env_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.flags = EDB_ENV_READONLY;
    if ((rc = edb_env_open(&env, db, &eo)) < 0) {
        dbt_fail(what, rc);
        goto done;
    }
    pthread_mutex_lock(&stop_state.lock);
    stop_state.env = env;
    bool stopped_early = stop_state.signo != 0;
    pthread_mutex_unlock(&stop_state.lock);
    if (stopped_early) {
        dbt_failf(what, EDB_CANCELED, "interrupted by signal %d", stop_state.signo);
        goto done;
    }
    if ((rc = edb_backup_begin(&bk, env, &opts)) < 0) {
        dbt_fail(what, rc);
        goto done;
    }
    struct progress pg = { !quiet && isatty(STDERR_FILENO), false, now_s(), 0, bk, 0 };
    /* The library writes the archive straight from the copier's ring: to a
     * temporary file beside ARCHIVE that is fsynced and renamed into place
     * only when complete, or to standard output with SIGPIPE blocked. */
    pthread_mutex_lock(&stop_state.lock);
    stop_state.writing = true;
    pthread_mutex_unlock(&stop_state.lock);
    char tee_err[700] = "";
    if (to_stdout && manifest != NULL)
        rc = dbt_backup_tee(bk, STDOUT_FILENO, manifest, overwrite, progress_cb, &pg, tee_err,
                            sizeof tee_err);
    else if (to_stdout)
        rc = edb_backup_write_fd(bk, STDOUT_FILENO, progress_cb, &pg);
    else
        rc = edb_backup_save(bk, archive, overwrite ? EDB_SAVE_OVERWRITE : 0, progress_cb, &pg);
    if (pg.shown)
        progress_show(&pg, bk, rc == 0);
    if (rc < 0) {
        pthread_mutex_lock(&stop_state.lock);
        int sig = stop_state.signo;
        pthread_mutex_unlock(&stop_state.lock);
        if (sig != 0)
            dbt_failf(what, EDB_CANCELED, "interrupted by signal %d (%s); no archive was "
                      "written", sig, strsignal(sig));
        else if (tee_err[0] != '\0')
            fprintf(stderr, "dbtool: %s: %s\n", what, tee_err);
        else
            dbt_fail(what, rc);
        goto done;
    }
    if (to_stdout && fstat(STDOUT_FILENO, &sb) == 0 && S_ISREG(sb.st_mode) && fsync(STDOUT_FILENO) != 0) {
        dbt_failf(what, EDB_IO, "fsync of standard output: %s", strerror(errno));
        goto done;
    }
    uint64_t written = pg.written;
    uint64_t pin_us = 0;
    edb_backup_pin_time(bk, &pin_us, NULL);
    if (dbt_backup_report(what, db, archive, manifest, overwrite, json, (double)pin_us / 1e6) != DBT_OK)
        goto done;
    if (!quiet) {
        char h[32];
        human(h, sizeof h, (double)written);
        fprintf(stderr, "backup: %s%s%s archive of '%s' written to %s (%s); snapshot pinned %.3f s at most\n",
                opts.compress == EDB_BACKUP_COMPRESS_ZSTD ? "zstd-compressed " : "",
                (opts.flags & EDB_BACKUP_LOW_PIN) ? "low-pin " : "",
                (opts.flags & EDB_BACKUP_INCREMENTAL) ? "incremental" : "full", db,
                to_stdout ? "standard output" : archive, h, (double)pin_us / 1e6);
    }
    ret = DBT_OK;
done:
    edb_backup_end(bk);
    pthread_mutex_lock(&stop_state.lock);
    stop_state.env = NULL;
    stop_state.done = true;
    pthread_cond_broadcast(&stop_state.done_cv);
    pthread_mutex_unlock(&stop_state.lock);
    edb_env_close(env);
    if (have_sig_thread) {
        pthread_kill(sig_thread, SIGTERM);   /* wakes sigwait; it sees done and leaves */
        pthread_join(sig_thread, NULL);
    }
    return ret;
}

/* ---- restore ---- */

/* Each archive named is opened here, without blocking, and refused unless it
 * is a regular file (a FIFO would block open() for ever); the library reads
 * the descriptor.  "-" is standard input, once. */
static int
sources_from_args(edb_backup_source *src, char **names, size_t n, const char *cmd)
{
    bool stdin_used = false;
    for (size_t i = 0; i < n; i++) {
        memset(&src[i], 0, sizeof src[i]);
        src[i].fd = -1;
        src[i].key = dbt_key;
    }
    for (size_t i = 0; i < n; i++) {
        src[i].path = NULL;
        if (strcmp(names[i], "-") == 0) {
            if (stdin_used)
                return dbt_usage(cmd, "'-' (standard input) may be given once");
            stdin_used = true;
            src[i].fd = STDIN_FILENO;
            src[i].name = "standard input";
        } else {
            src[i].fd = dbt_open_regular(names[i], cmd, true);
            if (src[i].fd < 0)
                return DBT_FAIL;
            src[i].name = names[i];
        }
    }
    return DBT_OK;
}

static void
sources_close(edb_backup_source *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (src[i].fd > STDIN_FILENO)
            close(src[i].fd);
}

/* restore runs in a child (dbt_supervise): a signal kills it, and the
 * parent then removes what it left beside the target through the library's
 * own sweep (its locks are free once it is dead). */
typedef struct restore_job {
    const char *what, *target;
    edb_backup_source *src;
    size_t n;
    unsigned flags;
    bool json;
} restore_job;

static int
restore_child(void *arg)
{
    restore_job *j = arg;
    edb_backup_info info;
    int rc = edb_backup_restore(&info, j->target, j->src, j->n, j->flags);
    if (rc < 0)
        return dbt_fail(j->what, rc);
    if (j->json)
        return dbt_restore_json(j->target, &info);
    char h[32];
    human(h, sizeof h, (double)info.npages * info.page_size);
    printf("restored '%s': %llu pages of %u bytes (%s), transaction %llu, from %zu archive%s\n",
           j->target, (unsigned long long)info.npages, info.page_size, h,
           (unsigned long long)info.txnid, info.archives, info.archives == 1 ? "" : "s");
    return fflush(stdout) == 0 ? DBT_OK : DBT_FAIL;
}

static void
restore_cleanup(void *arg)
{
    restore_job *j = arg;
    edb_backup_restore_sweep(NULL, j->target);
}

int
dbt_cmd_restore(int argc, char **argv)
{
    const char *cmd = "restore";
    const char *target = NULL;
    unsigned flags = 0;
    bool json = false;
    char **names = calloc((size_t)argc, sizeof *names);
    size_t n = 0;
    if (names == NULL)
        return dbt_failf(cmd, EDB_NOMEM, "out of memory");
    int ret;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)
            flags |= EDB_RESTORE_FORCE;
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            ret = dbt_usage(cmd, "unknown option '%s'", argv[i]);
            goto out;
        } else if (target == NULL)
            target = argv[i];
        else
            names[n++] = argv[i];
    }
    if (target == NULL || n == 0) {
        ret = dbt_usage(cmd, "expected TARGET_DIR and at least one ARCHIVE (or - for standard input)");
        goto out;
    }
    edb_backup_source *src = calloc(n, sizeof *src);
    if (src == NULL) {
        ret = dbt_failf(cmd, EDB_NOMEM, "out of memory");
        goto out;
    }
    if ((ret = sources_from_args(src, names, n, cmd)) != DBT_OK) {
        sources_close(src, n);
        free(src);
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    char what[4200];
    snprintf(what, sizeof what, "restore '%s'", target);
    restore_job job = { what, target, src, n, flags, json };
    ret = dbt_supervise(what, restore_child, &job, restore_cleanup, &job);
    sources_close(src, n);
    free(src);
out:
    free(names);
    return ret;
}

/* ---- verify ---- */

static void
verify_problem(void *ctx, const edb_backup_problem *p)
{
    (void)ctx;
    printf("problem: archive %zu '%s'", p->archive + 1, p->name);
    if (p->frame >= 0)
        printf(", frame %lld", (long long)p->frame);
    if (p->pgno >= 0)
        printf(", page %lld", (long long)p->pgno);
    if (p->offset >= 0)
        printf(", offset %lld", (long long)p->offset);
    printf(": %s\n", p->message);
}

/* verify --deep: restore into a private temporary directory
 * ($TMPDIR/dbtool-verify-XXXXXX, locked on itself while it lives, see safe.c)
 * and run 'dbtool check' there.  It runs in a child (dbt_supervise): on
 * SIGINT, SIGTERM or SIGHUP the parent kills it and removes the directory;
 * what a SIGKILL of the whole command leaves, the next verify --deep removes. */
typedef struct deep_job {
    edb_backup_source *src;
    size_t n;
    const char *tmpdir;
} deep_job;

static const char DEEP_PREFIX[] = "dbtool-verify-";

static int
deep_child(void *arg)
{
    deep_job *j = arg;
    char dir[4200], db[4300];
    int lockfd;
    dbt_tmpdir_sweep(j->tmpdir, DEEP_PREFIX, 0);
    if (dbt_tmpdir_make(dir, sizeof dir, &lockfd, j->tmpdir, DEEP_PREFIX) != 0)
        return dbt_failf("verify --deep", EDB_IO, "creating a temporary directory in '%s': %s",
                         j->tmpdir, strerror(errno));
    snprintf(db, sizeof db, "%s/db", dir);
    /* The first pass read the archives to their end: read them again. */
    int ret = DBT_OK;
    for (size_t i = 0; i < j->n && ret == DBT_OK; i++)
        if (lseek(j->src[i].fd, 0, SEEK_SET) != 0)
            ret = dbt_failf("verify --deep", EDB_IO, "'%s': cannot read it again: %s", j->src[i].name,
                            strerror(errno));
    if (ret == DBT_OK) {
        int rc = edb_backup_restore(NULL, db, j->src, j->n, 0);
        if (rc < 0) {
            ret = dbt_fail("verify --deep: restore into a temporary directory", rc);
        } else {
            fflush(stdout);
            char *av[] = { (char *)"check", db, NULL };
            ret = dbt_cmd_check(2, av);
            if (ret == DBT_OK)
                printf("deep check: the restored database passed 'dbtool check'\n");
        }
    }
    dbt_tmpdir_remove(dir, lockfd);
    return ret;
}

static void
deep_cleanup(void *arg)
{
    deep_job *j = arg;
    /* the killed child's 'check' child may hold the lock a moment longer */
    dbt_tmpdir_sweep(j->tmpdir, DEEP_PREFIX, 2000);
}

static int
verify_deep(edb_backup_source *src, size_t n)
{
    const char *base = getenv("TMPDIR");
    deep_job j = { src, n, base && *base ? base : "/tmp" };
    return dbt_supervise("verify --deep", deep_child, &j, deep_cleanup, &j);
}

int
dbt_cmd_verify(int argc, char **argv)
{
    const char *cmd = "verify";
    bool deep = false;
    char **names = calloc((size_t)argc, sizeof *names);
    size_t n = 0;
    if (names == NULL)
        return dbt_failf(cmd, EDB_NOMEM, "out of memory");
    int ret;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--deep") == 0)
            deep = true;
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            ret = dbt_usage(cmd, "unknown option '%s'", argv[i]);
            goto out;
        } else
            names[n++] = argv[i];
    }
    if (n == 0) {
        ret = dbt_usage(cmd, "expected at least one ARCHIVE (or - for standard input)");
        goto out;
    }
    edb_backup_source *src = calloc(n, sizeof *src);
    if (src == NULL) {
        ret = dbt_failf(cmd, EDB_NOMEM, "out of memory");
        goto out;
    }
    if ((ret = sources_from_args(src, names, n, cmd)) != DBT_OK) {
        sources_close(src, n);
        free(src);
        goto out;
    }
    if (deep) {
        for (size_t i = 0; i < n; i++)
            if (src[i].fd == STDIN_FILENO) {
                sources_close(src, n);
                free(src);
                ret = dbt_usage(cmd, "--deep cannot read standard input (it reads each archive "
                                "twice)");
                goto out;
            }
    }
    signal(SIGPIPE, SIG_IGN);
    edb_backup_info info;
    int rc = edb_backup_verify(&info, src, n, verify_problem, NULL);
    fflush(stdout);
    if (rc < 0) {
        sources_close(src, n);
        free(src);
        ret = dbt_fail("verify", rc);
        goto out;
    }
    char h[32], when[64] = "?";
    human(h, sizeof h, (double)info.bytes);
    time_t t = (time_t)(info.created_us / 1000000u);
    struct tm tm;
    if (gmtime_r(&t, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("ok: %zu archive%s (%s), %llu frames, %llu pages carried; snapshot: transaction %llu, "
           "%llu pages of %u bytes, taken %s\n", info.archives, info.archives == 1 ? "" : "s", h,
           (unsigned long long)info.frames, (unsigned long long)info.pages,
           (unsigned long long)info.txnid, (unsigned long long)info.npages, info.page_size, when);
    if (info.unchecked)
        printf("note: %llu page hashes of the first (incremental) archive can only be proved "
               "together with its base archive\n", (unsigned long long)info.unchecked);
    ret = fflush(stdout) == 0 ? DBT_OK : DBT_FAIL;
    if (ret == DBT_OK && deep)
        ret = verify_deep(src, n);
    sources_close(src, n);
    free(src);
out:
    free(names);
    return ret;
}

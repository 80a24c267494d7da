/*
 * cmd_admin.c: dbtool create, stat, check, compact.
 *
 * check runs edb_env_check() in a forked child: a damaged file can make LMDB
 * fault (SIGBUS past the end of a short file, SIGSEGV on a wild page number)
 * or abort, and the tool must report that as corruption instead of dying.
 * The child prints the problems and the verdict itself; the parent only turns
 * a death by signal into an EDB_CORRUPT report.  Both run read-only: a check
 * never blocks a writer.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dbtool.h"

int
dbt_cmd_create(int argc, char **argv)
{
    if (argc != 2 || strncmp(argv[1], "--", 2) == 0)
        return dbt_usage(argv[0], "expected DB");
    char what[600], data[4096];
    snprintf(what, sizeof what, "create '%s'", argv[1]);
    snprintf(data, sizeof data, "%s/data.mdb", argv[1]);
    struct stat sb;
    if (stat(data, &sb) == 0)
        return dbt_failf(what, EDB_EXISTS, "'%s' already holds a database", argv[1]);
    edb_env *env;
    int rc = edb_env_open(&env, argv[1], NULL);
    if (rc < 0)
        return dbt_fail(what, rc);
    edb_env_close(env);
    return DBT_OK;
}

static bool
want_json(int argc, char **argv, const char **db, int *bad)
{
    bool json = false;
    *db = NULL;
    *bad = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strncmp(argv[i], "--", 2) == 0 || *db)
            *bad = i;
        else
            *db = argv[i];
    }
    return json;
}

static void
tree_json(jv_buf *b, const char *label, const edb_tree_stat *st)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "\"%s\": {\"entries\": %llu, \"depth\": %llu, \"branch_pages\": %llu, "
             "\"leaf_pages\": %llu, \"overflow_pages\": %llu}", label,
             (unsigned long long)st->entries, (unsigned long long)st->depth,
             (unsigned long long)st->branch_pages, (unsigned long long)st->leaf_pages,
             (unsigned long long)st->overflow_pages);
    jv_buf_adds(b, tmp);
}

static void
tree_line(const char *table, const char *index, const edb_tree_stat *st)
{
    printf("  %-24s %-20s %12llu %6llu %10llu %10llu %10llu\n", table, index ? index : "(records)",
           (unsigned long long)st->entries, (unsigned long long)st->depth,
           (unsigned long long)st->branch_pages, (unsigned long long)st->leaf_pages,
           (unsigned long long)st->overflow_pages);
}

int
dbt_cmd_stat(int argc, char **argv)
{
    const char *db;
    int bad;
    bool json = want_json(argc, argv, &db, &bad);
    if (bad)
        return dbt_usage(argv[0], "unexpected argument '%s'", argv[bad]);
    if (db == NULL)
        return dbt_usage(argv[0], "expected DB");
    edb_env *env;
    edb_session *s;
    if (dbt_open(&env, &s, db, DBT_OPEN_READ) != DBT_OK)
        return DBT_FAIL;
    int ret = DBT_OK, rc;
    char **names = NULL;
    size_t n = 0;
    edb_env_info info;
    jv_buf b = { 0 };
    char tmp[512];
    if ((rc = edb_env_info_get(&info, env)) < 0 || (rc = edb_txn_begin(s, EDB_TXN_READONLY)) < 0 ||
        (rc = edb_table_list(&names, &n, s)) < 0) {
        ret = dbt_fail("stat", rc);
        goto out;
    }
    json = dbt_output_format(json) == DBT_FMT_JSON;
    if (json) {
        snprintf(tmp, sizeof tmp, "{\"page_size\": %u, \"map_size\": %llu, \"pages_used\": %llu, "
                 "\"last_txn\": %llu, \"readers\": %u, \"max_readers\": %u, \"tables\": [",
                 info.page_size, (unsigned long long)info.map_size, (unsigned long long)info.last_page + 1,
                 (unsigned long long)info.txn_id, info.num_readers, info.max_readers);
        jv_buf_adds(&b, tmp);
    } else {
        printf("page size     %u\nmap size      %llu\npages used    %llu (%llu bytes)\nlast txn      %llu\n"
               "readers       %u of %u\ntables        %zu\n", info.page_size,
               (unsigned long long)info.map_size, (unsigned long long)info.last_page + 1,
               (unsigned long long)(info.last_page + 1) * info.page_size, (unsigned long long)info.txn_id,
               info.num_readers, info.max_readers, n);
        if (n)
            printf("\n  %-24s %-20s %12s %6s %10s %10s %10s\n", "table", "tree", "entries", "depth",
                   "branch", "leaf", "overflow");
    }
    for (size_t i = 0; i < n; i++) {
        edb_tree_stat st;
        dbt_table t;
        if ((rc = edb_table_stat(&st, s, names[i], NULL)) < 0) {
            ret = dbt_fail("stat", rc);
            goto out;
        }
        if (dbt_table_load(&t, s, names[i]) != DBT_OK) {
            ret = DBT_FAIL;
            goto out;
        }
        if (json) {
            jv_buf_adds(&b, i ? ", {\"name\": " : "{\"name\": ");
            jv_write_json_string(&b, names[i], strlen(names[i]));
            snprintf(tmp, sizeof tmp, ", \"rows\": %llu, ", (unsigned long long)st.entries);
            jv_buf_adds(&b, tmp);
            tree_json(&b, "records", &st);
            jv_buf_adds(&b, ", \"indexes\": [");
        } else {
            tree_line(names[i], NULL, &st);
        }
        for (size_t k = 0; k < t.def->nindexes; k++) {
            const char *iname = t.def->indexes[k].name;
            edb_tree_stat is;
            if ((rc = edb_table_stat(&is, s, names[i], iname)) < 0) {
                dbt_table_free(&t);
                ret = dbt_fail("stat", rc);
                goto out;
            }
            if (json) {
                jv_buf_adds(&b, k ? ", {\"name\": " : "{\"name\": ");
                jv_write_json_string(&b, iname, strlen(iname));
                jv_buf_adds(&b, ", ");
                tree_json(&b, "tree", &is);
                jv_buf_adds(&b, "}");
            } else {
                tree_line("", iname, &is);
            }
        }
        if (json)
            jv_buf_adds(&b, "]}");
        dbt_table_free(&t);
    }
    if (json) {
        jv_buf_adds(&b, "]}\n");
        fputs(b.p, stdout);
    }
    if (fflush(stdout) != 0)
        ret = dbt_failf("stat", EDB_IO, "writing standard output failed");
out:
    jv_buf_free(&b);
    edb_free(names);
    edb_session_end(s);
    edb_env_close(env);
    return ret;
}

/* ---- check -------------------------------------------------------------- */

typedef struct check_ctx {
    bool json;
    uint64_t shown;
    dbt_progress pg;
} check_ctx;

static void
check_report(void *ctx, int code, const char *what)
{
    check_ctx *cc = ctx;
    cc->shown++;
    if (cc->json) {
        jv_buf b = { 0 };
        jv_buf_adds(&b, "{\"problem\": ");
        jv_write_json_string(&b, what, strlen(what));
        printf("%s, \"code\": \"%s\"}\n", b.p, edb_err_name(code));
        jv_buf_free(&b);
    } else {
        printf("%s: %s\n", edb_err_name(code), what);
    }
}

static void
check_progress(void *ctx, uint64_t rows)
{
    check_ctx *cc = ctx;
    dbt_progress_rows(&cc->pg, rows & ~(uint64_t)1023);
}

/* The child: open, check, print; exit 0 clean, 1 otherwise. */
static int
check_child(const char *db, bool json)
{
    setvbuf(stdout, NULL, _IOLBF, 0);    /* problems found before a crash stay visible */
    char what[600];
    snprintf(what, sizeof what, "check '%s'", db);
    edb_env *env;
    edb_session *s;
    if (dbt_open(&env, &s, db, DBT_OPEN_READ) != DBT_OK)
        return DBT_FAIL;
    edb_session_end(s);
    check_ctx cc = { .json = json };
    dbt_progress_begin(&cc.pg, "check");
    uint64_t problems = 0;
    int rc = edb_env_check(&problems, env, check_report, &cc, check_progress);
    dbt_progress_end(&cc.pg);
    edb_env_close(env);
    if (rc < 0)
        return dbt_fail(what, rc);
    if (problems)
        return dbt_failf(what, EDB_CORRUPT, "%llu problem%s found", (unsigned long long)problems,
                         problems == 1 ? "" : "s");
    if (json)
        printf("{\"database\": \"%s\", \"problems\": 0}\n", db);
    else if (isatty(STDOUT_FILENO))
        printf("%s: no problems found\n", db);
    return fflush(stdout) == 0 ? DBT_OK : DBT_FAIL;
}

int
dbt_cmd_check(int argc, char **argv)
{
    const char *db;
    int bad;
    bool json = want_json(argc, argv, &db, &bad);
    if (bad)
        return dbt_usage(argv[0], "unexpected argument '%s'", argv[bad]);
    if (db == NULL)
        return dbt_usage(argv[0], "expected DB");
    json = dbt_output_format(json) == DBT_FMT_JSON;
    char what[600];
    snprintf(what, sizeof what, "check '%s'", db);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return dbt_failf(what, EDB_IO, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* A fault must kill the child so that the parent sees the signal,
         * even in builds whose runtime (ASan) catches faults itself. */
        /* Dies with its parent: verify --deep's supervisor kills the parent
         * and then removes the directory this child reads. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        static const int faults[] = { SIGBUS, SIGSEGV, SIGILL, SIGFPE, SIGABRT };
        for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
            signal(faults[i], SIG_DFL);
        int st = check_child(db, json);
        fflush(NULL);
        _exit(st);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return dbt_failf(what, EDB_IO, "waitpid: %s", strerror(errno));
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        return dbt_failf(what, EDB_CORRUPT, "reading the database killed the check with signal %d (%s): "
                         "the file is damaged (or shorter than its meta pages claim)", sig, strsignal(sig));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : DBT_FAIL;
}

/* ---- compact ------------------------------------------------------------ */

typedef struct compact_watch {
    const char *file;
    atomic_bool done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} compact_watch;

/* Shows the bytes written so far; LMDB's copier has no progress hook. */
static void *
compact_progress(void *arg)
{
    compact_watch *w = arg;
    double start = dbt_now();
    bool shown = false;
    pthread_mutex_lock(&w->mu);
    while (!atomic_load(&w->done)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        struct stat sb;
        double t = dbt_now() - start;
        if (!atomic_load(&w->done) && t >= 1.0 && stat(w->file, &sb) == 0) {
            fprintf(stderr, "\rcompact: %.1f MiB written, %.1f MiB/s   ", sb.st_size / 1048576.0,
                    sb.st_size / 1048576.0 / t);
            shown = true;
        }
    }
    pthread_mutex_unlock(&w->mu);
    if (shown)
        fprintf(stderr, "\r\033[K");
    return NULL;
}

/* compact's work, in the child of dbt_supervise (see safe.c): the copy is
 * written as OUT_DIR/.compact-XXXXXX/data.mdb (the directory 0700 and locked,
 * the file 0600 from its creation: umask 077 in this child), fsynced, renamed
 * to OUT_DIR/data.mdb without replacing anything, and the directory fsynced.
 * So OUT_DIR/data.mdb is absent or complete whatever happens; what a SIGKILL
 * leaves is the locked-then-dead temporary directory, which the next compact
 * into OUT_DIR (or the parent, on a signal) removes. */
typedef struct compact_job {
    const char *db, *out, *what;
} compact_job;

static int
fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

static int
compact_child(void *arg)
{
    compact_job *j = arg;
    const char *what = j->what;
    umask(077);
    struct stat sb;
    bool made = false;
    if (stat(j->out, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return dbt_failf(what, EDB_INVAL, "'%s' is not a directory", j->out);
    } else if (errno != ENOENT) {
        return dbt_failf(what, EDB_IO, "'%s': %s", j->out, strerror(errno));
    } else if (mkdir(j->out, 0700) != 0) {
        return dbt_failf(what, EDB_IO, "creating '%s': %s", j->out, strerror(errno));
    } else {
        made = true;
    }
    char data[4200], tmp[4200], tmpdata[4300];
    snprintf(data, sizeof data, "%s/data.mdb", j->out);
    if (lstat(data, &sb) == 0)
        return dbt_failf(what, EDB_EXISTS, "'%s' already holds a database", j->out);
    dbt_tmpdir_sweep(j->out, ".compact-", 0);
    edb_env *env;
    edb_session *s;
    if (dbt_open(&env, &s, j->db, DBT_OPEN_READ) != DBT_OK)
        return DBT_FAIL;
    edb_session_end(s);
    int lockfd, ret = DBT_FAIL;
    if (dbt_tmpdir_make(tmp, sizeof tmp, &lockfd, j->out, ".compact-") != 0) {
        ret = dbt_failf(what, EDB_IO, "creating a temporary directory in '%s': %s", j->out,
                        strerror(errno));
        edb_env_close(env);
        return ret;
    }
    snprintf(tmpdata, sizeof tmpdata, "%s/data.mdb", tmp);
    compact_watch w = { .file = tmpdata };
    pthread_t th;
    bool watching = false;
    if (isatty(STDERR_FILENO)) {
        pthread_mutex_init(&w.mu, NULL);
        pthread_cond_init(&w.cv, NULL);
        watching = pthread_create(&th, NULL, compact_progress, &w) == 0;
    }
    int rc = edb_env_compact(env, tmp);
    if (watching) {
        pthread_mutex_lock(&w.mu);
        atomic_store(&w.done, true);
        pthread_cond_broadcast(&w.cv);
        pthread_mutex_unlock(&w.mu);
        pthread_join(th, NULL);
        pthread_cond_destroy(&w.cv);
        pthread_mutex_destroy(&w.mu);
    }
    edb_env_close(env);
    if (rc < 0) {
        ret = dbt_fail(what, rc);
        goto out;
    }
    int fd = open(tmpdata, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
        ret = dbt_failf(what, errno == ENOSPC ? EDB_FULL : EDB_IO, "syncing the copy: %s",
                        strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    close(fd);
    /* never replace: a data.mdb that appeared meanwhile stays */
    if (renameat2(AT_FDCWD, tmpdata, AT_FDCWD, data, RENAME_NOREPLACE) != 0) {
        if (errno != EINVAL && errno != ENOSYS) {
            ret = dbt_failf(what, errno == EEXIST ? EDB_EXISTS : EDB_IO, "renaming the copy to '%s': %s",
                            data, strerror(errno));
            goto out;
        }
        if (link(tmpdata, data) != 0) {
            ret = dbt_failf(what, errno == EEXIST ? EDB_EXISTS : EDB_IO, "linking the copy as '%s': %s",
                            data, strerror(errno));
            goto out;
        }
    }
    if (fsync_dir(j->out) != 0) {
        ret = dbt_failf(what, EDB_IO, "fsync of '%s': %s", j->out, strerror(errno));
        goto out;
    }
    if (made) {
        char parent[4200];
        snprintf(parent, sizeof parent, "%s", j->out);
        char *slash = strrchr(parent, '/');
        if (slash == NULL)
            snprintf(parent, sizeof parent, ".");
        else if (slash == parent)
            parent[1] = '\0';
        else
            *slash = '\0';
        fsync_dir(parent);
    }
    ret = DBT_OK;
out:
    dbt_tmpdir_remove(tmp, lockfd);
    return ret;
}

static void
compact_cleanup(void *arg)
{
    compact_job *j = arg;
    dbt_tmpdir_sweep(j->out, ".compact-", 1000);
}

int
dbt_cmd_compact(int argc, char **argv)
{
    if (argc == 2 && strncmp(argv[1], "--", 2) != 0)
        return dbt_cmd_pack(argc, argv);          /* in place: cmd_upgrade.c */
    if (argc != 3 || strncmp(argv[1], "--", 2) == 0 || strncmp(argv[2], "--", 2) == 0)
        return dbt_usage(argv[0], "expected DB [OUT_DIR]");
    char what[600];
    snprintf(what, sizeof what, "compact '%s' into '%s'", argv[1], argv[2]);
    compact_job j = { argv[1], argv[2], what };
    return dbt_supervise(what, compact_child, &j, compact_cleanup, &j);
}

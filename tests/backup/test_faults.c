/*
 * test_faults.c: SQLite-style fault loops over the backup, verify and restore
 * paths (TESTING.md "Faults").
 *
 * Each scenario runs once unarmed to count the wrapped system calls and
 * allocations it makes (backup/sys.h), then for N = 1, 2, ... the N-th call
 * fails, once (transient) or from then on (persistent), with EIO, ENOSPC,
 * EINTR, EPIPE, or transfers less than asked (EDB__FAULT_SHORT), until a run
 * no longer reaches the armed call.  After every run:
 * - the result is success or a named EDB_* code whose message starts with the
 *   code's name (no crash, no hang: every test has a .timeout);
 * - the source database is unchanged (digest of its data) and still usable;
 * - the backup's read transaction is released (mdb_reader_list) and its
 *   copier thread is gone (/proc/self/task);
 * - nothing looks complete that is not: a backup stream that failed never
 *   yielded bytes that verify accepts; a failed edb_backup_save() leaves no
 *   file at its name and no temporary file; edb_backup_write_fd() into a pipe
 *   read by verify is accepted only when the write succeeded (and SIGPIPE,
 *   which the library must block, never kills the test); a failed restore leaves no target and
 *   no temporary directory; a restore reported successful holds exactly the
 *   source's data;
 * - no leak: the suite runs in the ASan+LSan build in CI.
 * Persistent EINTR is left out: an interruption that never ends is retried
 * forever by design (every loop retries EINTR), which is not a fault.
 *
 * Every test prints "faults injected: N" (stderr) so that doc/reliability.md
 * can quote the counts.
 */
#include "bk_helpers.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "reader.h"
#include "sys.h"

#define ROWS 300

typedef struct world {
    char *dir;
    edb_env *env;
    MDB_env *m;
    uint64_t digest, count;
    int tasks;              /* threads of the process with no backup running */
    long injected;          /* faults fired over the whole test */
    long runs;
} world;

static void
world_init(world *w)
{
    memset(w, 0, sizeof *w);
    /* tmpfs when there is one: restore fsyncs, thousands of times here. */
    struct stat st;
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0) {
        w->dir = strdup("/dev/shm/edb-faults-XXXXXX");
        cr_assert_not_null(mkdtemp(w->dir));
    } else {
        w->dir = bk_tmpdir();
    }
    w->env = bk_env_open(w->dir);
    bk_populate(w->env, ROWS);
    w->m = edb__env_mdb(w->env);
    MDB_txn *t;
    MDB_OK(mdb_txn_begin(w->m, NULL, MDB_RDONLY, &t));
    w->digest = bk_digest_txn(t, BK_DATA_DB, &w->count);
    mdb_txn_abort(t);
    cr_assert_gt(w->count, 0);
    w->tasks = bk_tasks();
}

/* The source is unchanged, its snapshot released, the copier gone. */
static void
world_check(world *w, const char *what, long n)
{
    cr_assert_eq(bk_wait_readers(w->m, 0, 5000), 0, "%s, fault at call %ld: a reader slot is "
                 "still held", what, n);
    cr_assert_eq(bk_wait_tasks(w->tasks, 5000), w->tasks, "%s, fault at call %ld: a copier "
                 "thread is still running", what, n);
    MDB_txn *t;
    MDB_OK(mdb_txn_begin(w->m, NULL, MDB_RDONLY, &t));
    uint64_t count, dg = bk_digest_txn(t, BK_DATA_DB, &count);
    mdb_txn_abort(t);
    cr_assert_eq(count, w->count, "%s, fault at call %ld: rows changed", what, n);
    cr_assert_eq(dg, w->digest, "%s, fault at call %ld: the source changed", what, n);
}

/* The source still opens after everything, and still takes a write. */
static void
world_fini(world *w, const char *name)
{
    edb_env_close(w->env);
    w->env = bk_env_open(w->dir);
    w->m = edb__env_mdb(w->env);
    MDB_txn *t;
    MDB_OK(mdb_txn_begin(w->m, NULL, MDB_RDONLY, &t));
    uint64_t count, dg = bk_digest_txn(t, BK_DATA_DB, &count);
    mdb_txn_abort(t);
    cr_assert_eq(dg, w->digest, "the source changed");
    MDB_OK(bk_write(w->m, bk_dbi(w->env), ROWS + 100, 3, 9, 0));
    edb_env_close(w->env);
    bk_rm_tree(w->dir);
    free(w->dir);
    fprintf(stderr, "%s: %ld runs, faults injected: %ld\n", name, w->runs, w->injected);
}

/* @rc is a clean result: 0, or a named error whose message (@msg, the detail
 * of the thread that got @rc) starts with the code's name. */
static void
clean_code_msg(int rc, const char *msg, const char *what, long n)
{
    if (rc == 0)
        return;
    const char *name = edb_err_name(rc);
    cr_assert_str_neq(name, "EDB_UNKNOWN", "%s, fault at call %ld: unknown code %d", what, n, rc);
    cr_assert(rc < 0, "%s, fault at call %ld: a warning %d as a failure", what, n, rc);
    cr_assert(strncmp(msg, name, strlen(name)) == 0, "%s, fault at call %ld: %s with message '%s'",
              what, n, name, msg);
}

/* The same for a call made by this thread. */
static void
clean_code(int rc, const char *what, long n)
{
    clean_code_msg(rc, edb_error_last(), what, n);
}

/* Does @p[0..n) read as a complete archive? */
static bool
looks_complete(const uint8_t *p, size_t n)
{
    int fd = memfd_create("archive", 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, p, n), (ssize_t)n);
    lseek(fd, 0, SEEK_SET);
    edb__archive a;
    edb__fault_disarm();
    int rc = edb__reader_read(&a, fd, NULL);
    edb__archive_free(&a);
    close(fd);
    return rc == 0;
}

/* The errnos and modes of every loop. */
typedef struct fmode {
    int err;
    unsigned flags;
    const char *name;
} fmode;

static const fmode modes[] = {
    { EIO, 0, "EIO once" },
    { EIO, EDB__FAULT_PERSISTENT, "EIO persistent" },
    { ENOSPC, 0, "ENOSPC once" },
    { ENOSPC, EDB__FAULT_PERSISTENT, "ENOSPC persistent" },
    { EINTR, 0, "EINTR once" },
    { EPIPE, 0, "EPIPE once" },
    { EPIPE, EDB__FAULT_PERSISTENT, "EPIPE persistent" },
    { 0, EDB__FAULT_SHORT, "short transfer once" },
    { 0, EDB__FAULT_SHORT | EDB__FAULT_PERSISTENT, "short transfers persistent" },
};
#define NMODES (sizeof modes / sizeof modes[0])

/* Run @scenario for N = 1, 2, ... in every mode until the armed call is no
 * longer reached twice in a row (the copier thread makes the count vary a
 * little from run to run).  @scenario returns after checking its own
 * invariants. */
typedef void (*scenario_fn)(world *w, const char *what, long n, bool armed);

static void
fault_loop(world *w, scenario_fn scenario, const char *name)
{
    /* Unarmed: learn the number of calls, and the scenario must succeed. */
    edb__fault_arm(0, 0, 0);
    scenario(w, "unarmed", 0, false);
    long calls = edb__fault_calls();
    cr_assert_gt(calls, 5, "%s makes %ld wrapped calls", name, calls);
    long limit = calls * 3 + 50;
    for (size_t m = 0; m < NMODES; m++) {
        char what[128];
        int misses = 0;
        long n;
        for (n = 1; n < limit && misses < 2; n++) {
            snprintf(what, sizeof what, "%s, %s", name, modes[m].name);
            edb__fault_arm(n, modes[m].err ? modes[m].err : EIO, modes[m].flags);
            scenario(w, what, n, true);
            long fired = edb__fault_fired();
            edb__fault_disarm();
            w->injected += fired;
            w->runs++;
            misses = fired == 0 ? misses + 1 : 0;
        }
        cr_assert_lt(n, limit, "%s: the armed call was still reached at N = %ld (%ld calls "
                     "unarmed)", what, n, calls);
    }
}

/* ---- backup into memory through edb_backup_read ---- */

static void
scen_memory(world *w, const char *what, long n, bool armed)
{
    bk_buf out = { 0 };
    edb_backup *bk = NULL;
    edb_backup_stream *s = NULL;
    int rc = edb_backup_begin(&bk, w->env, NULL);
    if (rc == 0) {
        cr_assert_not_null(bk);
        rc = edb_backup_open(&s, bk);
        if (rc == 0)
            rc = bk_read_all(s, &out, 65536);
        else
            cr_assert_null(s, "%s, fault at call %ld: open failed but set its out", what, n);
    } else {
        cr_assert_null(bk, "%s, fault at call %ld: begin failed but set its out", what, n);
    }
    edb__fault_disarm();    /* the checks below must not be faulted */
    clean_code(rc, what, n);
    if (!armed)
        cr_assert_eq(rc, 0, "%s: %s", what, edb_error_last());
    bool complete = out.n > 0 && looks_complete(out.p, out.n);
    if (rc == 0)
        cr_assert(complete, "%s, fault at call %ld: the backup succeeded, its archive does not "
                  "verify", what, n);
    else
        cr_assert(!complete, "%s, fault at call %ld: the backup failed (%s) but its bytes look "
                  "complete", what, n, edb_err_name(rc));
    edb_backup_close(s);
    edb_backup_end(bk);
    free(out.p);
    world_check(w, what, n);
}

Test(backup_faults, memory_consumer, .timeout = 300)
{
    world w;
    world_init(&w);
    fault_loop(&w, scen_memory, "backup to memory");
    world_fini(&w, "backup_faults::memory_consumer");
}

/* ---- backup through a pipe into verify ----
 * A pump thread reads the stream and writes it into a pipe with plain write()
 * (SIGPIPE blocked in that thread); edb_backup_verify() reads the other end.
 * Faults hit both sides (one countdown for the process).  verify may only
 * accept what a successful backup produced. */

typedef struct pump {
    edb_backup_stream *s;
    int fd;
    int rc;                 /* the stream's result */
    bool epipe;             /* the reader side went away */
    char msg[512];          /* the pump thread's error detail */
} pump;

static void *
pump_main(void *arg)
{
    pump *p = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    uint8_t *buf = malloc(65536);
    cr_assert_not_null(buf);
    for (;;) {
        size_t got = 0;
        p->rc = edb_backup_read(p->s, buf, 65536, &got);
        if (p->rc != 0)
            snprintf(p->msg, sizeof p->msg, "%s", edb_error_last());
        if (p->rc != 0 || got == 0)
            break;
        size_t off = 0;
        while (off < got) {
            ssize_t k = write(p->fd, buf + off, got - off);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                p->epipe = true;
                break;
            }
            off += (size_t)k;
        }
        if (p->epipe)
            break;
    }
    free(buf);
    close(p->fd);
    if (p->epipe) {     /* collect the pending SIGPIPE of this thread */
        struct timespec zero = { 0, 0 };
        sigtimedwait(&set, NULL, &zero);
    }
    return NULL;
}

static void
scen_pipe(world *w, const char *what, long n, bool armed)
{
    edb_backup *bk = NULL;
    edb_backup_stream *s = NULL;
    int rc = edb_backup_begin(&bk, w->env, NULL);
    if (rc == 0)
        rc = edb_backup_open(&s, bk);
    int vrc = -1;
    pump p = { .s = s, .rc = rc };
    char vmsg[512] = "";
    if (rc == 0) {
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        p.fd = fds[1];
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, pump_main, &p), 0);
        edb_backup_source src = { .path = NULL, .fd = fds[0], .name = "pipe" };
        vrc = edb_backup_verify(NULL, &src, 1, NULL, NULL);
        snprintf(vmsg, sizeof vmsg, "%s", edb_error_last());
        close(fds[0]);      /* a pump still writing gets EPIPE, not a hang */
        cr_assert_eq(pthread_join(t, NULL), 0);
    }
    edb__fault_disarm();
    if (p.rc != 0 && s == NULL)
        clean_code(p.rc, what, n);          /* begin or open failed in this thread */
    else
        clean_code_msg(p.rc, p.msg, what, n);
    if (vrc != -1)
        clean_code_msg(vrc, vmsg, what, n);
    if (!armed)
        cr_assert(p.rc == 0 && vrc == 0, "%s: %s", what, edb_error_last());
    if (vrc == 0)
        cr_assert_eq(p.rc, 0, "%s, fault at call %ld: verify accepted the bytes of a backup that "
                     "failed with %s", what, n, edb_err_name(p.rc));
    if (p.rc == 0 && !p.epipe && vrc != 0)
        cr_assert(armed, "verify refused a good archive");
    edb_backup_close(s);
    edb_backup_end(bk);
    world_check(w, what, n);
}

Test(backup_faults, pipe_into_verify, .timeout = 300)
{
    world w;
    world_init(&w);
    fault_loop(&w, scen_pipe, "backup through a pipe");
    world_fini(&w, "backup_faults::pipe_into_verify");
}

/* ---- the library's file writer: edb_backup_save() ---- */

/* Mappings of the database's data.mdb in this process (LMDB's own, and the
 * zero-copy writer's while a save runs). */
static int
data_maps(const world *w)
{
    char want[600], line[1024];
    snprintf(want, sizeof want, "%s/db/data.mdb", w->dir);
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strstr(line, want) != NULL)
            n++;
    fclose(f);
    return n;
}

static void
scen_save(world *w, const char *what, long n, bool armed)
{
    char path[600];
    snprintf(path, sizeof path, "%s/save.edbk", w->dir);
    int maps = data_maps(w);                    /* libc only: not a counted call */
    edb_backup *bk = NULL;
    int rc = edb_backup_begin(&bk, w->env, NULL);
    if (rc == 0)
        rc = edb_backup_save(bk, path, 0, NULL, NULL);
    edb__fault_disarm();
    clean_code(rc, what, n);
    if (!armed)
        cr_assert_eq(rc, 0, "%s: %s", what, edb_error_last());
    edb_backup_end(bk);
    struct stat st;
    bool present = lstat(path, &st) == 0;
    if (rc == 0) {
        cr_assert(present, "%s, fault at call %ld: saved, but no file", what, n);
        cr_assert_eq(st.st_mode & 0777, 0600);
        edb_backup_source src = { .path = path };
        cr_assert_eq(edb_backup_verify(NULL, &src, 1, NULL, NULL), 0, "%s, fault at call %ld: "
                     "the saved archive does not verify: %s", what, n, edb_error_last());
        unlink(path);
    } else {
        cr_assert(!present, "%s, fault at call %ld: save failed (%s) but left a file at the "
                  "archive's name", what, n, edb_err_name(rc));
    }
    /* Nothing else beside it, not even the temporary file. */
    DIR *d = opendir(w->dir);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        cr_assert(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
                  strcmp(e->d_name, "db") == 0, "%s, fault at call %ld: '%s' left behind", what,
                  n, e->d_name);
    closedir(d);
    /* The zero-copy map goes with the stream's last reference (the copier's,
     * possibly a moment after the save returned). */
    for (int i = 0; i < 1000 && data_maps(w) != maps; i++)
        bk_sleep_ms(2);
    cr_assert_eq(data_maps(w), maps, "%s, fault at call %ld: a map of data.mdb was left behind",
                 what, n);
    world_check(w, what, n);
}

Test(backup_faults, save_to_a_file, .timeout = 300)
{
    world w;
    world_init(&w);
    fault_loop(&w, scen_save, "edb_backup_save");
    world_fini(&w, "backup_faults::save_to_a_file");
}

/* ---- the library's descriptor writer: edb_backup_write_fd() into a pipe ---- */

typedef struct vside {
    int fd;
    int rc;
    char msg[512];          /* the verify thread's error detail */
} vside;

static void *
verify_main(void *arg)
{
    vside *v = arg;
    edb_backup_source src = { .path = NULL, .fd = v->fd, .name = "pipe" };
    v->rc = edb_backup_verify(NULL, &src, 1, NULL, NULL);
    snprintf(v->msg, sizeof v->msg, "%s", edb_error_last());
    close(v->fd);           /* a writer still writing gets EPIPE */
    return NULL;
}

static void
scen_write_fd(world *w, const char *what, long n, bool armed)
{
    int maps = data_maps(w);
    edb_backup *bk = NULL;
    int rc = edb_backup_begin(&bk, w->env, NULL);
    vside v = { -1, -1, "" };
    if (rc == 0) {
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        v.fd = fds[0];
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, verify_main, &v), 0);
        /* SIGPIPE is the library's to block: if it did not, this process dies here. */
        rc = edb_backup_write_fd(bk, fds[1], NULL, NULL);
        close(fds[1]);
        cr_assert_eq(pthread_join(t, NULL), 0);
    }
    edb__fault_disarm();
    clean_code(rc, what, n);
    if (v.rc != -1)
        clean_code_msg(v.rc, v.msg, what, n);
    if (!armed)
        cr_assert(rc == 0 && v.rc == 0, "%s: %s", what, edb_error_last());
    if (v.rc == 0)
        cr_assert_eq(rc, 0, "%s, fault at call %ld: verify accepted the output of a write that "
                     "failed with %s", what, n, edb_err_name(rc));
    edb_backup_end(bk);
    for (int i = 0; i < 1000 && data_maps(w) != maps; i++)
        bk_sleep_ms(2);
    cr_assert_eq(data_maps(w), maps, "%s, fault at call %ld: a map of data.mdb was left behind",
                 what, n);
    world_check(w, what, n);
}

Test(backup_faults, write_fd_into_a_pipe, .timeout = 300)
{
    world w;
    world_init(&w);
    fault_loop(&w, scen_write_fd, "edb_backup_write_fd");
    world_fini(&w, "backup_faults::write_fd_into_a_pipe");
}

/* ---- verify and restore from a file ---- */

static char g_archive[600];  /* a good archive of the world, written once */
static char g_target[600];

static void
make_archive(world *w)
{
    edb_backup *bk;
    edb_backup_stream *s;
    bk_buf out = { 0 };
    OK(edb_backup_begin(&bk, w->env, NULL));
    OK(edb_backup_open(&s, bk));
    OK(bk_read_all(s, &out, 65536));
    edb_backup_close(s);
    edb_backup_end(bk);
    snprintf(g_archive, sizeof g_archive, "%s/full.edbk", w->dir);
    int fd = open(g_archive, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, out.p, out.n), (ssize_t)out.n);
    close(fd);
    free(out.p);
    snprintf(g_target, sizeof g_target, "%s/restored", w->dir);
}

static void
scen_verify(world *w, const char *what, long n, bool armed)
{
    edb_backup_source src = { .path = g_archive };
    edb_backup_info info;
    memset(&info, 0xab, sizeof info);
    int rc = edb_backup_verify(&info, &src, 1, NULL, NULL);
    edb__fault_disarm();
    clean_code(rc, what, n);
    if (!armed)
        cr_assert_eq(rc, 0, "%s: %s", what, edb_error_last());
    if (rc == 0)
        cr_assert_eq(info.archives, 1);
    /* A once-only EINTR or short read must be absorbed by the read loops. */
    world_check(w, what, n);
}

Test(verify_faults, archive_file, .timeout = 300)
{
    world w;
    world_init(&w);
    make_archive(&w);
    fault_loop(&w, scen_verify, "verify");
    world_fini(&w, "verify_faults::archive_file");
}

/* Entries of the world's directory: the source, the archive, and the target
 * only when @with_target; never a temporary directory, except after a
 * persistent fault (@persistent), which fails restore's own clean-up calls as
 * well: the leftover then has the temporary name, never the target's, and is
 * removed here. */
static void
expect_entries(world *w, bool with_target, bool persistent, const char *what, long n)
{
    DIR *d = opendir(w->dir);
    cr_assert_not_null(d);
    struct dirent *e;
    int seen_target = 0;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 || strcmp(nm, "db") == 0 ||
            strcmp(nm, "full.edbk") == 0)
            continue;
        if (strcmp(nm, "restored") == 0) {
            seen_target = 1;
            continue;
        }
        if (persistent && strncmp(nm, ".restored.restore-", 18) == 0) {
            char path[900];
            snprintf(path, sizeof path, "%s/%s", w->dir, nm);
            bk_rm_tree(path);
            continue;
        }
        cr_assert_fail("%s, fault at call %ld: '%s' left beside the target", what, n, nm);
    }
    closedir(d);
    cr_assert_eq(seen_target, with_target, "%s, fault at call %ld: target %s", what, n,
                 with_target ? "missing after success" : "present after failure");
}

static void
scen_restore(world *w, const char *what, long n, bool armed)
{
    edb_backup_source src = { .path = g_archive };
    int rc = edb_backup_restore(NULL, g_target, &src, 1, 0);
    bool persistent = strstr(what, "persistent") != NULL;
    edb__fault_disarm();
    clean_code(rc, what, n);
    if (!armed)
        cr_assert_eq(rc, 0, "%s: %s", what, edb_error_last());
    struct stat st;
    bool present = lstat(g_target, &st) == 0;
    /* The one failure allowed after the rename: the parent's fsync.  The
     * database is then in place and whole; anything else leaves nothing. */
    bool late = rc != 0 && strstr(edb_error_last(), "fsync") != NULL && present;
    if (rc == 0 || late) {
        expect_entries(w, true, persistent, what, n);
        uint64_t count, txnid;
        uint64_t dg = bk_digest_restored(g_target, &count, &txnid);
        cr_assert_eq(dg, w->digest, "%s, fault at call %ld: restored data differs", what, n);
        cr_assert_eq(count, w->count);
        char path[700];
        snprintf(path, sizeof path, "%s/data.mdb", g_target);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0600, "data.mdb mode %o", st.st_mode & 0777);
        bk_rm_tree(g_target);
    } else {
        expect_entries(w, false, persistent, what, n);
    }
    world_check(w, what, n);
}

Test(restore_faults, archive_file, .timeout = 300)
{
    world w;
    world_init(&w);
    make_archive(&w);
    fault_loop(&w, scen_restore, "restore");
    world_fini(&w, "restore_faults::archive_file");
}

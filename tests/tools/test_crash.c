/*
 * test_crash.c: SIGKILL writers, `dbtool backup` and `dbtool restore` at
 * random moments, many times (TESTING.md "Crashes"), and check after each:
 * - every commit a writer acknowledged before it died is in the database
 *   (the writer reports each id on a pipe after edb's commit returned);
 * - a killed backup to a file left nothing at all (it writes an unnamed
 *   O_TMPFILE file until complete; where that is refused, what it left under
 *   a temporary name is refused by verify and by restore); a killed backup
 *   to standard output left a partial stream, refused by verify and restore;
 * - a killed restore left its target absent or complete (exactly the
 *   archive's data, or with --force exactly the old database), never half;
 * - reader slots of killed processes are cleared when the database is next
 *   opened (mdb_reader_list shows no slot of a dead pid after edb_env_open).
 *
 * Kill moments are drawn over 1.2 to 1.5 times the duration of an undisturbed
 * run, and the window widens by a quarter after 8 kills in a row.
 * Each test is bounded in time (about 15 s on two loaded cores) and prints
 * how many processes it killed and in which state it found them.  The seed
 * is printed; EDB_CRASH_SEED replays one.  Directories are on /dev/shm when
 * there is one (durable commits fsync there for free; a SIGKILL does not lose
 * the page cache, so durability across process death is what is tested).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "edb.h"
#include "edb_backup.h"
#include "env.h"

#define DATA_DB "edb.records"
#define BUDGET_MS_BASE 15000u
/* Under valgrind (tests/valgrind.sh sets EDB_TEST_SLOW) the test process and
 * its forked writers run many times slower: the writers' kill windows stretch
 * by that factor and each test's time budget by 4, so the same counts of
 * kills are reached; the checks themselves do not change. */
static unsigned
slow_factor(void)
{
    const char *e = getenv("EDB_TEST_SLOW");
    return e != NULL && atoi(e) > 0 ? (unsigned)atoi(e) : 1;
}
#define BUDGET_MS (BUDGET_MS_BASE * (slow_factor() > 1 ? 4u : 1u))

/* ---- small helpers ---- */

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
sleep_us(unsigned us)
{
    struct timespec ts = { us / 1000000u, (long)(us % 1000000u) * 1000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t rng;

static uint64_t
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
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

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static void
rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *
tmpdir(void)
{
    struct stat st;
    char *d = strdup(stat("/dev/shm", &st) == 0 && access("/dev/shm", W_OK) == 0
                     ? "/dev/shm/edb-crash-XXXXXX" : "/tmp/edb-crash-XXXXXX");
    cr_assert_not_null(mkdtemp(d));
    return d;
}

static const char *
dbtool_path(void)
{
    static char path[1024];
    const char *b = getenv("top_builddir");
    snprintf(path, sizeof path, "%s/dbtool", b && *b ? b : ".");
    cr_assert_eq(access(path, X_OK), 0, "no dbtool at %s (run from the build dir)", path);
    return path;
}

/* The database: an edb env whose pool DB of table slot 0 holds raw records
 * (key: big-endian id, value: deterministic bytes). */
static edb_env *
env_open(const char *db, bool nosync)
{
    edb_env_opts o = { .max_tables = 2, .flags = nosync ? EDB_ENV_NOSYNC : 0,
                       .map_size = 1ull << 30 };
    edb_env *env = NULL;
    int rc = edb_env_open(&env, db, &o);
    cr_assert_eq(rc, 0, "edb_env_open %s: %s", db, edb_error_last());
    return env;
}

static MDB_dbi
data_dbi(MDB_env *m, MDB_txn *t)
{
    MDB_dbi d;
    int rc = mdb_dbi_open(t, DATA_DB, 0, &d);
    if (rc != 0) {
        fprintf(stderr, "mdb_dbi_open: %s\n", mdb_strerror(rc));
        _exit(9);
    }
    (void)m;
    return d;
}

static size_t
fill(uint8_t *buf, uint64_t k)
{
    size_t len = 40 + (size_t)(k * 2654435761u % 1500);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(k * 31 + i);
    return len;
}

/* Put ids [from, from + n) in one txn. */
static int
put_range(MDB_env *m, uint64_t from, unsigned n)
{
    MDB_txn *t;
    int rc = mdb_txn_begin(m, NULL, 0, &t);
    if (rc)
        return rc;
    MDB_dbi d = data_dbi(m, t);
    uint8_t buf[2048];
    for (unsigned i = 0; i < n && rc == 0; i++) {
        uint64_t id = from + i, k = __builtin_bswap64(id);
        MDB_val key = { 8, &k }, val = { fill(buf, id), buf };
        rc = mdb_put(t, d, &key, &val, 0);
    }
    if (rc) {
        mdb_txn_abort(t);
        return rc;
    }
    return mdb_txn_commit(t);
}

/* Digest and count of the data DB of a database directory opened raw. */
static uint64_t
digest_dir(const char *dir, uint64_t *count)
{
    MDB_env *m;
    cr_assert_eq(mdb_env_create(&m), 0);
    mdb_env_set_maxdbs(m, 64);
    mdb_env_set_mapsize(m, 1ull << 30);
    int rc = mdb_env_open(m, dir, MDB_RDONLY | MDB_NOLOCK, 0600);
    cr_assert_eq(rc, 0, "open %s: %s", dir, mdb_strerror(rc));
    MDB_txn *t;
    cr_assert_eq(mdb_txn_begin(m, NULL, MDB_RDONLY, &t), 0);
    MDB_dbi d;
    uint64_t h = 1469598103934665603ull;
    *count = 0;
    if (mdb_dbi_open(t, DATA_DB, 0, &d) == 0) {
        MDB_cursor *c;
        cr_assert_eq(mdb_cursor_open(t, d, &c), 0);
        MDB_val k, v;
        while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
            const uint8_t *p = k.mv_data;
            for (size_t i = 0; i < k.mv_size; i++)
                h = (h ^ p[i]) * 1099511628211ull;
            p = v.mv_data;
            for (size_t i = 0; i < v.mv_size; i++)
                h = (h ^ p[i]) * 1099511628211ull;
            (*count)++;
        }
        mdb_cursor_close(c);
    }
    mdb_txn_abort(t);
    mdb_env_close(m);
    return h;
}

/* ---- reader slots ---- */

typedef struct slots {
    int n;
    pid_t pid[64];
} slots;

static int
slot_line(const char *msg, void *ctx)
{
    slots *s = ctx;
    long pid;
    if (sscanf(msg, "%ld", &pid) == 1 && s->n < 64)
        s->pid[s->n++] = (pid_t)pid;
    return 0;
}

/* Slots of @pid in the lock table of @db, seen without clearing anything
 * (a raw open; somebody else must hold the env, or LMDB resets the table). */
static int
slots_of(const char *db, pid_t pid)
{
    MDB_env *m;
    cr_assert_eq(mdb_env_create(&m), 0);
    mdb_env_set_maxdbs(m, 64);
    mdb_env_set_mapsize(m, 1ull << 30); /* 1 GiB, not the 64 GiB the file records: valgrind cannot map that (tests/valgrind.sh) */
    int rc = mdb_env_open(m, db, MDB_RDONLY | MDB_NOTLS, 0600);
    cr_assert_eq(rc, 0, "%s", mdb_strerror(rc));
    slots s = { 0 };
    mdb_reader_list(m, slot_line, &s);
    mdb_env_close(m);
    int n = 0;
    for (int i = 0; i < s.n; i++)
        n += s.pid[i] == pid;
    return n;
}

/* ---- processes ---- */

/* Run dbtool with @argv in a child (output to /dev/null). */
static pid_t
spawn_dbtool(const char *const *argv)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        execv(dbtool_path(), (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* spawn_dbtool with its standard output going to the file @out (created). */
static pid_t
spawn_dbtool_to(const char *const *argv, const char *out)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(null, 2);
        execv(dbtool_path(), (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* SIGKILL @pid after @us microseconds unless it exits first.  Returns true
 * when it was killed, false when it had finished (status in *st). */
static bool
kill_after(pid_t pid, unsigned us, int *st)
{
    sleep_us(us);
    pid_t r = waitpid(pid, st, WNOHANG);
    if (r == pid)
        return false;
    kill(pid, SIGKILL);
    cr_assert_eq(waitpid(pid, st, 0), pid);
    return WIFSIGNALED(*st) && WTERMSIG(*st) == SIGKILL;
}

/* A writer child: commits ids from @first on, in txns of 1..8, and writes the
 * last id of each txn to @fd after the commit returned.  Never returns. */
static void
writer_main(const char *db, uint64_t first, int fd, bool hold_reader)
{
    /* Die with the test: a failed assertion must not leave a writer behind
     * (it would hold the test's output pipe open). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(7);
    edb_env *env = NULL;
    edb_env_opts o = { .max_tables = 2, .map_size = 1ull << 30 };
    if (edb_env_open(&env, db, &o) != 0)
        _exit(3);
    MDB_env *m = edb__env_mdb(env);
    MDB_txn *rt = NULL;
    if (hold_reader && mdb_txn_begin(m, NULL, MDB_RDONLY, &rt) != 0)
        _exit(4);
    uint64_t id = first;
    for (;;) {
        unsigned n = 1 + (unsigned)(id % 8);
        if (put_range(m, id, n) != 0)
            _exit(5);
        id += n;
        uint64_t ack = id - 1;
        if (write(fd, &ack, sizeof ack) != (ssize_t)sizeof ack)
            _exit(6);
    }
}

/* Microseconds a dbtool run takes when nobody kills it (the kill moments are
 * drawn over 0 .. 1.2 times that, so that some runs finish). */
static unsigned
calibrate(const char *const *argv, void (*after)(void))
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int st;
    pid_t pid = spawn_dbtool(argv);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "dbtool %s failed: %d", argv[1], st);
    if (after)
        after();
    long us = (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000;
    return (unsigned)(us < 1000 ? 1000 : us);
}

typedef struct stats {
    unsigned killed, finished, after_rename, whole_streams;
    unsigned stale_seen, stale_cleared;
} stats;

/* ---- writers ---- */

Test(crash, killed_writers_lose_no_acknowledged_commit, .timeout = 60)
{
    seed("crash::killed_writers");
    char *dir = tmpdir();
    char db[600];
    snprintf(db, sizeof db, "%s/db", dir);
    edb_env *env = env_open(db, false);
    cr_assert_eq(put_range(edb__env_mdb(env), 1, 1), 0);
    edb_env_close(env);

    stats s = { 0 };
    uint64_t next = 2, acked_total = 0;
    uint64_t end = now_ms() + BUDGET_MS;
    for (unsigned round = 0; round < 200 && now_ms() < end; round++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        bool hold = round % 3 == 0;     /* sometimes with a read txn open: a stale slot */
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(p[0]);
            writer_main(db, next, p[1], hold);
        }
        close(p[1]);
        int st;
        bool killed = kill_after(pid, (2000 + (unsigned)(rnd() % 40000)) * slow_factor(), &st);
        cr_assert(killed, "the writer exited by itself (status %d)", st);
        s.killed++;
        uint64_t last = next - 1, ack;
        ssize_t r;
        while ((r = read(p[0], &ack, sizeof ack)) == (ssize_t)sizeof ack) {
            cr_assert_gt(ack, last, "acks out of order");
            last = ack;
        }
        close(p[0]);
        acked_total += last - (next - 1);

        /* A fresh opener clears the dead writer's slot, and sees every ack. */
        env = env_open(db, false);
        MDB_env *m = edb__env_mdb(env);
        slots sl = { 0 };
        mdb_reader_list(m, slot_line, &sl);
        for (int i = 0; i < sl.n; i++)
            cr_assert_neq(sl.pid[i], pid, "a slot of the killed writer survived edb_env_open");
        MDB_txn *t;
        cr_assert_eq(mdb_txn_begin(m, NULL, MDB_RDONLY, &t), 0);
        MDB_dbi d = data_dbi(m, t);
        uint8_t want[2048];
        for (uint64_t id = 1; id <= last; id++) {
            uint64_t k = __builtin_bswap64(id);
            MDB_val key = { 8, &k }, val;
            int rc = mdb_get(t, d, &key, &val);
            cr_assert_eq(rc, 0, "round %u: acknowledged id %llu is missing (last ack %llu)", round,
                         (unsigned long long)id, (unsigned long long)last);
            size_t n = fill(want, id);
            cr_assert(val.mv_size == n && memcmp(val.mv_data, want, n) == 0,
                      "id %llu has the wrong value", (unsigned long long)id);
        }
        /* Whatever committed past the last ack is there too: continue after it. */
        MDB_cursor *c;
        cr_assert_eq(mdb_cursor_open(t, d, &c), 0);
        MDB_val k, v;
        cr_assert_eq(mdb_cursor_get(c, &k, &v, MDB_LAST), 0);
        uint64_t top;
        memcpy(&top, k.mv_data, 8);
        next = __builtin_bswap64(top) + 1;
        mdb_cursor_close(c);
        mdb_txn_abort(t);
        edb_env_close(env);
    }
    fprintf(stderr, "crash::killed_writers: %u writers killed, %llu commits acknowledged and "
            "found\n", s.killed, (unsigned long long)acked_total);
    cr_assert_geq(s.killed, 5);
    cr_assert_gt(acked_total, 0);
    rm_tree(dir);
    free(dir);
}

/* ---- backups ---- */

/* Files in @dir whose name starts with @prefix or with "." @prefix (a hidden
 * temporary name), other than @prefix itself. */
static int
list_prefixed(const char *dir, const char *prefix, char out[][700], int max)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    int n = 0;
    size_t pl = strlen(prefix);
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name[0] == '.' && prefix[0] != '.' ? e->d_name + 1 : e->d_name;
        if (strncmp(nm, prefix, pl) == 0 && (nm != e->d_name || nm[pl] != '\0') && n < max)
            snprintf(out[n++], 700, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    return n;
}

Test(crash, killed_backups_leave_nothing_that_verifies, .timeout = 60)
{
    seed("crash::killed_backups");
    char *dir = tmpdir();
    char db[600], arch[600], target[600];
    snprintf(db, sizeof db, "%s/db", dir);
    snprintf(arch, sizeof arch, "%s/b.edbk", dir);
    snprintf(target, sizeof target, "%s/restored", dir);
    char part[700];
    snprintf(part, sizeof part, "%s/b.edbk.part", dir);
    int probe = open(dir, O_WRONLY | O_TMPFILE, 0600);
    bool unnamed_ok = probe >= 0;               /* else the named temporary fallback */
    if (probe >= 0)
        close(probe);
    edb_env *env = env_open(db, true);
    for (uint64_t id = 1; id < 12000; id += 400)
        cr_assert_eq(put_range(edb__env_mdb(env), id, 400), 0);
    edb_env_close(env);

    /* A writer keeps committing (and keeps the env open, so that the lock
     * table of a killed backup is seen before anybody clears it). */
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t wpid = fork();
    cr_assert_geq(wpid, 0);
    if (wpid == 0) {
        close(p[0]);
        writer_main(db, 100000, p[1], false);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);   /* acks are drained and ignored here */

    const char *cal[] = { "dbtool", "backup", db, arch, "--quiet", NULL };
    unsigned span = calibrate(cal, NULL) * 3 / 2, run_of_kills = 0;
    unlink(arch);
    stats s = { 0 };
    unsigned refused = 0;
    uint64_t end = now_ms() + BUDGET_MS;
    for (unsigned round = 0; round < 200 && now_ms() < end; round++) {
        uint64_t junk[512];
        while (read(p[0], junk, sizeof junk) > 0) {
        }
        /* Odd rounds write the archive to standard output, redirected to
         * @part: there a kill leaves a partial stream, which verify and
         * restore must refuse. */
        bool to_stdout = round % 2 == 1;
        const char *argv[] = { "dbtool", "backup", db, to_stdout ? "-" : arch, "--quiet", NULL };
        int st;
        pid_t pid = to_stdout ? spawn_dbtool_to(argv, part) : spawn_dbtool(argv);
        bool killed = kill_after(pid, (unsigned)(rnd() % span), &st);
        /* The machine may be slower than at calibration: widen the window
         * when nothing finishes, so that late moments stay covered. */
        run_of_kills = killed ? run_of_kills + 1 : 0;
        if (run_of_kills >= 8) {
            span = span / 4 * 5;
            run_of_kills = 0;
        }
        struct stat sb;
        char left[8][700];
        char pre[700];
        snprintf(pre, sizeof pre, "b.edbk");
        int nleft = list_prefixed(dir, pre, left, 8);
        if (!killed) {
            s.finished++;
            cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "dbtool backup failed: %d", st);
            edb_backup_source src = { .path = to_stdout ? part : arch };
            cr_assert_eq(edb_backup_verify(NULL, &src, 1, NULL, NULL), 0, "%s", edb_error_last());
            cr_assert_eq(nleft, to_stdout, "a finished backup left '%s'", left[0]);
            unlink(part);
        } else {
            /* A file is written unnamed (O_TMPFILE) until it is complete:
             * a killed backup to a file leaves no file at all. */
            if (!to_stdout && unnamed_ok)
                cr_assert_eq(nleft, 0, "round %u: a killed backup to a file left '%s'", round, left[0]);
            s.killed++;
            /* Killed after its rename (in the directory's fsync or on its way
             * out): the archive is there and must be whole.  Before: nothing. */
            if (stat(arch, &sb) == 0) {
                edb_backup_source src = { .path = arch };
                cr_assert_eq(edb_backup_verify(NULL, &src, 1, NULL, NULL), 0, "round %u: a killed "
                             "backup left a file at the archive's name that does not verify: %s",
                             round, edb_error_last());
                s.after_rename++;
            }
            for (int i = 0; i < nleft; i++) {
                edb_backup_source src = { .path = left[i] };
                int rc = edb_backup_verify(NULL, &src, 1, NULL, NULL);
                if (rc == 0 && to_stdout && strcmp(left[i], part) == 0) {
                    /* Killed after its last write: the stream is whole. */
                    s.whole_streams++;
                    unlink(left[i]);
                    continue;
                }
                cr_assert_neq(rc, 0, "verify accepted '%s', left by a killed backup", left[i]);
                rc = edb_backup_restore(NULL, target, &src, 1, 0);
                cr_assert_neq(rc, 0, "restore accepted '%s', left by a killed backup", left[i]);
                cr_assert_neq(lstat(target, &sb), 0, "a refused restore created the target");
                refused++;
                unlink(left[i]);
            }
            /* Its snapshot's reader slot: stale now (the writer holds the env),
             * gone once somebody opens the database. */
            int stale = slots_of(db, pid);
            s.stale_seen += stale > 0;
            env = env_open(db, true);
            edb_env_close(env);
            cr_assert_eq(slots_of(db, pid), 0, "round %u: a slot of the killed backup (pid %d) "
                         "survived edb_env_open", round, (int)pid);
            s.stale_cleared += stale > 0;
        }
        unlink(arch);
    }
    kill(wpid, SIGKILL);
    waitpid(wpid, NULL, 0);
    close(p[0]);
    fprintf(stderr, "crash::killed_backups: kill window up to %u us; %u dbtool backup killed (%u after the "
            "rename: archive whole; %u streams whole), %u finished, %u partial archives refused by verify "
            "and restore, %u stale reader slots seen and cleared\n", span, s.killed, s.after_rename,
            s.whole_streams, s.finished, refused, s.stale_cleared);
    cr_assert_geq(s.killed, 5);
    if (s.killed >= 10)
        cr_assert_gt(refused, 0, "%u backups killed and not one left a partial archive: the "
                     "partial streams are no longer found", s.killed);
    rm_tree(dir);
    free(dir);
}

/* ---- restores ---- */

/* Would the next restore's sweep remove this leftover (backup/restore_tmp.c)?
 * Yes when it holds restore.lock (and at most data.mdb), or exactly data.mdb
 * and lock.mdb (an old database a killed --force restore swapped out); no for
 * a directory killed in the instants before its marker existed or after it
 * was unlinked.  (Nobody holds their locks here: their restores are dead.) */
static bool
sweepable(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return false;
    bool mark = false, data = false, lock = false, other = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (strcmp(e->d_name, "restore.lock") == 0)
            mark = true;
        else if (strcmp(e->d_name, "data.mdb") == 0)
            data = true;
        else if (strcmp(e->d_name, "lock.mdb") == 0)
            lock = true;
        else
            other = true;
    }
    closedir(d);
    return !other && ((mark && !lock) || (!mark && data && lock));
}

Test(crash, killed_restores_leave_all_or_nothing, .timeout = 60)
{
    seed("crash::killed_restores");
    /* dbtool restore works in a child that a SIGKILL of dbtool kills through
     * PR_SET_PDEATHSIG, a moment later: orphaned, it becomes ours, and each
     * round reaps it before looking, so that a temporary directory still
     * locked by a dying child is not taken for one a finished restore left
     * (the sweep rightly leaves a live run's directory alone). */
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    char *dir = tmpdir();
    char db[600], arch[600], target[600], old[600];
    snprintf(db, sizeof db, "%s/db", dir);
    snprintf(arch, sizeof arch, "%s/b.edbk", dir);
    snprintf(target, sizeof target, "%s/restored", dir);
    snprintf(old, sizeof old, "%s/old", dir);
    edb_env *env = env_open(db, true);
    for (uint64_t id = 1; id < 12000; id += 400)
        cr_assert_eq(put_range(edb__env_mdb(env), id, 400), 0);
    edb_env_close(env);
    uint64_t n_new, n_old;
    uint64_t d_new = digest_dir(db, &n_new);
    {
        const char *argv[] = { "dbtool", "backup", db, arch, "--quiet", NULL };
        int st;
        pid_t pid = spawn_dbtool(argv);
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    /* An older, different database for the --force rounds. */
    env = env_open(old, true);
    cr_assert_eq(put_range(edb__env_mdb(env), 1, 300), 0);
    edb_env_close(env);
    uint64_t d_old = digest_dir(old, &n_old);
    cr_assert_neq(d_old, d_new);

    const char *cal[] = { "dbtool", "restore", target, arch, NULL };
    unsigned span = calibrate(cal, NULL) * 6 / 5, run_of_kills = 0;
    rm_tree(target);
    unsigned killed = 0, finished = 0, absent = 0, complete = 0, kept_old = 0, temps = 0;
    unsigned swept = 0, unmarked = 0;
    /* leftovers of killed restores, kept from round to round: the next
     * restore to the target must remove each sweepable one */
    char prev[8][700];
    int nprev = 0;
    uint64_t end = now_ms() + BUDGET_MS;
    for (unsigned round = 0; round < 200 && now_ms() < end; round++) {
        bool force = round % 2 == 1;
        if (force) {
            char cmd[1400];
            snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", old, target);
            cr_assert_eq(system(cmd), 0);
            char lock[700];
            snprintf(lock, sizeof lock, "%s/lock.mdb", target);
            unlink(lock);
        }
        const char *argv[] = { "dbtool", "restore", target, arch, force ? "--force" : NULL, NULL };
        int st;
        pid_t pid = spawn_dbtool(argv);
        bool k = kill_after(pid, (unsigned)(rnd() % span), &st);
        run_of_kills = k ? run_of_kills + 1 : 0;
        if (run_of_kills >= 8) {
            span = span / 4 * 5;
            run_of_kills = 0;
        }
        if (k) {
            killed++;
            while (waitpid(-1, NULL, 0) > 0)
                ;
        } else {
            finished++;
            cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "dbtool restore failed: %d", st);
        }
        struct stat sb;
        if (lstat(target, &sb) != 0) {
            cr_assert(!force, "round %u: a killed restore --force lost the old database", round);
            cr_assert(k, "a finished restore left no target");
            absent++;
        } else {
            cr_assert(S_ISDIR(sb.st_mode));
            uint64_t n, d = digest_dir(target, &n);
            if (d == d_new && n == n_new) {
                complete++;
            } else {
                cr_assert(force && d == d_old && n == n_old, "round %u: the target is neither the "
                          "archive's database nor the old one (%llu records): half a restore",
                          round, (unsigned long long)n);
                cr_assert(k, "a finished restore --force kept the old database");
                kept_old++;
            }
        }
        /* A killed restore may leave its temporary directory (nobody is left
         * to remove it), never under the target's name.  The next restore
         * removes it (backup/restore_tmp.c): after a finished one only
         * unsweepable leftovers of earlier kills may remain. */
        char left[8][700];
        int nl = list_prefixed(dir, ".restored", left, 8);
        for (int p = 0; p < nprev; p++) {
            bool still = false;
            for (int i = 0; i < nl; i++)
                still = still || strcmp(prev[p], left[i]) == 0;
            if (!still)
                swept++;
        }
        for (int i = 0; i < nl; i++) {
            bool old_one = false;
            for (int p = 0; p < nprev; p++)
                old_one = old_one || strcmp(prev[p], left[i]) == 0;
            if (!old_one)
                temps++;
            if (!k) {
                cr_assert(old_one, "a finished restore left '%s'", left[i]);
                cr_assert(!sweepable(left[i]), "round %u: a finished restore did not remove '%s', "
                          "left by a killed one", round, left[i]);
            }
        }
        nprev = 0;
        for (int i = 0; i < nl; i++) {
            if (sweepable(left[i]) && nl < 8) {
                memcpy(prev[nprev++], left[i], sizeof prev[0]);
            } else {
                unmarked += !sweepable(left[i]);
                rm_tree(left[i]);          /* unsweepable (or too many): ours to remove */
            }
        }
        rm_tree(target);
    }
    /* One last restore, not killed, removes whatever sweepable is left. */
    {
        const char *argv[] = { "dbtool", "restore", target, arch, NULL };
        int st;
        pid_t pid = spawn_dbtool(argv);
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        char left[8][700];
        int nl = list_prefixed(dir, ".restored", left, 8);
        swept += (unsigned)nprev;
        for (int i = 0; i < nl; i++) {
            cr_assert(!sweepable(left[i]), "the last restore did not remove '%s'", left[i]);
            swept--;
            unmarked++;
            rm_tree(left[i]);
        }
    }
    fprintf(stderr, "crash::killed_restores: kill window up to %u us; %u dbtool restore killed (%u left no target, %u a "
            "complete one, %u the old database; %u temporary dirs left, %u removed by a later "
            "restore, %u unmarked ones by the test), %u finished\n", span, killed,
            absent, complete, kept_old, temps, swept, unmarked, finished);
    cr_assert(temps == 0 || swept > 0, "killed restores left %u temporary dirs and no later "
              "restore removed one", temps);
    cr_assert_geq(killed, 5);
    cr_assert_gt(finished + complete, 0, "no run got far enough to finish: the kill moments "
                 "do not cover the restore");
    rm_tree(dir);
    free(dir);
}

/* Writers keep committing during a backup: a thread of this process and a
 * forked process write all the time; their commits must advance while the
 * backup is open and while its consumer is stalled (the backup never blocks
 * a writer); the archive still restores to exactly the snapshot's data. */
#include "bk_helpers.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

typedef struct shared {
    atomic_int stop;
    atomic_int pause;          /* writers stop between commits while set */
    atomic_int paused[2];      /* 0: thread writer, 1: child process */
    atomic_ulong commits[2];
    atomic_int failed[2];      /* an LMDB error code seen by a writer */
} shared;

/* Overwrite a rolling window of keys (churn makes free pages and reuses them). */
static void
writer_loop(shared *sh, int who, MDB_env *m, MDB_dbi d)
{
    uint64_t base = who == 0 ? 100000 : 200000, v = 10;
    unsigned i = 0;
    while (!atomic_load(&sh->stop)) {
        if (atomic_load(&sh->pause)) {
            atomic_store(&sh->paused[who], 1);
            while (atomic_load(&sh->pause) && !atomic_load(&sh->stop))
                bk_sleep_ms(1);
            atomic_store(&sh->paused[who], 0);
            continue;
        }
        int rc = bk_write(m, d, base + (i % 50) * 20, 20, v++, 0);
        if (rc != 0) {
            atomic_store(&sh->failed[who], rc);
            return;
        }
        atomic_fetch_add(&sh->commits[who], 1);
        i++;
    }
}

typedef struct targ {
    shared *sh;
    edb_env *env;
} targ;

static void *
thread_writer(void *p)
{
    targ *a = p;
    writer_loop(a->sh, 0, edb__env_mdb(a->env), bk_dbi(a->env));
    return NULL;
}

static void
wait_commits(shared *sh, int who, unsigned long more, unsigned ms)
{
    unsigned long c0 = atomic_load(&sh->commits[who]);
    uint64_t end = bk_now_ms() + bk_ms(ms);
    while (atomic_load(&sh->commits[who]) < c0 + more) {
        cr_assert_eq(atomic_load(&sh->failed[who]), 0, "writer %d failed: %s", who,
                     mdb_strerror(atomic_load(&sh->failed[who])));
        cr_assert_lt(bk_now_ms(), end, "writer %d made %lu commits in %u ms, wanted %lu", who,
                     atomic_load(&sh->commits[who]) - c0, ms, more);
        bk_sleep_ms(1);
    }
}

Test(backup_writers, writers_in_this_and_another_process_never_block, .timeout = 60)
{
    char *dir = bk_tmpdir();
    edb_env *env = bk_env_open(dir);
    bk_populate(env, 3000);
    MDB_env *m = edb__env_mdb(env);

    shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(sh, MAP_FAILED);
    memset(sh, 0, sizeof *sh);

    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* The child opens its own env: nothing of the parent's LMDB state is used. */
        char path[512];
        snprintf(path, sizeof path, "%s/db", dir);
        edb_env_opts o = { .max_tables = 2, .flags = EDB_ENV_NOSYNC, .map_size = 1ull << 30 };
        edb_env *cenv = NULL;
        if (edb_env_open(&cenv, path, &o) != 0)
            _exit(2);
        writer_loop(sh, 1, edb__env_mdb(cenv), bk_dbi(cenv));
        edb_env_close(cenv);
        _exit(atomic_load(&sh->failed[1]) ? 3 : 0);
    }
    targ ta = { sh, env };
    pthread_t wt;
    cr_assert_eq(pthread_create(&wt, NULL, thread_writer, &ta), 0);
    wait_commits(sh, 0, 20, 10000);
    wait_commits(sh, 1, 20, 10000);

    /* A quiet moment to take a reference read txn at the backup's txnid. */
    atomic_store(&sh->pause, 1);
    while (!atomic_load(&sh->paused[0]) || !atomic_load(&sh->paused[1]))
        bk_sleep_ms(1);
    MDB_txn *ref;
    MDB_OK(mdb_txn_begin(m, NULL, MDB_RDONLY, &ref));
    edb_backup_opts opts = { .ring_size = 1 };    /* 2 slots: the copier waits on the consumer */
    edb_backup *bk;
    OK(edb_backup_begin(&bk, env, &opts));
    atomic_store(&sh->pause, 0);

    edb_backup_stream *s;
    OK(edb_backup_open(&s, bk));
    bk_buf b = { 0 };
    uint8_t buf[1 << 14];
    size_t n;
    OK(edb_backup_read(s, buf, sizeof buf, &n));
    bk_buf_add(&b, buf, n);

    /* Consumer stalled, ring full, copier waiting: writers go on. */
    bk_wait_ring_full(s, 10000);
    wait_commits(sh, 0, 50, 10000);
    wait_commits(sh, 1, 50, 10000);

    /* Read the rest slowly while the writers commit. */
    unsigned long c0[2] = { atomic_load(&sh->commits[0]), atomic_load(&sh->commits[1]) };
    int rc;
    unsigned reads = 0;
    for (;;) {
        rc = edb_backup_read(s, buf, sizeof buf, &n);
        if (rc != 0 || n == 0)
            break;
        bk_buf_add(&b, buf, n);
        if (++reads % 64 == 0)
            bk_sleep_ms(1);
    }
    OK(rc);
    wait_commits(sh, 0, 10, 10000);
    wait_commits(sh, 1, 10, 10000);
    cr_assert_gt(atomic_load(&sh->commits[0]), c0[0]);
    cr_assert_gt(atomic_load(&sh->commits[1]), c0[1]);

    atomic_store(&sh->stop, 1);
    pthread_join(wt, NULL);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child writer status %d", st);
    cr_assert_eq(atomic_load(&sh->failed[0]), 0);

    bk_arch a;
    bk_decode(&a, b.p, b.n);
    cr_assert_eq(a.t.txnid, mdb_txn_id(ref));
    MDB_envinfo info;
    MDB_OK(mdb_env_info(m, &info));
    cr_assert_gt(info.me_last_txnid, a.t.txnid + 100, "writers committed during the backup");
    bk_compare_pages(&a, dir);                /* the snapshot is still pinned by bk */
    char rdir[600];
    snprintf(rdir, sizeof rdir, "%s/restored", dir);
    bk_restore(&a, rdir);
    uint64_t c1, c2, id;
    uint64_t d1 = bk_digest_txn(ref, BK_DATA_DB, &c1);
    uint64_t d2 = bk_digest_restored(rdir, &c2, &id);
    cr_assert_eq(id, a.t.txnid);
    cr_assert_eq(c1, c2);
    cr_assert_eq(d1, d2, "restored data is not the snapshot's");

    mdb_txn_abort(ref);
    bk_arch_free(&a);
    free(b.p);
    edb_backup_close(s);
    edb_backup_end(bk);
    munmap(sh, sizeof *sh);
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
    bk_assert_no_objects(3000);
    BK_LEAK_CHECK();
}

/* Many snapshots taken while two writers commit as fast as they can: every
 * meta capture is consistent (the archive decodes, its trailer's txnid is the
 * snapshot's, every carried page equals data.mdb's while pinned). */
Test(backup_writers, snapshots_under_racing_commits_are_consistent, .timeout = 60)
{
    char *dir = bk_tmpdir();
    edb_env *env = bk_env_open(dir);
    bk_populate(env, 500);
    shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(sh, MAP_FAILED);
    memset(sh, 0, sizeof *sh);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char path[512];
        snprintf(path, sizeof path, "%s/db", dir);
        edb_env_opts o = { .max_tables = 2, .flags = EDB_ENV_NOSYNC, .map_size = 1ull << 30 };
        edb_env *cenv = NULL;
        if (edb_env_open(&cenv, path, &o) != 0)
            _exit(2);
        writer_loop(sh, 1, edb__env_mdb(cenv), bk_dbi(cenv));
        edb_env_close(cenv);
        _exit(0);
    }
    targ ta = { sh, env };
    pthread_t wt;
    cr_assert_eq(pthread_create(&wt, NULL, thread_writer, &ta), 0);
    wait_commits(sh, 1, 5, 10000);
    unsigned rounds = bk_scale(40);
    uint64_t last = 0;
    for (unsigned i = 0; i < rounds; i++) {
        edb_backup *bk;
        OK(edb_backup_begin(&bk, env, NULL));
        edb_backup_stream *s;
        OK(edb_backup_open(&s, bk));
        bk_buf b = { 0 };
        OK(bk_read_all(s, &b, 1 << 16));
        bk_arch a;
        bk_decode(&a, b.p, b.n);
        cr_assert_geq(a.t.txnid, last);
        last = a.t.txnid;
        bk_compare_pages(&a, dir);
        bk_arch_free(&a);
        free(b.p);
        edb_backup_close(s);
        edb_backup_end(bk);
    }
    atomic_store(&sh->stop, 1);
    pthread_join(wt, NULL);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_eq(atomic_load(&sh->failed[0]), 0);
    munmap(sh, sizeof *sh);
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
    bk_assert_no_objects(3000);
    BK_LEAK_CHECK();
}

/* Torture: thousands of backups aborted at random points from random threads:
 * closing a stream (from the reading thread, the main thread or another),
 * edb_backup_end, edb_backup_stop and edb_env_close racing with readers that
 * read, stall or wait.  A watchdog thread aborts the process (with the
 * scenario) if one iteration takes longer than WATCHDOG_MS: a hang is a
 * failure, not a slow test.  After every iteration: every read ended with the
 * end or EDB_CANCELED, complete archives decode, copier threads are gone,
 * reader slots are released and no backup object is left.
 *
 * EDB_TEST_SCALE (percent) scales the iteration count (sanitizer builds
 * default to 10%); EDB_TORTURE_SEED fixes the seed. */
#include "bk_helpers.h"

#define WATCHDOG_MS bk_ms(10000)
#define MAX_BK 2
#define MAX_S 3

/* ---- watchdog ---- */

static pthread_mutex_t wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cv = PTHREAD_COND_INITIALIZER;
static uint64_t wd_start_ms;          /* 0: idle */
static bool wd_quit;
static char wd_what[256];

static void *
watchdog_main(void *p)
{
    (void)p;
    pthread_mutex_lock(&wd_mu);
    while (!wd_quit) {
        if (wd_start_ms != 0 && bk_now_ms() - wd_start_ms > WATCHDOG_MS) {
            fprintf(stderr, "torture watchdog: iteration hung for %u ms: %s\n", WATCHDOG_MS, wd_what);
            fflush(stderr);
            abort();
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&wd_cv, &wd_mu, &ts);
    }
    pthread_mutex_unlock(&wd_mu);
    return NULL;
}

static void
wd_arm(const char *what)
{
    pthread_mutex_lock(&wd_mu);
    snprintf(wd_what, sizeof wd_what, "%s", what);
    wd_start_ms = bk_now_ms();
    pthread_mutex_unlock(&wd_mu);
}

static void
wd_disarm(void)
{
    pthread_mutex_lock(&wd_mu);
    wd_start_ms = 0;
    pthread_mutex_unlock(&wd_mu);
}

/* ---- random ---- */

static uint64_t rng;

static uint32_t
rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* ---- readers ---- */

typedef struct rd {
    edb_backup_stream *s;
    pthread_t t;
    size_t chunk;
    unsigned stall_every;      /* sleep 1 ms every n reads (0: never) */
    bool close_self;           /* close its own stream after a few reads */
    unsigned close_after;
    bool keep;                 /* keep the bytes to decode */
    bk_buf b;
    int rc;
    bool eof, closed_self;
} rd;

static void *
rd_main(void *p)
{
    rd *r = p;
    uint8_t *buf = malloc(r->chunk);
    unsigned reads = 0;
    for (;;) {
        size_t n = 0;
        r->rc = edb_backup_read(r->s, buf, r->chunk, &n);
        if (r->rc != 0)
            break;
        if (n == 0) {
            r->eof = true;
            break;
        }
        if (r->keep)
            bk_buf_add(&r->b, buf, n);
        reads++;
        if (r->stall_every && reads % r->stall_every == 0)
            bk_sleep_ms(1);
        if (r->close_self && reads == r->close_after) {
            edb_backup_close(r->s);
            r->closed_self = true;
            /* Reading a closed handle is safe: it is looked up, not dereferenced. */
            r->rc = edb_backup_read(r->s, buf, r->chunk, &n);
            break;
        }
    }
    free(buf);
    return NULL;
}

/* ---- actions from another thread ---- */

typedef struct actor {
    pthread_t t;
    unsigned delay_us;
    int what;                  /* 0 close stream, 1 end backup, 2 stop, 3 env close */
    edb_backup_stream *s;
    edb_backup *bk;
    edb_env *env;
} actor;

static void
act(actor *a)
{
    switch (a->what) {
    case 0: edb_backup_close(a->s); break;
    case 1: edb_backup_end(a->bk); break;
    case 2: edb_backup_stop(a->env); break;
    case 3: edb_env_close(a->env); break;
    }
}

static void *
actor_main(void *p)
{
    actor *a = p;
    if (a->delay_us) {
        struct timespec ts = { 0, (long)a->delay_us * 1000 };
        nanosleep(&ts, NULL);
    }
    act(a);
    return NULL;
}

static const char *what_name[] = { "close", "end", "stop", "env-close" };

Test(backup_torture, random_aborts_from_random_threads, .timeout = 240)
{
    const char *seed_env = getenv("EDB_TORTURE_SEED");
    rng = seed_env ? strtoull(seed_env, NULL, 0) : (uint64_t)time(NULL) * 2654435761u;
    if (rng == 0)
        rng = 1;
    uint64_t seed = rng;
    unsigned iters = bk_scale(3000);

    char *dir = bk_tmpdir();
    edb_env *env = bk_env_open(dir);
    bk_populate(env, 400);
    int tasks = bk_tasks_baseline();
    pthread_t wd;
    cr_assert_eq(pthread_create(&wd, NULL, watchdog_main, NULL), 0);

    unsigned stats[4] = { 0 }, complete = 0, canceled = 0, decoded = 0, env_reopens = 0;
    uint64_t t_start = bk_now_ms();
    for (unsigned it = 0; it < iters; it++) {
        char what[256];
        edb_backup *bk[MAX_BK] = { 0 };
        edb_backup_stream *st[MAX_BK][MAX_S] = { { 0 } };
        rd r[MAX_BK][MAX_S];
        memset(r, 0, sizeof r);
        bool closed[MAX_BK][MAX_S] = { { false } }, ended[MAX_BK] = { false };
        unsigned nbk = 1 + rnd(MAX_BK);
        unsigned ns[MAX_BK];
        bool crawl[MAX_BK] = { false };    /* 1 byte/s: its readers never finish alone */
        int action = (int)rnd(100);
        action = action < 45 ? 0 : action < 65 ? 1 : action < 90 ? 2 : 3;
        unsigned delay_us = rnd(4) == 0 ? 0 : rnd(3000);
        bool from_actor = rnd(2) == 0;
        snprintf(what, sizeof what, "seed 0x%llx iteration %u: %u backups, %s from %s after %u us",
                 (unsigned long long)seed, it, nbk, what_name[action], from_actor ? "actor" : "main",
                 delay_us);
        wd_arm(what);

        for (unsigned b = 0; b < nbk; b++) {
            edb_backup_opts o = { 0 };
            unsigned k = rnd(8);
            o.ring_size = k < 3 ? 1 : k < 5 ? (size_t)300 << 10 : 0;
            k = rnd(10);
            o.rate_limit = k == 0 ? 1 : k == 1 ? (uint64_t)4 << 20 : 0;
            crawl[b] = o.rate_limit == 1;
            if (rnd(6) == 0)
                o.flags |= EDB_BACKUP_KEEP_FREE;
            OK(edb_backup_begin(&bk[b], env, &o));
            ns[b] = rnd(MAX_S + 1);
            for (unsigned i = 0; i < ns[b]; i++) {
                OK(edb_backup_open(&st[b][i], bk[b]));
                if (rnd(5) == 0)
                    continue;                       /* an idle consumer */
                rd *x = &r[b][i];
                x->s = st[b][i];
                x->chunk = rnd(3) == 0 ? 1 + rnd(5000) : (size_t)1 << (10 + rnd(8));
                x->stall_every = rnd(3) == 0 ? 1 + rnd(20) : 0;
                x->close_self = rnd(8) == 0;
                x->close_after = 1 + rnd(10);
                x->keep = rnd(10) == 0;
                cr_assert_eq(pthread_create(&x->t, NULL, rd_main, x), 0);
            }
        }

        /* The abort. */
        unsigned tb = rnd(nbk), ts = ns[tb] ? rnd(ns[tb]) : 0;
        actor a = { .delay_us = delay_us, .what = action, .env = env, .bk = bk[tb],
                    .s = ns[tb] ? st[tb][ts] : NULL };
        if (action == 0 && a.s == NULL)
            a.what = action = 1;
        if (from_actor) {
            cr_assert_eq(pthread_create(&a.t, NULL, actor_main, &a), 0);
        } else {
            actor_main(&a);
        }
        stats[action]++;

        /* The main thread's own cleanup races with the actor: closes and ends
         * are idempotent, and handles already closed are ignored. */
        if (action == 3) {
            if (from_actor)
                pthread_join(a.t, NULL);
            env = NULL;
        } else {
            if (action == 0)
                closed[tb][ts] = true;
            if (action == 1)
                ended[tb] = true;
            for (unsigned b = 0; b < nbk; b++) {
                for (unsigned i = 0; i < ns[b]; i++) {
                    rd *x = &r[b][i];
                    /* Let this reader finish on its own first, when its run is
                     * bounded: tiny reads with a 1 ms stall every few of them take
                     * seconds over a whole archive (the watchdog fired on a reader of
                     * 11-byte reads stalling every 10: ~9 s, a test artefact, not a hang). */
                    bool bounded = x->stall_every == 0 || x->chunk >= 1024;
                    if (x->s != NULL && !x->close_self && !crawl[b] && bounded && action != 0 &&
                        rnd(2) == 0) {
                        pthread_join(x->t, NULL);
                        x->s = NULL;
                        x->t = 0;
                    }
                    if (!closed[b][i])
                        edb_backup_close(st[b][i]);
                }
                if (!ended[b] && rnd(3) != 0)
                    edb_backup_end(bk[b]);
                ended[b] = true;
            }
            if (from_actor)
                pthread_join(a.t, NULL);
            /* Ends that the coin skipped: end now (a second end is a no-op). */
            for (unsigned b = 0; b < nbk; b++)
                edb_backup_end(bk[b]);
        }

        for (unsigned b = 0; b < nbk; b++) {
            for (unsigned i = 0; i < ns[b]; i++) {
                rd *x = &r[b][i];
                if (x->t != 0 && x->s != NULL)
                    pthread_join(x->t, NULL);
                if (x->chunk == 0)
                    continue;
                bool ok = x->eof ? x->rc == 0 : x->rc == EDB_CANCELED;
                cr_assert(ok, "%s: reader %u.%u ended with %s (%s)", what, b, i, edb_err_name(x->rc),
                          edb_error_last());
                if (x->eof) {
                    complete++;
                    if (x->keep) {
                        bk_arch ar;
                        bk_decode(&ar, x->b.p, x->b.n);
                        bk_arch_free(&ar);
                        decoded++;
                    }
                } else {
                    canceled++;
                }
                free(x->b.p);
            }
        }

        if (env == NULL) {
            cr_assert_eq(bk_wait_tasks(tasks + 1, 5000), tasks + 1, "%s: threads left", what);
            cr_assert_eq(bk_readers_path(dir), 0, "%s: reader slots left", what);
            env = bk_env_open(dir);
            env_reopens++;
        } else {
            cr_assert_eq(bk_wait_tasks(tasks + 1, 5000), tasks + 1, "%s: threads left", what);
            cr_assert_eq(bk_wait_readers(edb__env_mdb(env), 0, 5000), 0, "%s: reader slots left", what);
        }
        /* The registry of a live env stays; everything else is gone. */
        uint64_t end = bk_now_ms() + bk_ms(5000);
        while (edb__obj_live(EDB__OBJ_N) - edb__obj_live(EDB__OBJ_REG) != 0 && bk_now_ms() < end)
            bk_sleep_ms(1);
        cr_assert_eq(edb__obj_live(EDB__OBJ_N) - edb__obj_live(EDB__OBJ_REG), 0, "%s: objects left", what);
        cr_assert_leq(edb__obj_live(EDB__OBJ_REG), 1);
        wd_disarm();
    }
    uint64_t ms = bk_now_ms() - t_start;
    cr_log_info("torture seed 0x%llx: %u iterations in %llu ms; close %u end %u stop %u env-close %u; "
                "reads complete %u (decoded %u) canceled %u; env reopened %u",
                (unsigned long long)seed, iters, (unsigned long long)ms, stats[0], stats[1], stats[2],
                stats[3], complete, decoded, canceled, env_reopens);
    fprintf(stderr, "torture seed 0x%llx: %u iterations in %llu ms; close %u end %u stop %u env-close %u; "
            "reads complete %u (decoded %u) canceled %u\n",
            (unsigned long long)seed, iters, (unsigned long long)ms, stats[0], stats[1], stats[2],
            stats[3], complete, decoded, canceled);

    pthread_mutex_lock(&wd_mu);
    wd_quit = true;
    pthread_cond_signal(&wd_cv);
    pthread_mutex_unlock(&wd_mu);
    pthread_join(wd, NULL);
    edb_env_close(env);
    cr_assert_eq(bk_wait_tasks(tasks, 3000), tasks);
    bk_rm_tree(dir);
    free(dir);
    bk_assert_no_objects(3000);
    BK_LEAK_CHECK();
}

/* Aborting a backup in every state (issue #3): close before the first read,
 * mid-stream, with the ring full and the consumer idle, while another thread
 * is blocked in read, during a rate-limit wait, after the end, after an error;
 * edb_backup_stop from another thread; edb_backup_end and edb_env_close with
 * streams open.  After each: the call returned at once, a blocked read got
 * EDB_CANCELED promptly, the copier thread is gone, the reader slot is
 * released (and ASan/LSan see no leak). */
#include "bk_helpers.h"

#include <sched.h>
#include <sys/ioctl.h>
#include "sys.h"

#define PROMPT_MS bk_ms(500)  /* "at once": generous for loaded machines and sanitizers */

typedef struct fixture {
    char *dir;
    edb_env *env;
    MDB_env *m;
    int tasks;              /* threads before any backup */
} fixture;

static fixture
setup(unsigned rows)
{
    fixture f;
    f.dir = bk_tmpdir();
    f.env = bk_env_open(f.dir);
    f.m = edb__env_mdb(f.env);
    if (rows)
        bk_populate(f.env, rows);
    f.tasks = bk_tasks_baseline();
    cr_assert_eq(bk_readers(f.m), 0);
    return f;
}

/* The post-conditions of an abort, env still open. */
static void
check_released(fixture *f)
{
    cr_assert_eq(bk_wait_tasks(f->tasks, 3000), f->tasks, "copier thread still running");
    cr_assert_eq(bk_wait_readers(f->m, 0, 3000), 0, "reader slot still held");
}

static void
teardown(fixture *f)
{
    edb_env_close(f->env);
    cr_assert_eq(bk_wait_tasks(f->tasks, 3000), f->tasks, "threads left after env close");
    cr_assert_eq(bk_readers_path(f->dir), 0, "reader slots left after env close");
    bk_rm_tree(f->dir);
    free(f->dir);
    bk_assert_no_objects(3000);
    BK_LEAK_CHECK();
}

/* A backup and one stream with the given options. */
static edb_backup_stream *
start(fixture *f, edb_backup **bk, uint64_t rate, size_t ring)
{
    edb_backup_opts o = { .rate_limit = rate, .ring_size = ring };
    OK(edb_backup_begin(bk, f->env, &o));
    edb_backup_stream *s;
    OK(edb_backup_open(&s, *bk));
    return s;
}

/* A new stream of bk reads to the end and decodes as a valid archive
 * (bk_decode asserts every structure). */
static void
check_new_stream_works(edb_backup *bk)
{
    edb_backup_stream *s;
    OK(edb_backup_open(&s, bk));
    bk_buf b = { 0 };
    OK(bk_read_all(s, &b, 1 << 16));
    bk_arch a;
    bk_decode(&a, b.p, b.n);
    bk_arch_free(&a);
    free(b.p);
    edb_backup_close(s);
}

/* Time edb_backup_close (must return at once). */
static void
close_now(edb_backup_stream *s)
{
    uint64_t t0 = bk_now_ms();
    edb_backup_close(s);
    cr_assert_lt(bk_now_ms() - t0, PROMPT_MS, "edb_backup_close blocked");
}

/* A thread parked in edb_backup_read. */
typedef struct reader {
    edb_backup_stream *s;
    pthread_t t;
    int rc;
    uint64_t returned_ms;
    size_t got;
} reader;

static void *
reader_main(void *p)
{
    reader *r = p;
    uint8_t *buf = malloc(1 << 16);
    for (;;) {
        size_t n = 0;
        r->rc = edb_backup_read(r->s, buf, 1 << 16, &n);
        if (r->rc != 0 || n == 0)
            break;
        r->got += n;
    }
    r->returned_ms = bk_now_ms();
    free(buf);
    return NULL;
}

static void
reader_start(reader *r, edb_backup_stream *s)
{
    memset(r, 0, sizeof *r);
    r->s = s;
    cr_assert_eq(pthread_create(&r->t, NULL, reader_main, r), 0);
    bk_wait_parked(s, 5000);
}

static void
reader_join_canceled(reader *r, uint64_t since_ms)
{
    pthread_join(r->t, NULL);
    cr_assert_eq(r->rc, EDB_CANCELED, "blocked read returned %s", edb_err_name(r->rc));
    cr_assert_lt(r->returned_ms - since_ms, PROMPT_MS, "blocked read did not return promptly");
}

Test(backup_cancel, close_before_first_read, .timeout = 20)
{
    fixture f = setup(2000);
    edb_backup *bk;
    edb_backup_stream *s = start(&f, &bk, 0, 0);
    close_now(s);
    edb_backup_end(bk);
    check_released(&f);
    teardown(&f);
}

Test(backup_cancel, close_mid_stream, .timeout = 20)
{
    fixture f = setup(3000);
    edb_backup *bk;
    edb_backup_stream *s = start(&f, &bk, 0, 300 << 10);
    uint8_t buf[10000];
    size_t total = 0;
    while (total < 100000) {
        size_t n;
        OK(edb_backup_read(s, buf, sizeof buf, &n));
        cr_assert_gt(n, 0);
        total += n;
    }
    close_now(s);
    /* The backup outlives its stream: a new stream works. */
    check_new_stream_works(bk);
    edb_backup_end(bk);
    check_released(&f);
    teardown(&f);
}

Test(backup_cancel, close_with_ring_full_and_consumer_idle, .timeout = 20)
{
    fixture f = setup(3000);
    edb_backup *bk;
    edb_backup_stream *s = start(&f, &bk, 0, 1);   /* smallest ring: 2 slots */
    bk_wait_ring_full(s, 5000);
    cr_assert_eq(bk_tasks(), f.tasks + 1, "the copier waits in reserve");
    close_now(s);
    cr_assert_eq(bk_wait_tasks(f.tasks, 3000), f.tasks, "copier still running");
    cr_assert_eq(bk_readers(f.m), 1, "the backup still holds its snapshot");
    edb_backup_end(bk);
    check_released(&f);
    teardown(&f);
}

Test(backup_cancel, close_from_another_thread_wakes_a_blocked_read, .timeout = 20)
{
    fixture f = setup(2000);
    edb_backup *bk;
    edb_backup_stream *s = start(&f, &bk, 1, 0);   /* 1 byte/s: the header, then nothing */
    uint8_t hdr[2 * EDB__ARCH_BLOCK];
    size_t n;
    OK(edb_backup_read(s, hdr, sizeof hdr, &n));
    cr_assert_eq(n, EDB__ARCH_BLOCK);
    reader r;
    reader_start(&r, s);
    uint64_t t0 = bk_now_ms();
    close_now(s);
    reader_join_canceled(&r, t0);
    cr_assert_eq(r.got, 0);
    edb_backup_end(bk);
    check_released(&f);
    teardown(&f);
}

Test(backup_cancel, close_during_rate_limit_wait, .timeout = 20)
{
    fixture f = setup(2000);
    edb_backup *bk;
    edb_backup_stream *s = start(&f, &bk, 1, 0);
    uint8_t buf[EDB__ARCH_BLOCK];
    size_t n;
    OK(edb_backup_read(s, buf, sizeof buf, &n));
    cr_assert_eq(n, sizeof buf);
    bk_sleep_ms(50);                               /* the copier sleeps for 4096 s now */
    pthread_mutex_lock(&s->ring.mu);
    cr_assert_eq(s->ring.count, 0, "the copier is in its rate-limit wait, not filling the ring");
    pthread_mutex_unlock(&s->ring.mu);
    cr_assert_eq(bk_tasks(), f.tasks + 1);
    uint64_t t0 = bk_now_ms();
    close_now(s);
    cr_assert_eq(bk_wait_tasks(f.tasks, 3000), f.tasks);
    cr_assert_lt(bk_now_ms() - t0, PROMPT_MS, "the rate limiter's wait ignored the cancel");
    edb_backup_end(bk);
    check_released(&f);
    teardown(&f);
}

Test(backup_cancel, close_after_the_end, .timeout = 20)
{
    fixture f = setup(1000);
    edb_backup *bk;
    edb_backup_stream *s = start(&f, &bk, 0, 0);
    bk_buf b = { 0 };
    OK(bk_read_all(s, &b, 4096));
    free(b.p);
    close_now(s);
    edb_backup_end(bk);
    check_released(&f);
    teardown(&f);
}

Test(backup_cancel, close_after_an_error, .timeout = 20)
{
    fixture f = setup(3000);
    edb_backup *bk;
    edb_backup_stream *s = start(&f, &bk, 0, 1);
    bk_wait_ring_full(s, 5000);
    /* Every wrapped call fails from now on: the copier's next pread. */
    edb__fault_arm(1, EIO, EDB__FAULT_PERSISTENT);
    bk_buf b = { 0 };
    int rc = bk_read_all(s, &b, 4096);
    edb__fault_disarm();
    cr_assert_eq(rc, EDB_IO, "read after the copier failed: %s (%s)", edb_err_name(rc), edb_error_last());
    cr_assert(strstr(edb_error_last(), "data.mdb") != NULL, "detail: %s", edb_error_last());
    cr_assert_gt(edb__fault_fired(), 0);
    cr_assert_gt(b.n, 0, "bytes before the error were delivered");
    size_t n;
    uint8_t x;
    RC(edb_backup_read(s, &x, 1, &n), EDB_IO);     /* the error is sticky */
    free(b.p);
    close_now(s);
    edb_backup_end(bk);
    check_released(&f);
    teardown(&f);
}

typedef struct stopper {
    edb_env *env;
    int rc;
    uint64_t at_ms;
} stopper;

static void *
stop_main(void *p)
{
    stopper *st = p;
    st->at_ms = bk_now_ms();
    st->rc = edb_backup_stop(st->env);
    return NULL;
}

Test(backup_cancel, stop_from_another_thread, .timeout = 20)
{
    fixture f = setup(2000);
    edb_backup *bk, *idle;
    edb_backup_stream *s = start(&f, &bk, 1, 0);
    OK(edb_backup_begin(&idle, f.env, NULL));      /* a backup with no stream yet */
    reader r;
    reader_start(&r, s);
    stopper st = { .env = f.env };
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, stop_main, &st), 0);
    pthread_join(t, NULL);
    OK(st.rc);
    reader_join_canceled(&r, st.at_ms);
    edb_backup_stream *s2;
    RC(edb_backup_open(&s2, bk), EDB_CANCELED);
    RC(edb_backup_open(&s2, idle), EDB_CANCELED);
    cr_assert_eq(bk_wait_tasks(f.tasks, 3000), f.tasks, "copier still running after stop");
    cr_assert_eq(bk_readers(f.m), 2, "both backups still hold their snapshots until ended");
    edb_backup_close(s);
    edb_backup_end(bk);
    edb_backup_end(idle);
    check_released(&f);

    /* Backups begun after the stop are unaffected. */
    edb_backup *later;
    OK(edb_backup_begin(&later, f.env, NULL));
    check_new_stream_works(later);
    edb_backup_end(later);
    check_released(&f);
    teardown(&f);
}

Test(backup_cancel, stop_without_backups, .timeout = 10)
{
    fixture f = setup(0);
    OK(edb_backup_stop(f.env));
    teardown(&f);
}

Test(backup_cancel, end_closes_open_streams, .timeout = 20)
{
    fixture f = setup(3000);
    edb_backup *bk;
    edb_backup_stream *s1 = start(&f, &bk, 1, 0);  /* rate limited: copiers park in their wait */
    edb_backup_stream *s2, *s3;
    OK(edb_backup_open(&s2, bk));
    OK(edb_backup_open(&s3, bk));
    reader r;
    reader_start(&r, s1);
    cr_assert_eq(bk_tasks(), f.tasks + 4);
    uint64_t t0 = bk_now_ms();
    edb_backup_end(bk);
    cr_assert_lt(bk_now_ms() - t0, PROMPT_MS, "edb_backup_end blocked");
    reader_join_canceled(&r, t0);
    check_released(&f);
    size_t n;
    uint8_t x;
    RC(edb_backup_read(s2, &x, 1, &n), EDB_CANCELED);  /* the handle is gone */
    edb_backup_close(s3);                              /* a no-op */
    teardown(&f);
}

Test(backup_cancel, env_close_with_backups_in_every_state, .timeout = 30)
{
    fixture f = setup(3000);
    edb_backup *b_idle, *b_rate, *b_full, *b_read, *b_done, *b_mid;
    OK(edb_backup_begin(&b_idle, f.env, NULL));
    edb_backup_stream *s_rate = start(&f, &b_rate, 1, 0);
    edb_backup_stream *s_full = start(&f, &b_full, 0, 1);
    edb_backup_stream *s_read = start(&f, &b_read, 1, 0);
    edb_backup_stream *s_done = start(&f, &b_done, 0, 0);
    edb_backup_stream *s_mid = start(&f, &b_mid, 0, 1);
    bk_buf b = { 0 };
    OK(bk_read_all(s_done, &b, 1 << 16));
    free(b.p);
    uint8_t buf[5000];
    size_t n;
    OK(edb_backup_read(s_mid, buf, sizeof buf, &n));
    bk_wait_ring_full(s_full, 5000);
    reader r;
    reader_start(&r, s_read);
    (void)s_rate;
    cr_assert_eq(bk_readers(f.m), 6);

    uint64_t t0 = bk_now_ms();
    edb_env_close(f.env);
    cr_assert_lt(bk_now_ms() - t0, PROMPT_MS, "edb_env_close waited on something unbounded");
    reader_join_canceled(&r, t0);
    /* Every copier was joined by env close: the thread count is exact now. */
    cr_assert_eq(bk_tasks(), f.tasks, "copier threads after env close");
    cr_assert_eq(bk_readers_path(f.dir), 0);
    bk_rm_tree(f.dir);
    free(f.dir);
    bk_assert_no_objects(3000);
    BK_LEAK_CHECK();
}

Test(backup_cancel, env_close_after_streams_were_closed, .timeout = 20)
{
    fixture f = setup(3000);
    edb_backup *bk;
    edb_backup_stream *s = start(&f, &bk, 1, 0);
    edb_backup_stream *s2;
    OK(edb_backup_open(&s2, bk));
    close_now(s);                 /* copiers may still be winding down when env close runs */
    close_now(s2);
    uint64_t t0 = bk_now_ms();
    edb_env_close(f.env);         /* ends bk itself */
    cr_assert_lt(bk_now_ms() - t0, PROMPT_MS);
    cr_assert_eq(bk_wait_tasks(f.tasks, 3000), f.tasks);
    cr_assert_eq(bk_readers_path(f.dir), 0);
    bk_rm_tree(f.dir);
    free(f.dir);
    bk_assert_no_objects(3000);
    BK_LEAK_CHECK();
}

/* A canceled copier exits within one page batch even on a large database
 * with the consumer draining as fast as it can. */
Test(backup_cancel, copier_exits_within_a_batch, .timeout = 30)
{
    fixture f = setup(8000);
    for (int i = 0; i < 5; i++) {
        edb_backup *bk;
        edb_backup_stream *s = start(&f, &bk, 0, 0);
        uint8_t buf[1 << 15];
        size_t n;
        for (int k = 0; k < 3 + 7 * i; k++)
            OK(edb_backup_read(s, buf, sizeof buf, &n));
        uint64_t t0 = bk_now_ms();
        close_now(s);
        cr_assert_eq(bk_wait_tasks(f.tasks, 3000), f.tasks);
        cr_assert_lt(bk_now_ms() - t0, PROMPT_MS);
        edb_backup_end(bk);
        check_released(&f);
    }
    teardown(&f);
}

/* ---- edb_env_close racing edb_backup_begin on a fresh env ---- */

typedef struct beginner {
    edb_env *env;
    atomic_int started;
    int made;               /* backups begun and ended */
    int rc;                 /* the error that ended the loop */
} beginner;

static void *
begin_loop(void *p)
{
    beginner *b = p;
    atomic_store(&b->started, 1);
    for (;;) {
        edb_backup *bk = NULL;
        int rc = edb_backup_begin(&bk, b->env, NULL);
        if (rc != 0) {
            b->rc = rc;
            if (bk != NULL)
                b->rc = -1000;              /* an error must leave *out NULL */
            return NULL;
        }
        b->made++;
        edb_backup_end(bk);
    }
}

/* Each round opens the env afresh (no registry: no backup was ever made on
 * it), starts a thread that begins and ends backups until begin fails, and
 * closes the env from this thread, at varying moments: before the thread's
 * first begin, during its registry creation, during a snapshot.  The begin
 * that loses the race must fail with EDB_CANCELED (never a snapshot of a
 * closing LMDB, never a touch of the freed env), and nothing may be left:
 * no thread, no reader slot, no backup object. */
Test(backup_cancel, env_close_races_first_begin, .timeout = 60)
{
    char *dir = bk_tmpdir();
    edb_env *env = bk_env_open(dir);
    edb_env_close(env);
    int tasks = bk_tasks_baseline();
    int rounds = (int)bk_scale(400), early = 0, late = 0;
    if (rounds < 100)
        rounds = 100;                       /* sanitizers, valgrind: still a hundred races */
    for (int i = 0; i < rounds; i++) {
        env = bk_env_open(dir);
        beginner b = { .env = env };
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, begin_loop, &b), 0);
        if (i % 4 != 0) {
            while (!atomic_load(&b.started))
                sched_yield();
            for (volatile int spin = (i * 7919) % 200000; spin > 0; spin--)
                ;                           /* 0 to ~1 ms: before, during, after a begin */
        }
        edb_env_close(env);
        pthread_join(t, NULL);
        cr_assert_eq(b.rc, EDB_CANCELED, "round %d: begin ended with %d, not EDB_CANCELED", i, b.rc);
        if (b.made == 0)
            early++;
        else
            late++;
        cr_assert_eq(bk_readers_path(dir), 0, "round %d: reader slots left after env close", i);
    }
    cr_log_info("env_close_races_first_begin: %d rounds, %d closed before any backup, %d after",
                rounds, early, late);
    cr_assert_eq(bk_wait_tasks(tasks, 3000), tasks, "threads left");
    bk_assert_no_objects(3000);
    bk_rm_tree(dir);
    free(dir);
    BK_LEAK_CHECK();
}

/* ---- edb_backup_write_fd into a descriptor that never drains (issue #11.1) ----
 *
 * A thread writes a backup into a pipe nobody reads: the pipe fills and the
 * writer waits.  edb_backup_stop(), edb_backup_end() or edb_env_close() from
 * another thread must make it return EDB_CANCELED within 100 ms (the wait is
 * a poll() beside the stream's wake-up descriptor, never a blocking write),
 * the snapshot must be released, nothing may be written after the return,
 * and the descriptor's O_NONBLOCK flag is as it was. */

#define STALL_MS bk_ms(100)

typedef struct fdwriter {
    edb_backup *bk;
    int fd;
    pthread_t t;
    int rc;
    char msg[256];
    atomic_int finished;
    uint64_t returned_ms;
} fdwriter;

static void *
fdwriter_main(void *p)
{
    fdwriter *w = p;
    w->rc = edb_backup_write_fd(w->bk, w->fd, NULL, NULL);
    snprintf(w->msg, sizeof w->msg, "%s", edb_error_last());
    w->returned_ms = bk_now_ms();
    atomic_store(&w->finished, 1);
    return NULL;
}

/* Bytes waiting in the pipe. */
static int
pipe_pending(int rfd)
{
    int n = 0;
    cr_assert_eq(ioctl(rfd, FIONREAD, &n), 0);
    return n;
}

/* Start the writer on a one-page pipe and wait until the pipe is full and
 * stays full (the writer is parked). */
static void
fdwriter_start(fdwriter *w, edb_backup *bk, int p[2])
{
    cr_assert_eq(pipe(p), 0);
    int cap = fcntl(p[1], F_SETPIPE_SZ, 4096);
    cr_assert_gt(cap, 0);
    memset(w, 0, sizeof *w);
    w->bk = bk;
    w->fd = p[1];
    cr_assert_eq(pthread_create(&w->t, NULL, fdwriter_main, w), 0);
    uint64_t t0 = bk_now_ms();
    int last = -1, same = 0;
    while (same < 5) {
        cr_assert_lt(bk_now_ms() - t0, 10000u, "the pipe never filled");
        if (atomic_load(&w->finished)) {     /* w->msg is complete once finished is set */
            pthread_join(w->t, NULL);
            cr_assert_fail("write_fd returned before the pipe filled: %s", w->msg);
        }
        bk_sleep_ms(10);
        int n = pipe_pending(p[0]);
        same = n == last && n >= cap ? same + 1 : 0;
        last = n;
    }
}

/* Join the writer, which must return EDB_CANCELED within STALL_MS of t0;
 * then the pipe holds no more than it held, and stays so. */
static void
fdwriter_join_canceled(fdwriter *w, int p[2], uint64_t t0)
{
    int before = pipe_pending(p[0]);
    while (!atomic_load(&w->finished) && bk_now_ms() - t0 < 10u * STALL_MS + 1000u)
        bk_sleep_ms(1);
    if (!atomic_load(&w->finished)) {
        /* Blocked for good: drain the pipe so the writer can end, then fail. */
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        uint8_t buf[4096];
        while (!atomic_load(&w->finished))
            if (read(p[0], buf, sizeof buf) <= 0)
                bk_sleep_ms(1);
        pthread_join(w->t, NULL);
        cr_assert_fail("edb_backup_write_fd still blocked %u ms after the cancel", 10u * STALL_MS + 1000u);
    }
    pthread_join(w->t, NULL);
    cr_assert_eq(w->rc, EDB_CANCELED, "write_fd returned %s (%s)", edb_err_name(w->rc), w->msg);
    cr_assert_lt(w->returned_ms - t0, STALL_MS, "write_fd returned %llu ms after the cancel",
                 (unsigned long long)(w->returned_ms - t0));
    cr_log_info("write_fd returned EDB_CANCELED %llu ms after the cancel",
                (unsigned long long)(w->returned_ms - t0));
    cr_assert_eq(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0, "O_NONBLOCK left set on the caller's descriptor");
    bk_sleep_ms(20);
    cr_assert_eq(pipe_pending(p[0]), before, "bytes written after the cancel");
    close(p[0]);
    close(p[1]);
}

Test(backup_cancel, write_fd_stalled_then_stop, .timeout = 30)
{
    fixture f = setup(3000);
    edb_backup *bk;
    OK(edb_backup_begin(&bk, f.env, NULL));
    fdwriter w;
    int p[2];
    fdwriter_start(&w, bk, p);
    uint64_t t0 = bk_now_ms();
    OK(edb_backup_stop(f.env));
    fdwriter_join_canceled(&w, p, t0);
    cr_assert_eq(bk_wait_tasks(f.tasks, 3000), f.tasks, "copier still running after stop");
    edb_backup_end(bk);
    check_released(&f);
    teardown(&f);
}

Test(backup_cancel, write_fd_stalled_then_end, .timeout = 30)
{
    fixture f = setup(3000);
    edb_backup *bk;
    OK(edb_backup_begin(&bk, f.env, NULL));
    fdwriter w;
    int p[2];
    fdwriter_start(&w, bk, p);
    uint64_t t0 = bk_now_ms();
    edb_backup_end(bk);
    fdwriter_join_canceled(&w, p, t0);
    check_released(&f);
    teardown(&f);
}

Test(backup_cancel, write_fd_stalled_then_env_close, .timeout = 30)
{
    fixture f = setup(3000);
    edb_backup *bk;
    OK(edb_backup_begin(&bk, f.env, NULL));
    fdwriter w;
    int p[2];
    fdwriter_start(&w, bk, p);
    uint64_t t0 = bk_now_ms();
    edb_env_close(f.env);
    cr_assert_lt(bk_now_ms() - t0, STALL_MS, "edb_env_close waited for the writer");
    fdwriter_join_canceled(&w, p, t0);
    cr_assert_eq(bk_wait_tasks(f.tasks, 3000), f.tasks, "threads left after env close");
    cr_assert_eq(bk_readers_path(f.dir), 0, "reader slots left after env close");
    bk_rm_tree(f.dir);
    free(f.dir);
    bk_assert_no_objects(3000);
    BK_LEAK_CHECK();
}

/* A descriptor that drains: the archive is complete and O_NONBLOCK is back
 * as it was, cleared or set. */
static void *
drain_main(void *p)
{
    int fd = *(int *)p;
    uint8_t buf[1 << 16];
    size_t total = 0;
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        total += (size_t)r;
    return (void *)(uintptr_t)total;
}

Test(backup_cancel, write_fd_restores_the_descriptor_flags, .timeout = 30)
{
    fixture f = setup(2000);
    for (int nb = 0; nb < 2; nb++) {
        edb_backup *bk;
        OK(edb_backup_begin(&bk, f.env, NULL));
        int p[2];
        cr_assert_eq(pipe(p), 0);
        if (nb)
            cr_assert_eq(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, drain_main, &p[0]), 0);
        OK(edb_backup_write_fd(bk, p[1], NULL, NULL));
        cr_assert_eq((fcntl(p[1], F_GETFL) & O_NONBLOCK) != 0, nb != 0, "O_NONBLOCK changed");
        close(p[1]);
        void *got;
        pthread_join(t, &got);
        uint64_t done, total;
        OK(edb_backup_progress(bk, &done, &total));
        cr_assert_eq((uint64_t)(uintptr_t)got, total, "the reader got %zu bytes of %llu",
                     (size_t)(uintptr_t)got, (unsigned long long)total);
        close(p[0]);
        edb_backup_end(bk);
    }
    check_released(&f);
    teardown(&f);
}

/* ---- the copier frees the ring, not edb_backup_close (issue #11, point 9) ----
 *
 * Freeing the ring's slots (8 MiB by default) in the last put made a close
 * after the end, or of the second of two streams, cost 1 to 10 ms in the
 * application's thread.  Now the copier frees them on its way out, once a
 * reader was given the end (or the stream was canceled): when the copier is
 * gone, the ring holds no slot memory, and close frees only small things.
 * The latency itself is measured by `bench_backup states` (make
 * bench-backup), not here. */
Test(backup_cancel, the_copier_frees_the_ring_before_close, .timeout = 30)
{
    fixture f = setup(1000);
    edb_backup *bk;
    edb_backup_stream *s = start(&f, &bk, 0, 1);   /* two-slot rings: the third fills */
    edb_backup_stream *s2;
    OK(edb_backup_open(&s2, bk));
    bk_buf b = { 0 };
    OK(bk_read_all(s, &b, 4096));
    free(b.p);
    b = (bk_buf){ 0 };
    OK(bk_read_all(s2, &b, 1 << 16));
    free(b.p);
    cr_assert_eq(bk_wait_tasks(f.tasks, 3000), f.tasks, "copiers still running after the end");
    pthread_mutex_lock(&s->ring.mu);
    bool held = s->ring.mem != NULL;
    pthread_mutex_unlock(&s->ring.mu);
    pthread_mutex_lock(&s2->ring.mu);
    bool held2 = s2->ring.mem != NULL;
    pthread_mutex_unlock(&s2->ring.mu);
    cr_assert(!held && !held2, "the ring's slots are left for edb_backup_close to free");
    close_now(s);
    close_now(s2);

    /* Canceled mid-stream with the ring full: the copier frees it too. */
    edb_backup_stream *s3;
    OK(edb_backup_open(&s3, bk));
    bk_wait_ring_full(s3, 5000);
    edb__ring_cancel(&s3->ring);           /* as close does, keeping the handle to look */
    cr_assert_eq(bk_wait_tasks(f.tasks, 3000), f.tasks, "the canceled copier is still running");
    pthread_mutex_lock(&s3->ring.mu);
    bool held3 = s3->ring.mem != NULL;
    pthread_mutex_unlock(&s3->ring.mu);
    cr_assert(!held3, "a canceled copier left the ring for close to free");
    close_now(s3);
    edb_backup_end(bk);
    check_released(&f);
    teardown(&f);
}

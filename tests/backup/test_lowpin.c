/* test_lowpin.c: low-pin backups (issue #4): a money-moving writer runs while a
 * low-pin backup goes through a slow consumer; the restored total is right and
 * the file grows much less than under a classic backup of the same run; the
 * pin is short and reported; chains of low-pin incrementals; cancel; the pass
 * planner; the rate limiter. */
#include "bk_helpers.h"

#include "archive_fixture.h"
#include "lowpin.h"
#include "sys.h"

#define ACCOUNTS  20000u
#define START_BAL 1000
#define PAD       200u

typedef struct bank {
    MDB_env *m;
    MDB_dbi d;
    atomic_bool stop;
    atomic_uint_fast64_t txns;
    uint64_t seed;
    unsigned pause_ms;     /* between txns: 0 = flat out */
} bank;

static uint64_t
xs(uint64_t *s)
{
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

static void
bank_open(edb_env *env, bank *b)
{
    b->m = edb__env_mdb(env);
    b->d = bk_dbi(env);
    MDB_txn *t;
    MDB_OK(mdb_txn_begin(b->m, NULL, 0, &t));
    uint8_t val[8 + PAD];
    memset(val, 0x5A, sizeof val);
    for (uint64_t a = 0; a < ACCOUNTS; a++) {
        int64_t bal = START_BAL;
        memcpy(val, &bal, 8);
        uint64_t k = __builtin_bswap64(a);
        MDB_val key = { 8, &k }, v = { sizeof val, val };
        MDB_OK(mdb_put(t, b->d, &key, &v, 0));
    }
    MDB_OK(mdb_txn_commit(t));
}

/* Each txn moves money between random accounts: the total never changes. */
static void *
bank_writer(void *arg)
{
    bank *b = arg;
    while (!atomic_load(&b->stop)) {
        MDB_txn *t;
        if (mdb_txn_begin(b->m, NULL, 0, &t) != 0)
            return (void *)1;
        for (int i = 0; i < 20; i++) {
            uint64_t from = xs(&b->seed) % ACCOUNTS, to = xs(&b->seed) % ACCOUNTS;
            int64_t amount = (int64_t)(xs(&b->seed) % 50);
            uint64_t kf = __builtin_bswap64(from), kt = __builtin_bswap64(to);
            MDB_val key = { 8, &kf }, v;
            uint8_t val[8 + PAD];
            int64_t bal;
            if (mdb_get(t, b->d, &key, &v) != 0)
                return (void *)2;
            memcpy(val, v.mv_data, sizeof val);
            memcpy(&bal, val, 8);
            bal -= amount;
            memcpy(val, &bal, 8);
            v = (MDB_val){ sizeof val, val };
            if (mdb_put(t, b->d, &key, &v, 0) != 0)
                return (void *)3;
            key.mv_data = &kt;
            if (mdb_get(t, b->d, &key, &v) != 0)
                return (void *)4;
            memcpy(val, v.mv_data, sizeof val);
            memcpy(&bal, val, 8);
            bal += amount;
            memcpy(val, &bal, 8);
            v = (MDB_val){ sizeof val, val };
            if (mdb_put(t, b->d, &key, &v, 0) != 0)
                return (void *)5;
        }
        if (mdb_txn_commit(t) != 0)
            return (void *)6;
        atomic_fetch_add(&b->txns, 1);
        if (b->pause_ms)
            bk_sleep_ms(b->pause_ms);
    }
    return NULL;
}

/* Sum of the balances in a restored (plain LMDB) directory. */
static int64_t
restored_total(const char *dir, uint64_t *accounts)
{
    MDB_env *m;
    MDB_OK(mdb_env_create(&m));
    MDB_OK(mdb_env_set_maxdbs(m, 64));
    MDB_OK(mdb_env_set_mapsize(m, 1ull << 30));
    MDB_OK(mdb_env_open(m, dir, MDB_RDONLY | MDB_NOLOCK, 0600));
    MDB_txn *t;
    MDB_OK(mdb_txn_begin(m, NULL, MDB_RDONLY, &t));
    MDB_dbi d;
    MDB_OK(mdb_dbi_open(t, BK_DATA_DB, 0, &d));
    MDB_cursor *c;
    MDB_OK(mdb_cursor_open(t, d, &c));
    MDB_val k, v;
    int64_t sum = 0;
    *accounts = 0;
    while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
        int64_t bal;
        cr_assert_eq(v.mv_size, 8 + PAD);
        memcpy(&bal, v.mv_data, 8);
        sum += bal;
        (*accounts)++;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    mdb_env_close(m);
    return sum;
}

static uint64_t
last_pgno(MDB_env *m)
{
    MDB_envinfo info;
    MDB_OK(mdb_env_info(m, &info));
    return (uint64_t)info.me_last_pgno;
}

typedef struct run_result {
    uint64_t growth;       /* pages the file grew by during the backup */
    uint64_t txns;         /* writer txns during the backup */
    uint64_t ms;           /* backup duration */
    uint64_t pin_longest;  /* edb_backup_pin_time at the end, µs */
    uint64_t trailer_pin;  /* the trailer's pin_us */
} run_result;

/* A backup of a fresh bank in its own directory, under the money-moving writer,
 * through a consumer that takes 32 KiB every 2 ms (about 16 MB/s). */
static void
bank_run(const char *dir, unsigned flags, run_result *r, const char *archive, unsigned pause_ms)
{
    edb_env *env = bk_env_open(dir);
    bank b = { .seed = 0x9E3779B97F4A7C15ull, .pause_ms = pause_ms };
    bank_open(env, &b);
    pthread_t wt;
    cr_assert_eq(pthread_create(&wt, NULL, bank_writer, &b), 0);
    bk_sleep_ms(100);                       /* the writer reaches its steady state */

    uint64_t pg0 = last_pgno(b.m), tx0 = atomic_load(&b.txns), t0 = bk_now_ms();
    edb_backup_opts o = { .flags = flags };
    edb_backup *bk = NULL;
    OK(edb_backup_begin(&bk, env, &o));
    edb_backup_stream *s = NULL;
    OK(edb_backup_open(&s, bk));
    if (flags & EDB_BACKUP_LOW_PIN) {
        edb_backup_stream *s2 = NULL;
        RC(edb_backup_open(&s2, bk), EDB_BUSY);
        cr_assert_null(s2);
    }
    int fd = open(archive, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    uint8_t buf[32768];
    for (;;) {
        size_t n = 0;
        OK(edb_backup_read(s, buf, sizeof buf, &n));
        if (n == 0)
            break;
        cr_assert_eq(write(fd, buf, n), (ssize_t)n);
        bk_sleep_ms(2);
    }
    close(fd);
    OK(edb_backup_pin_time(bk, &r->pin_longest, NULL));
    r->ms = bk_now_ms() - t0;
    r->growth = last_pgno(b.m) - pg0;
    r->txns = atomic_load(&b.txns) - tx0;
    edb_backup_close(s);
    edb_backup_end(bk);

    atomic_store(&b.stop, true);
    void *wrc;
    pthread_join(wt, &wrc);
    cr_assert_null(wrc, "writer failed at step %p", wrc);
    edb_env_close(env);

    int afd = open(archive, O_RDONLY);
    uint8_t tb[EDB__ARCH_BLOCK];
    struct stat st;
    cr_assert_eq(fstat(afd, &st), 0);
    /* The trailer sits before the table and the end block: find it by its magic. */
    r->trailer_pin = UINT64_MAX;
    for (off_t off = st.st_size - 2 * EDB__ARCH_BLOCK; off >= 0; off -= EDB__ARCH_BLOCK) {
        cr_assert_eq(pread(afd, tb, sizeof tb, off), (ssize_t)sizeof tb);
        if (memcmp(tb, EDB__ARCH_MAGIC_TRAILER, 4) == 0) {
            r->trailer_pin = edb__le64(tb + 40);
            break;
        }
    }
    close(afd);
    cr_assert_neq(r->trailer_pin, UINT64_MAX);
}

static void
check_restored_bank(const char *dir, const char *archive)
{
    char target[600];
    snprintf(target, sizeof target, "%s/restored", dir);
    edb_backup_source src = { .path = archive };
    edb_backup_info info;
    OK(edb_backup_verify(&info, &src, 1, NULL, NULL));
    OK(edb_backup_restore(NULL, target, &src, 1, 0));
    uint64_t accounts;
    int64_t total = restored_total(target, &accounts);
    cr_assert_eq(accounts, ACCOUNTS);
    cr_assert_eq(total, (int64_t)ACCOUNTS * START_BAL, "restored total %lld", (long long)total);
}

Test(lowpin, money_total_and_file_growth_against_classic, .timeout = 240)
{
    char *dl = bk_tmpdir(), *dc = bk_tmpdir(), al[600], ac[600];
    snprintf(al, sizeof al, "%s/lowpin.edbk", dl);
    snprintf(ac, sizeof ac, "%s/classic.edbk", dc);
    run_result lp, cl;
    bank_run(dl, EDB_BACKUP_LOW_PIN, &lp, al, 0);
    bank_run(dc, 0, &cl, ac, 0);
    cr_log_info("low-pin: %llu ms, grew %llu pages over %llu txns, longest pin %llu us, final %llu us",
                (unsigned long long)lp.ms, (unsigned long long)lp.growth, (unsigned long long)lp.txns,
                (unsigned long long)lp.pin_longest, (unsigned long long)lp.trailer_pin);
    cr_log_info("classic: %llu ms, grew %llu pages over %llu txns, longest pin %llu us",
                (unsigned long long)cl.ms, (unsigned long long)cl.growth, (unsigned long long)cl.txns,
                (unsigned long long)cl.pin_longest);
    check_restored_bank(dl, al);
    check_restored_bank(dc, ac);

    /* The writers did comparable work, the classic file grew with it. */
    cr_assert_gt(cl.txns, 50);
    cr_assert_gt(lp.txns, 50);
    cr_assert_gt(cl.growth, 200, "classic grew only %llu pages", (unsigned long long)cl.growth);
    /* Growth per writer txn: low-pin at most a quarter of classic. */
    cr_assert_lt((double)lp.growth / (double)lp.txns * 4.0, (double)cl.growth / (double)cl.txns,
                 "low-pin grew %llu pages / %llu txns, classic %llu / %llu",
                 (unsigned long long)lp.growth, (unsigned long long)lp.txns,
                 (unsigned long long)cl.growth, (unsigned long long)cl.txns);
    /* The classic pin is the whole backup; the low-pin one a fraction of it. */
    cr_assert_geq(cl.pin_longest + 50000, cl.ms * 1000u);
    cr_assert_lt(lp.pin_longest * 4, lp.ms * 1000u, "pinned %llu us of %llu ms",
                 (unsigned long long)lp.pin_longest, (unsigned long long)lp.ms);
    cr_assert_leq(lp.trailer_pin, lp.pin_longest);
    bk_rm_tree(dl);
    bk_rm_tree(dc);
    free(dl);
    free(dc);
}

/* A stage of 16 pages and a txn that changes hundreds of pages just before
 * the final pass (test hook): the final pass fills its stage again and again
 * and spills it to the spool file (the overflow path); the archive restores
 * exactly the database after that txn. */
static edb_env *hook_env;

static void
change_before_final(void)
{
    MDB_OK(bk_write(edb__env_mdb(hook_env), bk_dbi(hook_env), 0, 400, 77, 0));
}

Test(lowpin, final_pass_stage_overflow, .timeout = 60)
{
    char *dir = bk_tmpdir(), a[600], dbdir[600], target[600];
    snprintf(a, sizeof a, "%s/lowpin.edbk", dir);
    snprintf(dbdir, sizeof dbdir, "%s/db", dir);
    snprintf(target, sizeof target, "%s/restored", dir);
    hook_env = bk_env_open(dir);
    bk_populate(hook_env, 3000);
    atomic_store(&edb__lp_stage_bytes, (size_t)16 * 4096);
    edb__lp_before_final = change_before_final;
    edb_backup_opts o = { .flags = EDB_BACKUP_LOW_PIN };
    edb_backup *bk = NULL;
    OK(edb_backup_begin(&bk, hook_env, &o));
    edb_backup_stream *s = NULL;
    OK(edb_backup_open(&s, bk));
    bk_buf out = { 0 };
    OK(bk_read_all(s, &out, 65536));
    edb_backup_close(s);
    edb_backup_end(bk);
    edb__lp_before_final = NULL;
    cr_assert_gt(atomic_load(&edb__lp_stage_flushes), 5, "the final pass filled its stage %llu times",
                 (unsigned long long)atomic_load(&edb__lp_stage_flushes));
    cr_assert_eq(fx_write(a, out.p, out.n), 0);
    free(out.p);
    char *want = fx_dump(dbdir);
    edb_backup_source src = { .path = a };
    OK(edb_backup_restore(NULL, target, &src, 1, 0));
    char *got = fx_dump(target);
    cr_assert_not_null(want);
    cr_assert_not_null(got);
    cr_assert_str_eq(got, want, "the restored database is not the one after the last txn");
    free(want);
    free(got);
    edb_env_close(hook_env);
    bk_rm_tree(dir);
    free(dir);
}

/* ---- the final pass's spool (issue #12) ----
 *
 * A txn that changes far more pages than the memory stage (16 pages) and the
 * ring (2 slots) hold runs just before the final pass; the consumer stops
 * reading the moment it ran.  The final pass must release its snapshot anyway
 * (the pages it stages go to the spool file at disk speed), before any of
 * them reached the consumer: the pin does not depend on the consumer.  The
 * spool is an unnamed file in $TMPDIR while it lives and nothing afterwards,
 * on the successful path and when the stream is closed before the end. */
static atomic_bool sp_before, sp_after;
static atomic_int sp_write_rc, sp_readers;

static void
spool_before_final(void)
{
    atomic_store(&sp_write_rc, bk_write(edb__env_mdb(hook_env), bk_dbi(hook_env), 0, 2500, 78, 0));
    atomic_store(&sp_before, true);
}

static void
spool_after_pin(void)
{
    atomic_store(&sp_readers, bk_readers(edb__env_mdb(hook_env)));
    atomic_store(&sp_after, true);
}

/* Descriptors of this process open on a file under @dir. */
static int
fds_under(const char *dir)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        char p[300], t[1024];
        snprintf(p, sizeof p, "/proc/self/fd/%s", de->d_name);
        ssize_t l = readlink(p, t, sizeof t - 1);
        if (l <= 0)
            continue;
        t[l] = '\0';
        if (strncmp(t, dir, strlen(dir)) == 0 && t[strlen(dir)] == '/')
            n++;
    }
    closedir(d);
    return n;
}

/* Wait up to ms for the copier to let go of its files under @dir. */
static int
wait_fds_under(const char *dir, unsigned ms)
{
    uint64_t end = bk_now_ms() + bk_ms(ms);
    int n;
    while ((n = fds_under(dir)) > 0 && bk_now_ms() < end)
        bk_sleep_ms(2);
    return n;
}

static int
entries_in(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Up to the final pass's release, with the consumer paused once the hook ran.
 * Returns the stream and backup. */
static void
spool_run_to_release(const char *dir, const char *tmp, edb_backup **bkp, edb_backup_stream **sp, bk_buf *out)
{
    cr_assert_eq(mkdir(tmp, 0700), 0);
    cr_assert_eq(setenv("TMPDIR", tmp, 1), 0);      /* before any thread of ours starts */
    hook_env = bk_env_open(dir);
    bk_populate(hook_env, 3000);
    atomic_store(&edb__lp_stage_bytes, (size_t)16 * 4096);
    edb__lp_before_final = spool_before_final;
    edb__lp_after_final_pin = spool_after_pin;
    edb_backup_opts o = { .flags = EDB_BACKUP_LOW_PIN, .ring_size = 1 };
    OK(edb_backup_begin(bkp, hook_env, &o));
    OK(edb_backup_open(sp, *bkp));
    uint8_t buf[4096];
    while (!atomic_load(&sp_before)) {
        size_t n = 0;
        OK(edb_backup_read(*sp, buf, sizeof buf, &n));
        cr_assert_neq(n, 0, "the archive ended before the final pass");
        bk_buf_add(out, buf, n);
    }
    /* The consumer is paused: nothing more is read until the release. */
    uint64_t end = bk_now_ms() + bk_ms(30000);
    while (!atomic_load(&sp_after) && bk_now_ms() < end)
        bk_sleep_ms(2);
    cr_assert(atomic_load(&sp_after), "the final pass kept its snapshot while the consumer was paused");
    MDB_OK(atomic_load(&sp_write_rc));
    cr_assert_eq(atomic_load(&sp_readers), 0, "a snapshot was still pinned at the release");
    /* More than the stage and the ring hold went to the spool, which lives
     * in $TMPDIR, unnamed. */
    cr_assert_gt(atomic_load(&edb__lp_spooled_pages), 4 * 64, "spooled %llu pages",
                 (unsigned long long)atomic_load(&edb__lp_spooled_pages));
    cr_assert_eq(atomic_load(&edb__lp_pinned_emits), 0);
    cr_assert_eq(fds_under(tmp), 1, "the spool file is not open in $TMPDIR");
    cr_assert_eq(entries_in(tmp), 0, "the spool file has a name");
}

Test(lowpin, final_pass_releases_before_the_consumer_reads, .timeout = 120)
{
    char *dir = bk_tmpdir(), a[600], dbdir[600], target[600], tmp[600];
    snprintf(a, sizeof a, "%s/lowpin.edbk", dir);
    snprintf(dbdir, sizeof dbdir, "%s/db", dir);
    snprintf(target, sizeof target, "%s/restored", dir);
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    edb_backup *bk = NULL;
    edb_backup_stream *s = NULL;
    bk_buf out = { 0 };
    spool_run_to_release(dir, tmp, &bk, &s, &out);
    OK(bk_read_all(s, &out, 4096));
    edb_backup_close(s);
    edb_backup_end(bk);
    edb__lp_before_final = NULL;
    edb__lp_after_final_pin = NULL;
    cr_assert_eq(wait_fds_under(tmp, 5000), 0, "the spool file is still open");
    cr_assert_eq(entries_in(tmp), 0);
    cr_assert_eq(fx_write(a, out.p, out.n), 0);
    free(out.p);
    char *want = fx_dump(dbdir);
    edb_backup_source src = { .path = a };
    edb_backup_info info;
    OK(edb_backup_verify(&info, &src, 1, NULL, NULL));
    OK(edb_backup_restore(NULL, target, &src, 1, 0));
    char *got = fx_dump(target);
    cr_assert_not_null(want);
    cr_assert_not_null(got);
    cr_assert_str_eq(got, want, "the restored database is not the one after the last txn");
    free(want);
    free(got);
    edb_env_close(hook_env);
    bk_assert_no_objects(5000);
    bk_rm_tree(dir);
    free(dir);
}

Test(lowpin, spool_gone_when_closed_after_the_release, .timeout = 120)
{
    char *dir = bk_tmpdir(), tmp[600];
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    edb_backup *bk = NULL;
    edb_backup_stream *s = NULL;
    bk_buf out = { 0 };
    spool_run_to_release(dir, tmp, &bk, &s, &out);
    edb_backup_close(s);                            /* cancels the emitting copier */
    edb_backup_end(bk);
    edb__lp_before_final = NULL;
    edb__lp_after_final_pin = NULL;
    cr_assert_eq(bk_wait_readers(edb__env_mdb(hook_env), 0, 3000), 0);
    cr_assert_eq(wait_fds_under(tmp, 5000), 0, "the spool file is still open after cancel");
    cr_assert_eq(entries_in(tmp), 0, "the spool file was left behind");
    free(out.p);
    edb_env_close(hook_env);
    bk_assert_no_objects(5000);
    bk_rm_tree(dir);
    free(dir);
}

/* No usable $TMPDIR: the spool cannot be made, the final pass degrades to
 * emitting its stage while pinned, and the archive is still exact. */
Test(lowpin, spool_unavailable_degrades_to_pinned_emits, .timeout = 60)
{
    char *dir = bk_tmpdir(), a[600], dbdir[600], target[600], tmp[600];
    snprintf(a, sizeof a, "%s/lowpin.edbk", dir);
    snprintf(dbdir, sizeof dbdir, "%s/db", dir);
    snprintf(target, sizeof target, "%s/restored", dir);
    snprintf(tmp, sizeof tmp, "%s/no-such-dir", dir);
    cr_assert_eq(setenv("TMPDIR", tmp, 1), 0);
    hook_env = bk_env_open(dir);
    bk_populate(hook_env, 3000);
    atomic_store(&edb__lp_stage_bytes, (size_t)16 * 4096);
    edb__lp_before_final = change_before_final;
    edb_backup_opts o = { .flags = EDB_BACKUP_LOW_PIN };
    edb_backup *bk = NULL;
    OK(edb_backup_begin(&bk, hook_env, &o));
    edb_backup_stream *s = NULL;
    OK(edb_backup_open(&s, bk));
    bk_buf out = { 0 };
    OK(bk_read_all(s, &out, 65536));
    edb_backup_close(s);
    edb_backup_end(bk);
    edb__lp_before_final = NULL;
    cr_assert_eq(atomic_load(&edb__lp_spooled_pages), 0);
    cr_assert_gt(atomic_load(&edb__lp_pinned_emits), 16, "emitted %llu pages pinned",
                 (unsigned long long)atomic_load(&edb__lp_pinned_emits));
    cr_assert_eq(fx_write(a, out.p, out.n), 0);
    free(out.p);
    char *want = fx_dump(dbdir);
    edb_backup_source src = { .path = a };
    OK(edb_backup_restore(NULL, target, &src, 1, 0));
    char *got = fx_dump(target);
    cr_assert_not_null(want);
    cr_assert_not_null(got);
    cr_assert_str_eq(got, want, "the restored database is not the one after the last txn");
    free(want);
    free(got);
    edb_env_close(hook_env);
    bk_rm_tree(dir);
    free(dir);
}

/* The final pass under the fault countdown (armed in the hook, so the N-th
 * wrapped call of the final pass and after fails: the snapshot, the map, the
 * spool's open, writes and reads, the ring): every run either succeeds with
 * an archive that verifies (a spool that failed degrades to pinned emits) or
 * fails cleanly; never a snapshot kept, never a spool left open or named. */
static long lp_fault_n;
static int lp_fault_errno;
static unsigned lp_fault_flags;
static unsigned lp_fault_version;

static void
fault_before_final(void)
{
    atomic_store(&sp_write_rc, bk_write(edb__env_mdb(hook_env), bk_dbi(hook_env), 0, 600,
                                        100 + lp_fault_version, 0));
    edb__fault_arm(lp_fault_n, lp_fault_errno, lp_fault_flags);
}

Test(lowpin, final_pass_faults_fail_cleanly, .timeout = 600)
{
    char *dir = bk_tmpdir(), tmp[600];
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    cr_assert_eq(mkdir(tmp, 0700), 0);
    cr_assert_eq(setenv("TMPDIR", tmp, 1), 0);
    hook_env = bk_env_open(dir);
    bk_populate(hook_env, 1500);
    atomic_store(&edb__lp_stage_bytes, (size_t)16 * 4096);
    edb__lp_before_final = fault_before_final;
    const struct { int err; unsigned flags; } kinds[] = {
        { EIO, 0 }, { ENOSPC, EDB__FAULT_PERSISTENT }, { EINTR, 0 }, { EIO, EDB__FAULT_SHORT },
    };
    unsigned ok = 0, failed = 0, degraded = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        /* Every call at first, then sparser; much sparser under valgrind or
         * a sanitizer (bk_slow), where each backup costs far more. */
        long div = bk_slow() > 1 ? 2 : 8;
        for (long n = 1;; n += 1 + n / div) {
            lp_fault_n = n;
            lp_fault_errno = kinds[k].err;
            lp_fault_flags = kinds[k].flags;
            lp_fault_version++;
            uint64_t pinned0 = atomic_load(&edb__lp_pinned_emits);
            edb_backup_opts o = { .flags = EDB_BACKUP_LOW_PIN };
            edb_backup *bk = NULL;
            OK(edb_backup_begin(&bk, hook_env, &o));
            edb_backup_stream *s = NULL;
            OK(edb_backup_open(&s, bk));
            bk_buf out = { 0 };
            int rc = bk_read_all(s, &out, 65536);
            edb_backup_close(s);
            edb_backup_end(bk);
            long fired = edb__fault_fired();
            edb__fault_disarm();
            MDB_OK(atomic_load(&sp_write_rc));
            cr_assert_eq(bk_wait_readers(edb__env_mdb(hook_env), 0, 5000), 0,
                         "n %ld errno %d: a snapshot stayed pinned", n, kinds[k].err);
            cr_assert_eq(wait_fds_under(tmp, 5000), 0, "n %ld errno %d: the spool is still open", n,
                         kinds[k].err);
            cr_assert_eq(entries_in(tmp), 0, "n %ld errno %d: a spool file was left", n, kinds[k].err);
            if (rc == 0) {
                char a[700];
                snprintf(a, sizeof a, "%s/f.edbk", dir);
                cr_assert_eq(fx_write(a, out.p, out.n), 0);
                edb_backup_source src = { .path = a };
                edb_backup_info info;
                OK(edb_backup_verify(&info, &src, 1, NULL, NULL));
                unlink(a);
                ok++;
                degraded += atomic_load(&edb__lp_pinned_emits) > pinned0;
            } else {
                cr_assert(rc == EDB_IO || rc == EDB_NOMEM || rc == EDB_CANCELED || rc == EDB_CORRUPT ||
                          rc == EDB_FULL,
                          "n %ld errno %d: %s (%s)", n, kinds[k].err, edb_err_name(rc), edb_error_last());
                failed++;
            }
            free(out.p);
            if (fired == 0)
                break;                      /* the countdown outlived the backup */
        }
    }
    edb__lp_before_final = NULL;
    cr_log_info("final pass under faults: %u succeeded (%u degraded to pinned emits), %u failed cleanly",
                ok, degraded, failed);
    cr_assert_gt(failed, 0);
    cr_assert_gt(degraded, 0, "no fault reached the spool");
    edb_env_close(hook_env);
    bk_assert_no_objects(5000);
    bk_rm_tree(dir);
    free(dir);
}

/* Without a writer, low-pin full and incremental archives restore exactly
 * the database (mdb_dump), and an unchanged database gives an empty increment. */
Test(lowpin, chain_with_incrementals_restores_exactly, .timeout = 60)
{
    char *dir = bk_tmpdir(), a[3][600], dbdir[600], target[600];
    snprintf(dbdir, sizeof dbdir, "%s/db", dir);
    edb_env *env = bk_env_open(dir);
    bk_populate(env, 5000);
    MDB_env *m = edb__env_mdb(env);
    MDB_dbi d = bk_dbi(env);
    char *dumps[3];
    for (int i = 0; i < 3; i++) {
        snprintf(a[i], sizeof a[i], "%s/lp%d.edbk", dir, i);
        edb_backup_opts o = { .flags = EDB_BACKUP_LOW_PIN | (i ? EDB_BACKUP_INCREMENTAL : 0),
                              .base = i ? a[i - 1] : NULL };
        edb_backup *bk = NULL;
        OK(edb_backup_begin(&bk, env, &o));
        edb_backup_stream *s = NULL;
        OK(edb_backup_open(&s, bk));
        bk_buf out = { 0 };
        OK(bk_read_all(s, &out, 100000));
        cr_assert_eq(fx_write(a[i], out.p, out.n), 0);
        free(out.p);
        edb_backup_close(s);
        edb_backup_end(bk);
        dumps[i] = fx_dump(dbdir);
        cr_assert_not_null(dumps[i]);
        if (i == 0)
            MDB_OK(bk_write(m, d, 100, 40, 7, 0));
    }
    edb_backup_source src[3] = { { .path = a[0] }, { .path = a[1] }, { .path = a[2] } };
    edb_backup_info info;
    OK(edb_backup_verify(&info, src, 3, NULL, NULL));
    cr_assert_eq(info.unchecked, 0);
    for (size_t k = 1; k <= 3; k++) {
        snprintf(target, sizeof target, "%s/r%zu", dir, k);
        OK(edb_backup_restore(NULL, target, src, k, 0));
        char *got = fx_dump(target);
        cr_assert_str_eq(got, dumps[k - 1], "prefix %zu", k);
        free(got);
    }
    /* The third archive was taken with nothing changed since the second. */
    OK(edb_backup_verify(&info, &src[2], 1, NULL, NULL));
    cr_assert_eq(info.pages, 0, "unchanged: %llu pages", (unsigned long long)info.pages);
    for (int i = 0; i < 3; i++)
        free(dumps[i]);
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
}

/* Closing a low-pin stream mid-pass returns at once; no snapshot stays pinned. */
Test(lowpin, close_mid_pass_releases_everything, .timeout = 30)
{
    char *dir = bk_tmpdir();
    edb_env *env = bk_env_open(dir);
    bk_populate(env, 8000);
    MDB_env *m = edb__env_mdb(env);
    edb_backup_opts o = { .flags = EDB_BACKUP_LOW_PIN, .ring_size = 1 };
    for (int round = 0; round < 3; round++) {
        edb_backup *bk = NULL;
        OK(edb_backup_begin(&bk, env, &o));
        cr_assert_eq(bk_readers(m), 0, "low-pin begin keeps no snapshot");
        edb_backup_stream *s = NULL;
        OK(edb_backup_open(&s, bk));
        uint8_t buf[4096];
        size_t n;
        for (int i = 0; i < 3 + round * 40; i++)
            OK(edb_backup_read(s, buf, sizeof buf, &n));
        uint64_t t0 = bk_now_ms();
        edb_backup_close(s);
        edb_backup_end(bk);
        cr_assert_lt(bk_now_ms() - t0, 100);
        cr_assert_eq(bk_wait_readers(m, 0, 3000), 0, "a snapshot stayed pinned");
    }
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
}

Test(lowpin, planner, .timeout = 5)
{
    uint64_t stage = 8192;
    cr_assert(!edb__lp_final_next(0, 0, UINT64_MAX, stage));           /* first pass is short */
    cr_assert(edb__lp_final_next(1, stage / 2, UINT64_MAX, stage));        /* fits the stage */
    cr_assert(!edb__lp_final_next(1, 100000, UINT64_MAX, stage));      /* too many changed */
    cr_assert(!edb__lp_final_next(2, 20000, 100000, stage));           /* converging */
    cr_assert(edb__lp_final_next(2, 90000, 100000, stage));               /* not converging */
    cr_assert(edb__lp_final_next(EDB__LP_MAX_PASSES, 1u << 30, UINT64_MAX, stage));
}

/* ---- rate limit ---- */

Test(rate, holds_the_limit_and_cancel_wakes_the_sleep, .timeout = 60)
{
    char *dir = bk_tmpdir();
    edb_env *env = bk_env_open(dir);
    bk_populate(env, 6000);
    const uint64_t rate = 8u << 20;             /* 8 MiB/s */
    edb_backup_opts o = { .rate_limit = rate };
    edb_backup *bk = NULL;
    OK(edb_backup_begin(&bk, env, &o));
    edb_backup_stream *s = NULL;
    OK(edb_backup_open(&s, bk));
    bk_buf out = { 0 };
    uint64_t t0 = bk_now_ms();
    OK(bk_read_all(s, &out, 1 << 20));
    double secs = (double)(bk_now_ms() - t0) / 1000.0, got = (double)out.n / secs;
    cr_log_info("rate limit %llu B/s: %zu bytes in %.3f s = %.0f B/s", (unsigned long long)rate,
                out.n, secs, got);
    cr_assert_gt(out.n, 4u << 20, "archive of %zu bytes is too small to measure", out.n);
    /* Never faster than the limit (plus one slot of start-up); slower only by scheduling. */
    cr_assert_leq(got, (double)rate * 1.05 + (double)(out.n > 0 ? 270000 : 0) / secs);
    /* (The lower bound is a speed, not the limit: a sanitizer or valgrind,
     * bk_slow(), divides it.) */
    cr_assert_geq(got, (double)rate * 0.5 / bk_slow());
    free(out.p);
    edb_backup_close(s);
    edb_backup_end(bk);

    /* A copier asleep in the limiter is woken by close at once. */
    o.rate_limit = 1000;                        /* a slot takes minutes */
    OK(edb_backup_begin(&bk, env, &o));
    OK(edb_backup_open(&s, bk));
    uint8_t buf[4096];
    size_t n;
    OK(edb_backup_read(s, buf, sizeof buf, &n));    /* the header goes first */
    bk_sleep_ms(50);
    uint64_t t1 = bk_now_ms();
    edb_backup_close(s);
    edb_backup_end(bk);
    cr_assert_eq(bk_wait_readers(edb__env_mdb(env), 0, 3000), 0);
    cr_assert_lt(bk_now_ms() - t1, 1000, "the limiter's sleep was not woken by cancel");
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
}

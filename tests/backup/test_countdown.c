/* The SQLite countdown over the backup path: for N = 1, 2, ... until no fault
 * fires, make the N-th wrapped system call or allocation (backup/sys.h) fail,
 * once or from then on, with several errnos, or transfer half; run begin ->
 * open -> read to the end -> close -> end; then check: either a complete
 * archive that decodes and equals data.mdb, or a clean error (a named code
 * with a detail); and in both cases the copier thread is gone, the reader slot
 * is released and no backup object is left. */
#include "bk_helpers.h"
#include "sys.h"

typedef struct outcome {
    unsigned ok, failed;
} outcome;

/* One scenario; returns the first error (0 = a complete archive checked). */
static int
scenario(edb_env *env, const char *dir, bool two_streams)
{
    edb_backup *bk = NULL;
    edb_backup_opts o = { .ring_size = 1 };
    int rc = edb_backup_begin(&bk, env, &o);
    if (rc != 0) {
        cr_assert_null(bk);
        return rc;
    }
    edb_backup_stream *s = NULL, *s2 = NULL;
    rc = edb_backup_open(&s, bk);
    if (rc == 0 && two_streams) {
        rc = edb_backup_open(&s2, bk);
        if (rc != 0)
            cr_assert_null(s2);
    }
    bk_buf b = { 0 };
    if (rc == 0)
        rc = bk_read_all(s, &b, 50000);
    if (rc == 0) {
        edb__fault_disarm();               /* checking is not part of the scenario */
        bk_arch a;
        bk_decode(&a, b.p, b.n);
        bk_compare_pages(&a, dir);
        bk_arch_free(&a);
    }
    free(b.p);
    edb_backup_close(s2);
    edb_backup_close(s);
    edb_backup_end(bk);
    return rc;
}

static void
countdown(int errnum, unsigned flags, outcome *out)
{
    char *dir = bk_tmpdir();
    edb_env *env = bk_env_open(dir);
    bk_populate(env, 1200);
    MDB_env *m = edb__env_mdb(env);
    int tasks = bk_tasks_baseline();
    for (long n = 1;; n++) {
        cr_assert_lt(n, 5000, "the countdown never ran out");
        edb__fault_arm(n, errnum, flags);
        int rc = scenario(env, dir, n % 2 == 0);
        long fired = edb__fault_fired();
        edb__fault_disarm();
        if (rc == 0) {
            out->ok++;
        } else {
            out->failed++;
            cr_assert(rc < 0 && rc != EDB_INTERNAL && rc != EDB_INVAL,
                      "fault %ld (errno %d): %s", n, errnum, edb_err_name(rc));
            cr_assert_neq(edb_error_last()[0], '\0', "fault %ld: no detail", n);
            cr_assert_gt(fired, 0, "fault %ld: an error without a fault: %s (%s)", n,
                         edb_err_name(rc), edb_error_last());
        }
        cr_assert_eq(bk_wait_tasks(tasks, 3000), tasks, "fault %ld: copier left running", n);
        cr_assert_eq(bk_wait_readers(m, 0, 3000), 0, "fault %ld: reader slot left", n);
        uint64_t end = bk_now_ms() + bk_ms(3000);
        while (edb__obj_live(EDB__OBJ_N) - edb__obj_live(EDB__OBJ_REG) != 0 && bk_now_ms() < end)
            bk_sleep_ms(1);
        cr_assert_eq(edb__obj_live(EDB__OBJ_N) - edb__obj_live(EDB__OBJ_REG), 0,
                     "fault %ld: backup objects left", n);
        if (fired == 0)
            break;                          /* the scenario ran out of calls before N */
    }
    cr_log_info("errno %d flags %u: %u scenarios completed, %u failed cleanly", errnum, flags,
                out->ok, out->failed);
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
    bk_assert_no_objects(3000);
    BK_LEAK_CHECK();
}

Test(backup_countdown, each_call_fails_once_with_eio, .timeout = 300)
{
    outcome o = { 0 };
    countdown(EIO, 0, &o);
    cr_assert_gt(o.failed, 10u);
    cr_assert_gt(o.ok, 0u);
}

Test(backup_countdown, each_call_fails_once_with_enomem_enospc_eagain, .timeout = 300)
{
    int errs[] = { ENOMEM, ENOSPC, EAGAIN };
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        outcome o = { 0 };
        countdown(errs[i], 0, &o);
        cr_assert_gt(o.failed, 10u);
    }
}

Test(backup_countdown, every_call_fails_from_the_nth_on, .timeout = 300)
{
    outcome o = { 0 };
    countdown(EIO, EDB__FAULT_PERSISTENT, &o);
    cr_assert_gt(o.failed, 10u);
}

Test(backup_countdown, eintr_and_short_reads_are_retried, .timeout = 300)
{
    /* pread of data.mdb loops over EINTR and short transfers: a backup whose
     * only fault is one of those on a read must still complete. */
    outcome o = { 0 };
    countdown(EIO, EDB__FAULT_SHORT, &o);
    cr_assert_gt(o.ok, 10u, "short transfers must be retried");
    outcome e = { 0 };
    countdown(EINTR, 0, &e);
    cr_assert_gt(e.ok, 0u);
}

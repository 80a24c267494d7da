/* The SQLite countdown over the archive lifecycle calls (backup/manifest.c,
 * backup/merge.c): for N = 1, 2, ... until no fault fires, the N-th wrapped
 * system call or allocation fails (once, or from then on, with several
 * errnos, or transfers half).  After each run: either success with a result
 * that checks (the manifest describes the archive and is a usable base; the
 * merged archive verifies and has the chain's snapshot), or a clean error (a
 * named code other than EDB_INTERNAL/EDB_INVAL, a detail, a fault that fired)
 * and no output file and no temporary file left. */
#include "bk_helpers.h"
#include "sys.h"

typedef struct fx {
    char *dir;
    edb_env *env;
    char full[1100], incr[1100], out[1100];
} fx;

static void
save(edb_env *env, const char *path, const char *base)
{
    edb_backup *bk = NULL;
    edb_backup_opts o = { .flags = base ? EDB_BACKUP_INCREMENTAL : 0, .base = base };
    OK(edb_backup_begin(&bk, env, &o));
    OK(edb_backup_save(bk, path, 0, NULL, NULL));
    edb_backup_end(bk);
}

static void
fx_init(fx *f)
{
    f->dir = bk_tmpdir();
    f->env = bk_env_open(f->dir);
    bk_populate(f->env, bk_scale(800));
    snprintf(f->full, sizeof f->full, "%s/full.edbk", f->dir);
    snprintf(f->incr, sizeof f->incr, "%s/incr.edbk", f->dir);
    snprintf(f->out, sizeof f->out, "%s/out", f->dir);
    save(f->env, f->full, NULL);
    MDB_OK(bk_write(edb__env_mdb(f->env), bk_dbi(f->env), 100, 50, 3, 0));
    save(f->env, f->incr, f->full);
}

static void
fx_fini(fx *f)
{
    edb_env_close(f->env);
    bk_rm_tree(f->dir);
    free(f->dir);
}

/* Nothing but the fixture's files in the directory: no output, no temporary. */
static void
only_fixture_files(const fx *f, long n)
{
    DIR *d = opendir(f->dir);
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *x = de->d_name;
        cr_assert(strcmp(x, ".") == 0 || strcmp(x, "..") == 0 || strcmp(x, "db") == 0 ||
                  strcmp(x, "full.edbk") == 0 || strcmp(x, "incr.edbk") == 0,
                  "fault %ld: left behind: %s", n, x);
    }
    closedir(d);
}

typedef int (*scenario_fn)(fx *f);

static int
do_manifest(fx *f)
{
    edb_backup_source s = { .path = f->full, .fd = -1 };
    return edb_backup_manifest_write(&s, f->out, 0);
}

static void
check_manifest(fx *f)
{
    edb_backup_source s = { .path = f->out, .fd = -1 }, a = { .path = f->full, .fd = -1 };
    edb_backup_summary m, x;
    OK(edb_backup_describe(&m, &s));
    OK(edb_backup_describe(&x, &a));
    cr_assert_eq(m.manifest, 1);
    cr_assert(memcmp(m.backup_id, x.backup_id, 16) == 0);
    cr_assert_eq(m.txnid, x.txnid);
    cr_assert_eq(m.bytes, x.bytes);
    /* A usable base. */
    edb_backup *bk = NULL;
    edb_backup_opts o = { .flags = EDB_BACKUP_INCREMENTAL, .base = f->out };
    OK(edb_backup_begin(&bk, f->env, &o));
    edb_backup_end(bk);
}

static int
do_merge(fx *f)
{
    edb_backup_source s[2] = { { .path = f->full, .fd = -1 }, { .path = f->incr, .fd = -1 } };
    return edb_backup_merge(NULL, f->out, s, 2, 0);
}

static void
check_merge(fx *f)
{
    edb_backup_source s = { .path = f->out, .fd = -1 }, c[2] = { { .path = f->full, .fd = -1 },
                                                                  { .path = f->incr, .fd = -1 } };
    edb_backup_info a, b;
    OK(edb_backup_verify(&a, &s, 1, NULL, NULL));
    OK(edb_backup_verify(&b, c, 2, NULL, NULL));
    cr_assert_eq(a.txnid, b.txnid);
    cr_assert_eq(a.npages, b.npages);
}

static int
do_describe(fx *f)
{
    edb_backup_source s = { .path = f->incr, .fd = -1 };
    edb_backup_summary m;
    int rc = edb_backup_describe(&m, &s);
    if (rc == 0)
        cr_assert_eq(m.complete, 1, "a fault may fail describe, never make it lie: %s", m.problem);
    return rc;
}

static void
countdown(fx *f, scenario_fn run, void (*check)(fx *), int errnum, unsigned flags, unsigned *ok,
          unsigned *failed)
{
    for (long n = 1;; n++) {
        cr_assert_lt(n, 20000, "the countdown never ran out");
        edb__fault_arm(n, errnum, flags);
        int rc = run(f);
        long fired = edb__fault_fired();
        edb__fault_disarm();
        if (rc == 0) {
            (*ok)++;
            if (check != NULL)
                check(f);
            unlink(f->out);
        } else {
            (*failed)++;
            cr_assert(rc < 0 && rc != EDB_INTERNAL && rc != EDB_INVAL, "fault %ld (errno %d): %s: %s", n,
                      errnum, edb_err_name(rc), edb_error_last());
            cr_assert_neq(edb_error_last()[0], '\0', "fault %ld: no detail", n);
            cr_assert_gt(fired, 0, "fault %ld: an error without a fault: %s (%s)", n, edb_err_name(rc),
                         edb_error_last());
        }
        only_fixture_files(f, n);
        if (fired == 0)
            break;
    }
}

static void
all_faults(scenario_fn run, void (*check)(fx *), bool few)
{
    fx f;
    fx_init(&f);
    struct { int errnum; unsigned flags; } modes[] = {
        { EIO, 0 }, { EIO, EDB__FAULT_PERSISTENT }, { EIO, EDB__FAULT_SHORT },
        { ENOSPC, 0 }, { ENOMEM, 0 }, { EINTR, 0 },
    };
    /* few: a scenario of many calls (merge reads and writes every page, and
     * each success fsyncs) runs the three modes that cover its paths. */
    size_t nmodes = few ? 3 : sizeof modes / sizeof modes[0];
    for (size_t i = 0; i < nmodes; i++) {
        unsigned ok = 0, failed = 0;
        countdown(&f, run, check, modes[i].errnum, modes[i].flags, &ok, &failed);
        cr_assert_gt(ok, 0u, "mode %zu: never succeeded", i);
        if (modes[i].flags != EDB__FAULT_SHORT && modes[i].errnum != EINTR)
            cr_assert_gt(failed, 3u, "mode %zu: the countdown reached few calls", i);
    }
    fx_fini(&f);
}

Test(lifecycle_faults, manifest_write_fails_cleanly, .timeout = 300)
{
    all_faults(do_manifest, check_manifest, false);
}

Test(lifecycle_faults, merge_fails_cleanly, .timeout = 300)
{
    all_faults(do_merge, check_merge, true);
}

Test(lifecycle_faults, describe_fails_cleanly, .timeout = 300)
{
    all_faults(do_describe, NULL, false);
}

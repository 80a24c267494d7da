/*
 * The library's archive writers: edb_backup_save (a file, atomically) and
 * edb_backup_write_fd (a pipe).  What they promise: a complete, verifiable
 * archive or no file at the final name (and no temporary file left); 0600
 * whatever the umask; no clobbering without EDB_SAVE_OVERWRITE; cancel from
 * another thread; a reader that goes away is an error, never a SIGPIPE death
 * (the fault countdown over both writers is in test_faults.c).
 */
#include "bk_helpers.h"
#include "copier.h"
#include "sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>


static char *dir;
static edb_env *env;
static int base_tasks;                          /* threads before any backup */

/* 0 once the thread count is back to the baseline (the copier is gone), within 2 s. */
static int
copiers_gone(void)
{
    for (int i = 0; i < 1000; i++) {
        if (bk_tasks() == base_tasks)
            return 0;
        bk_sleep_ms(2);
    }
    return bk_tasks() - base_tasks;
}

static void
setup(void)
{
    dir = bk_tmpdir();
    env = bk_env_open(dir);                     /* the database is dir/db */
    bk_populate(env, 3000);
    base_tasks = bk_tasks_baseline();
}

static void
teardown(void)
{
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
    BK_LEAK_CHECK();
}

/* Names in dir other than "db" and the archive itself: leftovers. */
static int
leftovers(const char *keep)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, "db") == 0)
            continue;
        if (keep != NULL && strcmp(e->d_name, keep) == 0)
            continue;
        cr_log_error("leftover: %s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static int
verify_file(const char *path)
{
    edb_backup_source src = { .path = path };
    edb_backup_info info;
    return edb_backup_verify(&info, &src, 1, NULL, NULL);
}

static void
progress_count(void *ctx, uint64_t done, uint64_t total)
{
    uint64_t *calls = ctx;
    cr_assert_leq(done, total, "progress %llu past total %llu", (unsigned long long)done,
                  (unsigned long long)total);
    (*calls)++;
}

Test(backup_save, file_is_complete_private_and_alone, .init = setup, .fini = teardown, .timeout = 60)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/a.edbk", dir);
    mode_t old = umask(0);                      /* a permissive umask must not widen the mode */
    edb_backup *bk;
    OK(edb_backup_begin(&bk, env, NULL));
    uint64_t calls = 0;
    OK(edb_backup_save(bk, path, 0, progress_count, &calls));
    edb_backup_end(bk);
    umask(old);
    cr_assert_gt(calls, 0, "progress was never called");
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    OK(verify_file(path));
    cr_assert_eq(leftovers("a.edbk"), 0);
}

/* Progress callback: the most names (other than "db") seen in dir while the
 * backup was being written. */
static void
progress_names(void *ctx, uint64_t done, uint64_t total)
{
    (void)done;
    (void)total;
    int *most = ctx;
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && strcmp(e->d_name, "db") != 0;
    closedir(d);
    if (n > *most)
        *most = n;
}

/* The archive is written into an unnamed file (O_TMPFILE) that gets its name
 * only when complete: while it is written, the directory shows nothing, so a
 * process killed at that moment leaves nothing behind. */
Test(backup_save, no_name_until_complete, .init = setup, .fini = teardown, .timeout = 60)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/a.edbk", dir);
    edb_backup *bk;
    OK(edb_backup_begin(&bk, env, NULL));
    int most = 0;
    OK(edb_backup_save(bk, path, 0, progress_names, &most));
    edb_backup_end(bk);
    cr_assert_eq(most, 0, "a name appeared in the directory while the archive was written");
    OK(verify_file(path));
    cr_assert_eq(leftovers("a.edbk"), 0);

    /* With EDB_SAVE_OVERWRITE the unnamed file is linked under a temporary
     * name and renamed over the old archive. */
    OK(edb_backup_begin(&bk, env, NULL));
    most = 0;
    OK(edb_backup_save(bk, path, EDB_SAVE_OVERWRITE, progress_names, &most));
    edb_backup_end(bk);
    cr_assert_eq(most, 1, "only the old archive may be seen during an overwrite (saw %d names)", most);
    OK(verify_file(path));
    cr_assert_eq(leftovers("a.edbk"), 0);
}

/* Where the file system refuses O_TMPFILE (EOPNOTSUPP, EISDIR on old
 * kernels), the archive is written under a hidden temporary name, renamed
 * into place when complete. */
Test(backup_save, named_temporary_when_unnamed_files_are_refused, .init = setup, .fini = teardown,
     .timeout = 60)
{
    static const int refusals[] = { EOPNOTSUPP, EISDIR };
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/a%zu.edbk", dir, i);
        edb_backup *bk;
        OK(edb_backup_begin(&bk, env, NULL));
        int most = 0;
        /* The save's third wrapped call is the O_TMPFILE open (after the
         * directory's open and the target's fstatat). */
        edb__fault_arm(3, refusals[i], 0);
        int rc = edb_backup_save(bk, path, 0, progress_names, &most);
        long fired = edb__fault_fired();
        edb__fault_disarm();
        edb_backup_end(bk);
        cr_assert_eq(rc, 0, "%s", edb_error_last());
        cr_assert_eq(fired, 1, "the O_TMPFILE open was not the faulted call");
        cr_assert_eq(most, 1, "the hidden temporary name was not seen during the save");
        OK(verify_file(path));
        cr_assert_eq(leftovers(path + strlen(dir) + 1), 0);
        unlink(path);
    }
}

/* edb_backup_save writes a full backup zero-copy (frames reference the
 * snapshot's map); edb_backup_read copies.  Both streams of one backup must
 * give the same bytes: with the default ring, and with a ring of two slots
 * (the copier waits on every slot); the read stream is opened before the
 * save, so both copiers run on the same snapshot at once. */
static void
save_equals_read(size_t ring_size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/a.edbk", dir);
    unlink(path);
    edb_backup *bk;
    edb_backup_opts o = { .ring_size = ring_size };
    OK(edb_backup_begin(&bk, env, &o));
    edb_backup_stream *s;
    OK(edb_backup_open(&s, bk));
    unsigned long zc0 = atomic_load(&edb__copier_zc_frames);
    OK(edb_backup_save(bk, path, 0, NULL, NULL));
    cr_assert_gt(atomic_load(&edb__copier_zc_frames) - zc0, 1, "edb_backup_save did not write zero-copy");
    bk_buf mem = { 0 };
    OK(bk_read_all(s, &mem, 7777));
    edb_backup_close(s);
    edb_backup_end(bk);
    bk_arch a;
    bk_decode(&a, mem.p, mem.n);               /* a whole, valid archive */
    cr_assert_gt(a.frames, 2);
    free(a.page);

    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    struct stat st;
    fstat(fd, &st);
    cr_assert_eq((size_t)st.st_size, mem.n, "file %lld bytes, stream %zu", (long long)st.st_size, mem.n);
    uint8_t *file = malloc(mem.n);
    cr_assert_eq(read(fd, file, mem.n), (ssize_t)mem.n);
    close(fd);
    cr_assert(memcmp(file, mem.p, mem.n) == 0, "the file differs from the stream's bytes");
    free(file);
    free(mem.p);
    OK(verify_file(path));
}

Test(backup_save, same_bytes_as_a_stream, .init = setup, .fini = teardown, .timeout = 60)
{
    save_equals_read(0);
    save_equals_read(1);                        /* the minimum: two slots */
}

/* The copier unmaps the zero-copy map behind the sink while it writes (the
 * slots it gave back), instead of all of it at the end: with the threshold
 * at one system page and rings of two slots (the copier waits on the sink),
 * it does so several times during one save, and the archive is still the
 * stream's bytes exactly (no page was written from unmapped memory). */
Test(backup_save, map_unmapped_behind_the_sink, .init = setup, .fini = teardown, .timeout = 60)
{
    size_t old = atomic_load(&edb__copier_zc_trim_min);
    atomic_store(&edb__copier_zc_trim_min, (size_t)sysconf(_SC_PAGESIZE));
    unsigned long t0 = atomic_load(&edb__copier_zc_trims);
    save_equals_read(1);
    unsigned long t1 = atomic_load(&edb__copier_zc_trims);
    cr_assert_geq(t1 - t0, 2, "the map was unmapped %lu times before the end", t1 - t0);
    save_equals_read(0);
    atomic_store(&edb__copier_zc_trim_min, old);
    cr_assert_eq(copiers_gone(), 0);
}

Test(backup_save, never_clobbers_without_overwrite, .init = setup, .fini = teardown, .timeout = 60)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/a.edbk", dir);
    FILE *f = fopen(path, "w");
    fputs("precious", f);
    fclose(f);
    edb_backup *bk;
    OK(edb_backup_begin(&bk, env, NULL));
    RC(edb_backup_save(bk, path, 0, NULL, NULL), EDB_EXISTS);
    cr_assert(strstr(edb_error_last(), "exists") != NULL, "%s", edb_error_last());
    char buf[16] = { 0 };
    f = fopen(path, "r");
    cr_assert_not_null(fgets(buf, sizeof buf, f));
    fclose(f);
    cr_assert_str_eq(buf, "precious");
    OK(edb_backup_save(bk, path, EDB_SAVE_OVERWRITE, NULL, NULL));
    OK(verify_file(path));
    edb_backup_end(bk);
    cr_assert_eq(leftovers("a.edbk"), 0);
}

Test(backup_save, bad_arguments, .init = setup, .fini = teardown, .timeout = 30)
{
    edb_backup *bk;
    OK(edb_backup_begin(&bk, env, NULL));
    RC(edb_backup_save(NULL, "x", 0, NULL, NULL), EDB_INVAL);
    RC(edb_backup_save(bk, NULL, 0, NULL, NULL), EDB_INVAL);
    RC(edb_backup_save(bk, "", 0, NULL, NULL), EDB_INVAL);
    RC(edb_backup_save(bk, "x", 0x80, NULL, NULL), EDB_INVAL);
    char path[4096];
    snprintf(path, sizeof path, "%s/no/such/dir/a.edbk", dir);
    RC(edb_backup_save(bk, path, 0, NULL, NULL), EDB_NOTFOUND);
    snprintf(path, sizeof path, "%s/", dir);
    RC(edb_backup_save(bk, path, 0, NULL, NULL), EDB_INVAL);
    RC(edb_backup_write_fd(NULL, 1, NULL, NULL), EDB_INVAL);
    RC(edb_backup_write_fd(bk, -1, NULL, NULL), EDB_INVAL);
    edb_backup_end(bk);
    cr_assert_eq(leftovers(NULL), 0);
}

struct stopper { edb_env *env; unsigned after_ms; };

static void *
stop_later(void *arg)
{
    struct stopper *st = arg;
    bk_sleep_ms(st->after_ms);
    edb_backup_stop(st->env);
    return NULL;
}

static void *
close_env_later(void *arg)
{
    struct stopper *st = arg;
    bk_sleep_ms(st->after_ms);
    edb_env_close(st->env);
    return NULL;
}

/* The zero-copy save writes from a map of data.mdb while the copier holds the
 * snapshot: env close from another thread mid-save cancels it, joins the
 * copier (which must not wait for the writer), and the save fails cleanly,
 * its map still valid under its last write. */
Test(backup_save, env_close_during_a_zero_copy_save, .init = setup, .fini = teardown, .timeout = 60)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/a.edbk", dir);
    edb_backup_opts o = { .rate_limit = 256 << 10 };
    edb_backup *bk;
    OK(edb_backup_begin(&bk, env, &o));
    unsigned long zc0 = atomic_load(&edb__copier_zc_frames);
    struct stopper st = { env, 150 };
    pthread_t t;
    pthread_create(&t, NULL, close_env_later, &st);
    uint64_t t0 = bk_now_ms();
    RC(edb_backup_save(bk, path, 0, NULL, NULL), EDB_CANCELED);
    uint64_t took = bk_now_ms() - t0;
    pthread_join(t, NULL);
    env = NULL;                                 /* closed: teardown must not close it again */
    edb_backup_end(bk);                         /* ended by env close: a harmless no-op */
    cr_assert_gt(atomic_load(&edb__copier_zc_frames) - zc0, 0, "the save was not zero-copy");
    cr_assert_lt(took, bk_ms(2000), "env close took %llu ms to end the save", (unsigned long long)took);
    cr_assert_eq(access(path, F_OK), -1, "a canceled save left the final file");
    cr_assert_eq(leftovers(NULL), 0);
    cr_assert_eq(copiers_gone(), 0);
}

Test(backup_save, stop_from_another_thread_leaves_nothing, .init = setup, .fini = teardown, .timeout = 60)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/a.edbk", dir);
    /* 64 KiB/s: the save is certainly still running when the stop comes. */
    edb_backup_opts o = { .rate_limit = 64 << 10 };
    edb_backup *bk;
    OK(edb_backup_begin(&bk, env, &o));
    struct stopper st = { env, 200 };
    pthread_t t;
    pthread_create(&t, NULL, stop_later, &st);
    uint64_t t0 = bk_now_ms();
    RC(edb_backup_save(bk, path, 0, NULL, NULL), EDB_CANCELED);
    uint64_t took = bk_now_ms() - t0;
    pthread_join(t, NULL);
    edb_backup_end(bk);
    cr_assert_lt(took, bk_ms(2000), "the stop took %llu ms to end the save", (unsigned long long)took);
    cr_assert_eq(access(path, F_OK), -1, "a canceled save left the final file");
    cr_assert_eq(leftovers(NULL), 0);
    cr_assert_eq(copiers_gone(), 0);
    cr_assert_eq(bk_readers(edb__env_mdb(env)), 0, "the snapshot's reader slot is still taken");
}

struct drain { int fd; size_t limit; size_t got; };

static void *
drain_some(void *arg)
{
    struct drain *d = arg;
    char buf[8192];
    while (d->got < d->limit) {
        ssize_t r = read(d->fd, buf, sizeof buf);
        if (r <= 0)
            break;
        d->got += (size_t)r;
    }
    close(d->fd);                               /* the reader goes away */
    return NULL;
}

Test(backup_save, pipe_reader_going_away_is_an_error_not_a_signal, .init = setup, .fini = teardown,
     .timeout = 60)
{
    /* SIGPIPE at its default disposition: a write to a dead pipe would kill us. */
    signal(SIGPIPE, SIG_DFL);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    struct drain d = { .fd = p[0], .limit = 100000 };
    pthread_t t;
    pthread_create(&t, NULL, drain_some, &d);
    edb_backup *bk;
    OK(edb_backup_begin(&bk, env, NULL));
    RC(edb_backup_write_fd(bk, p[1], NULL, NULL), EDB_IO);
    cr_assert(strstr(edb_error_last(), "broken pipe") != NULL, "%s", edb_error_last());
    pthread_join(t, NULL);
    close(p[1]);
    edb_backup_end(bk);
    sigset_t pending;
    sigpending(&pending);
    cr_assert(!sigismember(&pending, SIGPIPE), "a SIGPIPE was left pending");
    cr_assert_eq(copiers_gone(), 0);
}

Test(backup_save, pipe_fully_read_is_a_valid_archive, .init = setup, .fini = teardown, .timeout = 60)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/piped.edbk", dir);
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(out, 0);
    edb_backup *bk;
    OK(edb_backup_begin(&bk, env, NULL));
    unsigned long zc0 = atomic_load(&edb__copier_zc_frames);
    OK(edb_backup_write_fd(bk, out, NULL, NULL));
    cr_assert_gt(atomic_load(&edb__copier_zc_frames) - zc0, 1, "edb_backup_write_fd did not write zero-copy");
    /* the same bytes as a stream of the same backup read with edb_backup_read */
    edb_backup_stream *s;
    OK(edb_backup_open(&s, bk));
    bk_buf mem = { 0 };
    OK(bk_read_all(s, &mem, 100000));
    edb_backup_close(s);
    edb_backup_end(bk);
    close(out);
    OK(verify_file(path));
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    uint8_t *file = malloc(mem.n + 1);
    cr_assert_eq(read(fd, file, mem.n + 1), (ssize_t)mem.n, "the file and the stream differ in length");
    close(fd);
    cr_assert(memcmp(file, mem.p, mem.n) == 0, "the file differs from the stream's bytes");
    free(file);
    free(mem.p);
}

/* The fault countdown over edb_backup_save and edb_backup_write_fd (every
 * wrapped call failing once and persistently, several errnos, short writes) is
 * in tests/backup/test_faults.c: backup_faults::save_to_a_file and
 * backup_faults::write_fd_into_a_pipe. */

/*
 * test_zero.c: the page hash table check of pages no frame carries (check 4
 * of doc/backup-format.md: each such entry is the hash of a zero page seeded
 * with its page number), whose hashes the reader computes ahead on a worker
 * thread while it reads the frames (issue #12).
 *
 * The archives are hand-made (archive_fixture.h) from a small real database
 * grown to BIG_PAGES pages: every fourth page past the database's own carries
 * bytes, the others are zero pages the archive leaves out, so the gaps are
 * spread over the whole archive and the last page is a zero page.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <lmdb.h>

#include "archive_fixture.h"
#include "edb_backup.h"
#include "reader.h"
#include "sys.h"

/* Enough zero pages (about 6,100 of 4 KiB, 24 MiB) for the worker to start
 * under the default threshold (16 MiB). */
#define BIG_EXTRA 8192u

struct zt {
    char *dir;
    char db[4200];
    fx_image img;           /* the real database */
    fx_image grown;         /* grown to @npages with zero pages */
    uint64_t nzero;         /* zero pages the full archive leaves out */
    uint64_t first_zero, mid_zero, last_zero;
};

static size_t saved_zero_min;

static bool
page_is_zero(const fx_image *img, uint64_t p)
{
    const uint8_t *pg = img->data + p * img->page_size;
    for (size_t i = 0; i < img->page_size; i++)
        if (pg[i] != 0)
            return false;
    return true;
}

static void
zt_init(struct zt *t, uint64_t extra)
{
    memset(t, 0, sizeof *t);
    /* the table check waits for the worker's hashes: zero_ahead is exact */
    edb__reader_zero_wait = true;
    saved_zero_min = edb__reader_zero_min;
    t->dir = fx_tmpdir();
    snprintf(t->db, sizeof t->db, "%s/db", t->dir);
    cr_assert_eq(mkdir(t->db, 0700), 0);
    fx_db_fill(t->db, 200, 1, 0);
    cr_assert_eq(fx_image_load(&t->img, t->db), 0);
    uint64_t npages = t->img.npages + extra;
    if ((npages - 1) % 4 == 0)
        npages++;                         /* the last page a zero page */
    fx_image *g = &t->grown;
    *g = t->img;
    size_t ps = g->page_size;
    g->npages = npages;
    if (g->max_pages < npages)
        g->max_pages = npages;
    g->data = calloc(npages, ps);
    cr_assert_not_null(g->data);
    memcpy(g->data, t->img.data, t->img.npages * ps);
    for (uint64_t p = t->img.npages; p < npages; p++)
        if (p % 4 == 0)
            memset(g->data + p * ps, (int)(p % 251) + 1, ps);
    edb__put_le64(g->meta + EDB__META_OFF_LASTPG, npages - 1);
    uint64_t k = 0;
    for (uint64_t p = 2; p < npages; p++)
        if (page_is_zero(g, p)) {
            if (k == 0)
                t->first_zero = p;
            t->last_zero = p;
            k++;
        }
    t->nzero = k;
    for (uint64_t p = 2, i = 0; p < npages; p++)
        if (page_is_zero(g, p) && i++ == k / 2) {
            t->mid_zero = p;
            break;
        }
    cr_assert_eq(t->last_zero, npages - 1, "the last page is a zero page");
}

static void
zt_fini(struct zt *t)
{
    free(t->grown.data);
    fx_image_free(&t->img);
    fx_rmrf(t->dir);
    free(t->dir);
    edb__reader_zero_min = saved_zero_min;
    edb__reader_zero_wait = false;
}

static void
build_full(fx_archive *a, const fx_image *img)
{
    fx_skip_zero_pages = 1;
    fx_build(a, img, NULL, 0, 64, NULL, 0);
    fx_skip_zero_pages = 0;
}

static char *
put(struct zt *t, const char *name, const void *data, size_t len)
{
    char *p = malloc(4300);
    snprintf(p, 4300, "%s/%s", t->dir, name);
    cr_assert_eq(fx_write(p, data, len), 0);
    return p;
}

/* edb__reader_read of @len bytes of @data from a file, with @cbs. */
static int
read_mem(struct zt *t, const void *data, size_t len, const edb__reader_cbs *cbs, edb__archive *a)
{
    char *p = put(t, "a.edbk", data, len);
    int fd = open(p, O_RDONLY);
    cr_assert_geq(fd, 0);
    int rc = edb__reader_read(a, fd, cbs);
    close(fd);
    unlink(p);
    free(p);
    return rc;
}

static void
expect_zero_refused(struct zt *t, fx_archive *x, uint64_t p, const edb__reader_cbs *cbs)
{
    char want[200];
    snprintf(want, sizeof want, "page hash table entry %llu (offset %llu) does not match a zero "
             "page (the frames do not carry it)", (unsigned long long)p,
             (unsigned long long)(x->table_off + 16 * p));
    for (int bit = 0; bit < 2; bit++) {
        size_t off = x->table_off + 16 * p + (bit ? 15 : 0);
        x->data[off] ^= (uint8_t)(bit ? 0x80 : 0x01);
        edb__archive a;
        int rc = read_mem(t, x->data, x->len, cbs, &a);
        x->data[off] ^= (uint8_t)(bit ? 0x80 : 0x01);
        cr_assert_eq(rc, EDB_CHECKSUM, "entry %llu: %s (%s)", (unsigned long long)p,
                     edb_err_name(rc), edb_error_last());
        cr_assert(strstr(edb_error_last(), want) != NULL, "entry %llu: %s", (unsigned long long)p,
                  edb_error_last());
        cr_assert_eq(a.where.pgno, (int64_t)p);
        edb__archive_free(&a);
    }
}

/* A large archive: the worker computes every zero page's hash (the table
 * check takes them all from it), and a wrong entry for a page left out is
 * refused at the start, the middle and the end of the archive. */
Test(zero_pages, large_archive_uses_the_worker_and_refuses_wrong_entries, .timeout = 120)
{
    struct zt t;
    zt_init(&t, BIG_EXTRA);
    cr_assert_gt(t.nzero * t.grown.page_size, edb__reader_zero_min, "the test's zero pages "
                 "(%llu) do not reach the worker's threshold", (unsigned long long)t.nzero);
    fx_archive x;
    build_full(&x, &t.grown);
    edb__archive a;
    int rc = read_mem(&t, x.data, x.len, NULL, &a);
    cr_assert_eq(rc, 0, "%s", edb_error_last());
    cr_assert_eq(a.zero_ahead, t.nzero, "the worker computed %llu of the %llu zero-page hashes",
                 (unsigned long long)a.zero_ahead, (unsigned long long)t.nzero);
    cr_assert_eq(a.ncarried + t.nzero + 2, t.grown.npages);
    edb__archive_free(&a);
    edb__reader_cbs drop = { .drop_table = true };
    cr_assert_eq(read_mem(&t, x.data, x.len, &drop, &a), 0, "%s", edb_error_last());
    cr_assert_eq(a.zero_ahead, t.nzero);
    edb__archive_free(&a);
    expect_zero_refused(&t, &x, t.first_zero, NULL);
    expect_zero_refused(&t, &x, t.mid_zero, NULL);
    expect_zero_refused(&t, &x, t.last_zero, &drop);
    fx_archive_free(&x);
    zt_fini(&t);
}

/* A small archive leaves too few pages out for a thread: the table check
 * computes the hashes inline, and refuses wrong entries the same; with the
 * threshold lowered the same small archive goes through the worker. */
Test(zero_pages, small_archive_inline_and_forced_worker, .timeout = 60)
{
    struct zt t;
    zt_init(&t, 40);
    cr_assert_lt(t.nzero * t.grown.page_size, edb__reader_zero_min);
    cr_assert_gt(t.nzero, 20);
    fx_archive x;
    build_full(&x, &t.grown);
    edb__archive a;
    cr_assert_eq(read_mem(&t, x.data, x.len, NULL, &a), 0, "%s", edb_error_last());
    cr_assert_eq(a.zero_ahead, 0, "no thread for %llu zero pages", (unsigned long long)t.nzero);
    edb__archive_free(&a);
    expect_zero_refused(&t, &x, t.first_zero, NULL);
    expect_zero_refused(&t, &x, t.mid_zero, NULL);
    expect_zero_refused(&t, &x, t.last_zero, NULL);
    edb__reader_zero_min = 0;
    cr_assert_eq(read_mem(&t, x.data, x.len, NULL, &a), 0, "%s", edb_error_last());
    cr_assert_eq(a.zero_ahead, t.nzero);
    edb__archive_free(&a);
    expect_zero_refused(&t, &x, t.first_zero, NULL);
    expect_zero_refused(&t, &x, t.mid_zero, NULL);
    expect_zero_refused(&t, &x, t.last_zero, NULL);
    fx_archive_free(&x);
    zt_fini(&t);
}

/* Errors while the worker runs: the archive truncated in the middle of its
 * frames (after the worker started) and at the start of its table, and a
 * consumer failing at a frame, each return their own error and join the
 * worker (no hang: .timeout; no leak: ASan and memcheck runs). */
static int
fail_at_frame(void *ctx, const edb__arch_header *h, uint64_t frame)
{
    (void)h;
    return frame == *(uint64_t *)ctx ? EDB_IO : 0;
}

Test(zero_pages, errors_while_the_worker_runs, .timeout = 120)
{
    struct zt t;
    zt_init(&t, BIG_EXTRA);
    fx_archive x;
    build_full(&x, &t.grown);
    cr_assert_gt(x.nframes, 8);
    edb__archive a;
    size_t cuts[] = { x.frame_off[x.nframes / 2] + 100, x.frame_off[x.nframes - 1],
                      x.trailer_off + 7, x.table_off + 16 * t.mid_zero, x.end_off };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        int rc = read_mem(&t, x.data, cuts[i], NULL, &a);
        cr_assert_eq(rc, EDB_CORRUPT, "cut at %zu: %s (%s)", cuts[i], edb_err_name(rc),
                     edb_error_last());
        cr_assert(strstr(edb_error_last(), "truncated") != NULL, "%s", edb_error_last());
        edb__archive_free(&a);
    }
    uint64_t at[] = { 1, x.nframes / 2, x.nframes - 1 };
    for (size_t i = 0; i < 3; i++) {
        edb__reader_cbs cbs = { .on_frame_end = fail_at_frame, .ctx = &at[i] };
        cr_assert_eq(read_mem(&t, x.data, x.len, &cbs, &a), EDB_IO);
        edb__archive_free(&a);
    }
    fx_archive_free(&x);
    zt_fini(&t);
}

/* Every wrapped call of a read failing in turn (reads of the archive, the
 * worker's creation): each read failure is EDB_IO, and the one call whose
 * failure the reader absorbs is the thread's creation, after which the table
 * check computes every hash inline, with the same verdicts. */
Test(zero_pages, every_failing_call_and_no_thread, .timeout = 300)
{
    struct zt t;
    zt_init(&t, BIG_EXTRA);
    fx_archive x;
    build_full(&x, &t.grown);
    char *p = put(&t, "full.edbk", x.data, x.len);
    long n, absorbed = 0;
    for (n = 1; n < 1000; n++) {
        int fd = open(p, O_RDONLY);
        cr_assert_geq(fd, 0);
        edb__archive a;
        edb__fault_arm(n, EAGAIN, 0);
        int rc = edb__reader_read(&a, fd, NULL);
        long fired = edb__fault_fired();
        edb__fault_disarm();
        close(fd);
        if (fired == 0) {
            cr_assert_eq(rc, 0, "%s", edb_error_last());
            edb__archive_free(&a);
            break;
        }
        if (rc == 0) {
            absorbed++;
            cr_assert_eq(a.zero_ahead, 0, "call %ld: the worker ran although its creation failed",
                         n);
        } else {
            cr_assert(rc == EDB_IO || rc == EDB_NOMEM, "call %ld: %s (%s)", n, edb_err_name(rc),
                      edb_error_last());
        }
        edb__archive_free(&a);
    }
    cr_assert_lt(n, 1000);
    cr_assert_eq(absorbed, 1, "%ld failures absorbed", absorbed);
    free(p);
    fx_archive_free(&x);
    zt_fini(&t);
}

/* An archive read from a pipe, written by another thread; and one that
 * ends early in the pipe. */
struct feeder {
    int fd;
    const uint8_t *data;
    size_t len;
};

static void *
feed(void *arg)
{
    struct feeder *f = arg;
    size_t off = 0;
    while (off < f->len) {
        ssize_t n = write(f->fd, f->data + off, f->len - off > 65536 ? 65536 : f->len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(f->fd);
    return NULL;
}

static int
read_pipe(const uint8_t *data, size_t len, edb__archive *a)
{
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    struct feeder f = { pfd[1], data, len };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, feed, &f), 0);
    int rc = edb__reader_read(a, pfd[0], NULL);
    /* the reader reads to the end or stops early: drain so the feeder ends */
    char sink[65536];
    while (read(pfd[0], sink, sizeof sink) > 0)
        ;
    pthread_join(th, NULL);
    close(pfd[0]);
    return rc;
}

Test(zero_pages, from_a_pipe, .timeout = 120)
{
    struct zt t;
    zt_init(&t, BIG_EXTRA);
    fx_archive x;
    build_full(&x, &t.grown);
    edb__archive a;
    cr_assert_eq(read_pipe(x.data, x.len, &a), 0, "%s", edb_error_last());
    cr_assert_eq(a.zero_ahead, t.nzero);
    edb__archive_free(&a);
    cr_assert_eq(read_pipe(x.data, x.frame_off[x.nframes / 2] + 4096, &a), EDB_CORRUPT);
    edb__archive_free(&a);
    x.data[x.table_off + 16 * t.last_zero] ^= 1;
    cr_assert_eq(read_pipe(x.data, x.len, &a), EDB_CHECKSUM);
    cr_assert(strstr(edb_error_last(), "does not match a zero page") != NULL, "%s",
              edb_error_last());
    edb__archive_free(&a);
    fx_archive_free(&x);
    zt_fini(&t);
}

/* An incremental: only the pages at or past its base's end are zero pages;
 * those below that it does not carry are the base's to prove. */
Test(zero_pages, incremental_zero_pages_past_the_base, .timeout = 120)
{
    struct zt t;
    zt_init(&t, BIG_EXTRA);
    fx_archive base, inc;
    fx_build(&base, &t.img, NULL, 0, 64, NULL, 0);
    fx_skip_zero_pages = 1;
    fx_build(&inc, &t.grown, &base, 0, 64, NULL, 0);
    fx_skip_zero_pages = 0;
    uint64_t past = 0;
    for (uint64_t p = t.img.npages; p < t.grown.npages; p++)
        past += page_is_zero(&t.grown, p);
    edb__archive a;
    cr_assert_eq(read_mem(&t, inc.data, inc.len, NULL, &a), 0, "%s", edb_error_last());
    cr_assert_eq(a.zero_ahead, past, "%llu of %llu", (unsigned long long)a.zero_ahead,
                 (unsigned long long)past);
    cr_assert_gt(a.unchecked, 0);
    edb__archive_free(&a);
    expect_zero_refused(&t, &inc, t.img.npages + (t.img.npages % 4 == 0 ? 1 : 0), NULL);
    expect_zero_refused(&t, &inc, t.last_zero, NULL);
    fx_archive_free(&inc);
    fx_archive_free(&base);
    zt_fini(&t);
}

/* Without waiting (as verify and restore run): the table check takes what
 * the worker has ready and computes the rest itself; the verdicts are the
 * same whatever the split. */
Test(zero_pages, without_waiting_the_verdicts_are_the_same, .timeout = 120)
{
    struct zt t;
    zt_init(&t, BIG_EXTRA);
    edb__reader_zero_wait = false;
    fx_archive x;
    build_full(&x, &t.grown);
    edb__archive a;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(read_mem(&t, x.data, x.len, NULL, &a), 0, "%s", edb_error_last());
        cr_assert_leq(a.zero_ahead, t.nzero);
        cr_log_info("round %d: %llu of %llu zero-page hashes from the worker", i,
                    (unsigned long long)a.zero_ahead, (unsigned long long)t.nzero);
        edb__archive_free(&a);
    }
    expect_zero_refused(&t, &x, t.first_zero, NULL);
    expect_zero_refused(&t, &x, t.mid_zero, NULL);
    expect_zero_refused(&t, &x, t.last_zero, NULL);
    fx_archive_free(&x);
    zt_fini(&t);
}

/* The same archive through the public API: verify accepts it and restore
 * writes exactly the image, zeros in the gaps, with the worker. */
Test(zero_pages, verify_and_restore_of_a_large_archive, .timeout = 120)
{
    struct zt t;
    zt_init(&t, BIG_EXTRA);
    fx_archive x;
    build_full(&x, &t.grown);
    char *p = put(&t, "full.edbk", x.data, x.len);
    edb_backup_source src = { .path = p };
    cr_assert_eq(edb_backup_verify(NULL, &src, 1, NULL, NULL), 0, "%s", edb_error_last());
    char out[4300];
    snprintf(out, sizeof out, "%s/out", t.dir);
    cr_assert_eq(edb_backup_restore(NULL, out, &src, 1, 0), 0, "%s", edb_error_last());
    fx_image r;
    cr_assert_eq(fx_image_load(&r, out), 0);
    cr_assert_eq(r.npages, t.grown.npages);
    size_t ps = t.grown.page_size;
    cr_assert_eq(memcmp(r.data + 2 * ps, t.grown.data + 2 * ps, (r.npages - 2) * ps), 0);
    fx_image_free(&r);
    /* a wrong zero-page entry: verify and restore refuse it alike */
    x.data[x.table_off + 16 * t.mid_zero + 5] ^= 0x10;
    cr_assert_eq(fx_write(p, x.data, x.len), 0);
    cr_assert_eq(edb_backup_verify(NULL, &src, 1, NULL, NULL), EDB_CHECKSUM);
    char vmsg[600];
    snprintf(vmsg, sizeof vmsg, "%s", edb_error_last());
    cr_assert(strstr(vmsg, "does not match a zero page") != NULL, "%s", vmsg);
    char out2[4300];
    snprintf(out2, sizeof out2, "%s/out2", t.dir);
    cr_assert_eq(edb_backup_restore(NULL, out2, &src, 1, 0), EDB_CHECKSUM);
    cr_assert_str_eq(edb_error_last(), vmsg);
    cr_assert_eq(access(out2, F_OK), -1, "a refused restore leaves no target");
    free(p);
    fx_archive_free(&x);
    zt_fini(&t);
}

/* A real database that is mostly free pages, saved by the library compressed
 * and encrypted (format version 3): the worker hashes its free pages while
 * the frames are decrypted and decompressed; verify and restore agree. */
#include "env.h"

Test(zero_pages, compressed_encrypted_library_archive, .timeout = 120)
{
    char *dir = fx_tmpdir();
    char db[4200], out[4200], arch[4200];
    snprintf(db, sizeof db, "%s/db", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(arch, sizeof arch, "%s/z.edbk", dir);
    edb_env_opts eo = { .map_size = 1ull << 30, .max_tables = 4 };
    edb_env *env = NULL;
    cr_assert_eq(edb_env_open(&env, db, &eo), 0, "%s", edb_error_last());
    MDB_env *m = edb__env_mdb(env);
    MDB_txn *t;
    MDB_dbi dbi;
    char key[32], val[3000];
    memset(val, 'v', sizeof val);
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "raw", MDB_CREATE, &dbi), 0);
    for (unsigned i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "k%06u", i);
        MDB_val k = { strlen(key), key }, v = { sizeof val, val };
        cr_assert_eq(mdb_put(t, dbi, &k, &v, 0), 0);
    }
    cr_assert_eq(mdb_txn_commit(t), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
    for (unsigned i = 0; i < 3000; i += 2) {       /* every other row: free pages between */
        snprintf(key, sizeof key, "k%06u", i);
        MDB_val k = { strlen(key), key };
        cr_assert_eq(mdb_del(t, dbi, &k, NULL), 0);
    }
    cr_assert_eq(mdb_txn_commit(t), 0);
    for (int i = 0; i < 2; i++) {                   /* the free list settles */
        cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
        MDB_val k = { 3, "pad" }, v = { 3, "pad" };
        cr_assert_eq(mdb_put(t, dbi, &k, &v, 0), 0);
        cr_assert_eq(mdb_txn_commit(t), 0);
    }
    uint8_t kb[32];
    for (int i = 0; i < 32; i++)
        kb[i] = (uint8_t)(i * 7 + 1);
    edb_backup_opts o = { .compress = EDB_BACKUP_COMPRESS_ZSTD, .compress_level = 1,
                          .encrypt_key = kb };
    edb_backup *bk = NULL;
    cr_assert_eq(edb_backup_begin(&bk, env, &o), 0, "%s", edb_error_last());
    cr_assert_eq(edb_backup_save(bk, arch, 0, NULL, NULL), 0, "%s", edb_error_last());
    edb_backup_end(bk);
    edb_env_close(env);

    size_t saved = edb__reader_zero_min;
    edb__reader_zero_min = 0;
    edb__reader_zero_wait = true;
    int fd = open(arch, O_RDONLY);
    cr_assert_geq(fd, 0);
    edb__archive a;
    edb__reader_cbs cbs = { .key = kb };
    cr_assert_eq(edb__reader_read(&a, fd, &cbs), 0, "%s", edb_error_last());
    close(fd);
    cr_assert_eq(a.header.version, EDB__ARCH_VERSION_Z);
    uint64_t zero = a.trailer.npages - 2 - a.ncarried;
    cr_assert_gt(zero, 500, "free pages: %llu", (unsigned long long)zero);
    cr_assert_eq(a.zero_ahead, zero, "%llu of %llu", (unsigned long long)a.zero_ahead,
                 (unsigned long long)zero);
    edb__archive_free(&a);
    edb_backup_source src = { .path = arch, .fd = -1, .key = kb };
    cr_assert_eq(edb_backup_verify(NULL, &src, 1, NULL, NULL), 0, "%s", edb_error_last());
    cr_assert_eq(edb_backup_restore(NULL, out, &src, 1, 0), 0, "%s", edb_error_last());
    char *x = fx_dump(db), *y = fx_dump(out);
    cr_assert_not_null(x);
    cr_assert_not_null(y);
    cr_assert_str_eq(x, y);
    free(x);
    free(y);
    edb__reader_zero_min = saved;
    edb__reader_zero_wait = false;
    fx_rmrf(dir);
    free(dir);
}

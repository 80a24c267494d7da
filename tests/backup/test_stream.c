/* The archive a stream produces: it decodes, its pages are the snapshot's,
 * it restores to the same data, for any read size, for several streams and
 * several backups at once. */
#include "bk_helpers.h"

typedef struct fixture {
    char *dir;
    edb_env *env;
} fixture;

static fixture
setup(unsigned rows)
{
    fixture f;
    f.dir = bk_tmpdir();
    f.env = bk_env_open(f.dir);
    if (rows)
        bk_populate(f.env, rows);
    return f;
}

static void
teardown(fixture *f)
{
    edb_env_close(f->env);
    bk_rm_tree(f->dir);
    free(f->dir);
    bk_assert_no_objects(3000);
    BK_LEAK_CHECK();
}

Test(backup_stream, full_archive_decodes_and_equals_the_snapshot, .timeout = 30)
{
    fixture f = setup(4000);
    MDB_env *m = edb__env_mdb(f.env);

    /* A read txn at the backup's txnid (no writer runs here). */
    MDB_txn *ref;
    MDB_OK(mdb_txn_begin(m, NULL, MDB_RDONLY, &ref));
    edb_backup *bk;
    OK(edb_backup_begin(&bk, f.env, NULL));
    edb_backup_stream *s;
    OK(edb_backup_open(&s, bk));
    bk_buf b = { 0 };
    OK(bk_read_all(s, &b, 1 << 16));

    bk_arch a;
    bk_decode(&a, b.p, b.n);
    cr_assert_eq(a.t.txnid, mdb_txn_id(ref));
    MDB_envinfo info;
    MDB_OK(mdb_env_info(m, &info));
    cr_assert_eq(a.t.npages, info.me_last_pgno + 1);
    cr_assert_gt(a.pages, 100u);
    cr_assert_lt(a.pages, a.t.npages - 2, "free pages were skipped");
    bk_compare_pages(&a, f.dir);

    uint64_t done, total;
    OK(edb_backup_progress(bk, &done, &total));
    cr_assert_eq(total, b.n, "progress total is the exact archive length");
    cr_assert_eq(done, b.n);

    /* Reading past the end keeps returning the end. */
    size_t n = 1;
    uint8_t x;
    OK(edb_backup_read(s, &x, 1, &n));
    cr_assert_eq(n, 0);

    char rdir[600];
    snprintf(rdir, sizeof rdir, "%s/restored", f.dir);
    bk_restore(&a, rdir);
    uint64_t cnt_src, cnt_dst, txnid;
    uint64_t d_src = bk_digest_txn(ref, BK_DATA_DB, &cnt_src);
    uint64_t d_dst = bk_digest_restored(rdir, &cnt_dst, &txnid);
    cr_assert_eq(txnid, a.t.txnid);
    cr_assert_eq(cnt_src, cnt_dst);
    cr_assert_gt(cnt_src, 3000u);
    cr_assert_eq(d_src, d_dst, "restored data differs from the snapshot");

    mdb_txn_abort(ref);
    edb_backup_close(s);
    edb_backup_end(bk);
    bk_arch_free(&a);
    free(b.p);
    teardown(&f);
}

/* Frames are as full as edb__arch_frame_edb() allows (168 pages of 4 KiB,
 * one frame header block per 672 KiB instead of per 256 KiB): every frame but
 * the last holds that many, so the archive is frames + 4 blocks + table
 * longer than the pages it carries, and the reader (unchanged) accepts it. */
Test(backup_stream, frames_are_full, .timeout = 60)
{
    fixture f = setup(4000);
    edb_backup *bk;
    OK(edb_backup_begin(&bk, f.env, NULL));
    edb_backup_stream *s;
    OK(edb_backup_open(&s, bk));
    bk_buf b = { 0 };
    OK(bk_read_all(s, &b, 1 << 16));
    bk_arch a;
    bk_decode(&a, b.p, b.n);
    unsigned fmax = edb__arch_frame_edb(a.h.page_size);
    if (a.h.page_size <= 4096)
        cr_assert_eq(fmax, EDB__ARCH_FRAME_MAX);
    cr_assert_gt(a.pages, 2 * fmax, "only %llu pages", (unsigned long long)a.pages);
    cr_assert_eq(a.count_max, fmax, "frames of at most %u pages", a.count_max);
    cr_assert_eq(a.short_frames, 0);
    cr_assert_eq(a.frames, (a.pages + fmax - 1) / fmax);
    cr_assert_eq(b.n, (3 + a.frames) * EDB__ARCH_BLOCK + a.pages * a.h.page_size +
                      edb__arch_table_bytes(a.t.npages));
    uint64_t done, total;
    OK(edb_backup_progress(bk, &done, &total));
    cr_assert_eq(total, b.n, "progress total is the exact archive length");

    char rdir[600];
    snprintf(rdir, sizeof rdir, "%s/restored", f.dir);
    bk_restore(&a, rdir);
    edb_backup_close(s);
    edb_backup_end(bk);
    bk_arch_free(&a);
    free(b.p);
    teardown(&f);
}

Test(backup_stream, any_read_size_gives_the_same_bytes, .timeout = 60)
{
    fixture f = setup(600);
    edb_backup *bk;
    OK(edb_backup_begin(&bk, f.env, NULL));
    size_t sizes[] = { 1, 7, 4095, 4096, 4097, 100000, 1 << 20, 3 << 20 };
    bk_buf first = { 0 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        edb_backup_stream *s;
        OK(edb_backup_open(&s, bk));
        bk_buf b = { 0 };
        OK(bk_read_all(s, &b, sizes[i]));
        edb_backup_close(s);
        if (i == 0) {
            first = b;
            bk_arch a;
            bk_decode(&a, b.p, b.n);
            bk_arch_free(&a);
            continue;
        }
        cr_assert_eq(b.n, first.n, "read size %zu", sizes[i]);
        cr_assert_eq(memcmp(b.p, first.p, b.n), 0, "read size %zu", sizes[i]);
        free(b.p);
    }
    free(first.p);
    edb_backup_end(bk);
    teardown(&f);
}

typedef struct reader_arg {
    edb_backup_stream *s;
    bk_buf b;
    size_t chunk;
    int rc;
} reader_arg;

static void *
reader_main(void *p)
{
    reader_arg *r = p;
    r->rc = bk_read_all(r->s, &r->b, r->chunk);
    return NULL;
}

Test(backup_stream, streams_of_one_backup_are_byte_identical, .timeout = 60)
{
    fixture f = setup(3000);
    edb_backup_opts o = { .ring_size = 600 << 10 };
    edb_backup *bk;
    OK(edb_backup_begin(&bk, f.env, &o));
    /* Writers commit between the streams' starts: the archive must not change. */
    MDB_dbi d = bk_dbi(f.env);
    enum { N = 3 };
    reader_arg r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].chunk = (size_t)(1000 + 77777 * i);
        OK(edb_backup_open(&r[i].s, bk));
        cr_assert_eq(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
        MDB_OK(bk_write(edb__env_mdb(f.env), d, 10000 + 100 * (unsigned)i, 100, 3, 5));
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        OK(r[i].rc);
        edb_backup_close(r[i].s);
    }
    bk_arch a;
    bk_decode(&a, r[0].b.p, r[0].b.n);
    bk_compare_pages(&a, f.dir);
    for (int i = 1; i < N; i++) {
        cr_assert_eq(r[i].b.n, r[0].b.n);
        cr_assert_eq(memcmp(r[i].b.p, r[0].b.p, r[0].b.n), 0, "stream %d differs", i);
    }
    bk_arch_free(&a);
    for (int i = 0; i < N; i++)
        free(r[i].b.p);
    edb_backup_end(bk);
    teardown(&f);
}

Test(backup_stream, several_backups_at_once, .timeout = 60)
{
    fixture f = setup(2000);
    MDB_env *m = edb__env_mdb(f.env);
    MDB_dbi d = bk_dbi(f.env);
    enum { N = 3 };
    edb_backup *bk[N];
    MDB_txn *ref[N];
    reader_arg r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        MDB_OK(mdb_txn_begin(m, NULL, MDB_RDONLY, &ref[i]));
        OK(edb_backup_begin(&bk[i], f.env, NULL));
        memset(&r[i], 0, sizeof r[i]);
        r[i].chunk = 65536;
        OK(edb_backup_open(&r[i].s, bk[i]));
        MDB_OK(bk_write(m, d, 20000 + 300 * (unsigned)i, 300, 4, 3));
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    uint64_t prev = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        OK(r[i].rc);
        bk_arch a;
        bk_decode(&a, r[i].b.p, r[i].b.n);
        cr_assert_eq(a.t.txnid, mdb_txn_id(ref[i]));
        cr_assert_gt(a.t.txnid, prev);
        prev = a.t.txnid;
        bk_compare_pages(&a, f.dir);
        char rdir[600];
        snprintf(rdir, sizeof rdir, "%s/restored%d", f.dir, i);
        bk_restore(&a, rdir);
        uint64_t c1, c2, id;
        cr_assert_eq(bk_digest_txn(ref[i], BK_DATA_DB, &c1), bk_digest_restored(rdir, &c2, &id));
        cr_assert_eq(c1, c2);
        mdb_txn_abort(ref[i]);
        bk_arch_free(&a);
        free(r[i].b.p);
        edb_backup_close(r[i].s);
        edb_backup_end(bk[i]);
    }
    teardown(&f);
}

Test(backup_stream, keep_free_copies_every_page, .timeout = 30)
{
    fixture f = setup(1500);
    edb_backup_opts o = { .flags = EDB_BACKUP_KEEP_FREE };
    edb_backup *bk;
    OK(edb_backup_begin(&bk, f.env, &o));
    edb_backup_stream *s;
    OK(edb_backup_open(&s, bk));
    bk_buf b = { 0 };
    OK(bk_read_all(s, &b, 12345));
    bk_arch a;
    bk_decode(&a, b.p, b.n);
    cr_assert_eq(a.h.flags, EDB__ARCH_F_KEEP_FREE);
    cr_assert_eq(a.pages, a.t.npages - 2);
    for (uint64_t p = 2; p < a.t.npages; p++)
        cr_assert_not_null(a.page[p], "page %llu missing", (unsigned long long)p);
    uint64_t done, total;
    OK(edb_backup_progress(bk, &done, &total));
    cr_assert_eq(total, b.n);
    bk_arch_free(&a);
    free(b.p);
    edb_backup_close(s);
    edb_backup_end(bk);
    teardown(&f);
}

Test(backup_stream, empty_database, .timeout = 30)
{
    fixture f = setup(0);
    edb_backup *bk;
    OK(edb_backup_begin(&bk, f.env, NULL));
    edb_backup_stream *s;
    OK(edb_backup_open(&s, bk));
    bk_buf b = { 0 };
    OK(bk_read_all(s, &b, 4096));
    bk_arch a;
    bk_decode(&a, b.p, b.n);
    char rdir[600];
    snprintf(rdir, sizeof rdir, "%s/restored", f.dir);
    bk_restore(&a, rdir);
    uint64_t c, id;
    bk_digest_restored(rdir, &c, &id);
    cr_assert_eq(c, 0);
    cr_assert_eq(id, a.t.txnid);
    bk_arch_free(&a);
    free(b.p);
    edb_backup_close(s);
    edb_backup_end(bk);
    teardown(&f);
}

Test(backup_stream, begin_in_a_thread_that_holds_the_write_txn, .timeout = 30)
{
    fixture f = setup(500);
    MDB_env *m = edb__env_mdb(f.env);
    MDB_txn *w;
    MDB_OK(mdb_txn_begin(m, NULL, 0, &w));     /* this thread holds LMDB's writer lock */
    edb_backup *bk;
    OK(edb_backup_begin(&bk, f.env, NULL));
    edb_backup_stream *s;
    OK(edb_backup_open(&s, bk));
    bk_buf b = { 0 };
    OK(bk_read_all(s, &b, 1 << 16));
    bk_arch a;
    bk_decode(&a, b.p, b.n);
    MDB_OK(mdb_txn_commit(w));
    bk_arch_free(&a);
    free(b.p);
    edb_backup_close(s);
    edb_backup_end(bk);
    teardown(&f);
}

Test(backup_stream, arguments_are_checked, .timeout = 10)
{
    fixture f = setup(0);
    edb_backup *bk = (edb_backup *)1;
    RC(edb_backup_begin(NULL, f.env, NULL), EDB_INVAL);
    RC(edb_backup_begin(&bk, NULL, NULL), EDB_INVAL);
    cr_assert_null(bk);
    edb_backup_opts o = { .flags = 0x100 };
    RC(edb_backup_begin(&bk, f.env, &o), EDB_INVAL);
    o = (edb_backup_opts){ .base = "x" };
    RC(edb_backup_begin(&bk, f.env, &o), EDB_INVAL);
    OK(edb_backup_begin(&bk, f.env, NULL));
    edb_backup_stream *s = (edb_backup_stream *)1;
    RC(edb_backup_open(NULL, bk), EDB_INVAL);
    RC(edb_backup_open(&s, NULL), EDB_INVAL);
    cr_assert_null(s);
    OK(edb_backup_open(&s, bk));
    uint8_t buf[16];
    size_t n = 5;
    RC(edb_backup_read(s, NULL, 16, &n), EDB_INVAL);
    cr_assert_eq(n, 0);
    RC(edb_backup_read(s, buf, 0, &n), EDB_INVAL);
    RC(edb_backup_read(s, buf, 16, NULL), EDB_INVAL);
    RC(edb_backup_read(NULL, buf, 16, &n), EDB_INVAL);
    uint64_t d, t;
    RC(edb_backup_progress(NULL, &d, &t), EDB_INVAL);
    RC(edb_backup_progress(bk, NULL, &t), EDB_INVAL);
    RC(edb_backup_stop(NULL), EDB_INVAL);
    edb_backup_close(NULL);
    edb_backup_end(NULL);
    edb_backup_close(s);
    edb_backup_close(s);                      /* twice: a no-op */
    RC(edb_backup_read(s, buf, 16, &n), EDB_CANCELED);
    edb_backup_end(bk);
    edb_backup_end(bk);
    RC(edb_backup_open(&s, bk), EDB_CANCELED);
    RC(edb_backup_progress(bk, &d, &t), EDB_INVAL);
    teardown(&f);
}

/* test_incremental.c: incremental backups and backup chains (issue #4):
 * loading a base archive, emitting only changed pages, chains of incrementals
 * under a concurrent random writer restored prefix by prefix against mdb_dump
 * of the same snapshot, refused chains naming the link, and the rate limiter. */
#include "bk_helpers.h"

#include <stdarg.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "archive_fixture.h"
#include "base.h"
#include "backup.h"
#include "snapshot.h"
#include "sys.h"

/* ---- helpers ---- */

/* Stream a backup of env with opts into path; returns the archive length. */
static uint64_t
backup_to_file(edb_env *env, const edb_backup_opts *o, const char *path)
{
    edb_backup *bk = NULL;
    OK(edb_backup_begin(&bk, env, o));
    edb_backup_stream *s = NULL;
    OK(edb_backup_open(&s, bk));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    static uint8_t buf[1 << 20];
    uint64_t total = 0;
    for (;;) {
        size_t n = 0;
        OK(edb_backup_read(s, buf, sizeof buf, &n));
        if (n == 0)
            break;
        cr_assert_eq(write(fd, buf, n), (ssize_t)n);
        total += n;
    }
    close(fd);
    edb_backup_close(s);
    edb_backup_end(bk);
    return total;
}

static void
path_in(char *out, size_t n, const char *dir, const char *fmt, ...)
{
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(out, n, "%s/%s", dir, name);
}

static void
load_file(bk_buf *b, const char *path)
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0, "open %s", path);
    uint8_t tmp[65536];
    ssize_t n;
    while ((n = read(fd, tmp, sizeof tmp)) > 0)
        bk_buf_add(b, tmp, (size_t)n);
    close(fd);
}

/* Frames and pages an archive file carries (walked with the decoders). */
static void
count_pages(const char *path, uint64_t *pages, edb__arch_header *hout)
{
    bk_buf b = { 0 };
    load_file(&b, path);
    edb__arch_header h;
    OK(edb__arch_header_decode(&h, b.p, 0));
    uint64_t off = EDB__ARCH_BLOCK, frames = 0;
    *pages = 0;
    while (edb__arch_block_kind(b.p + off) == EDB__ARCH_FRAME) {
        edb__arch_frame f;
        OK(edb__arch_frame_decode(&f, b.p + off, &h, frames++, off));
        *pages += f.count;
        off += EDB__ARCH_BLOCK + (uint64_t)f.count * h.page_size;
    }
    if (hout != NULL)
        *hout = h;
    free(b.p);
}

/* ---- base loading ---- */

Test(base, loads_what_the_copier_wrote, .timeout = 30)
{
    char *dir = bk_tmpdir(), path[600];
    edb_env *env = bk_env_open(dir);
    bk_populate(env, 3000);
    path_in(path, sizeof path, dir, "full.edbk");
    uint64_t len = backup_to_file(env, NULL, path);

    bk_buf b = { 0 };
    load_file(&b, path);
    bk_arch a;
    bk_decode(&a, b.p, b.n);

    edb__base base;
    OK(edb__base_load(&base, path));
    cr_assert_eq(base.length, len);
    cr_assert_eq(base.npages, a.t.npages);
    cr_assert_eq(base.txnid, a.t.txnid);
    cr_assert_eq(base.page_size, a.h.page_size);
    cr_assert_eq(memcmp(base.backup_id, a.h.backup_id, 16), 0);
    cr_assert(edb__arch_hash_eq(&base.archive_hash, &a.e.archive_hash));
    cr_assert_eq(memcmp(base.table, a.table, a.t.npages * 16), 0);
    edb__base_free(&base);
    edb__base_free(&base);              /* idempotent */
    bk_arch_free(&a);
    free(b.p);
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
}

/* A low-pin archive may carry a page twice: the later copy is the table's. */
Test(base, low_pin_repeats_and_damage, .timeout = 60)
{
    char *dir = fx_tmpdir(), db[600], path[600];
    path_in(db, sizeof db, dir, "db");
    mkdir(db, 0700);
    fx_db_fill(db, 2000, 1, 0);
    fx_image img;
    cr_assert_eq(fx_image_load(&img, db), 0);

    /* Page 5 again with other content, as the last frame: restored content is the fill. */
    fx_extra ex = { 5, 0xAB };
    fx_archive lp;
    fx_build(&lp, &img, NULL, EDB__ARCH_F_LOW_PIN, 64, &ex, 1);
    path_in(path, sizeof path, dir, "lp.edbk");
    /* The fixture's table holds the first copy's hash: the loader must see
     * that the last frame's copy is the one restored, and refuse. */
    cr_assert_eq(fx_write(path, lp.data, lp.len), 0);
    edb__base base;
    RC(edb__base_load(&base, path), EDB_CHECKSUM);
    cr_assert(strstr(edb_error_last(), "entry 5") != NULL, "%s", edb_error_last());
    /* With the table entry of the later copy (and the archive resealed) it loads. */
    uint8_t *fill = malloc(img.page_size);
    memset(fill, 0xAB, img.page_size);
    edb__arch_hash h5;
    edb__arch_page_hash(&h5, fill, img.page_size, 5);
    free(fill);
    memcpy(lp.data + lp.table_off + 16 * 5, h5.b, 16);
    fx_reseal(&lp, lp.trailer_off);
    cr_assert_eq(fx_write(path, lp.data, lp.len), 0);
    OK(edb__base_load(&base, path));
    cr_assert(edb__arch_hash_eq(&base.table[5], &h5));
    cr_assert(edb__arch_hash_eq(&base.archive_hash, &lp.archive_hash));
    edb__base_free(&base);

    /* The same archive without LOW_PIN is refused: a page twice. */
    fx_archive twice;
    fx_build(&twice, &img, NULL, 0, 64, &ex, 1);
    cr_assert_eq(fx_write(path, twice.data, twice.len), 0);
    RC(edb__base_load(&base, path), EDB_CORRUPT);
    cr_assert(strstr(edb_error_last(), "twice") != NULL, "%s", edb_error_last());
    cr_assert_null(base.table);

    /* A table entry that disagrees with its frame (the archive hash, which the
     * loader does not recompute, is the only other thing that would tell). */
    fx_archive bad;
    fx_build(&bad, &img, NULL, 0, 64, NULL, 0);
    bad.data[bad.table_off + 16 * 7] ^= 1;
    cr_assert_eq(fx_write(path, bad.data, bad.len), 0);
    RC(edb__base_load(&base, path), EDB_CHECKSUM);
    cr_assert(strstr(edb_error_last(), "entry 7") != NULL, "%s", edb_error_last());

    /* Truncated at every block boundary: never accepted. */
    fx_archive good;
    fx_build(&good, &img, NULL, 0, 16, NULL, 0);
    for (size_t cut = 0; cut < good.len; cut += EDB__ARCH_BLOCK) {
        cr_assert_eq(fx_write(path, good.data, cut), 0);
        int rc = edb__base_load(&base, path);
        cr_assert(rc == EDB_CORRUPT || rc == EDB_CHECKSUM, "cut at %zu: %s", cut, edb_err_name(rc));
    }
    /* A flipped bit in every block header it reads: refused. */
    size_t offs[] = { 0, good.frame_off[0], good.frame_off[good.nframes - 1], good.trailer_off,
                      good.end_off, good.end_off + 20 };
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        good.data[offs[i] + 9] ^= 0x10;
        cr_assert_eq(fx_write(path, good.data, good.len), 0);
        int rc = edb__base_load(&base, path);
        cr_assert(rc == EDB_CORRUPT || rc == EDB_CHECKSUM || rc == EDB_VERSION, "flip at %zu: %s", offs[i], edb_err_name(rc));
        good.data[offs[i] + 9] ^= 0x10;
    }
    /* Bytes after the end block. */
    uint8_t *longer = calloc(1, good.len + EDB__ARCH_BLOCK);
    memcpy(longer, good.data, good.len);
    cr_assert_eq(fx_write(path, longer, good.len + EDB__ARCH_BLOCK), 0);
    RC(edb__base_load(&base, path), EDB_CORRUPT);
    free(longer);
    cr_assert_eq(fx_write(path, good.data, good.len), 0);
    OK(edb__base_load(&base, path));
    edb__base_free(&base);

    /* Not there, a directory, NULL. */
    path_in(path, sizeof path, dir, "missing.edbk");
    RC(edb__base_load(&base, path), EDB_NOTFOUND);
    cr_assert(strstr(edb_error_last(), "missing.edbk") != NULL, "%s", edb_error_last());
    RC(edb__base_load(&base, dir), EDB_INVAL);
    RC(edb__base_load(&base, NULL), EDB_INVAL);

    fx_archive_free(&lp);
    fx_archive_free(&twice);
    fx_archive_free(&bad);
    fx_archive_free(&good);
    fx_image_free(&img);
    fx_rmrf(dir);
    free(dir);
}

/* ---- incremental backups ---- */

Test(incremental, emits_only_changed_pages_and_lists_every_hash, .timeout = 60)
{
    char *dir = bk_tmpdir(), full[600], inc[600], inc2[600];
    edb_env *env = bk_env_open(dir);
    bk_populate(env, 20000);
    path_in(full, sizeof full, dir, "full.edbk");
    backup_to_file(env, NULL, full);

    /* Nothing changed: an incremental carries no page at all. */
    edb_backup_opts o = { .flags = EDB_BACKUP_INCREMENTAL, .base = full };
    path_in(inc, sizeof inc, dir, "inc0.edbk");
    backup_to_file(env, &o, inc);
    uint64_t pages, fpages;
    edb__arch_header h;
    count_pages(inc, &pages, &h);
    count_pages(full, &fpages, NULL);
    cr_assert_eq(pages, 0, "unchanged database: %llu pages", (unsigned long long)pages);
    cr_assert_gt(fpages, 100);
    edb__base fb;
    OK(edb__base_load(&fb, full));
    cr_assert_eq(h.flags & EDB__ARCH_F_INCREMENTAL, EDB__ARCH_F_INCREMENTAL);
    cr_assert_eq(memcmp(h.base_id, fb.backup_id, 16), 0);
    cr_assert(edb__arch_hash_eq(&h.base_hash, &fb.archive_hash));
    cr_assert_eq(h.base_npages, fb.npages);

    /* A few rows updated: a few pages; the table still lists every page. */
    MDB_env *m = edb__env_mdb(env);
    MDB_dbi d = bk_dbi(env);
    MDB_OK(bk_write(m, d, 5000, 3, 9, 0));
    MDB_OK(bk_write(m, d, 20100, 200, 9, 0));   /* new keys: the file grows */
    path_in(inc2, sizeof inc2, dir, "inc1.edbk");
    o.base = inc;
    backup_to_file(env, &o, inc2);
    count_pages(inc2, &pages, NULL);
    cr_assert_gt(pages, 0);
    cr_assert_lt(pages, fpages / 5, "%llu of %llu pages", (unsigned long long)pages,
                 (unsigned long long)fpages);
    edb__base ib;
    OK(edb__base_load(&ib, inc2));               /* a complete table: usable as a base */
    cr_assert_geq(ib.npages, fb.npages);

    /* The chain verifies completely and every table entry is proved. */
    edb_backup_source src[3] = { { .path = full }, { .path = inc }, { .path = inc2 } };
    edb_backup_info info;
    OK(edb_backup_verify(&info, src, 3, NULL, NULL));
    cr_assert_eq(info.unchecked, 0);
    cr_assert_eq(info.npages, ib.npages);

    edb__base_free(&fb);
    edb__base_free(&ib);
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
}

Test(incremental, bad_options_and_bases, .timeout = 30)
{
    char *dir = bk_tmpdir(), path[600];
    edb_env *env = bk_env_open(dir);
    bk_populate(env, 1000);
    edb_backup *bk = NULL;
    edb_backup_opts o = { .flags = EDB_BACKUP_INCREMENTAL };
    RC(edb_backup_begin(&bk, env, &o), EDB_INVAL);          /* no base */
    cr_assert_null(bk);
    path_in(path, sizeof path, dir, "full.edbk");
    o.flags = 0;
    o.base = path;
    RC(edb_backup_begin(&bk, env, &o), EDB_INVAL);          /* base without the flag */
    o.flags = EDB_BACKUP_INCREMENTAL;
    RC(edb_backup_begin(&bk, env, &o), EDB_NOTFOUND);       /* base missing */
    cr_assert(strstr(edb_error_last(), "full.edbk") != NULL, "%s", edb_error_last());
    backup_to_file(env, NULL, path);
    /* Cut the end block: an interrupted backup is no base. */
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(truncate(path, st.st_size - EDB__ARCH_BLOCK), 0);
    RC(edb_backup_begin(&bk, env, &o), EDB_CORRUPT);
    cr_assert_null(bk);
    /* Nothing leaked: no reader slot is held after the failures. */
    cr_assert_eq(bk_wait_readers(edb__env_mdb(env), 0, 3000), 0);
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
}

/* ---- chains under a concurrent random writer ---- */

typedef struct writer {
    MDB_env *m;
    MDB_dbi d;
    pthread_mutex_t pause;       /* held by the writer during each txn */
    atomic_bool stop;
    atomic_uint_fast64_t quota;  /* the writer idles once txns reaches it */
    uint64_t seed;
    atomic_uint_fast64_t txns;
    unsigned keys;
} writer;

static uint64_t
xs(uint64_t *s)
{
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

/* Random inserts, updates and deletes over a key space. */
static void *
writer_main(void *arg)
{
    writer *w = arg;
    uint8_t buf[4096];
    while (!atomic_load(&w->stop)) {
        if (atomic_load(&w->txns) >= atomic_load(&w->quota)) {
            bk_sleep_ms(1);
            continue;
        }
        pthread_mutex_lock(&w->pause);
        MDB_txn *t;
        cr_assert_eq(mdb_txn_begin(w->m, NULL, 0, &t), 0);
        unsigned ops = 1 + (unsigned)(xs(&w->seed) % 20);
        for (unsigned i = 0; i < ops; i++) {
            uint64_t k = xs(&w->seed) % w->keys, kb = __builtin_bswap64(k);
            MDB_val key = { sizeof kb, &kb };
            if (xs(&w->seed) % 5 == 0) {
                int rc = mdb_del(t, w->d, &key, NULL);
                cr_assert(rc == 0 || rc == MDB_NOTFOUND);
            } else {
                MDB_val val = { bk_fill(buf, k, xs(&w->seed)), buf };
                cr_assert_eq(mdb_put(t, w->d, &key, &val, 0), 0);
            }
        }
        cr_assert_eq(mdb_txn_commit(t), 0);
        atomic_fetch_add(&w->txns, 1);
        pthread_mutex_unlock(&w->pause);
        sched_yield();
    }
    return NULL;
}

/* Begin a backup while the writer is paused and dump the database at that
 * very snapshot with mdb_dump; then stream the archive while it writes on,
 * exactly LINK_TXNS transactions after the snapshot: so every link differs
 * from the one before by the same amount of work, however slow the build
 * (an unbounded writer under TSan once changed more pages between two links
 * than the whole database holds). */
#define LINK_TXNS 30

static char *
backup_with_dump(writer *w, edb_env *env, const char *dbdir, const edb_backup_opts *o,
                 const char *path)
{
    edb_backup *bk = NULL;
    pthread_mutex_lock(&w->pause);
    OK(edb_backup_begin(&bk, env, o));
    char *dump = fx_dump(dbdir);
    atomic_store(&w->quota, atomic_load(&w->txns) + LINK_TXNS);
    pthread_mutex_unlock(&w->pause);
    cr_assert_not_null(dump);
    edb_backup_stream *s = NULL;
    OK(edb_backup_open(&s, bk));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    uint8_t buf[65536];
    for (;;) {
        size_t n = 0;
        OK(edb_backup_read(s, buf, sizeof buf, &n));
        if (n == 0)
            break;
        cr_assert_eq(write(fd, buf, n), (ssize_t)n);
    }
    close(fd);
    edb_backup_close(s);
    edb_backup_end(bk);
    return dump;
}

#define CHAIN 7            /* a full archive and 6 incrementals */

Test(chain, every_prefix_restores_its_snapshot_under_a_random_writer, .timeout = 240)
{
    char *dir = bk_tmpdir(), dbdir[600], arch[CHAIN][600], target[600];
    char *dumps[CHAIN];
    edb_env *env = bk_env_open(dir);
    bk_populate(env, 4000);
    path_in(dbdir, sizeof dbdir, dir, "db");

    writer w = { .m = edb__env_mdb(env), .d = bk_dbi(env), .seed = 0x1234567, .keys = 6000 };
    pthread_mutex_init(&w.pause, NULL);
    pthread_t wt;
    cr_assert_eq(pthread_create(&wt, NULL, writer_main, &w), 0);

    for (int i = 0; i < CHAIN; i++) {
        path_in(arch[i], sizeof arch[i], dir, "a%d.edbk", i);
        edb_backup_opts o = { .flags = i ? EDB_BACKUP_INCREMENTAL : 0, .base = i ? arch[i - 1] : NULL };
        dumps[i] = backup_with_dump(&w, env, dbdir, &o, arch[i]);
        /* The writer's quota done: the next link sees all of it. */
        while (atomic_load(&w.txns) < atomic_load(&w.quota))
            bk_sleep_ms(1);
    }
    atomic_store(&w.stop, true);
    pthread_join(wt, NULL);
    cr_assert_eq(atomic_load(&w.txns), CHAIN * LINK_TXNS);
    for (int i = 1; i < CHAIN; i++)      /* else a prefix mix-up could go unseen */
        cr_assert(strcmp(dumps[i], dumps[i - 1]) != 0, "snapshots %d and %d are equal", i - 1, i);

    edb_backup_source src[CHAIN];
    for (int i = 0; i < CHAIN; i++)
        src[i] = (edb_backup_source){ .path = arch[i] };
    for (int k = 1; k <= CHAIN; k++) {
        path_in(target, sizeof target, dir, "restored%d", k);
        edb_backup_info info;
        OK(edb_backup_restore(&info, target, src, (size_t)k, 0));
        cr_assert_eq(info.archives, (size_t)k);
        char *got = fx_dump(target);
        cr_assert_not_null(got);
        cr_assert_str_eq(got, dumps[k - 1], "prefix of %d archives differs from its snapshot", k);
        free(got);
        bk_rm_tree(target);
    }
    /* Each incremental holds what LINK_TXNS transactions touched: here
     * 292 to 371 pages against the full archive's 2,421 (the same on every
     * build, as the writer's work per link is fixed). */
    uint64_t fp;
    count_pages(arch[0], &fp, NULL);
    for (int i = 1; i < CHAIN; i++) {
        uint64_t ip;
        count_pages(arch[i], &ip, NULL);
        cr_log_info("link %d: %llu pages, full %llu", i, (unsigned long long)ip,
                    (unsigned long long)fp);
        cr_assert_lt(ip * 3, fp, "incremental %d has %llu pages, full %llu", i,
                     (unsigned long long)ip, (unsigned long long)fp);
    }

    for (int i = 0; i < CHAIN; i++)
        free(dumps[i]);
    pthread_mutex_destroy(&w.pause);
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
}

/* Restore refuses a missing, repeated, reordered or foreign link and names it. */
Test(chain, broken_chains_are_refused_naming_the_link, .timeout = 120)
{
    char *dir = bk_tmpdir(), a[4][600], other[600], target[600];
    edb_env *env = bk_env_open(dir);
    bk_populate(env, 3000);
    MDB_env *m = edb__env_mdb(env);
    MDB_dbi d = bk_dbi(env);
    for (int i = 0; i < 4; i++) {
        path_in(a[i], sizeof a[i], dir, "link%d.edbk", i);
        edb_backup_opts o = { .flags = i ? EDB_BACKUP_INCREMENTAL : 0, .base = i ? a[i - 1] : NULL };
        backup_to_file(env, &o, a[i]);
        MDB_OK(bk_write(m, d, (uint64_t)i * 300, 50, 10 + (uint64_t)i, 0));
    }
    /* A second full archive and an incremental on it: a foreign chain. */
    char other_full[600];
    path_in(other_full, sizeof other_full, dir, "other-full.edbk");
    backup_to_file(env, NULL, other_full);
    path_in(other, sizeof other, dir, "other-inc.edbk");
    edb_backup_opts oo = { .flags = EDB_BACKUP_INCREMENTAL, .base = other_full };
    backup_to_file(env, &oo, other);
    path_in(target, sizeof target, dir, "t");

    struct { const char *what; const char *list[4]; size_t n; const char *named; } cases[] = {
        { "missing", { a[0], a[2], a[3] }, 3, "link2" },
        { "repeated", { a[0], a[1], a[1] }, 3, "link1" },
        { "reordered", { a[0], a[2], a[1] }, 3, "link2" },
        { "foreign", { a[0], a[1], other }, 3, "other-inc" },
        { "incremental first", { a[1], a[2] }, 2, "link1" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        edb_backup_source src[4];
        for (size_t i = 0; i < cases[c].n; i++)
            src[i] = (edb_backup_source){ .path = cases[c].list[i] };
        RC(edb_backup_restore(NULL, target, src, cases[c].n, 0), EDB_CHAIN);
        cr_assert(strstr(edb_error_last(), cases[c].named) != NULL, "%s: %s", cases[c].what,
                  edb_error_last());
        struct stat st;
        cr_assert_neq(lstat(target, &st), 0, "%s: something was put in place", cases[c].what);
    }
    edb_backup_source all[4];
    for (int i = 0; i < 4; i++)
        all[i] = (edb_backup_source){ .path = a[i] };
    OK(edb_backup_restore(NULL, target, all, 4, 0));
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
}

/* ---- faults: the countdown loop over every wrapped call ---- */

/* One backup of env with o into memory, then to path; returns its rc. */
static int
try_backup(edb_env *env, const edb_backup_opts *o, const char *path)
{
    edb_backup *bk = NULL;
    int rc = edb_backup_begin(&bk, env, o);
    if (rc != 0) {
        cr_assert_null(bk);
        return rc;
    }
    edb_backup_stream *s = NULL;
    rc = edb_backup_open(&s, bk);
    bk_buf b = { 0 };
    if (rc == 0)
        rc = bk_read_all(s, &b, 1 << 16);
    edb_backup_close(s);
    edb_backup_end(bk);
    if (rc == 0)
        cr_assert_eq(fx_write(path, b.p, b.n), 0);
    free(b.p);
    return rc;
}

/* For N = 1, 2, ... every wrapped call of an incremental, a low-pin and a
 * low-pin incremental backup fails once (EIO, ENOSPC, ENOMEM, EINTR, a short
 * transfer) and then from the N-th on: each run fails cleanly with a message
 * or produces an archive that verifies as a chain, and no snapshot stays pinned. */
Test(faults, every_failing_call_of_incremental_and_low_pin, .timeout = 240)
{
    char *dir = bk_tmpdir(), full[600], out[600];
    edb_env *env = bk_env_open(dir);
    MDB_env *m = edb__env_mdb(env);
    bk_populate(env, 1500);
    path_in(full, sizeof full, dir, "full.edbk");
    path_in(out, sizeof out, dir, "out.edbk");
    backup_to_file(env, NULL, full);
    MDB_OK(bk_write(m, bk_dbi(env), 50, 20, 3, 0));
    const edb_backup_opts modes[] = {
        { .flags = EDB_BACKUP_INCREMENTAL, .base = full },
        { .flags = EDB_BACKUP_LOW_PIN },
        { .flags = EDB_BACKUP_LOW_PIN | EDB_BACKUP_INCREMENTAL, .base = full, .rate_limit = 1u << 30 },
    };
    const struct { int err; unsigned flags; } kinds[] = {
        { EIO, 0 }, { ENOSPC, 0 }, { ENOMEM, 0 }, { EINTR, 0 }, { EIO, EDB__FAULT_SHORT },
        { EIO, EDB__FAULT_PERSISTENT },
    };
    unsigned runs = 0, failed = 0;
    for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
        edb__fault_arm(0, 0, 0);
        OK(try_backup(env, &modes[mi], out));
        long calls = edb__fault_calls();
        cr_assert_gt(calls, 5, "mode %zu makes %ld wrapped calls", mi, calls);
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            /* Every call with EIO; every third call with the other kinds
             * (a different third for each), to keep the suite short. */
            long step = (k == 0 ? 1 : 3) * (long)(100 / bk_scale(100));  /* sanitizers: a tenth */
            for (long n = 1 + (long)(k % 3); n <= calls + 1; n += step) {
                edb__fault_arm(n, kinds[k].err, kinds[k].flags);
                int rc = try_backup(env, &modes[mi], out);
                long fired = edb__fault_fired();
                edb__fault_disarm();
                runs++;
                cr_assert(rc == 0 || rc == EDB_IO || rc == EDB_NOMEM || (rc == EDB_FULL && kinds[k].err == ENOSPC),
                          "mode %zu, %s fault at call %ld: %s (%s)", mi, strerror(kinds[k].err), n,
                          edb_err_name(rc), edb_error_last());
                if (rc != 0) {
                    failed++;
                    cr_assert_gt(fired, 0, "failed without a fault: %s", edb_error_last());
                    cr_assert_gt(strlen(edb_error_last()), 12);
                } else {
                    edb_backup_source src[2] = { { .path = full }, { .path = out } };
                    bool incr = (modes[mi].flags & EDB_BACKUP_INCREMENTAL) != 0;
                    edb_backup_info info;
                    OK(edb_backup_verify(&info, incr ? src : &src[1], incr ? 2 : 1, NULL, NULL));
                    cr_assert_eq(info.unchecked, 0);
                }
                cr_assert_eq(bk_wait_readers(m, 0, 3000), 0, "mode %zu, fault at call %ld: a snapshot "
                             "stayed pinned", mi, n);
            }
        }
    }
    cr_log_info("fault runs: %u, failed cleanly: %u", runs, failed);
    cr_assert_gt(failed, runs / 4);
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
}

/* ---- a forged sparse base (issue #11, point 6) ----
 *
 * A real full archive rewritten so that its trailer claims 2^27 pages: its
 * page hash table is then 2 GiB long, and the file is written sparse (the
 * header, frames, trailer and the table's first real entries, then a hole,
 * then the end block: about a hundred KiB on disk).  Every block decodes
 * (header and trailer resealed, meta entries recomputed).  A backup with it as
 * base must be refused without allocating the table's length: in a forked
 * child (address space limited to 1 GiB unless a sanitizer or valgrind runs
 * it), whose peak resident size the parent reads back. */
static void
forge_sparse_base(const char *full, const char *out, uint64_t npages, bool fill)
{
    bk_buf b = { 0 };
    load_file(&b, full);
    edb__arch_header h;
    OK(edb__arch_header_decode(&h, b.p, 0));
    uint64_t off = EDB__ARCH_BLOCK, frames = 0, pages = 0;
    while (edb__arch_block_kind(b.p + off) == EDB__ARCH_FRAME) {
        edb__arch_frame f;
        OK(edb__arch_frame_decode(&f, b.p + off, &h, frames++, off));
        pages += f.count;
        off += EDB__ARCH_BLOCK + (uint64_t)f.count * h.page_size;
    }
    edb__arch_trailer t;
    OK(edb__arch_trailer_decode(&t, b.p + off, &h, frames, pages, off));
    uint64_t real_npages = t.npages;
    const uint8_t *real_table = b.p + off + EDB__ARCH_BLOCK;

    h.max_pages = npages;
    edb__arch_header_encode(b.p, &h);
    t.npages = npages;
    edb__put_le64(t.meta + EDB__META_OFF_LASTPG, npages - 1);
    edb__arch_trailer_encode(b.p + off, &t);
    edb__arch_trailer t2;
    OK(edb__arch_trailer_decode(&t2, b.p + off, &h, frames, pages, off));

    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    uint64_t toff = off + EDB__ARCH_BLOCK;
    cr_assert_eq(pwrite(fd, b.p, toff, 0), (ssize_t)toff);
    /* the table: meta entries for the new meta, the real entries, then a hole */
    size_t tlen = (size_t)real_npages * 16;
    uint8_t *tab = malloc(tlen);
    memcpy(tab, real_table, tlen);
    uint8_t *scratch = malloc(h.page_size);
    for (uint64_t p = 0; p < 2; p++) {
        edb__arch_hash mh;
        edb__arch_meta_hash(&mh, scratch, h.page_size, t.meta, p);
        memcpy(tab + p * 16, mh.b, 16);
    }
    cr_assert_eq(pwrite(fd, tab, tlen, (off_t)toff), (ssize_t)tlen);
    if (fill) {                                 /* real bytes instead of the hole */
        size_t rest = (size_t)(npages - real_npages) * 16;
        uint8_t *junk = malloc(rest);
        memset(junk, 0x11, rest);
        cr_assert_eq(pwrite(fd, junk, rest, (off_t)(toff + tlen)), (ssize_t)rest);
        free(junk);
    }
    uint64_t end_off = toff + edb__arch_table_bytes(npages);
    edb__arch_end e;
    memset(&e, 0, sizeof e);
    e.length = end_off + EDB__ARCH_BLOCK;
    memcpy(e.backup_id, h.backup_id, 16);
    memset(e.archive_hash.b, 0x5a, 16);
    uint8_t blk[EDB__ARCH_BLOCK];
    edb__arch_end_encode(blk, &e);
    cr_assert_eq(pwrite(fd, blk, sizeof blk, (off_t)end_off), (ssize_t)sizeof blk);
    close(fd);
    free(scratch);
    free(tab);
    free(b.p);
}

Test(incremental, a_forged_sparse_base_allocates_nothing_like_its_length, .timeout = 120)
{
    char *dir = bk_tmpdir();
    edb_env *env = bk_env_open(dir);
    bk_populate(env, 200);
    char full[4096], forged[4096], db[4096];
    path_in(full, sizeof full, dir, "full.edbk");
    path_in(forged, sizeof forged, dir, "forged.edbk");
    snprintf(db, sizeof db, "%s/db", dir);
    backup_to_file(env, NULL, full);
    edb_env_close(env);
    const uint64_t npages = (uint64_t)1 << 27;          /* a 2 GiB page hash table */
    forge_sparse_base(full, forged, npages, false);
    struct stat st;
    cr_assert_eq(stat(forged, &st), 0);
    cr_assert_gt((uint64_t)st.st_size, (uint64_t)2 << 30, "the forged base is %lld bytes long",
                 (long long)st.st_size);
    cr_assert_lt((uint64_t)st.st_blocks * 512, (uint64_t)4 << 20, "the forged base is not sparse "
                 "(%lld bytes on disk)", (long long)st.st_blocks * 512);
    cr_log_info("forged sparse base: %lld bytes long, %lld on disk", (long long)st.st_size,
                (long long)st.st_blocks * 512);

    /* A forked child starts with this process's pages (valgrind's own shadow
     * memory among them, 0.9 GB under helgrind): its peak is measured above
     * this process's peak so far. */
    struct rusage self;
    cr_assert_eq(getrusage(RUSAGE_SELF, &self), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (bk_slow() == 1) {      /* sanitizers and valgrind need more address space */
            struct rlimit rl = { (rlim_t)1 << 30, (rlim_t)1 << 30 };
            (void)setrlimit(RLIMIT_AS, &rl);
        }
        edb_env_opts o = { .max_tables = 2, .flags = EDB_ENV_NOSYNC, .map_size = 1ull << 28 };
        edb_env *e2 = NULL;
        int rc = edb_env_open(&e2, db, &o);
        if (rc == 0) {
            edb_backup_opts bo = { .flags = EDB_BACKUP_INCREMENTAL, .base = forged };
            edb_backup *bk = NULL;
            rc = edb_backup_begin(&bk, e2, &bo);
            fprintf(stderr, "begin with the forged base: %s\n", edb_error_last());
        }
        _exit(rc == EDB_CORRUPT ? 0 : 1);
    }
    int status;
    struct rusage ru;
    cr_assert_eq(wait4(pid, &status, 0, &ru), pid);
    cr_assert(WIFEXITED(status), "the child died (signal %d)", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    cr_assert_eq(WEXITSTATUS(status), 0, "the forged base was not refused with EDB_CORRUPT (stderr)");
    cr_log_info("forged sparse base: refused; the child's peak resident size %ld KiB", ru.ru_maxrss);
    long limit_kib = self.ru_maxrss + (bk_slow() == 1 ? 256L : 768L) * 1024;
    cr_assert_lt(ru.ru_maxrss, limit_kib, "the child's peak resident size was %ld KiB (this process's: %ld KiB)",
                 ru.ru_maxrss, self.ru_maxrss);
    bk_rm_tree(dir);
    free(dir);
}

/* The writer checks the header it is about to write with the reader's own
 * rules (edb__arch_header_check): a base larger than this database can ever
 * be (real bytes this time, no hole) is refused by edb_backup_begin instead
 * of producing an archive whose header the reader refuses ("base_npages
 * exceeds max_pages"). */
Test(incremental, a_base_larger_than_the_database_can_be_is_refused, .timeout = 60)
{
    char *dir = bk_tmpdir();
    edb_env *env = bk_env_open(dir);            /* a 1 GiB map: 262144 pages of 4 KiB */
    bk_populate(env, 200);
    char full[4096], forged[4096], out[4096];
    path_in(full, sizeof full, dir, "full.edbk");
    path_in(forged, sizeof forged, dir, "big.edbk");
    path_in(out, sizeof out, dir, "incr.edbk");
    backup_to_file(env, NULL, full);
    forge_sparse_base(full, forged, 300000, true);
    edb_backup_opts bo = { .flags = EDB_BACKUP_INCREMENTAL, .base = forged };
    edb_backup *bk = NULL;
    int rc = edb_backup_begin(&bk, env, &bo);
    if (rc == 0) {
        /* the old behaviour: an archive its own reader refuses */
        int r2 = edb_backup_save(bk, out, 0, NULL, NULL);
        edb_backup_end(bk);
        edb_backup_source src = { out, -1, NULL, NULL };
        int v = r2 == 0 ? edb_backup_verify(NULL, &src, 1, NULL, NULL) : r2;
        cr_assert_fail("edb_backup_begin accepted the base; the archive written: %s (%s)",
                       edb_err_name(v), edb_error_last());
    }
    RC(rc, EDB_CORRUPT);
    cr_assert(strstr(edb_error_last(), "exceeds max_pages") != NULL, "%s", edb_error_last());
    cr_assert_null(bk);
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
}

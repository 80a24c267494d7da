/* test_compress.c: compressed archives (format version 3, issue #15): full
 * and incremental chains restored against mdb_dump of the same snapshot,
 * chains mixing compressed and plain archives, merge, verify naming every
 * page of a damaged frame, truncation, forged lengths, and the countdown of
 * faults over save, verify and restore of a compressed archive. */
#include "bk_helpers.h"

#include <stdarg.h>

#include "archive_fixture.h"
#include "codec.h"
#include "copier.h"
#include "sys.h"

static const uint8_t KEY[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t KEY2[32] = "fedcba9876543210fedcba9876543210";

/* ---- helpers ---- */

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

/* Save a backup of env (compressed at @level, 0: plain; incremental on
 * @base when not NULL) to @path with edb_backup_save(). */
static void
save(edb_env *env, int level, const char *base, const char *path)
{
    edb_backup_opts o = { 0 };
    if (level > 0) {
        o.compress = EDB_BACKUP_COMPRESS_ZSTD;
        o.compress_level = level;
    }
    if (base != NULL) {
        o.flags = EDB_BACKUP_INCREMENTAL;
        o.base = base;
    }
    edb_backup *bk = NULL;
    OK(edb_backup_begin(&bk, env, &o));
    OK(edb_backup_save(bk, path, 0, NULL, NULL));
    edb_backup_end(bk);
}

static uint8_t *
load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    cr_assert_not_null(p);
    cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static int
restore_keyed(const char *target, char **paths, size_t n, const uint8_t *key)
{
    edb_backup_source src[8];
    cr_assert_leq(n, 8u);
    for (size_t i = 0; i < n; i++)
        src[i] = (edb_backup_source){ .path = paths[i], .fd = -1, .key = key };
    return edb_backup_restore(NULL, target, src, n, 0);
}

static int
verify_keyed(char **paths, size_t n, const uint8_t *key, void *pr, edb_backup_problem_fn fn)
{
    edb_backup_source src[8];
    cr_assert_leq(n, 8u);
    for (size_t i = 0; i < n; i++)
        src[i] = (edb_backup_source){ .path = paths[i], .fd = -1, .key = key };
    return edb_backup_verify(NULL, src, n, fn, pr);
}

static int
restore_paths(const char *target, char **paths, size_t n)
{
    edb_backup_source src[8];
    cr_assert_leq(n, 8u);
    for (size_t i = 0; i < n; i++)
        src[i] = (edb_backup_source){ .path = paths[i], .fd = -1 };
    return edb_backup_restore(NULL, target, src, n, 0);
}

typedef struct problems {
    size_t n;
    int code[256];
    int64_t frame[256], pgno[256];
} problems;

static void
on_problem(void *ctx, const edb_backup_problem *p)
{
    problems *pr = ctx;
    if (pr->n < 256) {
        pr->code[pr->n] = p->code;
        pr->frame[pr->n] = p->frame;
        pr->pgno[pr->n] = p->pgno;
    }
    pr->n++;
}

static int
verify_paths(char **paths, size_t n, problems *pr)
{
    edb_backup_source src[8];
    cr_assert_leq(n, 8u);
    for (size_t i = 0; i < n; i++)
        src[i] = (edb_backup_source){ .path = paths[i], .fd = -1 };
    return edb_backup_verify(NULL, src, n, pr ? on_problem : NULL, pr);
}

/* The version-3 frames of an archive in memory: offset, count, stored. */
typedef struct zframes {
    size_t n;
    size_t off[4096];
    uint32_t count[4096], stored[4096];
    uint64_t first_pgno[4096];
} zframes;

static void
walk_frames(zframes *z, const uint8_t *a, size_t len)
{
    edb__arch_header h;
    OK(edb__arch_header_decode(&h, a, 0));
    cr_assert_eq(h.version, EDB__ARCH_VERSION_Z);
    size_t off = EDB__ARCH_BLOCK;
    z->n = 0;
    while (off + EDB__ARCH_ZFIXED <= len && memcmp(a + off, EDB__ARCH_MAGIC_ZFRAME, 4) == 0) {
        edb__arch_frame f;
        uint32_t method, stored;
        OK(edb__arch_zframe_decode(&f, &method, &stored, a + off, &h, z->n, off));
        cr_assert_lt(z->n, 4096u);
        z->off[z->n] = off;
        z->count[z->n] = f.count;
        z->stored[z->n] = stored;
        z->first_pgno[z->n] = f.entries[0].pgno;
        z->n++;
        off += EDB__ARCH_ZHDR_SIZE(f.count) + stored;
    }
    cr_assert_eq(memcmp(a + off, EDB__ARCH_MAGIC_TRAILER, 4), 0, "no trailer after the frames");
}

/* Recompute a version-3 frame header's hash after a change. */
static void
zreseal(uint8_t *p)
{
    uint32_t count = edb__le32(p + 4);
    size_t hl = EDB__ARCH_ZHDR_SIZE(count) - 16;
    edb__arch_hash h;
    edb__arch_hash_bytes(&h, p, hl, 0);
    memcpy(p + hl, h.b, 16);
}

struct world {
    char *dir;
    edb_env *env;
};

static void
world_init(struct world *w, unsigned rows)
{
    w->dir = bk_tmpdir();
    w->env = bk_env_open(w->dir);
    bk_populate(w->env, rows);
}

static void
world_end(struct world *w)
{
    edb_env_close(w->env);
    bk_rm_tree(w->dir);
    free(w->dir);
}

static char *
db_dump(struct world *w)
{
    char db[1100];
    snprintf(db, sizeof db, "%s/db", w->dir);
    char *d = fx_dump(db);
    cr_assert_not_null(d);
    return d;
}

static void
expect_restores_to(struct world *w, char **paths, size_t n, const char *dump, const char *name)
{
    char target[1100];
    path_in(target, sizeof target, w->dir, "%s", name);
    OK(restore_paths(target, paths, n));
    char *got = fx_dump(target);
    cr_assert_not_null(got);
    cr_assert_str_eq(got, dump, "restore of %zu archive(s) into %s differs from the snapshot", n, name);
    free(got);
}

/* ---- round trips ---- */

Test(compress, full_and_incremental_chain_round_trip, .timeout = 120)
{
    struct world w;
    world_init(&w, bk_scale(6000));
    MDB_env *m = edb__env_mdb(w.env);
    MDB_dbi d = bk_dbi(w.env);
    char p0[1100], p1[1100], p2[1100], plain[1100];
    path_in(p0, sizeof p0, w.dir, "c0.edbk");
    path_in(p1, sizeof p1, w.dir, "c1.edbk");
    path_in(p2, sizeof p2, w.dir, "c2.edbk");
    path_in(plain, sizeof plain, w.dir, "plain.edbk");

    unsigned long zc0 = atomic_load(&edb__copier_zc_frames);
    save(w.env, 1, NULL, p0);
    /* A compressed archive is built in the ring's slots, never zero-copy. */
    cr_assert_eq(atomic_load(&edb__copier_zc_frames), zc0);
    save(w.env, 0, NULL, plain);
    char *dump0 = db_dump(&w);

    size_t zlen, plen;
    uint8_t *za = load(p0, &zlen), *pa = load(plain, &plen);
    edb__arch_header h;
    OK(edb__arch_header_decode(&h, za, 0));
    cr_assert_eq(h.version, EDB__ARCH_VERSION_Z);
    cr_assert_eq(h.codec, EDB__ARCH_CODEC_ZSTD);
    cr_assert_eq(h.codec_level, 1u);
    OK(edb__arch_header_decode(&h, pa, 0));
    cr_assert_eq(h.version, EDB__ARCH_VERSION, "a plain archive stays version 2");
    cr_assert_lt(zlen, plen, "compressed %zu bytes, plain %zu", zlen, plen);
    zframes *z = malloc(sizeof *z);
    walk_frames(z, za, zlen);
    cr_assert_gt(z->n, 1u);
    free(z);
    free(za);
    free(pa);

    MDB_OK(bk_write(m, d, 100, 300, 2, 0));          /* rewrite some rows */
    save(w.env, 3, p0, p1);
    char *dump1 = db_dump(&w);
    MDB_OK(bk_write(m, d, bk_scale(6000) + 50, 200, 3, 11));
    save(w.env, 1, p1, p2);
    char *dump2 = db_dump(&w);

    char *chain[] = { p0, p1, p2 };
    OK(verify_paths(chain, 3, NULL));
    expect_restores_to(&w, chain, 1, dump0, "r0");
    expect_restores_to(&w, chain, 2, dump1, "r1");
    expect_restores_to(&w, chain, 3, dump2, "r2");

    edb_backup_summary s;
    OK(edb_backup_describe(&s, &(edb_backup_source){ .path = p1, .fd = -1 }));
    cr_assert_eq(s.complete, 1, "%s", s.problem);
    cr_assert_eq(s.compress, EDB_BACKUP_COMPRESS_ZSTD);
    cr_assert_eq(s.compress_level, 3);
    cr_assert(s.flags & EDB_BACKUP_INCREMENTAL);
    free(dump0);
    free(dump1);
    free(dump2);
    world_end(&w);
}

Test(compress, chain_mixing_compressed_and_plain, .timeout = 120)
{
    struct world w;
    world_init(&w, bk_scale(4000));
    MDB_env *m = edb__env_mdb(w.env);
    MDB_dbi d = bk_dbi(w.env);
    char p[4][1100];
    for (int i = 0; i < 4; i++)
        path_in(p[i], sizeof p[i], w.dir, "m%d.edbk", i);
    save(w.env, 0, NULL, p[0]);                       /* plain full */
    MDB_OK(bk_write(m, d, 10, 200, 2, 0));
    save(w.env, 1, p[0], p[1]);                       /* compressed on plain */
    MDB_OK(bk_write(m, d, 500, 200, 3, 0));
    save(w.env, 0, p[1], p[2]);                       /* plain on compressed */
    MDB_OK(bk_write(m, d, 900, 200, 4, 0));
    save(w.env, 5, p[2], p[3]);
    char *dump = db_dump(&w);
    char *chain[] = { p[0], p[1], p[2], p[3] };
    OK(verify_paths(chain, 4, NULL));
    expect_restores_to(&w, chain, 4, dump, "r");
    free(dump);
    world_end(&w);
}

Test(compress, merge_of_a_compressed_chain, .timeout = 120)
{
    struct world w;
    world_init(&w, bk_scale(4000));
    MDB_env *m = edb__env_mdb(w.env);
    MDB_dbi d = bk_dbi(w.env);
    char p0[1100], p1[1100], p2[1100], out[1100], out2[1100];
    path_in(p0, sizeof p0, w.dir, "a0.edbk");
    path_in(p1, sizeof p1, w.dir, "a1.edbk");
    path_in(p2, sizeof p2, w.dir, "a2.edbk");
    path_in(out, sizeof out, w.dir, "merged.edbk");
    path_in(out2, sizeof out2, w.dir, "merged-plain.edbk");
    save(w.env, 1, NULL, p0);
    MDB_OK(bk_write(m, d, 10, 300, 2, 5));
    save(w.env, 1, p0, p1);
    MDB_OK(bk_write(m, d, 2000, 300, 3, 0));
    save(w.env, 0, p1, p2);
    char *dump = db_dump(&w);

    edb_backup_source src[3] = { { .path = p0, .fd = -1 }, { .path = p1, .fd = -1 },
                                 { .path = p2, .fd = -1 } };
    /* The chain's last archive compressed: the merged one is too. */
    OK(edb_backup_merge(NULL, out, src, 2, 0));
    size_t len;
    uint8_t *a = load(out, &len);
    edb__arch_header h;
    OK(edb__arch_header_decode(&h, a, 0));
    cr_assert_eq(h.version, EDB__ARCH_VERSION_Z);
    cr_assert_eq(h.flags & EDB__ARCH_F_INCREMENTAL, 0u);
    free(a);
    char *m2 = out;
    OK(verify_paths(&m2, 1, NULL));
    /* It restores what the two archives restore, page for page. */
    char t1[1100], t2[1100];
    path_in(t1, sizeof t1, w.dir, "t-merged");
    path_in(t2, sizeof t2, w.dir, "t-chain");
    OK(restore_paths(t1, &m2, 1));
    char *chain[] = { p0, p1 };
    OK(restore_paths(t2, chain, 2));
    char c1[1200], c2[1200];
    snprintf(c1, sizeof c1, "%s/data.mdb", t1);
    snprintf(c2, sizeof c2, "%s/data.mdb", t2);
    cr_assert_eq(fx_sh("cmp -s '%s' '%s'", c1, c2), 0, "merged restore differs from the chain's");

    /* A chain ending in a plain archive merges into a plain one. */
    OK(edb_backup_merge(NULL, out2, src, 3, 0));
    a = load(out2, &len);
    OK(edb__arch_header_decode(&h, a, 0));
    cr_assert_eq(h.version, EDB__ARCH_VERSION);
    free(a);
    char *m3 = out2;
    expect_restores_to(&w, &m3, 1, dump, "t-merged-plain");
    free(dump);
    world_end(&w);
}

Test(compress, threads_split_frames_and_restore_alike, .timeout = 120)
{
    struct world w;
    world_init(&w, bk_scale(4000));
    int tasks = bk_tasks_baseline();
    char p1[1100], p4[1100];
    path_in(p1, sizeof p1, w.dir, "t1.edbk");
    path_in(p4, sizeof p4, w.dir, "t4.edbk");
    save(w.env, 1, NULL, p1);
    edb_backup_opts o = { .compress = EDB_BACKUP_COMPRESS_ZSTD, .compress_threads = 4 };
    edb_backup *bk = NULL;
    OK(edb_backup_begin(&bk, w.env, &o));
    OK(edb_backup_save(bk, p4, 0, NULL, NULL));
    edb_backup_end(bk);
    /* The helpers are joined with the copier. */
    cr_assert_eq(bk_wait_tasks(tasks, 3000), tasks, "compression helpers left running");
    char *dump = db_dump(&w);
    size_t l1, l4;
    uint8_t *a1 = load(p1, &l1), *a4 = load(p4, &l4);
    /* Same frames and entries, but the payloads are 4 zstd frames each:
     * different bytes that decode to the same pages. */
    zframes *z1 = malloc(sizeof *z1), *z4 = malloc(sizeof *z4);
    walk_frames(z1, a1, l1);
    walk_frames(z4, a4, l4);
    cr_assert_eq(z1->n, z4->n);
    bool differs = false;
    for (size_t i = 0; i < z1->n; i++) {
        cr_assert_eq(z1->count[i], z4->count[i]);
        cr_assert_eq(z1->first_pgno[i], z4->first_pgno[i]);
        differs |= z1->stored[i] != z4->stored[i];
    }
    cr_assert(differs, "four threads wrote the payloads one thread writes");
    char *pp = p4;
    OK(verify_paths(&pp, 1, NULL));
    expect_restores_to(&w, &pp, 1, dump, "r4");
    o.compress_threads = 65;
    RC(edb_backup_begin(&bk, w.env, &o), EDB_INVAL);
    free(z1);
    free(z4);
    free(a1);
    free(a4);
    free(dump);
    world_end(&w);
}

/* ---- damage ---- */

Test(compress, damaged_frame_names_its_pages, .timeout = 120)
{
    struct world w;
    world_init(&w, bk_scale(4000));
    char p[1100], bad[1100];
    path_in(p, sizeof p, w.dir, "z.edbk");
    path_in(bad, sizeof bad, w.dir, "bad.edbk");
    save(w.env, 1, NULL, p);
    size_t len;
    uint8_t *a = load(p, &len);
    zframes *z = malloc(sizeof *z);
    walk_frames(z, a, len);
    cr_assert_geq(z->n, 2u);
    /* Damage the middle of frame 1's compressed payload. */
    size_t hl = EDB__ARCH_ZHDR_SIZE(z->count[1]);
    edb__arch_header h;
    OK(edb__arch_header_decode(&h, a, 0));
    edb__arch_frame f;
    uint32_t method, stored;
    OK(edb__arch_zframe_decode(&f, &method, &stored, a + z->off[1], &h, 1, z->off[1]));
    cr_assert_eq(method, EDB__ARCH_ZM_ZSTD);
    /* Two kinds of damage: bytes in the middle of the payload (zstd has no
     * checksum of its own, so it may decode to altered pages: those are
     * named by their hashes), and the payload's zstd frame header (it does
     * not decode at all: every page of the frame is named). */
    for (int kind = 0; kind < 2; kind++) {
        uint8_t *c = malloc(len);
        memcpy(c, a, len);
        size_t at = kind == 0 ? z->off[1] + hl + stored / 2 : z->off[1] + hl;
        for (size_t i = 0; i < 8; i++)
            c[at + i] ^= 0x5a;
        cr_assert_eq(fx_write(bad, c, len), 0);
        free(c);
        problems pr = { 0 };
        char *pb = bad;
        RC(verify_paths(&pb, 1, &pr), EDB_CHECKSUM);
        cr_assert_geq(pr.n, 1u);
        cr_assert_leq(pr.n, f.count, "kind %d: %zu problems for a frame of %u pages", kind, pr.n,
                      f.count);
        for (size_t i = 0; i < pr.n; i++) {
            cr_assert_eq(pr.code[i], EDB_CHECKSUM);
            cr_assert_eq(pr.frame[i], 1);
            bool in_frame = false;
            for (uint32_t j = 0; j < f.count; j++)
                in_frame |= pr.pgno[i] == (int64_t)f.entries[j].pgno;
            cr_assert(in_frame, "problem %zu names page %lld, not one of frame 1", i,
                      (long long)pr.pgno[i]);
        }
        if (kind == 1) {
            cr_assert_eq(pr.n, f.count, "an undecodable frame names each of its pages");
            for (uint32_t j = 0; j < f.count; j++)
                cr_assert_eq(pr.pgno[j], (int64_t)f.entries[j].pgno);
        }
    }
    char *pb = bad;
    /* Restore refuses it and leaves nothing. */
    char target[1100];
    path_in(target, sizeof target, w.dir, "r");
    RC(restore_paths(target, &pb, 1), EDB_CHECKSUM);
    cr_assert(strstr(edb_error_last(), "frame 1") != NULL, "%s", edb_error_last());
    cr_assert(strstr(edb_error_last(), "page") != NULL, "%s", edb_error_last());
    cr_assert_neq(access(target, F_OK), 0, "restore left %s", target);
    free(z);
    free(a);
    world_end(&w);
}

Test(compress, truncated_archives_are_refused, .timeout = 120)
{
    struct world w;
    world_init(&w, bk_scale(3000));
    char p[1100], cut[1100];
    path_in(p, sizeof p, w.dir, "z.edbk");
    path_in(cut, sizeof cut, w.dir, "cut.edbk");
    save(w.env, 1, NULL, p);
    size_t len;
    uint8_t *a = load(p, &len);
    zframes *z = malloc(sizeof *z);
    walk_frames(z, a, len);
    size_t cuts[] = { EDB__ARCH_BLOCK + 10,                   /* inside frame 0's header */
                      z->off[1] + EDB__ARCH_ZHDR_SIZE(z->count[1]) + 5,   /* in a payload */
                      z->off[z->n - 1],                       /* before the last frame */
                      len - EDB__ARCH_BLOCK,                  /* the end block missing */
                      len - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        cr_assert_eq(fx_write(cut, a, cuts[i]), 0);
        char *pc = cut;
        RC(verify_paths(&pc, 1, NULL), EDB_CORRUPT);
        edb_backup_summary s;
        OK(edb_backup_describe(&s, &(edb_backup_source){ .path = cut, .fd = -1 }));
        cr_assert_eq(s.complete, 0, "a cut at %zu looks complete", cuts[i]);
        char target[1100];
        path_in(target, sizeof target, w.dir, "r%zu", i);
        RC(restore_paths(target, &pc, 1), EDB_CORRUPT);
        cr_assert_neq(access(target, F_OK), 0);
    }
    free(z);
    free(a);
    world_end(&w);
}

Test(compress, forged_lengths_are_refused_before_allocating, .timeout = 120)
{
    struct world w;
    world_init(&w, bk_scale(3000));
    char p[1100], bad[1100];
    path_in(p, sizeof p, w.dir, "z.edbk");
    path_in(bad, sizeof bad, w.dir, "bad.edbk");
    save(w.env, 1, NULL, p);
    size_t len;
    uint8_t *save_a = load(p, &len);
    uint8_t *a = malloc(len);
    zframes *z = malloc(sizeof *z);
    walk_frames(z, save_a, len);
    size_t f0 = z->off[0];
    uint32_t raw = z->count[0] * 4096u;
    struct { size_t off; uint32_t v; int code; const char *needle; } cases[] = {
        { f0 + 16, UINT32_MAX, EDB_CORRUPT, "must be smaller" },   /* stored: 4 GiB */
        { f0 + 16, raw, EDB_CORRUPT, "must be smaller" },          /* not smaller than the pages */
        { f0 + 16, 0, EDB_CORRUPT, "must be smaller" },
        { f0 + 20, 0, EDB_CORRUPT, "exactly their size" },         /* stored, wrong length */
        { f0 + 20, 7, EDB_CORRUPT, "payload method" },
        { f0 + 4, 169, EDB_CORRUPT, "page count" },
        { f0 + 4, UINT32_MAX, EDB_CORRUPT, "page count" },
        { f0 + 24, 1, EDB_CORRUPT, "reserved" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(a, save_a, len);
        edb__put_le32(a + cases[i].off, cases[i].v);
        if (edb__le32(a + f0 + 4) >= 1 && edb__le32(a + f0 + 4) <= EDB__ARCH_FRAME_MAX)
            zreseal(a + f0);
        cr_assert_eq(fx_write(bad, a, len), 0);
        char *pb = bad;
        RC(verify_paths(&pb, 1, NULL), cases[i].code);
        cr_assert(strstr(edb_error_last(), cases[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i,
                  edb_error_last(), cases[i].needle);
    }
    /* A frame header altered without resealing is a checksum error. */
    memcpy(a, save_a, len);
    a[f0 + 40] ^= 1;
    cr_assert_eq(fx_write(bad, a, len), 0);
    char *pb = bad;
    RC(verify_paths(&pb, 1, NULL), EDB_CHECKSUM);
    cr_assert(strstr(edb_error_last(), "header hash") != NULL, "%s", edb_error_last());
    /* Two frames swapped: the sequence numbers say so. */
    free(z);
    free(a);
    free(save_a);
    world_end(&w);
}

Test(compress, bad_options_are_refused, .timeout = 30)
{
    struct world w;
    world_init(&w, 100);
    edb_backup *bk = NULL;
    edb_backup_opts o = { .compress = 7 };
    RC(edb_backup_begin(&bk, w.env, &o), EDB_INVAL);
    cr_assert_null(bk);
    o = (edb_backup_opts){ .compress = EDB_BACKUP_COMPRESS_ZSTD, .compress_level = 23 };
    RC(edb_backup_begin(&bk, w.env, &o), EDB_INVAL);
    o.compress_level = -1;
    RC(edb_backup_begin(&bk, w.env, &o), EDB_INVAL);
    world_end(&w);
}

/* ---- faults: the countdown over save, verify and restore ---- */

static int
fault_scenario(edb_env *env, const char *dir, long n, int errnum, unsigned flags)
{
    char path[1100], target[1100];
    path_in(path, sizeof path, dir, "f.edbk");
    path_in(target, sizeof target, dir, "t");
    unlink(path);
    bk_rm_tree(target);
    /* Odd rounds with two compressing threads: a helper that cannot be
     * started leaves the copier to compress alone. */
    edb_backup_opts o = { .compress = EDB_BACKUP_COMPRESS_ZSTD, .ring_size = 1,
                          .compress_threads = n % 2 ? 2 : 0,
                          .encrypt_key = n % 3 == 0 ? KEY : NULL };
    edb__fault_arm(n, errnum, flags);
    edb_backup *bk = NULL;
    int rc = edb_backup_begin(&bk, env, &o);
    if (rc == 0) {
        rc = edb_backup_save(bk, path, 0, NULL, NULL);
        edb_backup_end(bk);
    }
    if (rc != 0)
        cr_assert_neq(access(path, F_OK), 0, "fault %ld: a failed save left %s", n, path);
    if (rc == 0) {
        edb_backup_source src = { .path = path, .fd = -1, .key = o.encrypt_key };
        rc = edb_backup_verify(NULL, &src, 1, NULL, NULL);
        if (rc == 0)
            rc = edb_backup_restore(NULL, target, &src, 1, 0);
        if (rc != 0 && access(target, F_OK) == 0) {
            /* Only a restore that failed after its rename (syncing the
             * parent directory) leaves the target, and then complete. */
            edb__fault_disarm();
            char *got = fx_dump(target);
            cr_assert_not_null(got, "fault %ld: a failed restore left a broken %s", n, target);
            free(got);
        }
    }
    return rc;
}

static void
countdown(int errnum, unsigned flags, unsigned *ok, unsigned *failed)
{
    char *dir = bk_tmpdir();
    edb_env *env = bk_env_open(dir);
    bk_populate(env, bk_scale(600));
    char db[1100];
    snprintf(db, sizeof db, "%s/db", dir);
    char *dump = fx_dump(db);
    cr_assert_not_null(dump);
    MDB_env *m = edb__env_mdb(env);
    int tasks = bk_tasks_baseline();
    /* Every call natively; under sanitizers and valgrind (EDB_TEST_SCALE
     * below 100) every (100 / scale)-th, at most every 5th, so that CI's
     * slow runs stay short (helgrind took 861 s for every call). */
    long stride = (long)(100 / bk_scale(100));
    if (stride > 5)
        stride = 5;
    for (long n = 1;; n += stride) {
        cr_assert_lt(n, 20000, "the countdown never ran out");
        int rc = fault_scenario(env, dir, n, errnum, flags);
        long fired = edb__fault_fired();
        edb__fault_disarm();
        if (rc == 0) {
            (*ok)++;
            char target[1100];
            path_in(target, sizeof target, dir, "t");
            char *got = fx_dump(target);
            cr_assert_not_null(got);
            cr_assert_str_eq(got, dump, "fault %ld: the restore differs", n);
            free(got);
        } else {
            (*failed)++;
            cr_assert(rc < 0 && rc != EDB_INTERNAL && rc != EDB_INVAL,
                      "fault %ld (errno %d): %s", n, errnum, edb_err_name(rc));
            cr_assert_neq(edb_error_last()[0], '\0', "fault %ld: no detail", n);
            cr_assert_gt(fired, 0, "fault %ld: an error without a fault: %s (%s)", n,
                         edb_err_name(rc), edb_error_last());
        }
        cr_assert_eq(bk_wait_tasks(tasks, 3000), tasks, "fault %ld: copier left running", n);
        cr_assert_eq(bk_wait_readers(m, 0, 3000), 0, "fault %ld: reader slot left", n);
        if (fired == 0)
            break;
    }
    free(dump);
    edb_env_close(env);
    bk_rm_tree(dir);
    free(dir);
    bk_assert_no_objects(3000);
    BK_LEAK_CHECK();
}

Test(compress, countdown_each_call_fails_once, .timeout = 600)
{
    unsigned ok = 0, failed = 0;
    countdown(EIO, 0, &ok, &failed);
    cr_assert_gt(failed, 10u);
    cr_assert_gt(ok, 0u);
    ok = failed = 0;
    countdown(ENOMEM, 0, &ok, &failed);
    cr_assert_gt(failed, 10u);
}

Test(compress, countdown_every_call_fails_from_the_nth_on, .timeout = 600)
{
    unsigned ok = 0, failed = 0;
    countdown(EIO, EDB__FAULT_PERSISTENT, &ok, &failed);
    cr_assert_gt(failed, 10u);
}

/* ---- encryption ---- */

static void
save_enc(edb_env *env, int level, const char *base, const char *path, const uint8_t *key)
{
    edb_backup_opts o = { .encrypt_key = key };
    if (level > 0) {
        o.compress = EDB_BACKUP_COMPRESS_ZSTD;
        o.compress_level = level;
    }
    if (base != NULL) {
        o.flags = EDB_BACKUP_INCREMENTAL;
        o.base = base;
    }
    edb_backup *bk = NULL;
    OK(edb_backup_begin(&bk, env, &o));
    OK(edb_backup_save(bk, path, 0, NULL, NULL));
    edb_backup_end(bk);
}

Test(encrypt, chain_round_trip_and_info_without_the_key, .timeout = 120)
{
    struct world w;
    world_init(&w, bk_scale(4000));
    MDB_env *m = edb__env_mdb(w.env);
    MDB_dbi d = bk_dbi(w.env);
    char p0[1100], p1[1100], p2[1100];
    path_in(p0, sizeof p0, w.dir, "e0.edbk");
    path_in(p1, sizeof p1, w.dir, "e1.edbk");
    path_in(p2, sizeof p2, w.dir, "e2.edbk");
    save_enc(w.env, 1, NULL, p0, KEY);                  /* compressed, encrypted */
    char *dump0 = db_dump(&w);
    MDB_OK(bk_write(m, d, 10, 200, 2, 0));
    save_enc(w.env, 0, p0, p1, KEY);                    /* encrypted only, on an encrypted base */
    MDB_OK(bk_write(m, d, 700, 200, 3, 0));
    save(w.env, 1, p1, p2);                             /* plain compressed on it */
    char *dump2 = db_dump(&w);

    /* The key is nowhere in the archive; its id is in the header. */
    size_t len;
    uint8_t *a = load(p0, &len);
    cr_assert_null(memmem(a, len, KEY, sizeof KEY), "the key is in the archive");
    edb__arch_header h;
    OK(edb__arch_header_decode(&h, a, 0));
    uint8_t id[16];
    OK(edb__key_id(id, KEY));
    cr_assert_eq(h.cipher, EDB__ARCH_CIPHER_SS);
    cr_assert(memcmp(h.key_id, id, 16) == 0, "key id in the header");
    free(a);

    /* describe (dbtool info) needs no key. */
    edb_backup_summary s;
    OK(edb_backup_describe(&s, &(edb_backup_source){ .path = p1, .fd = -1 }));
    cr_assert_eq(s.complete, 1, "%s", s.problem);
    cr_assert_eq(s.encrypted, 1);
    cr_assert(memcmp(s.key_id, id, 16) == 0, "key id in the summary");
    cr_assert_eq(s.compress, EDB_BACKUP_COMPRESS_NONE);

    char *chain[] = { p0, p1, p2 };
    OK(verify_keyed(chain, 3, KEY, NULL, NULL));
    char t0[1100], t2[1100];
    path_in(t0, sizeof t0, w.dir, "r0");
    path_in(t2, sizeof t2, w.dir, "r2");
    OK(restore_keyed(t0, chain, 1, KEY));
    OK(restore_keyed(t2, chain, 3, KEY));
    char *g0 = fx_dump(t0), *g2 = fx_dump(t2);
    cr_assert_str_eq(g0, dump0);
    cr_assert_str_eq(g2, dump2);
    free(g0);
    free(g2);
    free(dump0);
    free(dump2);
    world_end(&w);
}

Test(encrypt, missing_or_wrong_key_is_edb_auth, .timeout = 120)
{
    struct world w;
    world_init(&w, bk_scale(2000));
    char p[1100], out[1100], t[1100];
    path_in(p, sizeof p, w.dir, "e.edbk");
    path_in(out, sizeof out, w.dir, "m.edbk");
    path_in(t, sizeof t, w.dir, "r");
    save_enc(w.env, 1, NULL, p, KEY);
    char *pp = p;
    const uint8_t *keys[] = { NULL, KEY2 };
    for (int i = 0; i < 2; i++) {
        RC(verify_keyed(&pp, 1, keys[i], NULL, NULL), EDB_AUTH);
        cr_assert(strstr(edb_error_last(), i == 0 ? "its key is needed" : "a wrong key") != NULL,
                  "%s", edb_error_last());
        cr_assert_null(memmem(edb_error_last(), strlen(edb_error_last()), KEY, 8));
        RC(restore_keyed(t, &pp, 1, keys[i]), EDB_AUTH);
        cr_assert_neq(access(t, F_OK), 0);
        edb_backup_source src = { .path = p, .fd = -1, .key = keys[i] };
        RC(edb_backup_merge(NULL, out, &src, 1, 0), EDB_AUTH);
        cr_assert_neq(access(out, F_OK), 0);
    }
    /* The right key merges into an encrypted archive with the same key id. */
    edb_backup_source src = { .path = p, .fd = -1, .key = KEY };
    OK(edb_backup_merge(NULL, out, &src, 1, 0));
    edb_backup_summary s;
    OK(edb_backup_describe(&s, &(edb_backup_source){ .path = out, .fd = -1 }));
    cr_assert_eq(s.encrypted, 1);
    char *po = out;
    RC(verify_keyed(&po, 1, NULL, NULL, NULL), EDB_AUTH);
    OK(verify_keyed(&po, 1, KEY, NULL, NULL));
    world_end(&w);
}

Test(encrypt, tampered_frames_are_named, .timeout = 120)
{
    struct world w;
    world_init(&w, bk_scale(3000));
    char p[1100], bad[1100];
    path_in(p, sizeof p, w.dir, "e.edbk");
    path_in(bad, sizeof bad, w.dir, "bad.edbk");
    save_enc(w.env, 1, NULL, p, KEY);
    size_t len;
    uint8_t *a = load(p, &len);
    zframes *z = malloc(sizeof *z);
    walk_frames(z, a, len);
    cr_assert_geq(z->n, 2u);
    edb__arch_header h;
    OK(edb__arch_header_decode(&h, a, 0));
    edb__arch_frame f;
    uint32_t method, stored;
    OK(edb__arch_zframe_decode(&f, &method, &stored, a + z->off[1], &h, 1, z->off[1]));
    size_t hl = EDB__ARCH_ZHDR_SIZE(f.count);
    /* 0: a byte of the ciphertext; 1: a page hash in the frame header,
     * header hash recomputed (it is no secret): the seal covers the header;
     * 2: the stream header. */
    size_t at[] = { z->off[1] + hl + stored / 2, z->off[1] + EDB__ARCH_ZFIXED + 24 + 8,
                    z->off[1] + hl + 3 };
    for (int k = 0; k < 3; k++) {
        uint8_t *c = malloc(len);
        memcpy(c, a, len);
        c[at[k]] ^= 0x01;
        if (k == 1)
            zreseal(c + z->off[1]);
        cr_assert_eq(fx_write(bad, c, len), 0);
        free(c);
        problems pr = { 0 };
        char *pb = bad;
        RC(verify_keyed(&pb, 1, KEY, &pr, on_problem), EDB_CHECKSUM);
        /* Every page of frame 1 first (case 1 then also finds the page
         * hash table disagreeing with the altered entry). */
        cr_assert_geq(pr.n, f.count, "case %d: %zu problems, frame 1 has %u pages", k, pr.n, f.count);
        cr_assert_leq(pr.n, f.count + 1u, "case %d: %zu problems", k, pr.n);
        for (uint32_t j = 0; j < f.count; j++) {
            cr_assert_eq(pr.frame[j], 1);
            cr_assert_eq(pr.pgno[j], (int64_t)f.entries[j].pgno);
        }
        char t[1100];
        path_in(t, sizeof t, w.dir, "r%d", k);
        RC(restore_keyed(t, &pb, 1, KEY), EDB_CHECKSUM);
        cr_assert(strstr(edb_error_last(), "authentication failed") != NULL, "%s", edb_error_last());
        cr_assert_neq(access(t, F_OK), 0);
    }
    /* Cut short: refused as a truncation. */
    cr_assert_eq(fx_write(bad, a, z->off[1] + hl + stored / 2), 0);
    char *pb = bad;
    RC(verify_keyed(&pb, 1, KEY, NULL, NULL), EDB_CORRUPT);
    free(z);
    free(a);
    world_end(&w);
}

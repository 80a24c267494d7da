/*
 * gen_corpus.c: write the seed corpora of the fuzz targets from real archives
 * made by the library (not built by default: `make tests/fuzz/gen_corpus`,
 * then `tests/fuzz/gen_corpus $(top_srcdir)/tests/fuzz/corpus`).
 *
 * A tiny database (a few records, some deleted so that free pages exist) is
 * backed up in full, with EDB_BACKUP_KEEP_FREE and (when the library has it)
 * incrementally; each archive goes to corpus/reader/ and its header, first
 * frame, trailer and end block to corpus/blocks/.  Archives stay small (tens
 * of KiB) so that the corpus can live in git.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "archive_fixture.h"
#include "edb.h"
#include "edb_backup.h"
#include "env.h"

static int
put(MDB_env *m, const char *db, unsigned from, unsigned n, unsigned del_every)
{
    MDB_txn *t;
    MDB_dbi d;
    int rc = mdb_txn_begin(m, NULL, 0, &t);
    if (rc)
        return rc;
    if ((rc = mdb_dbi_open(t, db, 0, &d)) != 0)
        goto out;
    for (unsigned i = from; i < from + n && rc == 0; i++) {
        char k[16], v[300];
        snprintf(k, sizeof k, "k%08u", i);
        memset(v, 'a' + (int)(i % 26), sizeof v);
        MDB_val key = { strlen(k), k }, val = { 40 + i % 250, v };
        rc = mdb_put(t, d, &key, &val, 0);
    }
    for (unsigned i = 0; del_every && i < from && rc == 0; i += del_every) {
        char k[16];
        snprintf(k, sizeof k, "k%08u", i);
        MDB_val key = { strlen(k), k };
        rc = mdb_del(t, d, &key, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
out:
    if (rc) {
        mdb_txn_abort(t);
        return rc;
    }
    return mdb_txn_commit(t);
}

static int
save(const char *dir, const char *sub, const char *name, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "gen_corpus: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* One archive of env with opts into a malloc'ed buffer. */
static int
backup(edb_env *env, const edb_backup_opts *o, uint8_t **out, size_t *len)
{
    edb_backup *bk;
    edb_backup_stream *s;
    int rc = edb_backup_begin(&bk, env, o);
    if (rc)
        return rc;
    if ((rc = edb_backup_open(&s, bk)) != 0) {
        edb_backup_end(bk);
        return rc;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        size_t got = 0;
        if (cap - n < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        rc = edb_backup_read(s, buf + n, cap - n, &got);
        if (rc || got == 0)
            break;
        n += got;
    }
    edb_backup_close(s);
    edb_backup_end(bk);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int
save_archive(const char *dir, const char *name, const uint8_t *a, size_t n)
{
    char bname[256];
    if (save(dir, "reader", name, a, n))
        return -1;
    /* header, first frame, trailer, end: the trailer sits before the table. */
    size_t B = EDB__ARCH_BLOCK, off = B, nb = 0;
    snprintf(bname, sizeof bname, "%s.header", name);
    nb += save(dir, "blocks", bname, a, B) == 0;
    while (off + B <= n && edb__arch_block_kind(a + off) == EDB__ARCH_FRAME) {
        if (off == B) {
            snprintf(bname, sizeof bname, "%s.frame0", name);
            nb += save(dir, "blocks", bname, a + off, B) == 0;
        }
        off += B + (size_t)edb__le32(a + off + 4) * edb__le32(a + 16);
    }
    if (off + B <= n && edb__arch_block_kind(a + off) == EDB__ARCH_TRAILER) {
        snprintf(bname, sizeof bname, "%s.trailer", name);
        nb += save(dir, "blocks", bname, a + off, B) == 0;
        /* header + trailer together, so the trailer is checked against a real header */
        uint8_t two[2 * 4096];
        memcpy(two, a, B);
        memcpy(two + B, a + off, B);
        snprintf(bname, sizeof bname, "%s.header+trailer", name);
        nb += save(dir, "blocks", bname, two, 2 * B) == 0;
    }
    snprintf(bname, sizeof bname, "%s.end", name);
    nb += save(dir, "blocks", bname, a + n - B, B) == 0;
    return nb == 5 ? 0 : -1;
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus CORPUS_DIR\n");
        return 2;
    }
    char tmpl[] = "/tmp/edb-corpus-XXXXXX", path[512], base[600];
    if (mkdtemp(tmpl) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/db", tmpl);
    edb_env_opts eo = { .max_tables = 1, .flags = EDB_ENV_NOSYNC, .map_size = 1u << 24 };
    edb_env *env;
    int rc = edb_env_open(&env, path, &eo);
    if (rc) {
        fprintf(stderr, "gen_corpus: open: %s\n", edb_error_last());
        return 1;
    }
    MDB_env *m = edb__env_mdb(env);
    if ((rc = put(m, "edb:r0000", 0, 40, 0)) || (rc = put(m, "edb:r0000", 40, 10, 3))) {
        fprintf(stderr, "gen_corpus: lmdb: %s\n", mdb_strerror(rc));
        return 1;
    }
    static const struct { const char *name; unsigned flags; } kinds[] = {
        { "full.edbk", 0 },
        { "keepfree.edbk", EDB_BACKUP_KEEP_FREE },
        { "lowpin.edbk", EDB_BACKUP_LOW_PIN },
    };
    int made = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        edb_backup_opts o = { .flags = kinds[i].flags };
        uint8_t *a;
        size_t n;
        if ((rc = backup(env, &o, &a, &n)) != 0) {
            fprintf(stderr, "gen_corpus: %s: %s (skipped)\n", kinds[i].name, edb_error_last());
            continue;
        }
        if (save_archive(argv[1], kinds[i].name, a, n) == 0)
            made++;
        if (i == 0) {
            snprintf(base, sizeof base, "%s/base.edbk", tmpl);
            save(tmpl, ".", "base.edbk", a, n);
        }
        free(a);
    }
    /* Kinds the library may not write yet, made with the restore tests'
     * archive writer (tests/backup/archive_fixture.c) from the same file:
     * an incremental on a full, and a low-pin archive that repeats a page. */
    fx_image img1, img2;
    int have1 = fx_image_load(&img1, path) == 0;
    int wrote = put(m, "edb:r0000", 50, 5, 0) == 0;
    if (have1 && wrote && fx_image_load(&img2, path) == 0) {
        fx_archive *fb = calloc(1, sizeof *fb), *fi = calloc(1, sizeof *fi), *fl = calloc(1, sizeof *fl);
        fx_extra again = { 3, 0x5a };
        fx_build(fb, &img1, NULL, 0, 3, NULL, 0);
        fx_build(fi, &img2, fb, 0, 3, NULL, 0);
        fx_build(fl, &img2, NULL, EDB__ARCH_F_LOW_PIN, 16, &again, 1);
        made += save_archive(argv[1], "fx-incr.edbk", fi->data, fi->len) == 0;
        made += save_archive(argv[1], "fx-lowpin.edbk", fl->data, fl->len) == 0;
        fx_archive_free(fb);
        fx_archive_free(fi);
        fx_archive_free(fl);
        free(fb); free(fi); free(fl);
        fx_image_free(&img2);
    }
    if (have1)
        fx_image_free(&img1);
    /* An incremental on the full one, made by the library. */
    if (wrote) {
        edb_backup_opts o = { .flags = EDB_BACKUP_INCREMENTAL, .base = base };
        uint8_t *a;
        size_t n;
        if (backup(env, &o, &a, &n) == 0) {
            made += save_archive(argv[1], "incr.edbk", a, n) == 0;
            free(a);
        } else {
            fprintf(stderr, "gen_corpus: incremental: %s (skipped)\n", edb_error_last());
        }
    }
    /* Compressed archives (format version 3): a full one and an
     * incremental on the plain full one. */
    {
        edb_backup_opts oz = { .compress = EDB_BACKUP_COMPRESS_ZSTD, .compress_level = 1 };
        uint8_t *a;
        size_t n;
        if (backup(env, &oz, &a, &n) == 0) {
            made += save(argv[1], "reader", "z-full.edbk", a, n) == 0;
            free(a);
        }
        static const uint8_t fuzz_key[32] = "edb fuzz key: 32 bytes, no use.";
        edb_backup_opts oe = { .compress = EDB_BACKUP_COMPRESS_ZSTD, .encrypt_key = fuzz_key };
        if (backup(env, &oe, &a, &n) == 0) {
            made += save(argv[1], "reader", "z-enc.edbk", a, n) == 0;
            free(a);
        }
        oz.flags = EDB_BACKUP_INCREMENTAL;
        oz.base = base;
        if (wrote && backup(env, &oz, &a, &n) == 0) {
            made += save(argv[1], "reader", "z-incr.edbk", a, n) == 0;
            free(a);
        }
    }
    edb_env_close(env);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    if (system(cmd) != 0)
        fprintf(stderr, "gen_corpus: could not remove %s\n", tmpl);
    printf("gen_corpus: %d archives\n", made);
    return made > 0 ? 0 : 1;
}

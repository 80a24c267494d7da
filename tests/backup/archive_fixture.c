/* archive_fixture.c: see archive_fixture.h.  Test code: aborts on setup failures. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive_fixture.h"

#define DIE(...) do { fprintf(stderr, "fixture: " __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

int
fx_image_load(fx_image *out, const char *dbdir)
{
    memset(out, 0, sizeof *out);
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dbdir);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    uint8_t m[2][EDB__ARCH_META_SIZE];
    if (fread(m[0], 1, EDB__ARCH_META_SIZE, f) != EDB__ARCH_META_SIZE)
        DIE("short data.mdb");
    uint32_t ps = edb__le32(m[0] + EDB__META_OFF_FREEDB);
    if (fseek(f, ps, SEEK_SET) != 0 || fread(m[1], 1, EDB__ARCH_META_SIZE, f) != EDB__ARCH_META_SIZE)
        DIE("short data.mdb");
    int pick = edb__le64(m[1] + EDB__META_OFF_TXNID) > edb__le64(m[0] + EDB__META_OFF_TXNID);
    memcpy(out->meta, m[pick], EDB__ARCH_META_SIZE);
    out->page_size = ps;
    out->npages = edb__le64(out->meta + EDB__META_OFF_LASTPG) + 1;
    out->txnid = edb__le64(out->meta + EDB__META_OFF_TXNID);
    out->max_pages = edb__le64(out->meta + EDB__META_OFF_MAPSIZE) / ps;
    out->data = calloc(out->npages, ps);
    if (out->data == NULL)
        DIE("nomem");
    if (fseek(f, 0, SEEK_SET) != 0)
        DIE("seek");
    size_t got = fread(out->data, 1, out->npages * ps, f);
    (void)got; /* a shorter file reads as zeros */
    fclose(f);
    return 0;
}

int fx_skip_zero_pages;

void
fx_image_free(fx_image *img)
{
    free(img->data);
    img->data = NULL;
}

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static uint8_t *
grow(struct buf *b, size_t n)
{
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap : 65536;
        while (c < b->len + n)
            c *= 2;
        b->p = realloc(b->p, c);
        if (b->p == NULL)
            DIE("nomem");
        b->cap = c;
    }
    uint8_t *r = b->p + b->len;
    memset(r, 0, n);
    b->len += n;
    return r;
}

static void
page_of(const fx_image *img, uint64_t p, uint8_t *out)
{
    if (p < 2)
        edb__arch_meta_page(out, img->page_size, img->meta, p);
    else
        memcpy(out, img->data + p * img->page_size, img->page_size);
}

void
fx_build(fx_archive *out, const fx_image *img, const fx_archive *base, uint32_t flags,
         uint32_t per_frame, const fx_extra *extra, size_t nextra)
{
    memset(out, 0, sizeof *out);
    uint32_t ps = img->page_size;
    struct buf b = { 0 };
    edb__arch_header *h = &out->header;
    h->version = EDB__ARCH_VERSION;
    h->block_size = EDB__ARCH_BLOCK;
    h->page_size = ps;
    h->flags = flags | (base ? EDB__ARCH_F_INCREMENTAL : 0);
    static uint64_t counter;
    uint64_t tag = ++counter ^ (uint64_t)getpid() << 32;
    edb__put_le64(h->backup_id, tag);
    for (int i = 8; i < 16; i++)
        h->backup_id[i] = (uint8_t)rand();
    if (base) {
        memcpy(h->base_id, base->header.backup_id, 16);
        h->base_hash = base->archive_hash;
        h->base_npages = base->npages;
    }
    h->start_txnid = img->txnid;
    h->start_npages = img->npages;
    h->max_pages = img->max_pages;
    h->created_us = 1700000000000000ull;
    edb__arch_header_encode(grow(&b, EDB__ARCH_BLOCK), h);

    out->npages = img->npages;
    out->table = calloc(img->npages, sizeof *out->table);
    uint8_t *page = malloc(ps);
    for (uint64_t p = 0; p < img->npages; p++) {
        page_of(img, p, page);
        edb__arch_page_hash(&out->table[p], page, ps, p);
    }

    /* pages to emit */
    size_t cap = img->npages + nextra, n = 0;
    uint64_t *emit = malloc(cap * sizeof *emit);
    for (uint64_t p = 2; p < img->npages; p++) {
        if (base && p < base->npages && edb__arch_hash_eq(&base->table[p], &out->table[p]))
            continue;
        if (fx_skip_zero_pages && (!base || p >= base->npages)) {
            const uint8_t *pg = img->data + p * ps;
            size_t z = 0;
            while (z < ps && pg[z] == 0)
                z++;
            if (z == ps)
                continue;
        }
        emit[n++] = p;
    }
    size_t nregular = n;
    for (size_t i = 0; i < nextra; i++)
        emit[n++] = extra[i].pgno;

    edb__arch_frame f;
    uint64_t seq = 0, pages = 0;
    size_t i = 0;
    while (i < n) {
        memset(&f, 0, sizeof f);
        f.seq = seq;
        size_t end = i < nregular ? (nregular - i > per_frame ? i + per_frame : nregular) : n;
        f.count = (uint32_t)(end - i);
        uint8_t *fpages = malloc((size_t)f.count * ps);
        for (size_t k = i; k < end; k++) {
            uint8_t *pg = fpages + (k - i) * ps;
            if (k < nregular)
                page_of(img, emit[k], pg);
            else
                memset(pg, extra[k - nregular].fill, ps);
            f.entries[k - i].pgno = emit[k];
            edb__arch_page_hash(&f.entries[k - i].hash, pg, ps, emit[k]);
        }
        if (out->nframes < sizeof out->frame_off / sizeof out->frame_off[0])
            out->frame_off[out->nframes++] = b.len;
        edb__arch_frame_encode(grow(&b, EDB__ARCH_BLOCK), &f);
        memcpy(grow(&b, (size_t)f.count * ps), fpages, (size_t)f.count * ps);
        free(fpages);
        pages += f.count;
        seq++;
        i = end;
    }
    free(emit);

    edb__arch_trailer t;
    memset(&t, 0, sizeof t);
    t.frames = seq;
    t.pages = pages;
    t.npages = img->npages;
    t.txnid = img->txnid;
    t.pin_us = 5;
    memcpy(t.meta, img->meta, EDB__ARCH_META_SIZE);
    out->trailer_off = b.len;
    edb__arch_trailer_encode(grow(&b, EDB__ARCH_BLOCK), &t);
    out->table_off = b.len;
    uint8_t *tab = grow(&b, edb__arch_table_bytes(img->npages));
    for (uint64_t p = 0; p < img->npages; p++)
        memcpy(tab + p * 16, out->table[p].b, 16);
    edb__arch_archive_hash(&out->archive_hash, b.p, b.len);
    edb__arch_end e;
    memset(&e, 0, sizeof e);
    out->end_off = b.len;
    e.length = b.len + EDB__ARCH_BLOCK;
    memcpy(e.backup_id, h->backup_id, 16);
    e.archive_hash = out->archive_hash;
    edb__arch_end_encode(grow(&b, EDB__ARCH_BLOCK), &e);
    out->data = b.p;
    out->len = b.len;
    free(page);
}

void
fx_reseal(fx_archive *a, size_t off)
{
    uint8_t *blk = a->data + off;
    edb__arch_hash h;
    edb__arch_block_hash(&h, blk);
    memcpy(blk + EDB__ARCH_HASH_OFF, h.b, 16);
    if (off != a->end_off) {
        edb__arch_archive_hash(&a->archive_hash, a->data, a->end_off);
        uint8_t *end = a->data + a->end_off;
        memcpy(end + 40, a->archive_hash.b, 16);
        edb__arch_block_hash(&h, end);
        memcpy(end + EDB__ARCH_HASH_OFF, h.b, 16);
    }
}

void
fx_archive_free(fx_archive *a)
{
    free(a->data);
    free(a->table);
    a->data = NULL;
    a->table = NULL;
}

int
fx_write(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return close(fd);
}

void
fx_db_fill(const char *dir, unsigned n, unsigned seed, unsigned del_every)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    if (mdb_env_create(&env) || mdb_env_set_mapsize(env, 64u << 20) || mdb_env_set_maxdbs(env, 4))
        DIE("env create");
    int rc = mdb_env_open(env, dir, 0, 0600);
    if (rc)
        DIE("env open %s: %s", dir, mdb_strerror(rc));
    if (mdb_txn_begin(env, NULL, 0, &txn) || mdb_dbi_open(txn, "t", MDB_CREATE, &dbi))
        DIE("txn");
    srand(seed);
    char key[32], val[1024];
    for (unsigned i = 0; i < n; i++) {
        snprintf(key, sizeof key, "k%08u", i);
        size_t vl = 10 + (size_t)rand() % 890;
        for (size_t j = 0; j < vl; j++)
            val[j] = (char)('a' + (rand() + (int)seed) % 26);
        MDB_val k = { strlen(key), key }, v = { vl, val };
        if (mdb_put(txn, dbi, &k, &v, 0))
            DIE("put");
    }
    if (del_every)
        for (unsigned i = 0; i < n; i += del_every) {
            snprintf(key, sizeof key, "k%08u", i);
            MDB_val k = { strlen(key), key };
            mdb_del(txn, dbi, &k, NULL);
        }
    if (mdb_txn_commit(txn))
        DIE("commit");
    mdb_env_close(env);
}

int
fx_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

char *
fx_dump(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mdb_dump -a '%s' 2>&1", dir);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        DIE("popen");
    struct buf b = { 0 };
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, p)) > 0)
        memcpy(grow(&b, n), tmp, n);
    int st = pclose(p);
    grow(&b, 1);
    if (st != 0) {
        fprintf(stderr, "mdb_dump %s failed: %s\n", dir, b.p);
        free(b.p);
        return NULL;
    }
    return (char *)b.p;
}

char *
fx_tmpdir(void)
{
    char *d = strdup("/tmp/edb-restore-test-XXXXXX");
    if (d == NULL || mkdtemp(d) == NULL)
        DIE("mkdtemp");
    return d;
}

void
fx_rmrf(const char *dir)
{
    if (dir != NULL && strncmp(dir, "/tmp/edb-", 9) == 0)
        fx_sh("chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", dir, dir);
}

static int
cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *
fx_ls(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return strdup("<cannot open>");
    char *names[256];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 256)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            names[n++] = strdup(de->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], cmpstr);
    struct buf b = { 0 };
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        memcpy(grow(&b, l + 1), names[i], l);
        b.p[b.len - 1] = '\n';
        free(names[i]);
    }
    grow(&b, 1);
    return (char *)b.p;
}

/*
 * manifest.c: edb_backup_describe(), the manifest file (write, decode, load as
 * an incremental's base) and edb_backup_manifest_write().
 *
 * Walking an archive without its pages: the header, each frame header block,
 * the trailer, the page hash table and the end block are read and decoded by
 * archive.c, and the archive hash is computed over exactly those bytes (the
 * format hashes every byte but the pages), so a complete archive's identity is
 * proved without reading a page.  A regular file is read with pread and pages
 * are skipped by moving the offset; a pipe is read through.
 *
 * Invariant: edb_backup_describe() fails only when the first block is neither
 * an archive header nor a manifest; everything after that becomes
 * `complete = 0` with the problem's detail, so an interrupted backup is
 * described, not refused.
 *
 * Thread safety: reentrant; no shared state.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "error.h"
#include "manifest.h"
#include "sys.h"
#include "sys_fs.h"

/* ---- the manifest block ---- */

/* Offsets of the manifest block (doc/backup-format.md, "Manifest"). */
enum {
    M_MAGIC = 0, M_VERSION = 8, M_BLOCK = 12, M_PSIZE = 16, M_FLAGS = 20, M_ID = 24,
    M_BASE_ID = 40, M_AHASH = 56, M_NPAGES = 72, M_TXNID = 80, M_CREATED = 88, M_FRAMES = 96,
    M_PAGES = 104, M_LENGTH = 112, M_THASH = 120, M_META = 136,
    M_RESERVED = M_META + EDB__ARCH_META_SIZE
};

bool
edb__man_is(const uint8_t block[EDB__ARCH_BLOCK])
{
    return memcmp(block, EDB__MAN_MAGIC, 8) == 0;
}

void
edb__man_encode(uint8_t block[EDB__ARCH_BLOCK], const edb__man_header *m)
{
    memset(block, 0, EDB__ARCH_BLOCK);
    memcpy(block + M_MAGIC, EDB__MAN_MAGIC, 8);
    edb__put_le32(block + M_VERSION, m->version);
    edb__put_le32(block + M_BLOCK, EDB__ARCH_BLOCK);
    edb__put_le32(block + M_PSIZE, m->page_size);
    edb__put_le32(block + M_FLAGS, m->flags);
    memcpy(block + M_ID, m->backup_id, 16);
    memcpy(block + M_BASE_ID, m->base_id, 16);
    memcpy(block + M_AHASH, m->archive_hash.b, 16);
    edb__put_le64(block + M_NPAGES, m->npages);
    edb__put_le64(block + M_TXNID, m->txnid);
    edb__put_le64(block + M_CREATED, m->created_us);
    edb__put_le64(block + M_FRAMES, m->frames);
    edb__put_le64(block + M_PAGES, m->pages);
    edb__put_le64(block + M_LENGTH, m->length);
    memcpy(block + M_THASH, m->table_hash.b, 16);
    memcpy(block + M_META, m->meta, EDB__ARCH_META_SIZE);
    edb__arch_hash bh;
    edb__arch_block_hash(&bh, block);
    memcpy(block + EDB__ARCH_HASH_OFF, bh.b, 16);
}

int
edb__man_decode(edb__man_header *out, const uint8_t block[EDB__ARCH_BLOCK], const char *name)
{
    memset(out, 0, sizeof *out);
    if (!edb__man_is(block))
        return edb__err(EDB_CORRUPT, "manifest '%s': bad magic", name);
    out->version = edb__le32(block + M_VERSION);
    if (out->version != EDB__MAN_VERSION)
        return edb__err(EDB_VERSION, "manifest '%s': format version %u (this reader knows %u)", name,
                        out->version, EDB__MAN_VERSION);
    edb__arch_hash bh;
    edb__arch_block_hash(&bh, block);
    if (memcmp(bh.b, block + EDB__ARCH_HASH_OFF, 16) != 0)
        return edb__err(EDB_CHECKSUM, "manifest '%s': block hash mismatch (the manifest was altered)",
                        name);
    for (size_t i = M_RESERVED; i < EDB__ARCH_HASH_OFF; i++)
        if (block[i] != 0)
            return edb__err(EDB_CORRUPT, "manifest '%s': non-zero reserved byte at offset %zu", name, i);
    out->page_size = edb__le32(block + M_PSIZE);
    out->flags = edb__le32(block + M_FLAGS);
    memcpy(out->backup_id, block + M_ID, 16);
    memcpy(out->base_id, block + M_BASE_ID, 16);
    memcpy(out->archive_hash.b, block + M_AHASH, 16);
    out->npages = edb__le64(block + M_NPAGES);
    out->txnid = edb__le64(block + M_TXNID);
    out->created_us = edb__le64(block + M_CREATED);
    out->frames = edb__le64(block + M_FRAMES);
    out->pages = edb__le64(block + M_PAGES);
    out->length = edb__le64(block + M_LENGTH);
    memcpy(out->table_hash.b, block + M_THASH, 16);
    memcpy(out->meta, block + M_META, EDB__ARCH_META_SIZE);
    uint32_t ps = out->page_size;
    if (edb__le32(block + M_BLOCK) != EDB__ARCH_BLOCK || ps < EDB__ARCH_PAGE_MIN ||
        ps > EDB__ARCH_PAGE_MAX || (ps & (ps - 1)) != 0)
        return edb__err(EDB_CORRUPT, "manifest '%s': bad block or page size", name);
    if (out->flags & ~(uint32_t)EDB__ARCH_F_KNOWN)
        return edb__err(EDB_CORRUPT, "manifest '%s': unknown flags 0x%x", name, out->flags);
    /* npages bounds the table a reader allocates: it must fit what the file
     * holds, which the loader checks against the file's size before reading. */
    if (out->npages < 2 || out->npages > UINT64_MAX / 2 / EDB__ARCH_TABLE_ENTRY / ps)
        return edb__err(EDB_CORRUPT, "manifest '%s': npages %llu out of range", name,
                        (unsigned long long)out->npages);
    if (edb__le32(out->meta + EDB__META_OFF_MAGIC) != EDB__META_MAGIC ||
        edb__le64(out->meta + EDB__META_OFF_LASTPG) + 1 != out->npages ||
        edb__le64(out->meta + EDB__META_OFF_TXNID) != out->txnid)
        return edb__err(EDB_CORRUPT, "manifest '%s': the meta does not match npages and txnid", name);
    return 0;
}

/* ---- reading a source block by block ---- */

typedef struct src_rd {
    int fd;
    bool seekable;
    uint64_t off;            /* bytes consumed */
    uint64_t size;           /* seekable: the file's size */
    char name[256];
} src_rd;

/* Read exactly @n bytes, or fewer at the end (*got). */
static int
rd_read(src_rd *r, void *buf, size_t n, size_t *got)
{
    int rc = r->seekable ? edb__sys_pread_full(r->fd, buf, n, (off_t)r->off, got)
                         : edb__sys_read_full(r->fd, buf, n, got);
    if (rc != 0)
        return edb__sys_err(errno, r->name);
    r->off += *got;
    return 0;
}

/* Skip @n bytes; *got is how many were there. */
static int
rd_skip(src_rd *r, uint64_t n, uint64_t *got)
{
    if (r->seekable) {
        uint64_t left = r->size > r->off ? r->size - r->off : 0;
        *got = n < left ? n : left;
        r->off += *got;
        return 0;
    }
    static const size_t chunk = 65536;
    uint8_t *buf = edb__sys_malloc(chunk);
    if (buf == NULL)
        return edb__err(EDB_NOMEM, "%s: skip buffer", r->name);
    *got = 0;
    int rc = 0;
    while (*got < n) {
        size_t want = n - *got < chunk ? (size_t)(n - *got) : chunk, g = 0;
        if ((rc = rd_read(r, buf, want, &g)) != 0 || g == 0)
            break;
        *got += g;
    }
    free(buf);
    return rc;
}

static int
rd_open(src_rd *r, const edb_backup_source *src, bool *owned)
{
    memset(r, 0, sizeof *r);
    EDB_RET(edb__source_open(src, &r->fd, owned, r->name, sizeof r->name));
    struct stat st;
    if (edb__sys_fstat(r->fd, &st) != 0) {
        int e = errno;
        if (*owned)
            edb__sys_close(r->fd);
        return edb__sys_err(e, r->name);
    }
    if (S_ISREG(st.st_mode)) {
        r->seekable = true;
        r->size = (uint64_t)st.st_size;
        /* A descriptor shared with the caller is read from its current offset. */
        if (!*owned) {
            off_t o = lseek(r->fd, 0, SEEK_CUR);
            r->off = o > 0 ? (uint64_t)o : 0;
        }
    }
    return 0;
}

/* ---- the walk ---- */

typedef struct walk {
    edb_backup_summary *sum;
    edb__arch_header h;
    edb__arch_trailer t;
    edb__arch_end e;
    edb__arch_hash *table;     /* with keep_table: npages entries */
    bool keep_table;
    edb__man_header m;         /* a manifest's block */
} walk;

/* Record why the archive is not complete; the walk stops without an error. */
static int
incomplete(walk *w, int rc)
{
    (void)rc;   /* the detail starts with the code's name */
    snprintf(w->sum->problem, sizeof w->sum->problem, "%s", edb_error_last());
    w->sum->complete = 0;
    return 0;
}

/* Everything after the header.  Returns an error only for I/O and memory;
 * a structural problem ends the walk through incomplete(). */
static int
walk_rest(walk *w, src_rd *r, edb__arch_hstate *hs, uint8_t *block)
{
    edb_backup_summary *s = w->sum;
    size_t got;
    uint64_t frames = 0, pages = 0;
    edb__arch_frame *f = edb__sys_malloc(sizeof *f);
    if (f == NULL)
        return edb__err(EDB_NOMEM, "%s: frame buffer", r->name);
    int rc = 0;
    bool v3 = w->h.version == EDB__ARCH_VERSION_Z;
    for (;;) {
        uint64_t off = r->off;
        /* Version 3: a frame header is shorter than a block; read its fixed
         * part first, and the rest of a trailer block only for a trailer. */
        size_t first = v3 ? EDB__ARCH_ZFIXED : EDB__ARCH_BLOCK;
        if ((rc = rd_read(r, block, first, &got)) != 0)
            goto out;
        if (v3 && got == first && memcmp(block, EDB__ARCH_MAGIC_ZFRAME, 4) == 0) {
            uint32_t count, method, stored;
            if ((rc = edb__arch_zframe_count(&count, block, frames, off)) != 0) {
                rc = incomplete(w, rc);
                goto out;
            }
            size_t hl = EDB__ARCH_ZHDR_SIZE(count);
            if ((rc = rd_read(r, block + first, hl - first, &got)) != 0)
                goto out;
            if (got != hl - first) {
                rc = incomplete(w, edb__err(EDB_CORRUPT, "archive '%s': ends at offset %llu inside "
                                            "frame %llu (an interrupted backup)", r->name,
                                            (unsigned long long)r->off, (unsigned long long)frames));
                goto out;
            }
            if ((rc = edb__arch_zframe_decode(f, &method, &stored, block, &w->h, frames, off)) != 0) {
                rc = incomplete(w, rc);
                goto out;
            }
            edb__arch_hstate_update(hs, block, hl);
            uint64_t skipped = 0;
            if ((rc = rd_skip(r, stored, &skipped)) != 0)
                goto out;
            if (skipped != stored) {
                rc = incomplete(w, edb__err(EDB_CORRUPT, "archive '%s': ends at offset %llu inside "
                                            "frame %llu (an interrupted backup)", r->name,
                                            (unsigned long long)r->off, (unsigned long long)frames));
                goto out;
            }
            frames++;
            pages += f->count;
            s->frames = frames;
            s->pages = pages;
            continue;
        }
        if (v3 && got == first) {
            size_t more;
            if ((rc = rd_read(r, block + first, EDB__ARCH_BLOCK - first, &more)) != 0)
                goto out;
            got += more;
        }
        if (got != EDB__ARCH_BLOCK) {
            rc = incomplete(w, edb__err(EDB_CORRUPT, "archive '%s': ends at offset %llu after %llu "
                                        "frame(s), before its trailer (an interrupted backup)",
                                        r->name, (unsigned long long)(off + got),
                                        (unsigned long long)frames));
            goto out;
        }
        edb__arch_kind k = edb__arch_block_kind(block);
        if (k == EDB__ARCH_TRAILER)
            break;
        if (k != EDB__ARCH_FRAME) {
            rc = incomplete(w, edb__err(EDB_CORRUPT, "archive '%s': expected frame or trailer at "
                                        "offset %llu", r->name, (unsigned long long)off));
            goto out;
        }
        if ((rc = edb__arch_frame_decode(f, block, &w->h, frames, off)) != 0) {
            rc = incomplete(w, rc);
            goto out;
        }
        edb__arch_hstate_update(hs, block, EDB__ARCH_BLOCK);
        uint64_t body = (uint64_t)f->count * w->h.page_size, skipped = 0;
        if ((rc = rd_skip(r, body, &skipped)) != 0)
            goto out;
        if (skipped != body) {
            rc = incomplete(w, edb__err(EDB_CORRUPT, "archive '%s': ends at offset %llu inside frame "
                                        "%llu (an interrupted backup)", r->name,
                                        (unsigned long long)r->off, (unsigned long long)frames));
            goto out;
        }
        frames++;
        pages += f->count;
        s->frames = frames;
        s->pages = pages;
    }
    uint64_t toff = r->off;
    if ((rc = edb__arch_trailer_decode(&w->t, block, &w->h, frames, pages, toff - EDB__ARCH_BLOCK)) != 0) {
        rc = incomplete(w, rc);
        goto out;
    }
    edb__arch_hstate_update(hs, block, EDB__ARCH_BLOCK);
    s->txnid = w->t.txnid;
    s->npages = w->t.npages;
    /* The table and its padding, hashed; kept when asked. */
    uint64_t tbytes = edb__arch_table_bytes(w->t.npages), done = 0;
    size_t nent = (size_t)w->t.npages;
    if (w->keep_table) {
        w->table = edb__sys_malloc(nent * sizeof *w->table);
        if (w->table == NULL) {
            rc = edb__err(EDB_NOMEM, "%s: page hash table of %zu pages", r->name, nent);
            goto out;
        }
    }
    while (done < tbytes) {
        if ((rc = rd_read(r, block, EDB__ARCH_BLOCK, &got)) != 0)
            goto out;
        if (got != EDB__ARCH_BLOCK) {
            rc = incomplete(w, edb__err(EDB_CORRUPT, "archive '%s': ends at offset %llu inside its "
                                        "page hash table (an interrupted backup)", r->name,
                                        (unsigned long long)r->off));
            goto out;
        }
        edb__arch_hstate_update(hs, block, EDB__ARCH_BLOCK);
        uint64_t first = done / EDB__ARCH_TABLE_ENTRY;
        for (size_t i = 0; i < EDB__ARCH_BLOCK / EDB__ARCH_TABLE_ENTRY; i++) {
            uint64_t p = first + i;
            const uint8_t *ent = block + i * EDB__ARCH_TABLE_ENTRY;
            if (p < nent) {
                if (w->table != NULL)
                    memcpy(w->table[p].b, ent, EDB__ARCH_TABLE_ENTRY);
            } else {
                for (size_t j = 0; j < EDB__ARCH_TABLE_ENTRY; j++)
                    if (ent[j] != 0) {
                        rc = incomplete(w, edb__err(EDB_CORRUPT, "archive '%s': non-zero padding "
                                                    "after the page hash table at offset %llu", r->name,
                                                    (unsigned long long)(r->off - EDB__ARCH_BLOCK +
                                                                         i * EDB__ARCH_TABLE_ENTRY + j)));
                        goto out;
                    }
            }
        }
        done += EDB__ARCH_BLOCK;
    }
    uint64_t eoff = r->off;
    if ((rc = rd_read(r, block, EDB__ARCH_BLOCK, &got)) != 0)
        goto out;
    if (got != EDB__ARCH_BLOCK) {
        rc = incomplete(w, edb__err(EDB_CORRUPT, "archive '%s': no end block at offset %llu (an "
                                    "interrupted backup)", r->name, (unsigned long long)eoff));
        goto out;
    }
    edb__arch_hash ah;
    edb__arch_hstate_digest(hs, &ah);
    if ((rc = edb__arch_end_decode(&w->e, block, &w->h, &ah, eoff)) != 0) {
        rc = incomplete(w, rc);
        goto out;
    }
    uint8_t extra;
    if ((rc = rd_read(r, &extra, 1, &got)) != 0)
        goto out;
    if (got != 0) {
        rc = incomplete(w, edb__err(EDB_CORRUPT, "archive '%s': bytes after the end block at offset "
                                    "%llu", r->name, (unsigned long long)(eoff + EDB__ARCH_BLOCK)));
        goto out;
    }
    s->complete = 1;
out:
    free(f);
    return rc;
}

/* Read the manifest's table (after its block) and check it. */
static int
man_table(walk *w, src_rd *r, uint8_t *block)
{
    const edb__man_header *m = &w->m;
    uint64_t tbytes = edb__arch_table_bytes(m->npages), done = 0;
    if (r->seekable && (r->size < EDB__ARCH_BLOCK || tbytes != r->size - EDB__ARCH_BLOCK))
        return edb__err(EDB_CORRUPT, "manifest '%s': %llu bytes, expected %llu for %llu pages", r->name,
                        (unsigned long long)r->size, (unsigned long long)(EDB__ARCH_BLOCK + tbytes),
                        (unsigned long long)m->npages);
    edb__arch_hstate *hs = edb__sys_aligned_alloc(64, sizeof *hs);
    if (hs == NULL)
        return edb__err(EDB_NOMEM, "manifest '%s': hash state", r->name);
    edb__arch_hstate_reset(hs);
    int rc = 0;
    size_t got, nent = (size_t)m->npages;
    /* The kept table grows with what is read: a lying npages on a pipe
     * costs no more than the bytes that really arrive. */
    size_t cap = 0;
    while (done < tbytes) {
        if ((rc = rd_read(r, block, EDB__ARCH_BLOCK, &got)) != 0)
            goto out;
        if (got != EDB__ARCH_BLOCK) {
            rc = edb__err(EDB_CORRUPT, "manifest '%s': truncated in its page hash table", r->name);
            goto out;
        }
        edb__arch_hstate_update(hs, block, EDB__ARCH_BLOCK);
        uint64_t first = done / EDB__ARCH_TABLE_ENTRY;
        size_t per = EDB__ARCH_BLOCK / EDB__ARCH_TABLE_ENTRY;
        if (w->keep_table && first < nent) {
            size_t need = first + per < nent ? (size_t)first + per : nent;
            if (need > cap) {
                size_t nc = cap ? cap * 2 : 4096;
                while (nc < need)
                    nc *= 2;
                if (nc > nent)
                    nc = nent;
                edb__arch_hash *t = edb__sys_realloc(w->table, nc * sizeof *t);
                if (t == NULL) {
                    rc = edb__err(EDB_NOMEM, "manifest '%s': page hash table", r->name);
                    goto out;
                }
                w->table = t;
                cap = nc;
            }
            memcpy(w->table + first, block, (need - first) * EDB__ARCH_TABLE_ENTRY);
        }
        done += EDB__ARCH_BLOCK;
    }
    edb__arch_hash th;
    edb__arch_hstate_digest(hs, &th);
    if (!edb__arch_hash_eq(&th, &m->table_hash)) {
        rc = edb__err(EDB_CHECKSUM, "manifest '%s': the page hash table does not match its hash "
                      "(the manifest was altered)", r->name);
        goto out;
    }
    uint8_t extra;
    if ((rc = rd_read(r, &extra, 1, &got)) != 0)
        goto out;
    if (got != 0)
        rc = edb__err(EDB_CORRUPT, "manifest '%s': bytes after its page hash table", r->name);
out:
    free(hs);
    return rc;
}

/* Walk @src: a manifest or an archive.  Fails only when the first block is
 * neither, or on I/O and memory. */
static int
walk_source(walk *w, const edb_backup_source *src)
{
    edb_backup_summary *s = w->sum;
    src_rd r;
    bool owned = false;
    EDB_RET(rd_open(&r, src, &owned));
    int ret = 0;
    size_t got;
    uint8_t *block = edb__sys_aligned_alloc(64, EDB__ARCH_BLOCK);
    edb__arch_hstate *hs = edb__sys_aligned_alloc(64, sizeof *hs);
    if (block == NULL || hs == NULL)
        EDB_ERR(edb__err(EDB_NOMEM, "%s: buffers", r.name));
    EDB_ERR(rd_read(&r, block, EDB__ARCH_BLOCK, &got));
    if (got != EDB__ARCH_BLOCK)
        EDB_ERR(edb__err(EDB_CORRUPT, "'%s': %zu bytes, not an archive or a manifest", r.name, got));
    if (edb__man_is(block)) {
        EDB_ERR(edb__man_decode(&w->m, block, r.name));
        s->manifest = 1;
        EDB_ERR(man_table(w, &r, block));
        s->complete = 1;
        memcpy(s->backup_id, w->m.backup_id, 16);
        memcpy(s->base_id, w->m.base_id, 16);
        s->flags = w->m.flags;
        s->page_size = w->m.page_size;
        s->txnid = w->m.txnid;
        s->npages = w->m.npages;
        s->pages = w->m.pages;
        s->frames = w->m.frames;
        s->bytes = w->m.length;
        s->created_us = w->m.created_us;
        goto err;       /* done */
    }
    if (edb__arch_block_kind(block) != EDB__ARCH_HEADER)
        EDB_ERR(edb__err(EDB_CORRUPT, "'%s' is neither an edb archive nor a manifest (bad magic)",
                         r.name));
    EDB_ERR(edb__arch_header_decode(&w->h, block, 0));
    memcpy(s->backup_id, w->h.backup_id, 16);
    memcpy(s->base_id, w->h.base_id, 16);
    s->flags = w->h.flags;
    s->page_size = w->h.page_size;
    s->compress = w->h.codec == EDB__ARCH_CODEC_ZSTD ? EDB_BACKUP_COMPRESS_ZSTD : EDB_BACKUP_COMPRESS_NONE;
    s->compress_level = (int)w->h.codec_level;
    s->encrypted = w->h.cipher != EDB__ARCH_CIPHER_NONE;
    memcpy(s->key_id, w->h.key_id, sizeof s->key_id);
    s->txnid = w->h.start_txnid;
    s->npages = w->h.start_npages;
    s->created_us = w->h.created_us;
    edb__arch_hstate_reset(hs);
    edb__arch_hstate_update(hs, block, EDB__ARCH_BLOCK);
    ret = walk_rest(w, &r, hs, block);
    s->bytes = r.off;
err:
    free(block);
    free(hs);
    if (owned)
        edb__sys_close(r.fd);
    return ret;
}

int
edb_backup_describe(edb_backup_summary *out, const edb_backup_source *src)
{
    if (out == NULL || src == NULL)
        return edb__err(EDB_INVAL, "edb_backup_describe: NULL argument");
    memset(out, 0, sizeof *out);
    walk w;
    memset(&w, 0, sizeof w);
    w.sum = out;
    int rc = walk_source(&w, src);
    free(w.table);
    if (rc < 0)
        memset(out, 0, sizeof *out);
    else
        edb__err_clear();
    return rc;
}

/* ---- loading a manifest as a base ---- */

int
edb__man_load_base(edb__base *out, int fd, const char *path)
{
    memset(out, 0, sizeof *out);
    edb_backup_source src = { .path = NULL, .fd = fd, .name = path };
    edb_backup_summary sum;
    memset(&sum, 0, sizeof sum);
    walk w;
    memset(&w, 0, sizeof w);
    w.sum = &sum;
    w.keep_table = true;
    int rc = walk_source(&w, &src);
    if (rc == 0 && !sum.manifest)
        rc = edb__err(EDB_CORRUPT, "'%s' is not a manifest", path);
    if (rc == 0 && w.table == NULL)
        rc = edb__err(EDB_CORRUPT, "manifest '%s': no page hash table", path);
    uint8_t *scratch = NULL;
    if (rc == 0 && (scratch = edb__sys_malloc(w.m.page_size)) == NULL)
        rc = edb__err(EDB_NOMEM, "manifest '%s': page buffer", path);
    for (uint64_t p = 0; rc == 0 && p < 2; p++) {
        edb__arch_hash mh;
        edb__arch_meta_hash(&mh, scratch, w.m.page_size, w.m.meta, p);
        if (!edb__arch_hash_eq(&mh, &w.table[p]))
            rc = edb__err(EDB_CHECKSUM, "manifest '%s': page hash table entry %llu is not the hash of "
                          "the meta", path, (unsigned long long)p);
    }
    free(scratch);
    if (rc < 0) {
        free(w.table);
        return rc;
    }
    memcpy(out->backup_id, w.m.backup_id, 16);
    out->archive_hash = w.m.archive_hash;
    out->page_size = w.m.page_size;
    out->flags = w.m.flags;
    out->npages = w.m.npages;
    out->txnid = w.m.txnid;
    out->length = w.m.length;
    out->table = w.table;
    return 0;
}

/* ---- atomic output files ---- */

int
edb__atomic_open(edb__atomic *a, const char *path, unsigned flags)
{
    memset(a, 0, sizeof *a);
    a->fd = -1;
    a->flags = flags;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (*base == '\0' || strlen(path) >= sizeof a->path)
        return edb__err(EDB_INVAL, "'%s' names no file", path);
    snprintf(a->path, sizeof a->path, "%s", path);
    if (slash == NULL)
        snprintf(a->dir, sizeof a->dir, ".");
    else if (slash == path)
        snprintf(a->dir, sizeof a->dir, "/");
    else
        snprintf(a->dir, sizeof a->dir, "%.*s", (int)(slash - path), path);
    struct stat st;
    if (edb__sys_fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!(flags & EDB_SAVE_OVERWRITE))
            return edb__err(EDB_EXISTS, "'%s' exists", path);
        if (!S_ISREG(st.st_mode))
            return edb__err(EDB_EXISTS, "'%s' exists and is not a regular file", path);
    } else if (errno != ENOENT) {
        return edb__sys_err(errno, path);
    }
    for (int attempt = 0; attempt < 16 && a->fd < 0; attempt++) {
        uint8_t rnd[6];
        if (edb__sys_random(rnd, sizeof rnd) != 0)
            return edb__sys_err(errno, "random name");
        char hex[13];
        edb__arch_hex(hex, rnd, sizeof rnd);
        snprintf(a->tmp, sizeof a->tmp, "%s/.%s.tmp.%s", a->dir, base, hex);
        a->fd = edb__sys_open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (a->fd < 0 && errno != EEXIST) {
            int e = errno;
            a->tmp[0] = '\0';
            return edb__sys_err(e, path);
        }
    }
    if (a->fd < 0) {
        a->tmp[0] = '\0';
        return edb__err(EDB_EXISTS, "no free temporary name beside '%s'", path);
    }
    if (edb__sys_fchmod(a->fd, 0600) != 0) {
        int e = errno;
        edb__atomic_abort(a);
        return edb__sys_err(e, path);
    }
    return 0;
}

int
edb__atomic_commit(edb__atomic *a)
{
    int ret = 0;
    if (edb__sys_fsync(a->fd) != 0)
        EDB_ERR(edb__sys_err(errno, a->path));
    int cfd = a->fd;
    a->fd = -1;
    if (edb__sys_close(cfd) != 0)
        EDB_ERR(edb__sys_err(errno, a->path));
    if (!(a->flags & EDB_SAVE_OVERWRITE)) {
        if (edb__sys_renameat2(AT_FDCWD, a->tmp, AT_FDCWD, a->path, RENAME_NOREPLACE) != 0) {
            if (errno == EEXIST)
                EDB_ERR(edb__err(EDB_EXISTS, "'%s' appeared meanwhile", a->path));
            if (errno != EINVAL && errno != ENOSYS)
                EDB_ERR(edb__sys_err(errno, a->path));
            if (edb__sys_rename(a->tmp, a->path) != 0)
                EDB_ERR(edb__sys_err(errno, a->path));
        }
    } else if (edb__sys_rename(a->tmp, a->path) != 0) {
        EDB_ERR(edb__sys_err(errno, a->path));
    }
    a->tmp[0] = '\0';
    /* After the rename only the directory's fsync can fail: the name may not
     * be durable, and an error must not leave a complete-looking file. */
    int dfd = edb__sys_open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dfd < 0 || edb__sys_fsync(dfd) != 0) {
        int e = errno;
        if (dfd >= 0)
            edb__sys_close(dfd);
        (void)unlink(a->path);    /* cleanup: not a fault site */
        return edb__sys_err(e, "the directory of the new file");
    }
    edb__sys_close(dfd);
    return 0;
err:
    edb__atomic_abort(a);
    return ret;
}

void
edb__atomic_abort(edb__atomic *a)
{
    if (a->fd >= 0)
        edb__sys_close(a->fd);
    a->fd = -1;
    if (a->tmp[0] != '\0')
        (void)unlink(a->tmp);     /* cleanup: not a fault site */
    a->tmp[0] = '\0';
}

/* ---- writing a manifest ---- */

static int
write_atomic(const char *path, const uint8_t *head, size_t hlen, const void *body, size_t blen,
             const uint8_t *pad, size_t plen, unsigned flags)
{
    edb__atomic a;
    EDB_RET(edb__atomic_open(&a, path, flags));
    if (edb__sys_write_all(a.fd, head, hlen) != 0 || edb__sys_write_all(a.fd, body, blen) != 0 ||
        edb__sys_write_all(a.fd, pad, plen) != 0) {
        int e = errno;
        edb__atomic_abort(&a);
        return edb__sys_err(e, path);
    }
    return edb__atomic_commit(&a);
}

int
edb_backup_manifest_write(const edb_backup_source *archive, const char *path, unsigned flags)
{
    if (archive == NULL || path == NULL || *path == '\0')
        return edb__err(EDB_INVAL, "edb_backup_manifest_write: NULL argument");
    if (flags & ~(unsigned)EDB_SAVE_OVERWRITE)
        return edb__err(EDB_INVAL, "edb_backup_manifest_write: unknown flags 0x%x", flags);
    edb_backup_summary sum;
    memset(&sum, 0, sizeof sum);
    walk w;
    memset(&w, 0, sizeof w);
    w.sum = &sum;
    w.keep_table = true;
    int ret = walk_source(&w, archive);
    if (ret < 0)
        goto out;
    if (sum.manifest) {
        ret = edb__err(EDB_INVAL, "'%s' is a manifest, not an archive", path);
        goto out;
    }
    if (!sum.complete) {
        ret = edb__err(EDB_CORRUPT, "no manifest written: the archive is not complete: %s", sum.problem);
        goto out;
    }
    edb__man_header m;
    memset(&m, 0, sizeof m);
    m.version = EDB__MAN_VERSION;
    m.page_size = w.h.page_size;
    m.flags = w.h.flags;
    memcpy(m.backup_id, w.h.backup_id, 16);
    memcpy(m.base_id, w.h.base_id, 16);
    m.archive_hash = w.e.archive_hash;
    m.npages = w.t.npages;
    m.txnid = w.t.txnid;
    m.created_us = w.h.created_us;
    m.frames = sum.frames;
    m.pages = sum.pages;
    m.length = sum.bytes;
    memcpy(m.meta, w.t.meta, EDB__ARCH_META_SIZE);
    size_t tb = (size_t)m.npages * EDB__ARCH_TABLE_ENTRY;
    size_t pad = (size_t)(edb__arch_table_bytes(m.npages) - tb);
    static const uint8_t zeros[EDB__ARCH_BLOCK];
    edb__arch_hstate *hs = edb__sys_aligned_alloc(64, sizeof *hs);
    if (hs == NULL) {
        ret = edb__err(EDB_NOMEM, "manifest: hash state");
        goto out;
    }
    edb__arch_hstate_reset(hs);
    edb__arch_hstate_update(hs, w.table, tb);
    edb__arch_hstate_update(hs, zeros, pad);
    edb__arch_hstate_digest(hs, &m.table_hash);
    free(hs);
    uint8_t block[EDB__ARCH_BLOCK];
    edb__man_encode(block, &m);
    ret = write_atomic(path, block, sizeof block, w.table, tb, zeros, pad, flags);
out:
    free(w.table);
    if (ret == 0)
        edb__err_clear();
    return ret;
}

/*
 * merge.c: edb_backup_merge(): a chain (a full archive and its incrementals)
 * into one synthetic full archive that restores exactly what the chain
 * restores, without restoring it.
 *
 * Pass 1 walks every archive's blocks (header, frame header blocks with
 * seeks over the pages, trailer, page hash table, end block), checks them
 * with archive.c, recomputes each archive hash and checks each link of the
 * chain as restore does (chain.c).  It records, per archive, where each
 * carried page is (pgno, file offset).
 *
 * The restored page p (doc/backup-format.md, "Restore semantics") comes from
 * the last archive that carries it, scanning back from the last archive and
 * stopping at the first archive j with p >= j's base_npages (the restore of
 * j's base ended before p, so p is zero unless j or a later archive carries
 * it).  Pass 2 resolves that for every page below the final npages into one
 * location per page, then writes the new archive in page order: every page
 * read is hashed with its page number and must equal the last archive's page
 * hash table (which restore also proves the restored file against), and every
 * page not carried must have the zero-page hash there.  So the merged archive
 * restores, byte for byte, what restoring the chain gives.
 *
 * The merged archive is a full archive (no flags) of the chain's final
 * snapshot: its trailer (npages, txnid, pin_us, meta) and page hash table are
 * the last archive's, its created_us the last archive's (the snapshot's
 * time), its backup_id new.  It is written through edb__atomic (temporary
 * file, fsync, rename, directory fsync).
 *
 * Memory: 24 bytes per carried page of the chain, plus 16 bytes per page of
 * the final snapshot (its table) and 12 per page for the locations; for a
 * compressed (version 3) archive of the chain, two frame buffers.
 *
 * Compression: pages of version-3 archives are read by decompressing their
 * frame (the last one is kept); the merged archive is compressed with the
 * codec and level of the last archive of the chain when that one is.
 *
 * Thread safety: reentrant.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "codec.h"
#include "error.h"
#include "manifest.h"
#include "sys.h"
#include "sys_fs.h"

typedef struct mloc {
    uint64_t pgno;
    uint64_t off;            /* the page's offset in its archive; version 3: its frame's payload */
    uint32_t stored;         /* version 3: the payload's length */
    uint16_t idx;            /* version 3: the page's place in its frame */
    uint8_t method;          /* version 3: EDB__ARCH_ZM_* */
    uint8_t count;           /* version 3: pages in its frame (<= 168) */
} mloc;

typedef struct march {
    int fd;
    bool owned;
    char name[256];
    uint64_t size;
    edb__arch_header h;
    edb__arch_trailer t;
    edb__arch_hash archive_hash;
    mloc *locs;              /* carried pages in archive order */
    size_t nlocs, cap;
    edb__arch_hash *table;   /* the last archive only */
    uint8_t *zpages;         /* version 3: the last frame decompressed (zkey: its payload offset) */
    uint8_t *zin;
    uint8_t *din;            /* encrypted: the frame's header and sealed payload */
    uint64_t zkey;
    const uint8_t *key;      /* encrypted: its key (the source's) */
} march;

static int
named(int rc, size_t idx, const char *name)
{
    if (rc >= 0)
        return rc;
    char old[512];
    snprintf(old, sizeof old, "%s", edb_error_last_message());
    return edb__err(rc, "archive %zu '%s': %s", idx + 1, name, old);
}

static int
rd_block(march *a, uint8_t *block, uint64_t off, const char *what)
{
    size_t got;
    if (edb__sys_pread_full(a->fd, block, EDB__ARCH_BLOCK, (off_t)off, &got) != 0)
        return edb__sys_err(errno, a->name);
    if (got != EDB__ARCH_BLOCK)
        return edb__err(EDB_CORRUPT, "truncated in the %s at offset %llu (an interrupted backup?)",
                        what, (unsigned long long)off);
    return 0;
}

static int
locs_room(march *a, uint32_t count)
{
    if (count <= a->cap - a->nlocs)
        return 0;
    size_t nc = a->cap ? a->cap * 2 : 1024;
    while (nc - a->nlocs < count)
        nc *= 2;
    mloc *l = edb__sys_realloc(a->locs, nc * sizeof *l);
    if (l == NULL)
        return edb__err(EDB_NOMEM, "page locations");
    a->locs = l;
    a->cap = nc;
    return 0;
}

/* Pass 1 for one archive. */
static int
walk(march *a, bool keep_table, uint8_t *block, edb__arch_frame *f, edb__arch_hstate *hs)
{
    struct stat st;
    if (edb__sys_fstat(a->fd, &st) != 0)
        return edb__sys_err(errno, a->name);
    if (!S_ISREG(st.st_mode))
        return edb__err(EDB_INVAL, "not a regular file (merge reads archives by offset)");
    a->size = (uint64_t)st.st_size;
    EDB_RET(rd_block(a, block, 0, "header"));
    EDB_RET(edb__arch_header_decode(&a->h, block, 0));
    if (a->h.cipher != EDB__ARCH_CIPHER_NONE) {
        char hid[33];
        edb__arch_hex(hid, a->h.key_id, 16);
        if (a->key == NULL)
            return edb__err(EDB_AUTH, "the archive is encrypted (key id %s): its key is needed", hid);
        uint8_t id[EDB__KEY_ID_BYTES];
        EDB_RET(edb__key_id(id, a->key));
        if (memcmp(id, a->h.key_id, sizeof id) != 0)
            return edb__err(EDB_AUTH, "the archive is encrypted with key id %s, not with the key "
                            "given (a wrong key)", hid);
    }
    edb__arch_hstate_reset(hs);
    edb__arch_hstate_update(hs, block, EDB__ARCH_BLOCK);
    uint64_t off = EDB__ARCH_BLOCK, frames = 0, pages = 0;
    for (;;) {
        EDB_RET(rd_block(a, block, off, "frame or trailer"));
        edb__arch_kind k = edb__arch_block_kind(block);
        if (k == EDB__ARCH_TRAILER)
            break;
        if (a->h.version == EDB__ARCH_VERSION_Z) {
            /* Version 3: the frame header (at most 4080 bytes) is in the block. */
            uint32_t method, stored;
            EDB_RET(edb__arch_zframe_decode(f, &method, &stored, block, &a->h, frames, off));
            size_t hl = EDB__ARCH_ZHDR_SIZE(f->count);
            edb__arch_hstate_update(hs, block, hl);
            if (off > a->size || hl + (uint64_t)stored > a->size - off)
                return edb__err(EDB_CORRUPT, "frame %llu at offset %llu runs past the end of the file "
                                "(an interrupted backup?)", (unsigned long long)frames,
                                (unsigned long long)off);
            EDB_RET(locs_room(a, f->count));
            for (uint32_t i = 0; i < f->count; i++) {
                mloc *l = &a->locs[a->nlocs++];
                l->pgno = f->entries[i].pgno;
                l->off = off + hl;
                l->stored = stored;
                l->idx = (uint16_t)i;
                l->method = (uint8_t)method;
                l->count = (uint8_t)f->count;
            }
            off += hl + stored;
            frames++;
            pages += f->count;
            continue;
        }
        if (k != EDB__ARCH_FRAME)
            return edb__err(EDB_CORRUPT, "expected frame or trailer at offset %llu",
                            (unsigned long long)off);
        EDB_RET(edb__arch_frame_decode(f, block, &a->h, frames, off));
        edb__arch_hstate_update(hs, block, EDB__ARCH_BLOCK);
        uint64_t body = (uint64_t)f->count * a->h.page_size;
        if (off > a->size || body > a->size - off - EDB__ARCH_BLOCK)
            return edb__err(EDB_CORRUPT, "frame %llu at offset %llu runs past the end of the file "
                            "(an interrupted backup?)", (unsigned long long)frames,
                            (unsigned long long)off);
        EDB_RET(locs_room(a, f->count));
        for (uint32_t i = 0; i < f->count; i++) {
            memset(&a->locs[a->nlocs], 0, sizeof a->locs[a->nlocs]);
            a->locs[a->nlocs].pgno = f->entries[i].pgno;
            a->locs[a->nlocs].off = off + EDB__ARCH_BLOCK + (uint64_t)i * a->h.page_size;
            a->nlocs++;
        }
        off += EDB__ARCH_BLOCK + body;
        frames++;
        pages += f->count;
    }
    EDB_RET(edb__arch_trailer_decode(&a->t, block, &a->h, frames, pages, off));
    edb__arch_hstate_update(hs, block, EDB__ARCH_BLOCK);
    off += EDB__ARCH_BLOCK;
    uint64_t tbytes = edb__arch_table_bytes(a->t.npages);
    if (off > a->size || tbytes > a->size - off || a->size - off - tbytes != EDB__ARCH_BLOCK)
        return edb__err(EDB_CORRUPT, "the page hash table of %llu pages at offset %llu does not end "
                        "at the end block (a truncated or extended archive)",
                        (unsigned long long)a->t.npages, (unsigned long long)off);
    if (keep_table) {
        a->table = edb__sys_malloc((size_t)tbytes ? (size_t)tbytes : 1);
        if (a->table == NULL)
            return edb__err(EDB_NOMEM, "page hash table of %llu pages", (unsigned long long)a->t.npages);
    }
    for (uint64_t done = 0; done < tbytes; done += EDB__ARCH_BLOCK) {
        EDB_RET(rd_block(a, block, off + done, "page hash table"));
        edb__arch_hstate_update(hs, block, EDB__ARCH_BLOCK);
        if (keep_table)
            memcpy((uint8_t *)a->table + done, block, EDB__ARCH_BLOCK);
    }
    off += tbytes;
    edb__arch_hstate_digest(hs, &a->archive_hash);
    EDB_RET(rd_block(a, block, off, "end block"));
    edb__arch_end e;
    EDB_RET(edb__arch_end_decode(&e, block, &a->h, &a->archive_hash, off));
    return 0;
}

/* ---- writing ---- */

typedef struct mout {
    edb__atomic at;
    edb__arch_hstate *hs;
    uint64_t length;
} mout;

static int
put(mout *o, const void *p, size_t n, bool hashed)
{
    if (edb__sys_write_all(o->at.fd, p, n) != 0)
        return edb__sys_err(errno, o->at.path);
    if (hashed)
        edb__arch_hstate_update(o->hs, p, n);
    o->length += n;
    return 0;
}

/* The bytes of the page at @l in archive @a into @dst.  A compressed frame
 * is decompressed once into a->zpages and kept while its pages are asked
 * for (pages go in page order, and so do the frames of an archive). */
static int
read_page(march *a, const mloc *l, uint8_t *dst, uint32_t psize, edb__codec *codec)
{
    size_t got;
    if (a->h.cipher != EDB__ARCH_CIPHER_NONE || l->method == EDB__ARCH_ZM_ZSTD) {
        size_t raw = (size_t)l->count * psize;
        if (a->zkey != l->off + 1) {
            if (a->zpages == NULL) {
                size_t cap = (size_t)EDB__ARCH_FRAME_MAX * psize + EDB__ARCH_BLOCK + EDB__ARCH_SEAL;
                a->zpages = edb__sys_malloc((size_t)EDB__ARCH_FRAME_MAX * psize);
                a->zin = edb__sys_malloc(cap);
                a->din = edb__sys_malloc(cap);
                if (a->zpages == NULL || a->zin == NULL || a->din == NULL)
                    return edb__err(EDB_NOMEM, "merge: frame buffers");
            }
            a->zkey = 0;
            char what[320];
            snprintf(what, sizeof what, "archive '%s': the frame whose payload is at offset %llu",
                     a->name, (unsigned long long)l->off);
            /* stored <= count * page_size (+ the seal): checked by the
             * frame's decoder.  Encrypted: the header too (the seal's
             * additional data). */
            size_t hl = EDB__ARCH_ZHDR_SIZE(l->count);
            bool sealed = a->h.cipher != EDB__ARCH_CIPHER_NONE;
            uint64_t from = sealed ? l->off - hl : l->off;
            size_t len = (sealed ? hl : 0) + l->stored;
            if (edb__sys_pread_full(a->fd, a->zin, len, (off_t)from, &got) != 0)
                return edb__sys_err(errno, a->name);
            if (got != len)
                return edb__err(EDB_CORRUPT, "archive '%s': truncated in the frame at offset %llu",
                                a->name, (unsigned long long)l->off);
            const uint8_t *pl = a->zin;
            size_t plen = l->stored;
            if (sealed) {
                EDB_RET(edb__unseal(a->din, a->zin + hl, l->stored, a->zin, hl - 16, a->key, what));
                pl = a->din;
                plen = l->stored - EDB__ARCH_SEAL;
            }
            int rc = 0;
            if (l->method == EDB__ARCH_ZM_ZSTD)
                rc = edb__codec_decompress(codec, a->zpages, raw, pl, plen, what);
            else
                memcpy(a->zpages, pl, raw);     /* stored: plen == raw */
            if (rc != 0)
                return rc == EDB_CORRUPT ? edb__err(EDB_CHECKSUM, "%s (page %llu is lost)",
                                                    edb_error_last_message(),
                                                    (unsigned long long)l->pgno)
                                         : rc;
            a->zkey = l->off + 1;
        }
        memcpy(dst, a->zpages + (size_t)l->idx * psize, psize);
        return 0;
    }
    uint64_t off = l->off + (uint64_t)l->idx * psize;      /* idx 0 in version 2 */
    if (edb__sys_pread_full(a->fd, dst, psize, (off_t)off, &got) != 0)
        return edb__sys_err(errno, a->name);
    if (got != psize)
        return edb__err(EDB_CORRUPT, "archive '%s': truncated at page %llu", a->name,
                        (unsigned long long)l->pgno);
    return 0;
}

/* Pass 2: resolve, check and write. */
static int
write_merged(march *a, size_t n, const char *path, unsigned flags, edb_backup_info *info)
{
    march *last = &a[n - 1];
    uint64_t npages = last->t.npages;
    uint32_t psize = last->h.page_size;
    unsigned fmax = edb__arch_frame_edb(psize);
    int ret = 0;
    /* loc[p]: archive index + 1 (0: not carried) and the location index. */
    uint32_t *which = edb__sys_calloc((size_t)npages, sizeof *which);
    uint64_t *where = edb__sys_calloc((size_t)npages, sizeof *where);
    uint8_t *frame_pages = edb__sys_aligned_alloc(4096, (size_t)fmax * psize);
    uint8_t *zero = edb__sys_calloc(1, psize);
    uint8_t *block = edb__sys_aligned_alloc(64, EDB__ARCH_BLOCK);
    edb__arch_frame *f = edb__sys_malloc(sizeof *f);
    uint8_t *zbuf = NULL, *ebuf = NULL;
    size_t zcap = 0;
    edb__codec codec = { NULL, NULL };
    mout o;
    memset(&o, 0, sizeof o);
    o.at.fd = -1;
    o.hs = edb__sys_aligned_alloc(64, sizeof *o.hs);
    if (which == NULL || where == NULL || frame_pages == NULL || zero == NULL || block == NULL ||
        f == NULL || o.hs == NULL)
        EDB_ERR(edb__err(EDB_NOMEM, "merge: buffers for %llu pages", (unsigned long long)npages));
    for (size_t j = 0; j < n; j++) {
        if (j > 0) {
            /* Pages at or past the base's end were cut by this archive's restore. */
            for (uint64_t p = a[j].h.base_npages; p < npages; p++)
                which[p] = 0;
        }
        for (size_t i = 0; i < a[j].nlocs; i++) {
            uint64_t p = a[j].locs[i].pgno;
            if (p >= npages)
                continue;
            which[p] = (uint32_t)j + 1;
            where[p] = i;
        }
        /* Everything past this archive's npages is cut too. */
        for (uint64_t p = a[j].t.npages; p < npages; p++)
            which[p] = 0;
    }

    EDB_ERR(edb__atomic_open(&o.at, path, flags));
    edb__arch_hstate_reset(o.hs);
    edb__arch_header h;
    memset(&h, 0, sizeof h);
    h.version = EDB__ARCH_VERSION;
    h.block_size = EDB__ARCH_BLOCK;
    h.page_size = psize;
    h.flags = 0;
    if (edb__sys_random(h.backup_id, sizeof h.backup_id) != 0)
        EDB_ERR(edb__sys_err(errno, "merge: a new backup id"));
    h.start_txnid = last->t.txnid;
    h.start_npages = npages;
    h.max_pages = last->h.max_pages;
    h.created_us = last->h.created_us;
    if (last->h.version == EDB__ARCH_VERSION_Z) {
        /* The merged archive keeps the last archive's compression and
         * encryption (with its key). */
        h.version = EDB__ARCH_VERSION_Z;
        h.codec = last->h.codec;
        h.codec_level = last->h.codec_level;
        h.cipher = last->h.cipher;
        memcpy(h.key_id, last->h.key_id, 16);
        zcap = edb__codec_bound((size_t)fmax * psize);
        zbuf = edb__sys_malloc(zcap);
        ebuf = edb__sys_malloc((size_t)fmax * psize + EDB__ARCH_SEAL);
        if (zbuf == NULL || ebuf == NULL)
            EDB_ERR(edb__err(EDB_NOMEM, "merge: compression buffer"));
    }
    edb__arch_header_encode(block, &h);
    EDB_ERR(put(&o, block, EDB__ARCH_BLOCK, true));

    uint64_t frames = 0, pages = 0;
    edb__arch_hash hz;
    for (uint64_t p = 2; p < npages;) {
        f->count = 0;
        f->seq = frames;
        for (; p < npages && f->count < fmax; p++) {
            if (which[p] == 0) {
                edb__arch_zero_hash(&hz, psize, p);
                if (!edb__arch_hash_eq(&hz, &last->table[p]))
                    EDB_ERR(edb__err(EDB_CHECKSUM, "merge: page %llu is carried by no archive of the "
                                     "chain, but the last archive's page hash table says it is not "
                                     "zero", (unsigned long long)p));
                continue;
            }
            march *src = &a[which[p] - 1];
            const mloc *l = &src->locs[where[p]];
            uint8_t *dst = frame_pages + (size_t)f->count * psize;
            EDB_ERR(read_page(src, l, dst, psize, &codec));
            edb__arch_hash ph;
            edb__arch_page_hash(&ph, dst, psize, p);
            if (!edb__arch_hash_eq(&ph, &last->table[p]))
                EDB_ERR(edb__err(EDB_CHECKSUM, "archive '%s': page %llu (at offset %llu%s) does not "
                                 "match the page hash table of the last archive '%s' (a damaged page)",
                                 src->name, (unsigned long long)p,
                                 (unsigned long long)(l->method == EDB__ARCH_ZM_ZSTD
                                                          ? l->off : l->off + (uint64_t)l->idx * psize),
                                 l->method == EDB__ARCH_ZM_ZSTD ? ", in a compressed frame" : "",
                                 last->name));
            f->entries[f->count].pgno = p;
            f->entries[f->count].hash = ph;
            f->count++;
        }
        if (f->count == 0)
            continue;
        if (zbuf != NULL) {
            size_t raw = (size_t)f->count * psize, z = 0, hl = EDB__ARCH_ZHDR_SIZE(f->count);
            if (h.codec != EDB__ARCH_CODEC_NONE)
                EDB_ERR(edb__codec_compress(&z, &codec, zbuf, zcap, frame_pages, raw, (int)h.codec_level));
            const uint8_t *pl = z ? zbuf : frame_pages;
            size_t plen = z ? z : raw, seal = h.cipher != EDB__ARCH_CIPHER_NONE ? EDB__ARCH_SEAL : 0;
            edb__arch_zframe_encode(block, f, z ? EDB__ARCH_ZM_ZSTD : EDB__ARCH_ZM_STORED,
                                    (uint32_t)(plen + seal));
            if (seal) {
                EDB_ERR(edb__seal(ebuf, pl, plen, block, hl - 16, last->key));
                pl = ebuf;
                plen += seal;
            }
            EDB_ERR(put(&o, block, hl, true));
            EDB_ERR(put(&o, pl, plen, false));
        } else {
            edb__arch_frame_encode(block, f);
            EDB_ERR(put(&o, block, EDB__ARCH_BLOCK, true));
            EDB_ERR(put(&o, frame_pages, (size_t)f->count * psize, false));
        }
        frames++;
        pages += f->count;
    }
    edb__arch_trailer t = last->t;
    t.frames = frames;
    t.pages = pages;
    edb__arch_trailer_encode(block, &t);
    EDB_ERR(put(&o, block, EDB__ARCH_BLOCK, true));
    uint64_t tbytes = edb__arch_table_bytes(npages);
    EDB_ERR(put(&o, last->table, (size_t)tbytes, true));
    edb__arch_end e;
    memset(&e, 0, sizeof e);
    e.length = o.length + EDB__ARCH_BLOCK;
    memcpy(e.backup_id, h.backup_id, 16);
    edb__arch_hstate_digest(o.hs, &e.archive_hash);
    edb__arch_end_encode(block, &e);
    EDB_ERR(put(&o, block, EDB__ARCH_BLOCK, false));
    EDB_ERR(edb__atomic_commit(&o.at));
    if (info != NULL) {
        memset(info, 0, sizeof *info);
        info->archives = n;
        info->page_size = psize;
        info->npages = npages;
        info->txnid = t.txnid;
        info->frames = frames;
        info->pages = pages;
        info->bytes = o.length;
        info->created_us = h.created_us;
        memcpy(info->backup_id, h.backup_id, 16);
    }
err:
    if (ret < 0)
        edb__atomic_abort(&o.at);
    free(which);
    free(where);
    free(frame_pages);
    free(zbuf);
    free(ebuf);
    edb__codec_free(&codec);
    free(zero);
    free(block);
    free(f);
    free(o.hs);
    return ret;
}

int
edb_backup_merge(edb_backup_info *out, const char *path, const edb_backup_source *src, size_t n,
                 unsigned flags)
{
    if (path == NULL || *path == '\0' || src == NULL || n == 0)
        return edb__err(EDB_INVAL, "edb_backup_merge: no output path or no archives");
    if (flags & ~(unsigned)EDB_SAVE_OVERWRITE)
        return edb__err(EDB_INVAL, "edb_backup_merge: unknown flags 0x%x", flags);
    march *a = edb__sys_calloc(n, sizeof *a);
    edb__link *links = edb__sys_calloc(n, sizeof *links);
    uint8_t *block = edb__sys_aligned_alloc(64, EDB__ARCH_BLOCK);
    edb__arch_frame *f = edb__sys_malloc(sizeof *f);
    edb__arch_hstate *hs = edb__sys_aligned_alloc(64, sizeof *hs);
    int ret = 0;
    size_t opened = 0;
    if (a == NULL || links == NULL || block == NULL || f == NULL || hs == NULL)
        EDB_ERR(edb__err(EDB_NOMEM, "edb_backup_merge: %zu archives", n));
    for (size_t i = 0; i < n; i++) {
        EDB_ERR(edb__source_open(&src[i], &a[i].fd, &a[i].owned, a[i].name, sizeof a[i].name));
        a[i].key = src[i].key;
        opened = i + 1;
        EDB_ERR(named(walk(&a[i], i + 1 == n, block, f, hs), i, a[i].name));
        EDB_ERR(edb__chain_check(links, i, &a[i].h, a[i].name, true));
        memcpy(links[i].backup_id, a[i].h.backup_id, 16);
        links[i].archive_hash = a[i].archive_hash;
        links[i].npages = a[i].t.npages;
        links[i].page_size = a[i].h.page_size;
        snprintf(links[i].name, sizeof links[i].name, "%s", a[i].name);
    }
    EDB_ERR(write_merged(a, n, path, flags, out));
    edb__err_clear();
err:
    for (size_t i = 0; i < opened; i++) {
        if (a[i].owned)
            edb__sys_close(a[i].fd);
        free(a[i].locs);
        free(a[i].table);
        free(a[i].zpages);
        free(a[i].zin);
        free(a[i].din);
    }
    free(a);
    free(links);
    free(block);
    free(f);
    free(hs);
    return ret;
}

/*
 * base.c: load the base of an incremental backup from an archive file.
 *
 * An incremental archive needs four things from its base: the base's
 * backup_id and archive hash (the new header's base_id and base_hash, which
 * restore checks link by link), its npages (pages at or past it are new), and
 * its page hash table (a page whose hash equals the base's entry is not
 * emitted).  All of them sit in the header, the trailer, the table and the end
 * block, so the loader walks the frame header blocks from the start, seeking
 * over the pages (one 4 KiB read per frame of up to 64 pages), then reads the
 * trailer, the table and the end block.
 *
 * What it proves: every block it reads passes archive.c's decoder (block
 * hashes, magics, ranges, reserved bytes, consecutive frame seq, trailer
 * counts equal to the frames walked, the end block's length and backup id);
 * the file ends exactly after the end block; the table's padding is zero; the
 * table's entries for the meta pages are the hashes of the trailer's meta; and
 * the table entry of every page a frame carries equals the entry of the last
 * frame that carries it.  What it does not prove: the archive hash (that needs
 * every byte; restore and verify check it) and the pages' contents.  A damaged
 * page or table entry in the base cannot make an incremental wrong silently:
 * an entry that matches no page only makes the page be emitted again, and the
 * restore of the chain checks every restored page against the last table.
 *
 * Memory: the table (16 bytes a page of the base) and 24 bytes per carried
 * frame entry, both bounded by bytes actually read from the file: the table
 * grows a chunk at a time as it is read, and an all-zero entry (a hole of a
 * sparse file: no page hashes to zero) ends the load (issue #11).
 *
 * Thread safety: reentrant.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base.h"
#include "error.h"
#include "manifest.h"
#include "sys.h"
#include "sys_fs.h"

typedef struct loader {
    const char *path;
    int fd;
    uint64_t size;
    edb__arch_entry *ent;    /* every frame entry, in archive order */
    size_t nent, capent;
} loader;

static int
read_block(loader *ld, uint8_t block[EDB__ARCH_BLOCK], uint64_t off, const char *what)
{
    size_t got;
    if (edb__sys_pread_full(ld->fd, block, EDB__ARCH_BLOCK, (off_t)off, &got) != 0) {
        int e = errno;
        return edb__err(e == ENOMEM ? EDB_NOMEM : EDB_IO, "base archive '%s': reading the %s at offset %llu: %s",
                        ld->path, what, (unsigned long long)off, strerror(e));
    }
    if (got != EDB__ARCH_BLOCK)
        return edb__err(EDB_CORRUPT, "base archive '%s': truncated in the %s at offset %llu",
                        ld->path, what, (unsigned long long)off);
    return 0;
}

/* Prefix archive.c's detail (which names the block and offset) with the file. */
static int
named(int rc, const char *path)
{
    if (rc >= 0)
        return rc;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", edb_error_last_message());
    return edb__err(rc, "base archive '%s': %s", path, buf);
}

static int
add_entries(loader *ld, const edb__arch_frame *f)
{
    if (f->count > ld->capent - ld->nent) {
        size_t cap = ld->capent ? ld->capent * 2 : 1024;
        while (cap - ld->nent < f->count)
            cap *= 2;
        edb__arch_entry *e = edb__sys_realloc(ld->ent, cap * sizeof *e);
        if (e == NULL)
            return edb__err(EDB_NOMEM, "base archive '%s': %zu frame entries", ld->path, cap);
        ld->ent = e;
        ld->capent = cap;
    }
    memcpy(ld->ent + ld->nent, f->entries, f->count * sizeof *f->entries);
    ld->nent += f->count;
    return 0;
}

/* The table entry of every carried page (its last occurrence) must be the
 * frame entry's hash; without LOW_PIN a page may appear only once. */
static int
check_carried(loader *ld, const edb__base *b)
{
    size_t words = (size_t)((b->npages + 63) / 64);
    uint64_t *seen = edb__sys_calloc(words ? words : 1, sizeof *seen);
    if (seen == NULL)
        return edb__err(EDB_NOMEM, "base archive '%s': page set of %llu pages", ld->path,
                        (unsigned long long)b->npages);
    int rc = 0;
    /* First the structure (a repeat without LOW_PIN), then the hashes. */
    for (size_t i = 0; i < ld->nent && !(b->flags & EDB__ARCH_F_LOW_PIN); i++) {
        const edb__arch_entry *e = &ld->ent[i];
        if (e->pgno >= b->npages)
            continue;
        uint64_t bit = (uint64_t)1 << (e->pgno & 63);
        if (seen[e->pgno >> 6] & bit) {
            rc = edb__err(EDB_CORRUPT, "base archive '%s': page %llu appears twice without LOW_PIN",
                          ld->path, (unsigned long long)e->pgno);
            free(seen);
            return rc;
        }
        seen[e->pgno >> 6] |= bit;
    }
    memset(seen, 0, (words ? words : 1) * sizeof *seen);
    for (size_t i = ld->nent; i-- > 0;) {
        const edb__arch_entry *e = &ld->ent[i];
        if (e->pgno >= b->npages)
            continue;                   /* cut off by the final npages */
        uint64_t bit = (uint64_t)1 << (e->pgno & 63);
        if (seen[e->pgno >> 6] & bit)
            continue;                   /* an earlier pass's copy: the later one won */
        seen[e->pgno >> 6] |= bit;
        if (!edb__arch_hash_eq(&e->hash, &b->table[e->pgno])) {
            rc = edb__err(EDB_CHECKSUM, "base archive '%s': page hash table entry %llu differs from "
                          "the frame that carries the page", ld->path, (unsigned long long)e->pgno);
            break;
        }
    }
    free(seen);
    return rc;
}

/* Read the n entries of the page hash table at @toff into b->table, growing
 * it chunk by chunk as bytes arrive, so memory follows what the file really
 * holds, not what its length claims.  No page hashes to sixteen zero bytes
 * (XXH3-128), so an all-zero entry is a hole or damage: a sparse forged base
 * whose table is gigabytes long and kilobytes on disk is refused after its
 * first hole, having cost one chunk, not the table's length. */
#define BASE_TABLE_CHUNK ((size_t)65536)   /* entries per read: 1 MiB */
static int
read_table(loader *ld, edb__base *b, size_t n, uint64_t toff)
{
    static const uint8_t zero[sizeof b->table->b];
    size_t have = 0, cap = 0;
    while (have < n) {
        size_t want = n - have < BASE_TABLE_CHUNK ? n - have : BASE_TABLE_CHUNK;
        if (have + want > cap) {
            size_t ncap = cap ? cap * 2 : BASE_TABLE_CHUNK;
            if (ncap > n)
                ncap = n;
            edb__arch_hash *t = edb__sys_realloc(b->table, ncap * sizeof *t);
            if (t == NULL)
                return edb__err(EDB_NOMEM, "base archive '%s': page hash table of %zu pages",
                                ld->path, ncap);
            b->table = t;
            cap = ncap;
        }
        size_t got;
        off_t at = (off_t)(toff + (uint64_t)have * sizeof *b->table);
        if (edb__sys_pread_full(ld->fd, b->table + have, want * sizeof *b->table, at, &got) != 0)
            return edb__sys_err(errno, "base archive: reading the page hash table");
        if (got != want * sizeof *b->table)
            return edb__err(EDB_CORRUPT, "base archive '%s': truncated in the page hash table",
                            ld->path);
        for (size_t i = have; i < have + want; i++)
            if (memcmp(b->table[i].b, zero, sizeof zero) == 0)
                return edb__err(EDB_CORRUPT, "base archive '%s': page hash table entry %zu (offset "
                                "%llu) is all zeros, which no page hashes to (a hole in a sparse "
                                "or damaged file)", ld->path, i,
                                (unsigned long long)(toff + (uint64_t)i * sizeof *b->table));
        have += want;
    }
    return 0;
}

static int
load(loader *ld, edb__base *b)
{
    struct stat st;
    uint8_t block[EDB__ARCH_BLOCK];
    if (edb__sys_fstat(ld->fd, &st) != 0)
        return edb__sys_err(errno, "base archive: fstat");
    if (!S_ISREG(st.st_mode))
        return edb__err(EDB_INVAL, "base archive '%s': not a regular file", ld->path);
    ld->size = (uint64_t)st.st_size;
    if (ld->size < 4 * (uint64_t)EDB__ARCH_BLOCK)
        return edb__err(EDB_CORRUPT, "base archive '%s': %llu bytes is not a complete archive",
                        ld->path, (unsigned long long)ld->size);
    uint64_t end_off = ld->size - EDB__ARCH_BLOCK;

    edb__arch_header h;
    EDB_RET(read_block(ld, block, 0, "header"));
    EDB_RET(named(edb__arch_header_decode(&h, block, 0), ld->path));
    /* Version 2 is whole blocks; version 3's frames are not. */
    if (h.version == EDB__ARCH_VERSION && ld->size % EDB__ARCH_BLOCK != 0)
        return edb__err(EDB_CORRUPT, "base archive '%s': %llu bytes is not a complete archive",
                        ld->path, (unsigned long long)ld->size);

    /* Frames, up to the trailer. */
    uint64_t off = EDB__ARCH_BLOCK, frames = 0, pages = 0;
    edb__arch_frame f;
    for (;;) {
        if (off >= end_off)
            return edb__err(EDB_CORRUPT, "base archive '%s': no trailer before offset %llu",
                            ld->path, (unsigned long long)end_off);
        EDB_RET(read_block(ld, block, off, "frame or trailer"));
        edb__arch_kind k = edb__arch_block_kind(block);
        if (k == EDB__ARCH_TRAILER)
            break;
        if (h.version == EDB__ARCH_VERSION_Z) {
            /* A version-3 frame: its header (at most 4080 bytes) is in the
             * block; the payload is skipped like the pages of version 2. */
            uint32_t method, stored;
            EDB_RET(named(edb__arch_zframe_decode(&f, &method, &stored, block, &h, frames, off),
                          ld->path));
            uint64_t len = EDB__ARCH_ZHDR_SIZE(f.count) + (uint64_t)stored;
            if (len > end_off - off)
                return edb__err(EDB_CORRUPT, "base archive '%s': frame %llu at offset %llu runs past "
                                "the end", ld->path, (unsigned long long)frames, (unsigned long long)off);
            EDB_RET(add_entries(ld, &f));
            off += len;
            frames++;
            pages += f.count;
            continue;
        }
        if (k != EDB__ARCH_FRAME)
            return edb__err(EDB_CORRUPT, "base archive '%s': expected frame or trailer at offset %llu",
                            ld->path, (unsigned long long)off);
        EDB_RET(named(edb__arch_frame_decode(&f, block, &h, frames, off), ld->path));
        uint64_t body = (uint64_t)f.count * h.page_size;
        if (body > end_off - off - EDB__ARCH_BLOCK)
            return edb__err(EDB_CORRUPT, "base archive '%s': frame %llu at offset %llu runs past the end",
                            ld->path, (unsigned long long)frames, (unsigned long long)off);
        EDB_RET(add_entries(ld, &f));
        off += EDB__ARCH_BLOCK + body;
        frames++;
        pages += f.count;
    }

    edb__arch_trailer t;
    EDB_RET(named(edb__arch_trailer_decode(&t, block, &h, frames, pages, off), ld->path));
    uint64_t tbytes = edb__arch_table_bytes(t.npages);
    uint64_t toff = off + EDB__ARCH_BLOCK;
    if (tbytes == UINT64_MAX || toff > end_off || tbytes != end_off - toff)
        return edb__err(EDB_CORRUPT, "base archive '%s': the page hash table of %llu pages at offset "
                        "%llu does not end at the end block (offset %llu)", ld->path,
                        (unsigned long long)t.npages, (unsigned long long)toff,
                        (unsigned long long)end_off);

    /* The end block: its archive hash is taken as stored (not recomputed);
     * the decoder checks everything else. */
    edb__arch_end e;
    edb__arch_hash stored;
    EDB_RET(read_block(ld, block, end_off, "end block"));
    memcpy(stored.b, block + 40, sizeof stored.b);
    EDB_RET(named(edb__arch_end_decode(&e, block, &h, &stored, end_off), ld->path));

    /* The table, then its zero padding. */
    size_t n = (size_t)t.npages;
    EDB_RET(read_table(ld, b, n, toff));
    /* The padding is what is left of the table's last block (the table
     * starts on a block boundary in version 2, anywhere in version 3). */
    uint64_t tab = (uint64_t)n * sizeof *b->table;
    if (tab % EDB__ARCH_BLOCK != 0) {
        uint64_t blk = toff + tab - tab % EDB__ARCH_BLOCK;
        EDB_RET(read_block(ld, block, blk, "page hash table"));
        for (size_t i = (size_t)(tab % EDB__ARCH_BLOCK); i < EDB__ARCH_BLOCK; i++)
            if (block[i] != 0)
                return edb__err(EDB_CORRUPT, "base archive '%s': non-zero padding after the page hash "
                                "table at offset %llu", ld->path, (unsigned long long)(blk + i));
    }

    memcpy(b->backup_id, h.backup_id, sizeof b->backup_id);
    b->archive_hash = e.archive_hash;
    b->page_size = h.page_size;
    b->flags = h.flags;
    b->npages = t.npages;
    b->txnid = t.txnid;
    b->length = ld->size;

    /* Meta entries: what restore synthesises from the trailer's meta. */
    uint8_t *scratch = edb__sys_malloc(h.page_size);
    if (scratch == NULL)
        return edb__err(EDB_NOMEM, "base archive '%s': page buffer", ld->path);
    for (uint64_t p = 0; p < 2; p++) {
        edb__arch_hash mh;
        edb__arch_meta_hash(&mh, scratch, h.page_size, t.meta, p);
        if (!edb__arch_hash_eq(&mh, &b->table[p])) {
            free(scratch);
            return edb__err(EDB_CHECKSUM, "base archive '%s': page hash table entry %llu is not the "
                            "hash of the trailer's meta", ld->path, (unsigned long long)p);
        }
    }
    free(scratch);
    return check_carried(ld, b);
}

int
edb__base_load(edb__base *out, const char *path)
{
    if (out == NULL)
        return edb__err(EDB_INVAL, "base archive: out is NULL");
    memset(out, 0, sizeof *out);
    if (path == NULL)
        return edb__err(EDB_INVAL, "base archive: no path (an incremental backup needs a base)");
    loader ld = { .path = path, .fd = -1 };
    ld.fd = edb__sys_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (ld.fd < 0) {
        char what[300];
        snprintf(what, sizeof what, "base archive '%s'", path);
        return edb__sys_err(errno, what);
    }
    /* A manifest (manifest.c) carries what a base needs without the archive. */
    uint8_t magic[8];
    size_t got = 0;
    int rc;
    if (edb__sys_pread_full(ld.fd, magic, sizeof magic, 0, &got) == 0 && got == sizeof magic &&
        memcmp(magic, EDB__MAN_MAGIC, sizeof magic) == 0)
        rc = edb__man_load_base(out, ld.fd, path);
    else
        rc = load(&ld, out);
    edb__sys_close(ld.fd);
    free(ld.ent);
    if (rc < 0)
        edb__base_free(out);
    return rc;
}

void
edb__base_free(edb__base *b)
{
    if (b == NULL)
        return;
    free(b->table);
    memset(b, 0, sizeof *b);
}

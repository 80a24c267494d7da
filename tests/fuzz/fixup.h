/*
 * fixup.h: make a mutated archive internally consistent again, so that a
 * fuzzer gets past the hashes and reaches the structural checks behind them.
 *
 * fx_fixup() walks the blocks the way a writer lays them out and recomputes,
 * in place: every block hash, every frame entry's page hash, the page hash
 * table (from the pages as restore would produce them), and the end block's
 * length, backup id and archive hash.  In a compressed (version 3) archive
 * it reseals the frame headers, the trailer and the end block only.  Fields it cannot make sense of are
 * left as they are, and the walk stops there: the reader must refuse them.
 * Only for fuzz targets: it trusts nothing and bounds every loop by the input.
 */
#ifndef EDB_FUZZ_FIXUP_H
#define EDB_FUZZ_FIXUP_H

#include <stdlib.h>
#include <string.h>

#include "archive.h"

#define FX_B EDB__ARCH_BLOCK

static void
fx_reseal(uint8_t *blk)
{
    edb__arch_hash h;
    edb__arch_block_hash(&h, blk);
    memcpy(blk + EDB__ARCH_HASH_OFF, h.b, 16);
}

static void
fx_fixup(uint8_t *a, size_t n)
{
    if (n < FX_B || edb__arch_block_kind(a) != EDB__ARCH_HEADER)
        return;
    fx_reseal(a);
    uint32_t ps = edb__le32(a + 16);
    if (ps < EDB__ARCH_PAGE_MIN || ps > EDB__ARCH_PAGE_MAX || (ps & (ps - 1)) != 0)
        return;
    /* Last occurrence of each page below a small bound (archives here are tiny). */
    enum { MAXP = 4096 };
    static const uint8_t *last[MAXP];
    memset(last, 0, sizeof last);
    size_t off = FX_B;
    /* Version 3: reseal each frame header (its page hashes are over
     * compressed pages: left as they are) and step over its payload. */
    while (edb__le32(a + 8) == EDB__ARCH_VERSION_Z && n - off >= EDB__ARCH_ZFIXED &&
           memcmp(a + off, EDB__ARCH_MAGIC_ZFRAME, 4) == 0) {
        uint32_t count = edb__le32(a + off + 4), stored = edb__le32(a + off + 16);
        if (count < 1 || count > EDB__ARCH_FRAME_MAX || EDB__ARCH_ZHDR_SIZE(count) > n - off)
            return;
        size_t hl = EDB__ARCH_ZHDR_SIZE(count) - 16;
        edb__arch_hash h;
        edb__arch_hash_bytes(&h, a + off, hl, 0);
        memcpy(a + off + hl, h.b, 16);
        if (stored > n - off - hl - 16)
            return;
        off += hl + 16 + stored;
    }
    while (n - off >= FX_B && edb__arch_block_kind(a + off) == EDB__ARCH_FRAME) {
        uint8_t *f = a + off;
        uint32_t count = edb__le32(f + 4);
        if (count > EDB__ARCH_FRAME_MAX)
            count = EDB__ARCH_FRAME_MAX;
        for (uint32_t i = 0; i < count; i++) {
            size_t poff = off + FX_B + (size_t)i * ps;
            if (poff > n || n - poff < ps)
                break;
            uint64_t pgno = edb__le64(f + 32 + 24 * i);
            edb__arch_hash h;
            edb__arch_page_hash(&h, a + poff, ps, pgno);
            memcpy(f + 32 + 24 * i + 8, h.b, 16);
            if (pgno < MAXP)
                last[pgno] = a + poff;
        }
        fx_reseal(f);
        size_t len = FX_B + (size_t)count * ps;
        if (len > n - off)
            return;
        off += len;
    }
    if (n - off < FX_B || edb__arch_block_kind(a + off) != EDB__ARCH_TRAILER)
        return;
    uint8_t *t = a + off;
    fx_reseal(t);
    off += FX_B;
    uint64_t npages = edb__le64(t + 24);
    if (npages > MAXP)
        return;
    uint64_t tb = edb__arch_table_bytes(npages);
    if (tb > n - off)
        return;
    uint8_t *scratch = malloc(ps);
    if (scratch == NULL)
        return;
    for (uint64_t p = 0; p < npages && edb__le32(a + 8) != EDB__ARCH_VERSION_Z; p++) {
        edb__arch_hash h;
        if (p < 2)
            edb__arch_meta_hash(&h, scratch, ps, t + 48, p);
        else if (last[p] != NULL)
            edb__arch_page_hash(&h, last[p], ps, p);
        else
            edb__arch_zero_hash(&h, ps, p);
        memcpy(a + off + p * 16, h.b, 16);
    }
    free(scratch);
    off += (size_t)tb;
    if (n - off < FX_B || edb__arch_block_kind(a + off) != EDB__ARCH_END)
        return;
    uint8_t *e = a + off;
    edb__put_le64(e + 8, (uint64_t)off + FX_B);
    memcpy(e + 24, a + 24, 16);
    edb__arch_hash ah;
    edb__arch_archive_hash(&ah, a, off);
    memcpy(e + 40, ah.b, 16);
    fx_reseal(e);
}

#endif

/*
 * fuzz_blocks.c: libFuzzer target for the archive block decoders
 * (backup/archive.c): header, frame, trailer and end block.
 *
 * The input is cut into 4096-byte blocks (the last one zero-padded).  Each
 * block is decoded as every kind, twice: as given (almost always refused by
 * the block hash) and "resealed" (its block hash recomputed, so that the
 * fuzzer reaches the field checks behind it).  Properties checked besides
 * "no crash, no sanitizer report":
 * - a decoder returns 0 or one of the codes it documents;
 * - what a decoder accepts is canonical: encoding the decoded struct gives
 *   back exactly the same 4096 bytes (reserved bytes zero, no field ignored);
 * - a decoded header satisfies the ranges the other decoders rely on.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "edb.h"

#define B EDB__ARCH_BLOCK

static void
expect_code(int rc)
{
    if (rc != 0 && rc != EDB_CORRUPT && rc != EDB_CHECKSUM && rc != EDB_VERSION)
        abort();
}

static void
reseal(uint8_t *blk)
{
    edb__arch_hash h;
    edb__arch_block_hash(&h, blk);
    memcpy(blk + EDB__ARCH_HASH_OFF, h.b, 16);
}

/* A header the other decoders can be run against when the input has none. */
static void
default_header(edb__arch_header *h)
{
    memset(h, 0, sizeof *h);
    h->version = EDB__ARCH_VERSION;
    h->block_size = B;
    h->page_size = 4096;
    h->start_txnid = 5;
    h->start_npages = 16;
    h->max_pages = 1u << 20;
}

static void
one_block(const uint8_t *blk, edb__arch_header *hdr, uint64_t seq, uint64_t off)
{
    uint8_t again[B];
    edb__arch_header h;
    int rc = edb__arch_header_decode(&h, blk, off);
    expect_code(rc);
    if (rc == 0) {
        edb__arch_header_encode(again, &h);
        if (memcmp(again, blk, B) != 0)
            abort();                        /* accepted a non-canonical header */
        if (h.page_size < EDB__ARCH_PAGE_MIN || h.page_size > EDB__ARCH_PAGE_MAX ||
            (h.page_size & (h.page_size - 1)) != 0 || h.max_pages == 0)
            abort();
        *hdr = h;
    }
    edb__arch_frame f;
    rc = edb__arch_frame_decode(&f, blk, hdr, seq, off);
    expect_code(rc);
    if (rc == 0) {
        if (f.count == 0 || f.count > EDB__ARCH_FRAME_MAX)
            abort();
        for (uint32_t i = 0; i < f.count; i++)
            if (f.entries[i].pgno < 2 || f.entries[i].pgno >= hdr->max_pages)
                abort();
        edb__arch_frame_encode(again, &f);
        if (memcmp(again, blk, B) != 0)
            abort();
    }
    edb__arch_trailer t;
    /* frames/pages as the block itself claims, so that the cross-check can pass. */
    rc = edb__arch_trailer_decode(&t, blk, hdr, edb__le64(blk + 8), edb__le64(blk + 16), off);
    expect_code(rc);
    if (rc == 0) {
        if (t.npages < 2 || t.npages > hdr->max_pages)
            abort();
        if (edb__arch_table_bytes(t.npages) == UINT64_MAX)
            abort();
        edb__arch_trailer_encode(again, &t);
        if (memcmp(again, blk, B) != 0)
            abort();
    }
    edb__arch_end e;
    edb__arch_hash ah;
    memcpy(ah.b, blk + 40, 16);             /* the hash it claims, so the check can pass */
    rc = edb__arch_end_decode(&e, blk, hdr, &ah, off);
    expect_code(rc);
    if (rc == 0) {
        edb__arch_end_encode(again, &e);
        if (memcmp(again, blk, B) != 0)
            abort();
    }
    (void)edb__arch_kind_name(edb__arch_block_kind(blk));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t blk[B];
    edb__arch_header hdr;
    default_header(&hdr);
    size_t nblocks = size / B + (size % B != 0);
    if (nblocks > 8)
        nblocks = 8;
    for (size_t i = 0; i < nblocks; i++) {
        size_t n = size - i * B < B ? size - i * B : B;
        memset(blk, 0, B);
        memcpy(blk, data + i * B, n);
        uint64_t off = (uint64_t)i * B;
        one_block(blk, &hdr, i == 0 ? 0 : i - 1, off);
        reseal(blk);
        one_block(blk, &hdr, i == 0 ? 0 : i - 1, off);
    }
    return 0;
}

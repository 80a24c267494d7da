/*
 * archive.c: encode and validate the blocks of the backup archive
 * (doc/backup-format.md), the page and block hashes, and the meta pages that
 * restore synthesises from the trailer.
 *
 * Invariants: decoders never read outside the 4096-byte block they are given,
 * never trust a field before it is range-checked, and compare lengths as
 * `len > n - off`.  Every refusal names the block, its byte offset and the field.
 *
 * Thread safety: reentrant; no shared state.
 */
#include "config.h"

#include <stdatomic.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

/* On x86-64, libxxhash's _dispatch entry points pick the widest vector code
 * the CPU has (AVX2, AVX-512) at run time; the plain ones are built for the
 * baseline (SSE2).  Same results, 2 to 3 times the speed here. */
#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<xxh_x86dispatch.h>)
#define XXH_DISPATCH_DISABLE_REPLACE 1
#include <xxh_x86dispatch.h>
#define H128_SEED(p, n, seed)   XXH3_128bits_withSeed_dispatch((p), (n), (seed))
#define H128_UPDATE(st, p, n)   XXH3_128bits_update_dispatch((st), (p), (n))
#define H128_DISPATCH 1
#endif
#endif
#ifndef H128_SEED
#define H128_SEED(p, n, seed)   XXH3_128bits_withSeed((p), (n), (seed))
#define H128_UPDATE(st, p, n)   XXH3_128bits_update((st), (p), (n))
#endif

#include "archive.h"
#include "error.h"

_Static_assert(sizeof(XXH3_state_t) <= EDB__ARCH_HSTATE_SIZE, "XXH3 state does not fit");
_Static_assert(_Alignof(XXH3_state_t) <= 64, "XXH3 state alignment");
_Static_assert(32 + EDB__ARCH_FRAME_MAX * EDB__ARCH_ENTRY_SIZE <= EDB__ARCH_HASH_OFF,
               "frame entries overlap the block hash");

/* ---- hashes ---- */

/* libxxhash's AVX-512 code returns with the upper halves of the vector
 * registers dirty; every SSE instruction after it (this file is built for
 * the SSE2 baseline) then pays for merging them, which made verify's user
 * time 2.5 times what it is with the state cleared.  So after each dispatched
 * call: vzeroupper, when the CPU and the OS have AVX (else the dispatch ran
 * SSE2 code and the instruction would not exist).  Right after a call no
 * vector register holds a live value (they are all caller-saved, and the
 * hash comes back in rax:rdx).  Code built with AVX enabled needs nothing. */
#if defined(H128_DISPATCH) && !defined(__AVX__)
static int cpu_avx;                            /* set once, at load */
#endif

/* At load, before any thread can hash: libxxhash's dispatcher picks its code
 * on its first call and stores the choice in a global without
 * synchronization (two threads making their first calls at once race on
 * it), and whether vec_leave() may use vzeroupper is read from the CPU once. */
#ifdef H128_DISPATCH
__attribute__((constructor)) static void
hash_init(void)
{
    static const unsigned char byte;
    (void)XXH3_128bits_withSeed_dispatch(&byte, 1, 0);
#ifndef __AVX__
    __builtin_cpu_init();
    cpu_avx = __builtin_cpu_supports("avx") ? 1 : 0;
#endif
}
#endif

static inline void
vec_leave(void)
{
#if defined(H128_DISPATCH) && !defined(__AVX__)
    if (cpu_avx)
        __asm__ volatile("vzeroupper" ::: "memory");
#endif
}

static void
hash_store(edb__arch_hash *out, XXH128_hash_t h)
{
    edb__put_le64(out->b, h.low64);
    edb__put_le64(out->b + 8, h.high64);
}

void
edb__arch_hash_bytes(edb__arch_hash *out, const void *p, size_t n, uint64_t seed)
{
    XXH128_hash_t h = H128_SEED(p, n, seed);
    vec_leave();
    hash_store(out, h);
}

void
edb__arch_page_hash(edb__arch_hash *out, const void *page, size_t page_size, uint64_t pgno)
{
    edb__arch_hash_bytes(out, page, page_size, pgno);
}

void
edb__arch_block_hash(edb__arch_hash *out, const uint8_t block[EDB__ARCH_BLOCK])
{
    edb__arch_hash_bytes(out, block, EDB__ARCH_HASH_OFF, 0);
}

bool
edb__arch_hash_eq(const edb__arch_hash *a, const edb__arch_hash *b)
{
    return memcmp(a->b, b->b, sizeof a->b) == 0;
}

void
edb__arch_hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void
edb__arch_hstate_reset(edb__arch_hstate *st)
{
    XXH3_state_t *s = (XXH3_state_t *)(void *)st->opaque;
    memset(st->opaque, 0, sizeof st->opaque);
    (void)XXH3_128bits_reset_withSeed(s, 0);
}

void
edb__arch_hstate_update(edb__arch_hstate *st, const void *p, size_t n)
{
    (void)H128_UPDATE((XXH3_state_t *)(void *)st->opaque, p, n);
    vec_leave();
}

void
edb__arch_hstate_digest(edb__arch_hstate *st, edb__arch_hash *out)
{
    hash_store(out, XXH3_128bits_digest((XXH3_state_t *)(void *)st->opaque));
}

void
edb__arch_archive_hash(edb__arch_hash *out, const uint8_t *a, size_t len)
{
    edb__arch_hstate st;
    edb__arch_hstate_reset(&st);
    size_t off = 0;
    uint32_t ps = 0;
    if (len >= EDB__ARCH_BLOCK && memcmp(a, EDB__ARCH_MAGIC_HEADER, 8) == 0) {
        ps = edb__le32(a + 16);
        edb__arch_hstate_update(&st, a, EDB__ARCH_BLOCK);
        off = EDB__ARCH_BLOCK;
    }
    bool v3 = off != 0 && edb__le32(a + 8) == EDB__ARCH_VERSION_Z;
    while (v3 && ps >= EDB__ARCH_PAGE_MIN && ps <= EDB__ARCH_PAGE_MAX &&
           len - off >= EDB__ARCH_ZFIXED && memcmp(a + off, EDB__ARCH_MAGIC_ZFRAME, 4) == 0) {
        uint32_t count = edb__le32(a + off + 4), stored = edb__le32(a + off + 16);
        if (count < 1 || count > EDB__ARCH_FRAME_MAX || EDB__ARCH_ZHDR_SIZE(count) > len - off ||
            stored > len - off - EDB__ARCH_ZHDR_SIZE(count))
            break;
        edb__arch_hstate_update(&st, a + off, EDB__ARCH_ZHDR_SIZE(count));
        off += EDB__ARCH_ZHDR_SIZE(count) + stored;
    }
    while (!v3 && ps >= EDB__ARCH_PAGE_MIN && ps <= EDB__ARCH_PAGE_MAX && len - off >= EDB__ARCH_BLOCK &&
           memcmp(a + off, EDB__ARCH_MAGIC_FRAME, 4) == 0) {
        uint32_t count = edb__le32(a + off + 4);
        if (count < 1 || count > EDB__ARCH_FRAME_MAX ||
            (uint64_t)count * ps > len - off - EDB__ARCH_BLOCK)
            break;
        edb__arch_hstate_update(&st, a + off, EDB__ARCH_BLOCK);
        off += EDB__ARCH_BLOCK + (size_t)count * ps;
    }
    edb__arch_hstate_update(&st, a + off, len - off);
    edb__arch_hstate_digest(&st, out);
}

/* ---- shared checks ---- */

static bool
all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* First non-zero byte in [from, to), or `to`. */
static size_t
first_nonzero(const uint8_t *block, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (block[i] != 0)
            return i;
    return to;
}

static int
check_block_hash(const uint8_t *block, const char *what, uint64_t off)
{
    edb__arch_hash h;
    edb__arch_block_hash(&h, block);
    if (!edb__arch_hash_eq(&h, (const edb__arch_hash *)(const void *)(block + EDB__ARCH_HASH_OFF)))
        return edb__err(EDB_CHECKSUM, "%s at offset %llu: block hash mismatch (the block was altered)",
                        what, (unsigned long long)off);
    return 0;
}

static int
check_reserved(const uint8_t *block, size_t from, size_t to, const char *what, uint64_t off)
{
    size_t i = first_nonzero(block, from, to);
    if (i != to)
        return edb__err(EDB_CORRUPT, "%s at offset %llu: reserved byte %zu is 0x%02x, not zero",
                        what, (unsigned long long)off, i, block[i]);
    return 0;
}

static void
seal(uint8_t block[EDB__ARCH_BLOCK])
{
    edb__arch_hash h;
    edb__arch_block_hash(&h, block);
    memcpy(block + EDB__ARCH_HASH_OFF, h.b, sizeof h.b);
}

edb__arch_kind
edb__arch_block_kind(const uint8_t block[EDB__ARCH_BLOCK])
{
    if (memcmp(block, EDB__ARCH_MAGIC_HEADER, 8) == 0)
        return EDB__ARCH_HEADER;
    if (memcmp(block, EDB__ARCH_MAGIC_END, 8) == 0)
        return EDB__ARCH_END;
    if (memcmp(block, EDB__ARCH_MAGIC_FRAME, 4) == 0)
        return EDB__ARCH_FRAME;
    if (memcmp(block, EDB__ARCH_MAGIC_TRAILER, 4) == 0)
        return EDB__ARCH_TRAILER;
    return EDB__ARCH_UNKNOWN;
}

const char *
edb__arch_kind_name(edb__arch_kind k)
{
    switch (k) {
    case EDB__ARCH_HEADER:  return "header";
    case EDB__ARCH_FRAME:   return "frame";
    case EDB__ARCH_TRAILER: return "trailer";
    case EDB__ARCH_END:     return "end block";
    case EDB__ARCH_UNKNOWN: break;
    }
    return "unknown block";
}

/* ---- header ---- */

static int header_rules(const edb__arch_header *h, const uint8_t *block, uint64_t off);

void
edb__arch_header_encode(uint8_t block[EDB__ARCH_BLOCK], const edb__arch_header *h)
{
    memset(block, 0, EDB__ARCH_BLOCK);
    memcpy(block, EDB__ARCH_MAGIC_HEADER, 8);
    edb__put_le32(block + 8, h->version);
    edb__put_le32(block + 12, h->block_size);
    edb__put_le32(block + 16, h->page_size);
    edb__put_le32(block + 20, h->flags);
    memcpy(block + 24, h->backup_id, 16);
    memcpy(block + 40, h->base_id, 16);
    memcpy(block + 56, h->base_hash.b, 16);
    edb__put_le64(block + 72, h->base_npages);
    edb__put_le64(block + 80, h->start_txnid);
    edb__put_le64(block + 88, h->start_npages);
    edb__put_le64(block + 96, h->max_pages);
    edb__put_le64(block + 104, h->created_us);
    edb__put_le32(block + 112, h->codec);
    edb__put_le32(block + 116, h->codec_level);
    edb__put_le32(block + 120, h->cipher);
    memcpy(block + 124, h->key_id, 16);
    seal(block);
}

int
edb__arch_header_decode(edb__arch_header *out, const uint8_t block[EDB__ARCH_BLOCK], uint64_t off)
{
    memset(out, 0, sizeof *out);
    if (memcmp(block, EDB__ARCH_MAGIC_HEADER, 8) != 0)
        return edb__err(EDB_CORRUPT, "header at offset %llu: bad magic (not an edb backup archive)",
                        (unsigned long long)off);
    uint32_t version = edb__le32(block + 8);
    if (version == 1)
        return edb__err(EDB_VERSION, "header at offset %llu: archive format version 1 (written by a "
                        "pre-release edb); this reader reads version %u only: make a new backup",
                        (unsigned long long)off, EDB__ARCH_VERSION);
    if (version != EDB__ARCH_VERSION && version != EDB__ARCH_VERSION_Z)
        return edb__err(EDB_VERSION, "header at offset %llu: archive format version %u; this reader "
                        "reads versions %u and %u", (unsigned long long)off, version,
                        EDB__ARCH_VERSION, EDB__ARCH_VERSION_Z);
    EDB_RET(check_block_hash(block, "header", off));
    edb__arch_header h;
    memset(&h, 0, sizeof h);
    h.version = version;
    h.block_size = edb__le32(block + 12);
    h.page_size = edb__le32(block + 16);
    h.flags = edb__le32(block + 20);
    memcpy(h.backup_id, block + 24, 16);
    memcpy(h.base_id, block + 40, 16);
    memcpy(h.base_hash.b, block + 56, 16);
    h.base_npages = edb__le64(block + 72);
    h.start_txnid = edb__le64(block + 80);
    h.start_npages = edb__le64(block + 88);
    h.max_pages = edb__le64(block + 96);
    h.created_us = edb__le64(block + 104);
    if (version == EDB__ARCH_VERSION_Z) {
        h.codec = edb__le32(block + 112);
        h.codec_level = edb__le32(block + 116);
        h.cipher = edb__le32(block + 120);
        memcpy(h.key_id, block + 124, 16);
    }
    EDB_RET(header_rules(&h, block, off));
    *out = h;
    return 0;
}

int
edb__arch_header_check(const edb__arch_header *h, uint64_t off)
{
    return header_rules(h, NULL, off);
}

/* The rules of a header's fields; @block (NULL for a header the writer is
 * about to encode, whose reserved bytes the encoder zeroes) adds the check of
 * its reserved bytes, in the order decode has always reported them. */
static int
header_rules(const edb__arch_header *hp, const uint8_t *block, uint64_t off)
{
    edb__arch_header h = *hp;
    if (h.version != EDB__ARCH_VERSION && h.version != EDB__ARCH_VERSION_Z)
        return edb__err(EDB_VERSION, "header at offset %llu: archive format version %u; this reader "
                        "reads versions %u and %u", (unsigned long long)off, h.version,
                        EDB__ARCH_VERSION, EDB__ARCH_VERSION_Z);
    if (h.block_size != EDB__ARCH_BLOCK)
        return edb__err(EDB_CORRUPT, "header at offset %llu: block size %u, expected %u",
                        (unsigned long long)off, h.block_size, EDB__ARCH_BLOCK);
    if (h.page_size < EDB__ARCH_PAGE_MIN || h.page_size > EDB__ARCH_PAGE_MAX ||
        (h.page_size & (h.page_size - 1)) != 0)
        return edb__err(EDB_CORRUPT, "header at offset %llu: page size %u is not a power of two "
                        "in %u..%u", (unsigned long long)off, h.page_size, EDB__ARCH_PAGE_MIN,
                        EDB__ARCH_PAGE_MAX);
    if (h.flags & ~EDB__ARCH_F_KNOWN)
        return edb__err(EDB_CORRUPT, "header at offset %llu: unknown flag bits 0x%x",
                        (unsigned long long)off, h.flags & ~EDB__ARCH_F_KNOWN);
    /* Version 2 has no codec (bytes 112.. reserved); version 3 exists for
     * its codec, so it names a known one and its level. */
    if (h.version == EDB__ARCH_VERSION &&
        (h.codec != EDB__ARCH_CODEC_NONE || h.codec_level != 0 || h.cipher != EDB__ARCH_CIPHER_NONE))
        return edb__err(EDB_CORRUPT, "header at offset %llu: a codec in a version-%u archive",
                        (unsigned long long)off, EDB__ARCH_VERSION);
    if (h.version == EDB__ARCH_VERSION_Z && h.cipher != EDB__ARCH_CIPHER_NONE &&
        h.cipher != EDB__ARCH_CIPHER_SS)
        return edb__err(EDB_CORRUPT, "header at offset %llu: unknown cipher %u (this reader knows "
                        "%u, secretstream)", (unsigned long long)off, h.cipher, EDB__ARCH_CIPHER_SS);
    if (h.version == EDB__ARCH_VERSION_Z && h.cipher == EDB__ARCH_CIPHER_NONE && !all_zero(h.key_id, 16))
        return edb__err(EDB_CORRUPT, "header at offset %llu: a key id without a cipher",
                        (unsigned long long)off);
    /* An encrypted archive may be uncompressed (codec 0, level 0); an
     * archive without a cipher is version 3 only for its codec. */
    bool nocodec = h.cipher != EDB__ARCH_CIPHER_NONE && h.codec == EDB__ARCH_CODEC_NONE &&
                   h.codec_level == 0;
    if (h.version == EDB__ARCH_VERSION_Z && !nocodec && h.codec != EDB__ARCH_CODEC_ZSTD)
        return edb__err(EDB_CORRUPT, "header at offset %llu: unknown codec %u (this reader knows "
                        "%u, zstd)", (unsigned long long)off, h.codec, EDB__ARCH_CODEC_ZSTD);
    if (h.version == EDB__ARCH_VERSION_Z && !nocodec &&
        (h.codec_level < 1 || h.codec_level > EDB__ARCH_ZLEVEL_MAX))
        return edb__err(EDB_CORRUPT, "header at offset %llu: codec level %u out of range 1..%u",
                        (unsigned long long)off, h.codec_level, EDB__ARCH_ZLEVEL_MAX);
    if (block != NULL)
        EDB_RET(check_reserved(block, h.version == EDB__ARCH_VERSION ? 112 : 140,
                               EDB__ARCH_HASH_OFF, "header", off));
    if (!(h.flags & EDB__ARCH_F_INCREMENTAL)) {
        if (!all_zero(h.base_id, 16) || !all_zero(h.base_hash.b, 16) || h.base_npages != 0)
            return edb__err(EDB_CORRUPT, "header at offset %llu: a full archive with a base "
                            "(base_id, base_hash or base_npages not zero)", (unsigned long long)off);
    } else if (h.base_npages < 2) {
        return edb__err(EDB_CORRUPT, "header at offset %llu: incremental archive with base_npages "
                        "%llu (a database has at least 2 pages)", (unsigned long long)off,
                        (unsigned long long)h.base_npages);
    }
    /* Every page offset pgno * page_size must fit an off_t. */
    if (h.max_pages < 2 || h.max_pages > (uint64_t)INT64_MAX / h.page_size)
        return edb__err(EDB_CORRUPT, "header at offset %llu: max_pages %llu out of range "
                        "(2 .. %llu for page size %u)", (unsigned long long)off,
                        (unsigned long long)h.max_pages,
                        (unsigned long long)((uint64_t)INT64_MAX / h.page_size), h.page_size);
    if (h.start_npages < 2 || h.start_npages > h.max_pages)
        return edb__err(EDB_CORRUPT, "header at offset %llu: start_npages %llu out of range "
                        "(2 .. max_pages %llu)", (unsigned long long)off,
                        (unsigned long long)h.start_npages, (unsigned long long)h.max_pages);
    if ((h.flags & EDB__ARCH_F_INCREMENTAL) && h.base_npages > h.max_pages)
        return edb__err(EDB_CORRUPT, "header at offset %llu: base_npages %llu exceeds max_pages %llu",
                        (unsigned long long)off, (unsigned long long)h.base_npages,
                        (unsigned long long)h.max_pages);
    return 0;
}

/* ---- frame ---- */

void
edb__arch_frame_encode(uint8_t block[EDB__ARCH_BLOCK], const edb__arch_frame *f)
{
    memset(block, 0, EDB__ARCH_BLOCK);
    memcpy(block, EDB__ARCH_MAGIC_FRAME, 4);
    edb__put_le32(block + 4, f->count);
    edb__put_le64(block + 8, f->seq);
    uint32_t n = f->count <= EDB__ARCH_FRAME_MAX ? f->count : EDB__ARCH_FRAME_MAX;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *e = block + 32 + (size_t)i * EDB__ARCH_ENTRY_SIZE;
        edb__put_le64(e, f->entries[i].pgno);
        memcpy(e + 8, f->entries[i].hash.b, 16);
    }
    seal(block);
}

int
edb__arch_frame_decode(edb__arch_frame *out, const uint8_t block[EDB__ARCH_BLOCK],
                       const edb__arch_header *h, uint64_t seq, uint64_t off)
{
    out->count = 0;
    out->seq = 0;
    if (memcmp(block, EDB__ARCH_MAGIC_FRAME, 4) != 0)
        return edb__err(EDB_CORRUPT, "expected frame or trailer at offset %llu (frame %llu)",
                        (unsigned long long)off, (unsigned long long)seq);
    EDB_RET(check_block_hash(block, "frame", off));
    uint32_t count = edb__le32(block + 4);
    uint64_t fseq = edb__le64(block + 8);
    if (count < 1 || count > EDB__ARCH_FRAME_MAX)
        return edb__err(EDB_CORRUPT, "frame %llu at offset %llu: page count %u out of range 1..%u",
                        (unsigned long long)seq, (unsigned long long)off, count, EDB__ARCH_FRAME_MAX);
    if (fseq != seq)
        return edb__err(EDB_CORRUPT, "frame at offset %llu: sequence number %llu, expected %llu "
                        "(a frame is missing, repeated or out of order)", (unsigned long long)off,
                        (unsigned long long)fseq, (unsigned long long)seq);
    EDB_RET(check_reserved(block, 16, 32, "frame", off));
    size_t end = 32 + (size_t)count * EDB__ARCH_ENTRY_SIZE;
    EDB_RET(check_reserved(block, end, EDB__ARCH_HASH_OFF, "frame", off));
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = block + 32 + (size_t)i * EDB__ARCH_ENTRY_SIZE;
        uint64_t pgno = edb__le64(e);
        if (pgno < 2 || pgno >= h->max_pages)
            return edb__err(EDB_CORRUPT, "frame %llu at offset %llu: entry %u: page number %llu out "
                            "of range 2..%llu", (unsigned long long)seq, (unsigned long long)off, i,
                            (unsigned long long)pgno, (unsigned long long)(h->max_pages - 1));
        out->entries[i].pgno = pgno;
        memcpy(out->entries[i].hash.b, e + 8, 16);
    }
    out->count = count;
    out->seq = fseq;
    return 0;
}

/* ---- version-3 frame ----
 *
 * | offset | size | field |
 * | 0 | 4 | magic "ZFRM" |
 * | 4 | 4 | count, 1 ..= 168 |
 * | 8 | 8 | seq |
 * | 16 | 4 | stored: payload bytes after this header |
 * | 20 | 4 | method: 0 stored, 1 zstd |
 * | 24 | 8 | reserved, zero |
 * | 32 | 24 x count | entries: pgno, page hash (as in version 2) |
 * | 32 + 24 x count | 16 | header hash: H(bytes 0 .. 32 + 24 x count - 1, 0) |
 */

void
edb__arch_zframe_encode(uint8_t *out, const edb__arch_frame *f, uint32_t method, uint32_t stored)
{
    uint32_t n = f->count <= EDB__ARCH_FRAME_MAX ? f->count : EDB__ARCH_FRAME_MAX;
    memset(out, 0, EDB__ARCH_ZFIXED);
    memcpy(out, EDB__ARCH_MAGIC_ZFRAME, 4);
    edb__put_le32(out + 4, n);
    edb__put_le64(out + 8, f->seq);
    edb__put_le32(out + 16, stored);
    edb__put_le32(out + 20, method);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *e = out + EDB__ARCH_ZFIXED + (size_t)i * EDB__ARCH_ENTRY_SIZE;
        edb__put_le64(e, f->entries[i].pgno);
        memcpy(e + 8, f->entries[i].hash.b, 16);
    }
    size_t hl = EDB__ARCH_ZHDR_SIZE(n) - 16;
    edb__arch_hash h;
    edb__arch_hash_bytes(&h, out, hl, 0);
    memcpy(out + hl, h.b, 16);
}

int
edb__arch_zframe_count(uint32_t *out, const uint8_t *p, uint64_t seq, uint64_t off)
{
    *out = 0;
    if (memcmp(p, EDB__ARCH_MAGIC_ZFRAME, 4) != 0)
        return edb__err(EDB_CORRUPT, "expected frame or trailer at offset %llu (frame %llu)",
                        (unsigned long long)off, (unsigned long long)seq);
    uint32_t count = edb__le32(p + 4);
    if (count < 1 || count > EDB__ARCH_FRAME_MAX)
        return edb__err(EDB_CORRUPT, "frame %llu at offset %llu: page count %u out of range 1..%u",
                        (unsigned long long)seq, (unsigned long long)off, count, EDB__ARCH_FRAME_MAX);
    *out = count;
    return 0;
}

int
edb__arch_zframe_decode(edb__arch_frame *out, uint32_t *method, uint32_t *stored, const uint8_t *p,
                        const edb__arch_header *h, uint64_t seq, uint64_t off)
{
    out->count = 0;
    out->seq = 0;
    *method = 0;
    *stored = 0;
    uint32_t count;
    EDB_RET(edb__arch_zframe_count(&count, p, seq, off));
    size_t hl = EDB__ARCH_ZHDR_SIZE(count) - 16;
    edb__arch_hash hh;
    edb__arch_hash_bytes(&hh, p, hl, 0);
    if (!edb__arch_hash_eq(&hh, (const edb__arch_hash *)(const void *)(p + hl)))
        return edb__err(EDB_CHECKSUM, "frame %llu at offset %llu: header hash mismatch (the frame "
                        "header was altered)", (unsigned long long)seq, (unsigned long long)off);
    uint64_t fseq = edb__le64(p + 8);
    if (fseq != seq)
        return edb__err(EDB_CORRUPT, "frame at offset %llu: sequence number %llu, expected %llu "
                        "(a frame is missing, repeated or out of order)", (unsigned long long)off,
                        (unsigned long long)fseq, (unsigned long long)seq);
    uint32_t st = edb__le32(p + 16), m = edb__le32(p + 20);
    EDB_RET(check_reserved(p, 24, 32, "frame", off));
    uint64_t raw = (uint64_t)count * h->page_size;
    /* Encrypted: the payload is the sealed form of what the rules below
     * describe, EDB__ARCH_SEAL bytes longer. */
    uint32_t st_all = st;
    if (h->cipher != EDB__ARCH_CIPHER_NONE) {
        if (st < EDB__ARCH_SEAL + 1)
            return edb__err(EDB_CORRUPT, "frame %llu at offset %llu: encrypted payload of %u bytes "
                            "(at least %u)", (unsigned long long)seq, (unsigned long long)off, st,
                            EDB__ARCH_SEAL + 1);
        st -= EDB__ARCH_SEAL;
    }
    if (m == EDB__ARCH_ZM_ZSTD && h->codec != EDB__ARCH_CODEC_ZSTD)
        return edb__err(EDB_CORRUPT, "frame %llu at offset %llu: a compressed frame in an archive "
                        "without a codec", (unsigned long long)seq, (unsigned long long)off);
    if (m != EDB__ARCH_ZM_STORED && m != EDB__ARCH_ZM_ZSTD)
        return edb__err(EDB_CORRUPT, "frame %llu at offset %llu: unknown payload method %u",
                        (unsigned long long)seq, (unsigned long long)off, m);
    if ((m == EDB__ARCH_ZM_STORED && st != raw) || (m == EDB__ARCH_ZM_ZSTD && (st < 1 || st >= raw)))
        return edb__err(EDB_CORRUPT, "frame %llu at offset %llu: payload of %u bytes for %u pages "
                        "of %u bytes (%s)", (unsigned long long)seq, (unsigned long long)off, st,
                        count, h->page_size,
                        m == EDB__ARCH_ZM_STORED ? "stored: must be exactly their size"
                                                 : "compressed: must be smaller than them");
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = p + EDB__ARCH_ZFIXED + (size_t)i * EDB__ARCH_ENTRY_SIZE;
        uint64_t pgno = edb__le64(e);
        if (pgno < 2 || pgno >= h->max_pages)
            return edb__err(EDB_CORRUPT, "frame %llu at offset %llu: entry %u: page number %llu out "
                            "of range 2..%llu", (unsigned long long)seq, (unsigned long long)off, i,
                            (unsigned long long)pgno, (unsigned long long)(h->max_pages - 1));
        out->entries[i].pgno = pgno;
        memcpy(out->entries[i].hash.b, e + 8, 16);
    }
    out->count = count;
    out->seq = fseq;
    *method = m;
    *stored = st_all;
    return 0;
}

/* ---- trailer ---- */

void
edb__arch_trailer_encode(uint8_t block[EDB__ARCH_BLOCK], const edb__arch_trailer *t)
{
    memset(block, 0, EDB__ARCH_BLOCK);
    memcpy(block, EDB__ARCH_MAGIC_TRAILER, 4);
    edb__put_le64(block + 8, t->frames);
    edb__put_le64(block + 16, t->pages);
    edb__put_le64(block + 24, t->npages);
    edb__put_le64(block + 32, t->txnid);
    edb__put_le64(block + 40, t->pin_us);
    memcpy(block + 48, t->meta, EDB__ARCH_META_SIZE);
    seal(block);
}

static int
check_root(const uint8_t *meta, size_t dboff, const char *which, uint64_t npages, uint64_t off)
{
    uint64_t root = edb__le64(meta + dboff + EDB__META_DB_ROOT);
    if (root != UINT64_MAX && (root < 2 || root >= npages))
        return edb__err(EDB_CORRUPT, "trailer at offset %llu: meta: %s root page %llu outside "
                        "2..%llu", (unsigned long long)off, which, (unsigned long long)root,
                        (unsigned long long)(npages - 1));
    return 0;
}

int
edb__arch_trailer_decode(edb__arch_trailer *out, const uint8_t block[EDB__ARCH_BLOCK],
                         const edb__arch_header *h, uint64_t frames_read, uint64_t pages_read,
                         uint64_t off)
{
    memset(out, 0, sizeof *out);
    if (memcmp(block, EDB__ARCH_MAGIC_TRAILER, 4) != 0)
        return edb__err(EDB_CORRUPT, "trailer at offset %llu: bad magic", (unsigned long long)off);
    EDB_RET(check_block_hash(block, "trailer", off));
    EDB_RET(check_reserved(block, 4, 8, "trailer", off));
    EDB_RET(check_reserved(block, 304, EDB__ARCH_HASH_OFF, "trailer", off));
    edb__arch_trailer t;
    t.frames = edb__le64(block + 8);
    t.pages = edb__le64(block + 16);
    t.npages = edb__le64(block + 24);
    t.txnid = edb__le64(block + 32);
    t.pin_us = edb__le64(block + 40);
    memcpy(t.meta, block + 48, EDB__ARCH_META_SIZE);
    if (t.frames != frames_read)
        return edb__err(EDB_CORRUPT, "trailer at offset %llu: says %llu frames, the archive has %llu",
                        (unsigned long long)off, (unsigned long long)t.frames,
                        (unsigned long long)frames_read);
    if (t.pages != pages_read)
        return edb__err(EDB_CORRUPT, "trailer at offset %llu: says %llu pages, the frames carry %llu",
                        (unsigned long long)off, (unsigned long long)t.pages,
                        (unsigned long long)pages_read);
    if (t.npages < 2 || t.npages > h->max_pages)
        return edb__err(EDB_CORRUPT, "trailer at offset %llu: npages %llu out of range 2..%llu",
                        (unsigned long long)off, (unsigned long long)t.npages,
                        (unsigned long long)h->max_pages);
    const uint8_t *m = t.meta;
    if (edb__le32(m + EDB__META_OFF_MAGIC) != EDB__META_MAGIC)
        return edb__err(EDB_CORRUPT, "trailer at offset %llu: meta magic 0x%08x, expected 0x%08x",
                        (unsigned long long)off, edb__le32(m + EDB__META_OFF_MAGIC), EDB__META_MAGIC);
    uint32_t psize = edb__le32(m + EDB__META_OFF_FREEDB);
    if (psize != h->page_size)
        return edb__err(EDB_CORRUPT, "trailer at offset %llu: meta page size %u, header says %u",
                        (unsigned long long)off, psize, h->page_size);
    uint64_t last_pg = edb__le64(m + EDB__META_OFF_LASTPG);
    if (last_pg != t.npages - 1)
        return edb__err(EDB_CORRUPT, "trailer at offset %llu: meta last_pg %llu, but npages is %llu",
                        (unsigned long long)off, (unsigned long long)last_pg,
                        (unsigned long long)t.npages);
    uint64_t mtxn = edb__le64(m + EDB__META_OFF_TXNID);
    if (mtxn != t.txnid)
        return edb__err(EDB_CORRUPT, "trailer at offset %llu: meta txnid %llu, trailer txnid %llu",
                        (unsigned long long)off, (unsigned long long)mtxn,
                        (unsigned long long)t.txnid);
    EDB_RET(check_root(m, EDB__META_OFF_FREEDB, "freelist", t.npages, off));
    EDB_RET(check_root(m, EDB__META_OFF_MAINDB, "main", t.npages, off));
    *out = t;
    return 0;
}

uint64_t
edb__arch_table_bytes(uint64_t npages)
{
    if (npages > (UINT64_MAX - EDB__ARCH_BLOCK) / EDB__ARCH_TABLE_ENTRY)
        return UINT64_MAX;
    uint64_t n = npages * EDB__ARCH_TABLE_ENTRY;
    return (n + EDB__ARCH_BLOCK - 1) / EDB__ARCH_BLOCK * EDB__ARCH_BLOCK;
}

/* ---- end block ---- */

void
edb__arch_end_encode(uint8_t block[EDB__ARCH_BLOCK], const edb__arch_end *e)
{
    memset(block, 0, EDB__ARCH_BLOCK);
    memcpy(block, EDB__ARCH_MAGIC_END, 8);
    edb__put_le64(block + 8, e->length);
    memcpy(block + 24, e->backup_id, 16);
    memcpy(block + 40, e->archive_hash.b, 16);
    seal(block);
}

int
edb__arch_end_decode(edb__arch_end *out, const uint8_t block[EDB__ARCH_BLOCK],
                     const edb__arch_header *h, const edb__arch_hash *archive_hash, uint64_t off)
{
    memset(out, 0, sizeof *out);
    if (memcmp(block, EDB__ARCH_MAGIC_END, 8) != 0)
        return edb__err(EDB_CORRUPT, "end block at offset %llu: bad magic (an interrupted backup?)",
                        (unsigned long long)off);
    EDB_RET(check_block_hash(block, "end block", off));
    EDB_RET(check_reserved(block, 16, 24, "end block", off));
    EDB_RET(check_reserved(block, 56, EDB__ARCH_HASH_OFF, "end block", off));
    edb__arch_end e;
    e.length = edb__le64(block + 8);
    memcpy(e.backup_id, block + 24, 16);
    memcpy(e.archive_hash.b, block + 40, 16);
    if (off > UINT64_MAX - EDB__ARCH_BLOCK || e.length != off + EDB__ARCH_BLOCK)
        return edb__err(EDB_CORRUPT, "end block at offset %llu: archive length %llu, but %llu bytes "
                        "were read", (unsigned long long)off, (unsigned long long)e.length,
                        (unsigned long long)(off + EDB__ARCH_BLOCK));
    if (memcmp(e.backup_id, h->backup_id, 16) != 0)
        return edb__err(EDB_CORRUPT, "end block at offset %llu: backup id differs from the header's "
                        "(blocks of two archives mixed)", (unsigned long long)off);
    if (!edb__arch_hash_eq(&e.archive_hash, archive_hash))
        return edb__err(EDB_CHECKSUM, "end block at offset %llu: archive hash mismatch (the header, "
                        "a frame header, the trailer or the page hash table in bytes 0..%llu was "
                        "altered)", (unsigned long long)off, (unsigned long long)(off ? off - 1 : 0));
    *out = e;
    return 0;
}

/* ---- meta synthesis ---- */

void
edb__arch_meta_page(uint8_t *page, size_t page_size, const uint8_t meta[EDB__ARCH_META_SIZE],
                    uint64_t pgno)
{
    memset(page, 0, page_size);
    memcpy(page, meta, EDB__ARCH_META_SIZE < page_size ? EDB__ARCH_META_SIZE : page_size);
    edb__put_le64(page, pgno);
}

void
edb__arch_meta_hash(edb__arch_hash *out, uint8_t *scratch, size_t page_size,
                    const uint8_t meta[EDB__ARCH_META_SIZE], uint64_t pgno)
{
    edb__arch_meta_page(scratch, page_size, meta, pgno);
    edb__arch_page_hash(out, scratch, page_size, pgno);
}

/* Never written: read-only zeros for edb__arch_zero_hash (in .bss, so the
 * pages read are the kernel's shared zero page). */
static uint8_t zero_page[EDB__ARCH_PAGE_MAX];

void
edb__arch_zero_hash(edb__arch_hash *out, size_t page_size, uint64_t pgno)
{
    edb__arch_page_hash(out, zero_page, page_size <= sizeof zero_page ? page_size : sizeof zero_page,
                        pgno);
}

/*
 * archive.h: the block codec of the backup archive (`.edbk`, format version 2,
 * and version 3 for compressed frames, specified byte by byte in
 * doc/backup-format.md).
 *
 * Pure functions, no I/O and no allocation: encoders fill one 4096-byte block
 * from a struct (computing the block hash), decoders validate one block and
 * fill the struct.  Decoders check every field doc/backup-format.md says a
 * reader checks and fail with
 *   EDB_CORRUPT  a magic, a range, a reserved byte, a count or a cross-check,
 *   EDB_CHECKSUM a block hash,
 *   EDB_VERSION  a format version this reader does not know,
 * with an edb__err() detail naming the block and its byte offset in the
 * archive.  All length arithmetic is done as `len > n - off` so that no
 * field, however large, can overflow a check.
 *
 * The writer (backup/stream.c) and the reader (backup/reader.c) both use this
 * file, so that what one writes the other accepts by construction.
 *
 * Thread safety: every function is reentrant (edb__err() details are per thread).
 */
#ifndef EDB_ARCHIVE_H
#define EDB_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edb.h"
#include "lmdb_layout.h"

#define EDB__ARCH_BLOCK        4096u   /* every structure is one block */
#define EDB__ARCH_HASH_OFF     4080u   /* block hash: H(bytes 0..4079, 0) */
#define EDB__ARCH_VERSION      2u   /* plain archives (no codec) */
#define EDB__ARCH_VERSION_Z    3u   /* archives whose frames are compressed */
#define EDB__ARCH_PAGE_MIN     512u
#define EDB__ARCH_PAGE_MAX     65536u
#define EDB__ARCH_FRAME_MAX    168u    /* (4080 - 32) / 24 entries fit a frame block */
#define EDB__ARCH_FRAME_EDB_MIN 64u    /* edb's writer: frames of at least this many pages... */
#define EDB__ARCH_FRAME_EDB_BYTES (EDB__ARCH_FRAME_MAX * 4096u) /* ...else up to this many page bytes */
#define EDB__ARCH_ENTRY_SIZE   24u     /* pgno + page hash */
#define EDB__ARCH_META_SIZE    256u    /* meta bytes kept in the trailer */
#define EDB__ARCH_TABLE_ENTRY  16u     /* one page hash in the page hash table */

/* Header flags (the same bits as EDB_BACKUP_* in edb_backup.h). */
#define EDB__ARCH_F_INCREMENTAL 0x1u
#define EDB__ARCH_F_KEEP_FREE   0x2u
#define EDB__ARCH_F_LOW_PIN     0x4u
#define EDB__ARCH_F_KNOWN       0x7u

/* Magic numbers, as the bytes on disk. */
#define EDB__ARCH_MAGIC_HEADER  "EDBK\r\n\x1a\n"   /* 8 bytes */
#define EDB__ARCH_MAGIC_FRAME   "FRAM"             /* 4 bytes */
#define EDB__ARCH_MAGIC_TRAILER "TRLR"             /* 4 bytes */
#define EDB__ARCH_MAGIC_END     "EDBKEND\n"        /* 8 bytes */
#define EDB__ARCH_MAGIC_ZFRAME  "ZFRM"             /* 4 bytes: a frame of a version-3 archive */

/* Codecs (header field `codec`, version 3), and a frame's payload method. */
#define EDB__ARCH_CODEC_NONE    0u
#define EDB__ARCH_CODEC_ZSTD    1u
#define EDB__ARCH_ZLEVEL_MAX    22u
#define EDB__ARCH_CIPHER_NONE   0u
#define EDB__ARCH_CIPHER_SS     1u    /* libsodium crypto_secretstream_xchacha20poly1305, a stream a frame */
#define EDB__ARCH_SEAL          41u   /* its bytes per frame: 24-byte stream header + 17-byte tag */
#define EDB__ARCH_ZM_STORED     0u    /* payload: the pages as they are */
#define EDB__ARCH_ZM_ZSTD       1u    /* payload: one zstd frame of the pages, smaller than them */
#define EDB__ARCH_ZFIXED        32u   /* a version-3 frame header before its entries */
/* Bytes of a version-3 frame header of @count entries: the fixed part, the
 * entries, the header hash. */
#define EDB__ARCH_ZHDR_SIZE(count) (EDB__ARCH_ZFIXED + (size_t)(count) * EDB__ARCH_ENTRY_SIZE + 16u)

/* The LMDB meta inside the trailer's 256 bytes: offsets EDB__META_OFF_* from
 * lmdb_layout.h, the one place LMDB's layout is written down. */

/* A 128-bit XXH3 hash as stored: low 64 bits LE, then high 64 bits LE. */
typedef struct edb__arch_hash {
    uint8_t b[16];
} edb__arch_hash;

/* Which structure a block's magic announces. */
typedef enum edb__arch_kind {
    EDB__ARCH_UNKNOWN = 0,
    EDB__ARCH_HEADER,
    EDB__ARCH_FRAME,
    EDB__ARCH_TRAILER,
    EDB__ARCH_END
} edb__arch_kind;

typedef struct edb__arch_header {
    uint32_t version;        /* EDB__ARCH_VERSION */
    uint32_t block_size;     /* EDB__ARCH_BLOCK */
    uint32_t page_size;      /* power of two, 512 ..= 65536 */
    uint32_t flags;          /* EDB__ARCH_F_* */
    uint8_t backup_id[16];
    uint8_t base_id[16];     /* incremental only, else zero */
    edb__arch_hash base_hash;/* incremental only, else zero */
    uint64_t base_npages;    /* incremental only, else 0 */
    uint64_t start_txnid;
    uint64_t start_npages;
    uint64_t max_pages;      /* every pgno < max_pages; max_pages * page_size fits an off_t */
    uint64_t created_us;
    uint32_t codec;          /* version 3: EDB__ARCH_CODEC_ZSTD; version 2: NONE */
    uint32_t codec_level;    /* version 3: the level it was written with, 1 ..= 22 (0: no codec) */
    uint32_t cipher;         /* version 3: EDB__ARCH_CIPHER_* */
    uint8_t key_id[16];      /* version 3 with a cipher: the key's id (codec.h), else zero */
} edb__arch_header;

typedef struct edb__arch_entry {
    uint64_t pgno;
    edb__arch_hash hash;
} edb__arch_entry;

typedef struct edb__arch_frame {
    uint32_t count;          /* 1 ..= EDB__ARCH_FRAME_MAX */
    uint64_t seq;
    edb__arch_entry entries[EDB__ARCH_FRAME_MAX];
} edb__arch_frame;

typedef struct edb__arch_trailer {
    uint64_t frames;
    uint64_t pages;
    uint64_t npages;         /* 2 <= npages <= max_pages */
    uint64_t txnid;
    uint64_t pin_us;
    uint8_t meta[EDB__ARCH_META_SIZE];
} edb__arch_trailer;

typedef struct edb__arch_end {
    uint64_t length;         /* archive length, the end block included */
    uint8_t backup_id[16];
    edb__arch_hash archive_hash;
} edb__arch_end;

/* ---- hashes ---- */
/* H(bytes, seed): XXH3-128 stored low64 LE then high64 LE. */
void edb__arch_hash_bytes(edb__arch_hash *out, const void *p, size_t n, uint64_t seed);
/* Page hash of page @pgno (exactly @page_size bytes): H(page, pgno). */
void edb__arch_page_hash(edb__arch_hash *out, const void *page, size_t page_size, uint64_t pgno);
/* Block hash: H(block[0..4079], 0). */
void edb__arch_block_hash(edb__arch_hash *out, const uint8_t block[EDB__ARCH_BLOCK]);
bool edb__arch_hash_eq(const edb__arch_hash *a, const edb__arch_hash *b);
/* Lower-case hex of @n bytes into @out (2n + 1 bytes). */
void edb__arch_hex(char *out, const uint8_t *p, size_t n);

/* Streaming H(..., 0) for the archive hash.  The state is plain memory of
 * EDB__ARCH_HSTATE_SIZE bytes aligned to 64; keep it in the caller's struct. */
#define EDB__ARCH_HSTATE_SIZE 640u
typedef struct edb__arch_hstate {
    _Alignas(64) unsigned char opaque[EDB__ARCH_HSTATE_SIZE];
} edb__arch_hstate;
void edb__arch_hstate_reset(edb__arch_hstate *st);
void edb__arch_hstate_update(edb__arch_hstate *st, const void *p, size_t n);
void edb__arch_hstate_digest(edb__arch_hstate *st, edb__arch_hash *out);

/* The archive hash (format version 2) of the archive bytes @a[0 .. @len), @len
 * being the end block's offset: H of every byte except the pages of frames,
 * i.e. the header block, each frame header block, the trailer block and the
 * page hash table, in archive order, seed 0.  Pages are covered through their
 * hashes in the frame header blocks.  The walk follows frame header blocks
 * while they announce 1..EDB__ARCH_FRAME_MAX pages that fit before @len;
 * everything after the last such frame is hashed as it is, so any input has a
 * defined result (tests and fuzz targets seal mutated archives with it). */
void edb__arch_archive_hash(edb__arch_hash *out, const uint8_t *a, size_t len);

/* ---- blocks ---- */
/* The kind a block announces by its magic (no other check). */
edb__arch_kind edb__arch_block_kind(const uint8_t block[EDB__ARCH_BLOCK]);
const char *edb__arch_kind_name(edb__arch_kind k);

/* Encoders: fill @block from the struct, reserved bytes zero, block hash last.
 * They do not validate: pass what a decoder accepts (tests encode bad values
 * on purpose). */
void edb__arch_header_encode(uint8_t block[EDB__ARCH_BLOCK], const edb__arch_header *h);
void edb__arch_frame_encode(uint8_t block[EDB__ARCH_BLOCK], const edb__arch_frame *f);
void edb__arch_trailer_encode(uint8_t block[EDB__ARCH_BLOCK], const edb__arch_trailer *t);
void edb__arch_end_encode(uint8_t block[EDB__ARCH_BLOCK], const edb__arch_end *e);

/* Version 3 (compressed) frames: a variable-length frame header, then
 * @stored payload bytes (doc/backup-format.md "Version 3").  Encode writes
 * EDB__ARCH_ZHDR_SIZE(f->count) bytes at @out, header hash last. */
void edb__arch_zframe_encode(uint8_t *out, const edb__arch_frame *f, uint32_t method,
                             uint32_t stored);
/* The count a version-3 frame header announces (its first EDB__ARCH_ZFIXED
 * bytes at @p), checked against 1 ..= EDB__ARCH_FRAME_MAX, so the caller
 * knows how many header bytes to read.  @return 0 or EDB_CORRUPT. */
int edb__arch_zframe_count(uint32_t *out, const uint8_t *p, uint64_t seq, uint64_t off);
/* A whole version-3 frame header (EDB__ARCH_ZHDR_SIZE(count) bytes at @p):
 * magic, header hash (EDB_CHECKSUM), count, seq, method known, reserved zero,
 * stored length (STORED: exactly count * page_size; ZSTD: 1 ..= count *
 * page_size - 1, so a payload never costs more memory than its pages), each
 * pgno in 2 .. max_pages - 1. */
int edb__arch_zframe_decode(edb__arch_frame *out, uint32_t *method, uint32_t *stored,
                            const uint8_t *p, const edb__arch_header *h, uint64_t seq,
                            uint64_t off);

/* Decoders.  @off is the block's byte offset in the archive (for messages). */
/* Header: magic, version (EDB_VERSION), block hash, block size, page size,
 * flags, reserved, base fields zero unless incremental, start_npages and
 * max_pages in range. */
/* The reader's rules for a header's fields (version, block and page size,
 * flags, base fields, max_pages, start_npages, base_npages): decode applies
 * them to every header it reads, and the writer (edb_backup_begin, the copier)
 * to every header before it writes one, so it never produces an archive its
 * own reader refuses.  @off names the block in messages.
 * @return 0, EDB_CORRUPT or EDB_VERSION with a detail. */
int edb__arch_header_check(const edb__arch_header *h, uint64_t off);
int edb__arch_header_decode(edb__arch_header *out, const uint8_t block[EDB__ARCH_BLOCK],
                            uint64_t off);
/* Frame: magic, block hash, count in range, seq == @seq, reserved, each pgno in
 * 2 .. h->max_pages - 1.  @index names the frame in messages (it is @seq for a
 * well-formed archive). */
int edb__arch_frame_decode(edb__arch_frame *out, const uint8_t block[EDB__ARCH_BLOCK],
                           const edb__arch_header *h, uint64_t seq, uint64_t off);
/* Trailer: magic, block hash, reserved, frames == @frames_read, pages ==
 * @pages_read, 2 <= npages <= max_pages, meta magic, meta page size, meta
 * last_pg + 1 == npages, meta txnid == txnid, meta roots inside npages. */
int edb__arch_trailer_decode(edb__arch_trailer *out, const uint8_t block[EDB__ARCH_BLOCK],
                             const edb__arch_header *h, uint64_t frames_read,
                             uint64_t pages_read, uint64_t off);
/* End block: magic, block hash, reserved, length == @off + block, backup_id ==
 * h->backup_id, archive_hash == @archive_hash (edb__arch_archive_hash() of bytes
 * 0 .. @off - 1). */
int edb__arch_end_decode(edb__arch_end *out, const uint8_t block[EDB__ARCH_BLOCK],
                         const edb__arch_header *h, const edb__arch_hash *archive_hash,
                         uint64_t off);

/* The size rule (doc/backup-format.md, reader check 7): of a snapshot's
 * @npages pages, those no archive carried (pages 2.. other than the @carried
 * ones) are restored as zeros, so they must be free pages, listed in a free
 * list whose pages are carried: page_size / 8 page numbers a page, plus a
 * slack.  false when @npages is more than the carried pages justify. */
#define EDB__ARCH_FREE_SLACK 64u
static inline bool
edb__arch_size_justified(uint64_t npages, uint64_t carried, uint32_t page_size)
{
    uint64_t zero = npages - 2 - carried;       /* the caller has 2 + carried <= npages */
    return zero <= carried * (page_size / 8) + EDB__ARCH_FREE_SLACK;
}

/* Bytes of the page hash table including its zero padding, or UINT64_MAX when
 * @npages is absurd (the caller has validated npages <= max_pages, so that
 * cannot happen for a decoded trailer). */
uint64_t edb__arch_table_bytes(uint64_t npages);

/* Meta page synthesis for restore: the trailer's 256 meta bytes with bytes
 * 0..7 (pgno) set to @pgno (0 or 1), then zeros to @page_size. */
void edb__arch_meta_page(uint8_t *page, size_t page_size, const uint8_t meta[EDB__ARCH_META_SIZE],
                         uint64_t pgno);
/* The table entry of meta page @pgno: H(edb__arch_meta_page(...), pgno).
 * @scratch holds @page_size bytes. */
void edb__arch_meta_hash(edb__arch_hash *out, uint8_t *scratch, size_t page_size,
                         const uint8_t meta[EDB__ARCH_META_SIZE], uint64_t pgno);
/* H(page_size zero bytes, pgno): the table entry of a page that is not carried.
 * Hashed from a constant zero page (no buffer to clear for each page). */
void edb__arch_zero_hash(edb__arch_hash *out, size_t page_size, uint64_t pgno);

/* Pages edb's writers (copier, merge) put in a frame of @page_size pages:
 * as many as fit EDB__ARCH_FRAME_EDB_BYTES (168 pages of 4 KiB: one frame
 * header block per 672 KiB of pages, 0.6% of the bytes), at most
 * EDB__ARCH_FRAME_MAX, at least EDB__ARCH_FRAME_EDB_MIN (pages of 16 and 64
 * KiB keep the frames of 64 pages they always had).  Readers accept any count
 * 1 ..= EDB__ARCH_FRAME_MAX whatever the writer chose. */
static inline unsigned
edb__arch_frame_edb(uint32_t page_size)
{
    uint32_t n = page_size > 0 ? EDB__ARCH_FRAME_EDB_BYTES / page_size : EDB__ARCH_FRAME_MAX;
    return n > EDB__ARCH_FRAME_MAX ? EDB__ARCH_FRAME_MAX : n < EDB__ARCH_FRAME_EDB_MIN ? EDB__ARCH_FRAME_EDB_MIN : n;
}

/* Little-endian helpers. */
static inline uint32_t
edb__le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t
edb__le64(const uint8_t *p)
{
    return (uint64_t)edb__le32(p) | (uint64_t)edb__le32(p + 4) << 32;
}
static inline void
edb__put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void
edb__put_le64(uint8_t *p, uint64_t v)
{
    edb__put_le32(p, (uint32_t)v);
    edb__put_le32(p + 4, (uint32_t)(v >> 32));
}

#endif

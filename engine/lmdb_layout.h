/*
 * lmdb_layout.h: LMDB's on-disk layout, the one place edb states it.
 *
 * edb reads LMDB's files itself where LMDB cannot help: metaread.c explains a
 * refused open and checks a short file, pagecheck.c walks the B-trees,
 * backup/snapshot.c captures a snapshot's meta, backup/archive.c checks the
 * meta kept in an archive's trailer.  They all take offsets, sizes and flags
 * from here (tests/check-one-place.sh fails when a second copy appears).
 *
 * The layout is liblmdb 0.9.x, data format version 1, as built on a 64-bit
 * host (pgno_t and size_t of 8 bytes); fields are in host byte order, which
 * edb reads as little-endian (the only hosts it supports).
 *
 * Page header (PAGEHDRSZ = 16), at the start of every page:
 * | off | size | field                                                         |
 * |-----|------|---------------------------------------------------------------|
 * |   0 |    8 | mp_pgno: the page's own number                                |
 * |   8 |    2 | mp_pad: key size on a LEAF2 page                              |
 * |  10 |    2 | mp_flags: EDB__PAGE_F_* below                                 |
 * |  12 |  2+2 | mp_lower, mp_upper (free space bounds); on the first page of  |
 * |     |      | an overflow run, one u32: the run's page count                |
 * |  16 |  2*n | mp_ptrs: offsets of the n = (lower - 16) / 2 nodes            |
 *
 * Node (NODESIZE = 8, then the key, then the data):
 * | off | size | field                                                         |
 * |-----|------|---------------------------------------------------------------|
 * |   0 |  2+2 | lo, hi: leaf: data size lo | hi << 16; branch: child page     |
 * |     |      | lo | hi << 16 | flags << 32                                   |
 * |   4 |    2 | flags: EDB__NODE_F_* below                                    |
 * |   6 |    2 | key size                                                      |
 *
 * MDB_db (48 bytes), two of them in each meta:
 * | off | size | field                                                         |
 * |-----|------|---------------------------------------------------------------|
 * |   0 |    4 | md_pad (the page size in the free list's record)              |
 * |   4 |    2 | md_flags (MDB_INTEGERKEY, MDB_DUPSORT, ...)                   |
 * |   6 |    2 | md_depth                                                      |
 * |   8 |    8 | md_branch_pages                                               |
 * |  16 |    8 | md_leaf_pages                                                 |
 * |  24 |    8 | md_overflow_pages                                             |
 * |  32 |    8 | md_entries                                                    |
 * |  40 |    8 | md_root (~0: empty tree)                                      |
 *
 * Meta page (pages 0 and 1; transaction N writes page N & 1), offsets from
 * the start of the page:
 * | off | size | field                                                         |
 * |-----|------|---------------------------------------------------------------|
 * |   0 |   16 | page header (flags EDB__PAGE_F_META)                          |
 * |  16 |    4 | mm_magic 0xBEEFC0DE                                           |
 * |  20 |    4 | mm_version: the data format, 1                                |
 * |  24 |    8 | mm_address                                                    |
 * |  32 |    8 | mm_mapsize                                                    |
 * |  40 |   48 | mm_dbs[FREE_DBI]: the free list                               |
 * |  88 |   48 | mm_dbs[MAIN_DBI]: the main database                           |
 * | 136 |    8 | mm_last_pg: the highest page number in use                    |
 * | 144 |    8 | mm_txnid: the transaction that wrote this meta                |
 * | 152 |      | end of what LMDB itself reads (PAGEHDRSZ + sizeof(MDB_meta))  |
 *
 * lock.mdb starts with mti_magic (the same 0xBEEFC0DE) and mti_format, 4
 * bytes each.  A free-list record: the key is a txn id, the data an IDL: a
 * u64 count, then that many u64 page numbers.
 */
#ifndef EDB_LMDB_LAYOUT_H
#define EDB_LMDB_LAYOUT_H

#include <stdint.h>
#include <string.h>

/* ---- magic and format ---- */
#define EDB__META_MAGIC        0xBEEFC0DEu     /* mm_magic, and mti_magic of lock.mdb */
#define EDB__META_DATA_VERSION 1u              /* mm_version */

/* ---- page header ---- */
#define EDB__PAGE_HDR          16u     /* PAGEHDRSZ */
#define EDB__PAGE_OFF_PGNO     0u
#define EDB__PAGE_OFF_PAD      8u
#define EDB__PAGE_OFF_FLAGS    10u
#define EDB__PAGE_OFF_LOWER    12u
#define EDB__PAGE_OFF_UPPER    14u
#define EDB__PAGE_OFF_OVPAGES  12u     /* u32 page count of an overflow run */
#define EDB__PAGE_F_BRANCH     0x01u
#define EDB__PAGE_F_LEAF       0x02u
#define EDB__PAGE_F_OVERFLOW   0x04u
#define EDB__PAGE_F_META       0x08u
#define EDB__PAGE_F_LEAF2      0x20u
#define EDB__PAGE_F_SUBP       0x40u

/* ---- node ---- */
#define EDB__NODE_SIZE         8u      /* NODESIZE: the header before the key */
#define EDB__NODE_OFF_LO       0u
#define EDB__NODE_OFF_HI       2u
#define EDB__NODE_OFF_FLAGS    4u
#define EDB__NODE_OFF_KSIZE    6u
#define EDB__NODE_F_BIGDATA    0x01u   /* data: the 8-byte first page of an overflow run */
#define EDB__NODE_F_SUBDATA    0x02u   /* data: an MDB_db */
#define EDB__NODE_F_DUPDATA    0x04u   /* duplicates: a sub-page, or with SUBDATA a sub-tree */

/* ---- MDB_db ---- */
#define EDB__DB_SIZE           48u
#define EDB__DB_OFF_PAD        0u
#define EDB__DB_OFF_FLAGS      4u
#define EDB__DB_OFF_DEPTH      6u
#define EDB__DB_OFF_BRANCH     8u
#define EDB__DB_OFF_LEAF       16u
#define EDB__DB_OFF_OVERFLOW   24u
#define EDB__DB_OFF_ENTRIES    32u
#define EDB__DB_OFF_ROOT       40u
#define EDB__META_DB_ROOT      EDB__DB_OFF_ROOT   /* the name archive.c uses */

/* ---- meta page ---- */
#define EDB__META_OFF_MAGIC    16u
#define EDB__META_OFF_VERSION  20u
#define EDB__META_OFF_ADDRESS  24u
#define EDB__META_OFF_MAPSIZE  32u
#define EDB__META_OFF_FREEDB   40u     /* MDB_db of the free list; its md_pad holds the page size */
#define EDB__META_OFF_MAINDB   88u
#define EDB__META_OFF_LASTPG   136u
#define EDB__META_OFF_TXNID    144u
#define EDB__META_READ_END     152u    /* PAGEHDRSZ + sizeof(MDB_meta) */

/* ---- reading the fields ---- */
/* LMDB writes its pages and metas in the host's byte order, at offsets that
 * need not be aligned for the type: read them byte-wise. */
static inline uint16_t
edb__lmdb_rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline uint32_t
edb__lmdb_rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t
edb__lmdb_rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

#endif

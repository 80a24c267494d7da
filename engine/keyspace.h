/*
 * keyspace.h: tables and indexes as key ranges in a few LMDB databases.
 *
 * Every edb database holds exactly three LMDB named databases, opened once
 * when the env opens (doc/engine.md, "Storage layout"):
 *   edb.catalog  schemas, counters, row counts, the format record (catalog.h)
 *   edb.records  every table's records
 *   edb.index    every secondary index's entries
 * A table's records and an index's entries are the keys that start with the
 * table's or index's compact id, drawn from the catalog's "\0nextid" counter
 * and never reused within a database.  Stored key = id prefix + the key the
 * rest of the engine builds, so every layer above this one sees unprefixed
 * keys (doc/key-encoding.md: the prefix takes at most 4 of LMDB's 511 bytes,
 * EDB__LMDB_KEY_MAX).  The prefix is a property of the range (edb__ks.plen):
 *   format 4: the id as 4 bytes, big-endian;
 *   format 5: 1 to 4 bytes, order-preserving and prefix-free:
 *     id < 2^7         0xxxxxxx
 *     id < 2^14        10xxxxxx xxxxxxxx
 *     id < 2^21        110xxxxx xxxxxxxx xxxxxxxx
 *     id < 2^28        1110xxxx xxxxxxxx xxxxxxxx xxxxxxxx
 *   (an id is written in the shortest form; format 5 hands out ids below
 *   2^28, catalog.c).  Long values' chunks keep the 4-byte prefix 00 00 00 00
 *   in both formats (longval.c): no table's format-5 prefix starts with 0x00.
 *
 * The functions return LMDB codes (the callers translate them as before);
 * a cursor never leaves its range: FIRST, LAST, NEXT, PREV and SET_RANGE
 * return MDB_NOTFOUND where the range ends.
 *
 * Thread safety: stateless; as the LMDB txn and cursor passed in.
 */
#ifndef EDB_KEYSPACE_H
#define EDB_KEYSPACE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "undo.h"

#define EDB__KS_PREFIX 4

/* The names of the fixed databases (edb.catalog is catalog.c's). */
#define EDB__KS_CATALOG "edb.catalog"
#define EDB__KS_RECORDS "edb.records"
#define EDB__KS_INDEX   "edb.index"

/* Largest id of a format 5 prefix (2^28 - 1). */
#define EDB__KS_VAR_MAX 0x0FFFFFFFu

/* One key range: the database and the id prefix (plen bytes of pfx). */
typedef struct edb__ks {
    MDB_dbi dbi;
    uint8_t plen;
    uint8_t pfx[EDB__KS_PREFIX];
} edb__ks;

/* Write the prefix of @id to p[0..4): 4 bytes (format 4) or the short form
 * (format 5, @var; id <= EDB__KS_VAR_MAX).  Returns its length. */
static inline unsigned
edb__ks_encode(uint8_t *p, uint32_t id, bool var)
{
    if (!var || id > 0x1FFFFFu) {
        p[0] = (uint8_t)((id >> 24) | (var ? 0xE0u : 0u));
        p[1] = (uint8_t)(id >> 16);
        p[2] = (uint8_t)(id >> 8);
        p[3] = (uint8_t)id;
        return 4;
    }
    if (id < 0x80u) {
        p[0] = (uint8_t)id;
        return 1;
    }
    if (id < 0x4000u) {
        p[0] = (uint8_t)(0x80u | id >> 8);
        p[1] = (uint8_t)id;
        return 2;
    }
    p[0] = (uint8_t)(0xC0u | id >> 16);
    p[1] = (uint8_t)(id >> 8);
    p[2] = (uint8_t)id;
    return 3;
}

/* The id of the format 5 prefix at p[0..n), and its length in *len; false
 * when p does not start with one. */
static inline bool
edb__ks_decode(const uint8_t *p, size_t n, uint32_t *id, unsigned *len)
{
    unsigned l = n == 0 ? 0 : p[0] < 0x80 ? 1 : p[0] < 0xC0 ? 2 : p[0] < 0xE0 ? 3 : p[0] < 0xF0 ? 4 : 0;
    if (l == 0 || l > n)
        return false;
    uint32_t v = p[0] & (l == 1 ? 0x7Fu : l == 2 ? 0x3Fu : l == 3 ? 0x1Fu : 0x0Fu);
    for (unsigned i = 1; i < l; i++)
        v = v << 8 | p[i];
    *id = v;
    *len = l;
    return true;
}

static inline void
edb__ks_set(edb__ks *ks, MDB_dbi dbi, uint32_t id, bool var)
{
    ks->dbi = dbi;
    memset(ks->pfx, 0, sizeof ks->pfx);
    ks->plen = (uint8_t)edb__ks_encode(ks->pfx, id, var);
}

static inline bool
edb__ks_eq(const edb__ks *a, const edb__ks *b)
{
    return a->dbi == b->dbi && a->plen == b->plen && memcmp(a->pfx, b->pfx, EDB__KS_PREFIX) == 0;
}

/* Does the stored key p[0..n) lie in range @ks? */
static inline bool
edb__ks_has(const edb__ks *ks, const void *key, size_t n)
{
    const uint8_t *p = key;
    if (n < ks->plen)
        return false;
    if (ks->plen == 4)
        return memcmp(p, ks->pfx, 4) == 0;
    if (ks->plen == 1)
        return p[0] == ks->pfx[0];
    return memcmp(p, ks->pfx, ks->plen) == 0;
}

/* Copy @n bytes of a key behind its prefix: the sizes keys usually have
 * (4 to 16 bytes: integer and GUID keys) as two overlapping fixed-size
 * copies, without a call. */
static inline void
edb__ks_copy(uint8_t *dst, const void *src, size_t n)
{
    const uint8_t *p = src;
    if (n >= 8 && n <= 16) {
        memcpy(dst, p, 8);
        memcpy(dst + n - 8, p + n - 8, 8);
    } else if (n >= 4 && n < 8) {
        memcpy(dst, p, 4);
        memcpy(dst + n - 4, p + n - 4, 4);
    } else if (n > 0) {
        memcpy(dst, p, n);
    }
}

/* mdb_get / mdb_put / mdb_del of @key within the range.  A key longer than
 * 511 - EDB__KS_PREFIX bytes is MDB_BAD_VALSIZE.  get is inline: every
 * lookup's one call (the call and a second copy of the key cost 2 % of a
 * lookup). */
static inline __attribute__((always_inline)) int
edb__ks_get(MDB_txn *txn, const edb__ks *ks, const MDB_val *key, MDB_val *data)
{
    uint8_t buf[511];
    if (key->mv_size > sizeof buf - EDB__KS_PREFIX)
        return MDB_BAD_VALSIZE;
    memcpy(buf, ks->pfx, EDB__KS_PREFIX);
    edb__ks_copy(buf + ks->plen, key->mv_data, key->mv_size);
    MDB_val k = { key->mv_size + ks->plen, buf };
    return mdb_get(txn, ks->dbi, &k, data);
}
/* mdb_cursor_get(MDB_SET_RANGE) within the range: the first key >= @k
 * (given and returned without the prefix; @k is left alone on failure),
 * MDB_NOTFOUND past the range's end.  Inline: every seek's one positioning
 * (edb__ks_cursor_get_slow does the same for its other callers). */
static inline __attribute__((always_inline)) int
edb__ks_set_range(MDB_cursor *mc, const edb__ks *ks, MDB_val *k, MDB_val *d)
{
    uint8_t buf[511];
    if (k->mv_size > sizeof buf - EDB__KS_PREFIX)
        return MDB_BAD_VALSIZE;
    memcpy(buf, ks->pfx, EDB__KS_PREFIX);
    edb__ks_copy(buf + ks->plen, k->mv_data, k->mv_size);
    MDB_val pk = { k->mv_size + ks->plen, buf };
    int rc = mdb_cursor_get(mc, &pk, d, MDB_SET_RANGE);
    if (rc != 0)
        return rc;
    if (!edb__ks_has(ks, pk.mv_data, pk.mv_size))
        return MDB_NOTFOUND;
    k->mv_data = (uint8_t *)pk.mv_data + ks->plen;
    k->mv_size = pk.mv_size - ks->plen;
    return 0;
}
/* put is inline too: every insert makes one per record and index entry. */
static inline __attribute__((always_inline)) int
edb__ks_put(MDB_txn *txn, const edb__ks *ks, const MDB_val *key, MDB_val *data, unsigned flags)
{
    uint8_t buf[511];
    if (key->mv_size > sizeof buf - EDB__KS_PREFIX)
        return MDB_BAD_VALSIZE;
    memcpy(buf, ks->pfx, EDB__KS_PREFIX);
    edb__ks_copy(buf + ks->plen, key->mv_data, key->mv_size);
    MDB_val k = { key->mv_size + ks->plen, buf };
    return edb__undo_put(txn, ks->dbi, &k, data, flags);
}
int edb__ks_del(MDB_txn *txn, const edb__ks *ks, const MDB_val *key);
/* mdb_cursor_get within the range, for MDB_FIRST, MDB_LAST, MDB_NEXT,
 * MDB_PREV, MDB_SET_RANGE and MDB_GET_CURRENT; the key returned is without
 * the prefix.  NEXT and PREV need a positioned cursor. */
int edb__ks_cursor_get_slow(MDB_cursor *mc, const edb__ks *ks, MDB_val *k, MDB_val *d, MDB_cursor_op op);
static inline int
edb__ks_cursor_get(MDB_cursor *mc, const edb__ks *ks, MDB_val *k, MDB_val *d, MDB_cursor_op op)
{
    /* NEXT and PREV inline: a scan's every step */
    if (op != MDB_NEXT && op != MDB_PREV)
        return edb__ks_cursor_get_slow(mc, ks, k, d, op);
    int rc = mdb_cursor_get(mc, k, d, op);
    if (rc != 0)
        return rc;
    if (!edb__ks_has(ks, k->mv_data, k->mv_size))
        return MDB_NOTFOUND;
    k->mv_data = (uint8_t *)k->mv_data + ks->plen;
    k->mv_size -= ks->plen;
    return 0;
}
/* Delete every key of the range (its pages are free at the commit). */
int edb__ks_clear(MDB_txn *txn, const edb__ks *ks);

#endif

/*
 * keyspace.h: tables and indexes as key ranges in a few LMDB databases.
 *
 * Every edb database holds exactly three LMDB named databases, opened once
 * when the env opens (doc/engine.md, "Storage layout"):
 *   edb.catalog  schemas, counters, row counts, the format record (catalog.h)
 *   edb.records  every table's records
 *   edb.index    every secondary index's entries
 * A table's records and an index's entries are the keys that start with the
 * table's or index's compact id, a 4-byte big-endian number drawn from the
 * catalog's "\0nextid" counter and never reused within a database.  Stored
 * key = id (4 bytes) + the key the rest of the engine builds, so every layer
 * above this one sees unprefixed keys (doc/key-encoding.md: the prefix takes
 * 4 of LMDB's 511 bytes, EDB__LMDB_KEY_MAX).
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

/* One key range: the database and the id prefix. */
typedef struct edb__ks {
    MDB_dbi dbi;
    uint8_t pfx[EDB__KS_PREFIX];
} edb__ks;

static inline void
edb__ks_set(edb__ks *ks, MDB_dbi dbi, uint32_t id)
{
    ks->dbi = dbi;
    ks->pfx[0] = (uint8_t)(id >> 24);
    ks->pfx[1] = (uint8_t)(id >> 16);
    ks->pfx[2] = (uint8_t)(id >> 8);
    ks->pfx[3] = (uint8_t)id;
}

static inline bool
edb__ks_eq(const edb__ks *a, const edb__ks *b)
{
    return a->dbi == b->dbi && memcmp(a->pfx, b->pfx, EDB__KS_PREFIX) == 0;
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
    edb__ks_copy(buf + EDB__KS_PREFIX, key->mv_data, key->mv_size);
    MDB_val k = { key->mv_size + EDB__KS_PREFIX, buf };
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
    edb__ks_copy(buf + EDB__KS_PREFIX, k->mv_data, k->mv_size);
    MDB_val pk = { k->mv_size + EDB__KS_PREFIX, buf };
    int rc = mdb_cursor_get(mc, &pk, d, MDB_SET_RANGE);
    if (rc != 0)
        return rc;
    if (pk.mv_size < EDB__KS_PREFIX || memcmp(pk.mv_data, ks->pfx, EDB__KS_PREFIX) != 0)
        return MDB_NOTFOUND;
    k->mv_data = (uint8_t *)pk.mv_data + EDB__KS_PREFIX;
    k->mv_size = pk.mv_size - EDB__KS_PREFIX;
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
    edb__ks_copy(buf + EDB__KS_PREFIX, key->mv_data, key->mv_size);
    MDB_val k = { key->mv_size + EDB__KS_PREFIX, buf };
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
    if (k->mv_size < EDB__KS_PREFIX || memcmp(k->mv_data, ks->pfx, EDB__KS_PREFIX) != 0)
        return MDB_NOTFOUND;
    k->mv_data = (uint8_t *)k->mv_data + EDB__KS_PREFIX;
    k->mv_size -= EDB__KS_PREFIX;
    return 0;
}
/* Delete every key of the range (its pages are free at the commit). */
int edb__ks_clear(MDB_txn *txn, const edb__ks *ks);

#endif

/*
 * key.h: the order-preserving key codec (implemented in key.c, documented as a
 * byte table there and in doc/key-encoding.md).
 *
 * A key is the concatenation of one self-delimiting segment per index column.
 * memcmp order of encoded keys equals the order of the values, segment by
 * segment (descending segments inverted; NULL before every value in an
 * ascending segment, after every value in a descending one or with
 * EDB__KEY_NULLS_HIGH), so a key made from the first k columns is a byte
 * prefix of every full key that starts with those values.
 */
#ifndef EDB_KEY_H
#define EDB_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "edb.h"

/* A segment's mode (the @mode argument below), a set of:
 *   EDB__KEY_DESC        descending: the payload is inverted; NULL sorts after
 *                        every value (as ESE), whatever the other bit says;
 *   EDB__KEY_NULLS_HIGH  NULL sorts after every value in an ascending segment
 *                        too (the index flag EDB_IDX_SORT_NULLS_HIGH).
 * 0 is ascending with NULL first.  A bool desc converts to 0 or EDB__KEY_DESC. */
#define EDB__KEY_DESC       0x1u
#define EDB__KEY_NULLS_HIGH 0x2u

/* The mode of segment @desc of an index with flags @idx_flags (EDB_IDX_*). */
static inline unsigned
edb__key_mode(bool desc, unsigned idx_flags)
{
    return (desc ? EDB__KEY_DESC : 0u) | ((idx_flags & EDB_IDX_SORT_NULLS_HIGH) ? EDB__KEY_NULLS_HIGH : 0u);
}

/* Append the segment for one value (native form, data NULL = NULL) to
 * buf[0..*len), capacity cap, in segment mode @mode.  Returns 0, EDB_INVAL
 * (size wrong for the type, NaN, bad UTF-8, unknown mode bits), EDB_TOOBIG
 * (would pass cap; *len unchanged). */
int edb__key_append(uint8_t *buf, size_t cap, size_t *len, edb_coltype type,
                    const void *data, size_t size, unsigned mode);

/* The offset of the first byte of s[0..n) that is not strict UTF-8 without
 * NUL (what TEXT segments require), or n when it is all valid. */
size_t edb__key_utf8_bad(const uint8_t *s, size_t n);

/* The segment prefix bytes (key.c's table): a NULL is 0x01 where it sorts
 * before every value, 0x03 where it sorts after every value. */
#define EDB__KEY_PREFIX_NULL      0x01u
#define EDB__KEY_PREFIX_VALUE     0x02u
#define EDB__KEY_PREFIX_NULL_HIGH 0x03u

/* The 9-byte segment of a non-NULL INT64 (@sign: sign bit flipped) or UINT64
 * value v: the prefix, then v big-endian, inverted when @desc.  Exactly what
 * edb__key_append writes for these types; the caller checked the room. */
static inline void
edb__key_put64(uint8_t *p, uint64_t v, bool sign, bool desc)
{
    if (sign)
        v ^= UINT64_C(1) << 63;
    if (desc)
        v = ~v;
    p[0] = EDB__KEY_PREFIX_VALUE;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
    memcpy(p + 1, &v, 8);
#else
    for (int i = 8; i >= 1; i--, v >>= 8)
        p[i] = (uint8_t)v;
#endif
}

/* Turn buf[0..*len) into the smallest byte string greater than every string
 * that starts with it (drop trailing 0xFF bytes, increment the last).  Returns
 * 0, or EDB_NOTFOUND when no such string exists (empty or all 0xFF). */
int edb__key_successor(uint8_t *buf, size_t *len);

/* Decode the segment at key[*off..len), written in mode @mode, into its
 * native form.  out may be NULL to skip; *size receives the value's size (0
 * for NULL).  Advances *off.  Returns 0, EDB_WRN_NULL (NULL value),
 * EDB_WRN_TRUNCATED (cap too small: *size is the full size), EDB_CORRUPT
 * (malformed segment, or the NULL prefix of the other mode). */
int edb__key_decode(const uint8_t *key, size_t len, size_t *off, edb_coltype type,
                    unsigned mode, void *out, size_t cap, size_t *size);

#endif

/*
 * key.h: the order-preserving key codec (implemented in key.c, documented as a
 * byte table there and in doc/key-encoding.md).
 *
 * A key is the concatenation of one self-delimiting segment per index column.
 * memcmp order of encoded keys equals the order of the values, segment by
 * segment (NULL first, descending segments inverted), so a key made from the
 * first k columns is a byte prefix of every full key that starts with those values.
 */
#ifndef EDB_KEY_H
#define EDB_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "edb.h"

/* Append the segment for one value (native form, data NULL = NULL) to
 * buf[0..*len), capacity cap.  Returns 0, EDB_INVAL (size wrong for the type,
 * NaN, bad UTF-8), EDB_TOOBIG (would pass cap; *len unchanged). */
int edb__key_append(uint8_t *buf, size_t cap, size_t *len, edb_coltype type,
                    const void *data, size_t size, bool desc);

/* The segment prefix bytes (key.c's table): NULL sorts before every value. */
#define EDB__KEY_PREFIX_NULL  0x01u
#define EDB__KEY_PREFIX_VALUE 0x02u

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

/* Decode the segment at key[*off..len) into its native form.  out may be NULL
 * to skip; *size receives the value's size (0 for NULL).  Advances *off.
 * Returns 0, EDB_WRN_NULL (NULL value), EDB_WRN_TRUNCATED (cap too small:
 * *size is the full size), EDB_CORRUPT (malformed segment). */
int edb__key_decode(const uint8_t *key, size_t len, size_t *off, edb_coltype type,
                    bool desc, void *out, size_t cap, size_t *size);

#endif

/*
 * key.c: the order-preserving key codec.
 *
 * An index key is the concatenation of one segment per key column.  Every
 * segment starts with a prefix byte and is self-delimiting, so that
 *
 *   memcmp(encode(a1..an), encode(b1..bn)) has the sign of the lexicographic
 *   comparison of (a1..an) and (b1..bn), each column compared in its own
 *   direction; NULL sorts before every value in an ascending segment and
 *   after every value in a descending one (as ESE), and after every value in
 *   both directions in an index with EDB_IDX_SORT_NULLS_HIGH (key.h's
 *   segment modes);
 *
 *   the key of the first k columns is a byte prefix of the full key.
 *
 * Segment layout (bytes in order; "payload" as in the table below):
 *
 * | part       | size          | ascending                 | descending                 |
 * |------------|---------------|---------------------------|----------------------------|
 * | prefix     | 1             | 0x01 NULL, 0x02 value;    | 0x02 value, 0x03 NULL      |
 * |            |               | NULLS_HIGH: 0x03 NULL     |                            |
 * | payload    | per type      | as below (absent if NULL) | every payload byte XOR 0xFF|
 *
 * The prefix byte is never inverted; the NULL's prefix says where NULL sorts:
 * 0x01 before every value (ascending), 0x03 after every value (descending,
 * or any segment of an EDB_IDX_SORT_NULLS_HIGH index).  A segment uses one of
 * the two NULL prefixes, fixed by its mode; the decoder refuses the other.
 * 0x00 and 0x04..0xFF are never used as prefixes.  (Format 2 and older wrote
 * 0x01 for NULL in descending segments too: catalog.c refuses such a database.)
 *
 * Ascending payload by type (descending: the same bytes, each inverted):
 *
 * | type              | size    | payload                                                 |
 * |-------------------|---------|---------------------------------------------------------|
 * | BOOL              | 1       | 0x00 false, 0x01 true (native values other than 0/1: INVAL) |
 * | UINT8..UINT64     | 1,2,4,8 | big-endian                                              |
 * | INT8..INT64       | 1,2,4,8 | big-endian two's complement with the sign bit flipped   |
 * | DATETIME          | 8       | as INT64                                                |
 * | FLOAT / DOUBLE    | 4 / 8   | IEEE bits big-endian; sign clear: sign bit set; sign    |
 * |                   |         | set: all bits inverted.  -0.0 is encoded as +0.0 (they  |
 * |                   |         | compare equal and decode as +0.0).  NaN: INVAL.         |
 * | GUID              | 16      | the 16 bytes as given (memcmp order)                    |
 * | TEXT / BINARY     | n+z+2   | each byte as is, except 0x00 -> 0x00 0xFF; then the     |
 * |                   |         | terminator 0x00 0x00 (z = number of 0x00 bytes)         |
 *
 * Why the variable-length form orders correctly: inside the escaped body a 0x00
 * is always followed by 0xFF, so the terminator 0x00 0x00 is smaller than any
 * continuation: a value sorts before its extensions ("a" 61 00 00 < "a\0"
 * 61 00 FF 00 00 < "ab" 61 62 00 00), and since the terminator cannot occur
 * inside a body, no segment's encoding is a proper prefix of a different
 * value's encoding, so the bytes after a segment never decide between two
 * different values of it.  Descending inverts the whole payload including the
 * terminator (0xFF 0xFF, escape 0xFF 0x00): inversion reverses memcmp order of
 * equal-length-prefix-free strings, and the decoder recognises the inverted
 * terminator, so the segment still delimits itself.
 *
 * TEXT must be valid UTF-8 (no overlong forms, no surrogates, nothing above
 * U+10FFFF) without NUL bytes (edb.h); anything else is EDB_INVAL.  BINARY is
 * any bytes.
 *
 * A segment that would pass the caller's capacity is EDB_TOOBIG and leaves
 * *len unchanged; keys are never truncated.
 *
 * Thread safety: pure functions of their arguments; any thread.
 */
#include <float.h>
#include <string.h>

#include "coltype.h"
#include "error.h"
#include "key.h"

#define PREFIX_NULL      EDB__KEY_PREFIX_NULL
#define PREFIX_VALUE     EDB__KEY_PREFIX_VALUE
#define PREFIX_NULL_HIGH EDB__KEY_PREFIX_NULL_HIGH
#define KNOWN_MODES      (EDB__KEY_DESC | EDB__KEY_NULLS_HIGH)

/* The NULL prefix of a segment in @mode. */
static inline uint8_t
null_prefix(unsigned mode)
{
    return mode != 0 ? PREFIX_NULL_HIGH : PREFIX_NULL;
}

/* Payload size of a fixed-size type, 0 for TEXT/BINARY, -1 for an unknown
 * type; the name; the sign flip: the column-type table (coltype.h). */
static inline int
fixed_size(edb_coltype type)
{
    return edb__type_size(type);
}

static const char *
type_name(edb_coltype type)
{
    const edb__coltype *c = edb__coltype_of(type);
    return c != NULL ? c->name : "unknown";
}

/* Read a native unsigned integer of n bytes (host order) as uint64. */
static uint64_t
load_native(const void *data, int n)
{
    switch (n) {
    case 1: { uint8_t v; memcpy(&v, data, 1); return v; }
    case 2: { uint16_t v; memcpy(&v, data, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, data, 4); return v; }
    default: { uint64_t v; memcpy(&v, data, 8); return v; }
    }
}

static void
store_native(void *out, uint64_t v, int n)
{
    switch (n) {
    case 1: { uint8_t x = (uint8_t)v; memcpy(out, &x, 1); break; }
    case 2: { uint16_t x = (uint16_t)v; memcpy(out, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(out, &x, 4); break; }
    default: memcpy(out, &v, 8); break;
    }
}

/* Store the low n bytes of v big-endian at p (the hot path of integer keys). */
static inline void
store_be(uint8_t *p, uint64_t v, int n)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    switch (n) {
    case 8: { uint64_t x = __builtin_bswap64(v); memcpy(p, &x, 8); return; }
    case 4: { uint32_t x = __builtin_bswap32((uint32_t)v); memcpy(p, &x, 4); return; }
    case 2: { uint16_t x = __builtin_bswap16((uint16_t)v); memcpy(p, &x, 2); return; }
    default: break;
    }
#endif
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static bool
is_signed(edb_coltype type)
{
    const edb__coltype *c = edb__coltype_of(type);
    return c != NULL && c->is_signed;
}

/* Strict UTF-8 check (RFC 3629), NUL refused.  Returns the offset of the first
 * bad byte, or n when the whole string is valid. */
static size_t
utf8_bad_offset(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c >= 0x01 && c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;         /* overlong */
            if (c == 0xED) hi = 0x9F;         /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;         /* overlong */
            if (c == 0xF4) hi = 0x8F;         /* above U+10FFFF */
        } else {
            return i;                         /* NUL, continuation, C0/C1, F5..FF */
        }
        if (need > n - i - 1)
            return i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
        i += need + 1;
    }
    return n;
}

size_t
edb__key_utf8_bad(const uint8_t *s, size_t n)
{
    return utf8_bad_offset(s, n);
}

/* Encode a fixed-size value into its ascending payload p[0..n). */
static int
encode_fixed(uint8_t *p, edb_coltype type, const void *data, int n)
{
    switch (type) {
    case EDB_COL_GUID:
        memcpy(p, data, 16);
        return 0;
    case EDB_COL_BOOL: {
        uint8_t b;
        memcpy(&b, data, 1);
        if (b > 1)
            return edb__err(EDB_INVAL, "key segment: bool value is %u, expected 0 or 1", b);
        p[0] = b;
        return 0;
    }
    case EDB_COL_FLOAT: {
        float f;
        memcpy(&f, data, 4);
        if (f != f)
            return edb__err(EDB_INVAL, "key segment: float value is NaN");
        uint32_t u;
        if (f == 0.0f)
            f = 0.0f;                          /* -0.0 -> +0.0 */
        memcpy(&u, &f, 4);
        u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
        store_be(p, u, 4);
        return 0;
    }
    case EDB_COL_DOUBLE: {
        double d;
        memcpy(&d, data, 8);
        if (d != d)
            return edb__err(EDB_INVAL, "key segment: double value is NaN");
        uint64_t u;
        if (d == 0.0)
            d = 0.0;
        memcpy(&u, &d, 8);
        u = (u & UINT64_C(0x8000000000000000)) ? ~u : (u | UINT64_C(0x8000000000000000));
        store_be(p, u, 8);
        return 0;
    }
    default: {
        uint64_t u = load_native(data, n);
        if (is_signed(type))
            u ^= UINT64_C(1) << (8 * n - 1);
        store_be(p, u, n);
        return 0;
    }
    }
}

int
edb__key_append(uint8_t *buf, size_t cap, size_t *len, edb_coltype type,
                const void *data, size_t size, unsigned mode)
{
    if (buf == NULL || len == NULL)
        return edb__err(EDB_INVAL, "key segment: NULL buffer or length");
    if (mode & ~KNOWN_MODES)
        return edb__err(EDB_INVAL, "key segment: unknown mode 0x%x", mode);
    bool desc = (mode & EDB__KEY_DESC) != 0;
    if (*len > cap)
        return edb__err(EDB_INVAL, "key segment: length %zu is past capacity %zu", *len, cap);
    int n = fixed_size(type);
    if (n < 0)
        return edb__err(EDB_INVAL, "key segment: unknown column type %d", (int)type);
    size_t room = cap - *len;
    uint8_t *p = buf + *len;

    if (data == NULL) {
        if (room < 1)
            return edb__err(EDB_TOOBIG, "key segment: NULL needs 1 byte, %zu left", room);
        p[0] = null_prefix(mode);
        *len += 1;
        return 0;
    }

    if (n > 0) {
        if (size != (size_t)n)
            return edb__err(EDB_INVAL, "key segment: %s value has %zu bytes, expected %d",
                            type_name(type), size, n);
        uint8_t tmp[16];
        EDB_RET(encode_fixed(tmp, type, data, n));
        if (room < (size_t)n + 1)
            return edb__err(EDB_TOOBIG, "key segment: %s needs %d bytes, %zu left",
                            type_name(type), n + 1, room);
        p[0] = PREFIX_VALUE;
        if (desc)
            for (int i = 0; i < n; i++)
                p[1 + i] = (uint8_t)~tmp[i];
        else if (n == 8)
            memcpy(p + 1, tmp, 8);             /* constant size: no call */
        else
            memcpy(p + 1, tmp, (size_t)n);
        *len += (size_t)n + 1;
        return 0;
    }

    /* TEXT / BINARY */
    const uint8_t *s = data;
    if (type == EDB_COL_TEXT) {
        size_t bad = utf8_bad_offset(s, size);
        if (bad != size)
            return edb__err(EDB_INVAL, "key segment: text is not valid UTF-8 without NUL "
                            "(byte 0x%02x at offset %zu)", s[bad], bad);
    }
    /* Size check before writing anything: count the bytes that need escaping,
     * refusing early once the body alone cannot fit. */
    if (room < 3 || size > room - 3)
        return edb__err(EDB_TOOBIG, "key segment: %s of %zu bytes does not fit in %zu bytes",
                        type_name(type), size, room);
    size_t zeros = 0;
    if (type == EDB_COL_BINARY) {
        const uint8_t *q = s, *end = s + size;
        while ((q = memchr(q, 0, (size_t)(end - q))) != NULL) {
            zeros++;
            q++;
        }
    }
    if (zeros > room - 3 - size)
        return edb__err(EDB_TOOBIG, "key segment: %s of %zu bytes (%zu escaped) does not fit "
                        "in %zu bytes", type_name(type), size, zeros, room);
    uint8_t inv = desc ? 0xFF : 0x00;
    uint8_t *w = p;
    *w++ = PREFIX_VALUE;
    if (zeros == 0 && !desc) {
        memcpy(w, s, size);
        w += size;
    } else {
        for (size_t i = 0; i < size; i++) {
            *w++ = (uint8_t)(s[i] ^ inv);
            if (s[i] == 0)
                *w++ = (uint8_t)(0xFF ^ inv);
        }
    }
    *w++ = inv;
    *w++ = inv;
    *len += (size_t)(w - p);
    return 0;
}

int
edb__key_successor(uint8_t *buf, size_t *len)
{
    if (buf == NULL || len == NULL)
        return edb__err(EDB_INVAL, "key successor: NULL buffer or length");
    size_t n = *len;
    while (n > 0 && buf[n - 1] == 0xFF)
        n--;
    if (n == 0)
        return edb__err(EDB_NOTFOUND, "key successor: the key is empty or all 0xFF bytes");
    buf[n - 1]++;
    *len = n;
    return 0;
}

/* Decode an ascending fixed payload p[0..n) into native form v (16 bytes room).
 * Returns 0 or EDB_CORRUPT for payloads encode never produces. */
static int
decode_fixed(uint8_t *v, edb_coltype type, const uint8_t *p, int n)
{
    switch (type) {
    case EDB_COL_GUID:
        memcpy(v, p, 16);
        return 0;
    case EDB_COL_BOOL:
        if (p[0] > 1)
            return edb__err(EDB_CORRUPT, "key segment: bool payload 0x%02x", p[0]);
        v[0] = p[0];
        return 0;
    default:
        break;
    }
    uint64_t u = 0;
    for (int i = 0; i < n; i++)
        u = (u << 8) | p[i];
    if (type == EDB_COL_FLOAT || type == EDB_COL_DOUBLE) {
        uint64_t sign = UINT64_C(1) << (8 * n - 1);
        uint64_t mask = n == 8 ? UINT64_MAX : (sign << 1) - 1;
        u = (u & sign) ? (u & ~sign) : (~u & mask);
        if (type == EDB_COL_FLOAT) {
            uint32_t b = (uint32_t)u;
            float f;
            memcpy(&f, &b, 4);
            if (f != f || b == 0x80000000u)
                return edb__err(EDB_CORRUPT, "key segment: float payload is %s",
                                f != f ? "NaN" : "-0.0");
            memcpy(v, &f, 4);
        } else {
            double d;
            memcpy(&d, &u, 8);
            if (d != d || u == UINT64_C(0x8000000000000000))
                return edb__err(EDB_CORRUPT, "key segment: double payload is %s",
                                d != d ? "NaN" : "-0.0");
            memcpy(v, &d, 8);
        }
        return 0;
    }
    if (is_signed(type))
        u ^= UINT64_C(1) << (8 * n - 1);
    store_native(v, u, n);
    return 0;
}

int
edb__key_decode(const uint8_t *key, size_t len, size_t *off, edb_coltype type,
                unsigned mode, void *out, size_t cap, size_t *size)
{
    if (key == NULL || off == NULL)
        return edb__err(EDB_INVAL, "key decode: NULL key or offset");
    if (mode & ~KNOWN_MODES)
        return edb__err(EDB_INVAL, "key decode: unknown mode 0x%x", mode);
    bool desc = (mode & EDB__KEY_DESC) != 0;
    int n = fixed_size(type);
    if (n < 0)
        return edb__err(EDB_INVAL, "key decode: unknown column type %d", (int)type);
    size_t at = *off;
    if (at >= len)
        return edb__err(EDB_CORRUPT, "key decode: no segment at offset %zu of %zu", at, len);
    uint8_t prefix = key[at];
    if (prefix == null_prefix(mode)) {
        if (size != NULL)
            *size = 0;
        *off = at + 1;
        return EDB_WRN_NULL;
    }
    if (prefix != PREFIX_VALUE)
        return edb__err(EDB_CORRUPT, "key decode: bad prefix byte 0x%02x at offset %zu",
                        prefix, at);
    at++;
    uint8_t inv = desc ? 0xFF : 0x00;

    if (n > 0) {
        if ((size_t)n > len - at)
            return edb__err(EDB_CORRUPT, "key decode: %s segment at offset %zu is cut short",
                            type_name(type), *off);
        uint8_t p[16], v[16];
        for (int i = 0; i < n; i++)
            p[i] = (uint8_t)(key[at + i] ^ inv);
        EDB_RET(decode_fixed(v, type, p, n));
        int ret = 0;
        if (out != NULL) {
            size_t take = (size_t)n;
            if (cap < take) {
                take = cap;
                ret = EDB_WRN_TRUNCATED;
            }
            memcpy(out, v, take);
        }
        if (size != NULL)
            *size = (size_t)n;
        *off = at + (size_t)n;
        return ret;
    }

    /* TEXT / BINARY: first pass validates and measures, second copies. */
    size_t vlen = 0, i = at;
    for (;;) {
        if (i >= len)
            return edb__err(EDB_CORRUPT, "key decode: %s segment at offset %zu has no terminator",
                            type_name(type), *off);
        uint8_t c = (uint8_t)(key[i] ^ inv);
        if (c != 0) {
            vlen++;
            i++;
            continue;
        }
        if (i + 1 >= len)
            return edb__err(EDB_CORRUPT, "key decode: %s segment at offset %zu is cut short",
                            type_name(type), *off);
        uint8_t e = (uint8_t)(key[i + 1] ^ inv);
        if (e == 0x00)
            break;
        if (e != 0xFF || type == EDB_COL_TEXT)
            return edb__err(EDB_CORRUPT, "key decode: bad escape 0x00 0x%02x at offset %zu",
                            e, i);
        vlen++;
        i += 2;
    }
    size_t end = i + 2;
    int ret = 0;
    if (out != NULL) {
        uint8_t *o = out;
        size_t take = vlen < cap ? vlen : cap;
        if (take < vlen)
            ret = EDB_WRN_TRUNCATED;
        if (inv == 0 && take == i - at) {
            memcpy(o, key + at, take);         /* nothing escaped */
        } else {
            size_t w = 0;
            for (size_t r = at; w < take; r++) {
                o[w++] = (uint8_t)(key[r] ^ inv);
                if ((uint8_t)(key[r] ^ inv) == 0)
                    r++;                       /* skip the escape byte */
            }
        }
        if (type == EDB_COL_TEXT && take == vlen && utf8_bad_offset(o, vlen) != vlen)
            return edb__err(EDB_CORRUPT, "key decode: text segment at offset %zu is not UTF-8",
                            *off);
    }
    if (size != NULL)
        *size = vlen;
    *off = end;
    return ret;
}

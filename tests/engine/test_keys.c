/*
 * Property tests of the key codec (engine/key.c).
 *
 * For every column type and every segment mode (ascending, descending, each
 * with and without NULLs high): memcmp order of encodings equals value order
 * (the sign, equality included), decode inverts encode, NULL sorts first in an
 * ascending segment and last in a descending one or with NULLs high,
 * multi-column keys order lexicographically by segment, a key of the
 * first k segments is a byte prefix of the full key, the successor of a prefix
 * key lies after every extension and before the next value, EDB_TOOBIG at the
 * capacity, EDB_INVAL for wrong sizes, NaN and bad UTF-8, EDB_CORRUPT for
 * malformed segments.
 *
 * Theories cover the edge values pairwise; seeded random loops add volume.  The
 * seed is fixed (reproducible) unless EDB_TEST_SEED is set; failures print it.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <criterion/theories.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "key.h"

#include <lmdb.h>

#define KCAP EDB_MAX_KEY_SIZE
/* One watchdog for every test: Criterion 2.4.1's runner leaks a timeout record
 * (LeakSanitizer reports 48 bytes in criterion_run_all_tests) when tests with
 * different .timeout values overlap, so the ASan build would fail on it. */
#define KEYS_TIMEOUT 60

/* ---- helpers ------------------------------------------------------------ */

static const edb_coltype all_types[] = {
    EDB_COL_BOOL, EDB_COL_INT8, EDB_COL_INT16, EDB_COL_INT32, EDB_COL_INT64,
    EDB_COL_UINT8, EDB_COL_UINT16, EDB_COL_UINT32, EDB_COL_UINT64,
    EDB_COL_FLOAT, EDB_COL_DOUBLE, EDB_COL_DATETIME, EDB_COL_GUID,
    EDB_COL_TEXT, EDB_COL_BINARY,
};
#define NTYPES (sizeof all_types / sizeof all_types[0])

static int
sgn(long long x)
{
    return (x > 0) - (x < 0);
}

/* memcmp order of byte strings, a proper prefix first (LMDB's default order). */
static int
bytes_cmp(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return sgn(c);
    return (na > nb) - (na < nb);
}

static size_t
native_size(edb_coltype t)
{
    switch (t) {
    case EDB_COL_BOOL: case EDB_COL_INT8: case EDB_COL_UINT8: return 1;
    case EDB_COL_INT16: case EDB_COL_UINT16: return 2;
    case EDB_COL_INT32: case EDB_COL_UINT32: case EDB_COL_FLOAT: return 4;
    case EDB_COL_GUID: return 16;
    case EDB_COL_TEXT: case EDB_COL_BINARY: return 0;
    default: return 8;
    }
}

/* A typed value in native form. */
typedef struct tval {
    edb_coltype type;
    bool null;
    size_t size;
    uint8_t b[KCAP + 16];
} tval;

static int
tval_cmp(const tval *x, const tval *y)
{
    if (x->null || y->null)
        return (int)!x->null - (int)!y->null;
    switch (x->type) {
#define ICMP(T) { T a, b; memcpy(&a, x->b, sizeof a); memcpy(&b, y->b, sizeof b); \
                  return (a > b) - (a < b); }
    case EDB_COL_BOOL: case EDB_COL_UINT8: ICMP(uint8_t)
    case EDB_COL_INT8: ICMP(int8_t)
    case EDB_COL_INT16: ICMP(int16_t)
    case EDB_COL_UINT16: ICMP(uint16_t)
    case EDB_COL_INT32: ICMP(int32_t)
    case EDB_COL_UINT32: ICMP(uint32_t)
    case EDB_COL_INT64: case EDB_COL_DATETIME: ICMP(int64_t)
    case EDB_COL_UINT64: ICMP(uint64_t)
    case EDB_COL_FLOAT: ICMP(float)
    case EDB_COL_DOUBLE: ICMP(double)
#undef ICMP
    default:
        return bytes_cmp(x->b, x->size, y->b, y->size);
    }
}

/* Value equality as the codec promises to give back (floats: -0.0 == +0.0). */
static bool
tval_eq(const tval *x, const tval *y)
{
    return x->null == y->null && (x->null || (x->size == y->size && tval_cmp(x, y) == 0));
}

static void
tval_str(char *out, size_t n, const tval *v)
{
    if (v->null) {
        snprintf(out, n, "NULL");
        return;
    }
    int k = 0;
    switch (v->type) {
    case EDB_COL_FLOAT: { float f; memcpy(&f, v->b, 4); k = snprintf(out, n, "%a ", f); break; }
    case EDB_COL_DOUBLE: { double d; memcpy(&d, v->b, 8); k = snprintf(out, n, "%a ", d); break; }
    default: break;
    }
    for (size_t i = 0; i < v->size && (size_t)k + 3 < n && i < 40; i++)
        k += snprintf(out + k, n - (size_t)k, "%02x", v->b[i]);
}

/* The order of two values in a segment of mode @mode (key.h): values in the
 * segment's direction; NULL equal to NULL, before every value when the mode
 * is 0 (ascending, NULLs low), after every value otherwise (descending, or
 * NULLs high). */
static int
mode_cmp(const tval *x, const tval *y, unsigned mode)
{
    if (x->null || y->null) {
        int low = (int)!x->null - (int)!y->null;      /* NULL first */
        return mode == 0 ? low : -low;
    }
    int c = tval_cmp(x, y);
    return (mode & EDB__KEY_DESC) ? -c : c;
}

static int
enc(uint8_t *buf, size_t cap, size_t *len, const tval *v, unsigned mode)
{
    return edb__key_append(buf, cap, len, v->type, v->null ? NULL : v->b, v->size, mode);
}

/* ---- random values ------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t
rnd(void)
{
    uint64_t x = rng_state;                    /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * UINT64_C(2685821657736338717);
}

static uint64_t
seed_rng(uint64_t fixed)
{
    const char *e = getenv("EDB_TEST_SEED");
    uint64_t s = e ? strtoull(e, NULL, 0) : fixed;
    rng_state = s ? s : 1;
    return s;
}

static void
put_utf8(tval *v, uint32_t cp)
{
    uint8_t *p = v->b + v->size;
    if (cp < 0x80) {
        p[0] = (uint8_t)cp; v->size += 1;
    } else if (cp < 0x800) {
        p[0] = (uint8_t)(0xC0 | cp >> 6); p[1] = (uint8_t)(0x80 | (cp & 0x3F)); v->size += 2;
    } else if (cp < 0x10000) {
        p[0] = (uint8_t)(0xE0 | cp >> 12); p[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        p[2] = (uint8_t)(0x80 | (cp & 0x3F)); v->size += 3;
    } else {
        p[0] = (uint8_t)(0xF0 | cp >> 18); p[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        p[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); p[3] = (uint8_t)(0x80 | (cp & 0x3F));
        v->size += 4;
    }
}

static const double dbl_edges[] = {
    0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, DBL_MAX, -DBL_MAX, DBL_MIN, -DBL_MIN,
    DBL_TRUE_MIN, -DBL_TRUE_MIN, 2 * DBL_TRUE_MIN, 0.5, -0.5, 1e300, -1e-300,
};
static const float flt_edges[] = {
    0.0f, -0.0f, 1.0f, -1.0f, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN,
    FLT_TRUE_MIN, -FLT_TRUE_MIN, 3 * FLT_TRUE_MIN, 0.5f, -0.5f,
};

/* A random value of type t.  narrow: pick from a handful of values so that
 * equal values (ties in leading segments) are frequent. */
static void
gen(tval *v, edb_coltype t, bool narrow, bool allow_null)
{
    memset(v, 0, sizeof *v);
    v->type = t;
    if (allow_null && rnd() % 8 == 0) {
        v->null = true;
        return;
    }
    size_t n = native_size(t);
    v->size = n;
    uint64_t r = rnd();
    int mode = (int)(rnd() % 4);               /* 0: edge, else random */
    if (narrow)
        r %= 3;
    switch (t) {
    case EDB_COL_BOOL:
        v->b[0] = (uint8_t)(r & 1);
        break;
    case EDB_COL_FLOAT: {
        float f;
        if (narrow || mode == 0) {
            f = flt_edges[r % (sizeof flt_edges / sizeof flt_edges[0])];
        } else {
            uint32_t u;
            do {
                u = (uint32_t)rnd();
                memcpy(&f, &u, 4);
            } while (f != f);
        }
        memcpy(v->b, &f, 4);
        break;
    }
    case EDB_COL_DOUBLE: {
        double d;
        if (narrow || mode == 0) {
            d = dbl_edges[r % (sizeof dbl_edges / sizeof dbl_edges[0])];
        } else {
            uint64_t u;
            do {
                u = rnd();
                memcpy(&d, &u, 8);
            } while (d != d);
        }
        memcpy(v->b, &d, 8);
        break;
    }
    case EDB_COL_TEXT: {
        size_t len = narrow ? r : (mode == 0 ? rnd() % 200 : rnd() % 12);
        for (size_t i = 0; i < len && v->size < 250; i++) {
            uint32_t cp;
            switch (rnd() % 5) {
            case 0: cp = 0x01 + (uint32_t)(rnd() % 0x7F); break;
            case 1: cp = 0x61 + (uint32_t)(rnd() % 3); break;
            case 2: cp = 0x80 + (uint32_t)(rnd() % 0x780); break;
            case 3: cp = 0x800 + (uint32_t)(rnd() % 0xF800);
                    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFF;
                    break;
            default: cp = 0x10000 + (uint32_t)(rnd() % 0x100000); break;
            }
            if (narrow)
                cp = 0x61 + (uint32_t)(rnd() % 2);
            put_utf8(v, cp);
        }
        break;
    }
    case EDB_COL_BINARY: {
        static const uint8_t special[] = { 0x00, 0x01, 0xFE, 0xFF };
        size_t len = narrow ? r : (mode == 0 ? rnd() % 200 : rnd() % 12);
        for (size_t i = 0; i < len; i++)
            v->b[i] = (narrow || rnd() % 2) ? special[rnd() % (narrow ? 2 : 4)] : (uint8_t)rnd();
        v->size = len;
        break;
    }
    default: {
        /* integers, DATETIME, GUID: random bytes, or an edge (0, -1, min, max, 1) */
        if (narrow) {
            memset(v->b, 0, n);
            v->b[0] = (uint8_t)r;
        } else if (mode == 0) {
            static const uint8_t edge_lo[] = { 0x00, 0xFF, 0x00, 0xFF, 0x01 };
            static const uint8_t edge_hi[] = { 0x00, 0xFF, 0x80, 0x7F, 0x00 };
            int e = (int)(rnd() % 5);
            memset(v->b, edge_lo[e], n);
            v->b[n - 1] = edge_hi[e];           /* little-endian host: top byte last */
            if (e == 4) {
                memset(v->b, 0, n);
                v->b[0] = 1;
            }
            if (t == EDB_COL_GUID)
                v->b[rnd() % 16] = (uint8_t)rnd();
        } else {
            for (size_t i = 0; i < n; i++)
                v->b[i] = (uint8_t)rnd();
        }
        break;
    }
    }
}

/* Encode v alone, check the round trip, return the encoding. */
static size_t
enc_checked(uint8_t *buf, const tval *v, unsigned desc)
{
    size_t len = 0;
    int rc = enc(buf, KCAP + 16, &len, v, desc);
    char s[128];
    tval_str(s, sizeof s, v);
    cr_assert_eq(rc, 0, "encode type %d desc %d value %s: %s", v->type, desc, s, edb_error_last());
    tval back;
    memset(&back, 0, sizeof back);
    back.type = v->type;
    size_t off = 0, sz = 77;
    rc = edb__key_decode(buf, len, &off, v->type, desc, back.b, sizeof back.b, &sz);
    if (rc == EDB_WRN_NULL) {
        back.null = true;
        rc = 0;
    }
    back.size = sz;
    cr_assert_eq(rc, 0, "decode type %d value %s: %s", v->type, s, edb_error_last());
    cr_assert_eq(off, len, "decode of %s stopped at %zu of %zu", s, off, len);
    cr_assert(tval_eq(&back, v), "round trip type %d desc %d value %s", v->type, desc, s);
    return len;
}

/* The central property for one pair of values of one type. */
static void
check_pair(const tval *x, const tval *y, unsigned desc)
{
    uint8_t a[KCAP + 16], b[KCAP + 16];
    size_t la = enc_checked(a, x, desc), lb = enc_checked(b, y, desc);
    int want = mode_cmp(x, y, desc);
    char sx[128], sy[128];
    tval_str(sx, sizeof sx, x);
    tval_str(sy, sizeof sy, y);
    cr_assert_eq(bytes_cmp(a, la, b, lb), want, "type %d desc %d: %s vs %s: bytes order %d, values %d",
                 x->type, desc, sx, sy, bytes_cmp(a, la, b, lb), want);
}

#define SET(v, T, t, x) do { memset(&(v), 0, sizeof (v)); (v).type = (t); (v).size = sizeof(T); \
                             T tmp_ = (x); memcpy((v).b, &tmp_, sizeof(T)); } while (0)

/* ---- theories: edge values pairwise, both directions --------------------- */

#define INT_THEORY(T, t, name, ...)                                                  \
    TheoryDataPoints(keys_theory, name) = {                                          \
        DataPoints(T, __VA_ARGS__), DataPoints(T, __VA_ARGS__), DataPoints(unsigned, 0, 1, 2, 3), \
    };                                                                               \
    Theory((T x, T y, unsigned desc), keys_theory, name, .timeout = KEYS_TIMEOUT)              \
    {                                                                                \
        tval a, b;                                                                   \
        SET(a, T, t, x);                                                             \
        SET(b, T, t, y);                                                             \
        check_pair(&a, &b, desc);                                                    \
    }

INT_THEORY(int8_t, EDB_COL_INT8, int8, INT8_MIN, INT8_MIN + 1, -2, -1, 0, 1, 2, INT8_MAX - 1, INT8_MAX)
INT_THEORY(int16_t, EDB_COL_INT16, int16, INT16_MIN, -256, -255, -1, 0, 1, 255, 256, INT16_MAX)
INT_THEORY(int32_t, EDB_COL_INT32, int32, INT32_MIN, INT32_MIN + 1, -65536, -1, 0, 1, 65535, 65536,
           INT32_MAX)
INT_THEORY(int64_t, EDB_COL_INT64, int64, INT64_MIN, INT64_MIN + 1, -(INT64_C(1) << 32), -1, 0, 1,
           INT64_C(1) << 32, INT64_MAX - 1, INT64_MAX)
INT_THEORY(int64_t, EDB_COL_DATETIME, datetime, INT64_MIN, -1, 0, 1, INT64_C(1700000000000000),
           INT64_MAX)
INT_THEORY(uint8_t, EDB_COL_UINT8, uint8, 0, 1, 0x7F, 0x80, 0xFE, 0xFF)
INT_THEORY(uint16_t, EDB_COL_UINT16, uint16, 0, 1, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF)
INT_THEORY(uint32_t, EDB_COL_UINT32, uint32, 0, 1, 0xFF, 0x100, 0x7FFFFFFF, 0x80000000u, UINT32_MAX)
INT_THEORY(uint64_t, EDB_COL_UINT64, uint64, 0, 1, 0xFF, UINT64_C(0x7FFFFFFFFFFFFFFF),
           UINT64_C(0x8000000000000000), UINT64_MAX)
INT_THEORY(uint8_t, EDB_COL_BOOL, bool_, 0, 1)
INT_THEORY(double, EDB_COL_DOUBLE, double_, -INFINITY, -DBL_MAX, -1.0, -DBL_MIN, -DBL_TRUE_MIN, -0.0,
           0.0, DBL_TRUE_MIN, 2 * DBL_TRUE_MIN, DBL_MIN, 0.1, 1.0, DBL_MAX, INFINITY)
INT_THEORY(float, EDB_COL_FLOAT, float_, -INFINITY, -FLT_MAX, -1.0f, -FLT_MIN, -FLT_TRUE_MIN, -0.0f,
           0.0f, FLT_TRUE_MIN, FLT_MIN, 0.1f, 1.0f, FLT_MAX, INFINITY)

/* BINARY (and TEXT where the bytes are UTF-8): strings with 0x00/0xFF bytes,
 * prefixes of each other, the empty string.  Given as hex so 0x00 fits. */
TheoryDataPoints(keys_theory, binary) = {
    DataPoints(const char *, "", "00", "0000", "00ff", "01", "61", "6100", "6101", "61ff", "6161",
               "ff", "ff00", "ffff", "fffe"),
    DataPoints(const char *, "", "00", "0000", "00ff", "01", "61", "6100", "6101", "61ff", "6161",
               "ff", "ff00", "ffff", "fffe"),
    DataPoints(unsigned, 0, 1, 2, 3),
};

static void
from_hex(tval *v, edb_coltype t, const char *hex)
{
    memset(v, 0, sizeof *v);
    v->type = t;
    for (; hex[0] && hex[1]; hex += 2) {
        unsigned x;
        sscanf(hex, "%2x", &x);
        v->b[v->size++] = (uint8_t)x;
    }
}

Theory((const char *x, const char *y, unsigned desc), keys_theory, binary, .timeout = KEYS_TIMEOUT)
{
    tval a, b;
    from_hex(&a, EDB_COL_BINARY, x);
    from_hex(&b, EDB_COL_BINARY, y);
    check_pair(&a, &b, desc);
}

TheoryDataPoints(keys_theory, text) = {
    DataPoints(const char *, "", "a", "aa", "ab", "b", "\x7f", "\xc2\x80", "\xc3\xa9", "\xef\xbf\xbf",
               "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "a\xf4\x8f\xbf\xbf"),
    DataPoints(const char *, "", "a", "aa", "ab", "b", "\x7f", "\xc2\x80", "\xc3\xa9", "\xef\xbf\xbf",
               "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "a\xf4\x8f\xbf\xbf"),
    DataPoints(unsigned, 0, 1, 2, 3),
};

Theory((const char *x, const char *y, unsigned desc), keys_theory, text, .timeout = KEYS_TIMEOUT)
{
    tval a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.type = b.type = EDB_COL_TEXT;
    a.size = strlen(x);
    b.size = strlen(y);
    memcpy(a.b, x, a.size);
    memcpy(b.b, y, b.size);
    /* UTF-8 byte order is code point order, so byte comparison is the value order. */
    check_pair(&a, &b, desc);
}

/* ---- seeded random volume ------------------------------------------------ */

Test(keys, random_pairs_every_type, .timeout = KEYS_TIMEOUT)
{
    uint64_t seed = seed_rng(0x5eedULL);
    cr_log_info("seed %llu", (unsigned long long)seed);
    static tval x, y;
    for (size_t ti = 0; ti < NTYPES; ti++)
        for (int i = 0; i < 4000; i++) {
            bool narrow = i % 4 == 0;
            gen(&x, all_types[ti], narrow, true);
            gen(&y, all_types[ti], narrow, true);
            check_pair(&x, &y, (unsigned)i & 3);
            check_pair(&x, &x, (unsigned)i & 3);   /* equal values, equal bytes */
        }
}

Test(keys, edge_values_round_trip, .timeout = KEYS_TIMEOUT)
{
    tval v;
    SET(v, int64_t, EDB_COL_INT64, INT64_MIN); enc_checked((uint8_t[32]){0}, &v, false);
    for (size_t i = 0; i < sizeof dbl_edges / sizeof dbl_edges[0]; i++)
        for (int d = 0; d < 2; d++) {
            uint8_t buf[32];
            SET(v, double, EDB_COL_DOUBLE, dbl_edges[i]);
            enc_checked(buf, &v, d);
        }
    /* -0.0 and +0.0 are equal values: equal encodings, and -0.0 decodes as +0.0 */
    tval m, p;
    SET(m, double, EDB_COL_DOUBLE, -0.0);
    SET(p, double, EDB_COL_DOUBLE, 0.0);
    uint8_t a[16], b[16];
    size_t la = enc_checked(a, &m, false), lb = enc_checked(b, &p, false);
    cr_assert_eq(la, lb);
    cr_assert_eq(memcmp(a, b, la), 0);
    double back = -1;
    size_t off = 0;
    cr_assert_eq(edb__key_decode(a, la, &off, EDB_COL_DOUBLE, false, &back, 8, NULL), 0);
    cr_assert(back == 0.0 && !signbit(back));
    SET(m, float, EDB_COL_FLOAT, -0.0f);
    SET(p, float, EDB_COL_FLOAT, 0.0f);
    la = enc_checked(a, &m, true);
    lb = enc_checked(b, &p, true);
    cr_assert(la == lb && memcmp(a, b, la) == 0);
    /* the documented examples of doc/key-encoding.md */
    static const struct { edb_coltype t; const char *val; size_t vn; unsigned desc; const char *hex; } ex[] = {
        { EDB_COL_INT32, NULL, 0, 0, "01" },
        { EDB_COL_INT32, NULL, 0, EDB__KEY_DESC, "03" },
        { EDB_COL_INT32, NULL, 0, EDB__KEY_NULLS_HIGH, "03" },
        { EDB_COL_INT32, "\x05\0\0\0", 4, EDB__KEY_NULLS_HIGH, "0280000005" },
        { EDB_COL_INT32, "\x05\0\0\0", 4, false, "0280000005" },
        { EDB_COL_INT32, "\x05\0\0\0", 4, true, "027ffffffa" },
        { EDB_COL_TEXT, "", 0, false, "020000" },
        { EDB_COL_TEXT, "", 0, true, "02ffff" },
        { EDB_COL_TEXT, "a", 1, false, "02610000" },
        { EDB_COL_TEXT, "a", 1, true, "029effff" },
        { EDB_COL_BINARY, "a\0", 2, false, "026100ff0000" },
        { EDB_COL_BINARY, "a\0", 2, true, "029eff00ffff" },
        { EDB_COL_TEXT, "ab", 2, false, "0261620000" },
        { EDB_COL_TEXT, "ab", 2, true, "029e9dffff" },
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        uint8_t buf[32];
        char hex[80] = "";
        size_t len = 0;
        cr_assert_eq(edb__key_append(buf, sizeof buf, &len, ex[i].t, ex[i].val, ex[i].vn, ex[i].desc), 0);
        for (size_t k = 0; k < len; k++)
            sprintf(hex + 2 * k, "%02x", buf[k]);
        cr_assert_str_eq(hex, ex[i].hex, "example %zu", i);
    }
    double mone = -1.0;
    size_t len = 0;
    uint8_t buf[16];
    cr_assert_eq(edb__key_append(buf, sizeof buf, &len, EDB_COL_DOUBLE, &mone, 8, false), 0);
    cr_assert_eq(memcmp(buf, "\x02\x40\x0f\xff\xff\xff\xff\xff\xff", 9), 0);
}

Test(keys, long_text_and_binary_round_trip, .timeout = KEYS_TIMEOUT)
{
    static tval v;
    static uint8_t buf[KCAP + 16];
    memset(&v, 0, sizeof v);
    v.type = EDB_COL_TEXT;
    v.size = KCAP - 3;                         /* the longest text that fits */
    for (size_t i = 0; i < v.size; i++)
        v.b[i] = (uint8_t)('a' + i % 26);
    cr_assert_eq(enc_checked(buf, &v, false), KCAP);
    cr_assert_eq(enc_checked(buf, &v, true), KCAP);
    memset(&v, 0, sizeof v);
    v.type = EDB_COL_BINARY;
    v.size = (KCAP - 3) / 2;                   /* all zero bytes: each escaped */
    cr_assert_eq(enc_checked(buf, &v, false), 3 + 2 * v.size);
    memset(v.b, 0xFF, v.size);
    cr_assert_eq(enc_checked(buf, &v, true), 3 + v.size);
}

/* ---- NULL ----------------------------------------------------------------- */

/* NULL sorts before every value in an ascending segment (mode 0), after every
 * value in a descending one and in any segment with NULLs high (ESE's
 * order, EDB_IDX_SORT_NULLS_HIGH); two NULLs are equal. */
Test(keys, null_position_by_mode, .timeout = KEYS_TIMEOUT)
{
    seed_rng(0x0011);
    static tval n, v;
    for (size_t ti = 0; ti < NTYPES; ti++) {
        memset(&n, 0, sizeof n);
        n.type = all_types[ti];
        n.null = true;
        for (unsigned d = 0; d < 4; d++) {
            int want = d == 0 ? -1 : 1;
            check_pair(&n, &n, d);
            for (int i = 0; i < 300; i++) {
                gen(&v, all_types[ti], i % 3 == 0, false);
                uint8_t a[KCAP + 16], b[KCAP + 16];
                size_t la = enc_checked(a, &n, d), lb = enc_checked(b, &v, d);
                cr_assert_eq(bytes_cmp(a, la, b, lb), want, "type %d mode %u", all_types[ti], d);
            }
        }
        /* NULL in a later segment too: (1, NULL) < (1, v) < (2, NULL) ascending,
         * (1, v) < (1, NULL) < (2, v) with NULLs high */
        uint8_t k1[KCAP + 16], k2[KCAP + 16], k3[KCAP + 16];
        size_t l1 = 0, l2 = 0, l3 = 0;
        int32_t one = 1, two = 2;
        gen(&v, all_types[ti], false, false);
        for (unsigned d = 0; d < 4; d++) {
            l1 = l2 = l3 = 0;
            cr_assert_eq(edb__key_append(k1, sizeof k1, &l1, EDB_COL_INT32, &one, 4, 0), 0);
            cr_assert_eq(enc(k1, sizeof k1, &l1, &n, d), 0);
            cr_assert_eq(edb__key_append(k2, sizeof k2, &l2, EDB_COL_INT32, &one, 4, 0), 0);
            cr_assert_eq(enc(k2, sizeof k2, &l2, &v, d), 0);
            cr_assert_eq(edb__key_append(k3, sizeof k3, &l3, EDB_COL_INT32, &two, 4, 0), 0);
            cr_assert_eq(enc(k3, sizeof k3, &l3, d == 0 ? &n : &v, d), 0);
            cr_assert_eq(bytes_cmp(k1, l1, k2, l2), d == 0 ? -1 : 1, "mode %u", d);
            cr_assert_eq(bytes_cmp(k1, l1, k3, l3), -1, "mode %u", d);
            cr_assert_eq(bytes_cmp(k2, l2, k3, l3), -1, "mode %u", d);
        }
    }
    /* the prefix bytes themselves (doc/key-encoding.md) */
    uint8_t b[4];
    for (unsigned d = 0; d < 4; d++) {
        size_t len = 0;
        cr_assert_eq(enc(b, sizeof b, &len, &n, d), 0);
        cr_assert(len == 1 && b[0] == (d == 0 ? 0x01 : 0x03), "mode %u: NULL is %02x", d, b[0]);
    }
    size_t len = 0;
    cr_assert_eq(enc(b, sizeof b, &len, &n, 4), EDB_INVAL);
    cr_assert_eq(len, 0);
}

/* ---- multi-column keys ----------------------------------------------------- */

#define MAXSEG EDB_MAX_KEY_SEGMENTS

typedef struct schema {
    size_t n;
    edb_coltype t[MAXSEG];
    unsigned desc[MAXSEG];                     /* the segment's mode (key.h) */
} schema;

typedef struct row {
    tval v[MAXSEG];
    uint8_t key[KCAP + 16];
    size_t len;
    size_t seg_end[MAXSEG];                    /* byte offset after segment i */
} row;

/* Segment-wise lexicographic value comparison of the first k columns. */
static int
row_cmp(const schema *s, const row *a, const row *b, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        int c = mode_cmp(&a->v[i], &b->v[i], s->desc[i]);
        if (c != 0)
            return c;
    }
    return 0;
}

/* Generate a row whose key fits; returns false when it does not (TOOBIG). */
static bool
row_gen(row *r, const schema *s, bool narrow)
{
    r->len = 0;
    for (size_t i = 0; i < s->n; i++) {
        gen(&r->v[i], s->t[i], narrow, true);
        if (r->v[i].size > 40) {               /* keep 12-segment keys mostly under the limit */
            r->v[i].size = 40;
            while (r->v[i].type == EDB_COL_TEXT && (r->v[i].b[r->v[i].size] & 0xC0) == 0x80)
                r->v[i].size--;                /* cut on a character boundary */
        }
        int rc = enc(r->key, KCAP, &r->len, &r->v[i], s->desc[i]);
        if (rc == EDB_TOOBIG)
            return false;
        cr_assert_eq(rc, 0, "%s", edb_error_last());
        r->seg_end[i] = r->len;
    }
    /* decode segment by segment: every value back, ending exactly at each boundary */
    size_t off = 0;
    for (size_t i = 0; i < s->n; i++) {
        static tval back;
        size_t sz = 0;
        int rc = edb__key_decode(r->key, r->len, &off, s->t[i], s->desc[i], back.b, sizeof back.b, &sz);
        cr_assert(rc == 0 || rc == EDB_WRN_NULL, "segment %zu: %s", i, edb_error_last());
        back.type = s->t[i];
        back.null = rc == EDB_WRN_NULL;
        back.size = sz;
        cr_assert(tval_eq(&back, &r->v[i]), "segment %zu of %zu round trip", i, s->n);
        cr_assert_eq(off, r->seg_end[i]);
    }
    return true;
}

static void
check_rows(const schema *s, const row *a, const row *b)
{
    int want = row_cmp(s, a, b, s->n);
    int got = bytes_cmp(a->key, a->len, b->key, b->len);
    cr_assert_eq(got, want, "multi-column key order: bytes %d, values %d (%zu segments)", got, want, s->n);
    /* prefix keys of the first k segments order as the first k values */
    for (size_t k = 1; k <= s->n; k++) {
        int wk = row_cmp(s, a, b, k);
        int gk = bytes_cmp(a->key, a->seg_end[k - 1], b->key, b->seg_end[k - 1]);
        cr_assert_eq(gk, wk, "prefix of %zu segments", k);
    }
}

static void
schema_random(schema *s)
{
    s->n = 1 + rnd() % MAXSEG;
    for (size_t i = 0; i < s->n; i++) {
        s->t[i] = all_types[rnd() % NTYPES];
        s->desc[i] = (unsigned)(rnd() & 3);
    }
}

Test(keys, mixed_int32_asc_text_desc_double_asc, .timeout = KEYS_TIMEOUT)
{
    seed_rng(0x3c01);
    schema s = { 3, { EDB_COL_INT32, EDB_COL_TEXT, EDB_COL_DOUBLE },
                 { 0, EDB__KEY_DESC, EDB__KEY_NULLS_HIGH } };
    enum { N = 300 };
    static row rows[N];
    for (int i = 0; i < N; i++)
        cr_assert(row_gen(&rows[i], &s, i % 2 == 0));
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            check_rows(&s, &rows[i], &rows[j]);
}

Test(keys, random_schemas_order_by_segments, .timeout = KEYS_TIMEOUT)
{
    uint64_t seed = seed_rng(0x3c02);
    cr_log_info("seed %llu", (unsigned long long)seed);
    static row rows[40];
    for (int round = 0; round < 150; round++) {
        schema s;
        schema_random(&s);
        int n = 0;
        for (int tries = 0; n < 40 && tries < 200; tries++)
            if (row_gen(&rows[n], &s, rnd() % 3 != 0))
                n++;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                check_rows(&s, &rows[i], &rows[j]);
    }
}

/* ---- prefix keys and the successor ------------------------------------------ */

Test(keys, prefix_key_is_byte_prefix, .timeout = KEYS_TIMEOUT)
{
    seed_rng(0x3c03);
    static row r;
    for (int round = 0; round < 2000; round++) {
        schema s;
        schema_random(&s);
        if (!row_gen(&r, &s, false))
            continue;
        /* encode the first k values alone: the same bytes as the full key's start */
        for (size_t k = 1; k <= s.n; k++) {
            uint8_t p[KCAP + 16];
            size_t pl = 0;
            for (size_t i = 0; i < k; i++)
                cr_assert_eq(enc(p, sizeof p, &pl, &r.v[i], s.desc[i]), 0);
            cr_assert_eq(pl, r.seg_end[k - 1]);
            cr_assert_eq(memcmp(p, r.key, pl), 0, "prefix of %zu segments", k);
        }
    }
}

Test(keys, successor_bounds_every_extension, .timeout = KEYS_TIMEOUT)
{
    uint64_t seed = seed_rng(0x3c04);
    cr_log_info("seed %llu", (unsigned long long)seed);
    static row rows[60];
    for (int round = 0; round < 60; round++) {
        schema s;
        schema_random(&s);
        int n = 0;
        for (int tries = 0; n < 60 && tries < 300; tries++)
            if (row_gen(&rows[n], &s, true))
                n++;
        for (int i = 0; i < n; i++)
            for (size_t k = 1; k <= s.n; k++) {
                uint8_t succ[KCAP + 16];
                size_t sl = rows[i].seg_end[k - 1];
                memcpy(succ, rows[i].key, sl);
                cr_assert_eq(edb__key_successor(succ, &sl), 0);
                for (int j = 0; j < n; j++) {
                    int c = row_cmp(&s, &rows[j], &rows[i], k);
                    int b = bytes_cmp(rows[j].key, rows[j].len, succ, sl);
                    if (c <= 0)
                        cr_assert_eq(b, -1, "row with prefix <= P must sort before succ(P), k=%zu", k);
                    else if (k < s.n)
                        cr_assert_eq(b, 1, "row with prefix > P must sort after succ(P), k=%zu", k);
                    else                       /* succ(P) may be the next value's own key */
                        cr_assert_geq(b, 0, "row > P must not sort before succ(P), k=%zu", k);
                }
            }
    }
}

Test(keys, successor_edges, .timeout = KEYS_TIMEOUT)
{
    uint8_t b[4] = { 0x01, 0x02, 0xFF, 0xFF };
    size_t n = 4;
    cr_assert_eq(edb__key_successor(b, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert(b[0] == 0x01 && b[1] == 0x03);
    uint8_t c[2] = { 0x05, 0x00 };
    n = 2;
    cr_assert_eq(edb__key_successor(c, &n), 0);
    cr_assert(n == 2 && c[1] == 0x01);
    uint8_t f[3] = { 0xFF, 0xFF, 0xFF };
    n = 3;
    cr_assert_eq(edb__key_successor(f, &n), EDB_NOTFOUND);
    n = 0;
    cr_assert_eq(edb__key_successor(f, &n), EDB_NOTFOUND);
    cr_assert_eq(edb__key_successor(NULL, &n), EDB_INVAL);
    cr_assert_eq(edb__key_successor(f, NULL), EDB_INVAL);
}

/* ---- limits and bad input -------------------------------------------------- */

Test(keys, toobig_exactly_at_the_limit, .timeout = KEYS_TIMEOUT)
{
    seed_rng(0x3c05);
    static tval v;
    static uint8_t buf[KCAP + 64];
    for (size_t ti = 0; ti < NTYPES; ti++)
        for (int i = 0; i < 200; i++) {
            gen(&v, all_types[ti], false, true);
            bool d = i & 1;
            size_t need = 0;
            cr_assert_eq(enc(buf, sizeof buf, &need, &v, d), 0);
            /* after a few bytes already used: exactly enough fits, one less is TOOBIG */
            size_t used = rnd() % 10;
            size_t len = used;
            cr_assert_eq(enc(buf, used + need, &len, &v, d), 0);
            cr_assert_eq(len, used + need);
            len = used;
            memset(buf + used, 0xAB, need);
            cr_assert_eq(enc(buf, used + need - 1, &len, &v, d), EDB_TOOBIG, "type %d", all_types[ti]);
            cr_assert_eq(len, used, "*len unchanged on TOOBIG");
            cr_assert_str_neq(edb_error_last(), "");
        }
    /* a whole key: after a 4-byte segment, 493 non-zero bytes fit exactly, 494 do not;
     * zero bytes count twice (escaped) */
    static char xs[KCAP], zs[KCAP];
    memset(xs, 'x', sizeof xs);
    size_t len = 0;
    cr_assert_eq(edb__key_append(buf, KCAP, &len, EDB_COL_TEXT, xs, 1, false), 0);
    cr_assert_eq(len, 4);
    cr_assert_eq(edb__key_append(buf, KCAP, &len, EDB_COL_TEXT, xs, KCAP - 7, false), 0);
    cr_assert_eq(len, KCAP);
    len = 4;
    cr_assert_eq(edb__key_append(buf, KCAP, &len, EDB_COL_TEXT, xs, KCAP - 6, true), EDB_TOOBIG);
    cr_assert_eq(len, 4);
    cr_assert_eq(edb__key_append(buf, KCAP, &len, EDB_COL_BINARY, zs, (KCAP - 7) / 2 + 1, false),
                 EDB_TOOBIG);
    cr_assert_eq(len, 4);
    cr_assert_eq(edb__key_append(buf, KCAP, &len, EDB_COL_BINARY, zs, (KCAP - 7) / 2, false), 0);
    cr_assert_eq(len, 4 + 3 + 2 * ((KCAP - 7) / 2));
    /* a huge size never wraps the arithmetic */
    len = 4;
    cr_assert_eq(edb__key_append(buf, KCAP, &len, EDB_COL_BINARY, zs, SIZE_MAX, false), EDB_TOOBIG);
    int64_t i64 = 7;
    size_t full = KCAP;
    cr_assert_eq(edb__key_append(buf, KCAP, &full, EDB_COL_INT64, NULL, 0, false), EDB_TOOBIG);
    full = KCAP - 9;
    cr_assert_eq(edb__key_append(buf, KCAP, &full, EDB_COL_INT64, &i64, 8, false), 0);
    cr_assert_eq(full, KCAP);
    full = KCAP + 1;
    cr_assert_eq(edb__key_append(buf, KCAP, &full, EDB_COL_INT64, &i64, 8, false), EDB_INVAL);
}

Test(keys, inval_wrong_sizes_nan_bad_utf8, .timeout = KEYS_TIMEOUT)
{
    uint8_t buf[64], val[32] = { 0 };
    for (size_t ti = 0; ti < NTYPES; ti++) {
        size_t n = native_size(all_types[ti]);
        if (n == 0)
            continue;
        size_t wrong[] = { 0, n - 1, n + 1, 2 * n };
        for (size_t w = 0; w < 4; w++) {
            if (wrong[w] == n || (n == 1 && w == 1))
                continue;
            size_t len = 3;
            cr_assert_eq(edb__key_append(buf, sizeof buf, &len, all_types[ti], val, wrong[w], false),
                         EDB_INVAL, "type %d size %zu", all_types[ti], wrong[w]);
            cr_assert_eq(len, 3);
        }
    }
    uint8_t two = 2;
    size_t len = 0;
    cr_assert_eq(edb__key_append(buf, sizeof buf, &len, EDB_COL_BOOL, &two, 1, false), EDB_INVAL);
    cr_assert_eq(edb__key_append(buf, sizeof buf, &len, (edb_coltype)0, val, 1, false), EDB_INVAL);
    cr_assert_eq(edb__key_append(buf, sizeof buf, &len, (edb_coltype)99, val, 1, false), EDB_INVAL);
    cr_assert_eq(edb__key_append(NULL, sizeof buf, &len, EDB_COL_INT8, val, 1, false), EDB_INVAL);
    cr_assert_eq(edb__key_append(buf, sizeof buf, NULL, EDB_COL_INT8, val, 1, false), EDB_INVAL);

    double dn[] = { NAN, -NAN };
    uint64_t nanbits[] = { UINT64_C(0x7FF0000000000001), UINT64_C(0xFFF8000000000000),
                           UINT64_C(0x7FFFFFFFFFFFFFFF) };
    for (int d = 0; d < 2; d++) {
        for (size_t i = 0; i < 2; i++)
            cr_assert_eq(edb__key_append(buf, sizeof buf, &len, EDB_COL_DOUBLE, &dn[i], 8, d), EDB_INVAL);
        for (size_t i = 0; i < 3; i++)
            cr_assert_eq(edb__key_append(buf, sizeof buf, &len, EDB_COL_DOUBLE, &nanbits[i], 8, d),
                         EDB_INVAL);
        float fn = NAN;
        uint32_t fbits = 0xFF800001u;
        cr_assert_eq(edb__key_append(buf, sizeof buf, &len, EDB_COL_FLOAT, &fn, 4, d), EDB_INVAL);
        cr_assert_eq(edb__key_append(buf, sizeof buf, &len, EDB_COL_FLOAT, &fbits, 4, d), EDB_INVAL);
    }
    cr_assert_eq(len, 0);
    cr_assert(strstr(edb_error_last(), "NaN") != NULL, "%s", edb_error_last());

    static const char *bad[] = {
        "a\0b",              /* NUL */
        "\x80",              /* lone continuation */
        "\xc0\x80",          /* overlong NUL */
        "\xc1\xbf",          /* overlong */
        "\xe0\x80\x80",      /* overlong 3-byte */
        "\xe0\x9f\xbf",      /* overlong 3-byte */
        "\xed\xa0\x80",      /* surrogate U+D800 */
        "\xed\xbf\xbf",      /* surrogate U+DFFF */
        "\xf0\x80\x80\x80",  /* overlong 4-byte */
        "\xf0\x8f\xbf\xbf",  /* overlong 4-byte */
        "\xf4\x90\x80\x80",  /* above U+10FFFF */
        "\xf5\x80\x80\x80",  /* F5 */
        "\xff",              /* FF */
        "\xe2\x82",          /* cut short */
        "a\xe2\x82",         /* cut short at the end */
        "\xe2\x28\xa1",      /* bad continuation */
        "\xf0\x90\x80\x28",  /* bad last continuation */
    };
    static const size_t badlen[] = { 3, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 1, 2, 3, 3, 4 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (int d = 0; d < 2; d++) {
            len = 0;
            cr_assert_eq(edb__key_append(buf, sizeof buf, &len, EDB_COL_TEXT, bad[i], badlen[i], d),
                         EDB_INVAL, "bad UTF-8 #%zu accepted", i);
            cr_assert_eq(len, 0);
            /* the same bytes are fine as BINARY */
            cr_assert_eq(edb__key_append(buf, sizeof buf, &len, EDB_COL_BINARY, bad[i], badlen[i], d), 0);
        }
    static const char *good[] = { "\x7f", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf",
                                  "\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        len = 0;
        cr_assert_eq(edb__key_append(buf, sizeof buf, &len, EDB_COL_TEXT, good[i], strlen(good[i]), false),
                     0, "good UTF-8 #%zu refused", i);
    }
}

Test(keys, decode_refuses_malformed_segments, .timeout = KEYS_TIMEOUT)
{
    struct { edb_coltype t; unsigned desc; const char *bytes; size_t n; } bad[] = {
        { EDB_COL_INT32, false, "", 0 },                       /* nothing */
        { EDB_COL_INT32, false, "\x00\x80\0\0\0", 5 },         /* prefix 0x00 */
        { EDB_COL_INT32, false, "\x04\x80\0\0\0", 5 },         /* unknown prefix */
        { EDB_COL_INT32, false, "\x03", 1 },                   /* NULL high where NULLs are low */
        { EDB_COL_INT32, EDB__KEY_DESC, "\x01", 1 },           /* NULL low in a descending segment */
        { EDB_COL_TEXT, EDB__KEY_NULLS_HIGH, "\x01", 1 },      /* NULL low with NULLs high */
        { EDB_COL_INT32, false, "\x02\x80\0\0", 4 },           /* cut short */
        { EDB_COL_BOOL, false, "\x02\x02", 2 },                /* bool 2 */
        { EDB_COL_DOUBLE, false, "\x02\xff\xf8\0\0\0\0\0\0", 9 },  /* NaN */
        { EDB_COL_DOUBLE, false, "\x02\x7f\xff\xff\xff\xff\xff\xff\xff", 9 },  /* -0.0 */
        { EDB_COL_FLOAT, true, "\x02\x00\x07\xff\xff", 5 },    /* NaN, descending */
        { EDB_COL_TEXT, false, "\x02\x61", 2 },                /* no terminator */
        { EDB_COL_TEXT, false, "\x02\x61\x00", 3 },            /* half a terminator */
        { EDB_COL_BINARY, false, "\x02\x61\x00\x05\x00\x00", 6 },  /* bad escape */
        { EDB_COL_BINARY, true, "\x02\x9e\xff\xfa\xff\xff", 6 },   /* bad escape, descending */
        { EDB_COL_TEXT, false, "\x02\x61\x00\xff\x00\x00", 6 },    /* escaped NUL in text */
        { EDB_COL_TEXT, false, "\x02\xc0\x80\x00\x00", 5 },        /* not UTF-8 */
        { EDB_COL_GUID, false, "\x02" "0123456789abcde", 16 },     /* cut short */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t out[32];
        size_t off = 0, sz = 99;
        cr_assert_eq(edb__key_decode((const uint8_t *)bad[i].bytes, bad[i].n, &off, bad[i].t, bad[i].desc,
                                     out, sizeof out, &sz), EDB_CORRUPT, "malformed #%zu accepted", i);
        cr_assert_eq(off, 0, "offset moved on error #%zu", i);
    }
    /* warnings and the skip mode */
    uint8_t key[64];
    size_t len = 0;
    cr_assert_eq(edb__key_append(key, sizeof key, &len, EDB_COL_TEXT, NULL, 0, true), 0);
    cr_assert_eq(edb__key_append(key, sizeof key, &len, EDB_COL_BINARY, "ab\0cd", 5, true), 0);
    int64_t big = INT64_MIN;
    cr_assert_eq(edb__key_append(key, sizeof key, &len, EDB_COL_INT64, &big, 8, false), 0);
    size_t off = 0, sz = 99;
    char out[8];
    cr_assert_eq(edb__key_decode(key, len, &off, EDB_COL_TEXT, true, out, sizeof out, &sz), EDB_WRN_NULL);
    cr_assert_eq(sz, 0);
    cr_assert_eq(off, 1);
    size_t mid = off;
    cr_assert_eq(edb__key_decode(key, len, &off, EDB_COL_BINARY, true, out, 3, &sz), EDB_WRN_TRUNCATED);
    cr_assert_eq(sz, 5);
    cr_assert_eq(memcmp(out, "ab\0", 3), 0);
    size_t after = off;
    off = mid;
    cr_assert_eq(edb__key_decode(key, len, &off, EDB_COL_BINARY, true, NULL, 0, &sz), 0);
    cr_assert_eq(sz, 5);
    cr_assert_eq(off, after);
    cr_assert_eq(key[0], 0x03);                /* a descending NULL sorts after the values */
    int64_t back = 0;
    cr_assert_eq(edb__key_decode(key, len, &off, EDB_COL_INT64, false, &back, 4, &sz), EDB_WRN_TRUNCATED);
    cr_assert_eq(sz, 8);
    off = after;
    cr_assert_eq(edb__key_decode(key, len, &off, EDB_COL_INT64, false, &back, 8, NULL), 0);
    cr_assert_eq(back, INT64_MIN);
    cr_assert_eq(off, len);
    cr_assert_eq(edb__key_decode(key, len, &off, EDB_COL_INT64, false, &back, 8, NULL), EDB_CORRUPT);
    cr_assert_eq(edb__key_decode(NULL, len, &off, EDB_COL_INT64, false, &back, 8, NULL), EDB_INVAL);
    off = 0;
    cr_assert_eq(edb__key_decode(key, len, &off, (edb_coltype)77, false, &back, 8, NULL), EDB_INVAL);
}

/* edb_key_make's fast path (engine/seek.c) writes 64-bit integer segments with
 * edb__key_put64; it must produce edb__key_append's bytes for every value. */
Test(keys, put64_equals_append, .timeout = KEYS_TIMEOUT)
{
    uint64_t seed = seed_rng(0x640ULL);
    cr_log_info("seed %llu", (unsigned long long)seed);
    static const uint64_t edges[] = {
        0, 1, 0x7f, 0x80, 0xff, 0x100, UINT64_C(0x7fffffffffffffff),
        UINT64_C(0x8000000000000000), UINT64_C(0x8000000000000001), UINT64_MAX, UINT64_MAX - 1,
    };
    size_t nedges = sizeof edges / sizeof edges[0];
    for (size_t i = 0; i < nedges + 20000; i++) {
        uint64_t v = i < nedges ? edges[i] : rnd();
        for (int k = 0; k < 4; k++) {
            bool sign = k & 1, desc = k & 2;
            uint8_t want[16], got[16] = { 0 };
            size_t len = 0;
            cr_assert_eq(edb__key_append(want, sizeof want, &len, sign ? EDB_COL_INT64 : EDB_COL_UINT64,
                                         &v, 8, desc), 0);
            cr_assert_eq(len, 9);
            edb__key_put64(got, v, sign, desc);
            cr_assert(memcmp(got, want, 9) == 0, "value 0x%llx, %s, %s",
                      (unsigned long long)v, sign ? "INT64" : "UINT64", desc ? "descending" : "ascending");
        }
    }
}

/* ---- the order through the API: indexes, seeks, the format ------------------- */

static char *kdir;
static edb_env *kenv;
static edb_session *ks;

static void
kopen(void)
{
    kdir = make_tmpdir();
    kenv = open_env(kdir, 0);
    OK(edb_session_begin(&ks, kenv));
}

static void
kclose(void)
{
    edb_session_end(ks);
    edb_env_close(kenv);
    ks = NULL;
    kenv = NULL;
    rm_tree(kdir);
    free(kdir);
    LEAK_CHECK();
}

/* files(id INT32 primary, size INT64, a INT32, b INT32) and the indexes given. */
static void
make_files(const edb_index_def *extra, size_t nextra)
{
    edb_column_def cols[] = {
        { "id", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "size", EDB_COL_INT64, 0, 0, NULL, 0 },
        { "a", EDB_COL_INT32, 0, 0, NULL, 0 },
        { "b", EDB_COL_INT32, 0, 0, NULL, 0 },
    };
    edb_index_def idx[8] = { { "pk", "+id\0", EDB_IDX_PRIMARY } };
    for (size_t i = 0; i < nextra; i++)
        idx[1 + i] = extra[i];
    edb_table_def def = { "files", cols, 4, idx, 1 + nextra };
    OK(edb_table_create(ks, &def));
}

/* Insert a row; a negative size, a or b is NULL. */
static void
put_file(edb_cursor *c, int32_t id, int64_t size, int32_t a, int32_t b)
{
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    if (size >= 0)
        OK(edb_column_set(c, 2, &size, 8, 0));
    if (a >= 0)
        OK(edb_column_set(c, 3, &a, 4, 0));
    if (b >= 0)
        OK(edb_column_set(c, 4, &b, 4, 0));
    OK(edb_update(c));
}

/* The ids along index @name, first to last; returns how many (at most max). */
static size_t
walk_ids(edb_cursor *c, const char *name, int32_t *ids, size_t max)
{
    OK(edb_cursor_set_index(c, name));
    size_t n = 0;
    int rc = edb_cursor_move(c, EDB_MOVE_FIRST);
    while (rc == 0 && n < max) {
        OK(edb_column_get(c, 1, &ids[n++], 4, NULL, 0));
        rc = edb_cursor_move(c, EDB_MOVE_NEXT);
    }
    cr_assert(rc == 0 || rc == EDB_NOTFOUND, "%s", edb_error_last());
    return n;
}

/* Issue 10, point 7: "SEEK_EQ with a PREFIX_END key for k = 2 lands on k = 3". */
Test(keys_index, seek_eq_with_prefix_end_key_is_inval, .init = kopen, .fini = kclose,
     .timeout = KEYS_TIMEOUT)
{
    make_files(NULL, 0);
    edb_cursor *c;
    OK(edb_cursor_open(&c, ks, "files"));
    for (int32_t k = 1; k <= 3; k++)
        put_file(c, k, -1, -1, -1);
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    int32_t two = 2, got = 0;
    OK(edb_key_make(c, &two, 4, EDB_KEY_NEW | EDB_KEY_PREFIX_END));
    RC(edb_cursor_seek(c, EDB_SEEK_EQ), EDB_INVAL);
    cr_assert(strstr(edb_error_last(), "EDB_KEY_PREFIX_END") != NULL, "%s", edb_error_last());
    /* nothing moved, the key is still there: LE with it finds k = 2 */
    OK(edb_column_get(c, 1, &got, 4, NULL, 0));
    cr_assert_eq(got, 1);
    OK(edb_cursor_seek(c, EDB_SEEK_LE));
    OK(edb_column_get(c, 1, &got, 4, NULL, 0));
    cr_assert_eq(got, 2, "LE found %d", got);
    /* the key lies between 2 and 3, never on 3 (its bytes are 3's key):
     * GT is GE, an inclusive upper limit stops before 3, a lower one keeps 2 */
    OK(edb_key_make(c, &two, 4, EDB_KEY_NEW | EDB_KEY_PREFIX_END));
    OK(edb_cursor_seek(c, EDB_SEEK_GT));
    OK(edb_column_get(c, 1, &got, 4, NULL, 0));
    cr_assert_eq(got, 3, "GT found %d", got);
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_key_make(c, &two, 4, EDB_KEY_NEW | EDB_KEY_PREFIX_END));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER | EDB_RANGE_INCLUSIVE));
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    OK(edb_column_get(c, 1, &got, 4, NULL, 0));
    cr_assert_eq(got, 2);
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_NOTFOUND);
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    int32_t one = 1;
    OK(edb_key_make(c, &one, 4, EDB_KEY_NEW | EDB_KEY_PREFIX_END));
    OK(edb_cursor_set_range(c, 0));
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    OK(edb_column_get(c, 1, &got, 4, NULL, 0));
    cr_assert_eq(got, 2, "a lower PREFIX_END limit of 1 keeps 2");
    RC(edb_cursor_move(c, EDB_MOVE_PREV), EDB_NOTFOUND);
    /* a plain key still seeks EQ */
    edb_cursor_close(c);
    edb_cursor *d;
    OK(edb_cursor_open(&d, ks, "files"));
    OK(edb_key_make(d, &two, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(d, EDB_SEEK_EQ));
    OK(edb_column_get(d, 1, &got, 4, NULL, 0));
    cr_assert_eq(got, 2);
    edb_cursor_close(d);
}

/* Issue 10, point 8: "the largest first" on a -size index starts with the
 * largest sizes; the rows without a size come last (ESE's order). */
Test(keys_index, descending_index_puts_nulls_last, .init = kopen, .fini = kclose,
     .timeout = KEYS_TIMEOUT)
{
    edb_index_def x[] = {
        { "by_size", "-size\0", 0 },
        { "by_size_asc", "+size\0", 0 },
        { "by_size_hi", "+size\0", EDB_IDX_SORT_NULLS_HIGH },
        { "by_size_desc_hi", "-size\0", EDB_IDX_SORT_NULLS_HIGH },
    };
    make_files(x, 4);
    edb_cursor *c;
    OK(edb_cursor_open(&c, ks, "files"));
    /* ids 1..12: sizes (id * 37) % 101, ids 3, 6, 9, 12 without one */
    for (int32_t id = 1; id <= 12; id++)
        put_file(c, id, id % 3 == 0 ? -1 : (id * 37) % 101, -1, -1);
    int32_t ids[16];
    /* sizes: 1:37 2:74 4:47 5:84 7:57 8:94 10:67 11:4 */
    static const int32_t desc[] = { 8, 5, 2, 10, 7, 4, 1, 11, 3, 6, 9, 12 };
    static const int32_t asc_low[] = { 3, 6, 9, 12, 11, 1, 4, 7, 10, 2, 5, 8 };
    static const int32_t asc_high[] = { 11, 1, 4, 7, 10, 2, 5, 8, 3, 6, 9, 12 };
    cr_assert_eq(walk_ids(c, "by_size", ids, 16), 12);
    cr_assert(memcmp(ids, desc, sizeof desc) == 0, "-size: the largest first, NULLs last");
    cr_assert_eq(walk_ids(c, "by_size_desc_hi", ids, 16), 12);
    cr_assert(memcmp(ids, desc, sizeof desc) == 0, "-size, NULLs high: the same");
    cr_assert_eq(walk_ids(c, "by_size_asc", ids, 16), 12);
    cr_assert(memcmp(ids, asc_low, sizeof asc_low) == 0, "+size: NULLs first");
    cr_assert_eq(walk_ids(c, "by_size_hi", ids, 16), 12);
    cr_assert(memcmp(ids, asc_high, sizeof asc_high) == 0, "+size, NULLs high: NULLs last");

    /* seeks with a NULL key find the NULLs where they sort */
    int32_t got;
    OK(edb_cursor_set_index(c, "by_size"));
    OK(edb_key_make(c, NULL, 0, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    OK(edb_column_get(c, 1, &got, 4, NULL, 0));
    cr_assert_eq(got, 3);
    OK(edb_key_make(c, NULL, 0, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_LT));          /* the smallest size */
    OK(edb_column_get(c, 1, &got, 4, NULL, 0));
    cr_assert_eq(got, 11);
    int64_t big = 90;
    OK(edb_key_make(c, &big, 8, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_GE));          /* first size <= 90 */
    OK(edb_column_get(c, 1, &got, 4, NULL, 0));
    cr_assert_eq(got, 5);
    OK(edb_cursor_set_index(c, "by_size_hi"));
    OK(edb_key_make(c, NULL, 0, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_LT));          /* the largest size */
    OK(edb_column_get(c, 1, &got, 4, NULL, 0));
    cr_assert_eq(got, 8);
    edb_cursor_close(c);
    uint64_t problems = 99;
    OK(edb_env_check(&problems, kenv, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
}

/* EDB_IDX_IGNORE_ANY_NULL: no entry when any key column is NULL;
 * EDB_IDX_IGNORE_NULL: none only when all are. */
Test(keys_index, ignore_any_null_skips_rows_with_a_null, .init = kopen, .fini = kclose,
     .timeout = KEYS_TIMEOUT)
{
    edb_index_def x[] = {
        { "ab_any", "+a\0-b\0", EDB_IDX_IGNORE_ANY_NULL },
        { "ab_all", "+a\0-b\0", EDB_IDX_IGNORE_NULL },
        { "ab", "+a\0-b\0", 0 },
    };
    make_files(x, 3);
    edb_cursor *c;
    OK(edb_cursor_open(&c, ks, "files"));
    put_file(c, 1, -1, 1, 1);
    put_file(c, 2, -1, 1, -1);
    put_file(c, 3, -1, -1, 2);
    put_file(c, 4, -1, -1, -1);
    put_file(c, 5, -1, 1, 2);
    int32_t ids[8];
    static const int32_t any[] = { 5, 1 }, all[] = { 3, 5, 1, 2 }, none[] = { 3, 4, 5, 1, 2 };
    cr_assert_eq(walk_ids(c, "ab_any", ids, 8), 2);
    cr_assert(memcmp(ids, any, sizeof any) == 0);
    cr_assert_eq(walk_ids(c, "ab_all", ids, 8), 4);
    cr_assert(memcmp(ids, all, sizeof all) == 0);
    cr_assert_eq(walk_ids(c, "ab", ids, 8), 5);
    cr_assert(memcmp(ids, none, sizeof none) == 0);
    /* a replace that sets the NULL column gives the row its entry, one that
     * clears it takes the entry away */
    OK(edb_cursor_set_index(c, NULL));
    int32_t two = 2, seven = 7;
    OK(edb_key_make(c, &two, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 4, &seven, 4, 0));
    OK(edb_update(c));
    OK(edb_key_make(c, &two, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 3, NULL, 0, 0));
    OK(edb_update(c));
    static const int32_t any2[] = { 5, 1 };
    cr_assert_eq(walk_ids(c, "ab_any", ids, 8), 2);
    cr_assert(memcmp(ids, any2, sizeof any2) == 0);
    edb_cursor_close(c);
    uint64_t problems = 99;
    OK(edb_env_check(&problems, kenv, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
    /* not for a primary index; unknown flags stay refused */
    edb_column_def col = { "k", EDB_COL_INT32, 0, 0, NULL, 0 };
    edb_index_def bad = { "pk", "+k\0", EDB_IDX_PRIMARY | EDB_IDX_IGNORE_ANY_NULL };
    edb_table_def def = { "t2", &col, 1, &bad, 1 };
    RC(edb_table_create(ks, &def), EDB_INVAL);
    bad.flags = EDB_IDX_UNIQUE | 0x20u;
    RC(edb_table_create(ks, &def), EDB_INVAL);
}

/* Set the catalog's format record of the database at @path to @version. */
static void
set_format(const char *path, uint8_t version)
{
    MDB_env *m;
    MDB_txn *t;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 4), 0);
    cr_assert_eq(mdb_env_open(m, path, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "edb.catalog", 0, &dbi), 0);
    MDB_val fk = { 7, "\0format" }, fv;
    cr_assert_eq(mdb_get(t, dbi, &fk, &fv), 0);
    uint8_t rec[12];
    memcpy(rec, fv.mv_data, 12);
    rec[4] = version;
    fv.mv_data = rec;
    cr_assert_eq(mdb_put(t, dbi, &fk, &fv, 0), 0);
    cr_assert_eq(mdb_txn_commit(t), 0);
    mdb_env_close(m);
}

static uint8_t
get_format(const char *path)
{
    MDB_env *m;
    MDB_txn *t;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 4), 0);
    cr_assert_eq(mdb_env_open(m, path, MDB_RDONLY, 0600), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, MDB_RDONLY, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "edb.catalog", 0, &dbi), 0);
    MDB_val fk = { 7, "\0format" }, fv;
    cr_assert_eq(mdb_get(t, dbi, &fk, &fv), 0);
    uint8_t v = ((uint8_t *)fv.mv_data)[4];
    mdb_txn_abort(t);
    mdb_env_close(m);
    return v;
}

/* The key encoding changed in format 3 and the layout in format 4 (the
 * keyspace; format 5 opens format 4 as it is, test_upgrade.c): a catalog
 * that records an older format is refused, read-only
 * too, with a message that names the fix, and left as it was. */
Test(keys_index, older_format_is_refused, .init = kopen, .fini = kclose, .timeout = KEYS_TIMEOUT)
{
    edb_index_def x[] = { { "by_size", "-size\0", 0 } };
    make_files(x, 1);
    edb_session_end(ks);
    edb_env_close(kenv);
    ks = NULL;
    kenv = NULL;
    char path[600];
    snprintf(path, sizeof path, "%s/db", kdir);
    cr_assert_eq(get_format(path), 5);
    edb_env_opts o = { .map_size = test_map_size() };
    edb_env_opts ro = { .map_size = test_map_size(), .flags = EDB_ENV_READONLY };
    for (uint8_t version = 1; version <= 3; version++) {
        set_format(path, version);
        RC(edb_env_open(&kenv, path, &o), EDB_VERSION);
        cr_assert_null(kenv);
        const char *m = edb_error_last();
        char want[16];
        snprintf(want, sizeof want, "format %u", version);
        cr_assert(strstr(m, want) && strstr(m, "dbtool upgrade"), "%s", m);
        RC(edb_env_open(&kenv, path, &ro), EDB_VERSION);
        cr_assert_eq(get_format(path), version, "a refused database is left as it was");
    }
    set_format(path, 6);
    RC(edb_env_open(&kenv, path, &o), EDB_VERSION);
    cr_assert(strstr(edb_error_last(), "newer") != NULL, "%s", edb_error_last());
    set_format(path, 5);
    OK(edb_env_open(&kenv, path, &o));
    OK(edb_session_begin(&ks, kenv));
}

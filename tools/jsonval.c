/*
 * jsonval.c: native column values <-> JSON and text (table in jsonval.h).
 *
 * Each column type's JSON kind, size and signedness come from the engine's
 * column-type table (engine/coltype.h, expanded here into `types`); each
 * kind has one codec (`codecs`): text in, JSON in, out.  No function here
 * switches on a column type.
 *
 * Invariants: every conversion is lossless in both directions for every value
 * the engine can store: 64-bit integers never pass through a double, doubles
 * are written with 17 significant digits (floats with 9), DATETIME keeps its
 * microseconds, and text is written through jansson's escaper.  Input is
 * checked completely: trailing garbage, out-of-range numbers, bad base64 or a
 * malformed GUID or date are errors, never silently truncated.
 */
#include "config.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coltype.h"
#include "jsonval.h"

/* A quoted big integer produced by jv_quote_big_ints() starts with this NUL
 * byte, which no JSON text a user writes by accident contains. */
#define BIG_MARK "\\u0000"

int
jv_buf_reserve(jv_buf *b, size_t n)
{
    if (n <= b->cap - b->len)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            return EDB_NOMEM;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL)
        return EDB_NOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int
jv_buf_add(jv_buf *b, const void *data, size_t n)
{
    if (jv_buf_reserve(b, n + 1) != 0)
        return EDB_NOMEM;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int
jv_buf_adds(jv_buf *b, const char *s)
{
    return jv_buf_add(b, s, strlen(s));
}

void
jv_buf_free(jv_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* The facts of each type, from the engine's column-type table
 * (engine/coltype.h): its JSON kind, native size and signedness. */
typedef struct jv_type {
    edb__json_kind kind;
    unsigned size;
    bool is_signed;
} jv_type;

#define ROW(type, name, size, sgn, json) [EDB_COL_##type] = { EDB__JSON_##json, size, sgn },
static const jv_type types[EDB_COL_BINARY + 1] = { EDB__COLTYPE_MAP(ROW) };
#undef ROW

static const jv_type *
type_of(edb_coltype t)
{
    /* element 0 and any gap have kind 0 (EDB__JSON_* start at 1) */
    size_t i = (size_t)t;
    return i < sizeof types / sizeof types[0] && types[i].kind != 0 ? &types[i] : NULL;
}

size_t
jv_fixed_size(edb_coltype t)
{
    const jv_type *ty = type_of(t);
    return ty != NULL ? ty->size : 0;
}

bool
jv_is_number(edb_coltype t)
{
    const jv_type *ty = type_of(t);
    return ty != NULL && (ty->kind == EDB__JSON_INT || ty->kind == EDB__JSON_REAL);
}

static int
fail(char *err, size_t errlen, int rc, const char *fmt, const char *arg)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, arg);
    return rc;
}

/* ---- base64 ------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
jv_base64_encode(jv_buf *out, const void *data, size_t n)
{
    const unsigned char *p = data;
    if (jv_buf_reserve(out, (n + 2) / 3 * 4 + 1) != 0)
        return EDB_NOMEM;
    char *o = out->p + out->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64[v >> 18]; *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63]; *o++ = b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = b64[v >> 18]; *o++ = b64[(v >> 12) & 63]; *o++ = '='; *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = b64[v >> 18]; *o++ = b64[(v >> 12) & 63]; *o++ = b64[(v >> 6) & 63]; *o++ = '=';
    }
    out->len = (size_t)(o - out->p);
    out->p[out->len] = '\0';
    return 0;
}

static int
b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int
jv_base64_decode(jv_buf *out, const char *s, size_t n)
{
    out->len = 0;
    if (n % 4 != 0)
        return EDB_INVAL;
    if (jv_buf_reserve(out, n / 4 * 3 + 1) != 0)
        return EDB_NOMEM;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad)                      /* a data byte after '=' */
                return EDB_INVAL;
            v[k] = b64val(c);
            if (v[k] < 0)
                return EDB_INVAL;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        /* Canonical form only: the bits dropped by padding must be zero. */
        if ((pad == 2 && (w & 0xFFFF)) || (pad == 1 && (w & 0xFF)))
            return EDB_INVAL;
        out->p[out->len++] = (char)(w >> 16);
        if (pad < 2) out->p[out->len++] = (char)(w >> 8);
        if (pad < 1) out->p[out->len++] = (char)w;
    }
    out->p[out->len] = '\0';
    return 0;
}

/* ---- DATETIME ----------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int
jv_datetime_format(char *buf, size_t cap, int64_t us)
{
    const int64_t day_us = INT64_C(86400000000);
    int64_t days = us / day_us, rem = us % day_us;
    if (rem < 0) {
        rem += day_us;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int64_t secs = rem / 1000000, frac = rem % 1000000;
    int n;
    if (y >= 0 && y <= 9999) {
        if (cap < 28)
            return EDB_INVAL;
        /* the common case without snprintf (export formats one per value):
         * the bytes of "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ" */
        unsigned f[] = { (unsigned)y, m, d, (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60),
                         (unsigned)(secs % 60), (unsigned)frac };
        static const int width[] = { 4, 2, 2, 2, 2, 2, 6 };
        static const char sep[] = "--T::.Z";
        char *o = buf;
        for (int i = 0; i < 7; i++) {
            for (int k = width[i] - 1; k >= 0; k--) {
                o[k] = (char)('0' + f[i] % 10);
                f[i] /= 10;
            }
            o += width[i];
            *o++ = sep[i];
        }
        *o = '\0';
        return 0;
    }
    /* ISO 8601 expanded year: sign and at least six digits */
    n = snprintf(buf, cap, "%+07" PRId64 "-%02u-%02uT%02d:%02d:%02d.%06dZ", y, m, d,
                 (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60), (int)frac);
    return n < 0 || (size_t)n >= cap ? EDB_INVAL : 0;
}

/* Read exactly n digits. */
static bool
digits(const char **p, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return false;
        v = v * 10 + (unsigned)((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static const unsigned mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

int
jv_datetime_parse(int64_t *out, const char *s)
{
    const char *p = s;
    int sign = 1;
    if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    int64_t y = 0;
    int nd = 0;
    while (*p >= '0' && *p <= '9' && nd < 9) {
        y = y * 10 + (*p++ - '0');
        nd++;
    }
    if (nd < 4 || (nd > 4 && s[0] != '+' && s[0] != '-'))
        return EDB_INVAL;
    y *= sign;
    unsigned mo, d, hh = 0, mi = 0, ss = 0;
    if (*p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' || !digits(&p, 2, &d))
        return EDB_INVAL;
    if (mo < 1 || mo > 12)
        return EDB_INVAL;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d < 1 || d > mdays[mo - 1] + (mo == 2 && leap))
        return EDB_INVAL;
    int64_t frac_us = 0;
    int64_t offset_s = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &hh) || *p++ != ':' || !digits(&p, 2, &mi))
            return EDB_INVAL;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &ss))
                return EDB_INVAL;
            if (*p == '.' || *p == ',') {
                p++;
                int fd = 0;
                int64_t scale = 100000;
                while (*p >= '0' && *p <= '9') {
                    /* Digits past the microsecond must be zero: no silent rounding. */
                    if (fd >= 6 && *p != '0')
                        return EDB_INVAL;
                    if (fd < 6) {
                        frac_us += (*p - '0') * scale;
                        scale /= 10;
                    }
                    fd++;
                    p++;
                }
                if (fd == 0)
                    return EDB_INVAL;
            }
        }
        if (hh > 23 || mi > 59 || ss > 59)
            return EDB_INVAL;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int osign = *p++ == '-' ? -1 : 1;
            unsigned oh, om;
            if (!digits(&p, 2, &oh))
                return EDB_INVAL;
            if (*p == ':')
                p++;
            if (!digits(&p, 2, &om) || oh > 23 || om > 59)
                return EDB_INVAL;
            offset_s = osign * (int64_t)(oh * 3600 + om * 60);
        }
    }
    if (*p != '\0')
        return EDB_INVAL;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs;
    if (__builtin_mul_overflow(days, INT64_C(86400), &secs) ||
        __builtin_add_overflow(secs, (int64_t)(hh * 3600 + mi * 60 + ss) - offset_s, &secs))
        return EDB_INVAL;
    int64_t us;
    if (secs < 0 && frac_us > 0) {     /* keep secs * 10^6 in range near INT64_MIN */
        secs += 1;
        frac_us -= 1000000;
    }
    if (__builtin_mul_overflow(secs, INT64_C(1000000), &us) ||
        __builtin_add_overflow(us, frac_us, &us))
        return EDB_INVAL;
    *out = us;
    return 0;
}

/* ---- GUID --------------------------------------------------------------- */

static int
guid_parse(uint8_t out[16], const char *s)
{
    static const int dash[] = { 8, 13, 18, 23 };
    if (strlen(s) != 36)
        return EDB_INVAL;
    int k = 0, di = 0;
    for (int i = 0; i < 36; i++) {
        if (di < 4 && i == dash[di]) {
            if (s[i] != '-')
                return EDB_INVAL;
            di++;
            continue;
        }
        int hi = s[i], v;
        if (hi >= '0' && hi <= '9') v = hi - '0';
        else if (hi >= 'a' && hi <= 'f') v = hi - 'a' + 10;
        else if (hi >= 'A' && hi <= 'F') v = hi - 'A' + 10;
        else return EDB_INVAL;
        if (k % 2 == 0)
            out[k / 2] = (uint8_t)(v << 4);
        else
            out[k / 2] |= (uint8_t)v;
        k++;
    }
    return 0;
}

static void
guid_format(char out[37], const uint8_t g[16])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11],
             g[12], g[13], g[14], g[15]);
}

/* ---- numbers ------------------------------------------------------------ */

/* Store an integer as the native form of INT type @ty (size 1, 2, 4 or 8
 * bytes, host order), after checking the range its size and signedness give. */
static int
store_int(jv_buf *out, const jv_type *ty, int64_t sv, uint64_t uv, bool neg, char *err,
          size_t errlen, const char *src)
{
    out->len = 0;
    if (jv_buf_reserve(out, 16) != 0)
        return EDB_NOMEM;
    unsigned bits = ty->size * 8;
    if (ty->is_signed) {
        int64_t hi = (int64_t)((UINT64_C(1) << (bits - 1)) - 1), lo = -hi - 1;
        if (!neg && uv > (uint64_t)INT64_MAX)
            return fail(err, errlen, EDB_INVAL, "%s is out of range", src);
        int64_t v = neg ? sv : (int64_t)uv;
        if (v < lo || v > hi)
            return fail(err, errlen, EDB_INVAL, "%s is out of range", src);
        uv = (uint64_t)v;
    } else {
        uint64_t hi = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
        if (neg || uv > hi)
            return fail(err, errlen, EDB_INVAL, "%s is out of range", src);
    }
    /* two's complement: the low bytes of the 64-bit value are the narrow one */
    switch (ty->size) {
    case 1: { uint8_t x = (uint8_t)uv;   memcpy(out->p, &x, 1); break; }
    case 2: { uint16_t x = (uint16_t)uv; memcpy(out->p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)uv; memcpy(out->p, &x, 4); break; }
    default: memcpy(out->p, &uv, 8); break;
    }
    out->len = ty->size;
    return 0;
}

/* Parse a decimal integer text exactly (optional '-', digits, nothing else). */
static int
parse_int_text(jv_buf *out, const jv_type *ty, const char *s, char *err, size_t errlen)
{
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    if (*p < '0' || *p > '9')
        return fail(err, errlen, EDB_INVAL, "'%s' is not an integer", s);
    uint64_t uv = 0;
    bool overflow = false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (__builtin_mul_overflow(uv, 10, &uv) || __builtin_add_overflow(uv, (uint64_t)(*p - '0'), &uv))
            overflow = true;
    }
    if (*p != '\0')
        return fail(err, errlen, EDB_INVAL, "'%s' is not an integer", s);
    if (overflow)
        return fail(err, errlen, EDB_INVAL, "%s is out of range", s);
    int64_t sv = 0;
    if (neg) {
        if (uv > (uint64_t)INT64_MAX + 1)
            return fail(err, errlen, EDB_INVAL, "%s is out of range", s);
        sv = uv == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)uv;
        if (uv == 0)
            neg = false;
    }
    return store_int(out, ty, sv, uv, neg, err, errlen, s);
}

/* Store a real as REAL type @ty: a float (size 4) or a double. */
static int
store_real(jv_buf *out, const jv_type *ty, double v, char *err, size_t errlen, const char *src)
{
    out->len = 0;
    if (jv_buf_reserve(out, 8) != 0)
        return EDB_NOMEM;
    if (isnan(v))
        return fail(err, errlen, EDB_INVAL, "%s: NaN cannot be stored", src);
    if (ty->size == 4) {
        if (isfinite(v) && isinf((float)v))
            return fail(err, errlen, EDB_INVAL, "%s is out of range for float", src);
        float f = (float)v;
        memcpy(out->p, &f, 4);
        out->len = 4;
    } else {
        memcpy(out->p, &v, 8);
        out->len = 8;
    }
    return 0;
}

static int
parse_real_text(jv_buf *out, const jv_type *ty, const char *s, char *err, size_t errlen)
{
    double v;
    if (strcmp(s, "Infinity") == 0 || strcmp(s, "inf") == 0) {
        v = INFINITY;
    } else if (strcmp(s, "-Infinity") == 0 || strcmp(s, "-inf") == 0) {
        v = -INFINITY;
    } else {
        /* strtod also takes hex, "nan", "infinity": only plain decimals here. */
        for (const char *p = s; *p; p++)
            if (!strchr("0123456789+-.eE", *p))
                return fail(err, errlen, EDB_INVAL, "'%s' is not a number", s);
        char *end;
        errno = 0;
        v = strtod(s, &end);
        if (end == s || *end != '\0')
            return fail(err, errlen, EDB_INVAL, "'%s' is not a number", s);
        if (errno == ERANGE && isinf(v))
            return fail(err, errlen, EDB_INVAL, "%s is out of range", s);
    }
    return store_real(out, ty, v, err, errlen, s);
}

/* ---- one codec per JSON kind -------------------------------------------- */

/* Text in (command-line key values, CSV cells, and the strings of JSON). */

static int
bool_from_text(jv_buf *out, const jv_type *ty, const char *s, char *err, size_t errlen)
{
    (void)ty;
    uint8_t b;
    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
        b = 1;
    else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
        b = 0;
    else
        return fail(err, errlen, EDB_INVAL, "'%s' is not a bool (true, false, 1, 0)", s);
    return jv_buf_add(out, &b, 1);
}

static int
datetime_from_text(jv_buf *out, const jv_type *ty, const char *s, char *err, size_t errlen)
{
    (void)ty;
    int64_t us;
    if (jv_datetime_parse(&us, s) != 0)
        return fail(err, errlen, EDB_INVAL,
                    "'%s' is not an ISO 8601 date and time (2024-05-01T12:00:00.000000Z)", s);
    return jv_buf_add(out, &us, 8);
}

static int
guid_from_text(jv_buf *out, const jv_type *ty, const char *s, char *err, size_t errlen)
{
    (void)ty;
    uint8_t g[16];
    if (guid_parse(g, s) != 0)
        return fail(err, errlen, EDB_INVAL, "'%s' is not a GUID (8-4-4-4-12 hex digits)", s);
    return jv_buf_add(out, g, 16);
}

static int
string_from_text(jv_buf *out, const jv_type *ty, const char *s, char *err, size_t errlen)
{
    (void)ty, (void)err, (void)errlen;
    return jv_buf_add(out, s, strlen(s));
}

static int
base64_from_text(jv_buf *out, const jv_type *ty, const char *s, char *err, size_t errlen)
{
    (void)ty;
    int rc = jv_base64_decode(out, s, strlen(s));
    if (rc == EDB_INVAL)
        return fail(err, errlen, EDB_INVAL, "'%s' is not base64", s);
    return rc;
}

/* JSON in. */

static const char *
json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: case JSON_FALSE: return "a bool";
    default: return "null";
    }
}

static int
wrong_type(char *err, size_t errlen, const json_t *j, const char *want)
{
    if (err && errlen)
        snprintf(err, errlen, "expected %s, got %s", want, json_type_name(j));
    return EDB_TYPE;
}

/* A string made by jv_quote_big_ints(): NUL then digits. */
static const char *
big_int_digits(const json_t *j)
{
    if (!json_is_string(j) || json_string_length(j) < 2 || json_string_value(j)[0] != '\0')
        return NULL;
    return json_string_value(j) + 1;
}

static int
bool_from_json(jv_buf *out, const jv_type *ty, const json_t *j, char *err, size_t errlen)
{
    (void)ty;
    if (!json_is_boolean(j))
        return wrong_type(err, errlen, j, "true or false");
    uint8_t b = json_is_true(j);
    return jv_buf_add(out, &b, 1);
}

static int
int_from_json(jv_buf *out, const jv_type *ty, const json_t *j, char *err, size_t errlen)
{
    char num[64];
    const char *big = big_int_digits(j);
    if (big)
        return parse_int_text(out, ty, big, err, errlen);
    if (json_is_real(j)) {
        double d = json_real_value(j);
        /* 3.0 is an integer written as a real; 3.5 is not. */
        if (d != floor(d) || fabs(d) >= 9007199254740992.0) {
            snprintf(num, sizeof num, "%.17g", d);
            return fail(err, errlen, EDB_TYPE, "expected an integer, got %s", num);
        }
        snprintf(num, sizeof num, "%.0f", d);
        return parse_int_text(out, ty, num, err, errlen);
    }
    if (!json_is_integer(j))
        return wrong_type(err, errlen, j, "an integer");
    snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    return parse_int_text(out, ty, num, err, errlen);
}

static int
real_from_json(jv_buf *out, const jv_type *ty, const json_t *j, char *err, size_t errlen)
{
    char num[64];
    const char *big = big_int_digits(j);
    if (big)
        return parse_real_text(out, ty, big, err, errlen);
    if (json_is_string(j)) {
        const char *s = json_string_value(j);
        if (strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0)
            return parse_real_text(out, ty, s, err, errlen);
        return wrong_type(err, errlen, j, "a number");
    }
    if (!json_is_number(j))
        return wrong_type(err, errlen, j, "a number");
    if (json_is_integer(j)) {
        /* Through the decimal text, so that the double nearest the written value is stored. */
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return parse_real_text(out, ty, num, err, errlen);
    }
    snprintf(num, sizeof num, "%.17g", json_real_value(j));
    return store_real(out, ty, json_real_value(j), err, errlen, num);
}

/* ---- out ---------------------------------------------------------------- */

/* The bytes jansson's json_dumpb writes for the string (its escapes: \" \\
 * \b \f \n \r \t, \u00XX for the other control bytes, everything else
 * as it is), without building a json_t per value: export wrote every text
 * value through jansson and spent over half its time there (doc/performance.md).
 * The caller passes valid UTF-8 (TEXT values are checked when stored). */
int
jv_write_json_string(jv_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n > (SIZE_MAX - 3) / 6 || jv_buf_reserve(out, 6 * n + 3) != 0)
        return EDB_NOMEM;
    char *o = out->p + out->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':  *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0'; *o++ = hex[c >> 4]; *o++ = hex[c & 15];
            break;
        }
    }
    *o++ = '"';
    out->len = (size_t)(o - out->p);
    out->p[out->len] = '\0';
    return 0;
}

/* The decimal digits of an integer, as printf's %d / %u write them (export
 * formats one per integer value: snprintf was most of its time). */
static void
fmt_int(char *tmp, bool neg, uint64_t mag)
{
    char d[24];
    int n = 0;
    do {
        d[n++] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag);
    char *o = tmp;
    if (neg)
        *o++ = '-';
    while (n)
        *o++ = d[--n];
    *o = '\0';
}

static void
fmt_signed(char *tmp, int64_t v)
{
    fmt_int(tmp, v < 0, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

/* Each writer appends the value's JSON text (@json) or its text form. */

static int
bool_write(jv_buf *out, const jv_type *ty, const void *data, size_t size, bool json)
{
    (void)ty, (void)size, (void)json;
    return jv_buf_adds(out, *(const uint8_t *)data ? "true" : "false");
}

static int
int_write(jv_buf *out, const jv_type *ty, const void *data, size_t size, bool json)
{
    (void)json;
    char tmp[32];
    uint64_t u;
    int64_t v;
    switch (size) {
    case 1: { uint8_t x;  memcpy(&x, data, 1); u = x; v = (int8_t)x;  break; }
    case 2: { uint16_t x; memcpy(&x, data, 2); u = x; v = (int16_t)x; break; }
    case 4: { uint32_t x; memcpy(&x, data, 4); u = x; v = (int32_t)x; break; }
    default: memcpy(&u, data, 8); v = (int64_t)u; break;
    }
    if (ty->is_signed)
        fmt_signed(tmp, v);
    else
        fmt_int(tmp, false, u);
    return jv_buf_adds(out, tmp);
}

static int
real_write(jv_buf *out, const jv_type *ty, const void *data, size_t size, bool json)
{
    (void)size;
    char tmp[64];
    bool single = ty->size == 4;
    double v;
    if (single) {
        float f;
        memcpy(&f, data, 4);
        v = f;
    } else {
        memcpy(&v, data, 8);
    }
    if (isinf(v)) {
        snprintf(tmp, sizeof tmp, json ? "\"%s\"" : "%s", v > 0 ? "Infinity" : "-Infinity");
    } else if (isnan(v)) {
        return EDB_CORRUPT;
    } else {
        /* The shortest of %.{6..9}g (float) or %.{15..17}g (double) that
         * reads back to the same bits: 99.99, not 99.989999999999995. */
        int lo = single ? 6 : 15, hi = single ? 9 : 17;
        for (int prec = lo; prec <= hi; prec++) {
            snprintf(tmp, sizeof tmp, "%.*g", prec, v);
            double back = strtod(tmp, NULL);
            if (single ? (float)back == (float)v : back == v)
                break;
        }
        /* "-0" would read back as the integer 0: keep reals visibly real. */
        if (strpbrk(tmp, ".e") == NULL)
            strcat(tmp, ".0");
    }
    return jv_buf_adds(out, tmp);
}

/* A string without characters JSON escapes, quoted when @json. */
static int
add_quoted(jv_buf *out, const char *s, bool json)
{
    if (json && jv_buf_adds(out, "\"") != 0)
        return EDB_NOMEM;
    if (jv_buf_adds(out, s) != 0)
        return EDB_NOMEM;
    return json ? jv_buf_adds(out, "\"") : 0;
}

static int
datetime_write(jv_buf *out, const jv_type *ty, const void *data, size_t size, bool json)
{
    (void)ty, (void)size;
    int64_t us;
    memcpy(&us, data, 8);
    char d[48];
    jv_datetime_format(d, sizeof d, us);
    return add_quoted(out, d, json);
}

static int
guid_write(jv_buf *out, const jv_type *ty, const void *data, size_t size, bool json)
{
    (void)ty, (void)size;
    char g[37];
    guid_format(g, data);
    return add_quoted(out, g, json);
}

static int
string_write(jv_buf *out, const jv_type *ty, const void *data, size_t size, bool json)
{
    (void)ty;
    return json ? jv_write_json_string(out, data, size) : jv_buf_add(out, data, size);
}

static int
base64_write(jv_buf *out, const jv_type *ty, const void *data, size_t size, bool json)
{
    (void)ty;
    /* base64 has no character JSON escapes: quote it directly */
    if (json && jv_buf_adds(out, "\"") != 0)
        return EDB_NOMEM;
    if (jv_base64_encode(out, data, size) != 0)
        return EDB_NOMEM;
    return json ? jv_buf_adds(out, "\"") : 0;
}

/* The codec of each JSON kind.  from_json NULL: the value is a JSON string
 * (no quoted big integer, no NUL) read with from_text; @want names it. */
typedef struct jv_codec {
    int (*from_text)(jv_buf *out, const jv_type *ty, const char *s, char *err, size_t errlen);
    int (*from_json)(jv_buf *out, const jv_type *ty, const json_t *j, char *err, size_t errlen);
    int (*write)(jv_buf *out, const jv_type *ty, const void *data, size_t size, bool json);
    const char *want;
} jv_codec;

static const jv_codec codecs[] = {
    [EDB__JSON_BOOL]     = { bool_from_text, bool_from_json, bool_write, "true or false" },
    [EDB__JSON_INT]      = { parse_int_text, int_from_json, int_write, "an integer" },
    [EDB__JSON_REAL]     = { parse_real_text, real_from_json, real_write, "a number" },
    [EDB__JSON_DATETIME] = { datetime_from_text, NULL, datetime_write, "an ISO 8601 string" },
    [EDB__JSON_GUID]     = { guid_from_text, NULL, guid_write, "a GUID string" },
    [EDB__JSON_STRING]   = { string_from_text, NULL, string_write, "a string" },
    [EDB__JSON_BASE64]   = { base64_from_text, NULL, base64_write, "a base64 string" },
};

/* ---- through the tables ------------------------------------------------- */

int
jv_from_text(jv_buf *out, edb_coltype t, const char *s, char *err, size_t errlen)
{
    out->len = 0;
    const jv_type *ty = type_of(t);
    if (ty == NULL)
        return fail(err, errlen, EDB_INVAL, "unknown column type%s", "");
    return codecs[ty->kind].from_text(out, ty, s, err, errlen);
}

int
jv_from_json(jv_buf *out, edb_coltype t, const json_t *j, char *err, size_t errlen)
{
    out->len = 0;
    const jv_type *ty = type_of(t);
    if (ty == NULL)
        return fail(err, errlen, EDB_INVAL, "unknown column type%s", "");
    const jv_codec *c = &codecs[ty->kind];
    if (c->from_json != NULL)
        return c->from_json(out, ty, j, err, errlen);
    if (!json_is_string(j) || big_int_digits(j))
        return wrong_type(err, errlen, j, c->want);
    if (ty->kind == EDB__JSON_STRING)      /* the text may hold NUL bytes */
        return jv_buf_add(out, json_string_value(j), json_string_length(j));
    if (strlen(json_string_value(j)) != json_string_length(j))
        return fail(err, errlen, EDB_INVAL, "the string holds a NUL byte%s", "");
    return c->from_text(out, ty, json_string_value(j), err, errlen);
}

/* ---- big integers --------------------------------------------------------- */

/* Length of the JSON number token at s[0..len) (0: none) and whether it is an
 * integer (no fraction, no exponent) of 19 or more digits. */
static size_t
number_token(const char *s, size_t len, bool *big)
{
    size_t i = 0, digits = 0;
    bool integer = true;
    if (i < len && s[i] == '-')
        i++;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        i++;
        digits++;
    }
    if (digits == 0)
        return 0;
    if (i < len && s[i] == '.') {
        integer = false;
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        integer = false;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    *big = integer && digits >= 19;
    return i;
}

char *
jv_quote_big_ints(const char *line, size_t len)
{
    /* Two passes over the same scanner: does any big integer occur outside
     * strings, and then (only if so) the copy with those quoted.  A number
     * token is taken whole (sign, digits, fraction, exponent), so digits of a
     * fraction or an exponent are never mistaken for an integer. */
    jv_buf b = { 0 };
    for (int pass = 0; pass < 2; pass++) {
        bool in_str = false, found = false;
        for (size_t i = 0; i < len; i++) {
            char c = line[i];
            size_t n = 1;
            bool big = false;
            if (in_str) {
                if (c == '\\' && i + 1 < len)
                    n = 2;
                else if (c == '"')
                    in_str = false;
            } else if (c == '"') {
                in_str = true;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                n = number_token(line + i, len - i, &big);
                if (n == 0)
                    n = 1;
            }
            if (big)
                found = true;
            if (pass == 1) {
                int rc = big ? (jv_buf_adds(&b, "\"" BIG_MARK) || jv_buf_add(&b, line + i, n) ||
                                jv_buf_adds(&b, "\""))
                             : jv_buf_add(&b, line + i, n);
                if (rc != 0) {
                    jv_buf_free(&b);
                    return NULL;
                }
            }
            i += n - 1;
        }
        if (pass == 0 && !found)
            return NULL;
    }
    return b.p ? b.p : NULL;
}

/* ---- out, through the tables -------------------------------------------- */

static int
write_value(jv_buf *out, edb_coltype t, const void *data, size_t size, bool json)
{
    const jv_type *ty = type_of(t);
    if (ty == NULL || (ty->size != 0 && size != ty->size))
        return EDB_CORRUPT;
    return codecs[ty->kind].write(out, ty, data, size, json);
}

int
jv_write_json(jv_buf *out, edb_coltype t, const void *data, size_t size)
{
    return write_value(out, t, data, size, true);
}

int
jv_write_text(jv_buf *out, edb_coltype t, const void *data, size_t size)
{
    return write_value(out, t, data, size, false);
}

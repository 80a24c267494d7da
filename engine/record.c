/*
 * record.c: the versioned, compact record format.
 *
 * A record is the value stored under its primary key in the table's record
 * DB.  All integers little-endian:
 *
 * | offset      | size      | meaning                                            |
 * |-------------|-----------|----------------------------------------------------|
 * | 0           | 1         | record format version, 1 (2: long values, below)   |
 * | 1           | 1         | reserved, 0                                        |
 * | 2           | 2         | N: columns stored (colids 1..N)                    |
 * | 4           | ceil(N/8) | NULL bitmap: bit (i % 8) of byte i / 8 set = column i+1 is NULL |
 * | 4+B         | 4 * N     | end offset of column i's area, relative to D       |
 * | D = 4+B+4N  | ...       | the column areas, in colid order                   |
 *
 * Version 2 is written only for a record that holds a long-value reference
 * (longval.c): a second bitmap of B bytes follows the NULL bitmap (bit set =
 * the column's area is a 20-byte reference to chunks, not the value), and
 * the offsets start at 4+2B.  A reader that knows only version 1 refuses
 * such a record with EDB_VERSION; records without a long value keep
 * version 1 byte for byte.
 *
 * A single-valued column's area is its value in native form (edb.h's table:
 * host-order integers, IEEE floats, UTF-8 text).  A multi-valued column's
 * area is a sequence of (u32 length, bytes), one per value; its value count
 * is the number of such pairs (NULL: bitmap bit set, empty area).
 *
 * Columns added after a record was written (colid > N) are not in it: they
 * read as the column's default, or NULL.  So edb_column_add never rewrites
 * rows, and a record never needs more than the columns it was written with.
 *
 * Invariants: end offsets never decrease and the last one equals the data
 * size; a NULL column has an empty area.  edb__rec_view, edb__rec_decode and
 * edb__rec_validate check every offset before trusting a record, so a damaged
 * record is EDB_CORRUPT, never a crash.  The cursor's read path
 * (edb__rec_parse + edb__rec_hdr_view, once per record and per column read)
 * checks the header, the last offset and the two offsets around the column it
 * reads: as safe, but a record damaged only in columns that are not read
 * reads without an error there (edb_env_check finds it).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "record.h"

/* ------------------------------------------------------------------ buffers */

static int
reserve(edb__buf *b, size_t n)
{
    if (n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL)
        return edb__err(EDB_NOMEM, "buffer of %zu bytes", n);
    b->p = p;
    b->cap = cap;
    return 0;
}

int
edb__buf_set_slow(edb__buf *b, const void *data, size_t n)
{
    EDB_RET(reserve(b, n ? n : 1));
    if (n)
        memcpy(b->p, data, n);
    b->len = n;
    return 0;
}

int
edb__buf_reserve(edb__buf *b, size_t n)
{
    return reserve(b, n);
}

int
edb__buf_add(edb__buf *b, const void *data, size_t n)
{
    EDB_RET(reserve(b, b->len + n));
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

void
edb__buf_free(edb__buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static uint32_t
rd32(const uint8_t *p)
{
    return edb__rd32le(p);
}

static void
wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

/* ------------------------------------------------------------------ values */

static bool
utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t ch = s[i];
        if (ch == 0)
            return false;
        if (ch < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if ((ch & 0xE0) == 0xC0) { len = 2; cp = ch & 0x1F; }
        else if ((ch & 0xF0) == 0xE0) { len = 3; cp = ch & 0x0F; }
        else if ((ch & 0xF8) == 0xF0) { len = 4; cp = ch & 0x07; }
        else return false;
        if (len > n - i)
            return false;
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

int
edb__value_check(const edb__column *c, const void *data, size_t size, const char *what)
{
    int fixed = edb__type_size(c->type);
    if (fixed < 0)
        return edb__err(EDB_INVAL, "%s: unknown type %d", what, (int)c->type);
    if (data == NULL && size != 0)
        return edb__err(EDB_INVAL, "%s: NULL data with size %zu", what, size);
    if (fixed > 0 && size != (size_t)fixed)
        return edb__err(EDB_INVAL, "%s: a %s value is %d bytes, not %zu", what,
                        edb_coltype_name(c->type), fixed, size);
    if (c->type == EDB_COL_BOOL && *(const uint8_t *)data > 1)
        return edb__err(EDB_INVAL, "%s: a bool is 0 or 1", what);
    if (c->type == EDB_COL_FLOAT) {
        float f;
        memcpy(&f, data, 4);
        if (isnan(f))
            return edb__err(EDB_INVAL, "%s: NaN is not a value", what);
    }
    if (c->type == EDB_COL_DOUBLE) {
        double d;
        memcpy(&d, data, 8);
        if (isnan(d))
            return edb__err(EDB_INVAL, "%s: NaN is not a value", what);
    }
    if (fixed == 0) {
        if (c->max_size != 0 && size > c->max_size)
            return edb__err(EDB_TOOBIG, "%s: %zu bytes, the column holds at most %u", what, size,
                            (unsigned)c->max_size);
        /* a single-valued value may be long (longval.c), values of a
         * multi-valued column live in the record */
        size_t most = (c->flags & EDB_COL_MULTIVALUED) ? EDB__RECORD_MAX : EDB_LV_MAX;
        if (size > most)
            return edb__err(EDB_TOOBIG, "%s: %zu bytes (at most %zu)", what, size, most);
        if (c->type == EDB_COL_TEXT && !utf8_ok(data, size))
            return edb__err(EDB_INVAL, "%s: text is not valid UTF-8 (or holds NUL)", what);
    }
    return 0;
}

int
edb__colval_set(edb__colval *v, const edb__column *c, const void *data, size_t size, bool append)
{
    bool multi = (c->flags & EDB_COL_MULTIVALUED) != 0;
    v->sep = false;
    if (data == NULL) {
        v->null = true;
        v->count = 0;
        v->area.len = 0;
        return 0;
    }
    if (!multi) {
        EDB_RET(edb__buf_set(&v->area, data, size));
        v->null = false;
        v->count = 1;
        return 0;
    }
    if (!append || v->null) {
        v->area.len = 0;
        v->count = 0;
    }
    uint8_t len[4];
    wr32(len, (uint32_t)size);
    size_t old = v->area.len;
    if (edb__buf_add(&v->area, len, 4) < 0 || edb__buf_add(&v->area, data, size) < 0) {
        v->area.len = old;
        return EDB_NOMEM;
    }
    v->count++;
    v->null = false;
    return 0;
}

/* The byte offset and size of value @n (1-based, at most v->count) of a
 * multi-valued in-memory column. */
static void
mv_locate(const edb__colval *v, uint32_t n, size_t *off, size_t *len)
{
    size_t o = 0;
    for (uint32_t i = 1; i < n; i++)
        o += 4 + (size_t)rd32(v->area.p + o);
    *off = o;
    *len = 4 + (size_t)rd32(v->area.p + o);
}

int
edb__colval_mv_find(const edb__colval *v, const void *data, size_t size, uint32_t skip)
{
    size_t off = 0;
    for (uint32_t i = 1; !v->null && i <= v->count; i++) {
        uint32_t len = rd32(v->area.p + off);
        if (i != skip && len == size && (size == 0 || memcmp(v->area.p + off + 4, data, size) == 0))
            return (int)i;
        off += 4 + (size_t)len;
    }
    return 0;
}

int
edb__colval_set_itag(edb__colval *v, uint32_t itag, const void *data, size_t size)
{
    uint32_t n = v->null ? 0 : v->count;
    if (itag == 0 || itag > n) {
        if (data == NULL)
            return 0;
        size_t old = v->null ? 0 : v->area.len;
        uint8_t len[4];
        wr32(len, (uint32_t)size);
        v->area.len = old;
        if (edb__buf_add(&v->area, len, 4) < 0 || edb__buf_add(&v->area, data, size) < 0) {
            v->area.len = old;
            return EDB_NOMEM;
        }
        v->count = n + 1;
        v->null = false;
        return 0;
    }
    size_t off, len;
    mv_locate(v, itag, &off, &len);
    size_t tail = v->area.len - off - len;
    size_t nlen = data == NULL ? 0 : 4 + size;
    if (nlen > len)
        EDB_RET(edb__buf_reserve(&v->area, v->area.len + nlen - len));
    memmove(v->area.p + off + nlen, v->area.p + off + len, tail);
    if (data != NULL) {
        wr32(v->area.p + off, (uint32_t)size);
        if (size)
            memcpy(v->area.p + off + 4, data, size);
    }
    v->area.len = off + nlen + tail;
    if (data == NULL && --v->count == 0) {
        v->null = true;
        v->area.len = 0;
    }
    return 0;
}

bool
edb__colview_value(const edb__colview *v, bool multi, uint32_t n, const uint8_t **data, size_t *size)
{
    if (v->null || n == 0 || n > v->count)
        return false;
    if (!multi || v->single) {
        *data = v->area;
        *size = v->len;
        return true;
    }
    size_t off = 0;
    for (uint32_t i = 1;; i++) {
        uint32_t len = rd32(v->area + off);
        if (i == n) {
            *data = v->area + off + 4;
            *size = len;
            return true;
        }
        off += 4 + (size_t)len;
    }
}

/* Count the (len, bytes) pairs of a multi-valued area; -1 when malformed. */
static long
mv_count(const uint8_t *a, size_t len)
{
    size_t off = 0;
    long n = 0;
    while (off < len) {
        if (4 > len - off)
            return -1;
        uint32_t l = rd32(a + off);
        if (l > len - off - 4)
            return -1;
        off += 4 + (size_t)l;
        n++;
    }
    return n;
}

/* ------------------------------------------------------------------ records */

void
edb__rec_free(edb__rec *r)
{
    if (r->cols != NULL)
        for (uint32_t i = 0; i < r->ncols; i++)
            edb__buf_free(&r->cols[i].area);
    free(r->cols);
    r->cols = NULL;
    r->ncols = 0;
}

static int
rec_alloc(edb__rec *r, const edb__table *t)
{
    edb__rec_free(r);
    r->cols = calloc(t->ncols ? t->ncols : 1, sizeof *r->cols);
    if (r->cols == NULL)
        return edb__err(EDB_NOMEM, "record");
    r->ncols = t->ncols;
    return 0;
}

static int
set_default(edb__colval *v, const edb__column *c)
{
    v->sep = false;
    if (!c->has_default) {
        v->null = true;
        v->count = 0;
        v->area.len = 0;
        return 0;
    }
    return edb__colval_set(v, c, c->default_value, c->default_size, false);
}

int
edb__rec_init(edb__rec *r, const edb__table *t)
{
    if (r->cols == NULL || r->ncols != t->ncols || t->ncols == 0) {
        EDB_RET(rec_alloc(r, t));
    } else {
        for (uint32_t i = 0; i < t->ncols; i++) {     /* as calloc'd, buffers kept */
            r->cols[i].null = false;
            r->cols[i].count = 0;
            r->cols[i].area.len = 0;
        }
    }
    for (uint32_t i = 0; i < t->ncols; i++)
        EDB_RET(set_default(&r->cols[i], &t->cols[i]));
    return 0;
}

/* The parsed header: N, bitmap and offsets pointers, data pointer and size. */
typedef edb__rechdr hdr;

/* @all: check every end offset; otherwise the last one only (the reader of a
 * column checks the two around it, hdr_col / edb__rec_hdr_view). */
static int
parse_hdr(hdr *h, const void *raw, size_t len, bool all)
{
    const uint8_t *p = raw;
    if (len < 4)
        return edb__err(EDB_CORRUPT, "record of %zu bytes", len);
    if (p[0] < EDB__RECORD_VERSION || p[0] > EDB__RECORD_VERSION_W)
        return edb__err(p[0] > EDB__RECORD_VERSION_W ? EDB_VERSION : EDB_CORRUPT,
                        "record format version %u", p[0]);
    bool lv = p[0] == EDB__RECORD_VERSION_LV;
    h->w = 4;
    if (p[0] == EDB__RECORD_VERSION_W) {
        if ((p[1] & 3) == 3 || (p[1] & ~7u) != 0)
            return edb__err(EDB_CORRUPT, "record: version 3 header flags 0x%02x", p[1]);
        h->w = 1u << (p[1] & 3);
        lv = (p[1] & 4) != 0;
    }
    h->n = (uint32_t)p[2] | (uint32_t)p[3] << 8;
    size_t b = (h->n + 7) / 8;
    size_t maps = lv ? 2 * b : b;
    if (maps + h->w * (size_t)h->n > len - 4)
        return edb__err(EDB_CORRUPT, "record header of %u columns in %zu bytes", h->n, len);
    h->bitmap = p + 4;
    h->sepmap = lv ? p + 4 + b : NULL;
    h->offs = p + 4 + maps;
    h->data = h->offs + h->w * (size_t)h->n;
    h->dlen = len - (size_t)(h->data - p);
    uint32_t prev = 0;
    if (!all && h->n > 0)
        prev = edb__rec_off(h->offs, h->w, h->n - 1);
    for (uint32_t i = 0; all && i < h->n; i++) {
        uint32_t end = edb__rec_off(h->offs, h->w, i);
        if (end < prev || end > h->dlen)
            return edb__err(EDB_CORRUPT, "record: column %u ends at %u of %zu", i + 1, end, h->dlen);
        prev = end;
    }
    if (prev != h->dlen)
        return edb__err(EDB_CORRUPT, "record: %zu trailing bytes", h->dlen - prev);
    return 0;
}

static int
hdr_col(edb__colview *v, const hdr *h, const edb__column *c, edb_colid col)
{
    uint32_t i = col - 1;
    uint32_t start = i == 0 ? 0 : edb__rec_off(h->offs, h->w, i - 1);
    uint32_t end = edb__rec_off(h->offs, h->w, i);
    if (end < start || end > h->dlen)
        return edb__err(EDB_CORRUPT, "record: column %u ends at %u of %zu", col, end, h->dlen);
    v->null = (h->bitmap[i / 8] >> (i % 8)) & 1;
    v->single = false;
    v->area = h->data + start;
    v->len = end - start;
    v->sep = h->sepmap != NULL && ((h->sepmap[i / 8] >> (i % 8)) & 1);
    if (v->sep && (v->null || (c->flags & EDB_COL_MULTIVALUED) || v->len != EDB__LVREF_SIZE ||
                   (c->type != EDB_COL_TEXT && c->type != EDB_COL_BINARY)))
        return edb__err(EDB_CORRUPT, "record: column %u: a long-value reference of %zu bytes",
                        col, v->len);
    if (v->null) {
        if (v->len != 0)
            return edb__err(EDB_CORRUPT, "record: NULL column %u has %zu bytes", col, v->len);
        v->count = 0;
        return 0;
    }
    if (c->flags & EDB_COL_MULTIVALUED) {
        long n = mv_count(v->area, v->len);
        if (n < 0)
            return edb__err(EDB_CORRUPT, "record: multi-valued column '%s' is malformed", c->name);
        v->count = (uint32_t)n;
        if (n == 0)
            v->null = true;
    } else {
        v->count = 1;
    }
    return 0;
}

int
edb__rec_parse_slow(edb__rechdr *out, const void *raw, size_t len)
{
    return parse_hdr(out, raw, len, false);
}

int
edb__rec_hdr_view_slow(edb__colview *out, const edb__table *t, const edb__rechdr *h, edb_colid col)
{
    if (h->n > t->ncols)
        return edb__err(EDB_CORRUPT, "record of table '%s' has %u columns, the table %u", t->name,
                        h->n, t->ncols);
    const edb__column *c = &t->cols[col - 1];
    if (col > h->n) {
        /* The column was added after this record was written. */
        memset(out, 0, sizeof *out);
        out->null = !c->has_default;
        if (c->has_default) {
            out->single = true;     /* the raw default, also for a multi-valued column */
            out->count = 1;
            out->area = c->default_value;
            out->len = c->default_size;
        }
        return 0;
    }
    return hdr_col(out, h, c, col);
}

int
edb__rec_view(edb__colview *out, const edb__table *t, const void *raw, size_t len, edb_colid col)
{
    hdr h;
    EDB_RET(parse_hdr(&h, raw, len, true));
    return edb__rec_hdr_view(out, t, &h, col);
}

int
edb__rec_decode(edb__rec *r, const edb__table *t, const void *raw, size_t len)
{
    hdr h;
    EDB_RET(parse_hdr(&h, raw, len, true));
    if (h.n > t->ncols)
        return edb__err(EDB_CORRUPT, "record of table '%s' has %u columns, the table %u", t->name,
                        h.n, t->ncols);
    EDB_RET(rec_alloc(r, t));
    for (uint32_t i = 0; i < t->ncols; i++) {
        if (i >= h.n || (t->cols[i].flags & EDB__COL_DROPPED)) {
            /* a dropped column's value is left behind when the record is
             * written again (a dropped column has no default: NULL) */
            EDB_RET(set_default(&r->cols[i], &t->cols[i]));
            continue;
        }
        edb__colview v;
        EDB_RET(hdr_col(&v, &h, &t->cols[i], i + 1));
        r->cols[i].null = v.null;
        r->cols[i].sep = v.sep;
        r->cols[i].count = v.count;
        EDB_RET(edb__buf_set(&r->cols[i].area, v.area, v.len));
    }
    return 0;
}

int
edb__rec_encode(const edb__rec *r, edb__buf *out, bool narrow)
{
    uint32_t n = r->ncols;
    if (n > 0xFFFF)
        return edb__err(EDB_LIMIT, "record of %u columns", n);
    size_t b = (n + 7) / 8;
    bool lv = false;
    size_t dsize = 0;
    for (uint32_t i = 0; i < n; i++) {
        lv |= r->cols[i].sep && !r->cols[i].null;
        dsize += r->cols[i].null ? 0 : r->cols[i].area.len;
    }
    size_t maps = lv ? 2 * b : b;
    unsigned wcode = !narrow ? 2 : dsize <= 0xFF ? 0 : dsize <= 0xFFFF ? 1 : 2;
    size_t w = (size_t)1 << wcode;
    size_t total = 4 + maps + w * (size_t)n + dsize;
    if (total > EDB__RECORD_MAX)
        return edb__err(EDB_TOOBIG, "record of %zu bytes (at most %u)", total, EDB__RECORD_MAX);
    EDB_RET(reserve(out, total));
    uint8_t *p = out->p;
    memset(p, 0, 4 + maps);
    if (narrow) {
        p[0] = EDB__RECORD_VERSION_W;
        p[1] = (uint8_t)(wcode | (lv ? 4u : 0u));
    } else {
        p[0] = lv ? EDB__RECORD_VERSION_LV : EDB__RECORD_VERSION;
    }
    p[2] = (uint8_t)n;
    p[3] = (uint8_t)(n >> 8);
    size_t off = 0;
    uint8_t *offs = p + 4 + maps;
    uint8_t *data = offs + w * (size_t)n;
    for (uint32_t i = 0; i < n; i++) {
        const edb__colval *v = &r->cols[i];
        if (v->null) {
            p[4 + i / 8] |= (uint8_t)(1u << (i % 8));
        } else {
            if (v->sep)
                p[4 + b + i / 8] |= (uint8_t)(1u << (i % 8));
            memcpy(data + off, v->area.p, v->area.len);
            off += v->area.len;
        }
        uint8_t *e = offs + w * (size_t)i;
        if (w == 4)
            wr32(e, (uint32_t)off);
        else if (w == 2) {
            e[0] = (uint8_t)off;
            e[1] = (uint8_t)(off >> 8);
        } else {
            e[0] = (uint8_t)off;
        }
    }
    out->len = total;
    return 0;
}

int
edb__rec_narrow(edb__buf *out, const void *raw, size_t len)
{
    hdr h;
    EDB_RET(parse_hdr(&h, raw, len, true));
    const uint8_t *p = raw;
    if (p[0] == EDB__RECORD_VERSION_W)
        return edb__buf_set(out, raw, len);
    size_t b = (h.n + 7) / 8;
    size_t maps = h.sepmap != NULL ? 2 * b : b;
    unsigned code = h.dlen <= 0xFF ? 0 : h.dlen <= 0xFFFF ? 1 : 2;
    size_t w = (size_t)1 << code;
    EDB_RET(reserve(out, 4 + maps + w * h.n + h.dlen));
    uint8_t *q = out->p;
    q[0] = EDB__RECORD_VERSION_W;
    q[1] = (uint8_t)(code | (h.sepmap != NULL ? 4u : 0u));
    q[2] = p[2];
    q[3] = p[3];
    memcpy(q + 4, p + 4, maps);
    uint8_t *offs = q + 4 + maps;
    for (uint32_t i = 0; i < h.n; i++) {
        uint32_t end = edb__rec_off(h.offs, h.w, i);
        for (size_t j = 0; j < w; j++)
            offs[w * i + j] = (uint8_t)(end >> (8 * j));
    }
    if (h.dlen)
        memcpy(offs + w * h.n, h.data, h.dlen);
    out->len = 4 + maps + w * h.n + h.dlen;
    return 0;
}

int
edb__rec_validate(const edb__table *t, const void *raw, size_t len)
{
    hdr h;
    EDB_RET(parse_hdr(&h, raw, len, true));
    if (h.n > t->ncols)
        return edb__err(EDB_CORRUPT, "record of table '%s' has %u columns, the table %u", t->name,
                        h.n, t->ncols);
    for (uint32_t i = 0; i < h.n; i++) {
        const edb__column *c = &t->cols[i];
        edb__colview v;
        EDB_RET(hdr_col(&v, &h, c, i + 1));
        if (c->flags & EDB__COL_DROPPED)
            continue;   /* a value left behind, in a form (multi-valued?) no longer known */
        if (v.sep)
            continue;           /* a reference: longval.c checks its chunks */
        bool multi = (c->flags & EDB_COL_MULTIVALUED) != 0;
        for (uint32_t j = 1; j <= v.count; j++) {
            const uint8_t *d;
            size_t sz;
            if (!edb__colview_value(&v, multi, j, &d, &sz))
                return edb__err(EDB_CORRUPT, "record: column '%s' value %u", c->name, j);
            edb__column relaxed = *c;
            relaxed.max_size = 0;   /* max_size is enforced at write time only */
            if (edb__value_check(&relaxed, d, sz, c->name) < 0)
                return edb__err(EDB_CORRUPT, "record: column '%s' holds an invalid %s value",
                                c->name, edb_coltype_name(c->type));
        }
    }
    return 0;
}

/*
 * record.h: the record codec (record.c documents the bytes) and the small
 * growable buffer the engine uses for keys and records.
 */
#ifndef EDB_RECORD_H
#define EDB_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "catalog.h"
#include "edb.h"

#define EDB__RECORD_VERSION 1
/* A record holding a reference to a long value (record.c, longval.c): old
 * readers refuse it with EDB_VERSION, records without one stay version 1. */
#define EDB__RECORD_VERSION_LV 2
/* Format 5's record (record.c): end offsets of 1, 2 or 4 bytes, long-value
 * references flagged in the header.  Format 4 databases keep versions 1/2. */
#define EDB__RECORD_VERSION_W 3
/* A long-value reference in a column's area (longval.h). */
#define EDB__LVREF_SIZE 20
/* Largest encoded record (LMDB stores it in overflow pages). */
#define EDB__RECORD_MAX (256u << 20)

typedef struct edb__buf { uint8_t *p; size_t len, cap; } edb__buf;

static inline int edb__buf_set(edb__buf *b, const void *data, size_t n);
/* edb__buf_set's general path (grows the buffer). */
int edb__buf_set_slow(edb__buf *b, const void *data, size_t n);
int edb__buf_add(edb__buf *b, const void *data, size_t n);
/* Make room for n bytes in all (len unchanged). */
int edb__buf_reserve(edb__buf *b, size_t n);
void edb__buf_free(edb__buf *b);

/* The little-endian u32 at p. */
static inline uint32_t
edb__rd32le(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#elif !defined(__BYTE_ORDER__)
    v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
#endif
    return v;
}

/* Copy n bytes into b (b->p is never NULL after a successful call). */
static inline int
edb__buf_set(edb__buf *b, const void *data, size_t n)
{
    if (n != 0 && n <= b->cap) {
        if (n >= 8 && n <= 16) {
            /* keys of one or two 8-byte values: two overlapping word copies */
            memcpy(b->p, data, 8);
            memcpy(b->p + n - 8, (const uint8_t *)data + n - 8, 8);
        } else {
            memcpy(b->p, data, n);
        }
        b->len = n;
        return 0;
    }
    return edb__buf_set_slow(b, data, n);
}

/* One column of an in-memory record.  `area` holds the column's bytes as the
 * record stores them: the value (single-valued) or (u32 len, bytes) per value
 * (multi-valued). */
typedef struct edb__colval {
    bool null;
    bool sep;           /* area is a long-value reference (longval.h), not the value */
    uint32_t count;     /* values: 0 when NULL, 1 single-valued, n multi-valued */
    edb__buf area;
} edb__colval;

typedef struct edb__rec {
    uint32_t ncols;
    edb__colval *cols;  /* colid - 1 */
} edb__rec;

/* A column as found in an encoded record, without copying. */
typedef struct edb__colview {
    bool null;          /* NULL (also: absent from an old record with no default) */
    bool single;        /* area is one raw value (a default read from an old record) */
    uint32_t count;
    const uint8_t *area;
    size_t len;
    bool sep;           /* area is a long-value reference (longval.h) */
} edb__colview;

/* Fresh record of table @t: every column NULL or its default.  A record
 * that already has t's column count keeps its value buffers (an insert
 * loop's prepared record, update.c); any other is freed and allocated. */
int edb__rec_init(edb__rec *r, const edb__table *t);
/* Decode an encoded record of @t into @r (copies). EDB_CORRUPT when malformed. */
int edb__rec_decode(edb__rec *r, const edb__table *t, const void *raw, size_t len);
void edb__rec_free(edb__rec *r);
/* Encode @r: as version 3 when @narrow (format 5 databases), else as
 * version 1 or 2 (format 4).  EDB_TOOBIG over EDB__RECORD_MAX. */
int edb__rec_encode(const edb__rec *r, edb__buf *out, bool narrow);
/* Check the header of an encoded record and find column @col (1-based) of
 * table @t in it; columns the record predates read as their default or NULL.
 * EDB_CORRUPT when malformed. */
int edb__rec_view(edb__colview *out, const edb__table *t, const void *raw, size_t len, edb_colid col);

/* The checked header of an encoded record: edb__rec_view in two steps, so
 * that a cursor reading several columns of one record checks its header once.
 * The pointers point into the record's bytes. */
typedef struct edb__rechdr {
    uint32_t n; const uint8_t *bitmap, *offs, *data; size_t dlen;
    const uint8_t *sepmap;      /* version 2/3: bit set = the column is a long-value reference */
    unsigned w;                 /* bytes per end offset: 4 (version 1, 2), 1, 2 or 4 (version 3) */
} edb__rechdr;
/* End offset @i (0-based) of a header's offsets at @offs, @w bytes each. */
static inline uint32_t
edb__rec_off(const uint8_t *offs, unsigned w, uint32_t i)
{
    const uint8_t *e = offs + (size_t)w * i;
    if (w == 1)
        return e[0];
    if (w == 2)
        return (uint32_t)e[0] | (uint32_t)e[1] << 8;
    return edb__rd32le(e);
}
/* Check the header of an encoded record: version, column count, sizes, and
 * the last end offset (the others are checked per column read, by
 * edb__rec_hdr_view; record.c, "Invariants"). */
int edb__rec_parse_slow(edb__rechdr *out, const void *raw, size_t len);
static inline int
edb__rec_parse(edb__rechdr *out, const void *raw, size_t len)
{
    const uint8_t *p = raw;
    /* version 1, or version 3 without long values (p[1] = the width's code) */
    unsigned w = len < 4 ? 0 : p[0] == EDB__RECORD_VERSION ? 4
                 : p[0] == EDB__RECORD_VERSION_W && p[1] < 3 ? 1u << p[1] : 0;
    if (w != 0) {
        uint32_t n = (uint32_t)p[2] | (uint32_t)p[3] << 8;
        size_t b = (n + 7) / 8;
        if (b + w * (size_t)n <= len - 4) {
            out->n = n;
            out->w = w;
            out->bitmap = p + 4;
            out->offs = p + 4 + b;
            out->data = out->offs + w * (size_t)n;
            out->dlen = len - (size_t)(out->data - p);
            out->sepmap = NULL;
            if ((n == 0 ? 0 : edb__rec_off(out->offs, w, n - 1)) == out->dlen)
                return 0;
        }
    }
    return edb__rec_parse_slow(out, raw, len);     /* EDB_CORRUPT or EDB_VERSION */
}
/* Column @col (1-based, at most t->ncols) of table @t in a record whose
 * header @h was checked by edb__rec_parse; EDB_CORRUPT when the record has
 * more columns than @t.  The inline part serves a non-NULL single-valued
 * column the record holds; the rest (NULL, multi-valued, a column the record
 * predates, errors) is edb__rec_hdr_view_slow. */
int edb__rec_hdr_view_slow(edb__colview *out, const edb__table *t, const edb__rechdr *h, edb_colid col);
static inline int
edb__rec_hdr_view(edb__colview *out, const edb__table *t, const edb__rechdr *h, edb_colid col)
{
    uint32_t i = col - 1;
    if (col <= h->n && h->n <= t->ncols && !(t->cols[i].flags & EDB_COL_MULTIVALUED) &&
        !((h->bitmap[i / 8] >> (i % 8)) & 1) && h->sepmap == NULL) {
        uint32_t end = edb__rec_off(h->offs, h->w, i);
        uint32_t start = i == 0 ? 0 : edb__rec_off(h->offs, h->w, i - 1);
        if (end < start || end > h->dlen)
            return edb__rec_hdr_view_slow(out, t, h, col);     /* EDB_CORRUPT */
        out->null = false;
        out->single = false;
        out->count = 1;
        out->area = h->data + start;
        out->len = end - start;
        out->sep = false;
        return 0;
    }
    return edb__rec_hdr_view_slow(out, t, h, col);
}
/* The version 3 encoding of the record @raw (version 1, 2 or 3; dbtool
 * upgrade 4 -> 5): the same columns, bitmaps and data, narrow offsets.
 * Needs no schema; EDB_CORRUPT / EDB_VERSION when @raw is no record. */
int edb__rec_narrow(edb__buf *out, const void *raw, size_t len);
/* Check a whole encoded record (check.c): header, offsets, every value valid
 * for its column's type. */
int edb__rec_validate(const edb__table *t, const void *raw, size_t len);

/* The n-th value (1-based) of a column view or in-memory column; false when absent. */
bool edb__colview_value(const edb__colview *v, bool multi, uint32_t n, const uint8_t **data, size_t *size);

/* Validate a native value for a column: size, UTF-8 for TEXT, NaN, max_size.
 * Returns 0, EDB_INVAL or EDB_TOOBIG with a message naming @what. */
int edb__value_check(const edb__column *c, const void *data, size_t size, const char *what);
/* Set (replace) or append a value into an in-memory column. */
int edb__colval_set(edb__colval *v, const edb__column *c, const void *data, size_t size, bool append);

/* Multi-valued in-memory column: the itag (1-based) of the first value
 * bytewise equal to (data, size), not counting itag @skip; 0 when none. */
int edb__colval_mv_find(const edb__colval *v, const void *data, size_t size, uint32_t skip);
/* Multi-valued in-memory column: replace value @itag (1..count) with @data,
 * or delete it (data NULL: later values move up; the last one leaves the
 * column NULL); itag 0 or past the end appends (data NULL: nothing). */
int edb__colval_set_itag(edb__colval *v, uint32_t itag, const void *data, size_t size);

#endif

/*
 * longval.c: long values in chunks.
 *
 * Where the bytes are.  A single-valued TEXT or BINARY value of more than
 * EDB__LV_INLINE_MAX bytes is stored outside its record: the record holds a
 * reference (longval.h: id, size, generation; record.c marks the column in
 * the version-2 header) and the bytes are chunks in edb.records, under the
 * 4-byte prefix 0, which no table has (compact ids start at 1):
 *
 * | offset | size | meaning                                               |
 * |--------|------|-------------------------------------------------------|
 * | 0      | 4    | 00 00 00 00: the long-value range of edb.records      |
 * | 4      | 4    | the table's compact id, big-endian                    |
 * | 8      | 8    | the value's id, big-endian (table counter EDB__LV_COUNTER) |
 * | 16     | 4    | chunk number, big-endian, from 0                      |
 *
 * Chunk k holds bytes [k * CHUNK, min(size, (k + 1) * CHUNK)) of the value:
 * every chunk is EDB__LV_CHUNK bytes but the last.  Invariants: a reference
 * of size s has exactly ceil(s / CHUNK) chunks with those sizes, and every
 * chunk belongs to exactly one reference of a record of its table
 * (edb__lv_check reports orphans, missing and wrong-size chunks).
 *
 * Reads map only the chunks that hold the bytes asked for.  Writes in a
 * prepared update (edb_column_write) go to copies of the touched chunks,
 * held by the cursor (an edb__lvw per column) until edb_update: a cancel
 * drops them and the stored value never changed.  edb_update writes the
 * dirty chunks over the value's own chunks (same id, new generation in the
 * reference, so the no-lost-update compare sees the change), rewrites the
 * chunks a resize cut or extended, and deletes the chunks past the new end.
 * A value set whole (edb_column_set), or one that was inline before, gets a
 * new id; the chunks of a reference the new record no longer holds are
 * deleted in the same transaction, as are those of a deleted record and of
 * a dropped table.  Every put and delete goes through keyspace.h.
 *
 * Thread safety: as the cursor's session.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "error.h"
#include "keyspace.h"
#include "longval.h"

_Atomic uint64_t edb__lv_chunk_reads;
_Atomic uint64_t edb__lv_chunk_writes;

#define CH ((uint64_t)EDB__LV_CHUNK)
#define KEYLEN 16

typedef struct lvchunk { uint32_t no; uint8_t *p; } lvchunk;

struct edb__lvw {
    edb__lvw *next;
    edb_colid col;
    uint32_t kid;
    MDB_dbi dbi;
    edb__lvref base;        /* base.id 0: the base bytes are `inl` */
    edb__buf inl;
    uint64_t valid;         /* base bytes [0, valid) hold; later ones read as 0 */
    uint64_t size;          /* the value's size now */
    uint32_t n, cap;
    lvchunk *ch;            /* dirty chunks by number, each CH bytes, 0 past `size` */
};

static void
wr64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
rd64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void
edb__lvref_get(edb__lvref *out, const uint8_t *p)
{
    out->id = rd64le(p);
    out->size = rd64le(p + 8);
    out->gen = edb__rd32le(p + 16);
}

static void
lvref_put(uint8_t *p, const edb__lvref *r)
{
    wr64le(p, r->id);
    wr64le(p + 8, r->size);
    p[16] = (uint8_t)r->gen; p[17] = (uint8_t)(r->gen >> 8);
    p[18] = (uint8_t)(r->gen >> 16); p[19] = (uint8_t)(r->gen >> 24);
}

static uint64_t
nchunks(uint64_t size)
{
    return (size + CH - 1) / CH;
}

/* Size of chunk @no of a value of @size bytes. */
static size_t
chunk_len(uint64_t size, uint64_t no)
{
    uint64_t lo = no * CH;
    return (size_t)(size - lo < CH ? size - lo : CH);
}

static void
chunk_key(uint8_t *k, uint32_t kid, uint64_t id, uint64_t no)
{
    for (int i = 0; i < 4; i++)
        k[i] = (uint8_t)(kid >> (24 - 8 * i));
    for (int i = 0; i < 8; i++)
        k[4 + i] = (uint8_t)(id >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        k[12 + i] = (uint8_t)(no >> (24 - 8 * i));
}

static edb__ks
lv_ks(MDB_dbi dbi)
{
    edb__ks ks = { .dbi = dbi, .plen = EDB__KS_PREFIX };
    return ks;      /* prefix 00 00 00 00, in formats 4 and 5 (keyspace.h) */
}

/* Chunk @no of value (kid, id) of @size bytes: a pointer into LMDB's pages. */
static int
chunk_get(MDB_txn *txn, MDB_dbi dbi, uint32_t kid, uint64_t id, uint64_t size, uint64_t no,
          const uint8_t **out)
{
    uint8_t kb[KEYLEN];
    chunk_key(kb, kid, id, no);
    MDB_val k = { KEYLEN, kb }, d;
    edb__ks ks = lv_ks(dbi);
    int rc = edb__ks_get(txn, &ks, &k, &d);
    atomic_fetch_add_explicit(&edb__lv_chunk_reads, 1, memory_order_relaxed);
    if (edb__mdb_is_notfound(rc))
        return edb__err(EDB_CORRUPT, "long value %llu of table id %u: chunk %llu is missing",
                        (unsigned long long)id, (unsigned)kid, (unsigned long long)no);
    EDB_RET(edb__mdb_err(rc, "read long value"));
    if (d.mv_size != chunk_len(size, no))
        return edb__err(EDB_CORRUPT, "long value %llu of table id %u: chunk %llu has %zu bytes, "
                        "not %zu", (unsigned long long)id, (unsigned)kid, (unsigned long long)no,
                        d.mv_size, chunk_len(size, no));
    *out = d.mv_data;
    return 0;
}

/* Bytes [off, off + n) of a base value (chunks of @base, or @inl when
 * base->id is 0) of which only [0, valid) holds; the rest reads as 0. */
static int
base_read(MDB_txn *txn, MDB_dbi dbi, uint32_t kid, const edb__lvref *base, const uint8_t *inl,
          uint64_t valid, uint64_t off, uint8_t *dst, size_t n)
{
    uint64_t end = off + n < valid ? off + n : valid;
    size_t have = end > off ? (size_t)(end - off) : 0;
    if (have < n)
        memset(dst + have, 0, n - have);       /* past the valid bytes */
    while (off < end) {
        uint64_t no = off / CH, in = off % CH;
        size_t take = (size_t)(CH - in < end - off ? CH - in : end - off);
        if (base->id == 0) {
            memcpy(dst, inl + off, take);
        } else {
            const uint8_t *p = NULL;
            EDB_RET(chunk_get(txn, dbi, kid, base->id, base->size, no, &p));
            memcpy(dst, p + in, take);
        }
        dst += take;
        n -= take;
        off += take;
    }
    return 0;
}

/* ------------------------------------------------------------------ pending changes */

static void
lvw_free(edb__lvw *w)
{
    for (uint32_t i = 0; i < w->n; i++)
        free(w->ch[i].p);
    free(w->ch);
    edb__buf_free(&w->inl);
    free(w);
}

void
edb__lvw_free_all(edb__lvw **list)
{
    while (*list != NULL) {
        edb__lvw *w = *list;
        *list = w->next;
        lvw_free(w);
    }
}

void
edb__lvw_drop(edb__lvw **list, edb_colid col)
{
    for (edb__lvw **pp = list; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->col == col) {
            edb__lvw *w = *pp;
            *pp = w->next;
            lvw_free(w);
            return;
        }
}

static edb__lvw *
lvw_find(edb__lvw *list, edb_colid col)
{
    for (; list != NULL; list = list->next)
        if (list->col == col)
            return list;
    return NULL;
}

bool
edb__lvw_size(edb__lvw *list, edb_colid col, uint64_t *size)
{
    edb__lvw *w = lvw_find(list, col);
    if (w != NULL)
        *size = w->size;
    return w != NULL;
}

/* The pending changes of @col, made from the prepared record's column
 * (or an empty value when @fresh) the first time. */
static int
lvw_get(edb__lvw **out, edb_cursor *c, edb_colid col, bool fresh)
{
    edb__lvw *w = lvw_find(c->lvw, col);
    if (w != NULL && !fresh) {
        *out = w;
        return 0;
    }
    if (w != NULL)
        edb__lvw_drop(&c->lvw, col);
    if ((w = calloc(1, sizeof *w)) == NULL)
        return edb__err(EDB_NOMEM, "table '%s': long value", c->tname);
    w->col = col;
    w->kid = c->t->kid;
    w->dbi = c->t->rec.dbi;
    const edb__colval *v = &c->rec.cols[col - 1];
    if (!fresh && !v->null && v->sep) {
        edb__lvref_get(&w->base, v->area.p);
        w->size = w->valid = w->base.size;
    } else if (!fresh && !v->null) {
        if (edb__buf_set(&w->inl, v->area.p, v->area.len) < 0) {
            free(w);
            return EDB_NOMEM;
        }
        w->size = w->valid = v->area.len;
    }
    w->next = c->lvw;
    c->lvw = w;
    *out = w;
    return 0;
}

/* The dirty copy of chunk @no, made from the base the first time. */
static int
dirty(edb__lvw *w, MDB_txn *txn, uint32_t no, uint8_t **out)
{
    uint32_t lo = 0, hi = w->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (w->ch[mid].no < no)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < w->n && w->ch[lo].no == no) {
        *out = w->ch[lo].p;
        return 0;
    }
    if (w->n == w->cap) {
        uint32_t cap = w->cap ? 2 * w->cap : 8;
        lvchunk *ch = realloc(w->ch, cap * sizeof *ch);
        if (ch == NULL)
            return edb__err(EDB_NOMEM, "long value: chunk list");
        w->ch = ch;
        w->cap = cap;
    }
    uint8_t *p = malloc(CH);
    if (p == NULL)
        return edb__err(EDB_NOMEM, "long value: chunk");
    int rc = base_read(txn, w->dbi, w->kid, &w->base, w->inl.p, w->valid < w->size ? w->valid : w->size,
                       (uint64_t)no * CH, p, (size_t)CH);
    if (rc < 0) {
        free(p);
        return rc;
    }
    memmove(&w->ch[lo + 1], &w->ch[lo], (w->n - lo) * sizeof *w->ch);
    w->ch[lo] = (lvchunk){ no, p };
    w->n++;
    *out = p;
    return 0;
}

static uint8_t *
dirty_find(const edb__lvw *w, uint64_t no)
{
    uint32_t lo = 0, hi = w->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (w->ch[mid].no < no)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < w->n && w->ch[lo].no == no ? w->ch[lo].p : NULL;
}

static int
lvw_write(edb__lvw *w, MDB_txn *txn, uint64_t off, const uint8_t *data, size_t n)
{
    while (n > 0) {
        uint64_t no = off / CH, in = off % CH;
        size_t take = (size_t)(CH - in < n ? CH - in : n);
        uint8_t *p = NULL;
        EDB_RET(dirty(w, txn, (uint32_t)no, &p));
        memcpy(p + in, data, take);
        data += take;
        n -= take;
        off += take;
        if (off > w->size)
            w->size = off;
    }
    return 0;
}

/* Resize to @size: bytes past the old end read as 0. */
static void
lvw_resize(edb__lvw *w, uint64_t size)
{
    if (size < w->size) {
        if (w->valid > size)
            w->valid = size;
        uint32_t keep = 0;
        for (uint32_t i = 0; i < w->n; i++) {
            uint64_t lo = (uint64_t)w->ch[i].no * CH;
            if (lo >= size) {
                free(w->ch[i].p);
                continue;
            }
            if (size - lo < CH)
                memset(w->ch[i].p + (size - lo), 0, (size_t)(CH - (size - lo)));
            w->ch[keep++] = w->ch[i];
        }
        w->n = keep;
    }
    w->size = size;
}

/* Bytes [off, off + n) of the pending value (off + n <= size). */
static int
lvw_read(const edb__lvw *w, MDB_txn *txn, uint64_t off, uint8_t *dst, size_t n)
{
    while (n > 0) {
        uint64_t no = off / CH, in = off % CH;
        size_t take = (size_t)(CH - in < n ? CH - in : n);
        const uint8_t *p = dirty_find(w, no);
        if (p != NULL)
            memcpy(dst, p + in, take);
        else
            EDB_RET(base_read(txn, w->dbi, w->kid, &w->base, w->inl.p, w->valid, off, dst, take));
        dst += take;
        n -= take;
        off += take;
    }
    return 0;
}

int
edb__lv_set(edb_cursor *c, edb_colid col, const void *data, size_t size)
{
    edb__lvw *w;
    EDB_RET(lvw_get(&w, c, col, true));
    int rc = lvw_write(w, NULL, 0, data, size);     /* no base: no read */
    if (rc < 0)
        edb__lvw_drop(&c->lvw, col);
    return rc;
}

int
edb_column_write(edb_cursor *c, edb_colid col, uint64_t offset, const void *data, size_t size,
                 unsigned flags)
{
    if (c == NULL)
        return edb__err(EDB_INVAL, "edb_column_write: cursor is NULL");
    EDB_RET(edb__cursor_check_live(c, "edb_column_write"));
    if (c->prep == 0)
        return edb__err(EDB_NOUPDATE, "edb_column_write: no update is prepared on '%s'", c->tname);
    if ((flags & ~(EDB_SET_APPEND | EDB_SET_SIZE)) || flags == (EDB_SET_APPEND | EDB_SET_SIZE))
        return edb__err(EDB_INVAL, "edb_column_write: flags 0x%x", flags);
    EDB_RET(edb__colid_resolve(&col, c->t));
    EDB_RET(edb__update_rec_fit(c));
    const edb__column *def = &c->t->cols[col - 1];
    if ((def->flags & EDB_COL_MULTIVALUED) || (def->type != EDB_COL_TEXT && def->type != EDB_COL_BINARY))
        return edb__err(EDB_TYPE, "table '%s': column '%s': edb_column_write needs a single-valued "
                        "TEXT or BINARY column", c->tname, def->name);
    if ((flags & EDB_SET_SIZE) ? (data != NULL || size != 0) : (data == NULL && size != 0))
        return edb__err(EDB_INVAL, "table '%s': column '%s': edb_column_write: data %s with size %zu",
                        c->tname, def->name, data ? "given" : "NULL", size);
    if (def->type == EDB_COL_TEXT && data != NULL) {
        edb__column piece = *def;
        piece.max_size = 0;
        char what[160];
        snprintf(what, sizeof what, "table '%s': column '%s'", c->tname, def->name);
        EDB_RET(edb__value_check(&piece, data, size, what));
    }
    uint64_t most = def->max_size != 0 && def->max_size < EDB_LV_MAX ? def->max_size : EDB_LV_MAX;
    uint64_t cur = 0;
    edb__lvw *w = lvw_find(c->lvw, col);
    const edb__colval *v = &c->rec.cols[col - 1];
    if (w != NULL) {
        cur = w->size;
    } else if (!v->null && v->sep) {
        edb__lvref r;
        edb__lvref_get(&r, v->area.p);
        cur = r.size;
    } else if (!v->null) {
        cur = v->area.len;
    }
    if (flags & EDB_SET_APPEND)
        offset = cur;
    uint64_t end = (flags & EDB_SET_SIZE) ? offset : offset + size;
    if (offset > most || size > most || end > most)
        return edb__err(EDB_TOOBIG, "table '%s': column '%s': a value of %llu bytes (at most %llu)",
                        c->tname, def->name,
                        (unsigned long long)(end < offset ? UINT64_MAX : end), (unsigned long long)most);
    if (!(flags & EDB_SET_SIZE) && offset > cur)
        return edb__err(EDB_INVAL, "table '%s': column '%s': offset %llu is past the value's end "
                        "(%llu bytes)", c->tname, def->name, (unsigned long long)offset,
                        (unsigned long long)cur);
    EDB_RET(lvw_get(&w, c, col, false));
    if (flags & EDB_SET_SIZE) {
        lvw_resize(w, offset);
        edb__err_clear();
        return 0;
    }
    MDB_txn *txn;
    EDB_RET(edb__txn_enter(c->s, false, &txn));
    int rc = lvw_write(w, txn, offset, data, size);
    rc = edb__txn_leave(c->s, rc);
    if (rc == 0)
        edb__err_clear();
    return rc;
}

/* ------------------------------------------------------------------ edb_update */

int
edb__lv_plan(edb_cursor *c, MDB_txn *txn, edb__rec *rec)
{
    uint64_t next = 0;
    bool have_next = false;
    for (edb__lvw *w = c->lvw; w != NULL; w = w->next) {
        edb__colval *v = &rec->cols[w->col - 1];
        if (w->size <= EDB__LV_INLINE_MAX) {
            EDB_RET(edb__buf_reserve(&v->area, w->size ? (size_t)w->size : 1));
            EDB_RET(lvw_read(w, txn, 0, v->area.p, (size_t)w->size));
            v->area.len = (size_t)w->size;
            v->sep = false;
        } else {
            edb__lvref r = { w->base.id, w->size, w->base.gen + 1 };
            if (r.id == 0) {
                if (!have_next)
                    EDB_RET(edb__counter_get(&next, c->s->env, txn, c->t->kid, EDB__LV_COUNTER));
                have_next = true;
                if (next == UINT64_MAX)
                    return edb__err(EDB_LIMIT, "table '%s': long-value ids exhausted", c->tname);
                r.id = ++next;
            }
            EDB_RET(edb__buf_reserve(&v->area, EDB__LVREF_SIZE));
            lvref_put(v->area.p, &r);
            v->area.len = EDB__LVREF_SIZE;
            v->sep = true;
        }
        v->null = false;
        v->count = 1;
    }
    return 0;
}

static int
chunk_put(MDB_txn *txn, MDB_dbi dbi, uint32_t kid, uint64_t id, uint64_t no, const void *p, size_t n)
{
    uint8_t kb[KEYLEN];
    chunk_key(kb, kid, id, no);
    MDB_val k = { KEYLEN, kb }, d = { n, (void *)p };
    edb__ks ks = lv_ks(dbi);
    atomic_fetch_add_explicit(&edb__lv_chunk_writes, 1, memory_order_relaxed);
    return edb__mdb_err(edb__ks_put(txn, &ks, &k, &d, 0), "write long value");
}

static int
chunk_del(MDB_txn *txn, MDB_dbi dbi, uint32_t kid, uint64_t id, uint64_t no)
{
    uint8_t kb[KEYLEN];
    chunk_key(kb, kid, id, no);
    MDB_val k = { KEYLEN, kb };
    edb__ks ks = lv_ks(dbi);
    int rc = edb__ks_del(txn, &ks, &k);
    return edb__mdb_is_notfound(rc) ? 0 : edb__mdb_err(rc, "delete long value");
}

static int
free_value(MDB_txn *txn, MDB_dbi dbi, uint32_t kid, const edb__lvref *r)
{
    for (uint64_t no = 0; no < nchunks(r->size); no++)
        EDB_RET(chunk_del(txn, dbi, kid, r->id, no));
    return 0;
}

/* Write the chunks of pending value @w, stored as reference @r. */
static int
write_value(edb__lvw *w, MDB_txn *txn, const edb__lvref *r)
{
    bool inplace = w->base.id != 0 && w->base.id == r->id;
    uint64_t nnew = nchunks(r->size), nold = inplace ? nchunks(w->base.size) : 0;
    uint8_t *tmp = NULL;
    int ret = 0;
    for (uint64_t no = 0; no < nnew; no++) {
        size_t len = chunk_len(r->size, no);
        const uint8_t *p = dirty_find(w, no);
        if (p == NULL && inplace) {
            uint64_t end_new = no * CH + len;
            uint64_t end_old = w->base.size < (no + 1) * CH ? w->base.size : (no + 1) * CH;
            if (end_new <= w->valid && end_old == end_new)
                continue;       /* the stored chunk is this chunk */
        }
        if (p == NULL) {
            if (tmp == NULL && (tmp = malloc(CH)) == NULL)
                EDB_ERR(edb__err(EDB_NOMEM, "long value: chunk"));
            EDB_ERR(base_read(txn, w->dbi, w->kid, &w->base, w->inl.p, w->valid, no * CH, tmp, len));
            p = tmp;
        }
        EDB_ERR(chunk_put(txn, w->dbi, w->kid, r->id, no, p, len));
    }
    for (uint64_t no = nnew; no < nold; no++)
        EDB_ERR(chunk_del(txn, w->dbi, w->kid, r->id, no));
err:
    free(tmp);
    return ret;
}

int
edb__lv_apply(edb_cursor *c, MDB_txn *txn, const edb__rec *old, const edb__rec *rec)
{
    uint64_t top = 0;
    for (edb__lvw *w = c->lvw; w != NULL; w = w->next) {
        const edb__colval *v = &rec->cols[w->col - 1];
        if (v->null || !v->sep)
            continue;
        edb__lvref r;
        edb__lvref_get(&r, v->area.p);
        EDB_RET(write_value(w, txn, &r));
        if (r.id != w->base.id && r.id > top)
            top = r.id;
    }
    if (top != 0) {
        uint64_t cur;
        EDB_RET(edb__counter_read(&cur, c->s->env, txn, c->t->kid, EDB__LV_COUNTER));
        if (top > cur)
            EDB_RET(edb__counter_set(c->s->env, txn, c->t->kid, EDB__LV_COUNTER, top));
    }
    for (uint32_t i = 0; old != NULL && i < old->ncols; i++) {
        const edb__colval *o = &old->cols[i];
        if (o->null || !o->sep)
            continue;
        edb__lvref orf, nrf;
        edb__lvref_get(&orf, o->area.p);
        if (i < rec->ncols && !rec->cols[i].null && rec->cols[i].sep) {
            edb__lvref_get(&nrf, rec->cols[i].area.p);
            if (nrf.id == orf.id)
                continue;
        }
        EDB_RET(free_value(txn, c->t->rec.dbi, c->t->kid, &orf));
    }
    return 0;
}

int
edb__lv_free_record(MDB_txn *txn, const edb__table *t, const edb__rec *old)
{
    for (uint32_t i = 0; i < old->ncols; i++) {
        if (old->cols[i].null || !old->cols[i].sep)
            continue;
        edb__lvref r;
        edb__lvref_get(&r, old->cols[i].area.p);
        EDB_RET(free_value(txn, t->rec.dbi, t->kid, &r));
    }
    return 0;
}

int
edb__lv_dropped(edb__buf *out, const edb__table *t, const void *raw, size_t len)
{
    out->len = 0;
    bool any = false;
    for (uint32_t i = 0; i < t->ncols && !any; i++)
        any = (t->cols[i].flags & EDB__COL_DROPPED) &&
              (t->cols[i].type == EDB_COL_TEXT || t->cols[i].type == EDB_COL_BINARY);
    if (!any)
        return 0;
    edb__rechdr h;
    EDB_RET(edb__rec_parse(&h, raw, len));
    if (h.sepmap == NULL)
        return 0;       /* version 1: no references at all */
    for (uint32_t col = 1; col <= h.n && col <= t->ncols; col++) {
        if (!(t->cols[col - 1].flags & EDB__COL_DROPPED))
            continue;
        edb__colview v;
        EDB_RET(edb__rec_hdr_view(&v, t, &h, col));
        if (v.sep)
            EDB_RET(edb__buf_add(out, v.area, EDB__LVREF_SIZE));
    }
    return 0;
}

int
edb__lv_free_dropped(MDB_txn *txn, const edb__table *t, const edb__buf *refs, const edb__rec *rec)
{
    for (size_t off = 0; off + EDB__LVREF_SIZE <= refs->len; off += EDB__LVREF_SIZE) {
        edb__lvref r;
        edb__lvref_get(&r, refs->p + off);
        bool kept = false;
        for (uint32_t i = 0; rec != NULL && i < rec->ncols && !kept; i++) {
            const edb__colval *v = &rec->cols[i];
            if (!v->null && v->sep) {
                edb__lvref n;
                edb__lvref_get(&n, v->area.p);
                kept = n.id == r.id;
            }
        }
        if (!kept)
            EDB_RET(free_value(txn, t->rec.dbi, t->kid, &r));
    }
    return 0;
}

/* Walk the chunk keys of table @kid (0: every table): @fn(ctx, key, data)
 * for each, key without the 4-byte range prefix.  With @del each is deleted
 * after @fn. */
static int
walk(MDB_txn *txn, MDB_dbi dbi, uint32_t kid, bool del,
     int (*fn)(void *ctx, const MDB_val *k, const MDB_val *d), void *ctx)
{
    MDB_cursor *mc;
    EDB_RET(edb__mdb_err(mdb_cursor_open(txn, dbi, &mc), "long values: cursor"));
    uint8_t start[8] = { 0 }, key[EDB__KS_PREFIX + KEYLEN];
    size_t plen = kid ? 8 : 4;
    for (int i = 0; i < 4; i++)
        start[4 + i] = (uint8_t)(kid >> (24 - 8 * i));
    MDB_val k = { plen, start }, d;
    int rc = mdb_cursor_get(mc, &k, &d, MDB_SET_RANGE);
    int ret = 0;
    while (rc == 0 && k.mv_size >= plen && memcmp(k.mv_data, start, plen) == 0) {
        MDB_val rk = { k.mv_size - EDB__KS_PREFIX, (uint8_t *)k.mv_data + EDB__KS_PREFIX };
        if (fn != NULL)
            EDB_ERR(fn(ctx, &rk, &d));
        if (!del) {
            rc = mdb_cursor_get(mc, &k, &d, MDB_NEXT);
            continue;
        }
        if (k.mv_size > sizeof key)
            EDB_ERR(edb__err(EDB_CORRUPT, "long values: a key of %zu bytes", k.mv_size));
        memcpy(key, k.mv_data, k.mv_size);
        MDB_val dk = { k.mv_size - EDB__KS_PREFIX, key + EDB__KS_PREFIX };
        edb__ks ks = lv_ks(dbi);
        EDB_ERR(edb__mdb_err(edb__ks_del(txn, &ks, &dk), "delete long value"));
        k.mv_data = key;
        rc = mdb_cursor_get(mc, &k, &d, MDB_SET_RANGE);
    }
    if (rc != 0 && !edb__mdb_is_notfound(rc))
        ret = edb__mdb_err(rc, "long values: walk");
err:
    mdb_cursor_close(mc);
    return ret;
}

int
edb__lv_drop_table(MDB_txn *txn, const edb__table *t)
{
    return walk(txn, t->rec.dbi, t->kid, true, NULL, NULL);
}

static int
count_one(void *ctx, const MDB_val *k, const MDB_val *d)
{
    (void)k; (void)d;
    (*(uint64_t *)ctx)++;
    return 0;
}

int
edb__lv_count(uint64_t *out, edb_session *s, uint32_t kid)
{
    *out = 0;
    MDB_txn *txn;
    EDB_RET(edb__txn_enter(s, false, &txn));
    uint64_t n = 0;
    int rc = walk(txn, edb__cat(s->env)->recs, kid, false, count_one, &n);
    rc = edb__txn_leave(s, rc);
    if (rc == 0)
        *out = n;
    return rc;
}

/* ------------------------------------------------------------------ reads */

int
edb__lv_read(edb_cursor *c, MDB_txn *txn, edb_colid col, const edb__colview *v,
             uint64_t offset, void *buf, size_t size, uint64_t *total)
{
    bool own = txn == NULL;
    if (own)
        EDB_RET(edb__txn_enter(c->s, false, &txn));
    int rc = 0;
    const edb__lvw *w = c->prep != 0 ? lvw_find(c->lvw, col) : NULL;
    uint64_t whole;
    if (w != NULL) {
        whole = w->size;
    } else {
        edb__lvref r;
        edb__lvref_get(&r, v->area);
        whole = r.size;
    }
    *total = whole;
    size_t n = offset >= whole ? 0 : (size_t)(whole - offset < size ? whole - offset : size);
    if (n > 0 && w != NULL) {
        rc = lvw_read(w, txn, offset, buf, n);
    } else if (n > 0) {
        edb__lvref r;
        edb__lvref_get(&r, v->area);
        rc = base_read(txn, c->t->rec.dbi, c->t->kid, &r, NULL, r.size, offset, buf, n);
    }
    return own ? edb__txn_leave(c->s, rc) : rc;
}

/* ------------------------------------------------------------------ check */

typedef struct lvrefs {
    struct lvent { uint32_t kid; uint64_t id, size, seen; } *e;
    size_t n, cap;
    edb__lv_problem_fn fn;
    void *ctx;
    uint64_t chunks;
    MDB_txn *txn;
    const struct lvent *cur;    /* the walk's current reference */
    uint64_t orphan_kid, orphan_id;
    bool partial;           /* a table's schema could not be read: orphans are not told */
} lvrefs;

static void
report(lvrefs *L, const char *fmt, ...) EDB__PRINTF(2, 3);

static void
report(lvrefs *L, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (L->fn != NULL)
        L->fn(L->ctx, msg);
}

static int
collect(void *ctx, const edb__table *t)
{
    lvrefs *L = ctx;
    MDB_cursor *mc;
    EDB_RET(edb__mdb_err(mdb_cursor_open(L->txn, t->rec.dbi, &mc), "long values: cursor"));
    MDB_val k, d;
    int ret = 0;
    int rc = edb__ks_cursor_get(mc, &t->rec, &k, &d, MDB_FIRST);
    for (; rc == 0; rc = edb__ks_cursor_get(mc, &t->rec, &k, &d, MDB_NEXT)) {
        edb__rechdr h;
        if (edb__rec_parse(&h, d.mv_data, d.mv_size) < 0 || h.sepmap == NULL || h.n > t->ncols)
            continue;   /* a damaged record is check.c's to report */
        for (uint32_t col = 1; col <= h.n; col++) {
            edb__colview v;
            if (edb__rec_hdr_view(&v, t, &h, col) < 0 || !v.sep)
                continue;
            if (L->n == L->cap) {
                size_t cap = L->cap ? 2 * L->cap : 64;
                struct lvent *e = realloc(L->e, cap * sizeof *e);
                if (e == NULL)
                    EDB_ERR(edb__err(EDB_NOMEM, "long values: check"));
                L->e = e;
                L->cap = cap;
            }
            edb__lvref r;
            edb__lvref_get(&r, v.area);
            L->e[L->n++] = (struct lvent){ t->kid, r.id, r.size, 0 };
        }
    }
    if (!edb__mdb_is_notfound(rc))
        ret = edb__mdb_err(rc, "long values: read records");
err:
    mdb_cursor_close(mc);
    return ret;
}

static int
ent_cmp(const void *a, const void *b)
{
    const struct lvent *x = a, *y = b;
    if (x->kid != y->kid)
        return x->kid < y->kid ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int
check_chunk(void *ctx, const MDB_val *k, const MDB_val *d)
{
    lvrefs *L = ctx;
    L->chunks++;
    if (k->mv_size != KEYLEN) {
        report(L, "long values: a key of %zu bytes in their range", k->mv_size + EDB__KS_PREFIX);
        return 0;
    }
    const uint8_t *p = k->mv_data;
    uint32_t kid = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    uint64_t id = 0, no = 0;
    for (int i = 0; i < 8; i++)
        id = id << 8 | p[4 + i];
    for (int i = 0; i < 4; i++)
        no = no << 8 | p[12 + i];
    struct lvent key = { kid, id, 0, 0 };
    struct lvent *e = L->n == 0 ? NULL : bsearch(&key, L->e, L->n, sizeof *L->e, ent_cmp);
    if (e == NULL) {
        if ((kid != L->orphan_kid || id != L->orphan_id) && !L->partial)
            report(L, "long values: orphan chunks of value %llu of table id %u (no record refers "
                   "to them)", (unsigned long long)id, (unsigned)kid);
        L->orphan_kid = kid;
        L->orphan_id = id;
        return 0;
    }
    if (no >= nchunks(e->size) || d->mv_size != chunk_len(e->size, no))
        report(L, "long values: value %llu of table id %u (%llu bytes): chunk %llu of %zu bytes "
               "does not belong", (unsigned long long)id, (unsigned)kid,
               (unsigned long long)e->size, (unsigned long long)no, d->mv_size);
    else
        e->seen++;
    return 0;
}

int
edb__lv_check(edb_session *s, edb__lv_problem_fn fn, void *ctx, uint64_t *refs, uint64_t *chunks)
{
    lvrefs L = { .fn = fn, .ctx = ctx, .orphan_kid = 0, .orphan_id = UINT64_MAX };
    MDB_txn *txn;
    EDB_RET(edb__txn_enter(s, false, &txn));
    L.txn = txn;
    int ret = 0;
    EDB_ERR(edb__catalog_foreach(s->env, txn, collect, &L, &L.partial));
    if (L.n > 0)
        qsort(L.e, L.n, sizeof *L.e, ent_cmp);
    for (size_t i = 1; i < L.n; i++)
        if (ent_cmp(&L.e[i - 1], &L.e[i]) == 0)
            report(&L, "long values: value %llu of table id %u is referred to by two records",
                   (unsigned long long)L.e[i].id, (unsigned)L.e[i].kid);
    EDB_ERR(walk(txn, edb__cat(s->env)->recs, 0, false, check_chunk, &L));
    for (size_t i = 0; i < L.n; i++)
        if (L.e[i].seen != nchunks(L.e[i].size) && (i == 0 || ent_cmp(&L.e[i - 1], &L.e[i]) != 0))
            report(&L, "long values: value %llu of table id %u (%llu bytes) has %llu of its %llu "
                   "chunks", (unsigned long long)L.e[i].id, (unsigned)L.e[i].kid,
                   (unsigned long long)L.e[i].size, (unsigned long long)L.e[i].seen,
                   (unsigned long long)nchunks(L.e[i].size));
    if (refs != NULL)
        *refs = L.n;
    if (chunks != NULL)
        *chunks = L.chunks;
err:
    free(L.e);
    return edb__txn_leave(s, ret);
}

/*
 * update.c: building and writing records through a cursor: prepare, set,
 * update, cancel, delete and escrow.
 *
 * A write of a record and its index entries is planned with reads only, then
 * applied (see "writes" below): a failure the caller can fix (EDB_KEYDUP in
 * the third index, EDB_NOTNULL, EDB_TOOBIG) is found before anything is
 * written, so the record and every index are exactly as they were and the
 * update stays prepared.  A failure while applying (EDB_FULL, I/O) marks the
 * session's explicit transaction failed (txn.c): it must be rolled back.  No
 * nested LMDB transaction is used: one costs O(open DBs) and a dirty list of
 * megabytes per row.
 *
 * Index entries: the primary index is the record DB itself (key = encoded
 * primary key, or the implicit 8-byte big-endian counter).  A unique
 * secondary index maps its key to the primary key; a non-unique one stores
 * key + primary key (so every entry is distinct) with the primary key as data.
 *
 * Thread safety: as the session.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collate.h"
#include "cursor.h"
#include "error.h"
#include "key.h"
#include "longval.h"

static void rec_keep(edb_cursor *c);

void
edb_update_cancel(edb_cursor *c)
{
    if (c == NULL || c->prep == 0)
        return;
    if (c->lvw != NULL)
        edb__lvw_free_all(&c->lvw);
    rec_keep(c);
    c->prep_pk.len = 0;
    c->prep_raw.len = 0;
    c->prep = 0;
}

/* ------------------------------------------------------------------ keys */

int
edb__primary_key(const edb__table *t, const edb__rec *rec, edb__buf *out)
{
    const edb__index *x = &t->idx[t->primary];
    return edb__index_entry(t, x, rec, NULL, 0, out);
}

bool
edb__index_multi(const edb__table *t, const edb__index *x)
{
    if (x->flags & EDB_IDX_TUPLES)
        return true;
    for (unsigned i = 0; i < x->nseg; i++)
        if (t->cols[x->seg[i].col - 1].flags & EDB_COL_MULTIVALUED)
            return true;
    return false;
}

void
edb__entries_free(edb__entries *e)
{
    if (e == NULL)
        return;
    edb__buf_free(&e->data);
    free(e->v);
    memset(e, 0, sizeof *e);
}

/* One entry of index @x: segment @mvseg (-1: none) takes value mv[0..mvsize)
 * (NULL: NULL) instead of the record's; with @tuple, the one segment is the
 * tuple bytes and not the column's value.  Returns 0, 1 (no entry) or an
 * error; the key in @key. */
static int
entry_one(const edb__table *t, const edb__index *x, const edb__rec *rec, const uint8_t *pk,
          size_t pklen, edb__buf *key, int mvseg, const void *mv, size_t mvsize)
{
    size_t len = 0;
    bool all_null = true, any_null = false;
    if (x->cond_col != 0) {
        /* a conditional index: no entry unless the condition column is
         * non-NULL ("col") or NULL ("!col") */
        const edb__colval *v = x->cond_col <= rec->ncols ? &rec->cols[x->cond_col - 1] : NULL;
        bool null = v == NULL || v->null;
        if (null != x->cond_null)
            return 1;
    }
    /* the key is encoded in place (its bytes are undefined after a return
     * other than 0), with room for the primary key behind it */
    if (key->cap < EDB__LMDB_KEY_MAX)
        EDB_RET(edb__buf_reserve(key, EDB__LMDB_KEY_MAX));
    uint8_t *buf = key->p;
    for (unsigned i = 0; i < x->nseg; i++) {
        edb_colid col = x->seg[i].col;
        const edb__colval *v = col <= rec->ncols ? &rec->cols[col - 1] : NULL;
        const edb__column *def = &t->cols[col - 1];
        bool null = v == NULL || v->null;
        if (!null && v->sep)        /* a long value: longer than any key */
            return edb__err(EDB_TOOBIG, "table '%s': key of index '%s' is over %d bytes", t->name,
                            x->name, EDB_MAX_KEY_SIZE);
        const void *data = null ? NULL : v->area.p;
        size_t size = null ? 0 : v->area.len;
        if ((int)i == mvseg) {
            null = mv == NULL;
            data = mv;
            size = mvsize;
        }
        if (!null)
            all_null = false;
        else
            any_null = true;
        if (def->collation[0] != '\0' && def->coll == NULL) {
            const char *why = edb__coll_unavailable();
            return edb__err(EDB_INVAL, "table '%s': index '%s': collation '%s' of column '%s': %s",
                            t->name, x->name, def->collation, def->name,
                            why ? why : "this ICU cannot open it");
        }
        /* no collation: key.c's codec without the collation wrapper's frame */
        unsigned mode = edb__key_mode(x->seg[i].desc, x->flags);
        int rc = def->coll == NULL
                     ? edb__key_append(buf, EDB_MAX_KEY_SIZE, &len, def->type, null ? NULL : data,
                                       null ? 0 : size, mode)
                     : edb__key_append_coll(buf, EDB_MAX_KEY_SIZE, &len, def->type, def->coll,
                                            null ? NULL : data, null ? 0 : size, mode);
        if (rc == EDB_TOOBIG)
            return edb__err(EDB_TOOBIG, "table '%s': key of index '%s' is over %d bytes", t->name,
                            x->name, EDB_MAX_KEY_SIZE);
        if (rc < 0)
            return edb__err(rc, "table '%s': index '%s': column '%s' cannot be a key", t->name,
                            x->name, def->name);
    }
    if (!(x->flags & EDB_IDX_PRIMARY) && ((all_null && (x->flags & EDB_IDX_IGNORE_NULL)) ||
                                          (any_null && (x->flags & EDB_IDX_IGNORE_ANY_NULL))))
        return 1;
    if (pk != NULL && !(x->flags & EDB_IDX_UNIQUE)) {
        if (len + pklen > EDB__LMDB_KEY_MAX)
            return edb__err(EDB_TOOBIG, "table '%s': entry of index '%s' (key and primary key) "
                            "is over %d bytes", t->name, x->name, EDB__LMDB_KEY_MAX);
        edb__ks_copy(buf + len, pk, pklen);
        len += pklen;
    }
    key->len = len;
    return 0;
}

static int
ents_add(edb__entries *e, const edb__buf *k)
{
    if (e->n == e->cap) {
        uint32_t cap = e->cap ? e->cap * 2 : 8;
        edb__ent *v = realloc(e->v, cap * sizeof *v);
        if (v == NULL)
            return edb__err(EDB_NOMEM, "index entries");
        e->v = v;
        e->cap = cap;
    }
    /* offsets while the buffer may move; pointers once it is complete */
    e->v[e->n].p = (const uint8_t *)(uintptr_t)e->data.len;
    e->v[e->n].len = (uint32_t)k->len;
    e->n++;
    return edb__buf_add(&e->data, k->p, k->len);
}

static int
ent_cmp(const void *a, const void *b)
{
    const edb__ent *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    return c != 0 ? c : (x->len < y->len ? -1 : x->len > y->len);
}

/* The byte length of the UTF-8 character starting with byte @c (valid text). */
static size_t
u8len(uint8_t c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

int
edb__index_entries(const edb__table *t, const edb__index *x, const edb__rec *rec,
                   const uint8_t *pk, size_t pklen, edb__entries *out)
{
    out->n = 0;
    out->data.len = 0;
    edb__buf k = { 0 };
    int ret = 0, rc;
    if (x->flags & EDB_IDX_TUPLES) {
        /* ESE's tuples: from each character, the next tuple_max characters
         * (fewer at the end, down to tuple_min) */
        edb_colid col = x->seg[0].col;
        const edb__colval *v = col <= rec->ncols ? &rec->cols[col - 1] : NULL;
        if (v == NULL || v->null)
            goto done;
        if (x->cond_col != 0) {
            const edb__colval *cv = x->cond_col <= rec->ncols ? &rec->cols[x->cond_col - 1] : NULL;
            if ((cv == NULL || cv->null) != x->cond_null)
                goto done;
        }
        const uint8_t *s = v->area.p;
        size_t n = v->area.len;
        for (size_t at = 0; at < n; at += u8len(s[at])) {
            size_t end = at;
            unsigned chars = 0;
            while (end < n && chars < x->tuple_max) {
                end += u8len(s[end]);
                chars++;
            }
            if (end > n)
                EDB_ERR(edb__err(EDB_CORRUPT, "table '%s': column '%s' holds bad UTF-8", t->name,
                                 t->cols[col - 1].name));
            if (chars < x->tuple_min)
                break;
            EDB_ERR(rc = entry_one(t, x, rec, pk, pklen, &k, 0, s + at, end - at));
            if (rc == 0)
                EDB_ERR(ents_add(out, &k));
        }
    } else {
        int mvseg = -1;
        for (unsigned i = 0; i < x->nseg && mvseg < 0; i++)
            if (t->cols[x->seg[i].col - 1].flags & EDB_COL_MULTIVALUED)
                mvseg = (int)i;
        const edb__colval *v = NULL;
        if (mvseg >= 0) {
            edb_colid col = x->seg[mvseg].col;
            v = col <= rec->ncols ? &rec->cols[col - 1] : NULL;
        }
        if (mvseg < 0 || v == NULL || v->null || v->count == 0) {
            /* no value: one entry with NULL there (ESE), as the flags allow */
            EDB_ERR(rc = entry_one(t, x, rec, pk, pklen, &k, mvseg, NULL, 0));
            if (rc == 0)
                EDB_ERR(ents_add(out, &k));
        } else {
            const uint8_t *a = v->area.p;
            size_t off = 0;
            for (uint32_t j = 0; j < v->count; j++) {
                if (4 > v->area.len - off)
                    EDB_ERR(edb__err(EDB_CORRUPT, "table '%s': multi-valued column is malformed",
                                     t->name));
                uint32_t l = edb__rd32le(a + off);
                if (l > v->area.len - off - 4)
                    EDB_ERR(edb__err(EDB_CORRUPT, "table '%s': multi-valued column is malformed",
                                     t->name));
                EDB_ERR(rc = entry_one(t, x, rec, pk, pklen, &k, mvseg, a + off + 4, l));
                if (rc == 0)
                    EDB_ERR(ents_add(out, &k));
                off += 4 + (size_t)l;
            }
        }
    }
done:
    for (uint32_t i = 0; i < out->n; i++)
        out->v[i].p = out->data.p + (uintptr_t)out->v[i].p;
    if (out->n > 1) {
        qsort(out->v, out->n, sizeof *out->v, ent_cmp);
        uint32_t w = 1;
        for (uint32_t i = 1; i < out->n; i++)
            if (ent_cmp(&out->v[w - 1], &out->v[i]) != 0)
                out->v[w++] = out->v[i];
        out->n = w;
    }
err:
    if (ret < 0)
        out->n = 0;
    edb__buf_free(&k);
    return ret < 0 ? ret : 0;
}

int
edb__index_entry(const edb__table *t, const edb__index *x, const edb__rec *rec,
                 const uint8_t *pk, size_t pklen, edb__buf *key)
{
    if (!edb__index_multi(t, x))
        return entry_one(t, x, rec, pk, pklen, key, -1, NULL, 0);
    edb__entries e = { 0 };
    int rc = edb__index_entries(t, x, rec, pk, pklen, &e);
    if (rc == 0)
        rc = e.n == 0 ? 1 : edb__buf_set(key, e.v[0].p, e.v[0].len);
    edb__entries_free(&e);
    return rc;
}

/* ------------------------------------------------------------------ writes */

/*
 * Writes run in two phases, so that no write needs a nested LMDB transaction
 * to be undone (one costs O(open DBs) plus a dirty list of megabytes).
 *
 * plan: reads only.  Everything that can fail for the caller's reason is
 * checked and every key computed: NOT NULL, the record's size, each index
 * key encodes and fits, the primary key and every UNIQUE index are free (a
 * read in the same txn; an entry that belongs to the record being replaced
 * does not count).  AUTOINC and implicit-key counters are read, not yet
 * written.
 *
 * apply: the puts and deletes.  The first write of an insert is the record
 * put with MDB_NOOVERWRITE, which is also its primary-key check: when it
 * finds the key taken, LMDB returns before changing anything.  Any other
 * failure from here on (map full, I/O, or an entry found where the plan saw
 * none, which would be a bug) leaves the txn half written; LMDB itself
 * refuses a txn after such a failure, so the session's transaction is marked
 * failed (edb__txn_fail): it can only be rolled back.
 */

/* put()'s MDB_APPEND back-off for one target (records or one index). */
typedef struct edb__append_hint {
    uint8_t skip;       /* puts left to make without trying MDB_APPEND */
    uint8_t miss;       /* tries missed in a row (capped at 6) */
} edb__append_hint;

/* Entry state per secondary index. */
enum { ENT_NONE = 0, ENT_PUT = 1, ENT_MULTI = 2 };  /* MULTI: the entry sets oe / ne */

typedef struct edb__wplan {
    edb__buf raw;                               /* the encoded record */
    edb__buf pk;                                /* its primary key */
    bool pk_same;                               /* replace keeps the primary key */
    bool narrow;                                /* format 5: record version 3 (record.c),
                                                   non-unique entries without a value */
    uint8_t ost[EDB_MAX_INDEXES + 1], nst[EDB_MAX_INDEXES + 1];
    edb__buf ok[EDB_MAX_INDEXES + 1], nk[EDB_MAX_INDEXES + 1];  /* old / new entry keys */
    edb__entries oe[EDB_MAX_INDEXES + 1], ne[EDB_MAX_INDEXES + 1];  /* multi-entry indexes */
    /* MDB_APPEND hints per put target (0: the records, i + 1: index i),
     * kept across updates: put() tries MDB_APPEND only when skip is 0. */
    edb__append_hint app[EDB_MAX_INDEXES + 2];
    edb__buf pos;                               /* position_on's entry key */
    edb__rec spare;                             /* a cancelled record's buffers */
} edb__wplan;

void
edb__wplan_free(edb__wplan *w)
{
    if (w == NULL)
        return;
    edb__buf_free(&w->raw);
    edb__buf_free(&w->pk);
    edb__buf_free(&w->pos);
    edb__rec_free(&w->spare);
    for (unsigned i = 0; i <= EDB_MAX_INDEXES; i++) {
        edb__buf_free(&w->ok[i]);
        edb__buf_free(&w->nk[i]);
        edb__entries_free(&w->oe[i]);
        edb__entries_free(&w->ne[i]);
    }
    free(w);
}

/* Empty the cursor's record; its buffers wait in the write plan for the
 * next insert's prepare (edb__rec_init reuses them). */
static void
rec_keep(edb_cursor *c)
{
    if (c->wp != NULL && c->wp->spare.cols == NULL) {
        c->wp->spare = c->rec;
        c->rec = (edb__rec){ 0 };
    } else {
        edb__rec_free(&c->rec);
    }
}

/* The cursor's plan buffers (kept between updates: no allocation per row). */
static int
wplan_get(edb_cursor *c, edb__wplan **out)
{
    if (c->wp == NULL && (c->wp = calloc(1, sizeof *c->wp)) == NULL)
        return edb__err(EDB_NOMEM, "table '%s': update", c->tname);
    c->wp->raw.len = c->wp->pk.len = 0;
    c->wp->pk_same = false;
    c->wp->narrow = edb__fmt5(edb__cat(c->s->env));
    *out = c->wp;
    return 0;
}

static bool
buf_eq(const edb__buf *a, const edb__buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static int
keydup(const edb__table *t, const char *index)
{
    return edb__err(EDB_KEYDUP, "table '%s': duplicate key in %s index '%s'", t->name,
                    index ? "unique" : "primary", index ? index : (t->primary >= 0 ? t->idx[t->primary].name : "(implicit)"));
}

/* Is @k present in range @ks?  With @data, also its value (valid while the txn lives). */
static int
exists(MDB_txn *txn, const edb__ks *ks, const edb__buf *k, MDB_val *data, const char *what)
{
    MDB_val key = { k->len, k->p }, d;
    int rc = edb__ks_get(txn, ks, &key, &d);
    if (edb__mdb_is_notfound(rc))
        return 0;
    EDB_RET(edb__mdb_err(rc, what));
    if (data != NULL)
        *data = d;
    return 1;
}

/* Put @k with @flags, first trying MDB_APPEND when hint @h allows it
 * (sequential loads fill their pages).  An MDB_APPEND put answers KEYEXIST
 * when the key is not past the database's last one (and inside a nested
 * level when it exists, undo.c); the put is then made with the caller's
 * flags.  A failed try costs a second descent of the tree (about 1,100
 * instructions), so after a miss the next 1, 3, 7, ... 63 puts through the
 * hint go without a try, and a hit resets it: a random-order load tries
 * once in 64 rows, a sequential one every row.  Only page fill depends on
 * the hint, never what is stored. */
static int
put(MDB_txn *txn, const edb__ks *ks, edb__append_hint *h, const edb__buf *k, const void *d,
    size_t dlen, unsigned flags, const char *what)
{
    MDB_val key = { k->len, k->p }, data = { dlen, (void *)d };
    int rc;
    if (h->skip > 0) {
        h->skip--;
        rc = edb__ks_put(txn, ks, &key, &data, flags);
    } else {
        rc = edb__ks_put(txn, ks, &key, &data, MDB_APPEND);
        if (edb__mdb_is_keyexist(rc)) {
            if (h->miss < 6)
                h->miss++;
            h->skip = (uint8_t)((1u << h->miss) - 1);
            rc = edb__ks_put(txn, ks, &key, &data, flags);
        } else {
            h->miss = 0;
        }
    }
    return edb__mdb_is_keyexist(rc) ? EDB_KEYDUP : edb__mdb_err(rc, what);
}

/* The value of an entry of @x: the primary key, or nothing where the key ends
 * with it (a non-unique index of a format 5 database; cursor.h). */
static size_t
entry_vlen(const edb__wplan *w, const edb__index *x)
{
    return w->narrow && !(x->flags & EDB_IDX_UNIQUE) ? 0 : w->pk.len;
}

static int
del(MDB_txn *txn, const edb__ks *ks, const edb__buf *k, const char *what)
{
    MDB_val key = { k->len, k->p };
    int rc = edb__ks_del(txn, ks, &key);
    return edb__mdb_is_notfound(rc) ? 0 : edb__mdb_err(rc, what);
}

/* Is @k (sorted set @e) among e's entries? */
static bool
ents_has(const edb__entries *e, const edb__ent *k)
{
    uint32_t lo = 0, hi = e->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = ent_cmp(&e->v[mid], k);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* An entry is kept as it is when the record keeps its primary key (a UNIQUE
 * entry's data is the primary key; a non-unique entry's key ends with it). */
static bool
ent_kept(const edb__wplan *w, uint32_t i, const edb__ent *k, bool old_side)
{
    return w->pk_same && ents_has(old_side ? &w->ne[i] : &w->oe[i], k);
}

/* plan_record for multi-entry index @i: both entry sets; returns 1 when a
 * new UNIQUE entry is taken by another record, 0, or an error. */
static int
plan_multi(edb__wplan *w, MDB_txn *txn, const edb__table *t, uint32_t i, const edb__rec *old,
           const edb__buf *oldpk, const edb__rec *rec)
{
    const edb__index *x = &t->idx[i];
    EDB_RET(edb__index_entries(t, x, rec, w->pk.p, w->pk.len, &w->ne[i]));
    w->oe[i].n = 0;
    if (old != NULL) {
        int orc = edb__index_entries(t, x, old, oldpk->p, oldpk->len, &w->oe[i]);
        if (orc < 0 && orc != EDB_TOOBIG)
            return orc;
        if (orc == EDB_TOOBIG)
            w->oe[i].n = 0;
    }
    w->ost[i] = w->nst[i] = ENT_MULTI;
    if (!(x->flags & EDB_IDX_UNIQUE))
        return 0;
    for (uint32_t j = 0; j < w->ne[i].n; j++) {
        const edb__ent *k = &w->ne[i].v[j];
        if (ent_kept(w, i, k, false))
            continue;
        edb__buf kb = { (uint8_t *)k->p, k->len, k->len };
        MDB_val d;
        int e;
        EDB_RET(e = exists(txn, &x->ks, &kb, &d, "read index entry"));
        if (e && !(old != NULL && d.mv_size == oldpk->len &&
                   memcmp(d.mv_data, oldpk->p, oldpk->len) == 0))
            return 1;
    }
    return 0;
}

/* apply_record for multi-entry index @i: delete the old entries that go,
 * put the new ones that come. */
static int
apply_multi(edb_session *s, edb__wplan *w, MDB_txn *txn, const edb__table *t, uint32_t i)
{
    const edb__index *x = &t->idx[i];
    int64_t delta = 0;
    for (uint32_t j = 0; j < w->oe[i].n; j++) {
        const edb__ent *k = &w->oe[i].v[j];
        if (ent_kept(w, i, k, true))
            continue;
        edb__buf kb = { (uint8_t *)k->p, k->len, k->len };
        EDB_RET(del(txn, &x->ks, &kb, "delete index entry"));
        delta--;
    }
    for (uint32_t j = 0; j < w->ne[i].n; j++) {
        const edb__ent *k = &w->ne[i].v[j];
        if (ent_kept(w, i, k, false))
            continue;
        edb__buf kb = { (uint8_t *)k->p, k->len, k->len };
        int rc = put(txn, &x->ks, &w->app[i + 1], &kb, w->pk.p, entry_vlen(w, x),
                     (x->flags & EDB_IDX_UNIQUE) ? MDB_NOOVERWRITE : 0, "write index entry");
        if (rc == EDB_KEYDUP)
            return edb__err(EDB_CORRUPT, "table '%s': unique index '%s' has an entry the check "
                            "did not see", t->name, x->name);
        EDB_RET(rc);
        delta++;
    }
    return edb__rows_add(s, x->kid, delta);
}

/*
 * Plan writing @rec (primary key already in w->pk) over @old (primary key
 * @oldpk) when not NULL, or as a new record: encode it, compute every
 * secondary entry, check the unique ones.  Reads only.
 */
static int
plan_record(edb__wplan *w, MDB_txn *txn, const edb__table *t, const edb__rec *old,
            const edb__buf *oldpk, const edb__rec *rec)
{
    EDB_RET(edb__rec_encode(rec, &w->raw, w->narrow));
    w->pk_same = old != NULL && buf_eq(oldpk, &w->pk);
    int dup = -2;           /* the first unique index that clashes (-1: the primary) */
    if (old != NULL && !w->pk_same) {
        int e;
        EDB_RET(e = exists(txn, &t->rec, &w->pk, NULL, "read record"));
        if (e)
            return keydup(t, NULL);
    }
    for (uint32_t i = 0; i < t->nidx; i++) {
        const edb__index *x = &t->idx[i];
        w->ost[i] = w->nst[i] = ENT_NONE;
        if (x->flags & EDB_IDX_PRIMARY)
            continue;
        if (edb__index_multi(t, x)) {
            int d;
            EDB_RET(d = plan_multi(w, txn, t, i, old, oldpk, rec));
            if (d && dup == -2)
                dup = (int)i;
            continue;
        }
        int nrc;
        EDB_RET(nrc = edb__index_entry(t, x, rec, w->pk.p, w->pk.len, &w->nk[i]));
        if (nrc == 0)
            w->nst[i] = ENT_PUT;
        if (old != NULL) {
            int orc = edb__index_entry(t, x, old, oldpk->p, oldpk->len, &w->ok[i]);
            if (orc < 0 && orc != EDB_TOOBIG)
                return orc;
            /* an old entry that could not have been written (TOOBIG) is not there */
            if (orc == 0)
                w->ost[i] = ENT_PUT;
            if (orc == 0 && nrc == 0 && w->pk_same && buf_eq(&w->ok[i], &w->nk[i])) {
                w->ost[i] = w->nst[i] = ENT_NONE;   /* entry unchanged */
                continue;
            }
        }
        if (w->nst[i] == ENT_PUT && (x->flags & EDB_IDX_UNIQUE) && dup == -2) {
            MDB_val d;
            int e;
            EDB_RET(e = exists(txn, &x->ks, &w->nk[i], &d, "read index entry"));
            /* taken, unless by the record being replaced (its entry goes) */
            if (e && !(old != NULL && d.mv_size == oldpk->len &&
                       memcmp(d.mv_data, oldpk->p, oldpk->len) == 0))
                dup = (int)i;
        }
    }
    if (dup >= 0) {
        /* a taken primary key is reported first, as the apply phase would */
        if (old == NULL) {
            int e;
            EDB_RET(e = exists(txn, &t->rec, &w->pk, NULL, "read record"));
            if (e)
                return keydup(t, NULL);
        }
        return keydup(t, t->idx[dup].name);
    }
    return 0;
}

/*
 * Apply a plan.  Returns EDB_KEYDUP only when an insert's primary key is
 * taken, before anything was written; any other error means the txn is half
 * written (the caller marks it failed).  *wrote tells which.
 */
static int
apply_record(edb_session *s, edb__wplan *w, MDB_txn *txn, const edb__table *t, bool replace,
             const edb__buf *oldpk, bool *wrote)
{
    *wrote = false;
    int rc = put(txn, &t->rec, &w->app[0], &w->pk, w->raw.p, w->raw.len,
                 w->pk_same ? 0 : MDB_NOOVERWRITE, "write record");
    if (rc == EDB_KEYDUP)
        return keydup(t, NULL);
    *wrote = true;
    EDB_RET(rc);
    if (replace && !w->pk_same)
        EDB_RET(del(txn, &t->rec, oldpk, "delete record"));
    if (!replace)
        EDB_RET(edb__rows_add(s, t->kid, 1));
    for (uint32_t i = 0; i < t->nidx; i++) {
        const edb__index *x = &t->idx[i];
        if (w->nst[i] == ENT_MULTI) {
            EDB_RET(apply_multi(s, w, txn, t, i));
            continue;
        }
        /* the index's count moves by (new entry) - (old entry) */
        EDB_RET(edb__rows_add(s, x->kid, (w->nst[i] == ENT_PUT) - (w->ost[i] == ENT_PUT)));
        if (w->ost[i] == ENT_PUT)
            EDB_RET(del(txn, &x->ks, &w->ok[i], "delete index entry"));
        if (w->nst[i] != ENT_PUT)
            continue;
        rc = put(txn, &x->ks, &w->app[i + 1], &w->nk[i], w->pk.p, entry_vlen(w, x),
                 (x->flags & EDB_IDX_UNIQUE) ? MDB_NOOVERWRITE : 0, "write index entry");
        if (rc == EDB_KEYDUP)
            return edb__err(EDB_CORRUPT, "table '%s': unique index '%s' has an entry the check "
                            "did not see", t->name, x->name);
        EDB_RET(rc);
    }
    return 0;
}

/* The stored bytes of the record with primary key @pk (valid until the
 * txn's next write or end); EDB_RECORD_DELETED when there is none. */
static int
load_raw(MDB_txn *txn, const edb__table *t, const edb__buf *pk, MDB_val *out)
{
    MDB_val k = { pk->len, pk->p };
    int rc = edb__ks_get(txn, &t->rec, &k, out);
    if (edb__mdb_is_notfound(rc))
        return edb__err(EDB_RECORD_DELETED, "table '%s': the cursor's record was deleted", t->name);
    return edb__mdb_err(rc, "read record");
}

/* Read and decode the record with primary key @pk; with @dropped, also the
 * long-value references of its dropped columns (edb__lv_dropped). */
static int
load_record(MDB_txn *txn, const edb__table *t, const edb__buf *pk, edb__rec *out,
            edb__buf *dropped)
{
    MDB_val d;
    EDB_RET(load_raw(txn, t, pk, &d));
    if (dropped != NULL)
        EDB_RET(edb__lv_dropped(dropped, t, d.mv_data, d.mv_size));
    return edb__rec_decode(out, t, d.mv_data, d.mv_size);
}

/* Extend a prepared record made under an older schema with the new columns. */
static int
rec_fit(edb__rec *r, const edb__table *t)
{
    if (r->ncols >= t->ncols)
        return 0;
    edb__colval *cols = realloc(r->cols, t->ncols * sizeof *cols);
    if (cols == NULL)
        return edb__err(EDB_NOMEM, "record");
    r->cols = cols;
    for (uint32_t i = r->ncols; i < t->ncols; i++) {
        memset(&cols[i], 0, sizeof cols[i]);
        cols[i].null = true;
        const edb__column *c = &t->cols[i];
        if (c->has_default)
            EDB_RET(edb__colval_set(&cols[i], c, c->default_value, c->default_size, false));
    }
    r->ncols = t->ncols;
    return 0;
}

int
edb__update_rec_fit(edb_cursor *c)
{
    return rec_fit(&c->rec, c->t);
}

/* Put the cursor on the record with primary key w->pk and values @rec (a
 * secondary index's entry key is made in w->pos, kept for the next time). */
static int
position_on(edb_cursor *c, edb__wplan *w, const edb__rec *rec)
{
    const edb__buf *pk = &w->pk;
    MDB_val kv = { pk->len, pk->p }, dv = { pk->len, pk->p };
    if (c->index >= 0) {
        int rc = edb__index_entry(c->t, &c->t->idx[c->index], rec, pk->p, pk->len, &w->pos);
        if (rc < 0)
            return rc;
        kv.mv_size = rc == 1 ? 0 : w->pos.len;
        kv.mv_data = w->pos.p;
    }
    int rc = edb__cursor_set_on(c, &kv, &dv);
    c->mc_valid = false;
    return rc;
}

static int
check_writable(edb_cursor *c, const char *fn)
{
    if (c->s->env->flags & EDB_ENV_READONLY)
        return edb__err(EDB_READONLY, "%s: '%s' is open read-only", fn, c->s->env->path);
    if (c->s->depth > 0 && c->s->rdonly)
        return edb__err(EDB_READONLY, "%s: the transaction is read-only", fn);
    return 0;
}

int
edb_update_prepare(edb_cursor *c, unsigned mode)
{
    if (c == NULL)
        return edb__err(EDB_INVAL, "edb_update_prepare: cursor is NULL");
    if (mode != EDB_PREP_INSERT && mode != EDB_PREP_REPLACE)
        return edb__err(EDB_INVAL, "edb_update_prepare: mode %u", mode);
    if (c->prep != 0)
        return edb__err(EDB_INVAL, "edb_update_prepare: an update is already prepared on '%s'",
                        c->tname);
    EDB_RET(check_writable(c, "edb_update_prepare"));
    MDB_txn *txn;
    EDB_RET(edb__txn_enter(c->s, false, &txn));
    int rc = edb__cursor_bind(c, txn);
    if (rc == 0 && mode == EDB_PREP_INSERT) {
        if (c->rec.cols == NULL && c->wp != NULL && c->wp->spare.cols != NULL) {
            c->rec = c->wp->spare;          /* edb_update_cancel's: buffers reused */
            c->wp->spare = (edb__rec){ 0 };
        }
        rc = edb__rec_init(&c->rec, c->t);
    } else if (rc == 0) {
        if (edb__cursor_state(c) != POS_ON)
            rc = edb__err(EDB_NOCURRENT, "edb_update_prepare: the cursor on '%s' is not on a record",
                          c->tname);
        /* the stored bytes are the record's version: edb_update compares them */
        MDB_val d;
        if (rc == 0)
            rc = load_raw(txn, c->t, &c->pk, &d);
        if (rc == 0)
            rc = edb__rec_decode(&c->rec, c->t, d.mv_data, d.mv_size);
        if (rc == 0)
            rc = edb__buf_set(&c->prep_raw, d.mv_data, d.mv_size);
        if (rc == 0)
            rc = edb__buf_set(&c->prep_pk, c->pk.p, c->pk.len);
    }
    if (rc < 0)
        edb__rec_free(&c->rec);
    else
        c->prep = mode;
    rc = edb__txn_leave(c->s, rc);
    if (rc == 0)
        edb__err_clear();
    return rc;
}

/* The value of an AUTOINC column in native form (size checked by the
 * caller), as the counter counts; 0 for a value below 1. */
static uint64_t
autoinc_value(const edb__column *def, const void *data)
{
    switch (def->type) {
    case EDB_COL_INT32: { int32_t x; memcpy(&x, data, 4); return x > 0 ? (uint64_t)x : 0; }
    case EDB_COL_UINT32: { uint32_t x; memcpy(&x, data, 4); return x; }
    case EDB_COL_INT64: { int64_t x; memcpy(&x, data, 8); return x > 0 ? (uint64_t)x : 0; }
    default: { uint64_t x; memcpy(&x, data, 8); return x; }
    }
}

static int
mv_dup(const edb_cursor *c, const edb__column *def)
{
    return edb__err(EDB_MV_DUP, "table '%s': column '%s' already holds this value", c->tname,
                    def->name);
}

/* Everything edb_column_set checks before it changes the prepared record
 * (resolves *col in place).  @fn names the caller in messages. */
static inline __attribute__((always_inline)) int
column_set_check(edb_cursor *c, edb_colid *colp, const void *data, size_t size, unsigned flags,
                 const char *fn)
{
    if (c == NULL)
        return edb__err(EDB_INVAL, "%s: cursor is NULL", fn);
    EDB_RET(edb__cursor_check_live(c, fn));
    if (c->prep == 0)
        return edb__err(EDB_NOUPDATE, "%s: no update is prepared on '%s'", fn, c->tname);
    if (flags & ~(EDB_SET_APPEND | EDB_SET_AUTOINC_VALUE | EDB_SET_UNIQUE))
        return edb__err(EDB_INVAL, "%s: unknown flags 0x%x", fn, flags);
    uint32_t pos = edb__colid_pos(c->t, *colp);     /* inline: every set's check */
    if (pos != 0)
        *colp = pos;
    else
        EDB_RET(edb__colid_resolve(colp, c->t));
    if (c->rec.ncols < c->t->ncols)
        EDB_RET(rec_fit(&c->rec, c->t));
    const edb__column *def = &c->t->cols[*colp - 1];
    if ((flags & EDB_SET_APPEND) && !(def->flags & EDB_COL_MULTIVALUED))
        return edb__err(EDB_INVAL, "table '%s': column '%s': APPEND on a single-valued column",
                        c->tname, def->name);
    if ((def->flags & EDB_COL_AUTOINC) && !(flags & EDB_SET_AUTOINC_VALUE))
        return edb__err(EDB_INVAL, "table '%s': column '%s' is AUTOINC: the engine assigns it "
                        "(a loader supplies it with EDB_SET_AUTOINC_VALUE)", c->tname, def->name);
    if ((flags & EDB_SET_AUTOINC_VALUE) && !(def->flags & EDB_COL_AUTOINC))
        return edb__err(EDB_INVAL, "table '%s': column '%s': EDB_SET_AUTOINC_VALUE on a column "
                        "that is not AUTOINC", c->tname, def->name);
    if ((flags & EDB_SET_AUTOINC_VALUE) && c->prep != EDB_PREP_INSERT)
        return edb__err(EDB_INVAL, "table '%s': column '%s': an AUTOINC value is set at insert "
                        "only", c->tname, def->name);
    if (data == NULL && size != 0)
        return edb__err(EDB_INVAL, "table '%s': column '%s': NULL data with size %zu", c->tname,
                        def->name, size);
    if (data != NULL && edb__value_check(def, data, size, "") < 0) {
        /* the message names the column: formatted on failure only (hot path) */
        char what[160];
        snprintf(what, sizeof what, "table '%s': column '%s'", c->tname, def->name);
        return edb__value_check(def, data, size, what);
    }
    if (data != NULL && (def->flags & EDB_COL_AUTOINC) && autoinc_value(def, data) == 0)
        return edb__err(EDB_INVAL, "table '%s': AUTOINC column '%s': a value must be 1 or more",
                        c->tname, def->name);
    return 0;
}

int
edb_column_set(edb_cursor *c, edb_colid col, const void *data, size_t size, unsigned flags)
{
    EDB_RET(column_set_check(c, &col, data, size, flags, "edb_column_set"));
    if (data == NULL && (flags & EDB_SET_APPEND)) {
        edb__err_clear();   /* appending NULL adds nothing (as ESE ignores it) */
        return 0;
    }
    const edb__column *def = &c->t->cols[col - 1];
    if ((flags & (EDB_SET_UNIQUE | EDB_SET_APPEND)) == (EDB_SET_UNIQUE | EDB_SET_APPEND) &&
        edb__colval_mv_find(&c->rec.cols[col - 1], data, size, 0) != 0)
        return mv_dup(c, def);
    if (c->lvw != NULL)
        edb__lvw_drop(&c->lvw, col);        /* a whole value replaces pending writes */
    if (data != NULL && size > EDB__LV_INLINE_MAX && !(def->flags & EDB_COL_MULTIVALUED))
        EDB_RET(edb__lv_set(c, col, data, size));
    else
        EDB_RET(edb__colval_set(&c->rec.cols[col - 1], def, data, size,
                                (flags & EDB_SET_APPEND) != 0));
    edb__err_clear();
    return 0;
}

int
edb_column_set_itag(edb_cursor *c, edb_colid col, unsigned itag, const void *data, size_t size,
                    unsigned flags)
{
    if (c == NULL)
        return edb__err(EDB_INVAL, "edb_column_set_itag: cursor is NULL");
    EDB_RET(edb__cursor_check_live(c, "edb_column_set_itag"));
    if (c->prep == 0)
        return edb__err(EDB_NOUPDATE, "edb_column_set_itag: no update is prepared on '%s'", c->tname);
    if (flags & ~EDB_SET_UNIQUE)
        return edb__err(EDB_INVAL, "edb_column_set_itag: unknown flags 0x%x", flags);
    EDB_RET(edb__colid_resolve(&col, c->t));
    EDB_RET(rec_fit(&c->rec, c->t));
    const edb__column *def = &c->t->cols[col - 1];
    edb__colval *v = &c->rec.cols[col - 1];
    if (def->flags & EDB_COL_AUTOINC)
        return edb__err(EDB_INVAL, "table '%s': column '%s' is AUTOINC: the engine assigns it",
                        c->tname, def->name);
    if (data == NULL && size != 0)
        return edb__err(EDB_INVAL, "table '%s': column '%s': NULL data with size %zu", c->tname,
                        def->name, size);
    bool multi = (def->flags & EDB_COL_MULTIVALUED) != 0;
    uint32_t n = v->null ? 0 : (multi ? v->count : 1);
    if (itag > n + 1 || (!multi && itag > 1))
        return edb__err(EDB_INVAL, "table '%s': column '%s': itag %u, the column has %u value%s "
                        "(at most %u: append)", c->tname, def->name, itag, n, n == 1 ? "" : "s",
                        multi ? n + 1 : 1);
    if (data != NULL && edb__value_check(def, data, size, "") < 0) {
        char what[160];
        snprintf(what, sizeof what, "table '%s': column '%s'", c->tname, def->name);
        return edb__value_check(def, data, size, what);
    }
    if (!multi) {
        return edb_column_set(c, col, data, size, 0);
    } else {
        if (data != NULL && (flags & EDB_SET_UNIQUE) &&
            edb__colval_mv_find(v, data, size, itag == 0 ? 0 : itag) != 0)
            return mv_dup(c, def);
        EDB_RET(edb__colval_set_itag(v, itag, data, size));
    }
    edb__err_clear();
    return 0;
}

/* ---- batch column writes (ESE's JetSetColumns) ------------------------- */

/* Replace (data non-NULL) or delete value @n (1-based, at most v->count) of
 * an in-memory multi-valued column; the area has room for the result
 * (edb_columns_set reserved it), so this cannot fail. */
static void
mv_put_nth(edb__colval *v, uint32_t n, const void *data, size_t size)
{
    uint8_t *a = v->area.p;
    size_t off = 0;
    for (uint32_t i = 1; i < n; i++)
        off += 4 + (size_t)edb__rd32le(a + off);
    size_t tail = off + 4 + (size_t)edb__rd32le(a + off), rest = v->area.len - tail;
    if (data == NULL) {
        memmove(a + off, a + tail, rest);
        v->area.len = off + rest;
        if (--v->count == 0) {
            v->null = true;
            v->area.len = 0;
        }
        return;
    }
    memmove(a + off + 4 + size, a + tail, rest);
    uint32_t l = (uint32_t)size;
    a[off] = (uint8_t)l; a[off + 1] = (uint8_t)(l >> 8); a[off + 2] = (uint8_t)(l >> 16); a[off + 3] = (uint8_t)(l >> 24);
    if (size)
        memcpy(a + off + 4, data, size);
    v->area.len = off + 4 + size + rest;
}

/* What an entry does to its column, given the column's value count so far. */
enum { CS_SET, CS_APPEND, CS_NTH };

static int
columns_set_op(const edb_cursor *c, const edb__column *def, const edb_colval *e, uint32_t count, int *op)
{
    bool multi = (def->flags & EDB_COL_MULTIVALUED) != 0;
    if (e->itag == 0 || (!multi && e->itag == 1)) {
        *op = CS_SET;
    } else if (multi && e->itag <= count) {
        *op = CS_NTH;
    } else if (multi && e->itag == count + 1) {
        *op = CS_APPEND;
    } else {
        return edb__err(EDB_INVAL, "table '%s': column '%s': itag %u, the column has %u value%s", c->tname,
                        def->name, e->itag, count, count == 1 ? "" : "s");
    }
    return 0;
}

/* An entry that sets a single-valued value (always the whole value) too
 * long for the record: it becomes a long value (longval.c), as
 * edb_column_set makes it. */
static bool
is_long(const edb__column *def, const edb_colval *e)
{
    return e->buf != NULL && e->size > EDB__LV_INLINE_MAX && !(def->flags & EDB_COL_MULTIVALUED);
}

int
edb_columns_set(edb_cursor *c, const edb_colval *v, size_t n)
{
    static const char fn[] = "edb_columns_set";
    if (v == NULL && n != 0)
        return edb__err(EDB_INVAL, "%s: v is NULL with n %zu", fn, n);
    if (c == NULL)
        return edb__err(EDB_INVAL, "%s: cursor is NULL", fn);
    EDB_RET(edb__cursor_check_live(c, fn));
    if (c->prep == 0)
        return edb__err(EDB_NOUPDATE, "%s: no update is prepared on '%s'", fn, c->tname);
    EDB_RET(rec_fit(&c->rec, c->t));
    /* Per column: the value count as the entries so far leave it, and the
     * bytes they may add.  Phase 1 checks every entry and changes nothing;
     * then each touched column's area is reserved for the worst case, so
     * phase 2 cannot fail half way (all or nothing). */
    struct cs { uint32_t count; bool touched; size_t need; } stackbuf[32], *st = stackbuf;
    uint32_t ncols = c->t->ncols;
    if (ncols > sizeof stackbuf / sizeof stackbuf[0] && (st = calloc(ncols, sizeof *st)) == NULL)
        return edb__err(EDB_NOMEM, "%s: out of memory", fn);
    if (st == stackbuf)
        memset(stackbuf, 0, sizeof stackbuf);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        edb_colid col = v[i].col;
        if ((rc = column_set_check(c, &col, v[i].buf, v[i].size, 0, fn)) < 0)
            break;
        const edb__colval *cv = &c->rec.cols[col - 1];
        struct cs *x = &st[col - 1];
        if (!x->touched) {
            x->touched = true;
            x->count = cv->null ? 0 : cv->count;
        }
        int op;
        if ((rc = columns_set_op(c, &c->t->cols[col - 1], &v[i], x->count, &op)) < 0)
            break;
        if (op == CS_SET)
            x->count = v[i].buf == NULL ? 0 : 1;
        else if (op == CS_APPEND && v[i].buf != NULL)
            x->count++;
        else if (op == CS_NTH && v[i].buf == NULL)
            x->count--;
        if (!is_long(&c->t->cols[col - 1], &v[i]))
            x->need += 4 + v[i].size;
    }
    for (uint32_t k = 0; k < ncols && rc == 0; k++)
        if (st[k].touched && edb__buf_reserve(&c->rec.cols[k].area, c->rec.cols[k].area.len + st[k].need + 1) < 0)
            rc = edb__err(EDB_NOMEM, "%s: out of memory", fn);
    /* Long values first: the only entries that can still fail (memory for
     * their pending chunks), before any other column changes. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        edb_colid col = v[i].col;
        edb__colid_resolve(&col, c->t);     /* checked in phase 1 */
        if (is_long(&c->t->cols[col - 1], &v[i]))
            rc = edb__lv_set(c, col, v[i].buf, v[i].size);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        edb_colid col = v[i].col;
        edb__colid_resolve(&col, c->t);     /* checked in phase 1 */
        edb__colval *cv = &c->rec.cols[col - 1];
        const edb__column *def = &c->t->cols[col - 1];
        int op;
        columns_set_op(c, def, &v[i], cv->null ? 0 : cv->count, &op);
        if (is_long(def, &v[i]))
            continue;
        if (op == CS_SET && c->lvw != NULL)
            edb__lvw_drop(&c->lvw, col);    /* a whole value replaces pending writes */
        if (op == CS_NTH)
            mv_put_nth(cv, v[i].itag, v[i].buf, v[i].size);
        else if (op == CS_SET || v[i].buf != NULL)
            rc = edb__colval_set(cv, def, v[i].buf, v[i].size, op == CS_APPEND);   /* fits: cannot fail */
    }
    if (st != stackbuf)
        free(st);
    if (rc == 0)
        edb__err_clear();
    return rc;
}

static int
check_notnull(const edb__table *t, const edb__rec *rec)
{
    for (uint32_t i = 0; i < t->ncols; i++)
        if ((t->cols[i].flags & EDB_COL_NOTNULL) && rec->cols[i].null)
            return edb__err(EDB_NOTNULL, "table '%s': column '%s' is NOT NULL", t->name,
                            t->cols[i].name);
    return 0;
}

/* Assign the AUTOINC columns of a new record that the caller did not supply
 * (EDB_SET_AUTOINC_VALUE): counters read, not written. */
static int
assign_autoinc(edb_cursor *c, MDB_txn *txn, edb__rec *rec)
{
    for (uint32_t i = 0; i < c->t->ncols; i++) {
        const edb__column *def = &c->t->cols[i];
        if (!(def->flags & EDB_COL_AUTOINC) || !rec->cols[i].null)
            continue;
        uint64_t n;
        EDB_RET(edb__counter_get(&n, c->s->env, txn, c->t->kid, i + 1));
        if (n == UINT64_MAX)
            return edb__err(EDB_LIMIT, "table '%s': AUTOINC column '%s' is exhausted", c->tname, def->name);
        n++;
        uint8_t v[8];
        size_t size = (size_t)edb__type_size(def->type);
        if ((def->type == EDB_COL_INT32 && n > INT32_MAX) || (def->type == EDB_COL_UINT32 && n > UINT32_MAX) ||
            (def->type == EDB_COL_INT64 && n > INT64_MAX))
            return edb__err(EDB_LIMIT, "table '%s': AUTOINC column '%s' is exhausted", c->tname, def->name);
        if (size == 4) {
            uint32_t x = (uint32_t)n;
            memcpy(v, &x, 4);
        } else {
            memcpy(v, &n, 8);
        }
        EDB_RET(edb__colval_set(&rec->cols[i], def, v, size, false));
    }
    return 0;
}

/* Store the counters a new record used: its AUTOINC values, and the implicit
 * key @implicit_n (0: the table has a primary index).  An assigned value is
 * the counter plus one; a supplied one (non-NULL in the prepared record
 * @prep) moves the counter only up.  Apply phase. */
static int
store_counters(edb_cursor *c, MDB_txn *txn, const edb__rec *prep, const edb__rec *rec,
               uint64_t implicit_n)
{
    for (uint32_t i = 0; i < c->t->ncols; i++) {
        const edb__column *def = &c->t->cols[i];
        if (!(def->flags & EDB_COL_AUTOINC))
            continue;
        uint64_t n = autoinc_value(def, rec->cols[i].area.p);
        if (!prep->cols[i].null) {
            uint64_t cur;
            EDB_RET(edb__counter_read(&cur, c->s->env, txn, c->t->kid, i + 1));
            if (n <= cur)
                continue;
        }
        EDB_RET(edb__counter_set(c->s->env, txn, c->t->kid, i + 1, n));
    }
    if (implicit_n != 0)
        EDB_RET(edb__counter_set(c->s->env, txn, c->t->kid, 0, implicit_n));
    return 0;
}

static bool
has_autoinc(const edb__table *t)
{
    for (uint32_t i = 0; i < t->ncols; i++)
        if (t->cols[i].flags & EDB_COL_AUTOINC)
            return true;
    return false;
}

int
edb_update(edb_cursor *c)
{
    if (c == NULL)
        return edb__err(EDB_INVAL, "edb_update: cursor is NULL");
    EDB_RET(edb__cursor_check_live(c, "edb_update"));
    if (c->prep == 0)
        return edb__err(EDB_NOUPDATE, "edb_update: no update is prepared on '%s'", c->tname);
    EDB_RET(check_writable(c, "edb_update"));
    edb_session *s = c->s;
    MDB_txn *txn;
    edb__rec copy = { 0 }, old = { 0 };
    edb__buf dropped = { 0 };   /* long values of dropped columns in the old record */
    const edb__rec *work = &c->rec;
    edb__wplan *w = NULL;
    uint64_t implicit_n = 0;
    bool wrote = false;
    int ret = 0;
    EDB_RET(edb__txn_enter(s, true, &txn));
    EDB_ERR(edb__cursor_bind(c, txn));
    EDB_ERR(rec_fit(&c->rec, c->t));
    EDB_ERR(wplan_get(c, &w));
    /* ---- plan: reads only; a failure leaves the update prepared as the caller set it */
    if (c->lvw != NULL)
        EDB_ERR(edb__lv_plan(c, txn, &c->rec));     /* pending long values into the record */
    if (c->prep == EDB_PREP_INSERT) {
        if (has_autoinc(c->t)) {
            /* assign on a copy: the prepared record keeps its NULLs on failure */
            EDB_ERR(edb__rec_encode(&c->rec, &w->raw, w->narrow));
            EDB_ERR(edb__rec_decode(&copy, c->t, w->raw.p, w->raw.len));
            EDB_ERR(assign_autoinc(c, txn, &copy));
            work = &copy;
        }
        EDB_ERR(check_notnull(c->t, work));
        if (c->t->primary >= 0) {
            EDB_ERR(edb__primary_key(c->t, work, &w->pk));
        } else {
            EDB_ERR(edb__counter_get(&implicit_n, s->env, txn, c->t->kid, 0));
            if (implicit_n == UINT64_MAX)
                EDB_ERR(edb__err(EDB_LIMIT, "table '%s': implicit key counter exhausted", c->tname));
            implicit_n++;
            uint8_t be[8];
            for (int i = 0; i < 8; i++)
                be[i] = (uint8_t)(implicit_n >> (56 - 8 * i));
            EDB_ERR(edb__buf_set(&w->pk, be, 8));
        }
        EDB_ERR(plan_record(w, txn, c->t, NULL, NULL, work));
        /* ---- apply */
        ret = apply_record(c->s, w, txn, c->t, false, NULL, &wrote);
        if (ret == 0)
            ret = store_counters(c, txn, &c->rec, work, implicit_n);
        if (ret == 0 && c->lvw != NULL)
            ret = edb__lv_apply(c, txn, NULL, work);
    } else {
        EDB_ERR(check_notnull(c->t, work));
        /* No lost update: the record must still be the bytes prepare copied.
         * Anything else (another session's commit, another cursor of this
         * session, an escrow update, a delete) is a conflict; nothing is
         * written and the update stays prepared. */
        MDB_val now;
        int lrc = load_raw(txn, c->t, &c->prep_pk, &now);
        if (lrc == EDB_RECORD_DELETED)
            EDB_ERR(edb__err(EDB_WRITE_CONFLICT, "table '%s': the record was deleted since "
                             "edb_update_prepare", c->tname));
        EDB_ERR(lrc);
        if (now.mv_size != c->prep_raw.len || memcmp(now.mv_data, c->prep_raw.p, now.mv_size) != 0)
            EDB_ERR(edb__err(EDB_WRITE_CONFLICT, "table '%s': the record changed since "
                             "edb_update_prepare; cancel the update and prepare it again",
                             c->tname));
        EDB_ERR(edb__rec_decode(&old, c->t, now.mv_data, now.mv_size));
        EDB_ERR(edb__lv_dropped(&dropped, c->t, now.mv_data, now.mv_size));
        if (c->t->primary >= 0)
            EDB_ERR(edb__primary_key(c->t, work, &w->pk));
        else
            EDB_ERR(edb__buf_set(&w->pk, c->prep_pk.p, c->prep_pk.len));
        EDB_ERR(plan_record(w, txn, c->t, &old, &c->prep_pk, work));
        /* ---- apply */
        ret = apply_record(c->s, w, txn, c->t, true, &c->prep_pk, &wrote);
        if (ret == 0)
            ret = edb__lv_apply(c, txn, &old, work);
        if (ret == 0)
            ret = edb__lv_free_dropped(txn, c->t, &dropped, work);
    }
    if (wrote) {
        s->write_seq++;         /* cursors re-find their entries */
        if (ret < 0)
            ret = edb__txn_fail(s, ret);
    }
err:
    if (ret >= 0) {
        int prc = position_on(c, w, work);
        edb_update_cancel(c);
        if (prc < 0)
            ret = prc;
    }
    edb__rec_free(&copy);
    edb__rec_free(&old);
    edb__buf_free(&dropped);
    ret = edb__txn_leave(s, ret);
    if (ret == 0)
        edb__err_clear();
    return ret;
}

int
edb_record_delete(edb_cursor *c)
{
    if (c == NULL)
        return edb__err(EDB_INVAL, "edb_record_delete: cursor is NULL");
    EDB_RET(check_writable(c, "edb_record_delete"));
    edb_session *s = c->s;
    MDB_txn *txn;
    edb__rec old = { 0 };
    edb__buf dropped = { 0 };
    edb__wplan *w = NULL;
    int ret = 0;
    EDB_RET(edb__txn_enter(s, true, &txn));
    EDB_ERR(edb__cursor_bind(c, txn));
    if (edb__cursor_state(c) != POS_ON)
        EDB_ERR(edb__err(EDB_NOCURRENT, "edb_record_delete: the cursor on '%s' is not on a record",
                         c->tname));
    EDB_ERR(wplan_get(c, &w));
    /* plan: the record and every entry it has (one that could not have been
     * written, TOOBIG, is not there) */
    EDB_ERR(load_record(txn, c->t, &c->pk, &old, &dropped));
    const edb__table *t = c->t;
    for (uint32_t i = 0; i < t->nidx; i++) {
        const edb__index *x = &t->idx[i];
        w->ost[i] = ENT_NONE;
        if (x->flags & EDB_IDX_PRIMARY)
            continue;
        if (edb__index_multi(t, x)) {
            int rc = edb__index_entries(t, x, &old, c->pk.p, c->pk.len, &w->oe[i]);
            if (rc < 0 && rc != EDB_TOOBIG)
                EDB_ERR(rc);
            if (rc == 0)
                w->ost[i] = ENT_MULTI;
            continue;
        }
        int rc = edb__index_entry(t, x, &old, c->pk.p, c->pk.len, &w->ok[i]);
        if (rc < 0 && rc != EDB_TOOBIG)
            EDB_ERR(rc);
        if (rc == 0)
            w->ost[i] = ENT_PUT;
    }
    /* apply: a failure here leaves the txn half written */
    s->write_seq++;
    for (uint32_t i = 0; i < t->nidx && ret == 0; i++) {
        if (w->ost[i] == ENT_MULTI) {
            for (uint32_t j = 0; j < w->oe[i].n && ret == 0; j++) {
                edb__buf kb = { (uint8_t *)w->oe[i].v[j].p, w->oe[i].v[j].len, w->oe[i].v[j].len };
                ret = del(txn, &t->idx[i].ks, &kb, "delete index entry");
            }
            if (ret == 0)
                ret = edb__rows_add(s, t->idx[i].kid, -(int64_t)w->oe[i].n);
        }
        if (w->ost[i] == ENT_PUT) {
            ret = del(txn, &t->idx[i].ks, &w->ok[i], "delete index entry");
            if (ret == 0)
                ret = edb__rows_add(s, t->idx[i].kid, -1);
        }
    }
    if (ret == 0)
        ret = del(txn, &t->rec, &c->pk, "delete record");
    if (ret == 0)
        ret = edb__lv_free_record(txn, t, &old);
    if (ret == 0)
        ret = edb__lv_free_dropped(txn, t, &dropped, NULL);
    if (ret == 0)
        ret = edb__rows_add(s, t->kid, -1);
    if (ret < 0)
        ret = edb__txn_fail(s, ret);
err:
    /* The cursor stays on the deleted entry (cursor.h, currency): reads are
     * EDB_RECORD_DELETED, NEXT and PREV reach its neighbours, a rollback
     * brings the record back under it. */
    edb__rec_free(&old);
    edb__buf_free(&dropped);
    ret = edb__txn_leave(s, ret);
    if (ret == 0)
        edb__err_clear();
    return ret;
}

int
edb_escrow_update(edb_cursor *c, edb_colid col, int64_t delta, int64_t *old)
{
    if (old != NULL)
        *old = 0;
    if (c == NULL)
        return edb__err(EDB_INVAL, "edb_escrow_update: cursor is NULL");
    if (c->prep != 0)
        return edb__err(EDB_INVAL, "edb_escrow_update: an update is prepared on '%s'", c->tname);
    EDB_RET(check_writable(c, "edb_escrow_update"));
    edb_session *s = c->s;
    MDB_txn *txn;
    edb__rec rec = { 0 }, before = { 0 };
    edb__buf dropped = { 0 };
    edb__wplan *w = NULL;
    bool wrote = false;
    int ret = 0;
    EDB_RET(edb__txn_enter(s, true, &txn));
    EDB_ERR(edb__cursor_bind(c, txn));
    EDB_ERR(edb__colid_resolve(&col, c->t));
    const edb__column *def = &c->t->cols[col - 1];
    if (!(def->flags & EDB_COL_ESCROW))
        EDB_ERR(edb__err(EDB_TYPE, "table '%s': column '%s' is not an ESCROW column", c->tname,
                         def->name));
    if (edb__cursor_state(c) != POS_ON)
        EDB_ERR(edb__err(EDB_NOCURRENT, "edb_escrow_update: the cursor on '%s' is not on a record",
                         c->tname));
    EDB_ERR(wplan_get(c, &w));
    EDB_ERR(load_record(txn, c->t, &c->pk, &before, &dropped));
    EDB_ERR(load_record(txn, c->t, &c->pk, &rec, NULL));
    edb__colval *v = &rec.cols[col - 1];
    int64_t cur = 0, next;
    if (!v->null) {
        if (def->type == EDB_COL_INT32) {
            int32_t x;
            memcpy(&x, v->area.p, 4);
            cur = x;
        } else {
            memcpy(&cur, v->area.p, 8);
        }
    }
    if (__builtin_add_overflow(cur, delta, &next) ||
        (def->type == EDB_COL_INT32 && (next < INT32_MIN || next > INT32_MAX)))
        EDB_ERR(edb__err(EDB_INVAL, "table '%s': column '%s': %lld + %lld overflows", c->tname,
                         def->name, (long long)cur, (long long)delta));
    if (def->type == EDB_COL_INT32) {
        int32_t x = (int32_t)next;
        EDB_ERR(edb__colval_set(v, def, &x, 4, false));
    } else {
        EDB_ERR(edb__colval_set(v, def, &next, 8, false));
    }
    EDB_ERR(edb__buf_set(&w->pk, c->pk.p, c->pk.len));
    EDB_ERR(plan_record(w, txn, c->t, &before, &c->pk, &rec));
    ret = apply_record(c->s, w, txn, c->t, true, &c->pk, &wrote);
    if (ret == 0)
        ret = edb__lv_free_dropped(txn, c->t, &dropped, &rec);
    if (wrote) {
        s->write_seq++;
        if (ret < 0)
            ret = edb__txn_fail(s, ret);
    }
    if (ret == 0 && old != NULL)
        *old = cur;
err:
    if (ret < 0 && old != NULL)
        *old = 0;
    edb__rec_free(&rec);
    edb__rec_free(&before);
    edb__buf_free(&dropped);
    ret = edb__txn_leave(s, ret);
    if (ret == 0)
        edb__err_clear();
    return ret;
}

/*
 * cursor.c: cursors: opening, binding to the session's transaction, reading
 * columns, index choice.  Positioning (seek, ranges, moves) is in seek.c,
 * writing (prepare, set, update, delete, escrow) in update.c.
 *
 * Invariants: c->t is the schema of table c->tname as seen by the session's
 * current transaction whenever a call has bound the cursor (edb__cursor_bind),
 * and always of the one table whose identity is c->t_ident (a bind that finds
 * another identity under c->tname, or none, looks the identity up among every
 * table: a renamed table is followed and c->tname takes its new name; no
 * table with it fails with EDB_DROPPED and changes nothing; the same for the
 * index and c->index_ident, which are not followed across renames); a cursor of a dead session (a
 * zombie, session.h) holds no LMDB cursor and no prepared update;
 * c->mc, when set, was opened in the transaction whose id is c->mc_txn_id; an
 * LMDB cursor of a write transaction that has ended is never touched (LMDB
 * freed it), one of a read transaction is closed by us.
 *
 * Thread safety: as the session.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "error.h"
#include "key.h"
#include "longval.h"

void
edb__session_add_cursor(edb_session *s, edb_cursor *c)
{
    c->prev = NULL;
    c->next = s->cursors;
    if (s->cursors != NULL)
        s->cursors->prev = c;
    s->cursors = c;
}

void
edb__session_remove_cursor(edb_session *s, edb_cursor *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->cursors = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

void
edb__session_cancel_updates(edb_session *s)
{
    for (edb_cursor *c = s->cursors; c != NULL; c = c->next)
        edb_update_cancel(c);
}

/* Let go of the LMDB cursor. */
static void
drop_mc(edb_cursor *c)
{
    if (c->mc != NULL && (c->mc_rdonly || c->mc_txn_id == edb__txn_id(c->s)))
        mdb_cursor_close(c->mc);
    c->mc = NULL;
    c->mc_valid = false;
    c->bound_id = 0;
}

void
edb__session_zombie_cursors(edb_session *s)
{
    for (edb_cursor *c = s->cursors; c != NULL; c = c->next) {
        edb_update_cancel(c);
        drop_mc(c);
        c->pos = POS_NONE;
        c->rv_ok = false;
    }
}

const edb__ks *
edb__cursor_ks(const edb_cursor *c)
{
    return c->index < 0 ? &c->t->rec : &c->t->idx[c->index].ks;
}

static bool
index_is_multi(const edb_cursor *c)
{
    return c->index >= 0 && !(c->t->idx[c->index].flags & EDB_IDX_UNIQUE);
}

size_t
edb__cursor_logical_len(const edb_cursor *c, const MDB_val *k, const MDB_val *d)
{
    if (index_is_multi(c) && d->mv_size == 0) {
        size_t off;
        if (edb__index_pk_off(c->t, &c->t->idx[c->index], k->mv_data, k->mv_size, &off) == 0)
            return off;
        edb__err_clear();
        return k->mv_size;
    }
    if (index_is_multi(c) && d->mv_size <= k->mv_size)
        return k->mv_size - d->mv_size;
    return k->mv_size;
}

int
edb__index_pk_off(const edb__table *t, const edb__index *x, const uint8_t *key, size_t len, size_t *off)
{
    size_t o = 0;
    for (unsigned i = 0; i < x->nseg; i++) {
        const edb__column *def = &t->cols[x->seg[i].col - 1];
        int n = edb__type_size(def->type);
        if (n > 0 && o < len && key[o] == EDB__KEY_PREFIX_VALUE && (size_t)n < len - o) {
            o += 1 + (size_t)n;     /* a fixed-size value: prefix and payload */
            continue;
        }
        /* a collated segment is an ICU sort key framed as a BINARY payload */
        edb_coltype type = def->collation[0] != '\0' ? EDB_COL_BINARY : def->type;
        int rc = edb__key_decode(key, len, &o, type, edb__key_mode(x->seg[i].desc, x->flags), NULL, 0,
                                 NULL);
        if (rc < 0) {
            char why[160];
            snprintf(why, sizeof why, "%s", edb_error_last_message());
            return edb__err(EDB_CORRUPT, "table '%s': an entry of index '%s' is malformed (%s)",
                            t->name, x->name, why);
        }
    }
    if (o >= len)
        return edb__err(EDB_CORRUPT, "table '%s': an entry of index '%s' holds no primary key",
                        t->name, x->name);
    *off = o;
    return 0;
}

int
edb__cursor_set_on_suffix(edb_cursor *c, const MDB_val *k)
{
    size_t off;
    EDB_RET(edb__index_pk_off(c->t, &c->t->idx[c->index], k->mv_data, k->mv_size, &off));
    int rc = edb__buf_set(&c->anchor, k->mv_data, k->mv_size);
    if (rc == 0)
        rc = edb__buf_set(&c->pk, (const uint8_t *)k->mv_data + off, k->mv_size - off);
    if (rc < 0)
        return rc;
    c->pos = POS_ON;
    c->mc_valid = true;
    c->rv_ok = false;
    return 0;
}


/* Is @blob (a schema blob) the table whose identity is @ident?  Compared on
 * the identity's bytes (catalog.c's layout: version, reserved, name, kid,
 * gen, identity); false for a blob too short to say. */
static bool
same_table(const MDB_val *blob, uint64_t ident)
{
    const uint8_t *p = blob->mv_data;
    if (blob->mv_size < 3)
        return false;
    size_t off = 3 + (size_t)p[2] + 8;
    if (blob->mv_size < off + 8)
        return false;
    uint64_t id = 0;
    for (int i = 7; i >= 0; i--)
        id = id << 8 | p[off + (size_t)i];
    return id == ident;
}

/* The general bind (see cursor.h).  @index_may_go: the cursor's secondary
 * index may be gone (edb_cursor_set_index is about to replace it): fall back
 * to the primary instead of failing. */
static int
bind(edb_cursor *c, MDB_txn *txn, bool index_may_go)
{
    edb_session *s = c->s;
    EDB_RET(edb__cursor_check_live(c, "cursor"));
    uint64_t id = edb__txn_id(s);
    if (c->mc != NULL && c->mc_txn_id != id)
        drop_mc(c);
    if (c->t == NULL || c->bind_txn_id != id || c->bind_schema_seq != s->schema_seq ||
        index_may_go) {
        edb__table *t;
        c->rv_ok = false;
        MDB_val blob;
        int rc = edb__table_blob(s->env, txn, c->tname, &blob);
        bool taken = rc == 0 && c->t != NULL && !same_table(&blob, c->t_ident);
        if ((rc == EDB_NOTFOUND || taken) && c->t_ident != 0) {
            /* gone from its name: renamed (edb_table_rename), or dropped */
            rc = edb__table_blob_ident(s->env, txn, c->t_ident, &blob);
            if (rc == EDB_NOTFOUND)
                rc = edb__err(EDB_DROPPED, "table '%s' was dropped%s", c->tname,
                              taken ? " (a new table of that name is another table)" : "");
        }
        if (rc < 0)
            return rc;
        if (c->t != NULL && blob.mv_size == c->t_blob.len &&
            memcmp(blob.mv_data, c->t_blob.p, blob.mv_size) == 0) {
            /* unchanged schema: keep the decoded table */
            c->bind_txn_id = id;
            c->bind_schema_seq = s->schema_seq;
            goto cursor;
        }
        EDB_RET(edb__table_decode(&t, s->env, blob.mv_data, blob.mv_size));
        if (c->t_ident != 0 && t->created != c->t_ident) {
            edb__table_free(t);
            return edb__err(EDB_DROPPED, "table '%s' was dropped (a new table of that name "
                            "is another table)", c->tname);
        }
        if (strcmp(t->name, c->tname) != 0)
            memcpy(c->tname, t->name, sizeof c->tname);    /* the table was renamed */
        bool moved = c->t == NULL;
        int index = -1;
        if (c->index_name[0] != '\0') {
            index = edb__table_index(t, c->index_name);
            if (index < 0 || t->idx[index].id != c->index_ident ||
                (t->idx[index].flags & EDB_IDX_PRIMARY)) {
                if (!index_may_go) {
                    bool other = index >= 0;
                    edb__table_free(t);
                    return edb__err(EDB_DROPPED, "index '%s' of table '%s' was dropped%s",
                                    c->index_name, c->tname,
                                    other ? " (a new index of that name is another index)" : "");
                }
                c->index_name[0] = '\0';
                c->index_ident = 0;
                index = -1;
                moved = true;
            }
        }
        if ((rc = edb__buf_set(&c->t_blob, blob.mv_data, blob.mv_size)) < 0) {
            edb__table_free(t);
            return rc;
        }
        if (moved) {
            drop_mc(c);
            c->pos = POS_NONE;
            c->range = false;
        }
        if (c->t == NULL)   /* AUTOINC marks belong to this table (catalog.h) */
            edb__counter_adopt(s->env, t->kid, t->created);
        edb__table_free(c->t);
        c->t = t;
        c->cc_col = 0;      /* the column cache resolved against the old table */
        c->cc_h4 = 0;
        c->t_ident = t->created;
        c->index = index;
        c->bind_txn_id = id;
        c->bind_schema_seq = s->schema_seq;
    }
cursor:;
    const edb__ks *ks = edb__cursor_ks(c);
    if (c->mc != NULL && !edb__ks_eq(&c->mc_ks, ks))
        drop_mc(c);
    if (c->mc == NULL) {
        int rc = mdb_cursor_open(txn, ks->dbi, &c->mc);
        if (rc != 0) {
            c->mc = NULL;
            return edb__mdb_err(rc, "cursor");
        }
        c->mc_ks = *ks;
        c->mc_txn_id = id;
        c->mc_rdonly = s->implicit ? !s->implicit_write : s->rdonly;
        c->mc_valid = false;
        c->mc_write_seq = s->write_seq;
    }
    if (c->mc_write_seq != s->write_seq) {
        c->mc_valid = false;
        c->mc_write_seq = s->write_seq;
    }
    c->bound_id = id;
    return 0;
}

int
edb__cursor_bind_slow(edb_cursor *c, MDB_txn *txn)
{
    return bind(c, txn, false);
}

int
edb_cursor_open(edb_cursor **out, edb_session *s, const char *table)
{
    if (out == NULL)
        return edb__err(EDB_INVAL, "edb_cursor_open: out is NULL");
    *out = NULL;
    EDB_RET(edb__session_check(s, "edb_cursor_open"));
    if (table == NULL)
        return edb__err(EDB_INVAL, "edb_cursor_open: table is NULL");
    if (!edb__name_ok(table))
        return edb__err(EDB_NOTFOUND, "table '%s' does not exist", table);
    edb_cursor *c = calloc(1, sizeof *c);
    if (c == NULL)
        return edb__err(EDB_NOMEM, "edb_cursor_open");
    c->s = s;
    c->index = -1;
    snprintf(c->tname, sizeof c->tname, "%s", table);
    MDB_txn *txn;
    int rc = edb__txn_enter(s, false, &txn);
    if (rc == 0)
        rc = edb__txn_leave(s, edb__cursor_bind(c, txn));
    if (rc < 0) {
        drop_mc(c);
        edb__table_free(c->t);
        free(c);
        return rc;
    }
    edb__session_add_cursor(s, c);
    edb__err_clear();
    *out = c;
    return 0;
}

int
edb_cursor_dup(edb_cursor **out, edb_cursor *c)
{
    if (out == NULL)
        return edb__err(EDB_INVAL, "edb_cursor_dup: out is NULL");
    *out = NULL;
    if (c == NULL)
        return edb__err(EDB_INVAL, "edb_cursor_dup: cursor is NULL");
    EDB_RET(edb__cursor_check_live(c, "edb_cursor_dup"));
    edb_session *s = c->s;
    MDB_txn *txn;
    EDB_RET(edb__txn_enter(s, false, &txn));
    int rc = edb__cursor_bind(c, txn);     /* EDB_DROPPED: the table or index went */
    if (rc < 0)
        return edb__txn_leave(s, rc);
    edb_cursor *d = calloc(1, sizeof *d);
    if (d == NULL)
        return edb__txn_leave(s, edb__err(EDB_NOMEM, "edb_cursor_dup"));
    d->s = s;
    memcpy(d->tname, c->tname, sizeof d->tname);
    memcpy(d->index_name, c->index_name, sizeof d->index_name);
    d->index_ident = c->index_ident;
    d->t_ident = c->t_ident;
    d->index = -1;
    edb__session_add_cursor(s, d);
    /* The first bind decodes the schema and finds the index by name and
     * identity, as for any cursor; it finds what c's bind just found. */
    rc = edb__cursor_bind(d, txn);
    if (rc == 0 && d->index != c->index)
        rc = edb__err(EDB_INTERNAL, "edb_cursor_dup: the copy bound to another index");
    if (rc == 0) {
        d->pos = c->pos;
        rc = edb__buf_set(&d->anchor, c->anchor.p, c->anchor.len);
        if (rc == 0)
            rc = edb__buf_set(&d->pk, c->pk.p, c->pk.len);
        d->mc_valid = false;        /* its own LMDB cursor finds the anchor on the first move */
    }
    rc = edb__txn_leave(s, rc);
    if (rc < 0) {
        edb_cursor_close(d);
        return rc;
    }
    edb__err_clear();
    *out = d;
    return 0;
}

void
edb_cursor_close(edb_cursor *c)
{
    if (c == NULL)
        return;
    edb_session *s = c->s;
    if (!s->dead) {     /* a zombie's update and LMDB cursor went when it died */
        edb_update_cancel(c);
        drop_mc(c);
    }
    edb__session_remove_cursor(s, c);
    edb__table_free(c->t);
    edb__buf_free(&c->t_blob);
    edb__buf_free(&c->anchor);
    edb__buf_free(&c->pk);
    edb__buf_free(&c->key);
    edb__buf_free(&c->range_key);
    edb__buf_free(&c->prep_pk);
    edb__buf_free(&c->prep_raw);
    edb__wplan_free(c->wp);
    edb__lvw_free_all(&c->lvw);
    free(c);
    if (s->dead)
        edb__session_release(s);    /* frees an ended session with its last cursor */
}

int
edb_column_id(edb_colid *out, edb_cursor *c, const char *column)
{
    if (out == NULL)
        return edb__err(EDB_INVAL, "edb_column_id: out is NULL");
    *out = 0;
    if (c == NULL || column == NULL)
        return edb__err(EDB_INVAL, "edb_column_id: %s is NULL", c == NULL ? "cursor" : "column");
    EDB_RET(edb__cursor_check_live(c, "edb_column_id"));
    /* Always bound: the answer is about the table the cursor is on, which
     * another session or process may have dropped since (EDB_DROPPED). */
    MDB_txn *txn;
    EDB_RET(edb__txn_enter(c->s, false, &txn));
    EDB_RET(edb__txn_leave(c->s, edb__cursor_bind(c, txn)));
    edb_colid id = edb__table_colid(c->t, column);
    if (id == 0)
        return edb__err(EDB_NOTFOUND, "table '%s' has no column '%s'", c->tname, column);
    edb__err_clear();
    *out = edb__colid_make(c->t, id);
    return 0;
}

int
edb__colid_resolve(edb_colid *col, const edb__table *t)
{
    uint32_t pos = edb__colid_pos(t, *col);
    if (pos != 0) {
        *col = pos;
        return 0;
    }
    uint32_t p = *col & EDB__COLID_POS_MASK;
    if ((*col >> EDB__COLID_POS_BITS) != 0 ||
        (p != 0 && p <= t->ncols && (t->cols[p - 1].flags & EDB__COL_DROPPED)))
        return edb__err(EDB_DROPPED, "table '%s': column id 0x%x names a column that is gone "
                        "(dropped, its edb_column_add was rolled back, or the table was dropped)",
                        t->name, (unsigned)*col);
    return edb__err(EDB_NOTFOUND, "table '%s' has no column id %u", t->name, (unsigned)*col);
}

int
edb_cursor_set_index(edb_cursor *c, const char *index)
{
    if (c == NULL)
        return edb__err(EDB_INVAL, "edb_cursor_set_index: cursor is NULL");
    MDB_txn *txn;
    EDB_RET(edb__txn_enter(c->s, false, &txn));
    /* The index it leaves may have been dropped: that is no error here. */
    int rc = c->index_name[0] != '\0' ? bind(c, txn, true) : edb__cursor_bind(c, txn);
    if (rc == 0 && index != NULL) {
        int i = edb__table_index(c->t, index);
        if (i < 0)
            rc = edb__err(EDB_NOTFOUND, "table '%s' has no index '%s'", c->tname, index);
        else if (c->t->idx[i].flags & EDB_IDX_PRIMARY)
            index = NULL;
        else {
            snprintf(c->index_name, sizeof c->index_name, "%s", index);
            c->index_ident = c->t->idx[i].id;
            c->index = i;
        }
    }
    if (rc == 0 && index == NULL) {
        c->index_name[0] = '\0';
        c->index_ident = 0;
        c->index = -1;
    }
    if (rc == 0) {
        drop_mc(c);
        c->pos = POS_NONE;
        c->range = false;
        c->key_valid = false;
    }
    rc = edb__txn_leave(c->s, rc);
    if (rc == 0)
        edb__err_clear();
    return rc;
}

const char *
edb_cursor_index(edb_cursor *c)
{
    if (c == NULL || c->t == NULL)
        return NULL;
    if (c->index >= 0)
        return c->t->idx[c->index].name;
    return c->t->primary >= 0 ? c->t->idx[c->t->primary].name : NULL;
}

/* The record the cursor is on, from the cache or LMDB, with its checked
 * header; fills the cache. */
static int
current_record(edb_cursor *c, MDB_txn *txn, const char *fn, const edb__rechdr **out)
{
    edb_session *s = c->s;
    uint64_t id = edb__txn_id(s);
    if (c->rv_ok && c->rv_txn_id == id && c->rv_write_seq == s->write_seq) {
        if (!c->rv_hdr_ok) {
            EDB_RET(edb__rec_parse(&c->rv_hdr, c->rv.mv_data, c->rv.mv_size));
            c->rv_hdr_ok = true;
        }
        *out = &c->rv_hdr;
        return 0;
    }
    MDB_val k = { c->pk.len, c->pk.p }, d;
    /* On the primary index a valid LMDB cursor sits on the record: read it
     * there instead of searching the tree again. */
    int mrc = -1;
    if (c->index < 0 && c->mc_valid) {
        MDB_val ck;
        mrc = edb__ks_cursor_get(c->mc, &c->mc_ks, &ck, &d, MDB_GET_CURRENT);
        if (mrc != 0 || ck.mv_size != k.mv_size || memcmp(ck.mv_data, k.mv_data, k.mv_size) != 0)
            mrc = -1;       /* not where it should be: search (cannot happen, cheap to check) */
    }
    if (mrc != 0)
        mrc = edb__ks_get(txn, &c->t->rec, &k, &d);
    if (edb__mdb_is_notfound(mrc))
        return edb__err(EDB_RECORD_DELETED, "%s: the cursor's record of '%s' was deleted", fn,
                        c->tname);
    EDB_RET(edb__mdb_err(mrc, fn));
    c->rv_ok = false;
    EDB_RET(edb__rec_parse(&c->rv_hdr, d.mv_data, d.mv_size));
    c->rv = d;
    c->rv_txn_id = id;
    c->rv_write_seq = s->write_seq;
    c->rv_hdr_ok = true;
    c->rv_ok = true;
    *out = &c->rv_hdr;
    return 0;
}

/* Column @col's view in the prepared record, or in the current record
 * (then the view points into LMDB's pages: use it before edb__txn_leave).
 * @txn: the entered transaction (NULL while an update is prepared). */
static inline int
column_view(edb_cursor *c, MDB_txn *txn, edb_colid *colp, const char *fn, edb__colview *v)
{
    EDB_RET(edb__colid_resolve(colp, c->t));
    edb_colid col = *colp;
    if (c->prep != 0) {
        const edb__colval *cv = &c->rec.cols[col - 1];
        *v = (edb__colview){ cv->null, false, cv->count, cv->area.p, cv->area.len, cv->sep };
        uint64_t lvsize;
        if (c->lvw != NULL && edb__lvw_size(c->lvw, col, &lvsize)) {
            v->null = false;        /* pending long-value changes (longval.c) */
            v->count = 1;
            v->sep = true;
        }
        return 0;
    }
    if (edb__cursor_state(c) != POS_ON)
        return edb__err(EDB_NOCURRENT, "%s: the cursor on '%s' is not on a record", fn, c->tname);
    const edb__rechdr *h = NULL;
    EDB_RET(current_record(c, txn, fn, &h));
    return edb__rec_hdr_view(v, c->t, h, col);
}

/* Enter the session's transaction and bind the cursor, unless an update is
 * prepared (its record is in memory: *txn = NULL, nothing to leave). */
static inline int
enter_for_read(edb_cursor *c, MDB_txn **txn)
{
    *txn = NULL;
    if (c->prep != 0)
        return 0;
    EDB_RET(edb__txn_enter(c->s, false, txn));
    int rc = edb__cursor_bind(c, *txn);
    if (rc < 0)
        return edb__txn_leave(c->s, rc);
    return 0;
}

static inline int
leave_after_read(edb_cursor *c, MDB_txn *txn, int rc)
{
    return txn == NULL ? rc : edb__txn_leave(c->s, rc);
}

/* Copy the @n bytes at @data out as edb_column_get does: *actual = n, at
 * most @size bytes, EDB_WRN_TRUNCATED when they do not fit. */
static inline int
copy_out(const uint8_t *data, size_t n, void *buf, size_t size, size_t *actual)
{
    int rc = 0;
    if (actual != NULL)
        *actual = n;
    if (n > size) {
        rc = EDB_WRN_TRUNCATED;
        n = size;
    }
    if (n >= 4 && n <= 16) {
        /* fixed-size values: overlapping word copies instead of a call */
        uint8_t *o = buf;
        if (n >= 8) {
            memcpy(o, data, 8);
            memcpy(o + n - 8, data + n - 8, 8);
        } else {
            memcpy(o, data, 4);
            memcpy(o + n - 4, data + n - 4, 4);
        }
    } else if (n > 0) {
        memcpy(buf, data, n);
    }
    return rc;
}

/* Copy value @itag of column @col (view @v) out as edb_column_get does;
 * returns 0 or a warning. */
static inline int
copy_value(const edb_cursor *c, edb_colid col, const edb__colview *v, void *buf, size_t size,
           size_t *actual, unsigned itag)
{
    const uint8_t *data = v->area;
    size_t n = v->len;
    bool multi = (c->t->cols[col - 1].flags & EDB_COL_MULTIVALUED) != 0;
    if ((multi || v->null || itag > 1) &&
        !edb__colview_value(v, multi, itag == 0 ? 1 : itag, &data, &n))
        return EDB_WRN_NULL;
    return copy_out(data, n, buf, size, actual);
}

/* Copy bytes from @offset of a long value (view @v, longval.c) as
 * edb_column_read does; a long value has one itag. */
static int
lv_copy(edb_cursor *c, MDB_txn *txn, edb_colid col, const edb__colview *v, uint64_t offset,
        void *buf, size_t size, size_t *actual, unsigned itag)
{
    if (itag > 1)
        return EDB_WRN_NULL;
    uint64_t total;
    EDB_RET(edb__lv_read(c, txn, col, v, offset, buf, size, &total));
    if (actual != NULL)
        *actual = (size_t)total;
    return offset < total && total - offset > size ? EDB_WRN_TRUNCATED : 0;
}

/* The general path of edb_column_get (arguments checked). */
static int
column_get_slow(edb_cursor *c, edb_colid col, void *buf, size_t size, size_t *actual, unsigned itag)
{
    MDB_txn *txn;
    EDB_RET(enter_for_read(c, &txn));
    edb__colview v;
    int rc = column_view(c, txn, &col, "edb_column_get", &v);
    if (rc == 0 && v.sep) {
        rc = lv_copy(c, txn, col, &v, 0, buf, size, actual, itag);
    } else if (rc == 0) {
        rc = copy_value(c, col, &v, buf, size, actual, itag);
    }
    rc = leave_after_read(c, txn, rc);
    if (rc == 0)
        edb__err_clear();
    return rc;
}

/* edb_column_get after its leanest path (arguments not checked yet). */
static __attribute__((noinline)) int
column_get_general(edb_cursor *c, edb_colid col, void *buf, size_t size, size_t *actual,
                   unsigned itag)
{
    if (actual != NULL)
        *actual = 0;
    if (buf == NULL && size != 0)
        return edb__err(EDB_INVAL, "edb_column_get: buf is NULL with size %zu", size);
    if (c == NULL)
        return edb__err(EDB_INVAL, "edb_column_get: cursor is NULL");
    /* The fast path: in an explicit transaction, on a record whose value is
     * cached (cursor.h).  A cached record implies a bind in this txn (it was
     * read or landed on after one), so with no schema change since, the bind
     * would do nothing a read needs.  Anything else, errors included, takes
     * the general path. */
    const edb_session *s = c->s;
    edb_colid pos;
    if (s->depth > 0 && s->failed == 0 && c->prep == 0 && c->rv_ok && c->rv_txn_id == s->cur_id &&
        c->rv_write_seq == s->write_seq && c->bind_schema_seq == s->schema_seq &&
        c->pos == POS_ON && (pos = edb__colid_pos(c->t, col)) != 0) {
        if (!(c->t->cols[pos - 1].flags & EDB_COL_MULTIVALUED)) {
            if (c->cc_col != col || c->cc_pos != pos)
                c->cc_h4 = 0;       /* another column: another layout */
            c->cc_col = col;        /* the leanest path's next time (cursor.h) */
            c->cc_pos = pos;
        }
        edb__colview v;
        if (!c->rv_hdr_ok && edb__rec_parse(&c->rv_hdr, c->rv.mv_data, c->rv.mv_size) == 0)
            c->rv_hdr_ok = true;
        if (c->rv_hdr_ok && edb__rec_hdr_view(&v, c->t, &c->rv_hdr, pos) == 0 && !v.sep) {
            int rc = copy_value(c, pos, &v, buf, size, actual, itag);
            if (rc == 0)
                edb__err_clear();
            return rc;
        }
    }
    return column_get_slow(c, col, buf, size, actual, itag);
}

/* Where column c->cc_pos is in version 1 or 3 records (without long
 * values) whose first 4 bytes are @h4 (little-endian: version, reserved or
 * version 3's width code, column count): false when they are no such record
 * or do not hold the column (then the general path decides). */
static __attribute__((noinline)) bool
lean_layout(edb_cursor *c, uint32_t h4)
{
    uint32_t cn = h4 >> 16, i = c->cc_pos - 1;
    uint32_t ver = h4 & 0xFF, code = (h4 >> 8) & 0xFF;
    uint32_t w = ver == EDB__RECORD_VERSION ? 4 : ver == EDB__RECORD_VERSION_W && code < 3 ? 1u << code : 0;
    if (w == 0 || c->cc_pos > cn || cn > c->t->ncols)
        return false;
    uint32_t b = (cn + 7) / 8;
    c->cc_hdr = 4 + b + w * cn;
    c->cc_end = 4 + b + w * i;
    c->cc_bbyte = 4 + i / 8;
    c->cc_bmask = (uint8_t)(1u << (i % 8));
    c->cc_w = (uint8_t)w;
    c->cc_h4 = h4;
    return true;
}

/* The value of single-valued column c->cc_pos in the cached record when it
 * is a version 1 or 3 record holding the column non-NULL; false otherwise
 * (then the general path decides).  The checks are edb__rec_parse's and
 * edb__rec_hdr_view's for that case: the header fits, the last end offset is
 * the data size, the column's two offsets are ordered and inside. */
static inline bool
lean_view(edb_cursor *c, const uint8_t **data, size_t *n)
{
    const uint8_t *p = c->rv.mv_data;
    size_t len = c->rv.mv_size;
    if (len < 4)
        return false;
    uint32_t h4 = edb__rd32le(p);
    if (h4 != c->cc_h4 && !lean_layout(c, h4))
        return false;
    size_t hdr = c->cc_hdr;
    if (hdr > len || (p[c->cc_bbyte] & c->cc_bmask))     /* the header fits; not NULL */
        return false;
    size_t dlen = len - hdr;
    unsigned w = c->cc_w;
    uint32_t end = edb__rec_off(p + c->cc_end, w, 0);
    uint32_t start = c->cc_pos == 1 ? 0 : edb__rec_off(p + c->cc_end - w, w, 0);
    if (edb__rec_off(p + hdr - w, w, 0) != dlen || end < start || end > dlen)
        return false;
    *data = p + hdr + start;
    *n = end - start;
    return true;
}

int
edb_column_get(edb_cursor *c, edb_colid col, void *buf, size_t size, size_t *actual, unsigned itag)
{
    /* The leanest path (cursor.h, "Fast paths"): the fast path's state, the
     * column resolved before, its first value. */
    if (c != NULL && col == c->cc_col && col != 0 && itag <= 1 && (buf != NULL || size == 0)) {
        const edb_session *s = c->s;
        const uint8_t *data;
        size_t n;
        if (s->depth > 0 && s->failed == 0 && c->prep == 0 && c->rv_ok &&
            c->rv_txn_id == s->cur_id && c->rv_write_seq == s->write_seq &&
            c->bind_schema_seq == s->schema_seq && c->pos == POS_ON && lean_view(c, &data, &n)) {
            int rc = copy_out(data, n, buf, size, actual);
            if (rc == 0)
                edb__err_clear();
            return rc;
        }
    }
    return column_get_general(c, col, buf, size, actual, itag);
}

int
edb_column_read(edb_cursor *c, edb_colid col, uint64_t offset, void *buf, size_t size,
                size_t *actual, unsigned itag)
{
    if (actual != NULL)
        *actual = 0;
    if (buf == NULL && size != 0)
        return edb__err(EDB_INVAL, "edb_column_read: buf is NULL with size %zu", size);
    if (c == NULL)
        return edb__err(EDB_INVAL, "edb_column_read: cursor is NULL");
    EDB_RET(edb__cursor_check_live(c, "edb_column_read"));
    MDB_txn *txn;
    EDB_RET(enter_for_read(c, &txn));
    edb__colview v;
    int rc = column_view(c, txn, &col, "edb_column_read", &v);
    if (rc == 0 && v.sep) {
        rc = lv_copy(c, txn, col, &v, offset, buf, size, actual, itag);
    } else if (rc == 0) {
        /* an inline value: the bytes from @offset of the one copy_value reads */
        const uint8_t *data = v.area;
        size_t n = v.len;
        bool multi = (c->t->cols[col - 1].flags & EDB_COL_MULTIVALUED) != 0;
        if ((multi || v.null || itag > 1) &&
            !edb__colview_value(&v, multi, itag == 0 ? 1 : itag, &data, &n)) {
            rc = EDB_WRN_NULL;
        } else {
            if (actual != NULL)
                *actual = n;
            size_t k = offset >= n ? 0 : n - (size_t)offset;
            rc = k > size ? EDB_WRN_TRUNCATED : 0;
            if (k > size)
                k = size;
            if (k > 0)
                memcpy(buf, data + offset, k);
        }
    }
    rc = leave_after_read(c, txn, rc);
    if (rc == 0)
        edb__err_clear();
    return rc;
}

int
edb_column_count(unsigned *out, edb_cursor *c, edb_colid col)
{
    if (out == NULL)
        return edb__err(EDB_INVAL, "edb_column_count: out is NULL");
    *out = 0;
    if (c == NULL)
        return edb__err(EDB_INVAL, "edb_column_count: cursor is NULL");
    MDB_txn *txn;
    EDB_RET(enter_for_read(c, &txn));
    edb__colview v;
    int rc = column_view(c, txn, &col, "edb_column_count", &v);
    unsigned n = rc == 0 && !v.null ? v.count : 0;
    rc = leave_after_read(c, txn, rc);
    if (rc == 0) {
        *out = n;
        edb__err_clear();
    }
    return rc;
}

/* ---- batch column reads (ESE's JetRetrieveColumns) ---------------------- */

/* One entry of edb_columns_get, the record's header @h already checked (NULL
 * while an update is prepared: the prepared record is read). */
static int
columns_get_one(edb_cursor *c, MDB_txn *txn, const edb__rechdr *h, edb_colval *e)
{
    edb_colid col = e->col;
    if (e->buf == NULL && e->size != 0)
        return edb__err(EDB_INVAL, "edb_columns_get: buf is NULL with size %zu", e->size);
    edb__colview v;
    if (h == NULL) {
        EDB_RET(column_view(c, txn, &col, "edb_columns_get", &v));
    } else {
        EDB_RET(edb__colid_resolve(&col, c->t));
        EDB_RET(edb__rec_hdr_view(&v, c->t, h, col));
    }
    if (v.sep)      /* a long value (or pending edb_column_write changes) */
        return lv_copy(c, txn, col, &v, 0, e->buf, e->size, &e->actual, e->itag);
    return copy_value(c, col, &v, e->buf, e->size, &e->actual, e->itag);
}

int
edb_columns_get(edb_cursor *c, edb_colval *v, size_t n)
{
    if (v == NULL && n != 0)
        return edb__err(EDB_INVAL, "edb_columns_get: v is NULL with n %zu", n);
    for (size_t i = 0; i < n; i++) {
        v[i].actual = 0;
        v[i].rc = 0;
    }
    if (c == NULL) {
        for (size_t i = 0; i < n; i++)
            v[i].rc = EDB_INVAL;
        return edb__err(EDB_INVAL, "edb_columns_get: cursor is NULL");
    }
    MDB_txn *txn;
    const edb__rechdr *h = NULL;
    int rc = enter_for_read(c, &txn);
    if (rc == 0 && c->prep == 0) {
        if (edb__cursor_state(c) != POS_ON)
            rc = edb__err(EDB_NOCURRENT, "edb_columns_get: the cursor on '%s' is not on a record",
                          c->tname);
        else
            rc = current_record(c, txn, "edb_columns_get", &h);
    }
    if (rc < 0) {
        /* nothing to read: every entry has the cursor's error */
        for (size_t i = 0; i < n; i++)
            v[i].rc = rc;
        return leave_after_read(c, txn, rc);
    }
    /* one header check for all entries; the first error's message is kept */
    int first = 0;
    char msg[512];
    for (size_t i = 0; i < n; i++) {
        v[i].rc = columns_get_one(c, txn, h, &v[i]);
        if (v[i].rc < 0 && first == 0) {
            first = v[i].rc;
            snprintf(msg, sizeof msg, "%s", edb_error_last_message());
        }
    }
    rc = leave_after_read(c, txn, first);
    if (rc == 0)
        edb__err_clear();
    else if (rc == first)
        edb__err(first, "%s", msg);
    return rc;
}

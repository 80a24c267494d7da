/*
 * bookmark.c: a record's identity and an entry's key as bytes a caller can
 * keep (ESE's JetGetBookmark, JetGotoBookmark and JetRetrieveKey).
 *
 * A bookmark is the record's key in the table's record range: its encoded
 * primary key (key.c), or the 8-byte big-endian implicit key of a table
 * without a primary index.  It is what the cursor already holds in `pk`
 * (cursor.h), so getting one copies bytes; going to one is one exact lookup
 * in the record range, plus, on a secondary index, building the record's
 * entry key from its values (edb__index_entry, as an update does) and
 * checking the entry is there.  A retrieved key is the logical part of the
 * cursor's `anchor` (without the primary key a non-unique entry carries),
 * the same bytes edb_key_make builds, so EDB_KEY_NORMALIZED (seek.c) takes
 * them back.  edb_column_get_from_index (ESE's JET_bitRetrieveFromIndex)
 * decodes one segment of that same logical key with key.c's decoder: it
 * reads the index entry only, never the record.
 *
 * Invariants: bytes from the caller are checked to be a primary key of the
 * table (whole, well-formed segments: key.c's decoder) before any lookup; a
 * failed goto leaves the cursor where it was.
 *
 * Thread safety: as the session.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "cursor.h"
#include "error.h"
#include "key.h"

/* Enter the session's transaction and bind @c (see seek.c's enter_bound). */
static int
enter(edb_cursor *c, MDB_txn **txn, const char *fn)
{
    if (c == NULL)
        return edb__err(EDB_INVAL, "%s: cursor is NULL", fn);
    EDB_RET(edb__cursor_check_live(c, fn));
    EDB_RET(edb__txn_enter(c->s, false, txn));
    int rc = edb__cursor_bind(c, *txn);
    if (rc < 0)
        return edb__txn_leave(c->s, rc);
    return 0;
}

/* Is the cursor on an entry that still exists (currency, cursor.h)?  The
 * entry is `anchor` in the current index's range and belongs to record `pk`
 * (a unique secondary index may hold the same key for a record inserted
 * since). */
static int
on_entry(edb_cursor *c, MDB_txn *txn, const char *fn)
{
    if (edb__cursor_state(c) != POS_ON)
        return edb__err(EDB_NOCURRENT, "%s: the cursor on '%s' is not on a record", fn, c->tname);
    if (c->mc_valid)        /* bound: mc sits on the anchor in this txn, unchanged since */
        return 0;
    MDB_val k = { c->anchor.len, c->anchor.p }, d;
    int rc = edb__ks_get(txn, edb__cursor_ks(c), &k, &d);
    /* an empty value: a non-unique entry of format 5, whose key ends with the
     * primary key (the anchor is that key) */
    if (rc == 0 && c->index >= 0 && d.mv_size != 0 &&
        (d.mv_size != c->pk.len || memcmp(d.mv_data, c->pk.p, c->pk.len) != 0))
        rc = MDB_NOTFOUND;
    if (edb__mdb_is_notfound(rc))
        return edb__err(EDB_RECORD_DELETED, "%s: the cursor's record of '%s' was deleted", fn,
                        c->tname);
    return edb__mdb_err(rc, fn);
}

/* Copy @n bytes out as edb_column_get does. */
static int
copy_out(const void *p, size_t n, void *buf, size_t size, size_t *actual)
{
    if (actual != NULL)
        *actual = n;
    int rc = 0;
    if (n > size) {
        n = size;
        rc = EDB_WRN_TRUNCATED;
    }
    if (n > 0)
        memcpy(buf, p, n);
    return rc;
}

int
edb_bookmark_get(edb_cursor *c, void *buf, size_t size, size_t *actual)
{
    if (actual != NULL)
        *actual = 0;
    if (buf == NULL && size != 0)
        return edb__err(EDB_INVAL, "edb_bookmark_get: buf is NULL with size %zu", size);
    MDB_txn *txn;
    EDB_RET(enter(c, &txn, "edb_bookmark_get"));
    int rc = on_entry(c, txn, "edb_bookmark_get");
    if (rc == 0)
        rc = copy_out(c->pk.p, c->pk.len, buf, size, actual);
    rc = edb__txn_leave(c->s, rc);
    if (rc == 0)
        edb__err_clear();
    return rc;
}

int
edb_key_retrieve(edb_cursor *c, void *buf, size_t size, size_t *actual)
{
    if (actual != NULL)
        *actual = 0;
    if (buf == NULL && size != 0)
        return edb__err(EDB_INVAL, "edb_key_retrieve: buf is NULL with size %zu", size);
    MDB_txn *txn;
    EDB_RET(enter(c, &txn, "edb_key_retrieve"));
    int rc = on_entry(c, txn, "edb_key_retrieve");
    if (rc == 0) {
        MDB_val k = { c->anchor.len, c->anchor.p }, d = { c->pk.len, c->pk.p };
        rc = copy_out(c->anchor.p, edb__cursor_logical_len(c, &k, &d), buf, size, actual);
    }
    rc = edb__txn_leave(c->s, rc);
    if (rc == 0)
        edb__err_clear();
    return rc;
}

/* Are bm[0..size) a primary key of table @t: whole, well-formed segments,
 * one per column of the primary index (the implicit key: 8 bytes)? */
static bool
is_primary_key(const edb__table *t, const uint8_t *bm, size_t size)
{
    if (t->primary < 0)
        return size == 8;
    const edb__index *x = &t->idx[t->primary];
    size_t off = 0;
    for (unsigned i = 0; i < x->nseg; i++) {
        const edb__column *def = &t->cols[x->seg[i].col - 1];
        if (off >= size)
            return false;
        int rc = edb__key_decode(bm, size, &off, def->type, edb__key_mode(x->seg[i].desc, x->flags),
                                 NULL, 0, NULL);
        if (rc < 0)
            return false;
    }
    return off == size;
}

/* The body of edb_bookmark_goto once bound: nothing changes unless it succeeds. */
static int
goto_bookmark(edb_cursor *c, MDB_txn *txn, const uint8_t *bm, size_t size)
{
    const edb__table *t = c->t;
    if (!is_primary_key(t, bm, size))
        return edb__err(EDB_INVAL, "edb_bookmark_goto: the %zu bytes are no bookmark of table '%s'",
                        size, c->tname);
    MDB_val k = { size, (void *)bm }, d;
    int rc = edb__ks_get(txn, &t->rec, &k, &d);
    if (edb__mdb_is_notfound(rc))
        return edb__err(EDB_NOTFOUND, "edb_bookmark_goto: table '%s' has no record with this "
                        "bookmark (deleted?)", c->tname);
    EDB_RET(edb__mdb_err(rc, "edb_bookmark_goto"));
    if (c->index < 0) {
        EDB_RET(edb__cursor_set_on(c, &k, &d));
        /* the record is at hand: the read cache (cursor.h) */
        c->rv = d;
        c->rv_txn_id = edb__txn_id(c->s);
        c->rv_write_seq = c->s->write_seq;
        c->rv_hdr_ok = false;
        c->rv_ok = true;
    } else {
        const edb__index *x = &t->idx[c->index];
        edb__rec rec = { 0 };
        edb__buf key = { 0 };
        int ret = 0;
        EDB_ERR(edb__rec_decode(&rec, t, d.mv_data, d.mv_size));
        ret = edb__index_entry(t, x, &rec, bm, size, &key);
        if (ret == 1)
            EDB_ERR(edb__err(EDB_NOTFOUND, "edb_bookmark_goto: the record has no entry in index "
                             "'%s' of '%s' (its key columns are NULL)", x->name, c->tname));
        if (ret < 0)
            goto err;
        MDB_val ek = { key.len, key.p }, ed;
        rc = edb__ks_get(txn, &x->ks, &ek, &ed);
        if (edb__mdb_is_notfound(rc))
            EDB_ERR(edb__err(EDB_CORRUPT, "edb_bookmark_goto: index '%s' of '%s' has no entry for "
                             "the record (run dbtool check)", x->name, c->tname));
        EDB_ERR(edb__mdb_err(rc, "edb_bookmark_goto"));
        MDB_val pk = { size, (void *)bm };
        EDB_ERR(edb__cursor_set_on(c, &ek, &pk));
    err:
        edb__buf_free(&key);
        edb__rec_free(&rec);
        if (ret < 0)
            return ret;
    }
    c->mc_valid = false;        /* found by lookup: mc did not move */
    c->range = false;
    return 0;
}

int
edb_bookmark_goto(edb_cursor *c, const void *bm, size_t size)
{
    if (c != NULL && (bm == NULL || size == 0 || size > EDB_BOOKMARK_MAX))
        return edb__err(EDB_INVAL, "edb_bookmark_goto: %s", bm == NULL ? "bookmark is NULL"
                        : size == 0 ? "empty bookmark" : "bookmark longer than EDB_BOOKMARK_MAX");
    MDB_txn *txn;
    EDB_RET(enter(c, &txn, "edb_bookmark_goto"));
    int rc = edb__txn_leave(c->s, goto_bookmark(c, txn, bm, size));
    if (rc == 0)
        edb__err_clear();
    return rc;
}

/* The index whose entries the cursor walks (NULL: the implicit key). */
static const edb__index *
cur_index(const edb_cursor *c)
{
    const edb__table *t = c->t;
    if (c->index >= 0)
        return &t->idx[c->index];
    return t->primary >= 0 ? &t->idx[t->primary] : NULL;
}

/* The body of edb_column_get_from_index once on an entry: decode segment of
 * column @col from the entry's logical key (`anchor`, cursor.h).  The
 * segments before it are skipped with the same decoder; a collated one is
 * a BINARY payload (collate.h). */
static int
from_index(edb_cursor *c, edb_colid col, void *buf, size_t size, size_t *actual)
{
    const char *fn = "edb_column_get_from_index";
    const edb__table *t = c->t;
    if (col == 0 || col > t->ncols || (t->cols[col - 1].flags & EDB__COL_DROPPED))
        return edb__err(EDB_NOTFOUND, "%s: table '%s' has no column %u", fn, c->tname, col);
    const edb__column *def = &t->cols[col - 1];
    const edb__index *x = cur_index(c);
    if (x == NULL)
        return edb__err(EDB_INVAL, "%s: column '%s' is not in the cursor's index (the implicit "
                        "key of '%s' has no columns)", fn, def->name, c->tname);
    unsigned seg = 0;
    while (seg < x->nseg && x->seg[seg].col != col)
        seg++;
    if (seg == x->nseg)
        return edb__err(EDB_INVAL, "%s: column '%s' is not a segment of index '%s' of '%s'", fn,
                        def->name, x->name, c->tname);
    if (x->flags & EDB_IDX_TUPLES)
        return edb__err(EDB_INVAL, "%s: index '%s' of '%s' is a tuple index: its entries hold "
                        "substrings of column '%s', not its value", fn, x->name, c->tname,
                        def->name);
    if (def->collation[0] != '\0')
        return edb__err(EDB_INVAL, "%s: column '%s' is collated ('%s') in index '%s' of '%s': "
                        "its key segment is an ICU sort key, the value cannot be decoded from it",
                        fn, def->name, def->collation, x->name, c->tname);
    MDB_val k = { c->anchor.len, c->anchor.p }, d = { c->pk.len, c->pk.p };
    size_t len = edb__cursor_logical_len(c, &k, &d), off = 0, n = 0;
    int rc = 0;
    for (unsigned i = 0; i <= seg && rc >= 0; i++) {
        const edb__column *sd = &t->cols[x->seg[i].col - 1];
        edb_coltype type = sd->collation[0] != '\0' ? EDB_COL_BINARY : sd->type;
        rc = edb__key_decode(c->anchor.p, len, &off, type, edb__key_mode(x->seg[i].desc, x->flags),
                             i == seg ? buf : NULL, i == seg ? size : 0, i == seg ? &n : NULL);
    }
    if (rc < 0) {
        char why[160];
        snprintf(why, sizeof why, "%s", edb_error_last_message());
        return edb__err(EDB_CORRUPT, "%s: the entry of index '%s' of '%s' is malformed (%s)", fn,
                        x->name, c->tname, why);
    }
    if (actual != NULL)
        *actual = n;
    if (rc == 0 && n > size)
        rc = EDB_WRN_TRUNCATED;     /* the decoder says so only when it copies */
    return rc;
}

int
edb_column_get_from_index(edb_cursor *c, edb_colid col, void *buf, size_t size, size_t *actual)
{
    if (actual != NULL)
        *actual = 0;
    if (buf == NULL && size != 0)
        return edb__err(EDB_INVAL, "edb_column_get_from_index: buf is NULL with size %zu", size);
    MDB_txn *txn;
    EDB_RET(enter(c, &txn, "edb_column_get_from_index"));
    int rc = on_entry(c, txn, "edb_column_get_from_index");
    if (rc == 0)
        rc = from_index(c, col, buf, size, actual);
    rc = edb__txn_leave(c->s, rc);
    if (rc >= 0)
        edb__err_clear();
    return rc;
}

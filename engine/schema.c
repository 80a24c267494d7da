/*
 * schema.c: the public schema calls: validating definitions, creating and
 * dropping tables and indexes, adding columns, listing and describing.
 *
 * Every call runs in the session's transaction (or an implicit one), so a
 * schema change commits or rolls back with the caller's other work and other
 * processes see it in their next transaction.  Validation happens before
 * anything is written; an index built over existing rows that finds a
 * duplicate key in a UNIQUE index aborts its own nested transaction, leaving
 * nothing behind.
 *
 * Thread safety: as the session.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "collate.h"
#include "cursor.h"
#include "error.h"
#include "key.h"
#include "record.h"
#include "session.h"

/* ------------------------------------------------------------------ validation */

static int
check_column(const edb_column_def *d, const char *table, bool adding)
{
    const char *n = d->name ? d->name : "(null)";
    char ctx[EDB__NAME_MAX + 16];
    snprintf(ctx, sizeof ctx, "table '%s': ", table);
    EDB_RET(edb__name_check(d->name, "column", ctx));
    int size = edb__type_size(d->type);
    if (size < 0)
        return edb__err(EDB_INVAL, "table '%s': column '%s': unknown type %d", table, n, (int)d->type);
    unsigned known = EDB_COL_NOTNULL | EDB_COL_AUTOINC | EDB_COL_ESCROW | EDB_COL_MULTIVALUED;
    if (d->flags & ~known)
        return edb__err(EDB_INVAL, "table '%s': column '%s': unknown flags 0x%x", table, n, d->flags);
    bool has_default = d->default_value != NULL;
    if (d->default_value == NULL && d->default_size != 0)
        return edb__err(EDB_INVAL, "table '%s': column '%s': default_size without a default", table, n);
    if (d->flags & EDB_COL_AUTOINC) {
        if (d->type != EDB_COL_INT32 && d->type != EDB_COL_INT64 && d->type != EDB_COL_UINT32 &&
            d->type != EDB_COL_UINT64)
            return edb__err(EDB_INVAL, "table '%s': column '%s': AUTOINC needs int32, int64, uint32 "
                            "or uint64, not %s", table, n, edb_coltype_name(d->type));
        if (d->flags & (EDB_COL_ESCROW | EDB_COL_MULTIVALUED))
            return edb__err(EDB_INVAL, "table '%s': column '%s': AUTOINC cannot be ESCROW or "
                            "MULTIVALUED", table, n);
        if (has_default)
            return edb__err(EDB_INVAL, "table '%s': column '%s': AUTOINC takes no default", table, n);
        if (adding)
            return edb__err(EDB_INVAL, "table '%s': column '%s': AUTOINC cannot be added to a table",
                            table, n);
    }
    if (d->flags & EDB_COL_ESCROW) {
        if (d->type != EDB_COL_INT32 && d->type != EDB_COL_INT64)
            return edb__err(EDB_INVAL, "table '%s': column '%s': ESCROW needs int32 or int64, not %s",
                            table, n, edb_coltype_name(d->type));
        if (d->flags & EDB_COL_MULTIVALUED)
            return edb__err(EDB_INVAL, "table '%s': column '%s': ESCROW cannot be MULTIVALUED", table, n);
        if (!has_default)
            return edb__err(EDB_INVAL, "table '%s': column '%s': ESCROW needs a default", table, n);
    }
    if (!edb__coll_is_binary(d->collation)) {
        if (d->type != EDB_COL_TEXT)
            return edb__err(EDB_INVAL, "table '%s': column '%s': a collation applies to text only, "
                            "not %s", table, n, edb_coltype_name(d->type));
        EDB_RET(edb__coll_check(d->collation, table, n));
    }
    if (d->max_size != 0 && size != 0)
        return edb__err(EDB_INVAL, "table '%s': column '%s': max_size only applies to text and binary",
                        table, n);
    if (adding && (d->flags & EDB_COL_NOTNULL) && !has_default)
        return edb__err(EDB_INVAL, "table '%s': column '%s': an added NOT NULL column needs a default",
                        table, n);
    if (has_default) {
        char what[160];
        snprintf(what, sizeof what, "table '%s': default of column '%s'", table, n);
        edb__column c = { .type = d->type, .flags = d->flags, .max_size = d->max_size };
        int rc = edb__value_check(&c, d->default_value, d->default_size, what);
        if (rc < 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", edb_error_last_message());
            return edb__err(EDB_INVAL, "%s", msg);
        }
    }
    return 0;
}

static void
column_from_def(edb__column *c, const edb_column_def *d)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", d->name);
    c->type = d->type;
    c->flags = d->flags;
    c->max_size = d->max_size;
    c->has_default = d->default_value != NULL;
    c->default_size = c->has_default ? (uint32_t)d->default_size : 0;
    c->default_value = d->default_value;   /* borrowed until the table is stored */
    if (!edb__coll_is_binary(d->collation))
        snprintf(c->collation, sizeof c->collation, "%s", d->collation);
}

/* Resolve the collators of @t's columns in @env's cache and record, in every
 * index, the version of the collator of each collated segment (a new or
 * rebuilt index's entries are made with it).  @only: that index alone, or -1. */
static int
resolve_collation(edb_env *env, edb__table *t, int only)
{
    for (uint32_t i = 0; i < t->ncols; i++)
        if (t->cols[i].collation[0] != '\0' && t->cols[i].coll == NULL)
            EDB_RET(edb__coll_get(&t->cols[i].coll, env, t->cols[i].collation));
    for (uint32_t i = 0; i < t->nidx; i++) {
        edb__index *x = &t->idx[i];
        if (only >= 0 && (uint32_t)only != i)
            continue;
        for (unsigned j = 0; j < x->nseg; j++) {
            const edb__column *c = &t->cols[x->seg[j].col - 1];
            if (c->coll != NULL)
                edb__coll_version(c->coll, x->collver[j]);
        }
    }
    return 0;
}

/* Parse and check an index definition against table @t. */
static int
index_from_def(edb__index *x, const edb_index_def *d, const edb__table *t)
{
    const char *n = d->name ? d->name : "(null)";
    memset(x, 0, sizeof *x);
    char ctx[EDB__NAME_MAX + 16];
    snprintf(ctx, sizeof ctx, "table '%s': ", t->name);
    EDB_RET(edb__name_check(d->name, "index", ctx));
    if (d->flags & ~(EDB_IDX_PRIMARY | EDB_IDX_UNIQUE | EDB_IDX_IGNORE_NULL |
                     EDB_IDX_SORT_NULLS_HIGH | EDB_IDX_IGNORE_ANY_NULL | EDB_IDX_TUPLES))
        return edb__err(EDB_INVAL, "table '%s': index '%s': unknown flags 0x%x", t->name, n, d->flags);
    if ((d->flags & EDB_IDX_PRIMARY) && (d->flags & (EDB_IDX_IGNORE_NULL | EDB_IDX_IGNORE_ANY_NULL)))
        return edb__err(EDB_INVAL, "table '%s': index '%s': a primary index cannot ignore NULLs",
                        t->name, n);
    if (d->key == NULL || d->key[0] == '\0')
        return edb__err(EDB_INVAL, "table '%s': index '%s': empty key", t->name, n);
    snprintf(x->name, sizeof x->name, "%s", d->name);
    x->flags = d->flags;
    if (x->flags & EDB_IDX_PRIMARY)
        x->flags |= EDB_IDX_UNIQUE;
    const char *p = d->key;
    while (*p != '\0') {
        if (x->nseg == EDB_MAX_KEY_SEGMENTS)
            return edb__err(EDB_INVAL, "table '%s': index '%s': more than %d key segments", t->name,
                            n, EDB_MAX_KEY_SEGMENTS);
        if (*p != '+' && *p != '-')
            return edb__err(EDB_INVAL, "table '%s': index '%s': key segment '%s' must start with "
                            "'+' or '-'", t->name, n, p);
        bool desc = *p == '-';
        const char *col = p + 1;
        edb_colid id = edb__table_colid(t, col);
        if (id == 0)
            return edb__err(EDB_INVAL, "table '%s': index '%s': unknown key column '%s'", t->name, n, col);
        if (t->cols[id - 1].flags & EDB_COL_MULTIVALUED) {
            /* one entry per value (ESE's default for multi-valued keys) */
            if (x->flags & EDB_IDX_PRIMARY)
                return edb__err(EDB_INVAL, "table '%s': index '%s': multi-valued column '%s' cannot "
                                "be in a primary key", t->name, n, col);
            for (unsigned i = 0; i < x->nseg; i++)
                if (t->cols[x->seg[i].col - 1].flags & EDB_COL_MULTIVALUED)
                    return edb__err(EDB_INVAL, "table '%s': index '%s': a second multi-valued "
                                    "column '%s' in the key (one at most)", t->name, n, col);
            if (x->flags & EDB_IDX_TUPLES)
                return edb__err(EDB_INVAL, "table '%s': index '%s': a tuple index cannot be on "
                                "multi-valued column '%s'", t->name, n, col);
        }
        for (unsigned i = 0; i < x->nseg; i++)
            if (x->seg[i].col == id)
                return edb__err(EDB_INVAL, "table '%s': index '%s': column '%s' twice in the key",
                                t->name, n, col);
        x->seg[x->nseg].col = id;
        x->seg[x->nseg].desc = desc;
        x->nseg++;
        p = col + strlen(col) + 1;
    }
    if (d->condition != NULL) {
        const char *cn = d->condition[0] == '!' ? d->condition + 1 : d->condition;
        if (x->flags & EDB_IDX_PRIMARY)
            return edb__err(EDB_INVAL, "table '%s': index '%s': a primary index cannot have a "
                            "condition", t->name, n);
        edb_colid id = edb__table_colid(t, cn);
        if (id == 0)
            return edb__err(EDB_INVAL, "table '%s': index '%s': unknown condition column '%s' "
                            "(expected \"col\" or \"!col\")", t->name, n, cn);
        x->cond_col = id;
        x->cond_null = d->condition[0] == '!';
    }
    if (x->flags & EDB_IDX_TUPLES) {
        if (x->flags & (EDB_IDX_PRIMARY | EDB_IDX_UNIQUE))
            return edb__err(EDB_INVAL, "table '%s': index '%s': a tuple index cannot be primary "
                            "or unique", t->name, n);
        if (x->nseg != 1 || t->cols[x->seg[0].col - 1].type != EDB_COL_TEXT)
            return edb__err(EDB_INVAL, "table '%s': index '%s': a tuple index has one text "
                            "column in its key", t->name, n);
        if (t->cols[x->seg[0].col - 1].collation[0] != '\0')
            return edb__err(EDB_INVAL, "table '%s': index '%s': a tuple index compares bytes; "
                            "column '%s' has collation '%s'", t->name, n,
                            t->cols[x->seg[0].col - 1].name, t->cols[x->seg[0].col - 1].collation);
        if (t->cols[x->seg[0].col - 1].flags & EDB_COL_MULTIVALUED)
            return edb__err(EDB_INVAL, "table '%s': index '%s': a tuple index cannot be on a "
                            "multi-valued column", t->name, n);
        x->tuple_min = d->tuple_min ? d->tuple_min : 3;
        x->tuple_max = d->tuple_max ? d->tuple_max : 10;
        if (x->tuple_min > x->tuple_max || x->tuple_max > EDB_TUPLE_MAX)
            return edb__err(EDB_INVAL, "table '%s': index '%s': tuple lengths %u..%u (need "
                            "1 <= tuple_min <= tuple_max <= %d)", t->name, n, x->tuple_min,
                            x->tuple_max, EDB_TUPLE_MAX);
    } else if (d->tuple_min != 0 || d->tuple_max != 0) {
        return edb__err(EDB_INVAL, "table '%s': index '%s': tuple_min and tuple_max need "
                        "EDB_IDX_TUPLES", t->name, n);
    }
    return 0;
}

/* ------------------------------------------------------------------ helpers */

static int
begin_schema(edb_session *s, const char *fn, MDB_txn **txn)
{
    EDB_RET(edb__session_check(s, fn));
    if (s->env->flags & EDB_ENV_READONLY)
        return edb__err(EDB_READONLY, "%s: '%s' is open read-only", fn, s->env->path);
    return edb__txn_enter(s, true, txn);
}

static int
end_schema(edb_session *s, int rc)
{
    if (rc >= 0)
        s->schema_seq++;
    rc = edb__txn_leave(s, rc);
    if (rc == 0)
        edb__err_clear();
    return rc;
}

/* The entries of an index build held for sorting: n times (u32 klen, u32
 * vlen, key, value), one after the other. */
typedef struct build_sort {
    edb__buf arena;
    size_t n;
} build_sort;

/* How many bytes of entries an index build sorts in memory at most; past
 * that it writes them and puts the rest in record order. */
#define EDB__BUILD_SORT_MAX ((size_t)256 << 20)

static int
entry_cmp(const void *a, const void *b)
{
    const uint8_t *x = *(const uint8_t *const *)a, *y = *(const uint8_t *const *)b;
    uint32_t xl, yl;
    memcpy(&xl, x, 4);
    memcpy(&yl, y, 4);
    int c = memcmp(x + 8, y + 8, xl < yl ? xl : yl);   /* LMDB's default key order */
    return c != 0 ? c : (xl > yl) - (xl < yl);
}

/* Is @ks's range past every key of its database (so that its entries can be
 * appended in key order: full pages)? */
static int
range_is_last(MDB_txn *txn, const edb__ks *ks, bool *out)
{
    MDB_cursor *c;
    EDB_RET(edb__mdb_err(mdb_cursor_open(txn, ks->dbi, &c), "cursor"));
    MDB_val k, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    mdb_cursor_close(c);
    if (edb__mdb_is_notfound(rc)) {
        *out = true;
        return 0;
    }
    EDB_RET(edb__mdb_err(rc, "last index key"));
    size_t n = k.mv_size < ks->plen ? k.mv_size : ks->plen;
    int c0 = memcmp(k.mv_data, ks->pfx, n);
    *out = c0 < 0 || (c0 == 0 && n < ks->plen);
    return 0;
}

static int
dup_err(const edb__table *t, const edb__index *x)
{
    return edb__err(EDB_KEYDUP, "table '%s': two rows share a key of unique index '%s'", t->name,
                    x->name);
}

/* Write one entry of index @x (@append: with MDB_APPEND, in key order). */
static int
build_put(MDB_txn *txn, const edb__table *t, const edb__index *x, const uint8_t *k, size_t klen,
          const uint8_t *v, size_t vlen, bool append)
{
    MDB_val ik = { klen, (void *)k }, iv = { vlen, (void *)v };
    unsigned flags = append ? MDB_APPEND : (x->flags & EDB_IDX_UNIQUE) ? MDB_NOOVERWRITE : 0;
    int rc = edb__ks_put(txn, &x->ks, &ik, &iv, flags);
    if (edb__mdb_is_keyexist(rc))
        return append ? edb__err(EDB_INTERNAL, "index '%s': a sorted build's entries out of order",
                                 x->name)
                      : dup_err(t, x);
    return edb__mdb_err(rc, "write index entry");
}

/* Write the held entries in key order with MDB_APPEND, after checking a
 * unique index's neighbours, and empty @b. */
static int
build_flush(MDB_txn *txn, const edb__table *t, const edb__index *x, build_sort *b)
{
    if (b->n == 0)
        return 0;
    const uint8_t **at = malloc(b->n * sizeof *at);
    if (at == NULL)
        return edb__err(EDB_NOMEM, "index '%s': %zu entries to sort", x->name, b->n);
    size_t off = 0;
    for (size_t i = 0; i < b->n; i++) {
        uint32_t kl, vl;
        at[i] = b->arena.p + off;
        memcpy(&kl, at[i], 4);
        memcpy(&vl, at[i] + 4, 4);
        off += 8 + (size_t)kl + vl;
    }
    qsort(at, b->n, sizeof *at, entry_cmp);
    int ret = 0;
    for (size_t i = 0; i < b->n && ret == 0; i++) {
        uint32_t kl, vl;
        memcpy(&kl, at[i], 4);
        memcpy(&vl, at[i] + 4, 4);
        if (i > 0 && entry_cmp(&at[i - 1], &at[i]) == 0)
            ret = (x->flags & EDB_IDX_UNIQUE) ? dup_err(t, x)
                                              : edb__err(EDB_INTERNAL, "index '%s': an entry twice",
                                                         x->name);
        else
            ret = build_put(txn, t, x, at[i] + 8, kl, at[i] + 8 + kl, vl, true);
    }
    free(at);
    b->n = 0;
    b->arena.len = 0;
    return ret;
}

/* Add one entry: held for the sorted build while @b is not NULL and has
 * room, else written now. */
static int
build_add(MDB_txn *txn, const edb__table *t, const edb__index *x, build_sort **b,
          const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    if (*b != NULL && (*b)->arena.len + 8 + klen + vlen > EDB__BUILD_SORT_MAX) {
        EDB_RET(build_flush(txn, t, x, *b));
        *b = NULL;          /* the rest in record order */
    }
    if (*b == NULL)
        return build_put(txn, t, x, k, klen, v, vlen, false);
    edb__buf *a = &(*b)->arena;
    EDB_RET(edb__buf_reserve(a, a->len + 8 + klen + vlen));
    uint32_t kl = (uint32_t)klen, vl = (uint32_t)vlen;
    memcpy(a->p + a->len, &kl, 4);
    memcpy(a->p + a->len + 4, &vl, 4);
    memcpy(a->p + a->len + 8, k, klen);
    memcpy(a->p + a->len + 8 + klen, v, vlen);
    a->len += 8 + klen + vlen;
    (*b)->n++;
    return 0;
}

/* Fill index @x's database from every record of @t.  This is the one write
 * that keeps a nested LMDB txn: a duplicate in a new UNIQUE index is found
 * only while its entries are written, and the child's O(open DBs) cost is
 * nothing next to a scan of the table; an abort leaves the transaction as it
 * was (no index created).
 *
 * When the index's key range is the last of edb.index (always for a new
 * index: ids grow and are never reused) the entries are held in memory (up
 * to EDB__BUILD_SORT_MAX bytes), sorted, checked for unique neighbours and
 * appended in key order (MDB_APPEND): full leaf pages instead of the
 * two-thirds that inserts in record order leave, and no descent per entry.
 * Otherwise, or for what does not fit, the entries are put in record order. */
static int
build_index(edb_session *s, MDB_txn *txn, const edb__table *t, const edb__index *x)
{
    MDB_txn *child;
    MDB_cursor *cur = NULL;
    edb__rec rec = { 0 };
    edb__buf k = { 0 };
    edb__entries ents = { 0 };
    build_sort sorted = { 0 }, *b = NULL;
    int ret = 0;
    EDB_RET(edb__txn_child_begin(s, txn, &child));
    bool last;
    EDB_ERR(range_is_last(child, &x->ks, &last));
    if (last)
        b = &sorted;
    EDB_ERR(edb__mdb_err(mdb_cursor_open(child, t->rec.dbi, &cur), "cursor"));
    MDB_val rk, rv;
    uint64_t n = 0;
    int rc = edb__ks_cursor_get(cur, &t->rec, &rk, &rv, MDB_FIRST);
    bool multi = edb__index_multi(t, x);
    /* format 5: a non-unique entry's key ends with the primary key, its value is empty */
    bool bare = edb__fmt5(edb__cat(s->env)) && !(x->flags & EDB_IDX_UNIQUE);
    while (rc == 0) {
        EDB_ERR(edb__rec_decode(&rec, t, rv.mv_data, rv.mv_size));
        if (multi) {
            EDB_ERR(edb__index_entries(t, x, &rec, rk.mv_data, rk.mv_size, &ents));
            for (uint32_t j = 0; j < ents.n; j++) {
                EDB_ERR(build_add(child, t, x, &b, ents.v[j].p, ents.v[j].len, rk.mv_data,
                                  bare ? 0 : rk.mv_size));
                n++;
            }
        } else {
            int e;
            EDB_ERR(e = edb__index_entry(t, x, &rec, rk.mv_data, rk.mv_size, &k));
            if (e == 0) {
                EDB_ERR(build_add(child, t, x, &b, k.p, k.len, rk.mv_data, bare ? 0 : rk.mv_size));
                n++;
            }
        }
        rc = edb__ks_cursor_get(cur, &t->rec, &rk, &rv, MDB_NEXT);
    }
    if (!edb__mdb_is_notfound(rc))
        EDB_ERR(edb__mdb_err(rc, "scan records"));
    if (b != NULL)
        EDB_ERR(build_flush(child, t, x, b));
    EDB_ERR(edb__rows_write(s->env, child, x->kid, (int64_t)n));
    ret = 0;
err:
    if (cur != NULL)
        mdb_cursor_close(cur);
    edb__rec_free(&rec);
    edb__buf_free(&k);
    edb__buf_free(&sorted.arena);
    edb__entries_free(&ents);
    return edb__txn_child_end(s, child, ret);
}

/* ------------------------------------------------------------------ tables */

int
edb_table_create(edb_session *s, const edb_table_def *def)
{
    EDB_RET(edb__session_check(s, "edb_table_create"));
    if (def == NULL)
        return edb__err(EDB_INVAL, "edb_table_create: def is NULL");
    EDB_RET(edb__name_check(def->name, "table", "edb_table_create: "));
    if (def->ncolumns == 0 || def->columns == NULL)
        return edb__err(EDB_INVAL, "table '%s': no columns", def->name);
    if (def->ncolumns > EDB_MAX_COLUMNS)
        return edb__err(EDB_LIMIT, "table '%s': %zu columns (at most %d)", def->name, def->ncolumns,
                        EDB_MAX_COLUMNS);
    if (def->nindexes > 0 && def->indexes == NULL)
        return edb__err(EDB_INVAL, "table '%s': indexes is NULL", def->name);
    if (def->nindexes > EDB_MAX_INDEXES)
        return edb__err(EDB_LIMIT, "table '%s': %zu indexes (at most %d)", def->name, def->nindexes,
                        EDB_MAX_INDEXES);
    edb__table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return edb__err(EDB_NOMEM, "edb_table_create");
    int ret = 0;
    snprintf(t->name, sizeof t->name, "%s", def->name);
    t->primary = -1;
    t->cols = calloc(def->ncolumns, sizeof *t->cols);
    t->idx = calloc(def->nindexes ? def->nindexes : 1, sizeof *t->idx);
    if (t->cols == NULL || t->idx == NULL)
        EDB_ERR(edb__err(EDB_NOMEM, "edb_table_create"));
    for (size_t i = 0; i < def->ncolumns; i++) {
        EDB_ERR(check_column(&def->columns[i], def->name, false));
        if (edb__table_colid(t, def->columns[i].name) != 0)
            EDB_ERR(edb__err(EDB_INVAL, "table '%s': column '%s' twice", def->name, def->columns[i].name));
        column_from_def(&t->cols[i], &def->columns[i]);
        t->ncols++;
    }
    for (size_t i = 0; i < def->nindexes; i++) {
        edb__index *x = &t->idx[i];
        EDB_ERR(index_from_def(x, &def->indexes[i], t));
        if (edb__table_index(t, x->name) >= 0)
            EDB_ERR(edb__err(EDB_INVAL, "table '%s': index '%s' twice", def->name, x->name));
        if (x->flags & EDB_IDX_PRIMARY) {
            if (t->primary >= 0)
                EDB_ERR(edb__err(EDB_INVAL, "table '%s': two primary indexes ('%s', '%s')", def->name,
                                 t->idx[t->primary].name, x->name));
            t->primary = (int)i;
        }
        t->nidx++;
    }
    MDB_txn *txn;
    EDB_ERR(begin_schema(s, "edb_table_create", &txn));
    edb__table *old;
    ret = edb__table_load(&old, s->env, txn, def->name);
    if (ret == 0) {
        edb__table_free(old);
        ret = edb__err(EDB_EXISTS, "table '%s' already exists", def->name);
    } else if (ret == EDB_NOTFOUND) {
        ret = edb__catalog_new_kid(&t->kid, s->env, txn);
        for (uint32_t i = 0; ret == 0 && i < t->nidx; i++)
            if (!(t->idx[i].flags & EDB_IDX_PRIMARY))
                ret = edb__catalog_new_kid(&t->idx[i].kid, s->env, txn);
    }
    if (ret == 0) {
        /* identities, not names or slots, tell this table and its indexes
         * from dropped ones of the same name (cursor.c) */
        t->created = edb__catalog_new_id();
        for (uint32_t i = 0; i < t->nidx; i++)
            t->idx[i].id = edb__catalog_new_id();
        for (uint32_t i = 0; i < t->ncols; i++)
            t->cols[i].id = edb__catalog_new_id();
        edb__counter_adopt(s->env, t->kid, t->created);
        /* new ids: their ranges are empty (ids are never reused) */
    }
    if (ret == 0)
        ret = resolve_collation(s->env, t, -1);
    if (ret == 0)
        ret = edb__table_store(s->env, txn, t);
    ret = end_schema(s, ret);
err:
    edb__table_free(t);
    return ret;
}

int
edb_table_drop(edb_session *s, const char *table)
{
    EDB_RET(edb__session_check(s, "edb_table_drop"));
    if (table == NULL)
        return edb__err(EDB_INVAL, "edb_table_drop: table is NULL");
    MDB_txn *txn;
    EDB_RET(begin_schema(s, "edb_table_drop", &txn));
    edb__table *t;
    int rc = edb__table_load(&t, s->env, txn, table);
    if (rc == 0) {
        rc = edb__table_erase(s->env, txn, t);
        /* the range is gone: row-count notes of this txn for it are void */
        if (rc == 0)
            rc = edb__rows_erased(s, t->kid);
        for (uint32_t i = 0; rc == 0 && i < t->nidx; i++)
            if (!(t->idx[i].flags & EDB_IDX_PRIMARY))
                rc = edb__rows_erased(s, t->idx[i].kid);
        edb__table_free(t);
    }
    return end_schema(s, rc);
}

int
edb_column_add(edb_session *s, const char *table, const edb_column_def *col)
{
    EDB_RET(edb__session_check(s, "edb_column_add"));
    if (table == NULL || col == NULL)
        return edb__err(EDB_INVAL, "edb_column_add: %s is NULL", table == NULL ? "table" : "col");
    EDB_RET(check_column(col, table, true));
    MDB_txn *txn;
    EDB_RET(begin_schema(s, "edb_column_add", &txn));
    edb__table *t = NULL;
    int ret = 0;
    EDB_ERR(edb__table_load(&t, s->env, txn, table));
    if (edb__table_colid(t, col->name) != 0)
        EDB_ERR(edb__err(EDB_EXISTS, "table '%s' already has a column '%s'", table, col->name));
    if (t->ncols >= EDB_MAX_COLUMNS)
        EDB_ERR(edb__err(EDB_LIMIT, "table '%s' has %d columns", table, EDB_MAX_COLUMNS));
    edb__column *cols = realloc(t->cols, (t->ncols + 1) * sizeof *cols);
    if (cols == NULL)
        EDB_ERR(edb__err(EDB_NOMEM, "edb_column_add"));
    t->cols = cols;
    column_from_def(&t->cols[t->ncols], col);
    t->cols[t->ncols].id = edb__catalog_new_id();
    t->ncols++;
    ret = edb__table_store(s->env, txn, t);
err:
    edb__table_free(t);
    return end_schema(s, ret);
}

int
edb_index_create(edb_session *s, const char *table, const edb_index_def *idx)
{
    EDB_RET(edb__session_check(s, "edb_index_create"));
    if (table == NULL || idx == NULL)
        return edb__err(EDB_INVAL, "edb_index_create: %s is NULL", table == NULL ? "table" : "idx");
    if (idx->flags & EDB_IDX_PRIMARY)
        return edb__err(EDB_INVAL, "table '%s': index '%s': a primary index is made with the table",
                        table, idx->name ? idx->name : "(null)");
    MDB_txn *txn;
    EDB_RET(begin_schema(s, "edb_index_create", &txn));
    edb__table *t = NULL;
    int ret = 0;
    EDB_ERR(edb__table_load(&t, s->env, txn, table));
    edb__index x;
    EDB_ERR(index_from_def(&x, idx, t));
    if (edb__table_index(t, x.name) >= 0)
        EDB_ERR(edb__err(EDB_EXISTS, "table '%s' already has an index '%s'", table, x.name));
    if (t->nidx >= EDB_MAX_INDEXES)
        EDB_ERR(edb__err(EDB_LIMIT, "table '%s' has %d indexes", table, EDB_MAX_INDEXES));
    EDB_ERR(edb__catalog_new_kid(&x.kid, s->env, txn));
    edb__ks_set(&x.ks, edb__cat(s->env)->idx, x.kid, edb__fmt5(edb__cat(s->env)));
    x.id = edb__catalog_new_id();
    edb__index *xs = realloc(t->idx, (t->nidx + 1) * sizeof *xs);
    if (xs == NULL)
        EDB_ERR(edb__err(EDB_NOMEM, "edb_index_create"));
    t->idx = xs;
    t->idx[t->nidx++] = x;
    /* the new index is in t now, so that its collator versions are recorded */
    EDB_ERR(resolve_collation(s->env, t, (int)t->nidx - 1));
    EDB_ERR(build_index(s, txn, t, &t->idx[t->nidx - 1]));
    ret = edb__table_store(s->env, txn, t);
err:
    edb__table_free(t);
    return end_schema(s, ret);
}

/* Load table @table and find its secondary index @index (*i): what
 * edb_index_drop and edb_index_rebuild start with.  *t is set (free it) even
 * when the index is missing or primary. */
static int
load_secondary(edb_session *s, MDB_txn *txn, const char *table, const char *index, edb__table **t, int *i)
{
    EDB_RET(edb__table_load(t, s->env, txn, table));
    *i = edb__table_index(*t, index);
    if (*i < 0)
        return edb__err(EDB_NOTFOUND, "table '%s' has no index '%s'", table, index);
    if ((*t)->idx[*i].flags & EDB_IDX_PRIMARY)
        return edb__err(EDB_INVAL, "table '%s': '%s' is the primary index (its keys are the "
                        "records' own)", table, index);
    return 0;
}

int
edb_index_drop(edb_session *s, const char *table, const char *index)
{
    EDB_RET(edb__session_check(s, "edb_index_drop"));
    if (table == NULL || index == NULL)
        return edb__err(EDB_INVAL, "edb_index_drop: %s is NULL", table == NULL ? "table" : "index");
    MDB_txn *txn;
    EDB_RET(begin_schema(s, "edb_index_drop", &txn));
    edb__table *t = NULL;
    int i = 0, ret = 0;
    EDB_ERR(load_secondary(s, txn, table, index, &t, &i));
    EDB_ERR(edb__index_erase(s->env, txn, &t->idx[i]));
    EDB_ERR(edb__rows_erased(s, t->idx[i].kid));
    memmove(&t->idx[i], &t->idx[i + 1], (t->nidx - (uint32_t)i - 1) * sizeof *t->idx);
    t->nidx--;
    if (t->primary > i)
        t->primary--;
    ret = edb__table_store(s->env, txn, t);
err:
    edb__table_free(t);
    return end_schema(s, ret);
}

/* ------------------------------------------------------------------ renames, drops, defaults */

/* Load table @table for a schema change @fn in the session's write
 * transaction; *col (when @column is not NULL) is the position of its live
 * column @column. */
static int
load_for_change(edb_session *s, const char *fn, MDB_txn *txn, const char *table, const char *column,
                edb__table **t, uint32_t *col)
{
    EDB_RET(edb__table_load(t, s->env, txn, table));
    if (column == NULL)
        return 0;
    *col = edb__table_colid(*t, column);
    if (*col == 0)
        return edb__err(EDB_NOTFOUND, "%s: table '%s' has no column '%s'", fn, table, column);
    return 0;
}

int
edb_table_rename(edb_session *s, const char *table, const char *new_name)
{
    EDB_RET(edb__session_check(s, "edb_table_rename"));
    if (table == NULL || new_name == NULL)
        return edb__err(EDB_INVAL, "edb_table_rename: %s is NULL", table == NULL ? "table" : "new_name");
    EDB_RET(edb__name_check(new_name, "table", "edb_table_rename: "));
    MDB_txn *txn;
    EDB_RET(begin_schema(s, "edb_table_rename", &txn));
    edb__table *t = NULL, *other = NULL;
    int ret = 0;
    EDB_ERR(load_for_change(s, "edb_table_rename", txn, table, NULL, &t, NULL));
    ret = edb__table_load(&other, s->env, txn, new_name);
    if (ret == 0)
        EDB_ERR(edb__err(EDB_EXISTS, "edb_table_rename: table '%s' already exists", new_name));
    if (ret != EDB_NOTFOUND)
        goto err;
    /* the identity, the compact id and so the records, indexes, counters
     * and row counts stay: only the catalog key changes */
    EDB_ERR(edb__table_unlink(s->env, txn, t->name));
    snprintf(t->name, sizeof t->name, "%s", new_name);
    ret = edb__table_store(s->env, txn, t);
err:
    edb__table_free(other);
    edb__table_free(t);
    return end_schema(s, ret);
}

int
edb_column_rename(edb_session *s, const char *table, const char *column, const char *new_name)
{
    EDB_RET(edb__session_check(s, "edb_column_rename"));
    if (table == NULL || column == NULL || new_name == NULL)
        return edb__err(EDB_INVAL, "edb_column_rename: %s is NULL",
                        table == NULL ? "table" : column == NULL ? "column" : "new_name");
    char ctx[EDB__NAME_MAX + 16];
    snprintf(ctx, sizeof ctx, "table '%s': ", table);
    EDB_RET(edb__name_check(new_name, "column", ctx));
    MDB_txn *txn;
    EDB_RET(begin_schema(s, "edb_column_rename", &txn));
    edb__table *t = NULL;
    uint32_t col = 0;
    int ret = 0;
    EDB_ERR(load_for_change(s, "edb_column_rename", txn, table, column, &t, &col));
    if (edb__table_colid(t, new_name) != 0)
        EDB_ERR(edb__err(EDB_EXISTS, "edb_column_rename: table '%s' already has a column '%s'",
                         table, new_name));
    /* position and identity stay, so does every colid handed out for it;
     * index keys name columns by position and follow */
    snprintf(t->cols[col - 1].name, sizeof t->cols[col - 1].name, "%s", new_name);
    ret = edb__table_store(s->env, txn, t);
err:
    edb__table_free(t);
    return end_schema(s, ret);
}

int
edb_column_drop(edb_session *s, const char *table, const char *column)
{
    EDB_RET(edb__session_check(s, "edb_column_drop"));
    if (table == NULL || column == NULL)
        return edb__err(EDB_INVAL, "edb_column_drop: %s is NULL", table == NULL ? "table" : "column");
    MDB_txn *txn;
    EDB_RET(begin_schema(s, "edb_column_drop", &txn));
    edb__table *t = NULL;
    uint32_t col = 0;
    int ret = 0;
    EDB_ERR(load_for_change(s, "edb_column_drop", txn, table, column, &t, &col));
    for (uint32_t i = 0; i < t->nidx; i++) {
        bool uses = t->idx[i].cond_col == col;      /* its condition counts too */
        for (unsigned j = 0; j < t->idx[i].nseg; j++)
            uses |= t->idx[i].seg[j].col == col;
        if (uses)
            EDB_ERR(edb__err(EDB_COLUMN_IN_INDEX, "edb_column_drop: table '%s': column '%s' "
                             "is in index '%s' (drop the index first)", table, column,
                             t->idx[i].name));
    }
    uint32_t live = 0;
    for (uint32_t i = 0; i < t->ncols; i++)
        live += !(t->cols[i].flags & EDB__COL_DROPPED);
    if (live == 1)
        EDB_ERR(edb__err(EDB_INVAL, "edb_column_drop: table '%s': '%s' is its last column", table,
                         column));
    /* The position stays taken (the other columns' colids stay valid) by a
     * nameless column that is nothing else: no flags, no default, in no
     * index.  Records are not rewritten here: their values of it are never
     * read again and disappear when each record is next written (record.c). */
    edb__column *c = &t->cols[col - 1];
    c->flags = EDB__COL_DROPPED;
    c->collation[0] = '\0';
    c->coll = NULL;
    c->has_default = false;
    c->default_size = 0;
    c->default_value = NULL;
    ret = edb__table_store(s->env, txn, t);
err:
    edb__table_free(t);
    return end_schema(s, ret);
}

int
edb_column_set_default(edb_session *s, const char *table, const char *column, const void *value,
                       size_t size)
{
    EDB_RET(edb__session_check(s, "edb_column_set_default"));
    if (table == NULL || column == NULL)
        return edb__err(EDB_INVAL, "edb_column_set_default: %s is NULL",
                        table == NULL ? "table" : "column");
    if (value == NULL && size != 0)
        return edb__err(EDB_INVAL, "edb_column_set_default: size %zu without a value", size);
    MDB_txn *txn;
    EDB_RET(begin_schema(s, "edb_column_set_default", &txn));
    edb__table *t = NULL;
    uint32_t col = 0;
    int ret = 0;
    EDB_ERR(load_for_change(s, "edb_column_set_default", txn, table, column, &t, &col));
    edb__column *c = &t->cols[col - 1];
    if ((c->flags & EDB_COL_AUTOINC) && value != NULL)
        EDB_ERR(edb__err(EDB_INVAL, "table '%s': column '%s': AUTOINC takes no default", table, column));
    if (value == NULL && (c->flags & EDB_COL_ESCROW))
        EDB_ERR(edb__err(EDB_INVAL, "table '%s': column '%s': ESCROW needs a default", table, column));
    if (value == NULL && (c->flags & EDB_COL_NOTNULL))
        EDB_ERR(edb__err(EDB_INVAL, "table '%s': column '%s': a NOT NULL column keeps its default "
                         "(records older than the column read it)", table, column));
    if (value != NULL) {
        char what[160];
        snprintf(what, sizeof what, "table '%s': default of column '%s'", table, column);
        int rc = edb__value_check(c, value, size, what);
        if (rc < 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", edb_error_last_message());
            EDB_ERR(edb__err(rc == EDB_TOOBIG ? EDB_TOOBIG : EDB_INVAL, "%s", msg));
        }
    }
    c->has_default = value != NULL;
    c->default_size = value != NULL ? (uint32_t)size : 0;
    c->default_value = value;      /* borrowed until stored: encode copies it */
    ret = edb__table_store(s->env, txn, t);
err:
    edb__table_free(t);
    return end_schema(s, ret);
}

int
edb_index_rebuild(edb_session *s, const char *table, const char *index)
{
    EDB_RET(edb__session_check(s, "edb_index_rebuild"));
    if (table == NULL || index == NULL)
        return edb__err(EDB_INVAL, "edb_index_rebuild: %s is NULL", table == NULL ? "table" : "index");
    MDB_txn *txn;
    EDB_RET(begin_schema(s, "edb_index_rebuild", &txn));
    edb__table *t = NULL;
    int i = 0, ret = 0;
    EDB_ERR(load_secondary(s, txn, table, index, &t, &i));
    /* the entries go to a new range (a new compact id; the identity stays,
     * so cursors on the index keep working), then the old range goes */
    edb__index old = t->idx[i];
    edb__index *x = &t->idx[i];
    EDB_ERR(edb__catalog_new_kid(&x->kid, s->env, txn));
    edb__ks_set(&x->ks, edb__cat(s->env)->idx, x->kid, edb__fmt5(edb__cat(s->env)));
    EDB_ERR(resolve_collation(s->env, t, i));
    EDB_ERR(build_index(s, txn, t, x));
    EDB_ERR(edb__index_erase(s->env, txn, &old));
    EDB_ERR(edb__rows_erased(s, old.kid));
    ret = edb__table_store(s->env, txn, t);
err:
    edb__table_free(t);
    return end_schema(s, ret);
}

/* ------------------------------------------------------------------ reading */

typedef struct list_ctx { char **names; size_t n, cap; size_t bytes; } list_ctx;

static int
collect(void *ctx, const edb__table *t)
{
    list_ctx *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **p = realloc(l->names, cap * sizeof *p);
        if (p == NULL)
            return edb__err(EDB_NOMEM, "edb_table_list");
        l->names = p;
        l->cap = cap;
    }
    if ((l->names[l->n] = strdup(t->name)) == NULL)
        return edb__err(EDB_NOMEM, "edb_table_list");
    l->bytes += strlen(t->name) + 1;
    l->n++;
    return 0;
}

int
edb_table_list(char ***out, size_t *count, edb_session *s)
{
    if (out == NULL)
        return edb__err(EDB_INVAL, "edb_table_list: out is NULL");
    *out = NULL;
    if (count != NULL)
        *count = 0;
    EDB_RET(edb__session_check(s, "edb_table_list"));
    MDB_txn *txn;
    EDB_RET(edb__txn_enter(s, false, &txn));
    list_ctx l = { 0 };
    int rc = edb__catalog_foreach(s->env, txn, collect, &l, NULL);
    rc = edb__txn_leave(s, rc);
    char **arr = NULL;
    if (rc == 0) {
        arr = malloc((l.n + 1) * sizeof *arr + l.bytes);
        if (arr == NULL)
            rc = edb__err(EDB_NOMEM, "edb_table_list");
    }
    if (rc == 0) {
        char *p = (char *)(arr + l.n + 1);
        for (size_t i = 0; i < l.n; i++) {
            size_t n = strlen(l.names[i]) + 1;
            memcpy(p, l.names[i], n);
            arr[i] = p;
            p += n;
        }
        arr[l.n] = NULL;
        *out = arr;
        if (count != NULL)
            *count = l.n;
        edb__err_clear();
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.names[i]);
    free(l.names);
    return rc;
}

void
edb_free(void *p)
{
    free(p);
}

static int
load_table(edb_session *s, const char *fn, const char *table, edb__table **t)
{
    EDB_RET(edb__session_check(s, fn));
    if (table == NULL)
        return edb__err(EDB_INVAL, "%s: table is NULL", fn);
    MDB_txn *txn;
    EDB_RET(edb__txn_enter(s, false, &txn));
    return edb__txn_leave(s, edb__table_load(t, s->env, txn, table));
}

/* Size of index @x's key string ("+a\0-b\0\0"). */
static size_t
key_string(const edb__table *t, const edb__index *x, char *out)
{
    size_t n = 0;
    for (unsigned i = 0; i < x->nseg; i++) {
        const char *name = t->cols[x->seg[i].col - 1].name;
        size_t l = strlen(name);
        if (out != NULL) {
            out[n] = x->seg[i].desc ? '-' : '+';
            memcpy(out + n + 1, name, l + 1);
        }
        n += l + 2;
    }
    if (out != NULL)
        out[n] = '\0';
    return n + 1;
}

int
edb_table_describe(edb_table_def **out, edb_session *s, const char *table)
{
    if (out == NULL)
        return edb__err(EDB_INVAL, "edb_table_describe: out is NULL");
    *out = NULL;
    edb__table *t;
    EDB_RET(load_table(s, "edb_table_describe", table, &t));
    uint32_t live = 0;      /* dropped columns are not described */
    for (uint32_t i = 0; i < t->ncols; i++)
        live += !(t->cols[i].flags & EDB__COL_DROPPED);
    size_t bytes = sizeof(edb_table_def) + live * sizeof(edb_column_def) +
                   t->nidx * sizeof(edb_index_def) + strlen(t->name) + 1;
    for (uint32_t i = 0; i < t->ncols; i++)
        bytes += strlen(t->cols[i].name) + 1 + t->cols[i].default_size +
                 strlen(t->cols[i].collation) + 1;
    for (uint32_t i = 0; i < t->nidx; i++)
        bytes += strlen(t->idx[i].name) + 1 + key_string(t, &t->idx[i], NULL) +
                 (t->idx[i].cond_col ? strlen(t->cols[t->idx[i].cond_col - 1].name) + 2 : 0);
    uint8_t *mem = calloc(1, bytes);
    if (mem == NULL) {
        edb__table_free(t);
        return edb__err(EDB_NOMEM, "edb_table_describe");
    }
    edb_table_def *d = (edb_table_def *)mem;
    edb_column_def *cols = (edb_column_def *)(d + 1);
    edb_index_def *idx = (edb_index_def *)(cols + live);
    char *p = (char *)(idx + t->nidx);
#define COPY(dst, src, n) do { memcpy(p, (src), (n)); (dst) = (void *)p; p += (n); } while (0)
    COPY(d->name, t->name, strlen(t->name) + 1);
    d->columns = cols;
    d->ncolumns = live;
    d->indexes = idx;
    d->nindexes = t->nidx;
    for (uint32_t i = 0, o = 0; i < t->ncols; i++) {
        const edb__column *c = &t->cols[i];
        if (c->flags & EDB__COL_DROPPED)
            continue;
        COPY(cols[o].name, c->name, strlen(c->name) + 1);
        cols[o].type = c->type;
        cols[o].flags = c->flags;
        cols[o].max_size = c->max_size;
        if (c->has_default) {
            COPY(cols[o].default_value, c->default_value, c->default_size);
            cols[o].default_size = c->default_size;
        }
        if (c->collation[0] != '\0')
            COPY(cols[o].collation, c->collation, strlen(c->collation) + 1);
        o++;
    }
    for (uint32_t i = 0; i < t->nidx; i++) {
        COPY(idx[i].name, t->idx[i].name, strlen(t->idx[i].name) + 1);
        size_t kl = key_string(t, &t->idx[i], p);
        idx[i].key = p;
        p += kl;
        idx[i].flags = t->idx[i].flags;
        const edb__index *x = &t->idx[i];
        if (x->cond_col != 0) {
            const char *cn = t->cols[x->cond_col - 1].name;
            idx[i].condition = p;
            if (x->cond_null)
                *p++ = '!';
            memcpy(p, cn, strlen(cn) + 1);
            p += strlen(cn) + 1;
        }
        if (x->flags & EDB_IDX_TUPLES) {
            idx[i].tuple_min = x->tuple_min;
            idx[i].tuple_max = x->tuple_max;
        }
    }
#undef COPY
    edb__table_free(t);
    *out = d;
    edb__err_clear();
    return 0;
}

int
edb_table_stat(edb_tree_stat *out, edb_session *s, const char *table, const char *index)
{
    if (out == NULL)
        return edb__err(EDB_INVAL, "edb_table_stat: out is NULL");
    memset(out, 0, sizeof *out);
    EDB_RET(edb__session_check(s, "edb_table_stat"));
    if (table == NULL)
        return edb__err(EDB_INVAL, "edb_table_stat: table is NULL");
    MDB_txn *txn;
    EDB_RET(edb__txn_enter(s, false, &txn));
    edb__table *t = NULL;
    int ret = 0;
    EDB_ERR(edb__table_load(&t, s->env, txn, table));
    MDB_dbi dbi = t->rec.dbi;
    uint32_t kid = t->kid;
    if (index != NULL) {
        int i = edb__table_index(t, index);
        if (i < 0)
            EDB_ERR(edb__err(EDB_NOTFOUND, "table '%s' has no index '%s'", table, index));
        if (!(t->idx[i].flags & EDB_IDX_PRIMARY)) {
            dbi = t->idx[i].ks.dbi;
            kid = t->idx[i].kid;
        }
    }
    /* entries: the catalog's exact count; the tree figures are those of the
     * shared database the range lives in (edb.records or edb.index) */
    MDB_stat st;
    EDB_ERR(edb__rows_get(&out->entries, s, txn, kid));
    EDB_ERR(edb__mdb_err(mdb_stat(txn, dbi, &st), "edb_table_stat"));
    out->depth = st.ms_depth;
    out->branch_pages = st.ms_branch_pages;
    out->leaf_pages = st.ms_leaf_pages;
    out->overflow_pages = st.ms_overflow_pages;
err:
    edb__table_free(t);
    ret = edb__txn_leave(s, ret);
    if (ret == 0)
        edb__err_clear();
    return ret;
}

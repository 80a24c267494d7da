/*
 * check.c: edb_env_check(): the whole database, in two read snapshots that
 * never block a writer.
 *
 * 1. Structure (pagecheck.c): LMDB's B-trees walked page by page from the
 *    meta's roots; every page reachable once or free, none past last_pg,
 *    leaks reported.
 * 2. Logic, through the engine's own read path in one read-only transaction:
 *    the catalog describes every table consistently (names unique, key
 *    columns exist and are not multi-valued, one primary at most); every
 *    record decodes, its values have their type's size, TEXT is UTF-8 without
 *    NUL, sizes respect max_size, NOT NULL columns hold a value; records are in
 *    strictly increasing primary-key order; each secondary index's entries are
 *    in key order (strictly for UNIQUE), and the multiset of records reached
 *    through the index equals the multiset of records that belong in it
 *    (all records, or those with a non-NULL key column for IGNORE_NULL, or
 *    with no NULL key column for IGNORE_ANY_NULL, and those its condition
 *    column admits), compared by a 64-bit hash of each record's values; row
 *    and entry counts equal the trees' counts.  Collated segments are
 *    encoded with the column's ICU collator, and an index whose recorded
 *    collator version is not this ICU's is reported (EDB_VERSION: rebuild
 *    it).  A multi-entry index (tuples, a multi-valued key column) is checked
 *    against the engine's own entry list (update.c) for each record: every
 *    entry is one its record makes, and each record has as many entries as
 *    distinct keys it makes.
 *
 * The logical part uses only the public API and the key codec (key.h): it
 * needs nothing from the catalog's or record codec's private layout, so it
 * checks what a reader of the database would actually get.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "catalog.h"
#include "collate.h"
#include "coltype.h"
#include "cursor.h"
#include "env.h"
#include "error.h"
#include "key.h"
#include "longval.h"
#include "pagecheck.h"
#include "session.h"

#define PROGRESS_EVERY 4096

typedef struct chk {
    edb_check_fn fn;
    void *ctx;
    void (*progress)(void *ctx, uint64_t rows);
    uint64_t problems, rows;
    edb_session *s;
} chk;

static void
problem(chk *k, int code, const char *fmt, ...) EDB__PRINTF(3, 4);

static void
problem(chk *k, int code, const char *fmt, ...)
{
    k->problems++;
    if (k->fn == NULL)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    k->fn(k->ctx, code, msg);
}

/* Counting callback wrapper for the page walk. */
static void
page_problem(void *ctx, int code, const char *what)
{
    chk *k = ctx;
    if (k->fn)
        k->fn(k->ctx, code, what);
}

static size_t
fixed_size(edb_coltype t)
{
    int n = edb__type_size(t);     /* the column-type table (coltype.h) */
    return n > 0 ? (size_t)n : 0;
}

static bool
utf8_ok(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
        else return false;
        if (len > n - i)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

/* The values of one record, read once. */
typedef struct val {
    uint8_t *p;
    size_t n;
    bool null;
} val;

typedef struct tbl {
    const char *name;
    edb_table_def *def;
    int nseg[EDB_MAX_INDEXES];
    int seg[EDB_MAX_INDEXES][EDB_MAX_KEY_SEGMENTS];   /* column positions */
    bool desc[EDB_MAX_INDEXES][EDB_MAX_KEY_SEGMENTS];
    int primary;                                        /* index position or -1 */
    int cond[EDB_MAX_INDEXES];                          /* condition column position or -1 */
    bool cond_null[EDB_MAX_INDEXES];                    /* "!col" */
    const edb__coll **coll;                             /* per column: collator or NULL */
    bool multi[EDB_MAX_INDEXES];                        /* several entries a record (tuples,
                                                           multi-valued key): checked against
                                                           the engine's own entry list */
    edb__table *it;                                     /* the catalog's table (multi only) */
    edb__rec rec;                                       /* its decoded current record */
    edb__entries ents;                                  /* that record's entries */
    val *vals;                                          /* first value of each column */
    edb_colid *ids;                                     /* colid of each column */
    uint8_t *buf;
    size_t cap;
} tbl;

typedef struct hashes {
    uint64_t *h;
    size_t n, cap;
} hashes;

static int
push(hashes *h, uint64_t v)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        uint64_t *p = realloc(h->h, cap * sizeof *p);
        if (p == NULL)
            return edb__err(EDB_NOMEM, "check: record hashes");
        h->h = p;
        h->cap = cap;
    }
    h->h[h->n++] = v;
    return 0;
}

static int
cmp64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Catalog consistency; resolves key segments.  false: the table cannot be checked further. */
static bool
check_catalog(chk *k, tbl *t)
{
    const edb_table_def *d = t->def;
    bool ok = true;
    t->primary = -1;
    for (size_t i = 0; i < d->ncolumns; i++) {
        const edb_column_def *c = &d->columns[i];
        if (c->name == NULL || c->name[0] == '\0') {
            problem(k, EDB_CORRUPT, "table '%s': column %zu has no name", t->name, i + 1);
            ok = false;
            continue;
        }
        if (edb_coltype_name(c->type) == NULL) {
            problem(k, EDB_CORRUPT, "table '%s': column '%s' has unknown type %d", t->name, c->name, (int)c->type);
            ok = false;
        }
        for (size_t j = 0; j < i; j++)
            if (d->columns[j].name && strcmp(d->columns[j].name, c->name) == 0)
                problem(k, EDB_CORRUPT, "table '%s': column '%s' appears twice", t->name, c->name);
        size_t fs = fixed_size(c->type);
        if (c->default_value && fs && c->default_size != fs)
            problem(k, EDB_CORRUPT, "table '%s': column '%s': default of %zu bytes for a %zu-byte type",
                    t->name, c->name, c->default_size, fs);
    }
    for (size_t x = 0; x < d->nindexes && x < EDB_MAX_INDEXES; x++) {
        const edb_index_def *ix = &d->indexes[x];
        for (size_t j = 0; j < x; j++)
            if (strcmp(d->indexes[j].name, ix->name) == 0)
                problem(k, EDB_CORRUPT, "table '%s': index '%s' appears twice", t->name, ix->name);
        if (ix->flags & EDB_IDX_PRIMARY) {
            if (t->primary >= 0)
                problem(k, EDB_CORRUPT, "table '%s': two primary indexes ('%s', '%s')", t->name,
                        d->indexes[t->primary].name, ix->name);
            else
                t->primary = (int)x;
        }
        int n = 0;
        for (const char *p = ix->key; *p; p += strlen(p) + 1) {
            const char *col = (*p == '+' || *p == '-') ? p + 1 : p;
            int pos = -1;
            for (size_t c = 0; c < d->ncolumns; c++)
                if (d->columns[c].name && strcmp(d->columns[c].name, col) == 0)
                    pos = (int)c;
            if (pos < 0 || n >= EDB_MAX_KEY_SEGMENTS) {
                problem(k, EDB_CORRUPT, "table '%s': index '%s': key column '%s' %s", t->name, ix->name, col,
                        pos < 0 ? "does not exist" : "is past the segment limit");
                ok = false;
                break;
            }
            if ((d->columns[pos].flags & EDB_COL_MULTIVALUED) && (ix->flags & EDB_IDX_PRIMARY))
                problem(k, EDB_CORRUPT, "table '%s': index '%s': key column '%s' is multi-valued", t->name,
                        ix->name, col);
            if ((d->columns[pos].flags & EDB_COL_MULTIVALUED) || (ix->flags & EDB_IDX_TUPLES))
                t->multi[x] = true;
            t->seg[x][n] = pos;
            t->desc[x][n] = *p == '-';
            n++;
        }
        if (n == 0 && ok) {
            problem(k, EDB_CORRUPT, "table '%s': index '%s' has an empty key", t->name, ix->name);
            ok = false;
        }
        t->nseg[x] = n;
        t->cond[x] = -1;
        if (ix->condition != NULL) {
            const char *cn = ix->condition[0] == '!' ? ix->condition + 1 : ix->condition;
            for (size_t c = 0; c < d->ncolumns; c++)
                if (d->columns[c].name && strcmp(d->columns[c].name, cn) == 0)
                    t->cond[x] = (int)c;
            t->cond_null[x] = ix->condition[0] == '!';
            if (t->cond[x] < 0) {
                problem(k, EDB_CORRUPT, "table '%s': index '%s': condition column '%s' does not exist",
                        t->name, ix->name, cn);
                ok = false;
            }
        }
    }
    t->coll = calloc(d->ncolumns + 1, sizeof *t->coll);
    if (t->coll == NULL)
        return false;
    for (size_t i = 0; i < d->ncolumns; i++) {
        const char *cn = d->columns[i].collation;
        if (edb__coll_is_binary(cn))
            continue;
        if (edb__coll_get(&t->coll[i], k->s->env, cn) < 0) {
            problem(k, EDB_CORRUPT, "table '%s': column '%s': collation '%s' cannot be opened: %s",
                    t->name, d->columns[i].name, cn, edb_error_last());
            ok = false;
        }
    }
    return ok;
}

/* The entries multi-entry index @x gives the cursor's current record (into
 * t->ents), computed by the engine's own entry list from the stored record. */
static int
record_entries(chk *k, tbl *t, edb_cursor *c, int x)
{
    if (t->it == NULL) {
        int rc = edb__table_load(&t->it, k->s->env, k->s->txn[0], t->name);
        if (rc < 0)
            return rc;
        if (t->it->nidx != t->def->nindexes)
            return edb__err(EDB_CORRUPT, "check: table '%s' changed under the check", t->name);
    }
    MDB_val pk = { c->pk.len, c->pk.p }, raw;
    int rc = edb__ks_get(k->s->txn[0], &t->it->rec, &pk, &raw);
    if (rc != 0)
        return edb__mdb_err(rc, "check: read record");
    EDB_RET(edb__rec_decode(&t->rec, t->it, raw.mv_data, raw.mv_size));
    return edb__index_entries(t->it, &t->it->idx[x], &t->rec, c->pk.p, c->pk.len, &t->ents);
}

/* Indexes whose entries were made with a collator version other than the one
 * this ICU has: their order may differ from what seeks compute now. */
static void
check_collation(chk *k, const char *name)
{
    edb__table *t;
    if (edb__table_load(&t, k->s->env, k->s->txn[0], name) < 0)
        return;     /* the describe above reported it */
    for (uint32_t i = 0; i < t->nidx; i++) {
        const edb__index *x = &t->idx[i];
        for (unsigned j = 0; j < x->nseg; j++) {
            const edb__column *c = &t->cols[x->seg[j].col - 1];
            uint8_t now[4];
            if (c->collation[0] == '\0' || c->coll == NULL)
                continue;
            edb__coll_version(c->coll, now);
            if (memcmp(now, x->collver[j], 4) == 0)
                continue;
            const uint8_t *was = x->collver[j];
            problem(k, EDB_VERSION, "table '%s': index '%s': column '%s' was collated by ICU "
                    "collator version %u.%u.%u.%u of '%s', this ICU has %u.%u.%u.%u: rebuild it "
                    "(`dbtool reindex DB %s %s`)", t->name, x->name, c->name, was[0], was[1],
                    was[2], was[3], c->collation, now[0], now[1], now[2], now[3], t->name, x->name);
        }
    }
    edb__table_free(t);
}

/* Read every column of the current record; check values; hash them.
 * Returns 0 (problems counted), or an error that stops this table's walk. */
static int
read_record(chk *k, tbl *t, edb_cursor *c, uint64_t rowno, uint64_t *hash, bool report)
{
    XXH3_state_t *st = XXH3_createState();
    if (st == NULL)
        return edb__err(EDB_NOMEM, "check: hash state");
    XXH3_64bits_reset(st);
    size_t used = 0;
    int ret = 0;
    /* First pass collects sizes so that one buffer holds every first value. */
    for (size_t i = 0; i < t->def->ncolumns; i++) {
        const edb_column_def *cd = &t->def->columns[i];
        edb_colid id = t->ids[i];
        unsigned nv = 0;
        int rc = edb_column_count(&nv, c, id);
        if (rc < 0) {
            if (report)
                problem(k, EDB_CORRUPT, "table '%s': row %llu: column '%s' cannot be read: %s", t->name,
                        (unsigned long long)rowno, cd->name, edb_error_last());
            ret = rc;
            break;
        }
        if (report && nv > 1 && !(cd->flags & EDB_COL_MULTIVALUED))
            problem(k, EDB_CORRUPT, "table '%s': row %llu: single-valued column '%s' holds %u values", t->name,
                    (unsigned long long)rowno, cd->name, nv);
        if (report && nv == 0 && (cd->flags & EDB_COL_NOTNULL))
            problem(k, EDB_CORRUPT, "table '%s': row %llu: NOT NULL column '%s' is NULL", t->name,
                    (unsigned long long)rowno, cd->name);
        XXH3_64bits_update(st, &id, sizeof id);
        XXH3_64bits_update(st, &nv, sizeof nv);
        t->vals[i].null = nv == 0;
        t->vals[i].n = 0;
        t->vals[i].p = NULL;
        for (unsigned v = 1; v <= nv; v++) {
            size_t actual = 0;
            rc = edb_column_get(c, id, NULL, 0, &actual, v);
            if (rc < 0) {
                if (report)
                    problem(k, EDB_CORRUPT, "table '%s': row %llu: column '%s' value %u cannot be read: %s",
                            t->name, (unsigned long long)rowno, cd->name, v, edb_error_last());
                ret = rc;
                break;
            }
            if (actual > t->cap - used) {
                size_t cap = (t->cap + actual) * 2;
                uint8_t *p = realloc(t->buf, cap);
                if (p == NULL) {
                    ret = edb__err(EDB_NOMEM, "check: value buffer");
                    break;
                }
                /* earlier values of this record point into the old buffer */
                for (size_t j = 0; j <= i; j++)
                    if (t->vals[j].p)
                        t->vals[j].p = p + (t->vals[j].p - t->buf);
                t->buf = p;
                t->cap = cap;
            }
            uint8_t *dst = t->buf + used;
            rc = edb_column_get(c, id, dst, actual, &actual, v);
            if (rc < 0 || rc == EDB_WRN_TRUNCATED) {
                ret = rc < 0 ? rc : EDB_CORRUPT;
                if (report && rc < 0)   /* a long value's chunk (longval.c) */
                    problem(k, EDB_CORRUPT, "table '%s': row %llu: column '%s' value %u cannot be read: %s",
                            t->name, (unsigned long long)rowno, cd->name, v, edb_error_last());
                else if (report)
                    problem(k, EDB_CORRUPT, "table '%s': row %llu: column '%s' changed size while read",
                            t->name, (unsigned long long)rowno, cd->name);
                break;
            }
            used += actual;
            if (v == 1) {
                t->vals[i].p = dst;
                t->vals[i].n = actual;
            }
            size_t fs = fixed_size(cd->type);
            if (report && fs && actual != fs)
                problem(k, EDB_CORRUPT, "table '%s': row %llu: column '%s' holds %zu bytes, its type has %zu",
                        t->name, (unsigned long long)rowno, cd->name, actual, fs);
            if (report && !fs && cd->max_size && actual > cd->max_size)
                problem(k, EDB_CORRUPT, "table '%s': row %llu: column '%s' holds %zu bytes, max_size is %u",
                        t->name, (unsigned long long)rowno, cd->name, actual, cd->max_size);
            if (report && cd->type == EDB_COL_TEXT && !utf8_ok(dst, actual))
                problem(k, EDB_CORRUPT, "table '%s': row %llu: column '%s' is not valid UTF-8", t->name,
                        (unsigned long long)rowno, cd->name);
            uint64_t sz = actual;
            XXH3_64bits_update(st, &sz, sizeof sz);
            XXH3_64bits_update(st, dst, actual);
        }
        if (ret < 0)
            break;
    }
    *hash = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return ret;
}

/* Encode index x's key from the record's values.  Returns 0, EDB_WRN_NULL
 * (the index gives the record no entry: IGNORE_NULL and every key column
 * NULL, or IGNORE_ANY_NULL and one NULL), or an error. */
static int
record_key(tbl *t, int x, uint8_t *buf, size_t *len)
{
    bool allnull = true, anynull = false;
    unsigned flags = t->def->indexes[x].flags;
    *len = 0;
    if (t->cond[x] >= 0 && t->vals[t->cond[x]].null != t->cond_null[x])
        return EDB_WRN_NULL;        /* the condition leaves the record out */
    for (int i = 0; i < t->nseg[x]; i++) {
        int col = t->seg[x][i];
        val *v = &t->vals[col];
        allnull &= v->null;
        anynull |= v->null;
        int rc = edb__key_append_coll(buf, EDB_MAX_KEY_SIZE + 16, len, t->def->columns[col].type,
                                      t->coll[col], v->null ? NULL : (v->p ? (const void *)v->p : ""),
                                      v->n, edb__key_mode(t->desc[x][i], flags));
        if (rc < 0)
            return rc;
    }
    if ((allnull && (flags & EDB_IDX_IGNORE_NULL)) || (anynull && (flags & EDB_IDX_IGNORE_ANY_NULL)))
        return EDB_WRN_NULL;
    return 0;
}

static int
keycmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (an < bn ? -1 : an > bn);
}

/* Walk one index (x) or the primary order (x = -1 with primary index p). */
static int
walk_index(chk *k, tbl *t, edb_cursor *c, int x, hashes *got, uint64_t *entries)
{
    uint8_t key[EDB_MAX_KEY_SIZE + 16], prev[EDB_MAX_KEY_SIZE + 16];
    size_t klen = 0, plen = 0;
    bool have_prev = false;
    const char *iname = t->def->indexes[x].name;
    bool unique = t->def->indexes[x].flags & (EDB_IDX_UNIQUE | EDB_IDX_PRIMARY);
    int rc = edb_cursor_set_index(c, iname);
    if (rc < 0) {
        problem(k, EDB_CORRUPT, "table '%s': index '%s' cannot be opened: %s", t->name, iname, edb_error_last());
        return 0;
    }
    *entries = 0;
    for (rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
        uint64_t h;
        ++*entries;
        rc = read_record(k, t, c, *entries, &h, false);
        if (rc == EDB_NOMEM)
            return rc;
        if (rc < 0) {
            problem(k, EDB_CORRUPT, "table '%s': index '%s': entry %llu leads to no readable record: %s", t->name,
                    iname, (unsigned long long)*entries, edb_error_last());
            continue;
        }
        if ((rc = push(got, h)) < 0)
            return rc;
        if (t->multi[x]) {
            /* the entry must be one its record makes */
            rc = record_entries(k, t, c, x);
            if (rc == EDB_NOMEM)
                return rc;
            bool found = false;
            for (uint32_t j = 0; rc == 0 && j < t->ents.n && !found; j++)
                found = t->ents.v[j].len == c->anchor.len &&
                        memcmp(t->ents.v[j].p, c->anchor.p, c->anchor.len) == 0;
            if (!found)
                problem(k, EDB_CORRUPT, "table '%s': index '%s': entry %llu is not one its record makes%s%s",
                        t->name, iname, (unsigned long long)*entries, rc < 0 ? ": " : "",
                        rc < 0 ? edb_error_last() : "");
            continue;
        }
        rc = record_key(t, x, key, &klen);
        if (rc < 0) {
            problem(k, EDB_CORRUPT, "table '%s': index '%s': entry %llu: its record's key cannot be encoded",
                    t->name, iname, (unsigned long long)*entries);
            continue;
        }
        if (have_prev) {
            int cmp = keycmp(prev, plen, key, klen);
            if (cmp > 0 || (cmp == 0 && unique))
                problem(k, EDB_CORRUPT, "table '%s': index '%s': entry %llu is %s the one before", t->name,
                        iname, (unsigned long long)*entries, cmp > 0 ? "out of order with" : "a duplicate key of");
        }
        memcpy(prev, key, klen);
        plen = klen;
        have_prev = true;
    }
    if (rc != EDB_NOTFOUND) {
        problem(k, EDB_CORRUPT, "table '%s': index '%s': the walk stopped after %llu entries: %s", t->name, iname,
                (unsigned long long)*entries, edb_error_last());
    }
    return 0;
}

static void
compare(chk *k, tbl *t, const char *iname, hashes *want, hashes *got)
{
    if (want->n)
        qsort(want->h, want->n, sizeof *want->h, cmp64);
    if (got->n)
        qsort(got->h, got->n, sizeof *got->h, cmp64);
    size_t i = 0, j = 0, missing = 0, extra = 0;
    while (i < want->n || j < got->n) {
        if (j == got->n || (i < want->n && want->h[i] < got->h[j])) {
            missing++;
            i++;
        } else if (i == want->n || got->h[j] < want->h[i]) {
            extra++;
            j++;
        } else {
            i++;
            j++;
        }
    }
    if (missing)
        problem(k, EDB_CORRUPT, "table '%s': index '%s': %zu record%s without their entry", t->name, iname, missing,
                missing == 1 ? "" : "s");
    if (extra)
        problem(k, EDB_CORRUPT, "table '%s': index '%s': %zu entr%s without their record", t->name, iname, extra,
                extra == 1 ? "y" : "ies");
}

static int
check_table(chk *k, const char *name)
{
    tbl t = { .name = name };
    edb_cursor *c = NULL;
    hashes want[EDB_MAX_INDEXES] = { { 0 } }, got = { 0 };
    int ret = 0, rc;
    uint8_t key[EDB_MAX_KEY_SIZE + 16], prev[EDB_MAX_KEY_SIZE + 16];
    size_t klen, plen = 0;
    bool have_prev = false;

    rc = edb_table_describe(&t.def, k->s, name);
    if (rc < 0) {
        if (rc == EDB_NOMEM)
            return rc;
        problem(k, EDB_CORRUPT, "table '%s': its catalog entry cannot be read: %s", name, edb_error_last());
        return 0;
    }
    if (t.def->nindexes > EDB_MAX_INDEXES || t.def->ncolumns > EDB_MAX_COLUMNS) {
        problem(k, EDB_CORRUPT, "table '%s': %zu columns and %zu indexes exceed the limits", name,
                t.def->ncolumns, t.def->nindexes);
        goto out;
    }
    if (!check_catalog(k, &t))
        goto out;
    check_collation(k, name);
    t.vals = calloc(t.def->ncolumns + 1, sizeof *t.vals);
    t.ids = calloc(t.def->ncolumns + 1, sizeof *t.ids);
    if (t.vals == NULL || t.ids == NULL)
        EDB_ERR(edb__err(EDB_NOMEM, "check: values"));
    rc = edb_cursor_open(&c, k->s, name);
    if (rc < 0) {
        problem(k, EDB_CORRUPT, "table '%s': cannot open a cursor: %s", name, edb_error_last());
        goto out;
    }
    /* colid = position + 1 until a column is dropped (edb_table_describe) */
    for (size_t i = 0; i < t.def->ncolumns; i++) {
        if ((rc = edb_column_id(&t.ids[i], c, t.def->columns[i].name)) < 0) {
            problem(k, EDB_CORRUPT, "table '%s': column '%s' has no id: %s", name,
                    t.def->columns[i].name, edb_error_last());
            goto out;
        }
    }
    /* Records in primary order. */
    uint64_t rows = 0;
    for (rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
        uint64_t h;
        rows++;
        if (++k->rows % PROGRESS_EVERY == 0 && k->progress)
            k->progress(k->ctx, k->rows);
        rc = read_record(k, &t, c, rows, &h, true);
        if (rc == EDB_NOMEM)
            EDB_ERR(rc);
        if (rc < 0)
            continue;
        if (t.primary >= 0) {
            if (record_key(&t, t.primary, key, &klen) < 0) {
                problem(k, EDB_CORRUPT, "table '%s': row %llu: its primary key cannot be encoded", name,
                        (unsigned long long)rows);
            } else {
                if (have_prev && keycmp(prev, plen, key, klen) >= 0)
                    problem(k, EDB_CORRUPT, "table '%s': row %llu: primary key not greater than the row before",
                            name, (unsigned long long)rows);
                memcpy(prev, key, klen);
                plen = klen;
                have_prev = true;
            }
        }
        for (size_t x = 0; x < t.def->nindexes; x++) {
            if ((int)x == t.primary)
                continue;
            if (t.multi[x]) {
                /* one entry per distinct key the record makes */
                int er = record_entries(k, &t, c, (int)x);
                if (er == EDB_NOMEM)
                    EDB_ERR(er);
                if (er < 0) {
                    problem(k, EDB_CORRUPT, "table '%s': row %llu: the entries of index '%s' cannot be "
                            "made: %s", name, (unsigned long long)rows, t.def->indexes[x].name,
                            edb_error_last());
                    continue;
                }
                for (uint32_t j = 0; j < t.ents.n; j++)
                    EDB_ERR(push(&want[x], h));
                continue;
            }
            int kr = record_key(&t, (int)x, key, &klen);
            if (kr == EDB_WRN_NULL)
                continue;
            EDB_ERR(push(&want[x], h));
        }
    }
    if (rc != EDB_NOTFOUND)
        problem(k, EDB_CORRUPT, "table '%s': the walk over its records stopped after %llu rows: %s", name,
                (unsigned long long)rows, edb_error_last());
    edb_tree_stat ts;
    if (edb_table_stat(&ts, k->s, name, NULL) == 0 && ts.entries != rows)
        problem(k, EDB_CORRUPT, "table '%s': %llu rows walked, the catalog counts %llu", name,
                (unsigned long long)rows, (unsigned long long)ts.entries);
    /* Each secondary index against the records. */
    for (size_t x = 0; x < t.def->nindexes; x++) {
        if ((int)x == t.primary)
            continue;
        uint64_t entries = 0;
        got.n = 0;
        EDB_ERR(walk_index(k, &t, c, (int)x, &got, &entries));
        compare(k, &t, t.def->indexes[x].name, &want[x], &got);
        if (edb_table_stat(&ts, k->s, name, t.def->indexes[x].name) == 0 && ts.entries != entries)
            problem(k, EDB_CORRUPT, "table '%s': index '%s': %llu entries walked, the catalog counts %llu", name,
                    t.def->indexes[x].name, (unsigned long long)entries, (unsigned long long)ts.entries);
    }
out:
err:
    edb_cursor_close(c);
    for (size_t x = 0; x < EDB_MAX_INDEXES; x++)
        free(want[x].h);
    free(got.h);
    free(t.vals);
    free(t.ids);
    free(t.coll);
    edb__table_free(t.it);
    edb__rec_free(&t.rec);
    edb__entries_free(&t.ents);
    free(t.buf);
    edb_free(t.def);
    return ret;
}

/* A long-value problem (longval.c: orphan, missing or wrong-size chunks). */
static void
lv_problem(void *ctx, const char *msg)
{
    problem(ctx, EDB_CORRUPT, "%s", msg);
}

int
edb_env_check(uint64_t *out, edb_env *env, edb_check_fn fn, void *ctx,
              void (*progress)(void *ctx, uint64_t rows))
{
    int ret = 0;
    chk k = { .fn = fn, .ctx = ctx, .progress = progress };
    char **names = NULL;
    size_t n = 0;
    edb__pagecheck_stat ps;
    uint64_t pp = 0;

    if (out == NULL || env == NULL)
        return edb__err(EDB_INVAL, "edb_env_check: %s is NULL", out == NULL ? "out" : "env");
    *out = 0;
    /* One snapshot for both halves: the session's read txn is the one the
     * page walk reads.  Writers may overwrite its meta page before the walk
     * reads it (two commits in between): then take a new snapshot. */
    EDB_ERR(edb_session_begin(&k.s, env));
    for (int attempt = 0;; attempt++) {
        EDB_ERR(edb_txn_begin(k.s, EDB_TXN_READONLY));
        int rc = edb__check_pages(&ps, &pp, edb__env_mdb(env), k.s->txn[0], page_problem, &k);
        if (rc == EDB_BUSY && attempt >= 1000)
            EDB_ERR(edb__err(EDB_BUSY, "check: writers kept overwriting the snapshot's meta page"));
        if (rc != EDB_BUSY)
            EDB_ERR(rc);
        if (rc == 0)
            break;
        EDB_ERR(edb_txn_rollback(k.s));
    }
    k.problems += pp;
    /* A broken tree structure makes the logical walk read garbage: stop here. */
    if (pp == 0) {
        int rc = edb_table_list(&names, &n, k.s);
        if (rc == EDB_NOMEM)
            EDB_ERR(rc);
        if (rc < 0)
            problem(&k, EDB_CORRUPT, "catalog: the table list cannot be read: %s", edb_error_last());
        for (size_t i = 0; i < n; i++)
            EDB_ERR(check_table(&k, names[i]));
        EDB_ERR(edb__lv_check(k.s, lv_problem, &k, NULL, NULL));
        if (progress)
            progress(ctx, k.rows);
    }
    *out = k.problems;
    edb__err_clear();
err:
    edb_free(names);
    edb_session_end(k.s);
    return ret;
}

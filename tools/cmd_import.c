/*
 * cmd_import.c: dbtool import: JSON lines (one object per row, members named
 * after columns) or CSV with a header row of column names (--csv).
 *
 * Invariants: the whole file is one write transaction unless --batch N asks
 * for a commit every N rows, so a bad row N leaves the table exactly as it
 * was (with --batch: as of the last commit, which the message states).  The
 * error names the line (the first physical line of a CSV record) and the
 * column.  A value given for an AUTOINC column is stored as given
 * (EDB_SET_AUTOINC_VALUE: unique through the table's unique indexes, and the
 * table's counter moves past it), so export | import keeps every id, gaps
 * included; a row without one gets the next value the table assigns.
 *
 * A row whose primary key is taken fails the import with the key's values
 * in the message (read back from the prepared row, the clashing index found
 * by seeking each); --replace deletes the old row and writes the new one in
 * the same transaction, --skip-duplicates leaves the old row and counts the
 * new one.  Only after edb_update reported EDB_KEYDUP: the rows that fit cost
 * nothing more.
 *
 * CSV (RFC 4180): fields separated by ',', records by LF or CRLF, a field in
 * double quotes may hold ',', CR, LF and '""' for a quote.  An empty unquoted
 * field is NULL; "" is the empty string.  A multi-valued column's cell is a
 * JSON array.  Blank lines are skipped.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "dbtool.h"

/* A row whose primary key is taken: refused (the import fails), replaced,
 * or skipped. */
enum { DUP_REFUSE, DUP_REPLACE, DUP_SKIP };

typedef struct importer {
    const char *what;
    dbt_table t;
    edb_session *s;
    edb_cursor *c;
    uint64_t line, rows, committed, batch;
    jv_buf val;
    char err[600];
    /* the fast JSON path (fast_row) */
    edb_colval *cv;
    size_t ncv, capcv;
    jv_buf arena, tmp, copy;
    unsigned char *seen;
    uint64_t fast_rows, slow_rows;
    int dup;                    /* DUP_* */
    edb_cursor *look;           /* finds the row or entry a duplicate key names */
    uint64_t replaced, skipped;
} importer;

/* The engine's detail without its "EDB_NAME: " prefix. */
static const char *
detail(void)
{
    return edb_error_last_message();
}

static int
row_fail(importer *im, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
row_fail(importer *im, int rc, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (im->committed)
        return dbt_failf(im->what, rc, "line %llu: %s (the %llu rows before it were committed)",
                         (unsigned long long)im->line, msg, (unsigned long long)im->committed);
    return dbt_failf(im->what, rc, "line %llu: %s (nothing was imported)", (unsigned long long)im->line, msg);
}

static int
set_native(importer *im, int col, const void *data, size_t size, unsigned flags)
{
    const edb_column_def *cd = &im->t.def->columns[col];
    if (cd->flags & EDB_COL_AUTOINC)
        flags |= EDB_SET_AUTOINC_VALUE;     /* null: the table assigns it */
    int rc = edb_column_set(im->c, im->t.colids[col], data == NULL ? NULL : size ? data : "", size, flags);
    if (rc < 0)
        return row_fail(im, rc, "column '%s': %s", cd->name, detail());
    return DBT_OK;
}

/* Set column col from a JSON value (null, scalar, or array for multi-valued). */
static int
set_json(importer *im, int col, json_t *v)
{
    const edb_column_def *cd = &im->t.def->columns[col];
    if (json_is_null(v))
        return set_native(im, col, NULL, 0, 0);
    if (json_is_array(v)) {
        if (!(cd->flags & EDB_COL_MULTIVALUED))
            return row_fail(im, EDB_TYPE, "column '%s' (%s): expected one value, got an array (the column is "
                            "not multi-valued)", cd->name, edb_coltype_name(cd->type));
        if (json_array_size(v) == 0)
            return set_native(im, col, NULL, 0, 0);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            int rc = json_is_null(e) ? EDB_TYPE : jv_from_json(&im->val, cd->type, e, im->err, sizeof im->err);
            if (json_is_null(e))
                snprintf(im->err, sizeof im->err, "null inside an array");
            if (rc < 0)
                return row_fail(im, rc, "column '%s' (%s), value %zu: %s", cd->name, edb_coltype_name(cd->type),
                                i + 1, im->err);
            if (set_native(im, col, im->val.p, im->val.len, i ? EDB_SET_APPEND : 0) != DBT_OK)
                return DBT_FAIL;
        }
        return DBT_OK;
    }
    int rc = jv_from_json(&im->val, cd->type, v, im->err, sizeof im->err);
    if (rc < 0)
        return row_fail(im, rc, "column '%s' (%s): %s", cd->name, edb_coltype_name(cd->type), im->err);
    return set_native(im, col, im->val.p, im->val.len, 0);
}

static int
row_begin(importer *im)
{
    int rc = edb_update_prepare(im->c, EDB_PREP_INSERT);
    if (rc < 0)
        return row_fail(im, rc, "%s", detail());
    return DBT_OK;
}

/* Make the key of index @x (NULL: primary) on im->look from the prepared
 * row's values; *text gets them as JSON, "(\"bash\", \"5.2\")". */
static int
dup_key(importer *im, const edb_index_def *x, jv_buf *text)
{
    dbt_seg seg[EDB_MAX_KEY_SEGMENTS];
    size_t nseg = 0;
    jv_buf v = { 0 }, scratch = { 0 };
    int rc = edb_cursor_set_index(im->look, x == im->t.primary ? NULL : x->name);
    if (rc == 0 && dbt_key_segments(seg, &nseg, &im->t, x->key) != 0)
        rc = EDB_CORRUPT;       /* never: a described index names its columns */
    text->len = 0;
    jv_buf_adds(text, "(");
    for (size_t i = 0; rc == 0 && i < nseg; i++) {
        edb_colid id = im->t.colids[seg[i].col];
        size_t actual = 0;
        rc = edb_column_get(im->c, id, NULL, 0, &actual, 1);
        bool null = rc == EDB_WRN_NULL;
        if (rc >= 0 && !null && (rc = jv_buf_reserve(&v, actual + 1)) == 0)
            rc = edb_column_get(im->c, id, v.p, actual, &actual, 1);
        if (rc >= 0)
            rc = edb_key_make(im->look, null ? NULL : v.p, null ? 0 : actual, i == 0 ? EDB_KEY_NEW : 0);
        if (rc >= 0) {
            jv_buf_adds(text, i ? ", " : "");
            scratch.len = 0;
            jv_buf j = { 0 };
            rc = dbt_column_json(&j, im->c, &im->t, seg[i].col, &scratch);
            jv_buf_add(text, j.p ? j.p : "null", j.p ? j.len : 4);
            jv_buf_free(&j);
        }
    }
    jv_buf_adds(text, ")");
    jv_buf_free(&v);
    jv_buf_free(&scratch);
    return rc < 0 ? rc : 0;
}

/* edb_update refused the row with EDB_KEYDUP: find the index whose key it
 * repeats; replace or skip a row of the same primary key as asked, else
 * fail naming the key's values.  *skipped: the row was left out. */
static int
on_keydup(importer *im, bool *skipped)
{
    *skipped = false;
    jv_buf text = { 0 };
    int rc = 0;
    const edb_index_def *hit = NULL;
    /* the primary key first (the engine reports it first too), then the
     * unique indexes in order */
    for (size_t pass = 0; rc == 0 && hit == NULL && pass <= im->t.def->nindexes; pass++) {
        const edb_index_def *x = pass == 0 ? im->t.primary : &im->t.def->indexes[pass - 1];
        if (x == NULL || (pass > 0 && (x == im->t.primary || !(x->flags & EDB_IDX_UNIQUE))))
            continue;
        if ((rc = dup_key(im, x, &text)) == 0) {
            rc = edb_cursor_seek(im->look, EDB_SEEK_EQ);
            if (rc == 0)
                hit = x;
            else if (rc == EDB_NOTFOUND)
                rc = 0;
        }
    }
    int ret;
    if (rc < 0) {
        ret = row_fail(im, rc, "%s", detail());
    } else if (hit == NULL) {
        ret = row_fail(im, EDB_KEYDUP, "%s", detail());
    } else if (hit == im->t.primary && im->dup == DUP_SKIP) {
        edb_update_cancel(im->c);
        im->skipped++;
        *skipped = true;
        ret = DBT_OK;
    } else if (hit == im->t.primary && im->dup == DUP_REPLACE) {
        /* the old row goes and the new one takes its key, in this transaction */
        if ((rc = edb_record_delete(im->look)) < 0 || (rc = edb_update(im->c)) < 0)
            ret = row_fail(im, rc, "replacing the row with key %s: %s", text.p, detail());
        else
            ret = DBT_OK;
        im->replaced += ret == DBT_OK;
    } else {
        ret = row_fail(im, EDB_KEYDUP, "duplicate key %s in %s index '%s'%s", text.p,
                       hit == im->t.primary ? "primary" : "unique", hit->name,
                       hit == im->t.primary ? " (--replace or --skip-duplicates to keep going)" : "");
    }
    jv_buf_free(&text);
    return ret;
}

static int
row_end(importer *im, dbt_progress *pg)
{
    int rc = edb_update(im->c);
    if (rc == EDB_KEYDUP) {
        bool skipped;
        if (on_keydup(im, &skipped) != DBT_OK)
            return DBT_FAIL;
        if (skipped)
            return DBT_OK;      /* not a row of this import */
        rc = 0;                 /* replaced */
    }
    if (rc < 0)
        return row_fail(im, rc, "%s", detail());
    im->rows++;
    dbt_progress_rows(pg, im->rows);
    if (im->batch && im->rows % im->batch == 0) {
        if ((rc = edb_txn_commit(im->s)) < 0)
            return row_fail(im, rc, "commit: %s", detail());
        im->committed = im->rows;
        if ((rc = edb_txn_begin(im->s, 0)) < 0)
            return row_fail(im, rc, "begin: %s", detail());
    }
    return DBT_OK;
}

/* ---- JSON lines --------------------------------------------------------- */

/*
 * The fast path for JSON lines.  Most rows are a flat object of strings,
 * integers, nulls and arrays of strings; jansson built an object tree for
 * each and the import spent about a third of its time there
 * (doc/performance.md).  fast_row parses such a line in place (escapes decode
 * into the line itself: they only shrink), converts integers with
 * jv_from_text (as jv_from_json does, through their decimal text) and sets
 * the row with one edb_columns_set (all or nothing); reals for FLOAT and
 * DOUBLE columns likewise.  Anything else (booleans, \u escapes, leading
 * zeros, 19-digit integers, reals for integer columns, binary, unknown or
 * repeated members, a value the engine refuses, malformed JSON) returns 0
 * with the prepared record untouched, and the line goes through jansson,
 * which gives the same result or the same error message as before.
 */

static const char *
skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* A JSON string at *pp (after its opening quote): decoded in place; false
 * for a \u escape, a control byte or an unterminated string. */
static bool
fast_string(char **pp, char *e, char **out, size_t *n)
{
    char *p = *pp, *o = p;
    *out = p;
    while (p < e && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            return false;
        if (c != '\\') {
            *o++ = *p++;
            continue;
        }
        if (p + 1 >= e)
            return false;
        switch (p[1]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        default: return false;
        }
        p += 2;
    }
    if (p >= e)
        return false;
    *n = (size_t)(o - *out);
    *pp = p + 1;
    return true;
}

/* Room for one more entry; its value is (data, size). */
static bool
fast_push(importer *im, edb_colid col, unsigned itag, void *data, size_t size)
{
    if (im->ncv == im->capcv) {
        size_t cap = im->capcv ? 2 * im->capcv : 32;
        edb_colval *v = realloc(im->cv, cap * sizeof *v);
        if (v == NULL)
            return false;
        im->cv = v;
        im->capcv = cap;
    }
    im->cv[im->ncv++] = (edb_colval){ col, itag, data, size, 0, 0 };
    return true;
}

/* A scalar for column cd: a string or an integer at *pp; false to fall back. */
static bool
fast_scalar(importer *im, const edb_column_def *cd, char **pp, char *e, void **data, size_t *size)
{
    char *p = *pp;
    if (*p == '"') {
        char *sv;
        size_t n;
        p++;
        if (!fast_string(&p, e, &sv, &n))
            return false;
        if (cd->type == EDB_COL_TEXT) {
            *data = sv;
            *size = n;
        } else if (cd->type == EDB_COL_DATETIME || cd->type == EDB_COL_GUID) {
            if (n >= 64 || memchr(sv, '\0', n))
                return false;
            char tmp[64];
            memcpy(tmp, sv, n);
            tmp[n] = '\0';
            if (jv_from_text(&im->tmp, cd->type, tmp, im->err, sizeof im->err) != 0 || im->tmp.len > 16 ||
                im->arena.cap - im->arena.len < 16)
                return false;
            *data = im->arena.p + im->arena.len;
            memcpy(*data, im->tmp.p, im->tmp.len);
            *size = im->tmp.len;
            im->arena.len += 16;
        } else {
            return false;
        }
        *pp = p;
        return true;
    }
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        /* JSON's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
        char *q = p + (*p == '-');
        char *d = q;
        while (q < e && *q >= '0' && *q <= '9')
            q++;
        size_t digits = (size_t)(q - d);
        if (digits == 0 || (digits > 1 && *d == '0'))
            return false;
        bool real = false;
        if (q < e && *q == '.') {
            char *f = ++q;
            while (q < e && *q >= '0' && *q <= '9')
                q++;
            if (q == f)
                return false;
            real = true;
        }
        if (q < e && (*q == 'e' || *q == 'E')) {
            q++;
            if (q < e && (*q == '+' || *q == '-'))
                q++;
            char *x = q;
            while (q < e && *q >= '0' && *q <= '9')
                q++;
            if (q == x)
                return false;
            real = true;
        }
        /* a real goes to a FLOAT or DOUBLE column only (jansson's value is
         * strtod of the same text, which jv_from_text parses); an integer of
         * 19 digits or more takes jansson's big-integer path */
        if ((real && cd->type != EDB_COL_FLOAT && cd->type != EDB_COL_DOUBLE) || (!real && digits >= 19) ||
            q - p >= 64)
            return false;
        if (cd->type == EDB_COL_TEXT || cd->type == EDB_COL_BOOL || cd->type == EDB_COL_BINARY ||
            cd->type == EDB_COL_DATETIME || cd->type == EDB_COL_GUID)
            return false;
        char tmp[64];
        memcpy(tmp, p, (size_t)(q - p));
        tmp[q - p] = '\0';
        if (jv_from_text(&im->tmp, cd->type, tmp, im->err, sizeof im->err) != 0 || im->tmp.len > 16 ||
            im->arena.cap - im->arena.len < 16)
            return false;
        *data = im->arena.p + im->arena.len;
        memcpy(*data, im->tmp.p, im->tmp.len);
        *size = im->tmp.len;
        im->arena.len += 16;
        *pp = q;
        return true;
    }
    return false;
}

/* 1: the row is set on the prepared record; 0: fall back (nothing set). */
static int
fast_row(importer *im, char *line, size_t len)
{
    char *p = line, *e = line + len;
    size_t ncols = im->t.def->ncolumns;
    im->ncv = 0;
    im->arena.len = 0;
    if (jv_buf_reserve(&im->arena, 16 * (len / 2 + 1)) != 0)
        return 0;
    memset(im->seen, 0, ncols);
    p = (char *)skip_ws(p, e);
    if (p >= e || *p++ != '{')
        return 0;
    p = (char *)skip_ws(p, e);
    bool first = true;
    while (p < e && *p != '}') {
        if (!first) {
            if (*p++ != ',')
                return 0;
            p = (char *)skip_ws(p, e);
        }
        first = false;
        char *key;
        size_t kn;
        if (p >= e || *p++ != '"' || !fast_string(&p, e, &key, &kn))
            return 0;
        char save = key[kn];
        key[kn] = '\0';     /* the byte after the decoded key is at most its closing quote */
        int col = dbt_column_index(&im->t, key);
        key[kn] = save;
        if (col < 0 || strlen(im->t.def->columns[col].name) != kn || im->seen[col])
            return 0;
        im->seen[col] = 1;
        const edb_column_def *cd = &im->t.def->columns[col];
        if (cd->flags & EDB_COL_AUTOINC)
            return 0;
        p = (char *)skip_ws(p, e);
        if (p >= e || *p++ != ':')
            return 0;
        p = (char *)skip_ws(p, e);
        if (p >= e)
            return 0;
        edb_colid id = im->t.colids[col];
        if (e - p >= 4 && memcmp(p, "null", 4) == 0) {
            if (!fast_push(im, id, 0, NULL, 0))
                return 0;
            p += 4;
        } else if (*p == '[') {
            if (!(cd->flags & EDB_COL_MULTIVALUED))
                return 0;
            p = (char *)skip_ws(p + 1, e);
            if (!fast_push(im, id, 0, NULL, 0))     /* the values replace the column */
                return 0;
            unsigned itag = 0;
            while (p < e && *p != ']') {
                if (itag > 0) {
                    if (*p++ != ',')
                        return 0;
                    p = (char *)skip_ws(p, e);
                }
                void *data;
                size_t size;
                if (p >= e || !fast_scalar(im, cd, &p, e, &data, &size) || !fast_push(im, id, ++itag, data, size))
                    return 0;
                p = (char *)skip_ws(p, e);
            }
            if (p >= e)
                return 0;
            p++;
        } else {
            void *data;
            size_t size;
            if (!fast_scalar(im, cd, &p, e, &data, &size) || !fast_push(im, id, 0, data, size))
                return 0;
        }
        p = (char *)skip_ws(p, e);
    }
    if (p >= e || *p != '}' || skip_ws(p + 1, e) != e)
        return 0;
    /* a key decoded in place may have overwritten nothing a value needs: keys
     * and values are disjoint spans of the line */
    return edb_columns_set(im->c, im->cv, im->ncv) == 0 ? 1 : 0;
}

static int
import_jsonl(importer *im, FILE *f, dbt_progress *pg)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int ret = DBT_OK;
    while ((n = getline(&line, &cap, f)) >= 0) {
        im->line++;
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        size_t sp = strspn(line, " \t");
        if (sp == len)
            continue;
        if (memchr(line, '\0', len)) {
            ret = row_fail(im, EDB_INVAL, "malformed JSON: a NUL byte in the line");
            break;
        }
        if ((ret = row_begin(im)) != DBT_OK)
            break;
        /* the fast path decodes in place: keep the line for the fallback */
        if ((im->seen == NULL && (im->seen = calloc(im->t.def->ncolumns ? im->t.def->ncolumns : 1, 1)) == NULL) ||
            jv_buf_reserve(&im->copy, len + 1) != 0) {
            ret = row_fail(im, EDB_NOMEM, "out of memory");
            break;
        }
        memcpy(im->copy.p, line, len + 1);
        if (fast_row(im, im->copy.p, len) == 1) {
            im->fast_rows++;
            if ((ret = row_end(im, pg)) != DBT_OK)
                break;
            continue;
        }
        edb_update_cancel(im->c);
        im->slow_rows++;
        json_error_t je;
        char *fixed = jv_quote_big_ints(line, len);
        json_t *row = json_loadb(fixed ? fixed : line, fixed ? strlen(fixed) : len,
                                 JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
        free(fixed);
        if (row == NULL) {
            ret = row_fail(im, EDB_INVAL, "malformed JSON at column %d: %s", je.column, je.text);
            break;
        }
        if (!json_is_object(row)) {
            json_decref(row);
            ret = row_fail(im, EDB_INVAL, "expected a JSON object (one row per line)");
            break;
        }
        if ((ret = row_begin(im)) != DBT_OK) {
            json_decref(row);
            break;
        }
        const char *k;
        json_t *v;
        json_object_foreach(row, k, v) {
            int col = dbt_column_index(&im->t, k);
            if (col < 0) {
                ret = row_fail(im, EDB_NOTFOUND, "table '%s' has no column '%s'", im->t.def->name, k);
                break;
            }
            if ((ret = set_json(im, col, v)) != DBT_OK)
                break;
        }
        json_decref(row);
        if (ret != DBT_OK || (ret = row_end(im, pg)) != DBT_OK)
            break;
    }
    if (ret == DBT_OK && ferror(f))
        ret = dbt_failf(im->what, EDB_IO, "reading the input failed: %s (nothing was imported)", strerror(errno));
    free(line);
    return ret;
}

/* ---- CSV ---------------------------------------------------------------- */

static int
import_csv(importer *im, FILE *f, dbt_progress *pg)
{
    dbt_csv r = { .f = f };
    int ret = DBT_OK;
    int *map = NULL;
    size_t ncols = 0;
    uint64_t start = 0;
    int got = dbt_csv_record(&r, &start, im->err, sizeof im->err);
    im->line = r.line;
    if (got <= 0) {
        if (got < 0)
            ret = row_fail(im, EDB_INVAL, "malformed CSV header: %s", im->err);
        else
            ret = dbt_failf(im->what, EDB_INVAL, "the CSV input is empty: it needs a header row of column names");
        goto out;
    }
    ncols = r.n;
    map = calloc(ncols, sizeof *map);
    if (map == NULL) {
        ret = row_fail(im, EDB_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ncols; i++) {
        map[i] = dbt_column_index(&im->t, r.cells[i].b.p);
        if (map[i] < 0) {
            ret = row_fail(im, EDB_NOTFOUND, "header field %zu: table '%s' has no column '%s'", i + 1,
                           im->t.def->name, r.cells[i].b.p);
            goto out;
        }
        for (size_t k = 0; k < i; k++)
            if (map[k] == map[i]) {
                ret = row_fail(im, EDB_INVAL, "header: column '%s' appears twice", r.cells[i].b.p);
                goto out;
            }
    }
    for (;;) {
        got = dbt_csv_record(&r, &start, im->err, sizeof im->err);
        im->line = start;
        if (got == 0)
            break;
        if (got < 0) {
            ret = row_fail(im, EDB_INVAL, "malformed CSV: %s", im->err);
            break;
        }
        if (r.n != ncols) {
            ret = row_fail(im, EDB_INVAL, "malformed CSV: %zu fields, the header has %zu", r.n, ncols);
            break;
        }
        if ((ret = row_begin(im)) != DBT_OK)
            break;
        for (size_t i = 0; i < ncols && ret == DBT_OK; i++) {
            const edb_column_def *cd = &im->t.def->columns[map[i]];
            dbt_cell *c = &r.cells[i];
            if (!c->quoted && c->b.len == 0) {
                ret = set_native(im, map[i], NULL, 0, 0);
            } else if (cd->flags & EDB_COL_MULTIVALUED) {
                json_error_t je;
                char *fixed = jv_quote_big_ints(c->b.p, c->b.len);
                json_t *v = json_loads(fixed ? fixed : c->b.p, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
                free(fixed);
                if (v == NULL || !json_is_array(v))
                    ret = row_fail(im, EDB_INVAL, "column '%s' is multi-valued: its cell must be a JSON array%s%s",
                                   cd->name, v ? "" : ": ", v ? "" : je.text);
                else
                    ret = set_json(im, map[i], v);
                json_decref(v);
            } else if (memchr(c->b.p, '\0', c->b.len)) {
                ret = row_fail(im, EDB_INVAL, "column '%s': a NUL byte in the cell", cd->name);
            } else {
                int rc = jv_from_text(&im->val, cd->type, c->b.p, im->err, sizeof im->err);
                if (rc < 0)
                    ret = row_fail(im, rc, "column '%s' (%s): %s", cd->name, edb_coltype_name(cd->type), im->err);
                else
                    ret = set_native(im, map[i], im->val.p, im->val.len, 0);
            }
        }
        if (ret != DBT_OK || (ret = row_end(im, pg)) != DBT_OK)
            break;
    }
    if (ret == DBT_OK && ferror(f))
        ret = dbt_failf(im->what, EDB_IO, "reading the input failed: %s (nothing was imported)", strerror(errno));
out:
    dbt_csv_free(&r);
    free(map);
    return ret;
}

/*
 * Deferred indexes.  Into an empty table, in one transaction (no --batch)
 * and from a file (which can be read twice), the secondary indexes are
 * dropped before the rows and created again after them, in the same
 * transaction: edb_index_create sorts the entries and appends them, so each
 * index is built with full pages, and each row costs one put less per
 * index.  A row an index would have refused (a key taken in a unique index:
 * EDB_KEYDUP; an entry too long: EDB_TOOBIG) makes its build fail instead;
 * the whole transaction is then rolled back and the file imported once more
 * with every index in place, which names the line.  What is committed is the
 * same either way.  While they are dropped, EDB_KEYDUP can only come from
 * the primary key, which on_keydup looks at first.
 */
static bool
deferred(const importer *im, const edb_index_def *x)
{
    return x != im->t.primary && !(x->flags & EDB_IDX_PRIMARY);
}

static int
defer_indexes(importer *im, size_t *ndefer)
{
    *ndefer = 0;
    int rc = edb_cursor_move(im->c, EDB_MOVE_FIRST);
    if (rc == 0)
        return DBT_OK;          /* rows already: the indexes stay */
    if (rc != EDB_NOTFOUND)
        return dbt_fail(im->what, rc);
    for (size_t i = 0; i < im->t.def->nindexes; i++) {
        const edb_index_def *x = &im->t.def->indexes[i];
        if (!deferred(im, x))
            continue;
        if ((rc = edb_index_drop(im->s, im->t.def->name, x->name)) < 0)
            return dbt_failf(im->what, rc, "index '%s': %s", x->name, detail());
        (*ndefer)++;
    }
    return DBT_OK;
}

/* Create the indexes defer_indexes dropped.  Nonzero: one failed (nothing
 * printed: the caller imports again without deferring). */
static int
build_deferred(importer *im, const char *table)
{
    for (size_t i = 0; i < im->t.def->nindexes; i++) {
        const edb_index_def *x = &im->t.def->indexes[i];
        if (!deferred(im, x))
            continue;
        int rc = edb_index_create(im->s, table, x);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int
dbt_cmd_import(int argc, char **argv)
{
    const char *pos[3];
    int npos = 0;
    bool csvmode = false;
    uint64_t batch = 0;
    int dup = DUP_REFUSE;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--csv") == 0) {
            csvmode = true;
        } else if (strcmp(argv[i], "--replace") == 0 || strcmp(argv[i], "--skip-duplicates") == 0) {
            int want = argv[i][2] == 'r' ? DUP_REPLACE : DUP_SKIP;
            if (dup != DUP_REFUSE && dup != want)
                return dbt_usage(argv[0], "--replace and --skip-duplicates exclude each other");
            dup = want;
        } else if (strcmp(argv[i], "--batch") == 0) {
            if (i + 1 >= argc || !dbt_parse_count(&batch, argv[i + 1]) || batch == 0)
                return dbt_usage(argv[0], "--batch needs a positive number of rows");
            i++;
        } else if (strncmp(argv[i], "--", 2) == 0) {
            return dbt_usage(argv[0], "unknown option '%s'", argv[i]);
        } else if (npos < 3) {
            pos[npos++] = argv[i];
        } else {
            return dbt_usage(argv[0], "unexpected argument '%s'", argv[i]);
        }
    }
    if (npos != 3)
        return dbt_usage(argv[0], "expected DB, TABLE and FILE (or - for standard input)");
    char what[600];
    snprintf(what, sizeof what, "import into '%s'", pos[1]);
    FILE *f = dbt_fopen_regular(pos[2], what);
    if (f == NULL)
        return DBT_FAIL;
    importer im = { .what = what, .batch = batch, .dup = dup };
    edb_env *env = NULL;
    int ret, rc;
    dbt_progress pg;
    if ((ret = dbt_open(&env, &im.s, pos[0], DBT_OPEN_WRITE)) != DBT_OK)
        goto out;
    /* First with the deferred indexes (when it can), then, if building one
     * of them failed, once more without (see defer_indexes). */
    for (int pass = 0; pass < 2; pass++) {
        if ((rc = edb_txn_begin(im.s, 0)) < 0) {
            ret = dbt_fail(what, rc);
            goto out;
        }
        if ((ret = dbt_table_load(&im.t, im.s, pos[1])) != DBT_OK)
            goto out;
        if ((rc = edb_cursor_open(&im.c, im.s, pos[1])) < 0 ||
            (rc = edb_cursor_open(&im.look, im.s, pos[1])) < 0) {
            ret = dbt_fail(what, rc);
            goto out;
        }
        size_t ndefer = 0;
        if (pass == 0 && f != stdin && batch == 0 && (ret = defer_indexes(&im, &ndefer)) != DBT_OK)
            goto out;
        dbt_progress_begin(&pg, "import");
        ret = csvmode ? import_csv(&im, f, &pg) : import_jsonl(&im, f, &pg);
        dbt_progress_end(&pg);
        if (ret == DBT_OK && ndefer > 0 && build_deferred(&im, pos[1]) != 0) {
            /* roll everything back and read the file again with the indexes */
            edb_cursor_close(im.c);
            edb_cursor_close(im.look);
            im.c = im.look = NULL;
            edb_txn_rollback(im.s);
            dbt_table_free(&im.t);
            if (fseeko(f, 0, SEEK_SET) != 0) {
                ret = dbt_failf(what, EDB_IO, "reading the input again: %s (nothing was imported)",
                                strerror(errno));
                goto out;
            }
            im.line = im.rows = im.committed = im.replaced = im.skipped = 0;
            im.fast_rows = im.slow_rows = 0;
            continue;
        }
        break;
    }
    edb_cursor_close(im.c);
    im.c = NULL;
    edb_cursor_close(im.look);
    im.look = NULL;
    if (ret == DBT_OK && (rc = edb_txn_commit(im.s)) < 0)
        ret = dbt_fail(what, rc);
    if (ret == DBT_OK && dup != DUP_REFUSE)
        fprintf(stderr, "dbtool: %s: %llu rows written, %llu of them replacing a row of the same "
                "primary key; %llu rows skipped (their primary key was taken)\n", what,
                (unsigned long long)im.rows, (unsigned long long)im.replaced,
                (unsigned long long)im.skipped);
    /* on failure edb_session_end() rolls the open transaction back */
out:
    edb_cursor_close(im.c);
    edb_cursor_close(im.look);
    jv_buf_free(&im.val);
    jv_buf_free(&im.arena);
    jv_buf_free(&im.tmp);
    jv_buf_free(&im.copy);
    free(im.cv);
    free(im.seen);
    dbt_table_free(&im.t);
    edb_session_end(im.s);
    edb_env_close(env);
    if (f != stdin)
        fclose(f);
    return ret;
}

/*
 * cmd_data.c: dbtool get, scan, count, delete, export (reading rows) and
 * import (writing them).  CSV and JSON-lines parsing lives in cmd_import.c.
 *
 * Invariants: read commands run in one read-only transaction (a snapshot that
 * never blocks a writer in another process); delete runs in one write
 * transaction.  --from/--to take one text value per leading key column and
 * are inclusive at both ends whatever the direction.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dbtool.h"

/* Options shared by the reading commands. */
typedef struct ropts {
    const char *db, *table, *index;
    char **from, **to;
    size_t nfrom, nto;
    bool has_from, has_to, reverse, json;
    uint64_t limit;
    bool has_limit;
    dbt_format fmt;
    char **keys;
    size_t nkeys;
    const char *prefix;         /* --prefix: string prefix of the index's leading TEXT column */
    const char *columns;        /* --columns a,b: only those, in that order */
} ropts;

/* Parse DB TABLE [positional keys] and options; "--from V..." takes values up
 * to the next "--" option.  allowed: which options the command takes. */
static int
parse_ropts(ropts *o, int argc, char **argv, const char *allowed, bool keys)
{
    memset(o, 0, sizeof *o);
    o->fmt = DBT_FMT_JSON;
    bool fmt_set = false;
    char **pos = calloc((size_t)argc, sizeof *pos);
    size_t npos = 0;
    if (pos == NULL)
        return dbt_failf(argv[0], EDB_NOMEM, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0' || strcmp(a, "--") == 0) {
            pos[npos++] = argv[i];
            continue;
        }
        const char *opt = a + 2;
        char tag[40];
        snprintf(tag, sizeof tag, " %s ", opt);
        if (strstr(allowed, tag) == NULL) {
            free(pos);
            return dbt_usage(argv[0], "unknown option '%s'", a);
        }
        if (strcmp(opt, "from") == 0 || strcmp(opt, "to") == 0) {
            int k = i + 1;
            while (k < argc && strncmp(argv[k], "--", 2) != 0)
                k++;
            if (k == i + 1) {
                free(pos);
                return dbt_usage(argv[0], "%s needs at least one value", a);
            }
            if (opt[0] == 'f') {
                o->from = argv + i + 1; o->nfrom = (size_t)(k - i - 1); o->has_from = true;
            } else {
                o->to = argv + i + 1; o->nto = (size_t)(k - i - 1); o->has_to = true;
            }
            i = k - 1;
        } else if (strcmp(opt, "reverse") == 0) {
            o->reverse = true;
        } else if (strcmp(opt, "json") == 0) {
            o->json = true;
        } else if (i + 1 >= argc) {
            free(pos);
            return dbt_usage(argv[0], "%s needs a value", a);
        } else if (strcmp(opt, "index") == 0) {
            o->index = argv[++i];
        } else if (strcmp(opt, "prefix") == 0) {
            o->prefix = argv[++i];
        } else if (strcmp(opt, "columns") == 0) {
            o->columns = argv[++i];
        } else if (strcmp(opt, "limit") == 0) {
            if (!dbt_parse_count(&o->limit, argv[++i])) {
                free(pos);
                return dbt_usage(argv[0], "--limit needs a non-negative integer, not '%s'", argv[i]);
            }
            o->has_limit = true;
        } else if (strcmp(opt, "format") == 0) {
            const char *f = argv[++i];
            fmt_set = true;
            if (strcmp(f, "jsonl") == 0 || strcmp(f, "json") == 0)
                o->fmt = DBT_FMT_JSON;
            else if (strcmp(f, "csv") == 0)
                o->fmt = DBT_FMT_CSV;
            else {
                free(pos);
                return dbt_usage(argv[0], "--format is jsonl or csv, not '%s'", f);
            }
        }
    }
    (void)fmt_set;
    if (o->prefix != NULL && (o->has_from || o->has_to)) {
        free(pos);
        return dbt_usage(argv[0], "--prefix is a range of its own: not with --from or --to");
    }
    if (npos < 2 || (!keys && npos > 2)) {
        int r = npos < 2 ? dbt_usage(argv[0], "expected DB and TABLE")
                         : dbt_usage(argv[0], "unexpected argument '%s'", pos[2]);
        free(pos);
        return r;
    }
    o->db = pos[0];
    o->table = pos[1];
    if (keys) {
        if (npos == 2) {
            free(pos);
            return dbt_usage(argv[0], "expected one value per primary-key column");
        }
        o->keys = pos + 2;   /* freed by ropts_free() */
        o->nkeys = npos - 2;
        return DBT_OK;
    }
    free(pos);
    return DBT_OK;
}

static void
ropts_free(ropts *o)
{
    if (o->keys)
        free(o->keys - 2);
}

/* A session with a read-only txn, the table and a cursor on the chosen index. */
typedef struct reader {
    edb_env *env;
    edb_session *s;
    dbt_table t;
    edb_cursor *c;
    const edb_index_def *idx;
    const dbt_table *view;      /* the columns printed (--columns); NULL: all of t */
} reader;

static void
reader_close(reader *r)
{
    edb_cursor_close(r->c);
    dbt_table_free(&r->t);
    edb_session_end(r->s);
    edb_env_close(r->env);
}

static int
reader_open(reader *r, const char *cmd, const ropts *o, int mode, bool need_primary)
{
    memset(r, 0, sizeof *r);
    int rc;
    char what[300];
    snprintf(what, sizeof what, "%s", cmd);
    if (dbt_open(&r->env, &r->s, o->db, mode) != DBT_OK)
        return DBT_FAIL;
    if ((rc = edb_txn_begin(r->s, mode == DBT_OPEN_READ ? EDB_TXN_READONLY : 0)) < 0) {
        dbt_fail(what, rc);
        goto fail;
    }
    if (dbt_table_load(&r->t, r->s, o->table) != DBT_OK)
        goto fail;
    if ((rc = edb_cursor_open(&r->c, r->s, o->table)) < 0) {
        dbt_fail(what, rc);
        goto fail;
    }
    if (o->index) {
        r->idx = dbt_index_find(&r->t, o->index);
        if (r->idx == NULL) {
            dbt_failf(what, EDB_NOTFOUND, "table '%s' has no index '%s'", o->table, o->index);
            goto fail;
        }
        if ((rc = edb_cursor_set_index(r->c, o->index)) < 0) {
            dbt_fail(what, rc);
            goto fail;
        }
    } else {
        r->idx = r->t.primary;
    }
    if (need_primary && r->t.primary == NULL) {
        dbt_failf(what, EDB_INVAL, "table '%s' has no primary index: its rows have no key to name",
                  o->table);
        goto fail;
    }
    if ((o->has_from || o->has_to) && r->idx == NULL) {
        dbt_failf(what, EDB_INVAL, "table '%s' has no primary index: use --index for --from/--to", o->table);
        goto fail;
    }
    if (o->prefix != NULL) {
        dbt_seg seg[EDB_MAX_KEY_SEGMENTS];
        size_t nseg = 0;
        if (r->idx == NULL || dbt_key_segments(seg, &nseg, &r->t, r->idx->key) != 0 || nseg == 0 ||
            r->t.def->columns[seg[0].col].type != EDB_COL_TEXT) {
            dbt_failf(what, EDB_INVAL, "--prefix needs an index whose first column is TEXT; "
                      "index '%s' of '%s' %s", r->idx ? r->idx->name : "(implicit key)", o->table,
                      r->idx && nseg > 0 ? "starts with another type" : "has no such column");
            goto fail;
        }
    }
    return DBT_OK;
fail:
    reader_close(r);
    return DBT_FAIL;
}

/* --prefix: position on the first (last, reversed) entry whose leading TEXT
 * column starts with o->prefix and limit moves to those entries: string-
 * prefix keys (EDB_KEY_PARTIAL, ESE's JET_bitPartialColumnStartLimit and
 * EndLimit).  rc as from a seek. */
static int
prefix_start(reader *r, const ropts *o, const char *what, int *rc)
{
    char *v = (char *)o->prefix;
    unsigned start = EDB_KEY_PARTIAL, end = EDB_KEY_PARTIAL | EDB_KEY_PREFIX_END;
    if (dbt_key_from_args(r->c, &r->t, r->idx, &v, 1, o->reverse ? end : start, what) != DBT_OK)
        return DBT_FAIL;
    *rc = edb_cursor_seek(r->c, o->reverse ? EDB_SEEK_LT : EDB_SEEK_EQ);
    if (*rc != 0)
        return DBT_OK;
    if (dbt_key_from_args(r->c, &r->t, r->idx, &v, 1, o->reverse ? start : end, what) != DBT_OK)
        return DBT_FAIL;
    /* reversed: a lower limit, inclusive (no entry equals a partial key);
     * an entry LT found below the prefix is outside: EDB_NOTFOUND */
    *rc = edb_cursor_set_range(r->c, o->reverse ? EDB_RANGE_INCLUSIVE : EDB_RANGE_UPPER);
    return DBT_OK;
}

/* --columns a,b: a view of the table with only those columns, in that order,
 * for the row writers (which print t->def->columns[i] read by t->colids[i]).
 * *out shares names and types with @t: free it with proj_free() before @t. */
static int
proj_make(dbt_table *out, const dbt_table *t, const char *list, const char *what)
{
    memset(out, 0, sizeof *out);
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    edb_table_def *def = calloc(1, sizeof *def + n * sizeof(edb_column_def));
    char *names = strdup(list);
    out->colids = calloc(n + 1, sizeof *out->colids);
    if (def == NULL || names == NULL || out->colids == NULL) {
        free(def);
        free(names);
        free(out->colids);
        return dbt_failf(what, EDB_NOMEM, "out of memory");
    }
    edb_column_def *cols = (edb_column_def *)(def + 1);
    *def = *t->def;
    def->columns = cols;
    def->ncolumns = n;
    out->def = def;
    out->primary = t->primary;
    size_t i = 0;
    for (char *name = names, *next; name != NULL; name = next, i++) {
        next = strchr(name, ',');
        if (next != NULL)
            *next++ = '\0';
        int col = dbt_column_index(t, name);
        if (col < 0) {
            int ret = dbt_failf(what, EDB_NOTFOUND, "--columns: table '%s' has no column '%s'",
                                t->def->name, name);
            free(names);
            free(def);
            free(out->colids);
            return ret;
        }
        for (size_t j = 0; j < i; j++)
            if (out->colids[j] == t->colids[col]) {
                int ret = dbt_failf(what, EDB_INVAL, "--columns: column '%s' is named twice", name);
                free(names);
                free(def);
                free(out->colids);
                return ret;
            }
        cols[i] = t->def->columns[col];
        out->colids[i] = t->colids[col];
    }
    free(names);
    return DBT_OK;
}

static void
proj_free(dbt_table *p)
{
    free(p->def);
    free(p->colids);
}

/* Position on the first row of the range (in scan direction).  Returns 0 and
 * *empty, or 1 after printing the failure. */
static int
range_start(reader *r, const ropts *o, const char *what, bool *empty)
{
    int rc;
    *empty = false;
    if (o->prefix != NULL) {
        if (prefix_start(r, o, what, &rc) != DBT_OK)
            return DBT_FAIL;
    } else if (!o->reverse) {
        if (o->has_from) {
            if (dbt_key_from_args(r->c, &r->t, r->idx, o->from, o->nfrom, 0, what) != DBT_OK)
                return DBT_FAIL;
            rc = edb_cursor_seek(r->c, EDB_SEEK_GE);
        } else {
            rc = edb_cursor_move(r->c, EDB_MOVE_FIRST);
        }
        if (rc == 0 && o->has_to) {
            if (dbt_key_from_args(r->c, &r->t, r->idx, o->to, o->nto, EDB_KEY_PREFIX_END, what) != DBT_OK)
                return DBT_FAIL;
            rc = edb_cursor_set_range(r->c, EDB_RANGE_UPPER);   /* PREFIX_END key: entries equal to it lie past the prefix */
        }
    } else {
        if (o->has_to) {
            if (dbt_key_from_args(r->c, &r->t, r->idx, o->to, o->nto, EDB_KEY_PREFIX_END, what) != DBT_OK)
                return DBT_FAIL;
            rc = edb_cursor_seek(r->c, EDB_SEEK_LT);
        } else {
            rc = edb_cursor_move(r->c, EDB_MOVE_LAST);
        }
        if (rc == 0 && o->has_from) {
            if (dbt_key_from_args(r->c, &r->t, r->idx, o->from, o->nfrom, 0, what) != DBT_OK)
                return DBT_FAIL;
            rc = edb_cursor_set_range(r->c, EDB_RANGE_INCLUSIVE);
        }
    }
    if (rc == EDB_NOTFOUND) {
        *empty = true;
        return DBT_OK;
    }
    if (rc < 0)
        return dbt_fail(what, rc);
    return DBT_OK;
}

/* Walk the range, calling fn per row; stops at limit.  Returns 0 or 1 (printed). */
static int
range_walk(reader *r, const ropts *o, const char *what, int (*fn)(void *ctx, edb_cursor *c), void *ctx,
           uint64_t *rows, dbt_progress *pg)
{
    bool empty;
    *rows = 0;
    if (range_start(r, o, what, &empty) != DBT_OK)
        return DBT_FAIL;
    if (empty)
        return DBT_OK;
    for (;;) {
        if (o->has_limit && *rows >= o->limit)
            break;
        int rc = fn(ctx, r->c);
        if (rc < 0)
            return rc == EDB_IO ? dbt_failf(what, EDB_IO, "writing standard output failed") : dbt_fail(what, rc);
        ++*rows;
        if (pg)
            dbt_progress_rows(pg, *rows);
        rc = edb_cursor_move(r->c, o->reverse ? EDB_MOVE_PREV : EDB_MOVE_NEXT);
        if (rc == EDB_NOTFOUND)
            break;
        if (rc < 0)
            return dbt_fail(what, rc);
    }
    return DBT_OK;
}

static int
add_row(void *ctx, edb_cursor *c)
{
    return dbt_rows_add(ctx, c);
}

/* JSON lines and CSV through edb_columns_get: one call reads every
 * single-valued column of a row (one record lookup and header check), the
 * member names are escaped once, values go straight into one line buffer.
 * The bytes are those dbt_rows_add writes (tests/tools: export | import
 * round trips; the package rows' exports are identical). */
typedef struct jrows {
    const dbt_table *t;
    FILE *f;
    size_t ncols, nv;
    edb_colval *v;          /* the single-valued columns */
    size_t *vpos;           /* column i -> its entry in v, or SIZE_MAX (multi-valued) */
    jv_buf *bufs;           /* per entry */
    jv_buf *names;          /* per column: `"name": `, with ", " before all but the first */
    jv_buf line, scratch, cell;
    bool csv, header_done;
} jrows;

static void
jrows_free(jrows *j)
{
    for (size_t i = 0; j->bufs && i < j->nv; i++)
        jv_buf_free(&j->bufs[i]);
    for (size_t i = 0; j->names && i < j->ncols; i++)
        jv_buf_free(&j->names[i]);
    free(j->v);
    free(j->vpos);
    free(j->bufs);
    free(j->names);
    jv_buf_free(&j->line);
    jv_buf_free(&j->scratch);
    jv_buf_free(&j->cell);
}

/* The CSV header row (on the first row, or for an empty result at the end). */
static int
jrows_csv_header(jrows *j)
{
    const edb_table_def *d = j->t->def;
    j->line.len = 0;
    for (size_t i = 0; i < d->ncolumns; i++)
        if ((i && jv_buf_adds(&j->line, ",") != 0) ||
            dbt_csv_cell(&j->line, d->columns[i].name, strlen(d->columns[i].name), false) != 0)
            return EDB_NOMEM;
    if (jv_buf_adds(&j->line, "\r\n") != 0)
        return EDB_NOMEM;
    j->header_done = true;
    return fwrite(j->line.p, 1, j->line.len, j->f) == j->line.len ? 0 : EDB_IO;
}

/* One CSV row from the entries read: NULL is an empty unquoted cell, TEXT is
 * always quoted, a multi-valued column is its JSON array (empty for none). */
static int
jrows_csv_row(jrows *j, edb_cursor *c)
{
    int rc;
    if (!j->header_done && (rc = jrows_csv_header(j)) != 0)
        return rc;
    j->line.len = 0;
    for (size_t i = 0; i < j->ncols; i++) {
        const edb_column_def *cd = &j->t->def->columns[i];
        if (i && jv_buf_adds(&j->line, ",") != 0)
            return EDB_NOMEM;
        size_t k = j->vpos[i];
        j->cell.len = 0;
        if (k == SIZE_MAX) {
            if ((rc = dbt_column_json(&j->cell, c, j->t, (int)i, &j->scratch)) < 0)
                return rc;
            if (strcmp(j->cell.p, "[]") != 0 && dbt_csv_cell(&j->line, j->cell.p, j->cell.len, true) != 0)
                return EDB_NOMEM;
            continue;
        }
        if (j->v[k].rc == EDB_WRN_NULL)
            continue;
        if ((rc = jv_write_text(&j->cell, cd->type, j->v[k].buf, j->v[k].actual)) < 0)
            return rc;
        if (dbt_csv_cell(&j->line, j->cell.p ? j->cell.p : "", j->cell.len, cd->type == EDB_COL_TEXT) != 0)
            return EDB_NOMEM;
    }
    if (jv_buf_adds(&j->line, "\r\n") != 0)
        return EDB_NOMEM;
    return fwrite(j->line.p, 1, j->line.len, j->f) == j->line.len ? 0 : EDB_IO;
}

static int
jrows_begin(jrows *j, const dbt_table *t, FILE *f)
{
    memset(j, 0, sizeof *j);
    j->t = t;
    j->f = f;
    j->ncols = t->def->ncolumns;
    size_t n = j->ncols ? j->ncols : 1;
    j->v = calloc(n, sizeof *j->v);
    j->vpos = calloc(n, sizeof *j->vpos);
    j->bufs = calloc(n, sizeof *j->bufs);
    j->names = calloc(n, sizeof *j->names);
    if (j->v == NULL || j->vpos == NULL || j->bufs == NULL || j->names == NULL)
        return EDB_NOMEM;
    for (size_t i = 0; i < j->ncols; i++) {
        const edb_column_def *cd = &t->def->columns[i];
        if ((i && jv_buf_adds(&j->names[i], ", ") != 0) ||
            jv_write_json_string(&j->names[i], cd->name, strlen(cd->name)) != 0 ||
            jv_buf_adds(&j->names[i], ": ") != 0)
            return EDB_NOMEM;
        if (cd->flags & EDB_COL_MULTIVALUED) {
            j->vpos[i] = SIZE_MAX;
            continue;
        }
        if (jv_buf_reserve(&j->bufs[j->nv], 64) != 0)
            return EDB_NOMEM;
        j->v[j->nv] = (edb_colval){ t->colids[i], 0, NULL, 0, 0, 0 };
        j->vpos[i] = j->nv++;
    }
    return 0;
}

static int
jrows_add(void *ctx, edb_cursor *c)
{
    jrows *j = ctx;
    for (size_t k = 0; k < j->nv; k++) {
        j->v[k].buf = j->bufs[k].p;
        j->v[k].size = j->bufs[k].cap;
    }
    int rc = edb_columns_get(c, j->v, j->nv);
    if (rc < 0)
        return rc;
    for (size_t k = 0; k < j->nv; k++) {
        if (j->v[k].rc != EDB_WRN_TRUNCATED)
            continue;
        /* a value larger than its buffer: grow it (kept for later rows) and read again */
        j->bufs[k].len = 0;
        if (jv_buf_reserve(&j->bufs[k], j->v[k].actual + 1) != 0)
            return EDB_NOMEM;
        j->v[k].buf = j->bufs[k].p;
        j->v[k].size = j->bufs[k].cap;
        j->v[k].rc = edb_column_get(c, j->v[k].col, j->v[k].buf, j->v[k].size, &j->v[k].actual, 0);
        if (j->v[k].rc < 0)
            return j->v[k].rc;
        if (j->v[k].rc == EDB_WRN_TRUNCATED)
            return EDB_CORRUPT;     /* changed under us: impossible in one transaction */
    }
    if (j->csv)
        return jrows_csv_row(j, c);
    j->line.len = 0;
    if (jv_buf_adds(&j->line, "{") != 0)
        return EDB_NOMEM;
    for (size_t i = 0; i < j->ncols; i++) {
        if (jv_buf_add(&j->line, j->names[i].p, j->names[i].len) != 0)
            return EDB_NOMEM;
        size_t k = j->vpos[i];
        if (k == SIZE_MAX)
            rc = dbt_column_json(&j->line, c, j->t, (int)i, &j->scratch);
        else if (j->v[k].rc == EDB_WRN_NULL)
            rc = jv_buf_adds(&j->line, "null");
        else
            rc = jv_write_json(&j->line, j->t->def->columns[i].type, j->v[k].buf, j->v[k].actual);
        if (rc < 0)
            return rc;
    }
    if (jv_buf_adds(&j->line, "}\n") != 0)
        return EDB_NOMEM;
    if (fwrite(j->line.p, 1, j->line.len, j->f) != j->line.len)
        return EDB_IO;
    return 0;
}

static int
print_batch_rows(reader *r, const ropts *o, const char *what, bool csv, bool progress)
{
    jrows j;
    dbt_progress pg;
    uint64_t n;
    int ret;
    if (jrows_begin(&j, r->view != NULL ? r->view : &r->t, stdout) != 0) {
        jrows_free(&j);
        return dbt_failf(what, EDB_NOMEM, "out of memory");
    }
    j.csv = csv;
    if (progress)
        dbt_progress_begin(&pg, what);
    ret = range_walk(r, o, what, jrows_add, &j, &n, progress ? &pg : NULL);
    if (progress)
        dbt_progress_end(&pg);
    if (csv && n == 0 && ret == DBT_OK && jrows_csv_header(&j) != 0)    /* an empty table still gets its header */
        ret = dbt_failf(what, EDB_IO, "writing standard output failed");
    if (fflush(stdout) != 0 && ret == DBT_OK)
        ret = dbt_failf(what, EDB_IO, "writing standard output failed");
    jrows_free(&j);
    return ret;
}

static int
print_rows(reader *r, const ropts *o, const char *what, dbt_format fmt, bool progress)
{
    if (fmt == DBT_FMT_JSON || fmt == DBT_FMT_CSV)
        return print_batch_rows(r, o, what, fmt == DBT_FMT_CSV, progress);
    dbt_rows rows;
    dbt_progress pg;
    uint64_t n;
    const dbt_table *view = r->view != NULL ? r->view : &r->t;
    dbt_rows_begin(&rows, fmt, view, stdout);
    if (progress)
        dbt_progress_begin(&pg, what);
    int ret = range_walk(r, o, what, add_row, &rows, &n, progress ? &pg : NULL);
    if (progress)
        dbt_progress_end(&pg);
    if (fmt == DBT_FMT_CSV && n == 0 && ret == DBT_OK) {
        /* An empty table still gets its header row. */
        for (size_t i = 0; i < view->def->ncolumns; i++)
            printf("%s%s", i ? "," : "", view->def->columns[i].name);
        printf("\r\n");
    }
    if (dbt_rows_end(&rows) != 0 && ret == DBT_OK)
        ret = dbt_failf(what, EDB_IO, "writing standard output failed");
    return ret;
}

int
dbt_cmd_scan(int argc, char **argv)
{
    ropts o;
    int ret = parse_ropts(&o, argc, argv, " index from to limit reverse json columns prefix ", false);
    if (ret != DBT_OK)
        return ret;
    reader r;
    if (reader_open(&r, "scan", &o, DBT_OPEN_READ, false) != DBT_OK)
        return DBT_FAIL;
    dbt_table view;
    if (o.columns != NULL && proj_make(&view, &r.t, o.columns, "scan") != DBT_OK) {
        reader_close(&r);
        return DBT_FAIL;
    }
    if (o.columns != NULL)
        r.view = &view;
    ret = print_rows(&r, &o, "scan", dbt_output_format(o.json), false);
    if (o.columns != NULL)
        proj_free(&view);
    reader_close(&r);
    return ret;
}

int
dbt_cmd_export(int argc, char **argv)
{
    ropts o;
    int ret = parse_ropts(&o, argc, argv, " index format ", false);
    if (ret != DBT_OK)
        return ret;
    reader r;
    if (reader_open(&r, "export", &o, DBT_OPEN_READ, false) != DBT_OK)
        return DBT_FAIL;
    ret = print_rows(&r, &o, "export", o.fmt, true);
    reader_close(&r);
    return ret;
}

int
dbt_cmd_count(int argc, char **argv)
{
    ropts o;
    int ret = parse_ropts(&o, argc, argv, " index from to prefix json ", false);
    if (ret != DBT_OK)
        return ret;
    reader r;
    if (reader_open(&r, "count", &o, DBT_OPEN_READ, false) != DBT_OK)
        return DBT_FAIL;
    uint64_t n = 0;
    if (!o.has_from && !o.has_to && o.prefix == NULL) {
        /* the tree's entry count is the row (or index entry) count, O(1) */
        edb_tree_stat st = { 0 };
        int rc = edb_table_stat(&st, r.s, o.table, o.index);
        if (rc < 0)
            ret = dbt_fail("count", rc);
        n = st.entries;
    } else {
        /* from the range's first entry to its limit, without reading rows */
        bool empty;
        ret = range_start(&r, &o, "count", &empty);
        if (ret == DBT_OK && !empty) {
            int rc = edb_index_count(r.c, &n, 0);
            if (rc < 0)
                ret = dbt_fail("count", rc);
        }
    }
    if (ret == DBT_OK) {
        if (dbt_output_format(o.json) == DBT_FMT_JSON && o.json)
            printf("{\"count\": %llu}\n", (unsigned long long)n);
        else
            printf("%llu\n", (unsigned long long)n);
        if (fflush(stdout) != 0)
            ret = dbt_failf("count", EDB_IO, "writing standard output failed");
    }
    reader_close(&r);
    return ret;
}

/* Seek the row whose full primary key is o->keys. */
static int
seek_key(reader *r, const ropts *o, const char *what)
{
    dbt_seg seg[EDB_MAX_KEY_SEGMENTS];
    size_t nseg;
    if (dbt_key_segments(seg, &nseg, &r->t, r->t.primary->key) != 0)
        return dbt_failf(what, EDB_CORRUPT, "the primary index names a column the table lacks");
    if (o->nkeys != nseg)
        return dbt_failf(what, EDB_INVAL, "the primary key of '%s' has %zu column%s, %zu value%s given",
                         o->table, nseg, nseg == 1 ? "" : "s", o->nkeys, o->nkeys == 1 ? "" : "s");
    if (dbt_key_from_args(r->c, &r->t, r->t.primary, o->keys, o->nkeys, 0, what) != DBT_OK)
        return DBT_FAIL;
    int rc = edb_cursor_seek(r->c, EDB_SEEK_EQ);
    if (rc == EDB_NOTFOUND) {
        jv_buf k = { 0 };
        for (size_t i = 0; i < o->nkeys; i++) {
            jv_buf_adds(&k, i ? ", " : "");
            jv_buf_adds(&k, o->keys[i]);
        }
        rc = dbt_failf(what, EDB_NOTFOUND, "table '%s' has no row with key (%s)", o->table, k.p);
        jv_buf_free(&k);
        return rc;
    }
    return rc < 0 ? dbt_fail(what, rc) : DBT_OK;
}

int
dbt_cmd_get(int argc, char **argv)
{
    ropts o;
    int ret = parse_ropts(&o, argc, argv, " json ", true);
    if (ret != DBT_OK)
        return ret;
    reader r;
    if (reader_open(&r, "get", &o, DBT_OPEN_READ, true) != DBT_OK) {
        ropts_free(&o);
        return DBT_FAIL;
    }
    ret = seek_key(&r, &o, "get");
    if (ret == DBT_OK) {
        dbt_rows rows;
        dbt_rows_begin(&rows, dbt_output_format(o.json), &r.t, stdout);
        int rc = dbt_rows_add(&rows, r.c);
        if (rc < 0)
            ret = dbt_fail("get", rc);
        if (dbt_rows_end(&rows) != 0 && ret == DBT_OK)
            ret = dbt_failf("get", EDB_IO, "writing standard output failed");
    }
    reader_close(&r);
    ropts_free(&o);
    return ret;
}

int
dbt_cmd_delete(int argc, char **argv)
{
    ropts o;
    int ret = parse_ropts(&o, argc, argv, " ", true);
    if (ret != DBT_OK)
        return ret;
    reader r;
    if (reader_open(&r, "delete", &o, DBT_OPEN_WRITE, true) != DBT_OK) {
        ropts_free(&o);
        return DBT_FAIL;
    }
    ret = seek_key(&r, &o, "delete");
    int rc;
    if (ret == DBT_OK && (rc = edb_record_delete(r.c)) < 0)
        ret = dbt_fail("delete", rc);
    edb_cursor_close(r.c);
    r.c = NULL;
    if (ret == DBT_OK && (rc = edb_txn_commit(r.s)) < 0)
        ret = dbt_fail("delete: commit", rc);
    reader_close(&r);
    ropts_free(&o);
    return ret;
}

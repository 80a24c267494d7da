/*
 * util.c: helpers shared by dbtool's subcommands (see dbtool.h): error lines,
 * opening a database without ever creating one, schema lookups, reading
 * columns as JSON or text, the row writers and progress on a terminal.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dbtool.h"

/* ---- errors ------------------------------------------------------------- */

int
dbt_fail(const char *what, int rc)
{
    /* @rc's name, then the engine's message (whatever code it was set with). */
    const char *msg = edb_error_last_message();
    fprintf(stderr, "dbtool: %s: %s: %s\n", what, edb_err_name(rc), msg[0] ? msg : edb_strerror(rc));
    return DBT_FAIL;
}

int
dbt_failf(const char *what, int rc, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "dbtool: %s: %s: %s\n", what, edb_err_name(rc), msg);
    return DBT_FAIL;
}

int
dbt_usage(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "dbtool: %s: %s\n", cmd, msg);
    const dbt_cmd *c = dbt_find_cmd(cmd);
    if (c)
        fprintf(stderr, "usage: dbtool %s\n(try 'dbtool help %s')\n", c->synopsis, cmd);
    return DBT_USAGE;
}

/* ---- opening ------------------------------------------------------------ */

int
dbt_open(edb_env **out, edb_session **sess, const char *path, int mode)
{
    char what[512];
    char data[4096];
    struct stat sb;
    *out = NULL;
    *sess = NULL;
    snprintf(what, sizeof what, "open '%s'", path);
    snprintf(data, sizeof data, "%s/data.mdb", path);
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode) || stat(data, &sb) != 0)
        return dbt_failf(what, EDB_NOTFOUND, "no database in '%s' (create one with 'dbtool create %s')",
                         path, path);
    edb_env_opts opts = { 0 };
    if (mode == DBT_OPEN_READ)
        opts.flags = EDB_ENV_READONLY;
    edb_env *env;
    int rc = edb_env_open(&env, path, &opts);
    if (rc < 0)
        return dbt_fail(what, rc);
    rc = edb_session_begin(sess, env);
    if (rc < 0) {
        edb_env_close(env);
        return dbt_fail(what, rc);
    }
    *out = env;
    return DBT_OK;
}

int
dbt_table_load(dbt_table *out, edb_session *s, const char *table)
{
    char what[300];
    memset(out, 0, sizeof *out);
    snprintf(what, sizeof what, "table '%s'", table);
    int rc = edb_table_describe(&out->def, s, table);
    if (rc < 0)
        return dbt_fail(what, rc);
    for (size_t i = 0; i < out->def->nindexes; i++)
        if (out->def->indexes[i].flags & EDB_IDX_PRIMARY)
            out->primary = &out->def->indexes[i];
    out->colids = calloc(out->def->ncolumns + 1, sizeof *out->colids);
    if (out->colids == NULL) {
        edb_free(out->def);
        out->def = NULL;
        return dbt_failf(what, EDB_NOMEM, "out of memory");
    }
    /* colid = position + 1 until a column is dropped: ask the engine */
    edb_cursor *c = NULL;
    rc = edb_cursor_open(&c, s, table);
    for (size_t i = 0; rc >= 0 && i < out->def->ncolumns; i++)
        rc = edb_column_id(&out->colids[i], c, out->def->columns[i].name);
    edb_cursor_close(c);
    if (rc < 0) {
        dbt_table_free(out);
        return dbt_fail(what, rc);
    }
    return DBT_OK;
}

void
dbt_table_free(dbt_table *t)
{
    edb_free(t->def);
    free(t->colids);
    memset(t, 0, sizeof *t);
}

int
dbt_column_index(const dbt_table *t, const char *name)
{
    for (size_t i = 0; i < t->def->ncolumns; i++)
        if (strcmp(t->def->columns[i].name, name) == 0)
            return (int)i;
    return -1;
}

const edb_index_def *
dbt_index_find(const dbt_table *t, const char *name)
{
    if (name == NULL)
        return t->primary;
    for (size_t i = 0; i < t->def->nindexes; i++)
        if (strcmp(t->def->indexes[i].name, name) == 0)
            return &t->def->indexes[i];
    return NULL;
}

int
dbt_key_segments(dbt_seg *out, size_t *n, const dbt_table *t, const char *key)
{
    *n = 0;
    for (const char *p = key; *p; p += strlen(p) + 1) {
        if (*n >= EDB_MAX_KEY_SEGMENTS)
            return EDB_INVAL;
        bool desc = *p == '-';
        const char *name = (*p == '+' || *p == '-') ? p + 1 : p;
        int col = dbt_column_index(t, name);
        if (col < 0)
            return EDB_NOTFOUND;
        out[*n].col = col;
        out[*n].desc = desc;
        (*n)++;
    }
    return 0;
}

/* ---- reading columns ---------------------------------------------------- */

/* Read value itag of column col into scratch; 0, EDB_WRN_NULL or an error. */
static int
read_value(jv_buf *scratch, edb_cursor *c, edb_colid id, unsigned itag)
{
    size_t actual = 0;
    if (jv_buf_reserve(scratch, 256) != 0)
        return EDB_NOMEM;
    scratch->len = 0;
    int rc = edb_column_get(c, id, scratch->p, scratch->cap, &actual, itag);
    if (rc == EDB_WRN_TRUNCATED) {
        if (jv_buf_reserve(scratch, actual + 1) != 0)
            return EDB_NOMEM;
        rc = edb_column_get(c, id, scratch->p, scratch->cap, &actual, itag);
    }
    if (rc < 0 || rc == EDB_WRN_NULL)
        return rc;
    if (rc == EDB_WRN_TRUNCATED)      /* changed under us: impossible in one txn */
        return EDB_CORRUPT;
    scratch->len = actual;
    return 0;
}

static int
column_out(jv_buf *out, edb_cursor *c, const dbt_table *t, int col, jv_buf *scratch, bool json)
{
    const edb_column_def *cd = &t->def->columns[col];
    edb_colid id = t->colids[col];
    int rc;
    if (cd->flags & EDB_COL_MULTIVALUED) {
        unsigned n = 0;
        rc = edb_column_count(&n, c, id);
        if (rc < 0)
            return rc;
        if (n == 0)     /* no values: an empty array, so the column's JSON type never changes */
            return json ? jv_buf_adds(out, "[]") : 0;
        if (jv_buf_adds(out, "[") != 0)
            return EDB_NOMEM;
        for (unsigned i = 1; i <= n; i++) {
            rc = read_value(scratch, c, id, i);
            if (rc < 0)
                return rc;
            if (i > 1 && jv_buf_adds(out, ", ") != 0)
                return EDB_NOMEM;
            rc = rc == EDB_WRN_NULL ? jv_buf_adds(out, "null") : jv_write_json(out, cd->type, scratch->p, scratch->len);
            if (rc < 0)
                return rc;
        }
        return jv_buf_adds(out, "]");
    }
    rc = read_value(scratch, c, id, 0);
    if (rc < 0)
        return rc;
    if (rc == EDB_WRN_NULL)
        return json ? jv_buf_adds(out, "null") : 0;
    return json ? jv_write_json(out, cd->type, scratch->p, scratch->len)
                : jv_write_text(out, cd->type, scratch->p, scratch->len);
}

int
dbt_column_json(jv_buf *out, edb_cursor *c, const dbt_table *t, int col, jv_buf *scratch)
{
    return column_out(out, c, t, col, scratch, true);
}

int
dbt_column_text(jv_buf *out, edb_cursor *c, const dbt_table *t, int col, jv_buf *scratch)
{
    return column_out(out, c, t, col, scratch, false);
}

/* ---- row writers -------------------------------------------------------- */

static int table_flush(dbt_rows *r);

dbt_format
dbt_output_format(bool json)
{
    return json || !isatty(STDOUT_FILENO) ? DBT_FMT_JSON : DBT_FMT_TABLE;
}

void
dbt_rows_begin(dbt_rows *r, dbt_format fmt, const dbt_table *t, FILE *f)
{
    memset(r, 0, sizeof *r);
    r->fmt = fmt;
    r->t = t;
    r->f = f;
}

static int
csv_cell(jv_buf *line, const char *s, size_t n, bool quote_always)
{
    bool q = quote_always || n == 0 || s[0] == ' ' || s[n - 1] == ' ';
    for (size_t i = 0; i < n && !q; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r')
            q = true;
    if (!q)
        return jv_buf_add(line, s, n);
    if (jv_buf_adds(line, "\"") != 0)
        return EDB_NOMEM;
    for (size_t i = 0; i < n; i++)
        if ((s[i] == '"' && jv_buf_adds(line, "\"") != 0) || jv_buf_add(line, s + i, 1) != 0)
            return EDB_NOMEM;
    return jv_buf_adds(line, "\"");
}

/* csv_cell for cmd_data.c's batch writer: one quoting rule for both. */
int
dbt_csv_cell(jv_buf *line, const char *s, size_t n, bool quote_always)
{
    return csv_cell(line, s, n, quote_always);
}

int
dbt_rows_add(dbt_rows *r, edb_cursor *c)
{
    const edb_table_def *d = r->t->def;
    int rc = 0;
    r->line.len = 0;
    if (r->fmt == DBT_FMT_CSV && !r->header_done) {
        for (size_t i = 0; i < d->ncolumns; i++) {
            if (i && jv_buf_adds(&r->line, ",") != 0)
                return EDB_NOMEM;
            if (csv_cell(&r->line, d->columns[i].name, strlen(d->columns[i].name), false) != 0)
                return EDB_NOMEM;
        }
        if (jv_buf_adds(&r->line, "\r\n") != 0)
            return EDB_NOMEM;
        r->header_done = true;
    }
    if (r->fmt == DBT_FMT_JSON) {
        if (jv_buf_adds(&r->line, "{") != 0)
            return EDB_NOMEM;
        for (size_t i = 0; i < d->ncolumns; i++) {
            if ((i && jv_buf_adds(&r->line, ", ") != 0) ||
                jv_write_json_string(&r->line, d->columns[i].name, strlen(d->columns[i].name)) != 0 ||
                jv_buf_adds(&r->line, ": ") != 0)
                return EDB_NOMEM;
            if ((rc = dbt_column_json(&r->line, c, r->t, (int)i, &r->scratch)) < 0)
                return rc;
        }
        if (jv_buf_adds(&r->line, "}\n") != 0)
            return EDB_NOMEM;
    } else if (r->fmt == DBT_FMT_CSV) {
        jv_buf cell = { 0 };
        for (size_t i = 0; i < d->ncolumns && rc >= 0; i++) {
            cell.len = 0;
            if (i && jv_buf_adds(&r->line, ",") != 0) {
                rc = EDB_NOMEM;
                break;
            }
            const edb_column_def *cd = &d->columns[i];
            size_t before = cell.len;
            if (cd->flags & EDB_COL_MULTIVALUED) {
                rc = dbt_column_json(&cell, c, r->t, (int)i, &r->scratch);
                if (rc >= 0 && strcmp(cell.p, "[]") != 0)  /* no values: an empty cell */
                    rc = csv_cell(&r->line, cell.p, cell.len, true);
                continue;
            }
            /* NULL is an empty unquoted cell; a value that is empty text is quoted. */
            size_t actual = 0;
            int g = edb_column_get(c, r->t->colids[i], NULL, 0, &actual, 0);
            if (g == EDB_WRN_NULL)
                continue;
            if (g < 0) {
                rc = g;
                break;
            }
            rc = dbt_column_text(&cell, c, r->t, (int)i, &r->scratch);
            if (rc >= 0)
                rc = csv_cell(&r->line, cell.p + before, cell.len - before, cd->type == EDB_COL_TEXT);
        }
        jv_buf_free(&cell);
        if (rc < 0)
            return rc;
        if (jv_buf_adds(&r->line, "\r\n") != 0)
            return EDB_NOMEM;
    } else {
        if (r->nrows == r->caprows) {
            size_t cap = r->caprows ? r->caprows * 2 : 64;
            char **p = realloc(r->cells, cap * d->ncolumns * sizeof *p);
            if (p == NULL)
                return EDB_NOMEM;
            r->cells = p;
            r->caprows = cap;
        }
        for (size_t i = 0; i < d->ncolumns; i++) {
            jv_buf cell = { 0 };
            size_t actual = 0;
            int g = edb_column_get(c, r->t->colids[i], NULL, 0, &actual, 0);
            if (g == EDB_WRN_NULL && !(d->columns[i].flags & EDB_COL_MULTIVALUED)) {
                rc = jv_buf_adds(&cell, "NULL");
            } else {
                rc = dbt_column_text(&cell, c, r->t, (int)i, &r->scratch);
                if (rc >= 0 && cell.p == NULL)
                    rc = jv_buf_adds(&cell, "NULL");
            }
            if (rc < 0) {
                jv_buf_free(&cell);
                for (size_t k = 0; k < i; k++)
                    free(r->cells[r->nrows * d->ncolumns + k]);
                return rc;
            }
            for (size_t k = 0; k < cell.len; k++)      /* keep one row per line */
                if ((unsigned char)cell.p[k] < 0x20)
                    cell.p[k] = ' ';
            r->cells[r->nrows * d->ncolumns + i] = cell.p;
        }
        r->nrows++;
        return r->nrows >= DBT_TABLE_BATCH ? table_flush(r) : 0;
    }
    if (fwrite(r->line.p, 1, r->line.len, r->f) != r->line.len)
        return EDB_IO;
    return 0;
}

/* Display width of UTF-8 text: code points, not bytes. */
static size_t
width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

/* Print the buffered rows of an aligned table.  The first call sizes the
 * columns from the rows buffered so far (up to DBT_TABLE_BATCH) and prints the
 * header; later rows keep those widths, so memory stays bounded. */
static int
table_flush(dbt_rows *r)
{
    const edb_table_def *d = r->t->def;
    size_t nc = d->ncolumns;
    if (r->w == NULL) {
        r->w = calloc(nc ? nc : 1, sizeof *r->w);
        if (r->w == NULL)
            return EDB_NOMEM;
        for (size_t i = 0; i < nc; i++) {
            r->w[i] = width(d->columns[i].name);
            for (size_t k = 0; k < r->nrows; k++) {
                size_t x = width(r->cells[k * nc + i]);
                if (x > r->w[i])
                    r->w[i] = x;
            }
        }
        for (size_t i = 0; i < nc; i++)
            fprintf(r->f, "%s%s%*s", i ? "  " : "", d->columns[i].name,
                    i + 1 < nc ? (int)(r->w[i] - width(d->columns[i].name)) : 0, "");
        fputc('\n', r->f);
        for (size_t i = 0; i < nc; i++) {
            fprintf(r->f, "%s", i ? "  " : "");
            for (size_t k = 0; k < r->w[i]; k++)
                fputc('-', r->f);
        }
        fputc('\n', r->f);
    }
    for (size_t k = 0; k < r->nrows; k++) {
        for (size_t i = 0; i < nc; i++) {
            const char *cell = r->cells[k * nc + i];
            bool num = jv_is_number(d->columns[i].type) &&
                       !(d->columns[i].flags & EDB_COL_MULTIVALUED);
            size_t cw = width(cell);
            int pad = cw < r->w[i] ? (int)(r->w[i] - cw) : 0;
            if (num)
                fprintf(r->f, "%s%*s%s", i ? "  " : "", pad, "", cell);
            else
                fprintf(r->f, "%s%s%*s", i ? "  " : "", cell, i + 1 < nc ? pad : 0, "");
            free(r->cells[k * nc + i]);
        }
        fputc('\n', r->f);
    }
    r->nrows = 0;
    return ferror(r->f) ? EDB_IO : 0;
}

int
dbt_rows_end(dbt_rows *r)
{
    int rc = 0;
    if (r->fmt == DBT_FMT_TABLE) {
        rc = table_flush(r);
        free(r->w);
        r->w = NULL;
        free(r->cells);
        r->cells = NULL;
    }
    jv_buf_free(&r->line);
    jv_buf_free(&r->scratch);
    if (fflush(r->f) != 0 || ferror(r->f))
        rc = EDB_IO;
    return rc;
}

/* ---- keys --------------------------------------------------------------- */

int
dbt_key_from_args(edb_cursor *c, const dbt_table *t, const edb_index_def *idx,
                  char **vals, size_t nvals, unsigned flags_last, const char *what)
{
    dbt_seg seg[EDB_MAX_KEY_SEGMENTS];
    size_t nseg = 0;
    if (dbt_key_segments(seg, &nseg, t, idx->key) != 0)
        return dbt_failf(what, EDB_CORRUPT, "index '%s' names a column the table lacks", idx->name);
    if (nvals > nseg)
        return dbt_failf(what, EDB_INVAL, "index '%s' has %zu key column%s, %zu value%s given",
                         idx->name, nseg, nseg == 1 ? "" : "s", nvals, nvals == 1 ? "" : "s");
    jv_buf v = { 0 };
    char err[512];
    for (size_t i = 0; i < nvals; i++) {
        const edb_column_def *cd = &t->def->columns[seg[i].col];
        int rc = jv_from_text(&v, cd->type, vals[i], err, sizeof err);
        if (rc < 0) {
            jv_buf_free(&v);
            return dbt_failf(what, rc, "key column '%s' (%s): %s", cd->name,
                             edb_coltype_name(cd->type), err);
        }
        unsigned fl = (i == 0 ? EDB_KEY_NEW : 0) | (i + 1 == nvals ? flags_last : 0);
        rc = edb_key_make(c, v.p ? v.p : "", v.len, fl);
        if (rc < 0) {
            jv_buf_free(&v);
            return dbt_fail(what, rc);
        }
    }
    jv_buf_free(&v);
    return DBT_OK;
}

/* ---- progress ----------------------------------------------------------- */

double
dbt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void
dbt_progress_begin(dbt_progress *p, const char *what)
{
    memset(p, 0, sizeof *p);
    p->what = what;
    p->tty = isatty(STDERR_FILENO);
    p->start = p->last = dbt_now();
}

void
dbt_progress_rows(dbt_progress *p, uint64_t rows)
{
    if (!p->tty || (rows & 1023) != 0)
        return;
    double now = dbt_now();
    if (now - p->start < 1.0 || now - p->last < 0.25)
        return;
    p->last = now;
    p->shown = true;
    fprintf(stderr, "\r%s: %llu rows, %.0f rows/s   ", p->what, (unsigned long long)rows,
            rows / (now - p->start));
}

void
dbt_progress_end(dbt_progress *p)
{
    if (p->shown)
        fprintf(stderr, "\r\033[K");
}

bool
dbt_parse_count(uint64_t *out, const char *s)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/*
 * cmd_schema.c: dbtool create-table, tables, schema, reindex.
 *
 * The schema document (create-table reads it, schema prints it):
 *   {"name": "t",
 *    "columns": [{"name": "id", "type": "int64", "flags": ["notnull", "autoinc",
 *                 "escrow", "multivalued"], "max_size": 100, "default": VALUE,
 *                 "collation": "en-u-ks-level2"}, ...],
 *    "indexes": [{"name": "pk", "key": ["+id", "-when"], "flags": ["primary",
 *                 "unique", "ignore_null", "sort_nulls_high", "ignore_any_null",
 *                 "tuples"], "condition": "col" or "!col",
 *                 "tuple_min": 3, "tuple_max": 10}, ...]}
 * VALUE is written as a row value is (jsonval.h).  Unknown members are errors,
 * so that a typo never silently drops a constraint.  schema's output is
 * accepted by create-table unchanged (the round trip is tested).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dbtool.h"

static const struct { const char *name; unsigned flag; } col_flags[] = {
    { "notnull", EDB_COL_NOTNULL }, { "autoinc", EDB_COL_AUTOINC },
    { "escrow", EDB_COL_ESCROW }, { "multivalued", EDB_COL_MULTIVALUED },
};
static const struct { const char *name; unsigned flag; } idx_flags[] = {
    { "primary", EDB_IDX_PRIMARY }, { "unique", EDB_IDX_UNIQUE }, { "ignore_null", EDB_IDX_IGNORE_NULL },
    { "sort_nulls_high", EDB_IDX_SORT_NULLS_HIGH }, { "ignore_any_null", EDB_IDX_IGNORE_ANY_NULL },
    { "tuples", EDB_IDX_TUPLES },
};

typedef struct schema {
    edb_table_def def;
    edb_column_def *cols;
    edb_index_def *idx;
    jv_buf *defaults;          /* per column */
    char **keys;               /* per index: "+a\0-b\0\0" */
} schema;

static void
schema_free(schema *s)
{
    for (size_t i = 0; i < s->def.ncolumns; i++)
        jv_buf_free(&s->defaults[i]);
    for (size_t i = 0; i < s->def.nindexes; i++)
        free(s->keys[i]);
    free(s->cols);
    free(s->idx);
    free(s->defaults);
    free(s->keys);
}

static bool
only_members(const json_t *o, const char *const *allowed, const char **bad)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            ok |= strcmp(k, allowed[i]) == 0;
        if (!ok) {
            *bad = k;
            return false;
        }
    }
    return true;
}

/* The naming rule the engine applies (edb.h, edb_table_def), quoted in messages. */
#define NAME_RULE "a name is 1..64 bytes of [A-Za-z0-9_], not starting with a digit"

/* A string member used as a C string: false when it holds a NUL byte, which
 * would silently cut the name (json_string_value stops there). */
static bool
whole_string(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/* Parse the document into s (strings point into doc).  Prints the failure. */
static int
schema_parse(schema *s, json_t *doc, const char *what)
{
    static const char *const top_keys[] = { "name", "columns", "indexes", NULL };
    static const char *const col_keys[] = { "name", "type", "flags", "max_size", "default", "collation", NULL };
    static const char *const idx_keys[] = { "name", "key", "flags", "condition", "tuple_min", "tuple_max", NULL };
    const char *bad;
    memset(s, 0, sizeof *s);
    if (!json_is_object(doc))
        return dbt_failf(what, EDB_INVAL, "the schema must be a JSON object");
    if (!only_members(doc, top_keys, &bad))
        return dbt_failf(what, EDB_INVAL, "unknown member '%s' (name, columns, indexes)", bad);
    json_t *name = json_object_get(doc, "name"), *cols = json_object_get(doc, "columns"),
           *idx = json_object_get(doc, "indexes");
    if (!json_is_string(name))
        return dbt_failf(what, EDB_INVAL, "\"name\" must be a string");
    if (!whole_string(name))
        return dbt_failf(what, EDB_INVAL, "the table name holds a NUL byte; " NAME_RULE);
    if (!json_is_array(cols) || json_array_size(cols) == 0)
        return dbt_failf(what, EDB_INVAL, "\"columns\" must be a non-empty array");
    if (idx && !json_is_array(idx))
        return dbt_failf(what, EDB_INVAL, "\"indexes\" must be an array");
    size_t nc = json_array_size(cols), ni = idx ? json_array_size(idx) : 0;
    s->cols = calloc(nc, sizeof *s->cols);
    s->defaults = calloc(nc, sizeof *s->defaults);
    s->idx = calloc(ni ? ni : 1, sizeof *s->idx);
    s->keys = calloc(ni ? ni : 1, sizeof *s->keys);
    if (!s->cols || !s->defaults || !s->idx || !s->keys)
        return dbt_failf(what, EDB_NOMEM, "out of memory");
    s->def.name = json_string_value(name);
    s->def.columns = s->cols;
    s->def.indexes = s->idx;
    for (size_t i = 0; i < nc; i++) {
        json_t *c = json_array_get(cols, i);
        edb_column_def *cd = &s->cols[i];
        s->def.ncolumns = i + 1;
        if (!json_is_object(c))
            return dbt_failf(what, EDB_INVAL, "column %zu must be an object", i + 1);
        json_t *cn = json_object_get(c, "name"), *ct = json_object_get(c, "type"),
               *cf = json_object_get(c, "flags"), *cm = json_object_get(c, "max_size"),
               *cv = json_object_get(c, "default");
        if (!json_is_string(cn))
            return dbt_failf(what, EDB_INVAL, "column %zu: \"name\" must be a string", i + 1);
        if (!whole_string(cn))
            return dbt_failf(what, EDB_INVAL, "column %zu: the name holds a NUL byte; " NAME_RULE, i + 1);
        cd->name = json_string_value(cn);
        if (!only_members(c, col_keys, &bad))
            return dbt_failf(what, EDB_INVAL, "column '%s': unknown member '%s' (name, type, flags, "
                             "max_size, default, collation)", cd->name, bad);
        json_t *cc = json_object_get(c, "collation");
        if (cc != NULL && !json_is_null(cc)) {
            if (!whole_string(cc))
                return dbt_failf(what, EDB_INVAL, "column '%s': \"collation\" must be a string such as "
                                 "\"en-u-ks-level2\"", cd->name);
            cd->collation = json_string_value(cc);
        }
        if (!whole_string(ct) || edb_coltype_parse(&cd->type, json_string_value(ct)) != 0)
            return dbt_failf(what, EDB_INVAL, "column '%s': unknown type %s%s%s (bool, int8, int16, int32, "
                             "int64, uint8, uint16, uint32, uint64, float, double, datetime, guid, text, binary)",
                             cd->name, json_is_string(ct) ? "'" : "",
                             json_is_string(ct) ? json_string_value(ct) : "(missing or not a string)",
                             json_is_string(ct) ? "'" : "");
        if (cf && !json_is_array(cf))
            return dbt_failf(what, EDB_INVAL, "column '%s': \"flags\" must be an array", cd->name);
        size_t k;
        json_t *f;
        json_array_foreach(cf, k, f) {
            size_t m = 0;
            while (m < sizeof col_flags / sizeof col_flags[0] &&
                   !(whole_string(f) && strcmp(json_string_value(f), col_flags[m].name) == 0))
                m++;
            if (m == sizeof col_flags / sizeof col_flags[0])
                return dbt_failf(what, EDB_INVAL, "column '%s': unknown flag %s (notnull, autoinc, escrow, "
                                 "multivalued)", cd->name, json_is_string(f) ? json_string_value(f) : "(not a string)");
            cd->flags |= col_flags[m].flag;
        }
        if (cm) {
            if (!json_is_integer(cm) || json_integer_value(cm) < 0 || json_integer_value(cm) > UINT32_MAX)
                return dbt_failf(what, EDB_INVAL, "column '%s': \"max_size\" must be an integer 0..4294967295",
                                 cd->name);
            cd->max_size = (uint32_t)json_integer_value(cm);
        }
        if (cv && !json_is_null(cv)) {
            char err[300];
            int rc = jv_from_json(&s->defaults[i], cd->type, cv, err, sizeof err);
            if (rc < 0)
                return dbt_failf(what, rc, "column '%s': default: %s", cd->name, err);
            cd->default_value = s->defaults[i].p ? s->defaults[i].p : "";
            cd->default_size = s->defaults[i].len;
        }
    }
    for (size_t i = 0; i < ni; i++) {
        json_t *x = json_array_get(idx, i);
        edb_index_def *id = &s->idx[i];
        s->def.nindexes = i + 1;
        if (!json_is_object(x))
            return dbt_failf(what, EDB_INVAL, "index %zu must be an object", i + 1);
        json_t *xn = json_object_get(x, "name"), *xk = json_object_get(x, "key"),
               *xf = json_object_get(x, "flags");
        if (!json_is_string(xn))
            return dbt_failf(what, EDB_INVAL, "index %zu: \"name\" must be a string", i + 1);
        if (!whole_string(xn))
            return dbt_failf(what, EDB_INVAL, "index %zu: the name holds a NUL byte; " NAME_RULE, i + 1);
        id->name = json_string_value(xn);
        if (!only_members(x, idx_keys, &bad))
            return dbt_failf(what, EDB_INVAL, "index '%s': unknown member '%s' (name, key, flags, condition, "
                             "tuple_min, tuple_max)", id->name, bad);
        json_t *xc = json_object_get(x, "condition");
        if (xc != NULL && !json_is_null(xc)) {
            if (!whole_string(xc))
                return dbt_failf(what, EDB_INVAL, "index '%s': \"condition\" must be \"column\" or "
                                 "\"!column\"", id->name);
            id->condition = json_string_value(xc);
        }
        const char *tn[2] = { "tuple_min", "tuple_max" };
        for (int q = 0; q < 2; q++) {
            json_t *tv = json_object_get(x, tn[q]);
            if (tv == NULL)
                continue;
            if (!json_is_integer(tv) || json_integer_value(tv) < 0 || json_integer_value(tv) > EDB_TUPLE_MAX)
                return dbt_failf(what, EDB_INVAL, "index '%s': \"%s\" must be an integer 0..%d", id->name,
                                 tn[q], EDB_TUPLE_MAX);
            *(q ? &id->tuple_max : &id->tuple_min) = (unsigned)json_integer_value(tv);
        }
        if (!json_is_array(xk) || json_array_size(xk) == 0)
            return dbt_failf(what, EDB_INVAL, "index '%s': \"key\" must be a non-empty array of \"+col\"/\"-col\"",
                             id->name);
        jv_buf key = { 0 };
        size_t k;
        json_t *seg;
        json_array_foreach(xk, k, seg) {
            const char *sv = whole_string(seg) ? json_string_value(seg) : NULL;
            if (sv == NULL || sv[0] == '\0' || ((sv[0] == '+' || sv[0] == '-') && sv[1] == '\0')) {
                jv_buf_free(&key);
                return dbt_failf(what, EDB_INVAL, "index '%s': key segment %zu must be \"+column\" or \"-column\"",
                                 id->name, k + 1);
            }
            if ((sv[0] != '+' && sv[0] != '-' && jv_buf_adds(&key, "+") != 0) || jv_buf_add(&key, sv, strlen(sv) + 1) != 0) {
                jv_buf_free(&key);
                return dbt_failf(what, EDB_NOMEM, "out of memory");
            }
        }
        if (jv_buf_add(&key, "", 1) != 0) {
            jv_buf_free(&key);
            return dbt_failf(what, EDB_NOMEM, "out of memory");
        }
        s->keys[i] = key.p;
        id->key = key.p;
        if (xf && !json_is_array(xf))
            return dbt_failf(what, EDB_INVAL, "index '%s': \"flags\" must be an array", id->name);
        json_t *f;
        json_array_foreach(xf, k, f) {
            size_t m = 0;
            while (m < sizeof idx_flags / sizeof idx_flags[0] &&
                   !(whole_string(f) && strcmp(json_string_value(f), idx_flags[m].name) == 0))
                m++;
            if (m == sizeof idx_flags / sizeof idx_flags[0])
                return dbt_failf(what, EDB_INVAL, "index '%s': unknown flag %s (primary, unique, ignore_null, "
                                 "ignore_any_null, sort_nulls_high, tuples)",
                                 id->name, json_is_string(f) ? json_string_value(f) : "(not a string)");
            id->flags |= idx_flags[m].flag;
        }
    }
    return DBT_OK;
}

/* One column or index definition for dbtool alter (cmd_alter.c), parsed by
 * schema_parse as part of a one-column table document, so that it takes
 * exactly what create-table takes. */
struct dbt_def {
    json_t *doc;
    schema s;
};

void
dbt_def_free(dbt_def *d)
{
    if (d == NULL)
        return;
    schema_free(&d->s);
    json_decref(d->doc);
    free(d);
}

static int
def_parse(dbt_def **out, const char *table, const char *text, bool index, const char *what)
{
    *out = NULL;
    json_error_t je;
    char *fixed = jv_quote_big_ints(text, strlen(text));
    json_t *one = json_loads(fixed ? fixed : text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    free(fixed);
    if (one == NULL)
        return dbt_failf(what, EDB_INVAL, "malformed JSON at column %d: %s", je.column, je.text);
    if (!json_is_object(one)) {
        json_decref(one);
        return dbt_failf(what, EDB_INVAL, "the %s must be a JSON object", index ? "index" : "column");
    }
    dbt_def *d = calloc(1, sizeof *d);
    if (d == NULL) {
        json_decref(one);
        return dbt_failf(what, EDB_NOMEM, "out of memory");
    }
    /* an index is checked against the table by the engine; the stand-in
     * column only makes the document complete */
    d->doc = index ? json_pack("{s:s, s:[{s:s, s:s}], s:[o]}", "name", table, "columns", "name", "x",
                               "type", "int32", "indexes", one)
                   : json_pack("{s:s, s:[o]}", "name", table, "columns", one);
    if (d->doc == NULL) {
        free(d);
        return dbt_failf(what, EDB_NOMEM, "out of memory");
    }
    if (schema_parse(&d->s, d->doc, what) != DBT_OK) {
        dbt_def_free(d);
        return DBT_FAIL;
    }
    *out = d;
    return DBT_OK;
}

int
dbt_def_column(dbt_def **out, const edb_column_def **col, const char *table, const char *json,
               const char *what)
{
    int ret = def_parse(out, table, json, false, what);
    *col = ret == DBT_OK ? &(*out)->s.cols[0] : NULL;
    return ret;
}

int
dbt_def_index(dbt_def **out, const edb_index_def **idx, const char *table, const char *json,
              const char *what)
{
    int ret = def_parse(out, table, json, true, what);
    *idx = ret == DBT_OK ? &(*out)->s.idx[0] : NULL;
    return ret;
}

int
dbt_cmd_create_table(int argc, char **argv)
{
    if (argc != 3)
        return dbt_usage(argv[0], "expected DB and SCHEMA.json");
    char what[600];
    snprintf(what, sizeof what, "create-table '%s'", argv[2]);
    json_error_t je;
    FILE *f = dbt_fopen_regular(argv[2], what);
    if (f == NULL)
        return DBT_FAIL;
    jv_buf text = { 0 };
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (jv_buf_add(&text, chunk, got) != 0)
            break;
    bool bad = ferror(f) || !feof(f);
    if (f != stdin)
        fclose(f);
    if (bad) {
        jv_buf_free(&text);
        return dbt_failf(what, EDB_IO, "cannot read the file");
    }
    char *fixed = jv_quote_big_ints(text.p ? text.p : "", text.len);
    json_t *doc = json_loads(fixed ? fixed : text.p ? text.p : "", JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    free(fixed);
    jv_buf_free(&text);
    if (doc == NULL)
        return dbt_failf(what, EDB_INVAL, "line %d, column %d: %s", je.line, je.column, je.text);
    schema s;
    int ret = schema_parse(&s, doc, what);
    edb_env *env = NULL;
    edb_session *sess = NULL;
    if (ret == DBT_OK)
        ret = dbt_open(&env, &sess, argv[1], DBT_OPEN_WRITE);
    if (ret == DBT_OK) {
        bool plain = true;            /* a name with control bytes stays out of the prefix */
        for (const char *c = s.def.name; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                plain = false;
        if (plain)
            snprintf(what, sizeof what, "create-table '%s'", s.def.name);
        int rc = edb_table_create(sess, &s.def);
        if (rc < 0)
            ret = dbt_fail(what, rc);
    }
    edb_session_end(sess);
    edb_env_close(env);
    schema_free(&s);
    json_decref(doc);
    return ret;
}

int
dbt_cmd_tables(int argc, char **argv)
{
    bool json = false;
    const char *db = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] == '-' && argv[i][1] == '-')
            return dbt_usage(argv[0], "unknown option '%s'", argv[i]);
        else if (db == NULL)
            db = argv[i];
        else
            return dbt_usage(argv[0], "unexpected argument '%s'", argv[i]);
    }
    if (db == NULL)
        return dbt_usage(argv[0], "expected DB");
    edb_env *env;
    edb_session *s;
    if (dbt_open(&env, &s, db, DBT_OPEN_READ) != DBT_OK)
        return DBT_FAIL;
    int ret = DBT_OK, rc;
    char **names = NULL;
    size_t n = 0;
    if ((rc = edb_txn_begin(s, EDB_TXN_READONLY)) < 0 || (rc = edb_table_list(&names, &n, s)) < 0) {
        ret = dbt_fail("tables", rc);
        goto out;
    }
    dbt_format fmt = dbt_output_format(json);
    if (fmt == DBT_FMT_TABLE && n)
        printf("%-32s  %12s\n", "table", "rows");
    for (size_t i = 0; i < n; i++) {
        edb_tree_stat st;
        if ((rc = edb_table_stat(&st, s, names[i], NULL)) < 0) {
            ret = dbt_fail("tables", rc);
            goto out;
        }
        if (fmt == DBT_FMT_TABLE) {
            printf("%-32s  %12llu\n", names[i], (unsigned long long)st.entries);
        } else {
            jv_buf b = { 0 };
            jv_buf_adds(&b, "{\"name\": ");
            jv_write_json_string(&b, names[i], strlen(names[i]));
            printf("%s, \"rows\": %llu}\n", b.p, (unsigned long long)st.entries);
            jv_buf_free(&b);
        }
    }
    if (fflush(stdout) != 0)
        ret = dbt_failf("tables", EDB_IO, "writing standard output failed");
out:
    edb_free(names);
    edb_session_end(s);
    edb_env_close(env);
    return ret;
}

/* The schema document of a described table. */
static json_t *
schema_json(const dbt_table *t)
{
    json_t *doc = json_object(), *cols = json_array(), *idx = json_array();
    json_object_set_new(doc, "name", json_string(t->def->name));
    json_object_set_new(doc, "columns", cols);
    json_object_set_new(doc, "indexes", idx);
    for (size_t i = 0; i < t->def->ncolumns; i++) {
        const edb_column_def *cd = &t->def->columns[i];
        json_t *c = json_object(), *fl = json_array();
        json_object_set_new(c, "name", json_string(cd->name));
        json_object_set_new(c, "type", json_string(edb_coltype_name(cd->type)));
        for (size_t k = 0; k < sizeof col_flags / sizeof col_flags[0]; k++)
            if (cd->flags & col_flags[k].flag)
                json_array_append_new(fl, json_string(col_flags[k].name));
        json_object_set_new(c, "flags", fl);
        if (cd->max_size)
            json_object_set_new(c, "max_size", json_integer(cd->max_size));
        if (cd->default_value) {
            /* A placeholder, replaced by the exact value text after dumping
             * (jansson cannot hold a UINT64 past INT64_MAX). */
            char ph[32];
            int n = snprintf(ph, sizeof ph, "%cdefault%zu", '\0', i);
            json_object_set_new(c, "default", json_stringn(ph, (size_t)n));
        }
        if (cd->collation)
            json_object_set_new(c, "collation", json_string(cd->collation));
        json_array_append_new(cols, c);
    }
    for (size_t i = 0; i < t->def->nindexes; i++) {
        const edb_index_def *id = &t->def->indexes[i];
        json_t *x = json_object(), *key = json_array(), *fl = json_array();
        json_object_set_new(x, "name", json_string(id->name));
        for (const char *p = id->key; *p; p += strlen(p) + 1)
            json_array_append_new(key, json_string(p));
        json_object_set_new(x, "key", key);
        for (size_t k = 0; k < sizeof idx_flags / sizeof idx_flags[0]; k++)
            if (id->flags & idx_flags[k].flag)
                json_array_append_new(fl, json_string(idx_flags[k].name));
        json_object_set_new(x, "flags", fl);
        if (id->condition)
            json_object_set_new(x, "condition", json_string(id->condition));
        if (id->flags & EDB_IDX_TUPLES) {
            json_object_set_new(x, "tuple_min", json_integer(id->tuple_min));
            json_object_set_new(x, "tuple_max", json_integer(id->tuple_max));
        }
        json_array_append_new(idx, x);
    }
    return doc;
}

int
dbt_cmd_schema(int argc, char **argv)
{
    if (argc != 3)
        return dbt_usage(argv[0], "expected DB and TABLE");
    edb_env *env;
    edb_session *s;
    if (dbt_open(&env, &s, argv[1], DBT_OPEN_READ) != DBT_OK)
        return DBT_FAIL;
    int ret = DBT_OK, rc;
    dbt_table t = { 0 };
    if ((rc = edb_txn_begin(s, EDB_TXN_READONLY)) < 0) {
        ret = dbt_fail("schema", rc);
    } else if ((ret = dbt_table_load(&t, s, argv[2])) == DBT_OK) {
        json_t *doc = schema_json(&t);
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        jv_buf out = { 0 };
        rc = text ? 0 : EDB_NOMEM;
        for (const char *p = text; rc == 0 && *p;) {
            const char *ph = strstr(p, "\"\\u0000default");
            if (ph == NULL) {
                rc = jv_buf_adds(&out, p);
                break;
            }
            size_t col = strtoul(ph + 14, NULL, 10);
            const char *end = strchr(ph + 14, '"');
            const edb_column_def *cd = &t.def->columns[col < t.def->ncolumns ? col : 0];
            if (end == NULL || col >= t.def->ncolumns || jv_buf_add(&out, p, (size_t)(ph - p)) != 0 ||
                jv_write_json(&out, cd->type, cd->default_value, cd->default_size) != 0) {
                rc = EDB_NOMEM;
                break;
            }
            p = end + 1;
        }
        if (rc < 0)
            ret = dbt_failf("schema", rc, "table '%s': cannot format its schema", argv[2]);
        else if (fwrite(out.p, 1, out.len, stdout) != out.len || fputc('\n', stdout) == EOF || fflush(stdout) != 0)
            ret = dbt_failf("schema", EDB_IO, "writing standard output failed");
        free(text);
        jv_buf_free(&out);
        json_decref(doc);
        dbt_table_free(&t);
    }
    edb_session_end(s);
    edb_env_close(env);
    return ret;
}

/* reindex DB TABLE INDEX: edb_index_rebuild in one transaction. */
int
dbt_cmd_reindex(int argc, char **argv)
{
    if (argc != 4)
        return dbt_usage(argv[0], "expected DB, TABLE and INDEX");
    edb_env *env;
    edb_session *s;
    if (dbt_open(&env, &s, argv[1], DBT_OPEN_WRITE) != DBT_OK)
        return DBT_FAIL;
    int ret = DBT_OK, rc;
    edb_tree_stat st;
    if ((rc = edb_index_rebuild(s, argv[2], argv[3])) < 0)
        ret = dbt_fail("reindex", rc);
    else if ((rc = edb_table_stat(&st, s, argv[2], argv[3])) < 0)
        ret = dbt_fail("reindex", rc);
    else if (printf("table '%s': index '%s' rebuilt: %llu entries\n", argv[2], argv[3],
                    (unsigned long long)st.entries) < 0 || fflush(stdout) != 0)
        ret = dbt_failf("reindex", EDB_IO, "writing standard output failed");
    edb_session_end(s);
    edb_env_close(env);
    return ret;
}

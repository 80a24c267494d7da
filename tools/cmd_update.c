/*
 * cmd_update.c: dbtool update DB TABLE KEY... --set COL=VALUE...
 *
 * One write transaction: find the row by its primary key (one text value per
 * key column, as get and delete take them), set the columns, write it back.
 * Nothing changes when any step fails (no row, unknown column, bad value, a
 * duplicate key in a unique index).
 *
 * VALUE is JSON, as in an imported JSON line: null, a number, "text", true,
 * an array for a multi-valued column (its values replace the old ones).  A
 * VALUE that is not JSON, and a non-string JSON scalar given for a text
 * column, is read as text the way KEY arguments and CSV cells are, so
 * `--set name=bash` and `--set when=2024-05-01T10:00:00Z` need no quotes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dbtool.h"

typedef struct upd {
    const char *what;
    dbt_table t;
    edb_cursor *c;
    jv_buf val;
    char err[512];
} upd;

static int
set_native(upd *u, int col, const void *data, size_t size, unsigned flags)
{
    const edb_column_def *cd = &u->t.def->columns[col];
    if (cd->flags & EDB_COL_AUTOINC)
        flags |= EDB_SET_AUTOINC_VALUE;
    int rc = edb_column_set(u->c, u->t.colids[col], data == NULL ? NULL : size ? data : "", size, flags);
    if (rc < 0)
        return dbt_failf(u->what, rc, "column '%s': %s", cd->name, edb_error_last_message());
    return DBT_OK;
}

static int
set_one(upd *u, const char *assign)
{
    const char *eq = strchr(assign, '=');
    if (eq == NULL || eq == assign)
        return dbt_failf(u->what, EDB_INVAL, "--set takes COLUMN=VALUE, not '%s'", assign);
    char name[80];
    size_t nl = (size_t)(eq - assign);
    snprintf(name, sizeof name, "%.*s", (int)(nl < sizeof name ? nl : sizeof name - 1), assign);
    int col = nl < sizeof name ? dbt_column_index(&u->t, name) : -1;
    if (col < 0)
        return dbt_failf(u->what, EDB_NOTFOUND, "table '%s' has no column '%.*s'", u->t.def->name,
                         (int)nl, assign);
    const edb_column_def *cd = &u->t.def->columns[col];
    const char *text = eq + 1;
    json_error_t je;
    char *fixed = jv_quote_big_ints(text, strlen(text));
    json_t *v = json_loads(fixed ? fixed : text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    free(fixed);
    int rc, ret;
    if (v != NULL && json_is_null(v)) {
        ret = set_native(u, col, NULL, 0, 0);
    } else if (v != NULL && json_is_array(v)) {
        if (!(cd->flags & EDB_COL_MULTIVALUED)) {
            ret = dbt_failf(u->what, EDB_TYPE, "column '%s' (%s): expected one value, got an array (the "
                            "column is not multi-valued)", cd->name, edb_coltype_name(cd->type));
        } else {
            ret = set_native(u, col, NULL, 0, 0);
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) {
                if (ret != DBT_OK)
                    break;
                rc = json_is_null(e) ? EDB_TYPE : jv_from_json(&u->val, cd->type, e, u->err, sizeof u->err);
                if (rc < 0)
                    ret = dbt_failf(u->what, rc, "column '%s' (%s), value %zu: %s", cd->name,
                                    edb_coltype_name(cd->type), i + 1,
                                    json_is_null(e) ? "null inside an array" : u->err);
                else
                    ret = set_native(u, col, u->val.p, u->val.len, EDB_SET_APPEND);
            }
        }
    } else {
        bool as_json = v != NULL && !(cd->type == EDB_COL_TEXT && !json_is_string(v));
        rc = as_json ? jv_from_json(&u->val, cd->type, v, u->err, sizeof u->err)
                     : jv_from_text(&u->val, cd->type, text, u->err, sizeof u->err);
        if (rc < 0)
            ret = dbt_failf(u->what, rc, "column '%s' (%s): %s", cd->name, edb_coltype_name(cd->type), u->err);
        else
            ret = set_native(u, col, u->val.p, u->val.len, 0);
    }
    json_decref(v);
    return ret;
}

int
dbt_cmd_update(int argc, char **argv)
{
    char **pos = calloc((size_t)argc, sizeof *pos), **sets = calloc((size_t)argc, sizeof *sets);
    size_t npos = 0, nsets = 0;
    if (pos == NULL || sets == NULL) {
        free(pos);
        free(sets);
        return dbt_failf(argv[0], EDB_NOMEM, "out of memory");
    }
    int ret = DBT_OK;
    for (int i = 1; i < argc && ret == DBT_OK; i++) {
        if (strcmp(argv[i], "--set") == 0) {
            /* --set takes COL=VALUE arguments up to the next option */
            int k = i + 1;
            while (k < argc && strncmp(argv[k], "--", 2) != 0)
                sets[nsets++] = argv[k++];
            if (k == i + 1)
                ret = dbt_usage(argv[0], "--set needs COLUMN=VALUE");
            i = k - 1;
        } else if (strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0') {
            ret = dbt_usage(argv[0], "unknown option '%s'", argv[i]);
        } else {
            pos[npos++] = argv[i];
        }
    }
    if (ret == DBT_OK && npos < 3)
        ret = dbt_usage(argv[0], "expected DB, TABLE and one value per primary-key column");
    if (ret == DBT_OK && nsets == 0)
        ret = dbt_usage(argv[0], "expected --set COLUMN=VALUE");
    for (size_t i = 0; ret == DBT_OK && i < nsets; i++)
        for (size_t j = 0; ret == DBT_OK && j < i; j++) {
            const char *a = sets[i], *b = sets[j], *ea = strchr(a, '='), *eb = strchr(b, '=');
            if (ea && eb && ea - a == eb - b && memcmp(a, b, (size_t)(ea - a)) == 0)
                ret = dbt_usage(argv[0], "column '%.*s' is set twice", (int)(ea - a), a);
        }
    if (ret != DBT_OK) {
        free(pos);
        free(sets);
        return ret;
    }
    const char *db = pos[0], *table = pos[1];
    char what[300];
    snprintf(what, sizeof what, "update '%s'", table);
    upd u = { .what = what };
    edb_env *env = NULL;
    edb_session *s = NULL;
    int rc;
    if ((ret = dbt_open(&env, &s, db, DBT_OPEN_WRITE)) != DBT_OK)
        goto out;
    if ((rc = edb_txn_begin(s, 0)) < 0) {
        ret = dbt_fail(what, rc);
        goto out;
    }
    if ((ret = dbt_table_load(&u.t, s, table)) != DBT_OK)
        goto out;
    if (u.t.primary == NULL) {
        ret = dbt_failf(what, EDB_INVAL, "table '%s' has no primary index: its rows have no key to name", table);
        goto out;
    }
    if ((rc = edb_cursor_open(&u.c, s, table)) < 0) {
        ret = dbt_fail(what, rc);
        goto out;
    }
    dbt_seg seg[EDB_MAX_KEY_SEGMENTS];
    size_t nseg, nkeys = npos - 2;
    if (dbt_key_segments(seg, &nseg, &u.t, u.t.primary->key) != 0) {
        ret = dbt_failf(what, EDB_CORRUPT, "the primary index names a column the table lacks");
        goto out;
    }
    if (nkeys != nseg) {
        ret = dbt_failf(what, EDB_INVAL, "the primary key of '%s' has %zu column%s, %zu value%s given", table,
                        nseg, nseg == 1 ? "" : "s", nkeys, nkeys == 1 ? "" : "s");
        goto out;
    }
    if ((ret = dbt_key_from_args(u.c, &u.t, u.t.primary, pos + 2, nkeys, 0, what)) != DBT_OK)
        goto out;
    rc = edb_cursor_seek(u.c, EDB_SEEK_EQ);
    if (rc == EDB_NOTFOUND) {
        jv_buf k = { 0 };
        for (size_t i = 0; i < nkeys; i++) {
            jv_buf_adds(&k, i ? ", " : "");
            jv_buf_adds(&k, pos[2 + i]);
        }
        ret = dbt_failf(what, EDB_NOTFOUND, "table '%s' has no row with key (%s); nothing was changed", table,
                        k.p ? k.p : "");
        jv_buf_free(&k);
        goto out;
    }
    if (rc < 0 || (rc = edb_update_prepare(u.c, EDB_PREP_REPLACE)) < 0) {
        ret = dbt_fail(what, rc);
        goto out;
    }
    for (size_t i = 0; i < nsets && ret == DBT_OK; i++)
        ret = set_one(&u, sets[i]);
    if (ret == DBT_OK && (rc = edb_update(u.c)) < 0)
        ret = dbt_failf(what, rc, "%s; nothing was changed", edb_error_last_message());
    edb_cursor_close(u.c);
    u.c = NULL;
    if (ret == DBT_OK && (rc = edb_txn_commit(s)) < 0)
        ret = dbt_fail(what, rc);
    /* on failure edb_session_end() rolls the transaction back */
out:
    edb_cursor_close(u.c);
    jv_buf_free(&u.val);
    dbt_table_free(&u.t);
    edb_session_end(s);
    edb_env_close(env);
    free(pos);
    free(sets);
    return ret;
}

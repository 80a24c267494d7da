/* Long values through dbtool: import, export, check, backup and restore
 * carry values stored in chunks (engine/longval.c) unchanged. */
#include "config.h"

#include <criterion/criterion.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbtool_run.h"

static const char *SCHEMA =
    "{\"name\": \"t\", \"columns\": [{\"name\": \"id\", \"type\": \"int32\"},"
    " {\"name\": \"b\", \"type\": \"binary\"}, {\"name\": \"x\", \"type\": \"text\"}],"
    " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]}]}";

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Rows with values of 100 KB .. 300 KB (several chunks each), as export writes them. */
static char *
rows(void)
{
    size_t cap = 3 * (400000 + 300000 + 100) + 1, len = 0;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    for (int i = 1; i <= 3; i++) {
        len += (size_t)sprintf(out + len, "{\"id\": %d, \"b\": \"", i);
        size_t n = (size_t)i * 100000 / 3 * 4;     /* base64 of i * 100000 bytes */
        for (size_t j = 0; j < n; j++)
            out[len++] = B64[(j * 7 + (size_t)i) % 64];
        len += (size_t)sprintf(out + len, "\", \"x\": \"");
        for (size_t j = 0; j < (size_t)i * 80000; j++)
            out[len++] = (char)('a' + (j + (size_t)i) % 26);
        len += (size_t)sprintf(out + len, "\"}\n");
    }
    out[len] = 0;
    return out;
}

Test(longval_cli, import_export_check_backup_restore_round_trip, .timeout = 120)
{
    char path[256];
    char *in = rows();
    char *dir = dbt_make_db(path, sizeof path, SCHEMA, "t", in);
    run_result r = dbt_runv(NULL, "export", path, "t", NULL);
    dbt_expect_ok(&r, "export");
    cr_assert_eq(strlen(r.out), strlen(in));
    cr_assert(strcmp(r.out, in) == 0, "export differs from the imported rows");
    run_free(&r);
    r = dbt_runv(NULL, "check", path, "--json", NULL);
    dbt_expect_ok(&r, "check");
    cr_assert(strstr(r.out, "\"problems\": 0") != NULL, "%s", r.out);
    run_free(&r);
    /* a backup holds the chunks: the restored database exports the same rows */
    char archive[300], target[300], tdb[320];
    snprintf(archive, sizeof archive, "%s/a.edbk", dir);
    snprintf(target, sizeof target, "%s/restored", dir);
    r = dbt_runv(NULL, "backup", path, archive, "--quiet", NULL);
    dbt_expect_ok(&r, "backup");
    run_free(&r);
    r = dbt_runv(NULL, "restore", target, archive, NULL);
    dbt_expect_ok(&r, "restore");
    run_free(&r);
    snprintf(tdb, sizeof tdb, "%s", target);
    r = dbt_runv(NULL, "export", tdb, "t", NULL);
    dbt_expect_ok(&r, "export of the restored database");
    cr_assert(strcmp(r.out, in) == 0, "the restored database exports other rows");
    run_free(&r);
    r = dbt_runv(NULL, "check", tdb, "--json", NULL);
    dbt_expect_ok(&r, "check of the restored database");
    cr_assert(strstr(r.out, "\"problems\": 0") != NULL, "%s", r.out);
    run_free(&r);
    /* check names a chunk deleted behind the engine's back */
    MDB_env *m;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *mc;
    cr_assert_eq(mdb_env_create(&m), 0);
    mdb_env_set_maxdbs(m, 16);
    mdb_env_set_mapsize(m, 1ull << 30);
    cr_assert_eq(mdb_env_open(m, path, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "edb.records", 0, &dbi), 0);
    cr_assert_eq(mdb_cursor_open(txn, dbi, &mc), 0);
    unsigned char zero[4] = { 0 };
    MDB_val k = { 4, zero }, d;
    cr_assert_eq(mdb_cursor_get(mc, &k, &d, MDB_SET_RANGE), 0, "no chunk in the database");
    cr_assert(k.mv_size == 20 && memcmp(k.mv_data, zero, 4) == 0, "no chunk in the database");
    cr_assert_eq(mdb_cursor_del(mc, 0), 0);
    mdb_cursor_close(mc);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(m);
    r = dbt_runv(NULL, "check", path, "--json", NULL);
    cr_assert_neq(r.status, 0, "check passed a database with a chunk missing: %s", r.out);
    cr_assert(strstr(r.out, "chunk") != NULL, "%s", r.out);
    run_free(&r);
    rm_tree(dir);
    free(dir);
    free(in);
}

static void
expect_clean(const char *path, const char *when)
{
    run_result r = dbt_runv(NULL, "check", path, "--json", NULL);
    dbt_expect_ok(&r, when);
    cr_assert(strstr(r.out, "\"problems\": 0") != NULL, "%s: %s", when, r.out);
    run_free(&r);
}

/* dbtool alter drop-column of a column holding long values: check passes
 * after the drop, after a row is rewritten (dbtool update), after one is
 * deleted (drop-table). */
Test(longval_cli, drop_column_with_long_values_then_check, .timeout = 120)
{
    char path[256];
    char *in = rows();
    char *dir = dbt_make_db(path, sizeof path, SCHEMA, "t", in);
    run_result r = dbt_runv(NULL, "alter", path, "t", "drop-column", "b", NULL);
    dbt_expect_ok(&r, "alter drop-column");
    run_free(&r);
    expect_clean(path, "check after the drop");
    r = dbt_runv(NULL, "update", path, "t", "2", "--set", "x=short", NULL);
    dbt_expect_ok(&r, "update");
    run_free(&r);
    expect_clean(path, "check after a rewrite");
    r = dbt_runv(NULL, "drop-table", path, "t", NULL);
    dbt_expect_ok(&r, "drop-table");
    run_free(&r);
    expect_clean(path, "check after drop-table");
    rm_tree(dir);
    free(dir);
    free(in);
}

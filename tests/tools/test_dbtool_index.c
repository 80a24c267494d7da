/* test_dbtool_index.c: dbtool with the indexes of issue 14, driven as a user
 * would: create-table and schema with collation, condition and tuple fields
 * (round trip), scans through them, check's report of an index made with
 * another ICU collator version and reindex. */
#include "config.h"

#include <criterion/criterion.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbtool_run.h"

static const char *SCHEMA =
    "{\"name\": \"p\", \"columns\": ["
    "{\"name\": \"id\", \"type\": \"int32\", \"flags\": [\"notnull\"]},"
    "{\"name\": \"name\", \"type\": \"text\", \"collation\": \"en-u-ks-level2\"},"
    "{\"name\": \"body\", \"type\": \"text\"},"
    "{\"name\": \"gone\", \"type\": \"datetime\"},"
    "{\"name\": \"tags\", \"type\": \"text\", \"flags\": [\"multivalued\"]}],"
    "\"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]},"
    "{\"name\": \"by_name\", \"key\": [\"+name\"], \"flags\": [\"unique\"], \"condition\": \"!gone\"},"
    "{\"name\": \"sub\", \"key\": [\"+body\"], \"flags\": [\"tuples\"], \"tuple_min\": 2, \"tuple_max\": 5},"
    "{\"name\": \"by_tag\", \"key\": [\"+tags\"]}]}";

static const char *ROWS =
    "{\"id\": 1, \"name\": \"Bob\", \"body\": \"concatenate\", \"tags\": [\"a\", \"b\"]}\n"
    "{\"id\": 2, \"name\": \"alice\", \"body\": \"cat\", \"tags\": [\"b\"]}\n"
    "{\"id\": 3, \"name\": \"BOB\", \"gone\": \"2024-01-01T00:00:00Z\"}\n";

static char *
ids_of(const char *out)
{
    static char buf[128];
    size_t o = 0;
    buf[0] = '\0';
    for (const char *p = out; (p = strstr(p, "\"id\": ")) != NULL; p += 6)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%d", o ? "," : "", atoi(p + 6));
    return buf;
}

Test(dbtool_index, schema_round_trip_and_scans, .timeout = 60)
{
    char path[256], path2[256];
    char *dir = dbt_make_db(path, sizeof path, SCHEMA, "p", ROWS);
    run_result s1 = dbt_runv(NULL, "schema", path, "p", NULL);
    dbt_expect_ok(&s1, "schema");
    cr_assert(strstr(s1.out, "\"collation\": \"en-u-ks-level2\"") != NULL, "%s", s1.out);
    cr_assert(strstr(s1.out, "\"condition\": \"!gone\"") != NULL, "%s", s1.out);
    cr_assert(strstr(s1.out, "\"tuple_max\": 5") != NULL, "%s", s1.out);
    char *dir2 = dbt_make_db(path2, sizeof path2, s1.out, "p", "");
    run_result s2 = dbt_runv(NULL, "schema", path2, "p", NULL);
    dbt_expect_ok(&s2, "schema of the copy");
    cr_assert_str_eq(s1.out, s2.out);
    /* collated order; the soft-deleted row is not in by_name */
    run_result r = dbt_runv(NULL, "scan", path, "p", "--index", "by_name", NULL);
    dbt_expect_ok(&r, "scan by_name");
    cr_assert_str_eq(ids_of(r.out), "2,1");
    run_free(&r);
    /* one entry per value of the multi-valued column */
    r = dbt_runv(NULL, "scan", path, "p", "--index", "by_tag", "--from", "b", "--to", "b", NULL);
    dbt_expect_ok(&r, "scan by_tag");
    cr_assert_str_eq(ids_of(r.out), "1,2");
    run_free(&r);
    /* a case variant of a live name is a duplicate */
    r = dbt_runv("{\"id\": 4, \"name\": \"ALICE\"}\n", "import", path, "p", "-", NULL);
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "EDB_KEYDUP") != NULL, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "check", path, NULL);
    dbt_expect_ok(&r, "check");
    run_free(&r);
    run_free(&s1);
    run_free(&s2);
    rm_tree(dir);
    rm_tree(dir2);
    free(dir);
    free(dir2);
}

Test(dbtool_index, bad_new_fields_refused, .timeout = 60)
{
    char path[256];
    char *dir = dbt_make_db(path, sizeof path, SCHEMA, "p", "");
    const char *bad[] = {
        "{\"name\": \"t\", \"columns\": [{\"name\": \"a\", \"type\": \"text\", \"collation\": \"no such thing\"}]}",
        "{\"name\": \"t\", \"columns\": [{\"name\": \"a\", \"type\": \"text\", \"collation\": 3}]}",
        "{\"name\": \"t\", \"columns\": [{\"name\": \"a\", \"type\": \"text\"}], \"indexes\": "
        "[{\"name\": \"k\", \"key\": [\"+a\"], \"condition\": \"zz\"}]}",
        "{\"name\": \"t\", \"columns\": [{\"name\": \"a\", \"type\": \"text\"}], \"indexes\": "
        "[{\"name\": \"k\", \"key\": [\"+a\"], \"flags\": [\"tuples\"], \"tuple_min\": 9, \"tuple_max\": 2}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_result r = dbt_runv(bad[i], "create-table", path, "-", NULL);
        cr_assert_neq(r.status, 0, "case %zu", i);
        cr_assert(strstr(r.err, "EDB_INVAL") != NULL, "case %zu: %s", i, r.err);
        run_free(&r);
    }
    rm_tree(dir);
    free(dir);
}

Test(dbtool_index, check_reports_icu_version_reindex_fixes, .timeout = 60)
{
    char path[256];
    char *dir = dbt_make_db(path, sizeof path, SCHEMA, "p", ROWS);
    /* forge the collator version recorded for index 1 segment 0 (catalog.c,
     * extension record tag 2) as another ICU would have written it */
    MDB_env *m;
    MDB_txn *t;
    MDB_dbi cat;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 8), 0);
    /* not dbtool's 64 GiB map, which valgrind cannot reserve: LMDB grows a
     * smaller map to what the file uses */
    cr_assert_eq(mdb_env_set_mapsize(m, 64u << 20), 0);
    cr_assert_eq(mdb_env_open(m, path, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "edb.catalog", 0, &cat), 0);
    MDB_val k = { 2, "tp" }, v;
    cr_assert_eq(mdb_get(t, cat, &k, &v), 0);
    unsigned char blob[4096];
    cr_assert(v.mv_size <= sizeof blob);
    memcpy(blob, v.mv_data, v.mv_size);
    static const unsigned char rec[] = { 2, 1, 0, 0, 0, 5, 0, 0 };
    int done = 0;
    for (size_t i = 0; i + sizeof rec + 4 <= v.mv_size && !done; i++)
        if (memcmp(blob + i, rec, sizeof rec) == 0) {
            blob[i + sizeof rec] ^= 0x7F;
            done = 1;
        }
    cr_assert(done);
    v.mv_data = blob;
    cr_assert_eq(mdb_put(t, cat, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(t), 0);
    mdb_env_close(m);
    run_result r = dbt_runv(NULL, "check", path, NULL);
    cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
    cr_assert(strstr(r.out, "EDB_VERSION") != NULL && strstr(r.out, "reindex") != NULL &&
              strstr(r.out, "by_name") != NULL, "%s", r.out);
    run_free(&r);
    r = dbt_runv(NULL, "reindex", path, "p", "by_name", NULL);
    dbt_expect_ok(&r, "reindex");
    cr_assert(strstr(r.out, "2 entries") != NULL, "%s", r.out);
    run_free(&r);
    r = dbt_runv(NULL, "check", path, NULL);
    dbt_expect_ok(&r, "check after reindex");
    run_free(&r);
    r = dbt_runv(NULL, "reindex", path, "p", "nope", NULL);
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "EDB_NOTFOUND") != NULL, "%s", r.err);
    run_free(&r);
    rm_tree(dir);
    free(dir);
}

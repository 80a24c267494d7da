/* dbtool changing what it loaded (issue 14): update, drop-table, alter, import
 * --replace / --skip-duplicates and the duplicate-key message.  Every
 * command's success path, its errors and exit codes, and that a failure
 * changes nothing (the export before and after are the same bytes). */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbtool_run.h"

static const char *PKG_SCHEMA =
    "{\"name\": \"pkg\", \"columns\": [{\"name\": \"name\", \"type\": \"text\"},"
    " {\"name\": \"ver\", \"type\": \"text\"}, {\"name\": \"size\", \"type\": \"int64\"},"
    " {\"name\": \"tags\", \"type\": \"text\", \"flags\": [\"multivalued\"]},"
    " {\"name\": \"sum\", \"type\": \"text\"}],"
    " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+name\", \"+ver\"], \"flags\": [\"primary\"]},"
    " {\"name\": \"by_sum\", \"key\": [\"+sum\"], \"flags\": [\"unique\", \"ignore_null\"]}]}";

static const char *PKG_ROWS =
    "{\"name\": \"bash\", \"ver\": \"5.2\", \"size\": 100, \"sum\": \"s1\"}\n"
    "{\"name\": \"zsh\", \"ver\": \"1\", \"size\": 7, \"sum\": \"s2\"}\n"
    "{\"name\": \"vim\", \"ver\": \"9\", \"size\": 30}\n";

static char path[256];
static char *dir;

static void setup(void) { dir = dbt_make_db(path, sizeof path, PKG_SCHEMA, "pkg", PKG_ROWS); }
static void teardown(void) { rm_tree(dir); free(dir); }

TestSuite(dbtool_edit, .init = setup, .fini = teardown, .timeout = 60);

/* The table's rows as export prints them (malloc'd). */
static char *
export(const char *table)
{
    run_result r = dbt_runv(NULL, "export", path, table, NULL);
    dbt_expect_ok(&r, "export");
    char *out = r.out;
    r.out = NULL;
    run_free(&r);
    return out;
}

static char *
schema(const char *table)
{
    run_result r = dbt_runv(NULL, "schema", path, table, NULL);
    dbt_expect_ok(&r, "schema");
    char *out = r.out;
    r.out = NULL;
    run_free(&r);
    return out;
}

/* Run, expect exit status 1 with @code in stderr, and nothing changed. */
static void
expect_fail(const char *code, const char *needle, const char *const *argv)
{
    char *before = export("pkg"), *sb = schema("pkg");
    run_result r = dbt_run(NULL, argv);
    cr_assert_eq(r.status, 1, "%s %s: status %d, stderr %s", argv[0], argv[3] ? argv[3] : "", r.status, r.err);
    cr_assert(strstr(r.err, code) != NULL, "%s: want %s in: %s", argv[0], code, r.err);
    if (needle != NULL)
        cr_assert(strstr(r.err, needle) != NULL, "%s: want '%s' in: %s", argv[0], needle, r.err);
    run_free(&r);
    char *after = export("pkg"), *sa = schema("pkg");
    cr_assert_str_eq(after, before, "%s changed the rows", argv[0]);
    cr_assert_str_eq(sa, sb, "%s changed the schema", argv[0]);
    free(before);
    free(after);
    free(sb);
    free(sa);
}

#define FAILS(code, needle, ...) do { const char *const av__[] = { __VA_ARGS__, NULL }; \
        expect_fail(code, needle, av__); } while (0)

static void
ok(const char *what, const char *const *argv)
{
    run_result r = dbt_run(NULL, argv);
    dbt_expect_ok(&r, what);
    run_free(&r);
}

#define OKRUN(...) do { const char *const av__[] = { __VA_ARGS__, NULL }; ok(av__[0], av__); } while (0)

/* ------------------------------------------------------------------ update */

Test(dbtool_edit, update_sets_columns_in_one_row)
{
    OKRUN("update", path, "pkg", "bash", "5.2", "--set", "size=5", "tags=[\"a\", \"b\"]", "sum=new");
    run_result r = dbt_runv(NULL, "get", path, "pkg", "bash", "5.2", "--json", NULL);
    dbt_expect_ok(&r, "get");
    cr_assert_str_eq(r.out, "{\"name\": \"bash\", \"ver\": \"5.2\", \"size\": 5, \"tags\": [\"a\", \"b\"], "
                            "\"sum\": \"new\"}\n");
    run_free(&r);
    /* --set repeated, JSON null, a JSON string, text that is not JSON */
    OKRUN("update", path, "pkg", "zsh", "1", "--set", "sum=null", "--set", "tags=\"one\"", "--set",
          "size=8");
    r = dbt_runv(NULL, "get", path, "pkg", "zsh", "1", "--json", NULL);
    dbt_expect_ok(&r, "get");
    cr_assert_str_eq(r.out, "{\"name\": \"zsh\", \"ver\": \"1\", \"size\": 8, \"tags\": [\"one\"], \"sum\": null}\n");
    run_free(&r);
    /* a number given for a text column is its text */
    OKRUN("update", path, "pkg", "vim", "9", "--set", "sum=42");
    r = dbt_runv(NULL, "get", path, "pkg", "vim", "9", "--json", NULL);
    cr_assert(strstr(r.out, "\"sum\": \"42\"") != NULL, "%s", r.out);
    run_free(&r);
    /* the other rows are untouched */
    char *rows = export("pkg");
    cr_assert_eq(count_lines(rows), 3);
    cr_assert(strstr(rows, "\"name\": \"vim\", \"ver\": \"9\", \"size\": 30") != NULL, "%s", rows);
    free(rows);
}

Test(dbtool_edit, update_errors_change_nothing)
{
    FAILS("EDB_NOTFOUND", "no row with key (bash, 9.9)", "update", path, "pkg", "bash", "9.9", "--set", "size=1");
    FAILS("EDB_NOTFOUND", "no column 'nosuch'", "update", path, "pkg", "bash", "5.2", "--set", "nosuch=1");
    FAILS("EDB_INVAL", "'abc' is not an integer", "update", path, "pkg", "bash", "5.2", "--set", "sum=x",
          "size=abc");
    FAILS("EDB_TYPE", "not multi-valued", "update", path, "pkg", "bash", "5.2", "--set", "size=[1]");
    FAILS("EDB_KEYDUP", "by_sum", "update", path, "pkg", "bash", "5.2", "--set", "size=1", "sum=s2");
    FAILS("EDB_INVAL", "2 columns, 1 value", "update", path, "pkg", "bash", "--set", "size=1");
    FAILS("EDB_NOTFOUND", NULL, "update", path, "nosuch", "bash", "5.2", "--set", "size=1");
    /* usage errors: exit 2 */
    const char *const *cases[] = {
        (const char *const[]){ "update", path, "pkg", "bash", "5.2", NULL },
        (const char *const[]){ "update", path, "pkg", "bash", "5.2", "--set", NULL },
        (const char *const[]){ "update", path, "pkg", "--set", "size=1", NULL },
        (const char *const[]){ "update", path, "pkg", "bash", "5.2", "--set", "size=1", "size=2", NULL },
        (const char *const[]){ "update", path, "pkg", "bash", "5.2", "--bogus", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r = dbt_run(NULL, cases[i]);
        cr_assert_eq(r.status, 2, "case %zu: status %d (%s)", i, r.status, r.err);
        run_free(&r);
    }
    /* a bad --set form is an error, not a usage */
    FAILS("EDB_INVAL", "COLUMN=VALUE", "update", path, "pkg", "bash", "5.2", "--set", "size");
}

/* ------------------------------------------------------------------ drop-table, alter */

Test(dbtool_edit, drop_table)
{
    OKRUN("drop-table", path, "pkg");
    run_result r = dbt_runv(NULL, "tables", path, "--json", NULL);
    dbt_expect_ok(&r, "tables");
    cr_assert_str_eq(r.out, "");
    run_free(&r);
    r = dbt_runv(NULL, "drop-table", path, "pkg", NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "EDB_NOTFOUND") != NULL, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "drop-table", path, NULL);
    cr_assert_eq(r.status, 2);
    run_free(&r);
}

Test(dbtool_edit, alter_columns)
{
    /* add-column on a table with rows: they read the default */
    OKRUN("alter", path, "pkg", "add-column", "{\"name\": \"lic\", \"type\": \"text\", \"default\": \"GPL\"}");
    OKRUN("alter", path, "pkg", "add-column", "{\"name\": \"stars\", \"type\": \"int32\"}");
    run_result r = dbt_runv(NULL, "get", path, "pkg", "vim", "9", "--json", NULL);
    dbt_expect_ok(&r, "get");
    cr_assert_str_eq(r.out, "{\"name\": \"vim\", \"ver\": \"9\", \"size\": 30, \"tags\": [], \"sum\": null, "
                            "\"lic\": \"GPL\", \"stars\": null}\n");
    run_free(&r);
    /* rename-column, then drop-column: gone from the rows and the schema */
    OKRUN("alter", path, "pkg", "rename-column", "size", "bytes");
    OKRUN("alter", path, "pkg", "drop-column", "tags");
    r = dbt_runv(NULL, "get", path, "pkg", "vim", "9", "--json", NULL);
    cr_assert_str_eq(r.out, "{\"name\": \"vim\", \"ver\": \"9\", \"bytes\": 30, \"sum\": null, "
                            "\"lic\": \"GPL\", \"stars\": null}\n");
    run_free(&r);
    char *s = schema("pkg");
    cr_assert(strstr(s, "\"bytes\"") && !strstr(s, "\"size\"") && !strstr(s, "\"tags\""), "%s", s);
    free(s);
    /* a column of a dropped one's name is new: NULL in the old rows */
    OKRUN("alter", path, "pkg", "add-column", "{\"name\": \"tags\", \"type\": \"int64\"}");
    r = dbt_runv(NULL, "get", path, "pkg", "bash", "5.2", "--json", NULL);
    cr_assert(strstr(r.out, "\"tags\": null") != NULL, "%s", r.out);
    run_free(&r);
    /* update, export | import, check all work over the changed table */
    OKRUN("update", path, "pkg", "bash", "5.2", "--set", "tags=12", "bytes=1");
    char *rows = export("pkg"), *sch = schema("pkg");
    OKRUN("drop-table", path, "pkg");
    r = dbt_runv(sch, "create-table", path, "-", NULL);
    dbt_expect_ok(&r, "create-table from schema's output");
    run_free(&r);
    r = dbt_runv(rows, "import", path, "pkg", "-", NULL);
    dbt_expect_ok(&r, "import of export's output");
    run_free(&r);
    char *again = export("pkg");
    cr_assert_str_eq(again, rows);
    cr_assert(strstr(rows, "\"tags\": 12") != NULL, "%s", rows);
    free(again);
    free(rows);
    free(sch);
    r = dbt_runv(NULL, "check", path, NULL);
    dbt_expect_ok(&r, "check");
    run_free(&r);
}

Test(dbtool_edit, alter_errors_change_nothing)
{
    FAILS("EDB_INVAL", "NOT NULL column needs a default", "alter", path, "pkg", "add-column",
          "{\"name\": \"must\", \"type\": \"text\", \"flags\": [\"notnull\"]}");
    FAILS("EDB_EXISTS", "'size'", "alter", path, "pkg", "add-column", "{\"name\": \"size\", \"type\": \"text\"}");
    FAILS("EDB_INVAL", "unknown member", "alter", path, "pkg", "add-column", "{\"name\": \"x\", \"type\": \"text\", \"nope\": 1}");
    FAILS("EDB_INVAL", "malformed JSON", "alter", path, "pkg", "add-column", "{\"name\": ");
    FAILS("EDB_COLUMN_IN_INDEX", "'pk'", "alter", path, "pkg", "drop-column", "name");
    FAILS("EDB_COLUMN_IN_INDEX", "'by_sum'", "alter", path, "pkg", "drop-column", "sum");
    FAILS("EDB_NOTFOUND", NULL, "alter", path, "pkg", "drop-column", "nosuch");
    FAILS("EDB_EXISTS", NULL, "alter", path, "pkg", "rename-column", "size", "ver");
    FAILS("EDB_INVAL", "bad column name", "alter", path, "pkg", "rename-column", "size", "9x");
    OKRUN("update", path, "pkg", "vim", "9", "--set", "size=7");     /* as zsh's */
    FAILS("EDB_KEYDUP", "unique index 'u'", "alter", path, "pkg", "add-index",
          "{\"name\": \"u\", \"key\": [\"+size\"], \"flags\": [\"unique\"]}");
    FAILS("EDB_INVAL", "primary", "alter", path, "pkg", "add-index",
          "{\"name\": \"p2\", \"key\": [\"+size\"], \"flags\": [\"primary\"]}");
    FAILS("EDB_INVAL", "unknown key column", "alter", path, "pkg", "add-index", "{\"name\": \"i\", \"key\": [\"+zz\"]}");
    FAILS("EDB_NOTFOUND", NULL, "alter", path, "pkg", "drop-index", "nosuch");
    FAILS("EDB_INVAL", "primary index", "alter", path, "pkg", "drop-index", "pk");
    FAILS("EDB_INVAL", NULL, "alter", path, "pkg", "rename", "bad-name");
    FAILS("EDB_NOTFOUND", NULL, "alter", path, "nosuch", "rename", "x");
    const char *const *cases[] = {
        (const char *const[]){ "alter", path, "pkg", NULL },
        (const char *const[]){ "alter", path, "pkg", "explode", NULL },
        (const char *const[]){ "alter", path, "pkg", "rename", NULL },
        (const char *const[]){ "alter", path, "pkg", "rename-column", "size", NULL },
        (const char *const[]){ "alter", path, "pkg", "drop-index", "a", "b", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r = dbt_run(NULL, cases[i]);
        cr_assert_eq(r.status, 2, "case %zu: status %d (%s)", i, r.status, r.err);
        run_free(&r);
    }
}

Test(dbtool_edit, alter_indexes_and_rename)
{
    OKRUN("alter", path, "pkg", "add-index", "{\"name\": \"by_size\", \"key\": [\"-size\"]}");
    run_result r = dbt_runv(NULL, "scan", path, "pkg", "--index", "by_size", "--json", NULL);
    dbt_expect_ok(&r, "scan");
    cr_assert(strstr(r.out, "bash") < strstr(r.out, "vim") && strstr(r.out, "vim") < strstr(r.out, "zsh"),
              "%s", r.out);
    run_free(&r);
    OKRUN("alter", path, "pkg", "drop-index", "by_sum");
    OKRUN("alter", path, "pkg", "rename", "packages");
    r = dbt_runv(NULL, "alter", path, "pkg", "rename", "x", NULL);
    cr_assert(r.status == 1 && strstr(r.err, "EDB_NOTFOUND") != NULL, "%d %s", r.status, r.err);
    run_free(&r);
    char *s = schema("packages");
    cr_assert(strstr(s, "\"name\": \"packages\"") && strstr(s, "by_size") && !strstr(s, "by_sum"), "%s", s);
    free(s);
    r = dbt_runv(NULL, "get", path, "packages", "zsh", "1", "--json", NULL);
    dbt_expect_ok(&r, "get");
    run_free(&r);
    r = dbt_runv(NULL, "check", path, NULL);
    dbt_expect_ok(&r, "check");
    run_free(&r);
}

/* ------------------------------------------------------------------ import */

static const char *DUP_ROWS =
    "{\"name\": \"a\", \"ver\": \"1\", \"size\": 1}\n"
    "{\"name\": \"bash\", \"ver\": \"5.2\", \"size\": 200}\n"
    "{\"name\": \"b\", \"ver\": \"1\", \"size\": 2}\n";

Test(dbtool_edit, import_duplicate_names_the_key_and_rolls_back)
{
    char file[300];
    snprintf(file, sizeof file, "%s/dup.jsonl", dir);
    write_file(file, DUP_ROWS);
    FAILS("EDB_KEYDUP", "line 2: duplicate key (\"bash\", \"5.2\") in primary index 'pk'", "import", path, "pkg",
          file);
    /* the same from CSV */
    snprintf(file, sizeof file, "%s/dup.csv", dir);
    write_file(file, "name,ver,size\nq,1,2\nzsh,1,9\n");
    FAILS("EDB_KEYDUP", "line 3: duplicate key (\"zsh\", \"1\") in primary index 'pk'", "import", path, "pkg",
          file, "--csv");
    /* a taken key of a unique secondary index: named too, and not replaced */
    snprintf(file, sizeof file, "%s/u.jsonl", dir);
    write_file(file, "{\"name\": \"new\", \"ver\": \"1\", \"sum\": \"s1\"}\n");
    FAILS("EDB_KEYDUP", "line 1: duplicate key (\"s1\") in unique index 'by_sum'", "import", path, "pkg", file,
          "--replace");
    run_result r = dbt_runv(NULL, "import", path, "pkg", file, "--replace", "--skip-duplicates", NULL);
    cr_assert_eq(r.status, 2);
    run_free(&r);
}

Test(dbtool_edit, import_replace_and_skip)
{
    char file[300];
    snprintf(file, sizeof file, "%s/dup.jsonl", dir);
    write_file(file, DUP_ROWS);
    run_result r = dbt_runv(NULL, "import", path, "pkg", file, "--skip-duplicates", NULL);
    dbt_expect_ok(&r, "import --skip-duplicates");
    cr_assert(strstr(r.err, "2 rows written, 0 of them replacing") && strstr(r.err, "1 rows skipped"), "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "get", path, "pkg", "bash", "5.2", "--json", NULL);
    cr_assert(strstr(r.out, "\"size\": 100") != NULL, "kept the old row: %s", r.out);
    run_free(&r);
    /* replace: the row of the same key is the new one, whole (its sum is gone) */
    write_file(file, "{\"name\": \"bash\", \"ver\": \"5.2\", \"size\": 300, \"tags\": [\"x\"]}\n"
                     "{\"name\": \"c\", \"ver\": \"1\"}\n"
                     "{\"name\": \"c\", \"ver\": \"1\", \"size\": 3}\n");
    r = dbt_runv(NULL, "import", path, "pkg", file, "--replace", "--batch", "2", NULL);
    dbt_expect_ok(&r, "import --replace");
    cr_assert(strstr(r.err, "3 rows written, 2 of them replacing") != NULL, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "get", path, "pkg", "bash", "5.2", "--json", NULL);
    cr_assert_str_eq(r.out, "{\"name\": \"bash\", \"ver\": \"5.2\", \"size\": 300, \"tags\": [\"x\"], \"sum\": null}\n");
    run_free(&r);
    r = dbt_runv(NULL, "get", path, "pkg", "c", "1", "--json", NULL);
    cr_assert(strstr(r.out, "\"size\": 3") != NULL, "%s", r.out);
    run_free(&r);
    char *rows = export("pkg");
    cr_assert_eq(count_lines(rows), 6, "%s", rows);     /* 3 + a, b + c */
    free(rows);
    /* s1 is free again (the old bash row went): a new row may take it */
    r = dbt_runv("{\"name\": \"d\", \"ver\": \"1\", \"sum\": \"s1\"}\n", "import", path, "pkg", "-", NULL);
    dbt_expect_ok(&r, "import");
    run_free(&r);
    r = dbt_runv(NULL, "check", path, NULL);
    dbt_expect_ok(&r, "check");
    run_free(&r);
}

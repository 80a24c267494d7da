/* dbtool scan --columns and --prefix, count --prefix (issue #14): only the
 * columns named, in their order; the rows whose leading TEXT key column
 * starts with a string, forward and reversed, on ascending and descending
 * indexes; refusals that name the problem. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbtool_run.h"

static const char *SCHEMA =
    "{\"name\": \"w\", \"columns\": [{\"name\": \"id\", \"type\": \"int32\", \"flags\": [\"notnull\"]},"
    " {\"name\": \"word\", \"type\": \"text\"}, {\"name\": \"n\", \"type\": \"int64\"}],"
    " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]},"
    " {\"name\": \"by_word\", \"key\": [\"+word\", \"+id\"]}, {\"name\": \"down\", \"key\": [\"-word\"]}]}";

static const char *ROWS =
    "{\"id\": 1, \"word\": \"cat\", \"n\": 10}\n"
    "{\"id\": 2, \"word\": \"catalog\", \"n\": 20}\n"
    "{\"id\": 3, \"word\": \"ca\", \"n\": 30}\n"
    "{\"id\": 4, \"word\": \"cats\", \"n\": null}\n"
    "{\"id\": 5, \"word\": \"dog\", \"n\": 50}\n"
    "{\"id\": 6, \"word\": \"cau\", \"n\": 60}\n"
    "{\"id\": 7, \"word\": null, \"n\": 70}\n";

static char path[512];
static char *dir;

static void
setup(void)
{
    dir = dbt_make_db(path, sizeof path, SCHEMA, "w", ROWS);
}

static void
teardown(void)
{
    rm_tree(dir);
    free(dir);
}

TestSuite(dbtool_scan, .init = setup, .fini = teardown, .timeout = 60);

static void
expect_out(const char *want, const char *what, ...)
{
    const char *argv[24];
    va_list ap;
    va_start(ap, what);
    size_t n = 0;
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 23;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    run_result r = dbt_run(NULL, argv);
    dbt_expect_ok(&r, what);
    cr_assert_str_eq(r.out, want, "%s: got\n%s", what, r.out);
    run_free(&r);
}

Test(dbtool_scan, columns_in_the_order_given)
{
    expect_out("{\"n\": 10, \"word\": \"cat\"}\n{\"n\": 20, \"word\": \"catalog\"}\n", "columns",
               "scan", path, "w", "--columns", "n,word", "--limit", "2", "--json", NULL);
    expect_out("{\"id\": 7}\n{\"id\": 6}\n", "columns reversed", "scan", path, "w", "--columns", "id",
               "--reverse", "--limit", "2", "--json", NULL);
    /* with a range on an index */
    expect_out("{\"word\": \"ca\"}\n{\"word\": \"cat\"}\n", "columns and range", "scan", path, "w",
               "--index", "by_word", "--from", "a", "--to", "cat", "--columns", "word", "--json", NULL);
}

Test(dbtool_scan, columns_refused)
{
    run_result r = dbt_runv(NULL, "scan", path, "w", "--columns", "id,nope", NULL);
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "no column 'nope'") != NULL, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "scan", path, "w", "--columns", "id,id", NULL);
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "named twice") != NULL, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "scan", path, "w", "--columns", "", NULL);
    cr_assert_neq(r.status, 0);
    run_free(&r);
}

Test(dbtool_scan, prefix_forward_and_reverse)
{
    const char *fwd = "{\"id\": 1, \"word\": \"cat\"}\n{\"id\": 2, \"word\": \"catalog\"}\n"
                      "{\"id\": 4, \"word\": \"cats\"}\n";
    expect_out(fwd, "prefix", "scan", path, "w", "--index", "by_word", "--prefix", "cat",
               "--columns", "id,word", "--json", NULL);
    const char *rev = "{\"id\": 4, \"word\": \"cats\"}\n{\"id\": 2, \"word\": \"catalog\"}\n"
                      "{\"id\": 1, \"word\": \"cat\"}\n";
    expect_out(rev, "prefix reversed", "scan", path, "w", "--index", "by_word", "--prefix", "cat",
               "--columns", "id,word", "--reverse", "--json", NULL);
    /* a descending index lists them the other way */
    expect_out(rev, "prefix on -word", "scan", path, "w", "--index", "down", "--prefix", "cat",
               "--columns", "id,word", "--json", NULL);
    expect_out(fwd, "prefix on -word reversed", "scan", path, "w", "--index", "down", "--prefix",
               "cat", "--columns", "id,word", "--reverse", "--json", NULL);
    expect_out("{\"id\": 1}\n", "prefix limit", "scan", path, "w", "--index", "by_word", "--prefix",
               "cat", "--columns", "id", "--limit", "1", "--json", NULL);
    expect_out("", "no match", "scan", path, "w", "--index", "by_word", "--prefix", "cz", NULL);
    expect_out("", "no match reversed", "scan", path, "w", "--index", "by_word", "--prefix", "cz",
               "--reverse", NULL);
    expect_out("", "past every value", "scan", path, "w", "--index", "by_word", "--prefix", "\xc3\xbf",
               NULL);
}

Test(dbtool_scan, count_prefix)
{
    expect_out("3\n", "count cat", "count", path, "w", "--index", "by_word", "--prefix", "cat", NULL);
    expect_out("5\n", "count ca", "count", path, "w", "--index", "down", "--prefix", "ca", NULL);
    /* the empty prefix: every non-NULL word */
    expect_out("6\n", "count empty", "count", path, "w", "--index", "by_word", "--prefix", "", NULL);
    expect_out("0\n", "count none", "count", path, "w", "--index", "by_word", "--prefix", "x", NULL);
    /* ranges count the same as before */
    expect_out("3\n", "count range", "count", path, "w", "--from", "2", "--to", "4", NULL);
    expect_out("5\n", "count from", "count", path, "w", "--from", "3", NULL);
}

Test(dbtool_scan, prefix_refused)
{
    run_result r = dbt_runv(NULL, "scan", path, "w", "--prefix", "1", NULL);
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "first column is TEXT") != NULL, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "scan", path, "w", "--index", "by_word", "--prefix", "c", "--from", "a", NULL);
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "not with --from") != NULL, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "scan", path, "w", "--index", "by_word", "--prefix", "\xff", NULL);
    cr_assert_neq(r.status, 0, "invalid UTF-8 is no TEXT value");
    run_free(&r);
    r = dbt_runv(NULL, "help", "scan", NULL);
    dbt_expect_ok(&r, "help scan");
    cr_assert(strstr(r.out, "--prefix TEXT") != NULL && strstr(r.out, "--columns") != NULL, "%s", r.out);
    run_free(&r);
}

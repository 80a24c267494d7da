/*
 * dbtool import into an empty table, from a file and in one transaction,
 * drops the table's secondary indexes before the rows and creates them
 * again after them, sorted (tools/cmd_import.c, "Deferred indexes"): the
 * indexes' leaf pages are full (raw mdb_stat against the bytes of their
 * nodes; inserting in row order leaves about two-thirds), the rows, the
 * index order and `dbtool check` are as before; a row an index refuses (an
 * entry too long: EDB_TOOBIG; a key taken in a unique index: EDB_KEYDUP) is
 * still named by its line with nothing imported and the indexes kept, from a
 * file (the import runs again with the indexes) and from standard input
 * (never deferred); an import into a table that has rows keeps its indexes
 * live; every kind of index (collated, conditional tuples, multi-valued
 * descending) comes back with the same schema.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbtool_run.h"
#include "lmdb_pages.h"

static const char *SCHEMA =
    "{\"name\": \"t\", \"columns\": [{\"name\": \"id\", \"type\": \"int32\"}, {\"name\": \"name\", \"type\": \"text\"},"
    " {\"name\": \"code\", \"type\": \"int64\"}],"
    " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]},"
    " {\"name\": \"by_name\", \"key\": [\"+name\"]},"
    " {\"name\": \"by_code\", \"key\": [\"-code\"], \"flags\": [\"unique\"]}]}";

/* Rows first..first+n-1 in id order, names and codes (unique) in a
 * scrambled order; row @long_at (1-based line, 0: none) gets a name too long
 * for an index key, row @dup_at the code of the first row. */
static char *
rows(unsigned first, unsigned n, unsigned long_at, unsigned dup_at)
{
    char *s = malloc((size_t)n * 80 + 1000), *p = s;
    cr_assert_not_null(s);
    for (unsigned i = 0; i < n; i++) {
        unsigned id = first + i, scr = (unsigned)(((uint64_t)id * 2654435761u) % 1000003u);
        unsigned code = i + 1 == dup_at ? first * 7919u % 1000003u : id * 7919u % 1000003u;
        if (i + 1 == long_at) {
            p += sprintf(p, "{\"id\": %u, \"code\": %u, \"name\": \"", id, code);
            memset(p, 'x', 600);
            p += 600;
            p += sprintf(p, "\"}\n");
        } else {
            p += sprintf(p, "{\"id\": %u, \"code\": %u, \"name\": \"n%07u\"}\n", id, code, scr);
        }
    }
    *p = '\0';
    return s;
}

/* A new database with table t and no rows; returns its directory. */
static char *
empty_db(char *db, size_t cap)
{
    char *dir = tmpdir_new();
    snprintf(db, cap, "%s/db", dir);
    char schema[600];
    snprintf(schema, sizeof schema, "%s/schema.json", dir);
    write_file(schema, SCHEMA);
    run_result r = dbt_runv(NULL, "create", db, NULL);
    dbt_expect_ok(&r, "create");
    run_free(&r);
    r = dbt_runv(NULL, "create-table", db, schema, NULL);
    dbt_expect_ok(&r, "create-table");
    run_free(&r);
    return dir;
}

/* The names by_name gives, in its order, are sorted and @n. */
static void
expect_index_order(const char *db, size_t n)
{
    run_result r = dbt_runv(NULL, "scan", db, "t", "--index", "by_name", "--columns", "name", NULL);
    dbt_expect_ok(&r, "scan by_name");
    cr_assert_eq(count_lines(r.out), n);
    char *prev = NULL, *save = NULL;
    for (char *l = strtok_r(r.out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        cr_assert(prev == NULL || strcmp(prev, l) <= 0, "'%s' before '%s'", prev, l);
        prev = l;
    }
    run_free(&r);
    r = dbt_runv(NULL, "check", db, NULL);
    cr_assert_eq(r.status, 0, "check: %s%s", r.out, r.err);
    run_free(&r);
}

Test(import_defer, empty_table_gets_full_index_pages, .timeout = 120)
{
    char db[512], file[600];
    char *dir = empty_db(db, sizeof db);
    unsigned n = 20000;
    char *in = rows(1, n, 0, 0);
    snprintf(file, sizeof file, "%s/rows.jsonl", dir);
    write_file(file, in);
    run_result r = dbt_runv(NULL, "import", db, "t", file, NULL);
    dbt_expect_ok(&r, "import");
    run_free(&r);
    expect_index_order(db, n);
    uint64_t leaf, ideal, entries;
    test_lmdb_pages(db, "edb.index", &leaf, &ideal, &entries);
    cr_assert_eq(entries, 2 * (uint64_t)n);
    cr_assert_leq(leaf, ideal + ideal / 20 + 2, "by_name, by_code: %llu leaf pages for %llu pages of nodes",
                  (unsigned long long)leaf, (unsigned long long)ideal);
    /* Into a table with rows, the indexes stay live: the same rows and order. */
    char *more = rows(n + 1, 2000, 0, 0);
    write_file(file, more);
    r = dbt_runv(NULL, "import", db, "t", file, NULL);
    dbt_expect_ok(&r, "second import");
    run_free(&r);
    expect_index_order(db, n + 2000);
    fprintf(stderr, "import_defer::empty_table_gets_full_index_pages: %u rows, two indexes: %llu leaf "
            "pages, %llu needed\n", n, (unsigned long long)leaf, (unsigned long long)ideal);
    free(more);
    free(in);
    rm_tree(dir);
    free(dir);
}

/* A row at @line that an index refuses with @code: named by its line, from
 * a file and from standard input, nothing imported, the indexes working. */
static void
refused_at(unsigned line, bool too_long, const char *code)
{
    char db[512], file[600];
    char *dir = empty_db(db, sizeof db);
    char *in = rows(1, 3000, too_long ? line : 0, too_long ? 0 : line);
    snprintf(file, sizeof file, "%s/rows.jsonl", dir);
    write_file(file, in);
    char want[40];
    snprintf(want, sizeof want, "line %u", line);
    /* from a file: deferred, the build fails, the import runs again */
    run_result r = dbt_runv(NULL, "import", db, "t", file, NULL);
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert(strstr(r.err, code) != NULL && strstr(r.err, want) != NULL &&
              strstr(r.err, "nothing was imported") != NULL, "%s", r.err);
    cr_assert_eq(count_lines(r.err), 1, "one message: %s", r.err);
    run_free(&r);
    /* from standard input: never deferred, the same message */
    r = dbt_runv(in, "import", db, "t", "-", NULL);
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert(strstr(r.err, code) != NULL && strstr(r.err, want) != NULL, "%s", r.err);
    run_free(&r);
    /* nothing imported, the indexes are still there and work */
    r = dbt_runv(NULL, "export", db, "t", NULL);
    dbt_expect_ok(&r, "export");
    cr_assert_eq(r.out_len, 0u, "%s", r.out);
    run_free(&r);
    char *good = rows(1, 500, 0, 0);
    write_file(file, good);
    r = dbt_runv(NULL, "import", db, "t", file, NULL);
    dbt_expect_ok(&r, "import after the failures");
    run_free(&r);
    expect_index_order(db, 500);
    r = dbt_runv(NULL, "get", db, "t", "1", NULL);
    dbt_expect_ok(&r, "get 1");
    run_free(&r);
    free(good);
    free(in);
    rm_tree(dir);
    free(dir);
}

Test(import_defer, too_long_entry_names_its_line, .timeout = 120)
{
    refused_at(2345, true, "EDB_TOOBIG");
}

Test(import_defer, unique_duplicate_names_its_line, .timeout = 120)
{
    refused_at(1777, false, "EDB_KEYDUP");
}

/* Every kind of secondary index survives being built after the rows: a
 * collated one (its collator version recorded), a conditional tuple index,
 * a multi-valued descending one with NULLs high; `dbtool schema` prints the
 * same table before and after, and check is clean. */
Test(import_defer, every_index_kind_comes_back_the_same, .timeout = 120)
{
    static const char *KINDS =
        "{\"name\": \"c\", \"columns\": [{\"name\": \"id\", \"type\": \"int32\"},"
        " {\"name\": \"name\", \"type\": \"text\", \"collation\": \"en-u-ks-level2\"},"
        " {\"name\": \"note\", \"type\": \"text\"}, {\"name\": \"tags\", \"type\": \"text\", \"flags\": [\"multivalued\"]}],"
        " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]},"
        " {\"name\": \"by_name\", \"key\": [\"+name\"], \"flags\": [\"ignore_null\"]},"
        " {\"name\": \"by_note\", \"key\": [\"+note\"], \"condition\": \"note\", \"flags\": [\"tuples\"],"
        " \"tuple_min\": 3, \"tuple_max\": 5},"
        " {\"name\": \"by_tag\", \"key\": [\"-tags\", \"+id\"], \"flags\": [\"sort_nulls_high\"]}]}";
    char *dir = tmpdir_new();
    char db[512], schema[600], file[600];
    snprintf(db, sizeof db, "%s/db", dir);
    snprintf(schema, sizeof schema, "%s/schema.json", dir);
    snprintf(file, sizeof file, "%s/rows.jsonl", dir);
    write_file(schema, KINDS);
    run_result r = dbt_runv(NULL, "create", db, NULL);
    dbt_expect_ok(&r, "create");
    run_free(&r);
    r = dbt_runv(NULL, "create-table", db, schema, NULL);
    dbt_expect_ok(&r, "create-table");
    run_free(&r);
    run_result before = dbt_runv(NULL, "schema", db, "c", NULL);
    dbt_expect_ok(&before, "schema");
    char *in = malloc(2000 * 120 + 1), *p = in;
    cr_assert_not_null(in);
    for (unsigned i = 1; i <= 2000; i++) {
        p += sprintf(p, "{\"id\": %u, \"name\": ", i);
        p += i % 5 ? sprintf(p, "\"Name%05u\"", (i * 7919u) % 2003u) : sprintf(p, "null");
        p += sprintf(p, ", \"note\": ");
        p += i % 3 ? sprintf(p, "\"hello world %u\"", i) : sprintf(p, "null");
        p += sprintf(p, ", \"tags\": [\"t%u\", \"u%u\"]}\n", i % 17, i % 5);
    }
    *p = '\0';
    write_file(file, in);
    r = dbt_runv(NULL, "import", db, "c", file, NULL);
    dbt_expect_ok(&r, "import");
    run_free(&r);
    run_result after = dbt_runv(NULL, "schema", db, "c", NULL);
    dbt_expect_ok(&after, "schema after");
    cr_assert_str_eq(after.out, before.out);
    r = dbt_runv(NULL, "check", db, NULL);
    cr_assert_eq(r.status, 0, "check: %s%s", r.out, r.err);
    run_free(&r);
    /* the case-insensitive index finds a differently cased name */
    r = dbt_runv(NULL, "scan", db, "c", "--index", "by_name", "--from", "NAME00001", "--to", "name00001",
                 "--columns", "id", NULL);
    dbt_expect_ok(&r, "scan by_name");
    cr_assert_eq(count_lines(r.out), 1, "%s", r.out);
    run_free(&r);
    run_free(&before);
    run_free(&after);
    free(in);
    rm_tree(dir);
    free(dir);
}

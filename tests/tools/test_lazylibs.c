/* test_lazylibs.c: dbtool loads libcurl and ICU only when a command needs
 * them (issue 12): glibc's LD_DEBUG=files names every object the dynamic
 * loader maps, and how ("needed by" at start-up, "dynamically loaded by" for
 * a dlopen).  The start-up and the commands on a plain database or archive map
 * neither; a database with a collated column loads ICU when it is checked.
 * (An s3:// command loading libcurl is in test_s3.c, beside its servers.) */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbtool_run.h"

/* dbtool @args with LD_DEBUG=files; must exit 0. */
static run_result
traced(const char *what, const char *const *args)
{
    setenv("LD_DEBUG", "files", 1);
    run_result r = dbt_run(NULL, args);
    unsetenv("LD_DEBUG");
    dbt_expect_ok(&r, what);
    /* the trace is there (it names libedb), so its silence below means something */
    cr_assert(strstr(r.err, "file=libedb.so") != NULL, "%s: no LD_DEBUG trace: %s", what, r.err);
    return r;
}

/* The trace's line that maps @lib ("file=<lib>..."), or NULL. */
static const char *
mapping(const run_result *r, const char *lib)
{
    char pat[128];
    snprintf(pat, sizeof pat, "file=%s", lib);
    return strstr(r->err, pat);
}

static void
expect_neither(const run_result *r, const char *what)
{
    const char *c = mapping(r, "libcurl"), *i = mapping(r, "libicu");
    cr_assert_null(c, "%s mapped libcurl: %.200s", what, c);
    cr_assert_null(i, "%s mapped ICU: %.200s", what, i);
}

/* @lib is mapped, by a dlopen (not at start-up). */
static void
expect_dlopened(const run_result *r, const char *lib, const char *what)
{
    const char *m = mapping(r, lib);
    cr_assert_not_null(m, "%s did not map %s", what, lib);
    const char *eol = strchr(m, '\n');
    size_t n = eol ? (size_t)(eol - m) : strlen(m);
    const char *how = strstr(m, "dynamically loaded by");
    cr_assert(how != NULL && (size_t)(how - m) < n, "%s: %s is not dlopen'd: %.*s", what, lib, (int)n, m);
}

Test(lazylibs, plain_commands_map_neither_curl_nor_icu, .timeout = 120)
{
    char db[300], arch[400], repo[400];
    char *rows = dbt_rows_json(0, 200, 20);
    char *dir = dbt_make_db(db, sizeof db, DBT_SCHEMA_ID_TEXT, "t", rows);
    free(rows);
    snprintf(arch, sizeof arch, "%s/a.edbk", dir);
    snprintf(repo, sizeof repo, "%s/repo", dir);

    const char *version[] = { "--version", NULL };
    run_result r = traced("--version", version);
    cr_assert(strstr(r.out, "dbtool") != NULL, "%s", r.out);
    expect_neither(&r, "--version");
    run_free(&r);

    const char *backup[] = { "backup", db, arch, "--quiet", NULL };
    r = traced("backup", backup);
    expect_neither(&r, "backup DB FILE");
    run_free(&r);

    const char *verify[] = { "verify", arch, NULL };
    r = traced("verify", verify);
    cr_assert(strstr(r.out, "ok: 1 archive") != NULL, "%s", r.out);
    expect_neither(&r, "verify");
    run_free(&r);

    const char *deep[] = { "verify", "--deep", arch, NULL };
    r = traced("verify --deep", deep);
    expect_neither(&r, "verify --deep");
    run_free(&r);

    const char *torepo[] = { "backup", db, "--repo", repo, NULL };
    r = traced("backup --repo DIR", torepo);
    expect_neither(&r, "backup --repo DIR");
    run_free(&r);

    const char *scan[] = { "check", db, NULL };
    r = traced("check", scan);
    expect_neither(&r, "check of a database without collation");
    run_free(&r);

    rm_tree(dir);
    free(dir);
}

static const char *COLL_SCHEMA =
    "{\"name\": \"p\", \"columns\": ["
    "{\"name\": \"id\", \"type\": \"int32\", \"flags\": [\"notnull\"]},"
    "{\"name\": \"name\", \"type\": \"text\", \"collation\": \"en-u-ks-level2\"}],"
    "\"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]},"
    "{\"name\": \"by_name\", \"key\": [\"+name\"], \"flags\": [\"unique\"]}]}";

/* A database with a collated index: check loads ICU (with dlopen) and finds
 * the index sound; a scan through the index has the collation's order. */
Test(lazylibs, collated_database_loads_icu_when_used, .timeout = 120)
{
    char db[300];
    char *dir = dbt_make_db(db, sizeof db, COLL_SCHEMA, "p",
                            "{\"id\": 1, \"name\": \"b\"}\n{\"id\": 2, \"name\": \"A\"}\n"
                            "{\"id\": 3, \"name\": \"C\"}\n");
    const char *check[] = { "check", db, NULL };
    run_result r = traced("check", check);
    expect_dlopened(&r, "libicui18n", "check of a collated database");
    expect_dlopened(&r, "libicuuc", "check of a collated database");
    cr_assert_null(mapping(&r, "libcurl"), "check mapped libcurl");
    run_free(&r);

    /* a duplicate under the collation ("a" is "A" at level 2) is refused */
    r = dbt_runv("{\"id\": 4, \"name\": \"a\"}\n", "import", db, "p", "-", NULL);
    cr_assert_neq(r.status, 0, "a case variant was imported into a unique level-2 index: %s", r.out);
    cr_assert(strstr(r.err, "EDB_KEYDUP") != NULL, "%s", r.err);
    run_free(&r);

    rm_tree(dir);
    free(dir);
}

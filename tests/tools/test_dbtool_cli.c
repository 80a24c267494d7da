/* dbtool driven as a user would: the built binary spawned with arguments and
 * stdin; its stdout, stderr and exit status checked.  Schema, import/export
 * round trips, bad input (nothing half-written), get/delete, scan and count. */
#include "config.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dbtool_run.h"

static const char *ALL_SCHEMA =
    "{\"name\": \"all\", \"columns\": ["
    "{\"name\": \"id\", \"type\": \"int64\", \"flags\": [\"notnull\"]},"
    "{\"name\": \"b\", \"type\": \"bool\"},"
    "{\"name\": \"i8\", \"type\": \"int8\"}, {\"name\": \"i16\", \"type\": \"int16\"},"
    "{\"name\": \"i32\", \"type\": \"int32\", \"default\": 7},"
    "{\"name\": \"u8\", \"type\": \"uint8\"}, {\"name\": \"u16\", \"type\": \"uint16\"},"
    "{\"name\": \"u32\", \"type\": \"uint32\"},"
    "{\"name\": \"u64\", \"type\": \"uint64\", \"default\": 18446744073709551615},"
    "{\"name\": \"f\", \"type\": \"float\"}, {\"name\": \"d\", \"type\": \"double\", \"default\": 0.1},"
    "{\"name\": \"dt\", \"type\": \"datetime\"}, {\"name\": \"g\", \"type\": \"guid\"},"
    "{\"name\": \"t\", \"type\": \"text\", \"max_size\": 20, \"default\": \"x\\\"y\"},"
    "{\"name\": \"bin\", \"type\": \"binary\", \"max_size\": 16},"
    "{\"name\": \"tags\", \"type\": \"text\", \"flags\": [\"multivalued\"]},"
    "{\"name\": \"cnt\", \"type\": \"int64\", \"flags\": [\"escrow\"], \"default\": 0}],"
    "\"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]},"
    "{\"name\": \"by_t\", \"key\": [\"+t\"], \"flags\": [\"unique\", \"ignore_null\"]},"
    "{\"name\": \"by_u64\", \"key\": [\"-u64\", \"+id\"]}]}";

static const char *ALL_ROWS =
    "{\"id\": 1, \"b\": true, \"i8\": -128, \"i16\": 32767, \"i32\": -2147483648, \"u8\": 255,"
    " \"u16\": 65535, \"u32\": 4294967295, \"u64\": 18446744073709551615, \"f\": 0.1,"
    " \"d\": 0.30000000000000004, \"dt\": \"2024-05-01T12:00:00.000001Z\","
    " \"g\": \"12345678-9abc-def0-0001-02030405feff\", \"t\": \"h\\u00e9llo, \\\"w\\\"\\n\","
    " \"bin\": \"AP8QgH8=\", \"tags\": [\"a\", \"b,c\"], \"cnt\": 5}\n"
    "{\"id\": -9223372036854775808, \"b\": false, \"d\": -1e-300, \"f\": \"Infinity\", \"tags\": [],"
    " \"dt\": \"1969-12-31T23:59:59.999999Z\", \"t\": \"\", \"bin\": \"\"}\n"
    "\n"
    "{\"id\": 9223372036854775807, \"u64\": 0, \"i32\": null, \"t\": null, \"d\": 1.7976931348623157e308}\n";

typedef struct db {
    char *dir;
    char path[256];
} db;

static db
db_new(void)
{
    db d;
    d.dir = tmpdir_new();
    snprintf(d.path, sizeof d.path, "%s/db", d.dir);
    run_result r = dbt_runv(NULL, "create", d.path, NULL);
    cr_assert_eq(r.status, 0, "create: %s", r.err);
    run_free(&r);
    return d;
}

static void
db_free(db *d)
{
    rm_tree(d->dir);
    free(d->dir);
}

static void
mktable(db *d, const char *schema)
{
    run_result r = dbt_runv(schema, "create-table", d->path, "-", NULL);
    cr_assert_eq(r.status, 0, "create-table: %s", r.err);
    run_free(&r);
}

static unsigned long long
count(db *d, const char *table)
{
    run_result r = dbt_runv(NULL, "count", d->path, table, NULL);
    cr_assert_eq(r.status, 0, "count: %s", r.err);
    unsigned long long n = strtoull(r.out, NULL, 10);
    run_free(&r);
    return n;
}

/* Run and expect failure status 1 with stderr matching "dbtool: " and needle(s). */
static void
expect_fail(run_result *r, const char *code, const char *needle)
{
    cr_assert_eq(r->status, 1, "exit %d, stderr: %s", r->status, r->err);
    cr_assert(strncmp(r->err, "dbtool: ", 8) == 0, "stderr: %s", r->err);
    cr_assert(strstr(r->err, code) != NULL, "want %s in: %s", code, r->err);
    if (needle)
        cr_assert(strstr(r->err, needle) != NULL, "want '%s' in: %s", needle, r->err);
    cr_assert_eq(count_lines(r->err), 1, "one line on stderr: %s", r->err);
}

Test(dbtool_cli, help_version_and_usage_errors, .timeout = 30)
{
    run_result r = dbt_runv(NULL, "--version", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "0.1.0") != NULL, "%s", r.out);
    run_free(&r);
    r = dbt_runv(NULL, "--help", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "import DB TABLE") != NULL);
    run_free(&r);
    run_result a = dbt_runv(NULL, "help", "import", NULL);
    run_result b = dbt_runv(NULL, "import", "--help", NULL);
    cr_assert_eq(a.status, 0);
    cr_assert_eq(b.status, 0);
    cr_assert_str_eq(a.out, b.out);
    cr_assert(strstr(a.out, "--batch") != NULL);
    run_free(&a);
    run_free(&b);
    const char *usage[][5] = {
        { NULL }, { "frobnicate", NULL }, { "scan", NULL }, { "scan", "x", NULL },
        { "import", "x", "t", NULL }, { "import", "x", "t", "-", "--batch" },
        { "scan", "x", "t", "--limit", "ten" }, { "export", "x", "t", "--format", "xml" },
        { "help", "frobnicate", NULL }, { "get", "x", "t", NULL },
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        const char *argv[6] = { 0 };
        memcpy(argv, usage[i], sizeof usage[i]);
        r = dbt_run(NULL, argv);
        cr_assert_eq(r.status, 2, "case %zu: exit %d: %s", i, r.status, r.err);
        cr_assert(strncmp(r.err, "dbtool", 6) == 0 || strncmp(r.err, "usage", 5) == 0, "%s", r.err);
        run_free(&r);
    }
}

/* Does the man page hold `line` as one of its lines (troff escapes undone)? */
static bool
man_has_line(const char *man, const char *line)
{
    for (const char *p = man; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char buf[1024];
        size_t k = 0;
        for (size_t i = 0; i < n && k + 1 < sizeof buf; i++) {
            if (p[i] == '\\' && i + 1 < n && p[i + 1] == '-') {
                buf[k++] = '-';
                i++;
            } else if (p[i] == '\\' && i + 1 < n && p[i + 1] == 'e') {
                buf[k++] = '\\';
                i++;
            } else if (p[i] == '\\' && i + 1 < n && p[i + 1] == '&') {
                i++;
            } else {
                buf[k++] = p[i];
            }
        }
        buf[k] = '\0';
        if (strcmp(buf, line) == 0)
            return true;
        p = e ? e + 1 : p + n;
    }
    return false;
}

Test(dbtool_cli, help_texts_are_the_man_page, .timeout = 60)
{
    const char *src = getenv("top_srcdir");
    char path[4096];
    snprintf(path, sizeof path, "%s/doc/dbtool.1", src ? src : "..");
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    static char man[200000];
    size_t n = fread(man, 1, sizeof man - 1, f);
    man[n] = '\0';
    fclose(f);
    run_result all = dbt_runv(NULL, "--help", NULL);
    const char *p = strstr(all.out, "commands:\n");
    cr_assert_not_null(p);
    int ncmd = 0;
    for (p += 10; strncmp(p, "  ", 2) == 0; p = strchr(p, '\n') + 1) {
        char name[64];
        sscanf(p + 2, "%63s", name);
        run_result h = dbt_runv(NULL, "help", name, NULL);
        cr_assert_eq(h.status, 0, "help %s", name);
        char syn[2048];
        snprintf(syn, sizeof syn, ".B dbtool %.*s", (int)(strchr(h.out, '\n') - h.out - 14), h.out + 14);
        cr_assert(man_has_line(man, syn), "man page lacks the synopsis: %s", syn);
        for (char *l = strstr(h.out, "\n\n") + 2; *l;) {
            char *e = strchr(l, '\n');
            *e = '\0';
            cr_assert(man_has_line(man, l), "dbtool.1 lacks the line of 'help %s': %s", name, l);
            l = e + 1;
        }
        run_free(&h);
        ncmd++;
    }
    cr_assert_geq(ncmd, 13);
    run_free(&all);
}

Test(dbtool_cli, missing_database_is_reported_and_not_created, .timeout = 30)
{
    char *dir = tmpdir_new();
    char path[256];
    snprintf(path, sizeof path, "%s/nothere", dir);
    const char *cmds[] = { "tables", "stat", "check" };
    for (size_t i = 0; i < 3; i++) {
        run_result r = dbt_runv(NULL, cmds[i], path, NULL);
        expect_fail(&r, "EDB_NOTFOUND", path);
        run_free(&r);
    }
    run_result r = dbt_runv("{}\n", "import", path, "t", "-", NULL);
    expect_fail(&r, "EDB_NOTFOUND", "no database");
    run_free(&r);
    struct stat sb;
    cr_assert_neq(stat(path, &sb), 0, "a failed command created the database directory");
    r = dbt_runv(NULL, "create", path, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "create", path, NULL);
    expect_fail(&r, "EDB_EXISTS", NULL);
    run_free(&r);
    rm_tree(dir);
    free(dir);
}

Test(dbtool_cli, schema_round_trips_through_create_table, .timeout = 60)
{
    db a = db_new(), b = db_new();
    mktable(&a, ALL_SCHEMA);
    run_result s1 = dbt_runv(NULL, "schema", a.path, "all", NULL);
    cr_assert_eq(s1.status, 0, "%s", s1.err);
    cr_assert(strstr(s1.out, "18446744073709551615") != NULL, "uint64 default kept: %s", s1.out);
    cr_assert(strstr(s1.out, "\"ignore_null\"") != NULL && strstr(s1.out, "\"max_size\": 20") != NULL);
    mktable(&b, s1.out);
    run_result s2 = dbt_runv(NULL, "schema", b.path, "all", NULL);
    cr_assert_eq(s2.status, 0, "%s", s2.err);
    cr_assert_str_eq(s1.out, s2.out);
    run_result t = dbt_runv(NULL, "tables", b.path, NULL);
    cr_assert_eq(t.status, 0);
    cr_assert(strstr(t.out, "{\"name\": \"all\", \"rows\": 0}") != NULL, "%s", t.out);
    run_free(&s1);
    run_free(&s2);
    run_free(&t);
    db_free(&a);
    db_free(&b);
}

Test(dbtool_cli, bad_schemas_are_refused, .timeout = 60)
{
    db a = db_new();
    struct { const char *doc, *code, *needle; } bad[] = {
        { "{\"name\": \"t\", \"columns\": [{\"name\": \"a\", \"type\": \"int65\"}]}", "EDB_INVAL", "int65" },
        { "{\"name\": \"t\", \"columns\": [{\"name\": \"a\", \"type\": \"int32\", \"flags\": [\"nonull\"]}]}",
          "EDB_INVAL", "nonull" },
        { "{\"name\": \"t\", \"columns\": [{\"name\": \"a\", \"type\": \"int32\", \"size\": 3}]}", "EDB_INVAL", "size" },
        { "{\"name\": \"t\", \"columns\": [{\"name\": \"a\", \"type\": \"int32\"}", "EDB_INVAL", "line 1" },
        { "{\"name\": \"t\", \"columns\": [{\"name\": \"a\", \"type\": \"int8\", \"default\": 300}]}",
          "EDB_INVAL", "out of range" },
        { "{\"name\": \"t\", \"columns\": [{\"name\": \"a\", \"type\": \"int32\"}], \"indexes\": "
          "[{\"name\": \"k\", \"key\": [\"+b\"]}]}", "EDB_", "'t'" },
        { "[]", "EDB_INVAL", "object" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_result r = dbt_runv(bad[i].doc, "create-table", a.path, "-", NULL);
        expect_fail(&r, bad[i].code, bad[i].needle);
        run_free(&r);
    }
    run_result t = dbt_runv(NULL, "tables", a.path, NULL);
    cr_assert_eq(t.status, 0);
    cr_assert_str_eq(t.out, "", "no table was created: %s", t.out);
    run_free(&t);
    mktable(&a, "{\"name\": \"t\", \"columns\": [{\"name\": \"a\", \"type\": \"int32\"}]}");
    run_result r = dbt_runv("{\"name\": \"t\", \"columns\": [{\"name\": \"a\", \"type\": \"int32\"}]}",
                            "create-table", a.path, "-", NULL);
    expect_fail(&r, "EDB_EXISTS", NULL);
    run_free(&r);
    db_free(&a);
}

Test(dbtool_cli, export_import_round_trip_every_type, .timeout = 60)
{
    db a = db_new(), b = db_new();
    mktable(&a, ALL_SCHEMA);
    mktable(&b, ALL_SCHEMA);
    run_result r = dbt_runv(ALL_ROWS, "import", a.path, "all", "-", NULL);
    cr_assert_eq(r.status, 0, "import: %s", r.err);
    run_free(&r);
    cr_assert_eq(count(&a, "all"), 3);
    run_result e1 = dbt_runv(NULL, "export", a.path, "all", NULL);
    cr_assert_eq(e1.status, 0, "%s", e1.err);
    cr_assert_eq(count_lines(e1.out), 3);
    /* values exactly as DESIGN.md says */
    const char *want[] = {
        "\"id\": -9223372036854775808", "\"u64\": 18446744073709551615", "\"i8\": -128",
        "\"u32\": 4294967295", "\"d\": 0.30000000000000004", "\"f\": 0.1,",
        "\"dt\": \"2024-05-01T12:00:00.000001Z\"", "\"dt\": \"1969-12-31T23:59:59.999999Z\"",
        "\"g\": \"12345678-9abc-def0-0001-02030405feff\"", "\"bin\": \"AP8QgH8=\"",
        "\"tags\": [\"a\", \"b,c\"]", "\"t\": \"h\xc3\xa9llo, \\\"w\\\"\\n\"", "\"b\": true",
        "\"i32\": null", "\"i32\": 7", "\"f\": \"Infinity\"", "\"d\": 1.7976931348623157e+308",
        "\"cnt\": 5", "\"tags\": []",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(e1.out, want[i]) != NULL, "missing %s in:\n%s", want[i], e1.out);
    /* rows come out in primary-key order */
    cr_assert(strstr(e1.out, "-9223372036854775808") < strstr(e1.out, "\"id\": 1,"));
    r = dbt_runv(e1.out, "import", b.path, "all", "-", NULL);
    cr_assert_eq(r.status, 0, "re-import: %s", r.err);
    run_free(&r);
    run_result e2 = dbt_runv(NULL, "export", b.path, "all", NULL);
    cr_assert_str_eq(e1.out, e2.out);
    /* CSV: export, import into an empty table, same rows */
    db c = db_new();
    mktable(&c, ALL_SCHEMA);
    run_result csv = dbt_runv(NULL, "export", a.path, "all", "--format", "csv", NULL);
    cr_assert_eq(csv.status, 0, "%s", csv.err);
    cr_assert(strncmp(csv.out, "id,b,i8,", 8) == 0, "%s", csv.out);
    r = dbt_runv(csv.out, "import", c.path, "all", "-", "--csv", NULL);
    cr_assert_eq(r.status, 0, "csv import: %s\n%s", r.err, csv.out);
    run_free(&r);
    run_result e3 = dbt_runv(NULL, "export", c.path, "all", NULL);
    cr_assert_str_eq(e1.out, e3.out);
    /* export in an index order */
    run_result e4 = dbt_runv(NULL, "export", a.path, "all", "--index", "by_u64", NULL);
    cr_assert_eq(e4.status, 0, "%s", e4.err);
    cr_assert_eq(count_lines(e4.out), 3);
    cr_assert(strstr(e4.out, "18446744073709551615") < strstr(e4.out, "\"u64\": 0"), "descending u64:\n%s", e4.out);
    run_free(&e1);
    run_free(&e2);
    run_free(&e3);
    run_free(&e4);
    run_free(&csv);
    db_free(&a);
    db_free(&b);
    db_free(&c);
}

Test(dbtool_cli, bad_rows_import_nothing, .timeout = 120)
{
    db a = db_new();
    mktable(&a, ALL_SCHEMA);
    const char *ok = "{\"id\": 1}\n{\"id\": 2, \"t\": \"two\"}\n";
    struct { const char *in, *code, *needle; bool csv; } bad[] = {
        { "{\"id\": \"x\"}", "EDB_TYPE", "'id'", false },
        { "{\"id\": 3, \"i8\": 128}", "EDB_INVAL", "'i8'", false },
        { "{\"id\": 3, \"u8\": -1}", "EDB_INVAL", "'u8'", false },
        { "{\"id\": 3, \"t\": \"this text is longer than twenty bytes\"}", "EDB_TOOBIG", "'t'", false },
        { "{\"id\": 3, \"bin\": \"not base64!\"}", "EDB_INVAL", "'bin'", false },
        { "{\"id\": 3, \"g\": \"1234\"}", "EDB_INVAL", "'g'", false },
        { "{\"id\": 3, \"dt\": \"yesterday\"}", "EDB_INVAL", "'dt'", false },
        { "{\"id\": 3, \"nope\": 1}", "EDB_NOTFOUND", "'nope'", false },
        { "{\"id\": 3, \"b\": [true]}", "EDB_TYPE", "'b'", false },
        { "{\"id\": 3, \"t\": \"two\"}", "EDB_KEYDUP", "line 3", false },
        { "{\"id\": 1}", "EDB_KEYDUP", "line 3", false },
        { "{\"id\": 3", "EDB_INVAL", "malformed JSON", false },
        { "[1, 2]", "EDB_INVAL", "object", false },
        { "{\"t\": \"no id\"}", "EDB_NOTNULL", "line 3", false },
        { "id,t\n1,a\n2,b\n3,\"unterminated\n", "EDB_INVAL", "line 4", true },
        { "id,t\n1,a\n2,b\n3,c,d\n", "EDB_INVAL", "line 4", true },
        { "id,nope\n1,a\n", "EDB_NOTFOUND", "'nope'", true },
        { "id,t,i16\n1,a,5\n2,b,6\n3,c,70000\n", "EDB_INVAL", "'i16'", true },
        { "id,t\n1,a\n2,b\n3,x\"y\n", "EDB_INVAL", "line 4", true },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char in[1024];
        if (bad[i].csv)
            snprintf(in, sizeof in, "%s", bad[i].in);
        else
            snprintf(in, sizeof in, "%s%s\n{\"id\": 99}\n", ok, bad[i].in);
        run_result r = bad[i].csv ? dbt_runv(in, "import", a.path, "all", "-", "--csv", NULL)
                                  : dbt_runv(in, "import", a.path, "all", "-", NULL);
        expect_fail(&r, bad[i].code, bad[i].needle);
        if (!bad[i].csv)
            cr_assert(strstr(r.err, "line 3") != NULL, "case %zu names the line: %s", i, r.err);
        run_free(&r);
        cr_assert_eq(count(&a, "all"), 0, "case %zu left rows behind", i);
    }
    /* with --batch, the batches before the bad row stay */
    run_result r = dbt_runv("{\"id\": 1, \"t\": \"1\"}\n{\"id\": 2, \"t\": \"2\"}\n{\"id\": 3, \"t\": \"3\"}\n{\"id\": 4, \"t\": \"4\"}\n{\"id\": \"five\"}\n",
                            "import", a.path, "all", "-", "--batch", "2", NULL);
    expect_fail(&r, "EDB_TYPE", "line 5");
    cr_assert(strstr(r.err, "4 rows") != NULL, "%s", r.err);
    run_free(&r);
    cr_assert_eq(count(&a, "all"), 4);
    db_free(&a);
}

static const char *LOG_SCHEMA =
    "{\"name\": \"log\", \"columns\": [{\"name\": \"seq\", \"type\": \"int64\", \"flags\": [\"autoinc\"]},"
    "{\"name\": \"msg\", \"type\": \"text\"}], \"indexes\": [{\"name\": \"pk\", \"key\": [\"+seq\"],"
    " \"flags\": [\"primary\"]}]}";

static char *
export_of(db *d, const char *table, const char *format)
{
    run_result r = dbt_runv(NULL, "export", d->path, table, "--format", format, NULL);
    cr_assert_eq(r.status, 0, "export: %s", r.err);
    char *out = strdup(r.out);
    run_free(&r);
    return out;
}

Test(dbtool_cli, autoinc_values_are_kept, .timeout = 60)
{
    db a = db_new();
    mktable(&a, LOG_SCHEMA);
    /* given values are kept, missing ones are assigned after the largest so far */
    run_result r = dbt_runv("{\"msg\": \"a\"}\n{\"seq\": 7, \"msg\": \"b\"}\n{\"msg\": \"c\"}\n"
                            "{\"seq\": 3, \"msg\": \"d\"}\n{\"seq\": null, \"msg\": \"e\"}\n",
                            "import", a.path, "log", "-", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    char *out = export_of(&a, "log", "jsonl");
    cr_assert_str_eq(out, "{\"seq\": 1, \"msg\": \"a\"}\n{\"seq\": 3, \"msg\": \"d\"}\n"
                          "{\"seq\": 7, \"msg\": \"b\"}\n{\"seq\": 8, \"msg\": \"c\"}\n"
                          "{\"seq\": 9, \"msg\": \"e\"}\n");
    free(out);
    /* a taken id, 0 and a negative id are refused, and nothing of the file is imported */
    const char *bad[][2] = { { "{\"seq\": 20, \"msg\": \"ok\"}\n{\"seq\": 7, \"msg\": \"x\"}\n", "EDB_KEYDUP" },
                             { "{\"seq\": 20, \"msg\": \"ok\"}\n{\"seq\": 0, \"msg\": \"x\"}\n", "EDB_INVAL" },
                             { "{\"seq\": 20, \"msg\": \"ok\"}\n{\"seq\": -4, \"msg\": \"x\"}\n", "EDB_INVAL" } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = dbt_runv(bad[i][0], "import", a.path, "log", "-", NULL);
        expect_fail(&r, bad[i][1], "line 2");
        run_free(&r);
    }
    cr_assert_eq(count(&a, "log"), 5);
    /* the failed imports rolled the counter back with their rows: the next is 10 */
    r = dbt_runv("{\"msg\": \"f\"}\n", "import", a.path, "log", "-", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "get", a.path, "log", "10", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "{\"seq\": 10, \"msg\": \"f\"}\n");
    run_free(&r);
    db_free(&a);
}

/* export | import keeps every id when rows were deleted (gaps), in JSON lines
 * and CSV, in key order and in another index's order; later inserts go on
 * after the largest id. */
Test(dbtool_cli, autoinc_round_trip_with_gaps, .timeout = 120)
{
    db a = db_new();
    mktable(&a, "{\"name\": \"log\", \"columns\": [{\"name\": \"seq\", \"type\": \"int64\", \"flags\": [\"autoinc\"]},"
                "{\"name\": \"msg\", \"type\": \"text\"}], \"indexes\": [{\"name\": \"pk\", \"key\": [\"+seq\"],"
                " \"flags\": [\"primary\"]}, {\"name\": \"by_msg\", \"key\": [\"-msg\"]}]}");
    char rows[4096] = "";
    for (int i = 1; i <= 40; i++)
        snprintf(rows + strlen(rows), sizeof rows - strlen(rows), "{\"msg\": \"m%02d\"}\n", i);
    run_result r = dbt_runv(rows, "import", a.path, "log", "-", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    const char *gone[] = { "1", "2", "17", "18", "19", "33", "40" };   /* the largest id too */
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
        r = dbt_runv(NULL, "delete", a.path, "log", gone[i], NULL);
        cr_assert_eq(r.status, 0, "delete %s: %s", gone[i], r.err);
        run_free(&r);
    }
    r = dbt_runv(NULL, "schema", a.path, "log", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    char *schema = strdup(r.out);
    run_free(&r);
    const char *formats[] = { "jsonl", "csv" };
    for (int k = 0; k < 4; k++) {
        const char *fmt = formats[k % 2];
        bool by_msg = k >= 2;
        char *orig = export_of(&a, "log", fmt);
        run_result e = by_msg ? dbt_runv(NULL, "export", a.path, "log", "--format", fmt, "--index", "by_msg", NULL)
                              : dbt_runv(NULL, "export", a.path, "log", "--format", fmt, NULL);
        cr_assert_eq(e.status, 0, "%s", e.err);
        db b = db_new();
        mktable(&b, schema);
        r = k % 2 ? dbt_runv(e.out, "import", b.path, "log", "-", "--csv", NULL)
                  : dbt_runv(e.out, "import", b.path, "log", "-", NULL);
        cr_assert_eq(r.status, 0, "import %s%s: %s", fmt, by_msg ? " by_msg" : "", r.err);
        run_free(&r);
        run_free(&e);
        char *copy = export_of(&b, "log", fmt);
        cr_assert_str_eq(copy, orig, "%s%s: the round trip changed the rows", fmt, by_msg ? " by_msg" : "");
        cr_assert_eq(count(&b, "log"), 33);
        /* a new row continues after the largest id that was imported (39) */
        r = dbt_runv("{\"msg\": \"new\"}\n", "import", b.path, "log", "-", NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        run_free(&r);
        r = dbt_runv(NULL, "get", b.path, "log", "40", NULL);
        cr_assert_eq(r.status, 0, "%s: %s", fmt, r.err);
        cr_assert_str_eq(r.out, "{\"seq\": 40, \"msg\": \"new\"}\n");
        run_free(&r);
        free(copy);
        free(orig);
        db_free(&b);
    }
    free(schema);
    db_free(&a);
}

static const char *NUMS_SCHEMA =
    "{\"name\": \"nums\", \"columns\": [{\"name\": \"id\", \"type\": \"int32\"}, {\"name\": \"grp\", \"type\": \"text\"}],"
    " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]},"
    " {\"name\": \"by_grp\", \"key\": [\"+grp\", \"-id\"]}]}";

static db
nums_db(void)
{
    db a = db_new();
    mktable(&a, NUMS_SCHEMA);
    char *rows = malloc(100 * 40);
    rows[0] = '\0';
    for (int i = 1; i <= 100; i++)
        sprintf(rows + strlen(rows), "{\"id\": %d, \"grp\": \"g%d\"}\n", i, i % 5);
    run_result r = dbt_runv(rows, "import", a.path, "nums", "-", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    free(rows);
    return a;
}

/* The ids of JSON lines output, in order. */
static size_t
ids(const char *out, int *id, size_t cap)
{
    size_t n = 0;
    for (const char *p = out; *p && n < cap;) {
        const char *e = strchr(p, '\n');
        json_t *j = json_loadb(p, (size_t)(e - p), 0, NULL);
        cr_assert_not_null(j, "%.*s", (int)(e - p), p);
        id[n++] = (int)json_integer_value(json_object_get(j, "id"));
        json_decref(j);
        p = e + 1;
    }
    return n;
}

Test(dbtool_cli, scan_and_count_ranges, .timeout = 60)
{
    db a = nums_db();
    int id[200];
    run_result r = dbt_runv(NULL, "scan", a.path, "nums", "--from", "10", "--to", "20", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(ids(r.out, id, 200), 11);
    for (int i = 0; i < 11; i++)
        cr_assert_eq(id[i], 10 + i);
    run_free(&r);
    r = dbt_runv(NULL, "scan", a.path, "nums", "--from", "10", "--to", "20", "--reverse", NULL);
    cr_assert_eq(ids(r.out, id, 200), 11);
    for (int i = 0; i < 11; i++)
        cr_assert_eq(id[i], 20 - i);
    run_free(&r);
    r = dbt_runv(NULL, "scan", a.path, "nums", "--reverse", "--limit", "3", NULL);
    cr_assert_eq(ids(r.out, id, 200), 3);
    cr_assert(id[0] == 100 && id[1] == 99 && id[2] == 98);
    run_free(&r);
    r = dbt_runv(NULL, "scan", a.path, "nums", "--to", "-5", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(ids(r.out, id, 200), 0);
    run_free(&r);
    /* secondary index, prefix range: g2 holds 2, 7, ..., 97 in descending id order */
    r = dbt_runv(NULL, "scan", a.path, "nums", "--index", "by_grp", "--from", "g2", "--to", "g2", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(ids(r.out, id, 200), 20);
    cr_assert(id[0] == 97 && id[19] == 2, "%d %d", id[0], id[19]);
    run_free(&r);
    r = dbt_runv(NULL, "scan", a.path, "nums", "--index", "by_grp", "--from", "g2", "50", "--to", "g3", "--reverse", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    size_t n = ids(r.out, id, 200);
    cr_assert_eq(n, 20 + 10, "g3 all, g2 with id <= 50");
    cr_assert(id[0] == 3 && id[n - 1] == 47, "%d %d", id[0], id[n - 1]);
    run_free(&r);
    r = dbt_runv(NULL, "count", a.path, "nums", "--from", "10", "--to", "20", NULL);
    cr_assert_str_eq(r.out, "11\n");
    run_free(&r);
    r = dbt_runv(NULL, "count", a.path, "nums", "--index", "by_grp", "--from", "g0", "--to", "g1", NULL);
    cr_assert_str_eq(r.out, "40\n");
    run_free(&r);
    cr_assert_eq(count(&a, "nums"), 100);
    r = dbt_runv(NULL, "scan", a.path, "nums", "--index", "nope", NULL);
    expect_fail(&r, "EDB_NOTFOUND", "nope");
    run_free(&r);
    r = dbt_runv(NULL, "scan", a.path, "nope", NULL);
    expect_fail(&r, "EDB_NOTFOUND", "nope");
    run_free(&r);
    r = dbt_runv(NULL, "scan", a.path, "nums", "--from", "ten", NULL);
    expect_fail(&r, "EDB_INVAL", "'id'");
    run_free(&r);
    r = dbt_runv(NULL, "scan", a.path, "nums", "--from", "1", "2", NULL);
    expect_fail(&r, "EDB_INVAL", "1 key column");
    run_free(&r);
    db_free(&a);
}

Test(dbtool_cli, get_and_delete_by_primary_key, .timeout = 60)
{
    db a = nums_db();
    run_result r = dbt_runv(NULL, "get", a.path, "nums", "42", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "{\"id\": 42, \"grp\": \"g2\"}\n");
    run_free(&r);
    r = dbt_runv(NULL, "get", a.path, "nums", "4200", NULL);
    expect_fail(&r, "EDB_NOTFOUND", "4200");
    run_free(&r);
    r = dbt_runv(NULL, "get", a.path, "nums", "1", "2", NULL);
    expect_fail(&r, "EDB_INVAL", "1 column");
    run_free(&r);
    r = dbt_runv(NULL, "get", a.path, "nums", "99999999999", NULL);
    expect_fail(&r, "EDB_INVAL", "out of range");
    run_free(&r);
    r = dbt_runv(NULL, "delete", a.path, "nums", "42", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    cr_assert_eq(count(&a, "nums"), 99);
    r = dbt_runv(NULL, "delete", a.path, "nums", "42", NULL);
    expect_fail(&r, "EDB_NOTFOUND", "42");
    run_free(&r);
    r = dbt_runv(NULL, "count", a.path, "nums", "--index", "by_grp", "--from", "g2", "--to", "g2", NULL);
    cr_assert_str_eq(r.out, "19\n", "the index entry went with the row");
    run_free(&r);
    r = dbt_runv(NULL, "check", a.path, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    run_free(&r);
    db_free(&a);
}

Test(dbtool_cli, terminal_gets_aligned_tables, .timeout = 60)
{
    db a = nums_db();
    const char *scan[] = { "scan", a.path, "nums", "--from", "9", "--limit", "3", NULL };
    run_result r = dbt_run_tty(scan);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "id  grp\n"
                            "--  ---\n"
                            " 9  g4\n"
                            "10  g0\n"
                            "11  g1\n");
    run_free(&r);
    const char *json[] = { "scan", a.path, "nums", "--limit", "1", "--json", NULL };
    r = dbt_run_tty(json);
    cr_assert_str_eq(r.out, "{\"id\": 1, \"grp\": \"g1\"}\n");
    run_free(&r);
    const char *tables[] = { "tables", a.path, NULL };
    r = dbt_run_tty(tables);
    cr_assert(strstr(r.out, "table") == r.out && strstr(r.out, "nums") && strstr(r.out, " 100\n"), "%s", r.out);
    run_free(&r);
    const char *stat[] = { "stat", a.path, NULL };
    r = dbt_run_tty(stat);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "page size") && strstr(r.out, "by_grp") && strstr(r.out, "(records)"), "%s", r.out);
    run_free(&r);
    const char *check[] = { "check", a.path, NULL };
    r = dbt_run_tty(check);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "no problems found"), "%s", r.out);
    cr_assert_str_eq(r.err, "", "no progress for a small database");
    run_free(&r);
    db_free(&a);
}

/* Seeded garbage in both input formats: every run ends with status 0 or 1 and
 * at most one error line, never a crash, and the database stays consistent. */
Test(dbtool_cli, import_survives_garbage, .timeout = 120)
{
    db a = db_new();
    mktable(&a, NUMS_SCHEMA);
    static const char alphabet[] = "\"\",,,\n\r{}[]:0123456789-+.eE ga\\u\xc3\xa9tnrfl";
    unsigned seed = 42;
    for (int run = 0; run < 40; run++) {
        char in[300];
        size_t n = 0;
        bool csv = run % 2;
        const char *prefix = csv ? "id,grp\n" : "{\"id\": ";
        n = (size_t)snprintf(in, sizeof in, "%s", prefix);
        size_t len = 20 + run * 6;
        while (n < len && n + 1 < sizeof in) {
            seed = seed * 1103515245u + 12345u;
            in[n++] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        in[n] = '\0';
        run_result r = csv ? dbt_runv(in, "import", a.path, "nums", "-", "--csv", NULL)
                           : dbt_runv(in, "import", a.path, "nums", "-", NULL);
        cr_assert(r.status == 0 || r.status == 1, "run %d: status %d for input:\n%s\nstderr: %s", run, r.status, in, r.err);
        if (r.status == 1) {
            cr_assert(strncmp(r.err, "dbtool: import", 14) == 0, "run %d: %s", run, r.err);
            cr_assert_eq(count_lines(r.err), 1, "run %d: %s", run, r.err);
        }
        run_free(&r);
    }
    run_result r = dbt_runv(NULL, "check", a.path, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    run_free(&r);
    db_free(&a);
}

/* Issue 10, point 8: on a "-size" index, "the largest first" starts with the
 * largest sizes, not with the rows that have none (NULL sorts after every
 * value in a descending segment, as in ESE); the two new index flags go
 * through create-table and schema. */
Test(dbtool_cli, scan_desc_index_gives_the_largest_first, .timeout = 60)
{
    static const char *schema =
        "{\"name\": \"files\", \"columns\": [{\"name\": \"id\", \"type\": \"int32\"},"
        " {\"name\": \"size\", \"type\": \"int64\"}, {\"name\": \"owner\", \"type\": \"text\"}],"
        " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]},"
        " {\"name\": \"by_size\", \"key\": [\"-size\"]},"
        " {\"name\": \"by_size_hi\", \"key\": [\"+size\"], \"flags\": [\"sort_nulls_high\"]},"
        " {\"name\": \"by_owner_size\", \"key\": [\"+owner\", \"-size\"], \"flags\": [\"ignore_any_null\"]}]}";
    db a = db_new();
    mktable(&a, schema);
    /* ids 1..30: size id * 17 % 31 * 1000, every third row without a size,
     * every fourth without an owner */
    char rows[30 * 80] = "";
    for (int i = 1; i <= 30; i++) {
        char size[32] = "null", owner[16] = "null";
        if (i % 3 != 0)
            snprintf(size, sizeof size, "%d", i * 17 % 31 * 1000);
        if (i % 4 != 0)
            snprintf(owner, sizeof owner, "\"u%d\"", i % 2);
        sprintf(rows + strlen(rows), "{\"id\": %d, \"size\": %s, \"owner\": %s}\n", i, size, owner);
    }
    run_result r = dbt_runv(rows, "import", a.path, "files", "-", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    /* the five largest sizes: 30000 (id 20), 28000 (29), 26000 (7), 24000 (16), 23000 (5) */
    int id[64];
    r = dbt_runv(NULL, "scan", a.path, "files", "--index", "by_size", "--limit", "5", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(ids(r.out, id, 64), 5, "%s", r.out);
    static const int largest[] = { 20, 29, 7, 16, 5 };
    for (int i = 0; i < 5; i++)
        cr_assert_eq(id[i], largest[i], "row %d: id %d, want %d\n%s", i, id[i], largest[i], r.out);
    run_free(&r);
    /* all 30, the ten without a size last */
    r = dbt_runv(NULL, "scan", a.path, "files", "--index", "by_size", NULL);
    cr_assert_eq(ids(r.out, id, 64), 30);
    for (int i = 20; i < 30; i++)
        cr_assert_eq(id[i] % 3, 0, "row %d: id %d has a size", i, id[i]);
    run_free(&r);
    /* sort_nulls_high: ascending sizes, then the NULLs; --reverse gives the NULLs first */
    r = dbt_runv(NULL, "scan", a.path, "files", "--index", "by_size_hi", "--limit", "2", NULL);
    cr_assert_eq(ids(r.out, id, 64), 2);
    cr_assert(id[0] == 11 && id[1] == 22, "smallest sizes 1000 (id 11), 2000 (id 22): %d %d\n%s", id[0],
              id[1], r.out);
    run_free(&r);
    r = dbt_runv(NULL, "scan", a.path, "files", "--index", "by_size_hi", "--reverse", "--limit", "10", NULL);
    cr_assert_eq(ids(r.out, id, 64), 10);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(id[i] % 3, 0, "row %d: id %d has a size", i, id[i]);
    run_free(&r);
    /* ignore_any_null: only rows with an owner and a size (ids not divisible by 3 or 4) */
    r = dbt_runv(NULL, "count", a.path, "files", "--index", "by_owner_size", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "15\n");
    run_free(&r);
    r = dbt_runv(NULL, "scan", a.path, "files", "--index", "by_owner_size", "--from", "u1", "--limit", "1", NULL);
    cr_assert_eq(ids(r.out, id, 64), 1);
    cr_assert_eq(id[0], 29, "the largest size of u1 is id 29's 28000: %s", r.out);
    run_free(&r);
    /* the flags survive schema -> create-table */
    r = dbt_runv(NULL, "schema", a.path, "files", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"sort_nulls_high\"") != NULL && strstr(r.out, "\"ignore_any_null\"") != NULL,
              "%s", r.out);
    db b = db_new();
    mktable(&b, r.out);
    run_free(&r);
    r = dbt_runv(NULL, "check", a.path, NULL);
    cr_assert_eq(r.status, 0, "check: %s%s", r.out, r.err);
    run_free(&r);
    db_free(&a);
    db_free(&b);
}

/* Issue #10, point 10: a multi-valued column with no values is exported as
 * [] (it was null), so the column's JSON type is the same in every row and
 * export | import | export gives the same text. */
Test(dbtool_cli, export_writes_empty_multivalued_as_array, .timeout = 60)
{
    static const char *schema =
        "{\"name\": \"pkg\", \"columns\": [{\"name\": \"name\", \"type\": \"text\"},"
        "{\"name\": \"deps\", \"type\": \"text\", \"flags\": [\"multivalued\"]}],"
        " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+name\"], \"flags\": [\"primary\"]}]}";
    db a = db_new(), b = db_new();
    mktable(&a, schema);
    mktable(&b, schema);
    run_result r = dbt_runv("{\"name\": \"a\", \"deps\": [\"libc\", \"zlib\"]}\n"
                            "{\"name\": \"b\", \"deps\": []}\n"
                            "{\"name\": \"c\"}\n"
                            "{\"name\": \"d\", \"deps\": null}\n",
                            "import", a.path, "pkg", "-", NULL);
    cr_assert_eq(r.status, 0, "import: %s", r.err);
    run_free(&r);
    char *out = export_of(&a, "pkg", "jsonl");
    cr_assert_str_eq(out, "{\"name\": \"a\", \"deps\": [\"libc\", \"zlib\"]}\n"
                          "{\"name\": \"b\", \"deps\": []}\n"
                          "{\"name\": \"c\", \"deps\": []}\n"
                          "{\"name\": \"d\", \"deps\": []}\n");
    r = dbt_runv(NULL, "scan", a.path, "pkg", "--json", NULL);
    cr_assert_eq(r.status, 0, "scan: %s", r.err);
    cr_assert(strstr(r.out, "null") == NULL, "%s", r.out);
    run_free(&r);
    r = dbt_runv(out, "import", b.path, "pkg", "-", NULL);
    cr_assert_eq(r.status, 0, "re-import: %s", r.err);
    run_free(&r);
    char *again = export_of(&b, "pkg", "jsonl");
    cr_assert_str_eq(out, again);
    /* CSV keeps an empty cell for no values */
    char *csv = export_of(&a, "pkg", "csv");
    const char *cell = strstr(csv, "\"b\",");
    cr_assert(cell != NULL && (cell[4] == '\r' || cell[4] == '\n'), "%s", csv);
    free(csv);
    free(again);
    free(out);
    db_free(&a);
    db_free(&b);
}

/* export and scan read a row's columns with one edb_columns_get into
 * buffers kept across rows: a value longer than every earlier one (its
 * buffer grows and is read again), NULLs and long binary all come out as
 * they went in, and scan prints the same rows. */
Test(dbtool_cli, export_batch_read_grows_for_long_values, .timeout = 60)
{
    static const char *schema =
        "{\"name\": \"t\", \"columns\": [{\"name\": \"id\", \"type\": \"int64\"},"
        "{\"name\": \"s\", \"type\": \"text\"}, {\"name\": \"b\", \"type\": \"binary\"},"
        "{\"name\": \"m\", \"type\": \"text\", \"flags\": [\"multivalued\"]}],"
        " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]}]}";
    db a = db_new();
    mktable(&a, schema);
    char *in = calloc(1, 80000);
    cr_assert_not_null(in);
    for (int i = 1; i <= 6; i++) {
        size_t len = i == 3 ? 5000 : i == 5 ? 70 : (size_t)i;
        char *sv = malloc(len + 1);
        for (size_t k = 0; k < len; k++)
            sv[k] = (char)('a' + (k + (size_t)i) % 26);
        sv[len] = '\0';
        char row[12000];
        snprintf(row, sizeof row, "{\"id\": %d, \"s\": %s%s%s, \"b\": %s, \"m\": [\"x%d\", \"%s\"]}\n", i,
                 i == 4 ? "" : "\"", i == 4 ? "null" : sv, i == 4 ? "" : "\"",
                 i == 2 ? "\"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkrLw==\""
                        : "null", i, sv);
        strcat(in, row);
        free(sv);
    }
    run_result r = dbt_runv(in, "import", a.path, "t", "-", NULL);
    cr_assert_eq(r.status, 0, "import: %s", r.err);
    run_free(&r);
    char *out = export_of(&a, "t", "jsonl");
    cr_assert_str_eq(out, in);
    r = dbt_runv(NULL, "scan", a.path, "t", "--json", NULL);
    cr_assert_eq(r.status, 0, "scan: %s", r.err);
    cr_assert_str_eq(r.out, in);
    run_free(&r);
    free(out);
    free(in);
    db_free(&a);
}

/* import parses flat rows itself and hands the rest to jansson: rows of
 * both kinds in one file (escapes, \u escapes, booleans, integers into a
 * double, empty and null arrays, spacing) load to the same values, and the
 * errors still name the line and the column. */
Test(dbtool_cli, import_fast_and_jansson_rows_agree, .timeout = 60)
{
    static const char *schema =
        "{\"name\": \"t\", \"columns\": [{\"name\": \"id\", \"type\": \"int64\"},"
        "{\"name\": \"s\", \"type\": \"text\"}, {\"name\": \"n\", \"type\": \"int32\"},"
        "{\"name\": \"d\", \"type\": \"double\"},"
        "{\"name\": \"m\", \"type\": \"text\", \"flags\": [\"multivalued\"]},"
        "{\"name\": \"ts\", \"type\": \"datetime\"}, {\"name\": \"f\", \"type\": \"bool\"}],"
        " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]}]}";
    db a = db_new();
    mktable(&a, schema);
    run_result r = dbt_runv(
        "{\"id\": 1, \"s\": \"a\\\"b\\\\c\\/d\\n\\t\", \"n\": -5, \"m\": [\"x\", \"y\\\"z\"]}\n"
        "{ \"id\":2,\"s\":\"\\u00e9\",\"d\":3,\"ts\":\"2024-05-01T12:00:00.000000Z\",\"f\":true }\n"
        "{\"id\": 3, \"n\": 2147483647, \"d\": 1.5, \"m\": []}\n"
        "\t{\"id\": 4, \"s\": \"caf\xc3\xa9\", \"n\": null, \"m\": null, \"ts\": \"2024-05-02T00:00:00.000000Z\"}  \n"
        "{\"m\": [ \"p\" , \"q\" ], \"id\": -9000000000000000000}\n",
        "import", a.path, "t", "-", NULL);
    cr_assert_eq(r.status, 0, "import: %s", r.err);
    run_free(&r);
    char *out = export_of(&a, "t", "jsonl");
    cr_assert_str_eq(out,
        "{\"id\": -9000000000000000000, \"s\": null, \"n\": null, \"d\": null, \"m\": [\"p\", \"q\"], \"ts\": null, \"f\": null}\n"
        "{\"id\": 1, \"s\": \"a\\\"b\\\\c/d\\n\\t\", \"n\": -5, \"d\": null, \"m\": [\"x\", \"y\\\"z\"], \"ts\": null, \"f\": null}\n"
        "{\"id\": 2, \"s\": \"\xc3\xa9\", \"n\": null, \"d\": 3.0, \"m\": [], \"ts\": \"2024-05-01T12:00:00.000000Z\", \"f\": true}\n"
        "{\"id\": 3, \"s\": null, \"n\": 2147483647, \"d\": 1.5, \"m\": [], \"ts\": null, \"f\": null}\n"
        "{\"id\": 4, \"s\": \"caf\xc3\xa9\", \"n\": null, \"d\": null, \"m\": [], \"ts\": \"2024-05-02T00:00:00.000000Z\", \"f\": null}\n");
    free(out);
    static const struct { const char *in, *want; } bad[] = {
        { "{\"id\": 5, \"id\": 6}\n", "duplicate" },
        { "{\"id\": 07}\n", "malformed JSON" },
        { "{\"id\": 8, \"n\": 2147483648}\n", "column 'n'" },
        { "{\"id\": 9, \"nope\": 1}\n", "no column 'nope'" },
        { "{\"id\": 10, \"s\": 5}\n", "column 's'" },
        { "{\"id\": 11, \"s\": \"\xff\"}\n", "line 2" },
        { "{\"id\": 12, \"s\": \"x\" \"y\"}\n", "malformed JSON" },
        { "{\"id\": 13, \"ts\": \"yesterday\"}\n", "column 'ts'" },
        { "{\"id\": 14, \"n\": [1]}\n", "not multi-valued" },
        { "{\"id\": 15, \"m\": [\"a\", null]}\n", "null inside an array" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char in[256];
        snprintf(in, sizeof in, "{\"id\": 100}\n%s", bad[i].in);
        r = dbt_runv(in, "import", a.path, "t", "-", NULL);
        cr_assert_neq(r.status, 0, "%s", bad[i].in);
        cr_assert(strstr(r.err, bad[i].want) != NULL && strstr(r.err, "line 2") != NULL &&
                  strstr(r.err, "nothing was imported") != NULL, "%s: %s", bad[i].in, r.err);
        run_free(&r);
    }
    r = dbt_runv(NULL, "count", a.path, "t", NULL);
    cr_assert_str_eq(r.out, "5\n", "a failed import left nothing");
    run_free(&r);
    db_free(&a);
}

/* Reals in import's own parser: the stored double is the one jansson would
 * have given (strtod of the same text), integers written as reals still go
 * to integer columns, and an overflowing real is still refused. */
Test(dbtool_cli, import_fast_path_reals, .timeout = 60)
{
    static const char *schema =
        "{\"name\": \"t\", \"columns\": [{\"name\": \"id\", \"type\": \"int64\"},"
        "{\"name\": \"d\", \"type\": \"double\"}, {\"name\": \"f\", \"type\": \"float\"},"
        "{\"name\": \"n\", \"type\": \"int32\"}],"
        " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]}]}";
    db a = db_new();
    mktable(&a, schema);
    run_result r = dbt_runv("{\"id\": 1, \"d\": -0.0, \"f\": 0.1}\n"
                            "{\"id\": 2, \"d\": 1E+2, \"n\": 3.0}\n"
                            "{\"id\": 3, \"d\": 2.5e-3, \"f\": 3.4028234663852886e38}\n"
                            "{\"id\": 4, \"d\": 0.30000000000000004, \"f\": -1.5e-45}\n",
                            "import", a.path, "t", "-", NULL);
    cr_assert_eq(r.status, 0, "import: %s", r.err);
    run_free(&r);
    char *out = export_of(&a, "t", "jsonl");
    cr_assert_str_eq(out, "{\"id\": 1, \"d\": -0.0, \"f\": 0.1, \"n\": null}\n"
                          "{\"id\": 2, \"d\": 100.0, \"f\": null, \"n\": 3}\n"
                          "{\"id\": 3, \"d\": 0.0025, \"f\": 3.4028235e+38, \"n\": null}\n"
                          "{\"id\": 4, \"d\": 0.30000000000000004, \"f\": -1.4013e-45, \"n\": null}\n");
    free(out);
    static const char *const bad[] = { "{\"id\": 5, \"d\": 1e400}\n", "{\"id\": 5, \"f\": 1e39}\n",
                                       "{\"id\": 5, \"n\": 1.5}\n", "{\"id\": 5, \"d\": 1.}\n",
                                       "{\"id\": 5, \"d\": .5}\n", "{\"id\": 5, \"d\": 1e}\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = dbt_runv(bad[i], "import", a.path, "t", "-", NULL);
        cr_assert_neq(r.status, 0, "%s", bad[i]);
        cr_assert(strstr(r.err, "line 1") != NULL, "%s: %s", bad[i], r.err);
        run_free(&r);
    }
    db_free(&a);
}

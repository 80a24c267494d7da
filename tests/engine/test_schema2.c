/* Schema changes after creation (issue 14): edb_table_rename,
 * edb_column_rename, edb_column_drop, edb_column_set_default.  Each is
 * tried the way another program would meet it: under an open cursor, from a
 * second session and a second process, rolled back, after a reopen, and
 * with the names and columns it must refuse. */
#include "config.h"

#include <sys/wait.h>

#include "helpers.h"

static char *dir;
static edb_env *env;
static edb_session *s;
static void setup(void) { dir = make_tmpdir(); env = open_env(dir, 0); OK(edb_session_begin(&s, env)); }
static void teardown(void) { edb_session_end(s); edb_env_close(env); rm_tree(dir); free(dir); LEAK_CHECK(); }

TestSuite(schema2, .init = setup, .fini = teardown, .timeout = 60);

/* Rows scale with EDB_TEST_SCALE (percent, 100 by default), never below
 * the 10 rows whose ids the tests seek. */
static unsigned
scaled(unsigned n)
{
    const char *e = getenv("EDB_TEST_SCALE");
    unsigned pct = e != NULL && *e ? (unsigned)atoi(e) : 100;
    unsigned long long v = (unsigned long long)n * pct / 100;
    return v > 10 ? (unsigned)v : 10;
}

/* t(id int64 pk, name text indexed by_name, qty int32, note text) with @n rows:
 * id i, name "n<i>", qty i * 10, note "note<i>". */
static void
make_table(edb_session *ss, const char *name, unsigned n)
{
    edb_column_def cols[] = {
        { "id", EDB_COL_INT64, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "name", EDB_COL_TEXT, 0, 0, NULL, 0 },
        { "qty", EDB_COL_INT32, 0, 0, NULL, 0 },
        { "note", EDB_COL_TEXT, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = {
        { "pk", "+id\0", EDB_IDX_PRIMARY },
        { "by_name", "+name\0", 0 },
    };
    edb_table_def def = { name, cols, 4, idx, 2 };
    OK(edb_table_create(ss, &def));
    edb_cursor *c;
    OK(edb_cursor_open(&c, ss, name));
    OK(edb_txn_begin(ss, 0));
    for (unsigned i = 1; i <= n; i++) {
        int64_t id = i;
        int32_t q = (int32_t)i * 10;
        char nm[32], note[32];
        snprintf(nm, sizeof nm, "n%u", i);
        snprintf(note, sizeof note, "note%u", i);
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &id, 8, 0));
        OK(edb_column_set(c, 2, nm, strlen(nm), 0));
        OK(edb_column_set(c, 3, &q, 4, 0));
        OK(edb_column_set(c, 4, note, strlen(note), 0));
        OK(edb_update(c));
    }
    OK(edb_txn_commit(ss));
    edb_cursor_close(c);
}

static int64_t
get_i64(edb_cursor *c, edb_colid col)
{
    int64_t v = 0;
    size_t actual = 0;
    OK(edb_column_get(c, col, &v, sizeof v, &actual, 1));
    return v;
}

static int32_t
get_i32(edb_cursor *c, edb_colid col)
{
    int32_t v = 0;
    size_t actual = 0;
    OK(edb_column_get(c, col, &v, sizeof v, &actual, 1));
    return v;
}

static void
seek_id(edb_cursor *c, int64_t id)
{
    OK(edb_key_make(c, &id, 8, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
}

static bool
has_table(edb_session *ss, const char *name)
{
    char **names;
    size_t n;
    OK(edb_table_list(&names, &n, ss));
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= strcmp(names[i], name) == 0;
    edb_free(names);
    return found;
}

static void
reopen(void)
{
    edb_session_end(s);
    edb_env_close(env);
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
}

static uint64_t
problems(void)
{
    uint64_t n = 99;
    OK(edb_env_check(&n, env, NULL, NULL, NULL));
    return n;
}

/* ------------------------------------------------------------------ table rename */

Test(schema2, table_rename_keeps_rows_indexes_and_counts_across_a_reopen)
{
    unsigned n = scaled(200);
    make_table(s, "t", n);
    OK(edb_table_rename(s, "t", "u"));
    cr_assert(!has_table(s, "t"));
    cr_assert(has_table(s, "u"));
    edb_cursor *c;
    RC(edb_cursor_open(&c, s, "t"), EDB_NOTFOUND);
    reopen();
    OK(edb_cursor_open(&c, s, "u"));
    seek_id(c, (int64_t)n);
    cr_assert_eq(get_i32(c, 3), (int32_t)n * 10);
    OK(edb_cursor_set_index(c, "by_name"));
    OK(edb_key_make(c, "n1", 2, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    cr_assert_eq(get_i64(c, 1), 1);
    edb_cursor_close(c);
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "u", NULL));
    cr_assert_eq(st.entries, n);
    OK(edb_table_stat(&st, s, "u", "by_name"));
    cr_assert_eq(st.entries, n);
    cr_assert_eq(problems(), 0);
    /* the old name is free again: another, empty table */
    make_table(s, "t", 1);
    OK(edb_table_stat(&st, s, "t", NULL));
    cr_assert_eq(st.entries, 1);
}

Test(schema2, cursor_kept_across_a_rename_follows_the_table)
{
    make_table(s, "t", scaled(50));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    edb_colid qty;
    OK(edb_column_id(&qty, c, "qty"));
    seek_id(c, 2);
    /* renamed by another session */
    edb_session *s2;
    OK(edb_session_begin(&s2, env));
    OK(edb_table_rename(s2, "t", "u"));
    /* another table takes the old name: the cursor is not fooled by it */
    make_table(s2, "t", 1);
    edb_session_end(s2);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(get_i64(c, 1), 3);
    cr_assert_eq(get_i32(c, qty), 30);
    /* and writes through it land in the renamed table */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    int32_t q = 333;
    OK(edb_column_set(c, qty, &q, 4, 0));
    OK(edb_update(c));
    edb_cursor *u;
    OK(edb_cursor_open(&u, s, "u"));
    seek_id(u, 3);
    cr_assert_eq(get_i32(u, qty), 333);
    edb_cursor_close(u);
    /* renamed again, by the cursor's own session inside a transaction */
    OK(edb_txn_begin(s, 0));
    OK(edb_table_rename(s, "u", "v"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    cr_assert_eq(get_i64(c, 1), 1);
    OK(edb_txn_commit(s));
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(get_i64(c, 1), 2);
    /* the table is dropped under its new name: the cursor says so */
    OK(edb_table_drop(s, "v"));
    RC(edb_cursor_move(c, EDB_MOVE_FIRST), EDB_DROPPED);
    edb_cursor_close(c);
}

Test(schema2, table_rename_refuses_taken_and_bad_names)
{
    make_table(s, "t", 1);
    make_table(s, "u", 1);
    RC(edb_table_rename(s, "t", "u"), EDB_EXISTS);
    cr_assert(strstr(edb_error_last(), "'u'") != NULL, "%s", edb_error_last());
    RC(edb_table_rename(s, "t", "t"), EDB_EXISTS);
    RC(edb_table_rename(s, "t", "9lives"), EDB_INVAL);
    RC(edb_table_rename(s, "t", ""), EDB_INVAL);
    RC(edb_table_rename(s, "t", "a-b"), EDB_INVAL);
    RC(edb_table_rename(s, "t", NULL), EDB_INVAL);
    RC(edb_table_rename(NULL, "t", "x"), EDB_INVAL);
    RC(edb_table_rename(s, "nosuch", "x"), EDB_NOTFOUND);
    cr_assert(has_table(s, "t") && has_table(s, "u") && !has_table(s, "x"));
}

/* ------------------------------------------------------------------ columns */

Test(schema2, column_rename_keeps_its_colid_values_and_index)
{
    make_table(s, "t", scaled(20));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    edb_colid before, after;
    OK(edb_column_id(&before, c, "name"));
    OK(edb_column_rename(s, "t", "name", "label"));
    RC(edb_column_id(&after, c, "name"), EDB_NOTFOUND);
    OK(edb_column_id(&after, c, "label"));
    cr_assert_eq(before, after);
    seek_id(c, 5);
    char buf[16];
    size_t actual;
    OK(edb_column_get(c, before, buf, sizeof buf, &actual, 1));
    cr_assert(actual == 2 && memcmp(buf, "n5", 2) == 0);
    edb_table_def *d;
    OK(edb_table_describe(&d, s, "t"));
    cr_assert_str_eq(d->columns[1].name, "label");
    cr_assert_str_eq(d->indexes[1].key, "+label");
    edb_free(d);
    OK(edb_cursor_set_index(c, "by_name"));
    OK(edb_key_make(c, "n7", 2, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    cr_assert_eq(get_i64(c, 1), 7);
    edb_cursor_close(c);
    RC(edb_column_rename(s, "t", "label", "qty"), EDB_EXISTS);
    RC(edb_column_rename(s, "t", "label", "label"), EDB_EXISTS);
    RC(edb_column_rename(s, "t", "nosuch", "x"), EDB_NOTFOUND);
    RC(edb_column_rename(s, "nosuch", "qty", "x"), EDB_NOTFOUND);
    RC(edb_column_rename(s, "t", "qty", "q ty"), EDB_INVAL);
    RC(edb_column_rename(s, "t", "qty", NULL), EDB_INVAL);
    cr_assert_eq(problems(), 0);
}

Test(schema2, drop_of_an_indexed_column_is_refused)
{
    make_table(s, "t", 3);
    RC(edb_column_drop(s, "t", "name"), EDB_COLUMN_IN_INDEX);
    cr_assert(strstr(edb_error_last(), "by_name") != NULL, "%s", edb_error_last());
    RC(edb_column_drop(s, "t", "id"), EDB_COLUMN_IN_INDEX);
    cr_assert(strstr(edb_error_last(), "'pk'") != NULL, "%s", edb_error_last());
    RC(edb_column_drop(s, "t", "nosuch"), EDB_NOTFOUND);
    RC(edb_column_drop(s, "nosuch", "qty"), EDB_NOTFOUND);
    RC(edb_column_drop(s, "t", NULL), EDB_INVAL);
    edb_table_def *d;
    OK(edb_table_describe(&d, s, "t"));
    cr_assert_eq(d->ncolumns, 4);
    edb_free(d);
    /* once the index is gone the column can go */
    OK(edb_index_drop(s, "t", "by_name"));
    OK(edb_column_drop(s, "t", "name"));
    OK(edb_table_describe(&d, s, "t"));
    cr_assert_eq(d->ncolumns, 3);
    cr_assert_str_eq(d->columns[1].name, "qty");
    edb_free(d);
    /* the last column cannot go */
    edb_column_def one = { "only", EDB_COL_INT32, 0, 0, NULL, 0 };
    edb_table_def def1 = { "one", &one, 1, NULL, 0 };
    OK(edb_table_create(s, &def1));
    RC(edb_column_drop(s, "one", "only"), EDB_INVAL);
}

Test(schema2, dropped_column_is_gone_and_a_new_one_of_its_name_is_another)
{
    unsigned n = scaled(30);
    make_table(s, "t", n);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    edb_colid qty, note;
    OK(edb_column_id(&qty, c, "qty"));
    OK(edb_column_id(&note, c, "note"));
    seek_id(c, 4);
    cr_assert_eq(get_i32(c, qty), 40);
    OK(edb_column_drop(s, "t", "qty"));
    int32_t v;
    size_t actual;
    RC(edb_column_get(c, qty, &v, 4, &actual, 1), EDB_DROPPED);
    RC(edb_column_get(c, 3, &v, 4, &actual, 1), EDB_DROPPED);     /* plain position */
    edb_colid x;
    RC(edb_column_id(&x, c, "qty"), EDB_NOTFOUND);
    /* the columns after it keep their ids */
    char buf[32];
    OK(edb_column_get(c, note, buf, sizeof buf, &actual, 1));
    cr_assert(actual == 5 && memcmp(buf, "note4", 5) == 0);
    /* a column of the same name added again is a new column: old rows
     * read it as NULL, the old id stays dropped */
    edb_column_def q2 = { "qty", EDB_COL_INT32, 0, 0, NULL, 0 };
    OK(edb_column_add(s, "t", &q2));
    edb_colid qty2;
    OK(edb_column_id(&qty2, c, "qty"));
    cr_assert_neq(qty2 & EDB_COLID_POSITION_MASK, qty & EDB_COLID_POSITION_MASK);
    RC(edb_column_get(c, qty2, &v, 4, &actual, 1), EDB_WRN_NULL);
    RC(edb_column_get(c, qty, &v, 4, &actual, 1), EDB_DROPPED);
    /* an index on the new column works and has no entry of the old values */
    edb_index_def iq = { "by_qty", "+qty\0", EDB_IDX_IGNORE_NULL };
    OK(edb_index_create(s, "t", &iq));
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "t", "by_qty"));
    cr_assert_eq(st.entries, 0);
    /* a write of the record leaves the dropped value behind */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    int32_t nv = 7;
    OK(edb_column_set(c, qty2, &nv, 4, 0));
    RC(edb_column_set(c, qty, &nv, 4, 0), EDB_DROPPED);
    OK(edb_update(c));
    OK(edb_table_stat(&st, s, "t", "by_qty"));
    cr_assert_eq(st.entries, 1);
    edb_cursor_close(c);
    edb_table_def *d;
    OK(edb_table_describe(&d, s, "t"));
    cr_assert_eq(d->ncolumns, 4);
    cr_assert_str_eq(d->columns[2].name, "note");
    cr_assert_str_eq(d->columns[3].name, "qty");
    edb_free(d);
    cr_assert_eq(problems(), 0);
    /* the same after a reopen */
    reopen();
    OK(edb_cursor_open(&c, s, "t"));
    seek_id(c, 4);
    OK(edb_column_id(&x, c, "qty"));
    cr_assert_eq(x, qty2);
    cr_assert_eq(get_i32(c, x), 7);
    RC(edb_column_get(c, qty, &v, 4, &actual, 1), EDB_DROPPED);
    seek_id(c, 5);
    RC(edb_column_get(c, x, &v, 4, &actual, 1), EDB_WRN_NULL);
    edb_cursor_close(c);
    cr_assert_eq(problems(), 0);
}

/* A NOT NULL, AUTOINC or ESCROW column dropped leaves nothing that inserts
 * must still satisfy. */
Test(schema2, dropped_column_constraints_go_with_it)
{
    static const int32_t zero = 0;
    edb_column_def cols[] = {
        { "id", EDB_COL_INT64, EDB_COL_AUTOINC, 0, NULL, 0 },
        { "must", EDB_COL_TEXT, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "esc", EDB_COL_INT32, EDB_COL_ESCROW, 0, &zero, 4 },
        { "k", EDB_COL_INT32, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = { { "pk", "+k\0", EDB_IDX_PRIMARY } };
    edb_table_def def = { "t", cols, 4, idx, 1 };
    OK(edb_table_create(s, &def));
    OK(edb_column_drop(s, "t", "must"));
    OK(edb_column_drop(s, "t", "id"));
    OK(edb_column_drop(s, "t", "esc"));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    int32_t k = 1;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 4, &k, 4, 0));
    OK(edb_update(c));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    int32_t v;
    size_t actual;
    RC(edb_column_get(c, 2, &v, 4, &actual, 1), EDB_DROPPED);
    edb_cursor_close(c);
    cr_assert_eq(problems(), 0);
}

/* An update prepared before the drop (another session) still commits. */
Test(schema2, update_prepared_across_a_drop)
{
    make_table(s, "t", 3);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    int64_t id = 9;
    int32_t q = 90;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 8, 0));
    OK(edb_column_set(c, 3, &q, 4, 0));
    edb_session *s2;
    OK(edb_session_begin(&s2, env));
    OK(edb_column_drop(s2, "t", "qty"));
    edb_session_end(s2);
    OK(edb_update(c));
    seek_id(c, 9);
    int32_t v;
    size_t actual;
    RC(edb_column_get(c, 3, &v, 4, &actual, 1), EDB_DROPPED);
    edb_cursor_close(c);
    cr_assert_eq(problems(), 0);
}

/* ------------------------------------------------------------------ defaults */

Test(schema2, default_change_and_the_rows_that_read_it)
{
    make_table(s, "t", 2);                          /* rows 1, 2 predate "extra" */
    static const int32_t one = 1, two = 2, three = 3;
    edb_column_def ex = { "extra", EDB_COL_INT32, 0, 0, &one, 4 };
    OK(edb_column_add(s, "t", &ex));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    edb_colid extra;
    OK(edb_column_id(&extra, c, "extra"));
    seek_id(c, 1);
    cr_assert_eq(get_i32(c, extra), 1);
    OK(edb_column_set_default(s, "t", "extra", &two, 4));
    cr_assert_eq(get_i32(c, extra), 2);             /* as ESE: the record holds no value */
    /* a row inserted now stores the default it started with */
    int64_t id = 3;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 8, 0));
    OK(edb_update(c));
    OK(edb_column_set_default(s, "t", "extra", &three, 4));
    seek_id(c, 3);
    cr_assert_eq(get_i32(c, extra), 2);
    seek_id(c, 1);
    cr_assert_eq(get_i32(c, extra), 3);
    edb_table_def *d;
    OK(edb_table_describe(&d, s, "t"));
    cr_assert_eq(d->columns[4].default_size, 4);
    int32_t dv;
    memcpy(&dv, d->columns[4].default_value, 4);    /* describe packs it unaligned */
    cr_assert_eq(dv, 3);
    edb_free(d);
    /* removed: the old rows read NULL */
    OK(edb_column_set_default(s, "t", "extra", NULL, 0));
    int32_t v;
    size_t actual;
    RC(edb_column_get(c, extra, &v, 4, &actual, 1), EDB_WRN_NULL);
    OK(edb_table_describe(&d, s, "t"));
    cr_assert_null(d->columns[4].default_value);
    edb_free(d);
    /* a default on a column created with the table: new rows start with it */
    OK(edb_column_set_default(s, "t", "note", "dflt", 4));
    id = 4;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 8, 0));
    OK(edb_update(c));
    seek_id(c, 4);
    char buf[8];
    OK(edb_column_get(c, 4, buf, sizeof buf, &actual, 1));
    cr_assert(actual == 4 && memcmp(buf, "dflt", 4) == 0);
    edb_cursor_close(c);
    cr_assert_eq(problems(), 0);
}

Test(schema2, default_is_type_checked)
{
    static const int32_t zero = 0;
    static const int64_t big = 5;
    edb_column_def cols[] = {
        { "id", EDB_COL_INT64, EDB_COL_AUTOINC, 0, NULL, 0 },
        { "nn", EDB_COL_INT32, EDB_COL_NOTNULL, 0, &zero, 4 },
        { "esc", EDB_COL_INT32, EDB_COL_ESCROW, 0, &zero, 4 },
        { "txt", EDB_COL_TEXT, 0, 4, NULL, 0 },
        { "d", EDB_COL_DOUBLE, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY } };
    edb_table_def def = { "t", cols, 5, idx, 1 };
    OK(edb_table_create(s, &def));
    RC(edb_column_set_default(s, "t", "nn", &big, 8), EDB_INVAL);          /* wrong size */
    RC(edb_column_set_default(s, "t", "txt", "\xff\xfe", 2), EDB_INVAL);   /* not UTF-8 */
    RC(edb_column_set_default(s, "t", "txt", "toolong", 7), EDB_TOOBIG);  /* max_size 4 */
    double nan = __builtin_nan("");
    RC(edb_column_set_default(s, "t", "d", &nan, 8), EDB_INVAL);
    RC(edb_column_set_default(s, "t", "id", &big, 8), EDB_INVAL);         /* AUTOINC */
    RC(edb_column_set_default(s, "t", "esc", NULL, 0), EDB_INVAL);        /* ESCROW needs one */
    RC(edb_column_set_default(s, "t", "nn", NULL, 0), EDB_INVAL);         /* NOT NULL keeps it */
    RC(edb_column_set_default(s, "t", "d", NULL, 3), EDB_INVAL);
    RC(edb_column_set_default(s, "t", "nosuch", NULL, 0), EDB_NOTFOUND);
    OK(edb_column_set_default(s, "t", "txt", "ok", 2));
    OK(edb_column_set_default(s, "t", "nn", &zero, 4));
    edb_table_def *d;
    OK(edb_table_describe(&d, s, "t"));
    cr_assert_eq(d->columns[3].default_size, 2);
    cr_assert_null(d->columns[0].default_value);
    cr_assert_null(d->columns[4].default_value);
    edb_free(d);
}

/* ------------------------------------------------------------------ transactions */

/* A digest of the schema: the described columns, defaults and index keys. */
static void
schema_text(edb_session *ss, const char *table, char *out, size_t size)
{
    edb_table_def *d;
    size_t o = 0;
    out[0] = '\0';
    if (edb_table_describe(&d, ss, table) != 0)
        return;
    o += (size_t)snprintf(out + o, size - o, "%s:", d->name);
    for (size_t i = 0; i < d->ncolumns && o < size; i++)
        o += (size_t)snprintf(out + o, size - o, " %s/%zu", d->columns[i].name, d->columns[i].default_size);
    for (size_t i = 0; i < d->nindexes && o < size; i++)
        o += (size_t)snprintf(out + o, size - o, " [%s %s]", d->indexes[i].name, d->indexes[i].key);
    edb_free(d);
}

static int
change(edb_session *ss, int which)
{
    static const int32_t five = 5;
    switch (which) {
    case 0: return edb_table_rename(ss, "t", "u");
    case 1: return edb_column_rename(ss, "t", "name", "label");
    case 2: return edb_column_drop(ss, "t", "note");
    default: return edb_column_set_default(ss, "t", "qty", &five, 4);
    }
}

Test(schema2, each_change_rolls_back)
{
    make_table(s, "t", 3);
    char before[512], now[512], after[512];
    schema_text(s, "t", before, sizeof before);
    for (int which = 0; which < 4; which++) {
        OK(edb_txn_begin(s, 0));
        OK(change(s, which));
        schema_text(s, which == 0 ? "u" : "t", now, sizeof now);
        cr_assert_str_neq(now, before, "change %d", which);
        OK(edb_txn_rollback(s));
        schema_text(s, "t", after, sizeof after);
        cr_assert_str_eq(after, before, "change %d", which);
        cr_assert(!has_table(s, "u"));
    }
    /* and all four in a nested transaction whose parent commits */
    OK(edb_txn_begin(s, 0));
    OK(edb_txn_begin(s, 0));
    for (int which = 1; which < 4; which++)
        OK(change(s, which));
    OK(edb_txn_rollback(s));
    OK(edb_txn_commit(s));
    schema_text(s, "t", after, sizeof after);
    cr_assert_str_eq(after, before);
    /* a rename in a rolled-back nested level: the old name is back (its
     * catalog key's removal is undone with the level) */
    OK(edb_txn_begin(s, 0));
    OK(edb_txn_begin(s, 0));
    OK(change(s, 0));
    OK(edb_txn_rollback(s));
    OK(edb_txn_commit(s));
    cr_assert(!has_table(s, "u"));
    schema_text(s, "t", after, sizeof after);
    cr_assert_str_eq(after, before);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    seek_id(c, 2);
    char buf[16];
    size_t actual;
    OK(edb_column_get(c, 4, buf, sizeof buf, &actual, 1));
    cr_assert(actual == 5 && memcmp(buf, "note2", 5) == 0);
    edb_cursor_close(c);
}

/* What a second process sees: the old schema while the change is
 * uncommitted, the new one once committed.  Exit 0 when the child's view
 * matches @want (0: old, 1: new). */
static int
child_view(const char *path, int want)
{
    edb_env *e2;
    edb_session *s2;
    /* read-only: a read-write open takes the writer lock the parent holds */
    edb_env_opts o = { .max_tables = 8, .flags = EDB_ENV_READONLY, .map_size = test_map_size() };
    if (edb_env_open(&e2, path, &o) != 0 || edb_session_begin(&s2, e2) != 0)
        return 2;
    int bad = 0;
    edb_table_def *d;
    const char *name = want ? "u" : "t";
    if (edb_table_describe(&d, s2, name) != 0) {
        bad = 3;
    } else {
        /* new: id, label, qty (default 5); old: id, name, qty, note */
        if (d->ncolumns != (want ? 3u : 4u))
            bad = 4;
        else if (strcmp(d->columns[1].name, want ? "label" : "name") != 0)
            bad = 5;
        else if (d->columns[2].default_size != (want ? 4u : 0u))
            bad = 6;
        edb_free(d);
    }
    edb_table_def *other;
    if (bad == 0 && edb_table_describe(&other, s2, want ? "t" : "u") != EDB_NOTFOUND)
        bad = 7;
    edb_session_end(s2);
    edb_env_close(e2);
    return bad;
}

static void
run_child(int want)
{
    char path[512];
    snprintf(path, sizeof path, "%s/db", dir);
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_view(path, want));
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child (want %d) status %d", want,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

Test(schema2, another_process_sees_the_changes_at_commit)
{
    make_table(s, "t", 3);
    OK(edb_txn_begin(s, 0));
    OK(edb_column_rename(s, "t", "name", "label"));
    OK(edb_index_drop(s, "t", "by_name"));
    OK(edb_column_drop(s, "t", "note"));
    static const int32_t five = 5;
    OK(edb_column_set_default(s, "t", "qty", &five, 4));
    OK(edb_table_rename(s, "t", "u"));
    run_child(0);
    OK(edb_txn_commit(s));
    run_child(1);
}

/* Values of a dropped multi-valued or fixed-size column stay in the records
 * until each is written again: the check must not take them for damage. */
Test(schema2, check_passes_with_values_of_dropped_columns_left_behind)
{
    edb_column_def cols[] = {
        { "k", EDB_COL_INT32, 0, 0, NULL, 0 },
        { "mvt", EDB_COL_TEXT, EDB_COL_MULTIVALUED, 0, NULL, 0 },
        { "mvi", EDB_COL_INT32, EDB_COL_MULTIVALUED, 0, NULL, 0 },
        { "g", EDB_COL_GUID, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = { { "pk", "+k\0", EDB_IDX_PRIMARY } };
    edb_table_def def = { "t", cols, 4, idx, 1 };
    OK(edb_table_create(s, &def));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    unsigned n = scaled(20);
    for (unsigned i = 1; i <= n; i++) {
        int32_t k = (int32_t)i, a = 1, b = 2;
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &k, 4, 0));
        OK(edb_column_set(c, 2, "x", 1, 0));
        OK(edb_column_set(c, 2, "yz", 2, EDB_SET_APPEND));
        OK(edb_column_set(c, 3, &a, 4, 0));
        OK(edb_column_set(c, 3, &b, 4, EDB_SET_APPEND));
        OK(edb_column_set(c, 4, "0123456789abcdef", 16, 0));
        OK(edb_update(c));
    }
    OK(edb_column_drop(s, "t", "mvt"));
    OK(edb_column_drop(s, "t", "mvi"));
    cr_assert_eq(problems(), 0);
    /* the guid reads as before; a rewrite of one record keeps it valid */
    int32_t k = 1;
    OK(edb_key_make(c, &k, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_update(c));
    uint8_t g[16];
    size_t actual;
    OK(edb_column_get(c, 4, g, sizeof g, &actual, 1));
    cr_assert(actual == 16 && memcmp(g, "0123456789abcdef", 16) == 0);
    unsigned count = 9;
    RC(edb_column_count(&count, c, 2), EDB_DROPPED);
    edb_cursor_close(c);
    cr_assert_eq(problems(), 0);
}

/* A cursor on a secondary index, and a rename rolled back under it. */
Test(schema2, cursor_on_an_index_across_a_rolled_back_rename)
{
    make_table(s, "t", scaled(20));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_set_index(c, "by_name"));
    OK(edb_key_make(c, "n3", 2, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    OK(edb_txn_begin(s, 0));
    OK(edb_table_rename(s, "t", "u"));
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));             /* the cursor reads "u" */
    cr_assert_eq(get_i64(c, 1), 4);
    OK(edb_txn_rollback(s));
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));             /* "t" again */
    cr_assert_eq(get_i64(c, 1), 5);
    cr_assert_str_eq(edb_cursor_index(c), "by_name");
    cr_assert(has_table(s, "t") && !has_table(s, "u"));
    /* the index renamed away from under it is another matter: dropped */
    OK(edb_index_drop(s, "t", "by_name"));
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_DROPPED);
    edb_cursor_close(c);
}

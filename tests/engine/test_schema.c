/* Schema: tables, columns, indexes, definitions that must be refused. */
#include "config.h"

#include <sys/wait.h>

#include "helpers.h"

static char *dir;
static edb_env *env;
static edb_session *s;
static void setup(void) { dir = make_tmpdir(); env = open_env(dir, 0); OK(edb_session_begin(&s, env)); }
static void teardown(void) { edb_session_end(s); edb_env_close(env); rm_tree(dir); free(dir); LEAK_CHECK(); }

TestSuite(schema, .init = setup, .fini = teardown, .timeout = 30);

static const int32_t zero32 = 0;
static const int64_t seven = 7;

Test(schema, every_type_and_kind_round_trips_through_describe)
{
    edb_column_def cols[] = {
        { "b", EDB_COL_BOOL, 0, 0, NULL, 0 },
        { "i8", EDB_COL_INT8, 0, 0, NULL, 0 },
        { "i16", EDB_COL_INT16, 0, 0, NULL, 0 },
        { "i32", EDB_COL_INT32, EDB_COL_ESCROW, 0, &zero32, 4 },
        { "i64", EDB_COL_INT64, EDB_COL_AUTOINC | EDB_COL_NOTNULL, 0, NULL, 0 },
        { "u8", EDB_COL_UINT8, 0, 0, NULL, 0 },
        { "u16", EDB_COL_UINT16, 0, 0, NULL, 0 },
        { "u32", EDB_COL_UINT32, 0, 0, NULL, 0 },
        { "u64", EDB_COL_UINT64, 0, 0, NULL, 0 },
        { "f", EDB_COL_FLOAT, 0, 0, NULL, 0 },
        { "d", EDB_COL_DOUBLE, 0, 0, NULL, 0 },
        { "dt", EDB_COL_DATETIME, 0, 0, &seven, 8 },
        { "g", EDB_COL_GUID, 0, 0, NULL, 0 },
        { "t", EDB_COL_TEXT, EDB_COL_NOTNULL, 40, "hi", 2 },
        { "bin", EDB_COL_BINARY, EDB_COL_MULTIVALUED, 0, NULL, 0 },
    };
    edb_index_def idx[] = {
        { "pk", "+i64\0", EDB_IDX_PRIMARY },
        { "by_t", "+t\0-dt\0", 0 },
        { "by_g", "+g\0", EDB_IDX_UNIQUE | EDB_IDX_IGNORE_NULL },
    };
    edb_table_def def = { "all", cols, 15, idx, 3 };
    OK(edb_table_create(s, &def));
    RC(edb_table_create(s, &def), EDB_EXISTS);
    edb_table_def *d;
    OK(edb_table_describe(&d, s, "all"));
    cr_assert_str_eq(d->name, "all");
    cr_assert_eq(d->ncolumns, 15);
    for (size_t i = 0; i < 15; i++) {
        cr_assert_str_eq(d->columns[i].name, cols[i].name);
        cr_assert_eq(d->columns[i].type, cols[i].type);
        cr_assert_eq(d->columns[i].flags, cols[i].flags);
        cr_assert_eq(d->columns[i].max_size, cols[i].max_size);
        cr_assert_eq(d->columns[i].default_size, cols[i].default_size);
        if (cols[i].default_value)
            cr_assert_eq(memcmp(d->columns[i].default_value, cols[i].default_value, cols[i].default_size), 0);
        else
            cr_assert_null(d->columns[i].default_value);
    }
    cr_assert_eq(d->nindexes, 3);
    cr_assert_str_eq(d->indexes[1].name, "by_t");
    cr_assert_eq(memcmp(d->indexes[1].key, "+t\0-dt\0\0", 8), 0);
    cr_assert_eq(d->indexes[0].flags, EDB_IDX_PRIMARY | EDB_IDX_UNIQUE);
    edb_free(d);
    for (int t = EDB_COL_BOOL; t <= EDB_COL_BINARY; t++) {
        edb_coltype back;
        OK(edb_coltype_parse(&back, edb_coltype_name(t)));
        cr_assert_eq(back, t);
    }
    edb_coltype ct;
    RC(edb_coltype_parse(&ct, "varchar"), EDB_INVAL);
    cr_assert_null(edb_coltype_name(0));
    cr_assert_null(edb_coltype_name(99));
}

static int
create1(const char *name, edb_column_def col, const char *key, unsigned iflags)
{
    edb_column_def cols[] = { { "id", EDB_COL_INT32, 0, 0, NULL, 0 }, col };
    edb_index_def idx[] = { { "ix", key, iflags } };
    edb_table_def def = { name, cols, 2, idx, key ? 1 : 0 };
    return edb_table_create(s, &def);
}

Test(schema, bad_definitions_are_refused_with_a_message)
{
    static const int16_t two = 2;
    static const float nanf_ = __builtin_nanf("");
    struct { edb_column_def col; const char *key; unsigned iflags; } bad[] = {
        { { "9x", EDB_COL_INT32, 0, 0, NULL, 0 }, NULL, 0 },
        { { "a-b", EDB_COL_INT32, 0, 0, NULL, 0 }, NULL, 0 },
        { { NULL, EDB_COL_INT32, 0, 0, NULL, 0 }, NULL, 0 },
        { { "x", 0, 0, 0, NULL, 0 }, NULL, 0 },
        { { "x", 77, 0, 0, NULL, 0 }, NULL, 0 },
        { { "x", EDB_COL_INT32, 0x100, 0, NULL, 0 }, NULL, 0 },
        { { "x", EDB_COL_TEXT, EDB_COL_AUTOINC, 0, NULL, 0 }, NULL, 0 },
        { { "x", EDB_COL_INT16, EDB_COL_AUTOINC, 0, NULL, 0 }, NULL, 0 },
        { { "x", EDB_COL_UINT32, EDB_COL_ESCROW, 0, &zero32, 4 }, NULL, 0 },
        { { "x", EDB_COL_INT32, EDB_COL_ESCROW, 0, NULL, 0 }, NULL, 0 },
        { { "x", EDB_COL_INT32, EDB_COL_ESCROW | EDB_COL_MULTIVALUED, 0, &zero32, 4 }, NULL, 0 },
        { { "x", EDB_COL_INT32, 0, 0, &two, 2 }, NULL, 0 },
        { { "x", EDB_COL_INT32, 0, 0, NULL, 4 }, NULL, 0 },
        { { "x", EDB_COL_INT32, 0, 10, NULL, 0 }, NULL, 0 },
        { { "x", EDB_COL_TEXT, 0, 0, "\xff\xfe", 2 }, NULL, 0 },
        { { "x", EDB_COL_FLOAT, 0, 0, &nanf_, 4 }, NULL, 0 },
        { { "x", EDB_COL_TEXT, 0, 0, NULL, 0 }, "+nope\0", 0 },
        { { "x", EDB_COL_TEXT, 0, 0, NULL, 0 }, "x\0", 0 },
        { { "x", EDB_COL_TEXT, 0, 0, NULL, 0 }, "", 0 },
        { { "x", EDB_COL_TEXT, EDB_COL_MULTIVALUED, 0, NULL, 0 }, "+x\0", EDB_IDX_PRIMARY },  /* secondary: one entry per value (issue 14) */
        { { "x", EDB_COL_TEXT, 0, 0, NULL, 0 }, "+x\0-x\0", 0 },
        { { "x", EDB_COL_TEXT, 0, 0, NULL, 0 }, "+x\0", 0x80 },
        { { "x", EDB_COL_TEXT, 0, 0, NULL, 0 }, "+x\0", EDB_IDX_PRIMARY | EDB_IDX_IGNORE_NULL },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = create1("t", bad[i].col, bad[i].key, bad[i].iflags);
        cr_assert_eq(rc, EDB_INVAL, "case %zu: %s", i, edb_err_name(rc));
        cr_assert(strncmp(edb_error_last(), "EDB_INVAL: ", 11) == 0 && strlen(edb_error_last()) > 20,
                  "case %zu: %s", i, edb_error_last());
    }
    /* two primaries, duplicate names, no columns, NULLs */
    edb_column_def cols[] = { { "a", EDB_COL_INT32, 0, 0, NULL, 0 }, { "a", EDB_COL_INT32, 0, 0, NULL, 0 } };
    edb_table_def def = { "t", cols, 2, NULL, 0 };
    RC(edb_table_create(s, &def), EDB_INVAL);
    cols[1].name = "b";
    edb_index_def two_pk[] = { { "p1", "+a\0", EDB_IDX_PRIMARY }, { "p2", "+b\0", EDB_IDX_PRIMARY } };
    def.indexes = two_pk;
    def.nindexes = 2;
    RC(edb_table_create(s, &def), EDB_INVAL);
    two_pk[1].name = "p1";
    two_pk[1].flags = 0;
    RC(edb_table_create(s, &def), EDB_INVAL);
    def.nindexes = 0;
    def.ncolumns = 0;
    RC(edb_table_create(s, &def), EDB_INVAL);
    RC(edb_table_create(s, NULL), EDB_INVAL);
    RC(edb_table_create(NULL, &def), EDB_INVAL);
    def.ncolumns = 2;
    def.name = "";
    RC(edb_table_create(s, &def), EDB_INVAL);
    def.name = "t";
    def.nindexes = 1;
    def.indexes = NULL;
    RC(edb_table_create(s, &def), EDB_INVAL);
    /* nothing was created */
    char **names;
    size_t n;
    OK(edb_table_list(&names, &n, s));
    cr_assert_eq(n, 0);
    cr_assert_null(names[0]);
    edb_free(names);
}

/* max_tables is no limit any more (the keyspace): more tables than it says */
Test(schema, no_table_limit_and_list)
{
    char name[16];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "t%d", 9 - i);
        OK(create1(name, (edb_column_def){ "v", EDB_COL_TEXT, 0, 0, NULL, 0 }, NULL, 0));
    }
    char **names;
    size_t n;
    OK(edb_table_list(&names, &n, s));
    cr_assert_eq(n, 10);
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "t%d", i);
        cr_assert_str_eq(names[i], name);
    }
    edb_free(names);
    OK(edb_table_drop(s, "t3"));
    RC(edb_table_drop(s, "t3"), EDB_NOTFOUND);
    OK(create1("again", (edb_column_def){ "v", EDB_COL_TEXT, 0, 0, NULL, 0 }, NULL, 0));
    RC(edb_table_list(NULL, NULL, s), EDB_INVAL);
    RC(edb_table_list(&names, NULL, NULL), EDB_INVAL);
}

static void
insert_row(edb_cursor *c, int32_t id, const char *v)
{
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    if (v)
        OK(edb_column_set(c, 2, v, strlen(v), 0));
    OK(edb_update(c));
}

Test(schema, add_column_reads_default_on_old_rows)
{
    OK(create1("t", (edb_column_def){ "v", EDB_COL_TEXT, 0, 0, NULL, 0 }, "+id\0", EDB_IDX_PRIMARY));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    insert_row(c, 1, "one");
    insert_row(c, 2, "two");
    static const int64_t dflt = 42;
    edb_column_def add = { "n", EDB_COL_INT64, EDB_COL_NOTNULL, 0, &dflt, 8 };
    OK(edb_column_add(s, "t", &add));
    RC(edb_column_add(s, "t", &add), EDB_EXISTS);
    edb_column_def plain = { "note", EDB_COL_TEXT, 0, 0, NULL, 0 };
    OK(edb_column_add(s, "t", &plain));
    edb_column_def nn = { "z", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 };
    RC(edb_column_add(s, "t", &nn), EDB_INVAL);
    edb_column_def ai = { "z", EDB_COL_INT32, EDB_COL_AUTOINC, 0, NULL, 0 };
    RC(edb_column_add(s, "t", &ai), EDB_INVAL);
    RC(edb_column_add(s, "nosuch", &plain), EDB_NOTFOUND);
    edb_colid n_id, note_id;
    OK(edb_column_id(&n_id, c, "n"));
    OK(edb_column_id(&note_id, c, "note"));
    cr_assert_eq(n_id & EDB_COLID_POSITION_MASK, 3);
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    int64_t v = 0;
    size_t got;
    OK(edb_column_get(c, n_id, &v, 8, &got, 0));
    cr_assert_eq(v, 42);
    char buf[8];
    RC(edb_column_get(c, note_id, buf, sizeof buf, &got, 0), EDB_WRN_NULL);
    cr_assert_eq(got, 0);
    /* rewrite an old row: it keeps the default and gains the new column */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, note_id, "x", 1, 0));
    OK(edb_update(c));
    OK(edb_column_get(c, note_id, buf, sizeof buf, &got, 0));
    cr_assert_eq(got, 1);
    OK(edb_column_get(c, n_id, &v, 8, &got, 0));
    cr_assert_eq(v, 42);
    edb_cursor_close(c);
}

Test(schema, index_create_on_rows_and_unique_violation_creates_nothing)
{
    OK(create1("t", (edb_column_def){ "v", EDB_COL_TEXT, 0, 0, NULL, 0 }, "+id\0", EDB_IDX_PRIMARY));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    insert_row(c, 1, "b");
    insert_row(c, 2, "a");
    insert_row(c, 3, "b");
    insert_row(c, 4, NULL);
    edb_index_def uniq = { "uv", "+v\0", EDB_IDX_UNIQUE };
    RC(edb_index_create(s, "t", &uniq), EDB_KEYDUP);
    cr_assert(strstr(edb_error_last(), "uv") != NULL, "%s", edb_error_last());
    RC(edb_cursor_set_index(c, "uv"), EDB_NOTFOUND);
    edb_tree_stat st;
    RC(edb_table_stat(&st, s, "t", "uv"), EDB_NOTFOUND);
    edb_index_def multi = { "v", "+v\0", EDB_IDX_IGNORE_NULL };
    OK(edb_index_create(s, "t", &multi));
    RC(edb_index_create(s, "t", &multi), EDB_EXISTS);
    edb_index_def pk = { "p2", "+v\0", EDB_IDX_PRIMARY };
    RC(edb_index_create(s, "t", &pk), EDB_INVAL);
    OK(edb_table_stat(&st, s, "t", "v"));
    cr_assert_eq(st.entries, 3);    /* the NULL row has no entry */
    OK(edb_table_stat(&st, s, "t", NULL));
    cr_assert_eq(st.entries, 4);
    OK(edb_cursor_set_index(c, "v"));
    cr_assert_str_eq(edb_cursor_index(c), "v");
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    int32_t id;
    OK(edb_column_get(c, 1, &id, 4, NULL, 0));
    cr_assert_eq(id, 2);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    OK(edb_column_get(c, 1, &id, 4, NULL, 0));
    cr_assert_eq(id, 1);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    OK(edb_column_get(c, 1, &id, 4, NULL, 0));
    cr_assert_eq(id, 3);
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_NOTFOUND);
    /* drop: the cursor's index is gone (EDB_DROPPED) until it picks another */
    OK(edb_index_drop(s, "t", "v"));
    RC(edb_index_drop(s, "t", "v"), EDB_NOTFOUND);
    RC(edb_index_drop(s, "t", "ix"), EDB_INVAL);
    RC(edb_cursor_move(c, EDB_MOVE_FIRST), EDB_DROPPED);
    OK(edb_cursor_set_index(c, NULL));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    cr_assert_str_eq(edb_cursor_index(c), "ix");
    edb_cursor_close(c);
}

Test(schema, drop_table_invalidates_cursors_and_rolls_back)
{
    OK(create1("t", (edb_column_def){ "v", EDB_COL_TEXT, 0, 0, NULL, 0 }, NULL, 0));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    insert_row(c, 1, "x");
    OK(edb_txn_begin(s, 0));
    OK(edb_table_drop(s, "t"));
    RC(edb_cursor_move(c, EDB_MOVE_FIRST), EDB_DROPPED);
    OK(edb_txn_rollback(s));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));   /* the drop was rolled back */
    OK(edb_table_drop(s, "t"));
    RC(edb_cursor_move(c, EDB_MOVE_FIRST), EDB_DROPPED);
    edb_tree_stat st;
    RC(edb_table_stat(&st, s, "t", NULL), EDB_NOTFOUND);
    edb_cursor_close(c);
    edb_cursor *c2 = (edb_cursor *)1;
    RC(edb_cursor_open(&c2, s, "t"), EDB_NOTFOUND);
    cr_assert_null(c2);
}

Test(schema, readonly_env_refuses_schema_changes)
{
    OK(create1("t", (edb_column_def){ "v", EDB_COL_TEXT, 0, 0, NULL, 0 }, NULL, 0));
    edb_session_end(s);
    edb_env_close(env);
    env = open_env(dir, EDB_ENV_READONLY);
    OK(edb_session_begin(&s, env));
    RC(create1("u", (edb_column_def){ "v", EDB_COL_TEXT, 0, 0, NULL, 0 }, NULL, 0), EDB_READONLY);
    RC(edb_table_drop(s, "t"), EDB_READONLY);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    RC(edb_update_prepare(c, EDB_PREP_INSERT), EDB_READONLY);
    edb_cursor_close(c);
}

/* A table created in one process is visible to a new transaction in another. */
Test(schema, visible_across_processes)
{
    char path[512];
    snprintf(path, sizeof path, "%s/db", dir);
    OK(edb_txn_begin(s, EDB_TXN_READONLY));     /* an old snapshot in the parent */
    int pfd[2], qfd[2];
    cr_assert_eq(pipe(pfd), 0);
    cr_assert_eq(pipe(qfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        edb_env *e2;
        edb_session *s2;
        edb_env_opts o = { .max_tables = 8, .map_size = test_map_size() };
        if (edb_env_open(&e2, path, &o) != 0 || edb_session_begin(&s2, e2) != 0)
            _exit(2);
        edb_column_def cols[] = { { "id", EDB_COL_INT32, 0, 0, NULL, 0 } };
        edb_table_def def = { "fromchild", cols, 1, NULL, 0 };
        if (edb_table_create(s2, &def) != 0)
            _exit(3);
        edb_cursor *c;
        int32_t v = 5;
        if (edb_cursor_open(&c, s2, "fromchild") != 0 || edb_update_prepare(c, EDB_PREP_INSERT) != 0 ||
            edb_column_set(c, 1, &v, 4, 0) != 0 || edb_update(c) != 0)
            _exit(4);
        if (write(pfd[1], "x", 1) != 1)
            _exit(5);
        char ch;
        if (read(qfd[0], &ch, 1) != 1)    /* wait for the parent's table */
            _exit(6);
        int rc = edb_cursor_open(&c, s2, "fromparent");
        edb_env_close(e2);
        _exit(rc == 0 ? 0 : 7);
    }
    char ch;
    cr_assert_eq(read(pfd[0], &ch, 1), 1);
    edb_cursor *c;
    RC(edb_cursor_open(&c, s, "fromchild"), EDB_NOTFOUND);   /* old snapshot */
    OK(edb_txn_commit(s));
    OK(edb_cursor_open(&c, s, "fromchild"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    int32_t v;
    OK(edb_column_get(c, 1, &v, 4, NULL, 0));
    cr_assert_eq(v, 5);
    edb_cursor_close(c);
    OK(create1("fromparent", (edb_column_def){ "v", EDB_COL_TEXT, 0, 0, NULL, 0 }, NULL, 0));
    cr_assert_eq(write(qfd[1], "y", 1), 1);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

Test(schema, recreated_table_is_another_table)
{
    OK(create1("t", (edb_column_def){ "v", EDB_COL_TEXT, 0, 0, NULL, 0 }, NULL, 0));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    insert_row(c, 1, "old");
    OK(edb_table_drop(s, "t"));
    OK(create1("t", (edb_column_def){ "v", EDB_COL_TEXT, 0, 0, NULL, 0 }, NULL, 0));
    /* same name, same columns: still another table, which the
     * old cursor never reads nor writes (tests/engine/test_identity.c) */
    RC(edb_column_get(c, 2, NULL, 0, NULL, 0), EDB_DROPPED);
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_DROPPED);
    RC(edb_update_prepare(c, EDB_PREP_INSERT), EDB_DROPPED);
    edb_cursor_close(c);
    OK(edb_cursor_open(&c, s, "t"));
    insert_row(c, 2, "new");
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    int32_t id;
    OK(edb_column_get(c, 1, &id, 4, NULL, 0));
    cr_assert_eq(id, 2);
    edb_cursor_close(c);
}

/* The column-type table (engine/coltype.h): every type's size and name, one
 * place for the engine and dbtool. */
Test(coltypes, sizes_and_names)
{
    static const struct { edb_coltype t; int size; const char *name; } want[] = {
        { EDB_COL_BOOL, 1, "bool" },     { EDB_COL_INT8, 1, "int8" },       { EDB_COL_INT16, 2, "int16" },
        { EDB_COL_INT32, 4, "int32" },   { EDB_COL_INT64, 8, "int64" },     { EDB_COL_UINT8, 1, "uint8" },
        { EDB_COL_UINT16, 2, "uint16" }, { EDB_COL_UINT32, 4, "uint32" },   { EDB_COL_UINT64, 8, "uint64" },
        { EDB_COL_FLOAT, 4, "float" },   { EDB_COL_DOUBLE, 8, "double" },   { EDB_COL_DATETIME, 8, "datetime" },
        { EDB_COL_GUID, 16, "guid" },    { EDB_COL_TEXT, 0, "text" },       { EDB_COL_BINARY, 0, "binary" },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        cr_assert_eq(edb_coltype_size(want[i].t), want[i].size, "%s", want[i].name);
        cr_assert_str_eq(edb_coltype_name(want[i].t), want[i].name);
        edb_coltype t;
        OK(edb_coltype_parse(&t, want[i].name));
        cr_assert_eq(t, want[i].t);
    }
    cr_assert_eq(edb_coltype_size((edb_coltype)0), -1);
    cr_assert_eq(edb_coltype_size((edb_coltype)(EDB_COL_BINARY + 1)), -1);
    cr_assert_null(edb_coltype_name((edb_coltype)0));
}

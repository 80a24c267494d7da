/* test_indexes2.c: conditional indexes (issue 14): the index's entries
 * follow its condition column as records are inserted, updated and deleted;
 * the definition round-trips through describe; check agrees. */
#include "config.h"

#include "helpers.h"

static char *dir;
static edb_env *env;
static edb_session *s;

static void
setup(void)
{
    dir = make_tmpdir();
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
}

static void
teardown(void)
{
    edb_session_end(s);
    edb_env_close(env);
    rm_tree(dir);
    free(dir);
    LEAK_CHECK();
}

TestSuite(indexes2, .init = setup, .fini = teardown, .timeout = 60);

/* The ids reached through index @index in its order, joined by ','. */
static void
ids(edb_cursor *c, const char *index, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    OK(edb_cursor_set_index(c, index));
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
        int32_t id = 0;
        size_t n;
        OK(edb_column_get(c, 1, &id, sizeof id, &n, 0));
        o += (size_t)snprintf(out + o, cap - o, "%s%d", o ? "," : "", (int)id);
    }
}

static void
check_clean(void)
{
    uint64_t problems = 1;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
}

/* Table "t": id int32 primary, name TEXT, deleted DATETIME (NULL: live). */
static void
make_cond_table(void)
{
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "name", .type = EDB_COL_TEXT },
        { .name = "deleted", .type = EDB_COL_DATETIME },
    };
    edb_index_def idx[] = {
        { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY },
        { .name = "live", .key = "+name\0", .condition = "!deleted" },
        { .name = "trash", .key = "+name\0", .condition = "deleted" },
    };
    edb_table_def t = { .name = "t", .columns = cols, .ncolumns = 3, .indexes = idx, .nindexes = 3 };
    OK(edb_table_create(s, &t));
}

static void
put_row(edb_cursor *c, int32_t id, const char *name, const int64_t *deleted)
{
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, sizeof id, 0));
    OK(edb_column_set(c, 2, name, strlen(name), 0));
    if (deleted != NULL)
        OK(edb_column_set(c, 3, deleted, sizeof *deleted, 0));
    OK(edb_update(c));
}

static void
goto_id(edb_cursor *c, int32_t id)
{
    OK(edb_cursor_set_index(c, NULL));
    OK(edb_key_make(c, &id, sizeof id, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
}

Test(indexes2, condition_includes_and_excludes)
{
    make_cond_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    int64_t when = 1234;
    put_row(c, 1, "a", NULL);
    put_row(c, 2, "b", &when);
    put_row(c, 3, "c", NULL);
    char got[64];
    ids(c, "live", got, sizeof got);
    cr_assert_str_eq(got, "1,3");
    ids(c, "trash", got, sizeof got);
    cr_assert_str_eq(got, "2");
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "t", "live"));
    cr_assert_eq(st.entries, 2);
    check_clean();
    edb_cursor_close(c);
}

Test(indexes2, condition_follows_updates)
{
    make_cond_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    put_row(c, 1, "a", NULL);
    put_row(c, 2, "b", NULL);
    /* soft-delete 1: it leaves "live" and enters "trash" */
    goto_id(c, 1);
    int64_t when = 99;
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 3, &when, sizeof when, 0));
    OK(edb_update(c));
    char got[64];
    ids(c, "live", got, sizeof got);
    cr_assert_str_eq(got, "2");
    ids(c, "trash", got, sizeof got);
    cr_assert_str_eq(got, "1");
    /* undelete it inside a transaction that rolls back: nothing changes */
    OK(edb_txn_begin(s, 0));
    goto_id(c, 1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 3, NULL, 0, 0));
    OK(edb_update(c));
    ids(c, "live", got, sizeof got);
    cr_assert_str_eq(got, "1,2");
    OK(edb_txn_rollback(s));
    ids(c, "live", got, sizeof got);
    cr_assert_str_eq(got, "2");
    /* a record deleted while in "trash" leaves it */
    goto_id(c, 1);
    OK(edb_record_delete(c));
    ids(c, "trash", got, sizeof got);
    cr_assert_str_eq(got, "");
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "t", "trash"));
    cr_assert_eq(st.entries, 0);
    check_clean();
    edb_cursor_close(c);
}

Test(indexes2, condition_on_a_later_index_and_describe)
{
    make_cond_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    int64_t when = 5;
    put_row(c, 1, "a", &when);
    put_row(c, 2, "b", NULL);
    edb_index_def x = { .name = "gone", .key = "-id\0", .condition = "deleted" };
    OK(edb_index_create(s, "t", &x));
    char got[64];
    ids(c, "gone", got, sizeof got);
    cr_assert_str_eq(got, "1");
    edb_table_def *d;
    OK(edb_table_describe(&d, s, "t"));
    cr_assert_str_eq(d->indexes[1].condition, "!deleted");
    cr_assert_str_eq(d->indexes[2].condition, "deleted");
    cr_assert_str_eq(d->indexes[3].condition, "deleted");
    cr_assert_null(d->indexes[0].condition);
    edb_free(d);
    check_clean();
    edb_cursor_close(c);
}

Test(indexes2, bad_conditions_refused)
{
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "name", .type = EDB_COL_TEXT },
    };
    edb_index_def idx[] = {
        { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY },
        { .name = "x", .key = "+name\0", .condition = "nope" },
    };
    edb_table_def t = { .name = "t", .columns = cols, .ncolumns = 2, .indexes = idx, .nindexes = 2 };
    RC(edb_table_create(s, &t), EDB_INVAL);
    idx[1].condition = NULL;
    idx[0].condition = "name";
    RC(edb_table_create(s, &t), EDB_INVAL);
}

/* Every engine call checks its arguments: NULL handles and out-pointers,
 * unknown flags and modes return a named code with a message, never crash. */
#include "config.h"

#include "helpers.h"

static char *dir;
static edb_env *env;
static edb_session *s;
static edb_cursor *c;

static void
setup(void)
{
    dir = make_tmpdir();
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    edb_column_def cols[] = { { "id", EDB_COL_INT32, 0, 0, NULL, 0 } };
    edb_table_def def = { "t", cols, 1, NULL, 0 };
    OK(edb_table_create(s, &def));
    OK(edb_cursor_open(&c, s, "t"));
}

static void
teardown(void)
{
    edb_cursor_close(c);
    edb_session_end(s);
    edb_env_close(env);
    rm_tree(dir);
    free(dir);
    LEAK_CHECK();
}

TestSuite(args, .init = setup, .fini = teardown, .timeout = 30);

/* The call returns want and leaves a detail starting with the code's name. */
#define BAD(x, want) do { edb__clear_detail(); int rc__ = (x); \
        cr_assert_eq(rc__, (want), "%s -> %s", #x, edb_err_name(rc__)); \
        cr_assert(strncmp(edb_error_last(), edb_err_name(want), strlen(edb_err_name(want))) == 0 && \
                  strlen(edb_error_last()) > strlen(edb_err_name(want)) + 4, \
                  "%s: detail '%s'", #x, edb_error_last()); } while (0)

static void
edb__clear_detail(void)
{
    edb_env_info info;
    edb_env_info_get(&info, env);   /* a successful call clears the detail */
}

Test(args, null_handles_and_outs)
{
    edb_env_info info;
    BAD(edb_env_info_get(NULL, env), EDB_INVAL);
    BAD(edb_env_info_get(&info, NULL), EDB_INVAL);
    BAD(edb_env_compact(NULL, dir), EDB_INVAL);
    BAD(edb_env_compact(env, NULL), EDB_INVAL);
    BAD(edb_session_begin(NULL, env), EDB_INVAL);
    BAD(edb_txn_begin(NULL, 0), EDB_INVAL);
    BAD(edb_txn_commit(NULL), EDB_INVAL);
    BAD(edb_txn_rollback(NULL), EDB_INVAL);
    edb_column_def col = { "x", EDB_COL_INT32, 0, 0, NULL, 0 };
    edb_index_def idx = { "ix", "+id\0", 0 };
    BAD(edb_table_create(NULL, NULL), EDB_INVAL);
    BAD(edb_table_drop(NULL, "t"), EDB_INVAL);
    BAD(edb_table_drop(s, NULL), EDB_INVAL);
    BAD(edb_column_add(NULL, "t", &col), EDB_INVAL);
    BAD(edb_column_add(s, NULL, &col), EDB_INVAL);
    BAD(edb_column_add(s, "t", NULL), EDB_INVAL);
    BAD(edb_index_create(NULL, "t", &idx), EDB_INVAL);
    BAD(edb_index_create(s, NULL, &idx), EDB_INVAL);
    BAD(edb_index_create(s, "t", NULL), EDB_INVAL);
    BAD(edb_index_drop(NULL, "t", "ix"), EDB_INVAL);
    BAD(edb_index_drop(s, NULL, "ix"), EDB_INVAL);
    BAD(edb_index_drop(s, "t", NULL), EDB_INVAL);
    char **names;
    BAD(edb_table_list(NULL, NULL, s), EDB_INVAL);
    BAD(edb_table_list(&names, NULL, NULL), EDB_INVAL);
    edb_table_def *d;
    BAD(edb_table_describe(NULL, s, "t"), EDB_INVAL);
    BAD(edb_table_describe(&d, NULL, "t"), EDB_INVAL);
    BAD(edb_table_describe(&d, s, NULL), EDB_INVAL);
    BAD(edb_table_describe(&d, s, "nosuch"), EDB_NOTFOUND);
    edb_tree_stat st;
    BAD(edb_table_stat(NULL, s, "t", NULL), EDB_INVAL);
    BAD(edb_table_stat(&st, NULL, "t", NULL), EDB_INVAL);
    BAD(edb_table_stat(&st, s, NULL, NULL), EDB_INVAL);
    BAD(edb_table_stat(&st, s, "t", "nosuch"), EDB_NOTFOUND);
    edb_coltype ct;
    BAD(edb_coltype_parse(NULL, "int32"), EDB_INVAL);
    BAD(edb_coltype_parse(&ct, NULL), EDB_INVAL);
    edb_cursor *x;
    BAD(edb_cursor_open(NULL, s, "t"), EDB_INVAL);
    BAD(edb_cursor_open(&x, NULL, "t"), EDB_INVAL);
    BAD(edb_cursor_open(&x, s, NULL), EDB_INVAL);
    BAD(edb_cursor_open(&x, s, "bad name"), EDB_NOTFOUND);
    edb_colid id;
    BAD(edb_column_id(NULL, c, "id"), EDB_INVAL);
    BAD(edb_column_id(&id, NULL, "id"), EDB_INVAL);
    BAD(edb_column_id(&id, c, NULL), EDB_INVAL);
    BAD(edb_update_prepare(NULL, EDB_PREP_INSERT), EDB_INVAL);
    BAD(edb_column_set(NULL, 1, NULL, 0, 0), EDB_INVAL);
    BAD(edb_update(NULL), EDB_INVAL);
    BAD(edb_column_get(NULL, 1, NULL, 0, NULL, 0), EDB_INVAL);
    unsigned n;
    BAD(edb_column_count(NULL, c, 1), EDB_INVAL);
    BAD(edb_column_count(&n, NULL, 1), EDB_INVAL);
    BAD(edb_record_delete(NULL), EDB_INVAL);
    BAD(edb_escrow_update(NULL, 1, 1, NULL), EDB_INVAL);
    BAD(edb_cursor_set_index(NULL, NULL), EDB_INVAL);
    BAD(edb_key_make(NULL, NULL, 0, EDB_KEY_NEW), EDB_INVAL);
    BAD(edb_cursor_seek(NULL, EDB_SEEK_EQ), EDB_INVAL);
    BAD(edb_cursor_set_range(NULL, 0), EDB_INVAL);
    BAD(edb_cursor_move(NULL, EDB_MOVE_NEXT), EDB_INVAL);
    /* void closers and NULL-returning getters take NULL */
    edb_update_cancel(NULL);
    edb_cursor_close(NULL);
    edb_session_end(NULL);
    edb_env_close(NULL);
    edb_free(NULL);
    cr_assert_null(edb_cursor_index(NULL));
    cr_assert_null(edb_env_path(NULL));
}

Test(args, states_and_modes)
{
    BAD(edb_update(c), EDB_NOUPDATE);
    BAD(edb_column_set(c, 1, NULL, 0, 0), EDB_NOUPDATE);
    BAD(edb_update_prepare(c, EDB_PREP_REPLACE), EDB_NOCURRENT);
    BAD(edb_update_prepare(c, 0), EDB_INVAL);
    BAD(edb_record_delete(c), EDB_NOCURRENT);
    BAD(edb_escrow_update(c, 1, 1, NULL), EDB_TYPE);
    BAD(edb_column_get(c, 1, NULL, 0, NULL, 0), EDB_NOCURRENT);
    unsigned n;
    BAD(edb_column_count(&n, c, 1), EDB_NOCURRENT);
    BAD(edb_cursor_seek(c, EDB_SEEK_EQ), EDB_INVAL);
    BAD(edb_cursor_set_range(c, EDB_RANGE_UPPER), EDB_INVAL);
    BAD(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_NOTFOUND);
    BAD(edb_cursor_move(c, 0), EDB_INVAL);
    BAD(edb_key_make(c, NULL, 0, 0), EDB_INVAL);
    BAD(edb_key_make(c, NULL, 4, EDB_KEY_NEW), EDB_INVAL);
    BAD(edb_txn_commit(s), EDB_NOTXN);
    BAD(edb_txn_rollback(s), EDB_NOTXN);
    BAD(edb_txn_begin(s, 0xF0), EDB_INVAL);
    edb_column_def col = { "x", EDB_COL_INT32, 0, 0, NULL, 0 };
    BAD(edb_column_add(s, "nosuch", &col), EDB_NOTFOUND);
    BAD(edb_index_drop(s, "t", "nosuch"), EDB_NOTFOUND);
    BAD(edb_table_drop(s, "nosuch"), EDB_NOTFOUND);
}

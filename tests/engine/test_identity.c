/* Handles carry identity, not names (issue #10, points 2, 3 and 10): a
 * cursor on a dropped table or index returns EDB_DROPPED on every call, also
 * when a new table or index took the name (in this process or another), and
 * never reads or writes the new one; a table that never existed is "no such
 * table". */
#include "config.h"

#include <sys/wait.h>

#include "helpers.h"

static char *dir;
static edb_env *env;
static edb_session *s;
static void setup(void) { dir = make_tmpdir(); env = open_env(dir, 0); OK(edb_session_begin(&s, env)); }
static void teardown(void) { edb_session_end(s); edb_env_close(env); rm_tree(dir); free(dir); LEAK_CHECK(); }

TestSuite(identity, .init = setup, .fini = teardown, .timeout = 60);

/* t(k INT32 pk, x INT32, v TEXT) with index by_x(+x), rows k = 1..5, x = 10 * k */
static void
make_old_table(edb_session *ss)
{
    edb_column_def cols[] = { { "k", EDB_COL_INT32, 0, 0, NULL, 0 },
                              { "x", EDB_COL_INT32, 0, 0, NULL, 0 },
                              { "v", EDB_COL_TEXT, 0, 0, NULL, 0 } };
    edb_index_def idx[] = { { "pk", "+k\0", EDB_IDX_PRIMARY }, { "by_x", "+x\0", 0 } };
    edb_table_def def = { "t", cols, 3, idx, 2 };
    OK(edb_table_create(ss, &def));
    edb_cursor *c;
    OK(edb_cursor_open(&c, ss, "t"));
    for (int32_t k = 1; k <= 5; k++) {
        int32_t x = 10 * k;
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &k, 4, 0));
        OK(edb_column_set(c, 2, &x, 4, 0));
        OK(edb_column_set(c, 3, "old", 3, 0));
        OK(edb_update(c));
    }
    edb_cursor_close(c);
}

/* The new table: t(name TEXT pk, secret TEXT) holding "alice".
 * Returns 0 or the first failing code (usable in a child process). */
static int
make_new_table(edb_session *ss)
{
    int rc;
    edb_column_def cols[] = { { "name", EDB_COL_TEXT, 0, 0, NULL, 0 },
                              { "secret", EDB_COL_TEXT, 0, 0, NULL, 0 } };
    edb_index_def idx[] = { { "pk", "+name\0", EDB_IDX_PRIMARY } };
    edb_table_def def = { "t", cols, 2, idx, 1 };
    if ((rc = edb_table_drop(ss, "t")) != 0 || (rc = edb_table_create(ss, &def)) != 0)
        return rc;
    edb_cursor *c;
    if ((rc = edb_cursor_open(&c, ss, "t")) != 0)
        return rc;
    if ((rc = edb_update_prepare(c, EDB_PREP_INSERT)) == 0 &&
        (rc = edb_column_set(c, 1, "alice", 5, 0)) == 0 &&
        (rc = edb_column_set(c, 2, "s3cret", 6, 0)) == 0)
        rc = edb_update(c);
    edb_cursor_close(c);
    return rc;
}

/* Every call on the old cursor is EDB_DROPPED; the new table holds only alice.
 * (edb_key_make reads nothing: it works on the schema the cursor last saw,
 * which a drop by another session or process does not change, and the seek
 * that would use the key is EDB_DROPPED.) */
static void
old_cursor_is_dropped(edb_cursor *c)
{
    char buf[16];
    edb_colid id;
    RC(edb_cursor_move(c, EDB_MOVE_FIRST), EDB_DROPPED);
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_DROPPED);
    RC(edb_column_get(c, 1, buf, sizeof buf, NULL, 0), EDB_DROPPED);
    RC(edb_column_id(&id, c, "name"), EDB_DROPPED);
    RC(edb_column_id(&id, c, "k"), EDB_DROPPED);
    int32_t k = 1;
    if (edb_key_make(c, &k, 4, EDB_KEY_NEW) == 0)
        RC(edb_cursor_seek(c, EDB_SEEK_EQ), EDB_DROPPED);
    RC(edb_cursor_set_index(c, NULL), EDB_DROPPED);
    /* an insert through it goes nowhere */
    RC(edb_update_prepare(c, EDB_PREP_INSERT), EDB_DROPPED);
    RC(edb_update(c), EDB_NOUPDATE);
    cr_assert(strstr(edb_error_last(), "'t'") != NULL, "%s", edb_error_last());

    edb_cursor *n;
    OK(edb_cursor_open(&n, s, "t"));
    int rows = 0;
    for (int rc = edb_cursor_move(n, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(n, EDB_MOVE_NEXT)) {
        size_t len = 0;
        OK(edb_column_get(n, 1, buf, sizeof buf, &len, 0));
        cr_assert(len == 5 && memcmp(buf, "alice", 5) == 0);
        rows++;
    }
    cr_assert_eq(rows, 1, "the new table holds alice only, got %d rows", rows);
    edb_cursor_close(n);
}

Test(identity, cursor_on_dropped_table_does_not_bind_to_the_new_one)
{
    make_old_table(s);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    /* drop t; create t(name TEXT pk, secret TEXT); insert "alice" */
    OK(make_new_table(s));
    old_cursor_is_dropped(c);
    edb_cursor_close(c);
}

Test(identity, cursor_on_dropped_table_from_another_session)
{
    make_old_table(s);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    edb_session *s2;
    OK(edb_session_begin(&s2, env));
    OK(make_new_table(s2));
    edb_session_end(s2);
    old_cursor_is_dropped(c);
    edb_cursor_close(c);
}

Test(identity, cursor_on_table_recreated_by_another_process)
{
    make_old_table(s);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    char path[512];
    snprintf(path, sizeof path, "%s/db", dir);
    pid_t pid = fork();
    if (pid == 0) {
        edb_env *e2;
        edb_session *s2;
        edb_env_opts o = { .max_tables = 8, .map_size = test_map_size() };
        if (edb_env_open(&e2, path, &o) != 0 || edb_session_begin(&s2, e2) != 0)
            _exit(2);
        int rc = make_new_table(s2);
        edb_session_end(s2);
        edb_env_close(e2);
        _exit(rc == 0 ? 0 : 3);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    old_cursor_is_dropped(c);
    edb_cursor_close(c);
}

/* Created, dropped and created again inside one transaction: one txn id, one
 * name, still two tables. */
Test(identity, recreated_in_one_transaction_is_another_table)
{
    OK(edb_txn_begin(s, 0));
    make_old_table(s);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(make_new_table(s));
    old_cursor_is_dropped(c);
    OK(edb_txn_commit(s));
    RC(edb_cursor_move(c, EDB_MOVE_FIRST), EDB_DROPPED);
    edb_cursor_close(c);
}

/* A cursor opened on a table whose creation was rolled back: a later table of
 * that name is another table. */
Test(identity, table_of_a_rolled_back_create_stays_dropped)
{
    OK(edb_txn_begin(s, 0));
    make_old_table(s);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_txn_rollback(s));
    RC(edb_cursor_move(c, EDB_MOVE_FIRST), EDB_DROPPED);
    make_old_table(s);
    RC(edb_cursor_move(c, EDB_MOVE_FIRST), EDB_DROPPED);
    edb_cursor_close(c);
}

/* Point 3: MOVE_NEXT on a dropped index does not restart on the primary. */
Test(identity, cursor_on_dropped_index)
{
    make_old_table(s);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_set_index(c, "by_x"));
    int32_t x = 30, k = 0;
    OK(edb_key_make(c, &x, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    OK(edb_column_get(c, 1, &k, 4, NULL, 0));
    cr_assert_eq(k, 3);
    OK(edb_index_drop(s, "t", "by_x"));
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_DROPPED);
    cr_assert(strstr(edb_error_last(), "by_x") != NULL, "%s", edb_error_last());
    RC(edb_column_get(c, 1, &k, 4, NULL, 0), EDB_DROPPED);
    RC(edb_key_make(c, &x, 4, EDB_KEY_NEW), EDB_DROPPED);
    /* a new index of that name is another index */
    edb_index_def again = { "by_x", "-x\0", 0 };
    OK(edb_index_create(s, "t", &again));
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_DROPPED);
    RC(edb_cursor_move(c, EDB_MOVE_FIRST), EDB_DROPPED);
    /* choosing an index again is the way out */
    OK(edb_cursor_set_index(c, "by_x"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_column_get(c, 1, &k, 4, NULL, 0));
    cr_assert_eq(k, 5);
    edb_cursor_close(c);
}

/* The same, the index dropped and made again by another process. */
Test(identity, cursor_on_index_recreated_by_another_process)
{
    make_old_table(s);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_set_index(c, "by_x"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    char path[512];
    snprintf(path, sizeof path, "%s/db", dir);
    pid_t pid = fork();
    if (pid == 0) {
        edb_env *e2;
        edb_session *s2;
        edb_env_opts o = { .max_tables = 8, .map_size = test_map_size() };
        if (edb_env_open(&e2, path, &o) != 0 || edb_session_begin(&s2, e2) != 0)
            _exit(2);
        edb_index_def again = { "by_x", "+x\0", 0 };
        int rc = edb_index_drop(s2, "t", "by_x");
        if (rc == 0)
            rc = edb_index_create(s2, "t", &again);
        edb_session_end(s2);
        edb_env_close(e2);
        _exit(rc == 0 ? 0 : 3);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_DROPPED);
    edb_cursor_close(c);
}

/* A drop that is rolled back leaves the cursor's table (and index) as they were. */
Test(identity, rolled_back_drop_keeps_the_cursor)
{
    make_old_table(s);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_set_index(c, "by_x"));
    OK(edb_txn_begin(s, 0));
    OK(edb_index_drop(s, "t", "by_x"));
    RC(edb_cursor_move(c, EDB_MOVE_FIRST), EDB_DROPPED);
    OK(edb_txn_rollback(s));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_txn_begin(s, 0));
    OK(edb_table_drop(s, "t"));
    RC(edb_cursor_move(c, EDB_MOVE_FIRST), EDB_DROPPED);
    OK(edb_txn_rollback(s));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    int32_t k = 0;
    OK(edb_column_get(c, 1, &k, 4, NULL, 0));
    cr_assert_eq(k, 1);
    edb_cursor_close(c);
}

/* Point 10: a table that never existed is not "dropped". */
Test(identity, open_on_a_table_that_never_existed)
{
    edb_cursor *c = (edb_cursor *)1;
    RC(edb_cursor_open(&c, s, "nosuch"), EDB_NOTFOUND);
    cr_assert_null(c);
    cr_assert(strstr(edb_error_last(), "does not exist") != NULL, "%s", edb_error_last());
    cr_assert(strstr(edb_error_last(), "dropped") == NULL, "%s", edb_error_last());
}

/* The same for edb_column_id results: an id kept across a rolled-back
 * edb_column_add is not taken for the column added later at its position. */
Test(identity, column_id_across_a_rolled_back_column_add)
{
    make_old_table(s);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_txn_begin(s, 0));
    edb_column_def x = { "extra", EDB_COL_INT32, 0, 0, NULL, 0 };
    OK(edb_column_add(s, "t", &x));
    edb_colid extra;
    OK(edb_column_id(&extra, c, "extra"));
    cr_assert_eq(extra & EDB_COLID_POSITION_MASK, 4);
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    int32_t v = 42;
    OK(edb_column_set(c, extra, &v, 4, 0));
    OK(edb_update(c));
    OK(edb_txn_rollback(s));
    edb_colid again = 9;
    RC(edb_column_id(&again, c, "extra"), EDB_NOTFOUND);
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    char buf[16];
    RC(edb_column_get(c, extra, buf, sizeof buf, NULL, 0), EDB_DROPPED);
    /* another column takes position 4 */
    edb_column_def y = { "secret", EDB_COL_TEXT, 0, 0, "s3cret", 6 };
    OK(edb_column_add(s, "t", &y));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    RC(edb_column_get(c, extra, buf, sizeof buf, NULL, 0), EDB_DROPPED);
    unsigned n;
    RC(edb_column_count(&n, c, extra), EDB_DROPPED);
    OK(edb_txn_begin(s, 0));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    RC(edb_column_get(c, extra, buf, sizeof buf, NULL, 0), EDB_DROPPED);   /* the fast path too */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    RC(edb_column_set(c, extra, &v, 4, 0), EDB_DROPPED);
    RC(edb_column_get(c, extra, buf, sizeof buf, NULL, 0), EDB_DROPPED);  /* the prepared record */
    edb_update_cancel(c);
    OK(edb_txn_commit(s));
    /* the new column's own id, and its plain position, read it */
    edb_colid secret;
    OK(edb_column_id(&secret, c, "secret"));
    cr_assert_neq(secret, extra);
    size_t len = 0;
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_column_get(c, secret, buf, sizeof buf, &len, 0));
    cr_assert(len == 6 && memcmp(buf, "s3cret", 6) == 0);
    OK(edb_column_get(c, 4, buf, sizeof buf, &len, 0));
    cr_assert(len == 6 && memcmp(buf, "s3cret", 6) == 0);
    /* an id of a dropped table's column is not a column of the new table */
    edb_colid k;
    OK(edb_column_id(&k, c, "k"));
    edb_cursor_close(c);
    OK(make_new_table(s));
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    RC(edb_column_get(c, k, buf, sizeof buf, NULL, 0), EDB_DROPPED);
    edb_cursor_close(c);
}

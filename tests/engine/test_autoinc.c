/* AUTOINC values supplied by a loader (EDB_SET_AUTOINC_VALUE): refused
 * without the flag, uniqueness through the primary / UNIQUE index, the
 * counter moves up past supplied values and only up, and a value handed out
 * in a transaction that rolled back (also a nested level) is never handed
 * out again. */
#include "config.h"

#include <sys/wait.h>

#include "helpers.h"

static char *dir;
static edb_env *env;
static edb_session *s;
static void setup(void) { dir = make_tmpdir(); env = open_env(dir, 0); OK(edb_session_begin(&s, env)); }
static void teardown(void) { edb_session_end(s); edb_env_close(env); rm_tree(dir); free(dir); LEAK_CHECK(); }

TestSuite(autoinc, .init = setup, .fini = teardown, .timeout = 30);

/* t(id INT64 AUTOINC primary, v TEXT) */
static void
make_table(void)
{
    edb_column_def cols[] = {
        { "id", EDB_COL_INT64, EDB_COL_AUTOINC, 0, NULL, 0 },
        { "v", EDB_COL_TEXT, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY } };
    edb_table_def def = { "t", cols, 2, idx, 1 };
    OK(edb_table_create(s, &def));
}

/* Insert a row; id 0: let the table assign it.  Returns edb_update's code. */
static int
insert(edb_cursor *c, int64_t id)
{
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 2, "x", 1, 0));
    if (id != 0)
        OK(edb_column_set(c, 1, &id, 8, EDB_SET_AUTOINC_VALUE));
    int rc = edb_update(c);
    if (rc < 0)
        edb_update_cancel(c);
    return rc;
}

static int64_t
current_id(edb_cursor *c)
{
    int64_t id = 0;
    OK(edb_column_get(c, 1, &id, 8, NULL, 0));
    return id;
}

static int64_t
count_rows(edb_cursor *c)
{
    int64_t n = 0;
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT))
        n++;
    return n;
}

Test(autoinc, refused_without_the_flag_and_in_the_wrong_places)
{
    make_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    int64_t id = 5;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    RC(edb_column_set(c, 1, &id, 8, 0), EDB_INVAL);
    cr_assert(strstr(edb_error_last(), "EDB_SET_AUTOINC_VALUE") != NULL, "%s", edb_error_last());
    RC(edb_column_set(c, 2, "x", 1, EDB_SET_AUTOINC_VALUE), EDB_INVAL);   /* not AUTOINC */
    RC(edb_column_set(c, 1, &id, 4, EDB_SET_AUTOINC_VALUE), EDB_INVAL);   /* size */
    RC(edb_column_set(c, 1, &id, 8, 0x80), EDB_INVAL);                    /* unknown flag */
    int64_t bad[] = { 0, -1, INT64_MIN };
    for (size_t i = 0; i < 3; i++)
        RC(edb_column_set(c, 1, &bad[i], 8, EDB_SET_AUTOINC_VALUE), EDB_INVAL);
    /* NULL with the flag: the table assigns it again */
    OK(edb_column_set(c, 1, &id, 8, EDB_SET_AUTOINC_VALUE));
    OK(edb_column_set(c, 1, NULL, 0, EDB_SET_AUTOINC_VALUE));
    OK(edb_update(c));
    cr_assert_eq(current_id(c), 1);
    /* a replace cannot set it */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    RC(edb_column_set(c, 1, &id, 8, EDB_SET_AUTOINC_VALUE), EDB_INVAL);
    RC(edb_column_set(c, 1, &id, 8, 0), EDB_INVAL);
    edb_update_cancel(c);
    edb_cursor_close(c);
}

Test(autoinc, supplied_values_move_the_counter_up_only)
{
    make_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(insert(c, 0));
    cr_assert_eq(current_id(c), 1);
    OK(insert(c, 10));                          /* a gap: 2..9 never used */
    cr_assert_eq(current_id(c), 10);
    OK(insert(c, 0));
    cr_assert_eq(current_id(c), 11, "the counter moved past the supplied 10");
    OK(insert(c, 5));                           /* below the counter: a free id, accepted */
    cr_assert_eq(current_id(c), 5);
    OK(insert(c, 0));
    cr_assert_eq(current_id(c), 12, "a smaller supplied value does not move the counter down");
    cr_assert_eq(count_rows(c), 5);
    edb_cursor_close(c);
    /* the counter is durable: a new env continues after 12 */
    edb_session_end(s);
    edb_env_close(env);
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    OK(edb_cursor_open(&c, s, "t"));
    OK(insert(c, 0));
    cr_assert_eq(current_id(c), 13);
    edb_cursor_close(c);
}

Test(autoinc, a_taken_value_is_keydup_and_changes_nothing)
{
    make_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(insert(c, 3));
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    int64_t id = 3;
    OK(edb_column_set(c, 1, &id, 8, EDB_SET_AUTOINC_VALUE));
    RC(edb_update(c), EDB_KEYDUP);
    /* the update stays prepared: fix the value and retry */
    id = 7;
    OK(edb_column_set(c, 1, &id, 8, EDB_SET_AUTOINC_VALUE));
    OK(edb_update(c));
    cr_assert_eq(current_id(c), 7);
    OK(insert(c, 0));
    cr_assert_eq(current_id(c), 8);
    cr_assert_eq(count_rows(c), 3);
    edb_cursor_close(c);
}

Test(autoinc, unique_secondary_index_checks_it)
{
    /* no primary index (implicit key): a UNIQUE index on the AUTOINC column */
    edb_column_def cols[] = { { "n", EDB_COL_UINT32, EDB_COL_AUTOINC, 0, NULL, 0 },
                              { "v", EDB_COL_TEXT, 0, 0, NULL, 0 } };
    edb_index_def idx[] = { { "by_n", "+n\0", EDB_IDX_UNIQUE } };
    edb_table_def def = { "u", cols, 2, idx, 1 };
    OK(edb_table_create(s, &def));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "u"));
    uint32_t v = 4000000000u;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &v, 4, EDB_SET_AUTOINC_VALUE));
    OK(edb_update(c));
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &v, 4, EDB_SET_AUTOINC_VALUE));
    RC(edb_update(c), EDB_KEYDUP);
    cr_assert(strstr(edb_error_last(), "by_n") != NULL, "%s", edb_error_last());
    OK(edb_column_set(c, 1, NULL, 0, EDB_SET_AUTOINC_VALUE));
    OK(edb_update(c));
    uint32_t got = 0;
    OK(edb_column_get(c, 1, &got, 4, NULL, 0));
    cr_assert_eq(got, 4000000001u);
    /* the largest value: the next assignment is exhausted, not a wrap */
    v = UINT32_MAX;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &v, 4, EDB_SET_AUTOINC_VALUE));
    OK(edb_update(c));
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    RC(edb_update(c), EDB_LIMIT);
    edb_update_cancel(c);
    edb_cursor_close(c);
}

Test(autoinc, rollback_does_not_hand_values_out_again)
{
    make_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(insert(c, 0));                           /* 1, committed */
    OK(edb_txn_begin(s, 0));
    OK(insert(c, 100));
    OK(insert(c, 0));
    cr_assert_eq(current_id(c), 101);
    OK(edb_txn_rollback(s));
    OK(insert(c, 0));
    cr_assert_eq(current_id(c), 102, "101 was handed out in the rolled-back transaction: "
                 "never again (ESE)");
    cr_assert_eq(count_rows(c), 2);
    edb_cursor_close(c);
}

Test(autoinc, nested_transactions)
{
    make_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_txn_begin(s, 0));
    OK(insert(c, 0));                           /* 1 */
    OK(edb_txn_begin(s, 0));
    OK(insert(c, 50));
    OK(edb_txn_rollback(s));                    /* the inner level goes with its 50 */
    OK(insert(c, 0));
    cr_assert_eq(current_id(c), 51);            /* 50 was handed out: never again */
    OK(edb_txn_begin(s, 0));
    OK(insert(c, 60));
    OK(edb_txn_commit(s));                      /* into the outer level */
    OK(insert(c, 0));
    cr_assert_eq(current_id(c), 61);
    OK(edb_txn_commit(s));
    /* never a duplicate: every id once */
    int64_t seen[4] = { 0 }, n = 0;
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
        cr_assert_lt(n, 4);
        seen[n++] = current_id(c);
    }
    cr_assert_eq(n, 4);
    cr_assert(seen[0] == 1 && seen[1] == 51 && seen[2] == 60 && seen[3] == 61);
    edb_cursor_close(c);
}

Test(autoinc, unindexed_column_takes_the_value_as_given)
{
    /* an AUTOINC column in no unique index: nothing can check a supplied
     * value, so it is stored as given (documented) and still moves the counter */
    edb_column_def cols[] = { { "k", EDB_COL_INT32, 0, 0, NULL, 0 },
                              { "seq", EDB_COL_INT32, EDB_COL_AUTOINC, 0, NULL, 0 } };
    edb_index_def idx[] = { { "pk", "+k\0", EDB_IDX_PRIMARY } };
    edb_table_def def = { "w", cols, 2, idx, 1 };
    OK(edb_table_create(s, &def));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "w"));
    for (int32_t k = 1; k <= 2; k++) {
        int32_t seq = 9;
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &k, 4, 0));
        if (k == 1)
            OK(edb_column_set(c, 2, &seq, 4, EDB_SET_AUTOINC_VALUE));
        OK(edb_update(c));
        OK(edb_column_get(c, 2, &seq, 4, NULL, 0));
        cr_assert_eq(seq, k == 1 ? 9 : 10);
    }
    edb_cursor_close(c);
}

/* Issue #10, point 10: values handed out in a rolled-back transaction are
 * not handed out again by this env, a supplied value below that mark still
 * moves the stored counter (or an env opened later would hand it out), and a
 * table dropped and created again counts from 1. */
Test(autoinc, mark_survives_rollback_and_supplied_values_persist)
{
    make_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(insert(c, 0));                           /* 1 */
    OK(edb_txn_begin(s, 0));
    OK(insert(c, 0));                           /* 2 */
    OK(insert(c, 10));
    OK(edb_txn_rollback(s));                    /* the mark stays at 10, the counter at 1 */
    OK(insert(c, 7));                           /* below the mark, above the counter */
    OK(insert(c, 0));
    cr_assert_eq(current_id(c), 11);
    edb_cursor_close(c);
    edb_session_end(s);
    edb_env_close(env);
    env = open_env(dir, 0);                     /* a new env knows only the stored counter */
    OK(edb_session_begin(&s, env));
    OK(edb_cursor_open(&c, s, "t"));
    OK(insert(c, 0));
    cr_assert_eq(current_id(c), 12);
    cr_assert_eq(count_rows(c), 4);
    edb_cursor_close(c);
    /* a new table of the name counts from 1, whatever the old one handed out */
    OK(edb_table_drop(s, "t"));
    make_table();
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_txn_begin(s, 0));
    OK(insert(c, 0));
    cr_assert_eq(current_id(c), 1);
    OK(insert(c, 0));
    OK(edb_txn_rollback(s));                    /* this env's mark is 2 now */
    edb_cursor_close(c);
    /* ... also when another process drops it and creates it again */
    pid_t pid = fork();
    if (pid == 0) {
        char path[512];
        snprintf(path, sizeof path, "%s/db", dir);
        edb_env *e2;
        edb_session *s2;
        edb_env_opts o = { .max_tables = 8, .map_size = test_map_size() };
        if (edb_env_open(&e2, path, &o) != 0 || edb_session_begin(&s2, e2) != 0)
            _exit(2);
        edb_column_def cols[] = { { "id", EDB_COL_INT64, EDB_COL_AUTOINC, 0, NULL, 0 },
                                  { "v", EDB_COL_TEXT, 0, 0, NULL, 0 } };
        edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY } };
        edb_table_def def = { "t", cols, 2, idx, 1 };
        int rc = edb_table_drop(s2, "t") != 0 || edb_table_create(s2, &def) != 0;
        edb_session_end(s2);
        edb_env_close(e2);
        _exit(rc);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    OK(edb_cursor_open(&c, s, "t"));
    OK(insert(c, 0));
    cr_assert_eq(current_id(c), 1);
    edb_cursor_close(c);
}

/* The implicit key of a table without a primary index is never reused either. */
Test(autoinc, implicit_key_not_reused_after_rollback)
{
    edb_column_def cols[] = { { "v", EDB_COL_TEXT, 0, 0, NULL, 0 } };
    edb_table_def def = { "h", cols, 1, NULL, 0 };
    OK(edb_table_create(s, &def));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "h"));
    for (int i = 0; i < 2; i++) {
        OK(edb_txn_begin(s, 0));
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, i == 0 ? "gone" : "kept", 4, 0));
        OK(edb_update(c));
        OK(i == 0 ? edb_txn_rollback(s) : edb_txn_commit(s));
    }
    /* the rolled-back row had key 1: the committed one has key 2 */
    uint64_t k = 1;
    OK(edb_key_make(c, &k, 8, EDB_KEY_NEW));
    RC(edb_cursor_seek(c, EDB_SEEK_EQ), EDB_NOTFOUND);
    k = 2;
    OK(edb_key_make(c, &k, 8, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    char buf[8];
    size_t got = 0;
    OK(edb_column_get(c, 1, buf, sizeof buf, &got, 0));
    cr_assert(got == 4 && memcmp(buf, "kept", 4) == 0);
    edb_cursor_close(c);
}

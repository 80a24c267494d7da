/* ESE currency (issue #10, point 4): a cursor's position survives
 * edb_txn_begin, edb_txn_commit and edb_txn_rollback of its session: it is on
 * the same record, found again by its key.  When that record is gone, reads
 * return EDB_RECORD_DELETED and MOVE_NEXT / MOVE_PREV continue from where it
 * was; after a rollback the cursor is back on its record. */
#include "config.h"

#include <pthread.h>

#include "helpers.h"

static char *dir;
static edb_env *env;
static edb_session *s;
static edb_cursor *c;

/* t(k INT32 primary, n INT64 ESCROW default 0, y INT32), an index on y;
 * rows k = 10, 20, 30, 40 with y = k / 10 */
static void
setup(void)
{
    dir = make_tmpdir();
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    int64_t zero = 0;
    edb_column_def cols[] = {
        { "k", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "n", EDB_COL_INT64, EDB_COL_ESCROW, 0, &zero, 8 },
        { "y", EDB_COL_INT32, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = { { "pk", "+k\0", EDB_IDX_PRIMARY }, { "by_y", "+y\0", 0 } };
    edb_table_def def = { "t", cols, 3, idx, 2 };
    OK(edb_table_create(s, &def));
    OK(edb_cursor_open(&c, s, "t"));
    for (int32_t k = 10; k <= 40; k += 10) {
        int32_t y = k / 10;
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &k, 4, 0));
        OK(edb_column_set(c, 3, &y, 4, 0));
        OK(edb_update(c));
    }
    edb_cursor_close(c);
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

TestSuite(currency, .init = setup, .fini = teardown, .timeout = 30);

static void
seek_k(edb_cursor *cc, int32_t k)
{
    OK(edb_key_make(cc, &k, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(cc, EDB_SEEK_EQ));
}

static int32_t
cur_k(edb_cursor *cc)
{
    int32_t k = -1;
    OK(edb_column_get(cc, 1, &k, 4, NULL, 0));
    return k;
}

static int64_t
cur_n(edb_cursor *cc)
{
    int64_t n = -1;
    OK(edb_column_get(cc, 2, &n, 8, NULL, 0));
    return n;
}

/* The probe, the most common pattern of ESE code: seek, begin,
 * escrow, prepare replace, update, commit; the cursor is still on its record
 * after the commit. */
Test(currency, seek_then_begin_escrow_replace_commit)
{
    seek_k(c, 20);
    OK(edb_txn_begin(s, 0));
    cr_assert_eq(cur_k(c), 20);
    int64_t old = -1;
    OK(edb_escrow_update(c, 2, 5, &old));
    cr_assert_eq(old, 0);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    int32_t y = 99;
    OK(edb_column_set(c, 3, &y, 4, 0));
    OK(edb_update(c));
    OK(edb_txn_commit(s));
    cr_assert_eq(cur_k(c), 20);
    cr_assert_eq(cur_n(c), 5);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(c), 30);
    /* a read-only transaction keeps it too, begin and end */
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    cr_assert_eq(cur_k(c), 30);
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    OK(edb_txn_commit(s));
    cr_assert_eq(cur_k(c), 20);
}

/* Seek, begin, delete through the cursor, roll back: the cursor is back on
 * its record.  While deleted, reads are EDB_RECORD_DELETED. */
Test(currency, rollback_puts_the_cursor_back_on_its_record)
{
    seek_k(c, 30);
    OK(edb_txn_begin(s, 0));
    OK(edb_record_delete(c));
    RC(edb_column_get(c, 1, NULL, 0, NULL, 0), EDB_RECORD_DELETED);
    cr_assert(strstr(edb_error_last(), "EDB_RECORD_DELETED") == edb_error_last(), "%s",
              edb_error_last());
    RC(edb_record_delete(c), EDB_RECORD_DELETED);
    RC(edb_escrow_update(c, 2, 1, NULL), EDB_RECORD_DELETED);
    RC(edb_update_prepare(c, EDB_PREP_REPLACE), EDB_RECORD_DELETED);
    OK(edb_txn_rollback(s));
    cr_assert_eq(cur_k(c), 30);
    OK(edb_escrow_update(c, 2, 1, NULL));
    cr_assert_eq(cur_n(c), 1);
    /* a nested level: the same */
    OK(edb_txn_begin(s, 0));
    OK(edb_txn_begin(s, 0));
    OK(edb_record_delete(c));
    OK(edb_txn_rollback(s));
    cr_assert_eq(cur_k(c), 30);
    OK(edb_txn_commit(s));
    cr_assert_eq(cur_k(c), 30);
    /* a record inserted in a rolled-back transaction is gone under the cursor:
     * NEXT and PREV go on from its place */
    OK(edb_txn_begin(s, 0));
    int32_t k = 25;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &k, 4, 0));
    OK(edb_update(c));
    cr_assert_eq(cur_k(c), 25);
    OK(edb_txn_rollback(s));
    RC(edb_column_get(c, 1, NULL, 0, NULL, 0), EDB_RECORD_DELETED);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(c), 30);
}

typedef struct other { int32_t k; int rc; char msg[256]; } other;

/* Another session, in its own thread, deletes row o->k and commits. */
static void *
other_deletes(void *arg)
{
    other *o = arg;
    edb_session *s2 = NULL;
    edb_cursor *c2 = NULL;
    int rc = edb_session_begin(&s2, env);
    if (rc == 0)
        rc = edb_cursor_open(&c2, s2, "t");
    if (rc == 0)
        rc = edb_txn_begin(s2, 0);
    if (rc == 0)
        rc = edb_key_make(c2, &o->k, 4, EDB_KEY_NEW);
    if (rc == 0)
        rc = edb_cursor_seek(c2, EDB_SEEK_EQ);
    if (rc == 0)
        rc = edb_record_delete(c2);
    if (rc == 0)
        rc = edb_txn_commit(s2);
    o->rc = rc;
    snprintf(o->msg, sizeof o->msg, "%s", edb_error_last());
    edb_cursor_close(c2);
    edb_session_end(s2);
    return NULL;
}

static void
delete_in_other_thread(int32_t k)
{
    pthread_t th;
    other o = { k, -999, "" };
    cr_assert_eq(pthread_create(&th, NULL, other_deletes, &o), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(o.rc, 0, "the other session: %s (%s)", edb_err_name(o.rc), o.msg);
}

/* A cursor's record deleted by another session (another thread) between two
 * of this session's transactions: reads say so by name, NEXT and PREV
 * continue from where it was. */
Test(currency, record_deleted_by_another_session)
{
    OK(edb_txn_begin(s, 0));
    seek_k(c, 20);
    OK(edb_txn_commit(s));
    delete_in_other_thread(20);
    OK(edb_txn_begin(s, 0));
    RC(edb_column_get(c, 2, NULL, 0, NULL, 0), EDB_RECORD_DELETED);
    unsigned cnt;
    RC(edb_column_count(&cnt, c, 2), EDB_RECORD_DELETED);
    RC(edb_escrow_update(c, 2, 1, NULL), EDB_RECORD_DELETED);
    RC(edb_update_prepare(c, EDB_PREP_REPLACE), EDB_RECORD_DELETED);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(c), 30);
    OK(edb_txn_commit(s));
    /* and PREV, from a record deleted while no transaction was open */
    delete_in_other_thread(30);
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    RC(edb_column_get(c, 1, NULL, 0, NULL, 0), EDB_RECORD_DELETED);
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    cr_assert_eq(cur_k(c), 10);
    OK(edb_txn_commit(s));
}

/* On a secondary index the position is the index entry: it survives the
 * boundaries too, and another session's commit is seen after them. */
Test(currency, secondary_index_position_survives_commit)
{
    OK(edb_cursor_set_index(c, "by_y"));
    int32_t y = 3;
    OK(edb_txn_begin(s, 0));
    OK(edb_key_make(c, &y, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    OK(edb_txn_commit(s));
    OK(edb_txn_begin(s, 0));
    cr_assert_eq(cur_k(c), 30);
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    cr_assert_eq(cur_k(c), 20);
    OK(edb_txn_rollback(s));
    cr_assert_eq(cur_k(c), 20);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(c), 30);
}

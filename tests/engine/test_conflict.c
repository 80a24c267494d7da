/* No lost update (issue #10, point 1): a REPLACE whose record changed since
 * edb_update_prepare (another session's commit, another cursor of the same
 * session, an escrow update, a delete) fails with EDB_WRITE_CONFLICT and
 * changes nothing; the update stays prepared until it is cancelled. */
#include "config.h"

#include <pthread.h>

#include "helpers.h"

static char *dir;
static edb_env *env;
static edb_session *s;

/* t(k INT32 primary, n INT64 ESCROW default 0, y INT32, z TEXT), a non-unique
 * index on y; rows k = 1, 2, 3 with n = 0, y = 0, z = "z<k>" */
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
        { "z", EDB_COL_TEXT, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = { { "pk", "+k\0", EDB_IDX_PRIMARY }, { "by_y", "+y\0", 0 } };
    edb_table_def def = { "t", cols, 4, idx, 2 };
    OK(edb_table_create(s, &def));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    for (int32_t k = 1; k <= 3; k++) {
        int32_t y = 0;
        char z[16];
        snprintf(z, sizeof z, "z%d", k);
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &k, 4, 0));
        OK(edb_column_set(c, 3, &y, 4, 0));
        OK(edb_column_set(c, 4, z, strlen(z), 0));
        OK(edb_update(c));
    }
    edb_cursor_close(c);
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

TestSuite(conflict, .init = setup, .fini = teardown, .timeout = 30);

static void
seek_k(edb_cursor *c, int32_t k)
{
    OK(edb_key_make(c, &k, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
}

/* Row k as committed, read through a fresh session: n, y and z. */
static void
row(int32_t k, int64_t *n, int32_t *y, char z[16])
{
    edb_session *r;
    edb_cursor *c;
    OK(edb_session_begin(&r, env));
    OK(edb_cursor_open(&c, r, "t"));
    seek_k(c, k);
    OK(edb_column_get(c, 2, n, 8, NULL, 0));
    OK(edb_column_get(c, 3, y, 4, NULL, 0));
    size_t len = 0;
    memset(z, 0, 16);
    OK(edb_column_get(c, 4, z, 15, &len, 0));
    edb_cursor_close(c);
    edb_session_end(r);
}

/* Entries of index by_y with key y (the index follows the record). */
static int
entries_with_y(int32_t y)
{
    edb_session *r;
    edb_cursor *c;
    OK(edb_session_begin(&r, env));
    OK(edb_cursor_open(&c, r, "t"));
    OK(edb_cursor_set_index(c, "by_y"));
    int n = 0;
    OK(edb_key_make(c, &y, 4, EDB_KEY_NEW));
    if (edb_cursor_seek(c, EDB_SEEK_EQ) == 0) {
        n = 1;
        OK(edb_key_make(c, &y, 4, EDB_KEY_NEW));
        OK(edb_cursor_set_range(c, EDB_RANGE_UPPER | EDB_RANGE_INCLUSIVE));
        while (edb_cursor_move(c, EDB_MOVE_NEXT) == 0)
            n++;
    }
    edb_cursor_close(c);
    edb_session_end(r);
    return n;
}

/* The other session of the issue: in its own thread, one transaction that
 * adds 5 to n (escrow) and sets y = 777 on row 1, committed. */
typedef struct other { int rc; char msg[256]; } other;

static void *
other_session_commits(void *arg)
{
    other *o = arg;
    edb_session *s2 = NULL;
    edb_cursor *c2 = NULL;
    int32_t k = 1, y = 777;
    int rc = edb_session_begin(&s2, env);
    if (rc == 0)
        rc = edb_cursor_open(&c2, s2, "t");
    if (rc == 0)
        rc = edb_key_make(c2, &k, 4, EDB_KEY_NEW);
    if (rc == 0)
        rc = edb_cursor_seek(c2, EDB_SEEK_EQ);
    if (rc == 0)
        rc = edb_txn_begin(s2, 0);
    if (rc == 0)
        rc = edb_escrow_update(c2, 2, 5, NULL);
    if (rc == 0)
        rc = edb_update_prepare(c2, EDB_PREP_REPLACE);
    if (rc == 0)
        rc = edb_column_set(c2, 3, &y, 4, 0);
    if (rc == 0)
        rc = edb_update(c2);
    if (rc == 0)
        rc = edb_txn_commit(s2);
    o->rc = rc;
    snprintf(o->msg, sizeof o->msg, "%s", edb_error_last());
    edb_cursor_close(c2);
    edb_session_end(s2);
    return NULL;
}

/* The first probe: a cursor prepares a REPLACE on a row outside a
 * transaction; another session (in another thread) commits an escrow +5 and
 * y = 777 on the same row; the first cursor's edb_update must not write its
 * stale copy back. */
Test(conflict, other_session_commits_between_prepare_and_update)
{
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    seek_k(c, 1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 4, "mine", 4, 0));
    pthread_t th;
    other o = { -999, "" };
    cr_assert_eq(pthread_create(&th, NULL, other_session_commits, &o), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(o.rc, 0, "the other session: %s (%s)", edb_err_name(o.rc), o.msg);
    RC(edb_update(c), EDB_WRITE_CONFLICT);
    cr_assert(strstr(edb_error_last(), "EDB_WRITE_CONFLICT") == edb_error_last(), "%s",
              edb_error_last());
    /* nothing changed: the other session's commit stands, index included */
    int64_t n;
    int32_t y;
    char z[16];
    row(1, &n, &y, z);
    cr_assert_eq(n, 5);
    cr_assert_eq(y, 777);
    cr_assert_str_eq(z, "z1");
    cr_assert_eq(entries_with_y(777), 1);
    cr_assert_eq(entries_with_y(0), 2);
    /* the update stays prepared (a retry conflicts again) until cancelled;
     * prepared again on the current record, it goes through */
    char buf[8];
    size_t len;
    OK(edb_column_get(c, 4, buf, sizeof buf, &len, 0));
    cr_assert(len == 4 && memcmp(buf, "mine", 4) == 0);
    RC(edb_update(c), EDB_WRITE_CONFLICT);
    edb_update_cancel(c);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 4, "mine", 4, 0));
    OK(edb_update(c));
    row(1, &n, &y, z);
    cr_assert_eq(n, 5);
    cr_assert_eq(y, 777);
    cr_assert_str_eq(z, "mine");
    edb_cursor_close(c);
}

/* The second probe: two cursors of one session both REPLACE one row
 * (different columns, one transaction): the second must not undo the first. */
Test(conflict, two_cursors_of_one_session_replace_one_row)
{
    edb_cursor *a, *b;
    OK(edb_cursor_open(&a, s, "t"));
    OK(edb_cursor_open(&b, s, "t"));
    OK(edb_txn_begin(s, 0));
    seek_k(a, 2);
    seek_k(b, 2);
    OK(edb_update_prepare(a, EDB_PREP_REPLACE));
    OK(edb_update_prepare(b, EDB_PREP_REPLACE));
    int32_t y = 42;
    OK(edb_column_set(a, 3, &y, 4, 0));
    OK(edb_column_set(b, 4, "from_b", 6, 0));
    OK(edb_update(a));
    RC(edb_update(b), EDB_WRITE_CONFLICT);
    /* the transaction goes on: b prepares again on the current record */
    edb_update_cancel(b);
    OK(edb_update_prepare(b, EDB_PREP_REPLACE));
    OK(edb_column_set(b, 4, "from_b", 6, 0));
    OK(edb_update(b));
    OK(edb_txn_commit(s));
    int64_t n;
    char z[16];
    row(2, &n, &y, z);
    cr_assert_eq(y, 42);
    cr_assert_str_eq(z, "from_b");
    cr_assert_eq(entries_with_y(42), 1);
    edb_cursor_close(a);
    edb_cursor_close(b);
}

/* An escrow update through another cursor of the session between prepare
 * and update: the delta is never overwritten by the prepared copy. */
Test(conflict, escrow_through_another_cursor_between_prepare_and_update)
{
    edb_cursor *a, *b;
    OK(edb_cursor_open(&a, s, "t"));
    OK(edb_cursor_open(&b, s, "t"));
    seek_k(a, 3);
    seek_k(b, 3);
    OK(edb_update_prepare(a, EDB_PREP_REPLACE));      /* implicit transactions */
    int32_t y = 9;
    OK(edb_column_set(a, 3, &y, 4, 0));
    int64_t old = -1;
    OK(edb_escrow_update(b, 2, 7, &old));
    cr_assert_eq(old, 0);
    RC(edb_update(a), EDB_WRITE_CONFLICT);
    int64_t n;
    char z[16];
    row(3, &n, &y, z);
    cr_assert_eq(n, 7);
    cr_assert_eq(y, 0);
    /* the same inside a transaction, prepared before it began */
    edb_update_cancel(a);
    OK(edb_update_prepare(a, EDB_PREP_REPLACE));
    y = 9;
    OK(edb_column_set(a, 3, &y, 4, 0));
    OK(edb_txn_begin(s, 0));
    OK(edb_escrow_update(b, 2, 1, &old));
    cr_assert_eq(old, 7);
    RC(edb_update(a), EDB_WRITE_CONFLICT);
    OK(edb_txn_commit(s));
    row(3, &n, &y, z);
    cr_assert_eq(n, 8);
    cr_assert_eq(y, 0);
    edb_cursor_close(a);
    edb_cursor_close(b);
}

/* A record deleted (through another cursor) since prepare is a conflict too:
 * the update does not bring it back. */
Test(conflict, record_deleted_between_prepare_and_update)
{
    edb_cursor *a, *b;
    OK(edb_cursor_open(&a, s, "t"));
    OK(edb_cursor_open(&b, s, "t"));
    seek_k(a, 2);
    seek_k(b, 2);
    OK(edb_update_prepare(a, EDB_PREP_REPLACE));
    OK(edb_column_set(a, 4, "back", 4, 0));
    OK(edb_record_delete(b));
    RC(edb_update(a), EDB_WRITE_CONFLICT);
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "t", NULL));
    cr_assert_eq(st.entries, 2);
    OK(edb_table_stat(&st, s, "t", "by_y"));
    cr_assert_eq(st.entries, 2);
    /* a change undone before the update is no conflict: the bytes are the same */
    edb_update_cancel(a);
    seek_k(a, 3);
    seek_k(b, 3);
    OK(edb_update_prepare(a, EDB_PREP_REPLACE));
    OK(edb_column_set(a, 4, "ok", 2, 0));
    OK(edb_escrow_update(b, 2, 4, NULL));
    OK(edb_escrow_update(b, 2, -4, NULL));
    OK(edb_update(a));
    edb_cursor_close(a);
    edb_cursor_close(b);
}

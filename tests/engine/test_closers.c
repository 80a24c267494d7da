/* Misuse is an error, never a hang or a crash (issue #10, points 5 and 6):
 * closers work in any order (a cursor whose session ended, a session whose
 * env closed, is a zombie: every call EDB_CLOSED, its closer frees it), and
 * a transaction call from a thread that does not own the session's write
 * transaction is EDB_BUSY and leaves the transaction to its owner. */
#include "config.h"

#include <pthread.h>

#include "helpers.h"

static char *dir;
static void setup(void) { dir = make_tmpdir(); }
static void teardown(void) { rm_tree(dir); free(dir); LEAK_CHECK(); }

TestSuite(closers, .init = setup, .fini = teardown, .timeout = 60);

/* t(k INT32 pk, v TEXT) with rows 1..3 */
static void
make_table(edb_session *s)
{
    edb_column_def cols[] = { { "k", EDB_COL_INT32, 0, 0, NULL, 0 },
                              { "v", EDB_COL_TEXT, 0, 0, NULL, 0 } };
    edb_index_def idx[] = { { "pk", "+k\0", EDB_IDX_PRIMARY }, { "by_v", "+v\0", 0 } };
    edb_table_def def = { "t", cols, 2, idx, 2 };
    OK(edb_table_create(s, &def));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    for (int32_t k = 1; k <= 3; k++) {
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &k, 4, 0));
        OK(edb_column_set(c, 2, "v", 1, 0));
        OK(edb_update(c));
    }
    edb_cursor_close(c);
}

/* Every call on a zombie cursor is EDB_CLOSED. */
static void
zombie_cursor(edb_cursor *c)
{
    int32_t k = 0;
    unsigned n;
    edb_colid id;
    int64_t old;
    RC(edb_cursor_move(c, EDB_MOVE_FIRST), EDB_CLOSED);
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_CLOSED);
    RC(edb_column_get(c, 1, &k, 4, NULL, 0), EDB_CLOSED);
    RC(edb_column_count(&n, c, 1), EDB_CLOSED);
    RC(edb_column_id(&id, c, "k"), EDB_CLOSED);
    RC(edb_key_make(c, &k, 4, EDB_KEY_NEW), EDB_CLOSED);
    RC(edb_cursor_seek(c, EDB_SEEK_GE), EDB_CLOSED);
    RC(edb_cursor_set_index(c, "by_v"), EDB_CLOSED);
    RC(edb_update_prepare(c, EDB_PREP_INSERT), EDB_CLOSED);
    RC(edb_column_set(c, 2, "x", 1, 0), EDB_CLOSED);
    RC(edb_update(c), EDB_CLOSED);
    RC(edb_record_delete(c), EDB_CLOSED);
    RC(edb_escrow_update(c, 1, 1, &old), EDB_CLOSED);
    edb_update_cancel(c);
}

/* Every call on a zombie session is EDB_CLOSED. */
static void
zombie_session(edb_session *s)
{
    edb_cursor *c = (edb_cursor *)1;
    RC(edb_cursor_open(&c, s, "t"), EDB_CLOSED);
    cr_assert_null(c);
    RC(edb_txn_begin(s, 0), EDB_CLOSED);
    RC(edb_txn_begin(s, EDB_TXN_READONLY), EDB_CLOSED);
    RC(edb_txn_commit(s), EDB_CLOSED);
    RC(edb_txn_rollback(s), EDB_CLOSED);
    RC(edb_table_drop(s, "t"), EDB_CLOSED);
    char **names;
    RC(edb_table_list(&names, NULL, s), EDB_CLOSED);
    edb_tree_stat st;
    RC(edb_table_stat(&st, s, "t", NULL), EDB_CLOSED);
    cr_assert_eq(edb_txn_depth(s), 0);
}

/* The first crash: edb_session_end(s); edb_cursor_close(c). */
Test(closers, session_end_then_cursor_close)
{
    edb_env *env = open_env(dir, 0);
    edb_session *s;
    OK(edb_session_begin(&s, env));
    make_table(s);
    edb_cursor *c, *d;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_open(&d, s, "t"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_update_prepare(d, EDB_PREP_INSERT));
    edb_session_end(s);
    zombie_cursor(c);
    zombie_cursor(d);
    edb_cursor_close(c);
    edb_cursor_close(d);          /* the last cursor frees the session */
    /* the session's transaction was rolled back: another writer goes on */
    edb_session *s2;
    OK(edb_session_begin(&s2, env));
    OK(edb_txn_begin(s2, 0));
    OK(edb_txn_commit(s2));
    edb_session_end(s2);
    edb_env_close(env);
}

/* The same with a write transaction open and a cursor on an index. */
Test(closers, session_end_in_a_transaction_then_cursor_close)
{
    edb_env *env = open_env(dir, 0);
    edb_session *s;
    OK(edb_session_begin(&s, env));
    make_table(s);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_set_index(c, "by_v"));
    OK(edb_txn_begin(s, 0));
    OK(edb_txn_begin(s, 0));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_record_delete(c));
    edb_session_end(s);
    zombie_cursor(c);
    edb_cursor_close(c);
    /* the delete was rolled back */
    OK(edb_session_begin(&s, env));
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "t", NULL));
    cr_assert_eq(st.entries, 3);
    edb_session_end(s);
    edb_env_close(env);
}

/* The second crash: edb_env_close(e); edb_session_end(s2). */
Test(closers, env_close_then_session_end)
{
    edb_env *env = open_env(dir, 0);
    edb_session *s, *s2;
    OK(edb_session_begin(&s, env));
    OK(edb_session_begin(&s2, env));
    make_table(s);
    edb_session_end(s);
    OK(edb_txn_begin(s2, EDB_TXN_READONLY));
    edb_env_close(env);
    zombie_session(s2);
    edb_session_end(s2);
}

/* Every order of the three closers, with a write transaction open. */
Test(closers, env_close_with_sessions_and_cursors_in_every_order)
{
    for (int order = 0; order < 6; order++) {
        edb_env *env = open_env(dir, 0);
        edb_session *s;
        OK(edb_session_begin(&s, env));
        if (order == 0)
            make_table(s);
        edb_cursor *c;
        OK(edb_cursor_open(&c, s, "t"));
        OK(edb_txn_begin(s, 0));
        OK(edb_cursor_move(c, EDB_MOVE_LAST));
        OK(edb_update_prepare(c, EDB_PREP_REPLACE));
        /* closers: e = env, s = session, c = cursor */
        static const char *const orders[6] = { "esc", "ecs", "sec", "sce", "ces", "cse" };
        for (const char *o = orders[order]; *o != '\0'; o++) {
            if (*o == 'e') {
                edb_env_close(env);
            } else if (*o == 's') {
                if (strchr(orders[order], 'e') < o)
                    zombie_session(s);
                edb_session_end(s);
            } else {
                if (strchr(orders[order], 'e') < o || strchr(orders[order], 's') < o)
                    zombie_cursor(c);
                edb_cursor_close(c);
            }
        }
    }
    /* the env closed every time with a write transaction open: it was rolled back */
    edb_env *env = open_env(dir, 0);
    edb_session *s;
    OK(edb_session_begin(&s, env));
    OK(edb_txn_begin(s, 0));
    OK(edb_txn_commit(s));
    edb_session_end(s);
    edb_env_close(env);
}

/* ---- point 5: transaction calls from a thread that does not own the write transaction ---- */

typedef struct other {
    edb_session *s;
    int begin, begin_ro, commit, rollback;
    char msg[256];
} other;

static void *
other_thread(void *arg)
{
    other *o = arg;
    o->commit = edb_txn_commit(o->s);
    snprintf(o->msg, sizeof o->msg, "%s", edb_error_last());
    o->rollback = edb_txn_rollback(o->s);
    o->begin = edb_txn_begin(o->s, 0);
    o->begin_ro = edb_txn_begin(o->s, EDB_TXN_READONLY);
    return NULL;
}

/* A writer in another session and thread: must get the writer lock. */
static void *
second_writer(void *arg)
{
    edb_env *env = arg;
    edb_session *s;
    intptr_t rc = edb_session_begin(&s, env);
    if (rc == 0) {
        rc = edb_txn_begin(s, 0);
        if (rc == 0)
            rc = edb_txn_commit(s);
        edb_session_end(s);
    }
    return (void *)rc;
}

/* Commit on another thread (a read-only transaction holds no lock). */
static void *
commit_thread(void *arg)
{
    return (void *)(intptr_t)edb_txn_commit(arg);
}

Test(closers, commit_from_another_thread_is_refused)
{
    edb_env *env = open_env(dir, 0);
    edb_session *s;
    OK(edb_session_begin(&s, env));
    make_table(s);
    OK(edb_txn_begin(s, 0));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    int32_t k = 4;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &k, 4, 0));
    OK(edb_update(c));
    other o = { .s = s };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, other_thread, &o), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(o.commit, EDB_BUSY, "commit from another thread: %s (%s)", edb_err_name(o.commit), o.msg);
    cr_assert(strstr(o.msg, "thread") != NULL, "%s", o.msg);
    cr_assert_eq(o.rollback, EDB_BUSY, "%s", edb_err_name(o.rollback));
    cr_assert_eq(o.begin, EDB_BUSY, "%s", edb_err_name(o.begin));
    cr_assert_eq(o.begin_ro, EDB_BUSY, "%s", edb_err_name(o.begin_ro));
    /* the transaction is still the owner's, with its insert */
    cr_assert_eq(edb_txn_depth(s), 1);
    OK(edb_key_make(c, &k, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    OK(edb_txn_commit(s));
    /* the writer lock was released: the owner and other threads write again */
    OK(edb_txn_begin(s, 0));
    OK(edb_txn_rollback(s));
    cr_assert_eq(pthread_create(&th, NULL, second_writer, env), 0);
    void *rc;
    cr_assert_eq(pthread_join(th, &rc), 0);
    cr_assert_eq((intptr_t)rc, 0, "second writer: %s", edb_err_name((int)(intptr_t)rc));
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "t", NULL));
    cr_assert_eq(st.entries, 4);
    /* a read-only transaction holds no lock: any thread may end it (MDB_NOTLS) */
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    cr_assert_eq(pthread_create(&th, NULL, commit_thread, s), 0);
    cr_assert_eq(pthread_join(th, &rc), 0);
    cr_assert_eq((intptr_t)rc, 0, "%s", edb_err_name((int)(intptr_t)rc));
    cr_assert_eq(edb_txn_depth(s), 0);
    edb_cursor_close(c);
    edb_session_end(s);
    edb_env_close(env);
}

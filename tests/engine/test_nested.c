/* Nested transactions as savepoints (issue #13): a nested level is a mark in
 * the session's undo log inside one LMDB write transaction (engine/undo.h).
 * Rolling a level back at depth 2 or 3 takes back every kind of change it
 * made (insert, replace, delete, escrow, autoincrement, create and drop of
 * tables and indexes) and leaves the row counts exact; committing one hands
 * its changes to its parent.  A randomized test compares random operations
 * and random nested commits and rollbacks with an in-memory model; a failed
 * allocation of the undo log fails the innermost level alone and rolls back
 * cleanly.
 *
 * Scale: the model test's steps are multiplied by EDB_TEST_SCALE percent (10
 * under sanitizers by default).  EDB_TEST_SEED changes its random stream. */
#include "config.h"

#include <errno.h>
#include <pthread.h>

#include "helpers.h"
#include "sys.h"

#define NKEYS 64

static char *dir;
static edb_env *env;
static edb_session *s;
static edb_cursor *c;

static unsigned
scaled(unsigned n)
{
    return test_scaled_min(n, 1);
}

/* t(k INT32 primary, n INT64 ESCROW default 0, y INT32, b BINARY), an index
 * on y; no rows. */
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
        { "b", EDB_COL_BINARY, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = { { "pk", "+k\0", EDB_IDX_PRIMARY }, { "by_y", "+y\0", 0 } };
    edb_table_def def = { "t", cols, 4, idx, 2 };
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

TestSuite(nested, .init = setup, .fini = teardown, .timeout = 120);

/* ---- the model: one row per key ---- */
typedef struct mrow { bool present; int32_t y; int64_t n; } mrow;

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

static void
insert(int32_t k, int32_t y)
{
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &k, 4, 0));
    OK(edb_column_set(c, 3, &y, 4, 0));
    OK(edb_update(c));
}

static void
replace_y(int32_t k, int32_t y)
{
    seek_k(c, k);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 3, &y, 4, 0));
    OK(edb_update(c));
}

static void
delete_k(int32_t k)
{
    seek_k(c, k);
    OK(edb_record_delete(c));
}

static void
escrow_k(int32_t k, int64_t d)
{
    seek_k(c, k);
    OK(edb_escrow_update(c, 2, d, NULL));
}

static uint64_t
entries(const char *table, const char *index)
{
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, table, index));
    return st.entries;
}

/* The table equals @m: the records in key order, the index on y entry for
 * entry (scanned), and both exact counts. */
static void
check_model(const mrow *m, const char *when)
{
    edb_cursor *r;
    OK(edb_cursor_open(&r, s, "t"));
    uint64_t want = 0;
    int32_t k = -1;
    for (int32_t i = 0; i < NKEYS; i++)
        want += m[i].present;
    uint64_t got = 0;
    int rc = edb_cursor_move(r, EDB_MOVE_FIRST);
    while (rc == 0) {
        int32_t y = 0;
        int64_t n = 0;
        size_t ylen = 0;
        OK(edb_column_get(r, 1, &k, 4, NULL, 0));
        OK(edb_column_get(r, 2, &n, 8, NULL, 0));
        OK(edb_column_get(r, 3, &y, 4, &ylen, 0));
        cr_assert(k >= 0 && k < NKEYS && m[k].present, "%s: row %d should not be there", when, k);
        cr_assert_eq(y, m[k].y, "%s: row %d: y %d, want %d", when, k, y, m[k].y);
        cr_assert_eq(n, m[k].n, "%s: row %d: n %lld, want %lld", when, k, (long long)n,
                     (long long)m[k].n);
        got++;
        rc = edb_cursor_move(r, EDB_MOVE_NEXT);
    }
    RC(rc, EDB_NOTFOUND);
    cr_assert_eq(got, want, "%s: %llu rows, want %llu", when, (unsigned long long)got,
                 (unsigned long long)want);
    /* the index: one entry per row, each leading to a row with that y */
    OK(edb_cursor_set_index(r, "by_y"));
    got = 0;
    int32_t prev = INT32_MIN;
    rc = edb_cursor_move(r, EDB_MOVE_FIRST);
    while (rc == 0) {
        int32_t y = 0;
        OK(edb_column_get(r, 1, &k, 4, NULL, 0));
        OK(edb_column_get(r, 3, &y, 4, NULL, 0));
        cr_assert(k >= 0 && k < NKEYS && m[k].present && m[k].y == y,
                  "%s: index entry of row %d (y %d) should not be there", when, k, y);
        cr_assert_geq(y, prev, "%s: index out of order", when);
        prev = y;
        got++;
        rc = edb_cursor_move(r, EDB_MOVE_NEXT);
    }
    RC(rc, EDB_NOTFOUND);
    edb_cursor_close(r);
    cr_assert_eq(got, want, "%s: %llu index entries, want %llu", when, (unsigned long long)got,
                 (unsigned long long)want);
    cr_assert_eq(entries("t", NULL), want, "%s: row count", when);
    cr_assert_eq(entries("t", "by_y"), want, "%s: index entry count", when);
}

/* ---- every kind of row change, rolled back at depth 2 and 3 ---- */

static void
rows_at_depth(int depth)
{
    mrow m[NKEYS] = { 0 };
    for (int32_t k = 0; k < 6; k++) {       /* committed before */
        insert(k, k * 10);
        m[k] = (mrow){ true, k * 10, 0 };
    }
    OK(edb_txn_begin(s, 0));
    insert(10, 100);                        /* the outer level's work: kept */
    m[10] = (mrow){ true, 100, 0 };
    for (int d = 2; d <= depth; d++)
        OK(edb_txn_begin(s, 0));
    cr_assert_eq(edb_txn_depth(s), depth);
    mrow before[NKEYS];
    memcpy(before, m, sizeof m);
    insert(20, 7);
    replace_y(1, 99);
    replace_y(10, 98);                      /* a row of the outer level */
    delete_k(2);
    escrow_k(3, 5);
    escrow_k(3, -2);
    delete_k(10);
    insert(10, 1);                          /* deleted and inserted again */
    m[20] = (mrow){ true, 7, 0 };
    m[1].y = 99;
    m[2].present = false;
    m[3].n = 3;
    m[10] = (mrow){ true, 1, 0 };
    check_model(m, "inside the level");
    OK(edb_txn_rollback(s));
    cr_assert_eq(edb_txn_depth(s), depth - 1);
    check_model(before, "after the rollback");
    while (edb_txn_depth(s) > 0)
        OK(edb_txn_commit(s));
    check_model(before, "after the commits");
}

Test(nested, every_row_change_rolled_back_at_depth_2)
{
    rows_at_depth(2);
}

Test(nested, every_row_change_rolled_back_at_depth_3)
{
    rows_at_depth(3);
}

/* A level committed into its parent is undone by the parent's rollback; the
 * same levels committed all the way keep everything. */
Test(nested, committed_level_undone_by_parent_rollback)
{
    mrow m[NKEYS] = { 0 }, empty[NKEYS] = { 0 };
    for (int round = 0; round < 2; round++) {
        OK(edb_txn_begin(s, 0));
        OK(edb_txn_begin(s, 0));
        insert(1, 1);
        OK(edb_txn_begin(s, 0));
        insert(2, 2);
        escrow_k(1, 4);
        OK(edb_txn_begin(s, 0));
        replace_y(2, 22);
        OK(edb_txn_commit(s));              /* into level 3 */
        OK(edb_txn_commit(s));              /* into level 2 */
        m[1] = (mrow){ true, 1, 4 };
        m[2] = (mrow){ true, 22, 0 };
        check_model(m, "level 2");
        if (round == 0) {
            OK(edb_txn_rollback(s));        /* level 2 and what was committed into it */
            check_model(empty, "level 2 rolled back");
            OK(edb_txn_commit(s));
            check_model(empty, "committed");
        } else {
            OK(edb_txn_commit(s));
            OK(edb_txn_commit(s));
            check_model(m, "committed");
        }
    }
}

/* Schema changes at depth 2 and 3 rolled back: a created table and index are
 * gone, a dropped table and index are back with their rows, entries and
 * counts; cursors open on them work again. */
static void
schema_at_depth(int depth)
{
    mrow m[NKEYS] = { 0 };
    for (int32_t k = 0; k < 5; k++) {
        insert(k, 5 - k);
        m[k] = (mrow){ true, 5 - k, 0 };
    }
    edb_column_def ocols[] = { { "v", EDB_COL_INT32, 0, 0, NULL, 0 } };
    edb_index_def oidx[] = { { "by_v", "+v\0", 0 } };
    edb_table_def odef = { "other", ocols, 1, oidx, 1 };
    OK(edb_table_create(s, &odef));
    edb_cursor *oc;
    OK(edb_cursor_open(&oc, s, "other"));
    for (int32_t v = 0; v < 3; v++) {
        OK(edb_update_prepare(oc, EDB_PREP_INSERT));
        OK(edb_column_set(oc, 1, &v, 4, 0));
        OK(edb_update(oc));
    }
    OK(edb_txn_begin(s, 0));
    for (int d = 2; d <= depth; d++)
        OK(edb_txn_begin(s, 0));
    /* create a table with rows, an index on t; drop t's index and the other table */
    edb_table_def ndef = { "fresh", ocols, 1, oidx, 1 };
    OK(edb_table_create(s, &ndef));
    edb_cursor *nc;
    OK(edb_cursor_open(&nc, s, "fresh"));
    for (int32_t v = 0; v < 4; v++) {
        OK(edb_update_prepare(nc, EDB_PREP_INSERT));
        OK(edb_column_set(nc, 1, &v, 4, 0));
        OK(edb_update(nc));
    }
    cr_assert_eq(entries("fresh", NULL), 4);
    edb_index_def ny = { "by_n", "-y\0", 0 };
    OK(edb_index_create(s, "t", &ny));
    cr_assert_eq(entries("t", "by_n"), 5);
    OK(edb_index_drop(s, "t", "by_y"));
    OK(edb_table_drop(s, "other"));
    RC(edb_table_stat(&(edb_tree_stat){ 0 }, s, "other", NULL), EDB_NOTFOUND);
    RC(edb_cursor_move(oc, EDB_MOVE_FIRST), EDB_DROPPED);
    OK(edb_txn_rollback(s));
    /* everything as before the level */
    RC(edb_table_stat(&(edb_tree_stat){ 0 }, s, "fresh", NULL), EDB_NOTFOUND);
    RC(edb_cursor_move(nc, EDB_MOVE_FIRST), EDB_DROPPED);
    RC(edb_table_stat(&(edb_tree_stat){ 0 }, s, "t", "by_n"), EDB_NOTFOUND);
    check_model(m, "after the rollback");
    cr_assert_eq(entries("other", NULL), 3);
    cr_assert_eq(entries("other", "by_v"), 3);
    OK(edb_cursor_move(oc, EDB_MOVE_FIRST));
    int32_t v = -1;
    OK(edb_column_get(oc, 1, &v, 4, NULL, 0));
    cr_assert_eq(v, 0);
    char **names;
    size_t n;
    OK(edb_table_list(&names, &n, s));
    cr_assert_eq(n, 2);
    cr_assert_str_eq(names[0], "other");
    cr_assert_str_eq(names[1], "t");
    edb_free(names);
    /* the same changes again, committed this time: the ids and counts
     * handed out by the rolled-back level do not get in the way */
    OK(edb_index_create(s, "t", &ny));
    OK(edb_table_create(s, &ndef));
    while (edb_txn_depth(s) > 0)
        OK(edb_txn_commit(s));
    cr_assert_eq(entries("t", "by_n"), 5);
    cr_assert_eq(entries("fresh", NULL), 0);
    cr_assert_eq(entries("other", NULL), 3);
    edb_cursor_close(nc);
    edb_cursor_close(oc);
}

Test(nested, schema_changes_rolled_back_at_depth_2)
{
    schema_at_depth(2);
}

Test(nested, schema_changes_rolled_back_at_depth_3)
{
    schema_at_depth(3);
}

/* A unique index built in a nested level over rows that share a key fails
 * with EDB_KEYDUP and leaves nothing behind; the level goes on. */
Test(nested, failed_index_build_in_a_level_leaves_nothing)
{
    mrow m[NKEYS] = { 0 };
    OK(edb_txn_begin(s, 0));
    OK(edb_txn_begin(s, 0));
    for (int32_t k = 0; k < 6; k++) {
        insert(k, k % 3);
        m[k] = (mrow){ true, k % 3, 0 };
    }
    edb_index_def uy = { "uy", "+y\0", EDB_IDX_UNIQUE };
    RC(edb_index_create(s, "t", &uy), EDB_KEYDUP);
    RC(edb_table_stat(&(edb_tree_stat){ 0 }, s, "t", "uy"), EDB_NOTFOUND);
    check_model(m, "after the failed build");
    OK(edb_txn_commit(s));
    OK(edb_txn_commit(s));
    check_model(m, "committed");
}

/* A cursor on a row inserted in a rolled-back level at depth 3: reads say
 * the record is gone, MOVE_NEXT goes on from its place; a cursor positioned
 * on a row the level deleted is back on it. */
Test(nested, cursor_on_row_of_rolled_back_level)
{
    for (int32_t k = 10; k <= 30; k += 10)
        insert(k, k);
    edb_cursor *c2;
    OK(edb_cursor_open(&c2, s, "t"));
    seek_k(c2, 30);
    OK(edb_txn_begin(s, 0));
    OK(edb_txn_begin(s, 0));
    OK(edb_txn_begin(s, 0));
    insert(25, 25);
    cr_assert_eq(cur_k(c), 25);
    OK(edb_record_delete(c2));
    OK(edb_txn_rollback(s));
    RC(edb_column_get(c, 1, NULL, 0, NULL, 0), EDB_RECORD_DELETED);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(c), 30);
    cr_assert_eq(cur_k(c2), 30);
    OK(edb_cursor_move(c2, EDB_MOVE_PREV));
    cr_assert_eq(cur_k(c2), 20);
    OK(edb_txn_rollback(s));
    OK(edb_txn_rollback(s));
    edb_cursor_close(c2);
}

/* AUTOINC values handed out in a rolled-back level are never handed out
 * again (ESE); the implicit key's counter neither. */
Test(nested, autoinc_not_reused_after_level_rollback)
{
    edb_column_def cols[] = {
        { "id", EDB_COL_INT64, EDB_COL_AUTOINC, 0, NULL, 0 },
        { "v", EDB_COL_INT32, 0, 0, NULL, 0 },
    };
    edb_table_def def = { "auto", cols, 2, NULL, 0 };
    OK(edb_table_create(s, &def));
    edb_cursor *ac;
    OK(edb_cursor_open(&ac, s, "auto"));
    int64_t seen[4];
    OK(edb_txn_begin(s, 0));
    for (int i = 0; i < 4; i++) {
        OK(edb_txn_begin(s, 0));
        OK(edb_update_prepare(ac, EDB_PREP_INSERT));
        OK(edb_column_set(ac, 2, &i, 4, 0));
        OK(edb_update(ac));
        OK(edb_column_get(ac, 1, &seen[i], 8, NULL, 0));
        for (int j = 0; j < i; j++)
            cr_assert_neq(seen[i], seen[j], "value %lld handed out twice", (long long)seen[i]);
        if (i % 2 == 0)
            OK(edb_txn_rollback(s));
        else
            OK(edb_txn_commit(s));
    }
    OK(edb_txn_commit(s));
    cr_assert_eq(entries("auto", NULL), 2);
    edb_cursor_close(ac);
}

/* EDB_TXNDEPTH at the limit; every level rolled back one by one undoes its
 * own insert only. */
Test(nested, depth_limit_and_level_by_level_rollback)
{
    mrow m[NKEYS] = { 0 };
    mrow at[EDB_TXN_MAX_DEPTH + 1][NKEYS];
    for (int d = 1; d <= EDB_TXN_MAX_DEPTH; d++) {
        memcpy(at[d - 1], m, sizeof m);
        OK(edb_txn_begin(s, 0));
        insert(d, d);
        m[d] = (mrow){ true, d, 0 };
    }
    RC(edb_txn_begin(s, 0), EDB_TXNDEPTH);
    check_model(m, "at the limit");
    for (int d = EDB_TXN_MAX_DEPTH; d >= 2; d--) {
        OK(edb_txn_rollback(s));
        check_model(at[d - 1], "one level less");
    }
    OK(edb_txn_commit(s));
    check_model(at[1], "committed");
}

/* A replace prepared before a nested level whose record the level changed
 * and rolled back: the record's bytes are as prepared again, so the update
 * goes through; changed inside the level, it is a conflict. */
Test(nested, write_conflict_across_levels)
{
    insert(1, 1);
    edb_cursor *c2;
    OK(edb_cursor_open(&c2, s, "t"));
    OK(edb_txn_begin(s, 0));
    OK(edb_txn_begin(s, 0));
    seek_k(c2, 1);
    OK(edb_update_prepare(c2, EDB_PREP_REPLACE));
    int32_t y = 50;
    OK(edb_column_set(c2, 3, &y, 4, 0));
    escrow_k(1, 1);                     /* another cursor changes the record */
    RC(edb_update(c2), EDB_WRITE_CONFLICT);
    edb_update_cancel(c2);
    OK(edb_txn_rollback(s));
    mrow m[NKEYS] = { [1] = { true, 1, 0 } };
    check_model(m, "after the rollback");
    OK(edb_txn_commit(s));
    edb_cursor_close(c2);
}

/* ---- random operations and levels against a model ---- */

static uint64_t rng;

static uint32_t
rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

Test(nested, random_levels_against_model)
{
    const char *seed = getenv("EDB_TEST_SEED");
    rng = seed != NULL ? strtoull(seed, NULL, 10) * 2654435761u + 1 : 0x9e3779b97f4a7c15ull;
    mrow lv[EDB_TXN_MAX_DEPTH + 1][NKEYS];  /* lv[d]: the state at depth d */
    memset(lv, 0, sizeof lv);
    unsigned steps = scaled(20000), checks = 0;
    for (unsigned i = 0; i < steps; i++) {
        int d = edb_txn_depth(s);
        mrow *m = lv[d];
        uint32_t op = rnd(100);
        if (op < 8 && d < EDB_TXN_MAX_DEPTH) {
            OK(edb_txn_begin(s, 0));
            memcpy(lv[d + 1], m, sizeof lv[0]);
        } else if (op < 14 && d > 0) {
            OK(edb_txn_commit(s));
            memcpy(lv[d - 1], m, sizeof lv[0]);
            check_model(lv[d - 1], "after a commit");
            checks++;
        } else if (op < 19 && d > 0) {
            OK(edb_txn_rollback(s));
            check_model(lv[d - 1], "after a rollback");
            checks++;
        } else {
            int32_t k = (int32_t)rnd(NKEYS);
            if (!m[k].present) {
                int32_t y = (int32_t)rnd(8);
                insert(k, y);
                m[k] = (mrow){ true, y, 0 };
            } else if (op < 50) {
                int32_t y = (int32_t)rnd(8);
                replace_y(k, y);
                m[k].y = y;
            } else if (op < 70) {
                delete_k(k);
                m[k].present = false;
            } else {
                int64_t delta = (int64_t)rnd(11) - 5;
                escrow_k(k, delta);
                m[k].n += delta;
            }
        }
    }
    while (edb_txn_depth(s) > 0) {
        int d = edb_txn_depth(s);
        OK(edb_txn_commit(s));
        memcpy(lv[d - 1], lv[d], sizeof lv[0]);
    }
    check_model(lv[0], "at the end");
    cr_assert_gt(checks, 0u);
    /* what another env sees after a reopen */
    edb_cursor_close(c);
    edb_session_end(s);
    edb_env_close(env);
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    OK(edb_cursor_open(&c, s, "t"));
    check_model(lv[0], "after a reopen");
}

/* ---- the undo log cannot grow ---- */

/* For each of several fill levels of the log, the next growth of the undo
 * log fails: the update that needed it fails with EDB_NOMEM, the level is
 * failed (calls say so) while the outer level is intact; rolling the level
 * back restores everything, the outer level commits its work. */
Test(nested, undo_log_out_of_memory_rolls_back_cleanly)
{
    static uint8_t blob[1500];
    memset(blob, 0xab, sizeof blob);
    mrow m[NKEYS] = { 0 };
    for (int32_t k = 0; k < 8; k++) {
        insert(k, k);
        m[k] = (mrow){ true, k, 0 };
    }
    unsigned failed = 0;
    for (int pre = 0; pre < 12; pre++) {
        OK(edb_txn_begin(s, 0));
        insert(40 + pre, pre);                  /* outer level's work */
        m[40 + pre] = (mrow){ true, pre, 0 };
        OK(edb_txn_begin(s, 0));
        /* fill the log with old values of b, then of fresh inserts */
        for (int i = 0; i < pre; i++) {
            seek_k(c, i % 8);
            OK(edb_update_prepare(c, EDB_PREP_REPLACE));
            OK(edb_column_set(c, 4, blob, sizeof blob - (size_t)(i * 97 % 700), 0));
            OK(edb_update(c));
        }
        edb__fault_arm(1, ENOMEM, 0);
        int rc = 0;
        for (int32_t k = 20; k < 40 && rc == 0; k++) {
            OK(edb_update_prepare(c, EDB_PREP_INSERT));
            OK(edb_column_set(c, 1, &k, 4, 0));
            OK(edb_column_set(c, 4, blob, sizeof blob, 0));
            rc = edb_update(c);
        }
        long fired = edb__fault_fired();
        edb__fault_disarm();
        if (fired > 0) {
            RC(rc, EDB_NOMEM);
            failed++;
            edb_update_cancel(c);
            RC(edb_table_stat(&(edb_tree_stat){ 0 }, s, "t", NULL), EDB_NOMEM);
        } else {
            OK(rc);
        }
        cr_assert_eq(edb_txn_depth(s), 2);
        OK(edb_txn_rollback(s));
        check_model(m, "the level rolled back");
        OK(edb_txn_commit(s));
        check_model(m, "the outer level committed");
    }
    cr_assert_gt(failed, 0u, "the undo log never grew");
}

/* ---- used the way other code would ---- */

typedef struct writer_arg { int32_t k; int rc; } writer_arg;

static void *
insert_from_thread(void *p)
{
    writer_arg *a = p;
    a->rc = edb_update_prepare(c, EDB_PREP_INSERT);
    if (a->rc == 0)
        a->rc = edb_column_set(c, 1, &a->k, 4, 0);
    if (a->rc == 0)
        a->rc = edb_update(c);
    return NULL;
}

/* A session is used by one thread at a time, not always the one that began
 * its transaction: a write made from another thread inside a nested level is
 * logged all the same and undone by the level's rollback. */
Test(nested, write_from_another_thread_is_undone)
{
    mrow m[NKEYS] = { [1] = { true, 0, 0 } };
    insert(1, 0);
    OK(edb_txn_begin(s, 0));
    OK(edb_txn_begin(s, 0));
    pthread_t th;
    writer_arg a = { 7, -999 };
    cr_assert_eq(pthread_create(&th, NULL, insert_from_thread, &a), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    OK(a.rc);
    cr_assert_eq(entries("t", NULL), 2);
    OK(edb_txn_rollback(s));
    check_model(m, "after the rollback");
    OK(edb_txn_commit(s));
    check_model(m, "committed");
}

/* Closing the env under a session with three levels open loses all of
 * them; the reopened env's sessions nest levels as before. */
Test(nested, env_close_with_open_levels)
{
    mrow m[NKEYS] = { [1] = { true, 1, 0 } };
    insert(1, 1);
    OK(edb_txn_begin(s, 0));
    insert(2, 2);
    OK(edb_txn_begin(s, 0));
    replace_y(1, 5);
    OK(edb_txn_begin(s, 0));
    delete_k(1);
    edb_env_close(env);                     /* kills the session */
    RC(edb_txn_commit(s), EDB_CLOSED);
    edb_cursor_close(c);
    edb_session_end(s);
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    OK(edb_cursor_open(&c, s, "t"));
    check_model(m, "after the reopen");
    OK(edb_txn_begin(s, 0));
    OK(edb_txn_begin(s, 0));
    insert(3, 3);
    OK(edb_txn_rollback(s));
    OK(edb_txn_commit(s));
    check_model(m, "a level rolled back after the reopen");
}

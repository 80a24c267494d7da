/* Cursors: seeks in every mode, prefix keys, PREFIX_END, ranges, moves. */
#include "config.h"

#include <fcntl.h>

#include "helpers.h"

static char *dir;
static edb_env *env;
static edb_session *s;
static edb_cursor *c;

/* rows (id, grp, name): grp = id / 10 for ids 10..59 step 2, names "n<id%10>" */
static void
setup(void)
{
    dir = make_tmpdir();
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    edb_column_def cols[] = {
        { "id", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "grp", EDB_COL_INT32, 0, 0, NULL, 0 },
        { "name", EDB_COL_TEXT, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = {
        { "pk", "+id\0", EDB_IDX_PRIMARY },
        { "g", "+grp\0", 0 },
        { "gd", "-grp\0", 0 },
        { "gn", "+grp\0+name\0", EDB_IDX_UNIQUE },
        { "gnd", "-grp\0-name\0", EDB_IDX_UNIQUE },
    };
    edb_table_def def = { "t", cols, 3, idx, 5 };
    OK(edb_table_create(s, &def));
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_txn_begin(s, 0));
    for (int32_t id = 10; id < 60; id += 2) {
        int32_t grp = id / 10;
        char name[8];
        snprintf(name, sizeof name, "n%d", id % 10);
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &id, 4, 0));
        OK(edb_column_set(c, 2, &grp, 4, 0));
        OK(edb_column_set(c, 3, name, strlen(name), 0));
        OK(edb_update(c));
    }
    OK(edb_txn_commit(s));
    /* c is still on the last row (a cursor keeps its position across
     * transactions): the tests start from a fresh, unpositioned cursor */
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

TestSuite(cursor, .init = setup, .fini = teardown, .timeout = 30);

static int32_t
cur_id(void)
{
    int32_t id = -1;
    OK(edb_column_get(c, 1, &id, 4, NULL, 0));
    return id;
}

static int
seek1(int32_t v, unsigned flags, unsigned how)
{
    OK(edb_key_make(c, &v, 4, EDB_KEY_NEW | flags));
    return edb_cursor_seek(c, how);
}

static void
seek_unique_body(void)
{
    OK(seek1(20, 0, EDB_SEEK_EQ)); cr_assert_eq(cur_id(), 20);
    RC(seek1(21, 0, EDB_SEEK_EQ), EDB_NOTFOUND);
    RC(edb_column_get(c, 1, NULL, 0, NULL, 0), EDB_NOCURRENT);
    OK(seek1(21, 0, EDB_SEEK_GE)); cr_assert_eq(cur_id(), 22);
    OK(seek1(20, 0, EDB_SEEK_GE)); cr_assert_eq(cur_id(), 20);
    OK(seek1(20, 0, EDB_SEEK_GT)); cr_assert_eq(cur_id(), 22);
    OK(seek1(20, 0, EDB_SEEK_LE)); cr_assert_eq(cur_id(), 20);
    OK(seek1(21, 0, EDB_SEEK_LE)); cr_assert_eq(cur_id(), 20);
    OK(seek1(20, 0, EDB_SEEK_LT)); cr_assert_eq(cur_id(), 18);
    RC(seek1(10, 0, EDB_SEEK_LT), EDB_NOTFOUND);
    RC(seek1(58, 0, EDB_SEEK_GT), EDB_NOTFOUND);
    OK(seek1(1000, 0, EDB_SEEK_LE)); cr_assert_eq(cur_id(), 58);
    OK(seek1(-5, 0, EDB_SEEK_GE)); cr_assert_eq(cur_id(), 10);
    /* negative values sort before positive ones */
    RC(seek1(-5, 0, EDB_SEEK_LE), EDB_NOTFOUND);
    RC(edb_cursor_seek(c, EDB_SEEK_EQ), EDB_INVAL);    /* the key was consumed */
    int32_t v = 1;
    OK(edb_key_make(c, &v, 4, EDB_KEY_NEW));
    RC(edb_cursor_seek(c, 0), EDB_INVAL);
    RC(edb_cursor_seek(c, 6), EDB_INVAL);
    RC(edb_cursor_seek(NULL, EDB_SEEK_EQ), EDB_INVAL);
}

Test(cursor, seek_unique_primary)
{
    seek_unique_body();
}

/* the same in an explicit transaction, where moves and reads take their fast paths */
Test(cursor, seek_unique_primary_in_a_read_only_txn)
{
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    seek_unique_body();
    OK(edb_txn_commit(s));
}

static void
seek_non_unique_body(void)
{
    OK(edb_cursor_set_index(c, "g"));
    /* grp 2 holds ids 20..28 */
    OK(seek1(2, 0, EDB_SEEK_EQ)); cr_assert_eq(cur_id(), 20);
    OK(seek1(2, 0, EDB_SEEK_GE)); cr_assert_eq(cur_id(), 20);
    OK(seek1(2, 0, EDB_SEEK_GT)); cr_assert_eq(cur_id(), 30);
    OK(seek1(2, 0, EDB_SEEK_LE)); cr_assert_eq(cur_id(), 28);
    OK(seek1(2, 0, EDB_SEEK_LT)); cr_assert_eq(cur_id(), 18);
    RC(seek1(9, 0, EDB_SEEK_EQ), EDB_NOTFOUND);
    OK(seek1(9, 0, EDB_SEEK_LT)); cr_assert_eq(cur_id(), 58);
    OK(edb_cursor_set_index(c, "gd"));
    /* descending: grp 5 first */
    OK(edb_cursor_move(c, EDB_MOVE_FIRST)); cr_assert_eq(cur_id(), 50);
    OK(seek1(2, 0, EDB_SEEK_EQ)); cr_assert_eq(cur_id(), 20);
    OK(seek1(2, 0, EDB_SEEK_GT)); cr_assert_eq(cur_id(), 10);    /* after grp 2 comes grp 1 */
    OK(seek1(2, 0, EDB_SEEK_LT)); cr_assert_eq(cur_id(), 38);    /* before it: grp 3's last */
    OK(seek1(2, 0, EDB_SEEK_LE)); cr_assert_eq(cur_id(), 28);
    OK(seek1(2, 0, EDB_SEEK_GE)); cr_assert_eq(cur_id(), 20);
}

Test(cursor, seek_non_unique_ascending_and_descending)
{
    seek_non_unique_body();
}

/* the same in an explicit transaction, where moves and reads take their fast paths */
Test(cursor, seek_non_unique_in_a_read_only_txn)
{
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    seek_non_unique_body();
    OK(edb_txn_commit(s));
}

static int
seek2(int32_t g, const char *name, unsigned flags2, unsigned how)
{
    OK(edb_key_make(c, &g, 4, EDB_KEY_NEW));
    OK(edb_key_make(c, name, strlen(name), flags2));
    return edb_cursor_seek(c, how);
}

Test(cursor, multi_column_prefix_and_prefix_end)
{
    OK(edb_cursor_set_index(c, "gn"));
    OK(seek2(3, "n4", 0, EDB_SEEK_EQ)); cr_assert_eq(cur_id(), 34);
    RC(seek2(3, "n5", 0, EDB_SEEK_EQ), EDB_NOTFOUND);
    OK(seek2(3, "n5", 0, EDB_SEEK_GE)); cr_assert_eq(cur_id(), 36);
    OK(seek2(3, "n5", 0, EDB_SEEK_LE)); cr_assert_eq(cur_id(), 34);
    OK(seek2(3, "n4", 0, EDB_SEEK_GT)); cr_assert_eq(cur_id(), 36);
    OK(seek2(3, "n4", 0, EDB_SEEK_LT)); cr_assert_eq(cur_id(), 32);
    /* text "n" is a prefix of no stored name segment as a whole value: no EQ */
    RC(seek2(3, "n", 0, EDB_SEEK_EQ), EDB_NOTFOUND);
    /* a key of the first column is a prefix: EQ finds the first with it */
    OK(seek1(4, 0, EDB_SEEK_EQ)); cr_assert_eq(cur_id(), 40);
    OK(seek1(4, 0, EDB_SEEK_GE)); cr_assert_eq(cur_id(), 40);
    OK(seek1(4, 0, EDB_SEEK_LT)); cr_assert_eq(cur_id(), 38);
    /* a prefix sorts before its extensions: LE without PREFIX_END stops before them */
    OK(seek1(4, 0, EDB_SEEK_LE)); cr_assert_eq(cur_id(), 38);
    /* PREFIX_END: after every entry of grp 4 */
    OK(seek1(4, EDB_KEY_PREFIX_END, EDB_SEEK_LE)); cr_assert_eq(cur_id(), 48);
    OK(seek1(4, EDB_KEY_PREFIX_END, EDB_SEEK_LT)); cr_assert_eq(cur_id(), 48);
    OK(seek1(4, EDB_KEY_PREFIX_END, EDB_SEEK_GE)); cr_assert_eq(cur_id(), 50);
    RC(seek1(5, EDB_KEY_PREFIX_END, EDB_SEEK_GT), EDB_NOTFOUND);
    /* descending two-column index */
    OK(edb_cursor_set_index(c, "gnd"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST)); cr_assert_eq(cur_id(), 58);
    OK(seek1(4, 0, EDB_SEEK_EQ)); cr_assert_eq(cur_id(), 48);
    OK(seek1(4, EDB_KEY_PREFIX_END, EDB_SEEK_LE)); cr_assert_eq(cur_id(), 40);
    OK(seek2(4, "n3", 0, EDB_SEEK_GE)); cr_assert_eq(cur_id(), 42);
    /* key_make misuse */
    int32_t v = 1;
    RC(edb_key_make(c, &v, 4, 0), EDB_INVAL);           /* no NEW after a seek */
    OK(edb_key_make(c, &v, 4, EDB_KEY_NEW | EDB_KEY_PREFIX_END));
    RC(edb_key_make(c, "a", 1, 0), EDB_INVAL);          /* after PREFIX_END */
    OK(edb_key_make(c, &v, 4, EDB_KEY_NEW));
    OK(edb_key_make(c, "a", 1, 0));
    RC(edb_key_make(c, "a", 1, 0), EDB_INVAL);          /* three segments on two */
    RC(edb_key_make(c, &v, 2, EDB_KEY_NEW), EDB_INVAL); /* wrong size */
    RC(edb_key_make(c, &v, 4, 0x80), EDB_INVAL);
    RC(edb_key_make(NULL, &v, 4, EDB_KEY_NEW), EDB_INVAL);
    char big[600];
    memset(big, 'a', sizeof big);
    OK(edb_key_make(c, &v, 4, EDB_KEY_NEW));
    RC(edb_key_make(c, big, sizeof big, 0), EDB_TOOBIG);
}

static int
walk(int how, int32_t *ids, int max)
{
    int n = 0;
    while (n < max && edb_cursor_move(c, how) == 0)
        ids[n++] = cur_id();
    return n;
}

static void
ranges_body(void)
{
    int32_t ids[64];
    /* ids 20..30 inclusive upper */
    OK(seek1(20, 0, EDB_SEEK_GE));
    OK(edb_key_make(c, &(int32_t){ 30 }, 4, EDB_KEY_NEW));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER | EDB_RANGE_INCLUSIVE));
    int n = walk(EDB_MOVE_NEXT, ids, 64);
    cr_assert_eq(n, 5);
    cr_assert_eq(ids[4], 30);
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_NOTFOUND);
    OK(edb_cursor_move(c, EDB_MOVE_PREV)); cr_assert_eq(cur_id(), 30);   /* moving back works */
    /* exclusive upper */
    OK(seek1(20, 0, EDB_SEEK_GE));
    OK(edb_key_make(c, &(int32_t){ 30 }, 4, EDB_KEY_NEW));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER));
    n = walk(EDB_MOVE_NEXT, ids, 64);
    cr_assert_eq(n, 4);
    cr_assert_eq(ids[3], 28);
    /* lower limit moving back */
    OK(seek1(30, 0, EDB_SEEK_LE));
    OK(edb_key_make(c, &(int32_t){ 24 }, 4, EDB_KEY_NEW));
    OK(edb_cursor_set_range(c, EDB_RANGE_INCLUSIVE));
    n = walk(EDB_MOVE_PREV, ids, 64);
    cr_assert_eq(n, 3);
    cr_assert_eq(ids[2], 24);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT)); cr_assert_eq(cur_id(), 24);
    /* already outside: NOTFOUND and no range */
    OK(seek1(40, 0, EDB_SEEK_EQ));
    OK(edb_key_make(c, &(int32_t){ 30 }, 4, EDB_KEY_NEW));
    RC(edb_cursor_set_range(c, EDB_RANGE_UPPER), EDB_NOTFOUND);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT)); cr_assert_eq(cur_id(), 42);
    /* removal, and no key */
    OK(seek1(20, 0, EDB_SEEK_GE));
    OK(edb_key_make(c, &(int32_t){ 22 }, 4, EDB_KEY_NEW));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER | EDB_RANGE_INCLUSIVE));
    OK(edb_cursor_set_range(c, EDB_RANGE_REMOVE));
    n = walk(EDB_MOVE_NEXT, ids, 64);
    cr_assert_eq(n, 19);
    RC(edb_cursor_set_range(c, EDB_RANGE_UPPER), EDB_INVAL);
    RC(edb_cursor_set_range(c, 0x40), EDB_INVAL);
    RC(edb_cursor_set_range(NULL, EDB_RANGE_UPPER), EDB_INVAL);
    /* prefix range on a non-unique index: every entry of grp 3 with PREFIX_END */
    OK(edb_cursor_set_index(c, "g"));
    OK(seek1(3, 0, EDB_SEEK_EQ));
    OK(edb_key_make(c, &(int32_t){ 3 }, 4, EDB_KEY_NEW | EDB_KEY_PREFIX_END));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER));
    n = walk(EDB_MOVE_NEXT, ids, 64);
    cr_assert_eq(n, 4);
    cr_assert_eq(ids[3], 38);
    /* a range is removed by a FIRST move */
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    n = walk(EDB_MOVE_NEXT, ids, 64);
    cr_assert_eq(n, 24);
}

Test(cursor, ranges)
{
    ranges_body();
}

/* the same in an explicit transaction, where moves and reads take their fast paths */
Test(cursor, ranges_in_a_read_only_txn)
{
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    ranges_body();
    OK(edb_txn_commit(s));
}

/* the same in an explicit transaction, where moves and reads take their fast paths */
Test(cursor, ranges_in_a_write_txn)
{
    OK(edb_txn_begin(s, 0));
    ranges_body();
    OK(edb_txn_commit(s));
}

static void
moves_body(void)
{
    int32_t ids[64];
    int n = walk(EDB_MOVE_NEXT, ids, 64);      /* unpositioned: NEXT starts at the first */
    cr_assert_eq(n, 25);
    cr_assert_eq(ids[0], 10);
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_NOTFOUND);
    OK(edb_cursor_move(c, EDB_MOVE_PREV)); cr_assert_eq(cur_id(), 58);
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    RC(edb_cursor_move(c, EDB_MOVE_PREV), EDB_NOTFOUND);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT)); cr_assert_eq(cur_id(), 10);
    OK(edb_cursor_move(c, 3)); cr_assert_eq(cur_id(), 16);
    OK(edb_cursor_move(c, -2)); cr_assert_eq(cur_id(), 12);
    RC(edb_cursor_move(c, 100), EDB_NOTFOUND);
    OK(edb_cursor_move(c, EDB_MOVE_LAST)); cr_assert_eq(cur_id(), 58);
    RC(edb_cursor_move(c, 0), EDB_INVAL);
    RC(edb_cursor_move(NULL, 1), EDB_INVAL);
    /* delete while walking: NEXT goes to the following row */
    OK(seek1(20, 0, EDB_SEEK_EQ));
    OK(edb_record_delete(c));
    RC(edb_column_get(c, 1, NULL, 0, NULL, 0), EDB_RECORD_DELETED);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT)); cr_assert_eq(cur_id(), 22);
    OK(seek1(24, 0, EDB_SEEK_EQ));
    OK(edb_record_delete(c));
    OK(edb_cursor_move(c, EDB_MOVE_PREV)); cr_assert_eq(cur_id(), 22);
    /* on a secondary index the same */
    OK(edb_cursor_set_index(c, "g"));
    cr_assert_str_eq(edb_cursor_index(c), "g");
    n = walk(EDB_MOVE_NEXT, ids, 64);
    cr_assert_eq(n, 23);
    OK(edb_cursor_set_index(c, NULL));
    cr_assert_str_eq(edb_cursor_index(c), "pk");
    RC(edb_cursor_set_index(c, "nosuch"), EDB_NOTFOUND);
    RC(edb_cursor_set_index(NULL, NULL), EDB_INVAL);
    cr_assert_null(edb_cursor_index(NULL));
}

Test(cursor, moves_at_the_ends_and_by_n)
{
    moves_body();
}

/* the same in an explicit transaction, where moves and reads take their fast paths */
Test(cursor, moves_in_a_write_txn)
{
    OK(edb_txn_begin(s, 0));
    moves_body();
    OK(edb_txn_commit(s));
}

Test(cursor, open_and_column_id_arguments)
{
    edb_cursor *x = (edb_cursor *)1;
    RC(edb_cursor_open(&x, s, "nosuch"), EDB_NOTFOUND);
    cr_assert_null(x);
    RC(edb_cursor_open(&x, NULL, "t"), EDB_INVAL);
    RC(edb_cursor_open(&x, s, NULL), EDB_INVAL);
    RC(edb_cursor_open(NULL, s, "t"), EDB_INVAL);
    edb_colid id = 9;
    RC(edb_column_id(&id, c, "nosuch"), EDB_NOTFOUND);
    cr_assert_eq(id, 0);
    RC(edb_column_id(NULL, c, "id"), EDB_INVAL);
    RC(edb_column_id(&id, NULL, "id"), EDB_INVAL);
    OK(edb_column_id(&id, c, "name"));
    cr_assert_eq(id & EDB_COLID_POSITION_MASK, 3);     /* the position, tagged above it */
    edb_cursor_close(NULL);
}

Test(cursor, implicit_txns_keep_position_and_session_end_leaves_zombies)
{
    OK(seek1(30, 0, EDB_SEEK_EQ));
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));     /* each call is its own implicit txn */
    cr_assert_eq(cur_id(), 32);
    /* update through the cursor in an implicit txn and keep going */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 3, "zz", 2, 0));
    OK(edb_update(c));
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_id(), 34);
    /* a replace that changes the primary key moves the record */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 1, &(int32_t){ 35 }, 4, 0));
    OK(edb_update(c));
    cr_assert_eq(cur_id(), 35);
    RC(seek1(34, 0, EDB_SEEK_EQ), EDB_NOTFOUND);
    /* and to an existing key is a KEYDUP that changes nothing */
    OK(seek1(35, 0, EDB_SEEK_EQ));
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 1, &(int32_t){ 36 }, 4, 0));
    RC(edb_update(c), EDB_KEYDUP);
    edb_update_cancel(c);
    OK(seek1(35, 0, EDB_SEEK_EQ));
    edb_session *s2;
    edb_cursor *c2, *c3;
    OK(edb_session_begin(&s2, env));
    OK(edb_cursor_open(&c2, s2, "t"));
    OK(edb_cursor_open(&c3, s2, "t"));
    edb_session_end(s2);       /* its cursors are zombies until closed (LSan checks) */
    RC(edb_cursor_move(c2, EDB_MOVE_FIRST), EDB_CLOSED);
    edb_cursor_close(c3);
    edb_cursor_close(c2);      /* the last one frees the session's body too */
}

/* ---- the cursor's cache of the current record (cursor.h, "Record cache") ----
 * Each check below reads a column of a record the cursor already read, after
 * something changed that record or the transaction under it: a stale cache
 * returns the old value or reads freed pages (ASan). */

static void
name_of(edb_cursor *cc, const char *want)
{
    char buf[64];
    size_t n = 0;
    OK(edb_column_get(cc, 3, buf, sizeof buf, &n, 0));
    cr_assert(n == strlen(want) && memcmp(buf, want, n) == 0, "name '%.*s', want '%s'", (int)n, buf, want);
}

static void
seek_on(edb_cursor *cc, int32_t id)
{
    OK(edb_key_make(cc, &id, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(cc, EDB_SEEK_EQ));
}

static void
rename_at(edb_cursor *cc, int32_t id, const char *name)
{
    seek_on(cc, id);
    OK(edb_update_prepare(cc, EDB_PREP_REPLACE));
    OK(edb_column_set(cc, 3, name, strlen(name), 0));
    OK(edb_update(cc));
}

Test(cursor, cache_sees_writes_through_another_cursor)
{
    edb_cursor *c2;
    OK(edb_cursor_open(&c2, s, "t"));
    OK(edb_txn_begin(s, 0));
    seek_on(c, 20);
    name_of(c, "n0");
    rename_at(c2, 20, "changed");
    name_of(c, "changed");
    /* enough inserts through c2 to split and move the pages under c */
    for (int32_t id = 1000; id < 3000; id++) {
        char nm[16];
        snprintf(nm, sizeof nm, "x%d", id);
        OK(edb_update_prepare(c2, EDB_PREP_INSERT));
        OK(edb_column_set(c2, 1, &id, 4, 0));
        OK(edb_column_set(c2, 3, nm, strlen(nm), 0));
        OK(edb_update(c2));
    }
    name_of(c, "changed");
    cr_assert_eq(cur_id(), 20);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_id(), 22);
    name_of(c, "n2");
    /* the current record deleted through c2: gone for reads, NEXT goes on after it */
    seek_on(c2, 22);
    OK(edb_record_delete(c2));
    RC(edb_column_get(c, 3, NULL, 0, NULL, 0), EDB_RECORD_DELETED);
    RC(edb_column_count(&(unsigned){ 0 }, c, 3), EDB_RECORD_DELETED);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_id(), 24);
    /* and through the same cursor */
    rename_at(c, 24, "self");
    name_of(c, "self");
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    cr_assert_eq(cur_id(), 20);
    OK(edb_txn_commit(s));
    edb_cursor_close(c2);
}

Test(cursor, cache_and_nested_rollback)
{
    edb_cursor *c2;
    OK(edb_cursor_open(&c2, s, "t"));
    OK(edb_txn_begin(s, 0));
    seek_on(c, 30);
    name_of(c, "n0");
    OK(edb_txn_begin(s, 0));
    rename_at(c2, 30, "nested");
    name_of(c, "nested");
    OK(edb_txn_rollback(s));
    name_of(c, "n0");
    cr_assert_eq(cur_id(), 30);
    /* read first in the nested level, write through the cursor itself, roll back */
    OK(edb_txn_begin(s, 0));
    name_of(c, "n0");
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 3, "mine", 4, 0));
    OK(edb_update(c));
    name_of(c, "mine");
    OK(edb_txn_rollback(s));
    name_of(c, "n0");
    /* a nested level that commits keeps its write */
    OK(edb_txn_begin(s, 0));
    rename_at(c2, 30, "kept");
    OK(edb_txn_commit(s));
    name_of(c, "kept");
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_id(), 32);
    OK(edb_txn_commit(s));
    edb_cursor_close(c2);
}

Test(cursor, cache_across_transactions_and_sessions)
{
    edb_session *s2;
    edb_cursor *c2;
    OK(edb_session_begin(&s2, env));
    OK(edb_cursor_open(&c2, s2, "t"));
    /* implicit transactions: each call sees the last commit */
    seek_on(c, 40);
    name_of(c, "n0");
    rename_at(c2, 40, "other");
    name_of(c, "other");
    cr_assert_eq(cur_id(), 40);
    /* a read-only transaction keeps its snapshot, the next one sees the commit */
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    seek_on(c, 40);
    name_of(c, "other");
    rename_at(c2, 40, "later");
    name_of(c, "other");
    OK(edb_txn_begin(s, EDB_TXN_READONLY));     /* a nested read-only level */
    name_of(c, "other");
    OK(edb_txn_rollback(s));
    name_of(c, "other");
    OK(edb_txn_commit(s));
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    name_of(c, "later");        /* a new txn: still on 40, seeing the commit */
    cr_assert_eq(cur_id(), 40);
    OK(edb_txn_commit(s));
    /* one transaction: the primary, then a secondary index; several columns of one record */
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    seek_on(c, 40);
    name_of(c, "later");
    OK(edb_cursor_set_index(c, "g"));
    int32_t g = 2;
    OK(edb_key_make(c, &g, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    cr_assert_eq(cur_id(), 20);
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    cr_assert_eq(cur_id(), 10);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_id(), 12);
    OK(edb_cursor_move(c, 9));
    int32_t id = cur_id(), grp = 0;
    cr_assert_eq(id, 30);
    OK(edb_column_get(c, 2, &grp, 4, NULL, 0));
    cr_assert_eq(grp, 3);
    cr_assert_eq(cur_id(), 30);
    OK(edb_txn_commit(s));
    /* a column added while the cursor sits on a record it read */
    OK(edb_cursor_set_index(c, NULL));
    seek_on(c, 40);
    name_of(c, "later");
    edb_column_def extra = { "extra", EDB_COL_INT32, 0, 0, &(int32_t){ 7 }, 4 };
    OK(edb_column_add(s2, "t", &extra));
    int32_t x = 0;
    OK(edb_column_get(c, 4, &x, 4, NULL, 0));
    cr_assert_eq(x, 7);
    name_of(c, "later");
    edb_cursor_close(c2);
    edb_session_end(s2);
}

/* 64-bit integer keys take edb_key_make's fast path (engine/seek.c) for their
 * first segment: ascending and descending, signed and unsigned, with a second
 * segment made by the general path after it, and with the schema changed in
 * between (the fast path needs a bind from after the last change). */
Test(cursor, int64_keys_fast_path)
{
    edb_column_def cols[] = {
        { "id", EDB_COL_INT64, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "u", EDB_COL_UINT64, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "name", EDB_COL_TEXT, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = {
        { "pk", "+id\0", EDB_IDX_PRIMARY },
        { "ud", "-u\0", EDB_IDX_UNIQUE },
        { "idn", "-id\0+name\0", EDB_IDX_UNIQUE },
    };
    edb_table_def def = { "w", cols, 3, idx, 3 };
    OK(edb_table_create(s, &def));
    edb_cursor *w;
    OK(edb_cursor_open(&w, s, "w"));
    static const int64_t ids[] = { INT64_MIN, -3000000000000000000, -256, -1, 0, 1, 255, 256,
                                   3000000000000000000, INT64_MAX };
    enum { N = sizeof ids / sizeof ids[0] };
    OK(edb_txn_begin(s, 0));
    for (int i = 0; i < N; i++) {
        uint64_t u = (uint64_t)ids[i] * UINT64_C(0x9E3779B97F4A7C15);
        OK(edb_update_prepare(w, EDB_PREP_INSERT));
        OK(edb_column_set(w, 1, &ids[i], 8, 0));
        OK(edb_column_set(w, 2, &u, 8, 0));
        OK(edb_column_set(w, 3, "x", 1, 0));
        OK(edb_update(w));
    }
    OK(edb_txn_commit(s));
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            /* a schema change: the cursor must rebind before the fast path */
            edb_column_def extra = { "note", EDB_COL_TEXT, 0, 0, NULL, 0 };
            OK(edb_column_add(s, "w", &extra));
        }
        OK(edb_txn_begin(s, EDB_TXN_READONLY));
        for (int i = 0; i < N; i++) {
            int64_t got;
            uint64_t u = (uint64_t)ids[i] * UINT64_C(0x9E3779B97F4A7C15), gu;
            OK(edb_cursor_set_index(w, NULL));
            OK(edb_key_make(w, &ids[i], 8, EDB_KEY_NEW));
            OK(edb_cursor_seek(w, EDB_SEEK_EQ));
            OK(edb_column_get(w, 1, &got, 8, NULL, 0));
            cr_assert_eq(got, ids[i]);
            /* moves from an exact primary-key seek (its LMDB cursor is not on
             * the entry; the move finds it by its key) */
            int rc = edb_cursor_move(w, EDB_MOVE_NEXT);
            if (i + 1 < N) {
                OK(rc);
                OK(edb_column_get(w, 1, &got, 8, NULL, 0));
                cr_assert_eq(got, ids[i + 1]);
            } else {
                RC(rc, EDB_NOTFOUND);
            }
            OK(edb_key_make(w, &ids[i], 8, EDB_KEY_NEW));
            OK(edb_cursor_seek(w, EDB_SEEK_EQ));
            rc = edb_cursor_move(w, EDB_MOVE_PREV);
            if (i > 0) {
                OK(rc);
                OK(edb_column_get(w, 1, &got, 8, NULL, 0));
                cr_assert_eq(got, ids[i - 1]);
            } else {
                RC(rc, EDB_NOTFOUND);
            }
            /* GE on id + 1: the next larger id (ascending) */
            if (ids[i] != INT64_MAX) {
                int64_t next = ids[i] + 1;
                OK(edb_key_make(w, &next, 8, EDB_KEY_NEW));
                if (i + 1 < N) {
                    OK(edb_cursor_seek(w, EDB_SEEK_GE));
                    OK(edb_column_get(w, 1, &got, 8, NULL, 0));
                    cr_assert_eq(got, ids[i + 1]);
                }
            }
            OK(edb_cursor_set_index(w, "ud"));
            OK(edb_key_make(w, &u, 8, EDB_KEY_NEW));
            OK(edb_cursor_seek(w, EDB_SEEK_EQ));
            OK(edb_column_get(w, 2, &gu, 8, NULL, 0));
            cr_assert_eq(gu, u);
            OK(edb_cursor_set_index(w, "idn"));
            OK(edb_key_make(w, &ids[i], 8, EDB_KEY_NEW));
            OK(edb_key_make(w, "x", 1, 0));
            OK(edb_cursor_seek(w, EDB_SEEK_EQ));
            OK(edb_column_get(w, 1, &got, 8, NULL, 0));
            cr_assert_eq(got, ids[i]);
            OK(edb_key_make(w, &ids[i], 8, EDB_KEY_NEW));
            OK(edb_key_make(w, "y", 1, 0));
            RC(edb_cursor_seek(w, EDB_SEEK_EQ), EDB_NOTFOUND);
        }
        /* descending walk of idn: ids from largest to smallest */
        OK(edb_cursor_set_index(w, "idn"));
        int k = N - 1;
        for (int rc = edb_cursor_move(w, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(w, EDB_MOVE_NEXT), k--) {
            int64_t got;
            OK(edb_column_get(w, 1, &got, 8, NULL, 0));
            cr_assert_eq(got, ids[k]);
        }
        cr_assert_eq(k, -1);
        OK(edb_txn_commit(s));
    }
    /* In a write txn: replace and delete at an exact seek's position. */
    OK(edb_txn_begin(s, 0));
    OK(edb_cursor_set_index(w, NULL));
    for (int i = 0; i < N; i += 2) {
        OK(edb_key_make(w, &ids[i], 8, EDB_KEY_NEW));
        OK(edb_cursor_seek(w, EDB_SEEK_EQ));
        OK(edb_update_prepare(w, EDB_PREP_REPLACE));
        OK(edb_column_set(w, 3, "z", 1, 0));
        OK(edb_update(w));
        OK(edb_key_make(w, &ids[i + 1], 8, EDB_KEY_NEW));
        OK(edb_cursor_seek(w, EDB_SEEK_EQ));
        OK(edb_record_delete(w));
    }
    OK(edb_txn_commit(s));
    int k = 0;
    for (int rc = edb_cursor_move(w, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(w, EDB_MOVE_NEXT), k += 2) {
        int64_t got;
        char name[4];
        size_t n;
        OK(edb_column_get(w, 1, &got, 8, NULL, 0));
        cr_assert_eq(got, ids[k]);
        OK(edb_column_get(w, 3, name, sizeof name, &n, 0));
        cr_assert(n == 1 && name[0] == 'z');
    }
    cr_assert_eq(k, N);
    edb_cursor_close(w);
}

/* ---- a damaged tree: LMDB's own errors reach the caller as EDB_CORRUPT ---- */

/* LMDB 0.9's page layout (mdb.c, not in lmdb.h): flags at byte 10, the
 * lower bound of the free space at 12, node offsets from 16; a branch node
 * holds its child's page number in its first 6 bytes (lo, hi, flags). */
enum { PG_FLAGS = 10, PG_LOWER = 12, PG_PTRS = 16, P_BRANCH = 0x01, P_META = 0x08 };

/* Point every child of every branch page in @file at a page far past the
 * file's end, except in the trees that name databases (keys "edb...."; the
 * env could not open): returns how many children were redirected. */
static unsigned
redirect_branch_children(const char *file)
{
    long psz = sysconf(_SC_PAGESIZE);
    uint8_t *pg = malloc((size_t)psz);
    int fd = open(file, O_RDWR);
    cr_assert_geq(fd, 0);
    unsigned n = 0;
    for (off_t off = 0; pread(fd, pg, (size_t)psz, off) == psz; off += psz) {
        uint16_t flags = (uint16_t)(pg[PG_FLAGS] | pg[PG_FLAGS + 1] << 8);
        if (!(flags & P_BRANCH) || (flags & P_META))
            continue;
        unsigned lower = pg[PG_LOWER] | pg[PG_LOWER + 1] << 8, m = 0;
        bool names = false;
        for (unsigned i = PG_PTRS; i + 1 < lower && i + 1 < (unsigned)psz; i += 2) {
            unsigned at = pg[i] | pg[i + 1] << 8;
            if (at + 12 > (unsigned)psz)
                continue;
            names |= memcmp(pg + at + 8, "edb.", 4) == 0;
            pg[at + 2] = pg[at + 3] = 0xFF;   /* hi: pgno >= 0xFFFF0000 */
            m++;
        }
        if (names)
            continue;                           /* this copy is not written back */
        n += m;
        cr_assert_eq(pwrite(fd, pg, (size_t)psz, off), psz);
    }
    close(fd);
    free(pg);
    return n;
}

/* Seeks and moves on a tree whose branch pages point nowhere: LMDB reports
 * MDB_PAGE_NOTFOUND and refuses the txn from then on.  Every call returns
 * EDB_CORRUPT naming the cause (not EDB_NOTFOUND, which would read as "no
 * such row"; not LMDB's later MDB_BAD_TXN), in read-only and write
 * transactions, nested or not, and implicit ones; ending the transaction
 * makes the session usable again. */
Test(damaged, lookups_report_corruption_not_absence, .timeout = 60)
{
    char *d = make_tmpdir(), file[600];
    edb_env *e = open_env(d, 0);
    edb_session *ss;
    edb_cursor *cc, *sc;
    OK(edb_session_begin(&ss, e));
    edb_column_def cols[] = {
        { "id", EDB_COL_INT64, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "v", EDB_COL_TEXT, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY }, { "iv", "+v\0", 0 } };
    edb_table_def def = { "big", cols, 2, idx, 2 }, small = { "small", cols, 2, idx, 1 };
    OK(edb_table_create(ss, &def));
    OK(edb_table_create(ss, &small));
    OK(edb_cursor_open(&cc, ss, "big"));
    OK(edb_cursor_open(&sc, ss, "small"));
    OK(edb_txn_begin(ss, 0));
    char v[100];
    for (int64_t id = 0; id < 2000; id++) {   /* enough for branch roots */
        snprintf(v, sizeof v, "%090lld", (long long)id);
        edb_cursor *to = id < 10 ? sc : cc;
        OK(edb_update_prepare(to, EDB_PREP_INSERT));
        OK(edb_column_set(to, 1, &id, 8, 0));
        OK(edb_column_set(to, 2, v, strlen(v), 0));
        OK(edb_update(to));
    }
    OK(edb_txn_commit(ss));
    edb_cursor_close(cc);
    edb_cursor_close(sc);
    edb_session_end(ss);
    edb_env_close(e);

    snprintf(file, sizeof file, "%s/db/data.mdb", d);
    cr_assert_gt(redirect_branch_children(file), 2u);

    e = open_env(d, 0);
    OK(edb_session_begin(&ss, e));
    OK(edb_cursor_open(&cc, ss, "big"));
    OK(edb_cursor_open(&sc, ss, "small"));
    int64_t id = 1000;
    for (int ro = 1; ro >= 0; ro--) {
        OK(edb_txn_begin(ss, ro ? EDB_TXN_READONLY : 0));
        OK(edb_txn_begin(ss, ro ? EDB_TXN_READONLY : 0));
        OK(edb_cursor_set_index(cc, NULL));
        OK(edb_key_make(cc, &id, 8, EDB_KEY_NEW));
        RC(edb_cursor_seek(cc, EDB_SEEK_EQ), EDB_CORRUPT);      /* the exact get */
        cr_assert(strstr(edb_error_last(), "MDB_PAGE_NOTFOUND") != NULL, "%s", edb_error_last());
        /* from now on the transaction is failed, with the first cause */
        RC(edb_cursor_move(sc, EDB_MOVE_FIRST), EDB_CORRUPT);
        cr_assert(strstr(edb_error_last(), "must be rolled back") != NULL &&
                  strstr(edb_error_last(), "MDB_PAGE_NOTFOUND") != NULL, "%s", edb_error_last());
        OK(edb_txn_rollback(ss));
        /* a read-only txn's levels share one LMDB txn, and so do a write
         * txn's (nested levels are savepoints, undo.h): still failed */
        RC(edb_cursor_move(sc, EDB_MOVE_FIRST), EDB_CORRUPT);
        cr_assert(strstr(edb_error_last(), "must be rolled back") != NULL, "%s",
                  edb_error_last());
        if (ro) {   /* the key is built from the cursor's bound schema */
            OK(edb_key_make(cc, &id, 8, EDB_KEY_NEW));
            RC(edb_cursor_seek(cc, EDB_SEEK_GE), EDB_CORRUPT);  /* a cursor positioning */
        } else {    /* the rollback made the cursor reload its schema */
            RC(edb_key_make(cc, &id, 8, EDB_KEY_NEW), EDB_CORRUPT);
        }
        cr_assert(strstr(edb_error_last(), "MDB_PAGE_NOTFOUND") != NULL, "%s", edb_error_last());
        RC(edb_txn_commit(ss), EDB_CORRUPT);                     /* rolled back */
        cr_assert_eq(edb_txn_depth(ss), 0);
    }
    /* Each call in its own transaction: every one meets the damage alone. */
    RC(edb_cursor_move(cc, EDB_MOVE_LAST), EDB_CORRUPT);
    OK(edb_cursor_set_index(cc, "iv"));
    OK(edb_key_make(cc, "5", 1, EDB_KEY_NEW));
    RC(edb_cursor_seek(cc, EDB_SEEK_GE), EDB_CORRUPT);
    OK(edb_cursor_set_index(cc, NULL));
    int64_t nid = 5000;
    OK(edb_update_prepare(cc, EDB_PREP_INSERT));
    OK(edb_column_set(cc, 1, &nid, 8, 0));
    RC(edb_update(cc), EDB_CORRUPT);
    cr_assert(strstr(edb_error_last(), "MDB_PAGE_NOTFOUND") != NULL, "%s", edb_error_last());
    edb_update_cancel(cc);
    /* The other table shares the damaged tree; the catalog reads as written. */
    RC(edb_cursor_move(sc, EDB_MOVE_FIRST), EDB_CORRUPT);
    char **names;
    size_t n;
    OK(edb_table_list(&names, &n, ss));
    cr_assert_eq(n, 2);
    edb_free(names);
    edb_cursor_close(cc);
    edb_cursor_close(sc);
    edb_session_end(ss);
    edb_env_close(e);
    rm_tree(d);
    free(d);
    LEAK_CHECK();
}

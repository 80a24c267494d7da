/* Cursor-level ESE functions (issue #14): bookmarks (JetGetBookmark,
 * JetGotoBookmark), duplicate cursors (JetDupCursor), retrieved keys
 * (JetRetrieveKey) sought back with EDB_KEY_NORMALIZED, string-prefix keys
 * (EDB_KEY_PARTIAL) and counts from the position (JetIndexRecordCount),
 * written from ESE's documented behaviour and tried the way another program
 * would use them: a second session, across transactions, a record deleted
 * under the cursor, a table dropped under it, hostile bytes. */
#include "config.h"

#include <pthread.h>

#include "helpers.h"

static char *dir;
static edb_env *env;
static edb_session *s;
static edb_cursor *c;

static unsigned
scaled(unsigned n)
{
    return test_scaled_min(n, 1);
}

/* t(k INT32 primary, name TEXT, y INT32 nullable), indexes
 *   by_y    "+y"      non-unique, IGNORE_NULL
 *   by_name "-name"   unique
 * rows k = 10, 20, ..., 10 * n; y = k / 20 (duplicates; NULL for k = 50);
 * name = "n<k>". */
static void
insert_row(edb_cursor *cc, int32_t k)
{
    char name[32];
    int len = snprintf(name, sizeof name, "n%d", k);
    int32_t y = k / 20;
    OK(edb_update_prepare(cc, EDB_PREP_INSERT));
    OK(edb_column_set(cc, 1, &k, 4, 0));
    OK(edb_column_set(cc, 2, name, (size_t)len, 0));
    if (k != 50)
        OK(edb_column_set(cc, 3, &y, 4, 0));
    OK(edb_update(cc));
}

static void
setup_rows(int n)
{
    dir = make_tmpdir();
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    edb_column_def cols[] = {
        { "k", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "name", EDB_COL_TEXT, 0, 0, NULL, 0 },
        { "y", EDB_COL_INT32, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = {
        { "pk", "+k\0", EDB_IDX_PRIMARY },
        { "by_y", "+y\0", EDB_IDX_IGNORE_NULL },
        { "by_name", "-name\0", EDB_IDX_UNIQUE },
    };
    edb_table_def def = { "t", cols, 3, idx, 3 };
    OK(edb_table_create(s, &def));
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_txn_begin(s, 0));
    for (int32_t k = 10; k <= 10 * n; k += 10)
        insert_row(c, k);
    OK(edb_txn_commit(s));
    edb_cursor_close(c);
    OK(edb_cursor_open(&c, s, "t"));
}

static void
setup(void)
{
    setup_rows(6);
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

/* The bookmark of the row with key k (through a cursor of its own). */
static size_t
bookmark_of(int32_t k, uint8_t *bm)
{
    edb_cursor *o;
    OK(edb_cursor_open(&o, s, "t"));
    seek_k(o, k);
    size_t n = 0;
    OK(edb_bookmark_get(o, bm, EDB_BOOKMARK_MAX, &n));
    edb_cursor_close(o);
    return n;
}

TestSuite(bookmark, .init = setup, .fini = teardown, .timeout = 30);

/* Get a bookmark, move away, go back: the same record; the bookmark is the
 * record's primary key, so equal bytes from another cursor name it too. */
Test(bookmark, get_move_goto_same_record)
{
    seek_k(c, 30);
    uint8_t bm[EDB_BOOKMARK_MAX];
    size_t n = 0;
    OK(edb_bookmark_get(c, bm, sizeof bm, &n));
    cr_assert(n > 0 && n <= EDB_BOOKMARK_MAX);
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    cr_assert_eq(cur_k(c), 60);
    OK(edb_bookmark_goto(c, bm, n));
    cr_assert_eq(cur_k(c), 30);
    /* moves continue from there */
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(c), 40);
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    cr_assert_eq(cur_k(c), 20);
    /* another record has another bookmark; the same record the same one */
    uint8_t other[EDB_BOOKMARK_MAX];
    size_t on = bookmark_of(20, other);
    cr_assert(on != n || memcmp(other, bm, n) != 0);
    uint8_t again[EDB_BOOKMARK_MAX];
    cr_assert_eq(bookmark_of(30, again), n);
    cr_assert_eq(memcmp(again, bm, n), 0);
}

/* A short buffer is EDB_WRN_TRUNCATED with the full size, as for columns;
 * a NULL buffer with size 0 asks for the size. */
Test(bookmark, truncated_as_for_columns)
{
    seek_k(c, 20);
    size_t full = 0;
    RC(edb_bookmark_get(c, NULL, 0, &full), EDB_WRN_TRUNCATED);
    cr_assert_eq(full, 5);      /* one INT32 segment: prefix byte + 4 */
    uint8_t two[2] = { 0xAA, 0xAA };
    size_t n = 0;
    RC(edb_bookmark_get(c, two, 1, &n), EDB_WRN_TRUNCATED);
    cr_assert_eq(n, full);
    cr_assert_eq(two[1], 0xAA, "wrote past size");
    RC(edb_bookmark_get(c, NULL, 4, &n), EDB_INVAL);
    OK(edb_bookmark_get(c, (uint8_t[8]){ 0 }, 8, NULL));
}

/* ESE: a bookmark of a deleted record goes nowhere (EDB_NOTFOUND) and the
 * cursor stays where it was; the cursor whose record was deleted answers
 * EDB_RECORD_DELETED, as every read does (currency). */
Test(bookmark, deleted_record)
{
    uint8_t bm[EDB_BOOKMARK_MAX];
    size_t n = bookmark_of(40, bm);
    edb_cursor *d;
    OK(edb_cursor_open(&d, s, "t"));
    seek_k(d, 40);
    seek_k(c, 20);
    OK(edb_txn_begin(s, 0));
    OK(edb_record_delete(d));
    RC(edb_bookmark_get(d, bm + 100, 100, NULL), EDB_RECORD_DELETED);
    RC(edb_key_retrieve(d, bm + 100, 100, NULL), EDB_RECORD_DELETED);
    RC(edb_bookmark_goto(c, bm, n), EDB_NOTFOUND);
    cr_assert_eq(cur_k(c), 20, "a failed goto moved the cursor");
    /* a rollback brings the record back, and the bookmark works again */
    OK(edb_txn_rollback(s));
    OK(edb_bookmark_goto(c, bm, n));
    cr_assert_eq(cur_k(c), 40);
    size_t n2 = 0;
    RC(edb_bookmark_get(d, NULL, 0, &n2), EDB_WRN_TRUNCATED);
    cr_assert_eq(n2, n);
    /* deleted and committed: gone for good; c, on it, stays at its place */
    OK(edb_record_delete(d));
    RC(edb_bookmark_goto(c, bm, n), EDB_NOTFOUND);
    RC(edb_bookmark_get(c, NULL, 0, NULL), EDB_RECORD_DELETED);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(c), 50);
    edb_cursor_close(d);
}

/* A bookmark is plain bytes: taken in one session inside a transaction, kept
 * across its commit, used by a second session in a read-only transaction
 * and outside any. */
Test(bookmark, second_session_and_across_transactions)
{
    uint8_t bm[EDB_BOOKMARK_MAX];
    size_t n = 0;
    OK(edb_txn_begin(s, 0));
    seek_k(c, 50);
    OK(edb_bookmark_get(c, bm, sizeof bm, &n));
    OK(edb_txn_commit(s));
    /* the cursor kept its record across the commit: same bookmark */
    uint8_t again[EDB_BOOKMARK_MAX];
    size_t n2 = 0;
    OK(edb_bookmark_get(c, again, sizeof again, &n2));
    cr_assert(n2 == n && memcmp(again, bm, n) == 0);

    edb_session *s2;
    edb_cursor *c2;
    OK(edb_session_begin(&s2, env));
    OK(edb_cursor_open(&c2, s2, "t"));
    OK(edb_txn_begin(s2, EDB_TXN_READONLY));
    OK(edb_bookmark_goto(c2, bm, n));
    cr_assert_eq(cur_k(c2), 50);
    OK(edb_txn_commit(s2));
    OK(edb_cursor_move(c2, EDB_MOVE_FIRST));
    OK(edb_bookmark_goto(c2, bm, n));       /* outside a transaction */
    cr_assert_eq(cur_k(c2), 50);
    /* s2's snapshot does not see a record s inserts until it commits */
    OK(edb_txn_begin(s, 0));
    insert_row(c, 75);
    uint8_t bm75[EDB_BOOKMARK_MAX];
    size_t n75 = 0;
    OK(edb_bookmark_get(c, bm75, sizeof bm75, &n75));
    RC(edb_bookmark_goto(c2, bm75, n75), EDB_NOTFOUND);
    OK(edb_txn_commit(s));
    OK(edb_bookmark_goto(c2, bm75, n75));
    cr_assert_eq(cur_k(c2), 75);
    edb_cursor_close(c2);
    edb_session_end(s2);
}

/* A table without a primary index: its records have the implicit key, and
 * the bookmark is their only readable identity (two equal rows differ). */
Test(bookmark, implicit_key)
{
    edb_column_def cols[] = { { "v", EDB_COL_INT32, 0, 0, NULL, 0 } };
    edb_table_def def = { "heap", cols, 1, NULL, 0 };
    OK(edb_table_create(s, &def));
    edb_cursor *h;
    OK(edb_cursor_open(&h, s, "heap"));
    enum { N = 5 };
    uint8_t bms[N][EDB_BOOKMARK_MAX];
    size_t lens[N];
    for (int32_t i = 0; i < N; i++) {
        int32_t v = 7;           /* every row equal */
        if (i == 3)
            v = 3;
        OK(edb_update_prepare(h, EDB_PREP_INSERT));
        OK(edb_column_set(h, 1, &v, 4, 0));
        OK(edb_update(h));
        OK(edb_bookmark_get(h, bms[i], EDB_BOOKMARK_MAX, &lens[i]));
        cr_assert_eq(lens[i], 8);
        for (int j = 0; j < i; j++)
            cr_assert_neq(memcmp(bms[i], bms[j], 8), 0, "two records, one bookmark");
    }
    OK(edb_bookmark_goto(h, bms[3], lens[3]));
    int32_t v = 0;
    OK(edb_column_get(h, 1, &v, 4, NULL, 0));
    cr_assert_eq(v, 3);
    OK(edb_cursor_move(h, EDB_MOVE_NEXT));
    uint8_t b[8];
    OK(edb_bookmark_get(h, b, 8, NULL));
    cr_assert_eq(memcmp(b, bms[4], 8), 0);
    RC(edb_bookmark_goto(h, bms[0], 7), EDB_INVAL);
    RC(edb_bookmark_goto(h, (uint8_t[8]){ 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0 }, 8), EDB_NOTFOUND);
    edb_cursor_close(h);
}

/* On a secondary index the goto lands on the record's entry there: moves go
 * on in that index's order.  A record without an entry (IGNORE_NULL) is
 * EDB_NOTFOUND there, and the cursor stays. */
Test(bookmark, goto_on_secondary_index)
{
    uint8_t bm[EDB_BOOKMARK_MAX];
    size_t n = bookmark_of(30, bm);
    OK(edb_cursor_set_index(c, "by_name"));     /* "-name": n60 n50 n40 n30 n20 n10 */
    OK(edb_bookmark_goto(c, bm, n));
    cr_assert_eq(cur_k(c), 30);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(c), 20);
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    cr_assert_eq(cur_k(c), 40);

    /* by_y: y = 0 (k 10), 1 (20, 30), 2 (40, 60), NULL (50: no entry) */
    OK(edb_cursor_set_index(c, "by_y"));
    n = bookmark_of(60, bm);
    OK(edb_bookmark_goto(c, bm, n));
    cr_assert_eq(cur_k(c), 60);
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    cr_assert_eq(cur_k(c), 40);
    n = bookmark_of(30, bm);
    OK(edb_bookmark_goto(c, bm, n));
    cr_assert_eq(cur_k(c), 30);
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    cr_assert_eq(cur_k(c), 20);
    uint8_t bm50[EDB_BOOKMARK_MAX];
    size_t n50 = bookmark_of(50, bm50);
    RC(edb_bookmark_goto(c, bm50, n50), EDB_NOTFOUND);
    cr_assert_eq(cur_k(c), 20);
    /* a range is removed by the goto */
    int32_t y = 1;
    OK(edb_key_make(c, &y, 4, EDB_KEY_NEW));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER | EDB_RANGE_INCLUSIVE));
    OK(edb_bookmark_goto(c, bm, n));
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(c), 40);
}

/* Bytes that are no bookmark are EDB_INVAL, never a crash or a wrong record;
 * calls without a current record are EDB_NOCURRENT. */
Test(bookmark, hostile_bytes_and_no_current)
{
    RC(edb_bookmark_get(c, NULL, 0, NULL), EDB_NOCURRENT);
    RC(edb_key_retrieve(c, NULL, 0, NULL), EDB_NOCURRENT);
    uint8_t bm[EDB_BOOKMARK_MAX + 8];
    size_t n = bookmark_of(20, bm);
    RC(edb_bookmark_goto(c, NULL, 5), EDB_INVAL);
    RC(edb_bookmark_goto(c, bm, 0), EDB_INVAL);
    RC(edb_bookmark_goto(c, bm, EDB_BOOKMARK_MAX + 1), EDB_INVAL);
    RC(edb_bookmark_goto(NULL, bm, n), EDB_INVAL);
    RC(edb_bookmark_goto(c, bm, n - 1), EDB_INVAL);            /* cut short */
    memcpy(bm + n, bm, n);
    RC(edb_bookmark_goto(c, bm, 2 * n), EDB_INVAL);            /* two keys */
    uint8_t bad[5] = { 0x07, 0x80, 0, 0, 20 };                 /* bad prefix byte */
    RC(edb_bookmark_goto(c, bad, 5), EDB_INVAL);
    uint8_t nul[1] = { 0x01 };                                 /* a NULL primary key */
    int rc = edb_bookmark_goto(c, nul, 1);
    cr_assert(rc == EDB_INVAL || rc == EDB_NOTFOUND, "%s", edb_err_name(rc));
    /* every byte string up to 6 bytes of a few patterns: no crash, no success
     * except on the real keys */
    for (unsigned len = 1; len <= 6; len++)
        for (unsigned pat = 0; pat < 256; pat += 17) {
            uint8_t b[6];
            for (unsigned i = 0; i < len; i++)
                b[i] = (uint8_t)(pat + i * 31);
            rc = edb_bookmark_goto(c, b, len);
            cr_assert(rc == EDB_INVAL || rc == EDB_NOTFOUND || rc == 0, "%s", edb_err_name(rc));
            if (rc == 0)
                cr_assert_eq(cur_k(c) % 10, 0);
        }
    OK(edb_bookmark_goto(c, bm, n));
    cr_assert_eq(cur_k(c), 20);
}

/* Handles: a zombie returns EDB_CLOSED, a dropped table EDB_DROPPED (also
 * once a new table of that name exists). */
Test(bookmark, zombie_and_dropped)
{
    uint8_t bm[EDB_BOOKMARK_MAX];
    size_t n = bookmark_of(20, bm);
    seek_k(c, 20);
    OK(edb_table_drop(s, "t"));
    RC(edb_bookmark_get(c, bm + 64, 64, NULL), EDB_DROPPED);
    RC(edb_bookmark_goto(c, bm, n), EDB_DROPPED);
    RC(edb_key_retrieve(c, bm + 64, 64, NULL), EDB_DROPPED);
    uint64_t cnt = 7;
    RC(edb_index_count(c, &cnt, 0), EDB_DROPPED);
    cr_assert_eq(cnt, 0);
    edb_cursor *d = (edb_cursor *)&cnt;
    RC(edb_cursor_dup(&d, c), EDB_DROPPED);
    cr_assert_null(d);
    edb_cursor_close(c);
    c = NULL;
    /* a zombie */
    edb_session *s2;
    edb_cursor *z;
    OK(edb_session_begin(&s2, env));
    edb_column_def cols[] = { { "k", EDB_COL_INT32, 0, 0, NULL, 0 } };
    edb_table_def def = { "u", cols, 1, NULL, 0 };
    OK(edb_table_create(s2, &def));
    OK(edb_cursor_open(&z, s2, "u"));
    edb_session_end(s2);
    RC(edb_bookmark_get(z, NULL, 0, NULL), EDB_CLOSED);
    RC(edb_bookmark_goto(z, bm, n), EDB_CLOSED);
    RC(edb_key_retrieve(z, NULL, 0, NULL), EDB_CLOSED);
    RC(edb_index_count(z, &cnt, 0), EDB_CLOSED);
    RC(edb_cursor_dup(&d, z), EDB_CLOSED);
    RC(edb_key_make(z, bm, n, EDB_KEY_NORMALIZED), EDB_CLOSED);
    edb_cursor_close(z);
}

/* ------------------------------------------------------------------ dup */

TestSuite(cursor_dup, .init = setup, .fini = teardown, .timeout = 30);

/* A dup of an unpositioned cursor is unpositioned: NEXT goes to the first
 * entry, PREV to the last, reads are EDB_NOCURRENT. */
Test(cursor_dup, of_unpositioned_cursor)
{
    edb_cursor *d = NULL;
    OK(edb_cursor_dup(&d, c));
    cr_assert_not_null(d);
    RC(edb_column_get(d, 1, NULL, 0, NULL, 0), EDB_NOCURRENT);
    RC(edb_index_count(d, (uint64_t[1]){ 0 }, 0), EDB_NOCURRENT);
    OK(edb_cursor_move(d, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(d), 10);
    RC(edb_column_get(c, 1, NULL, 0, NULL, 0), EDB_NOCURRENT);
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    cr_assert_eq(cur_k(c), 60);
    edb_cursor_close(d);
}

/* Dup, then both move on their own: neither follows the other. */
Test(cursor_dup, then_move_independently)
{
    seek_k(c, 30);
    edb_cursor *d;
    OK(edb_cursor_dup(&d, c));
    cr_assert_eq(cur_k(d), 30);
    OK(edb_cursor_move(d, EDB_MOVE_NEXT));
    OK(edb_cursor_move(d, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(d), 50);
    cr_assert_eq(cur_k(c), 30);
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    cr_assert_eq(cur_k(c), 20);
    cr_assert_eq(cur_k(d), 50);
    /* inside a transaction too, with writes through one of them */
    OK(edb_txn_begin(s, 0));
    edb_cursor *e;
    OK(edb_cursor_dup(&e, d));
    OK(edb_record_delete(d));
    RC(edb_column_get(e, 1, NULL, 0, NULL, 0), EDB_RECORD_DELETED);
    OK(edb_cursor_move(e, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(e), 60);
    OK(edb_txn_rollback(s));
    cr_assert_eq(cur_k(d), 50);
    /* unlike ESE, a dup made in a level that rolls back stays open */
    cr_assert_eq(cur_k(e), 60);
    OK(edb_cursor_move(e, EDB_MOVE_PREV));
    cr_assert_eq(cur_k(e), 50);
    edb_cursor_close(e);
    edb_cursor_close(d);
}

/* The dup is on the same index and entry; the range, the key being made and
 * a prepared update stay with the original. */
Test(cursor_dup, same_index_not_range_key_or_update)
{
    OK(edb_cursor_set_index(c, "by_y"));
    int32_t y = 1;
    OK(edb_key_make(c, &y, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    cr_assert_eq(cur_k(c), 20);
    OK(edb_key_make(c, &y, 4, EDB_KEY_NEW));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER | EDB_RANGE_INCLUSIVE));
    OK(edb_key_make(c, &y, 4, EDB_KEY_NEW));    /* a key being made */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    int32_t k99 = 99;
    OK(edb_column_set(c, 1, &k99, 4, 0));
    edb_cursor *d;
    OK(edb_cursor_dup(&d, c));
    cr_assert_str_eq(edb_cursor_index(d), "by_y");
    cr_assert_eq(cur_k(d), 20, "the dup reads the stored record, not c's prepared one");
    RC(edb_update(d), EDB_NOUPDATE);
    RC(edb_cursor_seek(d, EDB_SEEK_EQ), EDB_INVAL);         /* no key made on d */
    OK(edb_cursor_move(d, EDB_MOVE_NEXT));
    OK(edb_cursor_move(d, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(d), 40, "the range was copied");
    edb_update_cancel(c);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_NOTFOUND);   /* c keeps its range */
    edb_cursor_close(d);
}

/* A dup of a cursor whose record is deleted is at that place too; the dup
 * belongs to the session: ending it makes the dup a zombie, closed later. */
Test(cursor_dup, deleted_place_and_session_end)
{
    seek_k(c, 40);
    OK(edb_record_delete(c));
    edb_cursor *d;
    OK(edb_cursor_dup(&d, c));
    RC(edb_column_get(d, 1, NULL, 0, NULL, 0), EDB_RECORD_DELETED);
    OK(edb_cursor_move(d, EDB_MOVE_PREV));
    cr_assert_eq(cur_k(d), 30);
    edb_cursor *e;
    OK(edb_cursor_dup(&e, c));
    edb_cursor_close(c);
    c = NULL;
    edb_session_end(s);
    s = NULL;
    RC(edb_cursor_move(e, EDB_MOVE_NEXT), EDB_CLOSED);
    RC(edb_cursor_dup(&c, e), EDB_CLOSED);
    cr_assert_null(c);
    edb_cursor_close(d);
    edb_cursor_close(e);
}

/* A dup on a secondary index that was dropped is EDB_DROPPED. */
Test(cursor_dup, dropped_index)
{
    OK(edb_cursor_set_index(c, "by_name"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_index_drop(s, "t", "by_name"));
    edb_cursor *d = NULL;
    RC(edb_cursor_dup(&d, c), EDB_DROPPED);
    cr_assert_null(d);
    RC(edb_cursor_dup(NULL, c), EDB_INVAL);
    RC(edb_cursor_dup(&d, NULL), EDB_INVAL);
}

/* ------------------------------------------------------------ key retrieve */

/* m(id INT32 primary, a INT32, b TEXT, c DOUBLE) with index
 * "+a\0-b\0+c\0" (non-unique): descending text, NULLs in every segment. */
static edb_cursor *
open_multi(void)
{
    edb_column_def cols[] = {
        { "id", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "a", EDB_COL_INT32, 0, 0, NULL, 0 },
        { "b", EDB_COL_TEXT, 0, 0, NULL, 0 },
        { "c", EDB_COL_DOUBLE, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY }, { "abc", "+a\0-b\0+c\0", 0 } };
    edb_table_def def = { "m", cols, 4, idx, 2 };
    OK(edb_table_create(s, &def));
    edb_cursor *m;
    OK(edb_cursor_open(&m, s, "m"));
    static const char *texts[] = { "", "a", "ab", "b", NULL, "zz\xc3\xa9" };
    unsigned n = scaled(300);
    if (n < 100)        /* keys repeat every 60 ids: duplicates */
        n = 100;
    OK(edb_txn_begin(s, 0));
    for (int32_t id = 1; id <= (int32_t)n; id++) {
        int32_t a = (id * 7) % 5;
        const char *b = texts[(id * 5) % 6];
        double cv = (id % 4) * -1.5;
        OK(edb_update_prepare(m, EDB_PREP_INSERT));
        OK(edb_column_set(m, 1, &id, 4, 0));
        if (id % 11 != 0)
            OK(edb_column_set(m, 2, &a, 4, 0));
        if (b != NULL)
            OK(edb_column_set(m, 3, b, strlen(b), 0));
        if (id % 13 != 0)
            OK(edb_column_set(m, 4, &cv, 8, 0));
        OK(edb_update(m));
    }
    OK(edb_txn_commit(s));
    return m;
}

TestSuite(key_retrieve, .init = setup, .fini = teardown, .timeout = 60);

/* Every entry of a three-segment index (descending text, NULLs): the key
 * retrieved, made again with EDB_KEY_NORMALIZED, finds with SEEK_EQ the
 * first entry with that key, which is this one or an earlier duplicate; the
 * keys come in index order; on a unique index it is exactly this entry. */
Test(key_retrieve, normalized_round_trip_multi_segment)
{
    edb_cursor *m = open_multi();
    OK(edb_cursor_set_index(m, "abc"));
    edb_cursor *f;
    OK(edb_cursor_open(&f, s, "m"));
    OK(edb_cursor_set_index(f, "abc"));
    uint8_t prev[EDB_MAX_KEY_SIZE];
    size_t prevn = 0;
    unsigned entries = 0, firsts = 0;
    int rc = edb_cursor_move(m, EDB_MOVE_FIRST);
    while (rc == 0) {
        uint8_t key[EDB_MAX_KEY_SIZE];
        size_t kn = 0;
        OK(edb_key_retrieve(m, key, sizeof key, &kn));
        cr_assert(kn > 0 && kn <= EDB_MAX_KEY_SIZE);
        int cmp = prevn == 0 ? 1 : memcmp(prev, key, prevn < kn ? prevn : kn);
        if (cmp == 0)
            cmp = prevn < kn ? -1 : prevn > kn;
        cr_assert(entries == 0 || cmp <= 0, "keys out of index order at entry %u", entries);
        bool first_of_key = entries == 0 || cmp != 0;
        OK(edb_key_make(f, key, kn, EDB_KEY_NORMALIZED));
        OK(edb_cursor_seek(f, EDB_SEEK_EQ));
        uint8_t k2[EDB_MAX_KEY_SIZE];
        size_t k2n = 0;
        OK(edb_key_retrieve(f, k2, sizeof k2, &k2n));
        cr_assert(k2n == kn && memcmp(k2, key, kn) == 0);
        if (first_of_key) {
            cr_assert_eq(cur_k(f), cur_k(m), "SEEK_EQ on a retrieved key: another entry");
            firsts++;
        }
        memcpy(prev, key, kn);
        prevn = kn;
        entries++;
        rc = edb_cursor_move(m, EDB_MOVE_NEXT);
    }
    RC(rc, EDB_NOTFOUND);
    cr_assert(firsts > 10 && firsts < entries, "%u distinct keys of %u", firsts, entries);
    edb_cursor_close(f);
    edb_cursor_close(m);
}

/* The retrieved key is the bytes edb_key_make builds from the values, so a
 * made key and a retrieved one are interchangeable; a leading part (whole
 * segments) is a prefix key and works with EDB_KEY_PREFIX_END. */
Test(key_retrieve, equals_made_key_and_prefix)
{
    edb_cursor *m = open_multi();
    OK(edb_cursor_set_index(m, "abc"));
    int32_t a = 2;
    const char *b = "ab";
    double cv = -3.0;
    OK(edb_key_make(m, &a, 4, EDB_KEY_NEW));
    OK(edb_key_make(m, b, 2, 0));
    OK(edb_key_make(m, &cv, 8, 0));
    OK(edb_cursor_seek(m, EDB_SEEK_EQ));
    int32_t got_a = 0;
    OK(edb_column_get(m, 2, &got_a, 4, NULL, 0));
    cr_assert_eq(got_a, 2);
    uint8_t key[EDB_MAX_KEY_SIZE];
    size_t kn = 0;
    OK(edb_key_retrieve(m, key, sizeof key, &kn));
    /* a = 2: 02 80 00 00 02; b = "ab" descending: 02 9E 9D FF FF; c = -3.0 */
    cr_assert_eq(kn, 5 + 5 + 9);
    cr_assert_eq(memcmp(key, "\x02\x80\x00\x00\x02\x02\x9E\x9D\xFF\xFF", 10), 0);
    /* the first segment alone, as an end limit: LT lands on the last entry
     * with a = 2 */
    OK(edb_key_make(m, key, 5, EDB_KEY_NORMALIZED | EDB_KEY_PREFIX_END));
    OK(edb_cursor_seek(m, EDB_SEEK_LT));
    OK(edb_column_get(m, 2, &got_a, 4, NULL, 0));
    cr_assert_eq(got_a, 2);
    RC(edb_cursor_move(m, EDB_MOVE_NEXT), 0);
    OK(edb_column_get(m, 2, &got_a, 4, NULL, 0));
    cr_assert_eq(got_a, 3);
    /* a normalized key may be continued segment by segment */
    OK(edb_key_make(m, key, 5, EDB_KEY_NORMALIZED));
    OK(edb_key_make(m, b, 2, 0));
    OK(edb_cursor_seek(m, EDB_SEEK_EQ));
    char tb[8];
    size_t tbn = 0;
    OK(edb_column_get(m, 3, tb, sizeof tb, &tbn, 0));
    cr_assert(tbn == 2 && memcmp(tb, "ab", 2) == 0);
    /* truncated copy */
    size_t full = 0;
    RC(edb_key_retrieve(m, key, 3, &full), EDB_WRN_TRUNCATED);
    cr_assert_gt(full, 3);
    edb_cursor_close(m);
}

/* Bytes that are not a key of the index are EDB_INVAL; the key being made
 * is then unchanged (none). */
Test(key_retrieve, normalized_rejects_other_bytes)
{
    edb_cursor *m = open_multi();
    OK(edb_cursor_set_index(m, "abc"));
    OK(edb_cursor_move(m, EDB_MOVE_LAST));
    uint8_t key[EDB_MAX_KEY_SIZE + 8];
    size_t kn = 0;
    OK(edb_key_retrieve(m, key, EDB_MAX_KEY_SIZE, &kn));
    RC(edb_key_make(m, key, kn - 1, EDB_KEY_NORMALIZED), EDB_INVAL);    /* cut inside a segment */
    key[kn] = 0x02;
    RC(edb_key_make(m, key, kn + 1, EDB_KEY_NORMALIZED), EDB_INVAL);    /* a 4th segment */
    RC(edb_key_make(m, NULL, 4, EDB_KEY_NORMALIZED), EDB_INVAL);
    RC(edb_key_make(m, key, 0, EDB_KEY_NORMALIZED), EDB_INVAL);
    RC(edb_key_make(m, key, EDB_MAX_KEY_SIZE + 1, EDB_KEY_NORMALIZED), EDB_INVAL);
    RC(edb_key_make(m, key, kn, EDB_KEY_NORMALIZED | EDB_KEY_PARTIAL), EDB_INVAL);
    uint8_t bad[] = { 0x02, 0x80, 0x00, 0x00, 0x02, 0x05 };       /* bad prefix in segment 2 */
    RC(edb_key_make(m, bad, sizeof bad, EDB_KEY_NORMALIZED), EDB_INVAL);
    RC(edb_cursor_seek(m, EDB_SEEK_EQ), EDB_INVAL);                /* no key was made */
    /* a key of the primary index is no key of "abc" when its shape differs:
     * the primary's key on the primary works */
    uint8_t bm[EDB_BOOKMARK_MAX];
    size_t bn = 0;
    OK(edb_bookmark_get(m, bm, sizeof bm, &bn));
    OK(edb_cursor_set_index(m, NULL));
    OK(edb_key_make(m, bm, bn, EDB_KEY_NORMALIZED));
    OK(edb_cursor_seek(m, EDB_SEEK_EQ));
    /* the implicit key: 8 bytes */
    edb_column_def cols[] = { { "v", EDB_COL_INT32, 0, 0, NULL, 0 } };
    edb_table_def def = { "heap", cols, 1, NULL, 0 };
    OK(edb_table_create(s, &def));
    edb_cursor *h;
    OK(edb_cursor_open(&h, s, "heap"));
    for (int32_t v = 1; v <= 3; v++) {
        OK(edb_update_prepare(h, EDB_PREP_INSERT));
        OK(edb_column_set(h, 1, &v, 4, 0));
        OK(edb_update(h));
    }
    OK(edb_cursor_move(h, EDB_MOVE_FIRST));
    OK(edb_cursor_move(h, EDB_MOVE_NEXT));
    uint8_t ik[16];
    size_t ikn = 0;
    OK(edb_key_retrieve(h, ik, sizeof ik, &ikn));
    cr_assert_eq(ikn, 8);
    OK(edb_cursor_move(h, EDB_MOVE_FIRST));
    RC(edb_key_make(h, ik, 7, EDB_KEY_NORMALIZED), EDB_INVAL);
    OK(edb_key_make(h, ik, 8, EDB_KEY_NORMALIZED));
    OK(edb_cursor_seek(h, EDB_SEEK_EQ));
    int32_t v = 0;
    OK(edb_column_get(h, 1, &v, 4, NULL, 0));
    cr_assert_eq(v, 2);
    edb_cursor_close(h);
    edb_cursor_close(m);
}

/* JetGetSecondaryIndexBookmark: the secondary key and the bookmark, kept
 * across a transaction, bring a cursor on a unique secondary index back to
 * that entry by either route. */
Test(key_retrieve, secondary_index_bookmark)
{
    OK(edb_cursor_set_index(c, "by_name"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(c), 50);
    uint8_t key[EDB_MAX_KEY_SIZE], bm[EDB_BOOKMARK_MAX];
    size_t kn = 0, bn = 0;
    OK(edb_txn_begin(s, 0));
    OK(edb_key_retrieve(c, key, sizeof key, &kn));
    OK(edb_bookmark_get(c, bm, sizeof bm, &bn));
    OK(edb_txn_commit(s));
    cr_assert(kn != bn || memcmp(key, bm, kn) != 0, "the secondary key is the primary key");
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    OK(edb_key_make(c, key, kn, EDB_KEY_NORMALIZED));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    cr_assert_eq(cur_k(c), 50);
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    OK(edb_bookmark_goto(c, bm, bn));
    cr_assert_eq(cur_k(c), 50);
    size_t kn2 = 0;
    uint8_t key2[EDB_MAX_KEY_SIZE];
    OK(edb_key_retrieve(c, key2, sizeof key2, &kn2));
    cr_assert(kn2 == kn && memcmp(key2, key, kn) == 0);
}

/* EDB_KEY_PARTIAL: a string prefix.  SEEK_EQ finds the first value that
 * starts with it, PARTIAL | PREFIX_END bounds the values that do, in an
 * ascending and in a descending index; other types are EDB_INVAL. */
Test(key_retrieve, partial_string_prefix)
{
    edb_column_def cols[] = {
        { "id", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "w", EDB_COL_TEXT, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY }, { "up", "+w\0", 0 },
                            { "down", "-w\0", 0 } };
    edb_table_def def = { "words", cols, 2, idx, 3 };
    OK(edb_table_create(s, &def));
    edb_cursor *w;
    OK(edb_cursor_open(&w, s, "words"));
    static const char *words[] = { "ca", "cat", "catalog", "cats", "cau", "cb", "c", "dog", "b" };
    for (int32_t i = 0; i < 9; i++) {
        OK(edb_update_prepare(w, EDB_PREP_INSERT));
        OK(edb_column_set(w, 1, &i, 4, 0));
        OK(edb_column_set(w, 2, words[i], strlen(words[i]), 0));
        OK(edb_update(w));
    }
    const char *names[] = { "up", "down" };
    for (int ix = 0; ix < 2; ix++) {
        OK(edb_cursor_set_index(w, names[ix]));
        OK(edb_key_make(w, "cat", 3, EDB_KEY_NEW | EDB_KEY_PARTIAL));
        RC(edb_key_make(w, "x", 1, 0), EDB_INVAL);          /* nothing may follow */
        OK(edb_key_make(w, "cat", 3, EDB_KEY_NEW | EDB_KEY_PARTIAL));
        OK(edb_cursor_seek(w, EDB_SEEK_EQ));
        char got[16];
        size_t gn = 0;
        OK(edb_column_get(w, 2, got, sizeof got, &gn, 0));
        cr_assert(gn == (ix == 0 ? 3u : 4u) && memcmp(got, ix == 0 ? "cat" : "cats", gn) == 0,
                  "%s: %.*s", names[ix], (int)gn, got);
        OK(edb_key_make(w, "cat", 3, EDB_KEY_NEW | EDB_KEY_PARTIAL | EDB_KEY_PREFIX_END));
        OK(edb_cursor_set_range(w, EDB_RANGE_UPPER));
        uint64_t n = 0;
        OK(edb_index_count(w, &n, 0));
        cr_assert_eq(n, 3, "%s: cat, catalog, cats", names[ix]);
        unsigned seen = 1;
        while (edb_cursor_move(w, EDB_MOVE_NEXT) == 0) {
            OK(edb_column_get(w, 2, got, sizeof got, &gn, 0));
            cr_assert(gn >= 3 && memcmp(got, "cat", 3) == 0);
            seen++;
        }
        cr_assert_eq(seen, 3);
        OK(edb_key_make(w, "cz", 2, EDB_KEY_NEW | EDB_KEY_PARTIAL));
        RC(edb_cursor_seek(w, EDB_SEEK_EQ), EDB_NOTFOUND);
    }
    OK(edb_cursor_set_index(w, NULL));
    int32_t one = 1;
    RC(edb_key_make(w, &one, 4, EDB_KEY_NEW | EDB_KEY_PARTIAL), EDB_INVAL);
    OK(edb_cursor_set_index(w, "up"));
    RC(edb_key_make(w, NULL, 0, EDB_KEY_NEW | EDB_KEY_PARTIAL), EDB_INVAL);
    edb_cursor_close(w);
}

/* ------------------------------------------------------------ index count */

TestSuite(index_count, .init = setup, .fini = teardown, .timeout = 60);

/* From the position (included) to the end, with and without a limit; the
 * cursor does not move. */
Test(index_count, from_position_to_end_with_limit)
{
    uint64_t n = 99;
    RC(edb_index_count(c, &n, 0), EDB_NOCURRENT);
    cr_assert_eq(n, 0);
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_index_count(c, &n, 0));
    cr_assert_eq(n, 6);
    seek_k(c, 30);
    OK(edb_index_count(c, &n, 0));
    cr_assert_eq(n, 4);
    OK(edb_index_count(c, &n, 2));
    cr_assert_eq(n, 2);
    OK(edb_index_count(c, &n, 100));
    cr_assert_eq(n, 4);
    cr_assert_eq(cur_k(c), 30, "the count moved the cursor");
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(c), 40);
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    OK(edb_index_count(c, &n, 0));
    cr_assert_eq(n, 1);
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_NOTFOUND);        /* after the last */
    OK(edb_index_count(c, &n, 0));
    cr_assert_eq(n, 0);
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    RC(edb_cursor_move(c, EDB_MOVE_PREV), EDB_NOTFOUND);        /* before the first */
    OK(edb_index_count(c, &n, 0));
    cr_assert_eq(n, 6);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_k(c), 10);
    RC(edb_index_count(c, NULL, 0), EDB_INVAL);
    RC(edb_index_count(NULL, &n, 0), EDB_INVAL);
}

/* The range limit ends the count (inclusive or not); on a non-unique index
 * duplicates count one each, and a record without an entry not at all. */
Test(index_count, range_limits_and_duplicates)
{
    OK(edb_cursor_set_index(c, "by_y"));        /* y: 0 (10), 1 (20, 30), 2 (40, 60) */
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    uint64_t n = 0;
    OK(edb_index_count(c, &n, 0));
    cr_assert_eq(n, 5);
    int32_t y = 1;
    OK(edb_key_make(c, &y, 4, EDB_KEY_NEW));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER | EDB_RANGE_INCLUSIVE));
    OK(edb_index_count(c, &n, 0));
    cr_assert_eq(n, 3);
    OK(edb_key_make(c, &y, 4, EDB_KEY_NEW));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER));
    OK(edb_index_count(c, &n, 0));
    cr_assert_eq(n, 1);
    OK(edb_index_count(c, &n, 1));
    cr_assert_eq(n, 1);
    /* a lower limit does not stop a forward count */
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    OK(edb_key_make(c, &y, 4, EDB_KEY_NEW));
    OK(edb_cursor_set_range(c, EDB_RANGE_INCLUSIVE));
    OK(edb_index_count(c, &n, 0));
    cr_assert_eq(n, 2);
    /* stopped at the upper limit: nothing is left inside */
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_key_make(c, &y, 4, EDB_KEY_NEW));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER | EDB_RANGE_INCLUSIVE));
    while (edb_cursor_move(c, EDB_MOVE_NEXT) == 0)
        ;
    OK(edb_index_count(c, &n, 0));
    cr_assert_eq(n, 0);
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    OK(edb_index_count(c, &n, 0));
    cr_assert_eq(n, 1);
}

/* From a deleted entry the count starts at the next one; in a transaction
 * it sees the transaction's own writes; another session's snapshot not. */
Test(index_count, deleted_entry_and_snapshots)
{
    unsigned rows = scaled(2000);
    if (rows < 20)
        rows = 20;
    OK(edb_txn_begin(s, 0));
    for (int32_t k = 1000; k < 1000 + (int32_t)rows; k++)
        insert_row(c, k * 10 + 1);
    OK(edb_txn_commit(s));
    seek_k(c, 30);
    uint64_t n = 0;
    OK(edb_index_count(c, &n, 0));
    cr_assert_eq(n, 4 + rows);
    edb_session *s2;
    edb_cursor *c2;
    OK(edb_session_begin(&s2, env));
    OK(edb_cursor_open(&c2, s2, "t"));
    OK(edb_txn_begin(s2, EDB_TXN_READONLY));
    OK(edb_cursor_move(c2, EDB_MOVE_FIRST));
    OK(edb_txn_begin(s, 0));
    OK(edb_record_delete(c));
    OK(edb_index_count(c, &n, 0));
    cr_assert_eq(n, 3 + rows);
    insert_row(c, 35);
    OK(edb_txn_commit(s));
    uint64_t n2 = 0;
    OK(edb_index_count(c2, &n2, 0));
    cr_assert_eq(n2, 6 + rows, "the snapshot sees the rows of its start");
    OK(edb_txn_commit(s2));
    OK(edb_index_count(c2, &n2, 0));
    cr_assert_eq(n2, 6 + rows, "10..60 less 30 plus 35");
    OK(edb_index_count(c2, &n2, 3));
    cr_assert_eq(n2, 3);
    edb_cursor_close(c2);
    edb_session_end(s2);
}

/* ------------------------------------------------------------ threads */

/* Cursors are per session: sessions in several threads get bookmarks, go to
 * them, dup and count while one thread writes (run under TSan by
 * tests/tsan-suites).  No timing is assumed: each thread does a fixed
 * number of rounds. */
typedef struct worker {
    edb_env *env;
    unsigned rounds;
    int id;
    int fails;
} worker;

static void *
reader_thread(void *arg)
{
    worker *w = arg;
    edb_session *ss;
    edb_cursor *cc, *dd;
    if (edb_session_begin(&ss, w->env) != 0 || edb_cursor_open(&cc, ss, "t") != 0) {
        w->fails++;
        return NULL;
    }
    for (unsigned r = 0; r < w->rounds; r++) {
        if (edb_txn_begin(ss, EDB_TXN_READONLY) != 0) {
            w->fails++;
            break;
        }
        uint8_t bm[EDB_BOOKMARK_MAX];
        size_t n = 0;
        uint64_t cnt = 0, cnt2 = 0;
        if (edb_cursor_move(cc, EDB_MOVE_FIRST) != 0 || edb_bookmark_get(cc, bm, sizeof bm, &n) != 0 ||
            edb_index_count(cc, &cnt, 0) != 0 || edb_cursor_dup(&dd, cc) != 0)
            w->fails++;
        else {
            if (edb_cursor_move(dd, EDB_MOVE_LAST) != 0 || edb_bookmark_goto(dd, bm, n) != 0 ||
                edb_index_count(dd, &cnt2, 0) != 0 || cnt2 != cnt)
                w->fails++;
            edb_cursor_close(dd);
        }
        edb_txn_commit(ss);
    }
    edb_cursor_close(cc);
    edb_session_end(ss);
    return NULL;
}

static void *
writer_thread(void *arg)
{
    worker *w = arg;
    edb_session *ss;
    edb_cursor *cc;
    if (edb_session_begin(&ss, w->env) != 0 || edb_cursor_open(&cc, ss, "t") != 0) {
        w->fails++;
        return NULL;
    }
    for (unsigned r = 0; r < w->rounds; r++) {
        int32_t k = 100000 + (int32_t)r;
        int32_t y = 1;
        char name[32];
        int len = snprintf(name, sizeof name, "w%d", k);
        if (edb_update_prepare(cc, EDB_PREP_INSERT) != 0 || edb_column_set(cc, 1, &k, 4, 0) != 0 ||
            edb_column_set(cc, 2, name, (size_t)len, 0) != 0 || edb_column_set(cc, 3, &y, 4, 0) != 0 ||
            edb_update(cc) != 0)
            w->fails++;
        edb_cursor *dd;
        uint64_t cnt = 0;
        if (edb_cursor_dup(&dd, cc) != 0 || edb_index_count(dd, &cnt, 0) != 0 || cnt != 1)
            w->fails++;
        else
            edb_cursor_close(dd);
    }
    edb_cursor_close(cc);
    edb_session_end(ss);
    return NULL;
}

Test(index_count, sessions_in_threads, .timeout = 120)
{
    enum { NR = 3 };
    pthread_t th[NR + 1];
    worker ws[NR + 1];
    unsigned rounds = scaled(200);
    for (int i = 0; i <= NR; i++) {
        ws[i] = (worker){ env, rounds, i, 0 };
        cr_assert_eq(pthread_create(&th[i], NULL, i == NR ? writer_thread : reader_thread, &ws[i]), 0);
    }
    for (int i = 0; i <= NR; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(ws[i].fails, 0, "thread %d: %d failures (%s)", i, ws[i].fails, edb_error_last());
    }
}

/* A partial key on a one-column TEXT primary index is no whole key: the seek
 * searches by prefix (not the exact lookup a whole primary key takes). */
Test(key_retrieve, partial_on_text_primary)
{
    edb_column_def cols[] = { { "w", EDB_COL_TEXT, EDB_COL_NOTNULL, 0, NULL, 0 } };
    edb_index_def idx[] = { { "pk", "+w\0", EDB_IDX_PRIMARY } };
    edb_table_def def = { "tp", cols, 1, idx, 1 };
    OK(edb_table_create(s, &def));
    edb_cursor *w;
    OK(edb_cursor_open(&w, s, "tp"));
    static const char *words[] = { "apple", "apricot", "banana" };
    for (int i = 0; i < 3; i++) {
        OK(edb_update_prepare(w, EDB_PREP_INSERT));
        OK(edb_column_set(w, 1, words[i], strlen(words[i]), 0));
        OK(edb_update(w));
    }
    OK(edb_key_make(w, "ap", 2, EDB_KEY_NEW | EDB_KEY_PARTIAL));
    OK(edb_cursor_seek(w, EDB_SEEK_EQ));
    char got[16];
    size_t gn = 0;
    OK(edb_column_get(w, 1, got, sizeof got, &gn, 0));
    cr_assert(gn == 5 && memcmp(got, "apple", 5) == 0);
    OK(edb_key_make(w, "ap", 2, EDB_KEY_NEW | EDB_KEY_PARTIAL | EDB_KEY_PREFIX_END));
    OK(edb_cursor_seek(w, EDB_SEEK_LT));
    OK(edb_column_get(w, 1, got, sizeof got, &gn, 0));
    cr_assert(gn == 7 && memcmp(got, "apricot", 7) == 0);
    uint64_t n = 0;
    OK(edb_index_count(w, &n, 0));
    cr_assert_eq(n, 2);
    /* the whole word still finds it exactly, the partial "apple" too */
    OK(edb_key_make(w, "apple", 5, EDB_KEY_NEW | EDB_KEY_PARTIAL));
    OK(edb_cursor_seek(w, EDB_SEEK_EQ));
    OK(edb_key_make(w, "appl", 4, EDB_KEY_NEW));
    RC(edb_cursor_seek(w, EDB_SEEK_EQ), EDB_NOTFOUND);
    edb_cursor_close(w);
}

/* On a unique secondary index the cursor's entry key may come back for
 * another record (deleted, then a new row with the same name): the cursor's
 * record is still gone, its bookmark and key are EDB_RECORD_DELETED, as
 * column reads are. */
Test(bookmark, unique_key_reused_by_another_record)
{
    OK(edb_cursor_set_index(c, "by_name"));
    const char *name = "n30";
    OK(edb_key_make(c, name, 3, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    cr_assert_eq(cur_k(c), 30);
    edb_cursor *d;
    OK(edb_cursor_open(&d, s, "t"));
    seek_k(d, 30);
    OK(edb_record_delete(d));
    int32_t k = 31;
    OK(edb_update_prepare(d, EDB_PREP_INSERT));
    OK(edb_column_set(d, 1, &k, 4, 0));
    OK(edb_column_set(d, 2, name, 3, 0));
    OK(edb_update(d));
    RC(edb_column_get(c, 1, NULL, 0, NULL, 0), EDB_RECORD_DELETED);
    RC(edb_bookmark_get(c, NULL, 0, NULL), EDB_RECORD_DELETED);
    RC(edb_key_retrieve(c, NULL, 0, NULL), EDB_RECORD_DELETED);
    /* in a transaction too (the LMDB cursor cache is not trusted either) */
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    RC(edb_bookmark_get(c, NULL, 0, NULL), EDB_RECORD_DELETED);
    OK(edb_txn_commit(s));
    edb_cursor_close(d);
}

/* Random bytes as a normalized key or a bookmark: 0 or EDB_INVAL (or, for a
 * well-formed key of no record, EDB_NOTFOUND), never a crash; a key
 * accepted seeks without error. */
Test(key_retrieve, random_bytes_never_crash)
{
    edb_cursor *m = open_multi();
    OK(edb_cursor_set_index(m, "abc"));
    unsigned rounds = scaled(3000);
    if (rounds < 200)
        rounds = 200;
    uint32_t x = 2463534242u;
    unsigned accepted = 0;
    uint8_t real[EDB_MAX_KEY_SIZE];
    size_t realn = 0;
    OK(edb_cursor_move(m, EDB_MOVE_LAST));
    OK(edb_key_retrieve(m, real, sizeof real, &realn));
    cr_assert(realn <= 48);
    for (unsigned r = 0; r < rounds; r++) {
        uint8_t b[48];
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        size_t len = 1 + x % sizeof b;
        if (r % 2 == 0) {
            /* a real key with one byte changed, cut or extended */
            memcpy(b, real, realn);
            len = realn;
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            b[x % realn] = (uint8_t)(x >> 8);
            if (x & 0x10000)
                len = 1 + (x >> 17) % realn;
            else if ((x & 0x20000) && len < sizeof b)
                b[len++] = (uint8_t)(x >> 24);
        } else {
            for (size_t i = 0; i < len; i++) {
                x ^= x << 13; x ^= x >> 17; x ^= x << 5;
                static const uint8_t common[] = { 0x00, 0x01, 0x02, 0x03, 0x80, 0xFF, 'a', 0x9E };
                b[i] = (x & 0x100) ? common[x % sizeof common] : (uint8_t)x;
            }
        }
        int rc = edb_key_make(m, b, len, EDB_KEY_NORMALIZED);
        cr_assert(rc == 0 || rc == EDB_INVAL, "%s", edb_err_name(rc));
        if (rc == 0) {
            accepted++;
            rc = edb_cursor_seek(m, EDB_SEEK_GE);
            cr_assert(rc == 0 || rc == EDB_NOTFOUND, "%s", edb_err_name(rc));
        }
        rc = edb_bookmark_goto(m, b, len);
        cr_assert(rc == 0 || rc == EDB_INVAL || rc == EDB_NOTFOUND, "%s", edb_err_name(rc));
    }
    cr_assert_gt(accepted, 0, "no random string parsed: the test checks nothing");
    edb_cursor_close(m);
}

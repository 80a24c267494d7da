/* Scans through the read path's fast paths (cursor.h, "Fast paths"): whole
 * tables walked in a read-only transaction and in a write transaction must
 * give the same entries and values, for several data shapes, both directions,
 * the primary and a non-unique index; moves mixed with PREV, seeks,
 * bookmarks, ranges, updates and a cursor kept across transactions; and
 * edb_column_get's column cache (cc_col) across schema changes and record
 * layouts. */
#include "config.h"

#include "cursor.h"
#include "helpers.h"

static char *tdir;
static edb_env *env;
static edb_session *s;
static edb_cursor *c;

enum { COL_ID = 1, COL_A = 2, COL_B = 3 };
#define B_MAX 12000

static void
setup(void)
{
    tdir = make_tmpdir();
    env = open_env(tdir, 0);
    OK(edb_session_begin(&s, env));
    edb_column_def cols[] = {
        { "id", EDB_COL_INT64, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "a", EDB_COL_INT32, 0, 0, NULL, 0 },
        { "b", EDB_COL_BINARY, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = {
        { "pk", "+id\0", EDB_IDX_PRIMARY },
        { "by_a", "+a\0", 0 },
    };
    edb_table_def def = { "t", cols, 3, idx, 2 };
    /* neighbours in both directions: tables made before and after t (their
     * ids, so their records and index entries, sort around t's) with rows */
    edb_table_def before = { "p", cols, 3, idx, 2 }, after = { "u", cols, 3, idx, 2 };
    OK(edb_table_create(s, &before));
    OK(edb_table_create(s, &def));
    OK(edb_table_create(s, &after));
    const char *nb[] = { "p", "u" };
    for (int t = 0; t < 2; t++) {
        OK(edb_cursor_open(&c, s, nb[t]));
        OK(edb_txn_begin(s, 0));
        for (int64_t id = 1; id <= 50; id++) {
            int32_t a = (int32_t)(id % 3);
            OK(edb_update_prepare(c, EDB_PREP_INSERT));
            OK(edb_column_set(c, COL_ID, &id, 8, 0));
            OK(edb_column_set(c, COL_A, &a, 4, 0));
            OK(edb_update(c));
        }
        OK(edb_txn_commit(s));
        edb_cursor_close(c);
    }
    OK(edb_cursor_open(&c, s, "t"));
}

static void
teardown(void)
{
    edb_cursor_close(c);
    edb_session_end(s);
    edb_env_close(env);
    rm_tree(tdir);
    free(tdir);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t
next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* b's bytes for row id: deterministic, n of them */
static void
fill_b(uint8_t *b, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(id * 31 + (int64_t)i * 7);
}

/* Insert rows 1..n; b's size from @size(id); a = id % 7 (duplicates in
 * by_a), NULL for every 11th row. */
static void
load(unsigned n, size_t (*size)(int64_t))
{
    static uint8_t b[B_MAX];
    OK(edb_txn_begin(s, 0));
    for (int64_t id = 1; id <= (int64_t)n; id++) {
        int32_t a = (int32_t)(id % 7);
        size_t bn = size(id);
        fill_b(b, bn, id);
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, COL_ID, &id, 8, 0));
        OK(edb_column_set(c, COL_A, id % 11 == 0 ? NULL : &a, id % 11 == 0 ? 0 : 4, 0));
        OK(edb_column_set(c, COL_B, b, bn, 0));
        OK(edb_update(c));
    }
    OK(edb_txn_commit(s));
}

typedef struct row {
    int64_t id;
    int32_t a;
    int a_rc;
    size_t bn;
    uint64_t bsum;
    uint8_t bm[32];
    size_t bmn;
} row;

static uint64_t
sum_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Walk the whole index (@index NULL: primary) forward (@dir 1) or backward in
 * a read-only (@ro) or write transaction; every row read into @out (at most
 * @cap); returns the number of rows.  @walked: how many rows had a short
 * non-empty b. */
static size_t
walk(const char *index, int dir, bool ro, row *out, size_t cap, size_t *walked)
{
    static uint8_t b[B_MAX];
    OK(edb_txn_begin(s, ro ? EDB_TXN_READONLY : 0));
    OK(edb_cursor_set_index(c, index));
    size_t n = 0, w = 0;
    int rc = edb_cursor_move(c, dir > 0 ? EDB_MOVE_FIRST : EDB_MOVE_LAST);
    while (rc == 0) {
        cr_assert_lt(n, cap);
        row *r = &out[n++];
        size_t actual;
        OK(edb_column_get(c, COL_ID, &r->id, 8, &actual, 0));
        cr_assert_eq(actual, 8);
        r->a = 0;
        r->a_rc = edb_column_get(c, COL_A, &r->a, 4, &actual, 0);
        cr_assert(r->a_rc == 0 || r->a_rc == EDB_WRN_NULL, "a: %d", r->a_rc);
        int brc = edb_column_get(c, COL_B, b, sizeof b, &r->bn, 0);
        cr_assert_eq(brc, 0, "b: %d %s", brc, edb_error_last());
        r->bsum = sum_bytes(b, r->bn);
        OK(edb_bookmark_get(c, r->bm, sizeof r->bm, &r->bmn));
        /* the column cache is armed on the leanest path's columns */
        cr_assert_eq(c->cc_col, (edb_colid)COL_B);
        if (r->bn > 0 && r->bn <= 100)
            w++;
        rc = edb_cursor_move(c, dir > 0 ? EDB_MOVE_NEXT : EDB_MOVE_PREV);
    }
    cr_assert_eq(rc, EDB_NOTFOUND, "move: %d %s", rc, edb_error_last());
    OK(edb_txn_commit(s));
    if (walked != NULL)
        *walked = w;
    return n;
}

/* The read-only walk equals the write transaction's in both directions, on
 * the primary and on by_a; returns the primary's row count.  @need_walk: the
 * shape has rows with a short b (the read path's common case). */
static size_t
check_equal(size_t cap, bool need_walk)
{
    row *x = calloc(cap, sizeof *x), *y = calloc(cap, sizeof *y);
    cr_assert(x != NULL && y != NULL);
    size_t total = 0;
    const char *idx[] = { NULL, "by_a" };
    for (int i = 0; i < 2; i++) {
        for (int dir = -1; dir <= 1; dir += 2) {
            size_t walked = 0;
            size_t n = walk(idx[i], dir, true, x, cap, &walked);
            size_t m = walk(idx[i], dir, false, y, cap, NULL);
            cr_assert_eq(n, m, "index %s dir %d: %zu rows read-only, %zu in a write txn",
                         idx[i] ? idx[i] : "primary", dir, n, m);
            for (size_t j = 0; j < n; j++) {
                cr_assert_eq(x[j].id, y[j].id, "row %zu: id %lld / %lld", j, (long long)x[j].id,
                             (long long)y[j].id);
                cr_assert_eq(x[j].a_rc, y[j].a_rc);
                cr_assert_eq(x[j].a, y[j].a);
                cr_assert_eq(x[j].bn, y[j].bn);
                cr_assert_eq(x[j].bsum, y[j].bsum);
                cr_assert_eq(x[j].bmn, y[j].bmn);
                cr_assert_eq(memcmp(x[j].bm, y[j].bm, x[j].bmn), 0);
            }
            if (need_walk)
                cr_assert_gt(walked, n / 4, "index %s dir %d: %zu of %zu rows with a short b",
                             idx[i] ? idx[i] : "primary", dir, walked, n);
            if (i == 0)
                total = n;
        }
    }
    /* the rows themselves: b as loaded */
    static uint8_t b[B_MAX];
    size_t n = walk(NULL, 1, true, x, cap, NULL);
    for (size_t j = 0; j < n; j++) {
        cr_assert(j == 0 || x[j].id > x[j - 1].id);
        fill_b(b, x[j].bn, x[j].id);
        cr_assert_eq(x[j].bsum, sum_bytes(b, x[j].bn), "row %lld: b differs", (long long)x[j].id);
    }
    free(x);
    free(y);
    return total;
}

static size_t size_small(int64_t id) { return (size_t)(id % 17); }
static size_t size_near_page(int64_t id) { return 1500 + (size_t)(id % 5) * 100; }
static size_t size_overflow(int64_t id) { return 3000 + (size_t)(id % 4) * 2500; }
static size_t
size_mixed(int64_t id)
{
    uint64_t r = (uint64_t)id * 2654435761u % 100;
    return r < 70 ? (size_t)(r % 40) : r < 90 ? 1800 : 5000;
}

Test(scanread, small_rows_many_pages, .init = setup, .fini = teardown, .timeout = 120)
{
    unsigned n = test_scaled_min(4000, 400);
    load(n, size_small);
    cr_assert_eq(check_equal(n + 1, true), n);
}

Test(scanread, rows_near_a_page, .init = setup, .fini = teardown, .timeout = 120)
{
    unsigned n = test_scaled_min(600, 60);
    load(n, size_near_page);
    cr_assert_eq(check_equal(n + 1, false), n);
}

Test(scanread, overflow_values, .init = setup, .fini = teardown, .timeout = 120)
{
    unsigned n = test_scaled_min(400, 40);
    load(n, size_overflow);
    cr_assert_eq(check_equal(n + 1, false), n);
}

Test(scanread, mixed_shapes, .init = setup, .fini = teardown, .timeout = 120)
{
    unsigned n = test_scaled_min(2000, 200);
    load(n, size_mixed);
    cr_assert_eq(check_equal(n + 1, true), n);
}

Test(scanread, after_heavy_deletes, .init = setup, .fini = teardown, .timeout = 120)
{
    unsigned n = test_scaled_min(4000, 400);
    load(n, size_mixed);
    /* delete about 70 % at random, in a few transactions */
    unsigned left = n;
    for (int round = 0; round < 3; round++) {
        OK(edb_txn_begin(s, 0));
        OK(edb_cursor_set_index(c, NULL));
        int rc = edb_cursor_move(c, EDB_MOVE_FIRST);
        while (rc == 0) {
            if (next_rand() % 10 < 4) {
                OK(edb_record_delete(c));
                left--;
            }
            rc = edb_cursor_move(c, EDB_MOVE_NEXT);
        }
        cr_assert_eq(rc, EDB_NOTFOUND);
        OK(edb_txn_commit(s));
    }
    cr_assert_eq(check_equal(n + 1, false), left);
}

static int64_t
cur_id(void)
{
    int64_t id = 0;
    OK(edb_column_get(c, COL_ID, &id, 8, NULL, 0));
    return id;
}

/* Moves by one mixed with every other kind of positioning on one cursor. */
Test(scanread, mixed_with_prev_seek_bookmark, .init = setup, .fini = teardown, .timeout = 60)
{
    unsigned n = test_scaled_min(3000, 300);
    load(n, size_small);
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    for (int64_t i = 2; i <= 40; i++) {
        OK(edb_cursor_move(c, EDB_MOVE_NEXT));
        cr_assert_eq(cur_id(), i);
    }
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    cr_assert_eq(cur_id(), 39);
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    cr_assert_eq(cur_id(), 38);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_id(), 39);
    /* a bookmark taken while walking, then a seek elsewhere, then back */
    uint8_t bm[32];
    size_t bmn;
    OK(edb_bookmark_get(c, bm, sizeof bm, &bmn));
    int64_t k = (int64_t)n / 2;
    OK(edb_key_make(c, &k, 8, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    cr_assert_eq(cur_id(), k);
    for (int64_t i = 1; i <= 30; i++) {
        OK(edb_cursor_move(c, EDB_MOVE_NEXT));
        cr_assert_eq(cur_id(), k + i);
    }
    for (int64_t i = 29; i >= 0; i--) {
        OK(edb_cursor_move(c, EDB_MOVE_PREV));
        cr_assert_eq(cur_id(), k + i);
    }
    OK(edb_bookmark_goto(c, bm, bmn));
    cr_assert_eq(cur_id(), 39);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_id(), 40);
    /* a move by several, and a range set while walking */
    OK(edb_cursor_move(c, 5));
    cr_assert_eq(cur_id(), 45);
    int64_t lim = 50;
    OK(edb_key_make(c, &lim, 8, EDB_KEY_NEW));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER | EDB_RANGE_INCLUSIVE));
    int64_t want = 45;
    int rc;
    while ((rc = edb_cursor_move(c, EDB_MOVE_NEXT)) == 0)
        cr_assert_eq(cur_id(), ++want);
    cr_assert_eq(rc, EDB_NOTFOUND);
    cr_assert_eq(want, 50);
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    cr_assert_eq(cur_id(), (int64_t)n);
    cr_assert_eq(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_NOTFOUND);
    OK(edb_txn_commit(s));
}

/* A cursor kept across transactions after a read-only scan: the next
 * transaction (write, then read-only again) continues from the entry the
 * scan reached, and an update there changes that record. */
Test(scanread, kept_across_transactions, .init = setup, .fini = teardown, .timeout = 60)
{
    unsigned n = test_scaled_min(3000, 300);
    load(n, size_small);
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    for (int i = 0; i < 20; i++)
        OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_id(), 21);
    OK(edb_txn_commit(s));

    OK(edb_txn_begin(s, 0));
    cr_assert_eq(cur_id(), 21);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_id(), 22);
    int32_t a = 12345;
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, COL_A, &a, 4, 0));
    OK(edb_update(c));
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_id(), 23);
    OK(edb_txn_commit(s));

    /* another session deletes row 24 and 25 while this one walks a snapshot */
    edb_session *s2;
    edb_cursor *c2;
    OK(edb_session_begin(&s2, env));
    OK(edb_cursor_open(&c2, s2, "t"));
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    OK(edb_txn_begin(s2, 0));
    for (int64_t k = 24; k <= 25; k++) {
        OK(edb_key_make(c2, &k, 8, EDB_KEY_NEW));
        OK(edb_cursor_seek(c2, EDB_SEEK_EQ));
        OK(edb_record_delete(c2));
    }
    OK(edb_txn_commit(s2));
    cr_assert_eq(cur_id(), 23);
    for (int64_t i = 24; i <= 30; i++) {       /* the snapshot still has them */
        OK(edb_cursor_move(c, EDB_MOVE_NEXT));
        cr_assert_eq(cur_id(), i);
    }
    OK(edb_txn_commit(s));
    OK(edb_txn_begin(s, EDB_TXN_READONLY));    /* a new snapshot: they are gone */
    for (int i = 0; i < 7; i++)
        OK(edb_cursor_move(c, EDB_MOVE_PREV));
    cr_assert_eq(cur_id(), 21);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    cr_assert_eq(cur_id(), 22);
    int32_t got = 0;
    OK(edb_column_get(c, COL_A, &got, 4, NULL, 0));
    cr_assert_eq(got, 12345);
    OK(edb_txn_commit(s));
    edb_cursor_close(c2);
    edb_session_end(s2);
}

/* edb_column_get's leanest path remembers the last column id it resolved:
 * a schema change must not leave it reading a dropped column's bytes, nor a
 * re-added column of the same name through the old id; every other case of
 * a value (NULL, truncated, itag 2, a column the record predates) reads as
 * the general path would. */
Test(scanread, column_cache_follows_schema, .init = setup, .fini = teardown, .timeout = 60)
{
    load(50, size_small);
    edb_colid a;
    OK(edb_column_id(&a, c, "a"));
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    int32_t v = -1;
    size_t actual = 0;
    for (int i = 0; i < 3; i++) {
        OK(edb_column_get(c, a, &v, 4, &actual, 0));
        cr_assert_eq(v, 1);
        cr_assert_eq(actual, 4);
    }
    cr_assert_eq(c->cc_col, a, "the column cache is not armed");
    int16_t small;
    cr_assert_eq(edb_column_get(c, a, &small, 2, &actual, 0), EDB_WRN_TRUNCATED);
    cr_assert_eq(actual, 4);
    cr_assert_eq(edb_column_get(c, a, &v, 4, &actual, 2), EDB_WRN_NULL);
    cr_assert_eq(edb_column_get(c, a, NULL, 4, &actual, 0), EDB_INVAL);
    for (int i = 0; i < 9; i++)
        OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    OK(edb_column_get(c, a, &v, 4, &actual, 0));
    cr_assert_eq(v, 3);                          /* row 10 */
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));       /* row 11: a is NULL */
    cr_assert_eq(edb_column_get(c, a, &v, 4, &actual, 0), EDB_WRN_NULL);
    cr_assert_eq(actual, 0);
    OK(edb_txn_commit(s));

    /* drop a: the old id is gone, also for the record the cursor lands on next */
    OK(edb_index_drop(s, "t", "by_a"));
    OK(edb_column_drop(s, "t", "a"));
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    cr_assert_eq(edb_column_get(c, a, &v, 4, &actual, 0), EDB_DROPPED);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(edb_column_get(c, a, &v, 4, &actual, 0), EDB_DROPPED);
    OK(edb_txn_commit(s));

    /* a new column "a": records before it read its default */
    int32_t def = 77;
    edb_column_def nc = { "a", EDB_COL_INT32, 0, 0, &def, 4 };
    OK(edb_column_add(s, "t", &nc));
    edb_colid a2;
    OK(edb_column_id(&a2, c, "a"));
    cr_assert_neq(a2, a);
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    for (int i = 0; i < 3; i++) {
        OK(edb_column_get(c, a2, &v, 4, &actual, 0));
        cr_assert_eq(v, 77);
        cr_assert_eq(edb_column_get(c, a, &v, 4, &actual, 0), EDB_DROPPED);
    }
    OK(edb_txn_commit(s));

    /* records of two layouts (3 columns before the add, 4 after), some with
     * b NULL, in one scan that reads b only (the leanest path throughout):
     * each by its own offsets */
    static uint8_t b[B_MAX], want[B_MAX];
    OK(edb_txn_begin(s, 0));
    for (int64_t id = 51; id <= 80; id++) {
        size_t bn = size_small(id);
        fill_b(b, bn, id);
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, COL_ID, &id, 8, 0));
        OK(edb_column_set(c, COL_B, id % 3 == 0 ? NULL : b, id % 3 == 0 ? 0 : bn, 0));
        OK(edb_update(c));
    }
    OK(edb_txn_commit(s));
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    int64_t n = 0;
    int rc = 0;
    for (; rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
        int64_t id = ++n;       /* ids 1..80 in key order */
        int brc = edb_column_get(c, COL_B, b, sizeof b, &actual, 0);
        if (id > 50 && id % 3 == 0) {
            cr_assert_eq(brc, EDB_WRN_NULL, "row %lld", (long long)id);
            continue;
        }
        cr_assert_eq(brc, 0, "row %lld: %d", (long long)id, brc);
        cr_assert_eq(actual, size_small(id), "row %lld", (long long)id);
        fill_b(want, actual, id);
        cr_assert_eq(memcmp(b, want, actual), 0, "row %lld", (long long)id);
    }
    cr_assert_eq(rc, EDB_NOTFOUND);
    cr_assert_eq(n, 80);
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    int64_t last;
    OK(edb_column_get(c, COL_ID, &last, 8, NULL, 0));
    cr_assert_eq(last, 80);
    OK(edb_txn_commit(s));
}

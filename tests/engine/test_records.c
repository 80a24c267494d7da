/* Records: values of every type, NULL and truncation warnings, limits,
 * NOT NULL, AUTOINC, ESCROW, multi-valued columns, transactions around them. */
#include "config.h"

#include <math.h>
#include <pthread.h>

#include "helpers.h"

#include "catalog.h"    /* the read path's internals (damaged records) */
#include "key.h"
#include "record.h"

static char *dir;
static edb_env *env;
static edb_session *s;
static void setup(void) { dir = make_tmpdir(); env = open_env(dir, 0); OK(edb_session_begin(&s, env)); }
static void teardown(void) { edb_session_end(s); edb_env_close(env); rm_tree(dir); free(dir); LEAK_CHECK(); }

TestSuite(records, .init = setup, .fini = teardown, .timeout = 30);

static const int64_t zero64 = 0;

static void
make_table(void)
{
    edb_column_def cols[] = {
        { "id", EDB_COL_INT64, EDB_COL_AUTOINC, 0, NULL, 0 },          /* 1 */
        { "b", EDB_COL_BOOL, 0, 0, NULL, 0 },                          /* 2 */
        { "i8", EDB_COL_INT8, 0, 0, NULL, 0 },
        { "i16", EDB_COL_INT16, 0, 0, NULL, 0 },
        { "i32", EDB_COL_INT32, 0, 0, NULL, 0 },                       /* 5 */
        { "u8", EDB_COL_UINT8, 0, 0, NULL, 0 },
        { "u16", EDB_COL_UINT16, 0, 0, NULL, 0 },
        { "u32", EDB_COL_UINT32, 0, 0, NULL, 0 },
        { "u64", EDB_COL_UINT64, 0, 0, NULL, 0 },
        { "f", EDB_COL_FLOAT, 0, 0, NULL, 0 },                         /* 10 */
        { "d", EDB_COL_DOUBLE, 0, 0, NULL, 0 },
        { "dt", EDB_COL_DATETIME, 0, 0, NULL, 0 },
        { "g", EDB_COL_GUID, 0, 0, NULL, 0 },
        { "t", EDB_COL_TEXT, 0, 8, NULL, 0 },
        { "bin", EDB_COL_BINARY, 0, 0, NULL, 0 },                      /* 15 */
        { "need", EDB_COL_TEXT, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "cnt", EDB_COL_INT64, EDB_COL_ESCROW, 0, &zero64, 8 },
        { "tags", EDB_COL_TEXT, EDB_COL_MULTIVALUED, 0, NULL, 0 },
    };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY } };
    edb_table_def def = { "r", cols, sizeof cols / sizeof cols[0], idx, 1 };
    OK(edb_table_create(s, &def));
}

Test(records, every_type_round_trips)
{
    make_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "r"));
    uint8_t b = 1; int8_t i8 = -5; int16_t i16 = -300; int32_t i32 = -70000;
    uint8_t u8 = 250; uint16_t u16 = 65000; uint32_t u32 = 4000000000u; uint64_t u64 = UINT64_MAX - 1;
    float f = -1.5f; double d = 3.25e100; int64_t dt = 1700000000000000;
    uint8_t g[16]; for (int i = 0; i < 16; i++) g[i] = (uint8_t)(i * 17);
    uint8_t bin[3000]; for (int i = 0; i < 3000; i++) bin[i] = (uint8_t)(i * 31);
    struct { edb_colid id; const void *v; size_t n; } vals[] = {
        { 2, &b, 1 }, { 3, &i8, 1 }, { 4, &i16, 2 }, { 5, &i32, 4 }, { 6, &u8, 1 }, { 7, &u16, 2 },
        { 8, &u32, 4 }, { 9, &u64, 8 }, { 10, &f, 4 }, { 11, &d, 8 }, { 12, &dt, 8 }, { 13, g, 16 },
        { 14, "h\xc3\xa9llo", 6 }, { 15, bin, sizeof bin }, { 16, "", 0 },
    };
    size_t nv = sizeof vals / sizeof vals[0];
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    for (size_t i = 0; i < nv; i++)
        OK(edb_column_set(c, vals[i].id, vals[i].v, vals[i].n, 0));
    /* the prepared record reads back before it is written */
    uint8_t buf[4000];
    size_t got;
    OK(edb_column_get(c, 5, buf, sizeof buf, &got, 0));
    cr_assert_eq(got, 4);
    OK(edb_update(c));
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < nv; i++) {
            memset(buf, 0xAA, sizeof buf);
            OK(edb_column_get(c, vals[i].id, buf, sizeof buf, &got, 0));
            cr_assert_eq(got, vals[i].n, "column %u", vals[i].id);
            cr_assert_eq(memcmp(buf, vals[i].v, vals[i].n), 0, "column %u", vals[i].id);
        }
        int64_t id;
        OK(edb_column_get(c, 1, &id, 8, &got, 0));
        cr_assert_eq(id, 1);
        /* the empty text is not NULL; columns never set are */
        RC(edb_column_get(c, 18, buf, sizeof buf, &got, 0), EDB_WRN_NULL);
        OK(edb_cursor_move(c, EDB_MOVE_FIRST));   /* second pass: read from a fresh position */
    }
    edb_cursor_close(c);
}

Test(records, warnings_null_and_truncated)
{
    make_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "r"));
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 16, "abcdefghij", 10, 0));
    OK(edb_update(c));
    char buf[4];
    size_t got = 99;
    RC(edb_column_get(c, 16, buf, 4, &got, 0), EDB_WRN_TRUNCATED);
    cr_assert_eq(got, 10);
    cr_assert_eq(memcmp(buf, "abcd", 4), 0);
    RC(edb_column_get(c, 16, NULL, 0, &got, 0), EDB_WRN_TRUNCATED);
    cr_assert_eq(got, 10);
    got = 99;
    RC(edb_column_get(c, 5, buf, 4, &got, 0), EDB_WRN_NULL);
    cr_assert_eq(got, 0);
    RC(edb_column_get(c, 99, buf, 4, &got, 0), EDB_NOTFOUND);
    RC(edb_column_get(c, 0, buf, 4, &got, 0), EDB_NOTFOUND);
    RC(edb_column_get(c, 5, NULL, 4, &got, 0), EDB_INVAL);
    RC(edb_column_get(NULL, 5, buf, 4, &got, 0), EDB_INVAL);
    edb_cursor_close(c);
}

Test(records, value_checks)
{
    make_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "r"));
    int32_t v = 1;
    RC(edb_column_set(c, 5, &v, 4, 0), EDB_NOUPDATE);
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    RC(edb_update_prepare(c, EDB_PREP_INSERT), EDB_INVAL);
    RC(edb_column_set(c, 5, &v, 2, 0), EDB_INVAL);              /* wrong size */
    RC(edb_column_set(c, 14, "123456789", 9, 0), EDB_TOOBIG);   /* max_size 8 */
    OK(edb_column_set(c, 14, "12345678", 8, 0));
    RC(edb_column_set(c, 14, "a\xff", 2, 0), EDB_INVAL);        /* not UTF-8 */
    RC(edb_column_set(c, 14, "a\0b", 3, 0), EDB_INVAL);         /* NUL */
    RC(edb_column_set(c, 14, "\xed\xa0\x80", 3, 0), EDB_INVAL); /* surrogate */
    float nf = NAN;
    RC(edb_column_set(c, 10, &nf, 4, 0), EDB_INVAL);
    uint8_t two = 2;
    RC(edb_column_set(c, 2, &two, 1, 0), EDB_INVAL);
    int64_t id = 5;
    RC(edb_column_set(c, 1, &id, 8, 0), EDB_INVAL);             /* AUTOINC */
    RC(edb_column_set(c, 14, "x", 1, EDB_SET_APPEND), EDB_INVAL);
    RC(edb_column_set(c, 14, "x", 1, 0x40), EDB_INVAL);
    RC(edb_column_set(c, 77, "x", 1, 0), EDB_NOTFOUND);
    RC(edb_column_set(c, 14, NULL, 3, 0), EDB_INVAL);
    /* NOT NULL at update, and the update stays prepared */
    RC(edb_update(c), EDB_NOTNULL);
    cr_assert(strstr(edb_error_last(), "'need'") != NULL, "%s", edb_error_last());
    OK(edb_column_set(c, 16, "ok", 2, 0));
    OK(edb_update(c));
    RC(edb_update(c), EDB_NOUPDATE);
    RC(edb_update_prepare(c, 9), EDB_INVAL);
    RC(edb_update_prepare(NULL, EDB_PREP_INSERT), EDB_INVAL);
    RC(edb_update(NULL), EDB_INVAL);
    edb_update_cancel(NULL);
    /* a NOT NULL column set back to NULL in a replace */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 16, NULL, 0, 0));
    RC(edb_update(c), EDB_NOTNULL);
    edb_update_cancel(c);
    char buf[8];
    size_t got;
    OK(edb_column_get(c, 16, buf, sizeof buf, &got, 0));
    cr_assert_eq(got, 2);
    edb_cursor_close(c);
}

Test(records, autoinc_increases_and_is_never_reused)
{
    make_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "r"));
    int64_t last = 0;
    for (int i = 0; i < 5; i++) {
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 16, "x", 1, 0));
        OK(edb_update(c));
        int64_t id;
        OK(edb_column_get(c, 1, &id, 8, NULL, 0));
        cr_assert_eq(id, last + 1);
        last = id;
    }
    /* delete the last row: its id is not handed out again */
    OK(edb_record_delete(c));
    RC(edb_record_delete(c), EDB_RECORD_DELETED);
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 16, "x", 1, 0));
    OK(edb_update(c));
    int64_t id;
    OK(edb_column_get(c, 1, &id, 8, NULL, 0));
    cr_assert_eq(id, 6);
    /* a second table counts on its own */
    edb_column_def cols[] = { { "n", EDB_COL_UINT32, EDB_COL_AUTOINC, 0, NULL, 0 } };
    edb_table_def def = { "other", cols, 1, NULL, 0 };
    OK(edb_table_create(s, &def));
    edb_cursor *c2;
    OK(edb_cursor_open(&c2, s, "other"));
    OK(edb_update_prepare(c2, EDB_PREP_INSERT));
    OK(edb_update(c2));
    uint32_t n;
    OK(edb_column_get(c2, 1, &n, 4, NULL, 0));
    cr_assert_eq(n, 1);
    edb_cursor_close(c2);
    edb_cursor_close(c);
}

Test(records, escrow_adds)
{
    make_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "r"));
    int64_t old = 99;
    RC(edb_escrow_update(c, 17, 1, &old), EDB_NOCURRENT);
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 16, "x", 1, 0));
    OK(edb_update(c));
    OK(edb_escrow_update(c, 17, 5, &old));
    cr_assert_eq(old, 0);
    OK(edb_escrow_update(c, 17, -2, &old));
    cr_assert_eq(old, 5);
    int64_t v;
    OK(edb_column_get(c, 17, &v, 8, NULL, 0));
    cr_assert_eq(v, 3);
    RC(edb_escrow_update(c, 5, 1, &old), EDB_TYPE);
    RC(edb_escrow_update(c, 17, INT64_MAX, &old), EDB_INVAL);
    OK(edb_column_get(c, 17, &v, 8, NULL, 0));
    cr_assert_eq(v, 3);
    /* rolled back with its transaction */
    OK(edb_txn_begin(s, 0));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_escrow_update(c, 17, 100, NULL));
    OK(edb_txn_rollback(s));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_column_get(c, 17, &v, 8, NULL, 0));
    cr_assert_eq(v, 3);
    edb_cursor_close(c);
}

Test(records, multivalued_itags)
{
    make_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "r"));
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 16, "x", 1, 0));
    OK(edb_column_set(c, 18, "red", 3, 0));
    OK(edb_column_set(c, 18, "green", 5, EDB_SET_APPEND));
    OK(edb_column_set(c, 18, "", 0, EDB_SET_APPEND));
    OK(edb_column_set(c, 18, "blue", 4, EDB_SET_APPEND));
    OK(edb_update(c));
    unsigned n;
    OK(edb_column_count(&n, c, 18));
    cr_assert_eq(n, 4);
    const char *want[] = { "red", "green", "", "blue" };
    char buf[16];
    size_t got;
    for (unsigned i = 1; i <= 4; i++) {
        OK(edb_column_get(c, 18, buf, sizeof buf, &got, i));
        cr_assert_eq(got, strlen(want[i - 1]));
        cr_assert_eq(memcmp(buf, want[i - 1], got), 0);
    }
    OK(edb_column_get(c, 18, buf, sizeof buf, &got, 0));
    cr_assert_eq(got, 3);
    RC(edb_column_get(c, 18, buf, sizeof buf, &got, 5), EDB_WRN_NULL);
    /* replace without APPEND leaves one value; NULL removes all */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 18, "only", 4, 0));
    OK(edb_update(c));
    OK(edb_column_count(&n, c, 18));
    cr_assert_eq(n, 1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 18, NULL, 0, 0));
    OK(edb_update(c));
    OK(edb_column_count(&n, c, 18));
    cr_assert_eq(n, 0);
    RC(edb_column_get(c, 18, buf, sizeof buf, &got, 1), EDB_WRN_NULL);
    RC(edb_column_count(NULL, c, 18), EDB_INVAL);
    edb_cursor_close(c);
}

Test(records, rollback_and_nested_levels)
{
    make_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "r"));
    OK(edb_txn_begin(s, 0));
    for (int level = 0; level < 3; level++) {
        if (level > 0)
            OK(edb_txn_begin(s, 0));
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 16, "x", 1, 0));
        OK(edb_update(c));
    }
    OK(edb_txn_rollback(s));     /* undoes only the third row */
    OK(edb_txn_commit(s));
    OK(edb_txn_commit(s));
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "r", NULL));
    cr_assert_eq(st.entries, 2);
    /* a cursor stays usable across transactions and keeps its position: it is
     * on the third row, inserted in the level that was rolled back */
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    RC(edb_update_prepare(c, EDB_PREP_INSERT), EDB_READONLY);
    RC(edb_column_get(c, 16, NULL, 0, NULL, 0), EDB_RECORD_DELETED);
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    OK(edb_txn_begin(s, 0));                 /* nested in read-only: read-only */
    RC(edb_record_delete(c), EDB_READONLY);
    OK(edb_txn_commit(s));
    OK(edb_txn_commit(s));
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_NOTFOUND);   /* still on the last row */
    edb_cursor_close(c);
}

/* A reader's snapshot does not see a writer's later commit. */
Test(records, snapshot_isolation)
{
    make_table();
    edb_session *w;
    OK(edb_session_begin(&w, env));
    edb_cursor *cw, *cr;
    OK(edb_cursor_open(&cw, w, "r"));
    OK(edb_cursor_open(&cr, s, "r"));
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    OK(edb_update_prepare(cw, EDB_PREP_INSERT));
    OK(edb_column_set(cw, 16, "x", 1, 0));
    OK(edb_update(cw));          /* implicit txn in another session: committed */
    RC(edb_cursor_move(cr, EDB_MOVE_FIRST), EDB_NOTFOUND);
    OK(edb_txn_commit(s));
    OK(edb_cursor_move(cr, EDB_MOVE_FIRST));
    /* uncommitted work is invisible to others */
    OK(edb_txn_begin(w, 0));
    OK(edb_record_delete(cw));   /* a new transaction: cw is still on its row */
    OK(edb_cursor_move(cr, EDB_MOVE_FIRST));
    RC(edb_cursor_move(cw, EDB_MOVE_FIRST), EDB_NOTFOUND);
    OK(edb_txn_rollback(w));
    edb_cursor_close(cw);
    edb_cursor_close(cr);
    edb_session_end(w);
}

Test(records, busy_on_implicit_write_in_second_session)
{
    make_table();
    edb_session *w;
    OK(edb_session_begin(&w, env));
    edb_cursor *c;
    OK(edb_cursor_open(&c, w, "r"));
    OK(edb_txn_begin(s, 0));
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 16, "x", 1, 0));
    RC(edb_update(c), EDB_BUSY);          /* same thread, other session holds the writer */
    OK(edb_txn_commit(s));
    OK(edb_update(c));
    edb_cursor_close(c);
    edb_session_end(w);
}

/* Fill the map of a small database inside the session's transaction until
 * an update fails; returns the rows written before it. */
static int
fill_until_full(edb_cursor *c)
{
    uint8_t val[300];
    int rc = 0, n = 0;
    for (; n < 100000; n++) {
        memset(val, 0x55, sizeof val);
        snprintf((char *)val, 16, "%08d", n + 1000);
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, val, sizeof val, 0));
        if ((rc = edb_update(c)) != 0)
            break;
    }
    cr_assert_eq(rc, EDB_FULL, "after %d rows: %s", n, edb_error_last());
    cr_assert_gt(n, 10);
    return n;
}

static void
assert_entries(const char *index, uint64_t want)
{
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "big", index));
    cr_assert_eq(st.entries, want, "%s: %llu entries, want %llu", index ? index : "records",
                 (unsigned long long)st.entries, (unsigned long long)want);
}

/* A full map fails the update with EDB_FULL after it began writing: the
 * transaction is then failed (LMDB must abort it): every later call on it
 * returns EDB_FULL naming the cause, commit rolls it back and returns
 * EDB_FULL, rollback works; the database is as before the transaction (a
 * nested level's failure fails every level: they share one LMDB txn). */
Test(records, full_map_fails_the_transaction)
{
    edb_session_end(s);
    edb_env_close(env);
    char path[512];
    snprintf(path, sizeof path, "%s/small", dir);
    edb_env_opts o = { .map_size = 1u << 20, .max_tables = 2 };
    OK(edb_env_open(&env, path, &o));
    OK(edb_session_begin(&s, env));
    edb_column_def cols[] = { { "v", EDB_COL_BINARY, 0, 0, NULL, 0 } };
    edb_index_def idx[] = { { "v", "+v\0", 0 } };
    edb_table_def def = { "big", cols, 1, idx, 1 };
    OK(edb_table_create(s, &def));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "big"));
    for (int i = 0; i < 3; i++) {                   /* committed before */
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &i, sizeof i, 0));
        OK(edb_update(c));
    }

    /* 1: commit of a failed transaction rolls it back and returns the error */
    OK(edb_txn_begin(s, 0));
    fill_until_full(c);
    cr_assert(strstr(edb_error_last(), "EDB_FULL") != NULL, "%s", edb_error_last());
    RC(edb_update(c), EDB_FULL);                    /* still prepared, refused */
    cr_assert(strstr(edb_error_last(), "rolled back") != NULL, "%s", edb_error_last());
    cr_assert(strstr(edb_error_last(), "MDB_MAP_FULL") != NULL, "%s", edb_error_last());
    edb_update_cancel(c);
    edb_tree_stat st;
    RC(edb_table_stat(&st, s, "big", NULL), EDB_FULL);
    RC(edb_cursor_move(c, EDB_MOVE_FIRST), EDB_FULL);
    RC(edb_update_prepare(c, EDB_PREP_INSERT), EDB_FULL);
    RC(edb_txn_begin(s, 0), EDB_FULL);
    cr_assert_eq(edb_txn_depth(s), 1);
    RC(edb_txn_commit(s), EDB_FULL);
    cr_assert(strstr(edb_error_last(), "rolled back") != NULL, "%s", edb_error_last());
    cr_assert_eq(edb_txn_depth(s), 0);
    assert_entries(NULL, 3);
    assert_entries("v", 3);

    /* 2: rollback */
    OK(edb_txn_begin(s, 0));
    fill_until_full(c);
    edb_update_cancel(c);
    OK(edb_txn_rollback(s));
    assert_entries(NULL, 3);
    assert_entries("v", 3);

    /* 3: a nested level fails: the levels are savepoints of one LMDB
     * transaction (undo.h), which LMDB now refuses, so the whole transaction
     * is failed until its outermost level ends; nothing of it is kept */
    OK(edb_txn_begin(s, 0));
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, "outer", 5, 0));
    OK(edb_update(c));
    OK(edb_txn_begin(s, 0));
    fill_until_full(c);
    edb_update_cancel(c);
    RC(edb_table_stat(&st, s, "big", NULL), EDB_FULL);
    OK(edb_txn_rollback(s));
    RC(edb_table_stat(&st, s, "big", NULL), EDB_FULL);
    cr_assert(strstr(edb_error_last(), "MDB_MAP_FULL") != NULL, "%s", edb_error_last());
    RC(edb_txn_commit(s), EDB_FULL);
    cr_assert_eq(edb_txn_depth(s), 0);
    assert_entries(NULL, 3);
    assert_entries("v", 3);
    edb_cursor_close(c);
}

/* An update that fails for the caller's reason in the middle of a multi-index
 * table, inside a transaction, writes nothing: the transaction goes on and
 * every index is exact. */
Test(records, failed_update_in_txn_leaves_indexes_exact)
{
    edb_column_def cols[] = {
        { "id", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "a", EDB_COL_INT32, 0, 0, NULL, 0 },
        { "blob", EDB_COL_BINARY, 0, 0, NULL, 0 },
        { "u", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 },
    };
    edb_index_def idx[] = {
        { "pk", "+id\0", EDB_IDX_PRIMARY },
        { "a", "+a\0", 0 },
        { "blob", "+blob\0", 0 },
        { "u", "+u\0", EDB_IDX_UNIQUE },
    };
    edb_table_def def = { "big", cols, 4, idx, 4 };
    OK(edb_table_create(s, &def));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "big"));
    OK(edb_txn_begin(s, 0));
    for (int32_t i = 1; i <= 4; i++) {
        int32_t a = i * 10, u = i * 100;
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &i, 4, 0));
        OK(edb_column_set(c, 2, &a, 4, 0));
        OK(edb_column_set(c, 3, "b", 1, 0));
        OK(edb_column_set(c, 4, &u, 4, 0));
        OK(edb_update(c));
    }
    static uint8_t huge[600];
    int32_t id = 9, a = 90, u = 100, u2 = 900;
    /* KEYDUP in the last index */
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    OK(edb_column_set(c, 2, &a, 4, 0));
    OK(edb_column_set(c, 4, &u, 4, 0));
    RC(edb_update(c), EDB_KEYDUP);
    cr_assert(strstr(edb_error_last(), "'u'") != NULL, "%s", edb_error_last());
    /* TOOBIG in the middle index */
    OK(edb_column_set(c, 4, &u2, 4, 0));
    OK(edb_column_set(c, 3, huge, sizeof huge, 0));
    RC(edb_update(c), EDB_TOOBIG);
    cr_assert(strstr(edb_error_last(), "'blob'") != NULL, "%s", edb_error_last());
    /* NOT NULL */
    OK(edb_column_set(c, 3, "b", 1, 0));
    OK(edb_column_set(c, 4, NULL, 0, 0));
    RC(edb_update(c), EDB_NOTNULL);
    /* a primary key taken */
    OK(edb_column_set(c, 4, &u2, 4, 0));
    OK(edb_column_set(c, 1, &(int32_t){ 2 }, 4, 0));
    RC(edb_update(c), EDB_KEYDUP);
    cr_assert(strstr(edb_error_last(), "primary") != NULL, "%s", edb_error_last());
    edb_update_cancel(c);
    /* replaces of row 3 that fail in each way leave its entries */
    int32_t three = 3;
    OK(edb_key_make(c, &three, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 2, &a, 4, 0));
    OK(edb_column_set(c, 4, &(int32_t){ 400 }, 4, 0));
    RC(edb_update(c), EDB_KEYDUP);
    OK(edb_column_set(c, 4, &(int32_t){ 300 }, 4, 0));
    OK(edb_column_set(c, 3, huge, sizeof huge, 0));
    RC(edb_update(c), EDB_TOOBIG);
    OK(edb_column_set(c, 3, "b", 1, 0));
    OK(edb_column_set(c, 1, &(int32_t){ 4 }, 4, 0));
    RC(edb_update(c), EDB_KEYDUP);
    edb_update_cancel(c);
    /* the transaction goes on; then every index holds exactly rows 1..4 */
    for (int pass = 0; pass < 2; pass++) {
        assert_entries(NULL, 4);
        assert_entries("a", 4);
        assert_entries("blob", 4);
        assert_entries("u", 4);
        const char *names[] = { NULL, "a", "blob", "u" };
        for (int k = 0; k < 4; k++) {
            OK(edb_cursor_set_index(c, names[k]));
            int32_t n = 0, seen = 0;
            while (edb_cursor_move(c, EDB_MOVE_NEXT) == 0) {
                int32_t rid, ra, ru;
                OK(edb_column_get(c, 1, &rid, 4, NULL, 0));
                OK(edb_column_get(c, 2, &ra, 4, NULL, 0));
                OK(edb_column_get(c, 4, &ru, 4, NULL, 0));
                cr_assert_eq(ra, rid * 10, "index %s", names[k] ? names[k] : "pk");
                cr_assert_eq(ru, rid * 100, "index %s", names[k] ? names[k] : "pk");
                seen |= 1 << rid;
                n++;
            }
            cr_assert_eq(n, 4);
            cr_assert_eq(seen, 0x1e);
        }
        if (pass == 0)
            OK(edb_txn_commit(s));
    }
    edb_cursor_close(c);
}

/* ---- the cursor's read path on damaged records (record.c, "Invariants") ----
 * edb__rec_parse checks the header and the last end offset, edb__rec_hdr_view
 * the offsets around the column it reads: a damaged record read is
 * EDB_CORRUPT or EDB_VERSION, never a read outside the record. */

static void
damage_table(edb__table **t)
{
    edb_column_def cols[] = {
        { "id", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "name", EDB_COL_TEXT, 0, 0, NULL, 0 },
        { "tags", EDB_COL_TEXT, EDB_COL_MULTIVALUED, 0, NULL, 0 },
    };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY } };
    edb_table_def def = { "d", cols, 3, idx, 1 };
    OK(edb_table_create(s, &def));
    MDB_txn *txn;
    OK(edb__ro_begin(env, &txn));
    OK(edb__table_load(t, env, txn, "d"));
    edb__ro_end(env, txn);
}

/* Encode (id, name, two tags) for table t. */
static void
good_record(const edb__table *t, edb__buf *out)
{
    edb__rec r = { 0 };
    OK(edb__rec_init(&r, t));
    int32_t id = 7;
    OK(edb__colval_set(&r.cols[0], &t->cols[0], &id, 4, false));
    OK(edb__colval_set(&r.cols[1], &t->cols[1], "seven", 5, false));
    OK(edb__colval_set(&r.cols[2], &t->cols[2], "a", 1, true));
    OK(edb__colval_set(&r.cols[2], &t->cols[2], "bc", 2, true));
    OK(edb__rec_encode(&r, out, false));
    edb__rec_free(&r);
}

/* Read column col of raw[0..len) the way the cursor does. */
static int
read_col(const edb__table *t, const uint8_t *raw, size_t len, edb_colid col, edb__colview *v)
{
    edb__rechdr h;
    int rc = edb__rec_parse(&h, raw, len);
    if (rc == 0)
        rc = edb__rec_hdr_view(v, t, &h, col);
    if (rc == 0 && !v->single && v->area != NULL)
        cr_assert(v->area >= raw && v->len <= len && v->area + v->len <= raw + len,
                  "column %u read outside the record", col);
    return rc;
}

static void
set32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

Test(records, read_path_refuses_damaged_records)
{
    edb__table *t;
    damage_table(&t);
    edb__buf good = { 0 };
    good_record(t, &good);
    uint8_t raw[256];
    size_t len = good.len;
    cr_assert(len <= sizeof raw);
    edb__colview v;
    /* intact: every column reads, as the full check reads it */
    for (edb_colid col = 1; col <= 3; col++) {
        edb__colview full;
        OK(read_col(t, good.p, len, col, &v));
        OK(edb__rec_view(&full, t, good.p, len, col));
        cr_assert(v.null == full.null && v.count == full.count && v.len == full.len && v.area == full.area);
    }
    OK(read_col(t, good.p, len, 2, &v));
    cr_assert(v.len == 5 && memcmp(v.area, "seven", 5) == 0);
    /* header: N = 3, bitmap 1 byte, offsets at 5, 9, 13, data at 17 */
    size_t offs = 5, data = 17;
    RC(read_col(t, good.p, 3, 1, &v), EDB_CORRUPT);                 /* shorter than a header */
    memcpy(raw, good.p, len); raw[0] = 4;     /* 2: long values, 3: narrow offsets */
    RC(read_col(t, raw, len, 1, &v), EDB_VERSION);                  /* a newer format */
    memcpy(raw, good.p, len); raw[0] = 0;
    RC(read_col(t, raw, len, 1, &v), EDB_CORRUPT);
    memcpy(raw, good.p, len); raw[2] = 0xFF; raw[3] = 0x7F;
    RC(read_col(t, raw, len, 1, &v), EDB_CORRUPT);                  /* header larger than the record */
    RC(read_col(t, good.p, len - 1, 1, &v), EDB_CORRUPT);           /* last offset past the end */
    memcpy(raw, good.p, len); raw[len] = 0;
    RC(read_col(t, raw, len + 1, 1, &v), EDB_CORRUPT);              /* a trailing byte */
    /* column 2 ends past the data: columns 2 and 3 are refused, column 1 reads */
    memcpy(raw, good.p, len); set32(raw + offs + 4, 1000);
    RC(read_col(t, raw, len, 2, &v), EDB_CORRUPT);
    RC(read_col(t, raw, len, 3, &v), EDB_CORRUPT);
    OK(read_col(t, raw, len, 1, &v));
    RC(edb__rec_view(&v, t, raw, len, 1), EDB_CORRUPT);             /* the full check refuses all */
    /* column 2 ends before it starts */
    memcpy(raw, good.p, len); set32(raw + offs + 4, 2);
    RC(read_col(t, raw, len, 2, &v), EDB_CORRUPT);
    /* a NULL column with bytes */
    memcpy(raw, good.p, len); raw[4] |= 2;
    RC(read_col(t, raw, len, 2, &v), EDB_CORRUPT);
    /* a multi-valued column whose value lengths overrun its area */
    memcpy(raw, good.p, len); set32(raw + data + 9, 200);
    RC(read_col(t, raw, len, 3, &v), EDB_CORRUPT);
    /* a record with more columns than its table */
    uint32_t ncols = t->ncols;
    t->ncols = 2;
    RC(read_col(t, good.p, len, 1, &v), EDB_CORRUPT);
    t->ncols = ncols;
    /* every single-byte damage: refused, or read inside the record; when the
     * full check accepts the record, both reads agree */
    for (size_t i = 0; i < len; i++)
        for (int m = 0; m < 8; m++) {
            memcpy(raw, good.p, len);
            raw[i] ^= (uint8_t)(1u << m);
            for (edb_colid col = 1; col <= 3; col++) {
                int rc = read_col(t, raw, len, col, &v);
                cr_assert(rc == 0 || rc == EDB_CORRUPT || rc == EDB_VERSION, "byte %zu bit %d: %d", i, m, rc);
                edb__colview full;
                if (edb__rec_view(&full, t, raw, len, col) == 0) {
                    cr_assert_eq(rc, 0, "byte %zu bit %d column %u: the full check reads it", i, m, col);
                    cr_assert(v.null == full.null && v.count == full.count && v.len == full.len &&
                              v.area == full.area);
                }
            }
        }
    edb__buf_free(&good);
    edb__table_free(t);
}

Test(records, cursor_reads_of_a_damaged_record)
{
    edb__table *t;
    damage_table(&t);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "d"));
    for (int32_t id = 1; id <= 3; id++) {
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &id, 4, 0));
        OK(edb_column_set(c, 2, "name", 4, 0));
        OK(edb_update(c));
    }
    /* damage record 2 under the engine: column 2 ends past the data */
    MDB_txn *txn;
    cr_assert_eq(mdb_txn_begin(env->mdb, NULL, 0, &txn), 0);
    uint8_t kb[16];
    size_t kl = 0;
    int32_t two = 2;
    OK(edb__key_append(kb, sizeof kb, &kl, EDB_COL_INT32, &two, 4, false));   /* the key of id 2 */
    MDB_val k = { kl, kb }, d;
    cr_assert_eq(edb__ks_get(txn, &t->rec, &k, &d), 0, "record 2 not under the expected key");
    uint8_t raw[256];
    cr_assert(d.mv_size <= sizeof raw);
    memcpy(raw, d.mv_data, d.mv_size);
    cr_assert_eq(raw[0], EDB__RECORD_VERSION_W, "a format-5 database writes version 3");
    cr_assert_eq(raw[1], 0, "1-byte end offsets");
    raw[5 + 1] = 200;
    d.mv_data = raw;
    cr_assert_eq(edb__ks_put(txn, &t->rec, &k, &d, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    char buf[16];
    OK(edb_column_get(c, 2, buf, sizeof buf, NULL, 0));
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    int32_t id = 0;
    OK(edb_column_get(c, 1, &id, 4, NULL, 0));       /* an intact column of the damaged record */
    cr_assert_eq(id, 2);
    RC(edb_column_get(c, 2, buf, sizeof buf, NULL, 0), EDB_CORRUPT);
    RC(edb_column_get(c, 3, buf, sizeof buf, NULL, 0), EDB_CORRUPT);
    RC(edb_column_count(&(unsigned){ 0 }, c, 2), EDB_CORRUPT);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    OK(edb_column_get(c, 2, buf, sizeof buf, NULL, 0));
    OK(edb_txn_commit(s));
    edb_cursor_close(c);
    edb__table_free(t);
}

/* Issue #10, point 10: edb_column_set(c, col, NULL, 0, EDB_SET_APPEND) on a
 * multi-valued column appends nothing (ESE ignores it); it deleted every
 * value before. */
Test(records, append_null_adds_nothing)
{
    make_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "r"));
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 16, "x", 1, 0));
    OK(edb_column_set(c, 18, "red", 3, 0));
    OK(edb_column_set(c, 18, "green", 5, EDB_SET_APPEND));
    OK(edb_column_set(c, 18, NULL, 0, EDB_SET_APPEND));
    OK(edb_update(c));
    unsigned n;
    OK(edb_column_count(&n, c, 18));
    cr_assert_eq(n, 2, "appending NULL removed values: %u left", n);
    /* in a replace too, and on a column that has no value yet */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 18, NULL, 0, EDB_SET_APPEND));
    OK(edb_update(c));
    OK(edb_column_count(&n, c, 18));
    cr_assert_eq(n, 2);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 18, NULL, 0, 0));          /* without APPEND NULL still removes all */
    OK(edb_column_set(c, 18, NULL, 0, EDB_SET_APPEND));
    OK(edb_update(c));
    OK(edb_column_count(&n, c, 18));
    cr_assert_eq(n, 0);
    /* NULL with a size and APPEND on a single-valued column stay errors */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    RC(edb_column_set(c, 18, NULL, 3, EDB_SET_APPEND), EDB_INVAL);
    RC(edb_column_set(c, 16, NULL, 0, EDB_SET_APPEND), EDB_INVAL);
    edb_update_cancel(c);
    edb_cursor_close(c);
}

/* ---- record version 3 (format 5): end offsets of 1, 2 or 4 bytes ---------- */

/* Encode (id 7, a BINARY value of @binlen bytes as column 2's area, tags
 * "a") for table t (damage_table's columns, column 2 as bytes) narrow. */
static void
wide_record(const edb__table *t, size_t binlen, bool sep, bool narrow, edb__buf *out)
{
    edb__rec r = { 0 };
    OK(edb__rec_init(&r, t));
    int32_t id = 7;
    OK(edb__colval_set(&r.cols[0], &t->cols[0], &id, 4, false));
    uint8_t *bin = malloc(binlen ? binlen : 1);
    cr_assert_not_null(bin);
    for (size_t i = 0; i < binlen; i++)
        bin[i] = (uint8_t)('a' + i % 26);
    OK(edb__buf_set(&r.cols[1].area, bin, binlen));
    r.cols[1].null = false;
    r.cols[1].count = 1;
    r.cols[1].sep = sep;
    free(bin);
    OK(edb__colval_set(&r.cols[2], &t->cols[2], "a", 1, true));
    OK(edb__rec_encode(&r, out, narrow));
    edb__rec_free(&r);
}

/* The width is the narrowest that holds the data size: 255 and 256, 65535
 * and 65536 bytes of data are the boundaries; each width reads back through
 * the cursor's parse, the full view, decode and validate, as the version-1
 * encoding of the same record does. */
Test(records, narrow_offsets_at_each_width)
{
    edb__table *t;
    damage_table(&t);
    /* data = 4 (id) + binlen + 5 (tags: u32 length, "a") */
    static const struct { size_t data; unsigned code; } cases[] = {
        { 9, 0 }, { 255, 0 }, { 256, 1 }, { 65535, 1 }, { 65536, 2 }, { 70000, 2 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t binlen = cases[k].data - 9;
        unsigned w = 1u << cases[k].code;
        edb__buf n = { 0 }, o = { 0 };
        wide_record(t, binlen, false, true, &n);
        wide_record(t, binlen, false, false, &o);
        cr_assert_eq(n.p[0], EDB__RECORD_VERSION_W);
        cr_assert_eq(n.p[1], cases[k].code, "data %zu: width code %u", cases[k].data, n.p[1]);
        cr_assert_eq(n.len, 4 + 1 + 3 * w + cases[k].data, "data %zu: %zu bytes", cases[k].data, n.len);
        cr_assert_eq(o.p[0], EDB__RECORD_VERSION);
        cr_assert_eq(o.len, 4 + 1 + 12 + cases[k].data);
        for (edb_colid col = 1; col <= 3; col++) {
            edb__colview a, b, full;
            OK(read_col(t, n.p, n.len, col, &a));
            OK(read_col(t, o.p, o.len, col, &b));
            OK(edb__rec_view(&full, t, n.p, n.len, col));
            cr_assert(a.len == b.len && a.count == b.count && !a.null && !a.sep);
            cr_assert(memcmp(a.area, b.area, a.len) == 0, "data %zu column %u", cases[k].data, col);
            cr_assert(full.area == a.area && full.len == a.len);
        }
        OK(edb__rec_validate(t, n.p, n.len));
        edb__rec r = { 0 };
        OK(edb__rec_decode(&r, t, n.p, n.len));
        cr_assert_eq(r.cols[1].area.len, binlen);
        edb__buf again = { 0 };
        OK(edb__rec_encode(&r, &again, true));
        cr_assert(again.len == n.len && memcmp(again.p, n.p, n.len) == 0, "decode + encode is identity");
        edb__buf_free(&again);
        edb__rec_free(&r);
        edb__buf_free(&n);
        edb__buf_free(&o);
    }
    edb__table_free(t);
}

/* A long-value reference in a version 3 record: flagged by header bit 2 and
 * a second bitmap, read back as a reference (not by the inline fast path). */
Test(records, narrow_record_with_a_long_value)
{
    edb__table *t;
    damage_table(&t);
    edb__buf n = { 0 };
    wide_record(t, EDB__LVREF_SIZE, true, true, &n);
    cr_assert_eq(n.p[0], EDB__RECORD_VERSION_W);
    cr_assert_eq(n.p[1], 4 | 0, "1-byte offsets and the long-value bitmap");
    cr_assert_eq(n.p[5], 2, "column 2 is a reference");
    cr_assert_eq(n.len, 4 + 2 + 3 + 4 + EDB__LVREF_SIZE + 5);
    edb__colview v;
    OK(read_col(t, n.p, n.len, 2, &v));
    cr_assert(v.sep && v.len == EDB__LVREF_SIZE);
    OK(read_col(t, n.p, n.len, 1, &v));
    cr_assert(!v.sep && v.len == 4);
    edb__rec r = { 0 };
    OK(edb__rec_decode(&r, t, n.p, n.len));
    cr_assert(r.cols[1].sep && !r.cols[0].sep);
    edb__rec_free(&r);
    /* a reference of the wrong size is damage */
    edb__buf bad = { 0 };
    wide_record(t, 19, true, true, &bad);
    RC(edb__rec_view(&v, t, bad.p, bad.len, 2), EDB_CORRUPT);
    edb__buf_free(&bad);
    edb__buf_free(&n);
    edb__table_free(t);
}

/* Columns added after a version 3 record was written read as NULL (or their
 * default), at every width. */
Test(records, narrow_record_predates_a_column)
{
    edb__table *t;
    damage_table(&t);
    for (size_t binlen = 10; binlen < 70000; binlen *= 30) {
        edb__rec r = { 0 };
        OK(edb__rec_init(&r, t));
        int32_t id = 3;
        OK(edb__colval_set(&r.cols[0], &t->cols[0], &id, 4, false));
        uint8_t *bin = malloc(binlen);
        cr_assert_not_null(bin);
        memset(bin, 'x', binlen);
        OK(edb__colval_set(&r.cols[1], &t->cols[1], bin, binlen, false));
        free(bin);
        r.ncols = 2;                        /* written before column 3 existed */
        edb__buf n = { 0 };
        OK(edb__rec_encode(&r, &n, true));
        r.ncols = 3;
        edb__rec_free(&r);
        cr_assert_eq(n.p[2], 2);
        edb__colview v;
        OK(read_col(t, n.p, n.len, 3, &v));
        cr_assert(v.null && v.count == 0);
        OK(read_col(t, n.p, n.len, 2, &v));
        cr_assert_eq(v.len, binlen);
        OK(edb__rec_validate(t, n.p, n.len));
        edb__buf_free(&n);
    }
    edb__table_free(t);
}

/* Damaged version 3 headers: the width code 3 and unknown flag bits are
 * EDB_CORRUPT; every single-bit damage of a record at each width is
 * refused or read inside the record, and agrees with the full check. */
Test(records, narrow_read_path_refuses_damaged_records)
{
    edb__table *t;
    damage_table(&t);
    edb__colview v;
    static const size_t bins[] = { 5, 300, 65530 };
    for (size_t k = 0; k < 3; k++) {
        for (int sep = 0; sep <= (k == 0); sep++) {
            edb__buf good = { 0 };
            wide_record(t, sep ? EDB__LVREF_SIZE : bins[k], sep, true, &good);
            size_t len = good.len;
            uint8_t *raw = malloc(len + 1);
            cr_assert_not_null(raw);
            memcpy(raw, good.p, len); raw[1] = (uint8_t)(raw[1] | 3);
            RC(read_col(t, raw, len, 1, &v), EDB_CORRUPT);
            RC(edb__rec_validate(t, raw, len), EDB_CORRUPT);
            memcpy(raw, good.p, len); raw[1] |= 8;
            RC(read_col(t, raw, len, 1, &v), EDB_CORRUPT);
            edb__rec bad = { 0 };
            RC(edb__rec_decode(&bad, t, raw, len), EDB_CORRUPT);
            edb__rec_free(&bad);
            RC(read_col(t, good.p, len - 1, 1, &v), EDB_CORRUPT);
            memcpy(raw, good.p, len); raw[len] = 0;
            RC(read_col(t, raw, len + 1, 1, &v), EDB_CORRUPT);
            /* the header's bytes (and the first data bytes) bit by bit */
            size_t hdrlen = 4 + (sep ? 2 : 1) + 3 * ((size_t)1 << (good.p[1] & 3));
            for (size_t i = 0; i < hdrlen + 4; i++)
                for (int m = 0; m < 8; m++) {
                    memcpy(raw, good.p, len);
                    raw[i] ^= (uint8_t)(1u << m);
                    for (edb_colid col = 1; col <= 3; col++) {
                        int rc = read_col(t, raw, len, col, &v);
                        cr_assert(rc == 0 || rc == EDB_CORRUPT || rc == EDB_VERSION,
                                  "byte %zu bit %d: %d", i, m, rc);
                        edb__colview full;
                        if (edb__rec_view(&full, t, raw, len, col) == 0) {
                            cr_assert_eq(rc, 0, "byte %zu bit %d column %u", i, m, col);
                            cr_assert(v.null == full.null && v.len == full.len && v.area == full.area);
                        }
                    }
                    edb__rec r = { 0 };
                    (void)edb__rec_decode(&r, t, raw, len);
                    edb__rec_free(&r);
                    (void)edb__rec_validate(t, raw, len);
                }
            free(raw);
            edb__buf_free(&good);
        }
    }
    edb__table_free(t);
}

/* Format 5 writes version 3: the dense bench row (int64 key, 10 bytes of
 * text, int32, double, datetime) is 48 bytes (10 of header), not 63; a
 * format 4 database keeps writing version 1 (test_upgrade.c). */
Test(records, format5_row_is_48_bytes)
{
    edb_column_def cols[] = {
        { "id", EDB_COL_INT64, 0, 0, NULL, 0 }, { "name", EDB_COL_TEXT, 0, 0, NULL, 0 },
        { "qty", EDB_COL_INT32, 0, 0, NULL, 0 }, { "price", EDB_COL_DOUBLE, 0, 0, NULL, 0 },
        { "ts", EDB_COL_DATETIME, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY } };
    edb_table_def def = { "dense", cols, 5, idx, 1 };
    OK(edb_table_create(s, &def));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "dense"));
    int64_t id = 123456, ts = 1700000000000000;
    int32_t qty = 3;
    double price = 9.5;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 8, 0));
    OK(edb_column_set(c, 2, "user123456", 10, 0));
    OK(edb_column_set(c, 3, &qty, 4, 0));
    OK(edb_column_set(c, 4, &price, 8, 0));
    OK(edb_column_set(c, 5, &ts, 8, 0));
    OK(edb_update(c));
    edb_cursor_close(c);
    edb__table *t;
    MDB_txn *txn;
    OK(edb__ro_begin(env, &txn));
    OK(edb__table_load(&t, env, txn, "dense"));
    uint8_t kb[16];
    size_t kl = 0;
    OK(edb__key_append(kb, sizeof kb, &kl, EDB_COL_INT64, &id, 8, false));
    MDB_val k = { kl, kb }, d;
    cr_assert_eq(edb__ks_get(txn, &t->rec, &k, &d), 0);
    cr_assert_eq(d.mv_size, 48);
    cr_assert_eq(((uint8_t *)d.mv_data)[0], EDB__RECORD_VERSION_W);
    edb__ro_end(env, txn);
    edb__table_free(t);
}

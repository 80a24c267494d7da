/*
 * The keyspace (catalog.h, keyspace.h): tables and indexes as key ranges of
 * three fixed LMDB databases.  No table limit (10,000 tables with two
 * indexes each, read back after a reopen), the fixed databases are all
 * LMDB's tools see, another process sees a table as soon as it is
 * committed, create and drop are ordinary writes of the caller's
 * transaction (a rollback takes them back, a drop deletes the range), exact
 * row counts per table and index, and older formats are refused with the
 * way out named.
 */
#include "config.h"

#include <lmdb.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "helpers.h"

#include "catalog.h"    /* format 5's short id prefixes, as stored */

static char *dir;
static char path[512];
static edb_env *env;
static edb_session *s;

static unsigned
scaled(unsigned n)
{
    return test_scaled_min(n, 1);
}

static void
setup(void)
{
    dir = make_tmpdir();
    snprintf(path, sizeof path, "%s/db", dir);
    edb_env_opts o = { .map_size = test_map_size(), .flags = EDB_ENV_NOSYNC };
    OK(edb_env_open(&env, path, &o));
    OK(edb_session_begin(&s, env));
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

TestSuite(keyspace, .init = setup, .fini = teardown, .timeout = 60);

/* (id int32 primary, v int32 indexed, w int32 indexed ignoring NULL) */
static int
create_in(edb_session *ss, const char *name)
{
    edb_column_def cols[] = { { "id", EDB_COL_INT32, 0, 0, NULL, 0 },
                              { "v", EDB_COL_INT32, 0, 0, NULL, 0 },
                              { "w", EDB_COL_INT32, 0, 0, NULL, 0 } };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY }, { "by_v", "+v\0", 0 },
                            { "by_w", "-w\0", EDB_IDX_IGNORE_NULL } };
    edb_table_def def = { name, cols, 3, idx, 3 };
    return edb_table_create(ss, &def);
}

/* Insert (id, v, w); w < 0: NULL. */
static int
insert_in(edb_session *ss, const char *name, int32_t id, int32_t v, int32_t w)
{
    edb_cursor *c;
    int rc = edb_cursor_open(&c, ss, name);
    if (rc != 0)
        return rc;
    if ((rc = edb_update_prepare(c, EDB_PREP_INSERT)) == 0 && (rc = edb_column_set(c, 1, &id, 4, 0)) == 0 &&
        (rc = edb_column_set(c, 2, &v, 4, 0)) == 0 &&
        (rc = edb_column_set(c, 3, w < 0 ? NULL : &w, w < 0 ? 0 : 4, 0)) == 0)
        rc = edb_update(c);
    edb_cursor_close(c);
    return rc;
}

/* Entries of table @name through @index (NULL: primary), summing column v;
 * -1 on error. */
static int
walk(edb_session *ss, const char *name, const char *index, int32_t *sum)
{
    edb_cursor *c;
    if (edb_cursor_open(&c, ss, name) != 0)
        return -1;
    if (index != NULL && edb_cursor_set_index(c, index) != 0) {
        edb_cursor_close(c);
        return -1;
    }
    int n = 0;
    *sum = 0;
    int rc;
    for (rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, 1)) {
        int32_t v;
        if (edb_column_get(c, 2, &v, 4, NULL, 0) != 0)
            break;
        *sum += v;
        n++;
    }
    /* and backwards: LAST and PREV stay inside the range too */
    int back = 0;
    for (int r = edb_cursor_move(c, EDB_MOVE_LAST); r == 0; r = edb_cursor_move(c, -1))
        back++;
    edb_cursor_close(c);
    return rc == EDB_NOTFOUND && back == n ? n : -1;
}

static uint64_t
entries(const char *name, const char *index)
{
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, name, index));
    return st.entries;
}

/* The names in LMDB's main database: the named databases. */
static int
named_dbs(char names[][64], int cap)
{
    MDB_env *m;
    MDB_txn *t;
    MDB_dbi main_dbi;
    MDB_cursor *mc;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 8), 0);
    cr_assert_eq(mdb_env_open(m, path, MDB_RDONLY, 0600), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, MDB_RDONLY, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, NULL, 0, &main_dbi), 0);
    cr_assert_eq(mdb_cursor_open(t, main_dbi, &mc), 0);
    MDB_val k, d;
    int n = 0;
    for (int rc = mdb_cursor_get(mc, &k, &d, MDB_FIRST); rc == 0; rc = mdb_cursor_get(mc, &k, &d, MDB_NEXT)) {
        if (n < cap)
            snprintf(names[n], 64, "%.*s", (int)k.mv_size, (const char *)k.mv_data);
        n++;
    }
    mdb_cursor_close(mc);
    mdb_txn_abort(t);
    mdb_env_close(m);
    return n;
}

/* What mdb_stat -a lists: the three fixed databases, whatever the tables. */
Test(keyspace, lmdb_sees_only_the_fixed_databases)
{
    char names[8][64];
    cr_assert_eq(named_dbs(names, 8), 3);
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        OK(create_in(s, name));
        OK(insert_in(s, name, 1, i, i));
    }
    OK(edb_index_drop(s, "t3", "by_w"));
    OK(edb_table_drop(s, "t4"));
    int n = named_dbs(names, 8);
    cr_assert_eq(n, 3, "%d named databases", n);
    cr_assert_str_eq(names[0], "edb.catalog");
    cr_assert_str_eq(names[1], "edb.index");
    cr_assert_str_eq(names[2], "edb.records");
}

/* No table limit: 10,000 tables with two secondary indexes each (scaled by
 * EDB_TEST_SCALE), a row in each, every row read back after a reopen. */
Test(keyspace, ten_thousand_tables, .timeout = 600)
{
    unsigned ntables = scaled(10000);
    char name[32];
    for (unsigned i = 0; i < ntables; i++) {
        if (i % 500 == 0)
            OK(edb_txn_begin(s, 0));
        snprintf(name, sizeof name, "table%05u", i);
        OK(create_in(s, name));
        OK(insert_in(s, name, (int32_t)i, (int32_t)i * 3, (int32_t)i));
        OK(insert_in(s, name, (int32_t)i + 1, 1, -1));
        if (i % 500 == 499 || i == ntables - 1)
            OK(edb_txn_commit(s));
    }
    edb_session_end(s);
    edb_env_close(env);
    s = NULL;
    env = NULL;
    edb_env_opts o = { .map_size = test_map_size(), .flags = EDB_ENV_READONLY };
    OK(edb_env_open(&env, path, &o));
    OK(edb_session_begin(&s, env));
    char **list;
    size_t count;
    OK(edb_table_list(&list, &count, s));
    cr_assert_eq(count, ntables);
    edb_free(list);
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    for (unsigned i = 0; i < ntables; i++) {
        snprintf(name, sizeof name, "table%05u", i);
        int32_t sum;
        cr_assert_eq(walk(s, name, NULL, &sum), 2, "%s", name);
        cr_assert_eq(sum, (int32_t)i * 3 + 1, "%s", name);
        cr_assert_eq(walk(s, name, "by_v", &sum), 2, "%s", name);
        cr_assert_eq(walk(s, name, "by_w", &sum), 1, "%s", name);
        cr_assert_eq(sum, (int32_t)i * 3);
        edb_cursor *c;
        OK(edb_cursor_open(&c, s, name));
        int32_t id = (int32_t)i + 1, v;
        OK(edb_key_make(c, &id, 4, EDB_KEY_NEW));
        OK(edb_cursor_seek(c, EDB_SEEK_EQ));
        OK(edb_column_get(c, 2, &v, 4, NULL, 0));
        cr_assert_eq(v, 1);
        edb_cursor_close(c);
    }
    OK(edb_txn_commit(s));
}

/* Another process sees a table as soon as it is committed, and not before;
 * this process's next transaction sees the other's. */
Test(keyspace, another_process_sees_tables_when_committed)
{
    OK(create_in(s, "mine"));
    int pfd[2], qfd[2];
    cr_assert_eq(pipe(pfd), 0);
    cr_assert_eq(pipe(qfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        edb_env *e2;
        edb_session *s2;
        edb_env_opts o = { .map_size = test_map_size() };
        if (edb_env_open(&e2, path, &o) != 0 || edb_session_begin(&s2, e2) != 0)
            _exit(2);
        if (edb_txn_begin(s2, 0) != 0 || create_in(s2, "theirs") != 0 || insert_in(s2, "theirs", 1, 5, 5) != 0)
            _exit(3);
        if (write(pfd[1], "x", 1) != 1)      /* created, not committed */
            _exit(4);
        char ch;
        if (read(qfd[0], &ch, 1) != 1 || edb_txn_commit(s2) != 0 || write(pfd[1], "y", 1) != 1)
            _exit(5);
        if (read(qfd[0], &ch, 1) != 1)      /* the parent wrote into it */
            _exit(6);
        int32_t sum;
        int n = walk(s2, "theirs", "by_v", &sum);
        edb_env_close(e2);
        _exit(n == 2 && sum == 5 + 7 ? 0 : 7);
    }
    char ch;
    edb_cursor *c;
    cr_assert_eq(read(pfd[0], &ch, 1), 1);
    RC(edb_cursor_open(&c, s, "theirs"), EDB_NOTFOUND);
    OK(edb_txn_begin(s, EDB_TXN_READONLY));            /* a snapshot from before the commit */
    cr_assert_eq(write(qfd[1], "a", 1), 1);
    cr_assert_eq(read(pfd[0], &ch, 1), 1);
    RC(edb_cursor_open(&c, s, "theirs"), EDB_NOTFOUND);
    OK(edb_txn_commit(s));
    int32_t sum;
    cr_assert_eq(walk(s, "theirs", NULL, &sum), 1);
    OK(insert_in(s, "theirs", 2, 7, 7));
    cr_assert_eq(write(qfd[1], "b", 1), 1);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

/* Create and drop are writes of the caller's transaction: a rollback takes
 * them back, nested levels included; a drop deletes the range (a table made
 * again under the name is empty, and the shared databases lose the rows). */
Test(keyspace, create_and_drop_are_transactional)
{
    OK(create_in(s, "a"));
    for (int i = 0; i < 50; i++)
        OK(insert_in(s, "a", i, i, i));
    int32_t sum;
    OK(edb_txn_begin(s, 0));
    OK(edb_table_drop(s, "a"));
    edb_cursor *c;
    RC(edb_cursor_open(&c, s, "a"), EDB_NOTFOUND);
    OK(edb_txn_begin(s, 0));
    OK(create_in(s, "b"));
    OK(insert_in(s, "b", 1, 1, 1));
    OK(edb_txn_rollback(s));
    RC(edb_cursor_open(&c, s, "b"), EDB_NOTFOUND);
    OK(edb_txn_rollback(s));
    cr_assert_eq(walk(s, "a", "by_w", &sum), 50);
    cr_assert_eq(entries("a", NULL), 50);

    OK(edb_table_drop(s, "a"));
    OK(create_in(s, "a"));
    cr_assert_eq(walk(s, "a", NULL, &sum), 0);
    cr_assert_eq(walk(s, "a", "by_v", &sum), 0);
    cr_assert_eq(entries("a", NULL), 0);
    cr_assert_eq(entries("a", "by_v"), 0);
    /* the rows left the shared databases: only b's rollback and a's new
     * (empty) range remain, so edb.records holds no entry at all */
    edb_tree_stat st;
    OK(insert_in(s, "a", 1, 1, -1));
    OK(edb_table_stat(&st, s, "a", NULL));
    cr_assert_eq(st.entries, 1);
    OK(edb_index_drop(s, "a", "by_v"));
    RC(walk(s, "a", "by_v", &sum), -1);
    edb_index_def again = { "by_v", "+v\0", 0 };
    OK(edb_index_create(s, "a", &again));
    cr_assert_eq(walk(s, "a", "by_v", &sum), 1);
    cr_assert_eq(entries("a", "by_v"), 1);
}

/* Exact counts per table and index through inserts, replaces that move index
 * entries, deletes, NULLs an index ignores and rollbacks. */
Test(keyspace, row_counts_are_exact)
{
    OK(create_in(s, "t"));
    OK(create_in(s, "u"));
    for (int i = 0; i < 30; i++)
        OK(insert_in(s, "t", i, i, i % 3 == 0 ? -1 : i));
    OK(insert_in(s, "u", 1, 1, 1));
    RC(insert_in(s, "t", 5, 0, 0), EDB_KEYDUP);
    cr_assert_eq(entries("t", NULL), 30);
    cr_assert_eq(entries("t", "pk"), 30);
    cr_assert_eq(entries("t", "by_v"), 30);
    cr_assert_eq(entries("t", "by_w"), 20);
    cr_assert_eq(entries("u", NULL), 1);

    /* replace: w of id 0 from NULL to 100, of id 1 to NULL */
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    for (int32_t id = 0; id < 2; id++) {
        int32_t w = 100;
        OK(edb_key_make(c, &id, 4, EDB_KEY_NEW));
        OK(edb_cursor_seek(c, EDB_SEEK_EQ));
        OK(edb_update_prepare(c, EDB_PREP_REPLACE));
        OK(edb_column_set(c, 3, id == 0 ? &w : NULL, id == 0 ? 4 : 0, 0));
        OK(edb_update(c));
    }
    cr_assert_eq(entries("t", "by_w"), 20);
    /* deletes, one rolled back */
    OK(edb_txn_begin(s, 0));
    for (int32_t id = 10; id < 20; id++) {
        OK(edb_key_make(c, &id, 4, EDB_KEY_NEW));
        OK(edb_cursor_seek(c, EDB_SEEK_EQ));
        OK(edb_record_delete(c));
    }
    cr_assert_eq(entries("t", NULL), 20);
    OK(edb_txn_begin(s, 0));
    OK(insert_in(s, "t", 100, 1, 1));
    cr_assert_eq(entries("t", NULL), 21);
    OK(edb_txn_rollback(s));
    cr_assert_eq(entries("t", NULL), 20);
    OK(edb_txn_commit(s));
    edb_cursor_close(c);
    int32_t sum;
    cr_assert_eq(entries("t", NULL), 20);
    cr_assert_eq((int)entries("t", "by_v"), walk(s, "t", "by_v", &sum));
    cr_assert_eq((int)entries("t", "by_w"), walk(s, "t", "by_w", &sum));
    cr_assert_eq(entries("u", "by_v"), 1);
}

/* A database of an older format (one LMDB database per table, the catalog
 * "edb:catalog") is refused with EDB_VERSION, the message naming the fix,
 * and left as it was. */
Test(keyspace, older_formats_are_refused)
{
    edb_session_end(s);
    edb_env_close(env);
    s = NULL;
    env = NULL;
    char old[480];
    snprintf(old, sizeof old, "%s/old", dir);
    cr_assert_eq(mkdir(old, 0700), 0);
    for (uint8_t version = 1; version <= 3; version++) {
        MDB_env *m;
        MDB_txn *t;
        MDB_dbi cat, rec;
        cr_assert_eq(mdb_env_create(&m), 0);
        cr_assert_eq(mdb_env_set_maxdbs(m, 4), 0);
        cr_assert_eq(mdb_env_open(m, old, 0, 0600), 0);
        cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
        cr_assert_eq(mdb_dbi_open(t, "edb:catalog", MDB_CREATE, &cat), 0);
        cr_assert_eq(mdb_dbi_open(t, "edb:r0000", MDB_CREATE, &rec), 0);
        uint8_t fmt[12] = { 0x31, 0x42, 0x44, 0x45, version, 0, 0, 0, 128, 0, 0, 0 };
        MDB_val fk = { 7, "\0format" }, fv = { sizeof fmt, fmt };
        cr_assert_eq(mdb_put(t, cat, &fk, &fv, 0), 0);
        cr_assert_eq(mdb_txn_commit(t), 0);
        mdb_env_close(m);
        edb_env_opts o = { .map_size = test_map_size() };
        RC(edb_env_open(&env, old, &o), EDB_VERSION);
        cr_assert(strstr(edb_error_last(), "dbtool upgrade") != NULL, "%s", edb_error_last());
        char want[32];
        snprintf(want, sizeof want, "format %u", version);
        cr_assert(strstr(edb_error_last(), want) != NULL, "%s", edb_error_last());
    }
    char names[8][64];
    snprintf(path, sizeof path, "%s", old);
    cr_assert_eq(named_dbs(names, 8), 2);            /* nothing was added */
    cr_assert_str_eq(names[0], "edb:catalog");
}

static void
count_problem(void *ctx, int code, const char *what)
{
    (void)code;
    if (strstr(what, "the catalog counts") != NULL)
        ++*(int *)ctx;
}

/* check compares the walked rows and entries with the catalog's counts: a
 * count changed behind edb's back is reported. */
Test(keyspace, check_finds_a_wrong_row_count)
{
    OK(create_in(s, "t"));
    for (int i = 0; i < 5; i++)
        OK(insert_in(s, "t", i, i, i));
    uint64_t problems = 1;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
    edb_session_end(s);
    edb_env_close(env);
    s = NULL;
    env = NULL;
    /* the table is the database's first id: "n" 00000001 */
    MDB_env *m;
    MDB_txn *t;
    MDB_dbi cat;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 8), 0);
    cr_assert_eq(mdb_env_open(m, path, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "edb.catalog", 0, &cat), 0);
    uint8_t kb[5] = { 'n', 0, 0, 0, 1 };
    uint64_t n;
    MDB_val k = { 5, kb }, v;
    cr_assert_eq(mdb_get(t, cat, &k, &v), 0);
    memcpy(&n, v.mv_data, 8);
    cr_assert_eq(n, 5);
    n = 6;
    v.mv_data = &n;
    v.mv_size = 8;
    cr_assert_eq(mdb_put(t, cat, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(t), 0);
    mdb_env_close(m);
    edb_env_opts o = { .map_size = test_map_size() };
    OK(edb_env_open(&env, path, &o));
    OK(edb_session_begin(&s, env));
    cr_assert_eq(entries("t", NULL), 6);
    int found = 0;
    OK(edb_env_check(&problems, env, count_problem, &found, NULL));
    cr_assert_eq(problems, 1);
    cr_assert_eq(found, 1);
}

/* The stored count of compact id @kid ("n" key), -1 when absent. */
static int64_t
stored_count(uint32_t kid)
{
    MDB_env *m;
    MDB_txn *t;
    MDB_dbi cat;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 8), 0);
    cr_assert_eq(mdb_env_open(m, path, MDB_RDONLY, 0600), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, MDB_RDONLY, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "edb.catalog", 0, &cat), 0);
    uint8_t kb[5] = { 'n', (uint8_t)(kid >> 24), (uint8_t)(kid >> 16), (uint8_t)(kid >> 8), (uint8_t)kid };
    MDB_val k = { 5, kb }, v;
    int64_t n = -1;
    if (mdb_get(t, cat, &k, &v) == 0)
        memcpy(&n, v.mv_data, 8);
    mdb_txn_abort(t);
    mdb_env_close(m);
    return n;
}

/* Counts noted in outer levels and a drop in a nested one: a committed drop
 * leaves no count behind, a rolled-back one keeps the outer level's rows
 * counted; nested levels commit and roll back their own notes. */
Test(keyspace, counts_across_nested_levels_and_drops)
{
    OK(edb_txn_begin(s, 0));
    OK(create_in(s, "a"));                   /* ids 1 (a), 2 (by_v), 3 (by_w) */
    OK(insert_in(s, "a", 1, 1, 1));
    OK(insert_in(s, "a", 2, 2, -1));
    OK(edb_txn_begin(s, 0));
    OK(insert_in(s, "a", 3, 3, 3));
    OK(edb_txn_begin(s, 0));
    OK(insert_in(s, "a", 4, 4, 4));
    cr_assert_eq(entries("a", NULL), 4);
    OK(edb_txn_rollback(s));                 /* row 4 goes */
    cr_assert_eq(entries("a", NULL), 3);
    OK(edb_txn_commit(s));                   /* row 3 stays, now the outer level's */
    OK(edb_txn_begin(s, 0));
    OK(edb_table_drop(s, "a"));
    OK(edb_txn_rollback(s));                 /* the drop goes */
    cr_assert_eq(entries("a", NULL), 3);
    cr_assert_eq(entries("a", "by_w"), 2);
    OK(edb_txn_commit(s));
    cr_assert_eq(stored_count(1), 3);
    cr_assert_eq(stored_count(3), 2);

    OK(edb_txn_begin(s, 0));
    OK(insert_in(s, "a", 5, 5, 5));
    OK(edb_txn_begin(s, 0));
    OK(edb_table_drop(s, "a"));
    OK(edb_txn_commit(s));
    OK(edb_txn_commit(s));
    cr_assert_eq(stored_count(1), -1, "a dropped table's count is gone");
    cr_assert_eq(stored_count(2), -1);
    cr_assert_eq(stored_count(3), -1);
    uint64_t problems = 1;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
}

/* ---- format 5: id prefixes of 1 to 4 bytes (keyspace.h) ------------------ */

Test(keyspace, short_prefixes_order_and_lengths)
{
    static const struct { uint32_t id; unsigned len; } b[] = {
        { 0, 1 }, { 1, 1 }, { 127, 1 }, { 128, 2 }, { 16383, 2 }, { 16384, 3 },
        { 0x1FFFFF, 3 }, { 0x200000, 4 }, { EDB__KS_VAR_MAX, 4 },
    };
    uint8_t prev[4] = { 0 };
    unsigned prevn = 0;
    for (size_t i = 0; i < sizeof b / sizeof *b; i++) {
        for (uint32_t id = b[i].id > 2 ? b[i].id - 2 : 0; id <= b[i].id + 2 && id <= EDB__KS_VAR_MAX; id++) {
            uint8_t p[4];
            unsigned n = edb__ks_encode(p, id, true);
            uint32_t back;
            unsigned bn;
            cr_assert(edb__ks_decode(p, n, &back, &bn) && back == id && bn == n, "id %u", id);
            if (id == b[i].id)
                cr_assert_eq(n, b[i].len, "id %u: %u bytes", id, n);
            if (prevn > 0 && id > 0) {
                /* order-preserving and prefix-free: the previous id's
                 * prefix is smaller and not a prefix of this one */
                size_t m = n < prevn ? n : prevn;
                int c = memcmp(prev, p, m);
                cr_assert(c < 0, "id %u does not sort after the one before", id);
            }
            memcpy(prev, p, n);
            prevn = n;
        }
        prevn = 0;
    }
    uint8_t p[4];
    cr_assert_eq(edb__ks_encode(p, 0x01020304, false), 4, "format 4: always 4 bytes");
    cr_assert(p[0] == 1 && p[1] == 2 && p[2] == 3 && p[3] == 4);
}

/* Set the catalog's next id to @next. */
static void
set_nextid(uint32_t next)
{
    MDB_txn *txn;
    MDB_dbi cat;
    cr_assert_eq(mdb_txn_begin(env->mdb, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "edb.catalog", 0, &cat), 0);
    uint8_t v[4] = { (uint8_t)next, (uint8_t)(next >> 8), (uint8_t)(next >> 16), (uint8_t)(next >> 24) };
    MDB_val k = { 7, "\0nextid" }, d = { 4, v };
    cr_assert_eq(mdb_put(txn, cat, &k, &d, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
}

/* Tables whose ids straddle each change of prefix length: each one's
 * FIRST, LAST, moves both ways and a non-unique index stay inside its own
 * range, and its record keys carry the short prefix. */
Test(keyspace, ranges_across_prefix_lengths)
{
    cr_assert_eq(edb__cat(env)->format, 5);
    static const uint32_t starts[] = { 125, 16381, 0x1FFFFD };
    unsigned rows = test_scaled_min(20, 5);
    for (size_t b = 0; b < 3; b++) {
        set_nextid(starts[b]);
        char names[3][16];
        for (int t = 0; t < 3; t++) {
            /* each table takes one id (no secondary index): ids start-0..2, the
             * index table then two */
            snprintf(names[t], sizeof names[t], "r%zu_%d", b, t);
            edb_column_def cols[] = { { "id", EDB_COL_INT64, 0, 0, NULL, 0, NULL },
                                      { "v", EDB_COL_INT32, 0, 0, NULL, 0, NULL } };
            edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY, NULL, 0, 0 },
                                    { "by_v", "+v\0", 0, NULL, 0, 0 } };
            edb_table_def def = { names[t], cols, 2, idx, t == 2 ? 2 : 1 };
            OK(edb_table_create(s, &def));
        }
        /* rows: table t holds ids 1000 t + 1 .. 1000 t + rows */
        for (int t = 0; t < 3; t++) {
            edb_cursor *c;
            OK(edb_cursor_open(&c, s, names[t]));
            for (unsigned i = 1; i <= rows; i++) {
                int64_t id = 1000 * t + i;
                int32_t v = (int32_t)(rows - i);
                OK(edb_update_prepare(c, EDB_PREP_INSERT));
                OK(edb_column_set(c, 1, &id, 8, 0));
                OK(edb_column_set(c, 2, &v, 4, 0));
                OK(edb_update(c));
            }
            edb_cursor_close(c);
        }
        for (int t = 0; t < 3; t++) {
            edb_cursor *c;
            OK(edb_cursor_open(&c, s, names[t]));
            for (int x = 0; x < (t == 2 ? 2 : 1); x++) {
                OK(edb_cursor_set_index(c, x ? "by_v" : NULL));
                int64_t id;
                OK(edb_cursor_move(c, EDB_MOVE_FIRST));
                OK(edb_column_get(c, 1, &id, 8, NULL, 0));
                cr_assert_eq(id, x ? 1000 * t + (int64_t)rows : 1000 * t + 1, "table %s first", names[t]);
                OK(edb_cursor_move(c, EDB_MOVE_LAST));
                OK(edb_column_get(c, 1, &id, 8, NULL, 0));
                cr_assert_eq(id, x ? 1000 * t + 1 : 1000 * t + (int64_t)rows, "table %s last", names[t]);
                unsigned n = 0;
                for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT))
                    n++;
                cr_assert_eq(n, rows);
                n = 0;
                for (int rc = edb_cursor_move(c, EDB_MOVE_LAST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_PREV))
                    n++;
                cr_assert_eq(n, rows);
            }
            edb_cursor_close(c);
            /* the stored key: the short prefix + 9 bytes of key */
            MDB_txn *txn;
            edb__table *tt;
            OK(edb__ro_begin(env, &txn));
            OK(edb__table_load(&tt, env, txn, names[t]));
            cr_assert_eq(tt->rec.plen, tt->kid < 128 ? 1 : tt->kid < 16384 ? 2 : tt->kid < 0x200000 ? 3 : 4,
                         "table id %u", tt->kid);
            edb__ro_end(env, txn);
            edb__table_free(tt);
        }
        /* the middle table dropped: its neighbours keep every row */
        OK(edb_table_drop(s, names[1]));
        for (int t = 0; t < 3; t += 2) {
            edb_tree_stat st;
            OK(edb_table_stat(&st, s, names[t], NULL));
            cr_assert_eq(st.entries, rows);
        }
    }
    uint64_t problems = 1;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
    /* format 5 hands out ids below 2^28 */
    set_nextid(EDB__KS_VAR_MAX + 1);
    edb_column_def cols[] = { { "id", EDB_COL_INT64, 0, 0, NULL, 0, NULL } };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY, NULL, 0, 0 } };
    edb_table_def def = { "past", cols, 1, idx, 1 };
    RC(edb_table_create(s, &def), EDB_LIMIT);
}

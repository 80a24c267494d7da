/*
 * The table database pool opened lazily (catalog.h, "Pool"): tables created
 * by another process beyond this env's opened slots, creations rolled back
 * (top level and nested), drop and recreate, the format-1 upgrade and a
 * damaged slot mark.  Threads creating tables at once: tests/engine/threads.c.
 */
#include "config.h"

#include <sys/wait.h>

#include "helpers.h"
#include "catalog.h"
#include "session.h"

static char *dir;
static char path[512];
static edb_env *env;
static edb_session *s;

static void
setup(void)
{
    dir = make_tmpdir();
    snprintf(path, sizeof path, "%s/db", dir);
    edb_env_opts o = { .map_size = test_map_size(), .max_tables = 16 };
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

TestSuite(pool, .init = setup, .fini = teardown, .timeout = 30);

static int
create_in(edb_session *ss, const char *name)
{
    edb_column_def cols[] = { { "id", EDB_COL_INT32, 0, 0, NULL, 0 },
                              { "v", EDB_COL_INT32, 0, 0, NULL, 0 } };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY }, { "by_v", "+v\0", 0 } };
    edb_table_def def = { name, cols, 2, idx, 2 };
    return edb_table_create(ss, &def);
}

static int
insert_in(edb_session *ss, const char *name, int32_t id, int32_t v)
{
    edb_cursor *c;
    int rc = edb_cursor_open(&c, ss, name);
    if (rc != 0)
        return rc;
    if ((rc = edb_update_prepare(c, EDB_PREP_INSERT)) == 0 && (rc = edb_column_set(c, 1, &id, 4, 0)) == 0 &&
        (rc = edb_column_set(c, 2, &v, 4, 0)) == 0)
        rc = edb_update(c);
    edb_cursor_close(c);
    return rc;
}

/* Rows of table @name (through both indexes: the secondary's handle too), -1 on error. */
static int
count_in(edb_session *ss, const char *name, int32_t *sum)
{
    edb_cursor *c;
    if (edb_cursor_open(&c, ss, name) != 0)
        return -1;
    int n = 0, m = 0;
    *sum = 0;
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, 1)) {
        int32_t v;
        if (edb_column_get(c, 2, &v, 4, NULL, 0) != 0)
            return -1;
        *sum += v;
        n++;
    }
    if (edb_cursor_set_index(c, "by_v") != 0)
        return -1;
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, 1))
        m++;
    edb_cursor_close(c);
    return n == m ? n : -1;
}

static uint32_t
slot_of(const char *name)
{
    MDB_txn *txn;
    edb__table *t;
    OK(edb__ro_begin(env, &txn));
    OK(edb__table_load(&t, env, txn, name));
    uint32_t slot = t->slot;
    edb__table_free(t);
    edb__ro_end(env, txn);
    return slot;
}

static bool
pool_idle(void)
{
    pthread_mutex_lock(&env->dbi_lock);
    bool busy = edb__cat(env)->pool_busy;
    pthread_mutex_unlock(&env->dbi_lock);
    return !busy;
}

/* Another process creates tables beyond this env's opened slots while a read
 * transaction here is open: that transaction does not see them, the next one
 * does and can read and write them; the other process sees the rows. */
Test(pool, tables_of_another_process_beyond_the_opened_slots)
{
    OK(create_in(s, "mine"));
    cr_assert_eq(edb__pool_opened(env), 1);
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    int pfd[2], qfd[2];
    cr_assert_eq(pipe(pfd), 0);
    cr_assert_eq(pipe(qfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        edb_env *e2;
        edb_session *s2;
        edb_env_opts o = { .map_size = test_map_size(), .max_tables = 16 };
        if (edb_env_open(&e2, path, &o) != 0 || edb_session_begin(&s2, e2) != 0)
            _exit(2);
        if (edb__pool_opened(e2) != 1)
            _exit(3);
        char name[16];
        for (int i = 0; i < 5; i++) {
            snprintf(name, sizeof name, "other%d", i);
            if (create_in(s2, name) != 0 || insert_in(s2, name, 1, 10 + i) != 0)
                _exit(4);
        }
        if (edb__pool_opened(e2) != 6 || write(pfd[1], "x", 1) != 1)
            _exit(5);
        char ch;
        if (read(qfd[0], &ch, 1) != 1)      /* the parent wrote a row into other4 */
            _exit(6);
        int32_t sum;
        int n = count_in(s2, "other4", &sum);
        edb_env_close(e2);
        _exit(n == 2 && sum == 14 + 40 ? 0 : 7);
    }
    char ch;
    cr_assert_eq(read(pfd[0], &ch, 1), 1);
    edb_cursor *c;
    RC(edb_cursor_open(&c, s, "other4"), EDB_NOTFOUND);     /* the old snapshot */
    cr_assert_eq(edb__pool_opened(env), 1);
    OK(edb_txn_commit(s));
    /* a new read transaction (implicit) opens them */
    int32_t sum;
    cr_assert_eq(count_in(s, "other0", &sum), 1);
    cr_assert_eq(sum, 10);
    cr_assert_eq(edb__pool_opened(env), 6);
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "other%d", i);
        cr_assert_eq(slot_of(name), (uint32_t)i + 1);
    }
    OK(edb_txn_begin(s, 0));
    OK(insert_in(s, "other4", 2, 40));
    OK(edb_txn_commit(s));
    cr_assert_eq(count_in(s, "other4", &sum), 2);
    cr_assert_eq(sum, 54);
    cr_assert_eq(write(qfd[1], "y", 1), 1);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

/* The first begin of a write transaction after another process's creation
 * opens the handles too (the write path of the check). */
Test(pool, write_transaction_after_another_process_created_tables)
{
    pid_t pid = fork();
    if (pid == 0) {
        edb_env *e2;
        edb_session *s2;
        edb_env_opts o = { .map_size = test_map_size(), .max_tables = 16 };
        if (edb_env_open(&e2, path, &o) != 0 || edb_session_begin(&s2, e2) != 0)
            _exit(2);
        int rc = create_in(s2, "a") || create_in(s2, "b") || insert_in(s2, "b", 1, 1);
        edb_env_close(e2);
        _exit(rc == 0 ? 0 : 3);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    cr_assert_eq(edb__pool_opened(env), 0);
    OK(edb_txn_begin(s, 0));
    cr_assert_eq(edb__pool_opened(env), 2);
    OK(insert_in(s, "b", 2, 2));
    OK(edb_txn_commit(s));
    int32_t sum;
    cr_assert_eq(count_in(s, "b", &sum), 2);
}

/* A creation rolled back leaves the counts and the pool as they were, and its
 * slot is taken again; meanwhile another session of the same thread reads
 * (no wait for the pool the write transaction holds). */
Test(pool, creation_rolled_back)
{
    edb_session *r;
    OK(edb_session_begin(&r, env));
    OK(edb_txn_begin(s, 0));
    OK(create_in(s, "gone"));
    OK(insert_in(s, "gone", 1, 1));
    cr_assert(!pool_idle(), "the creating transaction holds the pool");
    cr_assert_eq(edb__pool_opened(env), 0);
    edb_cursor *c;
    RC(edb_cursor_open(&c, r, "gone"), EDB_NOTFOUND);     /* not committed */
    OK(edb_txn_rollback(s));
    cr_assert(pool_idle());
    cr_assert_eq(edb__pool_opened(env), 0);
    cr_assert_eq(edb__pool_rec(env, 0), (MDB_dbi)-1);
    RC(edb_cursor_open(&c, s, "gone"), EDB_NOTFOUND);

    /* an implicit creation that fails (duplicate) after a rollback: nothing held */
    OK(create_in(s, "kept"));
    RC(create_in(s, "kept"), EDB_EXISTS);
    cr_assert(pool_idle());
    cr_assert_eq(slot_of("kept"), 0);
    cr_assert_eq(edb__pool_opened(env), 1);

    /* nested: a creation in a rolled-back child, then another in the parent */
    OK(edb_txn_begin(s, 0));
    OK(edb_txn_begin(s, 0));
    OK(create_in(s, "child"));
    OK(insert_in(s, "child", 1, 1));
    OK(edb_txn_rollback(s));
    RC(edb_cursor_open(&c, s, "child"), EDB_NOTFOUND);
    OK(create_in(s, "parent"));
    OK(insert_in(s, "parent", 1, 5));
    OK(edb_txn_begin(s, 0));
    OK(create_in(s, "grandchild"));
    OK(insert_in(s, "grandchild", 1, 7));
    OK(edb_txn_commit(s));
    OK(edb_txn_commit(s));
    cr_assert(pool_idle());
    cr_assert_eq(edb__pool_opened(env), 3);
    cr_assert_eq(slot_of("parent"), 1);
    cr_assert_eq(slot_of("grandchild"), 2);
    int32_t sum;
    cr_assert_eq(count_in(r, "parent", &sum), 1);
    cr_assert_eq(sum, 5);
    cr_assert_eq(count_in(r, "grandchild", &sum), 1);
    cr_assert_eq(sum, 7);
    RC(edb_cursor_open(&c, r, "child"), EDB_NOTFOUND);
    edb_session_end(r);

    /* what another env sees after reopening: the same tables, 3 slots open */
    edb_session_end(s);
    edb_env_close(env);
    edb_env_opts o = { .map_size = test_map_size(), .max_tables = 16 };
    OK(edb_env_open(&env, path, &o));
    OK(edb_session_begin(&s, env));
    cr_assert_eq(edb__pool_opened(env), 3);
    cr_assert_eq(count_in(s, "grandchild", &sum), 1);
}

/* A session ended with its creating transaction open gives the pool back. */
Test(pool, session_end_gives_the_pool_back)
{
    edb_session *w;
    OK(edb_session_begin(&w, env));
    OK(edb_txn_begin(w, 0));
    OK(create_in(w, "x"));
    cr_assert(!pool_idle());
    edb_session_end(w);
    cr_assert(pool_idle());
    OK(create_in(s, "y"));
    cr_assert_eq(slot_of("y"), 0);
}

/* Dropping and creating again reuses the lowest slot; the mark never shrinks. */
Test(pool, drop_and_recreate)
{
    OK(create_in(s, "t0"));
    OK(create_in(s, "t1"));
    OK(create_in(s, "t2"));
    OK(insert_in(s, "t1", 1, 1));
    OK(edb_table_drop(s, "t1"));
    OK(edb_table_drop(s, "t2"));
    cr_assert_eq(edb__pool_opened(env), 3);
    OK(create_in(s, "n1"));
    cr_assert_eq(slot_of("n1"), 1);
    int32_t sum;
    cr_assert_eq(count_in(s, "n1", &sum), 0);   /* the old rows are gone */
    OK(insert_in(s, "n1", 1, 3));
    OK(create_in(s, "t1"));
    cr_assert_eq(slot_of("t1"), 2);
    cr_assert_eq(count_in(s, "t1", &sum), 0);
    cr_assert_eq(edb__pool_opened(env), 3);
    OK(create_in(s, "n3"));
    cr_assert_eq(slot_of("n3"), 3);
    cr_assert_eq(edb__pool_opened(env), 4);
}

static MDB_env *
raw_open(void)
{
    MDB_env *m;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 16 * EDB__DBS_PER_TABLE + 2), 0);
    cr_assert_eq(mdb_env_open(m, path, 0, 0600), 0);
    return m;
}

/* A format-1 database (every slot's databases created, no mark): read-only
 * opens every slot; the first writable open writes the mark and the current format (its
 * indexes have no descending segment, so its keys are format 3 bytes). */
Test(pool, format1_is_upgraded)
{
    OK(create_in(s, "a"));
    OK(create_in(s, "b"));
    OK(insert_in(s, "b", 1, 9));
    OK(edb_table_drop(s, "a"));
    edb_session_end(s);
    edb_env_close(env);
    s = NULL;
    env = NULL;
    /* make it format 1 */
    MDB_env *m = raw_open();
    MDB_txn *t;
    MDB_dbi cat, dbi;
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "edb:catalog", 0, &cat), 0);
    MDB_val fk = { 7, "\0format" }, fv, mk = { 6, "\0slots" };
    cr_assert_eq(mdb_get(t, cat, &fk, &fv), 0);
    uint8_t rec[12];
    memcpy(rec, fv.mv_data, 12);
    cr_assert_eq(rec[4], EDB__FORMAT_VERSION);
    rec[4] = 1;
    fv.mv_data = rec;
    cr_assert_eq(mdb_put(t, cat, &fk, &fv, 0), 0);
    cr_assert_eq(mdb_del(t, cat, &mk, NULL), 0);
    for (unsigned i = 0; i < 16 * EDB__DBS_PER_TABLE; i++) {
        char name[32];
        if (i % EDB__DBS_PER_TABLE == 0)
            snprintf(name, sizeof name, "edb:r%04u", i / EDB__DBS_PER_TABLE);
        else
            snprintf(name, sizeof name, "edb:i%04u.%02u", i / EDB__DBS_PER_TABLE, i % EDB__DBS_PER_TABLE - 1);
        cr_assert_eq(mdb_dbi_open(t, name, MDB_CREATE, &dbi), 0);
    }
    cr_assert_eq(mdb_txn_commit(t), 0);
    mdb_env_close(m);

    edb_env_opts ro = { .map_size = test_map_size(), .max_tables = 16, .flags = EDB_ENV_READONLY };
    OK(edb_env_open(&env, path, &ro));
    OK(edb_session_begin(&s, env));
    cr_assert_eq(edb__pool_opened(env), 16);
    int32_t sum;
    cr_assert_eq(count_in(s, "b", &sum), 1);
    cr_assert_eq(sum, 9);
    edb_session_end(s);
    edb_env_close(env);

    edb_env_opts o = { .map_size = test_map_size(), .max_tables = 16 };
    OK(edb_env_open(&env, path, &o));
    OK(edb_session_begin(&s, env));
    cr_assert_eq(edb__pool_opened(env), 2);    /* "b" is in slot 1 */
    cr_assert_eq(count_in(s, "b", &sum), 1);
    OK(create_in(s, "c"));
    cr_assert_eq(slot_of("c"), 0);
    OK(create_in(s, "d"));
    cr_assert_eq(slot_of("d"), 2);
    cr_assert_eq(edb__pool_opened(env), 3);
    edb_session_end(s);
    edb_env_close(env);

    m = raw_open();
    cr_assert_eq(mdb_txn_begin(m, NULL, MDB_RDONLY, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "edb:catalog", 0, &cat), 0);
    cr_assert_eq(mdb_get(t, cat, &fk, &fv), 0);
    cr_assert_eq(((uint8_t *)fv.mv_data)[4], EDB__FORMAT_VERSION);
    MDB_val mv;
    cr_assert_eq(mdb_get(t, cat, &mk, &mv), 0);
    cr_assert_eq(mv.mv_size, 4);
    cr_assert_eq(((uint8_t *)mv.mv_data)[0], 3);
    mdb_txn_abort(t);
    mdb_env_close(m);
    OK(edb_env_open(&env, path, &o));
    OK(edb_session_begin(&s, env));
}

/* A mark beyond the table count is damage, refused at open. */
Test(pool, damaged_mark_is_refused)
{
    edb_session_end(s);
    edb_env_close(env);
    s = NULL;
    env = NULL;
    MDB_env *m = raw_open();
    MDB_txn *t;
    MDB_dbi cat;
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "edb:catalog", 0, &cat), 0);
    uint8_t b[4] = { 17, 0, 0, 0 };
    MDB_val mk = { 6, "\0slots" }, mv = { 4, b };
    cr_assert_eq(mdb_put(t, cat, &mk, &mv, 0), 0);
    cr_assert_eq(mdb_txn_commit(t), 0);
    mdb_env_close(m);
    edb_env_opts o = { .map_size = test_map_size(), .max_tables = 16 };
    RC(edb_env_open(&env, path, &o), EDB_CORRUPT);
    cr_assert_null(env);
}

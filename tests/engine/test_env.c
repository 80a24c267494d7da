/* Environments, sessions and transactions. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <lmdb.h>

#include "helpers.h"

static char *dir;
static void setup(void) { dir = make_tmpdir(); }
static void teardown(void) { rm_tree(dir); free(dir); LEAK_CHECK(); }

TestSuite(env, .init = setup, .fini = teardown, .timeout = 30);

Test(env, open_creates_private_dir_and_files)
{
    edb_env *env = open_env(dir, 0);
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/db", dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    snprintf(path, sizeof path, "%s/db/data.mdb", dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s/db", dir);
    cr_assert_str_eq(edb_env_path(env), path);
    edb_env_info info;
    OK(edb_env_info_get(&info, env));
    cr_assert_gt(info.page_size, 0);
    cr_assert_eq(info.map_size, test_map_size() ? test_map_size() : 64ull << 30);
    cr_assert_eq(info.max_readers, 126);
    edb_env_close(env);
    /* reopen works and keeps its keyspace */
    env = open_env(dir, 0);
    edb_env_close(env);
}

Test(env, bad_arguments)
{
    edb_env *env = (edb_env *)1;
    RC(edb_env_open(NULL, dir, NULL), EDB_INVAL);
    RC(edb_env_open(&env, NULL, NULL), EDB_INVAL);
    cr_assert_null(env);
    RC(edb_env_open(&env, "", NULL), EDB_INVAL);
    edb_env_opts bad = { .flags = 0x100 };
    RC(edb_env_open(&env, dir, &bad), EDB_INVAL);
    cr_assert(strstr(edb_error_last(), "EDB_INVAL: ") == edb_error_last());
    RC(edb_env_info_get(NULL, NULL), EDB_INVAL);
    cr_assert_null(edb_env_path(NULL));
    edb_env_close(NULL);
    RC(edb_session_begin(NULL, NULL), EDB_INVAL);
    edb_session *s = (edb_session *)1;
    RC(edb_session_begin(&s, NULL), EDB_INVAL);
    cr_assert_null(s);
    edb_session_end(NULL);
    RC(edb_txn_begin(NULL, 0), EDB_INVAL);
    RC(edb_txn_commit(NULL), EDB_INVAL);
    RC(edb_txn_rollback(NULL), EDB_INVAL);
    cr_assert_eq(edb_txn_depth(NULL), 0);
    char file[512];
    snprintf(file, sizeof file, "%s/plain", dir);
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    close(fd);
    RC(edb_env_open(&env, file, NULL), EDB_INVAL);
}

Test(env, readonly_open)
{
    char path[512];
    snprintf(path, sizeof path, "%s/absent", dir);
    edb_env *env = NULL;
    edb_env_opts ro = { .max_tables = 8, .flags = EDB_ENV_READONLY };
    RC(edb_env_open(&env, path, &ro), EDB_NOTFOUND);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "read-only open created the directory");
    mkdir(path, 0700);
    RC(edb_env_open(&env, path, &ro), EDB_NOTFOUND);

    env = open_env(dir, 0);
    edb_env_close(env);
    env = open_env(dir, EDB_ENV_READONLY);
    edb_session *s;
    OK(edb_session_begin(&s, env));
    RC(edb_txn_begin(s, 0), EDB_READONLY);
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    OK(edb_txn_commit(s));
    edb_env_info info;
    OK(edb_env_info_get(&info, env));
    cr_assert_eq(info.flags, EDB_ENV_READONLY);
    edb_session_end(s);
    edb_env_close(env);
}

Test(env, table_count_fixed_at_creation)
{
    edb_env *env = open_env(dir, 0);    /* 8 tables */
    edb_env_close(env);
    char path[512];
    snprintf(path, sizeof path, "%s/db", dir);
    edb_env_opts o = { .max_tables = 20, .map_size = test_map_size() };
    OK(edb_env_open(&env, path, &o));
    edb_env_info info;
    OK(edb_env_info_get(&info, env));
    edb_env_close(env);
}

/* A plain LMDB database is refused, as is a newer format. */
Test(env, refuses_foreign_and_newer)
{
    char path[512];
    snprintf(path, sizeof path, "%s/lmdb", dir);
    mkdir(path, 0700);
    MDB_env *m;
    MDB_txn *t;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_open(m, path, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, NULL, 0, &dbi), 0);
    MDB_val k = { 3, "abc" }, v = { 3, "xyz" };
    cr_assert_eq(mdb_put(t, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(t), 0);
    mdb_env_close(m);
    edb_env *env = NULL;
    /* the default map, except under valgrind (see test_map_size) */
    edb_env_opts vo = { .map_size = test_map_size() };
    RC(edb_env_open(&env, path, &vo), EDB_VERSION);
    cr_assert_null(env);

    /* garbage data.mdb */
    snprintf(path, sizeof path, "%s/junk", dir);
    mkdir(path, 0700);
    char f[600];
    snprintf(f, sizeof f, "%s/data.mdb", path);
    FILE *fp = fopen(f, "w");
    for (int i = 0; i < 20000; i++)
        fputc(i * 7, fp);
    fclose(fp);
    RC(edb_env_open(&env, path, &vo), EDB_VERSION);

    /* newer format: bump the version in the catalog record */
    env = open_env(dir, 0);
    edb_env_close(env);
    snprintf(path, sizeof path, "%s/db", dir);
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 4), 0);
    cr_assert_eq(mdb_env_open(m, path, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "edb.catalog", 0, &dbi), 0);
    MDB_val fk = { 7, "\0format" }, fv;
    cr_assert_eq(mdb_get(t, dbi, &fk, &fv), 0);
    uint8_t rec[12];
    memcpy(rec, fv.mv_data, 12);
    rec[4] = 99;
    fv.mv_data = rec;
    cr_assert_eq(mdb_put(t, dbi, &fk, &fv, 0), 0);
    cr_assert_eq(mdb_txn_commit(t), 0);
    mdb_env_close(m);
    RC(edb_env_open(&env, path, &vo), EDB_VERSION);
    cr_assert(strstr(edb_error_last(), "newer") != NULL, "%s", edb_error_last());
}

Test(env, close_ends_open_sessions)
{
    edb_env *env = open_env(dir, 0);
    edb_session *a, *b;
    OK(edb_session_begin(&a, env));
    OK(edb_session_begin(&b, env));
    OK(edb_txn_begin(a, 0));
    OK(edb_txn_begin(b, EDB_TXN_READONLY));
    edb_env_close(env);      /* must not hang; the sessions are zombies now */
    RC(edb_txn_commit(a), EDB_CLOSED);
    edb_session_end(a);      /* their closers free them (ASan/LSan check the rest) */
    edb_session_end(b);
}

static int hook_calls;
static void hook(edb_env *env) { (void)env; hook_calls++; }

Test(env, close_calls_backup_hook)
{
    edb_env *env = open_env(dir, 0);
    hook_calls = 0;
    extern void edb__test_set_hook(edb_env *, void (*)(edb_env *));
    edb__test_set_hook(env, hook);
    edb_env_close(env);
    cr_assert_eq(hook_calls, 1);
}

Test(env, compact_copies)
{
    edb_env *env = open_env(dir, 0);
    char out[512];
    snprintf(out, sizeof out, "%s/copy", dir);
    OK(edb_env_compact(env, out));
    RC(edb_env_compact(env, out), EDB_EXISTS);
    RC(edb_env_compact(NULL, out), EDB_INVAL);
    edb_env_close(env);
    edb_env_opts o = { .max_tables = 8, .map_size = test_map_size() };
    OK(edb_env_open(&env, out, &o));
    edb_env_close(env);
}

/* ------------------------------------------------------------ transactions */

TestSuite(txn, .init = setup, .fini = teardown, .timeout = 30);

Test(txn, nesting_to_seven_levels)
{
    edb_env *env = open_env(dir, 0);
    edb_session *s;
    OK(edb_session_begin(&s, env));
    RC(edb_txn_commit(s), EDB_NOTXN);
    RC(edb_txn_rollback(s), EDB_NOTXN);
    for (int i = 1; i <= EDB_TXN_MAX_DEPTH; i++) {
        OK(edb_txn_begin(s, 0));
        cr_assert_eq(edb_txn_depth(s), i);
    }
    RC(edb_txn_begin(s, 0), EDB_TXNDEPTH);
    cr_assert_eq(edb_txn_depth(s), 7);
    for (int i = EDB_TXN_MAX_DEPTH; i > 0; i--)
        OK(i % 2 ? edb_txn_commit(s) : edb_txn_rollback(s));
    cr_assert_eq(edb_txn_depth(s), 0);
    /* read-only nests too, and refuses a write level flag mix */
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    for (int i = 2; i <= EDB_TXN_MAX_DEPTH; i++)
        OK(edb_txn_begin(s, 0));
    RC(edb_txn_begin(s, 0), EDB_TXNDEPTH);
    while (edb_txn_depth(s) > 0)
        OK(edb_txn_rollback(s));
    OK(edb_txn_begin(s, 0));
    RC(edb_txn_begin(s, EDB_TXN_READONLY), EDB_INVAL);
    RC(edb_txn_begin(s, 0x80), EDB_INVAL);
    OK(edb_txn_commit(s));
    edb_session_end(s);
    edb_env_close(env);
}

Test(txn, busy_instead_of_self_deadlock)
{
    edb_env *env = open_env(dir, 0);
    edb_session *a, *b;
    OK(edb_session_begin(&a, env));
    OK(edb_session_begin(&b, env));
    OK(edb_txn_begin(a, 0));
    RC(edb_txn_begin(b, 0), EDB_BUSY);
    OK(edb_txn_begin(b, EDB_TXN_READONLY));   /* reads never block */
    OK(edb_txn_commit(b));
    OK(edb_txn_commit(a));
    OK(edb_txn_begin(b, 0));
    OK(edb_txn_commit(b));
    edb_session_end(a);
    edb_session_end(b);
    edb_env_close(env);
}

/* stage: 1 once the session is begun, 2 once edb_txn_begin returned (atomic:
 * the main thread polls it while the writer runs) */
struct writer_arg { edb_env *env; int rc; atomic_int stage; };

static void *
writer_thread(void *p)
{
    struct writer_arg *w = p;
    edb_session *s;
    int rc = edb_session_begin(&s, w->env);
    if (rc == 0) {
        atomic_store(&w->stage, 1);
        rc = edb_txn_begin(s, 0);        /* waits for the main thread's writer */
        atomic_store(&w->stage, 2);
        if (rc == 0)
            rc = edb_txn_commit(s);
        edb_session_end(s);
    }
    w->rc = rc;                          /* read by the main thread after the join */
    return NULL;
}

Test(txn, writers_in_two_threads_serialize)
{
    edb_env *env = open_env(dir, 0);
    edb_session *a;
    OK(edb_session_begin(&a, env));
    OK(edb_txn_begin(a, 0));
    struct writer_arg w = { env, -100, 0 };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, writer_thread, &w), 0);
    for (int i = 0; i < 10000 && atomic_load(&w.stage) == 0; i++)
        usleep(1000);
    cr_assert_eq(atomic_load(&w.stage), 1, "the second session did not begin");
    usleep(50000);
    cr_assert_eq(atomic_load(&w.stage), 1, "a second write transaction began while one was open");
    OK(edb_txn_commit(a));
    pthread_join(th, NULL);
    cr_assert_eq(atomic_load(&w.stage), 2);
    OK(w.rc);
    edb_session_end(a);
    edb_env_close(env);
}

Test(env, nosync_commits_survive_reopen)
{
    edb_env *env = open_env(dir, EDB_ENV_NOSYNC);
    edb_env_info info;
    OK(edb_env_info_get(&info, env));
    cr_assert_eq(info.flags, EDB_ENV_NOSYNC);
    edb_session *s;
    OK(edb_session_begin(&s, env));
    edb_column_def cols[] = { { "id", EDB_COL_INT32, 0, 0, NULL, 0 } };
    edb_table_def def = { "t", cols, 1, NULL, 0 };
    OK(edb_table_create(s, &def));
    uint64_t txn_before = info.txn_id;
    OK(edb_env_info_get(&info, env));
    cr_assert_gt(info.txn_id, txn_before);
    edb_session_end(s);
    edb_env_close(env);
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    edb_cursor_close(c);
    edb_session_end(s);
    edb_env_close(env);
}

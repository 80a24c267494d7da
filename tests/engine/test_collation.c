/* test_collation.c: collated TEXT index keys (engine/collate.c, issue 14):
 * case- and accent-insensitive order, uniqueness and seeks under ICU
 * collations, the recorded collator version, check's report and the rebuild. */
#include "config.h"

#include <lmdb.h>
#include <pthread.h>
#include <sys/wait.h>

#include "helpers.h"

static char *dir;
static edb_env *env;
static edb_session *s;

static void
setup(void)
{
    dir = make_tmpdir();
    env = open_env(dir, 0);
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

TestSuite(collation, .init = setup, .fini = teardown, .timeout = 60);

/* A table "t" (id int32 primary, name TEXT under @coll) with index "by_name"
 * ("+name" or "-name") of @flags. */
static void
make_table(const char *coll, const char *key, unsigned flags)
{
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "name", .type = EDB_COL_TEXT, .collation = coll },
    };
    edb_index_def idx[] = {
        { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY },
        { .name = "by_name", .key = key, .flags = flags },
    };
    edb_table_def t = { .name = "t", .columns = cols, .ncolumns = 2, .indexes = idx, .nindexes = 2 };
    OK(edb_table_create(s, &t));
}

static int
insert(edb_cursor *c, int32_t id, const char *name)
{
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, sizeof id, 0));
    if (name != NULL)
        OK(edb_column_set(c, 2, name, strlen(name), 0));
    int rc = edb_update(c);
    if (rc < 0)
        edb_update_cancel(c);
    return rc;
}

/* The names of the index's records in index order, joined by ','. */
static void
walk(edb_cursor *c, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    OK(edb_cursor_set_index(c, "by_name"));
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
        char v[64];
        size_t n = 0;
        int g = edb_column_get(c, 2, v, sizeof v - 1, &n, 0);
        cr_assert(g == 0 || g == EDB_WRN_NULL);
        v[g == 0 ? n : 0] = '\0';
        o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? "," : "", g == 0 ? v : "NULL");
    }
}

Test(collation, binary_is_todays_byte_order)
{
    make_table(NULL, "+name\0", 0);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    const char *names[] = { "b", "Z", "a", "B" };
    for (int i = 0; i < 4; i++)
        OK(insert(c, i, names[i]));
    char got[128];
    walk(c, got, sizeof got);
    cr_assert_str_eq(got, "B,Z,a,b");
    edb_cursor_close(c);
}

Test(collation, level2_orders_without_case_and_keeps_values)
{
    make_table("en-u-ks-level2", "+name\0", 0);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    const char *names[] = { "b", "Z", "a", "C" };
    for (int i = 0; i < 4; i++)
        OK(insert(c, i, names[i]));
    char got[128];
    walk(c, got, sizeof got);
    /* stored values are unchanged; only the order follows the collation */
    cr_assert_str_eq(got, "a,b,C,Z");
    edb_cursor_close(c);
}

Test(collation, unique_level2_refuses_a_case_variant)
{
    make_table("en-u-ks-level2", "+name\0", EDB_IDX_UNIQUE);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(insert(c, 1, "B"));
    RC(insert(c, 2, "b"), EDB_KEYDUP);
    cr_assert(strstr(edb_error_last(), "by_name") != NULL, "%s", edb_error_last());
    /* an accent is a level 2 difference: allowed */
    OK(insert(c, 3, "\xc3\xa9"));   /* é */
    OK(insert(c, 4, "e"));
    /* nothing of the refused row was written */
    int32_t id = 2;
    OK(edb_cursor_set_index(c, NULL));
    OK(edb_key_make(c, &id, sizeof id, EDB_KEY_NEW));
    RC(edb_cursor_seek(c, EDB_SEEK_EQ), EDB_NOTFOUND);
    edb_cursor_close(c);
}

Test(collation, level1_ignores_accents_too)
{
    make_table("und-u-ks-level1", "+name\0", EDB_IDX_UNIQUE);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(insert(c, 1, "resume"));
    RC(insert(c, 2, "R\xc3\xa9sum\xc3\xa9"), EDB_KEYDUP);    /* Résumé */
    OK(insert(c, 3, "resumes"));
    edb_cursor_close(c);
}

Test(collation, seek_with_a_differently_cased_key)
{
    make_table("en-u-ks-level2", "+name\0", 0);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(insert(c, 1, "apple"));
    OK(insert(c, 2, "Banana"));
    OK(insert(c, 3, "cherry"));
    OK(edb_cursor_set_index(c, "by_name"));
    OK(edb_key_make(c, "BANANA", 6, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    int32_t id = 0;
    size_t n;
    OK(edb_column_get(c, 1, &id, sizeof id, &n, 0));
    cr_assert_eq(id, 2);
    /* GE on "B" lands on Banana, not after every capital as in byte order */
    OK(edb_key_make(c, "b", 1, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_GE));
    OK(edb_column_get(c, 1, &id, sizeof id, &n, 0));
    cr_assert_eq(id, 2);
    edb_cursor_close(c);
}

Test(collation, descending_collated_segment)
{
    make_table("en-u-ks-level2", "-name\0", 0);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    const char *names[] = { "b", "Z", "a", "C" };
    for (int i = 0; i < 4; i++)
        OK(insert(c, i, names[i]));
    OK(insert(c, 9, NULL));
    char got[128];
    walk(c, got, sizeof got);
    cr_assert_str_eq(got, "Z,C,b,a,NULL");
    OK(edb_cursor_set_index(c, "by_name"));
    OK(edb_key_make(c, "c", 1, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    int32_t id = 0;
    size_t n;
    OK(edb_column_get(c, 1, &id, sizeof id, &n, 0));
    cr_assert_eq(id, 3);
    edb_cursor_close(c);
}

Test(collation, invalid_collation_refused_at_create)
{
    const char *bad[] = { "en_US@@", "xx-u-ks-level2-", "en-u-ks-levelX", "qq", "" "not a tag" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        edb_column_def cols[] = { { .name = "name", .type = EDB_COL_TEXT, .collation = bad[i] } };
        edb_table_def t = { .name = "t", .columns = cols, .ncolumns = 1 };
        RC(edb_table_create(s, &t), EDB_INVAL);
        cr_assert(strstr(edb_error_last(), "collation") != NULL, "%s: %s", bad[i], edb_error_last());
    }
    /* a collation on a non-text column */
    edb_column_def cols[] = { { .name = "n", .type = EDB_COL_INT32, .collation = "en" } };
    edb_table_def t = { .name = "t", .columns = cols, .ncolumns = 1 };
    RC(edb_table_create(s, &t), EDB_INVAL);
    /* nothing was created */
    edb_cursor *c;
    RC(edb_cursor_open(&c, s, "t"), EDB_NOTFOUND);
}

Test(collation, describe_reports_the_collation)
{
    make_table("en-u-ks-level2", "+name\0", 0);
    edb_table_def *d;
    OK(edb_table_describe(&d, s, "t"));
    cr_assert_null(d->columns[0].collation);
    cr_assert_str_eq(d->columns[1].collation, "en-u-ks-level2");
    edb_free(d);
}

Test(collation, too_long_sort_key_is_toobig_not_truncated)
{
    make_table("en", "+name\0", EDB_IDX_UNIQUE);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    char big[301];
    for (int i = 0; i < 300; i++)
        big[i] = i % 2 ? 'X' : 'x';
    big[300] = '\0';
    /* 300 bytes fit binary (497 max), not as a level 3 sort key (about 2 bytes
     * a character when the case alternates) */
    RC(insert(c, 1, big), EDB_TOOBIG);
    OK(insert(c, 2, "short"));
    edb_cursor_close(c);
}

Test(collation, index_created_later_and_dropped)
{
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "name", .type = EDB_COL_TEXT, .collation = "en-u-ks-level2" },
    };
    edb_index_def idx[] = { { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY } };
    edb_table_def t = { .name = "t", .columns = cols, .ncolumns = 2, .indexes = idx, .nindexes = 1 };
    OK(edb_table_create(s, &t));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(insert(c, 1, "B"));
    OK(insert(c, 2, "b"));
    edb_index_def u = { .name = "by_name", .key = "+name\0", .flags = EDB_IDX_UNIQUE };
    RC(edb_index_create(s, "t", &u), EDB_KEYDUP);
    u.flags = 0;
    OK(edb_index_create(s, "t", &u));
    uint64_t n = 0;
    OK(edb_cursor_set_index(c, "by_name"));
    OK(edb_key_make(c, "B", 1, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    OK(edb_key_make(c, "b", 1, EDB_KEY_NEW));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER | EDB_RANGE_INCLUSIVE));
    for (int rc = 0; rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT))
        n++;
    cr_assert_eq(n, 2, "both case variants under one key");
    /* the index created later records this ICU's collator version */
    uint64_t found = 1;
    OK(edb_env_check(&found, env, NULL, NULL, NULL));
    cr_assert_eq(found, 0, "check of an index created on a collated column");
    OK(edb_index_drop(s, "t", "by_name"));
    RC(edb_cursor_move(c, EDB_MOVE_FIRST), EDB_DROPPED);
    OK(edb_cursor_set_index(c, NULL));
    OK(insert(c, 3, "c"));
    edb_cursor_close(c);
    uint64_t problems = 1;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
}

/* Forge the collator version recorded for segment 0 of index 1 of table
 * "t" (catalog.c's extension record, tag 2), as if another ICU made it:
 * closes and reopens the env. */
static void
forge_collver(void)
{
    edb_session_end(s);
    edb_env_close(env);
    char path[512];
    snprintf(path, sizeof path, "%s/db", dir);
    MDB_env *m;
    MDB_txn *t;
    MDB_dbi cat;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 8), 0);
    cr_assert_eq(mdb_env_open(m, path, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "edb.catalog", 0, &cat), 0);
    MDB_val k = { 2, "tt" }, v;
    cr_assert_eq(mdb_get(t, cat, &k, &v), 0);
    uint8_t blob[4096];
    cr_assert(v.mv_size <= sizeof blob);
    memcpy(blob, v.mv_data, v.mv_size);
    cr_assert_eq(blob[0], 4, "a blob with extension records");
    static const uint8_t rec[] = { 2, 1, 0, 0, 0, 5, 0, 0 };
    bool done = false;
    for (size_t i = 0; i + sizeof rec + 4 <= v.mv_size && !done; i++)
        if (memcmp(blob + i, rec, sizeof rec) == 0) {
            blob[i + sizeof rec] ^= 0x7F;
            done = true;
        }
    cr_assert(done, "the version record is in the blob");
    v.mv_data = blob;
    cr_assert_eq(mdb_put(t, cat, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(t), 0);
    mdb_env_close(m);
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
}

static void
count_problem(void *ctx, int code, const char *what)
{
    (void)code;
    if (strstr(what, "ICU") != NULL)
        ++*(int *)ctx;
}

Test(collation, check_reports_another_icu_version_and_rebuild_fixes)
{
    make_table("en-u-ks-level2", "+name\0", 0);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(insert(c, 1, "x"));
    edb_cursor_close(c);
    uint64_t problems = 1;
    int icu = 0;
    OK(edb_env_check(&problems, env, count_problem, &icu, NULL));
    cr_assert_eq(problems, 0);
    /* forge the recorded version, as a database made with another ICU */
    forge_collver();
    OK(edb_env_check(&problems, env, count_problem, &icu, NULL));
    cr_assert_eq(icu, 1, "one ICU version report");
    cr_assert_eq(problems, 1);
    OK(edb_index_rebuild(s, "t", "by_name"));
    icu = 0;
    OK(edb_env_check(&problems, env, count_problem, &icu, NULL));
    cr_assert_eq(problems, 0);
    cr_assert_eq(icu, 0);
    RC(edb_index_rebuild(s, "t", "pk"), EDB_INVAL);
    RC(edb_index_rebuild(s, "t", "nope"), EDB_NOTFOUND);
}

Test(collation, another_process_sees_collated_index)
{
    make_table("en-u-ks-level2", "+name\0", EDB_IDX_UNIQUE);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(insert(c, 1, "Hello"));
    edb_cursor_close(c);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char path[512];
        snprintf(path, sizeof path, "%s/db", dir);
        edb_env_opts o = { .max_tables = 8, .map_size = test_map_size() };
        edb_env *e2;
        edb_session *s2;
        edb_cursor *c2;
        if (edb_env_open(&e2, path, &o) != 0 || edb_session_begin(&s2, e2) != 0 ||
            edb_cursor_open(&c2, s2, "t") != 0)
            _exit(2);
        int32_t id = 2;
        int rc = 3;
        if (edb_update_prepare(c2, EDB_PREP_INSERT) == 0 && edb_column_set(c2, 1, &id, 4, 0) == 0 &&
            edb_column_set(c2, 2, "HELLO", 5, 0) == 0)
            rc = edb_update(c2) == EDB_KEYDUP ? 0 : 4;
        edb_cursor_close(c2);
        edb_session_end(s2);
        edb_env_close(e2);
        _exit(rc);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %d", WEXITSTATUS(st));
}

Test(collation, cursor_stays_on_an_index_across_its_rebuild)
{
    make_table("en-u-ks-level2", "+name\0", 0);
    edb_cursor *c, *other;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_open(&other, s, "t"));
    const char *names[] = { "b", "Z", "a", "C" };
    for (int i = 0; i < 4; i++)
        OK(insert(c, i, names[i]));
    OK(edb_cursor_set_index(other, "by_name"));
    OK(edb_key_make(other, "B", 1, EDB_KEY_NEW));
    OK(edb_cursor_seek(other, EDB_SEEK_EQ));
    OK(edb_index_rebuild(s, "t", "by_name"));
    /* the kept cursor goes on from where it was, in the rebuilt entries */
    OK(edb_cursor_move(other, EDB_MOVE_NEXT));
    char v[8];
    size_t n = 0;
    OK(edb_column_get(other, 2, v, sizeof v, &n, 0));
    cr_assert(n == 1 && v[0] == 'C');
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "t", "by_name"));
    cr_assert_eq(st.entries, 4);
    /* a rebuild rolled back leaves the index as it was */
    OK(edb_txn_begin(s, 0));
    OK(edb_index_rebuild(s, "t", "by_name"));
    OK(edb_txn_rollback(s));
    char got[128];
    walk(c, got, sizeof got);
    cr_assert_str_eq(got, "a,b,C,Z");
    OK(edb_table_stat(&st, s, "t", "by_name"));
    cr_assert_eq(st.entries, 4);
    uint64_t problems = 1;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
    edb_cursor_close(other);
    edb_cursor_close(c);
}

/* Several sessions in several threads make collated keys at once: one
 * collator serves them all (collate.c locks it per call). */
static int
scale_pct(void)
{
    const char *e = getenv("EDB_TEST_SCALE");
    int p = e != NULL ? atoi(e) : 100;
    return p > 0 ? p : 100;
}

static void *
seeker(void *arg)
{
    intptr_t bad = 0;
    edb_session *ts;
    edb_cursor *c;
    if (edb_session_begin(&ts, env) != 0)
        return (void *)1;
    if (edb_cursor_open(&c, ts, "t") != 0 || edb_cursor_set_index(c, "by_name") != 0) {
        edb_session_end(ts);
        return (void *)1;
    }
    int rounds = 2000 * scale_pct() / 100 + 10;
    const char *keys[] = { "APPLE", "apple", "Banana", "BANANA", "cherry" };
    const int32_t want[] = { 1, 1, 2, 2, 3 };
    for (int i = 0; i < rounds && !bad; i++) {
        int k = (i + (int)(intptr_t)arg) % 5;
        int32_t id = 0;
        size_t n;
        if (edb_key_make(c, keys[k], strlen(keys[k]), EDB_KEY_NEW) != 0 ||
            edb_cursor_seek(c, EDB_SEEK_EQ) != 0 || edb_column_get(c, 1, &id, sizeof id, &n, 0) != 0 ||
            id != want[k])
            bad = 1;
    }
    edb_cursor_close(c);
    edb_session_end(ts);
    return (void *)bad;
}

Test(collation, threads_share_one_collator)
{
    make_table("en-u-ks-level2", "+name\0", EDB_IDX_UNIQUE);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(insert(c, 1, "apple"));
    OK(insert(c, 2, "Banana"));
    OK(insert(c, 3, "Cherry"));
    edb_cursor_close(c);
    pthread_t th[4];
    for (intptr_t i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, seeker, (void *)i), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        cr_assert_eq(pthread_join(th[i], &r), 0);
        cr_assert_null(r, "thread %d found a wrong record", i);
    }
}

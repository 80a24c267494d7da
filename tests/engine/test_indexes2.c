/* test_indexes2.c: conditional indexes (issue 14): the index's entries
 * follow its condition column as records are inserted, updated and deleted;
 * the definition round-trips through describe; check agrees. */
#include "config.h"

#include <lmdb.h>

#include "helpers.h"

#include "catalog.h"    /* format 5's index entries, as stored */
#include "cursor.h"
#include "index_values.h"

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

TestSuite(indexes2, .init = setup, .fini = teardown, .timeout = 60);

/* The ids reached through index @index in its order, joined by ','. */
static void
ids(edb_cursor *c, const char *index, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    OK(edb_cursor_set_index(c, index));
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
        int32_t id = 0;
        size_t n;
        OK(edb_column_get(c, 1, &id, sizeof id, &n, 0));
        o += (size_t)snprintf(out + o, cap - o, "%s%d", o ? "," : "", (int)id);
    }
}

static void
check_clean(void)
{
    uint64_t problems = 1;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
}

/* Table "t": id int32 primary, name TEXT, deleted DATETIME (NULL: live). */
static void
make_cond_table(void)
{
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "name", .type = EDB_COL_TEXT },
        { .name = "deleted", .type = EDB_COL_DATETIME },
    };
    edb_index_def idx[] = {
        { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY },
        { .name = "live", .key = "+name\0", .condition = "!deleted" },
        { .name = "trash", .key = "+name\0", .condition = "deleted" },
    };
    edb_table_def t = { .name = "t", .columns = cols, .ncolumns = 3, .indexes = idx, .nindexes = 3 };
    OK(edb_table_create(s, &t));
}

static void
put_row(edb_cursor *c, int32_t id, const char *name, const int64_t *deleted)
{
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, sizeof id, 0));
    OK(edb_column_set(c, 2, name, strlen(name), 0));
    if (deleted != NULL)
        OK(edb_column_set(c, 3, deleted, sizeof *deleted, 0));
    OK(edb_update(c));
}

static void
goto_id(edb_cursor *c, int32_t id)
{
    OK(edb_cursor_set_index(c, NULL));
    OK(edb_key_make(c, &id, sizeof id, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
}

Test(indexes2, condition_includes_and_excludes)
{
    make_cond_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    int64_t when = 1234;
    put_row(c, 1, "a", NULL);
    put_row(c, 2, "b", &when);
    put_row(c, 3, "c", NULL);
    char got[64];
    ids(c, "live", got, sizeof got);
    cr_assert_str_eq(got, "1,3");
    ids(c, "trash", got, sizeof got);
    cr_assert_str_eq(got, "2");
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "t", "live"));
    cr_assert_eq(st.entries, 2);
    check_clean();
    edb_cursor_close(c);
}

Test(indexes2, condition_follows_updates)
{
    make_cond_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    put_row(c, 1, "a", NULL);
    put_row(c, 2, "b", NULL);
    /* soft-delete 1: it leaves "live" and enters "trash" */
    goto_id(c, 1);
    int64_t when = 99;
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 3, &when, sizeof when, 0));
    OK(edb_update(c));
    char got[64];
    ids(c, "live", got, sizeof got);
    cr_assert_str_eq(got, "2");
    ids(c, "trash", got, sizeof got);
    cr_assert_str_eq(got, "1");
    /* undelete it inside a transaction that rolls back: nothing changes */
    OK(edb_txn_begin(s, 0));
    goto_id(c, 1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 3, NULL, 0, 0));
    OK(edb_update(c));
    ids(c, "live", got, sizeof got);
    cr_assert_str_eq(got, "1,2");
    OK(edb_txn_rollback(s));
    ids(c, "live", got, sizeof got);
    cr_assert_str_eq(got, "2");
    /* a record deleted while in "trash" leaves it */
    goto_id(c, 1);
    OK(edb_record_delete(c));
    ids(c, "trash", got, sizeof got);
    cr_assert_str_eq(got, "");
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "t", "trash"));
    cr_assert_eq(st.entries, 0);
    check_clean();
    edb_cursor_close(c);
}

Test(indexes2, condition_on_a_later_index_and_describe)
{
    make_cond_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    int64_t when = 5;
    put_row(c, 1, "a", &when);
    put_row(c, 2, "b", NULL);
    edb_index_def x = { .name = "gone", .key = "-id\0", .condition = "deleted" };
    OK(edb_index_create(s, "t", &x));
    char got[64];
    ids(c, "gone", got, sizeof got);
    cr_assert_str_eq(got, "1");
    edb_table_def *d;
    OK(edb_table_describe(&d, s, "t"));
    cr_assert_str_eq(d->indexes[1].condition, "!deleted");
    cr_assert_str_eq(d->indexes[2].condition, "deleted");
    cr_assert_str_eq(d->indexes[3].condition, "deleted");
    cr_assert_null(d->indexes[0].condition);
    edb_free(d);
    check_clean();
    edb_cursor_close(c);
}

Test(indexes2, bad_conditions_refused)
{
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "name", .type = EDB_COL_TEXT },
    };
    edb_index_def idx[] = {
        { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY },
        { .name = "x", .key = "+name\0", .condition = "nope" },
    };
    edb_table_def t = { .name = "t", .columns = cols, .ncolumns = 2, .indexes = idx, .nindexes = 2 };
    RC(edb_table_create(s, &t), EDB_INVAL);
    idx[1].condition = NULL;
    idx[0].condition = "name";
    RC(edb_table_create(s, &t), EDB_INVAL);
}

/* ------------------------------------------------------------ tuple indexes */

/* Table "d": id int32 primary, body TEXT, tuple index "sub" on body. */
static void
make_tuple_table(unsigned tmin, unsigned tmax)
{
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "body", .type = EDB_COL_TEXT },
    };
    edb_index_def idx[] = {
        { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY },
        { .name = "sub", .key = "+body\0", .flags = EDB_IDX_TUPLES, .tuple_min = tmin, .tuple_max = tmax },
    };
    edb_table_def t = { .name = "d", .columns = cols, .ncolumns = 2, .indexes = idx, .nindexes = 2 };
    OK(edb_table_create(s, &t));
}

static void
put_body(edb_cursor *c, int32_t id, const char *body)
{
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, sizeof id, 0));
    if (body != NULL)
        OK(edb_column_set(c, 2, body, strlen(body), 0));
    OK(edb_update(c));
}

/* The ids of the entries whose tuple starts with @sub (EQ, then a range),
 * in entry order, joined by ','. */
static void
find(edb_cursor *c, const char *sub, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    OK(edb_cursor_set_index(c, "sub"));
    OK(edb_key_make(c, sub, strlen(sub), EDB_KEY_NEW));
    int rc = edb_cursor_seek(c, EDB_SEEK_EQ);
    if (rc == EDB_NOTFOUND)
        return;
    OK(rc);
    OK(edb_key_make(c, sub, strlen(sub), EDB_KEY_NEW | EDB_KEY_PREFIX_END));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER));
    for (; rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
        int32_t id = 0;
        size_t n;
        OK(edb_column_get(c, 1, &id, sizeof id, &n, 0));
        o += (size_t)snprintf(out + o, cap - o, "%s%d", o ? "," : "", (int)id);
    }
    RC(rc, EDB_NOTFOUND);
}

Test(indexes2, tuple_seek_finds_every_record_containing)
{
    make_tuple_table(0, 0);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "d"));
    put_body(c, 1, "concatenate");
    put_body(c, 2, "dog");
    put_body(c, 3, "the cat sat");
    put_body(c, 4, "scatter");
    put_body(c, 5, "ca");          /* shorter than tuple_min: no entry */
    put_body(c, 6, NULL);
    char got[64];
    /* entries in tuple order: "cat sat" (3), "catenate" (1), "catter" (4) */
    find(c, "cat", got, sizeof got);
    cr_assert_str_eq(got, "3,1,4");
    find(c, "dog", got, sizeof got);
    cr_assert_str_eq(got, "2");
    find(c, "ate", got, sizeof got);
    cr_assert_str_eq(got, "1,1");       /* "ate" and "atenate" */
    find(c, "zzz", got, sizeof got);
    cr_assert_str_eq(got, "");
    /* "concatenate" has 11 - 3 + 1 = 9 tuples, "dog" 1, "the cat sat" 9,
     * "scatter" 5; "ca" and NULL none */
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "d", "sub"));
    cr_assert_eq(st.entries, 24);
    /* keys outside tuple_min..tuple_max are refused */
    OK(edb_cursor_set_index(c, "sub"));
    RC(edb_key_make(c, "ca", 2, EDB_KEY_NEW), EDB_INVAL);
    RC(edb_key_make(c, "abcdefghijk", 11, EDB_KEY_NEW), EDB_INVAL);
    check_clean();
    edb_cursor_close(c);
}

Test(indexes2, tuple_entries_follow_updates_and_deletes)
{
    make_tuple_table(2, 4);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "d"));
    put_body(c, 1, "banana");      /* "an" twice: one entry per start, duplicates merged */
    put_body(c, 2, "x");           /* shorter than tuple_min 2 */
    char got[64];
    /* reached once per occurrence: tuples "ana" and "anan" */
    find(c, "an", got, sizeof got);
    cr_assert_str_eq(got, "1,1");
    find(c, "nan", got, sizeof got);
    cr_assert_str_eq(got, "1");
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "d", "sub"));
    /* banan anan nana ana na: 5 distinct tuples */
    cr_assert_eq(st.entries, 5);
    goto_id(c, 1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 2, "bandana", 7, 0));
    OK(edb_update(c));
    find(c, "nan", got, sizeof got);
    cr_assert_str_eq(got, "");
    find(c, "dan", got, sizeof got);
    cr_assert_str_eq(got, "1");
    goto_id(c, 2);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 2, "xan", 3, 0));
    OK(edb_update(c));
    find(c, "an", got, sizeof got);
    cr_assert_str_eq(got, "2,1,1");     /* "an" (xan), "ana", "anda" (bandana) */
    goto_id(c, 1);
    OK(edb_record_delete(c));
    find(c, "an", got, sizeof got);
    cr_assert_str_eq(got, "2");
    OK(edb_table_stat(&st, s, "d", "sub"));
    cr_assert_eq(st.entries, 2);       /* "xan", "an" */
    check_clean();
    edb_cursor_close(c);
}

Test(indexes2, tuple_index_made_later_and_described)
{
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "body", .type = EDB_COL_TEXT },
    };
    edb_index_def pk[] = { { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY } };
    edb_table_def t = { .name = "d", .columns = cols, .ncolumns = 2, .indexes = pk, .nindexes = 1 };
    OK(edb_table_create(s, &t));
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "d"));
    put_body(c, 1, "concatenate");
    put_body(c, 2, "cat");
    edb_index_def x = { .name = "sub", .key = "+body\0", .flags = EDB_IDX_TUPLES };
    OK(edb_index_create(s, "d", &x));
    char got[64];
    find(c, "cat", got, sizeof got);
    cr_assert_str_eq(got, "2,1");       /* "cat" before "catenate" */
    edb_table_def *d;
    OK(edb_table_describe(&d, s, "d"));
    cr_assert(d->indexes[1].flags & EDB_IDX_TUPLES);
    cr_assert_eq(d->indexes[1].tuple_min, 3);
    cr_assert_eq(d->indexes[1].tuple_max, 10);
    edb_free(d);
    /* bad definitions */
    edb_index_def bad[] = {
        { .name = "b1", .key = "+id\0", .flags = EDB_IDX_TUPLES },
        { .name = "b2", .key = "+body\0", .flags = EDB_IDX_TUPLES | EDB_IDX_UNIQUE },
        { .name = "b3", .key = "+body\0", .flags = EDB_IDX_TUPLES, .tuple_min = 5, .tuple_max = 4 },
        { .name = "b4", .key = "+body\0", .tuple_min = 3 },
        { .name = "b5", .key = "+body\0", .flags = EDB_IDX_TUPLES, .tuple_max = EDB_TUPLE_MAX + 1 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        RC(edb_index_create(s, "d", &bad[i]), EDB_INVAL);
    check_clean();
    edb_cursor_close(c);
}

/* ------------------------------------------------------ multi-valued indexes */

/* Table "m": id int32 primary, tags TEXT multi-valued, index "by_tag". */
static void
make_mv_table(unsigned flags)
{
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "tags", .type = EDB_COL_TEXT, .flags = EDB_COL_MULTIVALUED },
    };
    edb_index_def idx[] = {
        { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY },
        { .name = "by_tag", .key = "+tags\0", .flags = flags },
    };
    edb_table_def t = { .name = "m", .columns = cols, .ncolumns = 2, .indexes = idx, .nindexes = 2 };
    OK(edb_table_create(s, &t));
}

static int
put_tags(edb_cursor *c, int32_t id, const char *const *tags, size_t n)
{
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, sizeof id, 0));
    for (size_t i = 0; i < n; i++)
        OK(edb_column_set(c, 2, tags[i], strlen(tags[i]), EDB_SET_APPEND));
    int rc = edb_update(c);
    if (rc < 0)
        edb_update_cancel(c);
    return rc;
}

/* The ids holding tag @tag, via the index. */
static void
holders(edb_cursor *c, const char *tag, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    OK(edb_cursor_set_index(c, "by_tag"));
    OK(edb_key_make(c, tag, strlen(tag), EDB_KEY_NEW));
    int rc = edb_cursor_seek(c, EDB_SEEK_EQ);
    if (rc == EDB_NOTFOUND)
        return;
    OK(rc);
    OK(edb_key_make(c, tag, strlen(tag), EDB_KEY_NEW));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER | EDB_RANGE_INCLUSIVE));
    for (; rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
        int32_t id = 0;
        size_t n;
        OK(edb_column_get(c, 1, &id, sizeof id, &n, 0));
        o += (size_t)snprintf(out + o, cap - o, "%s%d", o ? "," : "", (int)id);
    }
}

Test(indexes2, mv_index_one_entry_per_value)
{
    make_mv_table(0);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "m"));
    const char *a[] = { "red", "green", "blue" }, *b[] = { "green" }, *d[] = { "blue", "blue" };
    OK(put_tags(c, 1, a, 3));
    OK(put_tags(c, 2, b, 1));
    OK(put_tags(c, 3, d, 2));      /* a value held twice: one entry */
    OK(put_tags(c, 4, NULL, 0));   /* no value: one NULL entry, as ESE */
    char got[64];
    holders(c, "green", got, sizeof got);
    cr_assert_str_eq(got, "1,2");
    holders(c, "blue", got, sizeof got);
    cr_assert_str_eq(got, "1,3");
    holders(c, "red", got, sizeof got);
    cr_assert_str_eq(got, "1");
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "m", "by_tag"));
    cr_assert_eq(st.entries, 3 + 1 + 1 + 1);
    check_clean();
    edb_cursor_close(c);
}

Test(indexes2, mv_entries_after_append_and_delete_of_values)
{
    make_mv_table(EDB_IDX_IGNORE_NULL);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "m"));
    const char *a[] = { "red" };
    OK(put_tags(c, 1, a, 1));
    /* append a value */
    goto_id(c, 1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 2, "blue", 4, EDB_SET_APPEND));
    OK(edb_update(c));
    char got[64];
    holders(c, "blue", got, sizeof got);
    cr_assert_str_eq(got, "1");
    holders(c, "red", got, sizeof got);
    cr_assert_str_eq(got, "1");
    /* replace every value by one: "red" and "blue" go */
    goto_id(c, 1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 2, "green", 5, 0));
    OK(edb_update(c));
    holders(c, "red", got, sizeof got);
    cr_assert_str_eq(got, "");
    holders(c, "blue", got, sizeof got);
    cr_assert_str_eq(got, "");
    holders(c, "green", got, sizeof got);
    cr_assert_str_eq(got, "1");
    /* set NULL: every value goes, and IGNORE_NULL leaves no entry */
    goto_id(c, 1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 2, NULL, 0, 0));
    OK(edb_update(c));
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "m", "by_tag"));
    cr_assert_eq(st.entries, 0);
    check_clean();
    edb_cursor_close(c);
}

Test(indexes2, mv_unique_refuses_a_value_of_another_record)
{
    make_mv_table(EDB_IDX_UNIQUE | EDB_IDX_IGNORE_NULL);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "m"));
    const char *a[] = { "x", "y" }, *b[] = { "z", "y" }, *d[] = { "q", "q" };
    OK(put_tags(c, 1, a, 2));
    RC(put_tags(c, 2, b, 2), EDB_KEYDUP);
    /* the same value twice in one record is no clash with itself */
    OK(put_tags(c, 3, d, 2));
    /* the record keeps its own values on a replace that adds one */
    goto_id(c, 1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 2, "w", 1, EDB_SET_APPEND));
    OK(edb_update(c));
    goto_id(c, 3);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 2, "w", 1, EDB_SET_APPEND));
    RC(edb_update(c), EDB_KEYDUP);
    edb_update_cancel(c);
    /* building a unique index over rows that share a value fails whole */
    edb_index_def x = { .name = "again", .key = "+tags\0", .flags = EDB_IDX_UNIQUE };
    OK(edb_index_drop(s, "m", "by_tag"));
    const char *e[] = { "x" };
    OK(put_tags(c, 4, e, 1));
    RC(edb_index_create(s, "m", &x), EDB_KEYDUP);
    check_clean();
    edb_cursor_close(c);
}

Test(indexes2, mv_not_in_a_primary_key)
{
    edb_column_def cols[] = {
        { .name = "tags", .type = EDB_COL_TEXT, .flags = EDB_COL_MULTIVALUED },
        { .name = "more", .type = EDB_COL_TEXT, .flags = EDB_COL_MULTIVALUED },
    };
    edb_index_def idx[] = { { .name = "pk", .key = "+tags\0", .flags = EDB_IDX_PRIMARY } };
    edb_table_def t = { .name = "m", .columns = cols, .ncolumns = 2, .indexes = idx, .nindexes = 1 };
    RC(edb_table_create(s, &t), EDB_INVAL);
    idx[0].flags = 0;
    idx[0].key = "+tags\0+more\0";
    RC(edb_table_create(s, &t), EDB_INVAL);
}

/* A forged catalog: the tuple lengths of index 1 of table "d" (catalog.c's
 * extension record, tag 4) set to @min, @max.  The schema is refused as
 * EDB_CORRUPT, never used. */
static void
forge_tuples(uint32_t min, uint32_t max)
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
    MDB_val k = { 2, "td" }, v;
    cr_assert_eq(mdb_get(t, cat, &k, &v), 0);
    uint8_t blob[4096];
    cr_assert(v.mv_size <= sizeof blob);
    memcpy(blob, v.mv_data, v.mv_size);
    static const uint8_t rec[] = { 4, 1, 0, 0, 0, 8, 0 };
    bool done = false;
    for (size_t i = 0; i + sizeof rec + 8 <= v.mv_size && !done; i++)
        if (memcmp(blob + i, rec, sizeof rec) == 0) {
            memcpy(blob + i + sizeof rec, &min, 4);     /* little-endian host */
            memcpy(blob + i + sizeof rec + 4, &max, 4);
            done = true;
        }
    cr_assert(done);
    v.mv_data = blob;
    cr_assert_eq(mdb_put(t, cat, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(t), 0);
    mdb_env_close(m);
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
}

Test(indexes2, forged_tuple_lengths_are_corrupt)
{
    const uint32_t bad[][2] = { { 0, 5 }, { 6, 5 }, { 3, 100000 } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (i > 0) {
            OK(edb_table_drop(s, "d"));
        }
        make_tuple_table(2, 5);
        edb_cursor *c;
        OK(edb_cursor_open(&c, s, "d"));
        put_body(c, 1, "hello");
        edb_cursor_close(c);
        forge_tuples(bad[i][0], bad[i][1]);
        RC(edb_cursor_open(&c, s, "d"), EDB_CORRUPT);
        uint64_t problems = 0;
        OK(edb_env_check(&problems, env, NULL, NULL, NULL));
        cr_assert_geq(problems, 1, "case %zu", i);
        /* the forged table can still be dropped */
        forge_tuples(2, 5);
    }
}

static void
count_missing(void *ctx, int code, const char *what)
{
    (void)code;
    if (strstr(what, "by_tag") != NULL && strstr(what, "without their entry") != NULL)
        ++*(int *)ctx;
}

Test(indexes2, check_finds_a_lost_mv_entry)
{
    make_mv_table(0);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "m"));
    const char *a[] = { "red", "green", "blue" };
    OK(put_tags(c, 1, a, 3));
    edb_cursor_close(c);
    check_clean();
    /* lose one of the record's three entries behind the engine's back: the
     * table's only secondary index holds every key of edb.index */
    edb_session_end(s);
    edb_env_close(env);
    char path[512];
    snprintf(path, sizeof path, "%s/db", dir);
    MDB_env *m;
    MDB_txn *t;
    MDB_dbi ix;
    MDB_cursor *mc;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 8), 0);
    cr_assert_eq(mdb_env_open(m, path, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "edb.index", 0, &ix), 0);
    cr_assert_eq(mdb_cursor_open(t, ix, &mc), 0);
    MDB_val k, v;
    cr_assert_eq(mdb_cursor_get(mc, &k, &v, MDB_FIRST), 0);
    cr_assert_eq(mdb_cursor_del(mc, 0), 0);
    mdb_cursor_close(mc);
    cr_assert_eq(mdb_txn_commit(t), 0);
    mdb_env_close(m);
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    uint64_t problems = 0;
    int missing = 0;
    OK(edb_env_check(&problems, env, count_missing, &missing, NULL));
    cr_assert_eq(missing, 1, "the record without one of its entries is reported");
    cr_assert_geq(problems, 2, "and the entry count");
}

/* ---- format 5: non-unique entries without the repeated primary key --------
 * Their key ends with the primary key, their value is empty (unique indexes
 * keep the primary key as the value); every reader recovers the primary key
 * from the key's suffix, after the index's self-delimiting segments. */

static void
f5_table(void)
{
    edb_column_def cols[] = {
        { "id", EDB_COL_INT64, 0, 0, NULL, 0, NULL },
        { "name", EDB_COL_TEXT, 0, 0, NULL, 0, "en-u-ks-level2" },
        { "score", EDB_COL_DOUBLE, 0, 0, NULL, 0, NULL },
        { "tags", EDB_COL_TEXT, EDB_COL_MULTIVALUED, 0, NULL, 0, NULL },
        { "code", EDB_COL_INT32, 0, 0, NULL, 0, NULL },
        { "note", EDB_COL_TEXT, 0, 0, NULL, 0, NULL },
        { "bin", EDB_COL_BINARY, 0, 0, NULL, 0, NULL },
    };
    edb_index_def idx[] = {
        { "pk", "+id\0", EDB_IDX_PRIMARY, NULL, 0, 0 },
        { "by_name", "+name\0-score\0", 0, NULL, 0, 0 },
        { "by_score", "-score\0", EDB_IDX_SORT_NULLS_HIGH, NULL, 0, 0 },
        { "by_tag", "+tags\0", 0, NULL, 0, 0 },
        { "by_code", "+code\0", EDB_IDX_UNIQUE | EDB_IDX_IGNORE_NULL, NULL, 0, 0 },
        { "by_note", "+note\0", EDB_IDX_TUPLES, NULL, 3, 4 },
        { "by_bin", "-bin\0+code\0", 0, NULL, 0, 0 },
    };
    edb_table_def def = { "f5", cols, 7, idx, 7 };
    OK(edb_table_create(s, &def));
}

static void
f5_row(edb_cursor *c, int64_t id, unsigned prep)
{
    char name[32], tag[16], note[32];
    uint8_t bin[3] = { 0, (uint8_t)id, 0xFF };
    snprintf(name, sizeof name, "%s%lld", id % 2 ? "Name" : "NAME", (long long)(id % 7));
    double score = (double)(id % 5) * 1.5;
    int32_t code = (int32_t)(1000 + id);
    OK(edb_update_prepare(c, prep));
    if (prep == EDB_PREP_INSERT)
        OK(edb_column_set(c, 1, &id, 8, 0));
    if (id % 9 != 0)
        OK(edb_column_set(c, 2, name, strlen(name), 0));
    if (id % 4 != 0)
        OK(edb_column_set(c, 3, &score, 8, 0));
    for (int j = 0; j < (int)(id % 3); j++) {
        snprintf(tag, sizeof tag, "t%lld", (long long)((id + j) % 4));
        OK(edb_column_set(c, 4, tag, strlen(tag), EDB_SET_APPEND));
    }
    if (id % 6 != 0 && prep == EDB_PREP_INSERT)
        OK(edb_column_set(c, 5, &code, 4, 0));
    snprintf(note, sizeof note, "note %lld", (long long)id);
    OK(edb_column_set(c, 6, note, strlen(note), 0));
    OK(edb_column_set(c, 7, bin, sizeof bin, 0));
    OK(edb_update(c));
}

/* Count the entries of @index with an empty value and with a value. */
static void
f5_values(const char *index, uint64_t *empty, uint64_t *full)
{
    test_index_values(env, "f5", index, empty, full);
}

static const char *const f5_nonunique[] = { "by_name", "by_score", "by_tag", "by_note", "by_bin" };

/* Walk @index both ways: every entry reaches a record whose columns make an
 * entry at that place (the key retrieved is a prefix of the record's own
 * entry), bookmarks and key seeks come back to it; returns the entries. */
static uint64_t
f5_walk(edb_cursor *c, const char *index)
{
    OK(edb_cursor_set_index(c, index));
    uint64_t n = 0;
    int64_t prev_id = INT64_MIN;
    uint8_t prevk[EDB_MAX_KEY_SIZE];
    size_t prevn = 0;
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
        int64_t id;
        OK(edb_column_get(c, 1, &id, 8, NULL, 0));
        uint8_t key[EDB_MAX_KEY_SIZE], bm[EDB_MAX_KEY_SIZE];
        size_t kn, bn;
        OK(edb_key_retrieve(c, key, sizeof key, &kn));
        int cmp = prevn == 0 ? 1 : memcmp(prevk, key, prevn < kn ? prevn : kn);
        cr_assert(n == 0 || cmp < 0 || (cmp == 0 && (prevn < kn || (prevn == kn && prev_id < id))),
                  "%s: entry %llu out of order", index, (unsigned long long)n);
        OK(edb_bookmark_get(c, bm, sizeof bm, &bn));
        cr_assert_eq(bn, 9, "the primary key (9 bytes) from the entry's key suffix");
        memcpy(prevk, key, kn);
        prevn = kn;
        prev_id = id;
        n++;
        if (n % 7 == 1) {
            /* a seek on the retrieved key finds an entry of equal key */
            edb_cursor *d;
            OK(edb_cursor_dup(&d, c));
            OK(edb_cursor_set_index(d, index));
            OK(edb_key_make(d, key, kn, EDB_KEY_NEW | EDB_KEY_NORMALIZED));
            OK(edb_cursor_seek(d, EDB_SEEK_EQ));
            uint8_t k2[EDB_MAX_KEY_SIZE];
            size_t k2n;
            OK(edb_key_retrieve(d, k2, sizeof k2, &k2n));
            cr_assert(k2n == kn && memcmp(k2, key, kn) == 0, "%s: seek EQ", index);
            /* the bookmark of the primary order comes back to this record */
            OK(edb_cursor_set_index(d, NULL));
            OK(edb_bookmark_goto(d, bm, bn));
            int64_t id2;
            OK(edb_column_get(d, 1, &id2, 8, NULL, 0));
            cr_assert_eq(id2, id);
            edb_cursor_close(d);
        }
    }
    uint64_t back = 0;
    for (int rc = edb_cursor_move(c, EDB_MOVE_LAST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_PREV))
        back++;
    cr_assert_eq(back, n, "%s: as many entries backwards", index);
    return n;
}

static void
f5_problem(void *ctx, int code, const char *what)
{
    (void)ctx;
    fprintf(stderr, "check: %d %s\n", code, what);
}

static void
f5_check_clean(void)
{
    uint64_t problems = 1;
    OK(edb_env_check(&problems, env, f5_problem, NULL, NULL));
    cr_assert_eq(problems, 0);
}

Test(indexes2, format5_nonunique_entries_hold_no_value)
{
    cr_assert_eq(edb__cat(env)->format, 5);
    f5_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "f5"));
    unsigned rows = test_scaled_min(120, 30);
    OK(edb_txn_begin(s, 0));
    for (unsigned i = 1; i <= rows; i++)
        f5_row(c, (int64_t)i, EDB_PREP_INSERT);
    OK(edb_txn_commit(s));
    uint64_t empty, full;
    for (size_t i = 0; i < sizeof f5_nonunique / sizeof *f5_nonunique; i++) {
        f5_values(f5_nonunique[i], &empty, &full);
        cr_assert(empty > 0 && full == 0, "%s: %llu empty, %llu with a value", f5_nonunique[i],
                  (unsigned long long)empty, (unsigned long long)full);
    }
    f5_values("by_code", &empty, &full);
    cr_assert(empty == 0 && full > 0, "a unique index keeps the primary key as its value");
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    for (size_t i = 0; i < sizeof f5_nonunique / sizeof *f5_nonunique; i++) {
        edb_tree_stat st;
        OK(edb_table_stat(&st, s, "f5", f5_nonunique[i]));
        cr_assert_eq(f5_walk(c, f5_nonunique[i]), st.entries, "%s", f5_nonunique[i]);
    }
    /* a seek on a value and a range over a multi-valued index */
    OK(edb_cursor_set_index(c, "by_tag"));
    OK(edb_key_make(c, "t2", 2, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    OK(edb_key_make(c, "t2", 2, EDB_KEY_NEW));
    OK(edb_cursor_set_range(c, EDB_RANGE_UPPER | EDB_RANGE_INCLUSIVE));
    unsigned t2 = 1;
    while (edb_cursor_move(c, EDB_MOVE_NEXT) == 0)
        t2++;
    unsigned want = 0;
    for (unsigned i = 1; i <= rows; i++)
        for (unsigned j = 0; j < i % 3; j++)
            want += (i + j) % 4 == 2;
    cr_assert_eq(t2, want);
    /* a value read from the entry (the key's segments, not the suffix) */
    OK(edb_cursor_set_index(c, "by_score"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    double top;
    OK(edb_column_get_from_index(c, 3, &top, 8, NULL));
    cr_assert_eq(top, 6.0);
    OK(edb_txn_commit(s));
    f5_check_clean();
    /* updates and deletes through a non-unique index */
    OK(edb_txn_begin(s, 0));
    OK(edb_cursor_set_index(c, "by_name"));
    unsigned k = 0;
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT), k++) {
        int64_t id;
        OK(edb_column_get(c, 1, &id, 8, NULL, 0));
        if (k % 3 == 0) {
            OK(edb_record_delete(c));
        } else if (k % 3 == 1) {
            f5_row(c, id + 1, EDB_PREP_REPLACE);     /* other name, score, tags, note */
        }
    }
    OK(edb_txn_commit(s));
    f5_check_clean();
    for (size_t i = 0; i < sizeof f5_nonunique / sizeof *f5_nonunique; i++) {
        f5_values(f5_nonunique[i], &empty, &full);
        cr_assert_eq(full, 0, "%s", f5_nonunique[i]);
        edb_tree_stat st;
        OK(edb_table_stat(&st, s, "f5", f5_nonunique[i]));
        cr_assert_eq(empty, st.entries);
    }
    /* an index made over the rows (edb_index_create) writes no values either;
     * its collated segment records the collator's version (edb_index_create
     * left it to whatever the stack held) */
    edb_index_def late = { "late", "+score\0+name\0", 0, NULL, 0, 0 };
    OK(edb_index_create(s, "f5", &late));
    f5_values("late", &empty, &full);
    cr_assert(empty > 0 && full == 0);
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "f5", "late"));
    cr_assert_eq(f5_walk(c, "late"), st.entries);
    OK(edb_txn_commit(s));
    f5_check_clean();
    edb_cursor_close(c);
}

/* An entry whose key's primary key suffix belongs to no record (the value no
 * longer says which record it is for) is reported by edb_env_check. */
Test(indexes2, format5_check_finds_an_entry_of_no_record)
{
    f5_table();
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "f5"));
    for (int64_t i = 1; i <= 5; i++)
        f5_row(c, i, EDB_PREP_INSERT);
    edb_cursor_close(c);
    f5_check_clean();
    MDB_txn *txn;
    edb__table *t;
    cr_assert_eq(mdb_txn_begin(env->mdb, NULL, 0, &txn), 0);
    OK(edb__table_load(&t, env, txn, "f5"));
    const edb__index *x = &t->idx[1];
    cr_assert_str_eq(x->name, "by_name");
    MDB_cursor *mc;
    cr_assert_eq(mdb_cursor_open(txn, x->ks.dbi, &mc), 0);
    MDB_val k, d;
    cr_assert_eq(edb__ks_cursor_get(mc, &x->ks, &k, &d, MDB_FIRST), 0);
    cr_assert_eq(d.mv_size, 0);
    uint8_t key[600];
    memcpy(key, k.mv_data, k.mv_size);
    key[k.mv_size - 1] ^= 0x40;                  /* id 1..5 -> an id no row has */
    mdb_cursor_close(mc);
    MDB_val nk = { k.mv_size, key }, nd = { 0, "" };
    cr_assert_eq(edb__ks_put(txn, &x->ks, &nk, &nd, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    edb__table_free(t);
    uint64_t problems = 0;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_gt(problems, 0, "the entry of no record is found");
}

/*
 * edb_index_create / edb_index_rebuild fill an index by sorting its entries
 * and appending them in key order when its key range is the last of
 * edb.index (engine/schema.c, build_index): the new index's leaf pages are
 * full (by mdb_stat, against the bytes its nodes need) where inserting in
 * row order left them about two-thirds full; seeks and moves find every row
 * in the index's order; a UNIQUE index over two rows with one key is
 * EDB_KEYDUP with nothing created; an index whose range is not the last
 * (rebuilt while a newer index follows it) is filled in row order and is
 * as correct; multi-valued entries and a rollback of the creation.
 */
#include "config.h"

#include "helpers.h"
#include "lmdb_pages.h"

static char *dir;
static char db[512];

static void
setup(void)
{
    dir = make_tmpdir();
    snprintf(db, sizeof db, "%s/db", dir);
}

static void
teardown(void)
{
    rm_tree(dir);
    free(dir);
    LEAK_CHECK();
}

TestSuite(indexbuild, .init = setup, .fini = teardown, .timeout = 120);

/* Table t (id int32 primary, name text, tags multi-valued text) with @n
 * rows inserted in a scrambled order of their names. */
static void
load(edb_env *env, unsigned n)
{
    edb_session *s;
    OK(edb_session_begin(&s, env));
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "name", .type = EDB_COL_TEXT },
        { .name = "tags", .type = EDB_COL_TEXT, .flags = EDB_COL_MULTIVALUED },
    };
    edb_index_def pk = { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY };
    edb_table_def td = { .name = "t", .columns = cols, .ncolumns = 3, .indexes = &pk, .nindexes = 1 };
    OK(edb_table_create(s, &td));
    edb_cursor *c;
    OK(edb_txn_begin(s, 0));
    OK(edb_cursor_open(&c, s, "t"));
    edb_colid cid, cname, ctags;
    OK(edb_column_id(&cid, c, "id"));
    OK(edb_column_id(&cname, c, "name"));
    OK(edb_column_id(&ctags, c, "tags"));
    for (unsigned i = 0; i < n; i++) {
        int32_t id = (int32_t)i;
        unsigned scr = (unsigned)(((uint64_t)i * 2654435761u) % 1000003u);
        char name[32], tag[32];
        snprintf(name, sizeof name, "name-%07u", scr);
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, cid, &id, 4, 0));
        OK(edb_column_set(c, cname, name, strlen(name), 0));
        for (unsigned j = 0; j < 2; j++) {
            snprintf(tag, sizeof tag, "tag-%u", (scr + j * 7) % 50);
            OK(edb_column_set(c, ctags, tag, strlen(tag), EDB_SET_APPEND));
        }
        OK(edb_update(c));
    }
    edb_cursor_close(c);
    OK(edb_txn_commit(s));
    edb_session_end(s);
}

/* Walk index @index of t: every row once, in the order of its key (names are
 * distinct); returns the rows seen. */
static unsigned
walk_names(edb_session *s, const char *index)
{
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_set_index(c, index));
    edb_colid cname;
    OK(edb_column_id(&cname, c, "name"));
    char prev[64] = "", name[64];
    unsigned n = 0;
    int rc = edb_cursor_move(c, EDB_MOVE_FIRST);
    while (rc == 0) {
        size_t got;
        OK(edb_column_get(c, cname, name, sizeof name - 1, &got, 0));
        name[got] = '\0';
        cr_assert(n == 0 || strcmp(prev, name) < 0, "'%s' then '%s'", prev, name);
        memcpy(prev, name, got + 1);
        n++;
        rc = edb_cursor_move(c, EDB_MOVE_NEXT);
    }
    RC(rc, EDB_NOTFOUND);
    edb_cursor_close(c);
    return n;
}

static void
check_clean(edb_env *env)
{
    uint64_t problems = 1;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0, "edb_env_check found %llu problems", (unsigned long long)problems);
}

static void
seek_name(edb_session *s, unsigned i, bool want)
{
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_set_index(c, "by_name"));
    unsigned scr = (unsigned)(((uint64_t)i * 2654435761u) % 1000003u);
    char name[32];
    snprintf(name, sizeof name, "name-%07u", scr);
    OK(edb_key_make(c, name, strlen(name), EDB_KEY_NEW));
    if (want) {
        OK(edb_cursor_seek(c, EDB_SEEK_EQ));
        int32_t id;
        size_t got;
        edb_colid cid;
        OK(edb_column_id(&cid, c, "id"));
        OK(edb_column_get(c, cid, &id, 4, &got, 0));
        cr_assert_eq(id, (int32_t)i);
    } else {
        RC(edb_cursor_seek(c, EDB_SEEK_EQ), EDB_NOTFOUND);
    }
    edb_cursor_close(c);
}

Test(indexbuild, new_index_has_full_pages)
{
    unsigned n = test_scaled_min(20000, 3000);
    edb_env *env = open_env(dir, 0);
    load(env, n);
    edb_session *s;
    OK(edb_session_begin(&s, env));
    edb_index_def by_name = { .name = "by_name", .key = "+name\0" };
    OK(edb_index_create(s, "t", &by_name));
    cr_assert_eq(walk_names(s, "by_name"), n);
    for (unsigned i = 0; i < n; i += n / 50)
        seek_name(s, i, true);
    check_clean(env);
    edb_session_end(s);
    edb_env_close(env);
    uint64_t leaf, ideal, entries;
    test_lmdb_pages(db, "edb.index", &leaf, &ideal, &entries);
    cr_assert_eq(entries, n);
    /* row order is random in the index's order: inserting leaves ~2/3 fill */
    cr_assert_leq(leaf, ideal + ideal / 20 + 1, "%llu leaf pages for %llu pages of nodes",
                  (unsigned long long)leaf, (unsigned long long)ideal);
    fprintf(stderr, "indexbuild::new_index_has_full_pages: %u entries, %llu leaf pages, %llu "
            "needed\n", n, (unsigned long long)leaf, (unsigned long long)ideal);
}

Test(indexbuild, unique_duplicate_creates_nothing)
{
    edb_env *env = open_env(dir, 0);
    load(env, test_scaled_min(3000, 500));
    edb_session *s;
    OK(edb_session_begin(&s, env));
    /* tags repeat across rows: a unique index on them cannot be built */
    edb_index_def by_tag = { .name = "by_tag", .key = "+tags\0", .flags = EDB_IDX_UNIQUE };
    RC(edb_index_create(s, "t", &by_tag), EDB_KEYDUP);
    cr_assert(strstr(edb_error_last(), "unique index 'by_tag'") != NULL, "%s", edb_error_last());
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    RC(edb_cursor_set_index(c, "by_tag"), EDB_NOTFOUND);
    edb_cursor_close(c);
    /* names are distinct: unique works, and in a transaction rolled back
     * it leaves nothing */
    edb_index_def uname = { .name = "uname", .key = "+name\0", .flags = EDB_IDX_UNIQUE };
    OK(edb_txn_begin(s, 0));
    OK(edb_index_create(s, "t", &uname));
    cr_assert_eq(walk_names(s, "uname"), test_scaled_min(3000, 500));
    OK(edb_txn_rollback(s));
    OK(edb_cursor_open(&c, s, "t"));
    RC(edb_cursor_set_index(c, "uname"), EDB_NOTFOUND);
    edb_cursor_close(c);
    check_clean(env);
    edb_session_end(s);
    edb_env_close(env);
}

Test(indexbuild, multivalued_and_not_last)
{
    unsigned n = test_scaled_min(5000, 800);
    edb_env *env = open_env(dir, 0);
    load(env, n);
    edb_session *s;
    OK(edb_session_begin(&s, env));
    edb_index_def by_name = { .name = "by_name", .key = "+name\0" };
    edb_index_def by_tag = { .name = "by_tag", .key = "+tags\0-id\0" };
    OK(edb_index_create(s, "t", &by_name));
    OK(edb_index_create(s, "t", &by_tag));
    /* by_name's range is no longer the last: its rebuild puts in row order */
    OK(edb_index_rebuild(s, "t", "by_name"));
    cr_assert_eq(walk_names(s, "by_name"), n);
    for (unsigned i = 0; i < n; i += n / 40)
        seek_name(s, i, true);
    seek_name(s, n + 1, false);
    /* by_tag: one entry per value, in (tag, id descending) order */
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_cursor_set_index(c, "by_tag"));
    unsigned entries = 0;
    int rc = edb_cursor_move(c, EDB_MOVE_FIRST);
    while (rc == 0) {
        entries++;
        rc = edb_cursor_move(c, EDB_MOVE_NEXT);
    }
    RC(rc, EDB_NOTFOUND);
    edb_cursor_close(c);
    /* two tags a row, equal only when (scr + 7) % 50 == scr % 50: never */
    cr_assert_eq(entries, 2 * n);
    check_clean(env);
    edb_session_end(s);
    edb_env_close(env);
}

/* Multi-valued columns by itag (ESE's itagSequence): replace, delete with
 * the later values moving up, append at n + 1, EDB_SET_UNIQUE and
 * EDB_MV_DUP, in the prepared record, after edb_update and after a
 * rollback. */
#include "config.h"

#include "helpers.h"

static char *dir;
static edb_env *env;
static edb_session *s;
static edb_cursor *c;

static void
setup(void)
{
    dir = make_tmpdir();
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "tags", .type = EDB_COL_TEXT, .flags = EDB_COL_MULTIVALUED },
        { .name = "nums", .type = EDB_COL_INT32, .flags = EDB_COL_MULTIVALUED },
        { .name = "one", .type = EDB_COL_TEXT },
    };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY } };
    edb_table_def def = { "t", cols, 4, idx, 1 };
    OK(edb_table_create(s, &def));
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

TestSuite(multivalue, .init = setup, .fini = teardown, .timeout = 30);

/* Insert row @id with text values vals[0..n). */
static void
insert_row(int32_t id, const char *const *vals, unsigned n)
{
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    for (unsigned i = 0; i < n; i++)
        OK(edb_column_set(c, 2, vals[i], strlen(vals[i]), EDB_SET_APPEND));
    OK(edb_update(c));
}

static void
seek_row(int32_t id)
{
    OK(edb_key_make(c, &id, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
}

/* The column's values joined by ',' ("" for NULL), and the count matches. */
static const char *
joined(edb_colid col)
{
    static char out[512];
    unsigned n;
    OK(edb_column_count(&n, c, col));
    out[0] = 0;
    for (unsigned i = 1; i <= n; i++) {
        char buf[64];
        size_t got;
        OK(edb_column_get(c, col, buf, sizeof buf - 1, &got, i));
        buf[got] = 0;
        if (i > 1)
            strcat(out, ",");
        strcat(out, buf);
    }
    size_t got = 99;
    RC(edb_column_get(c, col, NULL, 0, &got, n + 1), EDB_WRN_NULL);
    cr_assert_eq(got, 0);
    return out;
}

Test(multivalue, replace_nth_value)
{
    const char *v[] = { "a", "b", "c" };
    insert_row(1, v, 3);
    seek_row(1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set_itag(c, 2, 2, "BEE", 3, 0));
    cr_assert_str_eq(joined(2), "a,BEE,c");     /* the prepared record */
    OK(edb_column_set_itag(c, 2, 3, "", 0, 0)); /* an empty value is a value */
    OK(edb_update(c));
    cr_assert_str_eq(joined(2), "a,BEE,");
}

Test(multivalue, delete_moves_later_values_up)
{
    const char *v[] = { "a", "b", "c", "d" };
    insert_row(1, v, 4);
    seek_row(1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set_itag(c, 2, 2, NULL, 0, 0));
    cr_assert_str_eq(joined(2), "a,c,d");
    OK(edb_column_set_itag(c, 2, 1, NULL, 0, 0));
    OK(edb_update(c));
    cr_assert_str_eq(joined(2), "c,d");
    unsigned n;
    OK(edb_column_count(&n, c, 2));
    cr_assert_eq(n, 2);
}

Test(multivalue, deleting_last_itag_leaves_null)
{
    const char *v[] = { "only" };
    insert_row(1, v, 1);
    seek_row(1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set_itag(c, 2, 1, NULL, 0, 0));
    OK(edb_update(c));
    size_t got = 7;
    RC(edb_column_get(c, 2, NULL, 0, &got, 1), EDB_WRN_NULL);
    cr_assert_eq(got, 0);
    unsigned n = 9;
    OK(edb_column_count(&n, c, 2));
    cr_assert_eq(n, 0);
    /* and a value can come back after it */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set_itag(c, 2, 1, "x", 1, 0));
    OK(edb_update(c));
    cr_assert_str_eq(joined(2), "x");
}

Test(multivalue, itag_past_end_plus_one_appends_further_is_inval)
{
    const char *v[] = { "a", "b" };
    insert_row(1, v, 2);
    seek_row(1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    RC(edb_column_set_itag(c, 2, 4, "z", 1, 0), EDB_INVAL);
    RC(edb_column_set_itag(c, 2, 4, NULL, 0, 0), EDB_INVAL);
    cr_assert_str_eq(joined(2), "a,b");
    OK(edb_column_set_itag(c, 2, 3, "c", 1, 0));
    OK(edb_column_set_itag(c, 2, 0, "d", 1, 0));        /* 0 appends as in ESE */
    OK(edb_column_set_itag(c, 2, 5, NULL, 0, 0));       /* n + 1 with NULL: nothing */
    OK(edb_update(c));
    cr_assert_str_eq(joined(2), "a,b,c,d");
}

Test(multivalue, set_itag_on_null_column_and_fixed_type)
{
    int32_t id = 1;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    RC(edb_column_set_itag(c, 3, 2, &id, 4, 0), EDB_INVAL);   /* NULL: only itag 1 */
    int32_t a = 10, b = 20, x = 15;
    OK(edb_column_set_itag(c, 3, 1, &a, 4, 0));
    OK(edb_column_set_itag(c, 3, 2, &b, 4, 0));
    RC(edb_column_set_itag(c, 3, 3, &a, 2, 0), EDB_INVAL);    /* wrong size */
    OK(edb_column_set_itag(c, 3, 1, &x, 4, 0));
    OK(edb_update(c));
    int32_t got[2];
    OK(edb_column_get(c, 3, &got[0], 4, NULL, 1));
    OK(edb_column_get(c, 3, &got[1], 4, NULL, 2));
    cr_assert_eq(got[0], 15);
    cr_assert_eq(got[1], 20);
}

Test(multivalue, single_valued_column_has_itag_one)
{
    int32_t id = 1;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    OK(edb_column_set_itag(c, 4, 1, "v", 1, 0));
    RC(edb_column_set_itag(c, 4, 2, "w", 1, 0), EDB_INVAL);
    OK(edb_update(c));
    char buf[8];
    size_t got;
    OK(edb_column_get(c, 4, buf, sizeof buf, &got, 0));
    cr_assert_eq(got, 1);
    cr_assert_eq(buf[0], 'v');
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set_itag(c, 4, 1, NULL, 0, 0));
    OK(edb_update(c));
    RC(edb_column_get(c, 4, buf, sizeof buf, &got, 0), EDB_WRN_NULL);
}

Test(multivalue, unique_refuses_duplicate_in_same_update)
{
    int32_t id = 1;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    OK(edb_column_set(c, 2, "a", 1, EDB_SET_APPEND | EDB_SET_UNIQUE));
    OK(edb_column_set(c, 2, "b", 1, EDB_SET_APPEND | EDB_SET_UNIQUE));
    RC(edb_column_set(c, 2, "a", 1, EDB_SET_APPEND | EDB_SET_UNIQUE), EDB_MV_DUP);
    cr_assert(strstr(edb_error_last(), "tags") != NULL, "%s", edb_error_last());
    /* "ab" is not "a": bytewise, whole values */
    OK(edb_column_set(c, 2, "ab", 2, EDB_SET_APPEND | EDB_SET_UNIQUE));
    RC(edb_column_set_itag(c, 2, 0, "b", 1, EDB_SET_UNIQUE), EDB_MV_DUP);
    RC(edb_column_set_itag(c, 2, 1, "b", 1, EDB_SET_UNIQUE), EDB_MV_DUP);
    /* replacing a value by itself is not a duplicate */
    OK(edb_column_set_itag(c, 2, 2, "b", 1, EDB_SET_UNIQUE));
    /* without the flag duplicates are allowed, as before */
    OK(edb_column_set(c, 2, "a", 1, EDB_SET_APPEND));
    OK(edb_update(c));
    cr_assert_str_eq(joined(2), "a,b,ab,a");
    cr_assert_str_eq(edb_err_name(EDB_MV_DUP), "EDB_MV_DUP");
    cr_assert_eq(EDB_MV_DUP, -29);
}

Test(multivalue, unique_refuses_duplicate_in_later_update)
{
    const char *v[] = { "red", "green" };
    insert_row(1, v, 2);
    seek_row(1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    RC(edb_column_set(c, 2, "green", 5, EDB_SET_APPEND | EDB_SET_UNIQUE), EDB_MV_DUP);
    RC(edb_column_set_itag(c, 2, 1, "green", 5, EDB_SET_UNIQUE), EDB_MV_DUP);
    OK(edb_column_set(c, 2, "blue", 4, EDB_SET_APPEND | EDB_SET_UNIQUE));
    OK(edb_update(c));
    cr_assert_str_eq(joined(2), "red,green,blue");
}

Test(multivalue, cancel_and_rollback_keep_old_values)
{
    const char *v[] = { "a", "b", "c" };
    insert_row(1, v, 3);
    seek_row(1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set_itag(c, 2, 1, NULL, 0, 0));
    edb_update_cancel(c);
    cr_assert_str_eq(joined(2), "a,b,c");
    OK(edb_txn_begin(s, 0));
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set_itag(c, 2, 3, NULL, 0, 0));
    OK(edb_column_set_itag(c, 2, 1, "z", 1, 0));
    OK(edb_update(c));
    cr_assert_str_eq(joined(2), "z,b");
    OK(edb_txn_rollback(s));
    cr_assert_str_eq(joined(2), "a,b,c");
}

Test(multivalue, many_values_delete_from_the_front)
{
    int32_t id = 1;
    unsigned n = 200;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    for (int32_t i = 0; i < (int32_t)n; i++)
        OK(edb_column_set(c, 3, &i, 4, EDB_SET_APPEND | EDB_SET_UNIQUE));
    OK(edb_update(c));
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    for (unsigned i = 0; i < n; i += 2)
        OK(edb_column_set_itag(c, 3, 1 + i / 2, NULL, 0, 0));   /* every even one */
    OK(edb_update(c));
    unsigned cnt;
    OK(edb_column_count(&cnt, c, 3));
    cr_assert_eq(cnt, n / 2);
    for (unsigned i = 1; i <= cnt; i++) {
        int32_t got;
        OK(edb_column_get(c, 3, &got, 4, NULL, i));
        cr_assert_eq(got, (int32_t)(2 * i - 1));
    }
}

Test(multivalue, bad_arguments)
{
    RC(edb_column_set_itag(c, 2, 1, "a", 1, 0), EDB_NOUPDATE);
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    RC(edb_column_set_itag(c, 2, 1, "a", 1, 0x100), EDB_INVAL);
    RC(edb_column_set_itag(c, 2, 1, NULL, 3, 0), EDB_INVAL);
    RC(edb_column_set_itag(c, 99, 1, "a", 1, 0), EDB_NOTFOUND);
    RC(edb_column_set_itag(c, 2, 1, "\xff", 1, 0), EDB_INVAL);    /* not UTF-8 */
    RC(edb_column_set_itag(NULL, 2, 1, "a", 1, 0), EDB_INVAL);
    edb_update_cancel(c);
}

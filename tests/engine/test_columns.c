/* Batch column I/O (issue #14, ESE's JetRetrieveColumns / JetSetColumns):
 * edb_columns_get reads as edb_column_get would, entry by entry;
 * edb_columns_set is all or nothing. */
#include "config.h"

#include "helpers.h"

static char *dir;
static edb_env *env;
static edb_session *s;
static edb_cursor *c;
static void setup(void) { dir = make_tmpdir(); env = open_env(dir, 0); OK(edb_session_begin(&s, env)); }
static void teardown(void) { edb_cursor_close(c); c = NULL; edb_session_end(s); edb_env_close(env); rm_tree(dir); free(dir); LEAK_CHECK(); }

TestSuite(columns, .init = setup, .fini = teardown, .timeout = 30);

enum { C_ID = 1, C_NAME, C_QTY, C_TAGS, C_BLOB, C_NOTE, C_SEQ };

static void
make_table(void)
{
    edb_column_def cols[] = {
        { "id", EDB_COL_INT64, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "name", EDB_COL_TEXT, 0, 0, NULL, 0 },
        { "qty", EDB_COL_INT32, 0, 0, NULL, 0 },
        { "tags", EDB_COL_TEXT, EDB_COL_MULTIVALUED, 0, NULL, 0 },
        { "blob", EDB_COL_BINARY, 0, 0, NULL, 0 },
        { "note", EDB_COL_TEXT, 0, 5, NULL, 0 },
        { "seq", EDB_COL_INT64, EDB_COL_AUTOINC, 0, NULL, 0 },
    };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY } };
    edb_table_def def = { "t", cols, sizeof cols / sizeof cols[0], idx, 1 };
    OK(edb_table_create(s, &def));
    OK(edb_cursor_open(&c, s, "t"));
}

/* Insert (id, name, qty, tags...) with the one-column calls. */
static void
insert(int64_t id, const char *name, int32_t qty, const char *const *tags, size_t ntags)
{
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, C_ID, &id, 8, 0));
    if (name)
        OK(edb_column_set(c, C_NAME, name, strlen(name), 0));
    OK(edb_column_set(c, C_QTY, &qty, 4, 0));
    for (size_t i = 0; i < ntags; i++)
        OK(edb_column_set(c, C_TAGS, tags[i], strlen(tags[i]), EDB_SET_APPEND));
    OK(edb_update(c));
}

/* The values of column `tags` as one "a|b|c" string. */
static void
tags_of(char *out, size_t size)
{
    unsigned n;
    OK(edb_column_count(&n, c, C_TAGS));
    out[0] = '\0';
    for (unsigned i = 1; i <= n; i++) {
        char v[64];
        size_t got;
        OK(edb_column_get(c, C_TAGS, v, sizeof v - 1, &got, i));
        v[got] = '\0';
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i > 1 ? "|" : "", v);
    }
}

static void
seek_id(int64_t id)
{
    OK(edb_key_make(c, &id, 8, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
}

Test(columns, get_matches_column_get_entry_by_entry)
{
    make_table();
    const char *tags[] = { "red", "green", "blue" };
    insert(7, "seven", 77, tags, 3);
    seek_id(7);
    int64_t id = 0;
    int32_t qty = 0;
    char name[3], t2[16], t9[16], blob[8];
    edb_colval v[] = {
        { C_ID, 0, &id, 8, 99, 99 },
        { C_NAME, 0, name, sizeof name, 99, 99 },      /* truncated */
        { C_QTY, 1, &qty, 4, 99, 99 },
        { C_TAGS, 2, t2, sizeof t2, 99, 99 },          /* the second value */
        { C_TAGS, 9, t9, sizeof t9, 99, 99 },          /* no 9th value */
        { C_BLOB, 0, blob, sizeof blob, 99, 99 },      /* NULL */
        { C_NAME, 0, NULL, 0, 99, 99 },                /* size query */
    };
    size_t n = sizeof v / sizeof v[0];
    OK(edb_columns_get(c, v, n));
    cr_assert_eq(v[0].rc, 0); cr_assert_eq(v[0].actual, 8); cr_assert_eq(id, 7);
    cr_assert_eq(v[1].rc, EDB_WRN_TRUNCATED); cr_assert_eq(v[1].actual, 5);
    cr_assert(memcmp(name, "sev", 3) == 0);
    cr_assert_eq(v[2].rc, 0); cr_assert_eq(qty, 77);
    cr_assert_eq(v[3].rc, 0); cr_assert_eq(v[3].actual, 5); cr_assert(memcmp(t2, "green", 5) == 0);
    cr_assert_eq(v[4].rc, EDB_WRN_NULL); cr_assert_eq(v[4].actual, 0);
    cr_assert_eq(v[5].rc, EDB_WRN_NULL); cr_assert_eq(v[5].actual, 0);
    cr_assert_eq(v[6].rc, EDB_WRN_TRUNCATED); cr_assert_eq(v[6].actual, 5);
    /* the same answers as one call per column */
    for (size_t i = 0; i < n; i++) {
        char buf[64];
        size_t got = 12345;
        int rc = edb_column_get(c, v[i].col, v[i].size ? buf : NULL, v[i].size, &got, v[i].itag);
        cr_assert_eq(rc, v[i].rc, "entry %zu: %d against %d", i, v[i].rc, rc);
        cr_assert_eq(got, v[i].actual, "entry %zu", i);
        if (v[i].size)
            cr_assert(memcmp(buf, v[i].buf, got < v[i].size ? got : v[i].size) == 0, "entry %zu", i);
    }
}

Test(columns, get_entry_error_does_not_stop_the_others)
{
    make_table();
    insert(1, "one", 1, NULL, 0);
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    int32_t qty = 0;
    char name[8];
    edb_colval v[] = {
        { 4000, 0, name, sizeof name, 0, 0 },          /* no such column */
        { C_QTY, 0, &qty, 4, 0, 0 },
        { C_NAME, 0, NULL, 4, 0, 0 },                  /* NULL buf with a size */
        { C_NAME, 0, name, sizeof name, 0, 0 },
    };
    int rc = edb_columns_get(c, v, 4);
    cr_assert_lt(rc, 0);
    cr_assert_eq(rc, v[0].rc);
    cr_assert_eq(edb_error_last_code(), v[0].rc, "the first error's detail is kept");
    cr_assert_eq(v[1].rc, 0); cr_assert_eq(qty, 1);
    cr_assert_eq(v[2].rc, EDB_INVAL);
    cr_assert_eq(v[3].rc, 0); cr_assert_eq(v[3].actual, 3);
    cr_assert_eq(edb_columns_get(c, NULL, 1), EDB_INVAL);
    OK(edb_columns_get(c, NULL, 0));
}

Test(columns, get_without_a_record)
{
    make_table();
    int32_t qty;
    edb_colval v[2] = { { C_QTY, 0, &qty, 4, 0, 0 }, { C_ID, 0, &qty, 4, 0, 0 } };
    cr_assert_eq(edb_columns_get(c, v, 2), EDB_NOCURRENT);
    cr_assert_eq(v[0].rc, EDB_NOCURRENT);
    cr_assert_eq(v[1].rc, EDB_NOCURRENT);
    insert(1, "one", 1, NULL, 0);
    insert(2, "two", 2, NULL, 0);
    seek_id(2);
    edb_cursor *d;
    OK(edb_cursor_open(&d, s, "t"));
    OK(edb_cursor_move(d, EDB_MOVE_LAST));
    OK(edb_record_delete(d));
    edb_cursor_close(d);
    cr_assert_eq(edb_columns_get(c, v, 2), EDB_RECORD_DELETED);
    cr_assert_eq(v[0].rc, EDB_RECORD_DELETED);
    cr_assert_eq(v[1].rc, EDB_RECORD_DELETED);
}

Test(columns, get_reads_the_prepared_record_and_across_transactions)
{
    make_table();
    insert(1, "one", 1, NULL, 0);
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_txn_commit(s));
    /* the cursor kept its record past the transaction: read outside one */
    int32_t qty = 0;
    edb_colval v = { C_QTY, 0, &qty, 4, 0, 0 };
    OK(edb_columns_get(c, &v, 1));
    cr_assert_eq(qty, 1);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    int32_t q2 = 42;
    OK(edb_column_set(c, C_QTY, &q2, 4, 0));
    OK(edb_columns_get(c, &v, 1));
    cr_assert_eq(qty, 42, "the prepared value");
    edb_update_cancel(c);
    OK(edb_columns_get(c, &v, 1));
    cr_assert_eq(qty, 1);
}

Test(columns, set_then_read_back)
{
    make_table();
    int64_t id = 5;
    int32_t qty = 55;
    edb_colval w[] = {
        { C_ID, 0, &id, 8, 0, 0 },
        { C_NAME, 0, "five", 4, 0, 0 },
        { C_QTY, 1, &qty, 4, 0, 0 },
        { C_TAGS, 1, "a", 1, 0, 0 },       /* append: the column had 0 values */
        { C_TAGS, 2, "b", 1, 0, 0 },
        { C_TAGS, 3, "c", 1, 0, 0 },
        { C_BLOB, 0, "", 0, 0, 0 },        /* empty, not NULL */
    };
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_columns_set(c, w, sizeof w / sizeof w[0]));
    OK(edb_update(c));
    seek_id(5);
    char tags[64];
    tags_of(tags, sizeof tags);
    cr_assert_str_eq(tags, "a|b|c");
    char name[8];
    size_t got;
    OK(edb_column_get(c, C_NAME, name, sizeof name, &got, 0));
    cr_assert_eq(got, 4);
    cr_assert_eq(edb_column_get(c, C_BLOB, NULL, 0, &got, 0), 0, "empty, not NULL");
    cr_assert_eq(edb_column_get(c, C_NOTE, NULL, 0, &got, 0), EDB_WRN_NULL);
}

Test(columns, set_itags_replace_delete_append)
{
    make_table();
    const char *tags[] = { "a", "b", "c", "d" };
    insert(1, "one", 1, tags, 4);
    seek_id(1);
    char out[64];
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    edb_colval w[] = {
        { C_TAGS, 2, "BEE", 3, 0, 0 },     /* replace the 2nd */
        { C_TAGS, 1, NULL, 0, 0, 0 },      /* delete the 1st: BEE c d */
        { C_TAGS, 3, NULL, 0, 0, 0 },      /* delete the (new) 3rd: BEE c */
        { C_TAGS, 3, "e", 1, 0, 0 },       /* append: BEE c e */
        { C_TAGS, 4, NULL, 0, 0, 0 },      /* appending NULL adds nothing */
    };
    OK(edb_columns_set(c, w, sizeof w / sizeof w[0]));
    OK(edb_update(c));
    tags_of(out, sizeof out);
    cr_assert_str_eq(out, "BEE|c|e");
    /* deleting every value leaves the column NULL */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    edb_colval del[] = { { C_TAGS, 1, NULL, 0, 0, 0 }, { C_TAGS, 1, NULL, 0, 0, 0 }, { C_TAGS, 1, NULL, 0, 0, 0 } };
    OK(edb_columns_set(c, del, 3));
    OK(edb_update(c));
    size_t got;
    cr_assert_eq(edb_column_get(c, C_TAGS, NULL, 0, &got, 1), EDB_WRN_NULL);
    /* itag 0 replaces the whole column with one value */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    edb_colval one[] = { { C_TAGS, 1, "x", 1, 0, 0 }, { C_TAGS, 2, "y", 1, 0, 0 }, { C_TAGS, 0, "z", 1, 0, 0 } };
    OK(edb_columns_set(c, one, 3));
    OK(edb_update(c));
    tags_of(out, sizeof out);
    cr_assert_str_eq(out, "z");
}

/* Read every column of the prepared record into a string, to compare. */
static void
snapshot(char *out, size_t size)
{
    out[0] = '\0';
    for (edb_colid k = C_ID; k <= C_NOTE; k++) {
        unsigned n;
        OK(edb_column_count(&n, c, k));
        for (unsigned i = 1; i <= n; i++) {
            uint8_t v[64];
            size_t got;
            OK(edb_column_get(c, k, v, sizeof v, &got, i));
            size_t l = strlen(out);
            snprintf(out + l, size - l, "%u.%u:", k, i);
            for (size_t j = 0; j < got; j++) {
                l = strlen(out);
                snprintf(out + l, size - l, "%02x", v[j]);
            }
            l = strlen(out);
            snprintf(out + l, size - l, ";");
        }
    }
}

Test(columns, set_failing_half_way_leaves_nothing)
{
    make_table();
    const char *tags[] = { "a", "b" };
    insert(1, "one", 1, tags, 2);
    seek_id(1);
    char before[1024], after[1024];
    int32_t q = 9;
    int64_t seq = 3;
    /* each batch: good entries, then one the engine refuses */
    struct { edb_colval v[5]; size_t n; int rc; } bad[] = {
        { { { C_NAME, 0, "ONE", 3, 0, 0 }, { C_TAGS, 1, NULL, 0, 0, 0 }, { C_QTY, 0, &q, 3, 0, 0 } }, 3, EDB_INVAL },
        { { { C_QTY, 0, &q, 4, 0, 0 }, { C_TAGS, 1, "c", 1, 0, 0 }, { C_TAGS, 2, "d", 1, 0, 0 }, { C_NOTE, 0, "toolong", 7, 0, 0 } }, 4, EDB_TOOBIG },
        { { { C_TAGS, 0, "x", 1, 0, 0 }, { C_TAGS, 3, "y", 1, 0, 0 } }, 2, EDB_INVAL },   /* z only has 1 */
        { { { C_NAME, 0, "two", 3, 0, 0 }, { C_NAME, 2, "two", 3, 0, 0 } }, 2, EDB_INVAL }, /* single-valued */
        { { { C_NAME, 0, "\xff\xfe", 2, 0, 0 } }, 1, EDB_INVAL },                         /* not UTF-8 */
        { { { C_QTY, 0, &q, 4, 0, 0 }, { 100, 0, "x", 1, 0, 0 } }, 2, EDB_NOTFOUND },
        { { { C_QTY, 0, &q, 4, 0, 0 }, { C_SEQ, 0, &seq, 8, 0, 0 } }, 2, EDB_INVAL },     /* AUTOINC */
        { { { C_QTY, 0, &q, 4, 0, 0 }, { C_NAME, 0, NULL, 2, 0, 0 } }, 2, EDB_INVAL },
    };
    for (int mode = 0; mode < 2; mode++) {
        OK(edb_update_prepare(c, mode ? EDB_PREP_INSERT : EDB_PREP_REPLACE));
        if (mode) {
            int64_t id = 2;
            OK(edb_column_set(c, C_ID, &id, 8, 0));
            OK(edb_column_set(c, C_TAGS, "p", 1, EDB_SET_APPEND));
        }
        snapshot(before, sizeof before);
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            cr_assert_eq(edb_columns_set(c, bad[b].v, bad[b].n), bad[b].rc, "mode %d batch %zu: %s", mode, b,
                         edb_error_last());
            snapshot(after, sizeof after);
            cr_assert_str_eq(after, before, "mode %d batch %zu changed the prepared record", mode, b);
        }
        OK(edb_update(c));
    }
    seek_id(1);
    snapshot(after, sizeof after);
    char tags_s[64];
    tags_of(tags_s, sizeof tags_s);
    cr_assert_str_eq(tags_s, "a|b");
    cr_assert_eq(edb_columns_set(c, bad[0].v, 1), EDB_NOUPDATE);
    cr_assert_eq(edb_columns_set(NULL, bad[0].v, 1), EDB_INVAL);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    cr_assert_eq(edb_columns_set(c, NULL, 1), EDB_INVAL);
    OK(edb_columns_set(c, NULL, 0));
    edb_update_cancel(c);
}

/* Random batches against a model: the column values after edb_columns_set
 * equal those the same entries give applied one by one to a list. */
Test(columns, set_random_batches_match_a_model)
{
    make_table();
    insert(1, "one", 1, NULL, 0);
    seek_id(1);
    int scale = getenv("EDB_TEST_SCALE") ? atoi(getenv("EDB_TEST_SCALE")) : 10;
    if (scale < 1)
        scale = 1;
    unsigned seed = 12;
    char model[16][8];
    unsigned nm = 0;
    for (int round = 0; round < 20 * scale; round++) {
        OK(edb_update_prepare(c, EDB_PREP_REPLACE));
        edb_colval w[6];
        char vals[6][8];
        char next[16][8];
        unsigned nn = nm;
        memcpy(next, model, sizeof model);
        size_t n = 1 + (size_t)(rand_r(&seed) % 6);
        bool fail = false;
        for (size_t i = 0; i < n; i++) {
            snprintf(vals[i], sizeof vals[i], "v%d", rand_r(&seed) % 100);
            unsigned itag = (unsigned)(rand_r(&seed) % (nn + (nn >= 10 ? 1 : 3)));  /* at most 10 values */
            bool null = rand_r(&seed) % 4 == 0;
            w[i] = (edb_colval){ C_TAGS, itag, null ? NULL : vals[i], null ? 0 : strlen(vals[i]), 0, 0 };
            if (itag == 0) {
                nn = null ? 0 : 1;
                if (!null)
                    strcpy(next[0], vals[i]);
            } else if (itag <= nn && null) {
                memmove(next[itag - 1], next[itag], (nn - itag) * sizeof next[0]);
                nn--;
            } else if (itag <= nn) {
                strcpy(next[itag - 1], vals[i]);
            } else if (itag == nn + 1 && !null) {
                strcpy(next[nn++], vals[i]);
            } else if (itag == nn + 1 && null) {
                /* nothing */
            } else {
                fail = true;
                break;
            }
        }
        int rc = edb_columns_set(c, w, n);
        if (fail) {
            cr_assert_eq(rc, EDB_INVAL, "round %d", round);
        } else {
            cr_assert_eq(rc, 0, "round %d: %s", round, edb_error_last());
            nm = nn;
            memcpy(model, next, sizeof model);
        }
        OK(edb_update(c));
        char got[256], want[256] = "";
        tags_of(got, sizeof got);
        for (unsigned i = 0; i < nm; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", i ? "|" : "", model[i]);
        cr_assert_str_eq(got, want, "round %d", round);
    }
}

/* Someone else's schema change under the cursor: a column added by another
 * session reads as NULL (or its default) in old records, and a dropped table
 * gives every entry the cursor's error. */
Test(columns, schema_changes_under_the_cursor)
{
    make_table();
    insert(1, "one", 1, NULL, 0);
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    edb_session *s2;
    OK(edb_session_begin(&s2, env));
    static const int32_t seven = 7;
    edb_column_def extra = { "extra", EDB_COL_INT32, 0, 0, &seven, 4 };
    OK(edb_column_add(s2, "t", &extra));
    edb_colid xid = C_SEQ + 1;
    int32_t x = 0, qty = 0;
    edb_colval v[2] = { { xid, 0, &x, 4, 0, 0 }, { C_QTY, 0, &qty, 4, 0, 0 } };
    OK(edb_columns_get(c, v, 2));
    cr_assert_eq(v[0].rc, 0, "%d", v[0].rc);
    cr_assert_eq(x, 7, "the default of a column the record predates");
    cr_assert_eq(qty, 1);
    /* set the new column in a batch, with an old one */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    int32_t x2 = 8, q2 = 2;
    edb_colval w[2] = { { xid, 0, &x2, 4, 0, 0 }, { C_QTY, 0, &q2, 4, 0, 0 } };
    OK(edb_columns_set(c, w, 2));
    OK(edb_update(c));
    OK(edb_columns_get(c, v, 2));
    cr_assert_eq(x, 8);
    cr_assert_eq(qty, 2);
    OK(edb_table_drop(s2, "t"));
    edb_session_end(s2);
    int rc = edb_columns_get(c, v, 2);
    cr_assert_lt(rc, 0);
    cr_assert_eq(v[0].rc, rc);
    cr_assert_eq(v[1].rc, rc);
    cr_assert_eq(edb_update_prepare(c, EDB_PREP_INSERT) < 0 || edb_columns_set(c, w, 2) < 0, true);
    edb_update_cancel(c);
}

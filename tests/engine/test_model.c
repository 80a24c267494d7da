/* Index exactness: a random insert/replace/delete workload (with nested and
 * rolled-back transactions and unique violations) checked against an
 * in-memory model after every batch: every index walks exactly the rows the
 * model says, in the model's order, and a failed update changes nothing. */
#include "config.h"

#include "helpers.h"

#define NID 120

typedef struct row { bool present; int32_t a; bool a_null; char b[8]; bool b_null; int32_t u; bool u_null; } row;
static row model[NID], saved[NID];

static char *dir;
static edb_env *env;
static edb_session *s;
static edb_cursor *c;
static unsigned seed = 12345;

static unsigned
rnd(unsigned n)
{
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) % n;
}

static void
setup(void)
{
    dir = make_tmpdir();
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    edb_column_def cols[] = {
        { "id", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "a", EDB_COL_INT32, 0, 0, NULL, 0 },
        { "b", EDB_COL_TEXT, 0, 7, NULL, 0 },
        { "u", EDB_COL_INT32, 0, 0, NULL, 0 },
    };
    edb_index_def idx[] = {
        { "pk", "+id\0", EDB_IDX_PRIMARY },
        { "a", "+a\0", 0 },
        { "bd", "-b\0+a\0", 0 },
        { "u", "+u\0", EDB_IDX_UNIQUE | EDB_IDX_IGNORE_NULL },
    };
    edb_table_def def = { "m", cols, 4, idx, 4 };
    OK(edb_table_create(s, &def));
    OK(edb_cursor_open(&c, s, "m"));
    memset(model, 0, sizeof model);
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

TestSuite(model, .init = setup, .fini = teardown, .timeout = 120);

static void
random_values(row *r)
{
    r->a_null = rnd(5) == 0;
    r->a = (int32_t)rnd(7) - 3;
    r->b_null = rnd(6) == 0;
    int len = (int)rnd(4);
    for (int i = 0; i < len; i++)
        r->b[i] = (char)('a' + rnd(3));
    r->b[len] = '\0';
    r->u_null = rnd(2) == 0;
    r->u = (int32_t)rnd(80);
}

static void
set_values(const row *r, int32_t id)
{
    OK(edb_column_set(c, 1, &id, 4, 0));
    OK(r->a_null ? edb_column_set(c, 2, NULL, 0, 0) : edb_column_set(c, 2, &r->a, 4, 0));
    OK(r->b_null ? edb_column_set(c, 3, NULL, 0, 0) : edb_column_set(c, 3, r->b, strlen(r->b), 0));
    OK(r->u_null ? edb_column_set(c, 4, NULL, 0, 0) : edb_column_set(c, 4, &r->u, 4, 0));
}

/* Would row r at id clash with a unique key of another row? */
static bool
clashes(const row *r, int32_t id, int32_t except)
{
    if (model[id].present && id != except)
        return true;
    if (r->u_null)
        return false;
    for (int i = 0; i < NID; i++)
        if (i != except && model[i].present && !model[i].u_null && model[i].u == r->u)
            return true;
    return false;
}

static bool
seek_id(int32_t id)
{
    OK(edb_cursor_set_index(c, NULL));
    OK(edb_key_make(c, &id, 4, EDB_KEY_NEW));
    int rc = edb_cursor_seek(c, EDB_SEEK_EQ);
    cr_assert(rc == 0 || rc == EDB_NOTFOUND, "%s", edb_error_last());
    return rc == 0;
}

static void
one_op(void)
{
    int32_t id = (int32_t)rnd(NID);
    unsigned op = rnd(10);
    row r = { 0 };
    random_values(&r);
    r.present = true;
    if (op < 5) {                                   /* insert */
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        set_values(&r, id);
        int rc = edb_update(c);
        if (clashes(&r, id, -1)) {
            cr_assert_eq(rc, EDB_KEYDUP, "insert %d: %s", id, edb_err_name(rc));
            edb_update_cancel(c);
        } else {
            cr_assert_eq(rc, 0, "insert %d: %s", id, edb_error_last());
            model[id] = r;
        }
    } else if (op < 8) {                            /* replace, maybe moving the row */
        bool have = seek_id(id);
        cr_assert_eq(have, model[id].present);
        if (!have)
            return;
        int32_t to = rnd(4) == 0 ? (int32_t)rnd(NID) : id;
        OK(edb_update_prepare(c, EDB_PREP_REPLACE));
        set_values(&r, to);
        int rc = edb_update(c);
        if (clashes(&r, to, id)) {
            cr_assert_eq(rc, EDB_KEYDUP, "replace %d->%d: %s", id, to, edb_err_name(rc));
            edb_update_cancel(c);
        } else {
            cr_assert_eq(rc, 0, "replace %d->%d: %s", id, to, edb_error_last());
            model[id].present = false;
            model[to] = r;
        }
    } else {                                        /* delete */
        bool have = seek_id(id);
        cr_assert_eq(have, model[id].present);
        if (have) {
            OK(edb_record_delete(c));
            model[id].present = false;
        }
    }
}

/* Compare two rows in index order; ties by id. */
static int
cmp_index(const char *index, int32_t x, int32_t y)
{
    const row *p = &model[x], *q = &model[y];
    int r = 0;
    if (strcmp(index, "a") == 0) {
        r = p->a_null != q->a_null ? (p->a_null ? -1 : 1) : p->a_null ? 0 : (p->a > q->a) - (p->a < q->a);
    } else if (strcmp(index, "u") == 0) {
        r = (p->u > q->u) - (p->u < q->u);
    } else if (strcmp(index, "bd") == 0) {
        /* descending b (NULL still first, key.c); then ascending a, NULL first */
        if (p->b_null != q->b_null)
            r = p->b_null ? -1 : 1;
        else if (!p->b_null)
            r = -strcmp(p->b, q->b);
        if (r == 0)
            r = p->a_null != q->a_null ? (p->a_null ? -1 : 1)
                                       : p->a_null ? 0 : (p->a > q->a) - (p->a < q->a);
    }
    return r != 0 ? r : (x > y) - (x < y);
}

static void
check_index(const char *index)
{
    int32_t want[NID];
    int n = 0;
    for (int32_t i = 0; i < NID; i++)
        if (model[i].present && !(strcmp(index, "u") == 0 && model[i].u_null))
            want[n++] = i;
    for (int i = 1; i < n; i++)        /* insertion sort by index order */
        for (int j = i; j > 0 && cmp_index(index, want[j - 1], want[j]) > 0; j--) {
            int32_t t = want[j]; want[j] = want[j - 1]; want[j - 1] = t;
        }
    OK(edb_cursor_set_index(c, strcmp(index, "pk") == 0 ? NULL : index));
    int got = 0;
    while (edb_cursor_move(c, EDB_MOVE_NEXT) == 0) {
        int32_t id;
        OK(edb_column_get(c, 1, &id, 4, NULL, 0));
        cr_assert_lt(got, n, "index %s has more entries than rows", index);
        cr_assert_eq(id, want[got], "index %s entry %d: id %d, want %d", index, got, id, want[got]);
        got++;
    }
    cr_assert_eq(got, n, "index %s: %d entries, want %d", index, got, n);
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, "m", strcmp(index, "pk") == 0 ? NULL : index));
    cr_assert_eq(st.entries, (uint64_t)n, "index %s: %llu entries", index, (unsigned long long)st.entries);
}

static void
check_all(void)
{
    check_index("pk");
    check_index("a");
    check_index("bd");
    check_index("u");
}

Test(model, random_workload_keeps_every_index_exact)
{
    for (int batch = 0; batch < 40; batch++) {
        unsigned kind = rnd(4);
        if (kind == 0) {                         /* implicit txns */
            for (int i = 0; i < 25; i++)
                one_op();
        } else if (kind == 1) {                  /* committed txn with a rolled back nested level */
            OK(edb_txn_begin(s, 0));
            for (int i = 0; i < 20; i++)
                one_op();
            memcpy(saved, model, sizeof model);
            OK(edb_txn_begin(s, 0));
            for (int i = 0; i < 20; i++)
                one_op();
            OK(edb_txn_rollback(s));
            memcpy(model, saved, sizeof model);
            OK(edb_txn_commit(s));
        } else if (kind == 2) {                  /* rolled back txn */
            memcpy(saved, model, sizeof model);
            OK(edb_txn_begin(s, 0));
            for (int i = 0; i < 25; i++)
                one_op();
            check_all();                         /* inside: sees its own writes */
            OK(edb_txn_rollback(s));
            memcpy(model, saved, sizeof model);
        } else {                                 /* committed nested levels */
            OK(edb_txn_begin(s, 0));
            OK(edb_txn_begin(s, 0));
            for (int i = 0; i < 25; i++)
                one_op();
            OK(edb_txn_commit(s));
            OK(edb_txn_commit(s));
        }
        check_all();
    }
}

Test(model, failed_update_changes_nothing)
{
    row r = { .present = true, .a = 1, .b = "x", .u = 5 };
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    set_values(&r, 1);
    OK(edb_update(c));
    model[1] = r;
    row r2 = { .present = true, .a = 2, .b = "y", .u = 6 };
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    set_values(&r2, 2);
    OK(edb_update(c));
    model[2] = r2;
    /* an insert that passes the primary and a/bd but hits u: nothing written */
    row bad = { .present = true, .a = 3, .b = "z", .u = 5 };
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    set_values(&bad, 3);
    RC(edb_update(c), EDB_KEYDUP);
    cr_assert(strstr(edb_error_last(), "'u'") != NULL, "%s", edb_error_last());
    /* still prepared: fix the value and retry */
    OK(edb_column_set(c, 4, &(int32_t){ 7 }, 4, 0));
    OK(edb_update(c));
    bad.u = 7;
    model[3] = bad;
    check_all();
    /* a replace that hits u leaves the old entries */
    seek_id(2);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 2, &(int32_t){ 9 }, 4, 0));
    OK(edb_column_set(c, 4, &(int32_t){ 7 }, 4, 0));
    RC(edb_update(c), EDB_KEYDUP);
    edb_update_cancel(c);
    check_all();
    /* a too-long text is refused at set time, a too-long key at update */
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    RC(edb_column_set(c, 3, "12345678", 8, 0), EDB_TOOBIG);
    edb_update_cancel(c);
    check_all();
}

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
        /* descending b (NULL last, as ESE: key.c); then ascending a, NULL first */
        if (p->b_null != q->b_null)
            r = p->b_null ? 1 : -1;
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

/* ---------------------------------------------------------------- seeks */

#include "key.h"

typedef struct entry { uint8_t k[64]; size_t len; int32_t id; uint8_t pk[8]; size_t pklen; } entry;

static int
bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int r = n ? memcmp(a, b, n) : 0;
    return r != 0 ? r : (alen > blen) - (alen < blen);
}

static int
entry_cmp(const void *x, const void *y)
{
    const entry *a = x, *b = y;
    int r = bytes_cmp(a->k, a->len, b->k, b->len);
    return r != 0 ? r : bytes_cmp(a->pk, a->pklen, b->pk, b->pklen);
}

/* Encode the segments of index "bd" (-b, +a) or "a" (+a) for row r. */
static void
encode(const char *index, const row *r, int nseg, uint8_t *out, size_t *len)
{
    *len = 0;
    if (strcmp(index, "a") == 0) {
        OK(edb__key_append(out, 64, len, EDB_COL_INT32, r->a_null ? NULL : &r->a, r->a_null ? 0 : 4, false));
        return;
    }
    OK(edb__key_append(out, 64, len, EDB_COL_TEXT, r->b_null ? NULL : r->b, r->b_null ? 0 : strlen(r->b), true));
    if (nseg > 1)
        OK(edb__key_append(out, 64, len, EDB_COL_INT32, r->a_null ? NULL : &r->a, r->a_null ? 0 : 4, false));
}

/* What a seek must find, from the sorted entries: index of the entry, -1
 * (none) or -2 (EDB_INVAL).  @pend: k is a PREFIX_END key (its successor),
 * which lies before an entry equal to it: LE is LT, GT is GE, EQ is refused. */
static int
expect(const entry *e, int n, const uint8_t *k, size_t klen, unsigned how, bool pend)
{
    if (pend && how == EDB_SEEK_EQ)
        return -2;
    if (pend)
        how = how == EDB_SEEK_LE ? EDB_SEEK_LT : how == EDB_SEEK_GT ? EDB_SEEK_GE : how;
    int first_ge = n, first_gt = n;
    for (int i = n - 1; i >= 0; i--) {
        if (bytes_cmp(e[i].k, e[i].len, k, klen) >= 0)
            first_ge = i;
        if (bytes_cmp(e[i].k, e[i].len, k, klen) > 0)
            first_gt = i;
    }
    switch (how) {
    case EDB_SEEK_GE: return first_ge < n ? first_ge : -1;
    case EDB_SEEK_GT: return first_gt < n ? first_gt : -1;
    case EDB_SEEK_LT: return first_ge - 1;
    case EDB_SEEK_LE: return first_gt - 1;
    default:
        return first_ge < n && e[first_ge].len >= klen && memcmp(e[first_ge].k, k, klen) == 0 ? first_ge : -1;
    }
}

Test(model, seeks_agree_with_a_sorted_model)
{
    /* a few hundred random rows */
    for (int i = 0; i < 400; i++)
        one_op();
    static const char *const indexes[] = { "a", "bd" };
    entry e[NID];
    for (int ix = 0; ix < 2; ix++) {
        const char *index = indexes[ix];
        int n = 0;
        for (int32_t id = 0; id < NID; id++) {
            if (!model[id].present)
                continue;
            encode(index, &model[id], 2, e[n].k, &e[n].len);
            e[n].id = id;
            e[n].pklen = 0;
            OK(edb__key_append(e[n].pk, 8, &e[n].pklen, EDB_COL_INT32, &id, 4, false));
            n++;
        }
        qsort(e, (size_t)n, sizeof e[0], entry_cmp);
        OK(edb_cursor_set_index(c, index));
        for (int trial = 0; trial < 300; trial++) {
            row q = { 0 };
            random_values(&q);
            int nseg = strcmp(index, "bd") == 0 ? 1 + (int)rnd(2) : 1;
            bool pend = rnd(4) == 0;
            unsigned how = 1 + rnd(5);
            uint8_t k[64];
            size_t klen;
            encode(index, &q, nseg, k, &klen);
            if (pend && edb__key_successor(k, &klen) != 0)
                continue;
            /* the same key through the public API */
            if (strcmp(index, "a") == 0) {
                OK(edb_key_make(c, q.a_null ? NULL : &q.a, q.a_null ? 0 : 4,
                                EDB_KEY_NEW | (pend ? EDB_KEY_PREFIX_END : 0)));
            } else {
                OK(edb_key_make(c, q.b_null ? NULL : q.b, q.b_null ? 0 : strlen(q.b),
                                EDB_KEY_NEW | (pend && nseg == 1 ? EDB_KEY_PREFIX_END : 0)));
                if (nseg == 2)
                    OK(edb_key_make(c, q.a_null ? NULL : &q.a, q.a_null ? 0 : 4,
                                    pend ? EDB_KEY_PREFIX_END : 0));
            }
            int want = expect(e, n, k, klen, how, pend);
            int rc = edb_cursor_seek(c, how);
            if (want == -2) {
                cr_assert_eq(rc, EDB_INVAL, "index %s: SEEK_EQ with a PREFIX_END key: %s", index,
                             edb_err_name(rc));
                continue;
            }
            if (want < 0) {
                cr_assert_eq(rc, EDB_NOTFOUND, "index %s seek %u (nseg %d, pend %d): found a row, want none",
                             index, how, nseg, pend);
                continue;
            }
            cr_assert_eq(rc, 0, "index %s seek %u (nseg %d, pend %d): %s, want id %d", index, how,
                         nseg, pend, edb_err_name(rc), e[want].id);
            int32_t id;
            OK(edb_column_get(c, 1, &id, 4, NULL, 0));
            cr_assert_eq(id, e[want].id, "index %s seek %u (nseg %d, pend %d): id %d, want %d",
                         index, how, nseg, pend, id, e[want].id);
            /* and walking on from there matches the model too */
            if (want + 1 < n) {
                OK(edb_cursor_move(c, EDB_MOVE_NEXT));
                OK(edb_column_get(c, 1, &id, 4, NULL, 0));
                cr_assert_eq(id, e[want + 1].id);
            }
        }
    }
}

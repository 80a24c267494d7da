/* edb_column_get_from_index (ESE's JET_bitRetrieveFromIndex, issue #14): a
 * column's value decoded from the current index entry, not read from the
 * record.  Checked against edb_column_get for every column type as an
 * ascending and a descending segment, multi-segment keys with NULLs, one
 * entry per value of a multi-valued column, a prepared update (which
 * edb_column_get sees and the entry does not), and the refusals: a column
 * outside the index, the implicit key, a collated or tuple segment, no
 * current entry, an entry deleted by another session. */
#include "config.h"

#include <math.h>

#include "helpers.h"

static char *dir;
static edb_env *env;
static edb_session *s;
static edb_cursor *c;

static unsigned
scaled(unsigned n)
{
    return test_scaled_min(n, 2);
}

static void
setup(void)
{
    dir = make_tmpdir();
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    c = NULL;
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

TestSuite(fromindex, .init = setup, .fini = teardown, .timeout = 60);

/* ------------------------------------------------------------ every type */

#define NTYPES 14
static const edb_coltype types[NTYPES] = {
    EDB_COL_BOOL, EDB_COL_INT8, EDB_COL_INT16, EDB_COL_INT32, EDB_COL_INT64,
    EDB_COL_UINT8, EDB_COL_UINT16, EDB_COL_UINT32, EDB_COL_UINT64, EDB_COL_FLOAT,
    EDB_COL_DOUBLE, EDB_COL_DATETIME, EDB_COL_GUID, EDB_COL_TEXT,
};
/* BINARY is the 15th column: 13 + 1 secondary indexes + the primary fit
 * EDB_MAX_INDEXES only when BINARY shares an index (see below). */

static uint64_t
lcg(uint64_t *st)
{
    *st = *st * 6364136223846793005ull + 1442695040888963407ull;
    return *st >> 11 ^ *st << 29;
}

/* Value @i of type @t into v (native form); returns its size; 0 with
 * *null set for the rows that leave the column NULL. */
static size_t
value_of(edb_coltype t, unsigned i, uint8_t *v, bool *null)
{
    uint64_t st = i * 977u + (unsigned)t;
    *null = i % 7 == 3;
    uint64_t r = lcg(&st);
    switch (t) {
    case EDB_COL_BOOL: v[0] = (uint8_t)(i & 1); return 1;
    case EDB_COL_INT8: case EDB_COL_UINT8: memcpy(v, &r, 1); return 1;
    case EDB_COL_INT16: case EDB_COL_UINT16: memcpy(v, &r, 2); return 2;
    case EDB_COL_INT32: case EDB_COL_UINT32: memcpy(v, &r, 4); return 4;
    case EDB_COL_INT64: case EDB_COL_UINT64: case EDB_COL_DATETIME: memcpy(v, &r, 8); return 8;
    case EDB_COL_FLOAT: { float f = ((float)(int)(r % 20001) - 10000.0f) / 7.0f;
        if (f == 0.0f) f = 1.0f;        /* never -0.0 */
        memcpy(v, &f, 4); return 4; }
    case EDB_COL_DOUBLE: { double d = ((double)(int64_t)(r % 2000001) - 1000000.0) / 3.0 * 1e100;
        if (d == 0.0) d = 1.0;
        memcpy(v, &d, 8); return 8; }
    case EDB_COL_GUID: memcpy(v, &r, 8); r = lcg(&st); memcpy(v + 8, &r, 8); return 16;
    case EDB_COL_TEXT: return (size_t)sprintf((char *)v, "t\xc3\xa9%llu\xe2\x82\xac", (unsigned long long)(r % 100000));
    case EDB_COL_BINARY: {  /* bytes the key escapes: 0x00 and 0xFF */
        size_t n = i % 9;
        for (size_t j = 0; j < n; j++)
            v[j] = (uint8_t)(j % 3 == 0 ? 0x00 : j % 3 == 1 ? 0xFF : lcg(&st));
        return n; }
    }
    return 0;
}

/* Table @name: id INT32 primary, c1..c14 of types[], c15 BINARY; one index
 * per column ("x1".."x14", the 14th on c14 then c15) in direction @dir. */
static void
make_typed(const char *name, char way)
{
    edb_column_def cols[NTYPES + 2];
    static char cname[NTYPES + 2][8], key[NTYPES][16], iname[NTYPES][8];
    cols[0] = (edb_column_def){ "id", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0, NULL };
    for (int i = 1; i <= NTYPES + 1; i++) {
        snprintf(cname[i], sizeof cname[i], "c%d", i);
        cols[i] = (edb_column_def){ cname[i], i <= NTYPES ? types[i - 1] : EDB_COL_BINARY, 0, 0,
                                    NULL, 0, NULL };
    }
    edb_index_def idx[NTYPES + 1];
    idx[0] = (edb_index_def){ .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY };
    for (int i = 1; i <= NTYPES; i++) {
        snprintf(iname[i - 1], sizeof iname[i - 1], "x%d", i);
        int n = snprintf(key[i - 1], sizeof key[i - 1], "%cc%d", way, i);
        if (i == NTYPES)    /* "+c14\0+c15\0" */
            snprintf(key[i - 1] + n + 1, sizeof key[i - 1] - (size_t)n - 1, "%cc15", way);
        idx[i] = (edb_index_def){ .name = iname[i - 1], .key = key[i - 1] };
    }
    edb_table_def def = { name, cols, NTYPES + 2, idx, NTYPES + 1 };
    OK(edb_table_create(s, &def));
    edb_cursor *w;
    OK(edb_cursor_open(&w, s, name));
    OK(edb_txn_begin(s, 0));
    unsigned n = scaled(60);
    for (unsigned i = 0; i < n; i++) {
        int32_t id = (int32_t)i;
        OK(edb_update_prepare(w, EDB_PREP_INSERT));
        OK(edb_column_set(w, 1, &id, 4, 0));
        for (int col = 2; col <= NTYPES + 2; col++) {
            uint8_t v[64];
            bool null;
            size_t sz = value_of(cols[col - 1].type, i, v, &null);
            if (!null)
                OK(edb_column_set(w, (edb_colid)col, v, sz, 0));
        }
        OK(edb_update(w));
    }
    OK(edb_txn_commit(s));
    edb_cursor_close(w);
}

/* Walk every secondary index of @name: each entry's segments read from the
 * index equal the record's values; returns the entries seen. */
static unsigned
check_typed(const char *name)
{
    OK(edb_cursor_open(&c, s, name));
    unsigned seen = 0;
    for (int i = 1; i <= NTYPES; i++) {
        char iname[8];
        snprintf(iname, sizeof iname, "x%d", i);
        OK(edb_cursor_set_index(c, iname));
        int rc = edb_cursor_move(c, EDB_MOVE_FIRST);
        for (; rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
            for (edb_colid col = (edb_colid)i + 1; col <= (i == NTYPES ? NTYPES + 2 : (unsigned)i + 1); col++) {
                uint8_t a[64], b[64];
                size_t na = 99, nb = 99;
                int ra = edb_column_get(c, col, a, sizeof a, &na, 0);
                int rb = edb_column_get_from_index(c, col, b, sizeof b, &nb);
                cr_assert_eq(rb, ra, "index %s column %u: %s, record %s (%s)", iname, col,
                             edb_err_name(rb), edb_err_name(ra), edb_error_last());
                cr_assert_eq(nb, na, "index %s column %u: size %zu, record %zu", iname, col, nb, na);
                cr_assert(memcmp(a, b, na) == 0, "index %s column %u: another value", iname, col);
                seen++;
            }
        }
        RC(rc, EDB_NOTFOUND);
    }
    return seen;
}

Test(fromindex, every_type_ascending)
{
    make_typed("a", '+');
    cr_assert_eq(check_typed("a"), (NTYPES + 1) * scaled(60));
}

Test(fromindex, every_type_descending)
{
    make_typed("d", '-');
    cr_assert_eq(check_typed("d"), (NTYPES + 1) * scaled(60));
}

/* Sizes as edb_column_get reports them: a short buffer is truncated, a NULL
 * buffer of size 0 asks for the size; a NULL buffer with a size is refused. */
Test(fromindex, truncation_and_size_query)
{
    make_typed("a", '+');
    OK(edb_cursor_open(&c, s, "a"));
    OK(edb_cursor_set_index(c, "x14"));
    OK(edb_cursor_move(c, EDB_MOVE_LAST));     /* TEXT not NULL: NULLs sort first */
    char full[64], part[3];
    size_t n = 0, m = 0;
    OK(edb_column_get_from_index(c, 15, full, sizeof full, &n));
    cr_assert(n > 3);
    RC(edb_column_get_from_index(c, 15, part, sizeof part, &m), EDB_WRN_TRUNCATED);
    cr_assert_eq(m, n);
    cr_assert(memcmp(part, full, 3) == 0);
    m = 0;
    RC(edb_column_get_from_index(c, 15, NULL, 0, &m), EDB_WRN_TRUNCATED);
    cr_assert_eq(m, n);
    RC(edb_column_get_from_index(c, 15, NULL, 4, &m), EDB_INVAL);
    /* a fixed-size type with a short buffer */
    OK(edb_cursor_set_index(c, "x5"));
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    int64_t want, got = 0;              /* x5 is on c5, colid 6: INT64 */
    OK(edb_column_get(c, 6, &want, 8, NULL, 0));
    RC(edb_column_get_from_index(c, 6, &got, 4, &m), EDB_WRN_TRUNCATED);
    cr_assert_eq(m, 8);
    cr_assert(memcmp(&got, &want, 4) == 0);
}

/* ------------------------------------------------------------ several segments */

/* t(k INT32 primary, a INT32, b TEXT, c BINARY), index "m" = +a -b +c with
 * NULLs anywhere, and "h" = the same with EDB_IDX_SORT_NULLS_HIGH. */
Test(fromindex, multi_segment_with_nulls)
{
    edb_column_def cols[] = {
        { "k", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0, NULL },
        { "a", EDB_COL_INT32, 0, 0, NULL, 0, NULL },
        { "b", EDB_COL_TEXT, 0, 0, NULL, 0, NULL },
        { "c", EDB_COL_BINARY, 0, 0, NULL, 0, NULL },
    };
    edb_index_def idx[] = {
        { .name = "pk", .key = "+k\0", .flags = EDB_IDX_PRIMARY },
        { .name = "m", .key = "+a\0-b\0+c\0" },
        { .name = "h", .key = "+a\0-b\0+c\0", .flags = EDB_IDX_SORT_NULLS_HIGH },
    };
    edb_table_def def = { "t", cols, 4, idx, 3 };
    OK(edb_table_create(s, &def));
    OK(edb_cursor_open(&c, s, "t"));
    unsigned n = scaled(40);
    OK(edb_txn_begin(s, 0));
    for (unsigned i = 0; i < n; i++) {
        int32_t k = (int32_t)i, a = (int32_t)(i % 5) - 2;
        char b[16];
        uint8_t bin[3] = { (uint8_t)i, 0x00, 0xFF };
        int bl = snprintf(b, sizeof b, "b%u", i % 4);
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &k, 4, 0));
        if (i % 3 != 0)
            OK(edb_column_set(c, 2, &a, 4, 0));
        if (i % 4 != 1)
            OK(edb_column_set(c, 3, b, (size_t)bl, 0));
        if (i % 5 != 2)
            OK(edb_column_set(c, 4, bin, i % 3, 0));
        OK(edb_update(c));
    }
    OK(edb_txn_commit(s));
    const char *names[] = { "m", "h" };
    for (int ix = 0; ix < 2; ix++) {
        OK(edb_cursor_set_index(c, names[ix]));
        unsigned seen = 0, nulls = 0;
        for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
            for (edb_colid col = 2; col <= 4; col++) {
                uint8_t x[32], y[32];
                size_t nx = 99, ny = 99;
                int rx = edb_column_get(c, col, x, sizeof x, &nx, 0);
                int ry = edb_column_get_from_index(c, col, y, sizeof y, &ny);
                cr_assert_eq(ry, rx, "%s col %u: %s, record %s", names[ix], col, edb_err_name(ry),
                             edb_err_name(rx));
                cr_assert_eq(ny, nx);
                cr_assert(memcmp(x, y, nx) == 0);
                nulls += ry == EDB_WRN_NULL;
            }
            /* the primary key is not a segment of "m" */
            RC(edb_column_get_from_index(c, 1, NULL, 0, NULL), EDB_INVAL);
            seen++;
        }
        cr_assert_eq(seen, n);
        cr_assert(nulls > 0);
    }
}

/* ------------------------------------------------------------ multi-valued */

/* An index over a multi-valued column has one entry per value: each entry
 * gives its own value, which edb_column_get (the record) cannot tell. */
Test(fromindex, multivalued_entry_gives_its_value)
{
    edb_column_def cols[] = {
        { "k", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0, NULL },
        { "tags", EDB_COL_TEXT, EDB_COL_MULTIVALUED, 0, NULL, 0, NULL },
    };
    edb_index_def idx[] = {
        { .name = "pk", .key = "+k\0", .flags = EDB_IDX_PRIMARY },
        { .name = "by_tag", .key = "-tags\0+k\0" },
    };
    edb_table_def def = { "t", cols, 2, idx, 2 };
    OK(edb_table_create(s, &def));
    OK(edb_cursor_open(&c, s, "t"));
    unsigned n = scaled(20) < 8 ? 8 : scaled(20);     /* record 3 must exist */
    OK(edb_txn_begin(s, 0));
    for (unsigned i = 0; i < n; i++) {
        int32_t k = (int32_t)i;
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &k, 4, 0));
        for (unsigned j = 0; j < i % 4; j++) {
            char v[16];
            int l = snprintf(v, sizeof v, "tag%u", (i + j * 7) % 11);
            OK(edb_column_set(c, 2, v, (size_t)l, EDB_SET_APPEND));
        }
        OK(edb_update(c));
    }
    OK(edb_txn_commit(s));
    OK(edb_cursor_set_index(c, "by_tag"));
    unsigned entries = 0, nulls = 0, want = 0;
    for (unsigned i = 0; i < n; i++)
        want += i % 4 == 0 ? 1 : i % 4;     /* a record without values: one NULL entry */
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
        char v[32];
        size_t l = 0;
        int32_t k = -1, kk = -2;
        OK(edb_column_get(c, 1, &k, 4, NULL, 0));
        OK(edb_column_get_from_index(c, 1, &kk, 4, NULL));
        cr_assert_eq(kk, k);
        int r = edb_column_get_from_index(c, 2, v, sizeof v, &l);
        if (r == EDB_WRN_NULL) {
            unsigned cnt = 9;
            OK(edb_column_count(&cnt, c, 2));
            cr_assert_eq(cnt, 0);
            nulls++;
        } else {
            OK(r);
            /* the entry's value is one of the record's values */
            unsigned cnt = 0, hit = 0;
            OK(edb_column_count(&cnt, c, 2));
            for (unsigned t = 1; t <= cnt; t++) {
                char w[32];
                size_t wl = 0;
                OK(edb_column_get(c, 2, w, sizeof w, &wl, t));
                hit += wl == l && memcmp(w, v, l) == 0;
            }
            cr_assert_eq(hit, 1, "record %d: the entry's value is not one of its values", k);
        }
        entries++;
    }
    cr_assert_eq(entries, want);
    cr_assert(nulls > 0);

    /* the three entries of one record give three different values */
    OK(edb_cursor_set_index(c, NULL));
    int32_t k3 = 3;
    OK(edb_key_make(c, &k3, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    OK(edb_cursor_set_index(c, "by_tag"));
    char seen[3][32] = { { 0 } };
    unsigned got = 0;
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
        int32_t k = -1;
        OK(edb_column_get_from_index(c, 1, &k, 4, NULL));
        if (k != 3)
            continue;
        cr_assert(got < 3);
        OK(edb_column_get_from_index(c, 2, seen[got], sizeof seen[got] - 1, NULL));
        got++;
    }
    cr_assert_eq(got, 3);
    /* descending segment: greatest value first */
    cr_assert(strcmp(seen[0], seen[1]) > 0 && strcmp(seen[1], seen[2]) > 0);
}

/* ------------------------------------------------------------ the entry, not the record */

/* t(k INT32 primary, v INT32, name TEXT), index "by_v" +v, "by_name" +name
 * collated case-insensitive with +k, "by_sub" a tuple index on name. */
static void
make_small(void)
{
    edb_column_def cols[] = {
        { "k", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0, NULL },
        { "v", EDB_COL_INT32, 0, 0, NULL, 0, NULL },
        { "name", EDB_COL_TEXT, 0, 0, NULL, 0, "en-u-ks-level2" },
        { "raw", EDB_COL_TEXT, 0, 0, NULL, 0, NULL },
    };
    edb_index_def idx[] = {
        { .name = "pk", .key = "+k\0", .flags = EDB_IDX_PRIMARY },
        { .name = "by_v", .key = "+v\0" },
        { .name = "by_name", .key = "+name\0-k\0" },
        { .name = "by_sub", .key = "+raw\0", .flags = EDB_IDX_TUPLES },
    };
    edb_table_def def = { "t", cols, 4, idx, 4 };
    OK(edb_table_create(s, &def));
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_txn_begin(s, 0));
    for (int32_t k = 1; k <= 5; k++) {
        int32_t v = k * 100;
        char name[16];
        int l = snprintf(name, sizeof name, "Name%d", k);
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &k, 4, 0));
        OK(edb_column_set(c, 2, &v, 4, 0));
        OK(edb_column_set(c, 3, name, (size_t)l, 0));
        OK(edb_column_set(c, 4, "concatenate", 11, 0));
        OK(edb_update(c));
    }
    OK(edb_txn_commit(s));
}

static void
seek_v(int32_t v)
{
    OK(edb_cursor_set_index(c, "by_v"));
    OK(edb_key_make(c, &v, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
}

/* A prepared replace changes what edb_column_get reads (the prepared
 * record), not the entry the cursor is on: the value comes from the entry. */
Test(fromindex, prepared_update_reads_the_entry)
{
    make_small();
    seek_v(300);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    int32_t nv = 999, got = 0;
    OK(edb_column_set(c, 2, &nv, 4, 0));
    OK(edb_column_get(c, 2, &got, 4, NULL, 0));
    cr_assert_eq(got, 999);
    OK(edb_column_get_from_index(c, 2, &got, 4, NULL));
    cr_assert_eq(got, 300);
    OK(edb_update(c));
    /* the record moved to its new entry; the cursor still names the old one */
    seek_v(999);
    OK(edb_column_get_from_index(c, 2, &got, 4, NULL));
    cr_assert_eq(got, 999);
}

/* The cursor on the primary index reads the primary key's columns. */
Test(fromindex, primary_index)
{
    make_small();
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    int32_t k = 0;
    size_t n = 0;
    OK(edb_column_get_from_index(c, 1, &k, sizeof k, &n));
    cr_assert_eq(k, 5);
    cr_assert_eq(n, 4);
    RC(edb_column_get_from_index(c, 2, &k, sizeof k, NULL), EDB_INVAL);
    cr_assert(strstr(edb_error_last_message(), "not a segment") != NULL, "%s", edb_error_last());
}

/* A table without a primary index: the implicit key holds no column. */
Test(fromindex, implicit_key_has_no_columns)
{
    edb_column_def cols[] = { { "v", EDB_COL_INT32, 0, 0, NULL, 0, NULL } };
    edb_index_def idx[] = { { .name = "by_v", .key = "+v\0" } };
    edb_table_def def = { "t", cols, 1, idx, 1 };
    OK(edb_table_create(s, &def));
    OK(edb_cursor_open(&c, s, "t"));
    int32_t v = 7, got = 0;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &v, 4, 0));
    OK(edb_update(c));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    RC(edb_column_get_from_index(c, 1, &got, 4, NULL), EDB_INVAL);
    cr_assert(strstr(edb_error_last_message(), "implicit") != NULL, "%s", edb_error_last());
    OK(edb_cursor_set_index(c, "by_v"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_column_get_from_index(c, 1, &got, 4, NULL));
    cr_assert_eq(got, 7);
}

/* Collated and tuple segments hold no decodable value: EDB_INVAL saying
 * why; the segment after a collated one still decodes. */
Test(fromindex, collated_and_tuple_refused)
{
    make_small();
    OK(edb_cursor_set_index(c, "by_name"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    char buf[32];
    RC(edb_column_get_from_index(c, 3, buf, sizeof buf, NULL), EDB_INVAL);
    cr_assert(strstr(edb_error_last_message(), "collated") != NULL, "%s", edb_error_last());
    int32_t k = 0;
    OK(edb_column_get_from_index(c, 1, &k, 4, NULL));
    cr_assert_eq(k, 1);
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    OK(edb_column_get_from_index(c, 1, &k, 4, NULL));
    cr_assert_eq(k, 5);

    OK(edb_cursor_set_index(c, "by_sub"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    RC(edb_column_get_from_index(c, 4, buf, sizeof buf, NULL), EDB_INVAL);
    cr_assert(strstr(edb_error_last_message(), "tuple") != NULL, "%s", edb_error_last());
}

/* No current entry, an unknown column, a NULL cursor. */
Test(fromindex, no_current_and_bad_arguments)
{
    make_small();
    int32_t v = 0;
    OK(edb_cursor_set_index(c, "by_v"));     /* unpositions the cursor */
    RC(edb_column_get_from_index(c, 2, &v, 4, NULL), EDB_NOCURRENT);
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    RC(edb_cursor_move(c, EDB_MOVE_NEXT), EDB_NOTFOUND);
    RC(edb_column_get_from_index(c, 2, &v, 4, NULL), EDB_NOCURRENT);
    OK(edb_cursor_move(c, EDB_MOVE_PREV));
    RC(edb_column_get_from_index(c, 9, &v, 4, NULL), EDB_NOTFOUND);
    RC(edb_column_get_from_index(c, 0, &v, 4, NULL), EDB_NOTFOUND);
    RC(edb_column_get_from_index(NULL, 2, &v, 4, NULL), EDB_INVAL);
    OK(edb_column_get_from_index(c, 2, &v, 4, NULL));
    cr_assert_eq(v, 500);
}

/* The entry deleted by another session after the cursor landed: outside a
 * transaction the entry is gone (EDB_RECORD_DELETED, as edb_key_retrieve);
 * inside one begun before, the entry is still there and gives its value. */
Test(fromindex, entry_deleted_by_another_session)
{
    make_small();
    edb_session *s2;
    edb_cursor *d;
    OK(edb_session_begin(&s2, env));
    OK(edb_cursor_open(&d, s2, "t"));

    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    seek_v(200);
    int32_t k2 = 2;
    OK(edb_key_make(d, &k2, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(d, EDB_SEEK_EQ));
    OK(edb_record_delete(d));               /* implicit txn: committed */
    int32_t v = 0;
    OK(edb_column_get_from_index(c, 2, &v, 4, NULL));
    cr_assert_eq(v, 200);
    OK(edb_txn_commit(s));
    RC(edb_column_get_from_index(c, 2, &v, 4, NULL), EDB_RECORD_DELETED);

    /* the value changed under the cursor: its entry (v 300) is gone too */
    seek_v(300);
    int32_t k3 = 3, nv = 301;
    OK(edb_key_make(d, &k3, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(d, EDB_SEEK_EQ));
    OK(edb_update_prepare(d, EDB_PREP_REPLACE));
    OK(edb_column_set(d, 2, &nv, 4, 0));
    OK(edb_update(d));
    RC(edb_column_get_from_index(c, 2, &v, 4, NULL), EDB_RECORD_DELETED);
    OK(edb_cursor_move(c, EDB_MOVE_NEXT));
    OK(edb_column_get_from_index(c, 2, &v, 4, NULL));
    cr_assert_eq(v, 301);
    edb_cursor_close(d);
    edb_session_end(s2);
}

/* A dropped table under the cursor: EDB_DROPPED. */
Test(fromindex, table_dropped)
{
    make_small();
    seek_v(100);
    OK(edb_table_drop(s, "t"));
    int32_t v = 0;
    RC(edb_column_get_from_index(c, 2, &v, 4, NULL), EDB_DROPPED);
}

/* The key keeps no sign of zero: a stored -0.0 reads as +0.0 from the
 * index (equal value), while the record keeps -0.0. */
Test(fromindex, negative_zero_reads_as_zero)
{
    edb_column_def cols[] = {
        { "f", EDB_COL_FLOAT, 0, 0, NULL, 0, NULL },
        { "d", EDB_COL_DOUBLE, 0, 0, NULL, 0, NULL },
    };
    edb_index_def idx[] = { { .name = "fd", .key = "-f\0+d\0" } };
    edb_table_def def = { "t", cols, 2, idx, 1 };
    OK(edb_table_create(s, &def));
    OK(edb_cursor_open(&c, s, "t"));
    float f = -0.0f, gf = 1;
    double d = -0.0, gd = 1;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &f, 4, 0));
    OK(edb_column_set(c, 2, &d, 8, 0));
    OK(edb_update(c));
    OK(edb_cursor_set_index(c, "fd"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    OK(edb_column_get(c, 1, &gf, 4, NULL, 0));
    cr_assert(gf == 0.0f && signbit(gf));
    OK(edb_column_get_from_index(c, 1, &gf, 4, NULL));
    OK(edb_column_get_from_index(c, 2, &gd, 8, NULL));
    cr_assert(gf == 0.0f && !signbit(gf));
    cr_assert(gd == 0.0 && !signbit(gd));
}

/* Long values (ESE's ibLongValue, JET_bitSetAppendLV, JET_bitSetSizeLV):
 * edb_column_read and edb_column_write, values stored in chunks outside
 * their record, read and rewritten chunk by chunk, freed with their record,
 * value or table, refused past EDB_LV_MAX, checked by edb_env_check. */
#include "config.h"

#include <lmdb.h>
#include <pthread.h>

#include "helpers.h"

#include "env.h"        /* edb__env_mdb: damage chunks behind the engine's back */
#include "longval.h"    /* chunk size and the chunk read/write counters */

#define CH ((size_t)EDB__LV_CHUNK)

static char *dir;
static edb_env *env;
static edb_session *s;
static edb_cursor *c;

static unsigned
scaled(unsigned n)
{
    return test_scaled_min(n, 1);
}

static void
make_table(edb_session *ss, const char *name)
{
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "data", .type = EDB_COL_BINARY },
        { .name = "txt", .type = EDB_COL_TEXT },
        { .name = "mv", .type = EDB_COL_BINARY, .flags = EDB_COL_MULTIVALUED },
        { .name = "n", .type = EDB_COL_INT32 },
        { .name = "capped", .type = EDB_COL_BINARY, .max_size = 100000 },
    };
    edb_index_def idx[] = { { "pk", "+id\0", EDB_IDX_PRIMARY } };
    edb_table_def def = { name, cols, 6, idx, 1 };
    OK(edb_table_create(ss, &def));
}

static void
setup(void)
{
    dir = make_tmpdir();
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    make_table(s, "lv");
    OK(edb_cursor_open(&c, s, "lv"));
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

TestSuite(longval, .init = setup, .fini = teardown, .timeout = 120);

/* Byte @i of the test pattern (no period of a chunk's size). */
static uint8_t
pat(uint64_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13 ^ i >> 8);
}

static uint8_t *
pattern(uint64_t from, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    cr_assert_not_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = pat(from + i);
    return p;
}

static void
seek_row(edb_cursor *cc, int32_t id)
{
    OK(edb_key_make(cc, &id, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(cc, EDB_SEEK_EQ));
}

/* Insert row @id with `data` = pattern[0, size). */
static void
insert_big(int32_t id, size_t size)
{
    uint8_t *p = pattern(0, size);
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    OK(edb_column_set(c, 2, p, size, 0));
    OK(edb_update(c));
    free(p);
}

static uint64_t
chunks(void)
{
    uint64_t n;
    OK(edb__lv_count(&n, s, 0));
    return n;
}

/* The whole `data` value of the current record equals @want[0, size). */
static void
assert_value(const uint8_t *want, size_t size)
{
    size_t got = 0;
    uint8_t *buf = malloc(size + 1);
    cr_assert_not_null(buf);
    int rc = edb_column_get(c, 2, buf, size + 1, &got, 0);
    cr_assert_eq(rc, 0, "%s (%s)", edb_err_name(rc), edb_error_last());
    cr_assert_eq(got, size, "size %zu, want %zu", got, size);
    for (size_t i = 0; i < size; i++)
        if (buf[i] != want[i])
            cr_assert_fail("byte %zu: %u, want %u", i, buf[i], want[i]);
    free(buf);
}

Test(longval, small_values_stay_inline_and_read_by_offset)
{
    uint8_t *p = pattern(0, CH);         /* the largest inline value */
    int32_t id = 1;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    OK(edb_column_set(c, 2, p, CH, 0));
    OK(edb_update(c));
    cr_assert_eq(chunks(), 0);
    uint8_t buf[16];
    size_t got;
    OK(edb_column_read(c, 2, 100, buf, 16, &got, 0) == EDB_WRN_TRUNCATED ? 0 : -1);
    cr_assert_eq(got, CH);
    cr_assert_eq(memcmp(buf, p + 100, 16), 0);
    /* fixed-size columns read by offset too */
    int32_t n = 0x01020304;
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 5, &n, 4, 0));
    OK(edb_update(c));
    uint8_t b2[4] = { 0 };
    OK(edb_column_read(c, 5, 2, b2, 4, &got, 0));
    cr_assert_eq(got, 4);
    cr_assert_eq(memcmp(b2, (uint8_t *)&n + 2, 2), 0);
    free(p);
}

Test(longval, large_value_is_chunked_and_round_trips)
{
    size_t size = 3 * CH + 100;
    insert_big(1, size);
    cr_assert_eq(chunks(), 4);
    uint8_t *p = pattern(0, size);
    assert_value(p, size);
    /* across a chunk boundary */
    uint8_t buf[40];
    size_t got;
    RC(edb_column_read(c, 2, CH - 20, buf, sizeof buf, &got, 0), EDB_WRN_TRUNCATED);
    cr_assert_eq(got, size);
    cr_assert_eq(memcmp(buf, p + CH - 20, sizeof buf), 0);
    /* after a reopen */
    edb_cursor_close(c);
    edb_session_end(s);
    edb_env_close(env);
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    OK(edb_cursor_open(&c, s, "lv"));
    seek_row(c, 1);
    assert_value(p, size);
    /* a size query: no buffer */
    RC(edb_column_read(c, 2, 0, NULL, 0, &got, 0), EDB_WRN_TRUNCATED);
    cr_assert_eq(got, size);
    free(p);
}

Test(longval, reads_at_and_past_the_end)
{
    size_t size = 2 * CH + 7;
    insert_big(1, size);
    uint8_t buf[64];
    size_t got = 0;
    memset(buf, 0xEE, sizeof buf);
    OK(edb_column_read(c, 2, size, buf, sizeof buf, &got, 0));     /* at the end */
    cr_assert_eq(got, size);
    cr_assert_eq(buf[0], 0xEE);                                     /* nothing copied */
    OK(edb_column_read(c, 2, size + 1000, buf, sizeof buf, &got, 0));
    cr_assert_eq(got, size);
    OK(edb_column_read(c, 2, UINT64_MAX, buf, sizeof buf, &got, 0));
    cr_assert_eq(got, size);
    OK(edb_column_read(c, 2, size - 5, buf, sizeof buf, &got, 0)); /* the last 5 bytes */
    for (int i = 0; i < 5; i++)
        cr_assert_eq(buf[i], pat(size - 5 + i));
    cr_assert_eq(buf[5], 0xEE);
    RC(edb_column_read(c, 2, size - 5, buf, 4, &got, 0), EDB_WRN_TRUNCATED);
    /* a NULL column, an itag past the only value */
    got = 9;
    RC(edb_column_read(c, 3, 0, buf, sizeof buf, &got, 0), EDB_WRN_NULL);
    cr_assert_eq(got, 0);
    RC(edb_column_read(c, 2, 0, buf, sizeof buf, &got, 2), EDB_WRN_NULL);
    cr_assert_eq(got, 0);
    RC(edb_column_read(c, 2, 0, NULL, 5, &got, 0), EDB_INVAL);
}

Test(longval, append_to_a_null_value)
{
    int32_t id = 1;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    OK(edb_update(c));
    size_t piece = 10000, total = 0;
    unsigned pieces = 13;
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    for (unsigned i = 0; i < pieces; i++) {
        uint8_t *p = pattern(total, piece);
        OK(edb_column_write(c, 2, 0, p, piece, EDB_SET_APPEND));
        total += piece;
        free(p);
    }
    /* the prepared record reads with its pending writes */
    size_t got;
    uint8_t b[8];
    RC(edb_column_read(c, 2, total - 16, b, 8, &got, 0), EDB_WRN_TRUNCATED);
    cr_assert_eq(got, total);
    cr_assert_eq(b[0], pat(total - 16));
    OK(edb_update(c));
    uint8_t *want = pattern(0, total);
    assert_value(want, total);
    cr_assert_eq(chunks(), (total + CH - 1) / CH);
    free(want);
}

Test(longval, writes_across_chunk_boundaries_rewrite_only_those_chunks)
{
    size_t size = 5 * CH;
    insert_big(1, size);
    uint8_t *want = pattern(0, size);
    uint8_t ones[100], twos[30];
    memset(ones, 1, sizeof ones);
    memset(twos, 2, sizeof twos);
    uint64_t w0 = atomic_load(&edb__lv_chunk_writes);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_write(c, 2, CH - 50, ones, sizeof ones, 0));     /* chunks 0 and 1 */
    OK(edb_column_write(c, 2, 3 * CH + 10, twos, sizeof twos, 0)); /* chunk 3 */
    OK(edb_update(c));
    cr_assert_eq(atomic_load(&edb__lv_chunk_writes) - w0, 3);
    memcpy(want + CH - 50, ones, sizeof ones);
    memcpy(want + 3 * CH + 10, twos, sizeof twos);
    assert_value(want, size);
    cr_assert_eq(chunks(), 5);
    /* a write that ends past the end extends the value; one past the end is refused */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    RC(edb_column_write(c, 2, size + 1, ones, 1, 0), EDB_INVAL);
    OK(edb_column_write(c, 2, size - 10, ones, sizeof ones, 0));
    OK(edb_update(c));
    want = realloc(want, size + 90);
    memcpy(want + size - 10, ones, sizeof ones);
    assert_value(want, size + 90);
    cr_assert_eq(chunks(), 6);
    free(want);
}

Test(longval, set_size_shrinks_and_grows_with_zeros)
{
    size_t size = 4 * CH;
    insert_big(1, size);
    uint8_t *want = pattern(0, size);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_write(c, 2, CH + 5, NULL, 0, EDB_SET_SIZE));
    OK(edb_update(c));
    assert_value(want, CH + 5);
    cr_assert_eq(chunks(), 2);
    /* grow: the new bytes are zero, not the old ones */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_write(c, 2, 3 * CH, NULL, 0, EDB_SET_SIZE));
    OK(edb_update(c));
    memset(want + CH + 5, 0, 3 * CH - (CH + 5));
    assert_value(want, 3 * CH);
    cr_assert_eq(chunks(), 3);
    /* shrink then grow in one update: zeros again */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_write(c, 2, 100, NULL, 0, EDB_SET_SIZE));
    OK(edb_column_write(c, 2, 2 * CH + 1, NULL, 0, EDB_SET_SIZE));
    OK(edb_update(c));
    memset(want + 100, 0, 2 * CH + 1 - 100);
    assert_value(want, 2 * CH + 1);
    /* shrink under the inline limit: back in the record, chunks freed */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_write(c, 2, 50, NULL, 0, EDB_SET_SIZE));
    OK(edb_update(c));
    assert_value(want, 50);
    cr_assert_eq(chunks(), 0);
    /* to 0: an empty value, not NULL */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_write(c, 2, 0, NULL, 0, EDB_SET_SIZE));
    OK(edb_update(c));
    size_t got = 9;
    OK(edb_column_get(c, 2, NULL, 0, &got, 0));
    cr_assert_eq(got, 0);
    free(want);
}

Test(longval, middle_read_of_a_64mb_value_reads_one_or_two_chunks, .timeout = 300)
{
    size_t mb = 1 << 20, size = (size_t)scaled(64) * mb;
    int32_t id = 1;
    OK(edb_txn_begin(s, 0));
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    for (size_t off = 0; off < size; off += mb) {
        uint8_t *p = pattern(off, mb);
        OK(edb_column_write(c, 2, 0, p, mb, EDB_SET_APPEND));
        free(p);
    }
    OK(edb_update(c));
    OK(edb_txn_commit(s));
    uint8_t buf[4096];
    size_t got;
    uint64_t r0 = atomic_load(&edb__lv_chunk_reads);
    RC(edb_column_read(c, 2, size / 2, buf, sizeof buf, &got, 0), EDB_WRN_TRUNCATED);
    uint64_t reads = atomic_load(&edb__lv_chunk_reads) - r0;
    cr_assert_eq(got, size);
    cr_assert(reads >= 1 && reads <= 2, "%llu chunks read for 4 KiB", (unsigned long long)reads);
    for (size_t i = 0; i < sizeof buf; i++)
        cr_assert_eq(buf[i], pat(size / 2 + i));
    /* a write of 4 KiB in the middle rewrites one or two chunks */
    uint64_t w0 = atomic_load(&edb__lv_chunk_writes);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_write(c, 2, size / 2, buf, sizeof buf, 0));
    OK(edb_update(c));
    uint64_t writes = atomic_load(&edb__lv_chunk_writes) - w0;
    cr_assert(writes >= 1 && writes <= 2, "%llu chunks written for 4 KiB", (unsigned long long)writes);
}

Test(longval, values_past_2gib_are_refused_without_allocating)
{
    static const uint8_t small[16];
    int32_t id = 1;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    /* the size is checked before a byte is read (ASan would see a read past `small`) */
    RC(edb_column_set(c, 2, small, (size_t)EDB_LV_MAX + 1, 0), EDB_TOOBIG);
    RC(edb_column_write(c, 2, 0, small, (size_t)EDB_LV_MAX + 1, 0), EDB_TOOBIG);
    RC(edb_column_write(c, 2, 0, NULL, 0, EDB_SET_SIZE), 0);
    RC(edb_column_write(c, 2, (uint64_t)EDB_LV_MAX + 1, NULL, 0, EDB_SET_SIZE), EDB_TOOBIG);
    RC(edb_column_write(c, 2, UINT64_MAX, small, 16, 0), EDB_TOOBIG);
    /* exactly EDB_LV_MAX is a size, pending only (nothing allocated) */
    OK(edb_column_write(c, 2, EDB_LV_MAX, NULL, 0, EDB_SET_SIZE));
    size_t got;
    RC(edb_column_read(c, 2, 0, NULL, 0, &got, 0), EDB_WRN_TRUNCATED);
    cr_assert_eq(got, (size_t)EDB_LV_MAX);
    RC(edb_column_write(c, 2, 0, small, 1, EDB_SET_APPEND), EDB_TOOBIG);
    /* max_size holds too */
    RC(edb_column_write(c, 6, 0, NULL, 0, EDB_SET_SIZE | 0), 0);
    RC(edb_column_write(c, 6, 100001, NULL, 0, EDB_SET_SIZE), EDB_TOOBIG);
    edb_update_cancel(c);
    cr_assert_eq(chunks(), 0);
}

Test(longval, bad_arguments)
{
    uint8_t b[4] = { 0 };
    RC(edb_column_write(c, 2, 0, b, 4, 0), EDB_NOUPDATE);
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    RC(edb_column_write(c, 5, 0, b, 4, 0), EDB_TYPE);         /* INT32 */
    RC(edb_column_write(c, 4, 0, b, 4, 0), EDB_TYPE);         /* multi-valued */
    RC(edb_column_write(c, 2, 0, b, 4, EDB_SET_APPEND | EDB_SET_SIZE), EDB_INVAL);
    RC(edb_column_write(c, 2, 0, b, 4, 0x100), EDB_INVAL);
    RC(edb_column_write(c, 2, 0, b, 4, EDB_SET_SIZE), EDB_INVAL);
    RC(edb_column_write(c, 2, 0, NULL, 4, 0), EDB_INVAL);
    RC(edb_column_write(c, 99, 0, b, 4, 0), EDB_NOTFOUND);
    RC(edb_column_write(c, 3, 0, "\xff", 1, 0), EDB_INVAL);   /* TEXT, not UTF-8 */
    OK(edb_column_write(c, 3, 0, "h\xc3\xa9", 3, 0));
    edb_update_cancel(c);
    RC(edb_column_write(NULL, 2, 0, b, 4, 0), EDB_INVAL);
}

Test(longval, cancel_leaves_the_old_value)
{
    size_t size = 3 * CH;
    insert_big(1, size);
    uint8_t *want = pattern(0, size);
    uint8_t z[500] = { 0 };
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_write(c, 2, CH - 10, z, sizeof z, 0));
    OK(edb_column_write(c, 2, 10, NULL, 0, EDB_SET_SIZE));
    edb_update_cancel(c);
    assert_value(want, size);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 2, NULL, 0, 0));
    edb_update_cancel(c);
    assert_value(want, size);
    cr_assert_eq(chunks(), 3);
    free(want);
}

Test(longval, rolled_back_transaction_leaves_the_old_value)
{
    size_t size = 3 * CH + 1;
    insert_big(1, size);
    uint8_t *want = pattern(0, size);
    OK(edb_txn_begin(s, 0));
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_write(c, 2, 0, "xxxx", 4, 0));
    OK(edb_column_write(c, 2, 2 * CH, NULL, 0, EDB_SET_SIZE));
    OK(edb_update(c));
    cr_assert_eq(chunks(), 2);
    insert_big(2, 5 * CH);                  /* a new value in the same txn */
    OK(edb_txn_rollback(s));
    seek_row(c, 1);
    assert_value(want, size);
    cr_assert_eq(chunks(), 4);
    int32_t two = 2;
    OK(edb_key_make(c, &two, 4, EDB_KEY_NEW));
    RC(edb_cursor_seek(c, EDB_SEEK_EQ), EDB_NOTFOUND);
    free(want);
}

Test(longval, delete_replace_and_drop_free_the_chunks)
{
    insert_big(1, 3 * CH);
    insert_big(2, 2 * CH + 1);
    cr_assert_eq(chunks(), 6);
    /* replaced by another long value: only the new chunks remain */
    seek_row(c, 1);
    uint8_t *p = pattern(7, 4 * CH);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 2, p, 4 * CH, 0));
    OK(edb_update(c));
    cr_assert_eq(chunks(), 7);
    /* replaced by a small value */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 2, "tiny", 4, 0));
    OK(edb_update(c));
    cr_assert_eq(chunks(), 3);
    /* set NULL */
    seek_row(c, 2);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 2, NULL, 0, 0));
    OK(edb_update(c));
    cr_assert_eq(chunks(), 0);
    /* a deleted record */
    insert_big(3, 2 * CH);
    cr_assert_eq(chunks(), 2);
    OK(edb_record_delete(c));
    cr_assert_eq(chunks(), 0);
    /* a dropped table; the other table's values stay */
    make_table(s, "other");
    edb_cursor *o;
    OK(edb_cursor_open(&o, s, "other"));
    int32_t id = 1;
    OK(edb_update_prepare(o, EDB_PREP_INSERT));
    OK(edb_column_set(o, 1, &id, 4, 0));
    OK(edb_column_set(o, 2, p, 2 * CH, 0));
    OK(edb_update(o));
    edb_cursor_close(o);
    insert_big(4, 3 * CH);
    cr_assert_eq(chunks(), 5);
    OK(edb_table_drop(s, "other"));
    cr_assert_eq(chunks(), 3);
    uint64_t problems = 99;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
    free(p);
}

/* Another session changed the value in place between prepare and update. */
typedef struct other { int rc; char msg[256]; } other;

static void *
other_writes_in_place(void *arg)
{
    other *o = arg;
    edb_session *s2 = NULL;
    edb_cursor *c2 = NULL;
    int rc = edb_session_begin(&s2, env);
    if (rc == 0)
        rc = edb_cursor_open(&c2, s2, "lv");
    int32_t id = 1;
    if (rc == 0)
        rc = edb_key_make(c2, &id, 4, EDB_KEY_NEW);
    if (rc == 0)
        rc = edb_cursor_seek(c2, EDB_SEEK_EQ);
    if (rc == 0)
        rc = edb_update_prepare(c2, EDB_PREP_REPLACE);
    if (rc == 0)
        rc = edb_column_write(c2, 2, CH + 1, "theirs", 6, 0);
    if (rc == 0)
        rc = edb_update(c2);
    o->rc = rc;
    snprintf(o->msg, sizeof o->msg, "%s", edb_error_last());
    edb_cursor_close(c2);
    edb_session_end(s2);
    return NULL;
}

Test(longval, in_place_change_by_another_session_is_a_write_conflict)
{
    insert_big(1, 3 * CH);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_write(c, 2, 5, "mine", 4, 0));
    pthread_t th;
    other o = { -999, "" };
    cr_assert_eq(pthread_create(&th, NULL, other_writes_in_place, &o), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(o.rc, 0, "%s (%s)", edb_err_name(o.rc), o.msg);
    RC(edb_update(c), EDB_WRITE_CONFLICT);
    edb_update_cancel(c);
    uint8_t buf[6];
    OK(edb_column_read(c, 2, CH + 1, buf, 6, NULL, 0) == EDB_WRN_TRUNCATED ? 0 : -1);
    cr_assert_eq(memcmp(buf, "theirs", 6), 0);
    OK(edb_column_read(c, 2, 5, buf, 4, NULL, 0) == EDB_WRN_TRUNCATED ? 0 : -1);
    cr_assert_eq(buf[0], pat(5));       /* "mine" was not written */
}

/* A reader in its own transaction keeps its snapshot of the value while
 * another session rewrites it, and sees the new value in its next one. */
typedef struct writer { int rc; char msg[256]; } writer;

static void *
writer_rewrites(void *arg)
{
    writer *w = arg;
    edb_session *s2 = NULL;
    edb_cursor *c2 = NULL;
    int rc = edb_session_begin(&s2, env);
    if (rc == 0)
        rc = edb_cursor_open(&c2, s2, "lv");
    int32_t id = 1;
    if (rc == 0)
        rc = edb_key_make(c2, &id, 4, EDB_KEY_NEW);
    if (rc == 0)
        rc = edb_cursor_seek(c2, EDB_SEEK_EQ);
    static uint8_t ff[CH];
    memset(ff, 0xFF, sizeof ff);
    if (rc == 0)
        rc = edb_update_prepare(c2, EDB_PREP_REPLACE);
    if (rc == 0)
        rc = edb_column_write(c2, 2, 0, ff, sizeof ff, 0);
    if (rc == 0)
        rc = edb_column_write(c2, 2, 2 * CH, NULL, 0, EDB_SET_SIZE);
    if (rc == 0)
        rc = edb_update(c2);
    w->rc = rc;
    snprintf(w->msg, sizeof w->msg, "%s", edb_error_last());
    edb_cursor_close(c2);
    edb_session_end(s2);
    return NULL;
}

Test(longval, reader_keeps_its_snapshot_while_another_session_writes)
{
    insert_big(1, 4 * CH);
    OK(edb_txn_begin(s, EDB_TXN_READONLY));
    uint8_t buf[16];
    size_t got;
    RC(edb_column_read(c, 2, 10, buf, 16, &got, 0), EDB_WRN_TRUNCATED);
    pthread_t th;
    writer w = { -999, "" };
    cr_assert_eq(pthread_create(&th, NULL, writer_rewrites, &w), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(w.rc, 0, "%s (%s)", edb_err_name(w.rc), w.msg);
    /* still the old value, every chunk of it, the freed ones included */
    RC(edb_column_read(c, 2, 3 * CH + 10, buf, 16, &got, 0), EDB_WRN_TRUNCATED);
    cr_assert_eq(got, 4 * CH);
    cr_assert_eq(buf[0], pat(3 * CH + 10));
    RC(edb_column_read(c, 2, 10, buf, 16, &got, 0), EDB_WRN_TRUNCATED);
    cr_assert_eq(buf[0], pat(10));
    OK(edb_txn_commit(s));
    RC(edb_column_read(c, 2, 10, buf, 16, &got, 0), EDB_WRN_TRUNCATED);
    cr_assert_eq(got, 2 * CH);
    cr_assert_eq(buf[0], 0xFF);
}

Test(longval, long_text_and_an_index_on_it)
{
    /* a TEXT long value round-trips; an index on a column cannot hold one */
    size_t size = 2 * CH + 3;
    char *t = malloc(size);
    for (size_t i = 0; i < size; i++)
        t[i] = (char)('a' + i % 26);
    int32_t id = 1;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    OK(edb_column_set(c, 3, t, size, 0));
    OK(edb_update(c));
    char buf[8];
    size_t got;
    RC(edb_column_read(c, 3, CH, buf, 8, &got, 0), EDB_WRN_TRUNCATED);
    cr_assert_eq(got, size);
    cr_assert_eq(memcmp(buf, t + CH, 8), 0);
    RC(edb_index_create(s, "lv", &(edb_index_def){ "by_txt", "+txt\0", 0 }), EDB_TOOBIG);
    free(t);
}

typedef struct seen { int missing, orphan, unreadable; } seen;

static void
check_cb(void *ctx, int code, const char *what)
{
    seen *sn = ctx;
    cr_assert_eq(code, EDB_CORRUPT);
    if (strstr(what, "cannot be read") != NULL && strstr(what, "chunk 1 is missing") != NULL)
        sn->unreadable++;
    else if (strstr(what, "orphan") != NULL)
        sn->orphan++;
    else if (strstr(what, "chunks") != NULL)
        sn->missing++;
    else
        cr_assert_fail("unexpected problem: %s", what);
}

/* Delete one chunk and add an orphan behind the engine's back: check names both. */
Test(longval, check_finds_missing_and_orphan_chunks)
{
    insert_big(1, 3 * CH);
    uint64_t problems = 99;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
    edb_cursor_close(c);
    c = NULL;
    edb_session_end(s);
    s = NULL;
    MDB_env *m = edb__env_mdb(env);
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "edb.records", 0, &dbi), 0);
    MDB_cursor *mc;
    cr_assert_eq(mdb_cursor_open(txn, dbi, &mc), 0);
    uint8_t zero[4] = { 0 };
    MDB_val k = { 4, zero }, d;
    cr_assert_eq(mdb_cursor_get(mc, &k, &d, MDB_SET_RANGE), 0);
    cr_assert_eq(k.mv_size, 20);
    uint8_t key[20];
    memcpy(key, k.mv_data, 20);
    mdb_cursor_close(mc);
    key[19] = 1;                    /* chunk 1 of the value */
    MDB_val dk = { 20, key };
    cr_assert_eq(mdb_del(txn, dbi, &dk, NULL), 0);
    key[15] ^= 0x55;                /* another value id: nobody's */
    MDB_val junk = { 10, "0123456789" };
    cr_assert_eq(mdb_put(txn, dbi, &dk, &junk, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    seen sn = { 0, 0, 0 };
    problems = 0;
    OK(edb_env_check(&problems, env, check_cb, &sn, NULL));
    cr_assert_eq(problems, 3);
    cr_assert_eq(sn.unreadable, 1);     /* the row's walk */
    cr_assert_eq(sn.missing, 1);
    cr_assert_eq(sn.orphan, 1);
    /* the value reads as damaged, never as wrong bytes */
    OK(edb_session_begin(&s, env));
    OK(edb_cursor_open(&c, s, "lv"));
    seek_row(c, 1);
    uint8_t buf[16];
    RC(edb_column_read(c, 2, CH + 5, buf, 16, NULL, 0), EDB_CORRUPT);
    RC(edb_column_read(c, 2, 5, buf, 16, NULL, 0), EDB_WRN_TRUNCATED);
}

/* Random writes, appends and resizes across chunk boundaries, each update
 * committed, canceled or rolled back, against a model of the value: after
 * every step the stored value equals the model, and the chunks are exactly
 * those of the value's size. */
Test(longval, random_edits_match_a_model, .timeout = 300)
{
    unsigned steps = scaled(300);
    size_t cap = 8 * CH;
    uint8_t *model = calloc(1, cap), *trial = malloc(cap);
    cr_assert(model != NULL && trial != NULL);
    size_t msize = 0;
    bool committed = false;
    int32_t id = 1;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    OK(edb_update(c));
    unsigned seed = 12345;
#define RND(n) ((size_t)((seed = seed * 1103515245u + 12345u) >> 8) % (n))
    for (unsigned step = 0; step < steps; step++) {
        size_t tsize = msize;
        memcpy(trial, model, cap);
        int outcome = (int)RND(5);      /* 0: cancel, 1: rollback, else commit */
        if (outcome == 1)
            OK(edb_txn_begin(s, 0));
        OK(edb_update_prepare(c, EDB_PREP_REPLACE));
        unsigned edits = 1 + (unsigned)RND(4);
        for (unsigned e = 0; e < edits; e++) {
            int op = (int)RND(4);
            if (op == 0) {                              /* resize */
                size_t ns = RND(cap + 1);
                OK(edb_column_write(c, 2, ns, NULL, 0, EDB_SET_SIZE));
                if (ns > tsize)
                    memset(trial + tsize, 0, ns - tsize);
                else
                    memset(trial + ns, 0, cap - ns);
                tsize = ns;
            } else {                                    /* write or append */
                size_t off = op == 1 ? tsize : RND(tsize + 1);
                size_t room = cap - off;
                size_t n = room == 0 ? 0 : RND(room < 3 * CH ? room + 1 : 3 * CH);
                uint8_t *p = pattern(step * 7919u + e, n);
                OK(edb_column_write(c, 2, off, p, n, op == 1 ? EDB_SET_APPEND : 0));
                memcpy(trial + off, p, n);
                if (off + n > tsize)
                    tsize = off + n;
                free(p);
            }
        }
        if (outcome == 0) {
            edb_update_cancel(c);
        } else {
            OK(edb_update(c));
            if (outcome == 1) {
                OK(edb_txn_rollback(s));
            } else {
                memcpy(model, trial, cap);
                msize = tsize;
                committed = true;
            }
        }
        seek_row(c, 1);
        if (!committed) {
            size_t got = 9;
            int rc = edb_column_get(c, 2, NULL, 0, &got, 0);
            cr_assert(rc == EDB_WRN_NULL || (rc == 0 && got == 0));
        } else {
            assert_value(model, msize);
        }
        uint64_t want = msize > CH ? (msize + CH - 1) / CH : 0;
        cr_assert_eq(chunks(), want, "step %u: %llu chunks for %zu bytes", step,
                     (unsigned long long)chunks(), msize);
    }
#undef RND
    uint64_t problems = 99;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
    free(model);
    free(trial);
}

/* The table is dropped while a cursor holds pending long-value writes: the
 * update is EDB_DROPPED, nothing is left behind (chunks, memory). */
Test(longval, table_dropped_under_pending_writes)
{
    insert_big(1, 3 * CH);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    uint8_t *p = pattern(3, 2 * CH);
    OK(edb_column_write(c, 2, CH, p, 2 * CH, 0));
    edb_session *s2;
    OK(edb_session_begin(&s2, env));
    OK(edb_table_drop(s2, "lv"));
    edb_session_end(s2);
    RC(edb_update(c), EDB_DROPPED);
    edb_update_cancel(c);
    cr_assert_eq(chunks(), 0);
    uint64_t problems = 99;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
    free(p);
}

/* Batch column I/O and long values: edb_columns_set makes a long value of a
 * whole value over the inline limit (chunks, as edb_column_set), replaces
 * pending edb_column_write changes, and edb_columns_get reads long values
 * whole, stored and pending alike (not the record's reference bytes). */
Test(longval, batch_get_and_set_through_long_values)
{
    size_t big = 3 * CH + 17;
    uint8_t *p = pattern(0, big);
    int32_t id = 7, n = 5;
    edb_colval set[] = {
        { 1, 0, &id, 4, 0, 0 },
        { 2, 0, p, big, 0, 0 },
        { 5, 0, &n, 4, 0, 0 },
    };
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_columns_set(c, set, 3));
    OK(edb_update(c));
    cr_assert_geq(chunks(), 4, "the value went to chunks");
    seek_row(c, 7);
    uint8_t *got = malloc(big + 1);
    cr_assert_not_null(got);
    int32_t gid = 0, gn = 0;
    edb_colval get[] = {
        { 1, 0, &gid, 4, 0, 0 },
        { 2, 0, got, big + 1, 0, 0 },
        { 5, 0, &gn, 4, 0, 0 },
    };
    OK(edb_columns_get(c, get, 3));
    cr_assert_eq(get[1].rc, 0, "%s", edb_err_name(get[1].rc));
    cr_assert_eq(get[1].actual, big);
    cr_assert(memcmp(got, p, big) == 0);
    cr_assert_eq(gid, 7);
    cr_assert_eq(gn, 5);
    /* a short buffer: truncated, with the whole size */
    get[1].size = 10;
    OK(edb_columns_get(c, get, 3));
    cr_assert_eq(get[1].rc, EDB_WRN_TRUNCATED);
    cr_assert_eq(get[1].actual, big);
    /* pending changes are read back by the batch read; a whole value set by
     * the batch write replaces them */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_write(c, 2, 0, "XYZ", 3, EDB_SET_APPEND));
    get[1].size = big + 4;
    free(got);
    got = malloc(big + 4);
    cr_assert_not_null(got);
    get[1].buf = got;
    OK(edb_columns_get(c, get, 3));
    cr_assert_eq(get[1].actual, big + 3);
    cr_assert(memcmp(got + big, "XYZ", 3) == 0);
    edb_colval small = { 2, 0, (void *)"tiny", 4, 0, 0 };
    OK(edb_columns_set(c, &small, 1));
    OK(edb_update(c));
    seek_row(c, 7);
    OK(edb_columns_get(c, get, 3));
    cr_assert_eq(get[1].actual, 4);
    cr_assert(memcmp(got, "tiny", 4) == 0);
    cr_assert_eq(chunks(), 0, "the long value's chunks were freed");
    free(got);
    free(p);
}

/* ------------------------------------------------------------------ a dropped column's long values */

static void
fail_on_problem(void *ctx, int code, const char *what)
{
    (void)ctx;
    cr_assert_fail("check: %s: %s", edb_err_name(code), what);
}

/* edb_env_check finds nothing. */
static void
check_clean(void)
{
    uint64_t problems = 99;
    OK(edb_env_check(&problems, env, fail_on_problem, NULL, NULL));
    cr_assert_eq(problems, 0);
}

/* Rewrite the current record without touching `data` (column 2). */
static void
rewrite_n(int32_t n)
{
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 5, &n, 4, 0));
    OK(edb_update(c));
}

/* Rows 1..@rows, each with a `data` value of 3 chunks. */
static void
insert_rows(int rows)
{
    for (int32_t id = 1; id <= rows; id++)
        insert_big(id, 2 * CH + 100);
    cr_assert_eq(chunks(), (uint64_t)rows * 3);
}

/* A dropped column's long value lives until its record is written again,
 * deleted, or its table dropped: then its chunks go, and check is clean at
 * every step (the records that still hold the reference own the chunks). */
Test(longval, dropped_column_values_are_freed_with_their_record)
{
    insert_rows(5);
    OK(edb_column_drop(s, "lv", "data"));
    cr_assert_eq(chunks(), 15, "the drop is lazy: the values stay");
    check_clean();
    seek_row(c, 1);
    rewrite_n(1);
    cr_assert_eq(chunks(), 12, "a rewritten record's dropped value is freed");
    check_clean();
    seek_row(c, 2);
    OK(edb_record_delete(c));
    cr_assert_eq(chunks(), 9, "a deleted record's dropped value is freed");
    check_clean();
    /* a rewrite through edb_column_write of another long column */
    seek_row(c, 3);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    char *p = malloc(CH + 1);
    cr_assert_not_null(p);
    memset(p, 'q', CH + 1);
    OK(edb_column_write(c, 3, 0, p, CH + 1, 0));
    OK(edb_update(c));
    cr_assert_eq(chunks(), 6 + 2);
    check_clean();
    /* rewritten twice: nothing more goes */
    seek_row(c, 1);
    rewrite_n(11);
    cr_assert_eq(chunks(), 8);
    check_clean();
    /* the table with records still holding dropped values */
    OK(edb_table_drop(s, "lv"));
    cr_assert_eq(chunks(), 0);
    check_clean();
    free(p);
}

/* check still reports a dropped column's damaged value: a missing chunk,
 * and the orphans of a reference gone from its record. */
Test(longval, check_still_finds_damage_behind_a_dropped_column)
{
    insert_rows(2);
    OK(edb_column_drop(s, "lv", "data"));
    edb_cursor_close(c);
    c = NULL;
    edb_session_end(s);
    s = NULL;
    MDB_env *m = edb__env_mdb(env);
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "edb.records", 0, &dbi), 0);
    MDB_cursor *mc;
    cr_assert_eq(mdb_cursor_open(txn, dbi, &mc), 0);
    uint8_t zero[4] = { 0 };
    MDB_val k = { 4, zero }, d;
    cr_assert_eq(mdb_cursor_get(mc, &k, &d, MDB_SET_RANGE), 0);
    cr_assert_eq(k.mv_size, 20);
    uint8_t key[20];
    memcpy(key, k.mv_data, 20);
    mdb_cursor_close(mc);
    key[19] = 2;                    /* the last chunk of the first value */
    MDB_val dk = { 20, key };
    cr_assert_eq(mdb_del(txn, dbi, &dk, NULL), 0);
    key[15] ^= 0x55;                /* another value id: nobody's */
    MDB_val junk = { 10, "0123456789" };
    cr_assert_eq(mdb_put(txn, dbi, &dk, &junk, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    seen sn = { 0, 0, 0 };
    uint64_t problems = 0;
    OK(edb_env_check(&problems, env, check_cb, &sn, NULL));
    cr_assert_eq(sn.missing, 1);
    cr_assert_eq(sn.orphan, 1);
    cr_assert_eq(problems, 2, "the dropped column is not read as a row's value");
    OK(edb_session_begin(&s, env));
    OK(edb_cursor_open(&c, s, "lv"));
}

/* A column added later under the dropped one's name is a new column that
 * holds long values of its own; the old records' dropped values go when
 * those records get the new column's value. */
Test(longval, column_added_under_the_dropped_name_takes_long_values)
{
    insert_rows(3);
    OK(edb_column_drop(s, "lv", "data"));
    OK(edb_column_add(s, "lv", &(edb_column_def){ .name = "data", .type = EDB_COL_BINARY }));
    edb_colid data;
    OK(edb_column_id(&data, c, "data"));
    cr_assert_neq(data & EDB_COLID_POSITION_MASK, 2u, "a new position");
    seek_row(c, 1);
    size_t got = 99;
    RC(edb_column_read(c, data, 0, NULL, 0, &got, 0), EDB_WRN_NULL);
    cr_assert_eq(got, 0);
    size_t size = 3 * CH + 5;
    uint8_t *p = pattern(9, size);
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, data, p, size, 0));
    OK(edb_update(c));
    cr_assert_eq(chunks(), 9 - 3 + 4, "the old value went, the new one came");
    check_clean();
    seek_row(c, 1);
    uint8_t *buf = malloc(size);
    cr_assert_not_null(buf);
    OK(edb_column_read(c, data, 0, buf, size, &got, 0));
    cr_assert_eq(got, size);
    cr_assert(memcmp(buf, p, size) == 0);
    /* an append in place, then a new record with the new column */
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_write(c, data, 0, "tail", 4, EDB_SET_APPEND));
    OK(edb_update(c));
    cr_assert_eq(chunks(), 10);
    int32_t id = 9;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 4, 0));
    OK(edb_column_set(c, data, p, size, 0));
    OK(edb_update(c));
    cr_assert_eq(chunks(), 14);
    check_clean();
    seek_row(c, 2);
    OK(edb_record_delete(c));
    seek_row(c, 9);
    OK(edb_record_delete(c));
    cr_assert_eq(chunks(), 14 - 3 - 4);
    check_clean();
    free(buf);
    free(p);
}

/* Rollback of a drop, and of a rewrite after a drop, at the outer and at a
 * nested level: the chunks and the references agree afterwards. */
Test(longval, rollback_of_a_drop_and_of_a_rewrite_after_it)
{
    insert_rows(3);
    uint8_t *p = pattern(0, 2 * CH + 100);
    /* a drop rolled back: the value reads again */
    OK(edb_txn_begin(s, 0));
    OK(edb_column_drop(s, "lv", "data"));
    seek_row(c, 1);
    rewrite_n(1);
    cr_assert_eq(chunks(), 6);
    OK(edb_txn_rollback(s));
    cr_assert_eq(chunks(), 9);
    seek_row(c, 1);
    assert_value(p, 2 * CH + 100);
    check_clean();
    /* the same at a nested level; the outer level commits */
    OK(edb_txn_begin(s, 0));
    OK(edb_txn_begin(s, 0));
    OK(edb_column_drop(s, "lv", "data"));
    seek_row(c, 2);
    rewrite_n(2);
    cr_assert_eq(chunks(), 6);
    OK(edb_txn_rollback(s));
    cr_assert_eq(chunks(), 9);
    OK(edb_txn_commit(s));
    seek_row(c, 2);
    assert_value(p, 2 * CH + 100);
    check_clean();
    /* dropped at the outer level, a rewrite rolled back at a nested one */
    OK(edb_txn_begin(s, 0));
    OK(edb_column_drop(s, "lv", "data"));
    OK(edb_txn_begin(s, 0));
    seek_row(c, 3);
    rewrite_n(3);
    seek_row(c, 1);
    OK(edb_record_delete(c));
    cr_assert_eq(chunks(), 3);
    OK(edb_txn_rollback(s));
    cr_assert_eq(chunks(), 9);
    OK(edb_txn_commit(s));
    check_clean();
    /* and committed this time */
    seek_row(c, 3);
    rewrite_n(3);
    cr_assert_eq(chunks(), 6);
    check_clean();
    free(p);
}

/* The other writes of a record: an escrow update frees a dropped column's
 * value too; an update prepared before the drop (by another session) and
 * completed after it keeps its value, which the next write frees. */
Test(longval, escrow_and_a_prepared_update_across_a_drop)
{
    int32_t zero = 0;
    OK(edb_column_add(s, "lv", &(edb_column_def){ .name = "hits", .type = EDB_COL_INT32,
                      .flags = EDB_COL_ESCROW, .default_value = &zero, .default_size = 4 }));
    edb_colid hits;
    OK(edb_column_id(&hits, c, "hits"));
    insert_rows(2);
    /* prepared before the drop, under the old schema, by another session */
    edb_session *s2;
    edb_cursor *c2;
    OK(edb_session_begin(&s2, env));
    OK(edb_cursor_open(&c2, s2, "lv"));
    seek_row(c2, 2);
    OK(edb_update_prepare(c2, EDB_PREP_REPLACE));
    int32_t n = 7;
    OK(edb_column_set(c2, 5, &n, 4, 0));
    OK(edb_column_drop(s, "lv", "data"));
    seek_row(c, 1);
    OK(edb_escrow_update(c, hits, 5, NULL));
    cr_assert_eq(chunks(), 3, "the escrow update's record lost its dropped value");
    check_clean();
    OK(edb_update(c2));      /* the record did not change since the prepare */
    cr_assert_eq(chunks(), 3, "the update kept the value it prepared: the next write frees it");
    check_clean();
    edb_cursor_close(c2);
    edb_session_end(s2);
    seek_row(c, 2);
    rewrite_n(2);
    cr_assert_eq(chunks(), 0);
    check_clean();
}

/* lmdb_pages.h: how full one LMDB named database of a closed edb database
 * is, read with LMDB directly (the tests of sorted index builds:
 * tests/engine/test_indexbuild.c, tests/tools/test_import_defer.c). */
#ifndef EDB_TEST_LMDB_PAGES_H
#define EDB_TEST_LMDB_PAGES_H

#include <criterion/criterion.h>
#include <lmdb.h>
#include <stdint.h>

/* Named database @name of the environment at @path (not open elsewhere in
 * this process): its leaf pages, its entries, and the leaf pages its nodes
 * would take if every page were full (8-byte node header, key, value, even,
 * plus the page's 2-byte pointer; no overflow values). */
static inline void
test_lmdb_pages(const char *path, const char *name, uint64_t *leaf, uint64_t *ideal,
                uint64_t *entries)
{
    MDB_env *m;
    MDB_txn *t;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 8), 0);
    cr_assert_eq(mdb_env_set_mapsize(m, (size_t)1 << 30), 0);
    cr_assert_eq(mdb_env_open(m, path, MDB_RDONLY, 0600), 0, "open %s", path);
    cr_assert_eq(mdb_txn_begin(m, NULL, MDB_RDONLY, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, name, 0, &dbi), 0, "%s", name);
    MDB_stat st;
    cr_assert_eq(mdb_stat(t, dbi, &st), 0);
    *leaf = st.ms_leaf_pages;
    *entries = st.ms_entries;
    MDB_cursor *c;
    cr_assert_eq(mdb_cursor_open(t, dbi, &c), 0);
    MDB_val k, v;
    uint64_t bytes = 0;
    while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
        bytes += (8 + k.mv_size + v.mv_size + 1) / 2 * 2 + 2;
    mdb_cursor_close(c);
    unsigned room = st.ms_psize - 16;   /* the page header */
    *ideal = (bytes + room - 1) / room;
    mdb_txn_abort(t);
    mdb_env_close(m);
}

#endif

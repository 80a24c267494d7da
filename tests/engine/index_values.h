/* index_values.h: how an index's entries are stored (tests of format 5's
 * empty values: test_indexes2.c, test_upgrade.c).  Needs the engine's
 * internal headers (catalog.h, cursor.h) and helpers.h before it. */
#ifndef EDB_TEST_INDEX_VALUES_H
#define EDB_TEST_INDEX_VALUES_H

/* Entries of index @index of table @table with an empty value, and with one. */
static inline void
test_index_values(edb_env *env, const char *table, const char *index, uint64_t *empty,
                  uint64_t *full)
{
    MDB_txn *txn;
    edb__table *t;
    OK(edb__ro_begin(env, &txn));
    OK(edb__table_load(&t, env, txn, table));
    const edb__index *x = NULL;
    for (uint32_t i = 0; i < t->nidx; i++)
        if (strcmp(t->idx[i].name, index) == 0)
            x = &t->idx[i];
    cr_assert_not_null(x);
    MDB_cursor *mc;
    cr_assert_eq(mdb_cursor_open(txn, x->ks.dbi, &mc), 0);
    MDB_val k, d;
    *empty = *full = 0;
    for (int rc = edb__ks_cursor_get(mc, &x->ks, &k, &d, MDB_FIRST); rc == 0;
         rc = edb__ks_cursor_get(mc, &x->ks, &k, &d, MDB_NEXT))
        ++*(d.mv_size == 0 ? empty : full);
    mdb_cursor_close(mc);
    edb__ro_end(env, txn);
    edb__table_free(t);
}

#endif

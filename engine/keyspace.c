/*
 * keyspace.c: key ranges under a compact id prefix (keyspace.h).
 *
 * Invariant: every key this module writes starts with its range's prefix,
 * and every key it returns had that prefix, which it strips; a cursor
 * positioned outside the range reports MDB_NOTFOUND (the engine's cursors
 * then keep their own position state, seek.c).
 *
 * Thread safety: stateless.
 */
#include "config.h"

#include <errno.h>
#include "error.h"
#include "keyspace.h"
#include "undo.h"

#define LMDB_KEY_MAX 511

static int
prefixed(uint8_t *buf, const edb__ks *ks, const MDB_val *key, MDB_val *out)
{
    if (key->mv_size > LMDB_KEY_MAX - EDB__KS_PREFIX)
        return MDB_BAD_VALSIZE;
    memcpy(buf, ks->pfx, EDB__KS_PREFIX);
    edb__ks_copy(buf + ks->plen, key->mv_data, key->mv_size);
    out->mv_size = key->mv_size + ks->plen;
    out->mv_data = buf;
    return 0;
}

int
edb__ks_del(MDB_txn *txn, const edb__ks *ks, const MDB_val *key)
{
    uint8_t buf[LMDB_KEY_MAX];
    MDB_val k;
    int rc = prefixed(buf, ks, key, &k);
    return rc != 0 ? rc : edb__undo_del(txn, ks->dbi, &k);
}

/* Is the entry LMDB returned (rc, k) in the range?  Strip the prefix. */
static inline int
inside(int rc, const edb__ks *ks, MDB_val *k)
{
    if (rc != 0)
        return rc;
    if (!edb__ks_has(ks, k->mv_data, k->mv_size))
        return MDB_NOTFOUND;
    k->mv_data = (uint8_t *)k->mv_data + ks->plen;
    k->mv_size -= ks->plen;
    return 0;
}

int
edb__ks_cursor_get_slow(MDB_cursor *mc, const edb__ks *ks, MDB_val *k, MDB_val *d, MDB_cursor_op op)
{
    uint8_t buf[LMDB_KEY_MAX];
    MDB_val pk;
    int rc;
    switch (op) {
    case MDB_NEXT:
    case MDB_PREV:
    case MDB_GET_CURRENT:
        return inside(mdb_cursor_get(mc, k, d, op), ks, k);
    case MDB_FIRST:
        pk.mv_size = ks->plen;
        pk.mv_data = buf;
        memcpy(buf, ks->pfx, EDB__KS_PREFIX);
        rc = mdb_cursor_get(mc, &pk, d, MDB_SET_RANGE);
        *k = pk;
        return inside(rc, ks, k);
    case MDB_LAST: {
        /* the first key of the next range, then one back (the prefix as a
         * plen-byte number plus one: past every key that starts with it, and
         * at or before the next range's first key, prefixes being prefix-free) */
        memcpy(buf, ks->pfx, EDB__KS_PREFIX);
        int i = ks->plen - 1;
        while (i >= 0 && buf[i] == 0xFF)
            buf[i--] = 0;
        if (i < 0) {
            rc = mdb_cursor_get(mc, k, d, MDB_LAST);
        } else {
            buf[i]++;
            pk.mv_size = ks->plen;
            pk.mv_data = buf;
            rc = mdb_cursor_get(mc, &pk, d, MDB_SET_RANGE);
            rc = rc == 0 ? mdb_cursor_get(mc, k, d, MDB_PREV)
                         : edb__mdb_is_notfound(rc) ? mdb_cursor_get(mc, k, d, MDB_LAST) : rc;
        }
        return inside(rc, ks, k);
    }
    case MDB_SET_RANGE:
        rc = prefixed(buf, ks, k, &pk);
        if (rc != 0)
            return rc;
        rc = mdb_cursor_get(mc, &pk, d, MDB_SET_RANGE);
        *k = pk;
        return inside(rc, ks, k);
    default:
        return EINVAL;
    }
}

int
edb__ks_clear(MDB_txn *txn, const edb__ks *ks)
{
    MDB_cursor *mc;
    int rc = mdb_cursor_open(txn, ks->dbi, &mc);
    if (rc != 0)
        return rc;
    MDB_val k, d;
    rc = edb__ks_cursor_get(mc, ks, &k, &d, MDB_FIRST);
    while (rc == 0) {
        if ((rc = edb__undo_cursor_del(mc)) != 0)
            break;
        /* seek again rather than lean on where LMDB leaves a cursor after
         * a delete (O(log n) a key, for a drop) */
        rc = edb__ks_cursor_get(mc, ks, &k, &d, MDB_FIRST);
    }
    mdb_cursor_close(mc);
    return edb__mdb_is_notfound(rc) ? 0 : rc;
}

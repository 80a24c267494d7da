/*
 * undo.c: the undo log of nested transaction levels (undo.h).
 *
 * Layout of u->buf: records one after the other, each
 *   offset  size   meaning
 *   0       klen   the LMDB key (with its keyspace prefix: as stored)
 *   klen    vlen   the value the key had before the write (absent: none)
 *   ...     0..7   padding to a multiple of 8
 *   end-24  24     trailer: u64 offset of the record's first byte, u32 the
 *                  MDB_dbi, u32 klen, u64 vlen (UINT64_MAX: the key was absent)
 * so the newest record is found from the end of the log and each record's
 * trailer leads to the one before it.
 *
 * A write appends its record first (the only step that can fail for want of
 * memory), then writes; when LMDB fails the write the record is dropped
 * again.  An MDB_NOOVERWRITE put (inserts) needs no read: its record says
 * "absent".  A put with flags 0 is first tried as MDB_NOOVERWRITE, which
 * finds a fresh key in one descent and otherwise returns the old value (LMDB
 * hands it back with MDB_KEYEXIST); the record then holds that value and
 * the put is made again.
 *
 * Thread safety: as the session that owns the log (undo.h).
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "sys.h"
#include "undo.h"

typedef struct trailer {
    uint64_t start;
    uint32_t dbi;
    uint32_t klen;
    uint64_t vlen;
} trailer;

#define ABSENT UINT64_MAX

/* Logs active in the process (undo.h): a write finds none without asking
 * LMDB for its env (the plain-transaction fast path: one load). */
atomic_int edb__undo_nactive;

static inline size_t
pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* The active log of @txn, or NULL when its writes are not logged. */
static inline edb__undo *
active(MDB_txn *txn)
{
    edb__undo **slot = mdb_env_get_userctx(mdb_txn_env(txn));
    if (slot == NULL || *slot == NULL || (*slot)->txn != txn)
        return NULL;
    return *slot;
}

/* Append a record (@val NULL: absent).  ENOMEM when the log cannot grow. */
static int
append(edb__undo *u, MDB_dbi dbi, const MDB_val *key, const MDB_val *val)
{
    size_t vlen = val != NULL ? val->mv_size : 0;
    size_t body = pad8(key->mv_size + vlen);
    if (key->mv_size > UINT32_MAX || body < vlen)
        return ENOMEM;
    size_t need = body + sizeof(trailer);
    if (need > u->cap - u->len) {
        size_t cap = u->cap != 0 ? u->cap : 4096;
        while (cap - u->len < need) {
            if (cap > SIZE_MAX / 2)
                return ENOMEM;
            cap *= 2;
        }
        unsigned char *p = edb__sys_realloc(u->buf, cap);
        if (p == NULL)
            return ENOMEM;
        u->buf = p;
        u->cap = cap;
    }
    unsigned char *r = u->buf + u->len;
    memcpy(r, key->mv_data, key->mv_size);
    if (vlen != 0)
        memcpy(r + key->mv_size, val->mv_data, vlen);
    trailer t = { u->len, (uint32_t)dbi, (uint32_t)key->mv_size, val != NULL ? vlen : ABSENT };
    memcpy(r + body, &t, sizeof t);
    u->len += need;
    u->nrec++;
    return 0;
}

/* Drop the newest record (its write failed). */
static void
drop_last(edb__undo *u)
{
    trailer t;
    memcpy(&t, u->buf + u->len - sizeof t, sizeof t);
    u->len = (size_t)t.start;
    u->nrec--;
}

void
edb__undo_start(edb__undo *u, MDB_env *env, MDB_txn *txn)
{
    edb__undo **slot = mdb_env_get_userctx(env);
    if (u->txn == NULL)
        atomic_fetch_add_explicit(&edb__undo_nactive, 1, memory_order_relaxed);
    u->txn = txn;
    u->len = 0;
    u->nrec = 0;
    if (slot != NULL)
        *slot = u;
}

void
edb__undo_stop(edb__undo *u, MDB_env *env)
{
    edb__undo **slot = mdb_env_get_userctx(env);
    if (slot != NULL && *slot == u)
        *slot = NULL;
    if (u->txn != NULL)
        atomic_fetch_sub_explicit(&edb__undo_nactive, 1, memory_order_relaxed);
    u->txn = NULL;
    u->len = 0;
    u->nrec = 0;
}

int
edb__undo_rollback(edb__undo *u, size_t mark)
{
    int ret = 0;
    while (u->len > mark) {
        trailer t;
        memcpy(&t, u->buf + u->len - sizeof t, sizeof t);
        unsigned char *r = u->buf + t.start;
        MDB_val k = { t.klen, r };
        int rc;
        if (ret != 0) {
            rc = 0;     /* LMDB refuses the txn now: only truncate */
        } else if (t.vlen == ABSENT) {
            rc = mdb_del(u->txn, (MDB_dbi)t.dbi, &k, NULL);
            if (edb__mdb_is_notfound(rc))
                rc = 0;
        } else {
            MDB_val v = { (size_t)t.vlen, r + t.klen };
            rc = mdb_put(u->txn, (MDB_dbi)t.dbi, &k, &v, 0);
        }
        if (rc != 0)
            ret = rc;
        u->len = (size_t)t.start;
        u->nrec--;
    }
    return ret;
}

void
edb__undo_free(edb__undo *u)
{
    free(u->buf);
    u->buf = NULL;
    u->len = u->cap = u->nrec = 0;
}

int
edb__undo_put_slow(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags)
{
    edb__undo *u = active(txn);
    if (u == NULL)
        return mdb_put(txn, dbi, key, data, flags);
    /* MDB_APPEND (update.c tries it first) never overwrites: here it is a
     * plain MDB_NOOVERWRITE put (a key that is not the last one is put in
     * its place instead of refused, which that caller retries anyway), and
     * as LMDB's MDB_APPEND it leaves *data alone when the key exists */
    bool appending = (flags & MDB_APPEND) != 0;
    if (appending)
        flags = (flags & ~(unsigned)MDB_APPEND) | MDB_NOOVERWRITE;
    if (flags & ~(unsigned)MDB_NOOVERWRITE)
        return EINVAL;
    int rc = append(u, dbi, key, NULL);
    if (rc != 0)
        return rc;
    MDB_val d = *data;
    rc = mdb_put(txn, dbi, key, &d, MDB_NOOVERWRITE);
    if (rc == 0)
        return 0;
    drop_last(u);
    if (!edb__mdb_is_keyexist(rc) || (flags & MDB_NOOVERWRITE)) {
        if (edb__mdb_is_keyexist(rc) && !appending)
            *data = d;      /* as LMDB: the existing value */
        return rc;
    }
    /* d is the old value (in the map: copied before the page changes) */
    if ((rc = append(u, dbi, key, &d)) != 0)
        return rc;
    rc = mdb_put(txn, dbi, key, data, 0);
    if (rc != 0)
        drop_last(u);
    return rc;
}

int
edb__undo_del_slow(MDB_txn *txn, MDB_dbi dbi, MDB_val *key)
{
    edb__undo *u = active(txn);
    if (u == NULL)
        return mdb_del(txn, dbi, key, NULL);
    MDB_val old;
    int rc = mdb_get(txn, dbi, key, &old);
    if (rc != 0)
        return rc;
    if ((rc = append(u, dbi, key, &old)) != 0)
        return rc;
    rc = mdb_del(txn, dbi, key, NULL);
    if (rc != 0)
        drop_last(u);
    return rc;
}

int
edb__undo_cursor_del_slow(MDB_cursor *mc)
{
    edb__undo *u = active(mdb_cursor_txn(mc));
    if (u == NULL)
        return mdb_cursor_del(mc, 0);
    MDB_val k, v;
    int rc = mdb_cursor_get(mc, &k, &v, MDB_GET_CURRENT);
    if (rc != 0)
        return rc;
    if ((rc = append(u, mdb_cursor_dbi(mc), &k, &v)) != 0)
        return rc;
    rc = mdb_cursor_del(mc, 0);
    if (rc != 0)
        drop_last(u);
    return rc;
}

/*
 * seek.c: making search keys, seeking, index ranges and moves.
 *
 * Comparisons are on an entry's logical key L (the index key without the
 * primary key a non-unique entry carries) against the search key K, as
 * bytes (memcmp, shorter first on a tie), which is the order of values
 * (key.c).  Segments are self-delimiting, so no full key is a proper prefix
 * of another full key or of a search key:
 *   GE  first L >= K:  MDB_SET_RANGE(K)
 *   EQ  GE, then L must start with K (a prefix key matches its extensions)
 *   GT  first L > K:   SET_RANGE(K); on L == K, SET_RANGE(successor(K))
 *   LT  last L < K:    SET_RANGE(K) then PREV (LAST when nothing is >= K)
 *   LE  last L <= K:   GT's position then PREV (LAST when GT finds nothing)
 * EDB_KEY_PREFIX_END replaces K by its successor S, so LE/LT and upper range
 * limits include every entry that starts with the key.  Such a key stands
 * for a point after every entry that starts with the key made and before
 * every other greater entry (ESE's end-limit keys), but S itself may be the
 * whole key of the next entry (the successor of int 2 is int 3's key): so no
 * entry equals it, LE is LT, GT is GE, an upper limit never includes an entry
 * equal to S and a lower limit always does, and EQ is EDB_INVAL.
 *
 * Ranges: an upper limit stops NEXT moves at the first entry past it, a lower
 * limit stops PREV moves.  Stopping leaves the cursor between the last entry
 * inside and the first outside, so moving back works.
 *
 * Thread safety: as the session.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "collate.h"
#include "cursor.h"
#include "error.h"
#include "key.h"

static int
cmp_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int r = n ? memcmp(a, b, n) : 0;
    if (r != 0)
        return r;
    return alen < blen ? -1 : alen > blen;
}

/* edb_key_make with EDB_KEY_NORMALIZED: @data replaces the key, once it is
 * checked to be whole segments of the current index (key.c's decoder). */
static int
key_make_normalized(edb_cursor *c, const void *data, size_t size, unsigned flags)
{
    if (flags & EDB_KEY_PARTIAL)
        return edb__err(EDB_INVAL, "edb_key_make: EDB_KEY_NORMALIZED with EDB_KEY_PARTIAL");
    if (data == NULL || size == 0 || size > EDB_MAX_KEY_SIZE)
        return edb__err(EDB_INVAL, "edb_key_make: a normalized key of %zu bytes%s", size,
                        data == NULL ? " at NULL" : "");
    if (c->t == NULL || c->bind_schema_seq != c->s->schema_seq) {
        MDB_txn *txn;
        EDB_RET(edb__txn_enter(c->s, false, &txn));
        EDB_RET(edb__txn_leave(c->s, edb__cursor_bind(c, txn)));
    }
    const edb__table *t = c->t;
    const edb__index *x = c->index >= 0 ? &t->idx[c->index] : (t->primary >= 0 ? &t->idx[t->primary] : NULL);
    unsigned nseg = 0;
    if (x == NULL) {
        if (size != 8)
            return edb__err(EDB_INVAL, "edb_key_make: a normalized implicit key of '%s' has 8 bytes, "
                            "not %zu", t->name, size);
        nseg = 1;
    } else {
        size_t off = 0;
        while (off < size) {
            if (nseg >= x->nseg)
                return edb__err(EDB_INVAL, "edb_key_make: the normalized key has more than the %u "
                                "segments of index '%s'", x->nseg, x->name);
            const edb__column *def = &t->cols[x->seg[nseg].col - 1];
            int rc = edb__key_decode(data, size, &off, def->type,
                                     edb__key_mode(x->seg[nseg].desc, x->flags), NULL, 0, NULL);
            if (rc < 0)
                return edb__err(EDB_INVAL, "edb_key_make: the bytes are no normalized key of index "
                                "'%s' (segment %u, column '%s', %s)", x->name, nseg + 1, def->name,
                                edb_coltype_name(def->type));
            nseg++;
        }
    }
    EDB_RET(edb__buf_reserve(&c->key, EDB_MAX_KEY_SIZE));
    memcpy(c->key.p, data, size);
    size_t len = size;
    c->key_closed = false;
    if (flags & EDB_KEY_PREFIX_END) {
        if (edb__key_successor(c->key.p, &len) != 0)
            c->key.p[len < EDB_MAX_KEY_SIZE ? len : EDB_MAX_KEY_SIZE - 1] = 0xFF;
        c->key_closed = true;
    }
    c->key.len = len;
    c->key_nseg = nseg;
    c->key_partial = false;
    c->key_valid = true;
    edb__err_clear();
    return 0;
}

int
edb_key_make(edb_cursor *c, const void *data, size_t size, unsigned flags)
{
    if (c == NULL)
        return edb__err(EDB_INVAL, "edb_key_make: cursor is NULL");
    EDB_RET(edb__cursor_check_live(c, "edb_key_make"));
    if (flags & ~(EDB_KEY_NEW | EDB_KEY_PREFIX_END | EDB_KEY_NORMALIZED | EDB_KEY_PARTIAL))
        return edb__err(EDB_INVAL, "edb_key_make: unknown flags 0x%x", flags);
    if (flags & EDB_KEY_NORMALIZED)
        return key_make_normalized(c, data, size, flags);
    /* The fast path (point lookups): a new key's first segment, a 64-bit
     * integer, on a cursor bound since the last schema change.  The general
     * path below writes the same bytes (tests/engine/test_keys.c). */
    const edb__table *t = c->t;
    if (flags == EDB_KEY_NEW && data != NULL && size == 8 && t != NULL &&
        c->bind_schema_seq == c->s->schema_seq && c->key.cap >= EDB_MAX_KEY_SIZE) {
        const edb__index *x = c->index >= 0 ? &t->idx[c->index] : t->primary >= 0 ? &t->idx[t->primary] : NULL;
        edb_coltype type = x != NULL ? t->cols[x->seg[0].col - 1].type : EDB_COL_BINARY;
        if (type == EDB_COL_INT64 || type == EDB_COL_UINT64) {
            uint64_t v;
            memcpy(&v, data, 8);
            edb__key_put64(c->key.p, v, type == EDB_COL_INT64, x->seg[0].desc);
            c->key.len = 9;
            c->key_nseg = 1;
            c->key_closed = false;
            c->key_partial = false;
            c->key_valid = true;
            edb__err_clear();
            return 0;
        }
    }
    if (!(flags & EDB_KEY_NEW) && !c->key_valid)
        return edb__err(EDB_INVAL, "edb_key_make: the first segment needs EDB_KEY_NEW");
    if (data == NULL && size != 0)
        return edb__err(EDB_INVAL, "edb_key_make: NULL data with size %zu", size);
    if (flags & EDB_KEY_NEW) {
        c->key.len = 0;
        c->key_nseg = 0;
        c->key_closed = false;
        c->key_partial = false;
        c->key_valid = false;
    }
    if (c->key_closed)
        return edb__err(EDB_INVAL, "edb_key_make: no segment may follow EDB_KEY_PREFIX_END");
    if (c->key_partial)
        return edb__err(EDB_INVAL, "edb_key_make: no segment may follow EDB_KEY_PARTIAL");
    if (c->t == NULL || c->bind_schema_seq != c->s->schema_seq) {
        MDB_txn *txn;
        EDB_RET(edb__txn_enter(c->s, false, &txn));
        EDB_RET(edb__txn_leave(c->s, edb__cursor_bind(c, txn)));
    }
    int ret = 0;
    /* The segment is encoded in place, after the key's current bytes;
     * c->key.len moves only on success. */
    if (c->key.cap < EDB_MAX_KEY_SIZE)
        EDB_RET(edb__buf_reserve(&c->key, EDB_MAX_KEY_SIZE));
    uint8_t *buf = c->key.p;
    size_t len = c->key.len;
    t = c->t;
    const edb__index *x = c->index >= 0 ? &t->idx[c->index] : (t->primary >= 0 ? &t->idx[t->primary] : NULL);
    if (x == NULL) {
        /* the implicit key: one unsigned 64-bit value, stored big-endian */
        if (c->key_nseg >= 1)
            return edb__err(EDB_INVAL, "edb_key_make: the implicit key of '%s' has one segment", t->name);
        if (data == NULL || size != 8)
            return edb__err(EDB_INVAL, "edb_key_make: the implicit key of '%s' is a uint64", t->name);
        if (flags & EDB_KEY_PARTIAL)
            return edb__err(EDB_INVAL, "edb_key_make: EDB_KEY_PARTIAL on the implicit key of '%s'",
                            t->name);
        uint64_t v;
        memcpy(&v, data, 8);
        for (int i = 0; i < 8; i++)
            buf[i] = (uint8_t)(v >> (56 - 8 * i));
        len = 8;
    } else {
        if (c->key_nseg >= x->nseg)
            return edb__err(EDB_INVAL, "edb_key_make: index '%s' has %u segments", x->name, x->nseg);
        const edb__column *def = &t->cols[x->seg[c->key_nseg].col - 1];
        if (def->collation[0] != '\0' && def->coll == NULL) {
            const char *why = edb__coll_unavailable();
            return edb__err(EDB_INVAL, "edb_key_make: collation '%s' of column '%s': %s",
                            def->collation, def->name, why ? why : "this ICU cannot open it");
        }
        size_t before = len;
        ret = edb__key_append_coll(buf, EDB_MAX_KEY_SIZE, &len, def->type, def->coll, data, size,
                                   edb__key_mode(x->seg[c->key_nseg].desc, x->flags));
        if (ret == 0 && (x->flags & EDB_IDX_TUPLES) && data != NULL) {
            /* a tuple key is a prefix of the tuples that start with it: the
             * segment without its 2-byte terminator (SEEK_EQ finds the first
             * entry that starts with the key) */
            size_t chars = 0;
            for (size_t i = 0; i < size; i++)
                chars += (((const uint8_t *)data)[i] & 0xC0) != 0x80;
            if (chars < x->tuple_min || chars > x->tuple_max) {
                len = before;
                return edb__err(EDB_INVAL, "edb_key_make: tuple index '%s' is searched with %u to %u "
                                "characters, not %zu", x->name, x->tuple_min, x->tuple_max, chars);
            }
            len -= 2;
        }
        if (ret == EDB_TOOBIG)
            return edb__err(EDB_TOOBIG, "edb_key_make: key of index '%s' over %d bytes", x->name,
                            EDB_MAX_KEY_SIZE);
        if (ret < 0)
            return edb__err(ret, "edb_key_make: segment %u (column '%s', %s): bad value",
                            c->key_nseg + 1, def->name, edb_coltype_name(def->type));
        if (flags & EDB_KEY_PARTIAL) {
            /* a string prefix: the segment without its 2-byte terminator
             * (doc/key-encoding.md), a byte prefix of every extension's */
            if (data == NULL || (def->type != EDB_COL_TEXT && def->type != EDB_COL_BINARY))
                return edb__err(EDB_INVAL, "edb_key_make: EDB_KEY_PARTIAL needs a TEXT or BINARY "
                                "value (column '%s' is %s%s)", def->name,
                                edb_coltype_name(def->type), data == NULL ? ", value NULL" : "");
            len -= 2;
        }
    }
    if (flags & EDB_KEY_PREFIX_END) {
        if (edb__key_successor(buf, &len) != 0) {
            /* nothing sorts after it: an all-0xFF key; keep it and let
             * comparisons treat it as the largest */
            buf[len < EDB_MAX_KEY_SIZE ? len : EDB_MAX_KEY_SIZE - 1] = 0xFF;
        }
        c->key_closed = true;
    }
    c->key.len = len;
    c->key_nseg++;
    c->key_partial = (flags & EDB_KEY_PARTIAL) != 0;
    c->key_valid = true;
    edb__err_clear();
    return 0;
}

/* An LMDB lookup's result as an edb code. */
static int
found(int rc)
{
    if (rc == 0)
        return 0;
    if (edb__mdb_is_notfound(rc))
        return EDB_NOTFOUND;
    return edb__mdb_err(rc, "cursor");
}

/* Raw LMDB positioning on the cursor's DB. */
static int
mget(edb_cursor *c, MDB_val *k, MDB_val *d, MDB_cursor_op op)
{
    return found(edb__ks_cursor_get(c->mc, &c->mc_ks, k, d, op));
}

/* Land on the entry (k, d) the LMDB cursor just returned.  On the primary
 * index d is the record: keep it for column reads (cursor.h, record cache). */
static inline __attribute__((always_inline)) int
land(edb_cursor *c, const MDB_val *k, const MDB_val *d)
{
    EDB_RET(edb__cursor_set_on(c, k, d));
    if (c->index < 0) {
        c->rv = *d;
        c->rv_txn_id = edb__txn_id(c->s);
        c->rv_write_seq = c->s->write_seq;
        c->rv_hdr_ok = false;
        c->rv_ok = true;
    }
    return 0;
}

static int
set_range(edb_cursor *c, const void *key, size_t len, MDB_val *k, MDB_val *d)
{
    k->mv_size = len;
    k->mv_data = (void *)key;
    if (len == 0)
        return mget(c, k, d, MDB_FIRST);
    return found(edb__ks_set_range(c->mc, &c->mc_ks, k, d));
}

/* First entry with L > K. */
static int
find_gt(edb_cursor *c, const edb__buf *key, MDB_val *k, MDB_val *d)
{
    int rc = set_range(c, key->p, key->len, k, d);
    if (rc != 0)
        return rc;
    size_t l = edb__cursor_logical_len(c, k, d);
    if (cmp_bytes(k->mv_data, l, key->p, key->len) != 0)
        return 0;
    uint8_t buf[EDB__LMDB_KEY_MAX + 1];
    size_t n = key->len;
    memcpy(buf, key->p, n);
    if (edb__key_successor(buf, &n) != 0)
        return EDB_NOTFOUND;
    return set_range(c, buf, n, k, d);
}

/* Is entry (k, d) outside the cursor's range for a move in direction dir? */
static bool
outside(const edb_cursor *c, const MDB_val *k, const MDB_val *d, int dir)
{
    if (!c->range)
        return false;
    bool upper = (c->range_flags & EDB_RANGE_UPPER) != 0;
    if ((dir > 0) != upper)
        return false;
    size_t l = edb__cursor_logical_len(c, k, d);
    int r = cmp_bytes(k->mv_data, l, c->range_key.p, c->range_key.len);
    bool incl = (c->range_flags & EDB_RANGE_INCLUSIVE) != 0;
    if (upper)
        return incl ? r > 0 : r >= 0;
    return incl ? r < 0 : r <= 0;
}

/* Is the key being made a whole key of the primary index (or of the implicit
 * one), so that at most one entry has it? */
static inline bool
whole_primary_key(const edb_cursor *c)
{
    const edb__table *t = c->t;
    unsigned nseg = t->primary >= 0 ? t->idx[t->primary].nseg : 1;
    return c->key_nseg == nseg && !c->key_closed && !c->key_partial;
}

static inline int
enter_bound(edb_cursor *c, MDB_txn **txn, const char *fn)
{
    if (c == NULL)
        return edb__err(EDB_INVAL, "%s: cursor is NULL", fn);
    EDB_RET(edb__txn_enter(c->s, false, txn));
    int rc = edb__cursor_bind(c, *txn);
    if (rc < 0)
        return edb__txn_leave(c->s, rc);
    return 0;
}

int
edb_cursor_seek(edb_cursor *c, unsigned how)
{
    MDB_txn *txn;
    if (c != NULL)
        EDB_RET(edb__cursor_check_live(c, "edb_cursor_seek"));
    if (c != NULL && (how < EDB_SEEK_EQ || how > EDB_SEEK_GT))
        return edb__err(EDB_INVAL, "edb_cursor_seek: mode %u", how);
    if (c != NULL && !c->key_valid)
        return edb__err(EDB_INVAL, "edb_cursor_seek: no key was made");
    /* A PREFIX_END key is the successor of the key made, which no entry
     * equals or starts with: SEEK_EQ would land on the next key's entries
     * (ESE refuses JET_bitFullColumnEndLimit with JET_bitSeekEQ too). */
    if (c != NULL && how == EDB_SEEK_EQ && c->key_closed)
        return edb__err(EDB_INVAL, "edb_cursor_seek: EDB_SEEK_EQ with an EDB_KEY_PREFIX_END key "
                        "(it sorts after every entry that starts with the key: use it with "
                        "EDB_SEEK_LT/LE or as an upper range limit)");
    if (c != NULL && c->key_closed)              /* no entry equals an end-limit key */
        how = how == EDB_SEEK_LE ? EDB_SEEK_LT : how == EDB_SEEK_GT ? EDB_SEEK_GE : how;
    EDB_RET(enter_bound(c, &txn, "edb_cursor_seek"));
    edb__buf *key = &c->key;
    MDB_val k, d;
    int rc;
    bool exact = false;          /* found by mdb_get: mc did not move */
    c->range = false;
    switch (how) {
    case EDB_SEEK_GE:
        rc = set_range(c, key->p, key->len, &k, &d);
        break;
    case EDB_SEEK_EQ:
        if (c->index < 0 && whole_primary_key(c)) {
            /* One record by its whole key: mdb_get's exact search is shorter
             * than a positioned cursor's SET_RANGE (which first compares with
             * the old leaf's ends) and needs no prefix check.  mc stays where
             * it was and is marked stale below: a move finds the entry by its
             * anchor (doc/performance.md, "Lookups at 1,000,000 rows"). */
            k.mv_size = key->len;
            k.mv_data = key->p;
            rc = found(edb__ks_get(txn, &c->mc_ks, &k, &d));
            exact = true;
            break;
        }
        rc = set_range(c, key->p, key->len, &k, &d);
        if (rc == 0) {
            size_t l = edb__cursor_logical_len(c, &k, &d);
            if (l < key->len || memcmp(k.mv_data, key->p, key->len) != 0)
                rc = EDB_NOTFOUND;
        }
        break;
    case EDB_SEEK_GT:
        rc = find_gt(c, key, &k, &d);
        break;
    case EDB_SEEK_LT:
        rc = set_range(c, key->p, key->len, &k, &d);
        rc = rc == 0 ? mget(c, &k, &d, MDB_PREV) : rc == EDB_NOTFOUND ? mget(c, &k, &d, MDB_LAST) : rc;
        break;
    default: /* LE */
        rc = find_gt(c, key, &k, &d);
        rc = rc == 0 ? mget(c, &k, &d, MDB_PREV) : rc == EDB_NOTFOUND ? mget(c, &k, &d, MDB_LAST) : rc;
        break;
    }
    c->key_valid = false;
    if (rc == 0) {
        rc = land(c, &k, &d);
        if (exact)
            c->mc_valid = false;
    } else {
        c->pos = POS_NONE;
        c->mc_valid = false;
        if (rc == EDB_NOTFOUND)
            rc = edb__err(EDB_NOTFOUND, "no entry of '%s' matches the seek", c->tname);
    }
    rc = edb__txn_leave(c->s, rc);
    if (rc == 0)
        edb__err_clear();
    return rc;
}

/* Bring mc onto the anchor; returns the state after (POS_ON or POS_BETWEEN). */
static int
resync(edb_cursor *c, int st, MDB_val *k, MDB_val *d, int *found)
{
    *found = set_range(c, c->anchor.p, c->anchor.len, k, d);
    if (*found < 0 && *found != EDB_NOTFOUND)
        return *found;
    if (st == POS_ON && *found == 0 && k->mv_size == c->anchor.len &&
        memcmp(k->mv_data, c->anchor.p, c->anchor.len) == 0) {
        c->mc_valid = true;
        return POS_ON;
    }
    return POS_BETWEEN;
}

/* The end of a move by one: rc and (k, d) are what LMDB returned. */
static inline int
step_done(edb_cursor *c, int rc, const MDB_val *k, const MDB_val *d, int dir)
{
    if (rc == EDB_NOTFOUND) {
        c->pos = dir > 0 ? POS_AFTER : POS_BEFORE;
        c->mc_valid = false;
        return EDB_NOTFOUND;
    }
    if (rc < 0)
        return rc;
    if (outside(c, k, d, dir)) {
        /* Stop between the last entry inside and this one. */
        EDB_RET(edb__buf_set(&c->anchor, k->mv_data, k->mv_size));
        if (dir < 0) {
            uint8_t zero = 0;
            EDB_RET(edb__buf_add(&c->anchor, &zero, 1));   /* just after this entry */
        }
        c->pos = POS_BETWEEN;
        c->mc_valid = false;
        return EDB_NOTFOUND;
    }
    return land(c, k, d);
}

static int
step(edb_cursor *c, int dir)
{
    MDB_val k, d;
    int rc, st = edb__cursor_state(c);
    if (st == POS_ON && c->mc_valid) {
        rc = mget(c, &k, &d, dir > 0 ? MDB_NEXT : MDB_PREV);
    } else if (st == POS_ON || st == POS_BETWEEN) {
        int found;
        int now = resync(c, st, &k, &d, &found);
        if (now < 0)
            return now;
        if (now == POS_ON)
            rc = mget(c, &k, &d, dir > 0 ? MDB_NEXT : MDB_PREV);
        else if (dir > 0)
            rc = found;                        /* first entry >= anchor */
        else
            rc = found == 0 ? mget(c, &k, &d, MDB_PREV) : mget(c, &k, &d, MDB_LAST);
    } else if ((st == POS_NONE || st == POS_BEFORE) && dir > 0) {
        rc = mget(c, &k, &d, MDB_FIRST);
    } else if ((st == POS_NONE || st == POS_AFTER) && dir < 0) {
        rc = mget(c, &k, &d, MDB_LAST);
    } else {
        rc = EDB_NOTFOUND;
    }
    return step_done(c, rc, &k, &d, dir);
}

/* edb_cursor_move after its fast path. */
static __attribute__((noinline)) int
cursor_move_general(edb_cursor *c, int how)
{
    MDB_txn *txn;
    EDB_RET(enter_bound(c, &txn, "edb_cursor_move"));
    int rc = 0;
    if ((how == EDB_MOVE_NEXT || how == EDB_MOVE_PREV) && c->mc_valid &&
        edb__cursor_state(c) == POS_ON) {
        /* the common case: the LMDB cursor is on the current entry */
        MDB_val k, d;
        rc = mget(c, &k, &d, how > 0 ? MDB_NEXT : MDB_PREV);
        rc = step_done(c, rc, &k, &d, how);
    } else if (how == EDB_MOVE_FIRST || how == EDB_MOVE_LAST) {
        c->range = false;
        c->pos = how == EDB_MOVE_FIRST ? POS_BEFORE : POS_AFTER;
        rc = step(c, how == EDB_MOVE_FIRST ? 1 : -1);
    } else {
        int dir = how > 0 ? 1 : -1;
        long n = how > 0 ? how : -(long)how;
        for (long i = 0; i < n && rc == 0; i++)
            rc = step(c, dir);
    }
    if (rc == EDB_NOTFOUND)
        rc = edb__err(EDB_NOTFOUND, "no more entries in '%s'", c->tname);
    rc = edb__txn_leave(c->s, rc);
    if (rc == 0)
        edb__err_clear();
    return rc;
}

int
edb_cursor_move(edb_cursor *c, int how)
{
    if (c != NULL && how == 0)
        return edb__err(EDB_INVAL, "edb_cursor_move: 0 is not a move");
    /* The fast path: a move by one in an explicit transaction, the cursor
     * bound (the inline part of edb__cursor_bind holds), on an entry with the
     * LMDB cursor on it, no range.  Anything else takes the general path
     * (a function of its own: the fast path saves no registers for it). */
    if (c != NULL && (how == EDB_MOVE_NEXT || how == EDB_MOVE_PREV)) {
        const edb_session *s = c->s;
        if (s->depth > 0 && s->failed == 0 && c->bound_id == s->cur_id &&
            c->mc_write_seq == s->write_seq && c->bind_schema_seq == s->schema_seq &&
            c->mc_valid && c->pos == POS_ON && !c->range) {
            MDB_val k, d;
            int rc = edb__ks_cursor_get(c->mc, &c->mc_ks, &k, &d, how > 0 ? MDB_NEXT : MDB_PREV);
            rc = rc == 0 ? land(c, &k, &d) : step_done(c, found(rc), &k, &d, how);
            if (rc == 0) {
                edb__err_clear();
                return 0;
            }
            if (rc == EDB_NOTFOUND)
                rc = edb__err(EDB_NOTFOUND, "no more entries in '%s'", c->tname);
            return edb__txn_leave(c->s, rc);
        }
    }
    return cursor_move_general(c, how);
}

int
edb_cursor_set_range(edb_cursor *c, unsigned flags)
{
    MDB_txn *txn;
    if (c != NULL)
        EDB_RET(edb__cursor_check_live(c, "edb_cursor_set_range"));
    if (c != NULL && (flags & ~(EDB_RANGE_UPPER | EDB_RANGE_INCLUSIVE | EDB_RANGE_REMOVE)))
        return edb__err(EDB_INVAL, "edb_cursor_set_range: unknown flags 0x%x", flags);
    if (c != NULL && (flags & EDB_RANGE_REMOVE)) {
        c->range = false;
        edb__err_clear();
        return 0;
    }
    if (c != NULL && !c->key_valid)
        return edb__err(EDB_INVAL, "edb_cursor_set_range: no key was made");
    EDB_RET(enter_bound(c, &txn, "edb_cursor_set_range"));
    int rc = 0;
    MDB_val k, d;
    int st = edb__cursor_state(c);
    if (st != POS_ON) {
        rc = edb__err(EDB_NOCURRENT, "edb_cursor_set_range: the cursor on '%s' is not on an entry",
                      c->tname);
    } else {
        int found;
        if (!c->mc_valid) {
            rc = resync(c, st, &k, &d, &found);
            if (rc == POS_BETWEEN) {
                rc = edb__err(EDB_RECORD_DELETED, "edb_cursor_set_range: the cursor's entry of "
                              "'%s' was deleted", c->tname);
            } else if (rc == POS_ON) {
                rc = 0;
            }
        }
        if (rc == 0) {
            k.mv_data = c->anchor.p;
            k.mv_size = c->anchor.len;
            d.mv_data = c->pk.p;
            d.mv_size = c->pk.len;
            c->range = true;
            /* an end-limit key lies before the entry equal to its bytes */
            if (c->key_closed)
                flags = (flags & EDB_RANGE_UPPER) ? flags & ~EDB_RANGE_INCLUSIVE
                                                  : flags | EDB_RANGE_INCLUSIVE;
            c->range_flags = flags;
            rc = edb__buf_set(&c->range_key, c->key.p, c->key.len);
            if (rc == 0 && outside(c, &k, &d, (flags & EDB_RANGE_UPPER) ? 1 : -1)) {
                c->range = false;
                rc = edb__err(EDB_NOTFOUND, "the current entry of '%s' is already outside the range",
                              c->tname);
            }
            if (rc < 0)
                c->range = false;
        }
    }
    c->key_valid = false;
    rc = edb__txn_leave(c->s, rc);
    if (rc == 0)
        edb__err_clear();
    return rc;
}

int
edb_index_count(edb_cursor *c, uint64_t *out, uint64_t limit)
{
    if (out == NULL)
        return edb__err(EDB_INVAL, "edb_index_count: out is NULL");
    *out = 0;
    if (c != NULL)
        EDB_RET(edb__cursor_check_live(c, "edb_index_count"));
    MDB_txn *txn;
    EDB_RET(enter_bound(c, &txn, "edb_index_count"));
    int st = edb__cursor_state(c);
    uint64_t n = 0;
    int rc = 0;
    if (st == POS_NONE) {
        rc = edb__err(EDB_NOCURRENT, "edb_index_count: the cursor on '%s' is not positioned",
                      c->tname);
    } else if (st != POS_AFTER) {
        /* A cursor of its own: c's position and LMDB cursor stay as they are. */
        const edb__ks *ks = edb__cursor_ks(c);
        MDB_cursor *mc;
        int m = mdb_cursor_open(txn, ks->dbi, &mc);
        if (m != 0)
            rc = edb__mdb_err(m, "edb_index_count");
        else {
            MDB_val k = { c->anchor.len, c->anchor.p }, d;
            /* ON or BETWEEN: from the first entry >= anchor (a deleted
             * entry's successor, or the first inside a range stop) */
            m = st == POS_BEFORE ? edb__ks_cursor_get(mc, ks, &k, &d, MDB_FIRST)
                                 : edb__ks_cursor_get(mc, ks, &k, &d, MDB_SET_RANGE);
            while (m == 0 && (limit == 0 || n < limit) && !outside(c, &k, &d, 1)) {
                n++;
                m = edb__ks_cursor_get(mc, ks, &k, &d, MDB_NEXT);
            }
            if (m != 0 && !edb__mdb_is_notfound(m))
                rc = edb__mdb_err(m, "edb_index_count");
            mdb_cursor_close(mc);
        }
    }
    rc = edb__txn_leave(c->s, rc);
    if (rc == 0) {
        *out = n;
        edb__err_clear();
    }
    return rc;
}

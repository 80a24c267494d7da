/*
 * cursor.h: the cursor's private body (cursor.c, seek.c, update.c).
 *
 * Position.  A cursor remembers its entry by value: `anchor` is the full LMDB
 * key of the current index entry (for the primary index the record's key; for
 * a non-unique secondary index the logical key followed by the primary key,
 * which makes every entry's key distinct) and `pk` the primary key of its
 * record.  The MDB_cursor is only a cache: it is trusted while the session's
 * txn id (edb__txn_id) and write_seq are those it was positioned under,
 * otherwise the entry is found again by key.  States:
 *   POS_NONE    nowhere (just opened, failed seek): NEXT = FIRST, PREV = LAST
 *   POS_ON      on the entry `anchor`
 *   POS_BETWEEN between entries: NEXT is the first entry >= anchor, PREV the
 *               last entry < anchor (after a delete or a range stop)
 *   POS_BEFORE  before the first entry;  POS_AFTER  after the last
 *
 * Currency (ESE).  The position is kept across every begin, commit and
 * rollback of the session's transactions, and across other sessions'
 * commits: POS_ON means "on the entry `anchor`", whether or not that entry
 * still exists in the current transaction.  Reads, REPLACE, delete and
 * escrow find the record again by `pk` and return EDB_RECORD_DELETED when it
 * is gone; NEXT and PREV continue from the anchor (resync in seek.c: the
 * first entry >= anchor, the last < anchor).  A delete through the cursor
 * leaves it POS_ON on the deleted entry, so a rollback puts it back on the
 * record.
 *
 * Record cache.  `rv` is the current record's value as LMDB returned it
 * (pointing into LMDB's pages) and `rv_hdr` its checked header once a column
 * was read.  LMDB keeps a value valid until the next write in its txn or the
 * txn's end, so the cache is used only while all of these hold: rv_ok (set
 * when a move or seek lands on an entry and the record is at hand, cleared by
 * every landing (edb__cursor_set_on) and by every bind that had to look at
 * the schema), the state is POS_ON, the session's txn id and write_seq are
 * rv_txn_id and rv_write_seq, and no schema change happened since the last
 * bind (schema_seq: edb_column_get's fast path compares it, the general path
 * binds).  Every row write through the session and every end of a level (a
 * rolled-back nested one too) bump write_seq; a schema change that rewrites
 * or drops a DB either bumps it (index creation) or is a schema change the
 * bind sees (table drop); no other session can write in this session's txn.
 *
 * Fast paths.  edb_cursor_move by one and edb_column_get skip the general
 * code when, in an explicit transaction, the inline part of edb__cursor_bind
 * would return at once and the position (and for a read the record cache) is
 * valid; they do exactly what the general path would in that state.
 * edb_column_get's leanest path also needs the column id to be cc_col, the
 * last single-valued column it resolved against c->t (edb__colid_pos: the
 * resolution depends on nothing but c->t, which only bind replaces, and bind
 * clears cc_col), and a version 1 record that holds the column: it then
 * decodes only the record's column count, the last end offset and the two
 * offsets around the column (the checks edb__rec_parse and
 * edb__rec_hdr_view make), without filling rv_hdr; where those are depends
 * only on the record's first 4 bytes (version and column count), cc_pos and
 * c->t's column count, so it keeps them for the last such 4 bytes (cc_h4).
 */
#ifndef EDB_CURSOR_H
#define EDB_CURSOR_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "record.h"
#include "session.h"

enum { POS_NONE, POS_ON, POS_BETWEEN, POS_BEFORE, POS_AFTER };

/* LMDB's key limit less the keyspace's id prefix (keyspace.h); a non-unique
 * index entry (logical key + primary key) must fit. */
#define EDB__LMDB_KEY_MAX (511 - EDB__KS_PREFIX)

struct edb_cursor {
    edb_session *s;
    struct edb_cursor *next, *prev;     /* the session's list */
    char tname[EDB__NAME_MAX + 1];
    uint64_t t_ident;                   /* identity of its table (edb__table.created),
                                           0 until the first bind */
    edb__table *t;                      /* schema as of the last bind */
    edb__buf t_blob;                    /* its stored bytes: an equal blob needs no decoding */
    int index;                          /* position in t->idx, or -1: implicit primary */
    char index_name[EDB__NAME_MAX + 1]; /* "" for the primary */
    uint64_t index_ident;               /* identity of that index (edb__index.id) */

    MDB_cursor *mc;                     /* cache, see above */
    edb__ks mc_ks;                      /* the range mc walks */
    bool mc_rdonly;                     /* read txn cursors must be closed by us */
    uint64_t mc_txn_id, mc_write_seq;
    bool mc_valid;                      /* mc is on anchor */
    uint64_t bound_id;                  /* txn id of the last complete bind (0: none since
                                           mc was dropped): schema and mc belong to it */
    uint64_t bind_txn_id;               /* schema checked under this txn */
    uint64_t bind_schema_seq;           /* ... and this session schema_seq */

    int pos;
    edb__buf anchor;                    /* full LMDB key of the entry */
    edb__buf pk;                        /* primary key of its record */

    edb__buf key;                       /* search key being made */
    unsigned key_nseg;
    bool key_valid, key_closed;
    bool key_partial;                   /* its last segment is a string prefix (EDB_KEY_PARTIAL) */

    bool range;
    unsigned range_flags;
    edb__buf range_key;

    edb_colid cc_col;                   /* column cache: a single-valued column id the fast
                                           path of edb_column_get resolved (0: none) ... */
    uint32_t cc_pos;                    /* ... to this position in c->t; cleared whenever
                                           c->t changes (bind), see "Fast paths" */
    uint32_t cc_h4;                     /* the first 4 bytes (version, reserved, column
                                           count) of the records the layout below is for;
                                           0: none (cleared with cc_col) */
    uint32_t cc_hdr, cc_end, cc_bbyte;  /* there: where the data starts, the column's end
                                           offset, its NULL bitmap byte ... */
    uint8_t cc_bmask;                   /* ... and bit */
    uint8_t cc_w;                       /* bytes per end offset there (record.c: 4, or
                                           version 3's 1, 2, 4) */
    bool rv_ok, rv_hdr_ok;              /* record cache, see above */
    uint64_t rv_txn_id, rv_write_seq;
    MDB_val rv;
    edb__rechdr rv_hdr;

    unsigned prep;                      /* 0, EDB_PREP_INSERT, EDB_PREP_REPLACE */
    edb__rec rec;                       /* the prepared record */
    edb__buf prep_pk;                   /* REPLACE: key of the record being replaced */
    edb__buf prep_raw;                  /* REPLACE: its stored bytes at prepare: edb_update
                                           writes only over these (no lost update) */
    struct edb__wplan *wp;              /* write plan buffers, reused (update.c) */
    struct edb__lvw *lvw;               /* pending long-value changes of the prepared
                                           update (longval.c) */
};

/* A cursor of a dead session (a zombie, session.h) refuses every call. */
static inline int
edb__cursor_check_live(const edb_cursor *c, const char *fn)
{
    return c->s->dead ? edb__session_closed_err(c->s, fn) : 0;
}

/* Extend the prepared record of @c to the columns of its table (update.c). */
int edb__update_rec_fit(edb_cursor *c);
/* Free a cursor's write plan buffers (NULL-safe). */
void edb__wplan_free(struct edb__wplan *w);

/* Make sure c's schema and MDB_cursor belong to the session's current
 * transaction @txn (re-reading the table when the transaction changed).
 * Handles carry identity: EDB_DROPPED when the cursor's table (t_ident) or
 * its secondary index (index_ident) is not in the catalog any more, also
 * when another table or index of the same name took its place; nothing is
 * then bound, so a drop that is rolled back makes the cursor usable again.  The inline part is the case where
 * nothing changed since the last bind: the same txn, no schema change and no
 * write through the session (then the slow path would do nothing either: the
 * MDB_cursor is on the current index's DB, see edb__cursor_bind_slow). */
int edb__cursor_bind_slow(edb_cursor *c, MDB_txn *txn);
static inline int
edb__cursor_bind(edb_cursor *c, MDB_txn *txn)
{
    const edb_session *s = c->s;
    if (c->bound_id == edb__txn_id(s) && c->mc_write_seq == s->write_seq &&
        c->bind_schema_seq == s->schema_seq)
        return 0;
    return edb__cursor_bind_slow(c, txn);
}
/* The DB the current index lives in. */
const edb__ks *edb__cursor_ks(const edb_cursor *c);
/* The logical key of an index entry (strips the primary key of a non-unique entry). */
size_t edb__cursor_logical_len(const edb_cursor *c, const MDB_val *k, const MDB_val *d);
/* Where the primary key starts in the (unprefixed) key @key of an entry of
 * non-unique index @x of @t: after the index's segments (self-delimiting,
 * doc/key-encoding.md).  Format 5 stores such entries with an empty value.
 * EDB_CORRUPT when the segments do not parse or leave no primary key. */
int edb__index_pk_off(const edb__table *t, const edb__index *x, const uint8_t *key, size_t len,
                      size_t *off);
/* edb__cursor_set_on for an index entry with an empty value: the primary key
 * is the key's suffix. */
int edb__cursor_set_on_suffix(edb_cursor *c, const MDB_val *k);
/* Position on the LMDB entry (k, d): copies anchor and pk, state POS_ON;
 * empties the record cache. */
static inline __attribute__((always_inline)) int
edb__cursor_set_on(edb_cursor *c, const MDB_val *k, const MDB_val *d)
{
    const MDB_val *pk = c->index < 0 ? k : d;
    size_t n = k->mv_size;
    if (c->index < 0 && n >= 8 && n <= 16 && n <= c->anchor.cap && n <= c->pk.cap) {
        /* a primary entry of an integer or GUID key: the key is the primary
         * key, loaded once for both copies (edb__buf_set's word copies) */
        const uint8_t *src = k->mv_data;
        uint64_t w0, w1;
        memcpy(&w0, src, 8);
        memcpy(&w1, src + n - 8, 8);
        memcpy(c->anchor.p, &w0, 8);
        memcpy(c->anchor.p + n - 8, &w1, 8);
        memcpy(c->pk.p, &w0, 8);
        memcpy(c->pk.p + n - 8, &w1, 8);
        c->anchor.len = c->pk.len = n;
        c->pos = POS_ON;
        c->mc_valid = true;
        c->rv_ok = false;
        return 0;
    }
    if (c->index >= 0 && d->mv_size == 0)
        return edb__cursor_set_on_suffix(c, k);
    int rc = edb__buf_set(&c->anchor, k->mv_data, k->mv_size);
    if (rc == 0)
        rc = edb__buf_set(&c->pk, pk->mv_data, pk->mv_size);
    if (rc < 0)
        return rc;
    c->pos = POS_ON;
    c->mc_valid = true;
    c->rv_ok = false;
    return 0;
}

/* The position state (one of the POS_* above). */
static inline int
edb__cursor_state(const edb_cursor *c)
{
    return c->pos;
}
/* Build the index entry of @idx for the record values in @rec with primary key
 * @pk into @key/@data.  Returns 1 when the record gets no entry (IGNORE_NULL,
 * a condition).  For a multi-entry index: the first of its entries. */
int edb__index_entry(const edb__table *t, const edb__index *idx, const edb__rec *rec,
                     const uint8_t *pk, size_t pklen, edb__buf *key);
/* The entries of a multi-entry index (edb__index_multi) for one record,
 * sorted by memcmp and distinct: v[i].p points into data (valid until the
 * next call that fills it). */
typedef struct edb__ent { const uint8_t *p; uint32_t len; } edb__ent;
typedef struct edb__entries {
    edb__buf data;
    edb__ent *v;
    uint32_t n, cap;
} edb__entries;
void edb__entries_free(edb__entries *e);
/* Does index @x give a record several entries: EDB_IDX_TUPLES (one per
 * substring), or a multi-valued column in its key (one per value)? */
bool edb__index_multi(const edb__table *t, const edb__index *x);
/* Every entry of index @x for record @rec (edb__index_entry's bytes, one per
 * value or tuple; none when the record gets no entry). */
int edb__index_entries(const edb__table *t, const edb__index *x, const edb__rec *rec,
                       const uint8_t *pk, size_t pklen, edb__entries *out);
/* Encode the primary key of record values @rec (not for the implicit key). */
int edb__primary_key(const edb__table *t, const edb__rec *rec, edb__buf *out);

#endif

/*
 * catalog.h: the schema as stored in the catalog (catalog.c).
 *
 * Keyspace (format 4, keyspace.h).  Three LMDB databases, opened once when
 * the env opens: edb.catalog, edb.records and edb.index.  A table's records
 * are the keys of edb.records under the table's compact id, each secondary
 * index's entries the keys of edb.index under the index's compact id.  Ids
 * come from the "\0nextid" counter and are never reused in a database, so
 * there is no table limit, creating or dropping a table or an index is an
 * ordinary write in the caller's transaction (a drop deletes the range), and
 * another process sees a table as soon as it is committed.
 *
 * Older formats (1-3: one LMDB database per table and index, from a pool
 * named "edb:catalog", "edb:r0000", "edb:i0000.00", ...) are refused with
 * EDB_VERSION; `dbtool upgrade DB` converts them.
 *
 * Catalog DB ("edb.catalog", plain keys):
 *   "\0format"      -> u32 magic 0x45444231 ("EDB1"), u32 format version, u32 0
 *   "\0nextid"      -> u32 the next compact id to hand out (absent: 1)
 *   "t" name        -> the table's schema blob (catalog.c documents its bytes)
 *   "c" u32be kid u32be colid -> u64 counter (colid 0: implicit primary key)
 *   "n" u32be kid   -> u64 rows of the table (kid of the table) or entries of
 *                      the index (kid of a secondary index); absent: 0
 * Schema changes and row counts are ordinary writes to this DB, so they are
 * transactional (a rollback takes them back) and other processes see them in
 * their next transaction.
 */
#ifndef EDB_CATALOG_H
#define EDB_CATALOG_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "coltype.h"
#include "edb.h"
#include "env.h"
#include "keyspace.h"

struct edb_session;

#define EDB__FORMAT_MAGIC   0x45444231u
#define EDB__FORMAT_VERSION 5u
/* The oldest format this library opens read-write as it is (format 4: the
 * keyspace with record versions 1/2, doc/engine.md "Formats"). */
#define EDB__FORMAT_OLDEST 4u
#define EDB__NAME_MAX       64
/* Column flag of a dropped column (edb_column_drop): the column keeps its
 * position (colids of the other columns stay valid) but has no name, is in no
 * index, and reads as gone (EDB_DROPPED); records still holding its value
 * lose it when they are next written (record.c).  Never a public flag. */
#define EDB__COL_DROPPED    0x80u

typedef struct edb__column {
    char name[EDB__NAME_MAX + 1];
    edb_coltype type;
    unsigned flags;
    uint32_t max_size;
    bool has_default;
    uint32_t default_size;
    const uint8_t *default_value;   /* points into the table's own copy */
    uint64_t id;                    /* identity (edb__catalog_new_id; 0 in blobs of version 1) */
    char collation[EDB__NAME_MAX + 1];  /* TEXT: "" (binary) or an ICU locale tag (collate.c) */
    const struct edb__coll *coll;   /* its collator in the env's cache (NULL: binary, or a
                                       table decoded without an env) */
} edb__column;

typedef struct edb__segment {
    edb_colid col;
    bool desc;
} edb__segment;

typedef struct edb__index {
    char name[EDB__NAME_MAX + 1];
    unsigned flags;                 /* EDB_IDX_* */
    uint32_t kid;                   /* compact id: prefix of its entries (primary: 0) */
    unsigned nseg;
    edb__segment seg[EDB_MAX_KEY_SEGMENTS];
    uint64_t id;                    /* identity (edb__catalog_new_id; 0 in blobs of version 1) */
    edb__ks ks;                     /* its range of edb.index (secondary indexes only) */
    /* issue 14 (blob version 4 extensions, catalog.c) */
    uint32_t cond_col;              /* condition column position (0: none) */
    bool cond_null;                 /* entries only where it is NULL ("!col") */
    unsigned tuple_min, tuple_max;  /* EDB_IDX_TUPLES: lengths in characters */
    uint8_t collver[EDB_MAX_KEY_SEGMENTS][4];   /* collated segments: the ICU collator
                                                   version the entries were made with */
} edb__index;

typedef struct edb__table {
    char name[EDB__NAME_MAX + 1];
    uint32_t kid;                   /* compact id: prefix of its records (keyspace.h) */
    uint32_t gen;                   /* bumped by every schema change of the table */
    uint64_t created;               /* identity drawn at creation (edb__catalog_new_id;
                                       older tables: the creating txn's id): a table
                                       dropped and made again is another table */
    edb__ks rec;                    /* its range of edb.records */
    uint32_t ncols;
    edb__column *cols;              /* colid = position + 1 */
    uint32_t nidx;
    edb__index *idx;                /* creation order, primary included */
    int primary;                    /* position in idx, -1: implicit 8-byte key */
    uint8_t *defaults;              /* storage for default values */
} edb__table;

#define EDB__RO_SPARES 4

/* Per-env catalog state (env->catalog).  The handles and uid are
 * immutable after open. */
typedef struct edb__catalog {
    MDB_dbi cat, recs, idx;         /* edb.catalog, edb.records, edb.index */
    /* The database's format (EDB__FORMAT_OLDEST..EDB__FORMAT_VERSION), fixed
     * at open: 5 writes record version 3 (record.c), 4 versions 1 and 2. */
    uint32_t format;
    uint64_t uid;                   /* process-unique id of this env (never reused) */
    /* Reset read transactions kept for reuse (mdb_txn_renew is cheaper than a
     * new one).  Each holds a reader slot.  ro_lock guards both fields; it is
     * a leaf lock (nothing is called under it). */
    pthread_mutex_t ro_lock;
    MDB_txn *ro_spare[EDB__RO_SPARES];
    int ro_nspare;
    /* Counter high-water marks (see edb__counter_get): hwm_n entries of
     * (kid, colid, value); colid (edb_colid)-1 holds the identity of the table
     * the marks of kid belong to.  hwm_lock guards them; a leaf lock. */
    pthread_mutex_t hwm_lock;
    struct edb__hwm { uint32_t kid; edb_colid col; uint64_t n; } *hwm;
    size_t hwm_n, hwm_cap;
    /* ICU collators of collated TEXT keys (collate.c; its own locks) */
    struct edb__collcache *coll;
    /* The undo log of the write transaction that has nested levels (undo.h;
     * the env's LMDB user context points here), NULL when none has.  Read
     * and written only by the thread holding LMDB's write transaction. */
    struct edb__undo *undo;
} edb__catalog;

/* Rewrite the format 4 database at @path as format 5 (compact.c: edb_env_pack's
 * copy with records narrowed to version 3 and the format record set to 5,
 * built in "<path>.upgrade", checked, swapped in; edb_env_upgrade). */
int edb__env_pack5(const char *path);

/* Does the database write format 5's layouts (record version 3)? */
static inline bool
edb__fmt5(const edb__catalog *cat)
{
    return cat->format >= 5;
}

/* A read transaction (from the spares when there is one). */
int edb__ro_begin(edb_env *env, MDB_txn **out);
/* End a read transaction: reset and kept as a spare, or aborted. */
void edb__ro_end(edb_env *env, MDB_txn *txn);

/* Open (creating them on a new, empty environment) the catalog and the
 * keyspace's databases.  EDB_VERSION for an LMDB file that is not edb's, a
 * newer format, or an older one (the message names `dbtool upgrade`). */
int edb__catalog_open(edb_env *env);
void edb__catalog_close(edb_env *env);
static inline edb__catalog *
edb__cat(edb_env *env)
{
    return (edb__catalog *)env->catalog;
}

/* Load table @name as seen by @txn.  EDB_NOTFOUND when absent. */
int edb__table_load(edb__table **out, edb_env *env, MDB_txn *txn, const char *name);
/* The stored schema blob of table @name (valid while @txn lives).  EDB_NOTFOUND when absent. */
int edb__table_blob(edb_env *env, MDB_txn *txn, const char *name, MDB_val *out);
/* Decode a schema blob (for check.c and tools).  EDB_CORRUPT when malformed. */
int edb__table_decode(edb__table **out, edb_env *env, const void *blob, size_t size);
/* Write table @t (bumping its gen) into the catalog. */
int edb__table_store(edb_env *env, MDB_txn *txn, edb__table *t);
/* Remove only the catalog entry of table @name (a rename stores the table
 * again under its new name; its records, indexes and counters stay). */
int edb__table_unlink(edb_env *env, MDB_txn *txn, const char *name);
/* The stored schema blob of the table whose identity is @created (whatever
 * its name now: a cursor follows a renamed table).  EDB_NOTFOUND when no
 * table has it. */
int edb__table_blob_ident(edb_env *env, MDB_txn *txn, uint64_t created, MDB_val *out);
/* Remove table @t's catalog entry, counters and row counts and delete its
 * records' and indexes' ranges. */
int edb__table_erase(edb_env *env, MDB_txn *txn, const edb__table *t);
/* Delete secondary index @x's entries and row count (not its schema). */
int edb__index_erase(edb_env *env, MDB_txn *txn, const edb__index *x);
void edb__table_free(edb__table *t);
/* Deep copy. */
int edb__table_clone(edb__table **out, const edb__table *t);

/* Call @fn for every table, in name order; a non-zero return stops the walk
 * and is returned.  @t is freed after @fn returns.  A table whose schema
 * cannot be decoded stops the walk with its error when @skipped is NULL; else
 * it is passed over and *skipped set (edb_env_check reports it itself). */
int edb__catalog_foreach(edb_env *env, MDB_txn *txn,
                         int (*fn)(void *ctx, const edb__table *t), void *ctx, bool *skipped);
/* A new compact id for a table or an index (never handed out before in this
 * database once @txn commits); EDB_LIMIT after 2^32 - 1 of them. */
int edb__catalog_new_kid(uint32_t *out, edb_env *env, MDB_txn *txn);

/* Row counts ("n" keys): rows of a table, entries of a secondary index,
 * by compact id, changed in the writing transaction so that a rollback takes
 * the change back.  An insert or delete only notes its change in the session
 * (edb__rows_add, no LMDB write), labelled with its level: a nested commit
 * hands the level's notes to the parent (edb__rows_level_end), a rollback
 * drops them, and the top-level (or implicit) commit writes them all, one
 * catalog write per table or index (edb__rows_flush); edb__rows_drop
 * forgets them when the top level aborts.  edb__rows_get adds the notes to
 * the stored count.  edb__rows_erased notes that a drop deleted the range
 * (its notes are then never written).  edb__rows_write changes the stored
 * count at once (index builds). */
int edb__rows_get(uint64_t *out, struct edb_session *s, MDB_txn *txn, uint32_t kid);
/* edb__rows_add is inline (session.h: a note per insert and index); its
 * general path: */
int edb__rows_add_slow(struct edb_session *s, uint32_t kid, int64_t delta);
int edb__rows_erased(struct edb_session *s, uint32_t kid);
void edb__rows_level_end(struct edb_session *s, int level, bool commit);
int edb__rows_flush(struct edb_session *s, MDB_txn *txn);
void edb__rows_drop(struct edb_session *s);
int edb__rows_write(edb_env *env, MDB_txn *txn, uint32_t kid, int64_t delta);

/* Per-table counters (colid 0 = implicit key; others: AUTOINC columns).
 * get: the last value handed out (0: none yet), a read only; set: store the
 * last value handed out.  A writer reads first and stores only once nothing
 * else can fail (update.c).
 * Values are never handed out twice by one env: besides the stored counter
 * (transactional), the env keeps an in-memory high-water mark per counter
 * that a rollback does not lower; get returns the larger of the two.  The
 * marks of a compact id belong to one table identity: a table created with
 * the id, or a cursor that finds another table with it (an id handed out by
 * a rolled-back txn here and committed by another process), forgets them
 * (edb__counter_adopt).  Other processes see only the stored counter: a
 * value handed out in a transaction that rolled back in one process may be
 * handed out by another (it was never committed). */
int edb__counter_get(uint64_t *out, edb_env *env, MDB_txn *txn, uint32_t kid, edb_colid col);
int edb__counter_set(edb_env *env, MDB_txn *txn, uint32_t kid, edb_colid col, uint64_t n);
/* The stored counter alone (what the transaction committed or will commit):
 * a supplied AUTOINC value above it must be stored even when it is below the
 * high-water mark, or a later env could hand it out again. */
int edb__counter_read(uint64_t *out, edb_env *env, MDB_txn *txn, uint32_t kid, edb_colid col);
void edb__counter_adopt(edb_env *env, uint32_t kid, uint64_t table);

/* A new identity for a table or an index: unique within the process (a
 * counter) and, with overwhelming probability, across processes and time
 * (hashed with the pid, the clocks and random bytes).  Never 0. */
uint64_t edb__catalog_new_id(void);

/* Column ids.  edb_column_id hands out the column's 1-based position in the
 * low EDB__COLID_POS_BITS bits and a tag of its identity above them, so an id
 * kept across a rolled-back edb_column_add (or a re-created table) is not
 * taken for the column that took its position later.  A plain position (tag
 * 0) is accepted too: tools and old callers address columns by position. */
#define EDB__COLID_POS_BITS 11
#define EDB__COLID_POS_MASK ((1u << EDB__COLID_POS_BITS) - 1)
_Static_assert(EDB__COLID_POS_MASK == EDB_COLID_POSITION_MASK, "edb.h's EDB_COLID_POSITION_MASK");
_Static_assert(EDB_MAX_COLUMNS <= EDB__COLID_POS_MASK, "a position fits the mask");
static inline uint32_t
edb__col_tag(uint64_t id)
{
    if (id == 0)
        return 0;       /* a column of a version 1 blob: no identity to check */
    uint32_t tag = (uint32_t)(id >> 43);    /* 21 bits */
    return tag != 0 ? tag : 1;
}
static inline edb_colid
edb__colid_make(const edb__table *t, uint32_t pos)
{
    return pos | edb__col_tag(t->cols[pos - 1].id) << EDB__COLID_POS_BITS;
}
/* The position @col names in @t, or 0 when it names no column of @t. */
static inline uint32_t
edb__colid_pos(const edb__table *t, edb_colid col)
{
    uint32_t pos = col & EDB__COLID_POS_MASK, tag = col >> EDB__COLID_POS_BITS;
    if (pos == 0 || pos > t->ncols || (tag != 0 && tag != edb__col_tag(t->cols[pos - 1].id)) ||
        (t->cols[pos - 1].flags & EDB__COL_DROPPED))
        return 0;
    return pos;
}
/* Resolve *col (a colid of table @t) to its position in place; EDB_NOTFOUND
 * for a position the table never had, EDB_DROPPED for a tagged id whose
 * column is gone (cursor.c). */
int edb__colid_resolve(edb_colid *col, const edb__table *t);

/* Lookups (dropped columns have no name); 0 / -1 when absent. */
edb_colid edb__table_colid(const edb__table *t, const char *name);
int edb__table_index(const edb__table *t, const char *name);

/* Name rule: 1..64 bytes of [A-Za-z0-9_], not starting with a digit. */
#define EDB__NAME_RULE "a name is 1..64 bytes of [A-Za-z0-9_], not starting with a digit"
bool edb__name_ok(const char *name);
/* 0 when edb__name_ok(name), else EDB_INVAL with the message "<ctx>bad <kind>
 * name '<name>': <EDB__NAME_RULE>", the name quoted with control and non-ASCII
 * bytes as \xHH (a name with a NUL or a control byte prints as it is). */
int edb__name_check(const char *name, const char *kind, const char *ctx);

/* A bounds-checked reader of stored bytes (schema blobs, old catalogs): a
 * read past the end sets `bad` and returns NULL / 0 / "" instead. */
typedef struct edb__rbuf { const uint8_t *p; size_t len, off; bool bad; } edb__rbuf;
const uint8_t *edb__rbuf_take(edb__rbuf *b, size_t n);
unsigned edb__rbuf_u8(edb__rbuf *b);
uint32_t edb__rbuf_u32(edb__rbuf *b);
/* A name: one length byte (1..EDB__NAME_MAX), then its bytes; @out holds EDB__NAME_MAX + 1. */
void edb__rbuf_name(edb__rbuf *b, char *out);

#endif

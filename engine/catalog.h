/*
 * catalog.h: the schema as stored in the catalog (catalog.c) and the pool of
 * LMDB databases that tables and indexes live in.
 *
 * Pool.  Table slot t owns 1 + EDB_MAX_INDEXES LMDB databases: "edb:r%04u"
 * for its records, "edb:i%04u.%02u" for index k, all created with the
 * environment (a dropped table's are emptied).  LMDB makes every
 * transaction begin and end loop over every handle the env has open, so edb
 * opens only the slots below the catalog's high-water mark (the "\0slots"
 * key: 1 + the highest slot ever allocated; slots are taken lowest free
 * first) instead of all max_tables.  The rules LMDB imposes and how they are
 * kept (doc/engine.md, "Opening the pool"):
 * - a transaction can use only handles committed before it began: every
 *   top-level begin (edb__pool_check) reads the mark of its snapshot and, when
 *   a handle it may need is not valid in it, is ended and begun again after
 *   edb__pool_sync opened the missing slots in a short read txn of its own;
 * - a table created by this process: its slot's databases are opened
 *   inside the creating write txn (edb__pool_claim), which holds the
 *   pool ("pool_busy") until it ends; handles opened in a txn that aborts
 *   (also a nested one) are closed by LMDB, so "opened" moves only after the
 *   top level committed (edb__pool_release);
 * - mdb_dbi_open never runs in two transactions at once, and a transaction
 *   that opened handles ends before another may open any: every opening holds
 *   pool_busy (waited for under env->dbi_lock).
 * Databases of format 1 (the same databases, no mark) get the mark at their
 * first writable open.
 *
 * Format 3 changed the key encoding: NULL sorts after every value in a
 * descending segment (key.c), and indexes may carry EDB_IDX_SORT_NULLS_HIGH
 * and EDB_IDX_IGNORE_ANY_NULL.  A database of format 1 or 2 whose indexes
 * have no descending segment holds exactly the bytes format 3 would write:
 * it is opened (and marked format 3 at its first writable open).  One with a
 * descending segment is refused with EDB_VERSION (its entries with NULLs sit
 * in the wrong place); the message says how to move the data.
 *
 * Catalog DB ("edb:catalog", plain keys):
 *   "\0format"      -> u32 magic 0x45444231 ("EDB1"), u32 format version, u32 max_tables
 *   "\0slots"       -> u32 slot high-water mark (format 2; absent: every slot)
 *   "t" name        -> the table's schema blob (catalog.c documents its bytes)
 *   "c" u32be slot u32be colid -> u64 counter (colid 0: implicit primary key)
 * Schema changes are ordinary writes to this DB, so they are transactional and
 * other processes see them in their next transaction.
 */
#ifndef EDB_CATALOG_H
#define EDB_CATALOG_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "edb.h"
#include "env.h"

struct edb_session;

#define EDB__FORMAT_MAGIC   0x45444231u
#define EDB__FORMAT_VERSION 3u
#define EDB__NAME_MAX       64
#define EDB__DBS_PER_TABLE  (1 + EDB_MAX_INDEXES)
#define EDB__MAX_TABLES_LIMIT 1024u

typedef struct edb__column {
    char name[EDB__NAME_MAX + 1];
    edb_coltype type;
    unsigned flags;
    uint32_t max_size;
    bool has_default;
    uint32_t default_size;
    const uint8_t *default_value;   /* points into the table's own copy */
    uint64_t id;                    /* identity (edb__catalog_new_id; 0 in blobs of version 1) */
} edb__column;

typedef struct edb__segment {
    edb_colid col;
    bool desc;
} edb__segment;

typedef struct edb__index {
    char name[EDB__NAME_MAX + 1];
    unsigned flags;                 /* EDB_IDX_* */
    unsigned slot;                  /* 0..EDB_MAX_INDEXES-1 within the table (primary: unused) */
    unsigned nseg;
    edb__segment seg[EDB_MAX_KEY_SEGMENTS];
    uint64_t id;                    /* identity (edb__catalog_new_id; 0 in blobs of version 1) */
    MDB_dbi dbi;                    /* secondary indexes only */
} edb__index;

typedef struct edb__table {
    char name[EDB__NAME_MAX + 1];
    uint32_t slot;
    uint32_t gen;                   /* bumped by every schema change of the table */
    uint64_t created;               /* identity drawn at creation (edb__catalog_new_id;
                                       older tables: the creating txn's id): a table
                                       dropped and made again is another table */
    MDB_dbi rec_dbi;
    uint32_t ncols;
    edb__column *cols;              /* colid = position + 1 */
    uint32_t nidx;
    edb__index *idx;                /* creation order, primary included */
    int primary;                    /* position in idx, -1: implicit 8-byte key */
    uint8_t *defaults;              /* storage for default values */
} edb__table;

#define EDB__RO_SPARES 4

/* Per-env catalog state (env->catalog).  cat, max_tables and uid are
 * immutable after open; the pool fields are described with them. */
typedef struct edb__catalog {
    MDB_dbi cat;
    unsigned max_tables;
    uint64_t uid;                   /* process-unique id of this env (never reused) */
    /* max_tables * EDB__DBS_PER_TABLE handles, (MDB_dbi)-1 until opened.  An
     * element below opened * EDB__DBS_PER_TABLE is written once, before
     * opened passes it (release); above it, only by the pool's holder. */
    _Atomic MDB_dbi *dbis;
    /* Slots whose handles are open env-wide (committed), release-stored
     * under dbi_lock by the pool's holder, acquire-loaded by everyone. */
    atomic_uint opened;
    /* The mark of the last snapshot checked: txn id << 12 | 1 << 11 | mark. */
    atomic_uint_fast64_t mark_cache;
    /* The pool (the right to call mdb_dbi_open): held by a short sync or by a
     * write txn that created a table beyond opened, until its top level
     * ends.  Guarded by env->dbi_lock; pool_cv signals its release. */
    bool pool_busy;
    pthread_t pool_thread;          /* the holder (to refuse waiting for oneself) */
    unsigned pool_upto;             /* slots the holder opened in its txn */
    pthread_cond_t pool_cv;
    /* Reset read transactions kept for reuse (mdb_txn_renew is cheaper than a
     * new one).  Each holds a reader slot.  ro_lock guards both fields; it is
     * a leaf lock (nothing is called under it). */
    pthread_mutex_t ro_lock;
    MDB_txn *ro_spare[EDB__RO_SPARES];
    int ro_nspare;
    /* Counter high-water marks (see edb__counter_get): hwm_n entries of
     * (slot, colid, value).  hwm_lock guards them; a leaf lock. */
    pthread_mutex_t hwm_lock;
    struct edb__hwm { uint32_t slot; edb_colid col; uint64_t n; } *hwm;
    size_t hwm_n, hwm_cap;
    uint64_t *hwm_table;            /* per slot: identity of the table the marks are of */
} edb__catalog;

/* After beginning a top-level transaction: 0 when it can use the handles of
 * every table its snapshot may hold, 1 when it must be ended, edb__pool_sync
 * called and begun again (nothing may have been read in it), < 0 an error.
 * @cache: remember the mark per txn id (read txns only: a write txn may
 * change the mark of its id). */
int edb__pool_check(edb_env *env, MDB_txn *txn, bool cache);
/* Open the slots below the latest committed mark (a read txn of its own). */
int edb__pool_sync(edb_env *env);
/* Table creation in write txn @txn of @s took @slot: raise the mark and,
 * beyond the opened slots, open its databases in @txn (taking
 * the pool until the top level ends). */
int edb__pool_claim(struct edb_session *s, MDB_txn *txn, uint32_t slot);
/* The top-level write txn of @s ended (committed or not): give back the pool
 * if it holds it, after opening env-wide what the txn committed. */
void edb__pool_release(struct edb_session *s, bool committed);
/* Slots open env-wide (tests, tools). */
unsigned edb__pool_opened(edb_env *env);

/* A read transaction (from the spares when there is one), checked with
 * edb__pool_check. */
int edb__ro_begin(edb_env *env, MDB_txn **out);
/* End a read transaction: reset and kept as a spare, or aborted. */
void edb__ro_end(edb_env *env, MDB_txn *txn);

/* Open (creating it on a new, empty environment) the catalog and the pool.
 * Returns 1 with *stored set when the database was created with another
 * max_tables (the caller reopens LMDB with that many handles), 2 when it
 * created the database (the caller reopens LMDB: creating opened every
 * handle).
 * EDB_VERSION for an LMDB file that is not edb's or a newer format. */
int edb__catalog_open(edb_env *env, unsigned max_tables, unsigned *stored);
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
/* Remove table @t's catalog entry and counters and empty its databases. */
int edb__table_erase(edb_env *env, MDB_txn *txn, const edb__table *t);
void edb__table_free(edb__table *t);
/* Deep copy. */
int edb__table_clone(edb__table **out, const edb__table *t);

/* Call @fn for every table, in name order; a non-zero return stops the walk
 * and is returned.  @t is freed after @fn returns. */
int edb__catalog_foreach(edb_env *env, MDB_txn *txn,
                         int (*fn)(void *ctx, const edb__table *t), void *ctx);
/* A free table slot, or EDB_LIMIT. */
int edb__catalog_free_slot(uint32_t *out, edb_env *env, MDB_txn *txn);

/* Per-table counters (colid 0 = implicit key; others: AUTOINC columns).
 * get: the last value handed out (0: none yet), a read only; set: store the
 * last value handed out.  A writer reads first and stores only once nothing
 * else can fail (update.c).
 * Values are never handed out twice by one env: besides the stored counter
 * (transactional), the env keeps an in-memory high-water mark per counter
 * that a rollback does not lower; get returns the larger of the two.  The
 * marks of a slot belong to one table identity: a table created in the slot,
 * or a cursor that finds another table in it (created by another process),
 * forgets them (edb__counter_adopt).  Other processes see only the stored counter: a
 * value handed out in a transaction that rolled back in one process may be
 * handed out by another (it was never committed). */
int edb__counter_get(uint64_t *out, edb_env *env, MDB_txn *txn, uint32_t slot, edb_colid col);
int edb__counter_set(edb_env *env, MDB_txn *txn, uint32_t slot, edb_colid col, uint64_t n);
/* The stored counter alone (what the transaction committed or will commit):
 * a supplied AUTOINC value above it must be stored even when it is below the
 * high-water mark, or a later env could hand it out again. */
int edb__counter_read(uint64_t *out, edb_env *env, MDB_txn *txn, uint32_t slot, edb_colid col);
void edb__counter_adopt(edb_env *env, uint32_t slot, uint64_t table);

/* A new identity for a table or an index: unique within the process (a
 * counter) and, with overwhelming probability, across processes and time
 * (hashed with the pid, the clocks and random bytes).  Never 0. */
uint64_t edb__catalog_new_id(void);

MDB_dbi edb__pool_rec(edb_env *env, uint32_t slot);
MDB_dbi edb__pool_idx(edb_env *env, uint32_t slot, unsigned k);

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
    if (pos == 0 || pos > t->ncols || (tag != 0 && tag != edb__col_tag(t->cols[pos - 1].id)))
        return 0;
    return pos;
}
/* Resolve *col (a colid of table @t) to its position in place; EDB_NOTFOUND
 * for a position the table never had, EDB_DROPPED for a tagged id whose
 * column is gone (cursor.c). */
int edb__colid_resolve(edb_colid *col, const edb__table *t);

/* Lookups; 0 / -1 when absent. */
edb_colid edb__table_colid(const edb__table *t, const char *name);
int edb__table_index(const edb__table *t, const char *name);

/* Name rule: 1..64 bytes of [A-Za-z0-9_], not starting with a digit. */
#define EDB__NAME_RULE "a name is 1..64 bytes of [A-Za-z0-9_], not starting with a digit"
bool edb__name_ok(const char *name);
/* 0 when edb__name_ok(name), else EDB_INVAL with the message "<ctx>bad <kind>
 * name '<name>': <EDB__NAME_RULE>", the name quoted with control and non-ASCII
 * bytes as \xHH (a name with a NUL or a control byte prints as it is). */
int edb__name_check(const char *name, const char *kind, const char *ctx);
/* Size of a fixed-size type, 0 for TEXT/BINARY, -1 for an unknown type. */
int edb__type_size(edb_coltype type);

#endif

/*
 * catalog.c: the catalog DB, the database pool and table schema blobs.
 *
 * See catalog.h for the pool and the catalog's keys.  A table's schema is one
 * blob (all integers little-endian):
 *
 * | offset | size | meaning                                             |
 * |--------|------|-----------------------------------------------------|
 * | 0      | 1    | blob version, 2 (1: indexes carry no id)            |
 * | 1      | 1    | reserved, 0                                         |
 * | 2      | 1    | table name length n (1..64)                         |
 * | 3      | n    | table name                                          |
 * | 3+n    | 4    | pool slot                                           |
 * | 7+n    | 4    | gen (bumped by every schema change)                 |
 * | 11+n   | 8    | the table's identity (edb__catalog_new_id; blobs    |
 * |        |      | written before it: the creating transaction's id)   |
 * | 19+n   | 4    | column count C                                      |
 * | 23+n   | 4    | index count I                                       |
 * | 27+n   | ...  | C columns, then I indexes                           |
 *
 * A column: u8 name length, name, u8 type, u8 flags, u32 max_size,
 * u8 has_default, u32 default size, default bytes (native form), then
 * (version 2) u64 the column's identity (column ids carry a tag of it).
 * An index: u8 name length, name, u8 flags (EDB_IDX_*), u8 index slot,
 * u8 segment count S, then S times (u32 colid, u8 descending), then (version
 * 2) u64 the index's identity.  Identities let handles tell a dropped table
 * or index from a new one of the same name (cursor.c); version 1 blobs are
 * read with index identity 0.
 *
 * Invariants: a stored blob always decodes; every colid in an index is a
 * column of the table; at most one index is PRIMARY; index slots are distinct.
 *
 * Thread safety: the pool (catalog.h) is opened by the holder of
 * cat->pool_busy only (taken and given back under env->dbi_lock, which is
 * also held around every mdb_dbi_open); a handle below opened is written
 * once before opened passes it and only read afterwards.  Lock order:
 * env->dbi_lock, then nothing (it is never held across an LMDB begin of a
 * write txn); pool_busy may be held across a whole write txn, and the only
 * waiters for it are begins that found a handle missing, which a write txn
 * holding it cannot cause in its own process (it began after catching up).
 */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "annotate.h"
#include "catalog.h"
#include "error.h"
#include "session.h"

static atomic_uint_fast64_t env_uids;

static const char FORMAT_KEY[] = "\0format";   /* 7 bytes, leading NUL */
#define FORMAT_KEY_LEN 7
static const char SLOTS_KEY[] = "\0slots";     /* 6 bytes, leading NUL */
#define SLOTS_KEY_LEN 6
#define NO_DBI ((MDB_dbi)-1)
#define PER EDB__DBS_PER_TABLE
#define BLOB_VERSION 2

/* ------------------------------------------------------------------ pool */

static void
pool_name(char *buf, size_t cap, uint32_t slot, int k)
{
    if (k < 0)
        snprintf(buf, cap, "edb:r%04u", (unsigned)slot);
    else
        snprintf(buf, cap, "edb:i%04u.%02u", (unsigned)slot, (unsigned)k);
}

static void
put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static uint32_t
get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

MDB_dbi
edb__pool_rec(edb_env *env, uint32_t slot)
{
    return atomic_load_explicit(&edb__cat(env)->dbis[slot * PER], memory_order_relaxed);
}

MDB_dbi
edb__pool_idx(edb_env *env, uint32_t slot, unsigned k)
{
    return atomic_load_explicit(&edb__cat(env)->dbis[slot * PER + 1 + k], memory_order_relaxed);
}

/* opened is published with release after its handles are written and read
 * with acquire before they are; the annotations say so to helgrind. */
static unsigned
load_opened(edb__catalog *cat)
{
    unsigned v = atomic_load_explicit(&cat->opened, memory_order_acquire);
    EDB_HB_AFTER(&cat->opened);
    return v;
}

static void
publish_opened(edb__catalog *cat, unsigned v)
{
    EDB_HB_BEFORE(&cat->opened);
    atomic_store_explicit(&cat->opened, v, memory_order_release);
}

unsigned
edb__pool_opened(edb_env *env)
{
    return load_opened(edb__cat(env));
}

/* The slot high-water mark as @txn sees it; a format-1 catalog (no mark):
 * every slot. */
static int
read_mark(edb__catalog *cat, MDB_txn *txn, unsigned *out)
{
    MDB_val k = { SLOTS_KEY_LEN, (void *)SLOTS_KEY }, v;
    int rc = mdb_get(txn, cat->cat, &k, &v);
    *out = cat->max_tables;
    if (edb__mdb_is_notfound(rc))
        return 0;
    if (rc != 0)
        return edb__mdb_err(rc, "catalog: slot mark");
    if (v.mv_size != 4 || get_u32(v.mv_data) > cat->max_tables)
        return edb__err(EDB_CORRUPT, "catalog: slot mark out of range");
    *out = get_u32(v.mv_data);
    return 0;
}

static int
write_mark(edb__catalog *cat, MDB_txn *txn, unsigned mark)
{
    uint8_t b[4];
    put_u32(b, mark);
    MDB_val k = { SLOTS_KEY_LEN, (void *)SLOTS_KEY }, v = { 4, b };
    return edb__mdb_err(mdb_put(txn, cat->cat, &k, &v, 0), "catalog: slot mark");
}

/* Open (with @create, create) the databases of slots [from, to) in @txn. */
static int
open_slots(edb_env *env, MDB_txn *txn, unsigned from, unsigned to, bool create)
{
    edb__catalog *cat = edb__cat(env);
    int ret = 0;
    pthread_mutex_lock(&env->dbi_lock);
    for (unsigned i = from * PER; i < to * PER; i++) {
        char name[32];
        MDB_dbi dbi;
        pool_name(name, sizeof name, i / PER, (int)(i % PER) - 1);
        int rc = mdb_dbi_open(txn, name, create ? MDB_CREATE : 0, &dbi);
        if (rc != 0) {
            ret = edb__mdb_err(rc, name);
            if (ret == EDB_NOTFOUND)
                ret = edb__err(EDB_CORRUPT, "catalog: database '%s' is missing", name);
            break;
        }
        atomic_store_explicit(&cat->dbis[i], dbi, memory_order_relaxed);
    }
    pthread_mutex_unlock(&env->dbi_lock);
    return ret;
}

/* Take the pool for this thread (waiting for its holder). */
static int
pool_take(edb_env *env)
{
    edb__catalog *cat = edb__cat(env);
    pthread_mutex_lock(&env->dbi_lock);
    while (cat->pool_busy) {
        if (pthread_equal(cat->pool_thread, pthread_self())) {
            pthread_mutex_unlock(&env->dbi_lock);
            return edb__err(EDB_BUSY, "'%s': this thread's write transaction created a table; "
                            "the other sessions of this thread must wait for it to end",
                            env->path);
        }
        pthread_cond_wait(&cat->pool_cv, &env->dbi_lock);
    }
    cat->pool_busy = true;
    cat->pool_thread = pthread_self();
    cat->pool_upto = 0;
    pthread_mutex_unlock(&env->dbi_lock);
    return 0;
}

static void
pool_give(edb_env *env)
{
    edb__catalog *cat = edb__cat(env);
    pthread_mutex_lock(&env->dbi_lock);
    cat->pool_busy = false;
    pthread_cond_broadcast(&cat->pool_cv);
    pthread_mutex_unlock(&env->dbi_lock);
}

/* With the pool held: open env-wide the slots below the latest committed
 * mark, in a read txn of its own (committing keeps its handles). */
static int
sync_held(edb_env *env)
{
    edb__catalog *cat = edb__cat(env);
    MDB_txn *txn;
    int rc = mdb_txn_begin(env->mdb, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return edb__mdb_err(rc, "open table handles: begin");
    unsigned mark;
    unsigned from = atomic_load_explicit(&cat->opened, memory_order_relaxed);
    int ret = read_mark(cat, txn, &mark);
    if (ret == 0 && mark > from)
        ret = open_slots(env, txn, from, mark, false);
    if (ret < 0) {
        mdb_txn_abort(txn);     /* closes what it opened */
        return ret;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return edb__mdb_err(rc, "open table handles: commit");
    if (mark > from)
        publish_opened(cat, mark);
    return 0;
}

int
edb__pool_sync(edb_env *env)
{
    EDB_RET(pool_take(env));
    int ret = sync_held(env);
    pool_give(env);
    return ret;
}

int
edb__pool_check(edb_env *env, MDB_txn *txn, bool cache)
{
    edb__catalog *cat = edb__cat(env);
    uint64_t id = (uint64_t)mdb_txn_id(txn);
    uint64_t c = cache ? atomic_load_explicit(&cat->mark_cache, memory_order_relaxed) : 0;
    unsigned mark;
    if ((c >> 12) == id && (c & (1u << 11)))
        mark = (unsigned)(c & 0x7ff);
    else {
        EDB_RET(read_mark(cat, txn, &mark));
        if (cache)
            atomic_store_explicit(&cat->mark_cache, id << 12 | 1u << 11 | mark,
                                  memory_order_relaxed);
    }
    if (mark == 0)
        return 0;
    if (mark > load_opened(cat))
        return 1;
    /* Opened env-wide, but this txn may have begun in the moment between a
     * commit that opened them and LMDB publishing them: ask LMDB.  Handles
     * are numbered in the order they were opened, so the last one answers. */
    unsigned flags;
    MDB_dbi last = atomic_load_explicit(&cat->dbis[mark * PER - 1], memory_order_relaxed);
    return mdb_dbi_flags(txn, last, &flags) == 0 ? 0 : 1;
}

int
edb__pool_claim(edb_session *s, MDB_txn *txn, uint32_t slot)
{
    edb_env *env = s->env;
    edb__catalog *cat = edb__cat(env);
    unsigned mark;
    EDB_RET(read_mark(cat, txn, &mark));
    if (slot >= mark)
        EDB_RET(write_mark(cat, txn, slot + 1));
    if (slot < load_opened(cat))
        return 0;
    if (!s->pool_held) {
        EDB_RET(pool_take(env));
        s->pool_held = true;
    }
    /* Idempotent: handles this txn (or a committed child) opened are found
     * again, those a rolled-back child opened are opened anew. */
    EDB_RET(open_slots(env, txn, atomic_load_explicit(&cat->opened, memory_order_relaxed),
                       slot + 1, false));
    if (slot + 1 > cat->pool_upto)
        cat->pool_upto = slot + 1;
    return 0;
}

void
edb__pool_release(edb_session *s, bool committed)
{
    if (!s->pool_held)
        return;
    s->pool_held = false;
    edb_env *env = s->env;
    edb__catalog *cat = edb__cat(env);
    /* A commit made its handles env-wide: find them again (a read txn's
     * mdb_dbi_open of an open name returns its handle) and move opened; an
     * abort closed them.  A failed sync leaves it to the next begin. */
    if (committed)
        (void)sync_held(env);
    unsigned opened = atomic_load_explicit(&cat->opened, memory_order_relaxed);
    for (unsigned i = opened * PER; i < cat->pool_upto * PER; i++)
        atomic_store_explicit(&cat->dbis[i], NO_DBI, memory_order_relaxed);
    pool_give(env);
}

typedef struct maxslot_ctx { unsigned mark; } maxslot_ctx;

static int
note_slot(void *ctx, const edb__table *t)
{
    maxslot_ctx *mc = ctx;
    if (t->slot + 1 > mc->mark)
        mc->mark = t->slot + 1;
    return 0;
}

typedef struct oldkeys_ctx { const char *path; uint32_t version; } oldkeys_ctx;

/* A format 1/2 database is readable as format 3 unless an index has a
 * descending segment (where those formats put NULL first): refuse that. */
static int
check_old_keys(void *ctx, const edb__table *t)
{
    oldkeys_ctx *oc = ctx;
    for (uint32_t i = 0; i < t->nidx; i++)
        for (unsigned j = 0; j < t->idx[i].nseg; j++)
            if (t->idx[i].seg[j].desc)
                return edb__err(EDB_VERSION, "'%s': format %u database: index '%s' of table '%s' has "
                                "a descending segment, which format %u sorts differently (NULL after "
                                "the values); open it with the edb release that made it, dbtool export "
                                "every table, then dbtool create a new database, create-table and "
                                "import into it (dbtool upgrade will do this in place)", oc->path,
                                oc->version, t->idx[i].name, t->name, EDB__FORMAT_VERSION);
    return 0;
}

int
edb__catalog_open(edb_env *env, unsigned max_tables, unsigned *stored)
{
    int ret = 0, rc;
    MDB_txn *txn = NULL;
    bool rdonly = (env->flags & EDB_ENV_READONLY) != 0;
    edb__catalog *cat = calloc(1, sizeof *cat);
    if (cat == NULL)
        return edb__err(EDB_NOMEM, "catalog");
    env->catalog = cat;
    pthread_mutex_init(&cat->ro_lock, NULL);
    pthread_mutex_init(&cat->hwm_lock, NULL);
    pthread_cond_init(&cat->pool_cv, NULL);
    cat->uid = atomic_fetch_add(&env_uids, 1) + 1;
    cat->max_tables = max_tables;
    *stored = 0;
    if ((cat->dbis = malloc(max_tables * PER * sizeof *cat->dbis)) == NULL ||
        (cat->hwm_table = calloc(max_tables, sizeof *cat->hwm_table)) == NULL)
        return edb__err(EDB_NOMEM, "catalog");
    for (unsigned i = 0; i < max_tables * PER; i++)
        atomic_init(&cat->dbis[i], NO_DBI);
    atomic_init(&cat->opened, 0);
    atomic_init(&cat->mark_cache, 0);
    EDB_ATOMIC_VAR(&cat->opened, sizeof cat->opened);
    EDB_ATOMIC_VAR(&cat->mark_cache, sizeof cat->mark_cache);

    if ((rc = mdb_txn_begin(env->mdb, NULL, rdonly ? MDB_RDONLY : 0, &txn)) != 0) {
        txn = NULL;
        EDB_ERR(edb__mdb_err(rc, "catalog: begin"));
    }
    unsigned mark = 0;
    uint8_t rec[12];
    MDB_val fk = { FORMAT_KEY_LEN, (void *)FORMAT_KEY }, fv = { sizeof rec, rec };
    rc = mdb_dbi_open(txn, "edb:catalog", 0, &cat->cat);
    if (edb__mdb_is_notfound(rc)) {
        MDB_dbi main_dbi;
        MDB_stat st;
        if ((rc = mdb_dbi_open(txn, NULL, 0, &main_dbi)) != 0 ||
            (rc = mdb_stat(txn, main_dbi, &st)) != 0)
            EDB_ERR(edb__mdb_err(rc, "catalog: main database"));
        if (st.ms_entries != 0 || rdonly)
            EDB_ERR(edb__err(EDB_VERSION, "'%s' is not an edb database (no catalog)", env->path));
        if ((rc = mdb_dbi_open(txn, "edb:catalog", MDB_CREATE, &cat->cat)) != 0)
            EDB_ERR(edb__mdb_err(rc, "catalog: create"));
        put_u32(rec, EDB__FORMAT_MAGIC);
        put_u32(rec + 4, EDB__FORMAT_VERSION);
        put_u32(rec + 8, max_tables);
        if ((rc = mdb_put(txn, cat->cat, &fk, &fv, 0)) != 0)
            EDB_ERR(edb__mdb_err(rc, "catalog: format record"));
        EDB_ERR(write_mark(cat, txn, 0));
        /* Every slot's databases are created now (tools and tests find a
         * table's databases by name); creating opened them all, which would
         * make every transaction of this env pay for them: the caller opens
         * LMDB again. */
        EDB_ERR(open_slots(env, txn, 0, max_tables, true));
        rc = mdb_txn_commit(txn);
        txn = NULL;
        if (rc != 0)
            EDB_ERR(edb__mdb_err_env(rc, env->mdb, "catalog: commit"));
        return 2;
    } else if (rc != 0) {
        EDB_ERR(edb__mdb_is_incompatible(rc)
                    ? edb__err(EDB_VERSION, "'%s' is not an edb database", env->path)
                    : edb__mdb_err(rc, "catalog: open"));
    } else {
        MDB_val v;
        rc = mdb_get(txn, cat->cat, &fk, &v);
        if (edb__mdb_is_notfound(rc) || (rc == 0 && v.mv_size < 12) ||
            (rc == 0 && get_u32(v.mv_data) != EDB__FORMAT_MAGIC))
            EDB_ERR(edb__err(EDB_VERSION, "'%s': catalog has no edb format record", env->path));
        if (rc != 0)
            EDB_ERR(edb__mdb_err(rc, "catalog: format record"));
        uint32_t version = get_u32((uint8_t *)v.mv_data + 4);
        uint32_t tables = get_u32((uint8_t *)v.mv_data + 8);
        if (version > EDB__FORMAT_VERSION)
            EDB_ERR(edb__err(EDB_VERSION, "'%s': format %u is newer than this library's %u",
                             env->path, version, EDB__FORMAT_VERSION));
        if (version == 0)
            EDB_ERR(edb__err(EDB_VERSION, "'%s': format version 0", env->path));
        if (tables != max_tables) {
            *stored = tables;
            mdb_txn_abort(txn);
            return 1;
        }
        if (version < 3) {
            oldkeys_ctx oc = { env->path, version };
            EDB_ERR(edb__catalog_foreach(env, txn, check_old_keys, &oc));
        }
        if (version < EDB__FORMAT_VERSION && !rdonly) {
            /* Format 1 created every slot's databases and has no mark: the
             * mark is 1 + the highest slot in use; format 2 makes libraries
             * that would not keep the mark refuse the database, format 3
             * those that would write NULL first in descending segments. */
            if (version == 1) {
                maxslot_ctx mc = { 0 };
                EDB_ERR(edb__catalog_foreach(env, txn, note_slot, &mc));
                EDB_ERR(write_mark(cat, txn, mc.mark));
            }
            memcpy(rec, v.mv_data, 12);
            put_u32(rec + 4, EDB__FORMAT_VERSION);
            if ((rc = mdb_put(txn, cat->cat, &fk, &fv, 0)) != 0)
                EDB_ERR(edb__mdb_err(rc, "catalog: format record"));
        }
        EDB_ERR(read_mark(cat, txn, &mark));
        EDB_ERR(open_slots(env, txn, 0, mark, false));
    }
    /* Committing (also a read txn) keeps the handles for the env's life. */
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0)
        EDB_ERR(edb__mdb_err_env(rc, env->mdb, "catalog: commit"));
    publish_opened(cat, mark);
    return 0;
err:
    if (txn != NULL)
        mdb_txn_abort(txn);
    return ret;
}

void
edb__catalog_close(edb_env *env)
{
    edb__catalog *cat = edb__cat(env);
    if (cat == NULL)
        return;
    for (int i = 0; i < cat->ro_nspare; i++)
        mdb_txn_abort(cat->ro_spare[i]);
    pthread_mutex_destroy(&cat->ro_lock);
    pthread_mutex_destroy(&cat->hwm_lock);
    pthread_cond_destroy(&cat->pool_cv);
    free(cat->hwm);
    free(cat->hwm_table);
    free(cat->dbis);
    free(cat);
    env->catalog = NULL;
}

/* Up to this many rounds of "begin, find a handle missing, open, again"
 * (each round follows a table creation committed by another process). */
#define POOL_ROUNDS 16

int
edb__ro_begin(edb_env *env, MDB_txn **out)
{
    edb__catalog *cat = edb__cat(env);
    *out = NULL;
    for (int round = 0;; round++) {
        MDB_txn *txn = NULL;
        pthread_mutex_lock(&cat->ro_lock);
        if (cat->ro_nspare > 0)
            txn = cat->ro_spare[--cat->ro_nspare];
        pthread_mutex_unlock(&cat->ro_lock);
        if (txn != NULL && mdb_txn_renew(txn) != 0) {
            mdb_txn_abort(txn);
            txn = NULL;
        }
        if (txn == NULL) {
            int rc = mdb_txn_begin(env->mdb, NULL, MDB_RDONLY, &txn);
            if (rc != 0)
                return edb__mdb_err(rc, "begin read transaction");
        }
        int c = edb__pool_check(env, txn, true);
        if (c == 0) {
            *out = txn;
            return 0;
        }
        edb__ro_end(env, txn);
        if (c < 0)
            return c;
        if (round == POOL_ROUNDS)
            return edb__err(EDB_BUSY, "begin read transaction: the tables' database handles "
                            "kept changing (%d rounds)", POOL_ROUNDS);
        EDB_RET(edb__pool_sync(env));
    }
}

void
edb__ro_end(edb_env *env, MDB_txn *txn)
{
    edb__catalog *cat = edb__cat(env);
    mdb_txn_reset(txn);
    pthread_mutex_lock(&cat->ro_lock);
    if (cat->ro_nspare < EDB__RO_SPARES) {
        cat->ro_spare[cat->ro_nspare++] = txn;
        txn = NULL;
    }
    pthread_mutex_unlock(&cat->ro_lock);
    if (txn != NULL)
        mdb_txn_abort(txn);
}

/* ------------------------------------------------------------------ names */

bool
edb__name_ok(const char *name)
{
    if (name == NULL || name[0] == '\0' || (name[0] >= '0' && name[0] <= '9'))
        return false;
    size_t i = 0;
    for (; name[i] != '\0'; i++) {
        char ch = name[i];
        if (i >= EDB__NAME_MAX)
            return false;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'))
            return false;
    }
    return true;
}

int
edb__name_check(const char *name, const char *kind, const char *ctx)
{
    if (edb__name_ok(name))
        return 0;
    char q[4 * 80 + 8];
    size_t o = 0;
    if (name == NULL) {
        snprintf(q, sizeof q, "(null)");
    } else {
        for (size_t i = 0; name[i] != '\0' && o + 8 < sizeof q; i++) {
            unsigned char ch = (unsigned char)name[i];
            if (i == 80) {
                o += (size_t)snprintf(q + o, sizeof q - o, "...");
                break;
            }
            if (ch < 0x20 || ch >= 0x7f || ch == '\\' || ch == '\'')
                o += (size_t)snprintf(q + o, sizeof q - o, "\\x%02x", ch);
            else
                q[o++] = (char)ch;
        }
        q[o] = '\0';
    }
    return edb__err(EDB_INVAL, "%sbad %s name '%s': " EDB__NAME_RULE, ctx ? ctx : "", kind, q);
}

int
edb__type_size(edb_coltype type)
{
    switch (type) {
    case EDB_COL_BOOL: case EDB_COL_INT8: case EDB_COL_UINT8: return 1;
    case EDB_COL_INT16: case EDB_COL_UINT16: return 2;
    case EDB_COL_INT32: case EDB_COL_UINT32: case EDB_COL_FLOAT: return 4;
    case EDB_COL_INT64: case EDB_COL_UINT64: case EDB_COL_DOUBLE: case EDB_COL_DATETIME: return 8;
    case EDB_COL_GUID: return 16;
    case EDB_COL_TEXT: case EDB_COL_BINARY: return 0;
    }
    return -1;
}

edb_colid
edb__table_colid(const edb__table *t, const char *name)
{
    for (uint32_t i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return i + 1;
    return 0;
}

int
edb__table_index(const edb__table *t, const char *name)
{
    for (uint32_t i = 0; i < t->nidx; i++)
        if (strcmp(t->idx[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ------------------------------------------------------------------ blobs */

typedef struct wbuf { uint8_t *p; size_t len, cap; bool oom; } wbuf;

static void
wput(wbuf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void
wu8(wbuf *b, unsigned v)
{
    uint8_t x = (uint8_t)v;
    wput(b, &x, 1);
}

static void
wu32(wbuf *b, uint32_t v)
{
    uint8_t x[4];
    put_u32(x, v);
    wput(b, x, 4);
}

static void
wname(wbuf *b, const char *s)
{
    size_t n = strlen(s);
    wu8(b, (unsigned)n);
    wput(b, s, n);
}

static int
encode(wbuf *b, const edb__table *t)
{
    wu8(b, BLOB_VERSION);
    wu8(b, 0);
    wname(b, t->name);
    wu32(b, t->slot);
    wu32(b, t->gen);
    wu32(b, (uint32_t)t->created);
    wu32(b, (uint32_t)(t->created >> 32));
    wu32(b, t->ncols);
    wu32(b, t->nidx);
    for (uint32_t i = 0; i < t->ncols; i++) {
        const edb__column *c = &t->cols[i];
        wname(b, c->name);
        wu8(b, (unsigned)c->type);
        wu8(b, c->flags);
        wu32(b, c->max_size);
        wu8(b, c->has_default);
        wu32(b, c->has_default ? c->default_size : 0);
        if (c->has_default)
            wput(b, c->default_value, c->default_size);
        wu32(b, (uint32_t)c->id);
        wu32(b, (uint32_t)(c->id >> 32));
    }
    for (uint32_t i = 0; i < t->nidx; i++) {
        const edb__index *x = &t->idx[i];
        wname(b, x->name);
        wu8(b, x->flags);
        wu8(b, x->slot);
        wu8(b, x->nseg);
        for (unsigned j = 0; j < x->nseg; j++) {
            wu32(b, x->seg[j].col);
            wu8(b, x->seg[j].desc);
        }
        wu32(b, (uint32_t)x->id);
        wu32(b, (uint32_t)(x->id >> 32));
    }
    return b->oom ? edb__err(EDB_NOMEM, "table '%s': schema", t->name) : 0;
}

typedef struct rbuf { const uint8_t *p; size_t len, off; bool bad; } rbuf;

static const uint8_t *
rget(rbuf *b, size_t n)
{
    if (b->bad || n > b->len - b->off) {
        b->bad = true;
        return NULL;
    }
    const uint8_t *p = b->p + b->off;
    b->off += n;
    return p;
}

static unsigned
ru8(rbuf *b)
{
    const uint8_t *p = rget(b, 1);
    return p ? *p : 0;
}

static uint32_t
ru32(rbuf *b)
{
    const uint8_t *p = rget(b, 4);
    return p ? get_u32(p) : 0;
}

static void
rname(rbuf *b, char *out)
{
    unsigned n = ru8(b);
    const uint8_t *p = rget(b, n);
    if (p == NULL || n == 0 || n > EDB__NAME_MAX) {
        b->bad = true;
        out[0] = '\0';
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

void
edb__table_free(edb__table *t)
{
    if (t == NULL)
        return;
    free(t->cols);
    free(t->idx);
    free(t->defaults);
    free(t);
}

int
edb__table_decode(edb__table **out, edb_env *env, const void *blob, size_t size)
{
    *out = NULL;
    rbuf b = { blob, size, 0, false };
    edb__table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return edb__err(EDB_NOMEM, "catalog");
    unsigned version = size > 0 ? ((const uint8_t *)blob)[0] : BLOB_VERSION;
    if (version != 1 && version != BLOB_VERSION) {
        edb__table_free(t);
        return edb__err(EDB_VERSION, "catalog: table schema version %u",
                        ((const uint8_t *)blob)[0]);
    }
    ru8(&b);
    ru8(&b);
    rname(&b, t->name);
    t->slot = ru32(&b);
    t->gen = ru32(&b);
    t->created = ru32(&b);
    t->created |= (uint64_t)ru32(&b) << 32;
    t->ncols = ru32(&b);
    t->nidx = ru32(&b);
    t->primary = -1;
    unsigned max_tables = env ? edb__cat(env)->max_tables : UINT32_MAX;
    if (b.bad || t->slot >= max_tables || t->ncols > EDB_MAX_COLUMNS || t->nidx > EDB_MAX_INDEXES)
        goto bad;
    t->cols = calloc(t->ncols ? t->ncols : 1, sizeof *t->cols);
    t->idx = calloc(t->nidx ? t->nidx : 1, sizeof *t->idx);
    t->defaults = malloc(size ? size : 1);     /* defaults are never larger than the blob */
    if (t->cols == NULL || t->idx == NULL || t->defaults == NULL) {
        edb__table_free(t);
        return edb__err(EDB_NOMEM, "catalog");
    }
    size_t dlen = 0;
    for (uint32_t i = 0; i < t->ncols; i++) {
        edb__column *c = &t->cols[i];
        rname(&b, c->name);
        c->type = (edb_coltype)ru8(&b);
        c->flags = ru8(&b);
        c->max_size = ru32(&b);
        c->has_default = ru8(&b) != 0;
        c->default_size = ru32(&b);
        const uint8_t *d = rget(&b, c->default_size);
        if (b.bad || edb__type_size(c->type) < 0)
            goto bad;
        memcpy(t->defaults + dlen, d, c->default_size);
        c->default_value = t->defaults + dlen;
        dlen += c->default_size;
        if (version >= 2) {
            c->id = ru32(&b);
            c->id |= (uint64_t)ru32(&b) << 32;
        }
    }
    int nprimary = 0;
    for (uint32_t i = 0; i < t->nidx; i++) {
        edb__index *x = &t->idx[i];
        rname(&b, x->name);
        x->flags = ru8(&b);
        x->slot = ru8(&b);
        x->nseg = ru8(&b);
        if (b.bad || x->nseg == 0 || x->nseg > EDB_MAX_KEY_SEGMENTS || x->slot >= EDB_MAX_INDEXES)
            goto bad;
        for (unsigned j = 0; j < x->nseg; j++) {
            x->seg[j].col = ru32(&b);
            x->seg[j].desc = ru8(&b) != 0;
            if (x->seg[j].col == 0 || x->seg[j].col > t->ncols)
                goto bad;
        }
        if (version >= 2) {
            x->id = ru32(&b);
            x->id |= (uint64_t)ru32(&b) << 32;
        }
        if (x->flags & EDB_IDX_PRIMARY) {
            t->primary = (int)i;
            nprimary++;
        } else if (env != NULL) {
            x->dbi = edb__pool_idx(env, t->slot, x->slot);
        }
    }
    if (b.bad || b.off != b.len || nprimary > 1)
        goto bad;
    if (env != NULL)
        t->rec_dbi = edb__pool_rec(env, t->slot);
    *out = t;
    return 0;
bad:;
    char name[EDB__NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", t->name[0] ? t->name : "?");
    edb__table_free(t);
    return edb__err(EDB_CORRUPT, "catalog: malformed schema of table '%s'", name);
}

int
edb__table_clone(edb__table **out, const edb__table *t)
{
    wbuf b = { 0 };
    int rc = encode(&b, t);
    if (rc == 0) {
        rc = edb__table_decode(out, NULL, b.p, b.len);
        if (rc == 0) {
            (*out)->rec_dbi = t->rec_dbi;
            for (uint32_t i = 0; i < t->nidx; i++)
                (*out)->idx[i].dbi = t->idx[i].dbi;
        }
    }
    free(b.p);
    return rc;
}

static void
table_key(MDB_val *k, char *buf, const char *name)
{
    size_t n = strlen(name);
    buf[0] = 't';
    memcpy(buf + 1, name, n);
    k->mv_size = n + 1;
    k->mv_data = buf;
}

int
edb__table_blob(edb_env *env, MDB_txn *txn, const char *name, MDB_val *out)
{
    if (!edb__name_ok(name))
        return edb__err(EDB_NOTFOUND, "table '%s' does not exist", name ? name : "(null)");
    char buf[EDB__NAME_MAX + 2];
    MDB_val k;
    table_key(&k, buf, name);
    int rc = mdb_get(txn, edb__cat(env)->cat, &k, out);
    if (edb__mdb_is_notfound(rc))
        return edb__err(EDB_NOTFOUND, "table '%s' does not exist", name);
    return edb__mdb_err(rc, "catalog: read");
}

int
edb__table_load(edb__table **out, edb_env *env, MDB_txn *txn, const char *name)
{
    *out = NULL;
    if (!edb__name_ok(name))
        return edb__err(EDB_NOTFOUND, "table '%s' does not exist", name ? name : "(null)");
    char buf[EDB__NAME_MAX + 2];
    MDB_val k, v;
    table_key(&k, buf, name);
    int rc = mdb_get(txn, edb__cat(env)->cat, &k, &v);
    if (edb__mdb_is_notfound(rc))
        return edb__err(EDB_NOTFOUND, "table '%s' does not exist", name);
    if (rc != 0)
        return edb__mdb_err(rc, "catalog: read");
    return edb__table_decode(out, env, v.mv_data, v.mv_size);
}

int
edb__table_store(edb_env *env, MDB_txn *txn, edb__table *t)
{
    t->gen++;
    wbuf b = { 0 };
    int rc = encode(&b, t);
    if (rc == 0) {
        char buf[EDB__NAME_MAX + 2];
        MDB_val k, v = { b.len, b.p };
        table_key(&k, buf, t->name);
        rc = edb__mdb_err(mdb_put(txn, edb__cat(env)->cat, &k, &v, 0), "catalog: write");
    }
    free(b.p);
    return rc;
}

static void
counter_key(uint8_t *k, uint32_t slot, edb_colid col)
{
    k[0] = 'c';
    k[1] = (uint8_t)(slot >> 24); k[2] = (uint8_t)(slot >> 16); k[3] = (uint8_t)(slot >> 8); k[4] = (uint8_t)slot;
    k[5] = (uint8_t)(col >> 24); k[6] = (uint8_t)(col >> 16); k[7] = (uint8_t)(col >> 8); k[8] = (uint8_t)col;
}

/* The high-water mark of counter (slot, col), or NULL (hwm_lock held). */
static struct edb__hwm *
hwm_find(edb__catalog *cat, uint32_t slot, edb_colid col)
{
    for (size_t i = 0; i < cat->hwm_n; i++)
        if (cat->hwm[i].slot == slot && cat->hwm[i].col == col)
            return &cat->hwm[i];
    return NULL;
}

static uint64_t
hwm_get(edb_env *env, uint32_t slot, edb_colid col)
{
    edb__catalog *cat = edb__cat(env);
    pthread_mutex_lock(&cat->hwm_lock);
    struct edb__hwm *h = hwm_find(cat, slot, col);
    uint64_t n = h != NULL ? h->n : 0;
    pthread_mutex_unlock(&cat->hwm_lock);
    return n;
}

/* Raise the mark to @n.  Out of memory only loses the rollback guarantee for
 * this counter, never a committed value: it is not an error. */
static void
hwm_raise(edb_env *env, uint32_t slot, edb_colid col, uint64_t n)
{
    edb__catalog *cat = edb__cat(env);
    pthread_mutex_lock(&cat->hwm_lock);
    struct edb__hwm *h = hwm_find(cat, slot, col);
    if (h == NULL) {
        if (cat->hwm_n == cat->hwm_cap) {
            size_t cap = cat->hwm_cap ? cat->hwm_cap * 2 : 8;
            struct edb__hwm *p = realloc(cat->hwm, cap * sizeof *p);
            if (p != NULL) {
                cat->hwm = p;
                cat->hwm_cap = cap;
            }
        }
        if (cat->hwm_n < cat->hwm_cap) {
            h = &cat->hwm[cat->hwm_n++];
            *h = (struct edb__hwm){ slot, col, 0 };
        }
    }
    if (h != NULL && h->n < n)
        h->n = n;
    pthread_mutex_unlock(&cat->hwm_lock);
}

void
edb__counter_adopt(edb_env *env, uint32_t slot, uint64_t table)
{
    edb__catalog *cat = edb__cat(env);
    if (slot >= cat->max_tables)
        return;
    pthread_mutex_lock(&cat->hwm_lock);
    if (cat->hwm_table[slot] != table) {
        for (size_t i = 0; i < cat->hwm_n;) {
            if (cat->hwm[i].slot == slot)
                cat->hwm[i] = cat->hwm[--cat->hwm_n];
            else
                i++;
        }
        cat->hwm_table[slot] = table;
    }
    pthread_mutex_unlock(&cat->hwm_lock);
}

uint64_t
edb__catalog_new_id(void)
{
    static atomic_uint_fast64_t seq;
    struct {
        uint64_t seq, pid;
        struct timespec mono, real;
        uint8_t rnd[16];
    } in;
    memset(&in, 0, sizeof in);
    in.seq = atomic_fetch_add(&seq, 1) + 1;
    in.pid = (uint64_t)getpid();
    clock_gettime(CLOCK_MONOTONIC, &in.mono);
    clock_gettime(CLOCK_REALTIME, &in.real);
    if (getrandom(in.rnd, sizeof in.rnd, GRND_NONBLOCK) < 0)
        memset(in.rnd, 0, sizeof in.rnd);    /* the counter, pid and clocks still differ */
    uint64_t id = XXH3_64bits(&in, sizeof in);
    return id != 0 ? id : 1;
}

int
edb__counter_get(uint64_t *out, edb_env *env, MDB_txn *txn, uint32_t slot, edb_colid col)
{
    EDB_RET(edb__counter_read(out, env, txn, slot, col));
    uint64_t mark = hwm_get(env, slot, col);
    if (mark > *out)
        *out = mark;
    return 0;
}

int
edb__counter_read(uint64_t *out, edb_env *env, MDB_txn *txn, uint32_t slot, edb_colid col)
{
    uint8_t kb[9];
    counter_key(kb, slot, col);
    MDB_val k = { sizeof kb, kb }, v;
    uint64_t n = 0;
    *out = 0;
    int rc = mdb_get(txn, edb__cat(env)->cat, &k, &v);
    if (rc == 0 && v.mv_size == 8)
        memcpy(&n, v.mv_data, 8);
    else if (rc == 0)
        return edb__err(EDB_CORRUPT, "catalog: counter of table slot %u", (unsigned)slot);
    else if (!edb__mdb_is_notfound(rc))
        return edb__mdb_err(rc, "catalog: counter");
    *out = n;
    return 0;
}

int
edb__counter_set(edb_env *env, MDB_txn *txn, uint32_t slot, edb_colid col, uint64_t n)
{
    uint8_t kb[9];
    counter_key(kb, slot, col);
    MDB_val k = { sizeof kb, kb }, v = { 8, &n };
    EDB_RET(edb__mdb_err(mdb_put(txn, edb__cat(env)->cat, &k, &v, 0), "catalog: counter"));
    hwm_raise(env, slot, col, n);
    return 0;
}

int
edb__table_erase(edb_env *env, MDB_txn *txn, const edb__table *t)
{
    char buf[EDB__NAME_MAX + 2];
    MDB_val k;
    table_key(&k, buf, t->name);
    EDB_RET(edb__mdb_err(mdb_del(txn, edb__cat(env)->cat, &k, NULL), "catalog: drop"));
    EDB_RET(edb__mdb_err(mdb_drop(txn, t->rec_dbi, 0), "drop records"));
    for (uint32_t i = 0; i < t->nidx; i++)
        if (!(t->idx[i].flags & EDB_IDX_PRIMARY))
            EDB_RET(edb__mdb_err(mdb_drop(txn, t->idx[i].dbi, 0), "drop index"));
    /* Counters: keys "c" + slot (a handful per table). */
    uint8_t kb[9];
    counter_key(kb, t->slot, 0);
    for (;;) {
        MDB_cursor *cur;
        EDB_RET(edb__mdb_err(mdb_cursor_open(txn, edb__cat(env)->cat, &cur), "catalog: cursor"));
        MDB_val ck = { 9, kb }, cv;
        int rc = mdb_cursor_get(cur, &ck, &cv, MDB_SET_RANGE);
        bool mine = rc == 0 && ck.mv_size == 9 && memcmp(ck.mv_data, kb, 5) == 0;
        if (mine)
            rc = mdb_cursor_del(cur, 0);
        mdb_cursor_close(cur);
        if (rc != 0 && !edb__mdb_is_notfound(rc))
            return edb__mdb_err(rc, "catalog: drop counters");
        if (!mine)
            return 0;
    }
}

int
edb__catalog_foreach(edb_env *env, MDB_txn *txn, int (*fn)(void *ctx, const edb__table *t), void *ctx)
{
    MDB_cursor *cur;
    EDB_RET(edb__mdb_err(mdb_cursor_open(txn, edb__cat(env)->cat, &cur), "catalog: cursor"));
    MDB_val k = { 1, "t" }, v;
    int ret = 0;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size > 0 && ((const char *)k.mv_data)[0] == 't') {
        edb__table *t;
        if ((ret = edb__table_decode(&t, env, v.mv_data, v.mv_size)) < 0)
            break;
        ret = fn(ctx, t);
        edb__table_free(t);
        if (ret != 0)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (ret != 0)
        return ret;
    if (rc != 0 && !edb__mdb_is_notfound(rc))
        return edb__mdb_err(rc, "catalog: walk");
    return 0;
}

typedef struct slots_ctx { uint8_t *used; unsigned n; } slots_ctx;

static int
mark_slot(void *ctx, const edb__table *t)
{
    slots_ctx *sc = ctx;
    if (t->slot < sc->n)
        sc->used[t->slot] = 1;
    return 0;
}

int
edb__catalog_free_slot(uint32_t *out, edb_env *env, MDB_txn *txn)
{
    unsigned n = edb__cat(env)->max_tables;
    slots_ctx sc = { calloc(n, 1), n };
    if (sc.used == NULL)
        return edb__err(EDB_NOMEM, "catalog");
    int rc = edb__catalog_foreach(env, txn, mark_slot, &sc);
    if (rc == 0) {
        rc = edb__err(EDB_LIMIT, "the environment holds its maximum of %u tables", n);
        for (unsigned i = 0; i < n; i++)
            if (!sc.used[i]) {
                *out = i;
                rc = 0;
                break;
            }
    }
    free(sc.used);
    return rc;
}

/*
 * catalog.c: the catalog DB, the keyspace's databases and table schema blobs.
 *
 * See catalog.h for the keyspace and the catalog's keys.  A table's schema is
 * one blob (all integers little-endian):
 *
 * | offset | size | meaning                                             |
 * |--------|------|-----------------------------------------------------|
 * | 0      | 1    | blob version, 3 (4: a column is dropped, see below) |
 * | 1      | 1    | reserved, 0                                         |
 * | 2      | 1    | table name length n (1..64)                         |
 * | 3      | n    | table name                                          |
 * | 3+n    | 4    | the table's compact id (prefix of its records)      |
 * | 7+n    | 4    | gen (bumped by every schema change)                 |
 * | 11+n   | 8    | the table's identity (edb__catalog_new_id)          |
 * | 19+n   | 4    | column count C                                      |
 * | 23+n   | 4    | index count I                                       |
 * | 27+n   | ...  | C columns, then I indexes                           |
 *
 * A column: u8 name length, name, u8 type, u8 flags, u32 max_size,
 * u8 has_default, u32 default size, default bytes (native form), u64 the
 * column's identity (column ids carry a tag of it).
 * An index: u8 name length, name, u8 flags (EDB_IDX_*), u32 the index's
 * compact id (prefix of its entries; 0 for the primary index), u8 segment
 * count S, then S times (u32 colid, u8 descending), then u64 the index's
 * identity.  Identities let handles tell a dropped table or index from a new
 * one of the same name (cursor.c).  Blob versions 1 and 2 belong to formats
 * 1-3, which this library refuses (catalog.h).
 *
 * Blob version 4 (issue 14) is version 3 followed by extension records, for
 * what a version 3 blob cannot say, and may hold dropped columns
 * (edb_column_drop): such a column's flags byte is EDB__COL_DROPPED (0x80)
 * and nothing else, no default, and its name is ignored.  A table that uses
 * none of this is still written as version 3, so a database without dropped
 * columns, collations, conditions or tuple indexes stays readable by the
 * libraries of format 4 before it, and one that uses them is refused by those
 * with EDB_VERSION (schema version 4), never misread.  After the indexes:
 * u32 count E (0 when only a dropped column asked for version 4), then E
 * records of
 *
 * | size | meaning                                                   |
 * |------|-----------------------------------------------------------|
 * | 1    | tag                                                       |
 * | 4    | the column's position (1-based) or the index's (0-based)  |
 * | 2    | payload length L                                          |
 * | L    | payload                                                   |
 *
 * tag 1 column collation: the ICU locale tag (1..64 bytes);
 * tag 2 index collator version: u8 segment, 4 bytes ucol_getVersion;
 * tag 3 index condition: u8 1 = must be NULL ("!col"), u32 column position;
 * tag 4 index tuples: u32 tuple_min, u32 tuple_max.
 * An unknown tag is EDB_CORRUPT (a newer library writes a new blob version).
 *
 * Invariants: a stored blob always decodes; every colid in an index is a
 * column of the table; at most one index is PRIMARY; compact ids are
 * distinct across every table and index of the database.
 *
 * Thread safety: the handles are opened once, by edb__catalog_open, before
 * the env is shared; ro_lock and hwm_lock are leaf locks.
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

#include "catalog.h"
#include "collate.h"
#include "longval.h"
#include "error.h"
#include "session.h"
#include "undo.h"

static atomic_uint_fast64_t env_uids;

static const char FORMAT_KEY[] = "\0format";   /* 7 bytes, leading NUL */
#define FORMAT_KEY_LEN 7
static const char NEXTID_KEY[] = "\0nextid";  /* 7 bytes, leading NUL */
#define NEXTID_KEY_LEN 7
#define BLOB_VERSION 3
#define BLOB_VERSION_EXT 4    /* version 3 + extension records, dropped columns */

/* ------------------------------------------------------------------ open */

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

/* The format of a database made before the keyspace (its catalog is the
 * pool's "edb:catalog"), for the message; 0 when unreadable. */
static uint32_t
old_format(MDB_txn *txn)
{
    MDB_dbi dbi;
    MDB_val k = { FORMAT_KEY_LEN, (void *)FORMAT_KEY }, v;
    if (mdb_dbi_open(txn, "edb:catalog", 0, &dbi) != 0)
        return 0;
    if (mdb_get(txn, dbi, &k, &v) != 0 || v.mv_size < 8 || get_u32(v.mv_data) != EDB__FORMAT_MAGIC)
        return 0;
    return get_u32((uint8_t *)v.mv_data + 4);
}

int
edb__catalog_open(edb_env *env)
{
    int ret = 0, rc;
    MDB_txn *txn = NULL;
    bool rdonly = (env->flags & EDB_ENV_READONLY) != 0;
    edb__catalog *cat = calloc(1, sizeof *cat);
    if (cat == NULL)
        return edb__err(EDB_NOMEM, "catalog");
    env->catalog = cat;
    mdb_env_set_userctx(env->mdb, &cat->undo);     /* undo.h: the active log */
    pthread_mutex_init(&cat->ro_lock, NULL);
    pthread_mutex_init(&cat->hwm_lock, NULL);
    cat->uid = atomic_fetch_add(&env_uids, 1) + 1;
    if ((ret = edb__collcache_new(&cat->coll)) < 0)
        goto err;

    if ((rc = mdb_txn_begin(env->mdb, NULL, rdonly ? MDB_RDONLY : 0, &txn)) != 0) {
        txn = NULL;
        EDB_ERR(edb__mdb_err(rc, "catalog: begin"));
    }
    uint8_t rec[12];
    MDB_val fk = { FORMAT_KEY_LEN, (void *)FORMAT_KEY }, fv = { sizeof rec, rec };
    rc = mdb_dbi_open(txn, EDB__KS_CATALOG, 0, &cat->cat);
    if (edb__mdb_is_notfound(rc)) {
        uint32_t old = old_format(txn);
        if (old != 0)
            EDB_ERR(edb__err(EDB_VERSION, "'%s' is a format %u database (one LMDB database per "
                             "table); this library reads format %u: convert it with "
                             "`dbtool upgrade %s`", env->path, old, EDB__FORMAT_VERSION, env->path));
        MDB_dbi main_dbi;
        MDB_stat st;
        if ((rc = mdb_dbi_open(txn, NULL, 0, &main_dbi)) != 0 ||
            (rc = mdb_stat(txn, main_dbi, &st)) != 0)
            EDB_ERR(edb__mdb_err(rc, "catalog: main database"));
        if (st.ms_entries != 0 || rdonly)
            EDB_ERR(edb__err(EDB_VERSION, "'%s' is not an edb database (no catalog)", env->path));
        if ((rc = mdb_dbi_open(txn, EDB__KS_CATALOG, MDB_CREATE, &cat->cat)) != 0 ||
            (rc = mdb_dbi_open(txn, EDB__KS_RECORDS, MDB_CREATE, &cat->recs)) != 0 ||
            (rc = mdb_dbi_open(txn, EDB__KS_INDEX, MDB_CREATE, &cat->idx)) != 0)
            EDB_ERR(edb__mdb_err(rc, "catalog: create"));
        put_u32(rec, EDB__FORMAT_MAGIC);
        put_u32(rec + 4, EDB__FORMAT_VERSION);
        put_u32(rec + 8, 0);
        cat->format = EDB__FORMAT_VERSION;
        if ((rc = mdb_put(txn, cat->cat, &fk, &fv, 0)) != 0)
            EDB_ERR(edb__mdb_err(rc, "catalog: format record"));
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
        if (version > EDB__FORMAT_VERSION)
            EDB_ERR(edb__err(EDB_VERSION, "'%s': format %u is newer than this library's %u",
                             env->path, version, EDB__FORMAT_VERSION));
        if (version < EDB__FORMAT_OLDEST)
            EDB_ERR(edb__err(EDB_VERSION, "'%s': format %u; this library reads formats %u and %u: "
                             "convert it with `dbtool upgrade %s`", env->path, version,
                             EDB__FORMAT_OLDEST, EDB__FORMAT_VERSION, env->path));
        cat->format = version;
        if ((rc = mdb_dbi_open(txn, EDB__KS_RECORDS, 0, &cat->recs)) != 0 ||
            (rc = mdb_dbi_open(txn, EDB__KS_INDEX, 0, &cat->idx)) != 0)
            EDB_ERR(edb__mdb_is_notfound(rc)
                        ? edb__err(EDB_CORRUPT, "'%s': the catalog's records or index database "
                                   "is missing", env->path)
                        : edb__mdb_err(rc, "catalog: open"));
    }
    /* Committing (also a read txn) keeps the handles for the env's life. */
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0)
        EDB_ERR(edb__mdb_err_env(rc, env->mdb, "catalog: commit"));
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
    free(cat->hwm);
    edb__collcache_free(cat->coll);
    if (env->mdb != NULL)
        mdb_env_set_userctx(env->mdb, NULL);
    free(cat);
    env->catalog = NULL;
}

int
edb__ro_begin(edb_env *env, MDB_txn **out)
{
    edb__catalog *cat = edb__cat(env);
    *out = NULL;
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
    *out = txn;
    return 0;
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

edb_colid
edb__table_colid(const edb__table *t, const char *name)
{
    for (uint32_t i = 0; i < t->ncols; i++)
        if (!(t->cols[i].flags & EDB__COL_DROPPED) && strcmp(t->cols[i].name, name) == 0)
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

static void
wu16(wbuf *b, unsigned v)
{
    wu8(b, v & 0xFF);
    wu8(b, (v >> 8) & 0xFF);
}

static bool
seg_collated(const edb__table *t, const edb__index *x, unsigned j)
{
    return t->cols[x->seg[j].col - 1].collation[0] != '\0';
}

/* The extension records of @t (blob version 4); with b NULL, only count them. */
static uint32_t
encode_ext(wbuf *b, const edb__table *t)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->ncols; i++) {
        const edb__column *c = &t->cols[i];
        if (c->collation[0] == '\0')
            continue;
        n++;
        if (b == NULL)
            continue;
        size_t l = strlen(c->collation);
        wu8(b, 1);
        wu32(b, i + 1);
        wu16(b, (unsigned)l);
        wput(b, c->collation, l);
    }
    for (uint32_t i = 0; i < t->nidx; i++) {
        const edb__index *x = &t->idx[i];
        for (unsigned j = 0; j < x->nseg; j++) {
            if (!seg_collated(t, x, j))
                continue;
            n++;
            if (b == NULL)
                continue;
            wu8(b, 2);
            wu32(b, i);
            wu16(b, 5);
            wu8(b, j);
            wput(b, x->collver[j], 4);
        }
        if (x->cond_col != 0) {
            n++;
            if (b != NULL) {
                wu8(b, 3);
                wu32(b, i);
                wu16(b, 5);
                wu8(b, x->cond_null);
                wu32(b, x->cond_col);
            }
        }
        if (x->flags & EDB_IDX_TUPLES) {
            n++;
            if (b != NULL) {
                wu8(b, 4);
                wu32(b, i);
                wu16(b, 8);
                wu32(b, x->tuple_min);
                wu32(b, x->tuple_max);
            }
        }
    }
    return n;
}

/* Read the extension records of a version 4 blob into @t. */
static bool
decode_ext(edb__rbuf *b, edb__table *t)
{
    uint32_t n = edb__rbuf_u32(b);
    for (uint32_t k = 0; k < n && !b->bad; k++) {
        unsigned tag = edb__rbuf_u8(b);
        uint32_t pos = edb__rbuf_u32(b);
        unsigned l = edb__rbuf_u8(b);
        l |= edb__rbuf_u8(b) << 8;
        const uint8_t *p = edb__rbuf_take(b, l);
        if (p == NULL)
            return false;
        edb__rbuf pb = { p, l, 0, false };
        if (tag == 1) {
            if (pos == 0 || pos > t->ncols || l == 0 || l > EDB__NAME_MAX ||
                t->cols[pos - 1].type != EDB_COL_TEXT)
                return false;
            memcpy(t->cols[pos - 1].collation, p, l);
            t->cols[pos - 1].collation[l] = '\0';
            continue;
        }
        if (pos >= t->nidx)
            return false;
        edb__index *x = &t->idx[pos];
        if (tag == 2) {
            unsigned j = edb__rbuf_u8(&pb);
            const uint8_t *v = edb__rbuf_take(&pb, 4);
            if (v == NULL || j >= x->nseg)
                return false;
            memcpy(x->collver[j], v, 4);
        } else if (tag == 3) {
            x->cond_null = edb__rbuf_u8(&pb) != 0;
            x->cond_col = edb__rbuf_u32(&pb);
            if (x->cond_col == 0 || x->cond_col > t->ncols)
                return false;
        } else if (tag == 4) {
            x->tuple_min = edb__rbuf_u32(&pb);
            x->tuple_max = edb__rbuf_u32(&pb);
            if (!(x->flags & EDB_IDX_TUPLES) || x->tuple_min == 0 || x->tuple_min > x->tuple_max ||
                x->tuple_max > EDB_TUPLE_MAX)
                return false;
        } else {
            return false;
        }
        if (pb.bad || pb.off != pb.len)
            return false;
    }
    return !b->bad;
}

static int
encode(wbuf *b, const edb__table *t)
{
    bool dropped = false;
    for (uint32_t i = 0; i < t->ncols; i++)
        dropped |= (t->cols[i].flags & EDB__COL_DROPPED) != 0;
    uint32_t next = encode_ext(NULL, t);
    bool v4 = next != 0 || dropped;
    wu8(b, v4 ? BLOB_VERSION_EXT : BLOB_VERSION);
    wu8(b, 0);
    wname(b, t->name);
    wu32(b, t->kid);
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
        wu32(b, x->kid);
        wu8(b, x->nseg);
        for (unsigned j = 0; j < x->nseg; j++) {
            wu32(b, x->seg[j].col);
            wu8(b, x->seg[j].desc);
        }
        wu32(b, (uint32_t)x->id);
        wu32(b, (uint32_t)(x->id >> 32));
    }
    if (v4) {
        wu32(b, next);
        encode_ext(b, t);
    }
    return b->oom ? edb__err(EDB_NOMEM, "table '%s': schema", t->name) : 0;
}

const uint8_t *
edb__rbuf_take(edb__rbuf *b, size_t n)
{
    if (b->bad || n > b->len - b->off) {
        b->bad = true;
        return NULL;
    }
    const uint8_t *p = b->p + b->off;
    b->off += n;
    return p;
}

unsigned
edb__rbuf_u8(edb__rbuf *b)
{
    const uint8_t *p = edb__rbuf_take(b, 1);
    return p ? *p : 0;
}

uint32_t
edb__rbuf_u32(edb__rbuf *b)
{
    const uint8_t *p = edb__rbuf_take(b, 4);
    return p ? get_u32(p) : 0;
}

void
edb__rbuf_name(edb__rbuf *b, char *out)
{
    unsigned n = edb__rbuf_u8(b);
    const uint8_t *p = edb__rbuf_take(b, n);
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
    edb__rbuf b = { blob, size, 0, false };
    edb__table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return edb__err(EDB_NOMEM, "catalog");
    unsigned version = size > 0 ? ((const uint8_t *)blob)[0] : BLOB_VERSION;
    if (version != BLOB_VERSION && version != BLOB_VERSION_EXT) {
        edb__table_free(t);
        return edb__err(EDB_VERSION, "catalog: table schema version %u",
                        ((const uint8_t *)blob)[0]);
    }
    edb__rbuf_u8(&b);
    edb__rbuf_u8(&b);
    edb__rbuf_name(&b, t->name);
    t->kid = edb__rbuf_u32(&b);
    t->gen = edb__rbuf_u32(&b);
    t->created = edb__rbuf_u32(&b);
    t->created |= (uint64_t)edb__rbuf_u32(&b) << 32;
    t->ncols = edb__rbuf_u32(&b);
    t->nidx = edb__rbuf_u32(&b);
    t->primary = -1;
    if (b.bad || t->kid == 0 || t->ncols > EDB_MAX_COLUMNS || t->nidx > EDB_MAX_INDEXES)
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
        edb__rbuf_name(&b, c->name);
        c->type = (edb_coltype)edb__rbuf_u8(&b);
        c->flags = edb__rbuf_u8(&b);
        c->max_size = edb__rbuf_u32(&b);
        c->has_default = edb__rbuf_u8(&b) != 0;
        c->default_size = edb__rbuf_u32(&b);
        const uint8_t *d = edb__rbuf_take(&b, c->default_size);
        if (b.bad || edb__type_size(c->type) < 0)
            goto bad;
        /* a dropped column is nothing else (and only in a version 4 blob) */
        if ((c->flags & EDB__COL_DROPPED) &&
            (version != BLOB_VERSION_EXT || c->flags != EDB__COL_DROPPED || c->has_default))
            goto bad;
        memcpy(t->defaults + dlen, d, c->default_size);
        c->default_value = t->defaults + dlen;
        dlen += c->default_size;
        c->id = edb__rbuf_u32(&b);
        c->id |= (uint64_t)edb__rbuf_u32(&b) << 32;
    }
    int nprimary = 0;
    for (uint32_t i = 0; i < t->nidx; i++) {
        edb__index *x = &t->idx[i];
        edb__rbuf_name(&b, x->name);
        x->flags = edb__rbuf_u8(&b);
        x->kid = edb__rbuf_u32(&b);
        x->nseg = edb__rbuf_u8(&b);
        if (b.bad || x->nseg == 0 || x->nseg > EDB_MAX_KEY_SEGMENTS)
            goto bad;
        for (unsigned j = 0; j < x->nseg; j++) {
            x->seg[j].col = edb__rbuf_u32(&b);
            x->seg[j].desc = edb__rbuf_u8(&b) != 0;
            if (x->seg[j].col == 0 || x->seg[j].col > t->ncols ||
                (t->cols[x->seg[j].col - 1].flags & EDB__COL_DROPPED))
                goto bad;
        }
        x->id = edb__rbuf_u32(&b);
        x->id |= (uint64_t)edb__rbuf_u32(&b) << 32;
        if (x->flags & EDB_IDX_PRIMARY) {
            t->primary = (int)i;
            nprimary++;
        } else if (x->kid == 0) {
            goto bad;
        } else if (env != NULL) {
            edb__ks_set(&x->ks, edb__cat(env)->idx, x->kid, edb__fmt5(edb__cat(env)));
        }
    }
    if (version == BLOB_VERSION_EXT && !decode_ext(&b, t))
        goto bad;
    if (b.bad || b.off != b.len || nprimary > 1)
        goto bad;
    for (uint32_t i = 0; i < t->nidx; i++)
        if ((t->idx[i].flags & EDB_IDX_TUPLES) && t->idx[i].tuple_min == 0)
            goto bad;
    if (env != NULL)
        edb__ks_set(&t->rec, edb__cat(env)->recs, t->kid, edb__fmt5(edb__cat(env)));
    /* collators: a collation this ICU cannot open leaves coll NULL; keys on
     * the column then fail with a message (edb__index_entry, seek) */
    for (uint32_t i = 0; env != NULL && i < t->ncols; i++)
        if (t->cols[i].collation[0] != '\0' && edb__coll_get(&t->cols[i].coll, env, t->cols[i].collation) < 0)
            t->cols[i].coll = NULL;
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
            (*out)->rec = t->rec;
            for (uint32_t i = 0; i < t->nidx; i++)
                (*out)->idx[i].ks = t->idx[i].ks;
            for (uint32_t i = 0; i < t->ncols; i++)
                (*out)->cols[i].coll = t->cols[i].coll;
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
        rc = edb__mdb_err(edb__undo_put(txn, edb__cat(env)->cat, &k, &v, 0), "catalog: write");
    }
    free(b.p);
    return rc;
}

int
edb__table_unlink(edb_env *env, MDB_txn *txn, const char *name)
{
    char buf[EDB__NAME_MAX + 2];
    MDB_val k;
    table_key(&k, buf, name);
    return edb__mdb_err(edb__undo_del(txn, edb__cat(env)->cat, &k), "catalog: rename");
}

int
edb__table_blob_ident(edb_env *env, MDB_txn *txn, uint64_t created, MDB_val *out)
{
    MDB_cursor *cur;
    EDB_RET(edb__mdb_err(mdb_cursor_open(txn, edb__cat(env)->cat, &cur), "catalog: cursor"));
    MDB_val k = { 1, "t" }, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    bool found = false;
    while (rc == 0 && k.mv_size > 0 && ((const char *)k.mv_data)[0] == 't') {
        /* the identity without decoding the blob: version, reserved, name,
         * kid, gen, then the identity (table above) */
        edb__rbuf b = { v.mv_data, v.mv_size, 0, false };
        unsigned version = edb__rbuf_u8(&b);
        edb__rbuf_u8(&b);
        edb__rbuf_take(&b, edb__rbuf_u8(&b));
        edb__rbuf_take(&b, 8);
        uint64_t id = edb__rbuf_u32(&b);
        id |= (uint64_t)edb__rbuf_u32(&b) << 32;
        if (!b.bad && (version == BLOB_VERSION || version == BLOB_VERSION_EXT) && id == created) {
            *out = v;
            found = true;
            break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (found)
        return 0;
    if (rc != 0 && !edb__mdb_is_notfound(rc))
        return edb__mdb_err(rc, "catalog: walk");
    return EDB_NOTFOUND;
}

static void
counter_key(uint8_t *k, uint32_t kid, edb_colid col)
{
    k[0] = 'c';
    k[1] = (uint8_t)(kid >> 24); k[2] = (uint8_t)(kid >> 16); k[3] = (uint8_t)(kid >> 8); k[4] = (uint8_t)kid;
    k[5] = (uint8_t)(col >> 24); k[6] = (uint8_t)(col >> 16); k[7] = (uint8_t)(col >> 8); k[8] = (uint8_t)col;
}

/* The high-water mark of counter (kid, col), or NULL (hwm_lock held). */
static struct edb__hwm *
hwm_find(edb__catalog *cat, uint32_t kid, edb_colid col)
{
    for (size_t i = 0; i < cat->hwm_n; i++)
        if (cat->hwm[i].kid == kid && cat->hwm[i].col == col)
            return &cat->hwm[i];
    return NULL;
}

static uint64_t
hwm_get(edb_env *env, uint32_t kid, edb_colid col)
{
    edb__catalog *cat = edb__cat(env);
    pthread_mutex_lock(&cat->hwm_lock);
    struct edb__hwm *h = hwm_find(cat, kid, col);
    uint64_t n = h != NULL ? h->n : 0;
    pthread_mutex_unlock(&cat->hwm_lock);
    return n;
}

/* Raise the mark to @n.  Out of memory only loses the rollback guarantee for
 * this counter, never a committed value: it is not an error. */
static void
hwm_raise(edb_env *env, uint32_t kid, edb_colid col, uint64_t n)
{
    edb__catalog *cat = edb__cat(env);
    pthread_mutex_lock(&cat->hwm_lock);
    struct edb__hwm *h = hwm_find(cat, kid, col);
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
            *h = (struct edb__hwm){ kid, col, 0 };
        }
    }
    if (h != NULL && h->n < n)
        h->n = n;
    pthread_mutex_unlock(&cat->hwm_lock);
}

/* The owner of a compact id's marks is kept as an entry of its own, with
 * this column and the table identity as its value. */
#define OWNER_COL ((edb_colid)-1)

void
edb__counter_adopt(edb_env *env, uint32_t kid, uint64_t table)
{
    edb__catalog *cat = edb__cat(env);
    pthread_mutex_lock(&cat->hwm_lock);
    struct edb__hwm *own = hwm_find(cat, kid, OWNER_COL);
    bool other = own == NULL || own->n != table;
    if (other) {
        for (size_t i = 0; i < cat->hwm_n;) {
            if (cat->hwm[i].kid == kid)
                cat->hwm[i] = cat->hwm[--cat->hwm_n];
            else
                i++;
        }
    }
    pthread_mutex_unlock(&cat->hwm_lock);
    if (other)
        hwm_raise(env, kid, OWNER_COL, table);
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
edb__counter_get(uint64_t *out, edb_env *env, MDB_txn *txn, uint32_t kid, edb_colid col)
{
    EDB_RET(edb__counter_read(out, env, txn, kid, col));
    uint64_t mark = hwm_get(env, kid, col);
    if (mark > *out)
        *out = mark;
    return 0;
}

int
edb__counter_read(uint64_t *out, edb_env *env, MDB_txn *txn, uint32_t kid, edb_colid col)
{
    uint8_t kb[9];
    counter_key(kb, kid, col);
    MDB_val k = { sizeof kb, kb }, v;
    uint64_t n = 0;
    *out = 0;
    int rc = mdb_get(txn, edb__cat(env)->cat, &k, &v);
    if (rc == 0 && v.mv_size == 8)
        memcpy(&n, v.mv_data, 8);
    else if (rc == 0)
        return edb__err(EDB_CORRUPT, "catalog: counter of table kid %u", (unsigned)kid);
    else if (!edb__mdb_is_notfound(rc))
        return edb__mdb_err(rc, "catalog: counter");
    *out = n;
    return 0;
}

int
edb__counter_set(edb_env *env, MDB_txn *txn, uint32_t kid, edb_colid col, uint64_t n)
{
    uint8_t kb[9];
    counter_key(kb, kid, col);
    MDB_val k = { sizeof kb, kb }, v = { 8, &n };
    EDB_RET(edb__mdb_err(edb__undo_put(txn, edb__cat(env)->cat, &k, &v, 0), "catalog: counter"));
    hwm_raise(env, kid, col, n);
    return 0;
}

/* Delete the catalog keys "<tag>" u32be kid ...; a handful per table. */
/* "<tag>" u32be kid: the 5-byte start of a counter or row-count key. */
static void
kid_key(uint8_t *k, char tag, uint32_t kid)
{
    k[0] = (uint8_t)tag;
    k[1] = (uint8_t)(kid >> 24); k[2] = (uint8_t)(kid >> 16); k[3] = (uint8_t)(kid >> 8); k[4] = (uint8_t)kid;
}

static int
erase_keys(edb_env *env, MDB_txn *txn, char tag, uint32_t kid)
{
    uint8_t kb[5];
    kid_key(kb, tag, kid);
    MDB_cursor *cur;
    EDB_RET(edb__mdb_err(mdb_cursor_open(txn, edb__cat(env)->cat, &cur), "catalog: cursor"));
    int rc;
    for (;;) {
        MDB_val ck = { 5, kb }, cv;
        rc = mdb_cursor_get(cur, &ck, &cv, MDB_SET_RANGE);
        bool mine = rc == 0 && ck.mv_size >= 5 && memcmp(ck.mv_data, kb, 5) == 0;
        if (!mine)
            break;
        if ((rc = edb__undo_cursor_del(cur)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && !edb__mdb_is_notfound(rc))
        return edb__mdb_err(rc, "catalog: drop counters");
    return 0;
}

int
edb__index_erase(edb_env *env, MDB_txn *txn, const edb__index *x)
{
    EDB_RET(edb__mdb_err(edb__ks_clear(txn, &x->ks), "drop index"));
    return erase_keys(env, txn, 'n', x->kid);
}

int
edb__table_erase(edb_env *env, MDB_txn *txn, const edb__table *t)
{
    char buf[EDB__NAME_MAX + 2];
    MDB_val k;
    table_key(&k, buf, t->name);
    EDB_RET(edb__mdb_err(edb__undo_del(txn, edb__cat(env)->cat, &k), "catalog: drop"));
    EDB_RET(edb__mdb_err(edb__ks_clear(txn, &t->rec), "drop records"));
    EDB_RET(edb__lv_drop_table(txn, t));
    for (uint32_t i = 0; i < t->nidx; i++)
        if (!(t->idx[i].flags & EDB_IDX_PRIMARY))
            EDB_RET(edb__index_erase(env, txn, &t->idx[i]));
    EDB_RET(erase_keys(env, txn, 'c', t->kid));
    return erase_keys(env, txn, 'n', t->kid);
}

static int
rows_read(uint64_t *out, edb_env *env, MDB_txn *txn, uint32_t kid)
{
    uint8_t kb[5];
    kid_key(kb, 'n', kid);
    MDB_val k = { sizeof kb, kb }, v;
    *out = 0;
    int rc = mdb_get(txn, edb__cat(env)->cat, &k, &v);
    if (edb__mdb_is_notfound(rc))
        return 0;
    EDB_RET(edb__mdb_err(rc, "catalog: row count"));
    if (v.mv_size != 8)
        return edb__err(EDB_CORRUPT, "catalog: row count of id %u", (unsigned)kid);
    memcpy(out, v.mv_data, 8);
    return 0;
}

int
edb__rows_get(uint64_t *out, edb_session *s, MDB_txn *txn, uint32_t kid)
{
    *out = 0;
    uint64_t n;
    EDB_RET(rows_read(&n, s->env, txn, kid));
    for (size_t i = 0; i < s->rows_npend; i++)
        if (s->rows_pend[i].kid == kid && !s->rows_pend[i].erased)
            n += (uint64_t)s->rows_pend[i].delta;
    *out = n;
    return 0;
}

static int
note(edb_session *s, uint32_t kid, int64_t delta, bool erased)
{
    int depth = s->depth;
    /* the last few notes: an insert loop touches the same table and indexes */
    size_t n = s->rows_npend;
    for (size_t i = n; !erased && i > 0 && i + 8 > n; i--) {
        struct edb__rows_delta *e = &s->rows_pend[i - 1];
        if (e->kid == kid && e->depth == depth && !e->erased) {
            e->delta += delta;
            return 0;
        }
    }
    if (n == s->rows_cap) {
        size_t cap = s->rows_cap ? s->rows_cap * 2 : 16;
        struct edb__rows_delta *p = realloc(s->rows_pend, cap * sizeof *p);
        if (p == NULL)
            return edb__err(EDB_NOMEM, "row count");
        s->rows_pend = p;
        s->rows_cap = cap;
    }
    s->rows_pend[n] = (struct edb__rows_delta){ kid, depth, erased, delta };
    s->rows_npend = n + 1;
    return 0;
}

int
edb__rows_add_slow(edb_session *s, uint32_t kid, int64_t delta)
{
    return delta == 0 ? 0 : note(s, kid, delta, false);
}

int
edb__rows_erased(edb_session *s, uint32_t kid)
{
    return note(s, kid, 0, true);
}

void
edb__rows_level_end(edb_session *s, int level, bool commit)
{
    size_t o = 0;
    for (size_t i = 0; i < s->rows_npend; i++) {
        struct edb__rows_delta e = s->rows_pend[i];
        if (e.depth >= level) {
            if (!commit)
                continue;               /* rolled back with the level */
            e.depth = level - 1;        /* the parent's now */
            /* merged into the parent's note of the id when it is among the
             * last few (a level per row must not grow the list) */
            bool merged = false;
            for (size_t j = o; !e.erased && j > 0 && j + 8 > o && !merged; j--) {
                struct edb__rows_delta *p = &s->rows_pend[j - 1];
                if (p->kid == e.kid && p->depth == e.depth && !p->erased) {
                    p->delta += e.delta;
                    merged = true;
                }
            }
            if (merged)
                continue;
        }
        s->rows_pend[o++] = e;
    }
    s->rows_npend = o;
}

/* Was kid's range deleted by a drop noted in this txn? */
static bool
erased(const edb_session *s, uint32_t kid)
{
    for (size_t i = 0; i < s->rows_npend; i++)
        if (s->rows_pend[i].kid == kid && s->rows_pend[i].erased)
            return true;
    return false;
}

int
edb__rows_flush(edb_session *s, MDB_txn *txn)
{
    bool drops = false;         /* only then look for them (a drop is rare) */
    for (size_t i = 0; i < s->rows_npend && !drops; i++)
        drops = s->rows_pend[i].erased;
    for (size_t i = 0; i < s->rows_npend; i++) {
        if (drops && (s->rows_pend[i].erased || erased(s, s->rows_pend[i].kid)))
            continue;
        int rc = edb__rows_write(s->env, txn, s->rows_pend[i].kid, s->rows_pend[i].delta);
        if (rc < 0) {
            /* what was written stays in txn, which the caller aborts */
            s->rows_npend = 0;
            return rc;
        }
    }
    s->rows_npend = 0;
    return 0;
}

void
edb__rows_drop(edb_session *s)
{
    s->rows_npend = 0;
}

int
edb__rows_write(edb_env *env, MDB_txn *txn, uint32_t kid, int64_t delta)
{
    if (delta == 0)
        return 0;
    uint64_t n;
    EDB_RET(rows_read(&n, env, txn, kid));
    if (delta < 0 && n < (uint64_t)-delta)
        return edb__err(EDB_CORRUPT, "catalog: row count of id %u below 0", (unsigned)kid);
    n += (uint64_t)delta;
    uint8_t kb[5];
    kid_key(kb, 'n', kid);
    MDB_val k = { sizeof kb, kb }, v = { 8, &n };
    return edb__mdb_err(edb__undo_put(txn, edb__cat(env)->cat, &k, &v, 0), "catalog: row count");
}

int
edb__catalog_foreach(edb_env *env, MDB_txn *txn, int (*fn)(void *ctx, const edb__table *t), void *ctx,
                     bool *skipped)
{
    MDB_cursor *cur;
    EDB_RET(edb__mdb_err(mdb_cursor_open(txn, edb__cat(env)->cat, &cur), "catalog: cursor"));
    MDB_val k = { 1, "t" }, v;
    int ret = 0;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size > 0 && ((const char *)k.mv_data)[0] == 't') {
        edb__table *t;
        if ((ret = edb__table_decode(&t, env, v.mv_data, v.mv_size)) < 0) {
            if (skipped == NULL || ret == EDB_NOMEM)
                break;
            *skipped = true;
            ret = 0;
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
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

int
edb__catalog_new_kid(uint32_t *out, edb_env *env, MDB_txn *txn)
{
    MDB_val k = { NEXTID_KEY_LEN, (void *)NEXTID_KEY }, v;
    uint32_t next = 1;
    int rc = mdb_get(txn, edb__cat(env)->cat, &k, &v);
    if (rc == 0 && v.mv_size == 4)
        next = get_u32(v.mv_data);
    else if (rc == 0)
        return edb__err(EDB_CORRUPT, "catalog: the id counter");
    else if (!edb__mdb_is_notfound(rc))
        return edb__mdb_err(rc, "catalog: the id counter");
    if (next == 0 || next == UINT32_MAX)
        return edb__err(EDB_LIMIT, "the database has handed out every table and index id "
                        "(2^32 - 1)");
    if (edb__fmt5(edb__cat(env)) && next > EDB__KS_VAR_MAX)
        return edb__err(EDB_LIMIT, "the database has handed out every table and index id "
                        "(2^28 - 1 in format 5)");
    uint8_t b[4];
    put_u32(b, next + 1);
    v.mv_size = 4;
    v.mv_data = b;
    EDB_RET(edb__mdb_err(edb__undo_put(txn, edb__cat(env)->cat, &k, &v, 0), "catalog: the id counter"));
    *out = next;
    return 0;
}

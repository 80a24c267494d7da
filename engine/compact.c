/*
 * compact.c: edb_env_pack, rewriting a database with full pages.
 *
 * LMDB halves a full leaf at every split, so a tree filled in random key
 * order ends about two-thirds full.  A put with MDB_APPEND after the last key
 * starts a new page only when the last one is full: writing every key of a
 * database in order with MDB_APPEND into a fresh environment packs its
 * leaves (what `mdb_load -a` does; `mdb_copy -c` copies pages as they are).
 *
 * The copy: every named LMDB database listed in the source's main database
 * (edb.catalog, edb.records, edb.index and whatever else is there: nothing
 * is hard-coded), with its flags, every key and value byte for byte, read in
 * one snapshot of the source, written into "<path>.compact" with the
 * source's map size (the page size is the system's, as the source's);
 * plain keys of the main database, if any, come along too.  The new
 * database is synced, then checked: every database's entry count (mdb_stat)
 * against the source's, and edb_env_check.  Then, holding the source's write
 * transaction (no commit can slip in), the source's last transaction is
 * compared with the snapshot and LMDB's lock asked once more whether another
 * process has the source open; then the directories are exchanged
 * (dbswap.c) and the old files removed.  Until the exchange the source is not
 * written: an interruption leaves it as it was, and the next run removes the
 * partial "<path>.compact".
 *
 * Thread safety: no other process may have the database open, nor another
 * environment of this process (both refused with EDB_BUSY, dbswap.h).
 */
#include "config.h"

#include <errno.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog.h"
#include "cursor.h"
#include "dbswap.h"
#include "error.h"
#include "keyspace.h"
#include "metaread.h"
#include "record.h"

/* entries per write transaction of the new database */
#define PUTS_PER_TXN 65536u
/* named databases the source may hold (edb's format 4 has three) */
#define SRC_MAX_DBS 4096u
/* LMDB's flags of a named database that shape its tree */
#define DB_FLAGS (MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP)

static const char who[] = "edb_env_pack";

typedef struct named_db {
    char *name;
    unsigned flags;
    MDB_dbi sdbi;
    size_t entries;
} named_db;

typedef struct compact {
    edb__swap sw;
    MDB_env *src, *dst;
    MDB_txn *rtxn, *wtxn, *dtxn;
    named_db *dbs;
    size_t ndbs;
    size_t nplain;        /* plain keys of the main database */
    edb_pack_stat *st;
    bool created;         /* sw.tmp is this call's (removed on failure) */
    bool to5;             /* edb__env_pack5: format 4 -> 5 on the way */
    edb__buf conv;        /* to5: the converted value */
    edb__table **tabs;    /* to5: the schemas (edb.catalog is copied before edb.index) */
    size_t ntabs;
    const edb__table *lt; /* to5: the index of the last entry converted */
    const edb__index *lx;
    uint8_t kconv[512];   /* to5: the key with its short id prefix */
} compact;

/* to5: the key @k of a table's or index's range with format 5's short id
 * prefix instead of format 4's 4 bytes (keyspace.h; the order is kept, so
 * MDB_APPEND still applies).  Long values' chunks keep theirs. */
static int
short_prefix(compact *c, MDB_val *k)
{
    const uint8_t *p = k->mv_data;
    if (k->mv_size < EDB__KS_PREFIX || (p[0] | p[1] | p[2] | p[3]) == 0)
        return 0;
    uint32_t id = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (id > EDB__KS_VAR_MAX)
        return edb__err(EDB_LIMIT, "upgrade: '%s' has a table or index id %u, format 5 holds ids "
                        "below 2^28", c->sw.path, (unsigned)id);
    unsigned n = edb__ks_encode(c->kconv, id, true);
    memcpy(c->kconv + n, p + EDB__KS_PREFIX, k->mv_size - EDB__KS_PREFIX);
    k->mv_size = k->mv_size - EDB__KS_PREFIX + n;
    k->mv_data = c->kconv;
    return 0;
}

/* to5: keep the schema blob @v (a "t" key of edb.catalog). */
static int
keep_schema(compact *c, const MDB_val *v)
{
    edb__table **n = realloc(c->tabs, (c->ntabs + 1) * sizeof *n);
    if (n == NULL)
        return edb__err(EDB_NOMEM, "upgrade");
    c->tabs = n;
    EDB_RET(edb__table_decode(&c->tabs[c->ntabs], NULL, v->mv_data, v->mv_size));
    c->ntabs++;
    return 0;
}

/* to5: the value format 5 stores for the entry (k, v) of edb.index: empty
 * for a non-unique index whose key ends with the primary key @v (cursor.h,
 * edb__index_pk_off), else @v. */
static size_t
entry_value_len(compact *c, const MDB_val *k, const MDB_val *v)
{
    if (k->mv_size <= EDB__KS_PREFIX || v->mv_size == 0)
        return v->mv_size;
    const uint8_t *p = k->mv_data;
    uint32_t kid = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (c->lx == NULL || c->lx->kid != kid) {
        c->lx = NULL;
        for (size_t i = 0; i < c->ntabs && c->lx == NULL; i++)
            for (uint32_t j = 0; j < c->tabs[i]->nidx && c->lx == NULL; j++)
                if ((int)j != c->tabs[i]->primary && c->tabs[i]->idx[j].kid == kid) {
                    c->lt = c->tabs[i];
                    c->lx = &c->tabs[i]->idx[j];
                }
    }
    size_t off;
    if (c->lx == NULL || (c->lx->flags & EDB_IDX_UNIQUE) ||
        edb__index_pk_off(c->lt, c->lx, p + EDB__KS_PREFIX, k->mv_size - EDB__KS_PREFIX, &off) < 0) {
        edb__err_clear();
        return v->mv_size;      /* kept: edb_env_check judges it */
    }
    size_t pklen = k->mv_size - EDB__KS_PREFIX - off;
    if (pklen != v->mv_size || memcmp(p + EDB__KS_PREFIX + off, v->mv_data, pklen) != 0)
        return v->mv_size;
    return 0;
}

/* The named databases of the source (its main database's keys that open as
 * one); the main database's other keys are counted in c->nplain. */
static int
list_dbs(compact *c)
{
    int ret = 0, rc;
    MDB_dbi main;
    MDB_cursor *mc = NULL;
    size_t cap = 0;
    EDB_ERR(edb__mdb_err(mdb_dbi_open(c->rtxn, NULL, 0, &main), "compact: main database"));
    EDB_ERR(edb__mdb_err(mdb_cursor_open(c->rtxn, main, &mc), "compact: main database"));
    MDB_val k, v;
    while ((rc = mdb_cursor_get(mc, &k, &v, MDB_NEXT)) == 0) {
        char *name = NULL;
        MDB_dbi dbi;
        int orc = -1;
        if (k.mv_size > 0 && memchr(k.mv_data, '\0', k.mv_size) == NULL) {
            if ((name = malloc(k.mv_size + 1)) == NULL)
                EDB_ERR(edb__err(EDB_NOMEM, "compact"));
            memcpy(name, k.mv_data, k.mv_size);
            name[k.mv_size] = '\0';
            orc = mdb_dbi_open(c->rtxn, name, 0, &dbi);
        }
        if (orc != 0) {
            free(name);
            if (orc != -1 && !edb__mdb_is_incompatible(orc))
                EDB_ERR(edb__mdb_err(orc, "compact: open a database of the source"));
            c->nplain++;                    /* not a named database: a plain key */
            continue;
        }
        if (c->ndbs == cap) {
            cap = cap ? cap * 2 : 8;
            named_db *n = realloc(c->dbs, cap * sizeof *n);
            if (n == NULL) {
                free(name);
                EDB_ERR(edb__err(EDB_NOMEM, "compact"));
            }
            c->dbs = n;
        }
        named_db *d = &c->dbs[c->ndbs++];
        memset(d, 0, sizeof *d);
        d->name = name;
        d->sdbi = dbi;
        EDB_ERR(edb__mdb_err(mdb_dbi_flags(c->rtxn, dbi, &d->flags), "compact: database flags"));
        d->flags &= DB_FLAGS;
        MDB_stat ms;
        EDB_ERR(edb__mdb_err(mdb_stat(c->rtxn, dbi, &ms), "compact: database stat"));
        d->entries = ms.ms_entries;
    }
    if (!edb__mdb_is_notfound(rc))
        EDB_ERR(edb__mdb_err(rc, "compact: main database"));
err:
    if (mc != NULL)
        mdb_cursor_close(mc);
    return ret;
}

/* Commit the new database's transaction and begin the next one. */
static int
next_txn(compact *c, bool begin)
{
    int rc;
    if (c->dtxn != NULL) {
        rc = mdb_txn_commit(c->dtxn);
        c->dtxn = NULL;
        if (rc != 0)
            return edb__mdb_err_env(rc, c->dst, "compact: write the new database");
    }
    if (begin)
        return edb__mdb_err(mdb_txn_begin(c->dst, NULL, 0, &c->dtxn), "compact: write the new database");
    return 0;
}

/* Copy named database @d in key order with MDB_APPEND. */
static int
copy_db(compact *c, const named_db *d, size_t *puts)
{
    int ret = 0, rc;
    MDB_cursor *sc = NULL, *dc = NULL;
    MDB_dbi ddbi;
    char what[300];
    snprintf(what, sizeof what, "compact: database '%.200s'", d->name);
    EDB_ERR(edb__mdb_err(mdb_dbi_open(c->dtxn, d->name, MDB_CREATE | d->flags, &ddbi), what));
    EDB_ERR(edb__mdb_err(mdb_cursor_open(c->rtxn, d->sdbi, &sc), what));
    EDB_ERR(edb__mdb_err(mdb_cursor_open(c->dtxn, ddbi, &dc), what));
    unsigned app = (d->flags & MDB_DUPSORT) ? MDB_APPENDDUP : MDB_APPEND;
    MDB_val k, v;
    size_t n = 0;
    bool recs = c->to5 && strcmp(d->name, EDB__KS_RECORDS) == 0;
    bool cat = c->to5 && strcmp(d->name, EDB__KS_CATALOG) == 0;
    bool idx = c->to5 && strcmp(d->name, EDB__KS_INDEX) == 0;
    static const uint8_t chunks[EDB__KS_PREFIX] = { 0 };   /* long values' range: no records */
    while ((rc = mdb_cursor_get(sc, &k, &v, MDB_NEXT)) == 0) {
        if (recs && !(k.mv_size >= EDB__KS_PREFIX && memcmp(k.mv_data, chunks, EDB__KS_PREFIX) == 0)) {
            /* format 5's records: version 3 (record.c) */
            EDB_ERR(edb__rec_narrow(&c->conv, v.mv_data, v.mv_size));
            v.mv_data = c->conv.p;
            v.mv_size = c->conv.len;
        } else if (cat && k.mv_size == 7 && memcmp(k.mv_data, "\0format", 7) == 0) {
            if (v.mv_size < 12 || ((uint8_t *)v.mv_data)[4] != 4)
                EDB_ERR(edb__err(EDB_VERSION, "upgrade: '%s' is not a format 4 database", c->sw.path));
            EDB_ERR(edb__buf_set(&c->conv, v.mv_data, v.mv_size));
            c->conv.p[4] = (uint8_t)EDB__FORMAT_VERSION;
            v.mv_data = c->conv.p;
        } else if (cat && k.mv_size >= 1 && ((const uint8_t *)k.mv_data)[0] == 't') {
            EDB_ERR(keep_schema(c, &v));
        } else if (idx) {
            v.mv_size = entry_value_len(c, &k, &v);
        }
        if (recs || idx)
            EDB_ERR(short_prefix(c, &k));
        rc = mdb_cursor_put(dc, &k, &v, app);
        if (rc != 0)
            EDB_ERR(edb__mdb_err_env(rc, c->dst, what));
        n++;
        if (++*puts % PUTS_PER_TXN == 0) {
            mdb_cursor_close(dc);
            dc = NULL;
            EDB_ERR(next_txn(c, true));
            EDB_ERR(edb__mdb_err(mdb_cursor_open(c->dtxn, ddbi, &dc), what));
        }
    }
    if (!edb__mdb_is_notfound(rc))
        EDB_ERR(edb__mdb_err(rc, what));
    if (n != d->entries)
        EDB_ERR(edb__err(EDB_CORRUPT, "%s: %zu entries read, the source counts %zu", what, n, d->entries));
err:
    if (dc != NULL)
        mdb_cursor_close(dc);
    if (sc != NULL)
        mdb_cursor_close(sc);
    return ret;
}

/* The main database's plain keys (ordinary puts: the named databases'
 * records go there too, at their commits). */
static int
copy_plain(compact *c)
{
    int ret = 0, rc;
    MDB_dbi smain, dmain;
    MDB_cursor *sc = NULL;
    EDB_ERR(edb__mdb_err(mdb_dbi_open(c->rtxn, NULL, 0, &smain), "compact: main database"));
    EDB_ERR(edb__mdb_err(mdb_dbi_open(c->dtxn, NULL, 0, &dmain), "compact: main database"));
    EDB_ERR(edb__mdb_err(mdb_cursor_open(c->rtxn, smain, &sc), "compact: main database"));
    MDB_val k, v;
    while ((rc = mdb_cursor_get(sc, &k, &v, MDB_NEXT)) == 0) {
        bool named = false;
        for (size_t i = 0; i < c->ndbs && !named; i++)
            named = strlen(c->dbs[i].name) == k.mv_size && memcmp(c->dbs[i].name, k.mv_data, k.mv_size) == 0;
        if (!named && (rc = mdb_put(c->dtxn, dmain, &k, &v, 0)) != 0)
            EDB_ERR(edb__mdb_err_env(rc, c->dst, "compact: main database"));
    }
    if (!edb__mdb_is_notfound(rc))
        EDB_ERR(edb__mdb_err(rc, "compact: main database"));
err:
    if (sc != NULL)
        mdb_cursor_close(sc);
    return ret;
}

/* Every database's entry count in the new database against the source's. */
static int
verify_counts(compact *c)
{
    int ret = 0;
    MDB_txn *t = NULL;
    EDB_ERR(edb__mdb_err(mdb_txn_begin(c->dst, NULL, MDB_RDONLY, &t), "compact: read the new database"));
    MDB_dbi main;
    MDB_stat ms;
    EDB_ERR(edb__mdb_err(mdb_dbi_open(t, NULL, 0, &main), "compact: main database"));
    EDB_ERR(edb__mdb_err(mdb_stat(t, main, &ms), "compact: main database"));
    if (ms.ms_entries != c->ndbs + c->nplain)
        EDB_ERR(edb__err(EDB_CORRUPT, "compact: the new main database holds %zu entries, the source %zu",
                         (size_t)ms.ms_entries, c->ndbs + c->nplain));
    for (size_t i = 0; i < c->ndbs; i++) {
        MDB_dbi dbi;
        EDB_ERR(edb__mdb_err(mdb_dbi_open(t, c->dbs[i].name, 0, &dbi), "compact: the new database"));
        EDB_ERR(edb__mdb_err(mdb_stat(t, dbi, &ms), "compact: the new database"));
        if (ms.ms_entries != c->dbs[i].entries)
            EDB_ERR(edb__err(EDB_CORRUPT, "compact: database '%s': %zu entries copied of %zu",
                             c->dbs[i].name, (size_t)ms.ms_entries, c->dbs[i].entries));
    }
err:
    if (t != NULL)
        mdb_txn_abort(t);
    return ret;
}

/* Pages in use (the last page number + 1) and the size of data.mdb in @dir. */
static int
env_pages(MDB_env *env, const char *dir, uint64_t *used, uint64_t *bytes)
{
    MDB_envinfo info;
    EDB_RET(edb__mdb_err(mdb_env_info(env, &info), "compact: info"));
    *used = (uint64_t)info.me_last_pgno + 1;
    char p[PATH_MAX + 16];
    struct stat sb;
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    if (stat(p, &sb) != 0)
        return edb__err(EDB_IO, "compact: '%s': %s", p, strerror(errno));
    *bytes = (uint64_t)sb.st_size;
    return 0;
}

static int
build(compact *c, uint64_t map_size)
{
    int ret = 0, rc;
    struct stat sb;
    mode_t mode = 0700;
    if (stat(c->sw.path, &sb) == 0)
        mode = sb.st_mode & 0777;
    if (mkdir(c->sw.tmp, mode) != 0)
        return edb__err(errno == EEXIST ? EDB_EXISTS : EDB_IO, "compact: create '%s': %s", c->sw.tmp,
                        strerror(errno));
    c->created = true;
    if ((rc = mdb_env_create(&c->dst)) != 0) {
        c->dst = NULL;
        return edb__mdb_err(rc, "compact: mdb_env_create");
    }
    unsigned maxdbs = (unsigned)(c->ndbs + 2);
    if ((rc = mdb_env_set_mapsize(c->dst, (size_t)map_size)) != 0 ||
        (rc = mdb_env_set_maxdbs(c->dst, maxdbs)) != 0 ||
        (rc = mdb_env_open(c->dst, c->sw.tmp, MDB_NOTLS | MDB_NOSYNC, 0600)) != 0)
        return edb__mdb_err(rc, "compact: create the new database");
    size_t puts = 0;
    EDB_RET(next_txn(c, true));
    for (size_t i = 0; i < c->ndbs; i++)
        EDB_RET(copy_db(c, &c->dbs[i], &puts));
    if (c->nplain > 0)
        EDB_RET(copy_plain(c));
    EDB_RET(next_txn(c, false));
    if ((rc = mdb_env_sync(c->dst, 1)) != 0)
        return edb__mdb_err_env(rc, c->dst, "compact: sync the new database");
    EDB_RET(verify_counts(c));
    if (c->st != NULL)
        EDB_RET(env_pages(c->dst, c->sw.tmp, &c->st->pages_after, &c->st->bytes_after));
    mdb_env_close(c->dst);
    c->dst = NULL;

    /* the whole engine's check of the new database */
    edb_env *env = NULL;
    edb_env_opts o = { .map_size = map_size };
    EDB_RET(edb_env_open(&env, c->sw.tmp, &o));
    uint64_t problems = 0;
    ret = edb_env_check(&problems, env, NULL, NULL, NULL);
    edb_env_close(env);
    EDB_RET(ret);
    if (problems != 0)
        return edb__err(EDB_CORRUPT, "compact: the new database has %llu problems (edb check)",
                        (unsigned long long)problems);
    return 0;
}

static int
pack(edb_pack_stat *out, const char *path, bool to5)
{
    int ret = 0, rc;
    compact c;
    memset(&c, 0, sizeof c);
    c.sw.lockfd = -1;
    c.to5 = to5;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    edb_pack_stat st = { 0 };
    struct stat sb;
    c.st = &st;
    EDB_ERR(edb__swap_init(&c.sw, path, to5 ? ".upgrade" : ".compact", who));
    char data[PATH_MAX + 16];
    snprintf(data, sizeof data, "%s/data.mdb", c.sw.path);
    if (stat(data, &sb) != 0)
        EDB_ERR(edb__err(errno == ENOENT || errno == ENOTDIR ? EDB_NOTFOUND : EDB_IO,
                         "%s: '%s': %s", who, data, strerror(errno)));
    if (!S_ISREG(sb.st_mode))
        EDB_ERR(edb__err(EDB_INVAL, "%s: '%s' is not a regular file", who, data));
    /* another process with the database open would keep using the old
     * files after the exchange: refused before the source is opened */
    EDB_ERR(edb__swap_check_self(&c.sw, who));
    EDB_ERR(edb__swap_check_open(&c.sw, who));
    if ((rc = mdb_env_create(&c.src)) != 0) {
        c.src = NULL;
        EDB_ERR(edb__mdb_err(rc, "compact: mdb_env_create"));
    }
    if ((rc = mdb_env_set_maxdbs(c.src, SRC_MAX_DBS)) != 0 ||
        (rc = mdb_env_open(c.src, c.sw.path, MDB_NOTLS, 0600)) != 0) {
        char what[PATH_MAX + 32];
        snprintf(what, sizeof what, "compact: open '%s'", c.sw.path);
        if (edb__mdb_is_invalid(rc))
            EDB_ERR(edb__meta_explain_invalid(c.sw.path, what));
        EDB_ERR(edb__mdb_err(rc, what));
    }
    EDB_ERR(edb__meta_check_length(c.src, c.sw.path));
    EDB_ERR(edb__swap_check_open(&c.sw, who));   /* lock.mdb may be new */
    EDB_ERR(edb__mdb_err(mdb_txn_begin(c.src, NULL, MDB_RDONLY, &c.rtxn), "compact: read"));
    MDB_dbi cat;
    rc = mdb_dbi_open(c.rtxn, EDB__KS_CATALOG, 0, &cat);
    if (rc != 0) {
        if (edb__mdb_is_notfound(rc))
            EDB_ERR(edb__err(EDB_VERSION, "%s: '%s' is not an edb database of format 4 (an older one: "
                             "dbtool upgrade)", who, c.sw.path));
        EDB_ERR(edb__mdb_err(rc, "compact: catalog"));
    }
    MDB_envinfo info;
    EDB_ERR(edb__mdb_err(mdb_env_info(c.src, &info), "compact: source"));
    uint64_t map_size = info.me_mapsize > (1u << 20) ? (uint64_t)info.me_mapsize : 1u << 20;
    EDB_ERR(env_pages(c.src, c.sw.path, &st.pages_before, &st.bytes_before));
    size_t snap = mdb_txn_id(c.rtxn);
    EDB_ERR(list_dbs(&c));

    /* a partial compaction left behind is removed first */
    if (lstat(c.sw.tmp, &sb) == 0)
        EDB_ERR(edb__swap_remove_dir(c.sw.tmp, who));
    EDB_ERR(build(&c, map_size));
    mdb_txn_abort(c.rtxn);
    c.rtxn = NULL;

    /* hold the source's write lock: no commit between this look and the
     * exchange (one that came before it is seen in the transaction id) */
    EDB_ERR(edb__mdb_err(mdb_txn_begin(c.src, NULL, 0, &c.wtxn), "compact: lock the source"));
    if (mdb_txn_id(c.wtxn) != snap + 1)
        EDB_ERR(edb__err(EDB_BUSY, "%s: '%s' was written during the compaction; run it again", who,
                         c.sw.path));
    EDB_ERR(edb__swap_check_open(&c.sw, who));
    EDB_ERR(edb__swap_exchange(&c.sw, who));
    c.created = false;                /* tmp holds the old database now */
    mdb_txn_abort(c.wtxn);
    c.wtxn = NULL;
    mdb_env_close(c.src);
    c.src = NULL;
    edb__swap_done(&c.sw);
    /* the old database, now at tmp: gone once the new one is in place */
    EDB_ERR(edb__swap_remove_dir(c.sw.tmp, who));
    if (out != NULL)
        *out = st;
err:
    if (c.dtxn != NULL)
        mdb_txn_abort(c.dtxn);
    if (c.dst != NULL)
        mdb_env_close(c.dst);
    if (ret < 0 && c.created) {
        /* nothing of a failed pack is kept (a full disk gets its room back);
         * the error stays the one that stopped it */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", edb_error_last_message());
        if (lstat(c.sw.tmp, &sb) == 0)
            edb__swap_remove_dir(c.sw.tmp, who);
        edb__err(ret, "%s", msg);
    }
    if (c.wtxn != NULL)
        mdb_txn_abort(c.wtxn);
    if (c.rtxn != NULL)
        mdb_txn_abort(c.rtxn);
    if (c.src != NULL)
        mdb_env_close(c.src);
    edb__swap_done(&c.sw);
    for (size_t i = 0; i < c.ndbs; i++)
        free(c.dbs[i].name);
    free(c.dbs);
    edb__buf_free(&c.conv);
    for (size_t i = 0; i < c.ntabs; i++)
        edb__table_free(c.tabs[i]);
    free(c.tabs);
    if (ret == 0)
        edb__err_clear();
    return ret;
}

int
edb_env_pack(edb_pack_stat *out, const char *path)
{
    return pack(out, path, false);
}

int
edb__env_pack5(const char *path)
{
    return pack(NULL, path, true);
}

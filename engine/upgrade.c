/*
 * upgrade.c: converting a database of format 1, 2 or 3 (one LMDB named
 * database per table and index, from a pool) into format 5 (the keyspace,
 * catalog.h; version 3 records, record.c).  A format 4 database (the
 * keyspace with version 1/2 records) is converted by edb__env_pack5
 * (compact.c): edb_env_pack's ordered copy, every record narrowed to
 * version 3 (no schema needed), the format record set to 5, checked and
 * swapped in the same way.
 *
 * The old database is read with LMDB directly, read-only, and never written:
 *   "edb:catalog"        "\0format" -> u32 magic, u32 format (1..3), u32 max_tables
 *                        "t" name   -> schema blob, version 1 or 2 (below)
 *                        "c" u32be slot u32be colid -> u64 counter (host order)
 *   "edb:rSSSS"          records of the table in slot SSSS (record.c's bytes,
 *                        unchanged by format 4)
 * Old schema blob (little-endian): u8 version (1, 2), u8 0, u8 n, name, u32
 * slot, u32 gen, u64 identity, u32 C, u32 I; C columns: u8 n, name, u8 type,
 * u8 flags, u32 max_size, u8 has_default, u32 size, default bytes, (v2) u64
 * id; I indexes: u8 n, name, u8 flags, u8 index slot, u8 S, S times (u32
 * colid, u8 descending), (v2) u64 id.
 *
 * The new database is built with the public API in "<path>.upgrade" beside
 * the old one, with the old one's map size: every table created with its
 * columns and indexes, every record inserted from its column values (so
 * index keys are written in the current encoding, also for old descending
 * segments), AUTOINC and implicit-key counters carried over.  Then it is
 * checked (edb_env_check, and every table's row count against the old record
 * database's), closed (its commits were synchronous), and swapped with the
 * old directory in one renameat2(RENAME_EXCHANGE), the parent directory
 * fsynced; the old files are removed last.  Until the exchange the old
 * directory is untouched, so an interrupted upgrade leaves it as it was (the
 * next run removes the partial "<path>.upgrade").
 *
 * Thread safety: no other thread or process may use the database while it
 * runs.  Another process that has it open is refused (EDB_BUSY, its pid
 * named: dbswap.h), before the old database is opened and again right
 * before the exchange, when a commit since the snapshot the new database
 * was built from is refused too; so is another environment of this process
 * on it (/proc/self/maps; doc/engine.md).
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "cursor.h"
#include "dbswap.h"
#include "error.h"
#include "record.h"
#include "session.h"

#define OLD_MAX_DBS (1024u * 17u + 2u)
#define ROWS_PER_TXN 5000

/* An old table, as much as the conversion needs. */
typedef struct old_table {
    char name[EDB__NAME_MAX + 1];
    uint32_t slot;
    uint32_t ncols, nidx;
    edb_column_def *cols;
    char (*colnames)[EDB__NAME_MAX + 1];
    edb_index_def *idx;
    char (*idxnames)[EDB__NAME_MAX + 1];
    char (*keys)[EDB_MAX_KEY_SEGMENTS * (EDB__NAME_MAX + 2) + 1];
} old_table;

static void
old_free(old_table *t)
{
    free(t->cols);
    free(t->colnames);
    free(t->idx);
    free(t->idxnames);
    free(t->keys);
    memset(t, 0, sizeof *t);
}

/* Decode an old blob; the column defaults point into @blob. */
static int
old_decode(old_table *t, const void *blob, size_t size)
{
    memset(t, 0, sizeof *t);
    edb__rbuf b = { blob, size, 0, false };
    unsigned version = edb__rbuf_u8(&b);
    if (version != 1 && version != 2)
        return edb__err(EDB_CORRUPT, "upgrade: table schema version %u", version);
    edb__rbuf_u8(&b);
    edb__rbuf_name(&b, t->name);
    t->slot = edb__rbuf_u32(&b);
    edb__rbuf_u32(&b);            /* gen */
    edb__rbuf_u32(&b);            /* identity: the new database draws new ones */
    edb__rbuf_u32(&b);
    t->ncols = edb__rbuf_u32(&b);
    t->nidx = edb__rbuf_u32(&b);
    if (b.bad || t->ncols == 0 || t->ncols > EDB_MAX_COLUMNS || t->nidx > EDB_MAX_INDEXES || t->slot >= 1024)
        goto bad;
    t->cols = calloc(t->ncols, sizeof *t->cols);
    t->colnames = calloc(t->ncols, sizeof *t->colnames);
    t->idx = calloc(t->nidx + 1, sizeof *t->idx);
    t->idxnames = calloc(t->nidx + 1, sizeof *t->idxnames);
    t->keys = calloc(t->nidx + 1, sizeof *t->keys);
    if (!t->cols || !t->colnames || !t->idx || !t->idxnames || !t->keys) {
        old_free(t);
        return edb__err(EDB_NOMEM, "upgrade");
    }
    for (uint32_t i = 0; i < t->ncols; i++) {
        edb_column_def *c = &t->cols[i];
        edb__rbuf_name(&b, t->colnames[i]);
        c->name = t->colnames[i];
        c->type = (edb_coltype)edb__rbuf_u8(&b);
        c->flags = edb__rbuf_u8(&b);
        c->max_size = edb__rbuf_u32(&b);
        bool has_default = edb__rbuf_u8(&b) != 0;
        uint32_t dsize = edb__rbuf_u32(&b);
        const uint8_t *d = edb__rbuf_take(&b, dsize);
        if (has_default) {
            c->default_value = d;
            c->default_size = dsize;
        }
        if (version == 2)
            edb__rbuf_take(&b, 8);
        if (b.bad)
            goto bad;
    }
    for (uint32_t i = 0; i < t->nidx; i++) {
        edb_index_def *x = &t->idx[i];
        edb__rbuf_name(&b, t->idxnames[i]);
        x->name = t->idxnames[i];
        x->flags = edb__rbuf_u8(&b);
        edb__rbuf_u8(&b);         /* index slot */
        unsigned nseg = edb__rbuf_u8(&b);
        if (b.bad || nseg == 0 || nseg > EDB_MAX_KEY_SEGMENTS)
            goto bad;
        size_t o = 0;
        for (unsigned j = 0; j < nseg; j++) {
            uint32_t col = edb__rbuf_u32(&b);
            bool desc = edb__rbuf_u8(&b) != 0;
            if (b.bad || col == 0 || col > t->ncols)
                goto bad;
            o += (size_t)snprintf(t->keys[i] + o, sizeof t->keys[i] - o, "%c%s", desc ? '-' : '+',
                                  t->colnames[col - 1]) + 1;   /* keeps the NUL: "+a\0-b\0" */
        }
        x->key = t->keys[i];
        if (version == 2)
            edb__rbuf_take(&b, 8);
    }
    if (b.bad || b.off != b.len)
        goto bad;
    return 0;
bad:;
    char n[EDB__NAME_MAX + 1];
    snprintf(n, sizeof n, "%s", t->name[0] ? t->name : "?");
    old_free(t);
    return edb__err(EDB_CORRUPT, "upgrade: malformed schema of table '%s'", n);
}

/* Insert every record of old table @ot (database @rdbi of @otxn) into the new
 * env's table, ROWS_PER_TXN to a transaction; *rows: how many. */
static int
copy_rows(uint64_t *rows, edb_session *s, MDB_txn *otxn, MDB_dbi rdbi, const old_table *ot)
{
    int ret = 0;
    MDB_cursor *mc = NULL;
    edb_cursor *c = NULL;
    *rows = 0;
    EDB_ERR(edb__mdb_err(mdb_cursor_open(otxn, rdbi, &mc), "upgrade: old records"));
    EDB_ERR(edb_cursor_open(&c, s, ot->name));
    MDB_val k, d;
    int rc = mdb_cursor_get(mc, &k, &d, MDB_FIRST);
    while (rc == 0) {
        if (*rows % ROWS_PER_TXN == 0)
            EDB_ERR(edb_txn_begin(s, 0));
        EDB_ERR(edb_update_prepare(c, EDB_PREP_INSERT));
        const edb__table *t = c->t;            /* bound by the prepare */
        for (uint32_t pos = 1; pos <= t->ncols; pos++) {
            edb__colview v;
            EDB_ERR(edb__rec_view(&v, t, d.mv_data, d.mv_size, pos));
            bool multi = (t->cols[pos - 1].flags & EDB_COL_MULTIVALUED) != 0;
            unsigned flags = (t->cols[pos - 1].flags & EDB_COL_AUTOINC) ? EDB_SET_AUTOINC_VALUE : 0;
            const uint8_t *data;
            size_t size;
            if (v.null) {
                /* NULL as stored, not the column's default (AUTOINC: assigned) */
                if (!flags)
                    EDB_ERR(edb_column_set(c, pos, NULL, 0, 0));
                continue;
            }
            for (uint32_t n = 1; edb__colview_value(&v, multi, n, &data, &size); n++)
                EDB_ERR(edb_column_set(c, pos, data, size, n > 1 ? EDB_SET_APPEND : flags));
        }
        EDB_ERR(edb_update(c));
        (*rows)++;
        if (*rows % ROWS_PER_TXN == 0)
            EDB_ERR(edb_txn_commit(s));
        rc = mdb_cursor_get(mc, &k, &d, MDB_NEXT);
    }
    if (!edb__mdb_is_notfound(rc))
        EDB_ERR(edb__mdb_err(rc, "upgrade: reading old records"));
    if (*rows % ROWS_PER_TXN != 0)
        EDB_ERR(edb_txn_commit(s));
err:
    if (ret < 0 && edb_txn_depth(s) > 0)
        edb_txn_rollback(s);
    edb_cursor_close(c);
    if (mc != NULL)
        mdb_cursor_close(mc);
    return ret;
}

/* Carry the old counters "c" slot colid of @ot over to the new table. */
static int
copy_counters(edb_session *s, MDB_txn *otxn, MDB_dbi cat, const old_table *ot)
{
    int ret = 0;
    MDB_cursor *mc = NULL;
    edb__table *t = NULL;
    EDB_ERR(edb_txn_begin(s, 0));
    MDB_txn *txn;
    EDB_ERR(edb__txn_enter(s, true, &txn));
    EDB_ERR(edb__table_load(&t, s->env, txn, ot->name));
    EDB_ERR(edb__mdb_err(mdb_cursor_open(otxn, cat, &mc), "upgrade: old counters"));
    uint8_t kb[5] = { 'c', (uint8_t)(ot->slot >> 24), (uint8_t)(ot->slot >> 16), (uint8_t)(ot->slot >> 8),
                      (uint8_t)ot->slot };
    MDB_val k = { sizeof kb, kb }, v;
    int rc = mdb_cursor_get(mc, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == 9 && memcmp(k.mv_data, kb, 5) == 0) {
        const uint8_t *p = k.mv_data;
        edb_colid col = (edb_colid)p[5] << 24 | (edb_colid)p[6] << 16 | (edb_colid)p[7] << 8 | p[8];
        uint64_t n, now;
        if (v.mv_size != 8 || col > t->ncols)
            EDB_ERR(edb__err(EDB_CORRUPT, "upgrade: counter of table '%s'", ot->name));
        memcpy(&n, v.mv_data, 8);
        EDB_ERR(edb__counter_read(&now, s->env, txn, t->kid, col));
        if (n > now)
            EDB_ERR(edb__counter_set(s->env, txn, t->kid, col, n));
        rc = mdb_cursor_get(mc, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && !edb__mdb_is_notfound(rc))
        EDB_ERR(edb__mdb_err(rc, "upgrade: old counters"));
    EDB_ERR(edb_txn_commit(s));
err:
    if (ret < 0 && edb_txn_depth(s) > 0)
        edb_txn_rollback(s);
    if (mc != NULL)
        mdb_cursor_close(mc);
    edb__table_free(t);
    return ret;
}

/* The new database at @tmp from the old one at @path (read in @otxn). */
static int
build(const char *path, const char *tmp, MDB_txn *otxn, MDB_dbi cat, uint64_t map_size)
{
    int ret = 0;
    edb_env *env = NULL;
    edb_session *s = NULL;
    MDB_cursor *mc = NULL;
    old_table ot = { 0 };
    edb_env_opts o = { .map_size = map_size };    /* the old database's: it fits */
    EDB_ERR(edb_env_open(&env, tmp, &o));
    EDB_ERR(edb_session_begin(&s, env));
    EDB_ERR(edb__mdb_err(mdb_cursor_open(otxn, cat, &mc), "upgrade: old catalog"));
    MDB_val k = { 1, "t" }, v;
    int rc = mdb_cursor_get(mc, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size > 0 && ((const char *)k.mv_data)[0] == 't') {
        EDB_ERR(old_decode(&ot, v.mv_data, v.mv_size));
        edb_table_def def = { ot.name, ot.cols, ot.ncols, ot.idx, ot.nidx };
        EDB_ERR(edb_table_create(s, &def));
        char dbname[32];
        snprintf(dbname, sizeof dbname, "edb:r%04u", (unsigned)ot.slot);
        MDB_dbi rdbi;
        MDB_stat st;
        rc = mdb_dbi_open(otxn, dbname, 0, &rdbi);
        if (edb__mdb_is_notfound(rc))
            EDB_ERR(edb__err(EDB_CORRUPT, "upgrade: '%s': table '%s' has no database %s", path,
                             ot.name, dbname));
        EDB_ERR(edb__mdb_err(rc, "upgrade: old records"));
        EDB_ERR(edb__mdb_err(mdb_stat(otxn, rdbi, &st), "upgrade: old records"));
        uint64_t rows;
        EDB_ERR(copy_rows(&rows, s, otxn, rdbi, &ot));
        EDB_ERR(copy_counters(s, otxn, cat, &ot));
        edb_tree_stat ns;
        EDB_ERR(edb_table_stat(&ns, s, ot.name, NULL));
        if (ns.entries != st.ms_entries || rows != st.ms_entries)
            EDB_ERR(edb__err(EDB_CORRUPT, "upgrade: table '%s': %llu rows copied of %llu",
                             ot.name, (unsigned long long)ns.entries, (unsigned long long)st.ms_entries));
        old_free(&ot);
        rc = mdb_cursor_get(mc, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && !edb__mdb_is_notfound(rc))
        EDB_ERR(edb__mdb_err(rc, "upgrade: old catalog"));
    edb_session_end(s);
    s = NULL;
    uint64_t problems = 0;
    EDB_ERR(edb_env_check(&problems, env, NULL, NULL, NULL));
    if (problems != 0)
        EDB_ERR(edb__err(EDB_CORRUPT, "upgrade: the new database has %llu problems (edb check)",
                         (unsigned long long)problems));
err:
    old_free(&ot);
    if (mc != NULL)
        mdb_cursor_close(mc);
    edb_session_end(s);
    edb_env_close(env);
    return ret;
}

int
edb_env_upgrade(unsigned *out, const char *path)
{
    static const char who[] = "edb_env_upgrade";
    if (out == NULL)
        return edb__err(EDB_INVAL, "edb_env_upgrade: out is NULL");
    *out = 0;
    edb__swap sw;
    EDB_RET(edb__swap_init(&sw, path, ".upgrade", who));
    struct stat sb;
    char data[PATH_MAX + 16];
    snprintf(data, sizeof data, "%s/data.mdb", sw.path);
    if (stat(data, &sb) != 0)
        return edb__err(errno == ENOENT ? EDB_NOTFOUND : EDB_IO, "edb_env_upgrade: '%s': %s", data,
                        strerror(errno));

    int ret = 0, rc;
    MDB_env *old = NULL;
    MDB_txn *otxn = NULL;
    /* another process with the database open would keep using the old
     * files after the exchange: refused (dbswap.h) */
    EDB_ERR(edb__swap_check_self(&sw, who));
    EDB_ERR(edb__swap_check_open(&sw, who));
    if ((rc = mdb_env_create(&old)) != 0) {
        old = NULL;
        EDB_ERR(edb__mdb_err(rc, "upgrade: mdb_env_create"));
    }
    if ((rc = mdb_env_set_maxdbs(old, OLD_MAX_DBS)) != 0 ||
        (rc = mdb_env_open(old, sw.path, MDB_RDONLY | MDB_NOTLS, 0600)) != 0)
        EDB_ERR(edb__mdb_err(rc, "upgrade: open the old database"));
    EDB_ERR(edb__swap_check_open(&sw, who));
    EDB_ERR(edb__mdb_err(mdb_txn_begin(old, NULL, MDB_RDONLY, &otxn), "upgrade: read"));
    MDB_dbi cat;
    rc = mdb_dbi_open(otxn, EDB__KS_CATALOG, 0, &cat);
    if (rc == 0) {
        /* the keyspace: format 4 is rewritten as 5 (compact.c), 5 needs
         * nothing (edb_env_open checks the rest) but what an upgrade killed
         * after its exchange left: the old files in "<path>.upgrade" */
        MDB_val fk4 = { 7, (void *)"\0format" }, fv4;
        unsigned v4 = 0;
        if (mdb_get(otxn, cat, &fk4, &fv4) == 0 && fv4.mv_size >= 12)
            v4 = ((const uint8_t *)fv4.mv_data)[4];
        if (v4 == 4) {
            mdb_txn_abort(otxn);
            otxn = NULL;
            mdb_env_close(old);
            old = NULL;
            edb__swap_done(&sw);
            EDB_ERR(edb__env_pack5(path));
            *out = 4;
            goto err;
        }
        *out = EDB__FORMAT_VERSION;
        if (lstat(sw.tmp, &sb) == 0)
            EDB_ERR(edb__swap_remove_dir(sw.tmp, who));
        goto err;
    }
    rc = mdb_dbi_open(otxn, "edb:catalog", 0, &cat);
    if (edb__mdb_is_notfound(rc))
        EDB_ERR(edb__err(EDB_VERSION, "upgrade: '%s' is not an edb database", path));
    EDB_ERR(edb__mdb_err(rc, "upgrade: old catalog"));
    MDB_val fk = { 7, (void *)"\0format" }, fv;
    rc = mdb_get(otxn, cat, &fk, &fv);
    const uint8_t *f = fv.mv_data;
    if (rc != 0 || fv.mv_size < 12 || !(f[0] == 0x31 && f[1] == 0x42 && f[2] == 0x44 && f[3] == 0x45))
        EDB_ERR(edb__err(EDB_VERSION, "upgrade: '%s': no edb format record", path));
    unsigned version = (unsigned)f[4] | (unsigned)f[5] << 8 | (unsigned)f[6] << 16 | (unsigned)f[7] << 24;
    if (version < 1 || version >= EDB__FORMAT_VERSION)
        EDB_ERR(edb__err(EDB_VERSION, "upgrade: '%s': format %u", path, version));

    /* a partial upgrade left behind is removed first */
    if (lstat(sw.tmp, &sb) == 0)
        EDB_ERR(edb__swap_remove_dir(sw.tmp, who));
    MDB_envinfo info;
    EDB_ERR(edb__mdb_err(mdb_env_info(old, &info), "upgrade: old database"));
    uint64_t map_size = info.me_mapsize > (1u << 20) ? (uint64_t)info.me_mapsize : 1u << 20;
    size_t snap = mdb_txn_id(otxn);
    EDB_ERR(build(sw.path, sw.tmp, otxn, cat, map_size));
    mdb_txn_abort(otxn);
    otxn = NULL;
    /* last look before the exchange: still nobody else, and no commit (by
     * an older library) since the snapshot the new database was built from */
    EDB_ERR(edb__swap_check_open(&sw, who));
    EDB_ERR(edb__mdb_err(mdb_env_info(old, &info), "upgrade: old database"));
    if (info.me_last_txnid != snap)
        EDB_ERR(edb__err(EDB_BUSY, "upgrade: '%s' was written during the upgrade; run it again",
                         sw.path));
    EDB_ERR(edb__swap_exchange(&sw, who));
    *out = version;
    mdb_env_close(old);
    old = NULL;
    edb__swap_done(&sw);
    /* the old database, now at tmp: gone once the new one is in place */
    EDB_ERR(edb__swap_remove_dir(sw.tmp, who));
err:
    if (otxn != NULL)
        mdb_txn_abort(otxn);
    if (old != NULL)
        mdb_env_close(old);
    edb__swap_done(&sw);
    if (ret == 0)
        edb__err_clear();
    return ret;
}

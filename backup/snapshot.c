/*
 * snapshot.c: capture of a consistent LMDB snapshot for backup without ever
 * blocking a writer (DESIGN.md "Hot backup").
 *
 * How the meta is captured.  A read txn sees the tree of txn T = mdb_txn_id().
 * LMDB wrote T's meta into page T & 1, and the next commit but one (T + 2)
 * overwrites it, whether or not a reader holds T.  So: begin the read txn,
 * pread both meta pages from data.mdb, take the one whose txnid is T; if
 * neither is (two commits raced in), reset and renew the txn and try again.
 * A meta read while a writer rewrites it could be torn, so the chosen meta is
 * also checked against the txn's own view of both trees (mdb_stat of the
 * freelist and main DB must equal the meta's two MDB_db records).
 *
 * The freelist: a cursor on FREE_DBI (dbi 0) in the same read txn lists every
 * page free in snapshot T (values are IDLs: count, then page numbers).  Those
 * pages are unreachable from T's roots and are skipped by the copier.
 *
 * Invariants: no write txn, no writer lock, no lock of ours held across any
 * LMDB call or I/O; on every failure path the txn is aborted and the file closed.
 *
 * Thread safety: edb__snap_take() from any thread; a snapshot is then
 * read-only, shared by reference (snapshot.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backup.h"
#include "error.h"
#include "snapshot.h"
#include "sys.h"

#define SNAP_ATTEMPTS 1000          /* renewals before giving up (each costs microseconds) */

uint64_t
edb__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
edb__now_real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Does the meta's MDB_db record (lmdb_layout.h) say what mdb_stat() said? */
static bool
db_matches(const uint8_t *db, const MDB_stat *st)
{
    unsigned depth = (unsigned)db[EDB__DB_OFF_DEPTH] | (unsigned)db[EDB__DB_OFF_DEPTH + 1] << 8;
    return depth == st->ms_depth &&
           edb__le64(db + EDB__DB_OFF_BRANCH) == st->ms_branch_pages &&
           edb__le64(db + EDB__DB_OFF_LEAF) == st->ms_leaf_pages &&
           edb__le64(db + EDB__DB_OFF_OVERFLOW) == st->ms_overflow_pages &&
           edb__le64(db + EDB__DB_OFF_ENTRIES) == st->ms_entries;
}

/* Read meta page pgno's first 256 bytes. */
static int
read_meta(uint8_t out[EDB__ARCH_META_SIZE], int fd, uint32_t psize, unsigned pgno)
{
    size_t got;
    if (edb__sys_pread_full(fd, out, EDB__ARCH_META_SIZE, (off_t)pgno * psize, &got) != 0)
        return edb__sys_err(errno, "backup snapshot: reading meta page of data.mdb");
    if (got != EDB__ARCH_META_SIZE)
        return edb__err(EDB_CORRUPT, "backup snapshot: data.mdb ends inside meta page %u", pgno);
    return 0;
}

/* One attempt: 1 = the meta of txn id was captured into s->meta, 0 = raced, <0 error. */
static int
capture_meta(edb__snap *s)
{
    uint8_t m[2][EDB__ARCH_META_SIZE];
    uint64_t id = (uint64_t)mdb_txn_id(s->txn);
    for (unsigned i = 0; i < 2; i++) {
        EDB_RET(read_meta(m[i], s->fd, s->page_size, i));
        if (edb__le32(m[i] + EDB__META_OFF_MAGIC) != EDB__META_MAGIC)
            return edb__err(EDB_CORRUPT, "backup snapshot: meta page %u of data.mdb has no LMDB magic", i);
    }
    const uint8_t *pick = NULL;
    for (unsigned i = 0; i < 2; i++)
        if (edb__le64(m[i] + EDB__META_OFF_TXNID) == id)
            pick = m[i];
    if (pick == NULL)
        return 0;                           /* both slots rewritten since the txn began */

    MDB_stat fs, ms;
    EDB_RET(edb__mdb_err(mdb_stat(s->txn, 0, &fs), "backup snapshot: freelist stat"));
    EDB_RET(edb__mdb_err(mdb_stat(s->txn, 1, &ms), "backup snapshot: main DB stat"));
    if (!db_matches(pick + EDB__META_OFF_FREEDB, &fs) || !db_matches(pick + EDB__META_OFF_MAINDB, &ms))
        return 0;                           /* torn read of a meta being rewritten */
    uint64_t last_pg = edb__le64(pick + EDB__META_OFF_LASTPG);
    if (last_pg < 1 || last_pg >= (uint64_t)INT64_MAX / s->page_size)
        return edb__err(EDB_CORRUPT, "backup snapshot: meta of txn %llu has last page %llu",
                        (unsigned long long)id, (unsigned long long)last_pg);
    memcpy(s->meta, pick, sizeof s->meta);
    s->txnid = id;
    s->npages = last_pg + 1;
    return 1;
}

/* Mark every page on the snapshot's freelist. */
static int
collect_free(edb__snap *s)
{
    size_t words = (size_t)((s->npages + 63) / 64);
    s->free_bits = edb__sys_calloc(words, sizeof *s->free_bits);
    if (s->free_bits == NULL)
        return edb__err(EDB_NOMEM, "backup snapshot: free-page set of %llu pages",
                        (unsigned long long)s->npages);
    MDB_cursor *cur = NULL;
    int rc = edb__mdb_err(mdb_cursor_open(s->txn, 0, &cur), "backup snapshot: freelist cursor");
    if (rc != 0)
        return rc;
    MDB_val k, v;
    for (;;) {
        rc = edb__mdb_err(mdb_cursor_get(cur, &k, &v, MDB_NEXT), "backup snapshot: reading the freelist");
        if (rc == EDB_NOTFOUND) {
            edb__err_clear();
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        /* An IDL of pgno_t (size_t): count, then the pages; copy out, the value may be unaligned. */
        size_t cnt;
        if (v.mv_size < sizeof cnt) {
            rc = edb__err(EDB_CORRUPT, "backup snapshot: freelist record of %zu bytes", v.mv_size);
            break;
        }
        memcpy(&cnt, v.mv_data, sizeof cnt);
        if (cnt > v.mv_size / sizeof cnt - 1) {
            rc = edb__err(EDB_CORRUPT, "backup snapshot: freelist record claims %zu pages in %zu bytes",
                          cnt, v.mv_size);
            break;
        }
        const uint8_t *p = (const uint8_t *)v.mv_data + sizeof cnt;
        for (size_t i = 0; i < cnt; i++) {
            size_t pg;
            memcpy(&pg, p + i * sizeof pg, sizeof pg);
            if (pg < 2 || pg >= s->npages) {
                rc = edb__err(EDB_CORRUPT, "backup snapshot: free page %zu outside 2..%llu",
                              pg, (unsigned long long)(s->npages - 1));
                break;
            }
            uint64_t bit = (uint64_t)1 << (pg & 63);
            if (!(s->free_bits[pg >> 6] & bit)) {
                s->free_bits[pg >> 6] |= bit;
                s->nfree++;
            }
        }
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc;
}

static void
snap_free(edb__snap *s)
{
    if (s->txn != NULL)
        mdb_txn_abort(s->txn);          /* MDB_NOTLS: any thread may end a read txn */
    if (s->fd >= 0)
        edb__sys_close(s->fd);
    free(s->free_bits);
    free(s->plan.base_table);
    edb__obj_free(EDB__OBJ_SNAP, s);
}

void
edb__snap_put(edb__snap *s)
{
    if (s != NULL && edb__ref_put(&s->ref))
        snap_free(s);
}

void
edb__snap_pin_account(edb__snap *s, uint64_t ns)
{
    uint64_t us = ns / 1000u, cur = atomic_load(&s->pin_max_us);
    while (us > cur && !atomic_compare_exchange_weak(&s->pin_max_us, &cur, us)) {
    }
}

void
edb__snap_unpin(edb__snap *s)
{
    if (s->txn == NULL)
        return;
    mdb_txn_abort(s->txn);
    s->txn = NULL;
    edb__snap_pin_account(s, edb__now_ns() - s->pin_start_ns);
    atomic_store(&s->pin_since_ns, 0);
}

uint64_t
edb__snap_copy_pages(const edb__snap *s)
{
    return s->npages - 2 - (s->free_bits != NULL ? s->nfree : 0);
}

int
edb__snap_take(edb__snap **out, edb_env *env, bool keep_free)
{
    int ret = 0;
    char *file = NULL;
    *out = NULL;
    MDB_env *mdb = edb__env_mdb(env);
    if (mdb == NULL)
        return edb__err(EDB_INVAL, "backup snapshot: the environment is not open");

    unsigned eflags = 0;
    const char *dir = NULL;
    MDB_stat est;
    MDB_envinfo info;
    EDB_RET(edb__mdb_err(mdb_env_get_flags(mdb, &eflags), "backup snapshot: env flags"));
    if (!(eflags & MDB_NOTLS))
        return edb__err(EDB_INVAL, "backup snapshot: the LMDB env must be opened with MDB_NOTLS");
    EDB_RET(edb__mdb_err(mdb_env_get_path(mdb, &dir), "backup snapshot: env path"));
    EDB_RET(edb__mdb_err(mdb_env_stat(mdb, &est), "backup snapshot: env stat"));
    EDB_RET(edb__mdb_err(mdb_env_info(mdb, &info), "backup snapshot: env info"));
    if (est.ms_psize < EDB__ARCH_PAGE_MIN || est.ms_psize > EDB__ARCH_PAGE_MAX ||
        (est.ms_psize & (est.ms_psize - 1)) != 0)
        return edb__err(EDB_INVAL, "backup snapshot: page size %u not supported", est.ms_psize);

    edb__snap *s = edb__obj_alloc(EDB__OBJ_SNAP, sizeof *s);
    if (s == NULL)
        return edb__err(EDB_NOMEM, "backup snapshot");
    edb__ref_init(&s->ref, 1);
    s->fd = -1;
    s->mdb = mdb;
    s->env = env;
    s->page_size = est.ms_psize;
    s->max_pages = (uint64_t)info.me_mapsize / est.ms_psize;
    atomic_init(&s->pin_us, UINT64_MAX);
    atomic_init(&s->pin_max_us, 0);
    atomic_init(&s->pin_since_ns, 0);
    atomic_init(&s->lp_streams, 0);

    size_t flen = strlen(dir) + sizeof "/data.mdb";
    file = edb__sys_malloc(flen);
    if (file == NULL)
        EDB_ERR(edb__err(EDB_NOMEM, "backup snapshot: path"));
    if (eflags & MDB_NOSUBDIR)
        snprintf(file, flen, "%s", dir);
    else
        snprintf(file, flen, "%s/data.mdb", dir);
    s->fd = edb__sys_open(file, O_RDONLY, 0);
    if (s->fd < 0)
        EDB_ERR(edb__sys_err(errno, "backup snapshot: opening data.mdb"));

    s->pin_start_ns = edb__now_ns();
    EDB_ERR(edb__mdb_err(mdb_txn_begin(mdb, NULL, MDB_RDONLY, &s->txn), "backup snapshot: read txn"));
    for (int attempt = 0;; attempt++) {
        ret = capture_meta(s);
        if (ret < 0)
            goto err;
        if (ret == 1)
            break;
        if (attempt + 1 == SNAP_ATTEMPTS)
            EDB_ERR(edb__err(EDB_BUSY, "backup snapshot: writers rewrote the meta pages during %d attempts",
                             SNAP_ATTEMPTS));
        mdb_txn_reset(s->txn);
        s->pin_start_ns = edb__now_ns();
        ret = edb__mdb_err(mdb_txn_renew(s->txn), "backup snapshot: renewing the read txn");
        if (ret != 0) {
            mdb_txn_abort(s->txn);
            s->txn = NULL;
            goto err;
        }
    }
    ret = 0;
    atomic_store(&s->pin_since_ns, s->pin_start_ns);
    /* Another process may have grown the map: take the larger of both sizes. */
    uint64_t meta_map = edb__le64(s->meta + EDB__META_OFF_MAPSIZE) / s->page_size;
    if (meta_map > s->max_pages)
        s->max_pages = meta_map;
    if (s->npages > s->max_pages)
        s->max_pages = s->npages;
    if (!keep_free)
        EDB_ERR(collect_free(s));

    free(file);
    *out = s;
    return 0;
err:
    free(file);
    snap_free(s);
    return ret;
}

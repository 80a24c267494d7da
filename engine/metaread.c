/*
 * metaread.c: tell an unreadable meta page from a file that is not LMDB's
 * after mdb_env_open() said MDB_INVALID (see metaread.h).
 *
 * LMDB's own header read (mdb_env_read_header) preads PAGEHDRSZ +
 * sizeof(MDB_meta) bytes at offset 0 and at the page size; a failing pread
 * returns its errno (edb then reports EDB_IO), but a short one returns
 * MDB_INVALID, the code of a foreign file, which edb maps to EDB_VERSION.
 * So on MDB_INVALID the same bytes are read again here.  The layout used
 * (the offsets and flags are LMDB's layout, lmdb_layout.h): the magic, the data
 * format version and the page size (md_pad of the free list's MDB_db), up to
 * the end of what LMDB itself reads; and lock.mdb's magic.
 *
 * The length check (edb__meta_check_length) reads more of the meta page
 * (last_pg, txnid, the free list's root) and walks the free-list tree: branch
 * and leaf pages, their nodes, overflow runs holding large IDLs (pagecheck.c
 * walks the same layout in full).
 *
 * LMDB writes a transaction's pages before its meta page, so the file holds
 * every page a committed meta reaches; but it does not write a page that a
 * transaction allocated at the end and freed again before committing (a
 * "loose" page): such pages lie past the end of the file and are on the free
 * list.  Measured with liblmdb 0.9.24 (random puts and deletes, 3,000 txns,
 * three seeds): 6 commits left the file short of (last_pg + 1) * page size,
 * by 1 to 22 pages.  So a short file is refused only when a page past its end
 * is not free.
 *
 * Thread safety: reentrant.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "lmdb_layout.h"
#include "metaread.h"

#define LMDB_MAGIC     EDB__META_MAGIC
#define LMDB_DATA_VER  EDB__META_DATA_VERSION
#define META_READ      EDB__META_READ_END




/* pread until n bytes, end of file or an error; the count, or -1 with errno. */
static ssize_t
read_at(int fd, uint8_t *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int
explain_data(int fd, const char *what)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return edb__err(EDB_IO, "%s: data.mdb: %s", what, strerror(errno));
    uint8_t m[META_READ];
    uint32_t psize = 0;
    for (int k = 0; k < 2; k++) {
        off_t off = (off_t)k * psize;
        ssize_t n = read_at(fd, m, sizeof m, off);
        if (n < 0)
            return edb__err(EDB_IO, "%s: reading meta page %d of data.mdb: %s", what, k,
                            strerror(errno));
        if ((size_t)n < sizeof m) {
            if (st.st_size < off + (off_t)sizeof m)
                return edb__err(EDB_CORRUPT, "%s: data.mdb has %lld bytes, too short to hold "
                                "meta page %d", what, (long long)st.st_size, k);
            return edb__err(EDB_IO, "%s: reading meta page %d of data.mdb: short read (%zd of "
                            "%zu bytes) of a file of %lld bytes", what, k, n, sizeof m,
                            (long long)st.st_size);
        }
        if (edb__lmdb_rd32(m + EDB__META_OFF_MAGIC) != LMDB_MAGIC)
            return edb__err(EDB_VERSION, "%s: meta page %d of data.mdb has no LMDB magic: not "
                            "an LMDB environment", what, k);
        if (edb__lmdb_rd32(m + EDB__META_OFF_VERSION) != LMDB_DATA_VER)
            return edb__err(EDB_VERSION, "%s: meta page %d of data.mdb is in LMDB data format %u, "
                            "not %u", what, k, edb__lmdb_rd32(m + EDB__META_OFF_VERSION), LMDB_DATA_VER);
        if (k == 0) {
            psize = edb__lmdb_rd32(m + EDB__META_OFF_FREEDB + EDB__DB_OFF_PAD);
            if (psize < 512 || psize > (1u << 16) || (psize & (psize - 1)) != 0)
                return edb__err(EDB_CORRUPT, "%s: meta page 0 of data.mdb gives page size %u",
                                what, psize);
        }
    }
    return 0;
}

int
edb__meta_explain_invalid(const char *path, const char *what)
{
    char f[PATH_MAX];
    snprintf(f, sizeof f, "%s/data.mdb", path);
    int fd = open(f, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return edb__err(EDB_IO, "%s: opening data.mdb to read its meta pages: %s", what,
                        strerror(errno));
    int ret = explain_data(fd, what);
    close(fd);
    if (ret != 0)
        return ret;
    snprintf(f, sizeof f, "%s/lock.mdb", path);
    fd = open(f, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        uint8_t h[8];
        ssize_t n = read_at(fd, h, sizeof h, 0);
        close(fd);
        if (n == (ssize_t)sizeof h && edb__lmdb_rd32(h) != LMDB_MAGIC)
            return edb__err(EDB_VERSION, "%s: lock.mdb has no LMDB magic", what);
    }
    return edb__err(EDB_IO, "%s: LMDB could not read a meta page of data.mdb whole (a short "
                    "read); both read whole and valid now", what);
}

/* ---------------------------------------------------------------- length */

#define PAGEHDRSZ   EDB__PAGE_HDR
#define P_BRANCH    EDB__PAGE_F_BRANCH
#define P_LEAF      EDB__PAGE_F_LEAF
#define P_OVERFLOW  EDB__PAGE_F_OVERFLOW
#define F_BIGDATA   EDB__NODE_F_BIGDATA
#define MAX_DEPTH   40
#define MAX_GAP     (UINT64_C(1) << 27)     /* pages a bitmap may cover (16 MiB) */

typedef struct gapwalk {
    int fd;
    uint32_t psize;
    uint64_t first, last;       /* the pages past the file's end: first..last */
    uint8_t *bits;              /* one bit per page of the gap: seen free */
    uint64_t budget;            /* pages the walk may still read (a cycle ends) */
    const char *bad;            /* why the free list could not be read, or NULL */
    uint64_t bad_pg;
    int err;                    /* an I/O error (EDB_IO, set) */
} gapwalk;

/* Read page @pg whole into @buf; false (with g->bad or g->err set) when it lies
 * past the file's end or cannot be read. */
static bool
gap_read(gapwalk *g, uint64_t pg, uint8_t *buf, size_t n)
{
    if (g->budget == 0) {
        g->bad = "has more pages than the file";
        g->bad_pg = pg;
        return false;
    }
    g->budget--;
    if (pg < 2 || pg >= g->first || (uint64_t)n > (g->first - pg) * g->psize) {
        g->bad = "runs past the end of the file";
        g->bad_pg = pg;
        return false;
    }
    ssize_t r = read_at(g->fd, buf, n, (off_t)(pg * g->psize));
    if (r < 0) {
        g->err = edb__err(EDB_IO, "reading page %" PRIu64 " of data.mdb: %s", pg, strerror(errno));
        return false;
    }
    if ((size_t)r != n) {
        g->err = edb__err(EDB_IO, "reading page %" PRIu64 " of data.mdb: short read", pg);
        return false;
    }
    return true;
}

/* Mark the gap pages of one free record (an IDL). */
static bool
gap_idl(gapwalk *g, const uint8_t *data, size_t size, uint64_t pg)
{
    if (size < 8 || size % 8 != 0 || edb__lmdb_rd64(data) != size / 8 - 1) {
        g->bad = "holds a malformed free-list record";
        g->bad_pg = pg;
        return false;
    }
    for (size_t i = 1; i < size / 8; i++) {
        uint64_t p = edb__lmdb_rd64(data + 8 * i);
        if (p >= g->first && p <= g->last)
            g->bits[(p - g->first) / 8] |= (uint8_t)(1u << ((p - g->first) % 8));
    }
    return true;
}

/* Walk the free-list tree from page @pg, marking the free pages in the gap. */
static bool
gap_tree(gapwalk *g, uint64_t pg, int depth)
{
    if (depth > MAX_DEPTH) {
        g->bad = "is deeper than any LMDB tree";
        g->bad_pg = pg;
        return false;
    }
    uint8_t *page = malloc(g->psize);
    if (page == NULL) {
        g->err = edb__err(EDB_NOMEM, "reading the free list of data.mdb");
        return false;
    }
    bool ok = gap_read(g, pg, page, g->psize);
    unsigned flags = ok ? edb__lmdb_rd16(page + EDB__PAGE_OFF_FLAGS) : 0, lower = ok ? edb__lmdb_rd16(page + EDB__PAGE_OFF_LOWER) : 0;
    if (ok && (edb__lmdb_rd64(page) != pg || !(flags & (P_BRANCH | P_LEAF)) || lower < PAGEHDRSZ ||
               lower > g->psize || lower % 2 != 0)) {
        g->bad = "is not a tree page";
        g->bad_pg = pg;
        ok = false;
    }
    unsigned n = ok ? (lower - PAGEHDRSZ) / 2 : 0;
    for (unsigned i = 0; ok && i < n; i++) {
        unsigned at = edb__lmdb_rd16(page + PAGEHDRSZ + 2 * i);
        if (at < PAGEHDRSZ || at > g->psize - EDB__NODE_SIZE) {
            g->bad = "has a node outside the page";
            g->bad_pg = pg;
            ok = false;
            break;
        }
        const uint8_t *node = page + at;
        uint64_t lo = edb__lmdb_rd16(node + EDB__NODE_OFF_LO), hi = edb__lmdb_rd16(node + EDB__NODE_OFF_HI), nf = edb__lmdb_rd16(node + EDB__NODE_OFF_FLAGS);
        size_t ksize = edb__lmdb_rd16(node + EDB__NODE_OFF_KSIZE);
        if (flags & P_BRANCH) {
            ok = gap_tree(g, lo | hi << 16 | nf << 32, depth + 1);
            continue;
        }
        size_t dsize = (size_t)(lo | hi << 16);
        size_t avail = g->psize - at - EDB__NODE_SIZE;
        if (ksize > avail || ((nf & F_BIGDATA) ? 8 : dsize) > avail - ksize) {
            g->bad = "has a node running past the page";
            g->bad_pg = pg;
            ok = false;
            break;
        }
        const uint8_t *data = node + EDB__NODE_SIZE + ksize;
        if (!(nf & F_BIGDATA)) {
            ok = gap_idl(g, data, dsize, pg);
            continue;
        }
        /* a large record: an overflow run of whole pages, the value after its header */
        uint64_t opg = edb__lmdb_rd64(data);
        uint64_t npages = ((uint64_t)dsize + PAGEHDRSZ + g->psize - 1) / g->psize;
        if (opg >= g->first || npages > g->first - opg) {
            g->bad = "has an overflow record past the end of the file";
            g->bad_pg = opg;
            ok = false;
            break;
        }
        uint8_t *big = malloc((size_t)npages * g->psize);
        if (big == NULL) {
            g->err = edb__err(EDB_NOMEM, "reading the free list of data.mdb");
            ok = false;
            break;
        }
        ok = gap_read(g, opg, big, (size_t)npages * g->psize);
        if (ok && (!(edb__lmdb_rd16(big + EDB__PAGE_OFF_FLAGS) & P_OVERFLOW) || edb__lmdb_rd64(big) != opg || edb__lmdb_rd32(big + EDB__PAGE_OFF_OVPAGES) != npages)) {
            g->bad = "has a bad overflow page";
            g->bad_pg = opg;
            ok = false;
        }
        if (ok)
            ok = gap_idl(g, big + PAGEHDRSZ, dsize, opg);
        free(big);
    }
    free(page);
    return ok;
}

/* Read the meta page of the snapshot of @txn (the one whose txnid is the
 * txn's) into m; 1 when neither is (a commit raced in: renew and retry). */
static int
snapshot_meta(int fd, uint32_t psize, MDB_txn *txn, uint8_t *m, size_t n)
{
    uint64_t id = (uint64_t)mdb_txn_id(txn);
    for (int k = 0; k < 2; k++) {
        ssize_t r = read_at(fd, m, n, (off_t)k * psize);
        if (r < 0)
            return edb__err(EDB_IO, "reading meta page %d of data.mdb: %s", k, strerror(errno));
        if ((size_t)r != n)
            return edb__err(EDB_IO, "reading meta page %d of data.mdb: short read", k);
        if (edb__lmdb_rd32(m + EDB__META_OFF_MAGIC) == LMDB_MAGIC && edb__lmdb_rd64(m + EDB__META_OFF_TXNID) == id)
            return 0;
    }
    return 1;
}

int
edb__meta_check_length(MDB_env *mdb, const char *path)
{
    int fd, rc;
    MDB_stat est;
    MDB_txn *txn = NULL;
    uint8_t m[META_READ];
    if ((rc = mdb_env_get_fd(mdb, &fd)) != 0 || (rc = mdb_env_stat(mdb, &est)) != 0)
        return edb__mdb_err(rc, "open: data.mdb");
    uint32_t psize = est.ms_psize;
    /* A read txn pins the snapshot: its pages, the free list's included,
     * are not reused while it lives.  The file only grows meanwhile. */
    if ((rc = mdb_txn_begin(mdb, NULL, MDB_RDONLY, &txn)) != 0)
        return edb__mdb_err(rc, "open: read transaction");
    int ret = 1;
    for (int attempt = 0; attempt < 1000 && ret == 1; attempt++) {
        ret = snapshot_meta(fd, psize, txn, m, sizeof m);
        if (ret == 1) {
            mdb_txn_reset(txn);
            if ((rc = mdb_txn_renew(txn)) != 0) {
                ret = edb__mdb_err(rc, "open: read transaction");
                txn = NULL;
            }
        }
    }
    if (ret == 1)
        ret = edb__err(EDB_BUSY, "open '%s': writers kept overwriting the snapshot's meta page", path);
    struct stat st;
    if (ret == 0 && fstat(fd, &st) != 0)
        ret = edb__err(EDB_IO, "open '%s': stat data.mdb: %s", path, strerror(errno));
    if (ret != 0) {
        if (txn != NULL)
            mdb_txn_abort(txn);
        return ret;
    }
    uint64_t last = edb__lmdb_rd64(m + EDB__META_OFF_LASTPG), size = (uint64_t)st.st_size;
    uint64_t first = size / psize;              /* pages wholly in the file */
    if (last < 1 || last >= (UINT64_C(1) << 40)) {
        mdb_txn_abort(txn);
        return edb__err(EDB_CORRUPT, "open '%s': data.mdb: its meta page (txn %" PRIu64 ") gives an "
                        "impossible last page %" PRIu64, path, edb__lmdb_rd64(m + EDB__META_OFF_TXNID), last);
    }
    if (last < first) {
        mdb_txn_abort(txn);
        return 0;
    }
    /* Short: each page past the end must be on the snapshot's free list. */
    uint64_t need = (last + 1) * psize, gap = last - first + 1;
    gapwalk g = { .fd = fd, .psize = psize, .first = first, .last = last, .budget = first };
    uint64_t root = edb__lmdb_rd64(m + EDB__META_OFF_FREEDB + EDB__DB_OFF_ROOT);
    if (gap <= MAX_GAP && first >= 2 && root != UINT64_MAX) {
        g.bits = calloc((size_t)((gap + 7) / 8), 1);
        if (g.bits == NULL) {
            mdb_txn_abort(txn);
            return edb__err(EDB_NOMEM, "open '%s': free-list map of %" PRIu64 " pages", path, gap);
        }
        gap_tree(&g, root, 0);
    }
    mdb_txn_abort(txn);
    if (g.err != 0) {
        free(g.bits);
        return g.err;
    }
    uint64_t in_use = gap;                      /* not known free */
    if (g.bits != NULL && g.bad == NULL) {
        in_use = 0;
        for (uint64_t i = 0; i < gap; i++)
            in_use += !(g.bits[i / 8] & (1u << (i % 8)));
    }
    free(g.bits);
    if (in_use == 0)
        return 0;                               /* only free pages are missing */
    if (g.bad != NULL)
        return edb__err(EDB_CORRUPT, "open '%s': data.mdb has %" PRIu64 " bytes, its meta page (txn %"
                        PRIu64 ") claims %" PRIu64 " ((last page %" PRIu64 " + 1) * page size %u); the "
                        "free list that might explain it %s (page %" PRIu64 "): the file is cut short "
                        "or damaged", path, size, edb__lmdb_rd64(m + EDB__META_OFF_TXNID), need, last, psize, g.bad, g.bad_pg);
    return edb__err(EDB_CORRUPT, "open '%s': data.mdb has %" PRIu64 " bytes, its meta page (txn %" PRIu64
                    ") claims %" PRIu64 " ((last page %" PRIu64 " + 1) * page size %u); %" PRIu64 " of "
                    "the %" PRIu64 " pages past its end are not on its free list: the file is cut short "
                    "or damaged", path, size, edb__lmdb_rd64(m + EDB__META_OFF_TXNID), need, last, psize, in_use, gap);
}

/*
 * pagecheck.c: structural check of LMDB's B-trees (see pagecheck.h).
 *
 * It reads LMDB 0.9's on-disk layout (page header, nodes, MDB_db, meta page)
 * with the offsets and flags of lmdb_layout.h, where the byte tables are.
 *
 * Invariants checked: see pagecheck.h.  The walk never trusts a number from
 * the file before bounding it: page numbers against last_pg and the file size,
 * offsets against the page size, recursion against a depth limit, and a page
 * is entered at most once (so a cycle cannot loop).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "lmdb_layout.h"
#include "pagecheck.h"

#define PAGEHDRSZ EDB__PAGE_HDR
#define NODESIZE EDB__NODE_SIZE
#define P_BRANCH EDB__PAGE_F_BRANCH
#define P_LEAF EDB__PAGE_F_LEAF
#define P_OVERFLOW EDB__PAGE_F_OVERFLOW
#define P_META EDB__PAGE_F_META
#define P_LEAF2 EDB__PAGE_F_LEAF2
#define P_SUBP EDB__PAGE_F_SUBP
#define F_BIGDATA EDB__NODE_F_BIGDATA
#define F_SUBDATA EDB__NODE_F_SUBDATA
#define F_DUPDATA EDB__NODE_F_DUPDATA
#define DB_SIZE EDB__DB_SIZE
#define META_MAGIC EDB__META_MAGIC
#define P_INVALID UINT64_MAX
#define MAX_DEPTH 40
#define MAX_REPORTS 200       /* problems described one by one; the rest only counted */

enum { M_NONE = 0, M_USED = 1, M_FREE = 2 };

typedef struct dbrec {
    uint32_t pad;
    uint16_t flags, depth;
    uint64_t branch, leaf, overflow, entries, root;
} dbrec;

typedef struct walk {
    int fd;
    uint32_t psize;
    uint64_t last_pg, file_pages;
    uint8_t *map;              /* one byte per page 0..last_pg: M_* */
    uint64_t *freepg;          /* pages listed in FREE_DBI, applied after the walk */
    size_t nfree, capfree;
    uint64_t problems, reported;
    edb_check_fn fn;
    void *ctx;
    edb__pagecheck_stat st;
    int err;                   /* EDB_NOMEM / EDB_IO that stops the walk */
} walk;

/* Counters of one tree, compared with its MDB_db at the end. */
typedef struct tree {
    const char *name;
    unsigned dbflags;          /* MDB_* flags of the tree (key comparison) */
    bool is_free, is_main;
    uint64_t branch, leaf, overflow, entries;
    unsigned leaf_depth;       /* depth of the first leaf seen; 0 = none yet */
} tree;

static void
problem(walk *w, const char *fmt, ...)
{
    w->problems++;
    if (w->fn == NULL || w->reported >= MAX_REPORTS)
        return;
    w->reported++;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    w->fn(w->ctx, EDB_CORRUPT, msg);
}




static dbrec
rddb(const uint8_t *p)
{
    dbrec d;
    d.pad = edb__lmdb_rd32(p + EDB__DB_OFF_PAD);
    d.flags = edb__lmdb_rd16(p + EDB__DB_OFF_FLAGS);
    d.depth = edb__lmdb_rd16(p + EDB__DB_OFF_DEPTH);
    d.branch = edb__lmdb_rd64(p + EDB__DB_OFF_BRANCH);
    d.leaf = edb__lmdb_rd64(p + EDB__DB_OFF_LEAF);
    d.overflow = edb__lmdb_rd64(p + EDB__DB_OFF_OVERFLOW);
    d.entries = edb__lmdb_rd64(p + EDB__DB_OFF_ENTRIES);
    d.root = edb__lmdb_rd64(p + EDB__DB_OFF_ROOT);
    return d;
}

/* Read page pg into buf (psize bytes).  false (reported) when past the file. */
static bool
read_page(walk *w, const char *tname, uint64_t pg, uint8_t *buf)
{
    if (pg >= w->file_pages) {
        problem(w, "tree '%s': page %" PRIu64 " is past the end of data.mdb (%" PRIu64 " pages)",
                tname, pg, w->file_pages);
        return false;
    }
    size_t done = 0;
    while (done < w->psize) {
        ssize_t n = pread(w->fd, buf + done, w->psize - done, (off_t)(pg * w->psize + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            w->err = edb__sys_err(errno, "check: read data.mdb");
            return false;
        }
        if (n == 0) {
            problem(w, "tree '%s': page %" PRIu64 " is past the end of data.mdb", tname, pg);
            return false;
        }
        done += (size_t)n;
    }
    return true;
}

/* Mark page pg (a run of n pages) reachable; false when it must not be entered. */
static bool
mark_used(walk *w, const char *tname, uint64_t pg, uint64_t n)
{
    if (pg < 2 || pg > w->last_pg || n > w->last_pg - pg + 1) {
        problem(w, "tree '%s': page %" PRIu64 "%s is outside the database (pages 2..%" PRIu64 ")",
                tname, pg, n > 1 ? " (overflow run)" : "", w->last_pg);
        return false;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (w->map[pg + i] == M_USED) {
            problem(w, "tree '%s': page %" PRIu64 " is reachable more than once", tname, pg + i);
            return false;
        }
    }
    for (uint64_t i = 0; i < n; i++)
        w->map[pg + i] = M_USED;
    w->st.reachable += n;
    return true;
}

/* Key comparison as LMDB does it for the tree's flags. */
static int
keycmp(unsigned dbflags, const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    if ((dbflags & MDB_INTEGERKEY) && an == bn && (an == 4 || an == 8)) {
        uint64_t x = an == 4 ? edb__lmdb_rd32(a) : edb__lmdb_rd64(a), y = an == 4 ? edb__lmdb_rd32(b) : edb__lmdb_rd64(b);
        return x < y ? -1 : x > y;
    }
    if (dbflags & MDB_REVERSEKEY) {
        size_t n = an < bn ? an : bn;
        for (size_t i = 1; i <= n; i++)
            if (a[an - i] != b[bn - i])
                return a[an - i] < b[bn - i] ? -1 : 1;
        return an < bn ? -1 : an > bn;
    }
    size_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (an < bn ? -1 : an > bn);
}

typedef struct bound {
    const uint8_t *k;
    size_t n;
    bool set;
} bound;

static void walk_tree(walk *w, const char *name, dbrec db, bool is_free, bool is_main, unsigned keyflags);

/* Append the free pages of one FREE_DBI record (an IDL: count, then page numbers). */
static void
add_free(walk *w, tree *t, const uint8_t *data, size_t size)
{
    if (size < 8 || size % 8 != 0 || edb__lmdb_rd64(data) != size / 8 - 1) {
        problem(w, "tree '%s': a free-list record of %zu bytes is malformed", t->name, size);
        return;
    }
    size_t n = size / 8 - 1;
    if (w->nfree + n > w->capfree) {
        size_t cap = w->capfree ? w->capfree : 1024;
        while (cap < w->nfree + n)
            cap *= 2;
        uint64_t *p = realloc(w->freepg, cap * sizeof *p);
        if (p == NULL) {
            w->err = edb__err(EDB_NOMEM, "check: free-page list");
            return;
        }
        w->freepg = p;
        w->capfree = cap;
    }
    for (size_t i = 0; i < n; i++)
        w->freepg[w->nfree++] = edb__lmdb_rd64(data + 8 + 8 * i);
}

/* Check one leaf node's data: overflow runs, sub-trees, inline duplicate pages. */
static void
leaf_node(walk *w, tree *t, const uint8_t *page, const uint8_t *node, uint64_t pg)
{
    unsigned nflags = edb__lmdb_rd16(node + EDB__NODE_OFF_FLAGS), ksize = edb__lmdb_rd16(node + EDB__NODE_OFF_KSIZE);
    size_t dsize = (size_t)edb__lmdb_rd16(node + EDB__NODE_OFF_LO) | (size_t)edb__lmdb_rd16(node + EDB__NODE_OFF_HI) << 16;
    const uint8_t *data = node + NODESIZE + ksize;
    size_t avail = (size_t)(page + w->psize - data);
    uint8_t *big = NULL;

    if (nflags & F_BIGDATA) {
        if (avail < 8) {
            problem(w, "tree '%s': page %" PRIu64 ": overflow node runs past the page", t->name, pg);
            return;
        }
        uint64_t opg = edb__lmdb_rd64(data);
        uint64_t want = (PAGEHDRSZ - 1 + (uint64_t)dsize) / w->psize + 1;
        uint8_t *first = malloc(w->psize);
        if (first == NULL) {
            w->err = edb__err(EDB_NOMEM, "check: page buffer");
            return;
        }
        if (opg > w->last_pg || !read_page(w, t->name, opg, first)) {
            if (opg > w->last_pg)
                problem(w, "tree '%s': page %" PRIu64 ": overflow page %" PRIu64 " is past last page %" PRIu64,
                        t->name, pg, opg, w->last_pg);
            free(first);
            return;
        }
        uint32_t have = edb__lmdb_rd32(first + EDB__PAGE_OFF_OVPAGES);
        if (!(edb__lmdb_rd16(first + EDB__PAGE_OFF_FLAGS) & P_OVERFLOW) || edb__lmdb_rd64(first) != opg || have != want) {
            problem(w, "tree '%s': page %" PRIu64 ": overflow page %" PRIu64 " has a bad header "
                    "(flags 0x%x, %u pages, %" PRIu64 " expected)", t->name, pg, opg,
                    edb__lmdb_rd16(first + EDB__PAGE_OFF_FLAGS), have, want);
            free(first);
            return;
        }
        free(first);
        if (!mark_used(w, t->name, opg, want))
            return;
        t->overflow += want;
        if (t->is_free) {      /* a large free list: read the run */
            big = malloc((size_t)want * w->psize);
            if (big == NULL) {
                w->err = edb__err(EDB_NOMEM, "check: overflow buffer");
                return;
            }
            for (uint64_t i = 0; i < want; i++)
                if (!read_page(w, t->name, opg + i, big + i * w->psize)) {
                    free(big);
                    return;
                }
            add_free(w, t, big + PAGEHDRSZ, dsize);
            free(big);
        }
        t->entries++;
        return;
    }
    if (dsize > avail) {
        problem(w, "tree '%s': page %" PRIu64 ": a node's data runs past the page", t->name, pg);
        return;
    }
    if (t->is_free) {
        add_free(w, t, data, dsize);
        t->entries++;
        return;
    }
    if (nflags & F_SUBDATA) {
        if (dsize != DB_SIZE) {
            problem(w, "tree '%s': page %" PRIu64 ": sub-database record of %zu bytes", t->name, pg, dsize);
            return;
        }
        dbrec sub = rddb(data);
        if (nflags & F_DUPDATA) {          /* duplicates in a sub-tree */
            unsigned dflags = 0;
            if (t->dbflags & MDB_INTEGERDUP) dflags |= MDB_INTEGERKEY;
            if (t->dbflags & MDB_REVERSEDUP) dflags |= MDB_REVERSEKEY;
            walk_tree(w, t->name, sub, false, false, dflags);
            t->entries += sub.entries;
        } else {                           /* a named database in the main tree */
            char name[200];
            size_t k = 0;
            for (unsigned i = 0; i < ksize && k + 5 < sizeof name; i++) {
                unsigned char c = node[NODESIZE + i];
                if (c >= 0x20 && c < 0x7f && c != '\'')
                    name[k++] = (char)c;
                else
                    k += (size_t)snprintf(name + k, sizeof name - k, "\\x%02x", c);
            }
            name[k] = '\0';
            walk_tree(w, name, sub, false, false, sub.flags);
            t->entries++;
        }
        return;
    }
    if (nflags & F_DUPDATA) {              /* inline sub-page of duplicates */
        if (dsize < PAGEHDRSZ || edb__lmdb_rd16(data + EDB__PAGE_OFF_LOWER) < PAGEHDRSZ || edb__lmdb_rd16(data + EDB__PAGE_OFF_LOWER) > dsize ||
            !(edb__lmdb_rd16(data + EDB__PAGE_OFF_FLAGS) & P_SUBP)) {
            problem(w, "tree '%s': page %" PRIu64 ": malformed inline duplicate page", t->name, pg);
            return;
        }
        t->entries += (uint64_t)(edb__lmdb_rd16(data + EDB__PAGE_OFF_LOWER) - PAGEHDRSZ) / 2;
        return;
    }
    t->entries++;
}

static void
walk_page(walk *w, tree *t, uint64_t pg, unsigned level, bound lo, bound hi)
{
    if (w->err || level > MAX_DEPTH) {
        if (level > MAX_DEPTH)
            problem(w, "tree '%s': deeper than %d levels at page %" PRIu64, t->name, MAX_DEPTH, pg);
        return;
    }
    if (!mark_used(w, t->name, pg, 1))
        return;
    uint8_t *page = malloc(w->psize);
    if (page == NULL) {
        w->err = edb__err(EDB_NOMEM, "check: page buffer");
        return;
    }
    if (!read_page(w, t->name, pg, page))
        goto out;
    uint64_t self = edb__lmdb_rd64(page);
    unsigned flags = edb__lmdb_rd16(page + EDB__PAGE_OFF_FLAGS), lower = edb__lmdb_rd16(page + EDB__PAGE_OFF_LOWER), upper = edb__lmdb_rd16(page + EDB__PAGE_OFF_UPPER);
    if (self != pg) {
        problem(w, "tree '%s': page %" PRIu64 " says it is page %" PRIu64, t->name, pg, self);
        goto out;
    }
    bool branch = flags & P_BRANCH, leaf = flags & P_LEAF;
    if (branch == leaf || (flags & (P_OVERFLOW | P_META | P_SUBP))) {
        problem(w, "tree '%s': page %" PRIu64 " has flags 0x%x where a branch or leaf page belongs",
                t->name, pg, flags);
        goto out;
    }
    if (lower < PAGEHDRSZ || lower > upper || upper > w->psize || (lower - PAGEHDRSZ) % 2) {
        problem(w, "tree '%s': page %" PRIu64 ": free-space bounds %u..%u are impossible",
                t->name, pg, lower, upper);
        goto out;
    }
    unsigned n = (lower - PAGEHDRSZ) / 2;
    if (n == 0 && (branch || level > 1)) {
        problem(w, "tree '%s': page %" PRIu64 " is empty", t->name, pg);
        goto out;
    }
    if (branch) {
        t->branch++;
    } else {
        t->leaf++;
        if (t->leaf_depth == 0)
            t->leaf_depth = level;
        else if (t->leaf_depth != level)
            problem(w, "tree '%s': leaf page %" PRIu64 " at depth %u, others at %u",
                    t->name, pg, level, t->leaf_depth);
    }
    bool leaf2 = flags & P_LEAF2;
    unsigned k2 = edb__lmdb_rd16(page + EDB__PAGE_OFF_PAD);
    if (leaf2 && (k2 == 0 || PAGEHDRSZ + (size_t)n * k2 > w->psize)) {
        problem(w, "tree '%s': page %" PRIu64 ": fixed-size keys do not fit the page", t->name, pg);
        goto out;
    }
    const uint8_t *prevk = NULL;
    size_t prevn = 0;
    for (unsigned i = 0; i < n && !w->err; i++) {
        const uint8_t *key, *node = NULL;
        size_t ksize;
        if (leaf2) {
            key = page + PAGEHDRSZ + (size_t)i * k2;
            ksize = k2;
        } else {
            unsigned off = edb__lmdb_rd16(page + PAGEHDRSZ + 2 * i);
            if (off < upper || off > w->psize - NODESIZE) {
                problem(w, "tree '%s': page %" PRIu64 ": node %u at offset %u is outside the node area",
                        t->name, pg, i, off);
                goto out;
            }
            node = page + off;
            ksize = edb__lmdb_rd16(node + EDB__NODE_OFF_KSIZE);
            if (ksize > w->psize - off - NODESIZE) {
                problem(w, "tree '%s': page %" PRIu64 ": node %u's key runs past the page", t->name, pg, i);
                goto out;
            }
            key = node + NODESIZE;
        }
        /* Branch node 0 has no key: it covers everything below the next one. */
        bool haskey = !(branch && i == 0);
        if (haskey) {
            if (prevk && keycmp(t->dbflags, prevk, prevn, key, ksize) >= 0)
                problem(w, "tree '%s': page %" PRIu64 ": key %u is not greater than key %u",
                        t->name, pg, i, i - 1);
            if (lo.set && keycmp(t->dbflags, key, ksize, lo.k, lo.n) < 0)
                problem(w, "tree '%s': page %" PRIu64 ": key %u sorts before its parent's separator",
                        t->name, pg, i);
            if (hi.set && keycmp(t->dbflags, key, ksize, hi.k, hi.n) >= 0)
                problem(w, "tree '%s': page %" PRIu64 ": key %u sorts after the next separator",
                        t->name, pg, i);
            prevk = key;
            prevn = ksize;
        }
        if (branch) {
            uint64_t child = (uint64_t)edb__lmdb_rd16(node + EDB__NODE_OFF_LO) | (uint64_t)edb__lmdb_rd16(node + EDB__NODE_OFF_HI) << 16 |
                             (uint64_t)edb__lmdb_rd16(node + EDB__NODE_OFF_FLAGS) << 32;
            bound clo = haskey ? (bound){ key, ksize, true } : lo;
            bound chi = hi;
            if (i + 1 < n) {
                unsigned noff = edb__lmdb_rd16(page + PAGEHDRSZ + 2 * (i + 1));
                if (noff >= upper && noff <= w->psize - NODESIZE &&
                    edb__lmdb_rd16(page + noff + EDB__NODE_OFF_KSIZE) <= w->psize - noff - NODESIZE)
                    chi = (bound){ page + noff + NODESIZE, edb__lmdb_rd16(page + noff + EDB__NODE_OFF_KSIZE), true };
            }
            walk_page(w, t, child, level + 1, clo, chi);
        } else if (leaf2) {
            t->entries++;
        } else {
            leaf_node(w, t, page, node, pg);
        }
    }
out:
    free(page);
}

static void
walk_tree(walk *w, const char *name, dbrec db, bool is_free, bool is_main, unsigned keyflags)
{
    tree t = { .name = name, .dbflags = keyflags, .is_free = is_free, .is_main = is_main };
    w->st.trees++;
    if (db.root == P_INVALID) {
        if (db.depth || db.entries || db.branch || db.leaf || db.overflow)
            problem(w, "tree '%s': empty but its record counts %" PRIu64 " entries, depth %u",
                    name, db.entries, db.depth);
        return;
    }
    t.dbflags |= db.flags & (MDB_INTEGERDUP | MDB_REVERSEDUP);
    bound none = { NULL, 0, false };
    walk_page(w, &t, db.root, 1, none, none);
    if (w->err)
        return;
    if (t.leaf_depth != db.depth)
        problem(w, "tree '%s': depth %u, its record says %u", name, t.leaf_depth, db.depth);
    if (t.branch != db.branch || t.leaf != db.leaf || t.overflow != db.overflow)
        problem(w, "tree '%s': %" PRIu64 "/%" PRIu64 "/%" PRIu64 " branch/leaf/overflow pages, "
                "its record says %" PRIu64 "/%" PRIu64 "/%" PRIu64, name, t.branch, t.leaf,
                t.overflow, db.branch, db.leaf, db.overflow);
    if (t.entries != db.entries)
        problem(w, "tree '%s': %" PRIu64 " entries, its record says %" PRIu64, name, t.entries, db.entries);
}

/* Read the snapshot's meta: the one of pages 0/1 whose txnid is the read txn's. */
static int
read_meta(walk *w, MDB_env *mdb, MDB_txn **txn, bool own, uint8_t *meta)
{
    uint8_t m[2][EDB__META_READ_END];
    for (int attempt = 0; attempt < 1000; attempt++) {
        int rc = !own ? 0 : *txn ? mdb_txn_renew(*txn) : mdb_txn_begin(mdb, NULL, MDB_RDONLY, txn);
        if (rc != 0)
            return edb__mdb_err(rc, "check: begin read txn");
        uint64_t id = (uint64_t)mdb_txn_id(*txn);
        for (int k = 0; k < 2; k++) {
            ssize_t n;
            do
                n = pread(w->fd, m[k], sizeof m[k], (off_t)k * w->psize);
            while (n < 0 && errno == EINTR);
            if (n < 0)      /* an I/O error is not damage: EDB_IO with the errno */
                return edb__err(EDB_IO, "check: reading meta page %d of data.mdb: %s", k,
                                strerror(errno));
            if (n != (ssize_t)sizeof m[k])   /* regular file: short only at its end */
                return edb__err(EDB_CORRUPT, "check: data.mdb is too short to hold its meta pages");
            if (edb__lmdb_rd32(m[k] + EDB__META_OFF_MAGIC) != META_MAGIC)
                return edb__err(EDB_VERSION, "check: meta page %d has no LMDB magic", k);
            if (edb__lmdb_rd64(m[k] + EDB__META_OFF_TXNID) == id) {
                memcpy(meta, m[k], sizeof m[k]);
                return 0;
            }
        }
        if (!own)
            return EDB_BUSY;      /* the caller renews its own txn */
        mdb_txn_reset(*txn);
    }
    return edb__err(EDB_BUSY, "check: writers kept overwriting the snapshot's meta page");
}

int
edb__check_pages(edb__pagecheck_stat *out, uint64_t *problems, MDB_env *mdb, MDB_txn *snap,
                 edb_check_fn fn, void *ctx)
{
    int ret = 0;
    MDB_txn *txn = snap;
    bool own = snap == NULL;
    walk w = { .fn = fn, .ctx = ctx };
    uint8_t meta[EDB__META_READ_END] = { 0 };
    MDB_stat est;
    struct stat sb;

    memset(out, 0, sizeof *out);
    *problems = 0;
    if (mdb == NULL)
        return edb__err(EDB_INVAL, "check: no environment");
    EDB_ERR(edb__mdb_err(mdb_env_stat(mdb, &est), "check: env stat"));
    w.psize = est.ms_psize;
    EDB_ERR(edb__mdb_err(mdb_env_get_fd(mdb, &w.fd), "check: data file"));
    EDB_ERR(read_meta(&w, mdb, &txn, own, meta));
    if (fstat(w.fd, &sb) != 0)
        EDB_ERR(edb__sys_err(errno, "check: stat data.mdb"));
    w.file_pages = (uint64_t)sb.st_size / w.psize;
    dbrec freedb = rddb(meta + EDB__META_OFF_FREEDB), maindb = rddb(meta + EDB__META_OFF_MAINDB);
    w.last_pg = edb__lmdb_rd64(meta + EDB__META_OFF_LASTPG);
    w.st.page_size = w.psize;
    w.st.txnid = edb__lmdb_rd64(meta + EDB__META_OFF_TXNID);
    w.st.last_pg = w.last_pg;
    if (freedb.pad != w.psize)
        problem(&w, "meta: page size %u, the environment uses %u", freedb.pad, w.psize);
    if (w.last_pg < 1 || w.last_pg >= (uint64_t)1 << 40) {
        problem(&w, "meta: last page %" PRIu64 " is impossible", w.last_pg);
        goto done;
    }
    w.map = calloc(w.last_pg + 1, 1);
    if (w.map == NULL)
        EDB_ERR(edb__err(EDB_NOMEM, "check: page map of %" PRIu64 " pages", w.last_pg + 1));
    w.map[0] = w.map[1] = M_USED;

    walk_tree(&w, "(free list)", freedb, true, false, MDB_INTEGERKEY);
    if (w.err == 0)
        walk_tree(&w, "(main)", maindb, false, true, maindb.flags);
    if (w.err)
        EDB_ERR(w.err);

    for (size_t i = 0; i < w.nfree; i++) {
        uint64_t pg = w.freepg[i];
        if (pg < 2 || pg > w.last_pg) {
            problem(&w, "free list: page %" PRIu64 " is outside the database (pages 2..%" PRIu64 ")",
                    pg, w.last_pg);
        } else if (w.map[pg] == M_USED) {
            problem(&w, "free list: page %" PRIu64 " is free and also in use", pg);
        } else if (w.map[pg] == M_FREE) {
            problem(&w, "free list: page %" PRIu64 " is listed twice", pg);
        } else {
            w.map[pg] = M_FREE;
            w.st.free++;
        }
    }
    /* LMDB does not write pages a transaction allocated and freed again
     * (metaread.c): a file short of last_pg is damage only where a page past
     * its end is not free (a reachable one was reported by read_page too). */
    if (w.last_pg >= w.file_pages) {
        uint64_t notfree = 0;
        for (uint64_t pg = w.file_pages; pg <= w.last_pg; pg++)
            notfree += w.map[pg] != M_FREE;
        if (notfree > 0)
            problem(&w, "data.mdb holds %" PRIu64 " pages, its meta says pages 0..%" PRIu64 " are in use "
                    "(%" PRIu64 " of those past its end are not free)", w.file_pages, w.last_pg, notfree);
    }
    /* Pages neither reachable nor free leak: report runs, not single pages. */
    for (uint64_t pg = 2; pg <= w.last_pg;) {
        if (w.map[pg] != M_NONE) {
            pg++;
            continue;
        }
        uint64_t first = pg;
        while (pg <= w.last_pg && w.map[pg] == M_NONE)
            pg++;
        w.st.leaked += pg - first;
        problem(&w, "pages %" PRIu64 "..%" PRIu64 " (%" PRIu64 ") are neither reachable nor free",
                first, pg - 1, pg - first);
    }
done:
    *out = w.st;
    *problems = w.problems;
err:
    if (own)
        mdb_txn_abort(txn);
    free(w.map);
    free(w.freepg);
    return ret;
}

/*
 * lowpin.c: the pass planner of low-pin backups (lowpin.h).
 *
 * Why these rules: the final pass pins its snapshot for one read-and-hash of
 * every page plus the reads of the pages that changed since the pass before;
 * those are staged, in memory up to edb__lp_stage_bytes and beyond that in a
 * spool file (an unnamed file in $TMPDIR, written at disk speed), so the pin
 * never waits on the consumer, however many pages changed.  A pass that
 * changed at most half the memory stage predicts a final pass that fits
 * there (the final pass takes about as long as the last short one, which
 * writers had to change pages in).  Another short pass pays only when it
 * shrinks the delta: once a pass changes more than three quarters of the one
 * before, writers dirty pages as fast as passes go, and more passes only cost
 * time.
 *
 * The spool: opened on the stage's first overflow (O_TMPFILE in $TMPDIR, else
 * /tmp; where O_TMPFILE is refused, a random name unlinked right after it is
 * created), so it has no name while the backup uses it and disappears with
 * its descriptor, which edb__lp_free() closes on every path (end, error,
 * cancel).  If it cannot be opened or written, the final pass degrades to what
 * it did before the spool existed: the stage is emitted while pinned.
 *
 * The passes themselves (edb__lp_run) run on the copier's thread and put
 * their pages into frames through the copier's frame writer (copier_int.h),
 * like the full and incremental paths.
 *
 * Thread safety: the planner is pure; the passes use the copier's private
 * state only (its thread).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "copier_int.h"
#include "error.h"
#include "lowpin.h"
#include "sys.h"
#include "sys_fs.h"

_Atomic size_t edb__lp_stage_bytes = EDB__LP_STAGE_BYTES;
_Atomic uint64_t edb__lp_stage_flushes;
_Atomic uint64_t edb__lp_spooled_pages;
_Atomic uint64_t edb__lp_pinned_emits;
void (*edb__lp_before_final)(void);
void (*edb__lp_after_final_pin)(void);

bool
edb__lp_final_next(unsigned passes, uint64_t changed, uint64_t prev_changed, uint64_t stage_pages)
{
    if (passes == 0)
        return false;                   /* the first pass copies everything, short */
    if (passes >= EDB__LP_MAX_PASSES)
        return true;
    if (changed <= stage_pages / 2)
        return true;
    if (prev_changed != UINT64_MAX && changed > prev_changed / 4 * 3)
        return true;                    /* not converging */
    return false;
}

/* ---- the passes -----------------------------------------------------------------
 *
 * w->table[p] is the hash of what the archive emitted so far restores page p
 * to, when bit p of lp->known is set: the last emitted copy, else (an
 * incremental) the base's page.  An unknown page restores to zeros and is
 * emitted whenever it is reachable.  A page is emitted when its hash under the
 * current snapshot differs, so after the final pass every page reachable in
 * the final snapshot is known with its final hash, and the table is complete
 * by construction (a free page keeps what restore puts there).
 */
typedef struct edb__lp {
    uint64_t n;                /* entries of w->table and bits of known */
    uint64_t *known;
    uint8_t *buf;              /* EDB__LP_BATCH_PAGES pages read under one short snapshot */
    edb__arch_entry *ent;      /* their entries */
    /* Final pass: the changed pages, read pinned, emitted unpinned.  sent[]
     * holds every staged page's entry: the first nspool are in the spool file
     * (page i at offset i * page size), the next nmem in stage[]. */
    uint8_t *stage;
    size_t nmem, capstage;     /* pages in stage[], its capacity */
    edb__arch_entry *sent;
    size_t nsent, capsent;
    size_t nspool;
    int spool_fd;              /* -1 until the stage first overflows */
    bool spool_failed;         /* the spool could not be made or written: degrade */
} lpstate;

void
edb__lp_free(lpstate *lp)
{
    if (lp == NULL)
        return;
    free(lp->known);
    free(lp->buf);
    free(lp->ent);
    free(lp->stage);
    free(lp->sent);
    if (lp->spool_fd >= 0)
        edb__sys_close(lp->spool_fd);  /* unnamed: the file goes with it */
    free(lp);
}

/* Grow the table and the known bits to n pages (new pages: the base's, else unknown). */
static int
lp_grow(edb__copier *c, uint64_t n)
{
    edb__cwork *w = c->work;
    lpstate *lp = w->lp;
    if (n <= lp->n)
        return 0;
    size_t words = (size_t)((n + 63) / 64), old = (size_t)((lp->n + 63) / 64);
    edb__arch_hash *t = edb__sys_realloc(w->table, (size_t)n * sizeof *t);
    if (t == NULL)
        return edb__err(EDB_NOMEM, "backup copier: page hash table of %llu pages", (unsigned long long)n);
    w->table = t;
    uint64_t *k = edb__sys_realloc(lp->known, words * sizeof *k);
    if (k == NULL)
        return edb__err(EDB_NOMEM, "backup copier: page set of %llu pages", (unsigned long long)n);
    lp->known = k;
    if (words > old)
        memset(k + old, 0, (words - old) * sizeof *k);
    const edb__plan *pl = &c->snap->plan;
    for (uint64_t p = lp->n; p < n; p++) {
        k[p >> 6] &= ~((uint64_t)1 << (p & 63));
        if ((pl->flags & EDB__ARCH_F_INCREMENTAL) && p < pl->base_npages) {
            t[p] = pl->base_table[p];
            k[p >> 6] |= (uint64_t)1 << (p & 63);
        }
    }
    lp->n = n;
    return 0;
}

static bool
lp_changed(const edb__copier *c, const edb__arch_entry *e)
{
    const edb__cwork *w = c->work;
    const lpstate *lp = w->lp;
    return !((lp->known[e->pgno >> 6] >> (e->pgno & 63)) & 1u) ||
           !edb__arch_hash_eq(&w->table[e->pgno], &e->hash);
}

/* Emit pages e[0..n) (contents at pages) through the frame writer; they
 * become known. */
static int
lp_emit(edb__copier *c, const edb__arch_entry *e, const uint8_t *pages, size_t n)
{
    lpstate *lp = ((edb__cwork *)c->work)->lp;
    size_t psize = c->snap->page_size;
    for (size_t i = 0; i < n; i++) {
        EDB_RET(edb__fw_add(c, &e[i], pages + i * psize));
        lp->known[e[i].pgno >> 6] |= (uint64_t)1 << (e[i].pgno & 63);
    }
    return edb__fw_flush(c);    /* a pass's pages end their frame, as the pass order says */
}

/* Collect up to max reachable pages of sn from *p into e. */
static unsigned
lp_collect(const edb__snap *sn, uint64_t *p, edb__arch_entry *e, unsigned max)
{
    unsigned m = 0;
    while (*p < sn->npages && m < max) {
        if (!edb__snap_is_free(sn, *p))
            e[m++].pgno = *p;
        (*p)++;
    }
    return m;
}

static void
lp_pin_begin(edb__copier *c, const edb__snap *sn)
{
    atomic_store(&c->snap->pin_since_ns, sn->pin_start_ns);
}

/* Release a snapshot of ours, accounting how long it was pinned (ns). */
static uint64_t
lp_pin_end(edb__copier *c, edb__snap *sn)
{
    uint64_t held = edb__now_ns() - sn->pin_start_ns;
    edb__snap_put(sn);
    edb__snap_pin_account(c->snap, held);
    atomic_store(&c->snap->pin_since_ns, 0);
    return held;
}

/* One short pass: batches of EDB__LP_BATCH_PAGES read under a fresh snapshot
 * each, released before the batch is hashed and its changed pages emitted. */
static int
lp_short_pass(edb__copier *c, uint64_t *changed)
{
    edb__cwork *w = c->work;
    lpstate *lp = w->lp;
    size_t psize = c->snap->page_size;
    uint64_t p = 2;
    *changed = 0;
    for (;;) {
        if (edb__ring_is_canceled(&c->s->ring))
            return edb__err(EDB_CANCELED, "backup copier: canceled");
        edb__snap *sn;
        EDB_RET(edb__snap_take(&sn, c->snap->env, (c->snap->plan.flags & EDB__ARCH_F_KEEP_FREE) != 0));
        lp_pin_begin(c, sn);
        int rc = lp_grow(c, sn->npages);
        unsigned n = 0;
        while (rc == 0 && n < EDB__LP_BATCH_PAGES) {
            unsigned m = lp_collect(sn, &p, lp->ent + n,
                                    EDB__LP_BATCH_PAGES - n < w->fmax ? EDB__LP_BATCH_PAGES - n : w->fmax);
            if (m == 0)
                break;
            rc = edb__copier_read_pages(sn, lp->buf + (size_t)n * psize, lp->ent + n, m);
            n += m;
        }
        bool done = p >= sn->npages;
        lp_pin_end(c, sn);
        EDB_RET(rc);
        /* Unpinned: hash, keep the changed pages (compacted in place), emit. */
        unsigned k = 0;
        for (unsigned i = 0; i < n; i++) {
            edb__arch_entry *e = &lp->ent[i];
            const uint8_t *page = lp->buf + (size_t)i * psize;
            edb__arch_page_hash(&e->hash, page, psize, e->pgno);
            if (!lp_changed(c, e))
                continue;
            if (k != i) {
                memcpy(lp->buf + (size_t)k * psize, page, psize);
                lp->ent[k] = *e;
            }
            k++;
        }
        EDB_RET(lp_emit(c, lp->ent, lp->buf, k));
        *changed += k;
        if (done)
            return 0;
    }
}

/* Open the spool: an unnamed file in $TMPDIR (else /tmp).  -1 with errno. */
static int
lp_spool_open(void)
{
    const char *dir = getenv("TMPDIR");
    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    int fd = edb__sys_open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
    for (int attempt = 0; attempt < 16; attempt++) {
        unsigned char r[6];
        char path[PATH_MAX];
        if (edb__sys_random(r, sizeof r) != 0)
            return -1;
        if (snprintf(path, sizeof path, "%s/.edb-lowpin-spool.%02x%02x%02x%02x%02x%02x", dir,
                     r[0], r[1], r[2], r[3], r[4], r[5]) >= (int)sizeof path) {
            errno = ENAMETOOLONG;
            return -1;
        }
        fd = edb__sys_open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return -1;
        if (edb__sys_unlink(path) != 0) {
            int e = errno;
            edb__sys_close(fd);
            (void)unlink(path);             /* best effort: never leave it behind */
            errno = e;
            return -1;
        }
        return fd;
    }
    errno = EEXIST;
    return -1;
}

/* The memory stage is full: append it to the spool (opened on first use).  If
 * the spool cannot be had, emit the stage while pinned instead (degrade). */
static int
lp_spill(edb__copier *c)
{
    lpstate *lp = ((edb__cwork *)c->work)->lp;
    size_t psize = c->snap->page_size;
    atomic_fetch_add(&edb__lp_stage_flushes, 1);
    if (!lp->spool_failed && lp->spool_fd < 0) {
        lp->spool_fd = lp_spool_open();
        lp->spool_failed = lp->spool_fd < 0;
    }
    if (!lp->spool_failed) {
        if (edb__sys_write_all(lp->spool_fd, lp->stage, lp->nmem * psize) == 0) {
            atomic_fetch_add(&edb__lp_spooled_pages, lp->nmem);
            lp->nspool += lp->nmem;
            lp->nmem = 0;
            return 0;
        }
        lp->spool_failed = true;            /* what it holds up to nspool stays good */
    }
    atomic_fetch_add(&edb__lp_pinned_emits, lp->nmem);
    EDB_RET(lp_emit(c, lp->sent + lp->nspool, lp->stage, lp->nmem));
    lp->nsent = lp->nspool;
    lp->nmem = 0;
    return 0;
}

static int
lp_stage(edb__copier *c, const edb__arch_entry *e, const uint8_t *page)
{
    lpstate *lp = ((edb__cwork *)c->work)->lp;
    size_t psize = c->snap->page_size, max = atomic_load(&edb__lp_stage_bytes) / psize;
    if (max == 0)
        max = 1;
    if (lp->nmem == lp->capstage) {
        if (lp->capstage >= max) {
            EDB_RET(lp_spill(c));
        } else {
            size_t cap = lp->capstage ? lp->capstage * 2 : 256;
            if (cap > max)
                cap = max;
            uint8_t *st = edb__sys_realloc(lp->stage, cap * psize);
            if (st == NULL)
                return edb__err(EDB_NOMEM, "backup copier: staging %zu pages", cap);
            lp->stage = st;
            lp->capstage = cap;
        }
    }
    if (lp->nsent == lp->capsent) {
        size_t cap = lp->capsent ? lp->capsent * 2 : 256;
        edb__arch_entry *se = edb__sys_realloc(lp->sent, cap * sizeof *se);
        if (se == NULL)
            return edb__err(EDB_NOMEM, "backup copier: staging %zu page entries", cap);
        lp->sent = se;
        lp->capsent = cap;
    }
    memcpy(lp->stage + lp->nmem * psize, page, psize);
    lp->nmem++;
    lp->sent[lp->nsent++] = *e;
    return 0;
}

/* Unpinned: emit the staged pages, the memory stage's first, then the
 * spool's through the stage buffer (one stage at a time). */
static int
lp_emit_staged(edb__copier *c)
{
    lpstate *lp = ((edb__cwork *)c->work)->lp;
    size_t psize = c->snap->page_size;
    EDB_RET(lp_emit(c, lp->sent + lp->nspool, lp->stage, lp->nmem));
    lp->nmem = 0;
    for (size_t i = 0; i < lp->nspool;) {
        size_t n = lp->nspool - i < lp->capstage ? lp->nspool - i : lp->capstage, got = 0;
        if (edb__sys_pread_full(lp->spool_fd, lp->stage, n * psize, (off_t)(i * psize), &got) != 0)
            return edb__sys_err(errno, "backup copier: reading the low-pin spool file");
        if (got != n * psize)
            return edb__err(EDB_IO, "backup copier: the low-pin spool file is short (%zu of %zu bytes)",
                            got, n * psize);
        if (edb__ring_is_canceled(&c->s->ring))
            return edb__err(EDB_CANCELED, "backup copier: canceled");
        EDB_RET(lp_emit(c, lp->sent + i, lp->stage, n));
        i += n;
    }
    return 0;
}

/* The final pass: one snapshot, held for reading and hashing every reachable
 * page and reading the changed ones into the stage; released before they are
 * emitted.  Then the trailer of that snapshot. */
static int
lp_final_pass(edb__copier *c)
{
    edb__cwork *w = c->work;
    lpstate *lp = w->lp;
    size_t psize = c->snap->page_size;
    edb__snap *sn;
    EDB_RET(edb__snap_take(&sn, c->snap->env, (c->snap->plan.flags & EDB__ARCH_F_KEEP_FREE) != 0));
    lp_pin_begin(c, sn);
    int rc = lp_grow(c, sn->npages);
    /* The pin lasts as long as this pass: hash straight from a read-only map
     * of data.mdb (no copy) when the file holds the whole snapshot (a shorter
     * file would fault: then, or if mapping fails, pread as elsewhere). */
    size_t maplen = (size_t)sn->npages * psize;
    const uint8_t *map = NULL;
    struct stat st;
    if (rc == 0 && edb__sys_fstat(sn->fd, &st) == 0 && (uint64_t)st.st_size >= (uint64_t)maplen) {
        void *mp = edb__sys_mmap(maplen, PROT_READ, MAP_SHARED, sn->fd, 0);
        if (mp != MAP_FAILED)
            map = mp;
    }
    uint64_t p = 2;
    edb__arch_entry e[COPIER_BATCH];
    lp->nmem = lp->nsent = lp->nspool = 0;
    while (rc == 0) {
        unsigned m = lp_collect(sn, &p, e, w->fmax);
        if (m == 0)
            break;
        if (edb__ring_is_canceled(&c->s->ring)) {
            rc = edb__err(EDB_CANCELED, "backup copier: canceled");
            break;
        }
        if (map == NULL)
            rc = edb__copier_read_pages(sn, w->ibuf, e, m);
        for (unsigned i = 0; rc == 0 && i < m; i++) {
            const uint8_t *page = map != NULL ? map + e[i].pgno * psize : w->ibuf + (size_t)i * psize;
            edb__arch_page_hash(&e[i].hash, page, psize, e[i].pgno);
            if (lp_changed(c, &e[i]))
                rc = lp_stage(c, &e[i], page);
        }
    }
    if (map != NULL)
        edb__sys_munmap((void *)map, maplen);
    edb__arch_trailer t;
    memset(&t, 0, sizeof t);
    t.npages = sn->npages;
    t.txnid = sn->txnid;
    memcpy(t.meta, sn->meta, sizeof t.meta);
    t.pin_us = lp_pin_end(c, sn) / 1000u;
    EDB_RET(rc);
    if (edb__lp_after_final_pin != NULL)
        edb__lp_after_final_pin();
    EDB_RET(lp_emit_staged(c));

    for (uint64_t q = 2; q < t.npages; q++)
        if (!((lp->known[q >> 6] >> (q & 63)) & 1u))
            edb__arch_zero_hash(&w->table[q], psize, q);
    edb__arch_meta_hash(&w->table[0], w->scratch, psize, t.meta, 0);
    edb__arch_meta_hash(&w->table[1], w->scratch, psize, t.meta, 1);
    return edb__copier_tail(c, &t);
}

int
edb__lp_run(edb__copier *c)
{
    edb__cwork *w = c->work;
    lpstate *lp = edb__sys_calloc(1, sizeof *lp);
    if (lp == NULL)
        return edb__err(EDB_NOMEM, "backup copier: low-pin state");
    lp->spool_fd = -1;
    w->lp = lp;
    lp->buf = edb__sys_malloc((size_t)EDB__LP_BATCH_PAGES * c->snap->page_size);
    lp->ent = edb__sys_malloc(EDB__LP_BATCH_PAGES * sizeof *lp->ent);
    if (lp->buf == NULL || lp->ent == NULL)
        return edb__err(EDB_NOMEM, "backup copier: low-pin batch buffer");
    /* w->table came with the first snapshot's npages entries, all unknown. */
    edb__arch_hash *t = w->table;
    w->table = NULL;
    free(t);
    EDB_RET(lp_grow(c, c->snap->npages));

    uint64_t stage_pages = atomic_load(&edb__lp_stage_bytes) / c->snap->page_size;
    uint64_t changed = 0, prev = UINT64_MAX;
    for (unsigned passes = 0; !edb__lp_final_next(passes, changed, prev, stage_pages); passes++) {
        prev = passes ? changed : UINT64_MAX;
        EDB_RET(lp_short_pass(c, &changed));
    }
    if (edb__lp_before_final != NULL)
        edb__lp_before_final();
    return lp_final_pass(c);
}


/*
 * reader.c: read one backup archive from a file descriptor, front to back,
 * validating it completely (doc/backup-format.md "What a reader checks", items
 * 1 to 5; the chain, item 6, is verify.c's and restore.c's).
 *
 * Invariants:
 * - The input is consumed once through a fixed 16 MiB buffer, read in 256 KiB
 *   steps into its first MiB or so (few system calls, and the bytes are hashed
 *   while they are still in cache),
 *   so pipes work and a file is never mapped (a file truncated under us is an
 *   error, not a SIGBUS).  A pointer handed out by take() is valid until the
 *   next fill() that has to move the buffer's contents.
 * - Before the pages of a frame are handed out, the whole frame is in the
 *   buffer (a frame is at most EDB__ARCH_FRAME_MAX * EDB__ARCH_PAGE_MAX bytes,
 *   less than INBUF), so every page pointer of one frame stays valid until
 *   on_frame_end() of that frame returned, and consecutive pages of a frame
 *   are consecutive in memory: restore writes them with one call.
 * - Every byte before the end block except the pages of frames feeds the
 *   archive hash as it is consumed (format version 2); each page is hashed
 *   once, against its frame entry, which the archive hash covers.  Version 3
 *   (compressed frames): the same with each frame's payload in place of its
 *   pages; a compressed payload is decompressed into a buffer of exactly the
 *   frame's pages (count * page_size, the count checked first), so memory
 *   never follows a length the file claims.
 * - Allocations grow with bytes read only (table entries and carried pages
 *   are appended as they arrive); length fields are range-checked by archive.c
 *   before they are used for anything.
 * - On failure out->where names the frame, page and byte offset concerned.
 * - The table check's zero-page hashes are computed ahead on a worker thread
 *   (struct zw below), joined on every exit.
 *
 * Thread safety: reentrant.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "annotate.h"
#include "codec.h"
#include "error.h"
#include "reader.h"
#include "sys.h"

#define INBUF (16u << 20)
#define READ_STEP (256u << 10)
#define WINDOW (1u << 20)
/* Zero-page hashes computed ahead (see struct zw): at most ZW_CAP of them, in
 * chunks of ZW_CHUNK entries allocated as they fill. */
#define ZW_CHUNK 4096u
#define ZW_NCHUNK 64u
#define ZW_CAP ((uint64_t)ZW_CHUNK * ZW_NCHUNK)
#define ZW_BATCH 16u
#define ZW_NICE 10               /* the worker's nice value (Linux: per thread) */
#define ZW_CHECK 2048u           /* the worker checks it has a core every so many pages */
#define ZW_PEND 256u             /* gaps handed to the worker at once ... */
#define ZW_FLUSH 1024u           /* ... or when they hold this many pages */

/* A thread's creation and join cost 0.1 to 0.3 ms on the 2-core VM, the hash
 * of a zero page of 4 KiB 0.10 to 0.16 ms a thousand: the worker pays from
 * a few thousand pages on. */
size_t edb__reader_zero_min = (size_t)16 << 20;
bool edb__reader_zero_wait = false;

_Static_assert((uint64_t)EDB__ARCH_FRAME_MAX * EDB__ARCH_PAGE_MAX + EDB__ARCH_BLOCK <= INBUF,
               "a whole frame must fit the input buffer");

struct rd {
    edb__arch_hstate hs;     /* archive hash of everything before the end block */
    int fd;
    bool eof;
    bool hashing;
    uint8_t *buf;
    size_t pos, len;
    uint64_t off;            /* archive offset of buf[pos] */
    uint8_t *zout;           /* version 3: one frame's decompressed pages */
    size_t zcap;
    uint8_t *dout;           /* encrypted: one frame's decrypted payload */
    size_t dcap;
    edb__codec codec;
    struct zw *zw;           /* the zero-page worker (edb__reader_read's) */
};

/*
 * The zero-page hashes of check 4 (the table entry of a page no frame carries
 * must be H(zero page, pgno)), computed ahead on a worker thread while the
 * main thread reads the frames, so that the table check finds them ready.
 *
 * - The main thread queues the gaps it sees: each page number above the
 *   highest carried so far opens the gap between them (clipped below at the
 *   first page a zero page can be: 2, or base_npages in an incremental); the
 *   tail gap up to npages follows the trailer.  A later frame may still carry
 *   a page of a queued gap (low-pin archives, any order): its hash is then
 *   computed for nothing and skipped, never used: the main thread uses an
 *   entry only for the page number it was computed for.
 * - At most ZW_CAP pages are ever queued (24 bytes each: 6 MiB at most,
 *   allocated a chunk at a time as the worker fills them); the table check
 *   computes the hashes of the pages past the last queued one inline, as it
 *   did for all of them before.  The gap list is bounded by the same count.
 * - The thread starts once the queued zero pages hold edb__reader_zero_min
 *   bytes (a small archive's few hashes cost less than a thread); a failed
 *   thread creation leaves every hash to the table check, inline.
 * - The work is speculative: the table check never waits for the worker: a
 *   hash not ready when its entry is reached is computed inline, and the
 *   worker skips past the page the check has reached (mainp).  The worker
 *   runs at nice 10: on a busy machine, where it may share the reading
 *   thread's core, it takes less of it; not lower (SCHED_IDLE, nice 19):
 *   a busy machine then left it unscheduled for up to 110 ms (3 ms at nice
 *   19), which the join at the end waited for.  A worker that gets less
 *   than half a core (it shares one) stops itself (zw_main).
 *   (edb__reader_zero_wait, for tests, makes the check wait for queued pages,
 *   so that zero_ahead is exact.)
 * - Synchronization: mu guards the gap list, closed, done and the waiting
 *   flags.  The worker alone writes entries, at indexes >= head, and
 *   publishes them with a release store of head; the main thread reads the
 *   entries below the head it loaded (acquire).  Chunks are allocated by the
 *   worker before the head covering them is published and freed after the
 *   join.  stop and mainp are atomics read without mu.
 * - Every exit of edb__reader_read() stops and joins the thread (zw_end).
 */
struct zw_gap {
    uint64_t lo, hi;
};

struct zw_ent {
    uint64_t pgno;
    edb__arch_hash hash;
};

struct zw {
    pthread_mutex_t mu;
    pthread_cond_t cv_main, cv_work;
    pthread_t th;
    bool inited, started, failed;
    size_t page_size;
    /* queued gaps: main appends, the worker takes gaps[gi] */
    struct zw_gap *gaps;
    size_t ngaps, gcap, gi;
    bool closed, done;
    bool main_waits, work_waits;
    bool wait;               /* edb__reader_zero_wait when the read began */
    atomic_bool stop;        /* set under mu too, so a waiting worker sees it */
    atomic_uint_fast64_t head;  /* entries produced (release: their bytes are written) */
    atomic_uint_fast64_t mainp; /* the table check is past this page (relaxed: a hint) */
    struct zw_gap pend[ZW_PEND]; /* the main thread's gaps not yet handed over */
    size_t npend;
    uint64_t pend_pages;
    struct zw_ent *chunk[ZW_NCHUNK];
    /* the main thread's own */
    uint64_t lo;             /* first page a zero page can be */
    uint64_t maxp;           /* highest page seen + 1 (>= lo) */
    uint64_t queued;         /* pages queued */
    uint64_t qend;           /* end of the last gap queued */
    uint64_t seen, tail;     /* head as last seen; entries consumed */
    uint64_t used;           /* hashes the table check took from the worker */
};

static struct zw_ent *
zw_slot(struct zw *z, uint64_t i)
{
    return &z->chunk[i / ZW_CHUNK][i % ZW_CHUNK];
}

static double
zw_clock(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *
zw_main(void *arg)
{
    struct zw *z = arg;
    /* Speculative work: where it shares a core with the reading thread it
     * takes a tenth of it, not half (a failure changes nothing else). */
    (void)setpriority(PRIO_PROCESS, (id_t)gettid(), ZW_NICE);
    uint64_t head = 0;
    /* Windows of ZW_CHECK pages hashed without sleeping: if the thread got
     * less than half of a core in two windows in a row, it shares one (a busy
     * machine), where it only slows the reading thread down: it stops, and
     * the table check computes the rest inline.  A worker that keeps up
     * sleeps between the main thread's hand-overs and is never judged. */
    uint64_t win = 0;
    unsigned starved = 0;
    bool valid = true;
    double wall0 = zw_clock(CLOCK_MONOTONIC), cpu0 = zw_clock(CLOCK_THREAD_CPUTIME_ID);
    pthread_mutex_lock(&z->mu);
    for (;;) {
        while (z->gi == z->ngaps && !z->closed && !atomic_load(&z->stop)) {
            z->work_waits = true;
            pthread_cond_wait(&z->cv_work, &z->mu);
            z->work_waits = false;
            valid = false;                /* the window restarts after a sleep */
        }
        if (atomic_load(&z->stop) || z->gi == z->ngaps)
            break;
        struct zw_gap g = z->gaps[z->gi++];
        pthread_mutex_unlock(&z->mu);
        uint64_t pg = g.lo;
        bool quit = false;
        while (pg < g.hi) {
            if (atomic_load_explicit(&z->stop, memory_order_relaxed))
                break;
            /* the table check computed these itself: go past it */
            uint64_t mp = atomic_load_explicit(&z->mainp, memory_order_relaxed);
            if (pg < mp) {
                pg = mp < g.hi ? mp : g.hi;
                continue;
            }
            /* a batch within one chunk, then publish it */
            uint64_t n = g.hi - pg;
            uint64_t room = ZW_CHUNK - head % ZW_CHUNK;
            if (n > ZW_BATCH)
                n = ZW_BATCH;
            if (n > room)
                n = room;
            if (z->chunk[head / ZW_CHUNK] == NULL) {
                z->chunk[head / ZW_CHUNK] = malloc(ZW_CHUNK * sizeof(struct zw_ent));
                if (z->chunk[head / ZW_CHUNK] == NULL) {
                    quit = true;          /* the rest inline */
                    break;
                }
            }
            for (uint64_t i = 0; i < n; i++) {
                struct zw_ent *e = zw_slot(z, head + i);
                e->pgno = pg + i;
                edb__arch_zero_hash(&e->hash, z->page_size, pg + i);
            }
            head += n;
            pg += n;
            win += n;
            if (win >= ZW_CHECK) {
                double wall = zw_clock(CLOCK_MONOTONIC), cpu = zw_clock(CLOCK_THREAD_CPUTIME_ID);
                if (!valid || z->wait || cpu - cpu0 >= 0.5 * (wall - wall0))
                    starved = 0;
                else if (++starved == 2)
                    quit = true;         /* stop after publishing */
                wall0 = wall;
                cpu0 = cpu;
                win = 0;
                valid = true;
            }
            EDB_HB_BEFORE(&z->head);
            atomic_store_explicit(&z->head, head, memory_order_release);
            if (z->wait) {
                pthread_mutex_lock(&z->mu);
                if (z->main_waits)
                    pthread_cond_signal(&z->cv_main);
                pthread_mutex_unlock(&z->mu);
            }
            if (quit)
                break;
            if (head == ZW_CAP) {
                quit = true;             /* full (not reached: at most ZW_CAP pages are queued) */
                break;
            }
        }
        pthread_mutex_lock(&z->mu);
        if (quit)
            break;
    }
    z->done = true;
    pthread_cond_signal(&z->cv_main);
    pthread_mutex_unlock(&z->mu);
    return NULL;
}

static void
zw_init(struct zw *z, const edb__arch_header *h)
{
    memset(z, 0, sizeof *z);
    atomic_init(&z->stop, false);
    atomic_init(&z->head, 0);
    atomic_init(&z->mainp, 0);
    EDB_ATOMIC_VAR(&z->stop, sizeof z->stop);
    EDB_ATOMIC_VAR(&z->head, sizeof z->head);
    EDB_ATOMIC_VAR(&z->mainp, sizeof z->mainp);
    z->wait = edb__reader_zero_wait;
    z->page_size = h->page_size;
    z->lo = 2;
    if ((h->flags & EDB__ARCH_F_INCREMENTAL) && h->base_npages > z->lo)
        z->lo = h->base_npages;
    z->maxp = z->lo;
    z->qend = z->lo;
    if (pthread_mutex_init(&z->mu, NULL) != 0)
        z->failed = true;
    else if (pthread_cond_init(&z->cv_main, NULL) != 0) {
        pthread_mutex_destroy(&z->mu);
        z->failed = true;
    } else if (pthread_cond_init(&z->cv_work, NULL) != 0) {
        pthread_cond_destroy(&z->cv_main);
        pthread_mutex_destroy(&z->mu);
        z->failed = true;
    } else {
        z->inited = true;
    }
}

/* Hand the pending gaps to the worker (one lock for many gaps, and a wake-up
 * only when it sleeps), then start it once they are worth it. */
static void
zw_flush(struct zw *z)
{
    if (z->npend == 0)
        return;
    pthread_mutex_lock(&z->mu);
    if (z->gcap - z->ngaps < z->npend && z->gi > 0) {
        memmove(z->gaps, z->gaps + z->gi, (z->ngaps - z->gi) * sizeof *z->gaps);
        z->ngaps -= z->gi;
        z->gi = 0;
    }
    if (z->gcap - z->ngaps < z->npend) {
        size_t ncap = z->gcap ? z->gcap * 2 : 4 * ZW_PEND;
        while (ncap - z->ngaps < z->npend)
            ncap *= 2;
        struct zw_gap *g = realloc(z->gaps, ncap * sizeof *g);
        if (g == NULL) {
            pthread_mutex_unlock(&z->mu);
            z->npend = 0;
            z->queued = ZW_CAP;           /* nothing more queued: the rest inline */
            return;
        }
        z->gaps = g;
        z->gcap = ncap;
    }
    memcpy(z->gaps + z->ngaps, z->pend, z->npend * sizeof *z->gaps);
    z->ngaps += z->npend;
    z->npend = 0;
    z->pend_pages = 0;
    if (z->work_waits)
        pthread_cond_signal(&z->cv_work);
    pthread_mutex_unlock(&z->mu);
    if (!z->started && z->queued * z->page_size >= edb__reader_zero_min) {
        if (edb__sys_thread_create(&z->th, zw_main, z) == 0)
            z->started = true;
        else
            z->failed = true;
    }
}

/* Queue the pages [lo, hi).  Never fails: what cannot be queued is computed
 * inline by the table check. */
static void
zw_queue(struct zw *z, uint64_t lo, uint64_t hi)
{
    if (!z->inited || z->failed || z->queued >= ZW_CAP)
        return;
    if (hi - lo > ZW_CAP - z->queued)
        hi = lo + (ZW_CAP - z->queued);
    z->pend[z->npend++] = (struct zw_gap){ lo, hi };
    z->pend_pages += hi - lo;
    z->queued += hi - lo;
    z->qend = hi;
    if (z->npend == ZW_PEND || z->pend_pages >= ZW_FLUSH || z->queued >= ZW_CAP)
        zw_flush(z);
}

/* A carried page @pgno: queue the gap below it, if any. */
static inline void
zw_page(struct zw *z, uint64_t pgno)
{
    if (pgno < z->maxp || pgno == UINT64_MAX)
        return;
    if (pgno > z->maxp)
        zw_queue(z, z->maxp, pgno);
    z->maxp = pgno + 1;
}

/* The trailer: the tail gap, and no more. */
static void
zw_close(struct zw *z, uint64_t npages)
{
    if (npages > z->maxp)
        zw_queue(z, z->maxp, npages);
    if (z->inited && !z->failed)
        zw_flush(z);
    if (z->inited) {
        pthread_mutex_lock(&z->mu);
        z->closed = true;
        if (z->work_waits)
            pthread_cond_signal(&z->cv_work);
        pthread_mutex_unlock(&z->mu);
    }
}

/* The zero-page hash of @p if the worker computed it already; false: the
 * caller computes it inline (and the worker skips past it).  With
 * edb__reader_zero_wait (tests) it waits for a page the worker will compute.
 * Called with increasing @p. */
static bool
zw_take(struct zw *z, uint64_t p, edb__arch_hash *out)
{
    if (!z->started || p >= z->qend)
        return false;
    for (;;) {
        while (z->tail < z->seen) {
            const struct zw_ent *e = zw_slot(z, z->tail);
            if (e->pgno > p)
                goto inline_;
            z->tail++;
            if (e->pgno == p) {
                *out = e->hash;
                z->used++;
                return true;
            }
        }
        uint64_t head = atomic_load_explicit(&z->head, memory_order_acquire);
        if (head > z->seen) {
            EDB_HB_AFTER(&z->head);
            z->seen = head;
            continue;
        }
        if (!z->wait)
            goto inline_;
        pthread_mutex_lock(&z->mu);
        while (atomic_load_explicit(&z->head, memory_order_acquire) == z->seen && !z->done) {
            z->main_waits = true;
            pthread_cond_wait(&z->cv_main, &z->mu);
            z->main_waits = false;
        }
        head = atomic_load_explicit(&z->head, memory_order_acquire);
        pthread_mutex_unlock(&z->mu);
        if (head == z->seen)
            goto inline_;                 /* the worker stopped short */
        z->seen = head;
    }
inline_:
    atomic_store_explicit(&z->mainp, p + 1, memory_order_relaxed);
    return false;
}

/* Stop and join the worker, free everything. */
static void
zw_end(struct zw *z)
{
    if (z->started) {
        pthread_mutex_lock(&z->mu);
        atomic_store(&z->stop, true);
        pthread_cond_signal(&z->cv_work);
        pthread_mutex_unlock(&z->mu);
        pthread_join(z->th, NULL);
        z->started = false;
    }
    if (z->inited) {
        pthread_cond_destroy(&z->cv_work);
        pthread_cond_destroy(&z->cv_main);
        pthread_mutex_destroy(&z->mu);
        z->inited = false;
    }
    for (size_t i = 0; i < ZW_NCHUNK; i++) {
        free(z->chunk[i]);
        z->chunk[i] = NULL;
    }
    free(z->gaps);
    z->gaps = NULL;
}

/* Make at least @need bytes (at most INBUF) available unless the input ends
 * first.  The unconsumed rest moves to the front when @need does not fit
 * behind it or the buffer is filled past WINDOW, so that reads (READ_STEP
 * bytes, or what @need asks) land in memory that is still in cache: the copy
 * out of the page cache is most of a verify's cost. */
static int
fill(struct rd *r, size_t need)
{
    if (r->len - r->pos >= need || r->eof)
        return 0;
    if (INBUF - r->pos < need || r->len >= WINDOW) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    while (r->len - r->pos < need && !r->eof) {
        size_t room = INBUF - r->len;
        size_t want = r->pos + need - r->len;
        if (want < READ_STEP)
            want = READ_STEP;
        if (want > room)
            want = room;
        ssize_t n = edb__sys_read(r->fd, r->buf + r->len, want);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return edb__sys_err(errno, "reading the archive");
        }
        if (n == 0)
            r->eof = true;
        r->len += (size_t)n;
    }
    return 0;
}

static size_t
avail(const struct rd *r)
{
    return r->len - r->pos;
}

/* Consume @n bytes (*p points at them); they feed the archive hash unless
 * they are a frame's pages (@hash false) or the end block. */
static int
take_bytes(struct rd *r, size_t n, const uint8_t **p, const char *what, bool hash)
{
    EDB_RET(fill(r, n));
    if (avail(r) < n)
        return edb__err(EDB_CORRUPT, "truncated at offset %llu: the archive ends inside %s "
                        "(%zu of %zu bytes present)", (unsigned long long)(r->off + avail(r)),
                        what, avail(r), n);
    *p = r->buf + r->pos;
    if (r->hashing && hash)
        edb__arch_hstate_update(&r->hs, *p, n);
    r->pos += n;
    r->off += n;
    return 0;
}

static int
take(struct rd *r, size_t n, const uint8_t **p, const char *what)
{
    return take_bytes(r, n, p, what, true);
}

static int
carried_add(edb__archive *a, size_t *cap, uint64_t pgno, uint64_t frame, const edb__arch_hash *h)
{
    if (a->ncarried == *cap) {
        size_t ncap = *cap ? *cap * 2 : 1024;
        edb__carried *c = edb__sys_realloc(a->carried, ncap * sizeof *c);
        if (c == NULL)
            return edb__err(EDB_NOMEM, "archive reader: %zu carried pages", ncap);
        a->carried = c;
        *cap = ncap;
    }
    edb__carried *c = &a->carried[a->ncarried];
    c->pgno = pgno;
    c->order = a->ncarried;
    c->frame = frame;
    c->hash = *h;
    a->ncarried++;
    return 0;
}

static int
carried_cmp(const void *x, const void *y)
{
    const edb__carried *a = x, *b = y;
    if (a->pgno != b->pgno)
        return a->pgno < b->pgno ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

const edb__carried *
edb__archive_carried(const edb__archive *a, uint64_t pgno)
{
    size_t lo = 0, hi = a->ncarried;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->carried[mid].pgno < pgno)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < a->ncarried && a->carried[lo].pgno == pgno ? &a->carried[lo] : NULL;
}

/* Sort the carried pages, refuse repeats (unless low-pin) and pages past the
 * end, and keep the last occurrence of each. */
static int
carried_finish(edb__archive *a)
{
    const edb__arch_header *h = &a->header;
    /* A full or incremental archive carries its pages in increasing order
     * (they were appended in archive order): sort only when they are not. */
    bool sorted = true;
    for (size_t i = 1; i < a->ncarried && sorted; i++)
        sorted = carried_cmp(&a->carried[i - 1], &a->carried[i]) <= 0;
    if (!sorted)
        qsort(a->carried, a->ncarried, sizeof *a->carried, carried_cmp);
    size_t w = 0;
    for (size_t i = 0; i < a->ncarried; i++) {
        const edb__carried *c = &a->carried[i];
        if (c->pgno >= a->trailer.npages) {
            a->where = (edb__where){ (int64_t)c->frame, (int64_t)c->pgno, -1 };
            return edb__err(EDB_CORRUPT, "frame %llu carries page %llu, past the end of the "
                            "snapshot (npages %llu)", (unsigned long long)c->frame,
                            (unsigned long long)c->pgno, (unsigned long long)a->trailer.npages);
        }
        if (w > 0 && a->carried[w - 1].pgno == c->pgno) {
            if (!(h->flags & EDB__ARCH_F_LOW_PIN)) {
                a->where = (edb__where){ (int64_t)c->frame, (int64_t)c->pgno, -1 };
                return edb__err(EDB_CORRUPT, "page %llu appears in frame %llu and again in frame "
                                "%llu (only a low-pin archive may repeat a page)",
                                (unsigned long long)c->pgno,
                                (unsigned long long)a->carried[w - 1].frame,
                                (unsigned long long)c->frame);
            }
            a->carried[w - 1] = *c;       /* the later frame wins */
            continue;
        }
        a->carried[w++] = *c;
    }
    a->ncarried = w;
    return 0;
}

/* Check one page of frame @fr against its entry and hand it on (or report
 * it bad); shared by both frame layouts. */
static int
page_check(edb__archive *a, const edb__reader_cbs *cbs, uint64_t fr, uint64_t foff,
           const edb__arch_entry *ent, const uint8_t *page, uint64_t poff, uint64_t *nbad,
           char *first_bad, size_t first_sz)
{
    const edb__arch_header *h = &a->header;
    uint64_t pgno = ent->pgno;
    a->where = (edb__where){ (int64_t)fr, (int64_t)pgno, (int64_t)poff };
    edb__arch_hash ph;
    edb__arch_page_hash(&ph, page, h->page_size, pgno);
    if (!edb__arch_hash_eq(&ph, &ent->hash)) {
        int rc = edb__err(EDB_CHECKSUM, "frame %llu at offset %llu: page %llu (at offset "
                          "%llu%s): hash mismatch (the page was altered)",
                          (unsigned long long)fr, (unsigned long long)foff,
                          (unsigned long long)pgno, (unsigned long long)poff,
                          h->version == EDB__ARCH_VERSION_Z ? ", in the frame's payload" : "");
        if (cbs == NULL || cbs->on_bad_page == NULL)
            return rc;
        if ((*nbad)++ == 0)
            snprintf(first_bad, first_sz, "%s", edb_error_last_message());
        cbs->on_bad_page(cbs->ctx, &a->where);
    } else if (cbs != NULL && cbs->on_page != NULL) {
        EDB_RET(cbs->on_page(cbs->ctx, h, fr, pgno, page, &ph));
    }
    return 0;
}

/* A version-3 frame (doc/backup-format.md "Version 3"): its header (hashed
 * into the archive hash), its payload (not hashed: the page hashes cover the
 * pages), decompressed into r->zout when it is compressed.  A payload that
 * does not decompress to exactly its pages is EDB_CHECKSUM naming every page
 * of the frame (reported one by one through on_bad_page when it is set). */
static int
read_zframe(struct rd *r, edb__archive *a, const edb__reader_cbs *cbs, edb__arch_frame *f,
            uint64_t fr, uint64_t *nbad, char *first_bad, size_t first_sz)
{
    const edb__arch_header *h = &a->header;
    uint64_t foff = r->off;
    uint32_t count, method, stored;
    if (avail(r) < EDB__ARCH_ZFIXED)
        return edb__err(EDB_CORRUPT, "truncated at offset %llu: the archive ends inside the header "
                        "of frame %llu", (unsigned long long)(r->off + avail(r)),
                        (unsigned long long)fr);
    EDB_RET(edb__arch_zframe_count(&count, r->buf + r->pos, fr, foff));
    const uint8_t *hdr, *payload;
    EDB_RET(take(r, EDB__ARCH_ZHDR_SIZE(count), &hdr, "a frame header"));
    EDB_RET(edb__arch_zframe_decode(f, &method, &stored, hdr, h, fr, foff));
    /* The header is the sealed payload's additional data: kept, because
     * taking the payload may move the input buffer. */
    uint8_t hcopy[EDB__ARCH_BLOCK];
    size_t hl = EDB__ARCH_ZHDR_SIZE(count);
    memcpy(hcopy, hdr, hl);
    uint64_t zoff = r->off;
    a->where = (edb__where){ (int64_t)fr, (int64_t)f->entries[0].pgno, (int64_t)zoff };
    /* stored <= count * page_size (decode's rule): at most a frame's bytes. */
    EDB_RET(take_bytes(r, stored, &payload, "a frame's payload", false));
    size_t raw = (size_t)count * h->page_size;
    const uint8_t *pages = payload;
    int zrc = 0;
    char what[96];
    snprintf(what, sizeof what, "frame %llu at offset %llu", (unsigned long long)fr,
             (unsigned long long)foff);
    if (h->cipher != EDB__ARCH_CIPHER_NONE) {
        /* stored - EDB__ARCH_SEAL <= raw (decode's rule) */
        size_t plen = stored - EDB__ARCH_SEAL;
        if (r->dcap < plen) {
            uint8_t *d = edb__sys_realloc(r->dout, plen);
            if (d == NULL)
                return edb__err(EDB_NOMEM, "archive reader: a frame of %zu bytes", plen);
            r->dout = d;
            r->dcap = plen;
        }
        zrc = edb__unseal(r->dout, payload, stored, hcopy, hl - 16, cbs->key, what);
        if (zrc != 0 && zrc != EDB_CHECKSUM)
            return zrc;
        payload = r->dout;
        pages = payload;
        stored = (uint32_t)plen;
    }
    if (zrc == 0 && method == EDB__ARCH_ZM_ZSTD) {
        if (r->zcap < raw) {
            uint8_t *z = edb__sys_realloc(r->zout, raw);
            if (z == NULL)
                return edb__err(EDB_NOMEM, "archive reader: a frame of %zu bytes", raw);
            r->zout = z;
            r->zcap = raw;
        }
        zrc = edb__codec_decompress(&r->codec, r->zout, raw, payload, stored, what);
        if (zrc != 0 && zrc != EDB_CORRUPT)
            return zrc;
        pages = r->zout;
    }
    {
        if (zrc != 0) {
            char why[200];
            snprintf(why, sizeof why, "%s", edb_error_last_message());
            if (cbs == NULL || cbs->on_bad_page == NULL)
                return edb__err(EDB_CHECKSUM, "%s: its %u pages (%llu .. %llu) are lost", why,
                                count, (unsigned long long)f->entries[0].pgno,
                                (unsigned long long)f->entries[count - 1].pgno);
            for (uint32_t i = 0; i < count; i++) {
                a->where = (edb__where){ (int64_t)fr, (int64_t)f->entries[i].pgno, (int64_t)zoff };
                (void)edb__err(EDB_CHECKSUM, "%s: page %llu is lost", why,
                               (unsigned long long)f->entries[i].pgno);
                if ((*nbad)++ == 0)
                    snprintf(first_bad, first_sz, "%s", edb_error_last_message());
                cbs->on_bad_page(cbs->ctx, &a->where);
            }
            return 0;
        }
    }
    for (uint32_t i = 0; i < count; i++)
        EDB_RET(page_check(a, cbs, fr, foff, &f->entries[i], pages + (size_t)i * h->page_size,
                           zoff + (method == EDB__ARCH_ZM_STORED ? (uint64_t)i * h->page_size : 0),
                           nbad, first_bad, first_sz));
    return 0;
}

static int
read_frames(struct rd *r, edb__archive *a, const edb__reader_cbs *cbs, uint64_t *frames,
            uint64_t *pages, uint64_t *nbad, char *first_bad, size_t first_sz)
{
    const edb__arch_header *h = &a->header;
    size_t cap = 0;
    edb__arch_frame f;
    for (;;) {
        EDB_RET(fill(r, EDB__ARCH_BLOCK));
        a->where = (edb__where){ -1, -1, (int64_t)r->off };
        if (avail(r) == 0)
            return edb__err(EDB_CORRUPT, "truncated at offset %llu: the archive ends where frame "
                            "%llu or the trailer was expected (an interrupted backup?)",
                            (unsigned long long)r->off, (unsigned long long)*frames);
        if (avail(r) < EDB__ARCH_BLOCK)
            return edb__err(EDB_CORRUPT, "truncated at offset %llu: the archive ends inside a "
                            "block (%zu of %u bytes present)",
                            (unsigned long long)(r->off + avail(r)), avail(r), EDB__ARCH_BLOCK);
        edb__arch_kind kind = edb__arch_block_kind(r->buf + r->pos);
        if (kind == EDB__ARCH_TRAILER)
            return 0;
        if (h->version == EDB__ARCH_VERSION_Z && memcmp(r->buf + r->pos, EDB__ARCH_MAGIC_ZFRAME, 4) == 0) {
            a->where.frame = (int64_t)*frames;
            EDB_RET(read_zframe(r, a, cbs, &f, *frames, nbad, first_bad, first_sz));
            for (uint32_t i = 0; i < f.count; i++) {
                zw_page(r->zw, f.entries[i].pgno);
                EDB_RET(carried_add(a, &cap, f.entries[i].pgno, *frames, &f.entries[i].hash));
                (*pages)++;
            }
            if (cbs != NULL && cbs->on_frame_end != NULL && *nbad == 0)
                EDB_RET(cbs->on_frame_end(cbs->ctx, h, *frames));
            (*frames)++;
            continue;
        }
        if (h->version == EDB__ARCH_VERSION_Z && kind == EDB__ARCH_FRAME)
            kind = EDB__ARCH_UNKNOWN;     /* a version-2 frame has no place here */
        if (kind != EDB__ARCH_FRAME)
            return edb__err(EDB_CORRUPT, "expected frame or trailer at offset %llu (frame %llu), "
                            "found %s", (unsigned long long)r->off, (unsigned long long)*frames,
                            kind == EDB__ARCH_UNKNOWN ? "unrecognised bytes" : edb__arch_kind_name(kind));
        uint64_t foff = r->off;
        const uint8_t *blk;
        a->where.frame = (int64_t)*frames;
        EDB_RET(take(r, EDB__ARCH_BLOCK, &blk, "a frame header"));
        EDB_RET(edb__arch_frame_decode(&f, blk, h, *frames, foff));
        /* The whole frame in the buffer (see the invariant at the top); a
         * short archive is reported by take() below. */
        EDB_RET(fill(r, (size_t)f.count * h->page_size));
        for (uint32_t i = 0; i < f.count; i++) {
            const uint8_t *page;
            uint64_t pgno = f.entries[i].pgno;
            a->where = (edb__where){ (int64_t)*frames, (int64_t)pgno, (int64_t)r->off };
            uint64_t poff = r->off;
            EDB_RET(take_bytes(r, h->page_size, &page, "a page", false));
            EDB_RET(page_check(a, cbs, *frames, foff, &f.entries[i], page, poff, nbad, first_bad,
                               first_sz));
            zw_page(r->zw, pgno);
            EDB_RET(carried_add(a, &cap, pgno, *frames, &f.entries[i].hash));
            (*pages)++;
        }
        if (cbs != NULL && cbs->on_frame_end != NULL && *nbad == 0)
            EDB_RET(cbs->on_frame_end(cbs->ctx, h, *frames));
        (*frames)++;
    }
}

static int
read_table(struct rd *r, edb__archive *a, uint8_t *scratch, bool keep)
{
    const edb__arch_header *h = &a->header;
    uint64_t npages = a->trailer.npages;
    uint64_t tbytes = edb__arch_table_bytes(npages);
    size_t cap = 0, k = 0;
    uint64_t p = 0;
    edb__arch_hash meta_hash[2];
    edb__arch_meta_hash(&meta_hash[0], scratch, h->page_size, a->trailer.meta, 0);
    edb__arch_meta_hash(&meta_hash[1], scratch, h->page_size, a->trailer.meta, 1);
    bool incremental = (h->flags & EDB__ARCH_F_INCREMENTAL) != 0;
    for (uint64_t done = 0; done < tbytes; done += EDB__ARCH_BLOCK) {
        const uint8_t *blk;
        uint64_t boff = r->off;
        a->where = (edb__where){ -1, (int64_t)p, (int64_t)boff };
        EDB_RET(take(r, EDB__ARCH_BLOCK, &blk, "the page hash table"));
        for (size_t i = 0; i < EDB__ARCH_BLOCK; i += EDB__ARCH_TABLE_ENTRY) {
            const uint8_t *e = blk + i;
            uint64_t eoff = boff + i;
            if (p >= npages) {
                for (size_t j = 0; j < EDB__ARCH_TABLE_ENTRY; j++)
                    if (e[j] != 0) {
                        a->where = (edb__where){ -1, -1, (int64_t)(eoff + j) };
                        return edb__err(EDB_CORRUPT, "page hash table: padding byte at offset "
                                        "%llu is not zero", (unsigned long long)(eoff + j));
                    }
                continue;
            }
            edb__arch_hash one;
            edb__arch_hash *ent = &one;
            if (keep && p == cap) {
                size_t ncap = cap ? cap * 2 : 4096;
                if (ncap > npages)
                    ncap = (size_t)npages;
                edb__arch_hash *t = edb__sys_realloc(a->table, ncap * sizeof *t);
                if (t == NULL)
                    return edb__err(EDB_NOMEM, "archive reader: page hash table of %zu entries",
                                    ncap);
                a->table = t;
                cap = ncap;
            }
            if (keep)
                ent = &a->table[p];
            memcpy(ent->b, e, EDB__ARCH_TABLE_ENTRY);
            /* carried is sorted by pgno and p only grows: walk it */
            while (k < a->ncarried && a->carried[k].pgno < p)
                k++;
            const edb__carried *c = p >= 2 && k < a->ncarried && a->carried[k].pgno == p
                                        ? &a->carried[k] : NULL;
            edb__arch_hash want;
            const char *why;
            bool known = true;
            if (p < 2) {
                want = meta_hash[p];
                why = "the meta page synthesised from the trailer";
            } else if (c != NULL) {
                want = c->hash;
                why = "the page the frames carry";
            } else if (!incremental || p >= h->base_npages) {
                if (!zw_take(r->zw, p, &want))
                    edb__arch_zero_hash(&want, h->page_size, p);
                why = "a zero page (the frames do not carry it)";
            } else {
                known = false;
                why = "";
                a->unchecked++;
            }
            if (known && !edb__arch_hash_eq(&want, ent)) {
                a->where = (edb__where){ c ? (int64_t)c->frame : -1, (int64_t)p, (int64_t)eoff };
                return edb__err(EDB_CHECKSUM, "page hash table entry %llu (offset %llu) does not "
                                "match %s", (unsigned long long)p, (unsigned long long)eoff, why);
            }
            p++;
        }
    }
    return 0;
}

int
edb__reader_read(edb__archive *out, int fd, const edb__reader_cbs *cbs)
{
    int ret = 0;
    uint64_t nbad = 0;
    char first_bad[400] = "";
    uint8_t *scratch = NULL;
    memset(out, 0, sizeof *out);
    out->where = (edb__where){ -1, -1, 0 };
    struct rd r;
    memset(&r, 0, sizeof r);
    r.fd = fd;
    r.hashing = true;
    edb__arch_hstate_reset(&r.hs);
    struct zw zw;
    memset(&zw, 0, sizeof zw);
    r.zw = &zw;
    r.buf = edb__sys_malloc(INBUF);
    if (r.buf == NULL)
        return edb__err(EDB_NOMEM, "archive reader: input buffer");

    const uint8_t *blk;
    EDB_ERR(fill(&r, EDB__ARCH_BLOCK));
    if (avail(&r) == 0)
        EDB_ERR(edb__err(EDB_CORRUPT, "the archive is empty (0 bytes)"));
    EDB_ERR(take(&r, EDB__ARCH_BLOCK, &blk, "the header"));
    EDB_ERR(edb__arch_header_decode(&out->header, blk, 0));
    if (out->header.cipher != EDB__ARCH_CIPHER_NONE) {
        /* The key first: nothing of an encrypted archive is read without it. */
        char hid[33], kid[33];
        edb__arch_hex(hid, out->header.key_id, 16);
        if (cbs == NULL || cbs->key == NULL)
            EDB_ERR(edb__err(EDB_AUTH, "the archive is encrypted (key id %s): its key is needed", hid));
        uint8_t id[EDB__KEY_ID_BYTES];
        EDB_ERR(edb__key_id(id, cbs->key));
        if (memcmp(id, out->header.key_id, sizeof id) != 0) {
            edb__arch_hex(kid, id, 16);
            EDB_ERR(edb__err(EDB_AUTH, "the archive is encrypted with key id %s, the key given is "
                             "key id %s (a wrong key)", hid, kid));
        }
    }
    if (cbs != NULL && cbs->on_header != NULL)
        EDB_ERR(cbs->on_header(cbs->ctx, &out->header));
    zw_init(&zw, &out->header);
    scratch = edb__sys_malloc(out->header.page_size);
    if (scratch == NULL)
        EDB_ERR(edb__err(EDB_NOMEM, "archive reader: page buffer"));

    uint64_t frames = 0, pages = 0;
    EDB_ERR(read_frames(&r, out, cbs, &frames, &pages, &nbad, first_bad, sizeof first_bad));
    uint64_t toff = r.off;
    out->where = (edb__where){ -1, -1, (int64_t)toff };
    EDB_ERR(take(&r, EDB__ARCH_BLOCK, &blk, "the trailer"));
    EDB_ERR(edb__arch_trailer_decode(&out->trailer, blk, &out->header, frames, pages, toff));
    EDB_ERR(carried_finish(out));
    /* A full archive's size must be justified by what it carries (the size
     * rule, archive.h), checked before its page hash table is read: memory
     * and restore's data.mdb follow real content, not the trailer's claim.
     * An incremental's own carried pages prove nothing about its base's:
     * verify and restore check the whole chain (edb__chain_room). */
    if (!(out->header.flags & EDB__ARCH_F_INCREMENTAL) &&
        !edb__arch_size_justified(out->trailer.npages, out->ncarried, out->header.page_size)) {
        out->where = (edb__where){ -1, -1, (int64_t)toff };
        EDB_ERR(edb__err(EDB_CORRUPT, "trailer at offset %llu: the snapshot has %llu pages, but the "
                         "archive carries only %zu of them: the %llu others would be free pages, "
                         "more than a free list in those pages can list (%llu); a forged or damaged "
                         "trailer", (unsigned long long)toff,
                         (unsigned long long)out->trailer.npages, out->ncarried,
                         (unsigned long long)(out->trailer.npages - 2 - out->ncarried),
                         (unsigned long long)((uint64_t)out->ncarried * (out->header.page_size / 8) +
                                              EDB__ARCH_FREE_SLACK)));
    }
    zw_close(&zw, out->trailer.npages);
    EDB_ERR(read_table(&r, out, scratch, cbs == NULL || !cbs->drop_table));
    out->zero_ahead = zw.used;
    /* Damaged pages also break the archive hash; report them, not that, and
     * with the first one's own detail: the first problem in archive order,
     * word for word what a restore (which stops there) reports. */
    if (nbad != 0)
        EDB_ERR(edb__err(EDB_CHECKSUM, "%s", first_bad));

    edb__arch_hash ah;
    edb__arch_hstate_digest(&r.hs, &ah);
    r.hashing = false;
    uint64_t eoff = r.off;
    out->where = (edb__where){ -1, -1, (int64_t)eoff };
    EDB_ERR(fill(&r, EDB__ARCH_BLOCK));
    if (avail(&r) == 0)
        EDB_ERR(edb__err(EDB_CORRUPT, "truncated at offset %llu: the end block is missing (an "
                         "interrupted backup?)", (unsigned long long)eoff));
    EDB_ERR(take(&r, EDB__ARCH_BLOCK, &blk, "the end block"));
    EDB_ERR(edb__arch_end_decode(&out->end, blk, &out->header, &ah, eoff));
    out->length = r.off;
    EDB_ERR(fill(&r, 1));
    if (avail(&r) > 0) {
        out->where = (edb__where){ -1, -1, (int64_t)r.off };
        EDB_ERR(edb__err(EDB_CORRUPT, "%s bytes after the end block at offset %llu (nothing may "
                         "follow it)", r.eof ? "unexpected" : "more", (unsigned long long)r.off));
    }
err:
    zw_end(&zw);
    free(scratch);
    free(r.buf);
    free(r.zout);
    free(r.dout);
    edb__codec_free(&r.codec);
    return ret;
}

void
edb__archive_free(edb__archive *a)
{
    if (a == NULL)
        return;
    free(a->table);
    free(a->carried);
    a->table = NULL;
    a->carried = NULL;
    a->ncarried = 0;
}

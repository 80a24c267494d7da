/*
 * ring.c: the bounded ring between a copier and the readers of its stream,
 * and the stream's cancel protocol (see ring.h and doc/threading.md).
 *
 * The protocol lives in six functions, each one critical section:
 *   edb__ring_reserve      copier: wait while full and not canceled
 *   edb__ring_commit       copier: publish a slot, broadcast not_empty
 *   edb__ring_sleep_until  copier: rate limiter, timed wait on not_full
 *   edb__ring_finish       copier: the one exit: record error, done, broadcast both
 *   edb__ring_cancel       any:    canceled = true, broadcast both, signal the
 *                          consumer's wake-up descriptor (edb__ring_set_wake)
 *   edb__ring_read         reader: wait while empty, not done, not canceled
 *   edb__ring_drain        copier: after finish, wait until a reader was given
 *                          the end or the error, or canceled, and no reader is
 *                          inside (as reserve waits); then the copier frees the
 *                          slot memory (edb__ring_release_mem), not the last put
 *
 * Invariants
 * - `canceled`, `done`, `err`, `head`, `tail`, `count`, `waiting` change only
 *   under `mu`; every wait is a loop that re-checks `canceled`.
 * - No function here calls anything that blocks (I/O, join, LMDB) while it
 *   holds `mu`; slot bytes are copied by their owner without the mutex.
 * - A reader never waits once it has copied a byte: it returns what it has.
 * - Zero-copy slots (niov > 0) point into memory outside the ring (the
 *   copier's read-only map of the snapshot); the copier keeps that memory
 *   valid and the snapshot pinned until edb__ring_drain() says every slot was
 *   drained, or the stream is canceled (then nothing written from it is kept).
 *
 * Thread safety: one copier and one reader at a time; cancel from any thread.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ring.h"
#include "sys.h"

#define RING_DEFAULT_BYTES ((size_t)8 << 20)
/* Zero-copy slots hold a 4 KiB block and references: more of them cost
 * little memory (of each slot's buffer only the header block is touched for
 * a frame) and let the sink write larger batches.  256 MiB of frames: the
 * sink writes up to half of them, 128 MiB, in one writev, which with 2 iovec
 * entries a frame is what IOV_MAX allows.  On the 2-core VM an O_DIRECT
 * writev of 16 MiB (the old 32 MiB ring) ran at about 1.6 GB/s, one of
 * 100 MiB and more at about 2 GB/s, like mdb_copy's single write
 * (doc/performance.md, "Backup on five data shapes"). */
#define RING_DEFAULT_ZC_BYTES ((size_t)256 << 20)
#define RING_MIN_SLOTS 2
#define RING_GATHER_MAX 1024u      /* IOV_MAX on Linux: one writev */

static void
ring_free_mem(edb__ring *r)
{
    free(r->slots);
    free(r->mem);
    free(r->iovmem);
    free(r->gather);
    r->slots = NULL;
    r->mem = NULL;
    r->iovmem = NULL;
    r->gather = NULL;
}

int
edb__ring_init(edb__ring *r, size_t ring_bytes, size_t slot_bytes, size_t slot_cap, unsigned slot_iov)
{
    memset(r, 0, sizeof *r);
    r->wake_fd = -1;
    if (ring_bytes == 0)
        ring_bytes = slot_iov > 0 ? RING_DEFAULT_ZC_BYTES : RING_DEFAULT_BYTES;
    size_t n = ring_bytes / slot_bytes;
    if (n < RING_MIN_SLOTS)
        n = RING_MIN_SLOTS;
    if (n > SIZE_MAX / slot_cap / 2)
        return edb__err(EDB_INVAL, "backup ring of %zu bytes is too large", ring_bytes);
    r->nslots = n;
    r->slot_cap = slot_cap;
    r->slot_iov = slot_iov;
    size_t ng = n * (slot_iov ? slot_iov : 1);
    r->ngather = ng < RING_GATHER_MAX ? (unsigned)ng : RING_GATHER_MAX;
    r->slots = edb__sys_calloc(n, sizeof *r->slots);
    /* Page-aligned: a consumer may hand slots to write() on an O_DIRECT file. */
    r->mem = edb__sys_aligned_alloc(4096, n * slot_cap);
    r->gather = edb__sys_calloc(r->ngather, sizeof *r->gather);
    if (slot_iov > 0)
        r->iovmem = edb__sys_calloc(n * slot_iov, sizeof *r->iovmem);
    if (r->slots == NULL || r->mem == NULL || r->gather == NULL || (slot_iov > 0 && r->iovmem == NULL)) {
        ring_free_mem(r);
        return edb__err(EDB_NOMEM, "backup ring: %zu slots of %zu bytes", n, slot_cap);
    }
    for (size_t i = 0; i < n; i++) {
        r->slots[i].buf = r->mem + i * slot_cap;
        if (slot_iov > 0)
            r->slots[i].iov = r->iovmem + i * slot_iov;
    }

    pthread_condattr_t ca;
    int e = pthread_condattr_init(&ca);
    if (e == 0) {
        e = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (e == 0)
            e = pthread_cond_init(&r->not_full, &ca);
        if (e == 0) {
            e = pthread_cond_init(&r->not_empty, &ca);
            if (e != 0)
                pthread_cond_destroy(&r->not_full);
        }
        pthread_condattr_destroy(&ca);
    }
    if (e == 0) {
        e = pthread_mutex_init(&r->mu, NULL);
        if (e != 0) {
            pthread_cond_destroy(&r->not_full);
            pthread_cond_destroy(&r->not_empty);
        }
    }
    if (e != 0) {
        ring_free_mem(r);
        return edb__sys_err(e, "backup ring: initialising its mutex and conditions");
    }
    return 0;
}

void
edb__ring_destroy(edb__ring *r)
{
    if (r->slots == NULL)
        return;
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->not_full);
    pthread_cond_destroy(&r->not_empty);
    ring_free_mem(r);
}

/* ---- copier side ---------------------------------------------------------- */

int
edb__ring_reserve(edb__ring *r, uint8_t **out)
{
    *out = NULL;
    pthread_mutex_lock(&r->mu);
    while (!r->canceled && r->count == r->nslots)
        pthread_cond_wait(&r->not_full, &r->mu);
    int rc = r->canceled ? EDB_CANCELED : 0;
    if (rc == 0)
        *out = r->slots[r->head].buf;     /* not in [tail, tail + count): ours until commit */
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static void
commit(edb__ring *r, size_t len, unsigned niov, uint64_t mark)
{
    pthread_mutex_lock(&r->mu);
    r->slots[r->head].mark = mark;
    r->slots[r->head].len = len;
    r->slots[r->head].off = 0;
    r->slots[r->head].niov = niov;
    r->head = (r->head + 1) % r->nslots;
    r->count++;
    pthread_cond_broadcast(&r->not_empty);
    pthread_mutex_unlock(&r->mu);
}

void
edb__ring_commit(edb__ring *r, size_t len)
{
    commit(r, len, 0, 0);
}

struct iovec *
edb__ring_slot_iov(edb__ring *r)
{
    /* head is moved only by this (the copier's) thread: no lock needed to read it */
    return r->slots[r->head].iov;
}

void
edb__ring_commit_iov(edb__ring *r, size_t len, unsigned niov)
{
    commit(r, len, niov, 0);
}

void
edb__ring_commit_iov_mark(edb__ring *r, size_t len, unsigned niov, uint64_t mark)
{
    commit(r, len, niov, mark);
}

uint64_t
edb__ring_mark_done(edb__ring *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t m = r->mark_done;
    pthread_mutex_unlock(&r->mu);
    return m;
}

int
edb__ring_drain_step(edb__ring *r, uint64_t *mark, bool *drained)
{
    pthread_mutex_lock(&r->mu);
    while (((!r->canceled && !r->drained) || r->reading) && r->mark_done <= *mark)
        pthread_cond_wait(&r->not_full, &r->mu);
    int rc = r->canceled ? EDB_CANCELED : 0;
    *drained = (r->canceled || r->drained) && !r->reading;
    *mark = r->mark_done;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int
edb__ring_drain(edb__ring *r)
{
    pthread_mutex_lock(&r->mu);
    while ((!r->canceled && !r->drained) || r->reading)
        pthread_cond_wait(&r->not_full, &r->mu);
    int rc = r->canceled ? EDB_CANCELED : 0;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void
edb__ring_release_mem(edb__ring *r)
{
    pthread_mutex_lock(&r->mu);
    uint8_t *mem = r->mem;
    struct iovec *iovmem = r->iovmem;
    r->mem = NULL;                     /* slots[].buf and .iov dangle: never used again */
    r->iovmem = NULL;
    pthread_mutex_unlock(&r->mu);
    free(mem);
    free(iovmem);
}

/* Under r->mu, a reader leaving: give the role back; when no reader will
 * touch a slot again, wake a copier waiting in edb__ring_drain(). */
static void
reader_leave(edb__ring *r)
{
    r->reading = false;
    if (r->canceled || r->drained)
        pthread_cond_broadcast(&r->not_full);
}

int
edb__ring_sleep_until(edb__ring *r, const struct timespec *deadline)
{
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        if (r->canceled) {
            rc = EDB_CANCELED;
            break;
        }
        /* Woken early by a reader freeing a slot (not_full is shared): loop. */
        if (pthread_cond_timedwait(&r->not_full, &r->mu, deadline) == ETIMEDOUT) {
            rc = r->canceled ? EDB_CANCELED : 0;
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void
edb__ring_finish(edb__ring *r, int rc, const char *detail)
{
    pthread_mutex_lock(&r->mu);
    r->done = true;
    r->err = rc;
    if (rc != 0 && detail != NULL)
        snprintf(r->errmsg, sizeof r->errmsg, "%s", detail);
    pthread_cond_broadcast(&r->not_empty);
    pthread_cond_broadcast(&r->not_full);
    pthread_mutex_unlock(&r->mu);
}

/* ---- any thread ----------------------------------------------------------- */

void
edb__ring_cancel(edb__ring *r)
{
    pthread_mutex_lock(&r->mu);
    r->canceled = true;
    pthread_cond_broadcast(&r->not_full);
    pthread_cond_broadcast(&r->not_empty);
    /* Under mu: the consumer unregisters its descriptor under mu before it
     * closes it.  An eventfd write never blocks: not I/O in rule 3's sense. */
    if (r->wake_fd >= 0)
        edb__sys_wake_signal(r->wake_fd);
    pthread_mutex_unlock(&r->mu);
}

void
edb__ring_set_wake(edb__ring *r, int fd)
{
    pthread_mutex_lock(&r->mu);
    r->wake_fd = fd;
    if (fd >= 0 && r->canceled)
        edb__sys_wake_signal(fd);
    pthread_mutex_unlock(&r->mu);
}

bool
edb__ring_is_canceled(edb__ring *r)
{
    pthread_mutex_lock(&r->mu);
    bool c = r->canceled;
    pthread_mutex_unlock(&r->mu);
    return c;
}

unsigned
edb__ring_waiting(edb__ring *r)
{
    pthread_mutex_lock(&r->mu);
    unsigned w = r->waiting;
    pthread_mutex_unlock(&r->mu);
    return w;
}

/* ---- reader side ---------------------------------------------------------- */

/* Under r->mu: take the reader's role and wait until a slot is filled, the
 * copier is done, or the stream is canceled.  Returns 0 with the role taken
 * (the caller gives it back with r->reading = false), 1 when the end was
 * delivered already (nothing to read, nothing left to cancel), or EDB_INVAL
 * when another thread is reading. */
static int
reader_enter(edb__ring *r)
{
    if (r->eof)
        return 1;
    if (r->reading)
        return edb__err(EDB_INVAL, "backup stream: another thread is reading it");
    r->reading = true;
    r->waiting++;
    while (!r->canceled && r->count == 0 && !r->done)
        pthread_cond_wait(&r->not_empty, &r->mu);
    r->waiting--;
    return 0;
}

/* Under r->mu, when a reader that has taken nothing finds no slot to take:
 * EDB_CANCELED, the copier's error once its bytes are drained, or 0 at the
 * end (delivered once: later reads return 0 at once). */
static int
reader_stop(edb__ring *r)
{
    if (r->canceled)
        return edb__err(EDB_CANCELED, "backup stream was closed or the backup stopped");
    r->drained = true;                 /* done and count == 0: the slots are finished with */
    if (r->err != 0)
        return edb__err(r->err, "%s", r->errmsg[0] ? r->errmsg : edb_strerror(r->err));
    r->eof = true;
    return 0;
}

/* Under r->mu: the reader has taken n more bytes, from the oldest slot on;
 * each slot taken whole goes back to the copier. */
static void
reader_took(edb__ring *r, size_t n)
{
    bool freed = false;
    while (n > 0 && r->count > 0) {
        edb__slot *sl = &r->slots[r->tail];
        size_t k = sl->len - sl->off;
        if (k > n)
            k = n;
        sl->off += k;
        n -= k;
        if (sl->off < sl->len)
            break;
        if (sl->mark > r->mark_done)
            r->mark_done = sl->mark;
        r->tail = (r->tail + 1) % r->nslots;
        r->count--;
        freed = true;
    }
    if (freed)
        pthread_cond_broadcast(&r->not_full);
}

/* Up to @max iovec entries for the unread bytes of slot @sl, into @out;
 * *bytes gets their total.  Called by the slot's owner (the reader). */
static unsigned
slot_gather(const edb__slot *sl, struct iovec *out, unsigned max, size_t *bytes)
{
    *bytes = 0;
    if (max == 0 || sl->off == sl->len)
        return 0;
    if (sl->niov == 0) {
        out[0].iov_base = sl->buf + sl->off;
        out[0].iov_len = sl->len - sl->off;
        *bytes = out[0].iov_len;
        return 1;
    }
    size_t skip = sl->off;
    unsigned k = 0;
    for (unsigned i = 0; i < sl->niov && k < max; i++) {
        size_t len = sl->iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        out[k].iov_base = (uint8_t *)sl->iov[i].iov_base + skip;
        out[k].iov_len = len - skip;
        *bytes += out[k].iov_len;
        skip = 0;
        k++;
    }
    return k;
}

/* Copy @n unread bytes of slot @sl (n <= len - off) to @dst (owner only). */
static void
slot_copy(const edb__slot *sl, uint8_t *dst, size_t n)
{
    if (sl->niov == 0) {
        memcpy(dst, sl->buf + sl->off, n);
        return;
    }
    size_t skip = sl->off;
    for (unsigned i = 0; i < sl->niov && n > 0; i++) {
        size_t len = sl->iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        size_t k = len - skip < n ? len - skip : n;
        memcpy(dst, (const uint8_t *)sl->iov[i].iov_base + skip, k);
        dst += k;
        n -= k;
        skip = 0;
    }
}

int
edb__ring_read(edb__ring *r, void *buf, size_t size, size_t *nread)
{
    uint8_t *dst = buf;
    size_t got = 0;

    *nread = 0;
    pthread_mutex_lock(&r->mu);
    int rc = reader_enter(r);
    if (rc != 0) {
        pthread_mutex_unlock(&r->mu);
        return rc < 0 ? rc : 0;
    }
    while (got < size) {
        if (r->canceled || r->count == 0) {
            /* Bytes already copied are returned; the next call sees the
             * cancel or the end.  Never wait once something was copied. */
            if (got == 0)
                rc = reader_stop(r);
            break;
        }
        edb__slot *sl = &r->slots[r->tail];
        size_t n = sl->len - sl->off;
        if (n > size - got)
            n = size - got;
        /* The slot is ours (it is in [tail, tail + count)): copy without the mutex. */
        pthread_mutex_unlock(&r->mu);
        slot_copy(sl, dst + got, n);
        pthread_mutex_lock(&r->mu);
        got += n;
        reader_took(r, n);
    }
    reader_leave(r);
    pthread_mutex_unlock(&r->mu);
    *nread = got;
    return rc;
}

int
edb__ring_consume(edb__ring *r, edb__ring_sink_fn fn, void *ctx, size_t *nconsumed)
{
    *nconsumed = 0;
    pthread_mutex_lock(&r->mu);
    int rc = reader_enter(r);
    if (rc != 0) {
        pthread_mutex_unlock(&r->mu);
        return rc < 0 ? rc : 0;
    }
    if (r->canceled || r->count == 0) {
        rc = reader_stop(r);
    } else {
        /* Slots [tail, tail + count) are the reader's: gather them (the
         * oldest first, as many as the entries hold) and hand them to the
         * sink without the mutex, so the sink may do I/O. */
        unsigned k = 0;
        size_t total = 0;
        /* At most half the ring (at least one slot): the copier refills the
         * other half while the sink writes this one. */
        size_t nmax = r->nslots / 2 ? r->nslots / 2 : 1;
        for (size_t i = 0; i < r->count && i < nmax && k < r->ngather; i++) {
            const edb__slot *sl = &r->slots[(r->tail + i) % r->nslots];
            size_t b;
            unsigned m = slot_gather(sl, r->gather + k, r->ngather - k, &b);
            k += m;
            total += b;
            if (b < sl->len - sl->off)
                break;                         /* entries full inside this slot */
        }
        pthread_mutex_unlock(&r->mu);
        size_t used = 0;
        rc = fn(ctx, r->gather, (int)k, total, &used);
        pthread_mutex_lock(&r->mu);
        if (used > total)
            used = total;
        *nconsumed = used;
        reader_took(r, used);
    }
    reader_leave(r);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

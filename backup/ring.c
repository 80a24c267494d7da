/*
 * ring.c: the bounded ring between a copier and the readers of its stream,
 * and the stream's cancel protocol (see ring.h and doc/threading.md).
 *
 * The protocol lives in six functions, each one critical section:
 *   edb__ring_reserve      copier: wait while full and not canceled
 *   edb__ring_commit       copier: publish a slot, broadcast not_empty
 *   edb__ring_sleep_until  copier: rate limiter, timed wait on not_full
 *   edb__ring_finish       copier: the one exit: record error, done, broadcast both
 *   edb__ring_cancel       any:    canceled = true, broadcast both
 *   edb__ring_read         reader: wait while empty, not done, not canceled
 *
 * Invariants
 * - `canceled`, `done`, `err`, `head`, `tail`, `count`, `waiting` change only
 *   under `mu`; every wait is a loop that re-checks `canceled`.
 * - No function here calls anything that blocks (I/O, join, LMDB) while it
 *   holds `mu`; slot bytes are copied by their owner without the mutex.
 * - A reader never waits once it has copied a byte: it returns what it has.
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
#define RING_MIN_SLOTS 2

int
edb__ring_init(edb__ring *r, size_t ring_bytes, size_t slot_cap)
{
    memset(r, 0, sizeof *r);
    if (ring_bytes == 0)
        ring_bytes = RING_DEFAULT_BYTES;
    size_t n = ring_bytes / slot_cap;
    if (n < RING_MIN_SLOTS)
        n = RING_MIN_SLOTS;
    if (n > SIZE_MAX / slot_cap / 2)
        return edb__err(EDB_INVAL, "backup ring of %zu bytes is too large", ring_bytes);
    r->nslots = n;
    r->slot_cap = slot_cap;
    r->slots = edb__sys_calloc(n, sizeof *r->slots);
    /* Page-aligned: a consumer may hand slots to write() on an O_DIRECT file. */
    r->mem = edb__sys_aligned_alloc(4096, n * slot_cap);
    if (r->slots == NULL || r->mem == NULL) {
        free(r->slots);
        free(r->mem);
        return edb__err(EDB_NOMEM, "backup ring: %zu slots of %zu bytes", n, slot_cap);
    }
    for (size_t i = 0; i < n; i++)
        r->slots[i].buf = r->mem + i * slot_cap;

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
        free(r->slots);
        free(r->mem);
        r->slots = NULL;
        r->mem = NULL;
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
    free(r->slots);
    free(r->mem);
    r->slots = NULL;
    r->mem = NULL;
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

void
edb__ring_commit(edb__ring *r, size_t len)
{
    pthread_mutex_lock(&r->mu);
    r->slots[r->head].len = len;
    r->slots[r->head].off = 0;
    r->head = (r->head + 1) % r->nslots;
    r->count++;
    pthread_cond_broadcast(&r->not_empty);
    pthread_mutex_unlock(&r->mu);
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
    if (rc != 0 && detail != NULL) {
        /* Keep the detail without its "EDB_NAME: " prefix; the reader's
         * edb__err() adds it again in the reader's thread. */
        const char *name = edb_err_name(rc);
        size_t nl = strlen(name);
        if (strncmp(detail, name, nl) == 0 && detail[nl] == ':' && detail[nl + 1] == ' ')
            detail += nl + 2;
        snprintf(r->errmsg, sizeof r->errmsg, "%s", detail);
    }
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
    if (r->err != 0)
        return edb__err(r->err, "%s", r->errmsg[0] ? r->errmsg : edb_strerror(r->err));
    r->eof = true;
    return 0;
}

/* Under r->mu: the reader has taken n more bytes of the oldest slot; a slot
 * taken whole goes back to the copier. */
static void
reader_took(edb__ring *r, size_t n)
{
    edb__slot *sl = &r->slots[r->tail];
    sl->off += n;
    if (sl->off == sl->len) {
        r->tail = (r->tail + 1) % r->nslots;
        r->count--;
        pthread_cond_broadcast(&r->not_full);
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
        const uint8_t *src = sl->buf + sl->off;
        /* The slot is ours (it is in [tail, tail + count)): copy without the mutex. */
        pthread_mutex_unlock(&r->mu);
        memcpy(dst + got, src, n);
        pthread_mutex_lock(&r->mu);
        got += n;
        reader_took(r, n);
    }
    r->reading = false;
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
        edb__slot *sl = &r->slots[r->tail];
        /* The slot is the reader's (it is in [tail, tail + count)): hand it
         * to the sink without the mutex, so the sink may do I/O. */
        pthread_mutex_unlock(&r->mu);
        size_t used = 0;
        rc = fn(ctx, sl->buf + sl->off, sl->len - sl->off, &used);
        pthread_mutex_lock(&r->mu);
        if (used > sl->len - sl->off)
            used = sl->len - sl->off;
        *nconsumed = used;
        reader_took(r, used);
    }
    r->reading = false;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

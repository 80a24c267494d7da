/*
 * ring.h: the bounded ring of batch slots between one copier thread and the
 * readers of its stream, and the whole cancel protocol of a stream
 * (doc/threading.md, DESIGN.md "Iterator and copier", rules 1, 2, 5).
 *
 * One mutex and two condition variables: the copier waits on not_full (for a
 * free slot, and in the rate limiter's timed sleep), readers wait on
 * not_empty.  `canceled` is sticky, written only under the mutex, and cancel
 * broadcasts both conditions.  Every wait loop re-checks `canceled`.
 *
 * Slot ownership: slots [tail, tail + count) belong to the reader side, the
 * slot at `head` (when count < nslots) belongs to the copier between
 * edb__ring_reserve() and edb__ring_commit().  An owner fills or drains its
 * slot without the mutex; only the indices move under it.
 *
 * The ring does not free itself: its owner (the stream) destroys it when the
 * last reference goes, so no side ever touches freed memory.
 */
#ifndef EDB_RING_H
#define EDB_RING_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

/* A slot's bytes are buf[0 .. len), or, when niov > 0 (zero-copy slots, see
 * edb__ring_commit_iov), the concatenation of iov[0 .. niov), len in all. */
typedef struct edb__slot {
    uint8_t *buf;      /* slot_cap bytes */
    size_t len;        /* bytes filled by the copier */
    size_t off;        /* bytes already handed to readers */
    struct iovec *iov; /* slot_iov entries (NULL when the ring has none) */
    unsigned niov;     /* 0: the bytes are buf[0 .. len) */
    uint64_t mark;     /* edb__ring_commit_iov()'s @mark (0: none) */
} edb__slot;

typedef struct edb__ring {
    pthread_mutex_t mu;        /* guards every field below except the slot bytes */
    pthread_cond_t not_full;   /* copier waits: a slot freed, or canceled (also the rate limiter's sleep) */
    pthread_cond_t not_empty;  /* readers wait: a slot filled, the copier finished, or canceled */
    bool canceled;             /* sticky; set by edb__ring_cancel() only */
    bool done;                 /* the copier finished; err says how */
    bool eof;                  /* a reader has been given the end (nread == 0) */
    bool reading;              /* a reader is inside edb__ring_read() */
    bool drained;              /* a reader was given the end or the copier's error: done,
                                  count == 0, no reader will touch a slot again */
    int err;                   /* the copier's error (0 = the archive is complete) */
    char errmsg[256];          /* its edb_error_last() detail, without the code's name */
    unsigned waiting;          /* readers blocked in edb__ring_read() (for tests) */
    size_t nslots, slot_cap;
    size_t head, tail, count;  /* next slot to fill, next slot to drain, slots filled */
    edb__slot *slots;
    uint8_t *mem;              /* nslots * slot_cap */
    unsigned slot_iov;         /* iovec entries per slot (0: no zero-copy slots) */
    struct iovec *iovmem;      /* nslots * slot_iov */
    struct iovec *gather;      /* the consumer's: up to ngather entries over several slots */
    unsigned ngather;
    uint64_t mark_done;        /* the largest mark of a slot readers gave back */
    int wake_fd;               /* -1, or a consumer's wake-up descriptor (edb__ring_set_wake):
                                  cancel makes it readable, under mu, so a sink waiting in
                                  poll() for its output to drain is woken */
} edb__ring;

/* ring_bytes / slot_bytes slots (ring_bytes 0: 8 MiB, or 256 MiB with
 * zero-copy slots), at least 2, each with a buffer of slot_cap bytes and
 * @slot_iov iovec entries for zero-copy slots (0: none; then slot_bytes ==
 * slot_cap, the bytes a slot holds).
 * @return 0, EDB_NOMEM, EDB_INTERNAL (pthread init failed). */
int edb__ring_init(edb__ring *r, size_t ring_bytes, size_t slot_bytes, size_t slot_cap,
                   unsigned slot_iov);
/* Free the slots and the synchronisation objects; no thread may use r. */
void edb__ring_destroy(edb__ring *r);

/* ---- copier side ---- */
/* Wait for a free slot; *out = its buffer (slot_cap bytes).
 * @return 0, or EDB_CANCELED (nothing reserved). */
int edb__ring_reserve(edb__ring *r, uint8_t **out);
/* Publish the reserved slot with its first len bytes; wakes readers. */
void edb__ring_commit(edb__ring *r, size_t len);
/* The reserved slot's iovec entries (slot_iov of them), the copier's until commit. */
struct iovec *edb__ring_slot_iov(edb__ring *r);
/* Publish the reserved slot as the niov (1 ..= slot_iov) entries of its iovec
 * array, len bytes in all.  The memory they point at must stay readable and
 * unchanged until the slot is drained: see edb__ring_drain(). */
void edb__ring_commit_iov(edb__ring *r, size_t len, unsigned niov);
/* The same with a @mark (> 0) that edb__ring_mark_done() reports once a
 * reader has given the slot back: the zero-copy copier marks each frame
 * with the end of the map bytes it references (frames reference increasing
 * offsets), so the map below the mark of a drained slot may go. */
void edb__ring_commit_iov_mark(edb__ring *r, size_t len, unsigned niov, uint64_t mark);
/* The largest mark of a slot readers gave back (0: none yet).  Copier side. */
uint64_t edb__ring_mark_done(edb__ring *r);
/* edb__ring_drain() that also returns early, with *@drained false, when
 * edb__ring_mark_done() passed *@mark (then *@mark is updated): the copier
 * frees the drained part of its map while the sink writes the rest.
 * @return 0 (*drained says which), EDB_CANCELED. */
int edb__ring_drain_step(edb__ring *r, uint64_t *mark, bool *drained);
/* The copier waits here, after edb__ring_finish(), until no reader will touch
 * a slot again: a reader was given the end or the copier's error (`drained`),
 * or the stream is canceled; and no reader is inside a read or consume call.
 * Woken like reserve (not_full: a reader leaving a canceled or drained ring
 * broadcasts it).  Then the slots' memory (and the zero-copy map they point
 * into) may go: edb__ring_release_mem().  @return 0 when drained, EDB_CANCELED. */
int edb__ring_drain(edb__ring *r);
/* After edb__ring_drain(): free the slot buffers (the ring's large memory) in
 * the caller's thread, so that the last put (often edb_backup_close(), in the
 * application's thread) has only small things left to free.  The copier's. */
void edb__ring_release_mem(edb__ring *r);
/* The rate limiter's sleep: a timed wait on not_full until *deadline
 * (CLOCK_MONOTONIC).  @return 0 at the deadline, EDB_CANCELED as soon as canceled. */
int edb__ring_sleep_until(edb__ring *r, const struct timespec *deadline);
/* The copier's exit: records rc (0 = complete) and its detail, marks done and
 * broadcasts both conditions.  Called exactly once, by the copier.  @detail
 * is the message without the code's name (edb_error_last_message()); the
 * reader's edb__err() names the code again in the reader's thread. */
void edb__ring_finish(edb__ring *r, int rc, const char *detail);

/* ---- any thread ---- */
/* Sticky cancel: set under the mutex, broadcast both conditions, and make the
 * registered wake-up descriptor readable.  Idempotent. */
void edb__ring_cancel(edb__ring *r);
bool edb__ring_is_canceled(edb__ring *r);

/* ---- reader side (one reader at a time per stream) ---- */
/* Copy up to size bytes; blocks until at least one byte, the end, an error or
 * cancel.  @return 0 (*nread == 0: the archive is complete), EDB_CANCELED, or
 * the copier's error once every byte before it has been read. */
int edb__ring_read(edb__ring *r, void *buf, size_t size, size_t *nread);
/* A consumer that takes bytes straight from the slots (no copy): @iov[0 ..
 * @iovcnt) hold @n bytes.  It is called without the mutex; it sets *used to
 * the bytes it took (all of them, unless it fails) and returns 0 or a
 * negative EDB_* code. */
typedef int (*edb__ring_sink_fn)(void *ctx, const struct iovec *iov, int iovcnt, size_t n,
                                 size_t *used);
/* Zero-copy read: wait as edb__ring_read() does, then hand the unread bytes of
 * the filled slots (as many as fit ngather iovec entries, at least the oldest)
 * to fn and release each slot it took whole.  *nconsumed = bytes taken; 0
 * with 0 returned is the end.  Returns the sink's error, EDB_CANCELED, or the
 * copier's error once its bytes are drained. */
int edb__ring_consume(edb__ring *r, edb__ring_sink_fn fn, void *ctx, size_t *nconsumed);
/* Register (@fd >= 0) or unregister (-1) the consumer's wake-up descriptor
 * (edb__sys_wake_fd): from now on a cancel makes it readable, and it is made
 * readable at once when the stream is canceled already.  The consumer
 * unregisters it before it closes it, so cancel never writes to a closed or
 * reused descriptor. */
void edb__ring_set_wake(edb__ring *r, int fd);
/* Readers currently blocked in edb__ring_read() (tests use it to know a read is parked). */
unsigned edb__ring_waiting(edb__ring *r);

#endif

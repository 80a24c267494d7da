/*
 * copier.c: the copier thread of a backup stream.
 *
 * It writes the archive of doc/backup-format.md into the stream's ring:
 *   header block | frames (header block + up to 64 pages) | trailer block |
 *   page hash table (padded to a block) | end block
 * The archive hash covers everything before the end block except the pages
 * (format version 2): each page is hashed once, into its frame entry.
 * Pages 2..npages-1 of the snapshot are read with pread from data.mdb (they
 * are immutable while the snapshot's read txn lives), free pages are skipped
 * (their table entry is the hash of a zero page), each page is hashed with
 * XXH3-128 seeded by its page number, and a frame is built directly in a
 * reserved ring slot, so a page is copied once (file -> slot).
 *
 * Zero-copy streams (the library's file writer, stream.h): a full backup's
 * pages are hashed from a read-only map of data.mdb and published as
 * references into it (emit_frames_zc), not copied; after the ring is
 * finished the copier waits until the sink drained every slot (or cancel)
 * before it releases the snapshot, so the pages a sink writes are the
 * snapshot's.  Incremental and low-pin copiers always copy.
 *
 * Every stream of a backup produces the same bytes: everything in the archive
 * comes from the snapshot and its plan (snapshot.h), including pin_us, which
 * the first copier to need it fixes for all.
 *
 * Cancel: the copier checks `canceled` whenever it waits (reserving a slot,
 * the rate limiter's timed wait), i.e. at least once per batch, so it exits
 * within one page batch of a cancel (ring.c).
 *
 * Exit: one path (copier_main): finish the ring (error, done, broadcast),
 * drop the stream and snapshot references, then either detach itself or, if
 * env close has claimed it, leave the join to env close; drop the registry
 * reference last.
 *
 * Thread safety: the copier's buffers are private to its thread; the snapshot
 * is read-only; the ring is the only shared state.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "archive.h"
#include "copier_int.h"
#include "sys_fs.h"
#include "error.h"
#include "sys.h"

_Atomic unsigned long edb__copier_zc_frames;
_Atomic unsigned long edb__copier_zc_trims;
_Atomic size_t edb__copier_zc_trim_min = (size_t)32 << 20;

typedef edb__cwork work;

/* ---- allocation -------------------------------------------------------------- */

static void
work_free(work *w)
{
    if (w == NULL)
        return;
    free(w->table);
    free(w->scratch);
    free(w->ibuf);
    free(w->zbuf);
    free(w->ebuf);
    edb__zpool_free(w->zpool);      /* joins its helpers: they never wait on anything but it */
    edb__codec_free(&w->codec);
    edb__lp_free(w->lp);
    free(w->hraw);
    free(w);
}

int
edb__copier_new(edb__copier **out, edb_backup_stream *s, edb__snap *snap, edb__bk_reg *reg)
{
    *out = NULL;
    /* A low-pin stream's archive depends on when its passes ran: two streams
     * would be two different archives with one backup id. */
    if ((snap->plan.flags & EDB__ARCH_F_LOW_PIN) && atomic_fetch_add(&snap->lp_streams, 1) > 0)
        return edb__err(EDB_BUSY, "edb_backup_open: a low-pin backup has one stream");
    edb__copier *c = edb__obj_alloc(EDB__OBJ_COPIER, sizeof *c);
    work *w = edb__sys_calloc(1, sizeof *w);
    if (c == NULL || w == NULL)
        goto nomem;
    c->work = w;
    w->table = edb__sys_calloc((size_t)snap->npages, sizeof *w->table);
    w->scratch = edb__sys_malloc(snap->page_size);
    w->hraw = edb__sys_malloc(sizeof(edb__arch_hstate) + 64);
    w->fmax = edb__arch_frame_edb(snap->page_size);
    bool choose = (snap->plan.flags & (EDB__ARCH_F_INCREMENTAL | EDB__ARCH_F_LOW_PIN)) != 0;
    if (choose)
        w->ibuf = edb__sys_malloc((size_t)w->fmax * snap->page_size);
    if (snap->plan.codec != EDB__ARCH_CODEC_NONE) {
        w->zcap = edb__codec_bound((size_t)w->fmax * snap->page_size);
        w->zbuf = edb__sys_malloc(w->zcap);
    }
    if (snap->plan.cipher != EDB__ARCH_CIPHER_NONE) {
        w->ecap = (size_t)w->fmax * snap->page_size + EDB__ARCH_SEAL;
        w->ebuf = edb__sys_malloc(w->ecap);
    }
    if (w->table == NULL || w->scratch == NULL || w->hraw == NULL || (choose && w->ibuf == NULL) ||
        (w->zcap != 0 && w->zbuf == NULL) || (w->ecap != 0 && w->ebuf == NULL))
        goto nomem;
    w->hs = (edb__arch_hstate *)(((uintptr_t)w->hraw + 63) & ~(uintptr_t)63);
    edb__ref_get(&s->ref);
    edb__snap_get(snap);
    edb__ref_get(&reg->ref);
    c->s = s;
    c->snap = snap;
    c->reg = reg;
    *out = c;
    return 0;
nomem:
    if (c != NULL)
        work_free(c->work);
    else
        free(w);
    edb__obj_free(EDB__OBJ_COPIER, c);
    return edb__err(EDB_NOMEM, "backup copier: page hash table of %llu pages",
                    (unsigned long long)snap->npages);
}

/* Drop the thread's references and buffers (not the registry's). */
static void
copier_release(edb__copier *c)
{
    work_free(c->work);
    c->work = NULL;
    if (c->s != NULL)
        edb__stream_put(c->s);
    if (c->snap != NULL)
        edb__snap_put(c->snap);
    c->s = NULL;
    c->snap = NULL;
}

void
edb__copier_free(edb__copier *c)
{
    if (c == NULL)
        return;
    copier_release(c);
    edb__reg_put(c->reg);
    edb__obj_free(EDB__OBJ_COPIER, c);
}

/* ---- output ------------------------------------------------------------------ */

/* Token bucket: bytes leave at no more than rate_limit per second on average.
 * The schedule is absolute (each slot is due len / rate after the one before),
 * so a wake-up that comes late is made up by the next slots instead of being
 * lost: otherwise every timed wait's scheduling delay (0.1 to 1 ms) slowed a
 * 100 MB/s backup by 8%.  A copier that falls further behind than
 * RATE_CREDIT_NS (a slow consumer, a stall) forgets the rest, so it never
 * bursts by more than that much time's worth of bytes.
 * The sleep is a timed wait on the ring, woken by cancel. */
#define RATE_CREDIT_NS 20000000u    /* 20 ms */
static int
rate_wait(edb__copier *c, size_t len)
{
    uint64_t rate = c->snap->plan.rate_limit;
    if (rate == 0)
        return 0;
    work *w = c->work;
    uint64_t now = edb__now_ns();
    if (w->rate_next_ns == 0)
        w->rate_next_ns = now;
    else if (w->rate_next_ns + RATE_CREDIT_NS < now)
        w->rate_next_ns = now - RATE_CREDIT_NS;
    uint64_t due = w->rate_next_ns;
    /* len / rate seconds, in ns, without overflow for any len and rate. */
    w->rate_next_ns += (uint64_t)((long double)len * 1e9L / (long double)rate);
    if (due <= now)
        return 0;
    struct timespec ts = { .tv_sec = (time_t)(due / 1000000000u), .tv_nsec = (long)(due % 1000000000u) };
    return edb__ring_sleep_until(&c->s->ring, &ts);
}

/* Publish len bytes of the reserved slot (after the rate limiter); the
 * first hashed of them feed the archive hash (format version 2: everything
 * but the pages of frames). */
/* @mark: a zero-copy frame's end in the map (edb__ring_commit_iov_mark). */
static int
publish_iov(edb__copier *c, uint8_t *slot, size_t len, size_t hashed, unsigned niov, uint64_t mark)
{
    work *w = c->work;
    edb__arch_hstate_update(w->hs, slot, hashed);
    w->length += len;
    EDB_RET(rate_wait(c, len));
    if (niov > 0)
        edb__ring_commit_iov_mark(&c->s->ring, len, niov, mark);
    else
        edb__ring_commit(&c->s->ring, len);
    return 0;
}

static int
publish(edb__copier *c, uint8_t *slot, size_t len, size_t hashed)
{
    return publish_iov(c, slot, len, hashed, 0, 0);
}

/* Append bytes to the archive through partially filled slots. */
static int
out_bytes(edb__copier *c, const void *p, size_t n)
{
    work *w = c->work;
    size_t cap = c->s->ring.slot_cap;
    const uint8_t *src = p;
    while (n > 0) {
        if (w->cur == NULL) {
            EDB_RET(edb__ring_reserve(&c->s->ring, &w->cur));
            w->cur_len = 0;
        }
        size_t k = cap - w->cur_len;
        if (k > n)
            k = n;
        memcpy(w->cur + w->cur_len, src, k);
        w->cur_len += k;
        src += k;
        n -= k;
        if (w->cur_len == cap) {
            uint8_t *slot = w->cur;
            w->cur = NULL;
            EDB_RET(publish(c, slot, cap, cap));
        }
    }
    return 0;
}

static int
out_zeros(edb__copier *c, size_t n)
{
    static const uint8_t zeros[EDB__ARCH_BLOCK];
    while (n > 0) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        EDB_RET(out_bytes(c, zeros, k));
        n -= k;
    }
    return 0;
}

static int
out_flush(edb__copier *c)
{
    work *w = c->work;
    if (w->cur == NULL)
        return 0;
    uint8_t *slot = w->cur;
    w->cur = NULL;
    return w->cur_len ? publish(c, slot, w->cur_len, w->cur_len) : 0;
}

/* ---- the archive ------------------------------------------------------------- */

int
edb__copier_header(edb__arch_header *out, const edb__snap *sn)
{
    edb__arch_header h;
    memset(&h, 0, sizeof h);
    h.version = EDB__ARCH_VERSION;
    h.block_size = EDB__ARCH_BLOCK;
    h.page_size = sn->page_size;
    h.flags = sn->plan.flags & EDB__ARCH_F_KNOWN;
    memcpy(h.backup_id, sn->plan.backup_id, sizeof h.backup_id);
    if (sn->plan.flags & EDB__ARCH_F_INCREMENTAL) {
        memcpy(h.base_id, sn->plan.base_id, sizeof h.base_id);
        h.base_hash = sn->plan.base_hash;
        h.base_npages = sn->plan.base_npages;
    }
    h.start_txnid = sn->txnid;
    h.start_npages = sn->npages;
    h.max_pages = sn->max_pages;
    h.created_us = sn->plan.created_us;
    if (sn->plan.codec != EDB__ARCH_CODEC_NONE || sn->plan.cipher != EDB__ARCH_CIPHER_NONE) {
        h.version = EDB__ARCH_VERSION_Z;
        h.codec = sn->plan.codec;
        h.codec_level = sn->plan.codec != EDB__ARCH_CODEC_NONE ? sn->plan.codec_level : 0;
        h.cipher = sn->plan.cipher;
        memcpy(h.key_id, sn->plan.key_id, sizeof h.key_id);
    }
    *out = h;
    /* The reader's own rules, before anything is written (issue #11): an
     * archive its reader refuses is never produced. */
    return edb__arch_header_check(&h, 0);
}

static int
emit_header(edb__copier *c)
{
    edb__arch_header h;
    EDB_RET(edb__copier_header(&h, c->snap));
    uint8_t block[EDB__ARCH_BLOCK];
    edb__arch_header_encode(block, &h);
    return out_bytes(c, block, sizeof block);
}

/* Does the archive carry page p?  Full: unless free.  Incremental: unless
 * free, or its hash equals the base's (then its table entry is the base's). */
static bool
skip_free(edb__copier *c, uint64_t p)
{
    const edb__snap *sn = c->snap;
    work *w = c->work;
    if (!edb__snap_is_free(sn, p))
        return false;
    if ((sn->plan.flags & EDB__ARCH_F_INCREMENTAL) && p < sn->plan.base_npages)
        w->table[p] = sn->plan.base_table[p];
    else
        edb__arch_zero_hash(&w->table[p], sn->page_size, p);
    return true;
}

/* Read pages e[0..n) into dst (page i at dst + i * psize), one pread per run
 * of consecutive page numbers. */
int
edb__copier_read_pages(const edb__snap *sn, uint8_t *dst, const edb__arch_entry *e, unsigned n)
{
    size_t psize = sn->page_size;
    unsigned i = 0;
    while (i < n) {
        unsigned j = i + 1;
        while (j < n && e[j].pgno == e[j - 1].pgno + 1)
            j++;
        size_t len = (size_t)(j - i) * psize, got;
        if (edb__sys_pread_full(sn->fd, dst + i * psize, len, (off_t)(e[i].pgno * psize), &got) != 0) {
            char what[96];
            snprintf(what, sizeof what, "backup copier: reading data.mdb pages %llu..%llu",
                     (unsigned long long)e[i].pgno, (unsigned long long)e[j - 1].pgno);
            return edb__sys_err(errno, what);
        }
        if (got != len)
            return edb__err(EDB_CORRUPT, "backup copier: data.mdb ends before page %llu of the snapshot",
                            (unsigned long long)(e[i].pgno + got / psize));
        i = j;
    }
    return 0;
}

/* ---- the frame writer (copier_int.h) ----------------------------------------- */

static int
fw_open(edb__copier *c)
{
    work *w = c->work;
    if (w->fslot != NULL)
        return 0;
    EDB_RET(edb__ring_reserve(&c->s->ring, &w->fslot));
    w->fn = 0;
    w->fniov = 0;
    if (w->zc) {
        struct iovec *iov = edb__ring_slot_iov(&c->s->ring);
        iov[0].iov_base = w->fslot;
        iov[0].iov_len = EDB__ARCH_BLOCK;
        w->fniov = 1;
    }
    return 0;
}

int
edb__fw_dst(edb__copier *c, uint8_t **out)
{
    work *w = c->work;
    *out = NULL;
    EDB_RET(fw_open(c));
    *out = w->fslot + EDB__ARCH_BLOCK + (size_t)w->fn * c->snap->page_size;
    return 0;
}

int
edb__fw_flush(edb__copier *c)
{
    work *w = c->work;
    if (w->fslot == NULL)
        return 0;
    uint8_t *slot = w->fslot;
    unsigned n = w->fn, niov = w->fniov;
    w->fslot = NULL;
    w->fn = 0;
    w->fniov = 0;
    if (n == 0)
        return 0;      /* reserved, never committed: the next reserve gets it again */
    w->frame.count = n;
    w->frame.seq = w->frames;
    if (c->snap->plan.codec != EDB__ARCH_CODEC_NONE || c->snap->plan.cipher != EDB__ARCH_CIPHER_NONE) {
        /* Version 3: the pages, compressed (or stored when that is not
         * smaller), follow a header of n entries; both go where the block
         * and the pages were (header + payload <= block + pages). */
        size_t psize = c->snap->page_size;
        size_t raw = (size_t)n * psize, z = 0, hl = EDB__ARCH_ZHDR_SIZE(n);
        if (c->snap->plan.codec != EDB__ARCH_CODEC_NONE && !w->zpool_tried) {
            /* Made here, on the copier's thread: the helpers inherit its
             * mask (every signal blocked). */
            w->zpool_tried = true;
            EDB_RET(edb__zpool_new(&w->zpool, c->snap->plan.codec_threads,
                                   (size_t)w->fmax * psize));
        }
        unsigned width = edb__zpool_width(w->zpool);
        size_t part = (size_t)((n + width - 1) / width) * psize;
        if (c->snap->plan.codec != EDB__ARCH_CODEC_NONE)
            EDB_RET(edb__zpool_compress(&z, w->zpool, &w->codec, w->zbuf, w->zcap,
                                        slot + EDB__ARCH_BLOCK, raw, part,
                                        (int)c->snap->plan.codec_level));
        if (c->snap->plan.cipher != EDB__ARCH_CIPHER_NONE) {
            /* Compressed (or not), then sealed with the frame header as
             * additional data; the header goes in first, then the payload. */
            uint8_t hdr[EDB__ARCH_BLOCK];
            size_t plen = z ? z : raw;
            edb__arch_zframe_encode(hdr, &w->frame, z ? EDB__ARCH_ZM_ZSTD : EDB__ARCH_ZM_STORED,
                                    (uint32_t)(plen + EDB__ARCH_SEAL));
            EDB_RET(edb__seal(w->ebuf, z ? w->zbuf : slot + EDB__ARCH_BLOCK, plen, hdr, hl - 16,
                              c->snap->plan.key));
            memcpy(slot, hdr, hl);
            memcpy(slot + hl, w->ebuf, plen + EDB__ARCH_SEAL);
            w->frames++;
            w->pages += n;
            return publish(c, slot, hl + plen + EDB__ARCH_SEAL, hl);
        }
        if (z != 0)
            memcpy(slot + hl, w->zbuf, z);
        else
            memmove(slot + hl, slot + EDB__ARCH_BLOCK, raw);
        edb__arch_zframe_encode(slot, &w->frame, z ? EDB__ARCH_ZM_ZSTD : EDB__ARCH_ZM_STORED,
                                (uint32_t)(z ? z : raw));
        w->frames++;
        w->pages += n;
        return publish(c, slot, hl + (z ? z : raw), hl);
    }
    edb__arch_frame_encode(slot, &w->frame);
    w->frames++;
    w->pages += n;
    if (niov > 0)
        atomic_fetch_add_explicit(&edb__copier_zc_frames, 1, memory_order_relaxed);
    return publish_iov(c, slot, EDB__ARCH_BLOCK + (size_t)n * c->snap->page_size, EDB__ARCH_BLOCK,
                       niov, (w->frame.entries[n - 1].pgno + 1) * c->snap->page_size);
}

int
edb__fw_add(edb__copier *c, const edb__arch_entry *e, const uint8_t *page)
{
    work *w = c->work;
    size_t psize = c->snap->page_size;
    EDB_RET(fw_open(c));
    if (w->zc) {
        struct iovec *iov = edb__ring_slot_iov(&c->s->ring);
        if (w->fn > 0 && e->pgno == w->frame.entries[w->fn - 1].pgno + 1 &&
            (const uint8_t *)iov[w->fniov - 1].iov_base + iov[w->fniov - 1].iov_len == page) {
            iov[w->fniov - 1].iov_len += psize;
        } else {
            iov[w->fniov].iov_base = (void *)page;
            iov[w->fniov].iov_len = psize;
            w->fniov++;
        }
    } else {
        uint8_t *dst = w->fslot + EDB__ARCH_BLOCK + (size_t)w->fn * psize;
        if (dst != page)
            memcpy(dst, page, psize);
    }
    w->frame.entries[w->fn++] = *e;
    w->table[e->pgno] = e->hash;
    return w->fn == w->fmax ? edb__fw_flush(c) : 0;
}

/* ---- the four paths ------------------------------------------------------------ */

/* The page numbers of the next batch, from *p on (free pages skipped unless
 * kept), into e; returns how many (0: the end). */
static unsigned
next_batch(edb__copier *c, uint64_t *p, edb__arch_entry *e)
{
    const edb__snap *sn = c->snap;
    const work *w = c->work;
    unsigned n = 0;
    while (*p < sn->npages && n < w->fmax) {
        if (!skip_free(c, *p))
            e[n++].pgno = *p;
        (*p)++;
    }
    return n;
}

/* Unmap the zero-copy map below @mark (rounded down to a system page), when
 * that frees at least edb__copier_zc_trim_min bytes (32 MiB): the slots that referenced it
 * were given back by the sink (edb__ring_mark_done), and this thread hashed
 * those pages already.  Spread over the backup, on this thread, while the
 * sink writes: tearing down a 400 MiB map at the end took 22 ms on the
 * caller's critical path (it joins this thread).  A failed munmap leaves
 * the range to the final one. */
static void
zc_trim(edb__copier *c, uint64_t mark)
{
    edb_backup_stream *s = c->s;
    if (s->zc_map == NULL)
        return;
    if (mark > s->zc_len)
        mark = s->zc_len;
    long pg = sysconf(_SC_PAGESIZE);
    size_t to = (size_t)mark & ~(size_t)(pg > 0 ? pg - 1 : 4095);
    if (to <= s->zc_off ||
        (to - s->zc_off < atomic_load_explicit(&edb__copier_zc_trim_min, memory_order_relaxed)))
        return;
    if (edb__sys_munmap((uint8_t *)s->zc_map + s->zc_off, to - s->zc_off) == 0) {
        s->zc_off = to;
        atomic_fetch_add_explicit(&edb__copier_zc_trims, 1, memory_order_relaxed);
    }
}

/* A full backup.  Zero-copy streams (c->s->zc_map): each page is hashed from
 * the map on this thread, and the frame's slot carries its header block plus
 * one iovec entry per run of consecutive pages in the map, for the sink's
 * writev; the map's pages are the snapshot's while its read txn is held, and
 * the copier holds it until the ring is drained (copier_main).  Otherwise
 * the pages are read straight into the frame's slot. */
static int
emit_frames(edb__copier *c)
{
    const edb__snap *sn = c->snap;
    work *w = c->work;
    size_t psize = sn->page_size;
    const uint8_t *map = c->s->zc_map;      /* set by edb__stream_open, before we started */
    w->zc = map != NULL;
    edb__arch_entry e[COPIER_BATCH];
    uint64_t p = 2;
    for (;;) {
        unsigned n = next_batch(c, &p, e);
        if (n == 0)
            return edb__fw_flush(c);
        uint8_t *dst = NULL;
        if (map == NULL) {
            /* The open frame is empty here (frames hold one batch): read the
             * batch into its slot. */
            EDB_RET(edb__fw_dst(c, &dst));
            EDB_RET(edb__copier_read_pages(sn, dst, e, n));
        }
        for (unsigned i = 0; i < n; i++) {
            const uint8_t *page = map != NULL ? map + e[i].pgno * psize : dst + (size_t)i * psize;
            edb__arch_page_hash(&e[i].hash, page, psize, e[i].pgno);
            EDB_RET(edb__fw_add(c, &e[i], page));
        }
        if (map != NULL)
            zc_trim(c, edb__ring_mark_done(&c->s->ring));
    }
}

/* Incremental: every page of the snapshot is read (into w->ibuf, a frame's worth at a
 * time) and hashed; only a page at or past the base's npages, or whose hash
 * differs from the base's table entry, goes to a frame.  The table gets every
 * page's hash either way.  A slot is reserved only once a page is to be
 * emitted, so the scan checks cancel once per batch itself. */
static int
emit_frames_incr(edb__copier *c)
{
    const edb__snap *sn = c->snap;
    work *w = c->work;
    size_t psize = sn->page_size;
    edb__arch_entry cand[COPIER_BATCH];
    uint64_t p = 2;
    for (;;) {
        unsigned m = next_batch(c, &p, cand);
        if (m == 0)
            return edb__fw_flush(c);
        /* Every batch, also while a slot is held: unchanged pages never
         * reach a ring wait, and the copier must go within one batch. */
        if (edb__ring_is_canceled(&c->s->ring))
            return edb__err(EDB_CANCELED, "backup copier: canceled");
        EDB_RET(edb__copier_read_pages(sn, w->ibuf, cand, m));
        for (unsigned i = 0; i < m; i++) {
            const uint8_t *page = w->ibuf + (size_t)i * psize;
            uint64_t pg = cand[i].pgno;
            edb__arch_page_hash(&cand[i].hash, page, psize, pg);
            w->table[pg] = cand[i].hash;
            if (pg < sn->plan.base_npages && edb__arch_hash_eq(&cand[i].hash, &sn->plan.base_table[pg]))
                continue;
            EDB_RET(edb__fw_add(c, &cand[i], page));
        }
    }
}

static int
emit_trailer_and_end(edb__copier *c)
{
    edb__snap *sn = c->snap;
    work *w = c->work;

    /* pin_us: fixed by the first copier to get here, shared by all streams. */
    uint64_t pin = (edb__now_ns() - sn->pin_start_ns) / 1000u, unset = UINT64_MAX;
    if (!atomic_compare_exchange_strong(&sn->pin_us, &unset, pin))
        pin = unset;

    edb__arch_meta_hash(&w->table[0], w->scratch, sn->page_size, sn->meta, 0);
    edb__arch_meta_hash(&w->table[1], w->scratch, sn->page_size, sn->meta, 1);

    edb__arch_trailer t;
    memset(&t, 0, sizeof t);
    t.npages = sn->npages;
    t.txnid = sn->txnid;
    t.pin_us = pin;
    memcpy(t.meta, sn->meta, sizeof t.meta);
    return edb__copier_tail(c, &t);
}

int
edb__copier_tail(edb__copier *c, edb__arch_trailer *t)
{
    const edb__snap *sn = c->snap;
    work *w = c->work;
    EDB_RET(edb__fw_flush(c));
    t->frames = w->frames;
    t->pages = w->pages;
    uint8_t block[EDB__ARCH_BLOCK];
    edb__arch_trailer_encode(block, t);
    EDB_RET(out_bytes(c, block, sizeof block));

    size_t tbytes = (size_t)t->npages * sizeof *w->table;
    EDB_RET(out_bytes(c, w->table, tbytes));
    EDB_RET(out_zeros(c, (size_t)edb__arch_table_bytes(t->npages) - tbytes));

    /* publish() hashes each slot as it goes: flush the last partial slot so
     * that the archive hash covers every byte before the end block. */
    EDB_RET(out_flush(c));
    edb__arch_end e;
    memset(&e, 0, sizeof e);
    e.length = w->length + EDB__ARCH_BLOCK;
    memcpy(e.backup_id, sn->plan.backup_id, sizeof e.backup_id);
    edb__arch_hstate_digest(w->hs, &e.archive_hash);
    edb__arch_end_encode(block, &e);
    /* The end block is not part of the archive hash: emit it around publish(). */
    uint8_t *slot;
    EDB_RET(edb__ring_reserve(&c->s->ring, &slot));
    memcpy(slot, block, sizeof block);
    w->length += sizeof block;
    EDB_RET(rate_wait(c, sizeof block));
    edb__ring_commit(&c->s->ring, sizeof block);
    return 0;
}

static int
run(edb__copier *c)
{
    edb__arch_hstate_reset(((work *)c->work)->hs);
    EDB_RET(emit_header(c));
    EDB_RET(out_flush(c));
    if (c->snap->plan.flags & EDB__ARCH_F_LOW_PIN)
        return edb__lp_run(c);
    if (c->snap->plan.flags & EDB__ARCH_F_INCREMENTAL)
        EDB_RET(emit_frames_incr(c));
    else
        EDB_RET(emit_frames(c));
    return emit_trailer_and_end(c);
}

/* ---- thread ------------------------------------------------------------------ */

/* The copier's one exit path, after the ring is finished: drop the stream and
 * snapshot references (the snapshot's read txn may end here), then leave the
 * registry: detach unless env close has claimed us (it will join and free). */
static void *
copier_main(void *arg)
{
    edb__copier *c = arg;
    int rc = run(c);
    edb__ring_finish(&c->s->ring, rc, rc != 0 ? edb_error_last_message() : NULL);
    /* Wait until no reader will touch a slot again (the end or the error
     * was delivered, or the stream canceled): zero-copy slots reference the
     * snapshot's pages, so its read txn is held until they are written (or
     * canceled: then nothing written from them is kept).  A wait like
     * reserve's, woken by cancel.  Then this thread frees the large memory,
     * the ring's slots and the zero-copy map, so that no edb_backup_close()
     * in the application's thread has to (issue #11: close < 1 ms). */
    if (c->s->zc_map == NULL) {
        /* Copying slots hold copies: the snapshot and this thread's buffers
         * are done with now, before the wait. */
        work_free(c->work);
        c->work = NULL;
        edb__snap_put(c->snap);
        c->snap = NULL;
    }
    if (c->s->zc_map != NULL) {
        /* Free the map behind the sink while it writes the last batches. */
        uint64_t mark = 0;
        bool drained = false;
        while (edb__ring_drain_step(&c->s->ring, &mark, &drained) == 0 && !drained)
            zc_trim(c, mark);
        if (!drained)
            (void)edb__ring_drain(&c->s->ring);    /* canceled: wait for a reader inside */
    } else {
        (void)edb__ring_drain(&c->s->ring);
    }
    edb__ring_release_mem(&c->s->ring);
    if (c->s->zc_map != NULL) {
        if (c->s->zc_len > c->s->zc_off)
            edb__sys_munmap((uint8_t *)c->s->zc_map + c->s->zc_off, c->s->zc_len - c->s->zc_off);
        c->s->zc_map = NULL;
    }
    copier_release(c);

    edb__bk_reg *reg = c->reg;
    bool detached = false;
    pthread_mutex_lock(&reg->lock);
    if (!c->claimed) {
        /* Unlink from reg->copiers: nobody will join this thread. */
        for (edb__copier **pp = &reg->copiers; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == c) {
                *pp = c->next;
                break;
            }
        }
        c->registered = false;
        pthread_detach(pthread_self());
        detached = true;
    }
    pthread_mutex_unlock(&reg->lock);
    if (detached)
        edb__obj_free(EDB__OBJ_COPIER, c);                   /* else env close frees it after the join */
    edb__reg_put(reg);
    return NULL;
}

int
edb__copier_start(edb__copier *c)
{
    edb__bk_reg *reg = c->reg;
    pthread_mutex_lock(&reg->lock);
    c->next = reg->copiers;
    reg->copiers = c;
    c->registered = true;
    pthread_mutex_unlock(&reg->lock);

    /* The copier runs with every signal blocked: the host's handlers never run
     * on it, and SIGPIPE cannot reach it (it only writes into memory anyway). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = edb__sys_thread_create(&c->tid, copier_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e == 0)
        return 0;

    pthread_mutex_lock(&reg->lock);
    for (edb__copier **pp = &reg->copiers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    c->registered = false;
    pthread_mutex_unlock(&reg->lock);
    edb__copier_free(c);
    return edb__err(EDB_IO, "backup: starting the copier thread: %s", strerror(e));
}

void
edb__copier_join(edb__copier *c)
{
    pthread_join(c->tid, NULL);
    edb__obj_free(EDB__OBJ_COPIER, c);
}

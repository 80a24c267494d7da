/*
 * copier_int.h: what copier.c shares with lowpin.c: the copier's private
 * buffers and the frame writer every emit path puts its pages through.
 *
 * The frame writer (copier.c) owns the open frame: a reserved ring slot whose
 * header block is written when the frame is published, the pages after it.
 * A path adds pages one at a time (edb__fw_add); a full frame is published at
 * once, a partial one by edb__fw_flush.  Publishing encodes the frame header
 * block, sets the page hash table entries of the frame's pages, counts the
 * frame and hands the slot to the ring (after the rate limiter).  In a
 * compressed archive (format version 3) it compresses the frame's pages in
 * place of the slot and writes the version-3 frame header instead.
 *
 * Thread safety: the copier's thread only.
 */
#ifndef EDB_COPIER_INT_H
#define EDB_COPIER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "archive.h"
#include "codec.h"
#include "copier.h"

#define COPIER_BATCH EDB__ARCH_FRAME_MAX   /* capacity of a batch; a frame holds w->fmax pages */

struct edb__lp;

typedef struct edb__cwork {
    edb__arch_hash *table;     /* npages entries: the page hash table */
    uint8_t *scratch;          /* page_size bytes for zero/meta page hashes */
    uint8_t *ibuf;             /* incremental, low-pin: fmax pages read before the choice */
    struct edb__lp *lp;        /* low-pin only (lowpin.c) */
    void *hraw;                /* allocation holding hs (64-byte aligned) */
    edb__arch_hstate *hs;      /* archive hash: every byte emitted but the pages of frames */
    edb__arch_frame frame;     /* the open frame's entries */
    uint8_t *fslot;            /* the open frame's slot, or NULL */
    unsigned fn;               /* pages in the open frame */
    unsigned fmax;             /* pages a frame holds: edb__arch_frame_edb(page_size) */
    unsigned fniov;            /* zero-copy frame: iovec entries used (0: pages copied into fslot) */
    bool zc;                   /* pages are referenced in the map, not copied */
    uint8_t *zbuf;             /* compressed archive: one frame's compressed pages */
    size_t zcap;
    edb__codec codec;
    uint8_t *ebuf;             /* encrypted archive: one frame's sealed payload */
    size_t ecap;
    edb__zpool *zpool;         /* helper threads (plan.codec_threads > 1), made on the copier's thread */
    bool zpool_tried;
    uint8_t *cur;              /* slot being filled by out_bytes, or NULL */
    size_t cur_len;
    uint64_t length;           /* archive bytes emitted */
    uint64_t frames, pages;
    uint64_t rate_next_ns;     /* token bucket: when the next byte may go */
} edb__cwork;

/* Where the open frame's next page goes (a slot is reserved, waiting in the
 * ring, when no frame is open): reading a page there spares edb__fw_add the
 * copy.  @return 0, EDB_CANCELED. */
int edb__fw_dst(edb__copier *c, uint8_t **out);
/* Add the page @e (pgno and hash set) whose bytes are at @page, to the open
 * frame: copied unless @page is where edb__fw_dst() said, referenced when the
 * writer is zero-copy.  A frame of w->fmax pages is published at once.
 * @return 0, EDB_CANCELED. */
int edb__fw_add(edb__copier *c, const edb__arch_entry *e, const uint8_t *page);
/* Publish the open frame, if any.  @return 0, EDB_CANCELED. */
int edb__fw_flush(edb__copier *c);

/* Read pages e[0..n) of @sn into dst, one pread per run of consecutive pages.
 * @return 0, EDB_IO, EDB_CORRUPT (data.mdb shorter than the snapshot). */
int edb__copier_read_pages(const edb__snap *sn, uint8_t *dst, const edb__arch_entry *e, unsigned n);
/* The trailer @t (frames and pages filled here), the first t->npages entries
 * of the table, its padding and the end block.  @return 0, EDB_CANCELED. */
int edb__copier_tail(edb__copier *c, edb__arch_trailer *t);

/* lowpin.c: the whole low-pin archive after the header (passes, trailer,
 * end), and freeing its state. */
int edb__lp_run(edb__copier *c);
void edb__lp_free(struct edb__lp *lp);

#endif

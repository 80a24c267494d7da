/*
 * reader.h: the streaming archive reader shared by verify and restore.
 *
 * edb__reader_read() reads one archive from a file descriptor (a file or a
 * pipe) front to back exactly once, validating every block with archive.c,
 * every page against its frame entry, the trailer against what was read, the
 * page hash table against what the archive itself proves, and the end block.
 * Memory grows only with what was read: a fixed input buffer, 32 bytes per page
 * carried and 16 bytes per table entry read, plus at most 6 MiB of zero-page
 * hashes computed ahead; no length field is trusted for an allocation.
 *
 * A read may run one worker thread of its own (the zero-page hashes of the
 * table check, computed while the frames are read); it is joined before
 * edb__reader_read() returns, whatever the outcome.
 *
 * Thread safety: one reader per thread; the result is plain memory.
 */
#ifndef EDB_READER_H
#define EDB_READER_H

#include <stdbool.h>
#include <stdint.h>

#include "archive.h"

/* A page the archive carries: its last occurrence (the one restore keeps). */
typedef struct edb__carried {
    uint64_t pgno;
    uint64_t order;          /* position in the archive: later wins */
    uint64_t frame;
    edb__arch_hash hash;
} edb__carried;

/* Where the reader was when something went wrong (-1: not applicable). */
typedef struct edb__where {
    int64_t frame;
    int64_t pgno;
    int64_t offset;
} edb__where;

typedef struct edb__reader_cbs {
    /* After the header validated; a non-zero return stops the read with it. */
    int (*on_header)(void *ctx, const edb__arch_header *h);
    /* Each page after its hash matched, in archive order; @page is valid until
     * on_frame_end() of its frame returns (or the next on_page without it).
     * @hash is H(page, pgno), computed from the bytes at @page (which nothing
     * changes until then), so a consumer need not hash them again. */
    int (*on_page)(void *ctx, const edb__arch_header *h, uint64_t frame, uint64_t pgno,
                   const uint8_t *page, const edb__arch_hash *hash);
    /* Each page whose hash does not match its entry (detail in edb_error_last()).
     * Without it the read stops at the first bad page; with it the read goes on
     * and fails with EDB_CHECKSUM at the end. */
    void (*on_bad_page)(void *ctx, const edb__where *w);
    void *ctx;
    /* After the last page of a frame was handed to on_page (not called once a
     * page was bad).  The page pointers on_page received for this frame stay
     * valid until this returns, and consecutive pages of the frame are
     * consecutive in memory.  A non-zero return stops the read with it. */
    int (*on_frame_end)(void *ctx, const edb__arch_header *h, uint64_t frame);
    /* The key of an encrypted archive (32 bytes) or NULL. */
    const uint8_t *key;
    /* The page hash table is checked entry by entry as always, but not kept
     * (out->table stays NULL): verify of a single archive has no use for it
     * afterwards, and 16 bytes a page of memory first touched cost page
     * faults. */
    bool drop_table;
} edb__reader_cbs;

/* One archive as read. */
typedef struct edb__archive {
    edb__arch_header header;
    edb__arch_trailer trailer;
    edb__arch_end end;
    uint64_t length;
    edb__arch_hash *table;   /* trailer.npages entries (NULL with cbs->drop_table) */
    edb__carried *carried;   /* sorted by pgno, one per page */
    size_t ncarried;
    uint64_t unchecked;      /* table entries only the base can prove (incremental) */
    uint64_t zero_ahead;     /* zero-page hashes the worker had computed (a statistic) */
    edb__where where;        /* of the failure */
} edb__archive;

/* The zero-page hashes of the page hash table check run on a worker thread
 * once the archive leaves out at least this many bytes of pages (16 MiB; tests
 * lower it, before any read, to make small archives use the worker). */
extern size_t edb__reader_zero_min;
/* Tests set it (before any read) to make the table check wait for the
 * worker's hashes instead of computing inline what is not ready yet, so that
 * edb__archive.zero_ahead is exact. */
extern bool edb__reader_zero_wait;

/* Read and validate the archive on @fd (read to its end, not closed).
 * @return 0, EDB_CORRUPT, EDB_CHECKSUM, EDB_VERSION, EDB_IO, EDB_NOMEM, or what
 * a callback returned.  On failure @out->where says where; free @out either way. */
int  edb__reader_read(edb__archive *out, int fd, const edb__reader_cbs *cbs);
void edb__archive_free(edb__archive *a);

/* The carried entry for @pgno or NULL (binary search). */
const edb__carried *edb__archive_carried(const edb__archive *a, uint64_t pgno);

#endif

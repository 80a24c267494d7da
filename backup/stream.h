/*
 * stream.h: the stream object behind edb_backup_stream: a ring (with the
 * cancel protocol, ring.h) shared by one copier thread and the reading handle.
 *
 * References: the handle, the copier, and each edb_backup_read() in progress
 * hold one; the last put destroys the ring and drops the stream's reference on
 * its backup.  Nothing else is freed by close, so a reader woken by a close
 * from another thread never touches freed memory.
 */
#ifndef EDB_STREAM_H
#define EDB_STREAM_H

#include <stdatomic.h>
#include <stdbool.h>

#include "backup.h"
#include "ring.h"

struct edb_backup_stream {
    edb__ref ref;
    edb__ring ring;
    edb_backup *bk;                    /* holds a reference on bk until the stream is freed */
    struct edb_backup_stream *next;    /* in bk->streams; guarded by bk->lock */
    bool linked;                       /* guarded by bk->lock */
    _Atomic uint64_t consumed;         /* archive bytes handed to readers */
    /* Zero-copy (edb__stream_open_zc, the library's own file writer): frames
     * are published as their header block plus references into zc_map, the
     * copier's read-only map of the snapshot's data.mdb.  Set by
     * edb__stream_open before the copier starts, read-only afterwards;
     * unmapped by the copier on its way out, after edb__ring_drain() (no
     * reader will touch a slot again), or by the last put when no copier ran,
     * so a sink never writes from unmapped memory and close never pays for
     * the munmap.  The copier keeps the snapshot pinned until then.  While
     * the sink writes, the copier unmaps the part below the mark of the
     * slots the sink gave back (edb__ring_mark_done), so what is left to
     * unmap at the end is the last batch, not the whole map. */
    bool zerocopy;
    void *zc_map;
    size_t zc_len;
    size_t zc_off;                     /* zc_map[0 .. zc_off) was unmapped already: the copier
                                          frees the map behind the slots the sink gave back
                                          (their pages are written), page-aligned */
};

/* edb_backup_open() for the library's own writers (save.c): with @zerocopy, frames of
 * a full backup reference the snapshot's pages in a map instead of carrying
 * copies (incremental and low-pin backups, or a map that cannot be made, fall
 * back to copies).  Such a stream must be drained with edb__stream_consume()
 * by a caller that closes it when it stops. */
int edb__stream_open(edb_backup_stream **out, edb_backup *bk, bool zerocopy);

/* Drop a reference; the last frees the stream. */
void edb__stream_put(edb_backup_stream *s);
/* Cancel the stream and drop its handle reference if the caller is the one
 * that removes it from the handle table.  The stream must already be
 * unlinked from its backup's list. */
void edb__stream_close_unlinked(edb_backup_stream *s);
/* edb_backup_read() without the copy: hand the next filled ring slot to fn
 * (see edb__ring_consume); 0 with *nconsumed == 0 is the end. */
int edb__stream_consume(edb_backup_stream *s, edb__ring_sink_fn fn, void *ctx, size_t *nconsumed);

#endif

/*
 * stream.c: edb_backup_open / edb_backup_read / edb_backup_close.
 *
 * A stream is a ring (ring.c) between one copier thread (copier.c) and the
 * application.  The handle, the copier and every read in progress hold a
 * reference; close cancels, unlinks the stream from its backup and drops the
 * handle's reference; it never waits for the copier (DESIGN.md rule 4).
 *
 * Handles are validated through the process-wide handle table (backup.c):
 * a read or close of a stream already closed (by the application, by
 * edb_backup_end or by edb_env_close) finds nothing and returns
 * EDB_CANCELED / does nothing, instead of touching freed memory.
 *
 * Thread safety: edb_backup_read() from one thread at a time per stream;
 * edb_backup_close() from any thread, also during a read.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "copier.h"
#include "error.h"
#include "stream.h"
#include "sys.h"
#include "sys_fs.h"

#define ZC_SLOT_CAP ((size_t)64 << 10)

/* Map the snapshot's data.mdb read-only for a zero-copy stream (the last put
 * unmaps it).  Left a copying stream when the file is shorter than the
 * snapshot (a page past its end would fault) or mapping fails. */
static void
zc_map(edb_backup_stream *s, const edb__snap *snap)
{
    size_t len = (size_t)snap->npages * snap->page_size;
    struct stat st;
    if (edb__sys_fstat(snap->fd, &st) != 0 || (uint64_t)st.st_size < (uint64_t)len)
        return;
    void *mp = edb__sys_mmap(len, PROT_READ, MAP_SHARED, snap->fd, 0);
    if (mp == MAP_FAILED)
        return;
    s->zc_map = mp;
    s->zc_len = len;
    s->zerocopy = true;
}

void
edb__stream_put(edb_backup_stream *s)
{
    if (s == NULL || !edb__ref_put(&s->ref))
        return;
    edb__ring_destroy(&s->ring);
    if (s->zc_map != NULL && s->zc_len > s->zc_off)
        edb__sys_munmap((uint8_t *)s->zc_map + s->zc_off, s->zc_len - s->zc_off);
    edb_backup *bk = s->bk;
    edb__obj_free(EDB__OBJ_STREAM, s);
    if (bk != NULL)
        edb__bk_put(bk);
}

void
edb__stream_close_unlinked(edb_backup_stream *s)
{
    edb__ring_cancel(&s->ring);
    if (edb__handle_remove(EDB__H_STREAM, s))
        edb__stream_put(s);             /* the handle's reference */
}

/* Unlink s from its backup (if still linked) and fold its progress in. */
static void
stream_unlink(edb_backup_stream *s)
{
    edb_backup *bk = s->bk;
    pthread_mutex_lock(&bk->lock);
    if (s->linked) {
        for (edb_backup_stream **pp = &bk->streams; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == s) {
                *pp = s->next;
                break;
            }
        }
        s->linked = false;
        uint64_t done = atomic_load(&s->consumed);
        if (done > bk->done_max)
            bk->done_max = done;
    }
    pthread_mutex_unlock(&bk->lock);
}

int
edb_backup_open(edb_backup_stream **out, edb_backup *bk)
{
    return edb__stream_open(out, bk, false);
}

int
edb__stream_open(edb_backup_stream **out, edb_backup *bk, bool zerocopy)
{
    int ret = 0;
    if (out == NULL)
        return edb__err(EDB_INVAL, "edb_backup_open: out is NULL");
    *out = NULL;
    if (bk == NULL)
        return edb__err(EDB_INVAL, "edb_backup_open: backup is NULL");
    if (edb__handle_ref(EDB__H_BACKUP, bk) == NULL)
        return edb__err(EDB_CANCELED, "edb_backup_open: the backup has ended");

    edb__bk_reg *reg = bk->reg;
    edb_backup_stream *s = NULL;
    edb__copier *c = NULL;
    edb__snap *snap = NULL;
    bool entered = false, added = false;

    EDB_ERR(edb__reg_enter(reg));
    entered = true;
    pthread_mutex_lock(&bk->lock);
    if (!bk->ended && !bk->canceled) {
        snap = bk->snap;
        edb__snap_get(snap);
    }
    bool stopped = bk->canceled;
    pthread_mutex_unlock(&bk->lock);
    if (snap == NULL)
        EDB_ERR(edb__err(EDB_CANCELED, "edb_backup_open: the backup was %s", stopped ? "stopped" : "ended"));

    s = edb__obj_alloc(EDB__OBJ_STREAM, sizeof *s);
    if (s == NULL)
        EDB_ERR(edb__err(EDB_NOMEM, "edb_backup_open: stream"));
    edb__ref_init(&s->ref, 1);                 /* the handle */
    atomic_init(&s->consumed, 0);
    if (zerocopy && !(snap->plan.flags & (EDB__ARCH_F_INCREMENTAL | EDB__ARCH_F_LOW_PIN)) &&
        snap->plan.codec == EDB__ARCH_CODEC_NONE && snap->plan.cipher == EDB__ARCH_CIPHER_NONE)
        /* compressed or encrypted frames are built in the slot */
        zc_map(s, snap);
    /* A slot holds a frame: its bytes, or (zero-copy) its header block and
     * at most one iovec entry per page; a zero-copy slot's buffer also takes
     * the header, trailer and table bytes, ZC_SLOT_CAP at a time. */
    unsigned fmax = edb__arch_frame_edb(snap->page_size);
    size_t frame = EDB__ARCH_BLOCK + (size_t)fmax * snap->page_size;
    ret = edb__ring_init(&s->ring, snap->plan.ring_size, frame,
                         s->zerocopy ? ZC_SLOT_CAP : frame,
                         s->zerocopy ? 1 + fmax : 0);
    if (ret != 0) {
        if (s->zc_map != NULL)
            edb__sys_munmap(s->zc_map, s->zc_len);
        edb__obj_free(EDB__OBJ_STREAM, s);
        s = NULL;
        goto err;
    }
    s->bk = bk;
    edb__ref_get(&bk->ref);                    /* the stream's reference on its backup */
    EDB_ERR(edb__copier_new(&c, s, snap, reg));
    EDB_ERR(edb__handle_add(EDB__H_STREAM, s, NULL));
    added = true;

    pthread_mutex_lock(&bk->lock);
    bool ok = !bk->ended && !bk->canceled;
    if (ok) {
        s->next = bk->streams;
        bk->streams = s;
        s->linked = true;
    }
    pthread_mutex_unlock(&bk->lock);
    if (!ok)
        EDB_ERR(edb__err(EDB_CANCELED, "edb_backup_open: the backup was stopped or ended"));

    ret = edb__copier_start(c);                /* frees c on failure */
    c = NULL;
    if (ret != 0) {
        stream_unlink(s);
        goto err;
    }
    edb__snap_put(snap);
    edb__reg_leave(reg);
    edb__bk_put(bk);                           /* this call's reference */
    edb__err_clear();
    *out = s;
    return 0;

err:
    if (c != NULL)
        edb__copier_free(c);
    if (s != NULL) {
        if (!added || edb__handle_remove(EDB__H_STREAM, s))
            edb__stream_put(s);
    }
    if (snap != NULL)
        edb__snap_put(snap);
    if (entered)
        edb__reg_leave(reg);
    edb__bk_put(bk);
    return ret;
}

int
edb_backup_read(edb_backup_stream *s, void *buf, size_t size, size_t *nread)
{
    if (nread == NULL)
        return edb__err(EDB_INVAL, "edb_backup_read: nread is NULL");
    *nread = 0;
    if (s == NULL || buf == NULL || size == 0)
        return edb__err(EDB_INVAL, "edb_backup_read: %s", s == NULL ? "stream is NULL" :
                        buf == NULL ? "buffer is NULL" : "size is 0");
    if (edb__handle_ref(EDB__H_STREAM, s) == NULL)
        return edb__err(EDB_CANCELED, "edb_backup_read: the stream is closed");
    int rc = edb__ring_read(&s->ring, buf, size, nread);
    if (*nread > 0)
        atomic_fetch_add(&s->consumed, (uint64_t)*nread);
    if (rc == 0)
        edb__err_clear();
    edb__stream_put(s);                        /* this call's reference */
    return rc;
}

int
edb__stream_consume(edb_backup_stream *s, edb__ring_sink_fn fn, void *ctx, size_t *nconsumed)
{
    *nconsumed = 0;
    if (edb__handle_ref(EDB__H_STREAM, s) == NULL)
        return edb__err(EDB_CANCELED, "backup stream is closed");
    int rc = edb__ring_consume(&s->ring, fn, ctx, nconsumed);
    if (*nconsumed > 0)
        atomic_fetch_add(&s->consumed, (uint64_t)*nconsumed);
    edb__stream_put(s);                        /* this call's reference */
    return rc;
}

void
edb_backup_close(edb_backup_stream *s)
{
    if (s == NULL || !edb__handle_remove(EDB__H_STREAM, s))
        return;                                /* not open: already closed */
    edb__ring_cancel(&s->ring);
    stream_unlink(s);
    edb__stream_put(s);                        /* the handle's reference */
}

/*
 * copier.h: the copier thread of one stream: reads the snapshot's pages,
 * hashes and frames them, and pushes the archive bytes into the stream's ring.
 *
 * Lifetime: edb__copier_new() takes a reference on the stream, the snapshot
 * and the registry.  The thread drops all three on its one exit path, then
 * either detaches itself (nobody will join it) or, when edb_env_close() has
 * claimed it, leaves the join and the free to env close.
 */
#ifndef EDB_COPIER_H
#define EDB_COPIER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "backup.h"
#include "stream.h"

typedef struct edb__copier {
    edb_backup_stream *s;              /* reference */
    edb__snap *snap;                   /* reference */
    edb__bk_reg *reg;                  /* reference */
    pthread_t tid;
    struct edb__copier *next;          /* in reg->copiers; guarded by reg->lock */
    bool registered;                   /* in reg->copiers; guarded by reg->lock */
    bool claimed;                      /* env close joins and frees it; guarded by reg->lock */
    void *work;                        /* the thread's private buffers (copier.c) */
} edb__copier;

/* Allocate a copier for stream s of snapshot snap (takes the three references
 * and allocates its page hash table).  @return 0, EDB_NOMEM. */
int edb__copier_new(edb__copier **out, edb_backup_stream *s, edb__snap *snap, edb__bk_reg *reg);
/* The archive header a copier of @sn writes, checked with the reader's rules
 * (edb__arch_header_check).  @return 0, or EDB_CORRUPT / EDB_VERSION with a
 * detail when the reader would refuse it. */
int edb__copier_header(edb__arch_header *out, const edb__snap *sn);
/* Register the copier in reg->copiers and start its thread.  On failure the
 * copier is unregistered and freed (its references dropped).
 * The caller is inside edb__reg_enter(), so env close cannot claim it before
 * its tid is set.  @return 0, EDB_IO (thread creation failed). */
int edb__copier_start(edb__copier *c);
/* Free a copier that was never started (drops its references). */
void edb__copier_free(edb__copier *c);
/* Env close: join a claimed copier and free it. */
void edb__copier_join(edb__copier *c);

/* Frames published as references into the snapshot's map (zero-copy), since
 * the process started: tests check that edb_backup_save took that path. */
extern _Atomic unsigned long edb__copier_zc_frames;
/* Zero-copy map unmapped behind the sink: the munmaps done before the ring
 * drained (tests), and the least a munmap frees (32 MiB; tests lower it so a
 * small database shows it). */
extern _Atomic unsigned long edb__copier_zc_trims;
extern _Atomic size_t edb__copier_zc_trim_min;

#endif

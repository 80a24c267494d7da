/*
 * lowpin.h: the pass planner of low-pin backups (EDB_BACKUP_LOW_PIN).
 *
 * A low-pin copier copies in passes.  Every pass but the last reads the
 * pages under short snapshots, each held for one batch of reads (at most
 * EDB__LP_BATCH_PAGES pages) and released before the batch's changed pages go
 * to the ring, and emits the pages whose hash differs from what the archive
 * already restores there.  The final pass takes one snapshot, reads and
 * hashes every page reachable in it, stages the pages that changed (in memory
 * up to EDB__LP_STAGE_BYTES, the rest in an unnamed spool file in $TMPDIR,
 * written at disk speed), releases the snapshot and only then emits them, so
 * the pin never waits on the consumer.
 * The planner decides after each pass whether the next is the final one: when
 * the last pass changed few enough pages to be staged, when passes stop
 * converging, or after EDB__LP_MAX_PASSES.
 *
 * Thread safety: pure functions.
 */
#ifndef EDB_LOWPIN_H
#define EDB_LOWPIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDB__LP_MAX_PASSES  4               /* short passes before the final one, at most */
#define EDB__LP_BATCH_PAGES 1024u           /* pages read under one short snapshot */
#define EDB__LP_STAGE_BYTES (32u << 20)     /* changed pages the final pass stages unpinned */

/* The stage size in use: EDB__LP_STAGE_BYTES, lowered by tests (before any
 * backup starts) to drive the final pass into its overflow path. */
extern _Atomic size_t edb__lp_stage_bytes;
/* Times a final pass's memory stage filled (for tests). */
extern _Atomic uint64_t edb__lp_stage_flushes;
/* Pages the final passes wrote to their spool files (for tests). */
extern _Atomic uint64_t edb__lp_spooled_pages;
/* Pages emitted while pinned because the spool could not be made or written
 * (for tests; the degraded path). */
extern _Atomic uint64_t edb__lp_pinned_emits;
/* Test hook: when set (before any backup starts), the copier calls it between
 * its last short pass and the final pass, holding no snapshot. */
extern void (*edb__lp_before_final)(void);
/* Test hook: called once the final pass released its snapshot, before it
 * emits the staged pages (none of the final pass's pages reached the ring). */
extern void (*edb__lp_after_final_pin)(void);

/* After @passes short passes (>= 1), the last of which emitted @changed pages
 * and the one before @prev_changed (UINT64_MAX if none): is the next pass the
 * final one?  @stage_pages is how many pages the final pass can stage. */
bool edb__lp_final_next(unsigned passes, uint64_t changed, uint64_t prev_changed,
                        uint64_t stage_pages);

#endif

/*
 * lowpin.c: the pass planner of low-pin backups (lowpin.h).
 *
 * Why these rules: the final pass pins its snapshot for one read-and-hash of
 * every page plus the reads of the pages that changed since the pass before;
 * those are staged in memory, so the pin never waits on the consumer unless
 * more changed than the stage holds.  A pass that changed at most half the
 * stage predicts a final pass that fits (the final pass takes about as long as
 * the last short one, which writers had to change pages in).  Another short
 * pass pays only when it shrinks the delta: once a pass changes more than
 * three quarters of the one before, writers dirty pages as fast as passes go,
 * and more passes only cost time.
 *
 * Thread safety: pure functions.
 */
#include "config.h"

#include "lowpin.h"

_Atomic size_t edb__lp_stage_bytes = EDB__LP_STAGE_BYTES;
_Atomic uint64_t edb__lp_stage_flushes;
void (*edb__lp_before_final)(void);

bool
edb__lp_final_next(unsigned passes, uint64_t changed, uint64_t prev_changed, uint64_t stage_pages)
{
    if (passes == 0)
        return false;                   /* the first pass copies everything, short */
    if (passes >= EDB__LP_MAX_PASSES)
        return true;
    if (changed <= stage_pages / 2)
        return true;
    if (prev_changed != UINT64_MAX && changed > prev_changed / 4 * 3)
        return true;                    /* not converging */
    return false;
}

/*
 * ref.h: reference counts over C11 atomics (libgit2's GIT_REFCOUNT, in small).
 *
 * edb__ref_get() takes a reference; edb__ref_put() drops one and returns true
 * for the caller that dropped the last, which then frees.  The acq_rel
 * decrement makes every write done before a put visible to the freeing thread.
 */
#ifndef EDB_REF_H
#define EDB_REF_H

#include <stdatomic.h>
#include <stdbool.h>

#include "annotate.h"

typedef struct edb__ref { atomic_uint count; } edb__ref;

static inline void
edb__ref_init(edb__ref *r, unsigned n)
{
    atomic_init(&r->count, n);
}

static inline void
edb__ref_get(edb__ref *r)
{
    atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
}

/* Returns true when this put dropped the last reference.  acq_rel rather than
 * release + an acquire fence: the same guarantee, and ThreadSanitizer (which
 * does not support atomic_thread_fence) understands it. */
static inline bool
edb__ref_put(edb__ref *r)
{
    EDB_HB_BEFORE(&r->count);
    if (atomic_fetch_sub_explicit(&r->count, 1, memory_order_acq_rel) == 1) {
        EDB_HB_AFTER(&r->count);
        EDB_HB_FORGET(&r->count);
        return true;
    }
    return false;
}

#endif

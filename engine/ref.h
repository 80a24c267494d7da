/*
 * ref.h: reference counts over C11 atomics (libgit2's GIT_REFCOUNT, in small).
 *
 * edb__ref_get() takes a reference; edb__ref_put() drops one and returns true
 * for the caller that dropped the last, which then frees.  The release/acquire
 * pair makes every write done before a put visible to the freeing thread.
 */
#ifndef EDB_REF_H
#define EDB_REF_H

#include <stdatomic.h>
#include <stdbool.h>

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

/* Returns true when this put dropped the last reference. */
static inline bool
edb__ref_put(edb__ref *r)
{
    if (atomic_fetch_sub_explicit(&r->count, 1, memory_order_release) == 1) {
        atomic_thread_fence(memory_order_acquire);
        return true;
    }
    return false;
}

#endif

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

/* Helgrind does not understand C11 atomics: tell it that every put happens
 * before the free of the last put (no-ops when not run under valgrind). */
#if defined(__has_include)
#if __has_include(<valgrind/helgrind.h>)
#include <valgrind/helgrind.h>
#endif
#endif
#ifndef ANNOTATE_HAPPENS_BEFORE
#define ANNOTATE_HAPPENS_BEFORE(obj) ((void)(obj))
#define ANNOTATE_HAPPENS_AFTER(obj) ((void)(obj))
#define ANNOTATE_HAPPENS_BEFORE_FORGET_ALL(obj) ((void)(obj))
#endif

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
    ANNOTATE_HAPPENS_BEFORE(&r->count);
    if (atomic_fetch_sub_explicit(&r->count, 1, memory_order_acq_rel) == 1) {
        ANNOTATE_HAPPENS_AFTER(&r->count);
        ANNOTATE_HAPPENS_BEFORE_FORGET_ALL(&r->count);
        return true;
    }
    return false;
}

#endif

/*
 * annotate.h: telling helgrind about synchronization it cannot see.
 *
 * Helgrind models mutexes, condition variables and thread create/join, not
 * C11 atomics, so it reports every lock-free publication as a race.  Where edb
 * publishes data through an atomic it says so with these (valgrind's own
 * client requests: a few instructions that do nothing unless the program runs
 * under valgrind; no-ops when valgrind's headers are absent):
 *
 * - EDB_HB_BEFORE(obj) just before a release store or decrement on obj,
 *   EDB_HB_AFTER(obj) just after the acquire load that saw it: everything the
 *   storing thread did before the store happens before what the loading thread
 *   does after the load.
 * - EDB_ATOMIC_VAR(addr, size) once, when an atomic variable is initialized:
 *   its own loads and stores are atomic, never a race (helgrind stops checking
 *   those bytes only).
 *
 * ThreadSanitizer understands the atomics themselves and needs none of this;
 * the TSan build checks the same code without the annotations' help.
 */
#ifndef EDB_ANNOTATE_H
#define EDB_ANNOTATE_H

#if defined(__has_include)
#if __has_include(<valgrind/helgrind.h>)
#include <valgrind/helgrind.h>
#endif
#endif

#ifdef ANNOTATE_HAPPENS_BEFORE
#define EDB_HB_BEFORE(obj) ANNOTATE_HAPPENS_BEFORE(obj)
#define EDB_HB_AFTER(obj) ANNOTATE_HAPPENS_AFTER(obj)
#define EDB_HB_FORGET(obj) ANNOTATE_HAPPENS_BEFORE_FORGET_ALL(obj)
#define EDB_ATOMIC_VAR(addr, size) VALGRIND_HG_DISABLE_CHECKING(addr, size)
#else
#define EDB_HB_BEFORE(obj) ((void)(obj))
#define EDB_HB_AFTER(obj) ((void)(obj))
#define EDB_HB_FORGET(obj) ((void)(obj))
#define EDB_ATOMIC_VAR(addr, size) ((void)(addr), (void)(size))
#endif

#endif

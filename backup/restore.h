/*
 * restore.h: restore's internals shared with restore_tmp.c and the tests: the
 * owner marker of restore's temporary directories and the sweep of those left
 * by restores that were killed (restore_tmp.c), and the write-back threshold.
 *
 * Thread safety: reentrant; the marker is an open-file-description lock, so
 * restores in threads of one process exclude each other like processes do.
 */
#ifndef EDB_RESTORE_H
#define EDB_RESTORE_H

#include <stdint.h>

/* Restore starts the kernel's write-back of data.mdb (edb__sys_writeback)
 * after every this many bytes written (default 32 MiB).  Not a public knob:
 * tests lower it to reach that path with small archives; set it only while no
 * restore runs. */
extern uint64_t edb__restore_writeback;

/* The marker's name inside a temporary directory. */
#define EDB__RESTORE_MARK "restore.lock"

/* Create EDB__RESTORE_MARK in the new temporary directory @tmpfd, already
 * write-locked when it appears under its name.  *@out is the descriptor that
 * holds the lock (keep it open for the whole restore), or -1 when the system
 * has no open-file-description locks (then nothing is marked and nothing of
 * this restore can ever be swept).  0 or an EDB_* code. */
int  edb__restore_mark(int *out, int tmpfd);

/* Remove the temporary directories beside @base in @parentfd that dead
 * restores left: `.<base>.restore-XXXXXX` (six letters or digits, nothing
 * more), a real directory owned by this user, holding only regular files named
 * restore.lock, restore.lock.new, data.mdb, lock.mdb (any or none), whose own
 * flock, marker locks and lock.mdb byte 0 are all free (no live restore, no
 * LMDB user; restore_tmp.c says why that is exact).  Anything else is left
 * alone: another name, a symbolic link, unknown content, a lock somebody holds.
 * At most 16 candidates per call.  Best effort: failures are ignored.
 * Returns the number removed. */
int  edb__restore_sweep(int parentfd, const char *base);

#endif

/*
 * dbswap.h: replacing a database directory by one built beside it
 * (edb_env_upgrade in upgrade.c, edb_env_pack in compact.c).
 *
 * Both build the new database in "<path>.<suffix>", check it, and exchange
 * it with the old directory in one renameat2(RENAME_EXCHANGE), the parent
 * fsynced; the old files are removed last.  Until the exchange the old
 * directory is not written, so an interruption leaves it as it was.
 *
 * A swap betrays any process that has the old database open: it keeps
 * reading and writing the old inodes, and its commits are lost.  LMDB holds
 * a shared fcntl lock on byte 0 of lock.mdb in every process that has the
 * environment open (mdb_env_excl_lock: a write lock taken by the first
 * opener is downgraded to a read lock once the lock file is set up), so
 * F_GETLK for a write lock there names such a process.  POSIX locks belong
 * to the process and go when ANY descriptor of the file is closed: the
 * descriptor used for the question stays open until every environment of
 * the process on that file is closed.  F_GETLK does not see the calling
 * process's own locks: another edb_env of this process on the same
 * database is not detected (the caller's promise).
 */
#ifndef EDB_DBSWAP_H
#define EDB_DBSWAP_H

#include <limits.h>

/* The paths of one swap. */
typedef struct edb__swap {
    char path[PATH_MAX];     /* the database directory, without trailing '/' */
    char tmp[PATH_MAX];      /* "<path>.<suffix>": the new database is built there */
    char parent[PATH_MAX];   /* the directory holding both */
    int lockfd;              /* path/lock.mdb, for edb__swap_check_open; -1 */
} edb__swap;

/* Fill @sw for database @path and @suffix (".upgrade", ".compact");
 * EDB_INVAL for an empty or too long path.  @who prefixes messages. */
int edb__swap_init(edb__swap *sw, const char *path, const char *suffix, const char *who);
/* EDB_BUSY "DB is open in process N; close it first" when another process
 * holds LMDB's lock on path/lock.mdb, else 0.  The first call opens
 * lock.mdb (kept open until edb__swap_done); when it does not exist no
 * process has the database open (LMDB creates it) and the next call opens
 * it. */
int edb__swap_check_open(edb__swap *sw, const char *who);
/* EDB_BUSY when this process maps path/data.mdb (another environment on
 * it: /proc/self/maps, device and inode), else 0 (also without /proc).
 * Call before opening the database. */
int edb__swap_check_self(const edb__swap *sw, const char *who);
/* Remove directory @dir holding at most LMDB's two files; EDB_EXISTS when
 * it holds anything else (not ours to delete). */
int edb__swap_remove_dir(const char *dir, const char *who);
/* fsync the directory @path. */
int edb__swap_fsync_dir(const char *path, const char *who);
/* fsync sw->tmp, exchange it with sw->path, fsync the parent. */
int edb__swap_exchange(edb__swap *sw, const char *who);
/* Close the lock.mdb descriptor: call after closing every environment of
 * this process on the old database. */
void edb__swap_done(edb__swap *sw);

#endif

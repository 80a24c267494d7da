/*
 * sys_fs.h: more wrapped system calls for restore and verify (directories,
 * permissions, locks, randomness), on the same fault countdown as sys.h.
 *
 * Thread safety: as sys.h.
 */
#ifndef EDB_SYS_FS_H
#define EDB_SYS_FS_H

#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

int     edb__sys_fstat(int fd, struct stat *st);
int     edb__sys_fstatat(int dirfd, const char *path, struct stat *st, int flags);
int     edb__sys_fchmod(int fd, mode_t mode);
/* fcntl(fd, cmd, fl) for the F_*SETLK / F_OFD_* lock commands. */
int     edb__sys_fcntl_lock(int fd, int cmd, struct flock *fl);
/* flock(fd, op): restore's temporary directories are locked on themselves. */
int     edb__sys_flock(int fd, int op);
/* renameat2(2) with RENAME_EXCHANGE / RENAME_NOREPLACE; -1 with ENOSYS or
 * EINVAL when the kernel or file system lacks it. */
int     edb__sys_renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags);
/* fdopendir: on success the DIR owns @fd; on failure @fd is still the caller's. */
DIR    *edb__sys_fdopendir(int fd);
int     edb__sys_closedir(DIR *d);
/* Fill @buf with @n random bytes (getrandom, falling back to /dev/urandom). */
int     edb__sys_random(void *buf, size_t n);

#endif

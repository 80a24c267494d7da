/*
 * sys.h: every system call and allocation of the backup, verify and restore
 * paths goes through these wrappers, so that a test build can make the N-th
 * call fail (SQLite's I/O-error countdown).
 *
 * The wrappers behave exactly like the calls they wrap (same return values and
 * errno).  With EDB_FAULT_INJECTION defined (libedb_test.la, which the test
 * programs link; never the installed libedb, see Makefile.am) a countdown may
 * be armed: when it reaches zero the call fails with the armed errno without
 * running, or, for read/write calls with EDB__FAULT_SHORT, transfers less than
 * asked.  Once-only faults disarm after firing; persistent faults keep failing.
 *
 * Thread safety: the wrappers are thread-safe; the countdown is one process-wide
 * atomic, meant to be armed by a single-threaded test driver.
 */
#ifndef EDB_SYS_H
#define EDB_SYS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <poll.h>
#include <sys/types.h>
#include <sys/uio.h>

int     edb__sys_open(const char *path, int flags, mode_t mode);
int     edb__sys_openat(int dirfd, const char *path, int flags, mode_t mode);
int     edb__sys_close(int fd);
ssize_t edb__sys_read(int fd, void *buf, size_t n);
ssize_t edb__sys_pread(int fd, void *buf, size_t n, off_t off);
ssize_t edb__sys_write(int fd, const void *buf, size_t n);
ssize_t edb__sys_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t edb__sys_writev(int fd, const struct iovec *iov, int iovcnt);
ssize_t edb__sys_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off);
int     edb__sys_fsync(int fd);
/* Start writing @fd's dirty pages back without waiting for them (Linux
 * sync_file_range(SYNC_FILE_RANGE_WRITE) of the whole file): a later fsync
 * then has less to wait for.  Not a durability point.  -1 with errno ENOSYS
 * where the call does not exist. */
int     edb__sys_writeback(int fd);
int     edb__sys_ftruncate(int fd, off_t len);
int     edb__sys_rename(const char *from, const char *to);
int     edb__sys_renameat(int fromfd, const char *from, int tofd, const char *to);
int     edb__sys_unlink(const char *path);
int     edb__sys_unlinkat(int dirfd, const char *path, int flags);
int     edb__sys_linkat(int fromfd, const char *from, int tofd, const char *to, int flags);
int     edb__sys_mkdir(const char *path, mode_t mode);
int     edb__sys_mkdirat(int dirfd, const char *path, mode_t mode);
void   *edb__sys_malloc(size_t n);
void   *edb__sys_calloc(size_t n, size_t size);
void   *edb__sys_realloc(void *p, size_t n);
/* posix_memalign through the shim; NULL with errno set on failure; free() frees it. */
void   *edb__sys_aligned_alloc(size_t align, size_t n);
void   *edb__sys_mmap(size_t len, int prot, int flags, int fd, off_t off);
int     edb__sys_munmap(void *p, size_t len);     /* a release: never fault-injected */
int     edb__sys_thread_create(pthread_t *t, void *(*fn)(void *), void *arg);
/* poll(2); a fault fails it with the armed errno. */
int     edb__sys_poll(struct pollfd *fds, nfds_t n, int timeout_ms);
/* A wake-up descriptor: eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC).  Readable
 * once edb__sys_wake_signal() wrote to it. */
int     edb__sys_wake_fd(void);
/* Make the wake-up descriptor readable (a write of 1 to the eventfd); never
 * blocks, never fault-injected (cancel must always get through). */
void    edb__sys_wake_signal(int fd);

/* Loops over EINTR and short transfers; returns 0 or -1 with errno set (a
 * write that transfers 0 bytes is EIO).  Built on the wrappers above. */
int     edb__sys_write_all(int fd, const void *buf, size_t n);
int     edb__sys_pwrite_all(int fd, const void *buf, size_t n, off_t off);
/* pwritev until every byte of iov[0 .. iovcnt) is written at @off; advances
 * the entries of @iov (the caller's scratch) as bytes go out. */
int     edb__sys_pwritev_all(int fd, struct iovec *iov, int iovcnt, off_t off);
/* Reads until n bytes or end of file; *got says how many (short only at EOF). */
int     edb__sys_read_full(int fd, void *buf, size_t n, size_t *got);
int     edb__sys_pread_full(int fd, void *buf, size_t n, off_t off, size_t *got);

/* ---- fault injection (test builds) ----
 * edb__fault_* exist in libedb_test.la only (built with EDB_FAULT_INJECTION);
 * a program that calls them must link it, as the test programs do. */
/* One countdown step for wrappers defined outside sys.c (backup/sys_fs.c):
 * 0 to let the call run, else the errno to fail it with (short transfers are
 * not simulated there). */
int  edb__sys_fault_check(void);
#define EDB__FAULT_PERSISTENT 0x1u  /* keep failing after the first fault */
#define EDB__FAULT_SHORT      0x2u  /* read/write calls transfer half (at least 1 byte) instead of failing */

/* Arm: the @n-th wrapped call from now (1 = the next) fails with @errnum.
 * n = 0 disarms. */
void edb__fault_arm(long n, int errnum, unsigned flags);
void edb__fault_disarm(void);
/* Faults fired since the last arm (0: the countdown never reached its call). */
long edb__fault_fired(void);
/* Wrapped calls made since the last arm: run a scenario once unarmed to learn
 * how many calls it makes. */
long edb__fault_calls(void);

#endif

/*
 * sys.c: the system-call and allocation shim of the backup, verify and restore
 * paths, with the fault-injection countdown (see sys.h).
 *
 * Invariant: with no fault armed, each wrapper is exactly the call it wraps.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sys.h"

#ifdef EDB_FAULT_INJECTION
static atomic_long countdown;      /* 0: disarmed; >0: calls left before the fault */
static atomic_long calls;
static atomic_long fired;
static atomic_int fault_errno;
static atomic_uint fault_flags;

void
edb__fault_arm(long n, int errnum, unsigned flags)
{
    atomic_store(&fault_errno, errnum);
    atomic_store(&fault_flags, flags);
    atomic_store(&fired, 0);
    atomic_store(&calls, 0);
    atomic_store(&countdown, n < 0 ? 0 : n);
}

void
edb__fault_disarm(void)
{
    atomic_store(&countdown, 0);
}

long
edb__fault_fired(void)
{
    return atomic_load(&fired);
}

long
edb__fault_calls(void)
{
    return atomic_load(&calls);
}

/* Returns 0 to let the call run, or the errno to fail it with.  *short_io is
 * set when the fault is a short transfer instead of an error. */
static int
fault_check(bool *short_io)
{
    *short_io = false;
    atomic_fetch_add(&calls, 1);
    long n = atomic_load(&countdown);
    while (n > 0) {
        long next = n - 1;
        if ((atomic_load(&fault_flags) & EDB__FAULT_PERSISTENT) && n == 1)
            next = 1;                       /* stays armed at "fire now" */
        if (atomic_compare_exchange_weak(&countdown, &n, next)) {
            if (n != 1)
                return 0;
            atomic_fetch_add(&fired, 1);
            if (atomic_load(&fault_flags) & EDB__FAULT_SHORT) {
                *short_io = true;
                return 0;
            }
            return atomic_load(&fault_errno);
        }
    }
    return 0;
}
int
edb__sys_fault_check(void)
{
    bool short_io;
    return fault_check(&short_io);
}
#define FAULT(fail_value)                                  \
    do {                                                   \
        bool edb__short;                                   \
        int edb__e = fault_check(&edb__short);             \
        if (edb__e) { errno = edb__e; return fail_value; } \
        (void)edb__short;                                  \
    } while (0)
#define FAULT_IO(n)                                        \
    do {                                                   \
        bool edb__short;                                   \
        int edb__e = fault_check(&edb__short);             \
        if (edb__e) { errno = edb__e; return -1; }         \
        if (edb__short && (n) > 1) (n) /= 2;               \
    } while (0)
#else
/* The installed library: no countdown, no edb__fault_* (sys_fs.c's wrappers
 * still ask, and always run). */
int edb__sys_fault_check(void) { return 0; }
#define FAULT(fail_value) do { } while (0)
#define FAULT_IO(n) do { } while (0)
#endif

int
edb__sys_open(const char *path, int flags, mode_t mode)
{
    FAULT(-1);
    return open(path, flags | O_CLOEXEC, mode);
}

int
edb__sys_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    FAULT(-1);
    return openat(dirfd, path, flags | O_CLOEXEC, mode);
}

int
edb__sys_close(int fd)
{
    /* close() is not failed on purpose: after a failed close the descriptor is
     * gone anyway on Linux, and pretending otherwise would leak it. */
    return close(fd);
}

ssize_t
edb__sys_read(int fd, void *buf, size_t n)
{
    FAULT_IO(n);
    return read(fd, buf, n);
}

ssize_t
edb__sys_pread(int fd, void *buf, size_t n, off_t off)
{
    FAULT_IO(n);
    return pread(fd, buf, n, off);
}

ssize_t
edb__sys_write(int fd, const void *buf, size_t n)
{
    FAULT_IO(n);
    return write(fd, buf, n);
}

ssize_t
edb__sys_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    FAULT_IO(n);
    return pwrite(fd, buf, n, off);
}

ssize_t
edb__sys_writev(int fd, const struct iovec *iov, int iovcnt)
{
    size_t one = 2;
    FAULT_IO(one);
    if (one == 1 && iovcnt > 0 && iov[0].iov_len > 1) {
        /* short transfer: write half of the first buffer only */
        return write(fd, iov[0].iov_base, iov[0].iov_len / 2);
    }
    return writev(fd, iov, iovcnt);
}

ssize_t
edb__sys_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    size_t one = 2;
    FAULT_IO(one);
    if (one == 1 && iovcnt > 0 && iov[0].iov_len > 1) {
        /* short transfer: write half of the first buffer only */
        return pwrite(fd, iov[0].iov_base, iov[0].iov_len / 2, off);
    }
    return pwritev(fd, iov, iovcnt, off);
}

int
edb__sys_fsync(int fd)
{
    FAULT(-1);
    return fsync(fd);
}

int
edb__sys_writeback(int fd)
{
    FAULT(-1);
#ifdef SYNC_FILE_RANGE_WRITE
    return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd;
    errno = ENOSYS;
    return -1;
#endif
}

int
edb__sys_ftruncate(int fd, off_t len)
{
    FAULT(-1);
    return ftruncate(fd, len);
}

int
edb__sys_rename(const char *from, const char *to)
{
    FAULT(-1);
    return rename(from, to);
}

int
edb__sys_renameat(int fromfd, const char *from, int tofd, const char *to)
{
    FAULT(-1);
    return renameat(fromfd, from, tofd, to);
}

int
edb__sys_linkat(int fromfd, const char *from, int tofd, const char *to, int flags)
{
    FAULT(-1);
    return linkat(fromfd, from, tofd, to, flags);
}

int
edb__sys_unlink(const char *path)
{
    FAULT(-1);
    return unlink(path);
}

int
edb__sys_unlinkat(int dirfd, const char *path, int flags)
{
    FAULT(-1);
    return unlinkat(dirfd, path, flags);
}

int
edb__sys_mkdir(const char *path, mode_t mode)
{
    FAULT(-1);
    return mkdir(path, mode);
}

int
edb__sys_mkdirat(int dirfd, const char *path, mode_t mode)
{
    FAULT(-1);
    return mkdirat(dirfd, path, mode);
}

void *
edb__sys_malloc(size_t n)
{
    FAULT(NULL);
    return malloc(n);
}

void *
edb__sys_calloc(size_t n, size_t size)
{
    FAULT(NULL);
    return calloc(n, size);
}

void *
edb__sys_realloc(void *p, size_t n)
{
    FAULT(NULL);
    return realloc(p, n);
}

void *
edb__sys_aligned_alloc(size_t align, size_t n)
{
    FAULT(NULL);
    void *p = NULL;
    int e = posix_memalign(&p, align, n);
    if (e != 0) {
        errno = e;
        return NULL;
    }
    return p;
}

void *
edb__sys_mmap(size_t len, int prot, int flags, int fd, off_t off)
{
    FAULT(MAP_FAILED);
    return mmap(NULL, len, prot, flags, fd, off);
}

int
edb__sys_munmap(void *p, size_t len)
{
    return munmap(p, len);
}

int
edb__sys_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
    bool short_io = false;
#ifdef EDB_FAULT_INJECTION
    int e = fault_check(&short_io);
    if (e)
        return e;                     /* pthread_create returns the error */
#endif
    (void)short_io;
    return pthread_create(t, NULL, fn, arg);
}

int
edb__sys_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    FAULT(-1);
    return poll(fds, n, timeout_ms);
}

int
edb__sys_wake_fd(void)
{
    FAULT(-1);
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

void
edb__sys_wake_signal(int fd)
{
    uint64_t one = 1;
    /* EAGAIN only when the counter would overflow: it is readable then anyway. */
    while (write(fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* The full-transfer loops: off < 0 means the file position (write/read),
 * else positional I/O (pwrite/pread) from off. */
static int
write_loop(int fd, const void *buf, size_t n, off_t off)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = off < 0 ? edb__sys_write(fd, p, n) : edb__sys_pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        if (off >= 0)
            off += w;
        n -= (size_t)w;
    }
    return 0;
}

static int
read_loop(int fd, void *buf, size_t n, off_t off, size_t *got)
{
    char *p = buf;
    *got = 0;
    while (n > 0) {
        ssize_t r = off < 0 ? edb__sys_read(fd, p, n) : edb__sys_pread(fd, p, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        p += r;
        if (off >= 0)
            off += r;
        *got += (size_t)r;
        n -= (size_t)r;
    }
    return 0;
}

int
edb__sys_write_all(int fd, const void *buf, size_t n)
{
    return write_loop(fd, buf, n, -1);
}

int
edb__sys_pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
    if (off < 0) {
        errno = EINVAL;
        return -1;
    }
    return write_loop(fd, buf, n, off);
}

int
edb__sys_pwritev_all(int fd, struct iovec *iov, int iovcnt, off_t off)
{
    if (off < 0) {
        errno = EINVAL;
        return -1;
    }
    while (iovcnt > 0) {
        if (iov[0].iov_len == 0) {
            iov++;
            iovcnt--;
            continue;
        }
        ssize_t w = edb__sys_pwritev(fd, iov, iovcnt > 1024 ? 1024 : iovcnt, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        off += w;
        size_t left = (size_t)w;
        while (iovcnt > 0 && left >= iov[0].iov_len) {
            left -= iov[0].iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov[0].iov_base = (uint8_t *)iov[0].iov_base + left;
            iov[0].iov_len -= left;
        }
    }
    return 0;
}

int
edb__sys_read_full(int fd, void *buf, size_t n, size_t *got)
{
    return read_loop(fd, buf, n, -1, got);
}

int
edb__sys_pread_full(int fd, void *buf, size_t n, off_t off, size_t *got)
{
    if (off < 0) {
        *got = 0;
        errno = EINVAL;
        return -1;
    }
    return read_loop(fd, buf, n, off, got);
}

/*
 * sys_fs.c: wrappers of sys_fs.h.  Each runs one step of the fault countdown
 * of sys.c first, so restore's directory handling is exercised by the same
 * fault loops as its reads and writes.
 *
 * Invariant: with no fault armed, each wrapper is exactly the call it wraps.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sys.h"
#include "sys_fs.h"

#define FAULT(fail_value)                          \
    do {                                           \
        int edb__e = edb__sys_fault_check();       \
        if (edb__e) { errno = edb__e; return fail_value; } \
    } while (0)

int
edb__sys_fstat(int fd, struct stat *st)
{
    FAULT(-1);
    return fstat(fd, st);
}

int
edb__sys_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    FAULT(-1);
    return fstatat(dirfd, path, st, flags);
}

int
edb__sys_fchmod(int fd, mode_t mode)
{
    FAULT(-1);
    return fchmod(fd, mode);
}

int
edb__sys_fcntl_lock(int fd, int cmd, struct flock *fl)
{
    FAULT(-1);
    return fcntl(fd, cmd, fl);
}

int
edb__sys_flock(int fd, int op)
{
    FAULT(-1);
    return flock(fd, op);
}

int
edb__sys_renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags)
{
    FAULT(-1);
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, fromfd, from, tofd, to, flags);
#else
    (void)fromfd; (void)from; (void)tofd; (void)to; (void)flags;
    errno = ENOSYS;
    return -1;
#endif
}

DIR *
edb__sys_fdopendir(int fd)
{
    FAULT(NULL);
    return fdopendir(fd);
}

int
edb__sys_closedir(DIR *d)
{
    return closedir(d);
}

int
edb__sys_random(void *buf, size_t n)
{
    FAULT(-1);
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        p += r;
        n -= (size_t)r;
    }
    if (n == 0)
        return 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    int rc = edb__sys_read_full(fd, p, n, &got);
    close(fd);
    if (rc == 0 && got != n) {
        errno = EIO;
        return -1;
    }
    return rc;
}

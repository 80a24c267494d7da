/*
 * save.c: the library's archive writers, edb_backup_save (a file, atomically)
 * and edb_backup_write_fd (any descriptor: a pipe, a socket, stdout).
 *
 * Both open one stream of the backup and write its ring slots straight from
 * the ring (edb__stream_consume: no copy), every filled slot in one writev,
 * so the copier hashes the next batch while this thread writes the last ones.
 * Slot memory is page-aligned and every archive structure is a multiple of
 * 4096 bytes, so a file is written with O_DIRECT where the file system
 * allows it (no page-cache copy, no writeback storm); it falls back to
 * buffered writes otherwise.
 *
 * Their streams are zero-copy (edb__stream_open): a full backup's frames
 * reach writev as their header block plus the snapshot's pages in the
 * stream's read-only map of data.mdb, never copied in user space (DESIGN.md,
 * "Speed"), and the bytes are those edb_backup_read() returns.  Incremental
 * and low-pin backups write copies from the slots.
 *
 * Guarantees of edb_backup_save: the final name appears only when the
 * archive is complete and durable (data, fsync, link or rename, fsync of the
 * directory); until then the file has no name at all (O_TMPFILE), so even a
 * SIGKILL leaves nothing, or, where unnamed files are refused, a hidden
 * temporary name (O_EXCL|O_NOFOLLOW) beside the target.  On any error or
 * cancellation what was written is removed and the final name is untouched.
 * The file is 0600 whatever the umask.
 *
 * Cancellable whatever the output does (issue #11): the descriptor of
 * edb_backup_write_fd is non-blocking for the call (its O_NONBLOCK restored on
 * return); a write that would block waits in poll() on the descriptor and on
 * a wake-up eventfd registered on the stream's ring, which edb__ring_cancel
 * makes readable (stop, end, env close, close of the stream).  The sink also
 * checks `canceled` before every write, so nothing is written once the cancel
 * has returned, except a non-blocking write already in progress.
 * tests/model/cancel.pml models this wait (the writer process, SC_WRITEFD).
 *
 * SIGPIPE never kills the host: edb_backup_write_fd blocks it in the calling
 * thread while it writes, and consumes a SIGPIPE its own write raised (the
 * write's EPIPE is then reported as EDB_IO "broken pipe").  The process-wide
 * disposition is never changed.
 *
 * Every system call goes through sys.h, so the fault tests reach all of it.
 * Thread safety: as edb_backup_open / edb_backup_read; cancel from another
 * thread with edb_backup_stop().
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "edb_backup.h"
#include "error.h"
#include "stream.h"
#include "sys.h"
#include "sys_fs.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define SINK_IOV 1024              /* IOV_MAX on Linux */

typedef struct sink {
    int fd;
    bool direct;               /* fd has O_DIRECT */
    const char *what;          /* for messages: the path or "descriptor N" */
    edb_backup *bk;
    edb_backup_progress_fn progress;
    void *ctx;
    uint64_t written;
    edb__ring *ring;           /* the stream's ring while pump() drains it (cancel check) */
    int wake;                  /* wake-up descriptor registered on ring (-1: none) */
} sink;

/* Drop O_DIRECT from the descriptor: buffered writes from now on. */
static void
sink_buffered(sink *k)
{
    int fl = fcntl(k->fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(k->fd, F_SETFL, fl & ~O_DIRECT);
    k->direct = false;
}

static int
sink_canceled(sink *k)
{
    return edb__err(EDB_CANCELED, "writing the archive to %s: the backup was stopped or ended, "
                    "or its environment closed", k->what);
}

/* The descriptor is non-blocking and full: wait until it drains or the
 * stream is canceled (the wake-up descriptor becomes readable).  Never a
 * wait the cancel cannot reach. */
static int
sink_wait(sink *k)
{
    for (;;) {
        struct pollfd p[2] = { { .fd = k->fd, .events = POLLOUT }, { .fd = k->wake, .events = POLLIN } };
        int r = edb__sys_poll(p, k->wake >= 0 ? 2 : 1, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return edb__sys_err(errno, k->what);
        }
        if (k->wake >= 0 && (p[1].revents & POLLIN))
            return sink_canceled(k);
        if (p[0].revents & POLLNVAL)
            return edb__err(EDB_INVAL, "writing the archive to %s: not an open descriptor", k->what);
        if (p[0].revents & (POLLOUT | POLLERR | POLLHUP))
            return 0;                  /* writable, or the write reports the error */
    }
}

/* Write the n bytes of iov[0 .. cnt) with writev, looping over EINTR and short
 * writes (the entries are advanced in a private copy).  An O_DIRECT write
 * the file system refuses (EINVAL), or an entry that is not 4 KiB-aligned,
 * switches the descriptor to buffered I/O and goes on: correctness never
 * depends on O_DIRECT. */
static int
sink_write(void *arg, const struct iovec *iov, int cnt, size_t n, size_t *used)
{
    sink *k = arg;
    struct iovec v[SINK_IOV];
    int vn = 0, next = 0;            /* v[0 .. vn): entries not yet written; next: first of iov not in v */
    *used = 0;
    while (*used < n) {
        /* Nothing is written once the stream is canceled (stop, end, env
         * close, close of the stream). */
        if (k->ring != NULL && edb__ring_is_canceled(k->ring))
            return sink_canceled(k);
        /* Refill the window from iov (entries already written are gone from v). */
        while (vn < SINK_IOV && next < cnt) {
            if (iov[next].iov_len > 0)
                v[vn++] = iov[next];
            next++;
        }
        if (k->direct) {
            for (int i = 0; i < vn; i++)
                if (v[i].iov_len % 4096 != 0 || (uintptr_t)v[i].iov_base % 4096 != 0) {
                    sink_buffered(k);
                    break;
                }
        }
        ssize_t w = edb__sys_writev(k->fd, v, vn);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                EDB_RET(sink_wait(k));
                continue;
            }
            if (errno == EINVAL && k->direct) {
                int fl = fcntl(k->fd, F_GETFL);
                if (fl >= 0 && fcntl(k->fd, F_SETFL, fl & ~O_DIRECT) == 0) {
                    k->direct = false;
                    continue;
                }
            }
            if (errno == EPIPE)
                return edb__err(EDB_IO, "writing the archive to %s: broken pipe (the reader went away)",
                                k->what);
            return edb__sys_err(errno, k->what);
        }
        if (w == 0)
            return edb__err(EDB_IO, "writing the archive to %s: the write made no progress", k->what);
        *used += (size_t)w;
        /* Drop the entries written whole, trim the one written in part. */
        size_t left = (size_t)w;
        int i = 0;
        while (i < vn && left >= v[i].iov_len)
            left -= v[i++].iov_len;
        if (i < vn) {
            v[i].iov_base = (uint8_t *)v[i].iov_base + left;
            v[i].iov_len -= left;
        }
        memmove(v, v + i, (size_t)(vn - i) * sizeof *v);
        vn -= i;
    }
    k->written += n;
    if (k->progress != NULL) {
        uint64_t done = 0, total = 0;
        (void)edb_backup_progress(k->bk, &done, &total);
        k->progress(k->ctx, k->written, total);
    }
    return 0;
}

/* Drain one new stream of bk into k.  Closes the stream on every path,
 * except that on success with @keep non-NULL it is handed back open in *keep
 * for the caller to close: edb_backup_save closes it only once the archive
 * has its final name, because the last put of a zero-copy stream unmaps the
 * snapshot's pages (milliseconds for a large database), and nothing should
 * widen the moment in which a killed process leaves a complete temporary
 * file behind. */
static int
pump(sink *k, bool zerocopy, edb_backup_stream **keep)
{
    edb_backup_stream *s;
    k->wake = edb__sys_wake_fd();
    if (k->wake < 0)
        return edb__sys_err(errno, "backup: a wake-up descriptor for the archive writer");
    int rc = edb__stream_open(&s, k->bk, zerocopy);
    if (rc != 0) {
        edb__sys_close(k->wake);
        k->wake = -1;
        return rc;
    }
    /* Our own reference keeps the ring alive even when edb_backup_end() or
     * edb_env_close() removes the handle meanwhile; from here on a cancel
     * wakes a sink_wait(). */
    if (edb__handle_ref(EDB__H_STREAM, s) == NULL) {
        edb__sys_close(k->wake);
        k->wake = -1;
        return edb__err(EDB_CANCELED, "backup: the stream was closed (backup ended or environment closed)");
    }
    k->ring = &s->ring;
    edb__ring_set_wake(k->ring, k->wake);
    size_t n;
    do {
        rc = edb__stream_consume(s, sink_write, k, &n);
    } while (rc == 0 && n > 0);
    edb__ring_set_wake(k->ring, -1);
    k->ring = NULL;
    edb__sys_close(k->wake);
    k->wake = -1;
    edb__stream_put(s);                /* ours; the handle's is closed below or by its ender */
    if (rc == 0 && keep != NULL) {
        *keep = s;
        return 0;
    }
    edb_backup_close(s);
    return rc;
}

int
edb_backup_write_fd(edb_backup *bk, int fd, edb_backup_progress_fn progress, void *ctx)
{
    if (bk == NULL || fd < 0)
        return edb__err(EDB_INVAL, "edb_backup_write_fd: %s", bk == NULL ? "backup is NULL" : "bad descriptor");
    char what[64];
    snprintf(what, sizeof what, "descriptor %d", fd);
    sink k = { .fd = fd, .what = what, .bk = bk, .progress = progress, .ctx = ctx, .wake = -1 };

    /* Non-blocking for the call's duration, restored on return: a write that
     * cannot proceed waits in poll() beside the wake-up descriptor, so a
     * cancel reaches it (a blocking write to a pipe nobody reads could not be
     * interrupted by anything). */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return edb__err(errno == EBADF ? EDB_INVAL : EDB_IO, "edb_backup_write_fd: %s: %s", what,
                        strerror(errno));
    bool set_nonblock = !(fl & O_NONBLOCK);
    if (set_nonblock && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return edb__sys_err(errno, what);

    /* Block SIGPIPE in this thread only; remember whether one was pending
     * already, so that only a SIGPIPE our own write raised is consumed. */
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigset_t pending;
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);

    int rc = pump(&k, true, NULL);

    if (!was_pending) {
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE)) {
            const struct timespec zero = { 0, 0 };
            while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
                ;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (set_nonblock) {
        int now = fcntl(fd, F_GETFL);
        if (now >= 0)
            (void)fcntl(fd, F_SETFL, now & ~O_NONBLOCK);
    }
    if (rc == 0)
        edb__err_clear();
    return rc;
}

/* Split path into its directory (opened) and base name. */
static int
open_parent(const char *path, int *dirfd, const char **base)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (slash == NULL) {
        snprintf(dir, sizeof dir, ".");
        *base = path;
    } else {
        size_t len = slash == path ? 1 : (size_t)(slash - path);
        if (len >= sizeof dir)
            return edb__err(EDB_INVAL, "backup path '%s' is too long", path);
        memcpy(dir, path, len);
        dir[len] = '\0';
        *base = slash + 1;
    }
    if (**base == '\0' || strlen(*base) > NAME_MAX - 16)
        return edb__err(EDB_INVAL, "backup path '%s' does not name a file", path);
    *dirfd = edb__sys_open(dir, O_RDONLY | O_DIRECTORY, 0);
    if (*dirfd < 0)
        return edb__sys_err(errno, dir);
    return 0;
}

/* A hidden name beside the target: ".<base>.tmp.<12 hex digits>". */
static int
temp_name(char tmp[NAME_MAX + 1], const char *base)
{
    unsigned char rnd[6];
    if (edb__sys_random(rnd, sizeof rnd) != 0)
        return edb__sys_err(errno, "random name for the temporary archive");
    snprintf(tmp, NAME_MAX + 1, ".%s.tmp.%02x%02x%02x%02x%02x%02x", base,
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    return 0;
}

/* Open @name in @dirfd (NULL: an unnamed O_TMPFILE file in the directory)
 * for writing, 0600, with O_DIRECT where the file system accepts it. */
static int
open_out(int dirfd, const char *name)
{
    int oflags = name == NULL ? O_WRONLY | O_TMPFILE
                              : O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
    const char *at = name == NULL ? "." : name;
    int fd = edb__sys_openat(dirfd, at, oflags | O_DIRECT, 0600);
    if (fd < 0 && errno == EINVAL)              /* no O_DIRECT here (tmpfs): buffered */
        fd = edb__sys_openat(dirfd, at, oflags, 0600);
    return fd;
}

/* Create the output file; *tmp is its name, or "" for an unnamed file.
 *
 * Preferred is an unnamed file (O_TMPFILE): it gets a name only once it is
 * complete and durable, so a process killed at any earlier moment leaves
 * nothing behind.  Linking it needs /proc/self/fd (linkat with
 * AT_EMPTY_PATH needs a capability).  Where either is missing, a hidden
 * temporary name is used instead: removed on every error, but left behind by
 * a SIGKILL (verify and restore refuse it: it has no end block). */
static int
create_out(int dirfd, const char *path, const char *base, char tmp[NAME_MAX + 1], int *out)
{
    tmp[0] = '\0';
    int fd = -1;
    if (access("/proc/self/fd", X_OK) == 0) {  /* a probe, not a fault site */
        fd = open_out(dirfd, NULL);
        if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
            return edb__sys_err(errno, path);
    }
    for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
        EDB_RET(temp_name(tmp, base));
        fd = open_out(dirfd, tmp);
        if (fd < 0 && errno != EEXIST)
            return edb__sys_err(errno, path);
    }
    if (fd < 0)
        return edb__err(EDB_EXISTS, "no free temporary name beside '%s'", path);
    *out = fd;
    return 0;
}

/* Give the complete, fsynced output its final name: a link of the unnamed
 * file (which, like RENAME_NOREPLACE, never replaces), or a rename of the
 * temporary name.  EDB_SAVE_OVERWRITE: an unnamed file is linked under a
 * temporary name first, then renamed over the target.  On failure *tmp names
 * what must be removed ("" when nothing was linked). */
static int
publish(int dirfd, int fd, const char *path, const char *base, unsigned flags,
        char tmp[NAME_MAX + 1])
{
    if (tmp[0] == '\0') {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        const char *to = base;
        if (flags & EDB_SAVE_OVERWRITE) {
            EDB_RET(temp_name(tmp, base));
            to = tmp;
        }
        if (edb__sys_linkat(AT_FDCWD, proc, dirfd, to, AT_SYMLINK_FOLLOW) != 0) {
            int e = errno;
            tmp[0] = '\0';
            if (e == EEXIST && to == base)
                return edb__err(EDB_EXISTS, "'%s' appeared while the backup ran; the backup was not kept", path);
            return edb__sys_err(e, path);
        }
        if (to == base)
            return 0;
    }
    if (flags & EDB_SAVE_OVERWRITE) {
        if (edb__sys_renameat(dirfd, tmp, dirfd, base) != 0)
            return edb__sys_err(errno, path);
    } else if (edb__sys_renameat2(dirfd, tmp, dirfd, base, RENAME_NOREPLACE) != 0) {
        if (errno == EEXIST)
            return edb__err(EDB_EXISTS, "'%s' appeared while the backup ran; the backup was not kept", path);
        if (errno != EINVAL && errno != ENOSYS)
            return edb__sys_err(errno, path);
        /* No RENAME_NOREPLACE on this file system: the existence check before
         * the backup stands. */
        if (edb__sys_renameat(dirfd, tmp, dirfd, base) != 0)
            return edb__sys_err(errno, path);
    }
    return 0;
}

int
edb_backup_save(edb_backup *bk, const char *path, unsigned flags,
                edb_backup_progress_fn progress, void *ctx)
{
    int ret = 0, dirfd = -1, fd = -1;
    edb_backup_stream *stream = NULL;
    const char *base = NULL;
    char tmp[NAME_MAX + 1] = "";
    bool renamed = false;

    if (bk == NULL || path == NULL || *path == '\0')
        return edb__err(EDB_INVAL, "edb_backup_save: %s", bk == NULL ? "backup is NULL" : "no path");
    if (flags & ~(unsigned)EDB_SAVE_OVERWRITE)
        return edb__err(EDB_INVAL, "edb_backup_save: unknown flags 0x%x", flags);
    EDB_RET(open_parent(path, &dirfd, &base));

    struct stat st;
    if (edb__sys_fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!(flags & EDB_SAVE_OVERWRITE))
            EDB_ERR(edb__err(EDB_EXISTS, "'%s' exists (overwrite it explicitly)", path));
        if (!S_ISREG(st.st_mode))
            EDB_ERR(edb__err(EDB_INVAL, "'%s' exists and is not a regular file", path));
    } else if (errno != ENOENT) {
        EDB_ERR(edb__sys_err(errno, path));
    }

    EDB_ERR(create_out(dirfd, path, base, tmp, &fd));
    if (edb__sys_fchmod(fd, 0600) != 0)         /* exact, whatever the umask */
        EDB_ERR(edb__sys_err(errno, path));

    int fl = fcntl(fd, F_GETFL);
    sink k = { .fd = fd, .direct = fl >= 0 && (fl & O_DIRECT), .what = path, .bk = bk,
               .progress = progress, .ctx = ctx, .wake = -1 };
    EDB_ERR(pump(&k, true, &stream));

    if (edb__sys_fsync(fd) != 0)
        EDB_ERR(edb__sys_err(errno, path));
    EDB_ERR(publish(dirfd, fd, path, base, flags, tmp));
    tmp[0] = '\0';
    renamed = true;
    int cfd = fd;
    fd = -1;
    if (edb__sys_close(cfd) != 0)
        EDB_ERR(edb__sys_err(errno, path));
    if (edb__sys_fsync(dirfd) != 0)
        EDB_ERR(edb__sys_err(errno, "the directory of the archive"));
    edb__sys_close(dirfd);
    edb_backup_close(stream);
    edb__err_clear();
    return 0;

err:
    if (fd >= 0)
        edb__sys_close(fd);
    /* Remove what we wrote (unwrapped: cleanup is not a fault site); an
     * unnamed file vanishes with its descriptor.  After the rename only the
     * close or the directory's fsync can have failed: the name may not be
     * durable, and an error must not leave a complete-looking archive behind. */
    if (tmp[0] != '\0')
        (void)unlinkat(dirfd, tmp, 0);
    if (renamed)
        (void)unlinkat(dirfd, base, 0);
    if (dirfd >= 0)
        edb__sys_close(dirfd);
    edb_backup_close(stream);
    return ret;
}

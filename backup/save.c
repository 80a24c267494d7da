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
 * archive is complete and durable (data, fsync, rename, fsync of the
 * directory); on any error or cancellation the temporary file is removed and
 * the final name is untouched.  The temporary file is created 0600 with
 * O_EXCL|O_NOFOLLOW beside the target, whatever the umask.
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
    EDB_RET(edb__stream_open(&s, k->bk, zerocopy));
    int rc;
    size_t n;
    do {
        rc = edb__stream_consume(s, sink_write, k, &n);
    } while (rc == 0 && n > 0);
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
    sink k = { .fd = fd, .what = what, .bk = bk, .progress = progress, .ctx = ctx };

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

int
edb_backup_save(edb_backup *bk, const char *path, unsigned flags,
                edb_backup_progress_fn progress, void *ctx)
{
    int ret = 0, dirfd = -1, fd = -1;
    edb_backup_stream *stream = NULL;
    const char *base = NULL;
    char tmp[NAME_MAX + 1];
    bool created = false, renamed = false;

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

    /* The temporary file: ".<base>.tmp.<random>" beside the target. */
    for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
        unsigned char rnd[6];
        if (edb__sys_random(rnd, sizeof rnd) != 0)
            EDB_ERR(edb__sys_err(errno, "random name for the temporary archive"));
        snprintf(tmp, sizeof tmp, ".%s.tmp.%02x%02x%02x%02x%02x%02x", base,
                 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
        int oflags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
        fd = edb__sys_openat(dirfd, tmp, oflags | O_DIRECT, 0600);
        if (fd < 0 && errno == EINVAL)          /* no O_DIRECT here (tmpfs): buffered */
            fd = edb__sys_openat(dirfd, tmp, oflags, 0600);
        if (fd < 0 && errno != EEXIST)
            EDB_ERR(edb__sys_err(errno, path));
    }
    if (fd < 0)
        EDB_ERR(edb__err(EDB_EXISTS, "no free temporary name beside '%s'", path));
    created = true;
    if (edb__sys_fchmod(fd, 0600) != 0)         /* exact, whatever the umask */
        EDB_ERR(edb__sys_err(errno, path));

    int fl = fcntl(fd, F_GETFL);
    sink k = { .fd = fd, .direct = fl >= 0 && (fl & O_DIRECT), .what = path, .bk = bk,
               .progress = progress, .ctx = ctx };
    EDB_ERR(pump(&k, true, &stream));

    if (edb__sys_fsync(fd) != 0)
        EDB_ERR(edb__sys_err(errno, path));
    if (edb__sys_close(fd) != 0) {
        fd = -1;
        EDB_ERR(edb__sys_err(errno, path));
    }
    fd = -1;
    if (flags & EDB_SAVE_OVERWRITE) {
        if (edb__sys_renameat(dirfd, tmp, dirfd, base) != 0)
            EDB_ERR(edb__sys_err(errno, path));
    } else if (edb__sys_renameat2(dirfd, tmp, dirfd, base, RENAME_NOREPLACE) != 0) {
        if (errno == EEXIST)
            EDB_ERR(edb__err(EDB_EXISTS, "'%s' appeared while the backup ran; the backup was not kept", path));
        if (errno != EINVAL && errno != ENOSYS)
            EDB_ERR(edb__sys_err(errno, path));
        /* No RENAME_NOREPLACE on this file system: the existence check above stands. */
        if (edb__sys_renameat(dirfd, tmp, dirfd, base) != 0)
            EDB_ERR(edb__sys_err(errno, path));
    }
    created = false;
    renamed = true;
    if (edb__sys_fsync(dirfd) != 0)
        EDB_ERR(edb__sys_err(errno, "the directory of the archive"));
    edb__sys_close(dirfd);
    edb_backup_close(stream);
    edb__err_clear();
    return 0;

err:
    if (fd >= 0)
        edb__sys_close(fd);
    /* Remove what we wrote (unwrapped: cleanup is not a fault site).  After the
     * rename only the directory's fsync can have failed: the name may not be
     * durable, and an error must not leave a complete-looking archive behind. */
    if (created)
        (void)unlinkat(dirfd, tmp, 0);
    if (renamed)
        (void)unlinkat(dirfd, base, 0);
    if (dirfd >= 0)
        edb__sys_close(dirfd);
    edb_backup_close(stream);
    return ret;
}

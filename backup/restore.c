/*
 * restore.c: edb_backup_restore(): rebuild a database directory from a full
 * archive and its incrementals.
 *
 * Invariants:
 * - Everything is done relative to one descriptor of the target's parent
 *   directory (openat/mkdirat/renameat), so nothing is written outside it and
 *   no symbolic link at the target or inside a directory we create or replace
 *   is followed (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, O_EXCL).
 * - The new database is built in a fresh `.<name>.restore-XXXXXX` directory
 *   (0700; data.mdb 0600, set with fchmod whatever the umask) and only renamed
 *   to the target after every archive was read to its verified end block and
 *   every page of the result was proven to match the last page hash table
 *   (see "What is proven" below).  Any failure removes that directory; the
 *   target is untouched.  The directory carries a locked owner marker while
 *   the restore runs, and each restore first removes the temporary
 *   directories that killed restores left beside the same target
 *   (restore_tmp.c says exactly which).
 * - An existing database is replaced only with EDB_RESTORE_FORCE, only when it
 *   holds nothing but data.mdb and lock.mdb, and only while we hold an
 *   open-file-description write lock on byte 0 of its lock.mdb, which every
 *   LMDB process holds a shared lock on while it has the environment open.
 *
 *
 * What is proven, without reading data.mdb back:
 * - Writes: the pages of a frame arrive (reader.c) already checked against
 *   their frame entries and all in the reader's buffer; a run of consecutive
 *   page numbers is written with one pwrite straight from that buffer.  In
 *   the first archive of a chain, when it is neither incremental nor
 *   low-pin, runs of a frame separated by at most GAP_FILL_PAGES pages go
 *   out in one pwritev with zeros in the gaps (a database with scattered
 *   free pages made one pwrite per run: 11,722 for 52,667 pages of the
 *   package-index shape), but only above every page this archive wrote
 *   before (hiwater), so a gap never overwrites a page already written; the
 *   file is new, so those pages read as zeros anyway (H(zeros, p) below).  The
 *   hash the reader computed for each page (H(page, pgno)) is of the very
 *   bytes handed to the kernel: the reader hashed them in its buffer, and
 *   nothing writes that buffer until on_frame_end() of the frame returned,
 *   after the pwrite.  It is recorded, in archive order, in r->wr (one entry
 *   per page the archive carries), so each page is hashed once per restore.
 * - State: r->cur[p] is the hash of what data.mdb holds at page p, for every
 *   p < r->cur_n (the file's size in pages).  It starts empty (a new, empty
 *   file).  After archive i was read and written (advance_state()):
 *     p < 2:                the meta page we synthesised and wrote, hashed as
 *                           written;
 *     p carried by i:       the hash recorded for the last write of p, which
 *                           is wr[c->order] for the reader's carried entry c
 *                           (the reader keeps the last occurrence in archive
 *                           order, and we write in archive order, so a later
 *                           frame wins in both; low-pin repeats included);
 *     else p < old cur_n:   unchanged, the old cur[p] (nothing wrote it);
 *     else:                 H(zeros, p): the file was empty or truncated to
 *                           the old size, so the page reads as zeros.
 *   Then the file is truncated to npages and fstat must agree, and every
 *   cur[p] must equal the archive's page hash table entry p, else
 *   EDB_CHECKSUM.  So every page of the result is proven to match the last
 *   archive's table, as the former full read-back proved, unless the kernel
 *   stored other bytes than a successful pwrite + fsync was given.
 *
 * Thread safety: reentrant.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "chain.h"
#include "error.h"
#include "reader.h"
#include "restore.h"
#include "sys.h"
#include "sys_fs.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1u << 1)
#endif

uint64_t edb__restore_writeback = 32u << 20;

enum tstate { T_ABSENT, T_EMPTY, T_DATABASE };

#define GAP_FILL_PAGES 16u      /* a gap up to this long between runs is written as zeros */
#define PEND_IOV 256            /* iovec entries of one write */

struct restore {
    int parentfd;
    int tmpfd;
    int datafd;
    int markfd;              /* holds the lock of the owner marker; -1: none */
    char base[256];
    char tmpname[300];
    bool tmp_created;
    edb__link *links;
    size_t idx;
    const char *name;
    uint32_t page_size;
    /* the pages waiting to be written, pend_n from page pend_pgno on: iov[]
     * points into the reader's buffer (valid until on_frame_end), or at
     * zeros for a gap filled (fill_gaps) */
    struct iovec iov[PEND_IOV];
    int iov_n;
    uint64_t pend_pgno;
    size_t pend_n;
    bool fill_gaps;          /* this archive may fill gaps (see "What is proven") */
    uint64_t hiwater;        /* 1 + the highest page this archive wrote or queued */
    uint8_t *zeros;          /* GAP_FILL_PAGES zero pages, made on first use */
    /* per page written by the current archive, in archive order */
    struct wrote { uint64_t pgno; edb__arch_hash hash; } *wr;
    size_t wr_n, wr_cap;
    /* hash of every page data.mdb holds (see "What is proven") */
    edb__arch_hash *cur;
    uint64_t cur_n;
    /* pages any archive of the chain carried so far (edb__chain_room) */
    edb__room room;
    /* bytes written since write-back was last started; false once the
     * system said it cannot start it */
    uint64_t unsynced;
    bool writeback;
};

/* ---- the target ---- */

static int
split_target(const char *target, char *parent, size_t psz, char *base, size_t bsz)
{
    size_t len = strlen(target);
    while (len > 1 && target[len - 1] == '/')
        len--;
    if (len == 0 || len >= psz)
        return edb__err(EDB_INVAL, "restore: target path '%s' is empty or too long", target);
    memcpy(parent, target, len);
    parent[len] = '\0';
    char *slash = strrchr(parent, '/');
    const char *b;
    if (slash == NULL) {
        b = parent;
    } else {
        b = slash + 1;
    }
    if (strlen(b) >= bsz || strcmp(b, ".") == 0 || strcmp(b, "..") == 0 || b[0] == '\0')
        return edb__err(EDB_INVAL, "restore: target '%s' does not name a directory entry", target);
    snprintf(base, bsz, "%s", b);
    if (slash == NULL)
        snprintf(parent, psz, ".");
    else if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    return 0;
}

/* What is at the target: nothing, an empty directory, or a database directory
 * (only regular data.mdb / lock.mdb).  Anything else is refused. */
static int
target_state(int parentfd, const char *base, const char *target, enum tstate *out)
{
    struct stat st;
    *out = T_ABSENT;
    if (edb__sys_fstatat(parentfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return 0;
        return edb__sys_err(errno, "restore: inspecting the target");
    }
    if (S_ISLNK(st.st_mode))
        return edb__err(EDB_EXISTS, "restore: target '%s' is a symbolic link; it is not followed "
                        "or replaced", target);
    if (!S_ISDIR(st.st_mode))
        return edb__err(EDB_EXISTS, "restore: target '%s' exists and is not a directory", target);
    int dfd = edb__sys_openat(parentfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (dfd < 0)
        return edb__sys_err(errno, "restore: opening the target directory");
    DIR *d = edb__sys_fdopendir(dfd);
    if (d == NULL) {
        int e = errno;
        edb__sys_close(dfd);
        return edb__sys_err(e, "restore: listing the target directory");
    }
    int ret = 0;
    bool any = false;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        any = true;
        bool known = strcmp(de->d_name, "data.mdb") == 0 || strcmp(de->d_name, "lock.mdb") == 0;
        if (!known) {
            ret = edb__err(EDB_EXISTS, "restore: target '%s' holds '%s': not a database directory; "
                           "not replaced", target, de->d_name);
            break;
        }
        if (edb__sys_fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            ret = edb__sys_err(errno, "restore: inspecting the target's files");
            break;
        }
        if (!S_ISREG(st.st_mode)) {
            ret = edb__err(EDB_EXISTS, "restore: target '%s': '%s' is %s; not followed or "
                           "replaced", target, de->d_name,
                           S_ISLNK(st.st_mode) ? "a symbolic link" : "not a regular file");
            break;
        }
    }
    edb__sys_closedir(d);
    if (ret == 0)
        *out = any ? T_DATABASE : T_EMPTY;
    return ret;
}

/* Is a file with this device and inode mapped by this process?  (An LMDB
 * environment this process has open maps both data.mdb and lock.mdb.) */
static bool
mapped_by_self(const struct stat *st)
{
    int fd = edb__sys_open("/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return false;
    char buf[8192];
    size_t have = 0;
    bool found = false;
    for (;;) {
        ssize_t r = edb__sys_read(fd, buf + have, sizeof buf - 1 - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            unsigned maj, min;
            unsigned long long ino;
            if (sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min, &ino) == 3 &&
                maj == major(st->st_dev) && min == minor(st->st_dev) && ino == st->st_ino)
                found = true;
            line = nl + 1;
        }
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
        if (have == sizeof buf - 1)
            have = 0;                 /* an absurd line: skip it */
    }
    edb__sys_close(fd);
    return found;
}

/* Take the write lock on byte 0 of the target's lock.mdb (see the invariant at
 * the top).  *lockfd stays open (holding the lock) on success; -1 when there is
 * no lock.mdb. */
static int
lock_target(struct restore *r, const char *target, int *lockfd)
{
    *lockfd = -1;
    /* Everything below goes through a descriptor of the target directory
     * opened without following a link, so a link swapped in since it was
     * inspected is not followed either. */
    int dfd = edb__sys_openat(r->parentfd, r->base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (dfd < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
            return edb__err(EDB_EXISTS, "restore: target '%s' changed into a non-directory while "
                            "restoring; not replaced", target);
        return edb__sys_err(errno, "restore: opening the target directory");
    }
    struct stat st;
    for (int i = 0; i < 2; i++) {
        const char *f = i == 0 ? "lock.mdb" : "data.mdb";
        if (edb__sys_fstatat(dfd, f, &st, AT_SYMLINK_NOFOLLOW) == 0 && mapped_by_self(&st)) {
            edb__sys_close(dfd);
            return edb__err(EDB_BUSY, "restore: this process has the database '%s' open; not "
                            "replaced", target);
        }
    }
    int fd = edb__sys_openat(dfd, "lock.mdb", O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
    int open_errno = errno;
    edb__sys_close(dfd);
    if (fd < 0) {
        if (open_errno == ENOENT)
            return 0;
        return edb__sys_err(open_errno, "restore: opening the target's lock.mdb");
    }
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 1;
#ifdef F_OFD_SETLK
    int rc = edb__sys_fcntl_lock(fd, F_OFD_SETLK, &fl);
    if (rc != 0 && errno == EINVAL)
#else
    int rc = -1;
#endif
    {
        fl.l_pid = 0;
        rc = edb__sys_fcntl_lock(fd, F_SETLK, &fl);
    }
    if (rc != 0) {
        int e = errno;
        edb__sys_close(fd);
        if (e == EAGAIN || e == EACCES)
            return edb__err(EDB_BUSY, "restore: target '%s' is open by another process; not "
                            "replaced", target);
        return edb__sys_err(e, "restore: locking the target's lock.mdb");
    }
    *lockfd = fd;
    return 0;
}

static void
remove_db_dir(int parentfd, const char *name)
{
    int dfd = edb__sys_openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (dfd >= 0) {
        edb__sys_unlinkat(dfd, "data.mdb", 0);
        edb__sys_unlinkat(dfd, "lock.mdb", 0);
        edb__sys_unlinkat(dfd, EDB__RESTORE_MARK, 0);
        edb__sys_unlinkat(dfd, EDB__RESTORE_MARK ".new", 0);
        edb__sys_close(dfd);
    }
    edb__sys_unlinkat(parentfd, name, AT_REMOVEDIR);
}

/* ---- building the new database ---- */

static int
make_tmpdir(struct restore *r)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned char rnd[6];
        if (edb__sys_random(rnd, sizeof rnd) != 0)
            return edb__sys_err(errno, "restore: random name for the temporary directory");
        char suffix[7];
        for (int i = 0; i < 6; i++)
            suffix[i] = alnum[rnd[i] % (sizeof alnum - 1)];
        suffix[6] = '\0';
        snprintf(r->tmpname, sizeof r->tmpname, ".%s.restore-%s", r->base, suffix);
        if (edb__sys_mkdirat(r->parentfd, r->tmpname, 0700) != 0) {
            if (errno != EEXIST)
                return edb__sys_err(errno, "restore: creating the temporary directory beside the "
                                    "target");
            continue;
        }
        /* Lock the directory on itself at once (restore_tmp.c): until then a
         * sweep may take it for a dead restore's empty directory and remove
         * it, so the name must still lead to what we locked. */
        r->tmpfd = edb__sys_openat(r->parentfd, r->tmpname,
                                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
        if (r->tmpfd < 0) {
            if (errno == ENOENT)
                continue;                        /* swept already */
            r->tmp_created = true;
            return edb__sys_err(errno, "restore: opening the temporary directory");
        }
        struct stat a, b;
        if (edb__sys_flock(r->tmpfd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            edb__sys_close(r->tmpfd);
            r->tmpfd = -1;
            if (e == EWOULDBLOCK)
                continue;                        /* a sweeper holds it and removes it */
            r->tmp_created = true;
            return edb__sys_err(e, "restore: locking the temporary directory");
        }
        if (edb__sys_fstat(r->tmpfd, &a) != 0) {
            r->tmp_created = true;
            return edb__sys_err(errno, "restore: inspecting the temporary directory");
        }
        int at = edb__sys_fstatat(r->parentfd, r->tmpname, &b, AT_SYMLINK_NOFOLLOW);
        if (at != 0 && errno != ENOENT) {
            r->tmp_created = true;
            return edb__sys_err(errno, "restore: inspecting the temporary directory");
        }
        if (at == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            r->tmp_created = true;
            break;
        }
        edb__sys_close(r->tmpfd);                /* swept between mkdir and flock */
        r->tmpfd = -1;
    }
    if (!r->tmp_created)
        return edb__err(EDB_IO, "restore: no free temporary directory name after 100 attempts");
    if (edb__sys_fchmod(r->tmpfd, 0700) != 0)
        return edb__sys_err(errno, "restore: chmod 0700 of the temporary directory");
    EDB_RET(edb__restore_mark(&r->markfd, r->tmpfd));
    r->datafd = edb__sys_openat(r->tmpfd, "data.mdb",
                                O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (r->datafd < 0)
        return edb__sys_err(errno, "restore: creating data.mdb");
    if (edb__sys_fchmod(r->datafd, 0600) != 0)
        return edb__sys_err(errno, "restore: chmod 0600 of data.mdb");
    return 0;
}

static int
on_header(void *ctx, const edb__arch_header *h)
{
    struct restore *r = ctx;
    EDB_RET(edb__chain_check(r->links, r->idx, h, r->name, true));
    r->page_size = h->page_size;
    r->fill_gaps = r->idx == 0 && !(h->flags & (EDB__ARCH_F_LOW_PIN | EDB__ARCH_F_INCREMENTAL));
    r->hiwater = 0;
    return 0;
}

/* Room for one more entry in r->wr. */
static int
wrote_reserve(struct restore *r)
{
    if (r->wr_n < r->wr_cap)
        return 0;
    size_t ncap = r->wr_cap ? r->wr_cap * 2 : 4096;
    struct wrote *w = edb__sys_realloc(r->wr, ncap * sizeof *w);
    if (w == NULL)
        return edb__err(EDB_NOMEM, "restore: hashes of %zu written pages", ncap);
    r->wr = w;
    r->wr_cap = ncap;
    return 0;
}

/* Write the pending pages (the hashes of those the archive carries are in
 * r->wr already) with one call. */
static int
flush_run(struct restore *r)
{
    if (r->pend_n == 0)
        return 0;
    uint32_t ps = r->page_size;
    size_t n = r->pend_n;
    int cnt = r->iov_n;
    r->pend_n = 0;
    r->iov_n = 0;
    int rc = cnt == 1 ? edb__sys_pwrite_all(r->datafd, r->iov[0].iov_base, r->iov[0].iov_len,
                                            (off_t)(r->pend_pgno * ps))
                      : edb__sys_pwritev_all(r->datafd, r->iov, cnt, (off_t)(r->pend_pgno * ps));
    if (rc != 0)
        return edb__sys_err(errno, "restore: writing data.mdb");
    /* Let the disk work while we go on reading and hashing, so the final
     * fsync (which stays the durability point) has little left to wait for. */
    r->unsynced += n * ps;
    if (r->unsynced >= edb__restore_writeback && r->writeback) {
        r->unsynced = 0;
        if (edb__sys_writeback(r->datafd) != 0) {
            if (errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
                return edb__sys_err(errno, "restore: starting the write-back of data.mdb");
            r->writeback = false;
        }
    }
    return 0;
}

static int
on_page(void *ctx, const edb__arch_header *h, uint64_t frame, uint64_t pgno, const uint8_t *page,
        const edb__arch_hash *hash)
{
    struct restore *r = ctx;
    (void)frame;
    EDB_RET(wrote_reserve(r));
    struct wrote *w = &r->wr[r->wr_n++];
    w->pgno = pgno;
    w->hash = *hash;
    uint32_t ps = h->page_size;
    if (r->pend_n > 0) {
        uint64_t end = r->pend_pgno + r->pend_n;
        struct iovec *last = &r->iov[r->iov_n - 1];
        if (pgno == end && last->iov_base != r->zeros && page == (const uint8_t *)last->iov_base + last->iov_len) {
            last->iov_len += ps;                /* the run goes on */
            r->pend_n++;
            if (pgno + 1 > r->hiwater)
                r->hiwater = pgno + 1;
            return 0;
        }
        if (r->fill_gaps && pgno > end && pgno - end <= GAP_FILL_PAGES && end >= r->hiwater &&
            r->iov_n + 2 <= PEND_IOV) {
            if (r->zeros == NULL)
                r->zeros = edb__sys_calloc(GAP_FILL_PAGES, ps);
            if (r->zeros != NULL) {
                r->iov[r->iov_n++] = (struct iovec){ r->zeros, (size_t)(pgno - end) * ps };
                r->iov[r->iov_n++] = (struct iovec){ (void *)page, ps };
                r->pend_n += (size_t)(pgno - end) + 1;
                r->hiwater = pgno + 1;
                return 0;
            }
            r->fill_gaps = false;               /* no memory for it: one write per run */
        }
    }
    EDB_RET(flush_run(r));
    r->iov[0] = (struct iovec){ (void *)page, ps };
    r->iov_n = 1;
    r->pend_pgno = pgno;
    r->pend_n = 1;
    if (pgno + 1 > r->hiwater)
        r->hiwater = pgno + 1;
    return 0;
}

static int
on_frame_end(void *ctx, const edb__arch_header *h, uint64_t frame)
{
    (void)h;
    (void)frame;
    return flush_run(ctx);
}

/* Give the file the snapshot's size and both meta pages, and work out the
 * hash of every page it now holds (see "What is proven" at the top). */
static int
advance_state(struct restore *r, const edb__archive *a, uint8_t *page)
{
    uint32_t ps = a->header.page_size;
    uint64_t npages = a->trailer.npages;
    edb__arch_hash meta[2];
    if (edb__sys_ftruncate(r->datafd, (off_t)(npages * ps)) != 0)
        return edb__sys_err(errno, "restore: sizing data.mdb");
    for (uint64_t p = 0; p < 2; p++) {
        edb__arch_meta_page(page, ps, a->trailer.meta, p);
        edb__arch_page_hash(&meta[p], page, ps, p);
        if (edb__sys_pwrite_all(r->datafd, page, ps, (off_t)(p * ps)) != 0)
            return edb__sys_err(errno, "restore: writing a meta page");
    }
    if (r->wr_n != a->trailer.pages)
        return edb__err(EDB_IO, "restore: wrote %zu pages of archive %zu, which carries %llu",
                        r->wr_n, r->idx + 1, (unsigned long long)a->trailer.pages);
    /* npages entries: the reader read a table of that many, so the size is
     * backed by bytes read, not only by a length field */
    edb__arch_hash *next = edb__sys_malloc((size_t)(npages ? npages : 1) * sizeof *next);
    if (next == NULL)
        return edb__err(EDB_NOMEM, "restore: page hashes of %llu pages",
                        (unsigned long long)npages);
    size_t k = 0;
    for (uint64_t p = 0; p < npages; p++) {
        while (k < a->ncarried && a->carried[k].pgno < p)
            k++;
        const edb__carried *c = k < a->ncarried && a->carried[k].pgno == p ? &a->carried[k] : NULL;
        if (p < 2) {
            next[p] = meta[p];
        } else if (c != NULL) {
            if (c->order >= r->wr_n || r->wr[c->order].pgno != p) {
                free(next);
                return edb__err(EDB_IO, "restore: page %llu of archive %zu: its last copy was "
                                "not written", (unsigned long long)p, r->idx + 1);
            }
            next[p] = r->wr[c->order].hash;
        } else if (p < r->cur_n) {
            next[p] = r->cur[p];
        } else {
            edb__arch_zero_hash(&next[p], ps, p);
        }
    }
    free(r->cur);
    r->cur = next;
    r->cur_n = npages;
    r->wr_n = 0;
    return 0;
}

/* The file's size and every page's hash against the archive's table. */
static int
check_result(struct restore *r, const edb__archive *a, const char *name)
{
    uint32_t ps = a->header.page_size;
    uint64_t npages = a->trailer.npages;
    struct stat st;
    if (edb__sys_fstat(r->datafd, &st) != 0)
        return edb__sys_err(errno, "restore: checking data.mdb");
    if ((uint64_t)st.st_size != npages * ps)
        return edb__err(EDB_IO, "restore: data.mdb has %lld bytes, expected %llu",
                        (long long)st.st_size, (unsigned long long)(npages * ps));
    for (uint64_t p = 0; p < npages; p++)
        if (!edb__arch_hash_eq(&r->cur[p], &a->table[p]))
            return edb__err(EDB_CHECKSUM, "restore: restored page %llu does not match the page "
                            "hash table of archive %zu '%s'", (unsigned long long)p,
                            r->idx + 1, name);
    return 0;
}

static int
name_archive(int rc, size_t idx, const char *name)
{
    char old[512];
    snprintf(old, sizeof old, "%s", edb_error_last_message());
    if (strncmp(old, "archive ", 8) == 0 || strncmp(old, "restore: ", 9) == 0)
        return edb__err(rc, "%s", old);
    return edb__err(rc, "archive %zu '%s': %s", idx + 1, name, old);
}

static int
read_archives(struct restore *r, const edb_backup_source *src, size_t n, edb_backup_info *info)
{
    int ret = 0;
    edb__arch_hash *prev_table = NULL;
    uint8_t *page = NULL;
    edb__archive a;
    memset(&a, 0, sizeof a);
    edb__reader_cbs cbs = { on_header, on_page, NULL, r, on_frame_end, NULL, false };
    for (size_t i = 0; i < n; i++) {
        int fd;
        bool owned;
        r->idx = i;
        r->name = r->links[i].name;
        r->pend_n = 0;
        r->iov_n = 0;
        r->wr_n = 0;
        ret = edb__source_open(&src[i], &fd, &owned, r->links[i].name, sizeof r->links[i].name);
        if (ret < 0)
            goto err;
        cbs.key = src[i].key;
        ret = edb__reader_read(&a, fd, &cbs);
        if (owned)
            edb__sys_close(fd);
        if (ret == 0)
            ret = flush_run(r);     /* empty: every frame ends with a flush */
        if (ret == 0 && prev_table != NULL)
            ret = edb__chain_table_check(&a, prev_table, &a.where);
        if (ret < 0) {
            name_archive(ret, i, r->name);
            goto err;
        }
        free(page);
        page = edb__sys_malloc(a.header.page_size);
        if (page == NULL)
            EDB_ERR(edb__err(EDB_NOMEM, "restore: page buffer"));
        EDB_ERR(edb__chain_room(&r->room, &a, i, r->name));   /* before data.mdb grows */
        EDB_ERR(advance_state(r, &a, page));
        EDB_ERR(check_result(r, &a, r->name));
        memcpy(r->links[i].backup_id, a.header.backup_id, 16);
        r->links[i].archive_hash = a.end.archive_hash;
        r->links[i].npages = a.trailer.npages;
        r->links[i].page_size = a.header.page_size;
        info->archives = i + 1;
        info->page_size = a.header.page_size;
        info->npages = a.trailer.npages;
        info->txnid = a.trailer.txnid;
        info->frames += a.trailer.frames;
        info->pages += a.trailer.pages;
        info->bytes += a.length;
        info->created_us = a.header.created_us;
        info->flags = a.header.flags;
        memcpy(info->backup_id, a.header.backup_id, 16);
        if (i + 1 == n)
            break;
        free(prev_table);
        prev_table = a.table;
        a.table = NULL;
        edb__archive_free(&a);
    }
err:
    edb__archive_free(&a);
    free(prev_table);
    free(page);
    return ret;
}

static int
put_in_place(struct restore *r, const char *target, unsigned flags)
{
    enum tstate ts;
    EDB_RET(target_state(r->parentfd, r->base, target, &ts));
    if (ts == T_DATABASE && !(flags & EDB_RESTORE_FORCE))
        return edb__err(EDB_EXISTS, "restore: target '%s' is not empty (use force to replace it)",
                        target);
    if (ts != T_DATABASE) {
        if (edb__sys_renameat(r->parentfd, r->tmpname, r->parentfd, r->base) != 0) {
            int e = errno;
            if (e == ENOTEMPTY || e == EEXIST || e == ENOTDIR || e == EISDIR)
                return edb__err(EDB_EXISTS, "restore: target '%s' appeared while restoring; "
                                "not replaced", target);
            return edb__sys_err(e, "restore: renaming the new database into place");
        }
        r->tmp_created = false;
        return 0;
    }
    int lockfd;
    EDB_RET(lock_target(r, target, &lockfd));
    int ret = 0;
    /* The old directory is locked on itself like ours (restore_tmp.c): a kill
     * after the swap leaves it at the temporary name for the sweep. */
    int olddfd = edb__sys_openat(r->parentfd, r->base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (olddfd < 0) {
        ret = edb__sys_err(errno, "restore: opening the target directory");
        goto out;
    }
    if (edb__sys_flock(olddfd, LOCK_EX | LOCK_NB) != 0) {
        ret = errno == EWOULDBLOCK
                  ? edb__err(EDB_BUSY, "restore: another restore is replacing '%s'; not replaced", target)
                  : edb__sys_err(errno, "restore: locking the target directory");
        goto out;
    }
    if (lockfd >= 0) {
        /* Close the window of a process that opened the old lock.mdb before
         * the swap and locks it after (LMDB locks lock.mdb before it opens
         * data.mdb by name, so it would pair the new data.mdb with a deleted
         * lock file, invisible to the next restore --force): the new database
         * gets the very same lock.mdb (a hard link), so every opener, early or
         * late, locks the one file that guards the new data.mdb.  Emptied
         * while we hold the exclusive lock (nobody has it open), it is
         * initialised afresh by the next opener that takes LMDB's exclusive
         * lock, and an opener already waiting for a shared lock fails on the
         * empty file instead of trusting the old database's reader table. */
        struct stat a, b;
        if (edb__sys_fstat(lockfd, &a) != 0 ||
            edb__sys_fstatat(olddfd, "lock.mdb", &b, AT_SYMLINK_NOFOLLOW) != 0 ||
            a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
            ret = edb__err(EDB_BUSY, "restore: the lock file of '%s' changed while restoring; not "
                           "replaced", target);
            goto out;
        }
        if (edb__sys_ftruncate(lockfd, 0) != 0) {
            ret = edb__sys_err(errno, "restore: emptying the target's lock.mdb");
            goto out;
        }
        if (edb__sys_linkat(olddfd, "lock.mdb", r->tmpfd, "lock.mdb", 0) != 0) {
            ret = edb__sys_err(errno, "restore: linking the target's lock.mdb into the new database");
            goto out;
        }
    }
    if (edb__sys_renameat2(r->parentfd, r->tmpname, r->parentfd, r->base, RENAME_EXCHANGE) == 0) {
        /* the old database now sits at tmpname */
        remove_db_dir(r->parentfd, r->tmpname);
        r->tmp_created = false;
    } else if (errno == ENOSYS || errno == EINVAL) {
        char old[320];
        snprintf(old, sizeof old, "%s.old", r->tmpname);
        if (edb__sys_renameat(r->parentfd, r->base, r->parentfd, old) != 0) {
            ret = edb__sys_err(errno, "restore: moving the old database aside");
        } else if (edb__sys_renameat(r->parentfd, r->tmpname, r->parentfd, r->base) != 0) {
            ret = edb__sys_err(errno, "restore: renaming the new database into place");
            edb__sys_renameat(r->parentfd, old, r->parentfd, r->base);
        } else {
            r->tmp_created = false;
            remove_db_dir(r->parentfd, old);
        }
    } else {
        ret = edb__sys_err(errno, "restore: swapping the new database into place");
    }
out:
    if (olddfd >= 0)
        edb__sys_close(olddfd);
    if (lockfd >= 0)
        edb__sys_close(lockfd);
    return ret;
}

int
edb_backup_restore(edb_backup_info *out, const char *target, const edb_backup_source *src,
                   size_t n, unsigned flags)
{
    int ret = 0;
    char parent[4096];
    struct restore r;
    memset(&r, 0, sizeof r);
    r.parentfd = r.tmpfd = r.datafd = r.markfd = -1;
    r.writeback = true;
    edb_backup_info info;
    memset(&info, 0, sizeof info);
    edb__err_clear();
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (target == NULL || src == NULL || n == 0)
        return edb__err(EDB_INVAL, "restore: %s", target == NULL ? "no target directory"
                                                                  : "no archive given");
    if (flags & ~EDB_RESTORE_FORCE)
        return edb__err(EDB_INVAL, "restore: unknown flags 0x%x", flags & ~EDB_RESTORE_FORCE);
    EDB_RET(split_target(target, parent, sizeof parent, r.base, sizeof r.base));
    r.parentfd = edb__sys_open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (r.parentfd < 0) {
        if (errno == ENOENT)
            return edb__err(EDB_NOTFOUND, "restore: the target's parent directory '%s' does not "
                            "exist", parent);
        return edb__sys_err(errno, "restore: opening the target's parent directory");
    }
    enum tstate ts;
    EDB_ERR(target_state(r.parentfd, r.base, target, &ts));
    if (ts == T_DATABASE && !(flags & EDB_RESTORE_FORCE))
        EDB_ERR(edb__err(EDB_EXISTS, "restore: target '%s' is not empty (use force to replace it)",
                         target));
    if (ts == T_DATABASE) {
        /* Fail before reading anything when the database is in use; the
         * lock is taken again (and kept) for the swap at the end. */
        int lockfd;
        EDB_ERR(lock_target(&r, target, &lockfd));
        if (lockfd >= 0)
            edb__sys_close(lockfd);
    }
    r.links = edb__sys_calloc(n, sizeof *r.links);
    if (r.links == NULL)
        EDB_ERR(edb__err(EDB_NOMEM, "restore: %zu archives", n));
    edb__restore_sweep(r.parentfd, r.base);
    EDB_ERR(make_tmpdir(&r));
    EDB_ERR(read_archives(&r, src, n, &info));
    if (edb__sys_fsync(r.datafd) != 0)
        EDB_ERR(edb__sys_err(errno, "restore: fsync of data.mdb"));
    if (edb__sys_close(r.datafd) != 0) {
        r.datafd = -1;
        EDB_ERR(edb__sys_err(errno, "restore: closing data.mdb"));
    }
    r.datafd = -1;
    /* The marker must not reach the target; from here until the rename a
     * kill leaves an unmarked directory, which no sweep removes. */
    if (r.markfd >= 0 && edb__sys_unlinkat(r.tmpfd, EDB__RESTORE_MARK, 0) != 0)
        EDB_ERR(edb__sys_err(errno, "restore: removing the temporary directory's owner marker"));
    if (edb__sys_fsync(r.tmpfd) != 0)
        EDB_ERR(edb__sys_err(errno, "restore: fsync of the new directory"));
    EDB_ERR(put_in_place(&r, target, flags));
    if (edb__sys_fsync(r.parentfd) != 0)
        EDB_ERR(edb__sys_err(errno, "restore: fsync of the target's parent directory"));
    if (out != NULL)
        *out = info;
err:
    if (r.datafd >= 0)
        edb__sys_close(r.datafd);
    if (r.tmp_created)
        remove_db_dir(r.parentfd, r.tmpname);
    if (r.tmpfd >= 0)
        edb__sys_close(r.tmpfd);        /* after the removal: its flock kept sweepers away */
    if (r.markfd >= 0)
        edb__sys_close(r.markfd);      /* after the removal: the lock kept sweepers away */
    if (r.parentfd >= 0)
        edb__sys_close(r.parentfd);
    free(r.links);
    free(r.wr);
    free(r.zeros);
    free(r.cur);
    free(r.room.ever);
    return ret;
}

int
edb_backup_restore_sweep(unsigned *out, const char *target)
{
    char parent[4096], base[256];
    if (out != NULL)
        *out = 0;
    edb__err_clear();
    if (target == NULL)
        return edb__err(EDB_INVAL, "restore sweep: no target directory");
    EDB_RET(split_target(target, parent, sizeof parent, base, sizeof base));
    int pfd = edb__sys_open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (pfd < 0) {
        if (errno == ENOENT)
            return edb__err(EDB_NOTFOUND, "restore sweep: the target's parent directory '%s' does "
                            "not exist", parent);
        return edb__sys_err(errno, "restore sweep: opening the target's parent directory");
    }
    int n = edb__restore_sweep(pfd, base);
    edb__sys_close(pfd);
    if (out != NULL)
        *out = (unsigned)n;
    return 0;
}

/*
 * restore_tmp.c: restore's temporary directories carry an owner marker, and
 * the next restore to the same target removes those that dead restores left.
 *
 * A restore builds the new database in `.<base>.restore-XXXXXX` beside the
 * target (restore.c).  Killed (SIGKILL, power loss), it cannot remove that
 * directory, and nothing else would.  So:
 * - The marker: right after creating the directory, restore creates
 *   `restore.lock.new` in it, takes an open-file-description write lock on it
 *   and only then renames it to `restore.lock`.  So a `restore.lock` is locked
 *   from the moment it exists until its restore ends (the lock dies with the
 *   process), and a `restore.lock` whose lock is free belongs to a dead restore.
 *   Restore unlinks the marker before it renames the directory into place, so
 *   the marker never reaches the target.
 * - The directory itself: restore takes flock(LOCK_EX) on its descriptor of
 *   the new directory right after mkdir (and checks that the name still
 *   leads to that directory, else it tries another name), and a `force`
 *   restore takes the same lock on the old database directory before it
 *   swaps it out (renameat2 RENAME_EXCHANGE) to the temporary name.  Both
 *   locks are held until the restore ends and die with it.
 * - The old database swapped out also holds lock.mdb, whose byte 0 every
 *   LMDB process that has it open holds a shared lock on (restore.c links the
 *   same lock.mdb into the new database, so this also covers processes that
 *   opened the new one).
 * - The sweep removes a directory only when all of these hold: its name is
 *   exactly `.<base>.restore-` and six letters or digits (the `.old` name of
 *   the rename fallback is never touched: while it exists, it may be the only
 *   copy of the old database); it is a real directory (opened with
 *   O_NOFOLLOW|O_DIRECTORY, so a symbolic link is never followed) owned by this
 *   user; it holds nothing but regular files named restore.lock,
 *   restore.lock.new, data.mdb and lock.mdb (any of them, or none: every
 *   shape a kill can leave, from the instant after mkdir to the instant
 *   before rmdir); and every lock above can be taken: the directory's flock,
 *   the marker's (or restore.lock.new's) write lock, byte 0 of lock.mdb.  It
 *   keeps them while it unlinks, so a second sweeper or a live restore skips
 *   the directory.  Unknown files or a symbolic link keep it.
 *
 * Thread safety: reentrant; open-file-description locks exclude threads of one
 * process from each other as they exclude processes.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "restore.h"
#include "sys.h"
#include "sys_fs.h"

#define MARK_NEW EDB__RESTORE_MARK ".new"

/* An open-file-description write lock on [0, len) of fd (len 0: the whole
 * file), without waiting: 0, or -1 with errno (EAGAIN/EACCES: held elsewhere;
 * EINVAL: no such locks here). */
static int
try_lock(int fd, off_t len)
{
#ifdef F_OFD_SETLK
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = len;
    return edb__sys_fcntl_lock(fd, F_OFD_SETLK, &fl);
#else
    (void)fd;
    (void)len;
    errno = EINVAL;
    return -1;
#endif
}

int
edb__restore_mark(int *out, int tmpfd)
{
    *out = -1;
    int fd = edb__sys_openat(tmpfd, MARK_NEW, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                             0600);
    if (fd < 0)
        return edb__sys_err(errno, "restore: creating the temporary directory's owner marker");
    if (try_lock(fd, 0) != 0) {
        int e = errno;
        edb__sys_unlinkat(tmpfd, MARK_NEW, 0);
        edb__sys_close(fd);
        if (e == EINVAL)
            return 0;            /* no OFD locks: leave it unmarked, never swept */
        return edb__sys_err(e, "restore: locking the temporary directory's owner marker");
    }
    if (edb__sys_renameat(tmpfd, MARK_NEW, tmpfd, EDB__RESTORE_MARK) != 0) {
        int e = errno;
        edb__sys_unlinkat(tmpfd, MARK_NEW, 0);
        edb__sys_close(fd);
        return edb__sys_err(e, "restore: naming the temporary directory's owner marker");
    }
    *out = fd;
    return 0;
}

/* `.<base>.restore-` and exactly six letters or digits. */
static bool
is_temp_name(const char *name, const char *base)
{
    static const char infix[] = ".restore-";
    size_t bl = strlen(base);
    if (name[0] != '.' || strncmp(name + 1, base, bl) != 0 ||
        strncmp(name + 1 + bl, infix, sizeof infix - 1) != 0)
        return false;
    const char *s = name + 1 + bl + sizeof infix - 1;
    for (int i = 0; i < 6; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return false;
    return s[6] == '\0';
}

/* What one candidate directory holds; false when anything is unknown or not
 * a regular file. */
struct content { bool mark, marknew, data, lockmdb; };

static bool
read_content(int dfd, struct content *c)
{
    memset(c, 0, sizeof *c);
    int lfd = edb__sys_openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (lfd < 0)
        return false;
    DIR *d = edb__sys_fdopendir(lfd);
    if (d == NULL) {
        edb__sys_close(lfd);
        return false;
    }
    bool ok = true;
    struct dirent *de;
    while (ok && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        bool *flag = strcmp(n, EDB__RESTORE_MARK) == 0 ? &c->mark
                   : strcmp(n, MARK_NEW) == 0        ? &c->marknew
                   : strcmp(n, "data.mdb") == 0      ? &c->data
                   : strcmp(n, "lock.mdb") == 0      ? &c->lockmdb
                                                     : NULL;
        struct stat st;
        if (flag == NULL || edb__sys_fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            ok = false;
        else
            *flag = true;
    }
    edb__sys_closedir(d);
    return ok;
}

/* Open dfd/name and take its write lock on [0, len): the descriptor, or -1
 * (absent, not openable, or held by someone). */
static int
lock_file(int dfd, const char *name, off_t len)
{
    int fd = edb__sys_openat(dfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (try_lock(fd, len) != 0) {
        edb__sys_close(fd);
        return -1;
    }
    return fd;
}

/* Remove one candidate if every condition at the top holds. */
static bool
sweep_one(int parentfd, const char *name)
{
    int dfd = edb__sys_openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (dfd < 0)
        return false;            /* gone, a symbolic link (ELOOP), not a directory */
    struct stat st;
    struct content c;
    bool removed = false;
    int fds[3] = { -1, -1, -1 };
    if (edb__sys_fstat(dfd, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        !read_content(dfd, &c))
        goto out;
    if (edb__sys_flock(dfd, LOCK_EX | LOCK_NB) != 0)
        goto out;                /* a live restore owns it (or another sweeper) */
    /* content read again under the lock: what we lock is what we remove */
    if (!read_content(dfd, &c))
        goto out;
    if ((c.mark && (fds[0] = lock_file(dfd, EDB__RESTORE_MARK, 0)) < 0) ||
        (c.marknew && (fds[1] = lock_file(dfd, MARK_NEW, 0)) < 0) ||
        (c.lockmdb && (fds[2] = lock_file(dfd, "lock.mdb", 1)) < 0))
        goto out;
    /* ours now: every lock a live restore or an LMDB user would hold */
    edb__sys_unlinkat(dfd, "data.mdb", 0);
    edb__sys_unlinkat(dfd, "lock.mdb", 0);
    edb__sys_unlinkat(dfd, EDB__RESTORE_MARK, 0);
    edb__sys_unlinkat(dfd, MARK_NEW, 0);
    removed = edb__sys_unlinkat(parentfd, name, AT_REMOVEDIR) == 0;
out:
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            edb__sys_close(fds[i]);
    edb__sys_close(dfd);
    return removed;
}

int
edb__restore_sweep(int parentfd, const char *base)
{
    int lfd = edb__sys_openat(parentfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (lfd < 0)
        return 0;
    DIR *d = edb__sys_fdopendir(lfd);
    if (d == NULL) {
        edb__sys_close(lfd);
        return 0;
    }
    /* Collect first: removing entries while readdir walks them may skip some. */
    char names[16][300];
    int n = 0, removed = 0;
    struct dirent *de;
    while (n < 16 && (de = readdir(d)) != NULL)
        if (strlen(de->d_name) < sizeof names[0] && is_temp_name(de->d_name, base))
            snprintf(names[n++], sizeof names[0], "%s", de->d_name);
    edb__sys_closedir(d);
    for (int i = 0; i < n; i++)
        removed += sweep_one(parentfd, names[i]);
    return removed;
}

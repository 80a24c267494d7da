/*
 * dbswap.c: building a database beside another and swapping it in, and the
 * check that no other process has the database open (see dbswap.h).
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "dbswap.h"
#include "error.h"

int
edb__swap_init(edb__swap *sw, const char *path, const char *suffix, const char *who)
{
    memset(sw, 0, sizeof *sw);
    sw->lockfd = -1;
    if (path == NULL || path[0] == '\0')
        return edb__err(EDB_INVAL, "%s: path is NULL or empty", who);
    size_t plen = strlen(path);
    while (plen > 1 && path[plen - 1] == '/')
        plen--;
    if (plen + strlen(suffix) + sizeof "/data.mdb" > sizeof sw->tmp)
        return edb__err(EDB_INVAL, "%s: path too long", who);
    snprintf(sw->path, sizeof sw->path, "%.*s", (int)plen, path);
    /* a symbolic link (to the directory, or on the way) is resolved: the
     * exchange must move the directory, not the link */
    char real[PATH_MAX];
    if (realpath(sw->path, real) != NULL) {
        plen = strlen(real);
        if (plen + strlen(suffix) + sizeof "/data.mdb" > sizeof sw->tmp)
            return edb__err(EDB_INVAL, "%s: path too long", who);
        snprintf(sw->path, sizeof sw->path, "%s", real);
    }
    snprintf(sw->tmp, sizeof sw->tmp, "%s%s", sw->path, suffix);
    snprintf(sw->parent, sizeof sw->parent, "%s", sw->path);
    char *slash = strrchr(sw->parent, '/');
    if (slash == NULL)
        snprintf(sw->parent, sizeof sw->parent, ".");
    else if (slash == sw->parent)
        sw->parent[1] = '\0';
    else
        *slash = '\0';
    return 0;
}

int
edb__swap_check_open(edb__swap *sw, const char *who)
{
    char lp[PATH_MAX + 16];
    snprintf(lp, sizeof lp, "%s/lock.mdb", sw->path);
    if (sw->lockfd < 0) {
        sw->lockfd = open(lp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (sw->lockfd < 0) {
            if (errno == ENOENT)
                return 0;
            return edb__err(EDB_IO, "%s: open '%s': %s", who, lp, strerror(errno));
        }
    }
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 1;
    if (fcntl(sw->lockfd, F_GETLK, &fl) != 0)
        return edb__err(EDB_IO, "%s: lock query on '%s': %s", who, lp, strerror(errno));
    if (fl.l_type != F_UNLCK)
        return edb__err(EDB_BUSY, "%s: '%s' is open in process %ld; close it first", who, sw->path,
                        (long)fl.l_pid);
    return 0;
}

int
edb__swap_remove_dir(const char *dir, const char *who)
{
    char p[PATH_MAX + 16];
    const char *files[] = { "data.mdb", "lock.mdb" };
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        if (unlink(p) != 0 && errno != ENOENT && errno != ENOTDIR)
            return edb__err(EDB_IO, "%s: remove '%s': %s", who, p, strerror(errno));
    }
    if (rmdir(dir) != 0 && errno != ENOENT)
        return edb__err(errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR ? EDB_EXISTS : EDB_IO,
                        "%s: remove '%s': %s", who, dir, strerror(errno));
    return 0;
}

int
edb__swap_fsync_dir(const char *path, const char *who)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return edb__err(EDB_IO, "%s: open '%s': %s", who, path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    return rc == 0 ? 0 : edb__err(EDB_IO, "%s: fsync '%s': %s", who, path, strerror(e));
}

int
edb__swap_exchange(edb__swap *sw, const char *who)
{
    EDB_RET(edb__swap_fsync_dir(sw->tmp, who));
    if (renameat2(AT_FDCWD, sw->tmp, AT_FDCWD, sw->path, RENAME_EXCHANGE) != 0)
        return edb__err(EDB_IO, "%s: exchange '%s' and '%s': %s", who, sw->tmp, sw->path, strerror(errno));
    return edb__swap_fsync_dir(sw->parent, who);
}

void
edb__swap_done(edb__swap *sw)
{
    if (sw->lockfd >= 0)
        close(sw->lockfd);
    sw->lockfd = -1;
}

int
edb__swap_check_self(const edb__swap *sw, const char *who)
{
    char dp[PATH_MAX + 16];
    struct stat sb;
    snprintf(dp, sizeof dp, "%s/data.mdb", sw->path);
    if (stat(dp, &sb) != 0)
        return 0;                       /* the caller reports a missing file */
    FILE *f = fopen("/proc/self/maps", "re");
    if (f == NULL)
        return 0;                       /* no /proc: the caller's promise alone */
    char line[PATH_MAX + 128];
    bool mine = false;
    while (!mine && fgets(line, sizeof line, f) != NULL) {
        unsigned long long ino;
        unsigned maj, min;
        /* "start-end perms offset maj:min inode path" */
        if (sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min, &ino) == 3)
            mine = ino == (unsigned long long)sb.st_ino && makedev(maj, min) == sb.st_dev;
    }
    fclose(f);
    if (mine)
        return edb__err(EDB_BUSY, "%s: '%s' is open in this process (another edb_env or LMDB "
                        "environment); close it first", who, sw->path);
    return 0;
}

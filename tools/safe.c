/*
 * safe.c: what lets every dbtool command that reads or creates files be
 * interrupted, killed or fed the wrong kind of file without leaving anything
 * behind or hanging.
 *
 * - Inputs that must be regular files (archives, the incremental base, import
 *   and schema files) are opened with O_NONBLOCK and checked with fstat before
 *   anything reads them: a FIFO nobody writes to would block open() forever,
 *   a directory or a device is never what the user meant.  "-" stays standard
 *   input.
 * - Temporary directories (compact's `.compact-XXXXXX` in OUT_DIR, verify
 *   --deep's `dbtool-verify-XXXXXX` in $TMPDIR) carry a flock(LOCK_EX) taken
 *   on the directory itself right after mkdtemp and held until the directory
 *   is removed.  The lock dies with the last process that holds it, so a
 *   directory of that name whose lock can be taken belongs to a killed run,
 *   and the next run of the same command removes it (dbt_tmpdir_sweep).  A
 *   sweeper removes a directory only while it holds that lock, so it never
 *   removes the directory of a live run; a creator that finds its directory
 *   gone or locked by a sweeper in the instant between mkdtemp and flock tries
 *   another name.
 * - Commands that create files run their work in a child process
 *   (dbt_supervise): the parent takes SIGINT, SIGTERM and SIGHUP, kills the
 *   child (SIGKILL, so the library code in it needs no cancel point), waits
 *   for it, and only then removes what the child left (its locks are free
 *   once it is dead), then exits 1.  The child dies with the parent
 *   (PR_SET_PDEATHSIG), and a SIGKILL of the parent leaves shapes that the
 *   next run sweeps.
 *
 * Thread safety: called from the main thread only, before any other thread
 * exists (dbt_supervise forks).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dbtool.h"

/* ---- regular files ------------------------------------------------------ */

static const char *
file_kind(mode_t m)
{
    return S_ISFIFO(m) ? "a FIFO (named pipe)" : S_ISDIR(m) ? "a directory"
         : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
         : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

int
dbt_open_regular(const char *path, const char *what, bool stdin_ok)
{
    if (strcmp(path, "-") == 0)
        return STDIN_FILENO;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        dbt_failf(what, errno == ENOENT ? EDB_NOTFOUND : EDB_IO, "cannot open '%s': %s", path,
                  strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        dbt_failf(what, EDB_IO, "cannot inspect '%s': %s", path, strerror(e));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        dbt_failf(what, EDB_INVAL, "'%s' is %s, not a regular file%s", path, file_kind(st.st_mode),
                  stdin_ok ? " (use - to read standard input)" : "");
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        dbt_failf(what, EDB_IO, "'%s': fcntl: %s", path, strerror(e));
        return -1;
    }
    return fd;
}

FILE *
dbt_fopen_regular(const char *path, const char *what)
{
    int fd = dbt_open_regular(path, what, true);
    if (fd < 0)
        return NULL;
    if (fd == STDIN_FILENO)
        return stdin;
    FILE *f = fdopen(fd, "rb");
    if (f == NULL) {
        close(fd);
        dbt_failf(what, EDB_NOMEM, "fdopen: %s", strerror(errno));
    }
    return f;
}

/* ---- locked temporary directories ---------------------------------------- */

/* Remove what directory dfd holds, never following a link; depth-bounded
 * (our directories are two levels deep at most). */
static void
rm_contents(int dfd, int depth)
{
    int lfd = dup(dfd);
    if (lfd < 0)
        return;
    DIR *d = fdopendir(lfd);
    if (d == NULL) {
        close(lfd);
        return;
    }
    /* collect first: unlinking while readdir walks may skip entries */
    char (*names)[256] = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            void *p = realloc(names, nc * sizeof *names);
            if (p == NULL)
                break;
            names = p;
            cap = nc;
        }
        snprintf(names[n++], sizeof names[0], "%s", de->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth > 0) {
                int sub = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub >= 0) {
                    rm_contents(sub, depth - 1);
                    close(sub);
                }
            }
            unlinkat(dfd, names[i], AT_REMOVEDIR);
        } else {
            unlinkat(dfd, names[i], 0);
        }
    }
    free(names);
}

int
dbt_tmpdir_make(char *out, size_t cap, int *lockfd, const char *parent, const char *prefix)
{
    *lockfd = -1;
    for (int attempt = 0; attempt < 100; attempt++) {
        if ((size_t)snprintf(out, cap, "%s/%sXXXXXX", parent, prefix) >= cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (mkdtemp(out) == NULL)
            return -1;
        int fd = open(out, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;                   /* a sweeper removed it at once */
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            close(fd);
            if (e == EWOULDBLOCK || e == EINTR)
                continue;               /* a sweeper holds it and removes it */
            errno = e;
            return -1;
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && lstat(out, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            *lockfd = fd;
            return 0;
        }
        close(fd);                      /* swept between mkdtemp and flock */
    }
    errno = EEXIST;
    return -1;
}

void
dbt_tmpdir_remove(const char *path, int lockfd)
{
    if (lockfd < 0)
        return;
    rm_contents(lockfd, 2);
    rmdir(path);
    close(lockfd);
}

/* prefix and exactly six characters of mkdtemp's alphabet */
static bool
is_tmp_name(const char *name, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0 || strlen(name) != pl + 6)
        return false;
    for (const char *s = name + pl; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000u, (long)(ms % 1000u) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int
dbt_tmpdir_sweep(const char *parent, const char *prefix, unsigned wait_ms)
{
    DIR *d = opendir(parent);
    if (d == NULL)
        return 0;
    char names[64][256];
    int n = 0, removed = 0;
    struct dirent *de;
    while (n < 64 && (de = readdir(d)) != NULL)
        if (is_tmp_name(de->d_name, prefix))
            snprintf(names[n++], sizeof names[0], "%s", de->d_name);
    closedir(d);
    for (int i = 0; i < n; i++) {
        char path[4400];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", parent, names[i]) >= sizeof path)
            continue;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;                   /* gone, a symbolic link, not a directory */
        struct stat st;
        if (fstat(fd, &st) != 0 || st.st_uid != geteuid()) {
            close(fd);
            continue;
        }
        /* A process that still holds the lock is alive (or, just after a
         * kill, about to die: wait_ms lets its children go too). */
        unsigned waited = 0;
        int rc;
        while ((rc = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EWOULDBLOCK && waited < wait_ms) {
            sleep_ms(10);
            waited += 10;
        }
        if (rc == 0) {
            rm_contents(fd, 2);
            removed += rmdir(path) == 0;
        }
        close(fd);
    }
    return removed;
}

/* ---- running the work in a child ---------------------------------------- */

int
dbt_supervise(const char *what, int (*fn)(void *), void *arg, void (*cleanup)(void *), void *carg)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    signal(SIGCHLD, SIG_DFL);          /* SIG_IGN inherited would reap the child for us */
    sigprocmask(SIG_BLOCK, &set, &old);
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        return dbt_failf(what, EDB_IO, "fork: %s", strerror(e));
    }
    if (pid == 0) {
        /* SIGINT, SIGTERM and SIGHUP stay blocked: the parent decides. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(DBT_FAIL);
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_UNBLOCK, &chld, NULL);
        int st = fn(arg);
        fflush(NULL);
        _exit(st);
    }
    int ret = DBT_FAIL, st = 0;
    for (;;) {
        struct timespec tick = { 1, 0 };
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            if (WIFEXITED(st)) {        /* it had finished: its result stands */
                ret = WEXITSTATUS(st);
                break;
            }
            if (cleanup != NULL)
                cleanup(carg);
            ret = dbt_failf(what, EDB_CANCELED, "interrupted by signal %d (%s); its temporary files "
                            "were removed", sig, strsignal(sig));
            break;
        }
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            if (WIFEXITED(st)) {
                ret = WEXITSTATUS(st);
            } else {
                if (cleanup != NULL)
                    cleanup(carg);
                ret = dbt_failf(what, EDB_IO, "the worker process died of signal %d (%s)",
                                WTERMSIG(st), strsignal(WTERMSIG(st)));
            }
            break;
        }
        if (w < 0 && errno != EINTR) {
            ret = dbt_failf(what, EDB_IO, "waitpid: %s", strerror(errno));
            break;
        }
    }
    /* The signals stay blocked: the command ends with this result, and a
     * Ctrl-C that comes after the work finished (or a second one during the
     * cleanup) must not turn it into a death by signal. */
    return ret;
}

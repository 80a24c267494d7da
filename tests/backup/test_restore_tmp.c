/* test_restore_tmp.c: the sweep of temporary directories left by killed
 * restores (backup/restore_tmp.c): what it removes, and everything it must
 * leave alone (a live restore's directory, symbolic links, unknown content,
 * other names, a database somebody has open).  The real thing, SIGKILLed
 * `dbtool restore` followed by another restore, is
 * crash::killed_restores_leave_all_or_nothing (tests/tools/test_crash.c). */
#include "bk_helpers.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "restore.h"

static char *dir;

static void
setup(void)
{
    dir = bk_tmpdir();
}

static void
teardown(void)
{
    bk_rm_tree(dir);
    free(dir);
}

static int
parent_fd(void)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    return fd;
}

/* Make dir/name holding the given files (NULL-terminated). */
static void
make_dir(const char *name, const char *const *files)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    cr_assert_eq(mkdir(p, 0700), 0, "mkdir %s: %s", p, strerror(errno));
    for (; *files != NULL; files++) {
        char f[4400];
        snprintf(f, sizeof f, "%s/%s", p, *files);
        int fd = open(f, O_RDWR | O_CREAT | O_EXCL, 0600);
        cr_assert_geq(fd, 0, "%s: %s", f, strerror(errno));
        cr_assert_eq(write(fd, "x", 1), 1);
        close(fd);
    }
}

static bool
exists(const char *name)
{
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return lstat(p, &st) == 0;
}

/* An open-file-description write lock on dir/name/file ([0, len)), as a live
 * restore (marker) or an open environment (lock.mdb) holds one. */
static int
hold_lock(const char *name, const char *file, short type, off_t len)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/%s/%s", dir, name, file);
    int fd = open(p, O_RDWR | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = len };
    cr_assert_eq(fcntl(fd, F_OFD_SETLK, &fl), 0, "%s", strerror(errno));
    return fd;
}

Test(restore_sweep, removes_what_dead_restores_left, .init = setup, .fini = teardown, .timeout = 30)
{
    /* killed while building (marker and data), killed right after making
     * the marker, and the old database a killed --force restore swapped out */
    make_dir(".r.restore-AbC123", (const char *[]){ "restore.lock", "data.mdb", NULL });
    make_dir(".r.restore-zzzzzz", (const char *[]){ "restore.lock", NULL });
    make_dir(".r.restore-000009", (const char *[]){ "data.mdb", "lock.mdb", NULL });
    int pfd = parent_fd();
    cr_assert_eq(edb__restore_sweep(pfd, "r"), 3);
    close(pfd);
    cr_assert(!exists(".r.restore-AbC123"));
    cr_assert(!exists(".r.restore-zzzzzz"));
    cr_assert(!exists(".r.restore-000009"));
}

/* Issue #11: the shapes a kill leaves at the other instants of a restore,
 * which the marker-only sweep never removed: right after mkdir (empty),
 * between creating and naming the marker, after the marker was unlinked
 * before the rename, with the target's lock.mdb linked in (force), and the
 * old database half removed after the swap. */
Test(restore_sweep, removes_every_shape_a_kill_leaves, .init = setup, .fini = teardown, .timeout = 30)
{
    const char *const shapes[][4] = {
        { NULL },
        { "restore.lock.new", NULL },
        { "restore.lock.new", "data.mdb", NULL },
        { "data.mdb", NULL },
        { "data.mdb", "lock.mdb", NULL },
        { "restore.lock", "data.mdb", "lock.mdb", NULL },
        { "lock.mdb", NULL },
    };
    size_t n = sizeof shapes / sizeof shapes[0];
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, ".r.restore-shape%zu", i);
        make_dir(name, shapes[i]);
    }
    int pfd = parent_fd();
    cr_assert_eq(edb__restore_sweep(pfd, "r"), (int)n);
    close(pfd);
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, ".r.restore-shape%zu", i);
        cr_assert(!exists(name), "%s was left", name);
    }
}

/* ...but not while the directory's own lock is held: a live restore takes it
 * right after mkdir, before it has any file. */
Test(restore_sweep, never_touches_a_directory_locked_on_itself, .init = setup, .fini = teardown,
     .timeout = 30)
{
    make_dir(".r.restore-empty1", (const char *[]){ NULL });
    make_dir(".r.restore-data01", (const char *[]){ "data.mdb", NULL });
    char p[4200];
    snprintf(p, sizeof p, "%s/.r.restore-empty1", dir);
    int a = open(p, O_RDONLY | O_DIRECTORY);
    snprintf(p, sizeof p, "%s/.r.restore-data01", dir);
    int b = open(p, O_RDONLY | O_DIRECTORY);
    cr_assert(a >= 0 && b >= 0);
    cr_assert_eq(flock(a, LOCK_EX | LOCK_NB), 0);
    cr_assert_eq(flock(b, LOCK_EX | LOCK_NB), 0);
    int pfd = parent_fd();
    cr_assert_eq(edb__restore_sweep(pfd, "r"), 0);
    cr_assert(exists(".r.restore-empty1"));
    cr_assert(exists(".r.restore-data01/data.mdb"));
    close(a);
    close(b);
    cr_assert_eq(edb__restore_sweep(pfd, "r"), 2);
    close(pfd);
}

Test(restore_sweep, never_touches_a_live_restore_or_an_open_database, .init = setup, .fini = teardown,
     .timeout = 30)
{
    make_dir(".r.restore-live01", (const char *[]){ "restore.lock", "data.mdb", NULL });
    make_dir(".r.restore-inuse1", (const char *[]){ "data.mdb", "lock.mdb", NULL });
    /* a live restore holds its marker's lock; an LMDB process holds a shared
     * lock on byte 0 of lock.mdb */
    int live = hold_lock(".r.restore-live01", "restore.lock", F_WRLCK, 0);
    int inuse = hold_lock(".r.restore-inuse1", "lock.mdb", F_RDLCK, 1);
    int pfd = parent_fd();
    cr_assert_eq(edb__restore_sweep(pfd, "r"), 0);
    cr_assert(exists(".r.restore-live01/restore.lock"));
    cr_assert(exists(".r.restore-live01/data.mdb"));
    cr_assert(exists(".r.restore-inuse1/data.mdb"));
    /* the same directories once their owners are gone */
    close(live);
    close(inuse);
    cr_assert_eq(edb__restore_sweep(pfd, "r"), 2);
    close(pfd);
    cr_assert(!exists(".r.restore-live01"));
    cr_assert(!exists(".r.restore-inuse1"));
}

Test(restore_sweep, leaves_links_other_names_and_unknown_content, .init = setup, .fini = teardown,
     .timeout = 30)
{
    const char *const mark[] = { "restore.lock", "data.mdb", NULL };
    make_dir("elsewhere", mark);                                 /* a link's destination */
    char link[4200];
    snprintf(link, sizeof link, "%s/.r.restore-LINK00", dir);
    cr_assert_eq(symlink("elsewhere", link), 0);
    make_dir(".r.restore-notes1", (const char *[]){ "restore.lock", "notes.txt", NULL });
    make_dir(".r.restore-notes2", (const char *[]){ "data.mdb", "lock.mdb.bak", NULL });
    make_dir(".r.restore-AAAAAA.old", (const char *[]){ "data.mdb", "lock.mdb", NULL });
    make_dir(".r.restore-AAAAA", mark);
    make_dir(".r.restore-AAAAAAA", mark);
    make_dir(".r.restore-AA-AAA", mark);
    make_dir(".rr.restore-AAAAAA", mark);
    make_dir("r.restore-AAAAAA", mark);
    make_dir(".r.restore-sub123", (const char *[]){ NULL });
    make_dir(".r.restore-sub123/data.mdb", (const char *[]){ NULL });   /* a directory, not a file */
    int pfd = parent_fd();
    cr_assert_eq(edb__restore_sweep(pfd, "r"), 0);
    close(pfd);
    cr_assert(exists(".r.restore-LINK00"));
    cr_assert(exists("elsewhere/restore.lock"));
    cr_assert(exists("elsewhere/data.mdb"));
    const char *kept[] = { ".r.restore-notes1/notes.txt", ".r.restore-notes2/lock.mdb.bak",
                           ".r.restore-AAAAAA.old/data.mdb", ".r.restore-AAAAA/data.mdb",
                           ".r.restore-AAAAAAA/data.mdb", ".r.restore-AA-AAA/data.mdb",
                           ".rr.restore-AAAAAA/data.mdb", "r.restore-AAAAAA/data.mdb",
                           ".r.restore-sub123/data.mdb" };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        cr_assert(exists(kept[i]), "%s was removed", kept[i]);
}

/* A whole restore: it sweeps first, its own marker never reaches the target,
 * and a live restore's directory beside it survives. */
Test(restore_sweep, restore_sweeps_first_and_leaves_no_marker, .init = setup, .fini = teardown,
     .timeout = 60)
{
    char arch[4200], target[4200];
    snprintf(arch, sizeof arch, "%s/a.edbk", dir);
    snprintf(target, sizeof target, "%s/r", dir);
    edb_env *env = bk_env_open(dir);              /* dir/db */
    bk_populate(env, 200);
    edb_backup *bk;
    OK(edb_backup_begin(&bk, env, NULL));
    OK(edb_backup_save(bk, arch, 0, NULL, NULL));
    edb_backup_end(bk);
    edb_env_close(env);

    make_dir(".r.restore-dead01", (const char *[]){ "restore.lock", "data.mdb", NULL });
    make_dir(".r.restore-live01", (const char *[]){ "restore.lock", "data.mdb", NULL });
    int live = hold_lock(".r.restore-live01", "restore.lock", F_WRLCK, 0);
    edb_backup_source src = { .path = arch };
    OK(edb_backup_restore(NULL, target, &src, 1, 0));
    cr_assert(!exists(".r.restore-dead01"), "the dead restore's directory is still there");
    cr_assert(exists(".r.restore-live01/restore.lock"), "a live restore's directory was touched");
    cr_assert(!exists("r/restore.lock"), "the marker reached the target");
    cr_assert(!exists("r/restore.lock.new"));
    /* and with --force over the result (the swap path) */
    OK(edb_backup_restore(NULL, target, &src, 1, EDB_RESTORE_FORCE));
    cr_assert(!exists("r/restore.lock"), "the marker reached the target (force)");
    close(live);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    int temps = 0;
    while ((e = readdir(d)) != NULL)
        temps += strncmp(e->d_name, ".r.restore-", 11) == 0;
    closedir(d);
    cr_assert_eq(temps, 1, "only the live restore's directory may be left, found %d", temps);
}

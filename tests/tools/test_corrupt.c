/*
 * test_corrupt.c: hostile files against dbtool.
 *
 * Corrupt databases (systematic, beyond the three fixed damages of
 * test_dbtool_admin.c): from one pristine database, every branch page gets a
 * child pointer past the end, every leaf page impossible free-space bounds,
 * the file is cut at many lengths, the meta pages are damaged, and bytes are
 * flipped at seeded random places.  `dbtool check` must never die of a
 * signal, must exit 1 naming EDB_CORRUPT (or EDB_VERSION) for every damage it
 * is certain to see, and may exit 0 only for random flips (LMDB pages carry
 * no checksum: a flipped byte in free space or inside a value is invisible).
 *
 * Files and paths around `dbtool backup` and `dbtool restore`: archives are
 * 0600 whatever the umask, a symlink planted at the archive's name or at the
 * target is never followed, and `restore --force` never replaces a database
 * another process has open.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dbtool_run.h"
#include "lmdb_layout.h"

static const char *SCHEMA =
    "{\"name\": \"t\", \"columns\": [{\"name\": \"id\", \"type\": \"int32\"}, {\"name\": \"s\", \"type\": \"text\"},"
    " {\"name\": \"b\", \"type\": \"binary\"}],"
    " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]},"
    " {\"name\": \"by_s\", \"key\": [\"+s\", \"-id\"]}]}";

static char *
make_db(char *path, size_t cap, int n)
{
    size_t sz = (size_t)n * 3200 + 1;
    char *rows = malloc(sz), *p = rows;
    cr_assert_not_null(rows);
    for (int i = 1; i <= n; i++) {
        p += sprintf(p, "{\"id\": %d, \"s\": \"s%05d\", \"b\": \"", i, (i * 7919) % 10007);
        int len = i % 97 == 0 ? 3000 : 8;     /* some overflow pages */
        for (int k = 0; k < len; k++)
            *p++ = 'A' + (char)(k % 26);
        p += sprintf(p, "\"}\n");
    }
    *p = '\0';
    char *dir = dbt_make_db(path, cap, SCHEMA, "t", rows);
    free(rows);
    return dir;
}

static uint8_t *
slurp(const char *file, size_t *n)
{
    int fd = open(file, O_RDONLY);
    cr_assert_geq(fd, 0);
    struct stat st;
    fstat(fd, &st);
    uint8_t *p = malloc((size_t)st.st_size);
    cr_assert_eq(pread(fd, p, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *n = (size_t)st.st_size;
    return p;
}

static void
spit(const char *file, const uint8_t *p, size_t n)
{
    int fd = open(file, O_WRONLY | O_TRUNC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, p, n), (ssize_t)n);
    close(fd);
}

typedef struct outcome {
    unsigned runs, refused, clean;
} outcome;

/* Run check on the damaged copy; @must: the damage is certain to be seen. */
static void
check_damaged(const char *db, const char *label, bool must, outcome *o)
{
    run_result r = dbt_runv(NULL, "check", db, NULL);
    o->runs++;
    cr_assert_lt(r.status, 128, "%s: dbtool check died of signal %d\n%s", label, r.status - 128,
                 r.err);
    cr_assert(r.status == 0 || r.status == 1, "%s: check exit %d\n%s", label, r.status, r.err);
    if (r.status == 1) {
        o->refused++;
        cr_assert(strstr(r.err, "EDB_CORRUPT") != NULL || strstr(r.err, "EDB_VERSION") != NULL,
                  "%s: %s", label, r.err);
    } else {
        o->clean++;
        cr_assert(!must, "%s: check found nothing wrong\n%s", label, r.out);
    }
    run_free(&r);
}

static uint16_t
u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void
put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Pages on the freelist of the database in @db (unreachable: damage there is
 * invisible by design).  Returns a bitmap of @npages bits. */
static uint8_t *
free_pages(const char *db, uint64_t npages)
{
    uint8_t *bits = calloc((size_t)npages / 8 + 1, 1);
    MDB_env *env;
    MDB_txn *t;
    MDB_cursor *c;
    MDB_val k, v;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 256);
    mdb_env_set_mapsize(env, 1ull << 30); /* 1 GiB, not the 64 GiB the file records: valgrind cannot map that (tests/valgrind.sh) */
    cr_assert_eq(mdb_env_open(env, db, MDB_RDONLY, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &t), 0);
    cr_assert_eq(mdb_cursor_open(t, 0, &c), 0);     /* FREE_DBI */
    while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
        const size_t *ids = v.mv_data;
        for (size_t i = 1; i <= ids[0] && i * sizeof *ids < v.mv_size; i++)
            if (ids[i] < npages)
                bits[ids[i] / 8] |= (uint8_t)(1u << (ids[i] % 8));
    }
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    mdb_env_close(env);
    return bits;
}

Test(corrupt, check_survives_systematic_damage, .timeout = 240)
{
    char db[300], file[400], label[200];
    char *dir = make_db(db, sizeof db, 1500);
    snprintf(file, sizeof file, "%s/data.mdb", db);
    run_result r = dbt_runv(NULL, "check", db, NULL);
    cr_assert_eq(r.status, 0, "the pristine database does not check clean: %s%s", r.out, r.err);
    run_free(&r);
    size_t n;
    uint8_t *pristine = slurp(file, &n), *work = malloc(n);
    const size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    /* last_pg of the newer meta: the pages in use are 0 .. last_pg. */
    uint64_t t0, t1, lp0, lp1;
    memcpy(&t0, pristine + EDB__META_OFF_TXNID, 8);
    memcpy(&t1, pristine + ps + EDB__META_OFF_TXNID, 8);
    memcpy(&lp0, pristine + EDB__META_OFF_LASTPG, 8);
    memcpy(&lp1, pristine + ps + EDB__META_OFF_LASTPG, 8);
    uint64_t last_pg = t1 > t0 ? lp1 : lp0;
    cr_assert_leq((last_pg + 1) * ps, n);
    outcome o = { 0 };
    unsigned branches = 0, leaves = 0;
    uint8_t *freed = free_pages(db, last_pg + 1);
#define IS_FREE(pg) (freed[(pg) / 8] & (1u << ((pg) % 8)))

    /* Every branch page: its first child points past the end. */
    for (uint64_t pg = 2; pg <= last_pg && branches < 40; pg++) {
        const uint8_t *p = pristine + pg * ps;
        if (!(u16(p + EDB__PAGE_OFF_FLAGS) & EDB__PAGE_F_BRANCH) || u16(p + EDB__PAGE_OFF_LOWER) < 18 ||
            IS_FREE(pg))
            continue;
        memcpy(work, pristine, n);
        uint8_t *node = work + pg * ps + u16(p + EDB__PAGE_HDR);
        put16(node, 0xFFF0);
        put16(node + 2, 0x7FFF);
        snprintf(label, sizeof label, "branch page %llu: child past the end", (unsigned long long)pg);
        spit(file, work, n);
        check_damaged(db, label, true, &o);
        branches++;
    }
    /* Leaf pages: lower beyond upper. */
    for (uint64_t pg = 2; pg <= last_pg && leaves < 40; pg += 1) {
        const uint8_t *p = pristine + pg * ps;
        if (!(u16(p + EDB__PAGE_OFF_FLAGS) & EDB__PAGE_F_LEAF) || (u16(p + EDB__PAGE_OFF_FLAGS) & EDB__PAGE_F_META) ||
            IS_FREE(pg))
            continue;
        memcpy(work, pristine, n);
        put16(work + pg * ps + EDB__PAGE_OFF_LOWER, (uint16_t)(ps - 2));
        put16(work + pg * ps + EDB__PAGE_OFF_UPPER, 20);
        snprintf(label, sizeof label, "leaf page %llu: lower > upper", (unsigned long long)pg);
        spit(file, work, n);
        check_damaged(db, label, true, &o);
        leaves++;
    }
    cr_assert_gt(branches, 0, "the database has no branch page: make it bigger");
    cr_assert_gt(leaves, 0);
    /* Cut at many lengths below what the metas claim. */
    for (unsigned k = 0; k < 16; k++) {
        size_t len = k == 0 ? ps / 2 : (size_t)((last_pg + 1) * ps * k / 16) / ps * ps;
        if (len >= (last_pg + 1) * ps)
            continue;
        spit(file, pristine, len);
        snprintf(label, sizeof label, "cut to %zu of %zu bytes", len, n);
        check_damaged(db, label, true, &o);
    }
    /* Both metas: wrong magic; one meta: garbage (LMDB may use the other). */
    memcpy(work, pristine, n);
    work[16] ^= 0xFF;
    work[ps + 16] ^= 0xFF;
    spit(file, work, n);
    check_damaged(db, "both meta pages without magic", true, &o);
    for (int m = 0; m < 2; m++) {
        memcpy(work, pristine, n);
        for (size_t i = 16; i < 160; i++)
            work[m * ps + i] = (uint8_t)(i * 37 + 11);
        spit(file, work, n);
        snprintf(label, sizeof label, "meta page %d filled with garbage", m);
        check_damaged(db, label, false, &o);
    }
    /* Seeded random flips: never a crash. */
    unsigned seed = 4242;
    for (int round = 0; round < 40; round++) {
        memcpy(work, pristine, n);
        for (int i = 0; i < 1 + round; i++) {
            seed = seed * 1103515245u + 12345u;
            size_t off = 2 * ps + (size_t)(seed >> 3) % ((last_pg - 1) * ps);
            work[off] ^= (uint8_t)(1u << (seed % 8));
        }
        snprintf(label, sizeof label, "%d random bit flips (round %d)", 1 + round, round);
        spit(file, work, n);
        check_damaged(db, label, false, &o);
    }
    fprintf(stderr, "corrupt::check_survives_systematic_damage: %u damaged databases checked "
            "(%u branch, %u leaf pages), %u refused with EDB_CORRUPT/EDB_VERSION, %u passed "
            "(random flips in unchecked bytes), 0 crashes\n", o.runs, branches, leaves, o.refused,
            o.clean);
    free(freed);
    free(work);
    free(pristine);
    rm_tree(dir);
    free(dir);
}

/* ---- files and paths ---- */

static mode_t
mode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(lstat(path, &st), 0, "%s: %s", path, strerror(errno));
    return st.st_mode;
}

Test(paths, archives_and_restores_are_private_whatever_the_umask, .timeout = 60)
{
    char db[300], arch[400], target[400];
    char *dir = make_db(db, sizeof db, 50);
    static const mode_t masks[] = { 0, 022, 077 };
    for (size_t i = 0; i < 3; i++) {
        mode_t old = umask(masks[i]);
        snprintf(arch, sizeof arch, "%s/a%zu.edbk", dir, i);
        snprintf(target, sizeof target, "%s/r%zu", dir, i);
        run_result r = dbt_runv(NULL, "backup", db, arch, "--quiet", NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        run_free(&r);
        r = dbt_runv(NULL, "restore", target, arch, NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        run_free(&r);
        umask(old);
        cr_assert_eq(mode_of(arch) & 0777, 0600, "umask %03o: archive mode %03o", masks[i],
                     mode_of(arch) & 0777);
        char f[500];
        snprintf(f, sizeof f, "%s/data.mdb", target);
        cr_assert_eq(mode_of(f) & 0777, 0600, "umask %03o: data.mdb mode %03o", masks[i],
                     mode_of(f) & 0777);
        cr_assert_eq(mode_of(target) & 0077, 0, "umask %03o: target dir mode %03o", masks[i],
                     mode_of(target) & 0777);
    }
    rm_tree(dir);
    free(dir);
}

Test(paths, symlinks_planted_at_the_archive_or_target_are_not_followed, .timeout = 60)
{
    char db[300], arch[400], victim[400], target[400], elsewhere[400];
    char *dir = make_db(db, sizeof db, 50);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    write_file(victim, "precious");
    /* A symlink at the archive's name: replaced by the archive or refused,
     * never written through. */
    snprintf(arch, sizeof arch, "%s/a.edbk", dir);
    cr_assert_eq(symlink(victim, arch), 0);
    run_result r = dbt_runv(NULL, "backup", db, arch, "--quiet", NULL);
    cr_assert_lt(r.status, 128);
    run_free(&r);
    struct stat st;
    cr_assert_eq(stat(victim, &st), 0);
    cr_assert_eq(st.st_size, 8, "the backup wrote through a symlink at the archive's name");
    /* A symlink at the target, pointing at an empty directory elsewhere. */
    snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere", dir);
    cr_assert_eq(mkdir(elsewhere, 0700), 0);
    snprintf(target, sizeof target, "%s/t", dir);
    cr_assert_eq(symlink(elsewhere, target), 0);
    char good[400];
    snprintf(good, sizeof good, "%s/good.edbk", dir);
    r = dbt_runv(NULL, "backup", db, good, "--quiet", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "restore", target, good, "--force", NULL);
    cr_assert_eq(r.status, 1, "restore through a symlinked target: exit %d", r.status);
    run_free(&r);
    cr_assert(S_ISLNK(mode_of(target)));
    char probe[500];
    snprintf(probe, sizeof probe, "%s/data.mdb", elsewhere);
    cr_assert_neq(access(probe, F_OK), 0, "restore wrote into the symlink's directory");
    rm_tree(dir);
    free(dir);
}

Test(paths, restore_force_never_replaces_a_database_in_use, .timeout = 60)
{
    char db[300], arch[400], other[300];
    char *dir = make_db(db, sizeof db, 50);
    snprintf(arch, sizeof arch, "%s/a.edbk", dir);
    run_result r = dbt_runv(NULL, "backup", db, arch, "--quiet", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    char *dir2 = make_db(other, sizeof other, 5);
    run_result before = dbt_runv(NULL, "export", other, "t", NULL);
    /* Another process holds the target open (an LMDB reader). */
    int go[2], done[2];
    cr_assert_eq(pipe(go), 0);
    cr_assert_eq(pipe(done), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        MDB_env *env;
        char c = 0;
        if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 256) ||
            mdb_env_set_mapsize(env, 1ull << 30) ||      /* valgrind: see tests/valgrind.sh */
            mdb_env_open(env, other, MDB_RDONLY, 0600))
            _exit(3);
        if (write(go[1], "g", 1) != 1 || read(done[0], &c, 1) < 0)
            _exit(4);
        mdb_env_close(env);
        _exit(0);
    }
    char c;
    cr_assert_eq(read(go[0], &c, 1), 1, "the holder could not open the database");
    r = dbt_runv(NULL, "restore", other, arch, "--force", NULL);
    cr_assert_eq(r.status, 1, "restore --force over a database in use: exit %d", r.status);
    cr_assert(strstr(r.err, "EDB_BUSY") != NULL, "%s", r.err);
    run_free(&r);
    cr_assert_eq(write(done[1], "d", 1), 1);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    run_result after = dbt_runv(NULL, "export", other, "t", NULL);
    cr_assert_str_eq(after.out, before.out, "the database in use was changed");
    run_free(&before);
    run_free(&after);
    /* Nobody holds it now: --force replaces it. */
    r = dbt_runv(NULL, "restore", other, arch, "--force", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    rm_tree(dir);
    rm_tree(dir2);
    free(dir);
    free(dir2);
}

/*
 * edb_env_pack (dbtool compact DB): a database rewritten with full pages
 * holds the same LMDB databases, keys and values byte for byte (a raw LMDB
 * walk before and after) on several shapes: random-order inserts, half the
 * rows deleted, long values, several tables with indexes and a dropped one;
 * it is smaller where random order left pages part-full (by mdb_stat's page
 * counts); it works after (insert, seek, check, backup, verify, restore);
 * a compaction killed at a random moment leaves the old database byte for
 * byte or the new one whole, and the next run succeeds; another process
 * with the database open is refused (also by edb_env_upgrade) and nothing
 * changes; hostile paths get clear errors.
 */
#include "config.h"

#include <lmdb.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "edb_backup.h"
#include "helpers.h"

static char *dir;
static char db[512];

static void
setup(void)
{
    dir = make_tmpdir();
    snprintf(db, sizeof db, "%s/db", dir);
}

static void
teardown(void)
{
    rm_tree(dir);
    free(dir);
    LEAK_CHECK();
}

TestSuite(compact, .init = setup, .fini = teardown, .timeout = 120);

/* ---- a raw walk of every LMDB database ---- */

typedef struct dump {
    uint8_t *p;
    size_t n, cap;
    size_t ndbs;
    uint64_t leaf_pages;     /* leaf and overflow pages of the named databases */
    uint64_t payload;        /* bytes the leaf nodes take (node header, key, value, pointer) */
    unsigned psize;
} dump;

static void
put(dump *d, const void *p, size_t n)
{
    if (d->n + n + 8 > d->cap) {
        d->cap = (d->n + n + 8) * 2;
        d->p = realloc(d->p, d->cap);
        cr_assert_not_null(d->p);
    }
    uint64_t len = n;
    memcpy(d->p + d->n, &len, 8);
    memcpy(d->p + d->n + 8, p, n);
    d->n += n + 8;
}

/* Every named database of the LMDB environment at @path: its name, flags,
 * and every key and value, in order. */
static void
walk(dump *d, const char *path)
{
    memset(d, 0, sizeof *d);
    MDB_env *m;
    MDB_txn *t;
    MDB_dbi main;
    MDB_cursor *mc;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 64), 0);
    cr_assert_eq(mdb_env_set_mapsize(m, (size_t)1 << 30), 0);
    cr_assert_eq(mdb_env_open(m, path, MDB_RDONLY, 0600), 0, "open %s", path);
    cr_assert_eq(mdb_txn_begin(m, NULL, MDB_RDONLY, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, NULL, 0, &main), 0);
    cr_assert_eq(mdb_cursor_open(t, main, &mc), 0);
    MDB_stat st;
    cr_assert_eq(mdb_env_stat(m, &st), 0);
    d->psize = st.ms_psize;
    MDB_val k, v;
    while (mdb_cursor_get(mc, &k, &v, MDB_NEXT) == 0) {
        char name[256];
        cr_assert_lt(k.mv_size, sizeof name);
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = '\0';
        put(d, name, k.mv_size);
        MDB_dbi dbi;
        cr_assert_eq(mdb_dbi_open(t, name, 0, &dbi), 0, "%s", name);
        unsigned flags;
        cr_assert_eq(mdb_dbi_flags(t, dbi, &flags), 0);
        put(d, &flags, sizeof flags);
        cr_assert_eq(mdb_stat(t, dbi, &st), 0);
        d->leaf_pages += st.ms_leaf_pages;
        MDB_cursor *c;
        cr_assert_eq(mdb_cursor_open(t, dbi, &c), 0);
        MDB_val ck, cv;
        while (mdb_cursor_get(c, &ck, &cv, MDB_NEXT) == 0) {
            put(d, ck.mv_data, ck.mv_size);
            put(d, cv.mv_data, cv.mv_size);
            /* a node: 8 bytes of header, the key, the value (or an overflow
             * page number), 2 bytes of pointer; even */
            size_t node = 8 + ck.mv_size + (cv.mv_size > d->psize / 4 ? 8 : cv.mv_size);
            d->payload += (node + 1) / 2 * 2 + 2;
        }
        mdb_cursor_close(c);
        d->ndbs++;
    }
    mdb_cursor_close(mc);
    mdb_txn_abort(t);
    mdb_env_close(m);
}

static void
same(const dump *a, const dump *b, const char *what)
{
    cr_assert_eq(a->ndbs, b->ndbs, "%s: %zu databases, then %zu", what, a->ndbs, b->ndbs);
    cr_assert_eq(a->n, b->n, "%s: %zu bytes of dump, then %zu", what, a->n, b->n);
    cr_assert(memcmp(a->p, b->p, a->n) == 0, "%s: the content changed", what);
}

/* ---- shapes ---- */

enum shape { RANDOM, HALF_DELETED, LONG_VALUES, SEVERAL_TABLES };

static unsigned
rows_of(enum shape s)
{
    return s == LONG_VALUES ? test_scaled_min(300, 20) : test_scaled_min(20000, 1500);
}

static void
create_table(edb_session *s, const char *name)
{
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT64, .flags = EDB_COL_NOTNULL },
        { .name = "name", .type = EDB_COL_TEXT },
        { .name = "v", .type = EDB_COL_BINARY },
    };
    edb_index_def idx[] = {
        { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY },
        { .name = "by_name", .key = "+name\0" },
    };
    edb_table_def def = { name, cols, 3, idx, 2 };
    OK(edb_table_create(s, &def));
}

/* rows in a random order of ids (a multiplicative permutation of 0..n-1) */
static void
fill(edb_session *s, const char *table, unsigned n, unsigned seed, bool longv)
{
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, table));
    OK(edb_txn_begin(s, 0));
    uint8_t *big = NULL;
    size_t bign = 70000;
    if (longv) {
        big = malloc(bign);
        cr_assert_not_null(big);
    }
    for (unsigned i = 0; i < n; i++) {
        int64_t id = (int64_t)(((uint64_t)i * 2654435761u + seed) % 1000003u);
        char name[32];
        uint8_t v[40];
        snprintf(name, sizeof name, "n%08x", (unsigned)(id * 40503u ^ seed));
        for (size_t j = 0; j < sizeof v; j++)
            v[j] = (uint8_t)(id + j);
        OK(edb_update_prepare(c, EDB_PREP_INSERT));
        OK(edb_column_set(c, 1, &id, 8, 0));
        OK(edb_column_set(c, 2, name, strlen(name), 0));
        if (longv && i % 3 == 0) {
            for (size_t j = 0; j < bign; j++)
                big[j] = (uint8_t)(j * 7 + i);
            OK(edb_column_write(c, 3, 0, big, bign - i, 0));
        } else {
            OK(edb_column_set(c, 3, v, sizeof v, 0));
        }
        OK(edb_update(c));
        if (i % 1000 == 999) {
            OK(edb_txn_commit(s));
            OK(edb_txn_begin(s, 0));
        }
    }
    OK(edb_txn_commit(s));
    free(big);
    edb_cursor_close(c);
}

static void
make_shape(enum shape sh)
{
    edb_env *env = open_env(dir, 0);
    edb_session *s;
    OK(edb_session_begin(&s, env));
    unsigned n = rows_of(sh);
    create_table(s, "t");
    if (sh == SEVERAL_TABLES) {
        create_table(s, "gone");
        fill(s, "gone", n / 2, 7, false);
        create_table(s, "u");
        fill(s, "t", n / 2, 1, false);
        fill(s, "u", n / 2, 2, false);
        OK(edb_table_drop(s, "gone"));
    } else {
        fill(s, "t", n, 1, sh == LONG_VALUES);
    }
    if (sh == HALF_DELETED) {
        edb_cursor *c;
        OK(edb_cursor_open(&c, s, "t"));
        OK(edb_txn_begin(s, 0));
        unsigned i = 0;
        for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT))
            if (i++ % 2 == 0)
                OK(edb_record_delete(c));
        OK(edb_txn_commit(s));
        edb_cursor_close(c);
    }
    edb_session_end(s);
    edb_env_close(env);
}

static void
pack_shape(enum shape sh, const char *what)
{
    make_shape(sh);
    dump before, after;
    walk(&before, db);
    edb_pack_stat st;
    OK(edb_env_pack(&st, db));
    walk(&after, db);
    same(&before, &after, what);
    char tmp[600];
    struct stat sb;
    snprintf(tmp, sizeof tmp, "%s.compact", db);
    cr_assert_neq(lstat(tmp, &sb), 0, "%s: '%s' left", what, tmp);
    cr_assert_gt(st.pages_before, 0);
    cr_assert_leq(st.pages_after, st.pages_before, "%s", what);
    cr_assert_leq(st.bytes_after, st.bytes_before, "%s", what);
    /* packed leaves: within 10% (and a page per database) of what the
     * nodes need */
    uint64_t ideal = before.payload / (before.psize - 16);
    if (sh != LONG_VALUES)
        cr_assert_leq(after.leaf_pages, ideal + ideal / 10 + after.ndbs, "%s: %llu leaf pages for %llu "
                      "pages of nodes", what, (unsigned long long)after.leaf_pages, (unsigned long long)ideal);
    free(before.p);
    free(after.p);
}

Test(compact, random_order_inserts_same_content_fewer_pages)
{
    make_shape(RANDOM);
    dump before, after;
    walk(&before, db);
    edb_pack_stat st;
    OK(edb_env_pack(&st, db));
    walk(&after, db);
    same(&before, &after, "random");
    /* random order left the leaves part-full: the packed leaves are fewer by
     * a real margin, and the file shrinks by at least half of that */
    uint64_t ideal = before.payload / (before.psize - 16);
    cr_assert_geq(before.leaf_pages, ideal + ideal / 5, "random order: %llu leaf pages for %llu pages of nodes",
                  (unsigned long long)before.leaf_pages, (unsigned long long)ideal);
    cr_assert_leq(after.leaf_pages, ideal + ideal / 10 + after.ndbs);
    uint64_t saved = before.leaf_pages - after.leaf_pages;
    fprintf(stderr, "compact::random_order: leaf pages %llu -> %llu (nodes need %llu), pages %llu -> %llu, "
            "data.mdb %llu -> %llu bytes\n", (unsigned long long)before.leaf_pages,
            (unsigned long long)after.leaf_pages, (unsigned long long)ideal,
            (unsigned long long)st.pages_before, (unsigned long long)st.pages_after,
            (unsigned long long)st.bytes_before, (unsigned long long)st.bytes_after);
    cr_assert_leq(st.pages_after + saved / 2, st.pages_before, "pages %llu -> %llu, leaves %llu -> %llu",
                  (unsigned long long)st.pages_before, (unsigned long long)st.pages_after,
                  (unsigned long long)before.leaf_pages, (unsigned long long)after.leaf_pages);
    cr_assert_leq(st.bytes_after + saved / 2 * before.psize, st.bytes_before);
    struct stat sb;
    char data[600];
    snprintf(data, sizeof data, "%s/data.mdb", db);
    cr_assert_eq(stat(data, &sb), 0);
    cr_assert_eq((uint64_t)sb.st_size, st.bytes_after);
    free(before.p);
    free(after.p);
}

Test(compact, half_deleted_same_content)
{
    pack_shape(HALF_DELETED, "half deleted");
}

Test(compact, long_values_same_content)
{
    pack_shape(LONG_VALUES, "long values");
}

Test(compact, several_tables_and_a_dropped_one_same_content)
{
    pack_shape(SEVERAL_TABLES, "several tables");
}

/* A second pack of a packed database changes nothing but the file. */
Test(compact, twice)
{
    pack_shape(RANDOM, "first");
    dump a, b;
    walk(&a, db);
    edb_pack_stat st;
    OK(edb_env_pack(&st, db));
    walk(&b, db);
    same(&a, &b, "second");
    cr_assert_eq(a.leaf_pages, b.leaf_pages);
    free(a.p);
    free(b.p);
}

/* ---- the database works after ---- */

static int64_t
seek_id(edb_session *s, int64_t id, char *name, size_t cap)
{
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_key_make(c, &id, 8, EDB_KEY_NEW));
    int rc = edb_cursor_seek(c, EDB_SEEK_EQ);
    int64_t got = -1;
    if (rc == 0) {
        size_t n;
        OK(edb_column_get(c, 1, &got, 8, &n, 0));
        OK(edb_column_get(c, 2, name, cap - 1, &n, 0));
        name[n] = '\0';
    }
    edb_cursor_close(c);
    return got;
}

Test(compact, works_after_insert_seek_check_backup_restore)
{
    make_shape(RANDOM);
    OK(edb_env_pack(NULL, db));
    edb_env *env = open_env(dir, 0);
    edb_session *s;
    OK(edb_session_begin(&s, env));
    char name[64];
    /* row i = 0 has id seed % 1000003 = 1 */
    cr_assert_eq(seek_id(s, 1, name, sizeof name), 1);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "t"));
    OK(edb_txn_begin(s, 0));
    int64_t id = 2000000;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, 8, 0));
    OK(edb_column_set(c, 2, "after", 5, 0));
    OK(edb_update(c));
    OK(edb_txn_commit(s));
    edb_cursor_close(c);
    cr_assert_eq(seek_id(s, id, name, sizeof name), id);
    cr_assert_str_eq(name, "after");
    uint64_t problems = 1;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
    edb_tree_stat ts;
    OK(edb_table_stat(&ts, s, "t", "by_name"));
    cr_assert_eq(ts.entries, rows_of(RANDOM) + 1);

    char arch[600], target[600];
    snprintf(arch, sizeof arch, "%s/full.edbb", dir);
    snprintf(target, sizeof target, "%s/restored", dir);
    edb_backup_opts bo = { 0 };
    edb_backup *bk = NULL;
    OK(edb_backup_begin(&bk, env, &bo));
    OK(edb_backup_save(bk, arch, 0, NULL, NULL));
    edb_backup_end(bk);
    edb_session_end(s);
    edb_env_close(env);
    edb_backup_source src = { .path = arch, .fd = -1 };
    OK(edb_backup_verify(NULL, &src, 1, NULL, NULL));
    OK(edb_backup_restore(NULL, target, &src, 1, 0));
    dump a, b;
    walk(&a, db);
    walk(&b, target);
    same(&a, &b, "restored");
    free(a.p);
    free(b.p);
}

/* ---- interruption ---- */

/* SIGKILL at a random moment: data.mdb is then the old file byte for byte
 * (same inode) or the packed one; the content is the same either way, and
 * the next pack succeeds and leaves no "<db>.compact". */
Test(compact, killed_packs_leave_old_or_new, .timeout = 600)
{
    make_shape(HALF_DELETED);
    char data[600], tmp[600];
    snprintf(data, sizeof data, "%s/data.mdb", db);
    snprintf(tmp, sizeof tmp, "%s.compact", db);
    dump want;
    walk(&want, db);
    double t0 = test_now_us();
    OK(edb_env_pack(NULL, db));
    double span = test_now_us() - t0;
    unsigned rounds = test_scaled_min(30, 3), old_seen = 0, new_seen = 0;
    uint64_t seed = (uint64_t)t0;
    fprintf(stderr, "compact::killed_packs: seed %llu\n", (unsigned long long)seed);
    for (unsigned r = 0; r < rounds; r++) {
        struct stat b0, b1;
        cr_assert_eq(stat(data, &b0), 0);
        uint8_t *old;
        size_t oldn = test_slurp(data, &old);
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        useconds_t delay = (useconds_t)((seed >> 33) % (uint64_t)(span * 1.2 + 1));
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
            _exit(edb_env_pack(NULL, db) == 0 ? 0 : 1);
        usleep(delay);
        kill(pid, SIGKILL);
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0), "round %u: status %d", r, st);
        cr_assert_eq(stat(data, &b1), 0, "round %u: no data.mdb", r);
        if (b1.st_ino == b0.st_ino) {
            uint8_t *got;
            size_t gotn = test_slurp(data, &got);
            cr_assert(gotn == oldn && memcmp(got, old, gotn) == 0, "round %u: the old data.mdb changed", r);
            free(got);
            old_seen++;
        } else {
            new_seen++;
        }
        free(old);
        dump d;
        walk(&d, db);
        same(&want, &d, "after a kill");
        free(d.p);
        OK(edb_env_pack(NULL, db));
        struct stat sb;
        cr_assert_neq(lstat(tmp, &sb), 0, "round %u: '%s' left", r, tmp);
    }
    dump d;
    walk(&d, db);
    same(&want, &d, "at the end");
    free(d.p);
    free(want.p);
    fprintf(stderr, "compact::killed_packs: %u rounds, %u left the old file, %u the new "
            "(a pack takes %.0f us)\n", rounds, old_seen, new_seen, span);
}

/* ---- another process has it open ---- */

Test(compact, refused_while_another_process_has_it_open, .timeout = 60)
{
    make_shape(SEVERAL_TABLES);
    char data[600], tmp[600];
    snprintf(data, sizeof data, "%s/data.mdb", db);
    snprintf(tmp, sizeof tmp, "%s.compact", db);
    dump want;
    walk(&want, db);
    struct stat b0, b1;
    cr_assert_eq(stat(data, &b0), 0);
    int ready[2], go[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(go), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        edb_env_opts o = { .map_size = test_map_size() };
        edb_env *env = NULL;
        int rc = edb_env_open(&env, db, &o);
        char ch = rc == 0 ? 'r' : 'x';
        if (write(ready[1], &ch, 1) != 1)
            _exit(3);
        if (read(go[0], &ch, 1) != 1)
            _exit(4);
        edb_env_close(env);
        _exit(rc == 0 ? 0 : 2);
    }
    char ch = 0;
    cr_assert_eq(read(ready[0], &ch, 1), 1);
    cr_assert_eq(ch, 'r');
    char pidtxt[32];
    snprintf(pidtxt, sizeof pidtxt, "process %ld", (long)pid);
    RC(edb_env_pack(NULL, db), EDB_BUSY);
    cr_assert_not_null(strstr(edb_error_last(), pidtxt), "%s", edb_error_last());
    unsigned from = 9;
    RC(edb_env_upgrade(&from, db), EDB_BUSY);
    cr_assert_not_null(strstr(edb_error_last(), pidtxt), "%s", edb_error_last());
    cr_assert_eq(stat(data, &b1), 0);
    cr_assert_eq(b0.st_ino, b1.st_ino);
    cr_assert_eq(b0.st_size, b1.st_size);
    struct stat sb;
    cr_assert_neq(lstat(tmp, &sb), 0);
    dump d;
    walk(&d, db);
    same(&want, &d, "refused");
    free(d.p);
    cr_assert_eq(write(go[1], "g", 1), 1);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* an environment of this very process: LMDB's lock does not tell, its
     * map does */
    edb_env *env = open_env(dir, 0);
    RC(edb_env_pack(NULL, db), EDB_BUSY);
    cr_assert_not_null(strstr(edb_error_last(), "this process"), "%s", edb_error_last());
    RC(edb_env_upgrade(&from, db), EDB_BUSY);
    edb_env_close(env);
    cr_assert_eq(stat(data, &b1), 0);
    cr_assert_eq(b0.st_ino, b1.st_ino);
    OK(edb_env_pack(NULL, db));
    walk(&d, db);
    same(&want, &d, "packed after the other process left");
    free(d.p);
    free(want.p);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
}

/* ---- hostile paths ---- */

Test(compact, hostile_paths)
{
    char p[600], f[900];
    RC(edb_env_pack(NULL, NULL), EDB_INVAL);
    RC(edb_env_pack(NULL, ""), EDB_INVAL);
    snprintf(p, sizeof p, "%s/none", dir);
    RC(edb_env_pack(NULL, p), EDB_NOTFOUND);
    /* an empty directory: nothing created in it */
    snprintf(p, sizeof p, "%s/empty", dir);
    cr_assert_eq(mkdir(p, 0700), 0);
    RC(edb_env_pack(NULL, p), EDB_NOTFOUND);
    snprintf(f, sizeof f, "%s/data.mdb", p);
    struct stat sb;
    cr_assert_neq(lstat(f, &sb), 0);
    /* data.mdb a directory */
    cr_assert_eq(mkdir(f, 0700), 0);
    RC(edb_env_pack(NULL, p), EDB_INVAL);
    cr_assert_eq(rmdir(f), 0);
    /* not an LMDB file */
    FILE *fp = fopen(f, "w");
    cr_assert_not_null(fp);
    for (int i = 0; i < 8192; i++)
        fputc('x', fp);
    fclose(fp);
    int rc = edb_env_pack(NULL, p);
    cr_assert_lt(rc, 0);
    cr_assert_eq(lstat(f, &sb), 0);
    cr_assert_eq(sb.st_size, 8192);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.compact", p);
    cr_assert_neq(lstat(tmp, &sb), 0);
    /* an LMDB file that is not edb's of format 4 */
    snprintf(p, sizeof p, "%s/old", dir);
    cr_assert_eq(mkdir(p, 0700), 0);
    MDB_env *m;
    MDB_txn *t;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 4), 0);
    cr_assert_eq(mdb_env_open(m, p, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "edb:catalog", MDB_CREATE, &dbi), 0);
    cr_assert_eq(mdb_txn_commit(t), 0);
    mdb_env_close(m);
    RC(edb_env_pack(NULL, p), EDB_VERSION);
    cr_assert_not_null(strstr(edb_error_last(), "upgrade"), "%s", edb_error_last());
    /* a leftover "<db>.compact" holding something else is not ours */
    make_shape(RANDOM);
    snprintf(tmp, sizeof tmp, "%s.compact", db);
    cr_assert_eq(mkdir(tmp, 0700), 0);
    snprintf(f, sizeof f, "%s/keep.txt", tmp);
    fp = fopen(f, "w");
    cr_assert_not_null(fp);
    fputs("mine\n", fp);
    fclose(fp);
    RC(edb_env_pack(NULL, db), EDB_EXISTS);
    cr_assert_eq(lstat(f, &sb), 0);
    cr_assert_eq(unlink(f), 0);
    /* a partial one (what a kill leaves) is removed */
    edb_env *env;
    edb_env_opts o = { .map_size = test_map_size() };
    OK(edb_env_open(&env, tmp, &o));
    edb_env_close(env);
    OK(edb_env_pack(NULL, db));
    cr_assert_neq(lstat(tmp, &sb), 0);
    /* through a symbolic link: the directory is packed, the link stays */
    char link[600];
    snprintf(link, sizeof link, "%s/link", dir);
    cr_assert_eq(symlink(db, link), 0);
    dump a, b;
    walk(&a, db);
    OK(edb_env_pack(NULL, link));
    cr_assert_eq(lstat(link, &sb), 0);
    cr_assert(S_ISLNK(sb.st_mode));
    cr_assert_eq(lstat(db, &sb), 0);
    cr_assert(S_ISDIR(sb.st_mode));
    walk(&b, link);
    same(&a, &b, "through a link");
    snprintf(tmp, sizeof tmp, "%s.compact", link);
    cr_assert_neq(lstat(tmp, &sb), 0);
    free(a.p);
    free(b.p);
}

/* A copy that fails its check (the source lost a record behind the
 * engine's back, so an index entry points nowhere) is EDB_CORRUPT: the
 * source stays byte for byte and the partial copy is removed. */
Test(compact, failed_check_keeps_the_old_and_removes_the_copy)
{
    make_shape(RANDOM);
    MDB_env *m;
    MDB_txn *t;
    MDB_dbi recs;
    MDB_cursor *c;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 8), 0);
    cr_assert_eq(mdb_env_set_mapsize(m, (size_t)1 << 30), 0);
    cr_assert_eq(mdb_env_open(m, db, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, "edb.records", 0, &recs), 0);
    cr_assert_eq(mdb_cursor_open(t, recs, &c), 0);
    MDB_val k, v;
    cr_assert_eq(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
    cr_assert_eq(mdb_cursor_del(c, 0), 0);
    mdb_cursor_close(c);
    cr_assert_eq(mdb_txn_commit(t), 0);
    mdb_env_close(m);
    char data[600], tmp[600];
    snprintf(data, sizeof data, "%s/data.mdb", db);
    snprintf(tmp, sizeof tmp, "%s.compact", db);
    uint8_t *want, *got;
    size_t wantn = test_slurp(data, &want);
    RC(edb_env_pack(NULL, db), EDB_CORRUPT);
    cr_assert_not_null(strstr(edb_error_last(), "problems"), "%s", edb_error_last());
    size_t gotn = test_slurp(data, &got);
    cr_assert(gotn == wantn && memcmp(got, want, gotn) == 0, "the old data.mdb changed");
    struct stat sb;
    cr_assert_neq(lstat(tmp, &sb), 0, "'%s' left", tmp);
    free(want);
    free(got);
}

/*
 * edb_env_upgrade (dbtool upgrade): a format-2 database made by the release
 * before the keyspace (ad5c262's dbtool: create, create-table of
 * tests/engine/fixtures/orders.json and notes.json, import, a delete) is
 * refused at open with the fix named, converted to format 5 with its schemas,
 * rows, NULLs, defaults, multi-valued columns, descending and IGNORE_NULL
 * indexes and counters, checked, and swapped in; a partial upgrade left
 * behind is removed; a failed one leaves the old database as it was.
 *
 * The fixture is `mdb_dump -s` of the old database's non-empty LMDB
 * databases (its empty pool databases are left out: upgrade never reads
 * them), loaded here with LMDB.
 */
#include "config.h"

#include <lmdb.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "helpers.h"

#include "catalog.h"    /* the format and record versions of the fixture */
#include "key.h"
#include "record.h"
#include "cursor.h"
#include "index_values.h"

static char *dir;
static char db[512];

static int
hexval(int ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* " 0a1b..." -> bytes; returns the length. */
static size_t
unhex(const char *line, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = line + 1; p[0] && p[1] && hexval(p[0]) >= 0 && hexval(p[1]) >= 0; p += 2) {
        cr_assert_lt(n, cap);
        out[n++] = (uint8_t)(hexval(p[0]) << 4 | hexval(p[1]));
    }
    return n;
}

/* Load the mdb_dump text at tests/engine/fixtures/@name into a new LMDB
 * environment at @path. */
static void
load_dump(const char *name, const char *path)
{
    const char *src = getenv("top_srcdir");
    char fpath[4096];
    snprintf(fpath, sizeof fpath, "%s/tests/engine/fixtures/%s", src ? src : "..", name);
    FILE *f = fopen(fpath, "r");
    cr_assert_not_null(f, "%s", fpath);
    cr_assert_eq(mkdir(path, 0700), 0);
    MDB_env *m;
    MDB_txn *t;
    MDB_dbi dbi = 0;
    cr_assert_eq(mdb_env_create(&m), 0);
    cr_assert_eq(mdb_env_set_maxdbs(m, 64), 0);
    cr_assert_eq(mdb_env_set_mapsize(m, 16u << 20), 0);
    cr_assert_eq(mdb_env_open(m, path, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(m, NULL, 0, &t), 0);
    static char line[1 << 16], vline[1 << 16];
    static uint8_t k[4096], v[1 << 15];
    bool data = false;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "database=", 9) == 0) {
            line[strcspn(line, "\n")] = '\0';
            cr_assert_eq(mdb_dbi_open(t, line + 9, MDB_CREATE, &dbi), 0, "%s", line);
        } else if (strcmp(line, "HEADER=END\n") == 0) {
            data = true;
        } else if (strcmp(line, "DATA=END\n") == 0) {
            data = false;
        } else if (data && line[0] == ' ') {
            cr_assert_not_null(fgets(vline, sizeof vline, f));
            MDB_val mk = { unhex(line, k, sizeof k), k }, mv = { unhex(vline, v, sizeof v), v };
            cr_assert_eq(mdb_put(t, dbi, &mk, &mv, 0), 0);
        }
    }
    fclose(f);
    cr_assert_eq(mdb_txn_commit(t), 0);
    mdb_env_close(m);
}

static void
setup(void)
{
    dir = make_tmpdir();
    snprintf(db, sizeof db, "%s/db", dir);
    load_dump("format2.dump", db);
}

static void
teardown(void)
{
    rm_tree(dir);
    free(dir);
    LEAK_CHECK();
}

TestSuite(upgrade, .init = setup, .fini = teardown, .timeout = 60);

static edb_env *
open_db(edb_session **s)
{
    edb_env *env;
    edb_env_opts o = { .map_size = test_map_size() };
    OK(edb_env_open(&env, db, &o));
    OK(edb_session_begin(s, env));
    return env;
}

static int64_t
col64(edb_cursor *c, edb_colid col)
{
    int64_t v = 0;
    size_t n;
    int rc = edb_column_get(c, col, &v, 8, &n, 0);
    cr_assert(rc == 0 || rc == EDB_WRN_NULL, "%s", edb_error_last());
    return rc == EDB_WRN_NULL ? INT64_MIN : v;
}

static int32_t
col32(edb_cursor *c, edb_colid col)
{
    int32_t v = 0;
    size_t n;
    int rc = edb_column_get(c, col, &v, 4, &n, 0);
    cr_assert(rc == 0 || rc == EDB_WRN_NULL, "%s", edb_error_last());
    return rc == EDB_WRN_NULL ? INT32_MIN : v;
}

static uint64_t
entries(edb_session *s, const char *t, const char *x)
{
    edb_tree_stat st;
    OK(edb_table_stat(&st, s, t, x));
    return st.entries;
}

Test(upgrade, format2_database_is_converted)
{
    edb_env *env;
    edb_env_opts o = { .map_size = test_map_size() };
    RC(edb_env_open(&env, db, &o), EDB_VERSION);
    cr_assert(strstr(edb_error_last(), "format 2") && strstr(edb_error_last(), "dbtool upgrade"), "%s",
              edb_error_last());
    unsigned from = 0;
    OK(edb_env_upgrade(&from, db));
    cr_assert_eq(from, 2);
    char tmp[600];
    struct stat sb;
    snprintf(tmp, sizeof tmp, "%s.upgrade", db);
    cr_assert_neq(lstat(tmp, &sb), 0, "the old database is removed");

    edb_session *s;
    env = open_db(&s);
    uint64_t problems = 1;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
    /* orders: (id autoinc, customer text, qty int32 default 1, when, tags multi, stock escrow) */
    edb_table_def *d;
    OK(edb_table_describe(&d, s, "orders"));
    cr_assert_eq(d->ncolumns, 6);
    cr_assert_eq(d->nindexes, 3);
    cr_assert_str_eq(d->indexes[1].name, "by_customer");
    cr_assert_eq(memcmp(d->indexes[1].key, "+customer\0-qty\0", 16), 0);
    cr_assert(d->indexes[2].flags & EDB_IDX_IGNORE_NULL);
    cr_assert(d->columns[4].flags & EDB_COL_MULTIVALUED);
    cr_assert(d->columns[5].flags & EDB_COL_ESCROW);
    edb_free(d);
    cr_assert_eq(entries(s, "orders", NULL), 3);
    cr_assert_eq(entries(s, "orders", "by_customer"), 3);
    cr_assert_eq(entries(s, "orders", "by_qty"), 2);      /* qty NULL in row 2 stays NULL */
    cr_assert_eq(entries(s, "notes", NULL), 3);
    cr_assert_eq(entries(s, "notes", "by_score"), 2);

    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "orders"));
    int64_t want_id[] = { 1, 2, 3 }, want_stock[] = { 5, 0, -2 };
    int32_t want_qty[] = { 3, INT32_MIN, 1 };
    int i = 0;
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, 1), i++) {
        cr_assert_lt(i, 3);
        cr_assert_eq(col64(c, 1), want_id[i]);
        cr_assert_eq(col32(c, 3), want_qty[i], "row %d", i);
        cr_assert_eq(col64(c, 6), want_stock[i]);
    }
    cr_assert_eq(i, 3);
    /* row 1's tags, both values */
    int64_t one = 1;
    OK(edb_key_make(c, &one, 8, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    char buf[8];
    size_t n;
    OK(edb_column_get(c, 5, buf, sizeof buf, &n, 2));
    cr_assert(n == 1 && buf[0] == 'b');
    /* the descending segment in format 4's order: ann (qty 3, then 1), bob */
    OK(edb_cursor_set_index(c, "by_customer"));
    int64_t order[3];
    i = 0;
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, 1))
        order[i++] = col64(c, 1);
    cr_assert(i == 3 && order[0] == 1 && order[1] == 3 && order[2] == 2);
    /* the AUTOINC counter carried over: 7 was handed out (then deleted) */
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_update(c));
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    OK(edb_cursor_set_index(c, NULL));
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    cr_assert_eq(col64(c, 1), 8);
    edb_cursor_close(c);
    /* notes: implicit key; by_score descending, unique, ignoring NULL */
    OK(edb_cursor_open(&c, s, "notes"));
    OK(edb_cursor_set_index(c, "by_score"));
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    double sc;
    OK(edb_column_get(c, 2, &sc, 8, &n, 0));
    cr_assert_eq(sc, 1.5);
    edb_cursor_close(c);
    edb_session_end(s);
    edb_env_close(env);

    /* a second upgrade has nothing to do */
    OK(edb_env_upgrade(&from, db));
    cr_assert_eq(from, 5);
}

/* A partial "db.upgrade" left by an interrupted upgrade is removed and the
 * upgrade done; one holding files that are not a database's is not
 * touched, the upgrade fails, and the old database is left as it was. */
Test(upgrade, interrupted_and_failed_upgrades)
{
    char tmp[600], junk[700], data[600];
    snprintf(tmp, sizeof tmp, "%s.upgrade", db);
    snprintf(data, sizeof data, "%s/data.mdb", db);
    cr_assert_eq(mkdir(tmp, 0700), 0);
    snprintf(junk, sizeof junk, "%s/keep.txt", tmp);
    FILE *f = fopen(junk, "w");
    cr_assert_not_null(f);
    fputs("not a database\n", f);
    fclose(f);
    struct stat before, after;
    cr_assert_eq(stat(data, &before), 0);
    unsigned from = 0;
    RC(edb_env_upgrade(&from, db), EDB_EXISTS);
    cr_assert_eq(stat(data, &after), 0);
    cr_assert_eq(before.st_size, after.st_size);
    cr_assert_eq(before.st_mtime, after.st_mtime);
    cr_assert_eq(before.st_ino, after.st_ino);
    edb_env *env;
    edb_env_opts o = { .map_size = test_map_size() };
    RC(edb_env_open(&env, db, &o), EDB_VERSION);
    cr_assert_eq(unlink(junk), 0);
    /* what a killed upgrade leaves: a half-built database beside the old one */
    OK(edb_env_open(&env, tmp, &o));
    edb_env_close(env);
    OK(edb_env_upgrade(&from, db));
    cr_assert_eq(from, 2);
    edb_session *s;
    env = open_db(&s);
    cr_assert_eq(entries(s, "orders", NULL), 3);
    edb_session_end(s);
    edb_env_close(env);
    RC(edb_env_upgrade(NULL, db), EDB_INVAL);
    RC(edb_env_upgrade(&from, NULL), EDB_INVAL);
    char none[600];
    snprintf(none, sizeof none, "%s/none", dir);
    RC(edb_env_upgrade(&from, none), EDB_NOTFOUND);
}

static unsigned
scaled(unsigned n)
{
    return test_scaled_min(n, 1);
}

/* SIGKILL at a random moment of an upgrade: the database is then either the
 * old one, byte for byte, or the new one whole; the next upgrade finishes the
 * work (or has nothing left but a leftover to remove). */
Test(upgrade, killed_upgrades_leave_old_or_new, .timeout = 300)
{
    char data[600], ref[600], tmp[600];
    snprintf(data, sizeof data, "%s/data.mdb", db);
    snprintf(tmp, sizeof tmp, "%s.upgrade", db);
    uint8_t *want;
    size_t wantn = test_slurp(data, &want);
    snprintf(ref, sizeof ref, "%s/ref", dir);
    load_dump("format2.dump", ref);
    unsigned from;
    double t0 = test_now_us();
    OK(edb_env_upgrade(&from, ref));
    double span = test_now_us() - t0;
    unsigned rounds = scaled(40), old_seen = 0, new_seen = 0;
    uint64_t seed = (uint64_t)t0;
    fprintf(stderr, "upgrade::killed_upgrades: seed %llu\n", (unsigned long long)seed);
    for (unsigned r = 0; r < rounds; r++) {
        rm_tree(db);
        rm_tree(tmp);
        load_dump("format2.dump", db);
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        useconds_t delay = (useconds_t)((seed >> 33) % (uint64_t)(span * 1.5 + 1));
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            unsigned f;
            _exit(edb_env_upgrade(&f, db) == 0 ? 0 : 1);
        }
        usleep(delay);
        kill(pid, SIGKILL);
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0), "round %u: status %d", r, st);
        edb_env *env;
        edb_env_opts o = { .map_size = test_map_size() };
        int rc = edb_env_open(&env, db, &o);
        if (rc == EDB_VERSION) {
            /* the old one, as it was (LMDB's lock file aside) */
            uint8_t *got;
            size_t gotn = test_slurp(data, &got);
            cr_assert(gotn == wantn && memcmp(got, want, gotn) == 0, "round %u: the old data.mdb changed", r);
            free(got);
            old_seen++;
        } else {
            cr_assert_eq(rc, 0, "round %u: %s", r, edb_error_last());
            edb_session *s;
            OK(edb_session_begin(&s, env));
            cr_assert_eq(entries(s, "orders", NULL), 3, "round %u", r);
            edb_session_end(s);
            edb_env_close(env);
            new_seen++;
        }
        OK(edb_env_upgrade(&from, db));
        cr_assert(from == 2 || from == 5);
        struct stat sb;
        cr_assert_neq(lstat(tmp, &sb), 0, "round %u: '%s' left", r, tmp);
        edb_session *s;
        env = open_db(&s);
        cr_assert_eq(entries(s, "orders", NULL), 3);
        cr_assert_eq(entries(s, "notes", "by_score"), 2);
        edb_session_end(s);
        edb_env_close(env);
    }
    free(want);
    fprintf(stderr, "upgrade::killed_upgrades: %u rounds, %u left the old database, %u the new "
            "(an upgrade takes %.0f us)\n", rounds, old_seen, new_seen, span);
}

/* A format-3 database (blob version 2, NULLs after the values in a
 * descending segment, SORT_NULLS_HIGH and IGNORE_ANY_NULL indexes), made by
 * f703d06's library (tests/engine/fixtures/make_format3.c). */
Test(upgrade, format3_database_is_converted)
{
    char p3[600];
    snprintf(p3, sizeof p3, "%s/f3", dir);
    load_dump("format3.dump", p3);
    edb_env *env;
    edb_env_opts o = { .map_size = test_map_size() };
    RC(edb_env_open(&env, p3, &o), EDB_VERSION);
    cr_assert(strstr(edb_error_last(), "format 3") != NULL, "%s", edb_error_last());
    unsigned from = 0;
    OK(edb_env_upgrade(&from, p3));
    cr_assert_eq(from, 3);
    edb_session *s;
    OK(edb_env_open(&env, p3, &o));
    OK(edb_session_begin(&s, env));
    cr_assert_eq(entries(s, "items", NULL), 3);
    cr_assert_eq(entries(s, "items", "by_score"), 3);
    cr_assert_eq(entries(s, "items", "by_name"), 2);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "items"));
    OK(edb_cursor_set_index(c, "by_score"));
    int64_t order[3];
    int i = 0;
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0 && i < 3; rc = edb_cursor_move(c, 1))
        order[i++] = col64(c, 1);
    cr_assert(i == 3 && order[0] == 3 && order[1] == 1 && order[2] == 2, "NULL score last");
    /* AUTOINC: 4 was handed out, then deleted */
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_update(c));
    OK(edb_cursor_set_index(c, NULL));
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    cr_assert_eq(col64(c, 1), 5);
    edb_cursor_close(c);
    uint64_t problems = 1;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
    edb_session_end(s);
    edb_env_close(env);
}

/* Another process with the old database open (here with LMDB, as an older
 * release's dbtool would) would keep writing the old files after the
 * exchange: the upgrade is refused, naming it, and changes nothing. */
Test(upgrade, refused_while_another_process_has_it_open)
{
    char data[600], tmp[600];
    snprintf(data, sizeof data, "%s/data.mdb", db);
    snprintf(tmp, sizeof tmp, "%s.upgrade", db);
    uint8_t *want;
    size_t wantn = test_slurp(data, &want);
    int ready[2], go[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(go), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        MDB_env *m;
        int rc = mdb_env_create(&m);
        if (rc == 0)
            rc = mdb_env_set_maxdbs(m, 64);
        if (rc == 0)
            rc = mdb_env_open(m, db, MDB_RDONLY, 0600);
        char ch = rc == 0 ? 'r' : 'x';
        if (write(ready[1], &ch, 1) != 1 || read(go[0], &ch, 1) != 1)
            _exit(3);
        mdb_env_close(m);
        _exit(rc == 0 ? 0 : 2);
    }
    char ch = 0;
    cr_assert_eq(read(ready[0], &ch, 1), 1);
    cr_assert_eq(ch, 'r');
    unsigned from = 9;
    RC(edb_env_upgrade(&from, db), EDB_BUSY);
    char pidtxt[32];
    snprintf(pidtxt, sizeof pidtxt, "process %ld", (long)pid);
    cr_assert_not_null(strstr(edb_error_last(), pidtxt), "%s", edb_error_last());
    uint8_t *got;
    size_t gotn = test_slurp(data, &got);
    cr_assert(gotn == wantn && memcmp(got, want, gotn) == 0, "the old data.mdb changed");
    free(got);
    struct stat sb;
    cr_assert_neq(lstat(tmp, &sb), 0);
    edb_env *env;
    edb_env_opts o = { .map_size = test_map_size() };
    RC(edb_env_open(&env, db, &o), EDB_VERSION);
    cr_assert_eq(write(go[1], "g", 1), 1);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    OK(edb_env_upgrade(&from, db));
    cr_assert_eq(from, 2);
    free(want);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
}

/* ---- format 4 (tests/engine/fixtures/format4.dump, make_format4.c) -------- */

/* The ids of table items in index @x's order (NULL: the primary). */
static int
items_order(edb_session *s, const char *x, int64_t *ids, int cap)
{
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "items"));
    OK(edb_cursor_set_index(c, x));
    int n = 0;
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
        cr_assert_lt(n, cap);
        ids[n++] = col64(c, 1);
    }
    int m = n;
    for (int rc = edb_cursor_move(c, EDB_MOVE_LAST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_PREV))
        cr_assert_eq(col64(c, 1), ids[--m], "index %s backwards", x ? x : "pk");
    cr_assert_eq(m, 0);
    edb_cursor_close(c);
    return n;
}

/* The version byte of item @id's record. */
static unsigned
item_version(edb_env *env, int64_t id)
{
    edb__table *t;
    MDB_txn *txn;
    OK(edb__ro_begin(env, &txn));
    OK(edb__table_load(&t, env, txn, "items"));
    uint8_t kb[16];
    size_t kl = 0;
    OK(edb__key_append(kb, sizeof kb, &kl, EDB_COL_INT64, &id, 8, false));
    MDB_val k = { kl, kb }, d;
    cr_assert_eq(edb__ks_get(txn, &t->rec, &k, &d), 0);
    unsigned v = ((uint8_t *)d.mv_data)[0];
    edb__ro_end(env, txn);
    edb__table_free(t);
    return v;
}

/* The id prefix length of table items' records and of its index by_name,
 * and the stored key of row 1 (keyspace.h), asserted equal to @want. */
static void
check_plen(edb_env *env, unsigned want)
{
    edb__table *t;
    MDB_txn *txn;
    OK(edb__ro_begin(env, &txn));
    OK(edb__table_load(&t, env, txn, "items"));
    cr_assert_eq(t->rec.plen, want);
    for (uint32_t i = 0; i < t->nidx; i++)
        if ((int)i != t->primary)
            cr_assert_eq(t->idx[i].ks.plen, want, "index %s", t->idx[i].name);
    MDB_cursor *mc;
    cr_assert_eq(mdb_cursor_open(txn, t->rec.dbi, &mc), 0);
    MDB_val k, d;
    cr_assert_eq(edb__ks_cursor_get(mc, &t->rec, &k, &d, MDB_FIRST), 0);
    cr_assert_eq(k.mv_size, 9);
    cr_assert(mdb_cursor_get(mc, &k, &d, MDB_GET_CURRENT) == 0 && k.mv_size == want + 9,
              "row 1 is stored under %zu bytes", k.mv_size);
    mdb_cursor_close(mc);
    edb__ro_end(env, txn);
    edb__table_free(t);
}


/* Format 4 keeps the primary key in every entry's value; format 5 only in
 * the unique index's. */
static void
check_values(edb_env *env, unsigned format)
{
    static const char *const nonunique[] = { "by_name", "by_score", "by_tag" };
    uint64_t empty, full;
    for (int i = 0; i < 3; i++) {
        test_index_values(env, "items", nonunique[i], &empty, &full);
        cr_assert(format == 5 ? empty > 0 && full == 0 : empty == 0 && full > 0,
                  "format %u, %s: %llu empty, %llu with a value", format, nonunique[i],
                  (unsigned long long)empty, (unsigned long long)full);
    }
    test_index_values(env, "notes", "by_text", &empty, &full);
    cr_assert(format == 5 ? empty == 3 && full == 0 : empty == 0 && full == 3);
    test_index_values(env, "items", "by_code", &empty, &full);
    cr_assert(empty == 0 && full == 5, "the unique index keeps its values");
}

/* The fixture's rows in every index's order, its long value, a seek on the
 * unique index; @extra: the row inserted by the format-4 test is there. */
static void
check_items(edb_session *s, bool extra)
{
    int64_t ids[16];
    int n = items_order(s, NULL, ids, 16);
    cr_assert_eq(n, extra ? 6 : 5);
    /* ascending collated name ("Pen" = "PEN" at level 2, ties by -score then key), NULL first */
    n = items_order(s, "by_name", ids, 16);
    const int64_t byname[] = { 2, 3, 1, 5, 6 }, byname7[] = { 2, 7, 3, 1, 5, 6 };
    cr_assert_eq(n, extra ? 6 : 5);
    for (int i = 0; i < n; i++)
        cr_assert_eq(ids[i], extra ? byname7[i] : byname[i], "by_name %d", i);
    n = items_order(s, "by_score", ids, 16);
    const int64_t byscore[] = { 6, 3, 1, 5, 2 };         /* descending, NULL last */
    cr_assert_eq(n, extra ? 6 : 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(ids[i], byscore[i], "by_score %d", i);
    n = items_order(s, "by_tag", ids, 16);
    cr_assert_eq(n, extra ? 8 : 7, "one entry per value: x five times, yz twice");
    n = items_order(s, "by_code", ids, 16);
    cr_assert_eq(n, 5, "IGNORE_NULL: the extra row has no code");
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "items"));
    OK(edb_cursor_set_index(c, "by_code"));
    int32_t code = 104;
    OK(edb_key_make(c, &code, 4, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    cr_assert_eq(col64(c, 1), 5);
    OK(edb_cursor_set_index(c, "by_tag"));
    OK(edb_key_make(c, "yz", 2, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    cr_assert_eq(col64(c, 1), 3);
    OK(edb_cursor_set_index(c, NULL));
    int64_t three = 3;
    OK(edb_key_make(c, &three, 8, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    static uint8_t body[33000];
    size_t got = 0;
    OK(edb_column_get(c, 6, body, sizeof body, &got, 0));
    cr_assert_eq(got, sizeof body);
    for (size_t i = 0; i < sizeof body; i++)
        cr_assert_eq(body[i], (uint8_t)(i * 7 + i / 256), "long value byte %zu", i);
    edb_cursor_close(c);
}

/* A format-4 database made by 46d59e3 opens and works read-write as format 4
 * (its new records stay version 1 and its entries keep their values,
 * readable by that library), checks clean, and `dbtool upgrade` rewrites it
 * as format 5 with the same rows and index orders, every record now version
 * 3, the non-unique indexes' entries without a value. */
Test(upgrade, format4_database_works_and_upgrades_to_5)
{
    char p4[600];
    snprintf(p4, sizeof p4, "%s/f4", dir);
    load_dump("format4.dump", p4);
    edb_env *env;
    edb_session *s;
    edb_env_opts o = { .map_size = test_map_size() };
    OK(edb_env_open(&env, p4, &o));
    cr_assert_eq(edb__cat(env)->format, 4);
    OK(edb_session_begin(&s, env));
    check_items(s, false);
    cr_assert_eq(item_version(env, 1), EDB__RECORD_VERSION);
    cr_assert_eq(item_version(env, 3), EDB__RECORD_VERSION_LV);
    /* writes: an insert (AUTOINC goes on from 6), an update */
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "items"));
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 2, "Aardvark", 8, 0));
    OK(edb_update(c));
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    cr_assert_eq(col64(c, 1), 7);
    int64_t six = 6;
    OK(edb_key_make(c, &six, 8, EDB_KEY_NEW));
    OK(edb_cursor_seek(c, EDB_SEEK_EQ));
    OK(edb_update_prepare(c, EDB_PREP_REPLACE));
    OK(edb_column_set(c, 2, "quills", 6, 0));
    OK(edb_update(c));
    edb_cursor_close(c);
    cr_assert_eq(item_version(env, 7), EDB__RECORD_VERSION, "format 4 keeps writing version 1");
    cr_assert_eq(item_version(env, 6), EDB__RECORD_VERSION);
    check_values(env, 4);
    check_plen(env, 4);
    uint64_t problems = 1;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
    edb_session_end(s);
    edb_env_close(env);

    unsigned from = 0;
    OK(edb_env_upgrade(&from, p4));
    cr_assert_eq(from, 4);
    char tmp[700];
    struct stat sb;
    snprintf(tmp, sizeof tmp, "%s.upgrade", p4);
    cr_assert_neq(lstat(tmp, &sb), 0, "the old database is removed");
    OK(edb_env_open(&env, p4, &o));
    cr_assert_eq(edb__cat(env)->format, 5);
    OK(edb_session_begin(&s, env));
    check_items(s, true);
    for (int64_t id = 1; id <= 7; id++)
        if (id != 4)
            cr_assert_eq(item_version(env, id), EDB__RECORD_VERSION_W, "row %lld", (long long)id);
    cr_assert_eq(entries(s, "notes", NULL), 3);
    cr_assert_eq(entries(s, "notes", "by_text"), 3);
    check_values(env, 5);
    check_plen(env, 1);
    OK(edb_cursor_open(&c, s, "items"));
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_update(c));
    OK(edb_cursor_move(c, EDB_MOVE_LAST));
    cr_assert_eq(col64(c, 1), 8, "the AUTOINC counter came along");
    edb_cursor_close(c);
    problems = 1;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
    edb_session_end(s);
    edb_env_close(env);
    OK(edb_env_upgrade(&from, p4));
    cr_assert_eq(from, 5, "nothing left to do");
}

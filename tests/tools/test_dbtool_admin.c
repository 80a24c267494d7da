/* dbtool stat, check, compact, and reads against a database another process
 * is writing to (they never block it).  The writer uses the library directly. */
#include "config.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dbtool_run.h"
#include "edb.h"


/* The forked writers' options: edb's defaults, except the map size under
 * valgrind (EDB_TEST_MAP_MB, set by tests/valgrind.sh: valgrind cannot
 * reserve the default 64 GiB). */
static edb_env_opts child_opts;

__attribute__((constructor)) static void
child_opts_init(void)
{
    const char *mb = getenv("EDB_TEST_MAP_MB");
    if (mb != NULL && atoi(mb) > 0)
        child_opts.map_size = (uint64_t)atoi(mb) << 20;
}

static const char *NUMS_SCHEMA =
    "{\"name\": \"nums\", \"columns\": [{\"name\": \"id\", \"type\": \"int32\"}, {\"name\": \"grp\", \"type\": \"text\"},"
    " {\"name\": \"pad\", \"type\": \"binary\"}],"
    " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]},"
    " {\"name\": \"by_grp\", \"key\": [\"+grp\", \"-id\"]}]}";

/* A database with n rows of table nums in dir/db. */
static char *
nums_db(char *path, size_t cap, int n)
{
    size_t sz = (size_t)n * 200 + 1;
    char *rows = malloc(sz), *p = rows;
    cr_assert_not_null(rows);
    for (int i = 1; i <= n; i++)
        p += sprintf(p, "{\"id\": %d, \"grp\": \"g%d\", \"pad\": \"%s\"}\n", i, i % 7,
                     i % 50 == 0 ? "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=" : "AAAA");
    *p = '\0';
    char *dir = dbt_make_db(path, cap, NUMS_SCHEMA, "nums", rows);
    free(rows);
    return dir;
}

Test(dbtool_admin, stat_reports_trees_and_readers, .timeout = 60)
{
    char path[256];
    char *dir = nums_db(path, sizeof path, 500);
    run_result r = dbt_runv(NULL, "stat", path, "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *want[] = { "\"page_size\": ", "\"map_size\": ", "\"pages_used\": ", "\"readers\": ",
                           "{\"name\": \"nums\", \"rows\": 500, \"records\": {\"entries\": 500",
                           "{\"name\": \"by_grp\", \"tree\": {\"entries\": 500" };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(r.out, want[i]) != NULL, "missing %s in %s", want[i], r.out);
    cr_assert_eq(count_lines(r.out), 1);
    run_free(&r);
    rm_tree(dir);
    free(dir);
}

Test(dbtool_admin, check_clean_then_compact_then_check_clean, .timeout = 120)
{
    char path[256], out[300];
    char *dir = nums_db(path, sizeof path, 3000);
    /* deletions leave free pages for compact to drop */
    for (int i = 10; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        run_result d = dbt_runv(NULL, "delete", path, "nums", k, NULL);
        cr_assert_eq(d.status, 0, "%s", d.err);
        run_free(&d);
    }
    run_result r = dbt_runv(NULL, "check", path, NULL);
    cr_assert_eq(r.status, 0, "check: %s%s", r.out, r.err);
    cr_assert_str_eq(r.err, "");
    run_free(&r);
    snprintf(out, sizeof out, "%s/compacted", dir);
    r = dbt_runv(NULL, "compact", path, out, NULL);
    cr_assert_eq(r.status, 0, "compact: %s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "check", out, NULL);
    cr_assert_eq(r.status, 0, "check after compact: %s%s", r.out, r.err);
    run_free(&r);
    run_result e1 = dbt_runv(NULL, "export", path, "nums", NULL);
    run_result e2 = dbt_runv(NULL, "export", out, "nums", NULL);
    cr_assert_eq(count_lines(e1.out), 2990);
    cr_assert_str_eq(e1.out, e2.out);
    run_free(&e1);
    run_free(&e2);
    r = dbt_runv(NULL, "compact", path, out, NULL);
    cr_assert_eq(r.status, 1, "compact over a database: %s", r.err);
    cr_assert(strstr(r.err, "EDB_EXISTS") != NULL, "%s", r.err);
    run_free(&r);
    rm_tree(dir);
    free(dir);
}

/* Damage pages behind the database's back; check must report it, exit 1, and never die. */
static void
damage_and_check(void (*damage)(int fd, long psize, off_t size), const char *label)
{
    char path[256], file[300];
    char *dir = nums_db(path, sizeof path, 3000);
    snprintf(file, sizeof file, "%s/data.mdb", path);
    int fd = open(file, O_RDWR);
    cr_assert_geq(fd, 0);
    struct stat sb;
    fstat(fd, &sb);
    damage(fd, sysconf(_SC_PAGESIZE), sb.st_size);
    close(fd);
    run_result r = dbt_runv(NULL, "check", path, NULL);
    cr_assert_eq(r.status, 1, "%s: check exit %d\n%s%s", label, r.status, r.out, r.err);
    cr_assert(strstr(r.err, "EDB_CORRUPT") != NULL || strstr(r.err, "EDB_VERSION") != NULL,
              "%s: %s", label, r.err);
    cr_assert(strncmp(r.err, "dbtool: ", 8) == 0, "%s: %s", label, r.err);
    run_free(&r);
    rm_tree(dir);
    free(dir);
}

/* Every page that looks like a B-tree leaf gets an impossible header. */
static void
odd_leaf_headers(int fd, long psize, off_t size)
{
    unsigned char *page = malloc((size_t)psize);
    for (off_t pg = 2; pg * psize < size; pg++) {
        cr_assert_eq(pread(fd, page, (size_t)psize, pg * psize), psize);
        uint16_t flags;
        memcpy(&flags, page + 10, 2);
        if (flags & 0x02) {
            page[12] |= 1;
            cr_assert_eq(pwrite(fd, page, (size_t)psize, pg * psize), psize);
        }
    }
    free(page);
}

/* Bytes flipped at seeded random places past the meta pages. */
static void
flipped_bytes(int fd, long psize, off_t size)
{
    unsigned seed = 12345;
    for (int i = 0; i < 400; i++) {
        seed = seed * 1103515245 + 12345;
        off_t off = 2 * psize + (off_t)(seed >> 4) % (size - 2 * psize);
        unsigned char c;
        cr_assert_eq(pread(fd, &c, 1, off), 1);
        c ^= 0xA5;
        cr_assert_eq(pwrite(fd, &c, 1, off), 1);
    }
}

/* The file loses its second half; reading there would be SIGBUS through a map. */
static void
truncated(int fd, long psize, off_t size)
{
    cr_assert_eq(ftruncate(fd, size / 2 / psize * psize), 0);
}

Test(dbtool_admin, check_reports_damaged_leaf_pages, .timeout = 120)
{
    damage_and_check(odd_leaf_headers, "odd leaf headers");
}

Test(dbtool_admin, check_reports_flipped_bytes_without_crashing, .timeout = 120)
{
    damage_and_check(flipped_bytes, "flipped bytes");
}

Test(dbtool_admin, check_reports_truncated_file_without_crashing, .timeout = 120)
{
    damage_and_check(truncated, "truncated");
}

/* Delete the first entry of the first named LMDB database whose name starts
 * with prefix ("edb.index": the indexes, "edb.records": the records), behind edb's back. */
static void
delete_first_entry(const char *path, const char *prefix)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_dbi main_dbi, dbi;
    MDB_val k, v;
    char name[64] = "";
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 256);
    mdb_env_set_mapsize(env, 1ull << 30); /* 1 GiB, not the 64 GiB the file records: valgrind cannot map that (tests/valgrind.sh) */
    cr_assert_eq(mdb_env_open(env, path, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, NULL, 0, &main_dbi), 0);
    cr_assert_eq(mdb_cursor_open(txn, main_dbi, &cur), 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < sizeof name && strncmp(k.mv_data, prefix, strlen(prefix)) == 0) {
            /* the pool holds empty databases for unused slots: take one with entries */
            char cand[64];
            MDB_stat ms;
            memcpy(cand, k.mv_data, k.mv_size);
            cand[k.mv_size] = '\0';
            cr_assert_eq(mdb_dbi_open(txn, cand, 0, &dbi), 0);
            cr_assert_eq(mdb_stat(txn, dbi, &ms), 0);
            if (ms.ms_entries > 0) {
                strcpy(name, cand);
                break;
            }
        }
    }
    mdb_cursor_close(cur);
    cr_assert_neq(name[0], '\0', "no database named %s*", prefix);
    cr_assert_eq(mdb_dbi_open(txn, name, 0, &dbi), 0);
    cr_assert_eq(mdb_cursor_open(txn, dbi, &cur), 0);
    cr_assert_eq(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
    cr_assert_eq(mdb_cursor_del(cur, 0), 0);
    mdb_cursor_close(cur);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void
logical_damage(const char *prefix, const char *needle)
{
    char path[256];
    char *dir = nums_db(path, sizeof path, 300);
    delete_first_entry(path, prefix);
    run_result r = dbt_runv(NULL, "check", path, NULL);
    cr_assert_eq(r.status, 1, "check exit %d\n%s%s", r.status, r.out, r.err);
    cr_assert(strstr(r.err, "EDB_CORRUPT") != NULL, "%s", r.err);
    cr_assert(strstr(r.out, needle) != NULL, "want '%s' in:\n%s", needle, r.out);
    run_free(&r);
    rm_tree(dir);
    free(dir);
}

Test(dbtool_admin, check_finds_a_record_without_its_index_entry, .timeout = 60)
{
    logical_damage("edb.index", "without their entry");
}

Test(dbtool_admin, check_finds_an_index_entry_without_its_record, .timeout = 60)
{
    logical_damage("edb.records", "entr");
}

/* A child process holds a write transaction open (rows inserted, not
 * committed) while dbtool reads: every read command must finish and see the
 * committed state only; after the child commits, the rows are there. */
Test(dbtool_admin, reads_never_block_a_writer_in_another_process, .timeout = 120)
{
    char path[256];
    char *dir = nums_db(path, sizeof path, 200);
    int up[2], down[2];
    cr_assert_eq(pipe(up), 0);
    cr_assert_eq(pipe(down), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        edb_env *env;
        edb_session *s;
        edb_cursor *c;
        edb_colid id, grp;
        char ok = 'x';
        if (edb_env_open(&env, path, &child_opts) == 0 && edb_session_begin(&s, env) == 0 && edb_txn_begin(s, 0) == 0 &&
            edb_cursor_open(&c, s, "nums") == 0 && edb_column_id(&id, c, "id") == 0 &&
            edb_column_id(&grp, c, "grp") == 0) {
            ok = 'w';
            for (int32_t i = 1000; i < 1100 && ok == 'w'; i++) {
                if (edb_update_prepare(c, EDB_PREP_INSERT) != 0 || edb_column_set(c, id, &i, 4, 0) != 0 ||
                    edb_column_set(c, grp, "new", 3, 0) != 0 || edb_update(c) != 0)
                    ok = 'x';
            }
        }
        if (write(up[1], &ok, 1) != 1)
            _exit(3);
        char go;
        if (read(down[0], &go, 1) != 1)
            _exit(4);
        int rc = ok == 'w' ? edb_txn_commit(s) : -1;
        _exit(rc == 0 ? 0 : 5);
    }
    char ok;
    cr_assert_eq(read(up[0], &ok, 1), 1);
    cr_assert_eq(ok, 'w', "the writer could not write");
    /* The writer holds its transaction now. */
    run_result r = dbt_runv(NULL, "count", path, "nums", NULL);
    cr_assert_str_eq(r.out, "200\n", "%s", r.err);
    run_free(&r);
    const char *reads[][6] = {
        { "scan", path, "nums", "--limit", "5", NULL }, { "export", path, "nums", NULL },
        { "stat", path, NULL }, { "check", path, NULL }, { "tables", path, NULL },
        { "get", path, "nums", "7", NULL }, { "count", path, "nums", "--index", "by_grp", NULL },
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        r = dbt_run(NULL, reads[i]);
        cr_assert_eq(r.status, 0, "%s while a writer holds its txn: %s", reads[i][0], r.err);
        cr_assert(strstr(r.out, "\"new\"") == NULL, "%s saw uncommitted rows", reads[i][0]);
        run_free(&r);
    }
    cr_assert_eq(write(down[1], "g", 1), 1);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer status %d", st);
    r = dbt_runv(NULL, "count", path, "nums", NULL);
    cr_assert_str_eq(r.out, "300\n");
    run_free(&r);
    rm_tree(dir);
    free(dir);
}

/* A child commits as fast as it can while check and export run: each sees
 * one consistent snapshot, so check stays clean. */
Test(dbtool_admin, check_is_clean_while_another_process_commits, .timeout = 120)
{
    char path[256];
    char *dir = nums_db(path, sizeof path, 2000);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        edb_env *env;
        edb_session *s;
        edb_cursor *c;
        edb_colid id, grp;
        if (edb_env_open(&env, path, &child_opts) != 0 || edb_session_begin(&s, env) != 0 ||
            edb_cursor_open(&c, s, "nums") != 0 || edb_column_id(&id, c, "id") != 0 ||
            edb_column_id(&grp, c, "grp") != 0)
            _exit(3);
        for (int32_t i = 100000;; i++) {
            if (edb_txn_begin(s, 0) != 0)
                _exit(4);
            for (int k = 0; k < 20; k++, i++) {
                if (edb_update_prepare(c, EDB_PREP_INSERT) != 0 || edb_column_set(c, id, &i, 4, 0) != 0 ||
                    edb_column_set(c, grp, "busy", 4, 0) != 0 || edb_update(c) != 0)
                    _exit(5);
            }
            if (edb_txn_commit(s) != 0)
                _exit(6);
        }
    }
    for (int round = 0; round < 3; round++) {
        run_result r = dbt_runv(NULL, "check", path, NULL);
        cr_assert_eq(r.status, 0, "check while writing, round %d: %s%s", round, r.out, r.err);
        run_free(&r);
    }
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFSIGNALED(st), "the writer stopped by itself: status %d", st);
    run_result r = dbt_runv(NULL, "check", path, NULL);
    cr_assert_eq(r.status, 0, "check after the writer died: %s%s", r.out, r.err);
    run_free(&r);
    rm_tree(dir);
    free(dir);
}

/* Issue 10, point 9: "count, scan, export, stat, backup all exit 135 on a
 * file cut to half".  Every command that opens the database refuses it: exit
 * 1, one line naming EDB_CORRUPT, the file and its sizes; never a signal. */
Test(dbtool_admin, every_command_refuses_a_file_cut_to_half, .timeout = 120)
{
    char path[256], file[300], arch[300], out[300], schema[300];
    char *dir = nums_db(path, sizeof path, 3000);
    snprintf(file, sizeof file, "%s/data.mdb", path);
    snprintf(arch, sizeof arch, "%s/b.edbk", dir);
    snprintf(out, sizeof out, "%s/compacted", dir);
    snprintf(schema, sizeof schema, "%s/s.json", dir);
    write_file(schema, "{\"name\": \"u\", \"columns\": [{\"name\": \"id\", \"type\": \"int32\"}],"
                       " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]}]}");
    struct stat sb;
    cr_assert_eq(stat(file, &sb), 0);
    long ps = sysconf(_SC_PAGESIZE);
    off_t half = sb.st_size / 2 / ps * ps;
    cr_assert_eq(truncate(file, half), 0);
    char size[64];
    snprintf(size, sizeof size, "data.mdb has %lld bytes", (long long)half);
    const char *const cmds[][8] = {
        { "count", path, "nums", NULL },
        { "count", path, "nums", "--from", "5", "--to", "9", NULL },
        { "scan", path, "nums", NULL },
        { "scan", path, "nums", "--index", "by_grp", "--reverse", NULL },
        { "export", path, "nums", NULL },
        { "export", path, "nums", "--format", "csv", NULL },
        { "get", path, "nums", "7", NULL },
        { "delete", path, "nums", "7", NULL },
        { "import", path, "nums", "-", NULL },
        { "tables", path, NULL },
        { "schema", path, "nums", NULL },
        { "create-table", path, schema, NULL },
        { "stat", path, NULL },
        { "check", path, NULL },
        { "compact", path, out, NULL },
        { "backup", path, arch, "--quiet", NULL },
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        run_result r = dbt_run("{\"id\": 5000}\n", cmds[i]);
        cr_assert_eq(r.status, 1, "%s: exit %d\n%s", cmds[i][0], r.status, r.err);
        cr_assert(strncmp(r.err, "dbtool: ", 8) == 0 && strstr(r.err, "EDB_CORRUPT") != NULL &&
                  strstr(r.err, size) != NULL && strstr(r.err, "claims") != NULL,
                  "%s: %s", cmds[i][0], r.err);
        cr_assert_eq(count_lines(r.err), 1, "%s: %s", cmds[i][0], r.err);
        run_free(&r);
    }
    struct stat ab;
    cr_assert(stat(arch, &ab) != 0, "backup left an archive");
    rm_tree(dir);
    free(dir);
}

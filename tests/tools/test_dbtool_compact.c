/* dbtool compact DB (no OUT_DIR): the database rewritten in place with full
 * pages (edb_env_pack): the same rows, fewer pages, refused while another
 * process has it open, clear errors for a bad path; the usage with OUT_DIR
 * (a copy) is unchanged (test_dbtool_admin.c). */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dbtool_run.h"
#include "edb.h"

static const char *SCHEMA =
    "{\"name\": \"t\", \"columns\": [{\"name\": \"id\", \"type\": \"int32\"}, {\"name\": \"name\", \"type\": \"text\"}],"
    " \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]},"
    " {\"name\": \"by_name\", \"key\": [\"+name\"]}]}";

/* n rows in a random order of ids */
static char *
random_db(char *path, size_t cap, unsigned n)
{
    char *rows = malloc((size_t)n * 64 + 1), *p = rows;
    cr_assert_not_null(rows);
    for (unsigned i = 0; i < n; i++) {
        unsigned id = (unsigned)(((uint64_t)i * 2654435761u) % 1000003u);
        p += sprintf(p, "{\"id\": %u, \"name\": \"n%08x\"}\n", id, id * 40503u);
    }
    *p = '\0';
    char *dir = dbt_make_db(path, cap, SCHEMA, "t", rows);
    free(rows);
    return dir;
}

static unsigned long long
field(const char *s, const char *after)
{
    const char *p = strstr(s, after);
    cr_assert_not_null(p, "'%s' in '%s'", after, s);
    return strtoull(p + strlen(after), NULL, 10);
}

Test(dbtool_compact, in_place_same_rows_fewer_pages, .timeout = 120)
{
    char path[512];
    char *dir = random_db(path, sizeof path, 6000);
    run_result e1 = dbt_runv(NULL, "export", path, "t", NULL);
    cr_assert_eq(e1.status, 0, "%s", e1.err);
    run_result r = dbt_runv(NULL, "compact", path, NULL);
    cr_assert_eq(r.status, 0, "compact: %s", r.err);
    /* "compacted 'DB': P pages, B bytes -> P2 pages, B2 bytes" */
    unsigned long long p1 = field(r.out, "': "), p2 = field(r.out, "-> ");
    cr_assert_lt(p2, p1, "%s", r.out);
    run_free(&r);
    run_result e2 = dbt_runv(NULL, "export", path, "t", NULL);
    cr_assert_str_eq(e1.out, e2.out);
    run_free(&e1);
    run_free(&e2);
    r = dbt_runv(NULL, "check", path, NULL);
    cr_assert_eq(r.status, 0, "check: %s%s", r.out, r.err);
    run_free(&r);
    char tmp[600];
    struct stat sb;
    snprintf(tmp, sizeof tmp, "%s.compact", path);
    cr_assert_neq(lstat(tmp, &sb), 0);
    rm_tree(dir);
    free(dir);
}

Test(dbtool_compact, refused_while_open_and_bad_paths, .timeout = 120)
{
    char path[512];
    char *dir = random_db(path, sizeof path, 500);
    int ready[2], go[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(go), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        edb_env_opts o = { 0 };
        const char *mb = getenv("EDB_TEST_MAP_MB");
        if (mb != NULL && atoi(mb) > 0)
            o.map_size = (uint64_t)atoi(mb) << 20;
        edb_env *env = NULL;
        int rc = edb_env_open(&env, path, &o);
        char ch = rc == 0 ? 'r' : 'x';
        if (write(ready[1], &ch, 1) != 1 || read(go[0], &ch, 1) != 1)
            _exit(3);
        edb_env_close(env);
        _exit(rc == 0 ? 0 : 2);
    }
    char ch = 0;
    cr_assert_eq(read(ready[0], &ch, 1), 1);
    cr_assert_eq(ch, 'r');
    run_result r = dbt_runv(NULL, "compact", path, NULL);
    cr_assert_eq(r.status, 1, "%s", r.out);
    char want[64];
    snprintf(want, sizeof want, "open in process %ld", (long)pid);
    cr_assert(strstr(r.err, "EDB_BUSY") != NULL && strstr(r.err, want) != NULL, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "upgrade", path, NULL);
    cr_assert_eq(r.status, 1, "%s", r.out);
    cr_assert(strstr(r.err, "EDB_BUSY") != NULL && strstr(r.err, want) != NULL, "%s", r.err);
    run_free(&r);
    cr_assert_eq(write(go[1], "g", 1), 1);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    r = dbt_runv(NULL, "compact", path, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    char none[600];
    snprintf(none, sizeof none, "%s/none", dir);
    r = dbt_runv(NULL, "compact", none, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "EDB_NOTFOUND") != NULL, "%s", r.err);
    run_free(&r);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
    rm_tree(dir);
    free(dir);
}

/* test_lazyicu.c: ICU is loaded on the first use of a collation, not when
 * libedb is (engine/collate.c, issue 12): which shared objects this process
 * has mapped (/proc/self/maps) before and after a collated index is used, the
 * collated order once it is, and what every collated operation says when ICU
 * cannot be loaded (this binary's own dlopen, below, refuses ICU's sonames
 * when told to; plain tables keep working). */
#include "config.h"

#include <dlfcn.h>
#include <sys/wait.h>

#include "helpers.h"

static char *dir;

static void
setup(void)
{
    dir = make_tmpdir();
}

static void
teardown(void)
{
    rm_tree(dir);
    free(dir);
    LEAK_CHECK();
}

TestSuite(lazyicu, .init = setup, .fini = teardown, .timeout = 60);

/* ---- a dlopen that can refuse ICU ---- */

/* When set, dlopen of a file whose name starts with "libicu" fails with the
 * loader's own message for a file that does not exist, as on a system
 * without ICU's libraries.  This definition takes the place of libc's for
 * this binary (which links the engine statically); every other call goes to
 * the next dlopen (libc's, or a sanitizer's). */
static bool hide_icu;

void *
dlopen(const char *file, int mode)
{
    void *(*next)(const char *, int);
    *(void **)&next = dlsym(RTLD_NEXT, "dlopen");
    if (hide_icu && file != NULL && strncmp(file, "libicu", 6) == 0) {
        char gone[300];
        snprintf(gone, sizeof gone, "/nonexistent-edb-test/%s", file);
        return next(gone, mode);
    }
    return next(file, mode);
}

/* ---- helpers ---- */

/* Does this process map a file whose path holds @what? */
static bool
mapped(const char *what)
{
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f, "/proc/self/maps");
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, what) != NULL;
    fclose(f);
    return found;
}

/* Table @name: id int32 primary, name TEXT under collation @coll (NULL:
 * binary) with index "by_name" on it. */
static void
make_table(edb_session *s, const char *name, const char *coll)
{
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "name", .type = EDB_COL_TEXT, .collation = coll },
    };
    edb_index_def idx[] = {
        { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY },
        { .name = "by_name", .key = "+name\0" },
    };
    edb_table_def t = { .name = name, .columns = cols, .ncolumns = 2, .indexes = idx, .nindexes = 2 };
    OK(edb_table_create(s, &t));
}

static int
insert(edb_cursor *c, int32_t id, const char *name)
{
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, sizeof id, 0));
    OK(edb_column_set(c, 2, name, strlen(name), 0));
    int rc = edb_update(c);
    if (rc < 0)
        edb_update_cancel(c);
    return rc;
}

/* Insert @n names ("name-<i>", and "B", "a", "C", "b" first) into @table. */
static void
fill(edb_session *s, const char *table, unsigned n)
{
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, table));
    const char *first[] = { "B", "a", "C", "b" };
    for (unsigned i = 0; i < 4; i++)
        OK(insert(c, (int32_t)i, first[i]));
    for (unsigned i = 4; i < n; i++) {
        char v[32];
        snprintf(v, sizeof v, "name-%06u", i);
        OK(insert(c, (int32_t)i, v));
    }
    edb_cursor_close(c);
}

/* The id of the first record of index by_name whose name equals @name (as the
 * index compares), or -1. */
static int32_t
seek_name(edb_session *s, const char *table, const char *name)
{
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, table));
    OK(edb_cursor_set_index(c, "by_name"));
    OK(edb_key_make(c, name, strlen(name), EDB_KEY_NEW));
    int32_t id = -1;
    int rc = edb_cursor_seek(c, EDB_SEEK_EQ);
    if (rc == 0) {
        size_t n = 0;
        OK(edb_column_get(c, 1, &id, sizeof id, &n, 0));
    } else {
        RC(rc, EDB_NOTFOUND);
    }
    edb_cursor_close(c);
    return id;
}

/* The first four names in by_name's order, joined by ','. */
static void
first_four(edb_session *s, const char *table, char *out, size_t cap)
{
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, table));
    OK(edb_cursor_set_index(c, "by_name"));
    size_t o = 0;
    out[0] = '\0';
    int rc = edb_cursor_move(c, EDB_MOVE_FIRST);
    for (int i = 0; i < 4 && rc == 0; i++, rc = edb_cursor_move(c, EDB_MOVE_NEXT)) {
        char v[64];
        size_t n = 0;
        OK(edb_column_get(c, 2, v, sizeof v - 1, &n, 0));
        v[n] = '\0';
        o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? "," : "", v);
    }
    edb_cursor_close(c);
}

/* ---- the tests ---- */

Test(lazyicu, plain_tables_never_map_icu_a_collated_index_does)
{
    cr_assert(!mapped("libicu"), "ICU is mapped before libedb was used");
    edb_env *env = open_env(dir, 0);
    edb_session *s;
    OK(edb_session_begin(&s, env));
    unsigned n = test_scaled_min(400, 8);
    make_table(s, "plain", NULL);
    make_table(s, "plain2", "binary");
    fill(s, "plain", n);
    fill(s, "plain2", n);
    char got[128];
    first_four(s, "plain", got, sizeof got);
    cr_assert_str_eq(got, "B,C,a,b");
    cr_assert_eq(seek_name(s, "plain", "b"), 3);
    cr_assert_eq(seek_name(s, "plain2", "A"), -1);
    uint64_t problems = 1;
    OK(edb_env_check(&problems, env, NULL, NULL, NULL));
    cr_assert_eq(problems, 0);
    cr_assert(!mapped("libicu"), "ICU was mapped by binary-collated tables alone");

    /* the first collated column loads it, and the collation holds */
    make_table(s, "coll", "en-u-ks-level2");
    cr_assert(mapped("libicui18n"), "a collated table was made without ICU mapped");
    cr_assert(mapped("libicuuc"));
    fill(s, "coll", n);
    first_four(s, "coll", got, sizeof got);
    cr_assert_str_eq(got, "a,B,b,C");
    cr_assert_eq(seek_name(s, "coll", "c"), 2);
    cr_assert_eq(seek_name(s, "coll", "A"), 1);
    /* plain keys are unchanged by it */
    first_four(s, "plain", got, sizeof got);
    cr_assert_str_eq(got, "B,C,a,b");
    edb_session_end(s);
    edb_env_close(env);

    /* a second env in the same process uses the loaded ICU */
    env = open_env(dir, 0);
    OK(edb_session_begin(&s, env));
    cr_assert_eq(seek_name(s, "coll", "b"), 0);
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "coll"));
    OK(insert(c, (int32_t)n, "c"));
    edb_cursor_close(c);
    first_four(s, "coll", got, sizeof got);
    cr_assert_str_eq(got, "a,B,b,C");
    edb_session_end(s);
    edb_env_close(env);
}

/* What an env made elsewhere with a collated table gives this process when
 * ICU cannot be loaded: every collated operation fails with EDB_INVAL naming
 * the library and the loader's message; plain tables, and reading the
 * collated table by its primary key, work; nothing is mapped. */
Test(lazyicu, without_icu_collated_operations_fail_and_name_the_library)
{
    unsigned n = test_scaled_min(200, 8);
    /* the database, with ICU, in another process */
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        edb_env *env = open_env(dir, 0);
        edb_session *s;
        if (edb_session_begin(&s, env) != 0)
            _exit(1);
        make_table(s, "coll", "en-u-ks-level2");
        make_table(s, "plain", NULL);
        fill(s, "coll", n);
        edb_session_end(s);
        edb_env_close(env);
        _exit(0);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child making the database failed");

    hide_icu = true;
    edb_env *env = open_env(dir, 0);
    edb_session *s;
    OK(edb_session_begin(&s, env));

    /* a new collated column is refused, naming the library */
    edb_column_def cols[] = {
        { .name = "id", .type = EDB_COL_INT32, .flags = EDB_COL_NOTNULL },
        { .name = "name", .type = EDB_COL_TEXT, .collation = "de-u-ks-level1" },
    };
    edb_index_def idx[] = { { .name = "pk", .key = "+id\0", .flags = EDB_IDX_PRIMARY } };
    edb_table_def t = { .name = "new", .columns = cols, .ncolumns = 2, .indexes = idx, .nindexes = 1 };
    RC(edb_table_create(s, &t), EDB_INVAL);
    const char *m = edb_error_last();
    cr_assert(strstr(m, "libicu") != NULL && strstr(m, "could not be loaded") != NULL &&
              strstr(m, "/nonexistent-edb-test/") != NULL, "%s", m);

    /* the existing collated index: inserts and seeks fail, clearly */
    edb_cursor *c;
    OK(edb_cursor_open(&c, s, "coll"));
    int32_t id = (int32_t)n;
    OK(edb_update_prepare(c, EDB_PREP_INSERT));
    OK(edb_column_set(c, 1, &id, sizeof id, 0));
    OK(edb_column_set(c, 2, "x", 1, 0));
    RC(edb_update(c), EDB_INVAL);
    m = edb_error_last();
    cr_assert(strstr(m, "by_name") != NULL && strstr(m, "libicu") != NULL &&
              strstr(m, "could not be loaded") != NULL, "%s", m);
    edb_update_cancel(c);
    OK(edb_cursor_set_index(c, "by_name"));
    RC(edb_key_make(c, "a", 1, EDB_KEY_NEW), EDB_INVAL);
    m = edb_error_last();
    cr_assert(strstr(m, "libicu") != NULL && strstr(m, "could not be loaded") != NULL, "%s", m);
    /* its records are still there, by the primary key */
    OK(edb_cursor_set_index(c, "pk"));
    unsigned count = 0;
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT))
        count++;
    cr_assert_eq(count, n);
    /* deleting one needs its collated entry: refused, nothing lost */
    OK(edb_cursor_move(c, EDB_MOVE_FIRST));
    RC(edb_record_delete(c), EDB_INVAL);
    m = edb_error_last();
    cr_assert(strstr(m, "could not be loaded") != NULL, "%s", m);
    count = 0;
    for (int rc = edb_cursor_move(c, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(c, EDB_MOVE_NEXT))
        count++;
    cr_assert_eq(count, n);
    edb_cursor_close(c);

    /* plain tables are unaffected */
    fill(s, "plain", n);
    char got[128];
    first_four(s, "plain", got, sizeof got);
    cr_assert_str_eq(got, "B,C,a,b");
    cr_assert_eq(seek_name(s, "plain", "C"), 2);
    cr_assert(!mapped("libicu"), "ICU is mapped although its dlopen failed");
    edb_session_end(s);
    edb_env_close(env);
}

/* The archive lifecycle commands of dbtool, driven as an operator would:
 * info (what an archive is), verify of several chains at once, --json on
 * backup, verify and restore, backup --overwrite, manifests as incremental
 * bases.  The built binary is spawned; its output, exit status and the files
 * it leaves are checked. */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbtool_run.h"

static const char *SCHEMA =
    "{\"name\": \"t\", \"columns\": [{\"name\": \"id\", \"type\": \"int64\", \"flags\": [\"autoinc\"]},"
    "{\"name\": \"v\", \"type\": \"text\"}],"
    "\"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]}]}";

struct fx {
    char *dir;
    char db[300];
    char p[8][400];   /* paths in dir */
};

static void
expect_ok(run_result *r, const char *what)
{
    cr_assert_eq(r->status, 0, "%s: exit %d: %s%s", what, r->status, r->err, r->out);
}

static char *
rows_json(unsigned first, unsigned rows)
{
    char *in = malloc((size_t)rows * 120 + 1), *q = in;
    cr_assert_not_null(in);
    for (unsigned i = first; i < first + rows; i++)
        q += sprintf(q, "{\"v\": \"row %u %080u\"}\n", i, i * 7919u);
    *q = '\0';
    return in;
}

static void
fx_init(struct fx *f, unsigned rows)
{
    char *in = rows_json(0, rows);
    f->dir = dbt_make_db(f->db, sizeof f->db, SCHEMA, "t", in);
    free(in);
}

static const char *
fx_path(struct fx *f, int i, const char *name)
{
    snprintf(f->p[i], sizeof f->p[i], "%s/%s", f->dir, name);
    return f->p[i];
}

static void
fx_fini(struct fx *f)
{
    rm_tree(f->dir);
    free(f->dir);
}

/* Add @rows rows to the database (a change for the next incremental). */
static void
add_rows(struct fx *f, unsigned first, unsigned rows)
{
    char *in = rows_json(first, rows);
    char rp[400];
    snprintf(rp, sizeof rp, "%s/rows.jsonl", f->dir);
    write_file(rp, in);
    free(in);
    run_result r = dbt_runv(NULL, "import", f->db, "t", rp, NULL);
    expect_ok(&r, "import");
    run_free(&r);
}

static void
backup(struct fx *f, const char *out, const char *base)
{
    run_result r = base ? dbt_runv(NULL, "backup", f->db, out, "--quiet", "--incremental", base, NULL)
                        : dbt_runv(NULL, "backup", f->db, out, "--quiet", NULL);
    expect_ok(&r, "backup");
    run_free(&r);
}

/* The value of string member @key in a one-line JSON object (into out). */
static bool
member(char *out, size_t cap, const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (p == NULL)
        return false;
    p += strlen(pat);
    const char *e = p;
    if (*p == '"') {
        p++;
        e = strchr(p, '"');
    } else {
        while (*e && *e != ',' && *e != '}')
            e++;
    }
    if (e == NULL || (size_t)(e - p) >= cap)
        return false;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return true;
}

/* Line @n (0-based) of @s into out. */
static void
line_n(char *out, size_t cap, const char *s, int n)
{
    for (int i = 0; i < n && s; i++) {
        s = strchr(s, '\n');
        if (s)
            s++;
    }
    cr_assert(s != NULL && *s, "no line %d", n);
    const char *e = strchr(s, '\n');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    cr_assert_lt(len, cap);
    memcpy(out, s, len);
    out[len] = '\0';
}

static void
copy_prefix(const char *from, const char *to, off_t len)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(in >= 0 && out >= 0);
    char buf[65536];
    while (len > 0) {
        ssize_t n = read(in, buf, len < (off_t)sizeof buf ? (size_t)len : sizeof buf);
        cr_assert_gt(n, 0);
        cr_assert_eq(write(out, buf, (size_t)n), n);
        len -= n;
    }
    close(in);
    close(out);
}

static off_t
file_size(const char *p)
{
    struct stat st;
    cr_assert_eq(stat(p, &st), 0, "%s", p);
    return st.st_size;
}

/* ---- info ---- */

Test(lifecycle, info_full_and_incremental, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 300);
    const char *full = fx_path(&f, 0, "full.edbk"), *incr = fx_path(&f, 1, "incr.edbk");
    backup(&f, full, NULL);
    add_rows(&f, 1000, 50);
    backup(&f, incr, full);

    run_result r = dbt_runv(NULL, "info", full, incr, "--json", NULL);
    expect_ok(&r, "info");
    cr_assert_eq(count_lines(r.out), 2, "%s", r.out);
    char l0[2048], l1[2048], v[128], id0[64], txn0[32];
    line_n(l0, sizeof l0, r.out, 0);
    line_n(l1, sizeof l1, r.out, 1);
    /* Every member of the contract, in both lines. */
    const char *keys[] = { "id", "base_id", "kind", "txn", "created", "page_size", "npages", "pages",
                           "bytes", "complete", "compression" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        cr_assert(member(v, sizeof v, l0, keys[i]), "%s missing: %s", keys[i], l0);
        cr_assert(member(v, sizeof v, l1, keys[i]), "%s missing: %s", keys[i], l1);
    }
    cr_assert(member(id0, sizeof id0, l0, "id"));
    cr_assert_eq(strlen(id0), 32);
    cr_assert(member(v, sizeof v, l0, "base_id") && strcmp(v, "null") == 0, "%s", l0);
    cr_assert(member(v, sizeof v, l0, "kind") && strcmp(v, "full") == 0, "%s", l0);
    cr_assert(member(v, sizeof v, l0, "complete") && strcmp(v, "true") == 0, "%s", l0);
    cr_assert(member(v, sizeof v, l0, "bytes") && strtoull(v, NULL, 10) == (uint64_t)file_size(full));
    cr_assert(member(v, sizeof v, l0, "created") && strlen(v) >= 20 && v[10] == 'T' &&
              v[strlen(v) - 1] == 'Z', "%s", l0);
    cr_assert(member(txn0, sizeof txn0, l0, "txn"));
    /* The incremental names the full one as its base and has a later snapshot. */
    cr_assert(member(v, sizeof v, l1, "base_id") && strcmp(v, id0) == 0, "%s / %s", l1, id0);
    cr_assert(member(v, sizeof v, l1, "kind") && strcmp(v, "incremental") == 0, "%s", l1);
    cr_assert(member(v, sizeof v, l1, "txn") && strtoull(v, NULL, 10) > strtoull(txn0, NULL, 10));
    cr_assert(member(v, sizeof v, l1, "pages") && strtoull(v, NULL, 10) > 0);
    run_free(&r);
    fx_fini(&f);
}

Test(lifecycle, info_interrupted_archive_is_not_complete, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 300);
    const char *full = fx_path(&f, 0, "full.edbk"), *cut = fx_path(&f, 1, "cut.edbk"),
               *noend = fx_path(&f, 2, "noend.edbk");
    backup(&f, full, NULL);
    off_t sz = file_size(full);
    copy_prefix(full, cut, sz / 3);
    copy_prefix(full, noend, sz - 4096);
    run_result r = dbt_runv(NULL, "info", cut, noend, full, "--json", NULL);
    expect_ok(&r, "info of interrupted archives");
    char l[2048], v[256];
    for (int i = 0; i < 2; i++) {
        line_n(l, sizeof l, r.out, i);
        cr_assert(member(v, sizeof v, l, "complete") && strcmp(v, "false") == 0, "%s", l);
        cr_assert(member(v, sizeof v, l, "problem") && strstr(v, "interrupted") != NULL, "%s", l);
    }
    line_n(l, sizeof l, r.out, 1);
    cr_assert(member(v, sizeof v, l, "bytes") && strtoull(v, NULL, 10) == (uint64_t)(sz - 4096));
    line_n(l, sizeof l, r.out, 2);
    cr_assert(member(v, sizeof v, l, "complete") && strcmp(v, "true") == 0, "%s", l);
    run_free(&r);

    /* A flipped bit in the trailer's area: still described, not complete. */
    char bad[400];
    snprintf(bad, sizeof bad, "%s/bad.edbk", f.dir);
    copy_prefix(full, bad, sz);
    int fd = open(bad, O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, sz - 4096 - 8), 1);
    b ^= 1;
    cr_assert_eq(pwrite(fd, &b, 1, sz - 4096 - 8), 1);
    close(fd);
    r = dbt_runv(NULL, "info", bad, "--json", NULL);
    expect_ok(&r, "info of a damaged archive");
    cr_assert(member(v, sizeof v, r.out, "complete") && strcmp(v, "false") == 0, "%s", r.out);
    run_free(&r);
    fx_fini(&f);
}

Test(lifecycle, info_refuses_what_is_not_an_archive, .timeout = 30)
{
    struct fx f;
    fx_init(&f, 10);
    const char *full = fx_path(&f, 0, "full.edbk"), *junk = fx_path(&f, 1, "junk.txt");
    backup(&f, full, NULL);
    write_file(junk, "not an archive\n");
    run_result r = dbt_runv(NULL, "info", junk, full, "--json", NULL);
    cr_assert_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_assert(strstr(r.err, "EDB_CORRUPT") != NULL && strstr(r.err, "junk.txt") != NULL, "%s", r.err);
    cr_assert_eq(count_lines(r.out), 1, "the archive is still described: %s", r.out);
    run_free(&r);
    r = dbt_runv(NULL, "info", fx_path(&f, 2, "missing.edbk"), NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "EDB_NOTFOUND") != NULL, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "info", NULL);
    cr_assert_eq(r.status, 2);
    run_free(&r);
    fx_fini(&f);
}

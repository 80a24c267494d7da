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

static const char *const SCHEMA = DBT_SCHEMA_ID_TEXT;

struct fx {
    char *dir;
    char db[300];
    char p[8][400];   /* paths in dir */
};


static void
fx_init(struct fx *f, unsigned rows)
{
    char *in = dbt_rows_json(0, rows, 80);
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
    char *in = dbt_rows_json(first, rows, 80);
    char rp[400];
    snprintf(rp, sizeof rp, "%s/rows.jsonl", f->dir);
    write_file(rp, in);
    free(in);
    run_result r = dbt_runv(NULL, "import", f->db, "t", rp, NULL);
    dbt_expect_ok(&r, "import");
    run_free(&r);
}

static void
backup(struct fx *f, const char *out, const char *base)
{
    run_result r = base ? dbt_runv(NULL, "backup", f->db, out, "--quiet", "--incremental", base, NULL)
                        : dbt_runv(NULL, "backup", f->db, out, "--quiet", NULL);
    dbt_expect_ok(&r, "backup");
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
    dbt_expect_ok(&r, "info");
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
    dbt_expect_ok(&r, "info of interrupted archives");
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
    dbt_expect_ok(&r, "info of a damaged archive");
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

/* ---- verify: chains grouped by ids ---- */

Test(lifecycle, verify_groups_chains_in_any_order, .timeout = 90)
{
    struct fx f;
    fx_init(&f, 300);
    const char *a = fx_path(&f, 0, "a-full.edbk"), *a1 = fx_path(&f, 1, "a-incr1.edbk"),
               *a2 = fx_path(&f, 2, "a-incr2.edbk"), *b = fx_path(&f, 3, "b-full.edbk");
    backup(&f, a, NULL);
    add_rows(&f, 1000, 40);
    backup(&f, a1, a);
    add_rows(&f, 2000, 40);
    backup(&f, a2, a1);
    backup(&f, b, NULL);
    /* Two independent full archives: two chains (they failed as one before). */
    run_result r = dbt_runv(NULL, "verify", a, b, NULL);
    dbt_expect_ok(&r, "verify two full archives");
    cr_assert(strstr(r.out, "chain 2 of 2") != NULL, "%s", r.out);
    run_free(&r);
    /* A chain given backwards, mixed with another chain. */
    r = dbt_runv(NULL, "verify", a2, b, a1, a, NULL);
    dbt_expect_ok(&r, "verify two chains in any order");
    cr_assert(strstr(r.out, "ok: 3 archives") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "ok: 1 archive") != NULL, "%s", r.out);
    cr_assert_eq(count_lines(r.out) >= 6, 1, "%s", r.out);
    run_free(&r);
    /* JSON: one object per archive, in chain order, with its chain. */
    r = dbt_runv(NULL, "verify", a2, b, a1, a, "--json", NULL);
    dbt_expect_ok(&r, "verify --json");
    cr_assert_eq(count_lines(r.out), 4, "%s", r.out);
    char l[2048], v[512];
    const char *order[] = { "a-full.edbk", "a-incr1.edbk", "a-incr2.edbk", "b-full.edbk" };
    for (int i = 0; i < 4; i++) {
        line_n(l, sizeof l, r.out, i);
        cr_assert(member(v, sizeof v, l, "file") && strstr(v, order[i]) != NULL, "%d: %s", i, l);
        cr_assert(member(v, sizeof v, l, "verified") && strcmp(v, "true") == 0, "%s", l);
        cr_assert(member(v, sizeof v, l, "chain") && atoi(v) == (i < 3 ? 1 : 2), "%s", l);
    }
    run_free(&r);
    /* A damaged incremental fails its chain only; the other chain is still ok. */
    char bad[400];
    snprintf(bad, sizeof bad, "%s/a-incr1-bad.edbk", f.dir);
    copy_prefix(a1, bad, file_size(a1));
    int fd = open(bad, O_RDWR);
    uint8_t byte;
    cr_assert_eq(pread(fd, &byte, 1, 4096 + 4096 + 100), 1);
    byte ^= 0x40;
    cr_assert_eq(pwrite(fd, &byte, 1, 4096 + 4096 + 100), 1);
    close(fd);
    r = dbt_runv(NULL, "verify", a, bad, b, "--json", NULL);
    cr_assert_eq(r.status, 1, "%s", r.out);
    line_n(l, sizeof l, r.out, 1);
    cr_assert(member(v, sizeof v, l, "verified") && strcmp(v, "false") == 0, "%s", l);
    cr_assert(member(v, sizeof v, l, "error") && strstr(v, "EDB_CHECKSUM") != NULL, "%s", l);
    line_n(l, sizeof l, r.out, 2);
    cr_assert(member(v, sizeof v, l, "file") && strstr(v, "b-full") != NULL, "%s", l);
    cr_assert(member(v, sizeof v, l, "verified") && strcmp(v, "true") == 0, "%s", l);
    run_free(&r);
    /* The same archive twice is still refused. */
    r = dbt_runv(NULL, "verify", a, b, a, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "EDB_CHAIN") != NULL && strstr(r.err, "repeats") != NULL, "%s", r.err);
    run_free(&r);
    fx_fini(&f);
}

/* ---- backup --overwrite, --json; restore --json ---- */

static void
id_of(char out[64], const char *archive)
{
    run_result r = dbt_runv(NULL, "info", archive, "--json", NULL);
    dbt_expect_ok(&r, "info");
    cr_assert(member(out, 64, r.out, "id"), "%s", r.out);
    run_free(&r);
}

Test(lifecycle, backup_overwrite_replaces_atomically, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 300);
    const char *arch = fx_path(&f, 0, "nightly.edbk");
    backup(&f, arch, NULL);
    char id1[64], id2[64];
    id_of(id1, arch);
    /* Without the option: refused, and the message names it. */
    run_result r = dbt_runv(NULL, "backup", f.db, arch, "--quiet", NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "EDB_EXISTS") != NULL && strstr(r.err, "--overwrite") != NULL, "%s", r.err);
    run_free(&r);
    /* A backup with --overwrite that fails leaves the old archive as it was. */
    r = dbt_runv(NULL, "backup", f.db, arch, "--quiet", "--overwrite", "--incremental",
                 fx_path(&f, 1, "no-such-base.edbk"), NULL);
    cr_assert_eq(r.status, 1);
    run_free(&r);
    id_of(id2, arch);
    cr_assert_str_eq(id1, id2);
    /* The second night: replaced by a new complete archive, no temporary left. */
    add_rows(&f, 1000, 10);
    r = dbt_runv(NULL, "backup", f.db, arch, "--quiet", "--overwrite", "--json", NULL);
    dbt_expect_ok(&r, "backup --overwrite");
    char v[512];
    cr_assert(member(v, sizeof v, r.out, "file") && strstr(v, "nightly.edbk") != NULL, "%s", r.out);
    cr_assert(member(v, sizeof v, r.out, "complete") && strcmp(v, "true") == 0, "%s", r.out);
    cr_assert(member(v, sizeof v, r.out, "kind") && strcmp(v, "full") == 0, "%s", r.out);
    cr_assert(member(id2, 64, r.out, "id"));
    cr_assert_str_neq(id1, id2);
    run_free(&r);
    char now[64];
    id_of(now, arch);
    cr_assert_str_eq(now, id2);
    DIR *d = opendir(f.dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        cr_assert_null(strstr(de->d_name, ".tmp."), "left behind: %s", de->d_name);
    closedir(d);
    r = dbt_runv(NULL, "verify", arch, NULL);
    dbt_expect_ok(&r, "verify the replaced archive");
    run_free(&r);
    /* restore --json says what was restored. */
    const char *target = fx_path(&f, 2, "restored");
    r = dbt_runv(NULL, "restore", target, arch, "--json", NULL);
    dbt_expect_ok(&r, "restore --json");
    cr_assert(member(v, sizeof v, r.out, "database") && strstr(v, "restored") != NULL, "%s", r.out);
    cr_assert(member(v, sizeof v, r.out, "id") && strcmp(v, id2) == 0, "%s", r.out);
    cr_assert(member(v, sizeof v, r.out, "archives") && strcmp(v, "1") == 0, "%s", r.out);
    run_free(&r);
    /* --json cannot share standard output with the archive. */
    r = dbt_runv(NULL, "backup", f.db, "-", "--json", NULL);
    cr_assert_eq(r.status, 2);
    run_free(&r);
    fx_fini(&f);
}

/* ---- manifests ---- */

Test(lifecycle, manifest_is_a_base_for_incrementals, .timeout = 90)
{
    struct fx f;
    fx_init(&f, 400);
    const char *full = fx_path(&f, 0, "full.edbk"), *man = fx_path(&f, 1, "full.man"),
               *i_arch = fx_path(&f, 2, "incr-a.edbk"), *i_man = fx_path(&f, 3, "incr-m.edbk"),
               *man2 = fx_path(&f, 4, "incr-m.man");
    run_result r = dbt_runv(NULL, "backup", f.db, full, "--quiet", "--manifest", man, NULL);
    dbt_expect_ok(&r, "backup --manifest");
    run_free(&r);
    cr_assert_lt(file_size(man) * 4, file_size(full), "a manifest is small");
    /* info reads it: the archive's identity. */
    r = dbt_runv(NULL, "info", man, full, "--json", NULL);
    dbt_expect_ok(&r, "info manifest");
    char l0[2048], l1[2048], v0[128], v1[128];
    line_n(l0, sizeof l0, r.out, 0);
    line_n(l1, sizeof l1, r.out, 1);
    cr_assert(member(v0, sizeof v0, l0, "manifest") && strcmp(v0, "true") == 0, "%s", l0);
    const char *same[] = { "id", "txn", "npages", "pages", "bytes", "created" };
    for (int i = 0; i < 6; i++) {
        cr_assert(member(v0, sizeof v0, l0, same[i]) && member(v1, sizeof v1, l1, same[i]));
        cr_assert_str_eq(v0, v1, "%s: %s / %s", same[i], l0, l1);
    }
    run_free(&r);
    /* The same incremental from the manifest as from the archive; the full
     * archive need not even be there. */
    add_rows(&f, 5000, 60);
    r = dbt_runv(NULL, "backup", f.db, i_arch, "--quiet", "--incremental", full, NULL);
    dbt_expect_ok(&r, "incremental on the archive");
    run_free(&r);
    char moved[400];
    snprintf(moved, sizeof moved, "%s/elsewhere.edbk", f.dir);
    cr_assert_eq(rename(full, moved), 0);
    /* To standard output, with the next manifest written beside. */
    char cmdline[2000];
    snprintf(cmdline, sizeof cmdline, "%s/dbtool backup '%s' - --quiet --incremental '%s' --manifest '%s' > '%s'",
             getenv("top_builddir") ? getenv("top_builddir") : ".", f.db, man, man2, i_man);
    cr_assert_eq(system(cmdline), 0, "%s", cmdline);
    cr_assert_eq(rename(moved, full), 0);
    r = dbt_runv(NULL, "info", i_arch, i_man, man2, "--json", NULL);
    dbt_expect_ok(&r, "info incrementals");
    char l2[2048];
    line_n(l0, sizeof l0, r.out, 0);
    line_n(l1, sizeof l1, r.out, 1);
    line_n(l2, sizeof l2, r.out, 2);
    const char *eq[] = { "base_id", "txn", "npages", "pages" };
    for (int i = 0; i < 4; i++) {
        cr_assert(member(v0, sizeof v0, l0, eq[i]) && member(v1, sizeof v1, l1, eq[i]));
        cr_assert_str_eq(v0, v1, "%s: %s / %s", eq[i], l0, l1);
    }
    cr_assert(member(v0, sizeof v0, l1, "id") && member(v1, sizeof v1, l2, "id"));
    cr_assert_str_eq(v0, v1, "the manifest of the streamed archive: %s / %s", l1, l2);
    run_free(&r);
    r = dbt_runv(NULL, "verify", i_man, full, NULL);
    dbt_expect_ok(&r, "verify the chain built on a manifest");
    run_free(&r);
    /* A manifest given to verify is named as such, the archives still checked. */
    r = dbt_runv(NULL, "verify", i_man, full, man, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "is a manifest") != NULL, "%s", r.err);
    cr_assert(strstr(r.out, "ok: 2 archives") != NULL, "%s", r.out);
    run_free(&r);
    const char *t = fx_path(&f, 5, "restored");
    r = dbt_runv(NULL, "restore", t, full, i_man, NULL);
    dbt_expect_ok(&r, "restore");
    run_free(&r);
    run_result e1 = dbt_runv(NULL, "export", t, "t", NULL), e2 = dbt_runv(NULL, "export", f.db, "t", NULL);
    cr_assert_eq(e1.status, 0);
    cr_assert_str_eq(e1.out, e2.out);
    run_free(&e1);
    run_free(&e2);
    fx_fini(&f);
}

Test(lifecycle, manifest_damage_and_interruption_refused, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 300);
    const char *full = fx_path(&f, 0, "full.edbk"), *man = fx_path(&f, 1, "full.man"),
               *bad = fx_path(&f, 2, "bad.man"), *out = fx_path(&f, 3, "x.edbk"),
               *man2 = fx_path(&f, 4, "x.man");
    run_result r = dbt_runv(NULL, "backup", f.db, full, "--quiet", "--manifest", man, NULL);
    dbt_expect_ok(&r, "backup --manifest");
    run_free(&r);
    /* An existing manifest is refused without --overwrite, naming it. */
    r = dbt_runv(NULL, "backup", f.db, out, "--quiet", "--manifest", man, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "--overwrite") != NULL, "%s", r.err);
    run_free(&r);
    /* A flipped bit in the table, and one in the block: refused as a base. */
    off_t offs[] = { 4096 + 40, 60 };
    for (int i = 0; i < 2; i++) {
        copy_prefix(man, bad, file_size(man));
        int fd = open(bad, O_RDWR);
        uint8_t byte;
        cr_assert_eq(pread(fd, &byte, 1, offs[i]), 1);
        byte ^= 2;
        cr_assert_eq(pwrite(fd, &byte, 1, offs[i]), 1);
        close(fd);
        r = dbt_runv(NULL, "backup", f.db, out, "--quiet", "--incremental", bad, NULL);
        cr_assert_eq(r.status, 1);
        cr_assert(strstr(r.err, "EDB_CHECKSUM") != NULL, "%d: %s", i, r.err);
        run_free(&r);
        struct stat st;
        cr_assert_neq(stat(out, &st), 0, "no archive after a refused base");
    }
    /* A truncated manifest. */
    copy_prefix(man, bad, file_size(man) - 100);
    r = dbt_runv(NULL, "backup", f.db, out, "--quiet", "--incremental", bad, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "EDB_CORRUPT") != NULL, "%s", r.err);
    run_free(&r);
    /* A stream whose reader goes away: no manifest is written. */
    char cmdline[2000];
    snprintf(cmdline, sizeof cmdline, "%s/dbtool backup '%s' - --quiet --manifest '%s' | head -c 10000 > /dev/null",
             getenv("top_builddir") ? getenv("top_builddir") : ".", f.db, man2);
    (void)system(cmdline);
    struct stat st;
    cr_assert_neq(stat(man2, &st), 0, "a manifest of a cut archive was written");
    fx_fini(&f);
}

/* ---- merge ---- */

static char *
slurp_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    b[n] = '\0';
    *len = (size_t)n;
    return b;
}

static char *
mdb_dump_of(const char *db)
{
    char cmd[1600], out[700];
    snprintf(out, sizeof out, "%s.dump", db);
    snprintf(cmd, sizeof cmd, "mdb_dump -a '%s' > '%s'", db, out);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    size_t n;
    return slurp_file(out, &n);
}

Test(lifecycle, merge_equals_restoring_the_chain, .timeout = 120)
{
    struct fx f;
    fx_init(&f, 500);
    const char *c[4] = { fx_path(&f, 0, "c0.edbk"), fx_path(&f, 1, "c1.edbk"),
                         fx_path(&f, 2, "c2.edbk"), fx_path(&f, 3, "c3.edbk") };
    const char *m = fx_path(&f, 4, "merged.edbk");
    backup(&f, c[0], NULL);
    add_rows(&f, 10000, 200);
    backup(&f, c[1], c[0]);
    /* Deletes free pages the earlier archives carried. */
    for (int k = 1; k <= 300; k += 3) {
        char key[16];
        snprintf(key, sizeof key, "%d", k);
        run_result r = dbt_runv(NULL, "delete", f.db, "t", key, NULL);
        dbt_expect_ok(&r, "delete");
        run_free(&r);
    }
    run_result r = dbt_runv(NULL, "backup", f.db, c[2], "--quiet", "--low-pin", "--incremental", c[1], NULL);
    dbt_expect_ok(&r, "low-pin incremental");
    run_free(&r);
    add_rows(&f, 20000, 50);
    backup(&f, c[3], c[2]);

    r = dbt_runv(NULL, "merge", m, c[0], c[1], c[2], c[3], "--json", NULL);
    dbt_expect_ok(&r, "merge");
    char v[128], txn[32];
    cr_assert(member(v, sizeof v, r.out, "kind") && strcmp(v, "full") == 0, "%s", r.out);
    cr_assert(member(txn, sizeof txn, r.out, "txn"));
    run_free(&r);
    r = dbt_runv(NULL, "info", c[3], "--json", NULL);
    cr_assert(member(v, sizeof v, r.out, "txn") && strcmp(v, txn) == 0, "same snapshot: %s", r.out);
    run_free(&r);
    r = dbt_runv(NULL, "verify", m, NULL);
    dbt_expect_ok(&r, "verify the merged archive");
    run_free(&r);

    const char *t1 = fx_path(&f, 5, "from-chain"), *t2 = fx_path(&f, 6, "from-merged");
    r = dbt_runv(NULL, "restore", t1, c[0], c[1], c[2], c[3], NULL);
    dbt_expect_ok(&r, "restore the chain");
    run_free(&r);
    r = dbt_runv(NULL, "restore", t2, m, NULL);
    dbt_expect_ok(&r, "restore the merged archive");
    run_free(&r);
    char p1[500], p2[500];
    snprintf(p1, sizeof p1, "%s/data.mdb", t1);
    snprintf(p2, sizeof p2, "%s/data.mdb", t2);
    size_t n1, n2;
    char *d1 = slurp_file(p1, &n1), *d2 = slurp_file(p2, &n2);
    cr_assert_eq(n1, n2);
    cr_assert(memcmp(d1, d2, n1) == 0, "data.mdb differs");
    free(d1);
    free(d2);
    char *u1 = mdb_dump_of(t1), *u2 = mdb_dump_of(t2);
    cr_assert_str_eq(u1, u2);
    free(u1);
    free(u2);
    /* A prefix merges too, and a merged archive can start a longer chain's merge. */
    const char *m2 = fx_path(&f, 7, "merged2.edbk");
    r = dbt_runv(NULL, "merge", m2, c[0], c[1], "--quiet", NULL);
    dbt_expect_ok(&r, "merge a prefix");
    cr_assert_str_eq(r.out, "");
    run_free(&r);
    fx_fini(&f);
}

Test(lifecycle, merge_refuses_broken_chains, .timeout = 90)
{
    struct fx f;
    fx_init(&f, 300);
    const char *c0 = fx_path(&f, 0, "c0.edbk"), *c1 = fx_path(&f, 1, "c1.edbk"),
               *c2 = fx_path(&f, 2, "c2.edbk"), *m = fx_path(&f, 3, "m.edbk"),
               *bad = fx_path(&f, 4, "bad.edbk");
    backup(&f, c0, NULL);
    add_rows(&f, 1000, 100);
    backup(&f, c1, c0);
    add_rows(&f, 2000, 100);
    backup(&f, c2, c1);
    struct { const char *args[4]; const char *code; } cases[] = {
        { { c0, c2, NULL }, "EDB_CHAIN" },          /* a missing link */
        { { c1, c2, NULL }, "EDB_CHAIN" },          /* starts with an incremental */
        { { c0, c2, c1, NULL }, "EDB_CHAIN" },      /* out of order */
        { { c0, c1, c1, NULL }, "EDB_CHAIN" },      /* a repeat */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[8] = { "merge", m };
        int k = 2;
        for (int j = 0; cases[i].args[j]; j++)
            argv[k++] = cases[i].args[j];
        argv[k] = NULL;
        run_result r = dbt_run(NULL, argv);
        cr_assert_eq(r.status, 1, "case %zu", i);
        cr_assert(strstr(r.err, cases[i].code) != NULL, "case %zu: %s", i, r.err);
        run_free(&r);
        struct stat st;
        cr_assert_neq(stat(m, &st), 0, "case %zu left an output", i);
    }
    /* A damaged page of the middle archive. */
    copy_prefix(c1, bad, file_size(c1));
    int fd = open(bad, O_RDWR);
    uint8_t byte;
    cr_assert_eq(pread(fd, &byte, 1, 4096 + 4096 + 50), 1);
    byte ^= 1;
    cr_assert_eq(pwrite(fd, &byte, 1, 4096 + 4096 + 50), 1);
    close(fd);
    run_result r = dbt_runv(NULL, "merge", m, c0, bad, c2, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "EDB_CHECKSUM") != NULL, "%s", r.err);
    run_free(&r);
    /* Interrupted last archive. */
    copy_prefix(c2, bad, file_size(c2) - 4096);
    r = dbt_runv(NULL, "merge", m, c0, c1, bad, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "EDB_CORRUPT") != NULL, "%s", r.err);
    run_free(&r);
    DIR *d = opendir(f.dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        cr_assert_null(strstr(de->d_name, ".tmp."), "left behind: %s", de->d_name);
        cr_assert_str_neq(de->d_name, "m.edbk");
    }
    closedir(d);
    /* An existing OUT, standard input. */
    r = dbt_runv(NULL, "merge", c0, c0, c1, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "EDB_EXISTS") != NULL && strstr(r.err, "--overwrite") != NULL, "%s", r.err);
    run_free(&r);
    r = dbt_runv(NULL, "merge", m, "-", NULL);
    cr_assert_eq(r.status, 2);
    run_free(&r);
    fx_fini(&f);
}

/* ---- text output on a terminal ---- */

Test(lifecycle, info_on_a_terminal_is_text, .timeout = 60)
{
    struct fx f;
    fx_init(&f, 100);
    const char *full = fx_path(&f, 0, "full.edbk"), *man = fx_path(&f, 1, "full.man");
    run_result r = dbt_runv(NULL, "backup", f.db, full, "--quiet", "--manifest", man, NULL);
    dbt_expect_ok(&r, "backup");
    run_free(&r);
    const char *argv[] = { "info", full, man, NULL };
    r = dbt_run_tty(argv);
    dbt_expect_ok(&r, "info on a tty");
    cr_assert(strstr(r.out, "full archive, complete") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "full manifest") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "base:      - (a full archive)") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "{\"id\"") == NULL, "no JSON on a terminal: %s", r.out);
    run_free(&r);
    const char *jargv[] = { "info", full, "--json", NULL };
    r = dbt_run_tty(jargv);
    dbt_expect_ok(&r, "info --json on a tty");
    cr_assert(strstr(r.out, "{\"id\"") != NULL, "%s", r.out);
    run_free(&r);
    fx_fini(&f);
}

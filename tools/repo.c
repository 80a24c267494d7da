/*
 * repo.c: the backup repository of dbtool: a directory of archives and a
 * catalog (catalog.json) that lists them in the order they were taken.
 *
 * Layout of DIR:
 *   catalog.json            {"format": "edb-repo", "version": 1, "next": N,
 *                            "archives": [ {file, the members of dbtool info,
 *                            created_us, unchanged_until_us}... ],
 *                            "chains": [ [file, ...], ... ] (derived)}
 *   NNNNNN-full.edbk        archive number NNNNNN (1, 2, ...), full or
 *   NNNNNN-incr.edbk        incremental on the archive listed before it in
 *                           its chain (base_id), or
 *   NNNNNN-merged.edbk      a chain merged by 'repo merge'
 *   lock                    flock()ed by every command that changes DIR
 *
 * Crash safety (kill -9 at any moment): an archive is written under a
 * temporary name and renamed when complete (edb_backup_save); only then is
 * the catalog rewritten (temporary file, fsync, rename, directory fsync), so
 * the catalog only ever lists complete archives.  Removal goes the other way:
 * the catalog first, then the files.  What a kill leaves is at worst an
 * archive not in the catalog, or a temporary file: every locked command
 * removes such leftovers (names of the patterns above, and ".*.tmp.*")
 * before it starts.  Readers (list, restore) need no lock: they read the
 * catalog, which is always complete, and only archives it lists.
 *
 * A bucket (s3://BUCKET/PREFIX, store.c) holds the same objects under the
 * keys PREFIX/NAME, plus NNNNNN-*.edbk.manifest beside each archive (the page
 * hashes the next incremental builds on, so it never reads the archive
 * back).  Archives are multipart uploads, visible only once complete; the
 * catalog is one PUT, made after the archive and its manifest.  A bucket has
 * no lock: run one writer at a time (readers need none).  Leftovers there
 * also include multipart uploads a SIGKILL left in progress: every locked
 * command aborts those of archive names (ListMultipartUploads, where the
 * server has it).
 *
 * The lock is flock(LOCK_EX | LOCK_NB) on DIR/lock, held for the whole
 * command (continuous mode: for its whole run); a second writer fails with
 * EDB_BUSY.  The kernel drops it when the process dies, however it dies.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo.h"

/* ---- hex ---- */

static int
unhex16(uint8_t out[16], const char *s)
{
    if (s == NULL || strlen(s) != 32)
        return -1;
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static unsigned
kind_flags(const char *kind)
{
    unsigned f = 0;
    if (strncmp(kind, "incremental", 11) == 0)
        f |= EDB_BACKUP_INCREMENTAL;
    if (strstr(kind, "low-pin") != NULL)
        f |= EDB_BACKUP_LOW_PIN;
    if (strstr(kind, "keep-free") != NULL)
        f |= EDB_BACKUP_KEEP_FREE;
    return f;
}

/* ---- open, lock ---- */

int
repo_open(repo *r, const char *dir, bool create, bool lock, const store_opts *so)
{
    memset(r, 0, sizeof *r);
    r->lock_fd = -1;
    r->next = 1;
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    char err[1024];
    int src = store_open(&r->st, dir, so, create, err, sizeof err);
    if (src != 0)
        return dbt_failf("repo", src, "%s", err);
    if (lock && store_dir(r->st) != NULL) {
        char p[4200];
        snprintf(p, sizeof p, "%s/lock", dir);
        r->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (r->lock_fd < 0) {
            int e = errno;
            repo_close(r);
            return dbt_failf("repo", EDB_IO, "opening '%s': %s", p, strerror(e));
        }
        if (flock(r->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            repo_close(r);
            if (e == EWOULDBLOCK)
                return dbt_failf("repo", EDB_BUSY, "repository '%s' is in use by another dbtool "
                                 "(its lock file is held); try again when it has finished", dir);
            return dbt_failf("repo", EDB_IO, "locking '%s': %s", p, strerror(e));
        }
    }
    int rc = repo_load(r);
    if (rc != DBT_OK) {
        repo_close(r);
        return rc;
    }
    if (lock)
        repo_clean(r);
    return DBT_OK;
}

void
repo_close(repo *r)
{
    if (r->lock_fd >= 0)
        close(r->lock_fd);       /* drops the flock */
    r->lock_fd = -1;
    store_close(r->st);
    r->st = NULL;
    free(r->a);
    r->a = NULL;
    r->n = r->cap = 0;
}

/* ---- the catalog ---- */

static int
add(repo *r, const repo_entry *e)
{
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 64;
        repo_entry *a = realloc(r->a, nc * sizeof *a);
        if (a == NULL)
            return -1;
        r->a = a;
        r->cap = nc;
    }
    r->a[r->n++] = *e;
    return 0;
}

int
repo_append(repo *r, const repo_entry *e)
{
    return add(r, e) == 0 ? DBT_OK : dbt_failf("repo", EDB_NOMEM, "out of memory");
}

static bool
safe_name(const char *f)
{
    return f[0] != '\0' && f[0] != '.' && strchr(f, '/') == NULL && strlen(f) < 200;
}

int
repo_load(repo *r)
{
    char p[4200], err[1024];
    snprintf(p, sizeof p, "%s/catalog.json", r->dir);
    char *text = NULL;
    size_t tlen = 0;
    int grc = store_get_mem(r->st, "catalog.json", &text, &tlen, err, sizeof err);
    if (grc == EDB_NOTFOUND)
        return DBT_OK;                        /* a new repository */
    if (grc != 0)
        return dbt_failf("repo", grc, "catalog '%s': %s", p, err);
    json_error_t jerr;
    json_t *doc = json_loadb(text, tlen, 0, &jerr);
    free(text);
    if (doc == NULL)
        return dbt_failf("repo", EDB_CORRUPT, "catalog '%s': %s (line %d)", p, jerr.text, jerr.line);
    int ret = DBT_OK;
    json_t *arr = json_object_get(doc, "archives");
    const char *fmt = json_string_value(json_object_get(doc, "format"));
    if (fmt == NULL || strcmp(fmt, "edb-repo") != 0 || json_integer_value(json_object_get(doc, "version")) != 1 ||
        !json_is_array(arr)) {
        ret = dbt_failf("repo", EDB_CORRUPT, "catalog '%s' is not an edb repository catalog of "
                        "version 1", p);
        goto out;
    }
    r->next = (uint64_t)json_integer_value(json_object_get(doc, "next"));
    const char *kid = json_string_value(json_object_get(doc, "key_id"));
    if (kid != NULL)
        snprintf(r->key_id, sizeof r->key_id, "%s", kid);
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        repo_entry e;
        memset(&e, 0, sizeof e);
        const char *file = json_string_value(json_object_get(o, "file"));
        const char *id = json_string_value(json_object_get(o, "id"));
        json_t *base = json_object_get(o, "base_id");
        const char *kind = json_string_value(json_object_get(o, "kind"));
        if (file == NULL || !safe_name(file) || unhex16(e.s.backup_id, id) != 0 || kind == NULL ||
            (!json_is_null(base) && unhex16(e.s.base_id, json_string_value(base)) != 0)) {
            ret = dbt_failf("repo", EDB_CORRUPT, "catalog '%s': archive %zu is malformed", p, i + 1);
            goto out;
        }
        snprintf(e.file, sizeof e.file, "%s", file);
        e.s.flags = kind_flags(kind);
        e.s.complete = 1;
        e.s.txnid = (uint64_t)json_integer_value(json_object_get(o, "txn"));
        e.s.page_size = (uint32_t)json_integer_value(json_object_get(o, "page_size"));
        e.s.npages = (uint64_t)json_integer_value(json_object_get(o, "npages"));
        e.s.pages = (uint64_t)json_integer_value(json_object_get(o, "pages"));
        e.s.bytes = (uint64_t)json_integer_value(json_object_get(o, "bytes"));
        e.s.created_us = (uint64_t)json_integer_value(json_object_get(o, "created_us"));
        const char *ekid = json_string_value(json_object_get(json_object_get(o, "encryption"), "key_id"));
        if (ekid != NULL && unhex16(e.s.key_id, ekid) == 0)
            e.s.encrypted = 1;
        const char *comp = json_string_value(json_object_get(o, "compression"));
        if (comp != NULL && sscanf(comp, "zstd:%d", &e.s.compress_level) == 1)
            e.s.compress = EDB_BACKUP_COMPRESS_ZSTD;
        e.unchanged_until_us = (uint64_t)json_integer_value(json_object_get(o, "unchanged_until_us"));
        if (add(r, &e) != 0) {
            ret = dbt_failf("repo", EDB_NOMEM, "out of memory");
            goto out;
        }
    }
out:
    json_decref(doc);
    return ret;
}

/* The members of one entry (as repo list --json prints them, plus the exact
 * times) into @o. */
static json_t *
entry_json(const repo_entry *e, bool exact)
{
    jv_buf b = { 0 };
    if (jv_buf_adds(&b, "{\"file\":") != 0 || jv_write_json_string(&b, e->file, strlen(e->file)) != 0 ||
        jv_buf_adds(&b, ",") != 0 || dbt_summary_members(&b, &e->s) != 0 || jv_buf_adds(&b, "}") != 0) {
        jv_buf_free(&b);
        return NULL;
    }
    json_error_t jerr;
    json_t *o = json_loadb(b.p, b.len, 0, &jerr);
    jv_buf_free(&b);
    if (o != NULL && exact) {
        json_object_set_new(o, "created_us", json_integer((json_int_t)e->s.created_us));
        if (e->unchanged_until_us)
            json_object_set_new(o, "unchanged_until_us", json_integer((json_int_t)e->unchanged_until_us));
    }
    return o;
}

int
repo_save(repo *r)
{
    json_t *doc = json_object(), *arr = json_array();
    json_object_set_new(doc, "format", json_string("edb-repo"));
    json_object_set_new(doc, "version", json_integer(1));
    json_object_set_new(doc, "next", json_integer((json_int_t)r->next));
    if (r->key_id[0] != '\0')
        json_object_set_new(doc, "key_id", json_string(r->key_id));
    for (size_t i = 0; i < r->n; i++) {
        json_t *o = entry_json(&r->a[i], true);
        if (o == NULL) {
            json_decref(doc);
            json_decref(arr);
            return dbt_failf("repo", EDB_NOMEM, "out of memory");
        }
        json_array_append_new(arr, o);
    }
    json_object_set_new(doc, "archives", arr);
    /* The chains, derived (readers may use them; the loader ignores them):
     * each a list of files, full archive first. */
    json_t *chains = json_array();
    size_t *idx = r->n ? calloc(r->n, sizeof *idx) : NULL;
    for (size_t i = 0; i < r->n && idx != NULL; i++) {
        bool is_end = true;
        for (size_t j = i + 1; j < r->n && is_end; j++)
            if (repo_base_of(r, j) == (int)i)
                is_end = false;
        if (!is_end)
            continue;
        json_t *c = json_array();
        size_t len = repo_chain_to(r, i, idx);
        for (size_t j = 0; j < len; j++)
            json_array_append_new(c, json_string(r->a[idx[j]].file));
        json_array_append_new(chains, c);
    }
    free(idx);
    json_object_set_new(doc, "chains", chains);
    char *text = json_dumps(doc, JSON_INDENT(1));
    json_decref(doc);
    if (text == NULL)
        return dbt_failf("repo", EDB_NOMEM, "out of memory");
    char err[1024];
    int prc = store_put(r->st, "catalog.json", text, strlen(text), err, sizeof err);
    free(text);
    if (prc != 0)
        return dbt_failf("repo", prc, "writing the catalog of '%s': %s", r->dir, err);
    return DBT_OK;
}

/* ---- leftovers ---- */

/* Names a repository writes: NNNNNN-{full,incr,merged}.edbk[.manifest]
 * and hidden temporary files.  *archive: the archive's name length. */
static bool
ours(const char *name, size_t *archive)
{
    if (name[0] == '.')
        return strstr(name, ".tmp.") != NULL;
    size_t n = strlen(name);
    if (n < 12 || strspn(name, "0123456789") != 6 || name[6] != '-')
        return false;
    static const char *const kinds[] = { "full.edbk", "incr.edbk", "merged.edbk" };
    for (size_t k = 0; k < 3; k++) {
        size_t kl = strlen(kinds[k]);
        if (strncmp(name + 7, kinds[k], kl) == 0 &&
            (name[7 + kl] == '\0' || strcmp(name + 7 + kl, ".manifest") == 0)) {
            *archive = 7 + kl;
            return true;
        }
    }
    return false;
}

static bool
ours_archive(const char *name)
{
    size_t alen = 0;
    return ours(name, &alen) && alen != 0 && name[alen] == '\0';
}

void
repo_clean(repo *r)
{
    /* A bucket: uploads a killed run left in progress (not every server
     * lists them: s3rver answers NotImplemented, which is ignored). */
    unsigned aborted = 0;
    char aerr[1024];
    store_abort_uploads(r->st, ours_archive, &aborted, aerr, sizeof aerr);

    char **names = NULL, err[1024];
    size_t n = 0;
    if (store_list(r->st, &names, &n, err, sizeof err) != 0)
        return;
    for (size_t j = 0; j < n; j++) {
        size_t alen = 0;
        if (!ours(names[j], &alen))
            continue;
        bool listed = false;
        for (size_t i = 0; i < r->n && !listed && alen != 0; i++)
            listed = strlen(r->a[i].file) == alen && strncmp(r->a[i].file, names[j], alen) == 0;
        if (!listed)
            store_delete(r->st, names[j], err, sizeof err);
    }
    store_names_free(names, n);
}

/* ---- chains ---- */

int
repo_base_of(const repo *r, size_t i)
{
    if (!(r->a[i].s.flags & EDB_BACKUP_INCREMENTAL))
        return -1;
    for (size_t k = i; k-- > 0;)
        if (memcmp(r->a[k].s.backup_id, r->a[i].s.base_id, 16) == 0)
            return (int)k;
    return -2;       /* its base is not in the catalog */
}

size_t
repo_chain_root(const repo *r, size_t i)
{
    for (size_t guard = 0; guard <= r->n; guard++) {
        int b = repo_base_of(r, i);
        if (b < 0)
            return i;
        i = (size_t)b;
    }
    return i;
}

size_t
repo_chain_to(const repo *r, size_t i, size_t *idx)
{
    size_t len = 0;
    for (int k = (int)i; k >= 0 && len <= r->n; k = repo_base_of(r, (size_t)k))
        idx[len++] = (size_t)k;
    for (size_t j = 0; j < len / 2; j++) {
        size_t t = idx[j];
        idx[j] = idx[len - 1 - j];
        idx[len - 1 - j] = t;
    }
    return len;
}

void
repo_path(const repo *r, const repo_entry *e, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", r->dir, e->file);
}

void
repo_manifest_name(char *out, size_t cap, const char *file)
{
    snprintf(out, cap, "%s.manifest", file);
}

void
repo_remove_files(repo *r, const char *file)
{
    char err[1024], m[300];
    store_delete(r->st, file, err, sizeof err);
    if (store_dir(r->st) == NULL) {
        repo_manifest_name(m, sizeof m, file);
        store_delete(r->st, m, err, sizeof err);
    }
}

json_t *
repo_entry_json(const repo_entry *e)
{
    return entry_json(e, false);
}

/*
 * store.c: the stores of a backup repository (store.h): a directory here, and
 * an S3-compatible bucket in store_s3.c; every operation goes to one of them.
 *
 * Directory: NAME is DIR/NAME; store_put writes a hidden temporary file
 * (".NAME.tmp.PID"), fsyncs it, renames it over NAME and fsyncs DIR, so a
 * reader sees the old or the new object, never a part.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbtool.h"
#include "store_impl.h"


int
store_errf(char *err, size_t cap, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return rc;
}

bool
store_is_s3(const char *url)
{
    return url != NULL && strncmp(url, "s3://", 5) == 0;
}

static bool
parse_size(uint64_t *out, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || s[0] == '-')
        return false;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    else if (*end == 'G' || *end == 'g')
        shift = 30, end++;
    if (*end != '\0' || v > (UINT64_MAX >> shift))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

int
store_parse_opt(store_opts *o, const char *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "--s3-path-style") == 0) {
        o->path_style = true;
        return 0;
    }
    if (strcmp(a, "--s3-endpoint") != 0 && strcmp(a, "--s3-region") != 0 && strcmp(a, "--s3-timeout") != 0 &&
        strcmp(a, "--s3-part-size") != 0)
        return 1;
    if (++*i >= argc)
        return dbt_usage(cmd, "%s needs a value", a);
    const char *v = argv[*i];
    if (strcmp(a, "--s3-endpoint") == 0) {
        if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
            return dbt_usage(cmd, "--s3-endpoint needs an http:// or https:// URL");
        o->endpoint = v;
    } else if (strcmp(a, "--s3-region") == 0) {
        if (v[0] == '\0' || strpbrk(v, ":/ ") != NULL)
            return dbt_usage(cmd, "--s3-region needs a region name such as eu-west-1");
        o->region = v;
    } else if (strcmp(a, "--s3-timeout") == 0) {
        uint64_t t;
        if (!dbt_parse_count(&t, v) || t < 1 || t > 86400)
            return dbt_usage(cmd, "--s3-timeout needs a number of seconds from 1 to 86400");
        o->timeout_s = (unsigned)t;
    } else {
        uint64_t p;
        if (!parse_size(&p, v) || p < MIN_PART || p > (5ull << 30))
            return dbt_usage(cmd, "--s3-part-size needs a size from 5M to 5G (S3's limits)");
        o->part_size = p;
    }
    return 0;
}

/* ---- directory ---- */

static int
dir_path(const store *s, const char *name, char *out, size_t cap, char *err, size_t errcap)
{
    if ((size_t)snprintf(out, cap, "%s/%s", s->dir, name) >= cap)
        return store_errf(err, errcap, EDB_INVAL, "the name '%s/%s' is too long", s->dir, name);
    return 0;
}

int
store_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int
dir_put(store *s, const char *name, const void *data, size_t len, char *err, size_t errcap)
{
    char p[4400], tmp[4500];
    int rc = dir_path(s, name, p, sizeof p, err, errcap);
    if (rc != 0)
        return rc;
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld", s->dir, name, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    bool ok = fd >= 0 && store_write_all(fd, data, len) == 0 && fsync(fd) == 0;
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok || rename(tmp, p) != 0) {
        if (ok)
            e = errno;
        unlink(tmp);
        return store_errf(err, errcap, EDB_IO, "writing '%s': %s", p, strerror(e));
    }
    int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        e = errno;
        if (dfd >= 0)
            close(dfd);
        return store_errf(err, errcap, EDB_IO, "syncing the directory '%s': %s", s->dir, strerror(e));
    }
    close(dfd);
    return 0;
}

static int
copy_fd(int in, int out, uint64_t len, uint64_t *total)
{
    char buf[65536];
    uint64_t done = 0;
    for (;;) {
        size_t want = sizeof buf;
        if (len && len - done < want)
            want = (size_t)(len - done);
        if (want == 0)
            break;
        ssize_t r = read(in, buf, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        if (store_write_all(out, buf, (size_t)r) != 0)
            return -1;
        done += (uint64_t)r;
    }
    if (total)
        *total = done;
    return 0;
}



int
store_open(store **out, const char *url, const store_opts *o, bool create, char *err, size_t errcap)
{
    *out = NULL;
    store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return store_errf(err, errcap, EDB_NOMEM, "out of memory");
    int rc = 0;
    if (store_is_s3(url)) {
        store_opts none;
        memset(&none, 0, sizeof none);
        rc = store_s3_open(s, url, o ? o : &none, err, errcap);
    } else {
        struct stat st;
        s->dir = strdup(url);
        if (s->dir == NULL)
            rc = store_errf(err, errcap, EDB_NOMEM, "out of memory");
        else if (stat(url, &st) != 0) {
            if (errno != ENOENT || !create)
                rc = store_errf(err, errcap, EDB_NOTFOUND, "no repository directory '%s'", url);
            else if (mkdir(url, 0700) != 0)
                rc = store_errf(err, errcap, EDB_IO, "creating '%s': %s", url, strerror(errno));
        } else if (!S_ISDIR(st.st_mode)) {
            rc = store_errf(err, errcap, EDB_EXISTS, "'%s' is not a directory", url);
        }
    }
    if (rc != 0) {
        store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void
wipe_free(char *p)
{
    if (p != NULL)
        memset(p, 0, strlen(p));
    free(p);
}

void
store_close(store *s)
{
    if (s == NULL)
        return;
    store_s3_close(s);
    free(s->dir);
    free(s->bucket);
    free(s->prefix);
    free(s->endpoint);
    free(s->region);
    free(s->sigv4);
    wipe_free(s->key_id);
    wipe_free(s->secret);
    wipe_free(s->token_hdr);
    free(s);
}

void
store_set_cancel(store *s, store_cancel_fn fn, void *ctx)
{
    s->cancel = fn;
    s->cancel_ctx = ctx;
}

const char *
store_dir(const store *s)
{
    return s->dir;
}


/* ---- the operations ---- */

static int
dir_put_stream(store *s, const char *name, int fd, store_commit_fn commit, void *cctx, uint64_t *bytes,
               char *err, size_t errcap)
{
    char p[4400], tmp[4500];
    int rc = dir_path(s, name, p, sizeof p, err, errcap);
    if (rc != 0)
        return rc;
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld", s->dir, name, (long)getpid());
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0)
        return store_errf(err, errcap, EDB_IO, "creating '%s': %s", tmp, strerror(errno));
    bool ok = copy_fd(fd, out, 0, bytes) == 0 && fsync(out) == 0;
    int e = errno;
    close(out);
    if (!ok) {
        unlink(tmp);
        return store_errf(err, errcap, EDB_IO, "writing '%s': %s", tmp, strerror(e));
    }
    if (commit != NULL && (rc = commit(cctx)) != 0) {
        unlink(tmp);
        return store_errf(err, errcap, rc, "the archive was refused");
    }
    if (rename(tmp, p) != 0) {
        e = errno;
        unlink(tmp);
        return store_errf(err, errcap, EDB_IO, "renaming to '%s': %s", p, strerror(e));
    }
    return 0;
}

int
store_put(store *s, const char *name, const void *data, size_t len, char *err, size_t errcap)
{
    if (s->dir)
        return dir_put(s, name, data, len, err, errcap);
    return store_s3_put(s, name, data, len, err, errcap);
}

int
store_put_stream(store *s, const char *name, int fd, store_commit_fn commit, void *cctx, uint64_t *bytes,
                 char *err, size_t errcap)
{
    *bytes = 0;
    if (s->dir)
        return dir_put_stream(s, name, fd, commit, cctx, bytes, err, errcap);
    return store_s3_put_stream(s, name, fd, commit, cctx, bytes, err, errcap);
}

static int
dir_get(store *s, const char *name, int fd, uint64_t off, uint64_t len, char *err, size_t errcap)
{
    char p[4400];
    int rc = dir_path(s, name, p, sizeof p, err, errcap);
    if (rc != 0)
        return rc;
    int in = open(p, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return store_errf(err, errcap, errno == ENOENT ? EDB_NOTFOUND : EDB_IO, "opening '%s': %s", p,
                          strerror(errno));
    bool ok = lseek(in, (off_t)off, SEEK_SET) >= 0 && copy_fd(in, fd, len, NULL) == 0;
    int e = errno;
    close(in);
    return ok ? 0 : store_errf(err, errcap, EDB_IO, "copying '%s': %s", p, strerror(e));
}

int
store_get(store *s, const char *name, int fd, uint64_t off, uint64_t len, char *err, size_t errcap)
{
    if (s->dir)
        return dir_get(s, name, fd, off, len, err, errcap);
    return store_s3_get(s, name, fd, off, len, err, errcap);
}

static int
dir_get_mem(store *s, const char *name, char **out, size_t *len, char *err, size_t errcap)
{
    char p[4400];
    int rc = dir_path(s, name, p, sizeof p, err, errcap);
    if (rc != 0)
        return rc;
    FILE *f = fopen(p, "re");
    if (f == NULL)
        return store_errf(err, errcap, errno == ENOENT ? EDB_NOTFOUND : EDB_IO, "opening '%s': %s", p,
                          strerror(errno));
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (b == NULL)
            break;
        if (n + 4096 + 1 > cap) {
            char *nb = realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, 4096, f);
        n += r;
        if (r < 4096)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (b == NULL)
        return store_errf(err, errcap, EDB_NOMEM, "out of memory");
    if (bad) {
        free(b);
        return store_errf(err, errcap, EDB_IO, "reading '%s'", p);
    }
    b[n] = '\0';
    *out = b;
    *len = n;
    return 0;
}

int
store_get_mem(store *s, const char *name, char **out, size_t *len, char *err, size_t errcap)
{
    *out = NULL;
    *len = 0;
    if (s->dir)
        return dir_get_mem(s, name, out, len, err, errcap);
    return store_s3_get_mem(s, name, out, len, err, errcap);
}

void
store_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int
store_names_add(char ***names, size_t *n, size_t *cap, const char *v)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 32;
        char **a = realloc(*names, nc * sizeof *a);
        if (a == NULL)
            return -1;
        *names = a;
        *cap = nc;
    }
    if (((*names)[*n] = strdup(v)) == NULL)
        return -1;
    (*n)++;
    return 0;
}

static int
dir_list(store *s, char ***names, size_t *n, char *err, size_t errcap)
{
    size_t cap = 0;
    DIR *d = opendir(s->dir);
    if (d == NULL)
        return store_errf(err, errcap, EDB_IO, "listing '%s': %s", s->dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (store_names_add(names, n, &cap, de->d_name) != 0) {
            closedir(d);
            store_names_free(*names, *n);
            *names = NULL, *n = 0;
            return store_errf(err, errcap, EDB_NOMEM, "out of memory");
        }
    }
    closedir(d);
    return 0;
}

int
store_list(store *s, char ***names, size_t *n, char *err, size_t errcap)
{
    *names = NULL;
    *n = 0;
    if (s->dir)
        return dir_list(s, names, n, err, errcap);
    return store_s3_list(s, names, n, err, errcap);
}

static int
dir_delete(store *s, const char *name, char *err, size_t errcap)
{
    char p[4400];
    int rc = dir_path(s, name, p, sizeof p, err, errcap);
    if (rc != 0)
        return rc;
    if (unlink(p) != 0 && errno != ENOENT)
        return store_errf(err, errcap, EDB_IO, "removing '%s': %s", p, strerror(errno));
    return 0;
}

int
store_delete(store *s, const char *name, char *err, size_t errcap)
{
    if (s->dir)
        return dir_delete(s, name, err, errcap);
    return store_s3_delete(s, name, err, errcap);
}

static int
dir_head(store *s, const char *name, uint64_t *size, char *err, size_t errcap)
{
    char p[4400];
    int rc = dir_path(s, name, p, sizeof p, err, errcap);
    if (rc != 0)
        return rc;
    struct stat st;
    if (stat(p, &st) != 0)
        return store_errf(err, errcap, errno == ENOENT ? EDB_NOTFOUND : EDB_IO, "'%s': %s", p, strerror(errno));
    *size = (uint64_t)st.st_size;
    return 0;
}

int
store_head(store *s, const char *name, uint64_t *size, char *err, size_t errcap)
{
    *size = 0;
    if (s->dir)
        return dir_head(s, name, size, err, errcap);
    return store_s3_head(s, name, size, err, errcap);
}

int
store_abort_uploads(store *s, bool (*pick)(const char *name), unsigned *aborted, char *err, size_t errcap)
{
    *aborted = 0;
    if (s->dir)
        return 0;           /* a directory has no uploads in progress */
    return store_s3_abort_uploads(s, pick, aborted, err, errcap);
}

/*
 * store.h: where a backup repository keeps its objects (store.c): a
 * directory, or a bucket of an S3-compatible object store (s3://BUCKET/PREFIX,
 * spoken with libcurl and its SigV4 signing).  The repository (repo.c,
 * cmd_repo.c) names objects by their file name ("catalog.json",
 * "000001-full.edbk", ...); the store maps the name to DIR/NAME or to the key
 * PREFIX/NAME, so the layout is the same in both.
 *
 * Errors: every function returns 0 or an EDB code, with the message (never a
 * credential) in the caller's @err buffer; EDB_NOTFOUND for a missing object,
 * EDB_CANCELED when the cancel check said so, EDB_IO for the rest (network,
 * timeouts, HTTP errors; the message says which).
 *
 * Thread safety: a store is used by one thread at a time (dbtool's main thread).
 */
#ifndef DBTOOL_STORE_H
#define DBTOOL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;

typedef struct store_opts {
    const char *endpoint;       /* --s3-endpoint URL; NULL: AWS for the region */
    const char *region;         /* --s3-region; NULL: $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1 */
    bool path_style;            /* --s3-path-style: ENDPOINT/BUCKET/KEY, not BUCKET.HOST/KEY */
    unsigned timeout_s;         /* --s3-timeout: 0 means 60 */
    uint64_t part_size;         /* --s3-part-size: 0 means 8 MiB */
} store_opts;

/* Polled during every wait (at least every 100 ms): true stops the operation
 * at once with EDB_CANCELED. */
typedef bool (*store_cancel_fn)(void *ctx);
/* Called by store_put_stream after the stream's end, before the object is
 * made visible: nonzero refuses it (the upload is aborted). */
typedef int (*store_commit_fn)(void *ctx);

/* The dbtool options of a store: consumes argv[*i] (and its value) when it
 * is one of --s3-endpoint, --s3-region, --s3-path-style, --s3-timeout,
 * --s3-part-size and returns 0; 1: not one of them; else a usage error
 * (printed; DBT_USAGE). */
int store_parse_opt(store_opts *o, const char *cmd, int argc, char **argv, int *i);
bool store_is_s3(const char *url);

/* Open URL (a directory, created when @create, or s3://BUCKET[/PREFIX]). */
int store_open(store **out, const char *url, const store_opts *o, bool create, char *err, size_t errcap);
void store_close(store *s);
void store_set_cancel(store *s, store_cancel_fn fn, void *ctx);
/* The directory of a directory store, NULL for a bucket. */
const char *store_dir(const store *s);

/* Replace object @name with @len bytes, atomically (a directory: temporary
 * file, fsync, rename, directory fsync; a bucket: one PUT). */
int store_put(store *s, const char *name, const void *data, size_t len, char *err, size_t errcap);
/* Upload everything @fd yields until its end as object @name (a bucket:
 * multipart upload, part by part from memory, no temporary file; aborted
 * with AbortMultipartUpload on any failure, so no object appears).  @commit
 * (may be NULL) is asked before the object is completed.  *bytes: length. */
int store_put_stream(store *s, const char *name, int fd, store_commit_fn commit, void *cctx,
                     uint64_t *bytes, char *err, size_t errcap);
/* Object @name (from @off, @len bytes; @len 0: to its end) to @fd. */
int store_get(store *s, const char *name, int fd, uint64_t off, uint64_t len, char *err, size_t errcap);
/* The whole object into malloc'd memory (*out NUL-terminated; free()). */
int store_get_mem(store *s, const char *name, char **out, size_t *len, char *err, size_t errcap);
/* The names of all objects (not of subdirectories); free with store_names_free. */
int store_list(store *s, char ***names, size_t *n, char *err, size_t errcap);
void store_names_free(char **names, size_t n);
/* Remove @name; a missing object is not an error. */
int store_delete(store *s, const char *name, char *err, size_t errcap);
/* Abort every multipart upload in progress of an object @pick accepts (what
 * a SIGKILLed upload left; a directory has none).  *aborted: how many. */
int store_abort_uploads(store *s, bool (*pick)(const char *name), unsigned *aborted, char *err, size_t errcap);
/* The length of @name; EDB_NOTFOUND when there is none. */
int store_head(store *s, const char *name, uint64_t *size, char *err, size_t errcap);

#endif

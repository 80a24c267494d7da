/*
 * store_impl.h: what the two backends of store.h share inside dbtool: the
 * store itself, the error helper, and the bucket backend's entry points
 * (store_s3.c).  store.c holds the directory backend and sends every
 * operation to one or the other.
 */
#ifndef DBTOOL_STORE_IMPL_H
#define DBTOOL_STORE_IMPL_H

#include <curl/curl.h>

#include "store.h"

#define DEFAULT_PART (8u << 20)
#define MIN_PART (5u << 20)

struct store {
    char *dir;                  /* directory store; NULL for a bucket */
    char *bucket, *prefix;      /* prefix: "" or "a/b/" */
    char *endpoint;             /* scheme://host[:port], no trailing slash */
    char *region, *sigv4;
    bool path_style;
    unsigned timeout_s;
    uint64_t part_size;
    char *key_id, *secret, *token_hdr;
    store_cancel_fn cancel;
    void *cancel_ctx;
    CURL *easy;
    CURLM *multi;
};

/* Formats the message into @err and returns @rc. */
int store_errf(char *err, size_t cap, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* write(2) all of @n bytes, again after EINTR; -1 with errno on failure. */
int store_write_all(int fd, const void *p, size_t n);
/* Appends a copy of @v to the growing array; -1 when out of memory. */
int store_names_add(char ***names, size_t *n, size_t *cap, const char *v);

/* The bucket backend (store_s3.c): the operations of store.h for a store
 * opened on s3://BUCKET[/PREFIX], with the same contracts. */
int store_s3_open(store *s, const char *url, const store_opts *o, char *err, size_t errcap);
void store_s3_close(store *s);
int store_s3_put(store *s, const char *name, const void *data, size_t len, char *err, size_t errcap);
int store_s3_put_stream(store *s, const char *name, int fd, store_commit_fn commit, void *cctx,
                        uint64_t *bytes, char *err, size_t errcap);
int store_s3_get(store *s, const char *name, int fd, uint64_t off, uint64_t len, char *err, size_t errcap);
int store_s3_get_mem(store *s, const char *name, char **out, size_t *len, char *err, size_t errcap);
int store_s3_list(store *s, char ***names, size_t *n, char *err, size_t errcap);
int store_s3_delete(store *s, const char *name, char *err, size_t errcap);
int store_s3_head(store *s, const char *name, uint64_t *size, char *err, size_t errcap);
int store_s3_abort_uploads(store *s, bool (*pick)(const char *name), unsigned *aborted, char *err,
                           size_t errcap);

#endif

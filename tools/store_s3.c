/*
 * store_s3.c: the bucket backend of a repository's store (store.h,
 * store_impl.h): s3://BUCKET/PREFIX, where NAME is the key PREFIX/NAME.
 *
 * Bucket (s3://BUCKET/PREFIX): NAME is the key PREFIX/NAME.  Every request is
 * one libcurl transfer signed by libcurl itself (CURLOPT_AWS_SIGV4); nothing
 * here speaks HTTP, TLS or signing by hand.  Guarantees:
 *  - deadlines: connecting may take --s3-timeout seconds, and a transfer that
 *    moves less than 1 KiB/s for --s3-timeout seconds fails (a stalled or
 *    dripping server), CURLOPT_LOW_SPEED_*;
 *  - cancel: the transfer runs on a multi handle polled every 50 ms, and the
 *    xferinfo callback too asks the cancel check (dbtool: a pending SIGINT,
 *    SIGTERM, SIGHUP), so a stop ends a request within about 50 ms;
 *  - retries: a 5xx answer or a connection refused, reset or closed without
 *    an answer is tried again up to 4 times, after 0.2, 0.4, 0.8, 1.6 s (the
 *    waits are cancellable); a 4xx answer and a timeout never are;
 *  - credentials: from $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY,
 *    $AWS_SESSION_TOKEN or ~/.aws/credentials ($AWS_SHARED_CREDENTIALS_FILE,
 *    profile $AWS_PROFILE or "default"); handed to libcurl only, never put
 *    in a message (messages name the method, the key and the HTTP status);
 *  - libcurl is not linked: it is loaded with dlopen (libcurl.so.4, the
 *    soname of libcurl's ABI 4, which every libcurl since 7.16 keeps) when
 *    the first bucket store is opened, once per process, and kept until the
 *    process ends; commands that never open an s3:// repository never map
 *    it.  Without it, opening a bucket store fails with "S3 repositories
 *    need libcurl: <dlerror()>".
 */
#include "config.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dbtool.h"
#include "store_impl.h"

#define MAX_TRIES 5


/* ---- libcurl, loaded on first use ---- */

/* Every libcurl function called here, without its "curl_" prefix: the table
 * member cu.easy_setopt points at curl_easy_setopt, typed by curl.h's own
 * declaration (__typeof__; the variadic ones, curl_easy_setopt and
 * curl_easy_getinfo, keep their variadic type and are called through it).
 * The members do not take the functions' names, which curl.h may define as
 * type-checking macros. */
#define CURL_FUNCS(X) \
    X(easy_cleanup) X(easy_escape) X(easy_getinfo) X(easy_init) X(easy_reset) \
    X(easy_setopt) X(easy_strerror) X(free) X(global_init) X(multi_add_handle) \
    X(multi_cleanup) X(multi_info_read) X(multi_init) X(multi_perform) X(multi_poll) \
    X(multi_remove_handle) X(slist_append) X(slist_free_all)
#define CURL_SONAME "libcurl.so.4"

/* Written once by curl_load (under curl_once), read-only after. */
static struct {
#define CURL_FIELD(n) __typeof__(curl_##n) *n;
    CURL_FUNCS(CURL_FIELD)
#undef CURL_FIELD
} cu;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static bool curl_loaded;
static char curl_error[512];    /* dlerror()'s text, when !curl_loaded */

static void
curl_load(void)
{
    void *lib = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *e = dlerror();
        snprintf(curl_error, sizeof curl_error, "%s", e ? e : CURL_SONAME);
        return;
    }
    void *p;
#define CURL_SYM(n) \
    if ((p = dlsym(lib, "curl_" #n)) == NULL) { \
        const char *e = dlerror(); \
        snprintf(curl_error, sizeof curl_error, CURL_SONAME " has no curl_" #n ": %s", e ? e : "?"); \
        memset(&cu, 0, sizeof cu); \
        dlclose(lib); \
        return; \
    } \
    cu.n = (__typeof__(cu.n))p;
    CURL_FUNCS(CURL_SYM)
#undef CURL_SYM
    if (cu.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(curl_error, sizeof curl_error, "curl_global_init failed");
        return;     /* kept loaded: libcurl may hold half of its state */
    }
    curl_loaded = true;
}


/* ---- bucket: requests ---- */

typedef struct req {
    const char *method;         /* GET PUT POST DELETE HEAD */
    const char *name;           /* object name; NULL: the bucket itself */
    const char *query;          /* "" or "uploads" or "partNumber=1&uploadId=..." (escaped) */
    const char *body;           /* PUT/POST body */
    size_t body_len;
    int out_fd;                 /* GET: -1 to collect into out */
    uint64_t off, len;          /* GET range; len 0: to the end */
    /* results */
    long code;
    char *out;
    size_t out_len, out_cap;
    size_t sent;
    char etag[256];
    uint64_t clen;
    bool have_clen;
    bool write_failed;
    /* While the request runs: read ahead from side_fd into side_buf (the
     * next part of a multipart upload), so copying and uploading overlap. */
    int side_fd;                /* -1: none */
    char *side_buf;
    size_t side_cap, side_got;
    bool side_eof;
    int side_errno;
    long total_ms;              /* 0, or a deadline for the whole request */
} req;

static size_t
on_read(char *buf, size_t size, size_t n, void *ud)
{
    req *q = ud;
    size_t left = q->body_len - q->sent, want = size * n;
    if (want > left)
        want = left;
    memcpy(buf, q->body + q->sent, want);
    q->sent += want;
    return want;
}

static size_t
on_write(char *p, size_t size, size_t n, void *ud)
{
    req *q = ud;
    size_t len = size * n;
    bool ok2xx = q->code == 0 || (q->code >= 200 && q->code < 300);
    if (q->out_fd >= 0 && ok2xx) {
        if (store_write_all(q->out_fd, p, len) != 0) {
            q->write_failed = true;
            return 0;
        }
        return len;
    }
    if (q->out_len + len + 1 > q->out_cap) {
        size_t nc = q->out_cap ? q->out_cap : 4096;
        while (nc < q->out_len + len + 1)
            nc *= 2;
        char *np = realloc(q->out, nc);
        if (np == NULL)
            return 0;
        q->out = np;
        q->out_cap = nc;
    }
    memcpy(q->out + q->out_len, p, len);
    q->out_len += len;
    q->out[q->out_len] = '\0';
    return len;
}

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
    req *q = ud;
    size_t len = size * n;
    if (len > 5 && strncasecmp(p, "HTTP/", 5) == 0) {
        /* a new response (after 100 Continue or a redirect): status from it */
        sscanf(p, "HTTP/%*s %ld", &q->code);
    } else if (len > 5 && strncasecmp(p, "ETag:", 5) == 0) {
        const char *v = p + 5;
        while (*v == ' ')
            v++;
        size_t vl = len - (size_t)(v - p);
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl < sizeof q->etag) {
            memcpy(q->etag, v, vl);
            q->etag[vl] = '\0';
        }
    } else if (len > 15 && strncasecmp(p, "Content-Length:", 15) == 0) {
        q->clen = strtoull(p + 15, NULL, 10);
        q->have_clen = true;
    }
    return len;
}

static int
on_xfer(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    store *s = ud;
    return s->cancel != NULL && s->cancel(s->cancel_ctx) ? 1 : 0;
}

/* A tag's text from an XML answer (first one after *from), entities decoded. */
static char *
xml_tag(const char *xml, const char *tag, const char **from)
{
    if (xml == NULL)
        return NULL;
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(from && *from ? *from : xml, open);
    if (a == NULL)
        return NULL;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (b == NULL)
        return NULL;
    if (from)
        *from = b + strlen(close);
    char *o = malloc((size_t)(b - a) + 1), *w = o;
    if (o == NULL)
        return NULL;
    static const struct { const char *ent; char c; } ents[] = {
        { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
    };
    while (a < b) {
        bool done = false;
        for (size_t k = 0; k < sizeof ents / sizeof ents[0] && !done; k++) {
            size_t el = strlen(ents[k].ent);
            if ((size_t)(b - a) >= el && strncmp(a, ents[k].ent, el) == 0) {
                *w++ = ents[k].c;
                a += el;
                done = true;
            }
        }
        if (!done)
            *w++ = *a++;
    }
    *w = '\0';
    return o;
}

/* The URL of @name (escaped per path segment) with @query. */
static char *
make_url(store *s, const char *name, const char *query)
{
    size_t cap = strlen(s->endpoint) + strlen(s->bucket) + 3 * (strlen(s->prefix) + (name ? strlen(name) : 0)) +
                 (query ? strlen(query) : 0) + 16;
    char *u = malloc(cap);
    if (u == NULL)
        return NULL;
    size_t n = 0;
    if (s->path_style) {
        n = (size_t)snprintf(u, cap, "%s/%s/", s->endpoint, s->bucket);
    } else {
        const char *h = strstr(s->endpoint, "://") + 3;
        n = (size_t)snprintf(u, cap, "%.*s%s.%s/", (int)(h - s->endpoint), s->endpoint, s->bucket, h);
    }
    if (name != NULL) {
        char key[2048];
        snprintf(key, sizeof key, "%s%s", s->prefix, name);
        for (const char *c = key; *c; c++) {
            bool plain = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                         strchr("-._~/", *c) != NULL;
            if (plain)
                u[n++] = *c;
            else
                n += (size_t)snprintf(u + n, cap - n, "%%%02X", (unsigned char)*c);
        }
    }
    u[n] = '\0';
    if (query != NULL && query[0] != '\0')
        snprintf(u + n, cap - n, "?%s", query);
    return u;
}

static double
mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool
sleep_cancellable(store *s, unsigned ms)
{
    for (unsigned t = 0; t < ms; t += 50) {
        if (s->cancel != NULL && s->cancel(s->cancel_ctx))
            return false;
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return true;
}

static const char *
what_of(const req *q)
{
    return q->name ? q->name : "(bucket)";
}

/* One request, retried as the header says.  0 with q->code set for any HTTP
 * answer (the caller judges the status), else an EDB code with a message. */
static int
perform(store *s, req *q, char *err, size_t errcap)
{
    char *url = make_url(s, q->name, q->query);
    if (url == NULL)
        return store_errf(err, errcap, EDB_NOMEM, "out of memory");
    int ret = 0;
    for (int attempt = 0;; attempt++) {
        CURL *c = s->easy;
        cu.easy_reset(c);
        q->code = 0;
        q->sent = 0;
        q->out_len = 0;
        q->etag[0] = '\0';
        q->have_clen = false;
        q->write_failed = false;
        if (q->out_fd >= 0) {
            if (ftruncate(q->out_fd, 0) != 0 && errno != EINVAL) {
                /* a pipe cannot be rewound: no retry then (below) */
            }
            lseek(q->out_fd, 0, SEEK_SET);
        }
        char errbuf[CURL_ERROR_SIZE] = "";
        struct curl_slist *h = NULL;
        if (s->token_hdr)
            h = cu.slist_append(h, s->token_hdr);
        /* The body is not part of the signature (TLS protects it); curl
         * takes this header's value as the payload hash it signs. */
        h = cu.slist_append(h, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
        if (strcmp(q->method, "POST") == 0)
            h = cu.slist_append(h, "Content-Type: application/xml");
        char range[96];
        if (q->off || q->len) {
            if (q->len)
                snprintf(range, sizeof range, "Range: bytes=%" PRIu64 "-%" PRIu64, q->off, q->off + q->len - 1);
            else
                snprintf(range, sizeof range, "Range: bytes=%" PRIu64 "-", q->off);
            h = cu.slist_append(h, range);
        }
        cu.easy_setopt(c, CURLOPT_URL, url);
        cu.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        cu.easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        cu.easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
        cu.easy_setopt(c, CURLOPT_USERNAME, s->key_id);
        cu.easy_setopt(c, CURLOPT_PASSWORD, s->secret);
        cu.easy_setopt(c, CURLOPT_HTTPHEADER, h);
        cu.easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)s->timeout_s);
        cu.easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        cu.easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)s->timeout_s);
        cu.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        if (q->total_ms > 0) {
            cu.easy_setopt(c, CURLOPT_TIMEOUT_MS, q->total_ms);
            cu.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, q->total_ms);
        }
        cu.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
        cu.easy_setopt(c, CURLOPT_XFERINFODATA, s);
        cu.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
        cu.easy_setopt(c, CURLOPT_WRITEDATA, q);
        cu.easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        cu.easy_setopt(c, CURLOPT_HEADERDATA, q);
        if (strcmp(q->method, "PUT") == 0) {
            cu.easy_setopt(c, CURLOPT_UPLOAD, 1L);
            cu.easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            cu.easy_setopt(c, CURLOPT_READDATA, q);
            cu.easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
        } else if (strcmp(q->method, "POST") == 0) {
            cu.easy_setopt(c, CURLOPT_POST, 1L);
            cu.easy_setopt(c, CURLOPT_POSTFIELDS, q->body ? q->body : "");
            cu.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        } else if (strcmp(q->method, "HEAD") == 0) {
            cu.easy_setopt(c, CURLOPT_NOBODY, 1L);
        } else if (strcmp(q->method, "DELETE") == 0) {
            cu.easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
        }
        /* Drive it on the multi handle, so a cancel is seen every 50 ms
         * even while nothing moves. */
        CURLcode cc = CURLE_OK;
        bool canceled = false, stalled = false;
        /* Our own low-speed deadline (curl's averages over a few seconds,
         * so a burst then a drip would outlive --s3-timeout): fail when
         * less than 1 KiB moved, either way, for timeout_s seconds. */
        double mark_t = mono_s();
        curl_off_t mark_b = 0;
        cu.multi_add_handle(s->multi, c);
        for (;;) {
            int running = 0;
            CURLMcode mc = cu.multi_perform(s->multi, &running);
            if (mc != CURLM_OK) {
                cc = CURLE_FAILED_INIT;
                break;
            }
            if (running == 0) {
                int left;
                CURLMsg *m = cu.multi_info_read(s->multi, &left);
                cc = m != NULL && m->msg == CURLMSG_DONE ? m->data.result : CURLE_OK;
                break;
            }
            if (s->cancel != NULL && s->cancel(s->cancel_ctx)) {
                canceled = true;
                break;
            }
            curl_off_t up = 0, down = 0;
            cu.easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &up);
            cu.easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &down);
            double t = mono_s();
            if (up + down - mark_b >= 1024) {
                mark_b = up + down;
                mark_t = t;
            } else if (t - mark_t >= (double)s->timeout_s) {
                stalled = true;
                break;
            }
            bool side = q->side_fd >= 0 && !q->side_eof && q->side_errno == 0 && q->side_got < q->side_cap;
            struct curl_waitfd wfd = { .fd = q->side_fd, .events = CURL_WAIT_POLLIN, .revents = 0 };
            cu.multi_poll(s->multi, side ? &wfd : NULL, side ? 1 : 0, 50, NULL);
            if (side && (wfd.revents & (CURL_WAIT_POLLIN | POLLHUP | POLLERR)) != 0) {
                ssize_t r = read(q->side_fd, q->side_buf + q->side_got, q->side_cap - q->side_got);
                if (r > 0)
                    q->side_got += (size_t)r;
                else if (r == 0)
                    q->side_eof = true;
                else if (errno != EINTR && errno != EAGAIN)
                    q->side_errno = errno;
            }
        }
        cu.multi_remove_handle(s->multi, c);
        cu.slist_free_all(h);
        if (cc == CURLE_OK)
            cu.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &q->code);
        if (canceled || cc == CURLE_ABORTED_BY_CALLBACK) {
            ret = store_errf(err, errcap, EDB_CANCELED, "%s '%s': canceled", q->method, what_of(q));
            break;
        }
        if (q->write_failed) {
            ret = store_errf(err, errcap, EDB_IO, "%s '%s': writing the download: %s", q->method, what_of(q),
                             strerror(errno));
            break;
        }
        bool transient = cc == CURLE_COULDNT_CONNECT || cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
                         cc == CURLE_GOT_NOTHING || cc == CURLE_PARTIAL_FILE ||
                         (cc == CURLE_OK && q->code >= 500 && q->code <= 599);
        bool rewindable = q->out_fd < 0 || lseek(q->out_fd, 0, SEEK_CUR) >= 0;
        if (transient && attempt + 1 < MAX_TRIES && rewindable && q->total_ms == 0) {
            if (!sleep_cancellable(s, 200u << attempt)) {
                ret = store_errf(err, errcap, EDB_CANCELED, "%s '%s': canceled", q->method, what_of(q));
                break;
            }
            continue;
        }
        if (stalled)
            cc = CURLE_OPERATION_TIMEDOUT;
        if (cc == CURLE_OPERATION_TIMEDOUT) {
            ret = store_errf(err, errcap, EDB_IO, "%s '%s': the server did not answer or moved less than 1 KiB/s "
                       "for %u s (--s3-timeout)%s%s", q->method, what_of(q), s->timeout_s, errbuf[0] ? ": " : "",
                       errbuf);
        } else if (cc != CURLE_OK) {
            ret = store_errf(err, errcap, EDB_IO, "%s '%s': %s%s%s", q->method, what_of(q), cu.easy_strerror(cc),
                             errbuf[0] ? ": " : "", errbuf);
            if (transient)
                snprintf(err + strlen(err), errcap - strlen(err), " (tried %d times)", attempt + 1);
        }
        break;
    }
    free(url);
    return ret;
}

/* The message of a non-2xx answer. */
static int
http_fail(const req *q, char *err, size_t errcap)
{
    char *code = xml_tag(q->out, "Code", NULL), *msg = xml_tag(q->out, "Message", NULL);
    /* A missing object is EDB_NOTFOUND; a missing bucket is not (the
     * repository would look empty). */
    int rc = q->code == 404 && (code == NULL || strcmp(code, "NoSuchBucket") != 0) ? EDB_NOTFOUND : EDB_IO;
    store_errf(err, errcap, rc, "%s '%s': HTTP %ld%s%s%s%s%s", q->method, what_of(q), q->code,
               q->code == 403 ? " (access denied: check the credentials, the region and the bucket policy)" : "",
         code ? " " : "", code ? code : "", msg ? ": " : "", msg ? msg : "");
    free(code);
    free(msg);
    return rc;
}

static int
s3_do(store *s, req *q, char *err, size_t errcap)
{
    int rc = perform(s, q, err, errcap);
    if (rc == 0 && (q->code < 200 || q->code > 299))
        rc = http_fail(q, err, errcap);
    return rc;
}

/* ---- bucket: open, credentials ---- */

static char *
trimdup(const char *a, const char *b)
{
    while (a < b && (*a == ' ' || *a == '\t'))
        a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r' || b[-1] == '\n'))
        b--;
    return strndup(a, (size_t)(b - a));
}

static void
creds_from_file(store *s, char **token)
{
    char path[4200];
    const char *f = getenv("AWS_SHARED_CREDENTIALS_FILE");
    const char *home = getenv("HOME");
    if (f == NULL && home == NULL)
        return;
    if (f == NULL)
        snprintf(path, sizeof path, "%s/.aws/credentials", home);
    else
        snprintf(path, sizeof path, "%s", f);
    FILE *fp = fopen(path, "re");
    if (fp == NULL)
        return;
    const char *profile = getenv("AWS_PROFILE") ? getenv("AWS_PROFILE") : "default";
    char line[1024];
    bool in = false;
    while (fgets(line, sizeof line, fp) != NULL) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '[') {
            char *e = strchr(p, ']');
            in = e != NULL && (size_t)(e - p - 1) == strlen(profile) && strncmp(p + 1, profile, strlen(profile)) == 0;
            continue;
        }
        char *eq = strchr(p, '=');
        if (!in || eq == NULL)
            continue;
        char *k = trimdup(p, eq), *v = trimdup(eq + 1, p + strlen(p));
        char **dst = k == NULL ? NULL
                   : strcmp(k, "aws_access_key_id") == 0 ? &s->key_id
                   : strcmp(k, "aws_secret_access_key") == 0 ? &s->secret
                   : strcmp(k, "aws_session_token") == 0 ? token : NULL;
        if (dst != NULL && *dst == NULL) {
            *dst = v;
            v = NULL;
        }
        free(k);
        free(v);
    }
    fclose(fp);
}

int
store_s3_open(store *s, const char *url, const store_opts *o, char *err, size_t errcap)
{
    const char *b = url + 5, *slash = strchr(b, '/');
    size_t bl = slash ? (size_t)(slash - b) : strlen(b);
    if (bl < 3 || bl > 63 || strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") < bl)
        return store_errf(err, errcap, EDB_INVAL, "'%s': the bucket name must be 3 to 63 characters of "
                    "a-z, 0-9, '.' and '-'", url);
    s->bucket = strndup(b, bl);
    const char *pre = slash ? slash + 1 : "";
    size_t pl = strlen(pre);
    while (pl > 0 && pre[pl - 1] == '/')
        pl--;
    s->prefix = malloc(pl + 2);
    if (s->bucket == NULL || s->prefix == NULL)
        return store_errf(err, errcap, EDB_NOMEM, "out of memory");
    memcpy(s->prefix, pre, pl);
    if (pl)
        s->prefix[pl++] = '/';
    s->prefix[pl] = '\0';
    const char *region = o->region ? o->region
                       : getenv("AWS_REGION") ? getenv("AWS_REGION")
                       : getenv("AWS_DEFAULT_REGION") ? getenv("AWS_DEFAULT_REGION") : "us-east-1";
    s->region = strdup(region);
    size_t sl = strlen(region) + 32;
    s->sigv4 = malloc(sl);
    if (o->endpoint != NULL) {
        s->endpoint = strdup(o->endpoint);
    } else {
        size_t el = strlen(region) + 40;
        s->endpoint = malloc(el);
        if (s->endpoint)
            snprintf(s->endpoint, el, "https://s3.%s.amazonaws.com", region);
    }
    if (s->region == NULL || s->sigv4 == NULL || s->endpoint == NULL)
        return store_errf(err, errcap, EDB_NOMEM, "out of memory");
    snprintf(s->sigv4, sl, "aws:amz:%s:s3", region);
    size_t el = strlen(s->endpoint);
    while (el > 0 && s->endpoint[el - 1] == '/')
        s->endpoint[--el] = '\0';
    if (strchr(strstr(s->endpoint, "://") + 3, '/') != NULL)
        return store_errf(err, errcap, EDB_INVAL, "--s3-endpoint: give only scheme, host and port (no path)");
    s->path_style = o->path_style;
    s->timeout_s = o->timeout_s ? o->timeout_s : 60;
    s->part_size = o->part_size ? o->part_size : DEFAULT_PART;
    char *token = NULL;
    const char *ek = getenv("AWS_ACCESS_KEY_ID"), *es = getenv("AWS_SECRET_ACCESS_KEY");
    if (ek != NULL && es != NULL && ek[0] && es[0]) {
        s->key_id = strdup(ek);
        s->secret = strdup(es);
        if (getenv("AWS_SESSION_TOKEN") && getenv("AWS_SESSION_TOKEN")[0])
            token = strdup(getenv("AWS_SESSION_TOKEN"));
    } else {
        creds_from_file(s, &token);
    }
    if (s->key_id == NULL || s->secret == NULL) {
        free(token);
        return store_errf(err, errcap, EDB_INVAL, "no S3 credentials: set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, or give them in ~/.aws/credentials");
    }
    if (token != NULL) {
        size_t tl = strlen(token) + 32;
        s->token_hdr = malloc(tl);
        if (s->token_hdr)
            snprintf(s->token_hdr, tl, "x-amz-security-token: %s", token);
        memset(token, 0, strlen(token));
        free(token);
        if (s->token_hdr == NULL)
            return store_errf(err, errcap, EDB_NOMEM, "out of memory");
    }
    pthread_once(&curl_once, curl_load);
    if (!curl_loaded)
        return store_errf(err, errcap, EDB_INVAL, "S3 repositories need libcurl: %s", curl_error);
    s->easy = cu.easy_init();
    s->multi = cu.multi_init();
    if (s->easy == NULL || s->multi == NULL)
        return store_errf(err, errcap, EDB_NOMEM, "libcurl could not start");
    return 0;
}

void
store_s3_close(store *s)
{
    if (s->easy)
        cu.easy_cleanup(s->easy);
    if (s->multi)
        cu.multi_cleanup(s->multi);
}

/* ---- the operations ---- */

static void
req_init(req *q, const char *method, const char *name, const char *query)
{
    memset(q, 0, sizeof *q);
    q->method = method;
    q->name = name;
    q->query = query ? query : "";
    q->out_fd = -1;
    q->side_fd = -1;
}

/* Read up to @cap bytes of @fd, waiting in 100 ms slices for the cancel check. */
static int
read_part(store *s, int fd, char *buf, size_t cap, size_t *got, char *err, size_t errcap)
{
    *got = 0;
    while (*got < cap) {
        if (s->cancel != NULL && s->cancel(s->cancel_ctx))
            return store_errf(err, errcap, EDB_CANCELED, "canceled");
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int pr = poll(&p, 1, 100);
        if (pr < 0 && errno != EINTR)
            return store_errf(err, errcap, EDB_IO, "reading the archive: %s", strerror(errno));
        if (pr <= 0)
            continue;
        ssize_t r = read(fd, buf + *got, cap - *got);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0)
            return store_errf(err, errcap, EDB_IO, "reading the archive: %s", strerror(errno));
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

static void
s3_abort(store *s, const char *name, const char *qid, bool canceled)
{
    /* Best effort even after a cancel: a short request without the check
     * (after a stop, 300 ms at most, so the process still ends at once; an
     * upload left behind is invisible, and a lifecycle rule removes it). */
    store_cancel_fn fn = s->cancel;
    unsigned t = s->timeout_s;
    s->cancel = NULL;
    s->timeout_s = t < 5 ? t : 5;
    char q[1200], e[256];
    snprintf(q, sizeof q, "uploadId=%s", qid);
    req r;
    req_init(&r, "DELETE", name, q);
    r.total_ms = canceled ? 300 : 0;
    s3_do(s, &r, e, sizeof e);
    free(r.out);
    s->cancel = fn;
    s->timeout_s = t;
}

int
store_s3_put(store *s, const char *name, const void *data, size_t len, char *err, size_t errcap)
{
    req q;
    req_init(&q, "PUT", name, NULL);
    q.body = data;
    q.body_len = len;
    int rc = s3_do(s, &q, err, errcap);
    free(q.out);
    return rc;
}

int
store_s3_put_stream(store *s, const char *name, int fd, store_commit_fn commit, void *cctx, uint64_t *bytes,
                    char *err, size_t errcap)
{
    req q;
    req_init(&q, "POST", name, "uploads");
    int rc = s3_do(s, &q, err, errcap);
    char *id = rc == 0 ? xml_tag(q.out, "UploadId", NULL) : NULL;
    free(q.out);
    if (rc != 0)
        return rc;
    if (id == NULL)
        return store_errf(err, errcap, EDB_IO, "POST '%s?uploads': the answer has no UploadId", name);
    char *qid = cu.easy_escape(s->easy, id, 0);
    free(id);
    char *bufs[2] = { malloc((size_t)s->part_size), malloc((size_t)s->part_size) };
    char *buf = bufs[0];
    size_t xcap = 256, xlen = 0;
    char *xml = malloc(xcap);
    if (qid == NULL || bufs[0] == NULL || bufs[1] == NULL || xml == NULL) {
        rc = store_errf(err, errcap, EDB_NOMEM, "out of memory");
        goto fail;
    }
    xlen = (size_t)snprintf(xml, xcap, "<CompleteMultipartUpload>");
    /* Two buffers: part N uploads from one while part N+1 is read into the
     * other (perform's side reader), then the rest of N+1 is read here. */
    size_t got;
    bool eof = false;
    rc = read_part(s, fd, buf, (size_t)s->part_size, &got, err, errcap);
    if (rc != 0)
        goto fail;
    eof = got < s->part_size;
    for (unsigned part = 1;; part++) {
        if (part > 10000) {
            rc = store_errf(err, errcap, EDB_LIMIT, "'%s' needs more than 10000 parts: raise --s3-part-size", name);
            goto fail;
        }
        char *next = buf == bufs[0] ? bufs[1] : bufs[0];
        char qs[1300];
        snprintf(qs, sizeof qs, "partNumber=%u&uploadId=%s", part, qid);
        req_init(&q, "PUT", name, qs);
        q.body = buf;
        q.body_len = got;
        if (!eof) {
            q.side_fd = fd;
            q.side_buf = next;
            q.side_cap = (size_t)s->part_size;
        }
        rc = s3_do(s, &q, err, errcap);
        free(q.out);
        if (rc == 0 && q.side_errno != 0)
            rc = store_errf(err, errcap, EDB_IO, "reading the archive: %s", strerror(q.side_errno));
        if (rc != 0)
            goto fail;
        if (q.etag[0] == '\0') {
            rc = store_errf(err, errcap, EDB_IO, "PUT '%s' part %u: the answer has no ETag", name, part);
            goto fail;
        }
        *bytes += got;
        size_t need = xlen + strlen(q.etag) + 96;
        if (need > xcap) {
            char *nx = realloc(xml, need * 2);
            if (nx == NULL) {
                rc = store_errf(err, errcap, EDB_NOMEM, "out of memory");
                goto fail;
            }
            xml = nx;
            xcap = need * 2;
        }
        xlen += (size_t)snprintf(xml + xlen, xcap - xlen, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>",
                                 part, q.etag);
        if (eof)
            break;
        /* The next part: what the side reader got, then the rest. */
        got = q.side_got;
        if (!q.side_eof && got < s->part_size) {
            size_t more = 0;
            rc = read_part(s, fd, next + got, (size_t)s->part_size - got, &more, err, errcap);
            if (rc != 0)
                goto fail;
            got += more;
        }
        eof = got < s->part_size;
        buf = next;
        if (got == 0)
            break;
    }
    if (xlen + 32 > xcap) {
        char *nx = realloc(xml, xlen + 32);
        if (nx == NULL) {
            rc = store_errf(err, errcap, EDB_NOMEM, "out of memory");
            goto fail;
        }
        xml = nx;
        xcap = xlen + 32;
    }
    xlen += (size_t)snprintf(xml + xlen, xcap - xlen, "</CompleteMultipartUpload>");
    /* The rest of the stream must be empty: a stream that stopped at a
     * part's end is read to its end here. */
    size_t extra = 0;
    rc = read_part(s, fd, buf, 1, &extra, err, errcap);
    if (rc == 0 && extra != 0)
        rc = store_errf(err, errcap, EDB_INTERNAL, "'%s': the stream went on after its last part", name);
    if (rc == 0 && commit != NULL && (rc = commit(cctx)) != 0)
        store_errf(err, errcap, rc, "the archive was refused");
    if (rc != 0)
        goto fail;
    {
        char qs[1200];
        snprintf(qs, sizeof qs, "uploadId=%s", qid);
        req_init(&q, "POST", name, qs);
        q.body = xml;
        q.body_len = xlen;
        rc = s3_do(s, &q, err, errcap);
        /* S3 may answer 200 with an <Error> body to a completion. */
        if (rc == 0 && q.out != NULL && strstr(q.out, "<Error>") != NULL) {
            q.code = 500;
            rc = http_fail(&q, err, errcap);
        }
        free(q.out);
        if (rc != 0)
            goto fail;
    }
    cu.free(qid);
    free(bufs[0]);
    free(bufs[1]);
    free(xml);
    return 0;
fail:
    if (qid != NULL)
        s3_abort(s, name, qid, rc == EDB_CANCELED);
    cu.free(qid);
    free(bufs[0]);
    free(bufs[1]);
    free(xml);
    return rc;
}

int
store_s3_get(store *s, const char *name, int fd, uint64_t off, uint64_t len, char *err, size_t errcap)
{
    req q;
    req_init(&q, "GET", name, NULL);
    q.out_fd = fd;
    q.off = off;
    q.len = len;
    int rc = s3_do(s, &q, err, errcap);
    free(q.out);
    return rc;
}

int
store_s3_get_mem(store *s, const char *name, char **out, size_t *len, char *err, size_t errcap)
{
    req q;
    req_init(&q, "GET", name, NULL);
    int rc = s3_do(s, &q, err, errcap);
    if (rc != 0) {
        free(q.out);
        return rc;
    }
    if (q.out == NULL)
        q.out = calloc(1, 1);
    if (q.out == NULL)
        return store_errf(err, errcap, EDB_NOMEM, "out of memory");
    *out = q.out;
    *len = q.out_len;
    return 0;
}

int
store_s3_list(store *s, char ***names, size_t *n, char *err, size_t errcap)
{
    size_t cap = 0;
    char *token = NULL;
    int rc = 0;
    for (;;) {
        char *ep = cu.easy_escape(s->easy, s->prefix, 0);
        char *et = token ? cu.easy_escape(s->easy, token, 0) : NULL;
        size_t ql = (ep ? strlen(ep) : 0) + (et ? strlen(et) : 0) + 64;
        char *qs = malloc(ql);
        if (ep == NULL || qs == NULL || (token && et == NULL)) {
            cu.free(ep), cu.free(et), free(qs);
            rc = store_errf(err, errcap, EDB_NOMEM, "out of memory");
            break;
        }
        snprintf(qs, ql, "list-type=2&prefix=%s%s%s", ep, et ? "&continuation-token=" : "", et ? et : "");
        cu.free(ep);
        cu.free(et);
        req q;
        req_init(&q, "GET", NULL, qs);
        rc = s3_do(s, &q, err, errcap);
        free(qs);
        if (rc != 0) {
            free(q.out);
            break;
        }
        const char *from = NULL;
        char *k;
        size_t pl = strlen(s->prefix);
        while (rc == 0 && (k = xml_tag(q.out, "Key", &from)) != NULL) {
            if (strncmp(k, s->prefix, pl) == 0 && strchr(k + pl, '/') == NULL &&
                store_names_add(names, n, &cap, k + pl) != 0)
                rc = store_errf(err, errcap, EDB_NOMEM, "out of memory");
            free(k);
        }
        char *trunc = xml_tag(q.out, "IsTruncated", NULL);
        free(token);
        token = trunc && strcmp(trunc, "true") == 0 ? xml_tag(q.out, "NextContinuationToken", NULL) : NULL;
        free(trunc);
        free(q.out);
        if (rc != 0 || token == NULL)
            break;
    }
    free(token);
    if (rc != 0) {
        store_names_free(*names, *n);
        *names = NULL, *n = 0;
    }
    return rc;
}

int
store_s3_delete(store *s, const char *name, char *err, size_t errcap)
{
    req q;
    req_init(&q, "DELETE", name, NULL);
    int rc = s3_do(s, &q, err, errcap);
    free(q.out);
    return rc == EDB_NOTFOUND ? 0 : rc;
}

int
store_s3_head(store *s, const char *name, uint64_t *size, char *err, size_t errcap)
{
    req q;
    req_init(&q, "HEAD", name, NULL);
    int rc = s3_do(s, &q, err, errcap);
    free(q.out);
    if (rc == 0)
        *size = q.clen;
    return rc;
}

int
store_s3_abort_uploads(store *s, bool (*pick)(const char *name), unsigned *aborted, char *err, size_t errcap)
{
    char *ep = cu.easy_escape(s->easy, s->prefix, 0);
    size_t ql = (ep ? strlen(ep) : 0) + 32;
    char *qs = malloc(ql);
    if (ep == NULL || qs == NULL) {
        cu.free(ep);
        free(qs);
        return store_errf(err, errcap, EDB_NOMEM, "out of memory");
    }
    snprintf(qs, ql, "uploads&prefix=%s", ep);
    cu.free(ep);
    req q;
    req_init(&q, "GET", NULL, qs);
    int rc = s3_do(s, &q, err, errcap);
    free(qs);
    size_t pl = strlen(s->prefix);
    for (const char *u = rc == 0 && q.out ? strstr(q.out, "<Upload>") : NULL; u != NULL && rc == 0;
         u = strstr(u + 8, "<Upload>")) {
        const char *end = strstr(u, "</Upload>");
        if (end == NULL)
            break;
        char *block = strndup(u, (size_t)(end - u));
        char *key = block ? xml_tag(block, "Key", NULL) : NULL, *id = block ? xml_tag(block, "UploadId", NULL) : NULL;
        if (key != NULL && id != NULL && strncmp(key, s->prefix, pl) == 0 && strchr(key + pl, '/') == NULL &&
            pick(key + pl)) {
            char *qid = cu.easy_escape(s->easy, id, 0);
            if (qid != NULL) {
                char aq[1200];
                snprintf(aq, sizeof aq, "uploadId=%s", qid);
                req d;
                req_init(&d, "DELETE", key + pl, aq);
                if (s3_do(s, &d, err, errcap) == 0)
                    (*aborted)++;
                free(d.out);
                cu.free(qid);
            }
        }
        free(key);
        free(id);
        free(block);
    }
    free(q.out);
    return rc;
}

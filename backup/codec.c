/*
 * codec.c: zstd for the frames of version-3 archives (codec.h).
 *
 * Why one zstd frame per archive frame, without a dictionary or a stream:
 * a frame must be checkable, restorable and named on its own (verify names a
 * damaged frame's pages, merge copies frames without decoding their
 * neighbours), and a damaged byte must not spoil more than its frame.  The
 * zstd frame carries no checksum: the page hashes over the decompressed
 * pages are the check.
 *
 * Invariants: the decompressed size is given by the caller (the frame's page
 * count times the page size, validated by archive.c before any allocation);
 * a payload that decodes to any other size is EDB_CORRUPT.
 *
 * Thread safety: see codec.h.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <zstd.h>

#include "codec.h"
#include "error.h"
#include "sys.h"

size_t
edb__codec_bound(size_t n)
{
    return ZSTD_compressBound(n);
}

int
edb__codec_compress(size_t *out, edb__codec *c, uint8_t *dst, size_t cap, const uint8_t *src,
                    size_t n, int level)
{
    *out = 0;
    if (c->cctx == NULL) {
        c->cctx = ZSTD_createCCtx();
        if (c->cctx == NULL)
            return edb__err(EDB_NOMEM, "backup: zstd compression context");
        /* The size goes into the frame header, so a decoder can refuse a lie
         * early; no checksum (the page hashes check the pages). */
        (void)ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_contentSizeFlag, 1);
        (void)ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, 0);
    }
    (void)ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, level);
    size_t r = ZSTD_compress2(c->cctx, dst, cap, src, n);
    if (ZSTD_isError(r))
        return edb__err(EDB_IO, "backup: zstd compression failed: %s", ZSTD_getErrorName(r));
    *out = r < n ? r : 0;
    return 0;
}

int
edb__codec_decompress(edb__codec *c, uint8_t *dst, size_t n, const uint8_t *src, size_t stored,
                      const char *what)
{
    if (c->dctx == NULL) {
        c->dctx = ZSTD_createDCtx();
        if (c->dctx == NULL)
            return edb__err(EDB_NOMEM, "archive reader: zstd decompression context");
    }
    /* The first zstd frame says its size (edb's writer always puts it in):
     * more than the frame's pages is a lie, refused before decoding. */
    unsigned long long want = ZSTD_getFrameContentSize(src, stored);
    if (want == ZSTD_CONTENTSIZE_ERROR || want == ZSTD_CONTENTSIZE_UNKNOWN || want > (unsigned long long)n)
        return edb__err(EDB_CORRUPT, "%s: compressed payload damaged (not zstd frames of %zu bytes)",
                        what, n);
    size_t r = ZSTD_decompressDCtx(c->dctx, dst, n, src, stored);
    if (ZSTD_isError(r))
        return edb__err(EDB_CORRUPT, "%s: compressed payload damaged (zstd: %s)", what,
                        ZSTD_getErrorName(r));
    if (r != n)
        return edb__err(EDB_CORRUPT, "%s: compressed payload damaged (%zu bytes instead of %zu)",
                        what, r, n);
    return 0;
}

void
edb__codec_free(edb__codec *c)
{
    if (c == NULL)
        return;
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    c->cctx = NULL;
    c->dctx = NULL;
}

/* ---- the pool ----------------------------------------------------------------- */

typedef struct zhelper {
    struct edb__zpool *pool;
    pthread_t tid;
    edb__codec codec;
    uint8_t *buf;              /* bound(part) bytes: this helper's compressed part */
    /* The job, guarded by pool->mu. */
    const uint8_t *src;
    size_t n, out;
    int level, rc;
    bool busy;
} zhelper;

struct edb__zpool {
    pthread_mutex_t mu;
    pthread_cond_t go, done;   /* go: a job or quit for the helpers; done: a helper finished */
    bool quit;
    unsigned nh;               /* helpers running */
    size_t bufcap;
    zhelper h[];
};

static void *
zhelper_main(void *arg)
{
    zhelper *z = arg;
    edb__zpool *p = z->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && !z->busy)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->quit)
            break;
        const uint8_t *src = z->src;
        size_t n = z->n;
        int level = z->level;
        pthread_mutex_unlock(&p->mu);
        size_t out = 0;
        int rc = 0;
        if (z->codec.cctx == NULL) {
            z->codec.cctx = ZSTD_createCCtx();
            if (z->codec.cctx == NULL)
                rc = EDB_NOMEM;
            else {
                (void)ZSTD_CCtx_setParameter(z->codec.cctx, ZSTD_c_contentSizeFlag, 1);
                (void)ZSTD_CCtx_setParameter(z->codec.cctx, ZSTD_c_checksumFlag, 0);
            }
        }
        if (rc == 0) {
            (void)ZSTD_CCtx_setParameter(z->codec.cctx, ZSTD_c_compressionLevel, level);
            size_t r = ZSTD_compress2(z->codec.cctx, z->buf, p->bufcap, src, n);
            if (ZSTD_isError(r))
                rc = EDB_IO;
            else
                out = r;
        }
        pthread_mutex_lock(&p->mu);
        z->out = out;
        z->rc = rc;
        z->busy = false;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int
edb__zpool_new(edb__zpool **out, unsigned threads, size_t part)
{
    *out = NULL;
    if (threads < 2)
        return 0;
    unsigned want = threads - 1;
    edb__zpool *p = edb__sys_calloc(1, sizeof *p + want * sizeof p->h[0]);
    if (p == NULL)
        return edb__err(EDB_NOMEM, "backup: compression threads");
    p->bufcap = ZSTD_compressBound(part);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return edb__err(EDB_NOMEM, "backup: compression threads' mutex");
    }
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    for (unsigned i = 0; i < want; i++) {
        zhelper *z = &p->h[p->nh];
        memset(z, 0, sizeof *z);
        z->pool = p;
        z->buf = edb__sys_malloc(p->bufcap);
        if (z->buf == NULL)
            break;
        if (edb__sys_thread_create(&z->tid, zhelper_main, z) != 0) {
            free(z->buf);
            z->buf = NULL;
            break;             /* fewer helpers: the frame takes longer, nothing else */
        }
        p->nh++;
    }
    *out = p;
    return 0;
}

void
edb__zpool_free(edb__zpool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nh; i++) {
        pthread_join(p->h[i].tid, NULL);
        edb__codec_free(&p->h[i].codec);
        free(p->h[i].buf);
    }
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

unsigned
edb__zpool_width(const edb__zpool *p)
{
    return p == NULL ? 1 : p->nh + 1;
}

int
edb__zpool_compress(size_t *out, edb__zpool *p, edb__codec *c, uint8_t *dst, size_t cap,
                    const uint8_t *src, size_t n, size_t part, int level)
{
    *out = 0;
    unsigned parts = (unsigned)((n + part - 1) / part);
    if (p == NULL || parts < 2 || parts > edb__zpool_width(p))
        return edb__codec_compress(out, c, dst, cap, src, n, level);
    pthread_mutex_lock(&p->mu);
    for (unsigned i = 1; i < parts; i++) {
        zhelper *z = &p->h[i - 1];
        z->src = src + (size_t)i * part;
        z->n = i + 1 < parts ? part : n - (size_t)i * part;
        z->level = level;
        z->busy = true;
    }
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);

    size_t first = 0;
    int rc = edb__codec_compress(&first, c, dst, cap, src, part, level);

    pthread_mutex_lock(&p->mu);
    for (unsigned i = 1; i < parts; i++)
        while (p->h[i - 1].busy)
            pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    if (rc != 0)
        return rc;
    /* Every part must have shrunk, and the whole with it; else store. */
    if (first == 0)
        return 0;
    size_t total = first;
    for (unsigned i = 1; i < parts; i++) {
        zhelper *z = &p->h[i - 1];
        if (z->rc != 0)
            return edb__err(z->rc, "backup: zstd compression failed in a helper thread");
        if (z->out >= z->n || z->out > cap - total)
            return 0;
        memcpy(dst + total, z->buf, z->out);
        total += z->out;
    }
    *out = total < n ? total : 0;
    return 0;
}

/* ---- encryption (libsodium) ---------------------------------------------------- */

static int
sodium_ready(void)
{
    if (sodium_init() < 0)
        return edb__err(EDB_INTERNAL, "backup: libsodium could not be initialised");
    return 0;
}

int
edb__key_id(uint8_t out[EDB__KEY_ID_BYTES], const uint8_t key[EDB__KEY_BYTES])
{
    EDB_RET(sodium_ready());
    /* BLAKE2b keyed with the key over a fixed context: names the key, and
     * says nothing about it. */
    static const char ctx[] = "edb archive key id v1";
    if (crypto_generichash(out, EDB__KEY_ID_BYTES, (const unsigned char *)ctx, sizeof ctx - 1, key,
                           EDB__KEY_BYTES) != 0)
        return edb__err(EDB_INTERNAL, "backup: key id");
    return 0;
}

int
edb__seal(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t *ad, size_t adlen,
          const uint8_t key[EDB__KEY_BYTES])
{
    EDB_RET(sodium_ready());
    crypto_secretstream_xchacha20poly1305_state st;
    if (crypto_secretstream_xchacha20poly1305_init_push(&st, dst, key) != 0)
        return edb__err(EDB_INTERNAL, "backup: encryption could not start");
    unsigned long long clen;
    int rc = crypto_secretstream_xchacha20poly1305_push(
        &st, dst + crypto_secretstream_xchacha20poly1305_HEADERBYTES, &clen, src, n, ad, adlen,
        crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    sodium_memzero(&st, sizeof st);
    if (rc != 0)
        return edb__err(EDB_INTERNAL, "backup: encryption failed");
    return 0;
}

int
edb__unseal(uint8_t *dst, const uint8_t *src, size_t stored, const uint8_t *ad, size_t adlen,
            const uint8_t key[EDB__KEY_BYTES], const char *what)
{
    EDB_RET(sodium_ready());
    if (stored < EDB__SEAL_OVERHEAD)
        return edb__err(EDB_CHECKSUM, "%s: encrypted payload of %zu bytes is too short", what, stored);
    crypto_secretstream_xchacha20poly1305_state st;
    unsigned char tag = 0;
    unsigned long long mlen;
    int rc = crypto_secretstream_xchacha20poly1305_init_pull(&st, src, key);
    if (rc == 0)
        rc = crypto_secretstream_xchacha20poly1305_pull(
            &st, dst, &mlen, &tag, src + crypto_secretstream_xchacha20poly1305_HEADERBYTES,
            stored - crypto_secretstream_xchacha20poly1305_HEADERBYTES, ad, adlen);
    sodium_memzero(&st, sizeof st);
    if (rc != 0 || tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL ||
        mlen != stored - EDB__SEAL_OVERHEAD)
        return edb__err(EDB_CHECKSUM, "%s: authentication failed (the frame was altered)", what);
    return 0;
}

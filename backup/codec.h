/*
 * codec.h: the frame codec of version-3 archives (zstd, libzstd), one frame's
 * pages at a time, each frame on its own (doc/backup-format.md "Version 3").
 *
 * The only file that calls libzstd.  A context is reused frame after frame
 * by one thread; contexts are created lazily and freed with the owner.
 *
 * Thread safety: a context belongs to one thread at a time.
 */
#ifndef EDB_CODEC_H
#define EDB_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

typedef struct edb__codec {
    void *cctx;              /* ZSTD_CCtx, created on first compress */
    void *dctx;              /* ZSTD_DCtx, created on first decompress */
} edb__codec;

/* Worst-case compressed size of @n bytes (the buffer compress needs). */
size_t edb__codec_bound(size_t n);
/* Compress src[0..n) at @level into dst (@cap >= edb__codec_bound(n)).
 * *out = the compressed size, or 0 when it is not smaller than @n (the frame
 * is then stored).  @return 0, EDB_NOMEM (context), EDB_IO (libzstd failed). */
int edb__codec_compress(size_t *out, edb__codec *c, uint8_t *dst, size_t cap, const uint8_t *src,
                        size_t n, int level);
/* Decompress the @stored bytes at src into exactly @n bytes at dst.
 * @return 0, EDB_NOMEM (context), EDB_CORRUPT (not a zstd frame of exactly
 * @n bytes: a damaged payload), with a detail naming @what. */
int edb__codec_decompress(edb__codec *c, uint8_t *dst, size_t n, const uint8_t *src, size_t stored,
                          const char *what);
/* Free the contexts (the struct itself is the caller's).  NULL is fine. */
void edb__codec_free(edb__codec *c);

/* Encryption (libsodium's crypto_secretstream_xchacha20poly1305), one
 * stream per frame: its 24-byte header, then the one message (tag FINAL) of
 * the payload with its 17-byte tag; the frame header is the message's
 * additional data, so it is authenticated with it. */
#define EDB__KEY_BYTES     32u
#define EDB__KEY_ID_BYTES  16u
#define EDB__SEAL_OVERHEAD (24u + 17u)
/* The key id written in the header: BLAKE2b-128 keyed with the key over a
 * fixed context string (it names the key and reveals nothing of it).
 * @return 0, EDB_INTERNAL. */
int edb__key_id(uint8_t out[EDB__KEY_ID_BYTES], const uint8_t key[EDB__KEY_BYTES]);
/* Encrypt src[0..n) into dst (n + EDB__SEAL_OVERHEAD bytes, not overlapping
 * src), authenticating ad[0..adlen) with it.  @return 0, EDB_INTERNAL. */
int edb__seal(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t *ad, size_t adlen,
              const uint8_t key[EDB__KEY_BYTES]);
/* Decrypt and authenticate the @stored bytes at src into dst (stored -
 * EDB__SEAL_OVERHEAD bytes).  @return 0, EDB_CHECKSUM (altered, cut, or not
 * sealed with this key and ad) with a detail starting with @what. */
int edb__unseal(uint8_t *dst, const uint8_t *src, size_t stored, const uint8_t *ad, size_t adlen,
                const uint8_t key[EDB__KEY_BYTES], const char *what);

/* A pool of helper threads that compress parts of one frame while the
 * calling thread compresses the first part: the payload is then the parts'
 * zstd frames one after the other (a zstd decoder reads concatenated frames
 * as one content).  The helpers wait only on the pool's condition variable
 * and never on the ring, so a job always ends within one part's compression;
 * edb__zpool_free() joins them.
 * Thread safety: one calling thread (the copier); the pool's fields are
 * guarded by its mutex. */
typedef struct edb__zpool edb__zpool;
/* A pool for @threads compressing threads in all (the caller included), parts
 * of at most @part bytes.  Fewer helpers when threads cannot be created (the
 * frame is then compressed by fewer threads); *out NULL when @threads < 2.
 * @return 0, EDB_NOMEM. */
int edb__zpool_new(edb__zpool **out, unsigned threads, size_t part);
/* Join the helpers and free everything.  NULL is fine. */
void edb__zpool_free(edb__zpool *p);
/* How many parts a job may have (helpers + 1). */
unsigned edb__zpool_width(const edb__zpool *p);
/* Compress src[0..n) in parts of @part bytes (the last one shorter; at most
 * edb__zpool_width() parts) into dst, one zstd frame a part; *out = the
 * payload's size, or 0 when it is not smaller than @n.  @c compresses the
 * first part on the calling thread.  @return 0, EDB_NOMEM, EDB_IO. */
int edb__zpool_compress(size_t *out, edb__zpool *p, edb__codec *c, uint8_t *dst, size_t cap,
                        const uint8_t *src, size_t n, size_t part, int level);

#endif

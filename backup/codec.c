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

#include <zstd.h>

#include "codec.h"
#include "error.h"

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
    unsigned long long want = ZSTD_getFrameContentSize(src, stored);
    if (want != (unsigned long long)n)
        return edb__err(EDB_CORRUPT, "%s: compressed payload damaged (not a zstd frame of %zu bytes)",
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

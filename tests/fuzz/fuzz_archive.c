/*
 * fuzz_archive.c: libFuzzer target for the archive reader (backup/reader.c and
 * the block decoders of backup/archive.c).  Built by scripts/fuzz-archive.sh
 * with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, which makes the hash checks
 * pass so that mutated inputs reach the structural checks behind them.
 * Invariant checked: any input is either accepted or refused with a named
 * EDB_* code and a detail; nothing crashes, leaks or reads out of bounds.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reader.h"

static int
on_page(void *ctx, const edb__arch_header *h, uint64_t frame, uint64_t pgno, const uint8_t *page)
{
    (void)frame;
    uint64_t *sum = ctx;
    *sum += page[0] + page[h->page_size - 1] + pgno;   /* touch both ends of the page */
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("archive", MFD_CLOEXEC);
        if (fd < 0)
            abort();
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size ||
        lseek(fd, 0, SEEK_SET) != 0)
        abort();
    uint64_t sum = 0;
    edb__reader_cbs cbs = { NULL, on_page, NULL, &sum };
    edb__archive a;
    int rc = edb__reader_read(&a, fd, &cbs);
    if (rc > 0 || (rc < 0 && strncmp(edb_error_last(), "EDB_", 4) != 0))
        abort();
    if (rc == 0 && (a.table == NULL || a.trailer.npages < 2))
        abort();
    edb__archive_free(&a);
    return 0;
}

/*
 * fuzz_reader.c: libFuzzer target for the streaming archive reader
 * (backup/reader.c) and edb_backup_verify() (backup/verify.c).
 *
 * Each input is an archive.  It is read twice: as given, and after fixup.h
 * has recomputed every hash, so that mutations of structure (counts, page
 * numbers, npages, the meta, lengths) reach the checks behind the hashes.
 * The bytes go through a memfd, as a file would.  Properties besides "no
 * crash, no sanitizer report, no leak":
 * - the reader and verify return 0 or a code they document, and agree;
 * - an accepted archive is consistent: its length is the input's, every
 *   carried page is below npages and its table entry equals its page hash.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "archive.h"
#include "edb.h"
#include "edb_backup.h"
#include "fixup.h"
#include "reader.h"

static int memfd = -1;
static volatile uint8_t sink;

static void
load(const uint8_t *p, size_t n)
{
    if (memfd < 0) {
        memfd = memfd_create("fuzz-archive", 0);
        if (memfd < 0)
            abort();
    }
    if (ftruncate(memfd, 0) != 0 || (n && pwrite(memfd, p, n, 0) != (ssize_t)n))
        abort();
    if (lseek(memfd, 0, SEEK_SET) != 0)
        abort();
}

static int
on_page(void *ctx, const edb__arch_header *h, uint64_t frame, uint64_t pgno, const uint8_t *page,
        const edb__arch_hash *hash)
{
    (void)frame;
    if (pgno < 2 || pgno >= h->max_pages)
        abort();
    /* The hash handed over is the page's (restore writes it as proven). */
    edb__arch_hash ph;
    edb__arch_page_hash(&ph, page, h->page_size, pgno);
    if (!edb__arch_hash_eq(&ph, hash))
        abort();
    /* Touch every byte: ASan sees a page pointer that runs past its buffer. */
    uint8_t x = 0;
    for (uint32_t i = 0; i < h->page_size; i += 64)
        x ^= page[i];
    sink = x ^ page[h->page_size - 1];
    (*(uint64_t *)ctx)++;
    return 0;
}

static void
problem(void *ctx, const edb_backup_problem *p)
{
    if (p->message == NULL || strncmp(p->message, "EDB_", 4) != 0)
        abort();
    (*(uint64_t *)ctx)++;
}

/* The key of the encrypted seeds (tests/fuzz/gen_corpus.c): encrypted
 * frames are decrypted and reach every check behind the seal. */
static const uint8_t FUZZ_KEY[32] = "edb fuzz key: 32 bytes, no use.";

static void
one(const uint8_t *p, size_t n)
{
    uint64_t pages = 0;
    edb__reader_cbs cbs = { .on_page = on_page, .ctx = &pages, .key = FUZZ_KEY };
    edb__archive a;
    load(p, n);
    int rc = edb__reader_read(&a, memfd, &cbs);
    if (rc != 0 && rc != EDB_CORRUPT && rc != EDB_CHECKSUM && rc != EDB_VERSION &&
        rc != EDB_NOMEM && rc != EDB_AUTH)
        abort();
    if (rc == 0) {
        if (a.length != n)
            abort();
        for (size_t i = 0; i < a.ncarried; i++) {
            const edb__carried *c = &a.carried[i];
            if (c->pgno < 2 || c->pgno >= a.trailer.npages)
                abort();
            if (edb__archive_carried(&a, c->pgno) != c)
                abort();
            if (!edb__arch_hash_eq(&c->hash, &a.table[c->pgno]))
                abort();
        }
    }
    edb__archive_free(&a);

    load(p, n);
    uint64_t problems = 0;
    edb_backup_info info;
    edb_backup_source src = { .path = NULL, .fd = memfd, .name = "fuzz", .key = FUZZ_KEY };
    int vrc = edb_backup_verify(&info, &src, 1, problem, &problems);
    if ((vrc == 0) != (rc == 0))
        abort();                            /* reader and verify disagree */
    if (vrc != 0 && problems == 0)
        abort();                            /* a refusal without a problem report */
    if (vrc == 0 && (info.archives != 1 || info.bytes != n))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    fx_fixup(copy, size);
    one(copy, size);
    free(copy);
    return 0;
}

/*
 * archive_fixture.h: a test-only archive writer built on backup/archive.h, so
 * that verify and restore can be tested on exact, hand-made archives (good and
 * subtly bad) independently of the library's copier, plus LMDB helpers.
 */
#ifndef EDB_ARCHIVE_FIXTURE_H
#define EDB_ARCHIVE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "archive.h"

/* A database image: the pages of a closed LMDB data.mdb. */
typedef struct fx_image {
    uint8_t *data;          /* npages * page_size */
    uint32_t page_size;
    uint64_t npages;        /* last_pg + 1 of the newest meta */
    uint64_t txnid;
    uint64_t max_pages;
    uint8_t meta[EDB__ARCH_META_SIZE];
} fx_image;

/* An archive in memory. */
typedef struct fx_archive {
    uint8_t *data;
    size_t len;
    edb__arch_header header;
    edb__arch_hash archive_hash;
    edb__arch_hash *table;  /* npages entries */
    uint64_t npages;
    /* offsets of the blocks, for corruption tests */
    size_t trailer_off, table_off, end_off;
    size_t nframes;
    size_t frame_off[4096];
} fx_archive;

/* Extra pages to append in a last frame (after the regular ones), for tests of
 * repeats and out-of-range page numbers: content is filled with @fill. */
typedef struct fx_extra {
    uint64_t pgno;
    uint8_t fill;
} fx_extra;

int  fx_image_load(fx_image *out, const char *dbdir);
void fx_image_free(fx_image *img);

/* Build a full archive of @img (all pages 2..npages-1), or an incremental on
 * @base (pages that differ or lie past base's npages).  @flags adds header
 * flags (LOW_PIN, KEEP_FREE).  @per_frame pages per frame (1..168). */
void fx_build(fx_archive *out, const fx_image *img, const fx_archive *base, uint32_t flags,
              uint32_t per_frame, const fx_extra *extra, size_t nextra);
void fx_archive_free(fx_archive *a);
/* When set, fx_build leaves all-zero pages out of a full archive (and those
 * past the base's end out of an incremental), as a backup leaves free pages
 * out (restore writes them as zeros). */
extern int fx_skip_zero_pages;
/* Write @len bytes of @a to @path (0600); returns 0 or -1. */
int  fx_write(const char *path, const void *data, size_t len);
/* Re-seal the block at @off after a test changed a field, and recompute the
 * archive hash in the end block so that only the field is wrong. */
void fx_reseal(fx_archive *a, size_t off);

/* LMDB helpers: a database with @n records (key i, value of size 10..900 from
 * @seed) created or updated in @dir; delete every @del_every-th key (0: none). */
void fx_db_fill(const char *dir, unsigned n, unsigned seed, unsigned del_every);
/* mdb_dump -a of @dir into a malloc'ed string. */
char *fx_dump(const char *dir);
/* Run a shell command, return its exit status. */
int  fx_sh(const char *fmt, ...);
/* A fresh mkdtemp directory; remove it with fx_rmrf. */
char *fx_tmpdir(void);
void fx_rmrf(const char *dir);
/* Entries in @dir other than . and .., as a sorted '\n'-joined list (malloc'ed). */
char *fx_ls(const char *dir);

#endif

/*
 * manifest.h: what an archive says about itself without its pages
 * (edb_backup_describe), and the manifest file (doc/backup-format.md,
 * "Manifest"): an archive's identity and page hash table in a small
 * checksummed file, usable as the base of an incremental backup.
 *
 * Thread safety: reentrant.
 */
#ifndef EDB_MANIFEST_H
#define EDB_MANIFEST_H

#include <stdint.h>

#include "archive.h"
#include "base.h"

#define EDB__MAN_MAGIC   "EDBKMAN\n"   /* 8 bytes */
#define EDB__MAN_VERSION 1u

/* The manifest block (offsets in doc/backup-format.md). */
typedef struct edb__man_header {
    uint32_t version;
    uint32_t page_size;
    uint32_t flags;              /* the archive's header flags */
    uint8_t backup_id[16];
    uint8_t base_id[16];
    edb__arch_hash archive_hash; /* the archive's end block */
    uint64_t npages;
    uint64_t txnid;
    uint64_t created_us;
    uint64_t frames;
    uint64_t pages;
    uint64_t length;             /* the archive's bytes */
    edb__arch_hash table_hash;   /* H(table with its padding, 0) */
    uint8_t meta[EDB__ARCH_META_SIZE];
} edb__man_header;

void edb__man_encode(uint8_t block[EDB__ARCH_BLOCK], const edb__man_header *m);
/* Magic, version (EDB_VERSION), block hash (EDB_CHECKSUM), page size, flags,
 * reserved bytes, 2 <= npages, meta magic and last_pg + 1 == npages. */
int edb__man_decode(edb__man_header *out, const uint8_t block[EDB__ARCH_BLOCK], const char *name);

/* True when @block starts with the manifest magic. */
bool edb__man_is(const uint8_t block[EDB__ARCH_BLOCK]);

/* Load the manifest open on @fd (named @path) as the base of an incremental
 * backup: the block, the table and its padding (its hash must be table_hash),
 * the meta entries (hashes of the meta), nothing after.  The result is what
 * edb__base_load() gives for the archive itself.  EDB_CORRUPT, EDB_CHECKSUM,
 * EDB_VERSION, EDB_IO, EDB_NOMEM; on failure @out owns nothing. */
int edb__man_load_base(edb__base *out, int fd, const char *path);

/* A file that appears under its name only when complete: a hidden
 * temporary file beside @path (O_EXCL|O_NOFOLLOW, mode 0600), fsynced and
 * renamed by edb__atomic_commit(), then the directory fsynced.  Without
 * EDB_SAVE_OVERWRITE an existing @path is EDB_EXISTS (checked at open, and by
 * RENAME_NOREPLACE where the file system has it). */
typedef struct edb__atomic {
    int fd;                  /* write here */
    unsigned flags;
    char path[4096], dir[4096], tmp[4200];
} edb__atomic;
int edb__atomic_open(edb__atomic *a, const char *path, unsigned flags);
/* fsync, rename, fsync the directory; on failure the temporary file is removed. */
int edb__atomic_commit(edb__atomic *a);
/* Remove the temporary file (NULL-state safe, idempotent). */
void edb__atomic_abort(edb__atomic *a);

#endif

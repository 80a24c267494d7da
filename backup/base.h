/*
 * base.h: the base of an incremental backup: what a new archive needs from
 * the archive it builds on (doc/backup-format.md, header base_* fields and
 * the page hash table).
 *
 * Thread safety: edb__base_load() is reentrant; a loaded base is plain memory.
 */
#ifndef EDB_BASE_H
#define EDB_BASE_H

#include <stdint.h>

#include "archive.h"

typedef struct edb__base {
    uint8_t backup_id[16];       /* the base's header backup_id */
    edb__arch_hash archive_hash; /* the base's end block archive_hash */
    uint32_t page_size;
    unsigned flags;              /* the base's EDB__ARCH_F_* */
    uint64_t npages;             /* the base's trailer npages */
    uint64_t txnid;              /* the base's final snapshot */
    uint64_t length;             /* archive bytes */
    edb__arch_hash *table;       /* npages entries: hash of every page as restored */
} edb__base;

/*
 * Load the archive at @path as a base: read its header, walk its frame
 * header blocks (seeking over the pages), read its trailer, page hash table
 * and end block.  Every block is validated with archive.c (block hashes,
 * magics, ranges, frame sequence, trailer counts, length), the table padding
 * must be zero, the table's entries for the meta pages must be the hashes of
 * the trailer's meta, and for every page a frame carries (the last frame, for
 * a low-pin archive) the table entry must equal the frame entry.  The pages
 * themselves are not read and the archive hash is taken from the end block
 * without hashing the whole file: a base costs a few reads per 64 pages, not a
 * second copy of the database (restore and verify check the whole chain).
 * @path must be a regular file (a pipe cannot be walked).
 * @return 0; EDB_NOTFOUND (no such file); EDB_INVAL (@path NULL or not a
 *         regular file); EDB_CORRUPT / EDB_CHECKSUM / EDB_VERSION (not a
 *         complete, valid archive); EDB_IO; EDB_NOMEM.  On failure @out is
 *         zeroed and owns nothing.
 */
int edb__base_load(edb__base *out, const char *path);

/* Free what a successful edb__base_load() allocated.  NULL-safe, idempotent. */
void edb__base_free(edb__base *b);

#endif

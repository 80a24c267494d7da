/*
 * chain.h: what verify.c and restore.c share: opening an archive source and
 * checking one link of an archive chain (doc/backup-format.md, reader check 6).
 *
 * Thread safety: reentrant.
 */
#ifndef EDB_CHAIN_H
#define EDB_CHAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "archive.h"
#include "edb_backup.h"

/* An archive already read, as the next link sees it. */
typedef struct edb__link {
    uint8_t backup_id[16];
    edb__arch_hash archive_hash;
    uint64_t npages;
    uint32_t page_size;
    char name[256];
} edb__link;

/* Open @src for reading: *fd is the descriptor, *owned whether to close it.
 * @name receives the source's display name.  EDB_NOTFOUND, EDB_IO, EDB_INVAL. */
int edb__source_open(const edb_backup_source *src, int *fd, bool *owned, char *name,
                     size_t namesz);

/* Check the header @h of archive number @idx (0-based) named @name against the
 * archives before it (@prev, @idx of them).  With @need_full the first archive
 * must be a full one.  EDB_CHAIN naming the link, or 0. */
int edb__chain_check(const edb__link *prev, size_t idx, const edb__arch_header *h,
                     const char *name, bool need_full);

struct edb__archive;
struct edb__where;
/* Incremental @a applied on a base whose page hash table is @prev: a page @a
 * does not carry keeps its base's hash below base_npages.  EDB_CHECKSUM with
 * *w set, or 0. */
int edb__chain_table_check(const struct edb__archive *a, const edb__arch_hash *prev,
                           struct edb__where *w);

/* The pages an archive chain carried so far, a bit each (ever_n bits). */
typedef struct edb__room {
    uint64_t *ever;
    uint64_t ever_n;
} edb__room;
/* Archive @a (number @idx, named @name) of a chain that starts with a full
 * archive: add its carried pages to @r, then refuse (EDB_CORRUPT) a snapshot
 * whose pages no archive carried (zeros, so free pages in a real database)
 * outnumber what a free list in the carried pages can list: page_size / 8
 * each, plus a small slack.  Bounds restore's data.mdb by the archives' real
 * content.  EDB_NOMEM.  Free r->ever when done. */
int edb__chain_room(edb__room *r, const struct edb__archive *a, size_t idx, const char *name);

#endif

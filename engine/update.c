/*
 * update.c: building and writing records through a cursor: prepare, set,
 * update, cancel, delete and escrow.
 *
 * Every write of a record and its index entries runs in an LMDB child of the
 * session's transaction (edb__txn_child_begin), so a failure half way
 * (EDB_KEYDUP in the third index, EDB_FULL) leaves the record and every index
 * exactly as they were, and the update stays prepared.
 *
 * Index entries: the primary index is the record DB itself (key = encoded
 * primary key, or the implicit 8-byte big-endian counter).  A unique
 * secondary index maps its key to the primary key; a non-unique one stores
 * key + primary key (so every entry is distinct) with the primary key as data.
 *
 * Thread safety: as the session.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "error.h"
#include "key.h"

void
edb_update_cancel(edb_cursor *c)
{
    if (c == NULL || c->prep == 0)
        return;
    edb__rec_free(&c->rec);
    c->prep_pk.len = 0;
    c->prep = 0;
}

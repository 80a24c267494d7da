/*
 * metaread.h: why LMDB refused to open an environment with MDB_INVALID.
 *
 * Thread safety: reentrant.
 */
#ifndef EDB_METAREAD_H
#define EDB_METAREAD_H

#include <lmdb.h>

/* mdb_env_open() returns MDB_INVALID both for a file that is not an LMDB
 * environment and for a meta page it could not read whole (a short pread: no
 * errno).  Read data.mdb's two meta pages (and lock.mdb's header) again and
 * return the code that fits, with a message starting with @what:
 * EDB_IO (with the errno) when a read fails or is short on a file long enough,
 * EDB_CORRUPT when data.mdb is too short to hold its meta pages, EDB_VERSION
 * when a meta page or lock.mdb has no LMDB magic or another format version;
 * EDB_IO too when everything reads whole and valid now (LMDB's read was short
 * then).  @path is the environment's directory. */
int edb__meta_explain_invalid(const char *path, const char *what);

/* After mdb_env_open() succeeded, before anything reads a page through the
 * map: refuse a data.mdb shorter than its pages.  In a read snapshot, the
 * meta page's last_pg says pages 0..last_pg are in use; a file shorter than
 * (last_pg + 1) * page size is accepted only when every page past its end is
 * on the snapshot's free list (LMDB leaves pages that a transaction allocated
 * and freed again unwritten; metaread.c), read with pread.  Returns 0, or
 * EDB_CORRUPT naming @path, the file's size and the size the meta claims,
 * EDB_IO, EDB_NOMEM, an LMDB error.  Never touches the map past pages 0-1. */
int edb__meta_check_length(MDB_env *mdb, const char *path);

#endif

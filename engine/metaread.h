/*
 * metaread.h: why LMDB refused to open an environment with MDB_INVALID.
 *
 * Thread safety: reentrant.
 */
#ifndef EDB_METAREAD_H
#define EDB_METAREAD_H

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

#endif

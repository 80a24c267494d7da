/*
 * error.h: internal error helpers.
 *
 * Every failing path sets the thread's last-error detail through edb__err(),
 * which records the code and the message (edb_error_last_code(),
 * edb_error_last_message(); edb_error_last() is both, "<EDB_NAME>: <message>")
 * and returns the code.  LMDB's return codes are translated in exactly one
 * place, edb__mdb_err(), and compared with MDB_* constants only in error.c (the
 * edb__mdb_is_* predicates below); tests/check-one-place.sh keeps it so.
 */
#ifndef EDB_ERROR_H
#define EDB_ERROR_H

#include <stdbool.h>

#include "edb.h"

#if defined(__GNUC__)
#define EDB__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define EDB__PRINTF(a, b)
#endif

/* Set the thread's detail to "<EDB_NAME>: <fmt...>" and return rc. */
int edb__err(int rc, const char *fmt, ...) EDB__PRINTF(2, 3);
/* Translate an LMDB (or errno) return code into an EDB_* code, recording
 * "<EDB_NAME>: <what>: <lmdb message>".  0 stays 0. */
int edb__mdb_err(int mdb_rc, const char *what);
/* edb__mdb_err() for a call that writes @env's data file (a commit): LMDB
 * reports a short write as EIO ("short write, filesystem full?"), so an
 * EIO, ENOSPC or EDQUOT there is EDB_FULL when the file system holding the
 * data file has less than EDB__FULL_SLACK bytes left for unprivileged use
 * (fstatvfs of LMDB's descriptor), EDB_IO otherwise.  @env may be NULL
 * (then it is edb__mdb_err()). */
struct MDB_env;
#define EDB__FULL_SLACK ((unsigned long long)1 << 20)
int edb__mdb_err_env(int mdb_rc, struct MDB_env *env, const char *what);
/* Same for an errno value (EIO, ENOSPC, ...): "<EDB_NAME>: <what>: <strerror>". */
int edb__sys_err(int errnum, const char *what);
/* Is this mdb_env_open() code MDB_INVALID (a foreign file, or a meta page LMDB
 * could not read whole: engine/metaread.c tells which)? */
bool edb__mdb_is_invalid(int mdb_rc);
/* The other LMDB codes some callers branch on before (or instead of)
 * translating them, so that every comparison with an MDB_* code stays in
 * error.c: MDB_NOTFOUND (no such key; not MDB_BAD_DBI, which edb__mdb_err()
 * also makes EDB_NOTFOUND), MDB_KEYEXIST, MDB_INCOMPATIBLE, MDB_BAD_TXN. */
bool edb__mdb_is_notfound(int mdb_rc);
bool edb__mdb_is_keyexist(int mdb_rc);
bool edb__mdb_is_incompatible(int mdb_rc);
bool edb__mdb_is_bad_txn(int mdb_rc);
/* Clear the detail (called at the start of public functions that succeed quietly). */
void edb__err_clear(void);

/* WiredTiger-style flow: EDB_RET returns on error; EDB_ERR jumps to err: with ret set.
 * Warnings (positive codes) are not errors for either. */
#define EDB_RET(x) do { int edb__r = (x); if (edb__r < 0) return edb__r; } while (0)
#define EDB_ERR(x) do { ret = (x); if (ret < 0) goto err; } while (0)

#endif

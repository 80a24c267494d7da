/*
 * error.c: the error table's strings, the per-thread last-error detail, and the
 * single translation point from LMDB and errno codes to EDB_* codes.
 */
#include "config.h"

#include <errno.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "error.h"

#define EDB__DETAIL_MAX 512
/* The thread's last error: its code, and "<EDB_NAME>: <message>" with the
 * offset of the message, so that callers get either part without cutting
 * strings (edb_error_last_code(), edb_error_last_message()). */
static _Thread_local char last_detail[EDB__DETAIL_MAX];
static _Thread_local int last_code;
static _Thread_local unsigned last_msg;
/* An error was recorded since the last clear: the clear that every
 * successful call makes is then one load when there is nothing to clear. */
static _Thread_local bool last_set;

const char *
edb_version(void)
{
    return EDB_VERSION_STRING;
}

const char *
edb_strerror(int rc)
{
    switch (rc) {
#define EDB__ERR_MSG(name, value, msg) case value: return msg;
        EDB_ERROR_MAP(EDB__ERR_MSG)
#undef EDB__ERR_MSG
    }
    return "unknown error";
}

const char *
edb_err_name(int rc)
{
    switch (rc) {
#define EDB__ERR_NAME(name, value, msg) case value: return "EDB_" #name;
        EDB_ERROR_MAP(EDB__ERR_NAME)
#undef EDB__ERR_NAME
    }
    return "EDB_UNKNOWN";
}

const char *
edb_error_last(void)
{
    return last_detail;
}

int
edb_error_last_code(void)
{
    return last_code;
}

const char *
edb_error_last_message(void)
{
    return last_detail + last_msg;
}

void
edb__err_clear(void)
{
    if (!last_set)
        return;
    last_detail[0] = '\0';
    last_code = 0;
    last_msg = 0;
    last_set = false;
}

int
edb__err(int rc, const char *fmt, ...)
{
    int n = snprintf(last_detail, sizeof last_detail, "%s: ", edb_err_name(rc));
    last_code = rc;
    last_set = true;
    last_msg = n < 0 ? 0 : (size_t)n >= sizeof last_detail ? sizeof last_detail - 1 : (unsigned)n;
    if (n < 0 || (size_t)n >= sizeof last_detail)
        return rc;
    if (fmt == NULL || fmt[0] == '\0') {
        snprintf(last_detail + n, sizeof last_detail - (size_t)n, "%s", edb_strerror(rc));
        return rc;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_detail + n, sizeof last_detail - (size_t)n, fmt, ap);
    va_end(ap);
    return rc;
}

static int
translate(int mdb_rc)
{
    switch (mdb_rc) {
    case 0:                   return EDB_OK;
    case MDB_NOTFOUND:        return EDB_NOTFOUND;
    case MDB_KEYEXIST:        return EDB_KEYDUP;
    case MDB_MAP_FULL:        return EDB_FULL;
    case MDB_DBS_FULL:        return EDB_LIMIT;
    case MDB_READERS_FULL:    return EDB_LIMIT;
    case MDB_TXN_FULL:        return EDB_LIMIT;
    case MDB_BAD_VALSIZE:     return EDB_TOOBIG;
    case MDB_CORRUPTED:       return EDB_CORRUPT;
    case MDB_PAGE_NOTFOUND:   return EDB_CORRUPT;
    case MDB_INVALID:         return EDB_VERSION;
    case MDB_VERSION_MISMATCH:return EDB_VERSION;
    case MDB_PANIC:           return EDB_CORRUPT;
    case MDB_MAP_RESIZED:     return EDB_BUSY;
    case MDB_BAD_RSLOT:       return EDB_BUSY;
    case MDB_BAD_TXN:         return EDB_INVAL;
    case MDB_BAD_DBI:         return EDB_NOTFOUND;
    case MDB_INCOMPATIBLE:    return EDB_INVAL;
    case EACCES:              return EDB_READONLY;
    case EROFS:               return EDB_READONLY;
    case ENOMEM:              return EDB_NOMEM;
    case ENOENT:              return EDB_NOTFOUND;
    case EEXIST:              return EDB_EXISTS;
    case EINVAL:              return EDB_INVAL;
    case EBUSY:               return EDB_BUSY;
    case ECANCELED:           return EDB_CANCELED;
    case ENOSPC:              return EDB_FULL;
#ifdef EDQUOT
    case EDQUOT:              return EDB_FULL;
#endif
    default:                  return EDB_IO;
    }
}

int
edb__mdb_err(int mdb_rc, const char *what)
{
    if (mdb_rc == 0)
        return EDB_OK;
    int rc = translate(mdb_rc);
    return edb__err(rc, "%s: %s", what ? what : "lmdb", mdb_strerror(mdb_rc));
}

int
edb__mdb_err_env(int mdb_rc, MDB_env *env, const char *what)
{
    int rc = edb__mdb_err(mdb_rc, what);
    if (env == NULL || (mdb_rc != EIO && mdb_rc != ENOSPC
#ifdef EDQUOT
                        && mdb_rc != EDQUOT
#endif
                        ))
        return rc;
    /* The cause of an EIO LMDB made up for a short write: is it space? */
    int fd = -1;
    struct statvfs sv;
    if (mdb_env_get_fd(env, &fd) != 0 || fd < 0 || fstatvfs(fd, &sv) != 0)
        return rc;
    unsigned long long avail = (unsigned long long)sv.f_bavail * (sv.f_frsize ? sv.f_frsize : sv.f_bsize);
    if (avail >= EDB__FULL_SLACK)
        return rc;
    return edb__err(EDB_FULL, "%s: no space left on the file system of the database (%llu bytes "
                    "free; LMDB said: %s)", what ? what : "lmdb", avail, mdb_strerror(mdb_rc));
}

bool
edb__mdb_is_invalid(int mdb_rc)
{
    return mdb_rc == MDB_INVALID;
}

bool
edb__mdb_is_notfound(int mdb_rc)
{
    return mdb_rc == MDB_NOTFOUND;
}

bool
edb__mdb_is_keyexist(int mdb_rc)
{
    return mdb_rc == MDB_KEYEXIST;
}

bool
edb__mdb_is_incompatible(int mdb_rc)
{
    return mdb_rc == MDB_INCOMPATIBLE;
}

bool
edb__mdb_is_bad_txn(int mdb_rc)
{
    return mdb_rc == MDB_BAD_TXN;
}

int
edb__sys_err(int errnum, const char *what)
{
    int rc = translate(errnum);
    /* errno values that LMDB shares must not be read as LMDB codes: the LMDB
     * codes are all negative, errno values positive. */
    return edb__err(rc, "%s: %s", what ? what : "system call", strerror(errnum));
}

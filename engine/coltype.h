/*
 * coltype.h: the column types, one row each (STYLE.md, "One place per fact").
 *
 * Each row: the type, its name (edb_coltype_name, edb_coltype_parse, JSON
 * schemas), its native size in bytes (0: TEXT and BINARY, 0..max_size), and
 * whether the key codec flips its sign bit (signed integers and DATETIME,
 * int64 microseconds).  The catalog, the record and key codecs, check and the
 * schema functions read it from here; the codecs' per-type work (key.c's
 * float and bool payloads, record.c's value checks) is theirs.  Adding a type
 * is one row here plus the codecs.
 */
#ifndef EDB_COLTYPE_H
#define EDB_COLTYPE_H

#include <stdbool.h>
#include <stddef.h>

#include "edb.h"

/*     type       name        size  signed */
#define EDB__COLTYPE_MAP(X)                 \
    X(BOOL,      "bool",      1,   false)   \
    X(INT8,      "int8",      1,   true)    \
    X(INT16,     "int16",     2,   true)    \
    X(INT32,     "int32",     4,   true)    \
    X(INT64,     "int64",     8,   true)    \
    X(UINT8,     "uint8",     1,   false)   \
    X(UINT16,    "uint16",    2,   false)   \
    X(UINT32,    "uint32",    4,   false)   \
    X(UINT64,    "uint64",    8,   false)   \
    X(FLOAT,     "float",     4,   false)   \
    X(DOUBLE,    "double",    8,   false)   \
    X(DATETIME,  "datetime",  8,   true)    \
    X(GUID,      "guid",      16,  false)   \
    X(TEXT,      "text",      0,   false)   \
    X(BINARY,    "binary",    0,   false)

typedef struct edb__coltype {
    const char *name;
    unsigned size;          /* bytes; 0: variable (TEXT, BINARY) */
    bool is_signed;         /* the key codec flips the sign bit */
} edb__coltype;

/* Indexed by edb_coltype; element 0 is unused (no type 0). */
extern const edb__coltype edb__coltypes[];

/* The row of @type, or NULL for a value that is no column type. */
static inline const edb__coltype *
edb__coltype_of(edb_coltype type)
{
    return (int)type >= EDB_COL_BOOL && (int)type <= EDB_COL_BINARY ? &edb__coltypes[type] : NULL;
}

/* Size of a fixed-size type, 0 for TEXT/BINARY, -1 for an unknown type. */
static inline int
edb__type_size(edb_coltype type)
{
    const edb__coltype *c = edb__coltype_of(type);
    return c != NULL ? (int)c->size : -1;
}

#endif

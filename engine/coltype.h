/*
 * coltype.h: the column types, one row each (STYLE.md, "One place per fact").
 *
 * Each row: the type, its name (edb_coltype_name, edb_coltype_parse, JSON
 * schemas), its native size in bytes (0: TEXT and BINARY, 0..max_size),
 * whether the key codec flips its sign bit (signed integers and DATETIME,
 * int64 microseconds), and its JSON kind: how dbtool writes and reads its
 * values as JSON and as text (tools/jsonval.c keeps one codec per kind and
 * takes each type's kind, size and signedness from this table).  The
 * catalog, the record and key codecs, check, the schema functions and dbtool
 * read it from here; the codecs' per-type work (key.c's float and bool
 * payloads, record.c's value checks) is theirs.  Adding a type is one row
 * here plus the codecs.  dbtool links only the public library, so it expands
 * EDB__COLTYPE_MAP into a table of its own (header-only facts).
 */
#ifndef EDB_COLTYPE_H
#define EDB_COLTYPE_H

#include <stdbool.h>
#include <stddef.h>

#include "edb.h"

/* JSON kinds (the JSON and text forms: tools/jsonval.h has the table). */
typedef enum edb__json_kind {
    EDB__JSON_BOOL = 1,     /* true / false; text true, false, 1, 0 */
    EDB__JSON_INT,          /* an integer, exact over 64 bits; range from size and signedness */
    EDB__JSON_REAL,         /* a number (float: size 4, double: 8); "Infinity", "-Infinity" */
    EDB__JSON_DATETIME,     /* "2024-05-01T12:00:00.000000Z": UTC, microseconds */
    EDB__JSON_GUID,         /* "8-4-4-4-12" lower-case hex */
    EDB__JSON_STRING,       /* a string: the text itself */
    EDB__JSON_BASE64,       /* a base64 string (RFC 4648, padded) */
} edb__json_kind;

/*     type       name        size  signed  JSON kind */
#define EDB__COLTYPE_MAP(X)                           \
    X(BOOL,      "bool",      1,   false,  BOOL)      \
    X(INT8,      "int8",      1,   true,   INT)       \
    X(INT16,     "int16",     2,   true,   INT)       \
    X(INT32,     "int32",     4,   true,   INT)       \
    X(INT64,     "int64",     8,   true,   INT)       \
    X(UINT8,     "uint8",     1,   false,  INT)       \
    X(UINT16,    "uint16",    2,   false,  INT)       \
    X(UINT32,    "uint32",    4,   false,  INT)       \
    X(UINT64,    "uint64",    8,   false,  INT)       \
    X(FLOAT,     "float",     4,   false,  REAL)      \
    X(DOUBLE,    "double",    8,   false,  REAL)      \
    X(DATETIME,  "datetime",  8,   true,   DATETIME)  \
    X(GUID,      "guid",      16,  false,  GUID)      \
    X(TEXT,      "text",      0,   false,  STRING)    \
    X(BINARY,    "binary",    0,   false,  BASE64)

typedef struct edb__coltype {
    const char *name;
    unsigned size;          /* bytes; 0: variable (TEXT, BINARY) */
    bool is_signed;         /* the key codec flips the sign bit; for JSON INT: signed */
    edb__json_kind json;
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

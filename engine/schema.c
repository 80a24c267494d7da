/*
 * schema.c: the public schema calls: validating definitions, creating and
 * dropping tables and indexes, adding columns, listing and describing.
 *
 * Every call runs in the session's transaction (or an implicit one), so a
 * schema change commits or rolls back with the caller's other work and other
 * processes see it in their next transaction.  Validation happens before
 * anything is written; an index built over existing rows that finds a
 * duplicate key in a UNIQUE index aborts its own nested transaction, leaving
 * nothing behind.
 *
 * Thread safety: as the session.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "cursor.h"
#include "error.h"
#include "key.h"
#include "record.h"
#include "session.h"

static const char *const type_names[] = {
    [EDB_COL_BOOL] = "bool",     [EDB_COL_INT8] = "int8",     [EDB_COL_INT16] = "int16",
    [EDB_COL_INT32] = "int32",   [EDB_COL_INT64] = "int64",   [EDB_COL_UINT8] = "uint8",
    [EDB_COL_UINT16] = "uint16", [EDB_COL_UINT32] = "uint32", [EDB_COL_UINT64] = "uint64",
    [EDB_COL_FLOAT] = "float",   [EDB_COL_DOUBLE] = "double", [EDB_COL_DATETIME] = "datetime",
    [EDB_COL_GUID] = "guid",     [EDB_COL_TEXT] = "text",     [EDB_COL_BINARY] = "binary",
};

const char *
edb_coltype_name(edb_coltype type)
{
    if ((int)type < EDB_COL_BOOL || (int)type > EDB_COL_BINARY)
        return NULL;
    return type_names[type];
}

int
edb_coltype_parse(edb_coltype *out, const char *name)
{
    if (out == NULL || name == NULL)
        return edb__err(EDB_INVAL, "edb_coltype_parse: %s is NULL", out == NULL ? "out" : "name");
    *out = 0;
    for (int t = EDB_COL_BOOL; t <= EDB_COL_BINARY; t++)
        if (strcmp(type_names[t], name) == 0) {
            *out = (edb_coltype)t;
            edb__err_clear();
            return 0;
        }
    return edb__err(EDB_INVAL, "unknown column type '%s'", name);
}

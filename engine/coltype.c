/*
 * coltype.c: the column-type table (coltype.h) and the public name lookups.
 *
 * Invariant: edb__coltypes[t] is the row of type t for every t in
 * EDB_COL_BOOL..EDB_COL_BINARY (checked at compile time below).
 */
#include "config.h"

#include <string.h>

#include "coltype.h"
#include "error.h"

#define ROW(type, name, size, sgn, json) [EDB_COL_##type] = { name, size, sgn, EDB__JSON_##json },
const edb__coltype edb__coltypes[EDB_COL_BINARY + 1] = { EDB__COLTYPE_MAP(ROW) };
#undef ROW

#define COUNT(type, name, size, sgn, json) +1
_Static_assert(0 EDB__COLTYPE_MAP(COUNT) == EDB_COL_BINARY - EDB_COL_BOOL + 1,
               "one row per column type in coltype.h");
#undef COUNT

const char *
edb_coltype_name(edb_coltype type)
{
    const edb__coltype *c = edb__coltype_of(type);
    return c != NULL ? c->name : NULL;
}

int
edb_coltype_size(edb_coltype type)
{
    return edb__type_size(type);
}

int
edb_coltype_parse(edb_coltype *out, const char *name)
{
    if (out == NULL || name == NULL)
        return edb__err(EDB_INVAL, "edb_coltype_parse: %s is NULL", out == NULL ? "out" : "name");
    *out = 0;
    for (int t = EDB_COL_BOOL; t <= EDB_COL_BINARY; t++)
        if (strcmp(edb__coltypes[t].name, name) == 0) {
            *out = (edb_coltype)t;
            edb__err_clear();
            return 0;
        }
    return edb__err(EDB_INVAL, "unknown column type '%s'", name);
}

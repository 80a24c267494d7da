/*
 * csv.h: the RFC 4180 record reader of dbtool import --csv.
 *
 * Fields are separated by ',', records by LF or CRLF; a field in double
 * quotes may hold ',', CR, LF and '""' for a quote.  Each cell remembers
 * whether it was quoted (an empty unquoted field is NULL to import, "" is the
 * empty string).  Blank lines between records are skipped.  Every malformed
 * input is an error with a message, never a crash (fuzzed: tests/fuzz).
 */
#ifndef DBTOOL_CSV_H
#define DBTOOL_CSV_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "jsonval.h"

typedef struct dbt_cell {
    jv_buf b;
    bool quoted;
} dbt_cell;

typedef struct dbt_csv {
    FILE *f;
    uint64_t line;             /* physical line being read (1-based) */
    dbt_cell *cells;
    size_t n, cap;
} dbt_csv;

/* Read one record from r->f into r->cells[0..r->n).  *start: the physical
 * line (1-based) the record starts on.  Returns 1 (a record), 0 (end of
 * input) or -1 (malformed or out of memory: message in err). */
int dbt_csv_record(dbt_csv *r, uint64_t *start, char *err, size_t errlen);
/* Free the cells (the FILE is the caller's). */
void dbt_csv_free(dbt_csv *r);

#endif

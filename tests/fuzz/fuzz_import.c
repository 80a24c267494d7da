/*
 * libFuzzer target for the parsers of dbtool import: the CSV record reader
 * (tools/csv.c) and the JSON-lines value path (big-integer quoting, jansson,
 * jv_from_json / jv_from_text for every column type).  Besides "no crash, no
 * sanitizer report", every value accepted is written back (JSON and text) and
 * parsed again, and must give the same bytes: the round trip dbtool's
 * export | import relies on.  Build and run: sh tests/fuzz/run-fuzz-import.sh.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "jsonval.h"

static void
round_trip(edb_coltype t, const jv_buf *v)
{
    jv_buf txt = { 0 }, back = { 0 };
    char err[256];
    if (jv_write_json(&txt, t, v->p, v->len) != 0)
        abort();
    char *fixed = jv_quote_big_ints(txt.p, txt.len);
    json_error_t je;
    json_t *j = json_loads(fixed ? fixed : txt.p, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (j == NULL || jv_from_json(&back, t, j, err, sizeof err) != 0 || back.len != v->len ||
        (v->len && memcmp(back.p, v->p, v->len) != 0))
        abort();
    json_decref(j);
    free(fixed);
    if (t != EDB_COL_TEXT) {        /* text form of TEXT is the text itself */
        txt.len = 0;
        if (jv_write_text(&txt, t, v->p, v->len) != 0 || jv_from_text(&back, t, txt.p, err, sizeof err) != 0 ||
            back.len != v->len || (v->len && memcmp(back.p, v->p, v->len) != 0))
            abort();
    }
    jv_buf_free(&txt);
    jv_buf_free(&back);
}

static void
every_type_text(const char *s, size_t n)
{
    if (memchr(s, '\0', n))
        return;
    jv_buf b = { 0 };
    char err[256];
    for (int t = EDB_COL_BOOL; t <= EDB_COL_BINARY; t++)
        if (jv_from_text(&b, (edb_coltype)t, s, err, sizeof err) == 0 && t != EDB_COL_TEXT)
            round_trip((edb_coltype)t, &b);
    jv_buf_free(&b);
}

static void
every_type_json(const json_t *v)
{
    jv_buf b = { 0 };
    char err[256];
    for (int t = EDB_COL_BOOL; t <= EDB_COL_BINARY; t++)
        if (jv_from_json(&b, (edb_coltype)t, v, err, sizeof err) == 0 && t != EDB_COL_TEXT)
            round_trip((edb_coltype)t, &b);
    jv_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 1 << 16)
        return 0;
    /* CSV */
    FILE *f = fmemopen((void *)data, size, "r");
    if (f) {
        dbt_csv r = { .f = f };
        uint64_t start;
        char err[256];
        int got;
        while ((got = dbt_csv_record(&r, &start, err, sizeof err)) == 1)
            for (size_t i = 0; i < r.n; i++)
                every_type_text(r.cells[i].b.p, r.cells[i].b.len);
        if (got < 0 && err[0] == '\0')
            abort();            /* every failure carries a message */
        dbt_csv_free(&r);
        fclose(f);
    }
    /* JSON lines */
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *fixed = jv_quote_big_ints(p, len);
        json_error_t je;
        json_t *row = json_loadb(fixed ? fixed : p, fixed ? strlen(fixed) : len,
                                 JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
        free(fixed);
        if (row && json_is_object(row)) {
            const char *k;
            json_t *v;
            json_object_foreach(row, k, v) {
                if (json_is_array(v)) {
                    size_t i;
                    json_t *e;
                    json_array_foreach(v, i, e) every_type_json(e);
                } else {
                    every_type_json(v);
                }
            }
        }
        json_decref(row);
        p += len + 1;
    }
    return 0;
}

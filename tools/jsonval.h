/*
 * jsonval.h: conversion between edb's native column values and their JSON and
 * text forms (DESIGN.md "JSON values").  The form a type takes is its JSON
 * kind in the engine's column-type table (engine/coltype.h); the rows below
 * are the kinds' codecs in jsonval.c.
 *
 * | type          | JSON                          | text (CSV cell, command line) |
 * |---------------|-------------------------------|-------------------------------|
 * | BOOL          | true / false                  | true/false/1/0                |
 * | INT*, UINT*   | number, all 64 bits exact     | decimal                       |
 * | FLOAT, DOUBLE | number: the shortest of %.6g..%.9g (float) or %.15g..%.17g (double) that reads back to the same bits; "Infinity", "-Infinity" | same |
 * | DATETIME      | "2024-05-01T12:00:00.000000Z" (UTC, microseconds) | same      |
 * | GUID          | "8-4-4-4-12" lower-case hex, RFC 4122 byte order | same         |
 * | TEXT          | string                        | the text                      |
 * | BINARY        | base64 string (RFC 4648, padded) | same                       |
 * | multi-valued  | array of the above            | JSON array                    |
 * | NULL          | null                          | empty (unquoted) cell         |
 *
 * Thread safety: all functions are reentrant.
 */
#ifndef DBTOOL_JSONVAL_H
#define DBTOOL_JSONVAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edb.h"

/* A growable byte buffer.  Zero-initialise; free with jv_buf_free(). */
typedef struct jv_buf {
    char *p;
    size_t len, cap;
} jv_buf;

/* Make room for n more bytes; returns 0 or EDB_NOMEM. */
int jv_buf_reserve(jv_buf *b, size_t n);
int jv_buf_add(jv_buf *b, const void *data, size_t n);
int jv_buf_adds(jv_buf *b, const char *s);
void jv_buf_free(jv_buf *b);

/* Size of a fixed-size type's native form, 0 for TEXT and BINARY (and for
 * no column type). */
size_t jv_fixed_size(edb_coltype t);
/* Is a value of type @t a JSON number (JSON kind INT or REAL)? */
bool jv_is_number(edb_coltype t);

/*
 * Convert one JSON value (not null, not an array) into the native form of type
 * t, replacing out's contents.  Returns 0, EDB_TYPE (the JSON type does not fit
 * the column: a string for an int) or EDB_INVAL (out of range, malformed
 * GUID/base64/date), with a message in err (without the code's name).
 */
int jv_from_json(jv_buf *out, edb_coltype t, const json_t *j, char *err, size_t errlen);

/* The same for a text form (command-line key values, CSV cells). */
int jv_from_text(jv_buf *out, edb_coltype t, const char *s, char *err, size_t errlen);

/* Append the JSON text of a native value.  Returns 0, EDB_NOMEM, EDB_CORRUPT (size wrong). */
int jv_write_json(jv_buf *out, edb_coltype t, const void *data, size_t size);

/* Append the text form (strings unquoted, unescaped).  Same returns. */
int jv_write_text(jv_buf *out, edb_coltype t, const void *data, size_t size);

/* Append a JSON string literal for s[0..n) (escaped with jansson). */
int jv_write_json_string(jv_buf *out, const char *s, size_t n);

/*
 * Rewrite a line of JSON so that integers that do not fit in int64 (jansson's
 * json_int_t) become strings holding their digits: jansson refuses them, and
 * UINT64 columns accept such strings.  Returns a malloc'd copy, or NULL (no
 * change needed, or out of memory: parse the original).
 */
char *jv_quote_big_ints(const char *line, size_t len);

/* Base64 (RFC 4648 with padding).  decode returns 0 or EDB_INVAL. */
int jv_base64_encode(jv_buf *out, const void *data, size_t n);
int jv_base64_decode(jv_buf *out, const char *s, size_t n);

/* DATETIME: microseconds since the epoch <-> ISO 8601 UTC. */
int jv_datetime_format(char *buf, size_t cap, int64_t us);
int jv_datetime_parse(int64_t *out, const char *s);

#endif

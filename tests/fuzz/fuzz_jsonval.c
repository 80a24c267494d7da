/*
 * fuzz_jsonval.c: libFuzzer target for the import line parser's value
 * conversion (tools/jsonval.c), the way `dbtool import` uses it: a line
 * without NUL bytes goes through jv_quote_big_ints(), jansson's parser
 * (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL), then every value of the row (or
 * the document itself, and each element of an array) is converted to every
 * column type with jv_from_json(); the line is also converted as a text cell
 * with jv_from_text() to every type, and fed to the base64 and date parsers.
 *
 * Properties besides "no crash, no sanitizer report, no leak":
 * - conversions return 0, EDB_TYPE or EDB_INVAL, and fill the message on error;
 * - lossless round trips (jsonval.c's stated invariant): a value accepted
 *   from JSON, written back with jv_write_json() and parsed again gives the
 *   same native bytes; the same for jv_write_text() / jv_from_text().
 */
#include "config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edb.h"
#include "jsonval.h"

/* Known open bug (tests/fuzz/crashes/KNOWN): jv_quote_big_ints() mangles a
 * real whose fraction or exponent has 19 or more digits.  Such texts are
 * skipped in the round trip (and only there) so that the fuzzer keeps looking
 * for other bugs; set FUZZ_KNOWN_BUGS=1 to look at it again. */
static bool
known_quote_bug(const char *s, size_t n)
{
    if (getenv("FUZZ_KNOWN_BUGS") != NULL)
        return false;
    for (size_t i = 0; i < n;) {
        size_t k = i;
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
        if (k - i >= 19 && i > 0 && strchr(".eE+-", s[i - 1]) && (s[i - 1] != '-' || (i > 1 && strchr("eE", s[i - 2]))))
            return true;
        i = k > i ? k : i + 1;
    }
    return false;
}

static json_t *
parse_line(const char *s, size_t n, size_t flags)
{
    json_error_t je;
    char *fixed = jv_quote_big_ints(s, n);
    json_t *j = json_loadb(fixed ? fixed : s, fixed ? strlen(fixed) : n, flags, &je);
    free(fixed);
    return j;
}

static void
check_rc(int rc, const char *err)
{
    if (rc != 0 && rc != EDB_TYPE && rc != EDB_INVAL)
        abort();
    if (rc != 0 && err[0] == '\0')
        abort();                            /* an error without a message */
}

static void
same(const jv_buf *a, const jv_buf *b)
{
    if (a->len != b->len || (a->len && memcmp(a->p, b->p, a->len) != 0))
        abort();                            /* a round trip changed the value */
}

static void
convert(const json_t *v)
{
    char err[256];
    jv_buf a = { 0 }, w = { 0 }, b = { 0 };
    for (int t = EDB_COL_BOOL; t <= EDB_COL_BINARY; t++) {
        err[0] = '\0';
        int rc = jv_from_json(&a, (edb_coltype)t, v, err, sizeof err);
        check_rc(rc, err);
        if (rc != 0)
            continue;
        size_t fs = jv_fixed_size((edb_coltype)t);
        if (fs != 0 && a.len != fs)
            abort();
        /* JSON round trip. */
        w.len = 0;
        if (jv_write_json(&w, (edb_coltype)t, a.p, a.len) != 0)
            abort();
        if (known_quote_bug(w.p, w.len))
            continue;
        json_t *back = parse_line(w.p, w.len, JSON_DECODE_ANY | JSON_ALLOW_NUL);
        if (back == NULL)
            abort();                        /* wrote JSON it cannot read */
        err[0] = '\0';
        if (jv_from_json(&b, (edb_coltype)t, back, err, sizeof err) != 0)
            abort();
        same(&a, &b);
        json_decref(back);
        /* Text round trip (TEXT with a NUL byte has no text form as a C string). */
        if (t == EDB_COL_TEXT && memchr(a.p, '\0', a.len) != NULL)
            continue;
        w.len = 0;
        if (jv_write_text(&w, (edb_coltype)t, a.p, a.len) != 0)
            abort();
        err[0] = '\0';
        if (jv_from_text(&b, (edb_coltype)t, w.p ? w.p : "", err, sizeof err) != 0)
            abort();
        same(&a, &b);
    }
    jv_buf_free(&a);
    jv_buf_free(&w);
    jv_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096 || memchr(data, '\0', size) != NULL)
        return 0;                           /* import refuses NUL bytes before parsing */
    char *line = malloc(size + 1);
    if (line == NULL)
        return 0;
    memcpy(line, data, size);
    line[size] = '\0';

    json_t *row = parse_line(line, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY);
    /* jv_quote_big_ints() may only help: a line jansson reads as it is must
     * still be read after it. */
    json_error_t je;
    json_t *plain = json_loadb(line, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    if (plain != NULL && row == NULL && !known_quote_bug(line, size))
        abort();
    json_decref(plain);
    if (row != NULL) {
        if (json_is_object(row)) {
            const char *k;
            json_t *v;
            json_object_foreach(row, k, v) {
                if (json_is_array(v)) {
                    size_t i;
                    json_t *e;
                    json_array_foreach(v, i, e)
                        convert(e);
                } else if (!json_is_null(v)) {
                    convert(v);
                }
            }
        } else if (!json_is_null(row)) {
            convert(row);
        }
        json_decref(row);
    }

    /* The line as a CSV cell / command-line key value. */
    char err[256];
    jv_buf a = { 0 }, w = { 0 }, b = { 0 };
    for (int t = EDB_COL_BOOL; t <= EDB_COL_BINARY; t++) {
        err[0] = '\0';
        int rc = jv_from_text(&a, (edb_coltype)t, line, err, sizeof err);
        check_rc(rc, err);
        if (rc != 0)
            continue;
        w.len = 0;
        if (jv_write_text(&w, (edb_coltype)t, a.p, a.len) != 0)
            abort();
        err[0] = '\0';
        if (jv_from_text(&b, (edb_coltype)t, w.p ? w.p : "", err, sizeof err) != 0)
            abort();
        same(&a, &b);
    }
    int64_t us;
    if (jv_datetime_parse(&us, line) == 0) {
        char buf[64];
        int64_t again;
        if (jv_datetime_format(buf, sizeof buf, us) != 0 || jv_datetime_parse(&again, buf) != 0 ||
            again != us)
            abort();
    }
    jv_buf_free(&a);
    jv_buf_free(&w);
    jv_buf_free(&b);
    free(line);
    return 0;
}

/*
 * test_fuzz_regress.c: regression tests for what the fuzz targets found
 * (tests/fuzz/crashes/), one test per reproducer, named after it.
 *
 * A test for a bug that is reported but not fixed yet is .disabled with a
 * reference to its line in tests/fuzz/crashes/KNOWN; enable it with the fix.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "edb.h"
#include "jsonval.h"

/* Parse a JSON text the way dbtool import does. */
static json_t *
import_parse(const char *text)
{
    json_error_t je;
    char *fixed = jv_quote_big_ints(text, strlen(text));
    json_t *j = json_loadb(fixed ? fixed : text, fixed ? strlen(fixed) : strlen(text),
                           JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    free(fixed);
    return j;
}

/* crashes/jsonval/quote-big-ints-fraction (input "-2e-4") and
 * crashes/jsonval/quote-big-ints-long-fraction: the DOUBLE -0.0002 was
 * written as -0.00020000000000000001 (%.17g), and jv_quote_big_ints() quoted
 * its 20-digit fraction as if it were a big integer, so the text no longer
 * parsed: import refused what export wrote, and any real with a 19+ digit
 * fraction or exponent.  Fixed on the dbtool branch: number tokens are
 * scanned whole (sign, digits, fraction, exponent). */
Test(fuzz_regress, quote_big_ints_fraction, .timeout = 10)
{
    static const char *const reals[] = {
        "-0.00020000000000000001", "{\"x\": 0.1000000000000000000001}",
        "[1.5e0000000000000000001]", "0.00020000000000000001",
    };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        json_t *j = import_parse(reals[i]);
        cr_assert_not_null(j, "'%s' no longer parses after jv_quote_big_ints()", reals[i]);
        json_decref(j);
    }
    double d = -0.0002, back;
    jv_buf w = { 0 }, b = { 0 };
    char err[200];
    cr_assert_eq(jv_write_json(&w, EDB_COL_DOUBLE, &d, 8), 0);
    json_t *j = import_parse(w.p);
    cr_assert_not_null(j, "export wrote '%s', import cannot parse it", w.p);
    cr_assert_eq(jv_from_json(&b, EDB_COL_DOUBLE, j, err, sizeof err), 0, "%s", err);
    memcpy(&back, b.p, 8);
    cr_assert(back == d);
    json_decref(j);
    jv_buf_free(&w);
    jv_buf_free(&b);
}

/* What the fix must keep: integers past int64 are still quoted and read
 * exactly into UINT64 columns, also next to reals with long fractions. */
Test(fuzz_regress, big_integers_still_quoted, .timeout = 10)
{
    json_t *j = import_parse("{\"a\": 18446744073709551615, \"b\": 1.25}");
    cr_assert_not_null(j);
    jv_buf b = { 0 };
    char err[200];
    cr_assert_eq(jv_from_json(&b, EDB_COL_UINT64, json_object_get(j, "a"), err, sizeof err), 0,
                 "%s", err);
    uint64_t v;
    memcpy(&v, b.p, 8);
    cr_assert_eq(v, UINT64_MAX);
    cr_assert_eq(jv_from_json(&b, EDB_COL_INT64, json_object_get(j, "a"), err, sizeof err),
                 EDB_INVAL);
    json_decref(j);
    jv_buf_free(&b);
}

/* Value conversions of dbtool (tools/jsonval.c): every type round-trips
 * through JSON and text without loss; bad input is refused with the right code. */
#include "config.h"

#include <criterion/criterion.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "jsonval.h"

/* native -> JSON text -> jansson -> native must give the same bytes */
static void
round_trip(edb_coltype t, const void *v, size_t n)
{
    jv_buf txt = { 0 }, back = { 0 };
    char err[200] = "";
    cr_assert_eq(jv_write_json(&txt, t, v, n), 0);
    char *fixed = jv_quote_big_ints(txt.p, txt.len);
    json_error_t je;
    json_t *j = json_loads(fixed ? fixed : txt.p, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    cr_assert_not_null(j, "%s: %s", txt.p, je.text);
    int rc = jv_from_json(&back, t, j, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: %s", txt.p, err);
    cr_assert_eq(back.len, n, "%s", txt.p);
    cr_assert(memcmp(back.p, v, n) == 0, "JSON round trip of %s", txt.p);
    /* and through the text form */
    jv_buf t2 = { 0 };
    cr_assert_eq(jv_write_text(&t2, t, v, n), 0);
    cr_assert_eq(jv_from_text(&back, t, t2.p, err, sizeof err), 0, "%s: %s", t2.p, err);
    cr_assert_eq(back.len, n);
    cr_assert(memcmp(back.p, v, n) == 0, "text round trip of %s", t2.p);
    json_decref(j);
    free(fixed);
    jv_buf_free(&txt);
    jv_buf_free(&t2);
    jv_buf_free(&back);
}

Test(jsonval, integers_keep_all_64_bits, .timeout = 10)
{
    int64_t s[] = { 0, 1, -1, INT64_MAX, INT64_MIN, 9007199254740993LL };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        round_trip(EDB_COL_INT64, &s[i], 8);
    uint64_t u[] = { 0, UINT64_MAX, (uint64_t)INT64_MAX + 1, 12345678901234567890ULL };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        round_trip(EDB_COL_UINT64, &u[i], 8);
    int8_t a = -128; round_trip(EDB_COL_INT8, &a, 1);
    uint16_t b = 65535; round_trip(EDB_COL_UINT16, &b, 2);
    int32_t c = INT32_MIN; round_trip(EDB_COL_INT32, &c, 4);
    jv_buf o = { 0 };
    jv_write_json(&o, EDB_COL_UINT64, &u[1], 8);
    cr_assert_str_eq(o.p, "18446744073709551615");
    jv_buf_free(&o);
}

Test(jsonval, reals_round_trip, .timeout = 10)
{
    double d[] = { 0.1, -0.0, 1.0 / 3, DBL_MAX, DBL_MIN, 5e-324, 1e300, INFINITY, -INFINITY, 123456789012345678.0 };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        round_trip(EDB_COL_DOUBLE, &d[i], 8);
    float f[] = { 0.1f, FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45f, 16777217.0f };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        round_trip(EDB_COL_FLOAT, &f[i], 4);
}

Test(jsonval, other_types_round_trip, .timeout = 10)
{
    int64_t dt[] = { 0, 1, -1, 1700000000123456LL, -62135596800000000LL, 253402300799999999LL,
                     INT64_MAX, INT64_MIN };
    for (size_t i = 0; i < sizeof dt / sizeof dt[0]; i++)
        round_trip(EDB_COL_DATETIME, &dt[i], 8);
    uint8_t g[16] = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0, 1, 2, 3, 4, 5, 0xfe, 0xff };
    round_trip(EDB_COL_GUID, g, 16);
    const char *txt = "h\xc3\xa9llo \"q\" \\ \n\t\x01";
    round_trip(EDB_COL_TEXT, txt, strlen(txt));
    uint8_t bin[] = { 0, 0xff, 0x10, 0x80, 0x7f };
    for (size_t n = 0; n <= sizeof bin; n++)
        round_trip(EDB_COL_BINARY, bin, n);
    uint8_t t = 1, f = 0;
    round_trip(EDB_COL_BOOL, &t, 1);
    round_trip(EDB_COL_BOOL, &f, 1);
}

Test(jsonval, formats_are_the_documented_ones, .timeout = 10)
{
    jv_buf o = { 0 };
    int64_t us = 1714564800000001LL;
    jv_write_json(&o, EDB_COL_DATETIME, &us, 8);
    cr_assert_str_eq(o.p, "\"2024-05-01T12:00:00.000001Z\"");
    o.len = 0;
    uint8_t g[16] = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0, 1, 2, 3, 4, 5, 0xfe, 0xff };
    jv_write_json(&o, EDB_COL_GUID, g, 16);
    cr_assert_str_eq(o.p, "\"12345678-9abc-def0-0001-02030405feff\"");
    o.len = 0;
    jv_write_json(&o, EDB_COL_BINARY, "hi!", 3);
    cr_assert_str_eq(o.p, "\"aGkh\"");
    o.len = 0;
    double d = 0.1;
    jv_write_json(&o, EDB_COL_DOUBLE, &d, 8);
    cr_assert_str_eq(o.p, "0.1");
    o.len = 0;
    d = 99.99;
    jv_write_json(&o, EDB_COL_DOUBLE, &d, 8);
    cr_assert_str_eq(o.p, "99.99");
    o.len = 0;
    d = 0.30000000000000004;
    jv_write_json(&o, EDB_COL_DOUBLE, &d, 8);
    cr_assert_str_eq(o.p, "0.30000000000000004");
    jv_buf_free(&o);
    int64_t v;
    cr_assert_eq(jv_datetime_parse(&v, "2024-05-01T14:00:00.000001+02:00"), 0);
    cr_assert_eq(v, us);
    cr_assert_eq(jv_datetime_parse(&v, "1970-01-01"), 0);
    cr_assert_eq(v, 0);
}

static void
refused(edb_coltype t, const char *json, int want)
{
    jv_buf b = { 0 };
    char err[200] = "";
    char *fixed = jv_quote_big_ints(json, strlen(json));
    json_error_t je;
    json_t *j = json_loads(fixed ? fixed : json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    cr_assert_not_null(j, "%s", json);
    cr_assert_eq(jv_from_json(&b, t, j, err, sizeof err), want, "%s accepted or wrong code", json);
    cr_assert_neq(err[0], '\0', "%s: no message", json);
    json_decref(j);
    free(fixed);
    jv_buf_free(&b);
}

Test(jsonval, bad_values_are_refused, .timeout = 10)
{
    refused(EDB_COL_INT8, "128", EDB_INVAL);
    refused(EDB_COL_INT8, "-129", EDB_INVAL);
    refused(EDB_COL_UINT32, "-1", EDB_INVAL);
    refused(EDB_COL_UINT64, "18446744073709551616", EDB_INVAL);
    refused(EDB_COL_INT64, "9223372036854775808", EDB_INVAL);
    refused(EDB_COL_INT32, "\"12\"", EDB_TYPE);
    refused(EDB_COL_INT32, "1.5", EDB_TYPE);
    refused(EDB_COL_TEXT, "12", EDB_TYPE);
    refused(EDB_COL_BOOL, "1", EDB_TYPE);
    refused(EDB_COL_FLOAT, "1e39", EDB_INVAL);
    refused(EDB_COL_DOUBLE, "\"NaN\"", EDB_TYPE);
    refused(EDB_COL_GUID, "\"12345678-9abc-def0-0001-02030405fef\"", EDB_INVAL);
    refused(EDB_COL_GUID, "\"12345678x9abc-def0-0001-02030405feff\"", EDB_INVAL);
    refused(EDB_COL_BINARY, "\"aGk\"", EDB_INVAL);
    refused(EDB_COL_BINARY, "\"aG=h\"", EDB_INVAL);
    refused(EDB_COL_BINARY, "\"aGl=\"", EDB_INVAL);   /* non-canonical padding bits */
    refused(EDB_COL_DATETIME, "\"2023-02-29T00:00:00Z\"", EDB_INVAL);
    refused(EDB_COL_DATETIME, "\"2023-01-01T24:00:00Z\"", EDB_INVAL);
    refused(EDB_COL_DATETIME, "\"2023-01-01T00:00:00.0000001Z\"", EDB_INVAL);
    refused(EDB_COL_DATETIME, "17", EDB_TYPE);
    jv_buf b = { 0 };
    char err[100];
    cr_assert_eq(jv_from_text(&b, EDB_COL_INT16, "12x", err, sizeof err), EDB_INVAL);
    cr_assert_eq(jv_from_text(&b, EDB_COL_INT16, "", err, sizeof err), EDB_INVAL);
    cr_assert_eq(jv_from_text(&b, EDB_COL_DOUBLE, "0x10", err, sizeof err), EDB_INVAL);
    cr_assert_eq(jv_from_text(&b, EDB_COL_DOUBLE, "nan", err, sizeof err), EDB_INVAL);
    cr_assert_eq(jv_from_text(&b, EDB_COL_BOOL, "yes", err, sizeof err), EDB_INVAL);
    jv_buf_free(&b);
}

Test(jsonval, big_integers_are_quoted_only_outside_strings, .timeout = 10)
{
    const char *in = "{\"a\": 18446744073709551615, \"b\": \"18446744073709551615\", \"c\": -9223372036854775809, \"d\": 1.8446744073709551615e19}";
    char *out = jv_quote_big_ints(in, strlen(in));
    cr_assert_not_null(out);
    cr_assert_str_eq(out, "{\"a\": \"\\u000018446744073709551615\", \"b\": \"18446744073709551615\", "
                          "\"c\": \"\\u0000-9223372036854775809\", \"d\": 1.8446744073709551615e19}");
    free(out);
    cr_assert_null(jv_quote_big_ints("{\"a\": 1}", 8));
    /* fractions and exponents of 19+ digits belong to a real: left alone */
    const char *reals[] = { "-0.00020000000000000001", "[1.0000000000000000000001, 2e0000000000000000000001]",
                            "{\"a\": 1E+00000000000000000000005}", "\"9999999999999999999999\"" };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
        cr_assert_null(jv_quote_big_ints(reals[i], strlen(reals[i])), "%s", reals[i]);
    const char *mixed = "[-0.5, 12345678901234567890, \"\\\"1234567890123456789\"]";
    out = jv_quote_big_ints(mixed, strlen(mixed));
    cr_assert_not_null(out);
    cr_assert_str_eq(out, "[-0.5, \"\\u000012345678901234567890\", \"\\\"1234567890123456789\"]");
    free(out);
}

/* A double whose %.17g form has a 19+ digit fraction exports and imports back. */
Test(jsonval, small_doubles_round_trip_through_import_quoting, .timeout = 10)
{
    double d[] = { 0.00020000000000000001, 0.00012345678901234567, -0.00099999999999999999 };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        round_trip(EDB_COL_DOUBLE, &d[i], 8);
    const char *line = "{\"d\": -0.00020000000000000001}";
    char *fixed = jv_quote_big_ints(line, strlen(line));
    cr_assert_null(fixed);
}

/* Criterion's parallel runner leaks a small block now and then: not ours.
 * LeakSanitizer calls this hook in sanitizer builds; elsewhere it is unused. */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
    return "leak:libcriterion.so\n";
}

/* jv_write_json_string writes what jansson's json_dumpb writes for the same
 * string (export's output did not change when it stopped going through
 * jansson): every control byte, quotes, backslashes, multi-byte UTF-8. */
Test(jsonval, json_strings_as_jansson_writes_them, .timeout = 10)
{
    static const char *const pieces[] = { "a", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x01", "\x1f",
                                          "\x7f", "\xc3\xa9", "\xe2\x80\xa8", "\xf0\x9f\x98\x80", " ", "" };
    unsigned seed = 14;
    for (int round = 0; round < 2000; round++) {
        char s[256] = "";
        size_t n = 0;
        int k = round < 32 ? 1 : 1 + rand_r(&seed) % 12;
        for (int i = 0; i < k; i++) {
            const char *p = round < 32 ? (round < 17 ? pieces[round] : (char[]){ (char)(round - 16), 0 })
                                       : pieces[rand_r(&seed) % (sizeof pieces / sizeof pieces[0])];
            memcpy(s + n, p, strlen(p));
            n += strlen(p);
        }
        json_t *j = json_stringn_nocheck(s, n);
        cr_assert_not_null(j);
        char want[2048];
        size_t wn = json_dumpb(j, want, sizeof want, JSON_ENCODE_ANY);
        json_decref(j);
        cr_assert_gt(wn, 0);
        jv_buf out = { 0 };
        cr_assert_eq(jv_buf_adds(&out, "x"), 0);
        cr_assert_eq(jv_write_json_string(&out, s, n), 0);
        cr_assert_eq(out.len, wn + 1, "round %d: %.*s against %s", round, (int)wn, want, out.p);
        cr_assert(memcmp(out.p + 1, want, wn) == 0, "round %d: %.*s against %s", round, (int)wn, want, out.p + 1);
        cr_assert_eq(out.p[out.len], '\0');
        jv_buf_free(&out);
    }
}

/* Integers and datetimes are formatted without snprintf: the same bytes as
 * printf's %d / %u and the documented ISO 8601 form, at the extremes and on
 * random values. */
Test(jsonval, integers_and_datetimes_as_printf_writes_them, .timeout = 10)
{
    unsigned seed = 12;
    for (int round = 0; round < 4000; round++) {
        uint64_t u = ((uint64_t)rand_r(&seed) << 42) ^ ((uint64_t)rand_r(&seed) << 21) ^ (uint64_t)rand_r(&seed);
        u >>= rand_r(&seed) % 64;
        if (round < 4)
            u = round == 0 ? 0 : round == 1 ? UINT64_MAX : round == 2 ? (uint64_t)INT64_MIN : (uint64_t)INT64_MAX;
        char want[64];
        jv_buf out = { 0 };
        int64_t s64 = (int64_t)u;
        cr_assert_eq(jv_write_json(&out, EDB_COL_INT64, &s64, 8), 0);
        snprintf(want, sizeof want, "%" PRId64, s64);
        cr_assert_str_eq(out.p, want);
        out.len = 0;
        cr_assert_eq(jv_write_json(&out, EDB_COL_UINT64, &u, 8), 0);
        snprintf(want, sizeof want, "%" PRIu64, u);
        cr_assert_str_eq(out.p, want);
        out.len = 0;
        int32_t s32 = (int32_t)(uint32_t)u;
        cr_assert_eq(jv_write_text(&out, EDB_COL_INT32, &s32, 4), 0);
        snprintf(want, sizeof want, "%" PRId32, s32);
        cr_assert_str_eq(out.p, want);
        out.len = 0;
        int8_t s8 = (int8_t)(uint8_t)u;
        cr_assert_eq(jv_write_json(&out, EDB_COL_INT8, &s8, 1), 0);
        snprintf(want, sizeof want, "%d", s8);
        cr_assert_str_eq(out.p, want);
        /* datetimes from year 0 to 9999 and the microseconds */
        int64_t us = (int64_t)(u % (UINT64_C(315537897600) * 1000000)) - INT64_C(62167219200) * 1000000;
        if (round == 0)
            us = -INT64_C(62167219200) * 1000000;   /* 0000-01-01T00:00:00.000000Z */
        char dt[48];
        cr_assert_eq(jv_datetime_format(dt, sizeof dt, us), 0);
        int64_t back;
        cr_assert_eq(jv_datetime_parse(&back, dt), 0, "%s", dt);
        cr_assert_eq(back, us, "%s", dt);
        cr_assert_eq(strlen(dt), 27, "%s", dt);
        cr_assert(dt[4] == '-' && dt[7] == '-' && dt[10] == 'T' && dt[13] == ':' && dt[16] == ':' &&
                  dt[19] == '.' && dt[26] == 'Z', "%s", dt);
        out.len = 0;
        cr_assert_eq(jv_write_json(&out, EDB_COL_DATETIME, &us, 8), 0);
        snprintf(want, sizeof want, "\"%s\"", dt);
        cr_assert_str_eq(out.p, want);
        jv_buf_free(&out);
    }
    char small[27];
    int64_t z = 0;
    cr_assert_eq(jv_datetime_format(small, sizeof small, z), EDB_INVAL, "no room for the terminator");
}

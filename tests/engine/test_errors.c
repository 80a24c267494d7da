/* The error table: codes, names and messages come from one X-macro. */
#include <criterion/criterion.h>
#include <string.h>

#include "edb.h"

Test(errors, names_and_messages_cover_every_code, .timeout = 10)
{
#define CHECK(name, value, msg)                                          \
    cr_assert_str_eq(edb_err_name(value), "EDB_" #name);                 \
    cr_assert_str_eq(edb_strerror(value), msg);
    EDB_ERROR_MAP(CHECK)
#undef CHECK
    cr_assert_str_eq(edb_err_name(-9999), "EDB_UNKNOWN");
    cr_assert_str_eq(edb_strerror(12345), "unknown error");
}

Test(errors, signs_are_the_contract, .timeout = 10)
{
    cr_assert_eq(EDB_OK, 0);
    cr_assert_gt(EDB_WRN_NULL, 0);
    cr_assert_gt(EDB_WRN_TRUNCATED, 0);
    int errs[] = { EDB_NOTFOUND, EDB_KEYDUP, EDB_EXISTS, EDB_INVAL, EDB_READONLY, EDB_BUSY,
                   EDB_TXNDEPTH, EDB_TOOBIG, EDB_FULL, EDB_CORRUPT, EDB_CHECKSUM, EDB_CANCELED };
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++)
        cr_assert_lt(errs[i], 0, "%s", edb_err_name(errs[i]));
}

Test(errors, last_error_is_never_null, .timeout = 10)
{
    cr_assert_not_null(edb_error_last());
    cr_assert_str_eq(edb_version(), EDB_VERSION_STRING);
}

/*
 * Property tests of the key codec (engine/key.c): memcmp order of encodings
 * equals value order, decode inverts encode, segments self-delimit.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "key.h"

static int
sgn(int x)
{
    return (x > 0) - (x < 0);
}

static int
bytes_cmp(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    int c = memcmp(a, b, n);
    if (c != 0)
        return sgn(c);
    return (na > nb) - (na < nb);
}

Test(keys, int32_order_and_round_trip, .timeout = 10)
{
    int32_t vals[] = { INT32_MIN, -70000, -1, 0, 1, 255, 256, 70000, INT32_MAX };
    size_t nv = sizeof vals / sizeof vals[0];
    for (int desc = 0; desc < 2; desc++)
        for (size_t i = 0; i < nv; i++)
            for (size_t j = 0; j < nv; j++) {
                uint8_t a[16], b[16];
                size_t la = 0, lb = 0;
                cr_assert_eq(edb__key_append(a, sizeof a, &la, EDB_COL_INT32, &vals[i], 4, desc), 0);
                cr_assert_eq(edb__key_append(b, sizeof b, &lb, EDB_COL_INT32, &vals[j], 4, desc), 0);
                int want = (vals[i] > vals[j]) - (vals[i] < vals[j]);
                if (desc)
                    want = -want;
                cr_assert_eq(bytes_cmp(a, la, b, lb), want, "%d vs %d desc=%d", vals[i], vals[j], desc);
                int32_t back = 0;
                size_t off = 0, sz = 0;
                cr_assert_eq(edb__key_decode(a, la, &off, EDB_COL_INT32, desc, &back, 4, &sz), 0);
                cr_assert_eq(back, vals[i]);
                cr_assert_eq(off, la);
                cr_assert_eq(sz, 4);
            }
}

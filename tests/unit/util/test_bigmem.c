/* test_bigmem.c — the growable big arrays (util/bigmem.h). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "util/bigmem.h"

Test(bigmem, grows_keeping_contents_with_zeroed_new_bytes)
{
    size_t small = 3000, big = 5u << 20; /* past a page, then past a huge page */
    uint8_t *p = vd_bigmem_resize(NULL, 0, small);
    cr_assert_not_null(p);
    for (size_t i = 0; i < small; i++)
        cr_assert_eq(p[i], 0);
    memset(p, 0xab, small);
    p = vd_bigmem_resize(p, small, big);
    cr_assert_not_null(p);
    for (size_t i = 0; i < small; i++)
        cr_assert_eq(p[i], 0xab, "byte %zu lost in the move", i);
    for (size_t i = small; i < big; i += 4093)
        cr_assert_eq(p[i], 0, "new byte %zu not zero", i);
    p[big - 1] = 7; /* the last byte is ours */
    uint8_t *q = vd_bigmem_resize(p, big, 2 * big);
    cr_assert_not_null(q);
    cr_assert_eq(q[big - 1], 7);
    cr_assert_eq(q[0], 0xab);
    vd_bigmem_free(q, 2 * big);
    vd_bigmem_free(NULL, 0);
}

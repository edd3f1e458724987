/* vd_fmt_float (util/fmtfloat.h): the same text as printf("%.9g") for every
 * float tried: edges, embedding-like values, and random bit patterns. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fmtfloat.h"

static void same_as_printf(float f)
{
    char want[64], got[VD_FMT_FLOAT_MAX];
    snprintf(want, sizeof want, "%.9g", (double)f);
    size_t n = vd_fmt_float(f, got);
    cr_assert(n == strlen(got) && strcmp(got, want) == 0, "%a: got %s, printf %s", (double)f, got, want);
}

Test(fmtfloat, edges)
{
    static const float edges[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.1f, 0.5f, 1e-4f, 9.99999e-5f, 1e-5f, 123456789.0f,
                                  999999999.0f, 1e9f, 1e10f, 3.40282347e38f, 1.17549435e-38f, 1.4e-45f, 1e-20f,
                                  1e-19f, 16777216.0f, 16777217.0f, 100.0f, 1e8f, 0.999999999f, 9.5f, 0.30000001f,
                                  INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++)
        same_as_printf(edges[i]);
    for (int x = -45; x <= 38; x++) /* powers of ten and their neighbours */
        for (int s = -2; s <= 2; s++) {
            float f = (float)pow(10.0, x);
            uint32_t b;
            memcpy(&b, &f, 4);
            b += (uint32_t)s;
            memcpy(&f, &b, 4);
            same_as_printf(f);
        }
}

Test(fmtfloat, embedding_like_and_random_bit_patterns)
{
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 1000000; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        uint32_t b = (uint32_t)s;
        float f;
        memcpy(&f, &b, 4);
        same_as_printf(f);                                         /* any pattern */
        same_as_printf((float)((double)(b % 2000000) / 1e7 - 0.1)); /* -0.1 .. 0.1 */
    }
}

/* Integers and millisecond times: the text printf gives, for edges and
 * many random values. */
Test(fmtfloat, integers_and_milliseconds_as_printf_writes_them)
{
    uint64_t edges[] = {0, 1, 9, 10, 99, 100, 999, 1000, 1001, 1010, 1100, 123456789, 4294967295ull,
                        4294967296ull, 9007199254740991ull, 9007199254740993ull, 999999999999999ull,
                        18446744073709551615ull};
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000 + (int)(sizeof edges / sizeof *edges); i++) {
        uint64_t v;
        if (i < (int)(sizeof edges / sizeof *edges)) {
            v = edges[i];
        } else {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            v = x >> (x % 64); /* every magnitude */
        }
        char got[32], want[40];
        size_t n = vd_fmt_u64(v, got);
        snprintf(want, sizeof want, "%llu", (unsigned long long)v);
        cr_assert_str_eq(got, want);
        cr_assert_eq(n, strlen(want));
        uint64_t us = v % 1000000000000000ull; /* below 10^15 µs */
        n = vd_fmt_millis(us, got);
        snprintf(want, sizeof want, "%.15g", (double)(long long)us / 1e3);
        cr_assert_str_eq(got, want, "%llu µs", (unsigned long long)us);
        cr_assert_eq(n, strlen(want));
    }
}

/* Range bits (util/rangebits.c): the portable path and, where the CPU has
 * it, the AVX2 path give, for every word length, exactly the bits of
 * lo <= x <= hi computed one value at a time, with the values a filter's
 * column holds at the edges: NaN (no value), ±0, ±infinity, the bounds
 * themselves and their neighbours. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "util/rangebits.h"

static bool avx2_here(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

/* A value near the edges of [lo, hi], or anywhere. */
static double edge_value(double lo, double hi)
{
    switch (rand() % 12) {
    case 0: return NAN;
    case 1: return -0.0;
    case 2: return 0.0;
    case 3: return INFINITY;
    case 4: return -INFINITY;
    case 5: return lo;
    case 6: return hi;
    case 7: return nextafter(lo, -INFINITY);
    case 8: return nextafter(hi, INFINITY);
    case 9: return nextafter(lo, INFINITY);
    default: return (rand() / (double)RAND_MAX - 0.5) * 400.0;
    }
}

static uint64_t reference(const double *x, size_t n, double lo, double hi)
{
    uint64_t m = 0;
    for (size_t b = 0; b < n; b++)
        if (x[b] >= lo && x[b] <= hi)
            m |= 1ULL << b;
    return m;
}

Test(rangebits, every_path_matches_the_reference_at_every_length)
{
    srand(11);
    bool paths[2] = {false, avx2_here()};
    const double bounds[][2] = {{0, 0.9999}, {-5, 5}, {-INFINITY, 3}, {-0.0, 0.0}, {10, -10},
                                {-INFINITY, INFINITY}, {1e300, INFINITY}};
    double x[64];
    for (int round = 0; round < 4000; round++) {
        const double *bd = bounds[round % (int)(sizeof bounds / sizeof bounds[0])];
        double lo = bd[0], hi = bd[1];
        for (size_t b = 0; b < 64; b++)
            x[b] = edge_value(lo, hi);
        size_t n = round % 3 ? 64 : (size_t)(rand() % 65);
        uint64_t want = reference(x, n, lo, hi);
        for (int p = 0; p < 2; p++) {
            if (p && !paths[1])
                continue;
            cr_assert_eq(vd_range_bits(x, n, lo, hi, paths[p]), want,
                         "round %d, n %zu, [%g, %g], %s path", round, n, lo, hi, p ? "AVX2" : "portable");
        }
    }
}

Test(rangebits, nan_is_never_in_range_and_an_empty_range_holds_nothing)
{
    double x[64];
    for (size_t b = 0; b < 64; b++)
        x[b] = b % 2 ? NAN : (double)b;
    for (int p = 0; p < 2; p++) {
        if (p && !avx2_here())
            continue;
        cr_assert_eq(vd_range_bits(x, 64, -INFINITY, INFINITY, p), 0x5555555555555555ULL);
        cr_assert_eq(vd_range_bits(x, 64, 5, 4, p), 0);
        cr_assert_eq(vd_range_bits(x, 64, 2, 2, p), 1ULL << 2);
    }
}

/* rangebits.c — see rangebits.h. */
#include "util/rangebits.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* One value at a time: the reference, and the tail of a short word. */
static uint64_t bits_scalar(const double *x, size_t n, double lo, double hi)
{
    uint64_t m = 0;
    for (size_t b = 0; b < n; b++)
        m |= (uint64_t)((x[b] >= lo) & (x[b] <= hi)) << b;
    return m;
}

#if defined(__x86_64__)
/* Two at a time: SSE2 is part of x86-64, so this needs no check. */
static uint64_t bits_sse2(const double *x, double lo, double hi)
{
    const __m128d l = _mm_set1_pd(lo), h = _mm_set1_pd(hi);
    uint64_t m = 0;
    for (size_t b = 0; b < 64; b += 2) {
        __m128d v = _mm_loadu_pd(x + b);
        m |= (uint64_t)_mm_movemask_pd(_mm_and_pd(_mm_cmpge_pd(v, l), _mm_cmple_pd(v, h))) << b;
    }
    return m;
}

/* Four at a time; ordered comparisons, so NaN is out of range. */
__attribute__((target("avx2"))) static uint64_t bits_avx2(const double *x, double lo, double hi)
{
    const __m256d l = _mm256_set1_pd(lo), h = _mm256_set1_pd(hi);
    uint64_t m = 0;
    for (size_t b = 0; b < 64; b += 4) {
        __m256d v = _mm256_loadu_pd(x + b);
        __m256d in = _mm256_and_pd(_mm256_cmp_pd(v, l, _CMP_GE_OQ), _mm256_cmp_pd(v, h, _CMP_LE_OQ));
        m |= (uint64_t)_mm256_movemask_pd(in) << b;
    }
    return m;
}
#endif

uint64_t vd_range_bits(const double *x, size_t n, double lo, double hi, bool avx2)
{
#if defined(__x86_64__)
    if (n == 64)
        return avx2 ? bits_avx2(x, lo, hi) : bits_sse2(x, lo, hi);
#else
    (void)avx2;
#endif
    return bits_scalar(x, n, lo, hi);
}

/*
 * rangebits.h — which of 64 doubles lie in a closed range [lo, hi], as the
 * bits of one word: the column scan behind a range filter on a numeric
 * payload index (db/filter.c), which reads every slot's value once per
 * search. One value at a time that scan took 80% of a search with a 1%
 * range filter on 331k points (about 1.2 ns a value); two (SSE2, every
 * x86-64) or four (AVX2) at a time it takes a third or a tenth of that
 * (bench in docs/BENCHMARKS.md). NaN (no value) is never in range.
 */
#ifndef VD_RANGEBITS_H
#define VD_RANGEBITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bit b set when lo <= x[b] <= hi, for b < n (n <= 64); bits from n on are
 * 0. avx2: the caller checked that the CPU runs AVX2 (and that the `simd`
 * setting allows it); otherwise the portable path runs. */
uint64_t vd_range_bits(const double *x, size_t n, double lo, double hi, bool avx2);

#endif

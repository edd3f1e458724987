/*
 * distance_avx512.c — AVX-512F float32 and fp16 kernels (compiled with
 * -mavx512f only here). Two 16-lane float32 accumulators; the tail (< 32 floats) uses masked
 * loads, so no scalar loop and no read past the end of either input.
 */
#include "vectord/distance.h"

#include <immintrin.h>

float vd_dist_dot_f32_avx512(const float *a, const float *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < dim; i += 16) {
        size_t left = dim - i;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float vd_dist_l2sq_f32_avx512(const float *a, const float *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    for (; i < dim; i += 16) {
        size_t left = dim - i;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* ---- fp16 codes: VCVTPH2PS widens 16 halves at a time ---------------------- */

static inline __m512 load_half16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}

/* The last < 16 halves, zero-padded (a masked 16-bit load needs AVX-512BW). */
static inline __m512 load_half_tail(const uint16_t *p, size_t left)
{
    uint16_t buf[16] = {0};
    for (size_t j = 0; j < left; j++)
        buf[j] = p[j];
    return load_half16(buf);
}

float vd_dist_dot_f16_avx512(const float *a, const uint16_t *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load_half16(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), load_half16(b + i + 16), s1);
    }
    for (; i < dim; i += 16) {
        size_t left = dim - i;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 h = left >= 16 ? load_half16(b + i) : load_half_tail(b + i, left);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), h, s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float vd_dist_l2sq_f16_avx512(const float *a, const uint16_t *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), load_half16(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), load_half16(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    for (; i < dim; i += 16) {
        size_t left = dim - i;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 h = left >= 16 ? load_half16(b + i) : load_half_tail(b + i, left);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), h);
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/*
 * distance_avx2.c — AVX2+FMA float32 kernels (compiled with -mavx2 -mfma only
 * here). Two 8-lane float32 accumulators hide FMA latency; the tail (< 16
 * floats) runs one 8-wide step if it fits, then scalar. Unaligned loads.
 */
#include "vectord/distance.h"

#include <immintrin.h>

static inline float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

float vd_dist_dot_f32_avx2(const float *a, const float *b, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    if (i + 8 <= dim) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        i += 8;
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < dim; i++)
        s += a[i] * b[i];
    return s;
}

float vd_dist_l2sq_f32_avx2(const float *a, const float *b, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    if (i + 8 <= dim) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        i += 8;
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

/* ---- fp16 codes (F16C) ----------------------------------------------------- */

static inline __m256 load_half8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

float vd_dist_dot_f16_avx2(const float *a, const uint16_t *b, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_half8(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), load_half8(b + i + 8), s1);
    }
    if (i + 8 <= dim) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_half8(b + i), s0);
        i += 8;
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < dim; i++)
        s += a[i] * vd_f32_from_f16(b[i]);
    return s;
}

float vd_dist_l2sq_f16_avx2(const float *a, const uint16_t *b, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), load_half8(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), load_half8(b + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    if (i + 8 <= dim) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), load_half8(b + i));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        i += 8;
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < dim; i++) {
        float d = a[i] - vd_f32_from_f16(b[i]);
        s += d * d;
    }
    return s;
}

/* ---- byte codes -------------------------------------------------------------
 * 16 bytes per step widened to int16; VPMADDWD multiplies and adds pairs into
 * eight int32 lanes (exact: |255 * 127 * 2| fits easily). */
int32_t vd_dist_dot_u8s8_avx2(const uint8_t *c, const int8_t *q, size_t dim)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m256i c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(c + i)));
        __m256i q0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(q + i)));
        __m256i c1 =
            _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(c + i + 16)));
        __m256i q1 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(q + i + 16)));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(c0, q0));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(c1, q1));
    }
    if (i + 16 <= dim) {
        __m256i c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(c + i)));
        __m256i q0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(q + i)));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(c0, q0));
        i += 16;
    }
    __m256i s = _mm256_add_epi32(s0, s1);
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    int32_t sum = _mm_cvtsi128_si32(h);
    for (; i < dim; i++)
        sum += (int32_t)c[i] * q[i];
    return sum;
}

/*
 * distance_avx512vnni.c — the byte-code kernel with AVX-512 VNNI (compiled
 * with -mavx512f -mavx512bw -mavx512vnni only here). VPDPBUSD multiplies 64
 * unsigned code bytes by 64 signed query bytes and adds each group of four
 * products into one of 16 int32 lanes; the tail uses masked byte loads, so no
 * scalar loop and no read past either input.
 */
#include "vectord/distance.h"

#include <immintrin.h>

int32_t vd_dist_dot_u8s8_avx512vnni(const uint8_t *c, const int8_t *q, size_t dim)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 128 <= dim; i += 128) {
        s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(c + i), _mm512_loadu_si512(q + i));
        s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512(c + i + 64),
                                 _mm512_loadu_si512(q + i + 64));
    }
    for (; i < dim; i += 64) {
        size_t left = dim - i;
        __mmask64 m = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
        s0 = _mm512_dpbusd_epi32(s0, _mm512_maskz_loadu_epi8(m, c + i),
                                 _mm512_maskz_loadu_epi8(m, q + i));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

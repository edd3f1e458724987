/*
 * distance.c — portable reference kernels, CPU detection and the dispatch table.
 *
 * The scalar kernels keep 8 independent float32 partial sums (so the compiler
 * may vectorise them with baseline SSE2 and the summation order is close to the
 * SIMD kernels'), then add the partials pairwise. The dispatch table is filled
 * once by vd_distance_init() from main() before any thread starts; afterwards it
 * is read-only.
 */
#include "vectord/distance.h"

#include <cpuid.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

float vd_dist_dot_f32_scalar(const float *a, const float *b, size_t dim)
{
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= dim; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    for (; i < dim; i++)
        acc[i & 7] += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

float vd_dist_l2sq_f32_scalar(const float *a, const float *b, size_t dim)
{
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
        for (int j = 0; j < 8; j++) {
            float d = a[i + j] - b[i + j];
            acc[j] += d * d;
        }
    }
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        acc[i & 7] += d * d;
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* ---- binary16 ------------------------------------------------------------ */

float vd_f32_from_f16(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0x1f) { /* infinity, NaN */
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) { /* normal: rebias 15 -> 127 */
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal half: normalise */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400u));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t vd_f16_from_f32(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* infinity or NaN (keep a quiet NaN) */
        return sign | (ax > 0x7f800000u ? 0x7e00u : 0x7c00u);
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow */
        return sign | 0x7c00u;
    if (ax < 0x38800000u) { /* below the smallest normal half 2^-14 */
        if (ax < 0x33000000u) /* below half the smallest subnormal: zero */
            return sign;
        /* subnormal: mantissa with its implicit bit, shifted into 10 bits */
        uint32_t e = ax >> 23, man = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e; /* 14..24 */
        uint32_t half = man >> shift, rest = man & ((1u << shift) - 1u), mid = 1u << (shift - 1u);
        if (rest > mid || (rest == mid && (half & 1u)))
            half++;
        return sign | (uint16_t)half;
    }
    /* normal: rebias, round the 13 dropped bits to nearest even */
    uint32_t h = ((ax >> 13) - (112u << 10));
    uint32_t rest = ax & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
        h++; /* may carry into the exponent: still correct */
    return sign | (uint16_t)h;
}

float vd_dist_dot_f16_scalar(const float *a, const uint16_t *b, size_t dim)
{
    float acc[8] = {0};
    for (size_t i = 0; i < dim; i++)
        acc[i & 7] += a[i] * vd_f32_from_f16(b[i]);
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

float vd_dist_l2sq_f16_scalar(const float *a, const uint16_t *b, size_t dim)
{
    float acc[8] = {0};
    for (size_t i = 0; i < dim; i++) {
        float d = a[i] - vd_f32_from_f16(b[i]);
        acc[i & 7] += d * d;
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

int32_t vd_dist_dot_u8s8_scalar(const uint8_t *c, const int8_t *q, size_t dim)
{
    int32_t s = 0;
    for (size_t i = 0; i < dim; i++)
        s += (int32_t)c[i] * q[i];
    return s;
}

/* ---- CPU detection --------------------------------------------------------- */

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

bool vd_isa_supported(vd_isa isa)
{
    if (isa == VD_ISA_SCALAR)
        return true;
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return false;
    bool osxsave = c & bit_OSXSAVE, fma = c & bit_FMA, avx = c & bit_AVX, f16c = c & bit_F16C;
    if (!osxsave || !avx)
        return false;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) /* XMM and YMM state enabled by the OS */
        return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return false;
    bool avx2 = fma && f16c && (b & bit_AVX2);
    if (isa == VD_ISA_AVX2)
        return avx2;
    bool avx512 = avx2 && (b & bit_AVX512F) && (xcr0 & 0xe6) == 0xe6; /* opmask, ZMM state */
    if (isa == VD_ISA_AVX512)
        return avx512;
    if (isa == VD_ISA_AVX512_VNNI)
        return avx512 && (b & bit_AVX512BW) && (c & bit_AVX512VNNI);
    return false;
}

static const char *const isa_names[VD_ISA_COUNT] = {"scalar", "avx2", "avx512", "avx512vnni"};

const char *vd_isa_name(vd_isa isa)
{
    return (unsigned)isa < VD_ISA_COUNT ? isa_names[isa] : "unknown";
}

int vd_isa_parse(const char *name, int *out)
{
    if (strcmp(name, "auto") == 0) {
        *out = -1;
        return 0;
    }
    for (int i = 0; i < VD_ISA_COUNT; i++) {
        if (strcmp(name, isa_names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

/* AVX-512 without VNNI keeps AVX2's byte kernel: widening bytes to 16 bits
 * gains nothing from wider registers worth a third kernel. */
static const vd_distance_table tables[VD_ISA_COUNT] = {
    {VD_ISA_SCALAR, vd_dist_dot_f32_scalar, vd_dist_l2sq_f32_scalar, vd_dist_dot_f16_scalar,
     vd_dist_l2sq_f16_scalar, vd_dist_dot_u8s8_scalar},
    {VD_ISA_AVX2, vd_dist_dot_f32_avx2, vd_dist_l2sq_f32_avx2, vd_dist_dot_f16_avx2,
     vd_dist_l2sq_f16_avx2, vd_dist_dot_u8s8_avx2},
    {VD_ISA_AVX512, vd_dist_dot_f32_avx512, vd_dist_l2sq_f32_avx512, vd_dist_dot_f16_avx512,
     vd_dist_l2sq_f16_avx512, vd_dist_dot_u8s8_avx2},
    {VD_ISA_AVX512_VNNI, vd_dist_dot_f32_avx512, vd_dist_l2sq_f32_avx512, vd_dist_dot_f16_avx512,
     vd_dist_l2sq_f16_avx512, vd_dist_dot_u8s8_avx512vnni},
};

/* Written only by vd_distance_init() before threads start. */
const vd_distance_table *vd_distance_active = &tables[VD_ISA_SCALAR];

const vd_distance_table *vd_distance_for(vd_isa isa)
{
    if ((unsigned)isa >= VD_ISA_COUNT || !vd_isa_supported(isa))
        return NULL;
    return &tables[isa];
}

const vd_distance_table *vd_distance_init(int max_isa)
{
    int top = (max_isa < 0 || max_isa >= VD_ISA_COUNT) ? VD_ISA_COUNT - 1 : max_isa;
    for (int isa = top; isa >= VD_ISA_SCALAR; isa--) {
        if (vd_isa_supported((vd_isa)isa)) {
            vd_distance_active = &tables[isa];
            break;
        }
    }
    return vd_distance_active;
}

float vd_normalize(float *v, size_t dim)
{
    /* double accumulation: the norm is computed once per vector, accuracy wins. */
    double s = 0;
    for (size_t i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    double norm = sqrt(s);
    if (norm > 0) {
        /* In double: 1/norm of a tiny (subnormal) vector overflows a float. */
        double inv = 1.0 / norm;
        for (size_t i = 0; i < dim; i++)
            v[i] = (float)(v[i] * inv);
    }
    return (float)norm;
}

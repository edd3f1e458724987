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
    bool osxsave = c & bit_OSXSAVE, fma = c & bit_FMA, avx = c & bit_AVX;
    if (!osxsave || !avx)
        return false;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) /* XMM and YMM state enabled by the OS */
        return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return false;
    if (isa == VD_ISA_AVX2)
        return fma && (b & bit_AVX2);
    if (isa == VD_ISA_AVX512)
        return (b & bit_AVX512F) && (xcr0 & 0xe6) == 0xe6; /* opmask, ZMM state */
    return false;
}

static const char *const isa_names[] = {"scalar", "avx2", "avx512"};

const char *vd_isa_name(vd_isa isa) { return (unsigned)isa < 3 ? isa_names[isa] : "unknown"; }

int vd_isa_parse(const char *name, int *out)
{
    if (strcmp(name, "auto") == 0) {
        *out = -1;
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, isa_names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

static const vd_distance_table tables[] = {
    {VD_ISA_SCALAR, vd_dist_dot_f32_scalar, vd_dist_l2sq_f32_scalar},
    {VD_ISA_AVX2, vd_dist_dot_f32_avx2, vd_dist_l2sq_f32_avx2},
    {VD_ISA_AVX512, vd_dist_dot_f32_avx512, vd_dist_l2sq_f32_avx512},
};

/* Written only by vd_distance_init() before threads start. */
const vd_distance_table *vd_distance_active = &tables[VD_ISA_SCALAR];

const vd_distance_table *vd_distance_for(vd_isa isa)
{
    if ((unsigned)isa > VD_ISA_AVX512 || !vd_isa_supported(isa))
        return NULL;
    return &tables[isa];
}

const vd_distance_table *vd_distance_init(int max_isa)
{
    int top = (max_isa < 0 || max_isa > VD_ISA_AVX512) ? VD_ISA_AVX512 : max_isa;
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
        float inv = (float)(1.0 / norm);
        for (size_t i = 0; i < dim; i++)
            v[i] *= inv;
    }
    return (float)norm;
}

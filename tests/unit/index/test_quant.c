/* Quantized kernels and codes: every ISA path against the scalar one, and
 * every quantized key against the float reference within its documented
 * bound (vectord/quant.h), all dims 1..1100. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "vectord/distance.h"
#include "vectord/index.h"
#include "vectord/quant.h"

#define MAX_DIM 1100

static uint64_t rng_state;
static double uniform(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static void fill(float *v, size_t n, uint64_t seed, double scale)
{
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t i = 0; i < n; i++)
        v[i] = (float)((uniform() * 2 - 1) * scale);
}

Test(f16, every_half_round_trips)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = vd_f32_from_f16((uint16_t)h);
        if (isnan(f))
            continue;
        cr_assert_eq(vd_f16_from_f32(f), h, "half %#x -> %g -> %#x", h, f, vd_f16_from_f32(f));
    }
    cr_assert(isnan(vd_f32_from_f16(vd_f16_from_f32(NAN))));
    cr_assert_eq(vd_f16_from_f32(1e6f), 0x7c00);
    cr_assert_eq(vd_f16_from_f32(-1e6f), 0xfc00);
    cr_assert_eq(vd_f16_from_f32(1e-9f), 0);
}

/* Each float converts to a nearest half (ties aside, a neighbour is never nearer). */
Test(f16, conversion_rounds_to_nearest)
{
    rng_state = 7;
    for (int i = 0; i < 200000; i++) {
        double mag = pow(2.0, uniform() * 44 - 28); /* subnormals to near the top */
        float f = (float)((uniform() < 0.5 ? -1 : 1) * mag);
        if (fabsf(f) > 65504)
            continue;
        uint16_t h = vd_f16_from_f32(f);
        double err = fabs((double)vd_f32_from_f16(h) - f);
        for (int d = -1; d <= 1; d += 2) {
            uint16_t n = (uint16_t)(h + d);
            if ((n & 0x7c00) == 0x7c00 || (n & 0x7fff) == 0x7fff)
                continue;
            double other = fabs((double)vd_f32_from_f16(n) - f);
            if ((n ^ h) & 0x8000)
                continue; /* crossed zero */
            cr_assert(err <= other, "%.9g -> %#x (err %g) but %#x is nearer (%g)", f, h, err, n, other);
        }
    }
}

static void expect_close(float got, float want, size_t dim, double mag)
{
    double tol = 1e-5 * (double)dim * mag + 1e-5;
    cr_assert(fabs((double)got - (double)want) <= tol, "dim %zu: got %.9g want %.9g", dim, got, want);
}

static void check_kernels(vd_isa isa)
{
    const vd_distance_table *t = vd_distance_for(isa);
    if (!t) {
        cr_skip_test("ISA %s not supported by this CPU: skipped", vd_isa_name(isa));
        return;
    }
    float *a = malloc((MAX_DIM + 1) * sizeof(float)), *x = malloc(MAX_DIM * sizeof(float));
    uint16_t *hbuf = malloc((MAX_DIM + 1) * 2);
    uint8_t *cbuf = malloc(MAX_DIM + 1);
    int8_t *qbuf = malloc(MAX_DIM + 2);
    for (size_t dim = 1; dim <= MAX_DIM; dim++) {
        for (size_t off = 0; off < 2; off++) {
            float *q = a + off;
            uint16_t *h = hbuf + off;
            uint8_t *c = cbuf + off;
            int8_t *q8 = qbuf + 1 + off;
            fill(q, dim, dim, 1.0);
            fill(x, dim, dim * 7 + 1, 1.0);
            for (size_t i = 0; i < dim; i++)
                h[i] = vd_f16_from_f32(x[i]);
            expect_close(t->dot_f16(q, h, dim), vd_dist_dot_f16_scalar(q, h, dim), dim, 1.0);
            expect_close(t->l2sq_f16(q, h, dim), vd_dist_l2sq_f16_scalar(q, h, dim), dim, 4.0);
            for (size_t i = 0; i < dim; i++) {
                c[i] = (uint8_t)(uniform() * 256);
                q8[i] = (int8_t)(uniform() * 255 - 127);
            }
            cr_assert_eq(t->dot_u8s8(c, q8, dim), vd_dist_dot_u8s8_scalar(c, q8, dim), "dim %zu", dim);
            /* extremes: no saturation anywhere */
            for (size_t i = 0; i < dim; i++) {
                c[i] = 255;
                q8[i] = (int8_t)(i & 1 ? -127 : 127);
            }
            cr_assert_eq(t->dot_u8s8(c, q8, dim), vd_dist_dot_u8s8_scalar(c, q8, dim));
            for (size_t i = 0; i < dim; i++)
                q8[i] = -127;
            cr_assert_eq(t->dot_u8s8(c, q8, dim), -255 * 127 * (int32_t)dim);
        }
    }
    free(a);
    free(x);
    free(hbuf);
    free(cbuf);
    free(qbuf);
}

Test(kernels, avx2_matches_scalar) { check_kernels(VD_ISA_AVX2); }
Test(kernels, avx512_matches_scalar) { check_kernels(VD_ISA_AVX512); }
Test(kernels, avx512vnni_matches_scalar) { check_kernels(VD_ISA_AVX512_VNNI); }
Test(kernels, scalar_matches_itself_and_reference)
{
    check_kernels(VD_ISA_SCALAR);
    float q[3] = {1, 2, 3};
    uint16_t h[3] = {vd_f16_from_f32(0.5f), vd_f16_from_f32(-1), vd_f16_from_f32(2)};
    cr_assert_float_eq(vd_dist_dot_f16_scalar(q, h, 3), 0.5f - 2 + 6, 1e-6);
    cr_assert_float_eq(vd_dist_l2sq_f16_scalar(q, h, 3), 0.25f + 9 + 1, 1e-6);
}

/* Quantized keys against the exact float key, for one ISA as the dispatch table. */
static void check_keys(vd_isa isa, vd_quant quant)
{
    if (!vd_isa_supported(isa)) {
        cr_skip_test("ISA %s not supported by this CPU: skipped", vd_isa_name(isa));
        return;
    }
    cr_assert_eq(vd_distance_init((int)isa)->isa, isa);
    size_t size = vd_quant_code_size(quant, MAX_DIM);
    uint8_t *code = malloc(size);
    float *q = malloc(MAX_DIM * sizeof(float)), *x = malloc(MAX_DIM * sizeof(float));
    float *dec = malloc(MAX_DIM * sizeof(float));
    int8_t *q8 = malloc(MAX_DIM);
    double worst = 0;
    for (uint32_t dim = 1; dim <= MAX_DIM; dim++) {
        for (int m = 0; m < 3; m++) {
            vd_metric metric = (vd_metric)m;
            /* scales vary: unit-ish vectors, large values, an offset */
            double scale = dim % 3 == 0 ? 1.0 : dim % 3 == 1 ? 0.05 : 300.0;
            fill(q, dim, dim * 3 + (uint64_t)m, scale);
            fill(x, dim, dim * 5 + 11, scale);
            if (dim % 4 == 0)
                for (uint32_t i = 0; i < dim; i++)
                    x[i] += (float)scale; /* all positive */
            if (metric == VD_METRIC_COSINE) {
                vd_normalize(q, dim);
                vd_normalize(x, dim);
            }
            vd_quant_encode(quant, x, dim, code);
            vd_quant_query qq;
            vd_quant_query_init(&qq, quant, metric, q, dim, q8);
            double exact = metric == VD_METRIC_L2 ? vd_dist_l2sq_f32_scalar(q, x, dim)
                                                  : -(double)vd_dist_dot_f32_scalar(q, x, dim);
            double key = vd_quant_key(&qq, code), bound = vd_quant_error_bound(&qq, code);
            cr_assert(fabs(key - exact) <= bound,
                      "%s %s dim %u metric %d: key %.9g exact %.9g bound %.3g", vd_isa_name(isa),
                      vd_quant_name(quant), dim, m, key, exact, bound);
            if (fabs(key - exact) / (bound + 1e-30) > worst)
                worst = fabs(key - exact) / (bound + 1e-30);
            /* the decoded vector is within the same per-value error */
            vd_quant_decode(quant, code, dim, dec);
            double lo = x[0], hi = x[0];
            for (uint32_t i = 0; i < dim; i++) {
                lo = x[i] < lo ? x[i] : lo;
                hi = x[i] > hi ? x[i] : hi;
            }
            for (uint32_t i = 0; i < dim; i++) {
                double tol = quant == VD_QUANT_FP16 ? fabs(x[i]) / 2048 + 0x1p-24
                                                    : (hi - lo) / 255 * 0.5001 + fabs(x[i]) * 1e-6;
                cr_assert(fabs(dec[i] - x[i]) <= tol, "decode dim %u [%u]: %g vs %g", dim, i,
                          dec[i], x[i]);
            }
        }
    }
    cr_log_info("%s %s: worst error / bound = %.3f", vd_isa_name(isa), vd_quant_name(quant), worst);
    free(code);
    free(q);
    free(x);
    free(dec);
    free(q8);
}

Test(keys, fp16_scalar) { check_keys(VD_ISA_SCALAR, VD_QUANT_FP16); }
Test(keys, fp16_avx2) { check_keys(VD_ISA_AVX2, VD_QUANT_FP16); }
Test(keys, fp16_avx512) { check_keys(VD_ISA_AVX512, VD_QUANT_FP16); }
Test(keys, sq8_scalar) { check_keys(VD_ISA_SCALAR, VD_QUANT_SQ8); }
Test(keys, sq8_avx2) { check_keys(VD_ISA_AVX2, VD_QUANT_SQ8); }
Test(keys, sq8_avx512) { check_keys(VD_ISA_AVX512, VD_QUANT_SQ8); }
Test(keys, sq8_avx512vnni) { check_keys(VD_ISA_AVX512_VNNI, VD_QUANT_SQ8); }

Test(keys, constant_and_zero_vectors)
{
    float x[5] = {0.25f, 0.25f, 0.25f, 0.25f, 0.25f}, q[5] = {1, 0, -1, 2, 0};
    uint8_t code[VD_QUANT_SQ8_HEADER + 8];
    int8_t q8[5];
    vd_quant_encode(VD_QUANT_SQ8, x, 5, code);
    vd_quant_query qq;
    vd_quant_query_init(&qq, VD_QUANT_SQ8, VD_METRIC_DOT, q, 5, q8);
    cr_assert_float_eq(vd_quant_key(&qq, code), -0.5f, 1e-6);
    float zero[5] = {0};
    vd_quant_query_init(&qq, VD_QUANT_SQ8, VD_METRIC_L2, zero, 5, q8);
    cr_assert_float_eq(vd_quant_key(&qq, code), 5 * 0.0625f, 1e-6);
}

Test(quant, names_and_sizes)
{
    vd_quant q;
    cr_assert_eq(vd_quant_parse("sq8", &q), 0);
    cr_assert_eq(q, VD_QUANT_SQ8);
    cr_assert_eq(vd_quant_parse("int4", &q), -1);
    cr_assert_str_eq(vd_quant_name(VD_QUANT_FP16), "fp16");
    cr_assert_eq(vd_quant_code_size(VD_QUANT_NONE, 1536), 0);
    cr_assert_eq(vd_quant_code_size(VD_QUANT_FP16, 1536), 3072);
    cr_assert_eq(vd_quant_code_size(VD_QUANT_FP16, 3), 8);
    cr_assert_eq(vd_quant_code_size(VD_QUANT_SQ8, 1536), 1548);
    cr_assert_eq(vd_quant_code_size(VD_QUANT_SQ8, 5), 20);
}

/* Every SIMD kernel against the scalar reference: all dims 1..1100, unaligned inputs. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "vectord/distance.h"

#define MAX_DIM 1100

static void fill(float *v, size_t n, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
}

/* Float32 accumulation in a different order: the error grows with dim and magnitude. */
static void expect_close(float got, float want, size_t dim, double mag)
{
    double tol = 1e-5 * (double)dim * mag + 1e-5;
    cr_assert(fabs((double)got - (double)want) <= tol, "dim %zu: got %.9g want %.9g", dim, got, want);
}

static void check_isa(vd_isa isa)
{
    const vd_distance_table *t = vd_distance_for(isa);
    if (!t) {
        cr_skip_test("ISA %s not supported by this CPU: skipped", vd_isa_name(isa));
        return;
    }
    /* +3 floats of slack and an offset of 1 float make every load unaligned. */
    float *abuf = malloc((MAX_DIM + 3) * sizeof(float));
    float *bbuf = malloc((MAX_DIM + 3) * sizeof(float));
    for (size_t dim = 1; dim <= MAX_DIM; dim++) {
        for (size_t off = 0; off < 2; off++) {
            float *a = abuf + off, *b = bbuf + 1 + off;
            fill(a, dim, (unsigned)dim);
            fill(b, dim, (unsigned)dim * 7 + 1);
            expect_close(t->dot(a, b, dim), vd_dist_dot_f32_scalar(a, b, dim), dim, 1.0);
            expect_close(t->l2sq(a, b, dim), vd_dist_l2sq_f32_scalar(a, b, dim), dim, 4.0);
        }
    }
    free(abuf);
    free(bbuf);
}

Test(distance, scalar_matches_double_reference)
{
    float a[37], b[37];
    fill(a, 37, 1);
    fill(b, 37, 2);
    double dot = 0, l2 = 0;
    for (int i = 0; i < 37; i++) {
        dot += (double)a[i] * b[i];
        l2 += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    }
    cr_assert_float_eq(vd_dist_dot_f32_scalar(a, b, 37), dot, 1e-5);
    cr_assert_float_eq(vd_dist_l2sq_f32_scalar(a, b, 37), l2, 1e-5);
}

Test(distance, avx2_matches_scalar) { check_isa(VD_ISA_AVX2); }
Test(distance, avx512_matches_scalar) { check_isa(VD_ISA_AVX512); }

Test(distance, zero_dim_is_zero)
{
    float a[1] = {1}, b[1] = {2};
    for (int isa = 0; isa <= VD_ISA_AVX512; isa++) {
        const vd_distance_table *t = vd_distance_for((vd_isa)isa);
        if (!t)
            continue;
        cr_assert_eq(t->dot(a, b, 0), 0.0f);
        cr_assert_eq(t->l2sq(a, b, 0), 0.0f);
    }
}

Test(distance, init_respects_cap_and_falls_back)
{
    cr_assert_eq(vd_distance_init(VD_ISA_SCALAR)->isa, VD_ISA_SCALAR);
    const vd_distance_table *best = vd_distance_init(-1);
    cr_assert(vd_isa_supported(best->isa));
    cr_assert_eq(vd_distance(), best);
    int isa;
    cr_assert_eq(vd_isa_parse("auto", &isa), 0);
    cr_assert_eq(isa, -1);
    cr_assert_eq(vd_isa_parse("avx2", &isa), 0);
    cr_assert_eq(isa, VD_ISA_AVX2);
    cr_assert_neq(vd_isa_parse("sse9", &isa), 0);
}

Test(distance, normalize)
{
    float v[3] = {3, 4, 0};
    cr_assert_float_eq(vd_normalize(v, 3), 5.0f, 1e-6);
    cr_assert_float_eq(v[0], 0.6f, 1e-6);
    cr_assert_float_eq(v[1], 0.8f, 1e-6);
    float z[2] = {0, 0};
    cr_assert_eq(vd_normalize(z, 2), 0.0f);
}

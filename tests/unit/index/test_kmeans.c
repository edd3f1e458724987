/* k-means and nearest-centroid assignment (IVF training). */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "vectord/distance.h"
#include "index/kmeans.h"

enum { D = 16, K = 8, PER = 200, N = K * PER };

static uint64_t state;
static double gauss(void)
{
    double u = 0;
    for (int i = 0; i < 12; i++) { /* Irwin–Hall: good enough for test data */
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        u += (double)(state >> 11) / 9007199254740992.0;
    }
    return u - 6;
}

/* K well-separated blobs; truth[i] = the blob of point i. */
static void blobs(float *x, uint32_t *truth, bool unit)
{
    float centers[K][D];
    state = 42;
    for (int k = 0; k < K; k++)
        for (int d = 0; d < D; d++)
            centers[k][d] = (float)(gauss() * 10);
    for (int i = 0; i < N; i++) {
        truth[i] = (uint32_t)(i % K);
        for (int d = 0; d < D; d++)
            x[i * D + d] = centers[i % K][d] + (float)(gauss() * 0.1);
        if (unit)
            vd_normalize(x + i * D, D);
    }
}

static void check_recovers_blobs(vd_metric metric)
{
    vd_distance_init(-1);
    float *x = malloc(sizeof(float) * N * D), c[K * D], cn[K];
    uint32_t truth[N], got[N];
    blobs(x, truth, metric == VD_METRIC_COSINE);
    /* a few restarts' worth of iterations: random init may split a blob at first */
    cr_assert_eq(vd_kmeans(x, N, D, K, 25, metric, 7, NULL, c), 0);
    vd_kmeans_norms(c, K, D, cn);
    cr_assert_eq(vd_kmeans_assign(x, N, D, c, cn, K, metric, got), 0);
    /* every blob maps to one cluster, and the mapping is one-to-one */
    uint32_t map[K];
    bool used[K] = {0};
    for (int k = 0; k < K; k++)
        map[k] = got[k];
    for (int i = 0; i < N; i++)
        cr_assert_eq(got[i], map[truth[i]], "point %d of blob %u split", i, truth[i]);
    for (int k = 0; k < K; k++) {
        cr_assert(!used[map[k]], "two blobs share a cluster");
        used[map[k]] = true;
    }
    /* the batched (sgemm) and portable assignments agree */
    cr_log_info("OpenBLAS %s", vd_kmeans_blas() ? "loaded" : "not available: portable path only");
    uint32_t portable[N];
    cr_assert_eq(vd_kmeans_assign_portable(x, N, D, c, cn, K, metric, portable), 0);
    cr_assert_arr_eq(portable, got, sizeof got);
    for (int i = 0; i < N; i += 37)
        cr_assert_eq(vd_kmeans_nearest(x + i * D, D, c, cn, K, metric), got[i]);
    if (metric == VD_METRIC_COSINE)
        for (int k = 0; k < K; k++)
            cr_assert_float_eq(sqrtf(cn[k]), 1.0f, 1e-5);
    free(x);
}

Test(kmeans, recovers_blobs_l2) { check_recovers_blobs(VD_METRIC_L2); }
Test(kmeans, recovers_blobs_cosine) { check_recovers_blobs(VD_METRIC_COSINE); }

Test(kmeans, deterministic_and_validates_k)
{
    float *x = malloc(sizeof(float) * N * D), a[K * D], b[K * D];
    uint32_t truth[N];
    blobs(x, truth, false);
    cr_assert_eq(vd_kmeans(x, N, D, K, 3, VD_METRIC_L2, 9, NULL, a), 0);
    cr_assert_eq(vd_kmeans(x, N, D, K, 3, VD_METRIC_L2, 9, NULL, b), 0);
    cr_assert_arr_eq(a, b, sizeof a);
    cr_assert_eq(vd_kmeans(x, 4, D, 5, 3, VD_METRIC_L2, 9, NULL, a), -EINVAL);
    cr_assert_eq(vd_kmeans(x, 4, D, 0, 3, VD_METRIC_L2, 9, NULL, a), -EINVAL);
    /* k = n: every point is its own centroid */
    cr_assert_eq(vd_kmeans(x, 4, D, 4, 2, VD_METRIC_L2, 9, NULL, a), 0);
    /* a shutdown cancels between rounds */
    _Atomic bool cancel = true;
    cr_assert_eq(vd_kmeans(x, N, D, K, 3, VD_METRIC_L2, 9, &cancel, a), -ECANCELED);
    free(x);
}

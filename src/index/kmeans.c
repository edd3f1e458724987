/*
 * kmeans.c — see kmeans.h.
 *
 * OpenBLAS is loaded with dlopen() on first use rather than linked: its
 * library constructor starts a thread pool, and threads started before main()
 * blocks SIGINT/SIGTERM/SIGHUP would receive those signals (vectord takes them
 * with sigwait) and die of them. Loaded from one of our threads, the pool
 * inherits the blocked mask. Without OpenBLAS (libopenblas0 not installed)
 * assignment falls back to the dispatched dot-product kernels, same answers,
 * slower (tests/unit/index/test_kmeans.c checks that the two agree).
 */
#include "index/kmeans.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vectord/distance.h"

/* The CBLAS entry points used, declared here (values from the CBLAS standard). */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
typedef void (*sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc);
typedef void (*set_threads_fn)(int n);

/* Resolved once, process-wide (pthread_once), then read-only. */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static sgemm_fn blas_sgemm;

static void load_blas(void)
{
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    /* dlsym returns an object pointer; POSIX guarantees it converts (memcpy
     * keeps ISO C's pedantic rule about function pointers). */
    void *sym = dlsym(h, "openblas_set_num_threads");
    set_threads_fn set_threads = NULL;
    memcpy(&set_threads, &sym, sizeof sym);
    sym = dlsym(h, "cblas_sgemm");
    memcpy(&blas_sgemm, &sym, sizeof sym);
    /* Training runs beside searches: one core, not OpenBLAS's pool of all. */
    if (set_threads)
        set_threads(1);
}

bool vd_kmeans_blas(void)
{
    pthread_once(&blas_once, load_blas);
    return blas_sgemm != NULL;
}

/* Rows per sgemm block: block × k scores stay a few MB. */
#define ASSIGN_BLOCK 1024u

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void vd_kmeans_norms(const float *centroids, uint32_t k, uint32_t dim, float *cnorm2)
{
    const vd_distance_table *d = vd_distance();
    for (uint32_t j = 0; j < k; j++)
        cnorm2[j] = d->dot(centroids + (size_t)j * dim, centroids + (size_t)j * dim, dim);
}

/* Cosine: nearest = largest dot; otherwise smallest ‖c‖² − 2x·c. */
static inline float score(vd_metric metric, float dot, float cnorm2)
{
    return metric == VD_METRIC_COSINE ? -dot : cnorm2 - 2.0f * dot;
}

uint32_t vd_kmeans_nearest(const float *x, uint32_t dim, const float *centroids,
                           const float *cnorm2, uint32_t k, vd_metric metric)
{
    const vd_distance_table *d = vd_distance();
    uint32_t best = 0;
    float best_s = __builtin_inff();
    for (uint32_t j = 0; j < k; j++) {
        float s = score(metric, d->dot(x, centroids + (size_t)j * dim, dim), cnorm2[j]);
        if (s < best_s) {
            best_s = s;
            best = j;
        }
    }
    return best;
}

int vd_kmeans_assign_portable(const float *x, size_t n, uint32_t dim, const float *centroids,
                              const float *cnorm2, uint32_t k, vd_metric metric, uint32_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = vd_kmeans_nearest(x + i * dim, dim, centroids, cnorm2, k, metric);
    return 0;
}

int vd_kmeans_assign(const float *x, size_t n, uint32_t dim, const float *centroids,
                     const float *cnorm2, uint32_t k, vd_metric metric, uint32_t *out)
{
    if (!vd_kmeans_blas())
        return vd_kmeans_assign_portable(x, n, dim, centroids, cnorm2, k, metric, out);
    float *dots = malloc((size_t)ASSIGN_BLOCK * k * sizeof *dots);
    if (!dots)
        return -ENOMEM;
    for (size_t first = 0; first < n; first += ASSIGN_BLOCK) {
        size_t rows = n - first < ASSIGN_BLOCK ? n - first : ASSIGN_BLOCK;
        /* dots (rows × k) = X_block (rows × dim) · Cᵀ (dim × k) */
        blas_sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_TRANS, (int)rows, (int)k, (int)dim, 1.0f,
                   x + first * dim, (int)dim, centroids, (int)dim, 0.0f, dots, (int)k);
        for (size_t i = 0; i < rows; i++) {
            const float *row = dots + i * k;
            uint32_t best = 0;
            float best_s = __builtin_inff();
            for (uint32_t j = 0; j < k; j++) {
                float s = score(metric, row[j], cnorm2[j]);
                if (s < best_s) {
                    best_s = s;
                    best = j;
                }
            }
            out[first + i] = best;
        }
    }
    free(dots);
    return 0;
}

/* k-means++ seeding (Arthur & Vassilvitskii, 2007): each next centroid is a
 * point drawn with probability proportional to its squared distance to the
 * nearest centroid chosen so far. k passes over the points. */
static int seed_plus_plus(const float *x, size_t n, uint32_t dim, uint32_t k, uint64_t *rng,
                          float *centroids)
{
    const vd_distance_table *d = vd_distance();
    double *dist = malloc(n * sizeof *dist);
    if (!dist)
        return -ENOMEM;
    size_t pick = (size_t)(next_rand(rng) % n);
    for (uint32_t j = 0; j < k; j++) {
        const float *c = x + pick * dim;
        memcpy(centroids + (size_t)j * dim, c, dim * sizeof(float));
        double total = 0;
        for (size_t i = 0; i < n; i++) {
            double dd = d->l2sq(x + i * dim, c, dim);
            dist[i] = j == 0 || dd < dist[i] ? dd : dist[i];
            total += dist[i];
        }
        if (j + 1 == k)
            break;
        double u = (double)(next_rand(rng) >> 11) / 9007199254740992.0 * total;
        pick = n - 1;
        for (size_t i = 0; i < n; i++) {
            if (u < dist[i]) {
                pick = i;
                break;
            }
            u -= dist[i];
        }
        if (total <= 0) /* every point is a centroid already: any will do */
            pick = (size_t)(next_rand(rng) % n);
    }
    free(dist);
    return 0;
}

int vd_kmeans(const float *x, size_t n, uint32_t dim, uint32_t k, uint32_t iters,
              vd_metric metric, uint64_t seed, _Atomic bool *cancel, float *centroids)
{
    if (k == 0 || k > n)
        return -EINVAL;
    uint32_t *assign = malloc(n * sizeof *assign);
    uint32_t *count = malloc((size_t)k * sizeof *count);
    float *cnorm2 = malloc((size_t)k * sizeof *cnorm2);
    double *sum = malloc((size_t)k * dim * sizeof *sum);
    int rc = assign && count && cnorm2 && sum ? 0 : -ENOMEM;
    uint64_t rng = seed;
    if (!rc)
        rc = seed_plus_plus(x, n, dim, k, &rng, centroids);
    for (uint32_t it = 0; !rc && it < iters; it++) {
        if (cancel && atomic_load(cancel)) {
            rc = -ECANCELED;
            break;
        }
        vd_kmeans_norms(centroids, k, dim, cnorm2);
        if ((rc = vd_kmeans_assign(x, n, dim, centroids, cnorm2, k, metric, assign)))
            break;
        memset(count, 0, (size_t)k * sizeof *count);
        memset(sum, 0, (size_t)k * dim * sizeof *sum);
        for (size_t i = 0; i < n; i++) {
            double *s = sum + (size_t)assign[i] * dim;
            const float *v = x + i * dim;
            count[assign[i]]++;
            for (uint32_t t = 0; t < dim; t++)
                s[t] += v[t];
        }
        for (uint32_t j = 0; j < k; j++) {
            float *c = centroids + (size_t)j * dim;
            if (count[j] == 0) { /* empty: restart at a random point */
                memcpy(c, x + (size_t)(next_rand(&rng) % n) * dim, dim * sizeof(float));
                continue;
            }
            for (uint32_t t = 0; t < dim; t++)
                c[t] = (float)(sum[(size_t)j * dim + t] / count[j]);
            if (metric == VD_METRIC_COSINE)
                vd_normalize(c, dim);
        }
    }
    free(assign);
    free(count);
    free(cnorm2);
    free(sum);
    return rc;
}

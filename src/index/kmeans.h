/*
 * kmeans.h — k-means clustering for IVF training, and nearest-centroid
 * assignment. Assignment of many vectors at once is a matrix product
 * (OpenBLAS sgemm, loaded at first use: X·Cᵀ in blocks of rows); single
 * vectors use the dispatched distance kernels.
 *
 * Metrics: VD_METRIC_L2 and VD_METRIC_DOT cluster by squared L2 distance
 * (the nearest centroid minimises ‖c‖² − 2x·c); VD_METRIC_COSINE clusters
 * unit vectors by dot product and keeps the centroids at unit length
 * (spherical k-means).
 */
#ifndef VD_INDEX_KMEANS_H
#define VD_INDEX_KMEANS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vectord/types.h"

/* Clusters the n vectors x (n × dim, row-major) into k centroids (k × dim),
 * 0 < k <= n: k-means++ seeding drawn with seed, then `iters` Lloyd rounds;
 * an emptied cluster restarts at a random point. cancel (may be NULL) is
 * checked between rounds. 0, -EINVAL, -ENOMEM or -ECANCELED. */
int vd_kmeans(const float *x, size_t n, uint32_t dim, uint32_t k, uint32_t iters,
              vd_metric metric, uint64_t seed, _Atomic bool *cancel, float *centroids);

/* The centroid each of n vectors belongs to (out[i] in [0, k)). cnorm2[j] =
 * ‖c_j‖² (vd_kmeans_norms). 0 or -ENOMEM. */
int vd_kmeans_assign(const float *x, size_t n, uint32_t dim, const float *centroids,
                     const float *cnorm2, uint32_t k, vd_metric metric, uint32_t *out);
/* The same with the dispatched kernels only (what vd_kmeans_assign falls
 * back to without OpenBLAS). */
int vd_kmeans_assign_portable(const float *x, size_t n, uint32_t dim, const float *centroids,
                              const float *cnorm2, uint32_t k, vd_metric metric, uint32_t *out);
/* Whether OpenBLAS (libopenblas.so.0) could be loaded for batched assignment. */
bool vd_kmeans_blas(void);
/* The same for one vector, without BLAS. */
uint32_t vd_kmeans_nearest(const float *x, uint32_t dim, const float *centroids,
                           const float *cnorm2, uint32_t k, vd_metric metric);
void vd_kmeans_norms(const float *centroids, uint32_t k, uint32_t dim, float *cnorm2);

#endif

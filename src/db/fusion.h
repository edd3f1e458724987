/*
 * fusion.h — one ranking from several: the answers of a query's prefetch
 * searches combined by rank (reciprocal rank fusion) or by normalised score
 * (distribution-based score fusion), as Qdrant's query API defines them
 * (docs/QDRANT.md, Query). A point found by several searches appears once.
 */
#ifndef VD_FUSION_H
#define VD_FUSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/point.h"

typedef enum vd_fusion_method {
    /* Σ over the lists holding the point of 1 / ((position + 1) / weight + k - 1),
     * position 0-based: with weight 1, 1 / (position + k). */
    VD_FUSION_RRF,
    /* each list's scores mapped to [0, 1] between mean ± 3 standard
     * deviations (a lone score is 0.5), then summed (times the weight) */
    VD_FUSION_DBSF,
    /* the union only: each point once, with the score of its first appearance */
    VD_FUSION_UNION,
} vd_fusion_method;

#define VD_RRF_K_DEFAULT 2 /* Qdrant's default */

typedef struct vd_fusion {
    vd_fusion_method method;
    uint32_t k;             /* RRF (≥ 1) */
    const float *weights;   /* one per list, or NULL: all 1 */
    bool distances;         /* DBSF: the lists' scores are distances (lower is better) */
} vd_fusion;

/* Fuses lists[0..n_lists) (lists[i] holds n[i] hits, best first; each is
 * taken: moved into the answer or freed, and the arrays freed) into *out,
 * best first (ties: first seen first), *n_out hits, malloc'd. The answer's
 * scores are the fused ones. 0 or -ENOMEM (everything taken is freed). */
int vd_fuse(const vd_fusion *f, vd_point_out **lists, const size_t *n, size_t n_lists, vd_point_out **out,
            size_t *n_out);

#endif

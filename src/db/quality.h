/*
 * quality.h — how good one collection's answers are, measured while it
 * serves: the recall monitor's samples (an approximate search re-run
 * exactly in the background) and shadow comparisons (a caller's own baseline
 * result ids against vectord's). Each is an agreement tally: cumulative
 * counts for Prometheus rates, plus the last VD_QUALITY_WINDOW comparisons
 * for a "recent" figure in collection info. Thread-safe.
 */
#ifndef VD_QUALITY_H
#define VD_QUALITY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "vectord/types.h"

#define VD_QUALITY_WINDOW 256

/* One kind of comparison: per compared search, `hits` ids agreed out of
 * `expected`. The agreement is hits / expected. */
typedef struct vd_agreement {
    uint64_t compared;
    uint64_t hits, expected;
    double seconds_a, seconds_b; /* summed latencies (shadow: baseline and vectord) */
    uint32_t ring_hits[VD_QUALITY_WINDOW], ring_expected[VD_QUALITY_WINDOW];
    size_t ring_pos, ring_len;
} vd_agreement;

typedef struct vd_agreement_stats {
    uint64_t compared, hits, expected;
    double seconds_a, seconds_b;
    uint64_t recent_compared; /* comparisons in the window */
    double recent;            /* hits / expected over the window; -1 = nothing compared */
} vd_agreement_stats;

typedef struct vd_quality {
    pthread_mutex_t lock;
    vd_agreement recall; /* approximate results vs the exact re-run */
    vd_agreement shadow; /* vectord's results vs the caller's baseline */
} vd_quality;

void vd_quality_init(vd_quality *q);
void vd_quality_destroy(vd_quality *q);
/* A recall sample: hits of the exact top-k found by the approximate search. */
void vd_quality_add_recall(vd_quality *q, uint32_t hits, uint32_t expected);
/* A shadow comparison, with the baseline's and vectord's latency. */
void vd_quality_add_shadow(vd_quality *q, uint32_t hits, uint32_t expected, double baseline_s,
                           double vectord_s);
void vd_quality_get(vd_quality *q, vd_agreement_stats *recall, vd_agreement_stats *shadow);

/* How many of the ids in a[0..na) also appear in b[0..nb). Quadratic: meant
 * for result lists (k is at most max_k). */
size_t vd_ids_common(const vd_point_id *a, size_t na, const vd_point_id *b, size_t nb);

#endif

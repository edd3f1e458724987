/*
 * calibration.h — the smallest search breadth (HNSW ef, IVF nprobe) that
 * meets a collection's target recall, learned from real queries.
 *
 * The recall monitor re-runs a sample of live searches exactly
 * (db/recall_monitor.h); for a collection with a target it also runs each
 * sampled query at every breadth of a fixed ladder and records how many of
 * the exact top-k each found. Over the last VD_CALIBRATION_WINDOW samples,
 * the choice is the smallest rung whose recall meets the target (the largest
 * if none does), once VD_CALIBRATION_MIN_SAMPLES are in. The window moves, so
 * the choice follows the data as they grow and change. Thread-safe.
 */
#ifndef VD_CALIBRATION_H
#define VD_CALIBRATION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define VD_CALIBRATION_RUNGS 12
#define VD_CALIBRATION_WINDOW 256
#define VD_CALIBRATION_MIN_SAMPLES 30

/* Target recall bounds (0 = off). */
#define VD_TARGET_RECALL_MIN 0.5f
#define VD_TARGET_RECALL_MAX 0.999f
#define VD_TARGET_RECALL_DEFAULT 0.95f

typedef struct vd_calibration {
    pthread_mutex_t lock; /* guards everything below */
    uint32_t rungs[VD_CALIBRATION_RUNGS]; /* breadths tried, ascending */
    /* per sample of the window: found per rung (uint16: k ≤ 65535), and k */
    uint16_t found[VD_CALIBRATION_WINDOW][VD_CALIBRATION_RUNGS];
    uint16_t total[VD_CALIBRATION_WINDOW];
    uint64_t sum_found[VD_CALIBRATION_RUNGS], sum_total;
    uint32_t next, filled;
    uint64_t samples; /* ever added */
} vd_calibration;

/* ladder: the breadths for HNSW (ef) or IVF (nprobe). */
void vd_calibration_init(vd_calibration *c, bool ivf);
void vd_calibration_destroy(vd_calibration *c);

/* One sampled query: found[r] of its exact top-k (k = total) at rungs[r]. */
void vd_calibration_add(vd_calibration *c, const uint32_t *found, uint32_t total);

typedef struct vd_calibration_choice {
    bool chosen;          /* enough samples for a choice */
    uint32_t value;       /* the breadth chosen */
    double recall;        /* its recall over the window */
    uint64_t samples;     /* in the window */
} vd_calibration_choice;

void vd_calibration_choose(vd_calibration *c, float target, vd_calibration_choice *out);

#endif

/* calibration.c — see calibration.h. */
#include "db/calibration.h"

#include <string.h>

/* Breadths tried: about √2 apart, so the choice is within ~40% of the least
 * that meets the target. HNSW's start at 10 (the usual k); IVF's at 1 list. */
static const uint32_t hnsw_rungs[VD_CALIBRATION_RUNGS] = {10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};
static const uint32_t ivf_rungs[VD_CALIBRATION_RUNGS] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};

void vd_calibration_init(vd_calibration *c, bool ivf)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    memcpy(c->rungs, ivf ? ivf_rungs : hnsw_rungs, sizeof c->rungs);
}

void vd_calibration_destroy(vd_calibration *c) { pthread_mutex_destroy(&c->lock); }

void vd_calibration_add(vd_calibration *c, const uint32_t *found, uint32_t total)
{
    if (!total)
        return; /* nothing to find: says nothing about the breadth */
    if (total > UINT16_MAX)
        total = UINT16_MAX;
    pthread_mutex_lock(&c->lock);
    uint32_t slot = c->next;
    if (c->filled == VD_CALIBRATION_WINDOW) { /* the oldest sample leaves the window */
        for (int r = 0; r < VD_CALIBRATION_RUNGS; r++)
            c->sum_found[r] -= c->found[slot][r];
        c->sum_total -= c->total[slot];
    } else {
        c->filled++;
    }
    for (int r = 0; r < VD_CALIBRATION_RUNGS; r++) {
        uint16_t f = (uint16_t)(found[r] < total ? found[r] : total);
        c->found[slot][r] = f;
        c->sum_found[r] += f;
    }
    c->total[slot] = (uint16_t)total;
    c->sum_total += total;
    c->next = (slot + 1) % VD_CALIBRATION_WINDOW;
    c->samples++;
    pthread_mutex_unlock(&c->lock);
}

void vd_calibration_choose(vd_calibration *c, float target, vd_calibration_choice *out)
{
    *out = (vd_calibration_choice){0};
    pthread_mutex_lock(&c->lock);
    out->samples = c->filled;
    if (c->filled >= VD_CALIBRATION_MIN_SAMPLES && c->sum_total) {
        int r = 0;
        while (r + 1 < VD_CALIBRATION_RUNGS && (double)c->sum_found[r] < (double)target * (double)c->sum_total)
            r++;
        out->chosen = true;
        out->value = c->rungs[r];
        out->recall = (double)c->sum_found[r] / (double)c->sum_total;
    }
    pthread_mutex_unlock(&c->lock);
}

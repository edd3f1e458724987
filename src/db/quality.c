/* quality.c — see quality.h. */
#include "db/quality.h"

#include <string.h>

void vd_quality_init(vd_quality *q)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
}

void vd_quality_destroy(vd_quality *q) { pthread_mutex_destroy(&q->lock); }

static void agreement_add(vd_agreement *a, uint32_t hits, uint32_t expected, double sa, double sb)
{
    a->compared++;
    a->hits += hits;
    a->expected += expected;
    a->seconds_a += sa;
    a->seconds_b += sb;
    a->ring_hits[a->ring_pos] = hits;
    a->ring_expected[a->ring_pos] = expected;
    a->ring_pos = (a->ring_pos + 1) % VD_QUALITY_WINDOW;
    if (a->ring_len < VD_QUALITY_WINDOW)
        a->ring_len++;
}

static void agreement_get(const vd_agreement *a, vd_agreement_stats *out)
{
    uint64_t hits = 0, expected = 0;
    for (size_t i = 0; i < a->ring_len; i++) {
        hits += a->ring_hits[i];
        expected += a->ring_expected[i];
    }
    *out = (vd_agreement_stats){.compared = a->compared,
                                .hits = a->hits,
                                .expected = a->expected,
                                .seconds_a = a->seconds_a,
                                .seconds_b = a->seconds_b,
                                .recent_compared = a->ring_len,
                                .recent = -1};
    /* Comparisons that expected nothing agree trivially: 1.0, not 0/0. */
    if (a->ring_len)
        out->recent = expected ? (double)hits / (double)expected : 1.0;
}

void vd_quality_add_recall(vd_quality *q, uint32_t hits, uint32_t expected)
{
    pthread_mutex_lock(&q->lock);
    agreement_add(&q->recall, hits, expected, 0, 0);
    pthread_mutex_unlock(&q->lock);
}

void vd_quality_add_shadow(vd_quality *q, uint32_t hits, uint32_t expected, double baseline_s,
                           double vectord_s)
{
    pthread_mutex_lock(&q->lock);
    agreement_add(&q->shadow, hits, expected, baseline_s, vectord_s);
    pthread_mutex_unlock(&q->lock);
}

void vd_quality_get(vd_quality *q, vd_agreement_stats *recall, vd_agreement_stats *shadow)
{
    pthread_mutex_lock(&q->lock);
    if (recall)
        agreement_get(&q->recall, recall);
    if (shadow)
        agreement_get(&q->shadow, shadow);
    pthread_mutex_unlock(&q->lock);
}

size_t vd_ids_common(const vd_point_id *a, size_t na, const vd_point_id *b, size_t nb)
{
    size_t n = 0;
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            if (vd_id_equal(&a[i], &b[j])) {
                n++;
                break;
            }
    return n;
}

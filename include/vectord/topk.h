/*
 * topk.h — bounded selection of the k best (lowest-key) hits.
 *
 * Keys are "lower is better": the search layer maps cosine/dot similarity s to
 * key -s and keeps L2 squared distance as is. The heap lives in a caller array
 * of k entries; pushing is O(log k) and allocation-free.
 */
#ifndef VECTORD_TOPK_H
#define VECTORD_TOPK_H

#include <stddef.h>
#include <stdint.h>

typedef struct vd_hit {
    float key;
    uint32_t slot;
} vd_hit;

typedef struct vd_topk {
    vd_hit *hits; /* borrowed: k entries */
    uint32_t k;
    uint32_t n;
} vd_topk;

void vd_topk_init(vd_topk *t, vd_hit *storage, uint32_t k);
/* Inserts if fewer than k hits are held or key beats the worst held. */
void vd_topk_push(vd_topk *t, float key, uint32_t slot);
/* Key a candidate must beat to enter (+inf while not full). */
float vd_topk_bound(const vd_topk *t);
/* Sorts the held hits best first (ties by slot); the heap is spent afterwards. */
void vd_topk_sort(vd_topk *t);
/* Sorts any hit array best first, ties by slot. */
void vd_hits_sort(vd_hit *hits, size_t n);

#endif

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

/* The hot path of every search: inline, so a graph walk's pushes and bound
 * checks are not calls. */
static inline void vd_topk_init(vd_topk *t, vd_hit *storage, uint32_t k)
{
    t->hits = storage;
    t->k = k;
    t->n = 0;
}

/* a is "worse" than b: larger key, or equal key and larger slot. */
static inline int vd_hit_worse(const vd_hit *a, const vd_hit *b)
{
    return a->key > b->key || (a->key == b->key && a->slot > b->slot);
}

/* Inserts if fewer than k hits are held or key beats the worst held. */
static inline void vd_topk_push(vd_topk *t, float key, uint32_t slot)
{
    vd_hit hit = {key, slot}, *h = t->hits;
    if (t->n < t->k) {
        uint32_t i = t->n++;
        while (i > 0) {
            uint32_t p = (i - 1) / 2;
            if (!vd_hit_worse(&hit, &h[p]))
                break;
            h[i] = h[p];
            i = p;
        }
        h[i] = hit;
        return;
    }
    if (t->k == 0 || !vd_hit_worse(&h[0], &hit))
        return;
    /* sift the new hit down from the root */
    uint32_t i = 0, n = t->n;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = l;
        if (l >= n)
            break;
        if (r < n && vd_hit_worse(&h[r], &h[l]))
            m = r;
        if (!vd_hit_worse(&h[m], &hit))
            break;
        h[i] = h[m];
        i = m;
    }
    h[i] = hit;
}

/* Key a candidate must beat to enter (+inf while not full). */
static inline float vd_topk_bound(const vd_topk *t)
{
    return t->n < t->k ? __builtin_inff() : t->hits[0].key;
}
/* Sorts the held hits best first (ties by slot); the heap is spent afterwards. */
void vd_topk_sort(vd_topk *t);
/* Sorts any hit array best first, ties by slot. */
void vd_hits_sort(vd_hit *hits, size_t n);

#endif

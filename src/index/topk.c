/* topk.c — a max-heap on key holding the k lowest keys seen (see topk.h). */
#include "vectord/topk.h"

#include <math.h>
#include <stdlib.h>

void vd_topk_init(vd_topk *t, vd_hit *storage, uint32_t k)
{
    t->hits = storage;
    t->k = k;
    t->n = 0;
}

/* a is "worse" than b: larger key, or equal key and larger slot. */
static inline int worse(const vd_hit *a, const vd_hit *b)
{
    return a->key > b->key || (a->key == b->key && a->slot > b->slot);
}

static void sift_down(vd_hit *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(&h[l], &h[m]))
            m = l;
        if (r < n && worse(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        vd_hit tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
}

void vd_topk_push(vd_topk *t, float key, uint32_t slot)
{
    vd_hit hit = {key, slot};
    if (t->n < t->k) {
        uint32_t i = t->n++;
        t->hits[i] = hit;
        while (i > 0) {
            uint32_t p = (i - 1) / 2;
            if (!worse(&t->hits[i], &t->hits[p]))
                break;
            vd_hit tmp = t->hits[i];
            t->hits[i] = t->hits[p];
            t->hits[p] = tmp;
            i = p;
        }
        return;
    }
    if (t->k == 0 || !worse(&t->hits[0], &hit))
        return;
    t->hits[0] = hit;
    sift_down(t->hits, t->n, 0);
}

float vd_topk_bound(const vd_topk *t)
{
    return t->n < t->k ? INFINITY : t->hits[0].key;
}

static int cmp_hit(const void *pa, const void *pb)
{
    const vd_hit *a = pa, *b = pb;
    if (a->key < b->key)
        return -1;
    if (a->key > b->key)
        return 1;
    return (a->slot > b->slot) - (a->slot < b->slot);
}

void vd_hits_sort(vd_hit *hits, size_t n) { qsort(hits, n, sizeof *hits, cmp_hit); }

void vd_topk_sort(vd_topk *t) { vd_hits_sort(t->hits, t->n); }

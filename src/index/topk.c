/* topk.c — sorting hits best first; the bounded heap itself is inline in topk.h. */
#include "vectord/topk.h"

#include <math.h>
#include <stdlib.h>

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

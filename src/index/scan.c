/*
 * scan.c — the exact scan every index shares: the flat index is nothing
 * else, and HNSW and IVF fall back to it when the allowed set is small or an
 * exact answer is asked for. Keys come from vd_view_key (codes when the shard
 * is quantized, originals otherwise), so the caller re-ranks as usual.
 */
#include "util/bitset.h"
#include "vectord/index.h"

uint64_t vd_index_scan(const vd_vector_view *v, const vd_index_query *q, vd_topk *out)
{
    size_t nw = vd_bitset_words(v->n_slots);
    uint64_t n = 0;
    for (size_t s = vd_bitset_next(q->allowed, nw, 0); s != SIZE_MAX;
         s = vd_bitset_next(q->allowed, nw, s + 1)) {
        if (q->admits && !q->admits(q->admits_ctx, (uint32_t)s))
            continue;
        float key = vd_view_key(v, q->query, (uint32_t)s);
        n++;
        if (key <= q->max_key && key < vd_topk_bound(out))
            vd_topk_push(out, key, (uint32_t)s);
    }
    return n;
}


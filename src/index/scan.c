/*
 * scan.c — the exact scan every index shares: the flat index is nothing
 * else, and HNSW and IVF fall back to it when the allowed set is small or an
 * exact answer is asked for. Keys come from vd_view_key (codes when the shard
 * is quantized, originals otherwise), so the caller re-ranks as usual.
 *
 * A filter's slots are scattered (one tenant's points among everyone's), and
 * the hardware prefetcher, which follows the sequential read within a row,
 * cannot guess where the next row starts: each row would begin with a trip
 * to memory. So the scan looks VD_SCAN_AHEAD allowed slots ahead and asks for
 * the whole row of each that does not follow its predecessor; runs of
 * consecutive slots (an unfiltered scan) are left to the hardware.
 */
#include "util/bitset.h"
#include "vectord/index.h"

#define VD_SCAN_AHEAD 4

static inline void prefetch_row(const vd_vector_view *v, uint32_t slot, size_t row_bytes)
{
    const char *p = vd_view_row(v, slot);
    for (size_t off = 0; off < row_bytes; off += 64)
        __builtin_prefetch(p + off);
}

uint64_t vd_index_scan(const vd_vector_view *v, const vd_index_query *q, vd_topk *out)
{
    size_t nw = vd_bitset_words(v->n_slots);
    size_t row = v->quant ? v->code_size : (size_t)v->dim * sizeof(float);
    /* The next allowed slots, oldest first, in a ring; `next` is the one after. */
    uint32_t ahead[VD_SCAN_AHEAD];
    size_t n_ahead = 0, at = 0, last = SIZE_MAX;
    size_t next = vd_bitset_next(q->allowed, nw, 0);
    for (; n_ahead < VD_SCAN_AHEAD && next != SIZE_MAX; next = vd_bitset_next(q->allowed, nw, next + 1)) {
        if (next != last + 1)
            prefetch_row(v, (uint32_t)next, row);
        ahead[n_ahead++] = (uint32_t)(last = next);
    }
    uint64_t n = 0;
    while (n_ahead) {
        uint32_t s = ahead[at];
        if (next != SIZE_MAX) { /* refill the place just taken */
            if (next != last + 1)
                prefetch_row(v, (uint32_t)next, row);
            ahead[at] = (uint32_t)(last = next);
            next = vd_bitset_next(q->allowed, nw, next + 1);
        } else {
            n_ahead--;
        }
        at = (at + 1) % VD_SCAN_AHEAD;
        if (q->admits && !q->admits(q->admits_ctx, s))
            continue;
        float key = vd_view_key(v, q->query, s);
        n++;
        if (key <= q->max_key && key < vd_topk_bound(out))
            vd_topk_push(out, key, s);
    }
    return n;
}

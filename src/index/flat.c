/*
 * flat.c — the exact index: every query scans the allowed slots with the
 * dispatched distance kernel (vd_index_scan, scan.c). Flat keeps no state beyond counters (atomic: searches run
 * concurrently under the shard read lock).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "vectord/index.h"

typedef struct flat_index {
    vd_index base;
    _Atomic uint64_t n_distances;
    _Atomic uint64_t n_searches;
} flat_index;

static int flat_insert(vd_index *idx, const vd_vector_view *v, uint32_t slot)
{
    (void)idx, (void)v, (void)slot;
    return 0;
}

static void flat_remove(vd_index *idx, uint32_t slot) { (void)idx, (void)slot; }

static int flat_reserve(vd_index *idx, uint32_t n_slots)
{
    (void)idx, (void)n_slots;
    return 0;
}

static int flat_search(vd_index *idx, const vd_vector_view *v, const vd_index_query *q,
                       vd_topk *out)
{
    flat_index *f = (flat_index *)idx;
    uint64_t n = vd_index_scan(v, q, out);
    atomic_fetch_add_explicit(&f->n_distances, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&f->n_searches, 1, memory_order_relaxed);
    if (q->n_distances)
        atomic_fetch_add_explicit(q->n_distances, n, memory_order_relaxed);
    return 0;
}

static void flat_stats(const vd_index *idx, vd_index_stats *out)
{
    const flat_index *f = (const flat_index *)idx;
    *out = (vd_index_stats){
        .memory_bytes = sizeof *f,
        .distance_computations = atomic_load_explicit(&f->n_distances, memory_order_relaxed),
        .searches_exact = atomic_load_explicit(&f->n_searches, memory_order_relaxed),
    };
}

static void flat_destroy(vd_index *idx) { free(idx); }

static const vd_index_ops flat_ops = {
    .type = "flat",
    .keeps_slots = false,
    .concurrent_insert = true,
    .reserve = flat_reserve,
    .insert = flat_insert,
    .remove = flat_remove,
    .search = flat_search,
    .stats = flat_stats,
    .destroy = flat_destroy,
};

int vd_flat_create(vd_index **out)
{
    flat_index *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->base.ops = &flat_ops;
    *out = &f->base;
    return 0;
}

/*
 * search_scratch.h — the memory a shard search works in (its top-k and
 * candidate heaps, the int8 query, a buffer for an original read from disk,
 * the filter's bitmap and the filter's temporary bitmaps), kept in a pool
 * and reused, so that a search in steady state allocates nothing: a scratch
 * is made or grown only when the pool is empty or a buffer is too small
 * (more shards searched at once, a larger k, a grown shard). The pool counts
 * those allocations (collection info, metrics), which stay flat once warm.
 */
#ifndef VD_SEARCH_SCRATCH_H
#define VD_SEARCH_SCRATCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "db/filter.h"
#include "vectord/topk.h"

typedef struct vd_search_scratch {
    vd_hit *hits; /* hits_cap */
    vd_hit *cands; /* cands_cap */
    vd_hit *tenant; /* tenant_cap: a tenant scan's candidates (db/shard_search.c) */
    uint32_t hits_cap, cands_cap, tenant_cap;
    int8_t *q8;  /* dim_cap */
    float *buf;  /* dim_cap */
    uint32_t dim_cap;
    uint64_t *matching; /* matching_cap words */
    size_t matching_cap;
    vd_filter_scratch filter;
    struct vd_search_scratch *next; /* in the pool */
} vd_search_scratch;

typedef struct vd_scratch_pool {
    pthread_mutex_t lock; /* guards free */
    vd_search_scratch *free;
    _Atomic uint64_t allocations; /* scratch made or grown */
} vd_scratch_pool;

void vd_scratch_pool_init(vd_scratch_pool *p);
void vd_scratch_pool_destroy(vd_scratch_pool *p);

/* What one search needs room for. */
typedef struct vd_scratch_need {
    uint32_t k, n_cand, n_tenant, dim;
    size_t words, filter_words;
} vd_scratch_need;

/* A scratch from the pool with room for need (made or grown if it must be):
 * NULL out of memory. Give it back with vd_scratch_put. */
vd_search_scratch *vd_scratch_get(vd_scratch_pool *p, const vd_scratch_need *need);
void vd_scratch_put(vd_scratch_pool *p, vd_search_scratch *s);

#endif

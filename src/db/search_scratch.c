/* search_scratch.c — see search_scratch.h. */
#include "db/search_scratch.h"

#include <stdlib.h>

static void scratch_free(vd_search_scratch *s)
{
    free(s->hits);
    free(s->cands);
    free(s->tenant);
    free(s->q8);
    free(s->buf);
    free(s->matching);
    free(s->filter.words);
    free(s);
}

void vd_scratch_pool_init(vd_scratch_pool *p)
{
    pthread_mutex_init(&p->lock, NULL);
    p->free = NULL;
    atomic_init(&p->allocations, 0);
}

void vd_scratch_pool_destroy(vd_scratch_pool *p)
{
    while (p->free) {
        vd_search_scratch *s = p->free;
        p->free = s->next;
        scratch_free(s);
    }
    pthread_mutex_destroy(&p->lock);
}

/* Grows *buf to hold want elements of size (counted in the pool). */
static int grow(vd_scratch_pool *p, void **buf, size_t *cap, size_t want, size_t size)
{
    if (*cap >= want)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < want)
        n *= 2;
    void *b = realloc(*buf, n * size);
    if (!b)
        return -1;
    *buf = b;
    *cap = n;
    atomic_fetch_add_explicit(&p->allocations, 1, memory_order_relaxed);
    return 0;
}

vd_search_scratch *vd_scratch_get(vd_scratch_pool *p, const vd_scratch_need *need)
{
    pthread_mutex_lock(&p->lock);
    vd_search_scratch *s = p->free;
    if (s)
        p->free = s->next;
    pthread_mutex_unlock(&p->lock);
    if (!s) {
        if (!(s = calloc(1, sizeof *s)))
            return NULL;
        atomic_fetch_add_explicit(&p->allocations, 1, memory_order_relaxed);
    }
    size_t hits = s->hits_cap, cands = s->cands_cap, tenant = s->tenant_cap, dims = s->dim_cap,
           dims2 = s->dim_cap;
    int bad = grow(p, (void **)&s->hits, &hits, need->k, sizeof *s->hits) ||
              grow(p, (void **)&s->cands, &cands, need->n_cand, sizeof *s->cands) ||
              grow(p, (void **)&s->tenant, &tenant, need->n_tenant, sizeof *s->tenant) ||
              grow(p, (void **)&s->q8, &dims, need->dim, sizeof *s->q8) ||
              grow(p, (void **)&s->buf, &dims2, need->dim, sizeof *s->buf) ||
              grow(p, (void **)&s->matching, &s->matching_cap, need->words, sizeof *s->matching) ||
              grow(p, (void **)&s->filter.words, &s->filter.cap, need->filter_words, sizeof *s->filter.words);
    s->hits_cap = (uint32_t)hits;
    s->cands_cap = (uint32_t)cands;
    s->tenant_cap = (uint32_t)tenant;
    s->dim_cap = (uint32_t)(dims < dims2 ? dims : dims2);
    s->filter.used = 0;
    if (bad) {
        scratch_free(s);
        return NULL;
    }
    return s;
}

void vd_scratch_put(vd_scratch_pool *p, vd_search_scratch *s)
{
    pthread_mutex_lock(&p->lock);
    s->next = p->free;
    p->free = s;
    pthread_mutex_unlock(&p->lock);
}

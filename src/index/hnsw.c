/*
 * hnsw.c — Hierarchical Navigable Small World graph index.
 *
 * Algorithms 1 (INSERT), 2 (SEARCH-LAYER), 4 (SELECT-NEIGHBORS-HEURISTIC) and
 * 5 (K-NN-SEARCH) of Malkov & Yashunin, "Efficient and robust approximate
 * nearest neighbor search using Hierarchical Navigable Small World graphs",
 * IEEE TPAMI 2018.
 *
 * Layout: graph nodes are the shard's slots (uint32_t), so the graph holds no
 * pointers into vector storage and stays relocatable. Level-0 links of all
 * nodes sit in one contiguous array, (1 + m0) words per slot: a count, then up
 * to m0 = 2m neighbour slots. Levels above 0 (a few percent of nodes) live in
 * one allocation per node, (1 + m) words per level.
 *
 * Deletes are tombstones: the shard clears the slot's alive bit and the node
 * stays in the graph, still navigable, never returned (searches only collect
 * allowed slots). The index declares keeps_slots, so the shard never reuses a
 * tombstoned slot and an update inserts a fresh node.
 *
 * Filtered search (the planner in hnsw_search): with the allowed set A (alive
 * ∩ filter) of size a among n graph nodes, a graph search that only collects
 * allowed nodes costs about ef·m0·n/a distance computations (it must visit
 * n/a nodes per allowed hit), an exact scan costs a. The scan wins when
 * a² < ef·m0·n, and always when a ≤ ef; otherwise the traversal keeps going
 * until it holds ef allowed nodes, which widens the search as selectivity
 * drops (the stopping rule of hnswlib's filtered search).
 *
 * Locking: the shard's rwlock. insert/remove run under the write lock and use
 * the index's own scratch; search runs under the read lock, concurrently with
 * other searches, with per-call scratch and atomic counters only.
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/bitset.h"
#include "vectord/distance.h"
#include "vectord/index.h"

#define NONE UINT32_MAX

typedef struct hnsw {
    vd_index base;
    uint32_t m, m0, efc, ef_search;
    double ml; /* level multiplier 1/ln(m) */
    uint64_t rng;
    uint32_t cap;      /* slots the arrays below cover */
    uint32_t *links0;  /* cap * (1 + m0) */
    uint32_t **upper;  /* cap; upper[s] = level(s) * (1 + m) words, or NULL */
    int8_t *levels;    /* cap; -1 = slot not in the graph */
    uint32_t entry;    /* entry point, NONE when empty */
    int max_level;
    size_t n_nodes, upper_bytes;
    /* insert scratch (writer only): visit marks by epoch, no clearing */
    uint32_t *visit_epoch;
    uint32_t epoch;
    _Atomic uint64_t n_distances, n_exact, n_graph;
} hnsw;

/* ---- small heaps over vd_hit ------------------------------------------- */

typedef struct heap {
    vd_hit *a;
    uint32_t n, cap;
} heap;

static int heap_reserve(heap *h, uint32_t cap)
{
    if (cap <= h->cap)
        return 0;
    vd_hit *a = realloc(h->a, cap * sizeof *a);
    if (!a)
        return -ENOMEM;
    h->a = a;
    h->cap = cap;
    return 0;
}

/* Min-heap on key: the candidate queue C of Algorithm 2. */
static int minheap_push(heap *h, float key, uint32_t slot)
{
    if (h->n == h->cap && heap_reserve(h, h->cap ? h->cap * 2 : 64))
        return -ENOMEM;
    uint32_t i = h->n++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h->a[p].key <= key)
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = (vd_hit){key, slot};
    return 0;
}

static vd_hit minheap_pop(heap *h)
{
    vd_hit top = h->a[0], last = h->a[--h->n];
    uint32_t i = 0;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        float mk = last.key;
        if (l < h->n && h->a[l].key < mk) {
            m = l;
            mk = h->a[l].key;
        }
        if (r < h->n && h->a[r].key < mk)
            m = r;
        if (m == i)
            break;
        h->a[i] = h->a[m];
        i = m;
    }
    if (h->n)
        h->a[i] = last;
    return top;
}

/* ---- graph access --------------------------------------------------------- */

static inline uint32_t *links_of(const hnsw *h, uint32_t slot, int level)
{
    if (level == 0)
        return h->links0 + (size_t)slot * (1 + h->m0);
    return h->upper[slot] + (size_t)(level - 1) * (1 + h->m);
}

static inline uint32_t cap_of(const hnsw *h, int level) { return level == 0 ? h->m0 : h->m; }

static inline float dist(const vd_vector_view *v, const float *q, uint32_t slot)
{
    return vd_index_key(v->metric, q, v->vecs + (size_t)slot * v->dim, v->dim);
}

static int ensure_cap(hnsw *h, uint32_t slot)
{
    if (slot < h->cap)
        return 0;
    size_t cap = h->cap ? h->cap : 1024;
    while (cap <= slot)
        cap *= 2;
    uint32_t *l0 = realloc(h->links0, cap * (1 + h->m0) * sizeof *l0);
    if (!l0)
        return -ENOMEM;
    h->links0 = l0;
    uint32_t **up = realloc(h->upper, cap * sizeof *up);
    if (!up)
        return -ENOMEM;
    h->upper = up;
    int8_t *lv = realloc(h->levels, cap);
    if (!lv)
        return -ENOMEM;
    h->levels = lv;
    uint32_t *ve = realloc(h->visit_epoch, cap * sizeof *ve);
    if (!ve)
        return -ENOMEM;
    h->visit_epoch = ve;
    for (size_t s = h->cap; s < cap; s++) {
        up[s] = NULL;
        lv[s] = -1;
        ve[s] = 0;
    }
    h->cap = (uint32_t)cap;
    return 0;
}

static int random_level(hnsw *h)
{
    /* xorshift64*; the seed makes builds reproducible for tests */
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    uint64_t r = h->rng * 0x2545F4914F6CDD1DULL;
    double u = ((double)(r >> 11) + 0.5) / 9007199254740992.0;
    int level = (int)(-log(u) * h->ml);
    return level > 30 ? 30 : level;
}

/* ---- Algorithm 2: SEARCH-LAYER (construction: no filter) -------------------- */

/* Greedy walk to the nearest node of one upper level (ef = 1). */
static void greedy(hnsw *h, const vd_vector_view *v, const float *q, int level, uint32_t *ep,
                   float *d_ep, uint64_t *n_dist)
{
    bool moved = true;
    while (moved) {
        moved = false;
        const uint32_t *l = links_of(h, *ep, level);
        for (uint32_t i = 1; i <= l[0]; i++) {
            float d = dist(v, q, l[i]);
            (*n_dist)++;
            if (d < *d_ep) {
                *d_ep = d;
                *ep = l[i];
                moved = true;
            }
        }
    }
}

/* W ← the ef nearest nodes to q on `level` reachable from ep, using the
 * writer's epoch-marked visited set. */
static int search_layer_build(hnsw *h, const vd_vector_view *v, const float *q, uint32_t ep,
                              float d_ep, uint32_t ef, int level, heap *cand, vd_topk *w)
{
    if (++h->epoch == 0) { /* wrapped: clear the marks once every 2^32 inserts */
        memset(h->visit_epoch, 0, h->cap * sizeof *h->visit_epoch);
        h->epoch = 1;
    }
    uint64_t n_dist = 0;
    cand->n = 0;
    h->visit_epoch[ep] = h->epoch;
    if (minheap_push(cand, d_ep, ep))
        return -ENOMEM;
    vd_topk_push(w, d_ep, ep);
    while (cand->n) {
        vd_hit c = minheap_pop(cand);
        if (c.key > vd_topk_bound(w))
            break;
        const uint32_t *l = links_of(h, c.slot, level);
        for (uint32_t i = 1; i <= l[0]; i++) {
            uint32_t e = l[i];
            if (h->visit_epoch[e] == h->epoch)
                continue;
            h->visit_epoch[e] = h->epoch;
            float d = dist(v, q, e);
            n_dist++;
            if (w->n < ef || d < vd_topk_bound(w)) {
                if (minheap_push(cand, d, e))
                    return -ENOMEM;
                vd_topk_push(w, d, e);
            }
        }
    }
    atomic_fetch_add_explicit(&h->n_distances, n_dist, memory_order_relaxed);
    return 0;
}

/* ---- Algorithm 4: SELECT-NEIGHBORS-HEURISTIC -------------------------------- */

/* Keeps at most `max` of the n candidates (sorted nearest first by key, their
 * distance to the base point): a candidate is kept only if it is nearer to the
 * base than to every candidate kept before it. Writes the kept slots to out. */
static uint32_t select_heuristic(const vd_vector_view *v, const vd_hit *cands, uint32_t n,
                                 uint32_t max, uint32_t *out)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n && kept < max; i++) {
        const float *ci = v->vecs + (size_t)cands[i].slot * v->dim;
        bool good = true;
        for (uint32_t j = 0; j < kept && good; j++)
            good = dist(v, ci, out[j]) >= cands[i].key;
        if (good)
            out[kept++] = cands[i].slot;
    }
    return kept;
}

/* Adds `slot` to the links of n at level, shrinking them with the heuristic
 * when full (the second half of Algorithm 1's connection step). */
static int link_back(hnsw *h, const vd_vector_view *v, uint32_t n, uint32_t slot, int level,
                     vd_hit *scratch, uint32_t *kept)
{
    uint32_t *l = links_of(h, n, level), cap = cap_of(h, level);
    for (uint32_t i = 1; i <= l[0]; i++)
        if (l[i] == slot)
            return 0;
    if (l[0] < cap) {
        l[++l[0]] = slot;
        return 0;
    }
    const float *nv = v->vecs + (size_t)n * v->dim;
    uint32_t c = 0;
    for (uint32_t i = 1; i <= l[0]; i++)
        scratch[c++] = (vd_hit){dist(v, nv, l[i]), l[i]};
    scratch[c++] = (vd_hit){dist(v, nv, slot), slot};
    vd_hits_sort(scratch, c);
    uint32_t k = select_heuristic(v, scratch, c, cap, kept);
    memcpy(l + 1, kept, k * sizeof *kept);
    l[0] = k;
    return 0;
}

/* ---- Algorithm 1: INSERT ------------------------------------------------------ */

static int hnsw_insert(vd_index *idx, const vd_vector_view *v, uint32_t slot)
{
    hnsw *h = (hnsw *)idx;
    int rc = ensure_cap(h, slot);
    if (rc)
        return rc;
    if (h->levels[slot] >= 0)
        return -EEXIST; /* keeps_slots: the shard never re-inserts a slot */
    int level = random_level(h);
    if (level > 0) {
        h->upper[slot] = calloc((size_t)level * (1 + h->m), sizeof(uint32_t));
        if (!h->upper[slot])
            return -ENOMEM;
        h->upper_bytes += (size_t)level * (1 + h->m) * sizeof(uint32_t);
    }
    links_of(h, slot, 0)[0] = 0;
    h->levels[slot] = (int8_t)level;
    h->n_nodes++;
    if (h->entry == NONE) {
        h->entry = slot;
        h->max_level = level;
        return 0;
    }
    const float *q = v->vecs + (size_t)slot * v->dim;
    uint32_t ep = h->entry;
    float d_ep = dist(v, q, ep);
    uint64_t n_dist = 1;
    for (int l = h->max_level; l > level; l--)
        greedy(h, v, q, l, &ep, &d_ep, &n_dist);
    atomic_fetch_add_explicit(&h->n_distances, n_dist, memory_order_relaxed);

    uint32_t ef = h->efc;
    heap cand = {0};
    vd_hit *wbuf = malloc(ef * sizeof *wbuf);
    vd_hit *scratch = malloc((h->m0 + 1) * sizeof *scratch);
    uint32_t *kept = malloc((h->m0 + 1) * sizeof *kept);
    if (!wbuf || !scratch || !kept || heap_reserve(&cand, ef * 2)) {
        rc = -ENOMEM;
        goto done;
    }
    for (int l = level < h->max_level ? level : h->max_level; l >= 0; l--) {
        vd_topk w;
        vd_topk_init(&w, wbuf, ef);
        if ((rc = search_layer_build(h, v, q, ep, d_ep, ef, l, &cand, &w)))
            goto done;
        vd_topk_sort(&w);
        /* The new node takes m neighbours on every level (as hnswlib does);
         * level-0 lists may grow to m0 through links from later nodes. */
        uint32_t *mine = links_of(h, slot, l);
        mine[0] = select_heuristic(v, w.hits, w.n, h->m, mine + 1);
        for (uint32_t i = 1; i <= mine[0]; i++)
            if ((rc = link_back(h, v, mine[i], slot, l, scratch, kept)))
                goto done;
        ep = w.hits[0].slot;
        d_ep = w.hits[0].key;
    }
    if (level > h->max_level) {
        h->max_level = level;
        h->entry = slot;
    }
done:
    free(cand.a);
    free(wbuf);
    free(scratch);
    free(kept);
    return rc;
}

static void hnsw_remove(vd_index *idx, uint32_t slot)
{
    /* A tombstone: the shard's alive bit is the record; the node stays. */
    (void)idx, (void)slot;
}

/* ---- Algorithm 5: K-NN-SEARCH, filter-aware ---------------------------------- */

static int hnsw_search(vd_index *idx, const vd_vector_view *v, const vd_index_query *q,
                       vd_topk *out)
{
    hnsw *h = (hnsw *)idx;
    size_t nw = vd_bitset_words(v->n_slots);
    size_t allowed = vd_bitset_count(q->allowed, nw);
    uint32_t ef = q->ef ? q->ef : h->ef_search;
    if (ef < out->k)
        ef = out->k;
    if (allowed == 0)
        return 0;
    double graph_cost = (double)ef * h->m0 * (double)h->n_nodes;
    if (q->exact || h->entry == NONE || allowed <= ef || (double)allowed * (double)allowed < graph_cost) {
        uint64_t n = vd_index_scan(v, q, out);
        atomic_fetch_add_explicit(&h->n_distances, n, memory_order_relaxed);
        atomic_fetch_add_explicit(&h->n_exact, 1, memory_order_relaxed);
        return 0;
    }
    atomic_fetch_add_explicit(&h->n_graph, 1, memory_order_relaxed);
    uint64_t *visited = calloc(vd_bitset_words(h->cap), 8);
    vd_hit *wbuf = malloc(ef * sizeof *wbuf);
    heap cand = {0};
    int rc = 0;
    if (!visited || !wbuf || heap_reserve(&cand, ef * 2)) {
        rc = -ENOMEM;
        goto done;
    }
    uint32_t ep = h->entry;
    float d_ep = dist(v, q->vector, ep);
    uint64_t n_dist = 1;
    for (int l = h->max_level; l > 0; l--)
        greedy(h, v, q->vector, l, &ep, &d_ep, &n_dist);

    /* Level 0: traverse every node (tombstones and filtered-out nodes are
     * still stepping stones), collect only allowed ones in w, and stop when
     * the nearest candidate is farther than the worst of ef allowed hits. */
    vd_topk w;
    vd_topk_init(&w, wbuf, ef);
    vd_bit_set(visited, ep);
    if ((rc = minheap_push(&cand, d_ep, ep)))
        goto done;
    if (ep < v->n_slots && vd_bit_test(q->allowed, ep))
        vd_topk_push(&w, d_ep, ep);
    while (cand.n) {
        vd_hit c = minheap_pop(&cand);
        if (w.n == ef && c.key > vd_topk_bound(&w))
            break;
        const uint32_t *l = links_of(h, c.slot, 0);
        for (uint32_t i = 1; i <= l[0]; i++) {
            uint32_t e = l[i];
            if (vd_bit_test(visited, e))
                continue;
            vd_bit_set(visited, e);
            float d = dist(v, q->vector, e);
            n_dist++;
            if (w.n < ef || d < vd_topk_bound(&w)) {
                if ((rc = minheap_push(&cand, d, e)))
                    goto done;
                if (e < v->n_slots && vd_bit_test(q->allowed, e))
                    vd_topk_push(&w, d, e);
            }
        }
    }
    for (uint32_t i = 0; i < w.n; i++)
        if (w.hits[i].key <= q->max_key)
            vd_topk_push(out, w.hits[i].key, w.hits[i].slot);
done:
    atomic_fetch_add_explicit(&h->n_distances, n_dist, memory_order_relaxed);
    free(cand.a);
    free(wbuf);
    free(visited);
    return rc;
}

static void hnsw_stats(const vd_index *idx, vd_index_stats *out)
{
    const hnsw *h = (const hnsw *)idx;
    *out = (vd_index_stats){
        .memory_bytes = sizeof *h + (size_t)h->cap * ((1 + h->m0) * sizeof(uint32_t) +
                                                      sizeof(uint32_t *) + 1 + sizeof(uint32_t)) +
                        h->upper_bytes,
        .distance_computations = atomic_load_explicit(&h->n_distances, memory_order_relaxed),
        .searches_exact = atomic_load_explicit(&h->n_exact, memory_order_relaxed),
        .searches_graph = atomic_load_explicit(&h->n_graph, memory_order_relaxed),
        .n_nodes = h->n_nodes,
    };
}

static void hnsw_destroy(vd_index *idx)
{
    hnsw *h = (hnsw *)idx;
    for (uint32_t s = 0; s < h->cap; s++)
        free(h->upper[s]);
    free(h->upper);
    free(h->links0);
    free(h->levels);
    free(h->visit_epoch);
    free(h);
}

static const vd_index_ops hnsw_ops = {
    .type = "hnsw",
    .keeps_slots = true,
    .insert = hnsw_insert,
    .remove = hnsw_remove,
    .search = hnsw_search,
    .stats = hnsw_stats,
    .destroy = hnsw_destroy,
};

int vd_hnsw_create(const vd_index_params *p, uint64_t seed, vd_index **out)
{
    hnsw *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->base.ops = &hnsw_ops;
    h->m = p->m;
    h->m0 = 2 * p->m;
    h->efc = p->ef_construction > p->m ? p->ef_construction : p->m;
    h->ef_search = p->ef_search;
    h->ml = 1.0 / log((double)p->m);
    h->rng = seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
    h->entry = NONE;
    *out = &h->base;
    return 0;
}

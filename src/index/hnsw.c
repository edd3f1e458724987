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
 * to m0 = 2m neighbour slots. Levels above 0 (about 1/m of the nodes) live in
 * one allocation per node, (1 + m) words per level. A node's level is a
 * function of (seed, slot), so builds are reproducible whatever the order.
 *
 * Concurrency: inserts run under the shard's read lock, beside searches and
 * other inserts (a batch is inserted in parallel on the worker pool). Every
 * node has a one-byte spinlock its lists' writers take (nobody holds two at
 * once); readers take none, and see each list whole or as a mix of its old
 * and new entries (list_set, list_view below). The
 * entry point and top level are one atomic word; changing them takes
 * `top_lock`, which an insert that raises the top level holds throughout (as
 * hnswlib does). Arrays only grow in reserve(), under the write lock.
 *
 * Deletes are tombstones: the shard sets the slot's bit in v->dead, and the
 * node stays, still a stepping stone for searches but never a result (searches
 * only collect allowed slots) and never chosen as a new neighbour. repair()
 * later rewires every live node that links to a tombstone (its new candidates:
 * its live neighbours and the live neighbours of its dead ones, put through the
 * heuristic again), after which release() forgets the tombstones and the shard
 * reuses their slots. That keeps recall from decaying under churn and gives
 * the memory back.
 *
 * Filtered search (the planner in hnsw_search): with a allowed slots (alive ∩
 * filter) among n graph nodes, a walk that collects ef allowed nodes spans
 * about ef·n/a nodes; at about 10 distances per node spanned, each ~3× the
 * cost of a sequential one, it costs 30·ef·n/a scan-equivalent distances,
 * against a for an exact scan of the allowed slots. The scan is chosen when
 * it is cheaper (always when a ≤ ef, or when the search says exact); the
 * search may bring its own, cheaper scan (vd_index_query.scan: a tenant's codes).
 * Otherwise the traversal steps over every node but keeps only allowed ones,
 * and runs until it holds ef of them (ef ≥ k), as hnswlib's filtered walk
 * does: ef then means the same breadth of answers with a filter as without,
 * and a larger ef finds more. (Keeping only ef·a/n of them, as vectord did
 * before, held the walk's cost at an unfiltered one's but pinned it at k
 * allowed nodes for most ef, so recall did not rise with ef.)
 * The filter comes as a bitmap, or for broad filters as a check made per
 * node the walk reaches (vd_index_query.admits: the shard skips building a
 * bitmap over every point; a walk spans about ef / share nodes); n_allowed
 * is then the shard's estimate. Either way the walk is the same.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/bigmem.h"
#include "util/bitset.h"
#include "util/bytes.h"
#include "vectord/distance.h"
#include "vectord/index.h"

#define NONE UINT32_MAX
#define MAX_LEVEL 30
/* Scan-equivalent distance computations per node a graph walk spans,
 * calibrated on bench/compare-hnsw (100k × 1536): about 10 distances per
 * node spanned, each about 3× the cost of a sequential-scan distance. */
#define VD_HNSW_PLAN_GRAPH_FACTOR 30.0

typedef struct hnsw {
    vd_index base;
    uint32_t m, m0, efc, ef_search;
    double ml; /* level multiplier 1/ln(m) */
    uint64_t seed;
    uint32_t cap;          /* slots the arrays below cover; grows in reserve() only */
    uint32_t *links0;      /* cap * (1 + m0) (util/bigmem.h) */
    size_t links0_bytes;   /* what links0 was sized to */
    uint32_t **upper;      /* cap; upper[s] = level(s) * (1 + m) words, or NULL */
    _Atomic int8_t *levels; /* cap; -1 = slot not in the graph (release-stored last) */
    _Atomic uint8_t *locks; /* cap; per-node spinlock over its link lists */
    pthread_mutex_t top_lock; /* serialises changes of `top` */
    _Atomic uint64_t top;     /* entry << 8 | (max level + 1); 0 = empty graph */
    pthread_mutex_t repair_lock; /* one repair chunk, connect or save at a time */
    pthread_mutex_t scratch_lock; /* guards scratch_pool */
    struct scratch *scratch_pool; /* idle scratches (see scratch_get) */
    _Atomic size_t n_nodes;
    _Atomic size_t upper_bytes;
    _Atomic uint64_t n_distances, n_exact, n_graph;
    _Atomic uint64_t scratch_allocs; /* scratches made or grown (flat once warm) */
} hnsw;

/* ---- node locks ---------------------------------------------------------- */

static inline void node_lock(hnsw *h, uint32_t s)
{
    while (atomic_exchange_explicit(&h->locks[s], 1, memory_order_acquire))
        sched_yield();
}

static inline void node_unlock(hnsw *h, uint32_t s)
{
    atomic_store_explicit(&h->locks[s], 0, memory_order_release);
}

static inline uint32_t *links_of(const hnsw *h, uint32_t slot, int level)
{
    if (level == 0)
        return h->links0 + (size_t)slot * (1 + h->m0);
    return h->upper[slot] + (size_t)(level - 1) * (1 + h->m);
}

static inline int level_of(const hnsw *h, uint32_t slot)
{
    return atomic_load_explicit(&h->levels[slot], memory_order_acquire);
}

static inline uint32_t cap_of(const hnsw *h, int level) { return level == 0 ? h->m0 : h->m; }

/* ---- link lists: written under the node's lock, read without it ----------
 *
 * Searches (and inserts' walks) read a list with no lock, as hnswlib's
 * searches do: a lock per node read cost an atomic exchange and a store to a
 * shared line on every hop. Writers, one at a time under the node's lock,
 * store each entry before the count (release); readers load the count
 * (acquire), then the entries. A list being rewritten may be read as a mix of
 * its old and new entries: every one a slot that was in the graph, and the
 * visited set drops repeats. */

static inline void list_set(uint32_t *l, const uint32_t *src, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        __atomic_store_n(&l[1 + i], src[i], __ATOMIC_RELAXED);
    __atomic_store_n(&l[0], n, __ATOMIC_RELEASE);
}

static inline void list_append(uint32_t *l, uint32_t slot)
{
    uint32_t n = __atomic_load_n(&l[0], __ATOMIC_RELAXED);
    __atomic_store_n(&l[1 + n], slot, __ATOMIC_RELAXED);
    __atomic_store_n(&l[0], n + 1, __ATOMIC_RELEASE);
}

/* The list of slot at level, and its count in *n; NULL (and 0) when the slot
 * is not (or no longer) on that level: a link can outlive its target's
 * release by compaction when an insert raced the repair, and the slot may
 * since hold a new node with fewer levels. Its entries are read with
 * list_get. */
static inline const uint32_t *list_view(const hnsw *h, uint32_t slot, int level, uint32_t *n)
{
    /* Level 0 needs no look at the node's level (a cache miss per hop): a
     * slot not in the graph has an empty level-0 list (reserve, insert and
     * release keep it so). */
    *n = 0;
    if (level > 0 && level_of(h, slot) < level)
        return NULL;
    const uint32_t *l = links_of(h, slot, level);
    uint32_t c = __atomic_load_n(&l[0], __ATOMIC_ACQUIRE), cap = cap_of(h, level);
    *n = c < cap ? c : cap;
    return l;
}

static inline uint32_t list_get(const uint32_t *l, uint32_t i)
{
    return __atomic_load_n(&l[1 + i], __ATOMIC_RELAXED);
}

/* Copies the links of slot at level into buf (room for m0); returns the count. */
static uint32_t read_links(hnsw *h, uint32_t slot, int level, uint32_t *buf)
{
    uint32_t n;
    const uint32_t *l = list_view(h, slot, level, &n);
    for (uint32_t i = 0; i < n; i++)
        buf[i] = list_get(l, i);
    return n;
}

static inline void top_get(const hnsw *h, uint32_t *entry, int *level)
{
    uint64_t t = atomic_load_explicit(&h->top, memory_order_acquire);
    *entry = t ? (uint32_t)(t >> 8) : NONE;
    *level = (int)(t & 0xff) - 1;
}

static inline void top_set(hnsw *h, uint32_t entry, int level)
{
    atomic_store_explicit(&h->top, ((uint64_t)entry << 8) | (uint64_t)(level + 1),
                          memory_order_release);
}

/* ---- small min-heap over vd_hit: the candidate queue C of Algorithm 2 ---- */

typedef struct heap {
    vd_hit *a;
    uint32_t n, cap;
} heap;

static int heap_push(heap *h, float key, uint32_t slot)
{
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        vd_hit *a = realloc(h->a, cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        h->a = a;
        h->cap = cap;
    }
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

static vd_hit heap_pop(heap *h)
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

/* ---- reusable scratch --------------------------------------------------------
 *
 * Searches and inserts take a scratch from the index's pool and give it back,
 * so the hot path allocates only when the pool is empty or a buffer must grow.
 * The visited set is a bitmap (cleared per walk: 12.5 KB at 100k slots). It
 * measured faster than hnswlib-style 16-bit epoch tags, which need no clear
 * but spread a walk's random accesses over 16× more cache lines. */

typedef struct scratch {
    uint64_t *visit; /* bitmap over visit_cap slots */
    uint32_t visit_cap;
    heap cand;
    vd_hit *w; /* w_cap entries: the result set W */
    uint32_t w_cap;
    vd_hit *pool;    /* shrinking a list: m0 + 1; repair: (m0 + 1)² */
    uint32_t *links; /* m0 + 1: a copied link list */
    uint32_t *kept;  /* m0 + 1 */
    uint32_t *cands; /* repair: (m0 + 1)² two-hop candidates */
    /* Stored nodes as queries (insert, link_back, repair, and each node the
     * heuristic keeps): node_sets decoded vectors and int8 queries of
     * node_dim values, made by node_query for views that need them (codes, or
     * originals not in RAM): a node's original when in RAM, else its
     * decoded code. */
    float *node_f;
    int8_t *node_q8;
    uint32_t node_dim, node_sets;
    vd_quant_query *kept_q; /* m0 + 1: the heuristic's kept nodes as queries */
    struct scratch *next; /* in the pool */
} scratch;

/* Which node_f / node_q8 set a caller uses: they nest in this order, the
 * heuristic's kept nodes last (NODEQ_KEPT + i for the i-th kept). */
enum { NODEQ_OUTER = 0, NODEQ_LINK = 1, NODEQ_KEPT = 2 };

typedef enum scratch_use { FOR_SEARCH, FOR_INSERT, FOR_REPAIR } scratch_use;

static void scratch_free(scratch *s)
{
    if (!s)
        return;
    free(s->visit);
    free(s->cand.a);
    free(s->w);
    free(s->pool);
    free(s->links);
    free(s->kept);
    free(s->cands);
    free(s->node_f);
    free(s->node_q8);
    free(s->kept_q);
    free(s);
}

/* A scratch sized for h's slots, a result set of ef and the given use. */
static scratch *scratch_get(hnsw *h, uint32_t ef, scratch_use use)
{
    pthread_mutex_lock(&h->scratch_lock);
    scratch *s = h->scratch_pool;
    if (s)
        h->scratch_pool = s->next;
    pthread_mutex_unlock(&h->scratch_lock);
    size_t row = (size_t)h->m0 + 1;
    bool grows = !s || s->visit_cap < h->cap || s->w_cap < ef || (use == FOR_REPAIR && !s->cands);
    if (grows)
        atomic_fetch_add_explicit(&h->scratch_allocs, 1, memory_order_relaxed);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return NULL;
        s->links = malloc(row * sizeof *s->links);
        s->kept = malloc(row * sizeof *s->kept);
        s->pool = malloc(row * sizeof *s->pool);
        s->kept_q = malloc(row * sizeof *s->kept_q);
        s->node_sets = NODEQ_KEPT + (uint32_t)row;
        if (!s->links || !s->kept || !s->pool || !s->kept_q)
            goto fail;
    }
    if (s->visit_cap < h->cap) { /* the index grew since this scratch was made */
        uint64_t *v = realloc(s->visit, vd_bitset_words(h->cap) * sizeof *v);
        if (!v)
            goto fail;
        s->visit = v;
        s->visit_cap = h->cap;
    }
    if (s->w_cap < ef) {
        vd_hit *w = realloc(s->w, ef * sizeof *w);
        if (!w)
            goto fail;
        s->w = w;
        s->w_cap = ef;
    }
    if (use == FOR_REPAIR && !s->cands) {
        vd_hit *pool = realloc(s->pool, row * row * sizeof *pool);
        if (!pool)
            goto fail;
        s->pool = pool;
        s->cands = malloc(row * row * sizeof *s->cands);
        if (!s->cands)
            goto fail;
    }
    return s;
fail:
    scratch_free(s);
    return NULL;
}

static void scratch_put(hnsw *h, scratch *s)
{
    pthread_mutex_lock(&h->scratch_lock);
    s->next = h->scratch_pool;
    h->scratch_pool = s;
    pthread_mutex_unlock(&h->scratch_lock);
}

static inline void visit_begin(scratch *s)
{
    memset(s->visit, 0, vd_bitset_words(s->visit_cap) * sizeof *s->visit);
}

static inline bool visited(const scratch *s, uint32_t slot) { return vd_bit_test(s->visit, slot); }
static inline void visit(scratch *s, uint32_t slot) { vd_bit_set(s->visit, slot); }

/* ---- distances ------------------------------------------------------------- */

static inline float dist(const vd_vector_view *v, const vd_quant_query *q, uint32_t slot)
{
    return vd_view_key(v, q, slot);
}

/* Sizes the scratch's node-query buffers for v. -ENOMEM. */
static int node_buffers(const vd_vector_view *v, scratch *s)
{
    bool decode = !v->vecs, q8 = v->quant == VD_QUANT_SQ8;
    if ((decode || q8) && s->node_dim != v->dim) {
        free(s->node_f);
        free(s->node_q8);
        s->node_f = malloc((size_t)s->node_sets * v->dim * sizeof(float));
        s->node_q8 = malloc((size_t)s->node_sets * v->dim);
        if (!s->node_f || !s->node_q8) {
            s->node_dim = 0;
            return -ENOMEM;
        }
        s->node_dim = v->dim;
    }
    return 0;
}

/* Once node_buffers succeeded for this view, node_query cannot fail. */
static int node_query(const vd_vector_view *v, scratch *s, int which, uint32_t slot,
                      vd_quant_query *out)
{
    if (node_buffers(v, s))
        return -ENOMEM;
    const float *f = vd_view_vector(v, slot, s->node_f ? s->node_f + (size_t)which * v->dim : NULL);
    vd_quant_query_init(out, v->quant, v->metric, f, v->dim, s->node_q8 ? s->node_q8 + (size_t)which * v->dim : NULL);
    return 0;
}

/* Prefetches a vector's first VD_HNSW_PREFETCH_BYTES (the whole row of a
 * small vector or code; the hardware prefetcher follows the rest of a long
 * one's sequential read). */
#define VD_HNSW_PREFETCH_BYTES 512u
static inline void prefetch_vector(const vd_vector_view *v, uint32_t slot)
{
    const char *p = (const char *)vd_view_row(v, slot);
    size_t row = v->quant ? v->code_size : (size_t)v->dim * sizeof(float);
    size_t upto = row < VD_HNSW_PREFETCH_BYTES ? row : VD_HNSW_PREFETCH_BYTES;
    for (size_t off = 0; off < upto; off += 64)
        __builtin_prefetch(p + off);
}

static inline bool is_dead(const vd_vector_view *v, uint32_t slot)
{
    return v->dead && slot < v->n_slots && vd_bit_test(v->dead, slot);
}

/* Prefetches slot's whole level-0 list (count and m0 entries: 132 bytes at
 * m 16, up to three cache lines), which the walk reads when it takes slot
 * as its next candidate. */
static inline void prefetch_links0(const hnsw *h, uint32_t slot)
{
    uintptr_t first = (uintptr_t)(h->links0 + (size_t)slot * (1 + h->m0));
    uintptr_t end = first + (size_t)(1 + h->m0) * sizeof(uint32_t);
    for (uintptr_t line = first & ~(uintptr_t)63; line < end; line += 64)
        __builtin_prefetch((const void *)line);
}

/* ---- Algorithm 2: SEARCH-LAYER ---------------------------------------------- */

/* Greedy walk to the nearest node of one upper level (ef = 1). */
static void greedy(hnsw *h, const vd_vector_view *v, const vd_quant_query *q, int level, uint32_t *ep,
                   float *d_ep, uint32_t *buf, uint64_t *n_dist)
{
    bool moved = true;
    while (moved) {
        moved = false;
        uint32_t n = read_links(h, *ep, level, buf);
        for (uint32_t i = 0; i < n; i++) {
            float d = dist(v, q, buf[i]);
            (*n_dist)++;
            if (d < *d_ep) {
                *d_ep = d;
                *ep = buf[i];
                moved = true;
            }
        }
    }
}

/* The ef nearest nodes to q on `level` reachable from ep, into w. When
 * `filter` is set, every node is traversed but only those it allows enter w,
 * and the walk goes on until w holds ef of them (filtered search). */
static int search_layer(hnsw *h, const vd_vector_view *v, const vd_quant_query *q, uint32_t ep, float d_ep,
                        uint32_t ef, int level, const vd_index_query *filter, scratch *s, vd_topk *w,
                        uint64_t *n_dist)
{
    visit_begin(s);
    s->cand.n = 0;
    visit(s, ep);
    if (heap_push(&s->cand, d_ep, ep))
        return -ENOMEM;
    if (!filter || (ep < v->n_slots && vd_index_allows(filter, ep)))
        vd_topk_push(w, d_ep, ep);
    while (s->cand.n) {
        vd_hit c = heap_pop(&s->cand);
        if (w->n == ef && c.key > vd_topk_bound(w))
            break;
        /* The next candidate's level-0 list will be read soon: start its
         * load (the whole list; a node that becomes the nearest candidate
         * below is prefetched as it is pushed). */
        if (level == 0 && s->cand.n)
            prefetch_links0(h, s->cand.a[0].slot);
        uint32_t n;
        const uint32_t *l = list_view(h, c.slot, level, &n);
        /* Keep only unvisited neighbours, and start loading the head of each
         * vector now; the next vector's body is fetched while one is measured. */
        uint32_t fresh = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t e = list_get(l, i);
            if (visited(s, e))
                continue;
            visit(s, e);
            __builtin_prefetch(vd_view_row(v, e));
            s->links[fresh++] = e;
        }
        for (uint32_t i = 0; i < fresh; i++) {
            uint32_t e = s->links[i];
            if (i + 1 < fresh)
                prefetch_vector(v, s->links[i + 1]);
            float d = dist(v, q, e);
            (*n_dist)++;
            if (w->n < ef || d < vd_topk_bound(w)) {
                if (heap_push(&s->cand, d, e))
                    return -ENOMEM;
                if (level == 0 && s->cand.a[0].slot == e)
                    prefetch_links0(h, e);
                if (!filter || (e < v->n_slots && vd_index_allows(filter, e)))
                    vd_topk_push(w, d, e);
            }
        }
    }
    return 0;
}

/* ---- Algorithm 4: SELECT-NEIGHBORS-HEURISTIC -------------------------------- */

/* Keeps at most `max` of the n candidates (sorted nearest first by key, their
 * distance to the base point), skipping tombstones: a candidate is kept only
 * if it is nearer to the base than to every candidate kept before it. Each
 * kept node is made a query once and measured against the candidates after
 * it (the distance is the same either way round for float32 vectors): a
 * quantized view quantizes at most `max` nodes, where making each candidate
 * the query quantized every one looked at (60% of an sq8 build's time). */
static uint32_t select_heuristic(const vd_vector_view *v, const vd_hit *cands, uint32_t n,
                                 uint32_t max, uint32_t *out, scratch *s, uint64_t *n_dist)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n && kept < max; i++) {
        if (is_dead(v, cands[i].slot))
            continue;
        bool good = true;
        for (uint32_t j = 0; j < kept && good; j++) {
            good = dist(v, &s->kept_q[j], cands[i].slot) >= cands[i].key;
            (*n_dist)++;
        }
        if (!good)
            continue;
        out[kept++] = cands[i].slot;
        if (kept < max && node_query(v, s, NODEQ_KEPT + (int)kept - 1, cands[i].slot, &s->kept_q[kept - 1]))
            return kept; /* out of memory: keep what is chosen */
    }
    return kept;
}

/* Adds `slot` to the links of n at level; when the list is full it is rebuilt
 * with the heuristic over its members plus slot (Algorithm 1, "shrink"). */
static void link_back(hnsw *h, const vd_vector_view *v, uint32_t n, uint32_t slot, int level,
                      scratch *s, uint64_t *n_dist)
{
    uint32_t cap = cap_of(h, level);
    node_lock(h, n);
    if (level_of(h, n) < level) { /* see read_links */
        node_unlock(h, n);
        return;
    }
    uint32_t *l = links_of(h, n, level);
    for (uint32_t i = 1; i <= l[0]; i++) {
        if (l[i] == slot) {
            node_unlock(h, n);
            return;
        }
    }
    if (l[0] < cap) {
        list_append(l, slot);
        node_unlock(h, n);
        return;
    }
    vd_quant_query nv;
    if (node_query(v, s, NODEQ_LINK, n, &nv)) {
        node_unlock(h, n);
        return; /* out of memory: the link is one-way, as when pruned */
    }
    uint32_t c = 0;
    for (uint32_t i = 1; i <= l[0]; i++)
        s->pool[c++] = (vd_hit){dist(v, &nv, l[i]), l[i]};
    s->pool[c++] = (vd_hit){dist(v, &nv, slot), slot};
    *n_dist += c;
    vd_hits_sort(s->pool, c);
    uint32_t k = select_heuristic(v, s->pool, c, cap, s->kept, s, n_dist);
    list_set(l, s->kept, k);
    node_unlock(h, n);
}

/* ---- Algorithm 1: INSERT ------------------------------------------------------ */

static int level_for(const hnsw *h, uint32_t slot)
{
    uint64_t x = h->seed ^ ((uint64_t)slot * 0x9E3779B97F4A7C15ULL);
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    double u = ((double)(x >> 11) + 0.5) / 9007199254740992.0;
    int level = (int)(-log(u) * h->ml);
    return level > MAX_LEVEL ? MAX_LEVEL : level;
}

static int hnsw_reserve(vd_index *idx, uint32_t n_slots)
{
    hnsw *h = (hnsw *)idx;
    if (n_slots <= h->cap)
        return 0;
    size_t cap = h->cap ? h->cap : 1024;
    while (cap < n_slots)
        cap *= 2;
    size_t row = (1 + (size_t)h->m0) * sizeof(uint32_t);
    uint32_t *l0 = vd_bigmem_resize(h->links0, h->links0_bytes, cap * row);
    if (!l0)
        return -ENOMEM;
    h->links0 = l0;
    h->links0_bytes = cap * row;
    uint32_t **up = realloc(h->upper, cap * sizeof *up);
    if (!up)
        return -ENOMEM;
    h->upper = up;
    _Atomic int8_t *lv = realloc((void *)h->levels, cap * sizeof *lv);
    if (!lv)
        return -ENOMEM;
    h->levels = lv;
    _Atomic uint8_t *lk = realloc((void *)h->locks, cap * sizeof *lk);
    if (!lk)
        return -ENOMEM;
    h->locks = lk;
    for (size_t s = h->cap; s < cap; s++) {
        up[s] = NULL;
        atomic_init(&lv[s], -1);
        atomic_init(&lk[s], 0);
        l0[s * (1 + h->m0)] = 0;
    }
    h->cap = (uint32_t)cap;
    return 0;
}

static int hnsw_insert(vd_index *idx, const vd_vector_view *v, uint32_t slot)
{
    hnsw *h = (hnsw *)idx;
    if (slot >= h->cap)
        return -ERANGE; /* the shard reserves first */
    if (level_of(h, slot) >= 0)
        return -EEXIST; /* keeps_slots: a slot is inserted once until released */
    int level = level_for(h, slot);
    if (level > 0) {
        size_t bytes = (size_t)level * (1 + h->m) * sizeof(uint32_t);
        h->upper[slot] = calloc(1, bytes);
        if (!h->upper[slot])
            return -ENOMEM;
        atomic_fetch_add(&h->upper_bytes, bytes);
    }
    list_set(links_of(h, slot, 0), NULL, 0);
    atomic_store_explicit(&h->levels[slot], (int8_t)level, memory_order_release);
    atomic_fetch_add(&h->n_nodes, 1);

    uint32_t ep;
    int top_level;
    pthread_mutex_lock(&h->top_lock);
    top_get(h, &ep, &top_level);
    if (ep == NONE) {
        top_set(h, slot, level);
        pthread_mutex_unlock(&h->top_lock);
        return 0;
    }
    bool raises_top = level > top_level;
    if (!raises_top)
        pthread_mutex_unlock(&h->top_lock);

    scratch *s = scratch_get(h, h->efc, FOR_INSERT);
    uint64_t n_dist = 1;
    int rc = s ? 0 : -ENOMEM;
    if (rc)
        goto done;
    vd_quant_query query, *q = &query;
    if ((rc = node_query(v, s, NODEQ_OUTER, slot, q)))
        goto done;
    float d_ep = dist(v, q, ep);
    for (int l = top_level; l > level; l--)
        greedy(h, v, q, l, &ep, &d_ep, s->links, &n_dist);
    for (int l = level < top_level ? level : top_level; l >= 0; l--) {
        vd_topk w;
        vd_topk_init(&w, s->w, h->efc);
        if ((rc = search_layer(h, v, q, ep, d_ep, h->efc, l, NULL, s, &w, &n_dist)))
            goto done;
        vd_topk_sort(&w);
        /* The new node takes m neighbours on every level (as hnswlib does);
         * level-0 lists may grow to m0 through links from later nodes. */
        uint32_t k = select_heuristic(v, w.hits, w.n, h->m, s->kept, s, &n_dist);
        node_lock(h, slot);
        list_set(links_of(h, slot, l), s->kept, k);
        node_unlock(h, slot);
        uint32_t kept[VD_HNSW_MAX_M];
        memcpy(kept, s->kept, k * sizeof *s->kept); /* link_back reuses s->kept */
        for (uint32_t i = 0; i < k; i++)
            link_back(h, v, kept[i], slot, l, s, &n_dist);
        ep = w.hits[0].slot;
        d_ep = w.hits[0].key;
    }
done:
    if (raises_top) {
        if (!rc)
            top_set(h, slot, level);
        pthread_mutex_unlock(&h->top_lock);
    }
    atomic_fetch_add_explicit(&h->n_distances, n_dist, memory_order_relaxed);
    if (s)
        scratch_put(h, s);
    return rc;
}

static void hnsw_remove(vd_index *idx, uint32_t slot)
{
    /* A tombstone: the shard's dead bit is the record; repair() and release()
     * take the node out later. */
    (void)idx, (void)slot;
}

/* ---- Algorithm 5: K-NN-SEARCH, filter-aware ---------------------------------- */

static int hnsw_search(vd_index *idx, const vd_vector_view *v, const vd_index_query *q,
                       vd_topk *out)
{
    hnsw *h = (hnsw *)idx;
    size_t allowed = q->n_allowed != SIZE_MAX ? q->n_allowed
                                              : vd_bitset_count(q->allowed, vd_bitset_words(v->n_slots));
    uint32_t ef = q->ef ? q->ef : h->ef_search;
    if (ef < out->k)
        ef = out->k;
    if (allowed == 0)
        return 0;
    uint32_t ep;
    int top_level;
    top_get(h, &ep, &top_level);
    /* Graph cost in scan-equivalent distances: the walk spans about ef·n/a
     * nodes, computes about 10 distances per node spanned, and each is ~3×
     * dearer than one of a sequential scan (random access); see the header. */
    size_t n_nodes = atomic_load(&h->n_nodes);
    double span = (double)ef * (double)n_nodes / (double)allowed;
    double graph_cost = VD_HNSW_PLAN_GRAPH_FACTOR * (span > ef ? span : (double)ef);
    if (q->exact || ep == NONE || allowed <= ef || (double)allowed <= graph_cost) {
        uint64_t n = 0;
        if (q->scan && !q->exact) { /* the caller counts its own plan */
            int rc = q->scan(q->scan_ctx, q, out, &n);
            if (rc)
                return rc;
        } else {
            n = vd_index_scan(v, q, out);
            atomic_fetch_add_explicit(&h->n_exact, 1, memory_order_relaxed);
        }
        atomic_fetch_add_explicit(&h->n_distances, n, memory_order_relaxed);
        if (q->n_distances)
            atomic_fetch_add_explicit(q->n_distances, n, memory_order_relaxed);
        return 0;
    }
    atomic_fetch_add_explicit(&h->n_graph, 1, memory_order_relaxed);
    if (q->n_approximate)
        atomic_fetch_add_explicit(q->n_approximate, 1, memory_order_relaxed);
    uint64_t n_dist = 1;
    scratch *s = scratch_get(h, ef, FOR_SEARCH);
    if (!s)
        return -ENOMEM;
    float d_ep = dist(v, q->query, ep);
    for (int l = top_level; l > 0; l--)
        greedy(h, v, q->query, l, &ep, &d_ep, s->links, &n_dist);
    /* w holds only allowed nodes, ef of them, as hnswlib's filtered walk
     * does: the walk spans about ef / selectivity nodes, so ef means the same
     * breadth of answers with a filter as without, and a larger ef finds more
     * (the planner above scans instead when that span costs more). */
    vd_topk w;
    vd_topk_init(&w, s->w, ef);
    int rc = search_layer(h, v, q->query, ep, d_ep, ef, 0, q, s, &w, &n_dist);
    for (uint32_t i = 0; !rc && i < w.n; i++)
        if (w.hits[i].key <= q->max_key)
            vd_topk_push(out, w.hits[i].key, w.hits[i].slot);
    atomic_fetch_add_explicit(&h->n_distances, n_dist, memory_order_relaxed);
    if (q->n_distances)
        atomic_fetch_add_explicit(q->n_distances, n_dist, memory_order_relaxed);
    scratch_put(h, s);
    return rc;
}

/* ---- repair and release ------------------------------------------------------ */

/* Rebuilds the list of node at level if it holds a tombstone. */
static void repair_node(hnsw *h, const vd_vector_view *v, uint32_t node, int level, scratch *s,
                        uint64_t *n_dist)
{
    uint32_t n = read_links(h, node, level, s->links);
    bool has_dead = false;
    for (uint32_t i = 0; i < n && !has_dead; i++)
        has_dead = is_dead(v, s->links[i]);
    if (!has_dead)
        return;
    /* Candidates: live neighbours, and the live neighbours of dead ones. */
    uint32_t nc = 0;
    uint32_t *hop = s->kept;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t e = s->links[i];
        if (!is_dead(v, e)) {
            s->cands[nc++] = e;
            continue;
        }
        if (level_of(h, e) < level)
            continue;
        uint32_t m = read_links(h, e, level, hop);
        for (uint32_t j = 0; j < m; j++)
            if (hop[j] != node && !is_dead(v, hop[j]))
                s->cands[nc++] = hop[j];
    }
    vd_quant_query nv;
    node_query(v, s, NODEQ_LINK, node, &nv); /* cannot fail: hnsw_repair sized the buffers */
    uint32_t np = 0;
    for (uint32_t i = 0; i < nc; i++) {
        bool dup = false;
        for (uint32_t j = 0; j < np && !dup; j++)
            dup = s->pool[j].slot == s->cands[i];
        if (!dup)
            s->pool[np++] = (vd_hit){dist(v, &nv, s->cands[i]), s->cands[i]};
    }
    *n_dist += np;
    vd_hits_sort(s->pool, np);
    uint32_t k = select_heuristic(v, s->pool, np, cap_of(h, level), s->kept, s, n_dist);
    node_lock(h, node);
    uint32_t *l = links_of(h, node, level);
    /* Keep links that inserts added meanwhile, as far as room allows. */
    for (uint32_t i = 1; i <= l[0] && k < cap_of(h, level); i++) {
        bool known = is_dead(v, l[i]);
        for (uint32_t j = 0; j < n && !known; j++)
            known = s->links[j] == l[i];
        for (uint32_t j = 0; j < k && !known; j++)
            known = s->kept[j] == l[i];
        if (!known)
            s->kept[k++] = l[i];
    }
    list_set(l, s->kept, k);
    node_unlock(h, node);
}

static int hnsw_repair(vd_index *idx, const vd_vector_view *v, uint32_t first, uint32_t count)
{
    hnsw *h = (hnsw *)idx;
    scratch *s = scratch_get(h, 1, FOR_REPAIR);
    if (s && node_buffers(v, s)) { /* repair_node must not fail halfway */
        scratch_put(h, s);
        s = NULL;
    }
    if (!s)
        return -ENOMEM;
    pthread_mutex_lock(&h->repair_lock);
    uint64_t n_dist = 0;
    uint32_t limit = v->n_slots < h->cap ? v->n_slots : h->cap;
    uint32_t end = count > limit - (first < limit ? first : limit) ? limit : first + count;
    for (uint32_t node = first; node < end; node++) {
        int node_level = level_of(h, node);
        if (node_level < 0 || is_dead(v, node))
            continue;
        for (int l = node_level; l >= 0; l--)
            repair_node(h, v, node, l, s, &n_dist);
    }
    if (end < limit) {
        pthread_mutex_unlock(&h->repair_lock);
        atomic_fetch_add_explicit(&h->n_distances, n_dist, memory_order_relaxed);
        scratch_put(h, s);
        return 0;
    }
    /* Last range: a dead entry point is replaced by the live node with the
     * highest level. */
    pthread_mutex_lock(&h->top_lock);
    uint32_t ep;
    int top_level;
    top_get(h, &ep, &top_level);
    if (ep != NONE && is_dead(v, ep)) {
        uint32_t best = NONE;
        int best_level = -1;
        for (uint32_t node = 0; node < limit; node++) {
            int node_level = level_of(h, node);
            if (node_level > best_level && !is_dead(v, node)) {
                best = node;
                best_level = node_level;
            }
        }
        if (best == NONE)
            atomic_store(&h->top, 0);
        else
            top_set(h, best, best_level);
    }
    pthread_mutex_unlock(&h->top_lock);
    pthread_mutex_unlock(&h->repair_lock);
    atomic_fetch_add_explicit(&h->n_distances, n_dist, memory_order_relaxed);
    scratch_put(h, s);
    return 0;
}

static void hnsw_release(vd_index *idx, uint32_t slot)
{
    hnsw *h = (hnsw *)idx;
    int level = slot < h->cap ? level_of(h, slot) : -1;
    if (level < 0)
        return;
    if (h->upper[slot]) {
        atomic_fetch_sub(&h->upper_bytes, (size_t)level * (1 + h->m) * sizeof(uint32_t));
        free(h->upper[slot]);
        h->upper[slot] = NULL;
    }
    list_set(links_of(h, slot, 0), NULL, 0);
    atomic_store_explicit(&h->levels[slot], -1, memory_order_release);
    atomic_fetch_sub(&h->n_nodes, 1);
}

/* ---- Reachability -------------------------------------------------------------
 *
 * A node is found only if a walk from the entry point can reach it. When all
 * of a node's in-links are pruned by the heuristic (link_back shrinking full
 * lists, repair), it stays in the graph but no search can find it, at any ef:
 * about 1 node in 3,000 on random 128-d data, more with small m, and the
 * cause of a recall ceiling hnswlib shares. connect() finds such nodes by a
 * breadth-first walk of level 0 from the entry point (dead nodes included, as
 * searches step over them) and links each from its nearest reachable nodes,
 * found by an insert's walk: into the first of the m nearest level-0 lists
 * with room, or else in place of the farthest link of the nearest. */

/* Marks in `seen` every node a level-0 walk from `from` reaches. Only
 * connect() changes lists meanwhile (no insert runs; repair is held off), so
 * they are read without their locks. queue has room for `limit` slots. */
static void mark_reachable(hnsw *h, uint32_t from, uint32_t limit, uint64_t *seen, uint32_t *queue)
{
    if (vd_bit_test(seen, from))
        return;
    size_t head = 0, tail = 0;
    vd_bit_set(seen, from);
    queue[tail++] = from;
    while (head < tail) {
        const uint32_t *l = links_of(h, queue[head++], 0);
        for (uint32_t i = 1; i <= l[0]; i++) {
            uint32_t e = l[i];
            if (e < limit && !vd_bit_test(seen, e) && level_of(h, e) >= 0) {
                vd_bit_set(seen, e);
                queue[tail++] = e;
            }
        }
    }
}

/* Links the unreachable live node x from its nearest reachable ones. */
static int link_in(hnsw *h, const vd_vector_view *v, uint32_t x, scratch *s, uint64_t *n_dist)
{
    uint32_t ep;
    int top;
    top_get(h, &ep, &top);
    vd_quant_query q, nq;
    if (node_query(v, s, NODEQ_OUTER, x, &q))
        return -ENOMEM;
    float d_ep = dist(v, &q, ep);
    for (int l = top; l > 0; l--)
        greedy(h, v, &q, l, &ep, &d_ep, s->links, n_dist);
    vd_topk w;
    vd_topk_init(&w, s->w, h->efc);
    int rc = search_layer(h, v, &q, ep, d_ep, h->efc, 0, NULL, s, &w, n_dist);
    if (rc)
        return rc;
    vd_topk_sort(&w);
    uint32_t nearest = NONE;
    for (uint32_t i = 0, tried = 0; i < w.n && tried < h->m; i++) {
        uint32_t y = w.hits[i].slot;
        if (y == x || is_dead(v, y))
            continue;
        tried++;
        if (nearest == NONE)
            nearest = y;
        node_lock(h, y);
        uint32_t *l = links_of(h, y, 0);
        bool room = l[0] < h->m0;
        if (room)
            list_append(l, x);
        node_unlock(h, y);
        if (room)
            return 0;
    }
    if (nearest == NONE)
        return 0; /* nothing live to link from */
    if (node_query(v, s, NODEQ_LINK, nearest, &nq))
        return -ENOMEM;
    node_lock(h, nearest);
    uint32_t *l = links_of(h, nearest, 0), far = 1;
    float d_far = -__builtin_inff();
    for (uint32_t i = 1; i <= l[0]; i++) {
        float d = dist(v, &nq, l[i]);
        if (d > d_far)
            d_far = d, far = i;
    }
    *n_dist += l[0];
    __atomic_store_n(&l[far], x, __ATOMIC_RELAXED);
    node_unlock(h, nearest);
    return 0;
}

static int hnsw_connect(vd_index *idx, const vd_vector_view *v, size_t *n_linked)
{
    hnsw *h = (hnsw *)idx;
    *n_linked = 0;
    uint32_t ep;
    int top;
    top_get(h, &ep, &top);
    if (ep == NONE)
        return 0;
    uint32_t limit = v->n_slots < h->cap ? v->n_slots : h->cap;
    uint64_t *seen = calloc(vd_bitset_words(h->cap), sizeof *seen);
    uint32_t *queue = malloc((size_t)h->cap * sizeof *queue);
    scratch *s = seen && queue ? scratch_get(h, h->efc, FOR_INSERT) : NULL;
    int rc = s ? 0 : -ENOMEM;
    uint64_t n_dist = 0;
    pthread_mutex_lock(&h->repair_lock);
    /* A search enters level 0 wherever its descent through the upper levels
     * ends: every node of an upper level is a way in. */
    for (uint32_t x = 0; !rc && x < limit; x++)
        if (level_of(h, x) > 0)
            mark_reachable(h, x, limit, seen, queue);
    if (!rc)
        mark_reachable(h, ep, limit, seen, queue);
    for (uint32_t x = 0; !rc && x < limit; x++) {
        if (vd_bit_test(seen, x) || level_of(h, x) < 0 || is_dead(v, x))
            continue;
        if (!(rc = link_in(h, v, x, s, &n_dist))) {
            (*n_linked)++;
            mark_reachable(h, x, limit, seen, queue); /* and what it leads to */
        }
    }
    pthread_mutex_unlock(&h->repair_lock);
    atomic_fetch_add_explicit(&h->n_distances, n_dist, memory_order_relaxed);
    if (s)
        scratch_put(h, s);
    free(seen);
    free(queue);
    return rc;
}

static bool hnsw_holds(const vd_index *idx, uint32_t slot)
{
    const hnsw *h = (const hnsw *)idx;
    return slot < h->cap && level_of(h, slot) >= 0;
}

static void hnsw_stats(const vd_index *idx, vd_index_stats *out)
{
    const hnsw *h = (const hnsw *)idx;
    *out = (vd_index_stats){
        .memory_bytes = sizeof *h +
                        (size_t)h->cap * ((1 + h->m0) * sizeof(uint32_t) + sizeof(uint32_t *) + 2) +
                        atomic_load(&h->upper_bytes),
        .distance_computations = atomic_load_explicit(&h->n_distances, memory_order_relaxed),
        .searches_exact = atomic_load_explicit(&h->n_exact, memory_order_relaxed),
        .searches_graph = atomic_load_explicit(&h->n_graph, memory_order_relaxed),
        .scratch_allocations = atomic_load_explicit(&h->scratch_allocs, memory_order_relaxed),
        .n_nodes = atomic_load(&h->n_nodes),
    };
}

static void hnsw_destroy(vd_index *idx)
{
    hnsw *h = (hnsw *)idx;
    for (uint32_t s = 0; s < h->cap; s++)
        free(h->upper[s]);
    free(h->upper);
    vd_bigmem_free(h->links0, h->links0_bytes);
    free((void *)h->levels);
    free((void *)h->locks);
    pthread_mutex_destroy(&h->top_lock);
    pthread_mutex_destroy(&h->repair_lock);
    while (h->scratch_pool) {
        scratch *next = h->scratch_pool->next;
        scratch_free(h->scratch_pool);
        h->scratch_pool = next;
    }
    pthread_mutex_destroy(&h->scratch_lock);
    free(h);
}

/* The graph's image (see hnsw_save). */
static int save_graph(const hnsw *h, uint32_t n_slots, struct vd_strbuf *out)
{
    uint32_t entry;
    int top;
    top_get(h, &entry, &top);
    vd_put_u32(out, entry);
    vd_put_u32(out, (uint32_t)top);
    for (uint32_t s = 0; s < n_slots; s++) {
        int level = s < h->cap ? level_of(h, s) : -1;
        vd_put_u8(out, (uint8_t)(int8_t)level);
        for (int l = 0; l <= level; l++) {
            const uint32_t *links = links_of(h, s, l);
            vd_put_bytes(out, links, (1 + (size_t)links[0]) * sizeof(uint32_t));
        }
    }
    return out->failed ? -ENOMEM : 0;
}

/* Snapshot image, under the shard's read lock with no insert running; a
 * repair (which rewires links under the read lock) waits for it. The lock is
 * the index's own, not part of what it saves: taking it leaves the image
 * unchanged. Byte layout in the table at the top of src/storage/snapshot.c. */
static int hnsw_save(const vd_index *idx, uint32_t n_slots, struct vd_strbuf *out)
{
    hnsw *h = (hnsw *)idx; /* for repair_lock only */
    pthread_mutex_lock(&h->repair_lock);
    int rc = save_graph(h, n_slots, out);
    pthread_mutex_unlock(&h->repair_lock);
    return rc;
}

static int hnsw_load(vd_index *idx, uint32_t n_slots, uint32_t dim, struct vd_reader *r)
{
    (void)dim; /* the graph holds slots, not vectors */
    hnsw *h = (hnsw *)idx;
    int rc = hnsw_reserve(idx, n_slots);
    if (rc)
        return rc;
    uint32_t entry = vd_get_u32(r);
    int top = (int)vd_get_u32(r);
    size_t nodes = 0;
    for (uint32_t s = 0; s < n_slots && !r->bad; s++) {
        int level = (int8_t)vd_get_u8(r);
        if (level < -1 || level > MAX_LEVEL)
            return -EINVAL;
        if (level > 0) {
            size_t words = (size_t)level * (1 + h->m);
            if (!(h->upper[s] = calloc(words, sizeof(uint32_t))))
                return -ENOMEM;
            atomic_fetch_add(&h->upper_bytes, words * sizeof(uint32_t));
        }
        for (int l = 0; l <= level && !r->bad; l++) {
            uint32_t *links = links_of(h, s, l), n = vd_get_u32(r);
            if (n > cap_of(h, l))
                return -EINVAL;
            links[0] = n;
            vd_get_copy(r, links + 1, n * sizeof(uint32_t));
            for (uint32_t i = 1; i <= n; i++)
                if (links[i] >= n_slots)
                    return -EINVAL;
        }
        atomic_store_explicit(&h->levels[s], (int8_t)level, memory_order_relaxed);
        nodes += level >= 0;
    }
    if (r->bad || (top >= 0 && (entry >= n_slots || level_of(h, entry) < top)))
        return -EINVAL;
    if (top >= 0)
        top_set(h, entry, top);
    atomic_store(&h->n_nodes, nodes);
    return 0;
}

static const vd_index_ops hnsw_ops = {
    .save = hnsw_save,
    .load = hnsw_load,
    .type = "hnsw",
    .keeps_slots = true,
    .concurrent_insert = true,
    .reserve = hnsw_reserve,
    .insert = hnsw_insert,
    .remove = hnsw_remove,
    .search = hnsw_search,
    .repair = hnsw_repair,
    .release = hnsw_release,
    .holds = hnsw_holds,
    .connect = hnsw_connect,
    .stats = hnsw_stats,
    .destroy = hnsw_destroy,
};

int vd_hnsw_create(const vd_index_params *p, uint64_t seed, vd_index **out)
{
    if (p->m < VD_HNSW_MIN_M || p->m > VD_HNSW_MAX_M)
        return -EINVAL;
    hnsw *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->base.ops = &hnsw_ops;
    h->m = p->m;
    h->m0 = 2 * p->m;
    h->efc = p->ef_construction > p->m ? p->ef_construction : p->m;
    h->ef_search = p->ef_search;
    h->ml = 1.0 / log((double)p->m);
    h->seed = seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
    pthread_mutex_init(&h->top_lock, NULL);
    pthread_mutex_init(&h->repair_lock, NULL);
    pthread_mutex_init(&h->scratch_lock, NULL);
    *out = &h->base;
    return 0;
}

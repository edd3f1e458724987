/*
 * shard_search.c — k-NN search over one shard, under its read lock: the
 * filter becomes an allowed-slot bitmap, the index searches (or, for an exact
 * search of a quantized shard, the originals are scanned), the points still
 * waiting for the graph (the backlog, shard_build.c) are scanned exactly and
 * merged in, and a quantized shard re-ranks its candidates with the float32
 * originals.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "db/filter.h"
#include "db/shard_internal.h"

/* Exact keys of the allowed slots from the originals (RAM or disk) into out:
 * an exact search of a quantized shard. 0 or -EIO. */
static int scan_originals(const vd_shard *s, const vd_index_query *q, float *buf, vd_topk *out,
                          uint64_t *n)
{
    size_t nw = vd_bitset_words(s->n_slots);
    for (size_t i = vd_bitset_next(q->allowed, nw, 0); i != SIZE_MAX;
         i = vd_bitset_next(q->allowed, nw, i + 1)) {
        const float *x = vd_vecstore_get(&s->vs, (uint32_t)i, buf);
        if (!x)
            return -EIO;
        float key = vd_index_key(s->metric, q->query->f, x, s->dim);
        (*n)++;
        if (key <= q->max_key && key < vd_topk_bound(out))
            vd_topk_push(out, key, (uint32_t)i);
    }
    return 0;
}

/* Re-ranks the index's candidates by their originals into out, keeping
 * those within max_key. 0 or -EIO. */
static int rerank(const vd_shard *s, const vd_topk *cands, const float *query, float max_key,
                  float *buf, vd_topk *out)
{
    for (uint32_t i = 0; i < cands->n; i++) {
        uint32_t slot = cands->hits[i].slot;
        const float *x = vd_vecstore_get(&s->vs, slot, buf);
        if (!x)
            return -EIO;
        float key = vd_index_key(s->metric, query, x, s->dim);
        if (key <= max_key && key < vd_topk_bound(out))
            vd_topk_push(out, key, slot);
    }
    return 0;
}

/* Broad filters on a graph are checked per slot as the walk reaches it
 * (vd_index_query.admits) instead of as a bitmap built over every point
 * first: the bitmap costs O(points) per search, the check O(nodes the walk
 * reaches), about ef / share of them. The share a filter admits is
 * estimated from a fixed pseudo-random sample of slots; from
 * VD_LAZY_FILTER_MIN_SHARE up the walk is cheap and the bitmap is skipped,
 * provided the graph's planner walks rather than scans (hnsw.c: it scans
 * when a² ≤ 30·ef·n for a admitted of n points; a scan wants the bitmap),
 * with a margin of 2 and ef taken as 256 when the index default applies.
 * Narrower filters keep the bitmap. A filter whose check reads only index
 * columns (vd_filter_slot_indexed: ranges) is walked lazily from
 * VD_LAZY_FILTER_MIN_SHARE_INDEXED: its check per node is a load, where a
 * payload look-up's is a hash probe and JSON (GloVe-100, 10% range filter,
 * bench/compare-hnsw: 1.3–2.3× the QPS at ef 12–48 against the bitmap). */
#define VD_LAZY_FILTER_MIN_SHARE 0.2
#define VD_LAZY_FILTER_MIN_SHARE_INDEXED 0.05
#define VD_LAZY_FILTER_SAMPLE 128u
#define VD_LAZY_FILTER_MIN_POINTS 4096u
#define VD_LAZY_FILTER_EF_UNKNOWN 256u

/* Whether a walk admitting `share` of n points would be planned as a walk,
 * when the graph is asked for `k` answers (the request's k, or its
 * candidates for re-ranking: the walk's breadth is at least that). */
static bool walk_planned(double share, double min_share, size_t n, const vd_search_req *req, uint32_t k)
{
    double ef = req->ef ? req->ef : VD_LAZY_FILTER_EF_UNKNOWN;
    if (ef < k)
        ef = k;
    return share >= min_share && share * share * (double)n >= 2 * 30 * ef;
}

typedef struct lazy_filter {
    const vd_shard *s;
    const vd_filter *f;
    vd_filter_source src; /* indexed ranges are read from their columns, not the payload */
} lazy_filter;

static bool lazy_admits(const void *ctx, uint32_t slot)
{
    const lazy_filter *lf = ctx;
    return vd_filter_match_slot(lf->f, &lf->src, slot);
}

/* The share of the shard's live points lf's filter admits, from a sample. */
static double admitted_share(const lazy_filter *lf)
{
    const vd_shard *s = lf->s;
    uint32_t seen = 0, yes = 0;
    for (uint64_t k = 0; k < VD_LAZY_FILTER_SAMPLE; k++) {
        /* SplitMix64's finalizer: every bit of x mixed. (The golden-ratio
         * multiple alone, shifted once, left the low bits so regular that
         * every slot drawn was ≡ 3 mod 4, and a filter following the slots'
         * order, such as a tenant of 20 written in turn, looked 5× broader
         * than it is and was walked on the graph.) */
        uint64_t x = (k + 1) * 0x9E3779B97F4A7C15ULL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
        x ^= x >> 31;
        uint32_t slot = (uint32_t)(x % s->n_slots);
        if (!vd_bit_test(s->alive, slot))
            continue;
        seen++;
        yes += lazy_admits(lf, slot);
    }
    return seen ? (double)yes / seen : 0.0;
}

/* Searches filtered to tenants of a tenant index (payload_index.h: a
 * condition in the filter's top-level must matching the index's field).
 * When the graph's planner chooses to scan the allowed slots (a small
 * tenant), the tenants' blocks of sq8 codes are read side by side instead of
 * their float32 vectors from all over the shard: a quarter of the bytes, in
 * sequence (bench/tenant_filter.c: one tenant of 100 at 1M × 1536). The
 * best k × VD_TENANT_OVERSAMPLING by code are re-ranked with the originals;
 * the answer is approximate only when more points than that were allowed. */
#define VD_TENANT_MAX_BLOCKS 16u
#define VD_TENANT_OVERSAMPLING 4.0f

typedef struct tenant_scan {
    vd_shard *s;
    const vd_tenant_block *blocks[VD_TENANT_MAX_BLOCKS + 1]; /* the tenants', and loose */
    size_t n_blocks;
    bool on;
    vd_quant_query codes; /* the query, for sq8 codes */
    const float *query;   /* normalised for cosine, for the originals */
    vd_hit *cands;
    uint32_t n_cand;
    float *buf; /* an original read from disk */
    _Atomic uint32_t *n_approximate;
} tenant_scan;

/* Finds the blocks a filter names in the shard's first tenant index whose
 * field its top-level must matches; false if none applies. */
static bool tenant_blocks(const vd_shard *s, const vd_filter *f, tenant_scan *t)
{
    for (size_t i = 0; i < s->n_pindexes; i++) {
        const vd_pindex *idx = s->pindexes[i];
        const char *const *keys;
        size_t n_keys;
        if (idx->type != VD_PINDEX_TENANT || !(n_keys = vd_filter_must_match(f, idx->field, &keys)))
            continue;
        if (n_keys > VD_TENANT_MAX_BLOCKS)
            return false;
        for (size_t k = 0; k < n_keys; k++) {
            const vd_tenant_block *b = vd_pindex_tenant_block(idx, keys[k]);
            if (b)
                t->blocks[t->n_blocks++] = b;
        }
        if (idx->loose.n)
            t->blocks[t->n_blocks++] = &idx->loose;
        return t->on = true;
    }
    return false;
}

/* vd_index_query.scan over the tenants' codes. */
static int tenant_scan_run(const void *ctx, const vd_index_query *q, vd_topk *out, uint64_t *n)
{
    const tenant_scan *t = ctx;
    size_t cs = vd_tenant_code_size(t->s->dim);
    vd_topk cands;
    vd_topk_init(&cands, t->cands, t->n_cand);
    uint64_t allowed = 0;
    for (size_t b = 0; b < t->n_blocks; b++) {
        const vd_tenant_block *blk = t->blocks[b];
        for (uint32_t i = 0; i < blk->n; i++) {
            uint32_t slot = blk->slots[i];
            if (!vd_index_allows(q, slot))
                continue;
            allowed++;
            float key = vd_quant_key(&t->codes, blk->codes + (size_t)i * cs);
            if (key < vd_topk_bound(&cands))
                vd_topk_push(&cands, key, slot);
        }
    }
    *n += allowed + cands.n;
    atomic_fetch_add_explicit(&t->s->n_tenant_scans, 1, memory_order_relaxed);
    if (allowed > t->n_cand && t->n_approximate)
        atomic_fetch_add_explicit(t->n_approximate, 1, memory_order_relaxed);
    return rerank(t->s, &cands, t->query, q->max_key, t->buf, out);
}

/* At most how many points f admits, from its top-level must conditions that
 * keyword postings answer (their values' postings summed; the smallest such
 * condition), or SIZE_MAX when it has none. Exact where the sample of
 * admitted_share is not: a 128-slot sample can put a 5% tenant above 20%. */
static size_t keyword_bound(const vd_shard *s, const vd_filter *f)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < s->n_pindexes; i++) {
        const vd_pindex *idx = s->pindexes[i];
        const char *const *keys;
        size_t n_keys, n = 0;
        if (!vd_pindex_is_keyword(idx->type) || !(n_keys = vd_filter_must_match(f, idx->field, &keys)))
            continue;
        for (size_t k = 0; k < n_keys; k++) {
            const vd_posting *p = vd_pindex_lookup(idx, keys[k]);
            n += p ? p->n : 0;
        }
        if (n < best)
            best = n;
    }
    return best;
}

/* The share of the shard's live points a filter admits: sampled, and no
 * more than its keyword postings allow. */
static double filter_share(const lazy_filter *lf)
{
    double share = admitted_share(lf);
    size_t bound = keyword_bound(lf->s, lf->f);
    if (bound != SIZE_MAX && lf->s->n_alive && (double)bound / lf->s->n_alive < share)
        share = (double)bound / lf->s->n_alive;
    return share;
}

static void count_distances(const vd_search_req *req, uint64_t n)
{
    if (req->n_distances && n)
        atomic_fetch_add_explicit(req->n_distances, n, memory_order_relaxed);
}

/* Candidates a quantized search collects for k results. */
static uint32_t candidates_for(uint32_t k, float oversampling)
{
    double n = ceil((double)k * (oversampling >= 1.0f ? oversampling : 1.0f));
    return n > VD_RERANK_MAX ? (k > VD_RERANK_MAX ? k : VD_RERANK_MAX) : (uint32_t)n;
}

/* Candidates a quantized search re-ranks with the originals; under the read
 * lock (it reads the index). A graph walk holds its ef best nodes by code:
 * with the originals in RAM each re-rank costs one distance, as a step of
 * the walk does, so all of them are re-ranked (k × oversampling is then the
 * least), and recall rises with ef as it does without codes (GloVe-100, sq8
 * with oversampling 1: 0.99 reached at ef 56, where re-ranking k of them
 * stopped at 0.985). From disk each is a read: k × oversampling only. */
static uint32_t rerank_depth(const vd_shard *s, const vd_search_req *req, bool codes_exhaustive)
{
    uint32_t n = candidates_for(req->k, codes_exhaustive ? VD_REFERENCE_OVERSAMPLING : req->oversampling);
    if (!codes_exhaustive && !s->vs.on_disk && s->index->ops->keeps_slots && req->ef > n)
        n = req->ef < VD_RERANK_MAX ? req->ef : VD_RERANK_MAX;
    return n;
}

int vd_shard_search(vd_shard *s, const vd_search_req *req, vd_point_out *out, size_t *n_out)
{
    *n_out = 0;
    bool quantized = s->vs.quant != VD_QUANT_NONE;
    /* A reference search of originals on disk: an exhaustive scan of the codes, re-ranked. */
    bool codes_exhaustive = quantized && req->exact && req->reference && s->vs.on_disk;
    bool reranked = quantized && (!req->exact || codes_exhaustive);
    int rc = 0;
    pthread_rwlock_rdlock(&s->lock);
    uint32_t n_cand = reranked ? rerank_depth(s, req, codes_exhaustive) : 0;
    tenant_scan tenant = {.s = s, .query = req->vector, .n_approximate = req->n_approximate};
    /* only a graph's planner takes the scan (vd_index_query.scan): elsewhere no setup */
    if (req->filter && !req->exact && s->index->ops->keeps_slots && tenant_blocks(s, req->filter, &tenant))
        tenant.n_cand = candidates_for(req->k, req->oversampling > VD_TENANT_OVERSAMPLING
                                                   ? req->oversampling
                                                   : VD_TENANT_OVERSAMPLING);
    /* The working memory, sized under the lock (the shard may have grown). */
    size_t nw = vd_bitset_words(s->n_slots);
    vd_scratch_need need = {
        .k = req->k,
        .n_cand = n_cand,
        .n_tenant = tenant.n_cand,
        .dim = s->dim,
        .words = req->filter ? nw + 1 : 0,
        .filter_words = req->filter ? vd_filter_scratch_words(req->filter, s->n_slots) : 0,
    };
    vd_search_scratch *sc = vd_scratch_get(&s->scratch, &need);
    if (!sc) {
        pthread_rwlock_unlock(&s->lock);
        return -ENOMEM;
    }
    float *buf = s->vs.on_disk ? sc->buf : NULL;
    vd_quant_query query;
    vd_quant_query_init(&query, s->vs.quant, s->metric, req->vector, s->dim,
                        s->vs.quant == VD_QUANT_SQ8 ? sc->q8 : NULL);
    float max_key = req->has_threshold ? vd_key_from_score(s->metric, req->score_threshold)
                                       : __builtin_inff();
    vd_index_query q = {
        .query = &query,
        .allowed = s->alive,
        .n_allowed = s->n_alive,
        /* quantized keys are approximate: the threshold applies after re-ranking */
        .max_key = quantized ? __builtin_inff() : max_key,
        .ef = req->ef,
        .nprobe = req->nprobe,
        .exact = req->exact,
        .n_distances = req->n_distances,
        .n_approximate = req->n_approximate,
    };
    if (tenant.on) {
        tenant.cands = sc->tenant;
        tenant.buf = buf;
        if (s->vs.quant == VD_QUANT_SQ8)
            tenant.codes = query;
        else
            vd_quant_query_init(&tenant.codes, VD_QUANT_SQ8, s->metric, req->vector, s->dim, sc->q8);
        q.scan = tenant_scan_run;
        q.scan_ctx = &tenant;
    }
    lazy_filter lazy = {s, req->filter, vd_shard_filter_source(s)};
    double share = 0;
    if (req->filter && !req->exact && s->index->ops->keeps_slots &&
        s->n_alive >= VD_LAZY_FILTER_MIN_POINTS &&
        walk_planned(share = filter_share(&lazy),
                     vd_filter_slot_indexed(req->filter, &lazy.src) ? VD_LAZY_FILTER_MIN_SHARE_INDEXED
                                                                   : VD_LAZY_FILTER_MIN_SHARE,
                     s->n_alive, req, reranked ? n_cand : req->k)) {
        q.admits = lazy_admits;
        q.admits_ctx = &lazy;
        q.n_allowed = (size_t)(share * s->n_alive);
    } else if (req->filter) {
        vd_filter_source src = vd_shard_filter_source(s);
        src.scratch = &sc->filter;
        if ((rc = vd_filter_eval(req->filter, &src, sc->matching)))
            goto done;
        q.allowed = sc->matching;
        q.n_allowed = SIZE_MAX;
    }
    vd_topk top;
    vd_topk_init(&top, sc->hits, req->k);
    vd_vector_view v = vd_shard_view(s);
    if (quantized && req->exact && !codes_exhaustive) {
        q.max_key = max_key;
        uint64_t n = 0;
        rc = scan_originals(s, &q, buf, &top, &n); /* every allowed slot, queued ones too */
        count_distances(req, n);
    } else if (reranked) {
        /* codes rank the candidates: approximate, unless they are the reference's whole scan */
        if (req->n_approximate && !codes_exhaustive)
            atomic_fetch_add_explicit(req->n_approximate, 1, memory_order_relaxed);
        vd_topk cands;
        vd_topk_init(&cands, sc->cands, n_cand);
        rc = s->index->ops->search(s->index, &v, &q, &cands);
        if (!rc)
            count_distances(req, vd_shard_scan_backlog(s, &v, &q, &cands));
        if (!rc)
            rc = rerank(s, &cands, req->vector, max_key, buf, &top);
    } else {
        rc = s->index->ops->search(s->index, &v, &q, &top);
        if (!rc)
            count_distances(req, vd_shard_scan_backlog(s, &v, &q, &top));
    }
    if (rc)
        goto done;
    vd_topk_sort(&top);
    /* Each answer's slot record is a cache miss: start them all at once
     * rather than one per answer (+1% on GloVe-100 at ef 12). */
    for (uint32_t i = 0; i < top.n; i++)
        __builtin_prefetch(&s->meta[top.hits[i].slot]);
    for (uint32_t i = 0; i < top.n; i++) {
        if ((rc = vd_shard_fill_out(s, top.hits[i].slot, req->with_payload, req->with_vector, &out[i])))
            break;
        out[i].key = top.hits[i].key;
        out[i].score = vd_score_from_key(s->metric, top.hits[i].key);
        (*n_out)++;
    }
done:
    pthread_rwlock_unlock(&s->lock);
    vd_scratch_put(&s->scratch, sc);
    return rc;
}

int vd_shard_count(vd_shard *s, const vd_filter *f, size_t *n)
{
    pthread_rwlock_rdlock(&s->lock);
    int rc = 0;
    if (!f) {
        *n = s->n_alive;
    } else {
        size_t nw = vd_bitset_words(s->n_slots);
        uint64_t *match = malloc(nw * 8 + 8);
        vd_filter_source src = vd_shard_filter_source(s);
        if (!match)
            rc = -ENOMEM;
        else if (!(rc = vd_filter_eval(f, &src, match)))
            *n = vd_bitset_count(match, nw);
        free(match);
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

/*
 * HNSW quality gates (fixed seeds, synthetic clustered data generated here):
 * recall@10 against the exact (flat) collection on the same points, for every
 * metric, after churn (30% deleted + new points) and after updating 30% of
 * vectors; filtered recall and result counts at 0.1% … 50% selectivity; and
 * concurrent searches with writers.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "db/collection.h"
#include "vectord/index.h"
#include "vectord/distance.h"

enum { N = 20000, D = 96, CLUSTERS = 64, Q = 200, K = 10 };

static uint64_t rng = 12345;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}
static float gauss(void) { return (float)(sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand())); }

static float centers[CLUSTERS][D];

static void clustered(float *v)
{
    const float *c = centers[(int)(urand() * CLUSTERS) % CLUSTERS];
    for (int d = 0; d < D; d++)
        v[d] = c[d] + 0.8f * gauss();
}

typedef struct pair {
    vd_collection *exact, *graph;
    vd_pool *pool;
} pair;

static vd_collection *make(vd_pool *pool, vd_metric m, vd_index_type t, const vd_pindex_spec *pi,
                           size_t n_pi)
{
    vd_collection_config cfg = {.dim = D, .metric = m, .n_shards = 2};
    snprintf(cfg.name, sizeof cfg.name, "c");
    vd_index_params_default(&cfg.index, t);
    for (size_t i = 0; i < n_pi; i++)
        cfg.pindexes[i] = pi[i];
    cfg.n_pindexes = n_pi;
    vd_collection *c;
    cr_assert_eq(vd_collection_create(&c, &cfg, pool), 0);
    return c;
}

/* n clustered points with ids first_id…, vectors in vecs (n * D floats). */
static void make_points(vd_point_in *pts, float *vecs, uint64_t first_id, size_t n, vd_metric m)
{
    for (size_t i = 0; i < n; i++) {
        clustered(vecs + i * D);
        if (m == VD_METRIC_COSINE)
            vd_normalize(vecs + i * D, D);
        pts[i] = (vd_point_in){.id = {.kind = VD_ID_INT, .num = first_id + i}, .vector = vecs + i * D};
    }
}

static void upsert_both(pair *p, uint64_t first_id, size_t n, vd_metric m, bool with_group)
{
    float *vecs = malloc(n * D * sizeof(float));
    vd_point_in *pts = calloc(n, sizeof *pts);
    make_points(pts, vecs, first_id, n, m);
    for (int which = 0; which < 2; which++) {
        for (size_t i = 0; i < n; i++) {
            if (with_group) {
                /* group g holds ids with id % 1000 < g-threshold: selectivities 0.1% … 50% */
                uint64_t r = (first_id + i) % 1000;
                char buf[96];
                snprintf(buf, sizeof buf, "{\"s0_1\":%s,\"s1\":%s,\"s10\":%s,\"s50\":%s}",
                         r < 1 ? "true" : "false", r < 10 ? "true" : "false",
                         r < 100 ? "true" : "false", r < 500 ? "true" : "false");
                pts[i].payload = cJSON_Parse(buf);
            }
        }
        vd_upsert_counts c = {0};
        cr_assert_eq(vd_collection_upsert(which ? p->graph : p->exact, pts, n, &c), 0);
    }
    free(vecs);
    free(pts);
}

/* Mean recall@K of graph against exact over Q queries; also checks result counts. */
static double recall_at_ef(pair *p, vd_metric m, const vd_filter *f, size_t expect_n, uint32_t ef)
{
    double total = 0;
    float q[D];
    for (int i = 0; i < Q; i++) {
        clustered(q);
        if (m == VD_METRIC_COSINE)
            vd_normalize(q, D);
        vd_search_req req = {.vector = q, .k = K, .filter = f, .ef = ef};
        vd_point_out *a, *b;
        size_t na, nb;
        cr_assert_eq(vd_collection_search(p->exact, &req, &a, &na), 0);
        cr_assert_eq(vd_collection_search(p->graph, &req, &b, &nb), 0);
        cr_assert_eq(na, expect_n);
        cr_assert_eq(nb, expect_n, "graph search returned %zu of min(k, matches) = %zu", nb, expect_n);
        size_t hit = 0;
        for (size_t x = 0; x < nb; x++)
            for (size_t y = 0; y < na; y++)
                if (b[x].id.num == a[y].id.num)
                    hit++;
        total += expect_n ? (double)hit / (double)expect_n : 1.0;
        for (size_t x = 0; x < na; x++)
            vd_point_out_free(&a[x]);
        for (size_t x = 0; x < nb; x++)
            vd_point_out_free(&b[x]);
        free(a);
        free(b);
    }
    return total / Q;
}

static double recall(pair *p, vd_metric m, const vd_filter *f, size_t expect_n)
{
    return recall_at_ef(p, m, f, expect_n, 0);
}

static void setup_pair(pair *p, vd_metric m, const vd_pindex_spec *pi, size_t n_pi)
{
    vd_distance_init(-1);
    rng = 12345 + (uint64_t)m;
    for (int c = 0; c < CLUSTERS; c++)
        for (int d = 0; d < D; d++)
            centers[c][d] = gauss();
    cr_assert_eq(vd_pool_create(&p->pool, 1), 0);
    p->exact = make(p->pool, m, VD_INDEX_FLAT, pi, n_pi);
    p->graph = make(p->pool, m, VD_INDEX_HNSW, pi, n_pi);
}

static void teardown_pair(pair *p)
{
    vd_collection_unref(p->exact);
    vd_collection_unref(p->graph);
    vd_pool_destroy(p->pool);
}

static void delete_both(pair *p, const vd_point_id *ids, size_t n)
{
    size_t d1 = 0, d2 = 0;
    cr_assert_eq(vd_collection_delete_ids(p->exact, ids, n, 0, &d1), 0);
    cr_assert_eq(vd_collection_delete_ids(p->graph, ids, n, 0, &d2), 0);
    cr_assert_eq(d1, d2);
}

static void gates_for_metric(vd_metric m)
{
    pair p;
    setup_pair(&p, m, NULL, 0);
    upsert_both(&p, 0, N, m, false);
    vd_collection_stats before, after;
    cr_assert_eq(vd_collection_stats_get(p.graph, &before), 0);
    double r = recall(&p, m, NULL, K);
    cr_assert_eq(vd_collection_stats_get(p.graph, &after), 0);
    double per_search = (double)(after.total.distance_computations - before.total.distance_computations) /
                        (double)(after.total.searches_graph - before.total.searches_graph);
    free(before.shards);
    free(after.shards);
    cr_log_info("%s: recall@10 %.4f after build, %.0f distances per shard search (of %d points)",
                vd_metric_name(m), r, per_search, N / 2);
    cr_assert_lt(per_search, N / 4, "the graph search must not degenerate into a scan");
    cr_assert_geq(r, 0.95, "%s recall after build %.4f", vd_metric_name(m), r);

    /* churn: delete 30% and insert as many new points */
    vd_point_id *ids = calloc(N, sizeof *ids);
    size_t nd = 0;
    for (uint64_t i = 0; i < N; i++)
        if (i % 10 < 3)
            ids[nd++] = (vd_point_id){.kind = VD_ID_INT, .num = i};
    delete_both(&p, ids, nd);
    upsert_both(&p, N, nd, m, false);
    r = recall(&p, m, NULL, K);
    cr_log_info("%s: recall@10 %.4f after deleting 30%% and inserting 30%%", vd_metric_name(m), r);
    cr_assert_geq(r, 0.95, "%s recall after churn %.4f", vd_metric_name(m), r);

    /* updates: new vectors for 30% of the live points (same ids) */
    float *vecs = malloc(nd * D * sizeof(float));
    vd_point_in *pts = calloc(nd, sizeof *pts);
    make_points(pts, vecs, N, nd, m);
    vd_upsert_counts c1 = {0}, c2 = {0};
    cr_assert_eq(vd_collection_upsert(p.exact, pts, nd, &c1), 0);
    cr_assert_eq(vd_collection_upsert(p.graph, pts, nd, &c2), 0);
    cr_assert_eq(c2.updated, nd);
    r = recall(&p, m, NULL, K);
    cr_log_info("%s: recall@10 %.4f after updating 30%%", vd_metric_name(m), r);
    cr_assert_geq(r, 0.95, "%s recall after updates %.4f", vd_metric_name(m), r);
    vd_collection_stats st;
    cr_assert_eq(vd_collection_stats_get(p.graph, &st), 0);
    cr_assert_eq(st.n_points, N);
    cr_assert(st.total.searches_graph > 0);
    cr_assert_eq(st.total.n_tombstones, 2 * nd, "deleted and updated points wait as tombstones");
    size_t slots_before = st.total.n_slots;
    free(st.shards);

    /* compaction: repair around the tombstones, then free their slots */
    size_t released;
    cr_assert_eq(vd_collection_compact(p.graph, 0.0, &released), 0);
    cr_assert_eq(released, 2 * nd);
    r = recall(&p, m, NULL, K);
    cr_log_info("%s: recall@10 %.4f after compaction", vd_metric_name(m), r);
    cr_assert_geq(r, 0.95, "%s recall after compaction %.4f", vd_metric_name(m), r);
    /* another 30% churn (the points of the first) reuses the freed slots */
    for (size_t i = 0; i < nd; i++)
        ids[i] = (vd_point_id){.kind = VD_ID_INT, .num = N + i};
    delete_both(&p, ids, nd);
    upsert_both(&p, 2 * N, nd, m, false);
    cr_assert_eq(vd_collection_compact(p.graph, 0.0, &released), 0);
    r = recall(&p, m, NULL, K);
    cr_log_info("%s: recall@10 %.4f after a second churn and compaction", vd_metric_name(m), r);
    cr_assert_geq(r, 0.95);
    cr_assert_eq(vd_collection_stats_get(p.graph, &st), 0);
    cr_assert_eq(st.total.n_tombstones, 0);
    cr_assert_leq(st.total.n_slots, slots_before, "slots are reused after compaction");
    cr_assert_eq(st.n_points, N);
    free(st.shards);
    free(vecs);
    free(pts);
    free(ids);
    teardown_pair(&p);
}

Test(hnsw, recall_cosine, .timeout = 600) { gates_for_metric(VD_METRIC_COSINE); }
Test(hnsw, recall_dot, .timeout = 600) { gates_for_metric(VD_METRIC_DOT); }
Test(hnsw, recall_l2, .timeout = 600) { gates_for_metric(VD_METRIC_L2); }

Test(hnsw, filtered_recall_and_counts, .timeout = 600)
{
    const vd_pindex_spec pi[] = {{"s0_1", VD_PINDEX_KEYWORD}, {"s1", VD_PINDEX_KEYWORD},
                                 {"s10", VD_PINDEX_KEYWORD}, {"s50", VD_PINDEX_KEYWORD}};
    pair p;
    setup_pair(&p, VD_METRIC_L2, pi, 4);
    upsert_both(&p, 0, N, VD_METRIC_L2, true);
    const struct {
        const char *key;
        size_t matches;
    } sel[] = {{"s0_1", N / 1000}, {"s1", N / 100}, {"s10", N / 10}, {"s50", N / 2}};
    for (size_t i = 0; i < 4; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "{\"must\":[{\"key\":\"%s\",\"match\":{\"value\":true}}]}", sel[i].key);
        cJSON *j = cJSON_Parse(buf);
        vd_filter *f;
        cr_assert_eq(vd_filter_parse(j, 4, 0, &f, NULL), 0);
        cJSON_Delete(j);
        size_t expect = sel[i].matches < K ? sel[i].matches : K;
        double r = recall(&p, VD_METRIC_L2, f, expect);
        cr_log_info("filter %s (%zu matches): recall@10 %.4f", sel[i].key, sel[i].matches, r);
        cr_assert_geq(r, 0.95, "filter %s recall %.4f", sel[i].key, r);
        if (i == 3) { /* a filtered walk honours ef: a broader one finds at least as much, nearly all */
            double narrow = recall_at_ef(&p, VD_METRIC_L2, f, expect, K);
            double broad = recall_at_ef(&p, VD_METRIC_L2, f, expect, 160);
            cr_log_info("filter %s: recall@10 %.4f at ef %d, %.4f at ef 160", sel[i].key, narrow, K, broad);
            cr_assert_geq(broad, narrow, "ef 160 %.4f below ef %d %.4f", broad, K, narrow);
            /* at ef 10 the shards check this broad filter per point (shard_search.c) */
            cr_assert_geq(narrow, 0.9, "filter %s at ef %d (checked per point): recall %.4f", sel[i].key, K, narrow);
            cr_assert_geq(broad, 0.995, "filter %s at ef 160: recall %.4f", sel[i].key, broad);
        }
        vd_filter_destroy(f);
    }
    vd_collection_stats st;
    cr_assert_eq(vd_collection_stats_get(p.graph, &st), 0);
    cr_log_info("plans: %llu exact, %llu graph", (unsigned long long)st.total.searches_exact,
                (unsigned long long)st.total.searches_graph);
    cr_assert(st.total.searches_exact > 0, "selective filters use the exact plan");
    cr_assert(st.total.searches_graph > 0, "broad filters use the graph");
    free(st.shards);
    teardown_pair(&p);
}

/* ---- concurrency: searches never see deleted or half-written points ---- */

typedef struct stress {
    vd_collection *c;
    _Atomic int stop;
    _Atomic long searches;
    _Atomic long deleted_seen, search_errors, bad_payloads, compact_errors; /* must stay 0 */
} stress;

typedef struct churn_arg {
    stress *st;
    unsigned seed;
    uint64_t first_id; /* each writer owns ids first_id .. first_id + 2999 */
} churn_arg;

static void *churn(void *arg)
{
    churn_arg *ca = arg;
    stress *st = ca->st;
    unsigned seed = ca->seed;
    float v[D];
    for (int round = 0; round < 400; round++) {
        for (int d = 0; d < D; d++)
            v[d] = (float)rand_r(&seed) / (float)RAND_MAX;
        uint64_t id = ca->first_id + (uint64_t)(rand_r(&seed) % 3000);
        vd_point_in p = {.id = {.kind = VD_ID_INT, .num = id}, .vector = v,
                         .payload = cJSON_Parse("{\"ok\":true}")};
        vd_upsert_counts c = {0};
        vd_collection_upsert(st->c, &p, 1, &c);
        vd_point_id del = {.kind = VD_ID_INT, .num = ca->first_id + (uint64_t)(rand_r(&seed) % 3000)};
        size_t n = 0;
        vd_collection_delete_ids(st->c, &del, 1, 0, &n);
        /* No one else writes our ids: the deleted one must be gone from
         * every later search. */
        vd_search_req req = {.vector = v, .k = 20, .with_payload = true};
        vd_point_out *hits;
        size_t nh;
        if (vd_collection_search(st->c, &req, &hits, &nh) == 0) {
            for (size_t i = 0; i < nh; i++) {
                if (hits[i].id.num == del.num)
                    atomic_fetch_add(&st->deleted_seen, 1);
                vd_point_out_free(&hits[i]);
            }
            free(hits);
        }
    }
    return NULL;
}

static void *compactor(void *arg)
{
    stress *st = arg;
    while (!atomic_load(&st->stop)) {
        size_t released;
        if (vd_collection_compact(st->c, 0.0, &released) != 0)
            atomic_fetch_add(&st->compact_errors, 1);
    }
    return NULL;
}

static void *searcher(void *arg)
{
    stress *st = arg;
    unsigned seed = 99;
    float q[D];
    while (!atomic_load(&st->stop)) {
        for (int d = 0; d < D; d++)
            q[d] = (float)rand_r(&seed) / (float)RAND_MAX;
        vd_search_req req = {.vector = q, .k = 10, .with_payload = true};
        vd_point_out *hits;
        size_t n;
        if (vd_collection_search(st->c, &req, &hits, &n) != 0) {
            atomic_fetch_add(&st->search_errors, 1);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            vd_point_out one;
            if (!cJSON_IsTrue(cJSON_GetObjectItem(hits[i].payload, "ok")))
                atomic_fetch_add(&st->bad_payloads, 1);
            /* every result id exists (or was deleted after the search returned) */
            if (vd_collection_get(st->c, &hits[i].id, false, &one) == 0)
                vd_point_out_free(&one);
            vd_point_out_free(&hits[i]);
        }
        free(hits);
        atomic_fetch_add(&st->searches, 1);
    }
    return NULL;
}

Test(hnsw, concurrent_searches_and_writes, .timeout = 600)
{
    vd_distance_init(-1);
    vd_pool *pool;
    cr_assert_eq(vd_pool_create(&pool, 2), 0);
    stress st = {.c = make(pool, VD_METRIC_L2, VD_INDEX_HNSW, NULL, 0)};
    pthread_t w[2], r[3], comp;
    churn_arg ca[2] = {{&st, 7, 0}, {&st, 11, 100000}};
    for (int i = 0; i < 2; i++)
        pthread_create(&w[i], NULL, churn, &ca[i]);
    for (int i = 0; i < 3; i++)
        pthread_create(&r[i], NULL, searcher, &st);
    pthread_create(&comp, NULL, compactor, &st);
    for (int i = 0; i < 2; i++)
        pthread_join(w[i], NULL);
    atomic_store(&st.stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(r[i], NULL);
    pthread_join(comp, NULL);
    long seen = atomic_load(&st.deleted_seen), serr = atomic_load(&st.search_errors),
         bp = atomic_load(&st.bad_payloads), cerr = atomic_load(&st.compact_errors);
    cr_assert(seen == 0 && serr == 0 && bp == 0 && cerr == 0,
              "deleted ids seen %ld, search errors %ld, bad payloads %ld, compaction errors %ld",
              seen, serr, bp, cerr);
    cr_assert(atomic_load(&st.searches) > 0);
    vd_collection_unref(st.c);
    vd_pool_destroy(pool);
}

/* ---- a filter checked per slot walks exactly as its bitmap does ---------- */

/* An index over every slot of v, inserted in slot order on this thread (the
 * same graph every run). */
static vd_index *index_over(const vd_index_params *params, uint64_t seed, const vd_vector_view *v)
{
    vd_index *idx;
    cr_assert_eq(vd_index_create(params, seed, &idx), 0);
    cr_assert_eq(idx->ops->reserve(idx, v->n_slots), 0);
    for (uint32_t s = 0; s < v->n_slots; s++)
        cr_assert_eq(idx->ops->insert(idx, v, s), 0);
    return idx;
}

static bool even_slot(const void *ctx, uint32_t slot)
{
    (void)ctx;
    return slot % 2 == 0;
}

/* The same walk, whether the filter comes as a bitmap of the slots it allows
 * or as a check the walk makes per slot (vd_index_query.admits, what a shard
 * uses for broad filters): the same hits, in the same order. */
Test(hnsw, a_lazy_filter_walks_as_its_bitmap_does, .timeout = 300)
{
    enum { NL = 6000 };
    vd_distance_init(-1);
    static float vecs[NL * D];
    for (size_t i = 0; i < NL; i++)
        clustered(vecs + i * D);
    vd_index_params params;
    vd_index_params_default(&params, VD_INDEX_HNSW);
    vd_vector_view v = {.vecs = vecs, .dim = D, .n_slots = NL, .metric = VD_METRIC_L2};
    vd_index *idx = index_over(&params, 7, &v);
    static uint64_t all[(NL + 63) / 64], even[(NL + 63) / 64];
    for (uint32_t s = 0; s < NL; s++) {
        all[s / 64] |= 1ull << (s % 64);
        if (s % 2 == 0)
            even[s / 64] |= 1ull << (s % 64);
    }
    for (int t = 0; t < 50; t++) {
        float qv[D];
        clustered(qv);
        vd_quant_query qq;
        vd_quant_query_init(&qq, VD_QUANT_NONE, VD_METRIC_L2, qv, D, NULL);
        vd_index_query bitmap = {.query = &qq, .allowed = even, .n_allowed = NL / 2,
                                 .max_key = __builtin_inff(), .ef = 32};
        vd_index_query lazy = bitmap;
        lazy.allowed = all;
        lazy.admits = even_slot;
        vd_hit ha[K], hb[K];
        vd_topk a, b;
        vd_topk_init(&a, ha, K);
        vd_topk_init(&b, hb, K);
        cr_assert_eq(idx->ops->search(idx, &v, &bitmap, &a), 0);
        cr_assert_eq(idx->ops->search(idx, &v, &lazy, &b), 0);
        vd_topk_sort(&a);
        vd_topk_sort(&b);
        cr_assert_eq(a.n, K);
        cr_assert_eq(b.n, K);
        for (uint32_t i = 0; i < K; i++) {
            cr_assert_eq(ha[i].slot % 2, 0);
            cr_assert_eq(ha[i].slot, hb[i].slot, "query %d, hit %u", t, i);
        }
    }
    idx->ops->destroy(idx);
}

/* Searches each slot by its own vector (k 1); how many do not come back first. */
static uint32_t self_misses(vd_index *idx, const vd_vector_view *v, uint32_t n, uint32_t ef)
{
    uint64_t *all = calloc((n + 63) / 64, sizeof *all);
    for (uint32_t s = 0; s < n; s++)
        all[s / 64] |= 1ull << (s % 64);
    uint32_t misses = 0;
    for (uint32_t s = 0; s < n; s++) {
        vd_quant_query qq;
        vd_quant_query_init(&qq, VD_QUANT_NONE, v->metric, v->vecs + (size_t)s * v->dim, v->dim, NULL);
        vd_index_query q = {.query = &qq, .allowed = all, .n_allowed = n, .max_key = __builtin_inff(),
                            .ef = ef};
        vd_hit hit;
        vd_topk top;
        vd_topk_init(&top, &hit, 1);
        cr_assert_eq(idx->ops->search(idx, v, &q, &top), 0);
        misses += top.n != 1 || hit.slot != s;
    }
    free(all);
    return misses;
}

/* Nodes whose in-links the heuristic pruned away cannot be found at any ef;
 * connect() links them again. Random 128-d data leaves some such nodes at
 * m 16 (fixed seed, inserted in order: the same graph every run; 35 of 4,000
 * nodes not found by their own vector at ef 100, 16 of them unreachable). */
Test(hnsw, connect_links_the_nodes_no_walk_reaches, .timeout = 300)
{
    enum { NC = 4000, DC = 128 };
    vd_distance_init(-1);
    static float vecs[NC * DC];
    uint64_t saved = rng;
    rng = 777;
    for (size_t i = 0; i < (size_t)NC * DC; i++)
        vecs[i] = gauss();
    rng = saved;
    vd_index_params params;
    vd_index_params_default(&params, VD_INDEX_HNSW);
    params.m = 16;
    params.ef_construction = 100;
    vd_vector_view v = {.vecs = vecs, .dim = DC, .n_slots = NC, .metric = VD_METRIC_L2};
    vd_index *idx = index_over(&params, 3, &v);
    uint32_t before = self_misses(idx, &v, NC, 100);
    size_t linked = 0, again = 0;
    cr_assert_eq(idx->ops->connect(idx, &v, &linked), 0);
    uint32_t after = self_misses(idx, &v, NC, 100);
    cr_assert_eq(idx->ops->connect(idx, &v, &again), 0);
    fprintf(stderr, "connect: %u misses at ef 100 before, %zu linked, %u misses after, %zu linked again\n",
            before, linked, after, again);
    cr_assert_gt(linked, 0, "this graph has unreachable nodes");
    cr_assert_leq(linked, before, "only nodes no search could find are linked");
    cr_assert_lt(after, before);
    cr_assert_eq(again, 0, "every node is reachable after one pass");
    idx->ops->destroy(idx);
}

/*
 * tenant_filter.c — a search restricted to one tenant (a keyword filter that
 * matches 1% of the points), in process, by how the vectors are stored.
 *
 *   bench_tenant_filter [N] [DIM] [SHARDS] [TENANTS] [QUERIES] [all|float32|sq8|tenant]
 *
 * Builds a cosine collection of N random unit vectors (default 1,000,000 ×
 * 1536, 2 shards; flat index, since a 1% filter is answered by a scan of the
 * tenant's points whatever the index) with a keyword payload index on
 * "tenant" (TENANTS values, uniform: 100 = 1% each), once with float32
 * vectors and once with sq8 codes (originals in RAM, candidates re-ranked),
 * and an HNSW collection of float32 vectors with a tenant index on "tenant"
 * (each tenant's sq8 codes side by side, db/tenant_block.h),
 * then times QUERIES searches (k 10) each filtered to one tenant, one at a
 * time on one thread (the shards fan out on the pool as the server's do).
 * CPU ms per search is the process's CPU time over the searches (both
 * shards' threads, the pool's idle wait included).
 * Recall@10 is against the exact answer (exact: true). Prints a markdown
 * table: storage, p50, p99, QPS, recall. The target: 1% at 1M ×
 * 1536 within 1 ms p50.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "db/collection.h"
#include "db/filter.h"
#include "vectord/distance.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) & 0xffffff) / (float)0xffffff - 0.5f;
}

/* The layouts compared: float32 or sq8 vectors with a keyword index on a
 * flat collection, or float32 vectors with a tenant index (its codes side by
 * side) on an HNSW collection (the planner scans a 1% tenant; the graph's
 * quality does not matter, so it is a cheap one: m 8, ef_construction 32). */
typedef enum layout { FLOAT32, SQ8, TENANT } layout;

static vd_collection *build(vd_pool *pool, const float *base, size_t n, uint32_t dim, uint32_t shards,
                            unsigned tenants, layout how)
{
    vd_collection_config cfg = {.dim = dim, .metric = VD_METRIC_COSINE, .n_shards = shards,
                                .quant = how == SQ8 ? VD_QUANT_SQ8 : VD_QUANT_NONE, .oversampling = 3.0f};
    snprintf(cfg.name, sizeof cfg.name, "tenants");
    vd_index_params_default(&cfg.index, how == TENANT ? VD_INDEX_HNSW : VD_INDEX_FLAT);
    if (how == TENANT) {
        cfg.index.m = 8;
        cfg.index.ef_construction = 32;
    }
    cfg.pindexes[0] = (vd_pindex_spec){"tenant", how == TENANT ? VD_PINDEX_TENANT : VD_PINDEX_KEYWORD};
    cfg.n_pindexes = 1;
    vd_collection *c;
    if (vd_collection_create(&c, &cfg, pool) != 0)
        return NULL;
    enum { BATCH = 2000 };
    static vd_point_in pts[BATCH];
    for (size_t start = 0; start < n; start += BATCH) {
        size_t cnt = n - start < BATCH ? n - start : BATCH;
        for (size_t i = 0; i < cnt; i++) {
            char buf[48];
            snprintf(buf, sizeof buf, "{\"tenant\":\"t%zu\"}", (start + i) % tenants);
            pts[i] = (vd_point_in){.id = {.kind = VD_ID_INT, .num = start + i},
                                   .vector = (float *)base + (start + i) * dim,
                                   .payload = cJSON_Parse(buf)};
        }
        vd_upsert_counts counts = {0};
        if (vd_collection_upsert(c, pts, cnt, &counts) != 0) {
            vd_collection_unref(c);
            return NULL;
        }
    }
    return c;
}

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Process CPU seconds the last run() spent in searches (both shards' threads). */
static double run_cpu_s;

/* Searches each query within one tenant; latency per search into lat (ms).
 * exact: the answers into ids; else the recall against them (ids NULL: a
 * warm-up, nothing kept). */
static double run(vd_collection *c, const float *queries, size_t nq, uint32_t dim, unsigned tenants,
                  bool exact, double *lat, uint64_t (*ids)[10])
{
    double hits = 0;
    run_cpu_s = 0;
    for (size_t q = 0; q < nq; q++) {
        char buf[96];
        snprintf(buf, sizeof buf, "{\"must\":[{\"key\":\"tenant\",\"match\":{\"value\":\"t%zu\"}}]}",
                 (q * 7) % tenants);
        cJSON *j = cJSON_Parse(buf);
        vd_filter *filter = NULL;
        vd_filter_parse(j, 4, 0, &filter, NULL);
        cJSON_Delete(j);
        vd_search_req req = {.vector = queries + q * dim, .k = 10, .filter = filter, .exact = exact};
        vd_point_out *out;
        size_t no;
        double t = vd_now_s(), cpu = cpu_s();
        vd_collection_search(c, &req, &out, &no);
        lat[q] = (vd_now_s() - t) * 1e3;
        run_cpu_s += cpu_s() - cpu;
        for (size_t i = 0; i < no; i++) {
            if (!ids)
                ;
            else if (exact)
                ids[q][i] = out[i].id.num;
            else
                for (size_t r = 0; r < 10; r++)
                    hits += out[i].id.num == ids[q][r];
            vd_point_out_free(&out[i]);
        }
        free(out);
        vd_filter_destroy(filter);
    }
    return hits / (10.0 * (double)nq);
}

static void row(const char *what, double *lat, size_t nq, double recall)
{
    double sum = 0;
    for (size_t i = 0; i < nq; i++)
        sum += lat[i];
    qsort(lat, nq, sizeof *lat, cmp_double);
    printf("| %s | %.3f | %.3f | %.0f | %.3f | %.4f |\n", what, lat[nq / 2],
           lat[(size_t)((double)(nq - 1) * 0.99)], 1e3 * (double)nq / sum, run_cpu_s * 1e3 / (double)nq, recall);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 1000000;
    uint32_t dim = argc > 2 ? (uint32_t)atoi(argv[2]) : 1536;
    uint32_t shards = argc > 3 ? (uint32_t)atoi(argv[3]) : 2;
    unsigned tenants = argc > 4 ? (unsigned)atoi(argv[4]) : 100;
    size_t nq = argc > 5 ? (size_t)atol(argv[5]) : 200;
    const char *only = argc > 6 ? argv[6] : "all";
    vd_distance_init(-1);
    vd_pool *pool;
    vd_pool_create(&pool, 2);
    float *base = malloc(n * dim * sizeof *base), *queries = malloc(nq * dim * sizeof *queries);
    double *lat = malloc(nq * sizeof *lat);
    uint64_t (*ids)[10] = calloc(nq, sizeof *ids);
    if (!base || !queries || !lat || !ids)
        return 1;
    for (size_t i = 0; i < n * dim; i++)
        base[i] = frand();
    for (size_t i = 0; i < nq * dim; i++)
        queries[i] = frand();
    for (size_t i = 0; i < n; i++)
        vd_normalize(base + i * dim, dim);
    for (size_t i = 0; i < nq; i++)
        vd_normalize(queries + i * dim, dim);
    printf("## One tenant of %u (%.2f%% of the points) — %zu × %u, cosine, %u shards, k 10, one thread\n\n",
           tenants, 100.0 / tenants, n, dim, shards);
    printf("| vectors | p50 ms | p99 ms | QPS | CPU ms per search | recall@10 |\n|---|---:|---:|---:|---:|---:|\n");
    const char *names[] = {"float32, exact scan of the tenant", "sq8 codes, scan of the tenant, 30 re-ranked",
                           "float32 + tenant index: its codes side by side, 40 re-ranked"};
    const char *keys[] = {"float32", "sq8", "tenant"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(only, "all") && strcmp(only, keys[i]))
            continue;
        fprintf(stderr, "building %s ...\n", names[i]);
        vd_collection *c = build(pool, base, n, dim, shards, tenants, (layout)i);
        if (!c)
            return 1;
        run(c, queries, nq, dim, tenants, true, lat, ids); /* the exact answers, and a warm-up */
        if (i == 0)
            row("float32, exact: true", lat, nq, 1.0);
        run(c, queries, nq, dim, tenants, false, lat, NULL); /* warm: the layout's memory, first touched */
        double recall = run(c, queries, nq, dim, tenants, false, lat, ids);
        row(names[i], lat, nq, recall);
        vd_collection_stats st;
        if (vd_collection_stats_get(c, &st) == 0) {
            fprintf(stderr, "plans: exact %llu, graph %llu, tenant %llu\n", (unsigned long long)st.total.searches_exact,
                    (unsigned long long)st.total.searches_graph, (unsigned long long)st.total.searches_tenant);
            free(st.shards);
        }
        vd_collection_unref(c);
    }
    free(base);
    free(queries);
    free(lat);
    free(ids);
    vd_pool_destroy(pool);
    return 0;
}

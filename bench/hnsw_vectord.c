/*
 * hnsw_vectord.c — vectord's HNSW in-process, for bench/compare-hnsw.
 *
 *   bench_hnsw_vectord DATA_DIR [--m 16] [--efc 200] [--threads 2] [--ef 16,32,64,128,256]
 *                      [--metric cosine|l2] [--connect 1|0] [--quant none|sq8|fp16] [--oversampling X]
 *                      [--unfiltered-only 1] [--serve 1]
 *
 * Builds one single-shard cosine (or l2) collection over DATA_DIR/base.fvecs (made by
 * bench/datagen.py) through the same collection code the server runs (with
 * --quant, the graph walks the codes and the originals, kept in RAM, re-rank
 * the candidates, as a collection with "quantization" does), with a
 * numeric payload index on g = id % 100, then answers DATA_DIR/query.fvecs on
 * one thread for each ef, unfiltered and with the filters g < 1, 10, 50.
 * The build ends as the server's builder does once nothing waits: nodes no
 * search reaches are linked (--connect 0 skips that, to compare; "linked" in
 * the build line counts them). Prints one JSON object per line (build, then
 * one per search setting). With --serve 1 the searches are chunks of the
 * queries asked for on stdin, "EF PCT FIRST COUNT" per line (see
 * compare_common.hpp's sweep).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "db/collection.h"
#include "util/procstat.h"
#include "vectord/distance.h"

/* DIR/NAME, an fvecs/ivecs file. */
static void *read_vecs(const char *dir, const char *name, size_t *n, size_t *d)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return bench_read_vecs(path, n, d);
}

typedef struct bench_set {
    vd_collection *c;
    const float *queries;
    size_t nq, dim, k;
    int32_t **gt; /* per filter number: nq × k ids */
    double *lat;  /* nq */
} bench_set;

/* One search; returns how many of its results are in gt_row (NULL: none counted). */
static size_t search_one(const bench_set *b, size_t q, unsigned ef, const vd_filter *filter,
                         const int32_t *gt_row)
{
    vd_search_req req = {.vector = b->queries + q * b->dim, .k = (uint32_t)b->k, .ef = ef,
                         .filter = filter};
    vd_point_out *out;
    size_t no, hits = 0;
    if (vd_collection_search(b->c, &req, &out, &no) != 0)
        return 0;
    for (size_t i = 0; i < no; i++) {
        for (size_t j = 0; gt_row && j < b->k; j++)
            hits += (int64_t)out[i].id.num == gt_row[j];
        vd_point_out_free(&out[i]);
    }
    free(out);
    return hits;
}

/* The filter g < pct (NULL for 100: none). */
static vd_filter *filter_for(int pct)
{
    vd_filter *filter = NULL;
    if (pct < 100) {
        char buf[96];
        snprintf(buf, sizeof buf, "{\"must\":[{\"key\":\"g\",\"range\":{\"lt\":%d}}]}", pct);
        cJSON *j = cJSON_Parse(buf);
        vd_filter_parse(j, 4, 0, &filter, NULL);
        cJSON_Delete(j);
    }
    return filter;
}

/* One timed pass: every query at ef with filter number f (g < pct unless
 * pct is 100); prints one JSON line. */
static void one_pass(const bench_set *b, unsigned ef, int f, int pct)
{
    vd_filter *filter = filter_for(pct);
    double hits = 0;
    double tq = vd_now_s();
    for (size_t q = 0; q < b->nq; q++) {
        double t = vd_now_s();
        hits += (double)search_one(b, q, ef, filter, b->gt[f] + q * b->k);
        b->lat[q] = (vd_now_s() - t) * 1e3;
    }
    double wall = vd_now_s() - tq;
    qsort(b->lat, b->nq, sizeof *b->lat, cmp_double);
    printf("{\"system\":\"vectord\",\"phase\":\"search\",\"ef\":%u,\"filter_pct\":%d,"
           "\"recall\":%.4f,\"qps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
           ef, pct, hits / (double)(b->nq * b->k), (double)b->nq / wall, b->lat[b->nq / 2],
           b->lat[(b->nq * 99) / 100]);
    fflush(stdout);
    vd_filter_destroy(filter);
}

/* One timed chunk, queries first .. first+count-1, for compare-hnsw's
 * --serve protocol (compare_common.hpp): one JSON line with the hits, the
 * wall time and every query's latency. */
static void one_chunk(const bench_set *b, unsigned ef, int f, int pct, size_t first, size_t count)
{
    vd_filter *filter = filter_for(pct);
    if (first > b->nq)
        first = b->nq;
    if (count > b->nq - first)
        count = b->nq - first;
    double hits = 0, tq = vd_now_s();
    for (size_t q = first; q < first + count; q++) {
        double t = vd_now_s();
        hits += (double)search_one(b, q, ef, filter, b->gt[f] + q * b->k);
        b->lat[q - first] = (vd_now_s() - t) * 1e3;
    }
    double wall = vd_now_s() - tq;
    printf("{\"system\":\"vectord\",\"phase\":\"chunk\",\"ef\":%u,\"filter_pct\":%d,\"k\":%zu,"
           "\"count\":%zu,\"hits\":%.0f,\"wall_s\":%.9f,\"lat_ms\":[",
           ef, pct, b->k, count, hits, wall);
    for (size_t i = 0; i < count; i++)
        printf("%s%.4f", i ? "," : "", b->lat[i]);
    printf("]}\n");
    fflush(stdout);
    vd_filter_destroy(filter);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DATA_DIR [--m M] [--efc EFC] [--threads T] [--ef LIST] [--metric cosine|l2] "
                        "[--connect 1|0] [--quant none|sq8|fp16] [--oversampling X] [--unfiltered-only 1] [--serve 1]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    unsigned m = 16, efc = 200, threads = 2;
    char efs[256] = "16,32,64,128,256";
    vd_metric metric = VD_METRIC_COSINE;
    bool connect = true;
    bool unfiltered_only = false, serve = false;
    vd_quant quant = VD_QUANT_NONE;
    float oversampling = 0; /* 0: the collection's default */
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--m"))
            m = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--efc"))
            efc = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--ef"))
            snprintf(efs, sizeof efs, "%s", argv[i + 1]);
        else if (!strcmp(argv[i], "--quant") && vd_quant_parse(argv[i + 1], &quant) != 0) {
            fprintf(stderr, "unknown --quant %s\n", argv[i + 1]);
            return 2;
        } else if (!strcmp(argv[i], "--oversampling"))
            oversampling = strtof(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--serve"))
            serve = atoi(argv[i + 1]) != 0;
        else if (!strcmp(argv[i], "--unfiltered-only"))
            unfiltered_only = atoi(argv[i + 1]) != 0;
        else if (!strcmp(argv[i], "--connect"))
            connect = atoi(argv[i + 1]) != 0;
        else if (!strcmp(argv[i], "--metric"))
            metric = !strcmp(argv[i + 1], "l2") ? VD_METRIC_L2 : VD_METRIC_COSINE;
    }
    vd_distance_init(-1);
    size_t n, dim, nq, qd, ng, k;
    float *base = read_vecs(dir, "base.fvecs", &n, &dim);
    float *queries = read_vecs(dir, "query.fvecs", &nq, &qd);
    const char *gt_names[] = {"gt.ivecs", "gt_f1.ivecs", "gt_f10.ivecs", "gt_f50.ivecs"};
    const int filter_pct[] = {100, 1, 10, 50};
    int32_t *gt[4];
    for (int f = 0; f < 4; f++)
        gt[f] = read_vecs(dir, gt_names[f], &ng, &k);

    vd_pool *pool;
    vd_pool_create(&pool, threads > 1 ? threads - 1 : 0);
    vd_collection_config cfg = {.dim = (uint32_t)dim, .metric = metric, .n_shards = 1, .quant = quant,
                                .oversampling = oversampling};
    snprintf(cfg.name, sizeof cfg.name, "bench");
    vd_index_params_default(&cfg.index, VD_INDEX_HNSW);
    cfg.index.m = m;
    cfg.index.ef_construction = efc;
    cfg.pindexes[0] = (vd_pindex_spec){"g", VD_PINDEX_NUMERIC};
    cfg.n_pindexes = 1;
    vd_collection *c;
    if (vd_collection_create(&c, &cfg, pool) != 0)
        return 1;
    /* As the API does: cosine vectors are stored and asked unit length. */
    for (size_t i = 0; i < n; i++)
        vd_collection_prepare_vector(&cfg, base + i * dim);
    for (size_t i = 0; i < nq; i++)
        vd_collection_prepare_vector(&cfg, queries + i * dim);

    long rss0 = vd_process_rss_bytes();
    double t0 = vd_now_s();
    enum { BATCH = 1000 };
    vd_point_in pts[BATCH];
    for (size_t start = 0; start < n; start += BATCH) {
        size_t cnt = n - start < BATCH ? n - start : BATCH;
        for (size_t i = 0; i < cnt; i++) {
            char buf[32];
            snprintf(buf, sizeof buf, "{\"g\":%zu}", (start + i) % 100);
            pts[i] = (vd_point_in){.id = {.kind = VD_ID_INT, .num = start + i},
                                   .vector = base + (start + i) * dim,
                                   .payload = cJSON_Parse(buf)};
        }
        vd_upsert_counts counts = {0};
        if (vd_collection_upsert(c, pts, cnt, &counts) != 0)
            return 1;
    }
    if (connect)
        vd_collection_build(c, 0, NULL); /* nothing waits: the connect pass */
    double build_s = vd_now_s() - t0;
    vd_collection_stats st;
    vd_collection_stats_get(c, &st);
    printf("{\"system\":\"vectord\",\"phase\":\"build\",\"n\":%zu,\"dim\":%zu,\"m\":%u,\"efc\":%u,"
           "\"threads\":%u,\"seconds\":%.3f,\"vectors_per_s\":%.1f,\"index_bytes_per_vector\":%.1f,"
           "\"rss_bytes_per_vector\":%.1f,\"linked\":%llu}\n",
           n, dim, m, efc, threads, build_s, (double)n / build_s,
           (double)st.total.index_bytes / (double)n, (double)(vd_process_rss_bytes() - rss0) / (double)n,
           (unsigned long long)st.total.n_linked);
    free(st.shards);
    fflush(stdout);

    bench_set set = {c, queries, nq, dim, k, gt, malloc(nq * sizeof(double))};
    if (serve) { /* as compare_common.hpp's sweep: "EF PCT FIRST COUNT" lines from stdin */
        unsigned ef;
        int pct;
        size_t first, count;
        while (scanf("%u %d %zu %zu", &ef, &pct, &first, &count) == 4)
            for (int f = 0; f < 4; f++)
                if (filter_pct[f] == pct)
                    one_chunk(&set, ef, f, pct, first, count);
    } else {
        /* Untimed: every query once at the sweep's first ef, as compare_common.hpp's
         * sweep does for the others, so the first row is measured warm too. */
        for (size_t q = 0; q < nq; q++)
            search_one(&set, q, (unsigned)atoi(efs), NULL, NULL);
        for (char *tok = strtok(efs, ","); tok; tok = strtok(NULL, ","))
            for (int f = 0; f < (unfiltered_only ? 1 : 4); f++)
                one_pass(&set, (unsigned)atoi(tok), f, filter_pct[f]);
    }
    free(set.lat);
    vd_collection_unref(c);
    vd_pool_destroy(pool);
    return 0;
}

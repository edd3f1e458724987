/*
 * exact_search.c — how close exact (flat) search runs to memory bandwidth.
 *
 *   build/bench/bench_exact_search [--dim 1536] [--sizes 10000,100000]
 *                                  [--queries 200] [--shards 2] [--threads 0]
 *
 * Prints three tables:
 *  1. memory read bandwidth of this machine (1 thread, and all threads);
 *  2. distance-kernel throughput per ISA, with vectors hot in cache and cold
 *     (streamed from DRAM), in GB/s of vector data read;
 *  3. exact-search latency (p50/p99) over N random vectors through the same
 *     collection code the server uses (shards searched in parallel on the
 *     worker pool), the scan rate it implies and its ratio to bandwidth.
 * Not a test: nothing here passes or fails.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "db/collection.h"
#include "util/pool.h"
#include "vectord/distance.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)(rng_state >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}

/* ---- 1. memory bandwidth ------------------------------------------------ */

typedef struct bw_job {
    const uint64_t *buf;
    size_t words;
    unsigned parts;
    _Atomic uint64_t sink;
} bw_job;

static void bw_task(void *ctx, size_t part)
{
    bw_job *j = ctx;
    size_t per = j->words / j->parts, a = part * per, b = a + per;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = a; i + 4 <= b; i += 4) {
        s0 += j->buf[i];
        s1 += j->buf[i + 1];
        s2 += j->buf[i + 2];
        s3 += j->buf[i + 3];
    }
    atomic_fetch_add(&j->sink, s0 + s1 + s2 + s3);
}

static double read_bandwidth(vd_pool *pool, unsigned parts)
{
    size_t bytes = (size_t)1 << 30;
    uint64_t *buf = malloc(bytes);
    memset(buf, 1, bytes);
    bw_job j = {.buf = buf, .words = bytes / 8, .parts = parts};
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t = vd_now_s();
        vd_pool_run(parts > 1 ? pool : NULL, parts, bw_task, &j);
        double gbs = (double)bytes / (vd_now_s() - t) / 1e9;
        if (gbs > best)
            best = gbs;
    }
    free(buf);
    return best;
}

/* ---- 2. kernels ---------------------------------------------------------- */

static double kernel_gbs(vd_dist_fn fn, const float *vecs, size_t n, size_t dim, const float *q,
                         size_t passes)
{
    volatile float sink = 0;
    double t = vd_now_s();
    for (size_t p = 0; p < passes; p++)
        for (size_t i = 0; i < n; i++)
            sink += fn(q, vecs + i * dim, dim);
    double secs = vd_now_s() - t;
    (void)sink;
    return (double)passes * (double)n * (double)dim * 4 / secs / 1e9;
}

/* ---- 3. exact search ----------------------------------------------------- */

int main(int argc, char **argv)
{
    size_t dim = 1536, queries = 200;
    unsigned shards = 2, threads = 0;
    char sizes[256] = "10000,50000,100000";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dim"))
            dim = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--sizes"))
            snprintf(sizes, sizeof sizes, "%s", argv[i + 1]);
        else if (!strcmp(argv[i], "--queries"))
            queries = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--shards"))
            shards = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--threads"))
            threads = (unsigned)strtoul(argv[i + 1], NULL, 10);
    }
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    const vd_distance_table *best = vd_distance_init(-1);
    vd_pool *pool;
    vd_pool_create(&pool, threads - 1);

    double bw1 = read_bandwidth(pool, 1), bwn = read_bandwidth(pool, threads);
    printf("## Memory read bandwidth (1 GiB buffer, best of 5)\n\n");
    printf("| threads | GB/s |\n|---:|---:|\n| 1 | %.2f |\n| %u | %.2f |\n\n", bw1, threads, bwn);

    printf("## Distance kernels, dim %zu (GB/s of vector data read, 1 thread)\n\n", dim);
    printf("| isa | dot hot | l2sq hot | dot cold | l2sq cold |\n|---|---:|---:|---:|---:|\n");
    size_t hot_n = 16, cold_n = ((size_t)512 << 20) / (dim * 4);
    float *hot = malloc(hot_n * dim * 4), *cold = malloc(cold_n * dim * 4), *q = malloc(dim * 4);
    for (size_t i = 0; i < hot_n * dim; i++)
        hot[i] = frand();
    for (size_t i = 0; i < cold_n * dim; i++)
        cold[i] = frand();
    for (size_t i = 0; i < dim; i++)
        q[i] = frand();
    for (int isa = VD_ISA_SCALAR; isa <= VD_ISA_AVX512; isa++) {
        const vd_distance_table *t = vd_distance_for((vd_isa)isa);
        if (!t) {
            printf("| %s | not supported by this CPU | | | |\n", vd_isa_name((vd_isa)isa));
            continue;
        }
        printf("| %s | %.1f | %.1f | %.2f | %.2f |\n", vd_isa_name((vd_isa)isa),
               kernel_gbs(t->dot, hot, hot_n, dim, q, 20000),
               kernel_gbs(t->l2sq, hot, hot_n, dim, q, 20000),
               kernel_gbs(t->dot, cold, cold_n, dim, q, 3),
               kernel_gbs(t->l2sq, cold, cold_n, dim, q, 3));
    }
    free(hot);
    free(cold);

    printf("\n## Exact search (cosine, k=10, %u shards, %u threads, kernels %s, %zu queries)\n\n",
           shards, threads, vd_isa_name(best->isa), queries);
    printf("| N | data MB | p50 ms | p99 ms | scan GB/s | vs %u-thread bandwidth |\n"
           "|---:|---:|---:|---:|---:|---:|\n",
           threads);
    for (char *tok = strtok(sizes, ","); tok; tok = strtok(NULL, ",")) {
        size_t n = strtoul(tok, NULL, 10);
        vd_collection_config cfg = {.dim = (uint32_t)dim, .metric = VD_METRIC_COSINE, .n_shards = shards};
        snprintf(cfg.name, sizeof cfg.name, "bench");
        vd_collection *c;
        if (vd_collection_create(&c, &cfg, pool) != 0)
            return 1;
        size_t batch = 1000;
        float *vecs = malloc(batch * dim * 4);
        vd_point_in *pts = calloc(batch, sizeof *pts);
        for (size_t start = 0; start < n; start += batch) {
            size_t m = n - start < batch ? n - start : batch;
            for (size_t i = 0; i < m; i++) {
                for (size_t d = 0; d < dim; d++)
                    vecs[i * dim + d] = frand();
                vd_normalize(vecs + i * dim, dim);
                pts[i] = (vd_point_in){.id = {.kind = VD_ID_INT, .num = start + i}, .vector = vecs + i * dim};
            }
            vd_upsert_counts counts = {0};
            vd_collection_upsert(c, pts, m, &counts);
        }
        double *lat = malloc(queries * sizeof *lat);
        for (size_t qi = 0; qi < queries; qi++) {
            for (size_t d = 0; d < dim; d++)
                q[d] = frand();
            vd_normalize(q, dim);
            vd_search_req req = {.vector = q, .k = 10, .with_payload = true};
            vd_point_out *hits;
            size_t nh;
            double t = vd_now_s();
            vd_collection_search(c, &req, &hits, &nh);
            lat[qi] = (vd_now_s() - t) * 1e3;
            for (size_t h = 0; h < nh; h++)
                vd_point_out_free(&hits[h]);
            free(hits);
        }
        qsort(lat, queries, sizeof *lat, cmp_double);
        double p50 = lat[queries / 2], p99 = lat[(queries * 99) / 100];
        double mb = (double)n * (double)dim * 4 / 1e6;
        double gbs = mb / 1e3 / (p50 / 1e3);
        printf("| %zu | %.0f | %.2f | %.2f | %.2f | %.0f%% |\n", n, mb, p50, p99, gbs, 100 * gbs / bwn);
        fflush(stdout);
        free(lat);
        free(vecs);
        free(pts);
        vd_collection_unref(c);
    }
    free(q);
    vd_pool_destroy(pool);
    return 0;
}

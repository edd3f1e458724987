/*
 * checkpoint_stall.c — search latency on a shard while its snapshot image is
 * written (vd_shard_save, the step a checkpoint takes per shard), against
 * the same searches with no checkpoint running.
 *
 *   bench_checkpoint_stall [N] [DIM] [SECONDS_BEFORE] [SAVES] [DIR]
 *
 * Builds one cosine shard of N random vectors (default 100000 × 1536, HNSW
 * m=16, ef_construction=40: the graph's quality does not matter here), each
 * with a payload shaped like a MemoryService memory (user, kind, timestamp,
 * tags and about 200 bytes of text: a save copies every payload), then
 * one search thread queries it back to back (k=10, ef=32) while the main
 * thread first waits SECONDS_BEFORE, then writes the image SAVES times into
 * DIR (default /tmp) through the real snapshot writer (temp file, fdatasync,
 * rename). Prints one markdown row per phase: searches, p50, p99, max ms,
 * and the save's seconds. Before the image was streamed outside the shard's
 * write lock, searches waited for the whole write.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "bench_util.h"
#include "db/shard.h"
#include "util/strbuf.h"
#include "vectord/distance.h"
#include "vectord/snapshot.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

typedef struct sample {
    double at, ms;
} sample;

typedef struct searcher {
    vd_shard *s;
    uint32_t dim;
    _Atomic bool stop;
    sample *samples;
    size_t n, cap;
} searcher;

static float frand(uint64_t *x)
{
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return (float)((*x >> 11) & 0xffffff) / (float)0xffffff - 0.5f;
}

static void *search_loop(void *arg)
{
    searcher *sr = arg;
    uint64_t seed = 99;
    float *q = malloc(sr->dim * sizeof *q);
    vd_point_out out[10];
    while (!atomic_load(&sr->stop) && sr->n < sr->cap) {
        for (uint32_t k = 0; k < sr->dim; k++)
            q[k] = frand(&seed);
        vd_normalize(q, sr->dim);
        vd_search_req req = {.vector = q, .k = 10, .ef = 32};
        size_t n = 0;
        double t0 = now_s();
        vd_shard_search(sr->s, &req, out, &n);
        double t1 = now_s();
        for (size_t i = 0; i < n; i++)
            vd_point_out_free(&out[i]);
        sr->samples[sr->n++] = (sample){t0, (t1 - t0) * 1e3};
    }
    free(q);
    return NULL;
}

/* A payload shaped like a MemoryService memory row. */
static cJSON *memory_payload(uint32_t i)
{
    static const char *kinds[] = {"note", "fact", "preference", "event"};
    char user[32], text[256];
    snprintf(user, sizeof user, "user-%u", i % 1000);
    snprintf(text, sizeof text,
             "Memory %u: the user mentioned a preference about scheduling, a project deadline and "
             "a follow-up with the team; the assistant summarised it for later retrieval.",
             i);
    cJSON *p = cJSON_CreateObject(), *tags = cJSON_AddArrayToObject(p, "tags");
    cJSON_AddStringToObject(p, "userId", user);
    cJSON_AddStringToObject(p, "kind", kinds[i % 4]);
    cJSON_AddNumberToObject(p, "createdAt", 1733000000.0 + i);
    cJSON_AddItemToArray(tags, cJSON_CreateString(i % 3 ? "work" : "personal"));
    cJSON_AddStringToObject(p, "text", text);
    return p;
}

static void row(const char *phase, const searcher *sr, double from, double to, double save_s)
{
    double *ms = malloc((sr->n + 1) * sizeof *ms);
    size_t n = 0;
    for (size_t i = 0; i < sr->n; i++)
        if (sr->samples[i].at >= from && sr->samples[i].at < to)
            ms[n++] = sr->samples[i].ms;
    qsort(ms, n, sizeof *ms, cmp_double);
    if (n)
        printf("| %s | %zu | %.3f | %.3f | %.3f | ", phase, n, ms[n / 2],
               ms[(size_t)((double)(n - 1) * 0.99)], ms[n - 1]);
    if (n && save_s > 0)
        printf("%.2f |\n", save_s);
    else if (n)
        printf("— |\n");
    else
        printf("| %s | 0 | — | — | — | %.2f |\n", phase, save_s);
    free(ms);
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)atoi(argv[1]) : 100000;
    uint32_t dim = argc > 2 ? (uint32_t)atoi(argv[2]) : 1536;
    double before = argc > 3 ? atof(argv[3]) : 3.0;
    int saves = argc > 4 ? atoi(argv[4]) : 3;
    const char *dir = argc > 5 ? argv[5] : "/tmp";
    vd_distance_init(-1);
    vd_pool *pool;
    vd_pool_create(&pool, 2);
    vd_index_params ip;
    vd_index_params_default(&ip, VD_INDEX_HNSW);
    ip.ef_construction = 40;
    vd_shard_config sc = {.dim = dim, .metric = VD_METRIC_COSINE, .index = &ip, .seed = 1};
    vd_shard *s;
    if (vd_shard_create(&s, &sc, pool)) {
        fprintf(stderr, "cannot create the shard\n");
        return 1;
    }
    fprintf(stderr, "building %u x %u ...\n", n, dim);
    uint64_t seed = 1;
    const uint32_t batch = 1000;
    float *vecs = malloc((size_t)batch * dim * sizeof *vecs);
    vd_point_in *pts = calloc(batch, sizeof *pts);
    for (uint32_t done = 0; done < n; done += batch) {
        uint32_t m = n - done < batch ? n - done : batch;
        for (uint32_t i = 0; i < m; i++) {
            float *v = vecs + (size_t)i * dim;
            for (uint32_t k = 0; k < dim; k++)
                v[k] = frand(&seed);
            vd_normalize(v, dim);
            pts[i] = (vd_point_in){.id = {.kind = VD_ID_INT, .num = done + i}, .vector = v,
                                   .payload = memory_payload(done + i)};
        }
        vd_upsert_counts c = {0};
        if (vd_shard_upsert(s, pts, m, &c)) {
            fprintf(stderr, "upsert failed\n");
            return 1;
        }
    }
    free(vecs);
    free(pts);

    searcher sr = {.s = s, .dim = dim, .cap = 1u << 22};
    sr.samples = malloc(sr.cap * sizeof *sr.samples);
    pthread_t th;
    pthread_create(&th, NULL, search_loop, &sr);
    double t_start = now_s();
    struct timespec wait = {(time_t)before, (long)((before - floor(before)) * 1e9)};
    nanosleep(&wait, NULL);
    double t_quiet_end = now_s();
    double *save_from = calloc((size_t)saves, sizeof *save_from), *save_to = calloc((size_t)saves, sizeof *save_to);
    for (int i = 0; i < saves; i++) {
        vd_snapshot_writer w;
        vd_errmsg em = {{0}};
        vd_strbuf img;
        vd_strbuf_init(&img, 0);
        save_from[i] = now_s();
        int rc = vd_snapshot_writer_open(&w, vd_vfs_posix(), dir, "bench-shard.snap", &em);
        vd_snapshot_begin(&img, VD_SNAP_SHARD, 1);
        if (!rc && (rc = vd_shard_save(s, NULL, &img, &w)) == 0)
            rc = vd_snapshot_writer_commit(&w, &em);
        else if (!rc)
            vd_snapshot_writer_abort(&w);
        save_to[i] = now_s();
        vd_strbuf_free(&img);
        if (rc) {
            fprintf(stderr, "save failed: %d %s\n", rc, em.text);
            return 1;
        }
        struct timespec gap = {0, 300000000};
        nanosleep(&gap, NULL); /* quiet between saves */
    }
    atomic_store(&sr.stop, true);
    pthread_join(th, NULL);
    char path[1100];
    snprintf(path, sizeof path, "%s/bench-shard.snap", dir);
    remove(path);

    printf("## Search latency during a shard image write — %u x %u, HNSW, 1 search thread\n\n", n, dim);
    printf("| phase | searches | p50 ms | p99 ms | max ms | save s |\n|---|---:|---:|---:|---:|---:|\n");
    row("no checkpoint", &sr, t_start, t_quiet_end, 0);
    for (int i = 0; i < saves; i++) {
        char name[32];
        snprintf(name, sizeof name, "during save %d", i + 1);
        row(name, &sr, save_from[i], save_to[i], save_to[i] - save_from[i]);
    }
    free(save_from);
    free(save_to);
    free(sr.samples);
    vd_shard_destroy(s);
    vd_pool_destroy(pool);
    return 0;
}

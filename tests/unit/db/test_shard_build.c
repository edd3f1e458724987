/* The index backlog (db/shard_build.c): points are searchable before the
 * graph holds them (scanned exactly and merged with the graph's answer),
 * the graph is built behind the writes, and a snapshot keeps what waits. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "db/shard.h"
#include "util/strbuf.h"
#include "vectord/distance.h"
#include "vectord/snapshot.h"
#include "vectord/vfs.h"

enum { N = 3000, D = 16, K = 10, GROUPS = 7 };

static float vecs[N][D];

static void make_points(vd_point_in *pts, uint64_t first, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t id = first + i;
        for (int d = 0; d < D; d++)
            vecs[id][d] = (float)rand() / (float)RAND_MAX - 0.5f;
        char buf[32];
        snprintf(buf, sizeof buf, "{\"g\":%llu}", (unsigned long long)(id % GROUPS));
        pts[i] = (vd_point_in){.id = {.kind = VD_ID_INT, .num = id}, .vector = vecs[id],
                               .payload = cJSON_Parse(buf)};
    }
}

static vd_shard *make_shard(vd_quant quant, size_t backlog_max)
{
    static vd_index_params hnsw;
    vd_index_params_default(&hnsw, VD_INDEX_HNSW);
    static vd_pindex_spec spec = {"g", VD_PINDEX_NUMERIC};
    vd_shard_config cfg = {.dim = D, .metric = VD_METRIC_L2, .index = &hnsw, .seed = 1, .quant = quant,
                           .pindexes = &spec, .n_pindexes = 1, .backlog_max = backlog_max};
    vd_shard *s;
    cr_assert_eq(vd_shard_create(&s, &cfg, NULL), 0);
    return s;
}

/* The exact best K of points [0, n) (g = 2 only when filtered), by l2. */
static void exact_best(const float *q, size_t n, bool filtered, uint64_t *best)
{
    float best_d[K];
    for (int k = 0; k < K; k++)
        best_d[k] = 1e30f;
    for (size_t i = 0; i < n; i++) {
        if (filtered && i % GROUPS != 2)
            continue;
        float d = vd_dist_l2sq_f32_scalar(q, vecs[i], D);
        for (int k = 0; k < K; k++) {
            if (d < best_d[k]) {
                memmove(best + k + 1, best + k, (K - k - 1) * sizeof *best);
                memmove(best_d + k + 1, best_d + k, (K - k - 1) * sizeof *best_d);
                best[k] = i;
                best_d[k] = d;
                break;
            }
        }
    }
}

/* Searches 20 random queries, with and without a filter, at the given ef
 * and oversampling, and counts the hits that are not the exact ones. */
static int misses(vd_shard *s, size_t n, uint32_t ef, float oversampling)
{
    cJSON *fj = cJSON_Parse("{\"must\":[{\"key\":\"g\",\"match\":{\"value\":2}}]}");
    vd_filter *f;
    cr_assert_eq(vd_filter_parse(fj, 4, 0, &f, NULL), 0);
    cJSON_Delete(fj);
    int missed = 0;
    for (int t = 0; t < 20; t++) {
        float q[D];
        for (int d = 0; d < D; d++)
            q[d] = (float)rand() / (float)RAND_MAX - 0.5f;
        for (int filtered = 0; filtered < 2; filtered++) {
            uint64_t best[K];
            exact_best(q, n, filtered, best);
            vd_search_req req = {.vector = q, .k = K, .ef = ef, .oversampling = oversampling,
                                 .filter = filtered ? f : NULL};
            vd_point_out out[K];
            size_t got;
            cr_assert_eq(vd_shard_search(s, &req, out, &got), 0);
            cr_assert_eq(got, K);
            for (int k = 0; k < K; k++) {
                missed += out[k].id.num != best[k];
                vd_point_out_free(&out[k]);
            }
        }
    }
    vd_filter_destroy(f);
    return missed;
}

/* Half the points in the graph, half waiting: a walk of the graph cannot
 * reach the waiting ones, so finding each of them by its own vector (ef 16)
 * is the backlog scan merged into the graph's answer; float32, and sq8 codes
 * re-ranked alike. */
Test(shard_build, points_waiting_for_the_graph_are_found)
{
    vd_distance_init(-1);
    srand(11);
    for (int quant = 0; quant < 2; quant++) {
        vd_shard *s = make_shard(quant ? VD_QUANT_SQ8 : VD_QUANT_NONE, N);
        static vd_point_in pts[N];
        make_points(pts, 0, N);
        vd_upsert_counts c = {0};
        cr_assert_eq(vd_shard_upsert(s, pts, N, &c), 0);
        cr_assert_eq(c.inserted, N);
        cr_assert_eq(vd_shard_backlog(s), N, "within backlog_max, no write builds");
        vd_shard_stats st;
        vd_shard_stats_get(s, &st);
        cr_assert_eq(st.n_points, N, "searchable before the graph has them");
        cr_assert_eq(st.n_backlog, N);
        vd_shard_build_down_to(s, N / 2, SIZE_MAX); /* the oldest half: ids below N / 2 */
        for (uint64_t id = N / 2; id < N; id += 7) {
            vd_search_req req = {.vector = vecs[id], .k = 1, .ef = 16, .oversampling = 4};
            vd_point_out out;
            size_t got;
            cr_assert_eq(vd_shard_search(s, &req, &out, &got), 0);
            cr_assert_eq(got, 1);
            cr_assert_eq(out.id.num, id, "quant %d: a waiting point is not found by its own vector", quant);
            vd_point_out_free(&out);
        }
        cr_assert_eq(misses(s, N, N, quant ? 50.0f : 1.0f), 0, "quant %d", quant);
        vd_shard_destroy(s);
    }
}

/* Half built: the graph answers for its part, the scan for the rest, merged
 * (ef as large as the graph: its part is exact too); then all built. */
Test(shard_build, graph_and_backlog_merge_into_the_exact_answer)
{
    vd_distance_init(-1);
    srand(12);
    vd_shard *s = make_shard(VD_QUANT_NONE, N);
    static vd_point_in pts[N];
    make_points(pts, 0, N);
    vd_upsert_counts c = {0};
    cr_assert_eq(vd_shard_upsert(s, pts, N, &c), 0);
    vd_shard_build_down_to(s, N / 2, SIZE_MAX);
    cr_assert_eq(vd_shard_backlog(s), N / 2);
    vd_shard_stats st;
    vd_shard_stats_get(s, &st);
    cr_assert_eq(st.n_built, N / 2);
    cr_assert_eq(misses(s, N, N, 1.0f), 0);
    /* A point queued and then replaced is built once, as its new self. A
     * compaction while its old slot is still queued skips that slot, and the
     * next compaction releases it whatever the share of tombstones. */
    vd_point_in early = {.id = {.kind = VD_ID_INT, .num = N - 2}, .vector = vecs[N - 2],
                         .payload = cJSON_Parse("{\"g\":2}")}; /* (N - 2) % GROUPS, as before */
    cr_assert_eq(vd_shard_upsert(s, &early, 1, &c), 0); /* N - 2 is queued: its old slot is a queued tombstone */
    size_t skipped_release;
    cr_assert_eq(vd_shard_compact(s, 0.0, &skipped_release), 0);
    cr_assert_eq(skipped_release, 0, "a queued tombstone is not released");
    float moved[D] = {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5};
    vd_point_in p = {.id = {.kind = VD_ID_INT, .num = N - 1}, .vector = moved};
    cr_assert_eq(vd_shard_upsert(s, &p, 1, &c), 0);
    while (vd_shard_build(s, 1000, NULL))
        ;
    cr_assert_eq(vd_shard_backlog(s), 0);
    vd_shard_stats_get(s, &st);
    cr_assert_eq(st.n_tombstones, 2, "the replaced points' slots wait for compaction");
    size_t released;
    cr_assert_eq(vd_shard_compact(s, 0.99, &released), 0);
    cr_assert_eq(released, 2, "after a compaction that skipped queued tombstones, the next is due");
    vd_search_req req = {.vector = moved, .k = 1, .ef = 64};
    vd_point_out out;
    size_t got;
    cr_assert_eq(vd_shard_search(s, &req, &out, &got), 0);
    cr_assert_eq(got, 1);
    cr_assert_eq(out.id.num, N - 1, "the replaced point is found where it moved");
    vd_point_out_free(&out);
    memcpy(vecs[N - 1], moved, sizeof moved);
    cr_assert_eq(misses(s, N, N, 1.0f), 0);
    vd_shard_destroy(s);
}

/* backlog_max bounds how far writes run ahead: past it the writer builds. */
Test(shard_build, writes_build_past_backlog_max)
{
    vd_distance_init(-1);
    srand(13);
    vd_shard *s = make_shard(VD_QUANT_NONE, 500);
    static vd_point_in pts[N];
    make_points(pts, 0, N);
    vd_upsert_counts c = {0};
    for (size_t i = 0; i < N; i += 300) {
        cr_assert_eq(vd_shard_upsert(s, pts + i, 300, &c), 0);
        cr_assert_leq(vd_shard_backlog(s), 500);
    }
    vd_shard_destroy(s);
    s = make_shard(VD_QUANT_NONE, 0);
    make_points(pts, 0, 100);
    cr_assert_eq(vd_shard_upsert(s, pts, 100, &c), 0);
    cr_assert_eq(vd_shard_backlog(s), 0, "backlog_max 0: each write builds its own");
    vd_shard_destroy(s);
}

/* A snapshot taken while points wait keeps them; the loaded shard queues
 * them again (its graph image lacks them) and finds them exactly. */
Test(shard_build, a_loaded_shard_queues_what_its_graph_lacks)
{
    vd_distance_init(-1);
    srand(14);
    vd_shard *s = make_shard(VD_QUANT_NONE, N);
    static vd_point_in pts[N];
    make_points(pts, 0, N);
    vd_upsert_counts c = {0};
    cr_assert_eq(vd_shard_upsert(s, pts, N, &c), 0);
    vd_shard_build_down_to(s, 1000, SIZE_MAX);

    char dir[] = "/tmp/vd_test_backlog_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    vd_errmsg em = {{0}};
    vd_snapshot_writer w;
    cr_assert_eq(vd_snapshot_writer_open(&w, vd_vfs_posix(), dir, "shard-0.snap", &em), 0);
    vd_strbuf img;
    vd_strbuf_init(&img, 0);
    vd_snapshot_begin(&img, VD_SNAP_SHARD, 1);
    cr_assert_eq(vd_shard_save(s, NULL, &img, &w), 0);
    cr_assert_eq(vd_snapshot_writer_commit(&w, &em), 0, "%s", em.text);
    vd_strbuf_free(&img);
    char path[128];
    snprintf(path, sizeof path, "%s/shard-0.snap", dir);
    uint8_t *data;
    size_t len;
    cr_assert_eq(vd_vfs_read_file(vd_vfs_posix(), path, &data, &len), 0);
    vd_snapshot_view view;
    cr_assert_eq(vd_snapshot_open(data, len, &view, &em), 0, "%s", em.text);
    vd_shard *loaded = make_shard(VD_QUANT_NONE, N);
    cr_assert_eq(vd_shard_load(loaded, view.body, view.body_len, view.lsn), 0);
    cr_assert_eq(vd_shard_backlog(loaded), 1000);
    vd_shard_stats st;
    vd_shard_stats_get(loaded, &st);
    cr_assert_eq(st.n_points, N);
    cr_assert_eq(misses(loaded, N, N, 1.0f), 0);
    vd_shard_build_down_to(loaded, 0, SIZE_MAX);
    cr_assert_eq(vd_shard_backlog(loaded), 0);
    cr_assert_eq(misses(loaded, N, N, 1.0f), 0);
    free(data);
    unlink(path);
    rmdir(dir);
    vd_shard_destroy(loaded);
    vd_shard_destroy(s);
}

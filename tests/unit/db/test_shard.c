/* Shard store: upsert/update/delete, version guard, slot reuse, search order. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "db/shard.h"
#include "vectord/distance.h"

static const vd_index_params flat = {.type = VD_INDEX_FLAT};

static vd_point_in point(uint64_t id, float *vec, const char *payload, int64_t version)
{
    vd_point_in p = {.id = {.kind = VD_ID_INT, .num = id}, .vector = vec};
    p.payload = payload ? cJSON_Parse(payload) : NULL;
    p.has_version = version >= 0;
    p.version = version >= 0 ? (uint64_t)version : 0;
    return p;
}

Test(shard, upsert_get_update_delete_and_version_guard)
{
    vd_shard *s;
    vd_shard_config sc = {.dim = 2, .metric = VD_METRIC_L2, .index = &flat, .seed = 1};
    cr_assert_eq(vd_shard_create(&s, &sc, NULL), 0);
    float v1[2] = {1, 0}, v2[2] = {0, 1};
    vd_point_in pts[2] = {point(1, v1, "{\"a\":1}", 10), point(2, v2, NULL, -1)};
    vd_upsert_counts c = {0};
    cr_assert_eq(vd_shard_upsert(s, pts, 2, &c), 0);
    cr_assert_eq(c.inserted, 2);
    cr_assert_null(pts[0].payload, "the shard takes the payload");

    vd_point_out out;
    vd_point_id id1 = {.kind = VD_ID_INT, .num = 1};
    cr_assert_eq(vd_shard_get(s, &id1, true, &out), 0);
    cr_assert_eq(out.version, 10);
    cr_assert_eq(cJSON_GetObjectItem(out.payload, "a")->valueint, 1);
    cr_assert_float_eq(out.vector[0], 1.0f, 0);
    vd_point_out_free(&out);

    /* A stale write is skipped, an equal or newer one applies. */
    float v3[2] = {5, 5};
    vd_point_in stale = point(1, v3, "{\"a\":2}", 9);
    memset(&c, 0, sizeof c);
    cr_assert_eq(vd_shard_upsert(s, &stale, 1, &c), 0);
    cr_assert_eq(c.stale, 1);
    vd_point_in newer = point(1, v3, "{\"a\":3}", 10);
    cr_assert_eq(vd_shard_upsert(s, &newer, 1, &c), 0);
    cr_assert_eq(c.updated, 1);
    cr_assert_eq(vd_shard_get(s, &id1, true, &out), 0);
    cr_assert_eq(cJSON_GetObjectItem(out.payload, "a")->valueint, 3);
    cr_assert_float_eq(out.vector[0], 5.0f, 0);
    vd_point_out_free(&out);

    size_t deleted = 0;
    cr_assert_eq(vd_shard_delete_ids(s, &id1, 1, &deleted), 0);
    cr_assert_eq(deleted, 1);
    cr_assert_eq(vd_shard_get(s, &id1, false, &out), VD_E_POINT_NOT_FOUND);
    cr_assert_eq(vd_shard_delete_ids(s, &id1, 1, &deleted), 0);
    cr_assert_eq(deleted, 1, "deleting a missing id is not an error");

    /* The freed slot is reused. */
    vd_shard_stats st;
    vd_shard_stats_get(s, &st);
    cr_assert_eq(st.n_points, 1);
    cr_assert_eq(st.n_free, 1);
    vd_point_in again = point(3, v1, NULL, -1);
    cr_assert_eq(vd_shard_upsert(s, &again, 1, &c), 0);
    vd_shard_stats_get(s, &st);
    cr_assert_eq(st.n_slots, 2);
    cr_assert_eq(st.n_free, 0);
    vd_shard_destroy(s);
}

Test(shard, a_write_from_the_record_passes_the_version_guard)
{
    vd_shard *s;
    vd_shard_config sc = {.dim = 2, .metric = VD_METRIC_L2, .index = &flat, .seed = 1};
    cr_assert_eq(vd_shard_create(&s, &sc, NULL), 0);
    float v[2] = {1, 0};
    vd_point_in p = point(1, v, "{\"a\":1}", 100);
    vd_upsert_counts c = {0};
    cr_assert_eq(vd_shard_upsert(s, &p, 1, &c), 0);
    /* An older version from the record (the Postgres feed) applies, and is stored as it is. */
    vd_point_in rec = point(1, v, "{\"a\":2}", 40);
    rec.from_record = true;
    cr_assert_eq(vd_shard_upsert(s, &rec, 1, &c), 0);
    cr_assert_eq(c.updated, 1);
    cr_assert_eq(c.stale, 0);
    vd_point_out out;
    vd_point_id id1 = {.kind = VD_ID_INT, .num = 1};
    cr_assert_eq(vd_shard_get(s, &id1, false, &out), 0);
    cr_assert_eq(out.version, 40);
    cr_assert_eq(cJSON_GetObjectItem(out.payload, "a")->valueint, 2);
    vd_point_out_free(&out);
    /* An API write older than that is still skipped. */
    vd_point_in api = point(1, v, "{\"a\":3}", 39);
    memset(&c, 0, sizeof c);
    cr_assert_eq(vd_shard_upsert(s, &api, 1, &c), 0);
    cr_assert_eq(c.stale, 1);
    /* After a delete of version 40, an older API write stays out, the record's comes back. */
    size_t deleted = 0;
    cr_assert_eq(vd_shard_delete_ids(s, &id1, 1, &deleted), 0);
    vd_point_in api_old = point(1, v, NULL, 30);
    memset(&c, 0, sizeof c);
    cr_assert_eq(vd_shard_upsert(s, &api_old, 1, &c), 0);
    cr_assert_eq(c.stale, 1);
    vd_point_in rec_old = point(1, v, "{\"a\":4}", 30);
    rec_old.from_record = true;
    cr_assert_eq(vd_shard_upsert(s, &rec_old, 1, &c), 0);
    cr_assert_eq(c.inserted, 1);
    cr_assert_eq(vd_shard_get(s, &id1, false, &out), 0);
    cr_assert_eq(out.version, 30);
    vd_point_out_free(&out);
    vd_shard_destroy(s);
}

Test(shard, search_matches_brute_force_with_filter_and_threshold)
{
    enum { N = 500, D = 24, K = 7 };
    vd_distance_init(-1);
    vd_pindex_spec spec = {"g", VD_PINDEX_KEYWORD};
    vd_shard *s;
    vd_shard_config cfg = {.dim = D, .metric = VD_METRIC_DOT, .index = &flat, .seed = 1,
                           .pindexes = &spec, .n_pindexes = 1};
    cr_assert_eq(vd_shard_create(&s, &cfg, NULL), 0);
    static float vecs[N][D];
    srand(3);
    vd_point_in pts[N];
    for (int i = 0; i < N; i++) {
        for (int d = 0; d < D; d++)
            vecs[i][d] = (float)rand() / (float)RAND_MAX - 0.5f;
        char buf[32];
        snprintf(buf, sizeof buf, "{\"g\":\"g%d\"}", i % 3);
        pts[i] = point((uint64_t)i, vecs[i], buf, -1);
    }
    vd_upsert_counts c = {0};
    cr_assert_eq(vd_shard_upsert(s, pts, N, &c), 0);
    float q[D];
    for (int d = 0; d < D; d++)
        q[d] = (float)rand() / (float)RAND_MAX - 0.5f;

    cJSON *fj = cJSON_Parse("{\"must\":[{\"key\":\"g\",\"match\":{\"value\":\"g1\"}}]}");
    vd_filter *f;
    cr_assert_eq(vd_filter_parse(fj, 4, 0, &f, NULL), 0);
    cJSON_Delete(fj);
    for (int filtered = 0; filtered < 2; filtered++) {
        /* brute force: best K by dot among allowed points */
        int best[K];
        float best_s[K];
        for (int k = 0; k < K; k++) {
            best[k] = -1;
            best_s[k] = -1e30f;
        }
        for (int i = 0; i < N; i++) {
            if (filtered && i % 3 != 1)
                continue;
            float sc = vd_dist_dot_f32_scalar(q, vecs[i], D);
            for (int k = 0; k < K; k++) {
                if (sc > best_s[k]) {
                    memmove(best + k + 1, best + k, (K - k - 1) * sizeof *best);
                    memmove(best_s + k + 1, best_s + k, (K - k - 1) * sizeof *best_s);
                    best[k] = i;
                    best_s[k] = sc;
                    break;
                }
            }
        }
        vd_search_req req = {.vector = q, .k = K, .filter = filtered ? f : NULL, .with_payload = true};
        vd_point_out out[K];
        size_t n;
        cr_assert_eq(vd_shard_search(s, &req, out, &n), 0);
        cr_assert_eq(n, K);
        for (int k = 0; k < K; k++) {
            cr_assert_eq(out[k].id.num, (uint64_t)best[k]);
            cr_assert_float_eq(out[k].score, best_s[k], 1e-5);
            vd_point_out_free(&out[k]);
        }
        /* score_threshold keeps only scores >= threshold */
        req.has_threshold = true;
        req.score_threshold = best_s[2];
        cr_assert_eq(vd_shard_search(s, &req, out, &n), 0);
        cr_assert_eq(n, 3);
        for (size_t k = 0; k < n; k++)
            vd_point_out_free(&out[k]);
    }
    size_t deleted = 0;
    cr_assert_eq(vd_shard_delete_filter(s, f, &deleted), 0);
    cr_assert_eq(deleted, 167);
    vd_filter_destroy(f);
    vd_shard_destroy(s);
}

/* Writes are staged in log order but finished (graph insertion) later, by
 * their own threads. Found by bench/soak.py as a rare 503 out_of_memory under
 * concurrent upserts and deletes: (1) an upsert's slot killed between its
 * stage and its finish (a newer write of the same id) was released by
 * compaction and reused, so the first finish activated another point's slot
 * and that point's own finish failed; (2) a delete logged after an upsert
 * whose finish had not run did not see the point, which then appeared. */
Test(shard, delete_after_an_unfinished_upsert_takes_the_point_out)
{
    vd_index_params hnsw;
    vd_index_params_default(&hnsw, VD_INDEX_HNSW);
    vd_shard *s;
    vd_shard_config sc = {.dim = 2, .metric = VD_METRIC_L2, .index = &hnsw, .seed = 1};
    cr_assert_eq(vd_shard_create(&s, &sc, NULL), 0);
    float v[2] = {1, 2};
    vd_point_in p = point(7, v, "{\"k\":1}", -1);
    vd_upsert_counts c = {0};
    vd_shard_staged *st;
    cr_assert_eq(vd_shard_upsert_stage(s, &p, 1, &c, &st), 0);
    vd_point_id id = {.kind = VD_ID_INT, .num = 7};
    size_t n = 0;
    cr_assert_eq(vd_shard_delete_ids(s, &id, 1, &n), 0);
    cr_assert_eq(n, 1, "the staged point must be deleted");
    cr_assert_eq(vd_shard_upsert_finish(s, st), 0);
    vd_point_out out;
    cr_assert_eq(vd_shard_get(s, &id, false, &out), VD_E_POINT_NOT_FOUND);
    /* The same through a filter. */
    p = point(8, v, "{\"k\":2}", -1);
    cr_assert_eq(vd_shard_upsert_stage(s, &p, 1, &c, &st), 0);
    cJSON *fj = cJSON_Parse("{\"must\":[{\"key\":\"k\",\"match\":{\"value\":2}}]}");
    vd_filter *f;
    vd_errmsg em = {{0}};
    cr_assert_eq(vd_filter_parse(fj, 4, 0, &f, &em), 0);
    n = 0;
    cr_assert_eq(vd_shard_delete_filter(s, f, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(vd_shard_upsert_finish(s, st), 0);
    id.num = 8;
    cr_assert_eq(vd_shard_get(s, &id, false, &out), VD_E_POINT_NOT_FOUND);
    vd_filter_destroy(f);
    cJSON_Delete(fj);
    vd_shard_destroy(s);
}

Test(shard, compaction_keeps_slots_of_unfinished_upserts)
{
    vd_index_params hnsw;
    vd_index_params_default(&hnsw, VD_INDEX_HNSW);
    vd_shard *s;
    vd_shard_config sc = {.dim = 2, .metric = VD_METRIC_L2, .index = &hnsw, .seed = 1};
    cr_assert_eq(vd_shard_create(&s, &sc, NULL), 0);
    float base[8][2];
    vd_point_in pts[8];
    for (int i = 0; i < 8; i++) {
        base[i][0] = (float)i;
        base[i][1] = 1;
        pts[i] = point((uint64_t)i, base[i], NULL, -1);
    }
    vd_upsert_counts c = {0};
    cr_assert_eq(vd_shard_upsert(s, pts, 8, &c), 0);

    float va[2] = {100, 100}, vb[2] = {-50, 3};
    vd_point_in a = point(100, va, "{\"who\":\"a\"}", -1);
    vd_shard_staged *sa, *sa2, *sb;
    cr_assert_eq(vd_shard_upsert_stage(s, &a, 1, &c, &sa), 0);
    vd_point_id ida = {.kind = VD_ID_INT, .num = 100};
    /* A newer write of the same id kills the pending slot (a tombstone)... */
    vd_point_in a2 = point(100, va, "{\"who\":\"a2\"}", -1);
    cr_assert_eq(vd_shard_upsert_stage(s, &a2, 1, &c, &sa2), 0);
    cr_assert_eq(vd_shard_upsert_finish(s, sa2), 0);
    /* ...which compaction must not release while the first finish is due. */
    size_t released;
    cr_assert_eq(vd_shard_compact(s, 0.0, &released), 0);
    vd_point_in b = point(200, vb, "{\"who\":\"b\"}", -1);
    cr_assert_eq(vd_shard_upsert_stage(s, &b, 1, &c, &sb), 0);
    cr_assert_eq(vd_shard_upsert_finish(s, sa), 0);
    cr_assert_eq(vd_shard_upsert_finish(s, sb), 0, "the second write lost its slot");

    vd_point_out out;
    cr_assert_eq(vd_shard_get(s, &ida, false, &out), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(out.payload, "who")->valuestring, "a2");
    vd_point_out_free(&out);
    vd_point_id idb = {.kind = VD_ID_INT, .num = 200};
    cr_assert_eq(vd_shard_get(s, &idb, true, &out), 0);
    cr_assert_eq(out.vector[0], -50.0f);
    vd_point_out_free(&out);
    vd_search_req req = {.vector = vb, .k = 1, .ef = 16};
    vd_point_out hit;
    size_t nh;
    cr_assert_eq(vd_shard_search(s, &req, &hit, &nh), 0);
    cr_assert_eq(nh, 1);
    cr_assert_eq(hit.id.num, 200, "the graph must find the second point");
    vd_point_out_free(&hit);
    /* The slot is released by the next compaction, once nothing names it. */
    cr_assert_eq(vd_shard_compact(s, 0.0, &released), 0);
    vd_shard_destroy(s);
}

/* ---- a save does not hold off searches and writes -------------------------------- */

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "util/strbuf.h"
#include "vectord/snapshot.h"
#include "vectord/vfs.h"

#define SAVE_DIM 4
#define SAVE_N 3000

static vd_shard *save_shard;
static _Atomic bool probe_done;
static pthread_t probe_thread;
static bool probe_started;

static void save_vec(uint64_t id, float *v)
{
    for (int k = 0; k < SAVE_DIM; k++)
        v[k] = (float)((id * 7 + (uint64_t)k * 3) % 41);
}

/* What other requests do while the save writes: a search, an update in
 * place, a delete and an insert (which, without care, takes the deleted
 * point's slot and overwrites the vector the save is about to write). */
static void *probe(void *arg)
{
    (void)arg;
    float q[SAVE_DIM];
    save_vec(5, q);
    vd_point_out out[1];
    size_t n = 0;
    vd_search_req req = {.vector = q, .k = 1};
    if (vd_shard_search(save_shard, &req, out, &n) == 0 && n == 1)
        vd_point_out_free(&out[0]);
    float moved[SAVE_DIM] = {100, 100, 100, 100}, fresh[SAVE_DIM] = {200, 200, 200, 200};
    vd_point_in up = point(7, moved, NULL, -1);
    vd_upsert_counts c = {0};
    vd_shard_upsert(save_shard, &up, 1, &c);
    vd_point_id id9 = {.kind = VD_ID_INT, .num = 9};
    size_t deleted = 0;
    vd_shard_delete_ids(save_shard, &id9, 1, &deleted);
    vd_point_in add = point(100000, fresh, NULL, -1);
    vd_shard_upsert(save_shard, &add, 1, &c);
    atomic_store(&probe_done, true);
    return NULL;
}

/* The real file system, but the save's first write waits (up to 5 s) for
 * the probe's requests to finish. */
static int probing_pwrite(vd_vfs *vfs, int fd, const void *buf, size_t len, uint64_t off,
                          size_t *written)
{
    (void)vfs;
    if (!probe_started) {
        probe_started = true;
        pthread_create(&probe_thread, NULL, probe, NULL);
        for (int i = 0; i < 500 && !atomic_load(&probe_done); i++)
            usleep(10000);
    }
    vd_vfs *base = vd_vfs_posix();
    return base->ops->pwrite(base, fd, buf, len, off, written);
}

static vd_vfs_ops probing_ops;
static vd_vfs probing_vfs = {&probing_ops};

Test(shard, save_writes_its_image_while_searches_and_writes_go_on)
{
    probing_ops = *vd_vfs_posix()->ops;
    probing_ops.pwrite = probing_pwrite;
    probing_ops.write_sync = NULL;
    vd_shard_config sc = {.dim = SAVE_DIM, .metric = VD_METRIC_L2, .index = &flat, .seed = 1};
    cr_assert_eq(vd_shard_create(&save_shard, &sc, NULL), 0);
    static float vecs[SAVE_N][SAVE_DIM];
    static vd_point_in pts[SAVE_N];
    for (uint64_t i = 0; i < SAVE_N; i++) {
        save_vec(i, vecs[i]);
        pts[i] = point(i, vecs[i], "{\"k\":1}", -1);
    }
    vd_upsert_counts c = {0};
    cr_assert_eq(vd_shard_upsert(save_shard, pts, SAVE_N, &c), 0);

    char dir[] = "/tmp/vd_test_save_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    vd_errmsg em = {{0}};
    vd_snapshot_writer w;
    cr_assert_eq(vd_snapshot_writer_open(&w, &probing_vfs, dir, "shard-0.snap", &em), 0);
    vd_strbuf img;
    vd_strbuf_init(&img, 0);
    vd_snapshot_begin(&img, VD_SNAP_SHARD, 1);
    cr_assert_eq(vd_shard_save(save_shard, NULL, &img, &w), 0);
    bool in_time = atomic_load(&probe_done);
    cr_assert_eq(vd_snapshot_writer_commit(&w, &em), 0, "%s", em.text);
    vd_strbuf_free(&img);
    pthread_join(probe_thread, NULL);
    cr_assert(in_time, "a search and writes on the shard waited for the whole save");

    /* The image is the shard as it was when the save began. */
    char path[128];
    snprintf(path, sizeof path, "%s/shard-0.snap", dir);
    uint8_t *data;
    size_t len;
    cr_assert_eq(vd_vfs_read_file(vd_vfs_posix(), path, &data, &len), 0);
    vd_snapshot_view view;
    cr_assert_eq(vd_snapshot_open(data, len, &view, &em), 0, "%s", em.text);
    vd_shard *loaded;
    cr_assert_eq(vd_shard_create(&loaded, &sc, NULL), 0);
    cr_assert_eq(vd_shard_load(loaded, view.body, view.body_len, view.lsn), 0);
    vd_shard_stats st;
    vd_shard_stats_get(loaded, &st);
    cr_assert_eq(st.n_points, SAVE_N);
    for (uint64_t id = 0; id < SAVE_N; id++) {
        vd_point_id pid = {.kind = VD_ID_INT, .num = id};
        vd_point_out out;
        cr_assert_eq(vd_shard_get(loaded, &pid, true, &out), 0, "point %llu", (unsigned long long)id);
        cr_assert_arr_eq(out.vector, vecs[id], sizeof vecs[id], "point %llu", (unsigned long long)id);
        vd_point_out_free(&out);
    }
    vd_point_id fresh = {.kind = VD_ID_INT, .num = 100000};
    vd_point_out out;
    cr_assert_eq(vd_shard_get(loaded, &fresh, false, &out), VD_E_POINT_NOT_FOUND);
    /* And the live shard has the probe's writes. */
    cr_assert_eq(vd_shard_get(save_shard, &fresh, true, &out), 0);
    cr_assert_float_eq(out.vector[0], 200.0f, 0);
    vd_point_out_free(&out);
    vd_point_id id7 = {.kind = VD_ID_INT, .num = 7};
    cr_assert_eq(vd_shard_get(save_shard, &id7, true, &out), 0);
    cr_assert_float_eq(out.vector[0], 100.0f, 0);
    vd_point_out_free(&out);
    free(data);
    unlink(path);
    rmdir(dir);
    vd_shard_destroy(loaded);
    vd_shard_destroy(save_shard);
}

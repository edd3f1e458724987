/* Collections: sharded search equals single-shard search; concurrent readers
 * and writers stay consistent. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/collection.h"
#include "db/database.h"
#include "vectord/distance.h"

enum { D = 16 };

static vd_collection *make(vd_pool *pool, uint32_t shards, vd_metric m)
{
    vd_collection_config cfg = {.dim = D, .metric = m, .n_shards = shards};
    snprintf(cfg.name, sizeof cfg.name, "c%u", shards);
    vd_collection *c;
    cr_assert_eq(vd_collection_create(&c, &cfg, pool), 0);
    return c;
}

static void rand_vec(float *v, unsigned *seed)
{
    for (int d = 0; d < D; d++)
        v[d] = (float)rand_r(seed) / (float)RAND_MAX - 0.5f;
}

Test(collection, sharded_search_equals_single_shard)
{
    vd_distance_init(-1);
    vd_pool *pool;
    cr_assert_eq(vd_pool_create(&pool, 2), 0);
    for (int m = 0; m < 3; m++) {
        vd_collection *one = make(pool, 1, (vd_metric)m), *many = make(pool, 7, (vd_metric)m);
        enum { N = 2000 };
        static float vecs[N][D];
        unsigned seed = 11;
        vd_point_in pts[N];
        for (int i = 0; i < N; i++) {
            rand_vec(vecs[i], &seed);
            pts[i] = (vd_point_in){.id = {.kind = VD_ID_INT, .num = (uint64_t)i}, .vector = vecs[i]};
        }
        vd_upsert_counts c1 = {0}, c2 = {0};
        cr_assert_eq(vd_collection_upsert(one, pts, N, &c1), 0);
        cr_assert_eq(vd_collection_upsert(many, pts, N, &c2), 0);
        cr_assert_eq(c2.inserted, N);
        float q[D];
        rand_vec(q, &seed);
        vd_search_req req = {.vector = q, .k = 25};
        vd_point_out *a, *b;
        size_t na, nb;
        cr_assert_eq(vd_collection_search(one, &req, &a, &na), 0);
        cr_assert_eq(vd_collection_search(many, &req, &b, &nb), 0);
        cr_assert_eq(na, 25);
        cr_assert_eq(nb, 25);
        for (size_t i = 0; i < na; i++) {
            cr_assert_float_eq(a[i].score, b[i].score, 1e-6, "metric %d rank %zu", m, i);
            if (i + 1 < na && a[i].key != a[i + 1].key)
                cr_assert_eq(a[i].id.num, b[i].id.num);
            vd_point_out_free(&a[i]);
            vd_point_out_free(&b[i]);
        }
        free(a);
        free(b);
        vd_collection_stats st;
        cr_assert_eq(vd_collection_stats_get(many, &st), 0);
        cr_assert_eq(st.n_points, N);
        for (int s = 0; s < 7; s++)
            cr_assert(st.shards[s].n_points > 0, "every shard gets points");
        free(st.shards);
        vd_collection_unref(one);
        vd_collection_unref(many);
    }
    vd_pool_destroy(pool);
}

/* ---- concurrency ---- */

typedef struct stress {
    vd_collection *c;
    _Atomic int stop;
    _Atomic long searches, bad;
} stress;

static void *writer(void *arg)
{
    stress *st = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    float v[D];
    for (int round = 0; round < 300; round++) {
        vd_point_in p[10];
        for (int i = 0; i < 10; i++) {
            rand_vec(v, &seed);
            p[i] = (vd_point_in){.id = {.kind = VD_ID_INT, .num = (uint64_t)(rand_r(&seed) % 500)},
                                 .vector = v,
                                 .payload = cJSON_Parse("{\"alive\":true}")};
        }
        vd_upsert_counts c = {0};
        vd_collection_upsert(st->c, p, 10, &c);
        vd_point_id del = {.kind = VD_ID_INT, .num = (uint64_t)(rand_r(&seed) % 500)};
        size_t n = 0;
        vd_collection_delete_ids(st->c, &del, 1, 0, &n);
    }
    return NULL;
}

static void *reader(void *arg)
{
    stress *st = arg;
    unsigned seed = 99;
    float q[D];
    while (!atomic_load(&st->stop)) {
        rand_vec(q, &seed);
        vd_search_req req = {.vector = q, .k = 10, .with_payload = true};
        vd_point_out *hits;
        size_t n;
        if (vd_collection_search(st->c, &req, &hits, &n) != 0) {
            atomic_fetch_add(&st->bad, 1);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            /* every hit is a whole point: a payload written with it, a sane id */
            if (hits[i].id.num >= 500 || !cJSON_IsTrue(cJSON_GetObjectItem(hits[i].payload, "alive")))
                atomic_fetch_add(&st->bad, 1);
            if (i && hits[i].key < hits[i - 1].key)
                atomic_fetch_add(&st->bad, 1);
            vd_point_out_free(&hits[i]);
        }
        free(hits);
        atomic_fetch_add(&st->searches, 1);
    }
    return NULL;
}

Test(collection, concurrent_writers_and_readers)
{
    vd_distance_init(-1);
    vd_pool *pool;
    cr_assert_eq(vd_pool_create(&pool, 2), 0);
    stress st = {.c = make(pool, 4, VD_METRIC_L2)};
    pthread_t w[3], r[3];
    for (int i = 0; i < 3; i++) {
        pthread_create(&w[i], NULL, writer, &st);
        pthread_create(&r[i], NULL, reader, &st);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(w[i], NULL);
    atomic_store(&st.stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(r[i], NULL);
    cr_assert_eq(atomic_load(&st.bad), 0);
    cr_assert(atomic_load(&st.searches) > 0);
    vd_collection_stats s;
    cr_assert_eq(vd_collection_stats_get(st.c, &s), 0);
    cr_assert(s.n_points <= 500);
    free(s.shards);
    vd_collection_unref(st.c);
    vd_pool_destroy(pool);
}

Test(collection, database_registry)
{
    vd_database *db;
    cr_assert_eq(vd_database_create(&db, NULL, 2), 0);
    vd_collection_config cfg = {.dim = 4, .n_shards = 1};
    snprintf(cfg.name, sizeof cfg.name, "b");
    cr_assert_eq(vd_database_create_collection(db, &cfg, NULL, NULL), 0);
    vd_errmsg em;
    cr_assert_eq(vd_database_create_collection(db, &cfg, NULL, &em), VD_E_COLLECTION_EXISTS);
    snprintf(cfg.name, sizeof cfg.name, "a");
    cr_assert_eq(vd_database_create_collection(db, &cfg, NULL, NULL), 0);
    snprintf(cfg.name, sizeof cfg.name, "c");
    cr_assert_eq(vd_database_create_collection(db, &cfg, NULL, &em), VD_E_LIMIT_REACHED);
    vd_collection **all;
    size_t n;
    cr_assert_eq(vd_database_list(db, &all, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(vd_collection_config_of(all[0])->name, "a");
    /* A held reference outlives a drop. */
    cr_assert_eq(vd_database_drop(db, "a"), 0);
    cr_assert_str_eq(vd_collection_config_of(all[0])->name, "a");
    for (size_t i = 0; i < n; i++)
        vd_collection_unref(all[i]);
    free(all);
    vd_collection *c;
    cr_assert_eq(vd_database_get(db, "a", &c), VD_E_COLLECTION_NOT_FOUND);
    cr_assert_eq(vd_database_drop(db, "a"), VD_E_COLLECTION_NOT_FOUND);
    cr_assert(vd_collection_name_valid("mem_1-x"));
    cr_assert_not(vd_collection_name_valid("a/b"));
    cr_assert_not(vd_collection_name_valid(""));
    vd_database_destroy(db);
}

/* The search path reuses its working memory: once warm (the first searches
 * make the scratch), searches of the same shape — HNSW, sq8 with re-ranking,
 * IVF, with and without a filter — allocate no more of it. */
Test(collection, searches_in_steady_state_allocate_no_scratch)
{
    vd_distance_init(-1);
    vd_pool *pool;
    cr_assert_eq(vd_pool_create(&pool, 2), 0);
    vd_index_params hnsw = {.type = VD_INDEX_HNSW, .m = 8, .ef_construction = 40, .ef_search = 32};
    vd_index_params ivf = {.type = VD_INDEX_IVF, .nlist = 16};
    struct {
        vd_index_params index;
        vd_quant quant;
    } shapes[] = {{hnsw, VD_QUANT_NONE}, {hnsw, VD_QUANT_SQ8}, {ivf, VD_QUANT_NONE}, {{0}, VD_QUANT_NONE}};
    for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++) {
        vd_collection_config cfg = {.dim = D, .metric = VD_METRIC_L2, .n_shards = 3, .index = shapes[sh].index,
                                    .quant = shapes[sh].quant, .oversampling = 3};
        snprintf(cfg.name, sizeof cfg.name, "s%zu", sh);
        vd_collection *c;
        cr_assert_eq(vd_collection_create(&c, &cfg, pool), 0);
        enum { N = 3000 };
        static float vecs[N][D];
        unsigned seed = 5;
        vd_point_in pts[N];
        for (int i = 0; i < N; i++) {
            rand_vec(vecs[i], &seed);
            char buf[32];
            snprintf(buf, sizeof buf, "{\"g\":%d,\"h\":%d}", i % 10, i % 3);
            pts[i] = (vd_point_in){.id = {.kind = VD_ID_INT, .num = (uint64_t)i}, .vector = vecs[i],
                                   .payload = cJSON_Parse(buf)};
        }
        vd_upsert_counts counts = {0};
        cr_assert_eq(vd_collection_upsert(c, pts, N, &counts), 0);
        uint32_t trained = 0;
        cr_assert_eq(vd_collection_train(c, NULL, &trained), 0);
        cJSON *fj = cJSON_Parse("{\"must\":[{\"key\":\"g\",\"match\":{\"any\":[1,2]}}],"
                                "\"should\":[{\"must\":[{\"key\":\"h\",\"match\":{\"value\":0}}]},"
                                "{\"key\":\"h\",\"match\":{\"value\":1}}]}");
        vd_filter *f;
        vd_errmsg em = {{0}};
        cr_assert_eq(vd_filter_parse(fj, 8, 0, &f, &em), 0, "%s", em.text);
        uint64_t before = 0;
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < 50; i++) {
                float q[D];
                rand_vec(q, &seed);
                vd_search_req req = {.vector = q, .k = 10, .filter = i % 2 ? f : NULL};
                vd_point_out *hits;
                size_t n;
                cr_assert_eq(vd_collection_search(c, &req, &hits, &n), 0);
                cr_assert_eq(n, 10);
                for (size_t h = 0; h < n; h++)
                    vd_point_out_free(&hits[h]);
                free(hits);
            }
            vd_collection_stats st;
            cr_assert_eq(vd_collection_stats_get(c, &st), 0);
            free(st.shards);
            if (round == 0)
                before = st.total.search_allocations; /* warm: the scratch exists now */
            else
                cr_assert_eq(st.total.search_allocations, before,
                             "shape %zu: %llu scratch allocations in 50 warm searches", sh,
                             (unsigned long long)(st.total.search_allocations - before));
            cr_assert_gt(before, 0, "the counter counts");
        }
        vd_filter_destroy(f);
        cJSON_Delete(fj);
        vd_collection_unref(c);
    }
    vd_pool_destroy(pool);
}

/* A search fans its shards out only when each shard's work is large and
 * the cores are free; small searches, and any search while the cores are
 * taken, run their shards on the calling thread — with the same answer. */
Test(collection, fan_out_only_where_it_pays)
{
    vd_distance_init(-1);
    vd_pool *pool;
    cr_assert_eq(vd_pool_create(&pool, 1), 0); /* two cores: one worker and the caller */
    vd_collection_config cfg = {.dim = D, .metric = VD_METRIC_L2, .n_shards = 2,
                                .index = {.type = VD_INDEX_HNSW, .m = 8, .ef_construction = 40, .ef_search = 16}};
    snprintf(cfg.name, sizeof cfg.name, "fan");
    vd_collection *c;
    cr_assert_eq(vd_collection_create(&c, &cfg, pool), 0);
    enum { N = 40000 };
    static float vecs[N][D];
    static vd_point_in pts[N];
    unsigned seed = 9;
    for (int i = 0; i < N; i++) {
        rand_vec(vecs[i], &seed);
        pts[i] = (vd_point_in){.id = {.kind = VD_ID_INT, .num = (uint64_t)i}, .vector = vecs[i]};
    }
    vd_upsert_counts counts = {0};
    cr_assert_eq(vd_collection_upsert(c, pts, N, &counts), 0);
    float q[D];
    rand_vec(q, &seed);
    /* shard work: exact 20000 × 16 = 320 K multiply-adds (fans out); HNSW ef 16: 16 × 32 × 16 (does not) */
    vd_search_req exact = {.vector = q, .k = 10, .exact = true}, walk = {.vector = q, .k = 10};
    uint64_t fanned[4];
    vd_point_out *first = NULL;
    size_t n_first = 0;
    for (int step = 0; step < 4; step++) {
        if (step == 2)
            vd_pool_enter(pool); /* another search is in flight: the cores are taken */
        vd_point_out *hits;
        size_t n;
        cr_assert_eq(vd_collection_search(c, step % 2 ? &walk : &exact, &hits, &n), 0);
        if (step == 0) {
            first = hits;
            n_first = n;
        } else {
            if (step == 2) { /* the same exact answer, on the caller */
                cr_assert_eq(n, n_first);
                for (size_t i = 0; i < n; i++)
                    cr_assert(vd_id_equal(&hits[i].id, &first[i].id));
            }
            for (size_t i = 0; i < n; i++)
                vd_point_out_free(&hits[i]);
            free(hits);
        }
        vd_collection_stats st;
        cr_assert_eq(vd_collection_stats_get(c, &st), 0);
        free(st.shards);
        fanned[step] = st.total.searches_fanned_out;
    }
    vd_pool_leave(pool);
    cr_assert_eq(fanned[0], 1, "a large search on free cores fans out");
    cr_assert_eq(fanned[1], 1, "a small one does not");
    cr_assert_eq(fanned[2], 1, "nor a large one while the cores are busy");
    cr_assert_eq(fanned[3], 1);
    for (size_t i = 0; i < n_first; i++)
        vd_point_out_free(&first[i]);
    free(first);
    vd_collection_unref(c);
    vd_pool_destroy(pool);
}

/* ---- re-ranking depth of a quantized graph search ---- */

/* The ids of one search's answers (k of them) into ids; the count. */
static size_t search_ids(vd_collection *c, const float *q, uint32_t ef, float oversampling, bool exact,
                         uint64_t *ids)
{
    vd_search_req req = {.vector = q, .k = 10, .ef = ef, .oversampling = oversampling, .exact = exact};
    vd_point_out *hits;
    size_t n;
    cr_assert_eq(vd_collection_search(c, &req, &hits, &n), 0);
    for (size_t i = 0; i < n; i++) {
        ids[i] = hits[i].id.num;
        vd_point_out_free(&hits[i]);
    }
    free(hits);
    return n;
}

/* With its originals in RAM, an sq8 HNSW collection re-ranks every one of
 * the ef candidates its index found, not only k × oversampling of them: a
 * search with ef at least the point count (the planner then scans every
 * code) answers exactly with oversampling 1, where re-ranking only the k
 * best by code misses neighbours on this data (checked first, so the test
 * cannot pass without re-ranking them all). A walk (ef far below the count)
 * answers as an explicit oversampling of ef / k does. */
Test(collection, quantized_graph_search_reranks_its_ef_candidates)
{
    vd_distance_init(-1);
    vd_pool *pool;
    cr_assert_eq(vd_pool_create(&pool, 2), 0);
    for (int big = 0; big < 2; big++) {
        vd_collection_config cfg = {.dim = D, .metric = VD_METRIC_L2, .n_shards = 1, .quant = VD_QUANT_SQ8,
                                    .oversampling = 1,
                                    .index = {.type = VD_INDEX_HNSW, .m = 8, .ef_construction = 64, .ef_search = 16}};
        snprintf(cfg.name, sizeof cfg.name, "rr%d", big);
        vd_collection *c;
        cr_assert_eq(vd_collection_create(&c, &cfg, pool), 0);
        enum { SMALL = 300, LARGE = 6000 };
        size_t n_pts = big ? LARGE : SMALL;
        static float vecs[LARGE][D];
        static vd_point_in pts[LARGE];
        unsigned seed = 17;
        for (size_t i = 0; i < n_pts; i++) {
            rand_vec(vecs[i], &seed);
            pts[i] = (vd_point_in){.id = {.kind = VD_ID_INT, .num = (uint64_t)i}, .vector = vecs[i]};
        }
        vd_upsert_counts counts = {0};
        cr_assert_eq(vd_collection_upsert(c, pts, n_pts, &counts), 0);
        while (vd_collection_backlog(c) > 0)
            vd_collection_build(c, SIZE_MAX, pool);
        int k_only_misses = 0;
        for (int qi = 0; qi < 200; qi++) {
            float q[D];
            rand_vec(q, &seed);
            uint64_t a[10], b[10];
            if (!big) {
                size_t ne = search_ids(c, q, 0, 0, true, b);
                cr_assert_eq(ne, 10);
                /* ef = k: the k best by code, re-ranked */
                cr_assert_eq(search_ids(c, q, 10, 1, false, a), 10);
                k_only_misses += memcmp(a, b, sizeof a) != 0;
                cr_assert_eq(search_ids(c, q, 512, 1, false, a), 10);
                cr_assert_arr_eq(a, b, sizeof a, "query %d: every code re-ranked answers exactly", qi);
            } else {
                cr_assert_eq(search_ids(c, q, 50, 1, false, a), 10);
                cr_assert_eq(search_ids(c, q, 50, 5, false, b), 10);
                cr_assert_arr_eq(a, b, sizeof a, "query %d: the walk's 50 candidates re-ranked either way", qi);
            }
        }
        if (!big)
            cr_assert_gt(k_only_misses, 0, "re-ranking only the k best by code must miss on this data");
        vd_collection_unref(c);
    }
    vd_pool_destroy(pool);
}

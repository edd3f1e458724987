/* collection.c — see collection.h. */
#include "db/collection.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct vd_collection {
    vd_collection_config cfg;
    pthread_mutex_t pindex_lock; /* guards cfg.pindexes / cfg.n_pindexes growth */
    vd_shard **shards;
    vd_pool *pool; /* borrowed */
    _Atomic long refs;
};

bool vd_collection_name_valid(const char *name)
{
    size_t n = 0;
    for (; name[n]; n++) {
        char ch = name[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '_' || ch == '-';
        if (!ok || n >= VD_NAME_MAX_LEN)
            return false;
    }
    return n > 0;
}

static void destroy(vd_collection *c)
{
    for (uint32_t i = 0; c->shards && i < c->cfg.n_shards; i++)
        vd_shard_destroy(c->shards[i]);
    free(c->shards);
    for (size_t i = 0; i < c->cfg.n_pindexes; i++)
        free((char *)c->cfg.pindexes[i].field);
    pthread_mutex_destroy(&c->pindex_lock);
    free(c);
}

int vd_collection_create(vd_collection **out, const vd_collection_config *cfg, vd_pool *pool)
{
    vd_collection *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->cfg = *cfg;
    c->cfg.n_pindexes = 0;
    c->pool = pool;
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->pindex_lock, NULL);
    int rc = 0;
    for (size_t i = 0; i < cfg->n_pindexes; i++) {
        char *f = strdup(cfg->pindexes[i].field);
        if (!f) {
            rc = -ENOMEM;
            goto fail;
        }
        c->cfg.pindexes[c->cfg.n_pindexes++] = (vd_pindex_spec){f, cfg->pindexes[i].type};
    }
    c->shards = calloc(cfg->n_shards, sizeof *c->shards);
    if (!c->shards) {
        rc = -ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < cfg->n_shards; i++)
        if ((rc = vd_shard_create(&c->shards[i], cfg->dim, cfg->metric, &cfg->index, 1000003u * i + 7,
                                  pool, c->cfg.pindexes, c->cfg.n_pindexes)))
            goto fail;
    *out = c;
    return 0;
fail:
    destroy(c);
    return rc;
}

void vd_collection_ref(vd_collection *c) { atomic_fetch_add(&c->refs, 1); }

void vd_collection_unref(vd_collection *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        destroy(c);
}

const vd_collection_config *vd_collection_config_of(const vd_collection *c) { return &c->cfg; }

size_t vd_collection_pindexes(vd_collection *c, vd_pindex_spec *out, size_t cap)
{
    pthread_mutex_lock(&c->pindex_lock);
    size_t n = c->cfg.n_pindexes < cap ? c->cfg.n_pindexes : cap;
    memcpy(out, c->cfg.pindexes, n * sizeof *out);
    pthread_mutex_unlock(&c->pindex_lock);
    return n;
}

static uint32_t shard_of(const vd_collection *c, const vd_point_id *id)
{
    return (uint32_t)(vd_id_hash(id) % c->cfg.n_shards);
}

/* ---- writes: group a batch by shard, then apply the groups in parallel --- */

typedef struct upsert_job {
    vd_collection *c;
    vd_point_in *sorted;   /* points grouped by shard, batch order kept inside a group */
    size_t *start;         /* n_shards + 1 offsets into sorted */
    vd_upsert_counts *counts; /* per shard */
    int *rc;               /* per shard */
} upsert_job;

static void upsert_task(void *ctx, size_t shard)
{
    upsert_job *j = ctx;
    size_t a = j->start[shard], b = j->start[shard + 1];
    if (a < b)
        j->rc[shard] = vd_shard_upsert(j->c->shards[shard], j->sorted + a, b - a, &j->counts[shard]);
}

/* Frees the payloads a failed batch still owns. */
static void drop_payloads(vd_point_in *pts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(pts[i].payload);
        pts[i].payload = NULL;
    }
}

int vd_collection_upsert(vd_collection *c, vd_point_in *pts, size_t n, vd_upsert_counts *counts)
{
    uint32_t ns = c->cfg.n_shards;
    upsert_job j = {.c = c};
    j.sorted = malloc(n * sizeof *j.sorted);
    j.start = calloc(ns + 1, sizeof *j.start);
    j.counts = calloc(ns, sizeof *j.counts);
    j.rc = calloc(ns, sizeof *j.rc);
    uint32_t *dest = malloc(n * sizeof *dest);
    size_t *fill = calloc(ns, sizeof *fill);
    int rc = 0;
    if (!j.sorted || !j.start || !j.counts || !j.rc || !dest || !fill) {
        drop_payloads(pts, n);
        rc = -ENOMEM;
        goto done;
    }
    /* Counting sort by shard keeps the batch order within each shard, so the
     * last write of a duplicated id wins. */
    for (size_t i = 0; i < n; i++) {
        dest[i] = shard_of(c, &pts[i].id);
        j.start[dest[i] + 1]++;
    }
    for (uint32_t s = 0; s < ns; s++)
        j.start[s + 1] += j.start[s];
    for (size_t i = 0; i < n; i++) {
        j.sorted[j.start[dest[i]] + fill[dest[i]]++] = pts[i];
        pts[i].payload = NULL; /* moved into sorted */
    }
    vd_pool_run(c->pool, ns, upsert_task, &j);
    for (uint32_t s = 0; s < ns; s++) {
        counts->inserted += j.counts[s].inserted;
        counts->updated += j.counts[s].updated;
        counts->stale += j.counts[s].stale;
        if (j.rc[s] && !rc)
            rc = j.rc[s];
    }
done:
    free(fill);
    free(dest);
    free(j.sorted);
    free(j.start);
    free(j.counts);
    free(j.rc);
    return rc;
}

int vd_collection_get(vd_collection *c, const vd_point_id *id, bool with_vector, vd_point_out *out)
{
    return vd_shard_get(c->shards[shard_of(c, id)], id, with_vector, out);
}

int vd_collection_delete_ids(vd_collection *c, const vd_point_id *ids, size_t n, size_t *n_deleted)
{
    /* Deletes are cheap; one id at a time keeps each shard lock short. */
    for (size_t i = 0; i < n; i++) {
        int rc = vd_shard_delete_ids(c->shards[shard_of(c, &ids[i])], &ids[i], 1, n_deleted);
        if (rc)
            return rc;
    }
    return 0;
}

int vd_collection_delete_filter(vd_collection *c, const vd_filter *f, size_t *n_deleted)
{
    for (uint32_t s = 0; s < c->cfg.n_shards; s++) {
        int rc = vd_shard_delete_filter(c->shards[s], f, n_deleted);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- search: fan out, then merge ---------------------------------------- */

typedef struct search_job {
    vd_collection *c;
    const vd_search_req *req;
    vd_point_out *hits; /* n_shards * k */
    size_t *n_hits;     /* per shard */
    int *rc;
} search_job;

static void search_task(void *ctx, size_t shard)
{
    search_job *j = ctx;
    j->rc[shard] = vd_shard_search(j->c->shards[shard], j->req, j->hits + shard * j->req->k,
                                   &j->n_hits[shard]);
}

static int cmp_out(const void *pa, const void *pb)
{
    const vd_point_out *a = pa, *b = pb;
    return (a->key > b->key) - (a->key < b->key);
}

int vd_collection_search(vd_collection *c, const vd_search_req *req, vd_point_out **out,
                         size_t *n_out)
{
    uint32_t ns = c->cfg.n_shards;
    search_job j = {.c = c, .req = req};
    j.hits = calloc((size_t)ns * req->k, sizeof *j.hits);
    j.n_hits = calloc(ns, sizeof *j.n_hits);
    j.rc = calloc(ns, sizeof *j.rc);
    int rc = 0;
    *out = NULL;
    *n_out = 0;
    if (!j.hits || !j.n_hits || !j.rc) {
        rc = -ENOMEM;
        goto done;
    }
    vd_pool_run(c->pool, ns, search_task, &j);
    /* Compact the per-shard runs, sort by key, keep k, free the rest. */
    size_t total = 0;
    for (uint32_t s = 0; s < ns; s++) {
        if (j.rc[s] && !rc)
            rc = j.rc[s];
        for (size_t i = 0; i < j.n_hits[s]; i++)
            j.hits[total++] = j.hits[(size_t)s * req->k + i];
    }
    if (rc) {
        for (size_t i = 0; i < total; i++)
            vd_point_out_free(&j.hits[i]);
        goto done;
    }
    qsort(j.hits, total, sizeof *j.hits, cmp_out);
    size_t keep = total < req->k ? total : req->k;
    for (size_t i = keep; i < total; i++)
        vd_point_out_free(&j.hits[i]);
    *out = j.hits;
    *n_out = keep;
    j.hits = NULL;
done:
    free(j.hits);
    free(j.n_hits);
    free(j.rc);
    return rc;
}

int vd_collection_add_pindex(vd_collection *c, const char *field, vd_pindex_type type,
                             vd_errmsg *em)
{
    pthread_mutex_lock(&c->pindex_lock);
    int rc = 0;
    for (size_t i = 0; i < c->cfg.n_pindexes; i++) {
        if (strcmp(c->cfg.pindexes[i].field, field) == 0 && c->cfg.pindexes[i].type == type) {
            rc = vd_fail(em, VD_E_COLLECTION_EXISTS, "payload index '%s' (%s) already exists",
                         field, vd_pindex_type_name(type));
            goto done;
        }
    }
    if (c->cfg.n_pindexes == VD_PINDEX_MAX) {
        rc = vd_fail(em, VD_E_LIMIT_REACHED, "a collection has at most %d payload indexes",
                     VD_PINDEX_MAX);
        goto done;
    }
    vd_pindex_spec spec = {strdup(field), type};
    if (!spec.field) {
        rc = -ENOMEM;
        goto done;
    }
    for (uint32_t s = 0; s < c->cfg.n_shards && rc == 0; s++)
        rc = vd_shard_add_pindex(c->shards[s], &spec);
    if (rc) {
        /* Shards that got the index keep it; queries stay correct either way
         * because an index only speeds up what a payload scan would find. */
        free((char *)spec.field);
        goto done;
    }
    c->cfg.pindexes[c->cfg.n_pindexes++] = spec;
done:
    pthread_mutex_unlock(&c->pindex_lock);
    return rc;
}

int vd_collection_compact(vd_collection *c, double min_ratio, size_t *n_released)
{
    *n_released = 0;
    for (uint32_t s = 0; s < c->cfg.n_shards; s++) {
        size_t n = 0;
        int rc = vd_shard_compact(c->shards[s], min_ratio, &n);
        *n_released += n;
        if (rc)
            return rc;
    }
    return 0;
}

int vd_collection_stats_get(vd_collection *c, vd_collection_stats *st)
{
    *st = (vd_collection_stats){0};
    st->shards = calloc(c->cfg.n_shards, sizeof *st->shards);
    if (!st->shards)
        return -ENOMEM;
    vd_shard_stats *t = &st->total;
    for (uint32_t s = 0; s < c->cfg.n_shards; s++) {
        vd_shard_stats *x = &st->shards[s];
        vd_shard_stats_get(c->shards[s], x);
        t->n_points += x->n_points;
        t->n_slots += x->n_slots;
        t->n_free += x->n_free;
        t->vector_bytes += x->vector_bytes;
        t->id_bytes += x->id_bytes;
        t->payload_bytes += x->payload_bytes;
        t->payload_index_bytes += x->payload_index_bytes;
        t->index_bytes += x->index_bytes;
        t->n_tombstones += x->n_tombstones;
        t->n_compactions += x->n_compactions;
        t->compacting = t->compacting || x->compacting;
        t->searches_exact += x->searches_exact;
        t->searches_graph += x->searches_graph;
        t->distance_computations += x->distance_computations;
    }
    st->n_points = t->n_points;
    st->memory_bytes = t->vector_bytes + t->id_bytes + t->payload_bytes + t->payload_index_bytes +
                       t->index_bytes;
    return 0;
}

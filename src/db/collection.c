/* collection.c — see collection.h. */
#include "db/collection.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/shard.h"

struct vd_collection {
    vd_collection_config cfg;
    pthread_mutex_t pindex_lock; /* guards cfg.pindexes / cfg.n_pindexes growth */
    vd_shard **shards;
    vd_pool *pool; /* borrowed */
    _Atomic long refs;
    struct vd_write_order *order; /* owned through order_hooks; the write path's */
    const vd_write_order_hooks *order_hooks;
    vd_quality quality;
    /* The search defaults now (cfg keeps those of the creation). */
    _Atomic uint32_t ef_search, nprobe;
    _Atomic float oversampling;
    pthread_mutex_t merge_lock;      /* guards merge_free */
    struct merge_scratch *merge_free; /* searches' per-shard answers, reused */
    _Atomic uint64_t merge_allocs;    /* merge scratch made or grown */
    _Atomic uint64_t fanned_out;      /* searches whose shards ran in parallel */
    _Atomic float target_recall;      /* 0 = off */
    vd_calibration calibration;       /* its own lock */
    _Atomic uint32_t calibrated;      /* the breadth chosen for target_recall; 0 = none yet */
    /* Field names of dropped payload indexes: kept until the collection goes,
     * since vd_collection_pindexes lends them out (guarded by pindex_lock). */
    char **retired;
    size_t n_retired;
};

vd_quality *vd_collection_quality(vd_collection *c) { return &c->quality; }

struct vd_write_order *vd_collection_write_order(vd_collection *c) { return c->order; }

vd_shard *vd_collection_shard(vd_collection *c, uint32_t i) { return c->shards[i]; }

void vd_collection_foreach(vd_collection *c, vd_point_visit_fn cb, void *ctx)
{
    for (uint32_t i = 0; i < c->cfg.n_shards; i++)
        vd_shard_foreach(c->shards[i], cb, ctx);
}

int vd_collection_prepare_vector(const vd_collection_config *c, float *v)
{
    if (c->metric != VD_METRIC_COSINE)
        return 0;
    return vd_normalize(v, c->dim) == 0.0f ? VD_E_INVALID_VECTOR : 0;
}

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

/* Where a search gathers its shards' answers (n_shards × k hits), reused
 * across searches like the shards' own scratch (db/search_scratch.h). */
typedef struct merge_scratch {
    vd_point_out *hits;
    size_t hits_cap;
    size_t *n_hits; /* n_shards */
    int *rc;        /* n_shards */
    struct merge_scratch *next;
} merge_scratch;

static void merge_free(merge_scratch *m)
{
    if (m) {
        free(m->hits);
        free(m->n_hits);
        free(m->rc);
        free(m);
    }
}

static void merge_pool_destroy(vd_collection *c)
{
    while (c->merge_free) {
        merge_scratch *m = c->merge_free;
        c->merge_free = m->next;
        merge_free(m);
    }
    pthread_mutex_destroy(&c->merge_lock);
}

/* A merge scratch with room for hits answers; NULL out of memory. */
static merge_scratch *merge_get(vd_collection *c, size_t hits)
{
    pthread_mutex_lock(&c->merge_lock);
    merge_scratch *m = c->merge_free;
    if (m)
        c->merge_free = m->next;
    pthread_mutex_unlock(&c->merge_lock);
    if (!m) {
        m = calloc(1, sizeof *m);
        if (!m || !(m->n_hits = calloc(c->cfg.n_shards, sizeof *m->n_hits)) ||
            !(m->rc = calloc(c->cfg.n_shards, sizeof *m->rc))) {
            merge_free(m);
            return NULL;
        }
        atomic_fetch_add_explicit(&c->merge_allocs, 1, memory_order_relaxed);
    }
    if (m->hits_cap < hits) {
        vd_point_out *h = realloc(m->hits, hits * sizeof *h);
        if (!h) {
            merge_free(m);
            return NULL;
        }
        m->hits = h;
        m->hits_cap = hits;
        atomic_fetch_add_explicit(&c->merge_allocs, 1, memory_order_relaxed);
    }
    return m;
}

static void merge_put(vd_collection *c, merge_scratch *m)
{
    pthread_mutex_lock(&c->merge_lock);
    m->next = c->merge_free;
    c->merge_free = m;
    pthread_mutex_unlock(&c->merge_lock);
}

static void destroy(vd_collection *c)
{
    for (uint32_t i = 0; c->shards && i < c->cfg.n_shards; i++)
        vd_shard_destroy(c->shards[i]);
    free(c->shards);
    for (size_t i = 0; i < c->cfg.n_pindexes; i++)
        free((char *)c->cfg.pindexes[i].field);
    pthread_mutex_destroy(&c->pindex_lock);
    merge_pool_destroy(c);
    vd_calibration_destroy(&c->calibration);
    for (size_t i = 0; i < c->n_retired; i++)
        free(c->retired[i]);
    free(c->retired);
    vd_quality_destroy(&c->quality);
    if (c->order)
        c->order_hooks->release(c->order);
    free(c);
}

int vd_collection_create(vd_collection **out, const vd_collection_config *cfg, vd_pool *pool)
{
    return vd_collection_create_ordered(out, cfg, pool, NULL);
}

int vd_collection_create_ordered(vd_collection **out, const vd_collection_config *cfg,
                                 vd_pool *pool, const vd_write_order_hooks *hooks)
{
    vd_collection *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->cfg = *cfg;
    c->cfg.n_pindexes = 0;
    c->pool = pool;
    atomic_init(&c->refs, 1);
    atomic_init(&c->ef_search, cfg->index.ef_search);
    atomic_init(&c->nprobe, cfg->index.nprobe);
    atomic_init(&c->oversampling, cfg->oversampling);
    atomic_init(&c->target_recall, cfg->target_recall);
    atomic_init(&c->calibrated, 0);
    vd_calibration_init(&c->calibration, cfg->index.type == VD_INDEX_IVF);
    pthread_mutex_init(&c->pindex_lock, NULL);
    pthread_mutex_init(&c->merge_lock, NULL);
    vd_quality_init(&c->quality);
    int rc = 0;
    if (hooks && !(c->order = hooks->make(cfg->incarnation))) {
        rc = -ENOMEM;
        goto fail;
    }
    c->order_hooks = hooks;
    for (size_t i = 0; i < cfg->n_pindexes; i++) {
        /* One index per field (older versions accepted a second type on a
         * field, which made collection info print the key twice): the first wins. */
        bool seen = false;
        for (size_t j = 0; j < c->cfg.n_pindexes && !seen; j++)
            seen = strcmp(c->cfg.pindexes[j].field, cfg->pindexes[i].field) == 0;
        if (seen)
            continue;
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
    c->cfg.vectors_dir = NULL; /* borrowed: used only here */
    const char *dir = cfg->vectors_dir ? cfg->vectors_dir : P_tmpdir;
    for (uint32_t i = 0; i < cfg->n_shards; i++) {
        vd_shard_config sc = {
            .dim = cfg->dim,
            .metric = cfg->metric,
            .index = &cfg->index,
            .seed = 1000003u * i + 7,
            .quant = cfg->quant,
            .vectors_dir = cfg->quant && cfg->originals_on_disk ? dir : NULL,
            .pindexes = c->cfg.pindexes,
            .n_pindexes = c->cfg.n_pindexes,
            .backlog_max = cfg->backlog_max,
        };
        if ((rc = vd_shard_create(&c->shards[i], &sc, pool)))
            goto fail;
    }
    *out = c;
    return 0;
fail:
    destroy(c);
    return rc;
}

float vd_oversampling_default(vd_quant q, vd_index_type index, bool originals_on_disk)
{
    if (q != VD_QUANT_NONE && index == VD_INDEX_HNSW && !originals_on_disk)
        return 1.0f;
    return q == VD_QUANT_SQ8 ? VD_OVERSAMPLING_DEFAULT_SQ8
           : q == VD_QUANT_FP16 ? VD_OVERSAMPLING_DEFAULT_FP16 : 1.0f;
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

void vd_collection_config_now(vd_collection *c, vd_collection_config *out)
{
    *out = c->cfg;
    out->n_pindexes = vd_collection_pindexes(c, out->pindexes, VD_PINDEX_MAX);
    out->index.ef_search = atomic_load_explicit(&c->ef_search, memory_order_relaxed);
    out->index.nprobe = atomic_load_explicit(&c->nprobe, memory_order_relaxed);
    out->oversampling = atomic_load_explicit(&c->oversampling, memory_order_relaxed);
    out->target_recall = atomic_load_explicit(&c->target_recall, memory_order_relaxed);
}

float vd_collection_target_recall(vd_collection *c)
{
    return atomic_load_explicit(&c->target_recall, memory_order_relaxed);
}

void vd_collection_calibration(vd_collection *c, vd_calibration_choice *out)
{
    vd_calibration_choose(&c->calibration, vd_collection_target_recall(c), out);
}

const uint32_t *vd_collection_calibration_rungs(vd_collection *c) { return c->calibration.rungs; }

/* Sets the breadth searches use from the calibration's choice for the target now. */
static void recalibrate(vd_collection *c)
{
    vd_calibration_choice ch;
    vd_collection_calibration(c, &ch);
    atomic_store_explicit(&c->calibrated, ch.chosen ? ch.value : 0, memory_order_relaxed);
}

void vd_collection_calibration_add(vd_collection *c, const uint32_t *found, uint32_t k)
{
    vd_calibration_add(&c->calibration, found, k);
    recalibrate(c);
}

void vd_collection_set_search_defaults(vd_collection *c, const vd_search_defaults *d,
                                       unsigned mask)
{
    if (mask & VD_SET_EF_SEARCH)
        atomic_store_explicit(&c->ef_search, d->ef_search, memory_order_relaxed);
    if (mask & VD_SET_NPROBE)
        atomic_store_explicit(&c->nprobe, d->nprobe, memory_order_relaxed);
    if (mask & VD_SET_OVERSAMPLING)
        atomic_store_explicit(&c->oversampling, d->oversampling, memory_order_relaxed);
    if (mask & VD_SET_TARGET_RECALL) {
        atomic_store_explicit(&c->target_recall, d->target_recall, memory_order_relaxed);
        recalibrate(c); /* the window's samples stand; the choice follows the new target */
    }
}

static uint32_t shard_of(const vd_collection *c, const vd_point_id *id)
{
    return (uint32_t)(vd_id_hash(id) % c->cfg.n_shards);
}

typedef struct placement_check {
    const vd_collection *c;
    uint32_t shard;
    bool misplaced;
} placement_check;

static void check_placement(void *ctx, const vd_point_id *id, uint64_t version)
{
    (void)version;
    placement_check *p = ctx;
    p->misplaced |= shard_of(p->c, id) != p->shard;
}

int vd_collection_load_shard(vd_collection *c, uint32_t i, const uint8_t *data, size_t len,
                             uint64_t lsn)
{
    int rc = vd_shard_load(c->shards[i], data, len, lsn);
    if (rc)
        return rc;
    placement_check p = {.c = c, .shard = i};
    vd_shard_foreach(c->shards[i], check_placement, &p);
    return p.misplaced ? -EINVAL : 0;
}

/* ---- writes: group a batch by shard, then apply the groups in parallel --- */

struct vd_collection_staged {
    vd_point_in *sorted;          /* points grouped by shard, batch order kept inside a group */
    size_t *start;                /* n_shards + 1 offsets into sorted */
    vd_upsert_counts *counts;     /* per shard */
    vd_shard_staged **shard_st;   /* per shard */
    int *rc;                      /* per shard */
    uint64_t lsn;
};

typedef struct upsert_job {
    vd_collection *c;
    vd_collection_staged *st;
} upsert_job;

static void stage_task(void *ctx, size_t shard)
{
    upsert_job *j = ctx;
    vd_collection_staged *st = j->st;
    size_t a = st->start[shard], b = st->start[shard + 1];
    vd_shard *s = j->c->shards[shard];
    if (a < b && !vd_shard_covers(s, st->lsn))
        st->rc[shard] = vd_shard_upsert_stage(s, st->sorted + a, b - a, &st->counts[shard],
                                              &st->shard_st[shard]);
}

static void finish_task(void *ctx, size_t shard)
{
    upsert_job *j = ctx;
    vd_collection_staged *st = j->st;
    if (st->shard_st[shard]) {
        int rc = vd_shard_upsert_finish(j->c->shards[shard], st->shard_st[shard]);
        if (!st->rc[shard])
            st->rc[shard] = rc;
    }
}

/* Frees the payloads a failed batch still owns. */
static void drop_payloads(vd_point_in *pts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(pts[i].payload);
        pts[i].payload = NULL;
    }
}

static void staged_free(vd_collection_staged *st)
{
    if (!st)
        return;
    free(st->sorted);
    free(st->start);
    free(st->counts);
    free(st->shard_st);
    free(st->rc);
    free(st);
}

int vd_collection_upsert_stage(vd_collection *c, vd_point_in *pts, size_t n, uint64_t lsn,
                               vd_upsert_counts *counts, vd_collection_staged **out)
{
    uint32_t ns = c->cfg.n_shards;
    vd_collection_staged *st = calloc(1, sizeof *st);
    uint32_t *dest = malloc((n ? n : 1) * sizeof *dest);
    size_t *fill = calloc(ns, sizeof *fill);
    if (st) {
        st->lsn = lsn;
        st->sorted = malloc((n ? n : 1) * sizeof *st->sorted);
        st->start = calloc(ns + 1, sizeof *st->start);
        st->counts = calloc(ns, sizeof *st->counts);
        st->shard_st = calloc(ns, sizeof *st->shard_st);
        st->rc = calloc(ns, sizeof *st->rc);
    }
    *out = NULL;
    if (!st || !st->sorted || !st->start || !st->counts || !st->shard_st || !st->rc || !dest ||
        !fill) {
        drop_payloads(pts, n);
        staged_free(st);
        free(dest);
        free(fill);
        return -ENOMEM;
    }
    /* Counting sort by shard keeps the batch order within each shard, so the
     * last write of a duplicated id wins. */
    for (size_t i = 0; i < n; i++) {
        dest[i] = shard_of(c, &pts[i].id);
        st->start[dest[i] + 1]++;
    }
    for (uint32_t s = 0; s < ns; s++)
        st->start[s + 1] += st->start[s];
    for (size_t i = 0; i < n; i++) {
        st->sorted[st->start[dest[i]] + fill[dest[i]]++] = pts[i];
        pts[i].payload = NULL; /* moved into sorted */
    }
    free(fill);
    free(dest);
    upsert_job j = {c, st};
    vd_pool_run(c->pool, ns, stage_task, &j);
    int rc = 0;
    for (uint32_t s = 0; s < ns; s++) {
        counts->inserted += st->counts[s].inserted;
        counts->updated += st->counts[s].updated;
        counts->stale += st->counts[s].stale;
        counts->missing += st->counts[s].missing;
        if (st->rc[s] && !rc)
            rc = st->rc[s];
    }
    /* Points of shards the snapshot covers were skipped: free their payloads. */
    drop_payloads(st->sorted, n);
    *out = st;
    return rc;
}

int vd_collection_upsert_finish(vd_collection *c, vd_collection_staged *st)
{
    if (!st)
        return -ENOMEM;
    upsert_job j = {c, st};
    vd_pool_run(c->pool, c->cfg.n_shards, finish_task, &j);
    int rc = 0;
    for (uint32_t s = 0; s < c->cfg.n_shards; s++)
        if (st->rc[s] && !rc)
            rc = st->rc[s];
    staged_free(st);
    return rc;
}

int vd_collection_upsert(vd_collection *c, vd_point_in *pts, size_t n, vd_upsert_counts *counts)
{
    vd_collection_staged *st;
    int rc = vd_collection_upsert_stage(c, pts, n, 0, counts, &st);
    int rc2 = vd_collection_upsert_finish(c, st);
    return rc ? rc : rc2;
}

bool vd_collection_holds(vd_collection *c, const vd_point_id *id)
{
    return vd_shard_holds(c->shards[shard_of(c, id)], id);
}

int vd_collection_get(vd_collection *c, const vd_point_id *id, bool with_vector, vd_point_out *out)
{
    return vd_shard_get(c->shards[shard_of(c, id)], id, with_vector, out);
}

int vd_collection_delete_ids(vd_collection *c, const vd_point_id *ids, size_t n, uint64_t lsn,
                             size_t *n_deleted)
{
    /* Deletes are cheap; one id at a time keeps each shard lock short. */
    for (size_t i = 0; i < n; i++) {
        vd_shard *s = c->shards[shard_of(c, &ids[i])];
        if (vd_shard_covers(s, lsn))
            continue;
        int rc = vd_shard_delete_ids(s, &ids[i], 1, n_deleted);
        if (rc)
            return rc;
    }
    return 0;
}

int vd_collection_delete_filter(vd_collection *c, const vd_filter *f, uint64_t lsn,
                                size_t *n_deleted)
{
    for (uint32_t s = 0; s < c->cfg.n_shards; s++) {
        if (vd_shard_covers(c->shards[s], lsn))
            continue;
        int rc = vd_shard_delete_filter(c->shards[s], f, n_deleted);
        if (rc)
            return rc;
    }
    return 0;
}

int vd_collection_edit_payload(vd_collection *c, const vd_payload_edit *e, const vd_point_id *ids,
                               size_t n, const vd_filter *f, uint64_t lsn, size_t *n_edited)
{
    for (uint32_t s = 0; f && s < c->cfg.n_shards; s++) {
        if (vd_shard_covers(c->shards[s], lsn))
            continue;
        int rc = vd_shard_edit_payload(c->shards[s], e, NULL, 0, f, n_edited);
        if (rc)
            return rc;
    }
    /* One id at a time, as deletes: each shard lock stays short. */
    for (size_t i = 0; !f && i < n; i++) {
        vd_shard *s = c->shards[shard_of(c, &ids[i])];
        if (vd_shard_covers(s, lsn))
            continue;
        int rc = vd_shard_edit_payload(s, e, &ids[i], 1, NULL, n_edited);
        if (rc)
            return rc;
    }
    return 0;
}

int vd_collection_count(vd_collection *c, const vd_filter *f, size_t *n)
{
    *n = 0;
    for (uint32_t s = 0; s < c->cfg.n_shards; s++) {
        size_t k = 0;
        int rc = vd_shard_count(c->shards[s], f, &k);
        if (rc)
            return rc;
        *n += k;
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

/* Multiply-adds one shard of n points spends on req (a rough model: the
 * vectors a walk, a probe or a scan measures, times dim). */
static double shard_work(const vd_collection *c, const vd_search_req *req, size_t n)
{
    double dim = c->cfg.dim, k = req->k > req->ef ? req->k : req->ef;
    double work;
    if (req->exact || c->cfg.index.type == VD_INDEX_FLAT)
        work = (double)n * dim;
    else if (c->cfg.index.type == VD_INDEX_HNSW) /* about 2 hops per candidate, 2m links each */
        work = k * 4.0 * c->cfg.index.m * dim;
    else { /* IVF: the probed share of the points */
        double lists = sqrt((double)n > 1 ? (double)n : 1), probe = req->nprobe && req->nprobe != VD_IVF_NPROBE_AUTO
                                                                        ? req->nprobe
                                                                        : lists / 16 + 8;
        work = (probe < lists ? probe / lists : 1.0) * (double)n * dim;
    }
    if (req->filter)
        work += (double)n * 8; /* the filter's bitmap */
    return work;
}

/* Whether to search the shards in parallel (see VD_FANOUT_MIN_WORK). */
static bool fan_out_pays(vd_collection *c, const vd_search_req *req, unsigned in_flight)
{
    uint32_t ns = c->cfg.n_shards;
    unsigned cores = vd_pool_threads(c->pool) + 1;
    if (ns < 2 || req->on_caller || cores < 2 || (size_t)in_flight * (ns < cores ? ns : cores) > cores)
        return false;
    size_t n = 0;
    for (uint32_t s = 0; s < ns; s++) {
        size_t k = 0;
        (void)vd_shard_count(c->shards[s], NULL, &k);
        n += k;
    }
    return shard_work(c, req, n / ns) >= VD_FANOUT_MIN_WORK;
}

/* req with the collection's defaults filled in: oversampling, ef (or the
 * calibrated one) shared by the shards, nprobe. */
static void with_defaults(vd_collection *c, const vd_search_req *req, vd_search_req *out)
{
    uint32_t ns = c->cfg.n_shards;
    *out = *req;
    if (out->oversampling <= 0) {
        float o = atomic_load_explicit(&c->oversampling, memory_order_relaxed);
        out->oversampling =
            o > 0 ? o : vd_oversampling_default(c->cfg.quant, c->cfg.index.type, c->cfg.originals_on_disk);
    }
    /* A target recall, once calibrated, gives the default breadth. */
    uint32_t calibrated = atomic_load_explicit(&c->target_recall, memory_order_relaxed) > 0
                              ? atomic_load_explicit(&c->calibrated, memory_order_relaxed)
                              : 0;
    bool ivf = c->cfg.index.type == VD_INDEX_IVF;
    if (!out->ef)
        out->ef = calibrated && !ivf ? calibrated : atomic_load_explicit(&c->ef_search, memory_order_relaxed);
    /* ef is the collection's breadth: its shards share it (each walks at
     * least k), so the same ef costs and finds about the same whatever the
     * shard count (bench/fanout.py: recall@10 0.985 / 0.998 / 1.000 at ef 16 /
     * 32 / 64 for one shard and for two). */
    if (ns > 1) {
        uint32_t e = (out->ef + ns - 1) / ns;
        out->ef = e > out->k ? e : out->k;
    }
    if (!out->nprobe) {
        uint32_t p = calibrated && ivf ? calibrated : atomic_load_explicit(&c->nprobe, memory_order_relaxed);
        out->nprobe = p ? p : VD_IVF_NPROBE_AUTO;
    }
}

double vd_collection_search_work(vd_collection *c, const vd_search_req *req)
{
    vd_search_req r;
    with_defaults(c, req, &r);
    double dim = c->cfg.dim, work = 0;
    for (uint32_t s = 0; s < c->cfg.n_shards; s++) {
        size_t n = 0;
        (void)vd_shard_count(c->shards[s], NULL, &n);
        if (r.filter) /* the planner may scan every match: at most every point */
            work += (double)n * (dim + 8);
        else /* the not-yet-indexed tail is scanned exactly */
            work += shard_work(c, &r, n) + (double)vd_shard_backlog(c->shards[s]) * dim;
    }
    return work;
}

int vd_collection_search(vd_collection *c, const vd_search_req *req, vd_point_out **out,
                         size_t *n_out)
{
    uint32_t ns = c->cfg.n_shards;
    vd_search_req with_default;
    with_defaults(c, req, &with_default);
    req = &with_default;
    *out = NULL;
    *n_out = 0;
    merge_scratch *m = merge_get(c, (size_t)ns * req->k);
    if (!m)
        return -ENOMEM;
    search_job j = {.c = c, .req = req, .hits = m->hits, .n_hits = m->n_hits, .rc = m->rc};
    unsigned in_flight = vd_pool_enter(c->pool);
    if (fan_out_pays(c, req, in_flight > req->load ? in_flight : req->load)) {
        atomic_fetch_add_explicit(&c->fanned_out, 1, memory_order_relaxed);
        vd_pool_run(c->pool, ns, search_task, &j);
    } else {
        for (uint32_t s = 0; s < ns; s++)
            search_task(&j, s);
    }
    vd_pool_leave(c->pool);
    /* Compact the per-shard runs, sort by key, keep k (the answer), free the rest. */
    int rc = 0;
    size_t total = 0;
    for (uint32_t s = 0; s < ns; s++) {
        if (j.rc[s] && !rc)
            rc = j.rc[s];
        for (size_t i = 0; i < j.n_hits[s]; i++)
            j.hits[total++] = j.hits[(size_t)s * req->k + i];
    }
    size_t keep = total < req->k ? total : req->k;
    if (!rc) {
        qsort(j.hits, total, sizeof *j.hits, cmp_out);
        if (!(*out = malloc((keep ? keep : 1) * sizeof **out)))
            rc = -ENOMEM;
    }
    for (size_t i = rc ? 0 : keep; i < total; i++)
        vd_point_out_free(&j.hits[i]);
    if (!rc) {
        memcpy(*out, j.hits, keep * sizeof **out);
        *n_out = keep;
    }
    merge_put(c, m);
    return rc;
}

static int check_pindex(vd_collection *c, const char *field, vd_pindex_type type, vd_errmsg *em)
{
    for (size_t i = 0; i < c->cfg.n_pindexes; i++)
        if (strcmp(c->cfg.pindexes[i].field, field) == 0)
            return vd_fail(em, VD_E_COLLECTION_EXISTS,
                           "payload index '%s' (%s) already exists%s; a field has one index", field,
                           vd_pindex_type_name(c->cfg.pindexes[i].type),
                           c->cfg.pindexes[i].type == type ? "" : ", of another type");
    if (c->cfg.n_pindexes == VD_PINDEX_MAX)
        return vd_fail(em, VD_E_LIMIT_REACHED, "a collection has at most %d payload indexes",
                       VD_PINDEX_MAX);
    return 0;
}

int vd_collection_check_pindex(vd_collection *c, const char *field, vd_pindex_type type,
                               vd_errmsg *em)
{
    pthread_mutex_lock(&c->pindex_lock);
    int rc = check_pindex(c, field, type, em);
    pthread_mutex_unlock(&c->pindex_lock);
    return rc;
}

int vd_collection_add_pindex(vd_collection *c, const char *field, vd_pindex_type type,
                             vd_errmsg *em)
{
    pthread_mutex_lock(&c->pindex_lock);
    int rc = check_pindex(c, field, type, em);
    if (rc)
        goto done;
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

bool vd_collection_has_pindex(vd_collection *c, const char *field)
{
    pthread_mutex_lock(&c->pindex_lock);
    bool has = false;
    for (size_t i = 0; i < c->cfg.n_pindexes && !has; i++)
        has = strcmp(c->cfg.pindexes[i].field, field) == 0;
    pthread_mutex_unlock(&c->pindex_lock);
    return has;
}

int vd_collection_drop_pindex(vd_collection *c, const char *field, vd_errmsg *em)
{
    pthread_mutex_lock(&c->pindex_lock);
    size_t i = 0;
    while (i < c->cfg.n_pindexes && strcmp(c->cfg.pindexes[i].field, field) != 0)
        i++;
    int rc = 0;
    char **retired = i < c->cfg.n_pindexes ? realloc(c->retired, (c->n_retired + 1) * sizeof *retired) : NULL;
    if (i == c->cfg.n_pindexes)
        rc = vd_fail(em, VD_E_NOT_FOUND, "collection '%s' has no payload index on '%.200s'", c->cfg.name, field);
    else if (!retired)
        rc = -ENOMEM;
    if (!rc) {
        c->retired = retired;
        for (uint32_t s = 0; s < c->cfg.n_shards; s++)
            vd_shard_drop_pindex(c->shards[s], field);
        c->retired[c->n_retired++] = (char *)c->cfg.pindexes[i].field;
        memmove(&c->cfg.pindexes[i], &c->cfg.pindexes[i + 1], (c->cfg.n_pindexes - i - 1) * sizeof *c->cfg.pindexes);
        c->cfg.n_pindexes--;
    }
    pthread_mutex_unlock(&c->pindex_lock);
    return rc;
}

size_t vd_collection_build(vd_collection *c, size_t max_slots, vd_pool *pool)
{
    size_t built = 0;
    for (uint32_t s = 0; s < c->cfg.n_shards; s++) {
        built += vd_shard_build(c->shards[s], max_slots, pool);
        vd_shard_connect(c->shards[s]); /* when due and nothing waits */
    }
    return built;
}

size_t vd_collection_backlog(vd_collection *c)
{
    size_t n = 0;
    for (uint32_t s = 0; s < c->cfg.n_shards; s++)
        n += vd_shard_backlog(c->shards[s]);
    return n;
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

int vd_collection_train(vd_collection *c, _Atomic bool *cancel, uint32_t *n_trained)
{
    *n_trained = 0;
    for (uint32_t s = 0; s < c->cfg.n_shards; s++) {
        bool trained = false;
        int rc = vd_shard_train(c->shards[s], cancel, &trained);
        *n_trained += trained;
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
        t->vector_disk_bytes += x->vector_disk_bytes;
        t->code_bytes += x->code_bytes;
        t->id_bytes += x->id_bytes;
        t->payload_bytes += x->payload_bytes;
        t->payload_index_bytes += x->payload_index_bytes;
        t->index_bytes += x->index_bytes;
        t->n_tombstones += x->n_tombstones;
        t->n_backlog += x->n_backlog;
        t->n_built += x->n_built;
        t->n_linked += x->n_linked;
        t->n_compactions += x->n_compactions;
        t->compacting = t->compacting || x->compacting;
        t->searches_exact += x->searches_exact;
        t->searches_graph += x->searches_graph;
        t->searches_probe += x->searches_probe;
        t->searches_tenant += x->searches_tenant;
        t->distance_computations += x->distance_computations;
        t->search_allocations += x->search_allocations;
        t->trainable = x->trainable;
        t->trained = (s == 0 || t->trained) && x->trained; /* every shard */
        t->training = t->training || x->training;
        t->n_lists += x->n_lists;
        t->trained_points += x->trained_points;
    }
    t->search_allocations += atomic_load_explicit(&c->merge_allocs, memory_order_relaxed);
    t->searches_fanned_out = atomic_load_explicit(&c->fanned_out, memory_order_relaxed);
    st->n_points = t->n_points;
    st->memory_bytes = t->vector_bytes + t->code_bytes + t->id_bytes + t->payload_bytes + t->payload_index_bytes +
                       t->index_bytes;
    return 0;
}

/*
 * shard.c — see shard.h.
 *
 * Invariants (under the write lock): a slot is alive iff its bit in `alive`
 * is set, iff the idmap maps its id to it, iff the payload indexes and the
 * vector index hold it. Free slots have no id, no payload and are on `free`.
 */
#include "db/shard.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "db/idmap.h"
#include "db/vecstore.h"
#include "vectord/snapshot.h"
#include "vectord/kmeans.h"
#include "util/bytes.h"
#include "util/bitset.h"
#include "vectord/index.h"

typedef struct slot_meta {
    vd_point_id id; /* str owned */
    uint64_t version;
    cJSON *payload; /* owned, may be NULL */
    uint32_t payload_bytes;
} slot_meta;

struct vd_shard {
    pthread_rwlock_t lock; /* guards everything below */
    uint32_t dim;
    vd_metric metric;
    vd_vecstore vs;  /* originals and codes by slot, room for cap */
    slot_meta *meta; /* cap */
    uint64_t *alive; /* vd_bitset_words(cap): searchable points */
    uint64_t *dead;  /* vd_bitset_words(cap): tombstones awaiting compaction */
    /* vd_bitset_words(cap): stored by an upsert's stage whose finish has not
     * run yet. Compaction leaves these alone even when they are tombstones
     * (killed while pending): the finish still names the slot, and a release
     * and reuse in between would hand another point's slot to it. */
    uint64_t *pending;
    uint32_t n_slots, cap, n_alive;
    uint32_t n_tombstones; /* dead slots kept by an index with keeps_slots */
    uint32_t n_staged;     /* stored slots an upsert has still to insert into the graph */
    uint64_t snapshot_lsn; /* the last WAL record the loaded snapshot holds (0 = none) */
    uint64_t seed;         /* reproducible index levels and training draws */
    uint64_t n_trainings;
    uint32_t *free_slots;
    uint32_t n_free, free_cap;
    vd_idmap idmap;
    vd_pindex **pindexes;
    size_t n_pindexes;
    vd_index *index;
    vd_pool *pool; /* borrowed: parallel graph inserts */
    size_t id_bytes, payload_bytes;
    uint64_t n_compactions;
    _Atomic bool compacting; /* a compaction is running (for status reports) */
    pthread_mutex_t compact_lock; /* one compaction at a time; not held with `lock` waiting */
};

static const vd_point_id *id_of(void *ctx, uint32_t slot)
{
    return &((vd_shard *)ctx)->meta[slot].id;
}

static const cJSON *payload_of(const void *ctx, uint32_t slot)
{
    return ((const vd_shard *)ctx)->meta[slot].payload;
}

int vd_shard_create(vd_shard **out, const vd_shard_config *cfg, vd_pool *pool)
{
    vd_shard *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    pthread_rwlock_init(&s->lock, NULL);
    pthread_mutex_init(&s->compact_lock, NULL);
    s->pool = pool;
    s->dim = cfg->dim;
    s->metric = cfg->metric;
    s->seed = cfg->seed;
    vd_idmap_init(&s->idmap, id_of, s);
    int rc = vd_vecstore_init(&s->vs, cfg->dim, cfg->quant, cfg->vectors_dir);
    if (!rc)
        rc = vd_index_create(cfg->index, cfg->seed, &s->index);
    const vd_pindex_spec *specs = cfg->pindexes;
    size_t n_specs = cfg->n_pindexes;
    for (size_t i = 0; rc == 0 && i < n_specs; i++)
        rc = vd_shard_add_pindex(s, &specs[i]);
    if (rc) {
        vd_shard_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void release_slot_data(vd_shard *s, uint32_t slot)
{
    slot_meta *m = &s->meta[slot];
    if (m->id.kind == VD_ID_STR) {
        s->id_bytes -= m->id.len;
        free((char *)m->id.str);
    }
    s->payload_bytes -= m->payload_bytes;
    cJSON_Delete(m->payload);
    *m = (slot_meta){0};
}

void vd_shard_destroy(vd_shard *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->n_slots; i++)
        if (s->meta[i].id.kind != 0)
            release_slot_data(s, i);
    for (size_t i = 0; i < s->n_pindexes; i++)
        vd_pindex_destroy(s->pindexes[i]);
    free(s->pindexes);
    if (s->index)
        s->index->ops->destroy(s->index);
    vd_idmap_destroy(&s->idmap);
    vd_vecstore_destroy(&s->vs);
    free(s->meta);
    free(s->alive);
    free(s->dead);
    free(s->pending);
    free(s->free_slots);
    pthread_mutex_destroy(&s->compact_lock);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

static vd_vector_view view_of(const vd_shard *s)
{
    return (vd_vector_view){
        .vecs = s->vs.ram,
        .dim = s->dim,
        .n_slots = s->n_slots,
        .metric = s->metric,
        .dead = s->dead,
        .quant = s->vs.quant,
        .codes = s->vs.codes,
        .code_size = s->vs.code_size,
    };
}

/* Makes room for `extra` more slots beyond n_slots. -ENOMEM, or -ENOSPC /
 * -EIO from originals on disk. */
static int reserve(vd_shard *s, size_t extra)
{
    size_t need = (size_t)s->n_slots + extra;
    if (need <= s->cap)
        return 0;
    if (need > UINT32_MAX - 1)
        return -ENOMEM;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > UINT32_MAX - 1)
        cap = UINT32_MAX - 1;
    int rc = vd_vecstore_reserve(&s->vs, (uint32_t)cap);
    if (rc)
        return rc;
    slot_meta *m = realloc(s->meta, cap * sizeof *m);
    if (!m)
        return -ENOMEM;
    memset(m + s->cap, 0, (cap - s->cap) * sizeof *m);
    s->meta = m;
    size_t old_w = vd_bitset_words(s->cap), new_w = vd_bitset_words(cap);
    uint64_t *a = realloc(s->alive, new_w * sizeof *a);
    if (!a)
        return -ENOMEM;
    memset(a + old_w, 0, (new_w - old_w) * sizeof *a);
    s->alive = a;
    uint64_t *d = realloc(s->dead, new_w * sizeof *d);
    if (!d)
        return -ENOMEM;
    memset(d + old_w, 0, (new_w - old_w) * sizeof *d);
    s->dead = d;
    uint64_t *pe = realloc(s->pending, new_w * sizeof *pe);
    if (!pe)
        return -ENOMEM;
    memset(pe + old_w, 0, (new_w - old_w) * sizeof *pe);
    s->pending = pe;
    s->cap = (uint32_t)cap;
    return 0;
}

static int index_payload(vd_shard *s, uint32_t slot)
{
    for (size_t i = 0; i < s->n_pindexes; i++) {
        int rc = vd_pindex_add(s->pindexes[i], slot, s->meta[slot].payload);
        if (rc) {
            while (i-- > 0)
                vd_pindex_remove(s->pindexes[i], slot, s->meta[slot].payload);
            return rc;
        }
    }
    return 0;
}

static void unindex_payload(vd_shard *s, uint32_t slot)
{
    for (size_t i = 0; i < s->n_pindexes; i++)
        vd_pindex_remove(s->pindexes[i], slot, s->meta[slot].payload);
}

static void set_payload(vd_shard *s, uint32_t slot, cJSON *payload)
{
    slot_meta *m = &s->meta[slot];
    s->payload_bytes -= m->payload_bytes;
    cJSON_Delete(m->payload);
    m->payload = payload;
    m->payload_bytes = payload ? (uint32_t)vd_payload_bytes(payload) : 0;
    s->payload_bytes += m->payload_bytes;
}

/* Writes the point's vector, version and payload into slot (taking the
 * payload, even on failure). -ENOSPC / -EIO from originals on disk. */
static int write_point(vd_shard *s, uint32_t slot, vd_point_in *p)
{
    int rc = vd_vecstore_put(&s->vs, slot, p->vector);
    s->meta[slot].version = p->has_version ? p->version : 0;
    set_payload(s, slot, p->payload);
    p->payload = NULL;
    return rc;
}

/* Replaces the vector and payload of a live slot in place (indexes that do
 * not keep slots only). */
static int update_point(vd_shard *s, uint32_t slot, vd_point_in *p)
{
    s->index->ops->remove(s->index, slot);
    unindex_payload(s, slot);
    int rc = write_point(s, slot, p);
    if (!rc)
        rc = index_payload(s, slot);
    vd_vector_view v = view_of(s);
    if (!rc)
        rc = s->index->ops->insert(s->index, &v, slot);
    return rc;
}

/* Takes a slot and stores the point's data in it: id, vector, version,
 * payload, id map, payload indexes. The slot is not alive and not in the
 * vector index yet. The caller reserved room for one more slot and one more
 * free-list entry. */
static int store_point(vd_shard *s, uint64_t hash, vd_point_in *p, uint32_t *out)
{
    uint32_t slot = s->n_free ? s->free_slots[--s->n_free] : s->n_slots++;
    slot_meta *m = &s->meta[slot];
    int rc = -ENOMEM;
    m->id = p->id;
    if (p->id.kind == VD_ID_STR) {
        char *copy = malloc(p->id.len + 1);
        if (!copy)
            goto fail_slot;
        memcpy(copy, p->id.str, p->id.len);
        copy[p->id.len] = 0;
        m->id.str = copy;
        s->id_bytes += p->id.len;
    }
    if ((rc = write_point(s, slot, p)))
        goto fail_data;
    rc = -ENOMEM;
    if (vd_idmap_insert(&s->idmap, hash, slot) != 0)
        goto fail_data;
    if (index_payload(s, slot) != 0)
        goto fail_map;
    *out = slot;
    return 0;
fail_map:
    vd_idmap_remove(&s->idmap, &m->id, hash);
fail_data:
    release_slot_data(s, slot);
fail_slot:
    *m = (slot_meta){0};
    s->free_slots[s->n_free++] = slot; /* the vector index never saw it */
    return rc;
}

static void activate(vd_shard *s, uint32_t slot)
{
    vd_bit_set(s->alive, slot);
    s->n_alive++;
}

/* Takes a stored slot (alive or still pending) out of the shard. With an index
 * that keeps slots it becomes a tombstone until compaction; otherwise it goes
 * straight to the free list (room reserved by the caller). */
static void kill_slot(vd_shard *s, uint32_t slot, uint64_t hash)
{
    s->index->ops->remove(s->index, slot);
    unindex_payload(s, slot);
    vd_idmap_remove(&s->idmap, &s->meta[slot].id, hash);
    release_slot_data(s, slot);
    if (vd_bit_test(s->alive, slot)) {
        vd_bit_clear(s->alive, slot);
        s->n_alive--;
    }
    if (s->index->ops->keeps_slots) {
        vd_bit_set(s->dead, slot);
        s->n_tombstones++;
    } else {
        s->free_slots[s->n_free++] = slot;
    }
}

/* Grows the free list so that `extra` more slots fit. */
static int reserve_free(vd_shard *s, size_t extra)
{
    size_t need = (size_t)s->n_free + extra;
    if (need <= s->free_cap)
        return 0;
    size_t cap = s->free_cap ? s->free_cap : 16;
    while (cap < need)
        cap *= 2;
    uint32_t *f = realloc(s->free_slots, cap * sizeof *f);
    if (!f)
        return -ENOMEM;
    s->free_slots = f;
    s->free_cap = (uint32_t)cap;
    return 0;
}

static void drop_payload(vd_point_in *p)
{
    cJSON_Delete(p->payload);
    p->payload = NULL;
}

/* Graph insertion of the pending slots, run under the read lock. */
typedef struct insert_job {
    vd_shard *s;
    const vd_vector_view *v;
    const uint32_t *slots;
    int *rc;
} insert_job;

static void insert_task(void *ctx, size_t i)
{
    insert_job *j = ctx;
    uint32_t slot = j->slots[i];
    /* A later write may already have replaced the point (dead bit, set under
     * the write lock, is stable while we hold the read lock). */
    if (!vd_bit_test(j->s->dead, slot))
        j->rc[i] = j->s->index->ops->insert(j->s->index, j->v, slot);
}

/* An upsert fails with -ENOMEM, or -ENOSPC / -EIO from originals on disk. */
static int upsert_rc(int rc)
{
    return rc == 0 || rc == -ENOSPC || rc == -EIO ? rc : -ENOMEM;
}

struct vd_shard_staged {
    uint32_t *pending; /* slots stored by the stage, to insert into the graph */
    int *pending_rc;
    size_t n_pending;
    int rc;
};

int vd_shard_upsert_stage(vd_shard *s, vd_point_in *pts, size_t n, vd_upsert_counts *counts,
                          vd_shard_staged **out)
{
    bool deferred = s->index->ops->keeps_slots; /* index work outside the write lock */
    vd_shard_staged *st = calloc(1, sizeof *st);
    if (st && deferred) {
        st->pending = malloc(n * sizeof *st->pending);
        st->pending_rc = calloc(n, sizeof *st->pending_rc);
    }
    int rc = (!st || (deferred && (!st->pending || !st->pending_rc))) ? -ENOMEM : 0;

    /* Write lock: version checks, storage, tombstones of replaced points.
     * With a flat index this is the whole job. */
    pthread_rwlock_wrlock(&s->lock);
    if (!rc)
        rc = reserve(s, n);
    if (!rc)
        rc = s->index->ops->reserve(s->index, s->cap);
    if (!rc)
        rc = reserve_free(s, 2 * n + 1); /* a failed store and a kill per point */
    for (size_t i = 0; i < n; i++) {
        vd_point_in *p = &pts[i];
        if (rc) {
            drop_payload(p);
            continue;
        }
        uint64_t h = vd_id_hash(&p->id);
        uint32_t slot;
        bool exists = vd_idmap_find(&s->idmap, &p->id, h, &slot);
        if (exists && p->has_version && p->version < s->meta[slot].version) {
            drop_payload(p);
            counts->stale++;
            continue;
        }
        if (exists && !deferred) {
            rc = update_point(s, slot, p);
            counts->updated += rc == 0;
            if (rc) /* half replaced: take the point out (the WAL still holds the write) */
                kill_slot(s, slot, h);
            continue;
        }
        if (exists)
            kill_slot(s, slot, h); /* the graph cannot move a node: replace it */
        if ((rc = store_point(s, h, p, &slot)))
            continue;
        if (deferred) {
            st->pending[st->n_pending++] = slot;
            vd_bit_set(s->pending, slot);
            s->n_staged++;
        } else {
            vd_vector_view v = view_of(s);
            if ((rc = s->index->ops->insert(s->index, &v, slot))) {
                kill_slot(s, slot, h);
                continue;
            }
            activate(s, slot);
        }
        if (exists)
            counts->updated++;
        else
            counts->inserted++;
    }
    pthread_rwlock_unlock(&s->lock);
    if (st)
        st->rc = rc;
    *out = st;
    return upsert_rc(rc);
}

int vd_shard_upsert_finish(vd_shard *s, vd_shard_staged *st)
{
    if (!st)
        return -ENOMEM;
    int rc = st->rc;
    if (st->n_pending) {
        /* Read lock: graph insertion beside searches, in parallel. */
        pthread_rwlock_rdlock(&s->lock);
        vd_vector_view v = view_of(s);
        insert_job job = {s, &v, st->pending, st->pending_rc};
        if (s->index->ops->concurrent_insert)
            vd_pool_run(s->pool, st->n_pending, insert_task, &job);
        else
            for (size_t i = 0; i < st->n_pending; i++)
                insert_task(&job, i);
        pthread_rwlock_unlock(&s->lock);

        /* Write lock: make the new points visible. */
        pthread_rwlock_wrlock(&s->lock);
        for (size_t i = 0; i < st->n_pending; i++) {
            uint32_t slot = st->pending[i];
            s->n_staged--;
            vd_bit_clear(s->pending, slot);
            if (vd_bit_test(s->dead, slot))
                continue; /* replaced or deleted meanwhile */
            if (st->pending_rc[i]) {
                if (!rc)
                    rc = st->pending_rc[i];
                kill_slot(s, slot, vd_id_hash(&s->meta[slot].id));
                continue;
            }
            activate(s, slot);
        }
        pthread_rwlock_unlock(&s->lock);
    }
    free(st->pending);
    free(st->pending_rc);
    free(st);
    return upsert_rc(rc);
}

int vd_shard_upsert(vd_shard *s, vd_point_in *pts, size_t n, vd_upsert_counts *counts)
{
    vd_shard_staged *st;
    int rc = vd_shard_upsert_stage(s, pts, n, counts, &st);
    int rc2 = vd_shard_upsert_finish(s, st);
    return rc ? rc : rc2;
}

static int fill_out(const vd_shard *s, uint32_t slot, bool with_payload, bool with_vector,
                    vd_point_out *out)
{
    const slot_meta *m = &s->meta[slot];
    *out = (vd_point_out){.id = m->id, .version = m->version, .dim = s->dim};
    if (m->id.kind == VD_ID_STR) {
        out->id_buf = malloc(m->id.len + 1);
        if (!out->id_buf)
            return -ENOMEM;
        memcpy(out->id_buf, m->id.str, m->id.len + 1);
        out->id.str = out->id_buf;
    }
    if (with_payload && m->payload) {
        out->payload = cJSON_Duplicate(m->payload, 1);
        if (!out->payload)
            goto fail;
    }
    if (with_vector) {
        out->vector = malloc(s->dim * sizeof(float));
        if (!out->vector)
            goto fail;
        const float *x = vd_vecstore_get(&s->vs, slot, out->vector);
        if (!x) {
            vd_point_out_free(out);
            return -EIO;
        }
        if (x != out->vector)
            memcpy(out->vector, x, s->dim * sizeof(float));
    }
    return 0;
fail:
    vd_point_out_free(out);
    return -ENOMEM;
}

void vd_point_out_free(vd_point_out *p)
{
    if (!p)
        return;
    free(p->id_buf);
    cJSON_Delete(p->payload);
    free(p->vector);
    *p = (vd_point_out){0};
}

int vd_shard_get(vd_shard *s, const vd_point_id *id, bool with_vector, vd_point_out *out)
{
    uint32_t slot;
    int rc = VD_E_POINT_NOT_FOUND;
    pthread_rwlock_rdlock(&s->lock);
    /* A point still being indexed (not alive yet) is not visible. */
    if (vd_idmap_find(&s->idmap, id, vd_id_hash(id), &slot) && vd_bit_test(s->alive, slot))
        rc = fill_out(s, slot, true, with_vector, out);
    pthread_rwlock_unlock(&s->lock);
    return rc;
}


/* A point that exists for a write that follows it in the log: alive, or
 * stored by an upsert whose finish has not run yet (staged; its write came
 * first, so a delete logged after it must take it out). */
static bool is_live(const vd_shard *s, uint32_t slot)
{
    return vd_bit_test(s->alive, slot) || (vd_bit_test(s->pending, slot) && !vd_bit_test(s->dead, slot));
}

int vd_shard_delete_ids(vd_shard *s, const vd_point_id *ids, size_t n, size_t *n_deleted)
{
    pthread_rwlock_wrlock(&s->lock);
    int rc = reserve_free(s, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint64_t h = vd_id_hash(&ids[i]);
        uint32_t slot;
        if (vd_idmap_find(&s->idmap, &ids[i], h, &slot) && is_live(s, slot)) {
            kill_slot(s, slot, h);
            (*n_deleted)++;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

static vd_filter_source filter_source(const vd_shard *s)
{
    return (vd_filter_source){
        .n_slots = s->n_slots,
        .alive = s->alive,
        .payload_of = payload_of,
        .ctx = s,
        .indexes = s->pindexes,
        .n_indexes = s->n_pindexes,
    };
}

int vd_shard_delete_filter(vd_shard *s, const vd_filter *f, size_t *n_deleted)
{
    pthread_rwlock_wrlock(&s->lock);
    size_t nw = vd_bitset_words(s->n_slots);
    uint64_t *match = malloc(nw * 8 + 8);
    uint64_t *live = malloc(nw * 8 + 8);
    int rc = match && live ? 0 : -ENOMEM;
    if (!rc) {
        /* Staged points count: the delete comes after their write in the log. */
        for (size_t w = 0; w < nw; w++)
            live[w] = s->alive[w] | (s->pending[w] & ~s->dead[w]);
        vd_filter_source src = filter_source(s);
        src.alive = live;
        rc = vd_filter_eval(f, &src, match);
    }
    free(live);
    if (!rc)
        rc = reserve_free(s, vd_bitset_count(match, nw));
    for (size_t i = rc ? SIZE_MAX : vd_bitset_next(match, nw, 0); i != SIZE_MAX;
         i = vd_bitset_next(match, nw, i + 1)) {
        kill_slot(s, (uint32_t)i, vd_id_hash(&s->meta[i].id));
        (*n_deleted)++;
    }
    pthread_rwlock_unlock(&s->lock);
    free(match);
    return rc;
}

/* Exact keys of the allowed slots from the originals (RAM or disk) into out:
 * an exact search of a quantized shard. 0 or -EIO. */
static int scan_originals(const vd_shard *s, const vd_index_query *q, float *buf, vd_topk *out,
                          uint64_t *n)
{
    size_t nw = vd_bitset_words(s->n_slots);
    for (size_t i = vd_bitset_next(q->allowed, nw, 0); i != SIZE_MAX;
         i = vd_bitset_next(q->allowed, nw, i + 1)) {
        const float *x = vd_vecstore_get(&s->vs, (uint32_t)i, buf);
        if (!x)
            return -EIO;
        float key = vd_index_key(s->metric, q->query->f, x, s->dim);
        (*n)++;
        if (key <= q->max_key && key < vd_topk_bound(out))
            vd_topk_push(out, key, (uint32_t)i);
    }
    return 0;
}

/* Re-ranks the index's candidates by their originals into out, keeping
 * those within max_key. 0 or -EIO. */
static int rerank(const vd_shard *s, const vd_topk *cands, const float *query, float max_key,
                  float *buf, vd_topk *out)
{
    for (uint32_t i = 0; i < cands->n; i++) {
        uint32_t slot = cands->hits[i].slot;
        const float *x = vd_vecstore_get(&s->vs, slot, buf);
        if (!x)
            return -EIO;
        float key = vd_index_key(s->metric, query, x, s->dim);
        if (key <= max_key && key < vd_topk_bound(out))
            vd_topk_push(out, key, slot);
    }
    return 0;
}

/* Candidates a quantized search collects for k results. */
static uint32_t candidates_for(uint32_t k, float oversampling)
{
    double n = ceil((double)k * (oversampling >= 1.0f ? oversampling : 1.0f));
    return n > VD_RERANK_MAX ? (k > VD_RERANK_MAX ? k : VD_RERANK_MAX) : (uint32_t)n;
}

int vd_shard_search(vd_shard *s, const vd_search_req *req, vd_point_out *out, size_t *n_out)
{
    *n_out = 0;
    bool quantized = s->vs.quant != VD_QUANT_NONE;
    /* A reference search of originals on disk: an exhaustive scan of the codes, re-ranked. */
    bool codes_exhaustive = quantized && req->exact && req->reference && s->vs.on_disk;
    bool reranked = quantized && (!req->exact || codes_exhaustive);
    uint32_t n_cand = !reranked ? 0
                      : candidates_for(req->k, codes_exhaustive ? VD_REFERENCE_OVERSAMPLING
                                                                : req->oversampling);
    vd_hit *hits = malloc(req->k * sizeof *hits);
    vd_hit *cand_hits = reranked ? malloc(n_cand * sizeof *cand_hits) : NULL;
    int8_t *q8 = s->vs.quant == VD_QUANT_SQ8 ? malloc(s->dim) : NULL;
    float *buf = s->vs.on_disk ? malloc(s->dim * sizeof *buf) : NULL;
    if (!hits || (reranked && !cand_hits) || (s->vs.quant == VD_QUANT_SQ8 && !q8) ||
        (s->vs.on_disk && !buf)) {
        free(hits);
        free(cand_hits);
        free(q8);
        free(buf);
        return -ENOMEM;
    }
    vd_quant_query query;
    vd_quant_query_init(&query, s->vs.quant, s->metric, req->vector, s->dim, q8);
    uint64_t *matching = NULL;
    int rc = 0;
    pthread_rwlock_rdlock(&s->lock);
    size_t nw = vd_bitset_words(s->n_slots);
    float max_key = req->has_threshold ? vd_key_from_score(s->metric, req->score_threshold)
                                       : __builtin_inff();
    vd_index_query q = {
        .query = &query,
        .allowed = s->alive,
        .n_allowed = s->n_alive,
        /* quantized keys are approximate: the threshold applies after re-ranking */
        .max_key = quantized ? __builtin_inff() : max_key,
        .ef = req->ef,
        .nprobe = req->nprobe,
        .exact = req->exact,
        .n_distances = req->n_distances,
    };
    if (req->filter) {
        matching = malloc(nw * 8 + 8);
        if (!matching) {
            rc = -ENOMEM;
            goto done;
        }
        vd_filter_source src = filter_source(s);
        if ((rc = vd_filter_eval(req->filter, &src, matching)))
            goto done;
        q.allowed = matching;
        q.n_allowed = SIZE_MAX;
    }
    vd_topk top;
    vd_topk_init(&top, hits, req->k);
    vd_vector_view v = view_of(s);
    if (quantized && req->exact && !codes_exhaustive) {
        q.max_key = max_key;
        uint64_t n = 0;
        rc = scan_originals(s, &q, buf, &top, &n);
        if (req->n_distances)
            atomic_fetch_add_explicit(req->n_distances, n, memory_order_relaxed);
    } else if (reranked) {
        vd_topk cands;
        vd_topk_init(&cands, cand_hits, n_cand);
        rc = s->index->ops->search(s->index, &v, &q, &cands);
        if (!rc)
            rc = rerank(s, &cands, req->vector, max_key, buf, &top);
    } else {
        rc = s->index->ops->search(s->index, &v, &q, &top);
    }
    if (rc)
        goto done;
    vd_topk_sort(&top);
    for (uint32_t i = 0; i < top.n; i++) {
        if ((rc = fill_out(s, top.hits[i].slot, req->with_payload, req->with_vector, &out[i])))
            break;
        out[i].key = top.hits[i].key;
        out[i].score = vd_score_from_key(s->metric, top.hits[i].key);
        (*n_out)++;
    }
done:
    pthread_rwlock_unlock(&s->lock);
    free(matching);
    free(hits);
    free(cand_hits);
    free(q8);
    free(buf);
    return rc;
}

/* ---- training (IVF) ------------------------------------------------------------
 * Sample (read lock) → k-means (no lock) → install (write lock) → place the
 * existing points in chunks (read lock each) → swap (write lock). Searches and
 * writes go on between the steps; compact_lock keeps one such job at a time. */

/* Slots placed per hold of the read lock. */
#define VD_TRAIN_CHUNK 16384u

/* Copies n_sample vectors of alive slots, drawn evenly with a seeded offset. */
static int sample_vectors(vd_shard *s, size_t n_sample, float *out, size_t *n_out)
{
    size_t nw = vd_bitset_words(s->n_slots), n = 0;
    size_t alive = s->n_alive, stride = alive / n_sample ? alive / n_sample : 1;
    size_t skip = (size_t)((s->seed * 0x9E3779B97F4A7C15ULL + s->n_trainings) % stride), seen = 0;
    vd_vector_view v = view_of(s);
    float *buf = malloc(s->dim * sizeof *buf);
    if (!buf)
        return -ENOMEM;
    for (size_t i = s->n_slots ? vd_bitset_next(s->alive, nw, 0) : SIZE_MAX; i != SIZE_MAX && n < n_sample;
         i = vd_bitset_next(s->alive, nw, i + 1), seen++) {
        if (seen % stride != skip)
            continue;
        const float *x = vd_view_vector(&v, (uint32_t)i, buf);
        memcpy(out + n * s->dim, x, s->dim * sizeof(float));
        n++;
    }
    free(buf);
    *n_out = n;
    return 0;
}

int vd_shard_train(vd_shard *s, _Atomic bool *cancel, bool *trained)
{
    *trained = false;
    const vd_index_ops *ops = s->index->ops;
    if (!ops->train_due || pthread_mutex_trylock(&s->compact_lock) != 0)
        return 0;
    vd_train_plan plan;
    float *sample = NULL, *centroids = NULL;
    size_t n_sample = 0;
    int rc = 0;
    pthread_rwlock_rdlock(&s->lock);
    bool due = ops->train_due(s->index, s->n_alive, s->dim, &plan);
    if (due) {
        sample = malloc(plan.n_sample * s->dim * sizeof *sample);
        rc = sample ? sample_vectors(s, plan.n_sample, sample, &n_sample) : -ENOMEM;
    }
    pthread_rwlock_unlock(&s->lock);
    if (!due || rc)
        goto out;
    if (n_sample < plan.n_lists)
        plan.n_lists = (uint32_t)n_sample;
    centroids = plan.n_lists ? malloc((size_t)plan.n_lists * s->dim * sizeof *centroids) : NULL;
    if (!centroids) {
        rc = plan.n_lists ? -ENOMEM : 0;
        goto out;
    }
    rc = vd_kmeans(sample, n_sample, s->dim, plan.n_lists, VD_IVF_KMEANS_ITERS, s->metric,
                   s->seed + s->n_trainings, cancel, centroids);
    free(sample);
    sample = NULL;
    if (rc)
        goto out;
    pthread_rwlock_wrlock(&s->lock);
    rc = ops->train_begin(s->index, centroids, plan.n_lists, s->dim, s->metric);
    pthread_rwlock_unlock(&s->lock);
    centroids = NULL; /* the index owns them, even on failure */
    for (uint32_t first = 0; !rc;) {
        if (cancel && atomic_load(cancel)) {
            rc = -ECANCELED;
            break;
        }
        pthread_rwlock_rdlock(&s->lock);
        vd_vector_view v = view_of(s);
        uint32_t n_slots = s->n_slots;
        rc = ops->train_chunk(s->index, &v, first, VD_TRAIN_CHUNK);
        pthread_rwlock_unlock(&s->lock);
        if (n_slots - first <= VD_TRAIN_CHUNK)
            break;
        first += VD_TRAIN_CHUNK;
    }
    pthread_rwlock_wrlock(&s->lock);
    ops->train_finish(s->index, rc == 0);
    if (!rc)
        s->n_trainings++;
    pthread_rwlock_unlock(&s->lock);
    *trained = rc == 0;
out:
    free(sample);
    free(centroids);
    pthread_mutex_unlock(&s->compact_lock);
    return rc;
}

int vd_shard_add_pindex(vd_shard *s, const vd_pindex_spec *spec)
{
    vd_pindex *idx;
    int rc = vd_pindex_create(&idx, spec->field, spec->type);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&s->lock);
    vd_pindex **arr = realloc(s->pindexes, (s->n_pindexes + 1) * sizeof *arr);
    if (!arr) {
        rc = -ENOMEM;
        goto done;
    }
    s->pindexes = arr;
    /* Every stored point, including those an upsert is still inserting into
     * the graph (not alive yet): their slots hold an id. */
    for (uint32_t i = 0; rc == 0 && i < s->n_slots; i++)
        if (s->meta[i].id.kind != 0)
            rc = vd_pindex_add(idx, i, s->meta[i].payload);
    if (!rc) {
        s->pindexes[s->n_pindexes++] = idx;
        idx = NULL;
    }
done:
    pthread_rwlock_unlock(&s->lock);
    vd_pindex_destroy(idx);
    return rc;
}

/* Graph nodes repaired per hold of the read lock. */
#define VD_COMPACT_CHUNK 8192u

int vd_shard_compact(vd_shard *s, double min_ratio, size_t *n_released)
{
    *n_released = 0;
    if (!s->index->ops->keeps_slots)
        return 0;
    if (pthread_mutex_trylock(&s->compact_lock) != 0)
        return 0; /* another compaction runs */
    atomic_store(&s->compacting, true);
    int rc = 0;
    uint32_t *dead = NULL;
    size_t n_dead = 0;

    /* Note the tombstones to release, under the read lock. */
    pthread_rwlock_rdlock(&s->lock);
    size_t nodes = (size_t)s->n_alive + s->n_tombstones;
    bool due = s->n_tombstones > 0 && (double)s->n_tombstones >= min_ratio * (double)nodes;
    if (due) {
        size_t nw = vd_bitset_words(s->n_slots);
        dead = malloc(vd_bitset_count(s->dead, nw) * sizeof *dead + 4);
        if (!dead)
            rc = -ENOMEM;
        for (size_t i = rc ? SIZE_MAX : vd_bitset_next(s->dead, nw, 0); i != SIZE_MAX;
             i = vd_bitset_next(s->dead, nw, i + 1))
            if (!vd_bit_test(s->pending, i)) /* a later compaction releases it */
                dead[n_dead++] = (uint32_t)i;
    }
    pthread_rwlock_unlock(&s->lock);

    /* Repair in chunks, each under the read lock: searches and inserts go on,
     * and a waiting writer gets in between chunks. Tombstones made meanwhile
     * are repaired around too, but released only by a later compaction; no
     * insert links to a tombstone, so the noted ones stay unreachable. */
    for (uint32_t first = 0; due && !rc;) {
        pthread_rwlock_rdlock(&s->lock);
        vd_vector_view v = view_of(s);
        uint32_t n_slots = s->n_slots;
        rc = s->index->ops->repair(s->index, &v, first, VD_COMPACT_CHUNK);
        pthread_rwlock_unlock(&s->lock);
        if (n_slots - first <= VD_COMPACT_CHUNK)
            break;
        first += VD_COMPACT_CHUNK;
    }

    /* Release under the write lock: the repaired tombstones become free slots. */
    if (due && !rc) {
        pthread_rwlock_wrlock(&s->lock);
        rc = reserve_free(s, n_dead);
        for (size_t i = 0; !rc && i < n_dead; i++) {
            s->index->ops->release(s->index, dead[i]);
            vd_bit_clear(s->dead, dead[i]);
            s->free_slots[s->n_free++] = dead[i];
            s->n_tombstones--;
        }
        if (!rc) {
            *n_released = n_dead;
            s->n_compactions++;
        }
        pthread_rwlock_unlock(&s->lock);
    }
    free(dead);
    atomic_store(&s->compacting, false);
    pthread_mutex_unlock(&s->compact_lock);
    return rc;
}

void vd_shard_stats_get(vd_shard *s, vd_shard_stats *st)
{
    vd_index_stats is = {0};
    pthread_rwlock_rdlock(&s->lock);
    s->index->ops->stats(s->index, &is);
    *st = (vd_shard_stats){
        .n_points = s->n_alive,
        .n_slots = s->n_slots,
        .n_free = s->n_free,
        .n_tombstones = s->n_tombstones,
        .n_compactions = s->n_compactions,
        .compacting = atomic_load(&s->compacting),
        .searches_exact = is.searches_exact,
        .searches_graph = is.searches_graph,
        .searches_probe = is.searches_probe,
        .trainable = is.trainable,
        .trained = is.trained,
        .training = is.training,
        .n_lists = is.n_lists,
        .trained_points = is.trained_points,
        .distance_computations = is.distance_computations,
        .vector_bytes = vd_vecstore_ram_bytes(&s->vs),
        .vector_disk_bytes = vd_vecstore_disk_bytes(&s->vs),
        .code_bytes = vd_vecstore_code_bytes(&s->vs),
        .id_bytes = s->id_bytes + (size_t)s->cap * sizeof(slot_meta) + vd_idmap_bytes(&s->idmap) +
                    vd_bitset_words(s->cap) * 16 + s->free_cap * sizeof(uint32_t),
        .payload_bytes = s->payload_bytes,
        .index_bytes = is.memory_bytes,
    };
    for (size_t i = 0; i < s->n_pindexes; i++)
        st->payload_index_bytes += vd_pindex_bytes(s->pindexes[i]);
    pthread_rwlock_unlock(&s->lock);
}

bool vd_shard_covers(const vd_shard *s, uint64_t lsn) { return lsn && lsn <= s->snapshot_lsn; }

/* ---- snapshots --------------------------------------------------------------
 * The shard image's byte layout is the table at the top of
 * src/storage/snapshot.c. Slots that hold a point but are not alive yet (an
 * upsert between its stage and its finish) are finished at load. */

/* Bytes of originals streamed per read from the vectors file. */
#define VD_SAVE_CHUNK_BYTES (1u << 20)

int vd_shard_save(vd_shard *s, pthread_mutex_t *unlock_when_locked, vd_strbuf *out,
                  vd_snapshot_writer *w)
{
    pthread_rwlock_wrlock(&s->lock);
    if (unlock_when_locked)
        pthread_mutex_unlock(unlock_when_locked);
    size_t nw = vd_bitset_words(s->n_slots);
    vd_put_u32(out, s->dim);
    vd_put_u8(out, (uint8_t)s->metric);
    vd_put_u32(out, s->n_slots);
    vd_put_bytes(out, s->alive, nw * 8);
    vd_put_bytes(out, s->dead, nw * 8);
    vd_put_u32(out, s->n_free);
    vd_put_bytes(out, s->free_slots, (size_t)s->n_free * 4);
    int rc = 0;
    for (uint32_t i = 0; i < s->n_slots && !rc; i++) {
        const slot_meta *m = &s->meta[i];
        vd_put_u8(out, (uint8_t)m->id.kind);
        if (m->id.kind == 0)
            continue;
        if (m->id.kind == VD_ID_INT) {
            vd_put_u64(out, m->id.num);
        } else {
            vd_put_u16(out, (uint16_t)m->id.len);
            vd_put_bytes(out, m->id.str, m->id.len);
        }
        vd_put_u64(out, m->version);
        char *json = m->payload ? cJSON_PrintUnformatted(m->payload) : NULL;
        if (m->payload && !json)
            rc = -ENOMEM;
        size_t n = json ? strlen(json) : 0;
        vd_put_u32(out, (uint32_t)n);
        vd_put_bytes(out, json, n);
        free(json);
    }
    /* The vectors go straight to the file: from RAM as they are, from the
     * vectors file through a small buffer; never a second copy in memory. */
    vd_snapshot_writer_flush(w, out);
    size_t row = (size_t)s->dim * sizeof(float);
    if (!s->vs.on_disk) {
        vd_snapshot_writer_write(w, s->vs.ram, (size_t)s->n_slots * row);
    } else {
        uint32_t per = (uint32_t)(VD_SAVE_CHUNK_BYTES / row ? VD_SAVE_CHUNK_BYTES / row : 1);
        float *buf = malloc((size_t)per * row);
        if (!buf)
            rc = -ENOMEM;
        for (uint32_t i = 0; !rc && i < s->n_slots; i += per) {
            uint32_t n = s->n_slots - i < per ? s->n_slots - i : per;
            if (!(rc = vd_vecstore_read(&s->vs, i, n, buf)))
                vd_snapshot_writer_write(w, buf, (size_t)n * row);
        }
        free(buf);
    }
    vd_put_u8(out, s->index->ops->save != NULL);
    if (!rc && s->index->ops->save)
        rc = s->index->ops->save(s->index, s->n_slots, out);
    if (!rc && out->failed)
        rc = -ENOMEM;
    vd_snapshot_writer_flush(w, out);
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

/* Reads the per-slot records into an empty shard (write lock held). */
/* The bits of a loaded bitset past its n_bits must be clear (nothing walks them). */
static bool tail_clear(const uint64_t *w, size_t n_bits)
{
    return n_bits % 64 == 0 || (w[n_bits / 64] >> (n_bits % 64)) == 0;
}

static bool floats_finite(const float *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return false;
    return true;
}

/* A free slot is empty, neither alive nor a tombstone, and listed once. */
static int check_free_slots(vd_shard *s)
{
    uint64_t *seen = calloc(vd_bitset_words(s->n_slots) + 1, sizeof *seen);
    if (!seen)
        return -ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; i < s->n_free && !rc; i++) {
        uint32_t slot = s->free_slots[i];
        if (vd_bit_test(seen, slot) || s->meta[slot].id.kind != 0 || vd_bit_test(s->alive, slot) ||
            vd_bit_test(s->dead, slot))
            rc = -EINVAL;
        vd_bit_set(seen, slot);
    }
    free(seen);
    return rc;
}

static int load_slots(vd_shard *s, vd_reader *r)
{
    for (uint32_t i = 0; i < s->n_slots; i++) {
        slot_meta *m = &s->meta[i];
        uint8_t kind = vd_get_u8(r);
        if (kind == 0)
            continue;
        vd_point_id id = {.kind = kind};
        if (kind == VD_ID_INT) {
            id.num = vd_get_u64(r);
            if (id.num > VD_ID_MAX_INT)
                return -EINVAL;
        } else if (kind == VD_ID_STR) {
            id.len = vd_get_u16(r);
            if (id.len == 0 || id.len > VD_ID_MAX_LEN)
                return -EINVAL;
            const uint8_t *p = vd_get_bytes(r, id.len);
            char *copy = p ? malloc(id.len + 1u) : NULL;
            if (!copy)
                return r->bad ? -EINVAL : -ENOMEM;
            memcpy(copy, p, id.len);
            copy[id.len] = 0;
            id.str = copy;
            s->id_bytes += id.len;
        } else {
            return -EINVAL;
        }
        m->id = id;
        m->version = vd_get_u64(r);
        uint32_t plen = vd_get_u32(r);
        const uint8_t *json = vd_get_bytes(r, plen);
        if (r->bad)
            return -EINVAL;
        cJSON *payload = NULL;
        if (plen && !(payload = cJSON_ParseWithLength((const char *)json, plen)))
            return -EINVAL;
        if (payload && !cJSON_IsObject(payload)) {
            cJSON_Delete(payload);
            return -EINVAL;
        }
        set_payload(s, i, payload);
        uint64_t h = vd_id_hash(&m->id);
        uint32_t other;
        if (vd_idmap_find(&s->idmap, &m->id, h, &other))
            return -EINVAL; /* one id, two slots */
        int rc = vd_idmap_insert(&s->idmap, h, i);
        if (!rc)
            rc = index_payload(s, i);
        if (rc)
            return rc;
    }
    return 0;
}

int vd_shard_load(vd_shard *s, const uint8_t *data, size_t len, uint64_t lsn)
{
    vd_reader r = vd_reader_of(data, len);
    uint32_t dim = vd_get_u32(&r);
    vd_metric metric = (vd_metric)vd_get_u8(&r);
    uint32_t n_slots = vd_get_u32(&r);
    /* Each slot takes at least its id kind byte and its vector: bound n_slots
     * by the bytes there are before reserving room for it. */
    if (r.bad || dim != s->dim || metric != s->metric || n_slots > UINT32_MAX / 2 ||
        (uint64_t)n_slots * (1 + 4 * (uint64_t)dim) > vd_reader_left(&r))
        return -EINVAL;
    pthread_rwlock_wrlock(&s->lock);
    int rc = s->n_slots ? -EBUSY : reserve(s, n_slots);
    size_t nw = vd_bitset_words(n_slots);
    if (!rc) {
        s->n_slots = n_slots;
        vd_get_copy(&r, s->alive, nw * 8);
        vd_get_copy(&r, s->dead, nw * 8);
        uint32_t n_free = vd_get_u32(&r);
        if (r.bad || n_free > n_slots || !tail_clear(s->alive, n_slots) ||
            !tail_clear(s->dead, n_slots))
            rc = -EINVAL;
        if (!rc)
            rc = reserve_free(s, (size_t)n_free + 1);
        if (!rc) {
            vd_get_copy(&r, s->free_slots, (size_t)n_free * 4);
            s->n_free = n_free;
            for (uint32_t i = 0; i < n_free; i++)
                if (s->free_slots[i] >= n_slots)
                    rc = -EINVAL;
        }
    }
    if (!rc)
        rc = load_slots(s, &r);
    if (!rc)
        rc = check_free_slots(s);
    float *row = malloc(dim * sizeof *row); /* the image's floats may be unaligned */
    if (!rc && !row)
        rc = -ENOMEM;
    for (uint32_t i = 0; !rc && i < n_slots; i++) {
        vd_get_copy(&r, row, dim * sizeof *row);
        if (r.bad || !floats_finite(row, dim))
            rc = -EINVAL;
        else
            rc = vd_vecstore_put(&s->vs, i, row);
    }
    free(row);
    if (!rc)
        rc = s->index->ops->reserve(s->index, s->cap);
    bool has_image = vd_get_u8(&r) != 0;
    if (!rc && has_image != (s->index->ops->load != NULL))
        rc = -EINVAL;
    if (!rc && has_image)
        rc = s->index->ops->load(s->index, n_slots, dim, &r);
    if (!rc && (r.bad || vd_reader_left(&r) != 0))
        rc = -EINVAL;
    /* Count, check, and (re)insert: every point is in the index and alive;
     * the staged ones (no alive bit yet) are finished here. */
    vd_vector_view v = view_of(s);
    for (uint32_t i = 0; !rc && i < n_slots; i++) {
        bool has_point = s->meta[i].id.kind != 0, alive = vd_bit_test(s->alive, i);
        bool dead = vd_bit_test(s->dead, i);
        if ((alive && !has_point) || (dead && (has_point || !s->index->ops->keeps_slots))) {
            rc = -EINVAL;
            break;
        }
        s->n_tombstones += dead;
        if (!has_point)
            continue;
        if (!has_image || !alive) {
            rc = s->index->ops->insert(s->index, &v, i);
            if (rc == -EEXIST)
                rc = 0; /* the graph had it already */
        }
        if (!alive)
            vd_bit_set(s->alive, i);
        s->n_alive++;
    }
    if (!rc)
        s->snapshot_lsn = lsn;
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

void vd_shard_foreach(vd_shard *s, vd_point_visit_fn cb, void *ctx)
{
    pthread_rwlock_rdlock(&s->lock);
    size_t nw = vd_bitset_words(s->n_slots);
    for (size_t i = s->n_slots ? vd_bitset_next(s->alive, nw, 0) : SIZE_MAX; i != SIZE_MAX;
         i = vd_bitset_next(s->alive, nw, i + 1))
        cb(ctx, &s->meta[i].id, s->meta[i].version);
    pthread_rwlock_unlock(&s->lock);
}

/*
 * shard.c — see shard.h.
 *
 * Invariants (under the write lock): a slot is alive iff its bit in `alive`
 * is set, iff the idmap maps its id to it, iff the payload indexes and the
 * vector index hold it. Free slots have no id, no payload and are on `free`.
 */
#include "db/shard.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "db/idmap.h"
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
    float *vecs;     /* cap * dim */
    slot_meta *meta; /* cap */
    uint64_t *alive; /* vd_bitset_words(cap) */
    uint32_t n_slots, cap, n_alive;
    uint32_t n_tombstones; /* dead slots kept by an index with keeps_slots */
    uint32_t *free_slots;
    uint32_t n_free, free_cap;
    vd_idmap idmap;
    vd_pindex **pindexes;
    size_t n_pindexes;
    vd_index *index;
    size_t id_bytes, payload_bytes;
};

static const vd_point_id *id_of(void *ctx, uint32_t slot)
{
    return &((vd_shard *)ctx)->meta[slot].id;
}

static const cJSON *payload_of(const void *ctx, uint32_t slot)
{
    return ((const vd_shard *)ctx)->meta[slot].payload;
}

int vd_shard_create(vd_shard **out, uint32_t dim, vd_metric metric, const vd_index_params *index,
                    uint64_t seed, const vd_pindex_spec *specs, size_t n_specs)
{
    vd_shard *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    pthread_rwlock_init(&s->lock, NULL);
    s->dim = dim;
    s->metric = metric;
    vd_idmap_init(&s->idmap, id_of, s);
    int rc = vd_index_create(index, seed, &s->index);
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
    size_t nw = vd_bitset_words(s->n_slots);
    for (size_t i = vd_bitset_next(s->alive, nw, 0); i != SIZE_MAX;
         i = vd_bitset_next(s->alive, nw, i + 1))
        release_slot_data(s, (uint32_t)i);
    for (size_t i = 0; i < s->n_pindexes; i++)
        vd_pindex_destroy(s->pindexes[i]);
    free(s->pindexes);
    if (s->index)
        s->index->ops->destroy(s->index);
    vd_idmap_destroy(&s->idmap);
    free(s->vecs);
    free(s->meta);
    free(s->alive);
    free(s->free_slots);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

static vd_vector_view view_of(const vd_shard *s)
{
    return (vd_vector_view){s->vecs, s->dim, s->n_slots, s->metric};
}

/* Makes room for `extra` more slots beyond n_slots. */
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
    float *v = realloc(s->vecs, cap * s->dim * sizeof *v);
    if (!v)
        return -ENOMEM;
    s->vecs = v;
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

static int update_point(vd_shard *s, uint32_t slot, vd_point_in *p)
{
    vd_vector_view v;
    s->index->ops->remove(s->index, slot);
    unindex_payload(s, slot);
    memcpy(s->vecs + (size_t)slot * s->dim, p->vector, s->dim * sizeof(float));
    set_payload(s, slot, p->payload);
    p->payload = NULL;
    s->meta[slot].version = p->has_version ? p->version : 0;
    int rc = index_payload(s, slot);
    v = view_of(s);
    if (!rc)
        rc = s->index->ops->insert(s->index, &v, slot);
    return rc;
}

static int insert_point(vd_shard *s, uint64_t hash, vd_point_in *p)
{
    uint32_t slot = s->n_free ? s->free_slots[--s->n_free] : s->n_slots++;
    slot_meta *m = &s->meta[slot];
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
    memcpy(s->vecs + (size_t)slot * s->dim, p->vector, s->dim * sizeof(float));
    m->version = p->has_version ? p->version : 0;
    set_payload(s, slot, p->payload);
    p->payload = NULL;
    if (vd_idmap_insert(&s->idmap, hash, slot) != 0)
        goto fail_data;
    if (index_payload(s, slot) != 0)
        goto fail_map;
    vd_vector_view v = view_of(s);
    if (s->index->ops->insert(s->index, &v, slot) != 0)
        goto fail_pindex;
    vd_bit_set(s->alive, slot);
    s->n_alive++;
    return 0;
fail_pindex:
    unindex_payload(s, slot);
fail_map:
    vd_idmap_remove(&s->idmap, &m->id, hash);
fail_data:
    release_slot_data(s, slot);
fail_slot:
    *m = (slot_meta){0};
    if (s->index->ops->keeps_slots)
        s->n_tombstones++; /* the index may hold part of the slot: never reuse it */
    else
        s->free_slots[s->n_free++] = slot; /* room was reserved by the caller */
    return -ENOMEM;
}

static void delete_slot(vd_shard *s, uint32_t slot, uint64_t hash)
{
    s->index->ops->remove(s->index, slot);
    unindex_payload(s, slot);
    vd_idmap_remove(&s->idmap, &s->meta[slot].id, hash);
    release_slot_data(s, slot);
    vd_bit_clear(s->alive, slot);
    s->n_alive--;
    if (s->index->ops->keeps_slots)
        s->n_tombstones++;
    else
        s->free_slots[s->n_free++] = slot;
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

int vd_shard_upsert(vd_shard *s, vd_point_in *pts, size_t n, vd_upsert_counts *counts)
{
    int rc = 0;
    pthread_rwlock_wrlock(&s->lock);
    rc = reserve(s, n);
    for (size_t i = 0; i < n; i++) {
        vd_point_in *p = &pts[i];
        if (rc) {
            cJSON_Delete(p->payload);
            p->payload = NULL;
            continue;
        }
        uint64_t h = vd_id_hash(&p->id);
        uint32_t slot;
        if (vd_idmap_find(&s->idmap, &p->id, h, &slot)) {
            if (p->has_version && p->version < s->meta[slot].version) {
                cJSON_Delete(p->payload);
                p->payload = NULL;
                counts->stale++;
                continue;
            }
            if (s->index->ops->keeps_slots) {
                /* The index cannot move a node: tombstone it, insert afresh. */
                delete_slot(s, slot, h);
                rc = insert_point(s, h, p);
            } else {
                rc = update_point(s, slot, p);
            }
            counts->updated += rc == 0;
        } else {
            /* A failed insert hands its slot back to the free list: make room first. */
            rc = reserve_free(s, 1);
            if (!rc)
                rc = insert_point(s, h, p);
            else {
                cJSON_Delete(p->payload);
                p->payload = NULL;
            }
            counts->inserted += rc == 0;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
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
        memcpy(out->vector, s->vecs + (size_t)slot * s->dim, s->dim * sizeof(float));
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
    if (vd_idmap_find(&s->idmap, id, vd_id_hash(id), &slot))
        rc = fill_out(s, slot, true, with_vector, out);
    pthread_rwlock_unlock(&s->lock);
    return rc;
}


int vd_shard_delete_ids(vd_shard *s, const vd_point_id *ids, size_t n, size_t *n_deleted)
{
    pthread_rwlock_wrlock(&s->lock);
    int rc = reserve_free(s, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint64_t h = vd_id_hash(&ids[i]);
        uint32_t slot;
        if (vd_idmap_find(&s->idmap, &ids[i], h, &slot)) {
            delete_slot(s, slot, h);
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
    int rc = match ? 0 : -ENOMEM;
    if (!rc) {
        vd_filter_source src = filter_source(s);
        rc = vd_filter_eval(f, &src, match);
    }
    if (!rc)
        rc = reserve_free(s, vd_bitset_count(match, nw));
    for (size_t i = rc ? SIZE_MAX : vd_bitset_next(match, nw, 0); i != SIZE_MAX;
         i = vd_bitset_next(match, nw, i + 1)) {
        delete_slot(s, (uint32_t)i, vd_id_hash(&s->meta[i].id));
        (*n_deleted)++;
    }
    pthread_rwlock_unlock(&s->lock);
    free(match);
    return rc;
}

int vd_shard_search(vd_shard *s, const vd_search_req *req, vd_point_out *out, size_t *n_out)
{
    *n_out = 0;
    vd_hit *hits = malloc(req->k * sizeof *hits);
    if (!hits)
        return -ENOMEM;
    uint64_t *matching = NULL;
    int rc = 0;
    pthread_rwlock_rdlock(&s->lock);
    size_t nw = vd_bitset_words(s->n_slots);
    vd_index_query q = {
        .vector = req->vector,
        .allowed = s->alive,
        .max_key = req->has_threshold ? vd_key_from_score(s->metric, req->score_threshold)
                                      : __builtin_inff(),
        .ef = req->ef,
        .exact = req->exact,
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
    }
    vd_topk top;
    vd_topk_init(&top, hits, req->k);
    vd_vector_view v = view_of(s);
    if ((rc = s->index->ops->search(s->index, &v, &q, &top)))
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
    size_t nw = vd_bitset_words(s->n_slots);
    for (size_t i = vd_bitset_next(s->alive, nw, 0); rc == 0 && i != SIZE_MAX;
         i = vd_bitset_next(s->alive, nw, i + 1))
        rc = vd_pindex_add(idx, (uint32_t)i, s->meta[i].payload);
    if (!rc) {
        s->pindexes[s->n_pindexes++] = idx;
        idx = NULL;
    }
done:
    pthread_rwlock_unlock(&s->lock);
    vd_pindex_destroy(idx);
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
        .searches_exact = is.searches_exact,
        .searches_graph = is.searches_graph,
        .distance_computations = is.distance_computations,
        .vector_bytes = (size_t)s->cap * s->dim * sizeof(float),
        .id_bytes = s->id_bytes + (size_t)s->cap * sizeof(slot_meta) + vd_idmap_bytes(&s->idmap) +
                    vd_bitset_words(s->cap) * 8 + s->free_cap * sizeof(uint32_t),
        .payload_bytes = s->payload_bytes,
        .index_bytes = is.memory_bytes,
    };
    for (size_t i = 0; i < s->n_pindexes; i++)
        st->payload_index_bytes += vd_pindex_bytes(s->pindexes[i]);
    pthread_rwlock_unlock(&s->lock);
}

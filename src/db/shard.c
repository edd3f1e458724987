/*
 * shard.c — the slot store of a shard (shard.h; how the shard's files divide
 * the work: shard_internal.h): creating and destroying a shard, room for
 * slots, a slot's id, payload and payload-index entries, reading a point,
 * stats, and visiting every point.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db/shard_internal.h"

static const vd_point_id *id_of(void *ctx, uint32_t slot)
{
    return &((vd_shard *)ctx)->meta[slot].id;
}

static const cJSON *payload_of(const void *ctx, uint32_t slot)
{
    return ((const vd_shard *)ctx)->meta[slot].payload;
}

uint64_t vd_shard_id_hash(const vd_shard *s, const vd_point_id *id)
{
    if (id->kind == VD_ID_INT) {
        unsigned char le[9] = {VD_ID_INT};
        for (int i = 0; i < 8; i++)
            le[1 + i] = (unsigned char)(id->num >> (8 * i));
        return vd_siphash13(&s->id_key, le, sizeof le);
    }
    return vd_siphash13(&s->id_key, id->str, id->len);
}

int vd_shard_create(vd_shard **out, const vd_shard_config *cfg, vd_pool *pool)
{
    vd_shard *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    pthread_rwlock_init(&s->lock, NULL);
    pthread_mutex_init(&s->compact_lock, NULL);
    pthread_mutex_init(&s->build_lock, NULL);
    s->backlog_max = cfg->backlog_max;
    vd_scratch_pool_init(&s->scratch);
    s->pool = pool;
    s->dim = cfg->dim;
    s->metric = cfg->metric;
    s->seed = cfg->seed;
    vd_sipkey_random(&s->id_key);
    vd_idmap_init(&s->idmap, id_of, s);
    vd_graveyard_init(&s->graves);
    int rc = vd_vecstore_init(&s->vs, cfg->dim, cfg->quant, cfg->vectors_dir);
    if (!rc && !(s->row = malloc(cfg->dim * sizeof *s->row)))
        rc = -ENOMEM;
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

void vd_shard_release_slot(vd_shard *s, uint32_t slot)
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
            vd_shard_release_slot(s, i);
    for (size_t i = 0; i < s->n_pindexes; i++)
        vd_pindex_destroy(s->pindexes[i]);
    free(s->pindexes);
    free(s->row);
    if (s->index)
        s->index->ops->destroy(s->index);
    vd_idmap_destroy(&s->idmap);
    vd_graveyard_destroy(&s->graves);
    vd_vecstore_destroy(&s->vs);
    free(s->meta);
    free(s->alive);
    free(s->dead);
    free(s->pending);
    free(s->backlog);
    free(s->free_slots);
    pthread_mutex_destroy(&s->compact_lock);
    pthread_mutex_destroy(&s->build_lock);
    vd_scratch_pool_destroy(&s->scratch);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

vd_vector_view vd_shard_view(const vd_shard *s)
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
int vd_shard_reserve(vd_shard *s, size_t extra)
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

/* slot's vector for a tenant index (write lock), NULL after an I/O error. */
static const float *tenant_vector(vd_shard *s, uint32_t slot)
{
    return vd_vecstore_get(&s->vs, slot, s->row);
}

int vd_shard_index_payload(vd_shard *s, uint32_t slot)
{
    const float *x = NULL;
    for (size_t i = 0; i < s->n_pindexes && !x; i++)
        if (s->pindexes[i]->type == VD_PINDEX_TENANT && !(x = tenant_vector(s, slot)))
            return -EIO;
    for (size_t i = 0; i < s->n_pindexes; i++) {
        int rc = vd_pindex_add(s->pindexes[i], slot, s->meta[slot].payload, x);
        if (rc) {
            while (i-- > 0)
                vd_pindex_remove(s->pindexes[i], slot, s->meta[slot].payload);
            return rc;
        }
    }
    return 0;
}

void vd_shard_unindex_payload(vd_shard *s, uint32_t slot)
{
    for (size_t i = 0; i < s->n_pindexes; i++)
        vd_pindex_remove(s->pindexes[i], slot, s->meta[slot].payload);
}

void vd_shard_set_payload(vd_shard *s, uint32_t slot, cJSON *payload)
{
    slot_meta *m = &s->meta[slot];
    s->payload_bytes -= m->payload_bytes;
    cJSON_Delete(m->payload);
    m->payload = payload;
    m->payload_bytes = payload ? (uint32_t)vd_payload_bytes(payload) : 0;
    s->payload_bytes += m->payload_bytes;
}

void vd_shard_activate(vd_shard *s, uint32_t slot)
{
    vd_bit_set(s->alive, slot);
    s->n_alive++;
}

/* Takes a stored slot (alive, and maybe still queued for the graph) out of the shard. With an index
 * that keeps slots it becomes a tombstone until compaction; otherwise it goes
 * straight to the free list (room reserved by the caller). */
void vd_shard_kill_slot(vd_shard *s, uint32_t slot, uint64_t hash)
{
    s->index->ops->remove(s->index, slot);
    vd_shard_unindex_payload(s, slot);
    vd_idmap_remove(&s->idmap, &s->meta[slot].id, hash);
    vd_shard_release_slot(s, slot);
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

int vd_shard_grow_slots(uint32_t **slots, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    uint32_t *a = realloc(*slots, c * sizeof *a);
    if (!a)
        return -ENOMEM;
    *slots = a;
    *cap = c;
    return 0;
}

/* Grows the free list so that `extra` more slots fit. */
int vd_shard_reserve_free(vd_shard *s, size_t extra)
{
    return vd_shard_grow_slots(&s->free_slots, &s->free_cap, (size_t)s->n_free + extra);
}

int vd_shard_fill_out(const vd_shard *s, uint32_t slot, bool with_payload, bool with_vector,
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

int vd_shard_get(vd_shard *s, const vd_point_id *id, bool with_vector, vd_point_out *out)
{
    uint32_t slot;
    int rc = VD_E_POINT_NOT_FOUND;
    pthread_rwlock_rdlock(&s->lock);
    /* A point still being indexed (not alive yet) is not visible. */
    if (vd_idmap_find(&s->idmap, id, vd_shard_id_hash(s, id), &slot) && vd_bit_test(s->alive, slot))
        rc = vd_shard_fill_out(s, slot, true, with_vector, out);
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

bool vd_shard_holds(vd_shard *s, const vd_point_id *id)
{
    uint32_t slot;
    pthread_rwlock_rdlock(&s->lock);
    bool held = vd_idmap_find(&s->idmap, id, vd_shard_id_hash(s, id), &slot);
    pthread_rwlock_unlock(&s->lock);
    return held;
}

static const vd_point_id *filter_id_of(const void *ctx, uint32_t slot)
{
    return &((const vd_shard *)ctx)->meta[slot].id;
}

static bool filter_slot_of(const void *ctx, const vd_point_id *id, uint32_t *slot)
{
    const vd_shard *s = ctx;
    return vd_idmap_find(&s->idmap, id, vd_shard_id_hash(s, id), slot);
}

vd_filter_source vd_shard_filter_source(const vd_shard *s)
{
    return (vd_filter_source){
        .n_slots = s->n_slots,
        .alive = s->alive,
        .payload_of = payload_of,
        .ctx = s,
        .indexes = s->pindexes,
        .n_indexes = s->n_pindexes,
        .id_of = filter_id_of,
        .slot_of = filter_slot_of,
    };
}

void vd_shard_drop_pindex(vd_shard *s, const char *field)
{
    pthread_rwlock_wrlock(&s->lock);
    for (size_t i = 0; i < s->n_pindexes; i++) {
        if (strcmp(s->pindexes[i]->field, field) != 0)
            continue;
        vd_pindex_destroy(s->pindexes[i]);
        memmove(&s->pindexes[i], &s->pindexes[i + 1], (s->n_pindexes - i - 1) * sizeof *s->pindexes);
        s->n_pindexes--;
        break;
    }
    pthread_rwlock_unlock(&s->lock);
}

int vd_shard_add_pindex(vd_shard *s, const vd_pindex_spec *spec)
{
    vd_pindex *idx;
    int rc = vd_pindex_create(&idx, spec->field, spec->type, s->dim);
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
    for (uint32_t i = 0; rc == 0 && i < s->n_slots; i++) {
        if (s->meta[i].id.kind == 0)
            continue;
        const float *x = spec->type == VD_PINDEX_TENANT ? tenant_vector(s, i) : NULL;
        rc = spec->type == VD_PINDEX_TENANT && !x ? -EIO : vd_pindex_add(idx, i, s->meta[i].payload, x);
    }
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
        .n_backlog = vd_shard_queued(s),
        .n_built = s->n_built,
        .n_linked = atomic_load(&s->n_linked),
        .n_compactions = s->n_compactions,
        .compacting = atomic_load(&s->compacting),
        .searches_exact = is.searches_exact,
        .searches_graph = is.searches_graph,
        .searches_probe = is.searches_probe,
        .searches_tenant = atomic_load_explicit(&s->n_tenant_scans, memory_order_relaxed),
        .trainable = is.trainable,
        .trained = is.trained,
        .training = is.training,
        .n_lists = is.n_lists,
        .trained_points = is.trained_points,
        .distance_computations = is.distance_computations,
        .search_allocations = atomic_load_explicit(&s->scratch.allocations, memory_order_relaxed) +
                              is.scratch_allocations,
        .vector_bytes = vd_vecstore_ram_bytes(&s->vs),
        .vector_disk_bytes = vd_vecstore_disk_bytes(&s->vs),
        .code_bytes = vd_vecstore_code_bytes(&s->vs),
        .id_bytes = s->id_bytes + (size_t)s->cap * sizeof(slot_meta) + vd_idmap_bytes(&s->idmap) +
                    vd_graveyard_bytes(&s->graves) +
                    vd_bitset_words(s->cap) * 24 + (s->free_cap + s->backlog_cap) * sizeof(uint32_t),
        .payload_bytes = s->payload_bytes,
        .index_bytes = is.memory_bytes,
    };
    for (size_t i = 0; i < s->n_pindexes; i++)
        st->payload_index_bytes += vd_pindex_bytes(s->pindexes[i]);
    pthread_rwlock_unlock(&s->lock);
}

bool vd_shard_covers(const vd_shard *s, uint64_t lsn) { return lsn && lsn <= s->snapshot_lsn; }

void vd_shard_foreach(vd_shard *s, vd_point_visit_fn cb, void *ctx)
{
    pthread_rwlock_rdlock(&s->lock);
    size_t nw = vd_bitset_words(s->n_slots);
    for (size_t i = s->n_slots ? vd_bitset_next(s->alive, nw, 0) : SIZE_MAX; i != SIZE_MAX;
         i = vd_bitset_next(s->alive, nw, i + 1))
        cb(ctx, &s->meta[i].id, s->meta[i].version);
    pthread_rwlock_unlock(&s->lock);
}

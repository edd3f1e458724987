/*
 * shard_write.c — changing a shard: upserts in two steps (the stage decides
 * each point's fate and stores it under the write lock; the finish inserts
 * into the graph under the read lock and publishes under the write lock), and
 * deletes by ids or by filter. Writes arrive in log order (db/collection.c,
 * the write path's journal); a point staged and not yet finished is pending:
 * a later write treats it as existing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db/shard_internal.h"

/* Writes the point's vector, version and payload into slot (taking the
 * payload, even on failure). -ENOSPC / -EIO from originals on disk. */
static int write_point(vd_shard *s, uint32_t slot, vd_point_in *p)
{
    int rc = vd_vecstore_put(&s->vs, slot, p->vector);
    s->meta[slot].version = p->has_version ? p->version : 0;
    vd_shard_set_payload(s, slot, p->payload);
    p->payload = NULL;
    return rc;
}

/* Replaces the vector and payload of a live slot in place (indexes that do
 * not keep slots only). */
static int update_point(vd_shard *s, uint32_t slot, vd_point_in *p)
{
    s->index->ops->remove(s->index, slot);
    vd_shard_unindex_payload(s, slot);
    int rc = write_point(s, slot, p);
    if (!rc)
        rc = vd_shard_index_payload(s, slot);
    vd_vector_view v = vd_shard_view(s);
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
    /* No reuse while a save streams the vectors it covers (shard_image.c). */
    uint32_t slot = s->n_free && !s->n_saving ? s->free_slots[--s->n_free] : s->n_slots++;
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
    if (vd_shard_index_payload(s, slot) != 0)
        goto fail_map;
    *out = slot;
    return 0;
fail_map:
    vd_idmap_remove(&s->idmap, &m->id, hash);
fail_data:
    vd_shard_release_slot(s, slot);
fail_slot:
    *m = (slot_meta){0};
    s->free_slots[s->n_free++] = slot; /* the vector index never saw it */
    return rc;
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
        rc = vd_shard_reserve(s, n);
    if (!rc)
        rc = s->index->ops->reserve(s->index, s->cap);
    if (!rc)
        rc = vd_shard_reserve_free(s, 2 * n + 1); /* a failed store and a kill per point */
    for (size_t i = 0; i < n; i++) {
        vd_point_in *p = &pts[i];
        if (rc) {
            drop_payload(p);
            continue;
        }
        uint64_t h = vd_shard_id_hash(s, &p->id);
        uint32_t slot;
        bool exists = vd_idmap_find(&s->idmap, &p->id, h, &slot);
        if (p->vector_only) {
            if (!exists) {
                counts->missing++;
                continue;
            }
            const slot_meta *had = &s->meta[slot];
            if (had->payload && !(p->payload = cJSON_Duplicate(had->payload, true))) {
                rc = -ENOMEM;
                continue;
            }
            p->has_version = true; /* kept, and past the version guard below */
            p->version = had->version;
        }
        if (exists && p->has_version && !p->from_record && p->version < s->meta[slot].version) {
            drop_payload(p);
            counts->stale++;
            continue;
        }
        uint64_t deleted_at;
        if (!exists && vd_graveyard_find(&s->graves, &p->id, h, &deleted_at)) {
            if (p->has_version && !p->from_record && p->version < deleted_at) {
                /* older than what the delete removed: stays deleted (an equal
                 * version applies, as it would to the live point) */
                drop_payload(p);
                counts->stale++;
                continue;
            }
            vd_graveyard_forget(&s->graves, &p->id, h); /* back, newer */
        }
        /* In place, unless a save is reading this slot's vector: then the
         * point moves to a new slot like a graph node does. */
        if (exists && !deferred && !s->n_saving) {
            rc = update_point(s, slot, p);
            counts->updated += rc == 0;
            if (rc) /* half replaced: take the point out (the WAL still holds the write) */
                vd_shard_kill_slot(s, slot, h);
            continue;
        }
        if (exists)
            vd_shard_kill_slot(s, slot, h); /* the graph cannot move a node: replace it */
        if ((rc = store_point(s, h, p, &slot)))
            continue;
        if (deferred) {
            st->pending[st->n_pending++] = slot;
            vd_bit_set(s->pending, slot);
            s->n_staged++;
        } else {
            vd_vector_view v = vd_shard_view(s);
            if ((rc = s->index->ops->insert(s->index, &v, slot))) {
                vd_shard_kill_slot(s, slot, h);
                continue;
            }
            vd_shard_activate(s, slot);
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
        vd_vector_view v = vd_shard_view(s);
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
                vd_shard_kill_slot(s, slot, vd_shard_id_hash(s, &s->meta[slot].id));
                continue;
            }
            vd_shard_activate(s, slot);
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

/* A point that exists for a write that follows it in the log: alive, or
 * stored by an upsert whose finish has not run yet (staged; its write came
 * first, so a delete logged after it must take it out). */
static bool is_live(const vd_shard *s, uint32_t slot)
{
    return vd_bit_test(s->alive, slot) || (vd_bit_test(s->pending, slot) && !vd_bit_test(s->dead, slot));
}

/* Before a delete takes slot's point out: its version, so that older writes
 * replayed after the delete stay ignored (db/graveyard.h). Out of memory the
 * record is not kept; the delete itself always happens. */
static void remember_version(vd_shard *s, uint32_t slot, uint64_t h)
{
    uint64_t v = s->meta[slot].version;
    if (v)
        (void)vd_graveyard_bury(&s->graves, &s->meta[slot].id, h, v);
}

int vd_shard_delete_ids(vd_shard *s, const vd_point_id *ids, size_t n, size_t *n_deleted)
{
    pthread_rwlock_wrlock(&s->lock);
    int rc = vd_shard_reserve_free(s, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint64_t h = vd_shard_id_hash(s, &ids[i]);
        uint32_t slot;
        if (vd_idmap_find(&s->idmap, &ids[i], h, &slot) && is_live(s, slot)) {
            remember_version(s, slot, h);
            vd_shard_kill_slot(s, slot, h);
            (*n_deleted)++;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

/* The slots a write logged after them must see that match f: alive, or
 * staged by an earlier upsert (its write came first). *out is malloc'd
 * (vd_bitset_words(n_slots) words). Write lock held. 0 or -ENOMEM. */
static int live_matching(vd_shard *s, const vd_filter *f, uint64_t **out)
{
    size_t nw = vd_bitset_words(s->n_slots);
    uint64_t *match = malloc(nw * 8 + 8);
    uint64_t *live = malloc(nw * 8 + 8);
    int rc = match && live ? 0 : -ENOMEM;
    if (!rc) {
        for (size_t w = 0; w < nw; w++)
            live[w] = s->alive[w] | (s->pending[w] & ~s->dead[w]);
        vd_filter_source src = vd_shard_filter_source(s);
        src.alive = live;
        rc = vd_filter_eval(f, &src, match);
    }
    free(live);
    if (rc) {
        free(match);
        match = NULL;
    }
    *out = match;
    return rc;
}

int vd_shard_delete_filter(vd_shard *s, const vd_filter *f, size_t *n_deleted)
{
    pthread_rwlock_wrlock(&s->lock);
    size_t nw = vd_bitset_words(s->n_slots);
    uint64_t *match;
    int rc = live_matching(s, f, &match);
    if (!rc)
        rc = vd_shard_reserve_free(s, vd_bitset_count(match, nw));
    for (size_t i = rc ? SIZE_MAX : vd_bitset_next(match, nw, 0); i != SIZE_MAX;
         i = vd_bitset_next(match, nw, i + 1)) {
        uint64_t h = vd_shard_id_hash(s, &s->meta[i].id);
        remember_version(s, (uint32_t)i, h);
        vd_shard_kill_slot(s, (uint32_t)i, h);
        (*n_deleted)++;
    }
    pthread_rwlock_unlock(&s->lock);
    free(match);
    return rc;
}

/* Gives slot the payload edit e makes of its own, keeping the payload
 * indexes in step. On failure the slot keeps its payload. */
static int edit_slot(vd_shard *s, uint32_t slot, const vd_payload_edit *e)
{
    slot_meta *m = &s->meta[slot];
    cJSON *next;
    int rc = vd_payload_edit_apply(m->payload, e, &next);
    if (rc)
        return rc;
    vd_shard_unindex_payload(s, slot);
    cJSON *old = m->payload; /* kept until the new one is indexed */
    s->payload_bytes -= m->payload_bytes;
    m->payload = NULL;
    m->payload_bytes = 0;
    vd_shard_set_payload(s, slot, next);
    if ((rc = vd_shard_index_payload(s, slot))) {
        vd_shard_set_payload(s, slot, old); /* frees next */
        (void)vd_shard_index_payload(s, slot); /* its postings were just removed: room is there */
        return rc;
    }
    cJSON_Delete(old);
    return 0;
}

int vd_shard_edit_payload(vd_shard *s, const vd_payload_edit *e, const vd_point_id *ids, size_t n,
                          const vd_filter *f, size_t *n_edited)
{
    int rc = 0;
    pthread_rwlock_wrlock(&s->lock);
    if (f) {
        size_t nw = vd_bitset_words(s->n_slots);
        uint64_t *match;
        rc = live_matching(s, f, &match);
        for (size_t i = rc ? SIZE_MAX : vd_bitset_next(match, nw, 0); i != SIZE_MAX;
             i = vd_bitset_next(match, nw, i + 1)) {
            if ((rc = edit_slot(s, (uint32_t)i, e)))
                break;
            (*n_edited)++;
        }
        free(match);
    }
    for (size_t i = 0; !f && rc == 0 && i < n; i++) {
        uint32_t slot;
        if (vd_idmap_find(&s->idmap, &ids[i], vd_shard_id_hash(s, &ids[i]), &slot) && is_live(s, slot) &&
            (rc = edit_slot(s, slot, e)) == 0)
            (*n_edited)++;
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

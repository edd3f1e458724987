/*
 * shard_write.c — changing a shard: upserts in two steps (the stage decides
 * each point's fate, stores it and makes it searchable under the write lock,
 * queueing it for the graph; the finish builds the graph's backlog down to
 * its bound, shard_build.c), and deletes by ids or by filter. Writes arrive in
 * log order (db/collection.c, the write path's journal).
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
    uint32_t slot = s->n_free && !atomic_load(&s->n_saving) ? s->free_slots[--s->n_free] : s->n_slots++;
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

/* An upsert fails with -ENOMEM, or -ENOSPC / -EIO from originals on disk. */
static int upsert_rc(int rc)
{
    return rc == 0 || rc == -ENOSPC || rc == -EIO ? rc : -ENOMEM;
}

struct vd_shard_staged {
    size_t queued; /* slots the stage queued for the graph */
    int rc;
};

int vd_shard_upsert_stage(vd_shard *s, vd_point_in *pts, size_t n, vd_upsert_counts *counts,
                          vd_shard_staged **out)
{
    bool deferred = s->index->ops->keeps_slots; /* index work outside the write lock */
    vd_shard_staged *st = calloc(1, sizeof *st);
    int rc = !st ? -ENOMEM : 0;

    /* Write lock: version checks, storage, tombstones of replaced points.
     * With a flat index this is the whole job. */
    pthread_rwlock_wrlock(&s->lock);
    if (!rc)
        rc = vd_shard_reserve(s, n);
    if (!rc)
        rc = s->index->ops->reserve(s->index, s->cap);
    if (!rc)
        rc = vd_shard_reserve_free(s, 2 * n + 1); /* a failed store and a kill per point */
    if (!rc && deferred)
        rc = vd_shard_backlog_reserve(s, n);
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
            drop_payload(p); /* the stored payload stays; one sent along is ignored (a record could carry it) */
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
        if (exists && !deferred && !atomic_load(&s->n_saving)) {
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
        if (deferred) { /* searchable now, scanned until the graph has it */
            vd_shard_backlog_push(s, slot);
            st->queued++;
        } else {
            vd_vector_view v = vd_shard_view(s);
            if ((rc = s->index->ops->insert(s->index, &v, slot))) {
                vd_shard_kill_slot(s, slot, h);
                continue;
            }
        }
        vd_shard_activate(s, slot);
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
    /* Back-pressure: past the bound, the writer builds the graph itself, as
     * many points as it queued at most (its share). The points are stored and
     * searchable already; a build that cannot make progress (out of memory)
     * leaves them queued, not lost. */
    if (st->queued)
        vd_shard_build_down_to(s, s->backlog_max, st->queued);
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
        if (vd_idmap_find(&s->idmap, &ids[i], h, &slot) && vd_bit_test(s->alive, slot)) {
            remember_version(s, slot, h);
            vd_shard_kill_slot(s, slot, h);
            (*n_deleted)++;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

/* The live slots that match f. *out is malloc'd (vd_bitset_words(n_slots)
 * words). Write lock held. 0 or -ENOMEM. */
static int live_matching(vd_shard *s, const vd_filter *f, uint64_t **out)
{
    size_t nw = vd_bitset_words(s->n_slots);
    uint64_t *match = malloc(nw * 8 + 8);
    int rc = match ? 0 : -ENOMEM;
    if (!rc) {
        vd_filter_source src = vd_shard_filter_source(s);
        rc = vd_filter_eval(f, &src, match);
    }
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
        if (vd_idmap_find(&s->idmap, &ids[i], vd_shard_id_hash(s, &ids[i]), &slot) && vd_bit_test(s->alive, slot) &&
            (rc = edit_slot(s, slot, e)) == 0)
            (*n_edited)++;
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

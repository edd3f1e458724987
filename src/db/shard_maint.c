/*
 * shard_maint.c — a shard's background upkeep, run by the maintenance thread
 * (db/maintenance.c), beside searches and writes: compaction of HNSW
 * tombstones, and the shard's side of training an index that learns from its
 * data (IVF): it samples the vectors and lends its slots; what is learnt, and
 * how, is the index's (index.h train_* ops). compact_lock keeps one such job
 * per shard at a time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db/shard_internal.h"

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
    vd_vector_view v = vd_shard_view(s);
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
    /* What to learn and how is the index's; the shard only lends the sample. */
    if ((rc = ops->train_learn(s->index, sample, n_sample, s->dim, s->metric, plan.n_lists,
                               s->seed + s->n_trainings, cancel, &centroids, &plan.n_lists)))
        goto out;
    free(sample);
    sample = NULL;
    if (!centroids)
        goto out; /* nothing to learn from */
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
        vd_vector_view v = vd_shard_view(s);
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
    /* Due by their share, or because the last compaction skipped tombstones
     * still queued for the graph and the builder has since caught up. */
    bool due = s->n_tombstones > 0 &&
               ((double)s->n_tombstones >= min_ratio * (double)nodes ||
                (atomic_load(&s->compact_again) && vd_shard_queued(s) == 0));
    size_t skipped = 0;
    if (due) {
        size_t nw = vd_bitset_words(s->n_slots);
        dead = malloc(vd_bitset_count(s->dead, nw) * sizeof *dead + 4);
        if (!dead)
            rc = -ENOMEM;
        for (size_t i = rc ? SIZE_MAX : vd_bitset_next(s->dead, nw, 0); i != SIZE_MAX;
             i = vd_bitset_next(s->dead, nw, i + 1))
            if (!vd_bit_test(s->pending, i)) /* queued: a later compaction releases it */
                dead[n_dead++] = (uint32_t)i;
            else
                skipped++;
    }
    pthread_rwlock_unlock(&s->lock);

    /* Repair in chunks, each under the read lock: searches and inserts go on,
     * and a waiting writer gets in between chunks. Tombstones made meanwhile
     * are repaired around too, but released only by a later compaction; no
     * insert links to a tombstone, so the noted ones stay unreachable. */
    for (uint32_t first = 0; due && !rc;) {
        pthread_rwlock_rdlock(&s->lock);
        vd_vector_view v = vd_shard_view(s);
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
        rc = vd_shard_reserve_free(s, n_dead);
        for (size_t i = 0; !rc && i < n_dead; i++) {
            s->index->ops->release(s->index, dead[i]);
            vd_bit_clear(s->dead, dead[i]);
            s->free_slots[s->n_free++] = dead[i];
            s->n_tombstones--;
        }
        if (!rc) {
            *n_released = n_dead;
            s->n_compactions++;
            atomic_store(&s->compact_again, skipped > 0);
            atomic_store(&s->connect_due, true); /* the repair may have pruned a node's last in-link */
        }
        pthread_rwlock_unlock(&s->lock);
    }
    free(dead);
    atomic_store(&s->compacting, false);
    pthread_mutex_unlock(&s->compact_lock);
    return rc;
}

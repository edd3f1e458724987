/*
 * shard_build.c — the index backlog: ingest decoupled from graph building.
 *
 * With an index that inserts beside searches (HNSW), an upsert's stage stores
 * each point and makes it searchable at once, and queues its slot here
 * instead of inserting it into the graph. Searches scan the queued slots
 * exactly (their codes when quantized, then re-ranked as graph candidates
 * are) and merge them with the graph's answer, so answers stay as good as a
 * built graph's while it catches up. The graph is built behind the writes in
 * batches: by the database's builder thread (db/builder.c), and by a writer
 * itself when more than backlog_max slots wait (back-pressure: ingest never
 * runs further ahead of the graph than that; 0 = each write builds what it
 * queued, as before the backlog existed).
 *
 * A queued slot keeps its `pending` bit until its batch is published, so
 * compaction does not release it (shard_maint.c); a queued point deleted or
 * replaced meanwhile never enters the graph and stays a tombstone, which the
 * next compaction releases (one that had to skip queued tombstones runs again
 * at its next pass, whatever their share). Slots are freed only by
 * compaction, so where a write lands does not depend on the builder's pace. A batch is copied from the head
 * under the read lock, inserted in parallel under the read lock (beside
 * searches), and published under the write lock; slots replaced or deleted
 * meanwhile are skipped, and a failed insertion (out of memory) stays queued.
 * While a batch is being inserted its nodes may already be reachable through
 * the graph and still queued: the backlog scan skips a slot the answer holds.
 *
 * Once nothing waits, the builder also links the nodes no search can reach
 * (vd_shard_connect): a pass walks the whole graph, so it runs after a load,
 * after a compaction, and when the graph has grown by an eighth since the
 * last one, not after every batch.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db/shard_internal.h"

/* Slots a build round takes: the read lock is held while they are inserted,
 * so a writer waits at most about one round. The builder runs niced, so while
 * writes keep the cores busy a round takes longer than its CPU time: at 1536
 * dimensions and ef_construction 200, rounds of 64 held 8 upload connections
 * to 16k vectors/s, rounds of 16 let them reach 24k, and the graph was
 * complete as soon (bench/http_search.py --clients 8, docs/BENCHMARKS.md 5b). */
#define VD_BUILD_BATCH 16u
/* Points built since the last connect pass that call for another. */
#define VD_CONNECT_GROWTH(n_alive) ((n_alive) / 8 > 1024 ? (n_alive) / 8 : 1024)

int vd_shard_backlog_reserve(vd_shard *s, size_t extra)
{
    if (s->backlog_head > 0 && s->backlog_head >= vd_shard_queued(s)) { /* slide the live part down */
        memmove(s->backlog, s->backlog + s->backlog_head, vd_shard_queued(s) * sizeof *s->backlog);
        s->n_backlog -= s->backlog_head;
        s->backlog_head = 0;
    }
    return vd_shard_grow_slots(&s->backlog, &s->backlog_cap, s->n_backlog + extra);
}

void vd_shard_backlog_push(vd_shard *s, uint32_t slot)
{
    vd_bit_set(s->pending, slot);
    s->backlog[s->n_backlog++] = slot;
    atomic_store_explicit(&s->backlog_len, vd_shard_queued(s), memory_order_relaxed);
}

size_t vd_shard_backlog(const vd_shard *s)
{
    return atomic_load_explicit(&s->backlog_len, memory_order_relaxed);
}

typedef struct build_job {
    vd_shard *s;
    const vd_vector_view *v;
    const uint32_t *slots;
    int *rc;
} build_job;

static void build_task(void *ctx, size_t i)
{
    build_job *j = ctx;
    uint32_t slot = j->slots[i];
    /* Replaced or deleted since it was queued: the dead bit is set under the
     * write lock, so it is stable while we hold the read lock. */
    j->rc[i] = vd_bit_test(j->s->dead, slot) ? 0 : j->s->index->ops->insert(j->s->index, j->v, slot);
    if (j->rc[i] == -EEXIST)
        j->rc[i] = 0;
}

size_t vd_shard_build(vd_shard *s, size_t max_slots, vd_pool *pool)
{
    uint32_t slots[VD_BUILD_BATCH];
    int rc[VD_BUILD_BATCH];
    if (max_slots > VD_BUILD_BATCH)
        max_slots = VD_BUILD_BATCH;
    pthread_mutex_lock(&s->build_lock);
    /* Read lock: copy the head of the queue and insert it beside searches.
     * Only this round takes from the head (build_lock); writers append. */
    pthread_rwlock_rdlock(&s->lock);
    size_t n = vd_shard_queued(s) < max_slots ? vd_shard_queued(s) : max_slots;
    if (n) { /* (no queue may have been allocated yet) */
        memcpy(slots, s->backlog + s->backlog_head, n * sizeof *slots);
        vd_vector_view v = vd_shard_view(s);
        build_job job = {s, &v, slots, rc};
        vd_pool_run(pool ? pool : s->pool, n, build_task, &job);
    }
    pthread_rwlock_unlock(&s->lock);
    if (!n) {
        pthread_mutex_unlock(&s->build_lock);
        return 0;
    }
    /* Write lock: the batch leaves the queue; a failed one goes to its tail. */
    pthread_rwlock_wrlock(&s->lock);
    s->backlog_head += n;
    size_t built = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc[i] && !vd_bit_test(s->dead, slots[i]) && vd_shard_backlog_reserve(s, 1) == 0) {
            s->backlog[s->n_backlog++] = slots[i]; /* still pending: retried later */
            continue;
        }
        vd_bit_clear(s->pending, slots[i]);
        built++;
    }
    s->n_built += built;
    if (!vd_shard_queued(s)) {
        s->backlog_head = s->n_backlog = 0;
        if (s->n_built - s->built_at_connect >= VD_CONNECT_GROWTH(s->n_alive))
            atomic_store(&s->connect_due, true);
    }
    atomic_store_explicit(&s->backlog_len, vd_shard_queued(s), memory_order_relaxed);
    pthread_rwlock_unlock(&s->lock);
    pthread_mutex_unlock(&s->build_lock);
    return built;
}

void vd_shard_build_down_to(vd_shard *s, size_t max_waiting, size_t budget)
{
    size_t built = 0;
    while (built < budget && vd_shard_backlog(s) > max_waiting) {
        size_t n = vd_shard_build(s, vd_shard_backlog(s) - max_waiting, NULL);
        if (!n)
            return; /* no progress (out of memory): the builder retries later */
        built += n;
    }
}

size_t vd_shard_connect(vd_shard *s)
{
    if (!s->index->ops->connect || !atomic_load(&s->connect_due))
        return 0;
    size_t linked = 0;
    pthread_mutex_lock(&s->build_lock);
    /* Under the read lock, beside searches: writers wait for the pass (a
     * walk over every node's level-0 list, and an insert's walk per node
     * linked: milliseconds per 100k nodes). */
    pthread_rwlock_rdlock(&s->lock);
    if (!vd_shard_queued(s) && atomic_exchange(&s->connect_due, false)) {
        vd_vector_view v = vd_shard_view(s);
        if (s->index->ops->connect(s->index, &v, &linked) == 0)
            s->built_at_connect = s->n_built;
        else
            atomic_store(&s->connect_due, true); /* out of memory: a later round retries */
    }
    pthread_rwlock_unlock(&s->lock);
    atomic_fetch_add(&s->n_linked, linked);
    pthread_mutex_unlock(&s->build_lock);
    return linked;
}

/* Whether slot is among the answer's hits already (found by the graph). */
static bool holds_hit(const vd_topk *out, uint32_t slot)
{
    for (uint32_t i = 0; i < out->n; i++)
        if (out->hits[i].slot == slot)
            return true;
    return false;
}

uint64_t vd_shard_scan_backlog(const vd_shard *s, const vd_vector_view *v, const vd_index_query *q,
                               vd_topk *out)
{
    uint64_t n = 0;
    for (size_t i = s->backlog_head; i < s->n_backlog; i++) {
        uint32_t slot = s->backlog[i];
        if (!vd_index_allows(q, slot))
            continue;
        float key = vd_view_key(v, q->query, slot);
        n++;
        if (key <= q->max_key && key < vd_topk_bound(out) && !holds_hit(out, slot))
            vd_topk_push(out, key, slot);
    }
    return n;
}

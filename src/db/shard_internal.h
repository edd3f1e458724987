/*
 * shard_internal.h — what the files of a shard share; not an interface.
 *
 * A shard is split by lifecycle, as pgvector splits its HNSW code:
 *   shard.c        the slot store: create/destroy, room, slot data, id map and
 *                  payload-index upkeep, get, stats, visiting points;
 *   shard_write.c  upsert (stage, then finish), delete by ids or filter;
 *   shard_build.c  the index backlog: graph insertion behind the writes;
 *   shard_search.c k-NN search, exact scans of originals, re-ranking;
 *   shard_maint.c  background upkeep: compaction (HNSW tombstones) and
 *                  training (IVF) driven from the shard's side;
 *   shard_image.c  the snapshot image: save and load.
 *
 * Invariants (under the write lock): a slot is alive iff its bit in `alive`
 * is set, iff the idmap maps its id to it, iff the payload indexes and the
 * vector index hold it. Free slots have no id, no payload and are on `free`.
 * While a save runs (n_saving > 0), no slot below save_n_slots has its vector
 * rewritten: free slots are not reused and updates move the point to a new
 * slot, so the save can read the vectors after releasing the write lock.
 */
#ifndef VD_SHARD_INTERNAL_H
#define VD_SHARD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "db/graveyard.h"
#include "db/idmap.h"
#include "db/search_scratch.h"
#include "db/shard.h"
#include "db/vecstore.h"
#include "util/bitset.h"
#include "util/siphash.h"

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
    /* vd_bitset_words(cap): stored and queued for the graph (the backlog,
     * shard_build.c), not inserted yet. Compaction leaves these alone even
     * when they are tombstones (killed while queued): the queue still names
     * the slot, and a release and reuse in between would hand another point's
     * slot to it. */
    uint64_t *pending;
    uint32_t n_slots, cap, n_alive;
    uint32_t n_tombstones; /* dead slots kept by an index with keeps_slots */
    _Atomic uint32_t n_saving; /* saves streaming this shard's vectors (vd_shard_save) */
    uint64_t snapshot_lsn; /* the last WAL record the loaded snapshot holds (0 = none) */
    uint64_t seed;         /* reproducible index levels and training draws */
    uint64_t n_trainings;
    uint32_t *free_slots;
    uint32_t n_free;
    size_t free_cap;
    vd_idmap idmap;
    vd_graveyard graves; /* versions of deleted points (db/graveyard.h) */
    vd_sipkey id_key; /* keys the id map's hash: random per shard, so ids cannot be chosen to collide */
    vd_pindex **pindexes;
    size_t n_pindexes;
    float *row; /* dim floats: an original read from disk for a tenant index (write lock) */
    _Atomic uint64_t n_tenant_scans; /* searches answered from a tenant index's codes */
    vd_index *index;
    vd_pool *pool; /* borrowed: parallel graph inserts */
    size_t id_bytes, payload_bytes;
    uint64_t n_compactions;
    _Atomic bool compacting; /* a compaction is running (for status reports) */
    _Atomic bool compact_again; /* the last compaction skipped queued tombstones: due again once the backlog is built */
    pthread_mutex_t compact_lock; /* one compaction or training at a time; not held with `lock` waiting */
    vd_scratch_pool scratch;      /* searches' working memory, reused (its own lock) */
    /* The index backlog (shard_build.c): searchable slots not in the graph
     * yet, oldest first, backlog[backlog_head .. n_backlog). */
    uint32_t *backlog;
    size_t backlog_head, n_backlog, backlog_cap;
    size_t backlog_max;           /* more waiting than this: the writer builds */
    _Atomic size_t backlog_len;   /* n_backlog - backlog_head, read without the lock */
    uint64_t n_built;             /* slots the backlog has put into the graph */
    pthread_mutex_t build_lock;   /* one build round, connect or save's copy at a time; before `lock` */
    /* Linking the nodes no search reaches (index op `connect`), by the
     * builder once nothing waits: after a load, a compaction, or growth by
     * VD_CONNECT_GROWTH of the graph since the last pass. */
    _Atomic bool connect_due;
    uint64_t built_at_connect;    /* n_built at the last pass */
    _Atomic uint64_t n_linked;    /* nodes connect has linked */
};

/* Slots queued for the graph (the backlog, shard_build.c), under the lock;
 * vd_shard_backlog reads the same count without it. */
static inline size_t vd_shard_queued(const vd_shard *s) { return s->n_backlog - s->backlog_head; }

/* The id map's hash of id: keyed (SipHash-1-3 with id_key), unlike the frozen
 * vd_id_hash that routes points to shards, which anyone can compute. */
uint64_t vd_shard_id_hash(const vd_shard *s, const vd_point_id *id);
/* The shard's vectors as its index sees them (lock held). */
vd_vector_view vd_shard_view(const vd_shard *s);
/* Makes room for `extra` more slots beyond n_slots (write lock). -ENOMEM, or
 * -ENOSPC / -EIO from originals on disk. */
int vd_shard_reserve(vd_shard *s, size_t extra);
/* Grows a list of slots (*slots, room for *cap) to hold need, doubling. 0 or -ENOMEM. */
int vd_shard_grow_slots(uint32_t **slots, size_t *cap, size_t need);
/* Grows the free list so that `extra` more slots fit (write lock). */
int vd_shard_reserve_free(vd_shard *s, size_t extra);
/* Adds slot's payload to every payload index (all or none). */
int vd_shard_index_payload(vd_shard *s, uint32_t slot);
void vd_shard_unindex_payload(vd_shard *s, uint32_t slot);
/* Replaces slot's payload (taken), keeping the byte count. */
void vd_shard_set_payload(vd_shard *s, uint32_t slot, cJSON *payload);
/* Frees slot's id and payload and clears its metadata. */
void vd_shard_release_slot(vd_shard *s, uint32_t slot);
void vd_shard_activate(vd_shard *s, uint32_t slot);
/* Takes a stored slot (alive or still pending) out of the shard. With an index
 * that keeps slots it becomes a tombstone until compaction; otherwise it goes
 * straight to the free list (room reserved by the caller). */
void vd_shard_kill_slot(vd_shard *s, uint32_t slot, uint64_t hash);
/* Copies slot's point (and optionally payload and vector) into out (lock held). */
int vd_shard_fill_out(const vd_shard *s, uint32_t slot, bool with_payload, bool with_vector,
                      vd_point_out *out);
/* The shard's points as a filter sees them (lock held). */
vd_filter_source vd_shard_filter_source(const vd_shard *s);
/* The backlog (shard_build.c). Room for `extra` more queued slots (write
 * lock): 0 or -ENOMEM. */
int vd_shard_backlog_reserve(vd_shard *s, size_t extra);
/* Queues a stored slot for the graph and marks it pending (write lock, room reserved). */
void vd_shard_backlog_push(vd_shard *s, uint32_t slot);
/* Exact keys of the queued slots q allows into out, skipping those out holds
 * (read lock); returns the distances computed. */
uint64_t vd_shard_scan_backlog(const vd_shard *s, const vd_vector_view *v, const vd_index_query *q,
                               vd_topk *out);

#endif

/*
 * shard.h — one shard of a collection: the points routed to it and their index.
 *
 * Storage is by slot: slot s holds a vector (vecs + s*dim), its id, version and
 * payload, and an alive bit (the files that implement it: shard_internal.h). Deleted slots go on a free list and are reused.
 * Locking: one rwlock per shard guards every field. Writers (upsert, delete,
 * index changes) take it exclusively once per batch; readers (get, search,
 * stats) share it, so searches on one shard run in parallel. With an index
 * that inserts concurrently (HNSW), an upsert stores its points and makes
 * them searchable under the write lock, and they are inserted into the graph
 * later under the read lock (beside searches, in parallel on the worker pool:
 * the backlog, shard_build.c); compaction likewise repairs under the read lock.
 */
#ifndef VD_SHARD_H
#define VD_SHARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/filter.h"
#include "db/payload_edit.h"
#include "db/payload_index.h"
#include "db/point.h"
#include "db/stats.h"
#include <pthread.h>

#include "util/pool.h"
#include "util/strbuf.h"
#include "vectord/error.h"
#include "vectord/index.h"
#include "vectord/types.h"

typedef struct vd_shard vd_shard;

/* Most candidates one quantized search re-ranks (k × oversampling, capped). */
#define VD_RERANK_MAX 10000u
/* Candidates per result of a reference search (vd_search_req.reference). */
#define VD_REFERENCE_OVERSAMPLING 10.0f

typedef struct vd_shard_config {
    uint32_t dim;
    vd_metric metric;
    const vd_index_params *index; /* copied */
    uint64_t seed;                /* makes the index reproducible (HNSW levels) */
    vd_quant quant;
    const char *vectors_dir; /* keep the originals in a file there; NULL = in RAM */
    const vd_pindex_spec *pindexes;
    size_t n_pindexes;
    /* Graph insertion behind the writes (shard_build.c): at most this many
     * searchable points wait for the graph before a writer builds them
     * itself; 0 = every upsert builds what it stored before it returns. */
    size_t backlog_max;
} vd_shard_config;

int vd_shard_create(vd_shard **out, const vd_shard_config *cfg, vd_pool *pool);
void vd_shard_destroy(vd_shard *s);

/* Applies pts in order; takes every payload (pts[i].payload is NULL after).
 * 0, or -ENOMEM with the points before the failing one applied. */
int vd_shard_upsert(vd_shard *s, vd_point_in *pts, size_t n, vd_upsert_counts *counts);

/* The same in two steps, for writers that must apply in log order: the stage
 * (under the write lock) decides every point's fate, stores the points, makes
 * them searchable and fills counts; with a graph index it queues them for
 * the graph (the backlog), and the finish builds the backlog down to
 * backlog_max. Stages of later writes may run before this finish. finish
 * always runs (it frees *st), even when the stage failed, and returns the
 * outcome. */
typedef struct vd_shard_staged vd_shard_staged;
int vd_shard_upsert_stage(vd_shard *s, vd_point_in *pts, size_t n, vd_upsert_counts *counts,
                          vd_shard_staged **st);
int vd_shard_upsert_finish(vd_shard *s, vd_shard_staged *st);
/* The index backlog: points stored and searchable (scanned exactly) that are
 * not in the graph yet. vd_shard_build inserts up to max_slots of the oldest
 * into the graph (beside searches; in parallel on pool, or on the shard's
 * pool when NULL) and returns how many left the backlog (0: none waits, or no
 * progress); vd_shard_build_down_to builds until at most max_waiting wait,
 * or it has built budget points (a writer's share: the points it queued, so
 * that concurrent writers cannot keep one of them building forever).
 * Any thread; one round per shard at a time. */
size_t vd_shard_backlog(const vd_shard *s);
size_t vd_shard_build(vd_shard *s, size_t max_slots, vd_pool *pool);
void vd_shard_build_down_to(vd_shard *s, size_t max_waiting, size_t budget);
/* When it is due and nothing waits, links the graph's nodes that no search
 * can reach (index op `connect`); returns how many. The builder's. */
size_t vd_shard_connect(vd_shard *s);
/* Whether the shard holds a point of this id (indexed yet or not). */
bool vd_shard_holds(vd_shard *s, const vd_point_id *id);
/* VD_E_POINT_NOT_FOUND if absent. */
int vd_shard_get(vd_shard *s, const vd_point_id *id, bool with_vector, vd_point_out *out);
int vd_shard_delete_ids(vd_shard *s, const vd_point_id *ids, size_t n, size_t *n_deleted);
int vd_shard_delete_filter(vd_shard *s, const vd_filter *f, size_t *n_deleted);
/* Applies e to the payload of each live point that f selects, or (f NULL)
 * each of ids[0..n) that exists; *n_edited counts them. 0 or -ENOMEM (the
 * points before the failing one edited). */
int vd_shard_edit_payload(vd_shard *s, const vd_payload_edit *e, const vd_point_id *ids, size_t n,
                          const vd_filter *f, size_t *n_edited);
/* Best min(k, matches) points, best first, into out[0..*n_out). A quantized
 * shard walks its index with the codes, collecting k × req->oversampling
 * candidates, and re-ranks them with the originals (an exact request scans
 * the originals). -ENOMEM, or -EIO reading originals on disk. */
int vd_shard_search(vd_shard *s, const vd_search_req *req, vd_point_out *out, size_t *n_out);
/* How many live points match f (NULL: all): 0 or -ENOMEM. */
int vd_shard_count(vd_shard *s, const vd_filter *f, size_t *n);
/* With an index that keeps slots (HNSW): when tombstones make up at least
 * min_ratio of the index's nodes, repairs the index around them (beside
 * searches and writes) and then frees their slots. *n_released counts them. */
int vd_shard_compact(vd_shard *s, double min_ratio, size_t *n_released);
/* With an index that learns from its data (IVF): when it is due, trains it
 * beside searches and writes (k-means on a sample, then the points placed in
 * chunks) and sets *trained. One training or compaction per shard at a time.
 * Once *cancel (may be NULL) is set, it stops at the next k-means round or
 * chunk and returns -ECANCELED, the old lists untouched. */
int vd_shard_train(vd_shard *s, _Atomic bool *cancel, bool *trained);
/* Drops the payload index on field (if the shard has one). */
void vd_shard_drop_pindex(vd_shard *s, const char *field);
/* Adds a payload index and fills it from the stored points. */
int vd_shard_add_pindex(vd_shard *s, const vd_pindex_spec *spec);
void vd_shard_stats_get(vd_shard *s, vd_shard_stats *st);

/* Calls cb for every live point (under the read lock: cb must not write). */
void vd_shard_foreach(vd_shard *s, vd_point_visit_fn cb, void *ctx);

/* Writes the shard's snapshot image (layout: src/storage/snapshot.c) to w,
 * out holding what the caller put before it (the header) and serving as the
 * staging buffer. Takes the write lock, then unlocks unlock_when_locked (if
 * not NULL: the caller holds it while it notes which WAL position the image
 * reflects); copies the slot metadata and the index image, releases the
 * lock, and streams the vectors under short read-lock holds, so searches and
 * writes go on meanwhile (shard_image.c says why that is sound). 0, -ENOMEM
 * or -EIO; write errors are latched in w (vd_snapshot_writer_commit reports
 * them). */
struct vd_snapshot_writer;
int vd_shard_save(vd_shard *s, pthread_mutex_t *unlock_when_locked, vd_strbuf *out,
                  struct vd_snapshot_writer *w);
/* Loads an image into a new, empty shard; lsn is the WAL position it
 * reflects (vd_shard_covers). -EINVAL if the image is inconsistent. */
int vd_shard_load(vd_shard *s, const uint8_t *data, size_t len, uint64_t lsn);

/* True if the shard was loaded from a snapshot that already holds the write
 * logged at lsn (recovery skips it); false for lsn 0. */
bool vd_shard_covers(const vd_shard *s, uint64_t lsn);

#endif

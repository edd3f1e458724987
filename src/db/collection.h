/*
 * collection.h — a named set of points split over N shards.
 *
 * A point lives in shard vd_id_hash(id) % n_shards. Writes are grouped per
 * shard (one lock acquisition per shard per batch); searches fan out over the
 * shards on the worker pool and merge the per-shard top-k. The configuration is
 * immutable after creation except the payload-index list, which has its own
 * mutex, and the search defaults (ef_search, nprobe, oversampling), which a
 * search reads atomically. Collections are reference-counted so a request that holds one may
 * finish while the collection is being dropped.
 */
#ifndef VD_COLLECTION_H
#define VD_COLLECTION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "db/calibration.h"
#include "db/filter.h"
#include "db/payload_edit.h"
#include "db/payload_index.h"
#include "db/point.h"
#include "db/quality.h"
#include "db/stats.h"
#include "util/pool.h"
#include "vectord/error.h"
#include "vectord/index.h"
#include "vectord/types.h"

#define VD_NAME_MAX_LEN 64
#define VD_SHARDS_DEFAULT 2
#define VD_SHARDS_MIN 1
#define VD_SHARDS_MAX 64
#define VD_PINDEX_MAX 32
/* Re-ranking defaults, measured (docs/QUANTIZATION.md): candidates per result. */
#define VD_OVERSAMPLING_DEFAULT_FP16 2.0f
#define VD_OVERSAMPLING_DEFAULT_SQ8 3.0f
#define VD_OVERSAMPLING_MAX 100.0f
/* A search fans its shards out on the worker pool only when each shard's
 * work (estimated in multiply-adds) is at least this — waking a worker costs
 * about as much as 256 K multiply-adds — and the cores are free: the
 * searches in flight, each on its shards, fit the pool's threads and the
 * caller. Otherwise the shards are searched one after another on the calling
 * thread (docs/ARCHITECTURE.md, Searches). */
#define VD_FANOUT_MIN_WORK (256u * 1024u)

/* The oversampling a collection uses unless told: 1 for an HNSW index with
 * its originals in RAM (a search re-ranks all of its walk's ef candidates
 * there, so ef alone sets the breadth, as without codes); otherwise the
 * quantizer's measured factor (VD_OVERSAMPLING_DEFAULT_*). */
float vd_oversampling_default(vd_quant q, vd_index_type index, bool originals_on_disk);

typedef struct vd_collection_config {
    char name[VD_NAME_MAX_LEN + 1];
    uint32_t dim;
    vd_metric metric;
    uint32_t n_shards;
    vd_index_params index; /* zeroed = flat */
    vd_quant quant;        /* codes the index walks (VD_QUANT_NONE = the originals) */
    float oversampling;    /* quantized: candidates re-ranked per result, by default */
    bool originals_on_disk; /* quantized: float32 originals in a file, not in RAM */
    /* HNSW, IVF: the recall the default ef / nprobe is calibrated to from
     * sampled queries (db/calibration.h); 0 = off, ef_search / nprobe rule */
    float target_recall;
    /* Not part of the stored configuration: the folder for originals on disk
     * (the database sets it to <data_dir>/vectors; NULL = the system's temp dir). */
    const char *vectors_dir;
    /* Not stored either: per shard, how many searchable points may wait for
     * the graph before writers build it themselves (db/shard_build.c; the
     * database sets it from index_backlog_max; 0 = each write builds its own). */
    size_t backlog_max;
    vd_pindex_spec pindexes[VD_PINDEX_MAX]; /* field strings owned by the config copy */
    size_t n_pindexes;
    uint64_t incarnation; /* LSN of the create record in the WAL (0 = not logged) */
} vd_collection_config;

typedef struct vd_collection vd_collection;

/* The write path (src/write/write_order.h) keeps, per collection, the order
 * in which its logged writes are applied. The collection only carries that
 * state, opaque to it: it is made with the collection through these hooks
 * and released with the collection's last reference. */
struct vd_write_order;
typedef struct vd_write_order_hooks {
    struct vd_write_order *(*make)(uint64_t incarnation); /* NULL: out of memory */
    void (*release)(struct vd_write_order *o);
} vd_write_order_hooks;

typedef struct vd_collection_stats {
    size_t n_points;
    size_t memory_bytes;
    vd_shard_stats total;
    vd_shard_stats *shards; /* n_shards entries, owned by the caller: free() */
} vd_collection_stats;

/* The collection's rule for every vector that enters it, stored or queried,
 * whoever sends it (the API, the feed): a cosine collection works with unit
 * vectors, so v (c->dim floats) is normalised in place, once, here; dot and
 * l2 collections keep vectors as given. VD_E_INVALID_VECTOR for a cosine
 * vector of length zero (v is left as it was). */
int vd_collection_prepare_vector(const vd_collection_config *c, float *v);

/* What a search uses where it names nothing else; changeable after creation
 * (PATCH /collections/{c}). */
typedef struct vd_search_defaults {
    uint32_t ef_search; /* HNSW */
    uint32_t nprobe;    /* IVF, 0 = automatic */
    float oversampling; /* quantized: 0 = the quantizer's default */
    float target_recall; /* HNSW, IVF: 0 = off */
} vd_search_defaults;
/* Which fields of a vd_search_defaults a change sets. */
enum { VD_SET_EF_SEARCH = 1, VD_SET_NPROBE = 2, VD_SET_OVERSAMPLING = 4, VD_SET_TARGET_RECALL = 8 };

/* True if name is 1..64 chars of [A-Za-z0-9_-]. */
bool vd_collection_name_valid(const char *name);

/* cfg is copied. pool is borrowed and must outlive the collection. hooks
 * (borrowed, static; NULL = none) make the write path's state it carries. */
int vd_collection_create(vd_collection **out, const vd_collection_config *cfg, vd_pool *pool);
int vd_collection_create_ordered(vd_collection **out, const vd_collection_config *cfg,
                                 vd_pool *pool, const vd_write_order_hooks *hooks);
void vd_collection_ref(vd_collection *c);
/* Drops a reference; the last one destroys the collection. NULL is a no-op. */
void vd_collection_unref(vd_collection *c);
/* Borrowed; valid while a reference is held. pindexes may grow: read them
 * through vd_collection_pindexes. */
const vd_collection_config *vd_collection_config_of(const vd_collection *c);
/* Copies the payload-index list (fields borrowed from the collection). */
size_t vd_collection_pindexes(vd_collection *c, vd_pindex_spec *out, size_t cap);
/* The configuration as it is now: payload indexes and search defaults
 * included (fields borrowed from the collection). */
void vd_collection_config_now(vd_collection *c, vd_collection_config *out);
/* Sets the search defaults that mask (VD_SET_*) names, from d. */
void vd_collection_set_search_defaults(vd_collection *c, const vd_search_defaults *d,
                                       unsigned mask);

int vd_collection_upsert(vd_collection *c, vd_point_in *pts, size_t n, vd_upsert_counts *counts);
/* The upsert in two steps (see vd_shard_upsert_stage): the stage decides and
 * stores, in the order writes are logged; the finish indexes and publishes.
 * lsn is the write's WAL position: shards whose snapshot already holds it are
 * skipped (recovery); 0 = not logged. finish always runs and frees *st. */
typedef struct vd_collection_staged vd_collection_staged;
int vd_collection_upsert_stage(vd_collection *c, vd_point_in *pts, size_t n, uint64_t lsn,
                               vd_upsert_counts *counts, vd_collection_staged **st);
int vd_collection_upsert_finish(vd_collection *c, vd_collection_staged *st);
/* Whether c holds a point of this id (indexed yet or not): no copy made. */
bool vd_collection_holds(vd_collection *c, const vd_point_id *id);
int vd_collection_get(vd_collection *c, const vd_point_id *id, bool with_vector, vd_point_out *out);
/* lsn as for vd_collection_upsert_stage. */
int vd_collection_delete_ids(vd_collection *c, const vd_point_id *ids, size_t n, uint64_t lsn,
                             size_t *n_deleted);
int vd_collection_delete_filter(vd_collection *c, const vd_filter *f, uint64_t lsn,
                                size_t *n_deleted);
/* Applies e to the payloads of the points f selects, or (f NULL) of those of
 * ids[0..n) that exist; lsn as for vd_collection_upsert_stage. */
int vd_collection_edit_payload(vd_collection *c, const vd_payload_edit *e, const vd_point_id *ids,
                               size_t n, const vd_filter *f, uint64_t lsn, size_t *n_edited);
/* Best min(k, matches) points, best first. *out is malloc'd (free each with
 * vd_point_out_free, then free(*out)). */
/* How many points match f (NULL: all), exactly, shard by shard: 0 or -ENOMEM. */
int vd_collection_count(vd_collection *c, const vd_filter *f, size_t *n);
int vd_collection_search(vd_collection *c, const vd_search_req *req, vd_point_out **out,
                         size_t *n_out);
/* What vd_collection_search(c, req) would cost at most, in multiply-adds, by
 * the model fan-out uses (the collection's defaults applied, the backlog's
 * exact scan included; a filtered search is priced as a scan of every point,
 * the most its planner may choose). Cheap: no search runs. */
double vd_collection_search_work(vd_collection *c, const vd_search_req *req);
/* VD_E_COLLECTION_EXISTS-like conflicts are reported as VD_E_INVALID_REQUEST. */
int vd_collection_add_pindex(vd_collection *c, const char *field, vd_pindex_type type,
                             vd_errmsg *em);
/* The target recall now (0 = off), and the calibration's state: the breadth
 * chosen (once enough samples are in) and its measured recall. */
float vd_collection_target_recall(vd_collection *c);
void vd_collection_calibration(vd_collection *c, vd_calibration_choice *out);
/* The breadths a calibration sample is run at (VD_CALIBRATION_RUNGS). */
const uint32_t *vd_collection_calibration_rungs(vd_collection *c);
/* Records a calibration sample (found[r] of the exact k at rung r) and
 * updates the default breadth searches use. */
void vd_collection_calibration_add(vd_collection *c, const uint32_t *found, uint32_t k);
/* Drops the payload index on field from every shard: 0, or VD_E_NOT_FOUND. */
int vd_collection_drop_pindex(vd_collection *c, const char *field, vd_errmsg *em);
bool vd_collection_has_pindex(vd_collection *c, const char *field);
/* Trains every shard whose index is due (IVF; see vd_shard_train). */
int vd_collection_train(vd_collection *c, _Atomic bool *cancel, uint32_t *n_trained);
/* Builds the graph behind the writes: up to max_slots of every shard's
 * backlog (vd_shard_build, on pool), and links the nodes no search reaches
 * where that is due (vd_shard_connect); returns how many points entered the
 * graphs. */
size_t vd_collection_build(vd_collection *c, size_t max_slots, vd_pool *pool);
/* Points waiting for the graph, over all shards. */
size_t vd_collection_backlog(vd_collection *c);
/* Compacts every shard whose tombstones reach min_ratio (0 = any). */
int vd_collection_compact(vd_collection *c, double min_ratio, size_t *n_released);
int vd_collection_stats_get(vd_collection *c, vd_collection_stats *st);
/* The write path's state made by the creation hooks; NULL without them. */
struct vd_write_order *vd_collection_write_order(vd_collection *c);
/* Every live point's id and version, shard by shard (vd_shard_foreach). */
void vd_collection_foreach(vd_collection *c, vd_point_visit_fn cb, void *ctx);
/* Shard i, for the write path's snapshots (db/shard.h). */
struct vd_shard *vd_collection_shard(vd_collection *c, uint32_t i);
/* Loads shard i from its snapshot body (vd_shard_load) and checks that every
 * point in it belongs there (its id hashes to shard i): 0, -EINVAL for an
 * inconsistent image, -ENOMEM. */
int vd_collection_load_shard(vd_collection *c, uint32_t i, const uint8_t *data, size_t len,
                             uint64_t lsn);
/* The collection's measured result quality (recall monitor, shadow). */
vd_quality *vd_collection_quality(vd_collection *c);
/* VD_E_COLLECTION_EXISTS or VD_E_LIMIT_REACHED if add_pindex would refuse. */
int vd_collection_check_pindex(vd_collection *c, const char *field, vd_pindex_type type,
                               vd_errmsg *em);

#endif

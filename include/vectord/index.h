/*
 * index.h — the vector index interface every index type implements.
 *
 * A shard owns its vectors (float32 originals, and for a quantized collection
 * a compact code per slot, vectord/quant.h) and tells its index about slots
 * that gain or lose a vector; the index answers k-NN queries over a set of
 * allowed slots. Indexes measure with vd_view_key: the codes when there are
 * some (the shard re-ranks the candidates with the originals), the originals
 * otherwise. Originals may be on disk (vecs NULL): an index then reads a
 * stored vector through vd_view_vector, which decodes its code.
 *
 * Locking contract (the shard's rwlock):
 *  - reserve, remove, release: under the write lock;
 *  - search, stats: under the read lock, concurrently with each other;
 *  - insert: under the write lock, or, when the index sets concurrent_insert,
 *    under the read lock, concurrently with searches and other inserts (such an
 *    index synchronises its own structure; HNSW locks one node at a time);
 *  - repair: under the read lock, concurrently with searches and inserts, one
 *    repair per index at a time; the shard repairs in chunks of nodes and
 *    takes the read lock per chunk, so writers are never held off for long.
 * Vectors, and the dead bitmap, never change while the read lock is held.
 */
#ifndef VECTORD_INDEX_H
#define VECTORD_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vectord/distance.h"
#include "vectord/quant.h"
#include "vectord/topk.h"
#include "vectord/types.h"

/* The shard's vectors, lent to the index for one call. */
typedef struct vd_vector_view {
    const float *vecs; /* n_slots * dim floats, or NULL when the originals are on disk */
    uint32_t dim;
    uint32_t n_slots;
    vd_metric metric;
    const uint64_t *dead; /* tombstoned slots (keeps_slots indexes), or NULL */
    vd_quant quant;       /* VD_QUANT_NONE: keys from vecs */
    const uint8_t *codes; /* n_slots * code_size bytes when quantized */
    size_t code_size;
} vd_vector_view;

/* Key ("lower is better") of a stored vector against a query. */
static inline float vd_index_key(vd_metric metric, const float *query, const float *vec,
                                 uint32_t dim)
{
    const vd_distance_table *d = vd_distance();
    return metric == VD_METRIC_L2 ? d->l2sq(query, vec, dim) : -d->dot(query, vec, dim);
}

/* The bytes keys are computed from for slot (for prefetching). */
static inline const void *vd_view_row(const vd_vector_view *v, uint32_t slot)
{
    return v->quant ? (const void *)(v->codes + (size_t)slot * v->code_size)
                    : (const void *)(v->vecs + (size_t)slot * v->dim);
}

/* Key (lower is better) of slot against a query prepared for v->quant. */
static inline float vd_view_key(const vd_vector_view *v, const vd_quant_query *q, uint32_t slot)
{
    if (v->quant)
        return vd_quant_key(q, v->codes + (size_t)slot * v->code_size);
    return vd_index_key(v->metric, q->f, v->vecs + (size_t)slot * v->dim, v->dim);
}

/* slot's vector as floats: the original when in RAM, else its decoded code in buf. */
static inline const float *vd_view_vector(const vd_vector_view *v, uint32_t slot, float *buf)
{
    if (v->vecs)
        return v->vecs + (size_t)slot * v->dim;
    vd_quant_decode(v->quant, v->codes + (size_t)slot * v->code_size, v->dim, buf);
    return buf;
}

typedef struct vd_index_query vd_index_query;
struct vd_index_query {
    const vd_quant_query *query; /* prepared for the view's quantizer; normalised for cosine */
    const uint64_t *allowed; /* bitmap of slots that may be returned (alive ∩ filter) */
    size_t n_allowed;        /* bits set in allowed, or SIZE_MAX if not counted */
    float max_key;          /* only hits with key <= max_key (score_threshold) */
    uint32_t ef;            /* search breadth, 0 = index default (HNSW) */
    uint32_t nprobe;        /* lists probed, 0 = index default, VD_IVF_NPROBE_AUTO = automatic (IVF) */
    int exact;              /* force an exhaustive scan */
    _Atomic uint64_t *n_distances; /* if set, distances this search computed are added */
    _Atomic uint32_t *n_approximate; /* if set, incremented when the answer may miss a
                                      * neighbour (a graph walk, probed lists) */
    /* A broad filter checked per slot as the search reaches it, instead of a
     * bitmap built over every point first (HNSW only): a slot is allowed when
     * its `allowed` bit is set (then: alive) and admits says yes; n_allowed
     * is then an estimate. NULL: `allowed` alone decides. */
    bool (*admits)(const void *ctx, uint32_t slot);
    const void *admits_ctx;
    /* Optional (HNSW only): a cheaper scan of the allowed slots, which the
     * planner runs instead of vd_index_scan when it chooses to scan and the
     * search is not exact: a tenant index's codes read side by side and
     * re-ranked with the originals (db/shard_search.c). It fills out as
     * vd_index_scan does, with exact keys, and adds the distances it
     * computed to *n; it may miss a neighbour, so it counts the answer as
     * approximate itself. 0 or a negative errno. NULL: vd_index_scan. */
    int (*scan)(const void *ctx, const vd_index_query *q, vd_topk *out, uint64_t *n);
    const void *scan_ctx;
};

/* Whether q allows slot (< the view's n_slots). */
static inline bool vd_index_allows(const vd_index_query *q, uint32_t slot)
{
    return ((q->allowed[slot >> 6] >> (slot & 63)) & 1) && (!q->admits || q->admits(q->admits_ctx, slot));
}

typedef struct vd_index_stats {
    size_t memory_bytes; /* index structures beyond the shard's vectors */
    uint64_t distance_computations;
    uint64_t searches_exact; /* searches answered by scanning the allowed slots */
    uint64_t searches_graph; /* searches answered by graph traversal */
    uint64_t searches_probe; /* searches answered by probing lists (IVF) */
    uint64_t scratch_allocations; /* working memory made or grown for searches and inserts */
    size_t n_nodes;          /* slots the structure holds, tombstones included */
    /* IVF: whether trained, and on how many points; lists; a retraining runs */
    bool trainable, trained, training;
    uint32_t n_lists;
    size_t trained_points;
} vd_index_stats;

/* What a training of an index that learns from its data (IVF) will do. */
typedef struct vd_train_plan {
    uint32_t n_lists;  /* clusters to find */
    size_t n_sample;   /* vectors to learn them from */
} vd_train_plan;

typedef struct vd_index vd_index;
struct vd_strbuf;
struct vd_reader;

typedef struct vd_index_ops {
    const char *type; /* "flat", "hnsw", … */
    /* true: a removed slot stays in the structure as a tombstone, so the shard
     * must not reuse it, and an update moves the point to a fresh slot. */
    bool keeps_slots;
    bool concurrent_insert;
    /* Makes room for slots < n_slots, so insert never grows shared arrays. */
    int (*reserve)(vd_index *idx, uint32_t n_slots);
    int (*insert)(vd_index *idx, const vd_vector_view *v, uint32_t slot);
    void (*remove)(vd_index *idx, uint32_t slot);
    /* keeps_slots indexes: rewires the live nodes among slots [first, first +
     * count) so that none leads to a slot of v->dead any more; the call whose
     * range reaches v->n_slots also moves a dead entry point. When all ranges
     * are done, the dead slots of the first call may be released. */
    int (*repair)(vd_index *idx, const vd_vector_view *v, uint32_t first, uint32_t count);
    /* Forgets a repaired tombstone; the shard may then reuse the slot. */
    void (*release)(vd_index *idx, uint32_t slot);
    /* keeps_slots indexes: whether slot is in the structure (inserted and not
     * released). A loaded shard queues its points that are not (db/shard_build.c). */
    bool (*holds)(const vd_index *idx, uint32_t slot);
    /* Optional, graph indexes: links every live node that no walk from the
     * entry point reaches (a node whose every in-link was pruned away), so
     * that searches can find it; *n_linked says how many were. Under the read
     * lock with no insert running, beside searches. 0 or -ENOMEM. */
    int (*connect)(vd_index *idx, const vd_vector_view *v, size_t *n_linked);
    /* Fills out (capacity k) with the best allowed hits. 0 or -ENOMEM. */
    int (*search)(vd_index *idx, const vd_vector_view *v, const vd_index_query *q, vd_topk *out);
    void (*stats)(const vd_index *idx, vd_index_stats *out);
    /* Optional, both or neither: the structure over slots [0, n_slots) as
     * snapshot bytes, and back into an empty index (write lock). The save
     * runs under the read lock, beside searches, with no insert running (the
     * shard holds its builder off); upkeep that changes what it saves while
     * the read lock is held (repair) the index excludes itself.
     * Without them, a loaded shard inserts its live slots again. */
    int (*save)(const vd_index *idx, uint32_t n_slots, struct vd_strbuf *out);
    int (*load)(vd_index *idx, uint32_t n_slots, uint32_t dim, struct vd_reader *r);
    /* Optional, all or none: training from the data, beside searches and
     * writes (the shard lends a sample and its slots: src/db/shard_maint.c).
     *  train_due (read lock): whether n_points call for a (re)training, and its plan;
     *  train_learn (no lock; the index is not touched): learns up to n_lists
     *      centroids from the sample (n_sample × dim), seeded; *centroids is
     *      malloc'd (NULL when there is nothing to learn) with *n_learnt rows;
     *      stops with -ECANCELED once *cancel (may be NULL) is set;
     *  train_begin (write lock): takes the new centroids (malloc'd, n_lists × dim);
     *      inserts from now on also place points for them;
     *  train_chunk (read lock, one at a time): places the slots [first, first + count);
     *  train_finish (write lock): ok: the new lists replace the old; else dropped. */
    bool (*train_due)(const vd_index *idx, size_t n_points, uint32_t dim, vd_train_plan *plan);
    int (*train_learn)(const vd_index *idx, const float *sample, size_t n_sample, uint32_t dim,
                       vd_metric metric, uint32_t n_lists, uint64_t seed, _Atomic bool *cancel,
                       float **centroids, uint32_t *n_learnt);
    int (*train_begin)(vd_index *idx, float *centroids, uint32_t n_lists, uint32_t dim,
                       vd_metric metric);
    int (*train_chunk)(vd_index *idx, const vd_vector_view *v, uint32_t first, uint32_t count);
    void (*train_finish)(vd_index *idx, bool ok);
    void (*destroy)(vd_index *idx);
} vd_index_ops;

struct vd_index {
    const vd_index_ops *ops;
};

/* Exact scan of the allowed slots into out; returns distances computed. */
uint64_t vd_index_scan(const vd_vector_view *v, const vd_index_query *q, vd_topk *out);
/* Maps a key back to the API score (similarity for cosine/dot, distance for l2). */
float vd_score_from_key(vd_metric metric, float key);
/* Maps an API score threshold to the largest key allowed. */
float vd_key_from_score(vd_metric metric, float score);

/* Numbers are written to the WAL and snapshots: frozen. */
typedef enum vd_index_type { VD_INDEX_FLAT = 0, VD_INDEX_HNSW = 1, VD_INDEX_IVF = 2 } vd_index_type;

/* HNSW parameters: DEFAULT/MIN/MAX triplets (validated at the API). */
#define VD_HNSW_DEFAULT_M 16
#define VD_HNSW_MIN_M 4
#define VD_HNSW_MAX_M 128
#define VD_HNSW_DEFAULT_EF_CONSTRUCTION 200
#define VD_HNSW_MIN_EF_CONSTRUCTION 8
#define VD_HNSW_MAX_EF_CONSTRUCTION 4096
#define VD_HNSW_DEFAULT_EF_SEARCH 64
#define VD_HNSW_MIN_EF_SEARCH 1
#define VD_HNSW_MAX_EF_SEARCH 100000

/* IVF parameters. nlist 0 = automatic: about √n lists per shard at training. */
#define VD_IVF_MIN_NLIST 1
#define VD_IVF_MAX_NLIST 65536
#define VD_IVF_AUTO_MIN_NLIST 16
#define VD_IVF_AUTO_MAX_NLIST 16384
#define VD_IVF_MAX_NPROBE 65536
/* A query's nprobe for "automatic" whatever the index was created with. */
#define VD_IVF_NPROBE_AUTO UINT32_MAX
/* A shard trains once it holds this many points (and 8 per list asked for),
 * and trains again once it has grown this many times over. */
#define VD_IVF_TRAIN_MIN_POINTS 1024
#define VD_IVF_RETRAIN_GROWTH 4
#define VD_IVF_KMEANS_ITERS 10
/* Training samples at most 64 points per list and this many bytes of vectors. */
#define VD_IVF_SAMPLE_MAX_BYTES (256u << 20)

typedef struct vd_index_params {
    vd_index_type type;
    uint32_t m;               /* HNSW: links per node on levels > 0 (2m on level 0) */
    uint32_t ef_construction; /* HNSW: candidate list size while inserting */
    uint32_t ef_search;       /* HNSW: default search breadth */
    uint32_t nlist;           /* IVF: lists per shard, 0 = automatic */
    uint32_t nprobe;          /* IVF: default lists probed, 0 = automatic (nlist / 16, at least 8) */
} vd_index_params;

/* The lists an IVF search probes by default. */
uint32_t vd_ivf_default_nprobe(uint32_t nprobe_param, uint32_t n_lists);

const char *vd_index_type_name(vd_index_type t);
/* Fills params with the defaults of type. */
void vd_index_params_default(vd_index_params *p, vd_index_type type);
/* Creates an index of p->type; seed makes HNSW level draws reproducible. */
int vd_index_create(const vd_index_params *p, uint64_t seed, vd_index **out);

/* The exhaustive index: no structure, a scan of allowed slots. */
int vd_flat_create(vd_index **out);
/* Hierarchical navigable small world graph (Malkov & Yashunin, 2016/2018). */
int vd_hnsw_create(const vd_index_params *p, uint64_t seed, vd_index **out);
/* Inverted file: k-means centroids, a list of slots per centroid; a search
 * probes the lists of the nprobe nearest centroids. Exact scan until trained. */
int vd_ivf_create(const vd_index_params *p, uint64_t seed, vd_index **out);

#endif

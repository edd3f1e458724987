/*
 * point.h — points as they enter (upsert) and leave (get, search) the store.
 */
#ifndef VD_POINT_H
#define VD_POINT_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "vectord/types.h"

typedef struct vd_point_in {
    vd_point_id id; /* borrowed; the shard copies string ids */
    float *vector;  /* borrowed, dim floats, already normalised for cosine */
    cJSON *payload; /* owned by the caller until upsert, which always takes it (sets NULL) */
    bool has_version;
    uint64_t version;
    /* The row as the system of record holds it now (the Postgres feed, its
     * reconciliation): applied whatever the stored version or the delete
     * remembered for the id says, and its version stored as it is. API
     * writes leave it false and keep the version guard. */
    bool from_record;
    /* A vector update: the stored point keeps its payload and version and
     * takes this vector; a point that does not exist is not created. */
    bool vector_only;
} vd_point_in;

typedef struct vd_point_out {
    vd_point_id id; /* id.str points into id_buf */
    char *id_buf;   /* owned */
    float score;
    float key; /* internal order key: lower is better */
    uint64_t version;
    cJSON *payload; /* owned copy, or NULL */
    float *vector;  /* owned copy, or NULL */
    uint32_t dim;
} vd_point_out;

void vd_point_out_free(vd_point_out *p);

typedef struct vd_upsert_counts {
    size_t inserted;
    size_t updated;
    size_t stale; /* ignored: the stored version is newer */
    size_t missing; /* vector updates (vector_only) of points that do not exist */
} vd_upsert_counts;

/* One k-NN request against a collection (all borrowed). */
typedef struct vd_search_req {
    const float *vector; /* normalised for cosine */
    uint32_t k;
    const struct vd_filter *filter; /* NULL = no filter */
    bool has_threshold;
    float score_threshold;
    bool with_payload;
    bool with_vector;
    uint32_t ef;
    uint32_t nprobe; /* IVF lists to probe, 0 = the collection's default */
    float oversampling; /* quantized collections: candidates re-ranked = k × this (≥ 1) */
    bool exact;
    /* The recall monitor's reference: exact, except that a quantized shard
     * with originals on disk scans its codes and re-ranks k × VD_REFERENCE_
     * OVERSAMPLING candidates rather than reading every original from disk. */
    bool reference;
    bool on_caller; /* search the shards one after another on the calling thread, not the pool */
    unsigned load;  /* requests the server is serving now, this one included (0: unknown): busy
                     * cores are not lent to one search's shards (VD_FANOUT_MIN_WORK) */
    _Atomic uint64_t *n_distances; /* optional: distance computations, summed over shards */
    /* optional: shards whose answer may miss a neighbour (a graph walk,
     * probed lists, or ranking by quantized codes) */
    _Atomic uint32_t *n_approximate;
} vd_search_req;

/* A visitor of stored points: their id and version. */
typedef void (*vd_point_visit_fn)(void *ctx, const vd_point_id *id, uint64_t version);

#endif

/*
 * stats.h — what a shard reports about itself (collection info, metrics):
 * plain data, so the layers above read it without seeing the shard.
 */
#ifndef VD_DB_STATS_H
#define VD_DB_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vd_shard_stats {
    size_t n_points;
    size_t n_slots;
    size_t n_free;
    size_t n_tombstones; /* deleted slots the index still holds (not reusable yet) */
    size_t n_backlog;    /* searchable points not in the graph yet (scanned exactly) */
    uint64_t n_built;    /* points the backlog has put into the graph */
    uint64_t n_linked;   /* graph nodes no search reached, linked by the builder */
    uint64_t n_compactions;
    bool compacting;
    size_t vector_bytes;      /* float32 originals in RAM */
    size_t vector_disk_bytes; /* float32 originals in the vectors file on disk */
    size_t code_bytes;        /* quantized codes (RAM) */
    size_t id_bytes;
    size_t payload_bytes;
    size_t payload_index_bytes;
    size_t index_bytes;
    uint64_t searches_exact, searches_graph, searches_probe, distance_computations;
    uint64_t searches_tenant; /* scans of a tenant index's codes (db/payload_index.h) */
    /* working memory searches allocated (scratch made or grown, the shard's
     * and its index's): flat in steady state, when searches reuse it */
    uint64_t search_allocations;
    uint64_t searches_fanned_out; /* collection total only: searches whose shards ran in parallel */
    bool trainable, trained, training; /* IVF */
    uint32_t n_lists;
    size_t trained_points;
} vd_shard_stats;

#endif

/*
 * topology.h — the partitions the router sends requests to, and their
 * replicas (docs/PARTITIONS.md). A generation is one partitioning: P
 * partitions, each with its replicas' base URLs. The router serves the
 * current generation; during a repartition a next one is named too, and the
 * prober thread switches to it once every one of its partitions has a replica
 * that is ready and has finished its backfill. Generations are immutable
 * after start (only their replicas' health flags change) and live until the
 * topology is destroyed, so a request may keep using the one it started on.
 */
#ifndef VD_TOPOLOGY_H
#define VD_TOPOLOGY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/partition.h"

#define VD_REPLICAS_MAX 16
#define VD_URL_MAX 256

typedef struct vd_replica {
    char native[VD_URL_MAX]; /* base URL of its native API, e.g. http://vectord-p0-0.vectord-p0:8080 */
    char qdrant[VD_URL_MAX]; /* base URL of its Qdrant-compatible API (same host, the Qdrant port) */
    _Atomic bool ready;      /* its /readyz answered 200 at the last probe */
    _Atomic bool caught_up;  /* its feed has finished the backfill (or it has no feed) */
    _Atomic uint64_t failures; /* requests to it that got no answer */
} vd_replica;

typedef struct vd_generation {
    uint32_t n_partitions;
    vd_replica *replicas; /* n_partitions × max_replicas, row-major (owned) */
    uint32_t *counts;     /* replicas per partition (owned) */
    uint32_t max_replicas;
    _Atomic uint32_t *next_pick; /* per partition: round-robin start (owned) */
} vd_generation;

typedef struct vd_topology_config {
    /* Each partition's replicas: "URL,URL,…" (n_partitions strings; a URL
     * may be "NATIVE|QDRANT" to name its Qdrant listener's), or a
     * pattern with {p} and {r} expanded for n_partitions × n_replicas. */
    const char *const *partitions;
    uint32_t n_partitions;
    const char *pattern;
    uint32_t n_replicas;
    /* The same for the next generation (n_partitions 0 = none). */
    const char *const *next_partitions;
    uint32_t next_n_partitions;
    const char *next_pattern;
    uint32_t next_n_replicas;
    uint32_t qdrant_port;      /* the replicas' Qdrant listener port */
    uint32_t probe_interval_ms;
    const char *api_key;       /* sent with the prober's /feed look-ups ("" = none) */
} vd_topology_config;

typedef struct vd_topology vd_topology;

/* Builds the generations and starts the prober thread; a bad URL or count
 * fails with a message in err. */
int vd_topology_create(vd_topology **out, const vd_topology_config *cfg, char *err, size_t err_cap);
void vd_topology_destroy(vd_topology *t);
/* The generation requests use now (borrowed; valid until destroy). */
const vd_generation *vd_topology_current(vd_topology *t);
/* The next generation while a repartition waits for it, or NULL. */
const vd_generation *vd_topology_next(vd_topology *t);
/* Partition p's replicas, best first (ready ones, in round-robin order,
 * then the others): writes up to VD_REPLICAS_MAX pointers, returns how many. */
uint32_t vd_generation_candidates(const vd_generation *g, uint32_t p, vd_replica **out);
vd_replica *vd_generation_replica(const vd_generation *g, uint32_t p, uint32_t r);
/* Every partition has a ready replica. */
bool vd_generation_ready(const vd_generation *g);
/* A request to r got no answer: it counts as not ready until the next probe. */
void vd_replica_failed(vd_replica *r);
/* Probes so far (for tests and /metrics). */
uint64_t vd_topology_probes(vd_topology *t);
uint64_t vd_topology_switches(vd_topology *t);

#endif

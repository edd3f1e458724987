/*
 * route_table.h — what the router does with each route of the native and the
 * Qdrant-compatible API (docs/PARTITIONS.md, "What the router does"): one
 * table, read by the matcher, the executor (router.c) and the docs' list.
 */
#ifndef VD_ROUTE_TABLE_H
#define VD_ROUTE_TABLE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum vd_rt_op {
    VD_RT_LOCAL,         /* answered by the router itself (probes, metrics) */
    VD_RT_ANY,           /* any one replica (of partition 0): the same everywhere */
    VD_RT_INFO,          /* one replica per partition; point counts summed */
    VD_RT_SEARCH,        /* one tenant: its partition; else every partition, top-k merged */
    VD_RT_UPSERT,        /* points split by tenant; each part to every replica of its partition */
    VD_RT_BROADCAST,     /* every replica of every partition (DDL, deletes, edits by filter) */
    VD_RT_BY_IDS,        /* points located first, then each partition gets its own ids */
    VD_RT_FIRST_FOUND,   /* one replica per partition; the one that has the point answers */
    VD_RT_RETRIEVE,      /* one replica per partition; the found points put together */
    VD_RT_COUNT,         /* one tenant: its partition; else counts summed */
    VD_RT_SCROLL,        /* one tenant: its partition; else pages merged in id order */
    VD_RT_TENANT_ONLY,   /* must name one tenant (a shadow comparison) */
    VD_RT_NOT_ROUTED,    /* about one replica (its feed): ask the replica itself */
} vd_rt_op;

/* How a search answer holds its hits. */
typedef enum vd_rt_shape {
    VD_RT_HITS,          /* result: [hit, …] */
    VD_RT_HITS_BATCH,    /* result: [[hit, …], …] */
    VD_RT_POINTS,        /* result: {"points": [hit, …]} (Qdrant query) */
    VD_RT_POINTS_BATCH,  /* result: [{"points": […]}, …] */
} vd_rt_shape;

typedef struct vd_rt_route {
    bool qdrant;         /* served on the Qdrant listener (else the native one) */
    const char *method;
    const char *pattern; /* {c} and {id} match one path segment */
    vd_rt_op op;
    vd_rt_shape shape;   /* searches */
    const char *label;   /* metrics */
} vd_rt_route;

/* The route for method and path (as sent, without the query), or NULL;
 * *method_known is false when the path matches under another method. */
const vd_rt_route *vd_rt_match(bool qdrant, const char *method, const char *path, bool *path_known);
const vd_rt_route *vd_rt_routes(size_t *n);

#endif

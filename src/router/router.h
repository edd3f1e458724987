/*
 * router.h — the router's request executor (docs/PARTITIONS.md): given one
 * request of the native or the Qdrant-compatible API, it asks the right
 * replicas (route_table.h says which) and makes one answer of theirs.
 */
#ifndef VD_ROUTER_H
#define VD_ROUTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/call.h"
#include "router/topology.h"

typedef struct vd_router_config {
    const char *tenant_field; /* the payload key that names the tenant (feed_partition_column's) */
    long timeout_ms;          /* per replica request */
} vd_router_config;

typedef struct vd_router vd_router;


int vd_router_create(vd_router **out, const vd_router_config *cfg, vd_topology *topo);
void vd_router_destroy(vd_router *r);
/* Answers the call (vd_rt_call in call.h). */
void vd_router_handle(vd_router *r, vd_rt_call *call);
/* Counts an answered call (metrics). */
void vd_router_observe(vd_router *r, const vd_rt_call *call);

#endif

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

#include "router/topology.h"
#include "router/upstream.h"

typedef struct vd_router_config {
    const char *tenant_field; /* the payload key that names the tenant (feed_partition_column's) */
    long timeout_ms;          /* per replica request */
} vd_router_config;

typedef struct vd_router vd_router;

/* One request; strings borrowed for the call. */
typedef struct vd_rt_call {
    bool qdrant;              /* arrived on the Qdrant listener */
    const char *method;
    const char *path;         /* as sent (still percent-encoded), without the query */
    const char *query;        /* after '?', or "" */
    const char *body;         /* NULL = none */
    size_t body_len;
    const char *const *headers; /* passed to replicas ("api-key: …", "X-Request-Id: …"), NULL-terminated */
    const char *request_id;
    vd_upstream *up;          /* the calling thread's client */
    long timeout_ms;          /* per replica request (set by vd_router_handle) */
    /* the answer (owned by the call: vd_rt_call_free) */
    int status;
    char *answer;
    size_t answer_len;
    const char *content_type;
    char extra_header[160];   /* "Name: value", or "" */
    const char *label;        /* the route's metric label */
    double started;
} vd_rt_call;

int vd_router_create(vd_router **out, const vd_router_config *cfg, vd_topology *topo);
void vd_router_destroy(vd_router *r);
void vd_router_handle(vd_router *r, vd_rt_call *call);
void vd_rt_call_free(vd_rt_call *call);
/* Writes an error answer in the call's dialect. */
void vd_rt_fail(vd_rt_call *call, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Counts an answered call (metrics). */
void vd_router_observe(vd_router *r, const vd_rt_call *call, double seconds);

#endif

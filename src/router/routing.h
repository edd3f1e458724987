/*
 * routing.h — what the files of the router's executor share; not a
 * public interface.
 *   router.c        entry: the route's operation, the router's own answers
 *                   (probes, metrics), counters, create/destroy
 *   route_search.c  searches: one tenant's partition, or every partition merged
 *   route_write.c   writes: upserts split by tenant, broadcasts, edits by id
 *   route_read.c    reads: any replica, a tenant's partition, first found,
 *                   gathered counts, points and pages
 *   replicas.c      asking replicas: one per partition with retries, or all (replicas.h)
 *   call.c          a call's answer and errors, reading its request (call.h)
 * Calls go down that list only.
 *
 * A replica that gives no answer (or 502/503) is marked not ready until the
 * prober sees it ready again, so the next requests go to another.
 * Locking: orders_lock guards the collection-facts cache; the counters are atomics.
 */
#ifndef VD_ROUTING_H
#define VD_ROUTING_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>

#include "router/call.h"
#include "router/replicas.h"
#include "router/route_table.h"
#include "router/router.h"

#define ORDERS_MAX 64
#define ORDER_TTL_S 60.0
#define STATUS_CLASSES 5 /* 1xx … 5xx */

/* What the router must know of a collection to merge its searches. */
typedef struct collection_facts {
    char collection[200];
    bool higher_better; /* score_order */
    bool l2;            /* metric l2 (MMR's relevance and similarity) */
    double at;
} collection_facts;

struct vd_router {
    char *tenant_field;
    long timeout_ms;
    vd_topology *topo;
    pthread_mutex_t orders_lock; /* guards orders, n_orders */
    collection_facts orders[ORDERS_MAX];
    size_t n_orders;
    _Atomic uint64_t *requests; /* (routes + 1) × STATUS_CLASSES: route, status class */
    vd_rt_counters asked;       /* what asking replicas counted */
    _Atomic uint64_t partial_answers, tenant_routed;
};

/* route_search.c */
void vd_rt_op_search(vd_router *r, vd_rt_call *call, const vd_generation *g, vd_rt_shape shape);

/* route_write.c */
void vd_rt_op_upsert(vd_router *r, vd_rt_call *call, const vd_generation *g);
/* The same request to every replica of every partition; counts summed (native). */
void vd_rt_op_broadcast(vd_router *r, vd_rt_call *call, const vd_generation *g);
/* Qdrant edits that name points: located first, each partition gets its own. */
void vd_rt_op_by_ids(vd_router *r, vd_rt_call *call, const vd_generation *g);

/* route_read.c */
/* Any one replica (of partition 0), its answer as it is. */
void vd_rt_op_any(vd_router *r, vd_rt_call *call, const vd_generation *g);
/* One replica of partition p (a tenant's), its answer as it is. */
void vd_rt_op_tenant(vd_router *r, vd_rt_call *call, const vd_generation *g, uint32_t p);
void vd_rt_op_first_found(vd_router *r, vd_rt_call *call, const vd_generation *g);
void vd_rt_op_gather(vd_router *r, vd_rt_call *call, const vd_generation *g, vd_rt_op op);
void vd_rt_op_tenant_only(vd_router *r, vd_rt_call *call, const vd_generation *g);

#endif

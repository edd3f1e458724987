/*
 * router.c — see router.h: the entry of a call (the route's operation, in
 * route_search.c, route_write.c and route_read.c; routing.h lists
 * the files), the router's own answers (probes, metrics), counters, and
 * create/destroy.
 */
#include "router/routing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "vectord/error.h"

static void op_local(vd_router *r, vd_rt_call *call, const vd_rt_route *rt)
{
    const vd_generation *g = vd_topology_current(r->topo);
    if (strstr(rt->label, "readyz") && !vd_generation_ready(g)) {
        vd_rt_fail(call, VD_E_NOT_READY, "a partition has no ready replica");
        return;
    }
    if (strcmp(rt->label, "metrics") == 0) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f) {
            vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
            return;
        }
        fprintf(f, "# TYPE vectord_router_requests_total counter\n");
        size_t n;
        const vd_rt_route *routes = vd_rt_routes(&n);
        for (size_t i = 0; i <= n; i++)
            for (int c = 0; c < STATUS_CLASSES; c++) {
                uint64_t v = atomic_load(&r->requests[i * STATUS_CLASSES + (size_t)c]);
                if (v)
                    fprintf(f, "vectord_router_requests_total{route=\"%s\",status=\"%dxx\"} %lu\n",
                            i < n ? routes[i].label : "unmatched", c + 1, (unsigned long)v);
            }
        fprintf(f, "# TYPE vectord_router_upstream_failures_total counter\n"
                   "vectord_router_upstream_failures_total %lu\n"
                   "# TYPE vectord_router_retries_total counter\nvectord_router_retries_total %lu\n"
                   "# TYPE vectord_router_partial_answers_total counter\nvectord_router_partial_answers_total %lu\n"
                   "# TYPE vectord_router_fanouts_total counter\nvectord_router_fanouts_total %lu\n"
                   "# TYPE vectord_router_tenant_routed_total counter\nvectord_router_tenant_routed_total %lu\n"
                   "# TYPE vectord_router_switches_total counter\nvectord_router_switches_total %lu\n"
                   "# TYPE vectord_router_partitions gauge\nvectord_router_partitions %u\n"
                   "# TYPE vectord_router_replica_ready gauge\n",
                (unsigned long)atomic_load(&r->asked.upstream_failures), (unsigned long)atomic_load(&r->asked.retries),
                (unsigned long)atomic_load(&r->partial_answers), (unsigned long)atomic_load(&r->asked.fanouts),
                (unsigned long)atomic_load(&r->tenant_routed),
                (unsigned long)vd_topology_switches(r->topo), g->n_partitions);
        const vd_generation *gens[2] = {g, vd_topology_next(r->topo)};
        for (int k = 0; k < 2; k++)
            for (uint32_t p = 0; gens[k] && p < gens[k]->n_partitions; p++)
                for (uint32_t i = 0; i < gens[k]->counts[p]; i++) {
                    vd_replica *x = vd_generation_replica(gens[k], p, i);
                    fprintf(f, "vectord_router_replica_ready{generation=\"%s\",partition=\"%u\",replica=\"%s\"} %d\n",
                            k ? "next" : "current", p, x->native, atomic_load(&x->ready) ? 1 : 0);
                }
        fclose(f);
        vd_rt_answer_text(call, 200, text, "text/plain; version=0.0.4");
        return;
    }
    if (call->qdrant) { /* Qdrant's probes answer plain text */
        vd_rt_answer_text(call, 200, strdup(strstr(rt->label, "readyz") ? "all shards are ready"
                                                                  : "healthz check passed"),
                    "text/plain");
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON *res = cJSON_AddObjectToObject(doc, "result");
    cJSON_AddStringToObject(res, "status", "ok");
    cJSON_AddStringToObject(res, "role", "router");
    cJSON_AddNumberToObject(res, "partitions", g->n_partitions);
    cJSON_AddBoolToObject(res, "repartitioning", vd_topology_next(r->topo) != NULL);
    cJSON_AddNumberToObject(doc, "time_ms", 0);
    vd_rt_answer_json(call, doc);
    cJSON_Delete(doc);
}

/* A replica may hold a search for its ?feed_timeout_ms (read-your-writes):
 * the router waits that long and more before it calls the replica silent. */
static long call_timeout(const vd_router *r, const char *query)
{
    const char *v;
    size_t n;
    long w = vd_rt_query_arg(query, "feed_timeout_ms", &v, &n) ? strtol(v, NULL, 10) : 0;
    return w > 0 && w < 3600000 && w + 5000 > r->timeout_ms ? w + 5000 : r->timeout_ms;
}

void vd_router_handle(vd_router *r, vd_rt_call *call)
{
    call->started = vd_now_s();
    call->timeout_ms = call_timeout(r, call->query);
    bool known = false;
    const vd_rt_route *rt = vd_rt_match(call->qdrant, call->method, call->path, &known);
    call->route = rt;
    if (!rt) {
        if (known)
            vd_rt_fail(call, VD_E_METHOD_NOT_ALLOWED, "%s is not allowed on %s", call->method, call->path);
        else
            vd_rt_fail(call, VD_E_NOT_FOUND, "no route %s %s", call->method, call->path);
        return;
    }
    const vd_generation *g = vd_topology_current(r->topo);
    switch (rt->op) {
    case VD_RT_LOCAL:
        op_local(r, call, rt);
        break;
    case VD_RT_ANY:
        vd_rt_op_any(r, call, g);
        break;
    case VD_RT_SEARCH:
        vd_rt_op_search(r, call, g, rt->shape);
        break;
    case VD_RT_UPSERT:
        vd_rt_op_upsert(r, call, g);
        break;
    case VD_RT_BROADCAST:
        vd_rt_op_broadcast(r, call, g);
        break;
    case VD_RT_BY_IDS:
        vd_rt_op_by_ids(r, call, g);
        break;
    case VD_RT_FIRST_FOUND:
        vd_rt_op_first_found(r, call, g);
        break;
    case VD_RT_INFO:
    case VD_RT_RETRIEVE:
    case VD_RT_COUNT:
    case VD_RT_SCROLL:
        vd_rt_op_gather(r, call, g, rt->op);
        break;
    case VD_RT_TENANT_ONLY:
        vd_rt_op_tenant_only(r, call, g);
        break;
    case VD_RT_NOT_ROUTED:
        vd_rt_fail(call, VD_E_INVALID_REQUEST,
                   "%s %s is about one replica's own feed: ask that replica directly (the router "
                   "does not route it)", call->method, call->path);
        break;
    }
    if (!call->status)
        vd_rt_fail(call, VD_E_INTERNAL, "no answer was made");
}

void vd_router_observe(vd_router *r, const vd_rt_call *call)
{
    size_t n;
    const vd_rt_route *routes = vd_rt_routes(&n);
    size_t i = call->route ? (size_t)(call->route - routes) : n; /* n: unmatched */
    int c = call->status / 100 - 1;
    if (c >= 0 && c < STATUS_CLASSES)
        atomic_fetch_add(&r->requests[i * STATUS_CLASSES + (size_t)c], 1);
}

int vd_router_create(vd_router **out, const vd_router_config *cfg, vd_topology *topo)
{
    vd_router *r = calloc(1, sizeof *r);
    size_t n;
    vd_rt_routes(&n);
    if (!r)
        return -ENOMEM;
    pthread_mutex_init(&r->orders_lock, NULL);
    r->requests = calloc((n + 1) * STATUS_CLASSES, sizeof *r->requests);
    r->tenant_field = strdup(cfg->tenant_field ? cfg->tenant_field : "userId");
    if (!r->requests || !r->tenant_field) {
        vd_router_destroy(r);
        return -ENOMEM;
    }
    r->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    r->topo = topo;
    *out = r;
    return 0;
}

void vd_router_destroy(vd_router *r)
{
    if (!r)
        return;
    free((void *)r->requests);
    free(r->tenant_field);
    pthread_mutex_destroy(&r->orders_lock);
    free(r);
}

/*
 * metrics.h — Prometheus metrics: request counts by route and status,
 * latency histograms by route, and gauges read at scrape time (points and
 * memory per collection, process memory). Counters are relaxed atomics:
 * observing a request takes no lock.
 */
#ifndef VD_METRICS_H
#define VD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "db/database.h"
#include "write/recovery.h"
#include "write/store.h"
#include "server/routes.h"

typedef struct vd_metrics vd_metrics;

/* The HTTP layer's load, kept here so /metrics reports it; the HTTP layer
 * updates the fields directly (relaxed atomics). */
typedef enum vd_overload_reason {
    VD_OVERLOAD_CONNECTIONS, /* more than max_connections open */
    VD_OVERLOAD_WAITING,     /* max_waiting_requests parked on the WAL or the feed */
    VD_OVERLOAD_BODY_BYTES,  /* request bodies in memory would pass max_inflight_body_bytes */
    VD_OVERLOAD_QUEUE,       /* max_queued_requests heavy requests queued or running */
    VD_N_OVERLOAD_REASONS
} vd_overload_reason;
/* Why the connection guard (server/conn_guard.h) closed a connection. */
typedef enum vd_conn_close_reason {
    VD_CLOSE_IDLE_DEADLINE,  /* no whole request line within connection_timeout_s of going idle */
    VD_CLOSE_HEAD_DEADLINE,  /* request head not in within request_head_timeout_s */
    VD_CLOSE_BODY_TOO_SLOW,  /* body slower than request_body_min_rate */
    VD_CLOSE_EVICTED,        /* past max_connections: the connection idle longest made room */
    VD_N_CLOSE_REASONS
} vd_conn_close_reason;
/* Where a search request ran (vd_call_searches_here). */
enum { VD_SEARCH_ON_HTTP, VD_SEARCH_ON_WORKER, VD_N_SEARCH_ON };

typedef struct vd_http_load {
    _Atomic long connections;
    _Atomic long active; /* requests dispatched whose answer is not all sent (all listeners) */
    _Atomic uint64_t requests; /* requests begun, ever (all listeners) */
    _Atomic uint64_t closed[VD_N_CLOSE_REASONS];
    _Atomic long waiting;
    _Atomic uint64_t body_bytes;
    _Atomic uint64_t overloaded[VD_N_OVERLOAD_REASONS];
    _Atomic uint64_t searches[VD_N_SEARCH_ON]; /* search requests by the thread they ran on */
} vd_http_load;
vd_http_load *vd_metrics_http_load(vd_metrics *m);

int vd_metrics_create(vd_metrics **out);
void vd_metrics_destroy(vd_metrics *m);
void vd_metrics_observe(vd_metrics *m, vd_route route, int status, double seconds);
/* Records the distance computations one search needed (all shards). */
void vd_metrics_observe_search(vd_metrics *m, uint64_t distances);
/* The store whose WAL and checkpoints are reported (borrowed; set once). */
void vd_metrics_set_store(vd_metrics *m, vd_store *store);
struct vd_feed;
/* The feeds to report (the array is borrowed; set once, before serving). */
void vd_metrics_set_feeds(vd_metrics *m, struct vd_feed **feeds, size_t n);
struct vd_recall_monitor;
/* The recall monitor to report (borrowed, maybe NULL; set once). */
void vd_metrics_set_recall(vd_metrics *m, struct vd_recall_monitor *rm);
void vd_metrics_set_recovery(vd_metrics *m, const vd_recovery_report *rep);
struct vd_jobq;
/* The request workers' queue, whose depth is reported (borrowed; set once). */
void vd_metrics_set_jobs(vd_metrics *m, struct vd_jobq *jobs);
/* Renders the text exposition format; malloc'd into *text. 0 or -ENOMEM. */
int vd_metrics_render(vd_metrics *m, vd_database *db, const char *simd, char **text, size_t *len);

#endif

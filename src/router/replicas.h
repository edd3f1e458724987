/*
 * replicas.h — asking vectord replicas for a router call (replicas.c): one
 * replica of each partition at once, each retried on its partition's next
 * replica while it gets no answer; or every replica of some partitions.
 */
#ifndef VD_REPLICAS_H
#define VD_REPLICAS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/call.h"
#include "router/topology.h"
#include "router/upstream.h"

/* What asking replicas counts (the router's metrics). */
typedef struct vd_rt_counters {
    _Atomic uint64_t upstream_failures, retries, fanouts;
} vd_rt_counters;

/* No answer, or 502/503: worth another replica. */
bool vd_rt_retryable(long status);
/* One replica of each listed partition at once, each retried on its
 * partition's next replicas while it gets no answer; out[i] answers parts[i]. */
void vd_rt_ask_partitions(vd_rt_counters *c, vd_rt_call *call, const vd_generation *g, const uint32_t *parts,
                          size_t n, const char *method, const char *path, const char *query,
                          const char *const *bodies, const size_t *lens, vd_up_req *out);
/* One replica of partition p, the call's own request. */
void vd_rt_ask_partition(vd_rt_counters *c, vd_rt_call *call, const vd_generation *g, uint32_t p,
                         const char *method, const char *body, size_t len, vd_up_req *out);
/* Every replica of the partitions to send to (send[p]) at once, with
 * bodies[p]; *out and *where (each request's partition) are allocated;
 * returns how many requests. */
size_t vd_rt_ask_everyone(vd_rt_counters *c, vd_rt_call *call, const vd_generation *g, const bool *send,
                          char *const *bodies, const size_t *lens, vd_up_req **out, uint32_t **where);
/* One replica of every partition, the same request; NULL (answered) unless
 * every partition answered 200 (or allow_missing: some gave no answer). */
vd_up_req *vd_rt_ask_all(vd_rt_counters *c, vd_rt_call *call, const vd_generation *g, const char *body, size_t len,
                         bool allow_missing, size_t *missing);
/* Why a request got no usable answer ("status 503", or curl's error), in out. */
const char *vd_rt_why(const vd_up_req *q, char *out, size_t cap);
/* When some partition gave no answer: a 503 naming them (true), else false. */
bool vd_rt_unavailable(vd_rt_call *call, const uint32_t *parts, const vd_up_req *q, size_t n);
/* The first answer that is neither 2xx nor "no answer": the request's own
 * fault, the same on every replica; passed through (true). */
bool vd_rt_refused(vd_rt_call *call, vd_up_req *q, size_t n);
void vd_rt_all_partitions(const vd_generation *g, uint32_t *parts);

#endif

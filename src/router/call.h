/*
 * call.h — one request through the router and its answer: the call every
 * part of the router passes along, its errors (in the listener's dialect),
 * and reading its request (call.c).
 */
#ifndef VD_CALL_H
#define VD_CALL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/topology.h"
#include "router/upstream.h"

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
    const struct vd_rt_route *route; /* the route matched (metrics); NULL = none */
    double started;
} vd_rt_call;

void vd_rt_call_free(vd_rt_call *call);
/* Writes an error answer in the call's dialect. */
void vd_rt_fail(vd_rt_call *call, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void vd_rt_answer_text(vd_rt_call *call, int status, char *text, const char *type);
/* Takes over a replica's answer as the call's. */
void vd_rt_pass(vd_rt_call *call, vd_up_req *q);
void vd_rt_answer_json(vd_rt_call *call, cJSON *doc);
/* A replica's answer as JSON, or NULL (answered 502). */
cJSON *vd_rt_parse_answer(vd_rt_call *call, vd_up_req *q);
/* The request body as a JSON object, or NULL (answered 400). */
cJSON *vd_rt_parse_body(vd_rt_call *call);
/* The {c} of /collections/{c}/…, as sent. */
void vd_rt_collection_of(const char *path, char *out, size_t cap);
uint32_t vd_rt_tenant_partition(const char *text, const vd_generation *g);
long vd_rt_number_or(const cJSON *o, const char *name, long def);
/* Ids looked up by their text (UUIDs in any case are one id): fill text
 * with vd_rt_id_text and value as the caller likes, sort, then look up. */
#define VD_RT_ID_TEXT_MAX 300
typedef struct vd_rt_id_entry {
    char text[VD_RT_ID_TEXT_MAX];
    int value;
} vd_rt_id_entry;
void vd_rt_id_text(const cJSON *id, char *out, size_t cap);
void vd_rt_id_sort(vd_rt_id_entry *e, size_t n);
/* The entry of e (sorted) with id's text, or NULL. */
vd_rt_id_entry *vd_rt_id_lookup(vd_rt_id_entry *e, size_t n, const cJSON *id);
/* The value of query argument name (up to the next '&'): *len bytes at
 * *value; false when the query has no such argument. */
bool vd_rt_query_arg(const char *query, const char *name, const char **value, size_t *len);

#endif

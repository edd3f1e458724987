/*
 * api.h — what every HTTP handler gets: the shared server context (vd_api)
 * and one request/response exchange (vd_call).
 */
#ifndef VD_API_H
#define VD_API_H

#include <stdatomic.h>
#include <stdbool.h>

#include <cjson/cJSON.h>

#include "db/database.h"
#include "write/journal.h"
#include "write/store.h"
#include "server/metrics.h"
#include "server/request.h"
#include "server/routes.h"
#include "util/strbuf.h"
#include "vectord/error.h"

/* Shared by all HTTP threads; the pointers are borrowed from main(). */
typedef struct vd_api {
    vd_database *db;
    vd_journal *journal; /* every change goes through it */
    vd_store *store;     /* WAL and snapshots */
    struct vd_auth *auth; /* API keys */
    struct vd_feed **feeds; /* the Postgres feeds (n_feeds, maybe 0) */
    struct vd_recall_monitor *recall; /* samples searches for recall, or NULL */
    size_t n_feeds;
    vd_metrics *metrics;
    vd_limits limits;
    const char *simd; /* name of the active distance kernels */
    struct vd_jobq *jobs; /* the request workers heavy work is offloaded to, or NULL */
    size_t max_queued;    /* their queue's bound (max_queued_requests) */
    _Atomic bool ready;
    _Atomic bool draining; /* shutting down: offloaded work stops at its next deadline check */
} vd_api;

typedef const char *(*vd_arg_cb)(void *conn, const char *name);

/* A result rendered piece by piece as it is sent (a large search answer):
 * the HTTP layer wraps it in the {"result": …, "time_ms": …} envelope and
 * sends each piece as the client reads, so the answer is never held whole. */
typedef struct vd_stream {
    /* Appends the next piece of the result's JSON text to out, setting *done
     * after the last; false on ENOMEM. */
    bool (*next)(void *ctx, vd_strbuf *out, bool *done);
    void (*free)(void *ctx);
    void *ctx; /* NULL: no stream */
    size_t held_bytes; /* memory ctx holds: counted in the in-flight budget until sent */
} vd_stream;

typedef struct vd_call vd_call;
struct vd_call {
    vd_api *api;
    const char *collection; /* path parameter {c}, or NULL */
    const char *point_id;   /* path parameter {id}, or NULL */
    cJSON *body;            /* parsed body (owned by the HTTP layer), or NULL */
    const struct vd_json_vectors *vectors; /* lifted out of the body (server/json_scan.h), or NULL */
    vd_arg_cb arg;          /* query-string lookup */
    double started;         /* CLOCK_MONOTONIC seconds of the request's first byte */
    double deadline;        /* the seconds it must end by: request_timeout_ms from started,
                               or less if ?timeout_ms= asks (set by the HTTP layer) */
    void *conn;
    const char *request_id; /* X-Request-Id; log lines from the call carry it */
    vd_dialect dialect;     /* the listener's: which envelope and error shape the answer takes */
    /* Set by a handler that adapts another's answer (a Qdrant route over a
     * native handler): run once the call succeeds, after any wait, before
     * the answer is rendered; it may change result, status or fail. */
    int (*finish)(vd_call *call);
    /* Filled by the handler on success: */
    int status;            /* default 200 */
    cJSON *result;         /* owned; wrapped as {"result": …, "time_ms": …} */
    char *text;            /* owned raw reply instead of JSON (metrics) */
    size_t text_len;
    const char *content_type;
    vd_stream stream;      /* owned result sent as it renders, instead of result */
    /* Filled on failure: */
    vd_errmsg em;
    /* A handler that must wait (for its WAL record to be durable) sets resume
     * and pending and returns VD_CALL_SUSPENDED: the HTTP layer parks the
     * connection, without a thread, until vd_call_wake(call); then resume
     * runs on an HTTP thread and completes the call like a handler would. */
    int (*resume)(vd_call *call);
    void *pending; /* the handler's state across the wait; resume frees it */
    /* vd_call_offload's: */
    bool offloaded;
    bool offload_always; /* runs past its deadline (vd_call_offload_always) */
    int (*offload_fn)(vd_call *call);
    int offload_err;
    void *http;    /* the HTTP layer's request state */
};

#define VD_CALL_SUSPENDED 1

/* Wakes a suspended call (a vd_call *); from any thread, exactly once per
 * suspension. Its signature makes it a wake callback as it is. */
void vd_call_wake(void *call);

/* Looks up the call's collection: a new reference, or an error naming it. */
int vd_call_collection(vd_call *call, vd_collection **out);
/* VD_E_INVALID_REQUEST "request body must be <shape>" when the call has no body. */
int vd_call_require_body(vd_call *call, const char *shape);
/* The feed named by ?name= (default: the first), or an error. */
int vd_call_feed(vd_call *call, struct vd_feed **out);
/* Parses a "true"/"false" query argument. */
int vd_call_bool_arg(vd_call *call, const char *name, bool def, bool *out);
/* Runs fn(call) on the request workers instead of this HTTP thread, and
 * renders its answer there too, so heavy work never holds the threads that
 * accept connections and answer probes: VD_CALL_SUSPENDED (the call's
 * answer is fn's), or VD_E_OVERLOADED when max_queued_requests wait
 * already. fn must not suspend. */
int vd_call_offload(vd_call *call, int (*fn)(vd_call *call));
/* The same for work that must run even when the queue is full (applying a
 * logged write): then it runs here, on the calling thread. */
int vd_call_offload_always(vd_call *call, int (*fn)(vd_call *call));
/* Answers the call with s's result (taken): rendered whole here when its
 * text is about answer_bytes below VD_STREAM_MIN_BYTES, else streamed.
 * 0, or VD_E_OUT_OF_MEMORY. */
#define VD_STREAM_MIN_BYTES ((size_t)1 << 20)
int vd_call_answer_stream(vd_call *call, vd_stream s, size_t answer_bytes);
/* VD_E_DEADLINE_EXCEEDED when the call is past its deadline (what names
 * the step), else 0. Long work checks it between its steps. */
int vd_call_check_deadline(vd_call *call, const char *what);

#endif

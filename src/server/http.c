/*
 * http.c — see http.h.
 *
 * A request moves through libmicrohttpd's access handler in three kinds of
 * calls: the first (headers only: early 413/415 checks), zero or more with
 * body bytes (appended to a bounded buffer), and a last one with no bytes,
 * where the route is matched, the body parsed and the handler called. The
 * per-request state lives in req_ctx and is freed by the completion callback.
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <strings.h>
#include <time.h>

#include "server/auth.h"
#include "server/conn_guard.h"
#include "server/json_util.h"
#include "server/response.h"
#include "util/jobq.h"
#include "util/log.h"
#include "util/strbuf.h"

struct vd_http {
    struct MHD_Daemon *daemon;
    vd_api *api;
    uint64_t max_body;
    /* Overload limits (docs/OPERATIONS.md "Limits and overload"): past them a
     * request gets 503 overloaded with Retry-After instead of a queue. */
    uint64_t max_connections;  /* open connections served normally */
    uint64_t max_waiting;      /* requests parked on the WAL or the feed */
    uint64_t max_body_total;   /* request body bytes held in memory, all requests */
    vd_http_load *load;        /* counters, shared with /metrics */
    _Atomic long in_dispatch;  /* requests between routing and their answer or suspension */
    _Atomic long unfinished;   /* requests dispatched whose answer is not yet all sent */
    vd_conn_guard *guard;      /* request deadlines, eviction past max_connections */
    char *tls_cert, *tls_key;  /* PEM texts; libmicrohttpd reads them while it runs */
    vd_access_log access_log;  /* which answered requests get a log line */
    vd_dialect dialect;        /* the routes served, the envelopes and errors written */
    char id_prefix[9];         /* generated request ids: this process's random prefix, */
    _Atomic uint64_t id_next;  /* then a counter */
};

/* A suspended call's wake-up, which may come before the connection is
 * parked: whichever of the two comes second resumes the connection. */
enum { WAKE_PENDING = 0, WAKE_ARMED = 1, WAKE_WOKEN = 2 };

/* X-Request-Id: taken from the request when it is 1 to 64 visible ASCII
 * characters other than '"' and '\\' (safe in headers, logs and JSON as
 * it is), generated otherwise. */
#define REQUEST_ID_MAX 64

typedef struct req_ctx {
    struct timespec start;
    char request_id[REQUEST_ID_MAX + 1];
    char method[12];
    int status; /* the answer's, once queued; 0 before */
    vd_strbuf body;
    bool responded;   /* an early error was queued; ignore the rest */
    bool too_large;   /* the body outgrew max_body_bytes: drain it, then answer 413 */
    bool over_budget; /* bodies in memory outgrew max_inflight_body_bytes: drain, then 503 */
    bool close_after; /* close the connection after the answer */
    bool path_bad;    /* the URI as sent decodes to a NUL or to bytes that are not UTF-8 */
    bool path_slash;  /* the path as sent ends with a literal '/' (not "%2F") */
    uint64_t drained; /* bytes read and dropped after too_large or over_budget */
    uint64_t received; /* body bytes arrived */
    bool dispatched;   /* counted in unfinished until on_completed */
    uint64_t counted; /* this body's bytes in load->body_bytes */
    uint64_t parse_counted; /* its parse's bytes (cJSON tree, lifted vectors) there too */
    uint64_t answer_counted; /* and its answer's, until sent */
    vd_json_vectors vectors; /* lifted out of the body by the scan */
    /* across a suspension: */
    bool suspended;
    bool waits; /* parked on the WAL or the feed: counted in load->waiting */
    _Atomic int wake;
    struct MHD_Connection *conn;
    vd_call call;
    vd_route route;
    char *path; /* the call's path parameters point into it */
} req_ctx;

static double elapsed_s(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Headers every answer carries: the request id; rc's status is recorded. */
static void add_common_headers(struct MHD_Response *resp, req_ctx *rc, int status)
{
    rc->status = status;
    MHD_add_response_header(resp, "X-Request-Id", rc->request_id);
}

static enum MHD_Result send_raw(struct MHD_Connection *conn, req_ctx *rc, int status, char *data,
                                size_t len, const char *content_type, const char *allow, bool close)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    add_common_headers(resp, rc, status);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"vectord\"");
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    /* Every 503 (overloaded, not ready, disk full) is worth retrying. */
    if (status == 503)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result r = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* Appends '\n' to a malloc'd JSON text (so curl output ends its line); returns
 * the length. On ENOMEM the text is sent without it. */
static size_t terminate_line(char **text)
{
    size_t len = strlen(*text);
    char *t = realloc(*text, len + 2);
    if (!t)
        return len;
    t[len] = '\n';
    t[len + 1] = 0;
    *text = t;
    return len + 1;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, req_ctx *rc, int status, cJSON *doc)
{
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (!text) {
        static const char oom[] =
            "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"cannot render the response\"}}";
        text = strdup(oom);
        status = 503;
        if (!text)
            return MHD_NO;
    }
    return send_raw(conn, rc, status, text, terminate_line(&text), "application/json", NULL, false);
}

static enum MHD_Result send_error(vd_http *h, struct MHD_Connection *conn, req_ctx *rc,
                                  vd_route route, int err, const char *message, const char *allow)
{
    int status = vd_err_status(err);
    cJSON *doc = cJSON_CreateObject();
    const char *text_of = message && *message ? message : vd_err_message(err);
    if (h->dialect == VD_DIALECT_QDRANT) {
        /* Qdrant's shape: {"status": {"error": "…"}, "time": s}; the code
         * leads the message so that a client shows it. */
        char both[sizeof(((vd_errmsg *)0)->text) + 64];
        snprintf(both, sizeof both, "%s: %s", vd_err_code(err), text_of);
        cJSON *st = cJSON_AddObjectToObject(doc, "status");
        cJSON_AddStringToObject(st, "error", both);
        cJSON_AddNumberToObject(doc, "time", elapsed_s(&rc->start));
    } else {
        cJSON *e = cJSON_AddObjectToObject(doc, "error");
        cJSON_AddStringToObject(e, "code", vd_err_code(err));
        cJSON_AddStringToObject(e, "message", text_of);
        cJSON_AddStringToObject(e, "request_id", rc->request_id);
    }
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    rc->responded = true;
    vd_metrics_observe(h->api->metrics, route, status, elapsed_s(&rc->start));
    if (!text)
        return MHD_NO;
    return send_raw(conn, rc, status, text, terminate_line(&text), "application/json", allow,
                    rc->close_after);
}

/* 503 overloaded for one of the limits, counted by reason. */
static enum MHD_Result send_overloaded(vd_http *h, struct MHD_Connection *conn, req_ctx *rc,
                                       vd_route route, vd_overload_reason why, const char *message)
{
    atomic_fetch_add_explicit(&h->load->overloaded[why], 1, memory_order_relaxed);
    return send_error(h, conn, rc, route, VD_E_OVERLOADED, message, NULL);
}

/* Frees the request body and gives its bytes back to the in-memory budget. */
static void release_body(vd_http *h, req_ctx *rc)
{
    vd_strbuf_free(&rc->body);
    atomic_fetch_sub_explicit(&h->load->body_bytes, rc->counted, memory_order_relaxed);
    rc->counted = 0;
}

static const char *arg_lookup(void *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

/* Matches path against pattern; on success path params point into buf (a
 * writable copy of path). */
static bool match(const char *pattern, char *buf, const char **coll, const char **id)
{
    const char *p = pattern;
    char *s = buf;
    *coll = *id = NULL;
    while (*p) {
        if (strncmp(p, "{c}", 3) == 0) {
            char *end = strchr(s, '/');
            if (s == end || !*s)
                return false;
            *coll = s;
            p += 3;
            if (end) {
                if (*p != '/')
                    return false;
                *end = 0;
                s = end + 1;
                p++;
            } else {
                s += strlen(s);
            }
            continue;
        }
        if (strncmp(p, "{id}", 4) == 0) {
            if (!*s)
                return false;
            *id = s; /* the rest of the path: ids may contain '/' */
            return true;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    return *s == 0;
}

/* Sends the outcome of the call in rc (a handler's or a resume's). */
/* An answer waiting to be sent is memory too: it counts in the in-flight
 * budget until sent, so clients slow to read big answers make new requests
 * wait (503) instead of growing memory. */
static void count_answer(vd_http *h, req_ctx *rc, size_t len)
{
    atomic_fetch_add_explicit(&h->load->body_bytes, len, memory_order_relaxed);
    rc->answer_counted += len;
}

/* A streamed answer (vd_stream) on its way out: the envelope's head, the
 * result's pieces as the client reads them, the envelope's tail. */
typedef struct stream_out {
    vd_stream s;
    vd_strbuf buf; /* the piece being sent */
    size_t off;    /* how much of it is sent */
    bool done;     /* the tail is in buf */
    double secs;   /* the call's time, for time_ms */
    vd_dialect dialect;
} stream_out;

static ssize_t stream_read(void *cls, uint64_t pos, char *dst, size_t max)
{
    stream_out *o = cls;
    while (o->off == o->buf.len) {
        if (o->done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        vd_strbuf_clear(&o->buf);
        o->off = 0;
        bool last = false;
        if (!o->s.next(o->s.ctx, &o->buf, &last) ||
            (last && !vd_resp_envelope_tail(&o->buf, o->secs, o->dialect))) {
            vd_log_warn("out of memory streaming an answer; the connection is closed", "bytes_sent=%llu",
                        (unsigned long long)pos);
            return MHD_CONTENT_READER_END_WITH_ERROR; /* the client sees a cut answer */
        }
        o->done = last;
    }
    size_t n = o->buf.len - o->off < max ? o->buf.len - o->off : max;
    memcpy(dst, o->buf.data + o->off, n);
    o->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    stream_out *o = cls;
    o->s.free(o->s.ctx);
    vd_strbuf_free(&o->buf);
    free(o);
}

static void drop_stream(vd_call *call)
{
    if (call->stream.ctx)
        call->stream.free(call->stream.ctx);
    call->stream = (vd_stream){0};
}

/* Sends the call's stream (taken) with chunked transfer encoding. */
static enum MHD_Result send_stream(vd_http *h, struct MHD_Connection *conn, req_ctx *rc,
                                   double secs)
{
    stream_out *o = calloc(1, sizeof *o);
    if (!o) {
        drop_stream(&rc->call);
        return send_json(conn, rc, 200, NULL);
    }
    o->s = rc->call.stream;
    rc->call.stream = (vd_stream){0};
    o->secs = secs;
    o->dialect = h->dialect;
    vd_strbuf_init(&o->buf, 0);
    if (!vd_resp_envelope_head(&o->buf)) {
        stream_free(o);
        return send_json(conn, rc, 200, NULL);
    }
    count_answer(h, rc, o->s.held_bytes);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32768, stream_read, o, stream_free);
    if (!resp) {
        stream_free(o);
        return MHD_NO;
    }
    add_common_headers(resp, rc, rc->call.status);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result r = MHD_queue_response(conn, (unsigned)rc->call.status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result answer(vd_http *h, struct MHD_Connection *conn, req_ctx *rc, int err)
{
    vd_call *call = &rc->call;
    vd_route route = rc->route;
    enum MHD_Result result;
    if (!err && call->finish) { /* an adapter's last step (api.h) */
        err = call->finish(call);
        call->finish = NULL;
    }
    if (err) {
        cJSON_Delete(call->result);
        free(call->text);
        drop_stream(call);
        result = send_error(h, conn, rc, route, err, call->em.text, NULL);
    } else if (call->stream.ctx) {
        double secs = elapsed_s(&rc->start);
        vd_metrics_observe(h->api->metrics, route, call->status, secs);
        result = send_stream(h, conn, rc, secs);
    } else if (call->text) {
        vd_metrics_observe(h->api->metrics, route, call->status, elapsed_s(&rc->start));
        count_answer(h, rc, call->text_len);
        result = send_raw(conn, rc, call->status, call->text, call->text_len,
                          call->content_type ? call->content_type : "text/plain", NULL, false);
    } else {
        double secs = elapsed_s(&rc->start);
        vd_metrics_observe(h->api->metrics, route, call->status, secs);
        size_t len;
        char *text = vd_resp_envelope(call->result, secs, h->dialect, &len);
        call->result = NULL;
        if (text)
            count_answer(h, rc, len);
        result = text ? send_raw(conn, rc, call->status, text, len, "application/json", NULL, false)
                      : send_json(conn, rc, call->status, NULL);
    }
    call->result = NULL;
    call->text = NULL;
    cJSON_Delete(call->body);
    call->body = NULL;
    free(rc->path);
    rc->path = NULL;
    return result;
}

/* Requests that may park (VD_CALL_SUSPENDED) until the WAL or the feed
 * catches up: writes, and searches that wait for a feed transaction. */
static bool may_wait(vd_route r, struct MHD_Connection *conn)
{
    unsigned f = vd_routes[r].flags;
    if (f & VD_RF_WAITS_XID)
        return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "feed_xid") != NULL ||
               MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "feed_lsn") != NULL;
    return (f & VD_RF_WAITS) != 0;
}

/* Step 1 of a dispatch: the route of method + path (a writable copy of the
 * URL without a trailing '/'), with the call's path parameters pointing into
 * path. VD_ROUTE_NONE if none; allow then lists the methods the path has. */
static bool served_here(const vd_http *h, int route)
{
    return ((vd_routes[route].flags & VD_RF_QDRANT) != 0) == (h->dialect == VD_DIALECT_QDRANT);
}

static vd_route match_route(const vd_http *h, char *path, const char *method, vd_call *call,
                            char *allow, size_t allow_cap)
{
    size_t len = strlen(path);
    char *buf = malloc(len + 1);
    vd_route route = VD_ROUTE_NONE;
    if (!buf)
        return VD_ROUTE_NONE;
    /* HEAD is GET without the body (libmicrohttpd sends the headers only). */
    const char *as = strcmp(method, "HEAD") == 0 ? "GET" : method;
    for (int i = 0; i < VD_ROUTE_NONE; i++) {
        const char *coll, *id;
        if (!served_here(h, i))
            continue;
        memcpy(buf, path, len + 1);
        if (!match(vd_routes[i].pattern, buf, &coll, &id))
            continue;
        if (strcmp(vd_routes[i].method, as) != 0) {
            bool get = strcmp(vd_routes[i].method, "GET") == 0;
            if (!strstr(allow, vd_routes[i].method))
                snprintf(allow + strlen(allow), allow_cap - strlen(allow), "%s%s%s",
                         *allow ? ", " : "", vd_routes[i].method, get ? ", HEAD" : "");
            continue;
        }
        route = (vd_route)i;
        /* Keep the params: re-split into `path`, which outlives the handler. */
        match(vd_routes[i].pattern, path, &call->collection, &call->point_id);
        break;
    }
    free(buf);
    return route;
}

/* Step 2: whether the server takes this request now: the caller's key,
 * readiness, and the cap on parked requests. 0, or an error with message
 * (and, for overload, *why set). */
static int admit(vd_http *h, struct MHD_Connection *conn, vd_route route, vd_errmsg *em,
                 bool *overloaded)
{
    *overloaded = false;
    if (h->api->auth) {
        int arc = vd_auth_check(h->api->auth, route,
                                MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                            MHD_HTTP_HEADER_AUTHORIZATION),
                                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "api-key"), em);
        if (arc)
            return arc;
    }
    if (!(vd_routes[route].flags & VD_RF_ALWAYS) && !atomic_load(&h->api->ready))
        return vd_fail(em, VD_E_NOT_READY,
                       "vectord is recovering its data or shutting down; see /readyz");
    if (may_wait(route, conn) &&
        (uint64_t)atomic_load_explicit(&h->load->waiting, memory_order_relaxed) >= h->max_waiting) {
        *overloaded = true;
        return vd_fail(em, VD_E_OVERLOADED,
                       "%llu requests are already waiting for the disk or the feed (setting "
                       "max_waiting_requests); retry later",
                       (unsigned long long)h->max_waiting);
    }
    return 0;
}

/* Step 2b: the call's deadline (request_timeout_ms, or ?timeout_ms=). */
static int set_deadline(vd_call *call)
{
    uint64_t max = call->api->limits.request_timeout_ms, ms = max;
    const char *v = call->arg(call->conn, "timeout_ms");
    if (v) {
        char *end;
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *end || *v == '-' || x < 1 || x > max)
            return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                           "query parameter timeout_ms must be an integer from 1 to %llu "
                           "(setting request_timeout_ms), got '%.32s'",
                           (unsigned long long)max, v);
        ms = x;
    }
    call->deadline = call->started + (double)ms / 1e3;
    return 0;
}

/* Step 3: the body as JSON, for routes that take one; 0 or an error. The
 * scan (server/json_scan.h) checks its strings, lifts its vectors and says
 * what the parse will allocate, which is charged to the in-flight budget
 * before cJSON allocates it. */
static int parse_body(vd_http *h, req_ctx *rc, vd_route route, cJSON **out, vd_errmsg *em,
                      bool *overloaded)
{
    *out = NULL;
    if (!(vd_routes[route].flags & VD_RF_BODY) || rc->body.len == 0)
        return 0;
    vd_json_scan_stats st;
    vd_json_vectors *lift = vd_routes[route].flags & VD_RF_VECTORS ? &rc->vectors : NULL;
    if (lift)
        lift->max_per_array = h->api->limits.max_dim;
    int bad = vd_json_scan(rc->body.data, rc->body.len, lift, &st, em);
    if (bad)
        return bad;
    size_t cost = vd_json_scan_cost(&st, rc->body.len, lift);
    size_t extra = cost > rc->counted ? cost - rc->counted : 0;
    if (cost > h->max_body_total)
        return vd_fail(em, VD_E_BODY_TOO_LARGE,
                       "request body needs %zu bytes of memory to parse (%zu JSON values), more "
                       "than all requests may hold (setting max_inflight_body_bytes = %llu); "
                       "send fewer values, or vectors as vector_b64",
                       cost, st.values, (unsigned long long)h->max_body_total);
    if (atomic_fetch_add_explicit(&h->load->body_bytes, extra, memory_order_relaxed) + extra >
        h->max_body_total) {
        atomic_fetch_sub_explicit(&h->load->body_bytes, extra, memory_order_relaxed);
        *overloaded = true;
        return vd_fail(em, VD_E_OVERLOADED,
                       "request bodies in memory are at their limit (setting "
                       "max_inflight_body_bytes); retry later");
    }
    rc->parse_counted = extra;
    const char *end = NULL;
    size_t len = vd_json_compact(rc->body.data, rc->body.len, lift);
    /* len + 1: the buffer is NUL-terminated and cJSON must see that NUL to
     * reject trailing bytes after the document. */
    cJSON *body = cJSON_ParseWithLengthOpts(rc->body.data, len + 1, &end, 1);
    if (!body) {
        size_t at = end && end >= rc->body.data ? (size_t)(end - rc->body.data) : 0;
        return vd_fail(em, VD_E_MALFORMED_JSON,
                       "request body is not valid JSON (error at byte %zu of %zu)",
                       vd_json_original_offset(lift, at), rc->body.len);
    }
    size_t parsed = (size_t)(end - rc->body.data);
    bad = parsed < len
              ? vd_fail(em, VD_E_MALFORMED_JSON,
                        "request body has bytes after the JSON document (at byte %zu of %zu)",
                        vd_json_original_offset(lift, parsed), rc->body.len)
              : vd_json_unique_keys(body, em); /* after the scan: "k\u0000a" and "k\u0000b" are a NUL, not one key twice */
    if (bad) {
        cJSON_Delete(body);
        return bad;
    }
    *out = body;
    return 0;
}

/* Parks a call that returned VD_CALL_SUSPENDED until vd_call_wake. One
 * waiting on the WAL or the feed counts in `waiting` (max_waiting_requests);
 * one offloaded to the request workers is bounded by their queue. */
static enum MHD_Result park(vd_http *h, struct MHD_Connection *conn, req_ctx *rc)
{
    rc->waits = !rc->call.offloaded;
    if (rc->waits)
        atomic_fetch_add(&h->load->waiting, 1);
    rc->suspended = true;
    MHD_suspend_connection(conn);
    int expected = WAKE_PENDING;
    if (!atomic_compare_exchange_strong(&rc->wake, &expected, WAKE_ARMED))
        MHD_resume_connection(conn); /* woken already */
    return MHD_YES;
}

/* Step 4: runs the handler; a handler that must wait parks the connection. */
static enum MHD_Result run(vd_http *h, struct MHD_Connection *conn, req_ctx *rc)
{
    atomic_store(&rc->wake, WAKE_PENDING);
    int err = vd_routes[rc->route].handler(&rc->call);
    if (err == VD_CALL_SUSPENDED)
        return park(h, conn, rc);
    return answer(h, conn, rc, err);
}

/* A parked call was woken: finish it (or park it again). */
static enum MHD_Result resume(vd_http *h, struct MHD_Connection *conn, req_ctx *rc)
{
    rc->suspended = false;
    if (rc->waits)
        atomic_fetch_sub(&h->load->waiting, 1);
    atomic_store(&rc->wake, WAKE_PENDING);
    int err = rc->call.resume(&rc->call);
    if (err == VD_CALL_SUSPENDED)
        return park(h, conn, rc);
    return answer(h, conn, rc, err);
}

/* A complete request: match, admit, parse, run. */
static enum MHD_Result dispatch(vd_http *h, struct MHD_Connection *conn, req_ctx *rc,
                                const char *url, const char *method)
{
    if (rc->path_bad)
        return send_error(h, conn, rc, VD_ROUTE_NONE, VD_E_INVALID_REQUEST,
                          "the request path or query string has an escape that decodes to NUL "
                          "(%00) or to bytes that are not UTF-8; names, ids and arguments must be "
                          "UTF-8 without NUL",
                          NULL);
    size_t len = strlen(url);
    char *path = malloc(len + 1);
    if (!path)
        return send_error(h, conn, rc, VD_ROUTE_NONE, VD_E_OUT_OF_MEMORY, NULL, NULL);
    memcpy(path, url, len + 1);
    /* "/collections/" is "/collections"; but ".../points/x%2F" names point "x/". */
    if (len > 1 && path[len - 1] == '/' && rc->path_slash)
        path[len - 1] = 0;
    vd_call call = {.api = h->api, .arg = arg_lookup, .conn = conn, .status = 200,
                    .started = (double)rc->start.tv_sec + (double)rc->start.tv_nsec / 1e9,
                    .request_id = rc->request_id};
    char allow[64] = "";
    call.dialect = h->dialect;
    vd_route route = match_route(h, path, method, &call, allow, sizeof allow);
    rc->route = route; /* for the access log */
    vd_errmsg em = {{0}};
    enum MHD_Result result;
    if (route == VD_ROUTE_NONE) {
        if (*allow) {
            vd_fail(&em, VD_E_METHOD_NOT_ALLOWED, "method %.16s is not allowed on %.200s; allowed: %s",
                    method, url, allow);
            result = send_error(h, conn, rc, route, VD_E_METHOD_NOT_ALLOWED, em.text, allow);
        } else {
            vd_fail(&em, VD_E_NOT_FOUND, "no route for %.16s %.200s (see docs/API.md)", method, url);
            result = send_error(h, conn, rc, route, VD_E_NOT_FOUND, em.text, NULL);
        }
        free(path);
        return result;
    }
    bool overloaded = false, over_budget = false;
    int err = admit(h, conn, route, &em, &overloaded);
    if (!err && (err = set_deadline(&call)))
        em = call.em;
    if (!err)
        err = parse_body(h, rc, route, &call.body, &em, &over_budget);
    if (err) {
        free(path);
        if (overloaded)
            return send_overloaded(h, conn, rc, route, VD_OVERLOAD_WAITING, em.text);
        if (over_budget)
            return send_overloaded(h, conn, rc, route, VD_OVERLOAD_BODY_BYTES, em.text);
        return send_error(h, conn, rc, route, err, em.text, NULL);
    }
    call.vectors = &rc->vectors;
    rc->call = call;
    rc->route = route;
    rc->path = path;
    rc->conn = conn;
    rc->call.http = rc;
    return run(h, conn, rc);
}

void vd_call_wake(void *call)
{
    req_ctx *rc = ((vd_call *)call)->http;
    if (atomic_exchange(&rc->wake, WAKE_WOKEN) == WAKE_ARMED)
        MHD_resume_connection(rc->conn);
}

static bool content_type_ok(struct MHD_Connection *conn)
{
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || !*ct)
        return true;
    static const char *const ok[] = {"application/json", "application/x-www-form-urlencoded"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(ok[i]);
        if (strncasecmp(ct, ok[i], n) == 0 && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' '))
            return true;
    }
    return false;
}

/* Probes and metrics are answered even past max_connections: a kubelet must
 * not restart a busy pod, and a busy pod is when metrics matter most. These
 * are the routes flagged VD_RF_ALWAYS (fixed paths, no parameters). */
static bool is_monitoring_path(const vd_http *h, const char *url)
{
    for (int i = 0; i < VD_ROUTE_NONE; i++)
        if (served_here(h, i) && (vd_routes[i].flags & VD_RF_ALWAYS) &&
            strcmp(url, vd_routes[i].pattern) == 0)
            return true;
    return false;
}

/* What on_uri learnt of the path as sent, carried to the request's first
 * on_request call as a pointer into uri_marks (no allocation: a request that
 * libmicrohttpd refuses before calling on_request has nothing to free). */
enum { URI_PATH_BAD = 1, URI_PATH_SLASH = 2 };
static const char uri_marks[4];

static bool is_uri_mark(const void *p)
{
    return (const char *)p >= uri_marks && (const char *)p < uri_marks + sizeof uri_marks;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* libmicrohttpd calls this with the URI as the client sent it, before it
 * unescapes it for on_request: the one place to see a "%00" that would cut
 * the path or a query argument short (so "/collections/h1%00junk" would name
 * h1), escapes that decode to bytes that are not UTF-8, and whether a
 * trailing '/' was sent as such or as "%2F" (then it is part of a point id). */
/* The connection's guard slot (its socket context). */
static vd_conn_slot *slot_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    vd_http *h = cls;
    vd_conn_guard_request_line(h->guard, slot_of(conn));
    size_t n = strcspn(uri, "?");
    unsigned marks = n > 1 && uri[n - 1] == '/' ? URI_PATH_SLASH : 0;
    char dec[32768]; /* libmicrohttpd's whole per-connection memory is 32 KiB by default */
    size_t m = 0;
    n = strlen(uri); /* the query string's arguments too: "?name=%00x" would name "" */
    for (size_t i = 0; i < n && m < sizeof dec; i++) {
        int hi, lo;
        if (uri[i] == '%' && i + 2 < n && (hi = hex_digit(uri[i + 1])) >= 0 &&
            (lo = hex_digit(uri[i + 2])) >= 0) {
            dec[m++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dec[m++] = uri[i];
        }
    }
    if (!vd_utf8_valid(dec, m))
        marks |= URI_PATH_BAD;
    return (void *)(uintptr_t)(uri_marks + marks);
}

static bool request_id_ok(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++)
        if (n == REQUEST_ID_MAX || id[n] <= 0x20 || id[n] >= 0x7f || id[n] == '"' || id[n] == '\\')
            return false;
    return n > 0;
}

/* The request's id: the client's X-Request-Id when usable, else a new one. */
static void name_request(vd_http *h, struct MHD_Connection *conn, req_ctx *rc)
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given && request_id_ok(given)) {
        memcpy(rc->request_id, given, strlen(given) + 1);
        return;
    }
    uint64_t n = atomic_fetch_add_explicit(&h->id_next, 1, memory_order_relaxed);
    snprintf(rc->request_id, sizeof rc->request_id, "%s%012llx", h->id_prefix,
             (unsigned long long)(n & 0xffffffffffffULL));
}

static enum MHD_Result serve(vd_http *h, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *upload_data, size_t *upload_data_size,
                             void **con_cls)
{
    req_ctx *rc = *con_cls;
    if (rc && !is_uri_mark(rc))
        vd_log_request(rc->request_id);
    if (!rc || is_uri_mark(rc)) {
        unsigned marks = rc ? (unsigned)((const char *)(void *)rc - uri_marks) : 0;
        rc = calloc(1, sizeof *rc);
        if (!rc)
            return MHD_NO;
        rc->path_bad = marks & URI_PATH_BAD;
        rc->path_slash = marks & URI_PATH_SLASH;
        clock_gettime(CLOCK_MONOTONIC, &rc->start);
        atomic_fetch_add_explicit(&h->load->requests, 1, memory_order_relaxed);
        name_request(h, conn, rc);
        snprintf(rc->method, sizeof rc->method, "%s", method);
        rc->route = VD_ROUTE_NONE; /* until dispatch matches one */
        vd_log_request(rc->request_id);
        vd_strbuf_init(&rc->body, h->max_body);
        *con_cls = rc;
        vd_conn_guard_head_done(h->guard, slot_of(conn));
        if (vd_conn_guard_live(h->guard) > h->max_connections && !is_monitoring_path(h, url)) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "more than %llu connections are open (setting max_connections); retry later",
                     (unsigned long long)h->max_connections);
            rc->close_after = true;
            return send_overloaded(h, conn, rc, VD_ROUTE_NONE, VD_OVERLOAD_CONNECTIONS, msg);
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t announced = cl ? strtoull(cl, NULL, 10) : 0;
        if (announced <= h->max_body &&
            atomic_load_explicit(&h->load->body_bytes, memory_order_relaxed) + announced >
                h->max_body_total)
            return send_overloaded(h, conn, rc, VD_ROUTE_NONE, VD_OVERLOAD_BODY_BYTES,
                                   "request bodies in memory are at their limit (setting "
                                   "max_inflight_body_bytes); retry later");
        if (cl && announced > h->max_body) {
            char msg[160];
            snprintf(msg, sizeof msg, "request body of %.20s bytes exceeds %llu (setting max_body_bytes)",
                     cl, (unsigned long long)h->max_body);
            return send_error(h, conn, rc, VD_ROUTE_NONE, VD_E_BODY_TOO_LARGE, msg, NULL);
        }
        const char *encoding = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                           MHD_HTTP_HEADER_CONTENT_ENCODING);
        if (encoding && strcasecmp(encoding, "identity") != 0) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "content encoding '%.60s' is not supported; send the body uncompressed "
                     "(no Content-Encoding)", encoding);
            return send_error(h, conn, rc, VD_ROUTE_NONE, VD_E_UNSUPPORTED_MEDIA_TYPE, msg, NULL);
        }
        bool has_body_method = strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0 ||
                               strcmp(method, "PATCH") == 0;
        if (has_body_method && !content_type_ok(conn)) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "content type '%.80s' is not supported; send application/json",
                     MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE));
            return send_error(h, conn, rc, VD_ROUTE_NONE, VD_E_UNSUPPORTED_MEDIA_TYPE, msg, NULL);
        }
        if (announced)
            vd_strbuf_reserve(&rc->body, announced); /* one buffer of the right size */
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        rc->received += n;
        if (!vd_conn_guard_body(h->guard, slot_of(conn), rc->received))
            return MHD_NO; /* too slow: closed */
        if (rc->responded)
            return MHD_YES;
        if (rc->too_large || rc->over_budget) {
            /* libmicrohttpd cannot answer before the upload ends, so a body
             * that outgrew a limit (chunked, no Content-Length) is drained
             * and dropped; past twice the limit plus 1 MiB the connection is cut. */
            rc->drained += n;
            return rc->drained > 2 * h->max_body + (1u << 20) ? MHD_NO : MHD_YES;
        }
        if (atomic_fetch_add_explicit(&h->load->body_bytes, n, memory_order_relaxed) + n >
            h->max_body_total) {
            atomic_fetch_sub_explicit(&h->load->body_bytes, n, memory_order_relaxed);
            rc->over_budget = true;
            rc->drained = rc->body.len + n;
            release_body(h, rc);
            return MHD_YES;
        }
        rc->counted += n;
        if (!vd_strbuf_append(&rc->body, upload_data, n)) {
            if (rc->body.len + n <= h->max_body)
                return send_error(h, conn, rc, VD_ROUTE_NONE, VD_E_OUT_OF_MEMORY,
                                  "out of memory reading the request body", NULL);
            rc->too_large = true;
            rc->drained = rc->body.len + n;
            release_body(h, rc);
        }
        return MHD_YES;
    }
    if (rc->over_budget)
        return send_overloaded(h, conn, rc, VD_ROUTE_NONE, VD_OVERLOAD_BODY_BYTES,
                               "request bodies in memory are at their limit (setting "
                               "max_inflight_body_bytes); retry later");
    if (rc->too_large) {
        char msg[120];
        snprintf(msg, sizeof msg, "request body exceeds %llu bytes (setting max_body_bytes)",
                 (unsigned long long)h->max_body);
        return send_error(h, conn, rc, VD_ROUTE_NONE, VD_E_BODY_TOO_LARGE, msg, NULL);
    }
    if (rc->suspended)
        return resume(h, conn, rc); /* the handler's wait is over */
    if (rc->responded)
        return MHD_YES;
    rc->responded = true;
    vd_conn_guard_busy(h->guard, slot_of(conn));
    /* Counted before dispatch reads `ready`: vd_http_stop relies on it. */
    atomic_fetch_add(&h->in_dispatch, 1);
    atomic_fetch_add(&h->unfinished, 1);
    atomic_fetch_add_explicit(&h->load->active, 1, memory_order_relaxed);
    rc->dispatched = true;
    enum MHD_Result r = dispatch(h, conn, rc, url, method);
    atomic_fetch_sub(&h->in_dispatch, 1);
    if (vd_log_get_level() <= VD_LOG_DEBUG) /* skip the clock read when not logging */
        vd_log_debug("request", "method=%s path=\"%.200s\" body_bytes=%zu ms=%.3f", method, url,
                     rc->body.len, elapsed_s(&rc->start) * 1e3);
    release_body(h, rc); /* the body is no longer needed once answered */
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    enum MHD_Result r = serve(cls, conn, url, method, upload_data, upload_data_size, con_cls);
    vd_log_request(NULL); /* the thread serves other connections next */
    return r;
}

/* One access log line for an answered request (setting access_log). */
static void log_access(vd_http *h, req_ctx *rc, enum MHD_RequestTerminationCode toe)
{
    if (!rc->status || h->access_log == VD_ACCESS_LOG_NONE ||
        (h->access_log == VD_ACCESS_LOG_ERRORS && rc->status < 400))
        return;
    vd_log_request(rc->request_id);
    const vd_route_def *r = &vd_routes[rc->route];
    vd_log(rc->status >= 500 ? VD_LOG_WARN : VD_LOG_INFO, "access",
           "method=%s route=\"%s\" status=%d ms=%.3f body_bytes=%llu sent=%s", rc->method,
           r->pattern ? r->pattern : "unmatched", rc->status, elapsed_s(&rc->start) * 1e3,
           (unsigned long long)rc->received,
           toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "complete" : "cut");
    vd_log_request(NULL);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    vd_conn_guard_idle(((vd_http *)cls)->guard, slot_of(conn));
    req_ctx *rc = *con_cls;
    if (!rc || is_uri_mark(rc))
        return;
    log_access(cls, rc, toe);
    if (rc->dispatched) {
        atomic_fetch_sub(&((vd_http *)cls)->unfinished, 1);
        atomic_fetch_sub_explicit(&((vd_http *)cls)->load->active, 1, memory_order_relaxed);
    }
    release_body(cls, rc);
    drop_stream(&rc->call); /* made but never sent (the connection closed first) */
    cJSON_Delete(rc->call.body);
    vd_json_vectors_free(&rc->vectors);
    vd_http *h = cls;
    atomic_fetch_sub_explicit(&h->load->body_bytes, rc->parse_counted + rc->answer_counted,
                              memory_order_relaxed);
    free(rc->path);
    free(rc);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    vd_http *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? vd_conn_guard_opened(h->guard, ci->connect_fd) : NULL;
    } else {
        vd_conn_guard_closed(h->guard, *socket_context);
        *socket_context = NULL;
    }
    atomic_fetch_add_explicit(&h->load->connections, toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1,
                              memory_order_relaxed);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    for (char *p = msg; *p; p++)
        if (*p == '"')
            *p = '\'';
    /* What a client did to its own connection (hung up mid-request, timed
     * out) is routine and, from a crowd of slow clients, a flood: debug. */
    bool client_side = strstr(msg, "remote side") || strstr(msg, "timed out") ||
                       strstr(msg, "Connection reset") || strstr(msg, "incomplete request");
    vd_log(client_side ? VD_LOG_DEBUG : VD_LOG_WARN, "http", "detail=\"%s\"", msg);
}

/* Reads a PEM file (at most 1 MiB) into a NUL-terminated malloc'd text. */
static int read_pem(const char *path, const char *setting, char **out, vd_errmsg *em)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return vd_fail(em, VD_E_INVALID_REQUEST, "%s: cannot read '%s': %s", setting, path,
                       strerror(errno));
    char *text = malloc((1u << 20) + 1);
    size_t n = text ? fread(text, 1, 1u << 20, f) : 0;
    bool more = text && fgetc(f) != EOF;
    fclose(f);
    if (!text)
        return -ENOMEM;
    if (!n || more) {
        free(text);
        return vd_fail(em, VD_E_INVALID_REQUEST, "%s: '%s' is %s", setting, path,
                       n ? "larger than 1 MiB" : "empty");
    }
    text[n] = 0;
    *out = text;
    return 0;
}

static int load_tls(vd_http *h, const vd_config *cfg, vd_errmsg *em)
{
    if (!cfg->tls_cert_file[0] && !cfg->tls_key_file[0])
        return 0;
    if (!cfg->tls_cert_file[0] || !cfg->tls_key_file[0])
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "TLS needs both tls_cert_file and tls_key_file (PEM files)");
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "this libmicrohttpd was built without TLS; unset tls_cert_file/tls_key_file");
    int rc = read_pem(cfg->tls_cert_file, "tls_cert_file", &h->tls_cert, em);
    if (!rc)
        rc = read_pem(cfg->tls_key_file, "tls_key_file", &h->tls_key, em);
    return rc;
}

static void http_free(vd_http *h)
{
    vd_conn_guard_stop(h->guard);
    free(h->tls_cert);
    free(h->tls_key);
    free(h);
}

uint64_t vd_http_connection_reserve(uint64_t max_connections)
{
    return max_connections / 8 > 16 ? max_connections / 8 : 16;
}

int vd_http_start(vd_http **out, vd_api *api, const vd_config *cfg, const vd_http_listen *at,
                  uint16_t *port, vd_errmsg *em)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(at->port)};
    if (inet_pton(AF_INET, at->host, &addr.sin_addr) != 1) {
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
        if (getaddrinfo(at->host, NULL, &hints, &ai) != 0 || !ai) {
            return vd_fail(em, VD_E_INVALID_REQUEST, "cannot resolve listen host '%s'", at->host);
        }
        addr.sin_addr = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        freeaddrinfo(ai);
    }
    vd_http *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->api = api;
    h->max_body = cfg->max_body_bytes;
    h->max_connections = cfg->max_connections;
    h->max_waiting = cfg->max_waiting_requests;
    h->max_body_total = cfg->max_inflight_body_bytes;
    h->load = vd_metrics_http_load(api->metrics);
    h->access_log = cfg->access_log_value;
    h->dialect = at->dialect;
    uint32_t prefix = 0;
    if (getrandom(&prefix, sizeof prefix, 0) != (ssize_t)sizeof prefix)
        prefix = (uint32_t)getpid() ^ (uint32_t)time(NULL);
    snprintf(h->id_prefix, sizeof h->id_prefix, "%08x", prefix);
    int rc = load_tls(h, cfg, em);
    vd_conn_guard_config gc = {.max_connections = cfg->max_connections,
                               .idle_timeout_s = (double)cfg->connection_timeout_s,
                               .head_timeout_s = (double)cfg->request_head_timeout_s,
                               .body_min_rate = cfg->request_body_min_rate};
    if (!rc && vd_conn_guard_start(&h->guard, &gc, h->load) != 0)
        rc = vd_fail(em, -EAGAIN, "cannot start the connection guard thread");
    if (rc) {
        http_free(h);
        return rc;
    }
    unsigned threads = (unsigned)cfg->http_threads;
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    /* libmicrohttpd's own cap sits above max_connections, so connections
     * past it still get a 503 overloaded answer (and probes get served);
     * only past the reserve are new connections closed unanswered. */
    uint64_t reserve = vd_http_connection_reserve(cfg->max_connections);
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, h},
        {MHD_OPTION_SOCK_ADDR, 0, &addr},
        {MHD_OPTION_THREAD_POOL_SIZE, threads, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)(cfg->max_connections + reserve), NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)cfg->connection_timeout_s, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, h},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h},
        {h->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, h->tls_cert},
        {h->tls_key ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, h->tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (h->tls_cert)
        flags |= MHD_USE_TLS;
    h->daemon = MHD_start_daemon(flags, at->port, NULL, NULL, on_request, h, MHD_OPTION_ARRAY,
                                 opts, MHD_OPTION_END);
    if (!h->daemon) {
        bool tls = h->tls_cert != NULL;
        http_free(h);
        return vd_fail(em, VD_E_INTERNAL,
                       tls ? "cannot listen on %s (address in use, not permitted, or the "
                                     "TLS certificate/key is not valid PEM or does not match?)"
                                   : "cannot listen on %s (address in use or not permitted?)",
                       cfg->listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : at->port;
    *out = h;
    return 0;
}

bool vd_http_tls(const vd_http *h) { return h && h->tls_cert; }

void vd_http_stop(vd_http *h)
{
    if (!h)
        return;
    /* The caller has cleared api->ready, so no request suspends any more
     * (dispatch answers 503 first). Wait for those inside a handler,
     * parked on the WAL, offloaded to the request workers (told to stop at
     * their next deadline check) or still sending their answer: a suspended
     * connection must not be cut, its waker still holds it. (MHD_quiesce_daemon is not used: in thread-pool epoll
     * mode it can race a worker and abort in libmicrohttpd 0.9.75.) */
    atomic_store(&h->api->draining, true); /* offloaded work stops at its next check */
    for (int i = 0; i < 60000; i++) {
        if (atomic_load(&h->in_dispatch) == 0 && atomic_load(&h->load->waiting) == 0 &&
            atomic_load(&h->unfinished) == 0 &&
            (!h->api->jobs || vd_jobq_depth(h->api->jobs) == 0))
            break;
        usleep(1000);
    }
    MHD_stop_daemon(h->daemon);
    http_free(h);
}

/*
 * router_http.c — see router_http.h. Per request: the URI as sent (kept by
 * the URI callback, so percent-escapes reach the replicas untouched), the
 * body (bounded by max_body_bytes: past it, 413), then one call of the
 * router on the connection's own thread, with the connection's curl client
 * (made when the connection opens, its replica connections kept alive).
 */
#include "router/router_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "vectord/error.h"

struct vd_router_http {
    struct MHD_Daemon *daemon;
    vd_router *router;
    bool qdrant;
    uint64_t max_body;
    char id_prefix[9];
    _Atomic uint64_t id_next;
};

typedef struct req {
    char *uri;        /* as sent */
    vd_strbuf body;
    bool too_large;
    bool started;
} req;

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    req *r = calloc(1, sizeof *r);
    if (r) {
        r->uri = strdup(uri);
        vd_strbuf_init(&r->body, 0);
    }
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    req *r = *con_cls;
    if (!r)
        return;
    free(r->uri);
    vd_strbuf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)conn;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        vd_upstream *u = NULL;
        *socket_context = vd_upstream_create(&u) == 0 ? u : NULL;
    } else {
        vd_upstream_destroy(*socket_context);
        *socket_context = NULL;
    }
}

static bool id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (!n || n > 64)
        return false;
    for (const char *c = s; *c; c++)
        if (*c <= ' ' || *c > '~' || *c == '"' || *c == '\\')
            return false;
    return true;
}

static enum MHD_Result respond(struct MHD_Connection *conn, vd_rt_call *call, const char *request_id)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(
        call->answer_len, call->answer, free);
    if (!resp)
        return MHD_NO;
    call->answer = NULL; /* the response frees it */
    MHD_add_response_header(resp, "Content-Type", call->content_type ? call->content_type : "application/json");
    MHD_add_response_header(resp, "X-Request-Id", request_id);
    if (call->extra_header[0]) {
        char name[64];
        const char *colon = strchr(call->extra_header, ':');
        if (colon && (size_t)(colon - call->extra_header) < sizeof name) {
            snprintf(name, sizeof name, "%.*s", (int)(colon - call->extra_header), call->extra_header);
            MHD_add_response_header(resp, name, colon + 2);
        }
    }
    if (call->status == 503)
        MHD_add_response_header(resp, "Retry-After", "1"); /* as vectord: every 503 is worth a retry */
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)call->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)url;
    (void)version;
    vd_router_http *h = cls;
    req *r = *con_cls;
    if (!r)
        return MHD_NO;
    if (!r->started) {
        r->started = true;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_large && r->body.len + *upload_size > h->max_body)
            r->too_large = true;
        if (!r->too_large)
            vd_strbuf_append(&r->body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    char request_id[80];
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (id_ok(given))
        snprintf(request_id, sizeof request_id, "%s", given);
    else
        snprintf(request_id, sizeof request_id, "%s%012llx", h->id_prefix,
                 (unsigned long long)atomic_fetch_add(&h->id_next, 1));
    vd_log_request(request_id);
    /* Passed through: the client's key (replicas check it) and the request id. */
    char hdr_id[100], hdr_key[600], hdr_auth[600];
    const char *headers[4];
    size_t nh = 0;
    snprintf(hdr_id, sizeof hdr_id, "X-Request-Id: %s", request_id);
    headers[nh++] = hdr_id;
    const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "api-key");
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (key && strlen(key) < 500 && !strpbrk(key, "\r\n")) {
        snprintf(hdr_key, sizeof hdr_key, "api-key: %s", key);
        headers[nh++] = hdr_key;
    }
    if (auth && strlen(auth) < 500 && !strpbrk(auth, "\r\n")) {
        snprintf(hdr_auth, sizeof hdr_auth, "Authorization: %s", auth);
        headers[nh++] = hdr_auth;
    }
    headers[nh] = NULL;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    char *q = r->uri ? strchr(r->uri, '?') : NULL;
    if (q)
        *q = 0;
    vd_rt_call call = {.qdrant = h->qdrant, .method = method, .path = r->uri ? r->uri : "/",
                       .query = q ? q + 1 : "", .body = r->body.len ? r->body.data : NULL,
                       .body_len = r->body.len, .headers = headers, .request_id = request_id,
                       .up = ci ? ci->socket_context : NULL, .started = vd_now_s()};
    if (r->too_large)
        vd_rt_fail(&call, VD_E_BODY_TOO_LARGE, "request body is larger than max_body_bytes (%llu)",
                   (unsigned long long)h->max_body);
    else if (!call.up || !r->uri || r->body.failed)
        vd_rt_fail(&call, VD_E_OUT_OF_MEMORY, "out of memory");
    else
        vd_router_handle(h->router, &call);
    vd_router_observe(h->router, &call);
    enum MHD_Result rc = respond(conn, &call, request_id);
    vd_rt_call_free(&call);
    vd_log_request(NULL);
    return rc;
}

static int resolve(const char *listen, struct sockaddr_storage *addr, socklen_t *len, char *err, size_t cap)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host)
        return snprintf(err, cap, "listen address must be host:port, got '%s'", listen), -EINVAL;
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    if (host[0] == '[') { /* [::1]:8090 */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res) != 0 || !res)
        return snprintf(err, cap, "cannot resolve listen address '%s'", listen), -EINVAL;
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int vd_router_http_start(vd_router_http **out, const vd_router_http_config *cfg, vd_router *router,
                         uint16_t *port, char *err, size_t cap)
{
    struct sockaddr_storage addr;
    socklen_t alen;
    int rc = resolve(cfg->listen, &addr, &alen, err, cap);
    if (rc)
        return rc;
    vd_router_http *h = calloc(1, sizeof *h);
    if (!h)
        return snprintf(err, cap, "out of memory"), -ENOMEM;
    h->router = router;
    h->qdrant = cfg->qdrant;
    h->max_body = cfg->max_body_bytes;
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
        rnd = (uint32_t)vd_now_s();
    snprintf(h->id_prefix, sizeof h->id_prefix, "%08x", rnd);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->idle_timeout_s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_END);
    if (!h->daemon) {
        free(h);
        return snprintf(err, cap, "cannot listen on %s", cfg->listen), -EADDRINUSE;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    *port = di ? di->port : 0;
    *out = h;
    return 0;
}

void vd_router_http_stop(vd_router_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}

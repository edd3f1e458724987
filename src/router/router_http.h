/*
 * router_http.h — the router's listeners (libmicrohttpd, a thread per
 * connection: a request's thread waits for its replicas' answers, so one slow
 * partition never holds another client's request). One listener serves the
 * native API, an optional second one the Qdrant-compatible API.
 */
#ifndef VD_ROUTER_HTTP_H
#define VD_ROUTER_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "router/router.h"

typedef struct vd_router_http vd_router_http;

typedef struct vd_router_http_config {
    const char *listen;       /* "host:port" (port 0 = any free one) */
    bool qdrant;              /* the Qdrant-compatible dialect */
    uint32_t max_connections;
    uint64_t max_body_bytes;
    uint32_t idle_timeout_s;
} vd_router_http_config;

/* Starts serving; *port is the port bound. */
int vd_router_http_start(vd_router_http **out, const vd_router_http_config *cfg, vd_router *router,
                         uint16_t *port, char *err, size_t err_cap);
void vd_router_http_stop(vd_router_http *h);

#endif

/*
 * http.h — the HTTP server: libmicrohttpd with one epoll event loop per
 * thread (no thread per connection), keep-alive, bounded bodies, routing and
 * the JSON envelope. Handlers run on the event-loop threads and fan heavy work
 * out to the worker pool.
 */
#ifndef VD_HTTP_H
#define VD_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "server/api.h"
#include "server/config.h"

typedef struct vd_http vd_http;

/* Connections libmicrohttpd accepts beyond max_connections, so that those
 * still get a 503 overloaded answer (and probes are served): an eighth, at
 * least 16. */
uint64_t vd_http_connection_reserve(uint64_t max_connections);

/* Where a server listens and which API dialect it speaks there. */
typedef struct vd_http_listen {
    const char *host;
    uint16_t port; /* 0: any free port */
    vd_dialect dialect;
} vd_http_listen;

/* Starts listening; *port receives the bound port (useful with port 0). The
 * limits, TLS and threads come from cfg. */
int vd_http_start(vd_http **out, vd_api *api, const vd_config *cfg, const vd_http_listen *at,
                  uint16_t *port, vd_errmsg *em);
/* True when the server speaks HTTPS (tls_cert_file and tls_key_file set). */
bool vd_http_tls(const vd_http *h);
/* Stops accepting, closes connections, joins the threads. NULL is a no-op. */
void vd_http_stop(vd_http *h);

#endif

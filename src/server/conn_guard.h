/*
 * conn_guard.h — deadlines for receiving requests, and room for new
 * connections past max_connections.
 *
 * libmicrohttpd's connection timeout is an idle timeout: every byte resets
 * it, so a client that trickles a request a byte at a time holds its
 * connection for ever, and enough of them fill every slot (slowloris). The
 * guard tracks each connection's phase and closes it (shutdown(2) on its
 * socket, under the lock its close notification takes, so the descriptor is
 * still the connection's) when
 * - it has been idle, or sending its request line, for connection_timeout_s
 *   since it opened or its last answer;
 * - its request line came, but not the rest of the head within
 *   request_head_timeout_s;
 * - its body arrives slower than request_body_min_rate bytes/s on average,
 *   after a grace of request_head_timeout_s.
 * A request being handled or answered is never closed by the guard.
 *
 * Past max_connections, each new connection evicts the open one that has
 * waited longest without a request in progress, so new clients — probes
 * included — always get in while slow or idle ones make room.
 */
#ifndef VD_CONN_GUARD_H
#define VD_CONN_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "server/metrics.h"

typedef struct vd_conn_guard vd_conn_guard;
typedef struct vd_conn_slot vd_conn_slot;

typedef struct vd_conn_guard_config {
    uint64_t max_connections;
    double idle_timeout_s;
    double head_timeout_s;
    uint64_t body_min_rate; /* bytes per second; 0 = no minimum */
} vd_conn_guard_config;

int vd_conn_guard_start(vd_conn_guard **out, const vd_conn_guard_config *cfg, vd_http_load *load);
void vd_conn_guard_stop(vd_conn_guard *g);

/* From libmicrohttpd's callbacks. opened returns the connection's slot
 * (NULL on ENOMEM: that connection is not guarded). */
vd_conn_slot *vd_conn_guard_opened(vd_conn_guard *g, int fd);
void vd_conn_guard_closed(vd_conn_guard *g, vd_conn_slot *s);
void vd_conn_guard_request_line(vd_conn_guard *g, vd_conn_slot *s);
void vd_conn_guard_head_done(vd_conn_guard *g, vd_conn_slot *s);
/* A piece of body arrived, received bytes so far: false when the body is
 * too slow (the caller closes the connection). */
bool vd_conn_guard_body(vd_conn_guard *g, vd_conn_slot *s, uint64_t received);
void vd_conn_guard_busy(vd_conn_guard *g, vd_conn_slot *s);
void vd_conn_guard_idle(vd_conn_guard *g, vd_conn_slot *s);
/* Open connections, less those the guard has shut down. */
uint64_t vd_conn_guard_live(vd_conn_guard *g);

#endif

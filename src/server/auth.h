/*
 * auth.h — API keys: an admin key (every route) and a read-only key (reads
 * and searches), sent as "Authorization: Bearer <key>" or "api-key: <key>".
 * Auth is on when either key is set; probes and metrics may stay open.
 * Keys come from settings (env VECTORD_API_KEY / VECTORD_READ_API_KEY) or
 * files (a mounted Kubernetes Secret), are compared in constant time, and
 * are replaced on SIGHUP.
 */
#ifndef VD_AUTH_H
#define VD_AUTH_H

#include <stdbool.h>

#include "server/config.h"
#include "server/routes.h"
#include "vectord/error.h"

typedef struct vd_auth vd_auth;

/* Reads the keys (settings, then files) of cfg. */
int vd_auth_create(vd_auth **out, const vd_config *cfg, vd_errmsg *em);
/* Replaces keys and open-route choices (SIGHUP); the old ones stay on error. */
int vd_auth_reload(vd_auth *a, const vd_config *cfg, vd_errmsg *em);
void vd_auth_destroy(vd_auth *a);
bool vd_auth_enabled(vd_auth *a);

/* 0 if the credentials (header values, NULL when absent) allow route r
 * (the access its table entry names, routes.h);
 * VD_E_UNAUTHORIZED (no or unknown key) or VD_E_FORBIDDEN (read-only key on
 * a write) with em explaining. */
int vd_auth_check(vd_auth *a, vd_route r, const char *authorization, const char *api_key,
                  vd_errmsg *em);

#endif

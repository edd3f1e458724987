/*
 * route_table.c — see route_table.h. The table mirrors src/server/routes.h
 * route by route; tests/integration/test_router.py checks that every route
 * vectord serves is in it.
 */
#include "router/route_table.h"

#include <string.h>

#define N(m, p, op, label) {false, m, p, VD_RT_##op, VD_RT_HITS, label}
#define NS(m, p, shape, label) {false, m, p, VD_RT_SEARCH, VD_RT_##shape, label}
#define Q(m, p, op, label) {true, m, p, VD_RT_##op, VD_RT_HITS, label}
#define QS(m, p, shape, label) {true, m, p, VD_RT_SEARCH, VD_RT_##shape, label}

static const vd_rt_route routes[] = {
    N("GET", "/healthz", LOCAL, "healthz"),
    N("GET", "/readyz", LOCAL, "readyz"),
    N("GET", "/metrics", LOCAL, "metrics"),
    N("GET", "/openapi.json", ANY, "openapi"),
    N("GET", "/collections", ANY, "collections_list"),
    N("PUT", "/collections/{c}", BROADCAST, "collection_create"),
    N("GET", "/collections/{c}", INFO, "collection_info"),
    N("PATCH", "/collections/{c}", BROADCAST, "collection_update"),
    N("DELETE", "/collections/{c}", BROADCAST, "collection_delete"),
    N("PUT", "/collections/{c}/points", UPSERT, "points_upsert"),
    N("POST", "/collections/{c}/points/delete", BROADCAST, "points_delete"),
    N("PUT", "/collections/{c}/points/vectors", BROADCAST, "points_vectors"),
    N("POST", "/collections/{c}/points/payload", BROADCAST, "points_payload"),
    N("GET", "/collections/{c}/points/{id}", FIRST_FOUND, "point_get"),
    NS("POST", "/collections/{c}/search", HITS, "search"),
    NS("POST", "/collections/{c}/search/batch", HITS_BATCH, "search_batch"),
    N("POST", "/collections/{c}/search/shadow", TENANT_ONLY, "search_shadow"),
    N("PUT", "/collections/{c}/payload_indexes", BROADCAST, "payload_index_create"),
    N("DELETE", "/collections/{c}/payload_indexes/{id}", BROADCAST, "payload_index_delete"),
    N("POST", "/collections/{c}/snapshot", BROADCAST, "collection_snapshot"),
    N("POST", "/admin/checkpoint", BROADCAST, "checkpoint"),
    N("GET", "/feed", NOT_ROUTED, "feed"),
    N("GET", "/feeds", NOT_ROUTED, "feeds"),
    N("POST", "/feed/reconcile", NOT_ROUTED, "feed_reconcile"),

    Q("GET", "/", ANY, "qdrant_root"),
    Q("GET", "/healthz", LOCAL, "qdrant_healthz"),
    Q("GET", "/livez", LOCAL, "qdrant_livez"),
    Q("GET", "/readyz", LOCAL, "qdrant_readyz"),
    Q("GET", "/collections", ANY, "qdrant_collections_list"),
    Q("GET", "/collections/{c}/exists", ANY, "qdrant_collection_exists"),
    Q("PUT", "/collections/{c}", BROADCAST, "qdrant_collection_create"),
    Q("GET", "/collections/{c}", INFO, "qdrant_collection_info"),
    Q("PATCH", "/collections/{c}", BROADCAST, "qdrant_collection_update"),
    Q("DELETE", "/collections/{c}", BROADCAST, "qdrant_collection_delete"),
    Q("PUT", "/collections/{c}/index", BROADCAST, "qdrant_index_create"),
    Q("DELETE", "/collections/{c}/index/{id}", BROADCAST, "qdrant_index_delete"),
    Q("PUT", "/collections/{c}/points", UPSERT, "qdrant_points_upsert"),
    Q("POST", "/collections/{c}/points", RETRIEVE, "qdrant_points_retrieve"),
    Q("POST", "/collections/{c}/points/scroll", SCROLL, "qdrant_points_scroll"),
    Q("POST", "/collections/{c}/points/count", COUNT, "qdrant_points_count"),
    Q("POST", "/collections/{c}/points/delete", BROADCAST, "qdrant_points_delete"),
    Q("POST", "/collections/{c}/points/payload", BY_IDS, "qdrant_payload_set"),
    Q("PUT", "/collections/{c}/points/payload", BY_IDS, "qdrant_payload_overwrite"),
    Q("POST", "/collections/{c}/points/payload/delete", BY_IDS, "qdrant_payload_delete"),
    Q("POST", "/collections/{c}/points/payload/clear", BY_IDS, "qdrant_payload_clear"),
    Q("PUT", "/collections/{c}/points/vectors", BY_IDS, "qdrant_vectors_update"),
    Q("POST", "/collections/{c}/points/vectors/delete", ANY, "qdrant_vectors_delete"),
    Q("GET", "/collections/{c}/points/{id}", FIRST_FOUND, "qdrant_point_get"),
    QS("POST", "/collections/{c}/points/search", HITS, "qdrant_search"),
    QS("POST", "/collections/{c}/points/search/batch", HITS_BATCH, "qdrant_search_batch"),
    QS("POST", "/collections/{c}/points/query", POINTS, "qdrant_query"),
    QS("POST", "/collections/{c}/points/query/batch", POINTS_BATCH, "qdrant_query_batch"),
};

const vd_rt_route *vd_rt_routes(size_t *n)
{
    *n = sizeof routes / sizeof routes[0];
    return routes;
}

/* The path matches the pattern: literal segments equal, {x} one non-empty segment. */
static bool matches(const char *pattern, const char *path)
{
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '{') {
            p = strchr(p, '}');
            if (!p)
                return false;
            p++;
            size_t seg = strcspn(s, "/");
            if (!seg)
                return false;
            s += seg;
        } else if (*p++ != *s++) {
            return false;
        }
    }
    if (*s == '/' && !s[1] && *p == 0)
        return true; /* a trailing slash is dropped, as vectord does */
    return *p == 0 && *s == 0;
}

const vd_rt_route *vd_rt_match(bool qdrant, const char *method, const char *path, bool *path_known)
{
    *path_known = false;
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (routes[i].qdrant != qdrant || !matches(routes[i].pattern, path))
            continue;
        *path_known = true;
        if (strcmp(routes[i].method, m) == 0)
            return &routes[i];
    }
    return NULL;
}

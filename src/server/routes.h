/*
 * routes.h — the HTTP API's routes: one X-macro list feeds the router
 * (http.c), the handler table (handlers.c) and the metric labels (metrics.c).
 * X(id, method, path pattern, metric label); {c} is a collection name, {id} a
 * point id (the rest of the path).
 */
#ifndef VD_ROUTES_H
#define VD_ROUTES_H

#define VD_ROUTES(X)                                                                   \
    X(HEALTHZ, "GET", "/healthz", "healthz")                                           \
    X(READYZ, "GET", "/readyz", "readyz")                                              \
    X(METRICS, "GET", "/metrics", "metrics")                                           \
    X(COLLECTIONS_LIST, "GET", "/collections", "collections_list")                     \
    X(COLLECTION_CREATE, "PUT", "/collections/{c}", "collection_create")               \
    X(COLLECTION_INFO, "GET", "/collections/{c}", "collection_info")                   \
    X(COLLECTION_DELETE, "DELETE", "/collections/{c}", "collection_delete")            \
    X(POINTS_UPSERT, "PUT", "/collections/{c}/points", "points_upsert")                \
    X(POINTS_DELETE, "POST", "/collections/{c}/points/delete", "points_delete")        \
    X(POINT_GET, "GET", "/collections/{c}/points/{id}", "point_get")                   \
    X(SEARCH, "POST", "/collections/{c}/search", "search")                             \
    X(SEARCH_BATCH, "POST", "/collections/{c}/search/batch", "search_batch")           \
    X(SEARCH_SHADOW, "POST", "/collections/{c}/search/shadow", "search_shadow")        \
    X(PINDEX_CREATE, "PUT", "/collections/{c}/payload_indexes", "payload_index_create") \
    X(COLLECTION_SNAPSHOT, "POST", "/collections/{c}/snapshot", "collection_snapshot") \
    X(CHECKPOINT, "POST", "/admin/checkpoint", "checkpoint")                           \
    X(FEED, "GET", "/feed", "feed")                                                     \
    X(FEEDS, "GET", "/feeds", "feeds")                                                  \
    X(FEED_RECONCILE, "POST", "/feed/reconcile", "feed_reconcile")

typedef enum vd_route {
#define VD_ROUTE_ENUM(id, method, path, label) VD_ROUTE_##id,
    VD_ROUTES(VD_ROUTE_ENUM)
#undef VD_ROUTE_ENUM
    VD_ROUTE_NONE, /* unmatched requests (404/405/413/415 before routing) */
    VD_N_ROUTES
} vd_route;

#endif

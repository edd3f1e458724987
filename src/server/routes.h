/*
 * routes.h — the HTTP API's routes. The list below is the only place a route
 * is described: its method, path pattern, metric label, handler, the access
 * it needs, and its flags. The router, the admission checks and auth
 * (http.c, auth.c), the handler call and the metric labels (metrics.c) all
 * read the table built from it (vd_routes, routes.c). Adding a route is one
 * line here plus its handler.
 *
 * X(id, method, path pattern, metric label, handler, access, flags): {c} is
 * a collection name, {id} a point id (the rest of the path).
 */
#ifndef VD_ROUTES_H
#define VD_ROUTES_H

/* What a caller's key must allow (auth.c). */
typedef enum vd_access {
    VD_ACCESS_PROBE,   /* /healthz, /readyz */
    VD_ACCESS_METRICS, /* /metrics */
    VD_ACCESS_READ,    /* gets, lists, searches, feed status */
    VD_ACCESS_WRITE,   /* every change, snapshots, reconciliation */
} vd_access;

/* The two API dialects: vectord's own, and Qdrant's REST API on its own
 * listener (qdrant_listen; docs/QDRANT.md). A listener serves only its
 * dialect's routes, and writes its envelopes and errors. */
typedef enum vd_dialect {
    VD_DIALECT_NATIVE = 0,
    VD_DIALECT_QDRANT = 1,
} vd_dialect;

/* Route flags. */
enum {
    VD_RF_BODY = 1u << 0,     /* takes a JSON body (parsed before the handler) */
    VD_RF_ALWAYS = 1u << 1,   /* served before recovery ends, in shutdown, past max_connections */
    VD_RF_WAITS = 1u << 2,    /* may park until the WAL is durable (max_waiting_requests) */
    VD_RF_WAITS_XID = 1u << 3, /* parks only when ?feed_xid= asks to wait for the feed */
    VD_RF_VECTORS = 1u << 4,   /* its body's "vector" arrays are lifted (server/json_scan.h) */
    VD_RF_QDRANT = 1u << 5     /* a Qdrant-dialect route (server/qdrant.c), on the Qdrant listener */
};

#define VD_ROUTES(X)                                                                                \
    X(HEALTHZ, "GET", "/healthz", "healthz", vd_h_healthz, PROBE, VD_RF_ALWAYS)                     \
    X(READYZ, "GET", "/readyz", "readyz", vd_h_readyz, PROBE, VD_RF_ALWAYS)                         \
    X(METRICS, "GET", "/metrics", "metrics", vd_h_metrics, METRICS, VD_RF_ALWAYS)                   \
    X(OPENAPI, "GET", "/openapi.json", "openapi", vd_h_openapi, PROBE, 0)                            \
    X(COLLECTIONS_LIST, "GET", "/collections", "collections_list", vd_h_collections_list, READ, 0)  \
    X(COLLECTION_CREATE, "PUT", "/collections/{c}", "collection_create", vd_h_collection_create,     \
      WRITE, VD_RF_BODY | VD_RF_WAITS)                                                               \
    X(COLLECTION_INFO, "GET", "/collections/{c}", "collection_info", vd_h_collection_info, READ, 0) \
    X(COLLECTION_UPDATE, "PATCH", "/collections/{c}", "collection_update", vd_h_collection_update,   \
      WRITE, VD_RF_BODY | VD_RF_WAITS)                                                               \
    X(COLLECTION_DELETE, "DELETE", "/collections/{c}", "collection_delete", vd_h_collection_delete, \
      WRITE, VD_RF_WAITS)                                                                            \
    X(POINTS_UPSERT, "PUT", "/collections/{c}/points", "points_upsert", vd_h_points_upsert, WRITE,  \
      VD_RF_BODY | VD_RF_VECTORS | VD_RF_WAITS)                                                                      \
    X(POINTS_DELETE, "POST", "/collections/{c}/points/delete", "points_delete", vd_h_points_delete, \
      WRITE, VD_RF_BODY | VD_RF_WAITS)                                                               \
    X(POINTS_VECTORS, "PUT", "/collections/{c}/points/vectors", "points_vectors", vd_h_points_vectors, \
      WRITE, VD_RF_BODY | VD_RF_VECTORS | VD_RF_WAITS)                                               \
    X(POINTS_PAYLOAD, "POST", "/collections/{c}/points/payload", "points_payload", vd_h_points_payload, \
      WRITE, VD_RF_BODY | VD_RF_WAITS)                                                               \
    X(POINT_GET, "GET", "/collections/{c}/points/{id}", "point_get", vd_h_point_get, READ, 0)       \
    X(SEARCH, "POST", "/collections/{c}/search", "search", vd_h_search, READ,                       \
      VD_RF_BODY | VD_RF_VECTORS | VD_RF_WAITS_XID)                                                                  \
    X(SEARCH_BATCH, "POST", "/collections/{c}/search/batch", "search_batch", vd_h_search_batch,     \
      READ, VD_RF_BODY | VD_RF_VECTORS | VD_RF_WAITS_XID)                                                            \
    X(SEARCH_SHADOW, "POST", "/collections/{c}/search/shadow", "search_shadow",                     \
      vd_h_search_shadow, READ, VD_RF_BODY | VD_RF_VECTORS | VD_RF_WAITS_XID)                                        \
    X(PINDEX_CREATE, "PUT", "/collections/{c}/payload_indexes", "payload_index_create",             \
      vd_h_pindex_create, WRITE, VD_RF_BODY | VD_RF_WAITS)                                           \
    X(PINDEX_DELETE, "DELETE", "/collections/{c}/payload_indexes/{id}", "payload_index_delete",      \
      vd_h_pindex_delete, WRITE, VD_RF_WAITS)                                                        \
    X(COLLECTION_SNAPSHOT, "POST", "/collections/{c}/snapshot", "collection_snapshot",              \
      vd_h_collection_snapshot, WRITE, VD_RF_WAITS)                                                  \
    X(CHECKPOINT, "POST", "/admin/checkpoint", "checkpoint", vd_h_checkpoint, WRITE, VD_RF_WAITS)   \
    X(FEED, "GET", "/feed", "feed", vd_h_feed, READ, 0)                                             \
    X(FEEDS, "GET", "/feeds", "feeds", vd_h_feeds, READ, 0)                                         \
    X(FEED_RECONCILE, "POST", "/feed/reconcile", "feed_reconcile", vd_h_feed_reconcile, WRITE,      \
      VD_RF_WAITS)                                                                                   \
    /* The Qdrant-compatible REST API (server/qdrant.h), on the qdrant_listen listener. */          \
    X(QD_ROOT, "GET", "/", "qdrant_root", vd_qd_root, PROBE, VD_RF_QDRANT | VD_RF_ALWAYS)            \
    X(QD_HEALTHZ, "GET", "/healthz", "qdrant_healthz", vd_qd_healthz, PROBE, VD_RF_QDRANT | VD_RF_ALWAYS) \
    X(QD_LIVEZ, "GET", "/livez", "qdrant_livez", vd_qd_healthz, PROBE, VD_RF_QDRANT | VD_RF_ALWAYS)  \
    X(QD_READYZ, "GET", "/readyz", "qdrant_readyz", vd_qd_readyz, PROBE, VD_RF_QDRANT | VD_RF_ALWAYS) \
    X(QD_COLLECTIONS_LIST, "GET", "/collections", "qdrant_collections_list", vd_qd_collections_list, \
      READ, VD_RF_QDRANT)                                                                            \
    X(QD_COLLECTION_EXISTS, "GET", "/collections/{c}/exists", "qdrant_collection_exists",           \
      vd_qd_collection_exists, READ, VD_RF_QDRANT)                                                   \
    X(QD_COLLECTION_CREATE, "PUT", "/collections/{c}", "qdrant_collection_create",                  \
      vd_qd_collection_create, WRITE, VD_RF_QDRANT | VD_RF_BODY | VD_RF_WAITS)                        \
    X(QD_COLLECTION_INFO, "GET", "/collections/{c}", "qdrant_collection_info", vd_qd_collection_info, \
      READ, VD_RF_QDRANT)                                                                            \
    X(QD_COLLECTION_UPDATE, "PATCH", "/collections/{c}", "qdrant_collection_update",                \
      vd_qd_collection_update, WRITE, VD_RF_QDRANT | VD_RF_BODY)                                     \
    X(QD_COLLECTION_DELETE, "DELETE", "/collections/{c}", "qdrant_collection_delete",               \
      vd_qd_collection_delete, WRITE, VD_RF_QDRANT | VD_RF_WAITS)                                    \
    X(QD_INDEX_CREATE, "PUT", "/collections/{c}/index", "qdrant_index_create", vd_qd_index_create,  \
      WRITE, VD_RF_QDRANT | VD_RF_BODY | VD_RF_WAITS)                                                \
    X(QD_INDEX_DELETE, "DELETE", "/collections/{c}/index/{id}", "qdrant_index_delete",              \
      vd_qd_index_delete, WRITE, VD_RF_QDRANT | VD_RF_WAITS)                                                       \
    X(QD_POINTS_UPSERT, "PUT", "/collections/{c}/points", "qdrant_points_upsert", vd_qd_points_upsert, \
      WRITE, VD_RF_QDRANT | VD_RF_BODY | VD_RF_VECTORS | VD_RF_WAITS)                                 \
    X(QD_POINTS_RETRIEVE, "POST", "/collections/{c}/points", "qdrant_points_retrieve",              \
      vd_qd_points_retrieve, READ, VD_RF_QDRANT | VD_RF_BODY)                                         \
    X(QD_POINTS_SCROLL, "POST", "/collections/{c}/points/scroll", "qdrant_points_scroll",           \
      vd_qd_points_scroll, READ, VD_RF_QDRANT | VD_RF_BODY)                                          \
    X(QD_POINTS_COUNT, "POST", "/collections/{c}/points/count", "qdrant_points_count",              \
      vd_qd_points_count, READ, VD_RF_QDRANT | VD_RF_BODY)                                           \
    X(QD_POINTS_DELETE, "POST", "/collections/{c}/points/delete", "qdrant_points_delete",           \
      vd_qd_points_delete, WRITE, VD_RF_QDRANT | VD_RF_BODY | VD_RF_WAITS)                            \
    X(QD_PAYLOAD_SET, "POST", "/collections/{c}/points/payload", "qdrant_payload_set", vd_qd_payload_set, \
      WRITE, VD_RF_QDRANT | VD_RF_BODY | VD_RF_WAITS)                                                \
    X(QD_PAYLOAD_OVERWRITE, "PUT", "/collections/{c}/points/payload", "qdrant_payload_overwrite",   \
      vd_qd_payload_overwrite, WRITE, VD_RF_QDRANT | VD_RF_BODY | VD_RF_WAITS)                       \
    X(QD_PAYLOAD_DELETE, "POST", "/collections/{c}/points/payload/delete", "qdrant_payload_delete", \
      vd_qd_payload_delete, WRITE, VD_RF_QDRANT | VD_RF_BODY | VD_RF_WAITS)                          \
    X(QD_PAYLOAD_CLEAR, "POST", "/collections/{c}/points/payload/clear", "qdrant_payload_clear",    \
      vd_qd_payload_clear, WRITE, VD_RF_QDRANT | VD_RF_BODY | VD_RF_WAITS)                           \
    X(QD_VECTORS_UPDATE, "PUT", "/collections/{c}/points/vectors", "qdrant_vectors_update",         \
      vd_qd_vectors_update, WRITE, VD_RF_QDRANT | VD_RF_BODY | VD_RF_VECTORS | VD_RF_WAITS)          \
    X(QD_VECTORS_DELETE, "POST", "/collections/{c}/points/vectors/delete", "qdrant_vectors_delete", \
      vd_qd_vectors_delete, WRITE, VD_RF_QDRANT | VD_RF_BODY)                                        \
    X(QD_POINT_GET, "GET", "/collections/{c}/points/{id}", "qdrant_point_get", vd_qd_point_get, READ, \
      VD_RF_QDRANT)                                                                                  \
    X(QD_SEARCH, "POST", "/collections/{c}/points/search", "qdrant_search", vd_qd_search, READ,      \
      VD_RF_QDRANT | VD_RF_BODY | VD_RF_VECTORS)                                                     \
    X(QD_SEARCH_BATCH, "POST", "/collections/{c}/points/search/batch", "qdrant_search_batch",       \
      vd_qd_search_batch, READ, VD_RF_QDRANT | VD_RF_BODY | VD_RF_VECTORS)                           \
    X(QD_QUERY, "POST", "/collections/{c}/points/query", "qdrant_query", vd_qd_query, READ,          \
      VD_RF_QDRANT | VD_RF_BODY)                                                                     \
    X(QD_QUERY_BATCH, "POST", "/collections/{c}/points/query/batch", "qdrant_query_batch",          \
      vd_qd_query_batch, READ, VD_RF_QDRANT | VD_RF_BODY)

typedef enum vd_route {
#define VD_ROUTE_ENUM(id, method, path, label, handler, access, flags) VD_ROUTE_##id,
    VD_ROUTES(VD_ROUTE_ENUM)
#undef VD_ROUTE_ENUM
    VD_ROUTE_NONE, /* unmatched requests (404/405/413/415 before routing) */
    VD_N_ROUTES
} vd_route;

struct vd_call;
typedef int (*vd_handler_fn)(struct vd_call *call);

typedef struct vd_route_def {
    const char *method;
    const char *pattern;
    const char *label; /* the metrics' route label */
    vd_handler_fn handler;
    vd_access access;
    unsigned flags; /* VD_RF_* */
} vd_route_def;

/* Indexed by vd_route; the VD_ROUTE_NONE entry is {label "unmatched"}. */
extern const vd_route_def vd_routes[VD_N_ROUTES];

#endif

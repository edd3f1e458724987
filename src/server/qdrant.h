/*
 * qdrant.h — the Qdrant-compatible REST API's handlers (docs/QDRANT.md).
 * Each reads Qdrant's request shape, does the work through vectord's own
 * (the same database, journal, limits and durability as the native API) and
 * answers in Qdrant's shape; the HTTP layer writes Qdrant's envelope
 * {"result", "status", "time"} and error {"status": {"error"}} on the
 * listener of qdrant_listen. The routes are in routes.h (VD_RF_QDRANT).
 */
#ifndef VD_QDRANT_H
#define VD_QDRANT_H

#include "server/api.h"

/* The Qdrant REST API version these routes follow (GET / answers it). */
#define VD_QDRANT_API_VERSION "1.18.0"

/* 0, or 400 unknown_field naming the first member of obj not in known
 * (NULL-terminated); what says where ("a search", "hnsw_config"). */
int vd_qd_known_fields(vd_call *call, const cJSON *obj, const char *const *known, const char *what);

/* Qdrant's UpdateResult, the answer of a write (a finish hook): vectord
 * answers once the write is durable and applied, so it is always
 * {"operation_id": 0, "status": "completed"}. */
int vd_qd_update_result(vd_call *call);

/* Qdrant's with_payload: true, false, a list of fields, {"include": [...]}
 * or {"exclude": [...]} (the arrays borrow from the body). */
typedef struct vd_qd_payload_sel {
    bool with;             /* payloads at all */
    const cJSON *include;  /* fields kept (names), or NULL: all */
    const cJSON *exclude;  /* fields dropped, or NULL */
} vd_qd_payload_sel;
/* Reads wp (absent or null: dflt); 0 or 400 naming where. */
int vd_qd_payload_sel_parse(vd_call *call, const cJSON *wp, bool dflt, const char *where, vd_qd_payload_sel *out);
/* Drops from payload (may be NULL) the top-level fields sel leaves out. */
void vd_qd_payload_trim(const vd_qd_payload_sel *sel, cJSON *payload);

/* A Qdrant route over a native handler: the body must be an object (shape
 * names one in the error); translate builds the native body from Qdrant's,
 * which it replaces; native runs on it, and finish (may be NULL) rewrites
 * its answer in Qdrant's shape once ready, after any wait. */
int vd_qd_over_native(vd_call *call, const char *shape, int (*translate)(vd_call *call, cJSON **out),
                      int (*native)(vd_call *call), int (*finish)(vd_call *call));

int vd_qd_root(vd_call *call);
int vd_qd_healthz(vd_call *call);
int vd_qd_readyz(vd_call *call);
int vd_qd_collections_list(vd_call *call);
int vd_qd_collection_exists(vd_call *call);
int vd_qd_collection_create(vd_call *call);
int vd_qd_collection_info(vd_call *call);
int vd_qd_collection_update(vd_call *call);
int vd_qd_collection_delete(vd_call *call);
int vd_qd_index_create(vd_call *call);
int vd_qd_index_delete(vd_call *call);
/* qdrant_points.c */
/* A Qdrant point id (an unsigned integer, or a UUID in any spelling, made
 * canonical into buf: 37 bytes) as vectord's; 0 or 400 invalid_id. */
int vd_qd_point_id(vd_call *call, const cJSON *id, vd_point_id *out, char *buf);
/* Qdrant's PointsSelector in call->body ({"points": [ids]} or {"filter":
 * {…}}) into native (vectord's "ids" or "filter"). With must_exist, a listed
 * point that does not exist is refused (404), as Qdrant refuses to change it. */
int vd_qd_selector(vd_call *call, cJSON *native, bool must_exist);
/* Rewrites in place every UUID in the "has_id" lists of a Qdrant body
 * (filters, at any depth) in its canonical spelling, as stored. */
void vd_qd_canonical_has_id(cJSON *json);
int vd_qd_points_upsert(vd_call *call);
int vd_qd_points_delete(vd_call *call);
int vd_qd_point_get(vd_call *call);
int vd_qd_points_retrieve(vd_call *call);
int vd_qd_points_count(vd_call *call);
int vd_qd_points_scroll(vd_call *call);
/* qdrant_payload.c */
int vd_qd_payload_set(vd_call *call);
int vd_qd_payload_overwrite(vd_call *call);
int vd_qd_payload_delete(vd_call *call);
int vd_qd_payload_clear(vd_call *call);
int vd_qd_vectors_update(vd_call *call);
int vd_qd_vectors_delete(vd_call *call);
/* qdrant_search.c */
int vd_qd_search(vd_call *call);
int vd_qd_search_batch(vd_call *call);
int vd_qd_query(vd_call *call);
int vd_qd_query_batch(vd_call *call);

#endif

/*
 * request.h — request bodies → validated requests.
 *
 * Every API body passes through one of these parsers before anything is
 * changed, so a batch is all-or-nothing at validation time. Parsed requests
 * borrow strings from the cJSON body, which must outlive them; vectors and
 * filters are owned and released by the matching *_free. `lifted` holds the
 * vectors the body scan took out of the text (server/json_scan.h), or NULL.
 */
#ifndef VD_REQUEST_H
#define VD_REQUEST_H

#include <cjson/cJSON.h>

#include "db/collection.h"
#include "db/filter.h"
#include "db/point.h"
#include "server/json_scan.h"
#include "vectord/error.h"

typedef struct vd_limits {
    uint32_t max_batch_points;
    uint32_t max_batch_searches;
    uint32_t max_k;
    uint32_t max_dim;
    uint32_t max_filter_depth;
    uint32_t max_filter_terms;
    uint64_t max_response_bytes;
    uint64_t request_timeout_ms;
    uint32_t default_shards;
} vd_limits;

#define VD_K_DEFAULT 10

/* PUT /collections/{name}. Field strings of out->pindexes borrow from body. */
int vd_req_collection(const cJSON *body, const char *name, const vd_limits *lim,
                      vd_collection_config *out, vd_errmsg *em);

/* PATCH /collections/{name}: the search defaults to change (*mask: VD_SET_*);
 * what cannot change after creation is refused naming it. */
int vd_req_collection_update(const cJSON *body, const vd_collection_config *c,
                             vd_search_defaults *out, unsigned *mask, vd_errmsg *em);

/* PUT /collections/{name}/points. Detaches payloads from body into the points. */
typedef struct vd_upsert_req {
    vd_point_in *points;
    size_t n;
    float *vectors; /* n * dim, owned */
} vd_upsert_req;
int vd_req_upsert(cJSON *body, const vd_collection_config *c, const vd_limits *lim,
                  const vd_json_vectors *lifted, vd_upsert_req *out, vd_errmsg *em);
void vd_upsert_req_free(vd_upsert_req *r);

/* PUT /collections/{name}/points/vectors: {"points": [{"id", "vector"}]},
 * points that keep their payload (vector_only). */
int vd_req_update_vectors(cJSON *body, const vd_collection_config *c, const vd_limits *lim,
                          const vd_json_vectors *lifted, vd_upsert_req *out, vd_errmsg *em);

/* One search (POST …/search, or one entry of …/search/batch). */
typedef struct vd_search_parsed {
    vd_search_req req;
    float *vector;     /* owned */
    vd_filter *filter; /* owned */
} vd_search_parsed;
int vd_req_search(const cJSON *obj, const char *where, const vd_collection_config *c,
                  const vd_limits *lim, const vd_json_vectors *lifted, vd_search_parsed *out,
                  vd_errmsg *em);
void vd_search_parsed_free(vd_search_parsed *s);
/* POST …/search/batch: {"searches":[…]} */
int vd_req_search_batch(const cJSON *body, const vd_collection_config *c, const vd_limits *lim,
                        const vd_json_vectors *lifted, vd_search_parsed **out, size_t *n,
                        vd_errmsg *em);

/* POST …/points/delete: {"ids":[…]} or {"filter":{…}} */
typedef struct vd_delete_req {
    vd_point_id *ids; /* owned array, strings borrowed */
    size_t n_ids;
    vd_filter *filter; /* owned */
} vd_delete_req;
int vd_req_delete(const cJSON *body, const vd_limits *lim, vd_delete_req *out, vd_errmsg *em);
void vd_delete_req_free(vd_delete_req *r);

/* POST /collections/{name}/points/payload: the points ("ids" or "filter")
 * and one edit: {"set": {…}, "key"?}, {"replace": {…}}, {"unset": [keys]}
 * or {"clear": true}. The edit's argument and key borrow from body. */
typedef struct vd_payload_edit_req {
    vd_delete_req sel;
    vd_payload_edit edit;
} vd_payload_edit_req;
int vd_req_payload_edit(const cJSON *body, const vd_limits *lim, vd_payload_edit_req *out, vd_errmsg *em);

/* PUT /collections/{name}/payload_indexes: {"field":"userId","type":"keyword"} */
int vd_req_pindex(const cJSON *body, const char **field, vd_pindex_type *type, vd_errmsg *em);

/* A point id in a URL path: canonical decimal → integer id, else string id;
 * id_type ("string" | "int" | NULL) overrides. str borrows from text. */
int vd_req_path_id(const char *text, const char *id_type, vd_point_id *out, vd_errmsg *em);

#endif

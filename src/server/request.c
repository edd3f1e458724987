/* request.c — see request.h. */
#include "server/request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/json_util.h"
#include "vectord/distance.h"

/* index.target_recall: 0 (off) or VD_TARGET_RECALL_MIN … MAX; *given says
 * whether the body has it. */
static int parse_target_recall(const cJSON *index, float *out, bool *given, vd_errmsg *em)
{
    double v;
    int rc = vd_json_number(index, "target_recall", "index", given, &v, em);
    if (rc || !*given)
        return rc;
    if (!(v == 0 || (v >= VD_TARGET_RECALL_MIN && v <= VD_TARGET_RECALL_MAX)))
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "index.target_recall must be 0 (off) or from %.1f to %.3f, got %g", (double)VD_TARGET_RECALL_MIN,
                       (double)VD_TARGET_RECALL_MAX, v);
    *out = (float)v;
    return 0;
}

static int parse_index(const cJSON *index, vd_index_params *out, vd_errmsg *em)
{
    static const char *const flat_fields[] = {"type", NULL};
    static const char *const hnsw_fields[] = {"type", "m", "ef_construction", "ef_search", "target_recall", NULL};
    static const char *const ivf_fields[] = {"type", "nlist", "nprobe", "target_recall", NULL};
    int rc;
    uint64_t v;
    if ((rc = vd_json_object(index, "index", em)))
        return rc;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(index, "type");
    if (!cJSON_IsString(type))
        return vd_fail(em, VD_E_INVALID_REQUEST, "index.type must be \"flat\", \"hnsw\" or \"ivf\"");
    if (strcmp(type->valuestring, "flat") == 0) {
        vd_index_params_default(out, VD_INDEX_FLAT);
        return vd_json_no_unknown(index, "index", flat_fields, em);
    }
    if (strcmp(type->valuestring, "ivf") == 0) {
        vd_index_params_default(out, VD_INDEX_IVF);
        if ((rc = vd_json_no_unknown(index, "index", ivf_fields, em)))
            return rc;
        /* 0 = automatic, as absent is, and as collection info prints it back */
        if ((rc = vd_json_uint(index, "nlist", "index", false, 0, 0, VD_IVF_MAX_NLIST, &v, em)))
            return rc;
        out->nlist = (uint32_t)v;
        if ((rc = vd_json_uint(index, "nprobe", "index", false, 0, 0, VD_IVF_MAX_NPROBE, &v, em)))
            return rc;
        out->nprobe = (uint32_t)v;
        return 0;
    }
    if (strcmp(type->valuestring, "hnsw") != 0)
        return vd_fail(em, VD_E_UNSUPPORTED_INDEX,
                       "unknown index type '%.64s'; known: flat, hnsw, ivf", type->valuestring);
    vd_index_params_default(out, VD_INDEX_HNSW);
    if ((rc = vd_json_no_unknown(index, "index", hnsw_fields, em)))
        return rc;
    if ((rc = vd_json_uint(index, "m", "index", false, VD_HNSW_DEFAULT_M, VD_HNSW_MIN_M,
                           VD_HNSW_MAX_M, &v, em)))
        return rc;
    out->m = (uint32_t)v;
    if ((rc = vd_json_uint(index, "ef_construction", "index", false,
                           VD_HNSW_DEFAULT_EF_CONSTRUCTION, VD_HNSW_MIN_EF_CONSTRUCTION,
                           VD_HNSW_MAX_EF_CONSTRUCTION, &v, em)))
        return rc;
    out->ef_construction = (uint32_t)v;
    if ((rc = vd_json_uint(index, "ef_search", "index", false, VD_HNSW_DEFAULT_EF_SEARCH,
                           VD_HNSW_MIN_EF_SEARCH, VD_HNSW_MAX_EF_SEARCH, &v, em)))
        return rc;
    out->ef_search = (uint32_t)v;
    return 0;
}

/* A number in [min, max], or def when absent. */
static int parse_factor(const cJSON *obj, const char *name, const char *where, double def,
                        double min, double max, float *out, vd_errmsg *em)
{
    bool present;
    double v;
    int rc = vd_json_number(obj, name, where, &present, &v, em);
    if (rc)
        return rc;
    if (present && !(v >= min && v <= max)) {
        char path[256];
        return vd_fail(em, VD_E_INVALID_REQUEST, "%s must be a number from %g to %g",
                       vd_json_path(path, sizeof path, where, name), min, max);
    }
    *out = (float)(present ? v : def);
    return 0;
}

/* "quantization": "none" | "fp16" | "sq8", or {"type": …, "oversampling": x,
 * "originals": "disk" | "ram"}. After out->index: the default oversampling
 * depends on the index type. */
static int parse_quantization(const cJSON *q, vd_collection_config *out, vd_errmsg *em)
{
    static const char *const fields[] = {"type", "oversampling", "originals", NULL};
    static const char *const hint = "quantization must be \"none\", \"fp16\", \"sq8\" or an object "
                                    "such as {\"type\": \"sq8\", \"oversampling\": 3, "
                                    "\"originals\": \"disk\"}";
    const cJSON *type = q;
    int rc;
    if (cJSON_IsObject(q)) {
        if ((rc = vd_json_no_unknown(q, "quantization", fields, em)))
            return rc;
        type = cJSON_GetObjectItemCaseSensitive(q, "type");
    }
    if (!cJSON_IsString(type))
        return vd_fail(em, VD_E_INVALID_REQUEST, "%s", hint);
    if (vd_quant_parse(type->valuestring, &out->quant))
        return vd_fail(em, VD_E_UNSUPPORTED_INDEX,
                       "unknown quantization '%.64s'; known: none, fp16, sq8", type->valuestring);
    out->originals_on_disk = out->quant != VD_QUANT_NONE;
    const cJSON *orig = cJSON_IsObject(q) ? cJSON_GetObjectItemCaseSensitive(q, "originals") : NULL;
    if (orig) {
        bool disk = cJSON_IsString(orig) && strcmp(orig->valuestring, "disk") == 0;
        if (!disk && !(cJSON_IsString(orig) && strcmp(orig->valuestring, "ram") == 0))
            return vd_fail(em, VD_E_INVALID_REQUEST,
                           "quantization.originals must be \"disk\" or \"ram\"");
        if (disk && out->quant == VD_QUANT_NONE)
            return vd_fail(em, VD_E_INVALID_REQUEST,
                           "quantization.originals \"disk\" needs quantization fp16 or sq8: "
                           "the index walks the codes in RAM and reads originals only to re-rank");
        out->originals_on_disk = disk;
    }
    /* The default depends on where the originals are (read above). */
    out->oversampling = vd_oversampling_default(out->quant, out->index.type, out->originals_on_disk);
    if (!cJSON_IsObject(q))
        return 0;
    return parse_factor(q, "oversampling", "quantization", out->oversampling, 1.0, VD_OVERSAMPLING_MAX,
                        &out->oversampling, em);
}

int vd_req_collection(const cJSON *body, const char *name, const vd_limits *lim,
                      vd_collection_config *out, vd_errmsg *em)
{
    static const char *const allowed[] = {"dim", "metric", "shards", "index", "quantization",
                                          "payload_indexes", NULL};
    int rc;
    uint64_t v;
    memset(out, 0, sizeof *out);
    if (!vd_collection_name_valid(name))
        return vd_fail(em, VD_E_INVALID_NAME,
                       "collection name must be 1 to %d characters of A-Z a-z 0-9 _ -",
                       VD_NAME_MAX_LEN);
    snprintf(out->name, sizeof out->name, "%s", name);
    if ((rc = vd_json_object(body, "", em)) || (rc = vd_json_no_unknown(body, "", allowed, em)))
        return rc;
    if ((rc = vd_json_uint(body, "dim", "", true, 0, 1, lim->max_dim, &v, em)))
        return rc;
    out->dim = (uint32_t)v;
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(body, "metric");
    out->metric = VD_METRIC_COSINE;
    if (metric && (!cJSON_IsString(metric) || vd_metric_parse(metric->valuestring, &out->metric)))
        return vd_fail(em, VD_E_INVALID_REQUEST, "metric must be \"cosine\", \"dot\" or \"l2\"");
    if ((rc = vd_json_uint(body, "shards", "", false, lim->default_shards, VD_SHARDS_MIN,
                           VD_SHARDS_MAX, &v, em)))
        return rc;
    out->n_shards = (uint32_t)v;

    vd_index_params_default(&out->index, VD_INDEX_FLAT);
    const cJSON *index = cJSON_GetObjectItemCaseSensitive(body, "index");
    if (index && (rc = parse_index(index, &out->index, em)))
        return rc;
    /* A graph or list index searches to a target recall by default — unless
     * the body sets the knob (ef_search, nprobe) itself, which then rules. */
    bool target_given = false;
    if (out->index.type != VD_INDEX_FLAT) {
        const char *knob = out->index.type == VD_INDEX_HNSW ? "ef_search" : "nprobe";
        out->target_recall = cJSON_GetObjectItemCaseSensitive(index, knob) ? 0.0f : VD_TARGET_RECALL_DEFAULT;
        if ((rc = parse_target_recall(index, &out->target_recall, &target_given, em)))
            return rc;
    }
    out->oversampling = 1.0f;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(body, "quantization");
    if (q && (rc = parse_quantization(q, out, em)))
        return rc;

    const cJSON *pidx = cJSON_GetObjectItemCaseSensitive(body, "payload_indexes");
    if (pidx) {
        if (!cJSON_IsObject(pidx))
            return vd_fail(em, VD_E_INVALID_REQUEST,
                           "payload_indexes must be an object such as "
                           "{\"userId\":\"keyword\",\"createdAt\":\"numeric\"}");
        for (const cJSON *f = pidx->child; f; f = f->next) {
            vd_pindex_type t;
            if (!cJSON_IsString(f) || vd_pindex_type_parse(f->valuestring, &t))
                return vd_fail(em, VD_E_INVALID_REQUEST,
                               "payload_indexes.%.100s must be \"keyword\", \"tenant\", \"numeric\" or \"datetime\"",
                               f->string);
            vd_key_path kp;
            if (vd_key_path_parse(&kp, f->string) != 0)
                return vd_fail(em, VD_E_INVALID_REQUEST,
                               "payload_indexes key '%.100s' must be a non-empty dotted path",
                               f->string);
            vd_key_path_free(&kp);
            if (out->n_pindexes == VD_PINDEX_MAX)
                return vd_fail(em, VD_E_LIMIT_REACHED, "at most %d payload indexes",
                               VD_PINDEX_MAX);
            out->pindexes[out->n_pindexes++] = (vd_pindex_spec){f->string, t};
        }
    }
    return 0;
}

void vd_upsert_req_free(vd_upsert_req *r)
{
    for (size_t i = 0; r->points && i < r->n; i++)
        cJSON_Delete(r->points[i].payload);
    free(r->points);
    free(r->vectors);
    *r = (vd_upsert_req){0};
}

static int parse_point(cJSON *p, size_t i, const vd_collection_config *c,
                       const vd_json_vectors *lifted, bool vector_only, vd_point_in *out, float *vec,
                       vd_errmsg *em)
{
    static const char *const allowed[] = {"id", "vector", "vector_b64", "payload", "version", NULL};
    static const char *const vector_fields[] = {"id", "vector", "vector_b64", NULL};
    char where[64], path[96];
    int rc;
    snprintf(where, sizeof where, "points[%zu]", i);
    if ((rc = vd_json_object(p, where, em)) ||
        (rc = vd_json_no_unknown(p, where, vector_only ? vector_fields : allowed, em)))
        return rc;
    out->vector_only = vector_only;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "id");
    if (!id)
        return vd_fail(em, VD_E_INVALID_REQUEST, "missing field '%s.id'", where);
    if ((rc = vd_json_id(id, vd_json_path(path, sizeof path, where, "id"), &out->id, em)))
        return rc;
    if ((rc = vd_json_vector_field(p, where, c->name, c->dim, lifted, vec, em)))
        return rc;
    if (vd_collection_prepare_vector(c, vec))
        return vd_fail(em, VD_E_INVALID_VECTOR,
                       "%s.vector has zero length; cosine needs a non-zero vector", where);
    out->vector = vec;
    uint64_t version;
    out->has_version = cJSON_GetObjectItemCaseSensitive(p, "version") != NULL &&
                       !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(p, "version"));
    if ((rc = vd_json_uint(p, "version", where, false, 0, 0, VD_ID_MAX_INT, &version, em)))
        return rc;
    out->version = version;
    cJSON *payload = cJSON_GetObjectItemCaseSensitive(p, "payload");
    if (payload && !cJSON_IsNull(payload) && !cJSON_IsObject(payload))
        return vd_fail(em, VD_E_INVALID_REQUEST, "%s.payload must be a JSON object", where);
    return 0;
}

static int parse_points(cJSON *body, const vd_collection_config *c, const vd_limits *lim,
                        const vd_json_vectors *lifted, bool vector_only, vd_upsert_req *out,
                        vd_errmsg *em)
{
    static const char *const allowed[] = {"points", NULL};
    int rc;
    *out = (vd_upsert_req){0};
    if ((rc = vd_json_object(body, "", em)) || (rc = vd_json_no_unknown(body, "", allowed, em)))
        return rc;
    cJSON *points = cJSON_GetObjectItemCaseSensitive(body, "points");
    if (!cJSON_IsArray(points))
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "points must be an array of {\"id\",\"vector\",\"payload\",\"version\"}");
    size_t n = (size_t)cJSON_GetArraySize(points);
    if (n == 0)
        return vd_fail(em, VD_E_EMPTY_BATCH, "points is empty; send at least one point");
    if (n > lim->max_batch_points)
        return vd_fail(em, VD_E_BATCH_TOO_LARGE,
                       "points has %zu entries; at most %u per request (setting max_batch_points)",
                       n, lim->max_batch_points);
    out->points = calloc(n, sizeof *out->points);
    out->vectors = malloc(n * c->dim * sizeof(float));
    if (!out->points || !out->vectors) {
        vd_upsert_req_free(out);
        return vd_fail(em, VD_E_OUT_OF_MEMORY, "cannot allocate %zu points", n);
    }
    size_t i = 0;
    for (cJSON *p = points->child; p; p = p->next, i++) {
        if ((rc = parse_point(p, i, c, lifted, vector_only, &out->points[i], out->vectors + i * c->dim, em))) {
            vd_upsert_req_free(out);
            return rc;
        }
    }
    /* All valid: only now take the payloads out of the body. */
    i = 0;
    for (cJSON *p = points->child; p; p = p->next, i++) {
        cJSON *payload = cJSON_DetachItemFromObjectCaseSensitive(p, "payload");
        if (cJSON_IsNull(payload)) {
            cJSON_Delete(payload);
            payload = NULL;
        }
        out->points[i].payload = payload;
    }
    out->n = n;
    return 0;
}

int vd_req_upsert(cJSON *body, const vd_collection_config *c, const vd_limits *lim,
                  const vd_json_vectors *lifted, vd_upsert_req *out, vd_errmsg *em)
{
    return parse_points(body, c, lim, lifted, false, out, em);
}

int vd_req_update_vectors(cJSON *body, const vd_collection_config *c, const vd_limits *lim,
                          const vd_json_vectors *lifted, vd_upsert_req *out, vd_errmsg *em)
{
    return parse_points(body, c, lim, lifted, true, out, em);
}

void vd_search_parsed_free(vd_search_parsed *s)
{
    free(s->vector);
    vd_filter_destroy(s->filter);
    *s = (vd_search_parsed){0};
}

int vd_req_search(const cJSON *obj, const char *where, const vd_collection_config *c,
                  const vd_limits *lim, const vd_json_vectors *lifted, vd_search_parsed *out,
                  vd_errmsg *em)
{
    static const char *const allowed[] = {"vector", "vector_b64", "k", "limit", "filter", "with_payload",
                                          "with_vector", "score_threshold", "ef", "nprobe",
                                          "oversampling", "exact", NULL};
    char path[128];
    int rc;
    uint64_t v;
    *out = (vd_search_parsed){0};
    vd_search_req *r = &out->req;
    if ((rc = vd_json_object(obj, where, em)) || (rc = vd_json_no_unknown(obj, where, allowed, em)))
        return rc;
    if (cJSON_GetObjectItemCaseSensitive(obj, "k") && cJSON_GetObjectItemCaseSensitive(obj, "limit"))
        return vd_fail(em, VD_E_INVALID_REQUEST, "give either k or limit, not both");
    const char *kname = cJSON_GetObjectItemCaseSensitive(obj, "limit") ? "limit" : "k";
    if ((rc = vd_json_uint(obj, kname, where, false, VD_K_DEFAULT, 1, lim->max_k, &v, em)))
        goto fail;
    r->k = (uint32_t)v;
    if ((rc = vd_json_uint(obj, "ef", where, false, 0, VD_HNSW_MIN_EF_SEARCH, VD_HNSW_MAX_EF_SEARCH,
                           &v, em)))
        goto fail;
    r->ef = (uint32_t)v;
    if ((rc = vd_json_uint(obj, "nprobe", where, false, 0, 1, VD_IVF_MAX_NPROBE, &v, em)))
        goto fail;
    r->nprobe = (uint32_t)v;
    /* 0 = the collection's; ignored by collections without quantization */
    if ((rc = parse_factor(obj, "oversampling", where, 0.0, 1.0, VD_OVERSAMPLING_MAX,
                           &r->oversampling, em)))
        goto fail;
    if ((rc = vd_json_bool(obj, "with_payload", where, true, &r->with_payload, em)) ||
        (rc = vd_json_bool(obj, "with_vector", where, false, &r->with_vector, em)) ||
        (rc = vd_json_bool(obj, "exact", where, false, &r->exact, em)))
        goto fail;
    double thr;
    if ((rc = vd_json_number(obj, "score_threshold", where, &r->has_threshold, &thr, em)))
        goto fail;
    r->score_threshold = (float)thr;
    out->vector = malloc(c->dim * sizeof(float));
    if (!out->vector) {
        rc = vd_fail(em, VD_E_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    if ((rc = vd_json_vector_field(obj, where, c->name, c->dim, lifted, out->vector, em)))
        goto fail;
    vd_json_path(path, sizeof path, where, "vector");
    if (vd_collection_prepare_vector(c, out->vector)) {
        rc = vd_fail(em, VD_E_INVALID_VECTOR,
                     "%s has zero length; cosine needs a non-zero query vector", path);
        goto fail;
    }
    r->vector = out->vector;
    const cJSON *filter = cJSON_GetObjectItemCaseSensitive(obj, "filter");
    if (filter && !cJSON_IsNull(filter)) {
        if ((rc = vd_filter_parse(filter, lim->max_filter_depth, lim->max_filter_terms, &out->filter, em)))
            goto fail;
        r->filter = out->filter;
    }
    return 0;
fail:
    vd_search_parsed_free(out);
    return rc;
}

int vd_req_search_batch(const cJSON *body, const vd_collection_config *c, const vd_limits *lim,
                        const vd_json_vectors *lifted, vd_search_parsed **out, size_t *n,
                        vd_errmsg *em)
{
    static const char *const allowed[] = {"searches", NULL};
    int rc;
    *out = NULL;
    *n = 0;
    if ((rc = vd_json_object(body, "", em)) || (rc = vd_json_no_unknown(body, "", allowed, em)))
        return rc;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(body, "searches");
    if (!cJSON_IsArray(arr))
        return vd_fail(em, VD_E_INVALID_REQUEST, "searches must be an array of search requests");
    size_t count = (size_t)cJSON_GetArraySize(arr);
    if (count == 0)
        return vd_fail(em, VD_E_EMPTY_BATCH, "searches is empty");
    if (count > lim->max_batch_searches)
        return vd_fail(em, VD_E_BATCH_TOO_LARGE,
                       "searches has %zu entries; at most %u (setting max_batch_searches)", count,
                       lim->max_batch_searches);
    vd_search_parsed *s = calloc(count, sizeof *s);
    if (!s)
        return vd_fail(em, VD_E_OUT_OF_MEMORY, "out of memory");
    size_t i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        char where[48];
        snprintf(where, sizeof where, "searches[%zu]", i);
        if ((rc = vd_req_search(e, where, c, lim, lifted, &s[i], em))) {
            for (size_t j = 0; j < i; j++)
                vd_search_parsed_free(&s[j]);
            free(s);
            return rc;
        }
    }
    *out = s;
    *n = count;
    return 0;
}

void vd_delete_req_free(vd_delete_req *r)
{
    free(r->ids);
    vd_filter_destroy(r->filter);
    *r = (vd_delete_req){0};
}

/* The points a write names: {"ids": […]} or {"filter": {…}}, exactly one. */
static int parse_selector(const cJSON *body, const vd_limits *lim, vd_delete_req *out, vd_errmsg *em)
{
    int rc;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(body, "ids");
    const cJSON *filter = cJSON_GetObjectItemCaseSensitive(body, "filter");
    if (!ids == !filter)
        return vd_fail(em, VD_E_INVALID_REQUEST, "give exactly one of \"ids\" or \"filter\"");
    if (filter)
        return vd_filter_parse(filter, lim->max_filter_depth, lim->max_filter_terms, &out->filter, em);
    if (!cJSON_IsArray(ids))
        return vd_fail(em, VD_E_INVALID_REQUEST, "ids must be an array of point ids");
    size_t n = (size_t)cJSON_GetArraySize(ids);
    if (n == 0)
        return vd_fail(em, VD_E_EMPTY_BATCH, "ids is empty");
    if (n > lim->max_batch_points)
        return vd_fail(em, VD_E_BATCH_TOO_LARGE,
                       "ids has %zu entries; at most %u per request (setting max_batch_points)", n,
                       lim->max_batch_points);
    out->ids = calloc(n, sizeof *out->ids);
    if (!out->ids)
        return vd_fail(em, VD_E_OUT_OF_MEMORY, "out of memory");
    size_t i = 0;
    for (const cJSON *e = ids->child; e; e = e->next, i++) {
        char path[32];
        snprintf(path, sizeof path, "ids[%zu]", i);
        if ((rc = vd_json_id(e, path, &out->ids[i], em)))
            return rc;
    }
    out->n_ids = n;
    return 0;
}

int vd_req_delete(const cJSON *body, const vd_limits *lim, vd_delete_req *out, vd_errmsg *em)
{
    static const char *const allowed[] = {"ids", "filter", NULL};
    int rc;
    *out = (vd_delete_req){0};
    if ((rc = vd_json_object(body, "", em)) || (rc = vd_json_no_unknown(body, "", allowed, em)) ||
        (rc = parse_selector(body, lim, out, em)))
        vd_delete_req_free(out);
    return rc;
}

int vd_req_payload_edit(const cJSON *body, const vd_limits *lim, vd_payload_edit_req *out, vd_errmsg *em)
{
    static const char *const allowed[] = {"ids", "filter", "set", "key", "replace", "unset", "clear", NULL};
    static const char *const ops[] = {"set", "replace", "unset", "clear"};
    int rc;
    *out = (vd_payload_edit_req){0};
    if ((rc = vd_json_object(body, "", em)) || (rc = vd_json_no_unknown(body, "", allowed, em)))
        return rc;
    const cJSON *arg = NULL;
    for (int i = 0; i < 4; i++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(body, ops[i]);
        if (!o)
            continue;
        if (arg)
            return vd_fail(em, VD_E_INVALID_REQUEST, "give one of \"set\", \"replace\", \"unset\" or \"clear\", not two");
        arg = o;
        out->edit.op = (vd_payload_op)(i + 1);
    }
    if (!arg)
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "say what to change: \"set\": {…}, \"replace\": {…}, \"unset\": [keys] or \"clear\": true");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(body, "key");
    if (key && out->edit.op != VD_PAYLOAD_SET && out->edit.op != VD_PAYLOAD_REPLACE)
        return vd_fail(em, VD_E_INVALID_REQUEST, "key goes with \"set\" or \"replace\" only");
    if (key && !cJSON_IsNull(key)) {
        vd_key_path kp;
        int krc = cJSON_IsString(key) && strlen(key->valuestring) <= VD_PAYLOAD_KEY_MAX
                      ? vd_key_path_parse(&kp, key->valuestring)
                      : -1;
        if (krc == -ENOMEM)
            return vd_fail(em, VD_E_OUT_OF_MEMORY, "out of memory");
        if (krc)
            return vd_fail(em, VD_E_INVALID_REQUEST,
                           "key must be a dotted path of non-empty parts (at most %d bytes), such as \"a.b\"",
                           VD_PAYLOAD_KEY_MAX);
        vd_key_path_free(&kp);
        out->edit.key = key->valuestring;
    }
    switch (out->edit.op) {
    case VD_PAYLOAD_SET:
    case VD_PAYLOAD_REPLACE:
        if (!cJSON_IsObject(arg))
            return vd_fail(em, VD_E_INVALID_REQUEST, "%s must be a JSON object", arg->string);
        out->edit.arg = arg;
        break;
    case VD_PAYLOAD_UNSET: {
        int n = cJSON_GetArraySize(arg);
        if (!cJSON_IsArray(arg) || n == 0 || n > VD_FILTER_MAX_VALUES)
            return vd_fail(em, VD_E_INVALID_REQUEST, "unset must be an array of 1 to %d keys", VD_FILTER_MAX_VALUES);
        for (const cJSON *k = arg->child; k; k = k->next)
            if (!cJSON_IsString(k) || !k->valuestring[0] || strlen(k->valuestring) > VD_PAYLOAD_KEY_MAX)
                return vd_fail(em, VD_E_INVALID_REQUEST,
                               "unset must list keys as non-empty strings of at most %d bytes", VD_PAYLOAD_KEY_MAX);
        out->edit.arg = arg;
        break;
    }
    case VD_PAYLOAD_CLEAR:
        if (!cJSON_IsTrue(arg))
            return vd_fail(em, VD_E_INVALID_REQUEST, "clear must be true");
        break;
    }
    if ((rc = parse_selector(body, lim, &out->sel, em)))
        vd_delete_req_free(&out->sel);
    return rc;
}

/* A member the settings change names but no collection can change after creation. */
static int refuse_fixed(const cJSON *obj, const char *where, const char *const *fixed,
                        vd_errmsg *em)
{
    for (size_t i = 0; fixed[i]; i++)
        if (cJSON_GetObjectItemCaseSensitive(obj, fixed[i])) {
            char path[128];
            return vd_fail(em, VD_E_INVALID_REQUEST,
                           "%s cannot change after the collection is created (it shapes what is "
                           "stored); create a new collection with it",
                           vd_json_path(path, sizeof path, where, fixed[i]));
        }
    return 0;
}

int vd_req_collection_update(const cJSON *body, const vd_collection_config *c,
                             vd_search_defaults *out, unsigned *mask, vd_errmsg *em)
{
    static const char *const top[] = {"index", "quantization", NULL};
    static const char *const top_fixed[] = {"dim", "metric", "shards", "payload_indexes", NULL};
    static const char *const index_fields[] = {"ef_search", "nprobe", "target_recall", NULL};
    static const char *const index_fixed[] = {"type", "m", "ef_construction", "nlist", NULL};
    static const char *const quant_fields[] = {"oversampling", NULL};
    static const char *const quant_fixed[] = {"type", "originals", NULL};
    int rc;
    uint64_t v;
    *mask = 0;
    *out = (vd_search_defaults){0};
    if ((rc = vd_json_object(body, "", em)) || (rc = refuse_fixed(body, "", top_fixed, em)) ||
        (rc = vd_json_no_unknown(body, "", top, em)))
        return rc;
    const cJSON *index = cJSON_GetObjectItemCaseSensitive(body, "index");
    if (index) {
        if ((rc = vd_json_object(index, "index", em)) ||
            (rc = refuse_fixed(index, "index", index_fixed, em)) ||
            (rc = vd_json_no_unknown(index, "index", index_fields, em)))
            return rc;
        if (cJSON_GetObjectItemCaseSensitive(index, "ef_search")) {
            if (c->index.type != VD_INDEX_HNSW)
                return vd_fail(em, VD_E_INVALID_REQUEST,
                               "index.ef_search applies to hnsw collections; this one is %s",
                               vd_index_type_name(c->index.type));
            if ((rc = vd_json_uint(index, "ef_search", "index", true, 0, VD_HNSW_MIN_EF_SEARCH,
                                   VD_HNSW_MAX_EF_SEARCH, &v, em)))
                return rc;
            out->ef_search = (uint32_t)v;
            *mask |= VD_SET_EF_SEARCH;
        }
        if (cJSON_GetObjectItemCaseSensitive(index, "nprobe")) {
            if (c->index.type != VD_INDEX_IVF)
                return vd_fail(em, VD_E_INVALID_REQUEST,
                               "index.nprobe applies to ivf collections; this one is %s",
                               vd_index_type_name(c->index.type));
            /* 0 = automatic, as at creation */
            if ((rc = vd_json_uint(index, "nprobe", "index", true, 0, 0, VD_IVF_MAX_NPROBE, &v, em)))
                return rc;
            out->nprobe = (uint32_t)v;
            *mask |= VD_SET_NPROBE;
        }
        bool given = false;
        if (cJSON_GetObjectItemCaseSensitive(index, "target_recall") && c->index.type == VD_INDEX_FLAT)
            return vd_fail(em, VD_E_INVALID_REQUEST,
                           "index.target_recall applies to hnsw and ivf collections; a flat one is exact");
        if ((rc = parse_target_recall(index, &out->target_recall, &given, em)))
            return rc;
        /* Setting the knob by hand turns the target off, unless this change sets one. */
        if (given || (*mask & (VD_SET_EF_SEARCH | VD_SET_NPROBE)))
            *mask |= VD_SET_TARGET_RECALL;
    }
    const cJSON *quant = cJSON_GetObjectItemCaseSensitive(body, "quantization");
    if (quant) {
        if ((rc = vd_json_object(quant, "quantization", em)) ||
            (rc = refuse_fixed(quant, "quantization", quant_fixed, em)) ||
            (rc = vd_json_no_unknown(quant, "quantization", quant_fields, em)))
            return rc;
        if (cJSON_GetObjectItemCaseSensitive(quant, "oversampling")) {
            if (c->quant == VD_QUANT_NONE)
                return vd_fail(em, VD_E_INVALID_REQUEST,
                               "quantization.oversampling applies to quantized collections; this "
                               "one keeps float32 vectors only");
            if ((rc = parse_factor(quant, "oversampling", "quantization", 0, 1.0,
                                   VD_OVERSAMPLING_MAX, &out->oversampling, em)))
                return rc;
            *mask |= VD_SET_OVERSAMPLING;
        }
    }
    if (!*mask)
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "nothing to change: send index.ef_search (hnsw), index.nprobe (ivf), "
                       "index.target_recall (hnsw, ivf) or quantization.oversampling (quantized collections)");
    return 0;
}

int vd_req_pindex(const cJSON *body, const char **field, vd_pindex_type *type, vd_errmsg *em)
{
    static const char *const allowed[] = {"field", "type", NULL};
    int rc;
    if ((rc = vd_json_object(body, "", em)) || (rc = vd_json_no_unknown(body, "", allowed, em)))
        return rc;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(body, "field");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "type");
    vd_key_path kp;
    if (!cJSON_IsString(f) || vd_key_path_parse(&kp, f->valuestring) != 0)
        return vd_fail(em, VD_E_INVALID_REQUEST, "field must be a non-empty (dotted) payload key");
    vd_key_path_free(&kp);
    if (!cJSON_IsString(t) || vd_pindex_type_parse(t->valuestring, type) != 0)
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "type must be \"keyword\", \"tenant\" (a keyword index that keeps each "
                       "value's points together), \"numeric\" or \"datetime\"");
    *field = f->valuestring;
    return 0;
}

int vd_req_path_id(const char *text, const char *id_type, vd_point_id *out, vd_errmsg *em)
{
    size_t len = strlen(text);
    bool digits = len > 0 && len <= 16 && (text[0] != '0' || len == 1);
    for (size_t i = 0; digits && i < len; i++)
        digits = text[i] >= '0' && text[i] <= '9';
    if (id_type && strcmp(id_type, "string") != 0 && strcmp(id_type, "int") != 0)
        return vd_fail(em, VD_E_INVALID_REQUEST, "id_type must be \"string\" or \"int\"");
    bool as_int = id_type ? strcmp(id_type, "int") == 0 : digits;
    if (as_int) {
        unsigned long long v = digits ? strtoull(text, NULL, 10) : VD_ID_MAX_INT + 1;
        if (!digits || v > VD_ID_MAX_INT)
            return vd_fail(em, VD_E_INVALID_ID, "point id '%.64s' is not an integer up to %llu",
                           text, (unsigned long long)VD_ID_MAX_INT);
        *out = (vd_point_id){.kind = VD_ID_INT, .num = v};
        return 0;
    }
    if (len == 0 || len > VD_ID_MAX_LEN)
        return vd_fail(em, VD_E_INVALID_ID, "point id must be 1 to %d bytes long", VD_ID_MAX_LEN);
    *out = (vd_point_id){.kind = VD_ID_STR, .len = (uint32_t)len, .str = text};
    return 0;
}

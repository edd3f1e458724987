/* qdrant.c — see qdrant.h. Service and collection routes. */
#include "server/qdrant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/handlers.h"
#include "server/response.h"

/* ---- shared by the Qdrant routes ------------------------------------------ */

int vd_qd_update_result(vd_call *call)
{
    cJSON_Delete(call->result);
    call->result = cJSON_CreateObject();
    cJSON_AddNumberToObject(call->result, "operation_id", 0);
    cJSON_AddStringToObject(call->result, "status", "completed");
    return 0;
}

int vd_qd_payload_sel_parse(vd_call *call, const cJSON *wp, bool dflt, const char *where, vd_qd_payload_sel *out)
{
    *out = (vd_qd_payload_sel){.with = dflt};
    if (!wp || cJSON_IsNull(wp))
        return 0;
    out->with = !cJSON_IsFalse(wp);
    if (cJSON_IsBool(wp))
        return 0;
    const cJSON *inc = cJSON_GetObjectItem(wp, "include"), *exc = cJSON_GetObjectItem(wp, "exclude");
    const cJSON *list = cJSON_IsArray(wp) ? wp
                        : cJSON_IsObject(wp) && cJSON_GetArraySize((cJSON *)wp) == 1 ? (inc ? inc : exc)
                                                                                      : NULL;
    bool names = cJSON_IsArray(list);
    for (const cJSON *n = names ? list->child : NULL; n; n = n->next)
        names = names && cJSON_IsString(n);
    if (!names)
        return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                       "%swith_payload must be true, false, a list of field names, or {\"include\"|\"exclude\": [names]}",
                       where);
    if (list == exc)
        out->exclude = exc;
    else
        out->include = list;
    return 0;
}

static bool named(const cJSON *names, const char *key)
{
    for (const cJSON *n = names ? names->child : NULL; n; n = n->next)
        if (strcmp(n->valuestring, key) == 0)
            return true;
    return false;
}

void vd_qd_payload_trim(const vd_qd_payload_sel *sel, cJSON *payload)
{
    if (!payload || (!sel->include && !sel->exclude))
        return;
    for (cJSON *f = payload->child, *next; f; f = next) {
        next = f->next;
        if (sel->include ? !named(sel->include, f->string) : named(sel->exclude, f->string))
            cJSON_Delete(cJSON_DetachItemViaPointer(payload, f));
    }
}

int vd_qd_over_native(vd_call *call, const char *shape, int (*translate)(vd_call *call, cJSON **out),
                      int (*native)(vd_call *call), int (*finish)(vd_call *call))
{
    int rc = vd_call_require_body(call, shape);
    cJSON *body = NULL;
    if (!rc) {
        vd_qd_canonical_has_id(call->body);
        rc = translate(call, &body);
    }
    if (rc) {
        cJSON_Delete(body);
        return rc;
    }
    cJSON_Delete(call->body);
    call->body = body; /* the HTTP layer frees it with the call */
    call->finish = finish;
    return native(call);
}

/* ---- service ------------------------------------------------------------ */

static int plain_text(vd_call *call, const char *text)
{
    call->text = strdup(text);
    if (!call->text)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    call->text_len = strlen(text);
    call->content_type = "text/plain; charset=utf-8";
    return 0;
}

int vd_qd_root(vd_call *call)
{
    /* Qdrant answers GET / without its envelope; clients read "version".
     * Only Qdrant's fields (strict clients refuse others): vectord's own
     * version goes in the title. */
    char text[200];
    snprintf(text, sizeof text,
             "{\"title\":\"vectord %s (Qdrant-compatible REST API)\",\"version\":\"%s\"}\n",
             VECTORD_VERSION, VD_QDRANT_API_VERSION);
    int rc = plain_text(call, text);
    call->content_type = "application/json";
    return rc;
}

int vd_qd_healthz(vd_call *call) { return plain_text(call, "healthz check passed"); }

int vd_qd_readyz(vd_call *call)
{
    int rc = vd_h_readyz(call); /* the native readiness: recovered, the feeds fresh */
    cJSON_Delete(call->result);
    call->result = NULL;
    return rc ? rc : plain_text(call, "all shards are ready");
}

/* ---- collections -------------------------------------------------------- */

int vd_qd_collections_list(vd_call *call)
{
    int rc = vd_h_collections_list(call);
    if (rc)
        return rc;
    /* Qdrant lists names only. */
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(call->result, "collections"))
    {
        cJSON_DeleteItemFromObject(c, "dim");
        cJSON_DeleteItemFromObject(c, "metric");
    }
    return 0;
}

int vd_qd_collection_exists(vd_call *call)
{
    vd_collection *c;
    int rc = vd_call_collection(call, &c);
    if (rc && rc != VD_E_COLLECTION_NOT_FOUND)
        return rc;
    if (!rc)
        vd_collection_unref(c);
    call->result = cJSON_CreateObject();
    cJSON_AddBoolToObject(call->result, "exists", rc == 0);
    return 0;
}

static const struct {
    const char *qdrant, *native;
} distances[] = {{"Cosine", "cosine"}, {"Dot", "dot"}, {"Euclid", "l2"}};

static int bad(vd_call *call, const char *fmt, const char *what)
{
    return vd_fail(&call->em, VD_E_INVALID_REQUEST, fmt, what);
}

static bool is_one_of(const char *name, const char *const *names)
{
    for (; *names; names++)
        if (strcmp(name, *names) == 0)
            return true;
    return false;
}

int vd_qd_known_fields(vd_call *call, const cJSON *obj, const char *const *known, const char *what)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, obj)
    {
        if (!is_one_of(f->string, known))
            return vd_fail(&call->em, VD_E_UNKNOWN_FIELD, "unknown field '%.64s' in %s", f->string, what);
    }
    return 0;
}

/* Qdrant's hnsw_config into the native index object: m 0 is no graph (flat). */
static int hnsw_into(vd_call *call, const cJSON *hc, cJSON *index)
{
    static const char *const known[] = {"m", "ef_construct", "full_scan_threshold", "max_indexing_threads",
                                        "on_disk", "payload_m", "inline_storage", NULL};
    if (!cJSON_IsObject(hc))
        return bad(call, "%s must be an object such as {\"m\": 16, \"ef_construct\": 100}", "hnsw_config");
    int rc = vd_qd_known_fields(call, hc, known, "hnsw_config");
    if (rc)
        return rc;
    const cJSON *m = cJSON_GetObjectItem(hc, "m"), *efc = cJSON_GetObjectItem(hc, "ef_construct");
    if (m && (!cJSON_IsNumber(m) || m->valuedouble < 0))
        return bad(call, "%s must be a non-negative integer", "hnsw_config.m");
    if (m && m->valuedouble == 0) {
        cJSON_ReplaceItemInObject(index, "type", cJSON_CreateString("flat"));
        return 0;
    }
    if (m)
        cJSON_AddNumberToObject(index, "m", m->valuedouble);
    if (efc) {
        if (!cJSON_IsNumber(efc))
            return bad(call, "%s must be an integer", "hnsw_config.ef_construct");
        cJSON_AddNumberToObject(index, "ef_construction", efc->valuedouble);
    }
    return 0;
}

/* Qdrant's quantization_config: scalar int8 is sq8; the others are refused. */
static int quantization_into(vd_call *call, const cJSON *qc, cJSON *native)
{
    if (cJSON_IsNull(qc))
        return 0;
    const cJSON *scalar = cJSON_IsObject(qc) ? cJSON_GetObjectItem(qc, "scalar") : NULL;
    if (!scalar || cJSON_GetArraySize((cJSON *)qc) != 1)
        return bad(call, "%s: vectord supports scalar int8 quantization only "
                   "({\"scalar\": {\"type\": \"int8\"}}); product and binary are not supported",
                   "quantization_config");
    const cJSON *type = cJSON_GetObjectItem(scalar, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "int8") != 0)
        return bad(call, "%s must be \"int8\"", "quantization_config.scalar.type");
    cJSON *q = cJSON_AddObjectToObject(native, "quantization");
    cJSON_AddStringToObject(q, "type", "sq8");
    cJSON_AddStringToObject(q, "originals", "ram");
    return 0;
}

/* The body of Qdrant's PUT /collections/{c} as the native one. */
static int create_body(vd_call *call, cJSON **out)
{
    static const char *const known[] = {
        "vectors", "shard_number", "sharding_method", "replication_factor", "write_consistency_factor",
        "on_disk_payload", "hnsw_config", "wal_config", "optimizers_config", "quantization_config",
        "sparse_vectors", "strict_mode_config", "metadata", "init_from", NULL};
    const cJSON *body = call->body;
    int rc = vd_qd_known_fields(call, body, known, "the collection's settings");
    if (rc)
        return rc;
    const cJSON *vectors = cJSON_GetObjectItem(body, "vectors");
    if (!cJSON_IsObject(vectors))
        return bad(call, "%s is required: {\"size\": N, \"distance\": \"Cosine\"}", "vectors");
    const cJSON *size = cJSON_GetObjectItem(vectors, "size");
    if (!size)
        return bad(call, "%s: named vectors are not supported; give one unnamed vector "
                   "{\"size\": N, \"distance\": …}", "vectors");
    const cJSON *sparse = cJSON_GetObjectItem(body, "sparse_vectors");
    if (sparse && !cJSON_IsNull(sparse) && cJSON_GetArraySize((cJSON *)sparse) > 0)
        return bad(call, "%s are not supported", "sparse_vectors");
    if (cJSON_GetObjectItem(body, "init_from"))
        return bad(call, "%s is not supported", "init_from");
    const cJSON *distance = cJSON_GetObjectItem(vectors, "distance");
    const char *metric = NULL;
    for (size_t i = 0; cJSON_IsString(distance) && i < sizeof distances / sizeof *distances; i++)
        if (strcmp(distance->valuestring, distances[i].qdrant) == 0)
            metric = distances[i].native;
    if (!metric)
        return bad(call, "vectors.distance must be Cosine, Dot or Euclid, got %s (Manhattan is not supported)",
                   cJSON_IsString(distance) ? distance->valuestring : "nothing");
    const cJSON *datatype = cJSON_GetObjectItem(vectors, "datatype");
    if (datatype && (!cJSON_IsString(datatype) || strcmp(datatype->valuestring, "float32") != 0))
        return bad(call, "%s: vectord stores float32 vectors (use quantization_config for less memory)",
                   "vectors.datatype");
    if (cJSON_GetObjectItem(vectors, "multivector_config"))
        return bad(call, "%s is not supported", "vectors.multivector_config");
    cJSON *n = cJSON_CreateObject();
    *out = n;
    cJSON_AddItemToObject(n, "dim", cJSON_Duplicate(size, 1));
    cJSON_AddStringToObject(n, "metric", metric);
    const cJSON *shards = cJSON_GetObjectItem(body, "shard_number");
    if (shards)
        cJSON_AddItemToObject(n, "shards", cJSON_Duplicate(shards, 1));
    cJSON *index = cJSON_AddObjectToObject(n, "index");
    cJSON_AddStringToObject(index, "type", "hnsw");
    /* hnsw_config: the collection's, then the vector's (which wins in Qdrant) */
    const cJSON *hc[] = {cJSON_GetObjectItem(body, "hnsw_config"), cJSON_GetObjectItem(vectors, "hnsw_config")};
    for (int i = 0; i < 2; i++) {
        if (!hc[i] || cJSON_IsNull(hc[i]))
            continue;
        if (i == 1) { /* the vector's replaces the collection's */
            cJSON_DeleteItemFromObject(index, "m");
            cJSON_DeleteItemFromObject(index, "ef_construction");
            cJSON_ReplaceItemInObject(index, "type", cJSON_CreateString("hnsw"));
        }
        rc = hnsw_into(call, hc[i], index);
        if (rc)
            return rc;
    }
    const cJSON *qc = cJSON_GetObjectItem(vectors, "quantization_config");
    if (!qc)
        qc = cJSON_GetObjectItem(body, "quantization_config");
    return qc ? quantization_into(call, qc, n) : 0;
}

/* Qdrant answers a created collection with true. */
static int true_result(vd_call *call)
{
    cJSON_Delete(call->result);
    call->result = cJSON_CreateTrue();
    return 0;
}

int vd_qd_collection_create(vd_call *call)
{
    return vd_qd_over_native(call, "a JSON object such as {\"vectors\":{\"size\":1536,\"distance\":\"Cosine\"}}",
                             create_body, vd_h_collection_create, true_result);
}

static cJSON *item(const cJSON *o, const char *name) { return cJSON_GetObjectItem(o, name); }

static const char *qdrant_distance(const char *metric)
{
    for (size_t i = 0; i < sizeof distances / sizeof *distances; i++)
        if (strcmp(metric, distances[i].native) == 0)
            return distances[i].qdrant;
    return metric;
}

/* vectord's collection info (vd_resp_collection) in Qdrant's shape. */
static cJSON *qdrant_info(const cJSON *v)
{
    cJSON *o = cJSON_CreateObject();
    const char *status = cJSON_GetStringValue(item(v, "status"));
    cJSON_AddStringToObject(o, "status", status && strcmp(status, "ready") == 0 ? "green" : "yellow");
    cJSON_AddStringToObject(o, "optimizer_status", "ok");
    double points = cJSON_GetNumberValue(item(v, "points_count"));
    const cJSON *index = item(v, "index");
    bool graph = strcmp(cJSON_GetStringValue(item(index, "type")), "flat") != 0;
    cJSON_AddNumberToObject(o, "points_count", points);
    cJSON_AddNumberToObject(o, "indexed_vectors_count",
                            graph ? points - cJSON_GetNumberValue(item(v, "index_backlog")) : 0);
    cJSON_AddNumberToObject(o, "segments_count", cJSON_GetNumberValue(item(v, "shards")));
    cJSON *config = cJSON_AddObjectToObject(o, "config");
    cJSON *params = cJSON_AddObjectToObject(config, "params");
    cJSON *vectors = cJSON_AddObjectToObject(params, "vectors");
    cJSON_AddNumberToObject(vectors, "size", cJSON_GetNumberValue(item(v, "dim")));
    cJSON_AddStringToObject(vectors, "distance", qdrant_distance(cJSON_GetStringValue(item(v, "metric"))));
    const cJSON *quant = item(v, "quantization");
    const char *originals = cJSON_GetStringValue(item(quant, "originals"));
    cJSON_AddBoolToObject(vectors, "on_disk", originals && strcmp(originals, "disk") == 0);
    cJSON_AddNumberToObject(params, "shard_number", cJSON_GetNumberValue(item(v, "shards")));
    cJSON_AddNumberToObject(params, "replication_factor", 1);
    cJSON_AddNumberToObject(params, "write_consistency_factor", 1);
    cJSON_AddBoolToObject(params, "on_disk_payload", 0);
    cJSON *hnsw = cJSON_AddObjectToObject(config, "hnsw_config");
    const cJSON *m = item(index, "m"), *efc = item(index, "ef_construction");
    cJSON_AddNumberToObject(hnsw, "m", graph && m ? m->valuedouble : 0);
    cJSON_AddNumberToObject(hnsw, "ef_construct", efc ? efc->valuedouble : 100);
    cJSON_AddNumberToObject(hnsw, "full_scan_threshold", 10000);
    cJSON_AddNumberToObject(hnsw, "max_indexing_threads", 0);
    cJSON_AddBoolToObject(hnsw, "on_disk", 0);
    cJSON *opt = cJSON_AddObjectToObject(config, "optimizer_config");
    cJSON_AddNumberToObject(opt, "deleted_threshold", 0.2);
    cJSON_AddNumberToObject(opt, "vacuum_min_vector_number", 1000);
    cJSON_AddNumberToObject(opt, "default_segment_number", 0);
    cJSON_AddNullToObject(opt, "max_segment_size");
    cJSON_AddNullToObject(opt, "memmap_threshold");
    cJSON_AddNumberToObject(opt, "indexing_threshold", 0);
    cJSON_AddNumberToObject(opt, "flush_interval_sec", 5);
    cJSON_AddNullToObject(opt, "max_optimization_threads");
    cJSON *wal = cJSON_AddObjectToObject(config, "wal_config");
    cJSON_AddNumberToObject(wal, "wal_capacity_mb", 32);
    cJSON_AddNumberToObject(wal, "wal_segments_ahead", 0);
    const char *qtype = cJSON_GetStringValue(item(quant, "type"));
    if (qtype && strcmp(qtype, "sq8") == 0) {
        cJSON *s = cJSON_AddObjectToObject(cJSON_AddObjectToObject(config, "quantization_config"), "scalar");
        cJSON_AddStringToObject(s, "type", "int8");
        cJSON_AddBoolToObject(s, "always_ram", 1);
    } else {
        cJSON_AddNullToObject(config, "quantization_config");
    }
    cJSON *schema = cJSON_AddObjectToObject(o, "payload_schema");
    const cJSON *pi;
    cJSON_ArrayForEach(pi, item(v, "payload_indexes"))
    {
        cJSON *f = cJSON_AddObjectToObject(schema, pi->string);
        const char *t = cJSON_GetStringValue(pi);
        bool tenant = t && strcmp(t, "tenant") == 0;
        cJSON_AddStringToObject(f, "data_type", !t || tenant || strcmp(t, "keyword") == 0 ? "keyword"
                                                : strcmp(t, "datetime") == 0             ? "datetime"
                                                                                          : "float");
        if (tenant) { /* Qdrant shows an index's parameters beside its type */
            cJSON *tparams = cJSON_AddObjectToObject(f, "params");
            cJSON_AddStringToObject(tparams, "type", "keyword");
            cJSON_AddBoolToObject(tparams, "is_tenant", 1);
        }
        cJSON_AddNumberToObject(f, "points", points);
    }
    return o;
}

int vd_qd_collection_info(vd_call *call)
{
    int rc = vd_h_collection_info(call);
    if (rc)
        return rc;
    cJSON *q = qdrant_info(call->result);
    cJSON_Delete(call->result);
    call->result = q;
    return q ? 0 : vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
}

/* PATCH /collections/{c}: vectord has no optimizer, WAL or replication
 * settings per collection to change, so those are accepted as they come; a
 * change to the graph's m / ef_construct or to the vectors would mean
 * rebuilding the collection, and is refused saying so. */
int vd_qd_collection_update(vd_call *call)
{
    static const char *const known[] = {"optimizers_config", "params", "hnsw_config", "vectors", "quantization_config",
                                        "sparse_vectors", "strict_mode_config", "metadata", NULL};
    int rc = vd_call_require_body(call, "{\"optimizers_config\": {…}}");
    if (rc || (rc = vd_qd_known_fields(call, call->body, known, "a collection update")))
        return rc;
    static const char *const rebuilds[] = {"hnsw_config", "vectors", "quantization_config", "sparse_vectors"};
    for (size_t i = 0; i < sizeof rebuilds / sizeof *rebuilds; i++) {
        const cJSON *f = cJSON_GetObjectItem(call->body, rebuilds[i]);
        if (f && !cJSON_IsNull(f) && !(cJSON_IsObject(f) && !f->child))
            return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                           "changing %s is not supported: it would rebuild the collection (create a new one "
                           "and write the points again); search breadth is set per search (params.hnsw_ef) "
                           "or with vectord's PATCH /collections/{name} on the native port",
                           rebuilds[i]);
    }
    vd_collection *c;
    if ((rc = vd_call_collection(call, &c)))
        return rc;
    vd_collection_unref(c);
    call->result = cJSON_CreateTrue();
    return 0;
}

int vd_qd_collection_delete(vd_call *call)
{
    call->finish = true_result;
    return vd_h_collection_delete(call);
}

/* ---- payload indexes ---------------------------------------------------- */

int vd_qd_index_create(vd_call *call)
{
    int rc = vd_call_require_body(call, "{\"field_name\": \"userId\", \"field_schema\": \"keyword\"}");
    if (rc)
        return rc;
    const cJSON *name = cJSON_GetObjectItem(call->body, "field_name"), *schema = cJSON_GetObjectItem(call->body, "field_schema");
    bool is_tenant = false;
    if (cJSON_IsObject(schema)) { /* {"type": "keyword", …params}: is_tenant is the one vectord reads */
        is_tenant = cJSON_IsTrue(cJSON_GetObjectItem(schema, "is_tenant"));
        schema = cJSON_GetObjectItem(schema, "type");
    }
    if (!cJSON_IsString(name) || !*name->valuestring || !cJSON_IsString(schema))
        return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                       "give \"field_name\" and \"field_schema\" (keyword, integer, float, bool, datetime or uuid)");
    const char *t = schema->valuestring, *type = NULL;
    if (strcmp(t, "keyword") == 0 || strcmp(t, "uuid") == 0 || strcmp(t, "bool") == 0)
        type = "keyword"; /* a keyword index holds strings, integers and booleans */
    if (type && is_tenant)
        type = "tenant"; /* the keyword index that keeps each value's points together */
    else if (strcmp(t, "integer") == 0 || strcmp(t, "float") == 0)
        type = "numeric";
    else if (strcmp(t, "datetime") == 0)
        type = "datetime";
    if (!type)
        return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                       "field_schema '%.32s' is not supported: vectord indexes keyword, integer, float, bool, "
                       "datetime and uuid fields (text and geo are not supported; text matching and geo "
                       "filters are refused too)", t);
    vd_collection *c;
    if ((rc = vd_call_collection(call, &c)))
        return rc;
    /* Qdrant's create is idempotent: the same index again is a success. */
    vd_pindex_spec specs[VD_PINDEX_MAX];
    size_t n = vd_collection_pindexes(c, specs, VD_PINDEX_MAX);
    bool same = false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(specs[i].field, name->valuestring) == 0)
            same = strcmp(vd_pindex_type_name(specs[i].type), type) == 0;
    vd_collection_unref(c);
    if (same)
        return vd_qd_update_result(call);
    cJSON *native = cJSON_CreateObject();
    cJSON_AddStringToObject(native, "field", name->valuestring);
    cJSON_AddStringToObject(native, "type", type);
    cJSON_Delete(call->body);
    call->body = native;
    call->finish = vd_qd_update_result;
    return vd_h_pindex_create(call);
}

/* Qdrant's delete of a payload index; like its create, idempotent: no index
 * on the field is a success. */
int vd_qd_index_delete(vd_call *call)
{
    vd_collection *c;
    int rc = vd_call_collection(call, &c);
    if (rc)
        return rc;
    bool has = vd_collection_has_pindex(c, call->point_id);
    vd_collection_unref(c);
    if (!has)
        return vd_qd_update_result(call);
    call->finish = vd_qd_update_result;
    return vd_h_pindex_delete(call);
}

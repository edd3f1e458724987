/* qdrant_payload.c — see qdrant.h. Changing stored points: set, overwrite,
 * delete and clear payload, and update vectors. Each is vectord's own
 * payload edit or vector update (POST …/points/payload, PUT …/points/vectors:
 * one logged write, applied in log order) under Qdrant's request shape. */
#include <stdio.h>
#include <string.h>

#include "server/handlers.h"
#include "server/qdrant.h"

static const char *const selector_fields[] = {"points", "filter", "shard_key", NULL};

/* Checks body's members against selector_fields plus extra (NULL or one
 * name), then builds the native body with the selector. */
static int begin(vd_call *call, const char *extra, const char *what, cJSON **out)
{
    const char *known[8];
    size_t n = 0;
    for (; selector_fields[n]; n++)
        known[n] = selector_fields[n];
    if (extra)
        known[n++] = extra;
    if (extra && strcmp(extra, "payload") == 0)
        known[n++] = "key";
    known[n] = NULL;
    int rc = vd_qd_known_fields(call, call->body, known, what);
    *out = cJSON_CreateObject();
    return rc ? rc : vd_qd_selector(call, *out, true);
}

/* {"payload": {…}, "points"|"filter", "key"?} as {"set"|"replace": {…}, "ids"|"filter", "key"?}. */
static int payload_body(vd_call *call, const char *op, cJSON **out)
{
    int rc = begin(call, "payload", op[0] == 's' ? "a set_payload" : "an overwrite_payload", out);
    if (rc)
        return rc;
    const cJSON *payload = cJSON_GetObjectItem(call->body, "payload"), *key = cJSON_GetObjectItem(call->body, "key");
    if (!cJSON_IsObject(payload))
        return vd_fail(&call->em, VD_E_INVALID_REQUEST, "payload must be a JSON object");
    cJSON_AddItemToObject(*out, op, cJSON_Duplicate(payload, 1));
    if (key && !cJSON_IsNull(key)) {
        if (cJSON_IsString(key) && strpbrk(key->valuestring, "[]"))
            return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                           "key: array paths (\"a[0].b\", \"a[]\") are not supported; give an object path such as \"a.b\"");
        cJSON_AddItemToObject(*out, "key", cJSON_Duplicate(key, 1));
    }
    return 0;
}

static int set_body(vd_call *call, cJSON **out) { return payload_body(call, "set", out); }
static int overwrite_body(vd_call *call, cJSON **out) { return payload_body(call, "replace", out); }

/* {"keys": [...], "points"|"filter"} as {"unset": [...], "ids"|"filter"}. */
static int delete_keys_body(vd_call *call, cJSON **out)
{
    int rc = begin(call, "keys", "a delete_payload", out);
    if (rc)
        return rc;
    const cJSON *keys = cJSON_GetObjectItem(call->body, "keys");
    if (!cJSON_IsArray(keys))
        return vd_fail(&call->em, VD_E_INVALID_REQUEST, "keys must be an array of payload keys");
    cJSON_AddItemToObject(*out, "unset", cJSON_Duplicate(keys, 1));
    return 0;
}

static int clear_body(vd_call *call, cJSON **out)
{
    int rc = begin(call, NULL, "a clear_payload", out);
    if (!rc)
        cJSON_AddTrueToObject(*out, "clear");
    return rc;
}

int vd_qd_payload_set(vd_call *call)
{
    return vd_qd_over_native(call, "{\"payload\":{…},\"points\":[…]}", set_body, vd_h_points_payload,
                             vd_qd_update_result);
}

int vd_qd_payload_overwrite(vd_call *call)
{
    return vd_qd_over_native(call, "{\"payload\":{…},\"points\":[…]}", overwrite_body, vd_h_points_payload,
                             vd_qd_update_result);
}

int vd_qd_payload_delete(vd_call *call)
{
    return vd_qd_over_native(call, "{\"keys\":[…],\"points\":[…]}", delete_keys_body, vd_h_points_payload,
                             vd_qd_update_result);
}

int vd_qd_payload_clear(vd_call *call)
{
    return vd_qd_over_native(call, "{\"points\":[…]} or {\"filter\":{…}}", clear_body, vd_h_points_payload,
                             vd_qd_update_result);
}

/* {"points": [{"id", "vector"}]} with Qdrant ids, each of which must exist. */
static int vectors_body(vd_call *call, cJSON **out)
{
    static const char *const known[] = {"points", "shard_key", NULL};
    int rc = vd_qd_known_fields(call, call->body, known, "an update_vectors");
    const cJSON *list = cJSON_GetObjectItem(call->body, "points");
    *out = cJSON_CreateObject();
    if (rc)
        return rc;
    if (!cJSON_IsArray(list))
        return vd_fail(&call->em, VD_E_INVALID_REQUEST, "points must be an array of {\"id\", \"vector\"}");
    /* The ids, checked and made canonical as a selector would. */
    cJSON *sel = cJSON_CreateObject(), *ids_only = cJSON_CreateArray();
    const cJSON *p;
    cJSON_ArrayForEach(p, list)
    {
        if (!cJSON_IsObject(p)) {
            cJSON_Delete(sel);
            cJSON_Delete(ids_only);
            return vd_fail(&call->em, VD_E_INVALID_REQUEST, "points must be an array of {\"id\", \"vector\"}");
        }
        const cJSON *idv = cJSON_GetObjectItem(p, "id");
        cJSON_AddItemToArray(ids_only, idv ? cJSON_Duplicate(idv, 1) : cJSON_CreateNull());
    }
    cJSON *body = call->body;
    cJSON *probe = cJSON_CreateObject();
    cJSON_AddItemToObject(probe, "points", ids_only);
    call->body = probe;
    rc = vd_qd_selector(call, sel, true);
    call->body = body;
    cJSON_Delete(probe);
    cJSON *points = cJSON_AddArrayToObject(*out, "points");
    const cJSON *id = cJSON_GetObjectItem(sel, "ids")->child;
    int i = 0;
    cJSON_ArrayForEach(p, list)
    {
        if (rc)
            break;
        static const char *const fields[] = {"id", "vector", NULL};
        char where[48];
        snprintf(where, sizeof where, "points[%d]", i++);
        if ((rc = vd_qd_known_fields(call, p, fields, where)))
            break;
        const cJSON *v = cJSON_GetObjectItem(p, "vector");
        if (cJSON_IsObject(v)) {
            rc = vd_fail(&call->em, VD_E_INVALID_VECTOR,
                         "%s: named and sparse vectors are not supported; give the vector as an array", where);
            break;
        }
        cJSON *np = cJSON_CreateObject();
        cJSON_AddItemToObject(np, "id", cJSON_Duplicate(id, 1));
        if (v)
            cJSON_AddItemToObject(np, "vector", cJSON_Duplicate(v, 1));
        cJSON_AddItemToArray(points, np);
        id = id->next;
    }
    cJSON_Delete(sel);
    return rc;
}

int vd_qd_vectors_update(vd_call *call)
{
    return vd_qd_over_native(call, "{\"points\":[{\"id\":…,\"vector\":[…]}]}", vectors_body, vd_h_points_vectors,
                             vd_qd_update_result);
}

int vd_qd_vectors_delete(vd_call *call)
{
    return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                   "a vectord point always has its one vector: delete the point instead (POST /collections/%s/points/delete)",
                   call->collection);
}

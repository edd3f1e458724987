/* handlers_points.c — upsert, get and delete of points. */
#include <errno.h>

#include "server/handlers.h"
#include "server/response.h"

/* ?wait=true|false is accepted on writes. Both answer after the write is
 * applied in memory (there is no WAL yet, see docs/API.md). */
static int parse_wait(vd_call *call)
{
    bool wait;
    return vd_call_bool_arg(call, "wait", true, &wait);
}

int vd_h_points_upsert(vd_call *call)
{
    vd_collection *c;
    vd_upsert_req req;
    int rc = parse_wait(call);
    if (rc || (rc = vd_call_collection(call, &c)))
        return rc;
    rc = vd_call_require_body(call, "{\"points\":[{\"id\":…,\"vector\":[…]}]}");
    if (!rc)
        rc = vd_req_upsert(call->body, vd_collection_config_of(c), &call->api->limits, &req,
                           &call->em);
    if (rc) {
        vd_collection_unref(c);
        return rc;
    }
    vd_upsert_counts counts = {0};
    rc = vd_collection_upsert(c, req.points, req.n, &counts);
    vd_upsert_req_free(&req);
    vd_collection_unref(c);
    if (rc)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY,
                       "out of memory after %zu of the points were applied",
                       counts.inserted + counts.updated);
    call->result = cJSON_CreateObject();
    cJSON_AddStringToObject(call->result, "status", "completed");
    cJSON_AddNumberToObject(call->result, "inserted", (double)counts.inserted);
    cJSON_AddNumberToObject(call->result, "updated", (double)counts.updated);
    cJSON_AddNumberToObject(call->result, "skipped_stale", (double)counts.stale);
    return 0;
}

int vd_h_point_get(vd_call *call)
{
    vd_point_id id;
    vd_collection *c;
    bool with_vector;
    int rc = vd_req_path_id(call->point_id, call->arg(call->conn, "id_type"), &id, &call->em);
    if (rc || (rc = vd_call_bool_arg(call, "with_vector", false, &with_vector)) ||
        (rc = vd_call_collection(call, &c)))
        return rc;
    vd_point_out p;
    rc = vd_collection_get(c, &id, with_vector, &p);
    vd_collection_unref(c);
    if (rc == VD_E_POINT_NOT_FOUND)
        return vd_fail(&call->em, rc, "point %s'%.256s' not found in collection '%s'",
                       id.kind == VD_ID_INT ? "(integer id) " : "", call->point_id,
                       call->collection);
    if (rc)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    call->result = vd_resp_point(&p, false, true);
    vd_point_out_free(&p);
    return call->result ? 0 : vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
}

int vd_h_points_delete(vd_call *call)
{
    vd_collection *c;
    vd_delete_req req;
    int rc = parse_wait(call);
    if (rc || (rc = vd_call_collection(call, &c)))
        return rc;
    rc = vd_call_require_body(call, "{\"ids\":[…]} or {\"filter\":{…}}");
    if (!rc)
        rc = vd_req_delete(call->body, &call->api->limits, &req, &call->em);
    if (rc) {
        vd_collection_unref(c);
        return rc;
    }
    size_t deleted = 0;
    rc = req.filter ? vd_collection_delete_filter(c, req.filter, &deleted)
                    : vd_collection_delete_ids(c, req.ids, req.n_ids, &deleted);
    vd_delete_req_free(&req);
    vd_collection_unref(c);
    if (rc)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory after deleting %zu points",
                       deleted);
    call->result = cJSON_CreateObject();
    cJSON_AddStringToObject(call->result, "status", "completed");
    cJSON_AddNumberToObject(call->result, "deleted", (double)deleted);
    return 0;
}

/* handlers_points.c — upsert, get and delete of points; vector updates and
 * payload edits of stored points. */
#include <errno.h>
#include <stdlib.h>

#include "server/handlers.h"
#include "server/response.h"

/* A logged write waiting for its WAL record: the state kept across the
 * connection's suspension. */
typedef struct pending_write {
    vd_collection *c;
    vd_mutation m;
    vd_commit *cm;
    vd_upsert_req upsert;
    vd_delete_req del;
    vd_payload_edit_req edit; /* its argument borrows from the call's body */
    char *filter_json;
    bool vectors_only; /* an upsert that updates vectors: answered as such */
} pending_write;

static void pending_free(pending_write *p)
{
    if (!p)
        return;
    vd_upsert_req_free(&p->upsert);
    vd_delete_req_free(&p->del);
    vd_delete_req_free(&p->edit.sel);
    free(p->filter_json);
    vd_collection_unref(p->c);
    free(p);
}

/* ?wait=true|false is accepted on writes; both answer once the write is
 * durable and applied (see docs/API.md). */
static int parse_wait(vd_call *call)
{
    bool wait;
    return vd_call_bool_arg(call, "wait", true, &wait);
}

/* Logs p->m and suspends the call until it is durable; resume completes it. */
static int write_resume(vd_call *call);

static int submit(vd_call *call, pending_write *p)
{
    const vd_collection_config *cfg = vd_collection_config_of(p->c);
    p->m.collection = cfg->name;
    p->m.incarnation = cfg->incarnation;
    int rc = vd_journal_submit(call->api->journal, p->c, &p->m, vd_call_wake, call, &p->cm, &call->em);
    if (rc) {
        pending_free(p);
        return rc;
    }
    call->pending = p;
    call->resume = write_resume;
    return VD_CALL_SUSPENDED;
}

/* Completes a logged write and renders its counts (on a request worker:
 * applying a batch to a graph is heavy). */
static int write_apply(vd_call *call);

/* The write is durable: its apply goes to the request workers, or runs here
 * when their queue is full (a logged write is always applied). */
static int write_resume(vd_call *call) { return vd_call_offload_always(call, write_apply); }

static int write_apply(vd_call *call)
{
    pending_write *p = call->pending;
    vd_mutation_outcome out = {0};
    vd_mutation_type type = p->m.type;
    bool vectors_only = p->vectors_only;
    int rc = vd_commit_complete(p->cm, &out, &call->em);
    pending_free(p);
    if (rc)
        return rc;
    call->result = cJSON_CreateObject();
    cJSON_AddStringToObject(call->result, "status", "completed");
    if (vectors_only) {
        cJSON_AddNumberToObject(call->result, "updated", (double)out.counts.updated);
        cJSON_AddNumberToObject(call->result, "not_found", (double)out.counts.missing);
    } else if (type == VD_MUT_EDIT_PAYLOAD) {
        cJSON_AddNumberToObject(call->result, "updated", (double)out.edited);
    } else if (type == VD_MUT_UPSERT) {
        cJSON_AddNumberToObject(call->result, "inserted", (double)out.counts.inserted);
        cJSON_AddNumberToObject(call->result, "updated", (double)out.counts.updated);
        cJSON_AddNumberToObject(call->result, "skipped_stale", (double)out.counts.stale);
    } else {
        cJSON_AddNumberToObject(call->result, "deleted", (double)out.deleted);
    }
    return 0;
}

/* The common start of a logged write: ?wait, a body of the shape named,
 * the pending state and the collection. */
static int begin_write(vd_call *call, const char *shape, pending_write **out)
{
    *out = NULL;
    int rc = parse_wait(call);
    if (rc || (rc = vd_call_require_body(call, shape)))
        return rc;
    pending_write *p = calloc(1, sizeof *p);
    if (!p)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    if ((rc = vd_call_collection(call, &p->c))) {
        pending_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* An upsert, or (vectors_only) a vector update of stored points. */
static int points_write(vd_call *call, bool vectors_only)
{
    pending_write *p;
    int rc = begin_write(call, "{\"points\":[{\"id\":…,\"vector\":[…]}]}", &p);
    if (rc)
        return rc;
    const vd_collection_config *cfg = vd_collection_config_of(p->c);
    rc = vectors_only ? vd_req_update_vectors(call->body, cfg, &call->api->limits, call->vectors, &p->upsert, &call->em)
                      : vd_req_upsert(call->body, cfg, &call->api->limits, call->vectors, &p->upsert, &call->em);
    if (rc) {
        pending_free(p);
        return rc;
    }
    p->vectors_only = vectors_only;
    p->m = (vd_mutation){
        .type = VD_MUT_UPSERT,
        .points = p->upsert.points,
        .n_points = p->upsert.n,
        .dim = cfg->dim,
    };
    return submit(call, p);
}

int vd_h_points_upsert(vd_call *call) { return points_write(call, false); }
int vd_h_points_vectors(vd_call *call) { return points_write(call, true); }

/* The filter of a write as the JSON text its record logs. */
static int log_filter(vd_call *call, pending_write *p)
{
    p->filter_json = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(call->body, "filter"));
    return p->filter_json ? 0 : vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
}

int vd_h_points_payload(vd_call *call)
{
    pending_write *p;
    int rc = begin_write(call, "{\"ids\":[…] or \"filter\":{…}, \"set\":{…}}", &p);
    if (rc)
        return rc;
    if ((rc = vd_req_payload_edit(call->body, &call->api->limits, &p->edit, &call->em)) ||
        (p->edit.sel.filter && (rc = log_filter(call, p)))) {
        pending_free(p);
        return rc;
    }
    p->m = (vd_mutation){.type = VD_MUT_EDIT_PAYLOAD, .edit = &p->edit.edit, .ids = p->edit.sel.ids,
                         .n_ids = p->edit.sel.n_ids, .filter = p->edit.sel.filter,
                         .filter_json = p->filter_json};
    return submit(call, p);
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
    pending_write *p;
    int rc = begin_write(call, "{\"ids\":[…]} or {\"filter\":{…}}", &p);
    if (rc)
        return rc;
    if ((rc = vd_req_delete(call->body, &call->api->limits, &p->del, &call->em))) {
        pending_free(p);
        return rc;
    }
    if (p->del.filter) {
        if ((rc = log_filter(call, p))) {
            pending_free(p);
            return rc;
        }
        p->m = (vd_mutation){.type = VD_MUT_DELETE_FILTER, .filter = p->del.filter,
                             .filter_json = p->filter_json};
    } else {
        p->m = (vd_mutation){.type = VD_MUT_DELETE_IDS, .ids = p->del.ids, .n_ids = p->del.n_ids};
    }
    return submit(call, p);
}

/* handlers_collections.c — collection lifecycle and payload indexes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/handlers.h"
#include "server/response.h"

int vd_h_collections_list(vd_call *call)
{
    vd_collection **colls;
    size_t n;
    if (vd_database_list(call->api->db, &colls, &n))
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        const vd_collection_config *cfg = vd_collection_config_of(colls[i]);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", cfg->name);
        cJSON_AddNumberToObject(o, "dim", cfg->dim);
        cJSON_AddStringToObject(o, "metric", vd_metric_name(cfg->metric));
        cJSON_AddItemToArray(arr, o);
        vd_collection_unref(colls[i]);
    }
    free(colls);
    call->result = cJSON_CreateObject();
    cJSON_AddItemToObject(call->result, "collections", arr);
    return 0;
}

int vd_h_collection_create(vd_call *call)
{
    vd_collection_config cfg;
    int rc = vd_call_require_body(call, "a JSON object such as {\"dim\":1536,\"metric\":\"cosine\"}");
    if (!rc)
        rc = vd_req_collection(call->body, call->collection, &call->api->limits, &cfg, &call->em);
    if (!rc)
        rc = vd_journal_ddl(call->api->journal,
                            &(vd_mutation){.type = VD_MUT_CREATE_COLLECTION,
                                           .collection = cfg.name,
                                           .cfg = &cfg},
                            &call->em);
    if (rc)
        return rc;
    vd_collection *c;
    if ((rc = vd_call_collection(call, &c)))
        return rc;
    call->result = vd_resp_collection(c);
    vd_collection_unref(c);
    return 0;
}

int vd_h_collection_info(vd_call *call)
{
    vd_collection *c;
    int rc = vd_call_collection(call, &c);
    if (rc)
        return rc;
    call->result = vd_resp_collection(c);
    vd_collection_unref(c);
    return call->result ? 0 : vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
}

int vd_h_collection_delete(vd_call *call)
{
    if (!vd_collection_name_valid(call->collection))
        return vd_fail(&call->em, VD_E_COLLECTION_NOT_FOUND, "collection '%.64s' does not exist",
                       call->collection);
    int rc = vd_journal_ddl(call->api->journal,
                            &(vd_mutation){.type = VD_MUT_DROP_COLLECTION,
                                           .collection = call->collection},
                            &call->em);
    if (rc)
        return rc;
    call->result = cJSON_CreateObject();
    cJSON_AddBoolToObject(call->result, "deleted", 1);
    return 0;
}

int vd_h_collection_update(vd_call *call)
{
    vd_search_defaults d;
    unsigned mask;
    vd_collection *c;
    int rc = vd_call_require_body(call, "a JSON object such as {\"index\":{\"ef_search\":128}}");
    if (rc || (rc = vd_call_collection(call, &c)))
        return rc;
    rc = vd_req_collection_update(call->body, vd_collection_config_of(c), &d, &mask, &call->em);
    if (!rc)
        rc = vd_journal_ddl(call->api->journal,
                            &(vd_mutation){.type = VD_MUT_SET_DEFAULTS,
                                           .collection = vd_collection_config_of(c)->name,
                                           .defaults = &d,
                                           .defaults_mask = mask},
                            &call->em);
    if (!rc && !(call->result = vd_resp_collection(c)))
        rc = vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    vd_collection_unref(c);
    return rc;
}

int vd_h_pindex_create(vd_call *call)
{
    const char *field;
    vd_pindex_type type;
    vd_collection *c;
    int rc = vd_call_require_body(call, "a JSON object such as {\"field\":\"userId\",\"type\":\"keyword\"}");
    if (!rc)
        rc = vd_req_pindex(call->body, &field, &type, &call->em);
    if (rc || (rc = vd_call_collection(call, &c)))
        return rc;
    rc = vd_journal_ddl(call->api->journal,
                        &(vd_mutation){.type = VD_MUT_ADD_PINDEX,
                                       .collection = vd_collection_config_of(c)->name,
                                       .field = field,
                                       .pindex_type = type},
                        &call->em);
    if (rc == -ENOMEM)
        rc = vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory while building the index");
    if (!rc)
        call->result = vd_resp_collection(c);
    vd_collection_unref(c);
    return rc;
}

/* DELETE …/payload_indexes/{field}: the field is the rest of the path. */
int vd_h_pindex_delete(vd_call *call)
{
    vd_collection *c;
    int rc = vd_call_collection(call, &c);
    if (rc)
        return rc;
    rc = vd_journal_ddl(call->api->journal,
                        &(vd_mutation){.type = VD_MUT_DROP_PINDEX,
                                       .collection = vd_collection_config_of(c)->name,
                                       .field = call->point_id},
                        &call->em);
    if (rc == -ENOMEM)
        rc = vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    if (!rc)
        call->result = vd_resp_collection(c);
    vd_collection_unref(c);
    return rc;
}

static cJSON *checkpoint_json(const vd_checkpoint_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "collections", (double)r->collections);
    cJSON_AddNumberToObject(o, "shards", (double)r->shards);
    cJSON_AddNumberToObject(o, "bytes", (double)r->bytes);
    cJSON_AddNumberToObject(o, "wal_segments_removed", (double)r->segments_removed);
    cJSON_AddNumberToObject(o, "covered_lsn", (double)r->covered_lsn);
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    return o;
}

/* Both answer once the snapshot files are durable. */
static int checkpoint(vd_call *call, const char *only)
{
    vd_checkpoint_result res;
    int rc = vd_store_checkpoint(call->api->store, only, only ? "request_collection" : "request",
                                 &res, &call->em);
    if (rc == VD_E_COLLECTION_NOT_FOUND)
        return rc;
    if (rc) {
        /* The store's message names the file and the step; copied first, as
         * vd_fail writes the buffer it would read. */
        char msg[sizeof call->em.text];
        memcpy(msg, call->em.text, sizeof msg);
        return vd_fail(&call->em, VD_E_SNAPSHOT_FAILED, "%s", msg);
    }
    call->result = checkpoint_json(&res);
    return 0;
}

int vd_h_collection_snapshot(vd_call *call)
{
    if (!vd_collection_name_valid(call->collection))
        return vd_fail(&call->em, VD_E_COLLECTION_NOT_FOUND, "collection '%.64s' does not exist",
                       call->collection);
    return checkpoint(call, call->collection);
}

int vd_h_checkpoint(vd_call *call) { return checkpoint(call, NULL); }

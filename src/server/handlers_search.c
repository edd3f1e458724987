/* handlers_search.c — k-NN search, single and batched. */
#include <stdatomic.h>
#include <stdlib.h>

#include "server/handlers.h"
#include "server/response.h"

/* Runs one parsed search and renders its hits as a JSON array. */
static int run_search(vd_call *call, vd_collection *c, const vd_search_parsed *s, cJSON **out)
{
    vd_point_out *hits;
    size_t n;
    _Atomic uint64_t distances = 0;
    vd_search_req req = s->req;
    req.n_distances = &distances;
    int rc = vd_collection_search(c, &req, &hits, &n);
    if (!rc)
        vd_metrics_observe_search(call->api->metrics, atomic_load(&distances));
    if (rc)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory during search");
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *p = arr ? vd_resp_point(&hits[i], true, s->req.with_payload) : NULL;
        if (p)
            cJSON_AddItemToArray(arr, p);
        else
            rc = VD_E_OUT_OF_MEMORY;
        vd_point_out_free(&hits[i]);
    }
    free(hits);
    if (rc || !arr) {
        cJSON_Delete(arr);
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory rendering results");
    }
    *out = arr;
    return 0;
}

int vd_h_search(vd_call *call)
{
    vd_collection *c;
    vd_search_parsed s;
    int rc = vd_call_require_body(call, "a JSON object with \"vector\"");
    if (rc || (rc = vd_call_collection(call, &c)))
        return rc;
    rc = vd_req_search(call->body, "", vd_collection_config_of(c), &call->api->limits, &s,
                       &call->em);
    if (!rc) {
        rc = run_search(call, c, &s, &call->result);
        vd_search_parsed_free(&s);
    }
    vd_collection_unref(c);
    return rc;
}

int vd_h_search_batch(vd_call *call)
{
    vd_collection *c;
    vd_search_parsed *s;
    size_t n;
    int rc = vd_call_require_body(call, "a JSON object with \"vector\"");
    if (rc || (rc = vd_call_collection(call, &c)))
        return rc;
    rc = vd_req_search_batch(call->body, vd_collection_config_of(c), &call->api->limits, &s, &n,
                             &call->em);
    if (rc) {
        vd_collection_unref(c);
        return rc;
    }
    cJSON *all = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *one = NULL;
        if (!rc && (rc = run_search(call, c, &s[i], &one)) == 0)
            cJSON_AddItemToArray(all, one);
        vd_search_parsed_free(&s[i]);
    }
    free(s);
    vd_collection_unref(c);
    if (rc) {
        cJSON_Delete(all);
        return rc;
    }
    call->result = all;
    return 0;
}

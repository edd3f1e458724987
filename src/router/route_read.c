/*
 * route_read.c — reads through the router (routing.h): any replica,
 * a tenant's partition, the partition that holds a point, and counts, points
 * and pages gathered from every partition.
 */
#include "router/routing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/answers.h"
#include "vectord/error.h"

void vd_rt_op_any(vd_router *r, vd_rt_call *call, const vd_generation *g)
{
    vd_up_req q = {0};
    vd_rt_ask_partition(&r->asked, call, g, 0, call->method, call->body, call->body_len, &q);
    uint32_t p0 = 0;
    if (!vd_rt_unavailable(call, &p0, &q, 1))
        vd_rt_pass(call, &q);
    free(q.answer);
}

void vd_rt_op_tenant(vd_router *r, vd_rt_call *call, const vd_generation *g, uint32_t p)
{
    atomic_fetch_add(&r->tenant_routed, 1);
    vd_up_req q = {0};
    vd_rt_ask_partition(&r->asked, call, g, p, call->method, call->body, call->body_len, &q);
    if (!vd_rt_unavailable(call, &p, &q, 1))
        vd_rt_pass(call, &q);
    free(q.answer);
}

void vd_rt_op_first_found(vd_router *r, vd_rt_call *call, const vd_generation *g)
{
    uint32_t P = g->n_partitions;
    uint32_t *all = calloc(P, sizeof *all);
    const char **bodies = calloc(P, sizeof *bodies);
    size_t *lens = calloc(P, sizeof *lens);
    vd_up_req *q = calloc(P, sizeof *q);
    if (!all || !bodies || !lens || !q) {
        vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    vd_rt_all_partitions(g, all);
    vd_rt_ask_partitions(&r->asked, call, g, all, P, call->method, call->path, call->query, bodies, lens, q);
    atomic_fetch_add(&r->asked.fanouts, 1);
    for (uint32_t p = 0; p < P; p++)
        if (q[p].status == 200) {
            vd_rt_pass(call, &q[p]);
            goto done;
        }
    for (uint32_t p = 0; p < P; p++)
        if (q[p].status >= 300 && q[p].status != 404 && !vd_rt_retryable(q[p].status)) {
            vd_rt_pass(call, &q[p]);
            goto done;
        }
    if (!vd_rt_unavailable(call, all, q, P))
        vd_rt_pass(call, &q[0]); /* not found anywhere */
done:
    if (q)
        vd_up_reqs_free(q, P);
    free(q);
    free(all);
    free(bodies);
    free(lens);
}

/* Reorders the points of list as their ids come in ids (as one vectord answers). */
static void in_request_order(cJSON *list, const cJSON *ids)
{
    size_t n = (size_t)cJSON_GetArraySize(list);
    cJSON **items = malloc((n ? n : 1) * sizeof *items);
    vd_rt_id_entry *by_id = malloc((n ? n : 1) * sizeof *by_id);
    cJSON *sorted = cJSON_CreateArray();
    if (!items || !by_id || !sorted)
        goto done; /* out of memory: the partitions' order stands */
    size_t k = 0;
    for (cJSON *pt = list->child; pt; pt = pt->next, k++) {
        items[k] = pt;
        vd_rt_id_text(cJSON_GetObjectItemCaseSensitive(pt, "id"), by_id[k].text, sizeof by_id[k].text);
        by_id[k].value = (int)k;
    }
    vd_rt_id_sort(by_id, n);
    const cJSON *want;
    cJSON_ArrayForEach(want, ids)
    {
        vd_rt_id_entry *e = vd_rt_id_lookup(by_id, n, want);
        if (e && items[e->value]) { /* an id asked twice is answered once */
            cJSON_AddItemToArray(sorted, cJSON_DetachItemViaPointer(list, items[e->value]));
            items[e->value] = NULL;
        }
    }
    cJSON *rest;
    while ((rest = list->child)) /* answered in another spelling */
        cJSON_AddItemToArray(sorted, cJSON_DetachItemViaPointer(list, rest));
    while ((rest = sorted->child))
        cJSON_AddItemToArray(list, cJSON_DetachItemViaPointer(sorted, rest));
done:
    cJSON_Delete(sorted);
    free(items);
    free(by_id);
}

/* RETRIEVE, COUNT, SCROLL and INFO over every partition. */
void vd_rt_op_gather(vd_router *r, vd_rt_call *call, const vd_generation *g, vd_rt_op op)
{
    cJSON *body = NULL;
    if (op != VD_RT_INFO) {
        if (!(body = vd_rt_parse_body(call)))
            return;
        char t[VD_TENANT_TEXT_MAX];
        if (op != VD_RT_RETRIEVE &&
            vd_rt_filter_tenant(cJSON_GetObjectItemCaseSensitive(body, "filter"), r->tenant_field, t, sizeof t)) {
            cJSON_Delete(body);
            vd_rt_op_tenant(r, call, g, vd_rt_tenant_partition(t, g));
            return;
        }
    }
    size_t missing = 0;
    uint32_t P = g->n_partitions;
    vd_up_req *q = vd_rt_ask_all(&r->asked, call, g, call->body, call->body_len, false, &missing);
    cJSON **docs = calloc(P, sizeof *docs);
    cJSON **res = calloc(P, sizeof *res);
    if (!q || !docs || !res) {
        if (q && (!docs || !res))
            vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (uint32_t p = 0; p < P; p++) {
        if (!(docs[p] = vd_rt_parse_answer(call, &q[p])))
            goto done;
        res[p] = cJSON_GetObjectItemCaseSensitive(docs[p], "result");
    }
    static const char *const info_counts[] = {"points_count", "vectors_count", "indexed_vectors_count",
                                              NULL};
    static const char *const count[] = {"count", NULL};
    if (op == VD_RT_SCROLL) {
        const cJSON *ob = cJSON_GetObjectItemCaseSensitive(body, "order_by");
        const cJSON *dir = cJSON_GetObjectItemCaseSensitive(ob, "direction");
        size_t limit = (size_t)vd_rt_number_or(body, "limit", 10);
        cJSON *merged = ob ? vd_rt_merge_ordered(res, P, limit, cJSON_IsString(dir) && strcmp(dir->valuestring, "desc") == 0)
                           : vd_rt_merge_scroll(res, P, limit);
        if (!merged) {
            vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        cJSON_ReplaceItemInObjectCaseSensitive(docs[0], "result", merged);
    } else {
        for (uint32_t p = 1; p < P; p++) {
            if (op == VD_RT_RETRIEVE) {
                cJSON *pt;
                while ((pt = cJSON_IsArray(res[p]) ? res[p]->child : NULL))
                    cJSON_AddItemToArray(res[0], cJSON_DetachItemViaPointer(res[p], pt));
            } else {
                vd_rt_sum_fields(res[0], res[p], op == VD_RT_COUNT ? count : info_counts);
                /* Qdrant's info counts each payload index's points too */
                cJSON *schema = op == VD_RT_INFO ? cJSON_GetObjectItemCaseSensitive(res[0], "payload_schema")
                                                 : NULL;
                const cJSON *theirs = cJSON_GetObjectItemCaseSensitive(res[p], "payload_schema");
                static const char *const points[] = {"points", NULL};
                cJSON *field;
                cJSON_ArrayForEach(field, schema)
                vd_rt_sum_fields(field, cJSON_GetObjectItemCaseSensitive(theirs, field->string), points);
            }
        }
    }
    if (op == VD_RT_RETRIEVE && cJSON_IsArray(res[0]))
        in_request_order(res[0], cJSON_GetObjectItemCaseSensitive(body, "ids"));
    vd_rt_answer_json(call, docs[0]);
done:
    for (uint32_t p = 0; docs && p < P; p++)
        cJSON_Delete(docs[p]);
    if (q)
        vd_up_reqs_free(q, P);
    free(q);
    free(docs);
    free(res);
    cJSON_Delete(body);
}

void vd_rt_op_tenant_only(vd_router *r, vd_rt_call *call, const vd_generation *g)
{
    cJSON *body = vd_rt_parse_body(call);
    if (!body)
        return;
    char t[VD_TENANT_TEXT_MAX];
    bool found = vd_rt_filter_tenant(cJSON_GetObjectItemCaseSensitive(body, "filter"), r->tenant_field, t,
                                     sizeof t);
    cJSON_Delete(body);
    if (found)
        vd_rt_op_tenant(r, call, g, vd_rt_tenant_partition(t, g));
    else
        vd_rt_fail(call, VD_E_INVALID_REQUEST,
                   "through the router, a shadow comparison must name one tenant (a \"must\" condition "
                   "{\"key\": \"%s\", \"match\": {\"value\": …}})", r->tenant_field);
}

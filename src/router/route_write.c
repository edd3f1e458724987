/*
 * route_write.c — writes through the router (routing.h): upserts
 * split by tenant, each part to every replica of its partition; the rest to
 * every replica of every partition; Qdrant edits by id to the partitions that
 * hold those points. Answers: the first refusal, a 503 naming how many
 * replicas got the write, or the counts summed.
 */
#include "router/routing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/answers.h"
#include "vectord/error.h"

/* The points a write names (its "points" list), for a not_found count. */
static size_t points_named(const vd_rt_call *call)
{
    const char *at;
    size_t len, n = 0;
    if (call->body && vd_rt_json_member(call->body, call->body_len, "points", &at, &len)) {
        cJSON *points = cJSON_ParseWithLength(at, len);
        n = (size_t)cJSON_GetArraySize(points);
        cJSON_Delete(points);
    }
    return n;
}

/* Combines the write answers (one per replica, where[i] its partition):
 * the first refusal, or 503 when some replica gave no answer, or the first
 * answer with each partition's counts summed (native). A point lives in one
 * partition, so the others count it not found: not_found is then the points
 * named less those updated. */
static void combine_writes(vd_rt_call *call, vd_up_req *q, const uint32_t *where, size_t n)
{
    if (vd_rt_refused(call, q, n))
        return;
    size_t failed = 0;
    for (size_t i = 0; i < n; i++)
        failed += vd_rt_retryable(q[i].status);
    if (failed) {
        const vd_up_req *f = NULL;
        for (size_t i = 0; i < n && !f; i++)
            if (vd_rt_retryable(q[i].status))
                f = &q[i];
        char why[300];
        vd_rt_fail(call, VD_E_PARTITION_UNAVAILABLE,
                   "the write reached %zu of %zu replicas; %s gave no answer (%s). Send it again: "
                   "upserts, deletes and payload edits give the same result when repeated",
                   n - failed, n, f->url, vd_rt_why(f, why, sizeof why));
        return;
    }
    if (!n) {
        vd_rt_fail(call, VD_E_INTERNAL, "nothing to send");
        return;
    }
    cJSON *first = vd_rt_parse_answer(call, &q[0]);
    if (!first)
        return;
    if (!call->qdrant) {
        static const char *const counts[] = {"inserted", "updated", "skipped_stale", "deleted", NULL};
        cJSON *res = cJSON_GetObjectItemCaseSensitive(first, "result");
        for (size_t i = 1; i < n; i++) {
            if (where[i] == where[i - 1])
                continue; /* one replica per partition: the others did the same */
            cJSON *d = cJSON_ParseWithLength(q[i].answer, q[i].answer_len);
            vd_rt_sum_fields(res, cJSON_GetObjectItemCaseSensitive(d, "result"), counts);
            cJSON_Delete(d);
        }
        cJSON *nf = cJSON_GetObjectItemCaseSensitive(res, "not_found");
        cJSON *up = cJSON_GetObjectItemCaseSensitive(res, "updated");
        if (cJSON_IsNumber(nf) && cJSON_IsNumber(up))
            cJSON_SetNumberValue(nf, (double)points_named(call) - up->valuedouble);
    }
    vd_rt_answer_json(call, first);
    cJSON_Delete(first);
}

/* Sends bodies[p] to every replica of each partition p with send[p], and
 * answers the call with their answers combined. */
static void send_bodies(vd_router *r, vd_rt_call *call, const vd_generation *g, const bool *send,
                        char *const *bodies, const size_t *lens)
{
    vd_up_req *q = NULL;
    uint32_t *where = NULL;
    size_t n = vd_rt_ask_everyone(&r->asked, call, g, send, bodies, lens, &q, &where);
    combine_writes(call, q, where, n);
    vd_up_reqs_free(q, n);
    free(q);
    free(where);
}

void vd_rt_op_broadcast(vd_router *r, vd_rt_call *call, const vd_generation *g)
{
    uint32_t P = g->n_partitions;
    char **bodies = calloc(P, sizeof *bodies);
    size_t *lens = calloc(P, sizeof *lens);
    bool *send = calloc(P, sizeof *send);
    if (bodies && lens && send) {
        for (uint32_t p = 0; p < P; p++) {
            bodies[p] = (char *)call->body;
            lens[p] = call->body_len;
            send[p] = true;
        }
        send_bodies(r, call, g, send, bodies, lens);
    } else {
        vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
    }
    free(bodies);
    free(lens);
    free(send);
}

/* The text of body with "points": points (body is left as it was). */
static char *body_with_points(cJSON *body, cJSON *points)
{
    cJSON_AddItemReferenceToObject(body, "points", points);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_DeleteItemFromObjectCaseSensitive(body, "points"); /* the reference only */
    return text;
}

/* Sends body with each partition's points (parts[p], NULL = none) to every
 * replica of that partition, and answers the call with their answers. */
static void send_parts(vd_router *r, vd_rt_call *call, const vd_generation *g, cJSON *body, cJSON *const *parts)
{
    uint32_t P = g->n_partitions;
    char **bodies = calloc(P, sizeof *bodies);
    size_t *lens = calloc(P, sizeof *lens);
    bool *send = calloc(P, sizeof *send);
    bool ok = bodies && lens && send;
    for (uint32_t p = 0; ok && p < P; p++) {
        if (!(send[p] = parts[p] != NULL))
            continue;
        ok = (bodies[p] = body_with_points(body, parts[p])) != NULL;
        lens[p] = ok ? strlen(bodies[p]) : 0;
    }
    if (ok)
        send_bodies(r, call, g, send, bodies, lens);
    else
        vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
    for (uint32_t p = 0; bodies && p < P; p++)
        free(bodies[p]);
    free(bodies);
    free(lens);
    free(send);
}

/* Qdrant's columnar {"batch": {"ids", "vectors", "payloads"}} as the
 * "points" list it means (put in body in its place); NULL when its arrays
 * are missing or of different lengths (the caller refuses it). */
static cJSON *batch_as_points(cJSON *body)
{
    cJSON *batch = cJSON_GetObjectItemCaseSensitive(body, "batch");
    cJSON *ids = cJSON_GetObjectItemCaseSensitive(batch, "ids");
    cJSON *vectors = cJSON_GetObjectItemCaseSensitive(batch, "vectors");
    cJSON *payloads = cJSON_GetObjectItemCaseSensitive(batch, "payloads");
    int n = cJSON_GetArraySize(ids);
    if (!cJSON_IsArray(ids) || !cJSON_IsArray(vectors) || cJSON_GetArraySize(vectors) != n ||
        (payloads && !cJSON_IsNull(payloads) && (!cJSON_IsArray(payloads) || cJSON_GetArraySize(payloads) != n)))
        return NULL;
    cJSON *points = cJSON_CreateArray();
    cJSON *id = ids->child, *vec = vectors->child, *pl = cJSON_IsArray(payloads) ? payloads->child : NULL;
    for (; points && id && vec; id = id->next, vec = vec->next, pl = pl ? pl->next : NULL) {
        cJSON *pt = cJSON_CreateObject();
        if (!pt) {
            cJSON_Delete(points);
            return NULL;
        }
        cJSON_AddItemToObject(pt, "id", cJSON_Duplicate(id, true));
        cJSON_AddItemToObject(pt, "vector", cJSON_Duplicate(vec, true));
        if (pl && !cJSON_IsNull(pl))
            cJSON_AddItemToObject(pt, "payload", cJSON_Duplicate(pl, true));
        cJSON_AddItemToArray(points, pt);
    }
    if (!points)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(body, "batch");
    cJSON_AddItemToObject(body, "points", points);
    return points;
}

void vd_rt_op_upsert(vd_router *r, vd_rt_call *call, const vd_generation *g)
{
    cJSON *body = vd_rt_parse_body(call);
    if (!body)
        return;
    uint32_t P = g->n_partitions;
    cJSON *points = cJSON_GetObjectItemCaseSensitive(body, "points");
    cJSON **parts = calloc(P, sizeof *parts);
    if (!parts) {
        vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if (!points && call->qdrant && cJSON_GetObjectItemCaseSensitive(body, "batch"))
        points = batch_as_points(body);
    if (!cJSON_IsArray(points)) {
        vd_rt_fail(call, VD_E_INVALID_REQUEST,
                   "the router places each point by its payload's '%s': send \"points\" as a list "
                   "(or Qdrant's \"batch\" with ids, vectors and payloads of one length)", r->tenant_field);
        goto done;
    }
    int i = 0;
    size_t n_points = (size_t)cJSON_GetArraySize(points);
    while (points->child) {
        cJSON *pt = cJSON_DetachItemViaPointer(points, points->child);
        char t[VD_TENANT_TEXT_MAX];
        bool null = false;
        if (!vd_rt_payload_tenant(cJSON_GetObjectItemCaseSensitive(pt, "payload"), r->tenant_field, t,
                                  sizeof t, &null)) {
            cJSON_Delete(pt);
            vd_rt_fail(call, VD_E_INVALID_REQUEST,
                       "points[%d].payload.%s must be a string, an integer or a boolean: the router "
                       "places each point in its tenant's partition", i, r->tenant_field);
            goto done;
        }
        uint32_t p = null ? 0 : vd_rt_tenant_partition(t, g);
        if (!parts[p] && !(parts[p] = cJSON_CreateArray())) {
            cJSON_Delete(pt);
            vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        cJSON_AddItemToArray(parts[p], pt);
        i++;
    }
    if (!n_points) { /* the replicas say what they say of an empty batch */
        vd_rt_op_any(r, call, g);
        goto done;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(body, "points");
    send_parts(r, call, g, body, parts);
done:
    for (uint32_t p = 0; parts && p < P; p++)
        cJSON_Delete(parts[p]);
    free(parts);
    cJSON_Delete(body);
}

/* Qdrant edits that name points: each partition gets its own. */
void vd_rt_op_by_ids(vd_router *r, vd_rt_call *call, const vd_generation *g)
{
    cJSON *body = vd_rt_parse_body(call);
    if (!body)
        return;
    cJSON *points = cJSON_GetObjectItemCaseSensitive(body, "points");
    if (!cJSON_IsArray(points)) { /* by filter: every partition edits its own matches */
        cJSON_Delete(body);
        vd_rt_op_broadcast(r, call, g);
        return;
    }
    uint32_t P = g->n_partitions;
    int n_ids = cJSON_GetArraySize(points);
    cJSON *ask = cJSON_CreateObject(), *ids = cJSON_AddArrayToObject(ask, "ids");
    const cJSON *pt;
    cJSON_ArrayForEach(pt, points)
    {
        const cJSON *id = cJSON_IsObject(pt) ? cJSON_GetObjectItemCaseSensitive(pt, "id") : pt;
        cJSON_AddItemToArray(ids, cJSON_Duplicate(id, false));
    }
    cJSON_AddFalseToObject(ask, "with_payload");
    cJSON_AddFalseToObject(ask, "with_vector");
    char *ask_text = cJSON_PrintUnformatted(ask);
    cJSON_Delete(ask);
    char path[300], collection[200];
    vd_rt_collection_of(call->path, collection, sizeof collection);
    snprintf(path, sizeof path, "/collections/%s/points", collection);
    uint32_t *all = calloc(P, sizeof *all);
    const char **bodies = calloc(P, sizeof *bodies);
    size_t *lens = calloc(P, sizeof *lens);
    vd_up_req *found = calloc(P, sizeof *found);
    int *home = calloc((size_t)(n_ids ? n_ids : 1), sizeof *home);
    cJSON **parts = calloc(P, sizeof *parts);
    if (!ask_text || !all || !bodies || !lens || !found || !home || !parts) {
        vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    vd_rt_all_partitions(g, all);
    for (uint32_t p = 0; p < P; p++) {
        bodies[p] = ask_text;
        lens[p] = strlen(ask_text);
    }
    vd_rt_ask_partitions(&r->asked, call, g, all, P, "POST", path, "", bodies, lens, found);
    if (vd_rt_refused(call, found, P) || vd_rt_unavailable(call, all, found, P))
        goto done;
    /* Every point found, by id text, with its partition; then each named one looked up. */
    size_t n_found = 0;
    cJSON **docs = calloc(P, sizeof *docs);
    for (uint32_t p = 0; docs && p < P; p++) {
        docs[p] = cJSON_ParseWithLength(found[p].answer, found[p].answer_len);
        n_found += (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(docs[p], "result"));
    }
    vd_rt_id_entry *where_is = docs ? malloc((n_found ? n_found : 1) * sizeof *where_is) : NULL;
    size_t k = 0;
    for (uint32_t p = 0; where_is && p < P; p++) {
        const cJSON *hit;
        cJSON_ArrayForEach(hit, cJSON_GetObjectItemCaseSensitive(docs[p], "result"))
        {
            vd_rt_id_text(cJSON_GetObjectItemCaseSensitive(hit, "id"), where_is[k].text, sizeof where_is[k].text);
            where_is[k++].value = (int)p;
        }
    }
    for (uint32_t p = 0; docs && p < P; p++)
        cJSON_Delete(docs[p]);
    free(docs);
    if (!where_is) {
        vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    vd_rt_id_sort(where_is, k);
    int i = 0;
    cJSON_ArrayForEach(pt, points)
    {
        const cJSON *id = cJSON_IsObject(pt) ? cJSON_GetObjectItemCaseSensitive(pt, "id") : pt;
        const vd_rt_id_entry *e = vd_rt_id_lookup(where_is, k, id);
        if (!e) {
            char *text = cJSON_PrintUnformatted(id);
            vd_rt_fail(call, VD_E_POINT_NOT_FOUND, "No point with id %.256s found", text ? text : "?");
            free(text);
            free(where_is);
            goto done;
        }
        home[i++] = e->value;
    }
    free(where_is);
    i = 0;
    cJSON_ArrayForEach(pt, points)
    {
        uint32_t p = (uint32_t)home[i++];
        if (!parts[p] && !(parts[p] = cJSON_CreateArray())) {
            vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        cJSON_AddItemToArray(parts[p], cJSON_Duplicate(pt, true));
    }
    cJSON_DeleteItemFromObjectCaseSensitive(body, "points");
    send_parts(r, call, g, body, parts);
done:
    for (uint32_t p = 0; parts && p < P; p++)
        cJSON_Delete(parts[p]);
    if (found)
        vd_up_reqs_free(found, P);
    free(found);
    free(ask_text);
    free(all);
    free(bodies);
    free(lens);
    free(home);
    free(parts);
    cJSON_Delete(body);
}

/* qdrant_search.c — see qdrant.h. POST …/points/search and
 * …/points/search/batch: Qdrant's request is read into vectord's search
 * (vd_req_search), run by the native search path on the request workers, and
 * its hits adapted to Qdrant's answer: the first `offset` dropped, Euclid
 * scores as distances (vectord's l2 score is the squared distance), and the
 * payload cut to the fields asked for. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/handlers.h"
#include "server/qdrant.h"

/* What a search's answer needs besides vectord's hits. */
typedef struct qd_search_shape {
    uint32_t offset;
    bool euclid;            /* scores are distances: the square root of vectord's */
    const cJSON *include;   /* payload fields kept (an array of names), or NULL: all */
    const cJSON *exclude;   /* payload fields dropped, or NULL */
} qd_search_shape;

static bool named(const cJSON *names, const char *key)
{
    const cJSON *n;
    cJSON_ArrayForEach(n, names)
    {
        if (cJSON_IsString(n) && strcmp(n->valuestring, key) == 0)
            return true;
    }
    return false;
}

static void adapt(void *ctx, size_t i, vd_point_out *hits, size_t *n)
{
    const qd_search_shape *sh = &((const qd_search_shape *)ctx)[i];
    size_t skip = sh->offset < *n ? sh->offset : *n;
    for (size_t j = 0; j < skip; j++)
        vd_point_out_free(&hits[j]);
    memmove(hits, hits + skip, (*n - skip) * sizeof *hits);
    *n -= skip;
    for (size_t j = 0; j < *n; j++) {
        if (sh->euclid)
            hits[j].score = sqrtf(hits[j].score > 0 ? hits[j].score : 0);
        cJSON *p = hits[j].payload, *f = p ? p->child : NULL;
        while (f && (sh->include || sh->exclude)) {
            cJSON *next = f->next;
            bool keep = sh->include ? named(sh->include, f->string) : !named(sh->exclude, f->string);
            if (!keep)
                cJSON_Delete(cJSON_DetachItemViaPointer(p, f));
            f = next;
        }
    }
}

static int bad(vd_call *call, const char *where, const char *what)
{
    return vd_fail(&call->em, VD_E_INVALID_REQUEST, "%s%s", where, what);
}

/* with_payload: true, false, a list of fields, {"include": [...]} or {"exclude": [...]}. */
static int payload_selector(vd_call *call, const cJSON *wp, const char *where, bool *with, qd_search_shape *sh)
{
    *with = false;
    if (!wp || cJSON_IsFalse(wp) || cJSON_IsNull(wp))
        return 0; /* Qdrant's search leaves payloads out unless asked */
    *with = true;
    if (cJSON_IsTrue(wp))
        return 0;
    if (cJSON_IsArray(wp)) {
        sh->include = wp;
        return 0;
    }
    const cJSON *inc = cJSON_GetObjectItem(wp, "include"), *exc = cJSON_GetObjectItem(wp, "exclude");
    if (cJSON_IsObject(wp) && cJSON_GetArraySize((cJSON *)wp) == 1 && (cJSON_IsArray(inc) || cJSON_IsArray(exc))) {
        sh->include = cJSON_IsArray(inc) ? inc : NULL;
        sh->exclude = cJSON_IsArray(exc) ? exc : NULL;
        return 0;
    }
    return bad(call, where, "with_payload must be true, false, a list of fields, or {\"include\"|\"exclude\": [...]}");
}

/* One Qdrant search request as vectord's (a new object) and its shape. */
static int native_search(vd_call *call, const cJSON *q, const char *where, vd_metric metric, cJSON **out,
                         qd_search_shape *sh)
{
    static const char *const known[] = {"vector", "filter", "params", "limit", "offset", "with_payload",
                                        "with_vector", "score_threshold", "shard_key", NULL};
    const cJSON *f;
    cJSON_ArrayForEach(f, q)
    {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(f->string, *k) == 0;
        if (!ok) {
            char what[160];
            snprintf(what, sizeof what, "unknown field '%.64s' in a search", f->string);
            return bad(call, where, what);
        }
    }
    const cJSON *vector = cJSON_GetObjectItem(q, "vector");
    if (cJSON_IsObject(vector))
        return bad(call, where, "named and sparse vectors are not supported; give \"vector\" as an array");
    const cJSON *limit = cJSON_GetObjectItem(q, "limit"), *offset = cJSON_GetObjectItem(q, "offset");
    double lim = cJSON_IsNumber(limit) ? limit->valuedouble : 10, off = cJSON_IsNumber(offset) ? offset->valuedouble : 0;
    if ((limit && !cJSON_IsNumber(limit)) || (offset && !cJSON_IsNull(offset) && !cJSON_IsNumber(offset)) ||
        lim < 1 || off < 0 || lim + off > 1e6)
        return bad(call, where, "limit must be a positive integer and offset a non-negative one");
    sh->offset = (uint32_t)off;
    sh->euclid = metric == VD_METRIC_L2;
    bool with_payload;
    int rc = payload_selector(call, cJSON_GetObjectItem(q, "with_payload"), where, &with_payload, sh);
    if (rc)
        return rc;
    const cJSON *wv = cJSON_GetObjectItem(q, "with_vector");
    if (wv && !cJSON_IsBool(wv) && !cJSON_IsNull(wv))
        return bad(call, where, "with_vector must be true or false (named vectors are not supported)");
    cJSON *n = cJSON_CreateObject();
    *out = n;
    if (vector)
        cJSON_AddItemToObject(n, "vector", cJSON_Duplicate(vector, 1));
    cJSON_AddNumberToObject(n, "k", lim + off);
    const cJSON *filter = cJSON_GetObjectItem(q, "filter");
    if (filter && !cJSON_IsNull(filter))
        cJSON_AddItemToObject(n, "filter", cJSON_Duplicate(filter, 1));
    cJSON_AddBoolToObject(n, "with_payload", with_payload);
    cJSON_AddBoolToObject(n, "with_vector", cJSON_IsTrue(wv));
    const cJSON *t = cJSON_GetObjectItem(q, "score_threshold");
    if (cJSON_IsNumber(t)) /* Euclid: a distance; vectord's l2 threshold is on its square */
        cJSON_AddNumberToObject(n, "score_threshold", sh->euclid ? t->valuedouble * t->valuedouble : t->valuedouble);
    const cJSON *params = cJSON_GetObjectItem(q, "params");
    const cJSON *ef = cJSON_GetObjectItem(params, "hnsw_ef"), *exact = cJSON_GetObjectItem(params, "exact");
    const cJSON *quant = cJSON_GetObjectItem(params, "quantization");
    const cJSON *over = cJSON_GetObjectItem(quant, "oversampling");
    if (cJSON_IsNumber(ef))
        cJSON_AddNumberToObject(n, "ef", ef->valuedouble);
    if (cJSON_IsBool(exact))
        cJSON_AddBoolToObject(n, "exact", cJSON_IsTrue(exact));
    if (cJSON_IsNumber(over))
        cJSON_AddNumberToObject(n, "oversampling", ceil(over->valuedouble));
    return 0;
}

/* Runs on a request worker: the searches of call->body (Qdrant's), one or a batch. */
static int search_now(vd_call *call, bool batch)
{
    vd_collection *c;
    int rc = vd_call_require_body(call, batch ? "{\"searches\":[{\"vector\":[…],\"limit\":10}]}"
                                              : "{\"vector\":[…],\"limit\":10}");
    if (rc || (rc = vd_call_collection(call, &c)))
        return rc;
    const vd_collection_config *cfg = vd_collection_config_of(c);
    const cJSON *list = batch ? cJSON_GetObjectItem(call->body, "searches") : NULL;
    size_t n = batch ? (size_t)cJSON_GetArraySize((cJSON *)list) : 1;
    if (batch && (!cJSON_IsArray(list) || n == 0 || n > call->api->limits.max_batch_searches)) {
        vd_collection_unref(c);
        return vd_fail(&call->em, VD_E_INVALID_REQUEST, "searches must hold 1 to %zu searches",
                       (size_t)call->api->limits.max_batch_searches);
    }
    qd_search_shape *shapes = calloc(n, sizeof *shapes);
    vd_search_parsed *parsed = calloc(n, sizeof *parsed);
    size_t done = 0;
    if (!shapes || !parsed)
        rc = vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    for (; !rc && done < n; done++) {
        char where[40] = "";
        if (batch)
            snprintf(where, sizeof where, "searches[%zu]: ", done);
        const cJSON *q = batch ? cJSON_GetArrayItem(list, (int)done) : call->body;
        cJSON *native = NULL;
        if (!cJSON_IsObject(q))
            rc = bad(call, where, "a search is a JSON object");
        else if (!(rc = native_search(call, q, where, cfg->metric, &native, &shapes[done])))
            rc = vd_req_search(native, "", cfg, &call->api->limits, call->vectors, &parsed[done], &call->em);
        cJSON_Delete(native);
        if (rc)
            break;
    }
    if (!rc) {
        vd_hits_adapter a = {adapt, shapes};
        rc = vd_call_run_searches(call, c, parsed, n, batch, &a); /* frees each parsed search */
    } else {
        for (size_t i = 0; parsed && i < done; i++)
            vd_search_parsed_free(&parsed[i]);
    }
    free(parsed);
    free(shapes);
    vd_collection_unref(c);
    return rc;
}

static int search_one(vd_call *call) { return search_now(call, false); }
static int search_batch(vd_call *call) { return search_now(call, true); }

int vd_qd_search(vd_call *call) { return vd_call_offload(call, search_one); }
int vd_qd_search_batch(vd_call *call) { return vd_call_offload(call, search_batch); }

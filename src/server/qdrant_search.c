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
    uint32_t limit;
    vd_metric metric;
    bool euclid;            /* scores are distances: the square root of vectord's */
    vd_qd_payload_sel payload; /* with_payload */
    /* points/query: */
    bool mmr;               /* maximal marginal relevance over the candidates */
    float diversity;        /* 0: relevance only … 1: diversity only */
    bool keep_vectors;      /* with_vector asked (MMR fetches them anyway) */
    vd_point_id exclude_id; /* a query by point id leaves that point out (kind 0: none) */
    char exclude_buf[40];
} qd_search_shape;

/* Drops hits[j] (freed), keeping the order of the rest. */
static void drop(vd_point_out *hits, size_t *n, size_t j)
{
    vd_point_out_free(&hits[j]);
    memmove(hits + j, hits + j + 1, (*n - j - 1) * sizeof *hits);
    (*n)--;
}

/* The similarity of two stored vectors in the collection's metric (higher is more alike). */
static float similarity(vd_metric m, const float *a, const float *b, uint32_t dim)
{
    double s = 0;
    for (uint32_t k = 0; k < dim; k++)
        s += m == VD_METRIC_L2 ? ((double)a[k] - b[k]) * ((double)a[k] - b[k]) : (double)a[k] * b[k];
    return m == VD_METRIC_L2 ? -(float)sqrt(s) : (float)s;
}

/* Maximal marginal relevance: from the candidates (best first, with their
 * vectors), picks `want` one by one, each the best of
 * (1 - diversity) * relevance - diversity * (its highest similarity to those picked),
 * relevance being the score (for Euclid, minus the distance). Reorders hits. */
static void mmr_select(const qd_search_shape *sh, vd_point_out *hits, size_t *n)
{
    size_t want = sh->offset + sh->limit < *n ? sh->offset + sh->limit : *n;
    float *closest = malloc(*n * sizeof *closest); /* each candidate's highest similarity to the picked */
    if (!closest)
        return; /* out of memory: the plain ranking stands */
    for (size_t j = 0; j < *n; j++)
        closest[j] = -INFINITY;
    for (size_t picked = 0; picked < want; picked++) {
        size_t best = picked;
        float best_v = -INFINITY;
        for (size_t j = picked; j < *n; j++) {
            if (!hits[j].vector)
                continue;
            float rel = sh->euclid ? -hits[j].score : hits[j].score;
            float v = picked ? (1 - sh->diversity) * rel - sh->diversity * closest[j] : rel;
            if (v > best_v) {
                best_v = v;
                best = j;
            }
        }
        vd_point_out t = hits[picked];
        hits[picked] = hits[best];
        hits[best] = t;
        float tc = closest[picked];
        closest[picked] = closest[best];
        closest[best] = tc;
        for (size_t j = picked + 1; j < *n; j++)
            if (hits[j].vector && hits[picked].vector) {
                float sim = similarity(sh->metric, hits[j].vector, hits[picked].vector, hits[j].dim);
                if (sim > closest[j])
                    closest[j] = sim;
            }
    }
    free(closest);
    while (*n > want)
        drop(hits, n, *n - 1);
}

static void adapt(void *ctx, size_t i, vd_point_out *hits, size_t *n)
{
    const qd_search_shape *sh = &((const qd_search_shape *)ctx)[i];
    for (size_t j = 0; sh->exclude_id.kind && j < *n; j++)
        if (vd_id_equal(&hits[j].id, &sh->exclude_id)) {
            drop(hits, n, j);
            break;
        }
    if (sh->euclid)
        for (size_t j = 0; j < *n; j++)
            hits[j].score = sqrtf(hits[j].score > 0 ? hits[j].score : 0);
    if (sh->mmr)
        mmr_select(sh, hits, n);
    if (sh->limit && *n > (size_t)sh->offset + sh->limit)
        while (*n > (size_t)sh->offset + sh->limit)
            drop(hits, n, *n - 1);
    size_t skip = sh->offset < *n ? sh->offset : *n;
    for (size_t j = 0; j < skip; j++)
        vd_point_out_free(&hits[j]);
    memmove(hits, hits + skip, (*n - skip) * sizeof *hits);
    *n -= skip;
    for (size_t j = 0; j < *n; j++) {
        if (sh->mmr && !sh->keep_vectors) {
            free(hits[j].vector);
            hits[j].vector = NULL;
        }
        vd_qd_payload_trim(&sh->payload, hits[j].payload);
    }
}

static int bad(vd_call *call, const char *where, const char *what)
{
    return vd_fail(&call->em, VD_E_INVALID_REQUEST, "%s%s", where, what);
}

/* One Qdrant search request as vectord's (a new object) and its shape. */
static int native_search(vd_call *call, const cJSON *q, const char *where, vd_metric metric, cJSON **out,
                         qd_search_shape *sh)
{
    static const char *const known[] = {"vector", "filter", "params", "limit", "offset", "with_payload",
                                        "with_vector", "score_threshold", "shard_key", NULL};
    char what[64];
    snprintf(what, sizeof what, "%sa search", where);
    int rc = vd_qd_known_fields(call, q, known, what);
    if (rc)
        return rc;
    const cJSON *vector = cJSON_GetObjectItem(q, "vector");
    if (cJSON_IsObject(vector))
        return bad(call, where, "named and sparse vectors are not supported; give \"vector\" as an array");
    const cJSON *limit = cJSON_GetObjectItem(q, "limit"), *offset = cJSON_GetObjectItem(q, "offset");
    double lim = cJSON_IsNumber(limit) ? limit->valuedouble : 10, off = cJSON_IsNumber(offset) ? offset->valuedouble : 0;
    if ((limit && !cJSON_IsNumber(limit)) || (offset && !cJSON_IsNull(offset) && !cJSON_IsNumber(offset)) ||
        lim < 1 || off < 0 || lim + off > 1e6)
        return bad(call, where, "limit must be a positive integer and offset a non-negative one");
    sh->offset = (uint32_t)off;
    sh->limit = (uint32_t)lim;
    sh->metric = metric;
    sh->euclid = metric == VD_METRIC_L2;
    /* Qdrant's search leaves payloads out unless asked. */
    rc = vd_qd_payload_sel_parse(call, cJSON_GetObjectItem(q, "with_payload"), false, where, &sh->payload);
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
    cJSON_AddBoolToObject(n, "with_payload", sh->payload.with);
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

/* A points/query request as a points/search one (a new object) and the
 * shape's query-only parts: the nearest of a vector or of a stored point's
 * vector (that point left out), optionally re-ranked by MMR. */
static int query_as_search(vd_call *call, vd_collection *c, const cJSON *q, const char *where, cJSON **out,
                           qd_search_shape *sh)
{
    static const char *const copied[] = {"filter", "params", "score_threshold", "with_payload", "shard_key", NULL};
    static const char *const known[] = {"query", "using", "limit", "offset", "with_vector", "prefetch", "lookup_from",
                                        "filter", "params", "score_threshold", "with_payload", "shard_key", NULL};
    char what[64];
    snprintf(what, sizeof what, "%sa query", where);
    int rc = vd_qd_known_fields(call, q, known, what);
    if (rc)
        return rc;
    const cJSON *f;
    const cJSON *using = cJSON_GetObjectItem(q, "using");
    if (using && !cJSON_IsNull(using))
        return bad(call, where, "using: named vectors are not supported");
    if (cJSON_GetObjectItem(q, "prefetch") || cJSON_GetObjectItem(q, "lookup_from"))
        return bad(call, where, "prefetch and lookup_from are not supported yet (docs/QDRANT.md)");
    const cJSON *query = cJSON_GetObjectItem(q, "query"), *nearest = query, *mmr = NULL;
    if (!query || cJSON_IsNull(query))
        return bad(call, where, "query is required: a vector, a point id, or {\"nearest\": …}");
    if (cJSON_IsObject(query)) {
        nearest = cJSON_GetObjectItem(query, "nearest");
        mmr = cJSON_GetObjectItem(query, "mmr");
        if (!nearest) {
            char msg[160];
            snprintf(msg, sizeof msg, "query.%.40s is not supported yet; a vector, a point id or "
                     "{\"nearest\": …, \"mmr\": …} are", query->child ? query->child->string : "{}");
            return bad(call, where, msg);
        }
    }
    cJSON *vector = NULL;
    if (cJSON_IsArray(nearest)) {
        vector = cJSON_Duplicate(nearest, 1);
    } else {
        rc = vd_qd_point_id(call, nearest, &sh->exclude_id, sh->exclude_buf);
        if (rc)
            return rc;
        vd_point_out p;
        rc = vd_collection_get(c, &sh->exclude_id, true, &p);
        if (rc == VD_E_POINT_NOT_FOUND)
            return vd_fail(&call->em, VD_E_POINT_NOT_FOUND, "%sthe query's point is not in collection '%s'",
                           where, call->collection);
        if (rc)
            return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
        vector = cJSON_CreateFloatArray(p.vector, (int)p.dim);
        vd_point_out_free(&p);
    }
    const cJSON *limit = cJSON_GetObjectItem(q, "limit"), *offset = cJSON_GetObjectItem(q, "offset");
    double lim = cJSON_IsNumber(limit) ? limit->valuedouble : 10, off = cJSON_IsNumber(offset) ? offset->valuedouble : 0;
    if (!(lim >= 1 && lim <= 1e6 && off >= 0 && off <= 1e6)) {
        cJSON_Delete(vector);
        return bad(call, where, "limit must be a positive integer and offset a non-negative one");
    }
    double fetch = lim + off + (sh->exclude_id.kind ? 1 : 0);
    const cJSON *wv = cJSON_GetObjectItem(q, "with_vector");
    sh->keep_vectors = cJSON_IsTrue(wv);
    if (mmr && !cJSON_IsNull(mmr)) {
        const cJSON *d = cJSON_GetObjectItem(mmr, "diversity"), *cl = cJSON_GetObjectItem(mmr, "candidates_limit");
        sh->mmr = true;
        sh->diversity = cJSON_IsNumber(d) ? (float)d->valuedouble : 0.5f;
        if (sh->diversity < 0 || sh->diversity > 1) {
            cJSON_Delete(vector);
            return bad(call, where, "mmr.diversity must be between 0 and 1");
        }
        if (cJSON_IsNumber(cl) && cl->valuedouble > fetch)
            fetch = cl->valuedouble;
    }
    cJSON *o = cJSON_CreateObject();
    *out = o;
    cJSON_AddItemToObject(o, "vector", vector);
    cJSON_AddNumberToObject(o, "limit", fetch);
    for (const char *const *k = copied; *k; k++)
        if ((f = cJSON_GetObjectItem(q, *k)))
            cJSON_AddItemToObject(o, *k, cJSON_Duplicate(f, 1));
    cJSON_AddBoolToObject(o, "with_vector", sh->mmr || sh->keep_vectors);
    /* limit and offset apply after exclusion and MMR (the adapter) */
    sh->limit = (uint32_t)lim;
    sh->offset = (uint32_t)off;
    return 0;
}

typedef enum { QD_SEARCH, QD_SEARCH_BATCH, QD_QUERY, QD_QUERY_BATCH } qd_kind;

/* Runs on a request worker: the searches of call->body (Qdrant's), one or a batch. */
static int search_now(vd_call *call, qd_kind kind)
{
    bool batch = kind == QD_SEARCH_BATCH || kind == QD_QUERY_BATCH, query = kind == QD_QUERY || kind == QD_QUERY_BATCH;
    vd_collection *c;
    int rc = vd_call_require_body(call, batch ? "{\"searches\":[{\"vector\":[…],\"limit\":10}]}"
                                              : "{\"vector\":[…],\"limit\":10}");
    if (rc || (rc = vd_call_collection(call, &c)))
        return rc;
    vd_qd_canonical_has_id(call->body);
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
    cJSON **as_search = calloc(n, sizeof *as_search); /* queries as searches: the shapes point into them */
    size_t done = 0;
    if (!shapes || !parsed || !as_search)
        rc = vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    for (; !rc && done < n; done++) {
        char where[40] = "";
        if (batch)
            snprintf(where, sizeof where, "searches[%zu]: ", done);
        const cJSON *q = batch ? cJSON_GetArrayItem(list, (int)done) : call->body;
        cJSON *native = NULL;
        qd_search_shape sh = {0};
        if (!cJSON_IsObject(q))
            rc = bad(call, where, "a search is a JSON object");
        else if (query && (rc = query_as_search(call, c, q, where, &as_search[done], &sh)))
            ;
        else if (!(rc = native_search(call, query ? as_search[done] : q, where, cfg->metric, &native,
                                      &shapes[done])))
            rc = vd_req_search(native, "", cfg, &call->api->limits, call->vectors, &parsed[done], &call->em);
        if (!rc && query) { /* the query's own limit, offset, exclusion and MMR */
            qd_search_shape *s = &shapes[done];
            s->limit = sh.limit;
            s->offset = sh.offset;
            s->mmr = sh.mmr;
            s->diversity = sh.diversity;
            s->keep_vectors = sh.keep_vectors;
            s->exclude_id = sh.exclude_id;
            memcpy(s->exclude_buf, sh.exclude_buf, sizeof s->exclude_buf);
            if (s->exclude_id.kind == VD_ID_STR)
                s->exclude_id.str = s->exclude_buf;
        }
        cJSON_Delete(native);
        if (rc)
            break;
    }
    if (!rc) {
        vd_hits_adapter a = {adapt, shapes, query};
        rc = vd_call_run_searches(call, c, parsed, n, batch, &a); /* frees each parsed search */
    } else {
        for (size_t i = 0; parsed && i < done; i++)
            vd_search_parsed_free(&parsed[i]);
    }
    for (size_t i = 0; as_search && i < n; i++)
        cJSON_Delete(as_search[i]);
    free(as_search);
    free(parsed);
    free(shapes);
    vd_collection_unref(c);
    return rc;
}

static int search_one(vd_call *call) { return search_now(call, QD_SEARCH); }
static int search_batch(vd_call *call) { return search_now(call, QD_SEARCH_BATCH); }
static int query_one(vd_call *call) { return search_now(call, QD_QUERY); }
static int query_batch(vd_call *call) { return search_now(call, QD_QUERY_BATCH); }

int vd_qd_search(vd_call *call) { return vd_call_offload(call, search_one); }
int vd_qd_search_batch(vd_call *call) { return vd_call_offload(call, search_batch); }
int vd_qd_query(vd_call *call) { return vd_call_offload(call, query_one); }
int vd_qd_query_batch(vd_call *call) { return vd_call_offload(call, query_batch); }

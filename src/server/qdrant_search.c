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

#include "db/fusion.h"
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
    struct qd_fused *fused; /* a query with prefetch: its searches, made by fused_hits */
} qd_search_shape;

/* A query with prefetch: the prefetch searches, then how their answers make
 * one (a fusion, or a re-ranking of their union by the query's vector). */
typedef struct qd_fused {
    size_t n;
    vd_search_parsed *pre;      /* n prefetch searches */
    qd_search_shape *pre_shape; /* n: each one's limit, exclusion, Euclid scores */
    cJSON **pre_body;           /* n: the prefetches as searches (the shapes point into them) */
    vd_fusion fusion;
    float *weights;             /* RRF weights, or NULL */
    vd_search_parsed rescore;   /* .vector set: re-rank the union by it */
    qd_search_shape rescore_shape; /* its exclusion (a point id query) */
    bool has_threshold;
    float threshold;            /* on the final scores (Euclid re-ranking: a distance) */
} qd_fused;

static void fused_free(qd_fused *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        vd_search_parsed_free(&f->pre[i]);
        cJSON_Delete(f->pre_body[i]);
    }
    free(f->pre);
    free(f->pre_shape);
    free(f->pre_body);
    free(f->weights);
    vd_search_parsed_free(&f->rescore);
    free(f);
}

static int by_key(const void *pa, const void *pb)
{
    const vd_point_out *a = pa, *b = pb;
    return (a->key > b->key) - (a->key < b->key);
}

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
        if ((sh->mmr || sh->fused) && !sh->keep_vectors) {
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


/* A query (or prefetch) object as a parsed vectord search: query_as_search,
 * then native_search and the native parser; sh gets its shape. */
static int parse_query(vd_call *call, vd_collection *c, const cJSON *q, const char *where, cJSON **as_search,
                       vd_search_parsed *out, qd_search_shape *sh)
{
    qd_search_shape qs = {0};
    cJSON *native = NULL;
    const vd_collection_config *cfg = vd_collection_config_of(c);
    int rc = query_as_search(call, c, q, where, as_search, &qs);
    if (!rc && !(rc = native_search(call, *as_search, where, cfg->metric, &native, sh)))
        rc = vd_req_search(native, "", cfg, &call->api->limits, call->vectors, out, &call->em);
    cJSON_Delete(native);
    if (rc)
        return rc;
    /* The query's own limit, offset, exclusion and MMR (the adapter applies them). */
    sh->limit = qs.limit;
    sh->offset = qs.offset;
    sh->mmr = qs.mmr;
    sh->diversity = qs.diversity;
    sh->keep_vectors = qs.keep_vectors;
    sh->exclude_id = qs.exclude_id;
    memcpy(sh->exclude_buf, qs.exclude_buf, sizeof sh->exclude_buf);
    if (sh->exclude_id.kind == VD_ID_STR)
        sh->exclude_id.str = sh->exclude_buf;
    return 0;
}

/* parse_query for the parts of a query with prefetch, which take no MMR. */
static int parse_plain_query(vd_call *call, vd_collection *c, const cJSON *q, const char *where, cJSON **as_search,
                             vd_search_parsed *out, qd_search_shape *sh)
{
    int rc = parse_query(call, c, q, where, as_search, out, sh);
    if (!rc && sh->mmr)
        rc = bad(call, where, "mmr is not supported inside a query with prefetch");
    return rc;
}

/* The fusion a query with prefetch names: {"fusion": "rrf"|"dbsf"} or
 * {"rrf": {"k", "weights"}}. 1 when q is none of these (a query to re-rank
 * by), 0, or an error. */
static int fusion_of(vd_call *call, const cJSON *query, size_t n, const char *where, qd_fused *f)
{
    const cJSON *fusion = cJSON_GetObjectItem(query, "fusion"), *rrf = cJSON_GetObjectItem(query, "rrf");
    if (!cJSON_IsObject(query) || (!fusion && !rrf))
        return 1;
    f->fusion = (vd_fusion){.method = VD_FUSION_RRF, .k = VD_RRF_K_DEFAULT};
    if (fusion) {
        const char *m = cJSON_GetStringValue(fusion);
        if (cJSON_GetArraySize((cJSON *)query) != 1 || !m || (strcmp(m, "rrf") && strcmp(m, "dbsf")))
            return bad(call, where, "query.fusion must be \"rrf\" or \"dbsf\"");
        f->fusion.method = strcmp(m, "rrf") ? VD_FUSION_DBSF : VD_FUSION_RRF;
        return 0;
    }
    const cJSON *k = cJSON_GetObjectItem(rrf, "k"), *w = cJSON_GetObjectItem(rrf, "weights");
    if (cJSON_GetArraySize((cJSON *)query) != 1 || !cJSON_IsObject(rrf) ||
        (k && !cJSON_IsNull(k) && !(cJSON_IsNumber(k) && k->valuedouble >= 1 && k->valuedouble <= 1e6 &&
                                    k->valuedouble == floor(k->valuedouble))))
        return bad(call, where, "query.rrf must be {\"k\": a positive integer, \"weights\": [one per prefetch]}");
    if (cJSON_IsNumber(k))
        f->fusion.k = (uint32_t)k->valuedouble;
    if (!w || cJSON_IsNull(w))
        return 0;
    if (!cJSON_IsArray(w) || (size_t)cJSON_GetArraySize((cJSON *)w) != n)
        return bad(call, where, "query.rrf.weights must hold one number per prefetch");
    if (!(f->weights = malloc(n * sizeof *f->weights)))
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    size_t i = 0;
    for (const cJSON *x = w->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x) || !(x->valuedouble >= 0 && x->valuedouble <= 1e6))
            return bad(call, where, "query.rrf.weights must be numbers from 0 to 1e6");
        f->weights[i] = (float)x->valuedouble;
    }
    f->fusion.weights = f->weights;
    return 0;
}

/* One prefetch as a query object of its own: its fields, the outer filter
 * joined to its own, and the hits carrying what the answer shows. */
static cJSON *prefetch_query(const cJSON *p, const cJSON *outer_filter, bool with_payload, bool with_vector)
{
    static const char *const copied[] = {"query", "params", "score_threshold", "limit", NULL};
    cJSON *o = cJSON_CreateObject();
    for (const char *const *k = copied; *k; k++) {
        const cJSON *f = cJSON_GetObjectItem(p, *k);
        if (f)
            cJSON_AddItemToObject(o, *k, cJSON_Duplicate(f, 1));
    }
    const cJSON *inner = cJSON_GetObjectItem(p, "filter");
    bool has_inner = inner && !cJSON_IsNull(inner), has_outer = outer_filter && !cJSON_IsNull(outer_filter);
    if (has_inner && has_outer) {
        cJSON *both = cJSON_AddObjectToObject(o, "filter"), *must = cJSON_AddArrayToObject(both, "must");
        cJSON_AddItemToArray(must, cJSON_Duplicate(outer_filter, 1));
        cJSON_AddItemToArray(must, cJSON_Duplicate(inner, 1));
    } else if (has_inner || has_outer) {
        cJSON_AddItemToObject(o, "filter", cJSON_Duplicate(has_inner ? inner : outer_filter, 1));
    }
    cJSON_AddBoolToObject(o, "with_payload", with_payload);
    cJSON_AddBoolToObject(o, "with_vector", with_vector);
    return o;
}

/* A query with prefetch: parses its prefetches and what combines them into
 * sh->fused; the search slot s of the batch is left without a vector (the
 * source hook makes its hits) but says how many hits the answer holds. */
static int fused_query(vd_call *call, vd_collection *c, const cJSON *q, const char *where, qd_search_shape *sh,
                       vd_search_parsed *s)
{
    static const char *const known[] = {"prefetch", "query", "using", "limit", "offset", "filter", "params",
                                        "score_threshold", "with_payload", "with_vector", "lookup_from",
                                        "shard_key", NULL};
    static const char *const pre_known[] = {"prefetch", "query", "using", "filter", "params", "score_threshold",
                                            "limit", "lookup_from", NULL};
    char what[64], at[64];
    snprintf(what, sizeof what, "%sa query", where);
    int rc = vd_qd_known_fields(call, q, known, what);
    if (rc)
        return rc;
    const cJSON *using = cJSON_GetObjectItem(q, "using"), *lookup = cJSON_GetObjectItem(q, "lookup_from");
    if ((using && !cJSON_IsNull(using)) || (lookup && !cJSON_IsNull(lookup)))
        return bad(call, where, "using and lookup_from are not supported (one unnamed vector per point)");
    const cJSON *limit = cJSON_GetObjectItem(q, "limit"), *offset = cJSON_GetObjectItem(q, "offset");
    double lim = cJSON_IsNumber(limit) ? limit->valuedouble : 10, off = cJSON_IsNumber(offset) ? offset->valuedouble : 0;
    if ((limit && !cJSON_IsNull(limit) && !cJSON_IsNumber(limit)) || (offset && !cJSON_IsNull(offset) && !cJSON_IsNumber(offset)) ||
        !(lim >= 1 && lim <= 1e6 && off >= 0 && off <= 1e6))
        return bad(call, where, "limit must be a positive integer and offset a non-negative one");
    const cJSON *wv = cJSON_GetObjectItem(q, "with_vector");
    if (wv && !cJSON_IsBool(wv) && !cJSON_IsNull(wv))
        return bad(call, where, "with_vector must be true or false (named vectors are not supported)");
    if ((rc = vd_qd_payload_sel_parse(call, cJSON_GetObjectItem(q, "with_payload"), false, where, &sh->payload)))
        return rc;
    const cJSON *pre = cJSON_GetObjectItem(q, "prefetch"), *query = cJSON_GetObjectItem(q, "query");
    size_t n = cJSON_IsArray(pre) ? (size_t)cJSON_GetArraySize((cJSON *)pre) : cJSON_IsObject(pre) ? 1 : 0;
    if (n == 0 || n > call->api->limits.max_batch_searches) {
        snprintf(at, sizeof at, "prefetch must be a prefetch object or 1 to %zu of them",
                 (size_t)call->api->limits.max_batch_searches);
        return bad(call, where, at);
    }
    qd_fused *f = calloc(1, sizeof *f);
    if (!f || !(f->pre = calloc(n, sizeof *f->pre)) || !(f->pre_shape = calloc(n, sizeof *f->pre_shape)) ||
        !(f->pre_body = calloc(n, sizeof *f->pre_body))) {
        fused_free(f);
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    }
    sh->fused = f;
    if (!query || cJSON_IsNull(query))
        return bad(call, where, "a query with prefetch needs query: {\"fusion\": \"rrf\"|\"dbsf\"}, "
                                "{\"rrf\": {\"k\"}}, or a vector or point id to re-rank the prefetched points by");
    rc = fusion_of(call, query, n, where, f);
    bool rescore = rc == 1;
    if (rescore) { /* re-rank the union by the query's vector: the nearest of it, exactly */
        cJSON *as_search = NULL, *body = cJSON_CreateObject();
        cJSON_AddItemToObject(body, "query", cJSON_Duplicate(query, 1));
        rc = parse_plain_query(call, c, body, where, &as_search, &f->rescore, &f->rescore_shape);
        cJSON_Delete(body);
        cJSON_Delete(as_search);
        f->fusion = (vd_fusion){.method = VD_FUSION_UNION};
    }
    if (rc)
        return rc;
    const cJSON *t = cJSON_GetObjectItem(q, "score_threshold");
    if (t && !cJSON_IsNull(t) && !cJSON_IsNumber(t))
        return bad(call, where, "score_threshold must be a number");
    f->has_threshold = cJSON_IsNumber(t);
    f->threshold = f->has_threshold ? (float)t->valuedouble : 0;
    bool with_vector = cJSON_IsTrue(wv), carry_vector = with_vector || rescore;
    vd_metric metric = vd_collection_config_of(c)->metric;
    for (size_t i = 0; i < n; i++) {
        const cJSON *p = cJSON_IsArray(pre) ? cJSON_GetArrayItem(pre, (int)i) : pre;
        snprintf(at, sizeof at, "%sprefetch[%zu]: ", where, i);
        snprintf(what, sizeof what, "%sprefetch[%zu]", where, i);
        if (!cJSON_IsObject(p))
            return bad(call, at, "a prefetch is a JSON object");
        if ((rc = vd_qd_known_fields(call, p, pre_known, what)))
            return rc;
        const cJSON *nested = cJSON_GetObjectItem(p, "prefetch"), *pu = cJSON_GetObjectItem(p, "using");
        const cJSON *pl = cJSON_GetObjectItem(p, "lookup_from");
        if ((nested && !cJSON_IsNull(nested)) || (pu && !cJSON_IsNull(pu)) || (pl && !cJSON_IsNull(pl)))
            return bad(call, at, "nested prefetch, using and lookup_from are not supported");
        cJSON *pq = prefetch_query(p, cJSON_GetObjectItem(q, "filter"), sh->payload.with, carry_vector);
        f->n = i + 1; /* freed with f from here on, whatever parse_query leaves */
        rc = parse_plain_query(call, c, pq, at, &f->pre_body[i], &f->pre[i], &f->pre_shape[i]);
        cJSON_Delete(pq);
        if (rc)
            return rc;
        f->pre_shape[i].euclid = metric == VD_METRIC_L2;
    }
    f->fusion.distances = metric == VD_METRIC_L2;
    sh->limit = (uint32_t)lim;
    sh->offset = (uint32_t)off;
    sh->metric = metric;
    sh->keep_vectors = with_vector;
    /* The answer's slot: no search of its own, its size for the answer's budget. */
    s->req = (vd_search_req){.k = (uint32_t)(lim + off), .with_payload = sh->payload.with,
                             .with_vector = with_vector};
    return 0;
}

static void free_hit_lists(vd_point_out **lists, const size_t *n, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        for (size_t j = 0; lists[i] && j < n[i]; j++)
            vd_point_out_free(&lists[i][j]);
        free(lists[i]);
    }
}

/* The source hook: a query with prefetch runs its prefetches and combines them. */
static int fused_hits(void *ctx, size_t i, vd_call *call, vd_collection *c, vd_point_out **hits, size_t *n,
                      bool *made)
{
    const qd_fused *f = ((const qd_search_shape *)ctx)[i].fused;
    if (!f)
        return 0;
    *made = true;
    vd_point_out **lists = calloc(f->n, sizeof *lists);
    size_t *counts = calloc(f->n, sizeof *counts);
    int rc = lists && counts ? 0 : vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    size_t done = 0;
    for (; !rc && done < f->n; done++) {
        if (done && (rc = vd_call_check_deadline(call, "running the query's prefetches")))
            break;
        if ((rc = vd_call_search_hits(call, c, &f->pre[done], &lists[done], &counts[done])))
            break;
        adapt(f->pre_shape, done, lists[done], &counts[done]); /* exclusion, Euclid distances, limit */
    }
    if (!rc && vd_fuse(&f->fusion, lists, counts, f->n, hits, n))
        rc = vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory fusing the prefetches");
    else if (rc && lists && counts)
        free_hit_lists(lists, counts, done);
    free(lists);
    free(counts);
    if (rc)
        return rc;
    const vd_collection_config *cfg = vd_collection_config_of(c);
    bool euclid = cfg->metric == VD_METRIC_L2 && f->rescore.vector;
    for (size_t j = 0; f->rescore.vector && j < *n; j++) { /* re-rank by the query's vector */
        vd_point_out *h = &(*hits)[j];
        bool out = !h->vector || (f->rescore_shape.exclude_id.kind && vd_id_equal(&h->id, &f->rescore_shape.exclude_id));
        float sim = out ? -INFINITY : similarity(cfg->metric, f->rescore.vector, h->vector, cfg->dim);
        h->score = euclid ? -sim : sim; /* Euclid answers the distance */
        h->key = -sim;                  /* lower is better */
        if (out)
            h->key = INFINITY;
    }
    if (f->rescore.vector)
        qsort(*hits, *n, sizeof **hits, by_key);
    size_t kept = 0;
    for (size_t j = 0; j < *n; j++) {
        vd_point_out *h = &(*hits)[j];
        bool drop = h->key == INFINITY && f->rescore.vector;
        if (f->has_threshold)
            drop = drop || (euclid ? h->score > f->threshold : h->score < f->threshold);
        if (drop)
            vd_point_out_free(h);
        else
            (*hits)[kept++] = *h;
    }
    *n = kept;
    return 0;
}

typedef enum { QD_SEARCH, QD_SEARCH_BATCH, QD_QUERY, QD_QUERY_BATCH } qd_kind;

static int search_one(vd_call *call);
static int search_batch(vd_call *call);
static int query_one(vd_call *call);
static int query_batch(vd_call *call);

/* The searches of call->body (Qdrant's), one or a batch. Parsed on the
 * HTTP thread; run there when cheap (vd_call_searches_here;
 * a fused query's prefetches are not priced, so it always goes to the
 * request workers), else handed to them, where it is parsed again. */
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
        if (!cJSON_IsObject(q))
            rc = bad(call, where, "a search is a JSON object");
        else if (query && cJSON_GetObjectItem(q, "prefetch") && !cJSON_IsNull(cJSON_GetObjectItem(q, "prefetch")))
            rc = fused_query(call, c, q, where, &shapes[done], &parsed[done]);
        else if (query)
            rc = parse_query(call, c, q, where, &as_search[done], &parsed[done], &shapes[done]);
        else if (!(rc = native_search(call, q, where, cfg->metric, &native, &shapes[done])))
            rc = vd_req_search(native, "", cfg, &call->api->limits, call->vectors, &parsed[done], &call->em);
        cJSON_Delete(native);
        if (rc)
            break;
    }
    bool fused = false;
    for (size_t i = 0; !rc && i < n; i++)
        fused = fused || shapes[i].fused;
    bool here = !rc && (!fused || call->offloaded || !call->api->jobs) &&
                vd_call_searches_here(call, c, parsed, n);
    if (here) {
        vd_hits_adapter a = {adapt, shapes, query, query ? fused_hits : NULL};
        rc = vd_call_run_searches(call, c, parsed, n, batch, &a); /* frees each parsed search */
    } else {
        for (size_t i = 0; parsed && i < done; i++)
            vd_search_parsed_free(&parsed[i]);
    }
    for (size_t i = 0; as_search && i < n; i++)
        cJSON_Delete(as_search[i]);
    for (size_t i = 0; shapes && i < n; i++)
        fused_free(shapes[i].fused);
    free(as_search);
    free(parsed);
    free(shapes);
    vd_collection_unref(c);
    if (rc || here)
        return rc;
    static int (*const again[])(vd_call *) = {search_one, search_batch, query_one, query_batch};
    return vd_call_offload(call, again[kind]);
}

static int search_one(vd_call *call) { return search_now(call, QD_SEARCH); }
static int search_batch(vd_call *call) { return search_now(call, QD_SEARCH_BATCH); }
static int query_one(vd_call *call) { return search_now(call, QD_QUERY); }
static int query_batch(vd_call *call) { return search_now(call, QD_QUERY_BATCH); }

int vd_qd_search(vd_call *call) { return search_one(call); }
int vd_qd_search_batch(vd_call *call) { return search_batch(call); }
int vd_qd_query(vd_call *call) { return query_one(call); }
int vd_qd_query_batch(vd_call *call) { return query_batch(call); }

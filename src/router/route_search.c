/*
 * route_search.c — searches through the router (routing.h): all
 * naming one tenant go to its partition; others to every partition, each
 * asked for offset + limit hits (an MMR query for its candidates with their
 * vectors), merged by score (the collection's score order, learnt from a
 * replica and cached) and cut as the client asked.
 */
#include "router/routing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/answers.h"
#include "util/clock.h"
#include "vectord/error.h"

typedef struct tenant_walk {
    const vd_router *r;
    const vd_generation *g;
    long p;   /* the partition so far, -1 = none yet */
    bool one; /* every search so far names a tenant of partition p */
} tenant_walk;

static bool walk_search(const char *at, size_t n, void *ctx)
{
    tenant_walk *w = ctx;
    char t[VD_TENANT_TEXT_MAX];
    long q = vd_rt_text_tenant(at, n, w->r->tenant_field, t, sizeof t) ? (long)vd_rt_tenant_partition(t, w->g)
                                                                       : -1;
    w->one = q >= 0 && (w->p < 0 || q == w->p);
    w->p = q;
    return w->one;
}

/* The partition all the call's searches name a tenant of, or -1; read from
 * the filters alone, without parsing the vectors. */
static long searches_partition(const vd_router *r, const vd_rt_call *call, vd_rt_shape shape,
                               const vd_generation *g)
{
    if (!call->body)
        return -1;
    tenant_walk w = {.r = r, .g = g, .p = -1, .one = false};
    if (shape == VD_RT_HITS || shape == VD_RT_POINTS) {
        walk_search(call->body, call->body_len, &w);
    } else {
        const char *at;
        size_t n;
        if (!vd_rt_json_member(call->body, call->body_len, "searches", &at, &n) ||
            !vd_rt_json_elements(at, n, walk_search, &w))
            return -1;
    }
    return w.one ? w.p : -1;
}

/* A number member of the JSON object in text (as vd_rt_number_or), unparsed around it. */
static long text_number_or(const char *text, size_t len, const char *key, long def)
{
    const char *at;
    size_t n;
    char num[32];
    if (!vd_rt_json_member(text, len, key, &at, &n) || n >= sizeof num)
        return def;
    memcpy(num, at, n);
    num[n] = 0;
    char *end;
    long v = strtol(num, &end, 10);
    return *end || v < 0 || v > 1000000000 ? def : v;
}

/* The collection's score order and metric, from a replica's collection
 * info, cached for a minute; -1 = unknown (answered). */
static int facts_of(vd_router *r, vd_rt_call *call, const vd_generation *g, const char *collection,
                    collection_facts *out)
{
    double now = vd_now_s();
    pthread_mutex_lock(&r->orders_lock);
    for (size_t i = 0; i < r->n_orders; i++)
        if (strcmp(r->orders[i].collection, collection) == 0 && now - r->orders[i].at < ORDER_TTL_S) {
            *out = r->orders[i];
            pthread_mutex_unlock(&r->orders_lock);
            return 0;
        }
    pthread_mutex_unlock(&r->orders_lock);
    char path[300];
    snprintf(path, sizeof path, "/collections/%s", collection);
    const char *bodies[1] = {NULL};
    size_t lens[1] = {0};
    vd_up_req q = {0};
    bool qd = call->qdrant;
    call->qdrant = false; /* the native info has score_order */
    /* any partition that answers knows (one that is down must not stop ?allow_partial) */
    for (uint32_t p = 0; p < g->n_partitions && (p == 0 || vd_rt_retryable(q.status)); p++) {
        free(q.answer);
        q = (vd_up_req){0};
        vd_rt_ask_partitions(&r->asked, call, g, &p, 1, "GET", path, "", bodies, lens, &q);
    }
    call->qdrant = qd;
    cJSON *doc = q.status == 200 ? cJSON_ParseWithLength(q.answer, q.answer_len) : NULL;
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "result");
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(res, "score_order");
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(res, "metric");
    int h = cJSON_IsString(o) ? strcmp(o->valuestring, "higher_is_better") == 0 : -1;
    bool l2 = cJSON_IsString(metric) && strcmp(metric->valuestring, "l2") == 0;
    cJSON_Delete(doc);
    if (h < 0) {
        if (q.status >= 400 && q.status < 500 && q.status != 0)
            vd_rt_pass(call, &q);
        else
            vd_rt_fail(call, VD_E_PARTITION_UNAVAILABLE,
                       "cannot learn collection %s's score order: no partition answered (%s)", collection,
                       q.status ? "no score_order" : q.error);
        free(q.answer);
        return -1;
    }
    free(q.answer);
    pthread_mutex_lock(&r->orders_lock);
    size_t slot = r->n_orders < ORDERS_MAX ? r->n_orders++ : 0;
    for (size_t i = 0; i < r->n_orders; i++)
        if (strcmp(r->orders[i].collection, collection) == 0)
            slot = i;
    collection_facts *f = &r->orders[slot];
    snprintf(f->collection, sizeof f->collection, "%s", collection);
    f->higher_better = h;
    f->l2 = l2;
    f->at = now;
    *out = *f;
    pthread_mutex_unlock(&r->orders_lock);
    return 0;
}

/* The hit list of search i in an answer of this shape (borrowed). */
static cJSON *hits_of(cJSON *doc, vd_rt_shape shape, int i)
{
    cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "result");
    switch (shape) {
    case VD_RT_HITS:
        return res;
    case VD_RT_HITS_BATCH:
        return cJSON_GetArrayItem(res, i);
    case VD_RT_POINTS:
        return cJSON_GetObjectItemCaseSensitive(res, "points");
    case VD_RT_POINTS_BATCH:
        return cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(res, i), "points");
    }
    return NULL;
}

static void set_hits(cJSON *doc, vd_rt_shape shape, int i, cJSON *hits)
{
    cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "result");
    switch (shape) {
    case VD_RT_HITS:
        cJSON_ReplaceItemInObjectCaseSensitive(doc, "result", hits);
        break;
    case VD_RT_HITS_BATCH:
        cJSON_ReplaceItemInArray(res, i, hits);
        break;
    case VD_RT_POINTS:
        cJSON_ReplaceItemInObjectCaseSensitive(res, "points", hits);
        break;
    case VD_RT_POINTS_BATCH:
        cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(res, i), "points", hits);
        break;
    }
}

/* How one search of a fan-out is put back together. */
typedef struct fan_search {
    long offset, limit;
    bool mmr;          /* re-ranked by MMR here, over every partition's candidates */
    float diversity;
    long fetch;        /* the candidates each partition is asked for */
    bool keep_vectors; /* the client asked for the vectors (MMR needs them anyway) */
} fan_search;

/* A search every partition must answer: each asked for offset + limit hits
 * from 0 (Qdrant), an MMR query for its candidates with their vectors; and
 * why the router cannot merge it, if it cannot. */
static const char *prepare_fanout(bool qdrant, cJSON *s, fan_search *f, bool *changed)
{
    *f = (fan_search){0};
    if (!qdrant) {
        f->limit = vd_rt_number_or(s, "k", vd_rt_number_or(s, "limit", 10));
        return NULL;
    }
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(s, "query");
    if (cJSON_GetObjectItemCaseSensitive(s, "prefetch"))
        return "a query with prefetch (fusion or re-ranking) ranks within one partition";
    if (cJSON_GetObjectItemCaseSensitive(s, "order_by") || cJSON_GetObjectItemCaseSensitive(s, "group_by"))
        return "order_by and group_by need one partition";
    if (query && !cJSON_IsArray(query) &&
        !(cJSON_IsObject(query) && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(query, "nearest"))))
        return "a query by point id, recommend or fusion needs the point's partition";
    f->offset = vd_rt_number_or(s, "offset", 0);
    f->limit = vd_rt_number_or(s, "limit", 10);
    const cJSON *mmr = cJSON_GetObjectItemCaseSensitive(query, "mmr");
    if (mmr && !cJSON_IsNull(mmr)) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(mmr, "diversity");
        f->mmr = true;
        f->diversity = cJSON_IsNumber(d) ? (float)d->valuedouble : 0.5f;
        f->fetch = vd_rt_number_or(mmr, "candidates_limit", 0);
        f->fetch = f->fetch > f->offset + f->limit ? f->fetch : f->offset + f->limit;
        f->keep_vectors = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "with_vector"));
        /* each partition: its nearest candidates with their vectors; the MMR is the router's */
        cJSON_ReplaceItemInObjectCaseSensitive(
            s, "query", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(query, "nearest"), true));
        cJSON_DeleteItemFromObjectCaseSensitive(s, "with_vector");
        cJSON_AddTrueToObject(s, "with_vector");
    } else {
        f->fetch = f->offset + f->limit;
        if (!cJSON_GetObjectItemCaseSensitive(s, "offset"))
            return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(s, "offset");
    cJSON_DeleteItemFromObjectCaseSensitive(s, "limit");
    cJSON_AddNumberToObject(s, "limit", (double)f->fetch);
    *changed = true;
    return NULL;
}

/* The hits of one search of a fan-out, from the partitions' lists. */
static cJSON *merge_search(cJSON *const *lists, size_t n, const collection_facts *facts, const fan_search *f)
{
    if (!f->mmr)
        return vd_rt_merge_hits(lists, n, facts->higher_better, (size_t)f->offset, (size_t)f->limit);
    cJSON *hits = vd_rt_merge_hits(lists, n, facts->higher_better, 0, (size_t)f->fetch);
    if (!hits)
        return NULL;
    vd_rt_mmr(hits, facts->l2, f->diversity, (size_t)(f->offset + f->limit));
    for (long k = 0; k < f->offset && hits->child; k++)
        cJSON_DeleteItemFromArray(hits, 0);
    for (cJSON *h = f->keep_vectors ? NULL : hits->child; h; h = h->next)
        cJSON_DeleteItemFromObjectCaseSensitive(h, "vector");
    return hits;
}

static bool query_flag(const char *query, const char *name)
{
    const char *v;
    size_t n;
    return vd_rt_query_arg(query, name, &v, &n) && n == 4 && strncmp(v, "true", 4) == 0;
}

/* The query without name=…. */
static void drop_arg(const char *query, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name), len = 0;
    out[0] = 0;
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (!(strncmp(p, name, n) == 0 && (p[n] == '=' || p[n] == '&' || p[n] == 0)) && len + seg + 2 < cap) {
            if (len)
                out[len++] = '&';
            memcpy(out + len, p, seg);
            len += seg;
            out[len] = 0;
        }
        p = amp ? amp + 1 : NULL;
    }
}

void vd_rt_op_search(vd_router *r, vd_rt_call *call, const vd_generation *g, vd_rt_shape shape)
{
    long p = searches_partition(r, call, shape, g);
    if (p >= 0) {
        vd_rt_op_tenant(r, call, g, (uint32_t)p);
        return;
    }
    /* A native search goes to the partitions as written: only its k is read. */
    bool as_written = shape == VD_RT_HITS && !call->qdrant;
    cJSON *body = NULL;
    if (!as_written && !(body = vd_rt_parse_body(call)))
        return;
    bool batch = shape == VD_RT_HITS_BATCH || shape == VD_RT_POINTS_BATCH;
    bool changed = false; /* the body the partitions get differs from the client's */
    cJSON *searches = batch ? cJSON_GetObjectItemCaseSensitive(body, "searches") : NULL;
    int n = batch ? cJSON_GetArraySize(searches) : 1;
    fan_search *plan = calloc((size_t)(n ? n : 1), sizeof *plan);
    char collection[200], query[1024];
    vd_rt_collection_of(call->path, collection, sizeof collection);
    bool partial = query_flag(call->query, "allow_partial");
    drop_arg(call->query, "allow_partial", query, sizeof query);
    const char *orig_query = call->query;
    char *text = NULL;
    vd_up_req *q = NULL;
    cJSON **docs = calloc(g->n_partitions, sizeof *docs);
    cJSON **lists = calloc(g->n_partitions, sizeof *lists);
    if (!plan || !docs || !lists) {
        vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if (as_written)
        plan[0].limit = call->body ? text_number_or(call->body, call->body_len, "k",
                                                    text_number_or(call->body, call->body_len, "limit", 10))
                                   : 10;
    for (int i = 0; !as_written && i < n; i++) {
        cJSON *s = batch ? cJSON_GetArrayItem(searches, i) : body;
        const char *why = cJSON_IsObject(s) ? prepare_fanout(call->qdrant, s, &plan[i], &changed) : NULL;
        if (why) {
            vd_rt_fail(call, VD_E_INVALID_REQUEST,
                       "%s%.0d: %s; filter it to one tenant (a \"must\" condition {\"key\": \"%s\", "
                       "\"match\": {\"value\": …}})", batch ? "searches " : "search", i, why,
                       r->tenant_field);
            goto done;
        }
    }
    collection_facts facts;
    if (facts_of(r, call, g, collection, &facts) < 0)
        goto done;
    /* Sent as the client wrote it unless an offset had to become part of the
     * limit: printing 1536 numbers again costs more than the rest. */
    text = changed ? cJSON_PrintUnformatted(body) : NULL;
    if (changed && !text) {
        vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    size_t missing = 0;
    call->query = query;
    q = vd_rt_ask_all(&r->asked, call, g, text ? text : call->body, text ? strlen(text) : call->body_len, partial, &missing);
    call->query = orig_query;
    if (!q)
        goto done;
    cJSON *first = NULL; /* the answer the merged lists go into */
    for (uint32_t k = 0; k < g->n_partitions; k++) {
        if (q[k].status != 200)
            continue; /* a missing partition (allow_partial) */
        if (!(docs[k] = vd_rt_parse_answer(call, &q[k])))
            goto done;
        first = first ? first : docs[k];
    }
    for (int i = 0; i < n; i++) {
        for (uint32_t k = 0; k < g->n_partitions; k++)
            lists[k] = docs[k] ? hits_of(docs[k], shape, i) : NULL;
        cJSON *merged = merge_search(lists, g->n_partitions, &facts, &plan[i]);
        if (!merged) {
            vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        set_hits(first, shape, i, merged);
    }
    if (missing) {
        atomic_fetch_add(&r->partial_answers, 1);
        size_t len = (size_t)snprintf(call->extra_header, sizeof call->extra_header,
                                      "X-Vectord-Missing-Partitions: ");
        for (uint32_t k = 0; k < g->n_partitions && len < sizeof call->extra_header; k++)
            if (!docs[k])
                len += (size_t)snprintf(call->extra_header + len, sizeof call->extra_header - len, "%s%u",
                                        call->extra_header[len - 1] == ' ' ? "" : ",", k);
    }
    vd_rt_answer_json(call, first);
done:
    for (uint32_t k = 0; docs && k < g->n_partitions; k++)
        cJSON_Delete(docs[k]);
    if (q) {
        vd_up_reqs_free(q, g->n_partitions);
        free(q);
    }
    free(docs);
    free(lists);
    free(text);
    free(plan);
    cJSON_Delete(body);
}

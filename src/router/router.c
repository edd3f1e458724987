/*
 * router.c — see router.h. Each operation of route_table.h is a function
 * here; they share four ways of asking replicas:
 *   ask_partition   one replica of one partition, the next on no answer;
 *   ask_partitions  one replica of each partition at once, each retried on
 *                   the partition's next replica;
 *   ask_everyone    every replica of the given partitions at once (writes:
 *                   replicas do not copy each other's API writes);
 *   and the answers are combined by answers.c.
 * A replica that gives no answer (or 502/503) is marked not ready until the
 * prober sees it ready again, so the next requests go to another.
 *
 * Locking: orders_lock guards the score-order cache; the counters are atomics.
 */
#include "router/router.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/answers.h"
#include "router/route_table.h"
#include "util/clock.h"
#include "util/partition.h"
#include "vectord/error.h"

#define ORDERS_MAX 64
#define ORDER_TTL_S 60.0
#define STATUS_CLASSES 5 /* 1xx … 5xx */

/* What the router must know of a collection to merge its searches. */
typedef struct collection_facts {
    char collection[200];
    bool higher_better; /* score_order */
    bool l2;            /* metric l2 (MMR's relevance and similarity) */
    double at;
} collection_facts;

struct vd_router {
    char *tenant_field;
    long timeout_ms;
    vd_topology *topo;
    pthread_mutex_t orders_lock; /* guards orders, n_orders */
    collection_facts orders[ORDERS_MAX];
    size_t n_orders;
    size_t n_routes;
    _Atomic uint64_t *requests; /* (n_routes + 1) × STATUS_CLASSES: route, status class */
    _Atomic uint64_t upstream_failures, retries, partial_answers, fanouts, tenant_routed;
};

/* ---- answers and errors ---------------------------------------------------------- */

void vd_rt_call_free(vd_rt_call *call)
{
    free(call->answer);
    call->answer = NULL;
    call->answer_len = 0;
}

static void answer_text(vd_rt_call *call, int status, char *text, const char *type)
{
    vd_rt_call_free(call);
    call->status = status;
    call->answer = text;
    call->answer_len = text ? strlen(text) : 0;
    call->content_type = type;
}

void vd_rt_fail(vd_rt_call *call, int err, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *doc = cJSON_CreateObject();
    if (call->qdrant) { /* Qdrant's shape, the code first (as vectord's Qdrant listener does) */
        char both[900];
        snprintf(both, sizeof both, "%s: %s", vd_err_code(err), msg);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(doc, "status"), "error", both);
        cJSON_AddNumberToObject(doc, "time", vd_now_s() - call->started);
    } else {
        cJSON *e = cJSON_AddObjectToObject(doc, "error");
        cJSON_AddStringToObject(e, "code", vd_err_code(err));
        cJSON_AddStringToObject(e, "message", msg);
        cJSON_AddStringToObject(e, "request_id", call->request_id);
    }
    answer_text(call, vd_err_status(err), cJSON_PrintUnformatted(doc), "application/json");
    cJSON_Delete(doc);
}

/* Takes over a replica's answer as the call's. */
static void pass(vd_rt_call *call, vd_up_req *q)
{
    vd_rt_call_free(call);
    call->status = (int)q->status;
    call->answer = q->answer;
    call->answer_len = q->answer_len;
    call->content_type = "application/json";
    q->answer = NULL;
}

static void answer_json(vd_rt_call *call, cJSON *doc)
{
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    if (!text)
        vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
    else
        answer_text(call, 200, text, "application/json");
}

/* ---- asking replicas --------------------------------------------------------------- */

static bool retryable(long status) { return status == 0 || status == 502 || status == 503; }

static void set_url(vd_up_req *q, const vd_replica *x, bool qdrant, const char *path, const char *query)
{
    snprintf(q->url, sizeof q->url, "%s%s%s%s", qdrant ? x->qdrant : x->native, path,
             *query ? "?" : "", query);
}

static void prepare(vd_router *r, vd_rt_call *call, vd_up_req *q, const char *method, const char *body,
                    size_t len)
{
    (void)r;
    *q = (vd_up_req){.method = method, .body = body, .body_len = len, .headers = call->headers,
                     .timeout_ms = call->timeout_ms};
}

static void note_failure(vd_router *r, vd_replica *x, const vd_up_req *q)
{
    if (!retryable(q->status))
        return;
    atomic_fetch_add(&r->upstream_failures, 1);
    vd_replica_failed(x);
}

/* One replica of each listed partition at once, each retried on its
 * partition's next replicas while it gets no answer. out[i] answers
 * parts[i]; *failed_url names the last replica that gave none. */
static void ask_partitions(vd_router *r, vd_rt_call *call, const vd_generation *g, const uint32_t *parts,
                           size_t n, const char *method, const char *path, const char *query,
                           const char *const *bodies, const size_t *lens, vd_up_req *out)
{
    vd_replica *(*cands)[VD_REPLICAS_MAX] = calloc(n ? n : 1, sizeof *cands);
    uint32_t *n_cands = calloc(n ? n : 1, sizeof *n_cands), *tried = calloc(n ? n : 1, sizeof *tried);
    size_t *todo = calloc(n ? n : 1, sizeof *todo);
    vd_up_req *round = calloc(n ? n : 1, sizeof *round);
    if (!cands || !n_cands || !tried || !todo || !round) {
        for (size_t i = 0; i < n; i++)
            snprintf(out[i].error, sizeof out[i].error, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        n_cands[i] = vd_generation_candidates(g, parts[i], cands[i]);
        prepare(r, call, &out[i], method, bodies[i], lens[i]);
    }
    for (int attempt = 0;; attempt++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            bool pending = attempt == 0 || (retryable(out[i].status) && tried[i] < n_cands[i]);
            if (!pending || tried[i] >= n_cands[i])
                continue;
            prepare(r, call, &round[k], method, bodies[i], lens[i]);
            set_url(&round[k], cands[i][tried[i]], call->qdrant, path, query);
            todo[k++] = i;
        }
        if (!k)
            break;
        if (attempt)
            atomic_fetch_add(&r->retries, k);
        vd_upstream_run(call->up, round, k);
        for (size_t j = 0; j < k; j++) {
            size_t i = todo[j];
            note_failure(r, cands[i][tried[i]], &round[j]);
            free(out[i].answer);
            out[i] = round[j];
            snprintf(out[i].url, sizeof out[i].url, "%s", round[j].url);
            round[j].answer = NULL;
            tried[i]++;
        }
    }
done:
    free(cands);
    free(n_cands);
    free(tried);
    free(todo);
    free(round);
}

static void ask_partition(vd_router *r, vd_rt_call *call, const vd_generation *g, uint32_t p,
                          const char *method, const char *body, size_t len, vd_up_req *out)
{
    const char *bodies[1] = {body};
    size_t lens[1] = {len};
    ask_partitions(r, call, g, &p, 1, method, call->path, call->query, bodies, lens, out);
}

/* Every replica of the partitions to send to (send[p]) at once, with
 * bodies[p] (NULL = none); *out (n entries) and *where (their partitions)
 * are allocated. */
static size_t ask_everyone(vd_router *r, vd_rt_call *call, const vd_generation *g, const bool *send,
                           char *const *bodies, const size_t *lens, vd_up_req **out, uint32_t **where)
{
    size_t n = 0;
    for (uint32_t p = 0; p < g->n_partitions; p++)
        n += send[p] ? g->counts[p] : 0;
    *out = calloc(n ? n : 1, sizeof **out);
    *where = calloc(n ? n : 1, sizeof **where);
    if (!*out || !*where)
        return 0;
    size_t k = 0;
    for (uint32_t p = 0; p < g->n_partitions; p++)
        for (uint32_t i = 0; send[p] && i < g->counts[p]; i++, k++) {
            prepare(r, call, &(*out)[k], call->method, bodies[p], lens[p]);
            set_url(&(*out)[k], vd_generation_replica(g, p, i), call->qdrant, call->path, call->query);
            (*where)[k] = p;
        }
    vd_upstream_run(call->up, *out, n);
    k = 0;
    for (uint32_t p = 0; p < g->n_partitions; p++)
        for (uint32_t i = 0; send[p] && i < g->counts[p]; i++, k++)
            note_failure(r, vd_generation_replica(g, p, i), &(*out)[k]);
    return n;
}

/* When some partition gave no answer: a 503 naming them (true), else false. */
static bool unavailable(vd_rt_call *call, const uint32_t *parts, const vd_up_req *q, size_t n)
{
    char names[400] = "";
    size_t len = 0;
    const vd_up_req *last = NULL;
    for (size_t i = 0; i < n; i++)
        if (retryable(q[i].status)) {
            last = &q[i];
            int w = snprintf(names + len, sizeof names - len, "%s%u", len ? ", " : "", parts[i]);
            if (w > 0 && (size_t)w < sizeof names - len)
                len += (size_t)w;
        }
    if (!last)
        return false;
    vd_rt_fail(call, VD_E_PARTITION_UNAVAILABLE,
               "no replica of partition %s answered (last: %s: %s%s); retry, or add "
               "?allow_partial=true to a search to accept the other partitions' hits",
               names, last->url, last->status ? "status " : "",
               last->status ? (last->status == 502 ? "502" : "503") : last->error);
    return true;
}

/* The first answer of q that is neither 2xx nor "no answer": the request's
 * own fault, the same on every replica; passed through (true). */
static bool refused(vd_rt_call *call, vd_up_req *q, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (q[i].status >= 300 && !retryable(q[i].status)) {
            pass(call, &q[i]);
            return true;
        }
    return false;
}

static cJSON *parse_answer(vd_rt_call *call, vd_up_req *q)
{
    cJSON *doc = q->answer ? cJSON_ParseWithLength(q->answer, q->answer_len) : NULL;
    if (!doc)
        vd_rt_fail(call, VD_E_UPSTREAM_ERROR, "%s answered %ld with a body that is not JSON", q->url,
                   q->status);
    return doc;
}

static void all_partitions(const vd_generation *g, uint32_t *parts)
{
    for (uint32_t p = 0; p < g->n_partitions; p++)
        parts[p] = p;
}

/* ---- reading requests -------------------------------------------------------------- */

static cJSON *parse_body(vd_rt_call *call)
{
    if (!call->body || !call->body_len) {
        vd_rt_fail(call, VD_E_INVALID_REQUEST, "request body must be a JSON object");
        return NULL;
    }
    cJSON *doc = cJSON_ParseWithLength(call->body, call->body_len);
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        vd_rt_fail(call, VD_E_MALFORMED_JSON, "request body is not a JSON object");
        return NULL;
    }
    return doc;
}

/* The {c} of /collections/{c}/…, as sent. */
static void collection_of(const char *path, char *out, size_t cap)
{
    const char *s = path + strlen("/collections/");
    size_t n = strcspn(s, "/");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
}

static uint32_t tenant_partition(const char *text, const vd_generation *g)
{
    return vd_partition_of(text, strlen(text), g->n_partitions);
}

/* The partition all the call's searches name a tenant of, or -1. */
static long searches_partition(vd_router *r, const cJSON *body, vd_rt_shape shape, const vd_generation *g)
{
    char t[VD_TENANT_TEXT_MAX];
    if (shape == VD_RT_HITS || shape == VD_RT_POINTS)
        return vd_rt_filter_tenant(cJSON_GetObjectItemCaseSensitive(body, "filter"), r->tenant_field, t,
                                   sizeof t)
                   ? (long)tenant_partition(t, g)
                   : -1;
    long p = -1;
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(body, "searches"))
    {
        if (!vd_rt_filter_tenant(cJSON_GetObjectItemCaseSensitive(s, "filter"), r->tenant_field, t, sizeof t))
            return -1;
        long q = (long)tenant_partition(t, g);
        if (p >= 0 && q != p)
            return -1;
        p = q;
    }
    return p;
}

/* ---- score order ---------------------------------------------------------------- */

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
    uint32_t p0 = 0;
    const char *bodies[1] = {NULL};
    size_t lens[1] = {0};
    vd_up_req q = {0};
    bool qd = call->qdrant;
    call->qdrant = false; /* the native info has score_order */
    ask_partitions(r, call, g, &p0, 1, "GET", path, "", bodies, lens, &q);
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
            pass(call, &q);
        else
            vd_rt_fail(call, VD_E_PARTITION_UNAVAILABLE,
                       "cannot learn collection %s's score order from partition 0 (%s)", collection,
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

/* ---- operations -------------------------------------------------------------- */

static void op_any(vd_router *r, vd_rt_call *call, const vd_generation *g)
{
    vd_up_req q = {0};
    ask_partition(r, call, g, 0, call->method, call->body, call->body_len, &q);
    uint32_t p0 = 0;
    if (!unavailable(call, &p0, &q, 1))
        pass(call, &q);
    free(q.answer);
}

static void op_tenant(vd_router *r, vd_rt_call *call, const vd_generation *g, uint32_t p)
{
    atomic_fetch_add(&r->tenant_routed, 1);
    vd_up_req q = {0};
    ask_partition(r, call, g, p, call->method, call->body, call->body_len, &q);
    if (!unavailable(call, &p, &q, 1))
        pass(call, &q);
    free(q.answer);
}

/* One replica of every partition, the same request; NULL (answered) unless
 * every partition answered 200 (or allow_missing: some gave no answer). */
static vd_up_req *ask_all(vd_router *r, vd_rt_call *call, const vd_generation *g, const char *body,
                          size_t len, bool allow_missing, size_t *missing)
{
    uint32_t P = g->n_partitions;
    vd_up_req *q = calloc(P, sizeof *q);
    uint32_t *parts = calloc(P, sizeof *parts);
    const char **bodies = calloc(P, sizeof *bodies);
    size_t *lens = calloc(P, sizeof *lens);
    if (!q || !parts || !bodies || !lens) {
        free(q);
        q = NULL;
        vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    atomic_fetch_add(&r->fanouts, 1);
    all_partitions(g, parts);
    for (uint32_t p = 0; p < P; p++) {
        bodies[p] = body;
        lens[p] = len;
    }
    ask_partitions(r, call, g, parts, P, call->method, call->path, call->query, bodies, lens, q);
    *missing = 0;
    for (uint32_t p = 0; p < P; p++)
        *missing += retryable(q[p].status);
    bool ok = !refused(call, q, P) && (allow_missing ? *missing < P : !unavailable(call, parts, q, P));
    if (ok && *missing == P)
        ok = !unavailable(call, parts, q, P);
    if (!ok) {
        vd_up_reqs_free(q, P);
        free(q);
        q = NULL;
    }
done:
    free(parts);
    free(bodies);
    free(lens);
    return q;
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

static long number_or(const cJSON *o, const char *name, long def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9 ? (long)v->valuedouble : def;
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
        f->limit = number_or(s, "k", number_or(s, "limit", 10));
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
    f->offset = number_or(s, "offset", 0);
    f->limit = number_or(s, "limit", 10);
    const cJSON *mmr = cJSON_GetObjectItemCaseSensitive(query, "mmr");
    if (mmr && !cJSON_IsNull(mmr)) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(mmr, "diversity");
        f->mmr = true;
        f->diversity = cJSON_IsNumber(d) ? (float)d->valuedouble : 0.5f;
        f->fetch = number_or(mmr, "candidates_limit", 0);
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
    size_t n = strlen(name);
    for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == '=' && strncmp(p + n + 1, "true", 4) == 0 &&
            (p[n + 5] == 0 || p[n + 5] == '&'))
            return true;
    return false;
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

static void op_search(vd_router *r, vd_rt_call *call, const vd_generation *g, vd_rt_shape shape)
{
    cJSON *body = parse_body(call);
    if (!body)
        return;
    long p = searches_partition(r, body, shape, g);
    if (p >= 0) {
        cJSON_Delete(body);
        op_tenant(r, call, g, (uint32_t)p);
        return;
    }
    bool batch = shape == VD_RT_HITS_BATCH || shape == VD_RT_POINTS_BATCH;
    bool changed = false; /* the body the partitions get differs from the client's */
    cJSON *searches = batch ? cJSON_GetObjectItemCaseSensitive(body, "searches") : NULL;
    int n = batch ? cJSON_GetArraySize(searches) : 1;
    fan_search *plan = calloc((size_t)(n ? n : 1), sizeof *plan);
    char collection[200], query[1024];
    collection_of(call->path, collection, sizeof collection);
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
    for (int i = 0; i < n; i++) {
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
    q = ask_all(r, call, g, text ? text : call->body, text ? strlen(text) : call->body_len, partial, &missing);
    call->query = orig_query;
    if (!q)
        goto done;
    cJSON *first = NULL; /* the answer the merged lists go into */
    for (uint32_t k = 0; k < g->n_partitions; k++) {
        if (q[k].status != 200)
            continue; /* a missing partition (allow_partial) */
        if (!(docs[k] = parse_answer(call, &q[k])))
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
    answer_json(call, first);
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

/* Combines the write answers (one per replica, where[i] its partition):
 * the first refusal, or 503 when some replica gave no answer, or the first
 * answer with each partition's counts summed (native). */
static void combine_writes(vd_rt_call *call, const vd_generation *g, vd_up_req *q, const uint32_t *where,
                           size_t n, const char *label, size_t n_points)
{
    if (refused(call, q, n))
        return;
    size_t failed = 0;
    for (size_t i = 0; i < n; i++)
        failed += retryable(q[i].status);
    if (failed) {
        const vd_up_req *f = NULL;
        for (size_t i = 0; i < n && !f; i++)
            if (retryable(q[i].status))
                f = &q[i];
        vd_rt_fail(call, VD_E_PARTITION_UNAVAILABLE,
                   "the write reached %zu of %zu replicas; %s gave no answer (%s). Send it again: "
                   "upserts, deletes and payload edits give the same result when repeated",
                   n - failed, n, f->url, f->status ? "status 503" : f->error);
        return;
    }
    if (!n) {
        vd_rt_fail(call, VD_E_INTERNAL, "nothing to send");
        return;
    }
    cJSON *first = parse_answer(call, &q[0]);
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
        if (strcmp(label, "points_vectors") == 0 && cJSON_IsNumber(nf) && cJSON_IsNumber(up))
            cJSON_SetNumberValue(nf, (double)n_points - up->valuedouble); /* found in one partition each */
    }
    (void)g;
    answer_json(call, first);
    cJSON_Delete(first);
}

static void op_broadcast(vd_router *r, vd_rt_call *call, const vd_generation *g, const char *label)
{
    uint32_t P = g->n_partitions;
    char **bodies = calloc(P, sizeof *bodies);
    size_t *lens = calloc(P, sizeof *lens);
    bool *send = calloc(P, sizeof *send);
    vd_up_req *q = NULL;
    uint32_t *where = NULL;
    if (!bodies || !lens || !send) {
        vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (uint32_t p = 0; p < P; p++) {
        bodies[p] = (char *)call->body;
        lens[p] = call->body_len;
        send[p] = true;
    }
    size_t n_points = 0;
    if (strcmp(label, "points_vectors") == 0 && call->body) {
        cJSON *b = cJSON_ParseWithLength(call->body, call->body_len);
        n_points = (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(b, "points"));
        cJSON_Delete(b);
    }
    size_t n = ask_everyone(r, call, g, send, bodies, lens, &q, &where);
    combine_writes(call, g, q, where, n, label, n_points);
    vd_up_reqs_free(q, n);
done:
    free(q);
    free(where);
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

static void op_upsert(vd_router *r, vd_rt_call *call, const vd_generation *g, const char *label)
{
    cJSON *body = parse_body(call);
    if (!body)
        return;
    uint32_t P = g->n_partitions;
    cJSON *points = cJSON_GetObjectItemCaseSensitive(body, "points");
    cJSON **parts = calloc(P, sizeof *parts);
    char **bodies = calloc(P, sizeof *bodies);
    size_t *lens = calloc(P, sizeof *lens);
    vd_up_req *q = NULL;
    uint32_t *where = NULL;
    if (!parts || !bodies || !lens) {
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
        uint32_t p = null ? 0 : tenant_partition(t, g);
        if (!parts[p] && !(parts[p] = cJSON_CreateArray())) {
            cJSON_Delete(pt);
            vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        cJSON_AddItemToArray(parts[p], pt);
        i++;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(body, "points");
    for (uint32_t p = 0; p < P; p++) {
        if (!parts[p])
            continue;
        bodies[p] = body_with_points(body, parts[p]);
        if (!bodies[p]) {
            vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        lens[p] = strlen(bodies[p]);
    }
    if (!n_points) { /* the replicas say what they say of an empty batch */
        op_any(r, call, g);
        goto done;
    }
    bool send[VD_PARTITIONS_MAX];
    for (uint32_t p = 0; p < P; p++)
        send[p] = bodies[p] != NULL;
    size_t n = ask_everyone(r, call, g, send, bodies, lens, &q, &where);
    combine_writes(call, g, q, where, n, label, n_points);
    vd_up_reqs_free(q, n);
done:
    for (uint32_t p = 0; parts && p < P; p++)
        cJSON_Delete(parts[p]);
    for (uint32_t p = 0; bodies && p < P; p++)
        free(bodies[p]);
    free(parts);
    free(bodies);
    free(lens);
    free(q);
    free(where);
    cJSON_Delete(body);
}

/* An id as comparable text (UUIDs in any case are one id). */
static void id_text(const cJSON *id, char *out, size_t cap)
{
    if (cJSON_IsNumber(id)) {
        snprintf(out, cap, "#%.0f", id->valuedouble);
        return;
    }
    snprintf(out, cap, "%s", cJSON_IsString(id) ? id->valuestring : "");
    for (char *c = out; *c; c++)
        *c = (*c >= 'A' && *c <= 'F') ? (char)(*c - 'A' + 'a') : *c;
}

/* Qdrant edits that name points: each partition gets its own. */
static void op_by_ids(vd_router *r, vd_rt_call *call, const vd_generation *g, const char *label)
{
    cJSON *body = parse_body(call);
    if (!body)
        return;
    cJSON *points = cJSON_GetObjectItemCaseSensitive(body, "points");
    if (!cJSON_IsArray(points)) { /* by filter: every partition edits its own matches */
        cJSON_Delete(body);
        op_broadcast(r, call, g, label);
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
    collection_of(call->path, collection, sizeof collection);
    snprintf(path, sizeof path, "/collections/%s/points", collection);
    uint32_t *all = calloc(P, sizeof *all);
    const char **bodies = calloc(P, sizeof *bodies);
    size_t *lens = calloc(P, sizeof *lens);
    vd_up_req *found = calloc(P, sizeof *found);
    int *home = calloc((size_t)(n_ids ? n_ids : 1), sizeof *home);
    cJSON **parts = calloc(P, sizeof *parts);
    char **texts = calloc(P, sizeof *texts);
    size_t *tlens = calloc(P, sizeof *tlens);
    vd_up_req *q = NULL;
    uint32_t *where = NULL;
    if (!ask_text || !all || !bodies || !lens || !found || !home || !parts || !texts || !tlens) {
        vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    all_partitions(g, all);
    for (uint32_t p = 0; p < P; p++) {
        bodies[p] = ask_text;
        lens[p] = strlen(ask_text);
    }
    ask_partitions(r, call, g, all, P, "POST", path, "", bodies, lens, found);
    if (refused(call, found, P) || unavailable(call, all, found, P))
        goto done;
    for (int i = 0; i < n_ids; i++)
        home[i] = -1;
    for (uint32_t p = 0; p < P; p++) {
        cJSON *doc = cJSON_ParseWithLength(found[p].answer, found[p].answer_len);
        const cJSON *hit;
        cJSON_ArrayForEach(hit, cJSON_GetObjectItemCaseSensitive(doc, "result"))
        {
            char a[300], b[300];
            id_text(cJSON_GetObjectItemCaseSensitive(hit, "id"), a, sizeof a);
            int i = 0;
            cJSON_ArrayForEach(pt, points)
            {
                const cJSON *id = cJSON_IsObject(pt) ? cJSON_GetObjectItemCaseSensitive(pt, "id") : pt;
                id_text(id, b, sizeof b);
                if (home[i] < 0 && strcmp(a, b) == 0)
                    home[i] = (int)p;
                i++;
            }
        }
        cJSON_Delete(doc);
    }
    for (int i = 0; i < n_ids; i++)
        if (home[i] < 0) {
            char t[300];
            cJSON *id = cJSON_GetArrayItem(points, i);
            id = cJSON_IsObject(id) ? cJSON_GetObjectItemCaseSensitive(id, "id") : id;
            char *s = cJSON_PrintUnformatted(id);
            snprintf(t, sizeof t, "%s", s ? s : "?");
            free(s);
            vd_rt_fail(call, VD_E_POINT_NOT_FOUND, "No point with id %s found", t);
            goto done;
        }
    for (int i = 0; i < n_ids; i++) {
        uint32_t p = (uint32_t)home[i];
        if (!parts[p] && !(parts[p] = cJSON_CreateArray())) {
            vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        cJSON_AddItemToArray(parts[p], cJSON_Duplicate(cJSON_GetArrayItem(points, i), true));
    }
    cJSON_DeleteItemFromObjectCaseSensitive(body, "points");
    for (uint32_t p = 0; p < P; p++) {
        if (!parts[p])
            continue;
        texts[p] = body_with_points(body, parts[p]);
        tlens[p] = texts[p] ? strlen(texts[p]) : 0;
    }
    bool send[VD_PARTITIONS_MAX];
    for (uint32_t p = 0; p < P; p++) {
        send[p] = parts[p] != NULL;
        if (send[p] && !texts[p]) {
            vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
    }
    size_t n = ask_everyone(r, call, g, send, texts, tlens, &q, &where);
    combine_writes(call, g, q, where, n, label, (size_t)n_ids);
    vd_up_reqs_free(q, n);
done:
    for (uint32_t p = 0; parts && p < P; p++)
        cJSON_Delete(parts[p]);
    for (uint32_t p = 0; texts && p < P; p++)
        free(texts[p]);
    if (found)
        vd_up_reqs_free(found, P);
    free(found);
    free(ask_text);
    free(all);
    free(bodies);
    free(lens);
    free(home);
    free(parts);
    free(texts);
    free(tlens);
    free(q);
    free(where);
    cJSON_Delete(body);
}

static void op_first_found(vd_router *r, vd_rt_call *call, const vd_generation *g)
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
    all_partitions(g, all);
    ask_partitions(r, call, g, all, P, call->method, call->path, call->query, bodies, lens, q);
    atomic_fetch_add(&r->fanouts, 1);
    for (uint32_t p = 0; p < P; p++)
        if (q[p].status == 200) {
            pass(call, &q[p]);
            goto done;
        }
    for (uint32_t p = 0; p < P; p++)
        if (q[p].status >= 300 && q[p].status != 404 && !retryable(q[p].status)) {
            pass(call, &q[p]);
            goto done;
        }
    if (!unavailable(call, all, q, P))
        pass(call, &q[0]); /* not found anywhere */
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
    cJSON *sorted = cJSON_CreateArray();
    const cJSON *want;
    char a[300], b[300];
    cJSON_ArrayForEach(want, ids)
    {
        id_text(want, a, sizeof a);
        for (cJSON *pt = list->child; pt; pt = pt->next) {
            id_text(cJSON_GetObjectItemCaseSensitive(pt, "id"), b, sizeof b);
            if (strcmp(a, b) == 0) {
                cJSON_AddItemToArray(sorted, cJSON_DetachItemViaPointer(list, pt));
                break;
            }
        }
    }
    cJSON *rest;
    while ((rest = list->child)) /* ids asked twice, or answered in another spelling */
        cJSON_AddItemToArray(sorted, cJSON_DetachItemViaPointer(list, rest));
    while ((rest = sorted ? sorted->child : NULL))
        cJSON_AddItemToArray(list, cJSON_DetachItemViaPointer(sorted, rest));
    cJSON_Delete(sorted);
}

/* RETRIEVE, COUNT, SCROLL and INFO over every partition. */
static void op_gather(vd_router *r, vd_rt_call *call, const vd_generation *g, vd_rt_op op)
{
    cJSON *body = NULL;
    if (op != VD_RT_INFO) {
        if (!(body = parse_body(call)))
            return;
        char t[VD_TENANT_TEXT_MAX];
        if (op != VD_RT_RETRIEVE &&
            vd_rt_filter_tenant(cJSON_GetObjectItemCaseSensitive(body, "filter"), r->tenant_field, t, sizeof t)) {
            cJSON_Delete(body);
            op_tenant(r, call, g, tenant_partition(t, g));
            return;
        }
    }
    size_t missing = 0;
    uint32_t P = g->n_partitions;
    vd_up_req *q = ask_all(r, call, g, call->body, call->body_len, false, &missing);
    cJSON **docs = calloc(P, sizeof *docs);
    cJSON **res = calloc(P, sizeof *res);
    if (!q || !docs || !res) {
        if (q && (!docs || !res))
            vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (uint32_t p = 0; p < P; p++) {
        if (!(docs[p] = parse_answer(call, &q[p])))
            goto done;
        res[p] = cJSON_GetObjectItemCaseSensitive(docs[p], "result");
    }
    static const char *const info_counts[] = {"points_count", "vectors_count", "indexed_vectors_count",
                                              NULL};
    static const char *const count[] = {"count", NULL};
    if (op == VD_RT_SCROLL) {
        const cJSON *ob = cJSON_GetObjectItemCaseSensitive(body, "order_by");
        const cJSON *dir = cJSON_GetObjectItemCaseSensitive(ob, "direction");
        size_t limit = (size_t)number_or(body, "limit", 10);
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
    answer_json(call, docs[0]);
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

static void op_tenant_only(vd_router *r, vd_rt_call *call, const vd_generation *g)
{
    cJSON *body = parse_body(call);
    if (!body)
        return;
    char t[VD_TENANT_TEXT_MAX];
    bool found = vd_rt_filter_tenant(cJSON_GetObjectItemCaseSensitive(body, "filter"), r->tenant_field, t,
                                     sizeof t);
    cJSON_Delete(body);
    if (found)
        op_tenant(r, call, g, tenant_partition(t, g));
    else
        vd_rt_fail(call, VD_E_INVALID_REQUEST,
                   "through the router, a shadow comparison must name one tenant (a \"must\" condition "
                   "{\"key\": \"%s\", \"match\": {\"value\": …}})", r->tenant_field);
}

/* ---- the router's own answers ------------------------------------------------ */

static void op_local(vd_router *r, vd_rt_call *call, const vd_rt_route *rt)
{
    const vd_generation *g = vd_topology_current(r->topo);
    if (strstr(rt->label, "readyz") && !vd_generation_ready(g)) {
        vd_rt_fail(call, VD_E_NOT_READY, "a partition has no ready replica");
        return;
    }
    if (strcmp(rt->label, "metrics") == 0) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f) {
            vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
            return;
        }
        fprintf(f, "# TYPE vectord_router_requests_total counter\n");
        size_t n;
        const vd_rt_route *routes = vd_rt_routes(&n);
        for (size_t i = 0; i <= n; i++)
            for (int c = 0; c < STATUS_CLASSES; c++) {
                uint64_t v = atomic_load(&r->requests[i * STATUS_CLASSES + (size_t)c]);
                if (v)
                    fprintf(f, "vectord_router_requests_total{route=\"%s\",status=\"%dxx\"} %lu\n",
                            i < n ? routes[i].label : "unmatched", c + 1, (unsigned long)v);
            }
        fprintf(f, "# TYPE vectord_router_upstream_failures_total counter\n"
                   "vectord_router_upstream_failures_total %lu\n"
                   "# TYPE vectord_router_retries_total counter\nvectord_router_retries_total %lu\n"
                   "# TYPE vectord_router_partial_answers_total counter\nvectord_router_partial_answers_total %lu\n"
                   "# TYPE vectord_router_fanouts_total counter\nvectord_router_fanouts_total %lu\n"
                   "# TYPE vectord_router_tenant_routed_total counter\nvectord_router_tenant_routed_total %lu\n"
                   "# TYPE vectord_router_switches_total counter\nvectord_router_switches_total %lu\n"
                   "# TYPE vectord_router_partitions gauge\nvectord_router_partitions %u\n"
                   "# TYPE vectord_router_replica_ready gauge\n",
                (unsigned long)atomic_load(&r->upstream_failures), (unsigned long)atomic_load(&r->retries),
                (unsigned long)atomic_load(&r->partial_answers), (unsigned long)atomic_load(&r->fanouts),
                (unsigned long)atomic_load(&r->tenant_routed),
                (unsigned long)vd_topology_switches(r->topo), g->n_partitions);
        const vd_generation *gens[2] = {g, vd_topology_next(r->topo)};
        for (int k = 0; k < 2; k++)
            for (uint32_t p = 0; gens[k] && p < gens[k]->n_partitions; p++)
                for (uint32_t i = 0; i < gens[k]->counts[p]; i++) {
                    vd_replica *x = vd_generation_replica(gens[k], p, i);
                    fprintf(f, "vectord_router_replica_ready{generation=\"%s\",partition=\"%u\",replica=\"%s\"} %d\n",
                            k ? "next" : "current", p, x->native, atomic_load(&x->ready) ? 1 : 0);
                }
        fclose(f);
        answer_text(call, 200, text, "text/plain; version=0.0.4");
        return;
    }
    if (call->qdrant) { /* Qdrant's probes answer plain text */
        answer_text(call, 200, strdup(strstr(rt->label, "readyz") ? "all shards are ready"
                                                                  : "healthz check passed"),
                    "text/plain");
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON *res = cJSON_AddObjectToObject(doc, "result");
    cJSON_AddStringToObject(res, "status", "ok");
    cJSON_AddStringToObject(res, "role", "router");
    cJSON_AddNumberToObject(res, "partitions", g->n_partitions);
    cJSON_AddBoolToObject(res, "repartitioning", vd_topology_next(r->topo) != NULL);
    cJSON_AddNumberToObject(doc, "time_ms", 0);
    answer_json(call, doc);
    cJSON_Delete(doc);
}

/* ---- entry ---------------------------------------------------------------------- */

/* A replica may hold a search for its ?feed_timeout_ms (read-your-writes):
 * the router waits that long and more before it calls the replica silent. */
static long call_timeout(const vd_router *r, const char *query)
{
    long t = r->timeout_ms;
    for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
        if (strncmp(p, "feed_timeout_ms=", 16) == 0) {
            long w = strtol(p + 16, NULL, 10);
            if (w > 0 && w < 3600000 && w + 5000 > t)
                t = w + 5000;
        }
    return t;
}

void vd_router_handle(vd_router *r, vd_rt_call *call)
{
    call->started = vd_now_s();
    call->timeout_ms = call_timeout(r, call->query);
    bool known = false;
    const vd_rt_route *rt = vd_rt_match(call->qdrant, call->method, call->path, &known);
    call->label = rt ? rt->label : "unmatched";
    if (!rt) {
        if (known)
            vd_rt_fail(call, VD_E_METHOD_NOT_ALLOWED, "%s is not allowed on %s", call->method, call->path);
        else
            vd_rt_fail(call, VD_E_NOT_FOUND, "no route %s %s", call->method, call->path);
        return;
    }
    const vd_generation *g = vd_topology_current(r->topo);
    switch (rt->op) {
    case VD_RT_LOCAL:
        op_local(r, call, rt);
        break;
    case VD_RT_ANY:
        op_any(r, call, g);
        break;
    case VD_RT_SEARCH:
        op_search(r, call, g, rt->shape);
        break;
    case VD_RT_UPSERT:
        op_upsert(r, call, g, rt->label);
        break;
    case VD_RT_BROADCAST:
        op_broadcast(r, call, g, rt->label);
        break;
    case VD_RT_BY_IDS:
        op_by_ids(r, call, g, rt->label);
        break;
    case VD_RT_FIRST_FOUND:
        op_first_found(r, call, g);
        break;
    case VD_RT_INFO:
    case VD_RT_RETRIEVE:
    case VD_RT_COUNT:
    case VD_RT_SCROLL:
        op_gather(r, call, g, rt->op);
        break;
    case VD_RT_TENANT_ONLY:
        op_tenant_only(r, call, g);
        break;
    case VD_RT_NOT_ROUTED:
        vd_rt_fail(call, VD_E_INVALID_REQUEST,
                   "%s %s is about one replica's own feed: ask that replica directly (the router "
                   "does not route it)", call->method, call->path);
        break;
    }
    if (!call->status)
        vd_rt_fail(call, VD_E_INTERNAL, "no answer was made");
}

void vd_router_observe(vd_router *r, const vd_rt_call *call, double seconds)
{
    (void)seconds;
    size_t n;
    const vd_rt_route *routes = vd_rt_routes(&n);
    size_t i = n;
    for (size_t k = 0; k < n; k++)
        if (strcmp(routes[k].label, call->label) == 0)
            i = k;
    int c = call->status / 100 - 1;
    if (c >= 0 && c < STATUS_CLASSES)
        atomic_fetch_add(&r->requests[i * STATUS_CLASSES + (size_t)c], 1);
}

int vd_router_create(vd_router **out, const vd_router_config *cfg, vd_topology *topo)
{
    vd_router *r = calloc(1, sizeof *r);
    size_t n;
    vd_rt_routes(&n);
    if (!r)
        return -ENOMEM;
    pthread_mutex_init(&r->orders_lock, NULL);
    r->requests = calloc((n + 1) * STATUS_CLASSES, sizeof *r->requests);
    r->tenant_field = strdup(cfg->tenant_field ? cfg->tenant_field : "userId");
    if (!r->requests || !r->tenant_field) {
        vd_router_destroy(r);
        return -ENOMEM;
    }
    r->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    r->topo = topo;
    *out = r;
    return 0;
}

void vd_router_destroy(vd_router *r)
{
    if (!r)
        return;
    free((void *)r->requests);
    free(r->tenant_field);
    pthread_mutex_destroy(&r->orders_lock);
    free(r);
}

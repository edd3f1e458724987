/* handlers_search.c — k-NN search, single and batched. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/recall_monitor.h"
#include "feed/pg_feed.h"
#include "feed/pgoutput.h"
#include "server/handlers.h"
#include "server/json_util.h"
#include "util/clock.h"
#include "server/response.h"
#include "server/search_answer.h"

int vd_call_search_hits(vd_call *call, vd_collection *c, vd_search_parsed *s, vd_point_out **hits, size_t *n)
{
    _Atomic uint64_t distances = 0;
    _Atomic uint32_t approximate = 0;
    vd_search_req req = s->req;
    req.n_distances = &distances;
    req.n_approximate = &approximate;
    long active = atomic_load_explicit(&vd_metrics_http_load(call->api->metrics)->active, memory_order_relaxed);
    req.load = active > 0 ? (unsigned)active : 0;
    if (vd_collection_search(c, &req, hits, n))
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory during search");
    vd_metrics_observe_search(call->api->metrics, atomic_load(&distances));
    /* Only approximate answers are sampled: an exact one (a flat
     * collection, a filter the planner scanned) has recall 1 by construction. */
    if (!atomic_load(&approximate))
        vd_recall_monitor_count_exact(call->api->recall);
    else if (vd_recall_monitor_want(call->api->recall))
        vd_recall_monitor_offer(call->api->recall, c, &s->req, &s->vector, &s->filter, *hits, *n);
    return 0;
}

bool vd_call_searches_here(const vd_call *call, vd_collection *c, const vd_search_parsed *s, size_t n)
{
    vd_http_load *load = vd_metrics_http_load(call->api->metrics);
    if (call->offloaded) {
        atomic_fetch_add_explicit(&load->searches[VD_SEARCH_ON_WORKER], 1, memory_order_relaxed);
        return true;
    }
    double work = 0, dim = vd_collection_config_of(c)->dim;
    for (size_t i = 0; call->api->jobs && i < n && work <= VD_INLINE_MAX_WORK; i++) /* + rendering the hits */
        work += vd_collection_search_work(c, &s[i].req) +
                (double)s[i].req.k * (64 + (s[i].req.with_vector ? 64 * dim : 0));
    if (work > VD_INLINE_MAX_WORK)
        return false;
    atomic_fetch_add_explicit(&load->searches[VD_SEARCH_ON_HTTP], 1, memory_order_relaxed);
    return true;
}

static void free_hits(vd_point_out *hits, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vd_point_out_free(&hits[i]);
    free(hits);
}

/* What a call's answer may still take (max_response_bytes, less what is
 * rendered so far). */
typedef struct answer_budget {
    size_t left;
} answer_budget;

static int over_budget(vd_call *call, const char *what)
{
    return vd_fail(&call->em, VD_E_RESPONSE_TOO_LARGE,
                   "the answer would take more than %llu bytes (%s; setting max_response_bytes): "
                   "ask for a smaller k, fewer searches, or with_vector=false",
                   (unsigned long long)call->api->limits.max_response_bytes, what);
}

/* Before any work: the part of the answer known from the request (k hits,
 * each with its vector if asked; payloads are counted as they render). */
static int check_answer_size(vd_call *call, const vd_search_parsed *s, size_t n, uint32_t dim)
{
    size_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += (size_t)s[i].req.k * (96 + (s[i].req.with_vector ? (size_t)dim * 16 : 0));
    if (need > call->api->limits.max_response_bytes) {
        char what[96];
        snprintf(what, sizeof what, "about %zu bytes for the hits asked for", need);
        return over_budget(call, what);
    }
    return 0;
}

/* Renders hits as a JSON array, within the budget and the deadline. */
static int render_hits(vd_call *call, vd_point_out *hits, size_t n, bool with_payload,
                       answer_budget *b, cJSON **out)
{
    cJSON *arr = cJSON_CreateArray();
    int rc = arr ? 0 : vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory rendering results");
    for (size_t i = 0; !rc && i < n; i++) {
        if (i % 64 == 63 && (rc = vd_call_check_deadline(call, "rendering the results")))
            break;
        cJSON *p = vd_resp_point(&hits[i], true, with_payload);
        if (!p) {
            rc = vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory rendering results");
            break;
        }
        cJSON_AddItemToArray(arr, p);
        size_t size = vd_resp_size_estimate(p);
        if (size > b->left) {
            rc = over_budget(call, "the payloads and vectors of the hits");
            break;
        }
        b->left -= size;
    }
    if (rc) {
        cJSON_Delete(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int vd_call_run_searches(vd_call *call, vd_collection *c, vd_search_parsed *s, size_t n, bool batch,
                         const vd_hits_adapter *adapt)
{
    int rc = check_answer_size(call, s, n, vd_collection_config_of(c)->dim);
    vd_search_answer *a = rc ? NULL : vd_search_answer_new(n, batch);
    if (!rc && !a)
        rc = vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory during search");
    if (a && adapt && adapt->as_points)
        vd_search_answer_as_points(a);
    for (size_t i = 0; i < n; i++) {
        if (!rc && i)
            rc = vd_call_check_deadline(call, "running the batch's searches");
        vd_point_out *hits;
        size_t nh;
        bool made = false;
        if (!rc && adapt && adapt->source)
            rc = adapt->source(adapt->ctx, i, call, c, &hits, &nh, &made);
        if (!rc && (made || !(rc = vd_call_search_hits(call, c, &s[i], &hits, &nh)))) {
            if (adapt)
                adapt->fn(adapt->ctx, i, hits, &nh);
            vd_search_answer_put(a, i, hits, nh, s[i].req.with_payload);
        }
        vd_search_parsed_free(&s[i]);
    }
    size_t bytes = a ? vd_search_answer_bytes(a) : 0;
    if (!rc && bytes > call->api->limits.max_response_bytes) {
        char what[96];
        snprintf(what, sizeof what, "about %zu bytes with the hits' payloads and vectors", bytes);
        rc = over_budget(call, what);
    }
    if (rc) {
        vd_search_answer_free(a);
        return rc;
    }
    return vd_call_answer_stream(call, vd_search_answer_stream(a), bytes);
}

#define FEED_TIMEOUT_DEFAULT_MS 5000
#define FEED_TIMEOUT_MAX_MS 60000

typedef struct feed_wait {
    vd_feed_waiter w;
    int (*then)(vd_call *call);
    uint64_t timeout_ms;
} feed_wait;

static int parse_u64_arg(vd_call *call, const char *name, uint64_t max, uint64_t *out)
{
    const char *v = call->arg(call->conn, name);
    char *end;
    if (!v)
        return 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || *v == '-' || x > max)
        return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                       "query parameter %s must be an integer from 0 to %llu, got '%.32s'", name,
                       (unsigned long long)max, v);
    *out = x;
    return 1;
}

static int after_feed(vd_call *call)
{
    feed_wait *fw = call->pending;
    bool applied = fw->w.applied;
    uint64_t xid = fw->w.xid, lsn = fw->w.lsn, ms = fw->timeout_ms;
    int (*then)(vd_call *) = fw->then;
    free(fw);
    call->pending = NULL;
    char what[64];
    if (lsn) {
        memcpy(what, "the changes before LSN ", 23);
        vd_lsn_format(lsn, what + 23);
    } else {
        snprintf(what, sizeof what, "transaction %llu", (unsigned long long)xid);
    }
    if (!applied)
        return vd_fail(&call->em, VD_E_FEED_TIMEOUT,
                       "the Postgres feed has not applied %s within %llu ms (see GET /feed)", what,
                       (unsigned long long)ms);
    return then(call);
}

/* ?feed_lsn=X/Y: 1 and *out, 0 when absent, or an error. */
static int parse_lsn_arg(vd_call *call, uint64_t *out)
{
    const char *v = call->arg(call->conn, "feed_lsn");
    if (!v)
        return 0;
    if (vd_lsn_parse(v, out) != 0 || *out == 0)
        return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                       "query parameter feed_lsn must be a PostgreSQL LSN such as 16/B374D848 (the "
                       "value of pg_current_wal_lsn() after the commit), got '%.32s'", v);
    return 1;
}

/* Read-your-writes: with ?feed_xid=X (a pg_current_xact_id() value; the
 * outbox source) or ?feed_lsn=L (a pg_current_wal_lsn() value; the logical
 * source), the request waits, suspended, until the feed has applied every
 * change of Postgres transactions up to X, or committed before L, for at
 * most ?feed_timeout_ms (default 5 s). */
static int wait_for_feed(vd_call *call, int (*then)(vd_call *))
{
    uint64_t xid = 0, lsn = 0, ms = FEED_TIMEOUT_DEFAULT_MS;
    int rc = parse_u64_arg(call, "feed_xid", UINT64_MAX / 2, &xid), by_lsn;
    if (rc < 0 || (by_lsn = parse_lsn_arg(call, &lsn)) < 0)
        return rc < 0 ? rc : by_lsn;
    if (rc && by_lsn)
        return vd_fail(&call->em, VD_E_INVALID_REQUEST, "send feed_xid or feed_lsn, not both");
    if (!rc && !by_lsn)
        return then(call);
    const char *arg = by_lsn ? "feed_lsn" : "feed_xid";
    if ((rc = parse_u64_arg(call, "feed_timeout_ms", FEED_TIMEOUT_MAX_MS, &ms)) < 0)
        return rc;
    /* The feed that fills this collection. */
    vd_feed *feed = NULL;
    for (size_t k = 0; k < call->api->n_feeds && !feed; k++)
        if (strcmp(vd_feed_config_of(call->api->feeds[k])->collection, call->collection) == 0)
            feed = call->api->feeds[k];
    if (!feed)
        return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                       "%s needs a Postgres feed into collection '%.64s' (setting feed_dsn)", arg,
                       call->collection);
    if (vd_feed_config_of(feed)->logical != (bool)by_lsn)
        return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                       "the feed into collection '%.64s' follows %s: wait with %s, not %s",
                       call->collection, by_lsn ? "the outbox" : "logical replication",
                       by_lsn ? "feed_xid (pg_current_xact_id())" : "feed_lsn (pg_current_wal_lsn())",
                       arg);
    feed_wait *fw = calloc(1, sizeof *fw);
    if (!fw)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    fw->w = (vd_feed_waiter){.xid = xid, .lsn = lsn, .wake = vd_call_wake, .ctx = call,
                             .deadline = vd_now_s() + (double)ms / 1e3};
    fw->then = then;
    fw->timeout_ms = ms;
    call->pending = fw;
    if (!vd_feed_wait(feed, &fw->w))
        return after_feed(call); /* applied already */
    call->resume = after_feed;
    return VD_CALL_SUSPENDED;
}

static int search_now(vd_call *call);
static int search_batch_now(vd_call *call);

/* Parsed here; run here when cheap, else on the request workers
 * (vd_call_searches_here). */
int vd_h_search(vd_call *call) { return wait_for_feed(call, search_now); }

int vd_h_search_batch(vd_call *call) { return wait_for_feed(call, search_batch_now); }

static int search_now(vd_call *call)
{
    vd_collection *c;
    vd_search_parsed s;
    int rc = vd_call_require_body(call, "a JSON object with \"vector\"");
    if (rc || (rc = vd_call_collection(call, &c)))
        return rc;
    rc = vd_req_search(call->body, "", vd_collection_config_of(c), &call->api->limits, call->vectors, &s,
                       &call->em);
    bool here = !rc && vd_call_searches_here(call, c, &s, 1);
    if (here)
        rc = vd_call_run_searches(call, c, &s, 1, false, NULL);
    else if (!rc)
        vd_search_parsed_free(&s);
    vd_collection_unref(c);
    return rc || here ? rc : vd_call_offload(call, search_now);
}

static int search_batch_now(vd_call *call)
{
    vd_collection *c;
    vd_search_parsed *s;
    size_t n;
    int rc = vd_call_require_body(call, "a JSON object with \"vector\"");
    if (rc || (rc = vd_call_collection(call, &c)))
        return rc;
    rc = vd_req_search_batch(call->body, vd_collection_config_of(c), &call->api->limits, call->vectors, &s, &n,
                             &call->em);
    bool here = !rc && vd_call_searches_here(call, c, s, n);
    if (!rc) {
        if (here) {
            rc = vd_call_run_searches(call, c, s, n, true, NULL);
        } else {
            for (size_t i = 0; i < n; i++)
                vd_search_parsed_free(&s[i]);
        }
        free(s);
    }
    vd_collection_unref(c);
    return rc || here ? rc : vd_call_offload(call, search_batch_now);
}

/* ---- shadow comparison ---------------------------------------------------
 * POST /collections/{c}/search/shadow: a search plus the caller's own result
 * for the same query ("baseline": {"ids": [...], "latency_ms": …}), e.g.
 * MemoryService's numpy scan during the shadow phase of a cutover. vectord
 * answers the search and how far the two agree: overlap@k = common ids /
 * max(|vectord's top k|, |baseline's top k|) (1 when both are empty). The
 * collection keeps the tally (collection info "quality", metrics). */

typedef struct baseline {
    vd_point_id *ids; /* strings borrow from the detached "baseline" item */
    size_t n;
    double latency_s;
} baseline;

static int parse_baseline(vd_call *call, const cJSON *item, baseline *out)
{
    static const char *const allowed[] = {"ids", "latency_ms", NULL};
    int rc;
    *out = (baseline){0};
    if (!item)
        return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                       "a shadow search needs \"baseline\": {\"ids\": [...], \"latency_ms\": …}, "
                       "the ids your own search returned, best first");
    if ((rc = vd_json_object(item, "baseline", &call->em)) ||
        (rc = vd_json_no_unknown(item, "baseline", allowed, &call->em)))
        return rc;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(item, "ids");
    if (!cJSON_IsArray(ids))
        return vd_fail(&call->em, VD_E_INVALID_REQUEST, "baseline.ids must be an array of point ids");
    size_t n = (size_t)cJSON_GetArraySize(ids);
    if (n > call->api->limits.max_k)
        return vd_fail(&call->em, VD_E_BATCH_TOO_LARGE,
                       "baseline.ids has %zu entries; at most %u (setting max_k)", n,
                       call->api->limits.max_k);
    bool has_latency;
    double ms = 0;
    if ((rc = vd_json_number(item, "latency_ms", "baseline", &has_latency, &ms, &call->em)))
        return rc;
    if (ms < 0)
        return vd_fail(&call->em, VD_E_OUT_OF_RANGE, "baseline.latency_ms must be >= 0");
    out->latency_s = ms / 1e3;
    out->ids = malloc((n ? n : 1) * sizeof *out->ids);
    if (!out->ids)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    size_t i = 0;
    for (const cJSON *e = ids->child; e; e = e->next, i++) {
        char path[40];
        snprintf(path, sizeof path, "baseline.ids[%zu]", i);
        if ((rc = vd_json_id(e, path, &out->ids[i], &call->em))) {
            free(out->ids);
            out->ids = NULL;
            return rc;
        }
    }
    out->n = n;
    return 0;
}

/* The ids of a[0..na) that are not in b[0..nb), as a JSON array. */
static cJSON *ids_not_in(const vd_point_id *a, size_t na, const vd_point_id *b, size_t nb)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < na; i++)
        if (!vd_ids_common(&a[i], 1, b, nb))
            cJSON_AddItemToArray(arr, vd_resp_id(&a[i]));
    return arr;
}

static int compare_and_render(vd_call *call, vd_collection *c, const baseline *b,
                              vd_point_out *hits, size_t n, bool with_payload, uint32_t k,
                              double vectord_s)
{
    vd_point_id *mine = malloc((n ? n : 1) * sizeof *mine);
    if (!mine)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < n; i++)
        mine[i] = hits[i].id;
    size_t nb = b->n < k ? b->n : k;
    size_t common = vd_ids_common(mine, n, b->ids, nb);
    size_t expected = n > nb ? n : nb;
    vd_quality_add_shadow(vd_collection_quality(c), (uint32_t)common, (uint32_t)expected,
                          b->latency_s, vectord_s);
    cJSON *o = cJSON_CreateObject();
    cJSON *sh = cJSON_AddObjectToObject(o, "shadow");
    cJSON_AddNumberToObject(sh, "k", k);
    cJSON_AddNumberToObject(sh, "overlap", expected ? (double)common / (double)expected : 1.0);
    cJSON_AddNumberToObject(sh, "common", (double)common);
    cJSON_AddNumberToObject(sh, "vectord_count", (double)n);
    cJSON_AddNumberToObject(sh, "baseline_count", (double)nb);
    cJSON_AddItemToObject(sh, "missing", ids_not_in(b->ids, nb, mine, n));
    cJSON_AddItemToObject(sh, "extra", ids_not_in(mine, n, b->ids, nb));
    cJSON_AddNumberToObject(sh, "latency_ms", vectord_s * 1e3);
    cJSON_AddNumberToObject(sh, "baseline_latency_ms", b->latency_s * 1e3);
    free(mine);
    cJSON *points = NULL;
    answer_budget budget = {call->api->limits.max_response_bytes};
    int rc = render_hits(call, hits, n, with_payload, &budget, &points);
    if (rc) {
        cJSON_Delete(o);
        return rc;
    }
    cJSON_AddItemToObject(o, "points", points);
    call->result = o;
    return 0;
}

static int shadow_now(vd_call *call)
{
    vd_collection *c;
    int rc = vd_call_require_body(call, "a search object with \"baseline\"");
    if (rc || (rc = vd_call_collection(call, &c)))
        return rc;
    cJSON *item = cJSON_IsObject(call->body)
                      ? cJSON_DetachItemFromObjectCaseSensitive(call->body, "baseline")
                      : NULL;
    baseline b;
    vd_search_parsed s = {0};
    if (!(rc = parse_baseline(call, item, &b)) &&
        !(rc = vd_req_search(call->body, "", vd_collection_config_of(c), &call->api->limits, call->vectors, &s,
                             &call->em))) {
        vd_point_out *hits;
        size_t n;
        double t0 = vd_now_s();
        if (!(rc = check_answer_size(call, &s, 1, vd_collection_config_of(c)->dim)) &&
            !(rc = vd_call_search_hits(call, c, &s, &hits, &n))) {
            rc = compare_and_render(call, c, &b, hits, n, s.req.with_payload, s.req.k,
                                    vd_now_s() - t0);
            free_hits(hits, n);
        }
        vd_search_parsed_free(&s);
    }
    free(b.ids);
    cJSON_Delete(item);
    vd_collection_unref(c);
    return rc;
}

static int shadow_offload(vd_call *call) { return vd_call_offload(call, shadow_now); }

int vd_h_search_shadow(vd_call *call) { return wait_for_feed(call, shadow_offload); }

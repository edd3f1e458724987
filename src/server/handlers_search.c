/* handlers_search.c — k-NN search, single and batched. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feed/pg_feed.h"
#include "server/handlers.h"
#include "util/clock.h"
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
    uint64_t xid = fw->w.xid, ms = fw->timeout_ms;
    int (*then)(vd_call *) = fw->then;
    free(fw);
    call->pending = NULL;
    if (!applied)
        return vd_fail(&call->em, VD_E_FEED_TIMEOUT,
                       "the Postgres feed has not applied transaction %llu within %llu ms "
                       "(see GET /feed)",
                       (unsigned long long)xid, (unsigned long long)ms);
    return then(call);
}

/* Read-your-writes: with ?feed_xid=X (a pg_current_xact_id() value), the
 * request waits, suspended, until the feed has applied every change of
 * Postgres transactions up to X, for at most ?feed_timeout_ms (default 5 s). */
static int wait_for_feed(vd_call *call, int (*then)(vd_call *))
{
    uint64_t xid = 0, ms = FEED_TIMEOUT_DEFAULT_MS;
    int rc = parse_u64_arg(call, "feed_xid", UINT64_MAX / 2, &xid);
    if (rc <= 0)
        return rc ? rc : then(call);
    if ((rc = parse_u64_arg(call, "feed_timeout_ms", FEED_TIMEOUT_MAX_MS, &ms)) < 0)
        return rc;
    /* The feed that fills this collection. */
    vd_feed *feed = NULL;
    for (size_t k = 0; k < call->api->n_feeds && !feed; k++)
        if (strcmp(vd_feed_config_of(call->api->feeds[k])->collection, call->collection) == 0)
            feed = call->api->feeds[k];
    if (!feed)
        return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                       "feed_xid needs a Postgres feed into collection '%.64s' (setting feed_dsn)",
                       call->collection);
    feed_wait *fw = calloc(1, sizeof *fw);
    if (!fw)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    fw->w = (vd_feed_waiter){.xid = xid, .wake = vd_call_wake, .ctx = call,
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

int vd_h_search(vd_call *call) { return wait_for_feed(call, search_now); }

int vd_h_search_batch(vd_call *call) { return wait_for_feed(call, search_batch_now); }

static int search_now(vd_call *call)
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

static int search_batch_now(vd_call *call)
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

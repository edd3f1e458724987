/*
 * handlers.c — probes, metrics, and helpers shared
 * by the handler files (handlers_collections.c, handlers_points.c,
 * handlers_search.c).
 */
#include <stdlib.h>
#include <string.h>

#include "server/api.h"
#include "feed/pg_feed.h"
#include "feed/pgoutput.h"
#include "server/handlers.h"

#include "server/response.h"
#include "util/clock.h"
#include "util/jobq.h"
#include "util/log.h"

int vd_call_collection(vd_call *call, vd_collection **out)
{
    int rc = vd_database_get(call->api->db, call->collection, out);
    if (rc)
        return vd_fail(&call->em, rc, "collection '%.64s' does not exist", call->collection);
    return 0;
}

int vd_call_require_body(vd_call *call, const char *shape)
{
    if (call->body)
        return 0;
    return vd_fail(&call->em, VD_E_INVALID_REQUEST, "request body must be %s", shape);
}

int vd_call_bool_arg(vd_call *call, const char *name, bool def, bool *out)
{
    const char *v = call->arg(call->conn, name);
    if (!v) {
        *out = def;
        return 0;
    }
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                       "query parameter %s must be true or false, got '%.32s'", name, v);
    return 0;
}

int vd_call_check_deadline(vd_call *call, const char *what)
{
    if (atomic_load_explicit(&call->api->draining, memory_order_relaxed))
        return vd_fail(&call->em, VD_E_DEADLINE_EXCEEDED,
                       "the server is shutting down; stopped while %s, nothing was changed", what);
    if (!call->deadline || vd_now_s() <= call->deadline)
        return 0;
    return vd_fail(&call->em, VD_E_DEADLINE_EXCEEDED,
                   "the request ran past its deadline while %s; nothing was changed (setting "
                   "request_timeout_ms, or ?timeout_ms=)", what);
}

int vd_call_answer_stream(vd_call *call, vd_stream s, size_t answer_bytes)
{
    if (answer_bytes >= VD_STREAM_MIN_BYTES) {
        call->stream = s; /* the HTTP layer sends it as it renders */
        return 0;
    }
    /* Small: rendered whole now (on the request workers when offloaded). */
    vd_strbuf b;
    vd_strbuf_init(&b, 0);
    vd_strbuf_reserve(&b, answer_bytes + 64);
    bool done = false, ok = vd_resp_envelope_head(&b);
    while (ok && !done)
        ok = s.next(s.ctx, &b, &done);
    ok = ok && vd_resp_envelope_tail(&b, vd_now_s() - call->started, call->dialect);
    s.free(s.ctx);
    if (!ok) {
        vd_strbuf_free(&b);
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory rendering results");
    }
    call->text = vd_strbuf_take(&b, &call->text_len);
    call->content_type = "application/json";
    return 0;
}

static int offload_done(vd_call *call)
{
    call->offloaded = false;
    return call->offload_err;
}

static void offload_main(void *arg)
{
    vd_call *call = arg;
    vd_log_request(call->request_id);
    /* A logged write is applied whatever the time: it is in the WAL already. */
    int err = call->offload_always ? 0 : vd_call_check_deadline(call, "waiting in the request queue");
    if (!err)
        err = call->offload_fn(call);
    if (!err && call->finish) { /* an adapter's last step comes before rendering */
        err = call->finish(call);
        call->finish = NULL;
    }
    if (!err && call->result && !call->text) {
        /* The answer is rendered here too: printing it can be heavy. */
        size_t len;
        char *text = vd_resp_envelope(call->result, vd_now_s() - call->started, call->dialect, &len);
        if (text) {
            call->result = NULL;
            call->text = text;
            call->text_len = len;
            call->content_type = "application/json";
        }
    }
    call->offload_err = err;
    vd_log_request(NULL);
    vd_call_wake(call); /* the call belongs to its HTTP thread again from here */
}

static bool try_offload(vd_call *call, int (*fn)(vd_call *call), bool always)
{
    call->offload_fn = fn;
    call->offload_always = always;
    call->resume = offload_done;
    call->offloaded = true;
    if (vd_jobq_submit(call->api->jobs, offload_main, call) == 0)
        return true;
    call->offloaded = false;
    return false;
}

int vd_call_offload_always(vd_call *call, int (*fn)(vd_call *call))
{
    return call->api->jobs && try_offload(call, fn, true) ? VD_CALL_SUSPENDED : fn(call);
}

int vd_call_offload(vd_call *call, int (*fn)(vd_call *call))
{
    if (!call->api->jobs)
        return fn(call);
    if (!try_offload(call, fn, false)) {
        atomic_fetch_add_explicit(&vd_metrics_http_load(call->api->metrics)->overloaded[VD_OVERLOAD_QUEUE],
                                  1, memory_order_relaxed);
        return vd_fail(&call->em, VD_E_OVERLOADED,
                       "%zu heavy requests are queued or running already (setting "
                       "max_queued_requests); retry later",
                       call->api->max_queued);
    }
    return VD_CALL_SUSPENDED;
}

int vd_h_healthz(vd_call *call)
{
    call->result = cJSON_CreateObject();
    cJSON_AddStringToObject(call->result, "status", "ok");
    return 0;
}

int vd_h_readyz(vd_call *call)
{
    if (!atomic_load(&call->api->ready))
        return vd_fail(&call->em, VD_E_NOT_READY, "server is starting or shutting down");
    for (size_t k = 0; k < call->api->n_feeds; k++) {
        const char *name = vd_feed_config_of(call->api->feeds[k])->name;
        if (!vd_feed_ready(call->api->feeds[k])) {
            vd_feed_status st;
            vd_feed_status_get(call->api->feeds[k], &st);
            unsigned max = vd_feed_config_of(call->api->feeds[k])->max_lag_s;
            if (!st.backfill_done)
                return vd_fail(&call->em, VD_E_NOT_READY,
                               "the Postgres feed '%s' is still copying the table (%llu rows so far; "
                               "see GET /feed?name=%s)", name, (unsigned long long)st.backfill_rows, name);
            if (st.staleness_seconds < 0)
                return vd_fail(&call->em, VD_E_NOT_READY,
                               "the Postgres feed '%s' has not yet heard from Postgres how far behind "
                               "it is (%s; see GET /feed?name=%s)", name,
                               st.connected ? "connected" : "not connected", name);
            return vd_fail(&call->em, VD_E_NOT_READY,
                           "the data of the Postgres feed '%s' may be %.1f s behind Postgres, more than "
                           "feed_max_lag_s (%u s): it last heard how far behind it was %.1f s ago (%s; "
                           "see GET /feed?name=%s)",
                           name, st.staleness_seconds, max, st.staleness_seconds - st.confirmed_lag,
                           st.connected ? "connected" : "not connected to Postgres now", name);
        }
        if (!vd_feed_position_ready(call->api->feeds[k]))
            return vd_fail(&call->em, VD_E_NOT_READY,
                           "the Postgres feed '%s' has not recorded its position in "
                           "vectord_feed_position for more than feed_position_ready_s "
                           "(see position.error in GET /feed?name=%s)", name, name);
    }
    call->result = cJSON_CreateObject();
    cJSON_AddStringToObject(call->result, "status", "ready");
    return 0;
}

int vd_h_metrics(vd_call *call)
{
    int rc = vd_metrics_render(call->api->metrics, call->api->db, call->api->simd, &call->text,
                               &call->text_len);
    if (rc)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "cannot render metrics");
    call->content_type = "text/plain; version=0.0.4";
    return 0;
}

/* docs/openapi.json, compiled in (scripts/embed-text). */
extern const char vd_openapi_json[];
extern const size_t vd_openapi_json_len;

int vd_h_openapi(vd_call *call)
{
    call->text = malloc(vd_openapi_json_len);
    if (!call->text)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory copying the OpenAPI document");
    memcpy(call->text, vd_openapi_json, vd_openapi_json_len);
    call->text_len = vd_openapi_json_len;
    call->content_type = "application/json";
    return 0;
}


int vd_call_feed(vd_call *call, vd_feed **out)
{
    const char *name = call->arg(call->conn, "name");
    if (!call->api->n_feeds)
        return vd_fail(&call->em, VD_E_NOT_FOUND, "no feed is configured (setting feed_dsn)");
    for (size_t k = 0; k < call->api->n_feeds; k++)
        if (!name || strcmp(vd_feed_config_of(call->api->feeds[k])->name, name) == 0) {
            *out = call->api->feeds[k];
            return 0;
        }
    return vd_fail(&call->em, VD_E_NOT_FOUND, "no feed is named '%.64s' (see GET /feeds)", name);
}

/* name: text, or null when text is empty. */
static void add_text_or_null(cJSON *o, const char *name, const char *text)
{
    if (text[0])
        cJSON_AddStringToObject(o, name, text);
    else
        cJSON_AddNullToObject(o, name);
}

static cJSON *feed_json(vd_feed *f)
{
    vd_feed_status st;
    vd_feed_status_get(f, &st);
    const vd_feed_config *cfg = vd_feed_config_of(f);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", cfg->name);
    cJSON_AddStringToObject(o, "table", cfg->table);
    cJSON_AddStringToObject(o, "collection", cfg->collection);
    cJSON_AddBoolToObject(o, "connected", st.connected);
    cJSON_AddStringToObject(o, "phase", !st.backfill_done ? "backfill" : "follow");
    cJSON *bf = cJSON_AddObjectToObject(o, "backfill");
    cJSON_AddBoolToObject(bf, "done", st.backfill_done);
    cJSON_AddNumberToObject(bf, "rows", (double)st.backfill_rows);
    cJSON_AddStringToObject(o, "source", cfg->logical ? "logical" : "outbox");
    if (cfg->partition.count) { /* docs/PARTITIONS.md */
        cJSON *part = cJSON_AddObjectToObject(o, "partition");
        cJSON_AddNumberToObject(part, "index", cfg->partition.index);
        cJSON_AddNumberToObject(part, "count", cfg->partition.count);
        cJSON_AddStringToObject(part, "column", cfg->partition_column);
    } else {
        cJSON_AddNullToObject(o, "partition");
    }
    cJSON *pos = cJSON_AddObjectToObject(o, "position");
    if (cfg->logical) {
        char lsn[24];
        vd_lsn_format(st.applied_lsn, lsn);
        cJSON_AddStringToObject(pos, "lsn", lsn);
        cJSON_AddStringToObject(pos, "slot", cfg->slot);
        cJSON_AddStringToObject(pos, "publication", cfg->publication);
    } else {
        cJSON_AddNumberToObject(pos, "xid", (double)st.xid);
        cJSON_AddNumberToObject(pos, "seq", (double)st.seq);
        cJSON_AddBoolToObject(pos, "recorded", st.position_recorded);
        add_text_or_null(pos, "error", st.position_error);
    }
    cJSON *lag = cJSON_AddObjectToObject(o, "lag");
    cJSON_AddNumberToObject(lag, "rows", (double)st.lag_rows);
    cJSON_AddNumberToObject(lag, "seconds", st.lag_seconds);
    /* how stale the data may be: what readiness follows (null until Postgres said) */
    if (st.staleness_seconds >= 0)
        cJSON_AddNumberToObject(lag, "staleness_seconds", st.staleness_seconds);
    else
        cJSON_AddNullToObject(lag, "staleness_seconds");
    if (cfg->logical) {
        cJSON_AddNumberToObject(lag, "bytes", (double)st.lag_bytes);
        cJSON_AddNumberToObject(lag, "slot_retained_bytes", (double)st.slot_retained_bytes);
    }
    if (st.blocked) {
        /* pid 0 / null state: not visible to the feed's role (grant it pg_read_all_stats) */
        cJSON *b = cJSON_AddObjectToObject(o, "blocked_by");
        if (st.blocker_pid)
            cJSON_AddNumberToObject(b, "pid", st.blocker_pid);
        else
            cJSON_AddNullToObject(b, "pid");
        add_text_or_null(b, "state", st.blocker_state);
        if (st.blocker_seconds >= 0)
            cJSON_AddNumberToObject(b, "seconds", st.blocker_seconds);
        else
            cJSON_AddNullToObject(b, "seconds");
        cJSON_AddNumberToObject(b, "xid_age", (double)st.blocker_xid_age);
    } else {
        cJSON_AddNullToObject(o, "blocked_by");
    }
    cJSON_AddNumberToObject(o, "rows_applied", (double)st.rows_applied);
    cJSON_AddNumberToObject(o, "rows_rejected", (double)st.rows_rejected);
    cJSON_AddNumberToObject(o, "reconnects", (double)st.reconnects);
    add_text_or_null(o, "last_error", st.last_error);
    add_text_or_null(o, "warning", st.warning);
    return o;
}

int vd_h_feed(vd_call *call)
{
    vd_feed *f;
    int rc = vd_call_feed(call, &f);
    if (rc)
        return rc;
    call->result = feed_json(f);
    return 0;
}

int vd_h_feeds(vd_call *call)
{
    call->result = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(call->result, "feeds");
    for (size_t k = 0; k < call->api->n_feeds; k++)
        cJSON_AddItemToArray(arr, feed_json(call->api->feeds[k]));
    return 0;
}

/* Example ids as the points API writes them: integer ids as numbers. */
static cJSON *id_array(char ids[][VD_ID_MAX_LEN + 1], const bool *is_int, uint64_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (uint64_t i = 0; i < n && i < VD_RECONCILE_EXAMPLES; i++) {
        vd_point_id id = {.kind = VD_ID_INT};
        if (is_int[i])
            id.num = strtoull(ids[i], NULL, 10);
        else
            id = (vd_point_id){.kind = VD_ID_STR, .str = ids[i]};
        cJSON_AddItemToArray(a, vd_resp_id(&id)); /* integer ids as digits, exact past 2^52 */
    }
    return a;
}

static int reconcile_done(vd_call *call)
{
    vd_feed_reconcile_req *req = call->pending;
    call->pending = NULL;
    int rc = req->rc;
    if (rc) {
        rc = vd_fail(&call->em, rc == VD_E_NOT_READY ? rc : VD_E_INTERNAL, "reconciliation failed: %s",
                     req->error);
        free(req);
        return rc;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "source_rows", (double)req->source_rows);
    cJSON_AddNumberToObject(o, "collection_points", (double)req->points);
    cJSON_AddNumberToObject(o, "missing", (double)req->missing);
    cJSON_AddNumberToObject(o, "extra", (double)req->extra);
    cJSON_AddNumberToObject(o, "stale", (double)req->stale);
    cJSON_AddNumberToObject(o, "invalid", (double)req->invalid);
    cJSON_AddBoolToObject(o, "in_sync", req->in_sync);
    cJSON_AddBoolToObject(o, "repair", req->repair);
    cJSON_AddNumberToObject(o, "repaired", (double)req->repaired);
    if (req->repair)
        cJSON_AddBoolToObject(o, "in_sync_after_repair", req->in_sync_after);
    cJSON *ex = cJSON_AddObjectToObject(o, "examples");
    cJSON_AddItemToObject(ex, "missing", id_array(req->examples[0], req->example_is_int[0], req->missing));
    cJSON_AddItemToObject(ex, "extra", id_array(req->examples[1], req->example_is_int[1], req->extra));
    cJSON_AddItemToObject(ex, "stale", id_array(req->examples[2], req->example_is_int[2], req->stale));
    cJSON_AddItemToObject(ex, "invalid", id_array(req->examples[3], req->example_is_int[3], req->invalid));
    cJSON_AddNumberToObject(o, "seconds", req->seconds);
    free(req);
    call->result = o;
    return 0;
}

/* POST /feed/reconcile[?repair=true]: runs on the feed thread; the request
 * waits suspended. */
int vd_h_feed_reconcile(vd_call *call)
{
    bool repair;
    int rc = vd_call_bool_arg(call, "repair", false, &repair);
    if (rc)
        return rc;
    vd_feed *f;
    if ((rc = vd_call_feed(call, &f)))
        return rc;
    vd_feed_reconcile_req *req = calloc(1, sizeof *req);
    if (!req)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    req->repair = repair;
    req->wake = vd_call_wake;
    req->ctx = call;
    call->pending = req;
    call->resume = reconcile_done;
    vd_feed_reconcile(f, req);
    return VD_CALL_SUSPENDED;
}

/*
 * replicas.c — asking replicas (replicas.h): one replica of each
 * partition at once, each retried on its partition's next replica while it
 * gets no answer; or every replica (writes: replicas do not copy each other's
 * API writes). A replica without an answer is marked not ready.
 */
#include "router/replicas.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vectord/error.h"

bool vd_rt_retryable(long status) { return status == 0 || status == 502 || status == 503; }

static void set_url(vd_up_req *q, const vd_replica *x, bool qdrant, const char *path, const char *query)
{
    snprintf(q->url, sizeof q->url, "%s%s%s%s", qdrant ? x->qdrant : x->native, path,
             *query ? "?" : "", query);
}

static void prepare(vd_rt_call *call, vd_up_req *q, const char *method, const char *body,
                    size_t len)
{
    *q = (vd_up_req){.method = method, .body = body, .body_len = len, .headers = call->headers,
                     .timeout_ms = call->timeout_ms};
}

static void note_failure(vd_rt_counters *c, vd_replica *x, const vd_up_req *q)
{
    if (!vd_rt_retryable(q->status))
        return;
    atomic_fetch_add(&c->upstream_failures, 1);
    vd_replica_failed(x);
}

/* One replica of each listed partition at once, each retried on its
 * partition's next replicas while it gets no answer. out[i] answers
 * parts[i]; *failed_url names the last replica that gave none. */
void vd_rt_ask_partitions(vd_rt_counters *c, vd_rt_call *call, const vd_generation *g, const uint32_t *parts,
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
        prepare(call, &out[i], method, bodies[i], lens[i]);
    }
    for (int attempt = 0;; attempt++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            bool pending = attempt == 0 || (vd_rt_retryable(out[i].status) && tried[i] < n_cands[i]);
            if (!pending || tried[i] >= n_cands[i])
                continue;
            prepare(call, &round[k], method, bodies[i], lens[i]);
            set_url(&round[k], cands[i][tried[i]], call->qdrant, path, query);
            todo[k++] = i;
        }
        if (!k)
            break;
        if (attempt)
            atomic_fetch_add(&c->retries, k);
        vd_upstream_run(call->up, round, k);
        for (size_t j = 0; j < k; j++) {
            size_t i = todo[j];
            note_failure(c, cands[i][tried[i]], &round[j]);
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

void vd_rt_ask_partition(vd_rt_counters *c, vd_rt_call *call, const vd_generation *g, uint32_t p,
                          const char *method, const char *body, size_t len, vd_up_req *out)
{
    const char *bodies[1] = {body};
    size_t lens[1] = {len};
    vd_rt_ask_partitions(c, call, g, &p, 1, method, call->path, call->query, bodies, lens, out);
}

/* Every replica of the partitions to send to (send[p]) at once, with
 * bodies[p] (NULL = none); *out (n entries) and *where (their partitions)
 * are allocated. */
size_t vd_rt_ask_everyone(vd_rt_counters *c, vd_rt_call *call, const vd_generation *g, const bool *send,
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
            prepare(call, &(*out)[k], call->method, bodies[p], lens[p]);
            set_url(&(*out)[k], vd_generation_replica(g, p, i), call->qdrant, call->path, call->query);
            (*where)[k] = p;
        }
    vd_upstream_run(call->up, *out, n);
    k = 0;
    for (uint32_t p = 0; p < g->n_partitions; p++)
        for (uint32_t i = 0; send[p] && i < g->counts[p]; i++, k++)
            note_failure(c, vd_generation_replica(g, p, i), &(*out)[k]);
    return n;
}

const char *vd_rt_why(const vd_up_req *q, char *out, size_t cap)
{
    if (q->status)
        snprintf(out, cap, "status %ld", q->status);
    else
        snprintf(out, cap, "%s", q->error);
    return out;
}

/* When some partition gave no answer: a 503 naming them (true), else false. */
bool vd_rt_unavailable(vd_rt_call *call, const uint32_t *parts, const vd_up_req *q, size_t n)
{
    char names[400] = "";
    size_t len = 0;
    const vd_up_req *last = NULL;
    for (size_t i = 0; i < n; i++)
        if (vd_rt_retryable(q[i].status)) {
            last = &q[i];
            int w = snprintf(names + len, sizeof names - len, "%s%u", len ? ", " : "", parts[i]);
            if (w > 0 && (size_t)w < sizeof names - len)
                len += (size_t)w;
        }
    if (!last)
        return false;
    char why[300];
    vd_rt_fail(call, VD_E_PARTITION_UNAVAILABLE,
               "no replica of partition %s answered (last: %s: %s); retry, or add "
               "?allow_partial=true to a search to accept the other partitions' hits",
               names, last->url, vd_rt_why(last, why, sizeof why));
    return true;
}

/* The first answer of q that is neither 2xx nor "no answer": the request's
 * own fault, the same on every replica; passed through (true). */
bool vd_rt_refused(vd_rt_call *call, vd_up_req *q, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (q[i].status >= 300 && !vd_rt_retryable(q[i].status)) {
            vd_rt_pass(call, &q[i]);
            return true;
        }
    return false;
}

void vd_rt_all_partitions(const vd_generation *g, uint32_t *parts)
{
    for (uint32_t p = 0; p < g->n_partitions; p++)
        parts[p] = p;
}

/* One replica of every partition, the same request; NULL (answered) unless
 * every partition answered 200 (or allow_missing: some gave no answer). */
vd_up_req *vd_rt_ask_all(vd_rt_counters *c, vd_rt_call *call, const vd_generation *g, const char *body,
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
    atomic_fetch_add(&c->fanouts, 1);
    vd_rt_all_partitions(g, parts);
    for (uint32_t p = 0; p < P; p++) {
        bodies[p] = body;
        lens[p] = len;
    }
    vd_rt_ask_partitions(c, call, g, parts, P, call->method, call->path, call->query, bodies, lens, q);
    *missing = 0;
    for (uint32_t p = 0; p < P; p++)
        *missing += vd_rt_retryable(q[p].status);
    bool ok = !vd_rt_refused(call, q, P) && (allow_missing ? *missing < P : !vd_rt_unavailable(call, parts, q, P));
    if (ok && *missing == P)
        ok = !vd_rt_unavailable(call, parts, q, P);
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

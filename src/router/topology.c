/*
 * topology.c — see topology.h. The prober thread, every probe_interval_ms,
 * asks every replica of both generations for /readyz (and, for the next
 * generation, GET /feed: its backfill must be done), all at once, each
 * bounded by the interval. Three probes in a row with every next partition
 * ready and caught up switch the router to it.
 *
 * Locking: the generations' shapes never change after create; health flags
 * and counters are atomics; `current` and `next` are atomic pointers set by
 * the prober only. stop_lock guards stop (and the prober's sleep).
 */
#include "router/topology.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/upstream.h"
#include "util/log.h"

#define SWITCH_AFTER_PROBES 3

struct vd_topology {
    vd_generation gens[2];
    _Atomic(vd_generation *) current;
    _Atomic(vd_generation *) next;
    uint32_t probe_interval_ms;
    char auth[300]; /* "api-key: …" for the prober's /feed look-ups, or "" */
    pthread_t prober;
    bool started;
    pthread_mutex_t stop_lock; /* guards stop */
    pthread_cond_t stop_cond;
    bool stop;
    _Atomic uint64_t probes, switches;
};

/* scheme://host[:port][/…] → scheme://host:port (the Qdrant listener). */
static bool qdrant_url(const char *native, uint32_t port, char *out, size_t cap)
{
    const char *s = strstr(native, "://");
    if (!s)
        return false;
    const char *host = s + 3, *end = host + strcspn(host, "/");
    const char *colon = NULL;
    if (*host == '[') { /* [IPv6]:port */
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (!close)
            return false;
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        if (!colon)
            colon = close + 1;
    } else {
        colon = memchr(host, ':', (size_t)(end - host));
        if (!colon)
            colon = end;
    }
    int n = snprintf(out, cap, "%.*s:%u", (int)(colon - native), native, port);
    return n > 0 && (size_t)n < cap;
}

static bool url_ok(const char *u)
{
    return (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) && strlen(u) < VD_URL_MAX &&
           !strpbrk(u, " \t\r\n?#");
}

/* "…{p}…{r}…" with p and r put in. */
static bool expand(const char *pattern, uint32_t p, uint32_t r, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *c = pattern; *c; c++) {
        char num[16] = "";
        if (strncmp(c, "{p}", 3) == 0 || strncmp(c, "{r}", 3) == 0) {
            snprintf(num, sizeof num, "%u", c[1] == 'p' ? p : r);
            c += 2;
        } else {
            num[0] = *c;
            num[1] = 0;
        }
        size_t k = strlen(num);
        if (n + k + 1 > cap)
            return false;
        memcpy(out + n, num, k);
        n += k;
    }
    out[n] = 0;
    return true;
}

static void generation_free(vd_generation *g)
{
    free(g->replicas);
    free(g->counts);
    free((void *)g->next_pick);
    *g = (vd_generation){0};
}

static int build(vd_generation *g, const char *const *parts, uint32_t n_parts, const char *pattern,
                 uint32_t n_reps, uint32_t qport, const char *what, char *err, size_t cap)
{
    uint32_t P = n_parts;
    if (!P || P > VD_PARTITIONS_MAX)
        return snprintf(err, cap, "%s: 1 to %d partitions, got %u", what, VD_PARTITIONS_MAX, P), -EINVAL;
    if (pattern && (!n_reps || n_reps > VD_REPLICAS_MAX))
        return snprintf(err, cap, "%s: 1 to %d replicas, got %u", what, VD_REPLICAS_MAX, n_reps), -EINVAL;
    g->n_partitions = P;
    g->max_replicas = pattern ? n_reps : VD_REPLICAS_MAX;
    g->replicas = calloc((size_t)P * g->max_replicas, sizeof *g->replicas);
    g->counts = calloc(P, sizeof *g->counts);
    g->next_pick = calloc(P, sizeof *g->next_pick);
    if (!g->replicas || !g->counts || !g->next_pick)
        return snprintf(err, cap, "out of memory"), -ENOMEM;
    for (uint32_t p = 0; p < P; p++) {
        if (pattern) {
            for (uint32_t r = 0; r < n_reps; r++) {
                vd_replica *x = &g->replicas[(size_t)p * g->max_replicas + r];
                if (!expand(pattern, p, r, x->native, sizeof x->native))
                    return snprintf(err, cap, "%s: the pattern makes a URL too long", what), -EINVAL;
            }
            g->counts[p] = n_reps;
            continue;
        }
        char *list = strdup(parts[p]), *save = NULL;
        if (!list)
            return snprintf(err, cap, "out of memory"), -ENOMEM;
        for (char *u = strtok_r(list, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
            while (*u == ' ')
                u++;
            if (g->counts[p] == VD_REPLICAS_MAX) {
                free(list);
                return snprintf(err, cap, "%s: partition %u has more than %d replicas", what, p,
                                VD_REPLICAS_MAX), -EINVAL;
            }
            vd_replica *x = &g->replicas[(size_t)p * g->max_replicas + g->counts[p]++];
            /* "NATIVE|QDRANT": the replica's own Qdrant base URL (else its host and qdrant_port) */
            char *bar = strchr(u, '|');
            if (bar) {
                *bar = 0;
                snprintf(x->qdrant, sizeof x->qdrant, "%s", bar + 1);
            }
            snprintf(x->native, sizeof x->native, "%s", u);
        }
        free(list);
        if (!g->counts[p])
            return snprintf(err, cap, "%s: partition %u has no replica", what, p), -EINVAL;
    }
    for (uint32_t p = 0; p < P; p++)
        for (uint32_t r = 0; r < g->counts[p]; r++) {
            vd_replica *x = &g->replicas[(size_t)p * g->max_replicas + r];
            size_t len = strlen(x->native);
            while (len && x->native[len - 1] == '/')
                x->native[--len] = 0;
            len = strlen(x->qdrant);
            while (len && x->qdrant[len - 1] == '/')
                x->qdrant[--len] = 0;
            if (!url_ok(x->native) || (x->qdrant[0] ? !url_ok(x->qdrant)
                                                    : !qdrant_url(x->native, qport, x->qdrant, sizeof x->qdrant)))
                return snprintf(err, cap, "%s: partition %u: '%s' is not an http:// or https:// base URL",
                                what, p, x->native), -EINVAL;
            atomic_store(&x->caught_up, true);
        }
    return 0;
}

vd_replica *vd_generation_replica(const vd_generation *g, uint32_t p, uint32_t r)
{
    return &g->replicas[(size_t)p * g->max_replicas + r];
}

uint32_t vd_generation_candidates(const vd_generation *g, uint32_t p, vd_replica **out)
{
    uint32_t n = g->counts[p], k = 0;
    uint32_t start = atomic_fetch_add(&g->next_pick[p], 1) % n;
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < n; i++) {
            vd_replica *r = vd_generation_replica(g, p, (start + i) % n);
            if (atomic_load(&r->ready) == (pass == 0))
                out[k++] = r;
        }
    return k;
}

bool vd_generation_ready(const vd_generation *g)
{
    for (uint32_t p = 0; p < g->n_partitions; p++) {
        bool any = false;
        for (uint32_t r = 0; r < g->counts[p] && !any; r++) {
            vd_replica *x = vd_generation_replica(g, p, r);
            any = atomic_load(&x->ready) && atomic_load(&x->caught_up);
        }
        if (!any)
            return false;
    }
    return true;
}

void vd_replica_failed(vd_replica *r)
{
    atomic_store(&r->ready, false);
    atomic_fetch_add(&r->failures, 1);
}

/* One probe of every replica of g (/readyz; with feed, GET /feed too). */
static void probe(vd_topology *t, vd_upstream *u, vd_generation *g, bool feed)
{
    size_t n = 0, per = feed ? 2 : 1;
    for (uint32_t p = 0; p < g->n_partitions; p++)
        n += g->counts[p] * per;
    vd_up_req *reqs = calloc(n, sizeof *reqs);
    if (!reqs)
        return;
    const char *auth[2] = {t->auth[0] ? t->auth : NULL, NULL};
    size_t k = 0;
    for (uint32_t p = 0; p < g->n_partitions; p++)
        for (uint32_t r = 0; r < g->counts[p]; r++) {
            vd_replica *x = vd_generation_replica(g, p, r);
            for (size_t j = 0; j < per; j++, k++) {
                reqs[k].method = "GET";
                snprintf(reqs[k].url, sizeof reqs[k].url, "%s%s", x->native, j ? "/feed" : "/readyz");
                reqs[k].timeout_ms = t->probe_interval_ms > 200 ? t->probe_interval_ms : 200;
                reqs[k].headers = auth;
            }
        }
    vd_upstream_run(u, reqs, n);
    k = 0;
    for (uint32_t p = 0; p < g->n_partitions; p++)
        for (uint32_t r = 0; r < g->counts[p]; r++, k += per) {
            vd_replica *x = vd_generation_replica(g, p, r);
            atomic_store(&x->ready, reqs[k].status == 200);
            if (!feed)
                continue;
            /* 400: the replica has no feed (nothing to copy); else the backfill must be done. */
            bool done = reqs[k + 1].status == 400;
            if (reqs[k + 1].status == 200) {
                cJSON *doc = cJSON_Parse(reqs[k + 1].answer);
                cJSON *phase = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(doc, "result"), "phase");
                done = cJSON_IsString(phase) && strcmp(phase->valuestring, "follow") == 0;
                cJSON_Delete(doc);
            }
            atomic_store(&x->caught_up, done);
        }
    vd_up_reqs_free(reqs, n);
    free(reqs);
}

static void *prober_main(void *arg)
{
    vd_topology *t = arg;
    vd_upstream *u = NULL;
    if (vd_upstream_create(&u))
        return NULL;
    unsigned ready_streak = 0;
    pthread_mutex_lock(&t->stop_lock);
    while (!t->stop) {
        pthread_mutex_unlock(&t->stop_lock);
        vd_generation *cur = atomic_load(&t->current), *next = atomic_load(&t->next);
        probe(t, u, cur, false);
        if (next) {
            probe(t, u, next, true);
            ready_streak = vd_generation_ready(next) ? ready_streak + 1 : 0;
            if (ready_streak >= SWITCH_AFTER_PROBES) {
                atomic_store(&t->current, next);
                atomic_store(&t->next, NULL);
                atomic_fetch_add(&t->switches, 1);
                vd_log_info("router switched to the next partitions", "partitions=%u previous=%u",
                            next->n_partitions, cur->n_partitions);
            }
        }
        atomic_fetch_add(&t->probes, 1);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)t->probe_interval_ms * 1000000u;
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        pthread_mutex_lock(&t->stop_lock);
        if (!t->stop)
            pthread_cond_timedwait(&t->stop_cond, &t->stop_lock, &until);
    }
    pthread_mutex_unlock(&t->stop_lock);
    vd_upstream_destroy(u);
    return NULL;
}

int vd_topology_create(vd_topology **out, const vd_topology_config *cfg, char *err, size_t cap)
{
    vd_topology *t = calloc(1, sizeof *t);
    if (!t)
        return snprintf(err, cap, "out of memory"), -ENOMEM;
    pthread_mutex_init(&t->stop_lock, NULL);
    pthread_cond_init(&t->stop_cond, NULL);
    t->probe_interval_ms = cfg->probe_interval_ms ? cfg->probe_interval_ms : 1000;
    if (cfg->api_key && *cfg->api_key)
        snprintf(t->auth, sizeof t->auth, "api-key: %.250s", cfg->api_key);
    int rc = build(&t->gens[0], cfg->partitions, cfg->n_partitions, cfg->pattern, cfg->n_replicas,
                   cfg->qdrant_port, "partitions", err, cap);
    if (!rc && cfg->next_n_partitions)
        rc = build(&t->gens[1], cfg->next_partitions, cfg->next_n_partitions, cfg->next_pattern,
                   cfg->next_n_replicas, cfg->qdrant_port, "next partitions", err, cap);
    if (rc) {
        vd_topology_destroy(t);
        return rc;
    }
    atomic_store(&t->current, &t->gens[0]);
    atomic_store(&t->next, cfg->next_n_partitions ? &t->gens[1] : NULL);
    if (pthread_create(&t->prober, NULL, prober_main, t) != 0) {
        vd_topology_destroy(t);
        return snprintf(err, cap, "cannot start the prober thread"), -EAGAIN;
    }
    t->started = true;
    *out = t;
    return 0;
}

void vd_topology_destroy(vd_topology *t)
{
    if (!t)
        return;
    if (t->started) {
        pthread_mutex_lock(&t->stop_lock);
        t->stop = true;
        pthread_cond_signal(&t->stop_cond);
        pthread_mutex_unlock(&t->stop_lock);
        pthread_join(t->prober, NULL);
    }
    generation_free(&t->gens[0]);
    generation_free(&t->gens[1]);
    pthread_cond_destroy(&t->stop_cond);
    pthread_mutex_destroy(&t->stop_lock);
    free(t);
}

const vd_generation *vd_topology_current(vd_topology *t) { return atomic_load(&t->current); }
const vd_generation *vd_topology_next(vd_topology *t) { return atomic_load(&t->next); }
uint64_t vd_topology_probes(vd_topology *t) { return atomic_load(&t->probes); }
uint64_t vd_topology_switches(vd_topology *t) { return atomic_load(&t->switches); }

/* recall_monitor.c — see recall_monitor.h. */
#include "db/recall_monitor.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"

/* The re-run thread's nice value. Not SCHED_IDLE: a re-run holds each
 * shard's read lock while it scans, and a thread that could starve
 * indefinitely would hold writers back with it. */
#define MONITOR_NICE 10

typedef struct sample {
    struct sample *next;
    vd_collection *c; /* a reference */
    vd_search_req req;
    float *vector;
    vd_filter *filter;
    vd_point_id *ids; /* string ids point into id_text */
    char *id_text;
    size_t n;
} sample;

struct vd_recall_monitor {
    uint64_t every;
    double share; /* of one core, (0, 1] */
    _Atomic uint64_t searches;
    _Atomic uint64_t sampled, measured, dropped, exact, skipped;
    _Atomic uint64_t cpu_ns;
    _Atomic bool resting; /* over the CPU budget: take no samples */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sample *head, *tail;
    size_t queued;
    bool stop;
    pthread_t thread;
};

static void sample_free(sample *s)
{
    vd_collection_unref(s->c);
    free(s->vector);
    vd_filter_destroy(s->filter);
    free(s->ids);
    free(s->id_text);
    free(s);
}

/* The ids of hits[0..n), malloc'd (strings borrowed from the hits); NULL out of memory. */
static vd_point_id *ids_of(const vd_point_out *hits, size_t n)
{
    vd_point_id *ids = malloc((n ? n : 1) * sizeof *ids);
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = hits[i].id;
    return ids;
}

/* For a collection with a target recall: the sample's query at every rung
 * of the calibration ladder (ef for HNSW, nprobe for IVF), each answer
 * compared with the exact one (ids[0..n)). */
static void calibrate(sample *s, const vd_point_id *ids, size_t n)
{
    if (vd_collection_target_recall(s->c) <= 0 || !n)
        return;
    bool ivf = vd_collection_config_of(s->c)->index.type == VD_INDEX_IVF;
    const uint32_t *rungs = vd_collection_calibration_rungs(s->c);
    uint32_t found[VD_CALIBRATION_RUNGS];
    for (int r = 0; r < VD_CALIBRATION_RUNGS; r++) {
        vd_search_req q = {.vector = s->vector,
                           .k = s->req.k,
                           .filter = s->filter,
                           .oversampling = s->req.oversampling,
                           .ef = ivf ? 0 : rungs[r],
                           .nprobe = ivf ? rungs[r] : 0,
                           .on_caller = true};
        vd_point_out *hits;
        size_t nh;
        if (vd_collection_search(s->c, &q, &hits, &nh) != 0)
            return; /* out of memory: no sample */
        vd_point_id *got = ids_of(hits, nh);
        found[r] = got ? (uint32_t)vd_ids_common(ids, n, got, nh) : 0;
        free(got);
        for (size_t i = 0; i < nh; i++)
            vd_point_out_free(&hits[i]);
        free(hits);
    }
    vd_collection_calibration_add(s->c, found, (uint32_t)n);
}

static void measure(vd_recall_monitor *m, sample *s)
{
    vd_search_req exact = {.vector = s->vector,
                           .k = s->req.k,
                           .filter = s->filter,
                           .has_threshold = s->req.has_threshold,
                           .score_threshold = s->req.score_threshold,
                           .exact = true,
                           .reference = true,
                           .on_caller = true};
    vd_point_out *hits;
    size_t n;
    if (vd_collection_search(s->c, &exact, &hits, &n) != 0) {
        vd_log_warn("recall_monitor", "msg=\"exact re-run failed (out of memory); sample skipped\"");
        return;
    }
    vd_point_id *ids = ids_of(hits, n);
    if (ids) {
        size_t found = vd_ids_common(ids, n, s->ids, s->n);
        vd_quality_add_recall(vd_collection_quality(s->c), (uint32_t)found, (uint32_t)n);
        atomic_fetch_add_explicit(&m->measured, 1, memory_order_relaxed);
        calibrate(s, ids, n);
    }
    free(ids);
    for (size_t i = 0; i < n; i++)
        vd_point_out_free(&hits[i]);
    free(hits);
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The CPU budget's token bucket, in seconds of this thread's CPU. */
typedef struct budget {
    double tokens, cap, rate, at; /* at: monotonic time of the last refill */
} budget;

static void budget_refill(budget *b, double now)
{
    b->tokens += b->rate * (now - b->at);
    if (b->tokens > b->cap)
        b->tokens = b->cap;
    b->at = now;
}

/* Empties the queue (with m->lock held, or the thread gone): the count freed. */
static size_t free_queue(vd_recall_monitor *m)
{
    size_t n = 0;
    for (; m->head; n++) {
        sample *s = m->head;
        m->head = s->next;
        sample_free(s);
    }
    m->tail = NULL;
    m->queued = 0;
    return n;
}

/* Called with m->lock held: the queued samples are skipped. */
static void discard_queue(vd_recall_monitor *m)
{
    atomic_fetch_add_explicit(&m->skipped, free_queue(m), memory_order_relaxed);
}

/* Over budget: takes no samples until the rate has paid the debt back (or
 * stop). Called with m->lock held. */
static void rest(vd_recall_monitor *m, budget *b)
{
    atomic_store_explicit(&m->resting, true, memory_order_relaxed);
    discard_queue(m);
    struct timespec until = vd_deadline_after_ms((uint64_t)(-b->tokens / b->rate * 1e3) + 1);
    while (!m->stop && pthread_cond_timedwait(&m->cond, &m->lock, &until) != ETIMEDOUT)
        ; /* woken by an offer made before the flag was seen, or by stop */
    discard_queue(m); /* those offers */
    budget_refill(b, vd_now_s());
    atomic_store_explicit(&m->resting, false, memory_order_relaxed);
}

static void *monitor_main(void *arg)
{
    vd_recall_monitor *m = arg;
    budget b = {.rate = m->share, .cap = m->share * VD_RECALL_BURST_S,
                .tokens = m->share * VD_RECALL_BURST_S, .at = vd_now_s()};
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), MONITOR_NICE) != 0)
        vd_log_debug("recall_monitor", "msg=\"cannot lower the thread's priority\" errno=%d", errno);
    pthread_mutex_lock(&m->lock);
    for (;;) {
        while (!m->head && !m->stop)
            pthread_cond_wait(&m->cond, &m->lock);
        if (m->stop)
            break;
        sample *s = m->head;
        m->head = s->next;
        if (!m->head)
            m->tail = NULL;
        m->queued--;
        pthread_mutex_unlock(&m->lock);
        double cpu0 = thread_cpu_s();
        measure(m, s);
        sample_free(s);
        double cost = thread_cpu_s() - cpu0;
        atomic_fetch_add_explicit(&m->cpu_ns, (uint64_t)(cost * 1e9), memory_order_relaxed);
        budget_refill(&b, vd_now_s());
        b.tokens -= cost;
        pthread_mutex_lock(&m->lock);
        if (b.tokens < 0 && !m->stop)
            rest(m, &b);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

int vd_recall_monitor_start(vd_recall_monitor **out, uint64_t every, uint32_t cpu_percent)
{
    *out = NULL;
    if (!every)
        return 0;
    vd_recall_monitor *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->every = every;
    m->share = (cpu_percent < 1 ? 1 : cpu_percent > 100 ? 100 : cpu_percent) / 100.0;
    pthread_mutex_init(&m->lock, NULL);
    vd_cond_init_monotonic(&m->cond); /* rests are timed waits */
    if (pthread_create(&m->thread, NULL, monitor_main, m) != 0) {
        pthread_mutex_destroy(&m->lock);
        pthread_cond_destroy(&m->cond);
        free(m);
        return -EAGAIN;
    }
    *out = m;
    return 0;
}

void vd_recall_monitor_stop(vd_recall_monitor *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stop = true;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    free_queue(m);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    free(m);
}

void vd_recall_monitor_count_exact(vd_recall_monitor *m)
{
    if (m)
        atomic_fetch_add_explicit(&m->exact, 1, memory_order_relaxed);
}

bool vd_recall_monitor_want(vd_recall_monitor *m)
{
    if (!m)
        return false;
    uint64_t n = atomic_fetch_add_explicit(&m->searches, 1, memory_order_relaxed);
    if (n % m->every)
        return false;
    if (atomic_load_explicit(&m->resting, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&m->skipped, 1, memory_order_relaxed);
        return false;
    }
    return true;
}

/* Copies the hit ids (strings into one buffer). */
static bool copy_ids(sample *s, const vd_point_out *hits, size_t n)
{
    size_t text = 0;
    for (size_t i = 0; i < n; i++)
        if (hits[i].id.kind == VD_ID_STR)
            text += hits[i].id.len;
    s->ids = malloc((n ? n : 1) * sizeof *s->ids);
    s->id_text = malloc(text ? text : 1);
    if (!s->ids || !s->id_text)
        return false;
    char *p = s->id_text;
    for (size_t i = 0; i < n; i++) {
        s->ids[i] = hits[i].id;
        if (hits[i].id.kind == VD_ID_STR) {
            memcpy(p, hits[i].id.str, hits[i].id.len);
            s->ids[i].str = p;
            p += hits[i].id.len;
        }
    }
    s->n = n;
    return true;
}

void vd_recall_monitor_offer(vd_recall_monitor *m, vd_collection *c, const vd_search_req *req,
                             float **vector, vd_filter **filter, const vd_point_out *hits,
                             size_t n)
{
    sample *s = calloc(1, sizeof *s);
    bool queued = false;
    if (s && copy_ids(s, hits, n)) {
        pthread_mutex_lock(&m->lock);
        if (m->queued < VD_RECALL_QUEUE_MAX) {
            s->req = *req;
            s->req.n_distances = NULL;
            s->vector = *vector;
            s->filter = *filter;
            *vector = NULL;
            *filter = NULL;
            vd_collection_ref(c);
            s->c = c;
            if (m->tail)
                m->tail->next = s;
            else
                m->head = s;
            m->tail = s;
            m->queued++;
            queued = true;
            pthread_cond_signal(&m->cond);
        }
        pthread_mutex_unlock(&m->lock);
    }
    if (queued) {
        atomic_fetch_add_explicit(&m->sampled, 1, memory_order_relaxed);
        return;
    }
    if (s)
        sample_free(s); /* owns nothing of the caller's yet */
    atomic_fetch_add_explicit(&m->dropped, 1, memory_order_relaxed);
}

void vd_recall_monitor_stats_get(vd_recall_monitor *m, vd_recall_monitor_stats *out)
{
    *out = (vd_recall_monitor_stats){0};
    if (!m)
        return;
    out->sampled = atomic_load_explicit(&m->sampled, memory_order_relaxed);
    out->measured = atomic_load_explicit(&m->measured, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&m->dropped, memory_order_relaxed);
    out->exact = atomic_load_explicit(&m->exact, memory_order_relaxed);
    out->skipped = atomic_load_explicit(&m->skipped, memory_order_relaxed);
    out->cpu_s = (double)atomic_load_explicit(&m->cpu_ns, memory_order_relaxed) * 1e-9;
    pthread_mutex_lock(&m->lock);
    out->queued = m->queued;
    pthread_mutex_unlock(&m->lock);
}

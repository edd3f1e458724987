/* conn_guard.c — see conn_guard.h. */
#include "server/conn_guard.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"

#define GUARD_TICK_MS 250

typedef enum slot_phase {
    PHASE_IDLE,    /* no request yet, or between two: waiting for a request line */
    PHASE_HEAD,    /* request line in, headers coming */
    PHASE_BODY,    /* headers in, body coming */
    PHASE_BUSY,    /* handled or answered: never closed by the guard */
    PHASE_CLOSING, /* shut down by the guard; its close notification is pending */
} slot_phase;

struct vd_conn_slot {
    int fd;
    slot_phase phase;
    double since;      /* when the phase began */
    uint64_t received; /* body bytes so far (PHASE_BODY) */
    vd_conn_slot *prev, *next;
};

struct vd_conn_guard {
    vd_conn_guard_config cfg;
    vd_http_load *load;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stopping;
    vd_conn_slot *head; /* every open connection's slot */
    uint64_t count;
    _Atomic uint64_t live; /* count less those shut down, their close pending */
};

/* Under the lock: the slot is still on the list, so its connection has not
 * been closed and fd is still its socket. */
static void close_slot(vd_conn_guard *g, vd_conn_slot *s, vd_conn_close_reason why)
{
    static const char *const names[VD_N_CLOSE_REASONS] = {
        "no request line within connection_timeout_s",
        "request head not in within request_head_timeout_s",
        "request body slower than request_body_min_rate", "evicted past max_connections"};
    shutdown(s->fd, SHUT_RDWR);
    s->phase = PHASE_CLOSING;
    atomic_fetch_sub_explicit(&g->live, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g->load->closed[why], 1, memory_order_relaxed);
    vd_log_debug("closing a connection", "reason=\"%s\" fd=%d", names[why], s->fd);
}

static bool body_too_slow(const vd_conn_guard *g, const vd_conn_slot *s, double now)
{
    if (!g->cfg.body_min_rate)
        return false;
    double allowed = g->cfg.head_timeout_s + (double)s->received / (double)g->cfg.body_min_rate;
    return now - s->since > allowed;
}

static void sweep(vd_conn_guard *g, double now)
{
    for (vd_conn_slot *s = g->head; s; s = s->next) {
        double age = now - s->since;
        if (s->phase == PHASE_IDLE && age > g->cfg.idle_timeout_s)
            close_slot(g, s, VD_CLOSE_IDLE_DEADLINE);
        else if (s->phase == PHASE_HEAD && age > g->cfg.head_timeout_s)
            close_slot(g, s, VD_CLOSE_HEAD_DEADLINE);
        else if (s->phase == PHASE_BODY && body_too_slow(g, s, now))
            close_slot(g, s, VD_CLOSE_BODY_TOO_SLOW);
    }
}

static void *guard_main(void *arg)
{
    vd_conn_guard *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stopping) {
        struct timespec t = vd_deadline_after_ms(GUARD_TICK_MS);
        pthread_cond_timedwait(&g->wake, &g->lock, &t);
        if (!g->stopping)
            sweep(g, vd_now_s());
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

int vd_conn_guard_start(vd_conn_guard **out, const vd_conn_guard_config *cfg, vd_http_load *load)
{
    vd_conn_guard *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->cfg = *cfg;
    g->load = load;
    pthread_mutex_init(&g->lock, NULL);
    vd_cond_init_monotonic(&g->wake);
    if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return -EAGAIN;
    }
    *out = g;
    return 0;
}

void vd_conn_guard_stop(vd_conn_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    g->stopping = true;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    /* libmicrohttpd has stopped: its close notifications have all come. */
    while (g->head) {
        vd_conn_slot *s = g->head;
        g->head = s->next;
        free(s);
    }
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

vd_conn_slot *vd_conn_guard_opened(vd_conn_guard *g, int fd)
{
    vd_conn_slot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fd = fd;
    s->phase = PHASE_IDLE;
    s->since = vd_now_s();
    pthread_mutex_lock(&g->lock);
    s->next = g->head;
    if (g->head)
        g->head->prev = s;
    g->head = s;
    g->count++;
    /* Past the cap counted in live connections (those already shut down but
     * not yet closed by libmicrohttpd do not count: evicting for them would
     * close more than needed, even a newcomer whose request is not read yet).
     * The eviction comes before the newcomer is counted: live is read without
     * the lock (a request past the cap gets 503), and counting first let a
     * request on another connection see the cap exceeded for an instant. */
    if (atomic_load_explicit(&g->live, memory_order_relaxed) + 1 > g->cfg.max_connections) {
        /* Room for the newcomer: the one waiting longest without a request in progress. */
        vd_conn_slot *oldest = NULL;
        for (vd_conn_slot *o = s->next; o; o = o->next)
            if ((o->phase == PHASE_IDLE || o->phase == PHASE_HEAD) &&
                (!oldest || o->since < oldest->since))
                oldest = o;
        if (oldest)
            close_slot(g, oldest, VD_CLOSE_EVICTED);
    }
    atomic_fetch_add_explicit(&g->live, 1, memory_order_relaxed);
    pthread_mutex_unlock(&g->lock);
    return s;
}

void vd_conn_guard_closed(vd_conn_guard *g, vd_conn_slot *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&g->lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        g->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    g->count--;
    if (s->phase != PHASE_CLOSING)
        atomic_fetch_sub_explicit(&g->live, 1, memory_order_relaxed);
    pthread_mutex_unlock(&g->lock);
    free(s);
}

static void enter(vd_conn_guard *g, vd_conn_slot *s, slot_phase p)
{
    if (!s)
        return;
    pthread_mutex_lock(&g->lock);
    if (s->phase != PHASE_CLOSING) {
        s->phase = p;
        s->since = vd_now_s();
        s->received = 0;
    }
    pthread_mutex_unlock(&g->lock);
}

void vd_conn_guard_request_line(vd_conn_guard *g, vd_conn_slot *s) { enter(g, s, PHASE_HEAD); }
void vd_conn_guard_head_done(vd_conn_guard *g, vd_conn_slot *s) { enter(g, s, PHASE_BODY); }
void vd_conn_guard_busy(vd_conn_guard *g, vd_conn_slot *s) { enter(g, s, PHASE_BUSY); }
void vd_conn_guard_idle(vd_conn_guard *g, vd_conn_slot *s) { enter(g, s, PHASE_IDLE); }

bool vd_conn_guard_body(vd_conn_guard *g, vd_conn_slot *s, uint64_t received)
{
    if (!s)
        return true;
    pthread_mutex_lock(&g->lock);
    bool ok = true;
    if (s->phase == PHASE_BODY) {
        s->received = received;
        if (body_too_slow(g, s, vd_now_s())) {
            close_slot(g, s, VD_CLOSE_BODY_TOO_SLOW);
            ok = false;
        }
    }
    pthread_mutex_unlock(&g->lock);
    return ok;
}

uint64_t vd_conn_guard_live(vd_conn_guard *g)
{
    return atomic_load_explicit(&g->live, memory_order_relaxed);
}

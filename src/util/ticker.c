/* ticker.c — see ticker.h. */
#include "util/ticker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"

struct vd_ticker {
    vd_ticker_step step;
    void *ctx;
    uint64_t idle_ms;
    int nice;
    pthread_mutex_t lock; /* guards stopping */
    pthread_cond_t wake;  /* CLOCK_MONOTONIC; signalled by stop */
    bool stopping;
    pthread_t thread;
};

static void *ticker_main(void *arg)
{
    vd_ticker *t = arg;
    if (t->nice)
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), t->nice); /* best effort */
    pthread_mutex_lock(&t->lock);
    while (!t->stopping) {
        pthread_mutex_unlock(&t->lock);
        bool more = t->step(t->ctx);
        pthread_mutex_lock(&t->lock);
        if (more)
            continue;
        struct timespec until = vd_deadline_after_ms(t->idle_ms);
        while (!t->stopping && pthread_cond_timedwait(&t->wake, &t->lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int vd_ticker_start(vd_ticker **out, vd_ticker_step step, void *ctx, uint64_t idle_ms, int nice)
{
    *out = NULL;
    vd_ticker *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    *t = (vd_ticker){.step = step, .ctx = ctx, .idle_ms = idle_ms ? idle_ms : 1, .nice = nice};
    pthread_mutex_init(&t->lock, NULL);
    vd_cond_init_monotonic(&t->wake);
    if (pthread_create(&t->thread, NULL, ticker_main, t) != 0) {
        pthread_cond_destroy(&t->wake);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return -EAGAIN;
    }
    *out = t;
    return 0;
}

void vd_ticker_stop(vd_ticker *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* clock.h — seconds on the monotonic clock, for durations and deadlines. */
#ifndef VD_CLOCK_H
#define VD_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

static inline double vd_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The monotonic time ms from now, as pthread_cond_timedwait takes it (on a
 * condition variable set to CLOCK_MONOTONIC). */
static inline struct timespec vd_deadline_after_ms(uint64_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* A condition variable whose timed waits run on CLOCK_MONOTONIC (deadlines
 * from vd_deadline_after_ms; a wall-clock step cannot stretch or cut one). */
static inline void vd_cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

#endif

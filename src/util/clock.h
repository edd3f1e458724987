/* clock.h — seconds on the monotonic clock, for durations and deadlines. */
#ifndef VD_CLOCK_H
#define VD_CLOCK_H

#include <time.h>

static inline double vd_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif

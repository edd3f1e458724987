/*
 * util/ticker: the step runs again at once while it reports more work, waits
 * idle_ms once it does not, and stop ends the wait at once (it does not sit
 * out the interval) after the step in progress.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <time.h>

#include "util/ticker.h"

typedef struct counter {
    _Atomic int calls;
    int busy_for; /* the first calls that report more work */
} counter;

static bool step(void *ctx)
{
    counter *c = ctx;
    return atomic_fetch_add(&c->calls, 1) + 1 < c->busy_for;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

Test(ticker, runs_while_busy_then_waits_and_stops_at_once, .timeout = 30)
{
    counter c = {.busy_for = 50};
    vd_ticker *t;
    cr_assert_eq(vd_ticker_start(&t, step, &c, 60000, 0), 0);
    double t0 = now_s();
    while (atomic_load(&c.calls) < 50 && now_s() - t0 < 20) /* the busy calls come back to back */
        ;
    cr_assert_eq(atomic_load(&c.calls), 50);
    struct timespec pause = {0, 50 * 1000000L};
    nanosleep(&pause, NULL);
    cr_assert_eq(atomic_load(&c.calls), 50, "idle: the next step waits idle_ms (60 s)");
    double t1 = now_s();
    vd_ticker_stop(t);
    cr_assert_lt(now_s() - t1, 10.0, "stop ends the idle wait");
    cr_assert_eq(atomic_load(&c.calls), 50);
}

Test(ticker, steps_again_after_idle_ms)
{
    counter c = {.busy_for = 0};
    vd_ticker *t;
    cr_assert_eq(vd_ticker_start(&t, step, &c, 5, 0), 0);
    double t0 = now_s();
    while (atomic_load(&c.calls) < 3 && now_s() - t0 < 20)
        ;
    vd_ticker_stop(t);
    cr_assert_geq(atomic_load(&c.calls), 3);
    vd_ticker_stop(NULL);
}

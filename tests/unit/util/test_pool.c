#include <criterion/criterion.h>
#include <stdatomic.h>

#include "util/pool.h"

typedef struct {
    _Atomic int hits[1000];
    _Atomic int total;
} counter;

static void count_task(void *ctx, size_t i)
{
    counter *c = ctx;
    atomic_fetch_add(&c->hits[i], 1);
    atomic_fetch_add(&c->total, 1);
}

Test(pool, every_task_runs_once)
{
    for (unsigned threads = 0; threads <= 3; threads++) {
        vd_pool *p;
        cr_assert_eq(vd_pool_create(&p, threads), 0);
        for (int round = 0; round < 50; round++) {
            static counter c;
            memset(&c, 0, sizeof c);
            size_t n = (size_t)(round * 17 % 1000) + 1;
            vd_pool_run(p, n, count_task, &c);
            cr_assert_eq(atomic_load(&c.total), (int)n);
            for (size_t i = 0; i < n; i++)
                cr_assert_eq(atomic_load(&c.hits[i]), 1);
        }
        vd_pool_destroy(p);
    }
}

Test(pool, destroy_null_is_noop) { vd_pool_destroy(NULL); }

#include <criterion/criterion.h>
#include <stdlib.h>

#include "vectord/topk.h"

Test(topk, keeps_k_lowest_sorted)
{
    vd_hit store[5];
    vd_topk t;
    vd_topk_init(&t, store, 5);
    float keys[] = {9, 3, 7, 1, 8, 2, 6, 0.5f, 4, 5};
    for (uint32_t i = 0; i < 10; i++)
        vd_topk_push(&t, keys[i], i);
    cr_assert_eq(t.n, 5);
    cr_assert_float_eq(vd_topk_bound(&t), 4.0f, 0);
    vd_topk_sort(&t);
    float want[] = {0.5f, 1, 2, 3, 4};
    for (int i = 0; i < 5; i++)
        cr_assert_float_eq(t.hits[i].key, want[i], 0);
    cr_assert_eq(t.hits[0].slot, 7);
}

Test(topk, fewer_than_k_and_ties)
{
    vd_hit store[4];
    vd_topk t;
    vd_topk_init(&t, store, 4);
    cr_assert(vd_topk_bound(&t) > 1e30f);
    vd_topk_push(&t, 1, 5);
    vd_topk_push(&t, 1, 2);
    vd_topk_sort(&t);
    cr_assert_eq(t.n, 2);
    cr_assert_eq(t.hits[0].slot, 2, "ties break by slot");
}

Test(topk, random_against_sort)
{
    srand(42);
    enum { N = 5000, K = 37 };
    vd_hit all[N], store[K];
    vd_topk t;
    vd_topk_init(&t, store, K);
    for (uint32_t i = 0; i < N; i++) {
        all[i] = (vd_hit){(float)(rand() % 1000), i};
        vd_topk_push(&t, all[i].key, i);
    }
    vd_hits_sort(all, N);
    vd_topk_sort(&t);
    for (int i = 0; i < K; i++) {
        cr_assert_eq(t.hits[i].key, all[i].key);
        cr_assert_eq(t.hits[i].slot, all[i].slot);
    }
}

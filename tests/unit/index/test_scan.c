/*
 * index/scan: the shared exact scan measures every allowed slot once and
 * keeps the k nearest, whatever the pattern of the allowed bitmap (none,
 * fewer slots than it looks ahead, scattered, runs, everything), with float32
 * rows and with sq8 codes.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vectord/index.h"

enum { NS = 1000, DS = 24, KS = 5 };

static float vecs[NS * DS];

static void fill(void)
{
    uint64_t x = 99;
    for (size_t i = 0; i < NS * DS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        vecs[i] = (float)((x >> 11) & 0xffff) / 65536.0f - 0.5f;
    }
}

/* Brute force over the allowed slots: the k smallest keys, ascending. */
static void reference(const vd_vector_view *v, const vd_quant_query *qq, const uint64_t *allowed,
                      vd_hit *want, uint32_t *n_want)
{
    vd_topk t;
    vd_topk_init(&t, want, KS);
    for (uint32_t s = 0; s < NS; s++)
        if (allowed[s / 64] >> (s % 64) & 1)
            vd_topk_push(&t, vd_view_key(v, qq, s), s);
    vd_topk_sort(&t);
    *n_want = t.n;
}

static void check_patterns(const vd_vector_view *v, const vd_quant_query *qq)
{
    static uint64_t allowed[(NS + 63) / 64];
    for (int pattern = 0; pattern < 6; pattern++) {
        memset(allowed, 0, sizeof allowed);
        size_t expect = 0;
        for (uint32_t s = 0; s < NS; s++) {
            bool on = pattern == 1 ? s == 500
                    : pattern == 2 ? s == 3 || s == 4 || s == 900
                    : pattern == 3 ? s % 97 == 5
                    : pattern == 4 ? (s / 50) % 3 == 0 /* runs of 50 */
                    : pattern == 5;                    /* everything; 0: nothing */
            if (on) {
                allowed[s / 64] |= 1ull << (s % 64);
                expect++;
            }
        }
        vd_index_query q = {.query = qq, .allowed = allowed, .n_allowed = expect,
                            .max_key = __builtin_inff()};
        vd_hit got_h[KS], want[KS];
        vd_topk got;
        vd_topk_init(&got, got_h, KS);
        cr_assert_eq(vd_index_scan(v, &q, &got), expect, "pattern %d: every allowed slot once", pattern);
        vd_topk_sort(&got);
        uint32_t n_want;
        reference(v, qq, allowed, want, &n_want);
        cr_assert_eq(got.n, n_want, "pattern %d", pattern);
        for (uint32_t i = 0; i < n_want; i++)
            cr_assert_eq(got_h[i].slot, want[i].slot, "pattern %d, hit %u", pattern, i);
    }
}

Test(scan, float32_rows_every_pattern)
{
    vd_distance_init(-1);
    fill();
    vd_vector_view v = {.vecs = vecs, .dim = DS, .n_slots = NS, .metric = VD_METRIC_L2};
    vd_quant_query qq;
    vd_quant_query_init(&qq, VD_QUANT_NONE, VD_METRIC_L2, vecs + 7 * DS, DS, NULL);
    check_patterns(&v, &qq);
}

Test(scan, sq8_codes_every_pattern)
{
    vd_distance_init(-1);
    fill();
    size_t code = vd_quant_code_size(VD_QUANT_SQ8, DS);
    uint8_t *codes = malloc(NS * code);
    int8_t q8[DS];
    for (uint32_t s = 0; s < NS; s++)
        vd_quant_encode(VD_QUANT_SQ8, vecs + (size_t)s * DS, DS, codes + s * code);
    vd_vector_view v = {.vecs = vecs, .codes = codes, .code_size = code, .quant = VD_QUANT_SQ8,
                        .dim = DS, .n_slots = NS, .metric = VD_METRIC_L2};
    vd_quant_query qq;
    vd_quant_query_init(&qq, VD_QUANT_SQ8, VD_METRIC_L2, vecs + 7 * DS, DS, q8);
    check_patterns(&v, &qq);
    free(codes);
}

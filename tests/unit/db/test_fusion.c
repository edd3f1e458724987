/* Fusion of ranked lists: reciprocal rank fusion (Qdrant's published
 * figures), weights, distribution-based score fusion, the union, and that
 * every hit is either in the answer once or freed (ASan checks the rest). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "db/fusion.h"

static vd_point_out *list_of(const uint64_t *ids, const float *scores, size_t n)
{
    vd_point_out *l = calloc(n ? n : 1, sizeof *l);
    for (size_t i = 0; i < n; i++) {
        l[i].id = (vd_point_id){.kind = VD_ID_INT, .num = ids[i]};
        l[i].score = scores[i];
        l[i].payload = cJSON_CreateObject(); /* something to free or move */
    }
    return l;
}

static void free_list(vd_point_out *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vd_point_out_free(&l[i]);
    free(l);
}

Test(fusion, rrf_matches_the_published_example)
{
    const uint64_t a[] = {2, 1}, b[] = {1, 2, 3}, c[] = {5, 3, 1};
    const float sa[] = {0.9f, 0.8f}, sb[] = {0.7f, 0.6f, 0.5f}, sc[] = {0.9f, 0.5f, 0.4f};
    vd_point_out *lists[3] = {list_of(a, sa, 2), list_of(b, sb, 3), list_of(c, sc, 3)};
    size_t n[3] = {2, 3, 3}, n_out;
    vd_point_out *out;
    vd_fusion f = {.method = VD_FUSION_RRF, .k = VD_RRF_K_DEFAULT};
    cr_assert_eq(vd_fuse(&f, lists, n, 3, &out, &n_out), 0);
    cr_assert_eq(n_out, 4);
    const uint64_t want_ids[] = {1, 2, 3, 5};
    const float want[] = {1.0833334f, 0.8333334f, 0.5833334f, 0.5f};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(out[i].id.num, want_ids[i], "rank %zu", i);
        cr_assert_float_eq(out[i].score, want[i], 1e-6, "rank %zu", i);
        cr_assert_not_null(out[i].payload);
    }
    free_list(out, n_out);
}

Test(fusion, weights_compress_positions)
{
    const uint64_t a[] = {1, 2}, b[] = {2, 1};
    const float s[] = {0.9f, 0.8f};
    vd_point_out *lists[2] = {list_of(a, s, 2), list_of(b, s, 2)};
    size_t n[2] = {2, 2}, n_out;
    vd_point_out *out;
    const float w[] = {3.0f, 1.0f};
    vd_fusion f = {.method = VD_FUSION_RRF, .k = 2, .weights = w};
    cr_assert_eq(vd_fuse(&f, lists, n, 2, &out, &n_out), 0);
    cr_assert_eq(out[0].id.num, 2); /* 2nd of the weighted list costs less than 2nd of the other */
    cr_assert_gt(out[0].score, out[1].score);
    free_list(out, n_out);
}

Test(fusion, dbsf_normalises_each_list)
{
    const uint64_t a[] = {1, 2, 3}, b[] = {4};
    const float sa[] = {3.0f, 2.0f, 1.0f}, sb[] = {100.0f};
    vd_point_out *lists[2] = {list_of(a, sa, 3), list_of(b, sb, 1)};
    size_t n[2] = {3, 1}, n_out;
    vd_point_out *out;
    vd_fusion f = {.method = VD_FUSION_DBSF};
    cr_assert_eq(vd_fuse(&f, lists, n, 2, &out, &n_out), 0);
    /* mean 2, sd 1: [−1, 5] → 3 ↦ 4/6, 2 ↦ 0.5, 1 ↦ 2/6; a lone score is 0.5 (ties: first seen first). */
    cr_assert_eq(n_out, 4);
    cr_assert_eq(out[0].id.num, 1);
    cr_assert_float_eq(out[0].score, 4.0f / 6, 1e-6);
    cr_assert_eq(out[1].id.num, 2);
    cr_assert_eq(out[2].id.num, 4);
    cr_assert_float_eq(out[2].score, 0.5f, 1e-6);
    cr_assert_float_eq(out[3].score, 2.0f / 6, 1e-6);
    free_list(out, n_out);
    /* Distances: the nearest (lowest) is the most relevant. */
    const float da[] = {1.0f, 2.0f, 3.0f};
    vd_point_out *dl[1] = {list_of(a, da, 3)};
    size_t dn[1] = {3};
    f.distances = true;
    cr_assert_eq(vd_fuse(&f, dl, dn, 1, &out, &n_out), 0);
    cr_assert_eq(out[0].id.num, 1);
    free_list(out, n_out);
}

Test(fusion, union_keeps_each_point_once_with_its_first_score)
{
    const uint64_t a[] = {7, 8}, b[] = {8, 9};
    const float sa[] = {0.9f, 0.5f}, sb[] = {0.95f, 0.1f};
    vd_point_out *lists[2] = {list_of(a, sa, 2), list_of(b, sb, 2)};
    size_t n[2] = {2, 2}, n_out;
    vd_point_out *out;
    vd_fusion f = {.method = VD_FUSION_UNION};
    cr_assert_eq(vd_fuse(&f, lists, n, 2, &out, &n_out), 0);
    cr_assert_eq(n_out, 3);
    cr_assert_eq(out[0].id.num, 7);
    cr_assert_float_eq(out[1].score, 0.5f, 1e-6); /* 8 as the first list saw it */
    free_list(out, n_out);
    /* No lists, or empty ones: an empty answer. */
    vd_point_out *none[1] = {calloc(1, sizeof(vd_point_out))};
    size_t zero[1] = {0};
    cr_assert_eq(vd_fuse(&f, none, zero, 1, &out, &n_out), 0);
    cr_assert_eq(n_out, 0);
    free(out);
}

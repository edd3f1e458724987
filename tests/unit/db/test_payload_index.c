#include <criterion/criterion.h>
#include <math.h>

#include "db/payload_index.h"

Test(payload_index, keyword_postings_sorted_and_removed)
{
    vd_pindex *idx;
    cr_assert_eq(vd_pindex_create(&idx, "user.id", VD_PINDEX_KEYWORD), 0);
    cJSON *a = cJSON_Parse("{\"user\":{\"id\":\"u1\"}}");
    cJSON *b = cJSON_Parse("{\"user\":{\"id\":[\"u1\",\"u2\",\"u1\"]}}");
    cJSON *c = cJSON_Parse("{\"user\":{\"id\":7}}");
    cr_assert_eq(vd_pindex_add(idx, 9, a), 0);
    cr_assert_eq(vd_pindex_add(idx, 2, b), 0);
    cr_assert_eq(vd_pindex_add(idx, 5, c), 0);
    const vd_posting *p = vd_pindex_lookup(idx, "s:u1");
    cr_assert_eq(p->n, 2);
    cr_assert_eq(p->slots[0], 2);
    cr_assert_eq(p->slots[1], 9);
    cr_assert_eq(vd_pindex_lookup(idx, "s:u2")->n, 1);
    cr_assert_eq(vd_pindex_lookup(idx, "i:7")->slots[0], 5);
    cr_assert_null(vd_pindex_lookup(idx, "s:7"));
    vd_pindex_remove(idx, 2, b);
    cr_assert_eq(vd_pindex_lookup(idx, "s:u1")->n, 1);
    cr_assert_null(vd_pindex_lookup(idx, "s:u2"), "empty postings are dropped");
    size_t before = vd_pindex_bytes(idx);
    for (uint32_t s = 100; s < 5000; s++)
        cr_assert_eq(vd_pindex_add(idx, s, a), 0);
    cr_assert(vd_pindex_bytes(idx) > before);
    cr_assert_eq(vd_pindex_lookup(idx, "s:u1")->n, 4901);
    vd_pindex_destroy(idx);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
}

Test(payload_index, numeric_column)
{
    vd_pindex *idx;
    cr_assert_eq(vd_pindex_create(&idx, "n", VD_PINDEX_NUMERIC), 0);
    cJSON *a = cJSON_Parse("{\"n\":2.5}");
    cJSON *arr = cJSON_Parse("{\"n\":[1,2]}");
    cJSON *s = cJSON_Parse("{\"n\":\"x\"}");
    cr_assert_eq(vd_pindex_add(idx, 3000, a), 0);
    cr_assert_eq(vd_pindex_add(idx, 1, arr), 0);
    cr_assert_eq(vd_pindex_add(idx, 2, s), 0);
    cr_assert_float_eq(idx->values[3000], 2.5, 0);
    cr_assert(isnan(idx->values[2]));
    cr_assert(isnan(idx->values[0]));
    cr_assert((idx->multi[0] >> 1) & 1, "array values are flagged for payload checks");
    vd_pindex_remove(idx, 3000, a);
    cr_assert(isnan(idx->values[3000]));
    vd_pindex_destroy(idx);
    cJSON_Delete(a);
    cJSON_Delete(arr);
    cJSON_Delete(s);
}

Test(payload_index, type_names)
{
    vd_pindex_type t;
    cr_assert_eq(vd_pindex_type_parse("keyword", &t), 0);
    cr_assert_eq(t, VD_PINDEX_KEYWORD);
    cr_assert_eq(vd_pindex_type_parse("integer", &t), 0);
    cr_assert_eq(t, VD_PINDEX_NUMERIC);
    cr_assert_neq(vd_pindex_type_parse("geo", &t), 0);
    vd_pindex_destroy(NULL);
}

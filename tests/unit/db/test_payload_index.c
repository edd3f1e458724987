#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "db/payload_index.h"
#include "vectord/quant.h"

Test(payload_index, keyword_postings_sorted_and_removed)
{
    vd_pindex *idx;
    cr_assert_eq(vd_pindex_create(&idx, "user.id", VD_PINDEX_KEYWORD, 0), 0);
    cJSON *a = cJSON_Parse("{\"user\":{\"id\":\"u1\"}}");
    cJSON *b = cJSON_Parse("{\"user\":{\"id\":[\"u1\",\"u2\",\"u1\"]}}");
    cJSON *c = cJSON_Parse("{\"user\":{\"id\":7}}");
    cr_assert_eq(vd_pindex_add(idx, 9, a, NULL), 0);
    cr_assert_eq(vd_pindex_add(idx, 2, b, NULL), 0);
    cr_assert_eq(vd_pindex_add(idx, 5, c, NULL), 0);
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
        cr_assert_eq(vd_pindex_add(idx, s, a, NULL), 0);
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
    cr_assert_eq(vd_pindex_create(&idx, "n", VD_PINDEX_NUMERIC, 0), 0);
    cJSON *a = cJSON_Parse("{\"n\":2.5}");
    cJSON *arr = cJSON_Parse("{\"n\":[1,2]}");
    cJSON *s = cJSON_Parse("{\"n\":\"x\"}");
    cr_assert_eq(vd_pindex_add(idx, 3000, a, NULL), 0);
    cr_assert_eq(vd_pindex_add(idx, 1, arr, NULL), 0);
    cr_assert_eq(vd_pindex_add(idx, 2, s, NULL), 0);
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
    cr_assert_eq(vd_pindex_type_parse("tenant", &t), 0);
    cr_assert_eq(t, VD_PINDEX_TENANT);
    cr_assert_str_eq(vd_pindex_type_name(t), "tenant");
    cr_assert(vd_pindex_is_keyword(t) && !vd_pindex_is_keyword(VD_PINDEX_NUMERIC));
    cr_assert_neq(vd_pindex_type_parse("geo", &t), 0);
    vd_pindex_destroy(NULL);
}

/* A tenant index keeps each value's codes side by side: every block holds
 * exactly the slots whose single value it is (arrays in `loose`), each code
 * decodes close to its slot's vector, and removals keep that true. */
static void check_blocks(const vd_pindex *idx, const char *const *who, int n_slots, const float *vecs,
                         uint32_t dim)
{
    size_t cs = vd_tenant_code_size(dim);
    float x[8];
    for (int slot = 0; slot < n_slots; slot++) {
        const vd_tenant_block *b = who[slot] == NULL ? NULL
                                   : strcmp(who[slot], "loose") == 0 ? &idx->loose
                                                                     : vd_pindex_tenant_block(idx, who[slot]);
        int found = 0;
        for (uint32_t i = 0; b && i < b->n; i++) {
            if (b->slots[i] != (uint32_t)slot)
                continue;
            found++;
            vd_quant_decode(VD_QUANT_SQ8, b->codes + i * cs, dim, x);
            for (uint32_t d = 0; d < dim; d++)
                cr_assert_float_eq(x[d], vecs[slot * dim + d], 0.02f, "slot %d dim %u", slot, d);
        }
        cr_assert_eq(found, who[slot] ? 1 : 0, "slot %d", slot);
    }
    size_t total = idx->loose.n;
    for (const char *k = "s:a"; k; k = strcmp(k, "s:a") == 0 ? "s:b" : NULL) {
        const vd_tenant_block *b = vd_pindex_tenant_block(idx, k);
        total += b ? b->n : 0;
    }
    size_t live = 0;
    for (int slot = 0; slot < n_slots; slot++)
        live += who[slot] != NULL;
    cr_assert_eq(total, live);
}

Test(payload_index, tenant_blocks_follow_adds_and_removes)
{
    enum { N = 40, DIM = 8 };
    vd_pindex *idx;
    cr_assert_neq(vd_pindex_create(&idx, "u", VD_PINDEX_TENANT, 0), 0, "a tenant index needs the dimensions");
    cr_assert_eq(vd_pindex_create(&idx, "u", VD_PINDEX_TENANT, DIM), 0);
    float vecs[N * DIM];
    for (int i = 0; i < N * DIM; i++)
        vecs[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    cJSON *a = cJSON_Parse("{\"u\":\"a\"}"), *b = cJSON_Parse("{\"u\":\"b\"}");
    cJSON *both = cJSON_Parse("{\"u\":[\"a\",\"b\"]}"), *none = cJSON_Parse("{\"v\":1}");
    const cJSON *pl[N];
    const char *who[N];
    for (int i = 0; i < N; i++) {
        pl[i] = i % 7 == 0 ? both : i % 11 == 0 ? none : i % 2 ? a : b;
        who[i] = pl[i] == both ? "loose" : pl[i] == none ? NULL : pl[i] == a ? "s:a" : "s:b";
        cr_assert_eq(vd_pindex_add(idx, (uint32_t)i, pl[i], vecs + i * DIM), 0);
    }
    cr_assert_eq(vd_pindex_add(idx, 99, a, NULL), -EINVAL, "a tenant index needs the vector");
    check_blocks(idx, who, N, vecs, DIM);
    /* the posting lists are a keyword index's: arrays count under each value */
    cr_assert_eq(vd_pindex_lookup(idx, "s:a")->n, idx->loose.n + vd_pindex_tenant_block(idx, "s:a")->n);
    size_t full = vd_pindex_bytes(idx);
    for (int i = 0; i < N; i += 3) { /* out of order: the blocks fill their holes from the end */
        vd_pindex_remove(idx, (uint32_t)i, pl[i]);
        who[i] = NULL;
        check_blocks(idx, who, N, vecs, DIM);
    }
    cr_assert_lt(vd_pindex_bytes(idx), full + 1);
    for (int i = 0; i < N; i++) {
        vd_pindex_remove(idx, (uint32_t)i, pl[i]);
        who[i] = NULL;
    }
    check_blocks(idx, who, N, vecs, DIM);
    cr_assert_eq(idx->tenant_bytes, 0, "emptied blocks give their memory back");
    cr_assert_null(vd_pindex_tenant_block(idx, "s:a"));
    vd_pindex_destroy(idx);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(both);
    cJSON_Delete(none);
}

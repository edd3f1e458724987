#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "db/idmap.h"

enum { N = 20000 };
static vd_point_id ids[N];
static char names[N][16];

static const vd_point_id *id_of(void *ctx, uint32_t slot)
{
    (void)ctx;
    return &ids[slot];
}

static void make_ids(void)
{
    for (uint32_t i = 0; i < N; i++) {
        if (i % 2) {
            ids[i] = (vd_point_id){.kind = VD_ID_INT, .num = i * 7919ULL};
        } else {
            snprintf(names[i], sizeof names[i], "mem_%u", i);
            ids[i] = (vd_point_id){.kind = VD_ID_STR, .len = (uint32_t)strlen(names[i]), .str = names[i]};
        }
    }
}

Test(idmap, insert_find_remove)
{
    make_ids();
    vd_idmap m;
    vd_idmap_init(&m, id_of, NULL);
    for (uint32_t i = 0; i < N; i++)
        cr_assert_eq(vd_idmap_insert(&m, vd_id_hash(&ids[i]), i), 0);
    uint32_t slot;
    for (uint32_t i = 0; i < N; i++) {
        cr_assert(vd_idmap_find(&m, &ids[i], vd_id_hash(&ids[i]), &slot));
        cr_assert_eq(slot, i);
    }
    /* Remove every third and check the rest survive the backward shifts. */
    for (uint32_t i = 0; i < N; i += 3)
        cr_assert(vd_idmap_remove(&m, &ids[i], vd_id_hash(&ids[i])));
    for (uint32_t i = 0; i < N; i++) {
        bool found = vd_idmap_find(&m, &ids[i], vd_id_hash(&ids[i]), &slot);
        cr_assert_eq(found, i % 3 != 0, "id %u", i);
        if (found)
            cr_assert_eq(slot, i);
    }
    cr_assert_eq(m.n, N - (N + 2) / 3);
    cr_assert_not(vd_idmap_remove(&m, &ids[0], vd_id_hash(&ids[0])));
    vd_idmap_destroy(&m);
}

Test(idmap, int_and_string_ids_differ)
{
    vd_point_id a = {.kind = VD_ID_INT, .num = 42};
    vd_point_id b = {.kind = VD_ID_STR, .len = 2, .str = "42"};
    cr_assert_not(vd_id_equal(&a, &b));
    cr_assert_neq(vd_id_hash(&a), vd_id_hash(&b));
}

Test(idmap, hash_is_stable)
{
    /* Shard routing depends on these values: a change would move points. */
    vd_point_id a = {.kind = VD_ID_INT, .num = 1};
    vd_point_id b = {.kind = VD_ID_STR, .len = 5, .str = "mem_1"};
    uint64_t ha = vd_id_hash(&a), hb = vd_id_hash(&b);
    cr_assert_eq(vd_id_hash(&a), ha);
    cr_assert_neq(ha, hb);
    cr_log_info("hash(1)=%llx hash(mem_1)=%llx", (unsigned long long)ha, (unsigned long long)hb);
}

Test(idmap, shard_routing_is_balanced)
{
    make_ids();
    for (unsigned shards = 2; shards <= 16; shards *= 2) {
        unsigned count[16] = {0};
        for (uint32_t i = 0; i < N; i++)
            count[vd_id_hash(&ids[i]) % shards]++;
        for (unsigned s = 0; s < shards; s++) {
            double share = (double)count[s] / N * shards;
            cr_assert(share > 0.9 && share < 1.1, "shard %u of %u holds %u", s, shards, count[s]);
        }
    }
}

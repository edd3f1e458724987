/* What deletes remember (db/graveyard.h): one record per id, the newest;
 * the oldest go first past the cap; forgetting; the snapshot section. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "db/graveyard.h"

static uint64_t hash_of(const void *ctx, const vd_point_id *id)
{
    (void)ctx;
    uint64_t h = 1469598103934665603ULL;
    if (id->kind == VD_ID_INT)
        return id->num * 0x9E3779B97F4A7C15ULL;
    for (uint32_t i = 0; i < id->len; i++)
        h = (h ^ (uint8_t)id->str[i]) * 1099511628211ULL;
    return h;
}

static vd_point_id int_id(uint64_t n) { return (vd_point_id){.kind = VD_ID_INT, .num = n}; }

Test(graveyard, keeps_the_newest_record_per_id_and_forgets)
{
    vd_graveyard g;
    vd_graveyard_init(&g);
    vd_point_id a = int_id(7), b = {.kind = VD_ID_STR, .len = 3, .str = "mem"};
    uint64_t v;
    cr_assert_not(vd_graveyard_find(&g, &a, hash_of(NULL, &a), &v));
    cr_assert_eq(vd_graveyard_bury(&g, &a, hash_of(NULL, &a), 10), 0);
    cr_assert_eq(vd_graveyard_bury(&g, &b, hash_of(NULL, &b), 4), 0);
    cr_assert_eq(vd_graveyard_bury(&g, &a, hash_of(NULL, &a), 12), 0);
    cr_assert(vd_graveyard_find(&g, &a, hash_of(NULL, &a), &v) && v == 12);
    cr_assert(vd_graveyard_find(&g, &b, hash_of(NULL, &b), &v) && v == 4);
    vd_graveyard_forget(&g, &b, hash_of(NULL, &b));
    cr_assert_not(vd_graveyard_find(&g, &b, hash_of(NULL, &b), &v));
    vd_graveyard_destroy(&g);
}

Test(graveyard, the_oldest_records_go_first_past_the_cap)
{
    vd_graveyard g;
    vd_graveyard_init(&g);
    for (uint64_t i = 0; i < VD_GRAVEYARD_CAP + 100; i++) {
        vd_point_id id = int_id(i);
        cr_assert_eq(vd_graveyard_bury(&g, &id, hash_of(NULL, &id), i + 1), 0);
    }
    uint64_t v;
    for (uint64_t i = 0; i < VD_GRAVEYARD_CAP + 100; i++) {
        vd_point_id id = int_id(i);
        bool kept = vd_graveyard_find(&g, &id, hash_of(NULL, &id), &v);
        cr_assert_eq(kept, i >= 100, "id %llu", (unsigned long long)i);
        if (kept)
            cr_assert_eq(v, i + 1);
    }
    vd_graveyard_destroy(&g);
}

Test(graveyard, the_snapshot_section_round_trips)
{
    vd_graveyard g, h;
    vd_graveyard_init(&g);
    vd_graveyard_init(&h);
    char names[50][16];
    for (int i = 0; i < 50; i++) {
        snprintf(names[i], sizeof names[i], "id-%d", i);
        vd_point_id s = {.kind = VD_ID_STR, .len = (uint32_t)strlen(names[i]), .str = names[i]};
        vd_point_id n = int_id((uint64_t)i);
        cr_assert_eq(vd_graveyard_bury(&g, &s, hash_of(NULL, &s), (uint64_t)i + 100), 0);
        cr_assert_eq(vd_graveyard_bury(&g, &n, hash_of(NULL, &n), (uint64_t)i + 200), 0);
    }
    vd_point_id gone = int_id(3);
    vd_graveyard_forget(&g, &gone, hash_of(NULL, &gone));
    vd_strbuf b;
    vd_strbuf_init(&b, 0);
    vd_graveyard_save(&g, &b);
    vd_reader r = vd_reader_of((const uint8_t *)b.data, b.len);
    cr_assert_eq(vd_graveyard_load(&h, &r, hash_of, NULL), 0);
    cr_assert_eq(vd_reader_left(&r), 0);
    uint64_t v;
    for (int i = 0; i < 50; i++) {
        vd_point_id s = {.kind = VD_ID_STR, .len = (uint32_t)strlen(names[i]), .str = names[i]};
        vd_point_id n = int_id((uint64_t)i);
        cr_assert(vd_graveyard_find(&h, &s, hash_of(NULL, &s), &v) && v == (uint64_t)i + 100);
        cr_assert_eq(vd_graveyard_find(&h, &n, hash_of(NULL, &n), &v), i != 3);
    }
    /* Malformed: a record cut short, an unknown id kind. */
    vd_graveyard bad;
    vd_graveyard_init(&bad);
    r = vd_reader_of((const uint8_t *)b.data, b.len - 3);
    cr_assert_eq(vd_graveyard_load(&bad, &r, hash_of, NULL), -EINVAL);
    vd_graveyard_destroy(&bad);
    vd_graveyard_init(&bad);
    const uint8_t junk[] = {1, 0, 0, 0, 9};
    r = vd_reader_of(junk, sizeof junk);
    cr_assert_eq(vd_graveyard_load(&bad, &r, hash_of, NULL), -EINVAL);
    vd_graveyard_destroy(&bad);
    vd_strbuf_free(&b);
    vd_graveyard_destroy(&g);
    vd_graveyard_destroy(&h);
}

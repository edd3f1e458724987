/* Filter language: parse errors, single-payload semantics, and bitmap
 * evaluation with and without payload indexes against a payload scan. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "db/filter.h"
#include "util/bitset.h"

static vd_filter *parse_ok(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    cr_assert(j, "bad test JSON: %s", text);
    vd_filter *f = NULL;
    vd_errmsg em = {{0}};
    int rc = vd_filter_parse(j, 8, 0, &f, &em);
    cr_assert_eq(rc, 0, "%s: %s", text, em.text);
    cJSON_Delete(j);
    return f;
}

static void parse_fails(const char *text, const char *needle)
{
    cJSON *j = cJSON_Parse(text);
    cr_assert(j);
    vd_filter *f = NULL;
    vd_errmsg em = {{0}};
    cr_assert_eq(vd_filter_parse(j, 3, 0, &f, &em), VD_E_INVALID_FILTER, "%s parsed", text);
    cr_assert_null(f);
    cr_assert(strstr(em.text, needle), "message '%s' lacks '%s'", em.text, needle);
    cJSON_Delete(j);
}

Test(filter, parse_errors_name_the_problem)
{
    parse_fails("[]", "filter must be an object");
    parse_fails("{\"must\":[{\"has_id\":5}]}", "has_id must be the condition's only field");
    parse_fails("{\"must\":[{\"has_id\":[1],\"key\":\"a\"}]}", "has_id must be the condition's only field");
    parse_fails("{\"must\":[{\"has_id\":[-1]}]}", "has_id[0] must be a point id");
    parse_fails("{\"must\":[{\"has_id\":[1,1.5]}]}", "has_id[1] must be a point id");
    parse_fails("{\"must\":[{\"has_id\":[\"\"]}]}", "has_id[0] must be a point id");
    parse_fails("{\"musts\":[]}", "unknown field 'musts'");
    parse_fails("{\"must\":{}}", "filter.must must be an array");
    parse_fails("{\"must\":[{\"key\":\"a\"}]}", "exactly one of \"match\", \"range\" or \"values_count\"");
    parse_fails("{\"must\":[{\"is_empty\":{\"key\":\"a\"},\"key\":\"b\"}]}", "only field");
    parse_fails("{\"must\":[{\"nested\":{\"key\":\"a\"}}]}", "needs \"key\" and \"filter\"");
    parse_fails("{\"must\":[{\"key\":\"a\",\"range\":{\"gte\":\"yesterday\"}}]}", "RFC 3339");
    parse_fails("{\"must\":[{\"key\":\"a\",\"range\":{\"gte\":\"2026-01-01\",\"lt\":5}}]}", "mixes");
    parse_fails("{\"min_should\":{\"conditions\":[]}}", "min_count");
    parse_fails("{\"must\":[{\"key\":\"a\",\"values_count\":{\"gt\":\"2026-01-01\"}}]}", "finite number");
    parse_fails("{\"must\":[{\"key\":\"\",\"match\":{\"value\":1}}]}", "non-empty string");
    parse_fails("{\"must\":[{\"key\":\"a..b\",\"match\":{\"value\":1}}]}", "empty part");
    parse_fails("{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1.5}}]}",
                "filter.must[0].match.value must be a string, an integer or a boolean");
    parse_fails("{\"must\":[{\"key\":\"a\",\"match\":{\"any\":[]}}]}", "non-empty array");
    parse_fails("{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1,\"any\":[1]}}]}", "exactly one");
    parse_fails("{\"must\":[{\"key\":\"a\",\"range\":{}}]}", "at least one");
    parse_fails("{\"must\":[{\"key\":\"a\",\"range\":{\"gte\":\"1\"}}]}", "range.gte is not an RFC 3339 date-time");
    parse_fails("{\"must\":[{\"key\":\"a\",\"range\":{\"from\":1}}]}", "unknown field 'from'");
    parse_fails("{\"must\":[{\"must\":[{\"must\":[{\"must\":[]}]}]}]}", "deeper than 3");
    parse_fails("{\"should\":[1]}", "filter.should[0] must be an object");
}

Test(filter, semantics_on_one_payload)
{
    cJSON *p = cJSON_Parse("{\"userId\":\"u1\",\"n\":5,\"tags\":[\"a\",\"b\"],\"flag\":true,"
                           "\"meta\":{\"lang\":\"en\",\"score\":0.5},\"empty\":[],\"nothing\":null,"
                           "\"items\":[{\"k\":\"x\",\"v\":2},{\"k\":\"y\",\"v\":3}],"
                           "\"at\":\"2026-12-05T10:30:00Z\"}");
    struct {
        const char *filter;
        bool match;
    } cases[] = {
        {"{}", true},
        {"{\"must\":[{\"key\":\"userId\",\"match\":{\"value\":\"u1\"}}]}", true},
        {"{\"must\":[{\"key\":\"userId\",\"match\":{\"value\":\"u2\"}}]}", false},
        {"{\"must\":[{\"key\":\"n\",\"match\":{\"value\":5}}]}", true},
        {"{\"must\":[{\"key\":\"n\",\"match\":{\"value\":\"5\"}}]}", false},
        {"{\"must\":[{\"key\":\"flag\",\"match\":{\"value\":true}}]}", true},
        {"{\"must\":[{\"key\":\"tags\",\"match\":{\"value\":\"b\"}}]}", true},
        {"{\"must\":[{\"key\":\"tags\",\"match\":{\"any\":[\"x\",\"a\"]}}]}", true},
        {"{\"must\":[{\"key\":\"meta.lang\",\"match\":{\"value\":\"en\"}}]}", true},
        {"{\"must\":[{\"key\":\"meta.score\",\"range\":{\"gt\":0.4,\"lte\":0.5}}]}", true},
        {"{\"must\":[{\"key\":\"meta.score\",\"range\":{\"gt\":0.5}}]}", false},
        {"{\"must\":[{\"key\":\"missing\",\"range\":{\"gt\":0}}]}", false},
        {"{\"must_not\":[{\"key\":\"missing\",\"match\":{\"value\":1}}]}", true},
        {"{\"should\":[{\"key\":\"n\",\"range\":{\"lt\":0}},{\"key\":\"n\",\"range\":{\"gte\":5}}]}", true},
        {"{\"should\":[{\"key\":\"n\",\"range\":{\"lt\":0}}]}", false},
        {"{\"must\":[{\"should\":[{\"key\":\"userId\",\"match\":{\"value\":\"zz\"}},"
         "{\"must_not\":[{\"key\":\"flag\",\"match\":{\"value\":false}}]}]}]}",
         true},
        /* except, is_empty, is_null, values_count, nested, min_should, date-times */
        {"{\"must\":[{\"key\":\"userId\",\"match\":{\"except\":[\"u2\",\"u3\"]}}]}", true},
        {"{\"must\":[{\"key\":\"userId\",\"match\":{\"except\":[\"u1\"]}}]}", false},
        {"{\"must\":[{\"key\":\"tags\",\"match\":{\"except\":[\"a\"]}}]}", true},
        {"{\"must\":[{\"key\":\"missing\",\"match\":{\"except\":[\"a\"]}}]}", false},
        {"{\"must\":[{\"is_empty\":{\"key\":\"missing\"}}]}", true},
        {"{\"must\":[{\"is_empty\":{\"key\":\"empty\"}}]}", true},
        {"{\"must\":[{\"is_empty\":{\"key\":\"nothing\"}}]}", true},
        {"{\"must\":[{\"is_empty\":{\"key\":\"tags\"}}]}", false},
        {"{\"must\":[{\"is_null\":{\"key\":\"nothing\"}}]}", true},
        {"{\"must\":[{\"is_null\":{\"key\":\"missing\"}}]}", false},
        {"{\"must\":[{\"key\":\"tags\",\"values_count\":{\"gte\":2,\"lt\":3}}]}", true},
        {"{\"must\":[{\"key\":\"n\",\"values_count\":{\"gt\":1}}]}", false},
        {"{\"must\":[{\"key\":\"missing\",\"values_count\":{\"lt\":1}}]}", true},
        {"{\"must\":[{\"nested\":{\"key\":\"items\",\"filter\":{\"must\":[{\"key\":\"k\",\"match\":{\"value\":\"x\"}},"
         "{\"key\":\"v\",\"range\":{\"gte\":2}}]}}}]}", true},
        {"{\"must\":[{\"nested\":{\"key\":\"items\",\"filter\":{\"must\":[{\"key\":\"k\",\"match\":{\"value\":\"x\"}},"
         "{\"key\":\"v\",\"range\":{\"gte\":3}}]}}}]}", false}, /* no one element has both */
        {"{\"min_should\":{\"conditions\":[{\"key\":\"n\",\"match\":{\"value\":5}},"
         "{\"key\":\"flag\",\"match\":{\"value\":false}},{\"key\":\"userId\",\"match\":{\"value\":\"u1\"}}],\"min_count\":2}}", true},
        {"{\"min_should\":{\"conditions\":[{\"key\":\"n\",\"match\":{\"value\":5}},"
         "{\"key\":\"flag\",\"match\":{\"value\":false}}],\"min_count\":2}}", false},
        {"{\"must\":[{\"key\":\"at\",\"range\":{\"gte\":\"2026-12-05T00:00:00Z\",\"lt\":\"2026-12-06\"}}]}", true},
        {"{\"must\":[{\"key\":\"at\",\"range\":{\"gt\":\"2026-12-05T11:30:00+01:00\"}}]}", false},
        {"{\"must\":[{\"key\":\"at\",\"range\":{\"gte\":\"2026-12-05T11:30:00+01:00\"}}]}", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vd_filter *f = parse_ok(cases[i].filter);
        cr_assert_eq(vd_filter_match(f, p), cases[i].match, "%s", cases[i].filter);
        vd_filter_destroy(f);
    }
    vd_filter *f = parse_ok("{\"must\":[{\"key\":\"n\",\"range\":{\"gte\":0}}]}");
    cr_assert_not(vd_filter_match(f, NULL), "a point without payload matches no condition");
    vd_filter_destroy(f);
    f = parse_ok("{\"should\":[{\"has_id\":[7,\"a\"]}]}");
    vd_point_id seven = {.kind = VD_ID_INT, .num = 7}, eight = {.kind = VD_ID_INT, .num = 8};
    vd_point_id a = {.kind = VD_ID_STR, .str = "a", .len = 1}, seven_str = {.kind = VD_ID_STR, .str = "7", .len = 1};
    cr_assert(vd_filter_match_point(f, &seven, p) && vd_filter_match_point(f, &a, NULL));
    cr_assert_not(vd_filter_match_point(f, &eight, p) || vd_filter_match_point(f, &seven_str, p));
    cr_assert_not(vd_filter_match(f, p), "without the id, has_id holds for no point");
    vd_filter_destroy(f);
    cJSON_Delete(p);
}

/* ---- bitmap evaluation over a synthetic shard ---- */

enum { N = 3000 };
static cJSON *payloads[N];

static const cJSON *payload_of(const void *ctx, uint32_t slot)
{
    (void)ctx;
    return payloads[slot];
}

static void make_payloads(void)
{
    srand(7);
    for (int i = 0; i < N; i++) {
        char buf[256];
        int user = rand() % 50, kind = rand() % 4, n = rand() % 1000;
        if (i % 97 == 0) {
            payloads[i] = NULL;
            continue;
        }
        snprintf(buf, sizeof buf,
                 "{\"userId\":\"u%d\",\"type\":\"t%d\",\"n\":%d,\"tags\":[%d,%d],\"m\":{\"x\":%d},"
                 "\"at\":\"2026-%02d-%02dT%02d:00:00%s\"}",
                 user, kind, n, n % 5, n % 7, n % 3, 1 + n % 12, 1 + n % 28, n % 24, n % 2 ? "Z" : "+01:00");
        payloads[i] = cJSON_Parse(buf);
    }
}

/* Slot s holds the point with integer id 5000 + s (ids 5000 … 5000 + N - 1). */
static vd_point_id ids[N];

static const vd_point_id *id_of(const void *ctx, uint32_t slot)
{
    (void)ctx;
    return &ids[slot];
}

static bool slot_of(const void *ctx, const vd_point_id *id, uint32_t *slot)
{
    (void)ctx;
    if (id->kind != VD_ID_INT || id->num < 5000 || id->num >= 5000 + N)
        return false;
    *slot = (uint32_t)(id->num - 5000);
    return true;
}

/* With the id map (slot_of) when by_id, else by testing each slot's id. */
static void check_filter_ids(const char *text, vd_pindex **idx, size_t n_idx, const uint64_t *alive, bool by_id)
{
    vd_filter *f = parse_ok(text);
    size_t nw = vd_bitset_words(N);
    uint64_t *out = calloc(nw, 8);
    for (uint32_t s = 0; s < N; s++)
        ids[s] = (vd_point_id){.kind = VD_ID_INT, .num = 5000 + s};
    vd_filter_source src = {.n_slots = N, .alive = alive, .payload_of = payload_of, .indexes = idx,
                            .n_indexes = n_idx, .id_of = id_of, .slot_of = by_id ? slot_of : NULL};
    cr_assert_eq(vd_filter_eval(f, &src, out), 0);
    size_t matches = 0;
    for (uint32_t s = 0; s < N; s++) {
        bool want = vd_bit_test(alive, s) && vd_filter_match_point(f, &ids[s], payloads[s]);
        cr_assert_eq(vd_bit_test(out, s), want, "%s slot %u (%zu indexes)", text, s, n_idx);
        /* the check a graph walk makes node by node says the same of a live slot */
        if (vd_bit_test(alive, s))
            cr_assert_eq(vd_filter_match_slot(f, &src, s), want, "%s slot %u (%zu indexes): match_slot",
                         text, s, n_idx);
        matches += want;
    }
    cr_log_info("%s: %zu matches", text, matches);
    free(out);
    vd_filter_destroy(f);
}

static void check_filter(const char *text, vd_pindex **idx, size_t n_idx, const uint64_t *alive)
{
    check_filter_ids(text, idx, n_idx, alive, true);
    check_filter_ids(text, idx, n_idx, alive, false);
}

Test(filter, bitmap_eval_equals_scan_with_and_without_indexes)
{
    make_payloads();
    size_t nw = vd_bitset_words(N);
    uint64_t *alive = calloc(nw, 8);
    for (uint32_t s = 0; s < N; s++)
        if (s % 11 != 3) /* some slots are free */
            vd_bit_set(alive, s);
    vd_pindex *idx[5];
    cr_assert_eq(vd_pindex_create(&idx[0], "userId", VD_PINDEX_KEYWORD, 0), 0);
    cr_assert_eq(vd_pindex_create(&idx[1], "n", VD_PINDEX_NUMERIC, 0), 0);
    cr_assert_eq(vd_pindex_create(&idx[2], "tags", VD_PINDEX_KEYWORD, 0), 0);
    cr_assert_eq(vd_pindex_create(&idx[3], "tags", VD_PINDEX_NUMERIC, 0), 0);
    cr_assert_eq(vd_pindex_create(&idx[4], "at", VD_PINDEX_DATETIME, 0), 0);
    for (uint32_t s = 0; s < N; s++)
        for (int k = 0; k < 5; k++)
            cr_assert_eq(vd_pindex_add(idx[k], s, payloads[s], NULL), 0);
    const char *filters[] = {
        "{}",
        "{\"must\":[{\"key\":\"userId\",\"match\":{\"value\":\"u3\"}}]}",
        "{\"must\":[{\"key\":\"userId\",\"match\":{\"any\":[\"u3\",\"u9\",\"nobody\"]}},"
        "{\"key\":\"n\",\"range\":{\"gte\":100,\"lt\":600}}]}",
        "{\"must\":[{\"key\":\"type\",\"match\":{\"value\":\"t1\"}}],"
        "\"must_not\":[{\"key\":\"userId\",\"match\":{\"value\":\"u1\"}}]}",
        "{\"should\":[{\"key\":\"tags\",\"match\":{\"value\":3}},{\"key\":\"m.x\",\"match\":{\"value\":2}}]}",
        "{\"must\":[{\"key\":\"tags\",\"range\":{\"gt\":5}}]}",
        "{\"must\":[{\"should\":[{\"key\":\"n\",\"range\":{\"lt\":10}},"
        "{\"must\":[{\"key\":\"type\",\"match\":{\"value\":\"t2\"}},{\"key\":\"n\",\"range\":{\"gt\":990}}]}]}]}",
        "{\"must\":[{\"key\":\"userId\",\"match\":{\"except\":[\"u3\",\"u9\"]}},{\"is_empty\":{\"key\":\"m\"}}]}",
        "{\"min_should\":{\"conditions\":[{\"key\":\"userId\",\"match\":{\"value\":\"u3\"}},"
        "{\"key\":\"n\",\"range\":{\"lt\":500}},{\"key\":\"tags\",\"values_count\":{\"gte\":2}}],\"min_count\":2}}",
        "{\"must\":[{\"has_id\":[5000,5003,5014,6000,7999,8000,\"x\",12]}]}",
        "{\"must\":[{\"has_id\":[5001,5002,5100]},{\"key\":\"n\",\"range\":{\"lt\":500}}]}",
        "{\"must_not\":[{\"has_id\":[5000,5001,5002]}],\"should\":[{\"has_id\":[5005]},"
        "{\"key\":\"userId\",\"match\":{\"value\":\"u3\"}}]}",
        "{\"must\":[{\"has_id\":[]}]}",
        "{\"must\":[{\"key\":\"at\",\"range\":{\"gte\":\"2026-03-05\",\"lt\":\"2026-07-01T12:00:00+02:00\"}}]}",
        "{\"must\":[{\"key\":\"at\",\"range\":{\"gt\":\"2026-11-28T22:00:00Z\"}},{\"key\":\"n\",\"range\":{\"lt\":700}}]}",
    };
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        check_filter(filters[i], idx, 0, alive);
        check_filter(filters[i], idx, 5, alive);
    }
    /* Index maintenance: remove some points from the indexes and the alive set. */
    for (uint32_t s = 0; s < N; s += 5) {
        for (int k = 0; k < 5; k++)
            vd_pindex_remove(idx[k], s, payloads[s]);
        vd_bit_clear(alive, s);
    }
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        check_filter(filters[i], idx, 5, alive);
    for (int k = 0; k < 5; k++)
        vd_pindex_destroy(idx[k]);
    for (int i = 0; i < N; i++)
        cJSON_Delete(payloads[i]);
    free(alive);
}

/* vd_filter_slot_indexed: true only when every leaf is a range read from its
 * index column (a walk then checks such a filter per node at the cost of a load). */
Test(filter, slot_indexed_only_when_every_leaf_reads_a_column)
{
    vd_pindex *idx[3];
    cr_assert_eq(vd_pindex_create(&idx[0], "userId", VD_PINDEX_KEYWORD, 0), 0);
    cr_assert_eq(vd_pindex_create(&idx[1], "n", VD_PINDEX_NUMERIC, 0), 0);
    cr_assert_eq(vd_pindex_create(&idx[2], "at", VD_PINDEX_DATETIME, 0), 0);
    vd_filter_source with = {.indexes = idx, .n_indexes = 3}, without = {.n_indexes = 0};
    struct {
        const char *text;
        bool indexed;
    } cases[] = {
        {"{\"must\":[{\"key\":\"n\",\"range\":{\"lt\":10}}]}", true},
        {"{\"must\":[{\"key\":\"at\",\"range\":{\"gt\":\"2026-01-01\"}}],"
         "\"should\":[{\"key\":\"n\",\"range\":{\"lt\":5}},{\"must_not\":[{\"key\":\"n\",\"range\":{\"gt\":9}}]}]}",
         true},
        {"{\"must\":[{\"key\":\"userId\",\"match\":{\"value\":\"u3\"}}]}", false}, /* keywords read payloads */
        {"{\"must\":[{\"key\":\"n\",\"range\":{\"lt\":10}},{\"key\":\"other\",\"range\":{\"lt\":1}}]}", false},
        {"{\"min_should\":{\"conditions\":[{\"key\":\"n\",\"range\":{\"lt\":5}},"
         "{\"has_id\":[1]}],\"min_count\":1}}", false},
        {"{\"must\":[{\"key\":\"at\",\"range\":{\"lt\":3}}]}", false}, /* a numeric range on a datetime index */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vd_filter *f = parse_ok(cases[i].text);
        cr_assert_eq(vd_filter_slot_indexed(f, &with), cases[i].indexed, "%s", cases[i].text);
        cr_assert(!vd_filter_slot_indexed(f, &without), "%s without indexes", cases[i].text);
        vd_filter_destroy(f);
    }
    for (int k = 0; k < 3; k++)
        vd_pindex_destroy(idx[k]);
}

/* The router's reading of requests and merging of answers (src/router/answers.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/answers.h"

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    cr_assert(j, "bad test JSON: %s", text);
    return j;
}

static char *ids(const cJSON *hits)
{
    static char buf[256];
    size_t n = 0;
    buf[0] = 0;
    const cJSON *h;
    cJSON_ArrayForEach(h, hits)
    {
        const cJSON *id = cJSON_GetObjectItem(h, "id");
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%g", n ? "," : "", id ? id->valuedouble : -1);
    }
    return buf;
}

Test(answers, tenant_of_a_filter)
{
    char t[64];
    cJSON *f = parse("{\"must\":[{\"key\":\"x\",\"match\":{\"value\":1}},{\"key\":\"userId\",\"match\":{\"value\":\"u7\"}}]}");
    cr_assert(vd_rt_filter_tenant(f, "userId", t, sizeof t));
    cr_assert_str_eq(t, "u7");
    cJSON_Delete(f);
    f = parse("{\"must\":{\"key\":\"userId\",\"match\":{\"value\":42}}}"); /* Qdrant: one condition */
    cr_assert(vd_rt_filter_tenant(f, "userId", t, sizeof t));
    cr_assert_str_eq(t, "42");
    cJSON_Delete(f);
    const char *not_one[] = {"{\"should\":[{\"key\":\"userId\",\"match\":{\"value\":\"u\"}}]}",
                             "{\"must\":[{\"key\":\"userId\",\"match\":{\"any\":[\"a\"]}}]}",
                             "{\"must\":[{\"key\":\"userId\",\"match\":{\"value\":1.5}}]}",
                             "{\"must\":[{\"key\":\"userid\",\"match\":{\"value\":\"u\"}}]}", "{}"};
    for (size_t i = 0; i < sizeof not_one / sizeof not_one[0]; i++) {
        f = parse(not_one[i]);
        cr_assert_not(vd_rt_filter_tenant(f, "userId", t, sizeof t), "%s", not_one[i]);
        cJSON_Delete(f);
    }
    cr_assert_not(vd_rt_filter_tenant(NULL, "userId", t, sizeof t));
}

Test(answers, tenant_of_a_payload)
{
    char t[64];
    bool null;
    cJSON *p = parse("{\"meta\":{\"user\":true},\"userId\":null}");
    cr_assert(vd_rt_payload_tenant(p, "meta.user", t, sizeof t, &null) && !null);
    cr_assert_str_eq(t, "true");
    cr_assert(vd_rt_payload_tenant(p, "userId", t, sizeof t, &null) && null);
    cr_assert(vd_rt_payload_tenant(p, "missing", t, sizeof t, &null) && null);
    cr_assert(vd_rt_payload_tenant(NULL, "userId", t, sizeof t, &null) && null);
    cJSON_Delete(p);
    p = parse("{\"userId\":{\"a\":1}}");
    cr_assert_not(vd_rt_payload_tenant(p, "userId", t, sizeof t, &null));
    cJSON_Delete(p);
}

Test(answers, hits_merge_by_score_with_offset)
{
    cJSON *a = parse("[{\"id\":1,\"score\":0.9},{\"id\":2,\"score\":0.5},{\"id\":3,\"score\":0.1}]");
    cJSON *b = parse("[{\"id\":4,\"score\":0.9},{\"id\":5,\"score\":0.7}]");
    cJSON *lists[3] = {a, b, NULL}; /* a missing partition */
    cJSON *m = vd_rt_merge_hits(lists, 3, true, 0, 10);
    cr_assert_str_eq(ids(m), "1,4,5,2,3"); /* a tie: the earlier list first */
    cJSON_Delete(m);
    m = vd_rt_merge_hits(lists, 3, true, 1, 2);
    cr_assert_str_eq(ids(m), "4,5");
    cJSON_Delete(m);
    cJSON *c = parse("[{\"id\":7,\"score\":0.2},{\"id\":8,\"score\":3}]"); /* l2: lower first */
    cJSON *d = parse("[{\"id\":9,\"score\":1}]");
    cJSON *l2[2] = {c, d};
    m = vd_rt_merge_hits(l2, 2, false, 0, 2);
    cr_assert_str_eq(ids(m), "7,9");
    cJSON_Delete(m);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    cJSON_Delete(d);
}

Test(answers, scroll_pages_merge_in_id_order)
{
    cJSON *p0 = parse("{\"points\":[{\"id\":1},{\"id\":4}],\"next_page_offset\":9}");
    cJSON *p1 = parse("{\"points\":[{\"id\":2},{\"id\":3},{\"id\":\"a\"}],\"next_page_offset\":null}");
    cJSON *pages[2] = {p0, p1};
    cJSON *m = vd_rt_merge_scroll(pages, 2, 3);
    cr_assert_str_eq(ids(cJSON_GetObjectItem(m, "points")), "1,2,3");
    cr_assert_eq(cJSON_GetObjectItem(m, "next_page_offset")->valuedouble, 4);
    cJSON_Delete(m);
    m = vd_rt_merge_scroll(pages, 2, 10); /* everything: p0's own next page is next */
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(m, "points")), 5);
    cr_assert_eq(cJSON_GetObjectItem(m, "next_page_offset")->valuedouble, 9);
    cJSON_Delete(m);
    cJSON_Delete(p0);
    cJSON_Delete(p1);
    cJSON *n = cJSON_CreateNumber(99), *str = cJSON_CreateString("0");
    cr_assert_lt(vd_rt_id_cmp(n, str), 0); /* numbers first */
    cJSON_Delete(n);
    cJSON_Delete(str);
}

Test(answers, ordered_pages_merge_by_value_then_id)
{
    cJSON *p0 = parse("{\"points\":[{\"id\":5,\"order_value\":1},{\"id\":1,\"order_value\":3}]}");
    cJSON *p1 = parse("{\"points\":[{\"id\":2,\"order_value\":1},{\"id\":3,\"order_value\":2}]}");
    cJSON *pages[2] = {p0, p1};
    cJSON *m = vd_rt_merge_ordered(pages, 2, 10, false);
    cr_assert_str_eq(ids(cJSON_GetObjectItem(m, "points")), "2,5,3,1");
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(m, "next_page_offset")));
    cJSON_Delete(m);
    cJSON_Delete(p0);
    cJSON_Delete(p1);
}

Test(answers, mmr_prefers_a_diverse_second_pick)
{
    /* 1 and 2 are the same direction; 3 is less relevant but different */
    cJSON *h = parse("[{\"id\":1,\"score\":0.99,\"vector\":[1,0]},{\"id\":2,\"score\":0.98,\"vector\":[1,0]},"
                     "{\"id\":3,\"score\":0.7,\"vector\":[0,1]}]");
    vd_rt_mmr(h, false, 0.5f, 2);
    cr_assert_str_eq(ids(h), "1,3");
    cJSON_Delete(h);
    h = parse("[{\"id\":1,\"score\":0.99,\"vector\":[1,0]},{\"id\":2,\"score\":0.98,\"vector\":[1,0]},"
              "{\"id\":3,\"score\":0.7,\"vector\":[0,1]}]");
    vd_rt_mmr(h, false, 0.0f, 3); /* no diversity: the plain ranking */
    cr_assert_str_eq(ids(h), "1,2,3");
    cJSON_Delete(h);
}

/* A random JSON value of depth d: strings with quotes, backslashes and
 * brackets in them, numbers, literals, arrays, objects. */
static cJSON *random_value(unsigned *seed, int d)
{
    int kind = rand_r(seed) % (d > 0 ? 7 : 5);
    static const char *strs[] = {"plain", "with \"quotes\"", "back\\slash", "{[brackets]}", "x,y:z", "",
                                 "\xc3\xa9t\xc3\xa9"};
    switch (kind) {
    case 0: return cJSON_CreateNumber((rand_r(seed) % 20001 - 10000) / 7.0);
    case 1: return cJSON_CreateString(strs[rand_r(seed) % 7]);
    case 2: return cJSON_CreateBool(rand_r(seed) % 2);
    case 3: return cJSON_CreateNull();
    case 4: return cJSON_CreateNumber(rand_r(seed) % 100);
    case 5: {
        cJSON *a = cJSON_CreateArray();
        for (int i = rand_r(seed) % 5; i > 0; i--)
            cJSON_AddItemToArray(a, random_value(seed, d - 1));
        return a;
    }
    default: {
        cJSON *o = cJSON_CreateObject();
        static const char *keys[] = {"filter", "vector", "k", "searches", "a\"b", "must", "{"};
        for (int i = rand_r(seed) % 5; i > 0; i--) {
            const char *k = keys[rand_r(seed) % 7];
            if (!cJSON_GetObjectItemCaseSensitive(o, k))
                cJSON_AddItemToObject(o, k, random_value(seed, d - 1));
        }
        return o;
    }
    }
}

Test(answers, json_member_finds_what_a_parser_finds)
{
    unsigned seed = 12345;
    for (int round = 0; round < 3000; round++) {
        cJSON *doc = cJSON_CreateObject();
        static const char *keys[] = {"vector", "filter", "k", "searches", "with\\\"esc", "limit"};
        for (int i = 0; i < 6; i++)
            if (rand_r(&seed) % 2)
                cJSON_AddItemToObject(doc, keys[i], random_value(&seed, 4));
        char *text = round % 2 ? cJSON_Print(doc) : cJSON_PrintUnformatted(doc);
        for (int i = 0; i < 6; i++) {
            const char *at;
            size_t n;
            const cJSON *want = cJSON_GetObjectItemCaseSensitive(doc, keys[i]);
            bool found = vd_rt_json_member(text, strlen(text), keys[i], &at, &n);
            if (i == 4) /* a key written with an escape is not matched: a miss, never a wrong span */
                continue;
            cr_assert_eq(found, want != NULL, "%s in %s", keys[i], text);
            if (found) {
                cJSON *got = cJSON_ParseWithLength(at, n);
                cr_assert(got && cJSON_Compare(got, want, true), "%s: %.*s", keys[i], (int)n, at);
                cJSON_Delete(got);
            }
        }
        free(text);
        cJSON_Delete(doc);
    }
    /* not an object, or cut short: nothing found */
    const char *at;
    size_t n;
    cr_assert_not(vd_rt_json_member("[1]", 3, "k", &at, &n));
    cr_assert_not(vd_rt_json_member("{\"a\": [1, {\"k\": 2}", 18, "k", &at, &n));
    cr_assert_not(vd_rt_json_member("{\"a\": \"k", 8, "k", &at, &n));
}

static bool count_elements(const char *at, size_t n, void *ctx)
{
    (void)at;
    (void)n;
    ++*(int *)ctx;
    return true;
}

Test(answers, tenant_from_text_without_the_vector)
{
    char t[64];
    const char *body = "{\"vector\": [0.1, 0.2, \"]}\"], \"filter\": {\"must\": [{\"key\": \"userId\", "
                       "\"match\": {\"value\": \"u9\"}}]}, \"k\": 3}";
    cr_assert(vd_rt_text_tenant(body, strlen(body), "userId", t, sizeof t));
    cr_assert_str_eq(t, "u9");
    cr_assert_not(vd_rt_text_tenant("{\"vector\": [1]}", 15, "userId", t, sizeof t));
    int count = 0;
    const char *arr = "[{\"a\": 1}, [2, 3], \"x,]\", 4]";
    cr_assert(vd_rt_json_elements(arr, strlen(arr), count_elements, &count));
    cr_assert_eq(count, 4);
    count = 0;
    cr_assert(vd_rt_json_elements("[]", 2, count_elements, &count));
    cr_assert_eq(count, 0);
    cr_assert_not(vd_rt_json_elements("[1, 2", 5, count_elements, &count));
}

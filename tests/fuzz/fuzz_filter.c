/*
 * fuzz_filter.c — the filter language. Input: a filter as JSON, then NUL,
 * then a payload as JSON (optional). The filter is parsed (vd_filter_parse)
 * and tested on the payload (vd_filter_match); then a small collection
 * (flat, float32) that also holds the payload on one more point answers a
 * filtered search with k above its size, exact and through the index, and
 * both answers must hold exactly as many points as the one-payload matcher
 * accepts: the payload indexes' bitmap path (vd_filter_eval) must agree with
 * vd_filter_match.
 */
#include <stdlib.h>
#include <string.h>

#include "db/filter.h"
#include "fuzz_common.h"

typedef struct count_ctx {
    vd_collection *c;
    const vd_filter *f;
    size_t matching, points;
} count_ctx;

static void count_matching(void *arg, const vd_point_id *id, uint64_t version)
{
    (void)version;
    count_ctx *x = arg;
    vd_point_out p;
    if (vd_collection_get(x->c, id, false, &p) != 0)
        return;
    x->points++;
    x->matching += vd_filter_match_point(x->f, &p.id, p.payload);
    vd_point_out_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vd_fuzz_init();
    const uint8_t *ftext, *ptext;
    size_t flen, plen;
    vd_fuzz_split(data, size, "", 1, &ftext, &flen, &ptext, &plen);
    cJSON *fjson = vd_fuzz_json(ftext, flen);
    if (!fjson)
        return 0;
    cJSON *payload = ptext ? vd_fuzz_json(ptext, plen) : NULL;
    vd_filter *f;
    vd_errmsg em = {{0}};
    if (vd_filter_parse(fjson, vd_fuzz_limits()->max_filter_depth, vd_fuzz_limits()->max_filter_terms, &f, &em) != 0) {
        VD_FUZZ_CHECK(em.text[0] != 0);
        cJSON_Delete(fjson);
        cJSON_Delete(payload);
        return 0;
    }
    (void)vd_filter_match(f, payload);
    (void)vd_filter_match(f, NULL);

    /* Shape 0: cosine, flat, float32 — exact search, pindexes on tag and n. */
    vd_collection *c = vd_fuzz_collection(0);
    VD_FUZZ_CHECK(c != NULL);
    if (payload && cJSON_IsObject(payload)) {
        float v[VD_FUZZ_DIM] = {0.5f, 0.5f, 0.5f, 0.5f};
        vd_point_in p = {.id = {.kind = VD_ID_STR, .str = "fuzzed", .len = 6}, .vector = v,
                         .payload = cJSON_Duplicate(payload, 1)};
        vd_upsert_counts counts = {0};
        VD_FUZZ_CHECK(vd_collection_upsert(c, &p, 1, &counts) == 0);
    }
    count_ctx x = {.c = c, .f = f};
    vd_collection_foreach(c, count_matching, &x);
    float q[VD_FUZZ_DIM] = {1, 0, 0, 0};
    vd_search_req req = {.vector = q, .k = 100, .filter = f, .exact = true};
    vd_point_out *hits;
    size_t n;
    if (vd_collection_search(c, &req, &hits, &n) == 0) {
        VD_FUZZ_CHECK(n == x.matching);
        for (size_t i = 0; i < n; i++)
            vd_point_out_free(&hits[i]);
        free(hits);
    }
    /* The same filter through the approximate path's bitmap. */
    req.exact = false;
    if (vd_collection_search(c, &req, &hits, &n) == 0) {
        VD_FUZZ_CHECK(n == x.matching);
        for (size_t i = 0; i < n; i++)
            vd_point_out_free(&hits[i]);
        free(hits);
    }
    vd_collection_unref(c);
    vd_filter_destroy(f);
    cJSON_Delete(fjson);
    cJSON_Delete(payload);
    return 0;
}

/*
 * fuzz_search.c — POST …/search and …/search/batch bodies (byte 0 picks the
 * collection's metric, index and quantization; byte 1 single or batch; the
 * rest is the body) → vd_req_search / vd_req_search_batch → the search →
 * the JSON answer. Checks what every answer must satisfy: at most k hits,
 * best first, no id twice, finite scores, and every hit of a filtered
 * search matches its filter.
 */
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "db/filter.h"
#include "fuzz_common.h"
#include "server/response.h"

static void run(vd_collection *c, vd_search_parsed *s)
{
    vd_point_out *hits;
    size_t n;
    if (vd_collection_search(c, &s->req, &hits, &n) != 0)
        return; /* out of memory */
    VD_FUZZ_CHECK(n <= s->req.k);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        VD_FUZZ_CHECK(!isnan(hits[i].score));
        if (i > 0)
            VD_FUZZ_CHECK(hits[i - 1].key <= hits[i].key);
        for (size_t j = 0; j < i; j++)
            VD_FUZZ_CHECK(!vd_id_equal(&hits[i].id, &hits[j].id));
        if (s->filter) {
            vd_point_out p;
            VD_FUZZ_CHECK(vd_collection_get(c, &hits[i].id, false, &p) == 0);
            VD_FUZZ_CHECK(vd_filter_match(s->filter, p.payload));
            vd_point_out_free(&p);
        }
        cJSON *item = vd_resp_point(&hits[i], true, s->req.with_payload);
        if (item)
            cJSON_AddItemToArray(arr, item);
    }
    for (size_t i = 0; i < n; i++)
        vd_point_out_free(&hits[i]);
    free(hits);
    char *text = cJSON_PrintUnformatted(arr);
    free(text);
    cJSON_Delete(arr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    cJSON *body = vd_fuzz_json(data + 2, size - 2);
    if (!body)
        return 0;
    vd_collection *c = vd_fuzz_collection(data[0]);
    VD_FUZZ_CHECK(c != NULL);
    const vd_collection_config *cfg = vd_collection_config_of(c);
    vd_errmsg em = {{0}};
    if (data[1] & 1) {
        vd_search_parsed *ss;
        size_t n;
        if (vd_req_search_batch(body, cfg, vd_fuzz_limits(), vd_fuzz_vectors(), &ss, &n, &em) == 0) {
            for (size_t i = 0; i < n; i++) {
                run(c, &ss[i]);
                vd_search_parsed_free(&ss[i]);
            }
            free(ss);
        } else {
            VD_FUZZ_CHECK(em.text[0] != 0);
        }
    } else {
        vd_search_parsed s;
        if (vd_req_search(body, "", cfg, vd_fuzz_limits(), vd_fuzz_vectors(), &s, &em) == 0) {
            run(c, &s);
            vd_search_parsed_free(&s);
        } else {
            VD_FUZZ_CHECK(em.text[0] != 0);
        }
    }
    vd_collection_unref(c);
    cJSON_Delete(body);
    return 0;
}

/* A search answer (server/search_answer.h): streamed piece by piece it is
 * the same text as the hits rendered whole through cJSON, for one search,
 * a batch, empty results and string ids; and its size estimate is never
 * below the text it renders. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/response.h"
#include "server/search_answer.h"

static vd_point_out *make_hits(size_t n, uint32_t dim, bool strings, unsigned seed)
{
    vd_point_out *h = calloc(n ? n : 1, sizeof *h);
    for (size_t i = 0; i < n; i++) {
        h[i].score = 1.0f / (float)(i + seed);
        h[i].version = 1800000000000000ULL + i;
        if (strings) {
            h[i].id_buf = malloc(32);
            snprintf(h[i].id_buf, 32, "m\"%zu\\u", i + seed);
            h[i].id = (vd_point_id){.kind = VD_ID_STR, .str = h[i].id_buf};
        } else {
            h[i].id = (vd_point_id){.kind = VD_ID_INT, .num = i * 7 + seed};
        }
        h[i].payload = cJSON_CreateObject();
        cJSON_AddStringToObject(h[i].payload, "user", "ü-42");
        cJSON_AddNumberToObject(h[i].payload, "n", (double)i);
        if (dim) {
            h[i].dim = dim;
            h[i].vector = malloc(dim * sizeof(float));
            for (uint32_t d = 0; d < dim; d++)
                h[i].vector[d] = (float)(d + 1) / (float)(i + 3) - 0.5f;
        }
    }
    return h;
}

/* The text cJSON prints for the same hits (built whole, the old way). */
static char *whole(vd_point_out *hits[], const size_t n[], size_t searches, bool batch)
{
    cJSON *all = cJSON_CreateArray();
    for (size_t i = 0; i < searches; i++) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t j = 0; j < n[i]; j++)
            cJSON_AddItemToArray(arr, vd_resp_point(&hits[i][j], true, true));
        cJSON_AddItemToArray(all, arr);
    }
    cJSON *doc = batch ? all : cJSON_DetachItemFromArray(all, 0);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (!batch)
        cJSON_Delete(all);
    return text;
}

static void check(const size_t n[], size_t searches, bool batch, uint32_t dim, bool strings)
{
    vd_point_out *a_hits[8], *b_hits[8];
    vd_search_answer *a = vd_search_answer_new(searches, batch);
    cr_assert(a);
    for (size_t i = 0; i < searches; i++) {
        a_hits[i] = make_hits(n[i], dim, strings, (unsigned)i + 1);
        b_hits[i] = make_hits(n[i], dim, strings, (unsigned)i + 1);
        vd_search_answer_put(a, i, a_hits[i], n[i], true);
    }
    size_t estimate = vd_search_answer_bytes(a);
    vd_stream s = vd_search_answer_stream(a);
    cr_assert(s.held_bytes > 0);
    vd_strbuf out;
    vd_strbuf_init(&out, 0);
    bool done = false;
    size_t pieces = 0;
    while (!done) {
        cr_assert(s.next(s.ctx, &out, &done));
        pieces++;
    }
    s.free(s.ctx);
    char *expect = whole(b_hits, n, searches, batch);
    cr_assert_str_eq(out.data, expect);
    cr_assert_geq(estimate, out.len, "estimate %zu < text %zu", estimate, out.len);
    if (out.len > 3 * 16384)
        cr_assert_gt(pieces, 2, "a large answer comes in pieces");
    free(expect);
    for (size_t i = 0; i < searches; i++) {
        for (size_t j = 0; j < n[i]; j++)
            vd_point_out_free(&b_hits[i][j]);
        free(b_hits[i]);
    }
    vd_strbuf_free(&out);
}

Test(search_answer, one_search_equals_the_whole_rendering)
{
    size_t n[] = {5};
    check(n, 1, false, 0, false);
    check(n, 1, false, 16, true);
}

Test(search_answer, a_batch_in_pieces_equals_the_whole_rendering)
{
    size_t n[] = {40, 0, 3, 100};
    check(n, 4, true, 64, false);
    check(n, 4, true, 0, true);
}

Test(search_answer, empty_results)
{
    size_t n[] = {0, 0};
    check(n, 1, false, 8, false);
    check(n, 2, true, 8, false);
}

Test(search_answer, freed_before_it_is_written)
{
    vd_search_answer *a = vd_search_answer_new(2, true);
    vd_search_answer_put(a, 0, make_hits(10, 4, true, 1), 10, true);
    vd_search_answer_put(a, 1, make_hits(3, 4, false, 2), 3, false);
    vd_stream s = vd_search_answer_stream(a);
    vd_strbuf out;
    vd_strbuf_init(&out, 0);
    bool done = false;
    cr_assert(s.next(s.ctx, &out, &done)); /* part written, then the client leaves */
    s.free(s.ctx); /* ASan: nothing leaks, nothing is freed twice */
    vd_strbuf_free(&out);
}

/* A hit written directly (vd_resp_point_text) reads back as the same JSON as
 * the cJSON point vd_resp_point builds, for scores at the edges of float
 * (non-finite ones are null in both) and ids at both ends of their range
 * (an id past 10^15 now reads back exactly); where cJSON's text is the
 * shortest form, the texts are equal too. */
Test(search_answer, point_text_reads_back_as_the_cjson_point)
{
    const float scores[] = {0.0f, 1.0f, -1.0f, 0.5f, 0.995037198f, 1e-7f, -3.25e-12f, 3e9f, -0.0f,
                            3.4028235e38f, 1.17549435e-38f, 1e-45f, NAN, INFINITY, -INFINITY};
    const uint64_t ids[] = {0, 1, 4294967296ULL, VD_ID_MAX_INT};
    for (size_t s = 0; s < sizeof scores / sizeof *scores; s++)
        for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
            vd_point_out a = {.id = {.kind = VD_ID_INT, .num = ids[i]}, .score = scores[s], .version = 7 + s};
            vd_point_out b = a;
            a.payload = cJSON_CreateObject();
            b.payload = cJSON_CreateObject();
            cJSON_AddNumberToObject(a.payload, "n", (double)s);
            cJSON_AddNumberToObject(b.payload, "n", (double)s);
            vd_strbuf out;
            vd_strbuf_init(&out, 0);
            cr_assert(vd_resp_point_text(&a, true, &out));
            cJSON *node = vd_resp_point(&b, true, true);
            char *text = cJSON_PrintUnformatted(node);
            cJSON *back = cJSON_Parse(out.data), *want = cJSON_Parse(text);
            cr_assert(back, "not JSON: %s", out.data);
            cr_assert(cJSON_Compare(back, want, true), "%s against %s", out.data, text);
            /* an id reads back exactly; cJSON wrote 9007199254740991 as 9.00719925474099e+15 */
            cr_assert_eq(cJSON_GetObjectItem(back, "id")->valuedouble, (double)ids[i], "%s", out.data);
            /* cJSON writes -0 as 0 and 3e9 as 3000000000: same values, other texts */
            if (isfinite(scores[s]) && fabsf(scores[s]) < 1e9f && !(scores[s] == 0 && signbit(scores[s])) &&
                ids[i] < 1000000000000000ULL)
                cr_assert_str_eq(out.data, text);
            free(text);
            cJSON_Delete(node);
            cJSON_Delete(back);
            cJSON_Delete(want);
            cJSON_Delete(a.payload);
            vd_strbuf_free(&out);
        }
}

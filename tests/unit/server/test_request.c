/* Request validation: each bad input gets its code and a message naming the field. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "server/request.h"

static const vd_limits lim = {.max_batch_points = 3, .max_batch_searches = 2, .max_k = 100,
                              .max_dim = 64, .max_filter_depth = 4, .default_shards = 2};

static vd_collection_config coll(vd_metric m)
{
    vd_collection_config c = {.dim = 3, .metric = m, .n_shards = 1};
    snprintf(c.name, sizeof c.name, "memories");
    return c;
}

static void upsert_fails(const char *body, int code, const char *needle)
{
    cJSON *j = cJSON_Parse(body);
    cr_assert(j, "test JSON");
    vd_collection_config c = coll(VD_METRIC_COSINE);
    vd_upsert_req r;
    vd_errmsg em = {{0}};
    cr_assert_eq(vd_req_upsert(j, &c, &lim, NULL, &r, &em), code, "%s -> %s", body, em.text);
    cr_assert(strstr(em.text, needle), "'%s' lacks '%s'", em.text, needle);
    cJSON_Delete(j);
}

Test(request, upsert_errors)
{
    upsert_fails("[]", VD_E_INVALID_REQUEST, "request body must be a JSON object");
    upsert_fails("{\"points\":[]}", VD_E_EMPTY_BATCH, "empty");
    upsert_fails("{\"pts\":[]}", VD_E_UNKNOWN_FIELD, "unknown field 'pts'");
    upsert_fails("{\"points\":[1,2,3,4]}", VD_E_BATCH_TOO_LARGE, "at most 3");
    upsert_fails("{\"points\":[{\"id\":1,\"vector\":[1,2]}]}", VD_E_DIMENSION_MISMATCH,
                 "points[0].vector has 2 values; collection 'memories' expects 3");
    upsert_fails("{\"points\":[{\"id\":1,\"vector\":[1,2,3,4]}]}", VD_E_DIMENSION_MISMATCH, "has 4 values");
    upsert_fails("{\"points\":[{\"id\":1,\"vector\":[1,2,3]},{\"id\":-1,\"vector\":[1,2,3]}]}",
                 VD_E_INVALID_ID, "points[1].id");
    upsert_fails("{\"points\":[{\"id\":1.5,\"vector\":[1,2,3]}]}", VD_E_INVALID_ID, "unsigned integer");
    upsert_fails("{\"points\":[{\"id\":9007199254740993,\"vector\":[1,2,3]}]}", VD_E_INVALID_ID, "up to");
    upsert_fails("{\"points\":[{\"id\":\"\",\"vector\":[1,2,3]}]}", VD_E_INVALID_ID, "1 to 256 bytes");
    upsert_fails("{\"points\":[{\"id\":true,\"vector\":[1,2,3]}]}", VD_E_INVALID_ID, "got a boolean");
    upsert_fails("{\"points\":[{\"vector\":[1,2,3]}]}", VD_E_INVALID_REQUEST, "missing field 'points[0].id'");
    upsert_fails("{\"points\":[{\"id\":1}]}", VD_E_INVALID_REQUEST, "missing field 'points[0].vector'");
    upsert_fails("{\"points\":[{\"id\":1,\"vector\":[1,\"2\",3]}]}", VD_E_INVALID_VECTOR, "vector[1] must be a number");
    upsert_fails("{\"points\":[{\"id\":1,\"vector\":[1,1e39,3]}]}", VD_E_INVALID_VECTOR, "vector[1] is not a finite");
    upsert_fails("{\"points\":[{\"id\":1,\"vector\":[0,0,0]}]}", VD_E_INVALID_VECTOR, "zero length");
    upsert_fails("{\"points\":[{\"id\":1,\"vector\":[1,2,3],\"payload\":[1]}]}", VD_E_INVALID_REQUEST, "payload must be a JSON object");
    upsert_fails("{\"points\":[{\"id\":1,\"vector\":[1,2,3],\"version\":-2}]}", VD_E_OUT_OF_RANGE, "points[0].version");
    upsert_fails("{\"points\":[{\"id\":1,\"vector\":[1,2,3],\"extra\":1}]}", VD_E_UNKNOWN_FIELD, "points[0].extra");
}

Test(request, upsert_ok_normalises_and_takes_payloads)
{
    cJSON *j = cJSON_Parse("{\"points\":[{\"id\":\"a\",\"vector\":[3,4,0],\"payload\":{\"x\":1},\"version\":7},"
                           "{\"id\":5,\"vector\":[0,0,2],\"payload\":null}]}");
    vd_collection_config c = coll(VD_METRIC_COSINE);
    vd_upsert_req r;
    cr_assert_eq(vd_req_upsert(j, &c, &lim, NULL, &r, NULL), 0);
    cr_assert_eq(r.n, 2);
    cr_assert_float_eq(r.points[0].vector[0], 0.6f, 1e-6);
    cr_assert(r.points[0].has_version);
    cr_assert_eq(r.points[0].version, 7);
    cr_assert_not(r.points[1].has_version);
    cr_assert(cJSON_IsObject(r.points[0].payload));
    cr_assert_null(r.points[1].payload);
    cr_assert_eq(r.points[1].id.kind, VD_ID_INT);
    vd_upsert_req_free(&r);
    cJSON_Delete(j);
}

static int search_rc(const char *body, char *msg)
{
    cJSON *j = cJSON_Parse(body);
    cr_assert(j, "test JSON");
    vd_collection_config c = coll(VD_METRIC_L2);
    vd_search_parsed s;
    vd_errmsg em = {{0}};
    int rc = vd_req_search(j, "", &c, &lim, NULL, &s, &em);
    if (!rc)
        vd_search_parsed_free(&s);
    strcpy(msg, em.text);
    cJSON_Delete(j);
    return rc;
}

Test(request, search_validation)
{
    char m[400];
    cr_assert_eq(search_rc("{\"vector\":[1,2,3]}", m), 0);
    cr_assert_eq(search_rc("{\"vector\":[1,2,3],\"k\":0}", m), VD_E_OUT_OF_RANGE);
    cr_assert_eq(search_rc("{\"vector\":[1,2,3],\"k\":101}", m), VD_E_OUT_OF_RANGE);
    cr_assert(strstr(m, "k must be between 1 and 100, got 101"), "%s", m);
    cr_assert_eq(search_rc("{\"vector\":[1,2,3],\"k\":\"5\"}", m), VD_E_INVALID_REQUEST);
    cr_assert_eq(search_rc("{\"vector\":[1,2,3],\"k\":2.5}", m), VD_E_INVALID_REQUEST);
    cr_assert_eq(search_rc("{\"vector\":[1,2,3],\"k\":5,\"limit\":5}", m), VD_E_INVALID_REQUEST);
    cr_assert_eq(search_rc("{\"vector\":[1,2,3],\"with_payload\":1}", m), VD_E_INVALID_REQUEST);
    cr_assert_eq(search_rc("{\"vector\":[1,2,3],\"filter\":{\"must\":5}}", m), VD_E_INVALID_FILTER);
    cr_assert_eq(search_rc("{\"vector\":[1,2,3],\"score_threshold\":\"x\"}", m), VD_E_INVALID_REQUEST);
    cr_assert_eq(search_rc("{\"vector\":[1,2]}", m), VD_E_DIMENSION_MISMATCH);
    cr_assert_eq(search_rc("{\"k\":3}", m), VD_E_INVALID_REQUEST);
    cr_assert_eq(search_rc("{\"vector\":[1,2,3],\"ef\":0}", m), VD_E_OUT_OF_RANGE);
    cr_assert_eq(search_rc("{\"vector\":[1,2,3],\"top\":3}", m), VD_E_UNKNOWN_FIELD);
}

static int coll_rc(const char *name, const char *body)
{
    cJSON *j = cJSON_Parse(body);
    vd_collection_config c;
    int rc = vd_req_collection(j, name, &lim, &c, NULL);
    cJSON_Delete(j);
    return rc;
}

Test(request, collection_validation)
{
    cr_assert_eq(coll_rc("m", "{\"dim\":3}"), 0);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"metric\":\"l2\",\"shards\":4,\"index\":{\"type\":\"flat\"},"
                             "\"payload_indexes\":{\"userId\":\"keyword\",\"a.b\":\"numeric\"}}"), 0);
    cr_assert_eq(coll_rc("bad/name", "{\"dim\":3}"), VD_E_INVALID_NAME);
    cr_assert_eq(coll_rc("m", "{}"), VD_E_INVALID_REQUEST);
    cr_assert_eq(coll_rc("m", "{\"dim\":0}"), VD_E_OUT_OF_RANGE);
    cr_assert_eq(coll_rc("m", "{\"dim\":65}"), VD_E_OUT_OF_RANGE);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"metric\":\"manhattan\"}"), VD_E_INVALID_REQUEST);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"shards\":65}"), VD_E_OUT_OF_RANGE);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"index\":{\"type\":\"hnsw\"}}"), 0);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"index\":{\"type\":\"hnsw\",\"m\":16,\"ef_construction\":100,\"ef_search\":40}}"), 0);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"index\":{\"type\":\"hnsw\",\"m\":200}}"), VD_E_OUT_OF_RANGE);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"index\":{\"type\":\"ivf\"}}"), 0);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"index\":{\"type\":\"ivf\",\"nlist\":64,\"nprobe\":8}}"), 0);
    /* 0 = automatic, as collection info prints it back */
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"index\":{\"type\":\"ivf\",\"nlist\":0,\"nprobe\":0}}"), 0);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"index\":{\"type\":\"ivf\",\"nlist\":70000}}"), VD_E_OUT_OF_RANGE);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"index\":{\"type\":\"ivf\",\"nprobe\":70000}}"), VD_E_OUT_OF_RANGE);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"index\":{\"type\":\"ivf\",\"m\":16}}"), VD_E_UNKNOWN_FIELD);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"index\":{\"type\":\"annoy\"}}"), VD_E_UNSUPPORTED_INDEX);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"quantization\":\"sq8\"}"), 0);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"quantization\":{\"type\":\"fp16\",\"oversampling\":2.5,\"originals\":\"ram\"}}"), 0);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"quantization\":\"int4\"}"), VD_E_UNSUPPORTED_INDEX);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"quantization\":7}"), VD_E_INVALID_REQUEST);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"quantization\":{\"type\":\"sq8\",\"oversampling\":0.5}}"), VD_E_INVALID_REQUEST);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"quantization\":{\"type\":\"sq8\",\"originals\":\"tape\"}}"), VD_E_INVALID_REQUEST);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"quantization\":{\"type\":\"none\",\"originals\":\"disk\"}}"), VD_E_INVALID_REQUEST);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"quantization\":{\"type\":\"sq8\",\"bits\":4}}"), VD_E_UNKNOWN_FIELD);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"payload_indexes\":{\"x\":\"geo\"}}"), VD_E_INVALID_REQUEST);
    cr_assert_eq(coll_rc("m", "{\"dim\":3,\"colour\":1}"), VD_E_UNKNOWN_FIELD);
}

/* The oversampling a collection gets when its body names none. */
static float default_oversampling(const char *body)
{
    cJSON *j = cJSON_Parse(body);
    vd_collection_config c;
    vd_errmsg em = {{0}};
    cr_assert_eq(vd_req_collection(j, "m", &lim, &c, &em), 0, "%s -> %s", body, em.text);
    cJSON_Delete(j);
    return c.oversampling;
}

Test(request, default_oversampling_follows_the_index_and_the_originals)
{
    /* HNSW with the originals in RAM re-ranks its walk's ef candidates: ef alone sets the breadth. */
    cr_assert_eq(default_oversampling("{\"dim\":3,\"index\":{\"type\":\"hnsw\"},"
                                      "\"quantization\":{\"type\":\"sq8\",\"originals\":\"ram\"}}"), 1.0f);
    cr_assert_eq(default_oversampling("{\"dim\":3,\"index\":{\"type\":\"hnsw\"},"
                                      "\"quantization\":{\"type\":\"fp16\",\"originals\":\"ram\"}}"), 1.0f);
    /* From disk, or without a graph, the quantizer's factor. */
    cr_assert_eq(default_oversampling("{\"dim\":3,\"index\":{\"type\":\"hnsw\"},\"quantization\":\"sq8\"}"),
                 VD_OVERSAMPLING_DEFAULT_SQ8);
    cr_assert_eq(default_oversampling("{\"dim\":3,\"index\":{\"type\":\"hnsw\"},"
                                      "\"quantization\":{\"type\":\"sq8\",\"originals\":\"disk\"}}"),
                 VD_OVERSAMPLING_DEFAULT_SQ8);
    cr_assert_eq(default_oversampling("{\"dim\":3,\"quantization\":{\"type\":\"sq8\",\"originals\":\"ram\"}}"),
                 VD_OVERSAMPLING_DEFAULT_SQ8);
    cr_assert_eq(default_oversampling("{\"dim\":3,\"index\":{\"type\":\"ivf\"},"
                                      "\"quantization\":{\"type\":\"fp16\",\"originals\":\"ram\"}}"),
                 VD_OVERSAMPLING_DEFAULT_FP16);
    /* A value given wins. */
    cr_assert_eq(default_oversampling("{\"dim\":3,\"index\":{\"type\":\"hnsw\"},"
                                      "\"quantization\":{\"type\":\"sq8\",\"originals\":\"ram\",\"oversampling\":4}}"),
                 4.0f);
    cr_assert_eq(default_oversampling("{\"dim\":3}"), 1.0f);
}

Test(request, delete_and_path_ids)
{
    cJSON *j = cJSON_Parse("{\"ids\":[1,\"a\"]}");
    vd_delete_req d;
    cr_assert_eq(vd_req_delete(j, &lim, &d, NULL), 0);
    cr_assert_eq(d.n_ids, 2);
    vd_delete_req_free(&d);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"ids\":[1],\"filter\":{}}");
    cr_assert_eq(vd_req_delete(j, &lim, &d, NULL), VD_E_INVALID_REQUEST);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"ids\":[]}");
    cr_assert_eq(vd_req_delete(j, &lim, &d, NULL), VD_E_EMPTY_BATCH);
    cJSON_Delete(j);

    vd_point_id id;
    cr_assert_eq(vd_req_path_id("42", NULL, &id, NULL), 0);
    cr_assert_eq(id.kind, VD_ID_INT);
    cr_assert_eq(id.num, 42);
    cr_assert_eq(vd_req_path_id("042", NULL, &id, NULL), 0);
    cr_assert_eq(id.kind, VD_ID_STR, "leading zeros make a string id");
    cr_assert_eq(vd_req_path_id("42", "string", &id, NULL), 0);
    cr_assert_eq(id.kind, VD_ID_STR);
    cr_assert_eq(vd_req_path_id("abc", "int", &id, NULL), VD_E_INVALID_ID);
    cr_assert_eq(vd_req_path_id("9007199254740992", NULL, &id, NULL), VD_E_INVALID_ID);
}

Test(request, vector_b64)
{
    /* [1.0, -2.0, 0.5] as little-endian float32, base64 */
    const char *ok = "{\"points\":[{\"id\":1,\"vector_b64\":\"AACAPwAAAMAAAAA/\"}]}";
    cJSON *j = cJSON_Parse(ok);
    vd_collection_config c = coll(VD_METRIC_L2);
    vd_upsert_req r;
    vd_errmsg em = {{0}};
    cr_assert_eq(vd_req_upsert(j, &c, &lim, NULL, &r, &em), 0, "%s", em.text);
    cr_assert_float_eq(r.points[0].vector[0], 1.0f, 0);
    cr_assert_float_eq(r.points[0].vector[1], -2.0f, 0);
    cr_assert_float_eq(r.points[0].vector[2], 0.5f, 0);
    vd_upsert_req_free(&r);
    cJSON_Delete(j);
    struct {
        const char *body;
        int code;
        const char *needle;
    } bad[] = {
        {"{\"points\":[{\"id\":1,\"vector_b64\":\"AACAPwAAAMA=\"}]}", VD_E_DIMENSION_MISMATCH, "holds 8 bytes"},
        {"{\"points\":[{\"id\":1,\"vector_b64\":\"AACAPwAAAMAAAAA\"}]}", VD_E_INVALID_VECTOR, "not valid base64"},
        {"{\"points\":[{\"id\":1,\"vector_b64\":\"AACAPwAAAMAAAA!/\"}]}", VD_E_INVALID_VECTOR, "not valid base64"},
        {"{\"points\":[{\"id\":1,\"vector_b64\":\"AADAfwAAAMAAAAA/\"}]}", VD_E_INVALID_VECTOR, "NaN or infinite"},
        {"{\"points\":[{\"id\":1,\"vector_b64\":5}]}", VD_E_INVALID_VECTOR, "base64 string"},
        {"{\"points\":[{\"id\":1,\"vector\":[1,2,3],\"vector_b64\":\"AACAPwAAAMAAAAA/\"}]}", VD_E_INVALID_REQUEST, "not both"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = cJSON_Parse(bad[i].body);
        cr_assert_eq(vd_req_upsert(j, &c, &lim, NULL, &r, &em), bad[i].code, "%s -> %s", bad[i].body, em.text);
        cr_assert(strstr(em.text, bad[i].needle), "'%s' lacks '%s'", em.text, bad[i].needle);
        cJSON_Delete(j);
    }
}

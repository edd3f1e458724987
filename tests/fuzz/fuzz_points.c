/*
 * fuzz_points.c — the point write and read bodies against a small
 * collection (byte 0 picks its metric, index and quantization; byte 1 the
 * operation; the rest is the body):
 *   0  PUT …/points body → vd_req_upsert → the UPSERT record round trip →
 *      applied; every point written can be read back with its vector.
 *   1  POST …/points/delete body → vd_req_delete → the record round trip →
 *      applied; deleted ids are gone.
 *   2  GET …/points/{id}: the path text → vd_req_path_id (with ?id_type=
 *      absent, "string", "int" or junk by byte 2) → vd_collection_get.
 */
#include <stdlib.h>
#include <string.h>

#include "write/mutation.h"
#include "fuzz_common.h"


static void upsert(vd_collection *c, cJSON *body)
{
    const vd_collection_config *cfg = vd_collection_config_of(c);
    vd_upsert_req req;
    vd_errmsg em = {{0}};
    if (vd_req_upsert(body, cfg, vd_fuzz_limits(), vd_fuzz_vectors(), &req, &em) != 0) {
        VD_FUZZ_CHECK(em.text[0] != 0);
        return;
    }
    vd_mutation m = {.type = VD_MUT_UPSERT, .collection = cfg->name, .incarnation = 1,
                     .points = req.points, .n_points = req.n, .dim = cfg->dim};
    vd_strbuf rec = {0};
    vd_mutation_encode(&m, &rec);
    VD_FUZZ_CHECK(!rec.failed);
    vd_mutation_decoded d = {0};
    VD_FUZZ_CHECK(vd_mutation_decode(VD_MUT_UPSERT, (const uint8_t *)rec.data, rec.len, &d, &em) == 0);
    VD_FUZZ_CHECK(d.m.n_points == req.n && d.m.dim == cfg->dim);
    for (size_t i = 0; i < req.n; i++) {
        VD_FUZZ_CHECK(vd_id_equal(&d.m.points[i].id, &req.points[i].id));
        VD_FUZZ_CHECK(memcmp(d.m.points[i].vector, req.points[i].vector, cfg->dim * sizeof(float)) == 0);
        /* The same JSON text, key order included (vd_fuzz_json has refused
         * bodies with a key twice, as http.c does). */
        char *a = d.m.points[i].payload ? cJSON_PrintUnformatted(d.m.points[i].payload) : NULL;
        char *b = req.points[i].payload ? cJSON_PrintUnformatted(req.points[i].payload) : NULL;
        VD_FUZZ_CHECK((!a && !b) || (a && b && strcmp(a, b) == 0));
        free(a);
        free(b);
    }
    /* Replay applies the decoded record, as recovery does. */
    vd_mutation_outcome out = {0};
    VD_FUZZ_CHECK(vd_mutation_apply_data(NULL, c, &d.m, 2, &out) == 0);
    for (size_t i = 0; i < req.n; i++) {
        vd_point_out p;
        VD_FUZZ_CHECK(vd_collection_get(c, &req.points[i].id, true, &p) == 0);
        VD_FUZZ_CHECK(p.vector != NULL);
        vd_point_out_free(&p);
    }
    vd_mutation_decoded_free(&d);
    vd_strbuf_free(&rec);
    vd_upsert_req_free(&req);
}

static void delete_points(vd_collection *c, cJSON *body)
{
    const vd_collection_config *cfg = vd_collection_config_of(c);
    vd_delete_req req;
    vd_errmsg em = {{0}};
    if (vd_req_delete(body, vd_fuzz_limits(), &req, &em) != 0) {
        VD_FUZZ_CHECK(em.text[0] != 0);
        return;
    }
    char *filter_json = NULL;
    vd_mutation m = {.collection = cfg->name, .incarnation = 1};
    if (req.filter) {
        filter_json = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(body, "filter"));
        VD_FUZZ_CHECK(filter_json != NULL);
        m.type = VD_MUT_DELETE_FILTER;
        m.filter = req.filter;
        m.filter_json = filter_json;
    } else {
        m.type = VD_MUT_DELETE_IDS;
        m.ids = req.ids;
        m.n_ids = req.n_ids;
    }
    vd_strbuf rec = {0};
    vd_mutation_encode(&m, &rec);
    VD_FUZZ_CHECK(!rec.failed);
    vd_mutation_decoded d = {0};
    VD_FUZZ_CHECK(vd_mutation_decode(m.type, (const uint8_t *)rec.data, rec.len, &d, &em) == 0);
    if (m.type == VD_MUT_DELETE_IDS) {
        VD_FUZZ_CHECK(d.m.n_ids == req.n_ids);
        for (size_t i = 0; i < req.n_ids; i++)
            VD_FUZZ_CHECK(vd_id_equal(&d.m.ids[i], &req.ids[i]));
    }
    vd_mutation_outcome out = {0};
    VD_FUZZ_CHECK(vd_mutation_apply_data(NULL, c, &d.m, 2, &out) == 0);
    for (size_t i = 0; i < req.n_ids; i++) {
        vd_point_out p;
        VD_FUZZ_CHECK(vd_collection_get(c, &req.ids[i], false, &p) == VD_E_POINT_NOT_FOUND);
    }
    vd_mutation_decoded_free(&d);
    vd_strbuf_free(&rec);
    free(filter_json);
    vd_delete_req_free(&req);
}

static void get(vd_collection *c, const uint8_t *data, size_t size, uint8_t how)
{
    static const char *const id_types[] = {NULL, "string", "int", "integer"};
    char text[512];
    if (size >= sizeof text)
        size = sizeof text - 1;
    memcpy(text, data, size);
    text[size] = 0; /* the HTTP layer hands a NUL-terminated path */
    vd_point_id id;
    vd_errmsg em = {{0}};
    if (vd_req_path_id(text, id_types[how % 4], &id, &em) != 0) {
        VD_FUZZ_CHECK(em.text[0] != 0);
        return;
    }
    vd_point_out p;
    int rc = vd_collection_get(c, &id, how & 4, &p);
    VD_FUZZ_CHECK(rc == 0 || rc == VD_E_POINT_NOT_FOUND);
    if (rc == 0) {
        VD_FUZZ_CHECK(vd_id_equal(&p.id, &id));
        vd_point_out_free(&p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    vd_collection *c = vd_fuzz_collection(data[0]);
    VD_FUZZ_CHECK(c != NULL);
    uint8_t op = data[1] % 3;
    if (op == 2) {
        if (size >= 3)
            get(c, data + 3, size - 3, data[2]);
    } else {
        cJSON *body = vd_fuzz_json(data + 2, size - 2);
        if (body) {
            if (op == 0)
                upsert(c, body);
            else
                delete_points(c, body);
            cJSON_Delete(body);
        }
    }
    vd_collection_unref(c);
    return 0;
}

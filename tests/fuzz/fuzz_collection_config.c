/*
 * fuzz_collection_config.c — PUT /collections/{name} bodies: JSON →
 * vd_req_collection → the CREATE record (encode, decode: what the WAL and
 * the collection snapshot hold) → a live collection that takes a write and
 * a search. Checks that the record round trip keeps the configuration.
 */
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "write/mutation.h"
#include "fuzz_common.h"

static void check_same(const vd_collection_config *a, const vd_collection_config *b)
{
    VD_FUZZ_CHECK(strcmp(a->name, b->name) == 0);
    VD_FUZZ_CHECK(a->dim == b->dim && a->metric == b->metric && a->n_shards == b->n_shards);
    VD_FUZZ_CHECK(memcmp(&a->index, &b->index, sizeof a->index) == 0);
    VD_FUZZ_CHECK(a->quant == b->quant && a->originals_on_disk == b->originals_on_disk);
    VD_FUZZ_CHECK(a->oversampling == b->oversampling);
    VD_FUZZ_CHECK(a->n_pindexes == b->n_pindexes);
    for (size_t i = 0; i < a->n_pindexes; i++)
        VD_FUZZ_CHECK(strcmp(a->pindexes[i].field, b->pindexes[i].field) == 0 &&
                      a->pindexes[i].type == b->pindexes[i].type);
}

/* One upsert and one search on the new collection: its settings must hold
 * up in use, not only parse. */
static void exercise(const vd_collection_config *cfg)
{
    vd_collection_config live = *cfg;
    live.vectors_dir = vd_fuzz_tmpdir();
    vd_collection *c;
    if (vd_collection_create(&c, &live, NULL) != 0)
        return;
    float *v = calloc(3 * (size_t)cfg->dim, sizeof *v);
    if (v) {
        vd_point_in pts[3];
        for (unsigned i = 0; i < 3; i++) {
            v[(size_t)i * cfg->dim + i % cfg->dim] = 1.0f;
            pts[i] = (vd_point_in){.id = {.kind = VD_ID_INT, .num = i}, .vector = v + (size_t)i * cfg->dim,
                                   .payload = cJSON_CreateObject()};
        }
        vd_upsert_counts counts = {0};
        VD_FUZZ_CHECK(vd_collection_upsert(c, pts, 3, &counts) == 0);
        vd_search_req req = {.vector = v, .k = 2, .ef = 8, .with_payload = true,
                             .oversampling = cfg->oversampling};
        vd_point_out *hits;
        size_t n;
        if (vd_collection_search(c, &req, &hits, &n) == 0) {
            VD_FUZZ_CHECK(n == 2);
            for (size_t i = 0; i < n; i++) {
                VD_FUZZ_CHECK(!isnan(hits[i].score));
                vd_point_out_free(&hits[i]);
            }
            free(hits);
        }
        free(v);
    }
    vd_collection_unref(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vd_fuzz_init();
    cJSON *body = vd_fuzz_json(data, size);
    if (!body)
        return 0;
    vd_collection_config cfg;
    vd_errmsg em = {{0}};
    if (vd_req_collection(body, "fuzz", vd_fuzz_limits(), &cfg, &em) == 0) {
        vd_mutation m = {.type = VD_MUT_CREATE_COLLECTION, .collection = cfg.name, .cfg = &cfg};
        vd_strbuf rec = {0};
        vd_mutation_encode(&m, &rec);
        VD_FUZZ_CHECK(!rec.failed);
        vd_mutation_decoded d = {0};
        VD_FUZZ_CHECK(vd_mutation_decode(VD_MUT_CREATE_COLLECTION, (const uint8_t *)rec.data, rec.len,
                                         &d, &em) == 0);
        check_same(&cfg, &d.cfg);
        vd_mutation_decoded_free(&d);
        vd_strbuf_free(&rec);
        if (cfg.dim <= 4096)
            exercise(&cfg);
    } else {
        VD_FUZZ_CHECK(em.text[0] != 0); /* every refusal says why */
    }
    cJSON_Delete(body);
    return 0;
}

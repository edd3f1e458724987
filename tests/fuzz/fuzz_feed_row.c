/*
 * fuzz_feed_row.c — the feed's row decoder (vd_feed_add_row): what a source
 * row of Postgres becomes. Byte 0 sets the feed up: bit 0 integer ids, bits
 * 1-2 the metric, bits 3-5 the dimension (1…8). The rest holds the row's
 * columns as text, in the order the feed selects them — id, embedding (JSON
 * array or pgvector text), version, payload (JSON) — separated by NUL; a
 * missing column, or one that is the single byte 0xFF, is SQL NULL. The row
 * is put in a real PGresult (libpq's PQmakeEmptyPGresult/PQsetvalue), so
 * the decoder reads it exactly as it reads a fetched one. An accepted row
 * must carry finite floats (unit length for cosine) and be writable to a
 * collection of the feed's shape.
 */
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "feed/feed_internal.h"
#include "fuzz_common.h"

static PGresult *make_row(const uint8_t *data, size_t size)
{
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    if (!r)
        return NULL;
    static char *names[] = {"id", "embedding", "version", "payload"};
    PGresAttDesc attrs[4];
    for (int i = 0; i < 4; i++)
        attrs[i] = (PGresAttDesc){.name = names[i], .format = 0, .typlen = -1, .atttypmod = -1};
    if (!PQsetResultAttrs(r, 4, attrs)) {
        PQclear(r);
        return NULL;
    }
    const uint8_t *rest = data;
    size_t left = size;
    for (int col = 0; col < 4; col++) {
        const uint8_t *field, *next;
        size_t flen, nlen;
        if (rest)
            vd_fuzz_split(rest, left, "", 1, &field, &flen, &next, &nlen);
        if (!rest || (flen == 1 && field[0] == 0xFF)) {
            PQsetvalue(r, 0, col, NULL, -1); /* NULL */
        } else if (!PQsetvalue(r, 0, col, (char *)field, (int)flen)) {
            PQclear(r);
            return NULL;
        }
        rest = rest ? next : NULL;
        left = rest ? nlen : 0;
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vd_fuzz_init();
    if (size < 1 || size > 1 << 20)
        return 0;
    static const vd_metric metrics[] = {VD_METRIC_COSINE, VD_METRIC_DOT, VD_METRIC_L2, VD_METRIC_COSINE};
    uint32_t dim = 1 + ((data[0] >> 3) & 7);
    /* The collection's metric decides the vector rule, not the feed's. */
    vd_collection_config cfg = {.dim = dim, .metric = metrics[(data[0] >> 1) & 3], .n_shards = 1};
    snprintf(cfg.name, sizeof cfg.name, "fuzz");
    vd_feed f = {.cfg = {.name = "fuzz"}, .int_ids = data[0] & 1};
    pthread_mutex_init(&f.lock, NULL);
    PGresult *r = make_row(data + 1, size - 1);
    VD_FUZZ_CHECK(r != NULL);
    vd_feed_batch b = {0};
    VD_FUZZ_CHECK(vd_feed_batch_alloc(&b, 1, dim));
    if (vd_feed_add_row(&f, &b, r, 0, 0, &cfg)) {
        VD_FUZZ_CHECK(b.n_pts == 1 && f.st.rows_rejected == 0);
        double norm = 0;
        for (uint32_t i = 0; i < dim; i++) {
            VD_FUZZ_CHECK(isfinite(b.pts[0].vector[i]));
            norm += (double)b.pts[0].vector[i] * b.pts[0].vector[i];
        }
        if (cfg.metric == VD_METRIC_COSINE)
            VD_FUZZ_CHECK(fabs(norm - 1.0) < 1e-3);
        vd_collection *c;
        VD_FUZZ_CHECK(vd_collection_create(&c, &cfg, NULL) == 0);
        vd_upsert_counts counts = {0};
        vd_point_id id = b.pts[0].id;
        VD_FUZZ_CHECK(vd_collection_upsert(c, b.pts, 1, &counts) == 0);
        vd_point_out p;
        VD_FUZZ_CHECK(vd_collection_get(c, &id, true, &p) == 0);
        vd_point_out_free(&p);
        vd_collection_unref(c);
    } else {
        VD_FUZZ_CHECK(b.n_pts == 0 && f.st.rows_rejected == 1);
    }
    vd_feed_batch_free(&b);
    PQclear(r);
    pthread_mutex_destroy(&f.lock);
    return 0;
}

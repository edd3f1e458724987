/*
 * feed_rows.c — source rows into batches of points and deletes, and a batch
 * through the journal: decoding an id, an embedding (JSON or pgvector text)
 * and a payload, refusing (and counting) a malformed row without stalling
 * the feed. Used by the backfill and follow rounds (pg_feed.c) and by the
 * repair of a reconciliation (reconcile.c).
 */
#include "feed/feed_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_float.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "write/mutation.h"

void vd_feed_batch_free(vd_feed_batch *b)
{
    for (size_t i = 0; i < b->n_pts; i++)
        cJSON_Delete(b->pts[i].payload);
    for (size_t i = 0; i < b->n_ids; i++)
        free(b->ids[i]);
    free(b->pts);
    free(b->vecs);
    free(b->dels);
    free(b->ids);
    free(b->parsed);
    *b = (vd_feed_batch){0};
}

bool vd_feed_parse_id(vd_feed *f, vd_feed_batch *b, const char *text, vd_point_id *out)
{
    if (f->int_ids) {
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        /* The API's integer ids: 0 … 2^53 - 1 (exact in a JSON double). */
        if (end == text || *end || errno || v < 0 || (unsigned long long)v > VD_ID_MAX_INT)
            return false;
        *out = (vd_point_id){.kind = VD_ID_INT, .num = (uint64_t)v};
        return true;
    }
    size_t len = strlen(text);
    if (len == 0 || len > VD_ID_MAX_LEN)
        return false;
    char *copy = strdup(text);
    if (!copy)
        return false;
    b->ids[b->n_ids++] = copy;
    *out = (vd_point_id){.kind = VD_ID_STR, .str = copy, .len = (uint32_t)len};
    return true;
}

bool vd_feed_add_delete(vd_feed *f, vd_feed_batch *b, vd_collection *c, const char *text)
{
    vd_point_id id;
    if (!vd_feed_parse_id(f, b, text, &id))
        return false;
    if (!f->cfg.partition.count || vd_collection_holds(c, &id))
        b->dels[b->n_dels++] = id;
    return true;
}

/* Counts and logs a source row the feed cannot apply. */
void vd_feed_reject_row(vd_feed *f, const char *id, const char *why)
{
    pthread_mutex_lock(&f->lock);
    f->st.rows_rejected++;
    pthread_mutex_unlock(&f->lock);
    vd_log_warn("feed skipped a bad row", "feed=%s id=\"%.100s\" reason=\"%s\"", f->cfg.name, id, why);
}

/* Row row's embedding (column col) into v, if it is a JSON array (or a
 * pgvector literal) of dim finite numbers. */
static bool parse_embedding(PGresult *r, int row, int col, float *v, uint32_t dim)
{
    return !PQgetisnull(r, row, col) &&
           vd_json_float_array(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col), v, dim) ==
               dim;
}

typedef struct parse_job {
    PGresult *r;
    int col;
    uint32_t dim;
    vd_feed_batch *b;
} parse_job;

static void parse_task(void *ctx, size_t i)
{
    parse_job *j = ctx;
    j->b->parsed[i] = parse_embedding(j->r, (int)i, j->col, j->b->vecs + i * j->dim, j->dim);
}

void vd_feed_batch_parse(vd_feed_batch *b, PGresult *r, int c, uint32_t dim, vd_pool *pool)
{
    int n = PQntuples(r);
    if (!pool || n < 2 || !(b->parsed = calloc((size_t)n, sizeof *b->parsed)))
        return; /* each row is parsed as it is added */
    parse_job j = {r, c + 1, dim, b};
    vd_pool_run(pool, (size_t)n, parse_task, &j);
}

/* Adds the row (id, embedding, version, payload at columns c..c+3) to b as
 * an upsert; false (counted, logged) if it is malformed. */
bool vd_feed_add_row(vd_feed *f, vd_feed_batch *b, PGresult *r, int row, int c,
                     const vd_collection_config *cc)
{
    uint32_t dim = cc->dim;
    const char *id = PQgetvalue(r, row, c);
    vd_point_in *p = &b->pts[b->n_pts];
    *p = (vd_point_in){0};
    const char *why = NULL;
    cJSON *emb = NULL;
    float *v = b->vecs + (size_t)row * dim;
    /* The common case straight into floats; anything else through cJSON,
     * which says what is wrong. */
    bool parsed = b->parsed ? b->parsed[row] : parse_embedding(r, row, c + 1, v, dim);
    if (!vd_feed_parse_id(f, b, id, &p->id))
        why = "bad id";
    else if (parsed)
        ;
    else if (PQgetisnull(r, row, c + 1) || !(emb = cJSON_Parse(PQgetvalue(r, row, c + 1))) ||
             !cJSON_IsArray(emb))
        why = "the embedding is not a JSON or pgvector array";
    else if ((uint32_t)cJSON_GetArraySize(emb) != dim)
        why = "the embedding has the wrong dimension";
    uint32_t k = 0;
    for (cJSON *e = emb ? emb->child : NULL; !why && e; e = e->next, k++) {
        if (!cJSON_IsNumber(e) || !(e->valuedouble == e->valuedouble) ||
            e->valuedouble > 3.4e38 || e->valuedouble < -3.4e38) {
            why = "the embedding has a value that is not a finite float";
            break;
        }
        v[k] = (float)e->valuedouble;
    }
    cJSON_Delete(emb);
    /* The collection's own metric decides (feed_metric only creates one). */
    if (!why && vd_collection_prepare_vector(cc, v))
        why = "a cosine embedding of length zero";
    if (!why && !PQgetisnull(r, row, c + 3) &&
        !(p->payload = cJSON_Parse(PQgetvalue(r, row, c + 3))))
        why = "the payload is not JSON";
    if (why) {
        cJSON_Delete(p->payload);
        if (!b->quiet)
            vd_feed_reject_row(f, id, why);
        return false;
    }
    p->vector = v;
    p->from_record = true; /* what Postgres holds now: applied whatever its version */
    if (!PQgetisnull(r, row, c + 2)) {
        p->has_version = true;
        p->version = strtoull(PQgetvalue(r, row, c + 2), NULL, 10);
    }
    b->n_pts++;
    return true;
}

bool vd_feed_send_range(vd_feed *f, PGconn *c, const char *cols, const char *after, const char *upto,
                        unsigned limit)
{
    const char *params[3];
    char lim[16];
    int n = 0;
    vd_strbuf b;
    vd_strbuf_init(&b, 0);
    /* Only the partition's rows: the others are, to this feed, absent. */
    vd_strbuf_printf(&b, "SELECT %s FROM %s t WHERE %s", cols, f->from, f->in_partition);
    if (*after) {
        params[n++] = after;
        vd_strbuf_printf(&b, " AND t.%s > $%d", f->id_quoted, n);
    }
    if (upto) {
        params[n++] = upto;
        vd_strbuf_printf(&b, " AND t.%s <= $%d", f->id_quoted, n);
    }
    vd_strbuf_printf(&b, " ORDER BY t.%s", f->id_quoted);
    if (limit) {
        snprintf(lim, sizeof lim, "%u", limit);
        params[n++] = lim;
        vd_strbuf_printf(&b, " LIMIT $%d::int", n);
    }
    return vd_feed_send_built(f, c, &b, n, params);
}

bool vd_feed_send_page(vd_feed *f, const char *cols, const char *after, unsigned limit)
{
    return vd_feed_send_range(f, f->conn, cols, after, NULL, limit);
}

void vd_feed_add_row_or_delete(vd_feed *f, vd_feed_batch *b, PGresult *r, int row, int c,
                               const vd_collection_config *cc)
{
    if (!vd_feed_add_row(f, b, r, row, c, cc) && !PQgetisnull(r, row, c) &&
        vd_feed_parse_id(f, b, PQgetvalue(r, row, c), &b->dels[b->n_dels]))
        b->n_dels++;
}

/* Logs and applies b's upserts and deletes, then the feed state. */
int vd_feed_write_batch(vd_feed *f, vd_collection *c, vd_feed_batch *b, vd_errmsg *em)
{
    vd_mutation_outcome out;
    int rc = 0;
    if (b->n_pts) {
        vd_mutation m = {.type = VD_MUT_UPSERT, .points = b->pts, .n_points = b->n_pts,
                         .dim = vd_collection_config_of(c)->dim};
        rc = vd_journal_write(f->journal, c, &m, &out, em);
    }
    if (!rc && b->n_dels) {
        vd_mutation m = {.type = VD_MUT_DELETE_IDS, .ids = b->dels, .n_ids = b->n_dels};
        rc = vd_journal_write(f->journal, c, &m, &out, em);
    }
    if (!rc) {
        pthread_mutex_lock(&f->lock);
        f->st.rows_applied += b->n_pts + b->n_dels;
        pthread_mutex_unlock(&f->lock);
    }
    return rc;
}

/* Logs and applies b's upserts and deletes, then the feed state. */
/* vd_feed_apply; may_defer: the position is not logged when that would
 * wait for a checkpoint. */
static bool apply(vd_feed *f, vd_collection *c, vd_feed_batch *b, const vd_feed_state *next,
                  bool may_defer)
{
    vd_errmsg em = {{0}};
    int rc = vd_feed_write_batch(f, c, b, &em);
    if (!rc) {
        vd_mutation m = {.type = VD_MUT_FEED_STATE, .collection = f->cfg.name, .feed = next};
        rc = may_defer ? vd_journal_ddl_try(f->journal, &m, &em) : vd_journal_ddl(f->journal, &m, &em);
        if (rc == VD_JOURNAL_BUSY)
            rc = 0; /* the next page's position covers this one */
    }
    if (rc) {
        vd_feed_error(f, "cannot apply a batch: %s", em.text);
        return false;
    }
    f->state = *next;
    pthread_mutex_lock(&f->lock);
    f->st.backfill_started = next->backfill_started;
    f->st.backfill_done = next->backfill_done;
    f->st.backfill_rows = next->backfill_rows;
    f->st.xid = next->xid;
    f->st.seq = next->seq;
    if (next->logical && next->source_lsn > f->st.applied_lsn)
        f->st.applied_lsn = next->source_lsn;
    pthread_mutex_unlock(&f->lock);
    return true;
}

bool vd_feed_apply(vd_feed *f, vd_collection *c, vd_feed_batch *b, const vd_feed_state *next)
{
    return apply(f, c, b, next, false);
}

bool vd_feed_apply_page(vd_feed *f, vd_collection *c, vd_feed_batch *b, const vd_feed_state *next)
{
    return apply(f, c, b, next, !next->backfill_done);
}

bool vd_feed_batch_alloc(vd_feed_batch *b, size_t rows, uint32_t dim)
{
    b->pts = calloc(rows ? rows : 1, sizeof *b->pts);
    b->vecs = malloc((rows ? rows : 1) * dim * sizeof(float));
    b->dels = calloc(rows ? rows : 1, sizeof *b->dels);
    /* Two id strings a row at most: a rejected row's id is parsed again for its delete. */
    b->ids = calloc(rows ? 2 * rows : 1, sizeof *b->ids);
    return b->pts && b->vecs && b->dels && b->ids;
}

/*
 * reconcile.c — compares a feed's collection with its source table and, on
 * request, repairs the difference (vd_feed_reconcile in pg_feed.h).
 *
 * Exact, not sampled, and by content: every source row is read whole
 * (keyset pages of RECONCILE_PAGE, each its own statement), decoded as the
 * feed would apply it, and compared with its point — version, vector bit
 * for bit, payload as JSON. A row without a point is missing; a point that
 * differs from its row is stale (also a point whose row can no longer be a
 * point: its current contents are invalid); a point whose id the table
 * lacks is extra (every source id is kept in a hash table: memory, one id
 * string per row). Rows that cannot be points and have none are counted as
 * invalid. Repair goes through the journal as the record's writes do:
 * missing and stale rows are read again and applied whatever their version
 * (a stale invalid row's point is deleted), extra points deleted; then the
 * comparison runs once more and says whether it converged. It runs on the
 * feed thread between rounds, so the feed applies nothing meanwhile; a row
 * changed in Postgres during the comparison also has an outbox row, which
 * the feed applies right after.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/feed_internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strbuf.h"

/* Rows read whole per statement: ~15 MB of text at 1536 dimensions. */
#define RECONCILE_PAGE 1000
#define RECONCILE_ID_PAGE 10000
#define REPAIR_CHUNK 500

typedef struct entry {
    char *id; /* NULL = empty slot */
} entry;

typedef struct id_table {
    entry *e;
    size_t cap, n;
} id_table;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static entry *slot_for(id_table *t, const char *id)
{
    size_t i = hash_str(id) & (t->cap - 1);
    while (t->e[i].id && strcmp(t->e[i].id, id) != 0)
        i = (i + 1) & (t->cap - 1);
    return &t->e[i];
}

static bool table_add(id_table *t, const char *id)
{
    if ((t->n + 1) * 2 > t->cap) {
        id_table bigger = {calloc(t->cap ? t->cap * 2 : 1024, sizeof(entry)), t->cap ? t->cap * 2 : 1024, 0};
        if (!bigger.e)
            return false;
        for (size_t i = 0; i < t->cap; i++)
            if (t->e[i].id) {
                *slot_for(&bigger, t->e[i].id) = t->e[i];
                bigger.n++;
            }
        free(t->e);
        *t = bigger;
    }
    entry *e = slot_for(t, id);
    if (e->id)
        return true; /* ids are unique in the source */
    if (!(e->id = strdup(id)))
        return false;
    t->n++;
    return true;
}

static void table_free(id_table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->e[i].id);
    free(t->e);
    *t = (id_table){0};
}

/* A growable list of ids as text, each with its kind. */
typedef struct id_list {
    char **ids;
    bool *is_int;
    size_t n, cap;
} id_list;

static bool list_add(id_list *l, const char *id, bool is_int)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **n = realloc(l->ids, cap * sizeof *n);
        if (!n)
            return false;
        l->ids = n;
        bool *k = realloc(l->is_int, cap * sizeof *k);
        if (!k)
            return false;
        l->is_int = k;
        l->cap = cap;
    }
    if (!(l->ids[l->n] = strdup(id)))
        return false;
    l->is_int[l->n++] = is_int;
    return true;
}

static void list_free(id_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ids[i]);
    free(l->ids);
    free(l->is_int);
}

/* One comparison's findings. */
typedef struct comparison {
    id_table t; /* every source id */
    bool int_ids; /* the feed's kind of id */
    id_list missing, stale, extra, invalid;
    uint64_t rows, points;
    bool oom;
} comparison;

static void comparison_free(comparison *k)
{
    table_free(&k->t);
    list_free(&k->missing);
    list_free(&k->stale);
    list_free(&k->extra);
    list_free(&k->invalid);
    *k = (comparison){0};
}

static void id_text(const vd_point_id *id, char *out, size_t cap)
{
    if (id->kind == VD_ID_INT)
        snprintf(out, cap, "%" PRIu64, id->num);
    else
        snprintf(out, cap, "%.*s", (int)id->len, id->str);
}

static void visit_point(void *ctx, const vd_point_id *id, uint64_t version)
{
    (void)version;
    comparison *k = ctx;
    char text[VD_ID_MAX_LEN + 24];
    id_text(id, text, sizeof text);
    k->points++;
    bool is_int = id->kind == VD_ID_INT;
    /* A point of the other kind (written over the API) matches no row. */
    entry *e = k->t.cap && is_int == k->int_ids ? slot_for(&k->t, text) : NULL;
    if (!e || !e->id)
        k->oom |= !list_add(&k->extra, text, is_int);
}

static bool same_payload(const cJSON *a, const cJSON *b)
{
    bool a_empty = !a || (cJSON_IsObject(a) && !a->child), b_empty = !b || (cJSON_IsObject(b) && !b->child);
    if (a_empty || b_empty)
        return a_empty && b_empty;
    return cJSON_Compare(a, b, true);
}

/* Whether the point stored for p is p exactly (version, vector, payload). */
static bool same_point(vd_collection *c, const vd_point_in *p, uint32_t dim, bool *exists)
{
    vd_point_out o;
    *exists = vd_collection_get(c, &p->id, true, &o) == 0;
    if (!*exists)
        return false;
    bool same = o.version == (p->has_version ? p->version : 0) && o.vector && o.dim == dim &&
                memcmp(o.vector, p->vector, (size_t)dim * sizeof(float)) == 0 &&
                same_payload(o.payload, p->payload);
    vd_point_out_free(&o);
    return same;
}

static void note_examples(vd_feed_reconcile_req *req, int kind, const id_list *l)
{
    for (size_t i = 0; i < l->n && i < VD_RECONCILE_EXAMPLES; i++) {
        snprintf(req->examples[kind][i], sizeof req->examples[kind][i], "%s", l->ids[i]);
        req->example_is_int[kind][i] = l->is_int[i];
    }
}

/* Compares one page of source rows (id, embedding, version, payload) with
 * their points. */
static void compare_rows(vd_feed *f, vd_collection *c, PGresult *r, comparison *k)
{
    const vd_collection_config *cc = vd_collection_config_of(c);
    int n = PQntuples(r);
    vd_feed_batch b = {.quiet = true};
    if (!vd_feed_batch_alloc(&b, (size_t)n, cc->dim)) {
        k->oom = true;
        vd_feed_batch_free(&b);
        return;
    }
    for (int i = 0; i < n && !k->oom; i++) {
        const char *id = PQgetvalue(r, i, 0);
        k->rows++;
        k->oom |= !table_add(&k->t, id);
        bool exists;
        if (vd_feed_add_row(f, &b, r, i, 0, cc)) {
            if (!same_point(c, &b.pts[b.n_pts - 1], cc->dim, &exists))
                k->oom |= !list_add(exists ? &k->stale : &k->missing, id, f->int_ids);
            continue;
        }
        /* A row that cannot be a point: its point, if any, is stale. */
        vd_point_id pid;
        vd_point_out o;
        exists = vd_feed_parse_id(f, &b, id, &pid) && vd_collection_get(c, &pid, false, &o) == 0;
        if (exists)
            vd_point_out_free(&o);
        k->oom |= !list_add(exists ? &k->stale : &k->invalid, id, f->int_ids);
    }
    vd_feed_batch_free(&b);
}

/* A Postgres array literal of ids: {"a","b\"c"}. */
static char *array_literal(char **ids, size_t n)
{
    vd_strbuf b;
    vd_strbuf_init(&b, 0);
    vd_strbuf_append(&b, "{", 1);
    for (size_t i = 0; i < n; i++) {
        vd_strbuf_append(&b, i ? ",\"" : "\"", i ? 2 : 1);
        for (const char *p = ids[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                vd_strbuf_append(&b, "\\", 1);
            vd_strbuf_append(&b, p, 1);
        }
        vd_strbuf_append(&b, "\"", 1);
    }
    vd_strbuf_append(&b, "}", 1);
    if (b.failed) {
        vd_strbuf_free(&b);
        return NULL;
    }
    return vd_strbuf_take(&b, NULL);
}

/* A failed statement: 503 not_ready when the connection to Postgres is lost
 * (retry once the feed has reconnected), 500 for an SQL error. */
static int source_failed(vd_feed *f, vd_errmsg *em, const char *what)
{
    int rc = PQstatus(f->conn) == CONNECTION_OK ? VD_E_INTERNAL : VD_E_NOT_READY;
    pthread_mutex_lock(&f->lock);
    rc = vd_fail(em, rc, "%s: %s", what, f->st.last_error);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* Upserts the current source rows of ids (missing or stale points). */
static int repair_upserts(vd_feed *f, vd_collection *c, id_list *l, uint64_t *done, vd_errmsg *em)
{
    uint32_t dim = vd_collection_config_of(c)->dim;
    for (size_t at = 0; at < l->n; at += REPAIR_CHUNK) {
        size_t n = l->n - at < REPAIR_CHUNK ? l->n - at : REPAIR_CHUNK;
        char *arr = array_literal(l->ids + at, n), sql[4096];
        if (!arr)
            return vd_fail(em, -ENOMEM, "out of memory");
        snprintf(sql, sizeof sql, "SELECT %s FROM %s t WHERE t.%s = ANY($1::%s[]) AND %s",
                 f->select_cols, f->from, f->id_quoted, f->id_type, f->in_partition);
        const char *params[1] = {arr};
        PGresult *r = vd_feed_run(f, sql, 1, params);
        free(arr);
        if (!r)
            return source_failed(f, em, "cannot read the rows to repair");
        int rows = PQntuples(r);
        vd_feed_batch b = {0};
        int rc = vd_feed_batch_alloc(&b, (size_t)rows, dim) ? 0 : vd_fail(em, -ENOMEM, "out of memory");
        for (int i = 0; !rc && i < rows; i++)
            vd_feed_add_row_or_delete(f, &b, r, i, 0, vd_collection_config_of(c));
        PQclear(r);
        size_t applied = b.n_pts + b.n_dels;
        if (!rc)
            rc = vd_feed_write_batch(f, c, &b, em);
        vd_feed_batch_free(&b);
        if (rc)
            return rc;
        *done += applied;
    }
    return 0;
}

static int repair_deletes(vd_feed *f, vd_collection *c, id_list *l, uint64_t *done, vd_errmsg *em)
{
    for (size_t at = 0; at < l->n; at += REPAIR_CHUNK) {
        size_t n = l->n - at < REPAIR_CHUNK ? l->n - at : REPAIR_CHUNK;
        vd_feed_batch b = {0};
        int rc = vd_feed_batch_alloc(&b, n, 1) ? 0 : vd_fail(em, -ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < n; i++) {
            const char *id = l->ids[at + i];
            if (l->is_int[at + i])
                b.dels[b.n_dels++] = (vd_point_id){.kind = VD_ID_INT, .num = strtoull(id, NULL, 10)};
            else
                b.dels[b.n_dels++] = (vd_point_id){.kind = VD_ID_STR, .str = id, .len = (uint32_t)strlen(id)};
        }
        size_t applied = b.n_dels;
        if (!rc)
            rc = vd_feed_write_batch(f, c, &b, em);
        vd_feed_batch_free(&b);
        if (rc)
            return rc;
        *done += applied;
    }
    return 0;
}

/* Calls fn(k, page) on every page of cols over the source table, page_rows
 * at a time, until the last or k->oom. */
static int each_page(vd_feed *f, const char *cols, unsigned page_rows, comparison *k,
                     void (*fn)(vd_feed *f, vd_collection *c, PGresult *r, comparison *k),
                     vd_collection *c, vd_errmsg *em)
{
    char after[VD_FEED_KEY_MAX + 1] = "";
    for (;;) {
        PGresult *r = vd_feed_send_page(f, cols, after, page_rows) ? vd_feed_collect(f) : NULL;
        if (!r)
            return source_failed(f, em, "cannot read the source table");
        int n = PQntuples(r);
        fn(f, c, r, k);
        if (n > 0)
            snprintf(after, sizeof after, "%s", PQgetvalue(r, n - 1, 0));
        PQclear(r);
        if (k->oom)
            return vd_fail(em, -ENOMEM, "out of memory comparing");
        if (n < (int)page_rows)
            return 0;
    }
}

/* Reads every source row whole and compares it, then every point's id. */
static int compare(vd_feed *f, vd_collection *c, comparison *k, vd_errmsg *em)
{
    *k = (comparison){.int_ids = f->int_ids};
    int rc = each_page(f, f->select_cols, RECONCILE_PAGE, k, compare_rows, c, em);
    if (rc)
        return rc;
    vd_collection_foreach(c, visit_point, k);
    return k->oom ? vd_fail(em, -ENOMEM, "out of memory comparing") : 0;
}

static bool in_sync(const comparison *k) { return !k->missing.n && !k->stale.n && !k->extra.n; }

void vd_feed_reconcile_run(vd_feed *f, vd_collection *c, vd_feed_reconcile_req *req)
{
    double t0 = vd_now_s();
    comparison k;
    vd_errmsg em = {{0}};
    int rc = compare(f, c, &k, &em);
    if (rc)
        goto done;
    req->source_rows = k.rows;
    req->points = k.points;
    req->missing = k.missing.n;
    req->extra = k.extra.n;
    req->stale = k.stale.n;
    req->invalid = k.invalid.n;
    req->in_sync = in_sync(&k);
    note_examples(req, 0, &k.missing);
    note_examples(req, 1, &k.extra);
    note_examples(req, 2, &k.stale);
    note_examples(req, 3, &k.invalid);
    req->in_sync_after = req->in_sync;
    if (req->repair && !req->in_sync) {
        rc = repair_upserts(f, c, &k.missing, &req->repaired, &em);
        if (!rc)
            rc = repair_upserts(f, c, &k.stale, &req->repaired, &em);
        if (!rc)
            rc = repair_deletes(f, c, &k.extra, &req->repaired, &em);
        comparison again = {0};
        if (!rc && !(rc = compare(f, c, &again, &em)))
            req->in_sync_after = in_sync(&again);
        comparison_free(&again);
    }
    vd_log_info("feed reconciliation", "feed=%s source_rows=%" PRIu64 " points=%" PRIu64
                " missing=%" PRIu64 " extra=%" PRIu64 " stale=%" PRIu64 " invalid=%" PRIu64
                " repaired=%" PRIu64 " in_sync_after=%s",
                f->cfg.name, req->source_rows, req->points, req->missing, req->extra, req->stale,
                req->invalid, req->repaired, req->in_sync_after ? "true" : "false");
done:
    req->rc = rc;
    if (rc)
        snprintf(req->error, sizeof req->error, "%s", em.text);
    req->seconds = vd_now_s() - t0;
    comparison_free(&k);
}

/* One page of source ids into k->t. */
static void note_ids(vd_feed *f, vd_collection *c, PGresult *r, comparison *k)
{
    (void)f;
    (void)c;
    for (int i = 0; i < PQntuples(r) && !k->oom; i++)
        k->oom |= !table_add(&k->t, PQgetvalue(r, i, 0));
}

int vd_feed_drop_absent(vd_feed *f, vd_collection *c, uint64_t *deleted, vd_errmsg *em)
{
    comparison k = {.int_ids = f->int_ids};
    char cols[512]; /* a quoted column name: at most 2 × 63 + 2 bytes */
    snprintf(cols, sizeof cols, "t.%s::text", f->id_quoted);
    int rc = each_page(f, cols, RECONCILE_ID_PAGE, &k, note_ids, c, em);
    if (!rc) {
        vd_collection_foreach(c, visit_point, &k);
        rc = k.oom ? vd_fail(em, -ENOMEM, "out of memory comparing") : 0;
    }
    *deleted = 0;
    if (!rc)
        rc = repair_deletes(f, c, &k.extra, deleted, em);
    comparison_free(&k);
    return rc;
}

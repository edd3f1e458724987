/*
 * reconcile.c — compares a feed's collection with its source table and, on
 * request, repairs the difference (vd_feed_reconcile in pg_feed.h).
 *
 * Exact, not sampled: every source id and version is read (keyset pages of
 * RECONCILE_PAGE, each its own statement) into a hash table, then every live
 * point of the collection is looked up in it. A point whose id the table
 * lacks is extra; one with another version is stale; a row no point matched
 * is missing. Memory: one table entry per source row (its id string and
 * version). Repair goes through the journal like any write: missing and
 * stale rows are read whole and upserted with their versions, extra points
 * deleted. It runs on the feed thread between rounds, so the feed applies
 * nothing meanwhile; a row changed in Postgres during the comparison also
 * has an outbox row, which the feed applies right after.
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

#define RECONCILE_PAGE 10000
#define REPAIR_CHUNK 500

typedef struct entry {
    char *id; /* NULL = empty slot */
    uint64_t version;
    bool has_version, seen;
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

static bool table_add(id_table *t, const char *id, const char *version)
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
        return true; /* ids are unique in the source; keep the first */
    if (!(e->id = strdup(id)))
        return false;
    e->has_version = version != NULL;
    e->version = version ? strtoull(version, NULL, 10) : 0;
    t->n++;
    return true;
}

static void table_free(id_table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->e[i].id);
    free(t->e);
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

typedef struct visit {
    id_table *t;
    bool int_ids; /* the feed's kind of id */
    id_list extra, stale;
    uint64_t points;
    bool oom;
} visit;

static void id_text(const vd_point_id *id, char *out, size_t cap)
{
    if (id->kind == VD_ID_INT)
        snprintf(out, cap, "%" PRIu64, id->num);
    else
        snprintf(out, cap, "%.*s", (int)id->len, id->str);
}

static void visit_point(void *ctx, const vd_point_id *id, uint64_t version)
{
    visit *v = ctx;
    char text[VD_ID_MAX_LEN + 24];
    id_text(id, text, sizeof text);
    v->points++;
    bool is_int = id->kind == VD_ID_INT;
    /* A point of the other kind (written over the API) matches no row. */
    entry *e = v->t->cap && is_int == v->int_ids ? slot_for(v->t, text) : NULL;
    if (!e || !e->id) {
        v->oom |= !list_add(&v->extra, text, is_int);
        return;
    }
    e->seen = true;
    if (e->has_version && e->version != version)
        v->oom |= !list_add(&v->stale, text, is_int);
}

static void note_examples(vd_feed_reconcile_req *req, int kind, const id_list *l)
{
    for (size_t i = 0; i < l->n && i < VD_RECONCILE_EXAMPLES; i++) {
        snprintf(req->examples[kind][i], sizeof req->examples[kind][i], "%s", l->ids[i]);
        req->example_is_int[kind][i] = l->is_int[i];
    }
}

/* Reads every (id, version) of the source table into t. */
static bool read_source(vd_feed *f, id_table *t)
{
    char sql[2048], limit[16], after[VD_FEED_KEY_MAX + 1] = "";
    snprintf(limit, sizeof limit, "%d", RECONCILE_PAGE);
    for (;;) {
        bool first = !*after;
        if (first)
            snprintf(sql, sizeof sql, "SELECT t.%s::text, %s FROM %s t ORDER BY t.%s LIMIT $1::int",
                     f->id_quoted, f->version_expr, f->from, f->id_quoted);
        else
            snprintf(sql, sizeof sql,
                     "SELECT t.%s::text, %s FROM %s t WHERE t.%s > $2 ORDER BY t.%s LIMIT $1::int",
                     f->id_quoted, f->version_expr, f->from, f->id_quoted, f->id_quoted);
        const char *params[2] = {limit, after};
        PGresult *r = vd_feed_run(f, sql, first ? 1 : 2, params);
        if (!r)
            return false;
        int n = PQntuples(r);
        bool ok = true;
        for (int i = 0; i < n && ok; i++)
            ok = table_add(t, PQgetvalue(r, i, 0), PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1));
        if (n > 0)
            snprintf(after, sizeof after, "%s", PQgetvalue(r, n - 1, 0));
        PQclear(r);
        if (!ok)
            return false;
        if (n < RECONCILE_PAGE)
            return true;
    }
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
        snprintf(sql, sizeof sql, "SELECT %s FROM %s t WHERE t.%s = ANY($1::%s[])", f->select_cols,
                 f->from, f->id_quoted, f->id_type);
        const char *params[1] = {arr};
        PGresult *r = vd_feed_run(f, sql, 1, params);
        free(arr);
        if (!r)
            return source_failed(f, em, "cannot read the rows to repair");
        int rows = PQntuples(r);
        vd_feed_batch b = {0};
        int rc = vd_feed_batch_alloc(&b, (size_t)rows, dim) ? 0 : vd_fail(em, -ENOMEM, "out of memory");
        for (int i = 0; !rc && i < rows; i++)
            vd_feed_add_row(f, &b, r, i, 0, vd_collection_config_of(c));
        PQclear(r);
        size_t applied = b.n_pts;
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

void vd_feed_reconcile_run(vd_feed *f, vd_collection *c, vd_feed_reconcile_req *req)
{
    double t0 = vd_now_s();
    id_table t = {0};
    visit v = {.t = &t, .int_ids = f->int_ids};
    id_list missing = {0};
    vd_errmsg em = {{0}};
    int rc = 0;
    if (!read_source(f, &t)) {
        rc = source_failed(f, &em, "cannot read the source table");
        goto done;
    }
    vd_collection_foreach(c, visit_point, &v);
    for (size_t i = 0; i < t.cap && !v.oom; i++)
        if (t.e[i].id && !t.e[i].seen)
            v.oom |= !list_add(&missing, t.e[i].id, f->int_ids);
    if (v.oom) {
        rc = vd_fail(&em, -ENOMEM, "out of memory comparing");
        goto done;
    }
    req->source_rows = t.n;
    req->points = v.points;
    req->missing = missing.n;
    req->extra = v.extra.n;
    req->stale = v.stale.n;
    note_examples(req, 0, &missing);
    note_examples(req, 1, &v.extra);
    note_examples(req, 2, &v.stale);
    if (req->repair) {
        rc = repair_upserts(f, c, &missing, &req->repaired, &em);
        if (!rc)
            rc = repair_upserts(f, c, &v.stale, &req->repaired, &em);
        if (!rc)
            rc = repair_deletes(f, c, &v.extra, &req->repaired, &em);
    }
    vd_log_info("feed reconciliation", "feed=%s source_rows=%" PRIu64 " points=%" PRIu64
                " missing=%" PRIu64 " extra=%" PRIu64 " stale=%" PRIu64 " repaired=%" PRIu64,
                f->cfg.name, req->source_rows, req->points, req->missing, req->extra, req->stale,
                req->repaired);
done:
    req->rc = rc;
    if (rc)
        snprintf(req->error, sizeof req->error, "%s", em.text);
    req->seconds = vd_now_s() - t0;
    table_free(&t);
    list_free(&missing);
    list_free(&v.extra);
    list_free(&v.stale);
}

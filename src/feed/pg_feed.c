/*
 * pg_feed.c — the feed thread (pg_feed.h): set-up (column types, the select
 * list, the target collection), backfill and follow rounds, reconciliation
 * between rounds (reconcile.c), lifecycle and status. Its helpers: the
 * connection (feed_conn.c), read-your-writes waiters (feed_waiters.c), rows
 * into batches (feed_rows.c).
 *
 * Position. Each outbox row has the id of the transaction that wrote it
 * (xid8) and a sequence number. A transaction may commit after a later one,
 * so "seq > last" would skip rows; instead each round reads, in one
 * statement, the rows of *finished* transactions only — xid below the xmin
 * of the statement's own snapshot — after the position (xid, seq), in (xid,
 * seq) order. Every transaction below that xmin has committed or aborted,
 * so no row can appear behind the position later: each row is consumed
 * exactly once. Backfill starts by noting that xmin (P0); changes committed
 * during the backfill have xid >= P0 and are consumed by the follow after.
 *
 * Rows are joined with the source table: a present row becomes an upsert of
 * its current contents with its version; an absent one a delete. Applying a
 * row twice therefore changes nothing, which is what makes the crash window
 * between a batch and its logged position harmless.
 */
#include "feed/feed_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "write/mutation.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strbuf.h"

#define MAX_BACKOFF_MS 10000

/* ---- set-up: column types and the select list -------------------------------- */

static char *column_type(vd_feed *f, const char *column)
{
    const char *params[2] = {f->from, column};
    PGresult *r = vd_feed_run(f, "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                         "WHERE a.attrelid = $1::regclass AND a.attname = $2 AND NOT a.attisdropped",
                      2, params);
    char *t = NULL;
    if (r && PQntuples(r) == 1)
        t = strdup(PQgetvalue(r, 0, 0));
    else if (r)
        vd_feed_error(f, "table %s has no column \"%s\"", f->from, column);
    PQclear(r);
    return t;
}

/* jsonb_build_object takes at most 100 arguments: 50 columns. */
#define MAX_BUILD_COLUMNS 50

/* Appends the payload expression: jsonb_build_object over the payload
 * columns (the listed ones, or every column but the embedding, the excluded
 * ones and pgvector columns), so no embedding is copied into JSON; past 50
 * columns, to_jsonb(row) minus those. */
static bool append_payload(vd_feed *f, vd_strbuf *b)
{
    char *names[MAX_BUILD_COLUMNS + 1];
    size_t n = 0;
    bool many = false;
    if (*f->cfg.payload_columns) {
        char *cols = strdup(f->cfg.payload_columns), *save = NULL;
        for (char *c = cols ? strtok_r(cols, ",", &save) : NULL; c; c = strtok_r(NULL, ",", &save)) {
            while (*c == ' ')
                c++;
            if (n == MAX_BUILD_COLUMNS)
                many = true;
            else
                names[n++] = strdup(c);
        }
        free(cols);
    } else {
        /* Every column but the embedding, those feed_payload_exclude lists,
         * and pgvector columns (a vector is never payload) */
        const char *params[3] = {f->from, f->cfg.embedding_column, f->cfg.payload_exclude};
        PGresult *r = vd_feed_run(
            f,
            "SELECT attname, attname = $2 OR attname = ANY (ARRAY(SELECT btrim(x) FROM "
            "unnest(string_to_array($3, ',')) x)) OR format_type(atttypid, NULL) IN "
            "('vector', 'halfvec', 'sparsevec') FROM pg_attribute WHERE attrelid = $1::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            3, params);
        if (!r)
            return false;
        size_t kept = 0;
        for (int i = 0; i < PQntuples(r); i++)
            kept += PQgetvalue(r, i, 1)[0] == 'f';
        many = kept > MAX_BUILD_COLUMNS;
        /* the names to keep, or past 50 the names to drop from to_jsonb(t) */
        for (int i = 0; i < PQntuples(r); i++)
            if ((PQgetvalue(r, i, 1)[0] == 'f') != many && n < MAX_BUILD_COLUMNS)
                names[n++] = strdup(PQgetvalue(r, i, 0));
        PQclear(r);
    }
    if (many && *f->cfg.payload_columns) {
        vd_feed_error(f, "feed_payload_columns lists more than %d columns", MAX_BUILD_COLUMNS);
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        return false;
    }
    if (many) {
        vd_strbuf_printf(b, "(to_jsonb(t) - ARRAY[");
        for (size_t i = 0; i < n; i++) {
            char *lit = names[i] ? PQescapeLiteral(f->conn, names[i], strlen(names[i])) : NULL;
            if (!lit)
                b->failed = true;
            vd_strbuf_printf(b, "%s%s", i ? ", " : "", lit ? lit : "''");
            PQfreemem(lit);
        }
        vd_strbuf_printf(b, "]::text[])::text");
    } else {
        vd_strbuf_printf(b, "jsonb_build_object(");
        for (size_t i = 0; i < n; i++) {
            char *q = names[i] ? vd_feed_quote_ident(f, names[i]) : NULL;
            char *lit = names[i] ? PQescapeLiteral(f->conn, names[i], strlen(names[i])) : NULL;
            if (!q || !lit)
                b->failed = true;
            vd_strbuf_printf(b, "%s%s, t.%s", i ? ", " : "", lit ? lit : "''", q ? q : "\"\"");
            PQfreemem(lit);
            free(q);
        }
        vd_strbuf_printf(b, ")::text");
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return !b->failed;
}

/* The SQL condition on a row t of being in the feed's partition (a malloc'd
 * string; "true" when the feed is not partitioned), or NULL (recorded). */
static char *partition_predicate(vd_feed *f)
{
    if (!f->cfg.partition.count)
        return strdup("true");
    char *type = column_type(f, f->cfg.partition_column);
    char *col = type ? vd_feed_quote_ident(f, f->cfg.partition_column) : NULL;
    free(type); /* only its existence matters: every type prints as text */
    char expr[512], column[300];
    char *out = NULL;
    if (col && snprintf(column, sizeof column, "t.%s", col) < (int)sizeof column &&
        vd_partition_sql(expr, sizeof expr, column, f->cfg.partition.count) > 0 &&
        asprintf(&out, "%s = %u", expr, f->cfg.partition.index) < 0)
        out = NULL;
    free(col);
    return out;
}

static bool prepare(vd_feed *f)
{
    free(f->from);
    free(f->id_quoted);
    free(f->id_type);
    free(f->select_cols);
    f->select_cols = NULL;
    f->from = vd_feed_quote_ident(f, f->cfg.table);
    f->id_quoted = vd_feed_quote_ident(f, f->cfg.id_column);
    char *emb = vd_feed_quote_ident(f, f->cfg.embedding_column);
    char *ver = *f->cfg.version_column ? vd_feed_quote_ident(f, f->cfg.version_column) : NULL;
    char *ver_type = NULL;
    vd_strbuf b;
    vd_strbuf_init(&b, 0);
    bool ok = f->from && f->id_quoted && emb && (f->id_type = column_type(f, f->cfg.id_column));
    if (ok && *f->cfg.version_column)
        ok = (ver_type = column_type(f, f->cfg.version_column)) != NULL;
    char *emb_type = ok ? column_type(f, f->cfg.embedding_column) : NULL;
    ok = ok && emb_type;
    free(emb_type); /* only its existence matters: text, json or vector all print as an array */
    if (ok) {
        f->int_ids = strcmp(f->id_type, "bigint") == 0 || strcmp(f->id_type, "integer") == 0 ||
                     strcmp(f->id_type, "smallint") == 0;
        vd_strbuf_printf(&b, "t.%s::text, t.%s::text, ", f->id_quoted, emb);
        vd_strbuf vx;
        vd_strbuf_init(&vx, 0);
        if (!ver)
            vd_strbuf_printf(&vx, "NULL");
        else if (strncmp(ver_type, "timestamp", 9) == 0)
            vd_strbuf_printf(&vx, "floor(extract(epoch FROM t.%s) * 1000000)::bigint::text", ver);
        else
            vd_strbuf_printf(&vx, "t.%s::bigint::text", ver);
        free(f->version_expr);
        f->version_expr = vd_strbuf_take(&vx, NULL);
        vd_strbuf_printf(&b, "%s", f->version_expr ? f->version_expr : "NULL");
        vd_strbuf_printf(&b, ", ");
        ok = append_payload(f, &b);
    }
    f->select_cols = ok && !b.failed ? vd_strbuf_take(&b, NULL) : NULL;
    vd_strbuf_free(&b);
    free(f->in_partition);
    f->in_partition = NULL;
    if (f->select_cols)
        f->in_partition = partition_predicate(f);
    if (!f->in_partition) {
        free(f->select_cols);
        f->select_cols = NULL;
    }
    free(emb);
    free(ver);
    free(ver_type);
    return f->select_cols != NULL;
}

/* Adds the payload indexes the feed's collection settings name and c lacks
 * (once per start); a field indexed with another type is left as it is, with
 * a warning. */
static void add_missing_indexes(vd_feed *f, vd_collection *c)
{
    if (f->indexes_checked)
        return;
    bool all = true;
    for (size_t i = 0; i < f->create.n_pindexes; i++) {
        const vd_pindex_spec *p = &f->create.pindexes[i];
        vd_errmsg em = {{0}};
        int rc = vd_collection_check_pindex(c, p->field, p->type, &em);
        if (rc == VD_E_COLLECTION_EXISTS) {
            vd_pindex_spec have[VD_PINDEX_MAX];
            size_t n = vd_collection_pindexes(c, have, VD_PINDEX_MAX);
            for (size_t k = 0; k < n; k++)
                if (strcmp(have[k].field, p->field) == 0 && have[k].type != p->type)
                    vd_log_warn("feed_collection_config names a payload index the collection has "
                                "with another type; kept as it is",
                                "feed=%s collection=%s field=%s", f->cfg.name, f->cfg.collection,
                                p->field);
            continue;
        }
        vd_mutation m = {.type = VD_MUT_ADD_PINDEX, .collection = f->cfg.collection,
                         .field = p->field, .pindex_type = p->type};
        if (!rc)
            rc = vd_journal_ddl(f->journal, &m, &em);
        if (rc && rc != VD_E_COLLECTION_EXISTS) {
            vd_feed_error(f, "cannot add payload index '%s' to collection '%s': %s", p->field,
                          f->cfg.collection, em.text);
            all = false;
            continue;
        }
        vd_log_info("feed added a payload index", "feed=%s collection=%s field=%s type=%s",
                    f->cfg.name, f->cfg.collection, p->field, vd_pindex_type_name(p->type));
    }
    f->indexes_checked = all;
}

/* The target collection; created from the feed's collection settings when
 * missing (feed_collection_config, feed_dim, feed_metric). */
static vd_collection *target(vd_feed *f)
{
    vd_collection *c;
    if (vd_database_get(f->db, f->cfg.collection, &c) == 0) {
        add_missing_indexes(f, c);
        return c;
    }
    if (!f->create.dim) {
        vd_feed_error(f, "collection '%s' does not exist and feed_dim is 0", f->cfg.collection);
        return NULL;
    }
    vd_collection_config cfg = f->create;
    snprintf(cfg.name, sizeof cfg.name, "%s", f->cfg.collection);
    vd_errmsg em = {{0}};
    vd_mutation m = {.type = VD_MUT_CREATE_COLLECTION, .collection = cfg.name, .cfg = &cfg};
    int rc = vd_journal_ddl(f->journal, &m, &em);
    if (rc && rc != VD_E_COLLECTION_EXISTS) {
        vd_feed_error(f, "cannot create collection '%s': %s", f->cfg.collection, em.text);
        return NULL;
    }
    vd_log_info("feed created its collection", "feed=%s collection=%s dim=%u metric=%s index=%s "
                "shards=%u quantization=%s payload_indexes=%zu", f->cfg.name, f->cfg.collection,
                cfg.dim, vd_metric_name(cfg.metric), vd_index_type_name(cfg.index.type),
                cfg.n_shards, vd_quant_name(cfg.quant), cfg.n_pindexes);
    if (vd_database_get(f->db, f->cfg.collection, &c) != 0)
        return NULL;
    add_missing_indexes(f, c); /* a collection made by another between the two looks */
    return c;
}

/* ---- backfill and follow -------------------------------------------------------- */

/* Backfill pages a round reads and applies before the feed loop looks around
 * (stop, reconnect, reconciliations) again. */
#define VD_BACKFILL_PAGES 8u

/* One backfill round of up to VD_BACKFILL_PAGES pages; 1 = more to do, 0 = done, -1 = error. */
static int backfill_round(vd_feed *f, vd_collection *c)
{
    vd_feed_state next = f->state;
    if (!next.backfill_started) {
        /* Changes from here on are the follow's: note where it starts. */
        PGresult *r = vd_feed_run(f, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text", 0, NULL);
        if (!r)
            return -1;
        next.backfill_started = true;
        next.xid = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        next.seq = 0;
        PQclear(r);
        vd_feed_batch none = {0};
        if (!vd_feed_apply(f, c, &none, &next))
            return -1;
        vd_log_info("feed backfill started", "feed=%s table=%s follow_from_xid=%" PRIu64, f->cfg.name,
                    f->cfg.table, next.xid);
        return 1;
    }
    /* Pages are read ahead across rounds; a reader left behind by another
     * position (an earlier round failed) is dropped. */
    if (f->pages && strcmp(vd_feed_pages_after(f->pages), next.backfill_after) != 0) {
        vd_feed_pages_free(f->pages);
        f->pages = NULL;
    }
    if (!f->pages &&
        !(f->pages = vd_feed_pages_start(f, next.backfill_after, f->cfg.backfill_connections, NULL)))
        return -1;
    bool last = false;
    int rc = vd_feed_backfill_pages(f, c, f->pages, &next, VD_BACKFILL_PAGES, !f->sweep_after_backfill,
                                    &last);
    if (rc || last) {
        vd_feed_pages_free(f->pages);
        f->pages = NULL;
    }
    if (rc)
        return -1;
    if (last && !next.backfill_done) {
        uint64_t swept = 0;
        vd_errmsg em = {{0}};
        if (vd_feed_drop_absent(f, c, &swept, &em)) {
            vd_feed_error(f, "cannot delete the points whose rows are gone: %s", em.text);
            return -1;
        }
        vd_log_info("feed swept the points outside its rows", "feed=%s points_swept=%" PRIu64,
                    f->cfg.name, swept);
        next.backfill_done = true;
        vd_feed_batch none = {0};
        if (!vd_feed_apply(f, c, &none, &next))
            return -1;
    }
    if (next.backfill_done) {
        vd_log_info("feed backfill done", "feed=%s rows=%" PRIu64, f->cfg.name, next.backfill_rows);
        vd_feed_publish_position(f);
    }
    return next.backfill_done ? 0 : 1;
}

/* One follow round; 1 = a full batch (more may wait), 0 = caught up, -1 = error. */
static int follow_round(vd_feed *f, vd_collection *c)
{
    char sql[4096], xid[32], seq[32], limit[16];
    snprintf(xid, sizeof xid, "%" PRIu64, f->state.xid);
    snprintf(seq, sizeof seq, "%" PRIu64, f->state.seq);
    snprintf(limit, sizeof limit, "%u", f->cfg.batch_rows);
    const char *params[4] = {xid, seq, limit, f->cfg.table};
    /* One statement, one snapshot: its xmin (column 0, on every row, and on
     * the single all-NULL row when there is nothing to consume) bounds the
     * rows, and tells read-your-writes waiters how far the feed has got. */
    snprintf(sql, sizeof sql,
             "WITH s AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS x) "
             "SELECT s.x::text, r.* FROM s LEFT JOIN LATERAL ("
             " SELECT o.xid::text AS oxid, o.seq::text AS oseq, o.row_id, (t.%s IS NOT NULL),"
             " o.op::text AS oop, %s"
             " FROM vectord_outbox o LEFT JOIN %s t ON t.%s = o.row_id::%s AND %s"
             " WHERE o.source = $4 AND (o.xid, o.seq) > ($1::xid8, $2::bigint) AND o.xid < s.x"
             " ORDER BY o.xid, o.seq LIMIT $3::int) r ON true",
             f->id_quoted, f->select_cols, f->from, f->id_quoted, f->id_type, f->in_partition);
    PGresult *r = vd_feed_run(f, sql, 4, params);
    if (!r)
        return -1;
    int n = PQntuples(r);
    uint64_t xmin = n ? strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    if (n == 1 && PQgetisnull(r, 0, 1))
        n = 0; /* nothing to consume */
    bool full = n == (int)f->cfg.batch_rows;
    /* A TRUNCATE ends the batch before it; first in a batch, it is the batch. */
    int truncate_at = -1;
    for (int i = 0; i < n && truncate_at < 0; i++)
        if (strcmp(PQgetvalue(r, i, 5), "T") == 0)
            truncate_at = i;
    if (truncate_at > 0) {
        n = truncate_at;
        full = true; /* more to read: the TRUNCATE and what follows it */
    }
    uint32_t dim = vd_collection_config_of(c)->dim;
    vd_feed_batch b = {0};
    bool ok = vd_feed_batch_alloc(&b, (size_t)n, dim);
    if (truncate_at == 0) {
        uint64_t deleted = 0;
        vd_errmsg em = {{0}};
        if (vd_feed_drop_absent(f, c, &deleted, &em)) {
            vd_feed_error(f, "cannot apply a TRUNCATE of %s: %s", f->from, em.text);
            ok = false;
        } else {
            vd_log_info("feed applied a TRUNCATE", "feed=%s table=%s points_deleted=%" PRIu64,
                        f->cfg.name, f->cfg.table, deleted);
        }
        n = 1;
        full = true;
    }
    for (int i = 0; ok && i < n && truncate_at != 0; i++) {
        if (strcmp(PQgetvalue(r, i, 4), "t") == 0) {
            vd_feed_add_row_or_delete(f, &b, r, i, 6, vd_collection_config_of(c));
        } else if (!vd_feed_add_delete(f, &b, c, PQgetvalue(r, i, 3))) {
            vd_feed_reject_row(f, PQgetvalue(r, i, 3), "bad id");
        }
    }
    vd_feed_state next = f->state;
    if (n > 0) {
        next.xid = strtoull(PQgetvalue(r, n - 1, 1), NULL, 10);
        next.seq = strtoull(PQgetvalue(r, n - 1, 2), NULL, 10);
    }
    PQclear(r);
    ok = ok && (n == 0 || vd_feed_apply(f, c, &b, &next));
    vd_feed_batch_free(&b);
    if (!ok)
        return -1;
    if (n > 0)
        vd_feed_publish_position(f);
    bool all = !full;
    if (all) {
        /* Every change of a transaction below xmin is applied now. */
        pthread_mutex_lock(&f->lock);
        if (xmin > f->st.applied_below)
            f->st.applied_below = xmin;
        pthread_mutex_unlock(&f->lock);
        vd_feed_wake_waiters(f, false);
    }
    return all ? 0 : 1;
}

/* Waits for a NOTIFY (or poll_ms, or stop). Held back by an open
 * transaction, it looks again every 100 ms: the blocker's end sends no
 * NOTIFY, and what it held back must be applied at once. */
static int wait_notify(vd_feed *f)
{
    pthread_mutex_lock(&f->lock);
    bool blocked = f->st.blocked;
    pthread_mutex_unlock(&f->lock);
    double until = vd_now_s() + (blocked ? 0.1 : f->cfg.poll_ms / 1000.0);
    while (!atomic_load(&f->stop) && vd_now_s() < until) {
        /* A NOTIFY read while the last round's statements ran is already in
         * libpq's queue: looked at before waiting for the socket. */
        if (!PQconsumeInput(f->conn))
            return -1;
        PGnotify *n, *got = NULL;
        while ((n = PQnotifies(f->conn))) {
            PQfreemem(got);
            got = n;
        }
        if (got) {
            PQfreemem(got);
            return 0;
        }
        if (vd_feed_wait_socket(f, POLLIN, 100))
            return -1;
        vd_feed_wake_waiters(f, false); /* timeouts */
    }
    return 0;
}

/* Runs the queued reconciliations on c (between rounds: the feed is not
 * applying anything meanwhile), or fails them when c is NULL (the feed stops). */
static void drain_reconciles(vd_feed *f, vd_collection *c)
{
    pthread_mutex_lock(&f->lock);
    vd_feed_reconcile_req *q = f->reconciles;
    f->reconciles = NULL;
    pthread_mutex_unlock(&f->lock);
    while (q) {
        vd_feed_reconcile_req *next = q->next;
        if (c) {
            vd_feed_reconcile_run(f, c, q);
        } else {
            q->rc = VD_E_NOT_READY;
            snprintf(q->error, sizeof q->error, "the feed stopped before the reconciliation ran");
        }
        q->wake(q->ctx);
        q = next;
    }
}

void vd_feed_reconcile(vd_feed *f, vd_feed_reconcile_req *req)
{
    pthread_mutex_lock(&f->lock);
    const char *why = atomic_load(&f->stop)   ? "the feed is stopping"
                      : !f->st.connected      ? "the feed is not connected to Postgres"
                      : !f->st.backfill_done ? "the backfill is still running"
                                              : NULL;
    if (!why) {
        req->next = f->reconciles;
        f->reconciles = req;
    }
    pthread_mutex_unlock(&f->lock);
    if (why) {
        req->rc = VD_E_NOT_READY;
        snprintf(req->error, sizeof req->error, "%s", why);
        req->wake(req->ctx);
    }
}

/* A backfill is a bulk load: while one runs, checkpoints triggered by WAL
 * size space out (storage.checkpoint_bulk_wal_pct). */
static void mark_bulk_load(vd_feed *f, bool on)
{
    if (on != f->bulk_load) {
        vd_journal_bulk_load(f->journal, on);
        f->bulk_load = on;
    }
}

static void *feed_main(void *arg)
{
    vd_feed *f = arg;
    int backoff = 100;
    bool was_connected = false;
    while (!atomic_load(&f->stop)) {
        if (!f->conn) {
            if (was_connected) {
                pthread_mutex_lock(&f->lock);
                f->st.reconnects++;
                pthread_mutex_unlock(&f->lock);
            }
            /* prepare() rewrites the SQL the page readers use: none may run. */
            vd_feed_pages_free(f->pages);
            f->pages = NULL;
            bool logical = f->cfg.logical;
            if (!vd_feed_connect(f) || !prepare(f) ||
                !(logical ? vd_feed_logical_check(f) : vd_feed_check_access(f))) {
                PQfinish(f->conn);
                f->conn = NULL;
                vd_feed_nap(f, backoff);
                backoff = backoff * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : backoff * 2;
                continue;
            }
            PGresult *r = logical ? PQmakeEmptyPGresult(f->conn, PGRES_COMMAND_OK)
                                  : vd_feed_run(f, "LISTEN vectord_outbox", 0, NULL);
            PQclear(r);
            was_connected = true;
            pthread_mutex_lock(&f->lock);
            f->st.connected = r != NULL;
            f->st.last_error[0] = 0;
            pthread_mutex_unlock(&f->lock);
            vd_log_info("feed connected", "feed=%s table=%s collection=%s source=%s", f->cfg.name,
                        f->cfg.table, f->cfg.collection, logical ? "logical" : "outbox");
            backoff = 100;
        }
        vd_collection *c = target(f);
        int rc = -1;
        mark_bulk_load(f, c && !f->state.backfill_done); /* before the round: it may start the backfill */
        if (c && f->state.backfill_done)
            drain_reconciles(f, c);
        if (c && f->cfg.logical) {
            rc = vd_feed_logical_round(f, c);
            if (rc >= 0)
                vd_feed_clear_error(f);
        } else if (c) {
            /* Before the round: the batch about to be applied counts as lag. */
            if (f->state.backfill_done && vd_feed_lag_due(f))
                vd_feed_measure_lag(f);
            rc = !f->state.backfill_done ? backfill_round(f, c) : follow_round(f, c);
            if (rc >= 0)
                vd_feed_clear_error(f);
            if (rc == 0 && f->state.backfill_done) {
                f->caught_up = true;
                vd_feed_measure_lag(f);
            }
        }
        mark_bulk_load(f, c && !f->state.backfill_done); /* after it: let go as soon as it is done, not after the wait */
        vd_collection_unref(c);
        if (rc == 0 && !f->cfg.logical)
            rc = wait_notify(f);
        vd_feed_wake_waiters(f, false);
        if (rc < 0)
            vd_feed_logical_close(f); /* a stream cut mid-way starts again from the logged position */
        if (rc < 0 && PQstatus(f->conn) != CONNECTION_OK) {
            vd_feed_pages_free(f->pages);
            f->pages = NULL;
            PQfinish(f->conn);
            f->conn = NULL;
            pthread_mutex_lock(&f->lock);
            f->st.connected = false;
            pthread_mutex_unlock(&f->lock);
        } else if (rc < 0) {
            vd_feed_nap(f, backoff); /* an SQL error: retry later */
            backoff = backoff * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : backoff * 2;
        }
    }
    vd_feed_pages_free(f->pages);
    f->pages = NULL;
    PQfinish(f->conn);
    f->conn = NULL;
    vd_feed_logical_close(f);
    mark_bulk_load(f, false);
    vd_feed_wake_waiters(f, true);
    return NULL;
}

int vd_feed_start(vd_feed **out, const vd_feed_config *cfg, vd_database *db, vd_journal *journal,
                  vd_errmsg *em)
{
    vd_feed *f = calloc(1, sizeof *f);
    if (!f)
        return vd_fail(em, -ENOMEM, "out of memory");
    f->cfg = *cfg;
    const char **fields[] = {&f->cfg.name, &f->cfg.dsn, &f->cfg.table, &f->cfg.collection,
                             &f->cfg.id_column, &f->cfg.embedding_column, &f->cfg.version_column,
                             &f->cfg.payload_columns, &f->cfg.payload_exclude, &f->cfg.slot,
                             &f->cfg.publication, &f->cfg.partition_column};
    _Static_assert(sizeof fields / sizeof fields[0] == VD_FEED_N_STRINGS, "one copy per string");
    for (size_t i = 0; i < VD_FEED_N_STRINGS; i++) {
        f->strings[i] = strdup(*fields[i] ? *fields[i] : "");
        *fields[i] = f->strings[i];
    }
    if (cfg->create) {
        f->create = *cfg->create;
        f->create.n_pindexes = 0;
        for (size_t i = 0; i < cfg->create->n_pindexes; i++) {
            char *field = strdup(cfg->create->pindexes[i].field);
            if (!field) {
                vd_feed_free(f);
                return vd_fail(em, -ENOMEM, "out of memory");
            }
            f->create.pindexes[f->create.n_pindexes++].field = field;
        }
    }
    f->create.vectors_dir = NULL; /* the database sets it */
    f->cfg.create = &f->create;
    if (!f->cfg.batch_rows)
        f->cfg.batch_rows = 2000; /* as the setting's default (server/config.c) */
    if (!f->cfg.backfill_connections)
        f->cfg.backfill_connections = 2; /* as the setting's default (server/config.c) */
    if (!f->cfg.poll_ms)
        f->cfg.poll_ms = 1000;
    f->db = db;
    f->journal = journal;
    pthread_mutex_init(&f->lock, NULL);
    snprintf(f->state.feed, sizeof f->state.feed, "%s", f->cfg.name);
    vd_database_feed_get(db, f->cfg.name, &f->state); /* resume where the log says */
    char partition[VD_FEED_PARTITION_MAX + 1] = "";
    if (f->cfg.partition.count)
        snprintf(partition, sizeof partition, "%u/%u %s", f->cfg.partition.index,
                 f->cfg.partition.count, f->cfg.partition_column);
    f->sweep_after_backfill = f->cfg.partition.count > 0;
    bool moved = f->state.backfill_started && strcmp(f->state.partition, partition) != 0;
    if (f->state.backfill_started && (f->state.logical != f->cfg.logical || moved)) {
        /* The position of one source means nothing to the other; the rows
         * of another partition are not this one's. */
        if (moved)
            vd_log_warn("feed_partition changed: the table is copied again and the points outside "
                        "the new partition are deleted", "feed=%s from=\"%s\" to=\"%s\"",
                        f->cfg.name, f->state.partition, partition);
        else
            vd_log_warn("feed_source changed: the table is copied again", "feed=%s source=%s",
                        f->cfg.name, f->cfg.logical ? "logical" : "outbox");
        vd_feed_state fresh = {.logical = f->cfg.logical};
        memcpy(fresh.feed, f->state.feed, sizeof fresh.feed);
        f->state = fresh;
        f->sweep_after_backfill |= moved;
    }
    memcpy(f->state.partition, partition, sizeof partition);
    f->st.backfill_started = f->state.backfill_started;
    f->st.backfill_done = f->state.backfill_done;
    f->st.backfill_rows = f->state.backfill_rows;
    f->st.xid = f->state.xid;
    f->st.seq = f->state.seq;
    f->st.applied_lsn = f->state.logical ? f->state.source_lsn : 0;
    f->st.position_recorded = true; /* until a write of it fails */
    if (pthread_create(&f->thread, NULL, feed_main, f) != 0) {
        vd_feed_free(f);
        return vd_fail(em, -EAGAIN, "cannot start the feed thread");
    }
    f->started = true;
    *out = f;
    return 0;
}

void vd_feed_stop(vd_feed *f)
{
    if (!f)
        return;
    atomic_store(&f->stop, true);
    if (f->started) {
        pthread_join(f->thread, NULL);
        f->started = false;
    }
    vd_feed_wake_waiters(f, true);
    drain_reconciles(f, NULL);
}

void vd_feed_free(vd_feed *f)
{
    if (!f)
        return;
    vd_feed_stop(f);
    for (size_t i = 0; i < VD_FEED_N_STRINGS; i++)
        free(f->strings[i]);
    for (size_t i = 0; i < f->create.n_pindexes; i++)
        free((char *)f->create.pindexes[i].field);
    free(f->from);
    free(f->id_quoted);
    free(f->id_type);
    free(f->select_cols);
    free(f->version_expr);
    free(f->in_partition);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* Under the lock. */
static double staleness(const vd_feed *f)
{
    return f->st.confirmed_at ? vd_now_s() - f->st.confirmed_at + f->st.confirmed_lag : -1;
}

void vd_feed_status_get(vd_feed *f, vd_feed_status *st)
{
    pthread_mutex_lock(&f->lock);
    *st = f->st;
    st->staleness_seconds = staleness(f);
    pthread_mutex_unlock(&f->lock);
}

const vd_feed_config *vd_feed_config_of(const vd_feed *f) { return &f->cfg; }

bool vd_feed_ready(vd_feed *f)
{
    if (!f->cfg.max_lag_s)
        return true;
    pthread_mutex_lock(&f->lock);
    double s = staleness(f);
    bool ok = f->st.backfill_done && s >= 0 && s <= f->cfg.max_lag_s;
    pthread_mutex_unlock(&f->lock);
    return ok;
}

bool vd_feed_position_ready(vd_feed *f)
{
    if (!f->cfg.position_ready_s)
        return true;
    pthread_mutex_lock(&f->lock);
    bool ok = !f->st.position_failing_since ||
              vd_now_s() - f->st.position_failing_since <= f->cfg.position_ready_s;
    pthread_mutex_unlock(&f->lock);
    return ok;
}

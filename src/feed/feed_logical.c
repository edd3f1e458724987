/*
 * feed_logical.c — the logical-replication source (feed_source = logical):
 * no trigger and no outbox; PostgreSQL's own WAL, decoded by its built-in
 * pgoutput plugin for a publication, through a replication slot.
 *
 * Start. The slot is created with an exported snapshot; the backfill reads
 * the table in that snapshot (keyset pages, one REPEATABLE READ transaction
 * on the feed's SQL connection), so the copy holds exactly the transactions
 * committed before the slot's consistent point and the stream exactly those
 * after it: the two meet without a gap or an overlap. A backfill cut short
 * (a crash, a lost connection) cannot resume in a snapshot that is gone: the
 * slot is dropped and made again, the copy starts over, and points whose
 * rows are not in the new snapshot are deleted at its end.
 *
 * Follow. START_REPLICATION from the position logged in vectord's WAL.
 * Transactions arrive whole and in commit order. The ids a transaction
 * changed (inserts, updates, deletes of the table) are collected; once the
 * stream holds no more at hand (or batch_rows ids are collected, also
 * within a large transaction) their rows are read from the table as they
 * are now, as the outbox source does, for every transaction collected: a present row
 * becomes an upsert of its current contents, an absent one a delete. A later
 * change of the same row comes later in the stream, so what vectord holds
 * is the table's state in commit order, and applying a transaction twice
 * changes nothing. A TRUNCATE deletes every point whose row is gone.
 *
 * Position. After those points are durable, the end LSN of the last whole
 * transaction among them is logged
 * (a FEED_STATE record, flag "logical") and only then confirmed to the slot
 * (the standby status update's flush position), so the slot never forgets a
 * change vectord has not made durable: exactly once across crashes of either
 * side (a transaction the slot sends again after a restart, ending at or
 * before the logged LSN, is skipped). While nothing is pending, the
 * server's keepalives carry the end of what it has decoded: everything
 * before it is applied, which is what read-your-writes (?feed_lsn=) waits
 * for; a waiter makes the feed ask for a keepalive every 50 ms.
 */
#include "feed/feed_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/pgoutput.h"
#include "util/clock.h"
#include "util/log.h"

/* A status update every second, asking for a keepalive: the slot learns what
 * is durable, and an idle feed learns how far the server has decoded (far
 * under wal_sender_timeout, 60 s by default). */
#define FEEDBACK_EVERY_S 1.0
#define WAITER_KEEPALIVE_S 0.05
#define SLOT_MEASURE_EVERY_S 1.0
#define ROUND_S 0.1

bool vd_feed_logical_check(vd_feed *f)
{
    const char *params[3] = {f->from, f->cfg.publication, f->cfg.id_column};
    PGresult *r = vd_feed_run(
        f,
        "SELECT current_user::text, current_setting('wal_level'), "
        "COALESCE((SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), false), "
        "has_table_privilege($1::regclass, 'SELECT'), "
        "EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $2), "
        "EXISTS (SELECT 1 FROM pg_publication_tables p JOIN pg_class c ON c.oid = $1::regclass "
        "        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = $2 "
        "        AND p.schemaname = n.nspname AND p.tablename = c.relname), "
        "COALESCE((SELECT pubtruncate FROM pg_publication WHERE pubname = $2), false), "
        "(SELECT relreplident = 'f' FROM pg_class WHERE oid = $1::regclass) OR EXISTS ("
        "  SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        "  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
        "  WHERE i.indrelid = $1::regclass AND a.attname = $3 AND "
        "  ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident))), "
        "$1::regclass::oid::text",
        3, params);
    if (!r)
        return false;
    const char *role = PQgetvalue(r, 0, 0);
    bool ok = false;
    if (strcmp(PQgetvalue(r, 0, 1), "logical") != 0)
        vd_feed_error(f, "wal_level is %s; feed_source = logical needs wal_level = logical "
                      "(ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)",
                      PQgetvalue(r, 0, 1));
    else if (!vd_feed_true(r, 2))
        vd_feed_error(f, "role %s may not stream changes (ALTER ROLE %s REPLICATION)", role, role);
    else if (!vd_feed_true(r, 3))
        vd_feed_error(f, "role %s lacks SELECT on %s (GRANT SELECT ON %s TO %s)", role, f->from,
                      f->from, role);
    else if (!vd_feed_true(r, 4))
        vd_feed_error(f, "publication \"%s\" does not exist (CREATE PUBLICATION \"%s\" FOR TABLE %s)",
                      f->cfg.publication, f->cfg.publication, f->from);
    else if (!vd_feed_true(r, 5))
        vd_feed_error(f, "publication \"%s\" does not publish %s (ALTER PUBLICATION \"%s\" ADD TABLE %s)",
                      f->cfg.publication, f->from, f->cfg.publication, f->from);
    else if (!vd_feed_true(r, 7))
        vd_feed_error(f, "a delete from %s would not carry column \"%s\": make it the primary key or "
                      "the replica identity (ALTER TABLE %s REPLICA IDENTITY FULL)",
                      f->from, f->cfg.id_column, f->from);
    else
        ok = true;
    char warning[256] = "";
    if (ok && !vd_feed_true(r, 6))
        snprintf(warning, sizeof warning,
                 "publication \"%s\" does not publish TRUNCATE: a TRUNCATE of %s would not reach "
                 "vectord (ALTER PUBLICATION \"%s\" SET (publish = 'insert, update, delete, truncate'))",
                 f->cfg.publication, f->from, f->cfg.publication);
    f->lg.table_oid = (uint32_t)strtoul(PQgetvalue(r, 0, 8), NULL, 10);
    PQclear(r);
    vd_feed_set_warning(f, warning);
    return ok;
}

static void clear_pending(vd_feed *f)
{
    for (size_t i = 0; i < f->lg.n_pending; i++)
        free(f->lg.pending[i]);
    f->lg.n_pending = 0;
}

void vd_feed_logical_close(vd_feed *f)
{
    PQfinish(f->lg.repl);
    clear_pending(f);
    free(f->lg.pending);
    vd_feed_logical keep = {.table_oid = f->lg.table_oid};
    f->lg = keep;
    f->lg.id_col = -1;
}

/* ---- the replication connection ------------------------------------------------ */

static bool repl_connect(vd_feed *f)
{
    /* The walsender prints values in the session's settings: fixed here. */
    const char *keys[] = {"dbname", "replication", "options", "fallback_application_name", NULL};
    const char *vals[] = {f->cfg.dsn, "database", "-c DateStyle=ISO -c TimeZone=UTC",
                          "vectord replication", NULL};
    f->lg.id_col = -1;
    return vd_feed_connect_to(f, &f->lg.repl, keys, vals, " for replication");
}

/* A replication command on the replication connection; its result or NULL. */
static PGresult *repl_run(vd_feed *f, const char *cmd)
{
    return vd_feed_send_on(f, f->lg.repl, cmd, -1, NULL) ? vd_feed_collect_on(f, f->lg.repl) : NULL;
}

static bool slot_exists(vd_feed *f, bool *exists)
{
    const char *params[1] = {f->cfg.slot};
    PGresult *r = vd_feed_run(f, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", 1, params);
    if (!r)
        return false;
    *exists = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
    PQclear(r);
    return true;
}

/* ---- the backfill in the slot's snapshot ---------------------------------------- */

/* Drops the slot if it exists and makes it again; its consistent point and
 * the name of its exported snapshot. */
static bool make_slot(vd_feed *f, uint64_t *consistent, char *snapshot, size_t cap)
{
    bool exists;
    char cmd[256];
    if (!slot_exists(f, &exists))
        return false;
    if (exists) {
        snprintf(cmd, sizeof cmd, "DROP_REPLICATION_SLOT \"%s\" WAIT", f->cfg.slot);
        PGresult *d = repl_run(f, cmd);
        if (!d)
            return false;
        PQclear(d);
        vd_log_info("feed dropped its replication slot to start over", "feed=%s slot=%s", f->cfg.name,
                    f->cfg.slot);
    }
    snprintf(cmd, sizeof cmd, "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput EXPORT_SNAPSHOT",
             f->cfg.slot);
    PGresult *r = repl_run(f, cmd);
    if (!r)
        return false;
    bool ok = PQntuples(r) == 1 && PQnfields(r) >= 3 && vd_lsn_parse(PQgetvalue(r, 0, 1), consistent) == 0;
    if (ok)
        snprintf(snapshot, cap, "%s", PQgetvalue(r, 0, 2));
    else
        vd_feed_error(f, "CREATE_REPLICATION_SLOT answered something unexpected");
    PQclear(r);
    return ok;
}

/* Copies the table as of the slot's consistent point; the position is then
 * that point. 0, or -1 (recorded). */
static int backfill(vd_feed *f, vd_collection *c)
{
    uint64_t consistent = 0;
    char snapshot[128], lsn[24];
    if (!make_slot(f, &consistent, snapshot, sizeof snapshot))
        return -1;
    vd_lsn_format(consistent, lsn);
    /* Points already there (an earlier copy cut short, or another source)
     * may have rows no longer in the table: swept at the end. */
    vd_collection_stats cs = {0};
    bool sweep = vd_collection_stats_get(c, &cs) != 0 || cs.n_points > 0 || f->sweep_after_backfill;
    free(cs.shards);
    char set_snapshot[200];
    snprintf(set_snapshot, sizeof set_snapshot, "SET TRANSACTION SNAPSHOT '%s'", snapshot);
    PGresult *r = vd_feed_run(f, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    PQclear(r);
    if (!r || !(r = vd_feed_run(f, set_snapshot, 0, NULL)))
        goto fail;
    PQclear(r);
    vd_log_info("feed backfill started", "feed=%s table=%s source=logical slot=%s consistent_lsn=%s",
                f->cfg.name, f->cfg.table, f->cfg.slot, lsn);
    vd_feed_state next = {.backfill_started = true, .logical = true};
    memcpy(next.feed, f->state.feed, sizeof next.feed);
    memcpy(next.partition, f->state.partition, sizeof next.partition);
    vd_feed_batch none = {0};
    if (!vd_feed_apply(f, c, &none, &next))
        goto fail;
    /* The pages are read over connections of their own, each in the same snapshot. */
    vd_feed_pages *pages = vd_feed_pages_start(f, "", f->cfg.backfill_connections, snapshot);
    bool last = false;
    int rc = pages ? vd_feed_backfill_pages(f, c, pages, &next, UINT_MAX, false, &last) : -1;
    vd_feed_pages_free(pages);
    if (rc)
        goto fail;
    if (atomic_load(&f->stop))
        goto fail;
    uint64_t swept = 0;
    vd_errmsg em = {{0}};
    if (sweep && vd_feed_drop_absent(f, c, &swept, &em)) {
        vd_feed_error(f, "cannot delete the points whose rows are gone: %s", em.text);
        goto fail;
    }
    if (!(r = vd_feed_run(f, "COMMIT", 0, NULL)))
        goto fail;
    PQclear(r);
    next.backfill_done = true;
    next.source_lsn = consistent;
    if (!vd_feed_apply(f, c, &none, &next))
        return -1;
    f->lg.confirmed = consistent;
    vd_log_info("feed backfill done", "feed=%s rows=%" PRIu64 " points_swept=%" PRIu64 " follow_from=%s",
                f->cfg.name, next.backfill_rows, swept, lsn);
    return 0;
fail:
    if (PQstatus(f->conn) == CONNECTION_OK)
        PQclear(vd_feed_run(f, "ROLLBACK", 0, NULL));
    return -1;
}

/* ---- following the stream ----------------------------------------------------------- */

static int start_streaming(vd_feed *f)
{
    char cmd[512], lsn[24];
    vd_lsn_format(f->state.source_lsn, lsn);
    snprintf(cmd, sizeof cmd,
             "START_REPLICATION SLOT \"%s\" LOGICAL %s (proto_version '1', publication_names '\"%s\"')",
             f->cfg.slot, lsn, f->cfg.publication);
    PGresult *r = repl_run(f, cmd);
    if (!r)
        return -1;
    bool ok = PQresultStatus(r) == PGRES_COPY_BOTH;
    PQclear(r);
    if (!ok) {
        vd_feed_error(f, "START_REPLICATION did not start a stream");
        return -1;
    }
    f->lg.streaming = true;
    f->lg.confirmed = f->state.source_lsn;
    f->lg.feedback_at = 0;
    vd_log_info("feed following the slot", "feed=%s slot=%s from=%s", f->cfg.name, f->cfg.slot, lsn);
    return 0;
}

static bool send_feedback(vd_feed *f, bool reply)
{
    uint8_t msg[VD_REPL_STATUS_BYTES];
    vd_repl_status(msg, f->lg.confirmed, vd_repl_now_us(), reply);
    f->lg.feedback_at = vd_now_s();
    if (PQputCopyData(f->lg.repl, (const char *)msg, sizeof msg) != 1 || PQflush(f->lg.repl) < 0) {
        vd_feed_error(f, "postgres replication connection: %s", PQerrorMessage(f->lg.repl));
        return false;
    }
    return true;
}

static void set_applied(vd_feed *f, uint64_t lsn)
{
    pthread_mutex_lock(&f->lock);
    if (lsn > f->st.applied_lsn)
        f->st.applied_lsn = lsn;
    pthread_mutex_unlock(&f->lock);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Reads the rows of the pending ids as they are now and applies them: an
 * upsert per present row, a delete per absent one. */
static bool flush_pending(vd_feed *f, vd_collection *c)
{
    if (!f->lg.n_pending)
        return true;
    qsort(f->lg.pending, f->lg.n_pending, sizeof *f->lg.pending, cmp_str);
    size_t n = 0;
    for (size_t i = 0; i < f->lg.n_pending; i++) { /* unique */
        if (n && strcmp(f->lg.pending[n - 1], f->lg.pending[i]) == 0)
            free(f->lg.pending[i]);
        else
            f->lg.pending[n++] = f->lg.pending[i];
    }
    f->lg.n_pending = n;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(f->lg.pending[i]));
    char *ids = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    char *sql = NULL;
    if (ids && asprintf(&sql,
                        "SELECT %s FROM %s t WHERE t.%s IN "
                        "(SELECT jsonb_array_elements_text($1::jsonb)::%s) AND %s ORDER BY 1",
                        f->select_cols, f->from, f->id_quoted, f->id_type, f->in_partition) < 0)
        sql = NULL;
    const char *params[1] = {ids};
    PGresult *r = sql ? vd_feed_run(f, sql, 1, params) : NULL;
    free(sql);
    free(ids);
    if (!r)
        return false;
    int rows = PQntuples(r);
    const vd_collection_config *cc = vd_collection_config_of(c);
    vd_feed_batch b = {0};
    bool ok = vd_feed_batch_alloc(&b, n, cc->dim);
    char **found = ok ? calloc((size_t)rows + 1, sizeof *found) : NULL;
    ok = ok && found;
    for (int i = 0; ok && i < rows; i++) {
        found[i] = PQgetvalue(r, i, 0);
        vd_feed_add_row_or_delete(f, &b, r, i, 0, cc);
    }
    if (ok)
        qsort(found, (size_t)rows, sizeof *found, cmp_str);
    /* An id whose row is gone (or outside the partition): a delete. */
    for (size_t i = 0, j = 0; ok && i < n; i++) {
        while (j < (size_t)rows && strcmp(found[j], f->lg.pending[i]) < 0)
            j++;
        if (j < (size_t)rows && strcmp(found[j], f->lg.pending[i]) == 0)
            continue;
        if (!vd_feed_add_delete(f, &b, c, f->lg.pending[i]))
            vd_feed_reject_row(f, f->lg.pending[i], "bad id");
    }
    vd_errmsg em = {{0}};
    if (ok && vd_feed_write_batch(f, c, &b, &em)) {
        vd_feed_error(f, "cannot apply a batch: %s", em.text);
        ok = false;
    } else if (!ok) {
        vd_feed_error(f, "out of memory applying %zu rows", n);
    }
    free(found);
    vd_feed_batch_free(&b);
    PQclear(r);
    if (ok)
        clear_pending(f);
    return ok;
}

static bool add_pending(vd_feed *f, const vd_pgo_tuple *row)
{
    vd_pgo_value v;
    if (f->lg.id_col < 0 || vd_pgo_value_at(row, (uint16_t)f->lg.id_col, &v) != 0 || v.kind != 't') {
        vd_feed_error(f, "a change of %s came without its id column \"%s\" (is it the replica identity?)",
                      f->from, f->cfg.id_column);
        return false;
    }
    if (f->lg.n_pending == f->lg.cap_pending) {
        size_t cap = f->lg.cap_pending ? 2 * f->lg.cap_pending : 64;
        char **p = realloc(f->lg.pending, cap * sizeof *p);
        if (!p)
            return false;
        f->lg.pending = p;
        f->lg.cap_pending = cap;
    }
    char *id = strndup(v.data, v.len);
    if (!id)
        return false;
    f->lg.pending[f->lg.n_pending++] = id;
    return true;
}

/* Applies the ids collected so far; when whole transactions are among them,
 * logs the end of the last one as the position, then lets the slot forget
 * it. Consecutive transactions are applied together (their rows are read as
 * they are now, so this is the same as one by one), with one durable
 * position for the group. */
static bool apply_group(vd_feed *f, vd_collection *c)
{
    if (!flush_pending(f, c))
        return false;
    uint64_t end = f->lg.group_end;
    if (!end)
        return true;
    if (f->lg.group_changed) {
        vd_feed_state next = f->state;
        next.source_lsn = end;
        vd_feed_batch none = {0};
        if (!vd_feed_apply(f, c, &none, &next))
            return false;
    }
    f->lg.group_end = 0;
    f->lg.group_changed = false;
    f->lg.confirmed = end;
    vd_feed_confirm_lag(f, (double)(vd_repl_now_us() - f->lg.group_time) / 1e6); /* as fresh as its last commit */
    set_applied(f, end);
    vd_feed_wake_waiters(f, false);
    return send_feedback(f, false);
}

static int on_message(vd_feed *f, vd_collection *c, const uint8_t *data, size_t len)
{
    vd_pgo_msg m;
    if (vd_pgo_parse(data, len, &m) != 0) {
        vd_feed_error(f, "the replication stream sent a message vectord cannot read (tag 0x%02x, %zu bytes)",
                      len ? data[0] : 0, len);
        return -1;
    }
    switch (m.kind) {
    case VD_PGO_BEGIN:
        f->lg.in_txn = true;
        f->lg.txn_changed = false;
        f->lg.txn_time = m.time;
        /* Its commit record starts before the logged position: applied before a restart. */
        f->lg.skip_txn = m.lsn < f->state.source_lsn;
        return 0;
    case VD_PGO_RELATION:
        if (m.relid == f->lg.table_oid && (f->lg.id_col = vd_pgo_column_index(&m, f->cfg.id_column)) < 0) {
            vd_feed_error(f, "the replication stream's %s has no column \"%s\"", f->from, f->cfg.id_column);
            return -1;
        }
        return 0;
    case VD_PGO_INSERT:
    case VD_PGO_UPDATE:
    case VD_PGO_DELETE:
        if (m.relid != f->lg.table_oid || f->lg.skip_txn)
            return 0;
        f->lg.txn_changed = true;
        if (m.kind != VD_PGO_DELETE && !add_pending(f, &m.new_row))
            return -1;
        if (m.old_row.n && !add_pending(f, &m.old_row)) /* a key that changed, or the deleted row */
            return -1;
        if (f->lg.n_pending >= f->cfg.batch_rows && !flush_pending(f, c))
            return -1; /* a large transaction, applied as it comes; its position at its commit */
        return 0;
    case VD_PGO_TRUNCATE:
        for (uint32_t i = 0; i < m.n_relids && !f->lg.skip_txn; i++) {
            if (vd_pgo_truncated(&m, i) != f->lg.table_oid)
                continue;
            f->lg.txn_changed = true;
            uint64_t deleted = 0;
            vd_errmsg em = {{0}};
            if (!flush_pending(f, c))
                return -1;
            if (vd_feed_drop_absent(f, c, &deleted, &em)) {
                vd_feed_error(f, "cannot apply a TRUNCATE of %s: %s", f->from, em.text);
                return -1;
            }
            vd_log_info("feed applied a TRUNCATE", "feed=%s table=%s points_deleted=%" PRIu64,
                        f->cfg.name, f->cfg.table, deleted);
        }
        return 0;
    case VD_PGO_COMMIT:
        f->lg.in_txn = false;
        if (f->lg.skip_txn) {
            f->lg.skip_txn = false;
            return 0;
        }
        f->lg.group_end = m.end_lsn;
        f->lg.group_time = m.time;
        f->lg.group_changed |= f->lg.txn_changed;
        /* applied with the transactions that follow it at once, up to a batch */
        return f->lg.n_pending >= f->cfg.batch_rows && !apply_group(f, c) ? -1 : 0;
    case VD_PGO_SKIP:
        return 0;
    }
    return 0;
}

static int on_copy_data(vd_feed *f, vd_collection *c, const uint8_t *buf, size_t len)
{
    vd_repl_msg m;
    if (vd_repl_parse(buf, len, &m) != 0) {
        vd_feed_error(f, "the replication stream sent a message vectord cannot read (%zu bytes)", len);
        return -1;
    }
    if (m.wal_end > f->lg.server_end)
        f->lg.server_end = m.wal_end;
    if (m.kind == 'w')
        return on_message(f, c, m.data, m.len);
    /* A keepalive: with nothing in flight, every change before its end has
     * been sent and applied. */
    if (!f->lg.in_txn && !f->lg.n_pending && !f->lg.group_end) {
        vd_feed_confirm_lag(f, 0); /* everything the server has decoded is applied */
        if (m.wal_end > f->lg.confirmed) {
            f->lg.confirmed = m.wal_end;
            set_applied(f, m.wal_end);
            vd_feed_wake_waiters(f, false);
        }
    }
    return m.reply_requested && !send_feedback(f, false) ? -1 : 0;
}

/* Lag: bytes of WAL past the applied position, the age of the transaction
 * being applied, and the WAL the slot keeps on the server. */
static void measure(vd_feed *f)
{
    double now = vd_now_s();
    bool busy = f->lg.in_txn || f->lg.n_pending || f->lg.group_end;
    pthread_mutex_lock(&f->lock);
    f->st.lag_rows = f->lg.n_pending;
    f->st.lag_seconds = busy ? (double)(vd_repl_now_us() - f->lg.txn_time) / 1e6 : 0;
    if (f->st.lag_seconds < 0)
        f->st.lag_seconds = 0;
    pthread_mutex_unlock(&f->lock);
    if (now - f->lg.slot_measured_at < SLOT_MEASURE_EVERY_S || busy)
        return;
    f->lg.slot_measured_at = now;
    char applied[24];
    vd_lsn_format(f->lg.confirmed, applied);
    const char *params[2] = {f->cfg.slot, applied};
    PGresult *r = vd_feed_run(f,
                              "SELECT GREATEST(pg_current_wal_lsn() - $2::pg_lsn, 0)::bigint, "
                              "COALESCE((SELECT GREATEST(pg_current_wal_lsn() - restart_lsn, 0) "
                              "FROM pg_replication_slots WHERE slot_name = $1), 0)::bigint",
                              2, params);
    if (!r)
        return;
    pthread_mutex_lock(&f->lock);
    f->st.lag_bytes = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    f->st.slot_retained_bytes = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    pthread_mutex_unlock(&f->lock);
    PQclear(r);
}

static bool waiters_behind(vd_feed *f)
{
    pthread_mutex_lock(&f->lock);
    bool behind = false;
    for (vd_feed_waiter *w = f->waiters; w && !behind; w = w->next)
        behind = w->lsn > f->st.applied_lsn;
    pthread_mutex_unlock(&f->lock);
    return behind;
}

/* Reads and applies what the stream holds, for about ROUND_S. */
static int stream(vd_feed *f, vd_collection *c)
{
    double until = vd_now_s() + ROUND_S;
    for (;;) {
        char *buf = NULL;
        int n = PQgetCopyData(f->lg.repl, &buf, 1);
        if (n > 0) {
            int rc = on_copy_data(f, c, (const uint8_t *)buf, (size_t)n);
            PQfreemem(buf);
            if (rc)
                return -1;
            if (vd_now_s() < until)
                continue;
            if (f->lg.group_end && !apply_group(f, c))
                return -1;
            break;
        }
        /* Nothing more at hand: what is collected is applied now. */
        if (f->lg.group_end && !apply_group(f, c))
            return -1;
        if (n < 0) {
            PGresult *r = PQgetResult(f->lg.repl);
            vd_feed_error(f, "the replication stream ended: %s",
                          r ? PQresultErrorMessage(r) : PQerrorMessage(f->lg.repl));
            PQclear(r);
            return -1;
        }
        double now = vd_now_s();
        bool due = now - f->lg.feedback_at >= FEEDBACK_EVERY_S ||
                   (waiters_behind(f) && now - f->lg.feedback_at >= WAITER_KEEPALIVE_S);
        if (due && !send_feedback(f, true))
            return -1;
        if (now >= until || atomic_load(&f->stop))
            break;
        if (vd_feed_wait_on(f, f->lg.repl, POLLIN, 20) || !PQconsumeInput(f->lg.repl)) {
            vd_feed_error(f, "postgres replication connection: %s", PQerrorMessage(f->lg.repl));
            return -1;
        }
    }
    measure(f);
    return 0;
}

int vd_feed_logical_round(vd_feed *f, vd_collection *c)
{
    if (!f->lg.repl && !repl_connect(f))
        return -1;
    if (!f->lg.streaming) {
        bool exists = true;
        if (f->state.logical && f->state.backfill_done && !slot_exists(f, &exists))
            return -1;
        if (f->state.logical && f->state.backfill_done && !exists) {
            /* Its changes since are gone with it: the table is copied again. */
            vd_log_warn("the feed's replication slot is gone; copying the table again",
                        "feed=%s slot=%s", f->cfg.name, f->cfg.slot);
            f->state.backfill_done = false;
        }
        if ((!f->state.logical || !f->state.backfill_done) && backfill(f, c))
            return -1;
        if (start_streaming(f))
            return -1;
        f->caught_up = true;
    }
    return stream(f, c);
}

/*
 * feed_health.c — what the feed tells operators (feed_internal.h): whether
 * its role may read and write what it must (checked at each connect, each
 * missing privilege named with the GRANT that fixes it), the lag in
 * committed changes and seconds, the open transaction that holds committed
 * changes back, and whether its position reaches vectord_feed_position
 * (without it vectord_outbox_prune() keeps every row).
 */
#include "feed/feed_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"

/* How often the lag is measured while rounds follow each other. */
#define LAG_EVERY_S 0.25

void vd_feed_clear_error(vd_feed *f)
{
    pthread_mutex_lock(&f->lock);
    f->st.last_error[0] = 0;
    pthread_mutex_unlock(&f->lock);
}

/* "SELECT, INSERT" of the privileges (names[i] where !have[i]) into out. */
static void missing_list(const char *const *names, const bool *have, size_t n, char *out, size_t cap)
{
    out[0] = 0;
    for (size_t i = 0; i < n; i++)
        if (!have[i])
            snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? ", " : "", names[i]);
}

static void set_position_error(vd_feed *f, const char *msg)
{
    pthread_mutex_lock(&f->lock);
    bool was_ok = f->st.position_recorded || !f->st.position_error[0];
    snprintf(f->st.position_error, sizeof f->st.position_error, "%s", msg);
    f->st.position_recorded = false;
    if (!f->st.position_failing_since)
        f->st.position_failing_since = vd_now_s();
    pthread_mutex_unlock(&f->lock);
    if (was_ok)
        vd_log_error("the feed cannot record its position; the outbox will not be pruned",
                     "feed=%s error=\"%s\"", f->cfg.name, msg);
}

/* The position table and this role's privileges on it: "" when all is
 * well, else what to fix. */
static void position_access(vd_feed *f, char *out, size_t cap)
{
    PGresult *r = vd_feed_run(
        f,
        "SELECT current_user::text, to_regclass('vectord_feed_position') IS NOT NULL, "
        "COALESCE(has_table_privilege(to_regclass('vectord_feed_position'), 'SELECT'), false), "
        "COALESCE(has_table_privilege(to_regclass('vectord_feed_position'), 'INSERT'), false), "
        "COALESCE(has_table_privilege(to_regclass('vectord_feed_position'), 'UPDATE'), false)",
        0, NULL);
    out[0] = 0;
    if (!r)
        return;
    static const char *const names[] = {"SELECT", "INSERT", "UPDATE"};
    bool have[3] = {vd_feed_true(r, 2), vd_feed_true(r, 3), vd_feed_true(r, 4)};
    char list[64];
    missing_list(names, have, 3, list, sizeof list);
    if (!vd_feed_true(r, 1))
        snprintf(out, cap, "table vectord_feed_position does not exist: apply deploy/sql/*.sql");
    else if (list[0])
        snprintf(out, cap,
                 "role %s lacks %s on vectord_feed_position, so the position cannot be recorded and "
                 "vectord_outbox_prune() keeps every outbox row (GRANT %s ON vectord_feed_position TO %s)",
                 PQgetvalue(r, 0, 0), list, list, PQgetvalue(r, 0, 0));
    PQclear(r);
}

void vd_feed_set_warning(vd_feed *f, const char *warning)
{
    if (warning[0])
        vd_log_warn("feed set-up is incomplete", "feed=%s warning=\"%s\"", f->cfg.name, warning);
    pthread_mutex_lock(&f->lock);
    snprintf(f->st.warning, sizeof f->st.warning, "%s", warning);
    pthread_mutex_unlock(&f->lock);
}

bool vd_feed_check_access(vd_feed *f)
{
    const char *params[1] = {f->from};
    PGresult *r = vd_feed_run(
        f,
        "SELECT current_user::text, has_table_privilege($1::regclass, 'SELECT'), "
        "to_regclass('vectord_outbox') IS NOT NULL, "
        "COALESCE(has_table_privilege(to_regclass('vectord_outbox'), 'SELECT'), false), "
        /* the row trigger (INSERT, UPDATE, DELETE: tgtype bits 1, 4, 8, 16) and the TRUNCATE one (32) */
        "EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = $1::regclass AND NOT g.tgisinternal "
        "        AND g.tgfoid = to_regproc('vectord_outbox_capture') AND g.tgtype & 29 = 29), "
        "EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = $1::regclass AND NOT g.tgisinternal "
        "        AND g.tgfoid = to_regproc('vectord_outbox_capture') AND g.tgtype & 32 = 32)",
        1, params);
    if (!r)
        return false;
    const char *role = PQgetvalue(r, 0, 0);
    bool ok = false;
    if (!vd_feed_true(r, 1))
        vd_feed_error(f, "role %s lacks SELECT on %s (GRANT SELECT ON %s TO %s)", role, f->from, f->from,
                      role);
    else if (!vd_feed_true(r, 2))
        vd_feed_error(f, "table vectord_outbox does not exist: apply deploy/sql/*.sql");
    else if (!vd_feed_true(r, 3))
        vd_feed_error(f, "role %s lacks SELECT on vectord_outbox (GRANT SELECT ON vectord_outbox TO %s)",
                      role, role);
    else
        ok = true;
    char warning[256] = "";
    if (ok && !vd_feed_true(r, 4))
        snprintf(warning, sizeof warning,
                 "%s has no vectord_outbox_capture row trigger: its changes do not reach vectord "
                 "(apply deploy/sql/002_memory_triggers.sql, adapted)", f->from);
    else if (ok && !vd_feed_true(r, 5))
        snprintf(warning, sizeof warning,
                 "%s has no TRUNCATE trigger: a TRUNCATE would not reach vectord "
                 "(apply deploy/sql/002_memory_triggers.sql, adapted)", f->from);
    PQclear(r);
    vd_feed_set_warning(f, warning);
    if (ok) {
        char why[320];
        position_access(f, why, sizeof why);
        if (why[0])
            set_position_error(f, why);
    }
    return ok;
}

void vd_feed_publish_position(vd_feed *f)
{
    char xid[32], before[sizeof f->st.last_error];
    snprintf(xid, sizeof xid, "%" PRIu64, f->state.xid);
    const char *params[2] = {f->cfg.name, xid};
    pthread_mutex_lock(&f->lock);
    memcpy(before, f->st.last_error, sizeof before);
    pthread_mutex_unlock(&f->lock);
    PGresult *r = vd_feed_run(f,
                      "INSERT INTO vectord_feed_position (feed, consumed_xid, updated_at) "
                      "VALUES ($1, $2::xid8, now()) ON CONFLICT (feed) DO UPDATE "
                      "SET consumed_xid = excluded.consumed_xid, updated_at = now()",
                      2, params);
    if (r) {
        PQclear(r);
        pthread_mutex_lock(&f->lock);
        bool was_failing = !f->st.position_recorded;
        f->st.position_recorded = true;
        f->st.position_failing_since = 0;
        f->st.position_error[0] = 0;
        pthread_mutex_unlock(&f->lock);
        if (was_failing)
            vd_log_info("the feed records its position again", "feed=%s", f->cfg.name);
        return;
    }
    if (PQstatus(f->conn) != CONNECTION_OK)
        return; /* a lost connection: last_error says so, the next round reconnects */
    /* An SQL error: kept as the position's, not as the feed's last error. */
    char why[320], failed[sizeof f->st.last_error];
    pthread_mutex_lock(&f->lock);
    memcpy(failed, f->st.last_error, sizeof failed);
    memcpy(f->st.last_error, before, sizeof before);
    f->st.position_write_errors++;
    pthread_mutex_unlock(&f->lock);
    position_access(f, why, sizeof why);
    if (!why[0])
        snprintf(why, sizeof why, "cannot write vectord_feed_position: %s", failed);
    set_position_error(f, why);
}

/* The open transaction holding the feed back: the oldest one with an xid. */
static void find_blocker(vd_feed *f)
{
    PGresult *r = vd_feed_run(
        f,
        "SELECT pid, COALESCE(state, ''), "
        "COALESCE(extract(epoch FROM clock_timestamp() - xact_start), -1)::float8, age(backend_xid) "
        "FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() "
        "UNION ALL SELECT 0, 'prepared transaction ' || gid, "
        "extract(epoch FROM clock_timestamp() - prepared)::float8, age(transaction) FROM pg_prepared_xacts "
        "ORDER BY 4 DESC LIMIT 1",
        0, NULL);
    pthread_mutex_lock(&f->lock);
    f->st.blocked = true;
    f->st.blocker_pid = 0;
    f->st.blocker_state[0] = 0;
    f->st.blocker_seconds = -1;
    f->st.blocker_xid_age = 0;
    if (r && PQntuples(r) == 1) {
        f->st.blocker_pid = atoi(PQgetvalue(r, 0, 0));
        snprintf(f->st.blocker_state, sizeof f->st.blocker_state, "%s", PQgetvalue(r, 0, 1));
        f->st.blocker_seconds = strtod(PQgetvalue(r, 0, 2), NULL);
        f->st.blocker_xid_age = strtoull(PQgetvalue(r, 0, 3), NULL, 10);
    }
    pthread_mutex_unlock(&f->lock);
    PQclear(r);
}

void vd_feed_measure_lag(vd_feed *f)
{
    char xid[32], seq[32];
    snprintf(xid, sizeof xid, "%" PRIu64, f->state.xid);
    snprintf(seq, sizeof seq, "%" PRIu64, f->state.seq);
    const char *params[3] = {xid, seq, f->cfg.table};
    /* Column 2: the oldest waiting change belongs to a transaction not below
     * the xmin, i.e. an older transaction is still open. */
    PGresult *r = vd_feed_run(
        f,
        "WITH w AS (SELECT xid, created_at FROM vectord_outbox "
        "           WHERE source = $3 AND (xid, seq) > ($1::xid8, $2::bigint)) "
        "SELECT (SELECT count(*) FROM w), "
        "COALESCE((SELECT extract(epoch FROM clock_timestamp() - min(created_at)) FROM w), 0), "
        "COALESCE((SELECT w.xid FROM w ORDER BY w.xid LIMIT 1) >= pg_snapshot_xmin(pg_current_snapshot()), false)",
        3, params);
    f->lag_measured_at = vd_now_s();
    if (!r)
        return;
    bool blocked = f->caught_up && vd_feed_true(r, 2);
    vd_feed_confirm_lag(f, strtod(PQgetvalue(r, 0, 1), NULL));
    pthread_mutex_lock(&f->lock);
    f->st.lag_rows = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    f->st.lag_seconds = strtod(PQgetvalue(r, 0, 1), NULL);
    bool was_blocked = f->st.blocked;
    if (!blocked)
        f->st.blocked = false;
    pthread_mutex_unlock(&f->lock);
    PQclear(r);
    if (blocked) {
        find_blocker(f);
        if (!was_blocked) {
            pthread_mutex_lock(&f->lock);
            vd_feed_status st = f->st;
            pthread_mutex_unlock(&f->lock);
            vd_log_warn("an open transaction holds the feed back", "feed=%s pid=%d state=\"%s\" "
                        "xact_seconds=%.1f waiting_rows=%" PRIu64, f->cfg.name, st.blocker_pid,
                        st.blocker_state, st.blocker_seconds, st.lag_rows);
        }
    }
}

void vd_feed_confirm_lag(vd_feed *f, double lag_seconds)
{
    pthread_mutex_lock(&f->lock);
    f->st.confirmed_at = vd_now_s();
    f->st.confirmed_lag = lag_seconds > 0 ? lag_seconds : 0;
    pthread_mutex_unlock(&f->lock);
}

bool vd_feed_lag_due(const vd_feed *f) { return vd_now_s() - f->lag_measured_at >= LAG_EVERY_S; }

/*
 * feed_conn.c — the feed's connection to PostgreSQL, through libpq's
 * asynchronous API: connecting, sending a statement and collecting its
 * result around poll() on the connection's socket, at most 100 ms at a time,
 * so that the feed thread notices a stop or a dead server quickly and keeps
 * serving read-your-writes timeouts while it waits. Also the feed's last
 * error. Feed thread only, but for vd_feed_error's status update (lock).
 */
#include "feed/feed_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"

void vd_feed_error(vd_feed *f, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = ' ';
    pthread_mutex_lock(&f->lock);
    snprintf(f->st.last_error, sizeof f->st.last_error, "%s", msg);
    pthread_mutex_unlock(&f->lock);
    for (char *p = msg; *p; p++) /* the log's field is quoted */
        if (*p == '"')
            *p = '\'';
    vd_log_warn("feed error", "feed=%s error=\"%s\"", f->cfg.name, msg);
}

/* Sleeps up to ms, waking early when the feed stops. */
void vd_feed_nap(vd_feed *f, int ms)
{
    for (int t = 0; t < ms && !atomic_load(&f->stop); t += 50) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        vd_feed_wake_waiters(f, false); /* read-your-writes timeouts run while disconnected too */
    }
}

int vd_feed_wait_on(vd_feed *f, PGconn *c, short events, int ms)
{
    struct pollfd p = {.fd = PQsocket(c), .events = events};
    if (p.fd < 0)
        return -1;
    int rc = poll(&p, 1, ms) < 0 && errno != EINTR ? -1 : 0;
    vd_feed_wake_waiters(f, false); /* timeouts run during long queries and connects too */
    return rc;
}

/* Waits until the connection's socket is ready for `events` (or 100 ms). */
int vd_feed_wait_socket(vd_feed *f, short events, int ms) { return vd_feed_wait_on(f, f->conn, events, ms); }

bool vd_feed_connect_to(vd_feed *f, PGconn **out, const char *const *keys, const char *const *vals,
                        const char *what)
{
    PGconn *c = PQconnectStartParams(keys, vals, 1);
    if (!c || PQstatus(c) == CONNECTION_BAD)
        goto fail;
    double deadline = vd_now_s() + 15;
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    while (ps != PGRES_POLLING_OK) {
        if (ps == PGRES_POLLING_FAILED || atomic_load(&f->stop) || vd_now_s() > deadline)
            goto fail;
        if (vd_feed_wait_on(f, c, ps == PGRES_POLLING_READING ? POLLIN : POLLOUT, 100))
            goto fail;
        ps = PQconnectPoll(c);
    }
    if (PQsetnonblocking(c, 1) != 0)
        goto fail;
    *out = c;
    return true;
fail:
    vd_feed_error(f, "cannot connect to postgres%s: %s", what, c ? PQerrorMessage(c) : "out of memory");
    PQfinish(c);
    *out = NULL;
    return false;
}

bool vd_feed_connect(vd_feed *f)
{
    /* Named in pg_stat_activity unless the DSN names it itself. */
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {f->cfg.dsn, "vectord feed", NULL};
    return vd_feed_connect_to(f, &f->conn, keys, vals, "");
}

bool vd_feed_send_on(vd_feed *f, PGconn *c, const char *sql, int n, const char *const *params)
{
    /* n < 0: the simple query protocol (replication commands need it) */
    if (!(n < 0 ? PQsendQuery(c, sql) : PQsendQueryParams(c, sql, n, NULL, params, NULL, NULL, 0)))
        goto conn_error;
    int flushed;
    while ((flushed = PQflush(c)) == 1)
        if (vd_feed_wait_on(f, c, POLLOUT | POLLIN, 100) || atomic_load(&f->stop))
            goto conn_error;
    if (flushed < 0)
        goto conn_error;
    return true;
conn_error:
    vd_feed_error(f, "postgres connection: %s", PQerrorMessage(c));
    return false;
}

/* Sends a statement without waiting for its result. */
bool vd_feed_send(vd_feed *f, const char *sql, int n, const char *const *params)
{
    return vd_feed_send_on(f, f->conn, sql, n, params);
}

PGresult *vd_feed_collect_on(vd_feed *f, PGconn *c)
{
    PGresult *last = NULL, *r;
    for (;;) {
        while (PQisBusy(c)) {
            if (atomic_load(&f->stop) || vd_feed_wait_on(f, c, POLLIN, 100) || !PQconsumeInput(c)) {
                PQclear(last);
                goto conn_error;
            }
        }
        if (!(r = PQgetResult(c)))
            break;
        ExecStatusType s = PQresultStatus(r);
        PQclear(last);
        last = r;
        if (s == PGRES_COPY_BOTH || s == PGRES_COPY_OUT)
            return last; /* the stream starts: no more results until it ends */
    }
    ExecStatusType s = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        vd_feed_error(f, "query failed: %s", last ? PQresultErrorMessage(last) : PQerrorMessage(c));
        PQclear(last);
        return NULL;
    }
    return last;
conn_error:
    vd_feed_error(f, "postgres connection: %s", PQerrorMessage(c));
    return NULL;
}

/* Waits for the result of the statement sent last. */
PGresult *vd_feed_collect(vd_feed *f) { return vd_feed_collect_on(f, f->conn); }

PGresult *vd_feed_run_on(vd_feed *f, PGconn *c, const char *sql, int n, const char *const *params)
{
    return vd_feed_send_on(f, c, sql, n, params) ? vd_feed_collect_on(f, c) : NULL;
}

PGresult *vd_feed_run(vd_feed *f, const char *sql, int n, const char *const *params)
{
    return vd_feed_run_on(f, f->conn, sql, n, params);
}

bool vd_feed_send_built(vd_feed *f, PGconn *c, vd_strbuf *sql, int n, const char *const *params)
{
    bool ok = !sql->failed;
    if (ok)
        ok = vd_feed_send_on(f, c, sql->data, n, params);
    else
        vd_feed_error(f, "out of memory for a query of the source table");
    vd_strbuf_free(sql);
    return ok;
}

char *vd_feed_quote_ident(vd_feed *f, const char *name)
{
    char *q = PQescapeIdentifier(f->conn, name, strlen(name));
    char *copy = q ? strdup(q) : NULL;
    PQfreemem(q);
    return copy;
}

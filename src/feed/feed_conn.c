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

/* Waits until the connection's socket is ready for `events` (or 100 ms). */
int vd_feed_wait_socket(vd_feed *f, short events, int ms)
{
    struct pollfd p = {.fd = PQsocket(f->conn), .events = events};
    if (p.fd < 0)
        return -1;
    int rc = poll(&p, 1, ms) < 0 && errno != EINTR ? -1 : 0;
    vd_feed_wake_waiters(f, false); /* timeouts run during long queries and connects too */
    return rc;
}

bool vd_feed_connect(vd_feed *f)
{
    f->conn = PQconnectStart(f->cfg.dsn);
    if (!f->conn || PQstatus(f->conn) == CONNECTION_BAD)
        goto fail;
    double deadline = vd_now_s() + 15;
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    while (ps != PGRES_POLLING_OK) {
        if (ps == PGRES_POLLING_FAILED || atomic_load(&f->stop) || vd_now_s() > deadline)
            goto fail;
        if (vd_feed_wait_socket(f, ps == PGRES_POLLING_READING ? POLLIN : POLLOUT, 100))
            goto fail;
        ps = PQconnectPoll(f->conn);
    }
    if (PQsetnonblocking(f->conn, 1) != 0)
        goto fail;
    return true;
fail:
    vd_feed_error(f, "cannot connect to postgres: %s",
              f->conn ? PQerrorMessage(f->conn) : "out of memory");
    PQfinish(f->conn);
    f->conn = NULL;
    return false;
}

/* Sends a statement without waiting for its result. */
bool vd_feed_send(vd_feed *f, const char *sql, int n, const char *const *params)
{
    if (!PQsendQueryParams(f->conn, sql, n, NULL, params, NULL, NULL, 0))
        goto conn_error;
    int flushed;
    while ((flushed = PQflush(f->conn)) == 1)
        if (vd_feed_wait_socket(f, POLLOUT | POLLIN, 100) || atomic_load(&f->stop))
            goto conn_error;
    if (flushed < 0)
        goto conn_error;
    return true;
conn_error:
    vd_feed_error(f, "postgres connection: %s", PQerrorMessage(f->conn));
    return false;
}

/* Waits for the result of the statement sent last. */
PGresult *vd_feed_collect(vd_feed *f)
{
    PGresult *last = NULL, *r;
    for (;;) {
        while (PQisBusy(f->conn)) {
            if (atomic_load(&f->stop) || vd_feed_wait_socket(f, POLLIN, 100) || !PQconsumeInput(f->conn)) {
                PQclear(last);
                goto conn_error;
            }
        }
        if (!(r = PQgetResult(f->conn)))
            break;
        PQclear(last);
        last = r;
    }
    ExecStatusType s = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        vd_feed_error(f, "query failed: %s", last ? PQresultErrorMessage(last) : PQerrorMessage(f->conn));
        PQclear(last);
        return NULL;
    }
    return last;
conn_error:
    vd_feed_error(f, "postgres connection: %s", PQerrorMessage(f->conn));
    return NULL;
}

PGresult *vd_feed_run(vd_feed *f, const char *sql, int n, const char *const *params)
{
    return vd_feed_send(f, sql, n, params) ? vd_feed_collect(f) : NULL;
}

char *vd_feed_quote_ident(vd_feed *f, const char *name)
{
    char *q = PQescapeIdentifier(f->conn, name, strlen(name));
    char *copy = q ? strdup(q) : NULL;
    PQfreemem(q);
    return copy;
}

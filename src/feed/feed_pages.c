/*
 * feed_pages.c — the backfill's pages, read ahead over connections of their
 * own and handed out in key order (feed_internal.h, vd_feed_pages).
 *
 * Why several connections: a backend sends one page at a time, and
 * detoasting is its work. A page of 2,000 pglz-compressed 1536-d JSON rows
 * costs it about 80 ms of decompression, so one connection caps a backfill
 * near 11,000 rows/s however fast vectord takes the rows.
 *
 * How: the page boundaries come first, from a keys-only query over the id's
 * index (every batch_rows-th key of the next BOUNDS_PER_QUERY pages). The
 * pages between them are disjoint key ranges, each read by whichever
 * connection is free, so several backends work at once. The consumer takes
 * them in key order, at most `ahead` pages past the last it took (a page of
 * 1536-d JSON text is 40-50 MB).
 *
 * A bounded page (after, upto] is read whole, without a LIMIT: its rows
 * were counted a moment before, and the few written into its range since
 * are read too (and are the follow's as well). After the last boundary comes
 * the final page, open-ended. Each page is its own statement (no long
 * snapshot), unless a snapshot is given (the logical source's, exported by
 * its slot): then every connection reads in it, and the pages are one
 * consistent copy.
 */
#include "feed/feed_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/strbuf.h"

/* Boundaries one keys-only query reads. */
#define BOUNDS_PER_QUERY 8u

typedef struct page_slot {
    PGresult *r;
    char upto[VD_FEED_KEY_MAX + 1]; /* the key the page ends at (the final page: its last row's) */
    bool last;                      /* the final page */
    bool ready;
} page_slot;

/* One connection and the thread that reads pages on it. */
typedef struct page_reader {
    vd_feed_pages *p;
    PGconn *conn;
    pthread_t thread;
    bool started;
} page_reader;

struct vd_feed_pages {
    vd_feed *f;
    char snapshot[128]; /* "" = each page its own snapshot */
    unsigned ahead;     /* pages read (or being read) past the last one taken, at most */
    unsigned n_readers;
    page_reader readers[VD_FEED_PAGE_CONNS_MAX];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* Under lock: */
    char after[VD_FEED_KEY_MAX + 1]; /* where the next page to hand to a reader starts */
    char bounds[BOUNDS_PER_QUERY][VD_FEED_KEY_MAX + 1];
    unsigned n_bounds, next_bound;
    bool bounds_busy;     /* a reader is querying the next boundaries */
    bool final_next;      /* the listed boundaries are the last: the final page follows them */
    bool final_assigned;  /* the final page is being read, or read */
    uint64_t assigned;    /* pages handed to readers */
    uint64_t taken;       /* pages handed to the consumer */
    char taken_upto[VD_FEED_KEY_MAX + 1]; /* where the consumer's next page starts */
    page_slot slots[VD_FEED_PAGE_CONNS_MAX + 1]; /* page k in slots[k % ahead] */
    unsigned live;        /* readers still running */
    bool failed, closing;
};

/* A key into a VD_FEED_KEY_MAX + 1 array (cut there, as the logged position is). */
static void set_key(char *dst, const char *src)
{
    size_t n = strnlen(src, VD_FEED_KEY_MAX);
    memmove(dst, src, n);
    dst[n] = 0;
}

/* Every batch_rows-th id after `after`, for the next BOUNDS_PER_QUERY pages:
 * an index scan of the ids alone (no row is detoasted). */
static bool send_bounds(vd_feed *f, PGconn *c, const char *after)
{
    char span[16], every[16];
    snprintf(span, sizeof span, "%u", BOUNDS_PER_QUERY * f->cfg.batch_rows);
    snprintf(every, sizeof every, "%u", f->cfg.batch_rows);
    const char *params[3] = {span, every, after};
    vd_strbuf b;
    vd_strbuf_init(&b, 0);
    vd_strbuf_printf(&b,
                     "SELECT k FROM (SELECT t.%s::text AS k, row_number() OVER (ORDER BY t.%s) AS n "
                     "FROM %s t WHERE %s",
                     f->id_quoted, f->id_quoted, f->from, f->in_partition);
    if (*after)
        vd_strbuf_printf(&b, " AND t.%s > $3", f->id_quoted);
    vd_strbuf_printf(&b, " ORDER BY t.%s LIMIT $1::int) s WHERE n %% $2::int = 0 ORDER BY n",
                     f->id_quoted);
    return vd_feed_send_built(f, c, &b, *after ? 3 : 2, params);
}

/* Connects rd (and enters the snapshot, if any). */
static bool connect_reader(vd_feed_pages *p, page_reader *rd)
{
    vd_feed *f = p->f;
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {f->cfg.dsn, "vectord backfill", NULL};
    if (!vd_feed_connect_to(f, &rd->conn, keys, vals, " (a backfill reader)"))
        return false;
    if (!*p->snapshot)
        return true;
    char set[200];
    snprintf(set, sizeof set, "SET TRANSACTION SNAPSHOT '%s'", p->snapshot);
    PGresult *begin = vd_feed_run_on(f, rd->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    PGresult *in = begin ? vd_feed_run_on(f, rd->conn, set, 0, NULL) : NULL;
    PQclear(begin);
    PQclear(in);
    return in != NULL;
}

static void wait_on(vd_feed_pages *p) { pthread_cond_wait(&p->cond, &p->lock); }

/* Reads the next boundaries on rd's connection (called and returning with
 * the lock held, which it drops meanwhile). */
static bool read_bounds(vd_feed_pages *p, page_reader *rd)
{
    char after[VD_FEED_KEY_MAX + 1];
    set_key(after, p->after);
    p->bounds_busy = true;
    pthread_mutex_unlock(&p->lock);
    PGresult *r = send_bounds(p->f, rd->conn, after) ? vd_feed_collect_on(p->f, rd->conn) : NULL;
    pthread_mutex_lock(&p->lock);
    p->bounds_busy = false;
    pthread_cond_broadcast(&p->cond);
    if (!r)
        return false;
    int n = PQntuples(r);
    p->n_bounds = (unsigned)(n < (int)BOUNDS_PER_QUERY ? n : (int)BOUNDS_PER_QUERY);
    p->next_bound = 0;
    for (unsigned i = 0; i < p->n_bounds; i++)
        set_key(p->bounds[i], PQgetvalue(r, (int)i, 0));
    /* Fewer than asked for: fewer than batch_rows rows lie past the last. */
    p->final_next = p->n_bounds < BOUNDS_PER_QUERY;
    PQclear(r);
    return true;
}

static void *reader_main(void *arg)
{
    page_reader *rd = arg;
    vd_feed_pages *p = rd->p;
    vd_feed *f = p->f;
    bool connected = connect_reader(p, rd), ok = connected;
    pthread_mutex_lock(&p->lock);
    while (ok && !p->failed && !p->closing && !p->final_assigned) {
        if (p->assigned >= p->taken + p->ahead) {
            wait_on(p);
            continue;
        }
        if (p->next_bound == p->n_bounds && !p->final_next) {
            if (p->bounds_busy)
                wait_on(p);
            else
                ok = read_bounds(p, rd);
            continue;
        }
        page_slot *s = &p->slots[p->assigned++ % p->ahead];
        char after[VD_FEED_KEY_MAX + 1];
        set_key(after, p->after);
        bool final = p->next_bound == p->n_bounds;
        if (final) {
            p->final_assigned = true;
        } else {
            set_key(s->upto, p->bounds[p->next_bound++]);
            set_key(p->after, s->upto);
        }
        pthread_mutex_unlock(&p->lock);
        PGresult *r = vd_feed_send_range(f, rd->conn, f->select_cols, after, final ? NULL : s->upto, 0)
                          ? vd_feed_collect_on(f, rd->conn)
                          : NULL;
        pthread_mutex_lock(&p->lock);
        ok = r != NULL;
        if (ok && final) {
            int n = PQntuples(r);
            set_key(s->upto, n > 0 ? PQgetvalue(r, n - 1, 0) : after);
        }
        s->r = r;
        s->last = final;
        s->ready = ok;
        pthread_cond_broadcast(&p->cond);
    }
    /* A reader that cannot connect leaves the pages to the others; a query
     * that fails fails them all (the feed starts again from its position). */
    if (!ok && (connected || (p->live == 1 && !p->final_assigned)))
        p->failed = true;
    p->live--;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

vd_feed_pages *vd_feed_pages_start(vd_feed *f, const char *after, unsigned connections,
                                   const char *snapshot)
{
    vd_feed_pages *p = calloc(1, sizeof *p);
    if (!p) {
        vd_feed_error(f, "out of memory for the backfill's readers");
        return NULL;
    }
    if (connections < 1)
        connections = 1;
    if (connections > VD_FEED_PAGE_CONNS_MAX)
        connections = VD_FEED_PAGE_CONNS_MAX;
    p->f = f;
    snprintf(p->snapshot, sizeof p->snapshot, "%s", snapshot ? snapshot : "");
    p->ahead = connections + 1;
    set_key(p->after, after);
    set_key(p->taken_upto, after);
    pthread_mutex_init(&p->lock, NULL);
    vd_cond_init_monotonic(&p->cond);
    p->n_readers = connections;
    p->live = connections;
    unsigned started = 0;
    for (unsigned i = 0; i < connections; i++) {
        page_reader *rd = &p->readers[i];
        rd->p = p;
        rd->started = pthread_create(&rd->thread, NULL, reader_main, rd) == 0;
        started += rd->started;
        if (!rd->started) {
            pthread_mutex_lock(&p->lock);
            p->live--;
            pthread_mutex_unlock(&p->lock);
        }
    }
    if (!started) { /* nothing would read */
        vd_feed_error(f, "cannot start the backfill's readers: %s", strerror(EAGAIN));
        vd_feed_pages_free(p);
        return NULL;
    }
    return p;
}

const char *vd_feed_pages_after(const vd_feed_pages *p) { return p->taken_upto; }

PGresult *vd_feed_pages_next(vd_feed_pages *p, char upto[VD_FEED_KEY_MAX + 1], bool *last)
{
    vd_feed *f = p->f;
    pthread_mutex_lock(&p->lock);
    page_slot *s = &p->slots[p->taken % p->ahead];
    while (!s->ready && !p->failed && p->live > 0 && !atomic_load(&f->stop)) {
        struct timespec until = vd_deadline_after_ms(100);
        if (pthread_cond_timedwait(&p->cond, &p->lock, &until) == ETIMEDOUT) {
            pthread_mutex_unlock(&p->lock);
            vd_feed_wake_waiters(f, false); /* read-your-writes timeouts run meanwhile */
            pthread_mutex_lock(&p->lock);
        }
    }
    PGresult *r = NULL;
    if (s->ready) {
        r = s->r;
        *last = s->last;
        set_key(upto, s->upto);
        set_key(p->taken_upto, s->upto);
        *s = (page_slot){0};
        p->taken++;
        pthread_cond_broadcast(&p->cond);
    }
    bool silent = p->failed || atomic_load(&f->stop); /* recorded by the reader, or stopping */
    pthread_mutex_unlock(&p->lock);
    if (!r && !silent)
        vd_feed_error(f, "the backfill's readers stopped");
    return r;
}

void vd_feed_pages_free(vd_feed_pages *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->closing = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->n_readers; i++) {
        page_reader *rd = &p->readers[i];
        if (rd->started)
            pthread_join(rd->thread, NULL); /* a page being read is read to its end */
        PQfinish(rd->conn);
    }
    for (unsigned i = 0; i < p->ahead; i++)
        PQclear(p->slots[i].r);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

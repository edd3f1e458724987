/*
 * feed_internal.h — what the files of the feed share; not a public interface.
 *   pg_feed.c       the feed thread: set-up, backfill, follow, lifecycle
 *   feed_logical.c  the logical-replication source (called by pg_feed.c)
 *   feed_health.c   what operators see: privileges and triggers, lag, the
 *                   transaction that holds the feed back, the position record
 *   reconcile.c     comparing vectord with the table, and repairing
 *   feed_backfill.c backfill pages parsed and applied, a page at a time
 *   feed_pages.c    backfill pages read ahead over several connections
 *   feed_rows.c     source rows into batches, batches through the journal
 *   feed_conn.c     the connection (libpq, asynchronously) and the last error
 *   feed_waiters.c  read-your-writes waiters
 * Calls go down that list only (pg_feed.c → feed_logical.c → feed_health.c →
 * reconcile.c → feed_backfill.c → feed_pages.c → feed_rows.c → feed_conn.c →
 * feed_waiters.c), never back.
 */
#ifndef VD_FEED_INTERNAL_H
#define VD_FEED_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "feed/pg_feed.h"
#include "util/pool.h"
#include "util/strbuf.h"

/* The logical source's stream state (feed_logical.c). */
typedef struct vd_feed_logical {
    PGconn *repl;          /* the replication connection, streaming once started */
    bool streaming;
    uint32_t table_oid;    /* the source table's relation id */
    int id_col;            /* the id column's index in the Relation message, -1 = not seen */
    bool in_txn, skip_txn; /* inside a transaction; one applied before a restart */
    bool txn_changed;      /* the transaction touched the table */
    uint64_t group_end;    /* end of the last whole transaction not applied yet (0 = none) */
    bool group_changed;    /* one of those transactions touched the table */
    int64_t group_time;    /* its commit time, µs since 2000-01-01 */
    int64_t txn_time;      /* its commit time, µs since 2000-01-01 */
    char **pending;        /* ids changed and not applied yet */
    size_t n_pending, cap_pending;
    uint64_t confirmed;    /* what the slot may forget: every change before it is durable here */
    uint64_t server_end;   /* the server's end of WAL, as last sent */
    double feedback_at;    /* CLOCK_MONOTONIC seconds of the last status update */
    double slot_measured_at;
} vd_feed_logical;

struct vd_feed {
    vd_feed_config cfg;
    vd_feed_waiter *waiters; /* read-your-writes (lock) */
    vd_feed_reconcile_req *reconciles; /* queued for the feed thread (lock) */
#define VD_FEED_N_STRINGS 12
    char *strings[VD_FEED_N_STRINGS]; /* owned copies behind cfg's pointers */
    vd_collection_config create; /* cfg.create's copy (create.dim 0 = do not create); its
                                  * payload-index fields are owned */
    bool indexes_checked; /* create's payload indexes are on the existing collection (feed thread) */
    vd_database *db;  /* borrowed */
    vd_journal *journal;
    bool bulk_load; /* this feed's backfill counted as a bulk load (vd_journal_bulk_load) */
    pthread_t thread;
    bool started; /* thread runs and is not joined yet (vd_feed_stop's caller only) */
    _Atomic bool stop;
    pthread_mutex_t lock; /* guards st */
    vd_feed_status st;
    /* feed thread only */
    PGconn *conn;
    bool int_ids;         /* the id column is an integer type */
    char *id_type;        /* its SQL type, for casts */
    char *select_cols;    /* id, embedding, version, payload expressions */
    char *from;           /* quoted table */
    char *id_quoted;
    char *version_expr;   /* the version as text, or NULL (no version column) */
    char *in_partition;   /* SQL: the row t is in the feed's partition ("true" when unpartitioned) */
    vd_feed_state state;
    struct vd_feed_pages *pages; /* the backfill's pages being read ahead, or NULL */
    bool caught_up;
    /* The backfill ends by deleting the points whose rows are absent (or
     * outside the partition): set for a partitioned feed, and when the
     * partition changed since the log's state. */
    bool sweep_after_backfill;
    double lag_measured_at; /* CLOCK_MONOTONIC seconds */
    vd_feed_logical lg;     /* feed_source = logical (feed thread only) */
};

/* Points and deletes decoded from source rows, ready for the journal. */
typedef struct vd_feed_batch {
    vd_point_in *pts;
    float *vecs;
    vd_point_id *dels;
    char **ids; /* owned id strings */
    size_t n_pts, n_dels, n_ids;
    bool quiet; /* rows that cannot be points are neither logged nor counted (a comparison) */
    bool *parsed; /* row i's embedding is in vecs[i * dim ...] already (vd_feed_batch_parse), or NULL */
} vd_feed_batch;

/* Wakes the waiters whose transaction is applied, whose time is up, or all
 * (the feed stops). feed_waiters.c */
void vd_feed_wake_waiters(vd_feed *f, bool all);

/* Column col of a one-row result is boolean true. */
static inline bool vd_feed_true(PGresult *r, int col)
{
    return strcmp(PQgetvalue(r, 0, col), "t") == 0;
}

/* feed_conn.c: */
/* Sleeps up to ms, waking early when the feed stops (and serving waiters). */
void vd_feed_nap(vd_feed *f, int ms);
/* Waits until the connection's socket is ready for `events` (or ms); -1 on a poll error. */
int vd_feed_wait_socket(vd_feed *f, short events, int ms);
int vd_feed_wait_on(vd_feed *f, PGconn *c, short events, int ms);
/* Connects f->conn (non-blocking, 15 s at most); false (recorded) on failure. */
bool vd_feed_connect(vd_feed *f);
/* Connects *out with libpq's keyword/value pairs (the dsn expanded from
 * "dbname"); what names the connection in the error. */
bool vd_feed_connect_to(vd_feed *f, PGconn **out, const char *const *keys, const char *const *vals,
                        const char *what);
/* vd_feed_send / vd_feed_collect on another connection; n < 0 sends sql
 * with the simple query protocol (replication commands). A result that
 * starts a COPY stream is returned as is. */
bool vd_feed_send_on(vd_feed *f, PGconn *c, const char *sql, int n, const char *const *params);
PGresult *vd_feed_collect_on(vd_feed *f, PGconn *c);
/* Sends a statement without waiting for its result; false (recorded) on a
 * connection error. */
bool vd_feed_send(vd_feed *f, const char *sql, int n, const char *const *params);
/* Waits for the result of the statement sent last (see vd_feed_run). */
PGresult *vd_feed_collect(vd_feed *f);
/* name as a quoted SQL identifier (malloc'd), or NULL. */
char *vd_feed_quote_ident(vd_feed *f, const char *name);
/* Records (and logs) the feed's last error. */
void vd_feed_error(vd_feed *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs one statement on the feed's connection without blocking on it (libpq's
 * asynchronous API); its last result, or NULL on an error (recorded). The
 * caller PQclear()s. */
PGresult *vd_feed_run(vd_feed *f, const char *sql, int n, const char *const *params);
/* vd_feed_run on another connection. */
PGresult *vd_feed_run_on(vd_feed *f, PGconn *c, const char *sql, int n, const char *const *params);
/* vd_feed_send_on of a statement built in sql (an out-of-memory build is
 * recorded instead); frees sql either way. */
bool vd_feed_send_built(vd_feed *f, PGconn *c, vd_strbuf *sql, int n, const char *const *params);
/* feed_backfill.c: */
/* Up to max_pages pages of `pages`, in key order, into c: each parsed here
 * while the one before is applied on a helper thread, with the state after
 * it (chained in *next: backfill_after, backfill_rows; backfill_done on the
 * final page when done_with_last). *last: the final page was applied. 0, or
 * -1 (recorded). */
int vd_feed_backfill_pages(vd_feed *f, vd_collection *c, struct vd_feed_pages *pages,
                           vd_feed_state *next, unsigned max_pages, bool done_with_last, bool *last);

/* feed_pages.c: the backfill's pages, read ahead over connections of their
 * own (up to VD_FEED_PAGE_CONNS_MAX), handed out in key order. */
#define VD_FEED_PAGE_CONNS_MAX 8
typedef struct vd_feed_pages vd_feed_pages;
/* Starts reading the pages after key `after` ("" = from the first row);
 * snapshot non-NULL: every connection reads in that exported snapshot. NULL
 * (recorded) on failure. */
vd_feed_pages *vd_feed_pages_start(vd_feed *f, const char *after, unsigned connections,
                                   const char *snapshot);
/* The next page (the caller PQclear()s): the key it ends at in upto (the
 * next page starts after it), and whether it is the final one. NULL
 * (recorded) on failure, or when the feed stops. */
PGresult *vd_feed_pages_next(vd_feed_pages *p, char upto[VD_FEED_KEY_MAX + 1], bool *last);
/* Where the next page vd_feed_pages_next hands out starts. */
const char *vd_feed_pages_after(const vd_feed_pages *p);
/* Stops the readers (a page being read is read to its end) and frees p. NULL is a no-op. */
void vd_feed_pages_free(vd_feed_pages *p);

/* feed_rows.c: */
/* Sends, on connection c, the rows of the feed's partition with an id in
 * (after, upto] ("" after: from the first; NULL upto: to the last) as cols
 * (expressions over the table as t), in id order, at most limit of them
 * (0 = all): keyset pagination, each page its own statement. */
bool vd_feed_send_range(vd_feed *f, PGconn *c, const char *cols, const char *after, const char *upto,
                        unsigned limit);
/* The page of up to limit rows after `after` on the feed's connection. */
bool vd_feed_send_page(vd_feed *f, const char *cols, const char *after, unsigned limit);
/* A delete of the source id `text` (a row gone, or outside the partition)
 * added to b; skipped when the feed is partitioned and c holds no such
 * point (most changes of the table are other partitions' rows). false =
 * not an id. */
bool vd_feed_add_delete(vd_feed *f, vd_feed_batch *b, vd_collection *c, const char *text);
/* Counts and logs a source row the feed cannot apply. */
void vd_feed_reject_row(vd_feed *f, const char *id, const char *why);
bool vd_feed_batch_alloc(vd_feed_batch *b, size_t rows, uint32_t dim);
void vd_feed_batch_free(vd_feed_batch *b);
/* Parses every row's embedding (column c + 1 of r, whose rows b was
 * allocated for) into b on the worker pool, before the rows are added one by
 * one: 1536 numbers a row are most of a page's work. pool NULL: each row is
 * parsed as it is added. */
void vd_feed_batch_parse(vd_feed_batch *b, PGresult *r, int c, uint32_t dim, vd_pool *pool);
/* A source id as a point id (strings are copied into b). */
bool vd_feed_parse_id(vd_feed *f, vd_feed_batch *b, const char *text, vd_point_id *out);
/* Row `row` of r, columns c..c+3 (id, embedding, version, payload), as an
 * upsert in b for the collection configured as cc (its dim, and its metric's
 * rule through vd_collection_prepare_vector); false (logged, counted as
 * rejected) if it is malformed. */
bool vd_feed_add_row(vd_feed *f, vd_feed_batch *b, PGresult *r, int row, int c,
                     const vd_collection_config *cc);
/* The same, but a row that cannot be a point becomes a delete of its id:
 * the point of its older contents must not be served as the row. */
void vd_feed_add_row_or_delete(vd_feed *f, vd_feed_batch *b, PGresult *r, int row, int c,
                               const vd_collection_config *cc);

/* Logs and applies b's upserts and deletes through the journal. */
int vd_feed_write_batch(vd_feed *f, vd_collection *c, vd_feed_batch *b, vd_errmsg *em);
/* Logs and applies b, then the feed state next; false (recorded) on failure. */
bool vd_feed_apply(vd_feed *f, vd_collection *c, vd_feed_batch *b, const vd_feed_state *next);
/* vd_feed_apply for a backfill page: while a checkpoint runs (seconds, at a
 * million rows) its position is not logged rather than waited for. The
 * position logged with a later page covers it; a crash before then resumes
 * from an earlier page, and reading pages again changes nothing. The
 * backfill's last position (done) is always logged. */
bool vd_feed_apply_page(vd_feed *f, vd_collection *c, vd_feed_batch *b, const vd_feed_state *next);

/* feed_logical.c: the logical-replication source (feed_source = logical). */
/* At connect: wal_level, the REPLICATION attribute, the publication, SELECT
 * on the table, the id column in the replica identity; false (recorded,
 * naming the fix) when the feed cannot run. */
bool vd_feed_logical_check(vd_feed *f);
/* One round: the slot and the backfill from its snapshot when due, else
 * what the stream holds for about 100 ms, applied transaction by
 * transaction. 0 = done for now, -1 = an error (recorded). */
int vd_feed_logical_round(vd_feed *f, vd_collection *c);
/* Closes the replication connection and forgets the stream's state. */
void vd_feed_logical_close(vd_feed *f);

/* feed_health.c: */
/* At connect: the tables and privileges the feed needs. false (the error
 * recorded, naming the missing privilege and its GRANT) when the feed
 * cannot run; a missing privilege on vectord_feed_position only marks the
 * position as not recorded, a missing trigger sets the warning. */
bool vd_feed_check_access(vd_feed *f);
/* Sets (and logs, when not empty) the set-up warning of GET /feed. */
void vd_feed_set_warning(vd_feed *f, const char *warning);
/* Records the position in vectord_feed_position (for pruning); a failure
 * is kept apart from last_error, as position_error. */
void vd_feed_publish_position(vd_feed *f);
/* Measures the lag (committed outbox rows after the position, the batch
 * about to be applied included, and the oldest one's age) and, when they
 * wait behind an older open transaction, names that transaction. */
void vd_feed_measure_lag(vd_feed *f);
/* Whether the lag is due to be measured again (every 0.25 s while busy). */
bool vd_feed_lag_due(const vd_feed *f);
/* Postgres has just told the feed it is lag_seconds behind. */
void vd_feed_confirm_lag(vd_feed *f, double lag_seconds);
/* Clears last_error: a round worked, so its cause has cleared. */
void vd_feed_clear_error(vd_feed *f);

/* Runs a queued reconciliation (reconcile.c), on the feed thread. */
void vd_feed_reconcile_run(vd_feed *f, vd_collection *c, vd_feed_reconcile_req *req);
/* A TRUNCATE of the source: deletes every point whose row is gone now
 * (rows written since are kept; their own changes follow). reconcile.c */
int vd_feed_drop_absent(vd_feed *f, vd_collection *c, uint64_t *deleted, vd_errmsg *em);

#endif

/*
 * pg_feed.h — a feed from a PostgreSQL table into a collection: backfill the
 * existing rows, then follow the changes the triggers of deploy/sql/ put in
 * the outbox. Postgres stays the record; vectord follows it.
 *
 * One thread per feed, talking to Postgres with libpq's asynchronous API
 * (never on an HTTP thread). Every change goes through the journal like an
 * HTTP write (logged, then applied), and after each batch the feed's
 * position is logged too (VD_MUT_FEED_STATE): a restart resumes where the
 * log says. Rows are read whole from the source table at consumption time
 * and carry their version, so consuming a row again is harmless and a stale
 * write never overwrites a newer one.
 */
#ifndef VD_PG_FEED_H
#define VD_PG_FEED_H

#include <stdbool.h>
#include <stdint.h>

#include "db/collection.h"
#include "db/database.h"
#include "util/partition.h"
#include "write/journal.h"
#include "vectord/error.h"
#include "vectord/types.h"

typedef struct vd_feed_config {
    const char *name;             /* this consumer's name (its row in vectord_feed_position) */
    const char *dsn;              /* libpq connection string */
    const char *table;            /* source table, e.g. Memory */
    const char *collection;       /* target collection */
    const char *id_column;
    const char *embedding_column; /* JSON array text or pgvector text */
    const char *version_column;   /* integer or timestamp; "" = none */
    const char *payload_columns;  /* comma-separated; "" = every column but the embedding, the
                                   * excluded ones and pgvector columns */
    const char *payload_exclude;  /* comma-separated columns left out of the default payload */
    bool logical;                 /* source: logical replication (else the outbox) */
    const char *slot;             /* logical: the replication slot */
    const char *publication;      /* logical: the publication holding the table */
    /* Partitioned feeds (docs/PARTITIONS.md): only the rows whose
     * partition_column hashes to partition.index of partition.count
     * (count 0 = every row). A row outside is, to this feed, absent. */
    vd_partition partition;
    const char *partition_column;
    /* The collection to create when it is missing (create->dim 0 = do not),
     * and the payload indexes to add to it when it exists; copied. NULL =
     * do not create. */
    const vd_collection_config *create;
    uint32_t batch_rows;
    uint32_t backfill_connections; /* connections the backfill reads pages over, at once (0 = 2) */
    uint32_t poll_ms; /* fallback poll when no NOTIFY arrives */
    uint32_t max_lag_s; /* /readyz fails while the oldest unapplied change is older (0 = never) */
    uint32_t position_ready_s; /* /readyz fails while the position has not been recorded for this long (0 = never) */
    struct vd_pool *pool; /* parses a page's embeddings in parallel (borrowed), or NULL */
} vd_feed_config;

typedef struct vd_feed_status {
    bool connected;
    bool backfill_started, backfill_done;
    uint64_t backfill_rows;
    uint64_t xid, seq;          /* follow position */
    uint64_t rows_applied;      /* rows turned into upserts or deletes */
    uint64_t rows_rejected;     /* bad rows skipped */
    uint64_t reconnects;
    uint64_t lag_rows;          /* outbox rows not applied yet (at the last look) */
    double lag_seconds;         /* age of the oldest of them */
    uint64_t applied_below;     /* every change of a transaction with a lower xid is applied */
    char last_error[256];       /* cleared by the next round that works */
    /* The position's row in vectord_feed_position (what pruning reads): */
    bool position_recorded;     /* the last write of it worked */
    uint64_t position_write_errors;
    double position_failing_since; /* CLOCK_MONOTONIC seconds, 0 while recorded */
    char position_error[320];
    /* Committed changes held back by an older transaction still open: */
    bool blocked;
    int blocker_pid;            /* 0 = not visible to the feed's role (or a prepared transaction) */
    char blocker_state[64];     /* pg_stat_activity.state, or "" when not visible */
    double blocker_seconds;     /* how long its transaction has been open; -1 = not visible */
    uint64_t blocker_xid_age;
    char warning[256];          /* set-up the feed works without but should not (missing triggers) */
    /* Logical source: */
    uint64_t applied_lsn;       /* every change committed before it is applied (and durable) */
    uint64_t lag_bytes;         /* WAL the server has written past applied_lsn (at the last look) */
    uint64_t slot_retained_bytes; /* WAL the slot keeps on the server's disk */
    /* How stale the data may be: the last time the feed heard from Postgres
     * how far behind it was (CLOCK_MONOTONIC seconds, 0 = not yet) and that
     * lag; staleness_seconds = the time since plus that lag (-1 = unknown). */
    double confirmed_at, confirmed_lag, staleness_seconds;
} vd_feed_status;

typedef struct vd_feed vd_feed;

/* Starts the feed thread (it connects, and reconnects, by itself). All
 * strings of cfg are copied. */
int vd_feed_start(vd_feed **out, const vd_feed_config *cfg, vd_database *db, vd_journal *journal,
                  vd_errmsg *em);
/* Stops the feed thread (it writes no more), wakes every read-your-writes
 * waiter and fails queued reconciliations. The feed stays readable — status,
 * waits and reconciliations answer "stopped" — until vd_feed_free, so HTTP
 * threads may still hold it. Idempotent. */
void vd_feed_stop(vd_feed *f);
/* Stops (if needed) and frees the feed; nothing may use it after. */
void vd_feed_free(vd_feed *f);
void vd_feed_status_get(vd_feed *f, vd_feed_status *st);
const vd_feed_config *vd_feed_config_of(const vd_feed *f);
/* Read-your-writes: a caller that must see Postgres transaction `xid`
 * applied. vd_feed_wait returns 0 when it is applied already (w->applied),
 * or 1 when w is queued: then wake(ctx) runs once, on the feed thread, when
 * it is applied, at the deadline, or when the feed stops; w->applied tells
 * which. w must stay valid until then. */
typedef struct vd_feed_waiter {
    uint64_t xid;
    uint64_t lsn; /* non-zero: wait for this LSN instead (a logical feed's ?feed_lsn=) */
    double deadline; /* CLOCK_MONOTONIC seconds */
    void (*wake)(void *ctx);
    void *ctx;
    bool applied;
    struct vd_feed_waiter *next;
} vd_feed_waiter;
int vd_feed_wait(vd_feed *f, vd_feed_waiter *w);

/* Reconciliation: compares the collection with the source table (every id
 * and its version) and, with repair, makes the collection match it (upserts
 * of missing and stale rows, deletes of extra points, through the journal).
 * Queued for the feed thread; wake(ctx) runs there when it is done. */
#define VD_RECONCILE_EXAMPLES 5
typedef struct vd_feed_reconcile_req {
    bool repair;
    void (*wake)(void *ctx);
    void *ctx;
    /* results */
    int rc; /* 0, or an error (message in error) */
    char error[256];
    uint64_t source_rows, points, missing, extra, stale, invalid, repaired;
    bool in_sync;       /* nothing missing, extra or stale */
    bool in_sync_after; /* the same, compared again after the repair */
    char examples[4][VD_RECONCILE_EXAMPLES][VD_ID_MAX_LEN + 1]; /* missing, extra, stale, invalid ids */
    bool example_is_int[4][VD_RECONCILE_EXAMPLES]; /* an integer id (else a string id) */
    double seconds;
    struct vd_feed_reconcile_req *next;
} vd_feed_reconcile_req;
void vd_feed_reconcile(vd_feed *f, vd_feed_reconcile_req *req);

/* False while the data may be staler than max_lag_s (see staleness_seconds)
 * or the backfill runs: how stale, not whether Postgres answers this second. */
bool vd_feed_ready(vd_feed *f);
/* False while the position has not been recorded in vectord_feed_position
 * for more than position_ready_s. */
bool vd_feed_position_ready(vd_feed *f);

#endif

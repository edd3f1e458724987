/* metrics.c — see metrics.h. */
#include "server/metrics.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "db/recall_monitor.h"
#include "feed/pg_feed.h"

#define VD_MAX_FEEDS_REPORTED 16
#include "util/jobq.h"
#include "util/procstat.h"
#include "util/strbuf.h"


/* Statuses counted individually; anything else lands in "other". */
static const int statuses[] = {200, 400, 401, 403, 404, 405, 409, 413, 415, 500, 503, 504};
#define N_STATUS (sizeof statuses / sizeof statuses[0] + 1)

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define N_BUCKETS (sizeof buckets / sizeof buckets[0])

typedef struct route_metrics {
    _Atomic uint64_t by_status[N_STATUS];
    _Atomic uint64_t hist[N_BUCKETS + 1]; /* non-cumulative; last = +Inf */
    _Atomic uint64_t sum_us;
} route_metrics;

static const double work_buckets[] = {100, 300, 1000, 3000, 10000, 30000, 100000, 300000, 1000000};
#define N_WORK (sizeof work_buckets / sizeof work_buckets[0])

struct vd_metrics {
    route_metrics routes[VD_N_ROUTES];
    _Atomic uint64_t work_hist[N_WORK + 1]; /* distance computations per search */
    _Atomic uint64_t work_sum;
    struct timespec started;
    _Atomic(vd_store *) store;
    vd_feed **feeds; /* set before the server is ready */
    size_t n_feeds;
    vd_recovery_report recovery; /* written before the server is ready */
    vd_recall_monitor *recall;   /* set before the server is ready */
    vd_http_load http;
    vd_jobq *jobs; /* set before the server is ready */
};

vd_http_load *vd_metrics_http_load(vd_metrics *m) { return &m->http; }

static void render_http_load(vd_metrics *m, vd_strbuf *b)
{
    static const char *const reasons[VD_N_OVERLOAD_REASONS] = {"connections", "waiting",
                                                               "body_bytes", "queue"};
    vd_strbuf_printf(b,
                     "# HELP vectord_http_connections Open HTTP connections.\n"
                     "# TYPE vectord_http_connections gauge\nvectord_http_connections %ld\n"
                     "# HELP vectord_http_active_requests Requests being served: dispatched, their "
                     "answer not all sent (this scrape included).\n"
                     "# TYPE vectord_http_active_requests gauge\nvectord_http_active_requests %ld\n"
                     "# HELP vectord_http_waiting_requests Requests parked until the WAL or the "
                     "feed catches up.\n# TYPE vectord_http_waiting_requests gauge\n"
                     "vectord_http_waiting_requests %ld\n"
                     "# HELP vectord_http_body_bytes Memory of requests in flight: bodies, their parse, and "
                     "answers not yet sent (bounded by max_inflight_body_bytes).\n"
                     "# TYPE vectord_http_body_bytes gauge\nvectord_http_body_bytes %llu\n"
                     "# HELP vectord_http_overloaded_total Requests refused with 503 overloaded, "
                     "by limit.\n# TYPE vectord_http_overloaded_total counter\n",
                     atomic_load_explicit(&m->http.connections, memory_order_relaxed),
                     atomic_load_explicit(&m->http.active, memory_order_relaxed),
                     atomic_load_explicit(&m->http.waiting, memory_order_relaxed),
                     (unsigned long long)atomic_load_explicit(&m->http.body_bytes,
                                                              memory_order_relaxed));
    for (int r = 0; r < VD_N_OVERLOAD_REASONS; r++)
        vd_strbuf_printf(b, "vectord_http_overloaded_total{limit=\"%s\"} %llu\n", reasons[r],
                         (unsigned long long)atomic_load_explicit(&m->http.overloaded[r],
                                                                  memory_order_relaxed));
    if (m->jobs)
        vd_strbuf_printf(b, "# HELP vectord_request_queue_depth Heavy requests (searches, applied "
                            "writes) waiting for or running on the request workers (bounded by "
                            "max_queued_requests).\n# TYPE vectord_request_queue_depth gauge\n"
                            "vectord_request_queue_depth %zu\n",
                         vd_jobq_depth(m->jobs));
    vd_strbuf_printf(b, "# HELP vectord_search_requests_total Search requests (native and Qdrant; a "
                        "batch counts once) by the thread they ran on: the HTTP thread that read "
                        "them (cheap ones) or a request worker.\n"
                        "# TYPE vectord_search_requests_total counter\n"
                        "vectord_search_requests_total{thread=\"http\"} %llu\n"
                        "vectord_search_requests_total{thread=\"worker\"} %llu\n",
                     (unsigned long long)atomic_load_explicit(&m->http.searches[VD_SEARCH_ON_HTTP],
                                                              memory_order_relaxed),
                     (unsigned long long)atomic_load_explicit(&m->http.searches[VD_SEARCH_ON_WORKER],
                                                              memory_order_relaxed));
    static const char *const closed[VD_N_CLOSE_REASONS] = {"idle_deadline", "head_deadline",
                                                           "body_too_slow", "evicted"};
    vd_strbuf_printf(b, "# HELP vectord_http_connections_closed_total Connections the server "
                        "closed: a request too slow to arrive, or the idlest one evicted past "
                        "max_connections.\n# TYPE vectord_http_connections_closed_total counter\n");
    for (int r = 0; r < VD_N_CLOSE_REASONS; r++)
        vd_strbuf_printf(b, "vectord_http_connections_closed_total{reason=\"%s\"} %llu\n",
                         closed[r],
                         (unsigned long long)atomic_load_explicit(&m->http.closed[r],
                                                                  memory_order_relaxed));
}

/* Prometheus' standard process_* metrics, under their standard names (a
 * field /proc cannot give is left out). */
static void render_process(const vd_process_facts *pf, vd_strbuf *b)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds."},
        {"process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds."},
        {"process_resident_memory_bytes", "gauge", "Resident memory size in bytes."},
        {"process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes."},
        {"process_open_fds", "gauge", "Number of open file descriptors."},
        {"process_max_fds", "gauge", "Maximum number of open file descriptors."},
    };
    double v[] = {pf->cpu_seconds, pf->start_time_seconds, (double)pf->resident_bytes,
                  (double)pf->virtual_bytes, (double)pf->open_fds, (double)pf->max_fds};
    _Static_assert(sizeof v / sizeof v[0] == sizeof fam / sizeof fam[0], "a value per family");
    for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++)
        if (v[i] >= 0)
            vd_strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", fam[i].name, fam[i].help,
                             fam[i].name, fam[i].type, fam[i].name, v[i]);
}

void vd_metrics_set_recall(vd_metrics *m, vd_recall_monitor *rm) { m->recall = rm; }

void vd_metrics_set_jobs(vd_metrics *m, vd_jobq *jobs) { m->jobs = jobs; }

void vd_metrics_set_store(vd_metrics *m, vd_store *store) { atomic_store(&m->store, store); }

void vd_metrics_set_recovery(vd_metrics *m, const vd_recovery_report *rep) { m->recovery = *rep; }

void vd_metrics_set_feeds(vd_metrics *m, vd_feed **feeds, size_t n)
{
    m->feeds = feeds;
    m->n_feeds = n;
}

/* One metric family per feed field, a sample per feed. */
static void render_feeds(vd_metrics *m, vd_strbuf *b)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"vectord_feed_connected", "gauge", "1 while the feed is connected to Postgres."},
        {"vectord_feed_backfill_done", "gauge", "1 once the backfill has finished."},
        {"vectord_feed_backfill_rows_total", "counter", "Rows copied by the backfill."},
        {"vectord_feed_rows_applied_total", "counter", "Rows turned into upserts or deletes."},
        {"vectord_feed_rows_rejected_total", "counter", "Bad rows skipped."},
        {"vectord_feed_reconnects_total", "counter", "Reconnections to Postgres."},
        {"vectord_feed_lag_rows", "gauge", "Outbox rows not applied yet."},
        {"vectord_feed_lag_seconds", "gauge", "Age of the oldest outbox row not applied yet."},
        {"vectord_feed_position_xid", "gauge", "Follow position: transaction id."},
        {"vectord_feed_position_recorded", "gauge",
         "1 while the position reaches vectord_feed_position (0: the outbox is not pruned)."},
        {"vectord_feed_position_write_errors_total", "counter", "Failed writes of the position."},
        {"vectord_feed_blocked", "gauge", "1 while an open transaction holds committed changes back."},
        {"vectord_feed_blocker_seconds", "gauge",
         "How long the transaction holding the feed back has been open (0 when none or not visible)."},
        {"vectord_feed_staleness_seconds", "gauge",
         "How far behind Postgres the data may be: the lag last heard plus the time since (-1 until known); "
         "readiness follows it."},
        {"vectord_feed_lag_bytes", "gauge",
         "Logical source: WAL the server has written past what the feed has applied."},
        {"vectord_feed_slot_retained_bytes", "gauge",
         "Logical source: WAL the replication slot keeps on the server's disk."},
    };
    vd_feed_status st[VD_MAX_FEEDS_REPORTED];
    size_t n = m->n_feeds < VD_MAX_FEEDS_REPORTED ? m->n_feeds : VD_MAX_FEEDS_REPORTED;
    for (size_t k = 0; k < n; k++)
        vd_feed_status_get(m->feeds[k], &st[k]);
    for (size_t i = 0; n && i < sizeof fam / sizeof fam[0]; i++) {
        vd_strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", fam[i].name, fam[i].help, fam[i].name,
                         fam[i].type);
        for (size_t k = 0; k < n; k++) {
            double v[] = {st[k].connected, st[k].backfill_done, (double)st[k].backfill_rows,
                          (double)st[k].rows_applied, (double)st[k].rows_rejected,
                          (double)st[k].reconnects, (double)st[k].lag_rows, st[k].lag_seconds,
                          (double)st[k].xid, st[k].position_recorded,
                          (double)st[k].position_write_errors, st[k].blocked,
                          st[k].blocked && st[k].blocker_seconds > 0 ? st[k].blocker_seconds : 0,
                          st[k].staleness_seconds, (double)st[k].lag_bytes,
                          (double)st[k].slot_retained_bytes};
            _Static_assert(sizeof v / sizeof v[0] == sizeof fam / sizeof fam[0], "a value per family");
            vd_strbuf_printf(b, "%s{feed=\"%s\"} %.17g\n", fam[i].name,
                             vd_feed_config_of(m->feeds[k])->name, v[i]);
        }
    }
}

/* A histogram from non-cumulative bucket counts (the last bound is +Inf). */
static void render_histogram(vd_strbuf *b, const char *name, const char *help, const double *bounds,
                             const uint64_t *counts, unsigned n, double sum)
{
    vd_strbuf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (unsigned i = 0; i < n; i++) {
        cum += counts[i];
        if (i + 1 < n)
            vd_strbuf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
    }
    vd_strbuf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                     (unsigned long long)cum, name, sum, name, (unsigned long long)cum);
}

static void render_storage(vd_metrics *m, vd_strbuf *b)
{
    const vd_recovery_report *r = &m->recovery;
    vd_strbuf_printf(b,
                     "# HELP vectord_recovery_seconds Time the last start-up spent recovering.\n"
                     "# TYPE vectord_recovery_seconds gauge\n"
                     "vectord_recovery_seconds{phase=\"snapshots\"} %.6f\n"
                     "vectord_recovery_seconds{phase=\"wal_replay\"} %.6f\n"
                     "# HELP vectord_recovery_wal_records WAL records replayed at start-up.\n"
                     "# TYPE vectord_recovery_wal_records gauge\nvectord_recovery_wal_records %llu\n"
                     "# HELP vectord_recovery_truncated_bytes Torn WAL bytes cut off at start-up.\n"
                     "# TYPE vectord_recovery_truncated_bytes gauge\n"
                     "vectord_recovery_truncated_bytes %llu\n"
                     "# HELP vectord_recovery_lost_records WAL records missing in a gap of the log that "
                     "the last start-up went past (accept_data_loss only).\n"
                     "# TYPE vectord_recovery_lost_records gauge\n"
                     "vectord_recovery_lost_records %llu\n"
                     "# HELP vectord_recovery_lost_snapshot_files Snapshot files the last start-up "
                     "went on without: missing, older than the checkpoint manifest lists, or "
                     "unreadable (accept_data_loss only).\n"
                     "# TYPE vectord_recovery_lost_snapshot_files gauge\n"
                     "vectord_recovery_lost_snapshot_files %zu\n",
                     r->snapshot_seconds, r->replay_seconds, (unsigned long long)r->records,
                     (unsigned long long)r->truncated_bytes, (unsigned long long)r->lost_records,
                     r->lost_snapshot_files);
    vd_store *store = atomic_load(&m->store);
    if (!store)
        return;
    vd_wal_stats st;
    vd_wal_stats_get(vd_store_wal(store), &st);
    vd_strbuf_printf(b,
                     "# HELP vectord_wal_records_total Records logged (durable under wal_fsync=always).\n"
                     "# TYPE vectord_wal_records_total counter\nvectord_wal_records_total %llu\n"
                     "# HELP vectord_wal_bytes_total WAL bytes written.\n"
                     "# TYPE vectord_wal_bytes_total counter\nvectord_wal_bytes_total %llu\n"
                     "# HELP vectord_wal_fsyncs_total fdatasync calls on WAL segments.\n"
                     "# TYPE vectord_wal_fsyncs_total counter\nvectord_wal_fsyncs_total %llu\n"
                     "# HELP vectord_wal_failed_groups_total Groups whose write or fsync failed.\n"
                     "# TYPE vectord_wal_failed_groups_total counter\n"
                     "vectord_wal_failed_groups_total %llu\n"
                     "# HELP vectord_wal_read_only 1 once an I/O error made the WAL read-only.\n"
                     "# TYPE vectord_wal_read_only gauge\nvectord_wal_read_only %d\n"
                     "# HELP vectord_wal_durable_lsn LSN of the newest logged record.\n"
                     "# TYPE vectord_wal_durable_lsn gauge\nvectord_wal_durable_lsn %llu\n",
                     (unsigned long long)st.records, (unsigned long long)st.bytes,
                     (unsigned long long)st.fsyncs, (unsigned long long)st.failed_groups,
                     st.read_only_error != 0, (unsigned long long)st.durable_lsn);
    vd_checkpoint_stats ck;
    vd_store_checkpoint_stats(store, &ck);
    vd_strbuf_printf(b,
                     "# HELP vectord_checkpoints_total Checkpoints and snapshots, by result.\n"
                     "# TYPE vectord_checkpoints_total counter\n"
                     "vectord_checkpoints_total{result=\"ok\"} %llu\n"
                     "vectord_checkpoints_total{result=\"error\"} %llu\n"
                     "# HELP vectord_checkpoint_seconds Duration of the last checkpoint.\n"
                     "# TYPE vectord_checkpoint_seconds gauge\nvectord_checkpoint_seconds %.6f\n"
                     "# HELP vectord_checkpoint_seconds_total Time spent in checkpoints.\n"
                     "# TYPE vectord_checkpoint_seconds_total counter\n"
                     "vectord_checkpoint_seconds_total %.6f\n"
                     "# HELP vectord_checkpoint_bytes_total Snapshot bytes written.\n"
                     "# TYPE vectord_checkpoint_bytes_total counter\nvectord_checkpoint_bytes_total %llu\n"
                     "# HELP vectord_bulk_loads Bulk loads running (feed backfills): checkpoints by WAL "
                     "size space out meanwhile (checkpoint_bulk_wal_pct).\n"
                     "# TYPE vectord_bulk_loads gauge\nvectord_bulk_loads %u\n",
                     (unsigned long long)ck.runs, (unsigned long long)ck.failures, ck.last_seconds,
                     ck.total_seconds, (unsigned long long)ck.bytes, vd_journal_bulk_loads(vd_store_journal(store)));
    double group_bounds[VD_WAL_GROUP_BUCKETS];
    for (unsigned i = 0; i < VD_WAL_GROUP_BUCKETS; i++)
        group_bounds[i] = i + 1 < VD_WAL_GROUP_BUCKETS ? (double)(1u << i) : __builtin_inf();
    render_histogram(b, "vectord_wal_group_records", "Records per group commit.", group_bounds,
                     st.group_hist, VD_WAL_GROUP_BUCKETS, (double)st.records);
    render_histogram(b, "vectord_wal_sync_seconds", "Write + fdatasync time of a group.",
                     vd_wal_sync_bounds, st.sync_hist, VD_WAL_SYNC_BUCKETS, st.sync_seconds);
}

int vd_metrics_create(vd_metrics **out)
{
    vd_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    clock_gettime(CLOCK_MONOTONIC, &m->started);
    *out = m;
    return 0;
}

void vd_metrics_destroy(vd_metrics *m) { free(m); }

void vd_metrics_observe(vd_metrics *m, vd_route route, int status, double seconds)
{
    if ((unsigned)route >= VD_N_ROUTES)
        route = VD_ROUTE_NONE;
    route_metrics *r = &m->routes[route];
    size_t si = N_STATUS - 1;
    for (size_t i = 0; i < N_STATUS - 1; i++)
        if (statuses[i] == status)
            si = i;
    atomic_fetch_add_explicit(&r->by_status[si], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < N_BUCKETS && seconds > buckets[b])
        b++;
    atomic_fetch_add_explicit(&r->hist[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

void vd_metrics_observe_search(vd_metrics *m, uint64_t distances)
{
    size_t b = 0;
    while (b < N_WORK && (double)distances > work_buckets[b])
        b++;
    atomic_fetch_add_explicit(&m->work_hist[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->work_sum, distances, memory_order_relaxed);
}

static uint64_t load(_Atomic uint64_t *x) { return atomic_load_explicit(x, memory_order_relaxed); }

static void render_requests(vd_metrics *m, vd_strbuf *b)
{
    vd_strbuf_printf(b, "# HELP vectord_http_requests_total HTTP requests by route and status.\n"
                        "# TYPE vectord_http_requests_total counter\n");
    for (int r = 0; r < VD_N_ROUTES; r++) {
        for (size_t s = 0; s < N_STATUS; s++) {
            uint64_t n = load(&m->routes[r].by_status[s]);
            if (!n)
                continue;
            if (s < N_STATUS - 1)
                vd_strbuf_printf(b, "vectord_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                                 vd_routes[r].label, statuses[s], (unsigned long long)n);
            else
                vd_strbuf_printf(b, "vectord_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                                 vd_routes[r].label, (unsigned long long)n);
        }
    }
    vd_strbuf_printf(b, "# HELP vectord_http_request_duration_seconds Request latency by route.\n"
                        "# TYPE vectord_http_request_duration_seconds histogram\n");
    for (int r = 0; r < VD_N_ROUTES; r++) {
        uint64_t cum = 0;
        for (size_t i = 0; i <= N_BUCKETS; i++) {
            cum += load(&m->routes[r].hist[i]);
            if (i < N_BUCKETS)
                vd_strbuf_printf(b,
                                 "vectord_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                                 vd_routes[r].label, buckets[i], (unsigned long long)cum);
            else
                vd_strbuf_printf(b,
                                 "vectord_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                                 vd_routes[r].label, (unsigned long long)cum);
        }
        vd_strbuf_printf(b, "vectord_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
                         vd_routes[r].label, (double)load(&m->routes[r].sum_us) / 1e6);
        vd_strbuf_printf(b, "vectord_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                         vd_routes[r].label, (unsigned long long)cum);
    }
}

static void render_work(vd_metrics *m, vd_strbuf *b)
{
    vd_strbuf_printf(b, "# HELP vectord_search_distance_computations Distance computations per "
                        "search (all shards).\n# TYPE vectord_search_distance_computations histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i <= N_WORK; i++) {
        cum += load(&m->work_hist[i]);
        if (i < N_WORK)
            vd_strbuf_printf(b, "vectord_search_distance_computations_bucket{le=\"%g\"} %llu\n",
                             work_buckets[i], (unsigned long long)cum);
        else
            vd_strbuf_printf(b, "vectord_search_distance_computations_bucket{le=\"+Inf\"} %llu\n",
                             (unsigned long long)cum);
    }
    vd_strbuf_printf(b, "vectord_search_distance_computations_sum %llu\n"
                        "vectord_search_distance_computations_count %llu\n",
                     (unsigned long long)load(&m->work_sum), (unsigned long long)cum);
}

/* The recall monitor and, per collection, the recall and shadow tallies
 * (db/quality.h): one family per field, a sample per collection. */
static void render_quality(vd_metrics *m, vd_collection **colls, size_t n, vd_strbuf *b)
{
    vd_recall_monitor_stats rs;
    vd_recall_monitor_stats_get(m->recall, &rs);
    vd_strbuf_printf(b,
                     "# HELP vectord_recall_monitor_sampled_total Searches queued for an exact re-run.\n"
                     "# TYPE vectord_recall_monitor_sampled_total counter\n"
                     "vectord_recall_monitor_sampled_total %llu\n"
                     "# HELP vectord_recall_monitor_dropped_total Samples dropped: the queue was full.\n"
                     "# TYPE vectord_recall_monitor_dropped_total counter\n"
                     "vectord_recall_monitor_dropped_total %llu\n"
                     "# HELP vectord_recall_monitor_queued Samples waiting for their re-run.\n"
                     "# TYPE vectord_recall_monitor_queued gauge\nvectord_recall_monitor_queued %llu\n"
                     "# HELP vectord_recall_monitor_exact_searches_total Searches answered exactly "
                     "(recall 1 by construction), so never sampled.\n"
                     "# TYPE vectord_recall_monitor_exact_searches_total counter\n"
                     "vectord_recall_monitor_exact_searches_total %llu\n"
                     "# HELP vectord_recall_monitor_skipped_total Samples not taken or discarded: the "
                     "monitor had spent its CPU budget (recall_cpu_percent).\n"
                     "# TYPE vectord_recall_monitor_skipped_total counter\n"
                     "vectord_recall_monitor_skipped_total %llu\n"
                     "# HELP vectord_recall_monitor_cpu_seconds_total CPU time the exact re-runs took.\n"
                     "# TYPE vectord_recall_monitor_cpu_seconds_total counter\n"
                     "vectord_recall_monitor_cpu_seconds_total %.6f\n",
                     (unsigned long long)rs.sampled, (unsigned long long)rs.dropped,
                     (unsigned long long)rs.queued, (unsigned long long)rs.exact,
                     (unsigned long long)rs.skipped, rs.cpu_s);
    vd_agreement_stats *q = calloc(2 * (n ? n : 1), sizeof *q);
    if (!q)
        return;
    for (size_t i = 0; i < n; i++)
        vd_quality_get(vd_collection_quality(colls[i]), &q[2 * i], &q[2 * i + 1]);
    enum { COMPARED, HITS, EXPECTED, RECENT, SECONDS_A, SECONDS_B };
    static const struct {
        int kind; /* 0 = recall, 1 = shadow */
        int field;
        const char *name, *type, *help;
    } fam[] = {
        {0, COMPARED, "vectord_recall_samples_total", "counter", "Searches re-run exactly by the recall monitor."},
        {0, HITS, "vectord_recall_hits_total", "counter", "Exact top-k ids the sampled searches had found."},
        {0, EXPECTED, "vectord_recall_expected_total", "counter", "Exact top-k ids of the sampled searches (recall = hits / expected)."},
        {0, RECENT, "vectord_recall_recent", "gauge", "Recall@k over the last 256 samples."},
        {1, COMPARED, "vectord_shadow_comparisons_total", "counter", "Shadow searches compared with a caller's baseline."},
        {1, HITS, "vectord_shadow_common_total", "counter", "Ids both vectord and the baseline returned."},
        {1, EXPECTED, "vectord_shadow_expected_total", "counter", "max(vectord's, baseline's) result count (overlap = common / expected)."},
        {1, RECENT, "vectord_shadow_overlap_recent", "gauge", "Overlap@k over the last 256 shadow comparisons."},
        {1, SECONDS_A, "vectord_shadow_baseline_seconds_total", "counter", "The baseline's reported search time."},
        {1, SECONDS_B, "vectord_shadow_vectord_seconds_total", "counter", "vectord's search time in shadow comparisons."},
    };
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        vd_strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help, fam[f].name,
                         fam[f].type);
        for (size_t i = 0; i < n; i++) {
            const vd_agreement_stats *a = &q[2 * i + (size_t)fam[f].kind];
            const char *name = vd_collection_config_of(colls[i])->name;
            double v = fam[f].field == COMPARED    ? (double)a->compared
                       : fam[f].field == HITS      ? (double)a->hits
                       : fam[f].field == EXPECTED  ? (double)a->expected
                       : fam[f].field == SECONDS_A ? a->seconds_a
                       : fam[f].field == SECONDS_B ? a->seconds_b
                                                   : a->recent;
            if (fam[f].field == RECENT && a->recent < 0)
                continue; /* nothing measured yet */
            vd_strbuf_printf(b, "%s{collection=\"%s\"} %.17g\n", fam[f].name, name, v);
        }
    }
    free(q);
}

static int render_collections(vd_metrics *m, vd_database *db, vd_strbuf *b)
{
    vd_collection **colls;
    size_t n;
    int rc = vd_database_list(db, &colls, &n);
    if (rc)
        return rc;
    vd_strbuf_printf(b, "# HELP vectord_collections Collections.\n# TYPE vectord_collections gauge\n"
                        "vectord_collections %zu\n",
                     n);
    vd_strbuf_printf(b, "# HELP vectord_collection_points Points per collection.\n"
                        "# TYPE vectord_collection_points gauge\n");
    vd_collection_stats *st = calloc(n ? n : 1, sizeof *st);
    for (size_t i = 0; i < n && st; i++) {
        if (vd_collection_stats_get(colls[i], &st[i]) == 0)
            vd_strbuf_printf(b, "vectord_collection_points{collection=\"%s\"} %zu\n",
                             vd_collection_config_of(colls[i])->name, st[i].n_points);
    }
    vd_strbuf_printf(b, "# HELP vectord_collection_memory_bytes Memory per collection and part.\n"
                        "# TYPE vectord_collection_memory_bytes gauge\n");
    for (size_t i = 0; i < n && st; i++) {
        const char *name = vd_collection_config_of(colls[i])->name;
        const vd_shard_stats *t = &st[i].total;
        const struct {
            const char *part;
            size_t bytes;
        } parts[] = {{"vectors", t->vector_bytes},
                     {"codes", t->code_bytes},
                     {"ids", t->id_bytes},
                     {"payload", t->payload_bytes},
                     {"payload_index", t->payload_index_bytes},
                     {"index", t->index_bytes}};
        for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++)
            vd_strbuf_printf(b, "vectord_collection_memory_bytes{collection=\"%s\",part=\"%s\"} %zu\n",
                             name, parts[p].part, parts[p].bytes);
    }
    vd_strbuf_printf(b, "# HELP vectord_collection_disk_bytes Float32 originals kept on disk "
                        "(quantized collections).\n# TYPE vectord_collection_disk_bytes gauge\n");
    for (size_t i = 0; i < n && st; i++)
        vd_strbuf_printf(b, "vectord_collection_disk_bytes{collection=\"%s\",part=\"vectors\"} %zu\n",
                         vd_collection_config_of(colls[i])->name, st[i].total.vector_disk_bytes);
    vd_strbuf_printf(b, "# HELP vectord_collection_searches_total Shard searches by plan (exact "
                        "scan, graph traversal, or a scan of a tenant index's codes).\n# TYPE vectord_collection_searches_total counter\n");
    for (size_t i = 0; i < n && st; i++) {
        const char *name = vd_collection_config_of(colls[i])->name;
        vd_strbuf_printf(b, "vectord_collection_searches_total{collection=\"%s\",plan=\"exact\"} %llu\n"
                            "vectord_collection_searches_total{collection=\"%s\",plan=\"graph\"} %llu\n"
                            "vectord_collection_searches_total{collection=\"%s\",plan=\"tenant\"} %llu\n",
                         name, (unsigned long long)st[i].total.searches_exact, name,
                         (unsigned long long)st[i].total.searches_graph, name,
                         (unsigned long long)st[i].total.searches_tenant);
    }
    vd_strbuf_printf(b, "# HELP vectord_collection_deleted_pending Deleted points an index still "
                        "holds until compaction.\n# TYPE vectord_collection_deleted_pending gauge\n");
    for (size_t i = 0; i < n && st; i++)
        vd_strbuf_printf(b, "vectord_collection_deleted_pending{collection=\"%s\"} %zu\n",
                         vd_collection_config_of(colls[i])->name, st[i].total.n_tombstones);
    vd_strbuf_printf(b, "# HELP vectord_collection_index_backlog Points searchable (scanned exactly) "
                        "that the graph does not hold yet.\n# TYPE vectord_collection_index_backlog gauge\n");
    for (size_t i = 0; i < n && st; i++)
        vd_strbuf_printf(b, "vectord_collection_index_backlog{collection=\"%s\"} %zu\n",
                         vd_collection_config_of(colls[i])->name, st[i].total.n_backlog);
    vd_strbuf_printf(b, "# HELP vectord_collection_index_built_total Points the graph builder inserted "
                        "behind the writes.\n# TYPE vectord_collection_index_built_total counter\n");
    for (size_t i = 0; i < n && st; i++)
        vd_strbuf_printf(b, "vectord_collection_index_built_total{collection=\"%s\"} %llu\n",
                         vd_collection_config_of(colls[i])->name, (unsigned long long)st[i].total.n_built);
    vd_strbuf_printf(b, "# HELP vectord_collection_graph_linked_total Graph nodes no search could reach "
                        "(every in-link pruned), linked again by the builder.\n"
                        "# TYPE vectord_collection_graph_linked_total counter\n");
    for (size_t i = 0; i < n && st; i++)
        vd_strbuf_printf(b, "vectord_collection_graph_linked_total{collection=\"%s\"} %llu\n",
                         vd_collection_config_of(colls[i])->name, (unsigned long long)st[i].total.n_linked);
    static const char *const cal_help[2] = {
        "# HELP vectord_collection_calibrated_breadth The ef (HNSW) or nprobe (IVF) calibrated to the "
        "collection's target recall (absent until calibrated).\n"
        "# TYPE vectord_collection_calibrated_breadth gauge\n",
        "# HELP vectord_collection_calibrated_recall The recall measured at that breadth over the "
        "calibration window.\n# TYPE vectord_collection_calibrated_recall gauge\n"};
    for (int family = 0; family < 2; family++) {
        vd_strbuf_printf(b, "%s", cal_help[family]);
        for (size_t i = 0; i < n && st; i++) {
            vd_calibration_choice ch;
            vd_collection_calibration(colls[i], &ch);
            if (!ch.chosen || vd_collection_target_recall(colls[i]) <= 0)
                continue;
            const char *name = vd_collection_config_of(colls[i])->name;
            if (family == 0)
                vd_strbuf_printf(b, "vectord_collection_calibrated_breadth{collection=\"%s\"} %u\n", name, ch.value);
            else
                vd_strbuf_printf(b, "vectord_collection_calibrated_recall{collection=\"%s\"} %.4f\n", name, ch.recall);
        }
    }
    vd_strbuf_printf(b, "# HELP vectord_collection_search_scratch_allocations_total Working memory searches "
                        "had to allocate (scratch made or grown); flat once warm.\n"
                        "# TYPE vectord_collection_search_scratch_allocations_total counter\n");
    for (size_t i = 0; i < n && st; i++)
        vd_strbuf_printf(b, "vectord_collection_search_scratch_allocations_total{collection=\"%s\"} %llu\n",
                         vd_collection_config_of(colls[i])->name,
                         (unsigned long long)st[i].total.search_allocations);
    vd_strbuf_printf(b, "# HELP vectord_collection_compactions_total Index compactions.\n"
                        "# TYPE vectord_collection_compactions_total counter\n");
    for (size_t i = 0; i < n && st; i++) {
        vd_strbuf_printf(b, "vectord_collection_compactions_total{collection=\"%s\"} %llu\n",
                         vd_collection_config_of(colls[i])->name,
                         (unsigned long long)st[i].total.n_compactions);
        free(st[i].shards);
    }
    free(st);
    render_quality(m, colls, n, b);
    for (size_t i = 0; i < n; i++)
        vd_collection_unref(colls[i]);
    free(colls);
    return 0;
}

int vd_metrics_render(vd_metrics *m, vd_database *db, const char *simd, char **text, size_t *len)
{
    vd_strbuf b;
    vd_strbuf_init(&b, 0);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double up = (double)(now.tv_sec - m->started.tv_sec) +
                (double)(now.tv_nsec - m->started.tv_nsec) / 1e9;
    vd_strbuf_printf(&b, "# HELP vectord_build_info Build and run-time facts.\n"
                         "# TYPE vectord_build_info gauge\n"
                         "vectord_build_info{version=\"%s\",simd=\"%s\"} 1\n"
                         "# HELP vectord_uptime_seconds Seconds since start.\n"
                         "# TYPE vectord_uptime_seconds gauge\nvectord_uptime_seconds %.3f\n",
                     VECTORD_VERSION, simd, up);
    vd_process_facts pf;
    vd_process_facts_get(&pf);
    vd_strbuf_printf(&b, "# HELP vectord_process_resident_memory_bytes Resident set size.\n"
                         "# TYPE vectord_process_resident_memory_bytes gauge\n"
                         "vectord_process_resident_memory_bytes %ld\n",
                     pf.resident_bytes);
    render_process(&pf, &b);
    render_requests(m, &b);
    render_http_load(m, &b);
    render_work(m, &b);
    render_storage(m, &b);
    render_feeds(m, &b);
    int rc = render_collections(m, db, &b);
    if (rc || b.failed) {
        vd_strbuf_free(&b);
        return rc ? rc : -ENOMEM;
    }
    *text = vd_strbuf_take(&b, len);
    return 0;
}

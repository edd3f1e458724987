/*
 * main.c — wires vectord together: configuration, CPU dispatch, the data
 * directory lock, the worker pool, the database, metrics and the HTTP server;
 * then waits for SIGTERM/SIGINT and shuts down in reverse order.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "db/database.h"
#include "db/builder.h"
#include "db/maintenance.h"
#include "db/recall_monitor.h"
#include "write/datadir.h"
#include "write/store.h"
#include "feed/pg_feed.h"
#include "server/api.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/http.h"
#include "server/metrics.h"
#include "util/jobq.h"
#include "util/json_float.h"
#include "util/log.h"
#include "util/memtrim.h"
#include "util/pool.h"
#include "vectord/crc32c.h"
#include "vectord/distance.h"

extern char **environ;

/* SIGHUP: reads the configuration again (file, environment, flags) and
 * applies what can change while running: the log level and the API keys.
 * Everything else needs a restart (and is left as it was). */
static void reload(const vd_config *running, int argc, char **argv, vd_auth *auth)
{
    vd_config cfg;
    vd_config_action action;
    vd_errmsg em = {{0}};
    if (vd_config_load(&cfg, argc, argv, environ, &action, &em) != 0) {
        vd_log_error("SIGHUP: configuration not reloaded", "error=\"%s\"", em.text);
        return;
    }
    vd_log_set_level(cfg.log_level_value);
    if (vd_auth_reload(auth, &cfg, &em) != 0) {
        vd_log_error("SIGHUP: API keys not reloaded", "error=\"%s\"", em.text);
        return;
    }
    vd_log_info("SIGHUP: reloaded", "log_level=%s auth=%s restart_needed_for_others=%s",
                cfg.log_level, vd_auth_enabled(auth) ? "on" : "off",
                memcmp(cfg.listen, running->listen, sizeof cfg.listen) ? "listen" : "none");
}

static unsigned cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Every connection is a file descriptor, and so are WAL segments, snapshot
 * files, vector files and Postgres sockets: raise the soft limit on open
 * files to what max_connections (plus libmicrohttpd's reserve above it)
 * needs, up to the hard limit, and say so when even that is too low. */
static void raise_fd_limit(const vd_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)(cfg->max_connections + vd_http_connection_reserve(cfg->max_connections)) + 256;
    if (rl.rlim_cur >= want)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (rl.rlim_cur <= was || setrlimit(RLIMIT_NOFILE, &rl) != 0)
        rl.rlim_cur = was;
    else
        vd_log_info("raised the open-file limit for max_connections", "from=%llu to=%llu hard=%llu",
                    (unsigned long long)was, (unsigned long long)rl.rlim_cur,
                    (unsigned long long)rl.rlim_max);
    if (rl.rlim_cur < want)
        vd_log_warn("the open-file limit is below what max_connections needs: connections past it "
                    "are refused (raise ulimit -n / LimitNOFILE)",
                    "limit=%llu needed=%llu max_connections=%llu", (unsigned long long)rl.rlim_cur,
                    (unsigned long long)want, (unsigned long long)cfg->max_connections);
}

/* How long the graph builder sleeps when no shard has a backlog. */
#define VD_BUILDER_IDLE_MS 10
/* Memory kept for requests goes back to the system within two ticks of the last one. */
#define VD_MEMTRIM_TICK_MS 500

/* Everything main starts, in start order; shut_down undoes it in reverse.
 * Local to main.c and passed explicitly: no module sees it. */
typedef struct vectord {
    vd_config cfg;
    const vd_distance_table *dist;
    unsigned workers;
    int lock_fd;
    vd_pool *pool;
    vd_database *db;
    vd_metrics *metrics;
    vd_maintenance *maint;
    vd_builder *builder; /* graph indexes built behind the writes */
    vd_memtrim *memtrim; /* gives malloc's kept memory back when idle */
    vd_recall_monitor *recall;
    vd_auth *auth;
    vd_http *http;
    vd_http *qdrant_http; /* the Qdrant-compatible API's listener, or NULL (qdrant_listen empty) */
    vd_store *store;
    vd_feed *feeds[VD_MAX_FEEDS];
    size_t n_feeds;
    vd_jobq *jobs; /* the request workers (server/api.h vd_call_offload) */
    vd_api api; /* the HTTP threads hold a pointer to it */
} vectord;

/* The signals main waits for with sigwait: blocked before any thread starts,
 * so every thread inherits the mask. */
static void block_signals(sigset_t *sigs)
{
    sigemptyset(sigs);
    sigaddset(sigs, SIGINT);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* past a file-size limit, writes fail with EFBIG: a WAL error */
}

/* CPU dispatch (distance kernels, CRC) before any thread runs. */
static void init_cpu(vectord *v)
{
    v->dist = vd_distance_init(v->cfg.simd_isa);
    vd_crc32c_init(true);
    /* The JSON array reader follows the simd setting: scalar or avx2 keeps it portable. */
    vd_json_float_init(v->cfg.simd_isa < 0 || v->cfg.simd_isa >= VD_ISA_AVX512);
    if (v->cfg.simd_isa >= 0 && (int)v->dist->isa != v->cfg.simd_isa)
        vd_log_warn("simd not supported by this cpu, using the best available",
                    "requested=%s using=%s", v->cfg.simd, vd_isa_name(v->dist->isa));
}

/* The data directory's lock, the worker pool and the (empty) database. */
static int open_database(vectord *v)
{
    vd_errmsg em = {{0}};
    if ((v->lock_fd = vd_datadir_lock(v->cfg.data_dir, &em)) < 0) {
        vd_log_error("cannot use data directory", "error=\"%s\"", em.text);
        return -1;
    }
    v->workers = v->cfg.worker_threads ? (unsigned)v->cfg.worker_threads : cores();
    /* The calling HTTP thread works on its own fan-out too, so the pool needs
     * one thread fewer than the cores it should use. */
    if (vd_pool_create(&v->pool, v->workers > 1 ? v->workers - 1 : 0) != 0 ||
        vd_database_create(&v->db, v->pool, v->cfg.max_collections) != 0) {
        vd_log_error("out of memory at start-up", "%s", "");
        return -1;
    }
    char vectors_dir[4200];
    vd_datadir_path(vectors_dir, sizeof vectors_dir, v->cfg.data_dir, VD_DATADIR_VECTORS);
    vd_database_set_backlog_max(v->db, (size_t)v->cfg.index_backlog_max);
    int rc = vd_database_set_vectors_dir(v->db, vectors_dir);
    if (rc) {
        vd_log_error("cannot keep vectors on disk", "dir=%s error=\"%s\"", vectors_dir,
                     strerror(-rc));
        return -1;
    }
    return 0;
}

/* Metrics, compaction, the recall monitor, API keys, and the HTTP server:
 * it answers probes (and 503 not_ready) while recovery runs. */
static int start_serving(vectord *v)
{
    vd_errmsg em = {{0}};
    if (vd_metrics_create(&v->metrics) != 0 ||
        vd_maintenance_start(&v->maint, v->db, v->cfg.compact_interval_ms,
                             (double)v->cfg.compact_min_deleted_pct / 100.0) != 0 ||
        vd_builder_start(&v->builder, v->db, v->workers, VD_BUILDER_IDLE_MS) != 0 ||
        vd_recall_monitor_start(&v->recall, v->cfg.recall_sample_every,
                                (uint32_t)v->cfg.recall_cpu_percent) != 0 ||
        vd_memtrim_start(&v->memtrim, &vd_metrics_http_load(v->metrics)->requests,
                         &vd_metrics_http_load(v->metrics)->body_bytes, VD_MEMTRIM_TICK_MS) != 0) {
        vd_log_error("out of memory at start-up", "%s", "");
        return -1;
    }
    v->api = (vd_api){
        .db = v->db,
        .metrics = v->metrics,
        .simd = vd_isa_name(v->dist->isa),
        .recall = v->recall,
    };
    vd_config_limits(&v->cfg, &v->api.limits);
    vd_metrics_set_recall(v->metrics, v->recall);
    unsigned request_workers = v->cfg.request_workers ? (unsigned)v->cfg.request_workers : cores();
    v->api.max_queued = v->cfg.max_queued_requests;
    /* Nice 5: when the cores are busy with searches, the HTTP threads (probes,
     * cheap routes, reading requests) still get the CPU first. */
    if (vd_jobq_create(&v->jobs, request_workers, v->cfg.max_queued_requests, 5) != 0) {
        vd_log_error("cannot start the request workers", "%s", "");
        return -1;
    }
    v->api.jobs = v->jobs;
    vd_metrics_set_jobs(v->metrics, v->jobs);
    if (vd_auth_create(&v->auth, &v->cfg, &em) != 0) {
        vd_log_error("cannot load the API keys", "error=\"%s\"", em.text);
        return -1;
    }
    v->api.auth = v->auth;
    uint16_t port;
    vd_http_listen native = {.host = v->cfg.host, .port = v->cfg.port, .dialect = VD_DIALECT_NATIVE};
    if (vd_http_start(&v->http, &v->api, &v->cfg, &native, &port, &em) != 0) {
        vd_log_error("cannot start http server", "error=\"%s\"", em.text);
        return -1;
    }
    if (v->cfg.qdrant_listen[0]) {
        uint16_t qport;
        vd_http_listen qdrant = {.host = v->cfg.qdrant_host, .port = v->cfg.qdrant_port,
                                 .dialect = VD_DIALECT_QDRANT};
        if (vd_http_start(&v->qdrant_http, &v->api, &v->cfg, &qdrant, &qport, &em) != 0) {
            vd_log_error("cannot start the Qdrant API's listener", "error=\"%s\"", em.text);
            return -1;
        }
        vd_log_info("listening (Qdrant API)", "addr=%s:%u", v->cfg.qdrant_host, qport);
    }
    vd_log_info("listening", "addr=%s:%u data_dir=\"%s\" simd=%s http_threads=%llu workers=%u "
                "version=%s tls=%s",
                v->cfg.host, port, v->cfg.data_dir, vd_isa_name(v->dist->isa),
                (unsigned long long)(v->cfg.http_threads ? v->cfg.http_threads : cores()),
                v->workers, VECTORD_VERSION, vd_http_tls(v->http) ? "on" : "off");
    return 0;
}

/* Recovery (snapshots, then the WAL) and the store that every write goes
 * through from then on. */
static int recover(vectord *v, vd_recovery_report *rep)
{
    vd_errmsg em = {{0}};
    vd_store_options so = {
        .data_dir = v->cfg.data_dir,
        .fsync = v->cfg.wal_fsync_policy,
        .batch_ms = (uint32_t)v->cfg.wal_batch_ms,
        .segment_bytes = v->cfg.wal_segment_bytes,
        .wal_io = v->cfg.wal_io,
        .accept_data_loss = v->cfg.accept_data_loss != 0,
        .checkpoint_interval_s = v->cfg.checkpoint_interval_s,
        .checkpoint_wal_bytes = v->cfg.checkpoint_wal_bytes,
        .checkpoint_wal_pct = v->cfg.checkpoint_wal_pct,
        .checkpoint_bulk_wal_pct = v->cfg.checkpoint_bulk_wal_pct,
    };
    if (vd_store_open(&v->store, v->db, &so, rep, &em) != 0) {
        vd_log_error("recovery failed, not starting", "error=\"%s\"", em.text);
        return -1;
    }
    vd_metrics_set_recovery(v->metrics, rep);
    v->api.journal = vd_store_journal(v->store);
    v->api.store = v->store;
    vd_metrics_set_store(v->metrics, v->store);
    return 0;
}

/* One thread per configured Postgres feed. */
static int start_feeds(vectord *v)
{
    vd_errmsg em = {{0}};
    for (size_t k = 0; k < v->cfg.n_feeds; k++) {
        const vd_feed_settings *fs = &v->cfg.feeds[k];
        if (!fs->dsn[0])
            continue;
        cJSON *doc = NULL;
        vd_collection_config create;
        if (vd_config_feed_collection(fs, &v->api.limits, &doc, &create, &em) != 0) {
            cJSON_Delete(doc);
            vd_log_error("cannot start the feed", "section=%s error=\"%s\"", fs->section, em.text);
            return -1;
        }
        vd_feed_config fc = {
            .name = fs->name, .dsn = fs->dsn, .table = fs->table, .collection = fs->collection,
            .id_column = fs->id_column, .embedding_column = fs->embedding_column,
            .version_column = fs->version_column, .payload_columns = fs->payload_columns,
            .payload_exclude = fs->payload_exclude,
            .logical = strcmp(fs->source, "logical") == 0, .slot = fs->slot,
            .publication = fs->publication,
            .partition = fs->partition_value, .partition_column = fs->partition_column,
            .create = &create,
            .batch_rows = (uint32_t)fs->batch_rows,
            .backfill_connections = (uint32_t)fs->backfill_connections, .poll_ms = (uint32_t)fs->poll_ms,
            .max_lag_s = (uint32_t)fs->max_lag_s, .position_ready_s = (uint32_t)fs->position_ready_s,
            .pool = v->pool,
        };
        int rc = vd_feed_start(&v->feeds[v->n_feeds], &fc, v->db, v->api.journal, &em);
        cJSON_Delete(doc); /* the feed copied what it keeps */
        if (rc != 0) {
            vd_log_error("cannot start the feed", "section=%s error=\"%s\"", fs->section, em.text);
            return -1;
        }
        v->n_feeds++;
    }
    v->api.feeds = v->feeds;
    v->api.n_feeds = v->n_feeds;
    vd_metrics_set_feeds(v->metrics, v->feeds, v->n_feeds);
    return 0;
}

/* Ready: serve until SIGTERM or SIGINT, reloading on SIGHUP. */
static int serve(vectord *v, const vd_recovery_report *rep, sigset_t *sigs, int argc, char **argv)
{
    atomic_store(&v->api.ready, true);
    vd_log_info("ready", "recovery_s=%.3f snapshots=%zu wal_segments=%zu wal_records=%llu "
                "wal_bytes=%llu truncated_bytes=%llu next_lsn=%llu wal_io=%s wal_fsync=%s",
                rep->snapshot_seconds + rep->replay_seconds, rep->snapshots, rep->segments,
                (unsigned long long)rep->records, (unsigned long long)rep->bytes,
                (unsigned long long)rep->truncated_bytes, (unsigned long long)rep->next_lsn,
                vd_store_wal_io(v->store), v->cfg.wal_fsync);
    int sig = 0;
    for (;;) {
        sigwait(sigs, &sig);
        if (sig != SIGHUP)
            break;
        reload(&v->cfg, argc, argv, v->auth);
    }
    atomic_store(&v->api.ready, false);
    vd_log_info("shutting down", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return sig;
}

/* Stops what started, in reverse; a clean stop checkpoints. */
static void shut_down(vectord *v, bool clean)
{
    for (size_t k = 0; k < v->n_feeds; k++)
        vd_feed_stop(v->feeds[k]); /* before the store: they write through the journal */
    vd_http_stop(v->qdrant_http);
    vd_http_stop(v->http); /* parked writes finish first: the WAL is still open */
    vd_jobq_destroy(v->jobs); /* idle: vd_http_stop waited for it */
    for (size_t k = 0; k < v->n_feeds; k++)
        vd_feed_free(v->feeds[k]); /* after the HTTP threads: their requests may read a feed */
    vd_maintenance_stop(v->maint);
    vd_memtrim_stop(v->memtrim);
    vd_builder_stop(v->builder);
    vd_recall_monitor_stop(v->recall); /* holds collection references */
    vd_store_close(v->store, clean);
    vd_database_destroy(v->db);
    vd_auth_destroy(v->auth);
    vd_pool_destroy(v->pool);
    vd_metrics_destroy(v->metrics);
    if (v->lock_fd >= 0)
        close(v->lock_fd);
    if (clean)
        vd_log_info("stopped", "%s", "");
}

int main(int argc, char **argv)
{
    vectord v = {.lock_fd = -1};
    vd_config_action action;
    vd_errmsg em = {{0}};
    if (vd_config_load(&v.cfg, argc, argv, environ, &action, &em) != 0) {
        fprintf(stderr, "vectord: %s\n", em.text);
        return 2;
    }
    switch (action) {
    case VD_CONFIG_HELP:
        vd_config_usage(stdout);
        return 0;
    case VD_CONFIG_VERSION:
        printf("vectord %s\n", VECTORD_VERSION);
        return 0;
    case VD_CONFIG_PRINT:
        vd_config_print(&v.cfg, stdout);
        return 0;
    case VD_CONFIG_RUN:
        break;
    }
    vd_log_set_level(v.cfg.log_level_value);
    vd_log_set_format(v.cfg.log_format_value);
    if (v.cfg.unknown_env[0]) /* a typo such as VECTORD_LISTN would otherwise pass unseen */
        vd_log_warn("environment variables that name no setting are ignored (see --help)",
                    "variables=%s", v.cfg.unknown_env);
    raise_fd_limit(&v.cfg);
    vd_memtrim_tune();
    sigset_t sigs;
    block_signals(&sigs);
    init_cpu(&v);
    vd_recovery_report rep;
    bool ok = open_database(&v) == 0 && start_serving(&v) == 0 && recover(&v, &rep) == 0 &&
              start_feeds(&v) == 0;
    if (ok)
        serve(&v, &rep, &sigs, argc, argv);
    shut_down(&v, ok);
    return ok ? 0 : 1;
}

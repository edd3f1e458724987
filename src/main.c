/*
 * main.c — wires vectord together: configuration, CPU dispatch, the data
 * directory lock, the worker pool, the database, metrics and the HTTP server;
 * then waits for SIGTERM/SIGINT and shuts down in reverse order.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/database.h"
#include "db/maintenance.h"
#include "db/recall_monitor.h"
#include "db/store.h"
#include "feed/pg_feed.h"
#include "server/api.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/http.h"
#include "server/metrics.h"
#include "util/log.h"
#include "util/pool.h"
#include "vectord/crc32c.h"
#include "vectord/distance.h"

extern char **environ;

/* Creates the data directory (and parents) and takes an exclusive lock on
 * DIR/LOCK so two servers never share one directory. Returns the lock fd. */
static int lock_data_dir(const char *dir, vd_errmsg *em)
{
    char path[1100];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0750) != 0 && errno != EEXIST)
            return vd_fail(em, -errno, "cannot create data_dir '%s': %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0750) != 0 && errno != EEXIST)
        return vd_fail(em, -errno, "cannot create data_dir '%s': %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return vd_fail(em, -errno, "cannot open '%s': %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return vd_fail(em, -e, "data_dir '%s' is locked by another vectord (%s)", dir,
                       strerror(e));
    }
    return fd;
}

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
    vd_log_level level;
    vd_log_level_parse(cfg.log_level, &level);
    vd_log_set_level(level);
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
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        rl.rlim_cur = was;
    if (rl.rlim_cur < want)
        vd_log_warn("the open-file limit is below what max_connections needs: connections past it "
                    "are refused (raise ulimit -n / LimitNOFILE)",
                    "limit=%llu needed=%llu max_connections=%llu", (unsigned long long)rl.rlim_cur,
                    (unsigned long long)want, (unsigned long long)cfg->max_connections);
}

int main(int argc, char **argv)
{
    vd_config cfg;
    vd_config_action action;
    vd_errmsg em = {{0}};
    int status = 1, lock_fd = -1;
    vd_pool *pool = NULL;
    vd_database *db = NULL;
    vd_metrics *metrics = NULL;
    vd_http *http = NULL;
    vd_auth *auth = NULL;
    vd_maintenance *maint = NULL;
    vd_recall_monitor *recall = NULL;
    vd_store *store = NULL;
    vd_feed *feeds[VD_MAX_FEEDS] = {0};
    size_t n_feeds = 0;

    if (vd_config_load(&cfg, argc, argv, environ, &action, &em) != 0) {
        fprintf(stderr, "vectord: %s\n", em.text);
        return 2;
    }
    if (action == VD_CONFIG_HELP) {
        vd_config_usage(stdout);
        return 0;
    }
    if (action == VD_CONFIG_VERSION) {
        printf("vectord %s\n", VECTORD_VERSION);
        return 0;
    }
    if (action == VD_CONFIG_PRINT) {
        vd_config_print(&cfg, stdout);
        return 0;
    }
    vd_log_level level;
    vd_log_level_parse(cfg.log_level, &level);
    vd_log_set_level(level);
    raise_fd_limit(&cfg);

    /* Signals are handled by sigwait() below; block them before any thread
     * starts so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* past a file-size limit, writes fail with EFBIG: a WAL error */

    int isa;
    vd_isa_parse(cfg.simd, &isa);
    const vd_distance_table *dist = vd_distance_init(isa);
    vd_crc32c_init(true);
    if (isa >= 0 && (int)dist->isa != isa)
        vd_log_warn("simd not supported by this cpu, using the best available",
                    "requested=%s using=%s", cfg.simd, vd_isa_name(dist->isa));

    if ((lock_fd = lock_data_dir(cfg.data_dir, &em)) < 0) {
        vd_log_error("cannot use data directory", "error=\"%s\"", em.text);
        goto out;
    }
    char vectors_dir[4200];
    snprintf(vectors_dir, sizeof vectors_dir, "%s/vectors", cfg.data_dir);
    unsigned workers = cfg.worker_threads ? (unsigned)cfg.worker_threads : cores();
    /* The calling HTTP thread works on its own fan-out too, so the pool needs
     * one thread fewer than the cores it should use. */
    int vrc;
    if (vd_pool_create(&pool, workers > 1 ? workers - 1 : 0) != 0 ||
        vd_database_create(&db, pool, cfg.max_collections) != 0)
        goto oom;
    if ((vrc = vd_database_set_vectors_dir(db, vectors_dir)) != 0) {
        vd_log_error("cannot keep vectors on disk", "dir=%s error=\"%s\"", vectors_dir,
                     strerror(-vrc));
        goto out;
    }
    if (
        vd_metrics_create(&metrics) != 0 ||
        vd_maintenance_start(&maint, db, cfg.compact_interval_ms,
                             (double)cfg.compact_min_deleted_pct / 100.0) != 0 ||
        vd_recall_monitor_start(&recall, cfg.recall_sample_every) != 0) {
    oom:
        vd_log_error("out of memory at start-up", "%s", "");
        goto out;
    }
    vd_api api = {
        .db = db,
        .metrics = metrics,
        .simd = vd_isa_name(dist->isa),
        .recall = recall,
    };
    vd_config_limits(&cfg, &api.limits);
    vd_metrics_set_recall(metrics, recall);
    if (vd_auth_create(&auth, &cfg, &em) != 0) {
        vd_log_error("cannot load the API keys", "error=\"%s\"", em.text);
        goto out;
    }
    api.auth = auth;
    uint16_t port;
    if (vd_http_start(&http, &api, &cfg, &port, &em) != 0) {
        vd_log_error("cannot start http server", "error=\"%s\"", em.text);
        goto out;
    }
    vd_log_info("listening", "addr=%s:%u data_dir=\"%s\" simd=%s http_threads=%llu workers=%u "
                "version=%s tls=%s",
                cfg.host, port, cfg.data_dir, vd_isa_name(dist->isa),
                (unsigned long long)(cfg.http_threads ? cfg.http_threads : cores()), workers,
                VECTORD_VERSION, vd_http_tls(http) ? "on" : "off");


    /* Recovery runs with the HTTP server up, so probes see /healthz live and
     * /readyz not ready; other routes answer 503 not_ready meanwhile. */
    vd_recovery_report rep;
    vd_store_options so = {
        .data_dir = cfg.data_dir,
        .fsync = strcmp(cfg.wal_fsync, "always") == 0  ? VD_FSYNC_ALWAYS
                 : strcmp(cfg.wal_fsync, "batch") == 0 ? VD_FSYNC_BATCH
                                                        : VD_FSYNC_NONE,
        .batch_ms = (uint32_t)cfg.wal_batch_ms,
        .segment_bytes = cfg.wal_segment_bytes,
        .wal_io = cfg.wal_io,
        .accept_data_loss = cfg.accept_data_loss != 0,
        .checkpoint_interval_s = cfg.checkpoint_interval_s,
        .checkpoint_wal_bytes = cfg.checkpoint_wal_bytes,
    };
    if (vd_store_open(&store, db, &so, &rep, &em) != 0) {
        vd_log_error("recovery failed, not starting", "error=\"%s\"", em.text);
        goto out;
    }
    vd_metrics_set_recovery(metrics, &rep);
    api.journal = vd_store_journal(store);
    api.store = store;
    vd_metrics_set_store(metrics, store);
    for (size_t k = 0; k < cfg.n_feeds; k++) {
        const vd_feed_settings *fs = &cfg.feeds[k];
        if (!fs->dsn[0])
            continue;
        vd_metric fm;
        vd_metric_parse(fs->metric, &fm);
        vd_feed_config fc = {
            .name = fs->name, .dsn = fs->dsn, .table = fs->table, .collection = fs->collection,
            .id_column = fs->id_column, .embedding_column = fs->embedding_column,
            .version_column = fs->version_column, .payload_columns = fs->payload_columns,
            .dim = (uint32_t)fs->dim, .metric = fm, .batch_rows = (uint32_t)fs->batch_rows,
            .poll_ms = (uint32_t)fs->poll_ms, .max_lag_s = (uint32_t)fs->max_lag_s,
        };
        if (vd_feed_start(&feeds[n_feeds], &fc, db, api.journal, &em) != 0) {
            vd_log_error("cannot start the feed", "section=%s error=\"%s\"", fs->section, em.text);
            goto out;
        }
        n_feeds++;
    }
    api.feeds = feeds;
    api.n_feeds = n_feeds;
    vd_metrics_set_feeds(metrics, feeds, n_feeds);
    atomic_store(&api.ready, true);
    vd_log_info("ready", "recovery_s=%.3f snapshots=%zu wal_segments=%zu wal_records=%llu "
                "wal_bytes=%llu truncated_bytes=%llu next_lsn=%llu wal_io=%s wal_fsync=%s",
                rep.snapshot_seconds + rep.replay_seconds, rep.snapshots, rep.segments,
                (unsigned long long)rep.records, (unsigned long long)rep.bytes,
                (unsigned long long)rep.truncated_bytes, (unsigned long long)rep.next_lsn,
                vd_store_wal_io(store), cfg.wal_fsync);

    int sig = 0;
    for (;;) {
        sigwait(&sigs, &sig);
        if (sig != SIGHUP)
            break;
        reload(&cfg, argc, argv, auth);
    }
    atomic_store(&api.ready, false);
    vd_log_info("shutting down", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    status = 0;
out:
    for (size_t k = 0; k < n_feeds; k++)
        vd_feed_stop(feeds[k]); /* before the store: they write through the journal */
    vd_http_stop(http); /* parked writes finish first: the WAL is still open */
    for (size_t k = 0; k < n_feeds; k++)
        vd_feed_free(feeds[k]); /* after the HTTP threads: their requests may read a feed */
    vd_maintenance_stop(maint);
    vd_recall_monitor_stop(recall); /* holds collection references */
    vd_store_close(store, status == 0);
    vd_database_destroy(db);
    vd_auth_destroy(auth);
    vd_pool_destroy(pool);
    vd_metrics_destroy(metrics);
    if (lock_fd >= 0)
        close(lock_fd);
    if (status == 0)
        vd_log_info("stopped", "%s", "");
    return status;
}

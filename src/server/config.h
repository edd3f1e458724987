/*
 * config.h — vectord's settings and where they come from.
 *
 * Precedence: command-line flags > VECTORD_* environment variables > the
 * config file (--config / VECTORD_CONFIG, INI format parsed by inih) >
 * built-in defaults. One table in config.c lists every setting with its
 * section, default, range and help text; the file parser, the environment
 * reader, --set, --print-config and docs/CONFIG.md all follow it.
 */
#ifndef VD_CONFIG_H
#define VD_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "util/log.h"
#include "util/partition.h"
#include "vectord/error.h"
#include "vectord/types.h"
#include "vectord/wal.h"

/* One Postgres feed's settings (docs/FEED.md); a feed runs when dsn is set. */
#define VD_MAX_FEEDS 8
typedef struct vd_feed_settings {
    char section[80]; /* "feed" or "feed.NAME" */
    char dsn[1024];
    char name[65];
    char table[128];
    char collection[65];
    char id_column[128];
    char embedding_column[128];
    char version_column[128];
    char payload_columns[1024];
    char payload_exclude[1024];
    char source[16];      /* outbox | logical */
    char slot[64];        /* logical: replication slot ("" = vectord_<name>) */
    char publication[64]; /* logical: publication */
    char partition[24];   /* "i/N" or "" (docs/PARTITIONS.md) */
    char partition_column[128];
    char collection_config[4096]; /* JSON: the create body for a collection the feed makes */
    char metric[16];
    uint64_t dim;
    uint64_t batch_rows;
    uint64_t backfill_connections;
    uint64_t poll_ms;
    uint64_t max_lag_s;
    uint64_t position_ready_s;
    vd_metric metric_value; /* metric, validated */
    vd_partition partition_value; /* partition, validated */
} vd_feed_settings;

/* Which requests get an access log line (setting access_log). */
typedef enum vd_access_log {
    VD_ACCESS_LOG_NONE = 0,
    VD_ACCESS_LOG_ERRORS = 1, /* answers with status 400 and above */
    VD_ACCESS_LOG_ALL = 2,
} vd_access_log;

typedef struct vd_config {
    char listen[128];
    char qdrant_listen[128];
    char data_dir[1024];
    char log_level[16];
    char log_format[16];
    char access_log[16];
    char simd[16];
    char api_key[513];
    char read_api_key[513];
    char api_key_file[1024];
    char read_api_key_file[1024];
    uint64_t auth_open_probes;
    uint64_t auth_open_metrics;
    char wal_fsync[16];
    char wal_io[16];
    uint64_t wal_batch_ms;
    uint64_t wal_segment_bytes;
    uint64_t checkpoint_interval_s;
    uint64_t checkpoint_wal_bytes;
    uint64_t checkpoint_wal_pct;
    uint64_t checkpoint_bulk_wal_pct;
    uint64_t accept_data_loss;
    char unknown_env[512]; /* VECTORD_* variables that name no setting (comma-separated) */
    /* feeds[0] is section [feed] (also VECTORD_FEED_* and --set feed_*);
     * feeds[1..] come from config-file sections [feed.NAME]. */
    vd_feed_settings feeds[VD_MAX_FEEDS];
    size_t n_feeds;
    uint64_t http_threads;
    uint64_t worker_threads;
    uint64_t request_workers;
    uint64_t max_queued_requests;
    uint64_t max_connections;
    uint64_t connection_timeout_s;
    uint64_t request_head_timeout_s;
    uint64_t request_body_min_rate;
    uint64_t max_waiting_requests;
    uint64_t max_inflight_body_bytes;
    char tls_cert_file[1024];
    char tls_key_file[1024];
    uint64_t max_body_bytes;
    uint64_t max_batch_points;
    uint64_t max_batch_searches;
    uint64_t max_filter_terms;
    uint64_t max_response_bytes;
    uint64_t request_timeout_ms;
    uint64_t max_k;
    uint64_t max_dim;
    uint64_t max_collections;
    uint64_t max_filter_depth;
    uint64_t default_shards;
    uint64_t compact_interval_ms;
    uint64_t compact_min_deleted_pct;
    uint64_t index_backlog_max;
    uint64_t recall_sample_every;
    uint64_t recall_cpu_percent;
    /* Typed forms of the settings above, filled once they are validated:
     * the rest of vectord reads these, never the strings again. */
    vd_log_level log_level_value;
    vd_log_format log_format_value;
    vd_access_log access_log_value;
    int simd_isa;                /* vd_isa_parse: -1 = the best the CPU has */
    vd_fsync_policy wal_fsync_policy;
    /* derived from listen and qdrant_listen */
    char host[96];
    uint16_t port;
    char qdrant_host[96];
    uint16_t qdrant_port;
    char config_file[1024];
} vd_config;

typedef enum vd_config_action {
    VD_CONFIG_RUN = 0,
    VD_CONFIG_HELP,
    VD_CONFIG_VERSION,
    VD_CONFIG_PRINT,
} vd_config_action;

/* Fills cfg from defaults, file, environment (envp, NULL-terminated) and argv.
 * Returns 0 or VD_E_INVALID_REQUEST with em naming the bad setting. */
int vd_config_load(vd_config *cfg, int argc, char **argv, char **envp, vd_config_action *action,
                   vd_errmsg *em);
struct vd_limits;
/* The request limits (server/request.h) the configuration sets. */
void vd_config_limits(const vd_config *cfg, struct vd_limits *out);
struct vd_collection_config;
struct cJSON;
/* The collection feed fs creates when its target is missing (and the payload
 * indexes it adds to one that exists): feed_collection_config, a body of
 * PUT /collections/{c}, with dim and metric from feed_dim and feed_metric
 * unless it names them. out->dim is 0 when neither gives a dimension (the
 * feed then does not create). out's strings borrow from *doc (cJSON_Delete
 * it after). VD_E_INVALID_REQUEST naming the section and the field. */
int vd_config_feed_collection(const vd_feed_settings *fs, const struct vd_limits *lim,
                              struct cJSON **doc, struct vd_collection_config *out,
                              vd_errmsg *em);
/* Writes the effective configuration in config-file format. */
void vd_config_print(const vd_config *cfg, FILE *out);
void vd_config_usage(FILE *out);

#endif

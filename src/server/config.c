/* config.c — see config.h. */
#include "server/config.h"

#include <errno.h>
#include <inttypes.h>
#include <ini.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/collection.h"
#include "server/request.h"
#include "util/log.h"
#include "vectord/distance.h"
#include "vectord/types.h"

typedef enum setting_type { SET_STR, SET_UINT } setting_type;

typedef struct setting {
    const char *section;
    const char *name;
    setting_type type;
    bool per_feed; /* also in each [feed.NAME] section, at offset + k * sizeof(vd_feed_settings) */
    size_t offset;
    size_t size; /* for strings: buffer size */
    const char *def;
    uint64_t min, max;
    const char *help;
} setting;

#define STR(sec, name, def, help) \
    {sec, #name, SET_STR, false, offsetof(vd_config, name), sizeof(((vd_config *)0)->name), def, 0, 0, help}
#define UINT(sec, name, def, lo, hi, help) \
    {sec, #name, SET_UINT, false, offsetof(vd_config, name), 0, #def, lo, hi, help}
#define FEED_STR(field, def, help)                                                              \
    {"feed", "feed_" #field, SET_STR, true, offsetof(vd_config, feeds[0].field),               \
     sizeof(((vd_config *)0)->feeds[0].field), def, 0, 0, help}
#define FEED_UINT(field, def, lo, hi, help) \
    {"feed", "feed_" #field, SET_UINT, true, offsetof(vd_config, feeds[0].field), 0, #def, lo, hi, help}

static const setting settings[] = {
    STR("server", listen, "127.0.0.1:6480", "HOST:PORT to listen on (port 0 = any free port)"),
    STR("server", qdrant_listen, "",
        "HOST:PORT for the Qdrant-compatible REST API (docs/QDRANT.md; e.g. 127.0.0.1:6333); empty = off"),
    STR("server", log_level, "info", "debug | info | warn | error"),
    STR("server", log_format, "logfmt", "logfmt | json: one key=value line or one JSON object per entry"),
    STR("server", access_log, "errors",
        "none | errors | all: a line per request answered (errors: status 400 and above)"),
    UINT("server", http_threads, 0, 0, 256, "HTTP event-loop threads (epoll each); 0 = one per core"),
    UINT("server", worker_threads, 0, 0, 256, "worker pool for shard fan-out; 0 = one per core"),
    UINT("server", request_workers, 0, 0, 256,
         "threads that run searches off the HTTP threads; 0 = one per core"),
    UINT("server", max_queued_requests, 256, 1, 1000000,
         "searches queued or running on the request workers; more get 503 overloaded"),
    UINT("server", max_connections, 1024, 1, 1000000,
         "open HTTP connections served; past it requests get 503 overloaded (probes excepted)"),
    UINT("server", connection_timeout_s, 60, 1, 86400,
         "seconds a connection may wait, idle or sending its request line, before it is closed"),
    UINT("server", request_head_timeout_s, 10, 1, 3600,
         "seconds from a request line to the end of its headers"),
    UINT("server", request_body_min_rate, 16384, 0, 1073741824,
         "bytes per second a request body must average after request_head_timeout_s (0 = any)"),
    UINT("server", max_waiting_requests, 4096, 1, 1000000,
         "requests parked until the WAL or the feed catches up; more get 503 overloaded"),
    UINT("server", max_inflight_body_bytes, 1073741824, 1024, 1099511627776ULL,
         "request body bytes held in memory across all connections; more get 503 overloaded"),
    STR("security", tls_cert_file, "", "PEM certificate (chain) file; with tls_key_file, serve HTTPS only"),
    STR("security", tls_key_file, "", "PEM private key file (unencrypted) for tls_cert_file"),
    STR("security", api_key, "", "admin API key (every route); set either key to turn auth on"),
    STR("security", read_api_key, "", "read-only API key (gets, lists, searches)"),
    STR("security", api_key_file, "", "file holding the admin key (e.g. a mounted Secret), if api_key is empty"),
    STR("security", read_api_key_file, "", "file holding the read-only key, if read_api_key is empty"),
    UINT("security", auth_open_probes, 1, 0, 1, "1 = /healthz and /readyz need no key"),
    UINT("security", auth_open_metrics, 1, 0, 1, "1 = /metrics needs no key"),
    STR("storage", data_dir, "./data", "data directory (created if missing, locked while running)"),
    STR("storage", wal_fsync, "always",
        "always: answer a write once fdatasync'ed (group commit) | batch: answer once written, "
        "fdatasync at least every wal_batch_ms | none: never fdatasync (the OS flushes)"),
    UINT("storage", wal_batch_ms, 10, 1, 60000, "with wal_fsync=batch: the longest a write stays unsynced, in ms"),
    STR("storage", wal_io, "auto", "auto (io_uring, else pwrite) | io_uring | pwrite"),
    UINT("storage", wal_segment_bytes, 67108864, 65536, 4294967295ULL, "WAL segment size before a new one starts"),
    UINT("storage", checkpoint_interval_s, 300, 0, 604800,
         "snapshot changed collections this often, in seconds; 0 = only on demand and at shutdown"),
    UINT("storage", checkpoint_wal_bytes, 268435456, 0, 1099511627776ULL,
         "also snapshot once this many WAL bytes were written since the last checkpoint; 0 = off"),
    UINT("storage", checkpoint_wal_pct, 100, 0, 100000,
         "the WAL-size trigger waits, besides, for WAL bytes of this percentage of what the last "
         "checkpoint wrote (growing data: snapshot cost stays proportional to writes); 0 = off"),
    UINT("storage", checkpoint_bulk_wal_pct, 400, 0, 100000,
         "checkpoint_wal_pct while a bulk load runs (a Postgres feed's backfill): fewer rewrites "
         "of the growing snapshot, more WAL to replay after a crash meanwhile"),
    UINT("storage", accept_data_loss, 0, 0, 1,
         "1 = start even if the WAL or a snapshot is corrupt, dropping what cannot be read"),
    UINT("limits", max_body_bytes, 67108864, 1024, 4294967295ULL, "largest request body in bytes"),
    UINT("limits", max_batch_points, 4096, 1, 1000000, "points in one upsert or delete request"),
    UINT("limits", max_batch_searches, 256, 1, 100000, "searches in one search/batch request"),
    UINT("limits", max_k, 1000, 1, 100000, "largest k of a search"),
    UINT("limits", max_dim, 4096, 1, VD_DIM_MAX, "largest vector dimension of a collection"),
    UINT("limits", max_collections, 1000, 1, 1000000, "collections per server"),
    UINT("limits", max_filter_depth, 8, 1, 64, "nesting depth of filter groups"),
    UINT("limits", max_filter_terms, 4096, 1, 1000000,
         "conditions plus match values in one filter (its cost per point)"),
    UINT("limits", max_response_bytes, 67108864, 65536, 17179869184ULL,
         "largest answer in bytes, checked before a search runs (k × vectors) and as it renders"),
    UINT("limits", request_timeout_ms, 30000, 10, 3600000,
         "longest a request may run; ?timeout_ms= asks for less"),
    FEED_STR(dsn, "", "PostgreSQL connection string; set = the feed runs (see docs/FEED.md)"),
    FEED_STR(source, "outbox",
             "outbox: triggers fill vectord_outbox (deploy/sql) | logical: a publication and a "
             "replication slot (wal_level = logical)"),
    FEED_STR(slot, "", "logical: the replication slot vectord creates and follows (empty = vectord_<feed_name>)"),
    FEED_STR(publication, "vectord", "logical: the publication that holds the table"),
    FEED_STR(partition, "",
             "i/N: follow only partition i of N, by the hash of feed_partition_column (empty = every row; "
             "see docs/PARTITIONS.md)"),
    FEED_STR(partition_column, "userId", "the tenant column that places a row in a partition"),
    FEED_STR(name, "vectord", "this consumer's name in vectord_feed_position (unique per replica)"),
    FEED_STR(table, "Memory", "source table"),
    FEED_STR(collection, "memories", "target collection"),
    FEED_STR(id_column, "id", "id column of the source table"),
    FEED_STR(embedding_column, "embedding", "embedding column: JSON array text or pgvector"),
    FEED_STR(version_column, "updatedAt", "version column (integer or timestamp); empty = none"),
    FEED_STR(payload_columns, "",
             "comma-separated payload columns; empty = all but the embedding, pgvector columns and "
             "feed_payload_exclude"),
    FEED_STR(payload_exclude, "",
             "comma-separated columns left out of the default payload (e.g. an old embedding column)"),
    FEED_UINT(dim, 0, 0, 65536, "dimension for creating the collection when it is missing (0 = do not)"),
    FEED_STR(collection_config, "",
             "JSON body of PUT /collections/{c} for the collection the feed creates (index, "
             "quantization, shards, payload_indexes); its payload_indexes are also added to an "
             "existing one. Empty = HNSW with the defaults"),
    FEED_STR(metric, "cosine", "metric for creating the collection: cosine | dot | l2"),
    FEED_UINT(batch_rows, 2000, 1, 100000, "rows per backfill page and per follow round"),
    FEED_UINT(backfill_connections, 2, 1, 8,
              "connections the backfill reads pages over at once (each page's rows are detoasted by "
              "its own Postgres backend)"),
    FEED_UINT(poll_ms, 1000, 10, 600000, "poll the outbox this often when no NOTIFY arrives"),
    FEED_UINT(max_lag_s, 0, 0, 86400,
              "/readyz fails while the feed is further behind than this (0 = the feed never affects readiness)"),
    FEED_UINT(position_ready_s, 0, 0, 86400,
              "/readyz fails while the position has not reached vectord_feed_position for this long (0 = never)"),
    UINT("index", default_shards, 1, 1, 64, "shards of a collection created without \"shards\""),
    STR("index", simd, "auto", "distance kernels: auto | avx512 | avx2 | scalar"),
    UINT("index", compact_interval_ms, 1000, 0, 86400000,
         "how often to look for indexes to compact, in ms; 0 = never"),
    UINT("index", compact_min_deleted_pct, 10, 0, 100,
         "compact a shard's HNSW graph when deleted points are this % of its nodes"),
    UINT("index", index_backlog_max, 1000000, 0, 100000000,
         "per shard, searchable points that may wait for the graph (scanned exactly meanwhile) before writes build it themselves; 0 = every write waits for its graph insertion"),
    UINT("quality", recall_sample_every, 1000, 0, 1000000000,
         "re-run one search in this many exactly, in the background, to measure recall; 0 = off"),
    UINT("quality", recall_cpu_percent, 5, 1, 100,
         "the recall monitor's CPU budget, in percent of one core (searches go unsampled while it is spent); 100 = no limit"),
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

static const setting *find_setting(const char *section, const char *name)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0 &&
            (!section || strcmp(settings[i].section, section) == 0))
            return &settings[i];
    return NULL;
}

/* Sets s in cfg, or for a per-feed setting in cfg->feeds[feed]. */
static int set_feed_value(vd_config *cfg, const setting *s, size_t feed, const char *value,
                          const char *origin, vd_errmsg *em)
{
    char *field = (char *)cfg + s->offset + feed * sizeof(vd_feed_settings);
    if (s->type == SET_STR) {
        if (strlen(value) >= s->size)
            return vd_fail(em, VD_E_INVALID_REQUEST, "%s: %s is longer than %zu bytes", origin,
                           s->name, s->size - 1);
        strcpy(field, value);
        return 0;
    }
    char *end;
    errno = 0;
    if (!*value || *value == '-')
        goto bad;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || *end || v < s->min || v > s->max)
        goto bad;
    *(uint64_t *)(void *)field = v;
    return 0;
bad:
    return vd_fail(em, VD_E_INVALID_REQUEST, "%s: %s must be an integer from %llu to %llu, got '%s'",
                   origin, s->name, (unsigned long long)s->min, (unsigned long long)s->max, value);
}

static int set_value(vd_config *cfg, const setting *s, const char *value, const char *origin,
                     vd_errmsg *em)
{
    return set_feed_value(cfg, s, 0, value, origin, em);
}

/* The feed of section "feed.NAME", added (with the defaults, and NAME as its
 * consumer name) the first time. -1 if there is no room. */
static int extra_feed(vd_config *cfg, const char *section, vd_errmsg *em)
{
    for (size_t k = 1; k < cfg->n_feeds; k++)
        if (strcmp(cfg->feeds[k].section, section) == 0)
            return (int)k;
    const char *name = section + 5;
    bool ok = *name && strlen(name) <= 64;
    for (const char *p = name; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '_' || *p == '-';
    if (!ok) {
        vd_fail(em, VD_E_INVALID_REQUEST, "%s: section [%s]: a feed name is 1..64 of [A-Za-z0-9_-]",
                cfg->config_file, section);
        return -1;
    }
    if (cfg->n_feeds == VD_MAX_FEEDS) {
        vd_fail(em, VD_E_INVALID_REQUEST, "%s: at most %d feeds", cfg->config_file, VD_MAX_FEEDS);
        return -1;
    }
    size_t k = cfg->n_feeds++;
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (settings[i].per_feed)
            set_feed_value(cfg, &settings[i], k, settings[i].def, "default", NULL);
    snprintf(cfg->feeds[k].section, sizeof cfg->feeds[k].section, "%s", section);
    snprintf(cfg->feeds[k].name, sizeof cfg->feeds[k].name, "%s", name);
    return (int)k;
}

typedef struct file_ctx {
    vd_config *cfg;
    vd_errmsg *em;
    int rc;
} file_ctx;

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    file_ctx *fc = user;
    if (fc->rc)
        return 0;
    if (strncmp(section, "feed.", 5) == 0) {
        const setting *fs = find_setting("feed", name);
        int k = extra_feed(fc->cfg, section, fc->em);
        if (k < 0) {
            fc->rc = VD_E_INVALID_REQUEST;
            return 0;
        }
        if (!fs) {
            fc->rc = vd_fail(fc->em, VD_E_INVALID_REQUEST, "%s: unknown setting [%s] %s",
                             fc->cfg->config_file, section, name);
            return 0;
        }
        char origin[1200];
        snprintf(origin, sizeof origin, "%s [%s]", fc->cfg->config_file, section);
        fc->rc = set_feed_value(fc->cfg, fs, (size_t)k, value, origin, fc->em);
        return fc->rc == 0;
    }
    const setting *s = find_setting(section, name);
    if (!s) {
        fc->rc = vd_fail(fc->em, VD_E_INVALID_REQUEST, "%s: unknown setting [%s] %s",
                         fc->cfg->config_file, section, name);
        return 0;
    }
    char origin[1100];
    snprintf(origin, sizeof origin, "%s [%s]", fc->cfg->config_file, section);
    fc->rc = set_value(fc->cfg, s, value, origin, fc->em);
    return fc->rc == 0;
}

/* "HOST:PORT" into host and port; -1 if it is not that. */
static int split_listen(const char *listen, char *host, size_t host_cap, uint16_t *port)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= host_cap)
        return -1;
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno || !colon[1] || *end || p > 65535)
        return -1;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    *port = (uint16_t)p;
    return 0;
}

static int validate(vd_config *cfg, vd_errmsg *em)
{
    if (vd_log_level_parse(cfg->log_level, &cfg->log_level_value) != 0)
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "log_level must be debug, info, warn or error, got '%s'", cfg->log_level);
    if (vd_log_format_parse(cfg->log_format, &cfg->log_format_value) != 0)
        return vd_fail(em, VD_E_INVALID_REQUEST, "log_format must be logfmt or json, got '%s'",
                       cfg->log_format);
    static const char *const access_logs[] = {"none", "errors", "all"};
    size_t ai = 0;
    while (ai < 3 && strcmp(cfg->access_log, access_logs[ai]) != 0)
        ai++;
    if (ai == 3)
        return vd_fail(em, VD_E_INVALID_REQUEST, "access_log must be none, errors or all, got '%s'",
                       cfg->access_log);
    cfg->access_log_value = (vd_access_log)ai;
    static const struct {
        const char *name;
        vd_fsync_policy policy;
    } fsyncs[] = {{"always", VD_FSYNC_ALWAYS}, {"batch", VD_FSYNC_BATCH}, {"none", VD_FSYNC_NONE}};
    size_t fi = 0;
    while (fi < 3 && strcmp(cfg->wal_fsync, fsyncs[fi].name) != 0)
        fi++;
    if (fi == 3)
        return vd_fail(em, VD_E_INVALID_REQUEST, "wal_fsync must be always, batch or none, got '%s'",
                       cfg->wal_fsync);
    cfg->wal_fsync_policy = fsyncs[fi].policy;
    if (strcmp(cfg->wal_io, "auto") && strcmp(cfg->wal_io, "io_uring") && strcmp(cfg->wal_io, "pwrite"))
        return vd_fail(em, VD_E_INVALID_REQUEST, "wal_io must be auto, io_uring or pwrite, got '%s'",
                       cfg->wal_io);
    for (size_t k = 0; k < cfg->n_feeds; k++) {
        if (vd_metric_parse(cfg->feeds[k].metric, &cfg->feeds[k].metric_value) != 0)
            return vd_fail(em, VD_E_INVALID_REQUEST,
                           "[%s] feed_metric must be cosine, dot or l2, got '%s'",
                           cfg->feeds[k].section, cfg->feeds[k].metric);
        if (cfg->feeds[k].dsn[0] && !vd_collection_name_valid(cfg->feeds[k].collection))
            return vd_fail(em, VD_E_INVALID_REQUEST,
                           "[%s] feed_collection must be 1..64 of [A-Za-z0-9_-], got '%s'",
                           cfg->feeds[k].section, cfg->feeds[k].collection);
        if (cfg->feeds[k].dim > cfg->max_dim)
            return vd_fail(em, VD_E_INVALID_REQUEST, "[%s] feed_dim %" PRIu64 " is above max_dim %" PRIu64,
                           cfg->feeds[k].section, cfg->feeds[k].dim, cfg->max_dim);
        vd_feed_settings *fs = &cfg->feeds[k];
        if (strcmp(fs->source, "outbox") != 0 && strcmp(fs->source, "logical") != 0)
            return vd_fail(em, VD_E_INVALID_REQUEST, "[%s] feed_source must be outbox or logical, got '%s'",
                           fs->section, fs->source);
        if (!fs->slot[0]) { /* vectord_<name>, in the characters a slot name allows */
            char name[55]; /* a copy: GCC sees two fields of cfg as one object that would overlap */
            snprintf(name, sizeof name, "%s", fs->name);
            snprintf(fs->slot, sizeof fs->slot, "vectord_%s", name);
            for (char *p = fs->slot; *p; p++)
                *p = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a')
                     : ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) ? *p : '_';
        }
        for (const char *p = fs->slot; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
                return vd_fail(em, VD_E_INVALID_REQUEST,
                               "[%s] feed_slot must be 1..63 of a-z, 0-9 and _, got '%s'", fs->section,
                               fs->slot);
        if (!vd_partition_parse(fs->partition, &fs->partition_value))
            return vd_fail(em, VD_E_INVALID_REQUEST,
                           "[%s] feed_partition must be i/N with 0 <= i < N <= %d (or empty), got '%s'",
                           fs->section, VD_PARTITIONS_MAX, fs->partition);
        if (fs->partition_value.count && !fs->partition_column[0])
            return vd_fail(em, VD_E_INVALID_REQUEST, "[%s] feed_partition needs feed_partition_column",
                           fs->section);
        if (!fs->publication[0] || strchr(fs->publication, '"') || strchr(fs->publication, ','))
            return vd_fail(em, VD_E_INVALID_REQUEST,
                           "[%s] feed_publication must be a publication name (no \" or ,), got '%s'",
                           fs->section, fs->publication);
        if (cfg->feeds[k].dsn[0]) {
            vd_limits lim;
            vd_config_limits(cfg, &lim);
            cJSON *doc = NULL;
            vd_collection_config cc;
            int rc = vd_config_feed_collection(&cfg->feeds[k], &lim, &doc, &cc, em);
            cJSON_Delete(doc);
            if (rc)
                return rc;
        }
        for (size_t j = 0; j < k; j++)
            if (cfg->feeds[k].dsn[0] && strcmp(cfg->feeds[j].name, cfg->feeds[k].name) == 0)
                return vd_fail(em, VD_E_INVALID_REQUEST,
                               "[%s] and [%s] have the same feed_name '%s'", cfg->feeds[j].section,
                               cfg->feeds[k].section, cfg->feeds[k].name);
    }
    if (vd_isa_parse(cfg->simd, &cfg->simd_isa) != 0)
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "simd must be auto, avx512, avx2 or scalar, got '%s'", cfg->simd);
    if (split_listen(cfg->listen, cfg->host, sizeof cfg->host, &cfg->port) != 0)
        return vd_fail(em, VD_E_INVALID_REQUEST, "listen must be HOST:PORT (IPv4), got '%s'",
                       cfg->listen);
    if (cfg->qdrant_listen[0] &&
        split_listen(cfg->qdrant_listen, cfg->qdrant_host, sizeof cfg->qdrant_host, &cfg->qdrant_port) != 0)
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "qdrant_listen must be HOST:PORT (IPv4) or empty (off), got '%s'",
                       cfg->qdrant_listen);
    if (!cfg->data_dir[0])
        return vd_fail(em, VD_E_INVALID_REQUEST, "data_dir must not be empty");
    return 0;
}

/* Value of --name=value or --name value at argv[*i]; NULL if the flag is not name. */
static const char *flag_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != 0)
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

int vd_config_load(vd_config *cfg, int argc, char **argv, char **envp, vd_config_action *action,
                   vd_errmsg *em)
{
    int rc;
    memset(cfg, 0, sizeof *cfg);
    *action = VD_CONFIG_RUN;
    for (size_t i = 0; i < N_SETTINGS; i++)
        if ((rc = set_value(cfg, &settings[i], settings[i].def, "default", em)))
            return rc;
    cfg->n_feeds = 1;
    snprintf(cfg->feeds[0].section, sizeof cfg->feeds[0].section, "feed");

    /* The config file's path comes from the flags, else the environment. */
    const char *file = NULL;
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, "VECTORD_CONFIG=", 15) == 0)
            file = *e + 15;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v = flag_value(argc, argv, &i, "--config", &missing);
        if (v)
            file = v;
    }
    if (file && *file) {
        snprintf(cfg->config_file, sizeof cfg->config_file, "%s", file);
        file_ctx fc = {cfg, em, 0};
        int line = ini_parse(file, on_ini, &fc);
        if (fc.rc)
            return fc.rc;
        if (line < 0)
            return vd_fail(em, VD_E_INVALID_REQUEST, "cannot read config file '%s'", file);
        if (line > 0)
            return vd_fail(em, VD_E_INVALID_REQUEST, "config file '%s': syntax error on line %d",
                           file, line);
    }

    for (char **e = envp; e && *e; e++) {
        if (strncmp(*e, "VECTORD_", 8) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char name[64];
        size_t n = (size_t)(eq - (*e + 8));
        if (n == 0 || n >= sizeof name)
            continue;
        for (size_t k = 0; k < n; k++)
            name[k] = (char)((*e)[8 + k] >= 'A' && (*e)[8 + k] <= 'Z' ? (*e)[8 + k] + 32 : (*e)[8 + k]);
        name[n] = 0;
        const setting *s = find_setting(NULL, name);
        /* Kubernetes' service links for a Service named vectord
         * (VECTORD_SERVICE_HOST, VECTORD_PORT_6480_TCP, …) are not settings. */
        bool service_link = strncmp(name, "service_", 8) == 0 || strncmp(name, "port", 4) == 0;
        if (!s && strcmp(name, "config") != 0 && !service_link) {
            size_t used = strlen(cfg->unknown_env);
            snprintf(cfg->unknown_env + used, sizeof cfg->unknown_env - used, "%s%.*s",
                     used ? "," : "", (int)(eq - *e), *e);
        }
        if (!s)
            continue;
        char origin[80];
        snprintf(origin, sizeof origin, "environment %.*s", (int)(eq - *e), *e);
        if ((rc = set_value(cfg, s, eq + 1, origin, em)))
            return rc;
    }

    static const struct {
        const char *flag, *setting;
    } shortcuts[] = {
        {"--listen", "listen"},
        {"--data-dir", "data_dir"},
        {"--log-level", "log_level"},
    };
    for (int i = 1; i < argc; i++) {
        bool missing = false, used = false;
        const char *v;
        if (strcmp(argv[i], "--accept-data-loss") == 0) {
            cfg->accept_data_loss = 1;
            continue;
        }
        if (flag_value(argc, argv, &i, "--config", &missing) || missing) {
            if (missing)
                return vd_fail(em, VD_E_INVALID_REQUEST, "--config needs a value");
            continue;
        }
        for (size_t k = 0; k < sizeof shortcuts / sizeof shortcuts[0] && !used; k++) {
            v = flag_value(argc, argv, &i, shortcuts[k].flag, &missing);
            if (missing)
                return vd_fail(em, VD_E_INVALID_REQUEST, "%s needs a value", shortcuts[k].flag);
            if (v) {
                used = true;
                if ((rc = set_value(cfg, find_setting(NULL, shortcuts[k].setting), v,
                                    shortcuts[k].flag, em)))
                    return rc;
            }
        }
        if (used)
            continue;
        v = flag_value(argc, argv, &i, "--set", &missing);
        if (missing)
            return vd_fail(em, VD_E_INVALID_REQUEST, "--set needs NAME=VALUE");
        if (v) {
            const char *eq = strchr(v, '=');
            char name[64];
            if (!eq || (size_t)(eq - v) >= sizeof name)
                return vd_fail(em, VD_E_INVALID_REQUEST, "--set needs NAME=VALUE, got '%s'", v);
            memcpy(name, v, (size_t)(eq - v));
            name[eq - v] = 0;
            const setting *s = find_setting(NULL, name);
            if (!s)
                return vd_fail(em, VD_E_INVALID_REQUEST, "--set: unknown setting '%s'", name);
            if ((rc = set_value(cfg, s, eq + 1, "--set", em)))
                return rc;
            continue;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            *action = VD_CONFIG_HELP;
        else if (strcmp(argv[i], "--version") == 0)
            *action = VD_CONFIG_VERSION;
        else if (strcmp(argv[i], "--print-config") == 0)
            *action = VD_CONFIG_PRINT;
        else
            return vd_fail(em, VD_E_INVALID_REQUEST, "unknown argument '%s' (see --help)", argv[i]);
    }
    return validate(cfg, em);
}

static void print_setting(const vd_config *cfg, const setting *s, size_t feed, FILE *out)
{
    const char *field = (const char *)cfg + s->offset + feed * sizeof(vd_feed_settings);
    if (s->type == SET_STR)
        fprintf(out, "%s = %s\n", s->name, field);
    else
        fprintf(out, "%s = %llu\n", s->name, (unsigned long long)*(const uint64_t *)(const void *)field);
}

void vd_config_print(const vd_config *cfg, FILE *out)
{
    const char *section = "";
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        if (strcmp(section, s->section) != 0) {
            fprintf(out, "%s[%s]\n", i ? "\n" : "", s->section);
            section = s->section;
        }
        print_setting(cfg, s, 0, out);
    }
    for (size_t k = 1; k < cfg->n_feeds; k++) {
        fprintf(out, "\n[%s]\n", cfg->feeds[k].section);
        for (size_t i = 0; i < N_SETTINGS; i++)
            if (settings[i].per_feed)
                print_setting(cfg, &settings[i], k, out);
    }
}

void vd_config_usage(FILE *out)
{
    fprintf(out,
            "usage: vectord [--listen HOST:PORT] [--data-dir DIR] [--config FILE]\n"
            "               [--log-level LEVEL] [--set NAME=VALUE]... [--print-config]\n"
            "               [--accept-data-loss]\n"
            "               [--help] [--version]\n\n"
            "Settings (flag --set NAME=VALUE > env VECTORD_NAME > config file > default):\n");
    for (size_t i = 0; i < N_SETTINGS; i++)
        fprintf(out, "  [%s] %-22s default %-16s %s\n", settings[i].section, settings[i].name,
                settings[i].def, settings[i].help);
}

int vd_config_feed_collection(const vd_feed_settings *fs, const vd_limits *lim, cJSON **doc,
                              vd_collection_config *out, vd_errmsg *em)
{
    *doc = cJSON_Parse(fs->collection_config[0] ? fs->collection_config : "{}");
    if (!cJSON_IsObject(*doc))
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "[%s] feed_collection_config must be a JSON object (a body of PUT "
                       "/collections/{c}), got '%.80s'",
                       fs->section, fs->collection_config);
    const cJSON *dim = cJSON_GetObjectItemCaseSensitive(*doc, "dim");
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(*doc, "metric");
    if (dim && fs->dim && !(cJSON_IsNumber(dim) && dim->valuedouble == (double)fs->dim))
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "[%s] feed_collection_config's dim differs from feed_dim %" PRIu64
                       "; set one of them", fs->section, fs->dim);
    if (metric && cJSON_IsString(metric) && strcmp(metric->valuestring, fs->metric) != 0 &&
        strcmp(fs->metric, "cosine") != 0)
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "[%s] feed_collection_config's metric differs from feed_metric '%s'; set one "
                       "of them", fs->section, fs->metric);
    /* Without a dimension from either, the feed does not create; the rest
     * is still checked (its payload indexes apply to an existing collection). */
    bool no_dim = !dim && !fs->dim;
    if (!dim)
        cJSON_AddNumberToObject(*doc, "dim", no_dim ? 1 : (double)fs->dim);
    if (!metric)
        cJSON_AddStringToObject(*doc, "metric", fs->metric);
    if (!cJSON_GetObjectItemCaseSensitive(*doc, "index")) {
        cJSON *index = cJSON_AddObjectToObject(*doc, "index");
        cJSON_AddStringToObject(index, "type", "hnsw");
    }
    vd_errmsg why = {{0}};
    if (vd_req_collection(*doc, fs->collection, lim, out, &why) != 0)
        return vd_fail(em, VD_E_INVALID_REQUEST, "[%s] feed_collection_config: %s", fs->section,
                       why.text);
    if (no_dim)
        out->dim = 0;
    return 0;
}

void vd_config_limits(const vd_config *cfg, vd_limits *out)
{
    *out = (vd_limits){
        .max_batch_points = (uint32_t)cfg->max_batch_points,
        .max_batch_searches = (uint32_t)cfg->max_batch_searches,
        .max_k = (uint32_t)cfg->max_k,
        .max_dim = (uint32_t)cfg->max_dim,
        .max_filter_depth = (uint32_t)cfg->max_filter_depth,
        .max_filter_terms = (uint32_t)cfg->max_filter_terms,
        .max_response_bytes = cfg->max_response_bytes,
        .request_timeout_ms = cfg->request_timeout_ms,
        .default_shards = (uint32_t)cfg->default_shards,
    };
}

/*
 * router_main.c — vectord-router: routes the native and the Qdrant-compatible
 * API over tenant-partitioned vectord replicas (docs/PARTITIONS.md). Only
 * wiring: options (each also an environment variable), the topology and its
 * prober, the router, the listeners, and SIGTERM.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/router.h"
#include "router/router_http.h"
#include "router/topology.h"
#include "util/log.h"

#define MAX_LIST VD_PARTITIONS_MAX

static const char usage[] =
    "usage: vectord-router [options]\n"
    "  --listen HOST:PORT            native API (default 0.0.0.0:6480; VECTORD_ROUTER_LISTEN)\n"
    "  --qdrant-listen HOST:PORT     Qdrant-compatible API (default off; VECTORD_ROUTER_QDRANT_LISTEN)\n"
    "  --partition URL[,URL…]        one partition's replicas, in partition order; repeat per partition\n"
    "                                (URL|QDRANT_URL names a replica's Qdrant listener too)\n"
    "                                (VECTORD_ROUTER_PARTITIONS: the lists separated by ';')\n"
    "  --partition-pattern PATTERN   replica URLs from a pattern with {p} and {r}, e.g.\n"
    "                                http://vectord-p{p}-{r}.vectord-p{p}:8080 (VECTORD_ROUTER_PARTITION_PATTERN)\n"
    "  --partitions N --replicas R   the pattern's counts (VECTORD_ROUTER_PARTITIONS_COUNT, _REPLICAS)\n"
    "  --next-partition URL[,URL…], --next-partition-pattern P, --next-partitions N, --next-replicas R\n"
    "                                a repartition: switch to these once each has a caught-up replica\n"
    "                                (VECTORD_ROUTER_NEXT_PARTITIONS, _NEXT_PARTITION_PATTERN, ...)\n"
    "  --tenant-field NAME           payload key of the tenant (default userId; VECTORD_ROUTER_TENANT_FIELD)\n"
    "  --replica-qdrant-port PORT    the replicas' Qdrant port (default 6333; VECTORD_ROUTER_REPLICA_QDRANT_PORT)\n"
    "  --timeout-ms MS               per replica request (default 30000; VECTORD_ROUTER_TIMEOUT_MS)\n"
    "  --probe-interval-ms MS        readiness probes (default 1000; VECTORD_ROUTER_PROBE_INTERVAL_MS)\n"
    "  --api-key KEY                 for the prober's GET /feed on replicas that need one (VECTORD_ROUTER_API_KEY)\n"
    "  --max-connections N           (default 1024)   --max-body-bytes N (default 67108864)\n";

typedef struct options {
    const char *listen, *qdrant_listen, *pattern, *next_pattern, *tenant_field, *api_key;
    const char *parts[MAX_LIST], *next_parts[MAX_LIST];
    uint32_t n_parts, n_next_parts;
    unsigned long partitions, replicas, next_partitions, next_replicas, qdrant_port, timeout_ms,
        probe_ms, max_connections, max_body;
} options;

static bool number(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    unsigned long v = s && *s ? strtoul(s, &end, 10) : 0;
    if (!s || !*s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* "a,b;c,d" → lists (the string is kept: it is the environment's). */
static bool split_lists(char *text, const char **out, uint32_t *n)
{
    char *save = NULL;
    for (char *l = strtok_r(text, ";", &save); l; l = strtok_r(NULL, ";", &save)) {
        if (*n == MAX_LIST)
            return false;
        out[(*n)++] = l;
    }
    return true;
}

static const char *env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){0};
    o->listen = env("VECTORD_ROUTER_LISTEN", "0.0.0.0:6480");
    o->qdrant_listen = env("VECTORD_ROUTER_QDRANT_LISTEN", "");
    o->pattern = env("VECTORD_ROUTER_PARTITION_PATTERN", NULL);
    o->next_pattern = env("VECTORD_ROUTER_NEXT_PARTITION_PATTERN", NULL);
    o->tenant_field = env("VECTORD_ROUTER_TENANT_FIELD", "userId");
    o->api_key = env("VECTORD_ROUTER_API_KEY", "");
    struct { const char *env, *def; unsigned long lo, hi, *out; const char *name; } nums[] = {
        {"VECTORD_ROUTER_PARTITIONS_COUNT", "0", 0, MAX_LIST, &o->partitions, "partitions"},
        {"VECTORD_ROUTER_REPLICAS", "1", 1, VD_REPLICAS_MAX, &o->replicas, "replicas"},
        {"VECTORD_ROUTER_NEXT_PARTITIONS_COUNT", "0", 0, MAX_LIST, &o->next_partitions, "next-partitions"},
        {"VECTORD_ROUTER_NEXT_REPLICAS", "1", 1, VD_REPLICAS_MAX, &o->next_replicas, "next-replicas"},
        {"VECTORD_ROUTER_REPLICA_QDRANT_PORT", "6333", 1, 65535, &o->qdrant_port, "replica-qdrant-port"},
        {"VECTORD_ROUTER_TIMEOUT_MS", "30000", 10, 3600000, &o->timeout_ms, "timeout-ms"},
        {"VECTORD_ROUTER_PROBE_INTERVAL_MS", "1000", 50, 600000, &o->probe_ms, "probe-interval-ms"},
        {"VECTORD_ROUTER_MAX_CONNECTIONS", "1024", 1, 100000, &o->max_connections, "max-connections"},
        {"VECTORD_ROUTER_MAX_BODY_BYTES", "67108864", 1024, 1UL << 34, &o->max_body, "max-body-bytes"},
    };
    size_t n_nums = sizeof nums / sizeof nums[0];
    for (size_t i = 0; i < n_nums; i++)
        if (!number(env(nums[i].env, nums[i].def), nums[i].lo, nums[i].hi, nums[i].out))
            return fprintf(stderr, "vectord-router: %s must be %lu…%lu\n", nums[i].env, nums[i].lo, nums[i].hi), -1;
    char *lists = getenv("VECTORD_ROUTER_PARTITIONS"), *next_lists = getenv("VECTORD_ROUTER_NEXT_PARTITIONS");
    if ((lists && !split_lists(lists, o->parts, &o->n_parts)) ||
        (next_lists && !split_lists(next_lists, o->next_parts, &o->n_next_parts)))
        return fprintf(stderr, "vectord-router: too many partitions\n"), -1;
    static const struct option longs[] = {
        {"listen", 1, 0, 'l'}, {"qdrant-listen", 1, 0, 'Q'}, {"partition", 1, 0, 'p'},
        {"partition-pattern", 1, 0, 'P'}, {"partitions", 1, 0, 'N'}, {"replicas", 1, 0, 'R'},
        {"next-partition", 1, 0, 'x'}, {"next-partition-pattern", 1, 0, 'X'}, {"next-partitions", 1, 0, 'M'},
        {"next-replicas", 1, 0, 'S'}, {"tenant-field", 1, 0, 't'}, {"replica-qdrant-port", 1, 0, 'q'},
        {"timeout-ms", 1, 0, 'T'}, {"probe-interval-ms", 1, 0, 'i'}, {"api-key", 1, 0, 'k'},
        {"max-connections", 1, 0, 'C'}, {"max-body-bytes", 1, 0, 'B'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    bool cli_parts = false, cli_next = false;
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        unsigned long *num = NULL;
        const char *name = NULL;
        switch (c) {
        case 'l': o->listen = optarg; break;
        case 'Q': o->qdrant_listen = optarg; break;
        case 'p':
            if (!cli_parts)
                o->n_parts = 0; /* the command line replaces the environment's list */
            cli_parts = true;
            if (o->n_parts == MAX_LIST)
                return fprintf(stderr, "vectord-router: too many partitions\n"), -1;
            o->parts[o->n_parts++] = optarg;
            break;
        case 'x':
            if (!cli_next)
                o->n_next_parts = 0;
            cli_next = true;
            if (o->n_next_parts == MAX_LIST)
                return fprintf(stderr, "vectord-router: too many partitions\n"), -1;
            o->next_parts[o->n_next_parts++] = optarg;
            break;
        case 'P': o->pattern = optarg; break;
        case 'X': o->next_pattern = optarg; break;
        case 't': o->tenant_field = optarg; break;
        case 'k': o->api_key = optarg; break;
        case 'N': num = &o->partitions; name = "partitions"; break;
        case 'R': num = &o->replicas; name = "replicas"; break;
        case 'M': num = &o->next_partitions; name = "next-partitions"; break;
        case 'S': num = &o->next_replicas; name = "next-replicas"; break;
        case 'q': num = &o->qdrant_port; name = "replica-qdrant-port"; break;
        case 'T': num = &o->timeout_ms; name = "timeout-ms"; break;
        case 'i': num = &o->probe_ms; name = "probe-interval-ms"; break;
        case 'C': num = &o->max_connections; name = "max-connections"; break;
        case 'B': num = &o->max_body; name = "max-body-bytes"; break;
        case 'h': fputs(usage, stdout); exit(0);
        default: fputs(usage, stderr); return -1;
        }
        if (num) {
            for (size_t i = 0; i < n_nums; i++)
                if (nums[i].out == num && !number(optarg, nums[i].lo, nums[i].hi, num))
                    return fprintf(stderr, "vectord-router: --%s must be %lu…%lu, got '%s'\n", name,
                                   nums[i].lo, nums[i].hi, optarg), -1;
        }
    }
    if (optind < argc)
        return fprintf(stderr, "vectord-router: unexpected argument '%s'\n%s", argv[optind], usage), -1;
    if (!o->n_parts && !(o->pattern && o->partitions))
        return fprintf(stderr, "vectord-router: name the partitions (--partition, or --partition-pattern "
                               "with --partitions)\n%s", usage), -1;
    if (o->n_parts && o->pattern)
        return fprintf(stderr, "vectord-router: --partition and --partition-pattern exclude each other\n"), -1;
    if (o->n_next_parts && o->next_pattern)
        return fprintf(stderr, "vectord-router: --next-partition and --next-partition-pattern exclude each other\n"), -1;
    if (o->n_parts)
        o->pattern = NULL;
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    if (parse(argc, argv, &o))
        return 2;
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* threads started below inherit the mask */
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        vd_log_error("cannot start libcurl", "%s", "");
        return 1;
    }
    char err[512] = "";
    vd_topology_config tc = {
        .partitions = o.parts, .n_partitions = o.pattern ? (uint32_t)o.partitions : o.n_parts,
        .pattern = o.pattern, .n_replicas = (uint32_t)o.replicas,
        .next_partitions = o.next_parts,
        .next_n_partitions = o.next_pattern ? (uint32_t)o.next_partitions : o.n_next_parts,
        .next_pattern = o.n_next_parts ? NULL : o.next_pattern, .next_n_replicas = (uint32_t)o.next_replicas,
        .qdrant_port = (uint32_t)o.qdrant_port, .probe_interval_ms = (uint32_t)o.probe_ms,
        .api_key = o.api_key};
    vd_topology *topo = NULL;
    vd_router *router = NULL;
    vd_router_http *native = NULL, *qdrant = NULL;
    int status = 1;
    if (vd_topology_create(&topo, &tc, err, sizeof err)) {
        vd_log_error("cannot start the router", "error=\"%s\"", err);
        goto done;
    }
    vd_router_config rc = {.tenant_field = o.tenant_field, .timeout_ms = (long)o.timeout_ms};
    if (vd_router_create(&router, &rc, topo)) {
        vd_log_error("cannot start the router", "error=\"%s\"", "out of memory");
        goto done;
    }
    vd_router_http_config hc = {.listen = o.listen, .max_connections = (uint32_t)o.max_connections,
                                .max_body_bytes = o.max_body, .idle_timeout_s = 120};
    uint16_t port = 0, qport = 0;
    if (vd_router_http_start(&native, &hc, router, &port, err, sizeof err)) {
        vd_log_error("cannot start the router", "error=\"%s\"", err);
        goto done;
    }
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(strrchr(o.listen, ':') - o.listen), o.listen);
    vd_log_info("listening", "addr=%s:%u dialect=native", host, port);
    if (*o.qdrant_listen) {
        hc.listen = o.qdrant_listen;
        hc.qdrant = true;
        if (vd_router_http_start(&qdrant, &hc, router, &qport, err, sizeof err)) {
            vd_log_error("cannot start the router", "error=\"%s\"", err);
            goto done;
        }
        snprintf(host, sizeof host, "%.*s", (int)(strrchr(o.qdrant_listen, ':') - o.qdrant_listen),
                 o.qdrant_listen);
        vd_log_info("listening", "addr=%s:%u dialect=qdrant", host, qport);
    }
    const vd_generation *g = vd_topology_current(topo);
    vd_log_info("ready", "role=router partitions=%u tenant_field=%s next_partitions=%u", g->n_partitions,
                o.tenant_field, vd_topology_next(topo) ? vd_topology_next(topo)->n_partitions : 0);
    int sig = 0;
    sigwait(&sigs, &sig);
    vd_log_info("stopping", "signal=%d", sig);
    status = 0;
done:
    vd_router_http_stop(qdrant);
    vd_router_http_stop(native);
    vd_router_destroy(router);
    vd_topology_destroy(topo);
    curl_global_cleanup();
    return status;
}

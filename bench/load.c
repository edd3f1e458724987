/*
 * load.c — bench_load: an HTTP/1.1 keep-alive load generator for vectord.
 *
 *   bench_load --port P --requests FILE [--expect FILE] [--k K]
 *              [--connections C] [--seconds S] [--rate R] [--warmup S]
 *              [--host 127.0.0.1] [--server-pid PID]
 *
 * FILE holds one request per line: "METHOD PATH<TAB>BODY" (BODY may be
 * empty; it must not contain a newline). The requests are sent round-robin
 * on C keep-alive connections, one thread each.
 *
 * Closed loop (no --rate): each connection sends its next request as soon as
 * the last answer has arrived; latency runs from send to the last byte.
 * Open loop (--rate R): request i is due at t0 + i/R, whatever happened
 * before; a free connection takes the next due request, waits for its due
 * time if it is early, and its latency runs from the due time, so time spent
 * queued behind a slow server counts (no coordinated omission).
 *
 * --expect FILE: per request line, the expected ids best first, comma
 * separated (the ground truth). The answer's result ids (a search's array, or
 * a shadow search's "points") are compared: recall@k = common ids among the
 * first k / min(k, expected). Requests are cut into a warm-up (not counted)
 * and the measured window. Prints one JSON object: mode, connections, rate,
 * requests, errors (non-200 answers and broken connections), statuses,
 * (the first 20 answers that are not 200 are written to stderr),
 * seconds, qps, p50/p90/p99/p99.9/max latency in ms, recall (null without
 * --expect), and the CPU spent in the measured window: client_cpu_s (this
 * process, every thread) and, with --server-pid, server_cpu_s (that process's
 * user + system time from /proc), each also per answered request in µs
 * (client_cpu_us_per_req, server_cpu_us_per_req; null when not measured).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bench_util.h"

typedef struct request {
    char *wire; /* the whole HTTP request */
    size_t len;
    char **expect; /* expected ids (text), or NULL */
    size_t n_expect;
} request;

typedef struct options {
    const char *host;
    int port;
    const char *requests, *expect;
    int connections;
    double seconds, warmup, rate;
    unsigned k;
    int server_pid; /* 0: the server's CPU is not measured */
} options;

typedef struct shared {
    const options *o;
    request *reqs;
    size_t n_reqs;
    double t0;      /* start of the run (warm-up included) */
    double t_measure; /* start of the measured window */
    double t_end;
    _Atomic long next; /* open loop: index of the next due request */
    _Atomic long shown; /* non-200 answers written to stderr so far */
} shared;

#define SHOW_NON_200 20 /* the first answers that were not 200 go to stderr */

#define N_STATUS 600

typedef struct worker {
    shared *sh;
    int id;
    pthread_t th;
    double *lat;
    size_t n_lat, cap_lat;
    long errors;
    long status[N_STATUS];
    double recall_sum;
    long recall_n;
} worker;

static void die(const char *msg)
{
    fprintf(stderr, "bench_load: %s\n", msg);
    exit(2);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "bench_load: cannot read %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        die("cannot read a file");
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

/* Splits text into lines in place; returns the count (lines[] malloc'd).
 * Empty lines are kept only with keep_empty (an expectation of no ids). */
static size_t split_lines(char *text, char ***lines, bool keep_empty)
{
    size_t n = 0, cap = 1024;
    char **out = malloc(cap * sizeof *out);
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        if (*p || (keep_empty && nl)) {
            if (n == cap)
                out = realloc(out, (cap *= 2) * sizeof *out);
            out[n++] = p;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    *lines = out;
    return n;
}

static void load_requests(shared *sh, const options *o)
{
    size_t len;
    char **lines;
    char *text = read_file(o->requests, &len);
    sh->n_reqs = split_lines(text, &lines, false);
    if (!sh->n_reqs)
        die("the requests file is empty");
    sh->reqs = calloc(sh->n_reqs, sizeof *sh->reqs);
    for (size_t i = 0; i < sh->n_reqs; i++) {
        char *tab = strchr(lines[i], '\t');
        const char *body = tab ? tab + 1 : "";
        if (tab)
            *tab = 0;
        char *sp = strchr(lines[i], ' ');
        if (!sp)
            die("a request line must be 'METHOD PATH<TAB>BODY'");
        *sp = 0;
        size_t blen = strlen(body);
        size_t cap = blen + strlen(sp + 1) + 256;
        request *r = &sh->reqs[i];
        r->wire = malloc(cap);
        r->len = (size_t)snprintf(r->wire, cap,
                                  "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                                  "Content-Length: %zu\r\n\r\n%s",
                                  lines[i], sp + 1, o->host, blen, body);
    }
    free(lines);
    free(text);
    if (!o->expect)
        return;
    text = read_file(o->expect, &len);
    size_t n = split_lines(text, &lines, true);
    if (n != sh->n_reqs)
        die("--expect must have one line per request");
    for (size_t i = 0; i < n; i++) {
        request *r = &sh->reqs[i];
        r->expect = calloc(o->k, sizeof *r->expect);
        for (char *tok = strtok(lines[i], ","); tok && r->n_expect < o->k; tok = strtok(NULL, ","))
            r->expect[r->n_expect++] = strdup(tok);
    }
    free(lines);
    free(text);
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads one response into *buf (grown as needed). Returns the status and
 * sets *body, or -1 on a broken connection. */
static int read_response(int fd, char **buf, size_t *cap, char **body)
{
    size_t got = 0;
    long clen = -1;
    size_t head = 0;
    for (;;) {
        if (got + 1 >= *cap) {
            *cap *= 2;
            *buf = realloc(*buf, *cap);
        }
        ssize_t r = read(fd, *buf + got, *cap - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
        (*buf)[got] = 0;
        if (!head) {
            char *end = strstr(*buf, "\r\n\r\n");
            if (!end)
                continue;
            head = (size_t)(end - *buf) + 4;
            char *cl = strcasestr(*buf, "\r\nContent-Length:");
            clen = cl && cl < end ? strtol(cl + 17, NULL, 10) : 0;
        }
        if ((long)(got - head) >= clen) {
            *body = *buf + head;
            return atoi(*buf + 9);
        }
    }
}

/* The result ids of a search (or shadow search) answer, compared with the
 * expected ones: recall@k of this answer, or -1 if the answer has no list. */
static double answer_recall(const char *body, const request *r, unsigned k)
{
    cJSON *doc = cJSON_Parse(body);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "result");
    if (cJSON_IsObject(res))
        res = cJSON_GetObjectItemCaseSensitive(res, "points");
    double out = -1;
    if (cJSON_IsArray(res)) {
        size_t common = 0, seen = 0;
        for (const cJSON *h = res->child; h && seen < k; h = h->next, seen++) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(h, "id");
            char text[300];
            if (cJSON_IsNumber(id))
                snprintf(text, sizeof text, "%.0f", id->valuedouble);
            else if (cJSON_IsString(id))
                snprintf(text, sizeof text, "%s", id->valuestring);
            else
                continue;
            for (size_t e = 0; e < r->n_expect; e++)
                if (strcmp(text, r->expect[e]) == 0) {
                    common++;
                    break;
                }
        }
        out = r->n_expect ? (double)common / (double)r->n_expect : 1.0;
    }
    cJSON_Delete(doc);
    return out;
}

static void record(worker *w, double t_sent, double latency)
{
    if (t_sent < w->sh->t_measure)
        return; /* warm-up */
    if (w->n_lat == w->cap_lat) {
        w->cap_lat = w->cap_lat ? w->cap_lat * 2 : 4096;
        w->lat = realloc(w->lat, w->cap_lat * sizeof *w->lat);
    }
    w->lat[w->n_lat++] = latency;
}

/* CPU seconds (user + system) this process has used, all threads. */
static double client_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

/* CPU seconds (user + system) process pid has used, from /proc/PID/stat;
 * -1 when it cannot be read. */
static double process_cpu_s(int pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    const char *p = strrchr(text, ')'); /* the command name may hold spaces */
    unsigned long long utime, stime;
    /* after ")": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static void sleep_until(double t)
{
    double now = vd_now_s();
    if (t <= now)
        return;
    struct timespec ts = {.tv_sec = (time_t)(t - now), .tv_nsec = (long)((t - now - (double)(time_t)(t - now)) * 1e9)};
    nanosleep(&ts, NULL);
}

static void *run(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    const options *o = sh->o;
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    int fd = bench_connect(o->host, o->port);
    long mine = w->id; /* closed loop: this connection's request counter */
    for (;;) {
        size_t idx;
        double due;
        if (o->rate > 0) {
            long i = atomic_fetch_add(&sh->next, 1);
            due = sh->t0 + (double)i / o->rate;
            if (due >= sh->t_end)
                break;
            sleep_until(due);
            idx = (size_t)i % sh->n_reqs;
        } else {
            due = vd_now_s();
            if (due >= sh->t_end)
                break;
            idx = (size_t)mine % sh->n_reqs;
            mine += o->connections;
        }
        const request *r = &sh->reqs[idx];
        if (fd < 0)
            fd = bench_connect(o->host, o->port);
        double sent = vd_now_s();
        char *body = NULL;
        int status = fd >= 0 && write_all(fd, r->wire, r->len) ? read_response(fd, &buf, &cap, &body)
                                                                : -1;
        double done = vd_now_s();
        bool counted = (o->rate > 0 ? due : sent) >= sh->t_measure;
        if (status < 0) {
            if (counted)
                w->errors++;
            if (fd >= 0)
                close(fd);
            fd = -1;
            usleep(1000);
            continue;
        }
        if (counted) {
            w->status[status > 0 && status < N_STATUS ? status : 0]++;
            if (status != 200)
                w->errors++;
        }
        if (status != 200 && atomic_fetch_add(&sh->shown, 1) < SHOW_NON_200) {
            const char *eol = memchr(r->wire, '\r', r->len);
            fprintf(stderr, "%d for %.*s: %.300s\n", status, eol ? (int)(eol - r->wire) : 40, r->wire,
                    body ? body : "");
        }
        record(w, o->rate > 0 ? due : sent, done - (o->rate > 0 ? due : sent));
        if (counted && status == 200 && r->expect) {
            double rc = answer_recall(body, r, o->k);
            if (rc >= 0) {
                w->recall_sum += rc;
                w->recall_n++;
            }
        }
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

static double pct(const double *sorted, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p * (double)n);
    return sorted[i < n ? i : n - 1];
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_load --port P --requests FILE [--expect FILE] [--k 10] "
                    "[--connections 1] [--seconds 10] [--rate R] [--warmup 1] [--host 127.0.0.1] "
                    "[--server-pid PID]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    options o = {.host = "127.0.0.1", .connections = 1, .seconds = 10, .warmup = 1, .k = 10};
    for (int i = 1; i < argc; i += 2) { /* --name value pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--port"))
            o.port = atoi(v);
        else if (!strcmp(a, "--host"))
            o.host = v;
        else if (!strcmp(a, "--requests"))
            o.requests = v;
        else if (!strcmp(a, "--expect"))
            o.expect = v;
        else if (!strcmp(a, "--k"))
            o.k = (unsigned)atoi(v);
        else if (!strcmp(a, "--connections"))
            o.connections = atoi(v);
        else if (!strcmp(a, "--seconds"))
            o.seconds = atof(v);
        else if (!strcmp(a, "--rate"))
            o.rate = atof(v);
        else if (!strcmp(a, "--warmup"))
            o.warmup = atof(v);
        else if (!strcmp(a, "--server-pid"))
            o.server_pid = atoi(v);
        else
            usage();
    }
    if (!o.port || !o.requests || o.connections < 1 || o.seconds <= 0 || o.k < 1 || o.warmup < 0)
        usage();
    shared sh = {.o = &o};
    load_requests(&sh, &o);
    worker *ws = calloc((size_t)o.connections, sizeof *ws);
    sh.t0 = vd_now_s() + 0.05; /* let every thread start */
    sh.t_measure = sh.t0 + o.warmup;
    sh.t_end = sh.t_measure + o.seconds;
    for (int i = 0; i < o.connections; i++) {
        ws[i] = (worker){.sh = &sh, .id = i};
        if (pthread_create(&ws[i].th, NULL, run, &ws[i]) != 0)
            die("cannot start a thread");
    }
    /* The measured window's CPU, sampled at its edges by this (idle) thread. */
    sleep_until(sh.t_measure);
    double client0 = client_cpu_s(), server0 = o.server_pid ? process_cpu_s(o.server_pid) : -1;
    sleep_until(sh.t_end);
    double client_cpu = client_cpu_s() - client0;
    double server1 = o.server_pid ? process_cpu_s(o.server_pid) : -1;
    double server_cpu = server0 >= 0 && server1 >= 0 ? server1 - server0 : -1;
    long errors = 0, status[N_STATUS] = {0}, recall_n = 0;
    double recall_sum = 0;
    size_t n_lat = 0;
    for (int i = 0; i < o.connections; i++) {
        pthread_join(ws[i].th, NULL);
        errors += ws[i].errors;
        n_lat += ws[i].n_lat;
        recall_sum += ws[i].recall_sum;
        recall_n += ws[i].recall_n;
        for (int s = 0; s < N_STATUS; s++)
            status[s] += ws[i].status[s];
    }
    double *all = malloc((n_lat ? n_lat : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < o.connections; i++) {
        if (ws[i].n_lat) /* a connection may have had no request in the window */
            memcpy(all + k, ws[i].lat, ws[i].n_lat * sizeof *all);
        k += ws[i].n_lat;
        free(ws[i].lat);
    }
    qsort(all, n_lat, sizeof *all, cmp_double);
    printf("{\"mode\":\"%s\",\"connections\":%d,\"rate\":%g,\"requests\":%zu,\"errors\":%ld,"
           "\"seconds\":%.3f,\"qps\":%.1f,\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,"
           "\"p999_ms\":%.4f,\"max_ms\":%.4f,\"recall\":",
           o.rate > 0 ? "open" : "closed", o.connections, o.rate, n_lat, errors, o.seconds,
           (double)n_lat / o.seconds, pct(all, n_lat, 0.5) * 1e3, pct(all, n_lat, 0.9) * 1e3,
           pct(all, n_lat, 0.99) * 1e3, pct(all, n_lat, 0.999) * 1e3,
           n_lat ? all[n_lat - 1] * 1e3 : 0.0);
    if (recall_n)
        printf("%.5f", recall_sum / (double)recall_n);
    else
        printf("null");
    printf(",\"client_cpu_s\":%.3f,\"client_cpu_us_per_req\":", client_cpu);
    if (n_lat)
        printf("%.1f", client_cpu * 1e6 / (double)n_lat);
    else
        printf("null");
    if (server_cpu >= 0 && n_lat)
        printf(",\"server_cpu_s\":%.3f,\"server_cpu_us_per_req\":%.1f", server_cpu,
               server_cpu * 1e6 / (double)n_lat);
    else
        printf(",\"server_cpu_s\":null,\"server_cpu_us_per_req\":null");
    printf(",\"statuses\":{");
    bool first = true;
    for (int s = 0; s < N_STATUS; s++)
        if (status[s]) {
            printf("%s\"%d\":%ld", first ? "" : ",", s, status[s]);
            first = false;
        }
    printf("}}\n");
    free(all);
    free(ws);
    for (size_t i = 0; i < sh.n_reqs; i++) {
        free(sh.reqs[i].wire);
        for (size_t e = 0; e < sh.reqs[i].n_expect; e++)
            free(sh.reqs[i].expect[e]);
        free(sh.reqs[i].expect);
    }
    free(sh.reqs);
    return 0;
}

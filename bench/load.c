/*
 * load.c — bench_load: an HTTP/1.1 keep-alive load generator for vectord.
 *
 *   bench_load --port P --requests FILE [--expect FILE] [--k K]
 *              [--connections C] [--seconds S] [--rate R] [--warmup S]
 *              [--threads T] [--host 127.0.0.1] [--server-pid PID]
 *
 * FILE holds one request per line: "METHOD PATH<TAB>BODY" (BODY may be
 * empty; it must not contain a newline). The requests are sent round-robin
 * on C keep-alive connections, driven by T event-loop threads (epoll; default
 * 1, at most C), as wrk does: a thread per connection, blocking on each
 * answer, cost the client 22-25 µs of CPU per request against wrk's 16-17
 * on the same server (2-core machine, 8 connections), most of it in waking
 * threads, and its threads took the server's cores. A connection's answer
 * is timed when its thread reads it, so with T < C a latency can include
 * the time the thread spent on other connections' answers (a few µs).
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
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
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
    long long *expect_num; /* the same as integers (LLONG_MIN: not one) */
    size_t n_expect;
} request;

typedef struct options {
    const char *host;
    int port;
    const char *requests, *expect;
    int connections;
    int threads;
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

/* One keep-alive connection and the request in flight on it. */
typedef struct conn {
    int fd; /* -1: to reconnect */
    long mine; /* closed loop: this connection's request counter */
    const request *r; /* in flight, or NULL */
    double start; /* the latency's origin: sent (closed loop) or due (open loop) */
    char *buf;
    size_t cap, got, head; /* head: the header's length once read, else 0 */
    long clen;
} conn;

typedef struct worker {
    shared *sh;
    int id;
    pthread_t th;
    conn *conns; /* this thread's: connections id, id + threads, … */
    int n_conns;
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
        r->expect_num = calloc(o->k, sizeof *r->expect_num);
        for (char *tok = strtok(lines[i], ","); tok && r->n_expect < o->k; tok = strtok(NULL, ",")) {
            char *end;
            errno = 0;
            long long v = strtoll(tok, &end, 10);
            r->expect_num[r->n_expect] = *tok && !*end && !errno ? v : LLONG_MIN;
            r->expect[r->n_expect++] = strdup(tok);
        }
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

/* Reads what the socket has for c's answer (without blocking). Returns 1
 * when the answer is whole (*status, *body set), 0 when more is to come, -1
 * on a broken connection. */
static int read_some(conn *c, int *status, char **body)
{
    for (;;) {
        if (c->got + 1 >= c->cap) {
            c->cap *= 2;
            c->buf = realloc(c->buf, c->cap);
        }
        ssize_t r = recv(c->fd, c->buf + c->got, c->cap - 1 - c->got, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (r <= 0)
            return -1;
        size_t from = c->got > 3 ? c->got - 3 : 0;
        c->got += (size_t)r;
        c->buf[c->got] = 0;
        if (!c->head) {
            char *end = strstr(c->buf + from, "\r\n\r\n");
            if (!end)
                continue;
            c->head = (size_t)(end - c->buf) + 4;
            char *cl = strcasestr(c->buf, "\r\nContent-Length:");
            c->clen = cl && cl < end ? strtol(cl + 17, NULL, 10) : 0;
        }
        if ((long)(c->got - c->head) >= c->clen) {
            *body = c->buf + c->head;
            *status = atoi(c->buf + 9);
            return 1;
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
            for (size_t e = 0; e < r->n_expect; e++)
                if (cJSON_IsNumber(id) ? r->expect_num[e] != LLONG_MIN &&
                                             (double)r->expect_num[e] == id->valuedouble
                                       : cJSON_IsString(id) && strcmp(id->valuestring, r->expect[e]) == 0) {
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

/* c broke (a write or read failed): its request, if counted, is an error;
 * the connection is closed (leaving the epoll set) and made again later. */
static void drop_conn(worker *w, conn *c)
{
    if (c->r && c->start >= w->sh->t_measure)
        w->errors++;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->r = NULL;
}

/* Sends c's next request if one is due: closed loop, at once; open loop,
 * the next due request of the whole run once its time has come (else
 * *wake_at is lowered to it). False when the run has no more to send. */
static bool send_next(worker *w, conn *c, double now, double *wake_at)
{
    shared *sh = w->sh;
    const options *o = sh->o;
    size_t idx;
    double start = now;
    if (o->rate > 0) {
        long i = atomic_load(&sh->next);
        for (;;) {
            start = sh->t0 + (double)i / o->rate;
            if (start >= sh->t_end)
                return false;
            if (start > now) {
                if (start < *wake_at)
                    *wake_at = start;
                return true;
            }
            if (atomic_compare_exchange_weak(&sh->next, &i, i + 1))
                break;
        }
        idx = (size_t)i % sh->n_reqs;
    } else {
        if (now >= sh->t_end)
            return false;
        idx = (size_t)c->mine % sh->n_reqs;
        c->mine += o->connections;
    }
    c->r = &sh->reqs[idx];
    c->start = start;
    c->got = c->head = 0;
    c->clen = -1;
    /* Blocking write (requests fit the socket's buffer; the server reads
     * whole requests before answering); answers are read without blocking. */
    if (c->fd < 0 || !write_all(c->fd, c->r->wire, c->r->len))
        drop_conn(w, c);
    return true;
}

/* c's answer is whole: counts it. */
static void finish(worker *w, conn *c, int status, const char *body)
{
    shared *sh = w->sh;
    const options *o = sh->o;
    const request *r = c->r;
    double done = vd_now_s();
    bool counted = c->start >= sh->t_measure;
    if (counted) {
        w->status[status > 0 && status < N_STATUS ? status : 0]++;
        if (status != 200)
            w->errors++;
    }
    if (status != 200 && atomic_fetch_add(&sh->shown, 1) < SHOW_NON_200) {
        const char *eol = memchr(r->wire, '\r', r->len);
        fprintf(stderr, "%d for %.*s: %.300s\n", status, eol ? (int)(eol - r->wire) : 40, r->wire, body);
    }
    record(w, c->start, done - c->start);
    if (counted && status == 200 && r->expect) {
        double rc = answer_recall(body, r, o->k);
        if (rc >= 0) {
            w->recall_sum += rc;
            w->recall_n++;
        }
    }
    c->r = NULL;
}

static void watch(int ep, conn *c)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (c->fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static void *run(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    int ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1 failed");
    for (int i = 0; i < w->n_conns; i++) {
        conn *c = &w->conns[i];
        c->cap = 1 << 16;
        c->buf = malloc(c->cap);
        c->fd = bench_connect(sh->o->host, sh->o->port);
        watch(ep, c);
    }
    sleep_until(sh->t0);
    bool sending = true;
    double drain_until = sh->t_end + 30; /* answers still out after the run: given up then */
    for (;;) {
        double now = vd_now_s();
        double wake_at = sending ? sh->t_end : drain_until;
        int in_flight = 0;
        for (int i = 0; i < w->n_conns; i++) {
            conn *c = &w->conns[i];
            if (c->fd < 0) { /* broken: reconnect (after a pause, as a client would) */
                usleep(1000);
                c->fd = bench_connect(sh->o->host, sh->o->port);
                watch(ep, c);
            }
            if (!c->r && sending && c->fd >= 0 && !send_next(w, c, now, &wake_at))
                sending = false;
            in_flight += c->r != NULL;
        }
        if ((!in_flight && !sending) || now >= drain_until)
            break;
        struct epoll_event evs[64];
        double wait_s = wake_at - vd_now_s();
        int timeout = wait_s <= 0 ? 0 : (int)(wait_s * 1e3) + 1;
        int n = epoll_wait(ep, evs, 64, timeout);
        for (int e = 0; e < n; e++) {
            conn *c = evs[e].data.ptr;
            if (!c->r) { /* readable with nothing asked: the server closed it */
                char byte;
                if (recv(c->fd, &byte, 1, MSG_DONTWAIT | MSG_PEEK) == 0)
                    drop_conn(w, c);
                continue;
            }
            int status;
            char *body;
            int got = read_some(c, &status, &body);
            if (got > 0) {
                finish(w, c, status, body);
                if (sending && !send_next(w, c, vd_now_s(), &wake_at))
                    sending = false;
            } else if (got < 0) {
                drop_conn(w, c);
            }
        }
    }
    for (int i = 0; i < w->n_conns; i++) {
        if (w->conns[i].fd >= 0)
            close(w->conns[i].fd);
        free(w->conns[i].buf);
    }
    close(ep);
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
                    "[--connections 1] [--seconds 10] [--rate R] [--warmup 1] [--threads 1] "
                    "[--host 127.0.0.1] [--server-pid PID]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    options o = {.host = "127.0.0.1", .connections = 1, .threads = 1, .seconds = 10, .warmup = 1, .k = 10};
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
        else if (!strcmp(a, "--threads"))
            o.threads = atoi(v);
        else if (!strcmp(a, "--warmup"))
            o.warmup = atof(v);
        else if (!strcmp(a, "--server-pid"))
            o.server_pid = atoi(v);
        else
            usage();
    }
    if (!o.port || !o.requests || o.connections < 1 || o.threads < 1 || o.seconds <= 0 || o.k < 1 || o.warmup < 0)
        usage();
    shared sh = {.o = &o};
    load_requests(&sh, &o);
    int threads = o.threads < o.connections ? o.threads : o.connections;
    worker *ws = calloc((size_t)threads, sizeof *ws);
    conn *conns = calloc((size_t)o.connections, sizeof *conns);
    sh.t0 = vd_now_s() + 0.05 + 0.002 * o.connections; /* let every thread start and connect */
    sh.t_measure = sh.t0 + o.warmup;
    sh.t_end = sh.t_measure + o.seconds;
    for (int i = 0; i < threads; i++)
        ws[i] = (worker){.sh = &sh, .id = i, .conns = conns + (size_t)i * (size_t)o.connections / (size_t)threads,
                         .n_conns = (int)((size_t)(i + 1) * (size_t)o.connections / (size_t)threads -
                                          (size_t)i * (size_t)o.connections / (size_t)threads)};
    for (int j = 0; j < o.connections; j++)
        conns[j] = (conn){.fd = -1, .mine = j};
    for (int i = 0; i < threads; i++)
        if (pthread_create(&ws[i].th, NULL, run, &ws[i]) != 0)
            die("cannot start a thread");
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
    for (int i = 0; i < threads; i++) {
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
    for (int i = 0; i < threads; i++) {
        if (ws[i].n_lat) /* a thread may have had no request in the window */
            memcpy(all + k, ws[i].lat, ws[i].n_lat * sizeof *all);
        k += ws[i].n_lat;
        free(ws[i].lat);
    }
    qsort(all, n_lat, sizeof *all, cmp_double);
    printf("{\"mode\":\"%s\",\"threads\":%d,\"connections\":%d,\"rate\":%g,\"requests\":%zu,\"errors\":%ld,"
           "\"seconds\":%.3f,\"qps\":%.1f,\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,"
           "\"p999_ms\":%.4f,\"max_ms\":%.4f,\"recall\":",
           o.rate > 0 ? "open" : "closed", threads, o.connections, o.rate, n_lat, errors, o.seconds,
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
    free(conns);
    for (size_t i = 0; i < sh.n_reqs; i++) {
        free(sh.reqs[i].wire);
        for (size_t e = 0; e < sh.reqs[i].n_expect; e++)
            free(sh.reqs[i].expect[e]);
        free(sh.reqs[i].expect);
        free(sh.reqs[i].expect_num);
    }
    free(sh.reqs);
    return 0;
}

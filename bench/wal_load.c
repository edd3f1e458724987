/*
 * wal_load.c — acknowledged single-point upserts per second against a
 * running vectord: C clients, one keep-alive connection each, each sending
 * PUT /collections/{c}/points with one point and waiting for its answer
 * before the next (so every request is one acknowledged, durable write).
 *
 *   bench_wal_load PORT COLLECTION DIM CLIENTS SECONDS [ID_BASE]
 *
 * Prints one line: clients, upserts, seconds, upserts/s, p50/p99 latency ms.
 * Vectors are formatted before the clock starts; the answer is read to its
 * last byte (Content-Length). A non-200 answer stops that client and is
 * counted as an error. bench/durability.py runs it and makes the table.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"

typedef struct client {
    int port, dim, id;
    long id_base;
    const char *coll;
    double seconds;
    long done, errors;
    double *lat;
    size_t n_lat, cap_lat;
    pthread_t th;
} client;

static _Atomic int go;

/* Reads one HTTP response; returns its status or -1. */
static int read_response(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    char *body = NULL;
    long clen = -1;
    for (;;) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        buf[got] = 0;
        if (!body && (body = strstr(buf, "\r\n\r\n"))) {
            body += 4;
            char *cl = strcasestr(buf, "Content-Length:");
            clen = cl ? strtol(cl + 15, NULL, 10) : 0;
        }
        if (body && (long)(got - (size_t)(body - buf)) >= clen)
            return atoi(buf + 9);
        if (got + 1 >= cap)
            return -1;
    }
}

static void *run(void *arg)
{
    client *c = arg;
    int fd = bench_connect("127.0.0.1", c->port);
    if (fd < 0) {
        c->errors++;
        return NULL;
    }
    /* VECS vector texts per client, formatted before the clock starts; a
     * request only prints its id in front of one of them. */
    enum { VECS = 32 };
    size_t cap = 64 + (size_t)c->dim * 12 + 512;
    char *vecs[VECS], *req = malloc(2 * cap), resp[8192];
    size_t vlen[VECS];
    for (int v = 0; v < VECS; v++) {
        vecs[v] = malloc(cap);
        size_t n = 0;
        for (int k = 0; k < c->dim; k++)
            n += (size_t)snprintf(vecs[v] + n, cap - n, "%s%.4f", k ? "," : "",
                                  (double)((c->id * 131 + v * 31 + k * 17) % 1000) / 1000.0 - 0.5);
        vlen[v] = n;
    }
    while (!atomic_load(&go))
        ;
    double t_end = vd_now_s() + c->seconds;
    for (long i = 0;; i++) {
        double t0 = vd_now_s();
        if (t0 >= t_end)
            break;
        long id = c->id_base + (long)c->id * 100000000L + i;
        char head[128];
        int hn = snprintf(head, sizeof head, "{\"points\":[{\"id\":%ld,\"payload\":{\"userId\":\"u%d\"},\"vector\":[",
                          id, c->id);
        size_t blen = (size_t)hn + vlen[i % VECS] + 4;
        int h = snprintf(req, 2 * cap,
                         "PUT /collections/%s/points HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                         c->coll, blen, head);
        memcpy(req + h, vecs[i % VECS], vlen[i % VECS]);
        memcpy(req + h + vlen[i % VECS], "]}]}", 4);
        int n = (int)(blen - (size_t)hn);
        t0 = vd_now_s(); /* encoding is not the server's time */
        if (write(fd, req, (size_t)(h + n)) != h + n || read_response(fd, resp, sizeof resp) != 200) {
            c->errors++;
            break;
        }
        if (c->n_lat == c->cap_lat) {
            c->cap_lat = c->cap_lat ? c->cap_lat * 2 : 4096;
            c->lat = realloc(c->lat, c->cap_lat * sizeof *c->lat);
        }
        c->lat[c->n_lat++] = vd_now_s() - t0;
        c->done++;
    }
    close(fd);
    for (int v = 0; v < VECS; v++)
        free(vecs[v]);
    free(req);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s PORT COLLECTION DIM CLIENTS SECONDS [ID_BASE]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]), dim = atoi(argv[3]), n = atoi(argv[4]);
    double secs = atof(argv[5]);
    long base = argc > 6 ? atol(argv[6]) : 0;
    client *cs = calloc((size_t)n, sizeof *cs);
    for (int i = 0; i < n; i++) {
        cs[i] = (client){.port = port, .dim = dim, .id = i, .id_base = base, .coll = argv[2],
                         .seconds = secs};
        pthread_create(&cs[i].th, NULL, run, &cs[i]);
    }
    double t0 = vd_now_s();
    atomic_store(&go, 1);
    long done = 0, errors = 0;
    size_t n_lat = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(cs[i].th, NULL);
        done += cs[i].done;
        errors += cs[i].errors;
        n_lat += cs[i].n_lat;
    }
    double el = vd_now_s() - t0;
    double *all = malloc((n_lat ? n_lat : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        memcpy(all + k, cs[i].lat, cs[i].n_lat * sizeof *all);
        k += cs[i].n_lat;
        free(cs[i].lat);
    }
    qsort(all, n_lat, sizeof *all, cmp_double);
    double p50 = n_lat ? all[n_lat / 2] : 0, p99 = n_lat ? all[(size_t)(n_lat * 0.99)] : 0;
    printf("clients=%d upserts=%ld seconds=%.2f rate=%.0f p50_ms=%.3f p99_ms=%.3f errors=%ld\n", n,
           done, el, (double)done / el, p50 * 1e3, p99 * 1e3, errors);
    free(all);
    free(cs);
    return errors ? 1 : 0;
}

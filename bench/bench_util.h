/* bench_util.h — sorting, connection and data-set helpers shared by the C benchmarks (timing: util/clock.h). */
#ifndef VD_BENCH_UTIL_H
#define VD_BENCH_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h" /* vd_now_s */

/* qsort comparator for doubles, ascending (latency percentiles). */
static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A TCP connection to host:port (IPv4 text) with Nagle off, or -1. */
static inline int bench_connect(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (fd < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* An fvecs/ivecs file (rows of int32 d, then d 4-byte values) as n × d
 * values, row after row; exits with a message when it cannot be read. */
static inline void *bench_read_vecs(const char *path, size_t *n, size_t *d)
{
    FILE *f = fopen(path, "rb");
    int32_t dim;
    if (!f || fread(&dim, 4, 1, f) != 1 || dim <= 0) {
        fprintf(stderr, "cannot read %s (bench/datagen.py makes the data sets)\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    *d = (size_t)dim;
    *n = (size_t)bytes / (4 * (size_t)(dim + 1));
    char *out = malloc(*n * *d * 4), *row = malloc(4 * (size_t)(dim + 1));
    for (size_t i = 0; i < *n; i++) {
        if (fread(row, 4, (size_t)dim + 1, f) != (size_t)dim + 1) {
            fprintf(stderr, "%s: short row %zu\n", path, i);
            exit(1);
        }
        memcpy(out + i * *d * 4, row + 4, *d * 4);
    }
    free(row);
    fclose(f);
    return out;
}

#endif

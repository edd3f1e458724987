/* bench_json_parse — what a request's vector costs to read, before any search:
 * a dim-d vector sent as JSON numbers (the body scan that lifts it into floats,
 * server/json_scan.h) against the same vector as vector_b64 (base64 decode),
 * for embedding-like values printed with 9 significant digits.
 *   build/bench/bench_json_parse [--dim 1536] [--iters 5000]
 * Prints a table: microseconds per body and per value, and the JSON/base64 ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/json_scan.h"
#include "util/base64.h"
#include "util/clock.h"

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t encode_b64(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = b64chars[v >> 18 & 63];
        out[o++] = b64chars[v >> 12 & 63];
        out[o++] = i + 1 < n ? b64chars[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? b64chars[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

int main(int argc, char **argv)
{
    int dim = 1536, iters = 5000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dim") == 0)
            dim = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--iters") == 0)
            iters = atoi(argv[i + 1]);
    }
    if (dim < 1 || iters < 1)
        return 2;
    float *vec = malloc((size_t)dim * sizeof *vec);
    char *body = malloc((size_t)dim * 24 + 64), *work = malloc((size_t)dim * 24 + 64);
    char *b64 = malloc((size_t)dim * 8 + 8);
    uint8_t *decoded = malloc((size_t)dim * 4 + 4);
    unsigned seed = 1;
    int n = sprintf(body, "{\"vector\":[");
    for (int i = 0; i < dim; i++) {
        vec[i] = (float)((rand_r(&seed) / (double)RAND_MAX - 0.5) * 0.2);
        n += sprintf(body + n, "%s%.9g", i ? "," : "", (double)vec[i]);
    }
    n += sprintf(body + n, "],\"k\":10}");
    size_t b64len = encode_b64((const unsigned char *)vec, (size_t)dim * 4, b64);

    double t0 = vd_now_s();
    for (int it = 0; it < iters; it++) {
        memcpy(work, body, (size_t)n + 1);
        vd_json_vectors v = {0};
        vd_json_scan_stats st;
        vd_errmsg em;
        if (vd_json_scan(work, (size_t)n, &v, &st, &em) != 0 || v.n != 1 || v.count[0] != (size_t)dim) {
            fprintf(stderr, "the scan did not lift the vector\n");
            return 1;
        }
        vd_json_vectors_free(&v);
    }
    double json_us = (vd_now_s() - t0) * 1e6 / iters;
    t0 = vd_now_s();
    for (int it = 0; it < iters; it++)
        if (vd_base64_decode(b64, b64len, decoded) != 0) {
            fprintf(stderr, "base64 decode failed\n");
            return 1;
        }
    double b64_us = (vd_now_s() - t0) * 1e6 / iters;
    if (memcmp(decoded, vec, (size_t)dim * 4) != 0)
        return 1;
    printf("| %d-d vector | bytes | µs per body | ns per value |\n|---|---|---|---|\n", dim);
    printf("| JSON numbers (scan + lift) | %d | %.1f | %.1f |\n", n, json_us, json_us * 1e3 / dim);
    printf("| vector_b64 (decode) | %zu | %.1f | %.1f |\n", b64len, b64_us, b64_us * 1e3 / dim);
    printf("JSON / base64: %.1f×\n", json_us / b64_us);
    free(vec);
    free(body);
    free(work);
    free(b64);
    free(decoded);
    return 0;
}

/* bench_json_vectors — what a vector costs in JSON, before and after a search:
 * reading a dim-d vector sent as JSON numbers (the body scan that lifts it
 * into floats, server/json_scan.h) against the same vector as vector_b64
 * (base64 decode), and writing one into an answer (util/fmtfloat.h) against
 * printf("%.9g"), for embedding-like values.
 *   build/bench/bench_json_vectors [--dim 1536] [--iters 5000] [--digits 9] [--sep ", "]
 * --digits: significant digits the JSON numbers are written with (%.Ng):
 * 9 round-trips a float32; 17 is what Python's json.dumps writes for a
 * float32 made a double (numpy's tolist()), the form MemoryService sends.
 * --sep: what goes between numbers ("," by default; Python's json.dumps
 * writes ", ").
 * The JSON read is timed with each array reader (util/json_float.h): the
 * portable one and, where the CPU has it, the AVX-512 one.
 * Prints a table: microseconds per vector and nanoseconds per value. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/json_scan.h"
#include "util/base64.h"
#include "util/clock.h"
#include "util/fmtfloat.h"
#include "util/json_float.h"

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

/* Microseconds per scan of body (n bytes, one dim-d vector) with the
 * portable JSON array reader or the AVX-512 one; exits on a failed scan. */
static double scan_us(const char *body, char *work, size_t n, int dim, int iters, bool simd)
{
    vd_json_float_init(simd);
    double t0 = vd_now_s();
    for (int it = 0; it < iters; it++) {
        memcpy(work, body, n + 1);
        vd_json_vectors v = {0};
        vd_json_scan_stats st;
        vd_errmsg em;
        if (vd_json_scan(work, n, &v, &st, &em) != 0 || v.n != 1 || v.count[0] != (size_t)dim) {
            fprintf(stderr, "the scan did not lift the vector\n");
            exit(1);
        }
        vd_json_vectors_free(&v);
    }
    return (vd_now_s() - t0) * 1e6 / iters;
}

int main(int argc, char **argv)
{
    int dim = 1536, iters = 5000, digits = 9;
    const char *sep = ",";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dim") == 0)
            dim = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--iters") == 0)
            iters = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--digits") == 0)
            digits = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--sep") == 0)
            sep = argv[i + 1];
    }
    if (dim < 1 || iters < 1 || digits < 1 || digits > 17)
        return 2;
    float *vec = malloc((size_t)dim * sizeof *vec);
    if (strlen(sep) > 8)
        return 2;
    char *body = malloc((size_t)dim * 32 + 64), *work = malloc((size_t)dim * 32 + 64);
    char *b64 = malloc((size_t)dim * 8 + 8);
    uint8_t *decoded = malloc((size_t)dim * 4 + 4);
    unsigned seed = 1;
    int n = sprintf(body, "{\"vector\":[");
    for (int i = 0; i < dim; i++) {
        vec[i] = (float)((rand_r(&seed) / (double)RAND_MAX - 0.5) * 0.2);
        n += sprintf(body + n, "%s%.*g", i ? sep : "", digits, (double)vec[i]);
    }
    n += sprintf(body + n, "],\"k\":10}");
    size_t b64len = encode_b64((const unsigned char *)vec, (size_t)dim * 4, b64);

    double json_us = scan_us(body, work, (size_t)n, dim, iters, false);
    double simd_us = vd_json_float_init(true) ? scan_us(body, work, (size_t)n, dim, iters, true) : 0;
    double t0 = vd_now_s();
    for (int it = 0; it < iters; it++)
        if (vd_base64_decode(b64, b64len, decoded) != 0) {
            fprintf(stderr, "base64 decode failed\n");
            return 1;
        }
    double b64_us = (vd_now_s() - t0) * 1e6 / iters;
    if (memcmp(decoded, vec, (size_t)dim * 4) != 0)
        return 1;
    char *text = malloc((size_t)dim * VD_FMT_FLOAT_MAX + 1);
    size_t out_printf = 0, out_fmt = 0;
    t0 = vd_now_s();
    for (int it = 0; it < iters; it++) {
        out_printf = 0;
        for (int i = 0; i < dim; i++)
            out_printf += (size_t)snprintf(text + out_printf, VD_FMT_FLOAT_MAX, "%.9g", (double)vec[i]);
    }
    double printf_us = (vd_now_s() - t0) * 1e6 / iters;
    t0 = vd_now_s();
    for (int it = 0; it < iters; it++) {
        out_fmt = 0;
        for (int i = 0; i < dim; i++)
            out_fmt += vd_fmt_float(vec[i], text + out_fmt);
    }
    double fmt_us = (vd_now_s() - t0) * 1e6 / iters;
    if (out_fmt != out_printf)
        return 1;
    printf("| %d-d vector | bytes | µs per vector | ns per value |\n|---|---|---|---|\n", dim);
    printf("| read: JSON numbers (scan + lift), portable reader | %d | %.1f | %.1f |\n", n, json_us,
           json_us * 1e3 / dim);
    if (simd_us > 0)
        printf("| read: JSON numbers (scan + lift), AVX-512 reader | %d | %.1f | %.1f |\n", n, simd_us,
               simd_us * 1e3 / dim);
    else
        printf("| read: JSON numbers, AVX-512 reader | - | this CPU lacks it | - |\n");
    printf("| read: vector_b64 (decode) | %zu | %.1f | %.1f |\n", b64len, b64_us, b64_us * 1e3 / dim);
    printf("| write: printf(\"%%.9g\") | %zu | %.1f | %.1f |\n", out_printf, printf_us, printf_us * 1e3 / dim);
    printf("| write: vd_fmt_float | %zu | %.1f | %.1f |\n", out_fmt, fmt_us, fmt_us * 1e3 / dim);
    printf("read JSON / base64: %.1f× portable, %.1f× AVX-512; write printf / vd_fmt_float: %.1f×\n",
           json_us / b64_us, simd_us / b64_us, printf_us / fmt_us);
    free(text);
    free(vec);
    free(body);
    free(work);
    free(b64);
    free(decoded);
    return 0;
}

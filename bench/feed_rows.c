/*
 * bench_feed_rows — "Memory" rows for the feed benchmark (bench/feed.py), as
 * COPY text on stdout: fast enough to fill a million 1536-d rows in minutes,
 * where generating them in SQL takes about 20 times longer.
 *
 *   bench_feed_rows BASE.fvecs ROWS [JITTER]
 *
 * Row i is `mem_i`, user `u(i % 1000)`, agent `a(i % 50)`, type `fact`,
 * content `memory i`, and an embedding as JSON array text: BASE's vector
 * i % n, and from the second pass over BASE on, that vector moved by gaussian
 * noise of JITTER (default 0.05) times its norm in total (a fixed seed per
 * row). Embedding-like data (BASE from bench/datagen.py or a real set), so
 * recall during the feed's catch-up means something; uniform random vectors
 * in 1536 dimensions have no near neighbours to find.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "util/fmtfloat.h"

/* A row's noise: SplitMix64 seeded by the row number, two uniforms per
 * Box-Muller pair. */
static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return ((double)(splitmix(s) >> 11) + 0.5) * 0x1.0p-53; }

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s BASE.fvecs ROWS [JITTER]\n", argv[0]);
        return 2;
    }
    size_t n, dim;
    float *base = bench_read_vecs(argv[1], &n, &dim);
    if (n == 0) {
        fprintf(stderr, "%s holds no vectors\n", argv[1]);
        return 1;
    }
    size_t rows = strtoull(argv[2], NULL, 10);
    double jitter = argc > 3 ? atof(argv[3]) : 0.05;
    float *v = malloc(dim * sizeof *v);
    char *line = malloc(256 + dim * 24);
    static char out[1 << 20];
    setvbuf(stdout, out, _IOFBF, sizeof out);
    for (size_t i = 0; i < rows; i++) {
        const float *b = base + (i % n) * dim;
        memcpy(v, b, dim * sizeof *v);
        if (i >= n) {
            double norm = 0;
            for (size_t j = 0; j < dim; j++)
                norm += (double)b[j] * b[j];
            double sd = jitter * sqrt(norm / dim);
            uint64_t s = i;
            for (size_t j = 0; j + 1 < dim; j += 2) {
                double r = sqrt(-2 * log(uniform01(&s))), t = 2 * M_PI * uniform01(&s);
                v[j] += (float)(sd * r * cos(t));
                v[j + 1] += (float)(sd * r * sin(t));
            }
        }
        size_t at = (size_t)sprintf(line, "mem_%zu\tu%zu\ta%zu\tfact\tmemory %zu\t[", i, i % 1000, i % 50, i);
        for (size_t j = 0; j < dim; j++) {
            if (j)
                line[at++] = ',';
            at += vd_fmt_float(v[j], line + at);
        }
        line[at++] = ']';
        line[at++] = '\n';
        if (fwrite(line, 1, at, stdout) != at)
            return 1;
    }
    free(line);
    free(v);
    free(base);
    return fflush(stdout) == 0 ? 0 : 1;
}

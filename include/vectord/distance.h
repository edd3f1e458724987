/*
 * distance.h — float32 distance kernels with run-time ISA dispatch.
 *
 * Naming: vd_dist_<metric>_<dtype>_<isa>. The portable scalar kernels are the
 * reference; the AVX2+FMA and AVX-512 kernels are tested against them for every
 * dim 1..1100 and unaligned pointers. Callers use the dispatch table, filled
 * once by vd_distance_init() before any thread starts.
 */
#ifndef VECTORD_DISTANCE_H
#define VECTORD_DISTANCE_H

#include <stdbool.h>
#include <stddef.h>

typedef float (*vd_dist_fn)(const float *a, const float *b, size_t dim);

typedef enum vd_isa { VD_ISA_SCALAR = 0, VD_ISA_AVX2 = 1, VD_ISA_AVX512 = 2 } vd_isa;

typedef struct vd_distance_table {
    vd_isa isa;
    vd_dist_fn dot;  /* sum a[i]*b[i] */
    vd_dist_fn l2sq; /* sum (a[i]-b[i])^2 */
} vd_distance_table;

/* Portable reference kernels: 8 float32 partial sums, summed pairwise. */
float vd_dist_dot_f32_scalar(const float *a, const float *b, size_t dim);
float vd_dist_l2sq_f32_scalar(const float *a, const float *b, size_t dim);
/* AVX2+FMA: two 8-lane accumulators, masked-free scalar tail. Only call when
 * vd_isa_supported(VD_ISA_AVX2). */
float vd_dist_dot_f32_avx2(const float *a, const float *b, size_t dim);
float vd_dist_l2sq_f32_avx2(const float *a, const float *b, size_t dim);
/* AVX-512F: two 16-lane accumulators, masked-load tail. */
float vd_dist_dot_f32_avx512(const float *a, const float *b, size_t dim);
float vd_dist_l2sq_f32_avx512(const float *a, const float *b, size_t dim);

/* Whether this CPU and OS can run an ISA (CPUID + XGETBV). */
bool vd_isa_supported(vd_isa isa);
const char *vd_isa_name(vd_isa isa);
/* Parses "scalar" | "avx2" | "avx512" | "auto" (auto = -1). */
int vd_isa_parse(const char *name, int *out);

/* Fills the table for the best supported ISA, capped at `max_isa` (pass -1
 * for no cap). Returns the table; it is immutable afterwards. */
const vd_distance_table *vd_distance_init(int max_isa);
/* The table filled by vd_distance_init (the scalar table before that). It is
 * the one process-wide dispatch table: written once before threads start,
 * read-only afterwards, and read inline on the hot path. */
extern const vd_distance_table *vd_distance_active;
static inline const vd_distance_table *vd_distance(void) { return vd_distance_active; }
/* A table for one ISA, for tests and benchmarks; NULL if unsupported. */
const vd_distance_table *vd_distance_for(vd_isa isa);

/* Scales v to unit L2 norm in place; returns the original norm. */
float vd_normalize(float *v, size_t dim);

#endif

/*
 * distance.h — distance kernels with run-time ISA dispatch: float32 against
 * float32, float32 against fp16 codes, and uint8 codes against an int8 query
 * (the sq8 quantizer, vectord/quant.h, builds its keys on the last).
 *
 * Naming: vd_dist_<metric>_<dtype>_<isa>. The portable scalar kernels are the
 * reference; the SIMD kernels are tested against them for every dim 1..1100
 * and unaligned pointers. Callers use the dispatch table, filled once by
 * vd_distance_init() before any thread starts.
 */
#ifndef VECTORD_DISTANCE_H
#define VECTORD_DISTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef float (*vd_dist_fn)(const float *a, const float *b, size_t dim);
/* a float32 query against an IEEE binary16 vector */
typedef float (*vd_dist_f16_fn)(const float *a, const uint16_t *b, size_t dim);
/* sum c[i]*q[i], exact in int32 for dim <= 65536 (255 * 127 * 65536 < 2^31) */
typedef int32_t (*vd_dist_u8s8_fn)(const uint8_t *c, const int8_t *q, size_t dim);

/* Levels, each a superset of the one before: AVX2 means AVX2 + FMA + F16C;
 * AVX512 means AVX-512F (its byte kernel is AVX2's);
 * AVX512_VNNI adds AVX-512BW + VNNI (VPDPBUSD) for the byte kernel. */
typedef enum vd_isa {
    VD_ISA_SCALAR = 0,
    VD_ISA_AVX2 = 1,
    VD_ISA_AVX512 = 2,
    VD_ISA_AVX512_VNNI = 3,
} vd_isa;
#define VD_ISA_COUNT 4

typedef struct vd_distance_table {
    vd_isa isa;
    vd_dist_fn dot;          /* sum a[i]*b[i] */
    vd_dist_fn l2sq;         /* sum (a[i]-b[i])^2 */
    vd_dist_f16_fn dot_f16;  /* sum a[i]*half(b[i]) */
    vd_dist_f16_fn l2sq_f16; /* sum (a[i]-half(b[i]))^2 */
    vd_dist_u8s8_fn dot_u8s8;
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

/* fp16 codes: halves widened to float32 (F16C / AVX-512F VCVTPH2PS), then as
 * the float32 kernels; the scalar one converts in software. */
float vd_dist_dot_f16_scalar(const float *a, const uint16_t *b, size_t dim);
float vd_dist_l2sq_f16_scalar(const float *a, const uint16_t *b, size_t dim);
float vd_dist_dot_f16_avx2(const float *a, const uint16_t *b, size_t dim);
float vd_dist_l2sq_f16_avx2(const float *a, const uint16_t *b, size_t dim);
float vd_dist_dot_f16_avx512(const float *a, const uint16_t *b, size_t dim);
float vd_dist_l2sq_f16_avx512(const float *a, const uint16_t *b, size_t dim);

/* Byte codes: integer sums, so every path returns the same number. AVX2 widens
 * to int16 and uses VPMADDWD (VPMADDUBSW would saturate);
 * VNNI multiplies and adds four byte pairs per lane in one VPDPBUSD. */
int32_t vd_dist_dot_u8s8_scalar(const uint8_t *c, const int8_t *q, size_t dim);
int32_t vd_dist_dot_u8s8_avx2(const uint8_t *c, const int8_t *q, size_t dim);
int32_t vd_dist_dot_u8s8_avx512vnni(const uint8_t *c, const int8_t *q, size_t dim);

/* IEEE binary16 <-> binary32, round to nearest even; out-of-range floats
 * become ±infinity (callers clamp first), NaN stays NaN. */
uint16_t vd_f16_from_f32(float f);
float vd_f32_from_f16(uint16_t h);

/* Whether this CPU and OS can run an ISA (CPUID + XGETBV). */
bool vd_isa_supported(vd_isa isa);
const char *vd_isa_name(vd_isa isa);
/* Parses "scalar" | "avx2" | "avx512" | "avx512vnni" | "auto" (auto = -1). */
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

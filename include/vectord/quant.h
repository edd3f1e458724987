/*
 * quant.h — vector quantization: compact codes that indexes traverse instead
 * of the float32 vectors, whose keys approximate vd_index_key (the shard then
 * re-ranks the best candidates with the originals).
 *
 *   fp16  IEEE binary16 per dimension (2 bytes), values clamped to ±65504.
 *         Relative error per value ≤ 2^-11 (normal range).
 *   sq8   per-vector scalar quantization: lo = min x, step = (max x − lo)/255,
 *         c[i] = round((x[i] − lo)/step) in one byte; x̂[i] = lo + step·c[i].
 *         Per vector rather than per dimension: nothing to train, nothing to
 *         retrain as data drifts, every write encodes alone. Code layout:
 *         f32 lo | f32 step | f32 ‖x̂‖² | dim bytes, padded to 4 bytes.
 *
 * sq8 keys use integer dot products: the query is quantized once per search
 * to int8 with one scale β = max|q|/127 (v[i] = round(q[i]/β)), and
 *   q·x̂ = (lo + 128·step)·Σq + step·β·(Σ v[i]c[i] − 128·Σv)   (approximately:
 *   only the part of q that multiplies c[i] − 128 is quantized, which keeps
 *   the query's rounding error from being multiplied by the codes' mean).
 * Error bound of the sq8 dot product against the original x (documented in
 * docs/QUANTIZATION.md, checked by tests/unit/index/test_quant.c):
 *   |q·x − key| ≤ step/2·Σ|q[i]| + step·β/2·Σ|c[i] − 128|  (+ float rounding)
 * and twice that for L2 (‖q − x̂‖² = ‖q‖² + ‖x̂‖² − 2q·x̂).
 */
#ifndef VECTORD_QUANT_H
#define VECTORD_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vectord/distance.h"
#include "vectord/types.h"

/* Numbers are written to the WAL and snapshots: frozen. */
typedef enum vd_quant { VD_QUANT_NONE = 0, VD_QUANT_FP16 = 1, VD_QUANT_SQ8 = 2 } vd_quant;

#define VD_QUANT_SQ8_HEADER 12u
#define VD_QUANT_FP16_MAX 65504.0f

const char *vd_quant_name(vd_quant q);
/* "none" | "fp16" | "sq8"; -1 if unknown. */
int vd_quant_parse(const char *name, vd_quant *out);
/* Bytes of one vector's code (0 for none). */
size_t vd_quant_code_size(vd_quant q, uint32_t dim);
/* Writes x's code (vd_quant_code_size bytes). */
void vd_quant_encode(vd_quant q, const float *x, uint32_t dim, uint8_t *code);
/* The vector a code stands for (x̂). */
void vd_quant_decode(vd_quant q, const uint8_t *code, uint32_t dim, float *out);

/* A query made ready for one quantizer's keys; built once per search. */
typedef struct vd_quant_query {
    vd_quant quant;
    vd_metric metric;
    uint32_t dim;
    const float *f; /* the float query (normalised for cosine) */
    /* sq8 only: */
    int8_t *q8;     /* dim bytes, the caller's buffer */
    float q8_scale; /* β */
    int32_t q8_sum; /* Σ v[i] */
    float sum;      /* Σ q[i] */
    float norm2;    /* ‖q‖² (L2) */
} vd_quant_query;

/* q8buf: dim bytes for sq8 (may be NULL otherwise). f is borrowed. */
void vd_quant_query_init(vd_quant_query *qq, vd_quant quant, vd_metric metric, const float *f,
                         uint32_t dim, int8_t *q8buf);

/* Key (lower is better) of a code against a prepared query; approximates
 * vd_index_key(metric, q, x) of the vector the code was made from. */
static inline float vd_quant_key(const vd_quant_query *qq, const uint8_t *code)
{
    const vd_distance_table *d = vd_distance();
    if (qq->quant == VD_QUANT_FP16) {
        const uint16_t *h = (const uint16_t *)(const void *)code;
        return qq->metric == VD_METRIC_L2 ? d->l2sq_f16(qq->f, h, qq->dim)
                                          : -d->dot_f16(qq->f, h, qq->dim);
    }
    float hdr[3]; /* lo, step, ‖x̂‖² */
    memcpy(hdr, code, sizeof hdr);
    int32_t dot = d->dot_u8s8(code + VD_QUANT_SQ8_HEADER, qq->q8, qq->dim);
    float qx = (hdr[0] + 128.0f * hdr[1]) * qq->sum +
               hdr[1] * qq->q8_scale * (float)((int64_t)dot - 128 * (int64_t)qq->q8_sum);
    return qq->metric == VD_METRIC_L2 ? qq->norm2 + hdr[2] - 2.0f * qx : -qx;
}

/* The largest |key − exact key| the code can give for this query (the bounds
 * above, plus float rounding); for tests and documentation. */
double vd_quant_error_bound(const vd_quant_query *qq, const uint8_t *code);

#endif

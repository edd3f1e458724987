/* quant.c — fp16 and sq8 codes, prepared queries, error bounds (quant.h). */
#include "vectord/quant.h"

#include <math.h>

static const char *const quant_names[] = {"none", "fp16", "sq8"};

const char *vd_quant_name(vd_quant q) { return (unsigned)q <= VD_QUANT_SQ8 ? quant_names[q] : "?"; }

int vd_quant_parse(const char *name, vd_quant *out)
{
    for (int i = 0; i <= VD_QUANT_SQ8; i++) {
        if (strcmp(name, quant_names[i]) == 0) {
            *out = (vd_quant)i;
            return 0;
        }
    }
    return -1;
}

size_t vd_quant_code_size(vd_quant q, uint32_t dim)
{
    if (q == VD_QUANT_FP16)
        return ((size_t)dim * 2 + 3) & ~(size_t)3;
    if (q == VD_QUANT_SQ8)
        return VD_QUANT_SQ8_HEADER + (((size_t)dim + 3) & ~(size_t)3);
    return 0;
}

static void encode_sq8(const float *x, uint32_t dim, uint8_t *code)
{
    float lo = x[0], hi = x[0];
    for (uint32_t i = 1; i < dim; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    /* in double: hi − lo may exceed FLT_MAX for extreme inputs */
    double step = ((double)hi - (double)lo) / 255.0;
    float stepf = (float)step;
    uint8_t *c = code + VD_QUANT_SQ8_HEADER;
    double norm2 = 0;
    for (uint32_t i = 0; i < dim; i++) {
        double r = step > 0 ? ((double)x[i] - lo) / step : 0.0;
        long v = lrint(r);
        c[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        double xh = (double)lo + (double)stepf * c[i];
        norm2 += xh * xh;
    }
    size_t padded = vd_quant_code_size(VD_QUANT_SQ8, dim) - VD_QUANT_SQ8_HEADER;
    memset(c + dim, 0, padded - dim);
    float hdr[3] = {lo, stepf, (float)norm2};
    memcpy(code, hdr, sizeof hdr);
}

void vd_quant_encode(vd_quant q, const float *x, uint32_t dim, uint8_t *code)
{
    if (q == VD_QUANT_FP16) {
        uint16_t h[64];
        for (uint32_t i = 0; i < dim; i += 64) {
            uint32_t n = dim - i < 64 ? dim - i : 64;
            for (uint32_t j = 0; j < n; j++) {
                float v = x[i + j];
                v = v > VD_QUANT_FP16_MAX ? VD_QUANT_FP16_MAX : v < -VD_QUANT_FP16_MAX ? -VD_QUANT_FP16_MAX : v;
                h[j] = vd_f16_from_f32(v);
            }
            memcpy(code + (size_t)i * 2, h, n * 2);
        }
        size_t size = vd_quant_code_size(q, dim);
        memset(code + (size_t)dim * 2, 0, size - (size_t)dim * 2);
    } else if (q == VD_QUANT_SQ8) {
        encode_sq8(x, dim, code);
    }
}

void vd_quant_decode(vd_quant q, const uint8_t *code, uint32_t dim, float *out)
{
    if (q == VD_QUANT_FP16) {
        for (uint32_t i = 0; i < dim; i++) {
            uint16_t h;
            memcpy(&h, code + (size_t)i * 2, 2);
            out[i] = vd_f32_from_f16(h);
        }
    } else if (q == VD_QUANT_SQ8) {
        float hdr[3];
        memcpy(hdr, code, sizeof hdr);
        const uint8_t *c = code + VD_QUANT_SQ8_HEADER;
        for (uint32_t i = 0; i < dim; i++)
            out[i] = hdr[0] + hdr[1] * c[i];
    }
}

void vd_quant_query_init(vd_quant_query *qq, vd_quant quant, vd_metric metric, const float *f,
                         uint32_t dim, int8_t *q8buf)
{
    *qq = (vd_quant_query){.quant = quant, .metric = metric, .dim = dim, .f = f};
    if (quant != VD_QUANT_SQ8)
        return;
    float amax = 0, sum = 0, norm2 = 0;
    for (uint32_t i = 0; i < dim; i++) {
        float a = fabsf(f[i]);
        amax = a > amax ? a : amax;
        sum += f[i];
        norm2 += f[i] * f[i];
    }
    float beta = amax / 127.0f;
    /* In double: for a query of subnormal values 1/beta overflows a float
     * (found by the points fuzzer: inf converted to int). */
    double inv = amax > 0 ? 127.0 / (double)amax : 0.0;
    int32_t qsum = 0;
    /* round half away from zero (as cheap as a truncation, and vectorisable);
     * |q·inv| <= 127 up to rounding, so the clamp only guards the last ulp */
    for (uint32_t i = 0; i < dim; i++) {
        double r = (double)f[i] * inv;
        int v = (int)(r + (r >= 0 ? 0.5f : -0.5f));
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        q8buf[i] = (int8_t)v;
        qsum += v;
    }
    qq->q8 = q8buf;
    qq->q8_scale = beta;
    qq->q8_sum = qsum;
    qq->sum = sum;
    qq->norm2 = norm2;
}

double vd_quant_error_bound(const vd_quant_query *qq, const uint8_t *code)
{
    uint32_t dim = qq->dim;
    double abs_q = 0, abs_qx = 0, err = 0;
    bool l2 = qq->metric == VD_METRIC_L2;
    if (qq->quant == VD_QUANT_FP16) {
        /* |x − half(x)| ≤ 2^-11·|x̂|·(1 + 2^-11) + 2^-25 per value */
        for (uint32_t i = 0; i < dim; i++) {
            uint16_t h;
            memcpy(&h, code + (size_t)i * 2, 2);
            double xh = vd_f32_from_f16(h);
            double e = fabs(xh) * (1.0 / 2048) * (1 + 1.0 / 2048) + 0x1p-25;
            double q = qq->f[i];
            err += l2 ? e * (2 * fabs(q - xh) + e) : e * fabs(q);
            abs_q += fabs(q);
            abs_qx += l2 ? (q - xh) * (q - xh) : fabs(q * xh);
        }
    } else if (qq->quant == VD_QUANT_SQ8) {
        float hdr[3];
        memcpy(hdr, code, sizeof hdr);
        const uint8_t *c = code + VD_QUANT_SQ8_HEADER;
        double abs_d = 0, abs_xh = 0;
        for (uint32_t i = 0; i < dim; i++) {
            double q = qq->f[i], xh = hdr[0] + (double)hdr[1] * c[i];
            abs_q += fabs(q);
            abs_d += fabs((double)c[i] - 128);
            abs_qx += fabs(q * xh);
            abs_xh += fabs(xh);
        }
        /* The codes round to the nearest step; the float step is within one
         * float ulp of the exact one, which moves x̂ by at most 256·ulp. */
        double step = hdr[1], data = step / 2 * abs_q + 256.0 * step * 0x1p-23 * abs_q;
        double query = step * qq->q8_scale / 2 * abs_d;
        err = l2 ? 2 * (data + query) : data + query;
        if (l2) /* ‖x‖² − ‖x̂‖² = Σ (x − x̂)(x + x̂) */
            err += step / 2 * (2 * abs_xh + (double)dim * step / 2) * (1 + 0x1p-20);
        if (l2)
            abs_qx = 2 * abs_qx + qq->norm2 + hdr[2];
        else
            abs_qx += fabs(hdr[0] + 128.0 * step) * abs_q + step * 128 * abs_q;
    }
    /* float32 accumulation over dim terms */
    return err + 4.0 * 0x1p-24 * (double)dim * abs_qx + 1e-6;
}

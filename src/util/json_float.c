/* json_float.c — see json_float.h. */
#include "util/json_float.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the JSON number (RFC 8259 grammar) at text[i], or 0. */
static size_t number_len(const char *t, size_t i, size_t len)
{
    size_t s = i;
    if (i < len && t[i] == '-')
        i++;
    if (i >= len)
        return 0;
    if (t[i] == '0') {
        i++;
    } else if (t[i] >= '1' && t[i] <= '9') {
        while (i < len && t[i] >= '0' && t[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < len && t[i] == '.') {
        size_t d = ++i;
        while (i < len && t[i] >= '0' && t[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    if (i < len && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < len && (t[i] == '+' || t[i] == '-'))
            i++;
        size_t d = i;
        while (i < len && t[i] >= '0' && t[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    return i - s;
}

/* The float32 nearest the JSON number t[0..n) (a valid number_len span), as
 * strtof gives it, without strtof for the numbers embeddings are made of:
 * at most 19 significant digits and a decimal exponent within ±22. Then the
 * digits m (< 2^53) and 10^|e| are exact doubles, so one division or
 * multiplication gives the double nearest the number (IEEE rounding), and
 * that double rounds to the same float as the number itself unless it lies
 * exactly halfway between two floats: that case (and every other) is left to
 * strtof. Returns false when strtof must decide. */
static bool parse_float_fast(const char *t, size_t n, float *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t i = 0;
    bool neg = t[0] == '-';
    if (neg)
        i++;
    uint64_t m = 0;
    int digits = 0, scale = 0; /* significant digits taken; digits after the point */
    for (; i < n && t[i] >= '0' && t[i] <= '9'; i++) {
        if (m || t[i] != '0') {
            if (++digits > 19)
                return false;
            m = m * 10 + (uint64_t)(t[i] - '0');
        }
    }
    if (i < n && t[i] == '.') {
        for (i++; i < n && t[i] >= '0' && t[i] <= '9'; i++) {
            scale++;
            if (m || t[i] != '0') {
                if (++digits > 19)
                    return false;
                m = m * 10 + (uint64_t)(t[i] - '0');
            }
        }
    }
    int exp10 = 0;
    if (i < n) { /* 'e' or 'E', a sign, digits: number_len checked the form */
        i++;
        bool eneg = t[i] == '-';
        if (t[i] == '-' || t[i] == '+')
            i++;
        for (int k = 0; i < n; i++, k++) {
            if (k == 4)
                return false; /* exponents past 9999 digits' reach: strtof's case */
            exp10 = exp10 * 10 + (t[i] - '0');
        }
        if (eneg)
            exp10 = -exp10;
    }
    if (m == 0) {
        *out = neg ? -0.0f : 0.0f;
        return true;
    }
    int e = exp10 - scale;
    if (m > (1ULL << 53) || e < -22 || e > 22)
        return false;
    double d = e < 0 ? (double)m / pow10[-e] : (double)m * pow10[e];
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    /* d's 52 stored mantissa bits: a float keeps the top 23; the 29 below
     * are 1 followed by 28 zeros exactly at a halfway point. d is between
     * 1e-22 and 9e37 here: a normal float, never a subnormal or infinite one. */
    if ((bits & ((1ULL << 29) - 1)) == (1ULL << 28))
        return false;
    float f = (float)d;
    *out = neg ? -f : f;
    return true;
}

size_t vd_json_skip_ws(const char *t, size_t i, size_t len)
{
    while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
        i++;
    return i;
}

size_t vd_json_float_at(const char *t, size_t i, size_t len, float *out)
{
    size_t n = number_len(t, i, len);
    if (!n)
        return 0;
    if (!parse_float_fast(t + i, n, out)) {
        char *end;
        errno = 0;
        *out = strtof(t + i, &end);
        if (end != t + i + n || !isfinite(*out))
            return 0;
    }
    return n;
}

int vd_json_float_walk(const char *t, size_t len, size_t at, vd_json_float_put put, void *ctx,
                       size_t *end)
{
    size_t i = vd_json_skip_ws(t, at + 1, len);
    if (i >= len || t[i] == ']')
        return 1;
    for (;;) {
        float f;
        size_t n = vd_json_float_at(t, i, len, &f);
        if (!n)
            return 1;
        int rc = put(ctx, f);
        if (rc)
            return rc;
        i = vd_json_skip_ws(t, i + n, len);
        if (i < len && t[i] == ',') {
            i = vd_json_skip_ws(t, i + 1, len);
            continue;
        }
        if (i < len && t[i] == ']')
            break;
        return 1;
    }
    *end = i + 1;
    return 0;
}

typedef struct float_out {
    float *out;
    size_t n, cap;
} float_out;

static int put_out(void *ctx, float f)
{
    float_out *o = ctx;
    if (o->n == o->cap)
        return -1; /* more values than room */
    o->out[o->n++] = f;
    return 0;
}

size_t vd_json_float_array(const char *t, size_t len, float *out, size_t cap)
{
    size_t at = vd_json_skip_ws(t, 0, len), end;
    if (at >= len || t[at] != '[')
        return 0;
    float_out o = {out, 0, cap};
    if (vd_json_float_walk(t, len, at, put_out, &o, &end) != 0)
        return 0;
    return vd_json_skip_ws(t, end, len) == len ? o.n : 0;
}

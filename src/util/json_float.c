/* json_float.c — see json_float.h. */
#include "util/json_float.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Whether the 8 bytes in v (little-endian load) are all ASCII digits. */
static inline bool eight_digits(uint64_t v)
{
    return ((v & 0xF0F0F0F0F0F0F0F0ull) | (((v + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) >> 4)) ==
           0x3333333333333333ull;
}

/* The value of 8 ASCII digits (little-endian load: the first digit in the
 * lowest byte): pairs, then quads, then the eight, three multiplications. */
static inline uint64_t eight_digits_value(uint64_t v)
{
    v -= 0x3030303030303030ull;
    v = (v * 10) + (v >> 8); /* each even byte: two digits */
    v = (((v & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
         (((v >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >>
        32;
    return v;
}

static inline bool is_digit(char c) { return (unsigned char)(c - '0') < 10; }

/* The JSON number (RFC 8259 grammar) at p, read in one pass: its length (0
 * when there is none), its digits as m (up to 19 significant ones; *exact
 * false past that, or for an exponent past 4 digits), and the power of ten
 * that scales them. Eight fraction digits at a time where they are there:
 * an embedding's numbers are mostly fraction. */
static size_t scan_number(const char *p, const char *end, uint64_t *m_out, int *e_out, bool *exact)
{
    const char *s = p;
    uint64_t m = 0;
    int digits = 0, scale = 0;
    bool ok = true;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return 0;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        for (; p < end && is_digit(*p); p++) {
            if (++digits > 19)
                ok = false;
            else
                m = m * 10 + (uint64_t)(*p - '0');
        }
    } else {
        return 0;
    }
    if (p < end && *p == '.') {
        const char *f = ++p;
        if (m == 0)
            while (p < end && *p == '0') /* leading zeros: not significant */
                p++;
        while (ok && end - p >= 8 && digits <= 11) {
            uint64_t v;
            memcpy(&v, p, 8);
            if (!eight_digits(v))
                break;
            m = m * 100000000ull + eight_digits_value(v);
            digits += 8;
            p += 8;
        }
        for (; p < end && is_digit(*p); p++) {
            if (++digits > 19)
                ok = false;
            else if (ok)
                m = m * 10 + (uint64_t)(*p - '0');
        }
        if (p == f)
            return 0;
        scale = (int)(p - f);
        if (m == 0)
            digits = 0;
    }
    int exp10 = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = p < end && *p == '-';
        if (p < end && (*p == '-' || *p == '+'))
            p++;
        const char *d = p;
        for (; p < end && is_digit(*p); p++)
            if (p - d < 4)
                exp10 = exp10 * 10 + (*p - '0');
        if (p == d)
            return 0;
        if (p - d > 4)
            ok = false; /* exponents past 9999: strtof's case */
        if (eneg)
            exp10 = -exp10;
    }
    *m_out = m;
    *e_out = exp10 - scale;
    *exact = ok;
    return (size_t)(p - s);
}

/* The float32 nearest m·10^e (m with at most 19 digits), as strtof gives
 * it, for the numbers embeddings are made of: |e| <= 22, so 10^|e| is an
 * exact double. Returns false when strtof must decide.
 *
 * One division or multiplication gives d, a double near the number x, and
 * (float)d is the float nearest x unless a rounding boundary of float32 (a
 * point halfway between two floats) lies between d and x, or at x. When m <
 * 2^53, m is an exact double and d is x correctly rounded: only d exactly on
 * a halfway point is in doubt. Past 2^53 (the 17 significant digits Python
 * writes for a float32 made a double, for one) m is rounded once more, so d
 * is within 2 units of its last place of x: a d within 3 units of a halfway
 * point goes to strtof (about one number in 10^8). */
static bool float_of(uint64_t m, int e, bool neg, float *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (m == 0) {
        *out = neg ? -0.0f : 0.0f;
        return true;
    }
    if (e < -22 || e > 22)
        return false;
    double d = e < 0 ? (double)m / pow10[-e] : (double)m * pow10[e];
    if (!(d < 3.4e38))
        return false; /* past the largest float, or near it: strtof says */
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    /* d's 52 stored mantissa bits: a float keeps the top 23; the 29 below
     * are 1 followed by 28 zeros exactly at a halfway point. d is at least
     * 1e-22 here: a normal float, never a subnormal one. */
    int64_t off = (int64_t)(bits & ((1ULL << 29) - 1)) - (int64_t)(1ULL << 28);
    int64_t doubt = m > (1ULL << 53) ? 3 : 0;
    if (off >= -doubt && off <= doubt)
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
    uint64_t m;
    int e;
    bool exact;
    size_t n = scan_number(t + i, t + len, &m, &e, &exact);
    if (!n)
        return 0;
    if (!exact || !float_of(m, e, t[i] == '-', out)) {
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
        i += n; /* white space is rare between an array's numbers: looked for only where found */
        if (i < len && t[i] != ',' && t[i] != ']')
            i = vd_json_skip_ws(t, i, len);
        if (i < len && t[i] == ',') {
            i++;
            if (i < len && !is_digit(t[i]) && t[i] != '-')
                i = vd_json_skip_ws(t, i, len);
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

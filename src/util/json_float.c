/* json_float.c — see json_float.h. */
#include "util/json_float.h"
#include "util/json_float_simd.h"

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
 * exact double. Returns false when strtof must decide: a rounding boundary
 * too near (vd_json_float_scaled), or past the largest float. */
static bool float_of(uint64_t m, int e, bool neg, float *out)
{
    float f;
    if (m == 0) {
        f = 0.0f;
    } else if (e < -22 || e > 22 || !vd_json_float_scaled(m, (unsigned)(e < 0 ? -e : e), e < 0, &f) ||
               isinf(f)) {
        return false;
    }
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

/* Written only by vd_json_float_init() before threads start. */
static bool use_avx512;

bool vd_json_float_init(bool allow_simd)
{
    use_avx512 = allow_simd && vd_json_float_avx512_supported();
    return use_avx512;
}

/* Values go to put WALK_CHUNK at a time: one call per chunk, not per number. */
enum { WALK_CHUNK = 256 };

int vd_json_float_walk(const char *t, size_t len, size_t at, vd_json_float_put put, void *ctx,
                       size_t *end)
{
    float chunk[WALK_CHUNK];
    size_t n = 0;
    size_t i = vd_json_skip_ws(t, at + 1, len);
    if (i >= len || t[i] == ']')
        return 1;
    for (;;) {
        if (use_avx512 && i >= 32) {
            i = vd_json_floats_avx512(t, i, len, chunk, WALK_CHUNK, &n);
            if (i < len && !is_digit(t[i]) && t[i] != '-') /* it stops after a comma: white space may follow */
                i = vd_json_skip_ws(t, i, len);
        }
        if (n > WALK_CHUNK - 32) { /* room for the block reader's 24, and this one */
            int rc = put(ctx, chunk, n);
            if (rc)
                return rc;
            n = 0;
        }
        size_t k = vd_json_float_at(t, i, len, &chunk[n]);
        if (!k)
            return 1;
        n++;
        i += k; /* white space is rare between an array's numbers: looked for only where found */
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
    int rc = put(ctx, chunk, n);
    if (rc)
        return rc;
    *end = i + 1;
    return 0;
}

typedef struct float_out {
    float *out;
    size_t n, cap;
} float_out;

static int put_out(void *ctx, const float *f, size_t n)
{
    float_out *o = ctx;
    if (n > o->cap - o->n)
        return -1; /* more values than room */
    memcpy(o->out + o->n, f, n * sizeof *f);
    o->n += n;
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

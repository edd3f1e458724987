/* fmtfloat.c — see fmtfloat.h.
 *
 * A finite float is M·2^E exactly (M < 2^24). Its 9 significant digits are
 * q = M·2^E·10^k rounded to an integer (ties to even, as glibc's printf
 * rounds the exact binary value), with k chosen so that 10^8 <= q < 10^9.
 * For |k| <= 27 and a shift of at most 120 bits that product and its
 * rounding are exact in 128-bit integers; that covers every float from
 * about 1e-19 up to the largest, and everything else (tiny values,
 * infinities, NaN) is left to snprintf. */
#include "util/fmtfloat.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

__extension__ typedef unsigned __int128 u128; /* gcc and clang on 64-bit targets */

static u128 pow10_u128(int n)
{
    u128 p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

/* round(M·2^E·10^k) with ties to even, or false when it is not exact here. */
static int scaled_digits(uint32_t m, int e, int k, uint64_t *q)
{
    if (k > 27 || k < -30)
        return 0;
    u128 num = m;
    if (k >= 0)
        num *= pow10_u128(k);
    if (e >= 0) {
        num <<= e; /* k >= 0 only for values below 1e9: no overflow */
        if (k < 0) {
            u128 p = pow10_u128(-k), quot = num / p, rem = num % p;
            if (2 * rem > p || (2 * rem == p && (quot & 1)))
                quot++;
            *q = (uint64_t)quot;
            return 1;
        }
        *q = (uint64_t)num;
        return 1;
    }
    if (k < 0)
        return 0; /* a value >= 1e9 with a negative binary exponent: none */
    int s = -e;
    if (s > 120)
        return 0;
    u128 quot = num >> s, rem = num & (((u128)1 << s) - 1), half = (u128)1 << (s - 1);
    if (rem > half || (rem == half && (quot & 1)))
        quot++;
    *q = (uint64_t)quot;
    return 1;
}

static size_t fallback(float f, char *out)
{
    int n = snprintf(out, VD_FMT_FLOAT_MAX, "%.9g", (double)f);
    return n > 0 ? (size_t)n : 0;
}

size_t vd_fmt_float(float f, char *out)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    uint32_t frac = bits & 0x7fffff, bexp = bits >> 23 & 0xff;
    if (bexp == 0xff)
        return fallback(f, out);
    char *p = out;
    if (bits >> 31)
        *p++ = '-';
    if (bexp == 0 && frac == 0) {
        *p++ = '0';
        *p = 0;
        return (size_t)(p - out);
    }
    uint32_t m = bexp ? frac | 0x800000 : frac;
    int e = bexp ? (int)bexp - 150 : -149;
    /* The decimal exponent X of |f| (10^X <= |f| < 10^(X+1)), estimated
     * from the binary one and corrected by the digits' count. */
    int x = (int)floor(log10(fabs((double)f)));
    uint64_t q = 0;
    for (int tries = 0;; tries++) {
        if (tries == 3 || !scaled_digits(m, e, 8 - x, &q))
            return fallback(f, out);
        if (q >= 1000000000ULL)
            x++;
        else if (q < 100000000ULL)
            x--;
        else
            break;
    }
    char d[9];
    for (int i = 8; i >= 0; i--, q /= 10)
        d[i] = (char)('0' + q % 10);
    int nd = 9;
    while (nd > 1 && d[nd - 1] == '0')
        nd--; /* %g drops trailing zeros */
    if (x < -4 || x >= 9) {
        *p++ = d[0];
        if (nd > 1) {
            *p++ = '.';
            memcpy(p, d + 1, (size_t)nd - 1);
            p += nd - 1;
        }
        *p++ = 'e';
        *p++ = x < 0 ? '-' : '+';
        int ax = x < 0 ? -x : x;
        if (ax >= 10) {
            *p++ = (char)('0' + ax / 10);
            *p++ = (char)('0' + ax % 10);
        } else {
            *p++ = '0';
            *p++ = (char)('0' + ax);
        }
    } else if (x >= 0) {
        int ip = x + 1; /* digits before the point */
        for (int i = 0; i < ip; i++)
            *p++ = i < nd ? d[i] : '0';
        if (nd > ip) {
            *p++ = '.';
            memcpy(p, d + ip, (size_t)(nd - ip));
            p += nd - ip;
        }
    } else {
        *p++ = '0';
        *p++ = '.';
        for (int i = 0; i < -x - 1; i++)
            *p++ = '0';
        memcpy(p, d, (size_t)nd);
        p += nd;
    }
    *p = 0;
    return (size_t)(p - out);
}

size_t vd_fmt_u64(uint64_t v, char *out)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = 0;
    return n;
}

size_t vd_fmt_millis(uint64_t us, char *out)
{
    size_t n = vd_fmt_u64(us / 1000, out);
    unsigned frac = (unsigned)(us % 1000);
    if (frac) {
        out[n++] = '.';
        out[n++] = (char)('0' + frac / 100);
        if (frac % 100) {
            out[n++] = (char)('0' + frac / 10 % 10);
            if (frac % 10)
                out[n++] = (char)('0' + frac % 10);
        }
    }
    out[n] = 0;
    return n;
}

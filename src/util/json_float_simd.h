/*
 * json_float_simd.h — what the portable number parser (json_float.c) and its
 * AVX-512 array reader (json_float_avx512.c) share: the powers of ten and
 * the rounding check of the last step from decimal digits to float32 (one
 * number at a time here, eight at once in the reader), so both round the
 * same way and hand the same numbers to strtof.
 */
#ifndef VD_JSON_FLOAT_SIMD_H
#define VD_JSON_FLOAT_SIMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* 10^0 .. 10^22: every one an exact double (a copy in each file that
 * reads it: the hot loop addresses it directly, not through the GOT). */
static const double vd_json_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                         1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                         1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The float32 nearest x = m·10^±k (k <= 22), as strtof gives it, or false
 * when strtof must decide. d = m / 10^k (or m · 10^k) is x correctly
 * rounded when m < 2^53 and within 2 units of its last place past that (m
 * rounded once more). (float)d is then the float nearest x unless a
 * rounding boundary of float32 (a point halfway between two floats) lies
 * within those units: d's 29 mantissa bits below float32's 23 are 1 then
 * 28 zeros exactly at a halfway point, and a d within 3 units of one goes
 * to strtof (about one number in 10^8). The sign is the caller's. */
/* The check on d's bits: (bits - VD_JSON_NEAR_FROM) & VD_JSON_NEAR_MASK
 * <= VD_JSON_NEAR_SPAN when d is within 3 units of a halfway point. */
#define VD_JSON_NEAR_FROM ((1ULL << 28) - 3)
#define VD_JSON_NEAR_MASK ((1ULL << 29) - 1)
#define VD_JSON_NEAR_SPAN 6
static inline bool vd_json_float_scaled(uint64_t m, unsigned k, bool divide, float *out)
{
    double d = divide ? (double)m / vd_json_pow10[k] : (double)m * vd_json_pow10[k];
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    if (((bits - VD_JSON_NEAR_FROM) & VD_JSON_NEAR_MASK) <= VD_JSON_NEAR_SPAN)
        return false;
    *out = (float)d;
    return true;
}

/* Reads the numbers of a JSON array from t[i], the first byte of one or
 * white space after a comma (i >= 32), for as long as each is
 * -?digits.digits (at most 22 digits, a plain decimal fraction as JSON
 * writers print floats) followed by ',', white space allowed after the
 * comma, and 64 bytes from its block are in t: each value to out[*n],
 * while *n + 24 <= cap (it may write up to 7 floats past the last it
 * counts). Returns the index of the first number not read (its first byte,
 * or white space before it), left to the portable parser: an exponent,
 * white space before a comma, the array's last number, or anything
 * unusual. AVX-512 F, BW, VL, DQ and VBMI2, BMI1 and BMI2: only when
 * vd_json_float_avx512_supported(). */
size_t vd_json_floats_avx512(const char *t, size_t i, size_t len, float *out, size_t cap, size_t *n);
bool vd_json_float_avx512_supported(void);

#endif

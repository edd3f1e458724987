/*
 * json_float.h — JSON numbers straight into float32, correctly rounded (the
 * float strtof gives), without a JSON tree: the request body's vectors
 * (server/json_scan.c) and the feed's embedding columns (feed/feed_rows.c),
 * where parsing 1536 numbers a row through cJSON and strtod was most of the
 * cost.
 */
#ifndef VD_JSON_FLOAT_H
#define VD_JSON_FLOAT_H

#include <stdbool.h>
#include <stddef.h>

/* The index of the first byte from t[i] on that is not JSON white space. */
size_t vd_json_skip_ws(const char *t, size_t i, size_t len);
/* The JSON number (RFC 8259) at t[i] as the nearest float32: its length in
 * bytes, or 0 when there is none or it is not a finite float32 (beyond
 * ±3.4e38). t[len] must be a byte that ends a number (e.g. NUL). */
size_t vd_json_float_at(const char *t, size_t i, size_t len, float *out);
/* Chooses the array reader: the AVX-512 one where allow_simd and the CPU
 * has it (true then), else the portable one (the default). Call before
 * threads start. Both give the same floats and accept the same text. */
bool vd_json_float_init(bool allow_simd);
/* Takes the next n values of an array being walked (n >= 0, in order): 0,
 * or a negative code that stops the walk. */
typedef int (*vd_json_float_put)(void *ctx, const float *f, size_t n);
/* Walks the JSON array of numbers whose '[' is at t[at], giving each value
 * to put: 0 after the whole array (*end: the index after its ']'); 1 when it
 * is not a non-empty array of finite float32 numbers; put's code if it
 * stopped the walk. */
int vd_json_float_walk(const char *t, size_t len, size_t at, vd_json_float_put put, void *ctx,
                       size_t *end);
/* Parses t (len bytes, then NUL), one JSON array of numbers and nothing else
 * but white space, into out: the count, or 0 when t is anything else (not
 * such an array, a value that is not a finite float32, more than cap values,
 * or empty). A pgvector literal ("[1,2.5,3]") has the same syntax. */
size_t vd_json_float_array(const char *t, size_t len, float *out, size_t cap);

#endif

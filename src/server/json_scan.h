/*
 * json_scan.h — one pass over a request body before cJSON parses it.
 *
 * It does three things cJSON cannot:
 * - checks every string and key: a NUL (\u0000) would cut a C string short,
 *   so "zz\u0000one" and "zz\u0000two" would become one id; bytes that are
 *   not UTF-8 would be stored and echoed, so answers would not be JSON. The
 *   error names the field's path.
 * - counts what the parse will allocate (a node per value, the bytes of
 *   strings and keys), so the request's memory is charged to the in-flight
 *   budget before cJSON allocates it (vd_json_scan_cost).
 * - lifts vectors out of the text: each "vector" member that is an array of
 *   JSON numbers, in the body's top-level object or in the objects of one of
 *   its arrays (points[i].vector, searches[i].vector), is parsed straight into
 *   float32 (correctly rounded, strtof) and its text overwritten in place by
 *   a placeholder string of the same length, so cJSON makes one node of it
 *   instead of one per number. Payloads, filters and anything deeper are
 *   left alone. An array that is not all finite float32 numbers, or too
 *   short to hold a placeholder, is left for cJSON and the usual errors.
 *
 * A placeholder is '"', the byte 0xFF, the array's index in decimal, '"',
 * then spaces. No client string can look like one: 0xFF is never UTF-8, and
 * the scan refuses such strings before anything reads the tree.
 *
 * The spaces are then cut out (vd_json_compact) before cJSON reads the text:
 * cJSON skips white space a byte at a time, and a 384-d vector of 17-digit
 * numbers leaves ~8 KB of it (2% of a search's server CPU, perf).
 * vd_json_original_offset maps a byte of the compacted text back to the body
 * as sent, for error messages.
 */
#ifndef VD_JSON_SCAN_H
#define VD_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "vectord/error.h"

typedef struct vd_json_vectors {
    float *values; /* every lifted array, back to back */
    size_t n_values, cap_values;
    size_t *first; /* array i is values[first[i] .. first[i] + count[i]) */
    size_t *count;
    size_t *pad_at, *pad_len; /* array i's padding: pad_len[i] bytes from pad_at[i] of the body */
    size_t n, cap;
    size_t max_per_array; /* set by the caller: longer is refused (0 = no limit) */
} vd_json_vectors;

typedef struct vd_json_scan_stats {
    size_t values;       /* JSON values cJSON will make nodes of */
    size_t strings;      /* strings and keys it will copy */
    size_t string_bytes; /* their bytes */
} vd_json_scan_stats;

/* Scans text (len bytes; text[len] must be NUL). With vectors non-NULL,
 * lifts as above. 0; VD_E_INVALID_REQUEST (a NUL in a string),
 * VD_E_MALFORMED_JSON (not UTF-8) or VD_E_DIMENSION_MISMATCH (a vector
 * longer than max_per_array) naming the field; VD_E_OUT_OF_MEMORY. The
 * structure is not checked: that is cJSON's job after the scan. */
int vd_json_scan(char *text, size_t len, vd_json_vectors *vectors, vd_json_scan_stats *st,
                 vd_errmsg *em);
/* Bytes of memory the body and its parse take: the text, cJSON's nodes and
 * strings (with malloc's overhead), and the lifted floats twice (the parsed
 * request copies them). */
size_t vd_json_scan_cost(const vd_json_scan_stats *st, size_t len, const vd_json_vectors *v);
/* Cuts the lifted arrays' padding out of text (len bytes, as scanned with
 * v): the new length, and text[new length] is NUL. */
size_t vd_json_compact(char *text, size_t len, const vd_json_vectors *v);
/* The offset in the body as sent of byte `at` of the compacted text. */
size_t vd_json_original_offset(const vd_json_vectors *v, size_t at);
/* Whether item is a lifted array of v: *values and *n. */
bool vd_json_lifted(const vd_json_vectors *v, const cJSON *item, const float **values, size_t *n);
void vd_json_vectors_free(vd_json_vectors *v);

/* Whether s (len bytes) is UTF-8 without NUL (RFC 3629). */
bool vd_utf8_valid(const char *s, size_t len);

#endif

/* json_scan.c — see json_scan.h. */
#include "server/json_scan.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/json_float.h"

#define PLACEHOLDER_MARK '\xff'

/* Path frames kept with their key; deeper levels are counted, not named. */
#define SCAN_NAMED_DEPTH 16

typedef struct scan_frame {
    bool object;
    bool expect_key;
    size_t index;
    char key[64];
} scan_frame;

typedef struct string_scan {
    scan_frame frames[SCAN_NAMED_DEPTH];
    size_t depth; /* may exceed SCAN_NAMED_DEPTH */
    vd_json_scan_stats *st;
} string_scan;

static void scan_path(const string_scan *sc, bool in_key, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    size_t named = sc->depth < SCAN_NAMED_DEPTH ? sc->depth : SCAN_NAMED_DEPTH;
    for (size_t d = 0; d < named && n + 1 < cap; d++) {
        const scan_frame *f = &sc->frames[d];
        bool last = d + 1 == sc->depth;
        if (f->object && !(last && in_key))
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "." : "", f->key);
        else if (!f->object)
            n += (size_t)snprintf(out + n, cap - n, "[%zu]", f->index);
        if (n >= cap)
            n = cap - 1;
    }
    if (sc->depth > SCAN_NAMED_DEPTH && n + 1 < cap)
        snprintf(out + n, cap - n, "…");
}

/* Length of the UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!n || (size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) || (c == 0xF0 && p[1] < 0x90) ||
        (c == 0xF4 && p[1] > 0x8F))
        return 0;
    return n;
}

bool vd_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        size_t n = *p ? utf8_len(p, end) : 0;
        if (!n)
            return false;
        p += n;
    }
    return true;
}

static int nul_error(const string_scan *sc, bool is_key, vd_errmsg *em)
{
    char path[200];
    scan_path(sc, is_key, path, sizeof path);
    return vd_fail(em, VD_E_INVALID_REQUEST,
                   "%s%s has a NUL character (\\u0000): vectord refuses NUL in ids, names, keys and "
                   "payload strings (two different ids would become one)",
                   is_key ? "a key in " : "", *path ? path : "the body");
}

/* Checks the string token starting after its opening quote at *pos; leaves
 * *pos after the closing quote and copies (a prefix of) it into key. */
static int scan_string(const string_scan *sc, bool is_key, const char *text, size_t len,
                       size_t *pos, char *key, size_t key_cap, vd_errmsg *em)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t i = *pos, k = 0;
    while (i < len && u[i] != '"') {
        size_t n = 1;
        if (u[i] == '\\') {
            n = 2;
            if (i + 5 < len && u[i + 1] == 'u' && memcmp(text + i + 2, "0000", 4) == 0)
                return nul_error(sc, is_key, em);
            if (i + 1 < len && u[i + 1] == 'u')
                n = 6;
        } else if (u[i] == 0) {
            return nul_error(sc, is_key, em);
        } else if (u[i] >= 0x80 && !(n = utf8_len(u + i, u + len))) {
            char path[200];
            scan_path(sc, is_key, path, sizeof path);
            return vd_fail(em, VD_E_MALFORMED_JSON,
                           "%s%s is not valid UTF-8 (byte %zu of the body); JSON text must be UTF-8",
                           is_key ? "a key in " : "", *path ? path : "the body", i);
        }
        for (size_t j = 0; j < n && i + j < len && k + 1 < key_cap; j++)
            key[k++] = text[i + j];
        i += n;
    }
    if (key_cap)
        key[k] = 0;
    sc->st->strings++;
    sc->st->string_bytes += i - *pos + 1;
    *pos = i + 1;
    return 0;
}


/* ---- vectors ------------------------------------------------------------ */

/* Room for extra more values. */
static bool reserve_values(vd_json_vectors *v, size_t extra)
{
    if (v->n_values + extra <= v->cap_values)
        return true;
    size_t cap = v->cap_values ? 2 * v->cap_values : 64;
    while (cap < v->n_values + extra)
        cap *= 2;
    float *nv = realloc(v->values, cap * sizeof *nv);
    if (!nv)
        return false;
    v->values = nv;
    v->cap_values = cap;
    return true;
}

/* *a grown to cap entries (left as it was on failure). */
static bool grow_sizes(size_t **a, size_t cap)
{
    size_t *na = realloc(*a, cap * sizeof *na);
    if (na)
        *a = na;
    return na != NULL;
}

static bool push_array(vd_json_vectors *v, size_t first, size_t count, size_t pad_at, size_t pad_len)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 16;
        if (!grow_sizes(&v->first, cap) || !grow_sizes(&v->count, cap) ||
            !grow_sizes(&v->pad_at, cap) || !grow_sizes(&v->pad_len, cap))
            return false;
        v->cap = cap;
    }
    v->first[v->n] = first;
    v->count[v->n] = count;
    v->pad_at[v->n] = pad_at;
    v->pad_len[v->n++] = pad_len;
    return true;
}

/* Records values[first .. n_values) as lifted array number v->n and
 * overwrites the span bytes at t[at] with its placeholder. 1; 0 when the
 * placeholder does not fit; -ENOMEM. */
static int place_mark(char *t, size_t at, size_t span, vd_json_vectors *v, size_t first)
{
    char mark[32];
    int m = snprintf(mark, sizeof mark, "\"%c%zu\"", PLACEHOLDER_MARK, v->n);
    if ((size_t)m > span)
        return 0;
    if (!push_array(v, first, v->n_values - first, at + (size_t)m, span - (size_t)m))
        return -ENOMEM;
    memcpy(t + at, mark, (size_t)m);
    memset(t + at + m, ' ', span - (size_t)m);
    return 1;
}

typedef struct lift_ctx {
    vd_json_vectors *v;
    size_t first;
} lift_ctx;

/* The next values of an array being lifted: -E2BIG past v->max_per_array, -ENOMEM. */
static int lift_values(void *ctx, const float *f, size_t n)
{
    lift_ctx *l = ctx;
    if (l->v->max_per_array && n > l->v->max_per_array - (l->v->n_values - l->first))
        return -E2BIG;
    if (!reserve_values(l->v, n))
        return -ENOMEM;
    memcpy(l->v->values + l->v->n_values, f, n * sizeof *f);
    l->v->n_values += n;
    return 0;
}

/* Lifts the array whose '[' is at text[at]: 1 done (*next after its ']'),
 * 0 left alone (not all finite float32 numbers, or too short), -E2BIG
 * (longer than v->max_per_array), -ENOMEM. */
static int lift(char *t, size_t len, size_t at, vd_json_vectors *v, size_t *next)
{
    lift_ctx l = {v, v->n_values};
    size_t end;
    int r = vd_json_float_walk(t, len, at, lift_values, &l, &end);
    if (r == 0)
        r = place_mark(t, at, end - at, v, l.first);
    else if (r > 0)
        r = 0; /* not an array of numbers: left alone */
    if (r <= 0) {
        v->n_values = l.first;
        return r;
    }
    *next = end;
    return 1;
}

/* Lifts the "vector_b64" string whose opening '"' is at text[at]: decoded
 * straight into float32 values (little-endian, as the API defines them), so
 * cJSON neither copies nor the handler decodes 8 KiB per 1536-d vector.
 * Same returns as lift(); a string that is not strict base64 of whole finite
 * float32 values (or has an escape) is left for the usual errors. */
static int lift_b64(char *t, size_t len, size_t at, vd_json_vectors *v, size_t *next)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const char *s = t + at + 1;
    const char *q = memchr(s, '"', len - at - 1);
    if (!q)
        return 0;
    size_t n = (size_t)(q - s), bytes = vd_base64_decoded_len(s, n);
    if (bytes == SIZE_MAX || bytes == 0 || bytes % sizeof(float))
        return 0;
    size_t count = bytes / sizeof(float), first = v->n_values;
    if (v->max_per_array && count > v->max_per_array)
        return -E2BIG;
    if (!reserve_values(v, count))
        return -ENOMEM;
    float *out = v->values + first;
    if (vd_base64_decode(s, n, (uint8_t *)out) != 0)
        return 0; /* a byte outside the alphabet, '\\' among them */
    bool finite = true;
    for (size_t k = 0; k < count; k++)
        finite &= isfinite(out[k]) != 0;
    if (!finite)
        return 0;
    v->n_values += count;
    int r = place_mark(t, at, n + 2, v, first);
    if (r <= 0) {
        v->n_values = first;
        return r;
    }
    *next = (size_t)(q - t) + 1;
    return 1;
#else
    (void)t, (void)len, (void)at, (void)v, (void)next;
    return 0; /* the handler decodes byte by byte */
#endif
}

/* A member named key where vectors are lifted ("vector" arrays,
 * "vector_b64" strings): in the top-level object, or in an object in one
 * of its arrays. */
static bool liftable_here(const string_scan *sc, const char *key)
{
    const scan_frame *top = sc->depth && sc->depth <= SCAN_NAMED_DEPTH ? &sc->frames[sc->depth - 1] : NULL;
    if (!top || !top->object || top->expect_key || strcmp(top->key, key) != 0)
        return false;
    return sc->depth == 1 ||
           (sc->depth == 3 && sc->frames[0].object && !sc->frames[1].object);
}

static bool scalar_start(char c)
{
    return c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n';
}

int vd_json_scan(char *text, size_t len, vd_json_vectors *vectors, vd_json_scan_stats *st,
                 vd_errmsg *em)
{
    *st = (vd_json_scan_stats){0};
    string_scan sc = {.depth = 0, .st = st};
    bool in_scalar = false;
    size_t i = 0;
    while (i < len) {
        char c = text[i];
        scan_frame *top = sc.depth && sc.depth <= SCAN_NAMED_DEPTH ? &sc.frames[sc.depth - 1] : NULL;
        bool lift_array = c == '[' && vectors && liftable_here(&sc, "vector");
        if (lift_array || (c == '"' && vectors && liftable_here(&sc, "vector_b64"))) {
            size_t next;
            int r = lift_array ? lift(text, len, i, vectors, &next)
                               : lift_b64(text, len, i, vectors, &next);
            if (r == -E2BIG) {
                char path[200];
                scan_path(&sc, false, path, sizeof path);
                return vd_fail(em, VD_E_DIMENSION_MISMATCH,
                               "%s has more than %zu values: no collection takes vectors that "
                               "long (setting max_dim)", path, vectors->max_per_array);
            }
            if (r < 0)
                return vd_fail(em, VD_E_OUT_OF_MEMORY, "out of memory reading the request's vectors");
            if (r > 0) {
                st->values++;
                st->strings++;
                st->string_bytes += 24;
                in_scalar = false;
                i = next;
                continue;
            }
        }
        if (c == '{' || c == '[') {
            st->values++;
            if (sc.depth < SCAN_NAMED_DEPTH)
                sc.frames[sc.depth] = (scan_frame){.object = c == '{', .expect_key = c == '{'};
            sc.depth++;
            i++;
        } else if (c == '}' || c == ']') {
            if (sc.depth)
                sc.depth--;
            i++;
        } else if (c == ',') {
            if (top && top->object)
                top->expect_key = true;
            else if (top)
                top->index++;
            i++;
        } else if (c == ':') {
            if (top)
                top->expect_key = false;
            i++;
        } else if (c == '"') {
            bool is_key = top && top->object && top->expect_key;
            if (!is_key)
                st->values++;
            char scratch[1];
            i++;
            int rc = scan_string(&sc, is_key, text, len, &i, is_key ? top->key : scratch,
                                 is_key ? sizeof top->key : 0, em);
            if (rc)
                return rc;
        } else {
            bool s = scalar_start(c);
            if (s && !in_scalar)
                st->values++;
            in_scalar = s || (in_scalar && c != ' ' && c != '\t' && c != '\n' && c != '\r');
            i++;
            continue;
        }
        in_scalar = false;
    }
    return 0;
}

size_t vd_json_scan_cost(const vd_json_scan_stats *st, size_t len, const vd_json_vectors *v)
{
    const size_t malloc_overhead = 16;
    size_t cost = len + 1 + st->values * (sizeof(cJSON) + malloc_overhead) +
                  st->strings * malloc_overhead + st->string_bytes;
    if (v)
        cost += 2 * v->cap_values * sizeof(float) + v->cap * 4 * sizeof(size_t);
    return cost;
}

size_t vd_json_compact(char *text, size_t len, const vd_json_vectors *v)
{
    if (!v || !v->n)
        return len;
    size_t w = v->pad_at[0]; /* the text before the first padding stays where it is */
    for (size_t k = 0; k < v->n; k++) {
        size_t from = v->pad_at[k] + v->pad_len[k];
        size_t to = k + 1 < v->n ? v->pad_at[k + 1] : len;
        memmove(text + w, text + from, to - from);
        w += to - from;
    }
    text[w] = 0;
    return w;
}

size_t vd_json_original_offset(const vd_json_vectors *v, size_t at)
{
    size_t cut = 0; /* padding removed before the byte */
    for (size_t k = 0; v && k < v->n && v->pad_at[k] - cut <= at; k++)
        cut += v->pad_len[k];
    return at + cut;
}

bool vd_json_lifted(const vd_json_vectors *v, const cJSON *item, const float **values, size_t *n)
{
    if (!v || !cJSON_IsString(item) || item->valuestring[0] != PLACEHOLDER_MARK)
        return false;
    char *end;
    unsigned long long k = strtoull(item->valuestring + 1, &end, 10);
    if (*end || end == item->valuestring + 1 || k >= v->n)
        return false;
    *values = v->values + v->first[k];
    *n = v->count[k];
    return true;
}

void vd_json_vectors_free(vd_json_vectors *v)
{
    free(v->values);
    free(v->first);
    free(v->count);
    free(v->pad_at);
    free(v->pad_len);
    *v = (vd_json_vectors){0};
}

/* json_util.c — see json_util.h. */
#include "server/json_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"

static const char *type_name(const cJSON *j)
{
    if (!j)
        return "nothing";
    if (cJSON_IsNull(j))
        return "null";
    if (cJSON_IsBool(j))
        return "a boolean";
    if (cJSON_IsNumber(j))
        return "a number";
    if (cJSON_IsString(j))
        return "a string";
    if (cJSON_IsArray(j))
        return "an array";
    return "an object";
}

typedef struct key_walk {
    char path[256];       /* of the value being walked ("" = the document) */
    const char **names;   /* scratch: one object's keys, sorted */
    size_t cap;
    vd_errmsg *em;
} key_walk;

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts obj's keys (O(n log n): an object of many keys costs no more than
 * parsing it) and fails on two equal neighbours. */
static int check_object_keys(key_walk *w, const cJSON *obj)
{
    size_t n = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        n++;
    if (n < 2)
        return 0;
    if (n > w->cap) {
        const char **grown = realloc(w->names, n * sizeof *grown);
        if (!grown)
            return vd_fail(w->em, VD_E_OUT_OF_MEMORY, "out of memory");
        w->names = grown;
        w->cap = n;
    }
    n = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        w->names[n++] = c->string;
    qsort(w->names, n, sizeof *w->names, cmp_key);
    for (size_t i = 1; i < n; i++)
        if (strcmp(w->names[i - 1], w->names[i]) == 0)
            return vd_fail(w->em, VD_E_MALFORMED_JSON,
                           "request body has the key '%.100s' twice in %s; keys must be unique",
                           w->names[i], *w->path ? w->path : "the top-level object");
    return 0;
}

/* Depth is bounded by cJSON's nesting limit (1000). */
static int walk_keys(key_walk *w, const cJSON *j)
{
    int rc = cJSON_IsObject(j) ? check_object_keys(w, j) : 0;
    size_t at = strlen(w->path), i = 0;
    for (const cJSON *c = j->child; c && !rc; c = c->next, i++) {
        if (!cJSON_IsObject(c) && !cJSON_IsArray(c))
            continue; /* vectors: numbers only, nothing to walk */
        if (cJSON_IsObject(j))
            snprintf(w->path + at, sizeof w->path - at, "%s%.60s", at ? "." : "", c->string);
        else
            snprintf(w->path + at, sizeof w->path - at, "[%zu]", i);
        rc = walk_keys(w, c);
        w->path[at] = 0;
    }
    return rc;
}

int vd_json_unique_keys(const cJSON *doc, vd_errmsg *em)
{
    key_walk w = {.em = em};
    int rc = walk_keys(&w, doc);
    free(w.names);
    return rc;
}

const char *vd_json_path(char *buf, size_t cap, const char *where, const char *name)
{
    snprintf(buf, cap, "%s%s%s", where, *where ? "." : "", name);
    return buf;
}

int vd_json_object(const cJSON *obj, const char *where, vd_errmsg *em)
{
    if (cJSON_IsObject(obj))
        return 0;
    return vd_fail(em, VD_E_INVALID_REQUEST, "%s must be a JSON object, got %s",
                   *where ? where : "request body", type_name(obj));
}

int vd_json_no_unknown(const cJSON *obj, const char *where, const char *const *allowed,
                       vd_errmsg *em)
{
    for (const cJSON *f = obj->child; f; f = f->next) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, f->string) == 0;
        if (!ok) {
            char path[256], list[512] = "";
            for (const char *const *a = allowed; *a; a++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         a == allowed ? "" : ", ", *a);
            return vd_fail(em, VD_E_UNKNOWN_FIELD, "unknown field '%s' (known: %s)",
                           vd_json_path(path, sizeof path, where, f->string), list);
        }
    }
    return 0;
}

/* A number as the message should tell it: JSON numbers arrive as doubles, so
 * one beyond 2^53 may have been rounded, and one beyond a double's range is
 * infinite; say so rather than print a value the client never sent. */
static void describe_number(double d, char *out, size_t cap)
{
    if (!isfinite(d))
        snprintf(out, cap, "%s", isnan(d) ? "not a number" : "a number beyond the range of a double");
    else if (fabs(d) >= 9007199254740992.0)
        snprintf(out, cap, "%.17g or so (beyond 2^53, JSON numbers are not exact)", d);
    else
        snprintf(out, cap, "%.17g", d);
}

int vd_json_uint(const cJSON *obj, const char *name, const char *where, bool required, uint64_t def,
                 uint64_t min, uint64_t max, uint64_t *out, vd_errmsg *em)
{
    char path[256];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return vd_fail(em, VD_E_INVALID_REQUEST, "missing field '%s'",
                           vd_json_path(path, sizeof path, where, name));
        *out = def;
        return 0;
    }
    vd_json_path(path, sizeof path, where, name);
    if (!cJSON_IsNumber(v))
        return vd_fail(em, VD_E_INVALID_REQUEST, "%s must be an integer, got %s", path, type_name(v));
    double d = v->valuedouble;
    if (isfinite(d) && d != floor(d))
        return vd_fail(em, VD_E_INVALID_REQUEST, "%s must be an integer, got a fraction (%.17g)",
                       path, d);
    if (!isfinite(d) || d < (double)min || d > (double)max) {
        char got[64];
        describe_number(d, got, sizeof got);
        return vd_fail(em, VD_E_OUT_OF_RANGE, "%s must be between %llu and %llu, got %s", path,
                       (unsigned long long)min, (unsigned long long)max, got);
    }
    *out = (uint64_t)d;
    return 0;
}

int vd_json_bool(const cJSON *obj, const char *name, const char *where, bool def, bool *out,
                 vd_errmsg *em)
{
    char path[256];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v))
        return vd_fail(em, VD_E_INVALID_REQUEST, "%s must be true or false, got %s",
                       vd_json_path(path, sizeof path, where, name), type_name(v));
    *out = cJSON_IsTrue(v);
    return 0;
}

int vd_json_number(const cJSON *obj, const char *name, const char *where, bool *present,
                   double *out, vd_errmsg *em)
{
    char path[256];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    *present = v && !cJSON_IsNull(v);
    if (!*present)
        return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return vd_fail(em, VD_E_INVALID_REQUEST, "%s must be a finite number, got %s",
                       vd_json_path(path, sizeof path, where, name), type_name(v));
    *out = v->valuedouble;
    return 0;
}

int vd_json_vector(const cJSON *arr, const char *path, const char *collection, uint32_t dim,
                   const vd_json_vectors *lifted, float *out, vd_errmsg *em)
{
    if (!arr)
        return vd_fail(em, VD_E_INVALID_REQUEST, "missing field '%s'", path);
    const float *values;
    size_t n_lifted;
    if (vd_json_lifted(lifted, arr, &values, &n_lifted)) {
        if (n_lifted != dim)
            return vd_fail(em, VD_E_DIMENSION_MISMATCH,
                           "%s has %zu values; collection '%s' expects %u", path, n_lifted,
                           collection, dim);
        memcpy(out, values, (size_t)dim * sizeof *out);
        return 0;
    }
    if (!cJSON_IsArray(arr))
        return vd_fail(em, VD_E_INVALID_VECTOR, "%s must be an array of numbers, got %s", path,
                       type_name(arr));
    uint32_t i = 0;
    for (const cJSON *v = arr->child; v; v = v->next, i++) {
        if (i >= dim) {
            int n = cJSON_GetArraySize(arr);
            return vd_fail(em, VD_E_DIMENSION_MISMATCH,
                           "%s has %d values; collection '%s' expects %u", path, n, collection, dim);
        }
        if (!cJSON_IsNumber(v))
            return vd_fail(em, VD_E_INVALID_VECTOR, "%s[%u] must be a number, got %s", path, i,
                           type_name(v));
        float f = (float)v->valuedouble;
        if (!isfinite(f))
            return vd_fail(em, VD_E_INVALID_VECTOR,
                           "%s[%u] is not a finite float32 value (NaN, Inf or beyond ±3.4e38)", path,
                           i);
        out[i] = f;
    }
    if (i != dim)
        return vd_fail(em, VD_E_DIMENSION_MISMATCH, "%s has %u values; collection '%s' expects %u",
                       path, i, collection, dim);
    return 0;
}

int vd_json_vector_field(const cJSON *obj, const char *where, const char *collection, uint32_t dim,
                         const vd_json_vectors *lifted, float *out, vd_errmsg *em)
{
    char path[160];
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, "vector");
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(obj, "vector_b64");
    if (arr && b64)
        return vd_fail(em, VD_E_INVALID_REQUEST, "give either %s or %s, not both",
                       vd_json_path(path, sizeof path, where, "vector"), "vector_b64");
    if (!b64)
        return vd_json_vector(arr, vd_json_path(path, sizeof path, where, "vector"), collection,
                              dim, lifted, out, em);
    vd_json_path(path, sizeof path, where, "vector_b64");
    const float *values;
    size_t n_lifted;
    if (vd_json_lifted(lifted, b64, &values, &n_lifted)) { /* decoded by the scan */
        if (n_lifted != dim)
            return vd_fail(em, VD_E_DIMENSION_MISMATCH,
                           "%s holds %zu bytes (%zu float32 values); collection '%s' expects %u "
                           "values", path, n_lifted * 4, n_lifted, collection, dim);
        memcpy(out, values, (size_t)dim * sizeof *out);
        return 0;
    }
    if (!cJSON_IsString(b64))
        return vd_fail(em, VD_E_INVALID_VECTOR,
                       "%s must be a base64 string of little-endian float32 values, got %s", path,
                       type_name(b64));
    size_t len = strlen(b64->valuestring);
    size_t bytes = vd_base64_decoded_len(b64->valuestring, len);
    if (bytes == SIZE_MAX)
        return vd_fail(em, VD_E_INVALID_VECTOR, "%s is not valid base64 (length %zu)", path, len);
    if (bytes != (size_t)dim * 4)
        return vd_fail(em, VD_E_DIMENSION_MISMATCH,
                       "%s holds %zu bytes (%zu float32 values); collection '%s' expects %u values",
                       path, bytes, bytes / 4, collection, dim);
    uint8_t *raw = malloc(bytes + 3);
    if (!raw)
        return vd_fail(em, VD_E_OUT_OF_MEMORY, "out of memory decoding %s", path);
    if (vd_base64_decode(b64->valuestring, len, raw) != 0) {
        free(raw);
        return vd_fail(em, VD_E_INVALID_VECTOR, "%s is not valid base64", path);
    }
    int rc = 0;
    for (uint32_t i = 0; i < dim && !rc; i++) {
        /* explicit little-endian decode */
        uint32_t u = (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
                     (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24;
        memcpy(&out[i], &u, 4);
        if (!isfinite(out[i]))
            rc = vd_fail(em, VD_E_INVALID_VECTOR, "%s value %u is NaN or infinite", path, i);
    }
    free(raw);
    return rc;
}

int vd_json_id(const cJSON *item, const char *path, vd_point_id *out, vd_errmsg *em)
{
    if (cJSON_IsString(item)) {
        size_t len = strlen(item->valuestring);
        if (len == 0 || len > VD_ID_MAX_LEN)
            return vd_fail(em, VD_E_INVALID_ID, "%s must be 1 to %d bytes long, got %zu", path,
                           VD_ID_MAX_LEN, len);
        *out = (vd_point_id){.kind = VD_ID_STR, .len = (uint32_t)len, .str = item->valuestring};
        return 0;
    }
    if (cJSON_IsNumber(item)) {
        double d = item->valuedouble;
        if (!isfinite(d) || d < 0 || d != floor(d) || d > (double)VD_ID_MAX_INT) {
            char got[64];
            describe_number(d, got, sizeof got);
            return vd_fail(em, VD_E_INVALID_ID,
                           "%s must be an unsigned integer up to %llu or a string, got %s", path,
                           (unsigned long long)VD_ID_MAX_INT, got);
        }
        *out = (vd_point_id){.kind = VD_ID_INT, .num = (uint64_t)d};
        return 0;
    }
    return vd_fail(em, VD_E_INVALID_ID, "%s must be a string or an unsigned integer, got %s", path,
                   type_name(item));
}

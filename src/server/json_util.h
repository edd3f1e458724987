/*
 * json_util.h — typed, range-checked reads of request JSON with errors that
 * name the field, what was expected and what came ("points[3].vector has 1535
 * values; collection 'memories' expects 1536"). `where` is the path of the
 * enclosing object ("" for the body itself).
 */
#ifndef VD_JSON_UTIL_H
#define VD_JSON_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "server/json_scan.h"
#include "vectord/error.h"
#include "vectord/types.h"

/* VD_E_MALFORMED_JSON if an object anywhere in doc has a key twice (RFC 8259
 * leaves such documents' meaning open; cJSON would keep both and lookups see
 * the first). The message names the key and the object's path. */
int vd_json_unique_keys(const cJSON *doc, vd_errmsg *em);
/* Writes "where.name" (or "name") into buf. */
const char *vd_json_path(char *buf, size_t cap, const char *where, const char *name);
/* VD_E_INVALID_REQUEST unless obj is an object. */
int vd_json_object(const cJSON *obj, const char *where, vd_errmsg *em);
/* VD_E_UNKNOWN_FIELD if obj has a member not in allowed (NULL-terminated). */
int vd_json_no_unknown(const cJSON *obj, const char *where, const char *const *allowed,
                       vd_errmsg *em);
/* Integer member in [min, max]; absent → def (or VD_E_INVALID_REQUEST if required). */
int vd_json_uint(const cJSON *obj, const char *name, const char *where, bool required, uint64_t def,
                 uint64_t min, uint64_t max, uint64_t *out, vd_errmsg *em);
int vd_json_bool(const cJSON *obj, const char *name, const char *where, bool def, bool *out,
                 vd_errmsg *em);
/* Finite number member; *present tells whether it was given. */
int vd_json_number(const cJSON *obj, const char *name, const char *where, bool *present,
                   double *out, vd_errmsg *em);
/* Array of exactly dim finite float32 values into out (arr may be an
 * array lifted out of the text into `lifted`: server/json_scan.h). */
int vd_json_vector(const cJSON *arr, const char *path, const char *collection, uint32_t dim,
                   const vd_json_vectors *lifted, float *out, vd_errmsg *em);
/* The vector of obj: "vector" (array of numbers) or "vector_b64" (base64 of
 * dim little-endian float32), exactly one of them. where names obj. */
int vd_json_vector_field(const cJSON *obj, const char *where, const char *collection, uint32_t dim,
                         const vd_json_vectors *lifted, float *out, vd_errmsg *em);
/* A point id: unsigned integer <= 2^53-1 or a 1..256-byte string (borrowed from item). */
int vd_json_id(const cJSON *item, const char *path, vd_point_id *out, vd_errmsg *em);

#endif

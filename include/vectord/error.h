/*
 * error.h — the one list of vectord error codes.
 *
 * Fallible functions return int: 0 on success, -errno straight from a system
 * call, or one of the VD_E_* codes below: VD_E_BASE < code < VD_E_END, that
 * is -9999 upwards, one per entry in list order, far below any -errno (which
 * is above -4096), so the two never collide.
 * Each code carries its stable API name (the "code" field of an HTTP error
 * body), its HTTP status and a generic message. Human-readable detail is
 * written by the failing function into a caller-provided vd_errmsg.
 */
#ifndef VECTORD_ERROR_H
#define VECTORD_ERROR_H

#include <stddef.h>

/* X(name, api_code, http_status, generic message) */
#define VD_ERROR_MAP(X)                                                          \
    X(MALFORMED_JSON, "malformed_json", 400, "request body is not valid JSON")   \
    X(INVALID_REQUEST, "invalid_request", 400, "request is invalid")             \
    X(UNKNOWN_FIELD, "unknown_field", 400, "request has an unknown field")       \
    X(DIMENSION_MISMATCH, "dimension_mismatch", 400, "vector dimension mismatch") \
    X(INVALID_VECTOR, "invalid_vector", 400, "vector is invalid")                \
    X(INVALID_ID, "invalid_id", 400, "point id is invalid")                      \
    X(INVALID_FILTER, "invalid_filter", 400, "filter is invalid")                \
    X(OUT_OF_RANGE, "out_of_range", 400, "value out of range")                   \
    X(EMPTY_BATCH, "empty_batch", 400, "batch is empty")                         \
    X(UNSUPPORTED_INDEX, "unsupported_index", 400, "index type not supported")   \
    X(INVALID_NAME, "invalid_name", 400, "name is invalid")                      \
    X(UNAUTHORIZED, "unauthorized", 401, "an API key is required")               \
    X(FORBIDDEN, "forbidden", 403, "this API key may not do that")               \
    X(NOT_FOUND, "not_found", 404, "no such route")                              \
    X(COLLECTION_NOT_FOUND, "collection_not_found", 404, "collection not found") \
    X(POINT_NOT_FOUND, "point_not_found", 404, "point not found")                \
    X(METHOD_NOT_ALLOWED, "method_not_allowed", 405, "method not allowed")       \
    X(COLLECTION_EXISTS, "collection_exists", 409, "collection already exists")  \
    X(BODY_TOO_LARGE, "body_too_large", 413, "request body too large")           \
    X(BATCH_TOO_LARGE, "batch_too_large", 413, "batch too large")                \
    X(RESPONSE_TOO_LARGE, "response_too_large", 413, "the answer would be too large") \
    X(UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", 415,                     \
      "content type must be application/json")                                   \
    X(LIMIT_REACHED, "limit_reached", 409, "a configured limit was reached")     \
    X(OUT_OF_MEMORY, "out_of_memory", 503, "server is out of memory")            \
    X(NOT_READY, "not_ready", 503, "server is not ready")                        \
    X(OVERLOADED, "overloaded", 503, "server is overloaded; retry later")        \
    X(WAL_DISK_FULL, "wal_disk_full", 503, "the disk holding the WAL is full")   \
    X(WAL_READ_ONLY, "wal_read_only", 503, "the WAL is read-only after an I/O error") \
    X(DISK_FULL, "disk_full", 503, "the disk holding the vectors file is full")   \
    X(SNAPSHOT_FAILED, "snapshot_failed", 503, "the snapshot could not be written")    \
    X(FEED_TIMEOUT, "feed_timeout", 504, "the feed has not applied that transaction yet") \
    X(DEADLINE_EXCEEDED, "deadline_exceeded", 504, "the request ran past its deadline") \
    X(PARTITION_UNAVAILABLE, "partition_unavailable", 503,                      \
      "no replica of a partition answered")                                      \
    X(UPSTREAM_ERROR, "upstream_error", 502, "a replica gave an answer the router cannot use") \
    X(INTERNAL, "internal", 500, "internal error")

enum {
    VD_E_BASE = -10000,
#define VD_ERR_ENUM(name, code, status, msg) VD_E_##name,
    VD_ERROR_MAP(VD_ERR_ENUM)
#undef VD_ERR_ENUM
    VD_E_END
};

/* Stable API name of an error ("dimension_mismatch"); -errno maps to "internal". */
const char *vd_err_code(int err);
/* HTTP status for an error. */
int vd_err_status(int err);
/* Generic message; for -errno the strerror text. */
const char *vd_err_message(int err);

/* A caller-provided buffer for the detailed message of the last failure. */
typedef struct vd_errmsg {
    char text[384];
} vd_errmsg;

/* Formats into em (if non-NULL) and returns err, so callers can
 * `return vd_fail(em, VD_E_X, "…", …);`. */
int vd_fail(vd_errmsg *em, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

/*
 * types.h — small value types shared by every layer: metrics and point ids.
 */
#ifndef VECTORD_TYPES_H
#define VECTORD_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum vd_metric {
    VD_METRIC_COSINE = 0, /* similarity of L2-normalised vectors; higher is better */
    VD_METRIC_DOT = 1,    /* inner product; higher is better */
    VD_METRIC_L2 = 2,     /* squared Euclidean distance; lower is better */
} vd_metric;

const char *vd_metric_name(vd_metric m);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int vd_metric_parse(const char *name, vd_metric *out);

/* Ids are unsigned integers up to 2^53-1 (exact in JSON doubles) or strings. */
#define VD_ID_MAX_LEN 256
#define VD_ID_MAX_INT 9007199254740991ULL
/* The largest vector dimension (the ceiling of the max_dim setting, and of
 * what a stored collection may declare). */
#define VD_DIM_MAX 65536u

typedef enum vd_id_kind { VD_ID_INT = 1, VD_ID_STR = 2 } vd_id_kind;

/* A point id. For VD_ID_STR, str points at len bytes (not NUL-terminated
 * necessarily); whether that memory is owned is stated where an id is stored. */
typedef struct vd_point_id {
    vd_id_kind kind;
    uint32_t len;
    uint64_t num;
    const char *str;
} vd_point_id;

bool vd_id_equal(const vd_point_id *a, const vd_point_id *b);
/* A total order of ids, as a qsort/bsearch comparator of vd_point_id: integer
 * ids first, ascending, then string ids by their bytes (Qdrant's scroll order). */
int vd_id_order(const void *a, const void *b);
/* Stable 64-bit hash of an id (FNV-1a over a kind tag and the bytes, then a
 * 64-bit finaliser). Shard routing depends on it: never change it. */
uint64_t vd_id_hash(const vd_point_id *id);

#endif

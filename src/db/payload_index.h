/*
 * payload_index.h — per-shard secondary indexes on payload fields.
 *
 * keyword: value → posting list (sorted slot array). A query ORs the postings
 *   of its values into a bitmap over the shard's slots, so a filter touches only
 *   the points holding those values. Sorted arrays rather than one bitmap per
 *   value keep memory proportional to points even for high-cardinality keys
 *   such as userId (100k users × a 1M-slot bitmap would be 12 GB).
 * numeric: a column of doubles indexed by slot (NaN = absent). A range scan
 *   reads 8 bytes per point instead of walking its JSON payload. Points whose
 *   value is an array are flagged in `multi` and checked on their payload.
 * datetime: the same column, of RFC 3339 date-time strings as seconds since
 *   1970 (vd_datetime_parse), for ranges over date-times.
 * tenant: a keyword index that also keeps, beside each value's posting, the
 *   sq8 codes of that value's points side by side (db/tenant_block.h), for
 *   searches filtered to one tenant (Qdrant's is_tenant). A point whose
 *   value is an array goes to one extra block, `loose`, which such a search
 *   reads too. Costs a code per point (dim + 12 bytes, 26% of the float32
 *   vectors) and an encode per write.
 *
 * Values of arrays are indexed element by element. Not thread-safe: guarded by
 * the owning shard's lock.
 */
#ifndef VD_PAYLOAD_INDEX_H
#define VD_PAYLOAD_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "db/payload.h"
#include "db/tenant_block.h"

/* Values are part of the WAL and snapshot formats. */
typedef enum vd_pindex_type {
    VD_PINDEX_KEYWORD = 1,
    VD_PINDEX_NUMERIC = 2,
    VD_PINDEX_DATETIME = 3,
    VD_PINDEX_TENANT = 4 /* a keyword index with its values' codes side by side */
} vd_pindex_type;

/* Whether t answers keyword matches from postings (keyword and tenant). */
static inline bool vd_pindex_is_keyword(vd_pindex_type t)
{
    return t == VD_PINDEX_KEYWORD || t == VD_PINDEX_TENANT;
}

const char *vd_pindex_type_name(vd_pindex_type t);
int vd_pindex_type_parse(const char *name, vd_pindex_type *out);

typedef struct vd_posting {
    uint32_t *slots; /* sorted ascending */
    uint32_t n, cap;
} vd_posting;

typedef struct vd_kw_entry vd_kw_entry;

typedef struct vd_pindex {
    char *field; /* owned */
    vd_key_path path;
    vd_pindex_type type;
    uint32_t dim; /* tenant: the vectors' */
    /* keyword, tenant */
    vd_kw_entry **buckets;
    size_t n_buckets, n_keys, posting_bytes;
    /* numeric, datetime */
    double *values;  /* values_cap entries, NaN = absent */
    uint64_t *multi; /* bit per slot: value is an array, check the payload */
    size_t values_cap;
    /* tenant: the blocks' shared positions, the block of array values, bytes of all blocks */
    vd_tenant_pos tenant_pos;
    vd_tenant_block loose;
    size_t tenant_bytes;
} vd_pindex;

/* dim: the vectors' dimensions (used by a tenant index only). */
int vd_pindex_create(vd_pindex **out, const char *field, vd_pindex_type type, uint32_t dim);
void vd_pindex_destroy(vd_pindex *idx);
/* Indexes the field of payload (may be NULL) for slot; vector (dim floats)
 * is the slot's, which a tenant index encodes (others ignore it; may then be
 * NULL). 0 or -ENOMEM. */
int vd_pindex_add(vd_pindex *idx, uint32_t slot, const cJSON *payload, const float *vector);
/* Removes what vd_pindex_add added for the same payload. */
void vd_pindex_remove(vd_pindex *idx, uint32_t slot, const cJSON *payload);
/* Posting list of a keyword key ("s:…", see vd_keyword_key), or NULL. */
const vd_posting *vd_pindex_lookup(const vd_pindex *idx, const char *key);
/* A tenant index's block of a keyword key, or NULL when no point holds it. */
const vd_tenant_block *vd_pindex_tenant_block(const vd_pindex *idx, const char *key);
size_t vd_pindex_bytes(const vd_pindex *idx);

/* A payload index a collection keeps: the payload field and its type (part
 * of the collection's configuration; every shard holds one of each). */
typedef struct vd_pindex_spec {
    const char *field;
    vd_pindex_type type;
} vd_pindex_spec;

#endif

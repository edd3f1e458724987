/*
 * filter.h — the payload filter language: parse, test one point, and build the
 * bitmap of matching slots of a shard.
 *
 *   filter    := {"must":[cond…], "should":[cond…], "must_not":[cond…]}
 *   cond      := filter (a nested group)
 *              | {"key":"a.b", "match":{"value": string|integer|bool}}
 *              | {"key":"a.b", "match":{"any": [string|integer|bool, …]}}
 *              | {"key":"a.b", "range":{"gt"|"gte"|"lt"|"lte": number, …}}
 *              | {"has_id": [point id, …]}   (the point's id is one of them)
 * must: all hold; should: at least one holds (when present); must_not: none
 * holds; an empty group matches everything. When the payload value is an
 * array, a condition holds if it holds for any element. A parsed filter is
 * immutable and may be shared by threads.
 */
#ifndef VD_FILTER_H
#define VD_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "db/payload.h"
#include "db/payload_index.h"
#include "vectord/error.h"
#include "vectord/types.h"

#define VD_FILTER_MAX_CONDITIONS 1024 /* nodes in one filter */
#define VD_FILTER_MAX_VALUES 1024     /* values in one match.any */
#define VD_FILTER_MAX_VALUE_LEN 500   /* bytes of one string value */

typedef struct vd_filter vd_filter;

/* Parses json (borrowed). max_depth bounds group nesting (1 = no nested
 * group); max_terms the conditions plus match values in all (0 = only the
 * fixed limits above), which bounds what evaluating it costs per point. */
int vd_filter_parse(const cJSON *json, unsigned max_depth, size_t max_terms, vd_filter **out,
                    vd_errmsg *em);
void vd_filter_destroy(vd_filter *f);

/* Whether one payload (may be NULL) satisfies the filter; has_id holds for
 * no point here (vd_filter_match_point knows the id). */
bool vd_filter_match(const vd_filter *f, const cJSON *payload);
/* The same for the point with id (may be NULL). */
bool vd_filter_match_point(const vd_filter *f, const vd_point_id *id, const cJSON *payload);

/* Room for vd_filter_eval's temporary bitmaps, used as a stack and reused
 * across evaluations (the search path does not malloc): words[0..cap). */
typedef struct vd_filter_scratch {
    uint64_t *words;
    size_t cap, used;
} vd_filter_scratch;

/* The words of scratch vd_filter_eval of f over n_slots uses at most. */
size_t vd_filter_scratch_words(const vd_filter *f, size_t n_slots);

/* What a shard lends to vd_filter_eval; all borrowed, read under its lock. */
typedef struct vd_filter_source {
    size_t n_slots;
    const uint64_t *alive; /* vd_bitset_words(n_slots) words */
    const cJSON *(*payload_of)(const void *ctx, uint32_t slot);
    const void *ctx;
    vd_pindex *const *indexes;
    size_t n_indexes;
    /* optional (NULL: has_id holds for no slot): a slot's id, and the slot of
     * an id (false if none) */
    const vd_point_id *(*id_of)(const void *ctx, uint32_t slot);
    bool (*slot_of)(const void *ctx, const vd_point_id *id, uint32_t *slot);
    /* optional: temporary bitmaps come from here when it has room (else malloc) */
    vd_filter_scratch *scratch;
} vd_filter_source;

/* Whether the point in a live slot matches, as vd_filter_eval would say:
 * numeric and datetime ranges are read from their index column where it
 * holds the slot's value, the rest from the payload. For checks made node by
 * node during a graph walk: no bitmap over every point. */
bool vd_filter_match_slot(const vd_filter *f, const vd_filter_source *src, uint32_t slot);
/* Whether vd_filter_match_slot reads only index columns for f (every leaf a
 * numeric or datetime range with its index): a check per node costs a load
 * and two compares, not a payload look-up. */
bool vd_filter_slot_indexed(const vd_filter *f, const vd_filter_source *src);

/* The keyword keys ("s:…", vd_keyword_key) of a condition in the filter's
 * top-level `must` that matches field against values (match value or any):
 * every point the filter admits holds one of them there. Returns how many
 * (*keys borrows them), or 0 when the filter has no such condition. */
size_t vd_filter_must_match(const vd_filter *f, const char *field, const char *const **keys);

/* Writes into out (vd_bitset_words(n_slots) words) the alive slots that match.
 * 0 or -ENOMEM. */
int vd_filter_eval(const vd_filter *f, const vd_filter_source *src, uint64_t *out);

#endif

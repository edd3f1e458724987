/*
 * answers.h — reading requests and combining replicas' answers for the
 * router: which tenant a filter or a point names, the top-k of several
 * partitions' hit lists, scroll pages merged in id order.
 */
#ifndef VD_ANSWERS_H
#define VD_ANSWERS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define VD_TENANT_TEXT_MAX 512

/* A payload value's text as Postgres' `::text` prints the column it came
 * from: a string as it is, an integer in decimal, true/false. false for
 * anything else (floats, objects, arrays, null). */
bool vd_rt_value_text(const cJSON *v, char *out, size_t cap);
/* The tenant a filter confines a search to: a condition
 * {"key": field, "match": {"value": v}} in its top-level "must" (a list, or
 * one condition as Qdrant allows). Its text goes to out; false if none. */
bool vd_rt_filter_tenant(const cJSON *filter, const char *field, char *out, size_t cap);
/* The tenant of a point's payload (field may be dotted); *null = the point
 * has none (partition 0, as a NULL column is). false = a value that is
 * not a tenant (a float, an object). */
bool vd_rt_payload_tenant(const cJSON *payload, const char *field, char *out, size_t cap, bool *null);

/* Reading a request without parsing it whole (its vector is most of it):
 * the span of the top-level member `key` of the JSON object in text (a key
 * written without escapes), or false when it is absent or the walk meets
 * text that is not JSON. A miss costs only speed: the caller then parses
 * the whole body. */
bool vd_rt_json_member(const char *text, size_t len, const char *key, const char **at, size_t *at_len);
/* Calls fn on the span of each element of the JSON array in text, until fn
 * returns false; false when text is not an array it can walk. */
bool vd_rt_json_elements(const char *text, size_t len, bool (*fn)(const char *at, size_t n, void *ctx),
                         void *ctx);
/* The tenant the "filter" member of the JSON object in text names (see
 * vd_rt_filter_tenant), without parsing the rest of text. */
bool vd_rt_text_tenant(const char *text, size_t len, const char *field, char *out, size_t cap);

/* The best `offset + limit` of n hit lists (arrays of {"score": …}) in score
 * order (higher first when higher_better), from `offset` on: a new array of
 * copies. Ties keep list order, then position. NULL on ENOMEM. */
cJSON *vd_rt_merge_hits(cJSON *const *lists, size_t n, bool higher_better, size_t offset, size_t limit);
/* Point ids in vectord's order (integers first, ascending; then strings, bytewise). */
int vd_rt_id_cmp(const cJSON *a, const cJSON *b);
/* Qdrant scroll pages ({"points": […], "next_page_offset": id|null}) of n
 * partitions merged: the first `limit` points in id order, and the next
 * offset (the smallest id not returned). A new object, or NULL. */
cJSON *vd_rt_merge_scroll(cJSON *const *pages, size_t n, size_t limit);
/* Scroll pages with order_by (each point with "order_value") merged: the
 * first `limit` by value (descending with desc), ties in id order, as one
 * vectord orders them; no next_page_offset (start_from pages). */
cJSON *vd_rt_merge_ordered(cJSON *const *pages, size_t n, size_t limit, bool desc);
/* Maximal marginal relevance over hits (best first, each with its "vector"),
 * as vectord's Qdrant query does it: picks `want` one by one, each the best
 * of (1 - diversity) × relevance − diversity × (its highest similarity to
 * those picked), relevance being the score (minus the distance for l2);
 * similarity is the inner product, or minus the Euclidean distance for l2.
 * Reorders hits and drops the rest. */
void vd_rt_mmr(cJSON *hits, bool l2, float diversity, size_t want);
/* Adds the numbers of src's top-level numeric fields named in `fields`
 * (NULL-terminated) into dst's. */
void vd_rt_sum_fields(cJSON *dst, const cJSON *src, const char *const *fields);

#endif

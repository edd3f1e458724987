/*
 * payload.h — helpers over point payloads.
 *
 * A payload is any JSON object, stored per point as a cJSON tree owned by the
 * shard (read concurrently by searches under the shard's read lock, never
 * mutated in place). Keys with dots address nested fields: "a.b" is field "b"
 * of object "a".
 */
#ifndef VD_PAYLOAD_H
#define VD_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* A dotted key split into its parts (owned copies). */
typedef struct vd_key_path {
    char **parts;
    size_t n_parts;
} vd_key_path;

/* Splits "a.b.c"; fails on an empty key or an empty part ("a..b"). 0 or -1/-ENOMEM. */
int vd_key_path_parse(vd_key_path *kp, const char *key);
void vd_key_path_free(vd_key_path *kp);
/* The value at kp inside payload, or NULL. */
const cJSON *vd_payload_get(const cJSON *payload, const vd_key_path *kp);

/* Approximate heap bytes held by a cJSON tree (nodes plus strings). */
size_t vd_payload_bytes(const cJSON *item);

/* An RFC 3339 date-time ("2026-12-05T23:10:00Z", "…+01:00", fractions of a
 * second, a space for the 'T'), or a date ("2026-12-05": midnight UTC), as
 * seconds since 1970-01-01 UTC: how filters and datetime indexes compare
 * them. false if s is not one. */
bool vd_datetime_parse(const char *s, double *out);

/* Keyword index key of a scalar value: "s:<string>", "i:<integer>", "b:0|1".
 * Returns the key length written into buf (NUL-terminated), or 0 if the value
 * is not a keyword-indexable scalar (numbers must be integral, |x| < 2^53).
 * Strings longer than buf are rejected (0). */
size_t vd_keyword_key(const cJSON *value, char *buf, size_t cap);

#endif

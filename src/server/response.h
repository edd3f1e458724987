/*
 * response.h — JSON renderings of stored objects for API replies.
 */
#ifndef VD_RESPONSE_H
#define VD_RESPONSE_H

#include <cjson/cJSON.h>

#include "db/collection.h"
#include "db/point.h"
#include "server/routes.h"
#include "util/strbuf.h"

cJSON *vd_resp_id(const vd_point_id *id);
/* {"id", ["score"], "version", "payload", ["vector"]}; moves p->payload into
 * the result. NULL on ENOMEM. */
cJSON *vd_resp_point(vd_point_out *p, bool with_score, bool with_payload);
/* Collection info: config, counts, memory, per-shard stats. */
cJSON *vd_resp_collection(vd_collection *c);

/* About how many bytes j prints as (its tree walked, not printed). */
size_t vd_resp_size_estimate(const cJSON *j);

/* The success envelope as text ending in a newline (malloc'd, *len bytes);
 * takes result. Native: {"result": result, "time_ms": …}; Qdrant:
 * {"result": result, "status": "ok", "time": seconds}. NULL on ENOMEM. */
char *vd_resp_envelope(cJSON *result, double seconds, vd_dialect d, size_t *len);
/* The same envelope around a result written piece by piece: its head
 * before the result's text, its tail after. false on ENOMEM. */
bool vd_resp_envelope_head(vd_strbuf *out);
bool vd_resp_envelope_tail(vd_strbuf *out, double seconds, vd_dialect d);
/* Appends vd_resp_point(p, true, with_payload)'s text. false on ENOMEM. */
bool vd_resp_point_text(vd_point_out *p, bool with_payload, vd_strbuf *out);

#endif

/*
 * search_answer.h — the answer of a search or of a batch of searches: the
 * hits of each, their size as text (checked against max_response_bytes
 * before anything is sent), and their rendering as a vd_stream, so a large
 * answer is written piece by piece as the client reads it instead of being
 * built whole.
 */
#ifndef VD_SEARCH_ANSWER_H
#define VD_SEARCH_ANSWER_H

#include <stdbool.h>
#include <stddef.h>

#include "db/point.h"
#include "server/api.h"

typedef struct vd_search_answer vd_search_answer;

/* Room for n searches' hits; batch: the result is an array of their arrays,
 * else the one search's array. NULL on ENOMEM. */
vd_search_answer *vd_search_answer_new(size_t n, bool batch);
/* Writes each search's hits as {"points": [...]} instead of [...] (the
 * answer of Qdrant's points/query). */
void vd_search_answer_as_points(vd_search_answer *a);
/* Takes search i's hits (n of them, best first). */
void vd_search_answer_put(vd_search_answer *a, size_t i, vd_point_out *hits, size_t n,
                          bool with_payload);
/* About how many bytes the result's text takes. */
size_t vd_search_answer_bytes(const vd_search_answer *a);
/* The answer as a stream (it takes a: the stream's free releases it). */
vd_stream vd_search_answer_stream(vd_search_answer *a);
void vd_search_answer_free(vd_search_answer *a);

#endif

/*
 * upstream.h — the router's HTTP client (libcurl): a set of requests to
 * vectord replicas performed at once on the calling thread, each bounded in
 * time and in answer size. One vd_upstream per thread that calls it; it keeps
 * the connections it opened alive for the next requests (curl's connection
 * cache), so a client connection's searches reuse their replica connections.
 */
#ifndef VD_UPSTREAM_H
#define VD_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

/* The largest answer read from a replica (bigger ones fail the request). */
#define VD_UPSTREAM_MAX_ANSWER ((size_t)256 << 20)

typedef struct vd_upstream vd_upstream;

typedef struct vd_up_req {
    /* in (borrowed) */
    const char *method;
    char url[1280];
    const char *body; /* NULL = none */
    size_t body_len;
    const char *const *headers; /* "Name: value" lines passed through, NULL-terminated, or NULL */
    long timeout_ms;
    /* out */
    long status;      /* the HTTP status; 0 = no answer (error says why) */
    char *answer;     /* owned, NUL-terminated (free it) */
    size_t answer_len;
    char error[256];
} vd_up_req;

int vd_upstream_create(vd_upstream **out);
void vd_upstream_destroy(vd_upstream *u);
/* Performs the n requests concurrently; returns when all have answered or
 * failed. Each request's answer is freed and replaced. */
void vd_upstream_run(vd_upstream *u, vd_up_req *reqs, size_t n);
/* Frees the answers of n requests. */
void vd_up_reqs_free(vd_up_req *reqs, size_t n);

#endif

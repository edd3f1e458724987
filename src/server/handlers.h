/* handlers.h — the API handlers, one per route (the table: routes.h). */
#ifndef VD_HANDLERS_H
#define VD_HANDLERS_H

#include "server/api.h"

int vd_h_healthz(vd_call *call);
int vd_h_readyz(vd_call *call);
int vd_h_metrics(vd_call *call);
int vd_h_openapi(vd_call *call);
int vd_h_collections_list(vd_call *call);
int vd_h_collection_create(vd_call *call);
int vd_h_collection_info(vd_call *call);
int vd_h_collection_delete(vd_call *call);
int vd_h_collection_update(vd_call *call);
int vd_h_pindex_create(vd_call *call);
int vd_h_pindex_delete(vd_call *call);
int vd_h_points_upsert(vd_call *call);
int vd_h_points_delete(vd_call *call);
int vd_h_points_vectors(vd_call *call);
int vd_h_points_payload(vd_call *call);
int vd_h_point_get(vd_call *call);
int vd_h_search(vd_call *call);
int vd_h_search_batch(vd_call *call);
int vd_h_search_shadow(vd_call *call);
int vd_h_collection_snapshot(vd_call *call);
int vd_h_checkpoint(vd_call *call);
int vd_h_feed(vd_call *call);
int vd_h_feeds(vd_call *call);
int vd_h_feed_reconcile(vd_call *call);

/* Adapts one search's hits (best first, owned: free what is dropped) before
 * they are answered: another dialect's offset, scores or payload fields; i
 * is the search's index in a batch. */
typedef struct vd_hits_adapter {
    void (*fn)(void *ctx, size_t i, vd_point_out *hits, size_t *n);
    void *ctx;
    bool as_points; /* each search's hits answered as {"points": [...]} */
    /* Optional: makes search i's hits itself (*made set; e.g. by fusing
     * several searches run with vd_call_search_hits); when it leaves *made
     * false, s[i] is run. 0 or an error code. */
    int (*source)(void *ctx, size_t i, vd_call *call, vd_collection *c, vd_point_out **hits, size_t *n,
                  bool *made);
} vd_hits_adapter;

/* Runs one parsed search: its hits, best first (free each with
 * vd_point_out_free, then the array), counted in the metrics and offered to
 * the recall monitor. */
int vd_call_search_hits(vd_call *call, vd_collection *c, vd_search_parsed *s, vd_point_out **hits, size_t *n);

/* Searches are parsed on the HTTP thread that read them. Cheap ones run
 * there too: handing a search to a request worker and back costs two thread
 * wake-ups, about 15% of a small search's CPU on 2 cores
 * (bench/http_cpu.py). A search whose work (vd_collection_search_work's
 * model: an upper bound, in multiply-adds) is above this goes to the request
 * workers, so an HTTP thread is never held by a search for more than about
 * a millisecond and probes stay fast under any search load. */
#define VD_INLINE_MAX_WORK (8.0 * 1024 * 1024)

/* Whether the parsed searches s[0..n) run on this thread: yes on a request
 * worker (call->offloaded) or when there are none; on an HTTP thread, when
 * their summed work is at most VD_INLINE_MAX_WORK. A yes is counted in
 * vectord_search_requests_total{thread=…}. A handler that gets false frees
 * what it parsed and returns vd_call_offload(call, itself): the worker
 * parses the request again and runs it. */
bool vd_call_searches_here(const vd_call *call, vd_collection *c, const vd_search_parsed *s, size_t n);

/* Runs the parsed searches s[0..n) (their state freed as they run) into one
 * answer, as POST …/search (batch: …/search/batch) answers: rendered whole
 * when small, streamed when large, refused past max_response_bytes. adapt
 * may be NULL. */
int vd_call_run_searches(vd_call *call, vd_collection *c, vd_search_parsed *s, size_t n, bool batch,
                         const vd_hits_adapter *adapt);

#endif

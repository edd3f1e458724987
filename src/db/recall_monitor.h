/*
 * recall_monitor.h — measures the recall of live searches.
 *
 * One approximate search in every `every` is sampled (an exact answer, from a
 * flat collection or a filtered search the planner scanned, is only counted): its query (vector, k, filter,
 * threshold) and the ids it returned go on a bounded queue; a background
 * thread at low CPU priority re-runs the query exactly (a full scan of each
 * shard, on its own thread, not the worker pool) and records in the
 * collection's quality tally how many of the exact top-k the live search
 * found. When the queue is full, samples are dropped and counted, never
 * waited for. Points written between the search and its re-run count against
 * recall, so under heavy writes the figure is a slight underestimate. For a
 * collection with a target recall, the thread also runs the query at each
 * breadth of the calibration ladder (db/calibration.h).
 */
#ifndef VD_RECALL_MONITOR_H
#define VD_RECALL_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

#include "db/collection.h"
#include "db/filter.h"
#include "db/point.h"

#define VD_RECALL_QUEUE_MAX 64

typedef struct vd_recall_monitor vd_recall_monitor;

typedef struct vd_recall_monitor_stats {
    uint64_t sampled;  /* queued for a re-run */
    uint64_t measured; /* re-run and recorded */
    uint64_t dropped;  /* not queued: the queue was full */
    uint64_t queued;   /* waiting now */
    uint64_t exact;    /* searches answered exactly, so not sampled */
} vd_recall_monitor_stats;

/* every = 0: off (*out = NULL, no thread). */
int vd_recall_monitor_start(vd_recall_monitor **out, uint64_t every);
/* Stops and joins the thread; queued samples are discarded. NULL is a no-op. */
void vd_recall_monitor_stop(vd_recall_monitor *m);
/* Counts a search answered exactly, which is not sampled (NULL: no-op). */
void vd_recall_monitor_count_exact(vd_recall_monitor *m);
/* True for one call in every `every` (lock-free): called for approximate
 * searches only, so one in `every` of them is sampled. False when m is NULL. */
bool vd_recall_monitor_want(vd_recall_monitor *m);
/* Queues a re-run of req against c, comparing with hits[0..n). Takes over
 * *vector and *filter (sets them NULL) when the sample is queued; copies the
 * hit ids. */
void vd_recall_monitor_offer(vd_recall_monitor *m, vd_collection *c, const vd_search_req *req,
                             float **vector, vd_filter **filter, const vd_point_out *hits,
                             size_t n);
void vd_recall_monitor_stats_get(vd_recall_monitor *m, vd_recall_monitor_stats *out);

#endif

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
 *
 * CPU budget: the thread spends at most `cpu_percent` percent of one core
 * (wall-clock rate, a token bucket holding up to VD_RECALL_BURST_S seconds of
 * that rate, full at start). A sample's cost is the thread's CPU time for it;
 * once the bucket runs dry the thread rests until the rate has paid the debt
 * back, and meanwhile searches are not sampled (counted as skipped), and the
 * samples still queued are discarded (skipped too: by the time they ran they
 * would be stale). At 100 the budget never binds. A full scan per sample grows
 * with the collection, so without a budget the monitor's share of the server
 * grows with the data and the query rate (issue 20: ~5% of a 2-core server at
 * 14k searches/s on 100k x 384).
 */
#ifndef VD_RECALL_MONITOR_H
#define VD_RECALL_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

#include "db/collection.h"
#include "db/filter.h"
#include "db/point.h"

#define VD_RECALL_QUEUE_MAX 64
/* The bucket's size, in seconds of the budget's rate. */
#define VD_RECALL_BURST_S 10.0

typedef struct vd_recall_monitor vd_recall_monitor;

typedef struct vd_recall_monitor_stats {
    uint64_t sampled;  /* queued for a re-run */
    uint64_t measured; /* re-run and recorded */
    uint64_t dropped;  /* not queued: the queue was full */
    uint64_t queued;   /* waiting now */
    uint64_t exact;    /* searches answered exactly, so not sampled */
    uint64_t skipped;  /* not sampled or discarded: over the CPU budget */
    double cpu_s;      /* CPU time the re-runs took */
} vd_recall_monitor_stats;

/* every = 0: off (*out = NULL, no thread). cpu_percent: 1 … 100, of one core. */
int vd_recall_monitor_start(vd_recall_monitor **out, uint64_t every, uint32_t cpu_percent);
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

/*
 * maintenance.h — the background thread that keeps indexes healthy: every
 * interval it visits each collection and compacts the shards whose deleted
 * points (tombstones still held by an HNSW graph) reach a share of the graph.
 * Compaction repairs the graph beside searches and writes, then frees the
 * slots, so recall does not decay under churn and memory comes back.
 */
#ifndef VD_MAINTENANCE_H
#define VD_MAINTENANCE_H

#include <stdint.h>

#include "db/database.h"

typedef struct vd_maintenance vd_maintenance;

/* interval_ms 0 disables the thread (*out = NULL). min_ratio in [0, 1]. */
int vd_maintenance_start(vd_maintenance **out, vd_database *db, uint64_t interval_ms,
                         double min_ratio);
/* Stops and joins the thread (waits for a compaction in progress). NULL is a no-op. */
void vd_maintenance_stop(vd_maintenance *m);

#endif

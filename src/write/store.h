/*
 * store.h — the durable side of a database: the data directory's WAL and
 * snapshots, recovery at open, the journal every change goes through, and
 * (checkpoint.c) the snapshots that let old WAL segments go.
 *
 * The data directory's layout: write/datadir.h.
 */
#ifndef VD_STORE_H
#define VD_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "write/checkpoint.h"
#include "db/database.h"
#include "write/journal.h"
#include "write/recovery.h"
#include "vectord/error.h"
#include "vectord/wal.h"

typedef struct vd_store_options {
    const char *data_dir;
    vd_fsync_policy fsync;
    uint32_t batch_ms;
    uint64_t segment_bytes;
    const char *wal_io; /* "auto" | "io_uring" | "pwrite" */
    bool accept_data_loss;
    uint64_t checkpoint_interval_s; /* 0 = no periodic checkpoint */
    uint64_t checkpoint_wal_bytes;  /* 0 = no size trigger */
    /* The size trigger also waits for WAL bytes of this percentage of what
     * the last checkpoint wrote (0 = checkpoint_wal_bytes alone). */
    uint64_t checkpoint_wal_pct;
    /* The same while a bulk load runs (vd_journal_bulk_load). */
    uint64_t checkpoint_bulk_wal_pct;
    vd_vfs *vfs; /* tests: all file I/O through this one (wal_io is then ignored) */
} vd_store_options;

typedef struct vd_checkpoint_stats {
    uint64_t runs, failures, bytes, segments_removed;
    double last_seconds, total_seconds;
} vd_checkpoint_stats;

typedef struct vd_store vd_store;

/* The WAL bytes since the last checkpoint that trigger the next one:
 * checkpoint_wal_bytes, or checkpoint_wal_pct (checkpoint_bulk_wal_pct
 * during a bulk load) of last_bytes, what the last checkpoint wrote, if
 * that is more; 0 = no size trigger. */
uint64_t vd_store_wal_trigger(const vd_store_options *opt, uint64_t last_bytes, bool bulk);

/* Recovers db from the data directory, then opens the WAL for new writes. */
int vd_store_open(vd_store **out, vd_database *db, const vd_store_options *opt,
                  vd_recovery_report *rep, vd_errmsg *em);
/* Stops the checkpointer, checkpoints (if asked: a clean shutdown, no
 * writes in flight), and closes the WAL (what is queued is written first). */
void vd_store_close(vd_store *s, bool checkpoint);

/* A checkpoint now: every changed collection, or only the one named. */
int vd_store_checkpoint(vd_store *s, const char *only, const char *reason,
                        vd_checkpoint_result *res, vd_errmsg *em);
void vd_store_checkpoint_stats(vd_store *s, vd_checkpoint_stats *out);

vd_journal *vd_store_journal(vd_store *s);
vd_wal *vd_store_wal(vd_store *s);
/* "io_uring" or "pwrite": how the WAL writes. */
const char *vd_store_wal_io(const vd_store *s);

#endif

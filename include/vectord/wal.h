/*
 * wal.h — the write-ahead log writer: one thread appends the records that
 * many writers queue, as one write and one fdatasync per group (group commit),
 * and tells each writer when its record is durable or has failed.
 *
 * Errors follow DESIGN.md §2 "Durability": ENOSPC on a write fails that group
 * (its bytes are cut off again) and later writes may succeed once space
 * returns; any other write error, and any failed fdatasync, turns the WAL
 * read-only until restart (a failed fsync is never retried).
 * All file I/O goes through a vd_vfs, so tests inject faults.
 */
#ifndef VECTORD_WAL_H
#define VECTORD_WAL_H

#include <stdint.h>

#include "vectord/error.h"
#include "vectord/vfs.h"

typedef enum vd_fsync_policy {
    VD_FSYNC_ALWAYS = 0, /* a record is acknowledged after its group's fdatasync */
    VD_FSYNC_NONE = 1,   /* acknowledged after the write; the OS flushes when it likes */
    VD_FSYNC_BATCH = 2,  /* acknowledged after the write; fdatasync within batch_ms */
} vd_fsync_policy;

typedef struct vd_wal_options {
    uint64_t segment_bytes; /* roll to a new segment past this size */
    vd_fsync_policy fsync;
    uint32_t batch_ms; /* VD_FSYNC_BATCH: the longest written bytes stay unsynced */
} vd_wal_options;

/* Group sizes: bucket i counts groups of at most 2^i records (last: more). */
#define VD_WAL_GROUP_BUCKETS 12
/* Sync latency (write + fdatasync of a group): upper bounds in seconds. */
#define VD_WAL_SYNC_BUCKETS 12
extern const double vd_wal_sync_bounds[VD_WAL_SYNC_BUCKETS]; /* last = +Inf */

typedef struct vd_wal_stats {
    uint64_t records, bytes, groups, fsyncs, failed_groups;
    uint64_t next_lsn, durable_lsn;
    int read_only_error; /* 0, or the -errno that made the WAL read-only */
    uint64_t group_hist[VD_WAL_GROUP_BUCKETS];
    uint64_t sync_hist[VD_WAL_SYNC_BUCKETS];
    double sync_seconds; /* total */
} vd_wal_stats;

typedef struct vd_wal vd_wal;

/* Starts a new segment in dir whose first record gets LSN first_lsn. */
int vd_wal_open(vd_wal **out, vd_vfs *vfs, const char *dir, uint64_t first_lsn,
                const vd_wal_options *opt, vd_errmsg *em);
/* Writes what is queued, stops the writer thread, closes the segment. */
void vd_wal_close(vd_wal *w);

/* Called once per record by the writer thread when its fate is known:
 * err 0 (durable, or written under VD_FSYNC_NONE) or -errno. */
typedef void (*vd_wal_done_cb)(void *ctx, uint64_t lsn, int err);

/* Queues a record (the body is copied) and returns at once; cb runs on the
 * writer thread later. -EROFS when the WAL is read-only. */
int vd_wal_append_async(vd_wal *w, uint8_t type, const void *body, uint32_t len,
                        vd_wal_done_cb cb, void *ctx, uint64_t *lsn);
/* Queues a record and blocks until its fate is known. */
int vd_wal_append(vd_wal *w, uint8_t type, const void *body, uint32_t len, uint64_t *lsn);

void vd_wal_stats_get(vd_wal *w, vd_wal_stats *st);

/* The segments in dir (wal-<first LSN>.log), sorted by first LSN: *firsts is
 * malloc'd (free it). 0 or -errno. */
int vd_wal_list_segments(const char *dir, uint64_t **firsts, size_t *n);
/* Path of the segment that starts at first_lsn. */
void vd_wal_segment_path(char *out, size_t cap, const char *dir, uint64_t first_lsn);
/* Removes the segments (never the one being written) whose records all have
 * LSNs <= lsn: a checkpoint holds them. *removed counts them. */
int vd_wal_remove_through(vd_wal *w, uint64_t lsn, size_t *removed);

#endif

/*
 * checkpoint.h — snapshots of collections, and the checkpoint that writes
 * them and then removes the WAL segments they make unnecessary.
 *
 * The files, under the data directory's snapshots/: write/datadir.h. Each
 * shard file records the LSN of the last write it holds: replay skips older
 * records for that shard. A shard's image is taken in two parts: under the
 * shard's write lock (the collection's ordered apply waits only until that
 * lock is taken) the slot metadata and the index image are copied into
 * memory; then the vectors are streamed to the file under short read-lock
 * holds while searches and writes go on (db/shard_image.c). So a checkpoint
 * needs one shard's metadata and index image of extra RAM, not its vectors.
 */
#ifndef VD_CHECKPOINT_H
#define VD_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "db/collection.h"
#include "db/database.h"
#include "vectord/error.h"
#include "vectord/vfs.h"
#include "vectord/wal.h"

typedef struct vd_checkpoint_result {
    size_t collections; /* snapshotted */
    size_t shards;
    uint64_t bytes;
    size_t segments_removed;
    size_t orphans_removed; /* snapshot directories of dropped collections */
    uint64_t covered_lsn;   /* every WAL record up to here is in snapshots */
    double seconds;
} vd_checkpoint_result;

/* Writes the snapshot files of c into snap_root. */
int vd_snapshot_collection(vd_vfs *vfs, const char *snap_root, vd_collection *c,
                           vd_checkpoint_result *res, vd_errmsg *em);

/* Snapshots every collection changed since its last snapshot (or only the
 * one named, always), removes the snapshot directories of dropped
 * collections, then the WAL segments the snapshots cover. The caller holds
 * the journal's DDL lock (no collection appears or goes meanwhile). */
int vd_checkpoint(vd_database *db, vd_wal *wal, vd_vfs *vfs, const char *snap_root,
                  const char *only, vd_checkpoint_result *res, vd_errmsg *em);

#endif

/*
 * snapshot_load.h — the first step of recovery: every collection snapshot
 * and the feed positions under snapshots/ loaded into the database, checked
 * against the checkpoint manifest (write/manifest.h).
 *
 * Refused (unless accept_data_loss), each with a message naming the file:
 * an unreadable file; a file, collection folder or collection file the
 * manifest lists that is older than listed, or missing while the WAL no
 * longer holds the records it covered; a shard count other
 * than listed; snapshot files written by a vectord that keeps a manifest
 * without one beside them. With accept_data_loss an unreadable file is
 * renamed *.discarded, a collection with a missing or unreadable file is
 * dropped whole (never kept with a hole), each logged at error level and
 * counted in lost_files.
 */
#ifndef VD_SNAPSHOT_LOAD_H
#define VD_SNAPSHOT_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/database.h"
#include "vectord/error.h"
#include "vectord/vfs.h"

typedef struct vd_snapshots_loaded {
    size_t files;         /* snapshot files loaded */
    uint64_t max_lsn;     /* the highest LSN seen */
    uint64_t wal_from;    /* the WAL must hold every record from this LSN on
                             (0: not known, a data directory from before manifests) */
    uint64_t wal_through; /* ... and reach at least this one (the manifest's WAL end) */
    size_t lost_files;    /* accept_data_loss: listed files started without */
} vd_snapshots_loaded;

/* wal_first: the first LSN of the oldest WAL segment (0: no WAL). A
 * listed file whose records the WAL still holds from there is not lost: it
 * is rebuilt by replay (logged as a warning) and wal_from says so. */
int vd_snapshots_load(vd_database *db, vd_vfs *vfs, const char *snap_root, uint64_t wal_first,
                      bool accept_data_loss, vd_snapshots_loaded *out, vd_errmsg *em);

#endif

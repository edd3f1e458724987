/*
 * recovery.h — rebuilding the database at start-up: the newest snapshot of
 * each collection, then every later WAL record, in LSN order, through the
 * same apply code as live writes (write/mutation.c).
 *
 * A torn record at the very end of the last segment (a write cut by a crash)
 * is cut off and logged. Anything else that does not read back — a bad
 * record followed by valid ones, a bad segment header, a gap in the log's
 * LSNs between segments (one removed, emptied or cut short), a log that
 * starts after the last checkpoint's covered LSN or ends before the LSN its
 * manifest says had been written (write/manifest.h), a snapshot whose
 * checksum or format version is wrong — refuses the start with a message
 * that names the file and the byte offset, unless accept_data_loss is set:
 * then the WAL is cut at the bad record (later segments are renamed
 * *.discarded), a gap is logged at error level and counted (lost_records)
 * and replay goes on after it, and a bad snapshot is renamed *.discarded
 * and skipped.
 */
#ifndef VD_RECOVERY_H
#define VD_RECOVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "db/database.h"
#include "vectord/error.h"
#include "vectord/vfs.h"

typedef struct vd_recovery_report {
    size_t snapshots;        /* shard snapshot files loaded */
    size_t segments;         /* WAL segments read */
    uint64_t records;        /* WAL records replayed */
    uint64_t bytes;          /* WAL bytes read */
    uint64_t truncated_bytes; /* torn tail (or, with accept_data_loss, more) cut off */
    uint64_t lost_records;   /* accept_data_loss: LSNs of gaps in the WAL started without */
    size_t lost_snapshot_files; /* accept_data_loss: snapshot files started without */
    uint64_t next_lsn;       /* the LSN the WAL continues from */
    /* Set by the snapshot load for the replay (write/snapshot_load.h): the
     * WAL must hold every record from wal_from (0: not known) through
     * wal_through. */
    uint64_t wal_from, wal_through;
    double snapshot_seconds, replay_seconds;
} vd_recovery_report;

/* Replays the WAL segments of wal_dir into db. */
int vd_recover_wal(vd_database *db, vd_vfs *vfs, const char *wal_dir, bool accept_data_loss,
                   vd_recovery_report *rep, vd_errmsg *em);

#endif

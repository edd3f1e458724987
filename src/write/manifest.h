/*
 * manifest.h — what the last checkpoint left: snapshots/manifest.snap.
 *
 * Written at the end of every checkpoint, after its snapshot files and
 * before any file or WAL segment it makes unnecessary is removed, so it
 * always describes files that are on disk. It lists each snapshot file (its
 * size, the CRC in its trailer, the LSN in its header), each collection with
 * its shard count, the LSN the snapshots cover and the last LSN the WAL had
 * assigned. Recovery (write/checkpoint.c, write/recovery.c) holds the data
 * directory to it: a listed file or folder that is missing, older than
 * listed, or unreadable, a WAL that starts after the covered LSN or ends
 * before the listed end, refuses the start (unless accept_data_loss).
 *
 * A listed file that differs but is a valid snapshot at least as new as
 * listed is accepted: a checkpoint cut short after writing it, before its
 * manifest (the WAL it would have removed is still there). A collection
 * folder that is not listed is loaded as before: created since.
 *
 * Byte layout: the table at the top of src/storage/snapshot.c (kind 4).
 */
#ifndef VD_MANIFEST_H
#define VD_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vectord/error.h"
#include "db/collection.h"
#include "vectord/vfs.h"

#define VD_MANIFEST_PATH_MAX 64

typedef struct vd_manifest_file {
    char path[VD_MANIFEST_PATH_MAX]; /* relative to snapshots/ */
    uint64_t size, lsn;
    uint32_t crc;
    bool seen; /* recovery: found and checked */
} vd_manifest_file;

typedef struct vd_manifest_collection {
    uint64_t incarnation;
    uint32_t n_shards;
    char name[VD_NAME_MAX_LEN + 1];
    bool seen;
} vd_manifest_collection;

typedef struct vd_manifest {
    bool present; /* false: none on disk (a new or an older data directory) */
    uint64_t covered_lsn;
    uint64_t wal_end;
    vd_manifest_collection *colls;
    size_t n_colls;
    vd_manifest_file *files;
    size_t n_files;
} vd_manifest;

/* Lists what is on disk under snap_root for the collections given (those
 * without a snapshot folder yet are left out; one whose folder lacks a file
 * it should have fails) and feeds.snap, then writes the manifest atomically. */
int vd_manifest_write(vd_vfs *vfs, const char *snap_root, const vd_manifest_collection *colls,
                      size_t n_colls, uint64_t covered_lsn, uint64_t wal_end, vd_errmsg *em);

/* Reads snap_root/manifest.snap into m (m->present false when absent). */
int vd_manifest_read(vd_vfs *vfs, const char *snap_root, vd_manifest *m, vd_errmsg *em);
void vd_manifest_free(vd_manifest *m);
/* The body of a manifest file: 0, -1 (malformed) or -ENOMEM; free m after. */
int vd_manifest_parse(const uint8_t *body, size_t len, vd_manifest *m);

/* The entries of a path relative to snapshots/ or of an incarnation; NULL
 * when not listed. */
vd_manifest_file *vd_manifest_file_of(vd_manifest *m, const char *rel);
vd_manifest_collection *vd_manifest_collection_of(vd_manifest *m, uint64_t incarnation);

/* Checks a loaded file (size, stored CRC, header LSN) against its entry,
 * marking it seen: 0 when the same or at least as new (its own checksum was
 * checked by the caller), else VD_E_INVALID_REQUEST with em saying what
 * differs (an older copy). An unlisted file passes. */
int vd_manifest_check(vd_manifest *m, const char *rel, uint64_t size, uint32_t crc,
                      uint64_t lsn, vd_errmsg *em);

#endif

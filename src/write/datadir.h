/*
 * datadir.h — the data directory: the one place its layout is named.
 *
 *   LOCK                               flock'ed by the server that uses the
 *                                      directory: two never share one
 *   wal/wal-<first LSN, 16 hex>.log    WAL segments (layout: storage/wal_format.c)
 *   snapshots/c<incarnation, 16 hex>/  one collection (the incarnation is the
 *                                      LSN of its create record, so a dropped
 *                                      and re-created name never shares one)
 *       collection.snap                its settings and payload indexes (write/checkpoint.c)
 *       shard-<i>.snap                 shard i's points, vectors and index
 *                                      (db/shard_image.c; container: storage/snapshot.c)
 *   snapshots/feeds.snap               how far each Postgres feed has got
 *   snapshots/manifest.snap            what the last checkpoint left: every file
 *                                      above with its size, CRC and LSN, the
 *                                      covered LSN, the WAL's end (write/manifest.h)
 *   vectors/                           float32 originals kept on disk by quantized
 *                                      collections (unnamed files: db/vecstore.c)
 *
 * Snapshot files are written to a temporary name and renamed into place
 * (storage/snapshot.c); nothing else in the directory belongs to vectord.
 */
#ifndef VD_DATADIR_H
#define VD_DATADIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vectord/error.h"

#define VD_DATADIR_LOCK "LOCK"
#define VD_DATADIR_WAL "wal"
#define VD_DATADIR_SNAPSHOTS "snapshots"
#define VD_DATADIR_VECTORS "vectors"
#define VD_DATADIR_COLLECTION_FILE "collection.snap"
#define VD_DATADIR_FEEDS_FILE "feeds.snap"
#define VD_DATADIR_MANIFEST_FILE "manifest.snap"

/* Creates dir (and its parents) and takes an exclusive lock on dir/LOCK.
 * The lock's file descriptor (keep it open while serving), or -errno with em
 * saying why (a second server on the same directory among them). */
int vd_datadir_lock(const char *dir, vd_errmsg *em);
/* dir/part into out. */
void vd_datadir_path(char *out, size_t cap, const char *dir, const char *part);
/* A collection's snapshot folder: snap_root/c<incarnation, 16 hex>. */
void vd_datadir_collection(char *out, size_t cap, const char *snap_root, uint64_t incarnation);
/* The incarnation of a collection folder's name ("c" + 16 hex); false when
 * name is not one. */
bool vd_datadir_parse_collection(const char *name, uint64_t *incarnation);
/* The file of shard i in a collection's snapshot folder: "shard-<i>.snap". */
void vd_datadir_shard_file(char *out, size_t cap, uint32_t shard);

#endif

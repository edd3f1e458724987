/*
 * graveyard.h — what a shard remembers of deleted points: the version each
 * had, so that a write replayed out of order after a delete stays ignored,
 * as it would have been before it (a delete of a v10 point, then a stale v3
 * upsert, must not bring the point back).
 *
 * Bounded: a shard keeps the last VD_GRAVEYARD_CAP deletes of points that
 * had a version (unversioned points need none); an older record is dropped
 * first. That is the horizon: a stale write arriving after more deletes than
 * that in its shard is applied. A write that brings a point back (newer
 * version, or none) removes its record. Kept in the shard's snapshot
 * (db/shard_image.c) and rebuilt by WAL replay. The shard's lock guards it.
 */
#ifndef VD_GRAVEYARD_H
#define VD_GRAVEYARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/idmap.h"
#include "util/bytes.h"
#include "util/strbuf.h"
#include "vectord/types.h"

#define VD_GRAVEYARD_CAP 32768

typedef struct vd_grave {
    vd_point_id id; /* id.str owned; kind 0: a record forgotten since */
    uint64_t hash;  /* the shard's hash of id */
    uint64_t version;
} vd_grave;

typedef struct vd_graveyard {
    vd_idmap map;   /* id → index into ring */
    vd_grave *ring; /* VD_GRAVEYARD_CAP records, oldest at head */
    size_t head, n;
    size_t id_bytes;
} vd_graveyard;

void vd_graveyard_init(vd_graveyard *g);
void vd_graveyard_destroy(vd_graveyard *g);
/* Records that id (hash: the shard's id hash) was deleted at version. 0 or -ENOMEM. */
int vd_graveyard_bury(vd_graveyard *g, const vd_point_id *id, uint64_t hash, uint64_t version);
/* The version id was deleted at, if a record of it is kept. */
bool vd_graveyard_find(const vd_graveyard *g, const vd_point_id *id, uint64_t hash,
                       uint64_t *version);
/* The point is back: its record goes. */
void vd_graveyard_forget(vd_graveyard *g, const vd_point_id *id, uint64_t hash);
size_t vd_graveyard_bytes(const vd_graveyard *g);

/* The snapshot section (layout: src/storage/snapshot.c, kind 2):
 * u32 n, n × (id as in a slot record, u64 version), oldest first. */
void vd_graveyard_save(const vd_graveyard *g, vd_strbuf *out);
/* Loads a section into an empty graveyard; hash_of gives each id's hash.
 * 0, -EINVAL (malformed) or -ENOMEM. */
int vd_graveyard_load(vd_graveyard *g, vd_reader *r,
                      uint64_t (*hash_of)(const void *ctx, const vd_point_id *id), const void *ctx);

#endif

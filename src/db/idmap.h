/*
 * idmap.h — point id → slot hash table of one shard.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones). Entries hold the id's 64-bit hash and its slot; the id bytes
 * themselves live in the shard's slot metadata and are reached through the
 * id_of callback, so the table stores 16 bytes per entry. Not thread-safe:
 * the owning shard's lock guards it.
 */
#ifndef VD_IDMAP_H
#define VD_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vectord/types.h"

typedef const vd_point_id *(*vd_idmap_id_cb)(void *ctx, uint32_t slot);

typedef struct vd_idmap_entry {
    uint64_t hash;
    uint32_t slot; /* UINT32_MAX = empty */
} vd_idmap_entry;

typedef struct vd_idmap {
    vd_idmap_entry *entries;
    size_t cap; /* power of two, or 0 */
    size_t n;
    vd_idmap_id_cb id_of;
    void *ctx;
} vd_idmap;

void vd_idmap_init(vd_idmap *m, vd_idmap_id_cb id_of, void *ctx);
void vd_idmap_destroy(vd_idmap *m);
/* True and *slot set if id is present. */
bool vd_idmap_find(const vd_idmap *m, const vd_point_id *id, uint64_t hash, uint32_t *slot);
/* Adds a mapping for an id known to be absent. 0 or -ENOMEM. */
int vd_idmap_insert(vd_idmap *m, uint64_t hash, uint32_t slot);
/* Removes the mapping of id if present; returns whether it was. */
bool vd_idmap_remove(vd_idmap *m, const vd_point_id *id, uint64_t hash);
size_t vd_idmap_bytes(const vd_idmap *m);

#endif

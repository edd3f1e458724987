/*
 * tenant_block.h — one tenant's points side by side: the sq8 codes
 * (vectord/quant.h) of the points a tenant index (payload_index.h, type
 * "tenant") holds under one value, in one array, with the slot of each.
 *
 * A search filtered to one tenant then reads its codes as one sequential run
 * (1.5 KB a point at 1536-d, a quarter of the float32 vectors, and none of
 * the other tenants' points between them) instead of gathering its vectors
 * from all over the shard, and re-ranks the best of them with the originals
 * (db/shard_search.c).
 *
 * Order is insertion order; a removal moves the block's last entry into the
 * hole, so both are O(1) (a point's position is kept in a map by slot that
 * the blocks of one index share). Not thread-safe: guarded by the shard's lock.
 */
#ifndef VD_TENANT_BLOCK_H
#define VD_TENANT_BLOCK_H

#include <stddef.h>
#include <stdint.h>

typedef struct vd_tenant_block {
    uint8_t *codes;  /* n × code_size bytes */
    uint32_t *slots; /* n: the slot of each code */
    uint32_t n, cap;
} vd_tenant_block;

/* Where each slot sits in its block (one map for all blocks of an index). */
typedef struct vd_tenant_pos {
    uint32_t *at; /* cap entries */
    size_t cap;
} vd_tenant_pos;

/* Bytes of one code for dim dimensions (sq8). */
size_t vd_tenant_code_size(uint32_t dim);
/* Appends slot with x's code (dim floats). 0 or -ENOMEM. */
int vd_tenant_block_add(vd_tenant_block *b, vd_tenant_pos *pos, uint32_t slot, const float *x,
                        uint32_t dim);
/* Takes slot out of b, if it is there. */
void vd_tenant_block_remove(vd_tenant_block *b, vd_tenant_pos *pos, uint32_t slot, uint32_t dim);
void vd_tenant_block_free(vd_tenant_block *b);
/* Bytes b holds (its capacity). */
size_t vd_tenant_block_bytes(const vd_tenant_block *b, uint32_t dim);
void vd_tenant_pos_free(vd_tenant_pos *pos);

#endif

/* tenant_block.c — see tenant_block.h. */
#include "db/tenant_block.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vectord/quant.h"

size_t vd_tenant_code_size(uint32_t dim) { return vd_quant_code_size(VD_QUANT_SQ8, dim); }

static int pos_reserve(vd_tenant_pos *pos, uint32_t slot)
{
    if (slot < pos->cap)
        return 0;
    size_t cap = pos->cap ? pos->cap : 1024;
    while (cap <= slot)
        cap *= 2;
    uint32_t *at = realloc(pos->at, cap * sizeof *at);
    if (!at)
        return -ENOMEM;
    pos->at = at;
    pos->cap = cap;
    return 0;
}

static int block_reserve(vd_tenant_block *b, size_t code_size)
{
    if (b->n < b->cap)
        return 0;
    uint32_t cap = b->cap ? b->cap * 2 : 16;
    uint8_t *codes = realloc(b->codes, (size_t)cap * code_size);
    if (!codes)
        return -ENOMEM;
    b->codes = codes;
    uint32_t *slots = realloc(b->slots, (size_t)cap * sizeof *slots);
    if (!slots)
        return -ENOMEM;
    b->slots = slots;
    b->cap = cap;
    return 0;
}

int vd_tenant_block_add(vd_tenant_block *b, vd_tenant_pos *pos, uint32_t slot, const float *x,
                        uint32_t dim)
{
    size_t cs = vd_tenant_code_size(dim);
    int rc = pos_reserve(pos, slot);
    if (!rc)
        rc = block_reserve(b, cs);
    if (rc)
        return rc;
    vd_quant_encode(VD_QUANT_SQ8, x, dim, b->codes + (size_t)b->n * cs);
    b->slots[b->n] = slot;
    pos->at[slot] = b->n++;
    return 0;
}

void vd_tenant_block_remove(vd_tenant_block *b, vd_tenant_pos *pos, uint32_t slot, uint32_t dim)
{
    if (slot >= pos->cap)
        return;
    uint32_t i = pos->at[slot];
    if (i >= b->n || b->slots[i] != slot)
        return; /* not in this block (an add that failed half-way) */
    uint32_t last = --b->n;
    if (i != last) {
        size_t cs = vd_tenant_code_size(dim);
        memcpy(b->codes + (size_t)i * cs, b->codes + (size_t)last * cs, cs);
        b->slots[i] = b->slots[last];
        pos->at[b->slots[i]] = i;
    }
    if (b->n == 0) {
        vd_tenant_block_free(b);
    }
}

void vd_tenant_block_free(vd_tenant_block *b)
{
    free(b->codes);
    free(b->slots);
    *b = (vd_tenant_block){0};
}

size_t vd_tenant_block_bytes(const vd_tenant_block *b, uint32_t dim)
{
    return (size_t)b->cap * (vd_tenant_code_size(dim) + sizeof *b->slots);
}

void vd_tenant_pos_free(vd_tenant_pos *pos)
{
    free(pos->at);
    *pos = (vd_tenant_pos){0};
}

/* graveyard.c — see graveyard.h. */
#include "db/graveyard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const vd_point_id *grave_id(void *ctx, uint32_t i)
{
    return &((vd_graveyard *)ctx)->ring[i].id;
}

void vd_graveyard_init(vd_graveyard *g)
{
    *g = (vd_graveyard){0};
    vd_idmap_init(&g->map, grave_id, g);
}

static void drop_id(vd_graveyard *g, vd_grave *r)
{
    if (r->id.kind == VD_ID_STR) {
        g->id_bytes -= r->id.len;
        free((char *)r->id.str);
    }
    r->id = (vd_point_id){0};
}

void vd_graveyard_destroy(vd_graveyard *g)
{
    for (size_t k = 0; k < g->n && g->ring; k++)
        drop_id(g, &g->ring[(g->head + k) % VD_GRAVEYARD_CAP]);
    free(g->ring);
    vd_idmap_destroy(&g->map);
    vd_graveyard_init(g);
}

bool vd_graveyard_find(const vd_graveyard *g, const vd_point_id *id, uint64_t hash,
                       uint64_t *version)
{
    uint32_t i;
    if (!g->n || !vd_idmap_find(&g->map, id, hash, &i))
        return false;
    *version = g->ring[i].version;
    return true;
}

void vd_graveyard_forget(vd_graveyard *g, const vd_point_id *id, uint64_t hash)
{
    uint32_t i;
    if (!g->n || !vd_idmap_find(&g->map, id, hash, &i))
        return;
    vd_idmap_remove(&g->map, id, hash);
    /* The ring keeps its order: the record stays as an empty one, reused in turn. */
    drop_id(g, &g->ring[i]);
}

/* Drops the oldest record (an empty one if forgotten). */
static void evict_oldest(vd_graveyard *g)
{
    vd_grave *r = &g->ring[g->head];
    if (r->id.kind)
        vd_idmap_remove(&g->map, &r->id, r->hash);
    drop_id(g, r);
    g->head = (g->head + 1) % VD_GRAVEYARD_CAP;
    g->n--;
}

int vd_graveyard_bury(vd_graveyard *g, const vd_point_id *id, uint64_t hash, uint64_t version)
{
    if (!g->ring && !(g->ring = calloc(VD_GRAVEYARD_CAP, sizeof *g->ring)))
        return -ENOMEM;
    vd_graveyard_forget(g, id, hash); /* one record per id: the newest */
    if (g->n == VD_GRAVEYARD_CAP)
        evict_oldest(g);
    size_t i = (g->head + g->n) % VD_GRAVEYARD_CAP;
    vd_grave *r = &g->ring[i];
    *r = (vd_grave){.id = *id, .hash = hash, .version = version};
    if (id->kind == VD_ID_STR) {
        char *copy = malloc(id->len + 1u);
        if (!copy) {
            r->id = (vd_point_id){0};
            return -ENOMEM;
        }
        memcpy(copy, id->str, id->len);
        copy[id->len] = 0;
        r->id.str = copy;
        g->id_bytes += id->len;
    }
    if (vd_idmap_insert(&g->map, hash, (uint32_t)i) != 0) {
        drop_id(g, r);
        return -ENOMEM;
    }
    g->n++;
    return 0;
}

size_t vd_graveyard_bytes(const vd_graveyard *g)
{
    return (g->ring ? VD_GRAVEYARD_CAP * sizeof *g->ring : 0) + vd_idmap_bytes(&g->map) +
           g->id_bytes;
}

void vd_graveyard_save(const vd_graveyard *g, vd_strbuf *out)
{
    uint32_t live = 0;
    for (size_t k = 0; k < g->n; k++)
        live += g->ring[(g->head + k) % VD_GRAVEYARD_CAP].id.kind != 0;
    vd_put_u32(out, live);
    for (size_t k = 0; k < g->n; k++) {
        const vd_grave *r = &g->ring[(g->head + k) % VD_GRAVEYARD_CAP];
        if (!r->id.kind)
            continue;
        vd_put_u8(out, (uint8_t)r->id.kind);
        if (r->id.kind == VD_ID_INT) {
            vd_put_u64(out, r->id.num);
        } else {
            vd_put_u16(out, (uint16_t)r->id.len);
            vd_put_bytes(out, r->id.str, r->id.len);
        }
        vd_put_u64(out, r->version);
    }
}

int vd_graveyard_load(vd_graveyard *g, vd_reader *r,
                      uint64_t (*hash_of)(const void *ctx, const vd_point_id *id), const void *ctx)
{
    uint32_t n = vd_get_u32(r);
    if (r->bad || n > VD_GRAVEYARD_CAP)
        return -EINVAL;
    for (uint32_t k = 0; k < n; k++) {
        vd_point_id id = {.kind = vd_get_u8(r)};
        char buf[VD_ID_MAX_LEN + 1];
        if (id.kind == VD_ID_INT) {
            id.num = vd_get_u64(r);
            if (id.num > VD_ID_MAX_INT)
                return -EINVAL;
        } else if (id.kind == VD_ID_STR) {
            id.len = vd_get_u16(r);
            if (id.len == 0 || id.len > VD_ID_MAX_LEN)
                return -EINVAL;
            vd_get_copy(r, buf, id.len);
            buf[id.len] = 0;
            id.str = buf;
        } else {
            return -EINVAL;
        }
        uint64_t version = vd_get_u64(r);
        uint64_t seen;
        if (r->bad || vd_graveyard_find(g, &id, hash_of(ctx, &id), &seen))
            return -EINVAL; /* one record per id */
        int rc = vd_graveyard_bury(g, &id, hash_of(ctx, &id), version);
        if (rc)
            return rc;
    }
    return 0;
}

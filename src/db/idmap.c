/* idmap.c — see idmap.h. Load factor is kept at or below 1/2. */
#include "db/idmap.h"

#include <errno.h>
#include <stdlib.h>

#define EMPTY UINT32_MAX

/* The shard router uses hash % n_shards, so all ids of one shard share those
 * low bits; the table indexes by the high bits instead. */
static inline size_t home(uint64_t hash, size_t cap) { return (size_t)(hash >> 20) & (cap - 1); }

void vd_idmap_init(vd_idmap *m, vd_idmap_id_cb id_of, void *ctx)
{
    *m = (vd_idmap){.id_of = id_of, .ctx = ctx};
}

void vd_idmap_destroy(vd_idmap *m)
{
    free(m->entries);
    m->entries = NULL;
    m->cap = m->n = 0;
}

bool vd_idmap_find(const vd_idmap *m, const vd_point_id *id, uint64_t hash, uint32_t *slot)
{
    if (!m->cap)
        return false;
    for (size_t i = home(hash, m->cap);; i = (i + 1) & (m->cap - 1)) {
        const vd_idmap_entry *e = &m->entries[i];
        if (e->slot == EMPTY)
            return false;
        if (e->hash == hash && vd_id_equal(m->id_of(m->ctx, e->slot), id)) {
            *slot = e->slot;
            return true;
        }
    }
}

static void place(vd_idmap_entry *entries, size_t cap, uint64_t hash, uint32_t slot)
{
    size_t i = home(hash, cap);
    while (entries[i].slot != EMPTY)
        i = (i + 1) & (cap - 1);
    entries[i] = (vd_idmap_entry){hash, slot};
}

static int grow(vd_idmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    vd_idmap_entry *e = malloc(cap * sizeof *e);
    if (!e)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++)
        e[i].slot = EMPTY;
    for (size_t i = 0; i < m->cap; i++)
        if (m->entries[i].slot != EMPTY)
            place(e, cap, m->entries[i].hash, m->entries[i].slot);
    free(m->entries);
    m->entries = e;
    m->cap = cap;
    return 0;
}

int vd_idmap_insert(vd_idmap *m, uint64_t hash, uint32_t slot)
{
    if ((m->n + 1) * 2 > m->cap) {
        int rc = grow(m);
        if (rc)
            return rc;
    }
    place(m->entries, m->cap, hash, slot);
    m->n++;
    return 0;
}

bool vd_idmap_remove(vd_idmap *m, const vd_point_id *id, uint64_t hash)
{
    if (!m->cap)
        return false;
    size_t mask = m->cap - 1, i = home(hash, m->cap);
    for (;; i = (i + 1) & mask) {
        vd_idmap_entry *e = &m->entries[i];
        if (e->slot == EMPTY)
            return false;
        if (e->hash == hash && vd_id_equal(m->id_of(m->ctx, e->slot), id))
            break;
    }
    /* Backward shift: pull later members of the probe run into the hole when
     * the hole lies between their home and their current position. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        vd_idmap_entry *e = &m->entries[j];
        if (e->slot == EMPTY)
            break;
        size_t h = home(e->hash, m->cap);
        bool movable = (j > hole) ? (h <= hole || h > j) : (h <= hole && h > j);
        if (movable) {
            m->entries[hole] = *e;
            hole = j;
        }
    }
    m->entries[hole].slot = EMPTY;
    m->n--;
    return true;
}

size_t vd_idmap_bytes(const vd_idmap *m) { return m->cap * sizeof(vd_idmap_entry); }

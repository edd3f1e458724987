/* payload_index.c — see payload_index.h. */
#include "db/payload_index.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/bitset.h"

#define KEY_CAP 512 /* longer keyword values are not indexed; filters fall back to the payload */

struct vd_kw_entry {
    vd_kw_entry *next;
    uint64_t hash;
    vd_posting posting;
    vd_tenant_block block; /* tenant: the codes of the points holding only this value */
    char key[]; /* NUL-terminated */
};

const char *vd_pindex_type_name(vd_pindex_type t)
{
    return t == VD_PINDEX_KEYWORD    ? "keyword"
           : t == VD_PINDEX_TENANT   ? "tenant"
           : t == VD_PINDEX_NUMERIC  ? "numeric"
           : t == VD_PINDEX_DATETIME ? "datetime"
                                     : "unknown";
}

int vd_pindex_type_parse(const char *name, vd_pindex_type *out)
{
    if (strcmp(name, "keyword") == 0)
        *out = VD_PINDEX_KEYWORD;
    else if (strcmp(name, "numeric") == 0 || strcmp(name, "integer") == 0 ||
             strcmp(name, "float") == 0)
        *out = VD_PINDEX_NUMERIC;
    else if (strcmp(name, "datetime") == 0)
        *out = VD_PINDEX_DATETIME;
    else if (strcmp(name, "tenant") == 0)
        *out = VD_PINDEX_TENANT;
    else
        return -1;
    return 0;
}

static uint64_t str_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

int vd_pindex_create(vd_pindex **out, const char *field, vd_pindex_type type, uint32_t dim)
{
    if (type == VD_PINDEX_TENANT && dim == 0)
        return -EINVAL;
    vd_pindex *idx = calloc(1, sizeof *idx);
    if (!idx)
        return -ENOMEM;
    idx->type = type;
    idx->dim = dim;
    idx->field = strdup(field);
    if (!idx->field || vd_key_path_parse(&idx->path, field) != 0) {
        vd_pindex_destroy(idx);
        return -EINVAL;
    }
    *out = idx;
    return 0;
}

void vd_pindex_destroy(vd_pindex *idx)
{
    if (!idx)
        return;
    for (size_t b = 0; b < idx->n_buckets; b++) {
        vd_kw_entry *e = idx->buckets[b];
        while (e) {
            vd_kw_entry *next = e->next;
            free(e->posting.slots);
            vd_tenant_block_free(&e->block);
            free(e);
            e = next;
        }
    }
    free(idx->buckets);
    free(idx->values);
    free(idx->multi);
    vd_tenant_block_free(&idx->loose);
    vd_tenant_pos_free(&idx->tenant_pos);
    vd_key_path_free(&idx->path);
    free(idx->field);
    free(idx);
}

static vd_kw_entry **find_entry(const vd_pindex *idx, const char *key, uint64_t h)
{
    if (!idx->n_buckets)
        return NULL;
    vd_kw_entry **pp = &idx->buckets[h & (idx->n_buckets - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

/* key's entry, or NULL. */
static vd_kw_entry *entry_of(const vd_pindex *idx, const char *key)
{
    vd_kw_entry **pp = find_entry(idx, key, str_hash(key));
    return pp ? *pp : NULL;
}

const vd_posting *vd_pindex_lookup(const vd_pindex *idx, const char *key)
{
    vd_kw_entry *e = entry_of(idx, key);
    return e ? &e->posting : NULL;
}

const vd_tenant_block *vd_pindex_tenant_block(const vd_pindex *idx, const char *key)
{
    vd_kw_entry *e = entry_of(idx, key);
    return e && e->block.n ? &e->block : NULL;
}

static int rehash(vd_pindex *idx)
{
    size_t nb = idx->n_buckets ? idx->n_buckets * 2 : 64;
    vd_kw_entry **b = calloc(nb, sizeof *b);
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < idx->n_buckets; i++) {
        vd_kw_entry *e = idx->buckets[i];
        while (e) {
            vd_kw_entry *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(idx->buckets);
    idx->buckets = b;
    idx->n_buckets = nb;
    return 0;
}

/* Position of the first element >= slot. */
static uint32_t lower_bound(const vd_posting *p, uint32_t slot)
{
    uint32_t lo = 0, hi = p->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (p->slots[mid] < slot)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Adds slot to key's posting; *entry (may be NULL) is key's entry. */
static int keyword_add(vd_pindex *idx, const char *key, uint32_t slot, vd_kw_entry **entry)
{
    uint64_t h = str_hash(key);
    vd_kw_entry **pp = find_entry(idx, key, h);
    if (!pp || !*pp) {
        if (idx->n_keys + 1 > idx->n_buckets) {
            int rc = rehash(idx);
            if (rc)
                return rc;
        }
        pp = find_entry(idx, key, h);
        size_t len = strlen(key);
        vd_kw_entry *e = calloc(1, sizeof *e + len + 1);
        if (!e)
            return -ENOMEM;
        e->hash = h;
        memcpy(e->key, key, len + 1);
        *pp = e;
        idx->n_keys++;
        idx->posting_bytes += sizeof *e + len + 1;
    }
    if (entry)
        *entry = *pp;
    vd_posting *p = &(*pp)->posting;
    uint32_t pos = lower_bound(p, slot);
    if (pos < p->n && p->slots[pos] == slot)
        return 0; /* the same value twice in one array */
    if (p->n == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 4;
        uint32_t *s = realloc(p->slots, cap * sizeof *s);
        if (!s)
            return -ENOMEM;
        idx->posting_bytes += (cap - p->cap) * sizeof *s;
        p->slots = s;
        p->cap = cap;
    }
    memmove(p->slots + pos + 1, p->slots + pos, (p->n - pos) * sizeof *p->slots);
    p->slots[pos] = slot;
    p->n++;
    return 0;
}

/* Tenant blocks: the bytes they hold are kept in idx->tenant_bytes. */
static int block_add(vd_pindex *idx, vd_tenant_block *b, uint32_t slot, const float *x)
{
    size_t before = vd_tenant_block_bytes(b, idx->dim);
    int rc = vd_tenant_block_add(b, &idx->tenant_pos, slot, x, idx->dim);
    idx->tenant_bytes += vd_tenant_block_bytes(b, idx->dim) - before;
    return rc;
}

static void block_remove(vd_pindex *idx, vd_tenant_block *b, uint32_t slot)
{
    size_t before = vd_tenant_block_bytes(b, idx->dim);
    vd_tenant_block_remove(b, &idx->tenant_pos, slot, idx->dim);
    idx->tenant_bytes -= before - vd_tenant_block_bytes(b, idx->dim);
}

/* Removes slot from key's posting (and, given in_block, from key's tenant
 * block first: an emptied entry goes). */
static void keyword_remove(vd_pindex *idx, const char *key, uint32_t slot, bool in_block)
{
    vd_kw_entry **pp = find_entry(idx, key, str_hash(key));
    if (!pp || !*pp)
        return;
    if (in_block)
        block_remove(idx, &(*pp)->block, slot);
    vd_posting *p = &(*pp)->posting;
    uint32_t pos = lower_bound(p, slot);
    if (pos >= p->n || p->slots[pos] != slot)
        return;
    memmove(p->slots + pos, p->slots + pos + 1, (p->n - pos - 1) * sizeof *p->slots);
    if (--p->n == 0) {
        vd_kw_entry *e = *pp;
        *pp = e->next;
        idx->posting_bytes -= sizeof *e + strlen(e->key) + 1 + p->cap * sizeof *p->slots;
        free(p->slots);
        idx->tenant_bytes -= vd_tenant_block_bytes(&e->block, idx->dim);
        vd_tenant_block_free(&e->block);
        free(e);
        idx->n_keys--;
    }
}

static int numeric_reserve(vd_pindex *idx, uint32_t slot)
{
    if (slot < idx->values_cap)
        return 0;
    size_t cap = idx->values_cap ? idx->values_cap : 1024;
    while (cap <= slot)
        cap *= 2;
    double *v = realloc(idx->values, cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    idx->values = v;
    uint64_t *m = realloc(idx->multi, vd_bitset_words(cap) * sizeof *m);
    if (!m)
        return -ENOMEM;
    idx->multi = m;
    for (size_t i = idx->values_cap; i < cap; i++)
        v[i] = NAN;
    size_t old_words = vd_bitset_words(idx->values_cap);
    memset(m + old_words, 0, (vd_bitset_words(cap) - old_words) * sizeof *m);
    idx->values_cap = cap;
    return 0;
}

/* Applies add (true) or remove (false) for every indexable value at the
 * field; a tenant index places the slot's code (from vector) in its value's
 * block, or in `loose` for an array. */
static int apply(vd_pindex *idx, uint32_t slot, const cJSON *payload, const float *vector, bool add)
{
    const cJSON *v = payload ? vd_payload_get(payload, &idx->path) : NULL;
    if (!v)
        return 0;
    if (idx->type == VD_PINDEX_NUMERIC || idx->type == VD_PINDEX_DATETIME) {
        if (add) {
            int rc = numeric_reserve(idx, slot);
            if (rc)
                return rc;
        } else if (slot >= idx->values_cap) {
            return 0;
        }
        if (cJSON_IsArray(v)) {
            idx->values[slot] = NAN;
            add ? vd_bit_set(idx->multi, slot) : vd_bit_clear(idx->multi, slot);
        } else {
            double x = NAN; /* absent: no value, or one of another kind (the parser writes only on success) */
            if (add && idx->type == VD_PINDEX_NUMERIC && cJSON_IsNumber(v))
                x = v->valuedouble;
            else if (add && idx->type == VD_PINDEX_DATETIME && cJSON_IsString(v))
                (void)vd_datetime_parse(v->valuestring, &x);
            idx->values[slot] = x;
        }
        return 0;
    }
    bool tenant = idx->type == VD_PINDEX_TENANT, array = cJSON_IsArray(v);
    if (tenant && array) {
        if (!add)
            block_remove(idx, &idx->loose, slot);
        else if (v->child) {
            int rc = block_add(idx, &idx->loose, slot, vector);
            if (rc)
                return rc;
        }
    }
    char key[KEY_CAP];
    const cJSON *item = array ? v->child : v;
    for (; item; item = array ? item->next : NULL) {
        if (!vd_keyword_key(item, key, sizeof key))
            continue;
        if (add) {
            vd_kw_entry *e = NULL;
            int rc = keyword_add(idx, key, slot, &e);
            if (!rc && tenant && !array)
                rc = block_add(idx, &e->block, slot, vector);
            if (rc)
                return rc;
        } else {
            keyword_remove(idx, key, slot, tenant && !array);
        }
    }
    return 0;
}

int vd_pindex_add(vd_pindex *idx, uint32_t slot, const cJSON *payload, const float *vector)
{
    if (idx->type == VD_PINDEX_TENANT && !vector)
        return -EINVAL;
    int rc = apply(idx, slot, payload, vector, true);
    if (rc)
        apply(idx, slot, payload, NULL, false); /* leave no partial entries behind */
    return rc;
}

void vd_pindex_remove(vd_pindex *idx, uint32_t slot, const cJSON *payload)
{
    apply(idx, slot, payload, NULL, false);
}

size_t vd_pindex_bytes(const vd_pindex *idx)
{
    return sizeof *idx + idx->n_buckets * sizeof(void *) + idx->posting_bytes +
           idx->values_cap * sizeof(double) + vd_bitset_words(idx->values_cap) * 8 +
           idx->tenant_bytes + idx->tenant_pos.cap * sizeof *idx->tenant_pos.at;
}

/*
 * shard_image.c — a shard's snapshot image: vd_shard_save and vd_shard_load.
 * The byte layout is the table at the top of src/storage/snapshot.c.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db/shard_internal.h"
#include "util/bytes.h"
#include "vectord/snapshot.h"

/* Points the graph does not hold yet (the backlog, shard_build.c) are saved
 * as points, and a load queues them again. Older files may hold points that
 * are not alive (an upsert between its stage and its finish, when the stage
 * did not make them alive): they are inserted at load.
 *
 * The save never takes the write lock, so searches go on throughout. It
 * copies the slot metadata (ids, versions, payload JSON), the bitsets, the
 * free list and the index image under the read lock, which keeps writes out,
 * with build_lock held, which keeps the builder's inserts out (the other
 * upkeep that changes an index under the read lock, repair, the index holds
 * off itself). The vectors, the bulk of the image, are streamed afterwards
 * in chunks, each copied under a short hold of the read lock, so writes go on
 * during the file write too. That is sound because, while n_saving is set,
 * no slot the image covers has its vector rewritten (shard_write.c: no
 * free-slot reuse, updates move to a new slot): every slot below the image's
 * n_slots still holds the vector it had when the metadata was copied. */

/* Bytes of originals copied per hold of the read lock. */
#define VD_SAVE_CHUNK_BYTES (1u << 20)

/* Copies slot metadata, bitsets and the free list into out, and the index
 * image into index_img (read lock and build_lock held). */
static int save_meta(const vd_shard *s, vd_strbuf *out, vd_strbuf *index_img)
{
    size_t nw = vd_bitset_words(s->n_slots);
    vd_put_u32(out, s->dim);
    vd_put_u8(out, (uint8_t)s->metric);
    vd_put_u32(out, s->n_slots);
    vd_put_bytes(out, s->alive, nw * 8);
    vd_put_bytes(out, s->dead, nw * 8);
    vd_put_u32(out, s->n_free);
    vd_put_bytes(out, s->free_slots, (size_t)s->n_free * 4);
    int rc = 0;
    for (uint32_t i = 0; i < s->n_slots && !rc; i++) {
        const slot_meta *m = &s->meta[i];
        vd_put_u8(out, (uint8_t)m->id.kind);
        if (m->id.kind == 0)
            continue;
        if (m->id.kind == VD_ID_INT) {
            vd_put_u64(out, m->id.num);
        } else {
            vd_put_u16(out, (uint16_t)m->id.len);
            vd_put_bytes(out, m->id.str, m->id.len);
        }
        vd_put_u64(out, m->version);
        char *json = m->payload ? cJSON_PrintUnformatted(m->payload) : NULL;
        if (m->payload && !json)
            rc = -ENOMEM;
        size_t n = json ? strlen(json) : 0;
        vd_put_u32(out, (uint32_t)n);
        vd_put_bytes(out, json, n);
        free(json);
    }
    vd_put_u8(index_img, s->index->ops->save != NULL);
    if (!rc && s->index->ops->save)
        rc = s->index->ops->save(s->index, s->n_slots, index_img);
    vd_graveyard_save(&s->graves, index_img); /* after the index: older files end there */
    return rc;
}

/* Streams the vectors of slots [0, n_slots) to w, a chunk per hold of the
 * read lock. 0, -ENOMEM, or -EIO reading originals on disk. */
static int save_vectors(vd_shard *s, uint32_t n_slots, vd_snapshot_writer *w)
{
    size_t row = (size_t)s->dim * sizeof(float);
    uint32_t per = (uint32_t)(VD_SAVE_CHUNK_BYTES / row ? VD_SAVE_CHUNK_BYTES / row : 1);
    float *buf = malloc((size_t)per * row);
    int rc = buf ? 0 : -ENOMEM;
    for (uint32_t i = 0; !rc && i < n_slots; i += per) {
        uint32_t n = n_slots - i < per ? n_slots - i : per;
        pthread_rwlock_rdlock(&s->lock);
        if (s->vs.on_disk)
            rc = vd_vecstore_read(&s->vs, i, n, buf);
        else
            memcpy(buf, s->vs.ram + (size_t)i * s->dim, (size_t)n * row);
        pthread_rwlock_unlock(&s->lock);
        if (!rc)
            vd_snapshot_writer_write(w, buf, (size_t)n * row);
    }
    free(buf);
    return rc;
}

int vd_shard_save(vd_shard *s, pthread_mutex_t *unlock_when_locked, vd_strbuf *out,
                  vd_snapshot_writer *w)
{
    vd_strbuf index_img = {0};
    pthread_mutex_lock(&s->build_lock); /* waits for a build round at most */
    pthread_rwlock_rdlock(&s->lock);
    if (unlock_when_locked)
        pthread_mutex_unlock(unlock_when_locked);
    int rc = save_meta(s, out, &index_img);
    uint32_t n_slots = s->n_slots;
    atomic_fetch_add(&s->n_saving, 1); /* seen by the next writer: it takes the write lock after us */
    pthread_rwlock_unlock(&s->lock);
    pthread_mutex_unlock(&s->build_lock);

    if (!rc && (out->failed || index_img.failed))
        rc = -ENOMEM;
    if (!rc)
        vd_snapshot_writer_flush(w, out);
    if (!rc)
        rc = save_vectors(s, n_slots, w);
    if (!rc)
        vd_snapshot_writer_flush(w, &index_img);
    vd_strbuf_free(&index_img);

    atomic_fetch_sub(&s->n_saving, 1);
    return rc;
}

/* Reads the per-slot records into an empty shard (write lock held). */
/* The bits of a loaded bitset past its n_bits must be clear (nothing walks them). */
static bool tail_clear(const uint64_t *w, size_t n_bits)
{
    return n_bits % 64 == 0 || (w[n_bits / 64] >> (n_bits % 64)) == 0;
}

static bool floats_finite(const float *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return false;
    return true;
}

/* A free slot is empty, neither alive nor a tombstone, and listed once. */
static int check_free_slots(vd_shard *s)
{
    uint64_t *seen = calloc(vd_bitset_words(s->n_slots) + 1, sizeof *seen);
    if (!seen)
        return -ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; i < s->n_free && !rc; i++) {
        uint32_t slot = s->free_slots[i];
        if (vd_bit_test(seen, slot) || s->meta[slot].id.kind != 0 || vd_bit_test(s->alive, slot) ||
            vd_bit_test(s->dead, slot))
            rc = -EINVAL;
        vd_bit_set(seen, slot);
    }
    free(seen);
    return rc;
}

static int load_slots(vd_shard *s, vd_reader *r)
{
    for (uint32_t i = 0; i < s->n_slots; i++) {
        slot_meta *m = &s->meta[i];
        uint8_t kind = vd_get_u8(r);
        if (kind == 0)
            continue;
        vd_point_id id = {.kind = kind};
        if (kind == VD_ID_INT) {
            id.num = vd_get_u64(r);
            if (id.num > VD_ID_MAX_INT)
                return -EINVAL;
        } else if (kind == VD_ID_STR) {
            id.len = vd_get_u16(r);
            if (id.len == 0 || id.len > VD_ID_MAX_LEN)
                return -EINVAL;
            const uint8_t *p = vd_get_bytes(r, id.len);
            char *copy = p ? malloc(id.len + 1u) : NULL;
            if (!copy)
                return r->bad ? -EINVAL : -ENOMEM;
            memcpy(copy, p, id.len);
            copy[id.len] = 0;
            id.str = copy;
            s->id_bytes += id.len;
        } else {
            return -EINVAL;
        }
        m->id = id;
        m->version = vd_get_u64(r);
        uint32_t plen = vd_get_u32(r);
        const uint8_t *json = vd_get_bytes(r, plen);
        if (r->bad)
            return -EINVAL;
        cJSON *payload = NULL;
        if (plen && !(payload = cJSON_ParseWithLength((const char *)json, plen)))
            return -EINVAL;
        if (payload && !cJSON_IsObject(payload)) {
            cJSON_Delete(payload);
            return -EINVAL;
        }
        vd_shard_set_payload(s, i, payload);
        uint64_t h = vd_shard_id_hash(s, &m->id);
        uint32_t other;
        if (vd_idmap_find(&s->idmap, &m->id, h, &other))
            return -EINVAL; /* one id, two slots */
        int rc = vd_idmap_insert(&s->idmap, h, i);
        if (rc)
            return rc;
    }
    return 0;
}

static uint64_t shard_hash_of(const void *ctx, const vd_point_id *id)
{
    return vd_shard_id_hash(ctx, id);
}

int vd_shard_load(vd_shard *s, const uint8_t *data, size_t len, uint64_t lsn)
{
    vd_reader r = vd_reader_of(data, len);
    uint32_t dim = vd_get_u32(&r);
    vd_metric metric = (vd_metric)vd_get_u8(&r);
    uint32_t n_slots = vd_get_u32(&r);
    /* Each slot takes at least its id kind byte and its vector: bound n_slots
     * by the bytes there are before reserving room for it. */
    if (r.bad || dim != s->dim || metric != s->metric || n_slots > UINT32_MAX / 2 ||
        (uint64_t)n_slots * (1 + 4 * (uint64_t)dim) > vd_reader_left(&r))
        return -EINVAL;
    pthread_rwlock_wrlock(&s->lock);
    int rc = s->n_slots ? -EBUSY : vd_shard_reserve(s, n_slots);
    size_t nw = vd_bitset_words(n_slots);
    if (!rc) {
        s->n_slots = n_slots;
        vd_get_copy(&r, s->alive, nw * 8);
        vd_get_copy(&r, s->dead, nw * 8);
        uint32_t n_free = vd_get_u32(&r);
        if (r.bad || n_free > n_slots || !tail_clear(s->alive, n_slots) ||
            !tail_clear(s->dead, n_slots))
            rc = -EINVAL;
        if (!rc)
            rc = vd_shard_reserve_free(s, (size_t)n_free + 1);
        if (!rc) {
            vd_get_copy(&r, s->free_slots, (size_t)n_free * 4);
            s->n_free = n_free;
            for (uint32_t i = 0; i < n_free; i++)
                if (s->free_slots[i] >= n_slots)
                    rc = -EINVAL;
        }
    }
    if (!rc)
        rc = load_slots(s, &r);
    if (!rc)
        rc = check_free_slots(s);
    float *row = malloc(dim * sizeof *row); /* the image's floats may be unaligned */
    if (!rc && !row)
        rc = -ENOMEM;
    for (uint32_t i = 0; !rc && i < n_slots; i++) {
        vd_get_copy(&r, row, dim * sizeof *row);
        if (r.bad || !floats_finite(row, dim))
            rc = -EINVAL;
        else
            rc = vd_vecstore_put(&s->vs, i, row);
    }
    free(row);
    /* The payload indexes last: a tenant index encodes the vectors. */
    for (uint32_t i = 0; !rc && i < n_slots; i++)
        if (s->meta[i].id.kind != 0)
            rc = vd_shard_index_payload(s, i);
    if (!rc)
        rc = s->index->ops->reserve(s->index, s->cap);
    bool has_image = vd_get_u8(&r) != 0;
    if (!rc && has_image != (s->index->ops->load != NULL))
        rc = -EINVAL;
    if (!rc && has_image)
        rc = s->index->ops->load(s->index, n_slots, dim, &r);
    if (!rc && !r.bad && vd_reader_left(&r) > 0) /* files from before it have none */
        rc = vd_graveyard_load(&s->graves, &r, shard_hash_of, s);
    if (!rc && (r.bad || vd_reader_left(&r) != 0))
        rc = -EINVAL;
    /* Count, check, and (re)insert: every point is alive, and in the index
     * or queued for it. */
    bool queue = has_image && s->index->ops->holds;
    if (!rc && queue)
        rc = vd_shard_backlog_reserve(s, n_slots);
    vd_vector_view v = vd_shard_view(s);
    for (uint32_t i = 0; !rc && i < n_slots; i++) {
        bool has_point = s->meta[i].id.kind != 0, alive = vd_bit_test(s->alive, i);
        bool dead = vd_bit_test(s->dead, i);
        if ((alive && !has_point) || (dead && (has_point || !s->index->ops->keeps_slots))) {
            rc = -EINVAL;
            break;
        }
        s->n_tombstones += dead;
        if (!has_point)
            continue;
        if (queue && alive && !s->index->ops->holds(s->index, i)) {
            vd_shard_backlog_push(s, i);
        } else if (!has_image || !alive) {
            rc = s->index->ops->insert(s->index, &v, i);
            if (rc == -EEXIST)
                rc = 0; /* the graph had it already */
        }
        if (!alive)
            vd_bit_set(s->alive, i);
        s->n_alive++;
    }
    if (!rc)
        s->snapshot_lsn = lsn;
    atomic_store(&s->connect_due, !rc && s->index->ops->connect); /* an image from before connect */
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

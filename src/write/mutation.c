/*
 * mutation.c — see mutation.h.
 *
 * Record bodies (all integers little-endian; `name` = u8 length + bytes):
 *
 *   CREATE_COLLECTION  name, u32 dim, u8 metric, u32 n_shards,
 *                      u8 index type, u32 m, u32 ef_construction, u32 ef_search,
 *                      u8 n_pindexes, n × (u8 type, u16 length, field bytes),
 *                      then (since vectord 0.2; absent = none) u8 quantization,
 *                      f32 oversampling, u8 originals on disk, u32 IVF nlist,
 *                      u32 IVF nprobe, then (since vectord 0.3; absent = off)
 *                      f32 target recall
 *                      (the collection's incarnation is the record's LSN)
 *   DROP_COLLECTION    name, u64 incarnation
 *   ADD_PINDEX         name, u64 incarnation, u8 type, u16 length, field bytes
 *   DROP_PINDEX        name, u64 incarnation, u16 length, field bytes
 *   UPSERT             name, u64 incarnation, u32 dim, u32 n, n × point:
 *                        id: u8 kind (1 integer: u64 | 2 string: u16 length + bytes)
 *                        u8 flags (1 has a version, 2 from the record, 4 the vector
 *                        only: the point keeps its payload and version, and is
 *                        not created if missing), [u64 version]
 *                        dim × f32 (as stored: cosine vectors already normalised)
 *                        u32 payload length, payload JSON text (length 0 = none)
 *   DELETE_IDS         name, u64 incarnation, u32 n, n × id
 *   DELETE_FILTER      name, u64 incarnation, u32 length, filter JSON text
 *   SET_DEFAULTS       name, u64 incarnation, u8 mask (1 ef_search, 2 nprobe,
 *                      4 oversampling, 8 target recall: the fields it sets),
 *                      u32 ef_search, u32 nprobe, f32 oversampling, then (since
 *                      vectord 0.3, when the mask has 8) f32 target recall
 *   EDIT_PAYLOAD       name, u64 incarnation, u8 op (db/payload_edit.h), u8 selector
 *                      (1 ids: u32 n, n × id | 2 filter: u32 length, filter JSON
 *                      text), u32 length + argument JSON text (the object to set
 *                      or replace with, the array of keys to unset; 0 = none),
 *                      u16 length + key path of a set (0 = the top)
 *   FEED_STATE         name (of the feed), u64 0, u8 flags (1 backfill started,
 *                      2 backfill done, 4 logical source), u64 backfill rows,
 *                      u16 length + last backfilled id, u64 outbox xid (logical:
 *                      the source LSN), u64 outbox seq; then, when the feed is
 *                      partitioned, u16 length + "i/N column" (absent in
 *                      records from before partitions: the whole table)
 *
 * Enum values (metric, index type, payload-index type) are written as they
 * are numbered in the headers; those numbers are therefore frozen.
 */
#include "write/mutation.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"
#include "write/write_order.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "record bodies copy floats as LE bytes");

/* Replayed filters were validated when logged; this only bounds recursion. */
#define REPLAY_FILTER_DEPTH 64

bool vd_mutation_is_ddl(vd_mutation_type t)
{
    return t == VD_MUT_CREATE_COLLECTION || t == VD_MUT_DROP_COLLECTION || t == VD_MUT_ADD_PINDEX ||
           t == VD_MUT_SET_DEFAULTS || t == VD_MUT_FEED_STATE || t == VD_MUT_DROP_PINDEX;
}

static void put_name(vd_strbuf *b, const char *s)
{
    size_t n = strlen(s);
    vd_put_u8(b, (uint8_t)n);
    vd_put_bytes(b, s, n);
}

static void put_id(vd_strbuf *b, const vd_point_id *id)
{
    vd_put_u8(b, (uint8_t)id->kind);
    if (id->kind == VD_ID_INT) {
        vd_put_u64(b, id->num);
    } else {
        vd_put_u16(b, (uint16_t)id->len);
        vd_put_bytes(b, id->str, id->len);
    }
}

static void put_point(vd_strbuf *b, const vd_point_in *p, uint32_t dim)
{
    put_id(b, &p->id);
    vd_put_u8(b, (uint8_t)((p->has_version ? 1 : 0) | (p->from_record ? 2 : 0) | (p->vector_only ? 4 : 0)));
    if (p->has_version)
        vd_put_u64(b, p->version);
    vd_put_bytes(b, p->vector, dim * sizeof(float));
    char *json = p->payload ? cJSON_PrintUnformatted(p->payload) : NULL;
    if (p->payload && !json) {
        b->failed = true;
        return;
    }
    size_t n = json ? strlen(json) : 0;
    vd_put_u32(b, (uint32_t)n);
    vd_put_bytes(b, json, n);
    free(json);
}

void vd_mutation_encode(const vd_mutation *m, vd_strbuf *b)
{
    put_name(b, m->collection);
    if (m->type != VD_MUT_CREATE_COLLECTION)
        vd_put_u64(b, m->incarnation);
    switch (m->type) {
    case VD_MUT_CREATE_COLLECTION: {
        const vd_collection_config *c = m->cfg;
        vd_put_u32(b, c->dim);
        vd_put_u8(b, (uint8_t)c->metric);
        vd_put_u32(b, c->n_shards);
        vd_put_u8(b, (uint8_t)c->index.type);
        vd_put_u32(b, c->index.m);
        vd_put_u32(b, c->index.ef_construction);
        vd_put_u32(b, c->index.ef_search);
        vd_put_u8(b, (uint8_t)c->n_pindexes);
        for (size_t i = 0; i < c->n_pindexes; i++) {
            vd_put_u8(b, (uint8_t)c->pindexes[i].type);
            vd_put_u16(b, (uint16_t)strlen(c->pindexes[i].field));
            vd_put_bytes(b, c->pindexes[i].field, strlen(c->pindexes[i].field));
        }
        vd_put_u8(b, (uint8_t)c->quant);
        vd_put_bytes(b, &c->oversampling, 4);
        vd_put_u8(b, c->originals_on_disk);
        vd_put_u32(b, c->index.nlist);
        vd_put_u32(b, c->index.nprobe);
        vd_put_bytes(b, &c->target_recall, 4);
        break;
    }
    case VD_MUT_DROP_COLLECTION:
        break;
    case VD_MUT_ADD_PINDEX:
        vd_put_u8(b, (uint8_t)m->pindex_type);
        vd_put_u16(b, (uint16_t)strlen(m->field));
        vd_put_bytes(b, m->field, strlen(m->field));
        break;
    case VD_MUT_DROP_PINDEX:
        vd_put_u16(b, (uint16_t)strlen(m->field));
        vd_put_bytes(b, m->field, strlen(m->field));
        break;
    case VD_MUT_SET_DEFAULTS:
        vd_put_u8(b, (uint8_t)m->defaults_mask);
        vd_put_u32(b, m->defaults->ef_search);
        vd_put_u32(b, m->defaults->nprobe);
        vd_put_bytes(b, &m->defaults->oversampling, 4);
        if (m->defaults_mask & VD_SET_TARGET_RECALL)
            vd_put_bytes(b, &m->defaults->target_recall, 4);
        break;
    case VD_MUT_UPSERT:
        vd_put_u32(b, m->dim);
        vd_put_u32(b, (uint32_t)m->n_points);
        /* the vectors' bytes at once: growing by doubling would copy them
         * again at each step (payloads, printed below, may still grow it) */
        vd_strbuf_reserve(b, b->len + m->n_points * ((size_t)m->dim * sizeof(float) + 64));
        for (size_t i = 0; i < m->n_points && !b->failed; i++)
            put_point(b, &m->points[i], m->dim);
        break;
    case VD_MUT_DELETE_IDS:
        vd_put_u32(b, (uint32_t)m->n_ids);
        for (size_t i = 0; i < m->n_ids; i++)
            put_id(b, &m->ids[i]);
        break;
    case VD_MUT_DELETE_FILTER:
        vd_put_u32(b, (uint32_t)strlen(m->filter_json));
        vd_put_bytes(b, m->filter_json, strlen(m->filter_json));
        break;
    case VD_MUT_EDIT_PAYLOAD: {
        vd_put_u8(b, (uint8_t)m->edit->op);
        vd_put_u8(b, m->filter ? 2 : 1);
        if (m->filter) {
            vd_put_u32(b, (uint32_t)strlen(m->filter_json));
            vd_put_bytes(b, m->filter_json, strlen(m->filter_json));
        } else {
            vd_put_u32(b, (uint32_t)m->n_ids);
            for (size_t i = 0; i < m->n_ids; i++)
                put_id(b, &m->ids[i]);
        }
        char *arg = m->edit->arg ? cJSON_PrintUnformatted(m->edit->arg) : NULL;
        if (m->edit->arg && !arg) {
            b->failed = true;
            break;
        }
        size_t n = arg ? strlen(arg) : 0, k = m->edit->key ? strlen(m->edit->key) : 0;
        vd_put_u32(b, (uint32_t)n);
        vd_put_bytes(b, arg, n);
        free(arg);
        vd_put_u16(b, (uint16_t)k);
        vd_put_bytes(b, m->edit->key, k);
        break;
    }
    case VD_MUT_FEED_STATE: {
        const vd_feed_state *f = m->feed;
        vd_put_u8(b, (uint8_t)(f->backfill_started | f->backfill_done << 1 | f->logical << 2));
        vd_put_u64(b, f->backfill_rows);
        vd_put_u16(b, (uint16_t)strlen(f->backfill_after));
        vd_put_bytes(b, f->backfill_after, strlen(f->backfill_after));
        vd_put_u64(b, f->logical ? f->source_lsn : f->xid);
        vd_put_u64(b, f->seq);
        size_t plen = strnlen(f->partition, VD_FEED_PARTITION_MAX);
        if (plen) {
            vd_put_u16(b, (uint16_t)plen);
            vd_put_bytes(b, f->partition, plen);
        }
        break;
    }
    }
}

/* ---- decoding ------------------------------------------------------------ */

static char *get_string(vd_reader *r, size_t n)
{
    const uint8_t *p = vd_get_bytes(r, n);
    char *s = p ? malloc(n + 1) : NULL;
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static bool get_id(vd_reader *r, vd_point_id *id)
{
    uint8_t kind = vd_get_u8(r);
    *id = (vd_point_id){.kind = kind};
    if (kind == VD_ID_INT) {
        id->num = vd_get_u64(r);
        return !r->bad;
    }
    if (kind != VD_ID_STR)
        return false;
    id->len = vd_get_u16(r);
    id->str = (const char *)vd_get_bytes(r, id->len);
    return !r->bad && id->len > 0;
}

static int bad(vd_errmsg *em, const char *what)
{
    return vd_fail(em, VD_E_INVALID_REQUEST, "record body is malformed (%s)", what);
}

static int decode_upsert(vd_reader *r, vd_mutation_decoded *d, vd_errmsg *em)
{
    uint32_t dim = vd_get_u32(r), n = vd_get_u32(r);
    /* Each point takes at least 4 (id) + 1 + 4 * dim + 4 bytes: bound n first. */
    if (r->bad || dim == 0 || (uint64_t)n * (9 + 4 * (uint64_t)dim) > vd_reader_left(r))
        return bad(em, "point count");
    d->points = calloc(n ? n : 1, sizeof *d->points);
    d->vectors = malloc((size_t)n * dim * sizeof(float) + 1);
    if (!d->points || !d->vectors)
        return vd_fail(em, -ENOMEM, "out of memory decoding an upsert of %u points", n);
    d->m.points = d->points;
    d->m.dim = dim;
    for (uint32_t i = 0; i < n; i++) {
        vd_point_in *p = &d->points[i];
        if (!get_id(r, &p->id))
            return bad(em, "point id");
        uint8_t flags = vd_get_u8(r);
        if (flags > 7)
            return bad(em, "point flags");
        p->has_version = flags & 1;
        p->from_record = flags & 2;
        p->vector_only = flags & 4;
        if (p->has_version)
            p->version = vd_get_u64(r);
        p->vector = d->vectors + (size_t)i * dim;
        vd_get_copy(r, p->vector, dim * sizeof(float));
        uint32_t plen = vd_get_u32(r);
        const uint8_t *json = vd_get_bytes(r, plen);
        d->m.n_points = i + 1; /* the payloads parsed so far are freed with d */
        if (r->bad)
            return bad(em, "point");
        for (uint32_t k = 0; k < dim; k++)
            if (!isfinite(p->vector[k]))
                return bad(em, "vector value");
        if (plen && (!(p->payload = cJSON_ParseWithLength((const char *)json, plen)) ||
                     !cJSON_IsObject(p->payload)))
            return bad(em, "payload JSON");
    }
    return 0;
}

static int decode_ids(vd_reader *r, vd_mutation_decoded *d, vd_errmsg *em)
{
    uint32_t n = vd_get_u32(r);
    if (r->bad || (uint64_t)n * 4 > vd_reader_left(r))
        return bad(em, "id count");
    if (!(d->ids = calloc(n ? n : 1, sizeof *d->ids)))
        return vd_fail(em, -ENOMEM, "out of memory decoding %u ids", n);
    for (uint32_t i = 0; i < n; i++)
        if (!get_id(r, &d->ids[i]))
            return bad(em, "point id");
    d->m.ids = d->ids;
    d->m.n_ids = n;
    return 0;
}

static int decode_filter(vd_reader *r, vd_mutation_decoded *d, vd_errmsg *em)
{
    if (!(d->filter_json = get_string(r, vd_get_u32(r))))
        return bad(em, "filter text");
    if (!(d->filter_doc = cJSON_Parse(d->filter_json)))
        return bad(em, "filter JSON");
    int rc = vd_filter_parse(d->filter_doc, REPLAY_FILTER_DEPTH, 0, &d->filter, em);
    d->m.filter = d->filter;
    d->m.filter_json = d->filter_json;
    return rc;
}

static int decode_edit(vd_reader *r, vd_mutation_decoded *d, vd_errmsg *em)
{
    vd_payload_edit *e = &d->edit;
    e->op = (vd_payload_op)vd_get_u8(r);
    uint8_t selector = vd_get_u8(r);
    if (r->bad || !vd_payload_op_name(e->op) || (selector != 1 && selector != 2))
        return bad(em, "payload edit");
    int rc = selector == 1 ? decode_ids(r, d, em) : decode_filter(r, d, em);
    if (rc)
        return rc;
    uint32_t alen = vd_get_u32(r);
    const uint8_t *arg = vd_get_bytes(r, alen);
    if (r->bad)
        return bad(em, "payload edit argument");
    bool wants_object = e->op == VD_PAYLOAD_SET || e->op == VD_PAYLOAD_REPLACE;
    if (alen && !(d->edit_arg = cJSON_ParseWithLength((const char *)arg, alen)))
        return bad(em, "payload edit JSON");
    if (wants_object ? !cJSON_IsObject(d->edit_arg)
                     : e->op == VD_PAYLOAD_UNSET ? !cJSON_IsArray(d->edit_arg) : d->edit_arg != NULL)
        return bad(em, "payload edit argument type");
    uint16_t klen = vd_get_u16(r);
    if (klen && !(d->edit_key = get_string(r, klen)))
        return bad(em, "payload edit key");
    e->arg = d->edit_arg;
    e->key = d->edit_key;
    d->m.edit = e;
    return 0;
}

static bool hnsw_params_ok(const vd_index_params *p)
{
    return p->m >= VD_HNSW_MIN_M && p->m <= VD_HNSW_MAX_M &&
           p->ef_construction >= VD_HNSW_MIN_EF_CONSTRUCTION &&
           p->ef_construction <= VD_HNSW_MAX_EF_CONSTRUCTION &&
           p->ef_search >= VD_HNSW_MIN_EF_SEARCH && p->ef_search <= VD_HNSW_MAX_EF_SEARCH;
}

static bool target_recall_ok(float t)
{
    return t == 0.0f || (t >= VD_TARGET_RECALL_MIN && t <= VD_TARGET_RECALL_MAX);
}

static bool pindex_type_ok(vd_pindex_type t)
{
    return t == VD_PINDEX_KEYWORD || t == VD_PINDEX_NUMERIC || t == VD_PINDEX_DATETIME ||
           t == VD_PINDEX_TENANT;
}

int vd_mutation_decode(uint8_t type, const uint8_t *body, size_t len, vd_mutation_decoded *d,
                       vd_errmsg *em)
{
    *d = (vd_mutation_decoded){0};
    vd_reader r = vd_reader_of(body, len);
    d->m.type = (vd_mutation_type)type;
    uint8_t nlen = vd_get_u8(&r);
    vd_get_copy(&r, d->name, nlen <= VD_NAME_MAX_LEN ? nlen : 0);
    if (nlen == 0 || nlen > VD_NAME_MAX_LEN || r.bad)
        return bad(em, "collection name");
    d->m.collection = d->name;
    if (type != VD_MUT_CREATE_COLLECTION)
        d->m.incarnation = vd_get_u64(&r);
    int rc = 0;
    switch (type) {
    case VD_MUT_CREATE_COLLECTION: {
        vd_collection_config *c = &d->cfg;
        memcpy(c->name, d->name, sizeof c->name);
        c->dim = vd_get_u32(&r);
        c->metric = (vd_metric)vd_get_u8(&r);
        c->n_shards = vd_get_u32(&r);
        c->index.type = (vd_index_type)vd_get_u8(&r);
        c->index.m = vd_get_u32(&r);
        c->index.ef_construction = vd_get_u32(&r);
        c->index.ef_search = vd_get_u32(&r);
        uint8_t np = vd_get_u8(&r);
        /* What the API would refuse is refused here too: a record is trusted
         * for its checksum, not for its values (a bug that wrote a bad one
         * must fail recovery with a message, not crash it). */
        if (np > VD_PINDEX_MAX || c->n_shards < VD_SHARDS_MIN || c->n_shards > VD_SHARDS_MAX ||
            c->dim == 0 || c->dim > VD_DIM_MAX || c->metric > VD_METRIC_L2 ||
            c->index.type > VD_INDEX_IVF || (c->index.type == VD_INDEX_HNSW && !hnsw_params_ok(&c->index)))
            return bad(em, "collection settings");
        for (uint8_t i = 0; i < np && !r.bad; i++) {
            c->pindexes[i].type = (vd_pindex_type)vd_get_u8(&r);
            c->pindexes[i].field = get_string(&r, vd_get_u16(&r));
            c->n_pindexes = i + 1u;
            if (!c->pindexes[i].field || !pindex_type_ok(c->pindexes[i].type))
                return bad(em, "payload index field");
        }
        c->quant = VD_QUANT_NONE;
        c->oversampling = 1.0f;
        if (vd_reader_left(&r) > 0) { /* written since vectord 0.2 */
            c->quant = (vd_quant)vd_get_u8(&r);
            vd_get_copy(&r, &c->oversampling, 4);
            c->originals_on_disk = vd_get_u8(&r) != 0;
            c->index.nlist = vd_get_u32(&r);
            c->index.nprobe = vd_get_u32(&r);
            /* oversampling 0 = the quantizer's default */
            if (c->quant > VD_QUANT_SQ8 || !(c->oversampling >= 1.0f || c->oversampling == 0.0f) ||
                c->oversampling > VD_OVERSAMPLING_MAX || (c->originals_on_disk && !c->quant) ||
                c->index.nlist > VD_IVF_MAX_NLIST || c->index.nprobe > VD_IVF_MAX_NPROBE)
                return bad(em, "quantization settings");
        }
        if (vd_reader_left(&r) > 0) { /* written since vectord 0.3 */
            vd_get_copy(&r, &c->target_recall, 4);
            if (!target_recall_ok(c->target_recall))
                return bad(em, "target recall");
        }
        d->m.cfg = c;
        break;
    }
    case VD_MUT_DROP_COLLECTION:
        break;
    case VD_MUT_ADD_PINDEX:
        d->m.pindex_type = (vd_pindex_type)vd_get_u8(&r);
        if (!(d->field = get_string(&r, vd_get_u16(&r))) || !pindex_type_ok(d->m.pindex_type))
            return bad(em, "payload index field");
        d->m.field = d->field;
        break;
    case VD_MUT_DROP_PINDEX:
        if (!(d->field = get_string(&r, vd_get_u16(&r))) || !d->field[0])
            return bad(em, "payload index field");
        d->m.field = d->field;
        break;
    case VD_MUT_SET_DEFAULTS: {
        vd_search_defaults *v = &d->defaults;
        uint8_t mask = vd_get_u8(&r);
        v->ef_search = vd_get_u32(&r);
        v->nprobe = vd_get_u32(&r);
        vd_get_copy(&r, &v->oversampling, 4);
        if (mask & VD_SET_TARGET_RECALL)
            vd_get_copy(&r, &v->target_recall, 4);
        if (!mask || (mask & ~(VD_SET_EF_SEARCH | VD_SET_NPROBE | VD_SET_OVERSAMPLING | VD_SET_TARGET_RECALL)) ||
            ((mask & VD_SET_TARGET_RECALL) && !target_recall_ok(v->target_recall)) ||
            ((mask & VD_SET_EF_SEARCH) &&
             (v->ef_search < VD_HNSW_MIN_EF_SEARCH || v->ef_search > VD_HNSW_MAX_EF_SEARCH)) ||
            ((mask & VD_SET_NPROBE) && v->nprobe > VD_IVF_MAX_NPROBE) ||
            ((mask & VD_SET_OVERSAMPLING) &&
             !(v->oversampling == 0.0f ||
               (v->oversampling >= 1.0f && v->oversampling <= VD_OVERSAMPLING_MAX))))
            return bad(em, "search defaults");
        d->m.defaults = v;
        d->m.defaults_mask = mask;
        break;
    }
    case VD_MUT_UPSERT:
        rc = decode_upsert(&r, d, em);
        break;
    case VD_MUT_DELETE_IDS:
        rc = decode_ids(&r, d, em);
        break;
    case VD_MUT_DELETE_FILTER:
        rc = decode_filter(&r, d, em);
        break;
    case VD_MUT_EDIT_PAYLOAD:
        rc = decode_edit(&r, d, em);
        break;
    case VD_MUT_FEED_STATE: {
        vd_feed_state *f = &d->feed;
        memcpy(f->feed, d->name, sizeof d->name);
        uint8_t flags = vd_get_u8(&r);
        f->backfill_started = flags & 1;
        f->backfill_done = (flags & 2) != 0;
        f->logical = (flags & 4) != 0;
        f->backfill_rows = vd_get_u64(&r);
        uint16_t klen = vd_get_u16(&r);
        if (klen > VD_FEED_KEY_MAX)
            return bad(em, "backfill key");
        vd_get_copy(&r, f->backfill_after, klen);
        f->xid = vd_get_u64(&r);
        if (f->logical) {
            f->source_lsn = f->xid;
            f->xid = 0;
        }
        f->seq = vd_get_u64(&r);
        if (vd_reader_left(&r) > 0) {
            uint16_t plen = vd_get_u16(&r);
            if (plen > VD_FEED_PARTITION_MAX)
                return bad(em, "feed partition");
            vd_get_copy(&r, f->partition, plen);
        }
        d->m.feed = f;
        break;
    }
    default:
        return vd_fail(em, VD_E_INVALID_REQUEST, "unknown record type %u", type);
    }
    if (!rc && (r.bad || vd_reader_left(&r) != 0))
        return bad(em, r.bad ? "truncated" : "trailing bytes");
    return rc;
}

void vd_mutation_decoded_free(vd_mutation_decoded *d)
{
    for (size_t i = 0; i < d->cfg.n_pindexes; i++)
        free((char *)d->cfg.pindexes[i].field);
    for (size_t i = 0; d->points && i < d->m.n_points; i++)
        cJSON_Delete(d->points[i].payload);
    free(d->points);
    free(d->vectors);
    free(d->ids);
    cJSON_Delete(d->edit_arg);
    free(d->edit_key);
    free(d->field);
    vd_filter_destroy(d->filter);
    cJSON_Delete(d->filter_doc);
    free(d->filter_json);
    *d = (vd_mutation_decoded){0};
}

/* ---- applying ------------------------------------------------------------ */

/* The collection a mutation names, if it is still the incarnation it names. */
static vd_collection *lookup(vd_database *db, const vd_mutation *m)
{
    vd_collection *c;
    if (vd_database_get(db, m->collection, &c) != 0)
        return NULL;
    if (vd_collection_config_of(c)->incarnation != m->incarnation) {
        vd_collection_unref(c);
        return NULL;
    }
    return c;
}

int vd_mutation_apply_ddl(vd_database *db, const vd_mutation *m, uint64_t lsn, bool replay,
                          vd_errmsg *em)
{
    int rc = 0;
    vd_collection *c = NULL;
    switch (m->type) {
    case VD_MUT_CREATE_COLLECTION: {
        vd_collection_config cfg = *m->cfg;
        cfg.incarnation = lsn;
        rc = vd_database_create_collection(db, &cfg, &vd_write_order_hooks_std, em);
        if (replay && rc == VD_E_COLLECTION_EXISTS && (c = lookup(db, &(vd_mutation){
                                                                         .collection = cfg.name,
                                                                         .incarnation = lsn})))
            rc = 0; /* a snapshot holds it */
        break;
    }
    case VD_MUT_DROP_COLLECTION:
        if ((c = lookup(db, m)))
            rc = vd_database_drop(db, m->collection);
        else if (!replay)
            rc = vd_fail(em, VD_E_COLLECTION_NOT_FOUND, "collection '%s' does not exist",
                         m->collection);
        break;
    case VD_MUT_ADD_PINDEX:
        if (!(c = lookup(db, m))) {
            if (!replay)
                rc = vd_fail(em, VD_E_COLLECTION_NOT_FOUND, "collection '%s' does not exist",
                             m->collection);
            break;
        }
        rc = vd_collection_add_pindex(c, m->field, m->pindex_type, em);
        if (replay && rc == VD_E_COLLECTION_EXISTS)
            rc = 0; /* a snapshot holds it */
        break;
    case VD_MUT_DROP_PINDEX:
        if (!(c = lookup(db, m))) {
            if (!replay)
                rc = vd_fail(em, VD_E_COLLECTION_NOT_FOUND, "collection '%s' does not exist",
                             m->collection);
            break;
        }
        rc = vd_collection_drop_pindex(c, m->field, em);
        if (replay && rc == VD_E_NOT_FOUND)
            rc = 0; /* the snapshot was taken after the drop */
        break;
    case VD_MUT_SET_DEFAULTS:
        /* Replayed in log order, the last one logged wins, as it did live. */
        if ((c = lookup(db, m)))
            vd_collection_set_search_defaults(c, m->defaults, m->defaults_mask);
        else if (!replay)
            rc = vd_fail(em, VD_E_COLLECTION_NOT_FOUND, "collection '%s' does not exist",
                         m->collection);
        break;
    case VD_MUT_FEED_STATE: {
        vd_feed_state st = *m->feed;
        st.lsn = lsn;
        rc = vd_database_feed_set(db, &st);
        break;
    }
    default:
        rc = vd_fail(em, VD_E_INTERNAL, "record type %d is not a collection change", m->type);
    }
    vd_collection_unref(c);
    return rc;
}

int vd_mutation_stage(vd_collection *c, const vd_mutation *m, uint64_t lsn,
                      vd_mutation_outcome *out, vd_collection_staged **staged)
{
    *staged = NULL;
    switch (m->type) {
    case VD_MUT_UPSERT:
        if (m->dim != vd_collection_config_of(c)->dim)
            return VD_E_DIMENSION_MISMATCH;
        return vd_collection_upsert_stage(c, m->points, m->n_points, lsn, &out->counts, staged);
    case VD_MUT_DELETE_IDS:
        return vd_collection_delete_ids(c, m->ids, m->n_ids, lsn, &out->deleted);
    case VD_MUT_DELETE_FILTER:
        return vd_collection_delete_filter(c, m->filter, lsn, &out->deleted);
    case VD_MUT_EDIT_PAYLOAD:
        return vd_collection_edit_payload(c, m->edit, m->ids, m->n_ids, m->filter, lsn, &out->edited);
    default:
        return VD_E_INTERNAL;
    }
}

int vd_mutation_finish(vd_collection *c, vd_collection_staged *staged)
{
    return staged ? vd_collection_upsert_finish(c, staged) : 0;
}

int vd_mutation_apply_data(vd_database *db, vd_collection *c, const vd_mutation *m, uint64_t lsn,
                           vd_mutation_outcome *out)
{
    vd_collection *own = c ? NULL : lookup(db, m);
    if (!c && !(c = own)) {
        out->skipped = true;
        return 0;
    }
    vd_collection_staged *st;
    int rc = vd_mutation_stage(c, m, lsn, out, &st);
    int rc2 = vd_mutation_finish(c, st);
    vd_collection_unref(own);
    return rc ? rc : rc2;
}

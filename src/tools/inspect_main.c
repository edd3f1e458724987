/*
 * inspect_main.c — vectord-inspect: verifies (and with -v lists) WAL segment
 * files and snapshot files, like redis-check-aof. The kind of each file is
 * told by its magic bytes.
 *
 *   vectord-inspect [-v] FILE...     (wal-*.log, collection.snap, shard-*.snap)
 *
 * Exit status: 0 all clean, 1 a torn WAL tail somewhere, 2 corruption or an
 * unreadable/invalid file, 64 usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "write/mutation.h"
#include "storage/wal_inspect.h"
#include "util/bitset.h"
#include "util/bytes.h"
#include "vectord/crc32c.h"
#include "vectord/snapshot.h"
#include "write/manifest.h"

static const char *const type_names[] = {
    "?", "create_collection", "drop_collection", "add_payload_index", "upsert", "delete_ids",
    "delete_filter", "feed_state", "set_defaults", "edit_payload", "drop_payload_index"};

/* type name, collection and size of a logged change (vd_wal_describe_fn). */
static void describe(const vd_wal_record *r, char *out, size_t cap)
{
    uint64_t first;
    if (r->type == VD_WAL_TYPE_SKIP) {
        if (vd_wal_skip_first(r, &first))
            snprintf(out, cap, "skip first_lsn=%" PRIu64 " (a failed write's LSNs, never acknowledged)",
                     first);
        else
            snprintf(out, cap, "UNDECODABLE (a malformed skip record)");
        return;
    }
    vd_mutation_decoded d;
    vd_errmsg em = {{0}};
    if (vd_mutation_decode(r->type, r->body, r->len, &d, &em) != 0) {
        snprintf(out, cap, "UNDECODABLE (%s)", em.text);
        vd_mutation_decoded_free(&d);
        return;
    }
    const vd_mutation *m = &d.m;
    int n = snprintf(out, cap, "%s collection=%s", type_names[m->type], m->collection);
    if (m->type != VD_MUT_CREATE_COLLECTION)
        n += snprintf(out + n, cap - (size_t)n, " incarnation=%" PRIu64, m->incarnation);
    if (m->type == VD_MUT_CREATE_COLLECTION)
        snprintf(out + n, cap - (size_t)n, " dim=%u metric=%s shards=%u index=%s", m->cfg->dim,
                 vd_metric_name(m->cfg->metric), m->cfg->n_shards,
                 vd_index_type_name(m->cfg->index.type));
    else if (m->type == VD_MUT_UPSERT)
        snprintf(out + n, cap - (size_t)n, " points=%zu dim=%u", m->n_points, m->dim);
    else if (m->type == VD_MUT_DELETE_IDS)
        snprintf(out + n, cap - (size_t)n, " ids=%zu", m->n_ids);
    else if (m->type == VD_MUT_DELETE_FILTER)
        snprintf(out + n, cap - (size_t)n, " filter=%.120s", m->filter_json);
    else if (m->type == VD_MUT_EDIT_PAYLOAD && m->filter)
        snprintf(out + n, cap - (size_t)n, " op=%s filter=%.120s", vd_payload_op_name(m->edit->op), m->filter_json);
    else if (m->type == VD_MUT_EDIT_PAYLOAD)
        snprintf(out + n, cap - (size_t)n, " op=%s ids=%zu", vd_payload_op_name(m->edit->op), m->n_ids);
    else if (m->type == VD_MUT_ADD_PINDEX || m->type == VD_MUT_DROP_PINDEX)
        snprintf(out + n, cap - (size_t)n, " field=%s", m->field);
    else if (m->type == VD_MUT_SET_DEFAULTS)
        snprintf(out + n, cap - (size_t)n, " mask=%u ef_search=%u nprobe=%u oversampling=%g",
                 m->defaults_mask, m->defaults->ef_search, m->defaults->nprobe,
                 (double)m->defaults->oversampling);
    else if (m->type == VD_MUT_FEED_STATE)
        snprintf(out + n, cap - (size_t)n, " backfill=%s rows=%" PRIu64 " xid=%" PRIu64 " seq=%" PRIu64,
                 m->feed->backfill_done ? "done" : m->feed->backfill_started ? "running" : "no",
                 m->feed->backfill_rows, m->feed->xid, m->feed->seq);
    vd_mutation_decoded_free(&d);
}

static int inspect_wal(const char *path, const uint8_t *img, size_t len, bool list)
{
    vd_wal_scan_result res;
    vd_errmsg em = {{0}};
    if (vd_wal_inspect(img, len, path, list, describe, stdout, &res, &em) != 0) {
        printf("verdict: INVALID: %s\n", em.text);
        return 2;
    }
    return res.status == VD_WAL_CORRUPT ? 2 : res.status == VD_WAL_TORN ? 1 : 0;
}

/* The first fields of a shard image (see src/db/shard_image.c). */
static void describe_shard(const vd_snapshot_view *v)
{
    vd_reader r = vd_reader_of(v->body, v->body_len);
    uint32_t dim = vd_get_u32(&r);
    uint8_t metric = vd_get_u8(&r);
    uint32_t n_slots = vd_get_u32(&r);
    size_t nw = vd_bitset_words(n_slots);
    const uint8_t *alive = vd_get_bytes(&r, nw * 8), *dead = vd_get_bytes(&r, nw * 8);
    uint32_t n_free = vd_get_u32(&r);
    if (r.bad) {
        printf("  shard image: truncated\n");
        return;
    }
    size_t n_alive = 0, n_dead = 0;
    for (size_t i = 0; i < nw * 8; i++) {
        n_alive += (size_t)__builtin_popcount(alive[i]);
        n_dead += (size_t)__builtin_popcount(dead[i]);
    }
    printf("  shard: dim=%u metric=%s slots=%u points=%zu tombstones=%zu free=%u\n", dim,
           vd_metric_name((vd_metric)metric), n_slots, n_alive, n_dead, n_free);
}

static int inspect_snapshot(const char *path, const uint8_t *img, size_t len)
{
    vd_snapshot_view v;
    vd_errmsg em = {{0}};
    if (vd_snapshot_open(img, len, &v, &em) != 0) {
        printf("snapshot %s: %zu bytes\nverdict: INVALID: %s\n", path, len, em.text);
        return 2;
    }
    printf("snapshot %s: format %u, kind %s, lsn %" PRIu64 ", %zu bytes\n", path, v.version,
           v.kind == VD_SNAP_COLLECTION ? "collection"
           : v.kind == VD_SNAP_SHARD    ? "shard"
           : v.kind == VD_SNAP_FEEDS    ? "feeds"
           : v.kind == VD_SNAP_MANIFEST ? "manifest"
                                        : "?",
           v.lsn, len);
    if (v.kind == VD_SNAP_COLLECTION && v.body_len >= 8) {
        vd_wal_record r = {.type = VD_MUT_CREATE_COLLECTION, .body = v.body,
                           .len = (uint32_t)(v.body_len - 8)};
        char text[300];
        describe(&r, text, sizeof text);
        printf("  %s\n", text);
    } else if (v.kind == VD_SNAP_SHARD) {
        describe_shard(&v);
    } else if (v.kind == VD_SNAP_MANIFEST) {
        vd_manifest m;
        if (vd_manifest_parse(v.body, v.body_len, &m) != 0) {
            vd_manifest_free(&m);
            printf("verdict: INVALID: the manifest's list is malformed\n");
            return 2;
        }
        printf("  covered_lsn=%" PRIu64 " wal_end=%" PRIu64 " collections=%zu files=%zu\n",
               m.covered_lsn, m.wal_end, m.n_colls, m.n_files);
        for (size_t i = 0; i < m.n_colls; i++)
            printf("  collection '%s' incarnation=%" PRIu64 " shards=%u\n", m.colls[i].name,
                   m.colls[i].incarnation, m.colls[i].n_shards);
        for (size_t i = 0; i < m.n_files; i++)
            printf("  file %s bytes=%" PRIu64 " crc=%08x lsn=%" PRIu64 "\n", m.files[i].path,
                   m.files[i].size, m.files[i].crc, m.files[i].lsn);
        vd_manifest_free(&m);
    }
    printf("verdict: clean\n");
    return 0;
}

int main(int argc, char **argv)
{
    bool list = false;
    int first = 1, status = 0;
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        list = true;
        first = 2;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: vectord-inspect [-v] WAL_SEGMENT|SNAPSHOT_FILE...\n");
        return 64;
    }
    vd_crc32c_init(true);
    for (int i = first; i < argc; i++) {
        uint8_t *img;
        size_t len;
        int rc = vd_vfs_read_file(vd_vfs_posix(), argv[i], &img, &len);
        if (rc) {
            printf("%s: cannot read: %s\nverdict: INVALID\n", argv[i], strerror(-rc));
            status = 2;
            continue;
        }
        bool snap = len >= 8 && memcmp(img, "VECTDSNP", 8) == 0;
        int s = snap ? inspect_snapshot(argv[i], img, len) : inspect_wal(argv[i], img, len, list);
        free(img);
        if (s > status)
            status = s;
    }
    return status;
}

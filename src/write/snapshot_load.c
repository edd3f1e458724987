/* snapshot_load.c — see snapshot_load.h. */
#include "write/snapshot_load.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/bytes.h"
#include "util/log.h"
#include "vectord/snapshot.h"
#include "write/datadir.h"
#include "write/manifest.h"
#include "write/mutation.h"
#include "write/write_order.h"

typedef struct load_ctx {
    vd_database *db;
    vd_vfs *vfs;
    const char *root;
    bool accept;
    vd_manifest man;
    vd_snapshots_loaded *out;
    uint64_t wal_first;  /* the first LSN of the oldest WAL segment (0: none) */
    uint64_t wal_need;   /* the oldest LSN replay turned out to need */
    bool found_any;      /* any snapshot file on disk, readable or not */
    uint32_t newest_ver; /* the highest format version read */
} load_ctx;

static void discard(vd_vfs *vfs, const char *path)
{
    char to[1300];
    snprintf(to, sizeof to, "%s.discarded", path);
    int rc = vfs->ops->rename(vfs, path, to);
    vd_log_warn("discarded unreadable snapshot", "file=\"%s\" renamed_to=\"%s\" rc=%d", path, to,
                rc);
}

/* A file or folder the manifest lists is not on disk. When the WAL still
 * holds every record it covered (from LSN since on) it is rebuilt from there;
 * otherwise the start is refused, or with accept_data_loss goes on without. */
static int listed_but_missing(load_ctx *x, const char *what, uint64_t since, vd_errmsg *em)
{
    if (x->wal_first && x->wal_first <= since) {
        vd_log_warn("a snapshot the checkpoint manifest lists is missing: rebuilding it from "
                    "the WAL, which still holds every record since",
                    "missing=\"%s\" from_lsn=%llu", what, (unsigned long long)since);
        if (since < x->wal_need)
            x->wal_need = since;
        return 0;
    }
    if (!x->accept)
        return vd_fail(em, VD_E_INTERNAL,
                       "%s is missing: the last checkpoint's manifest lists it and the WAL "
                       "records it covered are gone; refusing to start (--accept-data-loss "
                       "starts without it)", what);
    vd_log_error("starting without a snapshot the checkpoint manifest lists (accept_data_loss)",
                 "missing=\"%s\"", what);
    x->out->lost_files++;
    return 0;
}

/* Reads and checks root/rel: its container, its kind, the manifest. */
static int read_snapshot(load_ctx *x, const char *rel, vd_snapshot_kind kind, uint8_t **img,
                         vd_snapshot_view *v, vd_errmsg *em)
{
    char path[1300];
    vd_datadir_path(path, sizeof path, x->root, rel);
    size_t len;
    int rc = vd_vfs_read_file(x->vfs, path, img, &len);
    if (rc)
        return vd_fail(em, rc, "cannot read snapshot %s: %s", path, strerror(-rc));
    x->found_any = true;
    vd_errmsg why = {{0}};
    if ((rc = vd_snapshot_open(*img, len, v, &why)) == 0 && v->kind != kind)
        rc = vd_fail(&why, VD_E_INVALID_REQUEST, "kind %u at offset 12, expected %u", v->kind,
                     kind);
    if (rc)
        return vd_fail(em, VD_E_INVALID_REQUEST, "snapshot %s is unreadable: %s", path, why.text);
    if (v->version > x->newest_ver)
        x->newest_ver = v->version;
    return vd_manifest_check(&x->man, rel, len, vd_snapshot_stored_crc(*img, len), v->lsn, em);
}

/* Loads the shards of c from the folder rel_dir. */
static int load_shards(load_ctx *x, vd_collection *c, const char *rel_dir, uint32_t n_shards,
                       uint64_t incarnation, uint64_t *least, uint64_t *most, vd_errmsg *em)
{
    int rc = 0;
    for (uint32_t i = 0; i < n_shards && !rc; i++) {
        char file[32], rel[VD_MANIFEST_PATH_MAX], path[1300];
        vd_datadir_shard_file(file, sizeof file, i);
        snprintf(rel, sizeof rel, "%s/%s", rel_dir, file);
        vd_datadir_path(path, sizeof path, x->root, rel);
        if (access(path, F_OK) != 0) {
            if (vd_manifest_file_of(&x->man, rel) && !(x->wal_first && x->wal_first <= incarnation)) {
                rc = vd_fail(em, VD_E_INTERNAL, "snapshot %s is missing: the last checkpoint's "
                             "manifest lists it and the WAL records it covered are gone; refusing to "
                             "start (--accept-data-loss drops the collection)", path);
                break;
            }
            if (vd_manifest_file_of(&x->man, rel))
                listed_but_missing(x, path, incarnation, em);
            *least = 0; /* not written, or lost: the WAL since the create has it all */
            continue;
        }
        uint8_t *img = NULL;
        vd_snapshot_view v;
        if (!(rc = read_snapshot(x, rel, VD_SNAP_SHARD, &img, &v, em))) {
            int lrc = vd_collection_load_shard(c, i, v.body, v.body_len, v.lsn);
            if (lrc)
                rc = vd_fail(em, lrc == -ENOMEM ? -ENOMEM : VD_E_INVALID_REQUEST,
                             "snapshot %s cannot be loaded: %s", path,
                             lrc == -ENOMEM ? "out of memory" : "its contents are inconsistent");
            *least = v.lsn < *least ? v.lsn : *least;
            *most = v.lsn > *most ? v.lsn : *most;
            x->out->files++;
        }
        free(img);
    }
    return rc;
}

/* Creates the collection of one snapshot folder and loads its shards. */
static int load_collection(load_ctx *x, uint64_t folder_inc, vd_errmsg *em)
{
    char rel_dir[32], rel[VD_MANIFEST_PATH_MAX], path[1300];
    vd_datadir_collection(rel_dir, sizeof rel_dir, "", folder_inc);
    memmove(rel_dir, rel_dir + 1, strlen(rel_dir)); /* no leading slash */
    snprintf(rel, sizeof rel, "%s/" VD_DATADIR_COLLECTION_FILE, rel_dir);
    vd_datadir_path(path, sizeof path, x->root, rel);
    vd_manifest_collection *listed = vd_manifest_collection_of(&x->man, folder_inc);
    if (listed)
        listed->seen = true;
    if (access(path, F_OK) != 0) {
        if (!listed)
            return 0; /* removal of a dropped collection was cut short */
        char what[1400];
        snprintf(what, sizeof what, "%s (collection '%s')", path, listed->name);
        return listed_but_missing(x, what, folder_inc, em);
    }
    uint8_t *img = NULL;
    vd_snapshot_view v;
    int rc = read_snapshot(x, rel, VD_SNAP_COLLECTION, &img, &v, em);
    vd_mutation_decoded d = {0};
    vd_errmsg why = {{0}};
    if (!rc && (v.body_len < 8 ||
                vd_mutation_decode(VD_MUT_CREATE_COLLECTION, v.body, v.body_len - 8, &d, &why)))
        rc = vd_fail(em, VD_E_INVALID_REQUEST, "snapshot %s is unreadable: %s", path,
                     why.text[0] ? why.text : "too short");
    if (!rc && listed && d.cfg.n_shards != listed->n_shards)
        rc = vd_fail(em, VD_E_INVALID_REQUEST,
                     "snapshot %s says %u shards, the checkpoint manifest %u", path,
                     d.cfg.n_shards, listed->n_shards);
    if (rc) {
        free(img);
        vd_mutation_decoded_free(&d);
        if (!x->accept || rc == -ENOMEM)
            return rc;
        vd_log_error("skipping a collection whose snapshot is unreadable", "error=\"%s\"", em->text);
        discard(x->vfs, path);
        x->out->lost_files++;
        return 0;
    }
    vd_reader r = vd_reader_of(v.body + v.body_len - 8, 8);
    d.cfg.incarnation = vd_get_u64(&r);
    free(img);
    if (d.cfg.incarnation > x->out->max_lsn)
        x->out->max_lsn = d.cfg.incarnation;
    /* A name held by an older incarnation: that one was dropped (its drop
     * is in the WAL, its files not cleaned yet). The newer wins. */
    vd_collection *old;
    if (vd_database_get(x->db, d.cfg.name, &old) == 0) {
        bool older = vd_collection_config_of(old)->incarnation < d.cfg.incarnation;
        vd_collection_unref(old);
        if (!older) {
            vd_mutation_decoded_free(&d);
            return 0;
        }
        vd_database_drop(x->db, d.cfg.name);
    }
    char name[VD_NAME_MAX_LEN + 1];
    memcpy(name, d.cfg.name, sizeof name);
    uint32_t n_shards = d.cfg.n_shards;
    uint64_t incarnation = d.cfg.incarnation;
    rc = vd_database_create_collection(x->db, &d.cfg, &vd_write_order_hooks_std, em);
    vd_mutation_decoded_free(&d);
    vd_collection *c;
    if (rc || (rc = vd_database_get(x->db, name, &c)))
        return rc;
    x->out->files++;
    uint64_t least = UINT64_MAX, most = incarnation;
    rc = load_shards(x, c, rel_dir, n_shards, incarnation, &least, &most, em);
    if (rc && x->accept && rc != -ENOMEM) {
        /* The collection is dropped whole, not kept with a hole in it. */
        vd_log_error("dropping a collection whose snapshot is unreadable or missing",
                     "error=\"%s\"", em->text);
        vd_collection_unref(c);
        vd_database_drop(x->db, name);
        discard(x->vfs, path);
        x->out->lost_files++;
        return 0;
    }
    if (!rc) {
        vd_write_order *o = vd_collection_write_order(c);
        o->snapshot_lsn = least;
        o->applied_lsn = o->last_logged = most;
        if (most > x->out->max_lsn)
            x->out->max_lsn = most;
    }
    vd_collection_unref(c);
    return rc;
}

static int load_feeds(load_ctx *x, vd_errmsg *em)
{
    char path[1200];
    vd_datadir_path(path, sizeof path, x->root, VD_DATADIR_FEEDS_FILE);
    if (access(path, F_OK) != 0)
        return vd_manifest_file_of(&x->man, VD_DATADIR_FEEDS_FILE)
                   ? listed_but_missing(x, path, 1, em)
                   : 0;
    uint8_t *img = NULL;
    vd_snapshot_view v;
    int rc = read_snapshot(x, VD_DATADIR_FEEDS_FILE, VD_SNAP_FEEDS, &img, &v, em);
    if (!rc) {
        vd_reader r = vd_reader_of(v.body, v.body_len);
        uint32_t n = vd_get_u32(&r);
        for (uint32_t i = 0; i < n && !rc; i++) {
            uint32_t len = vd_get_u32(&r);
            const uint8_t *body = vd_get_bytes(&r, len);
            uint64_t lsn = vd_get_u64(&r);
            vd_mutation_decoded d = {0};
            vd_errmsg why = {{0}};
            if (r.bad || vd_mutation_decode(VD_MUT_FEED_STATE, body, len, &d, &why) != 0) {
                rc = vd_fail(em, VD_E_INVALID_REQUEST, "snapshot %s is unreadable: feed %u: %s",
                             path, i, why.text[0] ? why.text : "truncated");
            } else {
                d.feed.lsn = lsn;
                rc = vd_database_feed_set(x->db, &d.feed);
                if (lsn > x->out->max_lsn)
                    x->out->max_lsn = lsn;
            }
            vd_mutation_decoded_free(&d);
        }
        x->out->files++;
    }
    free(img);
    if (rc && x->accept && rc != -ENOMEM) {
        vd_log_error("ignoring unreadable feed positions: the feeds start over", "error=\"%s\"",
                     em->text);
        discard(x->vfs, path);
        x->out->lost_files++;
        return 0;
    }
    return rc;
}

/* The collection folders under root, in incarnation order (so that of two
 * folders with one name the newer wins: see load_collection). */
static int list_folders(const char *root, uint64_t **out, size_t *n_out, vd_errmsg *em)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(root);
    if (!d)
        return errno == ENOENT ? 0 : vd_fail(em, -errno, "cannot list %s: %s", root,
                                              strerror(errno));
    uint64_t *incs = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t inc;
        if (!vd_datadir_parse_collection(e->d_name, &inc))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            uint64_t *ni = realloc(incs, cap * sizeof *ni);
            if (!ni) {
                rc = vd_fail(em, -ENOMEM, "out of memory");
                break;
            }
            incs = ni;
        }
        incs[n++] = inc;
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) /* insertion sort: collections are few */
        for (size_t j = i; j > 0 && incs[j - 1] > incs[j]; j--) {
            uint64_t t = incs[j];
            incs[j] = incs[j - 1];
            incs[j - 1] = t;
        }
    *out = incs;
    *n_out = n;
    return rc;
}

/* Leftovers of a checkpoint cut short. */
static void remove_temp_files(vd_vfs *vfs, const char *dir)
{
    DIR *cd = opendir(dir);
    struct dirent *e;
    while (cd && (e = readdir(cd))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0) {
            char tmp[1300];
            snprintf(tmp, sizeof tmp, "%s/%s", dir, e->d_name);
            vfs->ops->unlink(vfs, tmp);
        }
    }
    if (cd)
        closedir(cd);
}

/* What the manifest lists and recovery did not find: whole folders. */
static int check_all_seen(load_ctx *x, vd_errmsg *em)
{
    int rc = 0;
    for (size_t i = 0; i < x->man.n_colls && !rc; i++) {
        vd_manifest_collection *c = &x->man.colls[i];
        if (c->seen)
            continue;
        char dir[1200], what[1400];
        vd_datadir_collection(dir, sizeof dir, x->root, c->incarnation);
        snprintf(what, sizeof what, "snapshot folder %s (collection '%s', %u shards)", dir,
                 c->name, c->n_shards);
        rc = listed_but_missing(x, what, c->incarnation, em);
    }
    return rc;
}

int vd_snapshots_load(vd_database *db, vd_vfs *vfs, const char *snap_root, uint64_t wal_first,
                      bool accept_data_loss, vd_snapshots_loaded *out, vd_errmsg *em)
{
    *out = (vd_snapshots_loaded){0};
    load_ctx x = {.db = db, .vfs = vfs, .root = snap_root, .accept = accept_data_loss, .out = out,
                  .wal_first = wal_first, .wal_need = UINT64_MAX};
    int rc = vd_manifest_read(vfs, snap_root, &x.man, em);
    if (rc && accept_data_loss && rc != -ENOMEM) {
        vd_log_error("ignoring an unreadable checkpoint manifest (accept_data_loss): "
                     "missing snapshot files go unnoticed", "error=\"%s\"", em->text);
        rc = 0;
    }
    if (rc)
        return rc;
    if (x.man.present)
        x.found_any = true;
    rc = load_feeds(&x, em);
    uint64_t *incs = NULL;
    size_t n = 0;
    if (!rc)
        rc = list_folders(snap_root, &incs, &n, em);
    for (size_t i = 0; i < n && !rc; i++) {
        char dir[1200];
        vd_datadir_collection(dir, sizeof dir, snap_root, incs[i]);
        remove_temp_files(vfs, dir);
        rc = load_collection(&x, incs[i], em);
    }
    free(incs);
    if (!rc)
        rc = check_all_seen(&x, em);
    if (!rc && !x.man.present && x.newest_ver >= VD_SNAPSHOT_FORMAT_VERSION) {
        /* Files from a vectord that writes a manifest at every checkpoint. */
        char path[1200];
        vd_datadir_path(path, sizeof path, snap_root, VD_DATADIR_MANIFEST_FILE);
        if (wal_first == 1)
            vd_log_warn("the checkpoint manifest is missing; the WAL holds every record, so "
                        "nothing is lost", "missing=\"%s\"", path);
        else if (!accept_data_loss)
            rc = vd_fail(em, VD_E_INTERNAL,
                         "the checkpoint manifest %s is missing, though the snapshots beside it "
                         "were written with one: whether any snapshot file is missing too "
                         "cannot be told; refusing to start (--accept-data-loss starts with "
                         "the files that are there)", path);
        else
            vd_log_error("starting without the checkpoint manifest (accept_data_loss): missing "
                         "snapshot files go unnoticed", "missing=\"%s\"", path);
        if (wal_first == 1)
            x.wal_need = 1;
    }
    if (x.man.present)
        out->wal_from = x.man.covered_lsn + 1;
    else if (!x.found_any)
        out->wal_from = 1; /* nothing was ever checkpointed: the WAL holds it all */
    if (x.wal_need < UINT64_MAX && (!out->wal_from || x.wal_need < out->wal_from))
        out->wal_from = x.wal_need;
    out->wal_through = x.man.wal_end;
    vd_manifest_free(&x.man);
    return rc;
}

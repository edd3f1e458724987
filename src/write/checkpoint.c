/* checkpoint.c — see checkpoint.h. */
#include "write/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "write/mutation.h"
#include "db/shard.h"
#include "util/bytes.h"
#include "write/datadir.h"
#include "write/write_order.h"
#include "util/clock.h"
#include "util/log.h"
#include "vectord/snapshot.h"

static int ensure_dir(vd_vfs *vfs, const char *dir, const char *parent, vd_errmsg *em)
{
    if (mkdir(dir, 0750) == 0)
        return parent ? vfs->ops->sync_dir(vfs, parent) : 0;
    if (errno == EEXIST)
        return 0;
    return vd_fail(em, -errno, "cannot create %s: %s", dir, strerror(errno));
}

/* The collection file: its CREATE record body (current payload indexes
 * included) followed by u64 incarnation. */
static void encode_meta(vd_collection *c, vd_strbuf *img)
{
    vd_collection_config cfg = *vd_collection_config_of(c);
    cfg.n_pindexes = vd_collection_pindexes(c, cfg.pindexes, VD_PINDEX_MAX);
    vd_mutation m = {.type = VD_MUT_CREATE_COLLECTION, .collection = cfg.name, .cfg = &cfg};
    vd_mutation_encode(&m, img);
    vd_put_u64(img, cfg.incarnation);
}

int vd_snapshot_collection(vd_vfs *vfs, const char *snap_root, vd_collection *c,
                           vd_checkpoint_result *res, vd_errmsg *em)
{
    const vd_collection_config *cfg = vd_collection_config_of(c);
    vd_write_order *o = vd_collection_write_order(c);
    char dir[1200];
    vd_datadir_collection(dir, sizeof dir, snap_root, cfg->incarnation);
    int rc = ensure_dir(vfs, snap_root, NULL, em);
    if (!rc)
        rc = ensure_dir(vfs, dir, snap_root, em);
    vd_strbuf img;
    vd_strbuf_init(&img, 0);
    if (!rc) {
        vd_snapshot_begin(&img, VD_SNAP_COLLECTION, cfg->incarnation);
        encode_meta(c, &img);
        res->bytes += img.len;
        rc = vd_snapshot_commit(&img, vfs, dir, VD_DATADIR_COLLECTION_FILE, em);
    }
    uint64_t least = UINT64_MAX;
    for (uint32_t i = 0; !rc && i < cfg->n_shards; i++) {
        img.len = 0;
        img.failed = false;
        char name[32];
        vd_datadir_shard_file(name, sizeof name, i);
        vd_snapshot_writer w;
        if ((rc = vd_snapshot_writer_open(&w, vfs, dir, name, em)))
            break;
        /* The shard image and its LSN must agree: hold the ordered apply
         * until the shard's write lock is ours (vd_shard_save drops it). */
        pthread_mutex_lock(&o->apply_lock);
        uint64_t lsn = o->applied_lsn;
        vd_snapshot_begin(&img, VD_SNAP_SHARD, lsn);
        if ((rc = vd_shard_save(vd_collection_shard(c, i), &o->apply_lock, &img, &w))) {
            vd_snapshot_writer_abort(&w);
            rc = vd_fail(em, rc, "cannot copy shard %u of '%s': %s", i, cfg->name, strerror(-rc));
            break;
        }
        res->bytes += w.off + VD_SNAPSHOT_TRAILER_LEN;
        if ((rc = vd_snapshot_writer_commit(&w, em)))
            break;
        res->shards++;
        if (lsn < least)
            least = lsn;
    }
    vd_strbuf_free(&img);
    if (rc)
        return rc;
    pthread_mutex_lock(&o->log_lock);
    o->snapshot_lsn = least;
    pthread_mutex_unlock(&o->log_lock);
    res->collections++;
    return 0;
}

/* Writes every feed's state to snap_root/feeds.snap (none: nothing to do). */
static int snapshot_feeds(vd_database *db, vd_vfs *vfs, const char *snap_root,
                          vd_checkpoint_result *res, vd_errmsg *em)
{
    vd_feed_state *feeds;
    size_t n;
    if (vd_database_feed_list(db, &feeds, &n))
        return vd_fail(em, -ENOMEM, "out of memory");
    int rc = 0;
    if (n) {
        vd_strbuf img, rec;
        vd_strbuf_init(&img, 0);
        vd_strbuf_init(&rec, 0);
        uint64_t newest = 0;
        for (size_t i = 0; i < n; i++)
            newest = feeds[i].lsn > newest ? feeds[i].lsn : newest;
        vd_snapshot_begin(&img, VD_SNAP_FEEDS, newest);
        vd_put_u32(&img, (uint32_t)n);
        for (size_t i = 0; i < n; i++) {
            rec.len = 0;
            vd_mutation m = {.type = VD_MUT_FEED_STATE, .collection = feeds[i].feed,
                             .feed = &feeds[i]};
            vd_mutation_encode(&m, &rec);
            vd_put_u32(&img, (uint32_t)rec.len);
            vd_put_bytes(&img, rec.data, rec.len);
            vd_put_u64(&img, feeds[i].lsn);
        }
        res->bytes += img.len;
        if (rec.failed)
            rc = vd_fail(em, -ENOMEM, "out of memory");
        if (!rc)
            rc = ensure_dir(vfs, snap_root, NULL, em);
        if (!rc)
            rc = vd_snapshot_commit(&img, vfs, snap_root, VD_DATADIR_FEEDS_FILE, em);
        vd_strbuf_free(&img);
        vd_strbuf_free(&rec);
    }
    free(feeds);
    return rc;
}

static int load_feeds(vd_database *db, vd_vfs *vfs, const char *snap_root, bool accept,
                      size_t *n_files, uint64_t *max_lsn, vd_errmsg *em);

/* Removes a collection's snapshot directory: the collection file first, so
 * an interrupted removal never leaves a loadable half. */
static int remove_vd_datadir_collection(vd_vfs *vfs, const char *root, const char *name)
{
    char dir[1200], path[1300];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    snprintf(path, sizeof path, "%s/" VD_DATADIR_COLLECTION_FILE, dir);
    int rc = vfs->ops->unlink(vfs, path);
    if (rc && rc != -ENOENT)
        return rc;
    if ((rc = vfs->ops->sync_dir(vfs, dir)))
        return rc;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        vfs->ops->unlink(vfs, path);
    }
    closedir(d);
    if (rmdir(dir) != 0)
        return -errno;
    return vfs->ops->sync_dir(vfs, root);
}

static bool parse_vd_datadir_collection(const char *name, uint64_t *incarnation)
{
    char *end;
    if (name[0] != 'c' || strlen(name) != 17)
        return false;
    *incarnation = strtoull(name + 1, &end, 16);
    return *end == 0;
}

static int remove_orphans(vd_vfs *vfs, const char *root, vd_collection **colls, size_t n,
                          size_t *removed, vd_errmsg *em)
{
    DIR *d = opendir(root);
    if (!d)
        return errno == ENOENT ? 0 : vd_fail(em, -errno, "cannot list %s", root);
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        uint64_t inc;
        if (!parse_vd_datadir_collection(e->d_name, &inc))
            continue;
        bool live = false;
        for (size_t i = 0; i < n && !live; i++)
            live = vd_collection_config_of(colls[i])->incarnation == inc;
        if (live)
            continue;
        if ((rc = remove_vd_datadir_collection(vfs, root, e->d_name)))
            rc = vd_fail(em, rc, "cannot remove %s/%s: %s", root, e->d_name, strerror(-rc));
        else
            (*removed)++;
    }
    closedir(d);
    return rc;
}

int vd_checkpoint(vd_database *db, vd_wal *wal, vd_vfs *vfs, const char *snap_root,
                  const char *only, vd_checkpoint_result *res, vd_errmsg *em)
{
    double t0 = vd_now_s();
    *res = (vd_checkpoint_result){0};
    vd_wal_stats ws;
    vd_wal_stats_get(wal, &ws);
    uint64_t covered = ws.next_lsn - 1; /* later records are not written yet */
    vd_collection **colls;
    size_t n;
    if (vd_database_list(db, &colls, &n))
        return vd_fail(em, -ENOMEM, "out of memory");
    int rc = 0;
    bool found = !only;
    for (size_t i = 0; i < n && !rc; i++) {
        vd_write_order *o = vd_collection_write_order(colls[i]);
        bool named = only && strcmp(vd_collection_config_of(colls[i])->name, only) == 0;
        found |= named;
        pthread_mutex_lock(&o->log_lock);
        bool dirty = o->last_logged > o->snapshot_lsn || !o->snapshot_lsn;
        pthread_mutex_unlock(&o->log_lock);
        if (named || (!only && dirty))
            rc = vd_snapshot_collection(vfs, snap_root, colls[i], res, em);
    }
    if (!rc && !found)
        rc = vd_fail(em, VD_E_COLLECTION_NOT_FOUND, "collection '%s' does not exist", only);
    /* What the WAL must keep: the writes of each collection after its
     * snapshot. A collection with none (all writes in its snapshot) keeps
     * nothing back. */
    for (size_t i = 0; i < n && !rc; i++) {
        vd_write_order *o = vd_collection_write_order(colls[i]);
        pthread_mutex_lock(&o->log_lock);
        if (o->last_logged > o->snapshot_lsn && o->snapshot_lsn < covered)
            covered = o->snapshot_lsn;
        pthread_mutex_unlock(&o->log_lock);
    }
    /* Feed positions: no feed state is logged meanwhile (the caller holds
     * the DDL lock, and feed states are logged under it). */
    if (!rc)
        rc = snapshot_feeds(db, vfs, snap_root, res, em);
    /* Dropped collections' files go before the log records of their drop. */
    if (!rc)
        rc = remove_orphans(vfs, snap_root, colls, n, &res->orphans_removed, em);
    if (!rc && covered > 0 && (rc = vd_wal_remove_through(wal, covered, &res->segments_removed)))
        rc = vd_fail(em, rc, "cannot remove old WAL segments: %s", strerror(-rc));
    for (size_t i = 0; i < n; i++)
        vd_collection_unref(colls[i]);
    free(colls);
    res->covered_lsn = covered;
    res->seconds = vd_now_s() - t0;
    return rc;
}

/* ---- loading ------------------------------------------------------------- */

static void discard(vd_vfs *vfs, const char *path)
{
    char to[1300];
    snprintf(to, sizeof to, "%s.discarded", path);
    int rc = vfs->ops->rename(vfs, path, to);
    vd_log_warn("discarded unreadable snapshot", "file=\"%s\" renamed_to=\"%s\" rc=%d", path, to,
                rc);
}

/* Reads and checks one snapshot file. */
static int read_snapshot(vd_vfs *vfs, const char *path, vd_snapshot_kind kind, uint8_t **img,
                         vd_snapshot_view *v, vd_errmsg *em)
{
    size_t len;
    int rc = vd_vfs_read_file(vfs, path, img, &len);
    if (rc)
        return vd_fail(em, rc, "cannot read snapshot %s: %s", path, strerror(-rc));
    vd_errmsg why = {{0}};
    if ((rc = vd_snapshot_open(*img, len, v, &why)) == 0 && v->kind != kind)
        rc = vd_fail(&why, VD_E_INVALID_REQUEST, "kind %u at offset 12, expected %u", v->kind,
                     kind);
    if (rc)
        return vd_fail(em, VD_E_INVALID_REQUEST, "snapshot %s is unreadable: %s", path, why.text);
    return 0;
}

/* Creates the collection of one snapshot directory and loads its shards. */
static int load_collection(vd_database *db, vd_vfs *vfs, const char *dir, bool accept,
                           size_t *n_files, uint64_t *max_lsn, vd_errmsg *em)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/" VD_DATADIR_COLLECTION_FILE, dir);
    uint8_t *img = NULL;
    vd_snapshot_view v;
    int rc = read_snapshot(vfs, path, VD_SNAP_COLLECTION, &img, &v, em);
    vd_mutation_decoded d = {0};
    vd_errmsg why = {{0}};
    if (!rc && (v.body_len < 8 ||
                vd_mutation_decode(VD_MUT_CREATE_COLLECTION, v.body, v.body_len - 8, &d, &why)))
        rc = vd_fail(em, VD_E_INVALID_REQUEST, "snapshot %s is unreadable: %s", path,
                     why.text[0] ? why.text : "too short");
    if (rc) {
        free(img);
        vd_mutation_decoded_free(&d);
        if (!accept)
            return rc;
        vd_log_error("skipping a collection whose snapshot is unreadable", "error=\"%s\"", em->text);
        discard(vfs, path);
        return 0;
    }
    vd_reader r = vd_reader_of(v.body + v.body_len - 8, 8);
    d.cfg.incarnation = vd_get_u64(&r);
    free(img);
    if (d.cfg.incarnation > *max_lsn)
        *max_lsn = d.cfg.incarnation;
    /* A name held by an older incarnation: that one was dropped (its drop
     * is in the WAL, its files not cleaned yet). The newer wins. */
    vd_collection *old;
    if (vd_database_get(db, d.cfg.name, &old) == 0) {
        bool older = vd_collection_config_of(old)->incarnation < d.cfg.incarnation;
        vd_collection_unref(old);
        if (!older) {
            vd_mutation_decoded_free(&d);
            return 0;
        }
        vd_database_drop(db, d.cfg.name);
    }
    char name[VD_NAME_MAX_LEN + 1];
    memcpy(name, d.cfg.name, sizeof name);
    uint32_t n_shards = d.cfg.n_shards;
    uint64_t incarnation = d.cfg.incarnation;
    rc = vd_database_create_collection(db, &d.cfg, &vd_write_order_hooks_std, em);
    vd_mutation_decoded_free(&d);
    vd_collection *c;
    if (rc || (rc = vd_database_get(db, name, &c)))
        return rc;
    (*n_files)++;
    uint64_t least = UINT64_MAX, most = incarnation;
    for (uint32_t i = 0; i < n_shards && !rc; i++) {
        char file[32];
        vd_datadir_shard_file(file, sizeof file, i);
        vd_datadir_path(path, sizeof path, dir, file);
        if (access(path, F_OK) != 0) {
            least = 0; /* never written: the WAL since the create has it all */
            continue;
        }
        if (!(rc = read_snapshot(vfs, path, VD_SNAP_SHARD, &img, &v, em))) {
            int lrc = vd_collection_load_shard(c, i, v.body, v.body_len, v.lsn);
            if (lrc)
                rc = vd_fail(em, lrc == -ENOMEM ? -ENOMEM : VD_E_INVALID_REQUEST,
                             "snapshot %s cannot be loaded: %s", path,
                             lrc == -ENOMEM ? "out of memory" : "its contents are inconsistent");
            least = v.lsn < least ? v.lsn : least;
            most = v.lsn > most ? v.lsn : most;
            (*n_files)++;
        }
        free(img);
        img = NULL;
    }
    if (rc && accept && rc != -ENOMEM) {
        /* The collection is dropped whole, not kept with a hole in it. */
        vd_log_error("dropping a collection whose snapshot is unreadable", "error=\"%s\"", em->text);
        vd_collection_unref(c);
        vd_database_drop(db, name);
        snprintf(path, sizeof path, "%s/" VD_DATADIR_COLLECTION_FILE, dir);
        discard(vfs, path);
        return 0;
    }
    if (!rc) {
        vd_write_order *o = vd_collection_write_order(c);
        o->snapshot_lsn = least;
        o->applied_lsn = o->last_logged = most;
        if (most > *max_lsn)
            *max_lsn = most;
    }
    vd_collection_unref(c);
    return rc;
}

int vd_snapshots_load(vd_database *db, vd_vfs *vfs, const char *snap_root, bool accept_data_loss,
                      size_t *n_files, uint64_t *max_lsn, vd_errmsg *em)
{
    int frc = load_feeds(db, vfs, snap_root, accept_data_loss, n_files, max_lsn, em);
    if (frc)
        return frc;
    DIR *d = opendir(snap_root);
    if (!d)
        return errno == ENOENT ? 0 : vd_fail(em, -errno, "cannot list %s: %s", snap_root,
                                              strerror(errno));
    /* Load in incarnation order, so that of two directories with one name
     * the newer wins (see load_collection). */
    uint64_t *incs = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t inc;
        if (!parse_vd_datadir_collection(e->d_name, &inc))
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
    for (size_t i = 0; i < n && !rc; i++) {
        char dir[1200], tmp[1300];
        vd_datadir_collection(dir, sizeof dir, snap_root, incs[i]);
        /* Leftovers of a checkpoint cut short. */
        DIR *cd = opendir(dir);
        while (cd && (e = readdir(cd))) {
            size_t l = strlen(e->d_name);
            if (l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0) {
                snprintf(tmp, sizeof tmp, "%s/%s", dir, e->d_name);
                vfs->ops->unlink(vfs, tmp);
            }
        }
        if (cd)
            closedir(cd);
        snprintf(tmp, sizeof tmp, "%s/" VD_DATADIR_COLLECTION_FILE, dir);
        if (access(tmp, F_OK) != 0)
            continue; /* removal of a dropped collection was cut short */
        rc = load_collection(db, vfs, dir, accept_data_loss, n_files, max_lsn, em);
    }
    free(incs);
    return rc;
}

static int load_feeds(vd_database *db, vd_vfs *vfs, const char *snap_root, bool accept,
                      size_t *n_files, uint64_t *max_lsn, vd_errmsg *em)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/" VD_DATADIR_FEEDS_FILE, snap_root);
    if (access(path, F_OK) != 0)
        return 0;
    uint8_t *img = NULL;
    vd_snapshot_view v;
    int rc = read_snapshot(vfs, path, VD_SNAP_FEEDS, &img, &v, em);
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
                rc = vd_database_feed_set(db, &d.feed);
                if (lsn > *max_lsn)
                    *max_lsn = lsn;
            }
            vd_mutation_decoded_free(&d);
        }
        (*n_files)++;
    }
    free(img);
    if (rc && accept && rc != -ENOMEM) {
        vd_log_error("ignoring unreadable feed positions: the feeds start over", "error=\"%s\"",
                     em->text);
        discard(vfs, path);
        return 0;
    }
    return rc;
}

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
#include "write/manifest.h"
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
    vd_collection_config cfg;
    vd_collection_config_now(c, &cfg);
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

/* Removes a collection's snapshot directory: the collection file first, so
 * an interrupted removal never leaves a loadable half. */
static int remove_collection_folder(vd_vfs *vfs, const char *root, const char *name)
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
        if (!vd_datadir_parse_collection(e->d_name, &inc))
            continue;
        bool live = false;
        for (size_t i = 0; i < n && !live; i++)
            live = vd_collection_config_of(colls[i])->incarnation == inc;
        if (live)
            continue;
        if ((rc = remove_collection_folder(vfs, root, e->d_name)))
            rc = vd_fail(em, rc, "cannot remove %s/%s: %s", root, e->d_name, strerror(-rc));
        else
            (*removed)++;
    }
    closedir(d);
    return rc;
}

static int write_manifest(vd_collection **colls, size_t n, vd_wal *wal, vd_vfs *vfs,
                          const char *snap_root, uint64_t covered, vd_errmsg *em)
{
    vd_manifest_collection *mc = calloc(n ? n : 1, sizeof *mc);
    if (!mc)
        return vd_fail(em, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const vd_collection_config *cfg = vd_collection_config_of(colls[i]);
        mc[i].incarnation = cfg->incarnation;
        mc[i].n_shards = cfg->n_shards;
        snprintf(mc[i].name, sizeof mc[i].name, "%s", cfg->name);
    }
    vd_wal_stats ws;
    vd_wal_stats_get(wal, &ws);
    int rc = vd_manifest_write(vfs, snap_root, mc, n, covered, ws.durable_lsn, em);
    free(mc);
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
    /* The manifest names what is on disk now, before anything goes. */
    if (!rc)
        rc = write_manifest(colls, n, wal, vfs, snap_root, covered, em);
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

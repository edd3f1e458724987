/* store.c — see store.h. */
#include "write/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util/log.h"
#include "util/clock.h"
#include "write/datadir.h"
#include "write/snapshot_load.h"

struct vd_store {
    vd_database *db; /* borrowed */
    vd_vfs *uring;   /* owned, or NULL when the WAL uses pwrite */
    vd_vfs *vfs;     /* what the WAL writes through */
    vd_vfs *fs;      /* what snapshots and recovery use */
    vd_wal *wal;
    vd_journal *journal;
    char wal_dir[1100], snap_dir[1100];
    vd_store_options opt;
    /* checkpoints */
    pthread_mutex_t ck_lock; /* one checkpoint at a time; guards the fields below */
    pthread_cond_t ck_wake;
    bool ck_stop, ck_started;
    pthread_t ck_thread;
    uint64_t ck_wal_bytes; /* WAL bytes at the last checkpoint */
    uint64_t ck_last_bytes; /* snapshot bytes the last checkpoint of everything wrote */
    vd_checkpoint_stats ck;
};

static int make_dir(const char *path, vd_errmsg *em)
{
    if (mkdir(path, 0750) != 0 && errno != EEXIST)
        return vd_fail(em, -errno, "cannot create %s: %s", path, strerror(errno));
    return 0;
}

/* io_uring unless configured off or unavailable (e.g. a seccomp profile). */
static int choose_io(vd_store *s, const char *wal_io, vd_errmsg *em)
{
    s->fs = s->vfs = s->opt.vfs ? s->opt.vfs : vd_vfs_posix();
    if (s->opt.vfs)
        return 0;
    if (strcmp(wal_io, "pwrite") == 0)
        return 0;
    int rc = vd_vfs_uring_create(&s->uring);
    if (rc == 0) {
        s->vfs = s->uring;
        return 0;
    }
    if (strcmp(wal_io, "io_uring") == 0)
        return vd_fail(em, rc, "wal_io=io_uring but io_uring cannot be used here: %s",
                       strerror(-rc));
    vd_log_warn("io_uring unavailable, the WAL uses pwrite and fdatasync",
                "error=\"%s\"", strerror(-rc));
    return 0;
}

static int recover(vd_store *s, vd_recovery_report *rep, vd_errmsg *em)
{
    double t0 = vd_now_s();
    uint64_t *firsts = NULL, wal_first = 0;
    size_t n_segs = 0;
    if (vd_wal_list_segments(s->wal_dir, &firsts, &n_segs) == 0 && n_segs)
        wal_first = firsts[0];
    free(firsts);
    vd_snapshots_loaded sl;
    int rc = vd_snapshots_load(s->db, s->fs, s->snap_dir, wal_first, s->opt.accept_data_loss, &sl,
                               em);
    rep->snapshot_seconds = vd_now_s() - t0;
    rep->snapshots = sl.files;
    rep->lost_snapshot_files = sl.lost_files;
    if (rc)
        return rc;
    rep->next_lsn = sl.max_lsn + 1;
    rep->wal_from = sl.wal_from;
    rep->wal_through = sl.wal_through;
    return vd_recover_wal(s->db, s->fs, s->wal_dir, s->opt.accept_data_loss, rep, em);
}

static void *checkpointer_main(void *arg);

int vd_store_open(vd_store **out, vd_database *db, const vd_store_options *opt,
                  vd_recovery_report *rep, vd_errmsg *em)
{
    vd_store *s = calloc(1, sizeof *s);
    if (!s)
        return vd_fail(em, -ENOMEM, "out of memory");
    s->db = db;
    s->opt = *opt;
    pthread_mutex_init(&s->ck_lock, NULL);
    vd_cond_init_monotonic(&s->ck_wake);
    vd_datadir_path(s->wal_dir, sizeof s->wal_dir, opt->data_dir, VD_DATADIR_WAL);
    vd_datadir_path(s->snap_dir, sizeof s->snap_dir, opt->data_dir, VD_DATADIR_SNAPSHOTS);
    *rep = (vd_recovery_report){0};
    int rc = make_dir(s->wal_dir, em);
    if (!rc)
        rc = make_dir(s->snap_dir, em);
    if (!rc)
        rc = choose_io(s, opt->wal_io, em);
    if (!rc)
        rc = recover(s, rep, em);
    vd_wal_options wo = {.segment_bytes = opt->segment_bytes, .fsync = opt->fsync,
                         .batch_ms = opt->batch_ms};
    if (!rc)
        rc = vd_wal_open(&s->wal, s->vfs, s->wal_dir, rep->next_lsn, &wo, em);
    if (!rc && vd_journal_create(&s->journal, db, s->wal) != 0)
        rc = vd_fail(em, -ENOMEM, "out of memory");
    if (!rc && (opt->checkpoint_interval_s || opt->checkpoint_wal_bytes)) {
        if (pthread_create(&s->ck_thread, NULL, checkpointer_main, s) != 0)
            rc = vd_fail(em, -EAGAIN, "cannot start the checkpoint thread");
        else
            s->ck_started = true;
    }
    if (rc) {
        vd_store_close(s, false);
        return rc;
    }
    *out = s;
    return 0;
}

int vd_store_checkpoint(vd_store *s, const char *only, const char *reason,
                        vd_checkpoint_result *res, vd_errmsg *em)
{
    pthread_mutex_lock(&s->ck_lock);
    vd_wal_stats ws;
    vd_wal_stats_get(s->wal, &ws);
    vd_journal_lock_ddl(s->journal);
    int rc = vd_checkpoint(s->db, s->wal, s->fs, s->snap_dir, only, res, em);
    vd_journal_unlock_ddl(s->journal);
    if (rc) {
        s->ck.failures++;
        vd_log_error("checkpoint failed", "reason=%s error=\"%s\"", reason, em->text);
    } else {
        s->ck.runs++;
        s->ck.last_seconds = res->seconds;
        s->ck.total_seconds += res->seconds;
        s->ck.bytes += res->bytes;
        s->ck.segments_removed += res->segments_removed;
        uint64_t wal_since = ws.bytes - s->ck_wal_bytes;
        if (!only) {
            s->ck_wal_bytes = ws.bytes;
            s->ck_last_bytes = res->bytes;
        }
        vd_log_info("checkpoint", "reason=%s collections=%zu shards=%zu bytes=%llu "
                    "wal_segments_removed=%zu covered_lsn=%llu seconds=%.3f wal_bytes_since=%llu",
                    reason, res->collections, res->shards, (unsigned long long)res->bytes,
                    res->segments_removed, (unsigned long long)res->covered_lsn, res->seconds,
                    (unsigned long long)wal_since);
    }
    pthread_mutex_unlock(&s->ck_lock);
    return rc;
}

/* A checkpoint rewrites every changed collection whole, so a fixed trigger
 * made a growing collection's snapshot I/O grow with the square of its size
 * (a 1M x 1536 backfill wrote 22 snapshots, the last ones 6 GB each, back
 * to back); proportional, it stays within a constant factor of the WAL
 * written (Redis rewrites its append-only file on the same rule). A bulk
 * load spaces them further: at 100% a 1M x 1536 backfill still wrote 9 GB
 * of snapshots (1.3, 2.7, 5.3 GB) for 6.4 GB of data, and copying them into
 * the page cache was a third of the server's CPU; at 400%, 1.9 GB. */
uint64_t vd_store_wal_trigger(const vd_store_options *opt, uint64_t last_bytes, bool bulk)
{
    uint64_t t = opt->checkpoint_wal_bytes;
    if (!t)
        return 0;
    uint64_t pct = bulk ? opt->checkpoint_bulk_wal_pct : opt->checkpoint_wal_pct;
    uint64_t scaled = last_bytes / 100 * pct;
    return scaled > t ? scaled : t;
}

/* Checkpoints every checkpoint_interval_s, or sooner once wal_trigger() bytes
 * of WAL have been written since the last one. */
static void *checkpointer_main(void *arg)
{
    vd_store *s = arg;
    double last = vd_now_s();
    pthread_mutex_lock(&s->ck_lock);
    while (!s->ck_stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&s->ck_wake, &s->ck_lock, &until);
        if (s->ck_stop)
            break;
        vd_wal_stats ws;
        vd_wal_stats_get(s->wal, &ws);
        const char *reason = NULL;
        uint64_t trigger = vd_store_wal_trigger(&s->opt, s->ck_last_bytes, vd_journal_bulk_loads(s->journal) > 0);
        if (trigger && ws.bytes - s->ck_wal_bytes >= trigger)
            reason = "wal_bytes";
        else if (s->opt.checkpoint_interval_s && vd_now_s() - last >= (double)s->opt.checkpoint_interval_s)
            reason = "interval";
        if (!reason)
            continue;
        pthread_mutex_unlock(&s->ck_lock);
        vd_checkpoint_result res;
        vd_errmsg em = {{0}};
        vd_store_checkpoint(s, NULL, reason, &res, &em);
        last = vd_now_s();
        pthread_mutex_lock(&s->ck_lock);
    }
    pthread_mutex_unlock(&s->ck_lock);
    return NULL;
}

void vd_store_close(vd_store *s, bool checkpoint)
{
    if (!s)
        return;
    if (s->ck_started) {
        pthread_mutex_lock(&s->ck_lock);
        s->ck_stop = true;
        pthread_cond_signal(&s->ck_wake);
        pthread_mutex_unlock(&s->ck_lock);
        pthread_join(s->ck_thread, NULL);
    }
    if (checkpoint && s->wal && s->journal) {
        vd_checkpoint_result res;
        vd_errmsg em = {{0}};
        vd_store_checkpoint(s, NULL, "shutdown", &res, &em);
    }
    vd_wal_close(s->wal);
    vd_journal_destroy(s->journal);
    vd_vfs_uring_destroy(s->uring);
    pthread_cond_destroy(&s->ck_wake);
    pthread_mutex_destroy(&s->ck_lock);
    free(s);
}

void vd_store_checkpoint_stats(vd_store *s, vd_checkpoint_stats *out)
{
    pthread_mutex_lock(&s->ck_lock);
    *out = s->ck;
    pthread_mutex_unlock(&s->ck_lock);
}

vd_journal *vd_store_journal(vd_store *s) { return s->journal; }
vd_wal *vd_store_wal(vd_store *s) { return s->wal; }
const char *vd_store_wal_io(const vd_store *s) { return s->uring ? "io_uring" : "pwrite"; }

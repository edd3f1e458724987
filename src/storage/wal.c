/*
 * wal.c — the WAL writer (wal.h). Segment and record bytes: wal_format.c.
 *
 * Writers encode their record into the shared queue under `lock` and get the
 * next LSN; the writer thread swaps the queue out, writes it with one pwrite
 * at the end of the current segment, fdatasyncs once (fsync=always), and then
 * reports every record of the group through its callback. The queue and the
 * writer's buffers are swapped, never copied, so appending costs one memcpy
 * of the record. Segment files are named wal-<first LSN, 16 hex digits>.log.
 */
#include "vectord/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "vectord/wal_format.h"
#include "util/clock.h"

typedef struct pending {
    uint64_t lsn;
    vd_wal_done_cb cb;
    void *ctx;
} pending;

typedef struct batch {
    uint8_t *buf;
    size_t len, cap;
    pending *items;
    size_t n, items_cap;
} batch;

struct vd_wal {
    vd_vfs *vfs; /* borrowed */
    char *dir;
    vd_wal_options opt;
    pthread_mutex_t lock; /* guards queue, next_lsn, stopping, read_only, st */
    pthread_cond_t work;  /* the writer waits here for records */
    pthread_cond_t done;  /* vd_wal_append waits here for its record */
    batch queue;
    uint64_t next_lsn;
    /* Writer thread only: LSNs of failed groups not yet covered by a skip
     * record (0 = none); the next group written starts with one. */
    uint64_t skip_first, skip_last;
    bool stopping;
    vd_wal_stats st;
    uint64_t cur_first_lsn; /* first LSN of the segment being written */
    /* writer thread only */
    bool unsynced; /* VD_FSYNC_BATCH: written bytes await their fdatasync */
    double unsynced_since; /* vd_now_s() of the oldest unsynced write */
    batch spare;
    int fd;
    uint64_t seg_off, salt;
    pthread_t thread;
};

const double vd_wal_sync_bounds[VD_WAL_SYNC_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0, __builtin_inf()};

void vd_wal_segment_path(char *out, size_t cap, const char *dir, uint64_t first_lsn)
{
    snprintf(out, cap, "%s/wal-%016llx.log", dir, (unsigned long long)first_lsn);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int vd_wal_list_segments(const char *dir, uint64_t **firsts, size_t *n)
{
    *firsts = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned long long lsn;
        char tail[8];
        if (strlen(e->d_name) != 24 || sscanf(e->d_name, "wal-%16llx%7s", &lsn, tail) != 2 ||
            strcmp(tail, ".log") != 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nf = realloc(*firsts, cap * sizeof *nf);
            if (!nf) {
                rc = -ENOMEM;
                break;
            }
            *firsts = nf;
        }
        (*firsts)[(*n)++] = lsn;
    }
    closedir(d);
    if (rc) {
        free(*firsts);
        *firsts = NULL;
        *n = 0;
        return rc;
    }
    if (*n)
        qsort(*firsts, *n, sizeof **firsts, cmp_u64);
    return 0;
}

static uint64_t new_salt(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 17);
    }
    return s;
}

/* Creates segment wal-<first_lsn>.log with its header, durable with its name. */
static int open_segment(vd_wal *w, uint64_t first_lsn, vd_errmsg *em)
{
    char path[1100];
    vd_wal_segment_path(path, sizeof path, w->dir, first_lsn);
    uint8_t hdr[VD_WAL_SEGMENT_HEADER_LEN];
    uint64_t salt = new_salt(); /* the writer's state changes only on success */
    vd_wal_header_encode(hdr, salt);
    size_t n;
    int fd, rc = w->vfs->ops->open(w->vfs, path, O_RDWR | O_CREAT | O_EXCL, 0640, &fd);
    if (rc)
        return vd_fail(em, rc, "cannot create WAL segment %s: %s", path, strerror(-rc));
    if ((rc = w->vfs->ops->pwrite(w->vfs, fd, hdr, sizeof hdr, 0, &n)) ||
        (rc = w->vfs->ops->fdatasync(w->vfs, fd)) || (rc = w->vfs->ops->sync_dir(w->vfs, w->dir))) {
        w->vfs->ops->close(w->vfs, fd);
        w->vfs->ops->unlink(w->vfs, path); /* a later roll creates it again */
        return vd_fail(em, rc, "cannot initialise WAL segment %s: %s", path, strerror(-rc));
    }
    w->fd = fd;
    w->salt = salt;
    w->seg_off = sizeof hdr;
    pthread_mutex_lock(&w->lock);
    w->cur_first_lsn = first_lsn;
    pthread_mutex_unlock(&w->lock);
    return 0;
}

/* fdatasync of the current segment when batch_ms has passed (or now). */
static int sync_unsynced(vd_wal *w, bool now)
{
    if (!w->unsynced)
        return 0;
    if (!now) {
        if ((vd_now_s() - w->unsynced_since) * 1000.0 < w->opt.batch_ms)
            return 0;
    }
    w->unsynced = false;
    return w->vfs->ops->fdatasync(w->vfs, w->fd); /* never retried: read-only on failure */
}

static int write_bytes(vd_wal *w, uint8_t *buf, size_t len, bool *synced, double *secs);

/* The group's bytes, behind a skip record when failed groups went before
 * it: into *buf (the group's own buffer, or `own`, malloc'd, to free). */
static int group_bytes(vd_wal *w, const batch *b, uint8_t **buf, size_t *len, uint8_t **own)
{
    *own = NULL;
    *buf = b->buf;
    *len = b->len;
    if (!w->skip_first)
        return 0;
    size_t head = VD_WAL_SKIP_RECORD_LEN;
    uint8_t *p = malloc(head + b->len);
    if (!p)
        return -ENOMEM;
    vd_wal_skip_encode(p, w->skip_first, w->skip_last);
    memcpy(p + head, b->buf, b->len);
    *own = p;
    *buf = p;
    *len = head + b->len;
    return 0;
}

/* Writes one group; 0 or -errno. A failed write is cut off again. *synced
 * tells whether an fdatasync ran; *secs how long the write and sync took. */
static int write_group(vd_wal *w, const batch *b, bool *synced, double *secs)
{
    int rc;
    *synced = false;
    uint8_t *buf, *own;
    size_t len;
    if ((rc = group_bytes(w, b, &buf, &len, &own)))
        return rc;
    uint64_t first = w->skip_first ? w->skip_first : b->items[0].lsn;
    if (w->seg_off > VD_WAL_SEGMENT_HEADER_LEN && w->seg_off + len > w->opt.segment_bytes) {
        /* Roll: the old segment must be complete and synced first. */
        int old = w->fd;
        if ((rc = sync_unsynced(w, true)) || (rc = open_segment(w, first, NULL))) {
            free(own);
            return rc;
        }
        w->vfs->ops->close(w->vfs, old);
    }
    rc = write_bytes(w, buf, len, synced, secs);
    free(own);
    return rc;
}

/* Seals and writes a group's bytes at the end of the current segment. */
static int write_bytes(vd_wal *w, uint8_t *buf, size_t len, bool *synced, double *secs)
{
    int rc;
    vd_wal_records_seal(buf, len, w->salt);
    size_t n = 0;
    double t0 = vd_now_s();
    bool sync = w->opt.fsync == VD_FSYNC_ALWAYS;
    if (sync && w->vfs->ops->write_sync) {
        rc = w->vfs->ops->write_sync(w->vfs, w->fd, buf, len, w->seg_off, &n);
        if (rc && n == len)
            return rc; /* written, but the fdatasync failed: read-only */
    } else {
        rc = w->vfs->ops->pwrite(w->vfs, w->fd, buf, len, w->seg_off, &n);
        if (!rc && sync)
            if ((rc = w->vfs->ops->fdatasync(w->vfs, w->fd)))
                return rc; /* never retried: the WAL turns read-only */
    }
    if (rc) {
        if (n)
            w->vfs->ops->ftruncate(w->vfs, w->fd, w->seg_off);
        return rc;
    }
    *synced = sync;
    w->seg_off += len;
    if (w->opt.fsync == VD_FSYNC_BATCH) {
        if (!w->unsynced)
            w->unsynced_since = vd_now_s();
        w->unsynced = true;
        if ((rc = sync_unsynced(w, false)))
            return rc;
        *synced = !w->unsynced;
    }
    *secs = vd_now_s() - t0;
    return 0;
}

static void count_sync(vd_wal_stats *st, double secs)
{
    unsigned b = 0;
    while (secs > vd_wal_sync_bounds[b])
        b++;
    st->sync_hist[b]++;
    st->sync_seconds += secs;
    st->fsyncs++;
}

static void count_group(vd_wal_stats *st, size_t n, bool synced, double secs)
{
    unsigned g = 0;
    while (g + 1 < VD_WAL_GROUP_BUCKETS && n > (1u << g))
        g++;
    st->group_hist[g]++;
    if (synced)
        count_sync(st, secs);
}

/* VD_FSYNC_BATCH: a timed wait so unsynced bytes are synced within batch_ms. */
static void wait_for_work(vd_wal *w)
{
    if (!w->unsynced) {
        pthread_cond_wait(&w->work, &w->lock);
        return;
    }
    double due = w->unsynced_since + w->opt.batch_ms / 1000.0; /* on CLOCK_MONOTONIC, as `work` */
    struct timespec until = {(time_t)due, (long)((due - (double)(time_t)due) * 1e9)};
    if (pthread_cond_timedwait(&w->work, &w->lock, &until) == ETIMEDOUT && !w->queue.n) {
        pthread_mutex_unlock(&w->lock);
        double t0 = vd_now_s();
        int rc = sync_unsynced(w, true);
        double secs = vd_now_s() - t0;
        pthread_mutex_lock(&w->lock);
        if (rc && !w->st.read_only_error)
            w->st.read_only_error = rc;
        if (!rc)
            count_sync(&w->st, secs);
    }
}

static void *writer_main(void *arg)
{
    vd_wal *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->queue.n && !w->stopping)
            wait_for_work(w);
        if (!w->queue.n)
            break; /* stopping, nothing left */
        batch b = w->queue;
        w->queue = w->spare;
        w->queue.len = w->queue.n = 0;
        pthread_mutex_unlock(&w->lock);

        bool synced = false;
        double secs = 0;
        int rc = w->st.read_only_error ? -EROFS : write_group(w, &b, &synced, &secs);

        /* Publish the group's outcome before telling its writers, so that a
         * writer who has its answer also sees it in the stats and state. */
        pthread_mutex_lock(&w->lock);
        w->st.groups++;
        if (rc) {
            w->st.failed_groups++;
            if (rc != -ENOSPC && !w->st.read_only_error)
                w->st.read_only_error = rc;
            /* Its LSNs were handed out and will never be written: the next
             * group written says so (group_bytes). */
            if (!w->skip_first)
                w->skip_first = b.items[0].lsn;
            w->skip_last = b.items[b.n - 1].lsn;
        } else {
            w->skip_first = w->skip_last = 0;
            count_group(&w->st, b.n, synced, secs);
            w->st.records += b.n;
            w->st.bytes += b.len;
            w->st.durable_lsn = b.items[b.n - 1].lsn;
        }
        pthread_mutex_unlock(&w->lock);
        for (size_t i = 0; i < b.n; i++)
            if (b.items[i].cb)
                b.items[i].cb(b.items[i].ctx, b.items[i].lsn, rc);
        pthread_mutex_lock(&w->lock);
        w->spare = b;
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int vd_wal_open(vd_wal **out, vd_vfs *vfs, const char *dir, uint64_t first_lsn,
                const vd_wal_options *opt, vd_errmsg *em)
{
    vd_wal *w = calloc(1, sizeof *w);
    if (!w || !(w->dir = strdup(dir))) {
        free(w);
        return vd_fail(em, -ENOMEM, "out of memory");
    }
    w->vfs = vfs;
    w->opt = *opt;
    if (w->opt.segment_bytes < 4096)
        w->opt.segment_bytes = 4096;
    w->next_lsn = first_lsn ? first_lsn : 1;
    w->st.next_lsn = w->next_lsn;
    pthread_mutex_init(&w->lock, NULL);
    vd_cond_init_monotonic(&w->work); /* wait_for_work's deadline */
    pthread_cond_init(&w->done, NULL);
    int rc = open_segment(w, w->next_lsn, em);
    if (!rc && pthread_create(&w->thread, NULL, writer_main, w) != 0)
        rc = vd_fail(em, -EAGAIN, "cannot start the WAL writer thread");
    if (rc) {
        if (w->fd > 0)
            vfs->ops->close(vfs, w->fd);
        pthread_cond_destroy(&w->done);
        pthread_cond_destroy(&w->work);
        pthread_mutex_destroy(&w->lock);
        free(w->dir);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

static void batch_free(batch *b)
{
    free(b->buf);
    free(b->items);
}

void vd_wal_close(vd_wal *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    if (sync_unsynced(w, true) == 0 && w->opt.fsync == VD_FSYNC_NONE)
        w->vfs->ops->fdatasync(w->vfs, w->fd); /* a clean stop leaves nothing unsynced */
    w->vfs->ops->close(w->vfs, w->fd);
    batch_free(&w->queue);
    batch_free(&w->spare);
    pthread_cond_destroy(&w->done);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->lock);
    free(w->dir);
    free(w);
}

static int reserve(batch *b, size_t bytes)
{
    if (b->len + bytes > b->cap) {
        size_t cap = b->cap ? b->cap : 64 * 1024;
        while (cap < b->len + bytes)
            cap *= 2;
        uint8_t *nb = realloc(b->buf, cap);
        if (!nb)
            return -ENOMEM;
        b->buf = nb;
        b->cap = cap;
    }
    if (b->n == b->items_cap) {
        size_t cap = b->items_cap ? b->items_cap * 2 : 256;
        pending *ni = realloc(b->items, cap * sizeof *ni);
        if (!ni)
            return -ENOMEM;
        b->items = ni;
        b->items_cap = cap;
    }
    return 0;
}

int vd_wal_append_async(vd_wal *w, uint8_t type, const void *body, uint32_t len,
                        vd_wal_done_cb cb, void *ctx, uint64_t *lsn)
{
    if (len > VD_WAL_MAX_BODY)
        return -EMSGSIZE;
    pthread_mutex_lock(&w->lock);
    int rc = w->st.read_only_error ? -EROFS : w->stopping ? -ESHUTDOWN : 0;
    if (!rc)
        rc = reserve(&w->queue, VD_WAL_RECORD_HEADER_LEN + (size_t)len);
    if (!rc) {
        uint64_t l = w->next_lsn++;
        /* checksummed by the writer once it knows the segment's salt */
        w->queue.len += vd_wal_record_encode(w->queue.buf + w->queue.len, 0, l, type, body, len);
        w->queue.items[w->queue.n++] = (pending){l, cb, ctx};
        w->st.next_lsn = w->next_lsn;
        if (lsn)
            *lsn = l;
        pthread_cond_signal(&w->work);
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

typedef struct ticket {
    vd_wal *w;
    bool done;
    int err;
} ticket;

static void ticket_done(void *ctx, uint64_t lsn, int err)
{
    (void)lsn;
    ticket *t = ctx;
    pthread_mutex_lock(&t->w->lock);
    t->done = true;
    t->err = err;
    pthread_cond_broadcast(&t->w->done);
    pthread_mutex_unlock(&t->w->lock);
}

int vd_wal_append(vd_wal *w, uint8_t type, const void *body, uint32_t len, uint64_t *lsn)
{
    ticket t = {.w = w};
    int rc = vd_wal_append_async(w, type, body, len, ticket_done, &t, lsn);
    if (rc)
        return rc;
    pthread_mutex_lock(&w->lock);
    while (!t.done)
        pthread_cond_wait(&w->done, &w->lock);
    pthread_mutex_unlock(&w->lock);
    return t.err;
}

void vd_wal_stats_get(vd_wal *w, vd_wal_stats *st)
{
    pthread_mutex_lock(&w->lock);
    *st = w->st;
    pthread_mutex_unlock(&w->lock);
}

int vd_wal_remove_through(vd_wal *w, uint64_t lsn, size_t *removed)
{
    *removed = 0;
    uint64_t *firsts;
    size_t n;
    int rc = vd_wal_list_segments(w->dir, &firsts, &n);
    if (rc)
        return rc;
    pthread_mutex_lock(&w->lock);
    uint64_t current = w->cur_first_lsn;
    pthread_mutex_unlock(&w->lock);
    /* Segment i holds LSNs [firsts[i], firsts[i + 1]). */
    for (size_t i = 0; i + 1 < n && !rc; i++) {
        if (firsts[i] >= current || firsts[i + 1] - 1 > lsn)
            break;
        char path[1100];
        vd_wal_segment_path(path, sizeof path, w->dir, firsts[i]);
        if (!(rc = w->vfs->ops->unlink(w->vfs, path)))
            (*removed)++;
    }
    free(firsts);
    if (*removed && !rc)
        rc = w->vfs->ops->sync_dir(w->vfs, w->dir);
    return rc;
}

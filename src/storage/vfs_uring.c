/*
 * vfs_uring.c — the WAL's file I/O on io_uring (liburing): writes and
 * fdatasyncs are submitted to a ring, and a group's write and its
 * fdatasync go in one submission, linked, so a group commit costs one
 * system call. Everything else (open, rename, …) is the POSIX vfs. The ring
 * is shared under a mutex; the WAL writer is its only busy user.
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vectord/vfs.h"

typedef struct uring_vfs {
    vd_vfs vfs;     /* first: the ops dispatch on it */
    vd_vfs_ops ops; /* posix ops with pwrite, fdatasync and write_sync replaced */
    struct io_uring ring;
    pthread_mutex_t lock;
} uring_vfs;

static uring_vfs *of(vd_vfs *v) { return (uring_vfs *)v; }

/* Submits what is prepared and reaps n completions into res[]. */
static int run(uring_vfs *u, unsigned n, int *res)
{
    int rc = io_uring_submit_and_wait(&u->ring, n);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < n; i++) {
        struct io_uring_cqe *cqe;
        if ((rc = io_uring_wait_cqe(&u->ring, &cqe)) < 0)
            return rc;
        res[io_uring_cqe_get_data64(cqe)] = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
    }
    return 0;
}

static int prep_write(uring_vfs *u, int fd, const void *buf, size_t len, uint64_t off, bool link)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_write(sqe, fd, buf, (unsigned)(len > (1u << 30) ? (1u << 30) : len), off);
    io_uring_sqe_set_data64(sqe, 0);
    if (link)
        sqe->flags |= IOSQE_IO_LINK;
    return 0;
}

static int prep_fsync(uring_vfs *u, int fd, uint64_t slot)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, slot);
    return 0;
}

/* Writes len bytes at off; with sync, the last write is linked to an
 * fdatasync in the same submission. */
static int write_maybe_sync(uring_vfs *u, int fd, const void *buf, size_t len, uint64_t off,
                            size_t *written, bool sync)
{
    size_t done = 0;
    int rc = 0;
    bool synced = false;
    pthread_mutex_lock(&u->lock);
    while (done < len && !rc) {
        size_t chunk = len - done;
        bool last = chunk <= (1u << 30);
        bool link = sync && last;
        int res[2] = {0, 0};
        if ((rc = prep_write(u, fd, (const char *)buf + done, chunk, off + done, link)) ||
            (link && (rc = prep_fsync(u, fd, 1))) || (rc = run(u, link ? 2 : 1, res)))
            break;
        if (res[0] < 0 && res[0] != -EINTR && res[0] != -EAGAIN) {
            rc = res[0];
            break;
        }
        if (res[0] > 0)
            done += (size_t)res[0];
        if (link && done == len) {
            /* A short write breaks the chain (the fsync is then cancelled). */
            if (res[1] < 0 && res[1] != -ECANCELED)
                rc = res[1];
            synced = res[1] == 0;
        }
    }
    if (!rc && sync && !synced) {
        int res[2] = {0, 0};
        if (!(rc = prep_fsync(u, fd, 0)) && !(rc = run(u, 1, res)))
            rc = res[0] < 0 ? res[0] : 0;
    }
    pthread_mutex_unlock(&u->lock);
    *written = done;
    return rc;
}

static int ur_pwrite(vd_vfs *v, int fd, const void *buf, size_t len, uint64_t off, size_t *written)
{
    return write_maybe_sync(of(v), fd, buf, len, off, written, false);
}

static int ur_write_sync(vd_vfs *v, int fd, const void *buf, size_t len, uint64_t off,
                         size_t *written)
{
    return write_maybe_sync(of(v), fd, buf, len, off, written, true);
}

static int ur_fdatasync(vd_vfs *v, int fd)
{
    uring_vfs *u = of(v);
    int res[1] = {0};
    pthread_mutex_lock(&u->lock);
    int rc = prep_fsync(u, fd, 0);
    if (!rc)
        rc = run(u, 1, res);
    pthread_mutex_unlock(&u->lock);
    return rc ? rc : res[0] < 0 ? res[0] : 0;
}

int vd_vfs_uring_create(vd_vfs **out)
{
    uring_vfs *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    int rc = io_uring_queue_init(8, &u->ring, 0);
    if (rc < 0) {
        free(u);
        return rc; /* -ENOSYS (old kernel), -EPERM (seccomp, sysctl) … */
    }
    /* A ring can be set up yet refuse work under some sandboxes: try a no-op. */
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    int res[1] = {0};
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, 0);
    pthread_mutex_init(&u->lock, NULL);
    if ((rc = run(u, 1, res)) < 0 || (rc = res[0]) < 0) {
        io_uring_queue_exit(&u->ring);
        pthread_mutex_destroy(&u->lock);
        free(u);
        return rc;
    }
    u->ops = *vd_vfs_posix()->ops;
    u->ops.pwrite = ur_pwrite;
    u->ops.fdatasync = ur_fdatasync;
    u->ops.write_sync = ur_write_sync;
    u->vfs.ops = &u->ops;
    *out = &u->vfs;
    return 0;
}

void vd_vfs_uring_destroy(vd_vfs *v)
{
    if (!v)
        return;
    uring_vfs *u = of(v);
    io_uring_queue_exit(&u->ring);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

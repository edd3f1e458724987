/* vfs.c — the POSIX file system and the fault-injecting wrapper (vfs.h). */
#include "vectord/vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- POSIX ------------------------------------------------------------------ */

static int px_open(vd_vfs *vfs, const char *path, int flags, int mode, int *fd)
{
    (void)vfs;
    int r;
    do
        r = open(path, flags | O_CLOEXEC, mode);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    *fd = r;
    return 0;
}

static int px_pwrite(vd_vfs *vfs, int fd, const void *buf, size_t len, uint64_t off, size_t *written)
{
    (void)vfs;
    size_t done = 0;
    while (done < len) {
        ssize_t r = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *written = done;
            return -errno;
        }
        done += (size_t)r;
    }
    *written = done;
    return 0;
}

static int px_pread(vd_vfs *vfs, int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    (void)vfs;
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *got = done;
            return -errno;
        }
        if (r == 0)
            break; /* end of file */
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

static int px_fdatasync(vd_vfs *vfs, int fd)
{
    (void)vfs;
    return fdatasync(fd) == 0 ? 0 : -errno; /* never retried: see STYLE.md */
}

static int px_ftruncate(vd_vfs *vfs, int fd, uint64_t len)
{
    (void)vfs;
    return ftruncate(fd, (off_t)len) == 0 ? 0 : -errno;
}

static int px_close(vd_vfs *vfs, int fd)
{
    (void)vfs;
    return close(fd) == 0 ? 0 : -errno;
}

static int px_rename(vd_vfs *vfs, const char *from, const char *to)
{
    (void)vfs;
    return rename(from, to) == 0 ? 0 : -errno;
}

static int px_unlink(vd_vfs *vfs, const char *path)
{
    (void)vfs;
    return unlink(path) == 0 ? 0 : -errno;
}

static int px_sync_dir(vd_vfs *vfs, const char *dir)
{
    (void)vfs;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static const vd_vfs_ops posix_ops = {
    px_open, px_pwrite, px_pread, px_fdatasync, px_ftruncate, px_close, px_rename, px_unlink,
    px_sync_dir, NULL,
};

static vd_vfs posix_vfs = {&posix_ops};

vd_vfs *vd_vfs_posix(void) { return &posix_vfs; }

/* ---- fault injection ------------------------------------------------------------ */

typedef struct tracked {
    char *path;
    int fd; /* -1 once closed */
    uint64_t size;   /* bytes written (high-water mark) */
    uint64_t synced; /* size at the last fdatasync */
} tracked;

struct vd_vfs_faulty {
    vd_vfs vfs;
    vd_vfs *inner; /* borrowed */
    vd_fault_kind kind;
    uint64_t at_op, ops;
    int error;
    uint32_t torn;
    bool crashed;
    tracked *files;
    size_t n_files;
};

static vd_vfs_faulty *of(vd_vfs *v) { return (vd_vfs_faulty *)v; }

static tracked *by_fd(vd_vfs_faulty *f, int fd)
{
    for (size_t i = 0; i < f->n_files; i++)
        if (f->files[i].fd == fd)
            return &f->files[i];
    return NULL;
}

/* Cuts every written file back to what survives the crash. */
static void apply_crash(vd_vfs_faulty *f)
{
    f->crashed = true;
    for (size_t i = 0; i < f->n_files; i++) {
        tracked *t = &f->files[i];
        uint64_t keep = t->synced + f->torn;
        if (keep > t->size)
            keep = t->size;
        int fd;
        if (f->inner->ops->open(f->inner, t->path, O_WRONLY, 0, &fd) == 0) {
            f->inner->ops->ftruncate(f->inner, fd, keep);
            f->inner->ops->close(f->inner, fd);
        }
    }
}

/* Counts an operation; returns nonzero (an error to return) if it must fail. */
static int gate(vd_vfs_faulty *f, bool is_write)
{
    if (f->crashed)
        return -EIO;
    if (++f->ops != f->at_op)
        return 0;
    switch (f->kind) {
    case VD_FAULT_ERROR:
        return -f->error;
    case VD_FAULT_SHORT_WRITE:
        return is_write ? 1 : -f->error; /* 1: the caller writes half */
    case VD_FAULT_CRASH:
        apply_crash(f);
        return -EIO;
    default:
        return 0;
    }
}

static int ft_open(vd_vfs *v, const char *path, int flags, int mode, int *fd)
{
    vd_vfs_faulty *f = of(v);
    int g = gate(f, false);
    if (g)
        return g;
    int rc = f->inner->ops->open(f->inner, path, flags, mode, fd);
    if (rc || !(flags & (O_WRONLY | O_RDWR)))
        return rc;
    tracked *t = NULL;
    for (size_t i = 0; i < f->n_files && !t; i++)
        if (strcmp(f->files[i].path, path) == 0)
            t = &f->files[i];
    if (!t) {
        tracked *arr = realloc(f->files, (f->n_files + 1) * sizeof *arr);
        char *copy = strdup(path);
        if (!arr || !copy) {
            free(copy);
            if (arr)
                f->files = arr;
            f->inner->ops->close(f->inner, *fd);
            return -ENOMEM;
        }
        f->files = arr;
        t = &f->files[f->n_files++];
        off_t end = lseek(*fd, 0, SEEK_END); /* what existed before is durable */
        *t = (tracked){.path = copy, .size = end > 0 ? (uint64_t)end : 0};
        t->synced = t->size;
    }
    if (flags & O_TRUNC)
        t->size = t->synced = 0;
    t->fd = *fd;
    return 0;
}

static int ft_pwrite(vd_vfs *v, int fd, const void *buf, size_t len, uint64_t off, size_t *written)
{
    vd_vfs_faulty *f = of(v);
    int g = gate(f, true);
    *written = 0;
    if (g < 0)
        return g;
    size_t n = g == 1 ? len / 2 : len;
    int rc = f->inner->ops->pwrite(f->inner, fd, buf, n, off, written);
    tracked *t = by_fd(f, fd);
    if (t && off + *written > t->size)
        t->size = off + *written;
    if (!rc && g == 1)
        rc = -f->error;
    return rc;
}

static int ft_pread(vd_vfs *v, int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    vd_vfs_faulty *f = of(v);
    int g = gate(f, false);
    *got = 0;
    return g ? g : f->inner->ops->pread(f->inner, fd, buf, len, off, got);
}

static int ft_fdatasync(vd_vfs *v, int fd)
{
    vd_vfs_faulty *f = of(v);
    int g = gate(f, false);
    if (g)
        return g;
    int rc = f->inner->ops->fdatasync(f->inner, fd);
    tracked *t = by_fd(f, fd);
    if (!rc && t)
        t->synced = t->size;
    return rc;
}

static int ft_ftruncate(vd_vfs *v, int fd, uint64_t len)
{
    vd_vfs_faulty *f = of(v);
    int g = gate(f, false);
    if (g)
        return g;
    int rc = f->inner->ops->ftruncate(f->inner, fd, len);
    tracked *t = by_fd(f, fd);
    if (!rc && t) {
        t->size = len;
        if (t->synced > len)
            t->synced = len;
    }
    return rc;
}

static int ft_close(vd_vfs *v, int fd)
{
    vd_vfs_faulty *f = of(v);
    tracked *t = by_fd(f, fd);
    if (t)
        t->fd = -1; /* unsynced data is still at risk after close */
    int g = gate(f, false);
    if (g) {
        f->inner->ops->close(f->inner, fd); /* never leak the descriptor */
        return g;
    }
    return f->inner->ops->close(f->inner, fd);
}

static int ft_rename(vd_vfs *v, const char *from, const char *to)
{
    vd_vfs_faulty *f = of(v);
    int g = gate(f, false);
    if (g)
        return g;
    int rc = f->inner->ops->rename(f->inner, from, to);
    /* The file that had the name `to` is gone: stop tracking it. */
    for (size_t i = 0; !rc && i < f->n_files;) {
        if (strcmp(f->files[i].path, to) == 0) {
            free(f->files[i].path);
            f->files[i] = f->files[--f->n_files];
        } else {
            i++;
        }
    }
    for (size_t i = 0; !rc && i < f->n_files; i++) {
        if (strcmp(f->files[i].path, from) == 0) {
            char *copy = strdup(to);
            if (copy) {
                free(f->files[i].path);
                f->files[i].path = copy;
            }
        }
    }
    return rc;
}

static int ft_unlink(vd_vfs *v, const char *path)
{
    vd_vfs_faulty *f = of(v);
    int g = gate(f, false);
    return g ? g : f->inner->ops->unlink(f->inner, path);
}

static int ft_sync_dir(vd_vfs *v, const char *dir)
{
    vd_vfs_faulty *f = of(v);
    int g = gate(f, false);
    return g ? g : f->inner->ops->sync_dir(f->inner, dir);
}

static const vd_vfs_ops faulty_ops = {
    ft_open, ft_pwrite, ft_pread, ft_fdatasync, ft_ftruncate, ft_close, ft_rename, ft_unlink,
    ft_sync_dir, NULL,
};

int vd_vfs_faulty_create(vd_vfs_faulty **out, vd_vfs *base, vd_fault_kind kind, uint64_t at_op,
                         int error, uint32_t torn_bytes)
{
    vd_vfs_faulty *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->vfs.ops = &faulty_ops;
    f->inner = base;
    f->kind = kind;
    f->at_op = at_op;
    f->error = error ? error : EIO;
    f->torn = torn_bytes;
    *out = f;
    return 0;
}

void vd_vfs_faulty_destroy(vd_vfs_faulty *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_files; i++)
        free(f->files[i].path);
    free(f->files);
    free(f);
}

vd_vfs *vd_vfs_faulty_vfs(vd_vfs_faulty *f) { return &f->vfs; }
uint64_t vd_vfs_faulty_ops(const vd_vfs_faulty *f) { return f->ops; }
int vd_vfs_faulty_has_crashed(const vd_vfs_faulty *f) { return f->crashed; }

/* ---- helpers over any vfs ---------------------------------------------------- */

int vd_vfs_read_file(vd_vfs *vfs, const char *path, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int fd, rc = vfs->ops->open(vfs, path, O_RDONLY, 0, &fd);
    if (rc)
        return rc;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        size_t got = 0;
        if ((rc = vfs->ops->pread(vfs, fd, buf + n, cap - n, n, &got)))
            break;
        n += got;
        if (n < cap) {
            *data = buf;
            *len = n;
            buf = NULL;
            break;
        }
    }
    if (!rc && !*data)
        rc = -ENOMEM;
    free(buf);
    vfs->ops->close(vfs, fd);
    return rc;
}

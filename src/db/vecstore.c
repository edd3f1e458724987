/* vecstore.c — see vecstore.h. */
#include "db/vecstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/bigmem.h"

/* An unnamed file in dir; where O_TMPFILE is not supported (some file
 * systems), a named one removed at once. */
static int open_unnamed(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd >= 0 ? fd : -errno;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/vectors-XXXXXX", dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unlink(path);
    return fd;
}

int vd_vecstore_init(vd_vecstore *vs, uint32_t dim, vd_quant quant, const char *disk_dir)
{
    *vs = (vd_vecstore){.dim = dim, .quant = quant, .fd = -1,
                        .code_size = vd_quant_code_size(quant, dim)};
    if (!disk_dir)
        return 0;
    mkdir(disk_dir, 0700); /* may exist */
    int fd = open_unnamed(disk_dir);
    if (fd < 0)
        return fd;
    vs->fd = fd;
    vs->on_disk = true;
    return 0;
}

static size_t row_bytes(const vd_vecstore *vs) { return (size_t)vs->dim * sizeof(float); }

void vd_vecstore_destroy(vd_vecstore *vs)
{
    if (vs->fd >= 0)
        close(vs->fd);
    vd_bigmem_free(vs->ram, vs->ram_bytes);
    vd_bigmem_free(vs->codes, vs->codes_bytes);
    *vs = (vd_vecstore){.fd = -1};
}


int vd_vecstore_reserve(vd_vecstore *vs, uint32_t cap)
{
    if (cap <= vs->cap)
        return 0;
    if (vs->code_size) {
        size_t bytes = (size_t)cap * vs->code_size;
        uint8_t *c = vd_bigmem_resize(vs->codes, vs->codes_bytes, bytes);
        if (!c)
            return -ENOMEM;
        vs->codes = c;
        vs->codes_bytes = bytes;
    }
    if (vs->on_disk) {
        int rc = posix_fallocate(vs->fd, 0, (off_t)((size_t)cap * row_bytes(vs)));
        if (rc)
            return rc == ENOSPC ? -ENOSPC : rc == ENOMEM ? -ENOMEM : -EIO;
    } else {
        size_t bytes = (size_t)cap * row_bytes(vs);
        float *r = vd_bigmem_resize(vs->ram, vs->ram_bytes, bytes);
        if (!r)
            return -ENOMEM;
        vs->ram = r;
        vs->ram_bytes = bytes;
    }
    vs->cap = cap;
    return 0;
}

/* Full pread/pwrite of n bytes at off: 0 or a negative errno. */
static int io_all(int fd, void *buf, size_t n, off_t off, bool write)
{
    char *p = buf;
    while (n) {
        ssize_t got = write ? pwrite(fd, p, n, off) : pread(fd, p, n, off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? -errno : -EIO; /* 0: the file is shorter than it must be */
        p += got;
        n -= (size_t)got;
        off += got;
    }
    return 0;
}

int vd_vecstore_put(vd_vecstore *vs, uint32_t slot, const float *x)
{
    if (slot >= vs->cap)
        return -ERANGE;
    if (!vs->on_disk) {
        memcpy(vs->ram + (size_t)slot * vs->dim, x, row_bytes(vs));
    } else {
        off_t off = (off_t)((size_t)slot * row_bytes(vs));
        int rc = io_all(vs->fd, (void *)x, row_bytes(vs), off, true);
        if (rc) /* the slot's code is left as it was */
            return rc == -ENOSPC || rc == -EDQUOT ? -ENOSPC : -EIO;
    }
    if (vs->code_size)
        vd_quant_encode(vs->quant, x, vs->dim, vs->codes + (size_t)slot * vs->code_size);
    return 0;
}

int vd_vecstore_read(const vd_vecstore *vs, uint32_t first, uint32_t n, float *buf)
{
    if (!vs->on_disk) {
        memcpy(buf, vs->ram + (size_t)first * vs->dim, (size_t)n * row_bytes(vs));
        return 0;
    }
    return io_all(vs->fd, buf, (size_t)n * row_bytes(vs), (off_t)((size_t)first * row_bytes(vs)),
                  false) ? -EIO : 0;
}

const float *vd_vecstore_get(const vd_vecstore *vs, uint32_t slot, float *buf)
{
    if (!vs->on_disk)
        return vs->ram + (size_t)slot * vs->dim;
    if (io_all(vs->fd, buf, row_bytes(vs), (off_t)((size_t)slot * row_bytes(vs)), false))
        return NULL;
    return buf;
}

size_t vd_vecstore_code_bytes(const vd_vecstore *vs) { return (size_t)vs->cap * vs->code_size; }

size_t vd_vecstore_ram_bytes(const vd_vecstore *vs)
{
    return vs->on_disk ? 0 : (size_t)vs->cap * row_bytes(vs);
}

size_t vd_vecstore_disk_bytes(const vd_vecstore *vs)
{
    return vs->on_disk ? (size_t)vs->cap * row_bytes(vs) : 0;
}

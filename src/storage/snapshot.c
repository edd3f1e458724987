/* snapshot.c — see snapshot.h for the byte layout. */
#include "vectord/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "util/bytes.h"
#include "vectord/crc32c.h"

static const char MAGIC[8] = {'V', 'E', 'C', 'T', 'D', 'S', 'N', 'P'};
static const char END_MAGIC[4] = {'S', 'E', 'N', 'D'};

void vd_snapshot_begin(vd_strbuf *out, vd_snapshot_kind kind, uint64_t lsn)
{
    vd_put_bytes(out, MAGIC, 8);
    vd_put_u32(out, VD_SNAPSHOT_FORMAT_VERSION);
    vd_put_u32(out, (uint32_t)kind);
    vd_put_u64(out, lsn);
}

int vd_snapshot_commit(vd_strbuf *img, vd_vfs *vfs, const char *dir, const char *name,
                       vd_errmsg *em)
{
    size_t body_len = img->len - VD_SNAPSHOT_HEADER_LEN;
    uint32_t crc = vd_crc32c(0, img->data, img->len);
    vd_put_u64(img, body_len);
    vd_put_u32(img, crc);
    vd_put_bytes(img, END_MAGIC, 4);
    if (img->failed)
        return vd_fail(em, -ENOMEM, "out of memory building snapshot %s/%s", dir, name);
    char tmp[1200], path[1200];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd, rc = vfs->ops->open(vfs, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640, &fd);
    if (rc)
        return vd_fail(em, rc, "cannot create %s: %s", tmp, strerror(-rc));
    size_t n;
    const char *step = "write";
    rc = vfs->ops->pwrite(vfs, fd, img->data, img->len, 0, &n);
    if (!rc && (step = "fdatasync", rc = vfs->ops->fdatasync(vfs, fd)) == 0) {
        vfs->ops->close(vfs, fd);
        fd = -1;
        if ((step = "rename", rc = vfs->ops->rename(vfs, tmp, path)) == 0)
            step = "directory fsync", rc = vfs->ops->sync_dir(vfs, dir);
    }
    if (fd >= 0)
        vfs->ops->close(vfs, fd);
    if (rc) {
        if (strcmp(step, "rename") != 0 && strcmp(step, "directory fsync") != 0)
            vfs->ops->unlink(vfs, tmp);
        return vd_fail(em, rc, "cannot write snapshot %s (%s): %s", path, step, strerror(-rc));
    }
    return 0;
}

int vd_snapshot_open(const uint8_t *img, size_t len, vd_snapshot_view *out, vd_errmsg *em)
{
    if (len < VD_SNAPSHOT_HEADER_LEN + VD_SNAPSHOT_TRAILER_LEN)
        return vd_fail(em, VD_E_INVALID_REQUEST, "file is %zu bytes, shorter than a snapshot", len);
    if (memcmp(img, MAGIC, 8) != 0)
        return vd_fail(em, VD_E_INVALID_REQUEST, "bad magic at offset 0 (not a vectord snapshot)");
    vd_reader r = vd_reader_of(img + 8, 16);
    out->version = vd_get_u32(&r);
    out->kind = (vd_snapshot_kind)vd_get_u32(&r);
    out->lsn = vd_get_u64(&r);
    if (out->version != VD_SNAPSHOT_FORMAT_VERSION)
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "format version %u at offset 8, this vectord reads version %u",
                       out->version, VD_SNAPSHOT_FORMAT_VERSION);
    const uint8_t *tr = img + len - VD_SNAPSHOT_TRAILER_LEN;
    vd_reader t = vd_reader_of(tr, VD_SNAPSHOT_TRAILER_LEN);
    uint64_t body_len = vd_get_u64(&t);
    uint32_t crc = vd_get_u32(&t);
    if (memcmp(tr + 12, END_MAGIC, 4) != 0 ||
        body_len != len - VD_SNAPSHOT_HEADER_LEN - VD_SNAPSHOT_TRAILER_LEN)
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "bad trailer at offset %zu (the file is cut short or overwritten)",
                       len - VD_SNAPSHOT_TRAILER_LEN);
    uint32_t got = vd_crc32c(0, img, len - VD_SNAPSHOT_TRAILER_LEN);
    if (got != crc)
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "checksum mismatch over bytes 0..%zu (stored %08x, computed %08x)",
                       len - VD_SNAPSHOT_TRAILER_LEN, crc, got);
    out->body = img + VD_SNAPSHOT_HEADER_LEN;
    out->body_len = (size_t)body_len;
    return 0;
}

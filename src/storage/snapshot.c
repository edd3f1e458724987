/*
 * snapshot.c — snapshot files (snapshot.h). Byte layout, all integers
 * little-endian, floats as IEEE-754 binary32 little-endian:
 *
 * Container (every snapshot file):
 *   offset   size  field
 *   0        8     magic "VECTDSNP"
 *   8        4     u32 format version (VD_SNAPSHOT_FORMAT_VERSION = 2; 1 is read
 *                  the same: 2 only says a manifest accompanies the file)
 *   12       4     u32 kind: 1 collection, 2 shard, 3 feeds, 4 manifest
 *   16       8     u64 LSN: the last WAL record the body reflects
 *   24       B     body (below)
 *   24+B     8     u64 B
 *   32+B     4     u32 CRC32C (Castagnoli) of bytes [0, 24+B)
 *   36+B     4     magic "SEND"
 *
 * Body of kind 1, collection.snap (src/write/checkpoint.c): the body of the
 *   collection's CREATE_COLLECTION WAL record (layout in src/write/mutation.c),
 *   with its payload indexes as they are now, then u64 incarnation.
 *
 * Body of kind 2, shard-<i>.snap (src/db/shard_image.c vd_shard_save):
 *   u32 dim | u8 metric | u32 n_slots (S) | alive bitset: ceil(S/64) u64 |
 *   dead (tombstone) bitset: ceil(S/64) u64 | u32 n_free | n_free × u32 slot |
 *   S × slot record: u8 id kind (0 = no point; 1 = integer: u64; 2 = string:
 *       u16 length + bytes), and for a point: u64 version, u32 payload length
 *       + payload JSON text (0 = none) |
 *   S × dim × f32 vectors |
 *   u8 has_index_image | index image (HNSW, src/index/hnsw.c hnsw_save):
 *       u32 entry slot, i32 top level (-1 = empty graph), then per slot:
 *       i8 level (-1 = not in the graph) and, for levels 0..level,
 *       u32 link count + count × u32 neighbour slot;
 *     or (IVF, the table at the top of src/index/ivf.c): u32 n_lists, u32 dim,
 *       u8 metric, u64 trained points, centroids, S × u32 list of each slot.
 *   then (format 2; absent in older files) the versions of deleted points
 *       (src/db/graveyard.c): u32 n, n × (id as in a slot record, u64 version),
 *       oldest first.
 *
 * Body of kind 3, snapshots/feeds.snap (src/write/checkpoint.c): u32 n, then n ×
 *   (u32 length + the body of a FEED_STATE WAL record (src/write/mutation.c),
 *   u64 LSN of the record that set that state).
 *
 * Body of kind 4, snapshots/manifest.snap (src/write/manifest.c), header LSN
 *   = the covered LSN: u64 covered LSN (every WAL record up to it is in the
 *   snapshots) | u64 WAL end (the last LSN assigned when it was written) |
 *   u32 n collections, n × (u64 incarnation, u32 n_shards, u16 length + name) |
 *   u32 n files, n × (u16 length + path relative to snapshots/, u64 file size,
 *   u32 the CRC in its trailer, u64 the LSN in its header).
 */
#include "vectord/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include "util/bytes.h"
#include "vectord/crc32c.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "images copy integers and floats as LE");
_Static_assert(sizeof(float) == 4, "vectors are stored as binary32");

static const char MAGIC[8] = {'V', 'E', 'C', 'T', 'D', 'S', 'N', 'P'};
static const char END_MAGIC[4] = {'S', 'E', 'N', 'D'};

void vd_snapshot_begin(vd_strbuf *out, vd_snapshot_kind kind, uint64_t lsn)
{
    vd_put_bytes(out, MAGIC, 8);
    vd_put_u32(out, VD_SNAPSHOT_FORMAT_VERSION);
    vd_put_u32(out, (uint32_t)kind);
    vd_put_u64(out, lsn);
}

int vd_snapshot_writer_open(vd_snapshot_writer *w, vd_vfs *vfs, const char *dir, const char *name,
                            vd_errmsg *em)
{
    *w = (vd_snapshot_writer){.vfs = vfs, .fd = -1};
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    snprintf(w->tmp, sizeof w->tmp, "%s/%s.tmp", dir, name);
    snprintf(w->path, sizeof w->path, "%s/%s", dir, name);
    int rc = vfs->ops->open(vfs, w->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640, &w->fd);
    if (rc) {
        w->fd = -1;
        return vd_fail(em, rc, "cannot create %s: %s", w->tmp, strerror(-rc));
    }
    return 0;
}

void vd_snapshot_writer_write(vd_snapshot_writer *w, const void *p, size_t n)
{
    if (w->rc || n == 0)
        return;
    size_t done;
    int rc = w->vfs->ops->pwrite(w->vfs, w->fd, p, n, w->off, &done);
    if (rc) {
        w->rc = rc;
        w->step = "write";
        return;
    }
    w->crc = vd_crc32c(w->crc, p, n);
    w->off += n;
}

void vd_snapshot_writer_flush(vd_snapshot_writer *w, vd_strbuf *b)
{
    if (b->failed && !w->rc) {
        w->rc = -ENOMEM;
        w->step = "build";
    }
    vd_snapshot_writer_write(w, b->data, b->len);
    b->len = 0;
    b->failed = false;
}

void vd_snapshot_writer_abort(vd_snapshot_writer *w)
{
    if (w->fd >= 0) {
        w->vfs->ops->close(w->vfs, w->fd);
        w->vfs->ops->unlink(w->vfs, w->tmp);
    }
    w->fd = -1;
}

int vd_snapshot_writer_commit(vd_snapshot_writer *w, vd_errmsg *em)
{
    uint8_t trailer[VD_SNAPSHOT_TRAILER_LEN];
    uint64_t body_len = w->off >= VD_SNAPSHOT_HEADER_LEN ? w->off - VD_SNAPSHOT_HEADER_LEN : 0;
    uint32_t crc = w->crc;
    for (int i = 0; i < 8; i++)
        trailer[i] = (uint8_t)(body_len >> (8 * i));
    for (int i = 0; i < 4; i++)
        trailer[8 + i] = (uint8_t)(crc >> (8 * i));
    memcpy(trailer + 12, END_MAGIC, 4);
    vd_snapshot_writer_write(w, trailer, sizeof trailer);
    vd_vfs *vfs = w->vfs;
    int rc = w->rc;
    const char *step = rc ? w->step : "fdatasync";
    if (!rc && (rc = vfs->ops->fdatasync(vfs, w->fd)) == 0) {
        vfs->ops->close(vfs, w->fd);
        w->fd = -1;
        if ((step = "rename", rc = vfs->ops->rename(vfs, w->tmp, w->path)) == 0)
            step = "directory fsync", rc = vfs->ops->sync_dir(vfs, w->dir);
    }
    if (rc) {
        bool renamed = strcmp(step, "directory fsync") == 0;
        if (!renamed)
            vd_snapshot_writer_abort(w);
        if (rc == -ENOMEM)
            return vd_fail(em, rc, "out of memory building snapshot %s", w->path);
        return vd_fail(em, rc, "cannot write snapshot %s (%s): %s", w->path, step, strerror(-rc));
    }
    return 0;
}

int vd_snapshot_commit(vd_strbuf *img, vd_vfs *vfs, const char *dir, const char *name,
                       vd_errmsg *em)
{
    if (img->failed)
        return vd_fail(em, -ENOMEM, "out of memory building snapshot %s/%s", dir, name);
    vd_snapshot_writer w;
    int rc = vd_snapshot_writer_open(&w, vfs, dir, name, em);
    if (rc)
        return rc;
    vd_snapshot_writer_write(&w, img->data, img->len);
    return vd_snapshot_writer_commit(&w, em);
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
    if (out->version < VD_SNAPSHOT_FORMAT_OLDEST || out->version > VD_SNAPSHOT_FORMAT_VERSION)
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "format version %u at offset 8, this vectord reads versions %u to %u",
                       out->version, VD_SNAPSHOT_FORMAT_OLDEST, VD_SNAPSHOT_FORMAT_VERSION);
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

uint32_t vd_snapshot_stored_crc(const uint8_t *img, size_t len)
{
    vd_reader t = vd_reader_of(img + len - VD_SNAPSHOT_TRAILER_LEN + 8, 4);
    return vd_get_u32(&t);
}

int vd_snapshot_summarize(vd_vfs *vfs, const char *path, vd_snapshot_summary *out, vd_errmsg *em)
{
    int fd, rc = vfs->ops->open(vfs, path, O_RDONLY, 0, &fd);
    if (rc)
        return vd_fail(em, rc, "cannot open %s: %s", path, strerror(-rc));
    uint8_t head[VD_SNAPSHOT_HEADER_LEN], tail[VD_SNAPSHOT_TRAILER_LEN];
    struct stat st;
    size_t got = 0, got2 = 0;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if ((uint64_t)st.st_size < VD_SNAPSHOT_HEADER_LEN + VD_SNAPSHOT_TRAILER_LEN)
        rc = 1;
    else if (!(rc = vfs->ops->pread(vfs, fd, head, sizeof head, 0, &got)))
        rc = vfs->ops->pread(vfs, fd, tail, sizeof tail,
                             (uint64_t)st.st_size - VD_SNAPSHOT_TRAILER_LEN, &got2);
    vfs->ops->close(vfs, fd);
    if (rc < 0)
        return vd_fail(em, rc, "cannot read %s: %s", path, strerror(-rc));
    if (rc || got != sizeof head || got2 != sizeof tail || memcmp(head, MAGIC, 8) != 0 ||
        memcmp(tail + 12, END_MAGIC, 4) != 0)
        return vd_fail(em, VD_E_INVALID_REQUEST, "%s is not a whole snapshot file", path);
    vd_reader r = vd_reader_of(head + 8, 16);
    out->version = vd_get_u32(&r);
    out->kind = (vd_snapshot_kind)vd_get_u32(&r);
    out->lsn = vd_get_u64(&r);
    out->size = (uint64_t)st.st_size;
    vd_reader t = vd_reader_of(tail + 8, 4);
    out->crc = vd_get_u32(&t);
    return 0;
}

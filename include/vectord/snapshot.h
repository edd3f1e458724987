/*
 * snapshot.h — the container of snapshot files: a header naming what the
 * file holds and the WAL position it reflects, the body, and a trailer with
 * the body length and a CRC32C over header and body. Files are written to a
 * temporary name, fdatasync'ed, renamed into place and the directory
 * fsync'ed, so a reader sees an old complete file or a new complete one.
 *
 * Byte layout (container and bodies): the table at the top of
 * src/storage/snapshot.c.
 */
#ifndef VECTORD_SNAPSHOT_H
#define VECTORD_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "vectord/error.h"
#include "vectord/vfs.h"

/* Version 2: written by a vectord that also writes snapshots/manifest.snap
 * at every checkpoint (write/manifest.h), so a version-2 file without a
 * manifest beside it means the manifest was lost. Version 1 files (older
 * vectord) are read the same way. */
#define VD_SNAPSHOT_FORMAT_VERSION 2
#define VD_SNAPSHOT_FORMAT_OLDEST 1
#define VD_SNAPSHOT_HEADER_LEN 24
#define VD_SNAPSHOT_TRAILER_LEN 16

typedef enum vd_snapshot_kind {
    VD_SNAP_COLLECTION = 1, /* a collection's settings (the CREATE record body) + incarnation */
    VD_SNAP_SHARD = 2,      /* one shard's points and index */
    VD_SNAP_FEEDS = 3,      /* how far each Postgres feed has got */
    VD_SNAP_MANIFEST = 4,   /* what the last checkpoint left (write/manifest.h) */
} vd_snapshot_kind;

struct vd_strbuf;

/* Starts a snapshot image in out (the header). */
void vd_snapshot_begin(struct vd_strbuf *out, vd_snapshot_kind kind, uint64_t lsn);
/* Adds the trailer and writes the image to dir/name atomically (temp file,
 * fdatasync, rename, directory fsync). 0 or -errno (em says which step). */
int vd_snapshot_commit(struct vd_strbuf *img, vd_vfs *vfs, const char *dir, const char *name,
                       vd_errmsg *em);

/* The same, streamed: a snapshot too large to build in memory (a shard with
 * its vectors) is written as it is produced, through a small buffer. Open
 * creates dir/name.tmp; writes append (header first: vd_snapshot_begin into
 * a buffer, then flush) and keep the running CRC; the first failure latches
 * and commit reports it. Commit adds the trailer, fdatasyncs, renames and
 * fsyncs the directory; commit or abort always ends the writer (the temp
 * file is removed unless it was renamed). */
typedef struct vd_snapshot_writer {
    vd_vfs *vfs;
    int fd;
    uint64_t off; /* bytes written */
    uint32_t crc;
    int rc;           /* first failure, or 0 */
    const char *step; /* what failed */
    char dir[1024], tmp[1200], path[1200];
} vd_snapshot_writer;

int vd_snapshot_writer_open(vd_snapshot_writer *w, vd_vfs *vfs, const char *dir, const char *name,
                            vd_errmsg *em);
void vd_snapshot_writer_write(vd_snapshot_writer *w, const void *p, size_t n);
/* Writes b's bytes and empties b. */
void vd_snapshot_writer_flush(vd_snapshot_writer *w, struct vd_strbuf *b);
int vd_snapshot_writer_commit(vd_snapshot_writer *w, vd_errmsg *em);
void vd_snapshot_writer_abort(vd_snapshot_writer *w);

typedef struct vd_snapshot_view {
    vd_snapshot_kind kind;
    uint32_t version;
    uint64_t lsn;
    const uint8_t *body; /* borrowed from the file image */
    size_t body_len;
} vd_snapshot_view;

/* What a snapshot file says about itself, from its header and trailer only
 * (the body is not read, so the checksum is the stored one, not checked). */
typedef struct vd_snapshot_summary {
    uint32_t version;
    vd_snapshot_kind kind;
    uint64_t lsn;
    uint64_t size; /* of the whole file */
    uint32_t crc;  /* stored in the trailer */
} vd_snapshot_summary;

/* 0, -errno (cannot open or read: -ENOENT when absent) or
 * VD_E_INVALID_REQUEST (not a whole snapshot file), em saying which. */
int vd_snapshot_summarize(vd_vfs *vfs, const char *path, vd_snapshot_summary *out,
                          vd_errmsg *em);
/* The CRC stored in a whole file image's trailer (after vd_snapshot_open). */
uint32_t vd_snapshot_stored_crc(const uint8_t *img, size_t len);

/* Checks a whole file image; VD_E_INVALID_REQUEST with em naming the byte
 * offset of what is wrong (magic, version, length, checksum). */
int vd_snapshot_open(const uint8_t *img, size_t len, vd_snapshot_view *out, vd_errmsg *em);

#endif

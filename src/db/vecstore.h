/*
 * vecstore.h — a shard's vectors by slot: the float32 originals, in RAM or in
 * a file on disk, and for a quantized collection their codes (always in RAM).
 *
 * Originals on disk live in an unnamed file (O_TMPFILE) in the data
 * directory's vectors/ folder: it is a working copy, not a durable one (the
 * WAL and snapshots are), so it vanishes when the process ends and is refilled
 * at recovery. It is read with pread and written with pwrite rather than
 * mapped: a full disk or an I/O error then fails one request with an error
 * instead of killing the process with SIGBUS, and the pages the kernel caches
 * are not the process's resident memory. Space is allocated (fallocate) when
 * the store grows, so a write does not find the disk full halfway.
 *
 * Locking is the shard's: put and reserve under its write lock; get and the
 * codes under its read lock (pread is safe from many threads at once).
 */
#ifndef VD_VECSTORE_H
#define VD_VECSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vectord/quant.h"

typedef struct vd_vecstore {
    uint32_t dim;
    vd_quant quant;
    size_t code_size; /* bytes per code, 0 without quantization */
    bool on_disk;
    float *ram;      /* cap × dim originals, when not on disk (util/bigmem.h) */
    int fd;          /* the originals' file, when on disk (-1 otherwise) */
    uint8_t *codes;  /* cap × code_size (util/bigmem.h) */
    uint32_t cap;
    size_t ram_bytes, codes_bytes; /* what ram and codes were sized to */
} vd_vecstore;

/* disk_dir: keep originals in a file there (NULL = in RAM). Fails with a
 * negative errno if the directory cannot hold such a file. */
int vd_vecstore_init(vd_vecstore *vs, uint32_t dim, vd_quant quant, const char *disk_dir);
void vd_vecstore_destroy(vd_vecstore *vs);
/* Makes room for slots < cap. -ENOMEM, -ENOSPC, -EIO. */
int vd_vecstore_reserve(vd_vecstore *vs, uint32_t cap);
/* Stores x (dim floats) as slot's original and code. -ENOSPC, -EIO. */
int vd_vecstore_put(vd_vecstore *vs, uint32_t slot, const float *x);
/* The originals of slots [first, first + n) into buf (n × dim floats):
 * 0 or -EIO. */
int vd_vecstore_read(const vd_vecstore *vs, uint32_t first, uint32_t n, float *buf);
/* slot's original: a pointer into RAM, or read into buf (dim floats);
 * NULL after an I/O error. */
const float *vd_vecstore_get(const vd_vecstore *vs, uint32_t slot, float *buf);
static inline const uint8_t *vd_vecstore_code(const vd_vecstore *vs, uint32_t slot)
{
    return vs->codes + (size_t)slot * vs->code_size;
}
/* Bytes held: codes and originals in RAM; originals on disk. */
size_t vd_vecstore_code_bytes(const vd_vecstore *vs);
size_t vd_vecstore_ram_bytes(const vd_vecstore *vs);
size_t vd_vecstore_disk_bytes(const vd_vecstore *vs);

#endif

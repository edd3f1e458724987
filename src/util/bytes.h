/*
 * bytes.h — little-endian encoding into a vd_strbuf and bounds-checked
 * decoding from a byte range: the building blocks of WAL record bodies and
 * snapshot files. A reader that runs past its end latches `bad` and returns
 * zeros from then on, so a decoder checks once at the end.
 */
#ifndef VD_BYTES_H
#define VD_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/strbuf.h"

static inline void vd_put_u8(vd_strbuf *b, uint8_t v) { vd_strbuf_append(b, &v, 1); }

static inline void vd_put_u16(vd_strbuf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    vd_strbuf_append(b, x, 2);
}

static inline void vd_put_u32(vd_strbuf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    vd_strbuf_append(b, x, 4);
}

static inline void vd_put_u64(vd_strbuf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    vd_strbuf_append(b, x, 8);
}

/* Raw bytes (floats go as their in-memory little-endian image). */
static inline void vd_put_bytes(vd_strbuf *b, const void *p, size_t n)
{
    if (n) /* p may be NULL when n is 0 */
        vd_strbuf_append(b, p, n);
}

typedef struct vd_reader {
    const uint8_t *p, *end;
    bool bad; /* a read ran past end */
} vd_reader;

static inline vd_reader vd_reader_of(const void *p, size_t n)
{
    return (vd_reader){(const uint8_t *)p, (const uint8_t *)p + n, false};
}

static inline size_t vd_reader_left(const vd_reader *r) { return (size_t)(r->end - r->p); }

/* Borrows n bytes (NULL and bad latched if fewer are left). */
static inline const uint8_t *vd_get_bytes(vd_reader *r, size_t n)
{
    if (r->bad || vd_reader_left(r) < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

static inline uint64_t vd_get_le(vd_reader *r, int n)
{
    const uint8_t *p = vd_get_bytes(r, (size_t)n);
    uint64_t v = 0;
    for (int i = 0; p && i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static inline uint8_t vd_get_u8(vd_reader *r) { return (uint8_t)vd_get_le(r, 1); }
static inline uint16_t vd_get_u16(vd_reader *r) { return (uint16_t)vd_get_le(r, 2); }
static inline uint32_t vd_get_u32(vd_reader *r) { return (uint32_t)vd_get_le(r, 4); }
static inline uint64_t vd_get_u64(vd_reader *r) { return vd_get_le(r, 8); }

/* Copies n bytes into out (zeros if short). */
static inline void vd_get_copy(vd_reader *r, void *out, size_t n)
{
    if (!n)
        return; /* out may be NULL (an empty shard has no arrays) */
    const uint8_t *p = vd_get_bytes(r, n);
    if (p)
        memcpy(out, p, n);
    else
        memset(out, 0, n);
}

#endif

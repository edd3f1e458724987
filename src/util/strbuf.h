/*
 * strbuf.h — a growable byte buffer for building text (metrics pages, request
 * bodies). A failed growth latches `failed`; the caller checks it once at the
 * end instead of after every append.
 */
#ifndef VD_STRBUF_H
#define VD_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct vd_strbuf {
    char *data; /* owned, NUL-terminated while !failed */
    size_t len, cap;
    size_t max; /* 0 = unbounded */
    bool failed;
} vd_strbuf;

void vd_strbuf_init(vd_strbuf *b, size_t max);
void vd_strbuf_free(vd_strbuf *b);
/* Makes room for total bytes in all (a known final size: no doubling). false
 * on ENOMEM (nothing latched: appends still grow as usual). */
bool vd_strbuf_reserve(vd_strbuf *b, size_t total);
/* Appends n bytes; false (and failed latched) past max or on ENOMEM. */
bool vd_strbuf_append(vd_strbuf *b, const void *p, size_t n);
bool vd_strbuf_printf(vd_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Empties b, keeping its memory for the next text (failed is cleared). */
void vd_strbuf_clear(vd_strbuf *b);
/* Hands the buffer to the caller (free()) and resets b. */
char *vd_strbuf_take(vd_strbuf *b, size_t *len);

#endif

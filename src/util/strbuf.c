/* strbuf.c — see strbuf.h. */
#include "util/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vd_strbuf_init(vd_strbuf *b, size_t max) { *b = (vd_strbuf){.max = max}; }

void vd_strbuf_free(vd_strbuf *b)
{
    free(b->data);
    *b = (vd_strbuf){0};
}

static bool reserve(vd_strbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    size_t need = b->len + extra + 1;
    if ((b->max && b->len + extra > b->max) || need < b->len) {
        b->failed = true;
        return false;
    }
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

bool vd_strbuf_reserve(vd_strbuf *b, size_t total)
{
    if (b->failed || total <= b->len || (b->max && total > b->max))
        return !b->failed;
    if (total + 1 <= b->cap)
        return true;
    char *d = realloc(b->data, total + 1);
    if (!d)
        return false;
    b->data = d;
    b->cap = total + 1;
    return true;
}

bool vd_strbuf_append(vd_strbuf *b, const void *p, size_t n)
{
    if (!reserve(b, n))
        return false;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return true;
}

bool vd_strbuf_printf(vd_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n))
        return false;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

void vd_strbuf_clear(vd_strbuf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data)
        b->data[0] = 0;
}

char *vd_strbuf_take(vd_strbuf *b, size_t *len)
{
    char *d = b->data;
    if (len)
        *len = b->len;
    *b = (vd_strbuf){.max = b->max};
    return d;
}

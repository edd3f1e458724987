/* pgoutput.c — see pgoutput.h. */
#include "feed/pgoutput.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Seconds from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch). */
#define PG_EPOCH_OFFSET_S 946684800LL

/* A big-endian reader: past the end it latches bad and reads zeros. */
typedef struct be_reader {
    const uint8_t *p, *end;
    bool bad;
} be_reader;

static const uint8_t *take(be_reader *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

static uint64_t get_be(be_reader *r, int n)
{
    const uint8_t *p = take(r, (size_t)n);
    uint64_t v = 0;
    for (int i = 0; p && i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* A NUL-terminated string inside the buffer. */
static const char *get_string(be_reader *r)
{
    if (r->bad)
        return NULL;
    const uint8_t *nul = memchr(r->p, 0, (size_t)(r->end - r->p));
    if (!nul) {
        r->bad = true;
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p = nul + 1;
    return s;
}

int vd_repl_parse(const uint8_t *buf, size_t len, vd_repl_msg *out)
{
    *out = (vd_repl_msg){0};
    be_reader r = {buf, buf + len, false};
    out->kind = (char)get_be(&r, 1);
    if (out->kind == 'w') {
        out->wal_start = get_be(&r, 8);
        out->wal_end = get_be(&r, 8);
        out->send_time = (int64_t)get_be(&r, 8);
        out->data = r.p;
        out->len = r.bad ? 0 : (size_t)(r.end - r.p);
    } else if (out->kind == 'k') {
        out->wal_end = get_be(&r, 8);
        out->send_time = (int64_t)get_be(&r, 8);
        out->reply_requested = get_be(&r, 1) != 0;
    } else {
        return -1;
    }
    return r.bad ? -1 : 0;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

void vd_repl_status(uint8_t out[VD_REPL_STATUS_BYTES], uint64_t lsn, int64_t now_us, bool reply)
{
    out[0] = 'r';
    put_be(out + 1, lsn, 8);  /* written */
    put_be(out + 9, lsn, 8);  /* flushed: what the slot may forget */
    put_be(out + 17, lsn, 8); /* applied */
    put_be(out + 25, (uint64_t)now_us, 8);
    out[33] = reply ? 1 : 0;
}

int64_t vd_repl_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((int64_t)ts.tv_sec - PG_EPOCH_OFFSET_S) * 1000000 + ts.tv_nsec / 1000;
}

/* TupleData: the column count; the values stay in place for vd_pgo_value_at. */
static void get_tuple(be_reader *r, vd_pgo_tuple *t)
{
    t->n = (uint16_t)get_be(r, 2);
    t->p = r->p;
    /* Walk the values once, so the message's length is known to be right. */
    for (uint16_t i = 0; i < t->n && !r->bad; i++) {
        char k = (char)get_be(r, 1);
        if (k == 't' || k == 'b')
            take(r, (size_t)get_be(r, 4));
        else if (k != 'n' && k != 'u')
            r->bad = true;
    }
    t->len = r->bad ? 0 : (size_t)(r->p - t->p);
}

int vd_pgo_parse(const uint8_t *buf, size_t len, vd_pgo_msg *out)
{
    *out = (vd_pgo_msg){0};
    be_reader r = {buf, buf + len, false};
    char tag = (char)get_be(&r, 1);
    switch (tag) {
    case 'B':
        out->kind = VD_PGO_BEGIN;
        out->lsn = get_be(&r, 8);
        out->time = (int64_t)get_be(&r, 8);
        out->xid = (uint32_t)get_be(&r, 4);
        break;
    case 'C':
        out->kind = VD_PGO_COMMIT;
        get_be(&r, 1); /* flags, unused */
        out->lsn = get_be(&r, 8);
        out->end_lsn = get_be(&r, 8);
        out->time = (int64_t)get_be(&r, 8);
        break;
    case 'R': {
        out->kind = VD_PGO_RELATION;
        out->relid = (uint32_t)get_be(&r, 4);
        out->nspname = get_string(&r);
        out->relname = get_string(&r);
        get_be(&r, 1); /* replica identity setting */
        out->n_columns = (uint16_t)get_be(&r, 2);
        out->columns = r.p;
        for (uint16_t i = 0; i < out->n_columns && !r.bad; i++) {
            get_be(&r, 1);
            get_string(&r);
            get_be(&r, 8); /* type oid, typmod */
        }
        out->columns_len = r.bad ? 0 : (size_t)(r.p - out->columns);
        break;
    }
    case 'I':
        out->kind = VD_PGO_INSERT;
        out->relid = (uint32_t)get_be(&r, 4);
        if (get_be(&r, 1) != 'N')
            return -1;
        get_tuple(&r, &out->new_row);
        break;
    case 'U': {
        out->kind = VD_PGO_UPDATE;
        out->relid = (uint32_t)get_be(&r, 4);
        char k = (char)get_be(&r, 1);
        if (k == 'K' || k == 'O') {
            get_tuple(&r, &out->old_row);
            k = (char)get_be(&r, 1);
        }
        if (k != 'N')
            return -1;
        get_tuple(&r, &out->new_row);
        break;
    }
    case 'D': {
        out->kind = VD_PGO_DELETE;
        out->relid = (uint32_t)get_be(&r, 4);
        char k = (char)get_be(&r, 1);
        if (k != 'K' && k != 'O')
            return -1;
        get_tuple(&r, &out->old_row);
        break;
    }
    case 'T':
        out->kind = VD_PGO_TRUNCATE;
        out->n_relids = (uint32_t)get_be(&r, 4);
        get_be(&r, 1); /* options: CASCADE, RESTART IDENTITY */
        out->relids = r.p;
        if (out->n_relids > (size_t)(r.end - r.p) / 4)
            return -1;
        take(&r, (size_t)out->n_relids * 4);
        break;
    case 'Y':
    case 'O':
    case 'M':
        out->kind = VD_PGO_SKIP;
        return 0; /* not decoded further */
    default:
        return -1;
    }
    /* Nothing may follow the message. */
    return r.bad || r.p != r.end ? -1 : 0;
}

int vd_pgo_column_index(const vd_pgo_msg *rel, const char *name)
{
    be_reader r = {rel->columns, rel->columns + rel->columns_len, false};
    for (uint16_t i = 0; i < rel->n_columns && !r.bad; i++) {
        get_be(&r, 1);
        const char *col = get_string(&r);
        get_be(&r, 8);
        if (col && strcmp(col, name) == 0)
            return i;
    }
    return -1;
}

uint32_t vd_pgo_truncated(const vd_pgo_msg *m, uint32_t i)
{
    be_reader r = {m->relids + (size_t)i * 4, m->relids + (size_t)i * 4 + 4, false};
    return (uint32_t)get_be(&r, 4);
}

int vd_pgo_value_at(const vd_pgo_tuple *t, uint16_t i, vd_pgo_value *out)
{
    *out = (vd_pgo_value){0};
    if (i >= t->n)
        return -1;
    be_reader r = {t->p, t->p + t->len, false};
    for (uint16_t k = 0;; k++) {
        char kind = (char)get_be(&r, 1);
        uint32_t n = kind == 't' || kind == 'b' ? (uint32_t)get_be(&r, 4) : 0;
        const uint8_t *data = n ? take(&r, n) : r.p;
        if (r.bad)
            return -1;
        if (k == i) {
            out->kind = kind == 'b' ? 't' : kind;
            out->data = (const char *)data;
            out->len = n;
            return 0;
        }
    }
}

/* 1 to 8 hex digits at *p, up to a byte that is not one. */
static bool hex_part(const char **p, uint32_t *out)
{
    uint32_t v = 0;
    int n = 0;
    for (; n < 9; n++, (*p)++) {
        char c = **p;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            break;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return n >= 1 && n <= 8;
}

int vd_lsn_parse(const char *text, uint64_t *out)
{
    uint32_t hi, lo;
    if (!text || !hex_part(&text, &hi) || *text++ != '/' || !hex_part(&text, &lo) || *text)
        return -1;
    *out = (uint64_t)hi << 32 | lo;
    return 0;
}

void vd_lsn_format(uint64_t lsn, char out[24])
{
    snprintf(out, 24, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}

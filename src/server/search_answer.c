/* search_answer.c — see search_answer.h. */
#include "server/search_answer.h"

#include <stdlib.h>
#include <string.h>

#include "server/response.h"

/* A piece is at least this much text: a few hits at a time, so one call of
 * the stream holds a thread for well under a millisecond. */
#define PIECE_BYTES 16384

typedef struct one_search {
    vd_point_out *hits;
    size_t n;
    bool with_payload;
} one_search;

struct vd_search_answer {
    one_search *s;
    size_t n;
    bool batch;
    bool as_points; /* each search as {"points": [...]} */
    size_t at, hit; /* the next hit to write: search at, its hit `hit` */
    bool opened;    /* the outer '[' of a batch is out */
};

vd_search_answer *vd_search_answer_new(size_t n, bool batch)
{
    vd_search_answer *a = calloc(1, sizeof *a);
    if (!a || !(a->s = calloc(n ? n : 1, sizeof *a->s))) {
        free(a);
        return NULL;
    }
    a->n = n;
    a->batch = batch;
    return a;
}

void vd_search_answer_as_points(vd_search_answer *a) { a->as_points = true; }

void vd_search_answer_put(vd_search_answer *a, size_t i, vd_point_out *hits, size_t n,
                          bool with_payload)
{
    a->s[i] = (one_search){hits, n, with_payload};
}

/* A hit's text: its keys and numbers, id, vector (at most 16 bytes a
 * float: "%.9g" and a comma) and payload. */
static size_t hit_bytes(const vd_point_out *p, bool with_payload)
{
    size_t n = 80 + (p->id_buf ? strlen(p->id_buf) * 6 : 0);
    if (p->vector)
        n += (size_t)p->dim * 16;
    if (with_payload)
        n += p->payload ? vd_resp_size_estimate(p->payload) : 2;
    return n;
}

size_t vd_search_answer_bytes(const vd_search_answer *a)
{
    size_t n = 4;
    for (size_t i = 0; i < a->n; i++) {
        n += 3 + (a->as_points ? 12 : 0);
        for (size_t j = 0; j < a->s[i].n; j++)
            n += hit_bytes(&a->s[i].hits[j], a->s[i].with_payload);
    }
    return n;
}

/* What the hits hold in memory: vectors as floats, payloads as trees
 * (about twice their text). */
static size_t held_bytes(const vd_search_answer *a)
{
    size_t n = sizeof *a + a->n * sizeof *a->s;
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < a->s[i].n; j++) {
            const vd_point_out *p = &a->s[i].hits[j];
            n += sizeof *p + (p->id_buf ? strlen(p->id_buf) + 1 : 0) +
                 (p->vector ? (size_t)p->dim * sizeof(float) : 0) +
                 (p->payload ? 2 * vd_resp_size_estimate(p->payload) : 0);
        }
    return n;
}

/* Releases search i's hits once they are written. */
static void drop_hits(one_search *s)
{
    for (size_t j = 0; j < s->n; j++)
        vd_point_out_free(&s->hits[j]);
    free(s->hits);
    *s = (one_search){0};
}

static bool next_piece(void *ctx, vd_strbuf *out, bool *done)
{
    vd_search_answer *a = ctx;
    size_t start = out->len;
    if (a->batch && !a->opened) {
        a->opened = true;
        if (!vd_strbuf_append(out, "[", 1))
            return false;
    }
    while (a->at < a->n && out->len - start < PIECE_BYTES) {
        one_search *s = &a->s[a->at];
        if (a->hit == 0 && ((a->batch && a->at && !vd_strbuf_append(out, ",", 1)) ||
                            !vd_strbuf_append(out, a->as_points ? "{\"points\":[" : "[",
                                              a->as_points ? 11 : 1)))
            return false;
        if (a->hit < s->n) {
            if ((a->hit && !vd_strbuf_append(out, ",", 1)) ||
                !vd_resp_point_text(&s->hits[a->hit], s->with_payload, out))
                return false;
            a->hit++;
            continue;
        }
        if (!vd_strbuf_append(out, a->as_points ? "]}" : "]", a->as_points ? 2 : 1))
            return false;
        drop_hits(s);
        a->at++;
        a->hit = 0;
    }
    if (a->at == a->n) {
        if (a->batch && !vd_strbuf_append(out, "]", 1))
            return false;
        *done = true;
    }
    return true;
}

void vd_search_answer_free(vd_search_answer *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        drop_hits(&a->s[i]);
    free(a->s);
    free(a);
}

static void free_ctx(void *ctx) { vd_search_answer_free(ctx); }

vd_stream vd_search_answer_stream(vd_search_answer *a)
{
    return (vd_stream){.next = next_piece, .free = free_ctx, .ctx = a, .held_bytes = held_bytes(a)};
}

/* fusion.c — see fusion.h. */
#include "db/fusion.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One hit of one list, while the lists are merged. */
typedef struct entry {
    vd_point_out *hit;
    size_t list, pos;
    double score; /* its contribution to the fused score */
} entry;

static int by_id_then_order(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    int c = vd_id_order(&a->hit->id, &b->hit->id);
    if (c)
        return c;
    if (a->list != b->list)
        return a->list < b->list ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

typedef struct ranked {
    vd_point_out hit;
    double score;
    size_t first; /* list * big + pos of its first appearance: the tie-break */
} ranked;

static int by_score(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score < b->score ? 1 : -1;
    return (a->first > b->first) - (a->first < b->first);
}

/* DBSF: mean ± 3 sample standard deviations of a list's relevances as [0, 1]. */
static void dbsf_scores(const vd_fusion *f, entry *e, size_t n)
{
    if (n == 1) {
        e[0].score = 0.5;
        return;
    }
    double mean = 0, m2 = 0;
    for (size_t i = 0; i < n; i++) { /* Welford */
        double x = f->distances ? -e[i].hit->score : e[i].hit->score, d = x - mean;
        mean += d / (double)(i + 1);
        m2 += d * (x - mean);
    }
    double sd = sqrt(m2 / (double)(n - 1)), lo = mean - 3 * sd, hi = mean + 3 * sd;
    for (size_t i = 0; i < n; i++) {
        double x = f->distances ? -e[i].hit->score : e[i].hit->score;
        e[i].score = hi == lo ? 0.5 : (x - lo) / (hi - lo);
    }
}

int vd_fuse(const vd_fusion *f, vd_point_out **lists, const size_t *n, size_t n_lists, vd_point_out **out,
            size_t *n_out)
{
    size_t total = 0;
    for (size_t l = 0; l < n_lists; l++)
        total += n[l];
    bool fits = total < SIZE_MAX / sizeof(ranked);
    entry *e = fits ? malloc((total ? total : 1) * sizeof *e) : NULL;
    ranked *r = fits ? malloc((total ? total : 1) * sizeof *r) : NULL;
    int rc = e && r ? 0 : -ENOMEM;
    size_t m = 0;
    for (size_t l = 0; !rc && l < n_lists; l++) {
        double w = f->weights ? f->weights[l] : 1.0;
        entry *first = e + m;
        for (size_t p = 0; p < n[l]; p++, m++) {
            e[m] = (entry){&lists[l][p], l, p, 0};
            if (f->method == VD_FUSION_RRF)
                e[m].score = w > 0 ? 1.0 / ((double)(p + 1) / w + (double)f->k - 1.0) : 0.0;
            else if (f->method == VD_FUSION_UNION)
                e[m].score = lists[l][p].score;
        }
        if (f->method == VD_FUSION_DBSF && n[l]) {
            dbsf_scores(f, first, n[l]);
            for (size_t p = 0; p < n[l]; p++)
                first[p].score *= w;
        }
    }
    size_t n_r = 0;
    bool moved = !rc; /* the hits leave the lists below */
    if (moved) {
        qsort(e, total, sizeof *e, by_id_then_order);
        for (size_t i = 0; i < total;) {
            size_t j = i + 1;
            double score = e[i].score;
            for (; j < total && vd_id_equal(&e[j].hit->id, &e[i].hit->id); j++)
                score += e[j].score;
            /* The first appearance (lowest list, then position) stays; the rest are freed. */
            r[n_r] = (ranked){*e[i].hit, f->method == VD_FUSION_UNION ? e[i].score : score,
                              e[i].list * (total + 1) + e[i].pos};
            r[n_r].hit.score = (float)r[n_r].score;
            *e[i].hit = (vd_point_out){0};
            n_r++;
            for (entry *dup = e + i + 1; dup < e + j; dup++)
                vd_point_out_free(dup->hit);
            i = j;
        }
        qsort(r, n_r, sizeof *r, by_score);
    }
    vd_point_out *res = rc ? NULL : malloc((n_r ? n_r : 1) * sizeof *res);
    if (!rc && !res)
        rc = -ENOMEM;
    for (size_t i = 0; i < n_r; i++) {
        if (res)
            res[i] = r[i].hit;
        else
            vd_point_out_free(&r[i].hit);
    }
    for (size_t l = 0; l < n_lists; l++) {
        for (size_t p = 0; !moved && p < n[l]; p++)
            vd_point_out_free(&lists[l][p]);
        free(lists[l]);
        lists[l] = NULL;
    }
    free(e);
    free(r);
    *out = res;
    *n_out = rc ? 0 : n_r;
    return rc;
}

/*
 * ivf.c — the inverted-file index (IVF-Flat over the shard's vectors or codes).
 *
 * Trained state: n_lists centroids (float32, in RAM) and, per centroid, a list
 * of the slots nearest to it; assign[slot] names a slot's list (and pos[slot]
 * its place there, for O(1) removal). A search ranks the centroids by the
 * query's key to them and scans the lists of the nprobe nearest; with a
 * filter it goes on to further lists until it has k allowed points (or has
 * seen every list), so a filtered search returns min(k, matches). Until the
 * first training every search is an exact scan.
 *
 * Training (the shard lends a sample and its slots, see index.h) happens
 * beside searches and writes: k-means (ivf_train_learn, kmeans.c) runs with
 * no lock held on the sample; the new
 * centroids are installed (write lock); the existing points are placed for
 * them in chunks (read lock, next_assign only, which searches never read)
 * while inserts place new points for both; the new lists then replace the old
 * (write lock, O(points)). Slots are placed by the vectors the view gives:
 * the originals when in RAM, else the decoded codes.
 *
 * Locking (the shard's rwlock, index.h): insert, remove, reserve, train_begin
 * and train_finish under the write lock; search, stats, train_due and
 * train_chunk under the read lock; train_learn touches nothing of the index.
 * Counters are atomic.
 *
 * Snapshot image (ivf_save / ivf_load), the index image inside a shard file
 * (src/storage/snapshot.c, body of kind 2), for a shard of S slots; integers
 * little-endian, floats IEEE-754 binary32 little-endian:
 *   offset        size         field
 *   0             4            u32 n_lists L (0 = not trained yet)
 *   4             4            u32 dim D (the shard's; any value when L = 0)
 *   8             1            u8 metric (vd_metric: 0 cosine, 1 dot, 2 l2)
 *   9             8            u64 trained points (the count the lists were learnt at)
 *   17            4·L·D        L × D f32 centroids, row-major
 *   17+4·L·D      4·S          S × u32: slot s's list (< L), 0xfffffffe = in
 *                              the index with no list (untrained), 0xffffffff =
 *                              not in the index
 * Load checks every field (list numbers < L, centroids finite, D and metric
 * those of the shard) and rebuilds the lists and centroid norms from it. A
 * training in progress is not saved: the image holds the lists in use.
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/bitset.h"
#include "util/bytes.h"
#include "vectord/index.h"
#include "index/kmeans.h"

#define NONE 0xffffffffu       /* not in the index */
#define UNPLACED 0xfffffffeu   /* in the index, no list yet (not trained) */

typedef struct ivf_list {
    uint32_t *slots;
    uint32_t n, cap;
} ivf_list;

typedef struct ivf {
    vd_index base;
    uint32_t nlist_param, nprobe_param;
    uint32_t cap;     /* slots the per-slot arrays cover */
    uint32_t *assign; /* cap: list, UNPLACED or NONE */
    uint32_t *pos;    /* cap: index in its list */
    size_t n_points;  /* slots in the index */
    /* trained state (n_lists 0 = untrained) */
    uint32_t n_lists, dim;
    vd_metric metric;
    float *centroids, *cnorm2;
    ivf_list *lists;
    size_t trained_points;
    /* a training in progress */
    bool training;
    uint32_t next_n_lists;
    float *next_centroids, *next_cnorm2;
    uint32_t *next_assign; /* cap */
    float *vec_buf; /* dim floats: decoding one vector under the write lock */
    _Atomic uint64_t n_distances, n_exact, n_probe;
    _Atomic uint64_t n_allocs; /* searches that had to malloc their list ranking */
} ivf;

/* Lists a search ranks on its stack; more are ranked in malloc'd memory. */
#define IVF_STACK_LISTS 1024

uint32_t vd_ivf_default_nprobe(uint32_t nprobe_param, uint32_t n_lists)
{
    uint32_t p = nprobe_param ? nprobe_param : (n_lists + 15) / 16;
    if (!nprobe_param && p < 8)
        p = 8;
    return p > n_lists ? n_lists : p ? p : 1;
}

static void free_lists(ivf_list *lists, uint32_t n)
{
    for (uint32_t i = 0; lists && i < n; i++)
        free(lists[i].slots);
    free(lists);
}

/* Grows an array of cap entries to new_cap, the new ones set to fill. */
static int grow_u32(uint32_t **a, uint32_t cap, uint32_t new_cap, uint32_t fill)
{
    uint32_t *p = realloc(*a, (size_t)new_cap * sizeof *p);
    if (!p)
        return -ENOMEM;
    for (uint32_t i = cap; i < new_cap; i++)
        p[i] = fill;
    *a = p;
    return 0;
}

static int ivf_reserve(vd_index *idx, uint32_t n_slots)
{
    ivf *f = (ivf *)idx;
    if (n_slots <= f->cap)
        return 0;
    uint32_t cap = f->cap ? f->cap : 1024;
    while (cap < n_slots)
        cap = cap > UINT32_MAX / 2 ? n_slots : cap * 2;
    if (grow_u32(&f->assign, f->cap, cap, NONE) || grow_u32(&f->pos, f->cap, cap, 0) ||
        (f->training && grow_u32(&f->next_assign, f->cap, cap, NONE)))
        return -ENOMEM;
    f->cap = cap;
    return 0;
}

static int list_push(ivf_list *l, uint32_t slot, uint32_t *pos)
{
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 16;
        uint32_t *s = realloc(l->slots, (size_t)cap * sizeof *s);
        if (!s)
            return -ENOMEM;
        l->slots = s;
        l->cap = cap;
    }
    *pos = l->n;
    l->slots[l->n++] = slot;
    return 0;
}

/* The list slot belongs to for one quantizer (its vector from the view). */
static uint32_t nearest(ivf *f, const vd_vector_view *v, uint32_t slot, const float *centroids,
                        const float *cnorm2, uint32_t n_lists)
{
    const float *x = vd_view_vector(v, slot, f->vec_buf);
    atomic_fetch_add_explicit(&f->n_distances, n_lists, memory_order_relaxed);
    return vd_kmeans_nearest(x, v->dim, centroids, cnorm2, n_lists, f->metric);
}

static int ivf_insert(vd_index *idx, const vd_vector_view *v, uint32_t slot)
{
    ivf *f = (ivf *)idx;
    if (slot >= f->cap)
        return -ERANGE;
    if (f->assign[slot] != NONE)
        return -EEXIST;
    if ((f->n_lists || f->training) && !f->vec_buf &&
        !(f->vec_buf = malloc((size_t)v->dim * sizeof(float))))
        return -ENOMEM;
    uint32_t list = UNPLACED;
    if (f->n_lists) {
        list = nearest(f, v, slot, f->centroids, f->cnorm2, f->n_lists);
        if (list_push(&f->lists[list], slot, &f->pos[slot]))
            return -ENOMEM;
    }
    if (f->training)
        f->next_assign[slot] = nearest(f, v, slot, f->next_centroids, f->next_cnorm2, f->next_n_lists);
    f->assign[slot] = list;
    f->n_points++;
    return 0;
}

static void ivf_remove(vd_index *idx, uint32_t slot)
{
    ivf *f = (ivf *)idx;
    if (slot >= f->cap || f->assign[slot] == NONE)
        return;
    uint32_t list = f->assign[slot];
    if (list != UNPLACED) {
        ivf_list *l = &f->lists[list];
        uint32_t p = f->pos[slot], last = l->slots[--l->n];
        l->slots[p] = last;
        f->pos[last] = p;
    }
    f->assign[slot] = NONE;
    if (f->training)
        f->next_assign[slot] = NONE;
    f->n_points--;
}

typedef struct ranked {
    float key;
    uint32_t list;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    float x = ((const ranked *)a)->key, y = ((const ranked *)b)->key;
    return (x > y) - (x < y);
}

static int ivf_search(vd_index *idx, const vd_vector_view *v, const vd_index_query *q, vd_topk *out)
{
    ivf *f = (ivf *)idx;
    size_t allowed = q->n_allowed != SIZE_MAX ? q->n_allowed
                                              : vd_bitset_count(q->allowed, vd_bitset_words(v->n_slots));
    /* Untrained, asked to, or so few allowed points that ranking the
     * centroids costs more than measuring them all: an exact scan. */
    if (!f->n_lists || q->exact || allowed <= f->n_lists) {
        uint64_t n = vd_index_scan(v, q, out);
        atomic_fetch_add_explicit(&f->n_distances, n, memory_order_relaxed);
        atomic_fetch_add_explicit(&f->n_exact, 1, memory_order_relaxed);
        if (q->n_distances)
            atomic_fetch_add_explicit(q->n_distances, n, memory_order_relaxed);
        return 0;
    }
    ranked on_stack[IVF_STACK_LISTS];
    ranked *order = f->n_lists <= IVF_STACK_LISTS ? on_stack : malloc((size_t)f->n_lists * sizeof *order);
    if (!order)
        return -ENOMEM;
    if (order != on_stack)
        atomic_fetch_add_explicit(&f->n_allocs, 1, memory_order_relaxed);
    for (uint32_t i = 0; i < f->n_lists; i++) {
        order[i].key = vd_index_key(f->metric, q->query->f, f->centroids + (size_t)i * f->dim, f->dim);
        order[i].list = i;
    }
    qsort(order, f->n_lists, sizeof *order, cmp_ranked);
    uint32_t param = q->nprobe == VD_IVF_NPROBE_AUTO ? 0 : q->nprobe ? q->nprobe : f->nprobe_param;
    uint32_t nprobe = vd_ivf_default_nprobe(param, f->n_lists);
    bool filtered = allowed < f->n_points;
    uint64_t n_dist = f->n_lists;
    uint32_t probed = 0;
    for (uint32_t r = 0; r < f->n_lists; r++, probed++) {
        if (r >= nprobe && (!filtered || out->n >= out->k))
            break;
        const ivf_list *l = &f->lists[order[r].list];
        for (uint32_t i = 0; i < l->n; i++) {
            uint32_t slot = l->slots[i];
            if (filtered && !vd_bit_test(q->allowed, slot))
                continue;
            if (i + 1 < l->n)
                __builtin_prefetch(vd_view_row(v, l->slots[i + 1]));
            float key = vd_view_key(v, q->query, slot);
            n_dist++;
            if (key <= q->max_key && key < vd_topk_bound(out))
                vd_topk_push(out, key, slot);
        }
    }
    if (order != on_stack)
        free(order);
    atomic_fetch_add_explicit(&f->n_distances, n_dist, memory_order_relaxed);
    atomic_fetch_add_explicit(&f->n_probe, 1, memory_order_relaxed);
    if (q->n_approximate && probed < f->n_lists) /* every list scanned: exact */
        atomic_fetch_add_explicit(q->n_approximate, 1, memory_order_relaxed);
    if (q->n_distances)
        atomic_fetch_add_explicit(q->n_distances, n_dist, memory_order_relaxed);
    return 0;
}

/* ---- training ------------------------------------------------------------------ */

static bool ivf_train_due(const vd_index *idx, size_t n_points, uint32_t dim, vd_train_plan *plan)
{
    const ivf *f = (const ivf *)idx;
    if (f->training)
        return false;
    size_t min = VD_IVF_TRAIN_MIN_POINTS;
    if ((size_t)f->nlist_param * 8 > min)
        min = (size_t)f->nlist_param * 8;
    if (f->n_lists ? n_points < VD_IVF_RETRAIN_GROWTH * f->trained_points : n_points < min)
        return false;
    uint32_t lists = f->nlist_param;
    if (!lists) {
        double r = round(sqrt((double)n_points));
        lists = r < VD_IVF_AUTO_MIN_NLIST ? VD_IVF_AUTO_MIN_NLIST
                : r > VD_IVF_AUTO_MAX_NLIST ? VD_IVF_AUTO_MAX_NLIST : (uint32_t)r;
    }
    size_t sample = (size_t)lists * 64, cap = VD_IVF_SAMPLE_MAX_BYTES / ((size_t)dim * sizeof(float));
    sample = sample > cap ? cap : sample;
    sample = sample > n_points ? n_points : sample;
    if (sample < lists)
        lists = (uint32_t)sample;
    *plan = (vd_train_plan){.n_lists = lists, .n_sample = sample};
    return lists > 0;
}

/* k-means on the sample: at most one list per sampled point. */
static int ivf_train_learn(const vd_index *idx, const float *sample, size_t n_sample, uint32_t dim,
                           vd_metric metric, uint32_t n_lists, uint64_t seed, _Atomic bool *cancel,
                           float **centroids, uint32_t *n_learnt)
{
    (void)idx;
    *centroids = NULL;
    *n_learnt = 0;
    if (n_sample < n_lists)
        n_lists = (uint32_t)n_sample;
    if (!n_lists)
        return 0;
    float *c = malloc((size_t)n_lists * dim * sizeof *c);
    if (!c)
        return -ENOMEM;
    int rc = vd_kmeans(sample, n_sample, dim, n_lists, VD_IVF_KMEANS_ITERS, metric, seed, cancel, c);
    if (rc) {
        free(c);
        return rc;
    }
    *centroids = c;
    *n_learnt = n_lists;
    return 0;
}

static int ivf_train_begin(vd_index *idx, float *centroids, uint32_t n_lists, uint32_t dim,
                           vd_metric metric)
{
    ivf *f = (ivf *)idx;
    float *cn = malloc((size_t)n_lists * sizeof *cn);
    uint32_t *next = malloc((size_t)(f->cap ? f->cap : 1) * sizeof *next);
    float *buf = f->vec_buf ? f->vec_buf : malloc((size_t)dim * sizeof *buf);
    if (!cn || !next || !buf) {
        free(cn);
        free(next);
        if (buf != f->vec_buf)
            free(buf);
        free(centroids);
        return -ENOMEM;
    }
    f->vec_buf = buf;
    for (uint32_t i = 0; i < f->cap; i++)
        next[i] = NONE;
    vd_kmeans_norms(centroids, n_lists, dim, cn);
    f->next_centroids = centroids;
    f->next_cnorm2 = cn;
    f->next_n_lists = n_lists;
    f->next_assign = next;
    f->dim = dim;
    f->metric = metric;
    f->training = true;
    return 0;
}

static int ivf_train_chunk(vd_index *idx, const vd_vector_view *v, uint32_t first, uint32_t count)
{
    ivf *f = (ivf *)idx;
    uint32_t end = v->n_slots < f->cap ? v->n_slots : f->cap;
    if (first >= end)
        return 0;
    if (count > end - first)
        count = end - first;
    uint32_t *slots = malloc((size_t)count * sizeof *slots);
    float *x = malloc((size_t)count * v->dim * sizeof *x);
    uint32_t *lists = malloc((size_t)count * sizeof *lists);
    int rc = slots && x && lists ? 0 : -ENOMEM;
    uint32_t n = 0;
    for (uint32_t s = first; !rc && s < first + count; s++) {
        if (f->assign[s] == NONE)
            continue;
        const float *src = vd_view_vector(v, s, x + (size_t)n * v->dim);
        if (src != x + (size_t)n * v->dim)
            memcpy(x + (size_t)n * v->dim, src, v->dim * sizeof(float));
        slots[n++] = s;
    }
    if (!rc && n)
        rc = vd_kmeans_assign(x, n, v->dim, f->next_centroids, f->next_cnorm2, f->next_n_lists,
                              f->metric, lists);
    for (uint32_t i = 0; !rc && i < n; i++)
        f->next_assign[slots[i]] = lists[i];
    atomic_fetch_add_explicit(&f->n_distances, (uint64_t)n * f->next_n_lists, memory_order_relaxed);
    free(slots);
    free(x);
    free(lists);
    return rc;
}

static void drop_next(ivf *f)
{
    free(f->next_centroids);
    free(f->next_cnorm2);
    free(f->next_assign);
    f->next_centroids = f->next_cnorm2 = NULL;
    f->next_assign = NULL;
    f->next_n_lists = 0;
    f->training = false;
}

/* Builds lists for assign (slots < cap): 0 or -ENOMEM (lists freed). */
static int build_lists(ivf *f, uint32_t n_lists, ivf_list **out)
{
    ivf_list *lists = calloc(n_lists, sizeof *lists);
    if (!lists)
        return -ENOMEM;
    for (uint32_t s = 0; s < f->cap; s++) {
        uint32_t a = f->assign[s];
        if (a < n_lists && list_push(&lists[a], s, &f->pos[s])) {
            free_lists(lists, n_lists);
            return -ENOMEM;
        }
    }
    *out = lists;
    return 0;
}

static void ivf_train_finish(vd_index *idx, bool ok)
{
    ivf *f = (ivf *)idx;
    if (!f->training)
        return;
    ivf_list *lists = NULL;
    if (ok) {
        /* every slot in the index has its next list: placed by a chunk or an insert */
        uint32_t *old = f->assign;
        f->assign = f->next_assign;
        for (uint32_t s = 0; s < f->cap; s++)
            if (old[s] == NONE)
                f->assign[s] = NONE;
            else if (f->assign[s] == NONE)
                f->assign[s] = UNPLACED; /* cannot happen: chunks and inserts place every slot */
        if (build_lists(f, f->next_n_lists, &lists)) {
            f->assign = old; /* out of memory: keep the old quantizer */
            ok = false;
        } else {
            free(old);
            f->next_assign = NULL;
        }
    }
    if (!ok) {
        drop_next(f);
        return;
    }
    free_lists(f->lists, f->n_lists);
    free(f->centroids);
    free(f->cnorm2);
    f->lists = lists;
    f->centroids = f->next_centroids;
    f->cnorm2 = f->next_cnorm2;
    f->n_lists = f->next_n_lists;
    f->trained_points = f->n_points;
    f->next_centroids = f->next_cnorm2 = NULL;
    f->next_n_lists = 0;
    f->training = false;
}

/* ---- stats, snapshots, lifetime ----------------------------------------------------- */

static void ivf_stats(const vd_index *idx, vd_index_stats *out)
{
    const ivf *f = (const ivf *)idx;
    size_t bytes = sizeof *f + (size_t)f->cap * 8 + (size_t)f->n_lists * (f->dim + 1) * sizeof(float) +
                   (size_t)f->n_lists * sizeof(ivf_list);
    for (uint32_t i = 0; i < f->n_lists; i++)
        bytes += (size_t)f->lists[i].cap * sizeof(uint32_t);
    if (f->training)
        bytes += (size_t)f->cap * 4 + (size_t)f->next_n_lists * (f->dim + 1) * sizeof(float);
    *out = (vd_index_stats){
        .memory_bytes = bytes,
        .distance_computations = atomic_load_explicit(&f->n_distances, memory_order_relaxed),
        .scratch_allocations = atomic_load_explicit(&f->n_allocs, memory_order_relaxed),
        .searches_exact = atomic_load_explicit(&f->n_exact, memory_order_relaxed),
        .searches_probe = atomic_load_explicit(&f->n_probe, memory_order_relaxed),
        .n_nodes = f->n_points,
        .trainable = true,
        .trained = f->n_lists > 0,
        .training = f->training,
        .n_lists = f->n_lists,
        .trained_points = f->trained_points,
    };
}

/* The image (layout at the top of this file). */
static int ivf_save(const vd_index *idx, uint32_t n_slots, vd_strbuf *out)
{
    const ivf *f = (const ivf *)idx;
    vd_put_u32(out, f->n_lists);
    vd_put_u32(out, f->dim);
    vd_put_u8(out, (uint8_t)f->metric);
    vd_put_u64(out, f->trained_points);
    vd_put_bytes(out, f->centroids, (size_t)f->n_lists * f->dim * sizeof(float));
    for (uint32_t s = 0; s < n_slots; s++)
        vd_put_u32(out, s < f->cap ? f->assign[s] : NONE);
    return 0;
}

static int ivf_load(vd_index *idx, uint32_t n_slots, uint32_t shard_dim, vd_reader *r)
{
    ivf *f = (ivf *)idx;
    uint32_t n_lists = vd_get_u32(r), dim = vd_get_u32(r);
    uint8_t metric = vd_get_u8(r);
    uint64_t trained = vd_get_u64(r);
    if (r->bad || n_lists > VD_IVF_MAX_NLIST * 4u || (n_lists && (dim != shard_dim || metric > VD_METRIC_L2)) ||
        (n_lists && (size_t)n_lists * dim * sizeof(float) > vd_reader_left(r)) || f->n_points)
        return -EINVAL;
    int rc = ivf_reserve(idx, n_slots);
    if (rc)
        return rc;
    if (n_lists) {
        f->centroids = malloc((size_t)n_lists * dim * sizeof(float));
        f->cnorm2 = malloc((size_t)n_lists * sizeof(float));
        if (!f->centroids || !f->cnorm2)
            return -ENOMEM;
        vd_get_copy(r, f->centroids, (size_t)n_lists * dim * sizeof(float));
        for (size_t i = 0; i < (size_t)n_lists * dim; i++)
            if (!isfinite(f->centroids[i]))
                return -EINVAL;
        vd_kmeans_norms(f->centroids, n_lists, dim, f->cnorm2);
    }
    for (uint32_t s = 0; s < n_slots; s++) {
        uint32_t a = vd_get_u32(r);
        if (a != NONE && a != UNPLACED && a >= n_lists)
            return -EINVAL;
        f->assign[s] = a;
        f->n_points += a != NONE;
    }
    if (r->bad)
        return -EINVAL;
    if (n_lists && (rc = build_lists(f, n_lists, &f->lists)))
        return rc;
    f->n_lists = n_lists;
    f->dim = dim;
    f->metric = (vd_metric)metric;
    f->trained_points = trained;
    return 0;
}

static void ivf_destroy(vd_index *idx)
{
    ivf *f = (ivf *)idx;
    drop_next(f);
    free_lists(f->lists, f->n_lists);
    free(f->centroids);
    free(f->cnorm2);
    free(f->assign);
    free(f->pos);
    free(f->vec_buf);
    free(f);
}

static const vd_index_ops ivf_ops = {
    .type = "ivf",
    .keeps_slots = false,
    .concurrent_insert = false,
    .reserve = ivf_reserve,
    .insert = ivf_insert,
    .remove = ivf_remove,
    .search = ivf_search,
    .stats = ivf_stats,
    .save = ivf_save,
    .load = ivf_load,
    .train_due = ivf_train_due,
    .train_learn = ivf_train_learn,
    .train_begin = ivf_train_begin,
    .train_chunk = ivf_train_chunk,
    .train_finish = ivf_train_finish,
    .destroy = ivf_destroy,
};

int vd_ivf_create(const vd_index_params *p, uint64_t seed, vd_index **out)
{
    ivf *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->base.ops = &ivf_ops;
    f->nlist_param = p->nlist;
    f->nprobe_param = p->nprobe;
    (void)seed; /* k-means draws come from the shard's seed */
    *out = &f->base;
    return 0;
}

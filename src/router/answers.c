/*
 * answers.c — see answers.h.
 */
#include "router/answers.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool vd_rt_value_text(const cJSON *v, char *out, size_t cap)
{
    if (cJSON_IsString(v)) {
        size_t n = strlen(v->valuestring);
        if (n + 1 > cap)
            return false;
        memcpy(out, v->valuestring, n + 1);
        return true;
    }
    if (cJSON_IsBool(v))
        return snprintf(out, cap, "%s", cJSON_IsTrue(v) ? "true" : "false") > 0;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!(d == floor(d)) || fabs(d) > 9007199254740991.0)
            return false;
        return snprintf(out, cap, "%lld", (long long)d) > 0;
    }
    return false;
}

static bool is_tenant_condition(const cJSON *c, const char *field, char *out, size_t cap)
{
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(c, "key");
    const cJSON *match = cJSON_GetObjectItemCaseSensitive(c, "match");
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(match, "value");
    return cJSON_IsString(key) && strcmp(key->valuestring, field) == 0 && value &&
           vd_rt_value_text(value, out, cap);
}

bool vd_rt_filter_tenant(const cJSON *filter, const char *field, char *out, size_t cap)
{
    const cJSON *must = cJSON_GetObjectItemCaseSensitive(filter, "must");
    if (cJSON_IsObject(must))
        return is_tenant_condition(must, field, out, cap);
    const cJSON *c;
    cJSON_ArrayForEach(c, must) if (is_tenant_condition(c, field, out, cap)) return true;
    return false;
}

bool vd_rt_payload_tenant(const cJSON *payload, const char *field, char *out, size_t cap, bool *null)
{
    const cJSON *v = payload;
    char part[256];
    for (const char *p = field; v;) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof part)
            return false;
        memcpy(part, p, n);
        part[n] = 0;
        v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, part) : NULL;
        if (!p[n])
            break;
        p += n + 1;
    }
    *null = !v || cJSON_IsNull(v);
    return *null || vd_rt_value_text(v, out, cap);
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* The end of the JSON string starting at p (its opening quote), or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* The end of the JSON value starting at p, or NULL (brackets balanced,
 * strings skipped; the rest is the replicas' to judge). */
static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p != '{' && *p != '[') {
        const char *q = p;
        while (q < end && !strchr(",]} \t\n\r", *q))
            q++;
        return q > p ? q : NULL;
    }
    size_t depth = 0;
    for (; p < end; p++) {
        if (*p == '"') {
            if (!(p = skip_string(p, end)))
                return NULL;
            p--;
        } else if (*p == '{' || *p == '[') {
            if (++depth > 1000)
                return NULL;
        } else if (*p == '}' || *p == ']') {
            if (--depth == 0)
                return p + 1;
        }
    }
    return NULL;
}

bool vd_rt_json_member(const char *text, size_t len, const char *key, const char **at, size_t *at_len)
{
    const char *end = text + len, *p = skip_ws(text, end);
    size_t klen = strlen(key);
    if (p >= end || *p != '{')
        return false;
    p = skip_ws(p + 1, end);
    while (p < end && *p == '"') {
        const char *k = p + 1, *ke = skip_string(p, end);
        if (!ke)
            return false;
        p = skip_ws(ke, end);
        if (p >= end || *p != ':')
            return false;
        const char *v = skip_ws(p + 1, end), *ve = skip_value(v, end);
        if (!ve)
            return false;
        if ((size_t)(ke - 1 - k) == klen && memcmp(k, key, klen) == 0) {
            *at = v;
            *at_len = (size_t)(ve - v);
            return true;
        }
        p = skip_ws(ve, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
        else
            break;
    }
    return false;
}

bool vd_rt_json_elements(const char *text, size_t len, bool (*fn)(const char *at, size_t n, void *ctx),
                         void *ctx)
{
    const char *end = text + len, *p = skip_ws(text, end);
    if (p >= end || *p != '[')
        return false;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']')
        return true;
    while (p < end) {
        const char *ve = skip_value(p, end);
        if (!ve)
            return false;
        if (!fn(p, (size_t)(ve - p), ctx))
            return true;
        p = skip_ws(ve, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
        else
            return p < end && *p == ']';
    }
    return false;
}

bool vd_rt_text_tenant(const char *text, size_t len, const char *field, char *out, size_t cap)
{
    const char *at;
    size_t n;
    if (!vd_rt_json_member(text, len, "filter", &at, &n))
        return false;
    cJSON *filter = cJSON_ParseWithLength(at, n);
    bool found = vd_rt_filter_tenant(filter, field, out, cap);
    cJSON_Delete(filter);
    return found;
}

/* The k-way merge every combined answer uses: lists (arrays of items, each
 * sorted by `before`), skip the first `skip` items, copy the next `take`
 * into out, and say (*next, borrowed) which item would have come next. An
 * item goes before another when before(a, b, ctx); on a tie the earlier
 * list's. false on ENOMEM. */
typedef bool (*before_fn)(const cJSON *a, const cJSON *b, const void *ctx);

static bool merge_lists(cJSON *const *lists, size_t n, before_fn before, const void *ctx, size_t skip,
                        size_t take, cJSON *out, const cJSON **next)
{
    cJSON **cur = calloc(n ? n : 1, sizeof *cur);
    if (!cur)
        return false;
    for (size_t i = 0; i < n; i++)
        cur[i] = cJSON_IsArray(lists[i]) ? lists[i]->child : NULL;
    *next = NULL;
    for (size_t taken = 0;; taken++) {
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (cur[i] && (best == n || before(cur[i], cur[best], ctx)))
                best = i;
        if (best == n)
            break;
        if (taken == skip + take) {
            *next = cur[best];
            break;
        }
        if (taken >= skip) {
            cJSON *copy = cJSON_Duplicate(cur[best], true);
            if (!copy) {
                free(cur);
                return false;
            }
            cJSON_AddItemToArray(out, copy);
        }
        cur[best] = cur[best]->next;
    }
    free(cur);
    return true;
}

static double score_of(const cJSON *hit, bool higher_better)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(hit, "score");
    return cJSON_IsNumber(s) ? s->valuedouble : (higher_better ? -INFINITY : INFINITY);
}

static bool better_score(const cJSON *a, const cJSON *b, const void *ctx)
{
    bool higher = *(const bool *)ctx;
    double x = score_of(a, higher), y = score_of(b, higher);
    return higher ? x > y : x < y;
}

cJSON *vd_rt_merge_hits(cJSON *const *lists, size_t n, bool higher_better, size_t offset, size_t limit)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *next;
    if (out && !merge_lists(lists, n, better_score, &higher_better, offset, limit, out, &next)) {
        cJSON_Delete(out);
        out = NULL;
    }
    return out;
}

int vd_rt_id_cmp(const cJSON *a, const cJSON *b)
{
    bool an = cJSON_IsNumber(a), bn = cJSON_IsNumber(b);
    if (an != bn)
        return an ? -1 : 1;
    if (an)
        return (a->valuedouble > b->valuedouble) - (a->valuedouble < b->valuedouble);
    const char *x = cJSON_IsString(a) ? a->valuestring : "", *y = cJSON_IsString(b) ? b->valuestring : "";
    return strcmp(x, y) < 0 ? -1 : strcmp(x, y) > 0;
}

static bool lower_id(const cJSON *a, const cJSON *b, const void *ctx)
{
    (void)ctx;
    return vd_rt_id_cmp(cJSON_GetObjectItemCaseSensitive(a, "id"), cJSON_GetObjectItemCaseSensitive(b, "id")) < 0;
}

/* The "points" lists of n pages, borrowed (a page without one counts as empty). */
static cJSON **points_of(cJSON *const *pages, size_t n)
{
    cJSON **lists = calloc(n ? n : 1, sizeof *lists);
    for (size_t i = 0; lists && i < n; i++)
        lists[i] = cJSON_GetObjectItemCaseSensitive(pages[i], "points");
    return lists;
}

cJSON *vd_rt_merge_scroll(cJSON *const *pages, size_t n, size_t limit)
{
    cJSON **lists = points_of(pages, n);
    cJSON *out = cJSON_CreateObject();
    cJSON *points = out ? cJSON_AddArrayToObject(out, "points") : NULL;
    const cJSON *after = NULL;
    if (!lists || !points || !merge_lists(lists, n, lower_id, NULL, 0, limit, points, &after))
        goto fail;
    const cJSON *next = after ? cJSON_GetObjectItemCaseSensitive(after, "id") : NULL;
    /* A partition that stopped at its own page end knows its next id. */
    for (size_t i = 0; i < n; i++) {
        const cJSON *np = cJSON_GetObjectItemCaseSensitive(pages[i], "next_page_offset");
        if (np && !cJSON_IsNull(np) && (!next || vd_rt_id_cmp(np, next) < 0))
            next = np;
    }
    cJSON *nx = next ? cJSON_Duplicate(next, false) : cJSON_CreateNull();
    if (!nx)
        goto fail;
    cJSON_AddItemToObject(out, "next_page_offset", nx);
    free(lists);
    return out;
fail:
    free(lists);
    cJSON_Delete(out);
    return NULL;
}

/* a before b in an order_by page: by value (descending when *ctx), then id */
static bool ordered_before(const cJSON *a, const cJSON *b, const void *ctx)
{
    bool desc = *(const bool *)ctx;
    const cJSON *va = cJSON_GetObjectItemCaseSensitive(a, "order_value");
    const cJSON *vb = cJSON_GetObjectItemCaseSensitive(b, "order_value");
    double x = cJSON_IsNumber(va) ? va->valuedouble : 0, y = cJSON_IsNumber(vb) ? vb->valuedouble : 0;
    if (x != y)
        return desc ? x > y : x < y;
    return lower_id(a, b, NULL);
}

cJSON *vd_rt_merge_ordered(cJSON *const *pages, size_t n, size_t limit, bool desc)
{
    cJSON **lists = points_of(pages, n);
    cJSON *out = cJSON_CreateObject();
    cJSON *points = out ? cJSON_AddArrayToObject(out, "points") : NULL;
    const cJSON *after;
    if (!lists || !points || !cJSON_AddNullToObject(out, "next_page_offset") ||
        !merge_lists(lists, n, ordered_before, &desc, 0, limit, points, &after)) {
        cJSON_Delete(out);
        out = NULL;
    }
    free(lists);
    return out;
}

static float similarity(bool l2, const cJSON *a, const cJSON *b)
{
    double s = 0;
    for (const cJSON *x = a ? a->child : NULL, *y = b ? b->child : NULL; x && y; x = x->next, y = y->next) {
        /* the vectors are float32 printed exactly: the same products as vectord's */
        float fx = (float)x->valuedouble, fy = (float)y->valuedouble;
        s += l2 ? ((double)fx - fy) * ((double)fx - fy) : (double)fx * fy;
    }
    return l2 ? -(float)sqrt(s) : (float)s;
}

void vd_rt_mmr(cJSON *hits, bool l2, float diversity, size_t want)
{
    size_t n = (size_t)cJSON_GetArraySize(hits);
    cJSON **h = calloc(n ? n : 1, sizeof *h);
    float *closest = calloc(n ? n : 1, sizeof *closest), *score = calloc(n ? n : 1, sizeof *score);
    if (!h || !closest || !score)
        goto done; /* out of memory: the plain ranking stands */
    size_t k = 0;
    for (cJSON *x = hits->child; x; x = x->next, k++) {
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(x, "score");
        h[k] = x;
        score[k] = cJSON_IsNumber(sc) ? (float)sc->valuedouble : 0;
        closest[k] = -INFINITY;
    }
    want = want < n ? want : n;
    for (size_t picked = 0; picked < want; picked++) {
        size_t best = picked;
        float best_v = -INFINITY;
        for (size_t j = picked; j < n; j++) {
            if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(h[j], "vector")))
                continue;
            float rel = l2 ? -score[j] : score[j];
            float v = picked ? (1 - diversity) * rel - diversity * closest[j] : rel;
            if (v > best_v) {
                best_v = v;
                best = j;
            }
        }
        cJSON *t = h[picked];
        h[picked] = h[best];
        h[best] = t;
        float ts = score[picked], tc = closest[picked];
        score[picked] = score[best];
        score[best] = ts;
        closest[picked] = closest[best];
        closest[best] = tc;
        const cJSON *pv = cJSON_GetObjectItemCaseSensitive(h[picked], "vector");
        for (size_t j = picked + 1; j < n; j++) {
            const cJSON *jv = cJSON_GetObjectItemCaseSensitive(h[j], "vector");
            if (cJSON_IsArray(jv) && cJSON_IsArray(pv)) {
                float sim = similarity(l2, jv, pv);
                if (sim > closest[j])
                    closest[j] = sim;
            }
        }
    }
    for (size_t j = 0; j < n; j++) /* rebuilt in the picked order, the rest dropped */
        cJSON_DetachItemViaPointer(hits, h[j]);
    for (size_t j = 0; j < n; j++) {
        if (j < want)
            cJSON_AddItemToArray(hits, h[j]);
        else
            cJSON_Delete(h[j]);
    }
done:
    free(h);
    free(closest);
    free(score);
}

void vd_rt_sum_fields(cJSON *dst, const cJSON *src, const char *const *fields)
{
    for (const char *const *f = fields; *f; f++) {
        cJSON *d = cJSON_GetObjectItemCaseSensitive(dst, *f);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(src, *f);
        if (cJSON_IsNumber(d) && cJSON_IsNumber(s))
            cJSON_SetNumberValue(d, d->valuedouble + s->valuedouble);
    }
}

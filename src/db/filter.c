/*
 * filter.c — see filter.h.
 *
 * A filter is a tree of vd_cond nodes. Evaluation over a shard is
 * "candidates in, matches out": each node receives the set of slots still in
 * play and returns the subset that satisfies it, so a selective indexed
 * condition early in a `must` shrinks the work of every later one. Within a
 * `must`, conditions answerable from a payload index run first.
 */
#include "db/filter.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bitset.h"
#include "util/rangebits.h"
#include "vectord/distance.h"

typedef enum cond_type {
    COND_GROUP,
    COND_MATCH,        /* match value / any, or except (values not held) */
    COND_RANGE,        /* numbers, or RFC 3339 date-times (datetime) */
    COND_IS_EMPTY,     /* the key is missing, null or [] */
    COND_IS_NULL,      /* the key holds null */
    COND_VALUES_COUNT, /* how many values the key holds (0, 1, or an array's length), in a range */
    COND_NESTED,       /* some object of the key's array (or the key's object) satisfies sub */
    COND_HAS_ID        /* the point's id is one of ids */
} cond_type;

enum { R_GT = 1, R_GTE = 2, R_LT = 4, R_LTE = 8 };

typedef struct vd_cond vd_cond;

typedef struct cond_list {
    vd_cond *items;
    size_t n;
} cond_list;

struct vd_cond {
    cond_type type;
    /* leaves */
    char *key;
    vd_key_path path;
    char **values; /* COND_MATCH: keyword keys ("s:…"), sorted */
    size_t n_values;
    bool except;   /* COND_MATCH: the value is none of values */
    unsigned range_flags; /* COND_RANGE, COND_VALUES_COUNT */
    double gt, gte, lt, lte;
    bool datetime; /* COND_RANGE: bounds and values are date-times (seconds since 1970) */
    double lo, hi; /* COND_RANGE: the bounds as one closed interval, made once at parse (closed_range) */
    vd_cond *sub;  /* COND_NESTED: a group, tested on each element */
    vd_point_id *ids; /* COND_HAS_ID: sorted (vd_id_order), strings owned */
    size_t n_ids;
    /* groups */
    cond_list must, should, must_not;
    cond_list min_should; /* at least min_count of these hold */
    size_t min_count;
};

struct vd_filter {
    vd_cond root;
    unsigned group_depth; /* nesting of groups that evaluate with temporary bitmaps */
};

/* ---- parsing ---------------------------------------------------------- */

static void closed_range(const vd_cond *c, double *lo, double *hi);

typedef struct parse_ctx {
    unsigned max_depth;
    size_t max_terms, n_terms; /* conditions plus match values */
    size_t n_conds;
    vd_errmsg *em;
} parse_ctx;

static void cond_free(vd_cond *c);

/* n more conditions or match values, at where: within max_terms? */
static int count_terms(parse_ctx *pc, size_t n, const char *where)
{
    pc->n_terms += n;
    if (pc->max_terms && pc->n_terms > pc->max_terms)
        return vd_fail(pc->em, VD_E_INVALID_FILTER,
                       "the filter has more than %zu conditions and match values (at %s; setting "
                       "max_filter_terms): each is checked for every point it may match",
                       pc->max_terms, where);
    return 0;
}

static void list_free(cond_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        cond_free(&l->items[i]);
    free(l->items);
    *l = (cond_list){0};
}

static void cond_free(vd_cond *c)
{
    for (size_t k = 0; k < c->n_ids; k++)
        if (c->ids[k].kind == VD_ID_STR)
            free((char *)c->ids[k].str);
    free(c->ids);
    free(c->key);
    vd_key_path_free(&c->path);
    for (size_t i = 0; i < c->n_values; i++)
        free(c->values[i]);
    free(c->values);
    list_free(&c->must);
    list_free(&c->should);
    list_free(&c->must_not);
    list_free(&c->min_should);
    if (c->sub) {
        cond_free(c->sub);
        free(c->sub);
    }
}


static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_group(parse_ctx *pc, const cJSON *j, vd_cond *out, const char *where,
                       unsigned depth);

static int parse_value(parse_ctx *pc, const cJSON *v, vd_cond *c, const char *where)
{
    char key[VD_FILTER_MAX_VALUE_LEN + 8];
    if (cJSON_IsString(v) && strlen(v->valuestring) > VD_FILTER_MAX_VALUE_LEN)
        return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s is longer than %d bytes", where,
                       VD_FILTER_MAX_VALUE_LEN);
    size_t n = vd_keyword_key(v, key, sizeof key);
    if (!n)
        return vd_fail(pc->em, VD_E_INVALID_FILTER,
                       "%s must be a string, an integer or a boolean", where);
    char *copy = strdup(key);
    if (!copy)
        return -ENOMEM;
    c->values[c->n_values++] = copy;
    return 0;
}

static int parse_match(parse_ctx *pc, const cJSON *m, vd_cond *c, const char *where)
{
    char sub[256];
    if (!cJSON_IsObject(m))
        return vd_fail(pc->em, VD_E_INVALID_FILTER,
                       "%s.match must be an object with \"value\" or \"any\"", where);
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(m, "value");
    const cJSON *any = cJSON_GetObjectItemCaseSensitive(m, "any");
    const cJSON *except = cJSON_GetObjectItemCaseSensitive(m, "except");
    for (const cJSON *f = m->child; f; f = f->next)
        if (strcmp(f->string, "value") != 0 && strcmp(f->string, "any") != 0 && strcmp(f->string, "except") != 0)
            return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s.match has unknown field '%s'", where,
                           f->string);
    if ((value != NULL) + (any != NULL) + (except != NULL) != 1)
        return vd_fail(pc->em, VD_E_INVALID_FILTER,
                       "%s.match needs exactly one of \"value\", \"any\" or \"except\"", where);
    c->type = COND_MATCH;
    if (except) { /* the values none may be: read like "any" */
        c->except = true;
        any = except;
    }
    size_t n = 1;
    if (any) {
        if (!cJSON_IsArray(any) || (!any->child && !c->except))
            return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s.match.%s must be a non-empty array",
                           where, c->except ? "except" : "any");
        n = (size_t)cJSON_GetArraySize(any);
        if (n > VD_FILTER_MAX_VALUES)
            return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s.match.any has %zu values; at most %d",
                           where, n, VD_FILTER_MAX_VALUES);
    }
    int trc = count_terms(pc, n, where);
    if (trc)
        return trc;
    c->values = calloc(n ? n : 1, sizeof *c->values);
    if (!c->values)
        return -ENOMEM;
    if (value) {
        snprintf(sub, sizeof sub, "%s.match.value", where);
        return parse_value(pc, value, c, sub);
    }
    size_t i = 0;
    for (const cJSON *v = any->child; v; v = v->next, i++) {
        snprintf(sub, sizeof sub, "%s.match.%s[%zu]", where, c->except ? "except" : "any", i);
        int rc = parse_value(pc, v, c, sub);
        if (rc)
            return rc;
    }
    qsort(c->values, c->n_values, sizeof *c->values, cmp_str);
    return 0;
}

static int parse_range(parse_ctx *pc, const cJSON *r, vd_cond *c, const char *where)
{
    static const char *const names[] = {"gt", "gte", "lt", "lte"};
    double *slots[] = {&c->gt, &c->gte, &c->lt, &c->lte};
    if (!cJSON_IsObject(r))
        return vd_fail(pc->em, VD_E_INVALID_FILTER,
                       "%s.range must be an object with gt/gte/lt/lte", where);
    if (c->type != COND_VALUES_COUNT)
        c->type = COND_RANGE;
    for (const cJSON *f = r->child; f; f = f->next) {
        int k = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(f->string, names[i]) == 0)
                k = i;
        if (k < 0)
            return vd_fail(pc->em, VD_E_INVALID_FILTER,
                           "%s.range has unknown field '%s' (use gt, gte, lt, lte)", where,
                           f->string);
        bool when = c->type == COND_RANGE && cJSON_IsString(f);
        if (when && !vd_datetime_parse(f->valuestring, slots[k]))
            return vd_fail(pc->em, VD_E_INVALID_FILTER,
                           "%s.range.%s is not an RFC 3339 date-time (e.g. \"2026-12-05T23:10:00Z\")",
                           where, names[k]);
        if (!when && (!cJSON_IsNumber(f) || !isfinite(f->valuedouble)))
            return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s.range.%s must be a finite number%s",
                           where, names[k], c->type == COND_RANGE ? " or an RFC 3339 date-time" : "");
        if (!when)
            *slots[k] = f->valuedouble;
        if (c->range_flags && when != c->datetime)
            return vd_fail(pc->em, VD_E_INVALID_FILTER,
                           "%s.range mixes numbers and date-times", where);
        c->datetime = when;
        c->range_flags |= 1u << k;
    }
    if (!c->range_flags)
        return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s.range needs at least one of gt/gte/lt/lte",
                       where);
    closed_range(c, &c->lo, &c->hi);
    return 0;
}

/* {"has_id": [ids]}: integers 0 … 2^53-1 or strings of 1 … VD_ID_MAX_LEN bytes. */
static int parse_has_id(parse_ctx *pc, const cJSON *j, const cJSON *ids, vd_cond *c, const char *where)
{
    if (cJSON_GetArraySize((cJSON *)j) != 1 || !cJSON_IsArray(ids))
        return vd_fail(pc->em, VD_E_INVALID_FILTER,
                       "%s.has_id must be the condition's only field, an array of point ids", where);
    size_t n = (size_t)cJSON_GetArraySize((cJSON *)ids);
    if (n > VD_FILTER_MAX_VALUES)
        return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s.has_id has %zu ids; at most %d", where, n,
                       VD_FILTER_MAX_VALUES);
    int rc = count_terms(pc, n, where);
    if (rc)
        return rc;
    c->type = COND_HAS_ID;
    if (!(c->ids = calloc(n ? n : 1, sizeof *c->ids)))
        return -ENOMEM;
    for (const cJSON *v = ids->child; v; v = v->next) {
        vd_point_id *id = &c->ids[c->n_ids];
        if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= (double)VD_ID_MAX_INT &&
            v->valuedouble == floor(v->valuedouble)) {
            *id = (vd_point_id){.kind = VD_ID_INT, .num = (uint64_t)v->valuedouble};
        } else if (cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) <= VD_ID_MAX_LEN) {
            char *copy = strdup(v->valuestring);
            if (!copy)
                return -ENOMEM;
            *id = (vd_point_id){.kind = VD_ID_STR, .str = copy, .len = (uint32_t)strlen(copy)};
        } else {
            return vd_fail(pc->em, VD_E_INVALID_FILTER,
                           "%s.has_id[%zu] must be a point id: an integer 0 to 2^53-1 or a string of 1 to %d bytes",
                           where, c->n_ids, VD_ID_MAX_LEN);
        }
        c->n_ids++;
    }
    qsort(c->ids, c->n_ids, sizeof *c->ids, vd_id_order);
    return 0;
}

static bool is_group(const cJSON *j)
{
    return cJSON_GetObjectItemCaseSensitive(j, "must") ||
           cJSON_GetObjectItemCaseSensitive(j, "should") ||
           cJSON_GetObjectItemCaseSensitive(j, "must_not") ||
           cJSON_GetObjectItemCaseSensitive(j, "min_should");
}

static int parse_cond(parse_ctx *pc, const cJSON *j, vd_cond *c, const char *where, unsigned depth)
{
    if (++pc->n_conds > VD_FILTER_MAX_CONDITIONS)
        return vd_fail(pc->em, VD_E_INVALID_FILTER, "filter has more than %d conditions",
                       VD_FILTER_MAX_CONDITIONS);
    if (!cJSON_IsObject(j))
        return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s must be an object", where);
    if (is_group(j))
        return parse_group(pc, j, c, where, depth + 1);
    const cJSON *has_id = cJSON_GetObjectItemCaseSensitive(j, "has_id");
    if (has_id)
        return parse_has_id(pc, j, has_id, c, where);
    static const char *const unary[] = {"is_empty", "is_null", "nested"};
    for (int u = 0; u < 3; u++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, unary[u]);
        if (!o)
            continue;
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "key");
        if (cJSON_GetArraySize((cJSON *)j) != 1 || !cJSON_IsObject(o) || !cJSON_IsString(k) || !k->valuestring[0])
            return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s.%s must be the condition's only field: "
                           "{\"%s\": {\"key\": \"…\"%s}}", where, unary[u], unary[u],
                           u == 2 ? ", \"filter\": {…}" : "");
        c->type = u == 0 ? COND_IS_EMPTY : u == 1 ? COND_IS_NULL : COND_NESTED;
        c->key = strdup(k->valuestring);
        if (!c->key)
            return -ENOMEM;
        int prc = vd_key_path_parse(&c->path, c->key);
        if (prc)
            return prc == -ENOMEM ? prc
                                  : vd_fail(pc->em, VD_E_INVALID_FILTER, "%s.key '%s' has an empty part", where, c->key);
        if (c->type != COND_NESTED) {
            if (cJSON_GetArraySize((cJSON *)o) != 1)
                return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s.%s takes only \"key\"", where, unary[u]);
            return 0;
        }
        const cJSON *sub = cJSON_GetObjectItemCaseSensitive(o, "filter");
        char at[256];
        snprintf(at, sizeof at, "%s.nested.filter", where);
        if (!sub || cJSON_GetArraySize((cJSON *)o) != 2)
            return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s.nested needs \"key\" and \"filter\"", where);
        if (!(c->sub = calloc(1, sizeof *c->sub)))
            return -ENOMEM;
        return parse_group(pc, sub, c->sub, at, depth + 1);
    }
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(j, "key");
    if (!key)
        return vd_fail(pc->em, VD_E_INVALID_FILTER,
                       "%s must have \"key\" with \"match\" or \"range\", or be a group with "
                       "must/should/must_not",
                       where);
    if (!cJSON_IsString(key) || !key->valuestring[0])
        return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s.key must be a non-empty string", where);
    const cJSON *match = NULL, *range = NULL, *count = NULL;
    for (const cJSON *f = j->child; f; f = f->next) {
        if (strcmp(f->string, "match") == 0)
            match = f;
        else if (strcmp(f->string, "range") == 0)
            range = f;
        else if (strcmp(f->string, "values_count") == 0)
            count = f;
        else if (strcmp(f->string, "key") != 0)
            return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s has unknown field '%s'", where,
                           f->string);
    }
    if ((match != NULL) + (range != NULL) + (count != NULL) != 1)
        return vd_fail(pc->em, VD_E_INVALID_FILTER,
                       "%s needs exactly one of \"match\", \"range\" or \"values_count\"", where);
    if (count) {
        c->type = COND_VALUES_COUNT;
        range = count;
    }
    c->key = strdup(key->valuestring);
    if (!c->key)
        return -ENOMEM;
    int rc = vd_key_path_parse(&c->path, c->key);
    if (rc == -ENOMEM)
        return rc;
    if (rc)
        return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s.key '%s' has an empty part", where, c->key);
    return match ? parse_match(pc, match, c, where) : parse_range(pc, range, c, where);
}

static int parse_list(parse_ctx *pc, const cJSON *arr, cond_list *l, const char *where,
                      unsigned depth)
{
    if (!cJSON_IsArray(arr))
        return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s must be an array of conditions", where);
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n > VD_FILTER_MAX_CONDITIONS)
        return vd_fail(pc->em, VD_E_INVALID_FILTER, "filter has more than %d conditions",
                       VD_FILTER_MAX_CONDITIONS);
    int trc = count_terms(pc, n, where);
    if (trc)
        return trc;
    l->items = calloc(n ? n : 1, sizeof *l->items);
    if (!l->items)
        return -ENOMEM;
    char sub[256];
    for (const cJSON *c = arr->child; c; c = c->next) {
        snprintf(sub, sizeof sub, "%s[%zu]", where, l->n);
        l->n++;
        int rc = parse_cond(pc, c, &l->items[l->n - 1], sub, depth);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_group(parse_ctx *pc, const cJSON *j, vd_cond *out, const char *where,
                       unsigned depth)
{
    if (depth > pc->max_depth)
        return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s nests groups deeper than %u levels", where,
                       pc->max_depth);
    if (!cJSON_IsObject(j))
        return vd_fail(pc->em, VD_E_INVALID_FILTER,
                       "%s must be an object with must/should/must_not", where);
    out->type = COND_GROUP;
    char sub[256];
    for (const cJSON *f = j->child; f; f = f->next) {
        cond_list *l = NULL;
        if (strcmp(f->string, "must") == 0)
            l = &out->must;
        else if (strcmp(f->string, "should") == 0)
            l = &out->should;
        else if (strcmp(f->string, "must_not") == 0)
            l = &out->must_not;
        else if (strcmp(f->string, "min_should") == 0) {
            const cJSON *conds = cJSON_GetObjectItemCaseSensitive(f, "conditions");
            const cJSON *min = cJSON_GetObjectItemCaseSensitive(f, "min_count");
            if (out->min_should.items || !cJSON_IsObject(f) || cJSON_GetArraySize((cJSON *)f) != 2 ||
                !cJSON_IsNumber(min) || min->valuedouble < 0 || min->valuedouble > VD_FILTER_MAX_CONDITIONS ||
                min->valuedouble != (double)(size_t)min->valuedouble)
                return vd_fail(pc->em, VD_E_INVALID_FILTER,
                               "%s.min_should must be {\"conditions\": [...], \"min_count\": N}", where);
            out->min_count = (size_t)min->valuedouble;
            snprintf(sub, sizeof sub, "%s.min_should.conditions", where);
            int rc = parse_list(pc, conds, &out->min_should, sub, depth);
            if (rc)
                return rc;
            continue;
        } else
            return vd_fail(pc->em, VD_E_INVALID_FILTER,
                           "%s has unknown field '%s' (use must, should, must_not, min_should)", where,
                           f->string);
        if (l->items)
            return vd_fail(pc->em, VD_E_INVALID_FILTER, "%s has '%s' twice", where, f->string);
        snprintf(sub, sizeof sub, "%s.%s", where, f->string);
        int rc = parse_list(pc, f, l, sub, depth);
        if (rc)
            return rc;
    }
    return 0;
}

/* How deep eval_group recurses for c (0: c is evaluated without temporary bitmaps). */
static unsigned group_depth(const vd_cond *c)
{
    if (c->type != COND_GROUP || c->min_should.items)
        return 0;
    unsigned deepest = 0;
    const cond_list *lists[] = {&c->must, &c->should, &c->must_not};
    for (int l = 0; l < 3; l++)
        for (size_t i = 0; i < lists[l]->n; i++) {
            unsigned d = group_depth(&lists[l]->items[i]);
            if (d > deepest)
                deepest = d;
        }
    return deepest + 1;
}

int vd_filter_parse(const cJSON *json, unsigned max_depth, size_t max_terms, vd_filter **out,
                    vd_errmsg *em)
{
    vd_filter *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    parse_ctx pc = {.max_depth = max_depth ? max_depth : 1, .max_terms = max_terms, .em = em};
    int rc = parse_group(&pc, json, &f->root, "filter", 1);
    if (rc) {
        if (rc == -ENOMEM)
            vd_fail(em, VD_E_OUT_OF_MEMORY, "out of memory while parsing the filter");
        vd_filter_destroy(f);
        return rc == -ENOMEM ? VD_E_OUT_OF_MEMORY : rc;
    }
    f->group_depth = group_depth(&f->root);
    *out = f;
    return 0;
}

size_t vd_filter_scratch_words(const vd_filter *f, size_t n_slots)
{
    return (size_t)f->group_depth * (2 * vd_bitset_words(n_slots) + 1);
}

void vd_filter_destroy(vd_filter *f)
{
    if (!f)
        return;
    cond_free(&f->root);
    free(f);
}

/* ---- testing one payload ---------------------------------------------- */

static bool value_in(const vd_cond *c, const cJSON *v)
{
    char key[VD_FILTER_MAX_VALUE_LEN + 8];
    if (!vd_keyword_key(v, key, sizeof key))
        return false;
    const char *k = key;
    return bsearch(&k, c->values, c->n_values, sizeof *c->values, cmp_str) != NULL;
}

static bool in_range(const vd_cond *c, double x)
{
    unsigned fl = c->range_flags;
    return !((fl & R_GT) && !(x > c->gt)) && !((fl & R_GTE) && !(x >= c->gte)) &&
           !((fl & R_LT) && !(x < c->lt)) && !((fl & R_LTE) && !(x <= c->lte));
}

static bool scalar_holds(const vd_cond *c, const cJSON *v)
{
    if (c->type == COND_MATCH)
        return value_in(c, v) != c->except;
    double t;
    if (c->datetime)
        return cJSON_IsString(v) && vd_datetime_parse(v->valuestring, &t) && in_range(c, t);
    return cJSON_IsNumber(v) && in_range(c, v->valuedouble);
}

static bool cond_match(const vd_cond *c, const vd_point_id *id, const cJSON *payload);

static bool leaf_match(const vd_cond *c, const vd_point_id *id, const cJSON *payload)
{
    if (c->type == COND_HAS_ID)
        return id && c->n_ids && bsearch(id, c->ids, c->n_ids, sizeof *c->ids, vd_id_order) != NULL;
    const cJSON *v = payload ? vd_payload_get(payload, &c->path) : NULL;
    switch (c->type) {
    case COND_IS_EMPTY:
        return !v || cJSON_IsNull(v) || (cJSON_IsArray(v) && !v->child);
    case COND_IS_NULL:
        return v && cJSON_IsNull(v);
    case COND_VALUES_COUNT:
        return in_range(c, !v || cJSON_IsNull(v) ? 0 : cJSON_IsArray(v) ? (double)cJSON_GetArraySize((cJSON *)v) : 1);
    case COND_NESTED:
        if (v && cJSON_IsObject(v))
            return cond_match(c->sub, id, v);
        for (const cJSON *e = v && cJSON_IsArray(v) ? v->child : NULL; e; e = e->next)
            if (cJSON_IsObject(e) && cond_match(c->sub, id, e))
                return true;
        return false;
    default:
        break;
    }
    if (!v)
        return false;
    if (!cJSON_IsArray(v))
        return scalar_holds(c, v);
    for (const cJSON *e = v->child; e; e = e->next)
        if (scalar_holds(c, e))
            return true;
    return false;
}

/* The point a condition is tested on: its id and payload, or (src set) the
 * slot it holds in a shard, whose index columns answer ranges they hold
 * and whose id and payload are looked up only when a leaf needs them. */
typedef struct point_ref {
    const vd_point_id *id;
    const cJSON *payload;
    const vd_filter_source *src;
    uint32_t slot;
} point_ref;

static bool cond_holds(const vd_cond *c, const point_ref *p);

static bool cond_match(const vd_cond *c, const vd_point_id *id, const cJSON *payload)
{
    point_ref p = {.id = id, .payload = payload};
    return cond_holds(c, &p);
}

bool vd_filter_match(const vd_filter *f, const cJSON *payload) { return cond_match(&f->root, NULL, payload); }

bool vd_filter_match_point(const vd_filter *f, const vd_point_id *id, const cJSON *payload)
{
    return cond_match(&f->root, id, payload);
}

/* ---- evaluating over a shard ------------------------------------------ */

static const vd_pindex *index_for(const vd_filter_source *src, const vd_cond *c)
{
    if ((c->type != COND_MATCH && c->type != COND_RANGE) || c->except)
        return NULL; /* the others are answered by testing payloads */
    vd_pindex_type want = c->type == COND_MATCH ? VD_PINDEX_KEYWORD
                          : c->datetime         ? VD_PINDEX_DATETIME
                                                : VD_PINDEX_NUMERIC;
    for (size_t i = 0; i < src->n_indexes; i++) {
        vd_pindex_type t = src->indexes[i]->type;
        if ((t == want || (want == VD_PINDEX_KEYWORD && vd_pindex_is_keyword(t))) &&
            strcmp(src->indexes[i]->field, c->key) == 0)
            return src->indexes[i];
    }
    return NULL;
}

size_t vd_filter_must_match(const vd_filter *f, const char *field, const char *const **keys)
{
    const cond_list *must = &f->root.must;
    for (size_t i = 0; i < must->n; i++) {
        const vd_cond *c = &must->items[i];
        if (c->type == COND_MATCH && !c->except && strcmp(c->key, field) == 0) {
            *keys = (const char *const *)c->values;
            return c->n_values;
        }
    }
    return 0;
}

static int eval(const vd_cond *c, const vd_filter_source *src, const uint64_t *cand, uint64_t *out);

static const vd_point_id *point_id(const vd_filter_source *src, size_t slot)
{
    return src->id_of ? src->id_of(src->ctx, (uint32_t)slot) : NULL;
}

/* A leaf on p: with a slot, a numeric or datetime range is read from its
 * index column where the index holds the slot's one value (as eval_numeric
 * does), anything else from the slot's payload. */
static bool leaf_holds(const vd_cond *c, const point_ref *p)
{
    if (!p->src)
        return leaf_match(c, p->id, p->payload);
    const vd_filter_source *src = p->src;
    const vd_pindex *idx = c->type == COND_RANGE ? index_for(src, c) : NULL;
    if (idx && p->slot < idx->values_cap && !vd_bit_test(idx->multi, p->slot)) {
        double x = idx->values[p->slot];
        return x >= c->lo && x <= c->hi; /* NaN (no value) fails both */
    }
    return leaf_match(c, point_id(src, p->slot), src->payload_of(src->ctx, p->slot));
}

static bool cond_holds(const vd_cond *c, const point_ref *p)
{
    if (c->type != COND_GROUP)
        return leaf_holds(c, p);
    for (size_t i = 0; i < c->must.n; i++)
        if (!cond_holds(&c->must.items[i], p))
            return false;
    for (size_t i = 0; i < c->must_not.n; i++)
        if (cond_holds(&c->must_not.items[i], p))
            return false;
    if (c->min_should.items) {
        size_t held = 0;
        for (size_t i = 0; i < c->min_should.n && held < c->min_count; i++)
            held += cond_holds(&c->min_should.items[i], p);
        if (held < c->min_count)
            return false;
    }
    if (!c->should.n)
        return true;
    for (size_t i = 0; i < c->should.n; i++)
        if (cond_holds(&c->should.items[i], p))
            return true;
    return false;
}

bool vd_filter_match_slot(const vd_filter *f, const vd_filter_source *src, uint32_t slot)
{
    point_ref p = {.src = src, .slot = slot};
    return cond_holds(&f->root, &p);
}

static bool cond_indexed(const vd_cond *c, const vd_filter_source *src)
{
    if (c->type != COND_GROUP)
        return c->type == COND_RANGE && index_for(src, c);
    const cond_list *lists[] = {&c->must, &c->must_not, &c->min_should, &c->should};
    for (size_t l = 0; l < sizeof lists / sizeof *lists; l++)
        for (size_t i = 0; i < lists[l]->n; i++)
            if (!cond_indexed(&lists[l]->items[i], src))
                return false;
    return true;
}

bool vd_filter_slot_indexed(const vd_filter *f, const vd_filter_source *src)
{
    return cond_indexed(&f->root, src);
}

/* cand ∩ {slots whose payload satisfies c}, testing each candidate. */
static void eval_scan(const vd_cond *c, const vd_filter_source *src, const uint64_t *cand,
                      uint64_t *out)
{
    size_t nw = vd_bitset_words(src->n_slots);
    memset(out, 0, nw * 8);
    for (size_t s = vd_bitset_next(cand, nw, 0); s != SIZE_MAX; s = vd_bitset_next(cand, nw, s + 1))
        if (cond_match(c, point_id(src, s), src->payload_of(src->ctx, (uint32_t)s)))
            vd_bit_set(out, s);
}

/* has_id through the shard's id map: one look-up per id, not a scan. */
static void eval_has_id(const vd_cond *c, const vd_filter_source *src, const uint64_t *cand, uint64_t *out)
{
    memset(out, 0, vd_bitset_words(src->n_slots) * 8);
    for (size_t i = 0; i < c->n_ids; i++) {
        uint32_t s;
        if (src->slot_of(src->ctx, &c->ids[i], &s) && s < src->n_slots && vd_bit_test(cand, s))
            vd_bit_set(out, s);
    }
}

static void eval_keyword(const vd_cond *c, const vd_pindex *idx, const vd_filter_source *src,
                         const uint64_t *cand, uint64_t *out)
{
    memset(out, 0, vd_bitset_words(src->n_slots) * 8);
    for (size_t v = 0; v < c->n_values; v++) {
        const vd_posting *p = vd_pindex_lookup(idx, c->values[v]);
        for (uint32_t i = 0; p && i < p->n; i++) {
            uint32_t s = p->slots[i];
            if (s < src->n_slots && vd_bit_test(cand, s))
                vd_bit_set(out, s);
        }
    }
}

/* The range as one closed interval [lo, hi]: exclusive bounds move to the
 * next double, so x > a is x >= nextafter(a, +inf). */
static void closed_range(const vd_cond *c, double *lo, double *hi)
{
    *lo = -INFINITY;
    *hi = INFINITY;
    if (c->range_flags & R_GTE)
        *lo = c->gte;
    if ((c->range_flags & R_GT) && nextafter(c->gt, INFINITY) > *lo)
        *lo = nextafter(c->gt, INFINITY);
    if (c->range_flags & R_LTE)
        *hi = c->lte;
    if ((c->range_flags & R_LT) && nextafter(c->lt, -INFINITY) < *hi)
        *hi = nextafter(c->lt, -INFINITY);
}

/* Range over a numeric column: 64 values per bitmap word, compared two or
 * four at a time (util/rangebits.h); NaN (no value) fails both comparisons.
 * Points whose value is an array are checked on their payload. */
static void eval_numeric(const vd_cond *c, const vd_pindex *idx, const vd_filter_source *src,
                         const uint64_t *cand, uint64_t *out)
{
    size_t nw = vd_bitset_words(src->n_slots);
    size_t limit = src->n_slots < idx->values_cap ? src->n_slots : idx->values_cap;
    bool avx2 = vd_distance()->isa >= VD_ISA_AVX2; /* what the `simd` setting allows on this CPU */
    memset(out, 0, nw * 8);
    for (size_t w = 0; w * 64 < limit; w++) {
        if (!cand[w])
            continue;
        size_t base = w * 64, cnt = limit - base < 64 ? limit - base : 64;
        uint64_t m = vd_range_bits(idx->values + base, cnt, c->lo, c->hi, avx2);
        uint64_t multi = cand[w] & idx->multi[w];
        out[w] = m & cand[w] & ~idx->multi[w];
        for (; multi; multi &= multi - 1) {
            size_t s = base + (size_t)__builtin_ctzll(multi);
            if (leaf_match(c, point_id(src, s), src->payload_of(src->ctx, (uint32_t)s)))
                vd_bit_set(out, s);
        }
    }
}

static int eval_group(const vd_cond *c, const vd_filter_source *src, const uint64_t *cand,
                      uint64_t *out)
{
    size_t nw = vd_bitset_words(src->n_slots), need = 2 * nw + 1;
    vd_filter_scratch *sc = src->scratch;
    bool lent = sc && sc->cap - sc->used >= need;
    uint64_t *tmp = lent ? sc->words + sc->used : malloc(need * 8);
    if (!tmp)
        return -ENOMEM;
    if (lent)
        sc->used += need;
    uint64_t *any = tmp + nw;
    int rc = 0;
    memcpy(out, cand, nw * 8);
    /* must: indexed conditions first (pass 0), then the rest (pass 1). */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < c->must.n; i++) {
            const vd_cond *m = &c->must.items[i];
            if ((index_for(src, m) != NULL) != (pass == 0))
                continue;
            if ((rc = eval(m, src, out, tmp)))
                goto done;
            memcpy(out, tmp, nw * 8);
        }
    }
    for (size_t i = 0; i < c->must_not.n; i++) {
        if ((rc = eval(&c->must_not.items[i], src, out, tmp)))
            goto done;
        for (size_t w = 0; w < nw; w++)
            out[w] &= ~tmp[w];
    }
    if (c->should.n) {
        memset(any, 0, nw * 8);
        for (size_t i = 0; i < c->should.n; i++) {
            if ((rc = eval(&c->should.items[i], src, out, tmp)))
                goto done;
            for (size_t w = 0; w < nw; w++)
                any[w] |= tmp[w];
        }
        memcpy(out, any, nw * 8);
    }
done:
    if (lent)
        sc->used -= need;
    else
        free(tmp);
    return rc;
}

static int eval(const vd_cond *c, const vd_filter_source *src, const uint64_t *cand, uint64_t *out)
{
    if (c->type == COND_GROUP && !c->min_should.items)
        return eval_group(c, src, cand, out);
    if (c->type == COND_HAS_ID && src->slot_of) {
        eval_has_id(c, src, cand, out);
        return 0;
    }
    const vd_pindex *idx = index_for(src, c);
    if (idx && c->type == COND_MATCH)
        eval_keyword(c, idx, src, cand, out);
    else if (idx)
        eval_numeric(c, idx, src, cand, out);
    else
        eval_scan(c, src, cand, out);
    return 0;
}

int vd_filter_eval(const vd_filter *f, const vd_filter_source *src, uint64_t *out)
{
    if (src->n_slots == 0)
        return 0; /* an empty shard (its bitsets are not even allocated) matches nothing */
    return eval(&f->root, src, src->alive, out);
}

/* types.c — metric names and the stable point-id hash. */
#include "vectord/types.h"

#include <string.h>

static const char *const metric_names[] = {"cosine", "dot", "l2"};

const char *vd_metric_name(vd_metric m)
{
    return (unsigned)m < 3 ? metric_names[m] : "unknown";
}

int vd_metric_parse(const char *name, vd_metric *out)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, metric_names[i]) == 0) {
            *out = (vd_metric)i;
            return 0;
        }
    }
    return -1;
}

bool vd_id_equal(const vd_point_id *a, const vd_point_id *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == VD_ID_INT)
        return a->num == b->num;
    return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}

int vd_id_order(const void *pa, const void *pb)
{
    const vd_point_id *a = pa, *b = pb;
    if (a->kind != b->kind)
        return a->kind == VD_ID_INT ? -1 : 1;
    if (a->kind == VD_ID_INT)
        return (a->num > b->num) - (a->num < b->num);
    size_t n = a->len < b->len ? a->len : b->len;
    int d = memcmp(a->str, b->str, n);
    return d ? d : (a->len > b->len) - (a->len < b->len);
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* splitmix64's finaliser: spreads FNV's weak low bits over the whole word. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t vd_id_hash(const vd_point_id *id)
{
    unsigned char tag = (unsigned char)id->kind;
    uint64_t h = fnv1a(0xcbf29ce484222325ULL, &tag, 1);
    if (id->kind == VD_ID_INT) {
        unsigned char le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (unsigned char)(id->num >> (8 * i));
        h = fnv1a(h, le, 8);
    } else {
        h = fnv1a(h, (const unsigned char *)id->str, id->len);
    }
    return mix64(h);
}

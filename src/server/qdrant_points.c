/* qdrant_points.c — see qdrant.h. Points: upsert (list and batch forms),
 * retrieve, delete. Ids are unsigned integers or UUIDs; a UUID in any
 * spelling a client sends (upper case, no hyphens, braces, urn:uuid:) is
 * stored and returned in its canonical form, 8-4-4-4-12 lower-case hex. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/handlers.h"
#include "server/qdrant.h"
#include "server/response.h"

#define UUID_LEN 36

/* The canonical spelling of a UUID text into out (UUID_LEN + 1 bytes), or false. */
static bool uuid_canonical(const char *s, char *out)
{
    size_t n = strlen(s);
    if (n > 9 && strncasecmp(s, "urn:uuid:", 9) == 0) {
        s += 9;
        n -= 9;
    }
    if (n >= 2 && s[0] == '{' && s[n - 1] == '}') {
        s++;
        n -= 2;
    }
    char hex[32];
    size_t h = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-') {
            if (n != UUID_LEN || (i != 8 && i != 13 && i != 18 && i != 23))
                return false;
            continue;
        }
        if (!isxdigit((unsigned char)s[i]) || h == 32)
            return false;
        hex[h++] = (char)tolower((unsigned char)s[i]);
    }
    if (h != 32 || (n != 32 && n != UUID_LEN))
        return false;
    snprintf(out, UUID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
    return true;
}

/* A Qdrant point id (a JSON value) as vectord's: an unsigned integer stays
 * one, a UUID string becomes its canonical spelling. NULL if it is neither. */
static cJSON *native_id(const cJSON *id)
{
    if (cJSON_IsNumber(id))
        return cJSON_Duplicate(id, 0); /* the native parser checks the integer's range */
    char canon[UUID_LEN + 1];
    if (cJSON_IsString(id) && uuid_canonical(id->valuestring, canon))
        return cJSON_CreateString(canon);
    return NULL;
}

void vd_qd_canonical_has_id(cJSON *json)
{
    for (cJSON *m = json ? json->child : NULL; m; m = m->next) {
        if (m->string && strcmp(m->string, "has_id") == 0 && cJSON_IsArray(m)) {
            for (cJSON *id = m->child; id; id = id->next) {
                char canon[UUID_LEN + 1];
                if (cJSON_IsString(id) && uuid_canonical(id->valuestring, canon) && strcmp(canon, id->valuestring))
                    cJSON_SetValuestring(id, canon);
            }
        } else if (cJSON_IsObject(m) || cJSON_IsArray(m)) {
            vd_qd_canonical_has_id(m);
        }
    }
}

static int bad_id(vd_call *call, const char *where)
{
    return vd_fail(&call->em, VD_E_INVALID_ID,
                   "%s: a point id is an unsigned integer or a UUID (e.g. \"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\")",
                   where);
}

/* One point of the native upsert body from Qdrant's id, vector and payload. */
static int native_point(vd_call *call, const cJSON *id, const cJSON *vector, const cJSON *payload,
                        const char *where, cJSON *points)
{
    cJSON *nid = native_id(id);
    if (!nid)
        return bad_id(call, where);
    if (cJSON_IsObject(vector)) {
        cJSON_Delete(nid);
        return vd_fail(&call->em, VD_E_INVALID_VECTOR,
                       "%s: named and sparse vectors are not supported; give the vector as an array", where);
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddItemToObject(p, "id", nid);
    if (vector) /* an array, or the placeholder of one the body scan lifted */
        cJSON_AddItemToObject(p, "vector", cJSON_Duplicate(vector, 1));
    if (payload)
        cJSON_AddItemToObject(p, "payload", cJSON_Duplicate(payload, 1));
    cJSON_AddItemToArray(points, p);
    return 0;
}

/* Qdrant's list form {"points": [{id, vector, payload}]} or batch form
 * {"batch": {ids, vectors, payloads}} as vectord's {"points": [...]}. */
static int upsert_body(vd_call *call, cJSON **out)
{
    const cJSON *list = cJSON_GetObjectItem(call->body, "points"), *batch = cJSON_GetObjectItem(call->body, "batch");
    if (!list == !batch)
        return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                       "give either \"points\": [{\"id\", \"vector\", \"payload\"}] or \"batch\": "
                       "{\"ids\", \"vectors\", \"payloads\"}");
    cJSON *n = cJSON_CreateObject();
    *out = n;
    cJSON *points = cJSON_AddArrayToObject(n, "points");
    char where[64];
    if (list) {
        if (!cJSON_IsArray(list))
            return vd_fail(&call->em, VD_E_INVALID_REQUEST, "points must be an array");
        int i = 0;
        const cJSON *p;
        cJSON_ArrayForEach(p, list)
        {
            snprintf(where, sizeof where, "points[%d]", i++);
            if (!cJSON_IsObject(p))
                return vd_fail(&call->em, VD_E_INVALID_REQUEST, "%s must be an object {\"id\", \"vector\", \"payload\"}",
                               where);
            static const char *const known[] = {"id", "vector", "payload", NULL};
            int rc = vd_qd_known_fields(call, p, known, where);
            if (rc)
                return rc;
            rc = native_point(call, cJSON_GetObjectItem(p, "id"), cJSON_GetObjectItem(p, "vector"),
                                  cJSON_GetObjectItem(p, "payload"), where, points);
            if (rc)
                return rc;
        }
        return 0;
    }
    const cJSON *ids = cJSON_GetObjectItem(batch, "ids"), *vectors = cJSON_GetObjectItem(batch, "vectors"),
                *payloads = cJSON_GetObjectItem(batch, "payloads");
    int count = cJSON_GetArraySize((cJSON *)ids);
    if (!cJSON_IsArray(ids) || !cJSON_IsArray(vectors) || cJSON_GetArraySize((cJSON *)vectors) != count ||
        (payloads && !cJSON_IsNull(payloads) &&
         (!cJSON_IsArray(payloads) || cJSON_GetArraySize((cJSON *)payloads) != count)))
        return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                       "batch needs \"ids\" and \"vectors\" (and optionally \"payloads\") as arrays of one length");
    for (int i = 0; i < count; i++) {
        snprintf(where, sizeof where, "batch.ids[%d]", i);
        int rc = native_point(call, cJSON_GetArrayItem(ids, i), cJSON_GetArrayItem(vectors, i),
                              cJSON_IsArray(payloads) ? cJSON_GetArrayItem(payloads, i) : NULL, where, points);
        if (rc)
            return rc;
    }
    return 0;
}

/* The answer is Qdrant's UpdateResult whatever ?wait says: vectord's write is
 * durable and applied when it answers either way. */
int vd_qd_points_upsert(vd_call *call)
{
    return vd_qd_over_native(call, "{\"points\":[{\"id\":…,\"vector\":[…],\"payload\":{…}}]}", upsert_body,
                             vd_h_points_upsert, vd_qd_update_result);
}

static int get_point(vd_call *call, vd_collection *c, const cJSON *id, bool with_vector, vd_point_out *p);

int vd_qd_selector(vd_call *call, cJSON *native, bool must_exist)
{
    const cJSON *list = cJSON_GetObjectItem(call->body, "points"), *filter = cJSON_GetObjectItem(call->body, "filter");
    if (!list == !filter)
        return vd_fail(&call->em, VD_E_INVALID_REQUEST, "give either \"points\": [ids] or \"filter\": {…}");
    if (filter) {
        cJSON_AddItemToObject(native, "filter", cJSON_Duplicate(filter, 1));
        return 0;
    }
    if (!cJSON_IsArray(list))
        return vd_fail(&call->em, VD_E_INVALID_REQUEST, "points must be an array of point ids");
    vd_collection *c = NULL;
    int rc = must_exist ? vd_call_collection(call, &c) : 0;
    cJSON *ids = cJSON_AddArrayToObject(native, "ids");
    const cJSON *id;
    int i = 0;
    cJSON_ArrayForEach(id, list)
    {
        cJSON *nid = rc ? NULL : native_id(id);
        if (!rc && !nid) {
            char where[48];
            snprintf(where, sizeof where, "points[%d]", i);
            rc = bad_id(call, where);
        }
        if (rc)
            break;
        cJSON_AddItemToArray(ids, nid);
        vd_point_out p;
        int g = c ? get_point(call, c, nid, false, &p) : 0;
        if (g == VD_E_POINT_NOT_FOUND && cJSON_IsString(nid)) /* Qdrant refuses to change a missing point */
            rc = vd_fail(&call->em, VD_E_POINT_NOT_FOUND, "No point with id %s found", nid->valuestring);
        else if (g == VD_E_POINT_NOT_FOUND)
            rc = vd_fail(&call->em, VD_E_POINT_NOT_FOUND, "No point with id %.0f found", nid->valuedouble);
        else if (g)
            rc = g;
        else if (c)
            vd_point_out_free(&p);
        i++;
    }
    vd_collection_unref(c);
    return rc;
}

static int delete_body(vd_call *call, cJSON **out)
{
    *out = cJSON_CreateObject();
    return vd_qd_selector(call, *out, false);
}

int vd_qd_points_delete(vd_call *call)
{
    return vd_qd_over_native(call, "{\"points\":[…]} or {\"filter\":{…}}", delete_body, vd_h_points_delete,
                             vd_qd_update_result);
}

/* Qdrant's Record for a stored point: id, payload (unless left out), vector (if asked). */
static cJSON *record(vd_point_out *p, const vd_qd_payload_sel *payload, bool with_vector)
{
    vd_qd_payload_trim(payload, p->payload);
    cJSON *o = vd_resp_point(p, false, payload->with);
    if (!o)
        return NULL;
    cJSON_DeleteItemFromObject(o, "version");
    if (!with_vector)
        cJSON_DeleteItemFromObject(o, "vector");
    return o;
}

int vd_qd_point_id(vd_call *call, const cJSON *id, vd_point_id *out, char *buf)
{
    *out = (vd_point_id){0};
    if (cJSON_IsNumber(id) && id->valuedouble >= 0 && id->valuedouble <= 9007199254740991.0 &&
        id->valuedouble == (double)(uint64_t)id->valuedouble) {
        out->kind = VD_ID_INT;
        out->num = (uint64_t)id->valuedouble;
        return 0;
    }
    if (cJSON_IsString(id) && uuid_canonical(id->valuestring, buf)) {
        out->kind = VD_ID_STR;
        out->str = buf;
        out->len = UUID_LEN;
        return 0;
    }
    return bad_id(call, "id");
}

/* Looks a Qdrant id (JSON) up: 0 and *p filled, VD_E_POINT_NOT_FOUND, or an error. */
static int get_point(vd_call *call, vd_collection *c, const cJSON *id, bool with_vector, vd_point_out *p)
{
    vd_point_id pid;
    char canon[UUID_LEN + 1];
    int rc = vd_qd_point_id(call, id, &pid, canon);
    if (rc)
        return rc;
    rc = vd_collection_get(c, &pid, with_vector, p);
    if (rc && rc != VD_E_POINT_NOT_FOUND)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    return rc;
}

int vd_qd_point_get(vd_call *call)
{
    vd_collection *c;
    int rc = vd_call_collection(call, &c);
    if (rc)
        return rc;
    /* The path's id: digits are an integer id, anything else a UUID. */
    const char *t = call->point_id;
    size_t digits = strspn(t, "0123456789");
    cJSON *id = digits && !t[digits] && digits <= 16 ? cJSON_CreateNumber(strtod(t, NULL)) : cJSON_CreateString(t);
    vd_point_out p;
    rc = id ? get_point(call, c, id, true, &p) : vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
    cJSON_Delete(id);
    vd_collection_unref(c);
    if (rc == VD_E_POINT_NOT_FOUND)
        return vd_fail(&call->em, rc, "point '%.64s' not found in collection '%s'", call->point_id, call->collection);
    if (rc)
        return rc;
    call->result = record(&p, &(vd_qd_payload_sel){.with = true}, true);
    vd_point_out_free(&p);
    return call->result ? 0 : vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
}

/* with_payload / with_vector as Qdrant sends them: a bool (lists and
 * include/exclude selectors are not supported yet: refused). */
static int flag(vd_call *call, const char *name, bool dflt, bool *out)
{
    const cJSON *f = cJSON_GetObjectItem(call->body, name);
    if (!f || cJSON_IsNull(f)) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsBool(f))
        return vd_fail(&call->em, VD_E_INVALID_REQUEST, "%s must be true or false (named vectors are not supported)",
                       name);
    *out = cJSON_IsTrue(f);
    return 0;
}

int vd_qd_points_retrieve(vd_call *call)
{
    int rc = vd_call_require_body(call, "{\"ids\":[…]}");
    vd_qd_payload_sel with_payload;
    bool with_vector = false;
    if (rc || (rc = vd_qd_payload_sel_parse(call, cJSON_GetObjectItem(call->body, "with_payload"), true, "", &with_payload)) ||
        (rc = flag(call, "with_vector", false, &with_vector)))
        return rc;
    const cJSON *ids = cJSON_GetObjectItem(call->body, "ids");
    if (!cJSON_IsArray(ids))
        return vd_fail(&call->em, VD_E_INVALID_REQUEST, "ids must be an array of point ids");
    if ((size_t)cJSON_GetArraySize((cJSON *)ids) > call->api->limits.max_batch_points)
        return vd_fail(&call->em, VD_E_BATCH_TOO_LARGE, "at most %zu ids (setting max_batch_points)",
                       (size_t)call->api->limits.max_batch_points);
    vd_collection *c;
    if ((rc = vd_call_collection(call, &c)))
        return rc;
    cJSON *out = cJSON_CreateArray();
    const cJSON *id;
    cJSON_ArrayForEach(id, ids)
    {
        vd_point_out p;
        rc = get_point(call, c, id, with_vector, &p);
        if (rc == VD_E_POINT_NOT_FOUND) {
            rc = 0; /* Qdrant leaves missing ids out */
            continue;
        }
        if (rc)
            break;
        cJSON *r = record(&p, &with_payload, with_vector);
        vd_point_out_free(&p);
        if (!r) {
            rc = vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
            break;
        }
        cJSON_AddItemToArray(out, r);
    }
    vd_collection_unref(c);
    if (rc) {
        cJSON_Delete(out);
        return rc;
    }
    call->result = out;
    return 0;
}

/* The body's "filter" (absent or null: none), parsed within the limits. */
static int body_filter(vd_call *call, vd_filter **out)
{
    cJSON *filter = cJSON_GetObjectItem(call->body, "filter");
    vd_qd_canonical_has_id(filter);
    *out = NULL;
    if (!filter || cJSON_IsNull(filter))
        return 0;
    return vd_filter_parse(filter, call->api->limits.max_filter_depth, call->api->limits.max_filter_terms, out,
                           &call->em);
}

static int count_now(vd_call *call)
{
    int rc = vd_call_require_body(call, "{\"filter\": {…}, \"exact\": true}");
    if (rc)
        return rc;
    static const char *const known[] = {"filter", "exact", "shard_key", NULL};
    if ((rc = vd_qd_known_fields(call, call->body, known, "a count")))
        return rc;
    vd_filter *flt = NULL;
    if ((rc = body_filter(call, &flt)))
        return rc;
    vd_collection *c;
    size_t n = 0;
    if (!(rc = vd_call_collection(call, &c))) {
        /* always exact: a count of the matching bitmap, shard by shard */
        if (vd_collection_count(c, flt, &n))
            rc = vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory counting");
        vd_collection_unref(c);
    }
    vd_filter_destroy(flt);
    if (rc)
        return rc;
    call->result = cJSON_CreateObject();
    cJSON_AddNumberToObject(call->result, "count", (double)n);
    return 0;
}

/* ---- scroll: every point in id order, page by page ------------------------ */

typedef struct id_list {
    vd_point_id *ids; /* str copies owned */
    size_t n, cap;
    bool oom;
} id_list;

static void collect_id(void *ctx, const vd_point_id *id, uint64_t version)
{
    (void)version;
    id_list *l = ctx;
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        vd_point_id *n = realloc(l->ids, cap * sizeof *n);
        if (!n) {
            l->oom = true;
            return;
        }
        l->ids = n;
        l->cap = cap;
    }
    vd_point_id c = *id;
    if (id->kind == VD_ID_STR) {
        char *copy = malloc(id->len + 1);
        if (!copy) {
            l->oom = true;
            return;
        }
        memcpy(copy, id->str, id->len);
        copy[id->len] = 0;
        c.str = copy;
    }
    l->ids[l->n++] = c;
}

static void id_list_free(id_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->ids[i].kind == VD_ID_STR)
            free((void *)l->ids[i].str);
    free(l->ids);
}

/* A point's place in an ordered scroll. */
typedef struct ordered {
    double value;
    vd_point_id id; /* borrowed from the id list */
} ordered_point;

typedef struct order_by {
    vd_key_path key;
    bool desc;
    bool has_start;
    double start;
} order_by;

/* The number a payload value orders by: a number, or an RFC 3339 date-time
 * (seconds since 1970); false for other values. */
static bool order_number(const cJSON *v, double *x)
{
    if (cJSON_IsNumber(v)) {
        *x = v->valuedouble;
        return true;
    }
    return cJSON_IsString(v) && vd_datetime_parse(v->valuestring, x);
}

/* The value a point orders by: its key's value, or of an array the lowest
 * (ascending) or highest (descending). false: the point has none. */
static bool order_value(const order_by *ob, const cJSON *payload, double *out)
{
    const cJSON *v = payload ? vd_payload_get(payload, &ob->key) : NULL;
    bool any = false;
    double x;
    for (const cJSON *e = cJSON_IsArray(v) ? v->child : v; e; e = cJSON_IsArray(v) ? e->next : NULL)
        if (order_number(e, &x) && (!any || (ob->desc ? x > *out : x < *out))) {
            *out = x;
            any = true;
        }
    return any;
}

static int ordered_cmp_asc(const void *pa, const void *pb)
{
    const ordered_point *a = pa, *b = pb;
    if (a->value != b->value)
        return a->value < b->value ? -1 : 1;
    return vd_id_order(&a->id, &b->id);
}

static int ordered_cmp_desc(const void *pa, const void *pb)
{
    const ordered_point *a = pa, *b = pb;
    if (a->value != b->value)
        return a->value > b->value ? -1 : 1;
    return vd_id_order(&a->id, &b->id);
}

/* order_by: "key", or {"key", "direction": "asc"|"desc", "start_from": number or date-time}. */
static int parse_order_by(vd_call *call, const cJSON *o, order_by *ob)
{
    const cJSON *key = cJSON_IsString(o) ? o : cJSON_GetObjectItem(o, "key");
    const cJSON *dir = cJSON_IsObject(o) ? cJSON_GetObjectItem(o, "direction") : NULL;
    const cJSON *start = cJSON_IsObject(o) ? cJSON_GetObjectItem(o, "start_from") : NULL;
    static const char *const known[] = {"key", "direction", "start_from", NULL};
    int rc = cJSON_IsObject(o) ? vd_qd_known_fields(call, o, known, "order_by") : 0;
    if (rc)
        return rc;
    const char *d = cJSON_GetStringValue(dir);
    if (!cJSON_IsString(key) || vd_key_path_parse(&ob->key, key->valuestring) != 0 ||
        (dir && !cJSON_IsNull(dir) && (!d || (strcmp(d, "asc") && strcmp(d, "desc")))))
        return vd_fail(&call->em, VD_E_INVALID_REQUEST,
                       "order_by must be a payload key, or {\"key\", \"direction\": \"asc\"|\"desc\", \"start_from\"}");
    ob->desc = d && strcmp(d, "desc") == 0;
    if (start && !cJSON_IsNull(start)) {
        if (!order_number(start, &ob->start))
            return vd_fail(&call->em, VD_E_INVALID_REQUEST, "order_by.start_from must be a number or an RFC 3339 date-time");
        ob->has_start = true;
    }
    return 0;
}

/* The points of l (matching flt) in order_by's order, the first `limit`;
 * Qdrant answers no next_page_offset here (start_from pages). */
static int scroll_ordered(vd_call *call, vd_collection *c, const id_list *l, const vd_filter *flt, const order_by *ob,
                          const vd_qd_payload_sel *sel, bool with_vector, size_t limit, cJSON *points)
{
    ordered_point *o = malloc((l->n ? l->n : 1) * sizeof *o);
    if (!o)
        return vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory ordering the points");
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < l->n; i++) { /* first the values, then only the page's points */
        vd_point_out p;
        int g = vd_collection_get(c, &l->ids[i], false, &p);
        if (g == VD_E_POINT_NOT_FOUND)
            continue;
        if (g) {
            rc = vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
            break;
        }
        double v = 0;
        if ((!flt || vd_filter_match_point(flt, &p.id, p.payload)) && order_value(ob, p.payload, &v) &&
            (!ob->has_start || (ob->desc ? v <= ob->start : v >= ob->start)))
            o[n++] = (ordered_point){v, l->ids[i]};
        vd_point_out_free(&p);
        if (i % 4096 == 4095 && (rc = vd_call_check_deadline(call, "ordering the points")))
            break;
    }
    if (!rc)
        qsort(o, n, sizeof *o, ob->desc ? ordered_cmp_desc : ordered_cmp_asc);
    for (size_t i = 0; !rc && i < n && (size_t)cJSON_GetArraySize(points) < limit; i++) {
        vd_point_out p;
        if (vd_collection_get(c, &o[i].id, with_vector, &p) != 0)
            continue; /* deleted meanwhile */
        cJSON *r = record(&p, sel, with_vector);
        vd_point_out_free(&p);
        if (!r) {
            rc = vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
            break;
        }
        cJSON_AddNumberToObject(r, "order_value", o[i].value);
        cJSON_AddItemToArray(points, r);
    }
    free(o);
    return rc;
}

static int scroll_now(vd_call *call)
{
    int rc = vd_call_require_body(call, "{\"limit\": 10, \"offset\": null, \"filter\": {…}}");
    vd_qd_payload_sel with_payload;
    bool with_vector = false;
    if (rc || (rc = vd_qd_payload_sel_parse(call, cJSON_GetObjectItem(call->body, "with_payload"), true, "", &with_payload)) ||
        (rc = flag(call, "with_vector", false, &with_vector)))
        return rc;
    static const char *const known[] = {"offset", "limit", "filter", "with_payload", "with_vector", "order_by",
                                        "shard_key", NULL};
    if ((rc = vd_qd_known_fields(call, call->body, known, "a scroll")))
        return rc;
    const cJSON *lim = cJSON_GetObjectItem(call->body, "limit"), *off = cJSON_GetObjectItem(call->body, "offset");
    double limit = cJSON_IsNumber(lim) ? lim->valuedouble : 10;
    if ((lim && !cJSON_IsNumber(lim)) || limit < 1 || limit > call->api->limits.max_batch_points)
        return vd_fail(&call->em, VD_E_INVALID_REQUEST, "limit must be 1 to %zu (setting max_batch_points)",
                       (size_t)call->api->limits.max_batch_points);
    vd_point_id start = {0};
    char start_buf[UUID_LEN + 1];
    if (off && !cJSON_IsNull(off) && (rc = vd_qd_point_id(call, off, &start, start_buf)))
        return rc;
    const cJSON *ob_json = cJSON_GetObjectItem(call->body, "order_by");
    bool ordered = ob_json && !cJSON_IsNull(ob_json);
    if (ordered && off && !cJSON_IsNull(off))
        return vd_fail(&call->em, VD_E_INVALID_REQUEST, "offset does not go with order_by: page with order_by.start_from");
    order_by ob = {0};
    vd_filter *flt = NULL;
    vd_collection *c = NULL;
    if ((ordered && (rc = parse_order_by(call, ob_json, &ob))) || (rc = body_filter(call, &flt)) ||
        (rc = vd_call_collection(call, &c))) {
        vd_key_path_free(&ob.key);
        vd_filter_destroy(flt);
        return rc;
    }
    id_list l = {0};
    vd_collection_foreach(c, collect_id, &l);
    cJSON *points = cJSON_CreateArray(), *next = NULL;
    if (l.oom)
        rc = vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory listing the points");
    else if (l.n)
        qsort(l.ids, l.n, sizeof *l.ids, vd_id_order);
    if (!rc && ordered)
        rc = scroll_ordered(call, c, &l, flt, &ob, &with_payload, with_vector, (size_t)limit, points);
    for (size_t i = 0; !rc && !ordered && i < l.n && !next; i++) {
        if (start.kind && vd_id_order(&l.ids[i], &start) < 0)
            continue;
        vd_point_out p;
        int g = vd_collection_get(c, &l.ids[i], with_vector, &p);
        if (g == VD_E_POINT_NOT_FOUND)
            continue; /* deleted since the listing */
        if (g) {
            rc = vd_fail(&call->em, VD_E_OUT_OF_MEMORY, "out of memory");
            break;
        }
        if (!flt || vd_filter_match_point(flt, &p.id, p.payload)) {
            if ((double)cJSON_GetArraySize(points) < limit)
                cJSON_AddItemToArray(points, record(&p, &with_payload, with_vector));
            else /* the first point of the next page */
                next = vd_resp_id(&p.id); /* integer ids as digits, exact past 2^52 */
        }
        vd_point_out_free(&p);
    }
    id_list_free(&l);
    vd_collection_unref(c);
    vd_filter_destroy(flt);
    vd_key_path_free(&ob.key);
    if (rc) {
        cJSON_Delete(points);
        cJSON_Delete(next);
        return rc;
    }
    call->result = cJSON_CreateObject();
    cJSON_AddItemToObject(call->result, "points", points);
    cJSON_AddItemToObject(call->result, "next_page_offset", next ? next : cJSON_CreateNull());
    return 0;
}

/* Both walk every point: on the request workers, not the HTTP threads. */
int vd_qd_points_count(vd_call *call) { return vd_call_offload(call, count_now); }
int vd_qd_points_scroll(vd_call *call) { return vd_call_offload(call, scroll_now); }

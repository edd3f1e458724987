/*
 * call.c — a router call's answer and errors (in the listener's dialect), and
 * reading its request (call.h).
 */
#include "router/call.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/partition.h"
#include "vectord/error.h"

void vd_rt_call_free(vd_rt_call *call)
{
    free(call->answer);
    call->answer = NULL;
    call->answer_len = 0;
}

void vd_rt_answer_text(vd_rt_call *call, int status, char *text, const char *type)
{
    vd_rt_call_free(call);
    call->status = status;
    call->answer = text;
    call->answer_len = text ? strlen(text) : 0;
    call->content_type = type;
}

void vd_rt_fail(vd_rt_call *call, int err, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *doc = cJSON_CreateObject();
    if (call->qdrant) { /* Qdrant's shape, the code first (as vectord's Qdrant listener does) */
        char both[900];
        snprintf(both, sizeof both, "%s: %s", vd_err_code(err), msg);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(doc, "status"), "error", both);
        cJSON_AddNumberToObject(doc, "time", vd_now_s() - call->started);
    } else {
        cJSON *e = cJSON_AddObjectToObject(doc, "error");
        cJSON_AddStringToObject(e, "code", vd_err_code(err));
        cJSON_AddStringToObject(e, "message", msg);
        cJSON_AddStringToObject(e, "request_id", call->request_id);
    }
    vd_rt_answer_text(call, vd_err_status(err), cJSON_PrintUnformatted(doc), "application/json");
    cJSON_Delete(doc);
}

/* Takes over a replica's answer as the call's. */
void vd_rt_pass(vd_rt_call *call, vd_up_req *q)
{
    vd_rt_call_free(call);
    call->status = (int)q->status;
    call->answer = q->answer;
    call->answer_len = q->answer_len;
    call->content_type = "application/json";
    q->answer = NULL;
}

void vd_rt_answer_json(vd_rt_call *call, cJSON *doc)
{
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    if (!text)
        vd_rt_fail(call, VD_E_OUT_OF_MEMORY, "out of memory");
    else
        vd_rt_answer_text(call, 200, text, "application/json");
}

cJSON *vd_rt_parse_answer(vd_rt_call *call, vd_up_req *q)
{
    cJSON *doc = q->answer ? cJSON_ParseWithLength(q->answer, q->answer_len) : NULL;
    if (!doc)
        vd_rt_fail(call, VD_E_UPSTREAM_ERROR, "%s answered %ld with a body that is not JSON", q->url,
                   q->status);
    return doc;
}

cJSON *vd_rt_parse_body(vd_rt_call *call)
{
    if (!call->body || !call->body_len) {
        vd_rt_fail(call, VD_E_INVALID_REQUEST, "request body must be a JSON object");
        return NULL;
    }
    cJSON *doc = cJSON_ParseWithLength(call->body, call->body_len);
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        vd_rt_fail(call, VD_E_MALFORMED_JSON, "request body is not a JSON object");
        return NULL;
    }
    return doc;
}

/* The {c} of /collections/{c}/…, as sent. */
void vd_rt_collection_of(const char *path, char *out, size_t cap)
{
    const char *s = path + strlen("/collections/");
    size_t n = strcspn(s, "/");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
}

uint32_t vd_rt_tenant_partition(const char *text, const vd_generation *g)
{
    return vd_partition_of(text, strlen(text), g->n_partitions);
}

long vd_rt_number_or(const cJSON *o, const char *name, long def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9 ? (long)v->valuedouble : def;
}

/* An id as comparable text (UUIDs in any case are one id). */
void vd_rt_id_text(const cJSON *id, char *out, size_t cap)
{
    if (cJSON_IsNumber(id)) {
        snprintf(out, cap, "#%.0f", id->valuedouble);
        return;
    }
    snprintf(out, cap, "%s", cJSON_IsString(id) ? id->valuestring : "");
    for (char *c = out; *c; c++)
        *c = (*c >= 'A' && *c <= 'F') ? (char)(*c - 'A' + 'a') : *c;
}

static int by_text(const void *a, const void *b)
{
    return strcmp(((const vd_rt_id_entry *)a)->text, ((const vd_rt_id_entry *)b)->text);
}

void vd_rt_id_sort(vd_rt_id_entry *e, size_t n) { qsort(e, n, sizeof *e, by_text); }

vd_rt_id_entry *vd_rt_id_lookup(vd_rt_id_entry *e, size_t n, const cJSON *id)
{
    vd_rt_id_entry key;
    vd_rt_id_text(id, key.text, sizeof key.text);
    return bsearch(&key, e, n, sizeof *e, by_text);
}

bool vd_rt_query_arg(const char *query, const char *name, const char **value, size_t *len)
{
    size_t n = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            *value = p + n + 1;
            *len = seg - n - 1;
            return true;
        }
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

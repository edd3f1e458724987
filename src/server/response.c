/* response.c — see response.h. */
#include "server/response.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fmtfloat.h"

/* Appends a string literal (its length counted by the compiler). */
#define APPEND_LIT(out, lit) vd_strbuf_append((out), (lit), sizeof(lit) - 1)

/* A float as the double that prints in its shortest round-trip form (9
 * significant digits), so replies say 0.995037198 rather than the 17 digits
 * of the float's exact binary value. */
static double float_for_json(float f)
{
    char buf[VD_FMT_FLOAT_MAX];
    vd_fmt_float(f, buf);
    return strtod(buf, NULL);
}

/* A vector as one raw-text node: a node per value would take ~80 bytes of
 * memory for each ~10 bytes of answer. The text is float_for_json's, written
 * without printf (util/fmtfloat.h): an answer may carry thousands. */
static bool append_floats(vd_strbuf *out, const float *v, uint32_t n)
{
    size_t need = out->len + (size_t)n * (VD_FMT_FLOAT_MAX - 1) + 3;
    if (!vd_strbuf_reserve(out, need) || out->cap < need + 1) { /* past out's max, or ENOMEM */
        out->failed = true;
        return false;
    }
    char *text = out->data;
    size_t len = out->len;
    text[len++] = '[';
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            text[len++] = ',';
        len += vd_fmt_float(v[i], text + len);
    }
    text[len++] = ']';
    text[len] = 0;
    out->len = len;
    return true;
}

static cJSON *float_array(const float *v, uint32_t n)
{
    vd_strbuf b;
    vd_strbuf_init(&b, 0);
    cJSON *raw = append_floats(&b, v, n) ? cJSON_CreateRaw(b.data) : NULL;
    vd_strbuf_free(&b);
    return raw;
}

size_t vd_resp_size_estimate(const cJSON *j)
{
    if (!j)
        return 0;
    size_t n = 8 + (j->string ? strlen(j->string) + 3 : 0);
    if (cJSON_IsString(j) || cJSON_IsRaw(j))
        n += strlen(j->valuestring) + 2;
    else if (cJSON_IsNumber(j))
        n += 24;
    for (const cJSON *c = j->child; c; c = c->next)
        n += vd_resp_size_estimate(c);
    return n;
}

/* An integer id's digits into out (24 bytes); their length. Written as raw
 * text: cJSON prints a number past 2^52 with 15 significant digits when its
 * check says that reads back "equal" (within an epsilon), so
 * 9007199254740991 came out as 9.00719925474099e+15. */
static size_t id_digits(const vd_point_id *id, char *out) { return vd_fmt_u64(id->num, out); }

cJSON *vd_resp_id(const vd_point_id *id)
{
    if (id->kind == VD_ID_INT) {
        char digits[24];
        id_digits(id, digits);
        return cJSON_CreateRaw(digits);
    }
    return cJSON_CreateString(id->str);
}

cJSON *vd_resp_point(vd_point_out *p, bool with_score, bool with_payload)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddItemToObject(o, "id", vd_resp_id(&p->id));
    if (with_score)
        cJSON_AddNumberToObject(o, "score", float_for_json(p->score));
    /* Versions are often microsecond timestamps (~1.8e15): cJSON would print
     * such doubles in exponent form, so the integer is written as raw text. */
    char version[24];
    vd_fmt_u64(p->version, version);
    cJSON_AddRawToObject(o, "version", version);
    if (with_payload) {
        cJSON_AddItemToObject(o, "payload", p->payload ? p->payload : cJSON_CreateObject());
        p->payload = NULL;
    }
    if (p->vector) {
        cJSON *v = float_array(p->vector, p->dim);
        if (!v) {
            cJSON_Delete(o);
            return NULL;
        }
        cJSON_AddItemToObject(o, "vector", v);
    }
    return o;
}

static void add_size(cJSON *o, const char *name, size_t v) { cJSON_AddNumberToObject(o, name, (double)v); }

/* One agreement tally (db/quality.h) as JSON under `name`. */
static void add_agreement(cJSON *parent, const char *name, const char *rate_name,
                          const vd_agreement_stats *a)
{
    cJSON *o = cJSON_AddObjectToObject(parent, name);
    add_size(o, "compared", a->compared);
    if (a->expected)
        cJSON_AddNumberToObject(o, rate_name, (double)a->hits / (double)a->expected);
    else
        cJSON_AddNullToObject(o, rate_name);
    add_size(o, "recent_compared", a->recent_compared);
    if (a->recent >= 0)
        cJSON_AddNumberToObject(o, "recent", a->recent);
    else
        cJSON_AddNullToObject(o, "recent");
}

cJSON *vd_resp_collection(vd_collection *c)
{
    vd_collection_config now; /* search defaults and payload indexes as they are */
    vd_collection_config_now(c, &now);
    const vd_collection_config *cfg = &now;
    vd_collection_stats st;
    if (vd_collection_stats_get(c, &st) != 0)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", cfg->name);
    add_size(o, "dim", cfg->dim);
    cJSON_AddStringToObject(o, "metric", vd_metric_name(cfg->metric));
    cJSON_AddStringToObject(o, "score_order", cfg->metric == VD_METRIC_L2 ? "lower_is_better"
                                                                          : "higher_is_better");
    add_size(o, "shards", cfg->n_shards);
    cJSON *idx = cJSON_AddObjectToObject(o, "index");
    cJSON_AddStringToObject(idx, "type", vd_index_type_name(cfg->index.type));
    if (cfg->index.type == VD_INDEX_HNSW) {
        add_size(idx, "m", cfg->index.m);
        add_size(idx, "ef_construction", cfg->index.ef_construction);
        add_size(idx, "ef_search", cfg->index.ef_search);
    }
    if (cfg->index.type == VD_INDEX_IVF) {
        /* 0 = automatic; index_status says what training chose */
        add_size(idx, "nlist", cfg->index.nlist);
        add_size(idx, "nprobe", cfg->index.nprobe);
    }
    if (cfg->index.type != VD_INDEX_FLAT) {
        /* The target recall, and the breadth calibrated to it from sampled
         * queries (null until enough are in); ef_search / nprobe above are
         * what searches use until then, or always with the target off. */
        cJSON_AddNumberToObject(idx, "target_recall", round((double)cfg->target_recall * 1e6) / 1e6); /* as given */
        vd_calibration_choice ch;
        vd_collection_calibration(c, &ch);
        cJSON *cal = cJSON_AddObjectToObject(o, "calibration"); /* read-only: not part of "index" */
        const char *knob = cfg->index.type == VD_INDEX_HNSW ? "ef_search" : "nprobe";
        if (ch.chosen && cfg->target_recall > 0)
            add_size(cal, knob, ch.value);
        else
            cJSON_AddNullToObject(cal, knob);
        if (ch.chosen)
            cJSON_AddNumberToObject(cal, "recall", ch.recall);
        else
            cJSON_AddNullToObject(cal, "recall");
        add_size(cal, "samples", ch.samples);
    }
    cJSON *quant = cJSON_AddObjectToObject(o, "quantization");
    cJSON_AddStringToObject(quant, "type", vd_quant_name(cfg->quant));
    if (cfg->quant != VD_QUANT_NONE) {
        cJSON_AddNumberToObject(quant, "oversampling", cfg->oversampling);
        cJSON_AddStringToObject(quant, "originals", cfg->originals_on_disk ? "disk" : "ram");
    }
    cJSON *pi = cJSON_AddObjectToObject(o, "payload_indexes");
    for (size_t i = 0; i < cfg->n_pindexes; i++)
        cJSON_AddStringToObject(pi, cfg->pindexes[i].field, vd_pindex_type_name(cfg->pindexes[i].type));
    add_size(o, "points_count", st.n_points);
    add_size(o, "deleted_pending", st.total.n_tombstones);
    /* Points searchable (scanned exactly) that the graph does not hold yet. */
    add_size(o, "index_backlog", st.total.n_backlog);
    /* Upserts answer once their points are searchable; "indexing" means the
     * graph is catching up with them, "compacting" that it is being repaired. */
    cJSON_AddStringToObject(o, "status", st.total.n_backlog   ? "indexing"
                                         : st.total.compacting ? "compacting"
                                                               : "ready");
    cJSON *mem = cJSON_AddObjectToObject(o, "memory_bytes");
    add_size(mem, "total", st.memory_bytes);
    add_size(mem, "vectors", st.total.vector_bytes);
    add_size(mem, "codes", st.total.code_bytes);
    add_size(mem, "ids", st.total.id_bytes);
    add_size(mem, "payload", st.total.payload_bytes);
    add_size(mem, "payload_index", st.total.payload_index_bytes);
    add_size(mem, "index", st.total.index_bytes);
    /* where each part of the vectors lives, and its bytes */
    cJSON *parts = cJSON_AddObjectToObject(o, "storage");
    cJSON *orig = cJSON_AddObjectToObject(parts, "originals");
    cJSON_AddStringToObject(orig, "location", cfg->quant && cfg->originals_on_disk ? "disk" : "ram");
    add_size(orig, "bytes", st.total.vector_bytes + st.total.vector_disk_bytes);
    cJSON *codes = cJSON_AddObjectToObject(parts, "codes");
    cJSON_AddStringToObject(codes, "location", cfg->quant ? "ram" : "none");
    add_size(codes, "bytes", st.total.code_bytes);
    cJSON *graph = cJSON_AddObjectToObject(parts, "index");
    cJSON_AddStringToObject(graph, "location", "ram");
    add_size(graph, "bytes", st.total.index_bytes);
    if (st.total.trainable) {
        cJSON *is = cJSON_AddObjectToObject(o, "index_status");
        cJSON_AddBoolToObject(is, "trained", st.total.trained);
        cJSON_AddBoolToObject(is, "training", st.total.training);
        add_size(is, "lists", st.total.n_lists);
        add_size(is, "trained_points", st.total.trained_points);
        add_size(is, "default_nprobe", cfg->n_shards && st.total.n_lists
                                            ? vd_ivf_default_nprobe(cfg->index.nprobe,
                                                                    (uint32_t)(st.total.n_lists / cfg->n_shards))
                                            : 0);
    }
    cJSON *searches = cJSON_AddObjectToObject(o, "searches");
    add_size(searches, "exact", st.total.searches_exact);
    add_size(searches, "graph", st.total.searches_graph);
    add_size(searches, "probe", st.total.searches_probe);
    add_size(searches, "tenant", st.total.searches_tenant);
    add_size(searches, "distance_computations", st.total.distance_computations);
    add_size(searches, "scratch_allocations", st.total.search_allocations);
    add_size(searches, "fanned_out", st.total.searches_fanned_out);
    vd_agreement_stats recall, shadow;
    vd_quality_get(vd_collection_quality(c), &recall, &shadow);
    cJSON *quality = cJSON_AddObjectToObject(o, "quality");
    add_agreement(quality, "recall", "recall_at_k", &recall);
    add_agreement(quality, "shadow", "overlap_at_k", &shadow);
    if (shadow.compared) {
        cJSON *sh = cJSON_GetObjectItemCaseSensitive(quality, "shadow");
        cJSON_AddNumberToObject(sh, "baseline_mean_ms", shadow.seconds_a * 1e3 / (double)shadow.compared);
        cJSON_AddNumberToObject(sh, "vectord_mean_ms", shadow.seconds_b * 1e3 / (double)shadow.compared);
    }
    add_size(o, "memory_bytes_per_point",
             st.n_points ? st.memory_bytes / st.n_points : 0);
    cJSON *shards = cJSON_AddArrayToObject(o, "shards_info");
    for (uint32_t s = 0; s < cfg->n_shards; s++) {
        cJSON *so = cJSON_CreateObject();
        add_size(so, "points", st.shards[s].n_points);
        add_size(so, "slots", st.shards[s].n_slots);
        add_size(so, "free_slots", st.shards[s].n_free);
        add_size(so, "memory_bytes", st.shards[s].vector_bytes + st.shards[s].code_bytes +
                                         st.shards[s].id_bytes +
                                         st.shards[s].payload_bytes +
                                         st.shards[s].payload_index_bytes + st.shards[s].index_bytes);
        cJSON_AddItemToArray(shards, so);
    }
    free(st.shards);
    return o;
}

bool vd_resp_envelope_head(vd_strbuf *out) { return APPEND_LIT(out, "{\"result\":"); }

bool vd_resp_envelope_tail(vd_strbuf *out, double seconds, vd_dialect d)
{
    /* "\n" so curl output ends its line */
    if (d == VD_DIALECT_QDRANT)
        return vd_strbuf_printf(out, ",\"status\":\"ok\",\"time\":%.9g}\n", seconds);
    long long us = (long long)(seconds * 1e6); /* time_ms: whole microseconds, as milliseconds */
    if (us < 0 || us >= 1000000000000000LL) /* beyond vd_fmt_millis: printf's text */
        return vd_strbuf_printf(out, ",\"time_ms\":%.15g}\n", (double)us / 1e3);
    char text[32];
    size_t n = vd_fmt_millis((uint64_t)us, text);
    return APPEND_LIT(out, ",\"time_ms\":") && vd_strbuf_append(out, text, n) && APPEND_LIT(out, "}\n");
}

char *vd_resp_envelope(cJSON *result, double seconds, vd_dialect d, size_t *len)
{
    char *text = result ? cJSON_PrintUnformatted(result) : NULL;
    cJSON_Delete(result);
    if (result && !text)
        return NULL;
    vd_strbuf b;
    vd_strbuf_init(&b, 0);
    size_t n = text ? strlen(text) : 4;
    vd_strbuf_reserve(&b, n + 48);
    vd_resp_envelope_head(&b);
    vd_strbuf_append(&b, text ? text : "null", n);
    free(text);
    if (!vd_resp_envelope_tail(&b, seconds, d)) {
        vd_strbuf_free(&b);
        return NULL;
    }
    return vd_strbuf_take(&b, len);
}

/* Appends node's unformatted text (a string id, a payload). */
static bool append_json(vd_strbuf *out, const cJSON *node)
{
    char *text = node ? cJSON_PrintUnformatted(node) : NULL;
    bool ok = text && vd_strbuf_append(out, text, strlen(text));
    free(text);
    return ok;
}

/* The same text as vd_resp_point's, written without building it: a search
 * answer's hits are its bulk, and cJSON prints a number with sprintf and
 * reads it back with sscanf to check it (5% of a 384-d search's server CPU
 * at 8 connections, perf). */
bool vd_resp_point_text(vd_point_out *p, bool with_payload, vd_strbuf *out)
{
    char num[VD_FMT_FLOAT_MAX + 32];
    bool ok = APPEND_LIT(out, "{\"id\":");
    if (p->id.kind == VD_ID_INT) {
        ok = ok && vd_strbuf_append(out, num, id_digits(&p->id, num));
    } else {
        cJSON *id = vd_resp_id(&p->id);
        ok = ok && append_json(out, id);
        cJSON_Delete(id);
    }
    ok = ok && APPEND_LIT(out, ",\"score\":");
    if (isfinite(p->score)) /* as cJSON prints float_for_json's double: 9 significant digits */
        ok = ok && vd_strbuf_append(out, num, vd_fmt_float(p->score, num));
    else
        ok = ok && APPEND_LIT(out, "null");
    ok = ok && APPEND_LIT(out, ",\"version\":");
    ok = ok && vd_strbuf_append(out, num, vd_fmt_u64(p->version, num));
    if (with_payload) {
        ok = ok && APPEND_LIT(out, ",\"payload\":");
        ok = ok && (p->payload ? append_json(out, p->payload) : APPEND_LIT(out, "{}"));
    }
    if (p->vector) {
        ok = ok && APPEND_LIT(out, ",\"vector\":");
        ok = ok && append_floats(out, p->vector, p->dim);
    }
    return ok && APPEND_LIT(out, "}");
}

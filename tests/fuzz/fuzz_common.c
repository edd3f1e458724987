/* fuzz_common.c — see fuzz_common.h. */
#include "fuzz_common.h"

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/database.h"
#include "server/config.h"
#include "server/json_util.h"
#include "util/json_float.h"
#include "util/log.h"

void vd_fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "fuzz property failed at %s:%d: %s\n", file, line, what);
    abort();
}

static vd_limits limits;
static char tmpdir[512];

static void remove_tmpdir(void)
{
    if (tmpdir[0]) {
        vd_fuzz_clear_dir(tmpdir);
        rmdir(tmpdir);
    }
}

void vd_fuzz_init(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    /* Above the highest level: bad inputs are the point here, their log lines noise. */
    vd_log_set_level((vd_log_level)(VD_LOG_ERROR + 1));
    vd_json_float_init(true); /* the JSON array reader the server takes on this CPU */
    vd_config cfg;
    vd_config_action action;
    vd_errmsg em = {{0}};
    char *argv[] = {"vectord", NULL};
    char *envp[] = {NULL};
    if (vd_config_load(&cfg, 1, argv, envp, &action, &em) != 0)
        vd_fuzz_fail(__FILE__, __LINE__, em.text);
    vd_config_limits(&cfg, &limits);
}

const vd_limits *vd_fuzz_limits(void)
{
    vd_fuzz_init();
    return &limits;
}

/* The fuzz targets run one input at a time on one thread. */
static vd_json_vectors fuzz_vectors;

const vd_json_vectors *vd_fuzz_vectors(void)
{
    return &fuzz_vectors;
}

cJSON *vd_fuzz_json(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return NULL;
    memcpy(text, data, size);
    text[size] = 0;
    const char *end;
    vd_errmsg em = {{0}};
    vd_json_scan_stats st;
    vd_json_vectors_free(&fuzz_vectors);
    /* As http.c refuses them: a NUL or bytes that are not UTF-8 in a string,
     * bytes after the document, a key twice. */
    if (vd_json_scan(text, size, &fuzz_vectors, &st, &em) != 0) {
        free(text);
        return NULL;
    }
    cJSON *doc = cJSON_ParseWithLengthOpts(text, size + 1, &end, 1);
    if (doc && ((size_t)(end - text) < size || vd_json_unique_keys(doc, &em))) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    free(text);
    return doc;
}

/* The 24 points every fuzz collection holds: payloads cover both indexed
 * fields (present, absent, wrong type, arrays) and an unindexed one. */
static cJSON *seed_payload(unsigned i)
{
    static const char *const tags[] = {"a", "b", "c", "é", ""};
    cJSON *p = cJSON_CreateObject();
    switch (i % 6) {
    case 0:
        cJSON_AddStringToObject(p, "tag", tags[i % 5]);
        cJSON_AddNumberToObject(p, "n", (double)i - 8);
        break;
    case 1: {
        cJSON *arr = cJSON_AddArrayToObject(p, "tag");
        cJSON_AddItemToArray(arr, cJSON_CreateString(tags[i % 5]));
        cJSON_AddItemToArray(arr, cJSON_CreateString(tags[(i + 1) % 5]));
        cJSON_AddNumberToObject(p, "n", (double)i * 0.5);
        break;
    }
    case 2:
        cJSON_AddNumberToObject(p, "tag", i);
        cJSON_AddStringToObject(p, "n", "7");
        break;
    case 3:
        cJSON_AddBoolToObject(p, "flag", i & 1);
        cJSON_AddStringToObject(p, "user", tags[i % 5]);
        break;
    case 4:
        cJSON_AddNullToObject(p, "tag");
        cJSON_AddItemToObject(p, "nested", cJSON_Parse("{\"a\":{\"b\":[1,2,3]}}"));
        break;
    default:
        break; /* an empty payload */
    }
    return p;
}

vd_collection *vd_fuzz_collection(uint8_t shape)
{
    vd_fuzz_init();
    static const vd_metric metrics[] = {VD_METRIC_COSINE, VD_METRIC_DOT, VD_METRIC_L2};
    static const vd_index_type types[] = {VD_INDEX_FLAT, VD_INDEX_HNSW, VD_INDEX_IVF};
    static const vd_quant quants[] = {VD_QUANT_NONE, VD_QUANT_FP16, VD_QUANT_SQ8};
    vd_collection_config cfg = {.dim = VD_FUZZ_DIM, .n_shards = 2, .oversampling = 2.0f};
    snprintf(cfg.name, sizeof cfg.name, "fuzz");
    cfg.metric = metrics[shape % 3];
    vd_index_params_default(&cfg.index, types[(shape / 3) % 3]);
    cfg.index.ef_construction = 16; /* small graphs build fast */
    cfg.index.nlist = 4;
    cfg.quant = quants[(shape / 9) % 3];
    cfg.originals_on_disk = cfg.quant != VD_QUANT_NONE && (shape / 27) % 2;
    cfg.vectors_dir = vd_fuzz_tmpdir();
    cfg.pindexes[0] = (vd_pindex_spec){.field = "tag", .type = VD_PINDEX_KEYWORD};
    cfg.pindexes[1] = (vd_pindex_spec){.field = "n", .type = VD_PINDEX_NUMERIC};
    cfg.n_pindexes = 2;
    vd_collection *c;
    if (vd_collection_create(&c, &cfg, NULL) != 0)
        return NULL;
    enum { N = 24 };
    float vecs[N][VD_FUZZ_DIM];
    vd_point_in pts[N];
    char ids[N][8];
    for (unsigned i = 0; i < N; i++) {
        double norm = 0;
        for (unsigned d = 0; d < VD_FUZZ_DIM; d++) {
            vecs[i][d] = (float)((i * 7 + d * 13) % 11) - 5.0f + 0.25f * (float)d;
            norm += (double)vecs[i][d] * vecs[i][d];
        }
        if (cfg.metric == VD_METRIC_COSINE)
            for (unsigned d = 0; d < VD_FUZZ_DIM; d++)
                vecs[i][d] = (float)(vecs[i][d] / sqrt(norm));
        pts[i] = (vd_point_in){.vector = vecs[i], .payload = seed_payload(i)};
        if (i % 2) {
            pts[i].id = (vd_point_id){.kind = VD_ID_INT, .num = i};
        } else {
            snprintf(ids[i], sizeof ids[i], "p%u", i);
            pts[i].id = (vd_point_id){.kind = VD_ID_STR, .str = ids[i], .len = (uint32_t)strlen(ids[i])};
        }
    }
    vd_upsert_counts counts = {0};
    if (vd_collection_upsert(c, pts, N, &counts) != 0) {
        vd_collection_unref(c);
        return NULL;
    }
    if (cfg.index.type == VD_INDEX_IVF) {
        uint32_t trained = 0;
        _Atomic bool cancel = false;
        vd_collection_train(c, &cancel, &trained);
    }
    return c;
}

void vd_fuzz_split(const uint8_t *data, size_t size, const char *sep, size_t sep_len,
                   const uint8_t **a, size_t *a_len, const uint8_t **b, size_t *b_len)
{
    *a = data;
    *a_len = size;
    *b = NULL;
    *b_len = 0;
    if (sep_len == 0 || size < sep_len)
        return;
    for (size_t i = 0; i + sep_len <= size; i++)
        if (memcmp(data + i, sep, sep_len) == 0) {
            *a_len = i;
            *b = data + i + sep_len;
            *b_len = size - i - sep_len;
            return;
        }
}

const char *vd_fuzz_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/vectord-fuzz-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir))
            vd_fuzz_fail(__FILE__, __LINE__, "mkdtemp");
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

void vd_fuzz_clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            vd_fuzz_clear_dir(path);
            rmdir(path);
        } else {
            unlink(path);
        }
    }
    closedir(d);
}

/* Reads back what recovery built: a search and every point of each collection. */
static void visit(void *ctx, const vd_point_id *id, uint64_t version)
{
    (void)version;
    vd_point_out p;
    VD_FUZZ_CHECK(vd_collection_get(ctx, id, true, &p) == 0);
    vd_point_out_free(&p);
}

void vd_fuzz_use_database(vd_database *db)
{
    vd_collection **colls;
    size_t n;
    if (vd_database_list(db, &colls, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        const vd_collection_config *cfg = vd_collection_config_of(colls[i]);
        float *q = calloc(cfg->dim, sizeof *q);
        if (q) {
            q[0] = 1.0f;
            vd_search_req req = {.vector = q, .k = 5, .ef = 16, .with_payload = true,
                                 .oversampling = 2.0f};
            vd_point_out *hits;
            size_t nh;
            for (int exact = 0; exact < 2; exact++) {
                req.exact = exact;
                if (vd_collection_search(colls[i], &req, &hits, &nh) == 0) {
                    for (size_t j = 0; j < nh; j++)
                        vd_point_out_free(&hits[j]);
                    free(hits);
                }
            }
            free(q);
        }
        vd_collection_foreach(colls[i], visit, colls[i]);
        vd_collection_stats st;
        if (vd_collection_stats_get(colls[i], &st) == 0)
            free(st.shards);
        vd_collection_unref(colls[i]);
    }
    free(colls);
}

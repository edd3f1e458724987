/* index.c — what every index shares: the factory, and the mapping between
 * internal keys (lower is better) and API scores. */
#include "vectord/index.h"

float vd_score_from_key(vd_metric metric, float key) { return metric == VD_METRIC_L2 ? key : -key; }

float vd_key_from_score(vd_metric metric, float score)
{
    return metric == VD_METRIC_L2 ? score : -score;
}

const char *vd_index_type_name(vd_index_type t)
{
    return t == VD_INDEX_HNSW ? "hnsw" : t == VD_INDEX_IVF ? "ivf" : "flat";
}

void vd_index_params_default(vd_index_params *p, vd_index_type type)
{
    *p = (vd_index_params){
        .type = type,
        .m = VD_HNSW_DEFAULT_M,
        .ef_construction = VD_HNSW_DEFAULT_EF_CONSTRUCTION,
        .ef_search = VD_HNSW_DEFAULT_EF_SEARCH,
    };
}

int vd_index_create(const vd_index_params *p, uint64_t seed, vd_index **out)
{
    if (p->type == VD_INDEX_HNSW)
        return vd_hnsw_create(p, seed, out);
    if (p->type == VD_INDEX_IVF)
        return vd_ivf_create(p, seed, out);
    return vd_flat_create(out);
}


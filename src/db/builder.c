/* builder.c — see builder.h. */
#include "db/builder.h"

#include <errno.h>
#include <stdlib.h>

#include "util/ticker.h"

/* Points per shard a round inserts before it looks at the others. */
#define VD_BUILDER_ROUND 64u
/* The builder's threads yield the cores to requests (HTTP threads run at 0,
 * request workers at 5): a bulk load is acknowledged at the pace of the log
 * and the store, and the graph takes the cores they leave. Past
 * index_backlog_max writers build at their own priority. */
#define VD_BUILDER_NICE 10

struct vd_builder {
    vd_database *db; /* borrowed */
    vd_pool *pool;   /* the builder's own workers, niced; the thread works too */
    vd_ticker *ticker;
};

/* One batch for every shard of every collection; true when points entered
 * graphs (more may wait: run again at once). */
static bool build_round(void *ctx)
{
    vd_builder *b = ctx;
    vd_collection **colls;
    size_t n, built = 0;
    if (vd_database_list(b->db, &colls, &n) != 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        built += vd_collection_build(colls[i], VD_BUILDER_ROUND, b->pool);
        vd_collection_unref(colls[i]);
    }
    free(colls);
    return built > 0;
}

int vd_builder_start(vd_builder **out, vd_database *db, unsigned threads, uint64_t idle_ms)
{
    *out = NULL;
    vd_builder *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->db = db;
    if (vd_pool_create_nice(&b->pool, threads > 1 ? threads - 1 : 0, VD_BUILDER_NICE) != 0) {
        free(b);
        return -ENOMEM;
    }
    int rc = vd_ticker_start(&b->ticker, build_round, b, idle_ms, VD_BUILDER_NICE);
    if (rc) {
        vd_pool_destroy(b->pool);
        free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void vd_builder_stop(vd_builder *b)
{
    if (!b)
        return;
    vd_ticker_stop(b->ticker);
    vd_pool_destroy(b->pool);
    free(b);
}

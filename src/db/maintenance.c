/* maintenance.c — see maintenance.h. */
#include "db/maintenance.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "util/log.h"
#include "util/ticker.h"

struct vd_maintenance {
    vd_database *db; /* borrowed */
    double min_ratio;
    _Atomic bool cancel; /* set by stop: a training in progress gives up */
    vd_ticker *ticker;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One pass over every collection; then the ticker waits an interval. */
static bool run_once(void *ctx)
{
    vd_maintenance *m = ctx;
    vd_collection **colls;
    size_t n;
    if (vd_database_list(m->db, &colls, &n) != 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        double t = now_ms();
        size_t released = 0;
        int rc = vd_collection_compact(colls[i], m->min_ratio, &released);
        const char *name = vd_collection_config_of(colls[i])->name;
        if (rc)
            vd_log_warn("compaction failed", "collection=%s error=%d", name, rc);
        else if (released)
            vd_log_info("compacted", "collection=%s released_slots=%zu ms=%.1f", name, released,
                        now_ms() - t);
        t = now_ms();
        uint32_t trained = 0;
        if ((rc = vd_collection_train(colls[i], &m->cancel, &trained)) == -ECANCELED)
            vd_log_info("index training cancelled by shutdown", "collection=%s", name);
        else if (rc)
            vd_log_warn("index training failed", "collection=%s error=%d", name, rc);
        else if (trained)
            vd_log_info("index trained", "collection=%s shards=%u ms=%.1f", name, trained,
                        now_ms() - t);
        vd_collection_unref(colls[i]);
    }
    free(colls);
    return false;
}

int vd_maintenance_start(vd_maintenance **out, vd_database *db, uint64_t interval_ms,
                         double min_ratio)
{
    *out = NULL;
    if (!interval_ms)
        return 0;
    vd_maintenance *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->db = db;
    m->min_ratio = min_ratio;
    int rc = vd_ticker_start(&m->ticker, run_once, m, interval_ms, 0);
    if (rc) {
        free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void vd_maintenance_stop(vd_maintenance *m)
{
    if (!m)
        return;
    atomic_store(&m->cancel, true);
    vd_ticker_stop(m->ticker);
    free(m);
}

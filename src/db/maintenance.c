/* maintenance.c — see maintenance.h. */
#include "db/maintenance.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "util/log.h"

struct vd_maintenance {
    vd_database *db; /* borrowed */
    uint64_t interval_ms;
    double min_ratio;
    _Atomic bool cancel;  /* set by stop: a training in progress gives up */
    pthread_mutex_t lock; /* guards stopping */
    pthread_cond_t wake;
    bool stopping;
    pthread_t thread;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void run_once(vd_maintenance *m)
{
    vd_collection **colls;
    size_t n;
    if (vd_database_list(m->db, &colls, &n) != 0)
        return;
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
}

static void *maintenance_main(void *arg)
{
    vd_maintenance *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!m->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(m->interval_ms / 1000);
        until.tv_nsec += (long)(m->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!m->stopping && pthread_cond_timedwait(&m->wake, &m->lock, &until) != ETIMEDOUT)
            ;
        if (m->stopping)
            break;
        pthread_mutex_unlock(&m->lock);
        run_once(m);
        pthread_mutex_lock(&m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
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
    m->interval_ms = interval_ms;
    m->min_ratio = min_ratio;
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&m->thread, NULL, maintenance_main, m) != 0) {
        pthread_cond_destroy(&m->wake);
        pthread_mutex_destroy(&m->lock);
        free(m);
        return -EAGAIN;
    }
    *out = m;
    return 0;
}

void vd_maintenance_stop(vd_maintenance *m)
{
    if (!m)
        return;
    atomic_store(&m->cancel, true);
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    pthread_cond_destroy(&m->wake);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

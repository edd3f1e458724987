/* builder.c — see builder.h. */
#include "db/builder.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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
    uint64_t idle_ms;
    pthread_mutex_t lock; /* guards stopping */
    pthread_cond_t wake;
    bool stopping;
    pthread_t thread;
};

/* One batch for every shard of every collection; how many points entered graphs. */
static size_t build_round(vd_builder *b)
{
    vd_collection **colls;
    size_t n, built = 0;
    if (vd_database_list(b->db, &colls, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        built += vd_collection_build(colls[i], VD_BUILDER_ROUND, b->pool);
        vd_collection_unref(colls[i]);
    }
    free(colls);
    return built;
}

static void *builder_main(void *arg)
{
    vd_builder *b = arg;
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), VD_BUILDER_NICE); /* best effort */
    pthread_mutex_lock(&b->lock);
    while (!b->stopping) {
        pthread_mutex_unlock(&b->lock);
        size_t built = build_round(b);
        pthread_mutex_lock(&b->lock);
        if (built || b->stopping)
            continue;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)(b->idle_ms % 1000) * 1000000L;
        until.tv_sec += (time_t)(b->idle_ms / 1000) + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&b->wake, &b->lock, &until);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

int vd_builder_start(vd_builder **out, vd_database *db, unsigned threads, uint64_t idle_ms)
{
    *out = NULL;
    vd_builder *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    if (vd_pool_create_nice(&b->pool, threads > 1 ? threads - 1 : 0, VD_BUILDER_NICE) != 0) {
        free(b);
        return -ENOMEM;
    }
    b->db = db;
    b->idle_ms = idle_ms ? idle_ms : 1;
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&b->thread, NULL, builder_main, b) != 0) {
        pthread_cond_destroy(&b->wake);
        pthread_mutex_destroy(&b->lock);
        vd_pool_destroy(b->pool);
        free(b);
        return -EAGAIN;
    }
    *out = b;
    return 0;
}

void vd_builder_stop(vd_builder *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stopping = true;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    pthread_cond_destroy(&b->wake);
    pthread_mutex_destroy(&b->lock);
    vd_pool_destroy(b->pool);
    free(b);
}

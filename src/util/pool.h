/*
 * pool.h — a small worker pool for fan-out (shards of a search, index builds).
 *
 * vd_pool_run() splits a job into n_tasks indexed tasks; the pool's threads and
 * the calling thread claim task indices until all are done, and the call
 * returns when every task has finished. Because the caller works too, a job
 * never waits for a free worker and nested use cannot deadlock.
 */
#ifndef VD_POOL_H
#define VD_POOL_H

#include <stddef.h>

typedef struct vd_pool vd_pool;
typedef void (*vd_pool_task_cb)(void *ctx, size_t task);

/* n_threads background workers (0 = run everything on the caller). */
int vd_pool_create(vd_pool **out, unsigned n_threads);
/* The same with workers at a nice value (background work that yields the
 * cores to requests). */
int vd_pool_create_nice(vd_pool **out, unsigned n_threads, int nice);
void vd_pool_destroy(vd_pool *pool);
void vd_pool_run(vd_pool *pool, size_t n_tasks, vd_pool_task_cb fn, void *ctx);
unsigned vd_pool_threads(const vd_pool *pool);

/* Work that may fan out on the pool (searches) says when it starts and
 * ends, so that each can tell whether the cores are free for fanning out:
 * vd_pool_enter returns how many are in now, the caller included. */
unsigned vd_pool_enter(vd_pool *pool);
void vd_pool_leave(vd_pool *pool);

#endif

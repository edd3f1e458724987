/*
 * pool.c — see pool.h.
 *
 * Jobs sit in a FIFO guarded by `lock`. A job's next task index and its count
 * of finished tasks are atomics, so claiming and finishing a task need no lock;
 * the lock guards only the queue and the sleeping/waking on `work` and `done`.
 */
#include "util/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct pool_job {
    vd_pool_task_cb fn;
    void *ctx;
    size_t n_tasks;
    _Atomic size_t next;     /* next unclaimed task index */
    _Atomic size_t finished; /* tasks completed */
    unsigned users;          /* workers inside work_on(); guarded by pool lock */
    struct pool_job *queue_next;
} pool_job;

struct vd_pool {
    pthread_mutex_t lock; /* guards head, tail, stopping */
    pthread_cond_t work;  /* signalled when a job is queued or on stop */
    pthread_cond_t done;  /* broadcast when a job's last task finishes */
    pool_job *head, *tail;
    bool stopping;
    unsigned n_threads;
    int nice; /* of the workers (0 = as the process) */
    _Atomic unsigned entered; /* vd_pool_enter callers not yet left */
    pthread_t *threads;
};

/* Runs tasks of job until none is left to claim. */
static void work_on(pool_job *job)
{
    for (;;) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->n_tasks)
            return;
        job->fn(job->ctx, i);
        atomic_fetch_add(&job->finished, 1);
    }
}

static void unlink_job(vd_pool *p, pool_job *job)
{
    pool_job **pp = &p->head, *prev = NULL;
    while (*pp && *pp != job) {
        prev = *pp;
        pp = &(*pp)->queue_next;
    }
    if (!*pp)
        return;
    *pp = job->queue_next;
    if (p->tail == job)
        p->tail = prev;
}

static void *worker_main(void *arg)
{
    vd_pool *p = arg;
    if (p->nice)
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), p->nice); /* best effort */
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->work, &p->lock);
        if (p->stopping)
            break;
        pool_job *job = p->head;
        if (atomic_load(&job->next) >= job->n_tasks) {
            /* All tasks claimed: drop it from the queue; its owner waits on it. */
            unlink_job(p, job);
            continue;
        }
        job->users++;
        pthread_mutex_unlock(&p->lock);
        work_on(job);
        pthread_mutex_lock(&p->lock);
        /* The owner frees the job once it is finished and has no users. */
        if (--job->users == 0 && atomic_load(&job->finished) == job->n_tasks)
            pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int vd_pool_create(vd_pool **out, unsigned n_threads) { return vd_pool_create_nice(out, n_threads, 0); }

int vd_pool_create_nice(vd_pool **out, unsigned n_threads, int nice)
{
    vd_pool *p = calloc(1, sizeof *p);
    if (!p)
        return -12;
    p->nice = nice;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads) {
        p->threads = calloc(n_threads, sizeof *p->threads);
        if (!p->threads) {
            vd_pool_destroy(p);
            return -12;
        }
    }
    for (unsigned i = 0; i < n_threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
            vd_pool_destroy(p);
            return -11; /* EAGAIN */
        }
        p->n_threads++;
    }
    *out = p;
    return 0;
}

void vd_pool_destroy(vd_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

unsigned vd_pool_threads(const vd_pool *p) { return p ? p->n_threads : 0; }

void vd_pool_run(vd_pool *p, size_t n_tasks, vd_pool_task_cb fn, void *ctx)
{
    if (n_tasks == 0)
        return;
    pool_job job = {.fn = fn, .ctx = ctx, .n_tasks = n_tasks};
    atomic_init(&job.next, 0);
    atomic_init(&job.finished, 0);
    if (!p || p->n_threads == 0 || n_tasks == 1) {
        work_on(&job);
        return;
    }
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->queue_next = &job;
    else
        p->head = &job;
    p->tail = &job;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);

    work_on(&job);

    pthread_mutex_lock(&p->lock);
    unlink_job(p, &job); /* no worker can pick it up any more */
    while (atomic_load(&job.finished) < n_tasks || job.users > 0)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

unsigned vd_pool_enter(vd_pool *p) { return p ? atomic_fetch_add(&p->entered, 1) + 1 : 1; }

void vd_pool_leave(vd_pool *p)
{
    if (p)
        atomic_fetch_sub(&p->entered, 1);
}

/* jobq.c — see jobq.h. */
#include "util/jobq.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct job {
    vd_job_fn fn;
    void *arg;
} job;

struct vd_jobq {
    pthread_mutex_t lock;
    pthread_cond_t work;
    job *ring; /* max_queued slots */
    size_t cap, head, n;
    size_t running;
    bool stopping;
    pthread_t *threads;
    unsigned n_threads;
    int nice;
};

static void *jobq_main(void *arg)
{
    vd_jobq *q = arg;
    if (q->nice)
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), q->nice); /* best effort */
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->n && !q->stopping)
            pthread_cond_wait(&q->work, &q->lock);
        if (!q->n)
            break; /* stopping, nothing left */
        job j = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
        q->running++;
        pthread_mutex_unlock(&q->lock);
        j.fn(j.arg);
        pthread_mutex_lock(&q->lock);
        q->running--;
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int vd_jobq_create(vd_jobq **out, unsigned n_threads, size_t max_queued, int nice)
{
    vd_jobq *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->nice = nice;
    q->cap = max_queued ? max_queued : 1;
    q->ring = calloc(q->cap, sizeof *q->ring);
    q->threads = calloc(n_threads ? n_threads : 1, sizeof *q->threads);
    if (!q->ring || !q->threads) {
        free(q->ring);
        free(q->threads);
        free(q);
        return -ENOMEM;
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->work, NULL);
    for (unsigned i = 0; i < (n_threads ? n_threads : 1); i++) {
        if (pthread_create(&q->threads[i], NULL, jobq_main, q) != 0)
            break;
        q->n_threads++;
    }
    if (!q->n_threads) {
        vd_jobq_destroy(q);
        return -EAGAIN;
    }
    *out = q;
    return 0;
}

int vd_jobq_submit(vd_jobq *q, vd_job_fn fn, void *arg)
{
    pthread_mutex_lock(&q->lock);
    int rc = 0;
    if (q->n == q->cap || q->stopping) {
        rc = -EBUSY;
    } else {
        q->ring[(q->head + q->n) % q->cap] = (job){fn, arg};
        q->n++;
        pthread_cond_signal(&q->work);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

size_t vd_jobq_depth(vd_jobq *q)
{
    pthread_mutex_lock(&q->lock);
    size_t d = q->n + q->running;
    pthread_mutex_unlock(&q->lock);
    return d;
}

void vd_jobq_destroy(vd_jobq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_broadcast(&q->work);
    pthread_mutex_unlock(&q->lock);
    for (unsigned i = 0; i < q->n_threads; i++)
        pthread_join(q->threads[i], NULL);
    pthread_cond_destroy(&q->work);
    pthread_mutex_destroy(&q->lock);
    free(q->ring);
    free(q->threads);
    free(q);
}

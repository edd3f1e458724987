/*
 * jobq.h — a bounded queue of jobs run by its own threads.
 *
 * The HTTP layer hands heavy requests (searches) to one, so the threads that
 * accept connections and answer cheap routes never wait behind them. The
 * queue is bounded: a job past max_queued waiting is refused, never queued
 * without limit. (util/pool.h is different: fork-join fan-out of one job.)
 */
#ifndef VD_JOBQ_H
#define VD_JOBQ_H

#include <stddef.h>

typedef struct vd_jobq vd_jobq;
typedef void (*vd_job_fn)(void *arg);

/* nice: the threads' nice value (0 = as the process): above 0 they yield the
 * CPU to the rest of the process when both want it. */
int vd_jobq_create(vd_jobq **out, unsigned n_threads, size_t max_queued, int nice);
/* 0, or -EBUSY when max_queued jobs already wait. fn runs on a queue thread. */
int vd_jobq_submit(vd_jobq *q, vd_job_fn fn, void *arg);
/* Jobs waiting plus running. */
size_t vd_jobq_depth(vd_jobq *q);
/* Runs what is queued, then joins the threads. */
void vd_jobq_destroy(vd_jobq *q);

#endif

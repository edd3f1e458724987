/*
 * memtrim.h — how the process keeps and gives back malloc's memory.
 *
 * Request buffers are large (a 500-point upsert of 1536-d vectors carries a
 * 4 MiB body, 3 MiB of decoded vectors and a 3 MiB log record). Given back to
 * the system after each request, every one comes back as fresh pages, and a
 * fresh page costs a fault (several microseconds on a virtual machine, more
 * than copying it). So malloc keeps blocks up to 32 MiB in its heap, where
 * the next request reuses pages already touched, and a background thread
 * gives the free part of the heap back once no request has begun for a tick
 * and none is in flight: a busy server keeps its working set, an idle one
 * shrinks.
 */
#ifndef VD_MEMTRIM_H
#define VD_MEMTRIM_H

#include <stdbool.h>
#include <stdint.h>

typedef struct vd_memtrim vd_memtrim;

/* malloc's thresholds as above; call before any thread starts. */
void vd_memtrim_tune(void);
/* While at least one caller holds it (on, then off), free() keeps up to
 * 64 MiB free at the top of a heap instead of giving it back at once: a
 * bulk phase that frees and allocates large blocks in turn reuses its pages
 * instead of faulting fresh ones. A feed backfill frees a 30-40 MB page
 * result per page: 16% of its rows/s. Not held by requests: the idle trim
 * cannot reach a thread arena's top, so what is kept there would stay. */
void vd_memtrim_keep(bool on);
/* Starts the thread: every tick_ms it reads *activity (a count that grows
 * while there is work, e.g. requests begun) and *held (what work in flight
 * still holds, e.g. request bytes; 0 when none) and, the first time the
 * count has not moved since the last tick and nothing is held, gives the
 * heap's free memory back. 0, -ENOMEM or -EAGAIN. */
int vd_memtrim_start(vd_memtrim **out, const _Atomic uint64_t *activity, const _Atomic uint64_t *held,
                     uint64_t tick_ms);
/* Stops and joins the thread. NULL is a no-op. */
void vd_memtrim_stop(vd_memtrim *m);

#endif

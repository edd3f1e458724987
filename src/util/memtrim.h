/*
 * memtrim.h — how the process keeps and gives back malloc's memory.
 *
 * Request buffers are large (a 500-point upsert of 1536-d vectors carries a
 * 4 MiB body, 3 MiB of decoded vectors and a 3 MiB log record). Given back to
 * the system after each request, every one comes back as fresh pages, and a
 * fresh page costs a fault (several microseconds on a virtual machine, more
 * than copying it). So malloc keeps blocks up to 32 MiB in its heap, where
 * the next request reuses pages already touched, and a background thread
 * gives the free part of the heap back once no request has begun for a
 * tick: a busy server keeps its working set, an idle one shrinks.
 */
#ifndef VD_MEMTRIM_H
#define VD_MEMTRIM_H

#include <stdint.h>

typedef struct vd_memtrim vd_memtrim;

/* malloc's thresholds as above; call before any thread starts. */
void vd_memtrim_tune(void);
/* Starts the thread: every tick_ms it reads *activity (a count that grows
 * while there is work, e.g. requests begun) and, the first time it has not
 * moved since the last tick, gives the heap's free memory back. 0, -ENOMEM
 * or -EAGAIN. */
int vd_memtrim_start(vd_memtrim **out, const _Atomic uint64_t *activity, uint64_t tick_ms);
/* Stops and joins the thread. NULL is a no-op. */
void vd_memtrim_stop(vd_memtrim *m);

#endif

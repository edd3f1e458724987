/*
 * ticker.h — a background thread that calls a step function over and over:
 * again at once while the step reports that work may remain, otherwise after
 * idle_ms, until stopped. The graph builder (db/builder.c) and
 * index maintenance (db/maintenance.c) run on it.
 */
#ifndef VD_TICKER_H
#define VD_TICKER_H

#include <stdbool.h>
#include <stdint.h>

/* One unit of background work; true when more may be waiting (run again now). */
typedef bool (*vd_ticker_step)(void *ctx);

typedef struct vd_ticker vd_ticker;

/* Starts the thread at the given nice value (0 = as the process); the first
 * step runs at once. 0, -ENOMEM or -EAGAIN. */
int vd_ticker_start(vd_ticker **out, vd_ticker_step step, void *ctx, uint64_t idle_ms, int nice);
/* Stops and joins the thread after the step in progress. NULL is a no-op. */
void vd_ticker_stop(vd_ticker *t);

#endif

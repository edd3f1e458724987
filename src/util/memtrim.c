/* memtrim.c — see memtrim.h. */
#include "util/memtrim.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "util/ticker.h"

struct vd_memtrim {
    vd_ticker *ticker;
    const _Atomic uint64_t *activity;
    uint64_t seen;
    bool trimmed; /* nothing begun since the last trim */
};

void vd_memtrim_tune(void)
{
#ifdef __GLIBC__
    /* Larger blocks get their own mapping. Setting it also stops glibc from
     * moving the threshold (and the trim threshold) itself. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    /* free() gives the heap's top back only past 64 MiB of it: at glibc's
     * 128 KiB, freeing one large block (a feed page's 30 MB result, a
     * request's buffers) handed its pages back at once, and the next one
     * faulted them in again (a 2 MiB huge page zeroed per fault): 16% of a
     * Postgres backfill's rows/s. The ticker below gives it back when idle. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

static bool tick(void *ctx)
{
    vd_memtrim *m = ctx;
    uint64_t now = atomic_load_explicit(m->activity, memory_order_relaxed);
    if (now != m->seen) {
        m->seen = now;
        m->trimmed = false;
    } else if (!m->trimmed) {
#ifdef __GLIBC__
        malloc_trim(0); /* every arena's free pages, not only the top */
#endif
        m->trimmed = true;
    }
    return false;
}

int vd_memtrim_start(vd_memtrim **out, const _Atomic uint64_t *activity, uint64_t tick_ms)
{
    *out = NULL;
    vd_memtrim *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->activity = activity;
    m->seen = atomic_load_explicit(activity, memory_order_relaxed);
    int rc = vd_ticker_start(&m->ticker, tick, m, tick_ms, 0);
    if (rc) {
        free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void vd_memtrim_stop(vd_memtrim *m)
{
    if (!m)
        return;
    vd_ticker_stop(m->ticker);
    free(m);
}

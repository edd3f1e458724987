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

/* free() gives back the free memory at a heap's top once it passes this:
 * glibc's default, explicit because setting M_MMAP_THRESHOLD freezes it.
 * malloc_trim() (the idle tick) does not reach a thread arena's top, so a
 * larger value would keep that much per arena for good. */
#define VD_TRIM_THRESHOLD (128 << 10)
/* ... and while a bulk phase holds it: more than a feed page's result. */
#define VD_TRIM_KEEP (64 << 20)

struct vd_memtrim {
    vd_ticker *ticker;
    const _Atomic uint64_t *activity;
    const _Atomic uint64_t *held;
    uint64_t seen;
    bool trimmed; /* nothing begun, nothing held since the last trim */
};

void vd_memtrim_tune(void)
{
#ifdef __GLIBC__
    /* Larger blocks get their own mapping. Setting it also stops glibc from
     * moving the threshold (and the trim threshold) itself. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, VD_TRIM_THRESHOLD);
#endif
}

/* How many bulk phases hold malloc's memory (vd_memtrim_keep). Process-wide
 * because the setting it stands for is: malloc has one trim threshold. */
static _Atomic int keepers;

void vd_memtrim_keep(bool on)
{
#ifdef __GLIBC__
    int before = atomic_fetch_add(&keepers, on ? 1 : -1);
    if (on && before == 0)
        mallopt(M_TRIM_THRESHOLD, VD_TRIM_KEEP);
    else if (!on && before == 1)
        mallopt(M_TRIM_THRESHOLD, VD_TRIM_THRESHOLD);
#else
    (void)on;
#endif
}

static bool tick(void *ctx)
{
    vd_memtrim *m = ctx;
    uint64_t now = atomic_load_explicit(m->activity, memory_order_relaxed);
    /* A request still held frees its buffers after this tick: free() keeps
     * them (below M_TRIM_THRESHOLD), so trim only once it is done too. */
    if (now != m->seen || atomic_load_explicit(m->held, memory_order_relaxed)) {
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

int vd_memtrim_start(vd_memtrim **out, const _Atomic uint64_t *activity, const _Atomic uint64_t *held,
                     uint64_t tick_ms)
{
    *out = NULL;
    vd_memtrim *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->activity = activity;
    m->held = held;
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

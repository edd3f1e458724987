/*
 * feed_backfill.c — backfill pages into the collection, three stages at
 * once: pages read ahead over their own connections (feed_pages.c), the
 * next one parsed on the calling thread (its embeddings on the worker
 * pool), the one before it logged and stored on a helper thread. Both
 * sources' backfills run through here (pg_feed.c, feed_logical.c).
 */
#include "feed/feed_internal.h"

#include <stdio.h>

#include "util/memtrim.h"

/* A page being applied (logged, stored) while the next is parsed. */
typedef struct page_apply {
    vd_feed *f;
    vd_collection *c;
    vd_feed_batch b;
    vd_feed_state next;
    pthread_t thread;
    bool running; /* on the helper thread, not joined yet */
    bool ok;
} page_apply;

static void *apply_main(void *arg)
{
    page_apply *a = arg;
    a->ok = vd_feed_apply_page(a->f, a->c, &a->b, &a->next);
    return NULL;
}

/* Waits for the apply in flight, if any: whether it (or none) succeeded. */
static bool join_apply(page_apply *a)
{
    if (!a->running)
        return true;
    pthread_join(a->thread, NULL);
    a->running = false;
    vd_feed_batch_free(&a->b);
    return a->ok;
}

/* Applies a->b on a helper, or here when none can start: false when it
 * already failed here. */
static bool start_apply(page_apply *a)
{
    a->running = pthread_create(&a->thread, NULL, apply_main, a) == 0;
    if (a->running)
        return true;
    apply_main(a);
    vd_feed_batch_free(&a->b);
    return a->ok;
}

int vd_feed_backfill_pages(vd_feed *f, vd_collection *c, vd_feed_pages *pages, vd_feed_state *next,
                           unsigned max_pages, bool done_with_last, bool *last)
{
    page_apply a = {.f = f, .c = c};
    const vd_collection_config *cc = vd_collection_config_of(c);
    bool ok = true;
    *last = false;
    vd_memtrim_keep(true); /* each page's result reuses the last one's memory */
    for (unsigned page = 0; ok && !*last && page < max_pages; page++) {
        char upto[VD_FEED_KEY_MAX + 1];
        PGresult *r = vd_feed_pages_next(pages, upto, last);
        if (!r) {
            ok = false;
            break;
        }
        int n = PQntuples(r);
        /* The state is chained here, never read back from f->state until
         * the apply is joined. */
        snprintf(next->backfill_after, sizeof next->backfill_after, "%s", upto);
        next->backfill_rows += (uint64_t)n;
        next->backfill_done = *last && done_with_last;
        vd_feed_batch b = {0};
        bool parsed = vd_feed_batch_alloc(&b, (size_t)n, cc->dim);
        if (parsed)
            vd_feed_batch_parse(&b, r, 0, cc->dim, f->cfg.pool);
        for (int i = 0; parsed && i < n; i++)
            vd_feed_add_row_or_delete(f, &b, r, i, 0, cc);
        PQclear(r);
        if (!parsed)
            vd_feed_error(f, "out of memory for a backfill page of %d rows", n);
        ok = join_apply(&a) && parsed;
        if (ok) {
            a.b = b;
            a.next = *next;
            ok = start_apply(&a);
        } else {
            vd_feed_batch_free(&b);
        }
    }
    ok = join_apply(&a) && ok;
    vd_memtrim_keep(false);
    return ok ? 0 : -1;
}

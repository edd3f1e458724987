/*
 * feed_waiters.c — read-your-writes: searches with ?feed_xid= (the outbox
 * source) or ?feed_lsn= (the logical source) park until the feed has applied
 * every transaction below that xid, or committed before that LSN (or their
 * deadline passes). The list is guarded by the feed's lock; the feed thread wakes
 * them after each round and while it waits on Postgres.
 */
#include "feed/feed_internal.h"

#include "util/clock.h"

/* Whether what w waits for is applied (under the feed's lock). */
static bool applied(const vd_feed *f, const vd_feed_waiter *w)
{
    return w->lsn ? f->st.applied_lsn >= w->lsn : f->st.applied_below > w->xid;
}

/* Wakes the waiters whose transaction is applied, whose time is up, or all
 * (the feed stops). */
void vd_feed_wake_waiters(vd_feed *f, bool all)
{
    double now = vd_now_s();
    vd_feed_waiter *ready = NULL;
    pthread_mutex_lock(&f->lock);
    for (vd_feed_waiter **w = &f->waiters; *w;) {
        vd_feed_waiter *x = *w;
        x->applied = applied(f, x);
        if (all || x->applied || now >= x->deadline) {
            *w = x->next;
            x->next = ready;
            ready = x;
        } else {
            w = &x->next;
        }
    }
    pthread_mutex_unlock(&f->lock);
    while (ready) {
        vd_feed_waiter *next = ready->next; /* the waiter may be freed once woken */
        ready->wake(ready->ctx);
        ready = next;
    }
}

int vd_feed_wait(vd_feed *f, vd_feed_waiter *w)
{
    pthread_mutex_lock(&f->lock);
    int queued = 0;
    w->applied = applied(f, w);
    if (!w->applied && !atomic_load(&f->stop)) {
        w->next = f->waiters;
        f->waiters = w;
        queued = 1;
    }
    pthread_mutex_unlock(&f->lock);
    return queued;
}

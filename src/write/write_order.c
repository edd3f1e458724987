/* write_order.c — see write_order.h. */
#include "write/write_order.h"

#include <stdlib.h>

static vd_write_order *make(uint64_t incarnation)
{
    vd_write_order *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    pthread_mutex_init(&o->log_lock, NULL);
    pthread_mutex_init(&o->apply_lock, NULL);
    o->applied_lsn = o->last_logged = incarnation;
    return o;
}

static void release(vd_write_order *o)
{
    pthread_mutex_destroy(&o->log_lock);
    pthread_mutex_destroy(&o->apply_lock);
    free(o);
}

const vd_write_order_hooks vd_write_order_hooks_std = {make, release};

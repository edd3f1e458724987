/*
 * write_order.h — how a collection's logged writes keep their log order when
 * applied (write/journal.c drives it). A write takes its LSN and joins
 * `queue` under log_lock; once durable, writes are staged one at a time
 * under apply_lock, strictly in queue (= LSN) order, by whichever waiting
 * writer gets there. The collection carries one (db/collection.h,
 * vd_collection_write_order), made by vd_write_order_hooks_std whenever the
 * write path creates a collection.
 */
#ifndef VD_WRITE_ORDER_H
#define VD_WRITE_ORDER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/collection.h"

struct vd_commit;
struct vd_write_order {
    pthread_mutex_t log_lock;
    struct vd_commit *head, *tail; /* logged, not staged yet (log_lock) */
    uint64_t last_logged;          /* LSN of the newest write logged (log_lock) */
    bool dropped;                  /* a drop is logged: no more writes (log_lock) */
    pthread_mutex_t apply_lock;
    uint64_t applied_lsn; /* LSN of the newest write staged (apply_lock) */
    /* Every write up to this LSN is in the collection's snapshot files (the
     * least of its shards'); 0 = no complete snapshot. log_lock. */
    uint64_t snapshot_lsn;
};
typedef struct vd_write_order vd_write_order;

/* Makes a collection's write order (nothing logged after its incarnation
 * yet) and releases it: pass to vd_database_create_collection. */
extern const vd_write_order_hooks vd_write_order_hooks_std;

#endif

/*
 * database.h — the registry of collections by name.
 *
 * One rwlock guards the name → collection table; lookups share it and return
 * a counted reference, so a request keeps using a collection that another
 * request drops meanwhile (its memory goes with the last reference).
 */
#ifndef VD_DATABASE_H
#define VD_DATABASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/collection.h"
#include "util/pool.h"
#include "vectord/error.h"

typedef struct vd_database vd_database;

/* How far a Postgres feed has got (src/feed/): logged in the WAL
 * (VD_MUT_FEED_STATE), kept here, and written with every checkpoint. */
#define VD_FEED_NAME_MAX 64
#define VD_FEED_KEY_MAX 256
#define VD_FEED_PARTITION_MAX 160
typedef struct vd_feed_state {
    char feed[VD_FEED_NAME_MAX + 1];
    bool backfill_started, backfill_done;
    char backfill_after[VD_FEED_KEY_MAX + 1]; /* last source id copied (keyset), "" = none */
    uint64_t backfill_rows;
    uint64_t xid, seq;  /* follow position: outbox rows up to (xid, seq) are applied */
    bool logical;       /* the logical source: source_lsn is the position */
    uint64_t source_lsn; /* logical: every transaction committed before it is applied */
    uint64_t lsn;       /* WAL record that set this state */
    /* The share of the table the state is for: "i/N column" (feed_partition
     * and feed_partition_column), "" = the whole table. */
    char partition[VD_FEED_PARTITION_MAX + 1];
} vd_feed_state;

/* pool is borrowed; max_collections bounds the registry. */
int vd_database_create(vd_database **out, vd_pool *pool, size_t max_collections);
void vd_database_destroy(vd_database *db);

/* Where collections with originals on disk keep their vector files (each an
 * unnamed file there); set before any collection is created. Creates the
 * folder and checks a file can be made there: 0 or -errno. */
int vd_database_set_vectors_dir(vd_database *db, const char *dir);
/* How many searchable points each shard of a graph index may hold before
 * the graph has them, before writers build it themselves (db/shard_build.c;
 * 0 = every write builds its own); set before any collection is created. */
void vd_database_set_backlog_max(vd_database *db, size_t max);
/* VD_E_COLLECTION_EXISTS, VD_E_LIMIT_REACHED or -ENOMEM on failure. */
int vd_database_create_collection(vd_database *db, const vd_collection_config *cfg,
                                  const vd_write_order_hooks *hooks, vd_errmsg *em);
/* VD_E_LIMIT_REACHED if one more collection would exceed max_collections. */
int vd_database_check_room(vd_database *db, vd_errmsg *em);
/* A new reference (release with vd_collection_unref), or VD_E_COLLECTION_NOT_FOUND. */
int vd_database_get(vd_database *db, const char *name, vd_collection **out);
int vd_database_drop(vd_database *db, const char *name);
/* A snapshot of all collections, sorted by name: an array of new references
 * (unref each, then free the array). */
int vd_database_list(vd_database *db, vd_collection ***out, size_t *n);

/* Sets a feed's state (a copy) unless the stored one comes from a later LSN. */
int vd_database_feed_set(vd_database *db, const vd_feed_state *st);
/* Copies the state of feed into *out; false if there is none. */
bool vd_database_feed_get(vd_database *db, const char *feed, vd_feed_state *out);
/* Copies every feed state (malloc'd array, free it). */
int vd_database_feed_list(vd_database *db, vd_feed_state **out, size_t *n);

#endif

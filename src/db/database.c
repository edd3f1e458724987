/* database.c — see database.h. Collections are few; a sorted array suffices. */
#include "db/database.h"

#include "db/vecstore.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct vd_database {
    pthread_rwlock_t lock; /* guards colls and n_colls */
    vd_collection **colls; /* sorted by name, each holding one reference */
    size_t n_colls;
    size_t max_collections;
    vd_pool *pool; /* borrowed */
    char *vectors_dir; /* originals on disk go here (NULL = the temp dir) */
    size_t backlog_max; /* each collection's shards' (vd_collection_config.backlog_max) */
    pthread_mutex_t feed_lock; /* guards feeds */
    vd_feed_state *feeds;
    size_t n_feeds;
};

int vd_database_create(vd_database **out, vd_pool *pool, size_t max_collections)
{
    vd_database *db = calloc(1, sizeof *db);
    if (!db)
        return -ENOMEM;
    db->colls = calloc(max_collections ? max_collections : 1, sizeof *db->colls);
    if (!db->colls) {
        free(db);
        return -ENOMEM;
    }
    pthread_rwlock_init(&db->lock, NULL);
    pthread_mutex_init(&db->feed_lock, NULL);
    db->pool = pool;
    db->max_collections = max_collections;
    *out = db;
    return 0;
}

void vd_database_destroy(vd_database *db)
{
    if (!db)
        return;
    for (size_t i = 0; i < db->n_colls; i++)
        vd_collection_unref(db->colls[i]);
    free(db->colls);
    free(db->feeds);
    free(db->vectors_dir);
    pthread_mutex_destroy(&db->feed_lock);
    pthread_rwlock_destroy(&db->lock);
    free(db);
}

/* Index of name, or of where it would be inserted (then *found = false). */
static size_t find(const vd_database *db, const char *name, bool *found)
{
    size_t lo = 0, hi = db->n_colls;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(vd_collection_config_of(db->colls[mid])->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

int vd_database_create_collection(vd_database *db, const vd_collection_config *cfg,
                                  const vd_write_order_hooks *hooks, vd_errmsg *em)
{
    vd_collection *c = NULL;
    vd_collection_config with_dir = *cfg;
    with_dir.vectors_dir = db->vectors_dir;
    with_dir.backlog_max = db->backlog_max;
    int rc = vd_collection_create_ordered(&c, &with_dir, db->pool, hooks);
    if (rc)
        return vd_fail(em, rc, "cannot allocate collection '%s'", cfg->name);
    pthread_rwlock_wrlock(&db->lock);
    bool found;
    size_t pos = find(db, cfg->name, &found);
    if (found) {
        rc = vd_fail(em, VD_E_COLLECTION_EXISTS, "collection '%s' already exists", cfg->name);
    } else if (db->n_colls >= db->max_collections) {
        rc = vd_fail(em, VD_E_LIMIT_REACHED, "at most %zu collections (setting max_collections)",
                     db->max_collections);
    } else {
        memmove(db->colls + pos + 1, db->colls + pos, (db->n_colls - pos) * sizeof *db->colls);
        db->colls[pos] = c;
        db->n_colls++;
        c = NULL;
    }
    pthread_rwlock_unlock(&db->lock);
    vd_collection_unref(c);
    return rc;
}

int vd_database_set_vectors_dir(vd_database *db, const char *dir)
{
    /* Fail now, not at a collection's creation: try to make such a file there. */
    vd_vecstore probe;
    int rc = vd_vecstore_init(&probe, 1, VD_QUANT_SQ8, dir);
    if (rc)
        return rc;
    vd_vecstore_destroy(&probe);
    char *copy = strdup(dir);
    if (!copy)
        return -ENOMEM;
    free(db->vectors_dir);
    db->vectors_dir = copy;
    return 0;
}

void vd_database_set_backlog_max(vd_database *db, size_t max) { db->backlog_max = max; }

int vd_database_check_room(vd_database *db, vd_errmsg *em)
{
    pthread_rwlock_rdlock(&db->lock);
    bool full = db->n_colls >= db->max_collections;
    pthread_rwlock_unlock(&db->lock);
    if (full)
        return vd_fail(em, VD_E_LIMIT_REACHED, "at most %zu collections (setting max_collections)",
                       db->max_collections);
    return 0;
}

int vd_database_get(vd_database *db, const char *name, vd_collection **out)
{
    pthread_rwlock_rdlock(&db->lock);
    bool found;
    size_t pos = find(db, name, &found);
    if (found) {
        *out = db->colls[pos];
        vd_collection_ref(*out);
    }
    pthread_rwlock_unlock(&db->lock);
    return found ? 0 : VD_E_COLLECTION_NOT_FOUND;
}

int vd_database_drop(vd_database *db, const char *name)
{
    vd_collection *c = NULL;
    pthread_rwlock_wrlock(&db->lock);
    bool found;
    size_t pos = find(db, name, &found);
    if (found) {
        c = db->colls[pos];
        memmove(db->colls + pos, db->colls + pos + 1, (db->n_colls - pos - 1) * sizeof *db->colls);
        db->n_colls--;
    }
    pthread_rwlock_unlock(&db->lock);
    vd_collection_unref(c);
    return found ? 0 : VD_E_COLLECTION_NOT_FOUND;
}

int vd_database_list(vd_database *db, vd_collection ***out, size_t *n)
{
    pthread_rwlock_rdlock(&db->lock);
    vd_collection **arr = malloc((db->n_colls ? db->n_colls : 1) * sizeof *arr);
    if (arr) {
        for (size_t i = 0; i < db->n_colls; i++) {
            arr[i] = db->colls[i];
            vd_collection_ref(arr[i]);
        }
        *n = db->n_colls;
    }
    pthread_rwlock_unlock(&db->lock);
    *out = arr;
    return arr ? 0 : -ENOMEM;
}

int vd_database_feed_set(vd_database *db, const vd_feed_state *st)
{
    pthread_mutex_lock(&db->feed_lock);
    int rc = 0;
    size_t i = 0;
    while (i < db->n_feeds && strcmp(db->feeds[i].feed, st->feed) != 0)
        i++;
    if (i == db->n_feeds) {
        vd_feed_state *nf = realloc(db->feeds, (db->n_feeds + 1) * sizeof *nf);
        if (!nf) {
            rc = -ENOMEM;
            goto done;
        }
        db->feeds = nf;
        db->feeds[db->n_feeds++] = *st;
    } else if (db->feeds[i].lsn <= st->lsn) {
        db->feeds[i] = *st;
    }
done:
    pthread_mutex_unlock(&db->feed_lock);
    return rc;
}

bool vd_database_feed_get(vd_database *db, const char *feed, vd_feed_state *out)
{
    pthread_mutex_lock(&db->feed_lock);
    bool found = false;
    for (size_t i = 0; i < db->n_feeds && !found; i++)
        if (strcmp(db->feeds[i].feed, feed) == 0) {
            *out = db->feeds[i];
            found = true;
        }
    pthread_mutex_unlock(&db->feed_lock);
    return found;
}

int vd_database_feed_list(vd_database *db, vd_feed_state **out, size_t *n)
{
    pthread_mutex_lock(&db->feed_lock);
    *out = malloc((db->n_feeds ? db->n_feeds : 1) * sizeof **out);
    if (*out) {
        if (db->n_feeds)
            memcpy(*out, db->feeds, db->n_feeds * sizeof **out);
        *n = db->n_feeds;
    }
    pthread_mutex_unlock(&db->feed_lock);
    return *out ? 0 : -ENOMEM;
}

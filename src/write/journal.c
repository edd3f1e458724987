/* journal.c — see journal.h. */
#include "write/journal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"
#include "write/write_order.h"

struct vd_journal {
    vd_database *db; /* borrowed */
    vd_wal *wal;     /* borrowed */
    pthread_mutex_t ddl_lock; /* one collection change at a time */
    atomic_uint bulk_loads;   /* running bulk loads (feed backfills) */
};

struct vd_commit {
    vd_collection *c;     /* borrowed */
    const vd_mutation *m; /* borrowed */
    uint64_t lsn;
    _Atomic int wal_err; /* set by the WAL writer before wake */
    vd_commit_wake_fn wake;
    void *ctx;
    /* under the collection's apply_lock: */
    bool staged;
    int stage_rc;
    vd_mutation_outcome out;
    vd_collection_staged *st;
    struct vd_commit *next; /* in the collection's queue (log_lock) */
};

int vd_journal_create(vd_journal **out, vd_database *db, vd_wal *wal)
{
    vd_journal *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    j->db = db;
    j->wal = wal;
    pthread_mutex_init(&j->ddl_lock, NULL);
    atomic_init(&j->bulk_loads, 0);
    *out = j;
    return 0;
}

void vd_journal_destroy(vd_journal *j)
{
    if (!j)
        return;
    pthread_mutex_destroy(&j->ddl_lock);
    free(j);
}

int vd_journal_wal_error(int err, vd_errmsg *em)
{
    switch (err) {
    case -ENOSPC:
        return vd_fail(em, VD_E_WAL_DISK_FULL,
                       "the disk holding the write-ahead log is full: the write was not logged "
                       "and not applied; writes resume once space is freed");
    case -ESHUTDOWN:
        return vd_fail(em, VD_E_NOT_READY, "the server is shutting down");
    case -EMSGSIZE:
        return vd_fail(em, VD_E_BODY_TOO_LARGE, "the write is larger than a WAL record may be");
    case -ENOMEM:
        return vd_fail(em, VD_E_OUT_OF_MEMORY, "out of memory logging the write");
    default:
        return vd_fail(em, VD_E_WAL_READ_ONLY,
                       "the write-ahead log hit an I/O error (%s) and is read-only until "
                       "vectord restarts; the write was not applied",
                       strerror(err == -EROFS ? EIO : -err));
    }
}

static int encode(const vd_mutation *m, vd_strbuf *body, vd_errmsg *em)
{
    vd_strbuf_init(body, 0);
    vd_mutation_encode(m, body);
    if (body->failed) {
        vd_strbuf_free(body);
        return vd_fail(em, VD_E_OUT_OF_MEMORY, "out of memory encoding the write");
    }
    return 0;
}

static void commit_logged(void *ctx, uint64_t lsn, int err)
{
    (void)lsn;
    vd_commit *cm = ctx;
    atomic_store(&cm->wal_err, err);
    cm->wake(cm->ctx);
}

int vd_journal_submit(vd_journal *j, vd_collection *c, const vd_mutation *m,
                      vd_commit_wake_fn wake, void *ctx, vd_commit **out, vd_errmsg *em)
{
    vd_strbuf body;
    int rc = encode(m, &body, em);
    if (rc)
        return rc;
    vd_commit *cm = calloc(1, sizeof *cm);
    if (!cm) {
        vd_strbuf_free(&body);
        return vd_fail(em, VD_E_OUT_OF_MEMORY, "out of memory");
    }
    *cm = (vd_commit){.c = c, .m = m, .wake = wake, .ctx = ctx};
    vd_write_order *o = vd_collection_write_order(c);
    pthread_mutex_lock(&o->log_lock);
    if (o->dropped) {
        rc = vd_fail(em, VD_E_COLLECTION_NOT_FOUND, "collection '%s' was dropped",
                     m->collection);
    } else if ((rc = vd_wal_append_async(j->wal, (uint8_t)m->type, body.data, (uint32_t)body.len,
                                         commit_logged, cm, &cm->lsn))) {
        rc = vd_journal_wal_error(rc, em);
    } else {
        /* Queued in LSN order: the WAL hands out LSNs under its own lock,
         * and log_lock orders this collection's appends. */
        if (o->tail)
            o->tail->next = cm;
        else
            o->head = cm;
        o->tail = cm;
        o->last_logged = cm->lsn;
    }
    pthread_mutex_unlock(&o->log_lock);
    vd_strbuf_free(&body);
    if (rc) {
        free(cm);
        return rc;
    }
    *out = cm;
    return 0;
}

/* Stages, in LSN order, the queued writes of a collection up to `until`
 * (a commit: through it; NULL: those logged before lsn). They are all
 * settled: the WAL reports records in LSN order, and the caller's is. */
static void stage_queued(vd_collection *c, vd_commit *until, uint64_t lsn)
{
    vd_write_order *o = vd_collection_write_order(c);
    pthread_mutex_lock(&o->apply_lock);
    for (;;) {
        if (until ? until->staged : false)
            break;
        pthread_mutex_lock(&o->log_lock);
        vd_commit *head = o->head;
        if (head && (until || head->lsn < lsn)) {
            o->head = head->next;
            if (!o->head)
                o->tail = NULL;
        } else {
            head = NULL;
        }
        pthread_mutex_unlock(&o->log_lock);
        if (!head)
            break;
        if (atomic_load(&head->wal_err) == 0) {
            head->stage_rc = vd_mutation_stage(c, head->m, head->lsn, &head->out, &head->st);
            o->applied_lsn = head->lsn;
        }
        head->staged = true;
    }
    if (!until && lsn > o->applied_lsn)
        o->applied_lsn = lsn;
    pthread_mutex_unlock(&o->apply_lock);
}

int vd_commit_complete(vd_commit *cm, vd_mutation_outcome *out, vd_errmsg *em)
{
    stage_queued(cm->c, cm, 0);
    int err = atomic_load(&cm->wal_err), rc;
    if (err) {
        rc = vd_journal_wal_error(err, em);
    } else {
        rc = cm->stage_rc;
        int rc2 = vd_mutation_finish(cm->c, cm->st);
        if (!rc)
            rc = rc2;
        if (rc == -ENOMEM)
            rc = vd_fail(em, VD_E_OUT_OF_MEMORY,
                         "out of memory applying a logged write (it is applied in full after a "
                         "restart)");
        else if (rc == -ENOSPC)
            rc = vd_fail(em, VD_E_DISK_FULL,
                         "the disk holding data_dir/vectors is full: the write is logged but its "
                         "points could not all be stored (they are applied in full after a restart "
                         "with free space)");
        else if (rc)
            rc = vd_fail(em, rc, "cannot apply the logged write");
    }
    *out = cm->out;
    free(cm);
    return rc;
}

/* Checks a collection change against the current state (under ddl_lock). */
static int validate_ddl(vd_journal *j, const vd_mutation *m, vd_collection **c, vd_errmsg *em)
{
    *c = NULL;
    if (m->type == VD_MUT_FEED_STATE)
        return 0;
    int found = vd_database_get(j->db, m->collection, c) == 0;
    if (m->type == VD_MUT_CREATE_COLLECTION) {
        if (found)
            return vd_fail(em, VD_E_COLLECTION_EXISTS, "collection '%s' already exists",
                           m->collection);
        return vd_database_check_room(j->db, em);
    }
    if (!found)
        return vd_fail(em, VD_E_COLLECTION_NOT_FOUND, "collection '%s' does not exist",
                       m->collection);
    if (m->type == VD_MUT_ADD_PINDEX)
        return vd_collection_check_pindex(*c, m->field, m->pindex_type, em);
    if (m->type == VD_MUT_DROP_PINDEX && !vd_collection_has_pindex(*c, m->field))
        return vd_fail(em, VD_E_NOT_FOUND, "collection '%s' has no payload index on '%.200s'", m->collection,
                       m->field);
    return 0;
}

/* vd_journal_ddl under ddl_lock, which it releases. */
static int ddl_locked(vd_journal *j, const vd_mutation *m, vd_errmsg *em)
{
    vd_collection *c;
    vd_mutation mm = *m;
    vd_strbuf body = {0};
    int rc = validate_ddl(j, m, &c, em);
    if (!rc && c)
        mm.incarnation = vd_collection_config_of(c)->incarnation;
    if (!rc)
        rc = encode(&mm, &body, em);
    vd_write_order *o = c ? vd_collection_write_order(c) : NULL;
    if (!rc && mm.type == VD_MUT_DROP_COLLECTION) {
        /* No write of the collection may be logged after its drop. */
        pthread_mutex_lock(&o->log_lock);
        o->dropped = true;
        pthread_mutex_unlock(&o->log_lock);
    }
    uint64_t lsn = 0;
    if (!rc && (rc = vd_wal_append(j->wal, (uint8_t)mm.type, body.data, (uint32_t)body.len,
                                   &lsn))) {
        rc = vd_journal_wal_error(rc, em);
        if (mm.type == VD_MUT_DROP_COLLECTION) {
            pthread_mutex_lock(&o->log_lock);
            o->dropped = false;
            pthread_mutex_unlock(&o->log_lock);
        }
    }
    if (!rc)
        rc = vd_mutation_apply_ddl(j->db, &mm, lsn, false, em);
    if (!rc && (mm.type == VD_MUT_ADD_PINDEX || mm.type == VD_MUT_DROP_PINDEX || mm.type == VD_MUT_SET_DEFAULTS)) {
        /* The index or settings change is a write of the collection like the
         * others: its snapshot must be redone to hold it. */
        stage_queued(c, NULL, lsn);
        pthread_mutex_lock(&o->log_lock);
        if (lsn > o->last_logged)
            o->last_logged = lsn;
        pthread_mutex_unlock(&o->log_lock);
    }
    vd_strbuf_free(&body);
    vd_collection_unref(c);
    pthread_mutex_unlock(&j->ddl_lock);
    return rc;
}

int vd_journal_ddl(vd_journal *j, const vd_mutation *m, vd_errmsg *em)
{
    pthread_mutex_lock(&j->ddl_lock);
    return ddl_locked(j, m, em);
}

int vd_journal_ddl_try(vd_journal *j, const vd_mutation *m, vd_errmsg *em)
{
    if (pthread_mutex_trylock(&j->ddl_lock) != 0)
        return VD_JOURNAL_BUSY;
    return ddl_locked(j, m, em);
}

void vd_journal_lock_ddl(vd_journal *j) { pthread_mutex_lock(&j->ddl_lock); }
void vd_journal_unlock_ddl(vd_journal *j) { pthread_mutex_unlock(&j->ddl_lock); }

typedef struct sync_wait {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
} sync_wait;

static void sync_wake(void *ctx)
{
    sync_wait *w = ctx;
    pthread_mutex_lock(&w->m);
    w->done = true;
    pthread_cond_signal(&w->c);
    pthread_mutex_unlock(&w->m);
}

int vd_journal_write(vd_journal *j, vd_collection *c, vd_mutation *m, vd_mutation_outcome *out,
                     vd_errmsg *em)
{
    const vd_collection_config *cfg = vd_collection_config_of(c);
    m->collection = cfg->name;
    m->incarnation = cfg->incarnation;
    sync_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    vd_commit *cm;
    int rc = vd_journal_submit(j, c, m, sync_wake, &w, &cm, em);
    if (rc)
        return rc;
    pthread_mutex_lock(&w.m);
    while (!w.done)
        pthread_cond_wait(&w.c, &w.m);
    pthread_mutex_unlock(&w.m);
    *out = (vd_mutation_outcome){0};
    return vd_commit_complete(cm, out, em);
}

void vd_journal_bulk_load(vd_journal *j, bool on)
{
    if (on)
        atomic_fetch_add(&j->bulk_loads, 1);
    else
        atomic_fetch_sub(&j->bulk_loads, 1);
}

unsigned vd_journal_bulk_loads(vd_journal *j) { return atomic_load(&j->bulk_loads); }

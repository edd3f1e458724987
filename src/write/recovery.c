/* recovery.c — see recovery.h. */
#include "write/recovery.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "write/mutation.h"
#include "util/clock.h"
#include "util/log.h"
#include "vectord/wal.h"
#include "vectord/wal_format.h"
#include "write/write_order.h"

typedef struct replay_ctx {
    vd_database *db;
    const char *path;
    uint64_t last_lsn;
    uint64_t records;
    int rc;
    vd_errmsg *em;
} replay_ctx;

/* A replayed write of a collection moves its log positions like a live one. */
static void note_applied(vd_database *db, const vd_mutation *m, uint64_t lsn)
{
    vd_collection *c;
    if (vd_database_get(db, m->collection, &c) != 0)
        return;
    if (vd_collection_config_of(c)->incarnation == m->incarnation) {
        vd_write_order *o = vd_collection_write_order(c);
        pthread_mutex_lock(&o->log_lock);
        if (lsn > o->last_logged)
            o->last_logged = lsn;
        pthread_mutex_unlock(&o->log_lock);
        pthread_mutex_lock(&o->apply_lock);
        if (lsn > o->applied_lsn)
            o->applied_lsn = lsn;
        pthread_mutex_unlock(&o->apply_lock);
    }
    vd_collection_unref(c);
}

static int replay_record(void *arg, const vd_wal_record *r)
{
    replay_ctx *x = arg;
    if (r->type == VD_WAL_TYPE_SKIP) {
        /* LSNs whose write failed (never acknowledged): the log goes on after them. */
        uint64_t first;
        if (!vd_wal_skip_first(r, &first)) {
            x->rc = vd_fail(x->em, VD_E_INTERNAL,
                            "WAL skip record LSN %llu at offset %llu of %s is malformed",
                            (unsigned long long)r->lsn, (unsigned long long)r->offset, x->path);
            return 1;
        }
        x->last_lsn = r->lsn;
        return 0;
    }
    vd_mutation_decoded d;
    vd_errmsg em = {{0}};
    int rc = vd_mutation_decode(r->type, r->body, r->len, &d, &em);
    if (!rc) {
        if (vd_mutation_is_ddl(d.m.type)) {
            rc = vd_mutation_apply_ddl(x->db, &d.m, r->lsn, true, &em);
        } else {
            vd_mutation_outcome out = {0};
            rc = vd_mutation_apply_data(x->db, NULL, &d.m, r->lsn, &out);
        }
    }
    if (!rc && d.m.type != VD_MUT_CREATE_COLLECTION && d.m.type != VD_MUT_DROP_COLLECTION &&
        d.m.type != VD_MUT_FEED_STATE)
        note_applied(x->db, &d.m, r->lsn);
    vd_mutation_decoded_free(&d);
    if (rc) {
        /* The record's checksum held, so its bytes are what was written:
         * failing to apply it is a bug or a lack of memory, never skipped. */
        x->rc = vd_fail(x->em, rc == -ENOMEM ? -ENOMEM : VD_E_INTERNAL,
                        "cannot replay WAL record LSN %llu (type %u) at offset %llu of %s: %s",
                        (unsigned long long)r->lsn, r->type, (unsigned long long)r->offset,
                        x->path, em.text[0] ? em.text : strerror(rc < 0 ? -rc : EINVAL));
        return 1;
    }
    x->last_lsn = r->lsn;
    x->records++;
    return 0;
}

/* Renames path to path.discarded (accept_data_loss keeps the bytes aside). */
static void discard(vd_vfs *vfs, const char *path)
{
    char to[1200];
    snprintf(to, sizeof to, "%s.discarded", path);
    int rc = vfs->ops->rename(vfs, path, to);
    vd_log_warn("discarded unreadable file", "file=\"%s\" renamed_to=\"%s\" rc=%d", path, to, rc);
}

static int cut(vd_vfs *vfs, const char *path, uint64_t at)
{
    int fd, rc = vfs->ops->open(vfs, path, O_RDWR, 0, &fd);
    if (rc)
        return rc;
    if (!(rc = vfs->ops->ftruncate(vfs, fd, at)))
        rc = vfs->ops->fdatasync(vfs, fd);
    vfs->ops->close(vfs, fd);
    return rc;
}

/* Records [from, to) are missing (where: "before segment …" or "at the end
 * of …"): refuse, or with accept_data_loss say so at error level and count
 * them. */
static int gap(const char *where, uint64_t from, uint64_t to, bool accept_data_loss,
               vd_recovery_report *rep, vd_errmsg *em)
{
    if (!accept_data_loss)
        return vd_fail(em, VD_E_INTERNAL,
                       "the WAL has a gap: records LSN %llu to %llu are missing %s "
                       "(a segment was removed, emptied or cut short); refusing to start "
                       "(--accept-data-loss starts without them)",
                       (unsigned long long)from, (unsigned long long)(to - 1), where);
    vd_log_error("the WAL has a gap: starting without the missing records (accept_data_loss)",
                 "first_lost_lsn=%llu last_lost_lsn=%llu records=%llu where=\"%s\"",
                 (unsigned long long)from, (unsigned long long)(to - 1),
                 (unsigned long long)(to - from), where);
    rep->lost_records += to - from;
    return 0;
}

int vd_recover_wal(vd_database *db, vd_vfs *vfs, const char *wal_dir, bool accept_data_loss,
                   vd_recovery_report *rep, vd_errmsg *em)
{
    double t0 = vd_now_s();
    uint64_t *firsts;
    size_t n;
    int rc = vd_wal_list_segments(wal_dir, &firsts, &n);
    if (rc == -ENOENT) {
        firsts = NULL;
        n = 0;
        rc = 0;
    }
    if (rc)
        return vd_fail(em, rc, "cannot list WAL directory %s: %s", wal_dir, strerror(-rc));
    replay_ctx x = {.db = db, .em = em};
    uint64_t next = rep->next_lsn ? rep->next_lsn : 1;
    /* The log must be continuous: each segment starts right after the last
     * record before it (names carry the first LSN; a failed write leaves a
     * skip record, so it makes no gap). A gap means a segment went missing,
     * or lost its records (emptied, cut short). */
    uint64_t expect = rep->wal_from ? rep->wal_from : n ? firsts[0] : 0;
    uint64_t reached = rep->wal_from ? rep->wal_from - 1 : 0; /* the log accounts for LSNs to here */
    bool stop = false; /* accept_data_loss cut the log: later segments are discarded */
    for (size_t i = 0; i < n && !rc; i++) {
        char path[1100];
        vd_wal_segment_path(path, sizeof path, wal_dir, firsts[i]);
        if (stop) {
            discard(vfs, path);
            continue;
        }
        bool last = i + 1 == n;
        uint8_t *seg;
        size_t len;
        if ((rc = vd_vfs_read_file(vfs, path, &seg, &len))) {
            rc = vd_fail(em, rc, "cannot read WAL segment %s: %s", path, strerror(-rc));
            break;
        }
        rep->segments++;
        rep->bytes += len;
        char where[1200];
        snprintf(where, sizeof where, "before segment %s", path);
        if (firsts[i] > expect && (rc = gap(where, expect, firsts[i], accept_data_loss, rep, em))) {
            free(seg);
            break;
        }
        if (firsts[i] - 1 > reached)
            reached = firsts[i] - 1;
        if (i > 0 && x.last_lsn && firsts[i] <= x.last_lsn) {
            free(seg);
            rc = vd_fail(em, VD_E_INTERNAL,
                         "WAL segment %s starts at LSN %llu, inside the previous one",
                         path, (unsigned long long)firsts[i]);
            break;
        }
        if (len < VD_WAL_SEGMENT_HEADER_LEN) {
            /* Created, but its header never got written (a crash, or a
             * failed roll whose clean-up failed too): it holds nothing. */
            free(seg);
            vd_log_warn("removing a WAL segment cut short while being created", "file=\"%s\" bytes=%zu",
                        path, len);
            rep->truncated_bytes += len;
            if ((rc = vfs->ops->unlink(vfs, path)))
                rc = vd_fail(em, rc, "cannot remove %s: %s", path, strerror(-rc));
            if (last && firsts[i] > next)
                next = firsts[i];
            continue;
        }
        vd_wal_scan_result res;
        vd_errmsg hem = {{0}};
        x.path = path;
        int src = vd_wal_scan(seg, len, replay_record, &x, &res, &hem);
        free(seg);
        if (x.rc) {
            rc = x.rc;
            break;
        }
        if (src) {
            if (!accept_data_loss) {
                rc = vd_fail(em, VD_E_INTERNAL,
                             "WAL segment %s has a bad header (%s); refusing to start "
                             "(--accept-data-loss discards it and every later segment)",
                             path, hem.text);
                break;
            }
            discard(vfs, path);
            stop = true;
            continue;
        }
        if (res.n_records)
            expect = x.last_lsn + 1;
        else if (firsts[i] > expect)
            expect = firsts[i]; /* accept_data_loss went past a gap: count from here */
        if (x.last_lsn + 1 > next)
            next = x.last_lsn + 1;
        if (firsts[i] > next)
            next = firsts[i]; /* an empty segment still reserves its first LSN */
        bool corrupt = res.status == VD_WAL_CORRUPT || (res.status == VD_WAL_TORN && !last);
        if (corrupt && !accept_data_loss) {
            rc = vd_fail(em, VD_E_INTERNAL,
                         "WAL segment %s is corrupt at offset %llu (%s); refusing to start "
                         "(--accept-data-loss cuts the log there and loses what follows)",
                         path, (unsigned long long)res.bad_offset,
                         res.status == VD_WAL_CORRUPT ? "valid records follow the bad one"
                                                      : "a torn record before the last segment");
            break;
        }
        if (last && res.n_records == 0 && !corrupt) {
            /* No record in it (maybe a torn one): the writer starts this
             * LSN's segment afresh. */
            rep->truncated_bytes += len - VD_WAL_SEGMENT_HEADER_LEN;
            if ((rc = vfs->ops->unlink(vfs, path)))
                rc = vd_fail(em, rc, "cannot remove %s: %s", path, strerror(-rc));
            break;
        }
        if (res.status != VD_WAL_CLEAN) {
            vd_log_warn(corrupt ? "cutting the WAL at a corrupt record (accept_data_loss)"
                                : "cutting a torn write off the end of the WAL",
                        "file=\"%s\" offset=%llu bytes=%llu", path,
                        (unsigned long long)res.valid_end,
                        (unsigned long long)(len - res.valid_end));
            rep->truncated_bytes += len - res.valid_end;
            if ((rc = cut(vfs, path, res.valid_end))) {
                rc = vd_fail(em, rc, "cannot truncate %s: %s", path, strerror(-rc));
                break;
            }
            stop = corrupt;
        }
    }
    free(firsts);
    if (x.last_lsn > reached)
        reached = x.last_lsn;
    /* The last checkpoint saw records written through wal_through: a log
     * that ends before lost its last segments. */
    if (!rc && rep->wal_through > reached) {
        char where[1200];
        snprintf(where, sizeof where,
                 "at the end of %s (the last checkpoint's manifest says they were written)",
                 wal_dir);
        rc = gap(where, reached + 1, rep->wal_through + 1, accept_data_loss, rep, em);
        if (!rc && next <= rep->wal_through)
            next = rep->wal_through + 1; /* never hand out a lost LSN again */
    }
    rep->records += x.records;
    rep->next_lsn = next;
    rep->replay_seconds += vd_now_s() - t0;
    return rc;
}

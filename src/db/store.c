/* store.c — see store.h. */
#include "db/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/log.h"

struct vd_store {
    vd_database *db; /* borrowed */
    vd_vfs *uring;   /* owned, or NULL when the WAL uses pwrite */
    vd_vfs *vfs;     /* what the WAL writes through */
    vd_wal *wal;
    vd_journal *journal;
    char wal_dir[1100];
};

static int make_dir(const char *path, vd_errmsg *em)
{
    if (mkdir(path, 0750) != 0 && errno != EEXIST)
        return vd_fail(em, -errno, "cannot create %s: %s", path, strerror(errno));
    return 0;
}

/* io_uring unless configured off or unavailable (e.g. a seccomp profile). */
static int choose_io(vd_store *s, const char *wal_io, vd_errmsg *em)
{
    s->vfs = vd_vfs_posix();
    if (strcmp(wal_io, "pwrite") == 0)
        return 0;
    int rc = vd_vfs_uring_create(&s->uring);
    if (rc == 0) {
        s->vfs = s->uring;
        return 0;
    }
    if (strcmp(wal_io, "io_uring") == 0)
        return vd_fail(em, rc, "wal_io=io_uring but io_uring cannot be used here: %s",
                       strerror(-rc));
    vd_log_warn("io_uring unavailable, the WAL uses pwrite and fdatasync",
                "error=\"%s\"", strerror(-rc));
    return 0;
}

int vd_store_open(vd_store **out, vd_database *db, const vd_store_options *opt,
                  vd_recovery_report *rep, vd_errmsg *em)
{
    vd_store *s = calloc(1, sizeof *s);
    if (!s)
        return vd_fail(em, -ENOMEM, "out of memory");
    s->db = db;
    snprintf(s->wal_dir, sizeof s->wal_dir, "%s/wal", opt->data_dir);
    *rep = (vd_recovery_report){0};
    int rc = make_dir(s->wal_dir, em);
    if (!rc)
        rc = choose_io(s, opt->wal_io, em);
    if (!rc)
        rc = vd_recover_wal(db, vd_vfs_posix(), s->wal_dir, opt->accept_data_loss, rep, em);
    vd_wal_options wo = {.segment_bytes = opt->segment_bytes, .fsync = opt->fsync,
                         .batch_ms = opt->batch_ms};
    if (!rc)
        rc = vd_wal_open(&s->wal, s->vfs, s->wal_dir, rep->next_lsn, &wo, em);
    if (!rc && vd_journal_create(&s->journal, db, s->wal) != 0)
        rc = vd_fail(em, -ENOMEM, "out of memory");
    if (rc) {
        vd_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void vd_store_close(vd_store *s)
{
    if (!s)
        return;
    vd_wal_close(s->wal);
    vd_journal_destroy(s->journal);
    vd_vfs_uring_destroy(s->uring);
    free(s);
}

vd_journal *vd_store_journal(vd_store *s) { return s->journal; }
vd_wal *vd_store_wal(vd_store *s) { return s->wal; }
const char *vd_store_wal_io(const vd_store *s) { return s->uring ? "io_uring" : "pwrite"; }

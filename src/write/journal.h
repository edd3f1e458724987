/*
 * journal.h — the database's write path: every change is logged in the WAL
 * before it is applied, and applied in log order.
 *
 * A data write (upsert, delete) is submitted: it is encoded, takes its LSN
 * and joins its collection's queue, and the caller is woken from the WAL
 * writer thread once the record is durable (or has failed). The caller then
 * completes it: writes of the collection are staged strictly in LSN order
 * (by whichever completing caller gets there first, so no caller waits on a
 * thread that is not running), and each caller finishes its own write (the
 * graph inserts) in parallel with the others. So memory always holds what
 * replaying the log would build. Collection changes (create, drop, payload
 * index) are rare: one at a time, logged and applied while the caller waits.
 */
#ifndef VD_JOURNAL_H
#define VD_JOURNAL_H

#include "db/database.h"
#include "write/mutation.h"
#include "vectord/error.h"
#include "vectord/wal.h"

typedef struct vd_journal vd_journal;
typedef struct vd_commit vd_commit;

/* db and wal are borrowed. */
int vd_journal_create(vd_journal **out, vd_database *db, vd_wal *wal);
void vd_journal_destroy(vd_journal *j);

typedef void (*vd_commit_wake_fn)(void *ctx);

/* Logs data mutation m on c. On success *out is pending and wake(ctx) runs
 * once, on the WAL writer thread; then call vd_commit_complete. m and c are
 * borrowed until then. Errors: VD_E_COLLECTION_NOT_FOUND (dropped meanwhile),
 * VD_E_WAL_* (the log refuses writes), -ENOMEM. */
int vd_journal_submit(vd_journal *j, vd_collection *c, const vd_mutation *m,
                      vd_commit_wake_fn wake, void *ctx, vd_commit **out, vd_errmsg *em);
/* Applies a woken commit in log order, finishes it and frees it. */
int vd_commit_complete(vd_commit *cm, vd_mutation_outcome *out, vd_errmsg *em);

/* Submits and completes a data mutation on c, waiting on this thread (for
 * callers with a thread of their own, such as the Postgres feed; HTTP
 * handlers suspend instead). Fills m's collection name and incarnation. */
int vd_journal_write(vd_journal *j, vd_collection *c, vd_mutation *m, vd_mutation_outcome *out,
                     vd_errmsg *em);

/* Validates, logs and applies a collection change (or a feed state),
 * waiting for durability. */
int vd_journal_ddl(vd_journal *j, const vd_mutation *m, vd_errmsg *em);
/* The same, unless the change would wait (a checkpoint holds collection
 * changes off for its whole run): then nothing is logged and it returns
 * VD_JOURNAL_BUSY. For a change a later one supersedes (a backfill's
 * position). */
#define VD_JOURNAL_BUSY 1
int vd_journal_ddl_try(vd_journal *j, const vd_mutation *m, vd_errmsg *em);

/* Holds off collection changes (a checkpoint must see a fixed set). */
void vd_journal_lock_ddl(vd_journal *j);
void vd_journal_unlock_ddl(vd_journal *j);

/* A bulk load (a feed's backfill) starts (on) or ends: while any runs,
 * checkpoints triggered by WAL size space out (vd_store_wal_trigger). */
void vd_journal_bulk_load(vd_journal *j, bool on);
unsigned vd_journal_bulk_loads(vd_journal *j);
/* The API error for a WAL failure (-ENOSPC, -EROFS, -EIO, …). */
int vd_journal_wal_error(int err, vd_errmsg *em);

#endif

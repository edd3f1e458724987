/* The durable write path end to end, without HTTP: a scripted workload of
 * collection changes, upserts, deletes and checkpoints runs against a store
 * whose file system crashes (or fails with EIO / ENOSPC) at its N-th
 * operation, for every N the workload reaches; recovery from what is on disk
 * must then hold every acknowledged write, exactly, and no failed one. Also:
 * record bodies round-trip, snapshot files refuse damage with a message that
 * names the offset, and a failed fsync turns writes into 503s while reads go on. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "write/checkpoint.h"
#include "db/database.h"
#include "write/journal.h"
#include "write/mutation.h"
#include "write/store.h"
#include "util/pool.h"
#include "util/strbuf.h"
#include "vectord/crc32c.h"
#include "vectord/snapshot.h"

#define DIM 4
#define MAX_ID 64

static char dir[64];

static void fresh_dir(void)
{
    vd_crc32c_init(true);
    snprintf(dir, sizeof dir, "/tmp/vectord-store-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static int write_sync(vd_journal *j, vd_collection *c, vd_mutation *m, vd_mutation_outcome *out)
{
    vd_errmsg em;
    return vd_journal_write(j, c, m, out, &em);
}

/* ---- the model: what an acknowledged history says must be there ------------ */

typedef struct model {
    bool exists;            /* collection "m" */
    bool exists_uncertain;  /* its create failed: either outcome is fine */
    int gen[MAX_ID];        /* 0 = absent, else the generation of its vector */
    bool uncertain[MAX_ID]; /* a write of it failed: either outcome is fine */
    bool pindex;
} model;

static void vec_of(int id, int gen, float *v)
{
    for (int k = 0; k < DIM; k++)
        v[k] = (float)((id * 3 + k * 5 + gen * 7) % 11) - 5.0f;
}

typedef struct rig {
    vd_pool *pool;
    vd_database *db;
    vd_store *store;
} rig;

static int rig_open(rig *r, vd_vfs *vfs, vd_errmsg *em)
{
    *r = (rig){0};
    cr_assert_eq(vd_pool_create(&r->pool, 1), 0);
    cr_assert_eq(vd_database_create(&r->db, r->pool, 16), 0);
    vd_store_options o = {.data_dir = dir, .fsync = VD_FSYNC_ALWAYS, .segment_bytes = 4096,
                          .wal_io = "pwrite", .vfs = vfs};
    vd_recovery_report rep;
    return vd_store_open(&r->store, r->db, &o, &rep, em);
}

static void rig_close(rig *r)
{
    vd_store_close(r->store, false);
    vd_database_destroy(r->db);
    vd_pool_destroy(r->pool);
}

/* Runs the workload until an operation fails with a crash; returns the
 * number of steps done. ENOSPC / EIO failures mark their ids uncertain. */
static int workload(rig *r, model *md)
{
    vd_journal *j = vd_store_journal(r->store);
    vd_errmsg em;
    vd_collection_config cfg = {.name = "m", .dim = DIM, .metric = VD_METRIC_L2, .n_shards = 2};
    vd_index_params_default(&cfg.index, VD_INDEX_HNSW);
    cfg.index.m = 4;
    cfg.index.ef_construction = 16;
    vd_mutation create = {.type = VD_MUT_CREATE_COLLECTION, .collection = "m", .cfg = &cfg};
    if (vd_journal_ddl(j, &create, &em)) {
        md->exists_uncertain = true; /* a failed fsync: the record may be on disk */
        return 0;
    }
    md->exists = true;
    vd_collection *c;
    cr_assert_eq(vd_database_get(r->db, "m", &c), 0);
    int steps = 1;
    for (int round = 0; round < 24; round++, steps++) {
        int gen = round + 1;
        int rc = 0;
        if (round % 6 == 5) {
            vd_point_id ids[3];
            for (int k = 0; k < 3; k++)
                ids[k] = (vd_point_id){.kind = VD_ID_INT, .num = (uint64_t)((round * 5 + k * 3) % MAX_ID)};
            vd_mutation m = {.type = VD_MUT_DELETE_IDS, .ids = ids, .n_ids = 3};
            vd_mutation_outcome out;
            rc = write_sync(j, c, &m, &out);
            for (int k = 0; k < 3; k++) {
                int id = (int)ids[k].num;
                if (rc)
                    md->uncertain[id] = true;
                else
                    md->gen[id] = 0;
            }
        } else {
            vd_point_in pts[4];
            float vecs[4][DIM];
            for (int k = 0; k < 4; k++) {
                int id = (round * 7 + k * 11) % MAX_ID;
                vec_of(id, gen, vecs[k]);
                pts[k] = (vd_point_in){.id = {.kind = VD_ID_INT, .num = (uint64_t)id},
                                       .vector = vecs[k],
                                       .payload = cJSON_CreateObject()};
                cJSON_AddNumberToObject(pts[k].payload, "gen", gen);
            }
            vd_mutation m = {.type = VD_MUT_UPSERT, .points = pts, .n_points = 4, .dim = DIM};
            vd_mutation_outcome out;
            rc = write_sync(j, c, &m, &out);
            for (int k = 0; k < 4; k++) {
                cJSON_Delete(pts[k].payload); /* left if the write was refused */
                int id = (int)pts[k].id.num;
                if (rc)
                    md->uncertain[id] = true;
                else
                    md->gen[id] = gen;
            }
        }
        if (rc == VD_E_WAL_READ_ONLY || rc == VD_E_NOT_READY)
            break; /* crashed or read-only: nothing more gets in */
        if (round == 9) {
            vd_mutation pi = {.type = VD_MUT_ADD_PINDEX, .collection = "m", .field = "gen",
                              .pindex_type = VD_PINDEX_NUMERIC};
            if (!vd_journal_ddl(j, &pi, &em))
                md->pindex = true;
        }
        if (round == 12 || round == 20) {
            vd_checkpoint_result res;
            vd_store_checkpoint(r->store, NULL, "test", &res, &em);
        }
    }
    vd_collection_unref(c);
    return steps;
}

static void verify(rig *r, const model *md, const char *what)
{
    vd_collection *c;
    if (md->exists_uncertain)
        return;
    if (!md->exists) {
        cr_assert_neq(vd_database_get(r->db, "m", &c), 0, "%s", what);
        return;
    }
    cr_assert_eq(vd_database_get(r->db, "m", &c), 0, "%s: collection lost", what);
    for (int id = 0; id < MAX_ID; id++) {
        if (md->uncertain[id])
            continue;
        vd_point_id pid = {.kind = VD_ID_INT, .num = (uint64_t)id};
        vd_point_out p;
        int rc = vd_collection_get(c, &pid, true, &p);
        if (!md->gen[id]) {
            cr_assert_eq(rc, VD_E_POINT_NOT_FOUND, "%s: id %d should be absent", what, id);
            continue;
        }
        cr_assert_eq(rc, 0, "%s: acknowledged id %d lost", what, id);
        float want[DIM];
        vec_of(id, md->gen[id], want);
        cr_assert_eq(memcmp(p.vector, want, sizeof want), 0, "%s: id %d vector", what, id);
        cr_assert_eq(cJSON_GetObjectItem(p.payload, "gen")->valueint, md->gen[id], "%s: id %d", what, id);
        vd_point_out_free(&p);
    }
    if (md->pindex) {
        vd_pindex_spec specs[4];
        cr_assert_eq(vd_collection_pindexes(c, specs, 4), 1, "%s: payload index lost", what);
    }
    vd_collection_unref(c);
}

static void run_faults(vd_fault_kind kind, int error, uint32_t torn)
{
    /* First learn how many file operations the whole workload makes. */
    fresh_dir();
    vd_vfs_faulty *probe;
    cr_assert_eq(vd_vfs_faulty_create(&probe, vd_vfs_posix(), VD_FAULT_NONE, 0, 0, 0), 0);
    rig r;
    vd_errmsg em;
    cr_assert_eq(rig_open(&r, vd_vfs_faulty_vfs(probe), &em), 0, "%s", em.text);
    model md = {0};
    workload(&r, &md);
    rig_close(&r);
    uint64_t total = vd_vfs_faulty_ops(probe);
    vd_vfs_faulty_destroy(probe);
    remove_dir();
    cr_assert_gt(total, 50);

    for (uint64_t n = 1; n <= total; n++) {
        fresh_dir();
        vd_vfs_faulty *f;
        cr_assert_eq(vd_vfs_faulty_create(&f, vd_vfs_posix(), kind, n, error, torn), 0);
        model m = {0};
        if (rig_open(&r, vd_vfs_faulty_vfs(f), &em) == 0) {
            workload(&r, &m);
            rig_close(&r);
        } else {
            vd_database_destroy(r.db);
            vd_pool_destroy(r.pool);
        }
        vd_vfs_faulty_destroy(f);
        char what[64];
        snprintf(what, sizeof what, "fault %d at operation %llu", kind, (unsigned long long)n);
        cr_assert_eq(rig_open(&r, NULL, &em), 0, "%s: recovery failed: %s", what, em.text);
        verify(&r, &m, what);
        rig_close(&r);
        remove_dir();
    }
}

Test(store, crash_at_every_operation_keeps_every_acknowledged_write, .timeout = 600)
{
    run_faults(VD_FAULT_CRASH, EIO, 0);
}

Test(store, torn_crash_at_every_operation_keeps_every_acknowledged_write, .timeout = 600)
{
    run_faults(VD_FAULT_CRASH, EIO, 9);
}

Test(store, eio_at_every_operation_loses_nothing_acknowledged, .timeout = 600)
{
    run_faults(VD_FAULT_ERROR, EIO, 0);
}

Test(store, enospc_at_every_operation_loses_nothing_acknowledged, .timeout = 600)
{
    run_faults(VD_FAULT_ERROR, ENOSPC, 0);
}

Test(store, failed_fsync_makes_writes_503_and_keeps_reads)
{
    /* A store whose 9th operation (an fdatasync of a group) fails. */
    fresh_dir();
    vd_vfs_faulty *f;
    rig r;
    vd_errmsg em;
    model md = {0};
    bool saw_read_only = false;
    for (uint64_t n = 6; n < 40 && !saw_read_only; n++) {
        cr_assert_eq(vd_vfs_faulty_create(&f, vd_vfs_posix(), VD_FAULT_ERROR, n, EIO, 0), 0);
        cr_assert_eq(rig_open(&r, vd_vfs_faulty_vfs(f), &em), 0);
        workload(&r, &md);
        vd_wal_stats st;
        vd_wal_stats_get(vd_store_wal(r.store), &st);
        if (st.read_only_error) {
            vd_collection *c;
            if (vd_database_get(r.db, "m", &c) != 0)
                goto next; /* the create itself failed */
            saw_read_only = true;
            float v[DIM] = {1, 2, 3, 4};
            vd_point_in p = {.id = {.kind = VD_ID_INT, .num = 1}, .vector = v};
            vd_mutation m = {.type = VD_MUT_UPSERT, .points = &p, .n_points = 1, .dim = DIM};
            vd_mutation_outcome out;
            cr_assert_eq(write_sync(vd_store_journal(r.store), c, &m, &out), VD_E_WAL_READ_ONLY);
            cr_assert_eq(vd_err_status(VD_E_WAL_READ_ONLY), 503);
            vd_point_out po;
            int rc = vd_collection_get(c, &(vd_point_id){.kind = VD_ID_INT, .num = 7}, false, &po);
            cr_assert(rc == 0 || rc == VD_E_POINT_NOT_FOUND); /* reads still answer */
            if (rc == 0)
                vd_point_out_free(&po);
            vd_collection_unref(c);
        }
    next:
        rig_close(&r);
        vd_vfs_faulty_destroy(f);
        remove_dir();
        fresh_dir();
        md = (model){0};
    }
    remove_dir();
    cr_assert(saw_read_only);
}

Test(store, enospc_fails_one_write_with_a_clear_error)
{
    vd_errmsg em;
    cr_assert_eq(vd_journal_wal_error(-ENOSPC, &em), VD_E_WAL_DISK_FULL);
    cr_assert_not_null(strstr(em.text, "full"));
    cr_assert_eq(vd_err_status(VD_E_WAL_DISK_FULL), 503);
    cr_assert_str_eq(vd_err_code(VD_E_WAL_DISK_FULL), "wal_disk_full");
}

Test(store, mutation_bodies_round_trip)
{
    vd_crc32c_init(true);
    float v[2][3] = {{1, 2, 3}, {-0.5f, 0, 1e-7f}};
    vd_point_in pts[2] = {
        {.id = {.kind = VD_ID_INT, .num = 42}, .vector = v[0], .has_version = true, .version = 9,
         .payload = cJSON_Parse("{\"a\":[1,\"x\"],\"b\":null}")},
        {.id = {.kind = VD_ID_STR, .str = "mem/ß", .len = 6}, .vector = v[1], .from_record = true},
    };
    vd_mutation m = {.type = VD_MUT_UPSERT, .collection = "coll", .incarnation = 77,
                     .points = pts, .n_points = 2, .dim = 3};
    vd_strbuf b;
    vd_strbuf_init(&b, 0);
    vd_mutation_encode(&m, &b);
    vd_mutation_decoded d;
    vd_errmsg em;
    cr_assert_eq(vd_mutation_decode(VD_MUT_UPSERT, (uint8_t *)b.data, b.len, &d, &em), 0, "%s", em.text);
    cr_assert_str_eq(d.m.collection, "coll");
    cr_assert_eq(d.m.incarnation, 77);
    cr_assert_eq(d.m.n_points, 2);
    cr_assert_eq(d.points[0].id.num, 42);
    cr_assert(d.points[0].has_version && d.points[0].version == 9 && !d.points[0].from_record);
    cr_assert(!d.points[1].has_version && d.points[1].from_record);
    cr_assert_eq(memcmp(d.points[1].vector, v[1], sizeof v[1]), 0);
    cr_assert_eq(d.points[1].id.len, 6);
    cr_assert_eq(memcmp(d.points[1].id.str, "mem/ß", 6), 0);
    cr_assert(cJSON_Compare(d.points[0].payload, pts[0].payload, 1));
    cr_assert_null(d.points[1].payload);
    /* every truncation is refused, never read past */
    for (size_t cut = 0; cut < b.len; cut++) {
        vd_mutation_decoded t;
        cr_assert_neq(vd_mutation_decode(VD_MUT_UPSERT, (uint8_t *)b.data, cut, &t, &em), 0);
        vd_mutation_decoded_free(&t);
    }
    vd_mutation_decoded_free(&d);
    cJSON_Delete(pts[0].payload);
    vd_strbuf_free(&b);
}

Test(store, snapshot_files_refuse_damage_naming_the_offset)
{
    vd_crc32c_init(true);
    fresh_dir();
    vd_strbuf img;
    vd_strbuf_init(&img, 0);
    vd_snapshot_begin(&img, VD_SNAP_SHARD, 1234);
    vd_strbuf_append(&img, "payload bytes", 13);
    vd_errmsg em;
    cr_assert_eq(vd_snapshot_commit(&img, vd_vfs_posix(), dir, "s.snap", &em), 0, "%s", em.text);
    char path[128];
    snprintf(path, sizeof path, "%s/s.snap", dir);
    uint8_t *data;
    size_t len;
    cr_assert_eq(vd_vfs_read_file(vd_vfs_posix(), path, &data, &len), 0);
    vd_snapshot_view v;
    cr_assert_eq(vd_snapshot_open(data, len, &v, &em), 0);
    cr_assert_eq(v.lsn, 1234);
    cr_assert_eq(v.body_len, 13);
    cr_assert_eq(memcmp(v.body, "payload bytes", 13), 0);
    data[30] ^= 1;
    cr_assert_eq(vd_snapshot_open(data, len, &v, &em), VD_E_INVALID_REQUEST);
    cr_assert_not_null(strstr(em.text, "checksum"), "%s", em.text);
    data[30] ^= 1;
    data[8] = 9;
    cr_assert_eq(vd_snapshot_open(data, len, &v, &em), VD_E_INVALID_REQUEST);
    cr_assert_not_null(strstr(em.text, "version 9 at offset 8"), "%s", em.text);
    data[8] = 1;
    cr_assert_eq(vd_snapshot_open(data, len - 1, &v, &em), VD_E_INVALID_REQUEST);
    cr_assert_not_null(strstr(em.text, "offset"), "%s", em.text);
    free(data);
    vd_strbuf_free(&img);
    remove_dir();
}

/* The WAL-size trigger: checkpoint_wal_bytes at least, else a percentage of
 * what the last checkpoint wrote, a larger one while a bulk load (a feed's
 * backfill) runs; 0 bytes turns the trigger off. The count of running bulk
 * loads is the journal's. */
Test(store, a_bulk_load_spaces_checkpoints_out)
{
    vd_store_options o = {.checkpoint_wal_bytes = 1000, .checkpoint_wal_pct = 100, .checkpoint_bulk_wal_pct = 400};
    cr_assert_eq(vd_store_wal_trigger(&o, 0, false), 1000);
    cr_assert_eq(vd_store_wal_trigger(&o, 0, true), 1000);
    cr_assert_eq(vd_store_wal_trigger(&o, 5000, false), 5000);
    cr_assert_eq(vd_store_wal_trigger(&o, 5000, true), 20000);
    o.checkpoint_bulk_wal_pct = 0;
    cr_assert_eq(vd_store_wal_trigger(&o, 5000, true), 1000, "0: the fixed trigger alone");
    o.checkpoint_wal_bytes = 0;
    cr_assert_eq(vd_store_wal_trigger(&o, 5000, false), 0, "no size trigger");

    vd_database *db = NULL;
    vd_journal *j = NULL;
    cr_assert_eq(vd_database_create(&db, NULL, 4), 0);
    cr_assert_eq(vd_journal_create(&j, db, NULL), 0);
    cr_assert_eq(vd_journal_bulk_loads(j), 0);
    vd_journal_bulk_load(j, true);
    vd_journal_bulk_load(j, true);
    cr_assert_eq(vd_journal_bulk_loads(j), 2);
    vd_journal_bulk_load(j, false);
    vd_journal_bulk_load(j, false);
    cr_assert_eq(vd_journal_bulk_loads(j), 0);
    vd_journal_destroy(j);
    vd_database_destroy(db);
}

/* A change a later one supersedes (a backfill's position) is not logged
 * while a checkpoint holds collection changes off: it says so instead of
 * waiting, and logs as vd_journal_ddl does once the lock is free. */
Test(store, a_position_is_not_logged_while_a_checkpoint_holds_changes)
{
    fresh_dir();
    rig r;
    vd_errmsg em = {{0}};
    cr_assert_eq(rig_open(&r, NULL, &em), 0, "%s", em.text);
    vd_journal *j = vd_store_journal(r.store);
    vd_feed_state st = {.feed = "f", .backfill_started = true, .backfill_rows = 2000};
    snprintf(st.backfill_after, sizeof st.backfill_after, "m2000");
    vd_mutation m = {.type = VD_MUT_FEED_STATE, .collection = "f", .feed = &st};
    vd_feed_state got;
    vd_journal_lock_ddl(j); /* as vd_store_checkpoint does for its whole run */
    cr_assert_eq(vd_journal_ddl_try(j, &m, &em), VD_JOURNAL_BUSY);
    vd_journal_unlock_ddl(j);
    cr_assert_not(vd_database_feed_get(r.db, "f", &got), "nothing applied");
    cr_assert_eq(vd_journal_ddl_try(j, &m, &em), 0, "%s", em.text);
    cr_assert(vd_database_feed_get(r.db, "f", &got));
    cr_assert_str_eq(got.backfill_after, "m2000");
    rig_close(&r);
    /* Logged: recovery finds it. */
    cr_assert_eq(rig_open(&r, NULL, &em), 0, "%s", em.text);
    cr_assert(vd_database_feed_get(r.db, "f", &got));
    cr_assert_eq(got.backfill_rows, 2000);
    rig_close(&r);
    remove_dir();
}

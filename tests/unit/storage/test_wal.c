/* WAL writer: records come back in order, concurrent writers share groups,
 * segments roll, ENOSPC fails one group, a failed fsync makes the WAL
 * read-only, and a crash at any I/O operation keeps every acknowledged record. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vectord/crc32c.h"
#include "vectord/wal.h"
#include "vectord/wal_format.h"

static char dir[64];

static void fresh_dir(void)
{
    vd_crc32c_init(true);
    snprintf(dir, sizeof dir, "/tmp/vectord-wal-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct seen {
    uint64_t lsns[20000];
    uint8_t types[20000];
    size_t n;
    bool corrupt;
} seen;

static int note(void *ctx, const vd_wal_record *r)
{
    seen *s = ctx;
    if (s->n < 20000)
        s->types[s->n] = r->type;
    /* body: 8 bytes of the LSN's owner tag, then filler derived from it */
    for (uint32_t i = 0; r->type != VD_WAL_TYPE_SKIP && i < r->len; i++)
        cr_assert_eq(r->body[i], (uint8_t)(r->len + i), "body of lsn %llu", (unsigned long long)r->lsn);
    if (s->n < 20000)
        s->lsns[s->n++] = r->lsn;
    return 0;
}

/* Scans every segment in name order, removes them, and the directory. */
static void read_all(seen *s, bool cleanup)
{
    DIR *d = opendir(dir);
    char *names[256];
    size_t nn = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (!strncmp(e->d_name, "wal-", 4))
            names[nn++] = strdup(e->d_name);
    closedir(d);
    qsort(names, nn, sizeof *names, cmp_name);
    for (size_t i = 0; i < nn; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *img = malloc((size_t)len + 1);
        cr_assert_eq(fread(img, 1, (size_t)len, f), (size_t)len);
        fclose(f);
        vd_wal_scan_result res;
        if ((size_t)len >= VD_WAL_SEGMENT_HEADER_LEN) {
            cr_assert_eq(vd_wal_scan(img, (size_t)len, note, s, &res, NULL), 0, "%s", path);
            s->corrupt |= res.status == VD_WAL_CORRUPT;
        }
        free(img);
        if (cleanup)
            unlink(path);
        free(names[i]);
    }
    if (cleanup)
        rmdir(dir);
}

static uint8_t body[512];
static uint32_t fill(uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        body[i] = (uint8_t)(len + i);
    return len;
}

Test(wal, records_round_trip_and_segments_roll)
{
    fresh_dir();
    vd_wal *w;
    vd_wal_options o = {.segment_bytes = 8192, .fsync = VD_FSYNC_ALWAYS};
    cr_assert_eq(vd_wal_open(&w, vd_vfs_posix(), dir, 1000, &o, NULL), 0);
    for (uint32_t i = 0; i < 200; i++) {
        uint64_t lsn;
        uint32_t len = fill(i % 300);
        cr_assert_eq(vd_wal_append(w, 1, body, len, &lsn), 0);
        cr_assert_eq(lsn, 1000 + i);
    }
    vd_wal_stats st;
    vd_wal_stats_get(w, &st);
    cr_assert_eq(st.records, 200);
    cr_assert_eq(st.durable_lsn, 1199);
    cr_assert_eq(st.fsyncs, st.groups);
    vd_wal_close(w);
    static seen s;
    memset(&s, 0, sizeof s);
    read_all(&s, true);
    cr_assert_eq(s.n, 200);
    for (size_t i = 0; i < s.n; i++)
        cr_assert_eq(s.lsns[i], 1000 + i);
}

typedef struct worker {
    vd_wal *w;
    int errors;
} worker;

static void *append_many(void *arg)
{
    worker *k = arg;
    uint8_t local[64];
    for (int i = 0; i < 300; i++) {
        for (int b = 0; b < 64; b++)
            local[b] = (uint8_t)(64 + b);
        if (vd_wal_append(k->w, 2, local, 64, NULL) != 0)
            k->errors++;
    }
    return NULL;
}

Test(wal, concurrent_writers_share_group_commits)
{
    fresh_dir();
    vd_wal *w;
    vd_wal_options o = {.segment_bytes = 1 << 20, .fsync = VD_FSYNC_ALWAYS};
    cr_assert_eq(vd_wal_open(&w, vd_vfs_posix(), dir, 1, &o, NULL), 0);
    enum { T = 8 };
    pthread_t th[T];
    worker k[T];
    for (int i = 0; i < T; i++) {
        k[i] = (worker){w, 0};
        pthread_create(&th[i], NULL, append_many, &k[i]);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(k[i].errors, 0);
    }
    vd_wal_stats st;
    vd_wal_stats_get(w, &st);
    cr_log_info("%llu records in %llu groups (%.1f per fsync)", (unsigned long long)st.records,
                (unsigned long long)st.groups, (double)st.records / (double)st.groups);
    cr_assert_eq(st.records, T * 300);
    cr_assert_lt(st.groups, st.records, "concurrent writers must share fsyncs");
    vd_wal_close(w);
    static seen s;
    memset(&s, 0, sizeof s);
    read_all(&s, true);
    cr_assert_eq(s.n, T * 300);
    for (size_t i = 0; i < s.n; i++)
        cr_assert_eq(s.lsns[i], 1 + i, "dense, ordered LSNs");
}

Test(wal, enospc_fails_one_group_then_writes_resume)
{
    fresh_dir();
    vd_vfs_faulty *f;
    /* ops: open 1, header write 2, sync 3, sync_dir 4, then per record: write, sync */
    cr_assert_eq(vd_vfs_faulty_create(&f, vd_vfs_posix(), VD_FAULT_SHORT_WRITE, 7, ENOSPC, 0), 0);
    vd_wal *w;
    vd_wal_options o = {.segment_bytes = 1 << 20, .fsync = VD_FSYNC_ALWAYS};
    cr_assert_eq(vd_wal_open(&w, vd_vfs_faulty_vfs(f), dir, 1, &o, NULL), 0);
    cr_assert_eq(vd_wal_append(w, 1, body, fill(100), NULL), 0);        /* ops 5, 6 */
    cr_assert_eq(vd_wal_append(w, 1, body, fill(100), NULL), -ENOSPC);  /* op 7: half written */
    cr_assert_eq(vd_wal_append(w, 1, body, fill(100), NULL), 0, "space is back");
    vd_wal_stats st;
    vd_wal_stats_get(w, &st);
    cr_assert_eq(st.read_only_error, 0);
    cr_assert_eq(st.failed_groups, 1);
    vd_wal_close(w);
    vd_vfs_faulty_destroy(f);
    static seen s;
    memset(&s, 0, sizeof s);
    read_all(&s, true);
    cr_assert_eq(s.n, 3, "the half-written record was cut off, a skip record took its LSN");
    cr_assert_not(s.corrupt);
    cr_assert_eq(s.lsns[0], 1);
    cr_assert_eq(s.lsns[1], 2);
    cr_assert_eq(s.types[1], VD_WAL_TYPE_SKIP, "the log stays continuous over the failed write");
    cr_assert_eq(s.lsns[2], 3);
}

Test(wal, failed_fsync_makes_the_wal_read_only)
{
    fresh_dir();
    vd_vfs_faulty *f;
    cr_assert_eq(vd_vfs_faulty_create(&f, vd_vfs_posix(), VD_FAULT_ERROR, 6, EIO, 0), 0);
    vd_wal *w;
    vd_wal_options o = {.segment_bytes = 1 << 20, .fsync = VD_FSYNC_ALWAYS};
    cr_assert_eq(vd_wal_open(&w, vd_vfs_faulty_vfs(f), dir, 1, &o, NULL), 0);
    cr_assert_eq(vd_wal_append(w, 1, body, fill(10), NULL), -EIO); /* op 5 write, op 6 sync fails */
    cr_assert_eq(vd_wal_append(w, 1, body, fill(10), NULL), -EROFS, "never retried");
    vd_wal_stats st;
    vd_wal_stats_get(w, &st);
    cr_assert_eq(st.read_only_error, -EIO);
    vd_wal_close(w);
    vd_vfs_faulty_destroy(f);
    static seen s;
    memset(&s, 0, sizeof s);
    read_all(&s, true);
}

Test(wal, crash_at_every_operation_keeps_acknowledged_records)
{
    vd_crc32c_init(true);
    for (uint64_t at = 1; at <= 40; at++) {
        fresh_dir();
        vd_vfs_faulty *f;
        cr_assert_eq(vd_vfs_faulty_create(&f, vd_vfs_posix(), VD_FAULT_CRASH, at, 0, 17), 0);
        vd_wal *w;
        vd_wal_options o = {.segment_bytes = 600, .fsync = VD_FSYNC_ALWAYS}; /* rolls often */
        uint64_t acked[64];
        size_t n_acked = 0;
        if (vd_wal_open(&w, vd_vfs_faulty_vfs(f), dir, 1, &o, NULL) == 0) {
            for (int i = 0; i < 20; i++) {
                uint64_t lsn;
                if (vd_wal_append(w, 1, body, fill(90), &lsn) == 0)
                    acked[n_acked++] = lsn;
            }
            vd_wal_close(w);
        }
        vd_vfs_faulty_destroy(f);
        static seen s;
        memset(&s, 0, sizeof s);
        read_all(&s, true);
        cr_assert_not(s.corrupt, "crash at op %llu looks like corruption", (unsigned long long)at);
        for (size_t i = 0; i < n_acked; i++) {
            bool found = false;
            for (size_t j = 0; j < s.n && !found; j++)
                found = s.lsns[j] == acked[i];
            cr_assert(found, "crash at op %llu lost acknowledged lsn %llu", (unsigned long long)at,
                      (unsigned long long)acked[i]);
        }
    }
}

/* fsync=batch: records are acknowledged after the write, and the timed sync
 * catches up within batch_ms; rolls sync the old segment first. */
Test(wal, batch_fsync_syncs_within_batch_ms_and_at_rolls)
{
    fresh_dir();
    vd_wal *w;
    vd_wal_options o = {.segment_bytes = 4096, .fsync = VD_FSYNC_BATCH, .batch_ms = 20};
    cr_assert_eq(vd_wal_open(&w, vd_vfs_posix(), dir, 1, &o, NULL), 0);
    for (uint32_t i = 0; i < 60; i++) {
        uint64_t lsn;
        cr_assert_eq(vd_wal_append(w, 2, body, fill(100 + i), &lsn), 0);
    }
    vd_wal_stats st;
    vd_wal_stats_get(w, &st);
    cr_assert_eq(st.records, 60);
    uint64_t before = st.fsyncs;
    cr_assert_lt(before, st.groups, "batch mode must not fsync every group");
    usleep(200 * 1000); /* past batch_ms: the writer's timed wait syncs the tail */
    vd_wal_stats_get(w, &st);
    cr_assert_gt(st.fsyncs, before, "the unsynced tail was never synced");
    cr_assert_eq(st.read_only_error, 0);
    vd_wal_close(w);
    static seen s;
    memset(&s, 0, sizeof s);
    read_all(&s, true);
    cr_assert_eq(s.n, 60);
}

Test(wal, no_fsync_acknowledges_after_the_write)
{
    fresh_dir();
    vd_wal *w;
    vd_wal_options o = {.segment_bytes = 1 << 20, .fsync = VD_FSYNC_NONE};
    cr_assert_eq(vd_wal_open(&w, vd_vfs_posix(), dir, 7, &o, NULL), 0);
    for (uint32_t i = 0; i < 20; i++) {
        uint64_t lsn;
        cr_assert_eq(vd_wal_append(w, 3, body, fill(i), &lsn), 0);
        cr_assert_eq(lsn, 7 + i);
    }
    vd_wal_stats st;
    vd_wal_stats_get(w, &st);
    cr_assert_eq(st.fsyncs, 0);
    cr_assert_eq(st.durable_lsn, 26);
    vd_wal_close(w);
    static seen s;
    memset(&s, 0, sizeof s);
    read_all(&s, true);
    cr_assert_eq(s.n, 20);
}

/* Only well-formed segment names count; they come back in LSN order. */
Test(wal, list_segments_skips_other_files_and_sorts)
{
    fresh_dir();
    const char *names[] = {"wal-00000000000000ff.log", "wal-0000000000000010.log", "wal-zz.log",
                           "wal-0000000000000020.tmp", "notes.txt", "wal-0000000000000001.log",
                           "wal-zzzzzzzzzzzzzzzz.log"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fclose(f);
    }
    uint64_t *firsts;
    size_t n;
    cr_assert_eq(vd_wal_list_segments(dir, &firsts, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(firsts[0], 1);
    cr_assert_eq(firsts[1], 0x10);
    cr_assert_eq(firsts[2], 0xff);
    free(firsts);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    cr_assert_eq(vd_wal_list_segments(dir, &firsts, &n), -ENOENT);
}

/* Counts the segment files of dir. */
static size_t count_segments(void)
{
    uint64_t *firsts;
    size_t n;
    cr_assert_eq(vd_wal_list_segments(dir, &firsts, &n), 0);
    free(firsts);
    return n;
}

Test(wal, remove_through_keeps_every_segment_holding_a_later_record)
{
    fresh_dir();
    vd_wal *w;
    vd_wal_options o = {.segment_bytes = 4096, .fsync = VD_FSYNC_ALWAYS};
    cr_assert_eq(vd_wal_open(&w, vd_vfs_posix(), dir, 1, &o, NULL), 0);
    for (uint32_t i = 0; i < 100; i++)
        cr_assert_eq(vd_wal_append(w, 1, body, fill(200), NULL), 0);
    size_t before = count_segments(), removed;
    cr_assert_geq(before, 4, "%zu segments", before);
    uint64_t *firsts;
    size_t n;
    cr_assert_eq(vd_wal_list_segments(dir, &firsts, &n), 0);
    /* Through the last LSN of segment 0 but one: nothing can go. */
    cr_assert_eq(vd_wal_remove_through(w, firsts[1] - 2, &removed), 0);
    cr_assert_eq(removed, 0);
    /* Through the middle of segment 2: segments 0 and 1 go. */
    cr_assert_eq(vd_wal_remove_through(w, firsts[2] + 1, &removed), 0);
    cr_assert_eq(removed, 2);
    cr_assert_eq(count_segments(), before - 2);
    /* Through everything: every segment but the one being written. */
    cr_assert_eq(vd_wal_remove_through(w, UINT64_MAX - 1, &removed), 0);
    cr_assert_eq(removed, before - 3);
    cr_assert_eq(count_segments(), 1);
    free(firsts);
    /* The WAL goes on in its current segment. */
    uint64_t lsn;
    cr_assert_eq(vd_wal_append(w, 1, body, fill(10), &lsn), 0);
    cr_assert_eq(lsn, 101);
    vd_wal_close(w);
    static seen s;
    memset(&s, 0, sizeof s);
    read_all(&s, true);
    cr_assert(s.n >= 1 && s.lsns[s.n - 1] == 101);
}

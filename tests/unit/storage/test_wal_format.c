/* WAL layout: round trip, every truncation, corruption vs torn tail, bad
 * headers, and a crash at every I/O operation of a scripted append workload. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vectord/crc32c.h"
#include "vectord/vfs.h"
#include "vectord/wal_format.h"

enum { N_REC = 12 };

typedef struct collected {
    uint64_t lsn[64];
    uint32_t len[64];
    size_t n;
} collected;

static int collect(void *ctx, const vd_wal_record *r)
{
    collected *c = ctx;
    c->lsn[c->n] = r->lsn;
    c->len[c->n] = r->len;
    for (uint32_t i = 0; i < r->len; i++)
        cr_assert_eq(r->body[i], (uint8_t)(r->lsn + i), "body of lsn %llu", (unsigned long long)r->lsn);
    c->n++;
    return 0;
}

/* A segment of N_REC records with bodies of varied length; offsets[i] is
 * where record i starts, offsets[N_REC] the end. */
static size_t build(uint8_t *img, uint64_t salt, size_t *offsets)
{
    vd_crc32c_init(true);
    vd_wal_header_encode(img, salt);
    size_t off = VD_WAL_SEGMENT_HEADER_LEN;
    uint8_t body[300];
    for (int i = 0; i < N_REC; i++) {
        uint64_t lsn = 100 + (uint64_t)i;
        uint32_t len = (uint32_t)(i * 23 % 290);
        for (uint32_t b = 0; b < len; b++)
            body[b] = (uint8_t)(lsn + b);
        offsets[i] = off;
        off += vd_wal_record_encode(img + off, salt, lsn, (uint8_t)(i % 3), body, len);
    }
    offsets[N_REC] = off;
    return off;
}

Test(wal_format, round_trip_and_every_truncation)
{
    static uint8_t img[8192];
    size_t offs[N_REC + 1];
    size_t len = build(img, 0xfeedULL, offs);
    vd_wal_scan_result res;
    collected c = {0};
    cr_assert_eq(vd_wal_scan(img, len, collect, &c, &res, NULL), 0);
    cr_assert_eq(res.status, VD_WAL_CLEAN);
    cr_assert_eq(c.n, N_REC);
    cr_assert_eq(res.last_lsn, 100 + N_REC - 1);
    for (size_t cut = VD_WAL_SEGMENT_HEADER_LEN; cut <= len; cut++) {
        memset(&c, 0, sizeof c);
        cr_assert_eq(vd_wal_scan(img, cut, collect, &c, &res, NULL), 0);
        size_t whole = 0;
        while (whole < N_REC && offs[whole + 1] <= cut)
            whole++;
        cr_assert_eq(c.n, whole, "cut at %zu", cut);
        cr_assert_eq(res.status, cut == offs[whole] ? VD_WAL_CLEAN : VD_WAL_TORN, "cut at %zu", cut);
        cr_assert_eq(res.valid_end, offs[whole]);
    }
}

Test(wal_format, damage_in_the_middle_is_corruption_at_the_end_a_torn_tail)
{
    static uint8_t img[8192];
    size_t offs[N_REC + 1];
    size_t len = build(img, 7, offs);
    vd_wal_scan_result res;
    for (int i = 0; i < N_REC; i++) {
        for (size_t at = offs[i]; at < offs[i + 1]; at += 7) {
            img[at] ^= 0x40;
            cr_assert_eq(vd_wal_scan(img, len, NULL, NULL, &res, NULL), 0);
            img[at] ^= 0x40;
            cr_assert_eq(res.n_records, (uint64_t)i, "flip in record %d at %zu", i, at);
            cr_assert_eq(res.bad_offset, offs[i]);
            cr_assert_eq(res.status, i == N_REC - 1 ? VD_WAL_TORN : VD_WAL_CORRUPT,
                         "flip in record %d at %zu", i, at);
        }
    }
}

Test(wal_format, salt_and_lsn_order_are_checked)
{
    static uint8_t img[8192], other[8192];
    size_t offs[N_REC + 1], offs2[N_REC + 1];
    size_t len = build(img, 1, offs);
    build(other, 2, offs2);
    /* a record from a segment with another salt does not validate */
    memcpy(img + offs[3], other + offs2[3], offs[4] - offs[3]);
    vd_wal_scan_result res;
    cr_assert_eq(vd_wal_scan(img, len, NULL, NULL, &res, NULL), 0);
    cr_assert_eq(res.n_records, 3);
    cr_assert_eq(res.status, VD_WAL_CORRUPT);
    /* an LSN that does not increase ends the valid prefix */
    len = build(img, 1, offs);
    uint8_t body[1] = {0};
    size_t end = offs[N_REC];
    end += vd_wal_record_encode(img + end, 1, 50, 0, body, 0);
    cr_assert_eq(vd_wal_scan(img, end, NULL, NULL, &res, NULL), 0);
    cr_assert_eq(res.n_records, N_REC);
    cr_assert_eq(res.status, VD_WAL_TORN);
    (void)len;
}

Test(wal_format, bad_headers_are_named)
{
    uint8_t h[VD_WAL_SEGMENT_HEADER_LEN];
    uint64_t salt;
    vd_errmsg em;
    vd_crc32c_init(true);
    vd_wal_header_encode(h, 42);
    cr_assert_eq(vd_wal_header_decode(h, sizeof h, &salt, &em), 0);
    cr_assert_eq(salt, 42);
    cr_assert_neq(vd_wal_header_decode(h, 10, &salt, &em), 0);
    cr_assert(strstr(em.text, "shorter than its header"));
    h[0] = 'X';
    cr_assert_neq(vd_wal_header_decode(h, sizeof h, &salt, &em), 0);
    cr_assert(strstr(em.text, "bad magic"));
    vd_wal_header_encode(h, 42);
    h[20] ^= 1;
    cr_assert_neq(vd_wal_header_decode(h, sizeof h, &salt, &em), 0);
    cr_assert(strstr(em.text, "checksum"));
    vd_wal_header_encode(h, 42);
    h[8] = 9; /* version 9, checksum recomputed */
    uint32_t crc = vd_crc32c(0, h, 24);
    for (int i = 0; i < 4; i++)
        h[24 + i] = (uint8_t)(crc >> (8 * i));
    cr_assert_neq(vd_wal_header_decode(h, sizeof h, &salt, &em), 0);
    cr_assert(strstr(em.text, "format version 9"), "%s", em.text);
    vd_wal_header_encode(h, 42);
    h[12] = 64; /* header length 64, checksum recomputed */
    crc = vd_crc32c(0, h, 24);
    for (int i = 0; i < 4; i++)
        h[24 + i] = (uint8_t)(crc >> (8 * i));
    cr_assert_neq(vd_wal_header_decode(h, sizeof h, &salt, &em), 0);
    cr_assert(strstr(em.text, "header length 64"), "%s", em.text);
}

/* Appends N_REC records, fdatasync after every second one; returns how many
 * records were acknowledged (their sync succeeded) before the first error. */
static int append_workload(vd_vfs *v, const char *path, int *acked)
{
    uint8_t buf[512];
    int fd, rc;
    size_t n;
    *acked = 0;
    if ((rc = v->ops->open(v, path, O_RDWR | O_CREAT | O_TRUNC, 0600, &fd)))
        return rc;
    vd_wal_header_encode(buf, 99);
    uint64_t off = 0;
    if ((rc = v->ops->pwrite(v, fd, buf, VD_WAL_SEGMENT_HEADER_LEN, off, &n)) ||
        (rc = v->ops->fdatasync(v, fd)))
        goto out;
    off += VD_WAL_SEGMENT_HEADER_LEN;
    for (int i = 0; i < N_REC; i++) {
        uint8_t body[64];
        for (int b = 0; b < 64; b++)
            body[b] = (uint8_t)(1 + i + b);
        size_t len = vd_wal_record_encode(buf, 99, 1 + (uint64_t)i, 1, body, 64);
        if ((rc = v->ops->pwrite(v, fd, buf, len, off, &n)))
            goto out;
        off += len;
        if (i % 2 == 1) {
            if ((rc = v->ops->fdatasync(v, fd)))
                goto out;
            *acked = i + 1;
        }
    }
out:
    v->ops->close(v, fd);
    return rc;
}

Test(wal_format, crash_at_every_operation_keeps_every_acknowledged_record)
{
    vd_crc32c_init(true);
    char dir[] = "/tmp/vectord-walfmt-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/wal-0000000000000001.log", dir);
    /* count the operations of a clean run */
    vd_vfs_faulty *probe;
    cr_assert_eq(vd_vfs_faulty_create(&probe, vd_vfs_posix(), VD_FAULT_NONE, 0, 0, 0), 0);
    int acked;
    cr_assert_eq(append_workload(vd_vfs_faulty_vfs(probe), path, &acked), 0);
    cr_assert_eq(acked, N_REC);
    uint64_t total = vd_vfs_faulty_ops(probe);
    vd_vfs_faulty_destroy(probe);
    for (uint64_t at = 1; at <= total; at++) {
        for (uint32_t torn = 0; torn <= 40; torn += 20) {
            vd_vfs_faulty *f;
            cr_assert_eq(vd_vfs_faulty_create(&f, vd_vfs_posix(), VD_FAULT_CRASH, at, 0, torn), 0);
            append_workload(vd_vfs_faulty_vfs(f), path, &acked);
            cr_assert(vd_vfs_faulty_has_crashed(f));
            vd_vfs_faulty_destroy(f);
            /* "restart": read what survived */
            FILE *fp = fopen(path, "rb");
            static uint8_t img[8192];
            size_t len = fp ? fread(img, 1, sizeof img, fp) : 0;
            if (fp)
                fclose(fp);
            if (len < VD_WAL_SEGMENT_HEADER_LEN) {
                cr_assert_eq(acked, 0, "crash at %llu lost acknowledged records", (unsigned long long)at);
                continue;
            }
            vd_wal_scan_result res;
            cr_assert_eq(vd_wal_scan(img, len, NULL, NULL, &res, NULL), 0);
            cr_assert_neq(res.status, VD_WAL_CORRUPT, "a crash must only tear the tail (op %llu)",
                          (unsigned long long)at);
            cr_assert_geq(res.n_records, (uint64_t)acked, "crash at op %llu, torn %u: %llu records, %d acknowledged",
                          (unsigned long long)at, torn, (unsigned long long)res.n_records, acked);
        }
    }
    unlink(path);
    rmdir(dir);
}

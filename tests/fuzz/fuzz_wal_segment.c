/*
 * fuzz_wal_segment.c — the WAL segment reader as recovery uses it: a
 * segment file in a fresh WAL folder, read by vd_recover_wal into an empty
 * database (scan, checksums, torn-tail cut, record decoding, replay), and by
 * the inspector (vd_wal_inspect). Then every recovered collection answers a
 * search and lists its points.
 *
 * Byte 0: bit 0 raw or framed, bit 1 accept_data_loss. Raw: the rest is the
 * segment file as it is (header checks, checksums, torn and corrupt
 * records). Framed: the rest is a run of records, each [type u8][length
 * u16 LE][body], written behind a valid header with valid checksums and
 * LSNs 1, 2, …, so the fuzzer works on record bodies (the mutation decoder
 * and replay) rather than on checksums; bytes left over that do not make a
 * whole record become a torn tail.
 */
#include <stdlib.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "db/database.h"
#include "write/recovery.h"
#include "fuzz_common.h"
#include "storage/wal_inspect.h"
#include "util/strbuf.h"
#include "vectord/wal.h"
#include "vectord/wal_format.h"

#define SALT 0x5eed5a17c0ffee00ull

static void frame(const uint8_t *data, size_t size, vd_strbuf *seg)
{
    uint8_t header[VD_WAL_SEGMENT_HEADER_LEN];
    vd_wal_header_encode(header, SALT);
    vd_strbuf_append(seg, header, sizeof header);
    uint64_t lsn = 1;
    size_t at = 0;
    while (at + 3 <= size) {
        uint32_t len = (uint32_t)data[at + 1] | (uint32_t)data[at + 2] << 8;
        if (at + 3 + len > size)
            break;
        uint8_t *rec = malloc(VD_WAL_RECORD_HEADER_LEN + len);
        VD_FUZZ_CHECK(rec != NULL);
        size_t n = vd_wal_record_encode(rec, SALT, lsn++, data[at], data + at + 3, len);
        vd_strbuf_append(seg, rec, n);
        free(rec);
        at += 3 + len;
    }
    vd_strbuf_append(seg, data + at, size - at); /* a torn tail, if anything is left */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vd_fuzz_init();
    if (size < 1 || size > 8 << 20)
        return 0;
    bool raw = data[0] & 1, accept = data[0] & 2;
    vd_strbuf seg = {0};
    if (raw)
        vd_strbuf_append(&seg, data + 1, size - 1);
    else
        frame(data + 1, size - 1, &seg);
    VD_FUZZ_CHECK(!seg.failed);

    char dir[700], path[1100];
    snprintf(dir, sizeof dir, "%s/wal", vd_fuzz_tmpdir());
    vd_fuzz_clear_dir(dir);
    mkdir(dir, 0700);
    vd_wal_segment_path(path, sizeof path, dir, 1);
    FILE *f = fopen(path, "wb");
    VD_FUZZ_CHECK(f && fwrite(seg.data ? seg.data : "", 1, seg.len, f) == seg.len && fclose(f) == 0);

    FILE *devnull = fopen("/dev/null", "w");
    vd_wal_scan_result res;
    vd_errmsg em = {{0}};
    (void)vd_wal_inspect((const uint8_t *)(seg.data ? seg.data : ""), seg.len, path, true, NULL,
                         devnull, &res, &em);
    fclose(devnull);

    vd_database *db;
    VD_FUZZ_CHECK(vd_database_create(&db, NULL, 64) == 0);
    vd_recovery_report rep = {0};
    if (vd_recover_wal(db, vd_vfs_posix(), dir, accept, &rep, &em) == 0)
        vd_fuzz_use_database(db);
    vd_database_destroy(db);
    vd_strbuf_free(&seg);
    return 0;
}

/* wal_inspect.c — see wal_inspect.h. */
#include "storage/wal_inspect.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct listing {
    FILE *out;
    bool list;
    vd_wal_describe_fn describe;
} listing;

static int print_record(void *ctx, const vd_wal_record *r)
{
    listing *l = ctx;
    if (!l->list)
        return 0;
    char text[300] = "";
    if (l->describe)
        l->describe(r, text, sizeof text);
    fprintf(l->out, "  lsn=%" PRIu64 " type=%u offset=%" PRIu64 " body_bytes=%u%s%s\n", r->lsn,
            r->type, r->offset, r->len, *text ? " " : "", text);
    return 0;
}

int vd_wal_inspect(const uint8_t *img, size_t len, const char *path, bool list_records,
                   vd_wal_describe_fn describe, FILE *out, vd_wal_scan_result *res, vd_errmsg *em)
{
    int rc;
    vd_errmsg hdr_em = {{0}};
    listing l = {out, list_records, describe};
    rc = vd_wal_scan(img, len, print_record, &l, res, &hdr_em);
    if (rc)
        return vd_fail(em, rc, "%s: %s", path, hdr_em.text);
    uint64_t salt = 0;
    vd_wal_header_decode(img, len, &salt, NULL);
    fprintf(out, "segment %s: format %d, salt %016" PRIx64 ", %zu bytes, %" PRIu64 " records", path,
            VD_WAL_FORMAT_VERSION, salt, len, res->n_records);
    if (res->n_records)
        fprintf(out, ", last lsn %" PRIu64, res->last_lsn);
    fputc('\n', out);
    switch (res->status) {
    case VD_WAL_CLEAN:
        fprintf(out, "verdict: clean\n");
        break;
    case VD_WAL_TORN:
        fprintf(out, "verdict: torn tail at offset %" PRIu64 " (%" PRIu64
                     " bytes after the last valid record; recovery truncates them)\n",
                res->bad_offset, (uint64_t)len - res->bad_offset);
        break;
    case VD_WAL_CORRUPT:
        fprintf(out, "verdict: CORRUPT at offset %" PRIu64
                     ": an invalid record is followed by valid ones (recovery refuses this file)\n",
                res->bad_offset);
        break;
    }
    return 0;
}

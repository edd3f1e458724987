/*
 * wal_format.c — WAL segment and record layout (wal_format.h).
 *
 * All integers are little-endian, encoded byte by byte (no struct is ever
 * written as is).
 *
 * Segment header, 32 bytes:
 *
 *   offset  size  field
 *   0       8     magic "VECTDWAL"
 *   8       4     format version (1)
 *   12      4     header length (32)
 *   16      8     salt: random per segment, mixed into every record checksum
 *   24      4     CRC-32C of bytes 0..23
 *   28      4     zero
 *
 * Record, 20-byte header then the body:
 *
 *   offset  size  field
 *   0       4     body length N (at most 64 MiB)
 *   4       4     CRC-32C of (salt as 8 bytes, then bytes 8 .. 20+N of the record)
 *   8       8     LSN (strictly increasing within a segment)
 *   16      1     record type (1..7: the write path's changes, src/write/mutation.c;
 *                 255: skip, below)
 *   17      3     zero
 *   20      N     body
 *
 * Skip record (type 255, VD_WAL_TYPE_SKIP): body u64 first skipped LSN F;
 * the record's own LSN L is the last. LSNs F..L were handed out to a group
 * whose write failed (ENOSPC) and whose writers were told so; the writer
 * puts this record before the next group it writes, so that the log's LSNs
 * stay continuous and recovery can tell a lost segment from a failed write.
 * A segment that starts with one is named by F.
 *
 * A scan stops at the first record that is incomplete or fails its checks.
 * If any valid record starts at a later offset, the damage is in the middle:
 * corruption, which recovery refuses to pass silently. Otherwise it is a torn
 * tail from a crash during a write, which recovery truncates.
 */
#include "vectord/wal_format.h"

#include <string.h>

#include "vectord/crc32c.h"

static const uint8_t magic[8] = {'V', 'E', 'C', 'T', 'D', 'W', 'A', 'L'};

_Static_assert(VD_WAL_SEGMENT_HEADER_LEN == 32, "segment header layout");
_Static_assert(VD_WAL_RECORD_HEADER_LEN == 20, "record header layout");

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

void vd_wal_header_encode(uint8_t *out, uint64_t salt)
{
    memset(out, 0, VD_WAL_SEGMENT_HEADER_LEN);
    memcpy(out, magic, 8);
    put32(out + 8, VD_WAL_FORMAT_VERSION);
    put32(out + 12, VD_WAL_SEGMENT_HEADER_LEN);
    put64(out + 16, salt);
    put32(out + 24, vd_crc32c(0, out, 24));
}

int vd_wal_header_decode(const uint8_t *in, size_t len, uint64_t *salt, vd_errmsg *em)
{
    if (len < VD_WAL_SEGMENT_HEADER_LEN)
        return vd_fail(em, VD_E_INVALID_REQUEST, "segment is %zu bytes, shorter than its header",
                       len);
    if (memcmp(in, magic, 8) != 0)
        return vd_fail(em, VD_E_INVALID_REQUEST, "not a vectord WAL segment (bad magic)");
    if (get32(in + 24) != vd_crc32c(0, in, 24))
        return vd_fail(em, VD_E_INVALID_REQUEST, "segment header checksum mismatch");
    uint32_t version = get32(in + 8);
    if (version != VD_WAL_FORMAT_VERSION)
        return vd_fail(em, VD_E_INVALID_REQUEST,
                       "segment format version %u; this vectord reads version %d", version,
                       VD_WAL_FORMAT_VERSION);
    if (get32(in + 12) != VD_WAL_SEGMENT_HEADER_LEN)
        return vd_fail(em, VD_E_INVALID_REQUEST, "segment header length %u, expected %d",
                       get32(in + 12), VD_WAL_SEGMENT_HEADER_LEN);
    *salt = get64(in + 16);
    return 0;
}

static uint32_t record_crc(uint64_t salt, const uint8_t *rec, uint32_t len)
{
    uint8_t s[8];
    put64(s, salt);
    uint32_t crc = vd_crc32c(0, s, 8);
    return vd_crc32c(crc, rec + 8, VD_WAL_RECORD_HEADER_LEN - 8 + (size_t)len);
}

size_t vd_wal_record_encode(uint8_t *out, uint64_t salt, uint64_t lsn, uint8_t type,
                            const void *body, uint32_t len)
{
    put32(out, len);
    put64(out + 8, lsn);
    out[16] = type;
    out[17] = out[18] = out[19] = 0;
    if (len)
        memcpy(out + VD_WAL_RECORD_HEADER_LEN, body, len);
    put32(out + 4, record_crc(salt, out, len));
    return VD_WAL_RECORD_HEADER_LEN + (size_t)len;
}

size_t vd_wal_skip_encode(uint8_t *out, uint64_t first, uint64_t last)
{
    uint8_t body[VD_WAL_SKIP_BODY_LEN];
    put64(body, first);
    return vd_wal_record_encode(out, 0, last, VD_WAL_TYPE_SKIP, body, sizeof body);
}

bool vd_wal_skip_first(const vd_wal_record *r, uint64_t *first)
{
    if (r->type != VD_WAL_TYPE_SKIP || r->len != VD_WAL_SKIP_BODY_LEN)
        return false;
    *first = get64(r->body);
    return *first && *first <= r->lsn;
}

void vd_wal_records_seal(uint8_t *buf, size_t len, uint64_t salt)
{
    for (size_t off = 0; off + VD_WAL_RECORD_HEADER_LEN <= len;) {
        uint32_t n = get32(buf + off);
        put32(buf + off + 4, record_crc(salt, buf + off, n));
        off += VD_WAL_RECORD_HEADER_LEN + (size_t)n;
    }
}

/* Whether a valid record starts at off (checksum and reserved bytes). */
static int record_at(const uint8_t *seg, size_t len, size_t off, uint64_t salt, uint32_t *body_len)
{
    if (len - off < VD_WAL_RECORD_HEADER_LEN)
        return 0;
    const uint8_t *r = seg + off;
    uint32_t n = get32(r);
    if (n > VD_WAL_MAX_BODY || (size_t)n > len - off - VD_WAL_RECORD_HEADER_LEN)
        return 0;
    if (r[17] || r[18] || r[19] || get32(r + 4) != record_crc(salt, r, n))
        return 0;
    *body_len = n;
    return 1;
}

int vd_wal_scan(const uint8_t *seg, size_t len, vd_wal_record_cb cb, void *ctx,
                vd_wal_scan_result *res, vd_errmsg *em)
{
    uint64_t salt;
    *res = (vd_wal_scan_result){0};
    int rc = vd_wal_header_decode(seg, len, &salt, em);
    if (rc)
        return rc;
    size_t off = VD_WAL_SEGMENT_HEADER_LEN;
    uint32_t n;
    while (off < len && record_at(seg, len, off, salt, &n)) {
        vd_wal_record r = {.lsn = get64(seg + off + 8),
                           .type = seg[off + 16],
                           .body = seg + off + VD_WAL_RECORD_HEADER_LEN,
                           .len = n,
                           .offset = off};
        if (res->n_records && r.lsn <= res->last_lsn)
            break; /* out-of-order LSN: treated like a bad record */
        if (cb && (rc = cb(ctx, &r)) != 0)
            return rc;
        res->n_records++;
        res->last_lsn = r.lsn;
        off += VD_WAL_RECORD_HEADER_LEN + n;
    }
    res->valid_end = off;
    if (off == len) {
        res->status = VD_WAL_CLEAN;
        return 0;
    }
    res->bad_offset = off;
    res->status = VD_WAL_TORN;
    for (size_t later = off + 1; later < len; later++) {
        if (record_at(seg, len, later, salt, &n)) {
            res->status = VD_WAL_CORRUPT;
            break;
        }
    }
    return 0;
}

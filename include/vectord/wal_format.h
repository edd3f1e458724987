/*
 * wal_format.h — the byte layout of WAL segments and records, and the scanner
 * that recovery and the inspector use to read them back. The layout tables
 * are at the top of src/storage/wal_format.c. Writing (group commit on
 * io_uring) and replay come with the durability issue.
 */
#ifndef VECTORD_WAL_FORMAT_H
#define VECTORD_WAL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vectord/error.h"

#define VD_WAL_FORMAT_VERSION 1
#define VD_WAL_SEGMENT_HEADER_LEN 32
#define VD_WAL_RECORD_HEADER_LEN 20
#define VD_WAL_MAX_BODY (64u << 20) /* a record body is at most 64 MiB */
/* A record the WAL writes itself (types below it are the write path's):
 * LSNs that were handed out but never written, because their group's write
 * failed (ENOSPC) and nobody was told it was durable. Its LSN is the last
 * such LSN; its body is u64 LE, the first. So the log stays continuous. */
#define VD_WAL_TYPE_SKIP 255
#define VD_WAL_SKIP_BODY_LEN 8
#define VD_WAL_SKIP_RECORD_LEN (VD_WAL_RECORD_HEADER_LEN + VD_WAL_SKIP_BODY_LEN)

/* Writes the segment header for salt into out (VD_WAL_SEGMENT_HEADER_LEN bytes). */
void vd_wal_header_encode(uint8_t *out, uint64_t salt);
/* Checks magic, version and checksum; sets *salt. VD_E_INVALID_REQUEST with a
 * message on a bad header (em names what is wrong). */
int vd_wal_header_decode(const uint8_t *in, size_t len, uint64_t *salt, vd_errmsg *em);

/* Encodes one record into out (VD_WAL_RECORD_HEADER_LEN + len bytes); returns
 * the bytes written. The checksum covers the salt, so a record left over from
 * another segment never validates. */
size_t vd_wal_record_encode(uint8_t *out, uint64_t salt, uint64_t lsn, uint8_t type,
                            const void *body, uint32_t len);

/* Recomputes the checksums of a run of encoded records for salt: records are
 * queued before the writer knows which segment they land in. */
void vd_wal_records_seal(uint8_t *buf, size_t len, uint64_t salt);

typedef struct vd_wal_record {
    uint64_t lsn;
    uint8_t type;
    const uint8_t *body; /* borrowed from the scanned buffer */
    uint32_t len;
    uint64_t offset; /* of the record header within the segment */
} vd_wal_record;

typedef enum vd_wal_scan_status {
    VD_WAL_CLEAN = 0,   /* every byte belongs to a valid record */
    VD_WAL_TORN = 1,    /* the tail after valid_end is an incomplete or torn write */
    VD_WAL_CORRUPT = 2, /* a bad record at bad_offset is followed by valid ones */
} vd_wal_scan_status;

typedef struct vd_wal_scan_result {
    vd_wal_scan_status status;
    uint64_t valid_end;  /* offset just past the last valid record */
    uint64_t bad_offset; /* first invalid byte (TORN, CORRUPT) */
    uint64_t n_records;
    uint64_t last_lsn; /* 0 if none */
} vd_wal_scan_result;

typedef int (*vd_wal_record_cb)(void *ctx, const vd_wal_record *r);

/* Scans a whole segment image (header included). Valid records are passed to
 * cb in order until it returns nonzero (the scan then stops and returns that
 * value). LSNs must increase. Returns 0, cb's value, or VD_E_INVALID_REQUEST
 * for a bad segment header. */
int vd_wal_scan(const uint8_t *seg, size_t len, vd_wal_record_cb cb, void *ctx,
                vd_wal_scan_result *res, vd_errmsg *em);

/* Encodes the skip record for LSNs first..last into out (VD_WAL_SKIP_RECORD_LEN
 * bytes, unsealed like vd_wal_record_encode with salt 0); returns its length. */
size_t vd_wal_skip_encode(uint8_t *out, uint64_t first, uint64_t last);
/* The first LSN a skip record r gives up (its own LSN is the last); false if
 * r is not a well-formed skip record. */
bool vd_wal_skip_first(const vd_wal_record *r, uint64_t *first);

#endif

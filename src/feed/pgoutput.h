/*
 * pgoutput.h — the bytes of PostgreSQL's streaming replication protocol that
 * a logical feed reads and writes, decoded and encoded without a connection
 * (so they are unit-tested and fuzzed on their own):
 *
 *  - the CopyData messages of START_REPLICATION: XLogData ('w': the WAL
 *    range and one message of the output plugin) and the primary keepalive
 *    ('k'); the standby status update ('r') the client sends back;
 *  - the messages of PostgreSQL's built-in pgoutput plugin, protocol
 *    version 1: Begin, Commit, Relation, Insert, Update, Delete, Truncate
 *    (Type, Origin and Message are recognised and skipped);
 *  - LSNs in their text form ("16/B374D848").
 *
 * Integers are big-endian on the wire; strings are NUL-terminated. Every
 * decoder checks lengths and answers -1 on malformed input, never reading
 * outside the buffer. Decoded pointers borrow from the buffer.
 */
#ifndef VD_PGOUTPUT_H
#define VD_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A CopyData message of the replication stream. */
typedef struct vd_repl_msg {
    char kind;          /* 'w' XLogData, 'k' keepalive */
    uint64_t wal_start; /* 'w': where the data starts */
    uint64_t wal_end;   /* the server's end of WAL sent ('w' and 'k') */
    int64_t send_time;  /* microseconds since 2000-01-01 */
    bool reply_requested; /* 'k' */
    const uint8_t *data; /* 'w': the plugin's message */
    size_t len;
} vd_repl_msg;
int vd_repl_parse(const uint8_t *buf, size_t len, vd_repl_msg *out);

/* The standby status update (34 bytes): written, flushed and applied up to
 * lsn; now_us since 2000-01-01; reply asks the server for a keepalive. */
#define VD_REPL_STATUS_BYTES 34
void vd_repl_status(uint8_t out[VD_REPL_STATUS_BYTES], uint64_t lsn, int64_t now_us, bool reply);
/* Microseconds since 2000-01-01 00:00 UTC (PostgreSQL's epoch), from the clock. */
int64_t vd_repl_now_us(void);

typedef enum vd_pgo_kind {
    VD_PGO_BEGIN,
    VD_PGO_COMMIT,
    VD_PGO_RELATION,
    VD_PGO_INSERT,
    VD_PGO_UPDATE,
    VD_PGO_DELETE,
    VD_PGO_TRUNCATE,
    VD_PGO_SKIP, /* Type, Origin, Message: nothing a feed needs */
} vd_pgo_kind;

/* A tuple: n column values (TupleData), decoded one by one with vd_pgo_value. */
typedef struct vd_pgo_tuple {
    const uint8_t *p; /* after the column count */
    size_t len;
    uint16_t n;
} vd_pgo_tuple;

typedef struct vd_pgo_msg {
    vd_pgo_kind kind;
    uint64_t lsn;     /* Begin: the commit's LSN; Commit: the commit's LSN */
    uint64_t end_lsn; /* Commit: the end of the transaction's commit record */
    int64_t time;     /* Begin, Commit: commit time, µs since 2000-01-01 */
    uint32_t xid;     /* Begin */
    uint32_t relid;   /* Relation, Insert, Update, Delete */
    /* Relation */
    const char *nspname, *relname;
    uint16_t n_columns;
    const uint8_t *columns; /* n_columns × (u8 flags, name, u32 type, i32 typmod) */
    size_t columns_len;
    /* Insert and Update: the new row; Update (when the key changed or the
     * identity is FULL) and Delete: the old key or row (old.n = 0: none) */
    vd_pgo_tuple new_row, old_row;
    /* Truncate */
    uint32_t n_relids;
    const uint8_t *relids; /* n_relids × u32 */
} vd_pgo_msg;

int vd_pgo_parse(const uint8_t *buf, size_t len, vd_pgo_msg *out);

/* The index of column `name` in a Relation message, or -1. */
int vd_pgo_column_index(const vd_pgo_msg *rel, const char *name);
/* Truncate: relation i's id. */
uint32_t vd_pgo_truncated(const vd_pgo_msg *m, uint32_t i);

/* Column i of a tuple: 'n' null, 'u' unchanged TOASTed value (not sent),
 * 't' text (data, len; not NUL-terminated). -1 if the tuple is malformed or
 * has fewer columns. */
typedef struct vd_pgo_value {
    char kind;
    const char *data;
    uint32_t len;
} vd_pgo_value;
int vd_pgo_value_at(const vd_pgo_tuple *t, uint16_t i, vd_pgo_value *out);

/* "X/Y" (hex halves) ↔ LSN. parse: 0, or -1 if text is not an LSN. */
int vd_lsn_parse(const char *text, uint64_t *out);
void vd_lsn_format(uint64_t lsn, char out[24]);

#endif

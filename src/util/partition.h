/*
 * partition.h — which partition a tenant belongs to (docs/PARTITIONS.md).
 *
 * A tenant value's text (what Postgres' `value::text` prints: a string as
 * it is, an integer in decimal) is hashed with MD5; its first four bytes,
 * read big-endian, modulo the partition count, are the partition. A NULL
 * tenant is partition 0. MD5 is used because Postgres has it built in: the
 * feed filters rows with the same function in SQL (vd_partition_sql), so the
 * router (C) and every feed (SQL) always agree, with no extension installed.
 */
#ifndef VD_PARTITION_H
#define VD_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VD_PARTITIONS_MAX 4096

/* A feed's share of the table: partition `index` of `count` (count 0 = the
 * whole table, no partitioning). */
typedef struct vd_partition {
    uint32_t index, count;
} vd_partition;

/* Parses "i/N" (0 <= i < N <= VD_PARTITIONS_MAX) or "" (the whole table);
 * false on anything else. */
bool vd_partition_parse(const char *text, vd_partition *out);
/* The partition (0 … count-1) of a tenant value's text; count must be ≥ 1. */
uint32_t vd_partition_of(const char *text, size_t len, uint32_t count);
/* Writes the SQL expression computing a row's partition from the column
 * expression `column_sql` (e.g. t."userId") into out: the same function
 * as vd_partition_of. Returns the length written, or -1 if out is too small. */
int vd_partition_sql(char *out, size_t cap, const char *column_sql, uint32_t count);

#endif

/*
 * wal_inspect.h — reads a WAL segment file and reports on it in text: the
 * header, optionally every record, and the verdict (clean, torn tail,
 * corruption) with offsets. Used by the vectord-inspect tool.
 */
#ifndef VD_WAL_INSPECT_H
#define VD_WAL_INSPECT_H

#include <stdbool.h>
#include <stdio.h>

#include "vectord/vfs.h"
#include "vectord/wal_format.h"

/* Optional: a one-line description of a record's body for the listing. */
typedef void (*vd_wal_describe_fn)(const vd_wal_record *r, char *out, size_t cap);

/* Reports on the segment image img (read from path) to out: 0 with *res
 * filled, or an error (bad header) with em naming the file. With
 * list_records, one line per record (plus describe's text, if given). */
int vd_wal_inspect(const uint8_t *img, size_t len, const char *path, bool list_records,
                   vd_wal_describe_fn describe, FILE *out, vd_wal_scan_result *res, vd_errmsg *em);

#endif

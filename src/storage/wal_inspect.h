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

/* Returns 0 and fills *res, or an error (unreadable file, bad header) with
 * em naming the file. Writes its report to out; with list_records, one line
 * per record (plus describe's text, if given). */
int vd_wal_inspect(vd_vfs *vfs, const char *path, bool list_records, vd_wal_describe_fn describe,
                   FILE *out, vd_wal_scan_result *res, vd_errmsg *em);

#endif

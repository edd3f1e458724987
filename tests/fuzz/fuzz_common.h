/*
 * fuzz_common.h — what the libFuzzer targets in tests/fuzz/ share: quiet
 * logging, the server's limits, JSON parsed the way the HTTP layer parses a
 * body, and small collections to run validated requests against.
 *
 * Every target defines LLVMFuzzerTestOneInput. It is linked either with
 * libFuzzer (-fsanitize=fuzzer, the fuzz build) or with replay.c, which feeds
 * it the files of the seed corpus and of the regression folder (every build).
 * A target aborts (__builtin_trap via VD_FUZZ_CHECK) when a property it
 * checks fails, so libFuzzer reports it like a crash.
 */
#ifndef VD_FUZZ_COMMON_H
#define VD_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "server/json_scan.h"

#include "db/collection.h"
#include "db/database.h"
#include "server/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VD_FUZZ_CHECK(cond)                                                          \
    do {                                                                             \
        if (!(cond))                                                                 \
            vd_fuzz_fail(__FILE__, __LINE__, #cond);                                 \
    } while (0)
_Noreturn void vd_fuzz_fail(const char *file, int line, const char *what);

/* Once per process: logging off (bad inputs log warnings and errors). */
void vd_fuzz_init(void);

/* The limits vectord runs with by default (config.c). */
const vd_limits *vd_fuzz_limits(void);

/* data as a request body: NUL-terminated copy, scanned, parsed and checked
 * as http.c does (strings checked, vectors lifted into vd_fuzz_vectors(),
 * the whole body one JSON value, no key twice in an object). NULL if http.c
 * would refuse it as malformed_json. */
cJSON *vd_fuzz_json(const uint8_t *data, size_t size);
/* The vectors the last vd_fuzz_json lifted out of its text. */
const vd_json_vectors *vd_fuzz_vectors(void);

/* The dimension of vd_fuzz_collection's collections. */
#define VD_FUZZ_DIM 4

/* A small collection of VD_FUZZ_DIM dims, 2 shards, payload indexes on "tag"
 * (keyword) and "n" (numeric), holding 24 points with payloads; `shape`
 * picks the metric, index type and quantization, so one input byte lets the
 * fuzzer reach every combination. NULL only when out of memory. */
vd_collection *vd_fuzz_collection(uint8_t shape);

/* Uses what recovery built: two searches (exact and not) on every
 * collection of db, and every point read back with its vector. */
void vd_fuzz_use_database(vd_database *db);

/* Splits data at the first occurrence of sep (sep_len bytes): the part before
 * is [*a, *a + *a_len), the rest after it; without sep, everything is a. */
void vd_fuzz_split(const uint8_t *data, size_t size, const char *sep, size_t sep_len,
                   const uint8_t **a, size_t *a_len, const uint8_t **b, size_t *b_len);

/* A fresh empty directory for this process, under $TMPDIR (or /tmp),
 * removed at exit; files written there are overwritten by the next input. */
const char *vd_fuzz_tmpdir(void);
/* Removes every entry of dir (one level and subfolders, recursively). */
void vd_fuzz_clear_dir(const char *dir);

#endif

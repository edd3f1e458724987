/*
 * fuzz_snapshot.c — the snapshot reader as recovery uses it: snapshot files
 * in a fresh snapshot folder, loaded by vd_snapshots_load into an empty
 * database (container checks, the collection's settings, each shard's
 * points, vectors, codes and index image, the feeds' positions); then every
 * loaded collection answers searches and lists its points, so an index
 * image that loads must also be safe to walk.
 *
 * Byte 0: bit 0 raw or framed, bit 1 accept_data_loss. The rest is cut at
 * each "--8<--" into up to four parts: collection.snap, shard-0.snap,
 * shard-1.snap and feeds.snap (an empty part: no such file). Raw: each part
 * is the file as it is. Framed: each part is a body, written inside a valid
 * container (header, length, CRC32C), so the fuzzer works on the bodies.
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "write/snapshot_load.h"
#include "db/database.h"
#include "fuzz_common.h"
#include "util/strbuf.h"
#include "vectord/snapshot.h"

#define SEP "--8<--"
#define COLL_DIR "c0000000000000001" /* a collection directory, incarnation 1 */

static void write_part(const char *dir, const char *name, vd_snapshot_kind kind, bool raw,
                       const uint8_t *p, size_t n)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (raw) {
        FILE *f = fopen(path, "wb");
        VD_FUZZ_CHECK(f && fwrite(p, 1, n, f) == n && fclose(f) == 0);
        return;
    }
    vd_strbuf img = {0};
    vd_snapshot_begin(&img, kind, kind == VD_SNAP_COLLECTION ? 1 : 7);
    vd_strbuf_append(&img, p, n);
    vd_errmsg em = {{0}};
    VD_FUZZ_CHECK(vd_snapshot_commit(&img, vd_vfs_posix(), dir, name, &em) == 0);
    vd_strbuf_free(&img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vd_fuzz_init();
    if (size < 1 || size > 8 << 20)
        return 0;
    bool raw = data[0] & 1, accept = data[0] & 2;
    char root[700], coll[800];
    snprintf(root, sizeof root, "%s/snap", vd_fuzz_tmpdir());
    snprintf(coll, sizeof coll, "%s/" COLL_DIR, root);
    vd_fuzz_clear_dir(root);
    mkdir(root, 0700);
    mkdir(coll, 0700);

    static const char *const names[] = {"collection.snap", "shard-0.snap", "shard-1.snap", "feeds.snap"};
    static const vd_snapshot_kind kinds[] = {VD_SNAP_COLLECTION, VD_SNAP_SHARD, VD_SNAP_SHARD, VD_SNAP_FEEDS};
    const uint8_t *rest = data + 1;
    size_t left = size - 1;
    for (int i = 0; i < 4 && rest; i++) {
        const uint8_t *part, *next;
        size_t plen, nlen;
        vd_fuzz_split(rest, left, SEP, strlen(SEP), &part, &plen, &next, &nlen);
        if (plen > 0)
            write_part(i == 3 ? root : coll, names[i], kinds[i], raw, part, plen);
        rest = next;
        left = nlen;
    }

    vd_database *db;
    VD_FUZZ_CHECK(vd_database_create(&db, NULL, 64) == 0);
    VD_FUZZ_CHECK(vd_database_set_vectors_dir(db, vd_fuzz_tmpdir()) == 0);
    vd_snapshots_loaded loaded;
    vd_errmsg em = {{0}};
    if (vd_snapshots_load(db, vd_vfs_posix(), root, 0, accept, &loaded, &em) == 0)
        vd_fuzz_use_database(db);
    vd_database_destroy(db);
    return 0;
}

/* manifest.c — see manifest.h. */
#include "write/manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"
#include "util/strbuf.h"
#include "vectord/snapshot.h"
#include "write/datadir.h"

typedef struct file_list {
    vd_manifest_file *v;
    size_t n, cap;
} file_list;

/* Adds snap_root/rel when it is on disk (absent and required: fails). */
static int add_file(file_list *l, vd_vfs *vfs, const char *snap_root, const char *rel,
                    bool required, vd_errmsg *em)
{
    char path[1300];
    vd_datadir_path(path, sizeof path, snap_root, rel);
    vd_snapshot_summary s;
    vd_errmsg why = {{0}};
    int rc = vd_snapshot_summarize(vfs, path, &s, &why);
    if (rc == -ENOENT && !required)
        return 0;
    if (rc)
        return vd_fail(em, rc == -ENOENT ? VD_E_INTERNAL : rc,
                       "cannot list %s in the manifest: %s", path,
                       rc == -ENOENT ? "it is missing (written by an earlier checkpoint, "
                                       "removed since)"
                                     : why.text);
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        vd_manifest_file *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return vd_fail(em, -ENOMEM, "out of memory");
        l->v = nv;
        l->cap = cap;
    }
    vd_manifest_file *f = &l->v[l->n++];
    *f = (vd_manifest_file){.size = s.size, .lsn = s.lsn, .crc = s.crc};
    snprintf(f->path, sizeof f->path, "%s", rel);
    return 0;
}

int vd_manifest_write(vd_vfs *vfs, const char *snap_root, const vd_manifest_collection *colls,
                      size_t n_colls, uint64_t covered_lsn, uint64_t wal_end, vd_errmsg *em)
{
    file_list l = {0};
    bool *listed = calloc(n_colls ? n_colls : 1, sizeof *listed);
    int rc = listed ? add_file(&l, vfs, snap_root, VD_DATADIR_FEEDS_FILE, false, em)
                    : vd_fail(em, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n_colls && !rc; i++) {
        char dir[64], rel[VD_MANIFEST_PATH_MAX], file[32];
        vd_datadir_collection(dir, sizeof dir, "", colls[i].incarnation);
        const char *d = dir + 1; /* "/c…" without its leading slash */
        snprintf(rel, sizeof rel, "%s/" VD_DATADIR_COLLECTION_FILE, d);
        size_t before = l.n;
        if ((rc = add_file(&l, vfs, snap_root, rel, false, em)) || l.n == before)
            continue; /* no snapshot of it yet: its WAL is all kept */
        listed[i] = true;
        for (uint32_t s = 0; s < colls[i].n_shards && !rc; s++) {
            vd_datadir_shard_file(file, sizeof file, s);
            snprintf(rel, sizeof rel, "%s/%s", d, file);
            rc = add_file(&l, vfs, snap_root, rel, true, em);
        }
    }
    vd_strbuf img;
    vd_strbuf_init(&img, 0);
    if (!rc) {
        vd_snapshot_begin(&img, VD_SNAP_MANIFEST, covered_lsn);
        vd_put_u64(&img, covered_lsn);
        vd_put_u64(&img, wal_end);
        uint32_t n = 0;
        for (size_t i = 0; i < n_colls; i++)
            n += listed[i];
        vd_put_u32(&img, n);
        for (size_t i = 0; i < n_colls; i++) {
            if (!listed[i])
                continue;
            vd_put_u64(&img, colls[i].incarnation);
            vd_put_u32(&img, colls[i].n_shards);
            size_t len = strlen(colls[i].name);
            vd_put_u16(&img, (uint16_t)len);
            vd_put_bytes(&img, colls[i].name, len);
        }
        vd_put_u32(&img, (uint32_t)l.n);
        for (size_t i = 0; i < l.n; i++) {
            size_t len = strlen(l.v[i].path);
            vd_put_u16(&img, (uint16_t)len);
            vd_put_bytes(&img, l.v[i].path, len);
            vd_put_u64(&img, l.v[i].size);
            vd_put_u32(&img, l.v[i].crc);
            vd_put_u64(&img, l.v[i].lsn);
        }
        rc = vd_snapshot_commit(&img, vfs, snap_root, VD_DATADIR_MANIFEST_FILE, em);
    }
    vd_strbuf_free(&img);
    free(l.v);
    free(listed);
    return rc;
}

int vd_manifest_parse(const uint8_t *body, size_t len, vd_manifest *m)
{
    *m = (vd_manifest){0};
    vd_reader r = vd_reader_of(body, len);
    m->covered_lsn = vd_get_u64(&r);
    m->wal_end = vd_get_u64(&r);
    uint32_t n = vd_get_u32(&r);
    if (r.bad || n > vd_reader_left(&r) / 14)
        return -1;
    m->colls = calloc(n ? n : 1, sizeof *m->colls);
    if (!m->colls)
        return -ENOMEM;
    m->n_colls = n;
    for (uint32_t i = 0; i < n; i++) {
        vd_manifest_collection *c = &m->colls[i];
        c->incarnation = vd_get_u64(&r);
        c->n_shards = vd_get_u32(&r);
        uint16_t nl = vd_get_u16(&r);
        if (nl > VD_NAME_MAX_LEN)
            return -1;
        vd_get_copy(&r, c->name, nl);
    }
    n = vd_get_u32(&r);
    if (r.bad || n > vd_reader_left(&r) / 22)
        return -1;
    m->files = calloc(n ? n : 1, sizeof *m->files);
    if (!m->files)
        return -ENOMEM;
    m->n_files = n;
    for (uint32_t i = 0; i < n; i++) {
        vd_manifest_file *f = &m->files[i];
        uint16_t pl = vd_get_u16(&r);
        if (pl >= VD_MANIFEST_PATH_MAX)
            return -1;
        vd_get_copy(&r, f->path, pl);
        f->size = vd_get_u64(&r);
        f->crc = vd_get_u32(&r);
        f->lsn = vd_get_u64(&r);
    }
    return r.bad || vd_reader_left(&r) ? -1 : 0;
}

int vd_manifest_read(vd_vfs *vfs, const char *snap_root, vd_manifest *m, vd_errmsg *em)
{
    *m = (vd_manifest){0};
    char path[1200];
    vd_datadir_path(path, sizeof path, snap_root, VD_DATADIR_MANIFEST_FILE);
    uint8_t *img;
    size_t len;
    int rc = vd_vfs_read_file(vfs, path, &img, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return vd_fail(em, rc, "cannot read %s: %s", path, strerror(-rc));
    vd_snapshot_view v;
    vd_errmsg why = {{0}};
    if ((rc = vd_snapshot_open(img, len, &v, &why)) == 0 && v.kind != VD_SNAP_MANIFEST)
        rc = vd_fail(&why, VD_E_INVALID_REQUEST, "kind %u at offset 12, expected %u", v.kind,
                     VD_SNAP_MANIFEST);
    if (!rc && (rc = vd_manifest_parse(v.body, v.body_len, m)) == -1)
        snprintf(why.text, sizeof why.text, "its list is malformed");
    free(img);
    if (rc == -ENOMEM) {
        vd_manifest_free(m);
        return vd_fail(em, rc, "out of memory");
    }
    if (rc) {
        vd_manifest_free(m);
        return vd_fail(em, VD_E_INVALID_REQUEST, "the checkpoint manifest %s is unreadable: %s",
                       path, why.text);
    }
    m->present = true;
    return 0;
}

void vd_manifest_free(vd_manifest *m)
{
    free(m->colls);
    free(m->files);
    *m = (vd_manifest){0};
}

vd_manifest_file *vd_manifest_file_of(vd_manifest *m, const char *rel)
{
    for (size_t i = 0; i < m->n_files; i++)
        if (strcmp(m->files[i].path, rel) == 0)
            return &m->files[i];
    return NULL;
}

vd_manifest_collection *vd_manifest_collection_of(vd_manifest *m, uint64_t incarnation)
{
    for (size_t i = 0; i < m->n_colls; i++)
        if (m->colls[i].incarnation == incarnation)
            return &m->colls[i];
    return NULL;
}

int vd_manifest_check(vd_manifest *m, const char *rel, uint64_t size, uint32_t crc, uint64_t lsn,
                      vd_errmsg *em)
{
    vd_manifest_file *f = vd_manifest_file_of(m, rel);
    if (!f)
        return 0;
    f->seen = true;
    if ((f->size == size && f->crc == crc) || lsn >= f->lsn)
        return 0; /* the same, or written since by a checkpoint cut short */
    return vd_fail(em, VD_E_INVALID_REQUEST,
                   "snapshot file %s is not the one the checkpoint manifest lists (%" PRIu64
                   " bytes, CRC %08x, LSN %" PRIu64 " on disk; listed %" PRIu64
                   " bytes, CRC %08x, LSN %" PRIu64 "): an older copy",
                   rel, size, crc, lsn, f->size, f->crc, f->lsn);
}

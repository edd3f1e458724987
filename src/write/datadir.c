/* datadir.c — see datadir.h. */
#include "write/datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int vd_datadir_lock(const char *dir, vd_errmsg *em)
{
    char path[1100];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0750) != 0 && errno != EEXIST)
            return vd_fail(em, -errno, "cannot create data_dir '%s': %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0750) != 0 && errno != EEXIST)
        return vd_fail(em, -errno, "cannot create data_dir '%s': %s", path, strerror(errno));
    vd_datadir_path(path, sizeof path, dir, VD_DATADIR_LOCK);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return vd_fail(em, -errno, "cannot open '%s': %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return vd_fail(em, -e, "data_dir '%s' is locked by another vectord (%s)", dir,
                       strerror(e));
    }
    return fd;
}

void vd_datadir_path(char *out, size_t cap, const char *dir, const char *part)
{
    snprintf(out, cap, "%s/%s", dir, part);
}

void vd_datadir_collection(char *out, size_t cap, const char *snap_root, uint64_t incarnation)
{
    snprintf(out, cap, "%s/c%016" PRIx64, snap_root, incarnation);
}

void vd_datadir_shard_file(char *out, size_t cap, uint32_t shard)
{
    snprintf(out, cap, "shard-%u.snap", shard);
}

bool vd_datadir_parse_collection(const char *name, uint64_t *incarnation)
{
    char *end;
    if (name[0] != 'c' || strlen(name) != 17)
        return false;
    *incarnation = strtoull(name + 1, &end, 16);
    return *end == 0;
}

/*
 * inspect_main.c — vectord-inspect: verifies (and with -v lists) WAL segment
 * files, like redis-check-aof.
 *
 *   vectord-inspect [-v] wal-0000000000000001.log ...
 *
 * Exit status: 0 all clean, 1 a torn tail somewhere, 2 corruption or an
 * unreadable/invalid file, 64 usage.
 */
#include <stdio.h>
#include <string.h>

#include "storage/wal_inspect.h"
#include "vectord/crc32c.h"

int main(int argc, char **argv)
{
    bool list = false;
    int first = 1, status = 0;
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        list = true;
        first = 2;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: vectord-inspect [-v] WAL_SEGMENT...\n");
        return 64;
    }
    vd_crc32c_init(true);
    for (int i = first; i < argc; i++) {
        vd_wal_scan_result res;
        vd_errmsg em = {{0}};
        if (vd_wal_inspect(vd_vfs_posix(), argv[i], list, stdout, &res, &em) != 0) {
            printf("verdict: INVALID: %s\n", em.text);
            status = 2;
            continue;
        }
        if (res.status == VD_WAL_CORRUPT)
            status = 2;
        else if (res.status == VD_WAL_TORN && status < 1)
            status = 1;
    }
    return status;
}

/* The storage I/O interface: the POSIX implementation, and each injected fault. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vectord/vfs.h"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/vectord-vfs-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", dir, name); }

static size_t file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return (size_t)n;
}

Test(vfs, posix_round_trip)
{
    make_dir();
    vd_vfs *v = vd_vfs_posix();
    char a[128], b[128];
    path_of(a, sizeof a, "a");
    path_of(b, sizeof b, "b");
    int fd;
    size_t n;
    cr_assert_eq(v->ops->open(v, a, O_RDWR | O_CREAT, 0600, &fd), 0);
    cr_assert_eq(v->ops->pwrite(v, fd, "hello world", 11, 0, &n), 0);
    cr_assert_eq(n, 11);
    cr_assert_eq(v->ops->fdatasync(v, fd), 0);
    char buf[32] = {0};
    cr_assert_eq(v->ops->pread(v, fd, buf, sizeof buf, 6, &n), 0);
    cr_assert_eq(n, 5, "short only at end of file");
    cr_assert_str_eq(buf, "world");
    cr_assert_eq(v->ops->ftruncate(v, fd, 5), 0);
    cr_assert_eq(v->ops->close(v, fd), 0);
    cr_assert_eq(v->ops->rename(v, a, b), 0);
    cr_assert_eq(v->ops->sync_dir(v, dir), 0);
    cr_assert_eq(file_size(b), 5);
    cr_assert_eq(v->ops->open(v, a, O_RDONLY, 0, &fd), -ENOENT);
    cr_assert_eq(v->ops->unlink(v, b), 0);
    rmdir(dir);
}

Test(vfs, error_at_the_nth_operation_only)
{
    make_dir();
    char a[128];
    path_of(a, sizeof a, "a");
    vd_vfs_faulty *f;
    cr_assert_eq(vd_vfs_faulty_create(&f, vd_vfs_posix(), VD_FAULT_ERROR, 3, ENOSPC, 0), 0);
    vd_vfs *v = vd_vfs_faulty_vfs(f);
    int fd;
    size_t n;
    cr_assert_eq(v->ops->open(v, a, O_RDWR | O_CREAT, 0600, &fd), 0);       /* op 1 */
    cr_assert_eq(v->ops->pwrite(v, fd, "abcd", 4, 0, &n), 0);               /* op 2 */
    cr_assert_eq(v->ops->pwrite(v, fd, "efgh", 4, 4, &n), -ENOSPC);         /* op 3 */
    cr_assert_eq(n, 0);
    cr_assert_eq(v->ops->pwrite(v, fd, "efgh", 4, 4, &n), 0, "later operations succeed");
    cr_assert_eq(vd_vfs_faulty_ops(f), 4);
    cr_assert_eq(v->ops->close(v, fd), 0);
    cr_assert_eq(file_size(a), 8);
    vd_vfs_faulty_destroy(f);
    unlink(a);
    rmdir(dir);
}

Test(vfs, short_write)
{
    make_dir();
    char a[128];
    path_of(a, sizeof a, "a");
    vd_vfs_faulty *f;
    cr_assert_eq(vd_vfs_faulty_create(&f, vd_vfs_posix(), VD_FAULT_SHORT_WRITE, 2, EIO, 0), 0);
    vd_vfs *v = vd_vfs_faulty_vfs(f);
    int fd;
    size_t n;
    cr_assert_eq(v->ops->open(v, a, O_RDWR | O_CREAT, 0600, &fd), 0);
    cr_assert_eq(v->ops->pwrite(v, fd, "0123456789", 10, 0, &n), -EIO);
    cr_assert_eq(n, 5, "half the bytes reached the file");
    cr_assert_eq(file_size(a), 5);
    cr_assert_eq(v->ops->close(v, fd), 0);
    vd_vfs_faulty_destroy(f);
    unlink(a);
    rmdir(dir);
}

Test(vfs, crash_keeps_synced_bytes_and_a_torn_tail)
{
    make_dir();
    char a[128];
    path_of(a, sizeof a, "a");
    vd_vfs_faulty *f;
    /* ops: open 1, write 2, sync 3, write 4, crash at 5 */
    cr_assert_eq(vd_vfs_faulty_create(&f, vd_vfs_posix(), VD_FAULT_CRASH, 5, 0, 3), 0);
    vd_vfs *v = vd_vfs_faulty_vfs(f);
    int fd;
    size_t n;
    cr_assert_eq(v->ops->open(v, a, O_RDWR | O_CREAT, 0600, &fd), 0);
    cr_assert_eq(v->ops->pwrite(v, fd, "durable.", 8, 0, &n), 0);
    cr_assert_eq(v->ops->fdatasync(v, fd), 0);
    cr_assert_eq(v->ops->pwrite(v, fd, "volatile", 8, 8, &n), 0);
    cr_assert_not(vd_vfs_faulty_has_crashed(f));
    cr_assert_eq(v->ops->fdatasync(v, fd), -EIO, "the crash hits this sync");
    cr_assert(vd_vfs_faulty_has_crashed(f));
    cr_assert_eq(v->ops->pwrite(v, fd, "x", 1, 0, &n), -EIO, "nothing works after a crash");
    cr_assert_eq(v->ops->close(v, fd), -EIO);
    cr_assert_eq(file_size(a), 8 + 3, "synced bytes plus a torn tail of 3");
    FILE *fp = fopen(a, "rb");
    char buf[16] = {0};
    cr_assert_eq(fread(buf, 1, sizeof buf, fp), 11);
    fclose(fp);
    cr_assert_eq(memcmp(buf, "durable.vol", 11), 0);
    vd_vfs_faulty_destroy(f);
    unlink(a);
    rmdir(dir);
}

/* Every operation of both implementations reports the system's errors. */
static void errors_of(vd_vfs *v)
{
    make_dir();
    char a[128], missing[128];
    path_of(a, sizeof a, "a");
    path_of(missing, sizeof missing, "no/such/dir");
    int ro, wo;
    size_t n = 99;
    cr_assert_eq(v->ops->open(v, a, O_WRONLY | O_CREAT, 0600, &wo), 0);
    cr_assert_eq(v->ops->open(v, a, O_RDONLY, 0, &ro), 0);
    cr_assert_eq(v->ops->pwrite(v, ro, "x", 1, 0, &n), -EBADF);
    cr_assert_eq(n, 0);
    char buf[8];
    cr_assert_eq(v->ops->pread(v, wo, buf, sizeof buf, 0, &n), -EBADF);
    cr_assert_eq(n, 0);
    cr_assert_eq(v->ops->ftruncate(v, ro, 0), -EINVAL);
    if (v->ops->write_sync)
        cr_assert_eq(v->ops->write_sync(v, ro, "x", 1, 0, &n), -EBADF);
    cr_assert_eq(v->ops->sync_dir(v, missing), -ENOENT);
    cr_assert_eq(v->ops->rename(v, missing, a), -ENOENT);
    cr_assert_eq(v->ops->unlink(v, missing), -ENOENT);
    cr_assert_eq(v->ops->open(v, missing, O_RDWR | O_CREAT, 0600, &ro), -ENOENT);
    uint8_t *data;
    cr_assert_eq(vd_vfs_read_file(v, missing, &data, &n), -ENOENT);
    cr_assert_null(data);
    v->ops->close(v, wo);
    unlink(a);
    rmdir(dir);
}

Test(vfs, posix_reports_system_errors) { errors_of(vd_vfs_posix()); }

Test(vfs, io_uring_reports_system_errors)
{
    vd_vfs *u;
    if (vd_vfs_uring_create(&u) != 0) {
        cr_skip_test("io_uring is not available here: skipped");
        return;
    }
    errors_of(u);
    vd_vfs_uring_destroy(u);
}

/* Files larger than the first read buffer grow it; the bytes come back whole. */
Test(vfs, read_file_grows_its_buffer)
{
    make_dir();
    char a[128];
    path_of(a, sizeof a, "big");
    FILE *f = fopen(a, "wb");
    for (int i = 0; i < 300000; i++)
        fputc(i * 7, f);
    fclose(f);
    uint8_t *data;
    size_t n;
    cr_assert_eq(vd_vfs_read_file(vd_vfs_posix(), a, &data, &n), 0);
    cr_assert_eq(n, 300000);
    for (int i = 0; i < 300000; i++)
        cr_assert_eq(data[i], (uint8_t)(i * 7));
    free(data);
    unlink(a);
    rmdir(dir);
}

/* Reads and truncations pass through the fault layer and count as operations. */
Test(vfs, faulty_reads_and_truncates)
{
    make_dir();
    vd_vfs_faulty *ff;
    cr_assert_eq(vd_vfs_faulty_create(&ff, vd_vfs_posix(), VD_FAULT_ERROR, 3, ENOSPC, 0), 0);
    vd_vfs *v = vd_vfs_faulty_vfs(ff);
    char a[128];
    path_of(a, sizeof a, "a");
    int fd;
    size_t n;
    cr_assert_eq(v->ops->open(v, a, O_RDWR | O_CREAT, 0600, &fd), 0);      /* op 1 */
    cr_assert_eq(v->ops->pwrite(v, fd, "abcdef", 6, 0, &n), 0);             /* op 2 */
    char buf[8];
    cr_assert_eq(v->ops->pread(v, fd, buf, sizeof buf, 0, &n), -ENOSPC);    /* op 3 fails */
    cr_assert_eq(v->ops->pread(v, fd, buf, sizeof buf, 0, &n), 0);
    cr_assert_eq(n, 6);
    cr_assert_eq(v->ops->ftruncate(v, fd, 2), 0);
    cr_assert_eq(v->ops->fdatasync(v, fd), 0);
    cr_assert_eq(v->ops->close(v, fd), 0);
    cr_assert_eq(file_size(a), 2);
    cr_assert_geq(vd_vfs_faulty_ops(ff), 7);
    vd_vfs_faulty_destroy(ff);
    unlink(a);
    rmdir(dir);
}

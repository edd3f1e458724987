/*
 * vfs.h — the file I/O interface of the storage layer (WAL, snapshots).
 *
 * Every durable write goes through a vd_vfs so that tests can replace it:
 * vd_vfs_posix() is the real one; vd_vfs_faulty wraps another and injects, at
 * its N-th operation, an error (EIO, ENOSPC, …), a short write, or a crash.
 * After a crash every operation fails with -EIO, and each file written
 * through the wrapper is cut back to its last fdatasync'ed length plus, for
 * a torn write, part of what followed (SQLite's test VFS works the same way).
 * Renames are taken as durable once made (the wrapper does not model a lost
 * rename). Calls return 0 or -errno.
 */
#ifndef VECTORD_VFS_H
#define VECTORD_VFS_H

#include <stddef.h>
#include <stdint.h>

typedef struct vd_vfs vd_vfs;

typedef struct vd_vfs_ops {
    int (*open)(vd_vfs *vfs, const char *path, int flags, int mode, int *fd);
    /* Writes len bytes at off; *written tells how many did before an error. */
    int (*pwrite)(vd_vfs *vfs, int fd, const void *buf, size_t len, uint64_t off, size_t *written);
    /* Reads up to len bytes at off; *got is short only at end of file. */
    int (*pread)(vd_vfs *vfs, int fd, void *buf, size_t len, uint64_t off, size_t *got);
    int (*fdatasync)(vd_vfs *vfs, int fd);
    int (*ftruncate)(vd_vfs *vfs, int fd, uint64_t len);
    int (*close)(vd_vfs *vfs, int fd);
    int (*rename)(vd_vfs *vfs, const char *from, const char *to);
    int (*unlink)(vd_vfs *vfs, const char *path);
    /* fsync of a directory, after a rename or a new file in it. */
    int (*sync_dir)(vd_vfs *vfs, const char *dir);
    /* Optional (NULL = pwrite, then fdatasync): both at once. */
    int (*write_sync)(vd_vfs *vfs, int fd, const void *buf, size_t len, uint64_t off,
                      size_t *written);
} vd_vfs_ops;

struct vd_vfs {
    const vd_vfs_ops *ops;
};

/* The real file system (a static instance; never destroyed). */
vd_vfs *vd_vfs_posix(void);

/* The real file system with writes and fdatasyncs on io_uring (vfs_uring.c).
 * -errno when io_uring cannot be used here (old kernel, seccomp); the caller
 * then falls back to vd_vfs_posix(). */
int vd_vfs_uring_create(vd_vfs **out);
void vd_vfs_uring_destroy(vd_vfs *v);

/* Reads a whole file into *data (malloc'd). 0 or -errno. */
int vd_vfs_read_file(vd_vfs *vfs, const char *path, uint8_t **data, size_t *len);

typedef enum vd_fault_kind {
    VD_FAULT_NONE = 0,
    VD_FAULT_ERROR,       /* operation N fails with -error; later ones succeed */
    VD_FAULT_SHORT_WRITE, /* write N writes half its bytes, then fails with -error */
    VD_FAULT_CRASH,       /* from operation N on, everything fails (-EIO); files are cut back */
} vd_fault_kind;

typedef struct vd_vfs_faulty vd_vfs_faulty;

/* Wraps base (borrowed). at_op counts from 1 over every call of every kind. */
int vd_vfs_faulty_create(vd_vfs_faulty **out, vd_vfs *base, vd_fault_kind kind, uint64_t at_op,
                         int error, uint32_t torn_bytes);
void vd_vfs_faulty_destroy(vd_vfs_faulty *f);
vd_vfs *vd_vfs_faulty_vfs(vd_vfs_faulty *f);
/* Operations seen so far (to size a loop over every N). */
uint64_t vd_vfs_faulty_ops(const vd_vfs_faulty *f);
/* Whether the injected crash has happened (then the files written through
 * the wrapper have been cut back to their synced length plus torn_bytes). */
int vd_vfs_faulty_has_crashed(const vd_vfs_faulty *f);

#endif

/*
 * vfs.h: every file operation of a session, confined beneath the user's root by the kernel.
 *
 * The root is a directory descriptor; every path is resolved with openat2(2) and
 * RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, so "..", absolute paths and symlinks are
 * resolved as if the root were "/" and nothing can reach outside, whatever a bug above
 * this file does.  Operations on a last component (unlink, rename, mkdir) act through a
 * descriptor of the parent opened the same way.  Paths are normalised virtual paths
 * (path.h).  All functions return 0 / a descriptor, or -errno.
 *
 * A local system user's root is not a directory but a connection to that user's file
 * helper (fs_proxy.h): every function then has the helper make the operation, as the
 * user, beneath the same kind of root.
 */
#ifndef FERRY_SERVER_VFS_H
#define FERRY_SERVER_VFS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

/*
 * The quota tally (quota.h) in a root.  No client path reaches it: every function here
 * answers -ENOENT for it, by whatever directory path it is named (the last component's
 * parent is compared with the root by device and inode), and a file opened for writing, or
 * whose time is set, through a symlink that leads to it is refused with -EACCES.
 */
#define VFS_TALLY_NAME ".ftpquota"

/* Open a real directory as a root.  Returns an O_PATH descriptor or -errno. */
int vfs_open_root(const char *dir);

/* open(2) flags and mode, resolved in root.  The caller closes the descriptor. */
int vfs_open(int root, const char *vpath, int flags, mode_t mode);
/* stat following symlinks (resolved in root). */
int vfs_stat(int root, const char *vpath, struct stat *st);
/* stat not following a last symlink (resolved in root): what DELE and RNTO replace. */
int vfs_lstat(int root, const char *vpath, struct stat *st);
/* Open a directory for reading (listing) or as a working directory check. */
int vfs_opendir(int root, const char *vpath);
int vfs_mkdir(int root, const char *vpath, mode_t mode);
int vfs_rmdir(int root, const char *vpath);
int vfs_unlink(int root, const char *vpath);
/* Unlink, and say what went in *gone (lstat'ed just before; st_mode 0 on error). */
int vfs_unlink_stat(int root, const char *vpath, struct stat *gone);
/* Unlink vpath only if it still names the file dev/ino (a regular file).  -ESTALE if not. */
int vfs_unlink_same(int root, const char *vpath, dev_t dev, ino_t ino);
/* Rename; refuses to replace an existing directory with a file and vice versa (as rename(2)). */
int vfs_rename(int root, const char *from, const char *to);
/*
 * The same, and say in *replaced what the rename removed at to (lstat'ed just before;
 * st_mode 0 when nothing, or when from and to were the same file, which rename leaves).
 */
int vfs_rename_stat(int root, const char *from, const char *to, struct stat *replaced);
/* Set the modification time (MFMT), leaving the access time alone. */
int vfs_set_mtime(int root, const char *vpath, time_t mtime);

/*
 * Whether the directory open at dir is the root itself, under whatever name it was reached:
 * a symlink back to the root ("top -> /", "pub/up -> ..") opens the root again, so only
 * its device and inode tell.  Returns 1, 0, or -errno.
 */
int vfs_is_root(int root, int dir);

/* A file vfs_create made, remembered so that an upload that stores nothing can remove it. */
struct vfs_created {
	int dir;                /* O_PATH descriptor of the directory it was made in, or -1 */
	int remote;             /* made by a file helper (fs_proxy.h): its connection, or -1 */
	char *vpath;            /* ... and where, for vfs_uncreate */
	char name[NAME_MAX + 1];
	dev_t dev;
	ino_t ino;
};

/*
 * Create vpath as a new file (flags | O_CREAT | O_EXCL) and fill *made; the caller closes
 * the descriptor and calls vfs_created_close(made).  -EEXIST if the name exists (also the
 * root, and a symlink, dangling or not: O_EXCL never follows one); made->dir is -1 on error.
 */
int vfs_create(int root, const char *vpath, int flags, mode_t mode, struct vfs_created *made);
/*
 * Remove the file again if its name still holds it (same device and inode) and it is
 * still empty: whatever replaced or filled it meanwhile is someone else's and stays.
 * Returns 0, -ESTALE if the name no longer holds that empty file, or -errno.
 */
int vfs_uncreate(const struct vfs_created *made);
/* vfs_uncreate of the file vpath, if it is still the empty file dev/ino (a file helper's). */
int vfs_uncreate_path(int root, const char *vpath, dev_t dev, ino_t ino);
/*
 * A local user's listing of vpath (fs_proxy.h FS_LIST): a sealed memory file of struct
 * fs_list_rec records, and whether the directory is the root.  Remote roots only.
 */
int vfs_list(int root, const char *vpath, bool *is_root);
/* Close made->dir; safe to call on a failed vfs_create. */
void vfs_created_close(struct vfs_created *made);

#endif

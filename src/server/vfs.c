/*
 * vfs.c: the file-system boundary of the server.  Nothing else in src/server calls open,
 * stat, mkdir, unlink or rename on client-supplied names.
 */
#include "server/vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/path.h"
#include "server/fs_proxy.h"

static int sys_openat2(int dirfd, const char *path, int flags, mode_t mode)
{
	struct open_how how;
	memset(&how, 0, sizeof(how));
	/* openat2 rejects O_PATH combined with anything but O_DIRECTORY and O_NOFOLLOW. */
	how.flags = (uint64_t)(flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY));
	/* The kernel rejects a mode without O_CREAT or O_TMPFILE. */
	how.mode = (flags & (O_CREAT | __O_TMPFILE)) ? mode : 0;
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	for (;;) {
		long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		/* EAGAIN: a concurrent rename raced the lookup; the kernel asks us to retry. */
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	}
}

/* An operation made by the file helper at the other end of root (fs_proxy.h). */
static int remote(int root, enum fs_op op, const char *vpath, const char *vpath2, int flags,
		  mode_t mode, struct fs_reply *rep)
{
	struct fs_req *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	q->op = op;
	q->flags = flags;
	q->mode = mode;
	if (str_copy(q->path, sizeof(q->path), vpath) < 0 ||
	    (vpath2 != NULL && str_copy(q->path2, sizeof(q->path2), vpath2) < 0)) {
		free(q);
		return -ENAMETOOLONG;
	}
	struct fs_reply r;
	int fd;
	int rc = fs_proxy_call(root, q, rep != NULL ? rep : &r, &fd);
	free(q);
	return rc < 0 ? rc : fd >= 0 ? fd : 0;
}

int vfs_open_root(const char *dir)
{
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Whether name in the directory dir is the root's tally: -ENOENT if so, else 0. */
static int hide_in(int root, int dir, const char *name)
{
	if (strcmp(name, VFS_TALLY_NAME) != 0)
		return 0;
	return vfs_is_root(root, dir) == 1 ? -ENOENT : 0;
}

/* Open the parent of vpath and point *name at its last component (never the tally). */
static int open_parent(int root, const char *vpath, const char **name)
{
	char parent[VPATH_MAX];
	int rc = path_split(vpath, parent, sizeof(parent), name);
	if (rc < 0)
		return -EINVAL; /* the root itself has no parent: nothing to create or remove */
	int dir = sys_openat2(root, path_relative(parent), O_PATH | O_DIRECTORY, 0);
	if (dir >= 0 && (rc = hide_in(root, dir, *name)) < 0) {
		close(dir);
		return rc;
	}
	return dir;
}

/*
 * -ENOENT when vpath names the tally, else 0.  Only a path whose last component is the
 * tally's name costs a look at its parent (a symlinked directory may lead to the root).
 */
static int hide_path(int root, const char *vpath)
{
	if (strcmp(path_basename(vpath), VFS_TALLY_NAME) != 0)
		return 0;
	const char *name;
	int dir = open_parent(root, vpath, &name);
	if (dir == -ENOENT)
		return dir;
	if (dir >= 0)
		close(dir);
	return 0; /* a parent that does not open: the operation itself fails as it should */
}

/* -EACCES when fd is the root's tally, reached through a symlink; else 0. */
static int refuse_tally(int root, int fd)
{
	struct stat t, f;
	if (fstatat(root, VFS_TALLY_NAME, &t, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &f) < 0)
		return -errno;
	return t.st_dev == f.st_dev && t.st_ino == f.st_ino ? -EACCES : 0;
}

/* Open, hiding the tally; a descriptor that may change a file must not be the tally's. */
static int open_visible(int root, const char *vpath, int flags, mode_t mode, bool changes)
{
	int rc = hide_path(root, vpath);
	if (rc < 0)
		return rc;
	int fd = sys_openat2(root, path_relative(vpath), flags, mode);
	if (fd < 0 || !changes)
		return fd;
	if ((rc = refuse_tally(root, fd)) < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

int vfs_open(int root, const char *vpath, int flags, mode_t mode)
{
	if (fs_proxy_is_remote(root))
		return remote(root, FS_OPEN, vpath, NULL, flags, mode, NULL);
	return open_visible(root, vpath, flags, mode, (flags & O_ACCMODE) != O_RDONLY);
}

static int stat_path(int root, const char *vpath, int flags, struct stat *st)
{
	int fd = open_visible(root, vpath, O_PATH | flags, 0, false);
	if (fd < 0)
		return fd;
	int rc = fstat(fd, st) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

int vfs_stat(int root, const char *vpath, struct stat *st)
{
	if (fs_proxy_is_remote(root)) {
		struct fs_reply rep;
		int rc = remote(root, FS_STAT, vpath, NULL, 0, 0, &rep);
		if (rc == 0)
			*st = rep.st;
		return rc;
	}
	return stat_path(root, vpath, 0, st);
}

int vfs_lstat(int root, const char *vpath, struct stat *st)
{
	if (fs_proxy_is_remote(root))
		return -ENOTSUP;
	return stat_path(root, vpath, O_NOFOLLOW, st);
}

int vfs_opendir(int root, const char *vpath)
{
	if (fs_proxy_is_remote(root))
		return remote(root, FS_OPENDIR, vpath, NULL, 0, 0, NULL);
	return open_visible(root, vpath, O_RDONLY | O_DIRECTORY, 0, false);
}

int vfs_mkdir(int root, const char *vpath, mode_t mode)
{
	if (fs_proxy_is_remote(root))
		return remote(root, FS_MKDIR, vpath, NULL, 0, mode, NULL);
	const char *name;
	int dir = open_parent(root, vpath, &name);
	if (dir < 0)
		return dir;
	int rc = mkdirat(dir, name, mode) < 0 ? -errno : 0;
	close(dir);
	return rc;
}

/* Remove vpath's entry; *gone (may be NULL) gets what it was, st_mode 0 if unknown. */
static int remove_entry(int root, const char *vpath, int flags, struct stat *gone)
{
	const char *name;
	if (gone != NULL)
		gone->st_mode = 0;
	int dir = open_parent(root, vpath, &name);
	if (dir < 0)
		return dir;
	if (gone != NULL && fstatat(dir, name, gone, AT_SYMLINK_NOFOLLOW) < 0)
		gone->st_mode = 0;
	int rc = unlinkat(dir, name, flags) < 0 ? -errno : 0;
	if (rc < 0 && gone != NULL)
		gone->st_mode = 0;
	close(dir);
	return rc;
}

int vfs_rmdir(int root, const char *vpath)
{
	if (fs_proxy_is_remote(root))
		return remote(root, FS_RMDIR, vpath, NULL, 0, 0, NULL);
	return remove_entry(root, vpath, AT_REMOVEDIR, NULL);
}

int vfs_unlink(int root, const char *vpath)
{
	if (fs_proxy_is_remote(root))
		return remote(root, FS_UNLINK, vpath, NULL, 0, 0, NULL);
	return remove_entry(root, vpath, 0, NULL);
}

int vfs_unlink_stat(int root, const char *vpath, struct stat *gone)
{
	if (fs_proxy_is_remote(root)) {
		gone->st_mode = 0; /* local users keep no tally (quota.h) */
		return remote(root, FS_UNLINK, vpath, NULL, 0, 0, NULL);
	}
	return remove_entry(root, vpath, 0, gone);
}

int vfs_unlink_same(int root, const char *vpath, dev_t dev, ino_t ino)
{
	if (fs_proxy_is_remote(root))
		return -ENOTSUP;
	const char *name;
	int dir = open_parent(root, vpath, &name);
	if (dir < 0)
		return dir;
	struct stat st;
	int rc = fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	if (rc == 0 && (st.st_dev != dev || st.st_ino != ino || !S_ISREG(st.st_mode)))
		rc = -ESTALE;
	if (rc == 0 && unlinkat(dir, name, 0) < 0)
		rc = -errno;
	close(dir);
	return rc;
}

int vfs_rename_stat(int root, const char *from, const char *to, struct stat *replaced)
{
	if (fs_proxy_is_remote(root)) {
		replaced->st_mode = 0;
		return remote(root, FS_RENAME, from, to, 0, 0, NULL);
	}
	const char *from_name, *to_name;
	replaced->st_mode = 0;
	int from_dir = open_parent(root, from, &from_name);
	if (from_dir < 0)
		return from_dir;
	int to_dir = open_parent(root, to, &to_name);
	if (to_dir < 0) {
		close(from_dir);
		return to_dir;
	}
	struct stat src;
	if (fstatat(to_dir, to_name, replaced, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (fstatat(from_dir, from_name, &src, AT_SYMLINK_NOFOLLOW) == 0 &&
	     src.st_dev == replaced->st_dev && src.st_ino == replaced->st_ino))
		replaced->st_mode = 0; /* nothing there, or the same file: rename removes nothing */
	int rc = renameat(from_dir, from_name, to_dir, to_name) < 0 ? -errno : 0;
	if (rc < 0)
		replaced->st_mode = 0;
	close(from_dir);
	close(to_dir);
	return rc;
}

int vfs_rename(int root, const char *from, const char *to)
{
	struct stat replaced;
	return vfs_rename_stat(root, from, to, &replaced);
}

int vfs_set_mtime(int root, const char *vpath, time_t mtime)
{
	if (fs_proxy_is_remote(root)) {
		struct fs_req *q = calloc(1, sizeof(*q));
		if (q == NULL)
			return -ENOMEM;
		q->op = FS_SET_MTIME;
		q->mtime = mtime;
		int rc = str_copy(q->path, sizeof(q->path), vpath) < 0 ? -ENAMETOOLONG : 0;
		struct fs_reply rep;
		int fd;
		if (rc == 0)
			rc = fs_proxy_call(root, q, &rep, &fd);
		free(q);
		return rc;
	}
	int fd = open_visible(root, vpath, O_PATH, 0, true);
	if (fd < 0)
		return fd;
	struct timespec times[2] = {
		{ .tv_sec = 0, .tv_nsec = UTIME_OMIT },
		{ .tv_sec = mtime, .tv_nsec = 0 },
	};
	/* AT_EMPTY_PATH acts on the descriptor itself, which was resolved inside the root. */
	int rc = utimensat(fd, "", times, AT_EMPTY_PATH) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

int vfs_is_root(int root, int dir)
{
	if (fs_proxy_is_remote(root))
		return fs_proxy_is_root(root, dir);
	struct stat r, d;
	if (fstat(root, &r) < 0 || fstat(dir, &d) < 0)
		return -errno;
	return r.st_dev == d.st_dev && r.st_ino == d.st_ino;
}

int vfs_create(int root, const char *vpath, int flags, mode_t mode, struct vfs_created *made)
{
	made->dir = -1;
	made->remote = -1;
	made->vpath = NULL;
	if (fs_proxy_is_remote(root)) {
		struct fs_reply rep;
		int fd = remote(root, FS_CREATE, vpath, NULL, flags, mode, &rep);
		if (fd < 0)
			return fd;
		made->vpath = strdup(vpath);
		if (made->vpath == NULL) {
			/* Created and kept: without its path it cannot be removed again. */
			return fd;
		}
		made->remote = root;
		made->dev = rep.st.st_dev;
		made->ino = rep.st.st_ino;
		return fd;
	}
	const char *name;
	char parent[VPATH_MAX];
	if (path_split(vpath, parent, sizeof(parent), &name) < 0)
		return strcmp(vpath, "/") == 0 ? -EEXIST : -ENAMETOOLONG;
	if (str_copy(made->name, sizeof(made->name), name) < 0)
		return -ENAMETOOLONG;
	int dir = sys_openat2(root, path_relative(parent), O_PATH | O_DIRECTORY, 0);
	if (dir < 0)
		return dir;
	int rc = hide_in(root, dir, made->name);
	if (rc < 0) {
		close(dir);
		return rc;
	}
	/*
	 * One component beneath a directory already resolved in the root: the file is made
	 * exactly there, so vfs_uncreate finds it by this descriptor and name.  The name
	 * is never "." or ".." (path.h normalises them away) and O_EXCL follows no symlink.
	 */
	int fd = sys_openat2(dir, made->name, flags | O_CREAT | O_EXCL, mode);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		fd = -e; /* the new file stays: without its identity, removing it by name is unsafe */
	}
	if (fd < 0) {
		close(dir);
		return fd;
	}
	made->dir = dir;
	made->dev = st.st_dev;
	made->ino = st.st_ino;
	return fd;
}

int vfs_uncreate(const struct vfs_created *made)
{
	if (made->remote >= 0) {
		struct fs_req *q = calloc(1, sizeof(*q));
		if (q == NULL)
			return -ENOMEM;
		q->op = FS_UNCREATE;
		q->dev = made->dev;
		q->ino = made->ino;
		int rc = str_copy(q->path, sizeof(q->path), made->vpath) < 0 ? -ENAMETOOLONG : 0;
		struct fs_reply rep;
		int fd;
		if (rc == 0)
			rc = fs_proxy_call(made->remote, q, &rep, &fd);
		free(q);
		return rc;
	}
	struct stat st;
	if (made->dir < 0)
		return -EBADF;
	if (fstatat(made->dir, made->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	/*
	 * A rename in the two system calls between this check and the unlink could put
	 * another file under the name and see it removed; only a client allowed to rename
	 * could, and renaming onto a name already removes what it held.
	 */
	if (st.st_dev != made->dev || st.st_ino != made->ino || !S_ISREG(st.st_mode) ||
	    st.st_size != 0)
		return -ESTALE;
	return unlinkat(made->dir, made->name, 0) < 0 ? -errno : 0;
}

void vfs_created_close(struct vfs_created *made)
{
	if (made->dir >= 0)
		close(made->dir);
	made->dir = -1;
	free(made->vpath);
	made->vpath = NULL;
	made->remote = -1;
}

int vfs_uncreate_path(int root, const char *vpath, dev_t dev, ino_t ino)
{
	struct vfs_created made = { .dir = -1, .remote = -1, .dev = dev, .ino = ino };
	const char *name;
	made.dir = open_parent(root, vpath, &name);
	if (made.dir < 0)
		return made.dir;
	int rc = str_copy(made.name, sizeof(made.name), name) < 0 ? -ENAMETOOLONG
								   : vfs_uncreate(&made);
	close(made.dir);
	return rc;
}

int vfs_list(int root, const char *vpath, bool *is_root)
{
	if (!fs_proxy_is_remote(root))
		return -ENOTSUP;
	struct fs_reply rep;
	int fd = remote(root, FS_LIST, vpath, NULL, 0, 0, &rep);
	if (fd >= 0)
		*is_root = rep.is_root != 0;
	return fd;
}

/*
 * vfs.c: the file-system boundary of the server.  Nothing else in src/server calls open,
 * stat, mkdir, unlink or rename on client-supplied names.
 */
#include "server/vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

int vfs_open(int root, const char *vpath, int flags, mode_t mode)
{
	if (fs_proxy_is_remote(root))
		return remote(root, FS_OPEN, vpath, NULL, flags, mode, NULL);
	return sys_openat2(root, path_relative(vpath), flags, mode);
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
	int fd = sys_openat2(root, path_relative(vpath), O_PATH, 0);
	if (fd < 0)
		return fd;
	int rc = fstat(fd, st) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

int vfs_opendir(int root, const char *vpath)
{
	if (fs_proxy_is_remote(root))
		return remote(root, FS_OPENDIR, vpath, NULL, 0, 0, NULL);
	return sys_openat2(root, path_relative(vpath), O_RDONLY | O_DIRECTORY, 0);
}

/* Open the parent of vpath and point *name at its last component. */
static int open_parent(int root, const char *vpath, const char **name)
{
	char parent[VPATH_MAX];
	int rc = path_split(vpath, parent, sizeof(parent), name);
	if (rc < 0)
		return -EINVAL; /* the root itself has no parent: nothing to create or remove */
	return sys_openat2(root, path_relative(parent), O_PATH | O_DIRECTORY, 0);
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

static int remove_entry(int root, const char *vpath, int flags)
{
	const char *name;
	int dir = open_parent(root, vpath, &name);
	if (dir < 0)
		return dir;
	int rc = unlinkat(dir, name, flags) < 0 ? -errno : 0;
	close(dir);
	return rc;
}

int vfs_rmdir(int root, const char *vpath)
{
	if (fs_proxy_is_remote(root))
		return remote(root, FS_RMDIR, vpath, NULL, 0, 0, NULL);
	return remove_entry(root, vpath, AT_REMOVEDIR);
}

int vfs_unlink(int root, const char *vpath)
{
	if (fs_proxy_is_remote(root))
		return remote(root, FS_UNLINK, vpath, NULL, 0, 0, NULL);
	return remove_entry(root, vpath, 0);
}

int vfs_rename(int root, const char *from, const char *to)
{
	if (fs_proxy_is_remote(root))
		return remote(root, FS_RENAME, from, to, 0, 0, NULL);
	const char *from_name, *to_name;
	int from_dir = open_parent(root, from, &from_name);
	if (from_dir < 0)
		return from_dir;
	int to_dir = open_parent(root, to, &to_name);
	if (to_dir < 0) {
		close(from_dir);
		return to_dir;
	}
	int rc = renameat(from_dir, from_name, to_dir, to_name) < 0 ? -errno : 0;
	close(from_dir);
	close(to_dir);
	return rc;
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
	int fd = sys_openat2(root, path_relative(vpath), O_PATH, 0);
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

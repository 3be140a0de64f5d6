/*
 * fs_proxy.c: both ends of a local user's file operations (fs_proxy.h).
 */
#include "server/fs_proxy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/buf.h"
#include "server/channel.h"
#include "server/vfs.h"

static const bool returns_fd[FS_OP_COUNT] = {
#define FS_OP(name, fd) [FS_##name] = (fd),
#include "server/fs_ops.def"
#undef FS_OP
};

/*
 * The worker's remote roots, by descriptor number: a worker runs one loop on one thread,
 * and a descriptor is a session's root from attach to detach.
 */
struct remote {
	bool on;
	dev_t dev;
	ino_t ino;
};
static struct remote *remotes;
static size_t n_remotes;

bool fs_proxy_is_remote(int root)
{
	return root >= 0 && (size_t)root < n_remotes && remotes[root].on;
}

/* Wait for the reply at most FS_PROXY_TIMEOUT_MS: a helper that hangs fails the command. */
static int await(int conn)
{
	struct pollfd p = { .fd = conn, .events = POLLIN };
	int n;
	do {
		n = poll(&p, 1, FS_PROXY_TIMEOUT_MS);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

int fs_proxy_call(int conn, struct fs_req *req, struct fs_reply *rep, int *fd)
{
	*fd = -1;
	int rc = msg_write(conn, MSG_FS_REQUEST, req, -1);
	if (rc == 0)
		rc = await(conn);
	enum msg_type type = MSG_INVALID;
	union msg_payload *m = rc == 0 ? malloc(sizeof(*m)) : NULL;
	if (rc == 0 && m == NULL)
		rc = -ENOMEM;
	int got = -1;
	if (rc == 0)
		rc = msg_read(conn, TO_WORKER, false, &type, m, &got);
	if (rc == 0 && type != MSG_FS_REPLY)
		rc = -EPROTO;
	if (rc < 0) {
		free(m);
		if (got >= 0)
			close(got);
		/* The helper is gone or broken: the operation failed, not the file. */
		return rc == -EPIPE || rc == -EPROTO ? -EIO : rc;
	}
	*rep = m->FS_REPLY;
	free(m);
	if (rep->rc == 0 && returns_fd[req->op]) {
		if (got < 0)
			return -EIO;
		*fd = got;
	} else if (got >= 0) {
		close(got);
	}
	return rep->rc;
}

int fs_proxy_attach(int conn)
{
	if (conn < 0)
		return -EBADF;
	if ((size_t)conn >= n_remotes) {
		size_t n = (size_t)conn + 64;
		struct remote *r = realloc(remotes, n * sizeof(*r));
		if (r == NULL)
			return -ENOMEM;
		memset(r + n_remotes, 0, (n - n_remotes) * sizeof(*r));
		remotes = r;
		n_remotes = n;
	}
	struct fs_req *req = calloc(1, sizeof(*req));
	if (req == NULL)
		return -ENOMEM;
	req->op = FS_ROOT;
	struct fs_reply rep;
	int fd;
	int rc = fs_proxy_call(conn, req, &rep, &fd);
	free(req);
	if (rc < 0)
		return rc;
	remotes[conn] = (struct remote){ .on = true, .dev = rep.st.st_dev, .ino = rep.st.st_ino };
	return 0;
}

void fs_proxy_detach(int conn)
{
	if (fs_proxy_is_remote(conn))
		remotes[conn].on = false;
}

int fs_proxy_is_root(int root, int dir)
{
	struct stat d;
	/* fstat of an open descriptor checks no permission: the worker can do it itself. */
	if (fstat(dir, &d) < 0)
		return -errno;
	return d.st_dev == remotes[root].dev && d.st_ino == remotes[root].ino;
}

/* ---- the helper's side ---- */

/* LIST: path's entries and their lstat into a sealed memory file. */
static int list_dir(int root, const char *vpath, bool *is_root)
{
	int dfd = vfs_opendir(root, vpath);
	if (dfd < 0)
		return dfd;
	int r = vfs_is_root(root, dfd);
	*is_root = r > 0;
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		int e = errno;
		close(dfd);
		return -e;
	}
	int mfd = memfd_create("ferryd-list", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	FILE *out = mfd >= 0 ? fdopen(dup(mfd), "w") : NULL;
	int rc = out == NULL ? -errno : 0;
	size_t n = 0;
	struct dirent *e;
	while (rc == 0 && n < FS_LIST_MAX) {
		errno = 0;
		if ((e = readdir(d)) == NULL) {
			rc = errno != 0 ? -errno : 0;
			break;
		}
		struct fs_list_rec rec = { .name_len = (uint32_t)strlen(e->d_name) };
		rec.has_stat = fstatat(dirfd(d), e->d_name, &rec.st, AT_SYMLINK_NOFOLLOW) == 0;
		if (fwrite(&rec, sizeof(rec), 1, out) != 1 ||
		    fwrite(e->d_name, rec.name_len + 1, 1, out) != 1)
			rc = -EIO;
		n++;
	}
	closedir(d);
	if (out != NULL && fclose(out) != 0 && rc == 0)
		rc = -EIO;
	if (rc == 0 &&
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
		rc = -errno;
	if (rc < 0) {
		if (mfd >= 0)
			close(mfd);
		return rc;
	}
	return mfd;
}

/* A request's paths are NUL-terminated within their fields, or refused. */
static bool paths_ok(const struct fs_req *q)
{
	return memchr(q->path, '\0', sizeof(q->path)) != NULL &&
	       memchr(q->path2, '\0', sizeof(q->path2)) != NULL && q->path[0] == '/';
}

static int perform(int root, const struct fs_req *q, struct fs_reply *rep)
{
	if (q->op >= FS_OP_COUNT || (q->op != FS_ROOT && !paths_ok(q)))
		return -EINVAL;
	switch ((enum fs_op)q->op) {
	case FS_ROOT:
		return fstat(root, &rep->st) < 0 ? -errno : 0;
	case FS_OPEN:
		return vfs_open(root, q->path, q->flags, (mode_t)q->mode);
	case FS_STAT:
		return vfs_stat(root, q->path, &rep->st);
	case FS_OPENDIR: {
		int fd = vfs_opendir(root, q->path);
		if (fd >= 0)
			rep->is_root = vfs_is_root(root, fd) > 0;
		return fd;
	}
	case FS_MKDIR:
		return vfs_mkdir(root, q->path, (mode_t)q->mode);
	case FS_RMDIR:
		return vfs_rmdir(root, q->path);
	case FS_UNLINK:
		return vfs_unlink(root, q->path);
	case FS_RENAME:
		return q->path2[0] == '/' ? vfs_rename(root, q->path, q->path2) : -EINVAL;
	case FS_SET_MTIME:
		return vfs_set_mtime(root, q->path, (time_t)q->mtime);
	case FS_CREATE: {
		struct vfs_created made;
		int fd = vfs_create(root, q->path, q->flags, (mode_t)q->mode, &made);
		if (fd >= 0) {
			rep->st.st_dev = made.dev;
			rep->st.st_ino = made.ino;
		}
		vfs_created_close(&made);
		return fd;
	}
	case FS_UNCREATE:
		return vfs_uncreate_path(root, q->path, (dev_t)q->dev, (ino_t)q->ino);
	case FS_LIST: {
		bool is_root = false;
		int fd = list_dir(root, q->path, &is_root);
		rep->is_root = is_root;
		return fd;
	}
	case FS_OP_COUNT:
		break;
	}
	return -EINVAL;
}

int fs_proxy_serve(int conn, int root)
{
	enum msg_type type;
	union msg_payload *m = malloc(sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	int fd;
	int rc = msg_read(conn, TO_FILES, false, &type, m, &fd);
	if (fd >= 0)
		close(fd); /* workers send no descriptors */
	if (rc == 0 && type != MSG_FS_REQUEST)
		rc = -EPROTO;
	if (rc < 0) {
		free(m);
		return rc;
	}
	struct fs_reply rep;
	memset(&rep, 0, sizeof(rep));
	int r = perform(root, &m->FS_REQUEST, &rep);
	bool gives_fd = r >= 0 && returns_fd[m->FS_REQUEST.op];
	rep.rc = r < 0 ? r : 0;
	free(m);
	rc = msg_write(conn, MSG_FS_REPLY, &rep, gives_fd ? r : -1);
	if (gives_fd)
		close(r);
	return rc;
}

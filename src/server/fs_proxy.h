/*
 * fs_proxy.h: the file operations of a local system user's session, made by that user's
 * file helper (file_helper.c), a process of the user's own uid.
 *
 * A worker runs as the unprivileged service account; a local user's files must be read
 * and created with the user's own ids, and refused where the user's own permissions
 * refuse them.  So vfs.c, the one boundary every file operation of a session passes,
 * sends the operation over the session's connection to the helper, which makes it with
 * vfs.c beneath its own root descriptor and answers with the result, and the descriptor
 * when there is one.  Reading and writing an open descriptor needs no permission, so the
 * bytes of transfers never cross the helper: only opening, naming and listing do.
 *
 * The connection is the session's "root": vfs.c knows it from a real root by
 * fs_proxy_is_remote().  Calls block, bounded by FS_PROXY_TIMEOUT_MS; they cost what the
 * system call costs plus one round trip between two processes.
 */
#ifndef FERRY_SERVER_FS_PROXY_H
#define FERRY_SERVER_FS_PROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "common/path.h"

#define FS_PROXY_TIMEOUT_MS 30000
/* Entries one listing may hold (the helper stops there and says so). */
#define FS_LIST_MAX 1000000

/* One row per operation: its name, and whether a descriptor comes back. */
enum fs_op {
#define FS_OP(name, returns_fd) FS_##name,
#include "server/fs_ops.def"
#undef FS_OP
	FS_OP_COUNT
};

struct fs_req {
	uint32_t op;                     /* enum fs_op */
	int32_t flags;                   /* open(2) flags */
	uint32_t mode;
	uint32_t reserved;               /* 0 */
	int64_t mtime;
	uint64_t dev, ino;               /* UNCREATE: the file that was made */
	char path[VPATH_MAX];            /* normalised virtual paths */
	char path2[VPATH_MAX];           /* RENAME's target */
};

struct fs_reply {
	int32_t rc;                      /* 0 or -errno */
	uint32_t is_root;                /* OPENDIR, LIST: the directory is the root */
	struct stat st;                  /* STAT, CREATE (the new file), ROOT */
};

/* A listing record in LIST's memory file: then name_len bytes of name and a NUL. */
struct fs_list_rec {
	uint32_t name_len;
	uint32_t has_stat;               /* 0: the entry vanished before it could be stat'ed */
	struct stat st;
};

/*
 * Worker side.  fs_proxy_attach: conn (a connection to a file helper) becomes a session's
 * root; asks the helper for its root's identity.  Returns 0 or -errno (conn stays the
 * caller's).  fs_proxy_detach: forget it (before it is closed).
 */
int fs_proxy_attach(int conn);
void fs_proxy_detach(int conn);
bool fs_proxy_is_remote(int root);
/* Whether dir (an open directory) is the remote root's directory: 1, 0 or -errno. */
int fs_proxy_is_root(int root, int dir);
/* One operation; *fd gets the returned descriptor or -1.  Returns the reply's rc. */
int fs_proxy_call(int conn, struct fs_req *req, struct fs_reply *rep, int *fd);

/* Helper side: read one request from conn and answer it, beneath root.  0, or -errno
 * when the connection is over (-EPIPE) or broken. */
int fs_proxy_serve(int conn, int root);

#endif

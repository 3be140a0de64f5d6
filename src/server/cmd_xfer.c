/*
 * cmd_xfer.c: data connection set-up (PORT, PASV, EPRT, EPSV) and file transfers (REST,
 * RETR, STOR, APPE, STOU, ABOR).  A handler checks the name and permission and opens the
 * file; data.c and transfer.c do the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/hostport.h"
#include "common/num.h"
#include "common/reply.h"
#include "server/data.h"
#include "server/dispatch.h"
#include "server/log.h"
#include "server/quota.h"
#include "server/session.h"
#include "server/transfer.h"
#include "server/vfs.h"

void cmd_port(struct session *s, const char *arg)
{
	struct sockaddr_storage t;
	if (hostport_parse_port(arg, &t) < 0) {
		session_reply(s, R_501_BAD_ARGUMENTS, "Syntax: PORT h1,h2,h3,h4,p1,p2.");
		return;
	}
	data_active(s, &t);
}

void cmd_eprt(struct session *s, const char *arg)
{
	struct sockaddr_storage t;
	int rc = hostport_parse_eprt(arg, &t);
	if (rc == FERR_RANGE) {
		session_reply(s, R_522_BAD_PROTOCOL, "Network protocol not supported, use (1,2)");
		return;
	}
	if (rc < 0) {
		session_reply(s, R_501_BAD_ARGUMENTS, "Syntax: EPRT |af|address|port|.");
		return;
	}
	data_active(s, &t);
}

void cmd_pasv(struct session *s, const char *arg)
{
	data_passive(s, false);
}

void cmd_epsv(struct session *s, const char *arg)
{
	if (arg[0] == '\0') {
		data_passive(s, true);
		return;
	}
	if (strcasecmp(arg, "ALL") == 0) {
		s->flags |= SF_EPSV_ALL;
		session_reply(s, R_200_OK, "EPSV ALL ok: only EPSV from now on.");
		return;
	}
	const char *mine = s->local.family == AF_INET6 ? "2" : "1";
	if (strcmp(arg, "1") == 0 || strcmp(arg, "2") == 0) {
		if (strcmp(arg, mine) != 0) {
			session_replyf(s, R_522_BAD_PROTOCOL,
				       "Network protocol not supported, use (%s)", mine);
			return;
		}
		data_passive(s, true);
		return;
	}
	session_reply(s, R_501_BAD_ARGUMENTS, "Syntax: EPSV [1 | 2 | ALL].");
}

void cmd_rest(struct session *s, const char *arg)
{
	uint64_t off;
	/* 64-bit offsets: resuming beyond 4 GiB works; anything past INT64_MAX cannot be a file. */
	if (num_parse_u64_cstr(arg, INT64_MAX, &off) < 0) {
		session_reply(s, R_501_BAD_ARGUMENTS, "REST takes a byte offset.");
		return;
	}
	s->rest = off;
	session_replyf(s, R_350_PENDING, "Restart position accepted (%llu).", (unsigned long long)off);
}

void cmd_abor(struct session *s, const char *arg)
{
	transfer_abort(s);
}

void cmd_retr(struct session *s, const char *arg)
{
	uint64_t rest = s->rest;
	s->rest = 0;
	char path[VPATH_MAX];
	if (session_path_need(s, arg, PERM_READ, false, path) < 0)
		return;
	int fd = vfs_open(s->root_fd, path, O_RDONLY | O_NONBLOCK, 0);
	if (fd < 0) {
		session_reply_errno(s, fd, "Failed to open file");
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		session_reply(s, R_550_UNAVAILABLE, "Failed to open file: not a regular file.");
		return;
	}
	/* O_NONBLOCK was only for opening (a FIFO must not hang us); reads are from disk. */
	fcntl(fd, F_SETFL, 0);
	uint64_t size = (uint64_t)st.st_size;
	if (rest > size) {
		close(fd);
		session_replyf(s, R_554_BAD_RESTART, "Restart offset %llu is beyond the end of the file (%llu).",
			       (unsigned long long)rest, (unsigned long long)size);
		return;
	}
	if (rest > 0 && lseek(fd, (off_t)rest, SEEK_SET) < 0) {
		close(fd);
		session_reply(s, R_554_BAD_RESTART, "Cannot seek to the restart offset.");
		return;
	}
	struct transfer_spec spec = {
		.file_fd = fd,
		.offset = rest,
		.size = size - rest,
		.ascii = s->type_ascii,
	};
	str_copy(spec.path, sizeof(spec.path), path);
	snprintf(spec.opening, sizeof(spec.opening), "Opening %s mode data connection for %s (%llu bytes).",
		 s->type_ascii ? "ASCII" : "BINARY", path_basename(path), (unsigned long long)size);
	transfer_start(s, &spec);
}

/*
 * An upload's file, for what its end must do: remove a file it created and stored nothing
 * in, deal with what a quota cut short (quota_partial), and tell the quota tally.
 */
struct store_ctx {
	struct session *s;         /* outlives the upload (transfer_free runs first) */
	bool quota;                /* the user has a quota: the tally follows the file */
	struct vfs_created made;   /* made.dir >= 0: the upload created the file */
	bool replace;              /* STOR from byte 0: the old content was cut anyway */
	uint64_t old_size;         /* the file's size when it was opened */
	uint64_t start;            /* where the upload began writing */
	char path[VPATH_MAX];
};

/* quota_partial = remove: the bytes of an upload stopped at the quota go again. */
static void drop_partial(struct store_ctx *c, int fd)
{
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? -errno : 0;
	if (rc == 0 && (c->made.dir >= 0 || c->replace))
		rc = vfs_unlink_same(c->s->root_fd, c->path, st.st_dev, st.st_ino);
	else if (rc == 0 && ftruncate(fd, (off_t)c->start) < 0)
		rc = -errno; /* APPE, or a resumed STOR: back to what it held before */
	if (rc < 0 && rc != -ESTALE && rc != -ENOENT)
		log_warn("session %llu: could not remove what an upload over quota left in %s: %s",
			 (unsigned long long)c->s->id, LOG_Q(c->path), strerror(-rc));
}

/* What the upload changed in the user's usage: the file's size, and a file more or fewer. */
static void count_upload(struct store_ctx *c, int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		log_warn("session %llu: cannot see what the upload of %s left: %s; the quota "
			 "tally is not updated", (unsigned long long)c->s->id, LOG_Q(c->path),
			 strerror(errno));
		return;
	}
	bool before = c->made.dir < 0, after = st.st_nlink > 0; /* removed: no link left */
	quota_session_changed(c->s, (int)after - (int)before, before ? c->old_size : 0,
			      after ? (uint64_t)st.st_size : 0);
}

static void store_ended(void *ctx, const struct upload_result *r)
{
	struct store_ctx *c = ctx;
	if (r->over_quota && c->s->srv->cfg->quota_partial == QUOTA_PARTIAL_REMOVE) {
		drop_partial(c, r->file_fd);
	} else if (!r->stored && c->made.dir >= 0) {
		/* An upload that stored nothing leaves nothing. */
		int rc = vfs_uncreate(&c->made);
		if (rc < 0 && rc != -ESTALE && rc != -ENOENT)
			log_warn("could not remove the empty file %s of a failed upload: %s",
				 c->made.name, strerror(-rc));
	}
	if (c->quota && r->file_fd >= 0)
		count_upload(c, r->file_fd);
	vfs_created_close(&c->made);
	free(c);
}

/* Hand the file to transfer.c, with c (taken) for its end and room for the quota. */
static void store(struct session *s, struct store_ctx *c, int fd, uint64_t rest, bool unique,
		  bool truncate, uint64_t room)
{
	struct transfer_spec spec = {
		.upload = true,
		.file_fd = fd,
		.offset = rest,
		.ascii = s->type_ascii,
		.truncate = truncate,
		.upload_end = store_ended,
		.upload_ctx = c,
		.quota_room = room,
	};
	const char *path = c->path;
	str_copy(spec.path, sizeof(spec.path), path);
	if (unique) {
		/* RFC 1123 s.4.1.2.9: the 150 reply carries "FILE: name". */
		snprintf(spec.opening, sizeof(spec.opening), "FILE: %s", path_basename(path));
		snprintf(spec.done_text, sizeof(spec.done_text),
			 "Transfer complete (unique file name: %s).", path_basename(path));
	} else {
		snprintf(spec.opening, sizeof(spec.opening), "Ok to send data.");
	}
	transfer_start(s, &spec);
}

/* A context for an upload of path; NULL when out of memory. */
static struct store_ctx *store_ctx_new(struct session *s, const char *path)
{
	struct store_ctx *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->s = s;
	c->quota = quota_session_applies(s);
	c->made.dir = -1;
	str_copy(c->path, sizeof(c->path), path);
	return c;
}

/*
 * Open path for STOR or APPE.  A new file is made with O_EXCL, so c->made can remove it
 * if the upload never stores a byte; an existing file is opened as it is, and STOR cuts
 * it only once the data connection is up (transfer.c).  A resume needs a file: with a
 * REST offset nothing is created.
 */
static int open_for_store(struct session *s, struct store_ctx *c, int flags, uint64_t rest)
{
	if (rest == 0) {
		int fd = vfs_create(s->root_fd, c->path, flags, 0666, &c->made);
		if (fd >= 0 || fd != -EEXIST)
			return fd;
	}
	int fd = vfs_open(s->root_fd, c->path, flags, 0);
	/*
	 * A dangling symlink: O_EXCL refused it and there is no file behind it.  STOR has
	 * always created its target (inside the root); whether this open makes it cannot be
	 * told, so such a file is never removed again.
	 */
	if (fd == -ENOENT && rest == 0)
		fd = vfs_open(s->root_fd, c->path, flags | O_CREAT, 0666);
	return fd;
}

/*
 * A REST offset past the end would leave a hole, maybe of terabytes: refuse it (554).
 * *size gets the file's size.
 */
static int check_rest(struct session *s, int fd, uint64_t rest, uint64_t *size)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		session_reply(s, R_553_BAD_NAME, "Could not create file: not a regular file.");
		return -1;
	}
	*size = (uint64_t)st.st_size;
	if (rest > (uint64_t)st.st_size) {
		session_replyf(s, R_554_BAD_RESTART, "Restart offset %llu is beyond the end of the file (%llu).",
			       (unsigned long long)rest, (unsigned long long)st.st_size);
		return -1;
	}
	/* Resume: keep the first rest bytes, write over the rest (STOR cuts it there). */
	if (rest > 0 && lseek(fd, (off_t)rest, SEEK_SET) < 0) {
		session_reply_errno(s, -errno, "Could not resume");
		return -1;
	}
	return 0;
}

/* The end of a STOR or APPE that never began: what it created goes again. */
static void store_refused(struct store_ctx *c, int fd)
{
	struct upload_result r = { .stored = false, .file_fd = fd };
	store_ended(c, &r);
	close(fd);
}

static void store_cmd(struct session *s, const char *arg, bool append)
{
	uint64_t rest = s->rest;
	s->rest = 0;
	char path[VPATH_MAX];
	if (session_path_need(s, arg, PERM_WRITE, false, path) < 0)
		return;
	uint64_t room;
	if (quota_session_admit(s, path, false, append, rest, &room) < 0)
		return;
	struct store_ctx *c = store_ctx_new(s, path);
	if (c == NULL) {
		session_reply(s, R_451_LOCAL_ERROR, "Out of memory.");
		return;
	}
	int flags = O_WRONLY | O_NONBLOCK;
	if (append)
		flags |= O_APPEND;
	int fd = open_for_store(s, c, flags, rest);
	if (fd < 0) {
		if (fd == -ENOENT && rest > 0)
			session_replyf(s, R_554_BAD_RESTART, "Restart offset %llu, but there is no file to resume.",
				       (unsigned long long)rest);
		else
			session_reply_errno(s, fd, "Could not create file");
		vfs_created_close(&c->made);
		free(c);
		return;
	}
	int rc = check_rest(s, fd, rest, &c->old_size);
	/* O_NONBLOCK was only for opening (a FIFO must not hang us); writes are to disk. */
	if (rc == 0 && fcntl(fd, F_SETFL, append ? O_APPEND : 0) < 0) {
		session_reply_errno(s, -errno, "Could not create file");
		rc = -1;
	}
	if (rc < 0) {
		store_refused(c, fd);
		return;
	}
	c->start = append ? c->old_size : rest;
	c->replace = !append && rest == 0;
	store(s, c, fd, rest, false, !append, room);
}

void cmd_stor(struct session *s, const char *arg)
{
	store_cmd(s, arg, false);
}

void cmd_appe(struct session *s, const char *arg)
{
	store_cmd(s, arg, true);
}

void cmd_stou(struct session *s, const char *arg)
{
	s->rest = 0;
	char base[VPATH_MAX];
	if (session_path_need(s, arg[0] != '\0' ? arg : "ftp.upload", PERM_WRITE, false, base) < 0)
		return;
	uint64_t room;
	if (quota_session_admit(s, base, true, false, 0, &room) < 0)
		return;
	char path[VPATH_MAX];
	for (unsigned i = 0; i < 1000; i++) {
		int n = i == 0 ? snprintf(path, sizeof(path), "%s", base)
			       : snprintf(path, sizeof(path), "%s.%u", base, i);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			session_reply(s, R_553_BAD_NAME, "Path too long.");
			return;
		}
		struct store_ctx *c = store_ctx_new(s, path);
		if (c == NULL) {
			session_reply(s, R_451_LOCAL_ERROR, "Out of memory.");
			return;
		}
		int fd = vfs_create(s->root_fd, path, O_WRONLY, 0666, &c->made);
		if (fd >= 0) {
			store(s, c, fd, 0, true, false, room);
			return;
		}
		vfs_created_close(&c->made);
		free(c);
		if (fd != -EEXIST) {
			session_reply_errno(s, fd, "Could not create file");
			return;
		}
	}
	session_reply(s, R_553_BAD_NAME, "Could not find a unique file name.");
}

/*
 * cmd_fs.c: commands on names: PWD, CWD, CDUP, MKD, RMD, DELE, RNFR, RNTO, SIZE, MDTM,
 * MFMT.  Every path goes through session_path() (normalised, bad names refused) and vfs.c
 * (confined by the kernel); every permission through need().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/listing.h"
#include "common/reply.h"
#include "server/dispatch.h"
#include "server/log.h"
#include "server/quota.h"
#include "server/session.h"
#include "server/vfs.h"

#define REPLY_BUF_MAX (VPATH_MAX * 2 + 256)

/* 257 "path" text, with embedded quotes doubled (RFC 959 Appendix II). */
static void reply_257(struct session *s, const char *path, const char *text)
{
	struct buf b;
	buf_init(&b, REPLY_BUF_MAX);
	if (buf_printf(&b, "%d ", R_257_CREATED) == 0 && reply_quote_path(&b, path) == 0 &&
	    buf_printf(&b, " %s\r\n", text) == 0)
		session_reply_raw(s, &b);
	else
		session_reply(s, R_553_BAD_NAME, "Path too long to quote.");
	buf_free(&b);
}

void cmd_pwd(struct session *s, const char *arg)
{
	reply_257(s, s->cwd, "is the current directory.");
}

static void change_dir(struct session *s, const char *arg)
{
	char path[VPATH_MAX];
	if (session_path(s, arg, path) < 0)
		return;
	/*
	 * "path/." as a shell's cd: looking up "." inside needs the right to enter the
	 * directory (search), which a local user may lack where another user's is private.
	 */
	char inside[VPATH_MAX + 2];
	snprintf(inside, sizeof(inside), "%s/.", strcmp(path, "/") == 0 ? "" : path);
	struct stat st;
	int rc = vfs_stat(s->root_fd, inside, &st);
	if (rc == 0 && !S_ISDIR(st.st_mode))
		rc = -ENOTDIR;
	if (rc < 0) {
		session_reply_errno(s, rc, "Failed to change directory");
		return;
	}
	if (session_set_cwd(s, path) < 0) {
		session_reply_errno(s, -ENOMEM, "Failed to change directory");
		return;
	}
	session_reply(s, R_250_FILE_ACTION_OK, "Directory successfully changed.");
}

void cmd_cwd(struct session *s, const char *arg)
{
	change_dir(s, arg);
}

void cmd_cdup(struct session *s, const char *arg)
{
	change_dir(s, "..");
}

void cmd_mkd(struct session *s, const char *arg)
{
	char path[VPATH_MAX];
	if (session_path_need(s, arg, PERM_MKDIR, false, path) < 0)
		return;
	int rc = vfs_mkdir(s->root_fd, path, 0777);
	if (rc < 0) {
		session_reply_errno(s, rc, "Create directory operation failed");
		return;
	}
	reply_257(s, path, "created.");
}

void cmd_rmd(struct session *s, const char *arg)
{
	char path[VPATH_MAX];
	if (session_path_need(s, arg, PERM_DELETE, false, path) < 0)
		return;
	int rc = vfs_rmdir(s->root_fd, path);
	if (rc < 0) {
		session_reply_errno(s, rc, "Remove directory operation failed");
		return;
	}
	session_reply(s, R_250_FILE_ACTION_OK, "Remove directory operation successful.");
}

void cmd_dele(struct session *s, const char *arg)
{
	char path[VPATH_MAX];
	if (session_path_need(s, arg, PERM_DELETE, false, path) < 0)
		return;
	struct stat gone;
	int rc = vfs_unlink_stat(s->root_fd, path, &gone);
	if (rc < 0) {
		session_reply_errno(s, rc, "Delete operation failed");
		return;
	}
	quota_session_removed(s, &gone);
	session_reply(s, R_250_FILE_ACTION_OK, "Delete operation successful.");
}

void cmd_rnfr(struct session *s, const char *arg)
{
	char path[VPATH_MAX];
	if (session_path_need(s, arg, PERM_RENAME, false, path) < 0)
		return;
	struct stat st;
	int rc = vfs_stat(s->root_fd, path, &st);
	if (rc < 0) {
		session_reply_errno(s, rc, "RNFR command failed");
		return;
	}
	if (session_set_rnfr(s, path) < 0) {
		session_reply_errno(s, -ENOMEM, "RNFR command failed");
		return;
	}
	session_reply(s, R_350_PENDING, "Ready for RNTO.");
}

void cmd_rnto(struct session *s, const char *arg)
{
	if (!(s->flags & SF_HAVE_RNFR)) {
		session_reply(s, R_503_BAD_SEQUENCE, "RNFR required first.");
		return;
	}
	char from[VPATH_MAX];
	str_copy(from, sizeof(from), s->rnfr);
	session_forget_rnfr(s);
	char path[VPATH_MAX];
	if (session_path_need(s, arg, PERM_RENAME, false, path) < 0)
		return;
	struct stat replaced;
	int rc = vfs_rename_stat(s->root_fd, from, path, &replaced);
	if (rc < 0) {
		session_reply_errno(s, rc, "Rename failed");
		return;
	}
	quota_session_removed(s, &replaced); /* a file renamed over another replaces it */
	log_info("session %llu rename from=%s to=%s", (unsigned long long)s->id, LOG_Q(from),
		 LOG_Q(path));
	session_reply(s, R_250_FILE_ACTION_OK, "Rename successful.");
}

/* stat a regular file for SIZE and MDTM; replies on failure. */
static int stat_file(struct session *s, const char *arg, struct stat *st)
{
	char path[VPATH_MAX];
	if (session_path_need(s, arg, PERM_READ, false, path) < 0)
		return -1;
	int rc = vfs_stat(s->root_fd, path, st);
	if (rc < 0) {
		session_reply_errno(s, rc, "Could not get file status");
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		session_reply(s, R_550_UNAVAILABLE, "Not a regular file.");
		return -1;
	}
	return 0;
}

void cmd_size(struct session *s, const char *arg)
{
	struct stat st;
	if (stat_file(s, arg, &st) == 0)
		session_replyf(s, R_213_FILE_STATUS, "%llu", (unsigned long long)st.st_size);
}

void cmd_mdtm(struct session *s, const char *arg)
{
	struct stat st;
	if (stat_file(s, arg, &st) < 0)
		return;
	char t[32];
	if (listing_format_time(t, sizeof(t), st.st_mtime) < 0) {
		session_reply(s, R_550_UNAVAILABLE, "Time out of range.");
		return;
	}
	session_replyf(s, R_213_FILE_STATUS, "%s", t);
}

void cmd_mfmt(struct session *s, const char *arg)
{
	/* draft-somers-ftp-mfxx: "MFMT YYYYMMDDHHMMSS path" -> "213 Modify=...; path" */
	const char *sp = strchr(arg, ' ');
	char stamp[32];
	time_t t;
	if (sp == NULL || sp[1] == '\0' || (size_t)(sp - arg) >= sizeof(stamp)) {
		session_reply(s, R_501_BAD_ARGUMENTS, "Syntax: MFMT YYYYMMDDHHMMSS path.");
		return;
	}
	memcpy(stamp, arg, (size_t)(sp - arg));
	stamp[sp - arg] = '\0';
	if (listing_parse_time(stamp, &t) < 0) {
		session_reply(s, R_501_BAD_ARGUMENTS, "Bad time: use YYYYMMDDHHMMSS (UTC).");
		return;
	}
	char path[VPATH_MAX];
	if (session_path_need(s, sp + 1, PERM_WRITE, false, path) < 0)
		return;
	int rc = vfs_set_mtime(s->root_fd, path, t);
	if (rc < 0) {
		session_reply_errno(s, rc, "Could not set the time");
		return;
	}
	char out[32];
	listing_format_time(out, sizeof(out), t);
	session_replyf(s, R_213_FILE_STATUS, "Modify=%s; %s", out, sp + 1);
}

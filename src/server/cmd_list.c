/*
 * cmd_list.c: LIST, NLST, MLSD, MLST and STAT with a path.  A directory is read a slice at
 * a time as the data connection drains (the producer of transfer.h), so a directory of
 * 100,000 entries costs the memory of one slice, never of the whole listing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "common/listing.h"
#include "common/reply.h"
#include "server/dispatch.h"
#include "server/fs_proxy.h"
#include "server/session.h"
#include "server/transfer.h"
#include "server/vfs.h"

#define ENTRIES_PER_FILL 1024
/* Lines are gathered in list_ctx.line and handed to the output this much at a time. */
#define FILL_CHUNK (64 * 1024)
/* STAT lists whole fills of ENTRIES_PER_FILL: 2,048 entries at most. */
#define STAT_FILLS 2

enum list_format { FMT_LIST, FMT_NLST, FMT_MLSD };

struct list_ctx {
	enum list_format fmt;
	DIR *dir;             /* NULL when listing a single file */
	bool at_root;         /* the listed directory is the user's root, by whatever name */
	bool show_hidden;     /* LIST -a */
	bool single_done;
	unsigned perms;
	unsigned facts;
	int root_fd;          /* the user's root, to follow symlinks for MLSD without leaving it */
	char dir_path[VPATH_MAX]; /* virtual path of the listed directory */
	time_t now;
	char single_name[VPATH_MAX]; /* the file, when a file was named */
	struct stat single_st;
	struct buf line;      /* lines not yet in the output */
	/* A local user's listing, made by the user's file helper (fs_proxy.h FS_LIST). */
	bool remote;          /* records instead of a directory */
	const uint8_t *recs;  /* mapped records, or NULL when there are none */
	size_t recs_len, recs_off;
	struct stat rec_st;   /* the current record's stat, aligned */
};

static void list_ctx_free(void *arg)
{
	struct list_ctx *c = arg;
	if (c->dir != NULL)
		closedir(c->dir);
	if (c->recs != NULL && c->recs_len > 0)
		munmap((void *)c->recs, c->recs_len);
	buf_free(&c->line);
	free(c);
}

/* RFC 3659 s.7.5.5: the operations this user may perform on the entry. */
static void perm_letters(unsigned perms, bool dir, char *out)
{
	size_t n = 0;
	if (dir) {
		if (perms & PERM_WRITE)
			out[n++] = 'c';
		if (perms & PERM_DELETE)
			out[n++] = 'd';
		if (perms & PERM_READ) {
			out[n++] = 'e';
			out[n++] = 'l';
		}
		if (perms & PERM_RENAME)
			out[n++] = 'f';
		if (perms & PERM_MKDIR)
			out[n++] = 'm';
		if (perms & PERM_DELETE)
			out[n++] = 'p';
	} else {
		if (perms & PERM_WRITE)
			out[n++] = 'a';
		if (perms & PERM_DELETE)
			out[n++] = 'd';
		if (perms & PERM_RENAME)
			out[n++] = 'f';
		if (perms & PERM_READ)
			out[n++] = 'r';
		if (perms & PERM_WRITE)
			out[n++] = 'w';
	}
	out[n] = '\0';
}

static void to_entry(const char *name, const struct stat *st, struct listing_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->name = name;
	e->mode = st->st_mode;
	e->nlink = st->st_nlink;
	/* Owners are the server's business: every entry shows as ftp/ftp (vsftpd's hide_ids). */
	e->owner = "ftp";
	e->group = "ftp";
	e->size = (uint64_t)st->st_size;
	e->mtime = st->st_mtime;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
}

/* RFC 3659 s.7.5.1 types; other kinds of file use the OS.unix= extension. */
static const char *mlsx_type_of(mode_t mode)
{
	if (S_ISDIR(mode))
		return "dir";
	if (S_ISREG(mode))
		return "file";
	if (S_ISLNK(mode))
		return "OS.unix=symlink";
	return "OS.unix=special";
}

/* NLST's line: the name alone. */
static int format_name(struct list_ctx *c, const char *name)
{
	size_t old = c->line.len;
	if (buf_append_str(&c->line, name) < 0 || buf_append_str(&c->line, "\r\n") < 0) {
		c->line.len = old;
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Append one entry's line to c->line (nothing when it does not fit). */
static int format_entry(struct list_ctx *c, const char *name, const struct stat *st,
			const char *mlsx_type)
{
	struct listing_entry e;
	to_entry(name, st, &e);
	switch (c->fmt) {
	case FMT_NLST:
		return format_name(c, name);
	case FMT_LIST:
		return listing_format_list(&c->line, &e, c->now) < 0 ? -ENAMETOOLONG : 0;
	case FMT_MLSD: {
		char perm[16];
		perm_letters(c->perms, S_ISDIR(st->st_mode), perm);
		const char *type = mlsx_type != NULL ? mlsx_type : mlsx_type_of(st->st_mode);
		return listing_format_mlsx(&c->line, &e, type, perm, c->facts, false) < 0 ? -ENAMETOOLONG : 0;
	}
	}
	return -EINVAL;
}

/*
 * MLSD describes what a symlink points to, as clients mirror through links; the target is
 * resolved beneath the user's root, so a link to /etc shows as missing, never as /etc.
 * A dangling link stays a symlink.
 */
static void follow_in_root(struct list_ctx *c, const char *name, struct stat *st)
{
	char path[VPATH_MAX];
	struct stat target;
	if (path_resolve(c->dir_path, name, strlen(name), path, sizeof(path)) == 0 &&
	    vfs_stat(c->root_fd, path, &target) == 0)
		*st = target;
}

/* What c->line holds goes to the output.  Returns 0 or -ENOMEM. */
static int flush_lines(struct list_ctx *c, struct evbuffer *out)
{
	int rc = c->line.len > 0 ? evbuffer_add(out, c->line.data, c->line.len) : 0;
	buf_reset(&c->line);
	return rc < 0 ? -ENOMEM : 0;
}

/*
 * The next entry: from the directory, or from a file helper's records (with its stat,
 * *st, or NULL when it could not be had).  0, 1 at the end, or -errno.
 */
static int next_entry(struct list_ctx *c, const char **name, const struct stat **st)
{
	*st = NULL;
	if (!c->remote) {
		errno = 0;
		struct dirent *d = readdir(c->dir);
		if (d == NULL)
			return errno != 0 ? -errno : 1;
		*name = d->d_name;
		return 0;
	}
	struct fs_list_rec rec;
	if (c->recs == NULL || c->recs_len - c->recs_off < sizeof(rec))
		return 1;
	memcpy(&rec, c->recs + c->recs_off, sizeof(rec));
	size_t need = sizeof(rec) + (size_t)rec.name_len + 1;
	/* The helper is the user's process: its records are checked like any input. */
	if (rec.name_len > NAME_MAX || c->recs_len - c->recs_off < need ||
	    c->recs[c->recs_off + sizeof(rec) + rec.name_len] != '\0' ||
	    memchr(c->recs + c->recs_off + sizeof(rec), '\0', rec.name_len) != NULL)
		return -EIO;
	*name = (const char *)c->recs + c->recs_off + sizeof(rec);
	if (rec.has_stat) {
		memcpy(&c->rec_st, &rec.st, sizeof(rec.st));
		*st = &c->rec_st;
	}
	c->recs_off += need;
	return 0;
}

/*
 * Up to ENTRIES_PER_FILL entries into out.  NLST needs names only, so it never stats (an
 * fstatat per entry was nine tenths of its time); the lines are formatted into one buffer
 * and reach the output FILL_CHUNK at a time rather than an evbuffer_add per line.
 */
static int fill_listing(void *arg, struct evbuffer *out)
{
	struct list_ctx *c = arg;
	buf_reset(&c->line);
	if (c->dir == NULL && !c->remote) {
		if (c->single_done)
			return 1;
		c->single_done = true;
		if (format_entry(c, c->single_name, &c->single_st, NULL) == 0 &&
		    flush_lines(c, out) < 0)
			return -ENOMEM;
		return 1;
	}
	int rc = 0;
	for (unsigned i = 0; i < ENTRIES_PER_FILL && rc == 0; i++) {
		if (c->line.len >= FILL_CHUNK && flush_lines(c, out) < 0)
			return -ENOMEM;
		const char *name;
		const struct stat *given;
		rc = next_entry(c, &name, &given);
		if (rc != 0)
			break;
		/*
		 * A name holding CR or LF cannot be sent on a line-based listing without
		 * forging further entries, and no command can name it: leave it out.
		 */
		if (strpbrk(name, "\r\n") != NULL)
			continue;
		/* The root's quota tally is the server's, not the user's (vfs.h). */
		if (c->at_root && strcmp(name, VFS_TALLY_NAME) == 0)
			continue;
		bool dot = strcmp(name, ".") == 0, dotdot = strcmp(name, "..") == 0;
		const char *mlsx_type = NULL;
		if (c->fmt == FMT_MLSD) {
			if (dot)
				mlsx_type = "cdir";
			else if (dotdot)
				mlsx_type = "pdir";
		} else if (name[0] == '.' && !c->show_hidden) {
			continue;
		}
		if (c->fmt == FMT_NLST) {
			(void)format_name(c, name);
			continue;
		}
		if (c->fmt == FMT_MLSD && dotdot && c->at_root)
			continue; /* the root has no parent the user may see */
		struct stat st;
		/* ".." of the root lies outside it: the root stands in for it, as in "/..". */
		const char *stat_name = dotdot && c->at_root ? "." : name;
		if (c->remote) {
			if (given == NULL)
				continue; /* vanished meanwhile */
			st = *given;
			if (dotdot && c->at_root && vfs_stat(c->root_fd, c->dir_path, &st) < 0)
				continue;
		} else if (fstatat(dirfd(c->dir), stat_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			continue; /* vanished meanwhile */
		}
		if (c->fmt == FMT_MLSD && S_ISLNK(st.st_mode))
			follow_in_root(c, name, &st);
		(void)format_entry(c, name, &st, mlsx_type);
	}
	if (flush_lines(c, out) < 0)
		return -ENOMEM;
	return rc;
}

/* Split "LIST -la path" into options and path. */
static const char *parse_options(const char *arg, bool *all)
{
	*all = false;
	while (arg[0] == '-') {
		const char *p = arg + 1;
		while (*p != '\0' && *p != ' ') {
			if (*p == 'a' || *p == 'A')
				*all = true;
			p++;
		}
		while (*p == ' ')
			p++;
		arg = p;
	}
	return arg;
}

/* Prepare a listing of arg (a directory or a single file).  Replies and returns NULL on error. */
static struct list_ctx *open_listing(struct session *s, enum list_format fmt, const char *arg,
				     char *path)
{
	bool all = false;
	if (fmt != FMT_MLSD)
		arg = parse_options(arg, &all);
	if (session_path_need(s, arg, PERM_READ, true, path) < 0)
		return NULL;
	struct list_ctx *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		session_reply(s, R_451_LOCAL_ERROR, "Out of memory.");
		return NULL;
	}
	c->fmt = fmt;
	c->show_hidden = all;
	c->perms = session_perms_at(s, path, true);
	c->facts = s->mlst_facts;
	c->now = time(NULL);
	c->root_fd = s->root_fd;
	str_copy(c->dir_path, sizeof(c->dir_path), path);
	buf_init(&c->line, FILL_CHUNK + VPATH_MAX + 512);
	bool remote = fs_proxy_is_remote(s->root_fd);
	bool is_root = false;
	int fd = remote ? vfs_list(s->root_fd, path, &is_root) : vfs_opendir(s->root_fd, path);
	if (fd == -ENOTDIR && fmt != FMT_MLSD) {
		/* LIST and NLST of a file show that file alone. */
		int rc = vfs_stat(s->root_fd, path, &c->single_st);
		if (rc < 0) {
			list_ctx_free(c);
			session_reply_errno(s, rc, "Could not list");
			return NULL;
		}
		str_copy(c->single_name, sizeof(c->single_name), fmt == FMT_NLST ? arg : path_basename(path));
		return c;
	}
	if (fd == -ENOTDIR) {
		/* RFC 3659 s.7.1: MLSD lists directories only (MLST describes a file). */
		list_ctx_free(c);
		session_reply(s, R_550_UNAVAILABLE, "Not a directory; use MLST for a file.");
		return NULL;
	}
	if (fd < 0) {
		list_ctx_free(c);
		session_reply_errno(s, fd, "Could not list");
		return NULL;
	}
	/*
	 * The name cannot tell: "/top" may be a symlink to "/".  If fstat fails, the root is
	 * assumed: that hides a parent rather than showing the directory above the root.
	 */
	if (remote) {
		/* A sealed memory file of records the user's file helper made. */
		struct stat mst;
		c->at_root = is_root;
		c->remote = true;
		int rc = fstat(fd, &mst) < 0 ? -errno : 0;
		if (rc == 0 && mst.st_size > 0) {
			void *map = mmap(NULL, (size_t)mst.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
			if (map == MAP_FAILED) {
				rc = -errno;
			} else {
				c->recs = map;
				c->recs_len = (size_t)mst.st_size;
			}
		}
		close(fd);
		if (rc < 0) {
			list_ctx_free(c);
			session_reply_errno(s, rc, "Could not list");
			return NULL;
		}
		return c;
	}
	c->at_root = vfs_is_root(s->root_fd, fd) != 0;
	c->dir = fdopendir(fd);
	if (c->dir == NULL) {
		int e = errno;
		close(fd);
		list_ctx_free(c);
		session_reply_errno(s, -e, "Could not list");
		return NULL;
	}
	return c;
}

static void start_listing(struct session *s, enum list_format fmt, const char *arg)
{
	char path[VPATH_MAX];
	struct list_ctx *c = open_listing(s, fmt, arg, path);
	if (c == NULL)
		return;
	struct transfer_spec spec = {
		.file_fd = -1,
		.ascii = true,
		.is_listing = true,
		.fill = fill_listing,
		.fill_ctx = c,
		.fill_free = list_ctx_free,
	};
	str_copy(spec.path, sizeof(spec.path), path);
	str_copy(spec.opening, sizeof(spec.opening), "Here comes the directory listing.");
	str_copy(spec.done_text, sizeof(spec.done_text), "Directory send OK.");
	transfer_start(s, &spec);
}

void cmd_list(struct session *s, const char *arg)
{
	start_listing(s, FMT_LIST, arg);
}

void cmd_nlst(struct session *s, const char *arg)
{
	start_listing(s, FMT_NLST, arg);
}

void cmd_mlsd(struct session *s, const char *arg)
{
	start_listing(s, FMT_MLSD, arg);
}

void cmd_mlst(struct session *s, const char *arg)
{
	char path[VPATH_MAX];
	if (session_path_need(s, arg, PERM_READ, false, path) < 0)
		return;
	struct stat st;
	int rc = vfs_stat(s->root_fd, path, &st);
	if (rc < 0) {
		session_reply_errno(s, rc, "Could not list");
		return;
	}
	struct listing_entry e;
	to_entry(path, &st, &e);
	char perm[16];
	perm_letters(session_perms_at(s, path, S_ISDIR(st.st_mode)), S_ISDIR(st.st_mode), perm);
	struct buf b;
	buf_init(&b, 2 * VPATH_MAX + 1024);
	/* RFC 3659 s.7.2: the facts line starts with a space, the name is the full path. */
	int r = buf_printf(&b, "%d-Listing %s\r\n", R_250_FILE_ACTION_OK, path);
	if (r == 0)
		r = listing_format_mlsx(&b, &e, mlsx_type_of(st.st_mode), perm, s->mlst_facts, true);
	if (r == 0)
		r = buf_printf(&b, "%d End.\r\n", R_250_FILE_ACTION_OK);
	if (r == 0)
		session_reply_raw(s, &b);
	else
		session_reply(s, R_553_BAD_NAME, "Path too long.");
	buf_free(&b);
}

/* STAT path: a LIST over the control connection (RFC 959), bounded in size. */
void cmd_list_status(struct session *s, const char *arg);
void cmd_list_status(struct session *s, const char *arg)
{
	char path[VPATH_MAX];
	struct list_ctx *c = open_listing(s, FMT_LIST, arg, path);
	if (c == NULL)
		return;
	struct evbuffer *eb = evbuffer_new();
	struct buf b;
	buf_init(&b, 4 * 1024 * 1024);
	int rc = 0;
	for (unsigned n = 0; eb != NULL && rc == 0 && n < STAT_FILLS; n++)
		rc = fill_listing(c, eb);
	buf_printf(&b, "%d-Status of %s:\r\n", R_213_FILE_STATUS, path);
	size_t len = eb != NULL ? evbuffer_get_length(eb) : 0;
	char *lines = eb != NULL ? (char *)evbuffer_pullup(eb, -1) : NULL;
	/* Each listing line becomes a reply line, indented so none looks like the end. */
	for (size_t i = 0; lines != NULL && i < len;) {
		char *nl = memchr(lines + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - lines) : len;
		size_t l = end - i;
		if (l > 0 && lines[i + l - 1] == '\r')
			l--;
		buf_append_char(&b, ' ');
		buf_append(&b, lines + i, l);
		buf_append_str(&b, "\r\n");
		i = end + 1;
	}
	if (rc == 0)
		buf_append_str(&b, " (listing truncated; use LIST)\r\n");
	buf_printf(&b, "%d End of status.\r\n", R_213_FILE_STATUS);
	session_reply_raw(s, &b);
	buf_free(&b);
	if (eb != NULL)
		evbuffer_free(eb);
	list_ctx_free(c);
}

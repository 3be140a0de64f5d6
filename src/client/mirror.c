/*
 * mirror.c: ferry mirror URL DIR (download a remote tree into DIR) and ferry mirror
 * --reverse DIR URL (upload DIR's tree), sending only what changed: a file goes when the
 * other side has none of that name, or its size differs, or its modification time does.
 *
 * Times: the remote time is MLSD's modify fact, or MDTM when the server listed with LIST
 * (whose times are to the minute at best).  A download sets the local file's time to the
 * remote one; an upload sets the remote file's time with MFMT where the server has it, so
 * that the next run sees equal times.  Without MFMT the server stamps uploads with the
 * time they arrived, so "the remote file is at least as new" counts as up to date.
 *
 * What this file must never do: write, create or remove anything outside DIR.  Every name
 * a server lists is checked before it is used (no "/", no "." or "..", no NUL, CR or LF);
 * local work goes through directory descriptors (openat, mkdirat, renameat, unlinkat with
 * O_NOFOLLOW / AT_SYMLINK_NOFOLLOW), so no path is resolved twice and no symbolic link in
 * DIR is followed: such links are skipped with a warning, both ways.  A download goes to
 * a temporary file in the same directory first and is renamed over the old one, so that
 * a hard link out of DIR is replaced and never written through.
 *
 * One failing file is reported on one line and counted; the rest goes on, unless the
 * control connection is gone.  The exit status is the class of the first failure.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/commands.h"
#include "client/ftp.h"
#include "client/listing_out.h"
#include "client/progress.h"

/* Deeper trees are refused: a server could otherwise nest directories without end. */
#define MIRROR_DEPTH_MAX 64
/* Bytes of a remote or relative path (the control line's limit is 4096 as well). */
#define MIRROR_PATH_MAX 4096
/* Entries of one directory, either side. */
#define MIRROR_DIR_MAX 1000000

/* One path that grows by a component on the way down and shrinks on the way back. */
struct mpath {
	char s[MIRROR_PATH_MAX];
	size_t len;
};

struct mirror {
	struct ftp *f;
	const struct ftp_options *o;
	bool reverse, delete, dry_run;
	bool mlsd;            /* listings carry exact times (the modify fact) */
	bool mdtm, mfmt;      /* the server's FEAT */
	struct mpath remote;  /* the remote directory or file being worked on */
	struct mpath rel;     /* the same relative to the top, for messages ("a/b.txt") */
	unsigned sent, up_to_date, deleted, failed;
	int first_err;        /* FTPC_E* of the first failure */
	bool gone;            /* the control connection broke: stop */
	bool warned_mfmt;
	unsigned tmp_seq;
};

/* An entry of a directory on either side. */
enum kind { K_FILE, K_DIR, K_OTHER };

struct entry {
	char *name;
	enum kind kind;
	bool has_size, has_time;
	uint64_t size;
	time_t mtime;
};

struct entries {
	struct entry *v;
	size_t n, cap;
	bool oom, too_many;
	unsigned refused;     /* names that were not safe to use */
};

/* For the listing callback: where the entries go and whom to tell about bad names. */
struct collect {
	struct mirror *m;
	struct entries *list;
};

/* ---- messages ---- */


static void fail_count(struct mirror *m, int err)
{
	m->failed++;
	if (m->first_err == FTPC_OK)
		m->first_err = err;
	if (err == FTPC_ECONNECT)
		m->gone = true;
}

/* "ferry: <sentence>" for one failure, counted. */
static void failure(struct mirror *m, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void failure(struct mirror *m, int err, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	cli_error("%s", line);
	fail_count(m, err);
}

/* An engine call that failed: its own sentence. */
static void engine_failure(struct mirror *m, int rc)
{
	failure(m, rc, "%s", ftp_error(m->f));
}

static void warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warning(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	cli_error("warning: %s", line);
}

/* The relative path of the current entry, shown safely. */
static const char *rel_shown(const struct mirror *m, char *out, size_t outsz)
{
	return shown(m->rel.len > 0 ? m->rel.s : ".", m->rel.len > 0 ? m->rel.len : 1, out, outsz);
}

/* ---- paths ---- */

/* Append "/name" (no slash after an empty path or one ending in '/'); -1 if too long. */
static int mpath_push(struct mpath *p, const char *name, size_t *mark)
{
	size_t n = strlen(name);
	bool slash = p->len > 0 && p->s[p->len - 1] != '/';

	*mark = p->len;
	if (p->len + (slash ? 1 : 0) + n + 1 > sizeof(p->s))
		return -1;
	if (slash)
		p->s[p->len++] = '/';
	memcpy(p->s + p->len, name, n + 1);
	p->len += n;
	return 0;
}

static void mpath_pop(struct mpath *p, size_t mark)
{
	p->len = mark;
	p->s[mark] = '\0';
}

static int mpath_set(struct mpath *p, const char *s)
{
	size_t n = strlen(s);

	if (n + 1 > sizeof(p->s))
		return -1;
	memcpy(p->s, s, n + 1);
	p->len = n;
	return 0;
}

/* Both paths one component deeper; a failure (too long) is reported and counted. */
static int descend(struct mirror *m, const char *name, size_t marks[2])
{
	char b[512], nb[256];

	if (mpath_push(&m->remote, name, &marks[0]) == 0) {
		if (mpath_push(&m->rel, name, &marks[1]) == 0)
			return 0;
		mpath_pop(&m->remote, marks[0]);
	}
	failure(m, FTPC_ELOCAL, "%s/%s: the path is too long", rel_shown(m, b, sizeof(b)),
		shown(name, strlen(name), nb, sizeof(nb)));
	return -1;
}

static void ascend(struct mirror *m, const size_t marks[2])
{
	mpath_pop(&m->remote, marks[0]);
	mpath_pop(&m->rel, marks[1]);
}

/*
 * A name a server listed may become a local name only if it is one component: not empty,
 * not "." or "..", no '/', and no NUL, CR or LF (which no control line could carry back).
 */
static bool safe_name(const char *s, size_t len)
{
	if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '/' || s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
			return false;
	}
	return true;
}

/* ---- entry lists ---- */

static struct entry *entries_add(struct entries *l, const char *name, size_t len)
{
	if (l->oom || l->too_many)
		return NULL;
	if (l->n >= MIRROR_DIR_MAX) {
		l->too_many = true;
		return NULL;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct entry *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL) {
			l->oom = true;
			return NULL;
		}
		l->v = v;
		l->cap = cap;
	}
	struct entry *e = &l->v[l->n];
	memset(e, 0, sizeof(*e));
	e->name = strndup(name, len);
	if (e->name == NULL) {
		l->oom = true;
		return NULL;
	}
	l->n++;
	return e;
}

static void entries_free(struct entries *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static void entries_sort(struct entries *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), entry_cmp);
}

static const struct entry *entries_find(const struct entries *l, const char *name)
{
	struct entry key = { .name = (char *)name };

	return l->n == 0 ? NULL : bsearch(&key, l->v, l->n, sizeof(*l->v), entry_cmp);
}

/* ---- the remote side ---- */

static void collect_remote(void *ctx, const struct listing_parsed *e)
{
	struct collect *c = ctx;
	char b[512], nb[256];

	if (!safe_name(e->name, e->name_len)) {
		c->list->refused++;
		const struct mpath *dir = &c->m->remote;
		failure(c->m, FTPC_EREMOTE, "listing %s: the server listed the name '%s', which "
			"is not a plain file name: refused",
			shown(dir->len > 0 ? dir->s : ".", dir->len > 0 ? dir->len : 1, b, sizeof(b)),
			shown(e->name, e->name_len, nb, sizeof(nb)));
		return;
	}
	struct entry *x = entries_add(c->list, e->name, e->name_len);
	if (x == NULL)
		return;
	x->kind = strcmp(e->type, "file") == 0 ? K_FILE : strcmp(e->type, "dir") == 0 ? K_DIR
										: K_OTHER;
	x->has_size = e->has_size;
	x->size = e->size;
	/* LIST's times are to the minute, or the day: only MLSD's are worth comparing. */
	x->has_time = c->m->mlsd && e->has_modify;
	x->mtime = e->modify;
}

/* List m->remote into l (sorted); reported and counted on failure unless quiet_enoent. */
static int list_remote(struct mirror *m, struct entries *l, bool quiet_enoent)
{
	struct collect c = { m, l };
	char b[512];

	memset(l, 0, sizeof(*l));
	int rc = ftp_list(m->f, m->remote.s, collect_remote, &c);
	if (rc == FTPC_ENOTFOUND && quiet_enoent)
		return rc;
	if (rc != FTPC_OK) {
		engine_failure(m, rc);
	} else if (l->oom || l->too_many) {
		rc = FTPC_ELOCAL;
		failure(m, rc, "%s: %s", rel_shown(m, b, sizeof(b)),
			l->oom ? "out of memory" : "more than a million entries in one directory");
	}
	if (rc != FTPC_OK) {
		entries_free(l);
		return rc;
	}
	entries_sort(l);
	return FTPC_OK;
}

/* The remote file's time, from the listing or MDTM; false when there is none. */
static bool remote_time(struct mirror *m, const struct entry *e, time_t *t)
{
	if (e->has_time) {
		*t = e->mtime;
		return true;
	}
	if (!m->mdtm)
		return false;
	int rc = ftp_mdtm(m->f, m->remote.s, t);
	if (rc == FTPC_ECONNECT)
		engine_failure(m, rc);
	return rc == FTPC_OK;   /* else no time: the size alone decides */
}

/* The remote file's size, from the listing or SIZE. */
static bool remote_size(struct mirror *m, const struct entry *e, uint64_t *size)
{
	if (e->has_size) {
		*size = e->size;
		return true;
	}
	int rc = ftp_size(m->f, m->remote.s, size);
	if (rc == FTPC_ECONNECT)
		engine_failure(m, rc);
	return rc == FTPC_OK;   /* else unknown: sent again */
}

/* ---- the local side ---- */

/* The names in the directory dfd (not "." or ".."), sorted, with their lstat. */
static int list_local(struct mirror *m, int dfd, struct entries *l)
{
	char b[512];
	int dup_fd = dup(dfd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;

	memset(l, 0, sizeof(*l));
	if (d == NULL) {
		failure(m, FTPC_ELOCAL, "cannot read the directory %s: %s",
			rel_shown(m, b, sizeof(b)), strerror(errno));
		if (dup_fd >= 0)
			close(dup_fd);
		return FTPC_ELOCAL;
	}
	rewinddir(d);
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		struct entry *x = entries_add(l, de->d_name, strlen(de->d_name));
		if (x == NULL)
			break;
		struct stat st;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			x->kind = K_OTHER;   /* gone meanwhile, or unreadable: reported when used */
			continue;
		}
		x->kind = S_ISREG(st.st_mode) ? K_FILE : S_ISDIR(st.st_mode) ? K_DIR : K_OTHER;
		x->has_size = x->has_time = true;
		x->size = (uint64_t)st.st_size;
		x->mtime = st.st_mtim.tv_sec;
		errno = 0;
	}
	int e = errno;
	closedir(d);
	if (l->oom || l->too_many || e != 0) {
		failure(m, FTPC_ELOCAL, "cannot read the directory %s: %s",
			rel_shown(m, b, sizeof(b)),
			l->oom ? "out of memory" : l->too_many ? "too many entries" : strerror(e));
		entries_free(l);
		return FTPC_ELOCAL;
	}
	entries_sort(l);
	return FTPC_OK;
}

static void skip_link(struct mirror *m)
{
	char b[512];

	warning("%s is a symbolic link: skipped (mirror never follows links)",
		rel_shown(m, b, sizeof(b)));
}

/* A directory under dfd, opened without following a link; -1 with errno. */
static int open_dir_at(int dfd, const char *name)
{
	return openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* ---- download ---- */

/* A temporary file beside name in dfd, created new (never an existing one). */
static int create_temp(struct mirror *m, int dfd, char *tmp, size_t tmpsz)
{
	for (int tries = 0; tries < 100; tries++) {
		snprintf(tmp, tmpsz, ".ferry-mirror.%ld.%u", (long)getpid(), m->tmp_seq++);
		int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	errno = EEXIST;
	return -1;
}

/* RETR into a temporary file, its time (and an old file's mode) set, renamed over name. */
static void fetch(struct mirror *m, int dfd, const char *name, bool has_time, time_t rtime,
		  const struct stat *old)
{
	char tmp[64], b[512];
	int fd = create_temp(m, dfd, tmp, sizeof(tmp));

	if (fd < 0) {
		failure(m, FTPC_ELOCAL, "cannot write %s: %s", rel_shown(m, b, sizeof(b)),
			strerror(errno));
		return;
	}
	struct progress *bar = progress_begin(rel_shown(m, b, sizeof(b)), m->o);
	int rc = ftp_get(m->f, m->remote.s, fd, 0, bar != NULL ? progress_update : NULL, bar);
	progress_end(bar, rc == FTPC_OK);
	int lerr = 0;
	if (rc == FTPC_OK && old != NULL && fchmod(fd, old->st_mode & 07777) != 0)
		lerr = errno;
	if (rc == FTPC_OK && lerr == 0 && has_time) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = rtime } };
		if (futimens(fd, ts) != 0)
			lerr = errno;
	}
	if (close(fd) != 0 && lerr == 0)
		lerr = errno;
	if (rc == FTPC_OK && lerr == 0 && renameat(dfd, tmp, dfd, name) != 0)
		lerr = errno;
	if (rc != FTPC_OK || lerr != 0)
		(void)unlinkat(dfd, tmp, 0);
	if (rc != FTPC_OK)
		engine_failure(m, rc);
	else if (lerr != 0)
		failure(m, FTPC_ELOCAL, "cannot write %s: %s", rel_shown(m, b, sizeof(b)),
			strerror(lerr));
	else
		m->sent++;
}

static void down_file(struct mirror *m, int dfd, const struct entry *e)
{
	char b[512];
	struct stat st;
	bool have = false;

	if (dfd >= 0 && fstatat(dfd, e->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(st.st_mode)) {
			skip_link(m);
			return;
		}
		if (!S_ISREG(st.st_mode)) {
			failure(m, FTPC_ELOCAL, "%s: a file on the server, but not a file here",
				rel_shown(m, b, sizeof(b)));
			return;
		}
		have = true;
	}
	time_t rtime = 0;
	uint64_t rsize = 0;
	bool has_time = remote_time(m, e, &rtime);
	if (m->gone)
		return;
	bool changed = !have;
	if (have) {
		changed = !remote_size(m, e, &rsize) || rsize != (uint64_t)st.st_size ||
			  (has_time && rtime != st.st_mtim.tv_sec);
		if (m->gone)
			return;
	}
	if (!changed) {
		m->up_to_date++;
	} else if (m->dry_run) {
		printf("get %s\n", rel_shown(m, b, sizeof(b)));
		m->sent++;
	} else {
		fetch(m, dfd, e->name, has_time, rtime, have ? &st : NULL);
	}
}

static void down_dir(struct mirror *m, int dfd, int depth);

/* The local directory for a remote one, made when missing (dry run: -1, as if empty). */
static void down_subdir(struct mirror *m, int dfd, const struct entry *e, int depth)
{
	char b[512];
	struct stat st;
	int sub = -1;

	if (dfd >= 0 && fstatat(dfd, e->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(st.st_mode)) {
			skip_link(m);
			return;
		}
		if (!S_ISDIR(st.st_mode)) {
			failure(m, FTPC_ELOCAL, "%s: a directory on the server, but not a directory "
				"here", rel_shown(m, b, sizeof(b)));
			return;
		}
	} else if (dfd >= 0 && errno != ENOENT) {
		failure(m, FTPC_ELOCAL, "%s: %s", rel_shown(m, b, sizeof(b)), strerror(errno));
		return;
	} else if (dfd >= 0 && m->dry_run) {
		dfd = -1;   /* would be made: nothing under it exists */
	} else if (dfd >= 0 && mkdirat(dfd, e->name, 0777) != 0) {
		failure(m, FTPC_ELOCAL, "cannot make the directory %s: %s",
			rel_shown(m, b, sizeof(b)), strerror(errno));
		return;
	}
	if (dfd >= 0) {
		sub = open_dir_at(dfd, e->name);
		if (sub < 0) {
			failure(m, FTPC_ELOCAL, "cannot open the directory %s: %s",
				rel_shown(m, b, sizeof(b)), strerror(errno));
			return;
		}
	}
	down_dir(m, sub, depth + 1);
	if (sub >= 0)
		close(sub);
}

static void delete_local_extras(struct mirror *m, int dfd, const struct entries *remote);

/* The remote directory m->remote into dfd (-1: not there, dry run). */
static void down_dir(struct mirror *m, int dfd, int depth)
{
	char b[512];
	struct entries l;

	if (depth > MIRROR_DEPTH_MAX) {
		failure(m, FTPC_EREMOTE, "%s: more than %d directories deep: not mirrored",
			rel_shown(m, b, sizeof(b)), MIRROR_DEPTH_MAX);
		return;
	}
	if (list_remote(m, &l, false) != FTPC_OK)
		return;
	for (size_t i = 0; i < l.n && !m->gone; i++) {
		const struct entry *e = &l.v[i];
		size_t marks[2];
		if (descend(m, e->name, marks) != 0)
			continue;
		if (e->kind == K_FILE)
			down_file(m, dfd, e);
		else if (e->kind == K_DIR)
			down_subdir(m, dfd, e, depth);
		else
			warning("%s is neither a file nor a directory on the server: skipped",
				rel_shown(m, b, sizeof(b)));
		ascend(m, marks);
	}
	/* A listing with refused names cannot say what vanished: delete nothing then. */
	if (m->delete && !m->gone && l.refused == 0)
		delete_local_extras(m, dfd, &l);
	entries_free(&l);
}

/* ---- --delete, local side ---- */

static void remove_local_tree(struct mirror *m, int dfd, const char *name, int depth);

static void remove_local(struct mirror *m, int dfd, const struct entry *e, int depth)
{
	char b[512];

	if (e->kind == K_OTHER) {
		struct stat st;
		if (fstatat(dfd, e->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			skip_link(m);
		else
			warning("%s is neither a file nor a directory: not deleted",
				rel_shown(m, b, sizeof(b)));
		return;
	}
	if (m->dry_run) {
		printf("delete %s%s\n", rel_shown(m, b, sizeof(b)), e->kind == K_DIR ? "/" : "");
		m->deleted++;
		return;
	}
	if (e->kind == K_DIR) {
		remove_local_tree(m, dfd, e->name, depth);
		return;
	}
	if (unlinkat(dfd, e->name, 0) != 0) {
		failure(m, FTPC_ELOCAL, "cannot delete %s: %s", rel_shown(m, b, sizeof(b)),
			strerror(errno));
		return;
	}
	m->deleted++;
}

/* Everything in dfd/name (links inside are kept, and so is the directory then), then it. */
static void remove_local_tree(struct mirror *m, int dfd, const char *name, int depth)
{
	char b[512];
	struct entries l;

	if (depth > MIRROR_DEPTH_MAX) {
		failure(m, FTPC_ELOCAL, "%s: too deep to delete", rel_shown(m, b, sizeof(b)));
		return;
	}
	int sub = open_dir_at(dfd, name);
	if (sub < 0) {
		failure(m, FTPC_ELOCAL, "cannot delete %s: %s", rel_shown(m, b, sizeof(b)),
			strerror(errno));
		return;
	}
	if (list_local(m, sub, &l) == FTPC_OK) {
		for (size_t i = 0; i < l.n; i++) {
			size_t marks[2];
			if (descend(m, l.v[i].name, marks) != 0)
				continue;
			remove_local(m, sub, &l.v[i], depth + 1);
			ascend(m, marks);
		}
		entries_free(&l);
	}
	close(sub);
	if (unlinkat(dfd, name, AT_REMOVEDIR) == 0)
		m->deleted++;
	else if (errno == ENOTEMPTY || errno == EEXIST)
		warning("%s/ kept: it still holds what was not deleted", rel_shown(m, b, sizeof(b)));
	else
		failure(m, FTPC_ELOCAL, "cannot delete %s/: %s", rel_shown(m, b, sizeof(b)),
			strerror(errno));
}

/* What dfd holds that the server's listing of the same directory does not. */
static void delete_local_extras(struct mirror *m, int dfd, const struct entries *remote)
{
	struct entries local;

	if (dfd < 0 || list_local(m, dfd, &local) != FTPC_OK)
		return;
	for (size_t i = 0; i < local.n; i++) {
		const struct entry *e = &local.v[i];
		size_t marks[2];
		if (entries_find(remote, e->name) != NULL || descend(m, e->name, marks) != 0)
			continue;
		remove_local(m, dfd, e, 0);
		ascend(m, marks);
	}
	entries_free(&local);
}

/* ---- upload ---- */

static void up_dir(struct mirror *m, int dfd, bool remote_new, int depth);
static void up_entries(struct mirror *m, int dfd, const struct entries *remote, int depth);

/* STOR, then MFMT so that the next run sees the same time on both sides. */
static void send_file(struct mirror *m, int dfd, const char *name, time_t ltime)
{
	char b[512];
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		failure(m, FTPC_ELOCAL, "cannot read %s: %s", rel_shown(m, b, sizeof(b)),
			fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return;
	}
	struct progress *bar = progress_begin(rel_shown(m, b, sizeof(b)), m->o);
	int rc = ftp_put(m->f, fd, m->remote.s, 0, bar != NULL ? progress_update : NULL, bar);
	progress_end(bar, rc == FTPC_OK);
	close(fd);
	if (rc != FTPC_OK) {
		engine_failure(m, rc);
		return;
	}
	m->sent++;
	if (!m->mfmt)
		return;
	rc = ftp_mfmt(m->f, m->remote.s, ltime);
	if (rc == FTPC_ECONNECT) {
		engine_failure(m, rc);
	} else if (rc != FTPC_OK && !m->warned_mfmt) {
		/* The file is there: only the next run's comparison suffers. */
		m->warned_mfmt = true;
		warning("%s (the next run may send the file again)", ftp_error(m->f));
	}
}

static void up_file(struct mirror *m, int dfd, const struct entry *l, const struct entry *r)
{
	char b[512];

	if (r != NULL && r->kind != K_FILE) {
		failure(m, FTPC_EREMOTE, "%s: a file here, but not a file on the server",
			rel_shown(m, b, sizeof(b)));
		return;
	}
	bool changed = r == NULL;
	if (r != NULL) {
		uint64_t rsize;
		time_t rtime;
		changed = !remote_size(m, r, &rsize) || rsize != l->size;
		if (!changed && !m->gone && remote_time(m, r, &rtime))
			/* Without MFMT the server's time is when the upload arrived. */
			changed = m->mfmt ? rtime != l->mtime : rtime < l->mtime;
		if (m->gone)
			return;
	}
	if (!changed) {
		m->up_to_date++;
	} else if (m->dry_run) {
		printf("put %s\n", rel_shown(m, b, sizeof(b)));
		m->sent++;
	} else {
		send_file(m, dfd, l->name, l->mtime);
	}
}

static void up_subdir(struct mirror *m, int dfd, const struct entry *l, const struct entry *r,
		      int depth)
{
	char b[512];
	bool made = false;

	if (r != NULL && r->kind != K_DIR) {
		failure(m, FTPC_EREMOTE, "%s: a directory here, but not a directory on the server",
			rel_shown(m, b, sizeof(b)));
		return;
	}
	if (r == NULL && !m->dry_run) {
		int rc = ftp_mkdir(m->f, m->remote.s);
		if (rc != FTPC_OK) {
			engine_failure(m, rc);
			return;
		}
		made = true;
	}
	int sub = open_dir_at(dfd, l->name);
	if (sub < 0) {
		failure(m, FTPC_ELOCAL, "cannot open the directory %s: %s",
			rel_shown(m, b, sizeof(b)), strerror(errno));
		return;
	}
	up_dir(m, sub, made || r == NULL, depth + 1);
	close(sub);
}

static void delete_remote_extras(struct mirror *m, const struct entries *local,
				 const struct entries *remote);

/* The local directory dfd to m->remote; remote_new: it was just made (or, dry run, is not there). */
static void up_dir(struct mirror *m, int dfd, bool remote_new, int depth)
{
	char b[512];
	struct entries remote = { 0 };

	if (depth > MIRROR_DEPTH_MAX) {
		failure(m, FTPC_ELOCAL, "%s: more than %d directories deep: not mirrored",
			rel_shown(m, b, sizeof(b)), MIRROR_DEPTH_MAX);
		return;
	}
	if (!remote_new && list_remote(m, &remote, false) != FTPC_OK)
		return;
	up_entries(m, dfd, &remote, depth);
	entries_free(&remote);
}

/* Each entry of dfd against the server's listing of the same directory. */
static void up_entries(struct mirror *m, int dfd, const struct entries *remote, int depth)
{
	char b[512];
	struct entries local;

	if (list_local(m, dfd, &local) != FTPC_OK)
		return;
	for (size_t i = 0; i < local.n && !m->gone; i++) {
		const struct entry *l = &local.v[i];
		size_t marks[2];
		if (descend(m, l->name, marks) != 0)
			continue;
		const struct entry *r = entries_find(remote, l->name);
		if (strpbrk(l->name, "\r\n") != NULL) {
			failure(m, FTPC_ELOCAL, "%s: a name with a line break cannot be sent over FTP",
				rel_shown(m, b, sizeof(b)));
		} else if (l->kind == K_FILE) {
			up_file(m, dfd, l, r);
		} else if (l->kind == K_DIR) {
			up_subdir(m, dfd, l, r, depth);
		} else {
			struct stat st;
			if (fstatat(dfd, l->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				skip_link(m);
			else
				warning("%s is neither a file nor a directory: skipped",
					rel_shown(m, b, sizeof(b)));
		}
		ascend(m, marks);
	}
	if (m->delete && !m->gone && remote->refused == 0)
		delete_remote_extras(m, &local, remote);
	entries_free(&local);
}

/* ---- --delete, remote side ---- */

static void remove_remote_tree(struct mirror *m, int depth);

static void remove_remote(struct mirror *m, const struct entry *e, int depth)
{
	char b[512];

	if (e->kind == K_OTHER) {
		warning("%s is neither a file nor a directory on the server: not deleted",
			rel_shown(m, b, sizeof(b)));
		return;
	}
	if (m->dry_run) {
		printf("delete %s%s\n", rel_shown(m, b, sizeof(b)), e->kind == K_DIR ? "/" : "");
		m->deleted++;
		return;
	}
	if (e->kind == K_DIR) {
		remove_remote_tree(m, depth);
		return;
	}
	int rc = ftp_delete(m->f, m->remote.s);
	if (rc != FTPC_OK)
		engine_failure(m, rc);
	else
		m->deleted++;
}

/* The remote directory m->remote and all in it; nothing if its listing had refused names. */
static void remove_remote_tree(struct mirror *m, int depth)
{
	char b[512];
	struct entries l;

	if (depth > MIRROR_DEPTH_MAX) {
		failure(m, FTPC_EREMOTE, "%s: too deep to delete", rel_shown(m, b, sizeof(b)));
		return;
	}
	if (list_remote(m, &l, false) != FTPC_OK)
		return;
	if (l.refused > 0) {
		entries_free(&l);
		return;
	}
	for (size_t i = 0; i < l.n && !m->gone; i++) {
		size_t marks[2];
		if (descend(m, l.v[i].name, marks) != 0)
			continue;
		remove_remote(m, &l.v[i], depth + 1);
		ascend(m, marks);
	}
	entries_free(&l);
	if (m->gone)
		return;
	int rc = ftp_rmdir(m->f, m->remote.s);
	if (rc != FTPC_OK)
		engine_failure(m, rc);
	else
		m->deleted++;
}

static void delete_remote_extras(struct mirror *m, const struct entries *local,
				 const struct entries *remote)
{
	for (size_t i = 0; i < remote->n && !m->gone; i++) {
		const struct entry *e = &remote->v[i];
		size_t marks[2];
		if (entries_find(local, e->name) != NULL || descend(m, e->name, marks) != 0)
			continue;
		remove_remote(m, e, 0);
		ascend(m, marks);
	}
}

/* ---- the command ---- */

static int usage(const char *why)
{
	cli_error("mirror: %s (usage: ferry mirror [--delete] [--dry-run] URL DIR, or "
		  "ferry mirror --reverse [--delete] [--dry-run] DIR URL)", why);
	return 2;
}

static int parse_args(int argc, char **argv, struct mirror *m, const char **words)
{
	int n = 0;
	bool end = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!end && strcmp(a, "--") == 0) {
			end = true;
		} else if (!end && strcmp(a, "--reverse") == 0) {
			m->reverse = true;
		} else if (!end && strcmp(a, "--delete") == 0) {
			m->delete = true;
		} else if (!end && (strcmp(a, "--dry-run") == 0 || strcmp(a, "-n") == 0)) {
			m->dry_run = true;
		} else if (!end && a[0] == '-' && a[1] != '\0') {
			cli_error("mirror: unknown option %s (see ferry --help)", a);
			return 2;
		} else if (n == 2) {
			return usage("too many arguments");
		} else {
			words[n++] = a;
		}
	}
	return n == 2 ? 0 : usage("two arguments needed");
}

/*
 * The local top directory, opened before connecting (so that a bad DIR costs no
 * session); *missing: a download's DIR that is not there yet, made by make_top().
 */
static int open_top(const struct mirror *m, const char *dir, int *dfd, bool *missing)
{
	*missing = false;
	*dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dfd >= 0)
		return 0;
	if (errno == ENOENT && !m->reverse) {
		*missing = true;
		return 0;
	}
	cli_error("mirror: cannot open the directory %s: %s", dir, strerror(errno));
	return ftpc_exit_status(FTPC_ELOCAL);
}

/* Download: make DIR once the session is there (a dry run leaves it, as -1). */
static int make_top(const struct mirror *m, const char *dir, int *dfd)
{
	if (m->dry_run)
		return 0;
	if (mkdir(dir, 0777) == 0 || errno == EEXIST) {
		*dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (*dfd >= 0)
			return 0;
	}
	cli_error("mirror: cannot make the directory %s: %s", dir, strerror(errno));
	return ftpc_exit_status(FTPC_ELOCAL);
}

/* Upload: the top remote directory, made when it is not there. */
static void up_top(struct mirror *m, int dfd)
{
	struct entries remote;
	int rc = list_remote(m, &remote, true);

	if (rc == FTPC_ENOTFOUND && !m->dry_run) {
		rc = ftp_mkdir(m->f, m->remote.s);
		if (rc != FTPC_OK) {
			engine_failure(m, rc);
			return;
		}
	} else if (rc != FTPC_OK && rc != FTPC_ENOTFOUND) {
		return;   /* reported */
	}
	up_entries(m, dfd, &remote, 0);
	entries_free(&remote);
}

static void summary(const struct mirror *m)
{
	if (m->o->quiet)
		return;
	printf("mirror%s: %u %s, %u up to date, ", m->dry_run ? " (dry run)" : "", m->sent,
	       m->dry_run ? "to send" : "sent", m->up_to_date);
	if (m->delete)
		printf("%u %s, ", m->deleted, m->dry_run ? "to delete" : "deleted");
	printf("%u failed\n", m->failed);
}

int cmd_mirror(int argc, char **argv, const struct ftp_options *o)
{
	struct mirror *m = calloc(1, sizeof(*m));
	const char *w[2] = { NULL, NULL };
	struct ftp_url u;
	int status, dfd = -1;
	bool missing = false;

	if (m == NULL) {
		cli_error("out of memory");
		return ftpc_exit_status(FTPC_ELOCAL);
	}
	m->o = o;
	status = parse_args(argc, argv, m, w);
	const char *url = m->reverse ? w[1] : w[0], *dir = m->reverse ? w[0] : w[1];
	if (status == 0)
		status = cli_url(url, o, &u);
	if (status == 0 && mpath_set(&m->remote, u.path) != 0)
		status = usage("the URL's path is too long");
	if (status == 0)
		status = open_top(m, dir, &dfd, &missing);
	if (status == 0)
		m->f = cli_connect(&u, o, &status);
	if (m->f != NULL && missing)
		status = make_top(m, dir, &dfd);
	if (m->f != NULL && status == 0) {
		m->mlsd = ftp_has_feature(m->f, "MLSD");
		m->mdtm = ftp_has_feature(m->f, "MDTM");
		m->mfmt = ftp_has_feature(m->f, "MFMT");
		if (m->reverse)
			up_top(m, dfd);
		else
			down_dir(m, dfd, 0);
		summary(m);
		status = ftpc_exit_status(m->first_err);
	}
	ftp_close(m->f);
	if (dfd >= 0)
		close(dfd);
	free(m);
	return status;
}

/*
 * quota.c: the tally of a user's files (quota.h).  The pure part first (parser, formatter,
 * arithmetic), then the file: opened beneath the root's descriptor by its fixed name only
 * (never a client's), locked with flock(2) for every read-modify-write, and counted anew
 * by a bounded walk when it cannot be read.  It must never follow a symlink out of the
 * tree: the tally is opened O_NOFOLLOW and the walk opens every directory O_NOFOLLOW.
 */
#include "server/quota.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/num.h"
#include "server/vfs.h"

/* ---- pure ---- */

int quota_parse(const char *text, size_t len, struct quota_usage *out)
{
	if (len > 0 && text[len - 1] == '\n')
		len--;
	const char *sp = memchr(text, ' ', len);
	if (sp == NULL)
		return FERR_INVALID;
	struct slice files = { .ptr = text, .len = (size_t)(sp - text) };
	struct slice bytes = { .ptr = sp + 1, .len = len - files.len - 1 };
	struct quota_usage u;
	int rc = num_parse_u64(files, UINT64_MAX, &u.files);
	if (rc == 0)
		rc = num_parse_u64(bytes, UINT64_MAX, &u.bytes);
	if (rc < 0)
		return rc;
	*out = u;
	return 0;
}

size_t quota_format(const struct quota_usage *u, char *out, size_t size)
{
	int n = snprintf(out, size, "%llu %llu\n", (unsigned long long)u->files,
			 (unsigned long long)u->bytes);
	if (n < 0 || (size_t)n >= size)
		FERR_BUG("quota_format: buffer smaller than QUOTA_TEXT_MAX + 1");
	return (size_t)n;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

void quota_change(struct quota_usage *u, int files, uint64_t old_size, uint64_t new_size)
{
	if (files > 0)
		u->files = sat_add(u->files, (uint64_t)files);
	else if (files < 0)
		u->files = sat_sub(u->files, (uint64_t)-(int64_t)files);
	u->bytes = sat_add(sat_sub(u->bytes, old_size), new_size);
}

uint64_t quota_room(const struct quota_limits *q, const struct quota_usage *u, uint64_t old_size,
		    uint64_t start)
{
	if (q->bytes == 0)
		return UINT64_MAX;
	/* Everything else the user holds, and the part of this file that the upload keeps. */
	uint64_t kept = sat_add(sat_sub(u->bytes, old_size), start);
	return sat_sub(q->bytes, kept);
}

enum quota_verdict quota_admit(const struct quota_limits *q, const struct quota_usage *u,
			       bool new_file, uint64_t room)
{
	if (new_file && q->files != 0 && u->files >= q->files)
		return QUOTA_OVER_FILES;
	if (q->bytes != 0 && room == 0)
		return QUOTA_OVER_BYTES;
	return QUOTA_OK;
}

/* ---- the walk ---- */

struct scan {
	dev_t dev;              /* the root's file system: no other is entered */
	uint64_t entries;
	bool partial;
	bool stop;              /* QUOTA_SCAN_MAX_ENTRIES reached */
	struct quota_usage u;
};

/* Count what lies in dir (owned: closed here); the root's tally is not the user's file. */
static void scan_dir(int dir, struct scan *sc, unsigned depth)
{
	DIR *d = fdopendir(dir);
	if (d == NULL) {
		close(dir);
		return;
	}
	struct dirent *e;
	while (!sc->stop && (e = readdir(d)) != NULL) {
		const char *name = e->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		if (++sc->entries > QUOTA_SCAN_MAX_ENTRIES) {
			sc->partial = sc->stop = true;
			break;
		}
		if (depth == 0 && strcmp(name, VFS_TALLY_NAME) == 0)
			continue;
		struct stat st;
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != sc->dev)
			continue; /* vanished meanwhile, or a mount point */
		if (S_ISREG(st.st_mode)) {
			sc->u.files = sat_add(sc->u.files, 1);
			sc->u.bytes = sat_add(sc->u.bytes, (uint64_t)st.st_size);
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			continue;
		if (depth + 1 >= QUOTA_SCAN_MAX_DEPTH) {
			sc->partial = true;
			continue;
		}
		int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0)
			scan_dir(sub, sc, depth + 1);
		else if (errno == EMFILE || errno == ENFILE)
			sc->partial = true; /* not the tree's doing: say it was not all counted */
	}
	closedir(d);
}

int quota_scan(int root, struct quota_usage *out, bool *partial)
{
	int dir = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -errno;
	struct stat st;
	if (fstat(dir, &st) < 0) {
		int e = errno;
		close(dir);
		return -e;
	}
	struct scan sc = { .dev = st.st_dev };
	scan_dir(dir, &sc, 0);
	*out = sc.u;
	if (partial != NULL)
		*partial = sc.partial;
	return 0;
}

/* ---- the tally file ---- */

/* Open and lock the tally (made if missing).  Returns the descriptor or -errno. */
static int tally_open(int root)
{
	int fd;
	do {
		fd = openat(root, VFS_TALLY_NAME,
			    O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? -errno : S_ISREG(st.st_mode) ? 0 : -EINVAL;
	while (rc == 0 && flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR)
			rc = -errno;
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* The tally's text is not one: counted anew (FERR_* values overlap errno's, so a sign). */
#define TALLY_BAD 1

/* Read and parse the locked tally.  0, TALLY_BAD (empty, too long, not parsing) or -errno. */
static int tally_read(int fd, struct quota_usage *u)
{
	char text[QUOTA_TEXT_MAX + 1];
	size_t len = 0;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	while (len < sizeof(text)) {
		ssize_t n = read(fd, text + len, sizeof(text) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == sizeof(text) || quota_parse(text, len, u) < 0)
		return TALLY_BAD;
	return 0;
}

/*
 * Write u over the locked tally.  A write that fails leaves the tally empty (or cut short),
 * which the next reader counts anew: never an old number that looks right.
 */
static int tally_write(int fd, const struct quota_usage *u)
{
	char text[QUOTA_TEXT_MAX + 1];
	size_t len = quota_format(u, text, sizeof(text));
	int rc = lseek(fd, 0, SEEK_SET) < 0 ? -errno : fd_write_all(fd, text, len);
	if (rc == 0 && ftruncate(fd, (off_t)len) < 0)
		rc = -errno;
	/* Best effort: the first error is the one the caller reports. */
	if (rc < 0 && ftruncate(fd, 0) < 0)
		return rc;
	return rc;
}

/* Read the locked tally, or count it anew and write it when it does not parse. */
static int tally_get(int root, int fd, struct quota_usage *u, bool *rebuilt, bool *partial)
{
	if (rebuilt != NULL)
		*rebuilt = false;
	if (partial != NULL)
		*partial = false;
	int rc = tally_read(fd, u);
	if (rc != TALLY_BAD)
		return rc;
	rc = quota_scan(root, u, partial);
	if (rc == 0 && rebuilt != NULL)
		*rebuilt = true;
	return rc == 0 ? tally_write(fd, u) : rc;
}

int quota_load(int root, struct quota_usage *out, bool *rebuilt, bool *partial)
{
	int fd = tally_open(root);
	if (fd < 0)
		return fd;
	int rc = tally_get(root, fd, out, rebuilt, partial);
	close(fd); /* and the lock with it */
	return rc;
}

int quota_update(int root, int files, uint64_t old_size, uint64_t new_size,
		 struct quota_usage *after)
{
	int fd = tally_open(root);
	if (fd < 0)
		return fd;
	struct quota_usage u;
	bool rebuilt;
	int rc = tally_get(root, fd, &u, &rebuilt, NULL);
	/* A tally counted anew has seen the file as it is now: the change is in it. */
	if (rc == 0 && !rebuilt) {
		quota_change(&u, files, old_size, new_size);
		rc = tally_write(fd, &u);
	}
	close(fd);
	if (rc == 0 && after != NULL)
		*after = u;
	return rc;
}

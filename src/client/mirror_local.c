/*
 * mirror_local.c: mirror's local side, and every local file system call mirror makes.
 * Work below DIR goes through directory descriptors (openat, mkdirat, renameat, unlinkat,
 * fstatat with O_NOFOLLOW / AT_SYMLINK_NOFOLLOW), so that no path is resolved twice and
 * no symbolic link in DIR is followed: such links are skipped with a warning, both ways.
 * A download goes to a temporary file in the same directory first, gets its time (and
 * the old file's mode), and is renamed over the old one, so that a hard link out of DIR
 * is replaced and never written through.
 *
 * What this file must never do: write, create or remove anything outside DIR, follow a
 * link below it, or open an existing file for writing.  Names come from entries that
 * mirror_entries.c let through, one component each.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/commands.h"
#include "client/mirror_int.h"

/* ---- the top directory ---- */

int local_top_open(const struct mirror *m, const char *dir, int *dfd, bool *missing)
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

int local_top_make(const struct mirror *m, const char *dir, int *dfd)
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

/* ---- listing ---- */

/* x's kind, size and time in dfd; -1 when it is gone or unreadable (K_OTHER: told when used). */
static int stat_entry(int dfd, struct entry *x)
{
	struct stat st;

	if (fstatat(dfd, x->name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		x->kind = K_OTHER;
		return -1;
	}
	x->kind = S_ISREG(st.st_mode) ? K_FILE : S_ISDIR(st.st_mode) ? K_DIR : K_OTHER;
	x->has_size = x->has_time = true;
	x->size = (uint64_t)st.st_size;
	x->mtime = st.st_mtim.tv_sec;
	return 0;
}

/* Every entry of d into l; the errno that ended the reading (0 at the end). */
static int read_entries(DIR *d, int dfd, struct entries *l)
{
	struct dirent *de;

	rewinddir(d);
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		struct entry *x = entries_add(l, de->d_name, strlen(de->d_name));
		if (x == NULL)
			break;
		if (stat_entry(dfd, x) == 0)
			errno = 0;
	}
	return errno;
}

int local_list(struct mirror *m, int dfd, struct entries *l)
{
	char b[512];
	int dup_fd = dup(dfd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;

	memset(l, 0, sizeof(*l));
	if (d == NULL) {
		mirror_fail(m, FTPC_ELOCAL, "cannot read the directory %s: %s",
			    mirror_rel(m, b, sizeof(b)), strerror(errno));
		if (dup_fd >= 0)
			close(dup_fd);
		return FTPC_ELOCAL;
	}
	int e = read_entries(d, dfd, l);
	closedir(d);
	if (l->oom || l->too_many || e != 0) {
		mirror_fail(m, FTPC_ELOCAL, "cannot read the directory %s: %s",
			    mirror_rel(m, b, sizeof(b)),
			    l->oom ? "out of memory" : l->too_many ? "too many entries" : strerror(e));
		entries_free(l);
		return FTPC_ELOCAL;
	}
	entries_sort(l);
	return FTPC_OK;
}

/* ---- what is there ---- */

static void skip_link(struct mirror *m)
{
	char b[512];

	mirror_warn("%s is a symbolic link: skipped (mirror never follows links)",
		    mirror_rel(m, b, sizeof(b)));
}

void local_other(struct mirror *m, int dfd, const char *name, const char *what)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
		skip_link(m);
	else
		mirror_neither(m, false, what);
}

int local_match(struct mirror *m, int dfd, const char *name, enum kind want, struct stat *st)
{
	if (dfd < 0 || fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	if (S_ISLNK(st->st_mode)) {
		skip_link(m);
		return -1;
	}
	if (want == K_DIR ? S_ISDIR(st->st_mode) : S_ISREG(st->st_mode))
		return 1;
	mirror_mismatch(m, want, false);
	return -1;
}

/* ---- directories and files ---- */

int local_open_dir(struct mirror *m, int dfd, const char *name, bool to_delete)
{
	char b[512];
	int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (sub >= 0)
		return sub;
	if (to_delete)
		mirror_fail(m, FTPC_ELOCAL, "cannot delete %s: %s", mirror_rel(m, b, sizeof(b)),
			    strerror(errno));
	else
		mirror_fail(m, FTPC_ELOCAL, "cannot open the directory %s: %s",
			    mirror_rel(m, b, sizeof(b)), strerror(errno));
	return -1;
}

int local_dir_for(struct mirror *m, int dfd, const char *name, int *sub)
{
	char b[512];
	struct stat st;
	int have = local_match(m, dfd, name, K_DIR, &st);

	*sub = -1;
	if (have < 0)
		return -1;
	if (dfd < 0 || (have == 0 && errno == ENOENT && m->dry_run))
		return 0;   /* would be made: nothing under it exists */
	if (have == 0 && errno != ENOENT) {
		mirror_fail(m, FTPC_ELOCAL, "%s: %s", mirror_rel(m, b, sizeof(b)), strerror(errno));
		return -1;
	}
	if (have == 0 && mkdirat(dfd, name, 0777) != 0) {
		mirror_fail(m, FTPC_ELOCAL, "cannot make the directory %s: %s",
			    mirror_rel(m, b, sizeof(b)), strerror(errno));
		return -1;
	}
	*sub = local_open_dir(m, dfd, name, false);
	return *sub < 0 ? -1 : 0;
}

int local_open_file(struct mirror *m, int dfd, const char *name)
{
	char b[512];
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		return fd;
	mirror_fail(m, FTPC_ELOCAL, "cannot read %s: %s", mirror_rel(m, b, sizeof(b)),
		    fd < 0 ? strerror(errno) : "not a regular file");
	if (fd >= 0)
		close(fd);
	return -1;
}

/* ---- temporary files ---- */

static void write_failed(struct mirror *m, int err)
{
	char b[512];

	mirror_fail(m, FTPC_ELOCAL, "cannot write %s: %s", mirror_rel(m, b, sizeof(b)),
		    strerror(err));
}

int local_temp_create(struct mirror *m, int dfd, struct temp *t)
{
	t->dfd = dfd;
	for (int tries = 0; tries < 100; tries++) {
		snprintf(t->name, sizeof(t->name), ".ferry-mirror.%ld.%u", (long)getpid(),
			 m->tmp_seq++);
		t->fd = openat(dfd, t->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			       0666);
		if (t->fd >= 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	write_failed(m, errno);
	return -1;
}

void local_temp_drop(struct temp *t)
{
	close(t->fd);
	(void)unlinkat(t->dfd, t->name, 0);
}

int local_temp_keep(struct mirror *m, struct temp *t, const char *name, const struct stat *old,
		    const time_t *mtime)
{
	int lerr = 0;

	if (old != NULL && fchmod(t->fd, old->st_mode & 07777) != 0)
		lerr = errno;
	if (lerr == 0 && mtime != NULL) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = *mtime } };
		if (futimens(t->fd, ts) != 0)
			lerr = errno;
	}
	if (close(t->fd) != 0 && lerr == 0)
		lerr = errno;
	if (lerr == 0 && renameat(t->dfd, t->name, t->dfd, name) != 0)
		lerr = errno;
	if (lerr == 0)
		return 0;
	(void)unlinkat(t->dfd, t->name, 0);
	write_failed(m, lerr);
	return -1;
}

/* ---- --delete ---- */

void local_unlink(struct mirror *m, int dfd, const char *name)
{
	char b[512];

	if (unlinkat(dfd, name, 0) == 0)
		m->deleted++;
	else
		mirror_fail(m, FTPC_ELOCAL, "cannot delete %s: %s", mirror_rel(m, b, sizeof(b)),
			    strerror(errno));
}

void local_rmdir(struct mirror *m, int dfd, const char *name)
{
	char b[512];

	if (unlinkat(dfd, name, AT_REMOVEDIR) == 0)
		m->deleted++;
	else if (errno == ENOTEMPTY || errno == EEXIST)
		mirror_warn("%s/ kept: it still holds what was not deleted",
			    mirror_rel(m, b, sizeof(b)));
	else
		mirror_fail(m, FTPC_ELOCAL, "cannot delete %s/: %s", mirror_rel(m, b, sizeof(b)),
			    strerror(errno));
}

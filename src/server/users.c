/*
 * users.c: the users file.  Every line is checked at start-up, so a typo is reported with
 * its line number instead of surfacing as a failed login hours later.
 */
#include "server/users.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "server/config.h"

#define USERS_MAX 100000

/* Copy the next ':'-separated field of *p into dst. */
static int next_field(const char **p, char *dst, size_t dstsz, bool last)
{
	const char *end = last ? *p + strlen(*p) : strchr(*p, ':');
	if (end == NULL)
		return -1;
	size_t n = (size_t)(end - *p);
	if (n >= dstsz)
		return -1;
	memcpy(dst, *p, n);
	dst[n] = '\0';
	*p = last ? end : end + 1;
	return 0;
}

int users_parse_line(const char *line, struct user_entry *e, const char **why)
{
	char perms[256];
	const char *p = line;
	memset(e, 0, sizeof(*e));
	if (next_field(&p, e->name, sizeof(e->name), false) < 0 || e->name[0] == '\0') {
		*why = "expected name:hash:home:permissions";
		return -1;
	}
	if (next_field(&p, e->hash, sizeof(e->hash), false) < 0 || e->hash[0] == '\0') {
		*why = "missing or too long password hash";
		return -1;
	}
	if (next_field(&p, e->home, sizeof(e->home), false) < 0 || e->home[0] != '/') {
		*why = "home must be an absolute path";
		return -1;
	}
	if (next_field(&p, perms, sizeof(perms), true) < 0 || perm_parse(perms, &e->perms) < 0) {
		*why = "permissions must be a list of read, write, delete, rename, mkdir, all";
		return -1;
	}
	for (const char *c = e->name; *c != '\0'; c++) {
		if (*c == ' ' || (unsigned char)*c < 0x21) {
			*why = "user names must not hold spaces or control characters";
			return -1;
		}
	}
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct user_entry *)a)->name, ((const struct user_entry *)b)->name);
}

static int users_load_stream(FILE *f, const char *path, struct users **out, FILE *err);

int users_load(const char *path, struct users **out, FILE *err)
{
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		fprintf(err, "%s: cannot open: %s\n", path, strerror(errno));
		return -1;
	}
	return users_load_stream(f, path, out, err);
}

int users_load_fd(int fd, const char *name, struct users **out, FILE *err)
{
	/*
	 * Every worker holds the same open file description of the snapshot, so its offset is
	 * shared: reading through it races with the other workers.  Map it instead.
	 */
	struct stat st;
	if (fstat(fd, &st) < 0) {
		fprintf(err, "%s: cannot read: %s\n", name, strerror(errno));
		return -1;
	}
	if (st.st_size == 0) {
		*out = calloc(1, sizeof(**out));
		return *out != NULL ? 0 : -1;
	}
	size_t len = (size_t)st.st_size;
	void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	FILE *f = map != MAP_FAILED ? fmemopen(map, len, "r") : NULL;
	if (f == NULL) {
		fprintf(err, "%s: cannot read: %s\n", name, strerror(errno));
		if (map != MAP_FAILED)
			munmap(map, len);
		return -1;
	}
	int rc = users_load_stream(f, name, out, err);
	munmap(map, len);
	return rc;
}

int users_snapshot(const char *path)
{
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	int mfd = memfd_create("ferryd-users", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0) {
		int e = errno;
		close(in);
		return -e;
	}
	char buf[65536];
	ssize_t n;
	int rc = 0;
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (write(mfd, buf, (size_t)n) != n) {
			rc = -EIO;
			break;
		}
	}
	close(in);
	if (rc == 0 &&
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
		rc = -errno;
	if (rc < 0) {
		close(mfd);
		return rc;
	}
	return mfd;
}

static int users_load_stream(FILE *f, const char *path, struct users **out, FILE *err)
{
	struct users *u = calloc(1, sizeof(*u));
	size_t cap = 0;
	int rc = u == NULL ? -1 : 0;
	char line[8192];
	unsigned lineno = 0;
	while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		size_t n = strlen(line);
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		else if (!feof(f)) {
			fprintf(err, "%s:%u: line too long\n", path, lineno);
			rc = -1;
			break;
		}
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (u->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct user_entry *nv = ncap <= USERS_MAX ? realloc(u->v, ncap * sizeof(*nv)) : NULL;
			if (nv == NULL) {
				fprintf(err, "%s:%u: too many users\n", path, lineno);
				rc = -1;
				break;
			}
			u->v = nv;
			cap = ncap;
		}
		const char *why;
		if (users_parse_line(line, &u->v[u->n], &why) < 0) {
			fprintf(err, "%s:%u: %s\n", path, lineno, why);
			rc = -1;
			break;
		}
		u->n++;
	}
	fclose(f);
	if (rc == 0 && u->n > 0) {
		/* Sorted once here, so that a login is a binary search. */
		qsort(u->v, u->n, sizeof(*u->v), cmp_entry);
		for (size_t i = 1; i < u->n; i++) {
			if (strcmp(u->v[i - 1].name, u->v[i].name) == 0) {
				fprintf(err, "%s: user '%s' defined twice\n", path, u->v[i].name);
				rc = -1;
				break;
			}
		}
	}
	if (rc < 0) {
		users_free(u);
		return -1;
	}
	*out = u;
	return 0;
}

void users_free(struct users *u)
{
	if (u == NULL)
		return;
	if (u->v != NULL)
		explicit_bzero(u->v, u->n * sizeof(*u->v));
	free(u->v);
	free(u);
}

const struct user_entry *users_find(const struct users *u, const char *name)
{
	if (u == NULL || u->n == 0)
		return NULL;
	struct user_entry key;
	if (str_copy(key.name, sizeof(key.name), name) < 0)
		return NULL;
	return bsearch(&key, u->v, u->n, sizeof(*u->v), cmp_entry);
}

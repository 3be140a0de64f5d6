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
#include "server/user_settings.h"

#define USERS_MAX 100000
#define WEAK_NAMES_SHOWN 10 /* names in a weak-method warning, so that it stays one line */
#define CLASSES_MAX 32      /* distinct methods and costs weighed by users_typical_hash() */

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
	bool more = strchr(p, ':') != NULL;
	if (next_field(&p, perms, sizeof(perms), !more) < 0 || perm_parse(perms, &e->perms) < 0) {
		*why = "permissions must be a list of read, write, delete, rename, mkdir, all";
		return -1;
	}
	for (const char *c = e->name; *c != '\0'; c++) {
		if (*c == ' ' || (unsigned char)*c < 0x21) {
			*why = "user names must not hold spaces or control characters";
			return -1;
		}
	}
	if (more) {
		struct user_settings set;
		if (user_settings_parse(p, strlen(p), &set, why) < 0)
			return -1;
		if (user_settings_any(&set)) {
			e->set = malloc(sizeof(*e->set));
			if (e->set == NULL) {
				*why = "out of memory";
				return -1;
			}
			*e->set = set;
		}
	}
	return 0;
}

void user_entry_clear(struct user_entry *e)
{
	free(e->set);
	e->set = NULL;
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
	if (users_load_stream(f, path, out, err) < 0)
		return -1;
	users_warn_weak(*out, path, err);
	return 0;
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
	for (size_t i = 0; i < u->n; i++)
		user_entry_clear(&u->v[i]);
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

/* Whether s[0..n) holds only crypt(3)'s base-64 alphabet, as DES hashes do. */
static bool is_crypt64(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!(c == '.' || c == '/' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		      (c >= 'a' && c <= 'z')))
			return false;
	}
	return true;
}

static bool is_des(const char *h)
{
	return strlen(h) == 13 && is_crypt64(h, 13);
}

static bool is_bsdi_des(const char *h)
{
	return h[0] == '_' && strlen(h) == 20 && is_crypt64(h + 1, 19);
}

static bool is_md5(const char *h)
{
	return strncmp(h, "$1$", 3) == 0;
}

static bool is_nt(const char *h)
{
	return strncmp(h, "$3$", 3) == 0;
}

static bool is_sha256(const char *h)
{
	return strncmp(h, "$5$", 3) == 0;
}

/*
 * Methods a leaked users file gives up quickly: DES and NT fall to tables, MD5-crypt to
 * billions of guesses a second on one GPU, SHA-256-crypt at its default 5000 rounds to
 * not many fewer.  yescrypt (libxcrypt's default, what ferryd passwd writes), bcrypt and
 * SHA-512-crypt are not listed.
 */
static const struct {
	const char *name;
	bool (*match)(const char *hash);
} weak_methods[] = {
	{ "DES", is_des },
	{ "BSDi DES (_)", is_bsdi_des },
	{ "MD5 ($1$)", is_md5 },
	{ "NT ($3$)", is_nt },
	{ "SHA-256 ($5$)", is_sha256 },
};

const char *users_weak_method(const char *hash)
{
	for (size_t i = 0; i < sizeof(weak_methods) / sizeof(weak_methods[0]); i++) {
		if (weak_methods[i].match(hash))
			return weak_methods[i].name;
	}
	return NULL;
}

/* One warning for the users of method m; returns how many there are. */
static size_t warn_method(const struct users *u, size_t m, const char *path, FILE *err)
{
	struct buf names;
	buf_init(&names, 1024);
	size_t n = 0;
	for (size_t i = 0; i < u->n; i++) {
		if (!weak_methods[m].match(u->v[i].hash))
			continue;
		if (n < WEAK_NAMES_SHOWN)
			buf_printf(&names, "%s%s", n > 0 ? ", " : "", u->v[i].name);
		n++;
	}
	if (n > 0) {
		char more[64] = "";
		if (n > WEAK_NAMES_SHOWN)
			snprintf(more, sizeof(more), " and %zu more", n - WEAK_NAMES_SHOWN);
		fprintf(err,
			"warning: %s: %zu user%s with %s password hashes, quick to crack if the "
			"file leaks: %s%s; give them new passwords with ferryd passwd\n",
			path, n, n == 1 ? "" : "s", weak_methods[m].name,
			names.data != NULL ? names.data : "", more);
	}
	buf_free(&names);
	return n;
}

size_t users_warn_weak(const struct users *u, const char *path, FILE *err)
{
	size_t total = 0;
	for (size_t m = 0; u != NULL && m < sizeof(weak_methods) / sizeof(weak_methods[0]); m++)
		total += warn_method(u, m, path, err);
	return total;
}

/*
 * The part of a crypt(3) hash that names its method and cost, without salt or digest:
 * "$6$rounds=9000$", "$6$" (the default rounds), "$y$j9T$", "$2b$12$", "DES".  Returns
 * false for what is no hash ("!" or "*" of a locked entry).
 */
static bool hash_class(const char *h, struct slice *key)
{
	if (is_des(h)) {
		*key = SLICE_LIT("DES");
		return true;
	}
	if (is_bsdi_des(h)) {
		*key = (struct slice){ h, 5 }; /* '_' and the four characters of the count */
		return true;
	}
	if (h[0] != '$')
		return false;
	if (h[1] == '2' && h[2] != '\0' && h[3] == '$') {
		/* bcrypt: "$2b$12$" then salt and digest in one field. */
		const char *end = strchr(h + 4, '$');
		if (end == NULL)
			return false;
		*key = (struct slice){ h, (size_t)(end - h) + 1 };
		return true;
	}
	if (strncmp(h, "$7$", 3) == 0) {
		/* scrypt: N, r and p in 1 + 5 + 5 fixed characters, then the salt. */
		if (strlen(h) < 14)
			return false;
		*key = (struct slice){ h, 14 };
		return true;
	}
	/* "$id$[params$]salt$digest": everything before the last two fields. */
	const char *last = strrchr(h, '$');
	const char *prev = last;
	while (prev > h && *--prev != '$')
		;
	if (prev <= h)
		return false;
	*key = (struct slice){ h, (size_t)(prev - h) + 1 };
	return true;
}

/* Users whose hashes share a method and cost. */
struct hash_class {
	struct slice key;
	const char *hash; /* the first of them */
	size_t count;
};

const char *users_typical_hash(const struct users *u)
{
	/*
	 * The most common class rather than the most expensive one: an unknown name then
	 * costs what most real users cost, and only users of a rarer method stand out.  The
	 * most expensive class would make every user of a cheaper method stand out, which,
	 * in a file half-way through a move to a stronger method, is most of them.  Ties go
	 * to the class met first (users are sorted by name), so that every worker agrees.
	 */
	struct hash_class cls[CLASSES_MAX];
	size_t ncls = 0;
	for (size_t i = 0; u != NULL && i < u->n; i++) {
		struct slice key;
		if (!hash_class(u->v[i].hash, &key))
			continue;
		size_t c = 0;
		while (c < ncls && !slice_eq(cls[c].key, key))
			c++;
		if (c == ncls) {
			if (ncls == CLASSES_MAX)
				continue; /* a 33rd class is a minority anyway */
			cls[ncls++] = (struct hash_class){ key, u->v[i].hash, 0 };
		}
		cls[c].count++;
	}
	size_t best = 0;
	for (size_t c = 1; c < ncls; c++) {
		if (cls[c].count > cls[best].count)
			best = c;
	}
	return ncls > 0 ? cls[best].hash : NULL;
}

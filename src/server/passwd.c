/*
 * passwd.c: the users-file editor.  The new file is written beside the old one and renamed
 * over it, so a crash never leaves a half-written users file.
 *
 * It runs as root in a directory others may write to: it must never open, chown or chmod
 * a name someone else could have made (a fixed "FILE.tmp" let anyone who can write there
 * plant a link and have root overwrite any file), and never write an empty password.
 */
#include "server/passwd.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "common/buf.h"
#include "server/config.h"
#include "server/users.h"

static int read_password(const char *prompt, char *out, size_t outsz)
{
	bool tty = isatty(STDIN_FILENO);
	struct termios old, quiet;
	if (tty) {
		if (tcgetattr(STDIN_FILENO, &old) < 0)
			return -1;
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0)
			return -1;
		/* Only now: TCSAFLUSH drops what was typed before, so prompt after it. */
		fprintf(stderr, "%s", prompt);
	}
	bool ok = fgets(out, (int)outsz, stdin) != NULL;
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (!ok)
		return -1;
	size_t n = strlen(out);
	if (n > 0 && out[n - 1] == '\n')
		out[--n] = '\0';
	else if (!feof(stdin))
		return -1; /* longer than the buffer */
	if (n > 0 && out[n - 1] == '\r')
		out[--n] = '\0';
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: ferryd passwd FILE NAME [--home DIR] [--permissions LIST]\n"
			"  reads the password from the terminal (twice), or one line from stdin\n"
			"  new users need --home; permissions default to read\n");
	return 2;
}

/* Returns 0, or the exit status after a message. */
static int parse_args(int argc, char **argv, const char **file, struct passwd_change *c)
{
	if (argc < 4)
		return usage();
	*file = argv[2];
	c->name = argv[3];
	for (int i = 4; i < argc; i++) {
		if (strcmp(argv[i], "--home") == 0 && i + 1 < argc)
			c->home = argv[++i];
		else if (strcmp(argv[i], "--permissions") == 0 && i + 1 < argc)
			c->perms = argv[++i];
		else
			return usage();
	}
	unsigned bits;
	if (c->perms != NULL && perm_parse(c->perms, &bits) < 0) {
		fprintf(stderr, "ferryd passwd: bad permissions '%s'\n", c->perms);
		return 2;
	}
	if (c->home != NULL && c->home[0] != '/') {
		fprintf(stderr, "ferryd passwd: --home must be an absolute path\n");
		return 2;
	}
	const char *name = c->name;
	if (strchr(name, ':') != NULL || strchr(name, ' ') != NULL || name[0] == '\0' ||
	    strlen(name) >= 64) {
		fprintf(stderr, "ferryd passwd: bad user name\n");
		return 2;
	}
	return 0;
}

int passwd_read_new(char *pw, size_t pwsz)
{
	if (read_password("Password: ", pw, pwsz) < 0) {
		fprintf(stderr, "ferryd passwd: no password read\n");
		return 1;
	}
	/* A user with an empty password logs in with none: anyone who guesses the name. */
	if (pw[0] == '\0') {
		fprintf(stderr, "ferryd passwd: empty password refused; nothing changed\n");
		return 1;
	}
	if (isatty(STDIN_FILENO)) {
		char again[PASSWD_PASSWORD_MAX];
		bool same = read_password("Again: ", again, sizeof(again)) == 0 &&
			    strcmp(pw, again) == 0;
		explicit_bzero(again, sizeof(again));
		if (!same) {
			fprintf(stderr, "ferryd passwd: passwords differ\n");
			return 1;
		}
	}
	return 0;
}

int passwd_hash(const char *pw, char *out, size_t outsz)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	/* NULL prefix: libxcrypt's preferred method. */
	if (crypt_gensalt_rn(NULL, 0, NULL, 0, salt, sizeof(salt)) == NULL) {
		fprintf(stderr, "ferryd passwd: cannot make a salt: %s\n", strerror(errno));
		return 1;
	}
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (cd == NULL) {
		fprintf(stderr, "ferryd passwd: out of memory\n");
		return 1;
	}
	const char *hash = crypt_r(pw, salt, cd);
	int rc = hash == NULL || hash[0] == '*' || str_copy(out, outsz, hash) < 0 ? 1 : 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	if (rc != 0)
		fprintf(stderr, "ferryd passwd: hashing failed\n");
	return rc;
}

/* Copy the users file in to out with the change applied; *found: the user was there. */
static void copy_with_change(FILE *in, FILE *out, const struct passwd_change *c, bool *found)
{
	char line[8192];
	*found = false;
	bool ended = true; /* the last line copied ended with a newline */
	while (in != NULL && fgets(line, sizeof(line), in) != NULL) {
		size_t len = strlen(line);
		ended = len > 0 && line[len - 1] == '\n';
		struct user_entry e;
		const char *why;
		char copy[8192];
		str_copy(copy, sizeof(copy), line);
		copy[strcspn(copy, "\r\n")] = '\0';
		if (copy[0] == '#' || users_parse_line(copy, &e, &why) < 0) {
			fputs(line, out);
			continue;
		}
		if (strcmp(e.name, c->name) != 0) {
			user_entry_clear(&e);
			fputs(line, out);
			continue;
		}
		/* name:hash:home:perms[:settings]: the settings are kept as they were. */
		const char *perms = copy;
		for (int i = 0; i < 3; i++)
			perms = strchr(perms, ':') + 1;
		size_t perms_len = strcspn(perms, ":");
		fprintf(out, "%s:%s:%s:%.*s%s\n", c->name, c->hash,
			c->home != NULL ? c->home : e.home,
			(int)(c->perms != NULL ? strlen(c->perms) : perms_len),
			c->perms != NULL ? c->perms : perms, perms + perms_len);
		*found = true;
		user_entry_clear(&e);
		explicit_bzero(&e, sizeof(e));
	}
	/* A file whose last line has no newline: the new user gets a line of its own. */
	if (!*found && c->home != NULL)
		fprintf(out, "%s%s:%s:%s:%s\n", ended ? "" : "\n", c->name, c->hash, c->home,
			c->perms != NULL ? c->perms : "read");
}

/*
 * Create the new file beside file: a random name, O_EXCL, so that nothing planted in
 * the directory (a symbolic link to /etc/shadow, say) is opened.  Returns its descriptor
 * or -errno; tmp receives its name.
 */
static int create_temp(const char *file, char *tmp, size_t tmpsz)
{
	int n = snprintf(tmp, tmpsz, "%s.XXXXXX", file);
	if (n < 0 || (size_t)n >= tmpsz)
		return -ENAMETOOLONG;
	int fd = mkostemp(tmp, O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* Give the new file the old one's owner and mode (say root:ftp 0640, for the workers). */
static int keep_owner_and_mode(int fd, FILE *in)
{
	struct stat st;
	if (fstat(fileno(in), &st) < 0)
		return -errno;
	if (fchown(fd, st.st_uid, st.st_gid) < 0 || fchmod(fd, st.st_mode & 0777) < 0)
		return -errno;
	return 0;
}

/* Make the rename itself survive a crash. */
static int sync_dir_of(const char *file)
{
	char dir[PATH_MAX];
	if (str_copy(dir, sizeof(dir), file) < 0)
		return -ENAMETOOLONG;
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		str_copy(dir, sizeof(dir), ".");
	else
		slash[slash == dir ? 1 : 0] = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* Open the current users file, if there is one; a missing one is no error (*in NULL). */
static int open_current(const char *file, FILE **in)
{
	*in = fopen(file, "re");
	if (*in == NULL)
		return errno == ENOENT ? 0 : -errno;
	struct stat st;
	int e = fstat(fileno(*in), &st) < 0 ? errno : S_ISREG(st.st_mode) ? 0 : EINVAL;
	if (e != 0) {
		fclose(*in);
		*in = NULL;
		return -e;
	}
	return 0;
}

/* An error from a stdio call that may not have set errno. */
static int stdio_error(void)
{
	return errno != 0 ? -errno : -EIO;
}

/*
 * Write the new content through out (which owns fd) and close it; returns 0 or -errno.
 * Owner and mode are kept or nothing is written: a users file that silently became
 * root's own would lock the unprivileged workers out of it.
 */
static int write_new(FILE *out, int fd, FILE *in, passwd_copy_fn *copy, void *arg,
		     bool *refused, FILE *err)
{
	int rc = copy(in, out, arg);
	*refused = rc < 0;
	errno = 0;
	if (rc < 0)
		; /* nothing is kept of it */
	else if (in != NULL && ferror(in))
		rc = stdio_error(); /* a half-read file must not replace the whole one */
	else if (in != NULL && (rc = keep_owner_and_mode(fd, in)) < 0)
		fprintf(err, "ferryd passwd: cannot give the new file the old one's owner and mode\n");
	else if (fflush(out) != 0 || ferror(out))
		rc = stdio_error();
	else if (fsync(fd) < 0)
		rc = -errno;
	if (fclose(out) != 0 && rc == 0)
		rc = stdio_error();
	return rc;
}

static void discard_temp(const char *tmp, FILE *err)
{
	if (unlink(tmp) < 0)
		fprintf(err, "ferryd passwd: cannot remove %s: %s\n", tmp, strerror(errno));
}

int passwd_replace_file(const char *file, passwd_copy_fn *copy, void *arg, FILE *err)
{
	FILE *in;
	int rc = open_current(file, &in);
	if (rc < 0) {
		fprintf(err, "ferryd passwd: %s: %s\n", file, strerror(-rc));
		return rc;
	}
	char tmp[PATH_MAX];
	int fd = create_temp(file, tmp, sizeof(tmp));
	FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (out == NULL) {
		rc = fd >= 0 ? -errno : fd;
		fprintf(err, "ferryd passwd: cannot create a file beside %s: %s\n", file, strerror(-rc));
		if (fd >= 0) {
			close(fd);
			discard_temp(tmp, err);
		}
		if (in != NULL)
			fclose(in);
		return rc;
	}
	bool refused;
	rc = write_new(out, fd, in, copy, arg, &refused, err);
	if (in != NULL)
		fclose(in);
	if (rc < 0 && !refused) {
		fprintf(err, "ferryd passwd: cannot write %s: %s\n", tmp, strerror(-rc));
	} else if (rc == 0 && rename(tmp, file) < 0) {
		rc = -errno;
		fprintf(err, "ferryd passwd: cannot rename %s to %s: %s\n", tmp, file, strerror(-rc));
	}
	if (rc < 0) {
		discard_temp(tmp, err);
		return rc;
	}
	int drc = sync_dir_of(file);
	if (drc < 0)
		fprintf(err, "ferryd passwd: %s written, but its directory not synced: %s\n", file,
			strerror(-drc));
	return 0;
}

/* passwd_update_file()'s copy: the change, or a refusal of a new user without a home. */
struct change_copy {
	const struct passwd_change *c;
	bool found;
	FILE *err;
};

static int copy_change(FILE *in, FILE *out, void *arg)
{
	struct change_copy *x = arg;
	copy_with_change(in, out, x->c, &x->found);
	if (!x->found && x->c->home == NULL) {
		fprintf(x->err, "ferryd passwd: new user '%s' needs --home DIR\n", x->c->name);
		return -EINVAL;
	}
	return 0;
}

int passwd_update_file(const char *file, const struct passwd_change *c, bool *added, FILE *err)
{
	struct change_copy x = { .c = c, .err = err };
	int rc = passwd_replace_file(file, copy_change, &x, err);
	*added = !x.found;
	return rc;
}

int passwd_main(int argc, char **argv)
{
	const char *file;
	struct passwd_change c = { 0 };
	int rc = parse_args(argc, argv, &file, &c);
	if (rc != 0)
		return rc;
	char pw[PASSWD_PASSWORD_MAX];
	char hash[256];
	rc = passwd_read_new(pw, sizeof(pw));
	if (rc == 0)
		rc = passwd_hash(pw, hash, sizeof(hash));
	explicit_bzero(pw, sizeof(pw));
	if (rc != 0)
		return rc;
	c.hash = hash;
	bool added;
	rc = passwd_update_file(file, &c, &added, stderr);
	if (rc < 0)
		return rc == -EINVAL ? 2 : 1;
	fprintf(stderr, "ferryd passwd: %s user '%s' in %s\n", added ? "added" : "updated", c.name,
		file);
	return 0;
}

/*
 * passwd.c: the users-file editor.  The new file is written beside the old one and renamed
 * over it, so a crash never leaves a half-written users file.
 */
#include "server/passwd.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
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
		fprintf(stderr, "%s", prompt);
		if (tcgetattr(STDIN_FILENO, &old) < 0)
			return -1;
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0)
			return -1;
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

int passwd_main(int argc, char **argv)
{
	if (argc < 4)
		return usage();
	const char *file = argv[2], *name = argv[3];
	const char *home = NULL, *perms = NULL;
	for (int i = 4; i < argc; i++) {
		if (strcmp(argv[i], "--home") == 0 && i + 1 < argc)
			home = argv[++i];
		else if (strcmp(argv[i], "--permissions") == 0 && i + 1 < argc)
			perms = argv[++i];
		else
			return usage();
	}
	unsigned bits;
	if (perms != NULL && perm_parse(perms, &bits) < 0) {
		fprintf(stderr, "ferryd passwd: bad permissions '%s'\n", perms);
		return 2;
	}
	if (home != NULL && home[0] != '/') {
		fprintf(stderr, "ferryd passwd: --home must be an absolute path\n");
		return 2;
	}
	if (strchr(name, ':') != NULL || strchr(name, ' ') != NULL || name[0] == '\0' ||
	    strlen(name) >= 64) {
		fprintf(stderr, "ferryd passwd: bad user name\n");
		return 2;
	}

	char pw1[512], pw2[512];
	if (read_password("Password: ", pw1, sizeof(pw1)) < 0) {
		fprintf(stderr, "ferryd passwd: no password read\n");
		return 1;
	}
	if (isatty(STDIN_FILENO)) {
		if (read_password("Again: ", pw2, sizeof(pw2)) < 0 || strcmp(pw1, pw2) != 0) {
			fprintf(stderr, "ferryd passwd: passwords differ\n");
			return 1;
		}
	}
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;
	memset(&cd, 0, sizeof(cd));
	/* NULL prefix: libxcrypt's preferred method, yescrypt on Debian. */
	if (crypt_gensalt_rn(NULL, 0, NULL, 0, salt, sizeof(salt)) == NULL) {
		fprintf(stderr, "ferryd passwd: cannot make a salt: %s\n", strerror(errno));
		return 1;
	}
	const char *hash = crypt_r(pw1, salt, &cd);
	explicit_bzero(pw1, sizeof(pw1));
	explicit_bzero(pw2, sizeof(pw2));
	if (hash == NULL || hash[0] == '*') {
		fprintf(stderr, "ferryd passwd: hashing failed\n");
		return 1;
	}

	char tmp[CONFIG_STR_MAX + 16];
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	FILE *in = fopen(file, "r");
	if (in == NULL && errno != ENOENT) {
		fprintf(stderr, "ferryd passwd: %s: %s\n", file, strerror(errno));
		return 1;
	}
	int ofd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	/* Keep an existing file's owner and mode (say, root:ftp 0640 so workers can read it). */
	struct stat ost;
	if (ofd >= 0 && in != NULL && fstat(fileno(in), &ost) == 0) {
		if (fchown(ofd, ost.st_uid, ost.st_gid) < 0 || fchmod(ofd, ost.st_mode & 0777) < 0)
			fprintf(stderr, "ferryd passwd: cannot keep the owner and mode of %s\n", file);
	}
	FILE *out = ofd >= 0 ? fdopen(ofd, "w") : NULL;
	if (out == NULL) {
		fprintf(stderr, "ferryd passwd: %s: %s\n", tmp, strerror(errno));
		if (in != NULL)
			fclose(in);
		return 1;
	}
	bool found = false;
	char line[8192];
	while (in != NULL && fgets(line, sizeof(line), in) != NULL) {
		struct user_entry e;
		const char *why;
		char copy[8192];
		str_copy(copy, sizeof(copy), line);
		copy[strcspn(copy, "\r\n")] = '\0';
		if (copy[0] != '#' && users_parse_line(copy, &e, &why) == 0 &&
		    strcmp(e.name, name) == 0) {
			char p[256] = "";
			const char *colon = strrchr(copy, ':');
			str_copy(p, sizeof(p), colon != NULL ? colon + 1 : "read");
			fprintf(out, "%s:%s:%s:%s\n", name, hash, home != NULL ? home : e.home,
				perms != NULL ? perms : p);
			found = true;
			continue;
		}
		fputs(line, out);
	}
	if (in != NULL)
		fclose(in);
	if (!found) {
		if (home == NULL) {
			fprintf(stderr, "ferryd passwd: new user '%s' needs --home DIR\n", name);
			fclose(out);
			unlink(tmp);
			return 2;
		}
		fprintf(out, "%s:%s:%s:%s\n", name, hash, home, perms != NULL ? perms : "read");
	}
	if (fflush(out) != 0 || fsync(ofd) < 0 || fclose(out) != 0 || rename(tmp, file) < 0) {
		fprintf(stderr, "ferryd passwd: cannot write %s: %s\n", file, strerror(errno));
		unlink(tmp);
		return 1;
	}
	fprintf(stderr, "ferryd passwd: %s user '%s' in %s\n", found ? "updated" : "added", name,
		file);
	return 0;
}

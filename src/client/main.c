/*
 * main.c: ferry(1): the table of subcommands, and the one-shot ones (get, put, ls, rm,
 * mkdir, rmdir, mv).  mirror, shell and doctor live in files of their own (commands.h).
 *
 * Output: ls prints one line per entry in the same fixed format whatever the server and
 * whether it listed with MLSD or LIST; transfers print nothing but errors, apart from
 * the progress bar on a terminal (progress.h).  Each error is one line on stderr,
 * "ferry: <sentence>", and the exit status says its class (ftpc_exit_status()).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/cli.h"
#include "client/commands.h"
#include "client/ftp.h"
#include "client/listing_out.h"
#include "client/progress.h"

#ifndef FERRY_VERSION
#define FERRY_VERSION "0"
#endif

/* Positional words of a command (a "--" among them dropped); unknown options refused. */
static int words(const struct cli *c, int want_min, int want_max, const char **out)
{
	int n = 0;
	bool end = false;

	for (int i = 1; i < c->argc; i++) {
		const char *a = c->argv[i];
		if (!end && strcmp(a, "--") == 0) {
			end = true;
			continue;
		}
		if (!end && a[0] == '-' && a[1] != '\0') {
			cli_error("%s: unknown option %s (see ferry --help)", c->argv[0], a);
			return -1;
		}
		if (n >= want_max) {
			cli_error("%s: too many arguments (see ferry --help)", c->argv[0]);
			return -1;
		}
		out[n++] = a;
	}
	if (n < want_min) {
		cli_error("%s: missing argument (see ferry --help)", c->argv[0]);
		return -1;
	}
	return n;
}

static int fail(struct ftp *f, int rc)
{
	cli_error("%s", ftp_error(f));
	ftp_close(f);
	return ftpc_exit_status(rc);
}

/* The last component of a path ("" for "dir/"). */
static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s != NULL ? s + 1 : p;
}

static bool usable_name(const char *n)
{
	return n[0] != '\0' && strcmp(n, ".") != 0 && strcmp(n, "..") != 0;
}

/* Connect for a command on URL whose path must name something (need_path). */
static struct ftp *open_url(const struct cli *c, const char *arg, bool need_path,
			    struct ftp_url *u, int *status)
{
	*status = cli_url(arg, &c->o, u);
	if (*status != 0)
		return NULL;
	if (need_path && (u->path[0] == '\0' || strcmp(u->path, "/") == 0)) {
		cli_error("%s: the URL names no file or directory: %s", c->argv[0], arg);
		*status = 2;
		return NULL;
	}
	return cli_connect(u, &c->o, status);
}

static int transfer_done(struct progress *bar, int rc)
{
	progress_end(bar, rc == FTPC_OK);
	return rc;
}

static int cmd_get(const struct cli *c)
{
	const char *w[1];
	struct ftp_url u;
	int status;

	if (words(c, 1, 1, w) < 0)
		return 2;
	status = cli_url(w[0], &c->o, &u);
	if (status != 0)
		return status;
	const char *remote = u.path;
	const char *local = c->output != NULL ? c->output : base_name(remote);
	if (remote[0] == '\0' || remote[strlen(remote) - 1] == '/') {
		cli_error("get: the URL names a directory, not a file: %s", w[0]);
		return 2;
	}
	if (!usable_name(local)) {
		cli_error("get: no local name for %s: give one with -o", remote);
		return 2;
	}
	bool to_stdout = strcmp(local, "-") == 0;
	if (to_stdout && c->resume) {
		cli_error("get: --continue needs a file, not standard output");
		return 2;
	}
	struct ftp *f = cli_connect(&u, &c->o, &status);
	if (f == NULL)
		return status;

	uint64_t rsize = 0, offset = 0;
	int rc = ftp_size(f, remote, &rsize);
	bool have_size = rc == FTPC_OK;
	/* Not there: say so before a local file is created or cut. */
	if (rc == FTPC_ENOTFOUND || rc == FTPC_ECONNECT || rc == FTPC_ELOGIN)
		return fail(f, rc);

	int fd = STDOUT_FILENO;
	if (!to_stdout) {
		int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (c->resume ? 0 : O_TRUNC);
		fd = open(local, flags, 0666);
		if (fd < 0) {
			cli_error("cannot write %s: %s", local, strerror(errno));
			ftp_close(f);
			return ftpc_exit_status(FTPC_ELOCAL);
		}
	}
	if (c->resume) {
		struct stat st;
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			cli_error("get: --continue: %s is not a regular file", local);
			close(fd);
			ftp_close(f);
			return ftpc_exit_status(FTPC_ELOCAL);
		}
		offset = (uint64_t)st.st_size;
		if (have_size && offset > rsize) {
			cli_error("get: %s (%" PRIu64 " bytes) is longer than %s (%" PRIu64
				  " bytes): nothing to resume", local, offset, remote, rsize);
			close(fd);
			ftp_close(f);
			return ftpc_exit_status(FTPC_ELOCAL);
		}
		if (lseek(fd, (off_t)offset, SEEK_SET) < 0) {
			cli_error("get: %s: %s", local, strerror(errno));
			close(fd);
			ftp_close(f);
			return ftpc_exit_status(FTPC_ELOCAL);
		}
	}
	if (c->resume && have_size && offset == rsize) {
		rc = FTPC_OK;   /* already complete */
	} else {
		/* The file itself goes to standard output: no bar to mix into it. */
		struct progress *bar = to_stdout ? NULL : progress_begin(base_name(remote), &c->o);
		rc = transfer_done(bar, ftp_get(f, remote, fd, offset,
						bar != NULL ? progress_update : NULL, bar));
	}
	if (!to_stdout && close(fd) != 0 && rc == FTPC_OK) {
		cli_error("cannot write %s: %s", local, strerror(errno));
		ftp_close(f);
		return ftpc_exit_status(FTPC_ELOCAL);
	}
	if (rc != FTPC_OK)
		return fail(f, rc);
	ftp_close(f);
	return 0;
}

static int cmd_put(const struct cli *c)
{
	const char *w[2];
	struct ftp_url u;
	char remote[sizeof(u.path) + 256];
	int status;

	if (words(c, 2, 2, w) < 0)
		return 2;
	const char *local = w[0];
	status = cli_url(w[1], &c->o, &u);
	if (status != 0)
		return status;
	int fd = strcmp(local, "-") == 0 ? STDIN_FILENO : open(local, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		cli_error("cannot read %s: %s", local, strerror(errno));
		return ftpc_exit_status(FTPC_ELOCAL);
	}
	if (S_ISDIR(st.st_mode)) {
		cli_error("put: %s is a directory (mirror --reverse sends directories)", local);
		return ftpc_exit_status(FTPC_ELOCAL);
	}
	size_t pl = strlen(u.path);
	if (pl == 0 || u.path[pl - 1] == '/') {
		const char *b = base_name(local);
		if (!usable_name(b) || fd == STDIN_FILENO) {
			cli_error("put: the URL names a directory: add the remote file's name");
			return 2;
		}
		snprintf(remote, sizeof(remote), "%s%s", u.path, b);
	} else {
		snprintf(remote, sizeof(remote), "%s", u.path);
	}
	if (c->resume && !S_ISREG(st.st_mode)) {
		cli_error("put: --continue needs a regular file");
		return 2;
	}
	struct ftp *f = cli_connect(&u, &c->o, &status);
	if (f == NULL)
		return status;

	uint64_t offset = 0;
	int rc;
	if (c->resume) {
		rc = ftp_size(f, remote, &offset);
		if (rc == FTPC_ENOTFOUND) {
			offset = 0;
		} else if (rc != FTPC_OK) {
			return fail(f, rc);
		} else if (offset > (uint64_t)st.st_size) {
			cli_error("put: %s (%" PRIu64 " bytes) is already longer than %s (%" PRIu64
				  " bytes): nothing to resume", remote, offset, local,
				  (uint64_t)st.st_size);
			ftp_close(f);
			return ftpc_exit_status(FTPC_EREMOTE);
		} else if (offset == (uint64_t)st.st_size) {
			ftp_close(f);
			return 0;
		}
		if (lseek(fd, (off_t)offset, SEEK_SET) < 0) {
			cli_error("put: %s: %s", local, strerror(errno));
			ftp_close(f);
			return ftpc_exit_status(FTPC_ELOCAL);
		}
	}
	struct progress *bar = progress_begin(base_name(remote), &c->o);
	rc = transfer_done(bar, ftp_put(f, fd, remote, offset,
					bar != NULL ? progress_update : NULL, bar));
	if (fd != STDIN_FILENO)
		close(fd);
	if (rc != FTPC_OK)
		return fail(f, rc);
	ftp_close(f);
	return 0;
}

/* ---- ls ---- */

static int cmd_ls(const struct cli *c)
{
	const char *w[1];
	struct ftp_url u;
	struct ls_list l = { 0 };
	int status;

	if (words(c, 1, 1, w) < 0)
		return 2;
	struct ftp *f = open_url(c, w[0], false, &u, &status);
	if (f == NULL)
		return status;
	int rc = ftp_list(f, u.path, ls_collect, &l);
	if (rc == FTPC_OK && l.oom) {
		cli_error("out of memory");
		rc = FTPC_ELOCAL;
	} else if (rc == FTPC_OK && ls_print_all(&l, stdout) < 0) {
		rc = FTPC_ELOCAL;
	}
	bool oom = l.oom;
	ls_free(&l);
	if (rc != FTPC_OK)
		return oom || rc == FTPC_ELOCAL ? (ftp_close(f), ftpc_exit_status(rc)) : fail(f, rc);
	ftp_close(f);
	return 0;
}

/* rm, mkdir, rmdir: one command on the URL's path. */
static int one_path(const struct cli *c, int (*op)(struct ftp *, const char *))
{
	const char *w[1];
	struct ftp_url u;
	int status;

	if (words(c, 1, 1, w) < 0)
		return 2;
	struct ftp *f = open_url(c, w[0], true, &u, &status);
	if (f == NULL)
		return status;
	/* "dir/" names the directory dir. */
	size_t n = strlen(u.path);
	while (n > 1 && u.path[n - 1] == '/')
		u.path[--n] = '\0';
	int rc = op(f, u.path);
	if (rc != FTPC_OK)
		return fail(f, rc);
	ftp_close(f);
	return 0;
}

static int cmd_rm(const struct cli *c)
{
	return one_path(c, ftp_delete);
}

static int cmd_mkdir(const struct cli *c)
{
	return one_path(c, ftp_mkdir);
}

static int cmd_rmdir(const struct cli *c)
{
	return one_path(c, ftp_rmdir);
}

static int cmd_mv(const struct cli *c)
{
	const char *w[2];
	struct ftp_url u;
	int status;

	if (words(c, 2, 2, w) < 0)
		return 2;
	if (w[1][0] == '\0') {
		cli_error("mv: the new name is empty");
		return 2;
	}
	struct ftp *f = open_url(c, w[0], true, &u, &status);
	if (f == NULL)
		return status;
	int rc = ftp_rename(f, u.path, w[1]);
	if (rc != FTPC_OK)
		return fail(f, rc);
	ftp_close(f);
	return 0;
}

static int run_mirror(const struct cli *c)
{
	return cmd_mirror(c->argc, c->argv, &c->o);
}

static int run_shell(const struct cli *c)
{
	return cmd_shell(c->argc, c->argv, &c->o);
}

static int run_doctor(const struct cli *c)
{
	return cmd_doctor(c->argc, c->argv, &c->o);
}

struct subcommand {
	const char *name;
	const char *args;
	int (*run)(const struct cli *c);
	const char *doc;
};

static const struct subcommand subcommands[] = {
	{ "get", "URL [-o FILE]", cmd_get, "download a file (-o -: to standard output)" },
	{ "put", "FILE URL", cmd_put, "upload a file (URL ending in '/': under FILE's name)" },
	{ "ls", "URL", cmd_ls, "list a directory: type, size, time (UTC), name" },
	{ "rm", "URL", cmd_rm, "delete a file" },
	{ "mkdir", "URL", cmd_mkdir, "make a directory" },
	{ "rmdir", "URL", cmd_rmdir, "remove an empty directory" },
	{ "mv", "URL NEWPATH", cmd_mv, "rename (NEWPATH is relative to the login directory)" },
	{ "mirror", "[--reverse] URL DIR | DIR URL", run_mirror,
	  "copy a tree one way, sending only changed files" },
	{ "shell", "URL", run_shell, "an interactive session" },
	{ "doctor", "URL [--json]", run_doctor, "diagnose connectivity, firewalls, NAT and TLS" },
};
#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void help(FILE *out)
{
	fprintf(out, "usage: ferry [OPTIONS] COMMAND ARGUMENTS...\n\n"
		     "URLs: ftp://[USER[:PASSWORD]@]HOST[:PORT]/PATH (explicit TLS with --tls),\n"
		     "      ftps://... (implicit TLS, port 990); paths are relative to the login\n"
		     "      directory, ftp://HOST//PATH is absolute. Missing credentials come from\n"
		     "      ~/.netrc, else anonymous.\n\nCommands:\n");
	for (size_t i = 0; i < N_SUBCOMMANDS; i++) {
		char head[64];
		snprintf(head, sizeof(head), "%s %s", subcommands[i].name, subcommands[i].args);
		fprintf(out, "  %-34s %s\n", head, subcommands[i].doc);
	}
	fprintf(out, "\nOptions (anywhere on the line, before a '--'):\n");
	cli_options_help(out);
	fprintf(out, "\nExit status: 0 done, 2 usage, 3 connection, 4 login, 5 not found,\n"
		     "6 transfer (data connection), 7 TLS, 8 other refusal by the server,\n"
		     "9 local file.  See ferry(1).\n");
}

int main(int argc, char **argv)
{
	struct cli c;

	/* A peer that goes away is an error to report, not a signal to die of. */
	signal(SIGPIPE, SIG_IGN);
	if (cli_parse(argc, argv, &c) != 0) {
		free(c.argv);
		return 2;
	}
	int status = 2;
	if (c.help) {
		help(stdout);
		status = 0;
	} else if (c.version) {
		printf("ferry %s\n", FERRY_VERSION);
		status = 0;
	} else if (c.argc == 0) {
		cli_error("no command given (see ferry --help)");
	} else {
		const struct subcommand *sc = NULL;
		for (size_t i = 0; i < N_SUBCOMMANDS; i++) {
			if (strcmp(subcommands[i].name, c.argv[0]) == 0)
				sc = &subcommands[i];
		}
		if (sc == NULL && c.argv[0][0] == '-')
			cli_error("unknown option %s (see ferry --help)", c.argv[0]);
		else if (sc == NULL)
			cli_error("unknown command '%s' (see ferry --help)", c.argv[0]);
		else if (c.output != NULL && sc->run != cmd_get)
			cli_error("%s: -o is for get only", sc->name);
		else if (c.resume && sc->run != cmd_get && sc->run != cmd_put)
			cli_error("%s: --continue is for get and put only", sc->name);
		else
			status = sc->run(&c);
	}
	free(c.argv);
	if (fflush(stdout) != 0 && status == 0) {
		cli_error("cannot write the output: %s", strerror(errno));
		status = 9;
	}
	return status;
}

/*
 * mirror.c: ferry mirror URL DIR (download a remote tree into DIR) and ferry mirror
 * --reverse DIR URL (upload DIR's tree), sending only what changed: a file goes when the
 * other side has none of that name, or its size differs, or its modification time does.
 * This file is the command: its arguments, the top directory on both sides, the
 * server's features, the way each failure is reported and counted, and the summary.
 * The walks are in mirror_walk.c; mirror_int.h lists the other files.
 *
 * Times: the remote time is MLSD's modify fact, or MDTM when the server listed with LIST
 * (whose times are to the minute at best).  A download sets the local file's time to the
 * remote one; an upload sets the remote file's time with MFMT where the server has it, so
 * that the next run sees equal times.  Without MFMT the server stamps uploads with the
 * time they arrived, so "the remote file is at least as new" counts as up to date.
 *
 * What mirror must never do: write, create or remove anything outside DIR.  Every name a
 * server lists is checked before it is used (mirror_entries.c), and every local system
 * call is in mirror_local.c, through directory descriptors that follow no link; this
 * file only closes the one of DIR.
 *
 * One failing file is reported on one line and counted; the rest goes on, unless the
 * control connection is gone.  The exit status is the class of the first failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/commands.h"
#include "client/ftp.h"
#include "client/mirror_int.h"

/* ---- messages ---- */

static void fail_count(struct mirror *m, int err)
{
	m->failed++;
	if (m->first_err == FTPC_OK)
		m->first_err = err;
	if (err == FTPC_ECONNECT)
		m->gone = true;
}

/* "ferry: <prefix><sentence>", the sentence cut to one line's worth. */
static void vreport(const char *prefix, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	cli_error("%s%s", prefix, line);
}

void mirror_fail(struct mirror *m, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("", fmt, ap);
	va_end(ap);
	fail_count(m, err);
}

void mirror_engine_fail(struct mirror *m, int rc)
{
	mirror_fail(m, rc, "%s", ftp_error(m->f));
}

void mirror_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("warning: ", fmt, ap);
	va_end(ap);
}

const char *mirror_rel(const struct mirror *m, char *out, size_t outsz)
{
	return mpath_shown(&m->rel, out, outsz);
}

void mirror_neither(struct mirror *m, bool on_server, const char *what)
{
	char b[512];

	mirror_warn("%s is neither a file nor a directory%s: %s", mirror_rel(m, b, sizeof(b)),
		    on_server ? " on the server" : "", what);
}

void mirror_mismatch(struct mirror *m, enum kind want, bool upload)
{
	const char *k = want == K_DIR ? "directory" : "file";
	char b[512];

	if (upload)
		mirror_fail(m, FTPC_EREMOTE, "%s: a %s here, but not a %s on the server",
			    mirror_rel(m, b, sizeof(b)), k, k);
	else
		mirror_fail(m, FTPC_ELOCAL, "%s: a %s on the server, but not a %s here",
			    mirror_rel(m, b, sizeof(b)), k, k);
}

bool mirror_too_deep(struct mirror *m, int depth, int err, bool deleting)
{
	char b[512];

	if (depth <= MIRROR_DEPTH_MAX)
		return false;
	if (deleting)
		mirror_fail(m, err, "%s: too deep to delete", mirror_rel(m, b, sizeof(b)));
	else
		mirror_fail(m, err, "%s: more than %d directories deep: not mirrored",
			    mirror_rel(m, b, sizeof(b)), MIRROR_DEPTH_MAX);
	return true;
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

/* The session is there (and DIR): the walk one way or the other, then the summary. */
static int run(struct mirror *m, int dfd)
{
	m->mlsd = ftp_has_feature(m->f, "MLSD");
	m->mdtm = ftp_has_feature(m->f, "MDTM");
	m->mfmt = ftp_has_feature(m->f, "MFMT");
	if (m->reverse)
		mirror_up(m, dfd);
	else
		mirror_down(m, dfd);
	summary(m);
	return ftpc_exit_status(m->first_err);
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
		status = local_top_open(m, dir, &dfd, &missing);
	if (status == 0)
		m->f = cli_connect(&u, o, &status);
	if (m->f != NULL && missing)
		status = local_top_make(m, dir, &dfd);
	if (m->f != NULL && status == 0)
		status = run(m, dfd);
	ftp_close(m->f);
	if (dfd >= 0)
		close(dfd);
	free(m);
	return status;
}

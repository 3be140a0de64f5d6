/*
 * doctor_transfer.c: the doctor's listing and download checks.  The NLST that each mode's
 * probe carried is the listing check of that mode; the download check fetches one small
 * file (at most SMALL_FILE bytes: the URL's own file, or the smallest one a listing
 * shows) once in each mode that works, and compares the bytes that came with its size.
 *
 * What this file must never do: fetch a large file (a URL naming one gets its directory
 * listed, and no download), or take a name with CR or LF from a listing into a command.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/doctor_int.h"
#include "common/reply.h"

/* The order in which the report shows the modes. */
static const enum data_kind report_order[N_KINDS] = { DK_PASV, DK_EPSV, DK_EPRT, DK_PORT };

/* snprintf, for texts where cutting a long name short is acceptable. */
static void say(char *dst, size_t dstsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *dst, size_t dstsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, dstsz, fmt, ap);
	va_end(ap);
}

/* A check about one mode: "list (EPSV)", "download (PASV)". */
static struct check *mode_check_begin(struct doctor *dr, struct fam *fm, const char *name,
				      enum data_kind k)
{
	char label[32];

	snprintf(label, sizeof(label), "%s (%s)", name, kind_names[k]);
	return check_begin(dr, fm->family, name, label, kind_names[k]);
}

static void transfer_failed_fix(struct check *c, int code)
{
	if (code == R_550_UNAVAILABLE || code == R_450_FILE_BUSY)
		check_fix(c, "give a URL whose path names a directory (or file) that exists and "
			     "may be read");
	else if (code == R_522_TLS_REFUSED || code == R_534_POLICY || code == R_521_PROT_REFUSED)
		check_fix(c, "the server refused the data connection's TLS: it must accept "
			     "protected data connections that resume the control connection's "
			     "session");
	else if (code == R_530_NOT_LOGGED_IN)
		check_fix(c, "the user must be allowed to list and download");
	else
		check_fix(c, "the data connection broke: check the server's log, and any firewall "
			     "or NAT that cuts connections on the way");
}

/* ---- what to list, what to download ---- */

void choose_paths(struct doctor *dr, struct fam *fm)
{
	const char *path = dr->u.path;
	size_t n = strlen(path);
	uint64_t size;

	snprintf(fm->dir, sizeof(fm->dir), "%s", path);
	if (n == 0 || path[n - 1] == '/' || ftp_size(fm->f, path, &size) != FTPC_OK)
		return;
	const char *slash = strrchr(path, '/');
	size_t dl = slash != NULL ? (size_t)(slash - path) + 1 : 0;
	memcpy(fm->dir, path, dl);
	fm->dir[dl] = '\0';
	if (size > SMALL_FILE) {
		say(fm->file_note, sizeof(fm->file_note), "%s is %" PRIu64 " bytes, more than "
		    "the %d the doctor downloads", path, size, SMALL_FILE);
		return;   /* its directory is listed all the same */
	}
	say(fm->file, sizeof(fm->file), "%s", path);
	fm->file_size = size;
}

struct smallest {
	char name[VPATH_MAX];
	uint64_t size;
	bool found;
	size_t entries;
};

static void pick_small(void *ctx, const struct listing_parsed *e)
{
	struct smallest *s = ctx;

	s->entries++;
	if (strcmp(e->type, "file") != 0 || !e->has_size || e->size > SMALL_FILE ||
	    e->name_len == 0 || e->name_len >= sizeof(s->name) ||
	    memchr(e->name, '\r', e->name_len) != NULL || memchr(e->name, '\n', e->name_len) != NULL)
		return;
	if (s->found && e->size >= s->size)
		return;
	memcpy(s->name, e->name, e->name_len);
	s->name[e->name_len] = '\0';
	s->size = e->size;
	s->found = true;
}

/* The mode the engine's listing can use, given what the probes saw. */
static bool listing_mode(const struct fam *fm, enum data_mode *m)
{
	bool epsv_refused = fm->pr[DK_EPSV].p.setup_code != R_229_EXTENDED_PASSIVE;
	bool eprt_refused = fm->pr[DK_EPRT].p.setup_code / 100 != 2;

	if (mode_works(fm, DK_EPSV) || (mode_works(fm, DK_PASV) && epsv_refused))
		*m = DATA_PASSIVE;
	else if (mode_works(fm, DK_EPRT) || (mode_works(fm, DK_PORT) && eprt_refused))
		*m = DATA_ACTIVE;
	else
		return false;
	return true;
}

/* The listing found s (or not): fm->file, or why there is none in fm->file_note. */
static void take_smallest(struct fam *fm, const struct smallest *s)
{
	size_t dl = strlen(fm->dir);

	if (!s->found) {
		say(fm->file_note, sizeof(fm->file_note), "no file of at most %d bytes in %s "
		    "(%zu entries): put a small file there to check downloads", SMALL_FILE,
		    fm->dir[0] ? fm->dir : "the login directory", s->entries);
	} else if (dl + strlen(s->name) + 2 > sizeof(fm->file)) {
		say(fm->file_note, sizeof(fm->file_note), "the file's path is too long");
	} else {
		say(fm->file, sizeof(fm->file), "%s%s%s", fm->dir,
		    dl > 0 && fm->dir[dl - 1] != '/' ? "/" : "", s->name);
		fm->file_size = s->size;
	}
}

/* The smallest file of the directory, by a listing in a mode that works. */
static void find_file(struct doctor *dr, struct fam *fm)
{
	struct smallest *s = calloc(1, sizeof(*s));
	enum data_mode m;

	if (s == NULL) {
		say(fm->file_note, sizeof(fm->file_note), "out of memory");
		return;
	}
	if (fm->f == NULL || !listing_mode(fm, &m)) {
		say(fm->file_note, sizeof(fm->file_note), "no data connection mode works "
		    "well enough to list %s", fm->dir[0] ? fm->dir : "the login directory");
		free(s);
		return;
	}
	ftp_set_mode(fm->f, m);
	int rc = ftp_list(fm->f, fm->dir, pick_small, s);
	if (rc == FTPC_OK) {
		take_smallest(fm, s);
	} else {
		say(fm->file_note, sizeof(fm->file_note), "the listing to find a file failed: %s",
		    ftp_error(fm->f));
		if (rc == FTPC_ECONNECT)
			session_reopen(dr, fm);
	}
	free(s);
}

/* ---- the checks ---- */

void check_listings(struct doctor *dr, struct fam *fm, const char *cmd)
{
	for (size_t i = 0; i < N_KINDS; i++) {
		enum data_kind k = report_order[i];
		const struct probe *pr = &fm->pr[k];
		if (!probe_connected(pr))
			continue;
		struct check *c = mode_check_begin(dr, fm, "list", k);
		const struct ftp_data_probe *p = &pr->p;
		probe_details(c, pr);
		detail_int(c, "bytes", (long long)p->bytes);
		detail_bool(c, "tls", p->tls);
		if (p->final_code / 100 == 2) {
			check_why(c, "%s: %" PRIu64 " bytes over a%s data connection: %s", cmd,
				  p->bytes, p->tls ? " protected" : "n unprotected", p->final_reply);
			check_end(dr, V_PASS);
			continue;
		}
		check_why(c, "%s: %s", cmd, p->final_reply[0] ? p->final_reply : "no final reply");
		transfer_failed_fix(c, p->final_code);
		check_end(dr, V_FAIL);
	}
}

/* RETR of fm->file in mode k (cmd: "RETR <file>"). */
static void download_check(struct doctor *dr, struct fam *fm, enum data_kind k, const char *cmd)
{
	struct check *c = mode_check_begin(dr, fm, "download", k);
	struct probe pr;

	probe_run(dr, fm, &pr, k, cmd);
	if (probe_skipped(dr, &pr))
		return;
	const struct ftp_data_probe *p = &pr.p;
	probe_details(c, &pr);
	detail_str(c, "file", "%s", fm->file);
	detail_int(c, "size", (long long)fm->file_size);
	detail_int(c, "bytes", (long long)p->bytes);
	detail_real(c, "seconds", pr.seconds);
	detail_bool(c, "tls", p->tls);
	if (p->final_code / 100 == 2 && p->bytes == fm->file_size) {
		check_why(c, "RETR %s: %" PRIu64 " bytes in %.1f ms: %s", fm->file, p->bytes,
			  pr.seconds * 1000.0, p->final_reply);
		check_end(dr, V_PASS);
	} else if (p->final_code / 100 == 2) {
		check_why(c, "RETR %s: %" PRIu64 " bytes of %" PRIu64 " (%s)", fm->file, p->bytes,
			  fm->file_size, p->final_reply);
		check_fix(c, "the transfer was cut short: check the server's log, and any "
			     "firewall or NAT on the way");
		check_end(dr, V_FAIL);
	} else {
		check_why(c, "RETR %s: %s", fm->file, p->final_reply[0] ? p->final_reply
			  : p->setup_reply[0] ? p->setup_reply : "no data connection");
		transfer_failed_fix(c, p->final_code);
		check_end(dr, V_FAIL);
	}
}

void check_downloads(struct doctor *dr, struct fam *fm)
{
	char cmd[VPATH_MAX + 8];
	bool any = false;

	if (fm->file[0] == '\0' && fm->file_note[0] == '\0')
		find_file(dr, fm);
	if (fm->file[0] == '\0') {
		check_begin(dr, fm->family, "download", "download", NULL);
		check_skip(dr, "not checked: %s", fm->file_note);
		return;
	}
	snprintf(cmd, sizeof(cmd), "RETR %s", fm->file);
	for (size_t i = 0; i < N_KINDS; i++) {
		if (mode_works(fm, report_order[i])) {
			any = true;
			download_check(dr, fm, report_order[i], cmd);
		}
	}
	if (!any) {
		check_begin(dr, fm->family, "download", "download", NULL);
		check_skip(dr, "not checked: no data connection mode works");
	}
}

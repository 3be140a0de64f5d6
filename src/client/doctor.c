/*
 * doctor.c: `ferry doctor URL [--json]`, a diagnosis of the way to an FTP server in the
 * spirit of ftptest.net.  For each address family the host has (IPv4, IPv6; a literal
 * address has one), it checks the control connection and greeting, FEAT, the login, each
 * data connection mode on its own (PASV, EPSV, EPRT, PORT), a small listing and a small
 * download in each mode that works, and TLS (certificate, versions, session resumption on
 * two data connections in a row).  Each check ends as PASS, WARN, FAIL or SKIP with one
 * line of explanation, and for WARN and FAIL the firewall channel or the setting that
 * would fix it, in the words of docs/firewall.md.
 *
 * This file is the command: its arguments, the families to check, the order of the
 * checks once per family, and the exit status; the checks themselves are in the
 * doctor_*.c files that doctor_int.h lists.
 *
 * It must never touch a socket: sessions come from ftp_open(), data connections from
 * ftp_probe_data(), each made exactly one way with no fall-back, and the verdicts are
 * read from the engine's record of each step (struct ftp_data_probe).  Its own system
 * calls are the name resolution that says which families to check, and the clock.
 *
 * Probes are short (PROBE_MS for each connect and each reply, unless --timeout says
 * otherwise), so that a dropped connection becomes a verdict rather than a hang.
 *
 * Output: a line per check as it is made, or one JSON document at the end (--json).
 * Exit status: 0 when no check failed (warnings do not count), 1 when one did; 2 for bad
 * usage, 3 when the host has no address to check, 9 when the netrc file is unusable.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/commands.h"
#include "client/doctor_int.h"
#include "common/hostport.h"

/* ---- one family ---- */

/* The NLST probe of each mode the family has (PASV and PORT are IPv4's only). */
static void probe_modes(struct doctor *dr, struct fam *fm, const char *nlst)
{
	for (size_t i = 0; i < N_KINDS; i++) {
		enum data_kind k = (enum data_kind)i;
		if ((k == DK_PASV || k == DK_PORT) && fm->family != AF_INET)
			continue;
		doctor_note(dr, "probing %s", kind_names[k]);
		probe_run(dr, fm, &fm->pr[k], k, nlst);
	}
}

/* Every check after the session opened, in the report's order. */
static void checks_with_session(struct doctor *dr, struct fam *fm)
{
	char nlst[VPATH_MAX + 8];

	ftp_session_info(fm->f, &fm->si);
	check_connect(dr, fm);
	check_features(dr, fm);
	check_login(dr, fm);
	choose_paths(dr, fm);
	snprintf(nlst, sizeof(nlst), "NLST%s%s", fm->dir[0] ? " " : "", fm->dir);
	probe_modes(dr, fm, nlst);
	check_pasv(dr, fm);
	check_epsv(dr, fm);
	check_active(dr, fm, DK_EPRT);
	check_active(dr, fm, DK_PORT);
	check_listings(dr, fm, nlst);
	check_downloads(dr, fm);
	check_tls(dr, fm, nlst);
}

static void diagnose(struct doctor *dr, const struct family_seen *fs)
{
	struct fam *fm = calloc(1, sizeof(*fm));
	char err[600];
	int rc;

	report_family(dr, fs);
	if (fm == NULL) {
		struct check *c = check_begin(dr, fs->family, "connect", "connect", NULL);
		check_why(c, "out of memory");
		check_end(dr, V_FAIL);
		return;
	}
	fm->family = fs->family;
	if (control_open(dr, fm, &rc, err, sizeof(err)))
		checks_with_session(dr, fm);
	else
		control_failed(dr, fm, rc, err);
	ftp_close(fm->f);
	free(fm);
}

/* ---- the command ---- */

/* The addresses of family af in res, each once, at most ADDRS_MAX. */
static void add_addresses(struct family_seen *fs, int af, const struct addrinfo *res)
{
	fs->family = af;
	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		struct sockaddr_storage ss;
		char a[INET6_ADDRSTRLEN];
		if (ai->ai_family != af || ai->ai_addrlen > sizeof(ss))
			continue;
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		hostport_ntop(&ss, a, sizeof(a));
		bool dup = false;
		for (size_t j = 0; j < fs->n; j++)
			dup = dup || strcmp(fs->addrs[j], a) == 0;
		if (!dup && fs->n < ADDRS_MAX)
			snprintf(fs->addrs[fs->n++], sizeof(fs->addrs[0]), "%s", a);
	}
}

/* Which families the host has addresses in (as -4/-6 allow), IPv4 first. */
static int resolve(struct doctor *dr, int family)
{
	static const int order[] = { AF_INET, AF_INET6 };
	struct addrinfo hints, *res = NULL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	int g = getaddrinfo(dr->u.host, NULL, &hints, &res);
	if (g != 0) {
		cli_error("doctor: cannot resolve %s%s: %s", dr->u.host,
			  family == AF_INET ? " for IPv4" : family == AF_INET6 ? " for IPv6" : "",
			  g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
		return 3;
	}
	for (size_t o = 0; o < 2; o++) {
		add_addresses(&dr->fams[dr->nfams], order[o], res);
		if (dr->fams[dr->nfams].n > 0)
			dr->nfams++;
	}
	freeaddrinfo(res);
	if (dr->nfams == 0) {
		cli_error("doctor: %s has no address to check", dr->u.host);
		return 3;
	}
	return 0;
}

static int parse_args(int argc, char **argv, const char **url, bool *json)
{
	bool end = false;

	*url = NULL;
	*json = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!end && strcmp(a, "--") == 0) {
			end = true;
		} else if (!end && strcmp(a, "--json") == 0) {
			*json = true;
		} else if (!end && a[0] == '-' && a[1] != '\0') {
			cli_error("doctor: unknown option %s (see ferry --help)", a);
			return 2;
		} else if (*url != NULL) {
			cli_error("doctor: too many arguments (see ferry --help)");
			return 2;
		} else {
			*url = a;
		}
	}
	if (*url == NULL) {
		cli_error("doctor: missing argument: the URL to diagnose (see ferry --help)");
		return 2;
	}
	return 0;
}

/* The sessions' options: the user's, with short probes and the engine's chatter kept aside. */
static void session_options(struct doctor *dr, const struct ftp_options *o)
{
	struct ftp_options def;

	ftp_options_default(&def);
	dr->o = *o;
	dr->verbose = o->verbose;
	/* An explicit --timeout is taken as it is; the 30 s default is too long for a probe. */
	dr->probe_ms = o->timeout_ms != def.timeout_ms && o->timeout_ms > 0 ? o->timeout_ms : PROBE_MS;
	dr->o.timeout_ms = dr->probe_ms;
	dr->o.mode = DATA_PASSIVE;
	if (o->verbose) {
		dr->o.log = o->log != NULL ? o->log : stderr;
		return;
	}
	dr->sink = open_memstream(&dr->sink_text, &dr->sink_len);
	dr->o.log = dr->sink != NULL ? dr->sink : stderr;
}

static void doctor_free(struct doctor *dr)
{
	if (dr->sink != NULL)
		fclose(dr->sink);
	free(dr->sink_text);
	free(dr->checks);
	explicit_bzero(dr, sizeof(*dr));
	free(dr);
}

int cmd_doctor(int argc, char **argv, const struct ftp_options *o)
{
	const char *arg;
	bool json;
	int status = parse_args(argc, argv, &arg, &json);

	if (status != 0)
		return status;
	struct doctor *dr = calloc(1, sizeof(*dr));
	if (dr == NULL) {
		cli_error("out of memory");
		return 9;
	}
	dr->json = json;
	status = cli_url(arg, o, &dr->u);
	if (status == 0)
		status = resolve(dr, o->family);
	if (status != 0) {
		doctor_free(dr);
		return status;
	}
	session_options(dr, o);
	url_format_masked(&dr->u, dr->shown, sizeof(dr->shown));
	report_start(dr);
	for (size_t i = 0; i < dr->nfams; i++)
		diagnose(dr, &dr->fams[i]);
	status = dr->count[V_FAIL] > 0 ? 1 : 0;
	report_end(dr, status);
	doctor_free(dr);
	return status;
}

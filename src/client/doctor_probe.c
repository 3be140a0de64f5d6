/*
 * doctor_probe.c: the doctor's sessions and probes.  A session is ftp_open() with the
 * URL's credentials (copied for the call, then wiped); a probe is one data connection
 * made exactly one way (ftp_probe_data(): EPSV, PASV, EPRT or PORT, no fall-back) for one
 * command, timed, with the engine's record of each step kept for the verdicts.
 *
 * A probe that loses the control connection (a server still trying to reach us when our
 * wait ends) costs the session: a new one is opened for the checks that follow, and the
 * checks whose probe could not run at all are skipped, saying why.
 *
 * What this file must never do: touch a socket itself, or keep a copy of the password
 * beyond the ftp_open() call it is for.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "client/doctor_int.h"

/* enum data_kind, in its order (DK_EPSV, DK_PASV, DK_EPRT, DK_PORT). */
const char *const kind_names[N_KINDS] = { "EPSV", "PASV", "EPRT", "PORT" };

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct ftp *session_open(struct doctor *dr, const struct ftp_options *o, int *rc, char *err,
			 size_t errsz, double *seconds)
{
	struct ftp_url u = dr->u;
	struct ftp_options eff = *o;

	if (u.implicit_tls)
		eff.tls = TLSU_REQUIRED;   /* ftps://: TLS from the first byte */
	double t0 = now_seconds();
	struct ftp *f = ftp_open(&u, &eff, rc, err, errsz);
	*seconds = now_seconds() - t0;
	explicit_bzero(&u, sizeof(u));
	return f;
}

void session_reopen(struct doctor *dr, struct fam *fm)
{
	char err[600];
	double secs;
	int rc;

	ftp_close(fm->f);
	doctor_note(dr, "the control connection was lost; opening a new session for what follows");
	fm->f = session_open(dr, &fm->o, &rc, err, sizeof(err), &secs);
	if (fm->f == NULL)
		doctor_note(dr, "no new session: %s", err);
}

void probe_run(struct doctor *dr, struct fam *fm, struct probe *pr, enum data_kind k,
	       const char *command)
{
	memset(pr, 0, sizeof(*pr));
	if (fm->f == NULL)
		return;
	pr->ran = true;
	double t0 = now_seconds();
	int rc = ftp_probe_data(fm->f, k, command, dr->probe_ms, &pr->p);
	pr->seconds = now_seconds() - t0;
	if (rc < 0) {
		pr->lost = true;
		session_reopen(dr, fm);
	}
}

bool probe_skipped(struct doctor *dr, const struct probe *pr)
{
	if (pr->ran)
		return false;
	check_skip(dr, "not checked: the control connection was lost and could not be made again");
	return true;
}

void probe_details(struct check *c, const struct probe *pr)
{
	const struct ftp_data_probe *p = &pr->p;

	detail_str(c, "setup_reply", "%s", p->setup_reply);
	detail_int(c, "port", p->port);
	detail_bool(c, "connected", p->connected);
	if (p->connected || p->connect_error != 0)
		detail_real(c, "connect_seconds", p->connect_seconds);
	if (p->connect_error != 0)
		detail_str(c, "connect_error", "%s", p->connect_error == ETIMEDOUT
			   ? "timed out" : strerror(p->connect_error));
	if (p->final_code != 0)
		detail_str(c, "final_reply", "%s", p->final_reply);
	if (pr->lost)
		detail_bool(c, "control_connection_lost", true);
}

bool probe_checkable(struct doctor *dr, const struct fam *fm, struct check *c,
		     const struct probe *pr, const char *ipv4_only)
{
	if (ipv4_only != NULL && fm->family != AF_INET) {
		check_skip(dr, "%s", ipv4_only);
		return false;
	}
	if (probe_skipped(dr, pr))
		return false;
	probe_details(c, pr);
	return true;
}

bool probe_unanswered(struct doctor *dr, struct check *c, const struct ftp_data_probe *p,
		      const char *cmd)
{
	if (p->setup_code != 0)
		return false;
	check_why(c, "no reply to %s: the control connection was lost", cmd);
	check_end(dr, V_FAIL);
	return true;
}

bool probe_connected(const struct probe *pr)
{
	return pr->ran && pr->p.connected;
}

bool mode_works(const struct fam *fm, enum data_kind k)
{
	const struct probe *pr = &fm->pr[k];

	return probe_connected(pr) && pr->p.final_code / 100 == 2;
}

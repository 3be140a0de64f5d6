/*
 * doctor_control.c: the doctor's checks of the control connection: that it connects and
 * the server greets us, what FEAT offers, and the login.  The main session of a family
 * is opened here as the user asked; when TLS fails, again without verifying the
 * certificate (so that the TLS checks can look at it), then in the clear (so that the
 * other checks can still be made; TLS is then reported as failed).  When no session can
 * be had at all, the error says which check failed and what would fix it.
 *
 * What this file must never do: count a password sent in the clear as a pass (a login
 * without TLS by a named user is a warning), or retry a session in the clear when the
 * user asked for ftps:// (TLS from the first byte).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "client/doctor_int.h"
#include "common/hostport.h"

/* ---- opening the main session ---- */

bool control_open(struct doctor *dr, struct fam *fm, int *rc, char *err, size_t errsz)
{
	fm->o = dr->o;
	fm->o.family = fm->family;
	fm->f = session_open(dr, &fm->o, rc, err, errsz, &fm->open_seconds);
	if (fm->f != NULL || *rc != FTPC_ETLS)
		return fm->f != NULL;
	snprintf(fm->tls_error, sizeof(fm->tls_error), "%s", err);
	if (!fm->o.insecure) {
		doctor_note(dr, "%s; again without verifying the certificate, to look at it", err);
		fm->o.insecure = true;
		fm->f = session_open(dr, &fm->o, rc, err, errsz, &fm->open_seconds);
	}
	if (fm->f == NULL && *rc == FTPC_ETLS && !dr->u.implicit_tls) {
		doctor_note(dr, "TLS failed again; going on without TLS for the other checks");
		fm->o.insecure = dr->o.insecure;
		fm->o.tls = TLSU_OFF;
		fm->tls_gave_up = true;
		fm->f = session_open(dr, &fm->o, rc, err, errsz, &fm->open_seconds);
	}
	return fm->f != NULL;
}

/* ---- no session ---- */

/* The server greeted us, then the session failed: TLS, or the login. */
static void failed_after_greeting(struct doctor *dr, struct fam *fm, int rc, const char *err)
{
	if (rc == FTPC_ETLS) {
		tls_failed_check(dr, fm, err);
		return;
	}
	struct check *c = check_begin(dr, fm->family, "login", "login", NULL);
	check_why(c, "%s", err);
	if (rc == FTPC_ELOGIN)
		check_fix(c, "check the user name and password (in the URL or ~/.netrc); an "
			     "anonymous login needs a server that allows it");
	else
		check_fix(c, "the server must accept TYPE I after the login");
	check_end(dr, V_FAIL);
}

/* Why nothing (or nothing FTP) answered at the port, from the engine's error. */
static void connect_fix(struct check *c, const char *err, unsigned port)
{
	if (strstr(err, "refused the session") != NULL)
		check_fix(c, "the server turns sessions away (421: too many sessions, or this "
			     "address is banned): check its limits and its log");
	else if (strstr(err, "timed out") != NULL)
		check_fix(c, "the server's firewall (or one on the way) must let port %u in from "
			     "anywhere; check the host name and the port", port);
	else if (strstr(err, "refused") != NULL)
		check_fix(c, "nothing listens on port %u there, or a firewall rejects the "
			     "connection: start the server, or open port %u", port, port);
	else if (strstr(err, "no reply") != NULL)
		check_fix(c, "the server must send its 220 greeting at once (a slow reverse DNS "
			     "lookup on the server?)");
	else
		check_fix(c, "check the host name, the port and the network between this machine "
			     "and the server");
}

void control_failed(struct doctor *dr, struct fam *fm, int rc, const char *err)
{
	uint16_t port = dr->u.port;
	struct check *c = check_begin(dr, fm->family, "connect", "connect", NULL);

	detail_str(c, "error", "%s", err);
	detail_int(c, "port", port);
	if (rc == FTPC_ELOGIN || rc == FTPC_EREMOTE || (rc == FTPC_ETLS && !dr->u.implicit_tls)) {
		check_why(c, "port %u answered with a greeting", (unsigned)port);
		check_end(dr, V_PASS);
		failed_after_greeting(dr, fm, rc, err);
		return;
	}
	if (rc == FTPC_ETLS) {
		check_skip(dr, "not checked on its own: with ftps:// TLS comes before the greeting");
		tls_failed_check(dr, fm, err);
		return;
	}
	check_why(c, "%s", err);
	connect_fix(c, err, port);
	check_end(dr, V_FAIL);
}

/* ---- with a session ---- */

void check_connect(struct doctor *dr, struct fam *fm)
{
	struct check *c = check_begin(dr, fm->family, "connect", "connect", NULL);
	char peer[INET6_ADDRSTRLEN];

	doctor_addr(&fm->si.peer, peer, sizeof(peer));
	check_why(c, "%s port %u: %s (connected, greeted%s and logged in in %.1f ms)", peer,
		  (unsigned)hostport_get_port(&fm->si.peer), fm->si.greeting,
		  fm->si.tls ? ", TLS" : "", fm->open_seconds * 1000.0);
	detail_str(c, "address", "%s", peer);
	detail_int(c, "port", hostport_get_port(&fm->si.peer));
	detail_addr(c, "local_address", &fm->si.local);
	detail_str(c, "greeting", "%s", fm->si.greeting);
	detail_real(c, "seconds", fm->open_seconds);
	detail_bool(c, "tls", fm->si.tls);
	check_end(dr, V_PASS);
}

/* ", item" (or "item" first) at the end of a list, cut short where it does not fit. */
static void list_add(char *list, size_t size, const char *item)
{
	size_t n = strlen(list);

	snprintf(list + n, size - n, "%s%s", list[0] ? ", " : "", item);
}

static const struct {
	const char *feature, *why, *fix;
} wanted_features[] = {
	{ "MLSD", "MLSD (RFC 3659: listings in one fixed format; without it clients guess "
		  "at LIST's)", "offer MLSD and MLST (RFC 3659)" },
	{ "EPSV", "EPSV (RFC 2428: passive mode with no address in the reply, which NAT "
		  "cannot get wrong; the only passive mode on IPv6)", "offer EPSV (RFC 2428)" },
	{ "AUTH TLS", "AUTH TLS (RFC 4217: without it passwords and files go in the clear)",
	  "offer AUTH TLS (RFC 4217; ferryd: tls_cert and tls_key)" },
};

/* Features shown when offered, but not missed. */
static const char *const other_features[] = { "EPRT", "SIZE", "MDTM", "REST STREAM", "UTF8",
					      "MFMT", "TVFS", "PBSZ", "PROT" };

/* The wanted features: offered ones into has, missing ones into missing and c; how many miss. */
static size_t wanted(struct fam *fm, struct check *c, char *has, size_t hassz, char *missing,
		     size_t missingsz)
{
	size_t nmissing = 0;

	for (size_t i = 0; i < sizeof(wanted_features) / sizeof(wanted_features[0]); i++) {
		const char *feature = wanted_features[i].feature;
		bool ok = ftp_has_feature(fm->f, feature);
		/* On a control connection that is TLS already (ftps://), AUTH TLS has no use. */
		if (!ok && strcmp(feature, "AUTH TLS") == 0 && fm->si.tls)
			ok = true;
		if (ok) {
			list_add(has, hassz, feature);
			continue;
		}
		list_add(missing, missingsz, feature);
		check_why(c, "%s%s", nmissing ? "; " : "FEAT lacks ", wanted_features[i].why);
		check_fix(c, "%s%s", nmissing ? "; " : "", wanted_features[i].fix);
		nmissing++;
	}
	return nmissing;
}

void check_features(struct doctor *dr, struct fam *fm)
{
	struct check *c = check_begin(dr, fm->family, "features", "features", NULL);
	char missing[300] = "", has[200] = "", also[200] = "";
	size_t nmissing = wanted(fm, c, has, sizeof(has), missing, sizeof(missing));

	for (size_t i = 0; i < sizeof(other_features) / sizeof(other_features[0]); i++) {
		if (ftp_has_feature(fm->f, other_features[i]))
			list_add(also, sizeof(also), other_features[i]);
	}
	detail_str(c, "missing", "%s", missing);
	detail_str(c, "offered", "%s%s%s", has, has[0] && also[0] ? ", " : "", also);
	if (nmissing == 0)
		check_why(c, "FEAT offers %s%s%s%s", has, also[0] ? " (and " : "", also,
			  also[0] ? ")" : "");
	check_end(dr, nmissing == 0 ? V_PASS : V_WARN);
}

static bool anonymous_user(const char *user)
{
	return user[0] == '\0' || strcasecmp(user, "anonymous") == 0 || strcasecmp(user, "ftp") == 0;
}

void check_login(struct doctor *dr, struct fam *fm)
{
	struct check *c = check_begin(dr, fm->family, "login", "login", NULL);
	const char *user = dr->u.has_user && dr->u.user[0] != '\0' ? dr->u.user : "anonymous";
	bool clear_password = !anonymous_user(user) && !fm->si.tls;

	check_why(c, "logged in as %s%s", user, fm->si.tls ? " over TLS" : "");
	detail_str(c, "user", "%s", user);
	detail_bool(c, "tls", fm->si.tls);
	if (clear_password) {
		check_why(c, ", but the password went in the clear");
		check_fix(c, "use TLS (--tls, or an ftps:// URL); the server must offer AUTH TLS");
	}
	check_end(dr, clear_password ? V_WARN : V_PASS);
}

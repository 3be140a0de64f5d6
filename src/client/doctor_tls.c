/*
 * doctor_tls.c: the doctor's TLS checks, on the main session when it is TLS already, or
 * on a session of their own: the certificate (verified for the host, and how long it has
 * left), each version on its own (a session offering TLS 1.2 alone, then TLS 1.3 alone),
 * and session resumption on two protected data connections in a row (RFC 4217 s.10.2:
 * each must resume the control connection's session, or anyone who races for the data
 * port can take the transfer).
 *
 * What this file must never do: count a certificate it could not verify as a pass,
 * whatever --insecure lets ferry do, or call OpenSSL itself: what it judges comes from
 * the engine (struct tls_peer_info, struct ftp_data_probe).
 */
#include <stdio.h>
#include <string.h>

#include "client/doctor_int.h"
#include "common/netaddr.h"

void tls_failed_check(struct doctor *dr, struct fam *fm, const char *error)
{
	struct check *c = check_begin(dr, fm->family, "tls", "TLS", NULL);

	check_why(c, "%s", error);
	if (strstr(error, "refused TLS") != NULL)
		check_fix(c, "offer AUTH TLS on the server (RFC 4217; ferryd: tls_cert and tls_key)");
	else
		check_fix(c, "check the server's TLS set-up: a certificate and key that match, TLS "
			     "1.2 or 1.3 (run with -v to see the dialogue)");
	check_end(dr, V_FAIL);
}

/* ---- the certificate ---- */

/* What would make a certificate that failed verification good. */
static void certificate_fix(struct check *c, const char *host, const struct tls_peer_info *pi)
{
	const char *e = pi->verify_error;

	if (text_has(e, "mismatch"))
		check_fix(c, "the server's certificate must name %s (subjectAltName %s:%s)", host,
			  netaddr_parse_addr(host, strlen(host), &(struct sockaddr_storage){ 0 }) == 0
				  ? "IP" : "DNS", host);
	else if (text_has(e, "expired") || pi->days_left < 0)
		check_fix(c, "renew the server's certificate");
	else if (text_has(e, "issuer") || text_has(e, "self-signed") || text_has(e, "self signed"))
		check_fix(c, "use a certificate from a CA that clients trust and send its "
			     "intermediate certificates (ferryd: tls_chain), or give ferry the CA "
			     "with --ca-file");
	else
		check_fix(c, "replace the server's certificate (%s)", e);
}

static void check_certificate(struct doctor *dr, struct fam *fm, const struct tls_peer_info *pi)
{
	struct check *c = check_begin(dr, fm->family, "tls-certificate", "TLS certificate", NULL);
	const char *host = dr->u.host;

	detail_str(c, "subject", "%s", pi->subject);
	detail_str(c, "issuer", "%s", pi->issuer);
	detail_str(c, "not_after", "%s", pi->not_after);
	detail_int(c, "days_left", pi->days_left);
	detail_bool(c, "verified", pi->verified);
	if (!pi->verified)
		detail_str(c, "verify_error", "%s", pi->verify_error);
	detail_str(c, "version", "%s", pi->version);
	detail_str(c, "cipher", "%s", pi->cipher);
	if (pi->verified && pi->days_left >= CERT_DAYS_WARN) {
		check_why(c, "%s, issued by %s: verified for %s, valid until %s (%ld days)",
			  pi->subject, pi->issuer, host, pi->not_after, pi->days_left);
		check_end(dr, V_PASS);
	} else if (pi->verified) {
		check_why(c, "%s: verified for %s, but it expires in %ld days (%s)", pi->subject,
			  host, pi->days_left, pi->not_after);
		check_fix(c, "renew the server's certificate before %s", pi->not_after);
		check_end(dr, V_WARN);
	} else {
		check_why(c, "not verified for %s: %s (subject %s, issuer %s, valid until %s)%s",
			  host, pi->verify_error, pi->subject, pi->issuer, pi->not_after,
			  dr->o.insecure ? "; --insecure lets ferry go on, other clients will "
					   "refuse it" : "");
		certificate_fix(c, host, pi);
		check_end(dr, V_FAIL);
	}
}

/* ---- the versions ---- */

/* A session limited to one TLS version (0x0303 TLS 1.2, 0x0304 TLS 1.3), unverified: the
 * certificate has a check of its own. */
static void check_version(struct doctor *dr, struct fam *fm, int version, const char *name,
			  const char *label)
{
	struct check *c = check_begin(dr, fm->family, name, label, NULL);
	struct ftp_options o = fm->o;
	char err[600];
	double secs;
	int rc;

	o.tls = TLSU_REQUIRED;
	o.insecure = true;
	o.tls_min_version = o.tls_max_version = version;
	struct ftp *f = session_open(dr, &o, &rc, err, sizeof(err), &secs);
	if (f != NULL) {
		struct ftp_session_info si;
		ftp_session_info(f, &si);
		ftp_close(f);
		detail_str(c, "cipher", "%s", si.tls_peer.cipher);
		check_why(c, "a session offering %s alone works (%s)", label, si.tls_peer.cipher);
		check_end(dr, V_PASS);
		return;
	}
	detail_str(c, "error", "%s", err);
	if (rc != FTPC_ETLS) {
		check_skip(dr, "not checked: %s", err);
		return;
	}
	check_why(c, "the server refused a session offering %s alone: %s", label, err);
	if (version == 0x0303)
		check_fix(c, "enable TLS 1.2 on the server: clients without TLS 1.3 cannot connect");
	else
		check_fix(c, "enable TLS 1.3 on the server (OpenSSL 1.1.1 or later)");
	check_end(dr, V_WARN);
}

/* ---- resumption ---- */

/* The first mode (in enum data_kind's order) whose probe worked; false when none did. */
static bool first_working_mode(const struct fam *fm, enum data_kind *k)
{
	for (size_t i = 0; i < N_KINDS; i++) {
		if (mode_works(fm, (enum data_kind)i)) {
			*k = (enum data_kind)i;
			return true;
		}
	}
	return false;
}

/* Two data connections in a row did not both resume, or did not both end well. */
static void resumption_failed(struct doctor *dr, struct check *c, enum data_kind k,
			      const struct ftp_data_probe p[2])
{
	bool done = p[0].final_code / 100 == 2 && p[1].final_code / 100 == 2;
	bool tls = p[0].tls && p[1].tls;
	int bad = !p[0].tls_resumed || !p[0].tls || p[0].final_code / 100 != 2 ? 1 : 2;
	const struct ftp_data_probe *b = &p[bad - 1];

	if (!tls || !done) {
		check_why(c, "%s data connection %d %s: %s", kind_names[k], bad,
			  b->tls ? (b->tls_resumed ? "resumed its session, but failed"
						   : "did not resume the session and failed")
				 : "had no TLS", b->final_reply[0] ? b->final_reply : "no reply");
		check_fix(c, "the server must accept data connections that resume the control "
			     "connection's TLS session, also a second time (TLS 1.3 tickets that "
			     "are good for one use only break the second one)");
		check_end(dr, V_FAIL);
		return;
	}
	check_why(c, "%s data connection %d did not resume the control connection's TLS "
		     "session, and the server took it all the same: whoever races for the data "
		     "port can take a transfer", kind_names[k], bad);
	check_fix(c, "make the server resume sessions on data connections and require it (RFC "
		     "4217 s.10.2; ferryd: tls_require_reuse = yes, vsftpd: require_ssl_reuse=YES)");
	check_end(dr, V_WARN);
}

/* Two probes in mode k on tf, the TLS session, and their verdict. */
static void resumption_probes(struct doctor *dr, struct check *c, struct ftp *tf,
			      enum data_kind k, const char *cmd)
{
	struct ftp_data_probe p[2];
	int n = 0;
	bool lost = false;

	c->mode = kind_names[k];
	while (n < 2 && !lost)
		lost = ftp_probe_data(tf, k, cmd, dr->probe_ms, &p[n++]) < 0;
	detail_str(c, "mode", "%s", kind_names[k]);
	for (int i = 0; i < n; i++) {
		detail_bool(c, i == 0 ? "tls_resumed_1" : "tls_resumed_2", p[i].tls_resumed);
		detail_str(c, i == 0 ? "final_reply_1" : "final_reply_2", "%s", p[i].final_reply);
	}
	if (lost) {
		check_why(c, "the control connection was lost during the check");
		check_end(dr, V_FAIL);
	} else if (p[0].tls_resumed && p[1].tls_resumed && p[0].final_code / 100 == 2 &&
		   p[1].final_code / 100 == 2) {
		check_why(c, "two %s data connections in a row both resumed the control "
			     "connection's TLS session", kind_names[k]);
		check_end(dr, V_PASS);
	} else {
		resumption_failed(dr, c, k, p);
	}
}

/* RFC 4217 s.10.2: each protected data connection resumes the control connection's session. */
static void check_resumption(struct doctor *dr, struct fam *fm, struct ftp *tf,
			     const struct ftp_session_info *tsi, const char *cmd)
{
	struct check *c = check_begin(dr, fm->family, "tls-resumption", "TLS resumption", NULL);
	enum data_kind k = DK_EPSV;

	if (!tsi->data_protected && dr->o.prot_clear) {
		check_skip(dr, "not checked: data connections stay in the clear (--prot-clear)");
	} else if (!tsi->data_protected) {
		check_why(c, "the server refused to protect data connections (PROT P): files go in "
			     "the clear");
		check_fix(c, "let the server protect data connections (PBSZ 0, PROT P; RFC 4217 s.9)");
		check_end(dr, V_WARN);
	} else if (!first_working_mode(fm, &k)) {
		check_skip(dr, "not checked: no data connection mode works");
	} else {
		resumption_probes(dr, c, tf, k, cmd);
	}
}

/* ---- the TLS session ---- */

/* A TLS session for the TLS checks when the main one is in the clear. */
static struct ftp *open_tls_session(struct doctor *dr, struct fam *fm, char *err, size_t errsz)
{
	struct ftp_options o = fm->o;
	double secs;
	int rc;

	o.tls = TLSU_REQUIRED;
	o.insecure = dr->o.insecure;
	struct ftp *f = session_open(dr, &o, &rc, err, errsz, &secs);
	if (f == NULL && rc == FTPC_ETLS && !o.insecure) {
		char again[600];
		doctor_note(dr, "%s; again without verifying the certificate, to look at it", err);
		o.insecure = true;
		f = session_open(dr, &o, &rc, again, sizeof(again), &secs);
	}
	return f;
}

/* The session for the TLS checks: fm's own, or (*own) one opened for them; NULL: checked. */
static struct ftp *tls_session(struct doctor *dr, struct fam *fm, bool *own)
{
	bool asked = dr->u.implicit_tls || dr->o.tls != TLSU_OFF;
	char err[600] = "";

	*own = false;
	if (fm->si.tls)
		return fm->f;
	if (fm->tls_gave_up) {
		tls_failed_check(dr, fm, fm->tls_error);
		return NULL;
	}
	if (!asked && !ftp_has_feature(fm->f, "AUTH TLS")) {
		check_begin(dr, fm->family, "tls", "TLS", NULL);
		check_skip(dr, "not checked: the server does not offer AUTH TLS (see features)");
		return NULL;
	}
	struct ftp *tf = open_tls_session(dr, fm, err, sizeof(err));
	if (tf == NULL)
		tls_failed_check(dr, fm, err);
	*own = tf != NULL;
	return tf;
}

void check_tls(struct doctor *dr, struct fam *fm, const char *cmd)
{
	bool own;

	if (fm->f == NULL) {
		check_begin(dr, fm->family, "tls", "TLS", NULL);
		check_skip(dr, "not checked: the control connection was lost and could not be made "
			       "again");
		return;
	}
	struct ftp *tf = tls_session(dr, fm, &own);
	if (tf == NULL)
		return;
	struct ftp_session_info tsi;
	ftp_session_info(tf, &tsi);
	check_certificate(dr, fm, &tsi.tls_peer);
	check_version(dr, fm, 0x0303, "tls-1.2", "TLS 1.2");
	check_version(dr, fm, 0x0304, "tls-1.3", "TLS 1.3");
	check_resumption(dr, fm, tf, &tsi, cmd);
	if (own)
		ftp_close(tf);
}

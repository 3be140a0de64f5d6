/*
 * cmd_tls.c: AUTH, PBSZ, PROT, CCC (RFC 4217, RFC 2228) and the rules of tls, anon_tls
 * and tls_data.  The TLS layer itself is tls.c's; this file only decides when it starts,
 * and what a session may do with or without it.
 */
#include "server/cmd_tls.h"

#include <string.h>
#include <strings.h>

#include "common/reply.h"
#include "server/dispatch.h"
#include "server/log.h"
#include "server/session.h"
#include "server/worker.h"

void cmd_auth(struct session *s, const char *arg)
{
	const struct config *cfg = s->srv->cfg;
	if (s->srv->tls == NULL || (cfg->tls == TLS_OFF && cfg->anon_tls == TLS_OFF)) {
		session_reply(s, R_534_POLICY, "TLS is not offered by this server.");
		return;
	}
	/* RFC 4217 s.4: "TLS"; "SSL" and "TLS-C" are old names for the same. */
	if (strcasecmp(arg, "TLS") != 0 && strcasecmp(arg, "SSL") != 0 &&
	    strcasecmp(arg, "TLS-C") != 0) {
		session_reply(s, R_504_BAD_PARAMETER, "Use AUTH TLS.");
		return;
	}
	if (s->flags & SF_TLS) {
		session_reply(s, R_503_BAD_SEQUENCE, "TLS is already on.");
		return;
	}
	if (s->flags & (SF_LOGGED_IN | SF_USER_GIVEN)) {
		/* A password already sent in the clear cannot be taken back: start over. */
		session_reply(s, R_503_BAD_SEQUENCE, "AUTH TLS must come before USER.");
		return;
	}
	session_reply(s, R_234_AUTH_OK, "Proceed with negotiation.");
	if (session_start_tls(s) < 0) {
		log_warn("session %llu: cannot start TLS", (unsigned long long)s->id);
		session_close_after_flush(s, "TLS setup failed");
	}
}

void cmd_pbsz(struct session *s, const char *arg)
{
	if (!(s->flags & SF_TLS)) {
		session_reply(s, R_503_BAD_SEQUENCE, "PBSZ needs AUTH TLS first.");
		return;
	}
	/* RFC 4217 s.8: TLS needs no buffer size; any request is answered with 0. */
	s->flags |= SF_PBSZ;
	session_reply(s, R_200_OK, "PBSZ=0");
}

void cmd_prot(struct session *s, const char *arg)
{
	if (!(s->flags & SF_PBSZ)) {
		session_reply(s, R_503_BAD_SEQUENCE, "PROT needs PBSZ first.");
		return;
	}
	if (strcasecmp(arg, "P") == 0) {
		s->flags |= SF_PROT_P;
		session_reply(s, R_200_OK, "Data connections will be protected (PROT P).");
	} else if (strcasecmp(arg, "C") == 0) {
		s->flags &= ~SF_PROT_P;
		if (s->srv->cfg->tls_data == TLS_DATA_REQUIRED)
			session_reply(s, R_200_OK, "PROT C set, but this server only transfers with "
						   "PROT P.");
		else
			session_reply(s, R_200_OK, "Data connections will be in the clear (PROT C).");
	} else if (strcasecmp(arg, "S") == 0 || strcasecmp(arg, "E") == 0) {
		session_reply(s, R_536_PROT_UNSUPPORTED, "Only PROT C and PROT P are supported.");
	} else {
		session_reply(s, R_504_BAD_PARAMETER, "Use PROT C or PROT P.");
	}
}

void cmd_ccc(struct session *s, const char *arg)
{
	if (!(s->flags & SF_TLS)) {
		session_reply(s, R_533_PROTECTION_DENIED, "The control connection is not protected.");
		return;
	}
	if (!s->srv->cfg->tls_ccc) {
		session_reply(s, R_534_POLICY, "CCC is not allowed here (tls_ccc).");
		return;
	}
	session_reply(s, R_200_OK, "The control connection continues in the clear.");
	session_clear_control(s);
}

bool tls_login_allowed(struct session *s, bool anonymous)
{
	const struct config *cfg = s->srv->cfg;
	unsigned mode = anonymous ? cfg->anon_tls : cfg->tls;
	bool tls = (s->flags & SF_TLS) != 0;
	if (mode == TLS_REQUIRED && !tls) {
		session_replyf(s, R_530_NOT_LOGGED_IN,
			       "This server requires TLS for %s logins: send AUTH TLS first, then "
			       "USER and PASS (use ftps:// or your client's TLS option).",
			       anonymous ? "anonymous" : "user");
		return false;
	}
	if (mode == TLS_OFF && tls) {
		session_replyf(s, R_530_NOT_LOGGED_IN,
			       "TLS is not allowed for %s logins here: connect without TLS.",
			       anonymous ? "anonymous" : "user");
		return false;
	}
	return true;
}

bool tls_transfer_allowed(struct session *s)
{
	/* SF_TLS_USED, not SF_TLS: CCC clears the control connection, not the rule. */
	if ((s->flags & SF_TLS_USED) && !(s->flags & SF_PROT_P) &&
	    s->srv->cfg->tls_data == TLS_DATA_REQUIRED) {
		worker_report_refusal(s->srv, s->id, DR_PROT_P_REQUIRED);
		log_info("session %llu: transfer in the clear refused (%s): tls_data = required",
			 (unsigned long long)s->id, data_refusal_name(DR_PROT_P_REQUIRED));
		session_reply(s, R_521_PROT_REFUSED,
			      "Data connections must be protected here: send PBSZ 0 and PROT P.");
		return false;
	}
	return true;
}

bool tls_cert_names_user(const struct session *s)
{
	return s->srv->cfg->tls_cert_login && (s->flags & SF_TLS) && s->cert_cn != NULL &&
	       strcmp(s->cert_cn, s->username) == 0;
}

/*
 * cmd_host.c: HOST (RFC 7151), the virtual host a session logs in to.
 *
 * A session starts on the listener's default host (the keys outside any [host] section).
 * Before USER, HOST names another, and so does the SNI of a TLS handshake when no HOST
 * came (session.c); the host decides the anonymous root, the users file and the banner,
 * and its certificate is the one TLS presents.  Nothing else about the session changes.
 */
#include <string.h>

#include "common/reply.h"
#include "server/dispatch.h"
#include "server/log.h"
#include "server/session.h"

const struct served_host *server_find_host(const struct server *srv, const char *name)
{
	int i = config_vhost_find(srv->cfg, name);
	return i >= 0 && (unsigned)i + 1 < srv->n_hosts ? &srv->hosts[i + 1] : NULL;
}

/* RFC 7151 s.3.1: an IP-literal, "[address]", names no virtual host but the server. */
static bool is_ip_literal(const char *arg)
{
	size_t n = strlen(arg);
	return n > 2 && arg[0] == '[' && arg[n - 1] == ']' &&
	       strspn(arg + 1, "0123456789abcdefABCDEF.:") == n - 2;
}

void cmd_host(struct session *s, const char *arg)
{
	/* RFC 7151 s.3.2: the host is chosen before the user; after USER or a login, 503. */
	if (s->flags & (SF_LOGGED_IN | SF_USER_GIVEN)) {
		session_reply(s, R_503_BAD_SEQUENCE, "HOST must come before USER.");
		return;
	}
	const struct served_host *h = NULL;
	if (is_ip_literal(arg)) {
		h = &s->srv->hosts[0];
	} else if (!config_vhost_name_ok(arg, strlen(arg))) {
		session_reply(s, R_501_BAD_ARGUMENTS, "Syntax: HOST <sp> host name.");
		return;
	} else if ((h = server_find_host(s->srv, arg)) == NULL) {
		/* RFC 7151 s.3.3: a host the server does not serve is 504. */
		session_reply(s, R_504_BAD_PARAMETER, "Unknown host.");
		return;
	}
	/* A second HOST replaces the first. */
	s->host = h;
	s->flags |= SF_HOST_GIVEN;
	log_info("session %llu host=%s", (unsigned long long)s->id,
		 h->name != NULL ? h->name : "(default)");
	session_reply(s, R_220_READY, h->banner);
}

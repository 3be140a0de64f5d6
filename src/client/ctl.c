/*
 * ctl.c: the control connection: commands out, replies in (common/reply.c's resumable
 * parser), the -v dialogue, and the opening of a session: connect, greeting, TLS
 * (implicit, or AUTH TLS), login, PBSZ/PROT, FEAT, TYPE I.
 *
 * A command is one line we build ourselves; a CR or LF inside it (a file name holding
 * one) is refused rather than sent, since it would start a second command.  Passwords
 * are never written to the log, and are not kept after PASS.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client/ftp_int.h"
#include "common/hostport.h"

const char *ctl_text(const struct ftp *f)
{
	return f->rp.text.data != NULL ? f->rp.text.data : "";
}

void ctl_reply_line(const struct ftp *f, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%d %s", f->rp.code, ctl_text(f));

	if (n < 0 || outsz == 0)
		return;
	for (char *p = out; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	}
	/* A multi-line reply's lines may end in spaces of their own: no run of them. */
	char *w = out;
	for (const char *r = out; *r != '\0'; r++) {
		if (*r == ' ' && w > out && w[-1] == ' ')
			continue;
		*w++ = *r;
	}
	while (w > out && w[-1] == ' ')
		w--;
	*w = '\0';
}

static void log_reply(struct ftp *f)
{
	if (!f->o.verbose)
		return;
	const char *t = ctl_text(f);
	bool multi = strchr(t, '\n') != NULL;
	bool first = true;
	while (*t != '\0' || first) {
		size_t n = strcspn(t, "\n");
		bool last = t[n] == '\0';
		if (first)
			fprintf(f->o.log, "< %d%c%.*s\n", f->rp.code, multi ? '-' : ' ', (int)n, t);
		else if (last)
			fprintf(f->o.log, "< %d %.*s\n", f->rp.code, (int)n, t);
		else
			fprintf(f->o.log, "<  %.*s\n", (int)n, t);
		first = false;
		t += n;
		if (*t == '\n')
			t++;
		if (last)
			break;
	}
	fflush(f->o.log);
}

static int lost(struct ftp *f, const char *why)
{
	f->broken = true;
	return ftp_fail(f, FTPC_ECONNECT, "%s", why);
}

int ctl_vsend(struct ftp *f, const char *fmt, va_list ap)
{
	char line[CMD_MAX + 3];

	if (f->broken)
		return FTPC_ECONNECT;
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return ftp_fail(f, FTPC_EUSAGE, "command too long for FTP (over %d bytes)", CMD_MAX);
	if (strpbrk(line, "\r\n") != NULL)
		return ftp_fail(f, FTPC_EUSAGE, "a name holding a line break cannot be sent over FTP");
	if (f->o.verbose) {
		if (strncasecmp(line, "PASS ", 5) == 0)
			fprintf(f->o.log, "> PASS ****\n");
		else
			fprintf(f->o.log, "> %s\n", line);
		fflush(f->o.log);
	}
	line[n] = '\r';
	line[n + 1] = '\n';
	int rc = stream_write(&f->ctl, line, (size_t)n + 2, f->o.timeout_ms);
	explicit_bzero(line, sizeof(line));
	if (rc != 0) {
		char why[300];
		snprintf(why, sizeof(why), "lost the control connection to %s: %s", f->host,
			 rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
		return lost(f, why);
	}
	return FTPC_OK;
}

int ctl_send(struct ftp *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int rc = ctl_vsend(f, fmt, ap);
	va_end(ap);
	return rc;
}

int ctl_reply(struct ftp *f)
{
	char why[400];

	if (f->broken)
		return FTPC_ECONNECT;
	for (;;) {
		if (f->in_off < f->in_len) {
			size_t used = 0;
			enum reply_status st = reply_parser_feed(&f->rp, f->in + f->in_off,
								 f->in_len - f->in_off, &used);
			f->in_off += used;
			if (st == REPLY_DONE) {
				log_reply(f);
				if (f->rp.code == R_421_CLOSING) {
					char line[300];
					ctl_reply_line(f, line, sizeof(line));
					snprintf(why, sizeof(why), "the server closed the session: %s", line);
					return lost(f, why);
				}
				return f->rp.code;
			}
			if (st == REPLY_INVALID)
				return lost(f, "the server sent something that is not an FTP reply");
			continue;
		}
		f->in_off = f->in_len = 0;
		long got = stream_read(&f->ctl, f->in, sizeof(f->in), f->o.timeout_ms);
		if (got > 0) {
			f->in_len = (size_t)got;
			continue;
		}
		if (got == 0)
			snprintf(why, sizeof(why), "the server closed the control connection");
		else if (got == -ETIMEDOUT)
			snprintf(why, sizeof(why), "no reply from the server within %d s",
				 f->o.timeout_ms / 1000);
		else
			snprintf(why, sizeof(why), "lost the control connection to %s: %s", f->host,
				 got == -EPROTO ? "TLS error" : strerror((int)-got));
		return lost(f, why);
	}
}

int ctl_cmd(struct ftp *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int rc = ctl_vsend(f, fmt, ap);
	va_end(ap);
	return rc < 0 ? rc : ctl_reply(f);
}

int ctl_tls_start(struct ftp *f, struct stream *s, const struct stream *resume_from)
{
	char err[256] = "";

	s->tls = tls_client_start(f->tls_ctx, s->fd, f->host,
				  resume_from != NULL ? resume_from->tls : NULL, f->o.timeout_ms, err,
				  sizeof(err));
	if (s->tls == NULL)
		return ftp_fail(f, FTPC_ETLS, "TLS with %s failed: %s", f->host,
				err[0] != '\0' ? err : "handshake refused");
	return FTPC_OK;
}

static int tls_context(struct ftp *f)
{
	char err[256] = "";

	if (f->tls_ctx != NULL)
		return FTPC_OK;
	f->tls_ctx = tls_client_new(f->o.ca_file, !f->o.insecure, err, sizeof(err));
	if (f->tls_ctx == NULL)
		return ftp_fail(f, FTPC_ETLS, "cannot set up TLS: %s", err);
	if ((f->o.tls_min_version != 0 || f->o.tls_max_version != 0) &&
	    tls_client_versions(f->tls_ctx, f->o.tls_min_version != 0 ? f->o.tls_min_version : 0x0303,
				f->o.tls_max_version) != 0)
		return ftp_fail(f, FTPC_ETLS, "cannot limit the TLS versions");
	if (f->o.insecure)
		ftp_warn(f, "--insecure: the server's certificate is not verified");
	return FTPC_OK;
}

static int greeting(struct ftp *f)
{
	int code = ctl_reply(f);

	/* RFC 959 s.5.4: 120 "ready in nnn minutes" comes before the 220. */
	while (code == R_120_READY_SOON)
		code = ctl_reply(f);
	if (code < 0)
		return code;
	char line[300];
	ctl_reply_line(f, line, sizeof(line));
	str_copy(f->greeting, sizeof(f->greeting), line);
	if (code != R_220_READY)
		return ftp_fail(f, FTPC_ECONNECT, "the server refused the session: %s", line);
	return FTPC_OK;
}

/* RFC 4217 s.4: AUTH TLS, then the handshake; whatever was buffered is not trusted. */
static int auth_tls(struct ftp *f)
{
	int rc = tls_context(f);

	if (rc != FTPC_OK)
		return rc;
	int code = ctl_cmd(f, "AUTH TLS");
	if (code < 0)
		return code;
	if (code != R_234_AUTH_OK) {
		char line[300];
		ctl_reply_line(f, line, sizeof(line));
		if (f->o.tls == TLSU_REQUIRED)
			return ftp_fail(f, FTPC_ETLS, "the server refused TLS (AUTH TLS): %s", line);
		ftp_warn(f, "the server refused TLS (%s); going on without it: the password and "
			 "data are sent in the clear", line);
		return FTPC_OK;
	}
	f->in_off = f->in_len = 0;
	rc = ctl_tls_start(f, &f->ctl, NULL);
	if (rc != FTPC_OK) {
		f->broken = true;
		return rc;
	}
	f->tls_on = true;
	return FTPC_OK;
}

static bool is_anonymous(const char *user)
{
	return strcasecmp(user, "anonymous") == 0 || strcasecmp(user, "ftp") == 0;
}

static int login(struct ftp *f, const struct ftp_url *u)
{
	const char *user = u->has_user && u->user[0] != '\0' ? u->user : "anonymous";
	const char *pass = u->has_password ? u->password : is_anonymous(user) ? "ferry@" : NULL;
	char line[300];

	int code = ctl_cmd(f, "USER %s", user);
	if (code < 0)
		return code;
	if (code == R_331_NEED_PASSWORD || code == R_332_NEED_ACCOUNT) {
		if (pass == NULL)
			return ftp_fail(f, FTPC_ELOGIN, "the server asks a password for %s: give one "
					"in the URL or in ~/.netrc", user);
		code = ctl_cmd(f, "PASS %s", pass);
		if (code < 0)
			return code;
	}
	if (code == R_230_LOGGED_IN || code == R_202_SUPERFLUOUS)
		return FTPC_OK;
	ctl_reply_line(f, line, sizeof(line));
	if (code == R_332_NEED_ACCOUNT)
		return ftp_fail(f, FTPC_ELOGIN, "login as %s: the server wants an account (ACCT), "
				"which ferry does not send: %s", user, line);
	return ftp_fail(f, FTPC_ELOGIN, "login as %s refused: %s", user, line);
}

/* RFC 4217 s.8-9: PBSZ 0, then PROT P (or C); a refusal is fatal only when TLS must be. */
static int protect(struct ftp *f)
{
	char line[300];
	int code = ctl_cmd(f, "PBSZ 0");

	if (code < 0)
		return code;
	if (code / 100 == 2)
		code = ctl_cmd(f, "PROT %s", f->o.prot_clear ? "C" : "P");
	if (code < 0)
		return code;
	if (code / 100 == 2) {
		f->prot_p = !f->o.prot_clear;
		return FTPC_OK;
	}
	ctl_reply_line(f, line, sizeof(line));
	if (f->o.prot_clear)
		return FTPC_OK;
	if (f->o.tls == TLSU_REQUIRED)
		return ftp_fail(f, FTPC_ETLS, "the server refused to protect data connections "
				"(PROT P): %s", line);
	ftp_warn(f, "the server refused to protect data connections (%s); data goes in the "
		 "clear", line);
	return FTPC_OK;
}

static void features(struct ftp *f)
{
	int code = ctl_cmd(f, "FEAT");

	buf_reset(&f->feat);
	if (code != R_211_SYSTEM_STATUS)
		return;
	/* RFC 2389 s.3.2: the lines between the first and the last, each starting with a space. */
	const char *t = ctl_text(f);
	const char *nl = strchr(t, '\n');
	if (nl == NULL)
		return;
	for (t = nl + 1; *t != '\0';) {
		size_t n = strcspn(t, "\n");
		if (t[n] == '\0')
			break;  /* the last line, "211 End" */
		const char *s = t;
		size_t m = n;
		while (m > 0 && (*s == ' ' || *s == '\t'))
			s++, m--;
		while (m > 0 && (s[m - 1] == ' ' || s[m - 1] == '\r'))
			m--;
		if (m > 0 && (buf_append(&f->feat, s, m) != 0 || buf_append_char(&f->feat, '\n') != 0))
			return;
		t += n + 1;
	}
}

int ctl_open(struct ftp *f, const struct ftp_url *u)
{
	char err[sizeof(f->err)];
	int rc;

	str_copy(f->host, sizeof(f->host), u->host);
	rc = net_connect_host(u->host, u->port, f->o.family, f->o.timeout_ms, &f->ctl.fd, err,
			      sizeof(err));
	if (rc != FTPC_OK)
		return ftp_fail(f, rc, "%s", err);
	if ((rc = net_names(f->ctl.fd, &f->local, &f->peer)) != 0)
		return ftp_fail(f, FTPC_ECONNECT, "connection to %s: %s", u->host, strerror(-rc));
	hostport_unmap(&f->local);
	hostport_unmap(&f->peer);
	if (f->o.verbose) {
		net_describe(&f->peer, err, sizeof(err));
		fprintf(f->o.log, "* connected to %s\n", err);
	}

	if (u->implicit_tls) {
		if ((rc = tls_context(f)) != FTPC_OK || (rc = ctl_tls_start(f, &f->ctl, NULL)) != 0)
			return rc;
		f->tls_on = true;
	}
	if ((rc = greeting(f)) != FTPC_OK)
		return rc;
	if (!u->implicit_tls && f->o.tls != TLSU_OFF && (rc = auth_tls(f)) != FTPC_OK)
		return rc;
	if (f->o.verbose && f->tls_on) {
		struct tls_peer_info pi;
		tls_stream_peer_info(f->ctl.tls, &pi);
		fprintf(f->o.log, "* TLS: %s %s, certificate %s%s\n", pi.version, pi.cipher,
			pi.subject, pi.verified ? " (verified)" : " (not verified)");
	}
	if ((rc = login(f, u)) != FTPC_OK)
		return rc;
	if (f->tls_on && (rc = protect(f)) != FTPC_OK)
		return rc;
	features(f);
	int code = ctl_cmd(f, "TYPE I");
	if (code < 0)
		return code;
	if (code / 100 != 2) {
		char line[300];
		ctl_reply_line(f, line, sizeof(line));
		return ftp_fail(f, FTPC_EREMOTE, "the server refused binary mode (TYPE I): %s", line);
	}
	return FTPC_OK;
}

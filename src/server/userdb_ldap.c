/*
 * userdb_ldap.c: users from an LDAP directory (userdb_ldap.h), on OpenLDAP's libldap.
 *
 * What this file must never do: bind with an empty password (that is an anonymous bind and
 * succeeds), put an unescaped login name into a filter, search with a user's rights, keep a
 * user's password, or wait on the directory longer than timeout_ms.
 *
 * Every connection is made here with its options set on its own handle, so nothing depends
 * on libldap's process-wide defaults; those come from ldap.conf and the environment, and
 * whatever matters for security (certificate checks, CA, timeouts, referrals) is set
 * explicitly over them.  The caller ignores SIGPIPE (ferryd does): libldap writes to a
 * socket the server may have closed.
 */
#include "server/userdb_ldap.h"

#include <errno.h>
#include <ldap.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/num.h"
#include "server/config.h"
#include "server/user_settings.h"

#define FILTER_MAX 4096
#define ENTRIES_SEEN 2 /* the size limit of a search: one is a user, two are ambiguous */
#define ID_MAX (UINT32_MAX - 1) /* (uid_t)-1 means "no change" to chown() and setresuid() */

/* A monotonic deadline for one call: every step waits at most for what is left of it. */
struct deadline {
	struct timespec at;
};

/*
 * libldap 2.5 on GnuTLS does not bound a TLS handshake by LDAP_OPT_NETWORK_TIMEOUT: against
 * a server that accepts the connection and then says nothing (hung, overloaded), its
 * gnutls_handshake() spins on the non-blocking socket until GnuTLS's own limit of 40 s.  A
 * watchdog thread shuts the socket down at the deadline, which ends the handshake with an
 * error.  It runs from the moment the TCP connection exists (LDAP_OPT_CONNECT_CB) until
 * conn_open() returns, and is stopped before libldap closes the socket (lc_del), so that it
 * never shuts down a descriptor number reused since.
 */
struct watchdog {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct timespec at; /* CLOCK_MONOTONIC */
	int fd;
	bool running, stop, fired;
	pthread_t thread;
};

/* One connection; it must not move while ld lives (libldap keeps a pointer to cb). */
struct conn {
	LDAP *ld; /* NULL: not connected */
	struct ldap_conncb cb;
	struct watchdog wd;
	bool wd_made; /* wd's mutex and condition exist */
};

struct ldap_source {
	struct ldap_source_config cfg; /* bind_password is wiped in ldap_source_free() */
	struct conn svc;               /* the service connection; svc.ld NULL until needed */
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	if (errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n < 0)
		err[0] = '\0';
}

static int deadline_start(struct deadline *d, unsigned ms, char *err, size_t errlen)
{
	if (clock_gettime(CLOCK_MONOTONIC, &d->at) < 0) {
		errf(err, errlen, "clock_gettime failed");
		return -1;
	}
	d->at.tv_sec += ms / 1000;
	d->at.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (d->at.tv_nsec >= 1000000000L) {
		d->at.tv_sec++;
		d->at.tv_nsec -= 1000000000L;
	}
	return 0;
}

/* What is left of d in tv; false when nothing is (or the clock failed). */
static bool deadline_left(const struct deadline *d, struct timeval *tv)
{
	struct timespec now;
	if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
		return false;
	int64_t ns = (int64_t)(d->at.tv_sec - now.tv_sec) * 1000000000LL +
		     (d->at.tv_nsec - now.tv_nsec);
	/* libldap takes a zero timeval as "poll" or as an error: keep at least 1 ms. */
	if (ns < 1000000LL)
		return false;
	tv->tv_sec = (time_t)(ns / 1000000000LL);
	tv->tv_usec = (suseconds_t)((ns % 1000000000LL) / 1000);
	return true;
}

/* "Can't contact LDAP server (connection refused)": the code's text and the detail. */
static void ld_errf(LDAP *ld, int rc, const char *what, char *err, size_t errlen)
{
	char *diag = NULL;
	if (ld != NULL && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) != LDAP_OPT_SUCCESS)
		diag = NULL;
	if (diag != NULL && diag[0] != '\0')
		errf(err, errlen, "%s: %s (%s)", what, ldap_err2string(rc), diag);
	else
		errf(err, errlen, "%s: %s", what, ldap_err2string(rc));
	ldap_memfree(diag);
}

static void *watchdog_run(void *arg)
{
	struct watchdog *w = arg;
	if (pthread_mutex_lock(&w->mu) != 0)
		return NULL;
	while (!w->stop) {
		int rc = pthread_cond_timedwait(&w->cv, &w->mu, &w->at);
		if (rc == ETIMEDOUT && !w->stop) {
			/* Only ends the handshake early; should it fail, the handshake is no worse. */
			(void)shutdown(w->fd, SHUT_RDWR);
			w->fired = true;
			break;
		}
		if (rc != 0 && rc != ETIMEDOUT)
			break;
	}
	(void)pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void watchdog_stop(struct watchdog *w)
{
	if (!w->running)
		return;
	/* Neither call can fail on a mutex and condition that this file made and holds. */
	(void)pthread_mutex_lock(&w->mu);
	w->stop = true;
	(void)pthread_cond_signal(&w->cv);
	(void)pthread_mutex_unlock(&w->mu);
	(void)pthread_join(w->thread, NULL);
	w->running = false;
}

/* LDAP_OPT_CONNECT_CB: the TCP connection exists, the TLS handshake (ldaps://) is next. */
static int conn_added(LDAP *ld, Sockbuf *sb, LDAPURLDesc *srv, struct sockaddr *addr,
		      struct ldap_conncb *ctx)
{
	struct watchdog *w = &((struct conn *)ctx->lc_arg)->wd;
	if (w->running)
		return 0;
	if (ber_sockbuf_ctrl(sb, LBER_SB_OPT_GET_FD, &w->fd) != 1)
		return -1;
	w->stop = false;
	if (pthread_create(&w->thread, NULL, watchdog_run, w) != 0)
		return -1; /* fail closed: without the watchdog the wait would be unbounded */
	w->running = true;
	return 0;
}

/* Called before libldap closes the socket (and with sb NULL before it frees the handle). */
static void conn_deleted(LDAP *ld, Sockbuf *sb, struct ldap_conncb *ctx)
{
	watchdog_stop(&((struct conn *)ctx->lc_arg)->wd);
}

static int watchdog_make(struct conn *c, const struct deadline *d)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0)
		return -1;
	int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&c->wd.cv, &ca);
	(void)pthread_condattr_destroy(&ca);
	if (rc != 0)
		return -1;
	if (pthread_mutex_init(&c->wd.mu, NULL) != 0) {
		(void)pthread_cond_destroy(&c->wd.cv);
		return -1;
	}
	c->wd.at = d->at;
	c->wd_made = true;
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->ld != NULL) {
		/* Its result is only whether the unbind request was written: nothing to do. */
		(void)ldap_unbind_ext_s(c->ld, NULL, NULL);
		c->ld = NULL;
	}
	if (c->wd_made) {
		watchdog_stop(&c->wd);
		(void)pthread_cond_destroy(&c->wd.cv);
		(void)pthread_mutex_destroy(&c->wd.mu);
		c->wd_made = false;
	}
}

static int set_opt(LDAP *ld, int opt, const void *v, const char *name, char *err, size_t errlen)
{
	int rc = ldap_set_option(ld, opt, v);
	if (rc != LDAP_OPT_SUCCESS) {
		ld_errf(ld, rc, name, err, errlen);
		return -1;
	}
	return 0;
}

/* The handle's wait for a connection, a TLS handshake or a synchronous call: what is left. */
static int set_timeouts(LDAP *ld, const struct deadline *d, char *err, size_t errlen)
{
	struct timeval tv;
	if (!deadline_left(d, &tv)) {
		errf(err, errlen, "timed out");
		return -1;
	}
	if (set_opt(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv, "LDAP_OPT_NETWORK_TIMEOUT", err, errlen) < 0 ||
	    set_opt(ld, LDAP_OPT_TIMEOUT, &tv, "LDAP_OPT_TIMEOUT", err, errlen) < 0)
		return -1;
	return 0;
}

/*
 * TLS settings of this handle only (LDAP_OPT_X_TLS_NEWCTX builds its context from them): the
 * certificate must verify and name the host, against ca_file alone when one is given.
 */
static int set_tls(LDAP *ld, const struct ldap_source_config *c, char *err, size_t errlen)
{
	int demand = LDAP_OPT_X_TLS_DEMAND;
	int min = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
	int client = 0;
	if (set_opt(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand, "LDAP_OPT_X_TLS_REQUIRE_CERT", err,
		    errlen) < 0 ||
	    set_opt(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &min, "LDAP_OPT_X_TLS_PROTOCOL_MIN", err,
		    errlen) < 0)
		return -1;
	if (c->ca_file[0] != '\0') {
		/* A CA directory from ldap.conf would otherwise be trusted beside ca_file. */
		if (set_opt(ld, LDAP_OPT_X_TLS_CACERTDIR, NULL, "LDAP_OPT_X_TLS_CACERTDIR", err,
			    errlen) < 0 ||
		    set_opt(ld, LDAP_OPT_X_TLS_CACERTFILE, c->ca_file, "LDAP_OPT_X_TLS_CACERTFILE",
			    err, errlen) < 0)
			return -1;
	}
	return set_opt(ld, LDAP_OPT_X_TLS_NEWCTX, &client, "TLS context", err, errlen);
}

static int conn_options(LDAP *ld, const struct ldap_source_config *c, char *err, size_t errlen)
{
	int v3 = LDAP_VERSION3;
	/* Referrals would be followed anonymously to servers nobody configured. */
	if (set_opt(ld, LDAP_OPT_PROTOCOL_VERSION, &v3, "LDAP_OPT_PROTOCOL_VERSION", err,
		    errlen) < 0 ||
	    set_opt(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF, "LDAP_OPT_REFERRALS", err, errlen) < 0 ||
	    set_opt(ld, LDAP_OPT_RESTART, LDAP_OPT_OFF, "LDAP_OPT_RESTART", err, errlen) < 0)
		return -1;
	return set_tls(ld, c, err, errlen);
}

/* Connect (ldaps://: and the handshake) and StartTLS when configured; c->ld is made. */
static int conn_connect(struct conn *c, const struct ldap_source_config *cfg,
			const struct deadline *d, char *err, size_t errlen)
{
	if (conn_options(c->ld, cfg, err, errlen) < 0 ||
	    set_opt(c->ld, LDAP_OPT_CONNECT_CB, &c->cb, "LDAP_OPT_CONNECT_CB", err, errlen) < 0 ||
	    set_timeouts(c->ld, d, err, errlen) < 0)
		return -1;
	int rc = ldap_connect(c->ld);
	if (rc != LDAP_SUCCESS) {
		ld_errf(c->ld, rc, "connect", err, errlen);
		return -1;
	}
	if (!cfg->starttls)
		return 0;
	if (set_timeouts(c->ld, d, err, errlen) < 0)
		return -1;
	rc = ldap_start_tls_s(c->ld, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		ld_errf(c->ld, rc, "StartTLS", err, errlen);
		return -1;
	}
	return 0;
}

/* A new connection to the directory in c (which must stay where it is until conn_close()). */
static int conn_open(struct conn *c, const struct ldap_source_config *cfg,
		     const struct deadline *d, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->cb = (struct ldap_conncb){ .lc_add = conn_added, .lc_del = conn_deleted, .lc_arg = c };
	if (watchdog_make(c, d) < 0) {
		errf(err, errlen, "cannot make the connection watchdog");
		return -1;
	}
	int rc = ldap_initialize(&c->ld, cfg->uri);
	if (rc != LDAP_SUCCESS) {
		c->ld = NULL;
		ld_errf(NULL, rc, "ldap_initialize", err, errlen);
		conn_close(c);
		return -1;
	}
	rc = conn_connect(c, cfg, d, err, errlen);
	watchdog_stop(&c->wd);
	if (c->wd.fired) {
		/* libldap's own message would blame the server for the socket we shut down. */
		errf(err, errlen, "connect: timed out (TLS handshake)");
		rc = -1;
	}
	if (rc < 0)
		conn_close(c);
	return rc;
}

/*
 * A simple bind, waited for until d.  Returns the LDAP result code (LDAP_SUCCESS,
 * LDAP_INVALID_CREDENTIALS, ...) or LDAP_TIMEOUT; err is set on anything but success.
 */
static int conn_bind(LDAP *ld, const char *dn, const char *password, const struct deadline *d,
		     char *err, size_t errlen)
{
	struct berval cred = { .bv_len = strlen(password), .bv_val = (char *)password };
	struct timeval tv;
	if (!deadline_left(d, &tv)) {
		errf(err, errlen, "bind: timed out");
		return LDAP_TIMEOUT;
	}
	int msgid;
	int rc = ldap_sasl_bind(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, &msgid);
	if (rc != LDAP_SUCCESS) {
		ld_errf(ld, rc, "bind", err, errlen);
		return rc;
	}
	LDAPMessage *res = NULL;
	rc = ldap_result(ld, msgid, LDAP_MSG_ALL, &tv, &res);
	if (rc == 0) {
		/* The answer may still come: abandon, so the handle is not reused with it pending. */
		(void)ldap_abandon_ext(ld, msgid, NULL, NULL);
		errf(err, errlen, "bind: timed out");
		return LDAP_TIMEOUT;
	}
	if (rc < 0) {
		int code = LDAP_SERVER_DOWN;
		if (ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &code) != LDAP_OPT_SUCCESS)
			code = LDAP_SERVER_DOWN;
		ld_errf(ld, code, "bind", err, errlen);
		return code;
	}
	int code;
	rc = ldap_parse_result(ld, res, &code, NULL, NULL, NULL, NULL, 1);
	if (rc != LDAP_SUCCESS) {
		ld_errf(ld, rc, "bind", err, errlen);
		return rc;
	}
	if (code != LDAP_SUCCESS)
		ld_errf(ld, code, "bind", err, errlen);
	return code;
}

/* The service connection, connected and bound; NULL-safe to call again after a failure. */
static int svc_ready(struct ldap_source *s, const struct deadline *d, char *err, size_t errlen)
{
	if (s->svc.ld != NULL)
		return 0;
	if (conn_open(&s->svc, &s->cfg, d, err, errlen) < 0)
		return -1;
	if (s->cfg.bind_dn[0] != '\0' &&
	    conn_bind(s->svc.ld, s->cfg.bind_dn, s->cfg.bind_password, d, err, errlen) !=
		    LDAP_SUCCESS) {
		size_t n = strlen(err);
		if (n + 1 < errlen)
			errf(err + n, errlen - n, " (service account %s)", s->cfg.bind_dn);
		conn_close(&s->svc);
		return -1;
	}
	return 0;
}

/*
 * RFC 4515 s.3: a value may escape any octet as \XX.  Everything but letters, digits and
 * "-._@" is escaped, which covers the required * ( ) \ NUL and every non-ASCII byte.
 */
static int filter_escape(const char *name, char *out, size_t outsz, size_t *pos)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
			     *p == '@';
		size_t need = plain ? 1 : 3;
		if (*pos + need >= outsz)
			return -1;
		if (plain) {
			out[(*pos)++] = (char)*p;
		} else {
			out[(*pos)++] = '\\';
			out[(*pos)++] = hex[*p >> 4];
			out[(*pos)++] = hex[*p & 15];
		}
	}
	return 0;
}

/* The filter with %u replaced by the escaped name and %% by %. */
static int filter_build(const char *tmpl, const char *name, char *out, size_t outsz)
{
	size_t pos = 0;
	for (const char *p = tmpl; *p != '\0'; p++) {
		if (p[0] == '%' && p[1] == 'u') {
			if (filter_escape(name, out, outsz, &pos) < 0)
				return -1;
			p++;
			continue;
		}
		if (p[0] == '%') {
			if (p[1] != '%')
				return -1;
			p++;
		}
		if (pos + 1 >= outsz)
			return -1;
		out[pos++] = *p;
	}
	out[pos] = '\0';
	return 0;
}

/* A name as users.c allows one: 1 to 63 bytes, no space or control character. */
static bool name_ok(const char *name, size_t len)
{
	if (len == 0 || len >= sizeof(((struct user_entry *)0)->name))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x21 || c == 0x7f)
			return false;
	}
	return true;
}

/*
 * An absolute path without empty, "." or ".." components (one trailing '/' allowed), so
 * that a prefix comparison means what it says.
 */
static bool path_clean(const char *p, size_t len)
{
	if (len == 0 || p[0] != '/' || memchr(p, '\0', len) != NULL)
		return false;
	size_t i = 1;
	while (i < len) {
		size_t j = i;
		while (j < len && p[j] != '/')
			j++;
		size_t n = j - i;
		if (n == 0 && j < len)
			return false; /* "//" */
		if ((n == 1 && p[i] == '.') || (n == 2 && p[i] == '.' && p[i + 1] == '.'))
			return false;
		i = j + 1;
	}
	return true;
}

/* Whether home lies strictly beneath prefix (both clean). */
static bool path_beneath(const char *home, const char *prefix)
{
	size_t n = strlen(prefix);
	while (n > 0 && prefix[n - 1] == '/')
		n--;
	if (strncmp(home, prefix, n) != 0 || home[n] != '/')
		return false;
	/* Something must follow: the prefix itself, the parent of all homes, is no home. */
	return home[n + 1] != '\0' && strcmp(home + n, "/") != 0;
}

/* The values of attr on entry; *n = 0 and NULL when it has none.  Free with ldap_value_free_len. */
static struct berval **values(LDAP *ld, LDAPMessage *entry, const char *attr, int *n)
{
	struct berval **v = ldap_get_values_len(ld, entry, attr);
	*n = v == NULL ? 0 : ldap_count_values_len(v);
	return v;
}

/* The one value of attr as a string, without NUL bytes; NULL *why when absent and optional. */
static int value_one(LDAP *ld, LDAPMessage *entry, const char *attr, char *out, size_t outsz,
		     bool *present, const char **why)
{
	int n;
	struct berval **v = values(ld, entry, attr, &n);
	*present = n > 0;
	int rc = 0;
	if (n > 1) {
		*why = "has more than one value";
		rc = -1;
	} else if (n == 1) {
		if (v[0]->bv_len >= outsz || memchr(v[0]->bv_val, '\0', v[0]->bv_len) != NULL) {
			*why = "is too long or holds a NUL byte";
			rc = -1;
		} else {
			memcpy(out, v[0]->bv_val, v[0]->bv_len);
			out[v[0]->bv_len] = '\0';
		}
	}
	ldap_value_free_len(v);
	return rc;
}

struct mapped {
	struct user_entry e;
	char bad[512]; /* why the entry cannot be mapped; told only after the password matched */
};

static int map_fail(struct mapped *m, const char *attr, const char *why)
{
	errf(m->bad, sizeof(m->bad), "user %s: %s %s", m->e.name, attr, why);
	return -1;
}

/* e->name: the login name, or the entry's value of attr_name that stands for it. */
static int map_name(struct mapped *m, LDAP *ld, LDAPMessage *entry, const char *attr,
		    const char *login)
{
	snprintf(m->e.name, sizeof(m->e.name), "%s", login);
	if (attr[0] == '\0')
		return 0;
	int n;
	struct berval **v = values(ld, entry, attr, &n);
	const struct berval *pick = NULL;
	size_t len = strlen(login);
	for (int i = 0; i < n; i++) {
		/* Several values (uid is multi-valued): the one the login spelled, case aside. */
		if (n == 1 || (v[i]->bv_len == len && strncasecmp(v[i]->bv_val, login, len) == 0)) {
			pick = v[i];
			break;
		}
	}
	int rc = 0;
	if (pick == NULL)
		rc = map_fail(m, attr, n == 0 ? "is missing" : "has no value equal to the login name");
	else if (!name_ok(pick->bv_val, pick->bv_len)) /* also refuses NUL bytes */
		rc = map_fail(m, attr, "is not a valid user name");
	else
		snprintf(m->e.name, sizeof(m->e.name), "%.*s", (int)pick->bv_len, pick->bv_val);
	ldap_value_free_len(v);
	return rc;
}

static int map_home(struct mapped *m, const struct ldap_source_config *c, LDAP *ld,
		    LDAPMessage *entry)
{
	const char *attr = c->attr_home[0] != '\0' ? c->attr_home : "homeDirectory";
	const char *why = NULL;
	bool present;
	if (value_one(ld, entry, attr, m->e.home, sizeof(m->e.home), &present, &why) < 0)
		return map_fail(m, attr, why);
	if (!present)
		return map_fail(m, attr, "is missing");
	if (!path_clean(m->e.home, strlen(m->e.home)))
		return map_fail(m, attr, "must be an absolute path without //, . or .. components");
	if (c->home_prefix[0] != '\0' && !path_beneath(m->e.home, c->home_prefix))
		return map_fail(m, attr, "lies outside home_prefix");
	return 0;
}

/* Permission words: one value or several (each a list), their union. */
static int map_perms(struct mapped *m, const struct ldap_source_config *c, LDAP *ld,
		     LDAPMessage *entry)
{
	m->e.perms = c->default_perms;
	if (c->attr_perms[0] == '\0')
		return 0;
	int n;
	struct berval **v = values(ld, entry, c->attr_perms, &n);
	int rc = 0;
	if (n > 0)
		m->e.perms = 0;
	for (int i = 0; i < n; i++) {
		char words[256];
		unsigned bits;
		if (v[i]->bv_len >= sizeof(words) || memchr(v[i]->bv_val, '\0', v[i]->bv_len)) {
			rc = map_fail(m, c->attr_perms, "is too long or holds a NUL byte");
			break;
		}
		memcpy(words, v[i]->bv_val, v[i]->bv_len);
		words[v[i]->bv_len] = '\0';
		if (perm_parse(words, &bits) < 0) {
			rc = map_fail(m, c->attr_perms,
				      "must be a list of read, write, delete, rename, mkdir, all, none");
			break;
		}
		m->e.perms |= bits;
	}
	ldap_value_free_len(v);
	return rc;
}

/* The settings text: its values joined by spaces (items do not depend on their order). */
static int map_settings(struct mapped *m, const struct ldap_source_config *c, LDAP *ld,
			LDAPMessage *entry)
{
	if (c->attr_settings[0] == '\0')
		return 0;
	int n;
	struct berval **v = values(ld, entry, c->attr_settings, &n);
	char text[USER_SETTINGS_TEXT_MAX];
	size_t len = 0;
	int rc = 0;
	for (int i = 0; i < n; i++) {
		if (v[i]->bv_len + 1 > sizeof(text) - len ||
		    memchr(v[i]->bv_val, '\0', v[i]->bv_len) != NULL) {
			rc = map_fail(m, c->attr_settings, "is too long or holds a NUL byte");
			break;
		}
		if (len > 0)
			text[len++] = ' ';
		memcpy(text + len, v[i]->bv_val, v[i]->bv_len);
		len += v[i]->bv_len;
	}
	ldap_value_free_len(v);
	if (rc < 0 || len == 0)
		return rc;
	struct user_settings set;
	const char *why = NULL;
	if (user_settings_parse(text, len, &set, &why) < 0) {
		errf(m->bad, sizeof(m->bad), "user %s: %s: %s", m->e.name, c->attr_settings,
		     why != NULL ? why : "invalid");
		return -1;
	}
	if (!user_settings_any(&set))
		return 0;
	m->e.set = malloc(sizeof(*m->e.set));
	if (m->e.set == NULL) {
		errf(m->bad, sizeof(m->bad), "user %s: out of memory", m->e.name);
		return -1;
	}
	*m->e.set = set;
	return 0;
}

static int map_id(struct mapped *m, LDAP *ld, LDAPMessage *entry, const char *attr,
		  uint64_t *out)
{
	char text[32];
	const char *why = NULL;
	bool present;
	if (value_one(ld, entry, attr, text, sizeof(text), &present, &why) < 0)
		return map_fail(m, attr, why);
	if (!present)
		return map_fail(m, attr, "is missing (own_ids is set)");
	if (num_parse_u64_cstr(text, ID_MAX, out) < 0)
		return map_fail(m, attr, "is not a number of a user or group");
	/* A directory entry must not make a session run as root. */
	if (*out == 0)
		return map_fail(m, attr, "is 0 (root), which is refused");
	return 0;
}

static int map_ids(struct mapped *m, const struct ldap_source_config *c, LDAP *ld,
		   LDAPMessage *entry)
{
	if (!c->own_ids)
		return 0;
	uint64_t uid, gid;
	if (map_id(m, ld, entry, "uidNumber", &uid) < 0 || map_id(m, ld, entry, "gidNumber", &gid) < 0)
		return -1;
	m->e.own_ids = true;
	m->e.uid = (uid_t)uid;
	m->e.gid = (gid_t)gid;
	return 0;
}

/* Fill m from entry; on failure m->bad says why (e.set is released by the caller). */
static int map_entry(struct mapped *m, const struct ldap_source_config *c, LDAP *ld,
		     LDAPMessage *entry, const char *login)
{
	if (map_name(m, ld, entry, c->attr_name, login) < 0 || map_home(m, c, ld, entry) < 0 ||
	    map_perms(m, c, ld, entry) < 0 || map_settings(m, c, ld, entry) < 0 ||
	    map_ids(m, c, ld, entry) < 0)
		return -1;
	return 0;
}

/* The attributes a search asks for: never userPassword. */
static void search_attrs(const struct ldap_source_config *c, char **attrs)
{
	size_t n = 0;
	attrs[n++] = (char *)(c->attr_home[0] != '\0' ? c->attr_home : "homeDirectory");
	if (c->attr_name[0] != '\0')
		attrs[n++] = (char *)c->attr_name;
	if (c->attr_perms[0] != '\0')
		attrs[n++] = (char *)c->attr_perms;
	if (c->attr_settings[0] != '\0')
		attrs[n++] = (char *)c->attr_settings;
	if (c->own_ids) {
		attrs[n++] = (char *)"uidNumber";
		attrs[n++] = (char *)"gidNumber";
	}
	attrs[n] = NULL;
}

enum found { FOUND_ERROR = -1, FOUND_NONE = 0, FOUND_ONE = 1, FOUND_GONE = 2 };

/*
 * One search on the service connection.  FOUND_GONE: the connection had gone (the server
 * restarted or closed it idle); it is closed, and a new one may be tried.
 */
static enum found search(struct ldap_source *s, const char *base, int scope, const char *filter,
			 const struct deadline *d, LDAPMessage **res, char *err, size_t errlen)
{
	char *attrs[8];
	struct timeval tv;
	search_attrs(&s->cfg, attrs);
	*res = NULL;
	if (!deadline_left(d, &tv)) {
		errf(err, errlen, "search: timed out");
		return FOUND_ERROR;
	}
	int rc = ldap_search_ext_s(s->svc.ld, base, scope, filter, attrs, 0, NULL, NULL, &tv,
				   ENTRIES_SEEN, res);
	if (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR) {
		ld_errf(s->svc.ld, rc, "search", err, errlen);
		ldap_msgfree(*res);
		*res = NULL;
		conn_close(&s->svc);
		return FOUND_GONE;
	}
	if (rc == LDAP_SIZELIMIT_EXCEEDED) {
		errf(err, errlen, "more than one entry matches");
		return FOUND_NONE;
	}
	if (rc != LDAP_SUCCESS) {
		ld_errf(s->svc.ld, rc, "search", err, errlen);
		ldap_msgfree(*res);
		*res = NULL;
		/* After a timeout the handle may still get the late answer: start afresh. */
		if (rc == LDAP_TIMEOUT)
			conn_close(&s->svc);
		return FOUND_ERROR;
	}
	int n = ldap_count_entries(s->svc.ld, *res);
	if (n == 1)
		return FOUND_ONE;
	errf(err, errlen, n == 0 ? "no such user (or not matched by the filter)"
				 : "more than one entry matches");
	return FOUND_NONE;
}

/* search() on a ready service connection, with one new connection when the old one had gone. */
static enum found search_retry(struct ldap_source *s, const char *base, int scope,
			       const char *filter, const struct deadline *d, LDAPMessage **res,
			       char *err, size_t errlen)
{
	enum found f = FOUND_GONE;
	for (int attempt = 0; attempt < 2 && f == FOUND_GONE; attempt++) {
		if (svc_ready(s, d, err, errlen) < 0)
			return FOUND_ERROR;
		f = search(s, base, scope, filter, d, res, err, errlen);
	}
	return f == FOUND_GONE ? FOUND_ERROR : f;
}

/* The user's bind, on a connection of its own.  1, 0 (refused) or -1. */
static int user_bind(const struct ldap_source_config *c, const char *dn, const char *password,
		     const struct deadline *d, char *err, size_t errlen)
{
	struct conn user;
	if (conn_open(&user, c, d, err, errlen) < 0)
		return -1;
	int rc = conn_bind(user.ld, dn, password, d, err, errlen);
	conn_close(&user);
	if (rc == LDAP_SUCCESS)
		return 1;
	if (rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INAPPROPRIATE_AUTH)
		return 0;
	return -1;
}

/* Bind as the entry found and map it; the result of ldap_source_login(). */
static int login_entry(struct ldap_source *s, LDAPMessage *entry, const char *name,
		       const char *password, const struct deadline *d, struct user_entry *e,
		       char *err, size_t errlen)
{
	char *dn = ldap_get_dn(s->svc.ld, entry);
	if (dn == NULL) {
		ld_errf(s->svc.ld, LDAP_DECODING_ERROR, "entry without a DN", err, errlen);
		return -1;
	}
	/* Mapped before the bind, since the entry lives in the search result; told after it. */
	struct mapped m;
	memset(&m, 0, sizeof(m));
	int mapped = map_entry(&m, &s->cfg, s->svc.ld, entry, name);
	int rc = user_bind(&s->cfg, dn, password, d, err, errlen);
	ldap_memfree(dn);
	if (rc == 1 && mapped < 0) {
		errf(err, errlen, "%s", m.bad);
		rc = -1;
	}
	if (rc != 1) {
		user_entry_clear(&m.e);
		return rc;
	}
	*e = m.e;
	return 1;
}

int ldap_source_login(struct ldap_source *s, const char *name, const char *password,
		      struct user_entry *e, char *err, size_t errlen)
{
	memset(e, 0, sizeof(*e));
	errf(err, errlen, "%s", "");
	/* RFC 4513 s.5.1.2: an empty password binds unauthenticated, and that succeeds. */
	if (password == NULL || password[0] == '\0') {
		errf(err, errlen, "empty password");
		return 0;
	}
	if (!name_ok(name, strlen(name))) {
		errf(err, errlen, "not a valid user name");
		return 0;
	}
	char filter[FILTER_MAX];
	if (filter_build(s->cfg.filter, name, filter, sizeof(filter)) < 0) {
		errf(err, errlen, "filter too long for this name");
		return 0;
	}
	struct deadline d;
	if (deadline_start(&d, s->cfg.timeout_ms, err, errlen) < 0)
		return -1;
	LDAPMessage *res = NULL;
	enum found f = search_retry(s, s->cfg.base, LDAP_SCOPE_SUBTREE, filter, &d, &res, err,
				    errlen);
	int rc = f == FOUND_ONE ? login_entry(s, ldap_first_entry(s->svc.ld, res), name, password,
					      &d, e, err, errlen)
				: (f == FOUND_NONE ? 0 : -1);
	ldap_msgfree(res);
	return rc;
}

int ldap_source_ping(struct ldap_source *s, char *err, size_t errlen)
{
	char filter[FILTER_MAX];
	/* A name no entry has, so that only the base entry's existence and the filter count. */
	if (filter_build(s->cfg.filter, "-ferry-check-config-", filter, sizeof(filter)) < 0) {
		errf(err, errlen, "filter too long");
		return -1;
	}
	struct deadline d;
	if (deadline_start(&d, s->cfg.timeout_ms, err, errlen) < 0)
		return -1;
	/* A fresh connection, so that the check also covers connecting and binding. */
	conn_close(&s->svc);
	LDAPMessage *res = NULL;
	enum found f = search_retry(s, s->cfg.base, LDAP_SCOPE_BASE, filter, &d, &res, err, errlen);
	ldap_msgfree(res);
	if (f == FOUND_ERROR)
		return -1;
	errf(err, errlen, "%s", "");
	return 0;
}

/* The filter: %u at least once, no other % sequence than %%. */
static bool filter_ok(const char *f)
{
	bool user = false;
	for (const char *p = strchr(f, '%'); p != NULL; p = strchr(p + 2, '%')) {
		if (p[1] == 'u')
			user = true;
		else if (p[1] != '%')
			return false;
	}
	return user;
}

static bool uri_ok(const char *uri)
{
	return strncmp(uri, "ldap://", 7) == 0 || strncmp(uri, "ldaps://", 8) == 0 ||
	       strncmp(uri, "ldapi://", 8) == 0;
}

static int config_check(const struct ldap_source_config *c, char *err, size_t errlen)
{
	if (!uri_ok(c->uri)) {
		errf(err, errlen, "uri must begin with ldap://, ldaps:// or ldapi://");
		return -1;
	}
	if (c->starttls && strncmp(c->uri, "ldaps://", 8) == 0) {
		errf(err, errlen, "starttls is for ldap://; ldaps:// is TLS already");
		return -1;
	}
	if (c->bind_dn[0] != '\0' && c->bind_password[0] == '\0') {
		/* An empty password would make the service bind anonymous, silently. */
		errf(err, errlen, "bind_dn needs bind_password");
		return -1;
	}
	if (c->bind_dn[0] == '\0' && c->bind_password[0] != '\0') {
		errf(err, errlen, "bind_password without bind_dn");
		return -1;
	}
	if (c->base[0] == '\0') {
		errf(err, errlen, "base is required");
		return -1;
	}
	if (!filter_ok(c->filter)) {
		errf(err, errlen, "filter must hold %%u and no %% sequence but %%u and %%%%");
		return -1;
	}
	if (c->home_prefix[0] != '\0' && !path_clean(c->home_prefix, strlen(c->home_prefix))) {
		errf(err, errlen, "home_prefix must be an absolute path without //, . or ..");
		return -1;
	}
	if ((c->default_perms & ~(unsigned)PERM_ALL) != 0) {
		errf(err, errlen, "default_perms holds unknown bits");
		return -1;
	}
	return 0;
}

int ldap_source_new(const struct ldap_source_config *cfg, struct ldap_source **out, char *err,
		    size_t errlen)
{
	*out = NULL;
	if (config_check(cfg, err, errlen) < 0)
		return -1;
	struct ldap_source *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		errf(err, errlen, "out of memory");
		return -1;
	}
	s->cfg = *cfg;
	if (s->cfg.timeout_ms == 0)
		s->cfg.timeout_ms = LDAP_SOURCE_TIMEOUT_DEFAULT;
	*out = s;
	return 0;
}

void ldap_source_free(struct ldap_source *s)
{
	if (s == NULL)
		return;
	conn_close(&s->svc);
	explicit_bzero(s, sizeof(*s));
	free(s);
}

void ldap_source_config_from(const struct config *cfg, struct ldap_source_config *out)
{
	memset(out, 0, sizeof(*out));
	str_copy(out->uri, sizeof(out->uri), cfg->ldap_uri);
	out->starttls = cfg->ldap_starttls;
	str_copy(out->ca_file, sizeof(out->ca_file), cfg->ldap_ca_file);
	str_copy(out->bind_dn, sizeof(out->bind_dn), cfg->ldap_bind_dn);
	str_copy(out->bind_password, sizeof(out->bind_password), cfg->ldap_bind_password);
	str_copy(out->base, sizeof(out->base), cfg->ldap_base);
	str_copy(out->filter, sizeof(out->filter), cfg->ldap_filter);
	str_copy(out->attr_name, sizeof(out->attr_name), cfg->ldap_attr_name);
	str_copy(out->attr_home, sizeof(out->attr_home), cfg->ldap_attr_home);
	str_copy(out->attr_perms, sizeof(out->attr_perms), cfg->ldap_attr_permissions);
	str_copy(out->attr_settings, sizeof(out->attr_settings), cfg->ldap_attr_settings);
	out->default_perms = cfg->ldap_permissions;
	out->own_ids = false; /* files belong to the service account (no per-user process yet) */
	str_copy(out->home_prefix, sizeof(out->home_prefix), cfg->home_base);
	out->timeout_ms = cfg->ldap_timeout;
}

void ldap_source_preinit(void)
{
	int version;
	/* Any option read with a NULL handle runs the library's global initialisation. */
	(void)ldap_get_option(NULL, LDAP_OPT_PROTOCOL_VERSION, &version);
}

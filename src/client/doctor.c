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
 * It must never touch a socket: sessions come from ftp_open(), data connections from
 * ftp_probe_data(), each made exactly one way with no fall-back, and the verdicts are
 * read from the engine's record of each step (struct ftp_data_probe).  Its own system
 * calls are the name resolution that says which families to check, and the clock.
 *
 * Probes are short (PROBE_MS for each connect and each reply, unless --timeout says
 * otherwise), so that a dropped connection becomes a verdict rather than a hang.  A
 * probe that loses the control connection (a server still trying to reach us when our
 * wait ends) costs the session: a new one is opened for the checks that follow.
 *
 * Output: a line per check as it is made, or one JSON document at the end (--json).
 * Exit status: 0 when no check failed (warnings do not count), 1 when one did; 2 for bad
 * usage, 3 when the host has no address to check, 9 when the netrc file is unusable.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "client/commands.h"
#include "client/ftp.h"
#include "common/buf.h"
#include "common/hostport.h"
#include "common/netaddr.h"
#include "common/reply.h"

#define PROBE_MS 5000              /* each probe's connects and replies, without --timeout */
#define SMALL_FILE (1024 * 1024)   /* the largest file the download check fetches */
#define CERT_DAYS_WARN 14          /* a certificate closer to its end is a warning */
#define DETAILS_MAX 16
#define ADDRS_MAX 4                /* addresses of one family shown in the report */
#define N_KINDS 4                  /* enum data_kind */

enum verdict { V_PASS, V_WARN, V_FAIL, V_SKIP };
static const char *const verdict_names[] = { "PASS", "WARN", "FAIL", "SKIP" };

/* enum data_kind, in its order (DK_EPSV, DK_PASV, DK_EPRT, DK_PORT). */
static const char *const kind_names[N_KINDS] = { "EPSV", "PASV", "EPRT", "PORT" };
/* The order in which the report shows the modes. */
static const enum data_kind report_order[N_KINDS] = { DK_PASV, DK_EPSV, DK_EPRT, DK_PORT };

/* ---- checks and the report ---- */

enum dtype { D_STR, D_INT, D_REAL, D_BOOL };

struct detail {
	const char *key;           /* a literal */
	enum dtype type;
	char s[256];
	long long i;
	double r;
};

struct check {
	const char *name;          /* for programs: "connect", "pasv", "list", ... (a literal) */
	char label[32];            /* for people: "connect", "PASV", "list (EPSV)", ... */
	const char *mode;          /* the data connection mode a check is about, or NULL */
	int family;
	enum verdict v;
	char why[768];
	char fix[512];
	struct detail d[DETAILS_MAX];
	size_t nd;
};

struct family_seen {
	int family;
	char addrs[ADDRS_MAX][INET6_ADDRSTRLEN];
	size_t n;
};

struct doctor {
	struct ftp_options o;      /* every session's: the user's, the probe time-out, the log */
	struct ftp_url u;          /* with the password: copied into each ftp_open, wiped at the end */
	char shown[1200];          /* the URL with the password masked */
	bool json, verbose;
	int probe_ms;
	FILE *sink;                /* the engine's notes and warnings, without -v */
	char *sink_text;
	size_t sink_len;
	struct check cur;          /* the check being made */
	struct check *checks;      /* the ones made (for --json) */
	size_t n, cap;
	size_t count[4];           /* by verdict, even when the array could not grow */
	struct family_seen fams[2];
	size_t nfams;
};

static const char *family_name(int af)
{
	return af == AF_INET6 ? "IPv6" : "IPv4";
}

static struct check *check_begin(struct doctor *dr, int family, const char *name,
				 const char *label, const char *mode)
{
	struct check *c = &dr->cur;

	memset(c, 0, sizeof(*c));
	c->name = name;
	c->family = family;
	c->mode = mode;
	snprintf(c->label, sizeof(c->label), "%s", label);
	return c;
}

/* snprintf, for texts where cutting a long name short is acceptable. */
static void say(char *dst, size_t dstsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *dst, size_t dstsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, dstsz, fmt, ap);
	va_end(ap);
}

static void vappend(char *dst, size_t dstsz, const char *fmt, va_list ap)
{
	size_t n = strnlen(dst, dstsz);

	if (n + 1 < dstsz)
		vsnprintf(dst + n, dstsz - n, fmt, ap);
}

/* Append to the explanation, or to the fix. */
static void why(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why(struct check *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vappend(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
}

static void fix(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fix(struct check *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vappend(c->fix, sizeof(c->fix), fmt, ap);
	va_end(ap);
}

static struct detail *detail_new(struct check *c, const char *key, enum dtype t)
{
	if (c->nd >= DETAILS_MAX)
		return NULL;
	struct detail *d = &c->d[c->nd++];
	memset(d, 0, sizeof(*d));
	d->key = key;
	d->type = t;
	return d;
}

static void d_str(struct check *c, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void d_str(struct check *c, const char *key, const char *fmt, ...)
{
	struct detail *d = detail_new(c, key, D_STR);
	va_list ap;

	if (d == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(d->s, sizeof(d->s), fmt, ap);
	va_end(ap);
}

static void d_int(struct check *c, const char *key, long long v)
{
	struct detail *d = detail_new(c, key, D_INT);

	if (d != NULL)
		d->i = v;
}

static void d_real(struct check *c, const char *key, double v)
{
	struct detail *d = detail_new(c, key, D_REAL);

	if (d != NULL)
		d->r = v;
}

static void d_bool(struct check *c, const char *key, bool v)
{
	struct detail *d = detail_new(c, key, D_BOOL);

	if (d != NULL)
		d->i = v;
}

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6) {
		snprintf(out, outsz, "?");
		return;
	}
	hostport_ntop(ss, out, outsz);
}

static void d_addr(struct check *c, const char *key, const struct sockaddr_storage *ss)
{
	char a[INET6_ADDRSTRLEN];

	addr_text(ss, a, sizeof(a));
	d_str(c, key, "%s", a);
}

/* Text from a server goes out with its control characters as '?'. */
static void put_clean(FILE *out, const char *s)
{
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
}

static void print_check(const struct check *c)
{
	printf("%s  %s: ", verdict_names[c->v], c->label);
	put_clean(stdout, c->why);
	fputc('\n', stdout);
	if ((c->v == V_WARN || c->v == V_FAIL) && c->fix[0] != '\0') {
		fputs("      fix: ", stdout);
		put_clean(stdout, c->fix);
		fputc('\n', stdout);
	}
	fflush(stdout);
}

static void check_end(struct doctor *dr, enum verdict v)
{
	struct check *c = &dr->cur;

	c->v = v;
	dr->count[v]++;
	if (dr->n == dr->cap) {
		size_t cap = dr->cap ? dr->cap * 2 : 32;
		struct check *nv = realloc(dr->checks, cap * sizeof(*nv));
		if (nv != NULL) {
			dr->checks = nv;
			dr->cap = cap;
		}
	}
	if (dr->n < dr->cap)
		dr->checks[dr->n++] = *c;
	if (!dr->json)
		print_check(c);
}

/* A note on stderr under -v, beside the engine's dialogue. */
static void note(struct doctor *dr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct doctor *dr, const char *fmt, ...)
{
	va_list ap;

	if (!dr->verbose)
		return;
	fputs("* doctor: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- JSON ---- */

/* The length of the valid UTF-8 sequence at s (RFC 3629 s.4), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;   /* no surrogates */
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	}
	return n;
}

/* A JSON string (RFC 8259 s.7); bytes that are not UTF-8 become U+FFFD. */
static void json_str(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', out);
	while (*p != '\0') {
		if (*p == '"' || *p == '\\') {
			fprintf(out, "\\%c", *p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(out, "\\u%04x", *p++);
		} else if (*p < 0x80) {
			fputc(*p++, out);
		} else {
			size_t n = utf8_len(p);
			if (n == 0) {
				fputs("\\ufffd", out);
				p++;
			} else {
				fwrite(p, 1, n, out);
				p += n;
			}
		}
	}
	fputc('"', out);
}

static void json_check(FILE *out, const struct check *c)
{
	fputs("    {\"name\": ", out);
	json_str(out, c->name);
	fputs(", \"label\": ", out);
	json_str(out, c->label);
	fprintf(out, ", \"family\": \"%s\", \"mode\": ", c->family == AF_INET6 ? "ipv6" : "ipv4");
	if (c->mode != NULL)
		json_str(out, c->mode);
	else
		fputs("null", out);
	fprintf(out, ", \"status\": \"%s\", \"explanation\": ", verdict_names[c->v]);
	json_str(out, c->why);
	fputs(", \"fix\": ", out);
	if ((c->v == V_WARN || c->v == V_FAIL) && c->fix[0] != '\0')
		json_str(out, c->fix);
	else
		fputs("null", out);
	fputs(", \"details\": {", out);
	for (size_t i = 0; i < c->nd; i++) {
		const struct detail *d = &c->d[i];
		fputs(i > 0 ? ", " : "", out);
		json_str(out, d->key);
		fputs(": ", out);
		switch (d->type) {
		case D_STR: json_str(out, d->s); break;
		case D_INT: fprintf(out, "%lld", d->i); break;
		case D_REAL: fprintf(out, "%.6f", d->r); break;
		case D_BOOL: fputs(d->i ? "true" : "false", out); break;
		}
	}
	fputs("}}", out);
}

static void json_report(const struct doctor *dr, int status)
{
	FILE *out = stdout;

	fputs("{\n  \"url\": ", out);
	json_str(out, dr->shown);
	fprintf(out, ",\n  \"probe_timeout_seconds\": %.3f,\n  \"families\": [", dr->probe_ms / 1000.0);
	for (size_t i = 0; i < dr->nfams; i++) {
		const struct family_seen *fs = &dr->fams[i];
		fprintf(out, "%s{\"family\": \"%s\", \"addresses\": [", i > 0 ? ", " : "",
			fs->family == AF_INET6 ? "ipv6" : "ipv4");
		for (size_t j = 0; j < fs->n; j++) {
			fputs(j > 0 ? ", " : "", out);
			json_str(out, fs->addrs[j]);
		}
		fputs("]}", out);
	}
	fputs("],\n  \"checks\": [\n", out);
	for (size_t i = 0; i < dr->n; i++) {
		json_check(out, &dr->checks[i]);
		fputs(i + 1 < dr->n ? ",\n" : "\n", out);
	}
	fprintf(out, "  ],\n  \"summary\": {\"pass\": %zu, \"warn\": %zu, \"fail\": %zu, "
		     "\"skip\": %zu},\n  \"exit_status\": %d\n}\n",
		dr->count[V_PASS], dr->count[V_WARN], dr->count[V_FAIL], dr->count[V_SKIP], status);
}

/* ---- sessions ---- */

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One probe: a data connection made one way, and what the engine saw. */
struct probe {
	bool ran;                  /* false: there was no session to run it on */
	bool lost;                 /* the control connection broke during it */
	double seconds;            /* the whole probe */
	struct ftp_data_probe p;
};

/* What one family's checks share. */
struct fam {
	int family;
	struct ftp_options o;      /* what opened the main session (after any fall-back) */
	struct ftp *f;             /* the main session; NULL once lost for good */
	struct ftp_session_info si;
	double open_seconds;
	char tls_error[600];       /* TLS as asked failed: why ("" when it did not) */
	bool tls_gave_up;          /* ... and the session went on in the clear */
	struct probe pr[N_KINDS];  /* NLST, by enum data_kind */
	char dir[VPATH_MAX];       /* what to list */
	char file[VPATH_MAX];      /* what to download ("" for nothing) */
	uint64_t file_size;
	char file_note[600];       /* why there is nothing to download */
};

/* ftp_open with the URL's credentials (copied, then wiped). */
static struct ftp *open_session(struct doctor *dr, const struct ftp_options *o, int *rc,
				char *err, size_t errsz, double *seconds)
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

static void reopen(struct doctor *dr, struct fam *fm)
{
	char err[600];
	double secs;
	int rc;

	ftp_close(fm->f);
	note(dr, "the control connection was lost; opening a new session for what follows");
	fm->f = open_session(dr, &fm->o, &rc, err, sizeof(err), &secs);
	if (fm->f == NULL)
		note(dr, "no new session: %s", err);
}

static void run_probe(struct doctor *dr, struct fam *fm, struct probe *pr, enum data_kind k,
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
		reopen(dr, fm);
	}
}

static bool skip_without_session(struct doctor *dr, const struct probe *pr)
{
	if (pr->ran)
		return false;
	why(&dr->cur, "not checked: the control connection was lost and could not be made again");
	check_end(dr, V_SKIP);
	return true;
}

/* ---- connection, greeting, login ---- */

/* The main session, as asked; when TLS fails, without verification, then in the clear. */
static bool open_main(struct doctor *dr, struct fam *fm, int *rc, char *err, size_t errsz)
{
	fm->o = dr->o;
	fm->o.family = fm->family;
	fm->f = open_session(dr, &fm->o, rc, err, errsz, &fm->open_seconds);
	if (fm->f != NULL || *rc != FTPC_ETLS)
		return fm->f != NULL;
	snprintf(fm->tls_error, sizeof(fm->tls_error), "%s", err);
	if (!fm->o.insecure) {
		note(dr, "%s; again without verifying the certificate, to look at it", err);
		fm->o.insecure = true;
		fm->f = open_session(dr, &fm->o, rc, err, errsz, &fm->open_seconds);
	}
	if (fm->f == NULL && *rc == FTPC_ETLS && !dr->u.implicit_tls) {
		note(dr, "TLS failed again; going on without TLS for the other checks");
		fm->o.insecure = dr->o.insecure;
		fm->o.tls = TLSU_OFF;
		fm->tls_gave_up = true;
		fm->f = open_session(dr, &fm->o, rc, err, errsz, &fm->open_seconds);
	}
	return fm->f != NULL;
}

static void tls_failed_check(struct doctor *dr, struct fam *fm, const char *error)
{
	struct check *c = check_begin(dr, fm->family, "tls", "TLS", NULL);

	why(c, "%s", error);
	if (strstr(error, "refused TLS") != NULL)
		fix(c, "offer AUTH TLS on the server (RFC 4217; ferryd: tls_cert and tls_key)");
	else
		fix(c, "check the server's TLS set-up: a certificate and key that match, TLS 1.2 "
		       "or 1.3 (run with -v to see the dialogue)");
	check_end(dr, V_FAIL);
}

static void open_failed(struct doctor *dr, struct fam *fm, int rc, const char *err)
{
	uint16_t port = dr->u.port;
	struct check *c = check_begin(dr, fm->family, "connect", "connect", NULL);

	d_str(c, "error", "%s", err);
	d_int(c, "port", port);
	if (rc == FTPC_ELOGIN || rc == FTPC_EREMOTE || (rc == FTPC_ETLS && !dr->u.implicit_tls)) {
		why(c, "port %u answered with a greeting", (unsigned)port);
		check_end(dr, V_PASS);
		if (rc == FTPC_ETLS) {
			tls_failed_check(dr, fm, err);
			return;
		}
		c = check_begin(dr, fm->family, "login", "login", NULL);
		why(c, "%s", err);
		if (rc == FTPC_ELOGIN)
			fix(c, "check the user name and password (in the URL or ~/.netrc); an "
			       "anonymous login needs a server that allows it");
		else
			fix(c, "the server must accept TYPE I after the login");
		check_end(dr, V_FAIL);
		return;
	}
	if (rc == FTPC_ETLS) {
		why(c, "not checked on its own: with ftps:// TLS comes before the greeting");
		check_end(dr, V_SKIP);
		tls_failed_check(dr, fm, err);
		return;
	}
	why(c, "%s", err);
	if (strstr(err, "refused the session") != NULL)
		fix(c, "the server turns sessions away (421: too many sessions, or this address "
		       "is banned): check its limits and its log");
	else if (strstr(err, "timed out") != NULL)
		fix(c, "the server's firewall (or one on the way) must let port %u in from "
		       "anywhere; check the host name and the port", (unsigned)port);
	else if (strstr(err, "refused") != NULL)
		fix(c, "nothing listens on port %u there, or a firewall rejects the connection: "
		       "start the server, or open port %u", (unsigned)port, (unsigned)port);
	else if (strstr(err, "no reply") != NULL)
		fix(c, "the server must send its 220 greeting at once (a slow reverse DNS lookup "
		       "on the server?)");
	else
		fix(c, "check the host name, the port and the network between this machine and "
		       "the server");
	check_end(dr, V_FAIL);
}

static void check_connect(struct doctor *dr, struct fam *fm)
{
	struct check *c = check_begin(dr, fm->family, "connect", "connect", NULL);
	char peer[INET6_ADDRSTRLEN];

	addr_text(&fm->si.peer, peer, sizeof(peer));
	why(c, "%s port %u: %s (connected, greeted%s and logged in in %.1f ms)", peer,
	    (unsigned)hostport_get_port(&fm->si.peer), fm->si.greeting,
	    fm->si.tls ? ", TLS" : "", fm->open_seconds * 1000.0);
	d_str(c, "address", "%s", peer);
	d_int(c, "port", hostport_get_port(&fm->si.peer));
	d_addr(c, "local_address", &fm->si.local);
	d_str(c, "greeting", "%s", fm->si.greeting);
	d_real(c, "seconds", fm->open_seconds);
	d_bool(c, "tls", fm->si.tls);
	check_end(dr, V_PASS);
}

static void check_features(struct doctor *dr, struct fam *fm)
{
	static const struct {
		const char *feature, *why, *fix;
	} want[] = {
		{ "MLSD", "MLSD (RFC 3659: listings in one fixed format; without it clients guess "
			  "at LIST's)", "offer MLSD and MLST (RFC 3659)" },
		{ "EPSV", "EPSV (RFC 2428: passive mode with no address in the reply, which NAT "
			  "cannot get wrong; the only passive mode on IPv6)", "offer EPSV (RFC 2428)" },
		{ "AUTH TLS", "AUTH TLS (RFC 4217: without it passwords and files go in the clear)",
		  "offer AUTH TLS (RFC 4217; ferryd: tls_cert and tls_key)" },
	};
	static const char *const extra[] = { "EPRT", "SIZE", "MDTM", "REST STREAM", "UTF8",
					     "MFMT", "TVFS", "PBSZ", "PROT" };
	struct check *c = check_begin(dr, fm->family, "features", "features", NULL);
	char missing[300] = "", has[200] = "";
	size_t nmissing = 0;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		bool ok = ftp_has_feature(fm->f, want[i].feature);
		/* On a control connection that is TLS already (ftps://), AUTH TLS has no use. */
		if (!ok && strcmp(want[i].feature, "AUTH TLS") == 0 && fm->si.tls)
			ok = true;
		if (ok) {
			snprintf(has + strlen(has), sizeof(has) - strlen(has), "%s%s",
				 has[0] ? ", " : "", want[i].feature);
			continue;
		}
		snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%s",
			 missing[0] ? ", " : "", want[i].feature);
		why(c, "%s%s", nmissing ? "; " : "FEAT lacks ", want[i].why);
		fix(c, "%s%s", nmissing ? "; " : "", want[i].fix);
		nmissing++;
	}
	char also[200] = "";
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		if (ftp_has_feature(fm->f, extra[i]))
			snprintf(also + strlen(also), sizeof(also) - strlen(also), "%s%s",
				 also[0] ? ", " : "", extra[i]);
	}
	d_str(c, "missing", "%s", missing);
	d_str(c, "offered", "%s%s%s", has, has[0] && also[0] ? ", " : "", also);
	if (nmissing == 0)
		why(c, "FEAT offers %s%s%s%s", has, also[0] ? " (and " : "", also,
		    also[0] ? ")" : "");
	check_end(dr, nmissing == 0 ? V_PASS : V_WARN);
}

static bool anonymous_user(const char *user)
{
	return user[0] == '\0' || strcasecmp(user, "anonymous") == 0 || strcasecmp(user, "ftp") == 0;
}

static void check_login(struct doctor *dr, struct fam *fm)
{
	struct check *c = check_begin(dr, fm->family, "login", "login", NULL);
	const char *user = dr->u.has_user && dr->u.user[0] != '\0' ? dr->u.user : "anonymous";
	bool clear_password = !anonymous_user(user) && !fm->si.tls;

	why(c, "logged in as %s%s", user, fm->si.tls ? " over TLS" : "");
	d_str(c, "user", "%s", user);
	d_bool(c, "tls", fm->si.tls);
	if (clear_password) {
		why(c, ", but the password went in the clear");
		fix(c, "use TLS (--tls, or an ftps:// URL); the server must offer AUTH TLS");
	}
	check_end(dr, clear_password ? V_WARN : V_PASS);
}

/* ---- data connections ---- */

static bool text_has(const char *text, const char *word)
{
	return strcasestr(text, word) != NULL;
}

static bool data_connected(const struct probe *pr)
{
	return pr->ran && pr->p.connected;
}

/* The mode made a data connection and the listing over it ended well. */
static bool mode_works(const struct fam *fm, enum data_kind k)
{
	const struct probe *pr = &fm->pr[k];

	return data_connected(pr) && pr->p.final_code / 100 == 2;
}

/* Details every data connection check carries. */
static void probe_details(struct check *c, const struct probe *pr)
{
	const struct ftp_data_probe *p = &pr->p;

	d_str(c, "setup_reply", "%s", p->setup_reply);
	d_int(c, "port", p->port);
	d_bool(c, "connected", p->connected);
	if (p->connected || p->connect_error != 0)
		d_real(c, "connect_seconds", p->connect_seconds);
	if (p->connect_error != 0)
		d_str(c, "connect_error", "%s", p->connect_error == ETIMEDOUT ? "timed out"
									: strerror(p->connect_error));
	if (p->final_code != 0)
		d_str(c, "final_reply", "%s", p->final_reply);
	if (pr->lost)
		d_bool(c, "control_connection_lost", true);
}

/*
 * Whether we reached the passive port: appends to the explanation and the fix, and
 * returns the verdict.
 */
static enum verdict passive_reach(struct doctor *dr, struct check *c,
				  const struct ftp_data_probe *p, const char *reply)
{
	char where[INET6_ADDRSTRLEN];
	unsigned port = p->port;

	addr_text(&p->target, where, sizeof(where));
	if (p->connected) {
		why(c, "connected to %s port %u in %.1f ms", where, port, p->connect_seconds * 1000.0);
		if (port < 1024) {
			why(c, "; but port %u is below 1024, where firewalls expect services", port);
			fix(c, "give the server a passive port range above 1023 (ferryd: pasv_ports = "
			       "50000-50100)");
			return V_WARN;
		}
		return V_PASS;
	}
	switch (p->connect_error) {
	case ETIMEDOUT:
		why(c, "the connection to %s port %u timed out after %.0f s: a firewall drops it "
		       "(the server's, or one on the way)", where, port, dr->probe_ms / 1000.0);
		break;
	case ECONNREFUSED:
		why(c, "the connection to %s port %u was refused: nothing listens there, or a "
		       "firewall rejects it", where, port);
		break;
	case EHOSTUNREACH:
	case ENETUNREACH:
		why(c, "%s cannot be reached from here (%s)", where, strerror(p->connect_error));
		fix(c, "this machine needs a route to %s, or the server must announce an address "
		       "it can reach", where);
		return V_FAIL;
	case EPERM:
	case EACCES:
		why(c, "this machine's own firewall forbids the connection to %s port %u", where,
		    port);
		fix(c, "this machine's firewall must let connections out to server port %u "
		       "(passive mode)", port);
		return V_FAIL;
	default:
		why(c, "the connection to %s port %u failed: %s", where, port,
		    p->connect_error != 0 ? strerror(p->connect_error) : "no data connection");
		break;
	}
	fix(c, "server port %u (the port in the %s reply; open the whole passive range, ferryd: "
	       "pasv_ports) must be open from anywhere for passive mode", port, reply);
	return V_FAIL;
}

/* A PASV or EPSV the server refused. */
static void passive_refused(struct doctor *dr, struct fam *fm, struct check *c,
			    const struct ftp_data_probe *p, const char *cmd, bool other_works)
{
	if (p->setup_code == 0) {
		why(c, "no reply to %s: the control connection was lost", cmd);
		check_end(dr, V_FAIL);
		return;
	}
	why(c, "the server refused %s: %s", cmd, p->setup_reply);
	if (p->setup_code == R_425_CANT_OPEN_DATA) {
		fix(c, "the server has no passive port left: widen its passive port range "
		       "(ferryd: pasv_ports)");
		check_end(dr, V_FAIL);
		return;
	}
	bool ipv6_epsv = strcmp(cmd, "EPSV") == 0 && fm->family == AF_INET6;
	if (strcmp(cmd, "EPSV") == 0)
		fix(c, "offer EPSV (RFC 2428): it names no address, so NAT cannot get it wrong%s",
		    fm->family == AF_INET6 ? ", and it is IPv6's only passive mode" : "");
	else
		fix(c, "offer PASV: IPv4 clients without EPSV need it for passive mode");
	if (other_works && !ipv6_epsv)
		why(c, " (%s works)", strcmp(cmd, "EPSV") == 0 ? "PASV" : "EPSV");
	check_end(dr, other_works && !ipv6_epsv ? V_WARN : V_FAIL);
}

/* Docker's and Podman's default networks: private, and a sign of a server in a container. */
static bool container_address(const struct sockaddr_storage *a)
{
	static const char *const nets[] = { "172.17.0.0/16", "10.88.0.0/16" };

	for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
		struct netaddr_net n;
		if (netaddr_parse_net(nets[i], strlen(nets[i]), &n) == 0 && netaddr_in_net(a, &n))
			return true;
	}
	return false;
}

/* The 227 named another address than the one we connected to. */
static void pasv_elsewhere(struct doctor *dr, struct fam *fm, struct check *c,
			   const struct ftp_data_probe *p)
{
	char said[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN], target[INET6_ADDRSTRLEN];
	enum netaddr_class ac = netaddr_classify(&p->announced), pc = netaddr_classify(&fm->si.peer);
	bool internal = netaddr_class_is_internal(ac) && !netaddr_class_is_internal(pc);
	bool replaced = !hostport_same_host(&p->announced, &p->target);

	addr_text(&p->announced, said, sizeof(said));
	addr_text(&fm->si.peer, peer, sizeof(peer));
	addr_text(&p->target, target, sizeof(target));
	if (ac == NETADDR_UNSPECIFIED) {
		why(c, "the 227 names %s (\"the address you connected to\"), which ferry "
		       "understands but many clients do not; ", said);
		enum verdict v = passive_reach(dr, c, p, "227");
		fix(c, "%sset the server's passive (external) address to %s (ferryd: pasv_address)",
		    v == V_FAIL ? "; and " : "", peer);
		check_end(dr, v == V_FAIL ? V_FAIL : V_WARN);
		return;
	}
	why(c, "the 227 names the %s address %s%s, not %s, the address we connected to",
	    netaddr_class_name(ac), said,
	    container_address(&p->announced) ? " (a container's network)" : "", peer);
	if (internal)
		why(c, ": clients outside its network cannot reach it");
	if (replaced) {
		why(c, "; ferry connected to %s instead (%s), other clients will not", target,
		    p->connected ? "it answered" : "no answer either");
	} else if (p->connected) {
		why(c, "; it answered, but firewalls and clients that expect the control "
		       "connection's address may not allow it");
	} else {
		why(c, "; ");
		(void)passive_reach(dr, c, p, "227");
		c->fix[0] = '\0';
	}
	fix(c, "set the server's passive (external) address to %s (ferryd: pasv_address = %s)%s",
	    peer, peer, internal ? ", and forward its passive ports to the server" : "");
	check_end(dr, internal || !p->connected ? V_FAIL : V_WARN);
}

static void check_pasv(struct doctor *dr, struct fam *fm)
{
	struct check *c = check_begin(dr, fm->family, "pasv", "PASV", "PASV");
	const struct probe *pr = &fm->pr[DK_PASV];
	const struct ftp_data_probe *p = &pr->p;

	if (fm->family != AF_INET) {
		why(c, "PASV is for IPv4 only; over IPv6 passive mode is EPSV (RFC 2428)");
		check_end(dr, V_SKIP);
		return;
	}
	if (skip_without_session(dr, pr))
		return;
	probe_details(c, pr);
	if (p->setup_code != R_227_PASSIVE) {
		passive_refused(dr, fm, c, p, "PASV", data_connected(&fm->pr[DK_EPSV]));
		return;
	}
	d_addr(c, "announced_address", &p->announced);
	d_int(c, "announced_port", hostport_get_port(&p->announced));
	d_str(c, "announced_class", "%s", netaddr_class_name(netaddr_classify(&p->announced)));
	d_addr(c, "control_address", &fm->si.peer);
	d_addr(c, "connected_to", &p->target);
	d_bool(c, "replaced", !hostport_same_host(&p->announced, &p->target));
	if (!hostport_same_host(&p->announced, &fm->si.peer)) {
		pasv_elsewhere(dr, fm, c, p);
		return;
	}
	char said[INET6_ADDRSTRLEN];
	addr_text(&p->announced, said, sizeof(said));
	why(c, "the 227 names %s port %u, the address we connected to; ", said,
	    (unsigned)hostport_get_port(&p->announced));
	check_end(dr, passive_reach(dr, c, p, "227"));
}

static void check_epsv(struct doctor *dr, struct fam *fm)
{
	struct check *c = check_begin(dr, fm->family, "epsv", "EPSV", "EPSV");
	const struct probe *pr = &fm->pr[DK_EPSV];
	const struct ftp_data_probe *p = &pr->p;

	if (skip_without_session(dr, pr))
		return;
	probe_details(c, pr);
	if (p->setup_code != R_229_EXTENDED_PASSIVE) {
		passive_refused(dr, fm, c, p, "EPSV", data_connected(&fm->pr[DK_PASV]));
		return;
	}
	why(c, "the 229 names port %u; ", (unsigned)p->port);
	check_end(dr, passive_reach(dr, c, p, "229"));
}

static bool setup_unsupported(const struct ftp_data_probe *p)
{
	return p->setup_code == R_502_NOT_IMPLEMENTED || p->setup_code == R_504_BAD_PARAMETER ||
	       p->setup_code == R_522_BAD_PROTOCOL || text_has(p->setup_reply, "not implemented") ||
	       text_has(p->setup_reply, "unknown command") ||
	       text_has(p->setup_reply, "not understood") ||
	       text_has(p->setup_reply, "unrecognized");
}

/* Whether this machine looks to be behind NAT: an internal address towards a public server. */
static bool behind_nat(const struct fam *fm)
{
	return netaddr_class_is_internal(netaddr_classify(&fm->si.local)) &&
	       !netaddr_class_is_internal(netaddr_classify(&fm->si.peer));
}

/* The server could not connect back to us (425, or our wait ended first). */
static void active_blocked(struct doctor *dr, struct fam *fm, struct check *c,
			   const struct probe *pr, const char *cmd)
{
	const struct ftp_data_probe *p = &pr->p;
	const char *reply = p->final_code == R_425_CANT_OPEN_DATA ? p->final_reply
			  : p->setup_code == R_425_CANT_OPEN_DATA ? p->setup_reply : "";
	unsigned port = p->port;

	if (pr->lost)
		why(c, "the server did not answer within %.0f s after %s: it is probably still "
		       "trying to connect to our port %u", dr->probe_ms / 1000.0, cmd, port);
	else if (reply[0] != '\0')
		why(c, "the server could not connect back to our port %u (%s)", port, reply);
	else
		why(c, "the server did not connect to our port %u within %.0f s", port,
		    dr->probe_ms / 1000.0);
	if (text_has(reply, "not permitted") || text_has(reply, "permission denied")) {
		why(c, ": the server's own firewall forbids it to connect out");
		fix(c, "the server's firewall must let port 20 (or its active_ports) connect out "
		       "to client ports > 1023");
		check_end(dr, V_FAIL);
		return;
	}
	why(c, ": something drops incoming connections on this side (this machine's firewall "
	       "or NAT), or the server cannot connect out");
	if (behind_nat(fm)) {
		char local[INET6_ADDRSTRLEN];
		addr_text(&fm->si.local, local, sizeof(local));
		why(c, "; this machine's address %s is %s: it is behind NAT", local,
		    netaddr_class_name(netaddr_classify(&fm->si.local)));
		fix(c, "announce the public address with --active-address and forward the data "
		       "port (--active-ports) to this machine, or use passive mode");
	} else {
		fix(c, "this machine's firewall or NAT must accept incoming connections on the "
		       "data port (here %u), or use passive mode; if it does, the server's firewall "
		       "must let port 20 (or its active_ports) connect out to client ports > 1023",
		    port);
	}
	check_end(dr, V_FAIL);
}

static void active_refused(struct doctor *dr, struct fam *fm, struct check *c,
			   const struct ftp_data_probe *p, enum data_kind k)
{
	const char *cmd = kind_names[k];
	enum data_kind other = k == DK_EPRT ? DK_PORT : DK_EPRT;
	bool other_works = data_connected(&fm->pr[other]);

	if (p->setup_code == 0) {
		why(c, "no reply to %s: the control connection was lost", cmd);
		check_end(dr, V_FAIL);
		return;
	}
	if (setup_unsupported(p)) {
		why(c, "the server does not support %s: %s%s", cmd, p->setup_reply,
		    other_works ? (k == DK_EPRT ? " (PORT works)" : " (EPRT works)") : "");
		fix(c, "%s", k == DK_EPRT ? "offer EPRT (RFC 2428): IPv6 clients need it for "
					   "active mode" : "offer PORT for active mode");
		bool needed = k == DK_EPRT ? fm->family == AF_INET6 : !other_works;
		check_end(dr, other_works && !needed ? V_WARN : V_FAIL);
		return;
	}
	char local[INET6_ADDRSTRLEN];
	addr_text(&fm->si.local, local, sizeof(local));
	why(c, "the server refused the address we named, %s port %u: %s", local,
	    (unsigned)p->port, p->setup_reply);
	if (behind_nat(fm))
		why(c, " (%s is %s: a NAT between us changes it)", local,
		    netaddr_class_name(netaddr_classify(&fm->si.local)));
	fix(c, "announce the address the server sees with --active-address (and forward the "
	       "data port to this machine), or use passive mode");
	check_end(dr, V_FAIL);
}

static void check_active(struct doctor *dr, struct fam *fm, enum data_kind k)
{
	const char *cmd = kind_names[k];
	struct check *c = check_begin(dr, fm->family, k == DK_EPRT ? "eprt" : "port", cmd, cmd);
	const struct probe *pr = &fm->pr[k];
	const struct ftp_data_probe *p = &pr->p;

	if (k == DK_PORT && fm->family != AF_INET) {
		why(c, "PORT is for IPv4 only; over IPv6 active mode is EPRT (RFC 2428)");
		check_end(dr, V_SKIP);
		return;
	}
	if (skip_without_session(dr, pr))
		return;
	probe_details(c, pr);
	d_addr(c, "local_address", &fm->si.local);
	if (p->setup_code == R_425_CANT_OPEN_DATA) {
		active_blocked(dr, fm, c, pr, cmd);   /* servers that connect at PORT time */
		return;
	}
	if (p->setup_code / 100 != 2) {
		active_refused(dr, fm, c, p, k);
		return;
	}
	if (p->connected) {
		char from[INET6_ADDRSTRLEN];
		addr_text(&p->target, from, sizeof(from));
		d_str(c, "server_address", "%s", from);
		d_int(c, "server_port", hostport_get_port(&p->target));
		why(c, "the server connected to our port %u from %s port %u in %.1f ms",
		    (unsigned)p->port, from, (unsigned)hostport_get_port(&p->target),
		    p->connect_seconds * 1000.0);
		check_end(dr, V_PASS);
		return;
	}
	if (pr->lost || p->prelim_code == R_425_CANT_OPEN_DATA ||
	    p->final_code == R_425_CANT_OPEN_DATA || p->connect_error == ETIMEDOUT) {
		active_blocked(dr, fm, c, pr, "NLST");
		return;
	}
	if (p->prelim_code / 100 == 4 || p->prelim_code / 100 == 5) {
		why(c, "not checked: the server answered NLST with %s before any data connection",
		    p->final_reply[0] ? p->final_reply : "an error");
		check_end(dr, V_SKIP);
		return;
	}
	why(c, "no data connection: %s", p->final_reply[0] ? p->final_reply : p->setup_reply);
	fix(c, "this machine's firewall or NAT must accept incoming connections on the data port "
	       "(here %u), or use passive mode", (unsigned)p->port);
	check_end(dr, V_FAIL);
}

/* ---- listing and download ---- */

static void transfer_failed_fix(struct check *c, int code)
{
	if (code == R_550_UNAVAILABLE || code == R_450_FILE_BUSY)
		fix(c, "give a URL whose path names a directory (or file) that exists and may be read");
	else if (code == R_522_TLS_REFUSED || code == R_534_POLICY || code == R_521_PROT_REFUSED)
		fix(c, "the server refused the data connection's TLS: it must accept protected "
		       "data connections that resume the control connection's session");
	else if (code == R_530_NOT_LOGGED_IN)
		fix(c, "the user must be allowed to list and download");
	else
		fix(c, "the data connection broke: check the server's log, and any firewall or NAT "
		       "that cuts connections on the way");
}

static void check_listings(struct doctor *dr, struct fam *fm, const char *cmd)
{
	for (size_t i = 0; i < N_KINDS; i++) {
		enum data_kind k = report_order[i];
		const struct probe *pr = &fm->pr[k];
		if (!data_connected(pr))
			continue;
		char label[32];
		snprintf(label, sizeof(label), "list (%s)", kind_names[k]);
		struct check *c = check_begin(dr, fm->family, "list", label, kind_names[k]);
		const struct ftp_data_probe *p = &pr->p;
		probe_details(c, pr);
		d_int(c, "bytes", (long long)p->bytes);
		d_bool(c, "tls", p->tls);
		if (p->final_code / 100 == 2) {
			why(c, "%s: %" PRIu64 " bytes over a%s data connection: %s", cmd, p->bytes,
			    p->tls ? " protected" : "n unprotected", p->final_reply);
			check_end(dr, V_PASS);
			continue;
		}
		why(c, "%s: %s", cmd, p->final_reply[0] ? p->final_reply : "no final reply");
		transfer_failed_fix(c, p->final_code);
		check_end(dr, V_FAIL);
	}
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
	size_t dl = strlen(fm->dir);
	if (rc != FTPC_OK) {
		say(fm->file_note, sizeof(fm->file_note), "the listing to find a file failed: %s",
		    ftp_error(fm->f));
		if (rc == FTPC_ECONNECT)
			reopen(dr, fm);
	} else if (!s->found) {
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
	free(s);
}

static void check_downloads(struct doctor *dr, struct fam *fm)
{
	char cmd[VPATH_MAX + 8];
	bool any = false;

	if (fm->file[0] == '\0') {
		struct check *c = check_begin(dr, fm->family, "download", "download", NULL);
		why(c, "not checked: %s", fm->file_note);
		check_end(dr, V_SKIP);
		return;
	}
	snprintf(cmd, sizeof(cmd), "RETR %s", fm->file);
	for (size_t i = 0; i < N_KINDS; i++) {
		enum data_kind k = report_order[i];
		if (!mode_works(fm, k))
			continue;
		any = true;
		char label[32];
		snprintf(label, sizeof(label), "download (%s)", kind_names[k]);
		struct check *c = check_begin(dr, fm->family, "download", label, kind_names[k]);
		struct probe pr;
		run_probe(dr, fm, &pr, k, cmd);
		if (skip_without_session(dr, &pr))
			continue;
		const struct ftp_data_probe *p = &pr.p;
		probe_details(c, &pr);
		d_str(c, "file", "%s", fm->file);
		d_int(c, "size", (long long)fm->file_size);
		d_int(c, "bytes", (long long)p->bytes);
		d_real(c, "seconds", pr.seconds);
		d_bool(c, "tls", p->tls);
		if (p->final_code / 100 == 2 && p->bytes == fm->file_size) {
			why(c, "RETR %s: %" PRIu64 " bytes in %.1f ms: %s", fm->file, p->bytes,
			    pr.seconds * 1000.0, p->final_reply);
			check_end(dr, V_PASS);
		} else if (p->final_code / 100 == 2) {
			why(c, "RETR %s: %" PRIu64 " bytes of %" PRIu64 " (%s)", fm->file, p->bytes,
			    fm->file_size, p->final_reply);
			fix(c, "the transfer was cut short: check the server's log, and any firewall "
			       "or NAT on the way");
			check_end(dr, V_FAIL);
		} else {
			why(c, "RETR %s: %s", fm->file, p->final_reply[0] ? p->final_reply
				: p->setup_reply[0] ? p->setup_reply : "no data connection");
			transfer_failed_fix(c, p->final_code);
			check_end(dr, V_FAIL);
		}
	}
	if (!any) {
		struct check *c = check_begin(dr, fm->family, "download", "download", NULL);
		why(c, "not checked: no data connection mode works");
		check_end(dr, V_SKIP);
	}
}

/* What to list and what to download: the URL's directory, or its file and the file's. */
static void choose_paths(struct doctor *dr, struct fam *fm)
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

/* ---- TLS ---- */

static void check_certificate(struct doctor *dr, struct fam *fm, const struct tls_peer_info *pi)
{
	struct check *c = check_begin(dr, fm->family, "tls-certificate", "TLS certificate", NULL);
	const char *host = dr->u.host;

	d_str(c, "subject", "%s", pi->subject);
	d_str(c, "issuer", "%s", pi->issuer);
	d_str(c, "not_after", "%s", pi->not_after);
	d_int(c, "days_left", pi->days_left);
	d_bool(c, "verified", pi->verified);
	if (!pi->verified)
		d_str(c, "verify_error", "%s", pi->verify_error);
	d_str(c, "version", "%s", pi->version);
	d_str(c, "cipher", "%s", pi->cipher);
	if (pi->verified && pi->days_left >= CERT_DAYS_WARN) {
		why(c, "%s, issued by %s: verified for %s, valid until %s (%ld days)", pi->subject,
		    pi->issuer, host, pi->not_after, pi->days_left);
		check_end(dr, V_PASS);
		return;
	}
	if (pi->verified) {
		why(c, "%s: verified for %s, but it expires in %ld days (%s)", pi->subject, host,
		    pi->days_left, pi->not_after);
		fix(c, "renew the server's certificate before %s", pi->not_after);
		check_end(dr, V_WARN);
		return;
	}
	const char *e = pi->verify_error;
	why(c, "not verified for %s: %s (subject %s, issuer %s, valid until %s)%s", host, e,
	    pi->subject, pi->issuer, pi->not_after,
	    dr->o.insecure ? "; --insecure lets ferry go on, other clients will refuse it" : "");
	if (text_has(e, "mismatch"))
		fix(c, "the server's certificate must name %s (subjectAltName %s:%s)", host,
		    netaddr_parse_addr(host, strlen(host), &(struct sockaddr_storage){ 0 }) == 0
			    ? "IP" : "DNS", host);
	else if (text_has(e, "expired") || pi->days_left < 0)
		fix(c, "renew the server's certificate");
	else if (text_has(e, "issuer") || text_has(e, "self-signed") || text_has(e, "self signed"))
		fix(c, "use a certificate from a CA that clients trust and send its intermediate "
		       "certificates (ferryd: tls_chain), or give ferry the CA with --ca-file");
	else
		fix(c, "replace the server's certificate (%s)", e);
	check_end(dr, V_FAIL);
}

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
	struct ftp *f = open_session(dr, &o, &rc, err, sizeof(err), &secs);
	if (f != NULL) {
		struct ftp_session_info si;
		ftp_session_info(f, &si);
		ftp_close(f);
		d_str(c, "cipher", "%s", si.tls_peer.cipher);
		why(c, "a session offering %s alone works (%s)", label, si.tls_peer.cipher);
		check_end(dr, V_PASS);
		return;
	}
	d_str(c, "error", "%s", err);
	if (rc != FTPC_ETLS) {
		why(c, "not checked: %s", err);
		check_end(dr, V_SKIP);
		return;
	}
	why(c, "the server refused a session offering %s alone: %s", label, err);
	if (version == 0x0303)
		fix(c, "enable TLS 1.2 on the server: clients without TLS 1.3 cannot connect");
	else
		fix(c, "enable TLS 1.3 on the server (OpenSSL 1.1.1 or later)");
	check_end(dr, V_WARN);
}

static void check_versions(struct doctor *dr, struct fam *fm, const struct tls_peer_info *pi)
{
	check_version(dr, fm, 0x0303, "tls-1.2", "TLS 1.2");
	check_version(dr, fm, 0x0304, "tls-1.3", "TLS 1.3");
}

/* RFC 4217 s.10.2: each protected data connection resumes the control connection's session. */
static void check_resumption(struct doctor *dr, struct fam *fm, struct ftp *tf,
			     const struct ftp_session_info *tsi, const char *cmd)
{
	struct check *c = check_begin(dr, fm->family, "tls-resumption", "TLS resumption", NULL);
	enum data_kind k = DK_EPSV;
	bool found = false;

	if (!tsi->data_protected) {
		if (dr->o.prot_clear) {
			why(c, "not checked: data connections stay in the clear (--prot-clear)");
			check_end(dr, V_SKIP);
			return;
		}
		why(c, "the server refused to protect data connections (PROT P): files go in the "
		       "clear");
		fix(c, "let the server protect data connections (PBSZ 0, PROT P; RFC 4217 s.9)");
		check_end(dr, V_WARN);
		return;
	}
	for (size_t i = 0; i < N_KINDS && !found; i++) {
		if (mode_works(fm, (enum data_kind)i)) {
			k = (enum data_kind)i;
			found = true;
		}
	}
	if (!found) {
		why(c, "not checked: no data connection mode works");
		check_end(dr, V_SKIP);
		return;
	}
	c->mode = kind_names[k];
	struct ftp_data_probe p[2];
	int n = 0;
	bool lost = false;
	while (n < 2 && !lost)
		lost = ftp_probe_data(tf, k, cmd, dr->probe_ms, &p[n++]) < 0;
	d_str(c, "mode", "%s", kind_names[k]);
	for (int i = 0; i < n; i++) {
		d_bool(c, i == 0 ? "tls_resumed_1" : "tls_resumed_2", p[i].tls_resumed);
		d_str(c, i == 0 ? "final_reply_1" : "final_reply_2", "%s", p[i].final_reply);
	}
	if (lost) {
		why(c, "the control connection was lost during the check");
		check_end(dr, V_FAIL);
		return;
	}
	bool resumed = p[0].tls_resumed && p[1].tls_resumed;
	bool done = p[0].final_code / 100 == 2 && p[1].final_code / 100 == 2;
	bool tls = p[0].tls && p[1].tls;
	if (resumed && done) {
		why(c, "two %s data connections in a row both resumed the control connection's "
		       "TLS session", kind_names[k]);
		check_end(dr, V_PASS);
		return;
	}
	int bad = !p[0].tls_resumed || !p[0].tls || p[0].final_code / 100 != 2 ? 1 : 2;
	const struct ftp_data_probe *b = &p[bad - 1];
	if (!tls || !done) {
		why(c, "%s data connection %d %s: %s", kind_names[k], bad,
		    b->tls ? (b->tls_resumed ? "resumed its session, but failed"
					     : "did not resume the session and failed")
			   : "had no TLS", b->final_reply[0] ? b->final_reply : "no reply");
		fix(c, "the server must accept data connections that resume the control "
		       "connection's TLS session, also a second time (TLS 1.3 tickets that are "
		       "good for one use only break the second one)");
		check_end(dr, V_FAIL);
		return;
	}
	why(c, "%s data connection %d did not resume the control connection's TLS session, and "
	       "the server took it all the same: whoever races for the data port can take a "
	       "transfer", kind_names[k], bad);
	fix(c, "make the server resume sessions on data connections and require it (RFC 4217 "
	       "s.10.2; ferryd: tls_require_reuse = yes, vsftpd: require_ssl_reuse=YES)");
	check_end(dr, V_WARN);
}

/* A TLS session for the TLS checks when the main one is in the clear. */
static struct ftp *open_tls_session(struct doctor *dr, struct fam *fm, char *err, size_t errsz)
{
	struct ftp_options o = fm->o;
	double secs;
	int rc;

	o.tls = TLSU_REQUIRED;
	o.insecure = dr->o.insecure;
	struct ftp *f = open_session(dr, &o, &rc, err, errsz, &secs);
	if (f == NULL && rc == FTPC_ETLS && !o.insecure) {
		char again[600];
		note(dr, "%s; again without verifying the certificate, to look at it", err);
		o.insecure = true;
		f = open_session(dr, &o, &rc, again, sizeof(again), &secs);
	}
	return f;
}

static void check_tls(struct doctor *dr, struct fam *fm, const char *cmd)
{
	bool asked = dr->u.implicit_tls || dr->o.tls != TLSU_OFF;
	struct ftp *tf = NULL;
	bool own = false;
	char err[600] = "";

	if (fm->f == NULL) {
		struct check *c = check_begin(dr, fm->family, "tls", "TLS", NULL);
		why(c, "not checked: the control connection was lost and could not be made again");
		check_end(dr, V_SKIP);
		return;
	}
	if (fm->si.tls) {
		tf = fm->f;
	} else if (fm->tls_gave_up) {
		tls_failed_check(dr, fm, fm->tls_error);
		return;
	} else if (!asked && !ftp_has_feature(fm->f, "AUTH TLS")) {
		struct check *c = check_begin(dr, fm->family, "tls", "TLS", NULL);
		why(c, "not checked: the server does not offer AUTH TLS (see features)");
		check_end(dr, V_SKIP);
		return;
	} else {
		tf = open_tls_session(dr, fm, err, sizeof(err));
		if (tf == NULL) {
			tls_failed_check(dr, fm, err);
			return;
		}
		own = true;
	}
	struct ftp_session_info tsi;
	ftp_session_info(tf, &tsi);
	check_certificate(dr, fm, &tsi.tls_peer);
	check_versions(dr, fm, &tsi.tls_peer);
	check_resumption(dr, fm, tf, &tsi, cmd);
	if (own)
		ftp_close(tf);
}

/* ---- one family ---- */

static void diagnose(struct doctor *dr, const struct family_seen *fs)
{
	struct fam *fm = calloc(1, sizeof(*fm));
	char err[600], nlst[VPATH_MAX + 8];
	int rc;

	if (!dr->json) {
		printf("\n%s:", family_name(fs->family));
		for (size_t i = 0; i < fs->n; i++)
			printf("%s %s", i > 0 ? "," : "", fs->addrs[i]);
		printf("\n");
	}
	if (fm == NULL) {
		struct check *c = check_begin(dr, fs->family, "connect", "connect", NULL);
		why(c, "out of memory");
		check_end(dr, V_FAIL);
		return;
	}
	fm->family = fs->family;
	if (!open_main(dr, fm, &rc, err, sizeof(err))) {
		open_failed(dr, fm, rc, err);
		free(fm);
		return;
	}
	ftp_session_info(fm->f, &fm->si);
	check_connect(dr, fm);
	check_features(dr, fm);
	check_login(dr, fm);
	choose_paths(dr, fm);
	snprintf(nlst, sizeof(nlst), "NLST%s%s", fm->dir[0] ? " " : "", fm->dir);
	for (size_t i = 0; i < N_KINDS; i++) {
		enum data_kind k = (enum data_kind)i;
		if ((k == DK_PASV || k == DK_PORT) && fm->family != AF_INET)
			continue;
		note(dr, "probing %s", kind_names[k]);
		run_probe(dr, fm, &fm->pr[k], k, nlst);
	}
	check_pasv(dr, fm);
	check_epsv(dr, fm);
	check_active(dr, fm, DK_EPRT);
	check_active(dr, fm, DK_PORT);
	check_listings(dr, fm, nlst);
	if (fm->file[0] == '\0' && fm->file_note[0] == '\0')
		find_file(dr, fm);
	check_downloads(dr, fm);
	check_tls(dr, fm, nlst);
	ftp_close(fm->f);
	free(fm);
}

/* ---- the command ---- */

/* Which families the host has addresses in (as -4/-6 allow), IPv4 first. */
static int resolve(struct doctor *dr, int family)
{
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
	static const int order[] = { AF_INET, AF_INET6 };
	for (size_t o = 0; o < 2; o++) {
		struct family_seen *fs = &dr->fams[dr->nfams];
		fs->family = order[o];
		for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
			struct sockaddr_storage ss;
			char a[INET6_ADDRSTRLEN];
			if (ai->ai_family != order[o] || ai->ai_addrlen > sizeof(ss))
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
		if (fs->n > 0)
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
	if (!json)
		printf("ferry doctor %s (each probe waits at most %.0f s)\n", dr->shown,
		       dr->probe_ms / 1000.0);
	for (size_t i = 0; i < dr->nfams; i++)
		diagnose(dr, &dr->fams[i]);
	status = dr->count[V_FAIL] > 0 ? 1 : 0;
	if (json)
		json_report(dr, status);
	else
		printf("\nsummary: %zu pass, %zu warn, %zu fail, %zu skip\n",
		       dr->count[V_PASS], dr->count[V_WARN], dr->count[V_FAIL], dr->count[V_SKIP]);
	doctor_free(dr);
	return status;
}

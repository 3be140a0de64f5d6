/*
 * url.c: ftp:// and ftps:// URLs for the client (RFC 1738 s.3.2; the authority as in
 * RFC 3986 s.3.2).
 *
 * The URL comes from the command line, so every refusal carries a reason the user can act
 * on.  Refused: raw control bytes; a raw '?' or '#' (an FTP URL has no query or fragment,
 * so they must be written %3F and %23); a raw '@' in the user or password; a malformed
 * %XX; a decoded NUL, CR or LF in any field, since USER, PASS and RETR carry these fields
 * verbatim and a line break there would end the command early.  A raw space or non-ASCII
 * byte in the user, password or path is tolerated (a shell user quotes "My Files/").
 *
 * Pure: no I/O and no name resolution.  A host name is only checked for its characters;
 * what looks like a number must be a dotted-quad IPv4 address, so that "1.2.3" or "123"
 * never reaches the resolver, which would read them as inet_aton(3) does.
 */
#include "url.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "num.h"

#define FTP_PORT 21
#define FTPS_PORT 990 /* RFC 4217 s.9 (implicit TLS, a port of its own) */
#define PORT_DIGITS_MAX 5
#define TYPE_PARAM ";type="

static int bad(const char **why, const char *reason)
{
	*why = reason;
	return FERR_INVALID;
}

static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decode s into out (outsz bytes, always NUL-terminated on success).  Returns 0,
 * FERR_INVALID for a '%' not followed by two hex digits, FERR_TOOBIG when it does not fit.
 */
static int decode(struct slice s, char *out, size_t outsz, size_t *outlen)
{
	size_t n = 0;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if (c == '%') {
			int hi = i + 2 < s.len ? hex_value((unsigned char)s.ptr[i + 1]) : -1;
			int lo = hi >= 0 ? hex_value((unsigned char)s.ptr[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return FERR_INVALID;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (n + 1 >= outsz)
			return FERR_TOOBIG;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	*outlen = n;
	return FERR_OK;
}

enum field { F_USER, F_PASSWORD, F_PATH };

/* Decode one of user, password, path into its array, with that field's reasons. */
static int take_field(struct slice s, char *out, size_t outsz, enum field f, const char **why)
{
	static const char *const reasons[][3] = {
		[F_USER] = { "bad %XX in user", "user too long", "NUL, CR or LF in user" },
		[F_PASSWORD] = { "bad %XX in password", "password too long",
				 "NUL, CR or LF in password" },
		[F_PATH] = { "bad %XX in path", "path too long", "NUL, CR or LF in path" },
	};
	size_t n;
	int rc = decode(s, out, outsz, &n);
	if (rc == FERR_INVALID)
		return bad(why, reasons[f][0]);
	if (rc != FERR_OK)
		return bad(why, reasons[f][1]);
	if (!path_name_ok(out, n))
		return bad(why, reasons[f][2]);
	return FERR_OK;
}

static int take_scheme(const char **s, struct ftp_url *u, const char **why)
{
	const char *sep = strstr(*s, "://");
	if (sep == NULL)
		return bad(why, "not a URL (no \"://\")");
	struct slice scheme = { *s, (size_t)(sep - *s) };
	if (slice_eq_nocase(scheme, SLICE_LIT("ftp"))) {
		u->implicit_tls = false;
		u->port = FTP_PORT;
	} else if (slice_eq_nocase(scheme, SLICE_LIT("ftps"))) {
		u->implicit_tls = true;
		u->port = FTPS_PORT;
	} else {
		return bad(why, "unknown scheme (ftp:// or ftps:// only)");
	}
	*s = sep + 3;
	return FERR_OK;
}

/* "user[:password]", the part of the authority before its last '@'. */
static int take_userinfo(struct slice s, struct ftp_url *u, const char **why)
{
	if (memchr(s.ptr, '@', s.len) != NULL)
		return bad(why, "'@' in a user or password must be written %40");
	const char *colon = memchr(s.ptr, ':', s.len);
	struct slice user = { s.ptr, colon != NULL ? (size_t)(colon - s.ptr) : s.len };
	if (user.len == 0)
		return bad(why, "empty user");
	int rc = take_field(user, u->user, sizeof(u->user), F_USER, why);
	if (rc != FERR_OK)
		return rc;
	u->has_user = true;
	if (colon == NULL)
		return FERR_OK;
	/* Further colons belong to the password: there is nothing else they could mean. */
	struct slice pass = { colon + 1, s.len - user.len - 1 };
	rc = take_field(pass, u->password, sizeof(u->password), F_PASSWORD, why);
	if (rc != FERR_OK)
		return rc;
	u->has_password = true;
	return FERR_OK;
}

static int take_port(struct slice s, struct ftp_url *u, const char **why)
{
	uint64_t v;

	if (s.len == 0)
		return FERR_OK; /* "host:" means the default port (RFC 3986 s.3.2.3) */
	if (s.len > PORT_DIGITS_MAX || num_parse_u64(s, 65535, &v) != FERR_OK || v == 0)
		return bad(why, "bad port (1-65535)");
	u->port = (uint16_t)v;
	return FERR_OK;
}

/* "[v6addr]" at the start of s; *rest is what follows the ']'. */
static int take_ipv6(struct slice s, struct ftp_url *u, struct slice *rest, const char **why)
{
	const char *close = memchr(s.ptr, ']', s.len);
	if (close == NULL)
		return bad(why, "bad IPv6 address (no ']')");
	struct slice addr = { s.ptr + 1, (size_t)(close - s.ptr - 1) };
	if (memchr(addr.ptr, '%', addr.len) != NULL)
		return bad(why, "IPv6 zone ids are not supported");
	if (addr.len >= INET6_ADDRSTRLEN || addr.len >= sizeof(u->host))
		return bad(why, "bad IPv6 address");
	memcpy(u->host, addr.ptr, addr.len);
	u->host[addr.len] = '\0';
	struct in6_addr a6;
	if (inet_pton(AF_INET6, u->host, &a6) != 1)
		return bad(why, "bad IPv6 address");
	u->host_is_ipv6 = true;
	*rest = (struct slice){ close + 1, s.len - addr.len - 2 };
	return FERR_OK;
}

static int take_name(struct slice s, struct ftp_url *u, const char **why)
{
	bool numeric = true;

	if (s.len == 0)
		return bad(why, "missing host");
	if (s.len >= sizeof(u->host))
		return bad(why, "host too long");
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if (!is_alnum(c) && c != '-' && c != '.' && c != '_')
			return bad(why, "bad character in host");
		if (c != '.' && (c < '0' || c > '9'))
			numeric = false;
	}
	memcpy(u->host, s.ptr, s.len);
	u->host[s.len] = '\0';
	struct in_addr a4;
	if (numeric && inet_pton(AF_INET, u->host, &a4) != 1)
		return bad(why, "bad IPv4 address");
	return FERR_OK;
}

/* "host[:port]" */
static int take_hostport(struct slice s, struct ftp_url *u, const char **why)
{
	struct slice rest;
	int rc;

	if (s.len > 0 && s.ptr[0] == '[') {
		rc = take_ipv6(s, u, &rest, why);
		if (rc != FERR_OK)
			return rc;
		if (rest.len > 0 && rest.ptr[0] != ':')
			return bad(why, "bad character after ']'");
	} else {
		const char *colon = memchr(s.ptr, ':', s.len);
		size_t n = colon != NULL ? (size_t)(colon - s.ptr) : s.len;
		if (colon != NULL && memchr(colon + 1, ':', s.len - n - 1) != NULL)
			return bad(why, "an IPv6 address must be written in brackets");
		rc = take_name((struct slice){ s.ptr, n }, u, why);
		if (rc != FERR_OK)
			return rc;
		rest = (struct slice){ s.ptr + n, s.len - n };
	}
	if (rest.len == 0)
		return FERR_OK;
	return take_port((struct slice){ rest.ptr + 1, rest.len - 1 }, u, why);
}

/* ASCII case-insensitive search for TYPE_PARAM in s; NULL when absent. */
static const char *find_type_param(struct slice s)
{
	size_t m = sizeof(TYPE_PARAM) - 1;
	for (size_t i = 0; i + m <= s.len; i++) {
		if (slice_eq_nocase((struct slice){ s.ptr + i, m }, SLICE_LIT(TYPE_PARAM)))
			return s.ptr + i;
	}
	return NULL;
}

/*
 * The raw path after the separating '/'.  RFC 1738 s.3.2.2: ";type=" can only end the
 * last segment; an encoded ';' (%3B) is part of a name.
 */
static int take_path(struct slice s, struct ftp_url *u, const char **why)
{
	size_t last = s.len;
	while (last > 0 && s.ptr[last - 1] != '/')
		last--;
	const char *param = find_type_param((struct slice){ s.ptr + last, s.len - last });
	if (param != NULL) {
		const char *v = param + sizeof(TYPE_PARAM) - 1;
		size_t vlen = (size_t)(s.ptr + s.len - v);
		char t = vlen == 1 ? (char)(v[0] | 0x20) : 0;
		if (t != 'a' && t != 'i' && t != 'd')
			return bad(why, "bad ;type= (a, i or d)");
		u->type = t;
		s.len = (size_t)(param - s.ptr);
	}
	return take_field(s, u->path, sizeof(u->path), F_PATH, why);
}

/* Bytes that no part of an FTP URL may hold raw. */
static int check_raw(const char *s, const char **why)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			return bad(why, "control character in URL (write it %XX)");
		if (c == '?' || c == '#')
			return bad(why, "'?' and '#' must be written %3F and %23");
	}
	return FERR_OK;
}

static int parse(const char *s, struct ftp_url *u, const char **why)
{
	int rc = check_raw(s, why);
	if (rc == FERR_OK)
		rc = take_scheme(&s, u, why);
	if (rc != FERR_OK)
		return rc;

	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	/* RFC 3986 s.3.2: the host follows the last '@', so a raw one earlier is caught. */
	size_t at = alen;
	while (at > 0 && s[at - 1] != '@')
		at--;
	if (at > 0) {
		rc = take_userinfo((struct slice){ s, at - 1 }, u, why);
		if (rc != FERR_OK)
			return rc;
	}
	rc = take_hostport((struct slice){ s + at, alen - at }, u, why);
	if (rc != FERR_OK || slash == NULL)
		return rc;
	return take_path(slice_cstr(slash + 1), u, why);
}

int url_parse(const char *s, struct ftp_url *out, const char **why)
{
	const char *reason = NULL;

	memset(out, 0, sizeof(*out));
	int rc = s != NULL ? parse(s, out, &reason) : bad(&reason, "no URL");
	if (rc != FERR_OK) {
		/* The password may be half-decoded in there: wipe, not just clear. */
		explicit_bzero(out, sizeof(*out));
	}
	if (why != NULL)
		*why = reason;
	return rc;
}

/* A bounded writer into the caller's array; `over` once anything did not fit. */
struct out {
	char *p;
	size_t sz;
	size_t len;
	bool over;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->over || n >= o->sz - o->len) {
		o->over = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* RFC 3986 s.2.3 unreserved bytes stay, as do those in `keep`; all others become %XX. */
static void put_encoded(struct out *o, const char *s, size_t n, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_alnum(c) || strchr("-._~", c) != NULL || (c != 0 && strchr(keep, c))) {
			put(o, s + i, 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			put(o, e, sizeof(e));
		}
	}
}

/* The length of a field that must be NUL-terminated within its array, else SIZE_MAX. */
static size_t field_len(const char *f, size_t sz)
{
	size_t n = strnlen(f, sz);
	return n < sz ? n : SIZE_MAX;
}

/*
 * Sub-delimiters may stay raw in userinfo (RFC 3986 s.3.2.1) and, with ':' and '@', in a
 * path segment (s.3.3); ';' is encoded in the path so that no name reads as ";type=".
 */
#define USERINFO_KEEP "!$&'()*+,;="
#define PATH_KEEP "!$&'()*+,=:@/"

int url_format_masked(const struct ftp_url *u, char *out, size_t outsz)
{
	struct out o = { out, outsz, 0, outsz == 0 };
	size_t ulen = field_len(u->user, sizeof(u->user));
	size_t hlen = field_len(u->host, sizeof(u->host));
	size_t plen = field_len(u->path, sizeof(u->path));

	bool type_ok = u->type == 0 || u->type == 'a' || u->type == 'i' || u->type == 'd';

	if (ulen == SIZE_MAX || hlen == SIZE_MAX || plen == SIZE_MAX || !type_ok) {
		if (outsz > 0)
			out[0] = '\0';
		return FERR_INVALID;
	}
	put_str(&o, u->implicit_tls ? "ftps://" : "ftp://");
	if (u->has_user) {
		put_encoded(&o, u->user, ulen, USERINFO_KEEP);
		if (u->has_password)
			put_str(&o, ":***");
		put_str(&o, "@");
	}
	if (u->host_is_ipv6)
		put_str(&o, "[");
	put(&o, u->host, hlen);
	if (u->host_is_ipv6)
		put_str(&o, "]");
	if (u->port != (u->implicit_tls ? FTPS_PORT : FTP_PORT)) {
		char port[8];
		snprintf(port, sizeof(port), ":%u", (unsigned)u->port);
		put_str(&o, port);
	}
	put_str(&o, "/");
	put_encoded(&o, u->path, plen, PATH_KEEP);
	if (u->type != 0) {
		char t[sizeof(TYPE_PARAM) + 1] = TYPE_PARAM;
		t[sizeof(TYPE_PARAM) - 1] = u->type;
		put_str(&o, t);
	}
	if (o.over) {
		if (outsz > 0)
			out[0] = '\0';
		return FERR_TOOBIG;
	}
	out[o.len] = '\0';
	return FERR_OK;
}

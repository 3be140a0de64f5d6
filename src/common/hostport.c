/*
 * hostport.c: codecs for FTP's data-connection addresses (RFC 959 PORT/PASV, RFC 2428
 * EPRT/EPSV) and the listen address of the configuration.
 *
 * The parsers are strict: every number goes through num.c, no signs or spaces, nothing
 * trailing.  Policy (privileged ports, whether the address is the client's own) is the
 * caller's job; this file only says what the bytes mean.  Pure: no I/O, no name lookups.
 */
#include "hostport.h"

#include <arpa/inet.h>
#include <string.h>

#include "err.h"
#include "num.h"

/* "255" is three digits; PORT numbers longer than that are malformed, not large. */
#define OCTET_DIGITS_MAX 3
#define PORT_DIGITS_MAX 5

/* Parse digits at *s for at most maxdig digits and at most max; advances *s. */
static int take_num(const char **s, size_t maxdig, uint64_t max, uint64_t *out)
{
	size_t n = 0;
	while ((*s)[n] >= '0' && (*s)[n] <= '9')
		n++;
	if (n == 0 || n > maxdig)
		return FERR_INVALID;
	int rc = num_parse_u64((struct slice){ *s, n }, max, out);
	*s += n;
	return rc;
}

/* Parse "h1,h2,h3,h4,p1,p2" at *s into six octets; advances *s past the last digit. */
static int take_six(const char **s, uint8_t v[6])
{
	for (int i = 0; i < 6; i++) {
		uint64_t x;
		if (i > 0) {
			if (**s != ',')
				return FERR_INVALID;
			(*s)++;
		}
		if (take_num(s, OCTET_DIGITS_MAX, 255, &x) != FERR_OK)
			return FERR_INVALID;
		v[i] = (uint8_t)x;
	}
	return FERR_OK;
}

static void set_v4(struct sockaddr_storage *out, const uint8_t v[6])
{
	struct sockaddr_in *sin = (struct sockaddr_in *)out;

	memset(out, 0, sizeof(*out));
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, v, 4);
	sin->sin_port = htons((uint16_t)(v[4] << 8 | v[5]));
}

int hostport_parse_port(const char *arg, struct sockaddr_storage *out)
{
	uint8_t v[6];

	if (arg == NULL || take_six(&arg, v) != FERR_OK || *arg != '\0')
		return FERR_INVALID;
	set_v4(out, v);
	return FERR_OK;
}

/* Copy the field of s up to the delimiter d into f (NUL-terminated); advances *s past d. */
static int take_field(const char **s, char d, char *f, size_t fsz)
{
	const char *end = strchr(*s, d);
	if (end == NULL)
		return FERR_INVALID;
	size_t n = (size_t)(end - *s);
	if (n == 0 || n >= fsz)
		return FERR_INVALID;
	memcpy(f, *s, n);
	f[n] = '\0';
	*s = end + 1;
	return FERR_OK;
}

/* RFC 2428 s.2: "<d><net-prt><d><net-addr><d><tcp-port><d>", nothing after. */
int hostport_parse_eprt(const char *arg, struct sockaddr_storage *out)
{
	char af[8], addr[INET6_ADDRSTRLEN + 1], port[8];
	uint64_t afn, pn;

	if (arg == NULL || arg[0] < 33 || arg[0] > 126)
		return FERR_INVALID;
	char d = arg[0];
	const char *s = arg + 1;
	if (take_field(&s, d, af, sizeof(af)) != FERR_OK ||
	    take_field(&s, d, addr, sizeof(addr)) != FERR_OK ||
	    take_field(&s, d, port, sizeof(port)) != FERR_OK || *s != '\0')
		return FERR_INVALID;
	if (num_parse_u64_cstr(af, UINT64_MAX, &afn) != FERR_OK)
		return FERR_INVALID;
	if (strlen(port) > PORT_DIGITS_MAX || num_parse_u64_cstr(port, 65535, &pn) != FERR_OK ||
	    pn == 0)
		return FERR_INVALID;

	memset(out, 0, sizeof(*out));
	if (afn == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;
		if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
			return FERR_INVALID;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)pn);
	} else if (afn == 2) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
		if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1)
			return FERR_INVALID;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)pn);
	} else {
		return FERR_RANGE;
	}
	return FERR_OK;
}

int hostport_format_pasv(struct buf *b, const struct in_addr *addr, uint16_t port)
{
	const uint8_t *a = (const uint8_t *)&addr->s_addr;

	return buf_printf(b, "Entering Passive Mode (%u,%u,%u,%u,%u,%u).", a[0], a[1], a[2],
			  a[3], (unsigned)(port >> 8), (unsigned)(port & 0xff));
}

int hostport_format_epsv(struct buf *b, uint16_t port)
{
	return buf_printf(b, "Entering Extended Passive Mode (|||%u|)", (unsigned)port);
}

/* PORT can only carry IPv4, so an IPv4-mapped IPv6 address is sent as the IPv4 it is. */
int hostport_format_port(struct buf *b, const struct sockaddr_storage *addr)
{
	struct sockaddr_storage ss = *addr;

	hostport_unmap(&ss);
	if (ss.ss_family != AF_INET)
		return FERR_INVALID;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
	const uint8_t *a = (const uint8_t *)&sin->sin_addr.s_addr;
	uint16_t port = ntohs(sin->sin_port);
	return buf_printf(b, "%u,%u,%u,%u,%u,%u", a[0], a[1], a[2], a[3], (unsigned)(port >> 8),
			  (unsigned)(port & 0xff));
}

/* A mapped address is sent as net-prt 1: the peer sees an IPv4 connection. */
int hostport_format_eprt(struct buf *b, const struct sockaddr_storage *addr)
{
	struct sockaddr_storage ss = *addr;
	char host[INET6_ADDRSTRLEN];

	hostport_unmap(&ss);
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
		return FERR_INVALID;
	hostport_ntop(&ss, host, sizeof(host));
	return buf_printf(b, "|%d|%s|%u|", ss.ss_family == AF_INET ? 1 : 2, host,
			  (unsigned)hostport_get_port(&ss));
}

/*
 * RFC 959 does not fix where the numbers stand in a 227 text, so (as curl does) take the
 * first run of six comma-separated numbers that starts a run of digits.
 */
int hostport_parse_pasv_reply(const char *text, struct sockaddr_storage *out)
{
	if (text == NULL)
		return FERR_INVALID;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || (p > text && p[-1] >= '0' && p[-1] <= '9'))
			continue;
		const char *s = p;
		uint8_t v[6];
		if (take_six(&s, v) == FERR_OK && !(*s >= '0' && *s <= '9')) {
			set_v4(out, v);
			return FERR_OK;
		}
	}
	return FERR_INVALID;
}

/* RFC 2428 s.3: "(<d><d><d><port><d>)"; any '(' that does not start one is skipped. */
int hostport_parse_epsv_reply(const char *text, uint16_t *port)
{
	if (text == NULL)
		return FERR_INVALID;
	for (const char *p = strchr(text, '('); p != NULL; p = strchr(p + 1, '(')) {
		char d = p[1];
		if (d < 33 || d > 126 || p[2] != d || p[3] != d)
			continue;
		const char *s = p + 4;
		uint64_t v;
		if (take_num(&s, PORT_DIGITS_MAX, 65535, &v) != FERR_OK || v == 0 || *s != d)
			continue;
		*port = (uint16_t)v;
		return FERR_OK;
	}
	return FERR_INVALID;
}

static int listen_port(const char *s, uint64_t *port)
{
	if (*s == '\0' || strlen(s) > PORT_DIGITS_MAX)
		return FERR_INVALID;
	int rc = num_parse_u64_cstr(s, 65535, port);
	if (rc == FERR_OK && *port == 0)
		rc = FERR_RANGE;
	return rc;
}

static void set_any6(struct sockaddr_storage *out, uint16_t port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

	memset(out, 0, sizeof(*out));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = in6addr_any;
	sin6->sin6_port = htons(port);
}

int hostport_parse_listen(const char *s, struct sockaddr_storage *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *portstr;
	uint64_t port;
	int rc;

	if (s == NULL || *s == '\0')
		return FERR_INVALID;
	if (strchr(s, ':') == NULL || s[0] == ':') {
		/* "PORT" or ":PORT": every address, dual-stack. */
		rc = listen_port(s[0] == ':' ? s + 1 : s, &port);
		if (rc == FERR_OK)
			set_any6(out, (uint16_t)port);
		return rc;
	}

	int family;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return FERR_INVALID;
		size_t n = (size_t)(end - s - 1);
		if (n == 0 || n >= sizeof(host))
			return FERR_INVALID;
		memcpy(host, s + 1, n);
		host[n] = '\0';
		portstr = end + 2;
		family = AF_INET6;
	} else {
		const char *colon = strchr(s, ':');
		/* An IPv6 address must be bracketed, or its last group would read as the port. */
		if (strchr(colon + 1, ':') != NULL)
			return FERR_INVALID;
		size_t n = (size_t)(colon - s);
		if (n >= sizeof(host))
			return FERR_INVALID;
		memcpy(host, s, n);
		host[n] = '\0';
		portstr = colon + 1;
		family = AF_INET;
	}

	rc = listen_port(portstr, &port);
	if (rc != FERR_OK)
		return rc;
	memset(out, 0, sizeof(*out));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return FERR_INVALID;
		sin->sin_family = AF_INET;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return FERR_INVALID;
		sin6->sin6_family = AF_INET6;
	}
	hostport_set_port(out, (uint16_t)port);
	return FERR_OK;
}

int hostport_parse_range(const char *s, uint16_t *min, uint16_t *max)
{
	uint64_t lo, hi;

	if (s == NULL)
		return FERR_INVALID;
	const char *dash = strchr(s, '-');
	if (dash == NULL)
		return FERR_INVALID;
	size_t n = (size_t)(dash - s);
	if (n == 0 || n > PORT_DIGITS_MAX || strlen(dash + 1) > PORT_DIGITS_MAX)
		return FERR_INVALID;
	int rc = num_parse_u64((struct slice){ s, n }, 65535, &lo);
	if (rc != FERR_OK)
		return rc;
	rc = num_parse_u64_cstr(dash + 1, 65535, &hi);
	if (rc != FERR_OK)
		return rc;
	if (lo < 1024 || lo > hi)
		return FERR_RANGE;
	*min = (uint16_t)lo;
	*max = (uint16_t)hi;
	return FERR_OK;
}

uint16_t hostport_get_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

void hostport_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

socklen_t hostport_len(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return sizeof(struct sockaddr_in);
	if (ss->ss_family == AF_INET6)
		return sizeof(struct sockaddr_in6);
	return 0;
}

void hostport_unmap(struct sockaddr_storage *ss)
{
	if (ss->ss_family != AF_INET6)
		return;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		return;

	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = sin6->sin6_port;
	memcpy(&sin.sin_addr, &sin6->sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &sin, sizeof(sin));
}

int hostport_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	struct sockaddr_storage x = *a, y = *b;

	hostport_unmap(&x);
	hostport_unmap(&y);
	if (x.ss_family != y.ss_family)
		return 0;
	if (x.ss_family == AF_INET)
		return memcmp(&((struct sockaddr_in *)&x)->sin_addr,
			      &((struct sockaddr_in *)&y)->sin_addr, sizeof(struct in_addr)) == 0;
	if (x.ss_family == AF_INET6)
		return memcmp(&((struct sockaddr_in6 *)&x)->sin6_addr,
			      &((struct sockaddr_in6 *)&y)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return 0;
}

void hostport_ntop(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	char tmp[INET6_ADDRSTRLEN];
	const char *r = NULL;

	if (outsz == 0)
		return;
	if (ss->ss_family == AF_INET)
		r = inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, tmp,
			      sizeof(tmp));
	else if (ss->ss_family == AF_INET6)
		r = inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, tmp,
			      sizeof(tmp));
	if (r == NULL)
		str_copy(tmp, sizeof(tmp), "?");
	/* Too small an out gets an empty string rather than a truncated, wrong address. */
	(void)str_copy(out, outsz, tmp);
}

void hostport_addr_set(struct hostport_addr *a, const struct sockaddr_storage *ss)
{
	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET)
		memcpy(&a->in, ss, sizeof(a->in));
	else if (ss->ss_family == AF_INET6)
		memcpy(&a->in6, ss, sizeof(a->in6));
	else
		a->family = AF_UNSPEC;
}

struct sockaddr_storage hostport_addr_get(const struct hostport_addr *a)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (a->family == AF_INET)
		memcpy(&ss, &a->in, sizeof(a->in));
	else if (a->family == AF_INET6)
		memcpy(&ss, &a->in6, sizeof(a->in6));
	else
		ss.ss_family = AF_UNSPEC;
	return ss;
}

/*
 * url.h: ftp:// and ftps:// URLs (RFC 1738 s.3.2, with the ftps:// scheme for implicit
 * TLS), for the client.  Pure: no I/O, no name resolution.
 *
 *   ftp://[user[:password]@]host[:port][/path]
 *
 * host is a name, an IPv4 address or an IPv6 address in brackets ("[::1]").  user,
 * password and path are percent-decoded (a decoded NUL, CR or LF is refused).  The path
 * is taken relative to the login directory as RFC 1738 says: the '/' after the host only
 * separates, so "ftp://host/dir/file" is "dir/file" and "ftp://host/" is "".  A path that
 * still starts with a slash is absolute: "ftp://host//abs" and "ftp://host/%2Fabs" are
 * both "/abs" (%2F decodes to a slash like any other).  ";type=a|i|d" at the end is
 * accepted.
 */
#ifndef FERRY_COMMON_URL_H
#define FERRY_COMMON_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/path.h"

struct ftp_url {
	bool implicit_tls;     /* ftps:// */
	bool has_user, has_password;
	char user[256];
	char password[256];
	char host[256];        /* without brackets */
	bool host_is_ipv6;
	uint16_t port;         /* 21 for ftp://, 990 for ftps://, unless given */
	char path[VPATH_MAX];  /* decoded; "" for none or "/"; else ends in '/' if the URL did */
	char type;             /* 'a', 'i', 'd' from ";type=", or 0 */
};

/*
 * Parse s (NUL-terminated).  Returns 0, or FERR_INVALID with a short reason in *why
 * (a static string: "unknown scheme", "bad port", ...).
 */
int url_parse(const char *s, struct ftp_url *out, const char **why);

/* The URL again, with the password replaced by "***" (for messages and -v). */
int url_format_masked(const struct ftp_url *u, char *out, size_t outsz);

#endif

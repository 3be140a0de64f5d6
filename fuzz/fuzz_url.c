/*
 * fuzz_url.c: url_parse and url_format_masked.
 *
 * Input: the URL (up to the first NUL).  A refusal must give a reason and leave the
 * struct all zero (no half-decoded password).  An accepted URL must hold only what the
 * header promises: fields NUL-terminated in their arrays, no CR or LF, a host of name
 * characters or a valid IPv6 address, a port from 1.  Formatted with has_password=false it
 * must parse again to the same fields, and formatting that again must give the same text;
 * formatted with the password, it must show "***" and never overrun a smaller buffer.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Larger than the longest URL url_format_masked can write (every path byte as %XX). */
#define OUT_MAX (4 * VPATH_MAX + 1024)

static size_t field_len(const char *f, size_t sz)
{
	size_t n = strnlen(f, sz);
	if (n == sz || memchr(f, '\r', n) != NULL || memchr(f, '\n', n) != NULL)
		abort();
	return n;
}

static void check_fields(const struct ftp_url *u)
{
	field_len(u->user, sizeof(u->user));
	field_len(u->password, sizeof(u->password));
	field_len(u->path, sizeof(u->path));
	size_t hlen = field_len(u->host, sizeof(u->host));
	if (hlen == 0 || u->port == 0)
		abort();
	if (u->host_is_ipv6) {
		struct in6_addr a;
		if (inet_pton(AF_INET6, u->host, &a) != 1)
			abort();
	} else {
		for (size_t i = 0; i < hlen; i++) {
			char c = u->host[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			      c == '-' || c == '.' || c == '_'))
				abort();
		}
	}
	if (u->type != 0 && u->type != 'a' && u->type != 'i' && u->type != 'd')
		abort();
	if (!u->has_user && (u->user[0] != '\0' || u->has_password))
		abort();
	if (u->has_user && u->user[0] == '\0')
		abort();
	if (!u->has_password && u->password[0] != '\0')
		abort();
}

static void check_same(const struct ftp_url *a, const struct ftp_url *b)
{
	if (a->implicit_tls != b->implicit_tls || a->has_user != b->has_user ||
	    a->host_is_ipv6 != b->host_is_ipv6 || a->port != b->port || a->type != b->type ||
	    strcmp(a->user, b->user) != 0 || strcmp(a->host, b->host) != 0 ||
	    strcmp(a->path, b->path) != 0)
		abort();
}

/* Every size below the length must give FERR_TOOBIG and "", the exact size the URL. */
static void check_sizes(const struct ftp_url *u, const char *full)
{
	size_t n = strlen(full);
	size_t sizes[] = { 0, 1, n / 2, n, n + 1 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t sz = sizes[i];
		char *tight = malloc(sz > 0 ? sz : 1);
		if (tight == NULL)
			abort();
		int rc = url_format_masked(u, tight, sz);
		if (sz > n) {
			if (rc != FERR_OK || strcmp(tight, full) != 0)
				abort();
		} else if (rc != FERR_TOOBIG || (sz > 0 && tight[0] != '\0')) {
			abort();
		}
		free(tight);
	}
}

static struct ftp_url u, again, third;
static char out[OUT_MAX], out2[OUT_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ftp_url zero;
	const char *why = NULL;

	if (size > 4 * VPATH_MAX)
		return 0;
	char *s = malloc(size + 1);
	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';

	int rc = url_parse(s, &u, &why);
	if (rc != FERR_OK) {
		if (rc != FERR_INVALID || why == NULL || why[0] == '\0')
			abort();
		if (memcmp(&u, &zero, sizeof(u)) != 0)
			abort();
		free(s);
		return 0;
	}
	if (why != NULL)
		abort();
	check_fields(&u);
	/* Without a '%' nothing was decoded: the fields stand in the input as they are. */
	if (strchr(s, '%') == NULL &&
	    (strstr(s, u.user) == NULL || strstr(s, u.password) == NULL || strstr(s, u.path) == NULL))
		abort();

	/* With the password: masked, and it parses back as the password "***". */
	if (url_format_masked(&u, out, sizeof(out)) != FERR_OK)
		abort();
	check_sizes(&u, out);
	if (url_parse(out, &again, &why) != FERR_OK)
		abort();
	check_same(&u, &again);
	if (again.has_password != u.has_password ||
	    (u.has_password && strcmp(again.password, "***") != 0))
		abort();

	/* Without: the same user, host, port and path, and a fixed point of formatting. */
	u.has_password = false;
	if (url_format_masked(&u, out, sizeof(out)) != FERR_OK)
		abort();
	if (url_parse(out, &again, &why) != FERR_OK)
		abort();
	check_fields(&again);
	check_same(&u, &again);
	if (again.has_password)
		abort();
	if (url_format_masked(&again, out2, sizeof(out2)) != FERR_OK || strcmp(out, out2) != 0)
		abort();
	if (url_parse(out2, &third, NULL) != FERR_OK)
		abort();
	check_same(&again, &third);

	free(s);
	return 0;
}

/*
 * fuzz_netrc.c: netrc_lookup.
 *
 * Input: "HOST\nTEXT" (a first line longer than 255 bytes, or none, means host "a" and
 * the whole input as the text).  The text is handed over in a buffer of exactly its
 * length, so any read past it is caught.  Checked: the results are NUL-terminated within
 * their 256 bytes and hold no CR or LF; each is a substring of the text, or of the text
 * with \" and \\ unquoted; an unset field is empty; the host is compared without case; a
 * line break before the text moves an error one line down and changes nothing else, and
 * one after it changes nothing at all; an error's line lies within the text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/netrc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct result {
	int rc;
	unsigned line;
	struct netrc_entry e;
};

static void run(const char *text, size_t len, const char *host, struct result *r)
{
	char *copy = malloc(len > 0 ? len : 1);
	if (copy == NULL)
		abort();
	if (len > 0)
		memcpy(copy, text, len);
	r->line = 12345;
	r->rc = netrc_lookup(copy, len, host, &r->e, &r->line);
	free(copy);
}

static void same(const struct result *a, const struct result *b, unsigned line_shift)
{
	if (a->rc != b->rc || a->e.has_login != b->e.has_login ||
	    a->e.has_password != b->e.has_password || strcmp(a->e.login, b->e.login) != 0 ||
	    strcmp(a->e.password, b->e.password) != 0)
		abort();
	bool lines_ok = a->rc < 0 ? b->line == a->line + line_shift : (a->line == 0 && b->line == 0);
	if (!lines_ok)
		abort();
}

/* The text with every \" and \\ replaced by the byte escaped, read left to right. */
static char *unquote_all(const char *text, size_t len, size_t *outlen)
{
	char *u = malloc(len > 0 ? len : 1);
	size_t n = 0;
	if (u == NULL)
		abort();
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\\' && i + 1 < len && (text[i + 1] == '"' || text[i + 1] == '\\'))
			i++;
		u[n++] = text[i];
	}
	*outlen = n;
	return u;
}

static void check_field(const char *f, bool has, const char *text, size_t len,
			const char *unq, size_t unqlen)
{
	size_t n = strnlen(f, 256);
	if (n == 256 || memchr(f, '\r', n) != NULL || memchr(f, '\n', n) != NULL)
		abort();
	if (!has && n != 0)
		abort();
	if (n > 0 && memmem(text, len, f, n) == NULL && memmem(unq, unqlen, f, n) == NULL)
		abort();
}

static unsigned count_lines(const char *text, size_t len)
{
	unsigned lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	char host[256] = "a", upper[256];
	const char *text = in;
	size_t len = size;

	const char *nl = memchr(in, '\n', size);
	if (nl != NULL && (size_t)(nl - in) < sizeof(host)) {
		size_t hl = (size_t)(nl - in);
		memcpy(host, in, hl);
		host[hl] = '\0';
		text = nl + 1;
		len = size - hl - 1;
	}

	struct result r, r2;
	run(text, len, host, &r);
	if (r.rc != 1 && r.rc != 0 && r.rc != FERR_INVALID)
		abort();
	if (r.rc != 1 && (r.e.has_login || r.e.has_password || r.e.login[0] != '\0' ||
			  r.e.password[0] != '\0'))
		abort();
	if (r.rc == FERR_INVALID && (r.line == 0 || r.line > count_lines(text, len)))
		abort();
	if (r.rc == 1) {
		size_t unqlen;
		char *unq = unquote_all(text, len, &unqlen);
		check_field(r.e.login, r.e.has_login, text, len, unq, unqlen);
		check_field(r.e.password, r.e.has_password, text, len, unq, unqlen);
		free(unq);
	}

	/* The host is compared without case. */
	size_t hl = strlen(host);
	for (size_t i = 0; i <= hl; i++)
		upper[i] = (host[i] >= 'a' && host[i] <= 'z') ? (char)(host[i] - 'a' + 'A') : host[i];
	run(text, len, upper, &r2);
	same(&r, &r2, 0);

	/* A line break before the text, and one after it. */
	char *moved = malloc(len + 1);
	if (moved == NULL)
		abort();
	moved[0] = '\n';
	if (len > 0)
		memcpy(moved + 1, text, len);
	run(moved, len + 1, host, &r2);
	same(&r, &r2, 1);
	if (len > 0)
		memcpy(moved, text, len);
	moved[len] = '\n';
	run(moved, len + 1, host, &r2);
	same(&r, &r2, 0);
	free(moved);

	/* line may be NULL. */
	struct netrc_entry e;
	if (netrc_lookup(text, len, host, &e, NULL) != r.rc)
		abort();
	return 0;
}

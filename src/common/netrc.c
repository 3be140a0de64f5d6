/*
 * netrc.c: the ~/.netrc format of ftp(1) and curl, read from memory.
 *
 * The grammar is a stream of tokens separated by white space (newlines included), as
 * ftp(1) reads it.  A token is at most NETRC_TOKEN_MAX - 1 bytes, quoted or not; a quoted
 * token ends on its line ("\"" and "\\" are its only escapes, any other backslash stays
 * as written, so "C:\dir" needs no doubling); a token starting with '#' begins a comment
 * to the end of its line, as curl accepts.  Keywords are compared without case, as curl
 * does; unknown tokens are skipped, as both do.
 *
 * The whole text is read even after a match, so that a broken file is reported the same
 * way whichever host is asked for.  The first "machine" entry for the host wins; the
 * first "default" entry is the fallback, wherever it stands.  A NUL byte in a token is
 * malformed: the results are C strings, and no line break can reach them either, so what
 * is returned can go into USER and PASS as it is.
 */
#include "netrc.h"

#include <string.h>

#include "buf.h"
#include "err.h"

#define NETRC_TOKEN_MAX 256

_Static_assert(sizeof(((struct netrc_entry *)0)->login) == NETRC_TOKEN_MAX,
	       "a login token fills struct netrc_entry");
_Static_assert(sizeof(((struct netrc_entry *)0)->password) == NETRC_TOKEN_MAX,
	       "a password token fills struct netrc_entry");

struct lexer {
	const char *text;
	const char *p;
	const char *end;
	const char *start; /* of the last token, or of the failing one */
	char tok[NETRC_TOKEN_MAX];
	size_t len;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int push(struct lexer *lx, char c)
{
	if (c == '\0' || lx->len + 1 >= sizeof(lx->tok))
		return FERR_INVALID;
	lx->tok[lx->len++] = c;
	return FERR_OK;
}

/* After the opening '"'. */
static int lex_quoted(struct lexer *lx)
{
	for (;;) {
		if (lx->p == lx->end || *lx->p == '\n' || *lx->p == '\r')
			return FERR_INVALID; /* unterminated */
		char c = *lx->p++;
		if (c == '"')
			return FERR_OK;
		if (c == '\\' && lx->p < lx->end && (*lx->p == '"' || *lx->p == '\\'))
			c = *lx->p++;
		if (push(lx, c) != FERR_OK)
			return FERR_INVALID;
	}
}

/* The next token into lx->tok.  Returns 1, 0 at the end of the text, or FERR_INVALID. */
static int lex(struct lexer *lx)
{
	for (;;) {
		while (lx->p < lx->end && is_space(*lx->p))
			lx->p++;
		if (lx->p == lx->end)
			return 0;
		if (*lx->p != '#')
			break;
		const char *nl = memchr(lx->p, '\n', (size_t)(lx->end - lx->p));
		lx->p = nl != NULL ? nl : lx->end;
	}
	lx->start = lx->p;
	lx->len = 0;
	if (*lx->p == '"') {
		lx->p++;
		if (lex_quoted(lx) != FERR_OK)
			return FERR_INVALID;
	} else {
		while (lx->p < lx->end && !is_space(*lx->p)) {
			if (push(lx, *lx->p++) != FERR_OK)
				return FERR_INVALID;
		}
	}
	lx->tok[lx->len] = '\0';
	return 1;
}

/* The argument of a keyword: 0, or FERR_INVALID (its absence at the end is malformed too). */
static int lex_arg(struct lexer *lx)
{
	return lex(lx) == 1 ? FERR_OK : FERR_INVALID;
}

static bool tok_is(const struct lexer *lx, const char *word)
{
	return slice_eq_nocase((struct slice){ lx->tok, lx->len }, slice_cstr(word));
}

/* Past the rest of the current line. */
static void skip_line(struct lexer *lx)
{
	const char *nl = memchr(lx->p, '\n', (size_t)(lx->end - lx->p));
	lx->p = nl != NULL ? nl + 1 : lx->end;
}

/*
 * ftp(1): a macro body runs from the line after "macdef NAME" to a null line.  A line
 * holding only "\r" counts as null too, for files written with CRLF.
 */
static void skip_macro(struct lexer *lx)
{
	skip_line(lx);
	while (lx->p < lx->end) {
		bool null_line = *lx->p == '\n' ||
				 (*lx->p == '\r' && lx->p + 1 < lx->end && lx->p[1] == '\n');
		skip_line(lx);
		if (null_line)
			return;
	}
}

static void set_field(char *dst, bool *has, const struct lexer *lx)
{
	/* ftp(1) keeps the first login of an entry, and so the first password too. */
	if (*has)
		return;
	memcpy(dst, lx->tok, lx->len + 1);
	*has = true;
}

struct search {
	const char *host;
	struct netrc_entry machine, dflt;
	bool have_machine, have_default;
	struct netrc_entry *cur; /* the entry being filled, or NULL while skipping one */
};

/* One keyword and its argument (lx->tok holds the keyword). */
static int step(struct lexer *lx, struct search *s)
{
	if (tok_is(lx, "default")) {
		s->cur = s->have_default ? NULL : &s->dflt;
		s->have_default = true;
		return FERR_OK;
	}
	bool machine = tok_is(lx, "machine"), login = tok_is(lx, "login");
	bool password = tok_is(lx, "password"), account = tok_is(lx, "account");
	bool macdef = tok_is(lx, "macdef");
	if (!machine && !login && !password && !account && !macdef)
		return FERR_OK; /* unknown: skipped, as ftp(1) and curl do */
	/* On failure lx->start is the bad token, or the keyword when the text ended. */
	if (lex_arg(lx) != FERR_OK)
		return FERR_INVALID;
	if (machine) {
		bool match = !s->have_machine &&
			     slice_eq_nocase((struct slice){ lx->tok, lx->len }, slice_cstr(s->host));
		s->cur = match ? &s->machine : NULL;
		s->have_machine = s->have_machine || match;
	} else if (macdef) {
		skip_macro(lx);
	} else if (s->cur != NULL && login) {
		set_field(s->cur->login, &s->cur->has_login, lx);
	} else if (s->cur != NULL && password) {
		set_field(s->cur->password, &s->cur->has_password, lx);
	}
	return FERR_OK;
}

static unsigned line_of(const char *text, const char *at)
{
	unsigned line = 1;
	for (const char *p = text; p < at; p++)
		line += *p == '\n';
	return line;
}

int netrc_lookup(const char *text, size_t len, const char *host, struct netrc_entry *out,
		 unsigned *line)
{
	if (text == NULL) {
		text = "";
		len = 0;
	}
	struct lexer lx = { .text = text, .p = text, .end = text + len, .start = text };
	struct search s = { .host = host != NULL ? host : "" };
	int rc;

	memset(out, 0, sizeof(*out));
	while ((rc = lex(&lx)) == 1) {
		rc = step(&lx, &s);
		if (rc != FERR_OK)
			break;
	}
	if (rc == 0) {
		if (s.have_machine)
			*out = s.machine;
		else if (s.have_default)
			*out = s.dflt;
		rc = s.have_machine || s.have_default;
		if (line != NULL)
			*line = 0;
	} else if (line != NULL) {
		*line = line_of(lx.text, lx.start);
	}
	explicit_bzero(&lx, sizeof(lx));
	explicit_bzero(&s, sizeof(s));
	return rc;
}

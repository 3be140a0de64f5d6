/*
 * reply.c: FTP replies on the wire (RFC 959 s.4.2), formatted by the server and parsed by
 * the client.
 *
 * Formatting never lets caller text break the reply structure: CR is dropped and every
 * continuation line is indented, so no line of text can end a multi-line reply early or
 * pose as a reply of its own.  The parser is resumable and bounded, the twin of
 * command.c: a hostile server can make it fail but not make it grow without limit.
 */
#include "reply.h"

#include <stdio.h>
#include <string.h>

#include "err.h"

/* The longest reply line the client accepts; far beyond any sane server's. */
#define REPLY_LINE_MAX 8192

static void assert_code(int code)
{
	FERR_ASSERT(code >= 100 && code <= 599);
}

/* Undo a partly written reply, so that every function leaves b as it was on error. */
static int rollback(struct buf *b, size_t len, int rc)
{
	b->len = len;
	if (b->data != NULL)
		b->data[len] = '\0';
	return rc;
}

/* Append text[0..n) without CR; an LF (only possible from a caller bug) becomes a space. */
static int append_clean(struct buf *b, const char *text, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && text[i] != '\r' && text[i] != '\n')
			continue;
		int rc = buf_append(b, text + start, i - start);
		if (rc == FERR_OK && i < n && text[i] == '\n')
			rc = buf_append_char(b, ' ');
		if (rc != FERR_OK)
			return rc;
		start = i + 1;
	}
	return FERR_OK;
}

/* "CODE<sep>text\r\n" or, with code 0, " text\r\n". */
static int put_line(struct buf *b, int code, char sep, const char *text, size_t n)
{
	int rc;

	if (code != 0)
		rc = buf_printf(b, "%03d%c", code, sep);
	else
		rc = buf_append_char(b, ' ');
	if (rc == FERR_OK)
		rc = append_clean(b, text, n);
	if (rc == FERR_OK)
		rc = buf_append(b, "\r\n", 2);
	return rc;
}

/*
 * Empty text gives "CODE \r\n": RFC 959 always puts a space after a final code.  One
 * trailing LF is ignored, so "text\n" is not a two-line reply with an empty last line.
 */
int reply_format(struct buf *b, int code, const char *text)
{
	assert_code(code);
	if (text == NULL)
		text = "";
	size_t old = b->len;
	size_t n = strlen(text);
	if (n > 0 && text[n - 1] == '\n')
		n--;

	const char *nl = memchr(text, '\n', n);
	if (nl == NULL) {
		int rc = put_line(b, code, ' ', text, n);
		return rc == FERR_OK ? FERR_OK : rollback(b, old, rc);
	}

	size_t first = (size_t)(nl - text);
	int rc = put_line(b, code, '-', text, first);
	size_t pos = first + 1;
	while (rc == FERR_OK) {
		const char *next = memchr(text + pos, '\n', n - pos);
		if (next == NULL) {
			rc = put_line(b, code, ' ', text + pos, n - pos);
			break;
		}
		size_t l = (size_t)(next - (text + pos));
		rc = put_line(b, 0, ' ', text + pos, l);
		pos += l + 1;
	}
	return rc == FERR_OK ? FERR_OK : rollback(b, old, rc);
}

int reply_formatf(struct buf *b, int code, const char *fmt, ...)
{
	struct buf tmp;
	va_list ap;

	buf_init(&tmp, b->max);
	va_start(ap, fmt);
	int rc = buf_vprintf(&tmp, fmt, ap);
	va_end(ap);
	if (rc == FERR_OK)
		rc = reply_format(b, code, tmp.data);
	buf_free(&tmp);
	return rc;
}

static int one_line(struct buf *b, int code, char sep, const char *text)
{
	size_t old = b->len;
	if (text == NULL)
		text = "";
	int rc = put_line(b, code, sep, text, strlen(text));
	return rc == FERR_OK ? FERR_OK : rollback(b, old, rc);
}

int reply_begin(struct buf *b, int code, const char *first)
{
	assert_code(code);
	return one_line(b, code, '-', first);
}

int reply_line(struct buf *b, const char *line)
{
	return one_line(b, 0, ' ', line);
}

int reply_end(struct buf *b, int code, const char *last)
{
	assert_code(code);
	return one_line(b, code, ' ', last);
}

int reply_quote_path(struct buf *b, const char *path)
{
	size_t old = b->len;
	int rc = buf_append_char(b, '"');
	for (const char *p = path; rc == FERR_OK && *p != '\0'; p++) {
		if (*p == '"')
			rc = buf_append(b, "\"\"", 2);
		else if (*p == '\r' || *p == '\n')
			rc = buf_append_char(b, '?');
		else
			rc = buf_append_char(b, *p);
	}
	if (rc == FERR_OK)
		rc = buf_append_char(b, '"');
	return rc == FERR_OK ? FERR_OK : rollback(b, old, rc);
}

/* Client side. */

enum {
	RP_START = 0, /* waiting for the first line of a reply */
	RP_MORE,      /* inside a multi-line reply */
	RP_DONE,      /* a result was returned; start afresh on the next feed */
};

void reply_parser_init(struct reply_parser *p)
{
	p->state = RP_START;
	p->code = 0;
	p->multiline = false;
	buf_init(&p->line, REPLY_LINE_MAX);
	buf_init(&p->text, REPLY_TEXT_MAX);
}

void reply_parser_free(struct reply_parser *p)
{
	buf_free(&p->line);
	buf_free(&p->text);
}

/* The code of "NNN..." (first digit 1-5), or 0 if the line does not start with one. */
static int line_code(const char *s, size_t n)
{
	if (n < 3 || s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' ||
	    s[2] > '9')
		return 0;
	return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

static int add_text(struct reply_parser *p, const char *s, size_t n, bool newline)
{
	int rc = FERR_OK;
	if (newline)
		rc = buf_append_char(&p->text, '\n');
	if (rc == FERR_OK)
		rc = buf_append(&p->text, s, n);
	return rc;
}

/* One complete line (without CR LF); returns a reply_status. */
static enum reply_status reply_line_done(struct reply_parser *p, const char *s, size_t n)
{
	int code = line_code(s, n);

	if (p->state == RP_START) {
		/* A bare "NNN" is taken as a reply with empty text. */
		if (code == 0 || (n > 3 && s[3] != ' ' && s[3] != '-'))
			return REPLY_INVALID;
		p->code = code;
		p->multiline = n > 3 && s[3] == '-';
		size_t skip = n > 3 ? 4 : 3;
		if (add_text(p, s + skip, n - skip, false) != FERR_OK)
			return REPLY_INVALID;
		if (!p->multiline)
			return REPLY_DONE;
		p->state = RP_MORE;
		return REPLY_AGAIN;
	}

	/* RFC 959 s.4.2: the reply ends at the first line "NNN SP" with the same code. */
	if (code == p->code && (n == 3 || s[3] == ' ')) {
		size_t skip = n > 3 ? 4 : 3;
		if (add_text(p, s + skip, n - skip, true) != FERR_OK)
			return REPLY_INVALID;
		return REPLY_DONE;
	}
	/* Some servers repeat "NNN-" on every line; that prefix is not text. */
	if (code == p->code && s[3] == '-') {
		s += 4;
		n -= 4;
	} else if (n > 0 && s[0] == ' ') {
		s++;
		n--;
	}
	if (add_text(p, s, n, true) != FERR_OK)
		return REPLY_INVALID;
	return REPLY_AGAIN;
}

enum reply_status reply_parser_feed(struct reply_parser *p, const uint8_t *in, size_t n,
				    size_t *used)
{
	if (p->state == RP_DONE) {
		p->state = RP_START;
		p->code = 0;
		p->multiline = false;
		buf_reset(&p->text);
		buf_reset(&p->line);
	}

	for (size_t i = 0; i < n; i++) {
		uint8_t c = in[i];
		enum reply_status st;

		if (c == '\n') {
			struct slice l = buf_slice(&p->line);
			size_t len = l.len;
			if (len > 0 && l.ptr[len - 1] == '\r')
				len--;
			st = reply_line_done(p, l.ptr, len);
			buf_reset(&p->line);
		} else if (c == '\0') {
			/* RFC 854: NUL is the NVT's no-operation; it must not cut the text short. */
			continue;
		} else if (buf_append_char(&p->line, (char)c) == FERR_OK) {
			continue;
		} else {
			st = REPLY_INVALID;
		}

		if (st == REPLY_AGAIN)
			continue;
		*used = i + 1;
		p->state = RP_DONE;
		return st;
	}
	*used = n;
	return REPLY_AGAIN;
}

/*
 * logsafe.c: escaping of untrusted text for log lines (see logsafe.h for the rules).
 *
 * The input is cut into units: one byte that is copied, one byte that is escaped, or one
 * acceptable UTF-8 character.  A unit is written whole or not at all, which is what keeps
 * a truncated value free of half an escape or half a character.  Pure: no I/O, no state.
 */
#include "common/logsafe.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

enum esc_mode {
	ESC_QUOTED, /* inside "...": '"' and '\\' escaped */
	ESC_LINE,   /* a whole line: '"' and '\\' left alone */
	ESC_FIELD,  /* a space-separated field: ' ' to '_', '\\' escaped */
};

struct unit {
	size_t in_len;  /* input bytes it stands for */
	size_t out_len; /* bytes of out used */
	char out[4];
};

/*
 * Code points that are well-formed but change how a line reads: C1 controls (terminals may
 * obey them), line and paragraph separators, bidirectional controls.
 */
static bool misleading(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

static bool is_cont(uint8_t b)
{
	return (b & 0xc0) == 0x80;
}

/* Length of the acceptable UTF-8 character at p[0..n), or 0 (RFC 3629 s.4 table). */
static size_t utf8_char(const uint8_t *p, size_t n)
{
	size_t need;
	uint32_t cp;
	uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		need = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		need = 3;
		cp = p[0] & 0x0f;
		if (p[0] == 0xe0)
			lo = 0xa0; /* overlong */
		else if (p[0] == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		need = 4;
		cp = p[0] & 0x07;
		if (p[0] == 0xf0)
			lo = 0x90; /* overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (n < need || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if (!is_cont(p[i]))
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	return misleading(cp) ? 0 : need;
}

static struct unit hex_escape(uint8_t b)
{
	static const char hex[] = "0123456789abcdef";
	return (struct unit){ .in_len = 1,
			      .out_len = 4,
			      .out = { '\\', 'x', hex[b >> 4], hex[b & 15] } };
}

static struct unit next_unit(enum esc_mode mode, const uint8_t *p, size_t n)
{
	uint8_t b = p[0];
	if (b < 0x20 || b == 0x7f)
		return hex_escape(b);
	if (b >= 0x80) {
		size_t k = utf8_char(p, n);
		if (k == 0)
			return hex_escape(b);
		struct unit u = { .in_len = k, .out_len = k };
		memcpy(u.out, p, k);
		return u;
	}
	if ((b == '\\' && mode != ESC_LINE) || (b == '"' && mode == ESC_QUOTED))
		return (struct unit){ .in_len = 1, .out_len = 2, .out = { '\\', (char)b } };
	if (b == ' ' && mode == ESC_FIELD)
		return (struct unit){ .in_len = 1, .out_len = 1, .out = { '_' } };
	return (struct unit){ .in_len = 1, .out_len = 1, .out = { (char)b } };
}

/* Length of the whole escaped text. */
static size_t escaped_len(enum esc_mode mode, const uint8_t *in, size_t len)
{
	size_t total = 0;
	for (size_t i = 0; i < len;) {
		struct unit u = next_unit(mode, in + i, len - i);
		total += u.out_len;
		i += u.in_len;
	}
	return total;
}

/* Writes the whole units that fit in limit bytes of out; returns the bytes written. */
static size_t write_units(enum esc_mode mode, char *out, size_t limit, const uint8_t *in,
			  size_t len)
{
	size_t w = 0;
	for (size_t i = 0; i < len;) {
		struct unit u = next_unit(mode, in + i, len - i);
		if (u.out_len > limit - w)
			break;
		memcpy(out + w, u.out, u.out_len);
		w += u.out_len;
		i += u.in_len;
	}
	return w;
}

static size_t empty(char *out, size_t cap)
{
	if (cap >= 1)
		out[0] = '\0';
	return 0;
}

static bool bare(const uint8_t *in, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (in[i] <= 0x20 || in[i] >= 0x7f || in[i] == '"' || in[i] == '\\' || in[i] == '=')
			return false;
	}
	return true;
}

size_t log_escape(char *out, size_t cap, const char *in, size_t len)
{
	const uint8_t *p = (const uint8_t *)in;
	if (bare(p, len) && len < cap) {
		memcpy(out, in, len);
		out[len] = '\0';
		return len;
	}
	if (cap < LOG_ESCAPE_MIN_CAP)
		return empty(out, cap);
	size_t body = escaped_len(ESC_QUOTED, p, len);
	bool cut = body + 2 >= cap;
	/* Room for the body: the quotes, the NUL and, when cut, the dots. */
	size_t limit = cut ? cap - 6 : body;
	size_t w = 0;
	out[w++] = '"';
	w += write_units(ESC_QUOTED, out + w, limit, p, len);
	out[w++] = '"';
	if (cut) {
		memcpy(out + w, "...", 3);
		w += 3;
	}
	out[w] = '\0';
	return w;
}

const char *log_quote(char *buf, size_t cap, const char *s)
{
	log_escape(buf, cap, s, s != NULL ? strlen(s) : 0);
	return buf;
}

/* The line and field forms: the text, or as much as fits followed by "...". */
static size_t escape_plain(enum esc_mode mode, char *out, size_t cap, const uint8_t *in,
			   size_t len)
{
	if (cap < LOG_ESCAPE_MIN_CAP)
		return empty(out, cap);
	size_t total = escaped_len(mode, in, len);
	bool cut = total >= cap;
	size_t w = write_units(mode, out, cut ? cap - 4 : total, in, len);
	if (cut) {
		memcpy(out + w, "...", 3);
		w += 3;
	}
	out[w] = '\0';
	return w;
}

size_t log_sanitize_line(char *out, size_t cap, const char *in, size_t len)
{
	return escape_plain(ESC_LINE, out, cap, (const uint8_t *)in, len);
}

size_t log_escape_field(char *out, size_t cap, const char *in, size_t len)
{
	if (len == 0 && cap >= LOG_ESCAPE_MIN_CAP) {
		memcpy(out, "-", 2);
		return 1;
	}
	return escape_plain(ESC_FIELD, out, cap, (const uint8_t *)in, len);
}

/*
 * fuzz_logsafe.c: the log escapers (log_escape, log_sanitize_line, log_escape_field).
 *
 * The first input byte picks the output buffer's size (small ones exercise truncation);
 * the rest is the untrusted text.  Invariants: the output fits the buffer and is
 * NUL-terminated at the returned length; it holds no control byte and is valid UTF-8; a
 * log_escape() value is one field (bare without space, quote, backslash or '='; or
 * quoted, possibly followed by "..."), unescapes to the input when whole and to a prefix
 * of it when cut; a field has no space.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/logsafe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_common(const char *out, size_t n, size_t cap)
{
	if (n >= cap || strlen(out) != n)
		abort();
	for (size_t i = 0; i < n;) {
		uint8_t b = (uint8_t)out[i];
		if (b < 0x20 || b == 0x7f)
			abort();
		/* Valid UTF-8, by the simplest independent check: lead byte then continuations. */
		size_t k = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3
			 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
		if (k == 0 || i + k > n)
			abort();
		for (size_t j = 1; j < k; j++) {
			if (((uint8_t)out[i + j] & 0xc0) != 0x80)
				abort();
		}
		i += k;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	abort(); /* only lower-case hex is written */
}

/* Undoes the quoting of body[0..n) (between the quotes) into back; returns its length. */
static size_t unquote(const char *body, size_t n, uint8_t *back)
{
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (body[i] == '"')
			abort(); /* an unescaped quote would end the value early */
		if (body[i] != '\\') {
			back[w++] = (uint8_t)body[i];
			continue;
		}
		if (i + 1 >= n)
			abort();
		if (body[i + 1] == '\\' || body[i + 1] == '"') {
			back[w++] = (uint8_t)body[++i];
		} else if (body[i + 1] == 'x' && i + 3 < n) {
			back[w++] = (uint8_t)(hexval(body[i + 2]) << 4 | hexval(body[i + 3]));
			i += 3;
		} else {
			abort();
		}
	}
	return w;
}

static void check_value(const uint8_t *in, size_t len, const char *out, size_t n)
{
	if (n == 0)
		return; /* only when the buffer is below LOG_ESCAPE_MIN_CAP */
	uint8_t *back = malloc(n + 1);
	if (back == NULL)
		abort();
	if (out[0] != '"') {
		if (strpbrk(out, " \"\\=") != NULL || n != len || memcmp(out, in, len) != 0)
			abort();
	} else {
		bool cut = n >= 5 && memcmp(out + n - 4, "\"...", 4) == 0;
		size_t end = cut ? n - 4 : n - 1;
		if (end < 1 || out[end] != '"')
			abort();
		size_t b = unquote(out + 1, end - 1, back);
		if (b > len || memcmp(back, in, b) != 0 || (!cut && b != len) || (cut && b == len))
			abort();
	}
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 1 << 14)
		return 0;
	/* A buffer from 0 to 63 bytes, or one larger than any escaped input can need. */
	size_t cap = data[0] < 0xc0 ? data[0] % 64 : 4 * size + 8;
	const uint8_t *in = data + 1;
	size_t len = size - 1;
	char *out = malloc(cap + 1);
	if (out == NULL)
		abort();
	out[cap] = 'G'; /* a guard: nothing may be written at out[cap] */

	size_t n = log_escape(out, cap, (const char *)in, len);
	if (cap > 0) {
		check_common(out, n, cap);
		check_value(in, len, out, n);
	} else if (n != 0) {
		abort();
	}
	if (cap >= LOG_ESCAPE_MIN_CAP && n == 0)
		abort();

	n = log_sanitize_line(out, cap, (const char *)in, len);
	if (cap > 0)
		check_common(out, n, cap);

	n = log_escape_field(out, cap, (const char *)in, len);
	if (cap > 0) {
		check_common(out, n, cap);
		if (memchr(out, ' ', n) != NULL)
			abort();
	}
	if (out[cap] != 'G')
		abort();
	free(out);
	return 0;
}

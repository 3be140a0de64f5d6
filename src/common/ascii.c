/*
 * ascii.c: TYPE A conversion (RFC 959 s.3.1.1.1) between the disk's LF and the wire's
 * CR LF.
 *
 * Both directions are streaming: the one byte of memory they need (was the last byte a
 * CR?) lives in the caller's state, so chunk boundaries never change the result.
 */
#include "ascii.h"

size_t ascii_to_crlf(struct ascii_state *st, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = in[i];
		/* A file that already holds CR LF must not become CR CR LF. */
		if (c == '\n' && !st->last_was_cr)
			out[o++] = '\r';
		out[o++] = c;
		st->last_was_cr = (c == '\r');
	}
	return o;
}

size_t ascii_from_crlf(struct ascii_state *st, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = in[i];
		if (st->last_was_cr) {
			st->last_was_cr = false;
			if (c == '\n') {
				out[o++] = '\n';
				continue;
			}
			out[o++] = '\r'; /* a CR not followed by LF is data */
		}
		if (c == '\r')
			st->last_was_cr = true;
		else
			out[o++] = c;
	}
	return o;
}

size_t ascii_from_crlf_flush(struct ascii_state *st, uint8_t *out)
{
	if (!st->last_was_cr)
		return 0;
	st->last_was_cr = false;
	out[0] = '\r';
	return 1;
}

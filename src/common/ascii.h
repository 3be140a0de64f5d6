/*
 * ascii.h: streaming conversion for TYPE A (RFC 959 s.3.1.1.1), pure.
 *
 * On the wire, ASCII lines end in CR LF; on disk, in LF.  The converters work on chunks of
 * any size and keep what they need between calls in a small state, so a CR LF split across
 * two network reads is still recognised.
 */
#ifndef FERRY_COMMON_ASCII_H
#define FERRY_COMMON_ASCII_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ascii_state {
	bool last_was_cr; /* to_crlf: previous byte was CR. from_crlf: a CR is held back */
};

static inline void ascii_init(struct ascii_state *st) { st->last_was_cr = false; }

/*
 * Disk to wire: each LF not already preceded by CR becomes CR LF.  out must have room for
 * 2 * n bytes.  Returns the number of bytes written to out.
 */
size_t ascii_to_crlf(struct ascii_state *st, const uint8_t *in, size_t n, uint8_t *out);

/*
 * Wire to disk: CR LF becomes LF; any other CR is kept.  A CR at the end of a chunk is
 * held until the next byte is seen.  out must have room for n + 1 bytes.  Returns the
 * number of bytes written.
 */
size_t ascii_from_crlf(struct ascii_state *st, const uint8_t *in, size_t n, uint8_t *out);
/* At end of stream: emits a held-back CR (0 or 1 bytes into out). */
size_t ascii_from_crlf_flush(struct ascii_state *st, uint8_t *out);

#endif

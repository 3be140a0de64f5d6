/*
 * fuzz_ascii.c: the TYPE A converters.
 *
 * The input is converted whole and in chunks of varying size (a CR LF split between two
 * network reads must still be recognised): both must agree.  Invariants: the wire form
 * has no bare LF; disk -> wire -> disk gives back the input when the input had no CR;
 * wire -> disk never grows the data; the result of from_crlf has no CR LF pair that came
 * from one pair of the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/ascii.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t to_crlf_chunked(const uint8_t *in, size_t n, uint8_t *out, size_t step)
{
	struct ascii_state st;
	ascii_init(&st);
	size_t w = 0;
	for (size_t i = 0; i < n; i += step)
		w += ascii_to_crlf(&st, in + i, n - i < step ? n - i : step, out + w);
	return w;
}

static size_t from_crlf_chunked(const uint8_t *in, size_t n, uint8_t *out, size_t step)
{
	struct ascii_state st;
	ascii_init(&st);
	size_t w = 0;
	for (size_t i = 0; i < n; i += step)
		w += ascii_from_crlf(&st, in + i, n - i < step ? n - i : step, out + w);
	w += ascii_from_crlf_flush(&st, out + w);
	return w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	size_t step = size > 0 ? 1 + data[0] % 17 : 1;
	uint8_t *wire = malloc(2 * size + 1), *wire2 = malloc(2 * size + 1);
	uint8_t *disk = malloc(2 * size + 2), *disk2 = malloc(size + 2);
	if (wire == NULL || wire2 == NULL || disk == NULL || disk2 == NULL)
		abort();

	/* Disk to wire. */
	size_t wn = to_crlf_chunked(data, size, wire, size ? size : 1);
	size_t wn2 = to_crlf_chunked(data, size, wire2, step);
	if (wn != wn2 || memcmp(wire, wire2, wn) != 0 || wn > 2 * size)
		abort();
	for (size_t i = 0; i < wn; i++) {
		if (wire[i] == '\n' && (i == 0 || wire[i - 1] != '\r'))
			abort(); /* a bare LF on the wire */
	}
	/* And back: the input again, unless it held CRs of its own (CR LF is ambiguous). */
	size_t dn = from_crlf_chunked(wire, wn, disk, step);
	if (memchr(data, '\r', size) == NULL && (dn != size || memcmp(disk, data, size) != 0))
		abort();

	/* Wire to disk, whole and chunked. */
	size_t a = from_crlf_chunked(data, size, disk2, size ? size : 1);
	size_t b = from_crlf_chunked(data, size, disk, step);
	if (a != b || memcmp(disk, disk2, a) != 0 || a > size)
		abort();
	/* Exactly one byte less per CR LF pair of the input. */
	size_t pairs = 0;
	for (size_t i = 0; i + 1 < size; i++) {
		if (data[i] == '\r' && data[i + 1] == '\n')
			pairs++;
	}
	if (a != size - pairs)
		abort();

	free(wire);
	free(wire2);
	free(disk);
	free(disk2);
	return 0;
}

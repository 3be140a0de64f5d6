/*
 * num.c: checked decimal parsing.
 *
 * Every number from the network (REST offsets, PORT octets, ports) or the configuration
 * goes through here, so overflow is detected exactly and reported, never wrapped.
 */
#include "num.h"

#include <string.h>

#include "err.h"

/*
 * UINT64_MAX has 20 digits.  Longer input is refused even when it is all leading zeros:
 * a bound on the work and no legitimate peer pads numbers that far.
 */
#define NUM_DIGITS_MAX 20

int num_parse_u64(struct slice s, uint64_t max, uint64_t *out)
{
	if (s.len == 0)
		return FERR_INVALID;

	uint64_t v = 0;
	bool over = s.len > NUM_DIGITS_MAX;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if (c < '0' || c > '9')
			return FERR_INVALID;
		unsigned d = c - '0';
		/* Once past the maximum keep scanning, so "99x" is INVALID rather than RANGE. */
		if (over || v > (UINT64_MAX - d) / 10) {
			over = true;
			continue;
		}
		v = v * 10 + d;
	}
	if (over || v > max)
		return FERR_RANGE;
	*out = v;
	return FERR_OK;
}

int num_parse_u64_cstr(const char *s, uint64_t max, uint64_t *out)
{
	if (s == NULL)
		return FERR_INVALID;
	return num_parse_u64(slice_cstr(s), max, out);
}

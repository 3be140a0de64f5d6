/*
 * fuzz_num.c: checked decimal parsing (REST offsets, ports, PORT octets, config values).
 *
 * An accepted value is exactly the digits' value, never above the bound, and formatting
 * it back gives the input without its leading zeros; anything but 1 to 20 digits is
 * refused.  The bound comes from the first 8 bytes of the input.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/num.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t max = UINT64_MAX;
	if (size >= 8) {
		memcpy(&max, data, 8);
		data += 8;
		size -= 8;
	}
	const char *s = (const char *)data;
	uint64_t v = 12345;
	int rc = num_parse_u64((struct slice){ s, size }, max, &v);
	bool digits = size > 0;
	for (size_t i = 0; i < size; i++)
		digits = digits && s[i] >= '0' && s[i] <= '9';
	if (!digits) {
		if (rc != FERR_INVALID || v != 12345)
			abort();
		return 0;
	}
	if (rc == FERR_RANGE) {
		if (v != 12345)
			abort();
		return 0;
	}
	if (rc != FERR_OK || size > 20 || v > max)
		abort();
	/* The value of the digits, computed the slow way, agrees. */
	size_t i = 0;
	while (i + 1 < size && s[i] == '0')
		i++;
	char back[32];
	int n = snprintf(back, sizeof(back), "%" PRIu64, v);
	if (n < 0 || (size_t)n != size - i || memcmp(back, s + i, (size_t)n) != 0)
		abort();
	return 0;
}

/*
 * fuzz_quota.c: the quota tally's text (src/server/quota.c) on arbitrary bytes with an
 * explicit length, and the invariants of what it accepts: only digits, one space and an
 * optional newline; formatting the result gives back exactly the canonical text; and the
 * arithmetic on any accepted usage stays within its bounds.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "server/quota.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct quota_usage u;
	const char *text = (const char *)data;
	if (quota_parse(text, size, &u) < 0)
		return 0;
	size_t spaces = 0;
	for (size_t i = 0; i < size; i++) {
		bool last_nl = i == size - 1 && text[i] == '\n';
		if (text[i] == ' ')
			spaces++;
		else if (!last_nl && (text[i] < '0' || text[i] > '9'))
			__builtin_trap();
	}
	if (spaces != 1)
		__builtin_trap();
	char out[QUOTA_TEXT_MAX + 1];
	size_t n = quota_format(&u, out, sizeof(out));
	struct quota_usage v;
	if (n > QUOTA_TEXT_MAX || quota_parse(out, n, &v) < 0 || v.files != u.files ||
	    v.bytes != u.bytes)
		__builtin_trap();
	/* A text as long as the canonical one, newline included, has no leading zero: it is it. */
	if (size == n && text[size - 1] == '\n' && memcmp(text, out, n) != 0)
		__builtin_trap();
	struct quota_limits q = { .bytes = u.bytes / 2 + 1, .files = u.files };
	uint64_t room = quota_room(&q, &u, u.bytes / 3, u.bytes / 7);
	if (room > q.bytes)
		__builtin_trap();
	struct quota_usage w = u;
	quota_change(&w, 1, u.bytes, UINT64_MAX);
	if (w.bytes != UINT64_MAX || w.files < u.files)
		__builtin_trap();
	quota_change(&w, -1, UINT64_MAX, 0);
	if (w.bytes != 0)
		__builtin_trap();
	return 0;
}

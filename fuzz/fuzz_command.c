/*
 * fuzz_command.c: the control-connection line parser and cmd_split_line.
 *
 * The parser is fed the input twice: whole, and in chunks of pseudo-random sizes (chosen
 * by the input's first byte).  Resumability means both must give the same lines, so any
 * difference is a bug and aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/command.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_line(const struct cmd_parser *p)
{
	if (p->len > CMD_LINE_MAX || p->line[p->len] != '\0')
		abort();
	struct cmd_split s;
	cmd_split_line(p->line, p->len, &s);
	size_t vlen = strlen(s.verb);
	if (vlen > CMD_VERB_MAX || (s.verb_too_long && vlen != CMD_VERB_MAX))
		abort();
	if (s.arg < p->line || s.arg + s.arg_len != p->line + p->len)
		abort();
	if (s.has_arg != (memchr(p->line, ' ', p->len) != NULL))
		abort();
	for (size_t i = 0; i < vlen; i++) {
		if (s.verb[i] >= 'a' && s.verb[i] <= 'z')
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t seed = data[0] * 2654435761u + 1;
	data++;
	size--;

	struct cmd_parser *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	if (a == NULL || b == NULL)
		abort();
	cmd_parser_init(a);
	cmd_parser_init(b);

	size_t off_a = 0, off_b = 0;
	for (;;) {
		size_t used = 0;
		enum cmd_status sa = cmd_parser_feed(a, data + off_a, size - off_a, &used);
		if (used > size - off_a || (sa != CMD_AGAIN && used == 0))
			abort();
		off_a += used;

		enum cmd_status sb = CMD_AGAIN;
		while (off_b < size) {
			seed = seed * 1103515245u + 12345u;
			size_t chunk = 1 + (seed >> 16) % 9, u = 0;
			if (chunk > size - off_b)
				chunk = size - off_b;
			sb = cmd_parser_feed(b, data + off_b, chunk, &u);
			if (u > chunk)
				abort();
			off_b += u;
			if (sb != CMD_AGAIN)
				break;
		}
		if (sa != sb || off_a != off_b)
			abort();
		if (sa == CMD_AGAIN)
			break;
		if (a->len != b->len || memcmp(a->line, b->line, a->len + 1) != 0 ||
		    a->saw_ip != b->saw_ip || a->saw_dm != b->saw_dm)
			abort();
		if ((sa == CMD_TOOLONG) != a->overflow || (sa == CMD_HASNUL && !a->nul))
			abort();
		check_line(a);
	}
	if (off_a != size)
		abort();
	free(a);
	free(b);
	return 0;
}

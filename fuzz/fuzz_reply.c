/*
 * fuzz_reply.c: the client's reply parser.
 *
 * Fed whole and in pseudo-random chunks, it must give the same replies.  Every reply it
 * accepts is formatted again with reply_format and parsed once more: the text must survive.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether reply_format can reproduce this text exactly (it drops CR and one final LF). */
static bool reproducible(const struct buf *t)
{
	size_t run = 0;
	if (t->len > 0 && t->data[t->len - 1] == '\n')
		return false;
	for (size_t i = 0; i < t->len; i++) {
		if (t->data[i] == '\r')
			return false;
		run = t->data[i] == '\n' ? 0 : run + 1;
		if (run > 8000)
			return false; /* a re-indented line could pass the parser's line cap */
	}
	return true;
}

static void round_trip(const struct reply_parser *p)
{
	struct buf b;
	struct reply_parser q;
	size_t used = 0;

	if (!reproducible(&p->text))
		return;
	buf_init(&b, 2 * REPLY_TEXT_MAX + 4096);
	if (reply_format(&b, p->code, p->text.data) != FERR_OK)
		abort();
	reply_parser_init(&q);
	if (reply_parser_feed(&q, (const uint8_t *)b.data, b.len, &used) != REPLY_DONE ||
	    used != b.len || q.code != p->code || q.text.len != p->text.len ||
	    memcmp(q.text.data, p->text.data, q.text.len) != 0)
		abort();
	reply_parser_free(&q);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t seed = data[0] * 2654435761u + 7;
	data++;
	size--;

	struct reply_parser a, b;
	reply_parser_init(&a);
	reply_parser_init(&b);
	size_t off_a = 0, off_b = 0;
	for (;;) {
		size_t used = 0;
		enum reply_status sa = reply_parser_feed(&a, data + off_a, size - off_a, &used);
		if (used > size - off_a || (sa != REPLY_AGAIN && used == 0))
			abort();
		off_a += used;

		enum reply_status sb = REPLY_AGAIN;
		while (off_b < size) {
			seed = seed * 1103515245u + 12345u;
			size_t chunk = 1 + (seed >> 16) % 13, u = 0;
			if (chunk > size - off_b)
				chunk = size - off_b;
			sb = reply_parser_feed(&b, data + off_b, chunk, &u);
			if (u > chunk)
				abort();
			off_b += u;
			if (sb != REPLY_AGAIN)
				break;
		}
		if (sa != sb || off_a != off_b)
			abort();
		if (sa == REPLY_AGAIN)
			break;
		if (sa == REPLY_DONE) {
			if (a.code < 100 || a.code > 599 || a.code != b.code ||
			    a.text.len > REPLY_TEXT_MAX || a.text.data == NULL ||
			    a.text.data[a.text.len] != '\0' || a.text.len != b.text.len ||
			    memcmp(a.text.data, b.text.data, a.text.len) != 0)
				abort();
			round_trip(&a);
		}
	}
	reply_parser_free(&a);
	reply_parser_free(&b);
	return 0;
}

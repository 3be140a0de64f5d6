/* test_ascii.c: TYPE A conversion in both directions, across chunk boundaries. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/ascii.h"

static size_t to_crlf(const char *in, size_t n, uint8_t *out)
{
	struct ascii_state st;
	ascii_init(&st);
	return ascii_to_crlf(&st, (const uint8_t *)in, n, out);
}

static size_t from_crlf(const char *in, size_t n, uint8_t *out)
{
	struct ascii_state st;
	ascii_init(&st);
	size_t o = ascii_from_crlf(&st, (const uint8_t *)in, n, out);
	return o + ascii_from_crlf_flush(&st, out + o);
}

#define LIT(s) (s), (sizeof(s) - 1)

static void test_to_crlf(void **state)
{
	(void)state;
	uint8_t out[64];
	size_t n = to_crlf(LIT("a\nb\r\nc\n\n"), out);
	assert_int_equal(n, 11);
	assert_memory_equal(out, "a\r\nb\r\nc\r\n\r\n", n);
	assert_int_equal(to_crlf(LIT(""), out), 0);
	n = to_crlf(LIT("\r\r\n\r"), out);
	assert_memory_equal(out, "\r\r\n\r", n);
	assert_int_equal(n, 4);
}

static void test_to_crlf_split(void **state)
{
	(void)state;
	/* A CR at the end of one chunk and LF at the start of the next stay CR LF. */
	struct ascii_state st;
	uint8_t out[16];
	ascii_init(&st);
	size_t n = ascii_to_crlf(&st, (const uint8_t *)"x\r", 2, out);
	n += ascii_to_crlf(&st, (const uint8_t *)"\ny", 2, out + n);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "x\r\ny", 4);
}

static void test_from_crlf(void **state)
{
	(void)state;
	uint8_t out[64];
	size_t n = from_crlf(LIT("a\r\nb\rc\r\r\nd\n"), out);
	assert_int_equal(n, 9);
	assert_memory_equal(out, "a\nb\rc\r\nd\n", n);
	n = from_crlf(LIT("end\r"), out);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "end\r", 4);
}

static void test_from_crlf_split(void **state)
{
	(void)state;
	struct ascii_state st;
	uint8_t out[16];
	ascii_init(&st);
	size_t n = ascii_from_crlf(&st, (const uint8_t *)"x\r", 2, out);
	assert_int_equal(n, 1); /* the CR is held back */
	assert_true(st.last_was_cr);
	n += ascii_from_crlf(&st, (const uint8_t *)"\ny\r", 3, out + n);
	n += ascii_from_crlf(&st, (const uint8_t *)"z", 1, out + n);
	n += ascii_from_crlf_flush(&st, out + n);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "x\ny\rz", 5);
	assert_int_equal(ascii_from_crlf_flush(&st, out), 0);
}

static void test_output_bounds(void **state)
{
	(void)state;
	/* Worst cases: every byte LF doubles; a held CR plus n bytes gives n + 1. */
	uint8_t in[100], out[201];
	struct ascii_state st;
	memset(in, '\n', sizeof(in));
	assert_int_equal(to_crlf((const char *)in, sizeof(in), out), 200);
	ascii_init(&st);
	memset(in, 'a', sizeof(in));
	assert_int_equal(ascii_from_crlf(&st, (const uint8_t *)"\r", 1, out), 0);
	assert_int_equal(ascii_from_crlf(&st, in, sizeof(in), out), 101);
}

/* Random data, converted in random chunks, equals the whole conversion; and round trips. */
static void test_random(void **state)
{
	(void)state;
	static const uint8_t alphabet[] = { 'a', '\r', '\n', 0 };
	uint8_t in[500], whole[1001], chunked[1001], back[1001];
	srand(99);
	for (int round = 0; round < 300; round++) {
		for (size_t i = 0; i < sizeof(in); i++)
			in[i] = alphabet[(size_t)rand() % sizeof(alphabet)];
		size_t nw = from_crlf((const char *)in, sizeof(in), whole);
		struct ascii_state st;
		ascii_init(&st);
		size_t nc = 0;
		for (size_t off = 0; off < sizeof(in);) {
			size_t chunk = 1 + (size_t)rand() % 5;
			if (chunk > sizeof(in) - off)
				chunk = sizeof(in) - off;
			nc += ascii_from_crlf(&st, in + off, chunk, chunked + nc);
			off += chunk;
		}
		nc += ascii_from_crlf_flush(&st, chunked + nc);
		assert_int_equal(nw, nc);
		assert_memory_equal(whole, chunked, nw);

		/* Disk text without CR survives LF -> CR LF -> LF. */
		for (size_t i = 0; i < sizeof(in); i++)
			if (in[i] == '\r')
				in[i] = 'b';
		size_t n1 = to_crlf((const char *)in, sizeof(in), whole);
		size_t n2 = from_crlf((const char *)whole, n1, back);
		assert_int_equal(n2, sizeof(in));
		assert_memory_equal(back, in, n2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_to_crlf),
		cmocka_unit_test(test_to_crlf_split),
		cmocka_unit_test(test_from_crlf),
		cmocka_unit_test(test_from_crlf_split),
		cmocka_unit_test(test_output_bounds),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_command.c: the control-connection line parser and the verb/argument split. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/command.h"

/* Feed a whole buffer once; returns the status and the bytes used. */
static enum cmd_status feed(struct cmd_parser *p, const char *s, size_t n, size_t *used)
{
	return cmd_parser_feed(p, (const uint8_t *)s, n, used);
}

/* Feed a string literal, embedded NULs included. */
#define FEED(p, lit, used) feed((p), (lit), sizeof(lit) - 1, (used))

/* Feed one byte at a time until a result; returns it and how many bytes it took. */
static enum cmd_status feed_bytewise(struct cmd_parser *p, const char *s, size_t n,
				     size_t *taken)
{
	for (size_t i = 0; i < n; i++) {
		size_t used = 99;
		enum cmd_status st = cmd_parser_feed(p, (const uint8_t *)s + i, 1, &used);
		assert_int_equal(used, 1);
		if (st != CMD_AGAIN) {
			*taken = i + 1;
			return st;
		}
	}
	*taken = n;
	return CMD_AGAIN;
}

static void test_simple_line(void **state)
{
	(void)state;
	struct cmd_parser p;
	size_t used;
	cmd_parser_init(&p);
	assert_int_equal(FEED(&p, "USER ftp\r\n", &used), CMD_LINE);
	assert_int_equal(used, 10);
	assert_string_equal(p.line, "USER ftp");
	assert_int_equal(p.len, 8);
	assert_int_equal(FEED(&p, "PWD\n", &used), CMD_LINE);
	assert_string_equal(p.line, "PWD");
}

static void test_empty_and_partial(void **state)
{
	(void)state;
	struct cmd_parser p;
	size_t used = 7;
	cmd_parser_init(&p);
	assert_int_equal(FEED(&p, "", &used), CMD_AGAIN);
	assert_int_equal(used, 0);
	assert_int_equal(FEED(&p, "NO", &used), CMD_AGAIN);
	assert_int_equal(used, 2);
	assert_int_equal(FEED(&p, "OP\r", &used), CMD_AGAIN);
	assert_int_equal(FEED(&p, "\nQUIT\r\n", &used), CMD_LINE);
	assert_int_equal(used, 1);
	assert_string_equal(p.line, "NOOP");
	assert_int_equal(FEED(&p, "QUIT\r\n", &used), CMD_LINE);
	assert_string_equal(p.line, "QUIT");
	assert_int_equal(FEED(&p, "\r\n", &used), CMD_LINE);
	assert_string_equal(p.line, "");
	assert_int_equal(p.len, 0);
}

static void test_pipelined(void **state)
{
	(void)state;
	struct cmd_parser p;
	const char in[] = "USER a\r\nPASS b\r\nSYST\r\n";
	size_t off = 0, used;
	const char *want[] = { "USER a", "PASS b", "SYST" };
	cmd_parser_init(&p);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(feed(&p, in + off, sizeof(in) - 1 - off, &used), CMD_LINE);
		assert_string_equal(p.line, want[i]);
		off += used;
	}
	assert_int_equal(off, sizeof(in) - 1);
}

static void test_bare_cr(void **state)
{
	(void)state;
	struct cmd_parser p;
	size_t used;
	cmd_parser_init(&p);
	/* CR NUL is Telnet's bare CR. */
	assert_int_equal(FEED(&p, "RETR a\r\0b\r\n", &used), CMD_LINE);
	assert_int_equal(p.len, 8);
	assert_memory_equal(p.line, "RETR a\rb", 8);
	/* A lone CR before other data is kept; CR CR LF keeps the first. */
	assert_int_equal(FEED(&p, "A\rB\r\r\n", &used), CMD_LINE);
	assert_string_equal(p.line, "A\rB\r");
}

static void test_nul(void **state)
{
	(void)state;
	struct cmd_parser p;
	size_t used;
	cmd_parser_init(&p);
	assert_int_equal(FEED(&p, "RETR a\0b\r\n", &used), CMD_HASNUL);
	assert_int_equal(used, 10);
	assert_true(p.nul);
	assert_int_equal(FEED(&p, "NOOP\r\n", &used), CMD_LINE);
	assert_false(p.nul);
}

static void test_telnet_iac(void **state)
{
	(void)state;
	struct cmd_parser p;
	size_t used;
	cmd_parser_init(&p);
	/* IAC IAC is a literal 0xFF. */
	assert_int_equal(FEED(&p, "MKD \xff\xff" "x\r\n", &used), CMD_LINE);
	assert_int_equal(p.len, 6);
	assert_memory_equal(p.line, "MKD \xffx", 6);
	/* Option negotiation disappears, whatever the option byte is (even LF). */
	assert_int_equal(FEED(&p, "NO\xff\xfb\x01OP\xff\xfe\n\r\n", &used), CMD_LINE);
	assert_string_equal(p.line, "NOOP");
	/* Subnegotiation disappears up to IAC SE, IAC IAC inside included. */
	assert_int_equal(FEED(&p, "ST\xff\xfa\x18\x01\xff\xff\n\xff\xf0" "AT\r\n", &used),
			 CMD_LINE);
	assert_string_equal(p.line, "STAT");
	/* Other commands (NOP, AYT) are dropped without a trace. */
	assert_int_equal(FEED(&p, "\xff\xf1PW\xff\xf6" "D\r\n", &used), CMD_LINE);
	assert_string_equal(p.line, "PWD");
	assert_false(p.saw_ip);
	assert_false(p.saw_dm);
}

static void test_abort_sequence(void **state)
{
	(void)state;
	struct cmd_parser p;
	size_t used;
	cmd_parser_init(&p);
	/* RFC 959 s.4.1.3: Telnet IP, Synch (DM), then ABOR. */
	assert_int_equal(FEED(&p, "\xff\xf4\xff\xf2" "ABOR\r\n", &used), CMD_LINE);
	assert_string_equal(p.line, "ABOR");
	assert_true(p.saw_ip);
	assert_true(p.saw_dm);
	/* The flags belong to that line only. */
	assert_int_equal(FEED(&p, "NOOP\r\n", &used), CMD_LINE);
	assert_false(p.saw_ip);
	assert_false(p.saw_dm);
}

static void test_iac_split_across_calls(void **state)
{
	(void)state;
	struct cmd_parser p;
	size_t used;
	cmd_parser_init(&p);
	assert_int_equal(FEED(&p, "\xff", &used), CMD_AGAIN);
	assert_int_equal(FEED(&p, "\xf4", &used), CMD_AGAIN);
	assert_int_equal(FEED(&p, "AB\xff", &used), CMD_AGAIN);
	assert_int_equal(FEED(&p, "\xff", &used), CMD_AGAIN);
	assert_int_equal(FEED(&p, "OR\xff", &used), CMD_AGAIN);
	assert_int_equal(FEED(&p, "\xfd", &used), CMD_AGAIN);
	assert_int_equal(FEED(&p, "\x03", &used), CMD_AGAIN);
	assert_int_equal(FEED(&p, "\r", &used), CMD_AGAIN);
	assert_int_equal(FEED(&p, "\n", &used), CMD_LINE);
	assert_int_equal(p.len, 5);
	assert_memory_equal(p.line, "AB\xffOR", 5);
	assert_true(p.saw_ip);
}

static void test_cr_split_across_calls(void **state)
{
	(void)state;
	struct cmd_parser p;
	size_t used;
	cmd_parser_init(&p);
	assert_int_equal(FEED(&p, "CWD a\r", &used), CMD_AGAIN);
	assert_int_equal(FEED(&p, "\0", &used), CMD_AGAIN);
	assert_int_equal(FEED(&p, "b\r", &used), CMD_AGAIN);
	assert_int_equal(FEED(&p, "\n", &used), CMD_LINE);
	assert_string_equal(p.line, "CWD a\rb");
}

static void test_bytewise_equals_whole(void **state)
{
	(void)state;
	static const char in[] = "USER x\r\n\xff\xf4\xff\xf2" "ABOR\r\nMKD \xff\xff\r\0z\r\n"
				 "ST\xff\xfa\x01\xff\xff\xff\xf0" "AT\n";
	struct cmd_parser a, b;
	size_t off_a = 0, off_b = 0;
	cmd_parser_init(&a);
	cmd_parser_init(&b);
	for (int i = 0; i < 4; i++) {
		size_t used, taken;
		enum cmd_status sa = feed(&a, in + off_a, sizeof(in) - 1 - off_a, &used);
		enum cmd_status sb = feed_bytewise(&b, in + off_b, sizeof(in) - 1 - off_b, &taken);
		assert_int_equal(sa, CMD_LINE);
		assert_int_equal(sa, sb);
		assert_int_equal(used, taken);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.line, b.line, a.len + 1);
		assert_int_equal(a.saw_ip, b.saw_ip);
		assert_int_equal(a.saw_dm, b.saw_dm);
		off_a += used;
		off_b += taken;
	}
	assert_int_equal(off_a, sizeof(in) - 1);
}

/* Random streams, fed whole and in random chunks, give the same lines. */
static void test_random_chunking(void **state)
{
	(void)state;
	static const uint8_t alphabet[] = { 'a', ' ', '\r', '\n', 0, 0xff, 0xf4, 0xf2,
					    0xfa, 0xf0, 0xfb, 'Z' };
	uint8_t in[2000];
	srand(12345);
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(in); i++)
			in[i] = alphabet[(size_t)rand() % sizeof(alphabet)];
		struct cmd_parser a, b;
		cmd_parser_init(&a);
		cmd_parser_init(&b);
		size_t off_a = 0, off_b = 0;
		for (;;) {
			size_t used;
			enum cmd_status sa = cmd_parser_feed(&a, in + off_a, sizeof(in) - off_a, &used);
			off_a += used;
			enum cmd_status sb = CMD_AGAIN;
			while (off_b < sizeof(in)) {
				size_t chunk = 1 + (size_t)rand() % 7, u;
				if (chunk > sizeof(in) - off_b)
					chunk = sizeof(in) - off_b;
				sb = cmd_parser_feed(&b, in + off_b, chunk, &u);
				off_b += u;
				if (sb != CMD_AGAIN)
					break;
			}
			assert_int_equal(sa, sb);
			assert_int_equal(off_a, off_b);
			if (sa == CMD_AGAIN)
				break;
			assert_int_equal(a.len, b.len);
			assert_memory_equal(a.line, b.line, a.len + 1);
			assert_int_equal(a.saw_ip, b.saw_ip);
			assert_int_equal(a.saw_dm, b.saw_dm);
		}
	}
}

static void test_max_line(void **state)
{
	(void)state;
	struct cmd_parser p;
	size_t used;
	char *in = malloc(CMD_LINE_MAX + 2);
	assert_non_null(in);
	memset(in, 'A', CMD_LINE_MAX);
	in[CMD_LINE_MAX] = '\n';
	cmd_parser_init(&p);
	assert_int_equal(feed(&p, in, CMD_LINE_MAX + 1, &used), CMD_LINE);
	assert_int_equal(p.len, CMD_LINE_MAX);
	assert_int_equal(strlen(p.line), CMD_LINE_MAX);
	/* CR LF does not count against the cap. */
	in[CMD_LINE_MAX] = '\r';
	in[CMD_LINE_MAX + 1] = '\n';
	assert_int_equal(feed(&p, in, CMD_LINE_MAX + 2, &used), CMD_LINE);
	assert_int_equal(p.len, CMD_LINE_MAX);
	free(in);
}

static void test_too_long(void **state)
{
	(void)state;
	struct cmd_parser p;
	size_t used;
	size_t n = 10000;
	char *in = malloc(n);
	assert_non_null(in);
	memset(in, 'B', n);
	cmd_parser_init(&p);
	/* 4097 bytes then more: the parser keeps consuming and reports at LF. */
	assert_int_equal(feed(&p, in, CMD_LINE_MAX + 1, &used), CMD_AGAIN);
	assert_int_equal(used, CMD_LINE_MAX + 1);
	assert_true(p.overflow);
	assert_int_equal(feed(&p, in, n, &used), CMD_AGAIN);
	assert_int_equal(FEED(&p, "\r\nNOOP\r\n", &used), CMD_TOOLONG);
	assert_int_equal(used, 2);
	assert_int_equal(p.len, CMD_LINE_MAX);
	assert_int_equal(p.line[CMD_LINE_MAX], '\0');
	/* The next line is whole again. */
	assert_int_equal(FEED(&p, "NOOP\r\n", &used), CMD_LINE);
	assert_false(p.overflow);
	assert_string_equal(p.line, "NOOP");
	free(in);
}

static void test_too_long_bytewise(void **state)
{
	(void)state;
	struct cmd_parser p;
	size_t taken;
	char in[CMD_LINE_MAX + 3];
	memset(in, 'C', sizeof(in));
	in[CMD_LINE_MAX + 1] = '\r';
	in[CMD_LINE_MAX + 2] = '\n';
	cmd_parser_init(&p);
	assert_int_equal(feed_bytewise(&p, in, sizeof(in), &taken), CMD_TOOLONG);
	assert_int_equal(taken, sizeof(in));
}

static void test_too_long_with_iac_escapes(void **state)
{
	(void)state;
	/* 2049 escaped 0xFF bytes decode to 2049 bytes: fits.  4097 do not. */
	struct cmd_parser p;
	size_t used;
	size_t n = 2 * (CMD_LINE_MAX + 1) + 1;
	char *in = malloc(n);
	assert_non_null(in);
	memset(in, 0xff, n - 1);
	in[n - 1] = '\n';
	cmd_parser_init(&p);
	assert_int_equal(feed(&p, in, n, &used), CMD_TOOLONG);
	assert_int_equal(used, n);
	assert_int_equal(feed(&p, in + (n - 1) - 2 * CMD_LINE_MAX, 2 * CMD_LINE_MAX + 1, &used),
			 CMD_LINE);
	assert_int_equal(p.len, CMD_LINE_MAX);
	assert_int_equal((unsigned char)p.line[0], 0xff);
	free(in);
}

static void split(const char *line, struct cmd_split *s)
{
	cmd_split_line(line, strlen(line), s);
}

static void test_split(void **state)
{
	(void)state;
	struct cmd_split s;

	split("retr some file ", &s);
	assert_string_equal(s.verb, "RETR");
	assert_false(s.verb_too_long);
	assert_true(s.has_arg);
	assert_int_equal(s.arg_len, 10);
	assert_string_equal(s.arg, "some file ");

	split("CWD ", &s);
	assert_string_equal(s.verb, "CWD");
	assert_true(s.has_arg);
	assert_int_equal(s.arg_len, 0);
	assert_string_equal(s.arg, "");

	split("NOOP", &s);
	assert_string_equal(s.verb, "NOOP");
	assert_false(s.has_arg);
	assert_non_null(s.arg);
	assert_string_equal(s.arg, "");

	split("", &s);
	assert_string_equal(s.verb, "");
	assert_false(s.has_arg);

	split(" lead", &s);
	assert_string_equal(s.verb, "");
	assert_true(s.has_arg);
	assert_string_equal(s.arg, "lead");

	split("STOR  two spaces", &s);
	assert_string_equal(s.arg, " two spaces");

	split("abcdefgh x", &s);
	assert_string_equal(s.verb, "ABCDEFGH");
	assert_false(s.verb_too_long);

	split("abcdefghi x", &s);
	assert_string_equal(s.verb, "ABCDEFGH");
	assert_true(s.verb_too_long);
	assert_string_equal(s.arg, "x");

	split("\xe9t\xc3\xa9 z", &s);
	assert_string_equal(s.verb, "\xe9T\xc3\xa9");
}

static void test_split_respects_len(void **state)
{
	(void)state;
	struct cmd_split s;
	const char *line = "USER bob";
	cmd_split_line(line, 4, &s);
	assert_string_equal(s.verb, "USER");
	assert_false(s.has_arg);
	assert_int_equal(s.arg_len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_line),
		cmocka_unit_test(test_empty_and_partial),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_bare_cr),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_telnet_iac),
		cmocka_unit_test(test_abort_sequence),
		cmocka_unit_test(test_iac_split_across_calls),
		cmocka_unit_test(test_cr_split_across_calls),
		cmocka_unit_test(test_bytewise_equals_whole),
		cmocka_unit_test(test_random_chunking),
		cmocka_unit_test(test_max_line),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_too_long_bytewise),
		cmocka_unit_test(test_too_long_with_iac_escapes),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_split_respects_len),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

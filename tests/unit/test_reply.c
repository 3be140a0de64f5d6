/* test_reply.c: reply formatting (server) and the resumable reply parser (client). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/reply.h"

static void test_single_line(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1024);
	assert_int_equal(reply_format(&b, R_200_OK, "Command okay."), FERR_OK);
	assert_string_equal(b.data, "200 Command okay.\r\n");
	buf_reset(&b);
	assert_int_equal(reply_format(&b, R_226_CLOSING_DATA, ""), FERR_OK);
	assert_string_equal(b.data, "226 \r\n");
	buf_reset(&b);
	assert_int_equal(reply_format(&b, R_200_OK, "a\rb\r"), FERR_OK);
	assert_string_equal(b.data, "200 ab\r\n");
	buf_reset(&b);
	assert_int_equal(reply_format(&b, R_200_OK, "one\n"), FERR_OK);
	assert_string_equal(b.data, "200 one\r\n");
	buf_free(&b);
}

static void test_multi_line(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1024);
	assert_int_equal(reply_format(&b, R_211_SYSTEM_STATUS, "a\nb\nc"), FERR_OK);
	assert_string_equal(b.data, "211-a\r\n b\r\n211 c\r\n");
	buf_reset(&b);
	assert_int_equal(reply_format(&b, R_214_HELP, "x\n\ny"), FERR_OK);
	assert_string_equal(b.data, "214-x\r\n \r\n214 y\r\n");
	buf_reset(&b);
	/* A line of text that looks like a final reply cannot end the reply early. */
	assert_int_equal(reply_format(&b, R_220_READY, "welcome\n220 fake\nend"), FERR_OK);
	assert_string_equal(b.data, "220-welcome\r\n 220 fake\r\n220 end\r\n");
	buf_reset(&b);
	assert_int_equal(reply_format(&b, R_220_READY, "a\r\nb"), FERR_OK);
	assert_string_equal(b.data, "220-a\r\n220 b\r\n");
	buf_free(&b);
}

static void test_toobig_unchanged(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 30);
	assert_int_equal(buf_append_str(&b, "keep"), FERR_OK);
	assert_int_equal(reply_format(&b, R_211_SYSTEM_STATUS, "aaaaaaaa\nbbbbbbbb\ncccccccc"),
			 FERR_TOOBIG);
	assert_string_equal(b.data, "keep");
	assert_int_equal(b.len, 4);
	assert_int_equal(reply_quote_path(&b, "/a/very/long/path/that/does/not/fit"),
			 FERR_TOOBIG);
	assert_string_equal(b.data, "keep");
	assert_int_equal(reply_begin(&b, 211, "0123456789012345678901234567"), FERR_TOOBIG);
	assert_string_equal(b.data, "keep");
	assert_int_equal(reply_formatf(&b, 200, "%s", "0123456789012345678901234567"),
			 FERR_TOOBIG);
	assert_string_equal(b.data, "keep");
	buf_free(&b);
}

static void test_formatf(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1024);
	assert_int_equal(reply_formatf(&b, R_213_FILE_STATUS, "%d", 12345), FERR_OK);
	assert_string_equal(b.data, "213 12345\r\n");
	buf_reset(&b);
	assert_int_equal(reply_formatf(&b, R_211_SYSTEM_STATUS, "%s\n%s", "x", "y"), FERR_OK);
	assert_string_equal(b.data, "211-x\r\n211 y\r\n");
	buf_free(&b);
}

static void test_builders(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1024);
	assert_int_equal(reply_begin(&b, R_211_SYSTEM_STATUS, "Features:"), FERR_OK);
	assert_int_equal(reply_line(&b, "EPSV"), FERR_OK);
	assert_int_equal(reply_line(&b, "MLST type*;size*;"), FERR_OK);
	assert_int_equal(reply_line(&b, "bad\r\nline"), FERR_OK);
	assert_int_equal(reply_end(&b, R_211_SYSTEM_STATUS, "End"), FERR_OK);
	assert_string_equal(b.data, "211-Features:\r\n EPSV\r\n MLST type*;size*;\r\n"
				    " bad line\r\n211 End\r\n");
	buf_free(&b);
}

static void test_quote_path(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1024);
	assert_int_equal(reply_quote_path(&b, "/pub/a\"b\"\""), FERR_OK);
	assert_string_equal(b.data, "\"/pub/a\"\"b\"\"\"\"\"");
	buf_reset(&b);
	assert_int_equal(reply_quote_path(&b, "/x\ry\nz"), FERR_OK);
	assert_string_equal(b.data, "\"/x?y?z\"");
	buf_reset(&b);
	assert_int_equal(reply_quote_path(&b, ""), FERR_OK);
	assert_string_equal(b.data, "\"\"");

	/* A whole 257 reply, as MKD answers it (RFC 959 Appendix II). */
	struct buf q;
	buf_init(&q, 1024);
	assert_int_equal(reply_quote_path(&q, "/usr/dm/\"x\""), FERR_OK);
	buf_reset(&b);
	assert_int_equal(reply_formatf(&b, R_257_CREATED, "%s created.", q.data), FERR_OK);
	assert_string_equal(b.data, "257 \"/usr/dm/\"\"x\"\"\" created.\r\n");
	buf_free(&q);
	buf_free(&b);
}

static enum reply_status pfeed(struct reply_parser *p, const char *s, size_t n, size_t *used)
{
	return reply_parser_feed(p, (const uint8_t *)s, n, used);
}
#define PFEED(p, lit, used) pfeed((p), (lit), sizeof(lit) - 1, (used))

static void test_parse_single(void **state)
{
	(void)state;
	struct reply_parser p;
	size_t used;
	reply_parser_init(&p);
	assert_null(p.text.data); /* init allocates nothing */
	assert_int_equal(PFEED(&p, "220 ready\r\n", &used), REPLY_DONE);
	assert_int_equal(used, 11);
	assert_int_equal(p.code, 220);
	assert_string_equal(p.text.data, "ready");
	assert_int_equal(PFEED(&p, "200\r\n", &used), REPLY_DONE);
	assert_int_equal(p.code, 200);
	assert_string_equal(p.text.data, "");
	assert_int_equal(PFEED(&p, "530 \n", &used), REPLY_DONE);
	assert_int_equal(p.code, 530);
	assert_string_equal(p.text.data, "");
	reply_parser_free(&p);
}

static void test_parse_multi(void **state)
{
	(void)state;
	struct reply_parser p;
	size_t used;
	static const char in[] = "211-Features:\r\n EPSV\r\n MDTM\r\n211-dup prefix\r\n"
				 "200 other code\r\n211x\r\n211 End\r\n";
	reply_parser_init(&p);
	assert_int_equal(PFEED(&p, in, &used), REPLY_DONE);
	assert_int_equal(used, sizeof(in) - 1);
	assert_int_equal(p.code, 211);
	assert_string_equal(p.text.data,
			    "Features:\nEPSV\nMDTM\ndup prefix\n200 other code\n211x\nEnd");
	reply_parser_free(&p);
}

static void test_parse_pipelined(void **state)
{
	(void)state;
	struct reply_parser p;
	size_t used, off = 0;
	static const char in[] = "150 Opening\r\n226-Done\r\n 5 files\r\n226 ok\r\n";
	reply_parser_init(&p);
	assert_int_equal(pfeed(&p, in, sizeof(in) - 1, &used), REPLY_DONE);
	assert_int_equal(p.code, 150);
	assert_string_equal(p.text.data, "Opening");
	off += used;
	assert_int_equal(pfeed(&p, in + off, sizeof(in) - 1 - off, &used), REPLY_DONE);
	off += used;
	assert_int_equal(off, sizeof(in) - 1);
	assert_int_equal(p.code, 226);
	assert_string_equal(p.text.data, "Done\n5 files\nok");
	reply_parser_free(&p);
}

static void test_parse_bytewise(void **state)
{
	(void)state;
	struct reply_parser p;
	static const char in[] = "230-Welcome\r\n230-to ferry\r\n   indented\r\n230 Login ok\r\n";
	reply_parser_init(&p);
	enum reply_status st = REPLY_AGAIN;
	size_t i;
	for (i = 0; i < sizeof(in) - 1; i++) {
		size_t used = 9;
		st = pfeed(&p, in + i, 1, &used);
		assert_int_equal(used, 1);
		if (st != REPLY_AGAIN)
			break;
	}
	assert_int_equal(st, REPLY_DONE);
	assert_int_equal(i, sizeof(in) - 2);
	assert_int_equal(p.code, 230);
	assert_string_equal(p.text.data, "Welcome\nto ferry\n  indented\nLogin ok");
	reply_parser_free(&p);
}

static void test_parse_split_crlf(void **state)
{
	(void)state;
	struct reply_parser p;
	size_t used;
	reply_parser_init(&p);
	assert_int_equal(PFEED(&p, "22", &used), REPLY_AGAIN);
	assert_int_equal(PFEED(&p, "7 Entering Passive Mode (1,2,3,4,5,6)\r", &used), REPLY_AGAIN);
	assert_int_equal(PFEED(&p, "\n", &used), REPLY_DONE);
	assert_int_equal(p.code, 227);
	assert_string_equal(p.text.data, "Entering Passive Mode (1,2,3,4,5,6)");
	reply_parser_free(&p);
}

static void test_parse_invalid(void **state)
{
	(void)state;
	struct reply_parser p;
	size_t used;
	const char *bad[] = { "hello\r\n", "\r\n", "600 no\r\n", "099 no\r\n", "20 x\r\n",
			      "2000 x\r\n", "200x\r\n", "-200 x\r\n" };
	reply_parser_init(&p);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(pfeed(&p, bad[i], strlen(bad[i]), &used), REPLY_INVALID);
		assert_int_equal(used, strlen(bad[i]));
	}
	/* The parser starts afresh after a bad reply. */
	assert_int_equal(PFEED(&p, "221 bye\r\n", &used), REPLY_DONE);
	assert_int_equal(p.code, 221);
	reply_parser_free(&p);
}

static void test_parse_nul_dropped(void **state)
{
	(void)state;
	struct reply_parser p;
	size_t used;
	reply_parser_init(&p);
	assert_int_equal(PFEED(&p, "200 a\0b\r\n", &used), REPLY_DONE);
	assert_string_equal(p.text.data, "ab");
	reply_parser_free(&p);
}

static void test_parse_line_too_long(void **state)
{
	(void)state;
	struct reply_parser p;
	size_t used, n = 20000;
	char *in = malloc(n);
	assert_non_null(in);
	memcpy(in, "200 ", 4);
	memset(in + 4, 'x', n - 4);
	reply_parser_init(&p);
	assert_int_equal(pfeed(&p, in, n, &used), REPLY_INVALID);
	assert_true(used < n);
	assert_true(p.line.len <= 8192);
	reply_parser_free(&p);
	free(in);
}

static void test_parse_text_too_long(void **state)
{
	(void)state;
	/* A multi-line reply that never ends must not grow past REPLY_TEXT_MAX. */
	struct reply_parser p;
	char line[1002];
	size_t used;
	memset(line, 'y', 1000);
	line[1000] = '\r';
	line[1001] = '\n';
	reply_parser_init(&p);
	assert_int_equal(PFEED(&p, "211-start\r\n", &used), REPLY_AGAIN);
	enum reply_status st = REPLY_AGAIN;
	int i;
	for (i = 0; i < 1000 && st == REPLY_AGAIN; i++)
		st = pfeed(&p, line, sizeof(line), &used);
	assert_int_equal(st, REPLY_INVALID);
	assert_true(i <= REPLY_TEXT_MAX / 1000 + 1);
	assert_true(p.text.len <= REPLY_TEXT_MAX);
	reply_parser_free(&p);
}

static void test_round_trip(void **state)
{
	(void)state;
	struct buf b;
	struct reply_parser p;
	size_t used;
	const char *texts[] = { "ok", "", "a\nb", "first\n 220 x\n\nlast", "x\n211 y\nz" };
	buf_init(&b, 4096);
	reply_parser_init(&p);
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		buf_reset(&b);
		assert_int_equal(reply_format(&b, 211, texts[i]), FERR_OK);
		assert_int_equal(pfeed(&p, b.data, b.len, &used), REPLY_DONE);
		assert_int_equal(used, b.len);
		assert_int_equal(p.code, 211);
		assert_string_equal(p.text.data, texts[i]);
	}
	reply_parser_free(&p);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_line),
		cmocka_unit_test(test_multi_line),
		cmocka_unit_test(test_toobig_unchanged),
		cmocka_unit_test(test_formatf),
		cmocka_unit_test(test_builders),
		cmocka_unit_test(test_quote_path),
		cmocka_unit_test(test_parse_single),
		cmocka_unit_test(test_parse_multi),
		cmocka_unit_test(test_parse_pipelined),
		cmocka_unit_test(test_parse_bytewise),
		cmocka_unit_test(test_parse_split_crlf),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_parse_nul_dropped),
		cmocka_unit_test(test_parse_line_too_long),
		cmocka_unit_test(test_parse_text_too_long),
		cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

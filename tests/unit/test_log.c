/*
 * test_log.c: the log escaper (src/common/logsafe.c) and what src/server/log.c builds on
 * it: the line sanitiser in every log call, the xferlog fields and the rate limiter (with
 * an injected clock).  Log output is read back from a pipe put in place of stderr.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/logsafe.h"
#include "common/path.h"
#include "server/log.h"

/* ---- log_escape ---- */

static void expect_escape(const char *in, size_t len, size_t cap, const char *want)
{
	char out[4096];
	assert_true(cap <= sizeof(out));
	memset(out, 'Z', sizeof(out));
	size_t n = log_escape(out, cap, in, len);
	assert_string_equal(out, want);
	assert_int_equal(n, strlen(want));
	assert_true(n < cap);
}

#define ESC(in, want) expect_escape((in), sizeof(in) - 1, 4096, (want))

static void test_bare_values(void **state)
{
	(void)state;
	ESC("anonymous", "anonymous");
	ESC("127.0.0.1", "127.0.0.1");
	ESC("::1", "::1");
	ESC("/pub/some-file_1.txt", "/pub/some-file_1.txt");
	ESC("a'b", "a'b");
}

static void test_quoted_values(void **state)
{
	(void)state;
	ESC("", "\"\"");
	ESC("a b", "\"a b\"");
	ESC("a=b", "\"a=b\"");
	ESC("a\"b", "\"a\\\"b\"");
	ESC("a\\b", "\"a\\\\b\"");
	ESC("\"", "\"\\\"\"");
	/* The finding: forged fields and a terminal escape stay inside one quoted value. */
	ESC("x client=203.0.113.7 user=root \x1b[31m",
	    "\"x client=203.0.113.7 user=root \\x1b[31m\"");
	ESC("a\r\nuser=root", "\"a\\x0d\\x0auser=root\"");
	ESC("tab\there", "\"tab\\x09here\"");
	ESC("del\x7f", "\"del\\x7f\"");
	expect_escape("a\0b", 3, 64, "\"a\\x00b\"");
	assert_string_equal(LOG_Q(NULL), "\"\"");
	assert_string_equal(LOG_Q("x y"), "\"x y\"");
}

static void test_utf8(void **state)
{
	(void)state;
	ESC("caf\xc3\xa9", "\"caf\xc3\xa9\"");                 /* é: kept, but quoted */
	ESC("\xe6\x97\xa5\xe6\x9c\xac", "\"\xe6\x97\xa5\xe6\x9c\xac\""); /* 日本 */
	ESC("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");        /* U+1F600 */
	ESC("\xff", "\"\\xff\"");
	ESC("\x80", "\"\\x80\"");
	ESC("\xc0\xaf", "\"\\xc0\\xaf\"");                      /* overlong '/' */
	ESC("\xe0\x80\xaf", "\"\\xe0\\x80\\xaf\"");             /* overlong '/' */
	ESC("\xed\xa0\x80", "\"\\xed\\xa0\\x80\"");             /* a surrogate */
	ESC("\xf4\x90\x80\x80", "\"\\xf4\\x90\\x80\\x80\"");    /* above U+10FFFF */
	ESC("\xe2\x82", "\"\\xe2\\x82\"");                      /* cut short */
	ESC("\xe2\x82z", "\"\\xe2\\x82z\"");
	ESC("\xc2\x9b" "31m", "\"\\xc2\\x9b31m\"");             /* C1 CSI */
	ESC("\xc2\x85", "\"\\xc2\\x85\"");                      /* C1 NEL */
	ESC("\xc2\xa0", "\"\xc2\xa0\"");                        /* no-break space: fine */
	ESC("a\xe2\x80\xae" "b", "\"a\\xe2\\x80\\xae" "b\"");         /* U+202E right-to-left override */
	ESC("\xe2\x81\xa6", "\"\\xe2\\x81\\xa6\"");             /* U+2066 */
	ESC("\xe2\x80\xa8", "\"\\xe2\\x80\\xa8\"");             /* U+2028 line separator */
	ESC("\xe2\x80\x8f", "\"\\xe2\\x80\\x8f\"");             /* U+200F */
	ESC("\xe2\x80\x94", "\"\xe2\x80\x94\"");                /* U+2014 em dash: fine */
}

static void test_truncation(void **state)
{
	(void)state;
	/* Fits exactly: the NUL needs the last byte. */
	expect_escape("abc", 3, 4, "abc");
	expect_escape("a b", 3, 6, "\"a b\"");
	/* Too long: quoted, cut, then the dots after the quote. */
	expect_escape("abcdefghijkl", 12, 10, "\"abcd\"...");
	expect_escape("a  b", 4, 6, "\"\"...");
	/* An escape or a character is never split. */
	expect_escape("\x1b\x1b", 2, 10, "\"\\x1b\"...");
	expect_escape("\x1b\x1b", 2, 9, "\"\"...");
	expect_escape("\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5", 9, 9, "\"\xe6\x97\xa5\"...");
	expect_escape("\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5", 9, 8, "\"\"...");
	expect_escape("\\\\\\", 3, 8, "\"\\\\\"...");
	/* Below the minimum: nothing. */
	expect_escape("abcdef", 6, 5, "");
	char one = 'Z';
	assert_int_equal(log_escape(&one, 1, "abc", 3), 0);
	assert_int_equal(one, '\0');
	assert_int_equal(log_escape(NULL, 0, "abc", 3), 0);
	/* LOG_Q of a maximal path stays within LOG_VALUE_MAX and says it is cut. */
	char path[VPATH_MAX];
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	const char *q = LOG_Q(path);
	assert_int_equal(strlen(q), LOG_VALUE_MAX - 1);
	assert_string_equal(q + strlen(q) - 4, "\"...");
}

/* The inverse of log_escape() for untruncated values; returns the length or -1. */
static long unescape(const char *s, char *out)
{
	size_t n = strlen(s);
	if (n == 0)
		return -1;
	if (s[0] != '"') {
		memcpy(out, s, n);
		return (long)n;
	}
	if (n < 2 || s[n - 1] != '"')
		return -1;
	long w = 0;
	for (size_t i = 1; i < n - 1; i++) {
		if (s[i] == '"')
			return -1; /* an unescaped quote inside */
		if (s[i] != '\\') {
			out[w++] = s[i];
			continue;
		}
		if (s[i + 1] == '\\' || s[i + 1] == '"') {
			out[w++] = s[++i];
		} else if (s[i + 1] == 'x') {
			unsigned v;
			if (sscanf(s + i + 2, "%2x", &v) != 1)
				return -1;
			out[w++] = (char)v;
			i += 3;
		} else {
			return -1;
		}
	}
	return w;
}

static void test_random_round_trip(void **state)
{
	(void)state;
	srand(7);
	char in[64], out[LOG_VALUE_MAX], back[LOG_VALUE_MAX], line[LOG_VALUE_MAX];
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)rand() % sizeof(in);
		for (size_t i = 0; i < len; i++)
			in[i] = (char)(round % 3 == 0 ? 0x20 + rand() % 0x60 : rand() % 256);
		size_t n = log_escape(out, sizeof(out), in, len);
		assert_int_equal(n, strlen(out));
		for (size_t i = 0; i < n; i++)
			assert_false((unsigned char)out[i] < 0x20 || out[i] == 0x7f);
		/* A bare value has no space, quote, backslash or '='. */
		if (out[0] != '"')
			assert_null(strpbrk(out, " \"\\="));
		long b = unescape(out, back);
		assert_int_equal(b, (long)len);
		assert_memory_equal(back, in, len);
		n = log_sanitize_line(line, sizeof(line), in, len);
		for (size_t i = 0; i < n; i++)
			assert_false((unsigned char)line[i] < 0x20 || line[i] == 0x7f);
		n = log_escape_field(line, sizeof(line), in, len);
		assert_null(memchr(line, ' ', n));
		for (size_t i = 0; i < n; i++)
			assert_false((unsigned char)line[i] < 0x20 || line[i] == 0x7f);
	}
}

static void test_sanitize_line_and_field(void **state)
{
	(void)state;
	char out[64];
	const char l[] = "user=\"a b\" x\\y\nforged=1\x1b[0m";
	log_sanitize_line(out, sizeof(out), l, sizeof(l) - 1);
	assert_string_equal(out, "user=\"a b\" x\\y\\x0aforged=1\\x1b[0m");
	log_sanitize_line(out, 8, "abcdefghij", 10);
	assert_string_equal(out, "abcd...");

	log_escape_field(out, sizeof(out), "/my file.txt", 12);
	assert_string_equal(out, "/my_file.txt");
	log_escape_field(out, sizeof(out), "a\\b\"c", 5);
	assert_string_equal(out, "a\\\\b\"c");
	log_escape_field(out, sizeof(out), "a\nb\rc\x1b", 6);
	assert_string_equal(out, "a\\x0ab\\x0dc\\x1b");
	log_escape_field(out, sizeof(out), "", 0);
	assert_string_equal(out, "-");
	log_escape_field(out, 8, "abcdefghij", 10);
	assert_string_equal(out, "abcd...");
}

/* ---- capturing stderr ---- */

struct capture {
	int saved;
	int rd;
};

static void capture_start(struct capture *c)
{
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(p[1], STDERR_FILENO) >= 0);
	close(p[1]);
	c->rd = p[0];
}

/* Restores stderr; returns what was logged (caller frees). */
static char *capture_end(struct capture *c)
{
	assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
	close(c->saved);
	size_t cap = 1 << 16, len = 0;
	char *text = malloc(cap + 1);
	assert_non_null(text);
	ssize_t n;
	while ((n = read(c->rd, text + len, cap - len)) > 0)
		len += (size_t)n;
	close(c->rd);
	text[len] = '\0';
	return text;
}

static unsigned count_lines(const char *text)
{
	unsigned n = 0;
	for (const char *p = text; (p = strchr(p, '\n')) != NULL; p++)
		n++;
	return n;
}

static void test_every_line_is_sanitised(void **state)
{
	(void)state;
	struct capture c;
	capture_start(&c);
	log_info("forgot to quote %s", "x\nferryd[1] master error: fake\x1b[2J\x07");
	char *text = capture_end(&c);
	assert_int_equal(count_lines(text), 1);
	assert_non_null(strstr(text, " info: forgot to quote x\\x0aferryd[1] master error: "
				     "fake\\x1b[2J\\x07\n"));
	for (const char *p = text; *p != '\0'; p++)
		assert_true(*p == '\n' || (unsigned char)*p >= 0x20);
	free(text);

	/* A line longer than the limit is cut, marked, and still one line. */
	char *big = malloc(10000);
	assert_non_null(big);
	memset(big, 'b', 9999);
	big[9999] = '\0';
	capture_start(&c);
	log_warn("big %s", big);
	text = capture_end(&c);
	assert_int_equal(count_lines(text), 1);
	assert_true(strlen(text) <= 4096);
	assert_non_null(strstr(text, "bbb...\n"));
	free(text);
	free(big);
}

static void test_transfer_lines(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	struct xfer_record r = {
		.client = "127.0.0.1", .user = "bob smith", .path = "/a b\nFri Nov 1 x\x1b[31m",
		.bytes = 5, .seconds = 0.5, .upload = false, .ascii = false, .complete = true,
	};
	struct capture c;
	capture_start(&c);
	log_transfer(p[1], &r);
	char *text = capture_end(&c);
	assert_int_equal(count_lines(text), 1);
	assert_non_null(strstr(text, "transfer client=127.0.0.1 user=\"bob smith\" download "
				     "path=\"/a b\\x0aFri Nov 1 x\\x1b[31m\" bytes=5 "));
	free(text);

	char xfer[1024];
	ssize_t n = read(p[0], xfer, sizeof(xfer) - 1);
	assert_true(n > 0);
	xfer[n] = '\0';
	close(p[0]);
	close(p[1]);
	assert_int_equal(count_lines(xfer), 1);
	/* Date (5 fields) then 13 more: the spaces in the name and user did not add any. */
	unsigned fields = 1;
	for (char *q = xfer; *q != '\n'; q++)
		fields += *q == ' ';
	assert_int_equal(fields, 5 + 13);
	assert_non_null(strstr(xfer, " 127.0.0.1 5 /a_b\\x0aFri_Nov_1_x\\x1b[31m b _ o r bob_smith "
				     "ftp 0 * c\n"));
}

/* ---- the rate limiter ---- */

static struct timespec at_ms(long ms)
{
	return (struct timespec){ .tv_sec = 1000 + ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
}

static bool allow_at(struct log_ratelimit *rl, long ms, unsigned *suppressed)
{
	struct timespec t = at_ms(ms);
	return log_ratelimit_allow(rl, &t, suppressed);
}

static void test_ratelimit_defaults(void **state)
{
	(void)state;
	struct log_ratelimit rl;
	memset(&rl, 0, sizeof(rl));
	unsigned sup = 99;
	for (int i = 0; i < LOG_RATELIMIT_BURST; i++) {
		assert_true(allow_at(&rl, 0, &sup));
		assert_int_equal(sup, 0);
	}
	for (int i = 0; i < 5; i++) {
		assert_false(allow_at(&rl, 10 * i, &sup));
		assert_int_equal(sup, 0);
	}
	assert_false(allow_at(&rl, 999, NULL));
	/* One interval later: one line, carrying the six that were dropped. */
	assert_true(allow_at(&rl, 1000, &sup));
	assert_int_equal(sup, 6);
	assert_false(allow_at(&rl, 1001, &sup));
	assert_false(allow_at(&rl, 1999, &sup));
	assert_true(allow_at(&rl, 2000, &sup));
	assert_int_equal(sup, 2);
	/* Half an interval is not lost: 2000 + 1500 gives one token, 1000 later another. */
	assert_true(allow_at(&rl, 3500, &sup));
	assert_int_equal(sup, 0);
	assert_false(allow_at(&rl, 3900, &sup));
	assert_true(allow_at(&rl, 4000, &sup));
	assert_int_equal(sup, 1);
	/* A long quiet time refills the burst, not more. */
	for (int i = 0; i < LOG_RATELIMIT_BURST; i++)
		assert_true(allow_at(&rl, 100000, &sup));
	assert_false(allow_at(&rl, 100000, &sup));
}

static void test_ratelimit_flood(void **state)
{
	(void)state;
	/* The incident: 5,000 events a second for 100 s. */
	struct log_ratelimit rl = LOG_RATELIMIT_INIT(0, 0);
	unsigned lines = 0, reported = 0, sup;
	for (long i = 0; i < 500000; i++) {
		if (allow_at(&rl, i / 5, &sup)) {
			lines++;
			reported += sup;
		}
	}
	assert_int_equal(lines, LOG_RATELIMIT_BURST + 99);
	/* Every event is either a line or in a count, but those still waiting. */
	assert_int_equal(lines + reported + rl.suppressed, 500000);
}

static void test_ratelimit_settings_and_clock(void **state)
{
	(void)state;
	struct log_ratelimit rl = LOG_RATELIMIT_INIT(2, 250);
	unsigned sup;
	assert_true(allow_at(&rl, 0, &sup));
	assert_true(allow_at(&rl, 0, &sup));
	assert_false(allow_at(&rl, 249, &sup));
	assert_true(allow_at(&rl, 250, &sup));
	assert_int_equal(sup, 1);
	/* A clock that goes back counts as no time: nothing refills, nothing breaks. */
	assert_false(allow_at(&rl, -5000, &sup));
	assert_false(allow_at(&rl, 300, &sup));
	assert_true(allow_at(&rl, 500, &sup));
	assert_int_equal(sup, 2);
	/* The real clock (NULL) works too. */
	struct log_ratelimit real = LOG_RATELIMIT_INIT(1, 60000);
	assert_true(log_ratelimit_allow(&real, NULL, &sup));
	assert_false(log_ratelimit_allow(&real, NULL, &sup));
	/* A huge burst does not overflow. */
	struct log_ratelimit huge = LOG_RATELIMIT_INIT(UINT32_MAX, 1);
	assert_true(allow_at(&huge, 0, &sup));
	assert_true(allow_at(&huge, 1000000000L, &sup));
	assert_int_equal(huge.tokens, UINT32_MAX - 1);
}

static void test_ratelimit_flush(void **state)
{
	(void)state;
	struct log_ratelimit rl = LOG_RATELIMIT_INIT(1, 1000);
	struct timespec t;
	struct capture c;
	capture_start(&c);
	t = at_ms(0);
	assert_int_equal(log_ratelimit_flush(&rl, &t, "nothing yet"), 0);
	assert_true(allow_at(&rl, 0, NULL));
	assert_false(allow_at(&rl, 100, NULL));
	assert_false(allow_at(&rl, 600, NULL));
	t = at_ms(1500);
	assert_int_equal(log_ratelimit_flush(&rl, &t, "evicted connections"), 0); /* still busy */
	t = at_ms(1600);
	assert_int_equal(log_ratelimit_flush(&rl, &t, "evicted connections"), 2);
	t = at_ms(5000);
	assert_int_equal(log_ratelimit_flush(&rl, &t, "evicted connections"), 0);
	char *text = capture_end(&c);
	assert_int_equal(count_lines(text), 1);
	assert_non_null(strstr(text, " warning: evicted connections: 2 similar messages "
				     "suppressed\n"));
	free(text);
	/* What was flushed is not counted again on the next line. */
	unsigned sup = 99;
	assert_true(allow_at(&rl, 5000, &sup));
	assert_int_equal(sup, 0);
}

static void test_warn_limited(void **state)
{
	(void)state;
	/* The real clock: an interval long enough for a loaded machine, a sleep just past it. */
	struct log_ratelimit rl = LOG_RATELIMIT_INIT(2, 400);
	struct capture c;
	capture_start(&c);
	for (int i = 0; i < 7; i++)
		log_warn_limited(&rl, "refused %d", i);
	log_info_limited(&rl, "dropped");
	struct timespec pause = { 0, 450 * 1000000L };
	while (nanosleep(&pause, &pause) < 0)
		;
	log_warn_limited(&rl, "refused %s", "again");
	char *text = capture_end(&c);
	assert_int_equal(count_lines(text), 3);
	assert_non_null(strstr(text, " warning: refused 0\n"));
	assert_non_null(strstr(text, " warning: refused 1\n"));
	assert_null(strstr(text, "refused 2"));
	assert_null(strstr(text, "dropped"));
	assert_non_null(strstr(text, " warning: refused again (6 similar messages suppressed)\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bare_values),
		cmocka_unit_test(test_quoted_values),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_random_round_trip),
		cmocka_unit_test(test_sanitize_line_and_field),
		cmocka_unit_test(test_every_line_is_sanitised),
		cmocka_unit_test(test_transfer_lines),
		cmocka_unit_test(test_ratelimit_defaults),
		cmocka_unit_test(test_ratelimit_flood),
		cmocka_unit_test(test_ratelimit_settings_and_clock),
		cmocka_unit_test(test_ratelimit_flush),
		cmocka_unit_test(test_warn_limited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

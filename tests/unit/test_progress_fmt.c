/* test_progress_fmt.c: the progress bar's text (src/client/progress_fmt.c) from made-up numbers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "client/progress_fmt.h"

#define KIB UINT64_C(1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

static const char *bytes(uint64_t n)
{
	static char b[PFMT_BYTES_MAX];
	pfmt_bytes(b, sizeof(b), n);
	return b;
}

static void test_bytes(void **state)
{
	(void)state;
	assert_string_equal(bytes(0), "0 B");
	assert_string_equal(bytes(1023), "1023 B");
	assert_string_equal(bytes(1024), "1.0 KiB");
	assert_string_equal(bytes(1536), "1.5 KiB");
	assert_string_equal(bytes(1023 * KIB), "1023.0 KiB");
	assert_string_equal(bytes(1023 * KIB + 1000), "1.0 MiB");  /* not "1024.0 KiB" */
	assert_string_equal(bytes(MIB - 1), "1.0 MiB");
	assert_string_equal(bytes(MIB - 52), "1023.9 KiB");
	assert_string_equal(bytes(12 * MIB + 300 * KIB), "12.3 MiB");
	assert_string_equal(bytes(4 * GIB), "4.0 GiB");
	assert_string_equal(bytes(5 * GIB + GIB / 2), "5.5 GiB");
	assert_string_equal(bytes(1024 * GIB), "1.0 TiB");
	assert_string_equal(bytes(UINT64_MAX), "16.0 EiB");
	/* Never past the buffer. */
	char small[5];
	pfmt_bytes(small, sizeof(small), 12 * MIB);
	assert_string_equal(small, "12.0");
}

static void test_rate_text(void **state)
{
	(void)state;
	char b[PFMT_BYTES_MAX + 2];
	pfmt_rate(b, sizeof(b), 4.1 * (double)MIB);
	assert_string_equal(b, "4.1 MiB/s");
	pfmt_rate(b, sizeof(b), 0);
	assert_string_equal(b, "0 B/s");
	pfmt_rate(b, sizeof(b), -1);
	assert_string_equal(b, "-- B/s");
	pfmt_rate(b, sizeof(b), 1e30);
	assert_string_equal(b, "16.0 EiB/s");
}

static const char *clock_of(double s, bool pad)
{
	static char b[PFMT_CLOCK_MAX];
	pfmt_clock(b, sizeof(b), s, pad);
	return b;
}

static void test_clock(void **state)
{
	(void)state;
	assert_string_equal(clock_of(0, true), "00:00");
	assert_string_equal(clock_of(3.4, true), "00:03");
	assert_string_equal(clock_of(3.6, false), "0:04");
	assert_string_equal(clock_of(65, true), "01:05");
	assert_string_equal(clock_of(65, false), "1:05");
	assert_string_equal(clock_of(3599.4, true), "59:59");
	assert_string_equal(clock_of(3600, true), "1:00:00");
	assert_string_equal(clock_of(3 * 3600 + 62, false), "3:01:02");
	assert_string_equal(clock_of(-1, true), "--:--");
	assert_string_equal(clock_of(1e12, true), "--:--");
	assert_string_equal(clock_of(0.0 / 0.0, true), "--:--");
}

static void test_eta(void **state)
{
	(void)state;
	assert_true(pfmt_eta(0, 0, 100) < 0);          /* size unknown */
	assert_true(pfmt_eta(0, 1000, -1) < 0);        /* rate unknown */
	assert_true(pfmt_eta(0, 1000, 0) < 0);         /* stalled */
	assert_true(pfmt_eta(1000, 1000, 10) == 0);
	assert_true(pfmt_eta(2000, 1000, 10) == 0);    /* the file grew */
	assert_true(pfmt_eta(250, 1000, 50) == 15);
}

static const char *name_of(const char *n, unsigned cols, unsigned *used)
{
	static char b[PFMT_LINE_MAX];
	*used = pfmt_name(b, sizeof(b), n, cols);
	return b;
}

static void test_name(void **state)
{
	(void)state;
	unsigned used;
	assert_string_equal(name_of("file.bin", 20, &used), "file.bin");
	assert_int_equal(used, 8);
	assert_string_equal(name_of("file.bin", 8, &used), "file.bin");
	/* Start and end kept around the ellipsis, exactly the columns asked for. */
	assert_string_equal(name_of("report-2025-final.tar.gz", 15, &used), "report...tar.gz");
	assert_int_equal(used, 15);
	assert_string_equal(name_of("abcdefghij", 9, &used), "abc...hij");
	assert_string_equal(name_of("abcdefghij", 3, &used), "abc");
	assert_string_equal(name_of("abcdefghij", 0, &used), "");
	assert_int_equal(used, 0);
	/* No escape sequence reaches the terminal, nor a C1 CSI, nor a bidi override. */
	assert_string_equal(name_of("a\x1b[2Jb\r\n\x7f", 40, &used), "a?[2Jb???");
	assert_string_equal(name_of("x\xc2\x9b" "31m", 40, &used), "x?31m");
	assert_string_equal(name_of("\xe2\x80\xae" "evil", 40, &used), "?evil");
	/* Not UTF-8: one '?' a stray byte; an overlong form or a surrogate is refused too. */
	assert_string_equal(name_of("a\xff\xc3(b", 40, &used), "a?" "?(b");
	assert_string_equal(name_of("\xc0\xaf\xed\xa0\x80", 40, &used), "???");
	assert_string_equal(name_of("a\xe2\x82", 40, &used), "a??");
	/* UTF-8 is kept whole: é is one column, 日 two. */
	assert_string_equal(name_of("caf\xc3\xa9", 10, &used), "caf\xc3\xa9");
	assert_int_equal(used, 4);
	assert_int_equal(pfmt_name_cols("\xe6\x97\xa5\xe6\x9c\xac"), 4);
	name_of("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe6\x97\xa5\xe6\x9c\xac", 7, &used);
	assert_true(used <= 7);
	/* A cut never splits a character. */
	const char *s = name_of("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 5, &used);
	assert_string_equal(s, "\xc3\xa9...\xc3\xa9");
}

static void test_bar(void **state)
{
	(void)state;
	char b[64];
	pfmt_bar(b, sizeof(b), 10, 0);
	assert_string_equal(b, "[          ]");
	pfmt_bar(b, sizeof(b), 10, 0.45);
	assert_string_equal(b, "[====>     ]");
	pfmt_bar(b, sizeof(b), 10, 1);
	assert_string_equal(b, "[==========]");
	pfmt_bar(b, sizeof(b), 10, 7);
	assert_string_equal(b, "[==========]");
	pfmt_bar(b, sizeof(b), 4, -3);
	assert_string_equal(b, "[    ]");
}

static unsigned line(char *out, const struct pfmt_view *v, unsigned width)
{
	unsigned cols = pfmt_line(out, PFMT_LINE_MAX, v, width);
	assert_null(strchr(out, '\r'));
	assert_null(strchr(out, '\n'));
	if (width > 0)
		assert_true(cols < width);
	return cols;
}

static void test_line_running(void **state)
{
	(void)state;
	char out[PFMT_LINE_MAX];
	struct pfmt_view v = { .name = "data.bin", .done = 5 * MIB + 600 * KIB,
			       .total = 12 * MIB + 300 * KIB, .rate = 4.1 * (double)MIB,
			       .state = PFMT_RUNNING };
	unsigned cols = line(out, &v, 80);
	assert_int_equal(cols, strlen(out));
	assert_non_null(strstr(out, "data.bin  ["));
	assert_non_null(strstr(out, "]   45%  5.6 MiB / 12.3 MiB  4.1 MiB/s  ETA 00:02"));
	/* The bar stays put while the numbers change. */
	const char *bar_end = strchr(out, ']');
	size_t at = (size_t)(bar_end - out);
	v.done = 12 * MIB;
	v.rate = 900;
	line(out, &v, 80);
	assert_int_equal((size_t)(strchr(out, ']') - out), at);
	assert_non_null(strstr(out, "97%  12.0 MiB / 12.3 MiB  900 B/s  ETA 05:41"));

	/* The rate not known yet. */
	v.rate = -1;
	line(out, &v, 80);
	assert_non_null(strstr(out, "-- B/s  ETA --:--"));

	/* Size unknown: no bar, no percent, no ETA. */
	struct pfmt_view u = { .name = "pipe", .done = 2048, .rate = 1024, .state = PFMT_RUNNING };
	line(out, &u, 80);
	assert_string_equal(out, "pipe  2.0 KiB  1.0 KiB/s  ETA --:--");
}

static void test_line_final(void **state)
{
	(void)state;
	char out[PFMT_LINE_MAX];
	struct pfmt_view v = { .name = "name", .done = 12 * MIB + 300 * KIB,
			       .total = 12 * MIB + 300 * KIB, .rate = 4.1 * (double)MIB,
			       .elapsed = 3, .state = PFMT_DONE };
	line(out, &v, 80);
	assert_string_equal(out, "name  100%  12.3 MiB  4.1 MiB/s  in 0:03");
	v.rate = -1;
	line(out, &v, 80);
	assert_string_equal(out, "name  100%  12.3 MiB  in 0:03");
	v.total = 0;
	line(out, &v, 80);
	assert_string_equal(out, "name  100%  12.3 MiB  in 0:03");

	struct pfmt_view f = { .name = "name", .done = 5 * MIB + 600 * KIB,
			       .total = 12 * MIB + 300 * KIB, .state = PFMT_FAILED };
	line(out, &f, 80);
	assert_string_equal(out, "name  45%  5.6 MiB of 12.3 MiB  failed");
	f.total = 0;
	line(out, &f, 80);
	assert_string_equal(out, "name  5.6 MiB  failed");
}

static void test_line_width(void **state)
{
	(void)state;
	char out[PFMT_LINE_MAX];
	const char *long_name = "a-very-long-file-name-that-does-not-fit-anywhere-at-all.tar.gz";
	struct pfmt_view v = { .name = long_name, .done = MIB, .total = 4 * MIB,
			       .rate = (double)MIB, .state = PFMT_RUNNING };

	/* Shortened with an ellipsis, the bar kept, never the last column. */
	unsigned cols = line(out, &v, 80);
	assert_true(cols <= 79);
	assert_non_null(strstr(out, "..."));
	assert_non_null(strstr(out, "ar.gz  ["));
	assert_non_null(strstr(out, "ETA 00:03"));

	/* Narrower: the bar goes before the name shrinks below its minimum. */
	cols = line(out, &v, 60);
	assert_null(strchr(out, '['));
	assert_non_null(strstr(out, "..."));
	assert_non_null(strstr(out, "ETA 00:03"));

	/* Without a bar too, the name stays put as the numbers grow. */
	char first[PFMT_LINE_MAX];
	v.rate = 900;
	line(first, &v, 60);
	v.done = 999 * KIB;
	v.rate = 999.9 * (double)KIB;
	line(out, &v, 60);
	assert_memory_equal(first, out, (size_t)(strstr(first, "  ") - first + 2));
	v.done = MIB;
	v.rate = (double)MIB;

	/* Far too narrow: cut, still within the width. */
	for (unsigned w = 1; w < 90; w++) {
		cols = line(out, &v, w);
		assert_int_equal(cols, strlen(out));
	}
	/* Width unknown (0) is 80; absurd widths are capped. */
	assert_int_equal(line(out, &v, 0), line(out, &v, 80));
	cols = line(out, &v, 100000);
	assert_true(cols < PFMT_WIDTH_MAX);

	/* A wide terminal gives the bar its widest. */
	struct pfmt_view s = v;
	s.name = "x";
	line(out, &s, 200);
	const char *b = strchr(out, '[');
	assert_non_null(b);
	assert_int_equal(strchr(out, ']') - b - 1, 40);
	/* No name at all. */
	s.name = NULL;
	line(out, &s, 80);
	assert_int_equal(out[0], '[');
	/* An escape in the name is not drawn. */
	s.name = "\x1b]0;title\x07";
	line(out, &s, 80);
	assert_null(strchr(out, '\x1b'));
	assert_null(strchr(out, '\x07'));
}

static void test_rate_smoothing(void **state)
{
	(void)state;
	struct pfmt_rate r;
	pfmt_rate_init(&r, 5);
	assert_true(pfmt_rate_get(&r) < 0);
	pfmt_rate_add(&r, 0, 0);
	assert_true(pfmt_rate_get(&r) < 0);
	/* 1 MB/s for 10 s, in updates every 0.1 s. */
	double t = 0;
	uint64_t b = 0;
	for (int i = 0; i < 100; i++) {
		t += 0.1;
		b += 100000;
		pfmt_rate_add(&r, t, b);
	}
	assert_float_equal(pfmt_rate_get(&r), 1e6, 1e3);
	/* Then 4 MB/s: after the window, the rate is that, not the average since the start. */
	for (int i = 0; i < 60; i++) {
		t += 0.1;
		b += 400000;
		pfmt_rate_add(&r, t, b);
	}
	assert_float_equal(pfmt_rate_get(&r), 4e6, 4e4);
	/* A stall of 10 s, then one update: the average over the gap. */
	t += 10;
	b += 1000000;
	pfmt_rate_add(&r, t, b);
	assert_true(pfmt_rate_get(&r) < 5e5);
	/* The transfer starts again (fewer bytes, earlier time): a fresh average. */
	pfmt_rate_add(&r, 0, 0);
	assert_true(pfmt_rate_get(&r) < 0);
	pfmt_rate_add(&r, 0.5, 500);
	assert_float_equal(pfmt_rate_get(&r), 1000, 1e-6);
	/* Many updates close together never overflow the ring. */
	for (int i = 0; i < 10000; i++)
		pfmt_rate_add(&r, 0.5 + i * 0.001, 500 + (uint64_t)i * 10);
	assert_float_equal(pfmt_rate_get(&r), 10000, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_rate_text),
		cmocka_unit_test(test_clock),
		cmocka_unit_test(test_eta),
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_bar),
		cmocka_unit_test(test_line_running),
		cmocka_unit_test(test_line_final),
		cmocka_unit_test(test_line_width),
		cmocka_unit_test(test_rate_smoothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_buf.c: bounded buffers, slices and str_copy. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/buf.h"
#include "common/err.h"

static void test_init_allocates_nothing(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 100);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	struct slice s = buf_slice(&b);
	assert_non_null(s.ptr);
	assert_string_equal(s.ptr, "");
	assert_int_equal(s.len, 0);
	buf_reset(&b); /* harmless before any allocation */
	buf_free(&b);
	buf_free(&b); /* and twice */
}

static void test_append_empty_makes_string(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, NULL, 0), FERR_OK);
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	buf_free(&b);
}

static void test_append_and_nul(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1000);
	assert_int_equal(buf_append_str(&b, "hello"), FERR_OK);
	assert_int_equal(buf_append_char(&b, ' '), FERR_OK);
	assert_int_equal(buf_append(&b, "world!!!", 5), FERR_OK);
	assert_string_equal(b.data, "hello world");
	assert_int_equal(b.len, 11);
	assert_true(b.cap > b.len);
	buf_free(&b);
}

static void test_max_is_exact(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 5);
	assert_int_equal(buf_append_str(&b, "abcde"), FERR_OK);
	assert_int_equal(b.len, 5);
	assert_string_equal(b.data, "abcde");
	assert_true(b.cap <= 6);
	assert_int_equal(buf_append_char(&b, 'f'), FERR_TOOBIG);
	assert_string_equal(b.data, "abcde");
	assert_int_equal(b.len, 5);
	buf_free(&b);
}

static void test_toobig_appends_nothing(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 8);
	assert_int_equal(buf_append_str(&b, "abc"), FERR_OK);
	assert_int_equal(buf_append_str(&b, "123456"), FERR_TOOBIG);
	assert_string_equal(b.data, "abc");
	/* A huge length must not wrap the bound check. */
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), FERR_TOOBIG);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX - 2), FERR_TOOBIG);
	assert_string_equal(b.data, "abc");
	buf_free(&b);
}

static void test_growth_never_beyond_max(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1000);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_append_char(&b, 'x'), FERR_OK);
	assert_int_equal(b.len, 1000);
	assert_true(b.cap <= 1001);
	assert_int_equal(buf_append_char(&b, 'x'), FERR_TOOBIG);
	assert_int_equal(strlen(b.data), 1000);
	buf_free(&b);
}

static void test_zero_max(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(buf_append_char(&b, 'a'), FERR_TOOBIG);
	assert_int_equal(buf_append(&b, "", 0), FERR_OK);
	assert_string_equal(b.data, "");
	buf_free(&b);
}

static void test_printf(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 20);
	assert_int_equal(buf_printf(&b, "%d-%s", 42, "abc"), FERR_OK);
	assert_string_equal(b.data, "42-abc");
	assert_int_equal(buf_printf(&b, "%s", "0123456789abcdef"), FERR_TOOBIG);
	assert_string_equal(b.data, "42-abc");
	assert_int_equal(b.len, 6);
	assert_int_equal(buf_printf(&b, "%s", "0123456789abcd"), FERR_OK);
	assert_int_equal(b.len, 20);
	assert_string_equal(b.data, "42-abc0123456789abcd");
	buf_free(&b);
}

static void test_printf_grows(void **state)
{
	(void)state;
	struct buf b;
	char big[3000];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_init(&b, 10000);
	assert_int_equal(buf_printf(&b, "<%s>", big), FERR_OK);
	assert_int_equal(b.len, 3001);
	assert_int_equal(b.data[0], '<');
	assert_int_equal(b.data[3000], '>');
	assert_int_equal(b.data[3001], '\0');
	buf_free(&b);
}

static void test_consume_and_reset(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 100);
	assert_int_equal(buf_append_str(&b, "abcdef"), FERR_OK);
	buf_consume(&b, 0);
	assert_string_equal(b.data, "abcdef");
	buf_consume(&b, 2);
	assert_string_equal(b.data, "cdef");
	assert_int_equal(b.len, 4);
	buf_consume(&b, 4);
	assert_string_equal(b.data, "");
	assert_int_equal(buf_append_str(&b, "xy"), FERR_OK);
	assert_string_equal(b.data, "xy");
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	buf_free(&b);
}

static void test_slices(void **state)
{
	(void)state;
	struct slice a = slice_cstr("RETR");
	assert_int_equal(a.len, 4);
	assert_true(slice_eq(a, SLICE_LIT("RETR")));
	assert_false(slice_eq(a, SLICE_LIT("RETRX")));
	assert_false(slice_eq(a, SLICE_LIT("retr")));
	assert_true(slice_eq_nocase(a, SLICE_LIT("retr")));
	assert_true(slice_eq_nocase(a, SLICE_LIT("ReTr")));
	assert_false(slice_eq_nocase(a, SLICE_LIT("ret")));
	/* Only ASCII letters fold: '@' and '`' are not 'A'-1 / 'a'-1 cases of anything. */
	assert_false(slice_eq_nocase(SLICE_LIT("@"), SLICE_LIT("`")));
	assert_false(slice_eq_nocase(SLICE_LIT("["), SLICE_LIT("{")));
	struct slice empty = { NULL, 0 };
	assert_true(slice_eq(empty, SLICE_LIT("")));
	assert_true(slice_eq_nocase(empty, SLICE_LIT("")));
	assert_int_equal(slice_cstr(NULL).len, 0);

	struct buf b;
	buf_init(&b, 10);
	assert_int_equal(buf_append_str(&b, "xyz"), FERR_OK);
	assert_true(slice_eq(buf_slice(&b), SLICE_LIT("xyz")));
	buf_free(&b);
}

static void test_str_copy(void **state)
{
	(void)state;
	char d[5];
	assert_int_equal(str_copy(d, sizeof(d), "abcd"), FERR_OK);
	assert_string_equal(d, "abcd");
	assert_int_equal(str_copy(d, sizeof(d), "abcde"), FERR_TOOBIG);
	assert_string_equal(d, "");
	assert_int_equal(str_copy(d, sizeof(d), ""), FERR_OK);
	assert_string_equal(d, "");
	assert_int_equal(str_copy(d, 0, "a"), FERR_TOOBIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_allocates_nothing),
		cmocka_unit_test(test_append_empty_makes_string),
		cmocka_unit_test(test_append_and_nul),
		cmocka_unit_test(test_max_is_exact),
		cmocka_unit_test(test_toobig_appends_nothing),
		cmocka_unit_test(test_growth_never_beyond_max),
		cmocka_unit_test(test_zero_max),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_printf_grows),
		cmocka_unit_test(test_consume_and_reset),
		cmocka_unit_test(test_slices),
		cmocka_unit_test(test_str_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_num.c: checked decimal parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/num.h"

static int parse(const char *s, uint64_t max, uint64_t *v)
{
	*v = 12345; /* so a failure that writes *out is visible */
	return num_parse_u64_cstr(s, max, v);
}

static void test_valid(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(parse("0", 10, &v), FERR_OK);
	assert_int_equal(v, 0);
	assert_int_equal(parse("10", 10, &v), FERR_OK);
	assert_int_equal(v, 10);
	assert_int_equal(parse("000000000000000000042", UINT64_MAX, &v), FERR_RANGE);
	assert_int_equal(parse("00000000000000000042", UINT64_MAX, &v), FERR_OK);
	assert_int_equal(v, 42);
	assert_int_equal(parse("65535", 65535, &v), FERR_OK);
	assert_int_equal(v, 65535);
}

static void test_uint64_edge(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(parse("18446744073709551615", UINT64_MAX, &v), FERR_OK);
	assert_true(v == UINT64_MAX);
	assert_int_equal(parse("18446744073709551616", UINT64_MAX, &v), FERR_RANGE);
	assert_int_equal(v, 12345);
	assert_int_equal(parse("18446744073709551620", UINT64_MAX, &v), FERR_RANGE);
	assert_int_equal(parse("99999999999999999999", UINT64_MAX, &v), FERR_RANGE);
	assert_int_equal(parse("184467440737095516150", UINT64_MAX, &v), FERR_RANGE);
	assert_int_equal(parse("9223372036854775808", INT64_MAX, &v), FERR_RANGE);
	assert_int_equal(parse("9223372036854775807", INT64_MAX, &v), FERR_OK);
	assert_true(v == (uint64_t)INT64_MAX);
}

static void test_range(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(parse("256", 255, &v), FERR_RANGE);
	assert_int_equal(v, 12345);
	assert_int_equal(parse("1", 0, &v), FERR_RANGE);
	assert_int_equal(parse("65536", 65535, &v), FERR_RANGE);
}

static void test_invalid(void **state)
{
	(void)state;
	uint64_t v;
	const char *bad[] = { "", "-1", "+1", " 1", "1 ", "1a", "0x10", "1.5", "١", "1\n",
			      "99999999999999999999999x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], UINT64_MAX, &v), FERR_INVALID);
		assert_int_equal(v, 12345);
	}
	assert_int_equal(num_parse_u64_cstr(NULL, 10, &v), FERR_INVALID);
}

static void test_slice_not_terminated(void **state)
{
	(void)state;
	uint64_t v;
	/* A slice stops at its length even when digits follow in memory. */
	const char *s = "123456";
	assert_int_equal(num_parse_u64((struct slice){ s, 3 }, 1000, &v), FERR_OK);
	assert_int_equal(v, 123);
	assert_int_equal(num_parse_u64((struct slice){ s, 0 }, 1000, &v), FERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_uint64_edge),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_slice_not_terminated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

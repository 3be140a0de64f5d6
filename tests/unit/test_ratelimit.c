/*
 * test_ratelimit.c: the token bucket (src/server/ratelimit.c) on a clock the test moves:
 * what it allows, how an overdraft is paid back, how long a paused transfer waits, and
 * that the average over a long run is the rate.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "server/ratelimit.h"

#define MS 1000000ull
#define SEC 1000000000ull

static void test_unlimited(void **state)
{
	(void)state;
	struct rate_bucket b;
	rate_init(&b, 0, 0);
	assert_true(rate_allowed(&b, 0) == UINT64_MAX);
	rate_charge(&b, 1ull << 40);
	assert_true(rate_allowed(&b, 1) == UINT64_MAX);
	assert_int_equal(rate_wait_ns(&b, 1), 0);
	assert_true(rate_allowed(NULL, 5) == UINT64_MAX);
}

static void test_burst_then_rate(void **state)
{
	(void)state;
	struct rate_bucket b;
	uint64_t rate = 2u << 20; /* 2 MiB/s: a burst of a tenth of a second */
	rate_init(&b, rate, 0);
	assert_int_equal(rate_allowed(&b, 0), rate / 10);
	rate_charge(&b, rate / 10);
	assert_int_equal(rate_allowed(&b, 0), 0);
	/* Half a burst later, a twentieth of a second has passed. */
	uint64_t w = rate_wait_ns(&b, 0);
	assert_true(w > 49 * MS && w <= 50 * MS);
	/* Not a byte before half a burst is due, not a moment after. */
	assert_int_equal(rate_allowed(&b, w - MS), 0);
	assert_true(rate_allowed(&b, w) >= rate / 20);
	/* It never holds more than its burst, however long it waits. */
	assert_int_equal(rate_allowed(&b, 10 * SEC), rate / 10);
}

static void test_overdraft_is_paid_back(void **state)
{
	(void)state;
	struct rate_bucket b;
	rate_init(&b, 1u << 20, 0); /* 1 MiB/s, burst 104857 */
	rate_charge(&b, 4u << 20); /* a 4 MiB piece went at once */
	assert_int_equal(rate_allowed(&b, 0), 0);
	uint64_t w = rate_wait_ns(&b, 0);
	/* About four seconds (the debt, less the burst it started with, plus half a burst). */
	assert_true(w > 3800 * MS && w < 4000 * MS);
	/* Nothing until the debt is paid back, then half a burst when the wait ends. */
	uint64_t debt_ns = ((4u << 20) - (1u << 20) / 10) * SEC / (1u << 20);
	assert_int_equal(rate_allowed(&b, debt_ns - MS), 0);
	uint64_t a = rate_allowed(&b, w);
	assert_true(a >= (1u << 20) / 10 / 2 && a <= (1u << 20) / 20 + 64);
}

static void test_minimum_burst(void **state)
{
	(void)state;
	struct rate_bucket b;
	rate_init(&b, 1000, 0);
	assert_int_equal(rate_allowed(&b, 0), 16 * 1024);
}

static void test_average_is_the_rate(void **state)
{
	(void)state;
	/* A sender that takes all it is allowed, in pieces of at most 64 KiB, for 10 s. */
	struct rate_bucket b;
	uint64_t rate = 2u << 20, now = 0, moved = 0;
	rate_init(&b, rate, 0);
	while (now < 10 * SEC) {
		uint64_t a = rate_allowed(&b, now);
		if (a == 0) {
			now += rate_wait_ns(&b, now);
			continue;
		}
		uint64_t n = a < 65536 ? a : 65536;
		rate_charge(&b, n);
		moved += n;
		now += 10 * 1000; /* 10 us a step */
	}
	/* Ten seconds of the rate, plus the first burst. */
	double expect = 10.0 * (double)rate + (double)rate / 10;
	print_message("moved %llu expected %.0f\n", (unsigned long long)moved, expect);
	assert_true((double)moved > expect * 0.98 && (double)moved < expect * 1.02);
}

static void test_new_rate_keeps_tokens(void **state)
{
	(void)state;
	struct rate_bucket b;
	rate_init(&b, 10u << 20, 0);
	assert_int_equal(rate_allowed(&b, 0), (10u << 20) / 10);
	/* A smaller share: what it holds is capped by the new burst. */
	rate_set(&b, 1u << 20, 0);
	assert_int_equal(rate_allowed(&b, 0), (1u << 20) / 10);
	rate_charge(&b, (1u << 20) / 10);
	rate_set(&b, 4u << 20, 0);
	assert_int_equal(rate_allowed(&b, 0), 0);
	assert_int_equal(rate_allowed(&b, 100 * MS), (4u << 20) / 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unlimited),
		cmocka_unit_test(test_burst_then_rate),
		cmocka_unit_test(test_overdraft_is_paid_back),
		cmocka_unit_test(test_minimum_burst),
		cmocka_unit_test(test_average_is_the_rate),
		cmocka_unit_test(test_new_rate_keeps_tokens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

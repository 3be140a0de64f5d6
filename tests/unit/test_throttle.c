/* test_throttle.c: the master's table of failed logins per address, driven with made-up times. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "server/throttle.h"

static struct sockaddr_storage v4(const char *s)
{
	struct sockaddr_storage a;
	memset(&a, 0, sizeof(a));
	struct sockaddr_in *sin = (struct sockaddr_in *)&a;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(1234);
	assert_int_equal(inet_pton(AF_INET, s, &sin->sin_addr), 1);
	return a;
}

static struct sockaddr_storage v6(const char *s)
{
	struct sockaddr_storage a;
	memset(&a, 0, sizeof(a));
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a;
	sin6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, s, &sin6->sin6_addr), 1);
	return a;
}

/* What the ended callback saw. */
struct ends {
	unsigned n;
	char last[64];
	unsigned last_failures;
	enum throttle_end last_how;
};

static void on_end(void *ctx, const struct sockaddr_storage *a, unsigned failures,
		   enum throttle_end how)
{
	struct ends *e = ctx;
	e->n++;
	const void *raw = a->ss_family == AF_INET
				  ? (const void *)&((const struct sockaddr_in *)a)->sin_addr
				  : (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr;
	assert_non_null(inet_ntop(a->ss_family, raw, e->last, sizeof(e->last)));
	e->last_failures = failures;
	e->last_how = how;
}

static const struct throttle_policy policy = { .ban_after = 5, .ban_time = 60, .base_delay_ms = 100 };

static void test_delay_doubles_up_to_the_cap(void **state)
{
	struct throttle *t = throttle_new(16, 1, NULL, NULL);
	assert_non_null(t);
	struct throttle_policy p = { .ban_after = 0, .ban_time = 60, .base_delay_ms = 100 };
	struct sockaddr_storage a = v4("192.0.2.1");
	const unsigned want[] = { 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000 };
	struct throttle_verdict v;
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		throttle_failure(t, &p, &a, 1000 + i, &v);
		assert_int_equal(v.failures, i + 1);
		assert_int_equal(v.delay_ms, want[i]);
		assert_false(v.banned); /* ban_after 0: never */
	}
	for (unsigned i = 0; i < 100; i++)
		throttle_failure(t, &p, &a, 2000 + i, &v);
	assert_int_equal(v.delay_ms, 30000);
	throttle_free(t);
}

static void test_delay_zero_and_long_base(void **state)
{
	struct throttle *t = throttle_new(16, 1, NULL, NULL);
	struct sockaddr_storage a = v4("192.0.2.1"), b = v4("192.0.2.2");
	struct throttle_verdict v;
	struct throttle_policy zero = { .ban_after = 0, .ban_time = 60, .base_delay_ms = 0 };
	for (unsigned i = 0; i < 5; i++) {
		throttle_failure(t, &zero, &a, 1, &v);
		assert_int_equal(v.delay_ms, 0);
	}
	/* A base longer than the 30 s cap is never shortened, nor grown. */
	struct throttle_policy lng = { .ban_after = 0, .ban_time = 60, .base_delay_ms = 45000 };
	throttle_failure(t, &lng, &b, 1, &v);
	assert_int_equal(v.delay_ms, 45000);
	throttle_failure(t, &lng, &b, 2, &v);
	assert_int_equal(v.delay_ms, 45000);
	throttle_free(t);
}

static void test_ban_after_n_failures(void **state)
{
	struct ends ends = { 0 };
	struct throttle *t = throttle_new(16, 7, on_end, &ends);
	struct sockaddr_storage a = v4("198.51.100.7"), other = v4("198.51.100.8");
	struct throttle_verdict v;
	for (unsigned i = 1; i < policy.ban_after; i++) {
		throttle_failure(t, &policy, &a, i * 1000, &v);
		assert_false(v.banned);
		assert_false(throttle_banned(t, &a, i * 1000, NULL));
	}
	assert_int_equal(throttle_failures(t, &policy, &a, 4000), 4);
	throttle_failure(t, &policy, &a, 5000, &v);
	assert_true(v.banned);
	assert_true(v.ban_started);
	assert_int_equal(v.failures, 5);
	assert_int_equal(v.ban_until, 5000 + 60000);
	uint64_t until = 0;
	assert_true(throttle_banned(t, &a, 5000, &until));
	assert_int_equal(until, 65000);
	assert_true(throttle_banned(t, &a, 64999, NULL));
	assert_false(throttle_banned(t, &a, 65000, NULL));
	assert_false(throttle_banned(t, &other, 5000, NULL));
	/* The port plays no part. */
	struct sockaddr_storage a2 = a;
	((struct sockaddr_in *)&a2)->sin_port = htons(9);
	assert_true(throttle_banned(t, &a2, 6000, NULL));

	/* A late report during the ban changes nothing. */
	throttle_failure(t, &policy, &a, 30000, &v);
	assert_true(v.banned);
	assert_false(v.ban_started);
	assert_int_equal(v.ban_until, 65000);
	assert_int_equal(v.failures, 5);

	/* The sweep ends the ban on time, and reports it. */
	assert_int_equal(throttle_expire(t, &policy, 64999), 65000);
	assert_int_equal(ends.n, 0);
	assert_int_equal(throttle_expire(t, &policy, 65000), UINT64_MAX);
	assert_int_equal(ends.n, 1);
	assert_string_equal(ends.last, "198.51.100.7");
	assert_int_equal(ends.last_failures, 5);
	assert_int_equal(ends.last_how, THROTTLE_BAN_OVER);
	assert_int_equal(throttle_size(t), 0);

	/* After the ban the address starts from nothing. */
	throttle_failure(t, &policy, &a, 70000, &v);
	assert_int_equal(v.failures, 1);
	assert_int_equal(v.delay_ms, 100);
	assert_false(v.banned);
	throttle_free(t);
}

static void test_ban_over_noticed_at_next_failure(void **state)
{
	struct ends ends = { 0 };
	struct throttle *t = throttle_new(16, 7, on_end, &ends);
	struct sockaddr_storage a = v4("198.51.100.7");
	struct throttle_verdict v;
	for (unsigned i = 0; i < policy.ban_after; i++)
		throttle_failure(t, &policy, &a, 1000, &v);
	assert_true(v.ban_started);
	/* No sweep ran; the next failure after the ban sees it ended. */
	throttle_failure(t, &policy, &a, 61000, &v);
	assert_int_equal(ends.n, 1);
	assert_int_equal(v.failures, 1);
	assert_false(v.banned);
	throttle_free(t);
}

static void test_failures_are_forgotten_after_a_quiet_window(void **state)
{
	struct throttle *t = throttle_new(16, 3, NULL, NULL);
	struct sockaddr_storage a = v4("203.0.113.1");
	struct throttle_verdict v;
	for (unsigned i = 0; i < 4; i++)
		throttle_failure(t, &policy, &a, 1000 + i, &v);
	assert_int_equal(v.failures, 4);
	/* Within the window the count goes on (and bans at the fifth)... */
	assert_int_equal(throttle_failures(t, &policy, &a, 1003 + 59999), 4);
	/* ... but a window without failures forgets them. */
	assert_int_equal(throttle_failures(t, &policy, &a, 1003 + 60000), 0);
	throttle_failure(t, &policy, &a, 1003 + 60000, &v);
	assert_int_equal(v.failures, 1);
	assert_int_equal(v.delay_ms, 100);
	assert_false(v.banned);
	/* The sweep drops forgotten entries without reporting a ban. */
	struct sockaddr_storage b = v4("203.0.113.2");
	throttle_failure(t, &policy, &b, 100000, &v);
	assert_int_equal(throttle_size(t), 2);
	assert_int_equal(throttle_expire(t, &policy, 1003 + 120000), 160000);
	assert_int_equal(throttle_size(t), 1);
	throttle_free(t);
}

static void test_ipv6_and_mapped(void **state)
{
	struct throttle *t = throttle_new(16, 3, NULL, NULL);
	struct sockaddr_storage mapped = v6("::ffff:192.0.2.9"), plain = v4("192.0.2.9");
	struct sockaddr_storage six = v6("2001:db8::9"), six2 = v6("2001:db8::a");
	struct throttle_verdict v;
	throttle_failure(t, &policy, &mapped, 1, &v);
	throttle_failure(t, &policy, &plain, 2, &v);
	assert_int_equal(v.failures, 2); /* one address */
	throttle_failure(t, &policy, &six, 3, &v);
	assert_int_equal(v.failures, 1);
	for (unsigned i = 0; i < 4; i++)
		throttle_failure(t, &policy, &six, 4, &v);
	assert_true(v.ban_started);
	assert_true(throttle_banned(t, &six, 5, NULL));
	assert_false(throttle_banned(t, &six2, 5, NULL));
	assert_false(throttle_banned(t, &plain, 5, NULL));
	/* Other families are not remembered, but still get the base delay. */
	struct sockaddr_storage unix_addr;
	memset(&unix_addr, 0, sizeof(unix_addr));
	unix_addr.ss_family = AF_UNIX;
	throttle_failure(t, &policy, &unix_addr, 6, &v);
	assert_int_equal(v.delay_ms, 100);
	assert_false(v.banned);
	assert_int_equal(throttle_size(t), 2);
	throttle_free(t);
}

static void test_full_table_evicts_the_oldest_unbanned(void **state)
{
	struct ends ends = { 0 };
	enum { CAP = 8 };
	struct throttle *t = throttle_new(CAP, 11, on_end, &ends);
	struct throttle_verdict v;
	struct sockaddr_storage banned = v4("10.0.0.1");
	for (unsigned i = 0; i < policy.ban_after; i++)
		throttle_failure(t, &policy, &banned, 1, &v);
	assert_true(v.ban_started);
	/* Thousands of other addresses, one failure each, at later times. */
	for (unsigned i = 0; i < 5000; i++) {
		char s[32];
		snprintf(s, sizeof(s), "10.1.%u.%u", i / 256, i % 256);
		struct sockaddr_storage a = v4(s);
		throttle_failure(t, &policy, &a, 2 + i, &v);
		assert_true(throttle_size(t) <= CAP);
	}
	assert_int_equal(throttle_size(t), CAP);
	/* The ban, although the oldest entry, survived; the most recent addresses are kept. */
	assert_true(throttle_banned(t, &banned, 5000, NULL));
	assert_int_equal(ends.n, 0);
	struct sockaddr_storage newest = v4("10.1.19.135"); /* i = 4999 */
	assert_int_equal(throttle_failures(t, &policy, &newest, 5002), 1);
	struct sockaddr_storage gone = v4("10.1.0.0");
	assert_int_equal(throttle_failures(t, &policy, &gone, 5002), 0);
	throttle_free(t);
}

static void test_full_table_of_bans_drops_the_oldest_ban(void **state)
{
	struct ends ends = { 0 };
	enum { CAP = 4 };
	struct throttle *t = throttle_new(CAP, 11, on_end, &ends);
	struct throttle_policy p = { .ban_after = 1, .ban_time = 60, .base_delay_ms = 0 };
	struct throttle_verdict v;
	for (unsigned i = 0; i < CAP + 1; i++) {
		char s[32];
		snprintf(s, sizeof(s), "10.2.0.%u", i);
		struct sockaddr_storage a = v4(s);
		throttle_failure(t, &p, &a, 10 + i, &v);
		assert_true(v.ban_started);
	}
	assert_int_equal(throttle_size(t), CAP);
	assert_int_equal(ends.n, 1);
	assert_string_equal(ends.last, "10.2.0.0");
	assert_int_equal(ends.last_how, THROTTLE_BAN_EVICTED);
	struct sockaddr_storage first = v4("10.2.0.0"), second = v4("10.2.0.1");
	assert_false(throttle_banned(t, &first, 20, NULL));
	assert_true(throttle_banned(t, &second, 20, NULL));
	throttle_free(t);
}

static void test_expire_order_and_next_time(void **state)
{
	struct throttle *t = throttle_new(16, 5, NULL, NULL);
	struct sockaddr_storage a = v4("192.0.2.1"), b = v4("192.0.2.2");
	struct throttle_verdict v;
	assert_int_equal(throttle_expire(t, &policy, 0), UINT64_MAX);
	throttle_failure(t, &policy, &a, 1000, &v);
	throttle_failure(t, &policy, &b, 2000, &v);
	assert_int_equal(throttle_expire(t, &policy, 1500), 61000);
	/* A new failure of a moves it behind b. */
	throttle_failure(t, &policy, &a, 3000, &v);
	assert_int_equal(throttle_expire(t, &policy, 3000), 62000);
	assert_int_equal(throttle_expire(t, &policy, 62000), 63000);
	assert_int_equal(throttle_size(t), 1);
	assert_int_equal(throttle_failures(t, &policy, &a, 62000), 2);
	throttle_free(t);
}

static void test_new_rejects_bad_sizes(void **state)
{
	assert_null(throttle_new(0, 0, NULL, NULL));
	struct throttle *t = throttle_new(1, 0, NULL, NULL);
	assert_non_null(t);
	struct sockaddr_storage a = v4("192.0.2.1"), b = v4("192.0.2.2");
	struct throttle_verdict v;
	throttle_failure(t, &policy, &a, 1, &v);
	throttle_failure(t, &policy, &b, 2, &v);
	assert_int_equal(throttle_size(t), 1);
	assert_int_equal(throttle_failures(t, &policy, &b, 3), 1);
	throttle_free(t);
	throttle_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delay_doubles_up_to_the_cap),
		cmocka_unit_test(test_delay_zero_and_long_base),
		cmocka_unit_test(test_ban_after_n_failures),
		cmocka_unit_test(test_ban_over_noticed_at_next_failure),
		cmocka_unit_test(test_failures_are_forgotten_after_a_quiet_window),
		cmocka_unit_test(test_ipv6_and_mapped),
		cmocka_unit_test(test_full_table_evicts_the_oldest_unbanned),
		cmocka_unit_test(test_full_table_of_bans_drops_the_oldest_ban),
		cmocka_unit_test(test_expire_order_and_next_time),
		cmocka_unit_test(test_new_rejects_bad_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

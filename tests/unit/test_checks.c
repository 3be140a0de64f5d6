/*
 * test_checks.c: the start-up checks of src/server/checks.c that depend on the descriptor
 * limit: how many sessions a worker holds, and when the limit is worth a warning given
 * the number of workers (fixed, or "workers = 0", which grows to fit max_sessions).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "server/checks.h"

struct seen {
	int warnings;
	char last[1024];
};

static void collect(void *ctx, enum check_level level, const char *msg)
{
	struct seen *s = ctx;
	if (level == CHECK_WARNING)
		s->warnings++;
	snprintf(s->last, sizeof(s->last), "%s", msg);
}

/* A configuration served on loopback only, so that only the descriptor check speaks. */
static void load(struct config *cfg, const char *max_sessions, const char *workers)
{
	char *argv[] = { "ferryd", "--listen", "127.0.0.1:2121", "--max-sessions",
			 (char *)max_sessions, "--workers", (char *)workers, NULL };
	memset(cfg, 0, sizeof(*cfg));
	assert_int_equal(config_load_unserved(cfg, 7, argv, stderr), 0);
}

static struct seen evaluate(const struct config *cfg, uint64_t fd_limit)
{
	struct checks_host h;
	memset(&h, 0, sizeof(h));
	h.ifaddrs_known = true;
	h.fd_limit = fd_limit;
	struct seen s = { 0 };
	checks_evaluate(cfg, &h, collect, &s);
	return s;
}

static void test_worker_capacity(void **state)
{
	(void)state;
	assert_int_equal(checks_worker_capacity(20000), (20000 - FD_RESERVE) / FD_PER_SESSION);
	assert_int_equal(checks_worker_capacity(100), 9);
	/* Below the reserve a worker still takes one session, never none. */
	assert_int_equal(checks_worker_capacity(10), 1);
	assert_int_equal(checks_worker_capacity(0), 1);
}

/* 10,000 sessions under 20,000 descriptors: three workers of 4,984 hold them. */
static void test_auto_workers_hold_what_fixed_ones_cannot(void **state)
{
	(void)state;
	struct config cfg;
	load(&cfg, "10000", "0");
	assert_true(cfg.workers_auto);
	assert_int_equal(evaluate(&cfg, 20000).warnings, 0);

	load(&cfg, "10000", "2");
	assert_false(cfg.workers_auto);
	struct seen s = evaluate(&cfg, 20000);
	assert_int_equal(s.warnings, 1);
	assert_non_null(strstr(s.last, "a worker holds about 4984 sessions, 2 workers about 9968"));

	load(&cfg, "10000", "3");
	assert_int_equal(evaluate(&cfg, 20000).warnings, 0);
	/* Enough descriptors for one worker to hold them all: nothing to say. */
	load(&cfg, "2000", "1");
	assert_int_equal(evaluate(&cfg, 8192).warnings, 0);
}

/* Even AUTO_WORKERS_MAX workers cannot hold this many under so few descriptors. */
static void test_auto_workers_have_a_limit(void **state)
{
	(void)state;
	struct config cfg;
	load(&cfg, "100000", "0");
	struct seen s = evaluate(&cfg, 1000);
	assert_int_equal(s.warnings, 1);
	assert_non_null(strstr(s.last, "64 workers about 14976"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worker_capacity),
		cmocka_unit_test(test_auto_workers_hold_what_fixed_ones_cannot),
		cmocka_unit_test(test_auto_workers_have_a_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

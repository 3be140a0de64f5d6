/* test_err.c: error names and the abort of FERR_ASSERT. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(ferr_str(FERR_OK), "ok");
	assert_string_equal(ferr_str(FERR_AGAIN), "again");
	assert_string_equal(ferr_str(FERR_INVALID), "invalid input");
	assert_string_equal(ferr_str(FERR_TOOBIG), "too big");
	assert_string_equal(ferr_str(FERR_NOMEM), "out of memory");
	assert_string_equal(ferr_str(FERR_RANGE), "out of range");
	assert_string_equal(ferr_str(FERR_SYS), "system error");
	assert_non_null(ferr_str(-1000));
	assert_non_null(ferr_str(42));
}

/* A broken invariant must abort; run it in a child so the test survives. */
static void test_assert_aborts(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Keep the expected message out of the test log. */
		FILE *quiet = freopen("/dev/null", "w", stderr);
		(void)quiet;
		int x = 1;
		FERR_ASSERT(x == 2);
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void test_assert_passes(void **state)
{
	(void)state;
	int x = 2;
	FERR_ASSERT(x == 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_assert_aborts),
		cmocka_unit_test(test_assert_passes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

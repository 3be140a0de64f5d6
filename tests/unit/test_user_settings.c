/*
 * test_user_settings.c: the per-user settings text (src/server/user_settings.c): every
 * key, sizes and their suffixes, the bounds, and which directory rule decides a path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "common/err.h"
#include "server/config.h"
#include "server/user_settings.h"

static int parse(const char *text, struct user_settings *s, const char **why)
{
	*why = NULL;
	return user_settings_parse(text, strlen(text), s, why);
}

static void test_every_key(void **state)
{
	(void)state;
	struct user_settings s;
	const char *why;
	assert_int_equal(parse("  quota_bytes=100M quota_files=1000\trate_down=2M rate_up=512K "
			       "user_rate_down=4m user_rate_up=1k max_sessions=2 "
			       "allow=198.18.0.0/15,::1 /incoming=read,write /pub/x=none ",
			       &s, &why),
			 0);
	assert_int_equal(s.quota_bytes, 100ULL << 20);
	assert_int_equal(s.quota_files, 1000);
	assert_int_equal(s.rate_down, 2 << 20);
	assert_int_equal(s.rate_up, 512 << 10);
	assert_int_equal(s.user_rate_down, 4 << 20);
	assert_int_equal(s.user_rate_up, 1024);
	assert_int_equal(s.max_sessions, 2);
	assert_int_equal(s.n_allow, 2);
	assert_int_equal(s.allow[0].prefix, 15);
	assert_int_equal(s.allow[1].prefix, 128);
	assert_int_equal(s.n_dirs, 2);
	assert_string_equal(s.dirs[0].path, "/incoming");
	assert_int_equal(s.dirs[0].perms, PERM_READ | PERM_WRITE);
	assert_string_equal(s.dirs[1].path, "/pub/x");
	assert_int_equal(s.dirs[1].perms, 0);
	assert_true(user_settings_any(&s));
	assert_true(user_settings_quota(&s));
}

static void test_empty_is_none(void **state)
{
	(void)state;
	struct user_settings s;
	const char *why;
	assert_int_equal(parse("", &s, &why), 0);
	assert_false(user_settings_any(&s));
	assert_int_equal(parse("   ", &s, &why), 0);
	assert_false(user_settings_any(&s));
	assert_false(user_settings_quota(&s));
}

static void test_refusals(void **state)
{
	(void)state;
	static const char *bad[] = {
		"quota_bytes",           /* no value */
		"=5",                    /* no key */
		"quota_bytes=",          /* empty value */
		"quota_bytes=-1",        /* sign */
		"quota_bytes=10T",       /* unknown suffix */
		"quota_bytes=99999999999999999999", /* overflow */
		"quota_bytes=17179869184G", /* overflow through the suffix */
		"rate_down=2048M",       /* above what libevent takes */
		"max_sessions=100001",   /* above its bound */
		"max_sessions=two",
		"colour=blue",           /* unknown key */
		"allow=",                /* no network */
		"allow=10.0.0.1/8",      /* host bits set */
		"allow=10.0.0.0/8,",     /* trailing comma */
		"allow=10.0.0.0/8,,::1",
		"/=read",                /* the base permissions */
		"/..=read",              /* resolves to / */
		"/in=fly",               /* unknown permission */
		"/in=read /in/=write",   /* the same directory twice */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct user_settings s;
		const char *why;
		int rc = parse(bad[i], &s, &why);
		if (rc >= 0)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(why);
	}
}

static void test_bounds(void **state)
{
	(void)state;
	char text[4096] = "";
	for (int i = 0; i < 17; i++) {
		char item[32];
		snprintf(item, sizeof(item), "/d%d=read ", i);
		strcat(text, item);
	}
	struct user_settings s;
	const char *why;
	assert_int_equal(parse(text, &s, &why), FERR_TOOBIG);
	memset(text, ' ', USER_SETTINGS_TEXT_MAX + 1);
	text[USER_SETTINGS_TEXT_MAX + 1] = '\0';
	assert_int_equal(parse(text, &s, &why), FERR_TOOBIG);
	/* Sixteen of each fit. */
	strcpy(text, "allow=");
	for (int i = 0; i < 16; i++) {
		char item[32];
		snprintf(item, sizeof(item), "%s10.%d.0.0/16", i ? "," : "", i);
		strcat(text, item);
	}
	assert_int_equal(parse(text, &s, &why), 0);
	assert_int_equal(s.n_allow, 16);
	strcat(text, ",10.99.0.0/16");
	assert_int_equal(parse(text, &s, &why), FERR_TOOBIG);
}

static void test_longest_rule_decides(void **state)
{
	(void)state;
	struct user_settings s;
	const char *why;
	assert_int_equal(parse("/incoming=read,write,mkdir /incoming/sealed=read /in=none", &s,
			       &why),
			 0);
	unsigned base = PERM_READ;
	/* Beneath a rule: the rule, the longest one first. */
	assert_int_equal(user_settings_perms(&s, base, "/incoming/a", false),
			 PERM_READ | PERM_WRITE | PERM_MKDIR);
	assert_int_equal(user_settings_perms(&s, base, "/incoming/sealed/b", false), PERM_READ);
	assert_int_equal(user_settings_perms(&s, base, "/in/x", false), 0);
	/* "/in" does not hold "/incoming", nor "/incoming" "/incomingX". */
	assert_int_equal(user_settings_perms(&s, base, "/incomingX/a", false), base);
	/* The directory itself is its parent's, unless its contents are meant. */
	assert_int_equal(user_settings_perms(&s, base, "/incoming", false), base);
	assert_int_equal(user_settings_perms(&s, base, "/incoming", true),
			 PERM_READ | PERM_WRITE | PERM_MKDIR);
	assert_int_equal(user_settings_perms(&s, base, "/incoming/sealed", false),
			 PERM_READ | PERM_WRITE | PERM_MKDIR);
	assert_int_equal(user_settings_perms(&s, base, "/", true), base);
	assert_int_equal(user_settings_perms(NULL, base, "/incoming/a", false), base);
}

static void test_allow(void **state)
{
	(void)state;
	struct user_settings s;
	const char *why;
	assert_int_equal(parse("allow=198.18.0.0/15,::1", &s, &why), 0);
	struct sockaddr_storage a = { 0 };
	struct sockaddr_in *a4 = (struct sockaddr_in *)&a;
	a4->sin_family = AF_INET;
	inet_pton(AF_INET, "198.19.3.4", &a4->sin_addr);
	assert_true(user_settings_allows(&s, &a));
	inet_pton(AF_INET, "127.0.0.1", &a4->sin_addr);
	assert_false(user_settings_allows(&s, &a));
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&a;
	memset(&a, 0, sizeof(a));
	a6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::1", &a6->sin6_addr);
	assert_true(user_settings_allows(&s, &a));
	/* An IPv4-mapped client counts as IPv4. */
	inet_pton(AF_INET6, "::ffff:198.18.0.1", &a6->sin6_addr);
	assert_true(user_settings_allows(&s, &a));
	assert_true(user_settings_allows(NULL, &a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_empty_is_none),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_longest_rule_decides),
		cmocka_unit_test(test_allow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_user_check.c: the checks `ferryd user` makes of a user's fields before any store
 * sees them (src/server/user_check.c): names, homes (and home_base), permissions,
 * settings, and that what they accept is a line the users file loads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/user_check.h"
#include "server/userdb_pg.h"
#include "server/users.h"

#define HASH "$y$j9T$fiWcxgVkF.D3dauQWoZsK1$rdNOgsioMeubrlUnMWTxOnvKZSaeKcIKrR.cy3SN/t5"

/* why by address: it is read after the call that sets it has run. */
static void refused(int rc, const char *const *why, const char *expect)
{
	assert_int_equal(rc, -EINVAL);
	assert_non_null(*why);
	if (expect != NULL)
		assert_string_equal(*why, expect);
}

static void test_names(void **state)
{
	const char *why = NULL;
	char longest[64], too_long[65];
	memset(longest, 'a', 63);
	longest[63] = '\0';
	memset(too_long, 'a', 64);
	too_long[64] = '\0';
	assert_int_equal(user_check_name("bob", &why), 0);
	assert_int_equal(user_check_name(longest, &why), 0);
	assert_int_equal(user_check_name("b\xc3\xa9" "a.x-y_z@example", &why), 0);
	const char *bad[] = { "", too_long, "a b", "a:b", "a\tb", "a\nb", "a\x7f", "\x01",
			      "#bob" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		refused(user_check_name(bad[i], &why), &why,
			"user names are 1-63 bytes without spaces, control characters or ':', and "
			"do not start with '#'");
	}
}

static void test_hash(void **state)
{
	const char *why;
	assert_int_equal(user_check_hash(HASH, &why), 0);
	refused(user_check_hash("", &why), &why, NULL);
	refused(user_check_hash("a:b", &why), &why, NULL);
	refused(user_check_hash("a b", &why), &why, NULL);
}

static void test_homes(void **state)
{
	const char *why;
	char big[4097];
	memset(big, 'a', sizeof(big) - 1);
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(user_check_home("/srv/ftp/bob", NULL, &why), 0);
	assert_int_equal(user_check_home("/srv/ftp/bob", "", &why), 0);
	refused(user_check_home("srv/bob", NULL, &why), &why, "home must be an absolute path");
	refused(user_check_home("", NULL, &why), &why, "home must be an absolute path");
	refused(user_check_home(big, NULL, &why), &why, "home must be under 4096 bytes");
	big[4095] = '\0';
	assert_int_equal(user_check_home(big, NULL, &why), 0);
	refused(user_check_home("/srv/a:b", NULL, &why), &why,
		"home must not hold control characters or ':'");
	refused(user_check_home("/srv/a\nb", NULL, &why), &why, NULL);
	refused(user_check_home("/srv/a\x7f", NULL, &why), &why, NULL);
	assert_int_equal(user_check_home("/srv/ftp/bob", "/srv/ftp", &why), 0);
	refused(user_check_home("/srv/ftpx/bob", "/srv/ftp", &why), &why,
		"home must lie beneath home_base");
}

static void test_beneath(void **state)
{
	assert_true(user_check_beneath("/srv/ftp", "/srv/ftp/a"));
	assert_true(user_check_beneath("/srv/ftp/", "/srv/ftp/a/b"));
	assert_true(user_check_beneath("/srv/ftp", "/srv//ftp/./a/"));
	assert_false(user_check_beneath("/srv/ftp", "/srv/ftp"));
	assert_false(user_check_beneath("/srv/ftp", "/srv/ftp/"));
	assert_false(user_check_beneath("/srv/ftp", "/srv/ftp/a/.."));
	assert_false(user_check_beneath("/srv/ftp", "/srv/ftpx"));
	assert_false(user_check_beneath("/srv/ftp", "/srv"));
	/* ".." climbing out is judged on the normalised path, as the server judges it. */
	assert_false(user_check_beneath("/srv/ftp", "/srv/ftp/../etc"));
	assert_false(user_check_beneath("/srv/ftp", "/srv/ftp/a/../../etc"));
	/* "/" holds everything but itself. */
	assert_true(user_check_beneath("/", "/srv"));
	assert_false(user_check_beneath("/", "/"));
	assert_false(user_check_beneath("/", "/.."));
	/* A base that is no absolute path holds nothing. */
	assert_false(user_check_beneath("srv", "/srv/a"));
	assert_false(user_check_beneath("", "/srv/a"));
}

static void test_perms(void **state)
{
	const char *why;
	assert_int_equal(user_check_perms("read", &why), 0);
	assert_int_equal(user_check_perms("read,write, delete", &why), 0);
	assert_int_equal(user_check_perms("none", &why), 0);
	assert_int_equal(user_check_perms("all", &why), 0);
	const char *msg = "permissions must be a list of read, write, delete, rename, mkdir, all, none";
	refused(user_check_perms("", &why), &why, msg);
	refused(user_check_perms("read,", &why), &why, msg);
	refused(user_check_perms("foo", &why), &why, msg);
	refused(user_check_perms("read:write", &why), &why, msg);
	/* What perm_parse takes, but the users file's 256-byte buffer would not. */
	char lots[300] = "read";
	while (strlen(lots) < 260)
		strcat(lots, ",read");
	refused(user_check_perms(lots, &why), &why, msg);
}

static void test_settings(void **state)
{
	const char *why;
	assert_int_equal(user_check_settings("", &why), 0);
	assert_int_equal(user_check_settings("max_sessions=2 rate_down=1M", &why), 0);
	assert_int_equal(user_check_settings("allow=::1,127.0.0.0/8\t/in=read,write", &why), 0);
	refused(user_check_settings("bogus=1", &why), &why, NULL);
	refused(user_check_settings("max_sessions=x", &why), &why, NULL);
	refused(user_check_settings("max_sessions=2\nrate_up=1", &why), &why,
		"settings must not hold control characters but tab");
	refused(user_check_settings("quota_bytes=1M", &why), &why,
		"quota_bytes and quota_files are not enforced by this version");
	refused(user_check_settings("max_sessions=1 quota_files=10", &why), &why,
		"quota_bytes and quota_files are not enforced by this version");
}

static void test_entry(void **state)
{
	const char *why;
	struct user_entry_text u = { .name = "bob" };
	assert_int_equal(user_check_entry(&u, "/srv", &why), 0);
	u.home = "/srv/bob";
	u.perms = "read,write";
	u.settings = "/in=write";
	u.hash = HASH;
	assert_int_equal(user_check_entry(&u, "/srv", &why), 0);
	refused(user_check_entry(&u, "/home", &why), &why, "home must lie beneath home_base");
	u.settings = "quota_files=1";
	refused(user_check_entry(&u, NULL, &why), &why,
		"quota_bytes and quota_files are not enforced by this version");
	u.settings = NULL;
	u.perms = "x";
	refused(user_check_entry(&u, NULL, &why), &why, NULL);
	u.perms = NULL;
	u.name = "a b";
	refused(user_check_entry(&u, NULL, &why), &why, NULL);
}

/* Whatever the checks accept, put together as a line, is a line the users file loads. */
static void test_accepted_fields_make_a_loadable_line(void **state)
{
	char name[64], home[4096], settings[2049];
	memset(name, 'n', 63);
	name[63] = '\0';
	memset(home, 'h', sizeof(home) - 1);
	home[0] = '/';
	home[sizeof(home) - 1] = '\0';
	/* The longest settings text the parser takes: dir rules padded with spaces. */
	memset(settings, ' ', sizeof(settings) - 1);
	memcpy(settings, "/in=read,write allow=::1", 24);
	settings[sizeof(settings) - 1] = '\0';
	const char *why;
	assert_int_equal(user_check_name(name, &why), 0);
	assert_int_equal(user_check_home(home, NULL, &why), 0);
	assert_int_equal(user_check_settings(settings, &why), 0);
	char perms[256] = "read";
	while (strlen(perms) + 5 < sizeof(perms))
		strcat(perms, ",read");
	assert_int_equal(user_check_perms(perms, &why), 0);
	static char line[8192];
	int n = snprintf(line, sizeof(line), "%s:%s:%s:%s:%s", name, HASH, home, perms, settings);
	assert_true(n > 0 && (size_t)n < sizeof(line) - 1);
	struct user_entry e;
	why = NULL;
	int rc = users_parse_line(line, &e, &why);
	if (rc != 0)
		fail_msg("refused: %s", why);
	assert_string_equal(e.home, home);
	user_entry_clear(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_homes),
		cmocka_unit_test(test_beneath),
		cmocka_unit_test(test_perms),
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_entry),
		cmocka_unit_test(test_accepted_fields_make_a_loadable_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_netrc.c: ~/.netrc lookups: entries, default, quoting, comments, macros, bounds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/netrc.h"

static struct netrc_entry e;

static int lookup_n(const char *text, size_t len, const char *host, unsigned *line)
{
	memset(&e, 'x', sizeof(e));
	return netrc_lookup(text, len, host, &e, line);
}

static int lookup(const char *text, const char *host)
{
	unsigned line = 99;
	int rc = lookup_n(text, strlen(text), host, &line);
	if (rc >= 0)
		assert_int_equal(line, 0);
	return rc;
}

static void expect_entry(const char *text, const char *host, const char *login,
			 const char *password)
{
	int rc = lookup(text, host);
	if (rc != 1)
		fail_msg("host '%s' in '%s' gave %d", host, text, rc);
	assert_int_equal(e.has_login, login != NULL);
	assert_string_equal(e.login, login != NULL ? login : "");
	assert_int_equal(e.has_password, password != NULL);
	assert_string_equal(e.password, password != NULL ? password : "");
}

static void expect_none(const char *text, const char *host)
{
	assert_int_equal(lookup(text, host), 0);
	assert_false(e.has_login);
	assert_false(e.has_password);
	assert_string_equal(e.login, "");
	assert_string_equal(e.password, "");
}

static void expect_invalid_n(const char *text, size_t len, const char *host, unsigned want)
{
	unsigned line = 0;
	int rc = lookup_n(text, len, host, &line);
	if (rc != FERR_INVALID)
		fail_msg("'%s' gave %d, not FERR_INVALID", text, rc);
	if (line != want)
		fail_msg("'%s': line %u, not %u", text, line, want);
	assert_false(e.has_login);
	assert_false(e.has_password);
	assert_string_equal(e.password, "");
}

static void expect_invalid(const char *text, unsigned want)
{
	expect_invalid_n(text, strlen(text), "a", want);
}

static void test_basic(void **state)
{
	(void)state;
	const char *t = "machine example.com login daniel password qwerty";
	expect_entry(t, "example.com", "daniel", "qwerty");
	expect_entry(t, "EXAMPLE.Com", "daniel", "qwerty");
	expect_none(t, "example.org");
	expect_none(t, "example.co");
	expect_none(t, "example.com.evil");
	expect_none(t, "");
	expect_none(t, NULL);

	/* Any white space separates, newlines included, as ftp(1) reads it. */
	expect_entry("machine\texample.com\r\n  login\fdaniel\v\n\n\npassword\tqwerty\r\n",
		     "example.com", "daniel", "qwerty");
	expect_entry("machine a\nlogin\nl\npassword\np\n", "a", "l", "p");
	expect_entry("MACHINE a LOGIN l PASSWORD p", "a", "l", "p");
	expect_entry("machine A.Example login l", "a.example", "l", NULL);
	expect_entry("machine a password p", "a", NULL, "p");
	expect_entry("machine a", "a", NULL, NULL);

	expect_none("", "a");
	assert_int_equal(netrc_lookup(NULL, 0, "a", &e, NULL), 0);
	expect_none("   \n\n\t", "a");
}

static void test_entries(void **state)
{
	(void)state;
	const char *t = "machine a login la password pa\n"
			"machine b login lb\n"
			"machine c password pc\n";
	expect_entry(t, "a", "la", "pa");
	expect_entry(t, "b", "lb", NULL);
	expect_entry(t, "c", NULL, "pc");
	expect_none(t, "d");

	/* The first matching machine wins, and nothing of a later one leaks into it. */
	expect_entry("machine a login one\nmachine A login two password two", "a", "one", NULL);
	/* Within an entry the first login and password win, as in ftp(1). */
	expect_entry("machine a login one login two password p1 password p2", "a", "one", "p1");
	/* Fields before any machine belong to none. */
	expect_entry("login stray password stray\nmachine a password p", "a", NULL, "p");
	expect_none("login stray password stray", "a");
	/* account is read and dropped; its value is never a keyword. */
	expect_entry("machine a account login password p", "a", NULL, "p");
	expect_entry("machine a account acct login l", "a", "l", NULL);
	/* A machine name is taken as written, even a keyword. */
	expect_entry("machine login login x", "login", "x", NULL);
	expect_entry("machine default login x", "default", "x", NULL);
	/* Unknown tokens are skipped. */
	expect_entry("machine a port 2121 login l force yes password p", "a", "l", "p");
}

static void test_default(void **state)
{
	(void)state;
	const char *t = "machine a login x\ndefault login anonymous password me@example.com\n";
	expect_entry(t, "a", "x", NULL); /* nothing taken from default */
	expect_entry(t, "b", "anonymous", "me@example.com");
	expect_entry(t, NULL, "anonymous", "me@example.com");

	/* Accepted anywhere, used only when no machine matched. */
	const char *first = "default login d password dp\nmachine a login x\n";
	expect_entry(first, "a", "x", NULL);
	expect_entry(first, "b", "d", "dp");
	/* The default entry ends at the next machine. */
	expect_entry("default login d\nmachine b password pb\n", "c", "d", NULL);
	/* The first default wins. */
	expect_entry("default login d1\ndefault login d2 password p2", "z", "d1", NULL);
	expect_entry("default", "z", NULL, NULL);
	expect_entry("machine a login a default login d", "b", "d", NULL);
}

static void test_quoting(void **state)
{
	(void)state;
	expect_entry("machine a login \"my user\" password \"p\\\"w\\\\d\"", "a", "my user",
		     "p\"w\\d");
	/* Only \" and \\ are escapes; any other backslash stays. */
	expect_entry("machine a password \"C:\\dir\\n\"", "a", NULL, "C:\\dir\\n");
	/* Unquoted tokens keep backslashes and quotes as written. */
	expect_entry("machine a login ab\"c password p\\\"", "a", "ab\"c", "p\\\"");
	expect_entry("machine a password \"\"", "a", NULL, "");
	expect_entry("machine \"a\" login \"l\"", "a", "l", NULL);
	expect_entry("machine \"A b\" login l", "a B", "l", NULL);
	/* A quoted token ends at its closing quote. */
	expect_entry("machine a login \"ab\"cd password p", "a", "ab", "p");
	expect_entry("machine a password \"#not a comment\"", "a", NULL, "#not a comment");
	/* A quoted keyword is a keyword. */
	expect_entry("machine a \"login\" l", "a", "l", NULL);

	expect_invalid("machine a login \"abc", 1);
	expect_invalid("machine a\nlogin \"ab\ncd\" password p", 2);
	expect_invalid("machine a\n\nlogin \"ab\rcd\"", 3);
	expect_invalid("machine a login \"ab\\\"", 1);
	expect_invalid("machine a login \"", 1);
	/* The whole text is read: an error in another entry is still reported. */
	expect_invalid("machine a login l\nmachine b password \"p", 2);
}

static void test_comments(void **state)
{
	(void)state;
	expect_entry("# machine a login bad\nmachine a login good", "a", "good", NULL);
	expect_entry("machine a login l # password bad\n password p", "a", "l", "p");
	expect_entry("machine a login l #password bad", "a", "l", NULL);
	expect_entry("#\nmachine a login l", "a", "l", NULL);
	/* Only at the start of a token. */
	expect_entry("machine a password pass#word", "a", NULL, "pass#word");
	/* Comments are not tokens: their length and bytes do not matter. */
	char t[600];
	memset(t, 0, sizeof(t));
	t[0] = '#';
	memset(t + 1, 'c', 400);
	memcpy(t + 401, "\"\nmachine a login l", 19);
	expect_entry(t, "a", "l", NULL);
	const char nul[] = "# \0 \nmachine a login l";
	assert_int_equal(lookup_n(nul, sizeof(nul) - 1, "a", NULL), 1);
	assert_string_equal(e.login, "l");
}

static void test_macdef(void **state)
{
	(void)state;
	expect_entry("macdef init\ncd /pub\nmachine a login bad\n\nmachine a login good", "a",
		     "good", NULL);
	expect_entry("macdef init\r\ncd /pub\r\nmachine a login bad\r\n\r\nmachine a login good",
		     "a", "good", NULL);
	/* The rest of the macdef line is ignored, and the body can be empty. */
	expect_entry("macdef init login bad\n\nmachine a login good", "a", "good", NULL);
	/* A line of blanks does not end the body. */
	expect_entry("macdef x\n  \nmachine a login bad\n\nmachine a login good", "a", "good",
		     NULL);
	/* The body is not tokenised: an odd quote or a long line there is harmless. */
	expect_entry("macdef x\necho \"\n\nmachine a login ok", "a", "ok", NULL);
	/* An entry ends nothing: a macro inside an entry is skipped and the entry goes on. */
	expect_entry("machine a login l\nmacdef m\nlogin x\n\npassword p\n", "a", "l", "p");
	/* A body to the end of the text. */
	expect_none("machine b\nmacdef x\nmachine a login bad", "a");
	expect_invalid("macdef", 1);
}

static void test_bounds(void **state)
{
	(void)state;
	static char t[2048], want[512];

	/* 255 bytes fit the 256-byte fields, 256 do not. */
	memset(want, 'l', 255);
	want[255] = '\0';
	snprintf(t, sizeof(t), "machine a login %s password p", want);
	expect_entry(t, "a", want, "p");
	snprintf(t, sizeof(t), "machine a login \"%s\"", want);
	expect_entry(t, "a", want, NULL);
	snprintf(t, sizeof(t), "machine a\nlogin %sL", want);
	expect_invalid(t, 2);
	snprintf(t, sizeof(t), "machine a\n\nlogin \"%sL\"", want);
	expect_invalid(t, 3);

	/* The bound is after unquoting: 254 bytes and one escaped quote fit. */
	want[254] = '\0';
	snprintf(t, sizeof(t), "machine a password \"%s\\\"\"", want);
	want[254] = '"';
	expect_entry(t, "a", NULL, want);
	want[254] = '\0';
	snprintf(t, sizeof(t), "machine a password \"%s\\\"\\\\\"", want);
	expect_invalid(t, 1);

	/* Every token is bounded: machine names, unknown words, other hosts' entries. */
	memset(want, 'm', 256);
	want[256] = '\0';
	snprintf(t, sizeof(t), "machine %s", want);
	expect_invalid(t, 1);
	snprintf(t, sizeof(t), "machine a login l\n\n%s", want);
	expect_invalid(t, 3);
	snprintf(t, sizeof(t), "machine a login l\nmachine b password %s", want);
	expect_invalid(t, 2);
	want[255] = '\0';
	snprintf(t, sizeof(t), "machine %s login l", want);
	expect_entry(t, want, "l", NULL);
}

static void test_malformed(void **state)
{
	(void)state;
	/* A keyword without its argument; the line is the keyword's. */
	expect_invalid("machine", 1);
	expect_invalid("machine a login", 1);
	expect_invalid("machine a\n\nlogin\n\n", 3);
	expect_invalid("machine a password", 1);
	expect_invalid("machine a account", 1);
	/* A NUL in a token would cut a C string short. */
	const char nul[] = "machine a\nlogin x\0y";
	expect_invalid_n(nul, sizeof(nul) - 1, "a", 2);
	const char nul2[] = "machine a\0login l";
	expect_invalid_n(nul2, sizeof(nul2) - 1, "a", 1);
	const char nul3[] = "machine a password \"x\0\"";
	expect_invalid_n(nul3, sizeof(nul3) - 1, "a", 1);
	/* line may be NULL. */
	assert_int_equal(netrc_lookup("machine", 7, "a", &e, NULL), FERR_INVALID);
}

static void test_length_is_honoured(void **state)
{
	(void)state;
	const char *t = "machine a login abcdef password secret";
	assert_int_equal(lookup_n(t, strlen("machine a login abc"), "a", NULL), 1);
	assert_string_equal(e.login, "abc");
	assert_false(e.has_password);
	/* Not NUL-terminated at len: nothing past it is read. */
	char buf[] = { 'm', 'a', 'c', 'h', 'i', 'n', 'e', ' ', 'a', ' ', 'l', 'o', 'g', 'i', 'n',
		       ' ', 'x' };
	assert_int_equal(lookup_n(buf, sizeof(buf), "a", NULL), 1);
	assert_string_equal(e.login, "x");
	char q[] = { 'm', 'a', 'c', 'h', 'i', 'n', 'e', ' ', 'a', ' ', '"', 'x' };
	unsigned line = 0;
	assert_int_equal(lookup_n(q, sizeof(q), "a", &line), FERR_INVALID);
	assert_int_equal(line, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_entries),
		cmocka_unit_test(test_default),
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_macdef),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_length_is_honoured),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_url.c: ftp:// and ftps:// URLs: parsing, refusals with their reasons, formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/url.h"

/* One URL for every test: struct ftp_url is too big for cmocka's small test stacks. */
static struct ftp_url u;

static void parse_ok(const char *s)
{
	const char *why = "unset";
	int rc = url_parse(s, &u, &why);
	if (rc != FERR_OK)
		fail_msg("'%s' refused: %s", s, why);
	assert_null(why);
}

/* Refused, with a reason that contains `reason`; the struct is left cleared. */
static void parse_bad(const char *s, const char *reason)
{
	const char *why = NULL;
	int rc = url_parse(s, &u, &why);
	if (rc != FERR_INVALID)
		fail_msg("'%s' gave %d, not FERR_INVALID", s, rc);
	assert_non_null(why);
	if (strstr(why, reason) == NULL)
		fail_msg("'%s' refused for '%s', not '%s'", s, why, reason);
	assert_false(u.has_user);
	assert_false(u.has_password);
	assert_string_equal(u.password, "");
	assert_string_equal(u.host, "");
	assert_int_equal(u.port, 0);
}

static void expect(const char *s, const char *host, uint16_t port, const char *path)
{
	parse_ok(s);
	assert_string_equal(u.host, host);
	assert_int_equal(u.port, port);
	assert_string_equal(u.path, path);
}

static void test_minimal(void **state)
{
	(void)state;
	expect("ftp://example.com", "example.com", 21, "");
	assert_false(u.implicit_tls);
	assert_false(u.has_user);
	assert_false(u.has_password);
	assert_false(u.host_is_ipv6);
	assert_int_equal(u.type, 0);
	assert_string_equal(u.user, "");
}

static void test_scheme(void **state)
{
	(void)state;
	expect("ftps://example.com/", "example.com", 990, "");
	assert_true(u.implicit_tls);
	expect("FTP://Example.COM/", "Example.COM", 21, "");
	assert_false(u.implicit_tls);
	expect("FtPs://h", "h", 990, "");
	assert_true(u.implicit_tls);

	parse_bad("http://example.com/", "unknown scheme");
	parse_bad("ftpx://example.com/", "unknown scheme");
	parse_bad("sftp://example.com/", "unknown scheme");
	parse_bad("://example.com/", "unknown scheme");
	parse_bad("example.com/file", "not a URL");
	parse_bad("ftp:/example.com/", "not a URL");
	parse_bad("ftp:example.com", "not a URL");
	parse_bad("", "not a URL");
	parse_bad(" ftp://example.com/", "unknown scheme");
	parse_bad(NULL, "no URL");
}

static void test_path_rules(void **state)
{
	(void)state;
	/* RFC 1738: the '/' after the host separates; the path is relative to the login. */
	expect("ftp://host/dir/file", "host", 21, "dir/file");
	expect("ftp://host/file", "host", 21, "file");
	expect("ftp://host/", "host", 21, "");
	expect("ftp://host", "host", 21, "");
	expect("ftp://host/dir/", "host", 21, "dir/");
	/* A second slash, written or encoded, makes it absolute. */
	expect("ftp://host//abs/file", "host", 21, "/abs/file");
	expect("ftp://host//", "host", 21, "/");
	expect("ftp://host/%2Fetc", "host", 21, "/etc");
	expect("ftp://host/%2fetc/passwd", "host", 21, "/etc/passwd");
	expect("ftp://host/a%2Fb", "host", 21, "a/b");
	/* Nothing is normalised: the server resolves, and confines. */
	expect("ftp://host/a//b/../c/./", "host", 21, "a//b/../c/./");
	/* '@' and ':' in the path are not userinfo or a port. */
	expect("ftp://host/a@b:c", "host", 21, "a@b:c");
	assert_false(u.has_user);
	/* Tolerated raw: space and UTF-8. */
	expect("ftp://host/My Files/a b", "host", 21, "My Files/a b");
	expect("ftp://host/caf\xc3\xa9", "host", 21, "caf\xc3\xa9");
}

static void test_percent(void **state)
{
	(void)state;
	expect("ftp://host/%41%62%2e%7E", "host", 21, "Ab.~");
	expect("ftp://host/%e2%82%AC", "host", 21, "\xe2\x82\xac");
	expect("ftp://host/100%25", "host", 21, "100%");
	expect("ftp://host/%25%32%35", "host", 21, "%25"); /* decoded once only */
	expect("ftp://host/a%3Fb%23c", "host", 21, "a?b#c");
	expect("ftp://host/%09tab%20", "host", 21, "\ttab ");

	parse_bad("ftp://host/%", "bad %XX in path");
	parse_bad("ftp://host/%4", "bad %XX in path");
	parse_bad("ftp://host/a%4", "bad %XX in path");
	parse_bad("ftp://host/%G0", "bad %XX in path");
	parse_bad("ftp://host/%4g", "bad %XX in path");
	parse_bad("ftp://host/%%41", "bad %XX in path");
	parse_bad("ftp://host/% 41", "bad %XX in path");
	parse_bad("ftp://host/%00", "NUL, CR or LF in path");
	parse_bad("ftp://host/a%0D%0ADELE%20x", "NUL, CR or LF in path");
	parse_bad("ftp://host/a%0a", "NUL, CR or LF in path");
	parse_bad("ftp://host/a%0d", "NUL, CR or LF in path");
	parse_bad("ftp://us%0Der@host/", "NUL, CR or LF in user");
	parse_bad("ftp://us%zzer@host/", "bad %XX in user");
	parse_bad("ftp://user:pw%00@host/", "NUL, CR or LF in password");
	parse_bad("ftp://user:pw%0A@host/", "NUL, CR or LF in password");
	parse_bad("ftp://user:pw%@host/", "bad %XX in password");
	/* The host is never decoded. */
	parse_bad("ftp://ho%73t/", "bad character in host");
}

static void test_raw_refusals(void **state)
{
	(void)state;
	parse_bad("ftp://host/a\tb", "control character");
	parse_bad("ftp://host/a\r\nDELE x", "control character");
	parse_bad("ftp://host/a\n", "control character");
	parse_bad("ftp://host/a\x7f", "control character");
	parse_bad("ftp://us\x01r@host/", "control character");
	parse_bad("ftp://host/a?b", "'?' and '#'");
	parse_bad("ftp://host/a#b", "'?' and '#'");
	parse_bad("ftp://host?x", "'?' and '#'");
	parse_bad("ftp://user:pa#ss@host/", "'?' and '#'");
}

static void test_userinfo(void **state)
{
	(void)state;
	expect("ftp://user@host", "host", 21, "");
	assert_true(u.has_user);
	assert_false(u.has_password);
	assert_string_equal(u.user, "user");

	expect("ftp://user:secret@host:2121/f", "host", 2121, "f");
	assert_true(u.has_user);
	assert_true(u.has_password);
	assert_string_equal(u.user, "user");
	assert_string_equal(u.password, "secret");

	/* An empty password is a password. */
	expect("ftp://user:@host", "host", 21, "");
	assert_true(u.has_password);
	assert_string_equal(u.password, "");

	/* Later colons belong to the password. */
	expect("ftp://user:pa:ss@host", "host", 21, "");
	assert_string_equal(u.password, "pa:ss");

	expect("ftp://us%40er:p%40ss%3Aw%2F@host/", "host", 21, "");
	assert_string_equal(u.user, "us@er");
	assert_string_equal(u.password, "p@ss:w/");

	expect("ftp://a;b=c!$&'()*+,:x@host", "host", 21, "");
	assert_string_equal(u.user, "a;b=c!$&'()*+,");
	assert_string_equal(u.password, "x");

	expect("ftp://u@host/a@b", "host", 21, "a@b");
	assert_string_equal(u.user, "u");

	expect("ftp://anonymous:me%40example.com@[::1]:21/pub/", "::1", 21, "pub/");
	assert_string_equal(u.password, "me@example.com");
	assert_true(u.host_is_ipv6);

	/* The host follows the last '@': a raw '@' before it is refused, with the remedy. */
	parse_bad("ftp://u:p@ss@host/", "written %40");
	parse_bad("ftp://me@example.com@host/", "written %40");
	parse_bad("ftp://@host/", "empty user");
	parse_bad("ftp://:pw@host/", "empty user");
	parse_bad("ftp://user@/x", "missing host");
	parse_bad("ftp://user:pw@", "missing host");
	/* A raw '/' ends the authority, so the password's tail reads as a port. */
	parse_bad("ftp://u:a/b@host/", "bad port");
}

static void test_host(void **state)
{
	(void)state;
	expect("ftp://my_host-1.Example./x", "my_host-1.Example.", 21, "x");
	assert_false(u.host_is_ipv6);
	expect("ftp://192.0.2.1:2121/x", "192.0.2.1", 2121, "x");
	assert_false(u.host_is_ipv6);
	expect("ftp://255.255.255.255", "255.255.255.255", 21, "");
	expect("ftp://1.2.3.4a/", "1.2.3.4a", 21, ""); /* a name */
	expect("ftp://localhost", "localhost", 21, "");

	parse_bad("ftp:///path", "missing host");
	parse_bad("ftp://", "missing host");
	parse_bad("ftp://:21/", "missing host");
	parse_bad("ftp://ho st/", "bad character in host");
	parse_bad("ftp://h\xc3\xb6st/", "bad character in host");
	parse_bad("ftp://host;type=i", "bad character in host");
	parse_bad("ftp://ho*st/", "bad character in host");
	/* What looks like a number must be a dotted quad, never inet_aton's shorthands. */
	parse_bad("ftp://1.2.3/", "bad IPv4 address");
	parse_bad("ftp://123/", "bad IPv4 address");
	parse_bad("ftp://1.2.3.256/", "bad IPv4 address");
	parse_bad("ftp://1.2.3.4./", "bad IPv4 address");
	parse_bad("ftp://01.2.3.4/", "bad IPv4 address");
	parse_bad("ftp://../", "bad IPv4 address");
}

static void test_ipv6(void **state)
{
	(void)state;
	expect("ftp://[2001:db8::1]/", "2001:db8::1", 21, "");
	assert_true(u.host_is_ipv6);
	expect("ftp://[::1]:2121", "::1", 2121, "");
	assert_true(u.host_is_ipv6);
	expect("ftp://[::1]:", "::1", 21, "");
	expect("ftps://[::ffff:192.0.2.1]/a", "::ffff:192.0.2.1", 990, "a");
	expect("ftp://[0000:0000:0000:0000:0000:0000:0000:0001]/",
	       "0000:0000:0000:0000:0000:0000:0000:0001", 21, "");

	parse_bad("ftp://[fe80::1%25eth0]/", "zone ids are not supported");
	parse_bad("ftp://[fe80::1%eth0]/", "zone ids are not supported");
	parse_bad("ftp://fe80::1/", "brackets");
	parse_bad("ftp://::1/", "brackets");
	parse_bad("ftp://[::1/", "no ']'");
	parse_bad("ftp://[::1", "no ']'");
	parse_bad("ftp://[]/", "bad IPv6 address");
	parse_bad("ftp://[1.2.3.4]/", "bad IPv6 address");
	parse_bad("ftp://[host]/", "bad IPv6 address");
	parse_bad("ftp://[::g]/", "bad IPv6 address");
	parse_bad("ftp://[0000:0000:0000:0000:0000:0000:0000:0000:0000]/", "bad IPv6 address");
	parse_bad("ftp://[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]/", "bad IPv6 address");
	parse_bad("ftp://[::1]x/", "after ']'");
	parse_bad("ftp://[::1]]/", "after ']'");
	parse_bad("ftp://[::1]:0/", "bad port");
}

static void test_port(void **state)
{
	(void)state;
	expect("ftp://h:1", "h", 1, "");
	expect("ftp://h:65535/", "h", 65535, "");
	expect("ftp://h:021/", "h", 21, "");
	expect("ftp://h:00021/", "h", 21, "");
	expect("ftp://h:/x", "h", 21, "x");
	expect("ftps://h:/x", "h", 990, "x");
	expect("ftps://h:21", "h", 21, "");
	expect("ftp://h:990", "h", 990, "");

	parse_bad("ftp://h:0/", "bad port");
	parse_bad("ftp://h:00000/", "bad port");
	parse_bad("ftp://h:65536/", "bad port");
	parse_bad("ftp://h:99999/", "bad port");
	parse_bad("ftp://h:000021/", "bad port");
	parse_bad("ftp://h:18446744073709551637/", "bad port");
	parse_bad("ftp://h:-1/", "bad port");
	parse_bad("ftp://h:+21/", "bad port");
	parse_bad("ftp://h: 21/", "bad port");
	parse_bad("ftp://h:2x/", "bad port");
	parse_bad("ftp://h:21:22/", "brackets");
}

static void test_type(void **state)
{
	(void)state;
	expect("ftp://host/f;type=i", "host", 21, "f");
	assert_int_equal(u.type, 'i');
	expect("ftp://host/f;type=a", "host", 21, "f");
	assert_int_equal(u.type, 'a');
	expect("ftp://host/dir/;type=d", "host", 21, "dir/");
	assert_int_equal(u.type, 'd');
	expect("ftp://host/F;TYPE=I", "host", 21, "F");
	assert_int_equal(u.type, 'i');
	expect("ftp://host/;type=A", "host", 21, "");
	assert_int_equal(u.type, 'a');
	expect("ftp://host//abs;type=i", "host", 21, "/abs");
	assert_int_equal(u.type, 'i');
	expect("ftp://host/%2Fx%20y;type=i", "host", 21, "/x y");
	assert_int_equal(u.type, 'i');
	/* Only the last segment can carry it; an encoded ';' is part of a name. */
	expect("ftp://host/a;type=i/b", "host", 21, "a;type=i/b");
	assert_int_equal(u.type, 0);
	expect("ftp://host/f%3Btype=i", "host", 21, "f;type=i");
	assert_int_equal(u.type, 0);
	expect("ftp://host/f;typo=i", "host", 21, "f;typo=i");
	assert_int_equal(u.type, 0);

	parse_bad("ftp://host/f;type=x", "bad ;type=");
	parse_bad("ftp://host/f;type=", "bad ;type=");
	parse_bad("ftp://host/f;type=ii", "bad ;type=");
	parse_bad("ftp://host/f;type=i;type=a", "bad ;type=");
	parse_bad("ftp://host/f;type=%69", "bad ;type=");
}

static void fill(char *s, char c, size_t n)
{
	memset(s, c, n);
	s[n] = '\0';
}

/* n copies of the three bytes xx ("%41") into s, NUL-terminated. */
static void fill_encoded(char *s, const char *xx, size_t n)
{
	for (size_t i = 0; i < n; i++)
		memcpy(s + 3 * i, xx, 3);
	s[3 * n] = '\0';
}

static void test_field_bounds(void **state)
{
	(void)state;
	/* s has room for f and the rest of the URL, so no snprintf truncates. */
	static char s[5 * VPATH_MAX], f[4 * VPATH_MAX];

	/* 255 bytes fit the 256-byte fields, 256 do not. */
	fill(f, 'u', 255);
	snprintf(s, sizeof(s), "ftp://%s@h/", f);
	parse_ok(s);
	assert_int_equal(strlen(u.user), 255);
	fill(f, 'u', 256);
	snprintf(s, sizeof(s), "ftp://%s@h/", f);
	parse_bad(s, "user too long");

	/* The bound is on the decoded bytes: 255 "%41" are 765 characters. */
	fill_encoded(f, "%41", 255);
	snprintf(s, sizeof(s), "ftp://u:%s@h/", f);
	parse_ok(s);
	assert_int_equal(strlen(u.password), 255);
	assert_int_equal(u.password[254], 'A');
	fill(f, 'p', 256);
	snprintf(s, sizeof(s), "ftp://u:%s@h/", f);
	parse_bad(s, "password too long");

	fill(f, 'h', 255);
	snprintf(s, sizeof(s), "ftp://%s/", f);
	parse_ok(s);
	assert_int_equal(strlen(u.host), 255);
	fill(f, 'h', 256);
	snprintf(s, sizeof(s), "ftp://%s/", f);
	parse_bad(s, "host too long");

	/* VPATH_MAX counts the NUL. */
	fill(f, 'p', VPATH_MAX - 1);
	snprintf(s, sizeof(s), "ftp://h/%s", f);
	parse_ok(s);
	assert_int_equal(strlen(u.path), VPATH_MAX - 1);
	snprintf(s, sizeof(s), "ftp://h/%s;type=i", f);
	parse_ok(s);
	assert_int_equal(strlen(u.path), VPATH_MAX - 1);
	snprintf(s, sizeof(s), "ftp://h//%s", f + 1);
	parse_ok(s);
	assert_int_equal(strlen(u.path), VPATH_MAX - 1);
	assert_int_equal(u.path[0], '/');
	fill(f, 'p', VPATH_MAX);
	snprintf(s, sizeof(s), "ftp://h/%s", f);
	parse_bad(s, "path too long");
	snprintf(s, sizeof(s), "ftp://h//%s", f + 1);
	parse_bad(s, "path too long");
	fill(f, 'p', VPATH_MAX - 2);
	snprintf(s, sizeof(s), "ftp://h/%s%%41", f);
	parse_ok(s);
	snprintf(s, sizeof(s), "ftp://h/%s%%41%%41", f);
	parse_bad(s, "path too long");
}

static void test_failure_wipes(void **state)
{
	(void)state;
	/* The password is decoded before the port is read; a refusal must not leave it. */
	assert_int_equal(url_parse("ftp://u:secret@h:0/", &u, NULL), FERR_INVALID);
	assert_string_equal(u.password, "");
	assert_string_equal(u.user, "");
	assert_false(u.has_password);
	/* why may be NULL on success too. */
	assert_int_equal(url_parse("ftp://h/", &u, NULL), FERR_OK);
}

static const char *masked(const char *s)
{
	static char out[4 * VPATH_MAX];
	parse_ok(s);
	assert_int_equal(url_format_masked(&u, out, sizeof(out)), FERR_OK);
	return out;
}

static void test_format(void **state)
{
	(void)state;
	assert_string_equal(masked("ftp://user:secret@host/dir/file"),
			    "ftp://user:***@host/dir/file");
	assert_string_equal(masked("ftp://user:@host"), "ftp://user:***@host/");
	assert_string_equal(masked("ftp://user@host"), "ftp://user@host/");
	assert_string_equal(masked("FTP://Host"), "ftp://Host/");
	/* The default port is left out, any other written. */
	assert_string_equal(masked("ftps://h:990/"), "ftps://h/");
	assert_string_equal(masked("ftp://h:21/"), "ftp://h/");
	assert_string_equal(masked("ftp://h:990/"), "ftp://h:990/");
	assert_string_equal(masked("ftps://h:21"), "ftps://h:21/");
	assert_string_equal(masked("ftp://[::1]:2121//abs;type=i"), "ftp://[::1]:2121//abs;type=i");
	assert_string_equal(masked("ftp://h/%2Fetc"), "ftp://h//etc");
	assert_string_equal(masked("ftp://h/dir/;TYPE=D"), "ftp://h/dir/;type=d");
	/* Re-encoded: what needs it, and only that. */
	assert_string_equal(masked("ftp://us%40er:p%40ss@h/a%20b/%3Bx/caf%C3%A9"),
			    "ftp://us%40er:***@h/a%20b/%3Bx/caf%C3%A9");
	assert_string_equal(masked("ftp://h/My Files/100%25"), "ftp://h/My%20Files/100%25");
	assert_string_equal(masked("ftp://h/a:b@c!$&'()*+,=~-._"), "ftp://h/a:b@c!$&'()*+,=~-._");
	assert_string_equal(masked("ftp://h/a%3Fb%23c%5B%5D%22"), "ftp://h/a%3Fb%23c%5B%5D%22");
	assert_string_equal(masked("ftp://h/%09"), "ftp://h/%09");
	assert_string_equal(masked("ftp://a;b=c!:x@h"), "ftp://a;b=c!:***@h/");
	assert_string_equal(masked("ftp://u%3Ax%2F@h"), "ftp://u%3Ax%2F@h/");
	assert_string_equal(masked("ftp://h/f%3Btype=i"), "ftp://h/f%3Btype=i");
}

static void test_format_round_trip(void **state)
{
	(void)state;
	static struct ftp_url first;
	static char out[4 * VPATH_MAX];
	const char *urls[] = {
		"ftp://user:secret@host/dir/file",
		"ftps://a%3Ab%40c:pw@[2001:db8::2]:2121//abs/x%20y/;type=a",
		"ftp://h/a;type=i/b%3B%25%2F",
		"ftp://h/caf\xc3\xa9 au lait/",
		"ftp://h//",
	};
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		parse_ok(urls[i]);
		first = u;
		first.has_password = false;
		assert_int_equal(url_format_masked(&first, out, sizeof(out)), FERR_OK);
		parse_ok(out);
		assert_string_equal(u.user, first.user);
		assert_int_equal(u.has_user, first.has_user);
		assert_false(u.has_password);
		assert_string_equal(u.host, first.host);
		assert_int_equal(u.host_is_ipv6, first.host_is_ipv6);
		assert_int_equal(u.port, first.port);
		assert_int_equal(u.implicit_tls, first.implicit_tls);
		assert_string_equal(u.path, first.path);
		assert_int_equal(u.type, first.type);
	}
}

static void test_format_bounds(void **state)
{
	(void)state;
	char out[64];

	parse_ok("ftp://u:p@h/x");
	const char *want = "ftp://u:***@h/x";
	size_t n = strlen(want);
	assert_int_equal(url_format_masked(&u, out, n + 1), FERR_OK);
	assert_string_equal(out, want);
	/* Too small gets "", never a truncated URL. */
	memset(out, 'z', sizeof(out));
	assert_int_equal(url_format_masked(&u, out, n), FERR_TOOBIG);
	assert_string_equal(out, "");
	assert_int_equal(url_format_masked(&u, out, 1), FERR_TOOBIG);
	assert_string_equal(out, "");
	out[0] = 'z';
	assert_int_equal(url_format_masked(&u, out, 0), FERR_TOOBIG);
	assert_int_equal(out[0], 'z');

	/* The longest: every path byte encoded. */
	static char s[4 * VPATH_MAX], big[4 * VPATH_MAX];
	memcpy(s, "ftp://h/", 8);
	fill_encoded(s + 8, "%20", VPATH_MAX - 1);
	parse_ok(s);
	assert_int_equal(url_format_masked(&u, big, sizeof(big)), FERR_OK);
	assert_string_equal(big, s);

	/* A hand-built struct that breaks the contract is refused, not overread. */
	parse_ok("ftp://h/");
	u.type = 'x';
	assert_int_equal(url_format_masked(&u, out, sizeof(out)), FERR_INVALID);
	assert_string_equal(out, "");
	u.type = 0;
	memset(u.user, 'a', sizeof(u.user));
	u.has_user = true;
	assert_int_equal(url_format_masked(&u, out, sizeof(out)), FERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_scheme),
		cmocka_unit_test(test_path_rules),
		cmocka_unit_test(test_percent),
		cmocka_unit_test(test_raw_refusals),
		cmocka_unit_test(test_userinfo),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_port),
		cmocka_unit_test(test_type),
		cmocka_unit_test(test_field_bounds),
		cmocka_unit_test(test_failure_wipes),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_format_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_hostport.c: PORT/PASV/EPRT/EPSV codecs and listen addresses. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "common/err.h"
#include "common/hostport.h"

static void expect_v4(const struct sockaddr_storage *ss, const char *addr, uint16_t port)
{
	char s[64];
	assert_int_equal(ss->ss_family, AF_INET);
	hostport_ntop(ss, s, sizeof(s));
	assert_string_equal(s, addr);
	assert_int_equal(hostport_get_port(ss), port);
	assert_int_equal(hostport_len(ss), sizeof(struct sockaddr_in));
}

static void expect_v6(const struct sockaddr_storage *ss, const char *addr, uint16_t port)
{
	char s[64];
	assert_int_equal(ss->ss_family, AF_INET6);
	hostport_ntop(ss, s, sizeof(s));
	assert_string_equal(s, addr);
	assert_int_equal(hostport_get_port(ss), port);
	assert_int_equal(hostport_len(ss), sizeof(struct sockaddr_in6));
}

static void test_port_valid(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	assert_int_equal(hostport_parse_port("192,168,1,2,4,1", &ss), FERR_OK);
	expect_v4(&ss, "192.168.1.2", 1025);
	assert_int_equal(hostport_parse_port("0,0,0,0,0,0", &ss), FERR_OK);
	expect_v4(&ss, "0.0.0.0", 0);
	assert_int_equal(hostport_parse_port("255,255,255,255,255,255", &ss), FERR_OK);
	expect_v4(&ss, "255.255.255.255", 65535);
	assert_int_equal(hostport_parse_port("010,001,000,001,000,021", &ss), FERR_OK);
	expect_v4(&ss, "10.1.0.1", 21);
}

static void test_port_hostile(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	const char *bad[] = {
		"",
		"1,2,3,4,5",
		"1,2,3,4,5,6,7",
		"256,1,1,1,1,1",
		"1,1,1,1,1,256",
		"-1,1,1,1,1,1",
		"1,1,1,1,+1,1",
		"1, 1,1,1,1,1",
		" 1,1,1,1,1,1",
		"1,1,1,1,1,1 ",
		"1,1,1,1,1,1,",
		"1,,1,1,1,1",
		"0001,1,1,1,1,1",
		"1.1.1.1,1,1",
		"a,b,c,d,e,f",
		"1,1,1,1,1,1\r",
		"99999999999999999999999,1,1,1,1,1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hostport_parse_port(bad[i], &ss), FERR_INVALID);
	assert_int_equal(hostport_parse_port(NULL, &ss), FERR_INVALID);
}

static void test_eprt(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	assert_int_equal(hostport_parse_eprt("|1|132.235.1.2|6275|", &ss), FERR_OK);
	expect_v4(&ss, "132.235.1.2", 6275);
	assert_int_equal(hostport_parse_eprt("|2|1080::8:800:200C:417A|5282|", &ss), FERR_OK);
	expect_v6(&ss, "1080::8:800:200c:417a", 5282);
	assert_int_equal(hostport_parse_eprt("!2!::1!65535!", &ss), FERR_OK);
	expect_v6(&ss, "::1", 65535);
	assert_int_equal(hostport_parse_eprt("~1~10.0.0.1~1~", &ss), FERR_OK);
	expect_v4(&ss, "10.0.0.1", 1);
}

static void test_eprt_hostile(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	const char *bad[] = {
		"",
		"|",
		"|1|1.2.3.4|21",        /* missing final delimiter */
		"|1|1.2.3.4|21|x",      /* trailing bytes */
		"|1|1.2.3.4!21!",       /* mixed delimiters */
		"|1|1.2.3.4|21!",
		" 1 1.2.3.4 21 ",       /* space is not a delimiter */
		"\x7f" "1\x7f" "1.2.3.4\x7f" "21\x7f",
		"|1|1.2.3.4|0|",
		"|1|1.2.3.4|65536|",
		"|1|1.2.3.4|-21|",
		"|1|1.2.3.4||",
		"|1||21|",
		"||1.2.3.4|21|",
		"|1|::1|21|",           /* family and address disagree */
		"|2|1.2.3.4|21|",
		"|1|1.2.3.256|21|",
		"|1|1.2.3|21|",
		"|x|1.2.3.4|21|",
		"|-1|1.2.3.4|21|",
		"|1|1.2.3.4|000021|",
		"|2|fe80::1%eth0|21|",
		"|2|0000:0000:0000:0000:0000:0000:0000:0000:0000|21|",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = hostport_parse_eprt(bad[i], &ss);
		if (rc != FERR_INVALID)
			fail_msg("EPRT '%s' gave %d", bad[i], rc);
	}
	assert_int_equal(hostport_parse_eprt(NULL, &ss), FERR_INVALID);
	/* Unknown families are a range error, so the server can answer 522. */
	assert_int_equal(hostport_parse_eprt("|3|1.2.3.4|21|", &ss), FERR_RANGE);
	assert_int_equal(hostport_parse_eprt("|0|1.2.3.4|21|", &ss), FERR_RANGE);
	assert_int_equal(hostport_parse_eprt("|99|x|21|", &ss), FERR_RANGE);
	assert_int_equal(hostport_parse_eprt("|1000|x|21|", &ss), FERR_RANGE);
}

static void test_format_pasv_epsv(void **state)
{
	(void)state;
	struct buf b;
	struct in_addr a;
	buf_init(&b, 256);
	assert_int_equal(inet_pton(AF_INET, "10.20.30.40", &a), 1);
	assert_int_equal(hostport_format_pasv(&b, &a, 50001), FERR_OK);
	assert_string_equal(b.data, "Entering Passive Mode (10,20,30,40,195,81).");
	struct sockaddr_storage ss;
	assert_int_equal(hostport_parse_pasv_reply(b.data, &ss), FERR_OK);
	expect_v4(&ss, "10.20.30.40", 50001);

	buf_reset(&b);
	assert_int_equal(hostport_format_epsv(&b, 6446), FERR_OK);
	assert_string_equal(b.data, "Entering Extended Passive Mode (|||6446|)");
	uint16_t port = 0;
	assert_int_equal(hostport_parse_epsv_reply(b.data, &port), FERR_OK);
	assert_int_equal(port, 6446);
	buf_free(&b);
}

static void test_format_port_eprt(void **state)
{
	(void)state;
	struct buf b;
	struct sockaddr_storage ss, back;
	buf_init(&b, 256);

	assert_int_equal(hostport_parse_listen("127.0.0.1:1025", &ss), FERR_OK);
	assert_int_equal(hostport_format_port(&b, &ss), FERR_OK);
	assert_string_equal(b.data, "127,0,0,1,4,1");
	assert_int_equal(hostport_parse_port(b.data, &back), FERR_OK);
	assert_true(hostport_same_host(&ss, &back));
	assert_int_equal(hostport_get_port(&back), 1025);

	buf_reset(&b);
	assert_int_equal(hostport_format_eprt(&b, &ss), FERR_OK);
	assert_string_equal(b.data, "|1|127.0.0.1|1025|");

	buf_reset(&b);
	assert_int_equal(hostport_parse_listen("[2001:db8::7]:2121", &ss), FERR_OK);
	assert_int_equal(hostport_format_eprt(&b, &ss), FERR_OK);
	assert_string_equal(b.data, "|2|2001:db8::7|2121|");
	assert_int_equal(hostport_parse_eprt(b.data, &back), FERR_OK);
	assert_true(hostport_same_host(&ss, &back));
	buf_reset(&b);
	assert_int_equal(hostport_format_port(&b, &ss), FERR_INVALID);
	assert_int_equal(b.len, 0);

	/* A mapped address goes out as the IPv4 it is. */
	buf_reset(&b);
	assert_int_equal(hostport_parse_listen("[::ffff:192.0.2.1]:2000", &ss), FERR_OK);
	assert_int_equal(hostport_format_port(&b, &ss), FERR_OK);
	assert_string_equal(b.data, "192,0,2,1,7,208");
	buf_reset(&b);
	assert_int_equal(hostport_format_eprt(&b, &ss), FERR_OK);
	assert_string_equal(b.data, "|1|192.0.2.1|2000|");
	buf_free(&b);
}

static void test_pasv_reply(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	assert_int_equal(hostport_parse_pasv_reply("Entering Passive Mode (1,2,3,4,5,6)", &ss),
			 FERR_OK);
	expect_v4(&ss, "1.2.3.4", 1286);
	/* Without parentheses, and after other numbers. */
	assert_int_equal(hostport_parse_pasv_reply("Mode 2 ok =9,8,7,6,0,21", &ss), FERR_OK);
	expect_v4(&ss, "9.8.7.6", 21);
	assert_int_equal(hostport_parse_pasv_reply("1,2,3 no (10,0,0,1,1,1)", &ss), FERR_OK);
	expect_v4(&ss, "10.0.0.1", 257);
	const char *bad[] = { "", "Entering Passive Mode", "(1,2,3,4,5)", "(256,1,1,1,1,1)",
			      "(1,2,3,4,5,1000)", "(1,2,3,4,5,-6)" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hostport_parse_pasv_reply(bad[i], &ss), FERR_INVALID);
}

static void test_epsv_reply(void **state)
{
	(void)state;
	uint16_t port = 0;
	assert_int_equal(hostport_parse_epsv_reply("Extended (|||65535|)", &port), FERR_OK);
	assert_int_equal(port, 65535);
	assert_int_equal(hostport_parse_epsv_reply("x (a) (!!!21!)", &port), FERR_OK);
	assert_int_equal(port, 21);
	const char *bad[] = { "", "(|||0|)", "(|||65536|)", "(||21|)", "(|!|21|)", "(|||21!)",
			      "(|||21", "|||21|", "(   21 )", "(|||-21|)", "(|||000021|)", "(" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hostport_parse_epsv_reply(bad[i], &port), FERR_INVALID);
}

static void test_listen(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	assert_int_equal(hostport_parse_listen("1.2.3.4:21", &ss), FERR_OK);
	expect_v4(&ss, "1.2.3.4", 21);
	assert_int_equal(hostport_parse_listen("[::1]:21", &ss), FERR_OK);
	expect_v6(&ss, "::1", 21);
	assert_int_equal(hostport_parse_listen("[::]:2121", &ss), FERR_OK);
	expect_v6(&ss, "::", 2121);
	assert_int_equal(hostport_parse_listen(":2121", &ss), FERR_OK);
	expect_v6(&ss, "::", 2121);
	assert_int_equal(hostport_parse_listen("2121", &ss), FERR_OK);
	expect_v6(&ss, "::", 2121);

	assert_int_equal(hostport_parse_listen("1.2.3.4:0", &ss), FERR_RANGE);
	assert_int_equal(hostport_parse_listen("1.2.3.4:65536", &ss), FERR_RANGE);
	assert_int_equal(hostport_parse_listen("0", &ss), FERR_RANGE);
	const char *bad[] = { "", ":", "1.2.3.4", "1.2.3.4:", "::1:21", "[::1]21", "[::1]:",
			      "[1.2.3.4]:21", "localhost:21", "1.2.3.4:-1", "1.2.3.4: 21",
			      "[]:21", "[::1:21", "1.2.3.4:021x", "1.2.3.4:123456" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = hostport_parse_listen(bad[i], &ss);
		if (rc != FERR_INVALID)
			fail_msg("listen '%s' gave %d", bad[i], rc);
	}
}

static void test_range(void **state)
{
	(void)state;
	uint16_t lo = 0, hi = 0;
	assert_int_equal(hostport_parse_range("1024-65535", &lo, &hi), FERR_OK);
	assert_int_equal(lo, 1024);
	assert_int_equal(hi, 65535);
	assert_int_equal(hostport_parse_range("40000-40000", &lo, &hi), FERR_OK);
	assert_int_equal(lo, 40000);
	assert_int_equal(hi, 40000);
	assert_int_equal(hostport_parse_range("1023-2000", &lo, &hi), FERR_RANGE);
	assert_int_equal(hostport_parse_range("3000-2000", &lo, &hi), FERR_RANGE);
	assert_int_equal(hostport_parse_range("2000-65536", &lo, &hi), FERR_RANGE);
	const char *bad[] = { "", "-", "2000", "2000-", "-2000", "2000 - 3000", "a-b",
			      "2000-3000-4000", "+2000-3000" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hostport_parse_range(bad[i], &lo, &hi), FERR_INVALID);
}

static void test_same_host_and_unmap(void **state)
{
	(void)state;
	struct sockaddr_storage a, b;
	assert_int_equal(hostport_parse_listen("192.0.2.1:21", &a), FERR_OK);
	assert_int_equal(hostport_parse_listen("[::ffff:192.0.2.1]:5000", &b), FERR_OK);
	assert_true(hostport_same_host(&a, &b));
	assert_true(hostport_same_host(&b, &a));
	assert_int_equal(hostport_parse_listen("[::ffff:192.0.2.2]:5000", &b), FERR_OK);
	assert_false(hostport_same_host(&a, &b));
	assert_int_equal(hostport_parse_listen("[::1]:21", &b), FERR_OK);
	assert_false(hostport_same_host(&a, &b));
	assert_int_equal(hostport_parse_listen("127.0.0.1:21", &a), FERR_OK);
	assert_false(hostport_same_host(&a, &b)); /* ::1 is not 127.0.0.1 */

	assert_int_equal(hostport_parse_listen("[::ffff:10.1.2.3]:4000", &b), FERR_OK);
	hostport_unmap(&b);
	expect_v4(&b, "10.1.2.3", 4000);
	assert_int_equal(hostport_parse_listen("[2001:db8::1]:4000", &b), FERR_OK);
	hostport_unmap(&b);
	expect_v6(&b, "2001:db8::1", 4000);
}

static void test_port_helpers(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	char s[64];
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_int_equal(hostport_get_port(&ss), 0);
	assert_int_equal(hostport_len(&ss), 0);
	hostport_set_port(&ss, 21);
	hostport_ntop(&ss, s, sizeof(s));
	assert_string_equal(s, "?");

	assert_int_equal(hostport_parse_listen("1.2.3.4:21", &ss), FERR_OK);
	hostport_set_port(&ss, 4242);
	assert_int_equal(hostport_get_port(&ss), 4242);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 4242);

	/* A small buffer gets an empty string, never a truncated address. */
	hostport_ntop(&ss, s, 4);
	assert_string_equal(s, "");
	hostport_ntop(&ss, s, 8);
	assert_string_equal(s, "1.2.3.4");
}

/* The compact form keeps address, port and IPv6 scope, and nothing else survives. */
static void test_compact_addr(void **state)
{
	struct sockaddr_storage ss, back;
	struct hostport_addr a;
	assert_int_equal(hostport_parse_listen("198.18.0.7:2121", &ss), 0);
	hostport_addr_set(&a, &ss);
	back = hostport_addr_get(&a);
	expect_v4(&back, "198.18.0.7", 2121);
	assert_true(hostport_same_host(&back, &ss));

	assert_int_equal(hostport_parse_listen("[fe80::1]:21", &ss), 0);
	((struct sockaddr_in6 *)&ss)->sin6_scope_id = 3;
	hostport_addr_set(&a, &ss);
	back = hostport_addr_get(&a);
	expect_v6(&back, "fe80::1", 21);
	assert_int_equal(((struct sockaddr_in6 *)&back)->sin6_scope_id, 3);
	assert_memory_equal(&back, &ss, sizeof(struct sockaddr_in6));

	memset(&ss, 0xff, sizeof(ss));
	ss.ss_family = AF_UNIX;
	hostport_addr_set(&a, &ss);
	back = hostport_addr_get(&a);
	assert_int_equal(back.ss_family, AF_UNSPEC);
	assert_true(sizeof(struct hostport_addr) <= 28);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_port_valid),
		cmocka_unit_test(test_port_hostile),
		cmocka_unit_test(test_eprt),
		cmocka_unit_test(test_eprt_hostile),
		cmocka_unit_test(test_format_pasv_epsv),
		cmocka_unit_test(test_format_port_eprt),
		cmocka_unit_test(test_pasv_reply),
		cmocka_unit_test(test_epsv_reply),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_same_host_and_unmap),
		cmocka_unit_test(test_port_helpers),
		cmocka_unit_test(test_compact_addr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
